//! Property tests of the four webhook readers: no body, however malformed, panics `parse`
//! or `verify` (arbitrary bytes, arbitrary JSON, a valid delivery truncated, retyped,
//! with huge numbers, nested deep, made invalid UTF-8, or XML where JSON is read and the
//! other way round); any `Result` is fine. And a valid delivery with one byte changed
//! where the proof lies (ConnectWise: the signed body or its signature; HaloPSA: the
//! bearer token; Syncro and Salesforce: the URL token) never verifies with the right
//! secret.

// Tests unwrap: a failed unwrap is a failed test, with the error in the panic message.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};
use tandem_connectors::{connectwise, salesforce, syncro};
use tandem_domain::System;
use tandem_domain::webhook::WebhookCall;

/// Cases per property: enough to find a panic, few enough for a few seconds in debug.
const CASES: u32 = 128;

const SYSTEMS: [System; 4] = [System::ConnectWise, System::Halo, System::Syncro, System::Salesforce];

/// ConnectWise's signing key, as `key_url` would hand it out.
const CW_KEY: &[u8] = b"a-signing-key-from-key-url";
/// The connection's webhook secret (HaloPSA's bearer token, Syncro's and Salesforce's URL token).
const SECRET: &str = "per-connection-webhook-secret";
/// A Salesforce organisation id.
const ORG: &str = "00D8d0000000062EAA";

/// ConnectWise's callback sample (the vendor's own test delivery).
const CW_UPDATE: &str = include_str!("fixtures/webhook_test_contact-update.json");

const HALO_CLIENT: &str = r#"{"id": 42, "name": "Acme", "client_id": 42, "alastupdate": "2025-03-04T05:06:07.123"}"#;

const SYNCRO_CUSTOMER: &str = r#"{"event": "Customer Updated",
    "link": "https://acme.syncromsp.com/customers/1234",
    "attributes": {"id": 1234, "business_name": "Acme", "updated_at": "2024-05-01T10:00:00.053-05:00"}}"#;

/// An Outbound Message in the form salesforce-api.md 6.2 gives.
fn outbound_message() -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{ORG}</OrganizationId>
   <ActionId>04k8d0000000001AAA</ActionId>
   <SessionId xsi:nil="true"/>
   <Notification>
    <Id>04l8d0000000001AAA</Id>
    <sObject xsi:type="sf:Account" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>0018d0000000001AAA</sf:Id>
     <sf:LastModifiedDate>2024-05-01T10:00:00.000+0000</sf:LastModifiedDate>
     <sf:Name>Acme</sf:Name>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#
    )
}

/// A change event as a Salesforce flow or Change Data Capture relay would post it.
const SF_EVENT: &str = r#"{"ChangeEventHeader": {"entityName": "Account", "changeType": "UPDATE",
    "recordIds": ["0018d0000000001AAA"], "commitTimestamp": 1714557600000}, "Name": "Acme"}"#;

/// The secret `verify` is given for `system`'s connection.
fn secret(system: System) -> Vec<u8> {
    match system {
        System::ConnectWise => CW_KEY.to_vec(),
        System::Salesforce => salesforce::webhook::webhook_secret(ORG, Some(SECRET)),
        System::Halo | System::Syncro => SECRET.as_bytes().to_vec(),
    }
}

/// `body` delivered to `system`'s endpoint with everything else a valid call carries:
/// ConnectWise's signature of `body`, HaloPSA's bearer token and `?kind=`, the URL token.
fn call(system: System, body: Vec<u8>) -> WebhookCall {
    let mut headers = BTreeMap::new();
    let mut query = BTreeMap::new();
    match system {
        System::ConnectWise => {
            let sig = connectwise::webhook::signature(CW_KEY, &body);
            headers.insert(connectwise::webhook::SIGNATURE_HEADER.to_string(), base64_text(&sig));
        }
        System::Halo => {
            headers.insert("authorization".to_string(), format!("Bearer {SECRET}"));
            query.insert("kind".to_string(), "client".to_string());
        }
        System::Syncro => {
            query.insert(syncro::webhook::TOKEN_PARAM.to_string(), SECRET.to_string());
        }
        System::Salesforce => {
            query.insert(salesforce::webhook::TOKEN_PARAM.to_string(), SECRET.to_string());
        }
    }
    WebhookCall { headers, query, body }
}

/// Standard base64 with padding (the signature header's form), without another crate.
fn base64_text(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The valid delivery of `system` (Salesforce: the Outbound Message or, `json`, an event).
fn valid_body(system: System, json: bool) -> Vec<u8> {
    match system {
        System::ConnectWise => CW_UPDATE.as_bytes().to_vec(),
        System::Halo => HALO_CLIENT.as_bytes().to_vec(),
        System::Syncro => SYNCRO_CUSTOMER.as_bytes().to_vec(),
        System::Salesforce if json => SF_EVENT.as_bytes().to_vec(),
        System::Salesforce => outbound_message().into_bytes(),
    }
}

/// Reads `call` every way the intake does; panics are what the properties look for, any
/// answer is fine.
fn read(system: System, call: &WebhookCall) {
    let reader = tandem_connectors::webhook(system);
    let _ = reader.parse(call);
    let _ = reader.verify(call, &secret(system));
    let _ = reader.verify(call, b"");
    let _ = reader.verify(call, b":");
}

fn system() -> impl Strategy<Value = System> {
    select(SYSTEMS.to_vec())
}

/// Field names the readers look at, and a few they do not.
const KNOWN_KEYS: &[&str] = &[
    "Action",
    "Type",
    "ID",
    "Entity",
    "MemberId",
    "Metadata",
    "key_url",
    "CallbackObjectRecId",
    "id",
    "client_id",
    "alastupdate",
    "ulastupdate",
    "last_update",
    "event",
    "link",
    "attributes",
    "updated_at",
    "ChangeEventHeader",
    "entityName",
    "changeType",
    "recordIds",
    "commitTimestamp",
    "_info",
    "lastUpdated",
    "other",
];

/// Any JSON value, with known field names as keys, nested up to a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,24}".prop_map(Value::String),
        select(vec!["2024-05-01T10:00:00Z", "2024-05-01T10:00:00.000+0000", "not a date", "", "-1", "1e400"])
            .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((select(KNOWN_KEYS.to_vec()), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>())),
        ]
    })
}

/// A valid JSON delivery with one known field (at the top or one level down) given an
/// arbitrary value: a wrong type, a huge number, a nested structure.
fn retyped(body: &[u8], path: usize, value: Value) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    let mut slots: Vec<Vec<String>> = Vec::new();
    if let Value::Object(top) = &v {
        for (k, inner) in top {
            slots.push(vec![k.clone()]);
            if let Value::Object(inner) = inner {
                slots.extend(inner.keys().map(|k2| vec![k.clone(), k2.clone()]));
            }
        }
    }
    if slots.is_empty() {
        return body.to_vec();
    }
    let slot = &slots[path % slots.len()];
    let mut at = &mut v;
    for key in slot {
        at = &mut at[key.as_str()];
    }
    *at = value;
    serde_json::to_vec(&v).unwrap()
}

/// `[[[ … value … ]]]` `depth` times: deep, within what a body of a few kilobytes holds.
fn nested(depth: usize, object: bool) -> Vec<u8> {
    let (open, close) = if object { (r#"{"id":"#, "}") } else { ("[", "]") };
    let mut s = open.repeat(depth);
    s.push('1');
    s.push_str(&close.repeat(depth));
    s.into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_a_reader(system in system(), body in prop::collection::vec(any::<u8>(), 0..512)) {
        read(system, &call(system, body.clone()));
        read(system, &WebhookCall { body, ..WebhookCall::default() });
    }

    #[test]
    fn arbitrary_json_never_panics_a_reader(system in system(), value in json_value()) {
        read(system, &call(system, serde_json::to_vec(&value).unwrap()));
    }

    #[test]
    fn a_valid_delivery_truncated_anywhere_never_panics_a_reader(
        system in system(), json in any::<bool>(), cut in any::<prop::sample::Index>(),
    ) {
        let body = valid_body(system, json);
        let end = cut.index(body.len() + 1);
        read(system, &call(system, body[..end].to_vec()));
    }

    #[test]
    fn a_valid_delivery_with_a_known_field_retyped_never_panics_a_reader(
        system in system(), json in any::<bool>(), path in any::<usize>(), value in json_value(),
    ) {
        let body = retyped(&valid_body(system, json), path, value);
        read(system, &call(system, body));
    }

    #[test]
    fn huge_numbers_in_known_fields_never_panic_a_reader(
        system in system(), path in any::<usize>(),
        digits in "[1-9][0-9]{20,400}", exponent in -5000i64..5000,
    ) {
        for number in [digits.clone(), format!("-{digits}"), format!("{digits}e{exponent}"), format!("0.{digits}")] {
            // Spliced in as text, so serde_json never gets the chance to round it first.
            let body = retyped(&valid_body(system, true), path, json!("@@"));
            let text = String::from_utf8(body).unwrap().replace(r#""@@""#, &number);
            read(system, &call(system, text.into_bytes()));
        }
    }

    #[test]
    fn deep_nesting_never_panics_a_reader(system in system(), depth in 1usize..200, object in any::<bool>()) {
        read(system, &call(system, nested(depth, object)));
        let body = retyped(&valid_body(system, true), depth, json!("@@"));
        let text = String::from_utf8(body).unwrap().replace(r#""@@""#, &String::from_utf8(nested(depth, object)).unwrap());
        read(system, &call(system, text.into_bytes()));
    }

    #[test]
    fn invalid_utf8_in_a_valid_delivery_never_panics_a_reader(
        system in system(), json in any::<bool>(), at in any::<prop::sample::Index>(),
        bad in select(vec![vec![0xff_u8], vec![0xc3], vec![0xe2, 0x82], vec![0xed, 0xa0, 0x80], vec![0xf4, 0x90, 0x80, 0x80]]),
    ) {
        let mut body = valid_body(system, json);
        let i = at.index(body.len());
        body.splice(i..i, bad);
        read(system, &call(system, body));
    }

    #[test]
    fn xml_where_json_is_read_and_json_where_xml_is_read_never_panic_a_reader(
        system in system(), cut in any::<prop::sample::Index>(), value in json_value(),
    ) {
        let xml = outbound_message().into_bytes();
        let end = cut.index(xml.len() + 1);
        read(system, &call(system, xml[..end].to_vec()));
        let soapish = format!("<?xml version=\"1.0\"?><soapenv:Envelope>{value}</soapenv:Envelope>");
        read(system, &call(system, soapish.into_bytes()));
    }

    #[test]
    fn a_connectwise_callback_with_any_byte_of_its_body_changed_never_verifies(
        at in any::<prop::sample::Index>(), flip in 1u8..=255,
    ) {
        let body = valid_body(System::ConnectWise, true);
        let signed = call(System::ConnectWise, body.clone());
        let reader = tandem_connectors::webhook(System::ConnectWise);
        prop_assert_eq!(reader.verify(&signed, CW_KEY), Ok(()));
        let mut changed = signed.clone();
        let i = at.index(body.len());
        changed.body[i] ^= flip;
        prop_assert!(reader.verify(&changed, CW_KEY).is_err(), "byte {} changed still verifies", i);
    }

    #[test]
    fn a_connectwise_signature_with_any_byte_changed_never_verifies(
        at in any::<prop::sample::Index>(), flip in 1u8..=255,
    ) {
        let signed = call(System::ConnectWise, valid_body(System::ConnectWise, true));
        let reader = tandem_connectors::webhook(System::ConnectWise);
        let mut sig = signed.headers[connectwise::webhook::SIGNATURE_HEADER].clone().into_bytes();
        let i = at.index(sig.len());
        sig[i] ^= flip;
        let mut changed = signed.clone();
        changed.headers.insert(connectwise::webhook::SIGNATURE_HEADER.to_string(), String::from_utf8_lossy(&sig).into_owned());
        prop_assert!(reader.verify(&changed, CW_KEY).is_err(), "signature byte {} changed still verifies", i);
    }

    #[test]
    fn a_token_with_any_byte_changed_never_verifies(
        system in select(vec![System::Halo, System::Syncro, System::Salesforce]), json in any::<bool>(),
        at in any::<prop::sample::Index>(), replacement in any::<char>(),
    ) {
        let valid = call(system, valid_body(system, json));
        let reader = tandem_connectors::webhook(system);
        prop_assert_eq!(reader.verify(&valid, &secret(system)), Ok(()));
        let mut token: Vec<char> = SECRET.chars().collect();
        let i = at.index(token.len());
        prop_assume!(token[i] != replacement);
        token[i] = replacement;
        let token: String = token.into_iter().collect();
        let mut changed = valid.clone();
        match system {
            System::Halo => {
                changed.headers.insert("authorization".to_string(), format!("Bearer {token}"));
            }
            _ => {
                changed.query.insert("token".to_string(), token.clone());
            }
        }
        prop_assert!(reader.verify(&changed, &secret(system)).is_err(), "{:?} token {:?} verifies", system, token);
    }
}

#[test]
fn every_valid_delivery_here_verifies_and_parses_to_one_notice() {
    for system in SYSTEMS {
        for json in [false, true] {
            let call = call(system, valid_body(system, json));
            let reader = tandem_connectors::webhook(system);
            assert_eq!(reader.verify(&call, &secret(system)), Ok(()), "{system:?} json={json}");
            let delivery = reader.parse(&call).unwrap();
            assert_eq!(delivery.notices.len(), 1, "{system:?} json={json}: {delivery:?}");
        }
    }
}
