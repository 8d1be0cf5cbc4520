//! The Salesforce webhook reader (pure): verify a call, parse the records it names, and
//! the SOAP acknowledgement the intake answers an Outbound Message with.
//!
//! Two bodies are read:
//! - **Outbound Messages** (salesforce-api.md 6.2): a SOAP envelope whose `notifications`
//!   holds the `OrganizationId` and up to 100 `Notification`s, each an `sObject` with
//!   `xsi:type="sf:Account"` and the fields the administrator selected (`sf:Id` always).
//!   They come from workflow rules on create or update: every notice is a change, and they
//!   say nothing of who made it. Salesforce retries a message until it is acknowledged
//!   ([`acknowledgement`]).
//! - **Change Data Capture events** relayed to the intake as JSON (6.1): an event payload
//!   `{"ChangeEventHeader": {...}, ...}`, or its CometD envelope `{"data": {"payload":
//!   {...}}}`, or an array of either. `changeType` tells a delete; a `changeOrigin` naming
//!   [`CALL_CLIENT`] (the client Tandem's writes declare) marks the change as ours.
//!
//! Kinds: Account -> company, Contact -> contact, Opportunity -> opportunity, Task and Event
//! -> activity. Leads (not synced yet) and other objects are left out.
//!
//! # The secret
//!
//! `verify`'s secret is the connection's organisation id, optionally followed by `:` and a
//! per-connection token (see [`webhook_secret`]). The organisation id is checked against the
//! message's `OrganizationId` (salesforce-api.md 6.2's advice); but an organisation id is
//! no secret (every user of the org can see it), so a connection should also carry a token,
//! put in the Outbound Message's endpoint URL as `?token=`: when the secret has one, the call
//! must carry it. A relayed CDC event names no organisation, so it is accepted only with
//! the token.

use serde_json::Value;
use tandem_domain::ledger::ExtVersion;
use tandem_domain::webhook::{Action, Delivery, Notice, WebhookCall, WebhookError, WebhookReader, same_bytes};
use tandem_domain::{RecordKind, System, Timestamp};

use super::client::CALL_CLIENT;
use super::is_salesforce_id;

/// The query parameter of the webhook URL carrying the connection's token.
pub const TOKEN_PARAM: &str = "token";
/// The namespace of an Outbound Message's `notifications` (salesforce-api.md 6.2).
pub const OUTBOUND_NS: &str = "http://soap.sforce.com/2005/09/outbound";
/// The namespace of `xsi:type`.
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// The content type of [`acknowledgement`].
pub const ACK_CONTENT_TYPE: &str = "text/xml; charset=utf-8";
/// The objects Tandem syncs, by the kind of record they are.
pub const OBJECT_KINDS: &[(&str, RecordKind)] = &[
    ("Account", RecordKind::Company),
    ("Contact", RecordKind::Contact),
    ("Opportunity", RecordKind::Opportunity),
    ("Task", RecordKind::Activity),
    ("Event", RecordKind::Activity),
];

/// Salesforce's webhook calls, read.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reader;

/// The one reader.
pub const READER: Reader = Reader;

/// The secret `verify` takes for a connection: its organisation id, then `:` and the URL
/// token when it has one (recommended, see the module doc).
pub fn webhook_secret(org_id: &str, token: Option<&str>) -> Vec<u8> {
    match token {
        Some(token) => format!("{org_id}:{token}").into_bytes(),
        None => org_id.as_bytes().to_vec(),
    }
}

/// The SOAP answer to an Outbound Message: `<Ack>true</Ack>` acknowledges every
/// notification in it; `false` (or no answer) makes Salesforce send it again later
/// (salesforce-api.md 6.2). Sent as [`ACK_CONTENT_TYPE`].
pub fn acknowledgement(ack: bool) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">"#,
            r#"<soapenv:Body><notificationsResponse xmlns="{ns}"><Ack>{ack}</Ack></notificationsResponse>"#,
            r#"</soapenv:Body></soapenv:Envelope>"#
        ),
        ns = OUTBOUND_NS,
        ack = ack
    )
}

/// Whether a CDC `changeOrigin` (`com/salesforce/api/rest/62.0;client=TandemSync`) names
/// the client Tandem's writes declare ([`CALL_CLIENT`]).
pub fn changed_by_us(change_origin: &str) -> bool {
    change_origin.split(';').any(|part| part.trim().strip_prefix("client=") == Some(CALL_CLIENT))
}

fn malformed(why: impl Into<String>) -> WebhookError {
    WebhookError::Malformed(why.into())
}

fn unauthenticated(why: impl Into<String>) -> WebhookError {
    WebhookError::Unauthenticated(why.into())
}

fn kind_of(object: &str) -> Option<RecordKind> {
    OBJECT_KINDS.iter().find(|(o, _)| *o == object).map(|(_, k)| *k)
}

/// The two bodies a call may carry.
enum Body {
    Soap(String),
    Json(Value),
}

fn body_of(call: &WebhookCall) -> Result<Body, WebhookError> {
    let text = std::str::from_utf8(&call.body).map_err(|_| malformed("the Salesforce call is not UTF-8 text"))?;
    match text.trim_start().chars().next() {
        Some('<') => Ok(Body::Soap(text.to_string())),
        Some('{' | '[') => serde_json::from_str(text)
            .map(Body::Json)
            .map_err(|e| malformed(format!("the Salesforce event is not JSON: {e}"))),
        _ => Err(malformed("the Salesforce call is neither an Outbound Message nor a change event")),
    }
}

/// Whether two organisation ids are the same org: equal, or a 15-character id and the
/// 18-character form of it (the same id plus a case-checksum suffix). Constant time.
fn same_org(a: &[u8], b: &[u8]) -> bool {
    match (a.len(), b.len()) {
        (15, 18) => same_bytes(a, &b[..15]),
        (18, 15) => same_bytes(&a[..15], b),
        _ => same_bytes(a, b),
    }
}

/// The first child element of `parent` named `name`, in any namespace.
fn named<'a, 'i>(parent: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    parent.children().find(|n| n.is_element() && n.tag_name().name() == name)
}

/// `OrganizationId` and the notices of an Outbound Message.
fn read_soap(text: &str) -> Result<(String, Vec<Notice>), WebhookError> {
    let doc =
        roxmltree::Document::parse(text).map_err(|e| malformed(format!("the Outbound Message is not XML: {e}")))?;
    let notifications = doc
        .descendants()
        .find(|n| n.has_tag_name((OUTBOUND_NS, "notifications")))
        .ok_or_else(|| malformed("the SOAP body holds no Outbound Message notifications"))?;
    let org = named(notifications, "OrganizationId")
        .and_then(|n| n.text())
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .ok_or_else(|| malformed("the Outbound Message has no OrganizationId"))?
        .to_string();
    let mut notices = Vec::new();
    for notification in notifications.children().filter(|n| n.is_element() && n.tag_name().name() == "Notification") {
        let sobject = named(notification, "sObject").ok_or_else(|| malformed("a Notification has no sObject"))?;
        let object = sobject
            .attribute((XSI_NS, "type"))
            .map(|t| t.rsplit(':').next().unwrap_or(t))
            .ok_or_else(|| malformed("an sObject has no xsi:type"))?;
        let Some(kind) = kind_of(object) else {
            continue;
        };
        let id = named(sobject, "Id")
            .and_then(|n| n.text())
            .map(str::trim)
            .filter(|id| is_salesforce_id(id))
            .ok_or_else(|| malformed(format!("a {object} notification has no record Id")))?;
        let at = named(sobject, "LastModifiedDate").and_then(|n| n.text()).map(|t| ExtVersion::from(t.trim()));
        notices.push(Notice { kind, id: id.to_string(), action: Action::Changed, at, by_us: false });
    }
    Ok((org, notices))
}

/// The notices of one CDC event payload (gap and overflow events name records to read
/// again too; a wildcard id such as `001*` names none).
fn read_event(event: &Value) -> Result<Vec<Notice>, WebhookError> {
    let payload = event.pointer("/data/payload").unwrap_or(event);
    let header = payload
        .get("ChangeEventHeader")
        .filter(|h| h.is_object())
        .ok_or_else(|| malformed("the change event has no ChangeEventHeader"))?;
    let text = |key: &str| header.get(key).and_then(Value::as_str).unwrap_or_default();
    let Some(kind) = kind_of(text("entityName")) else {
        return Ok(Vec::new());
    };
    let action = if text("changeType").ends_with("DELETE") { Action::Deleted } else { Action::Changed };
    let at = header
        .get("commitTimestamp")
        .and_then(Value::as_i64)
        .and_then(|ms| time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok())
        .map(|t| ExtVersion::from(Timestamp::from_datetime(t).to_rfc3339()));
    let by_us = changed_by_us(text("changeOrigin"));
    let ids = header
        .get("recordIds")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("the change event has no recordIds"))?;
    Ok(ids
        .iter()
        .filter_map(Value::as_str)
        .filter(|id| is_salesforce_id(id))
        .map(|id| Notice { kind, id: id.to_string(), action, at: at.clone(), by_us })
        .collect())
}

fn read_events(value: &Value) -> Result<Vec<Notice>, WebhookError> {
    match value {
        Value::Array(events) => events.iter().map(read_event).collect::<Result<Vec<_>, _>>().map(|n| n.concat()),
        event => read_event(event),
    }
}

impl WebhookReader for Reader {
    fn system(&self) -> System {
        System::Salesforce
    }

    /// The URL token, when the secret has one (constant time), then the Outbound Message's
    /// `OrganizationId` against the secret's organisation id (constant time; a 15-character
    /// id matches its 18-character form). A CDC event, which names no organisation, needs
    /// the token.
    fn verify(&self, call: &WebhookCall, secret: &[u8]) -> Result<(), WebhookError> {
        let (org, token) = match secret.iter().position(|b| *b == b':') {
            Some(i) => (&secret[..i], Some(&secret[i + 1..]).filter(|t| !t.is_empty())),
            None => (secret, None),
        };
        if org.is_empty() {
            return Err(unauthenticated("no Salesforce organisation id is configured for webhooks"));
        }
        if let Some(token) = token {
            let given = call
                .query
                .get(TOKEN_PARAM)
                .ok_or_else(|| unauthenticated(format!("the call has no {TOKEN_PARAM} in its URL")))?;
            if !same_bytes(given.as_bytes(), token) {
                return Err(unauthenticated(format!("the call's {TOKEN_PARAM} is not this connection's")));
            }
        }
        match body_of(call)? {
            Body::Soap(text) if same_org(read_soap(&text)?.0.as_bytes(), org) => Ok(()),
            Body::Soap(_) => Err(unauthenticated("the Outbound Message comes from another organisation")),
            Body::Json(_) if token.is_some() => Ok(()),
            Body::Json(_) => {
                Err(unauthenticated("a change event names no organisation; it is accepted only with a webhook token"))
            }
        }
    }

    fn parse(&self, call: &WebhookCall) -> Result<Delivery, WebhookError> {
        let notices = match body_of(call)? {
            Body::Soap(text) => read_soap(&text)?.1,
            Body::Json(value) => read_events(&value)?,
        };
        Ok(Delivery { notices, key_url: None })
    }

    /// An Outbound Message is acknowledged in SOAP (else Salesforce sends it again).
    fn acknowledgement(&self, call: &WebhookCall) -> Option<(&'static str, String)> {
        matches!(body_of(call), Ok(Body::Soap(_))).then(|| (ACK_CONTENT_TYPE, acknowledgement(true)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const ORG: &str = "00D8d0000000062EAA";

    /// An Outbound Message as salesforce-api.md 6.2 describes it: an Account and a Lead.
    fn message(org: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{org}</OrganizationId>
   <ActionId>04k8d0000000001AAA</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/62.0/00D8d0000000062</EnterpriseUrl>
   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/62.0/00D8d0000000062</PartnerUrl>
   <Notification>
    <Id>04l8d0000000001AAA</Id>
    <sObject xsi:type="sf:Account" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>0018d0000000001AAA</sf:Id>
     <sf:LastModifiedDate>2024-05-01T10:00:00.000Z</sf:LastModifiedDate>
     <sf:Name>Acme &amp; Sons</sf:Name>
     <sf:Phone>555-0100</sf:Phone>
    </sObject>
   </Notification>
   <Notification>
    <Id>04l8d0000000002AAA</Id>
    <sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>00Q8d0000000001AAA</sf:Id>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#
        )
    }

    fn call(token: Option<&str>, body: &str) -> WebhookCall {
        WebhookCall {
            query: token.map(|t| BTreeMap::from([(TOKEN_PARAM.to_string(), t.to_string())])).unwrap_or_default(),
            body: body.as_bytes().to_vec(),
            ..WebhookCall::default()
        }
    }

    fn is_unauthenticated(r: Result<(), WebhookError>) -> bool {
        matches!(r, Err(WebhookError::Unauthenticated(_)))
    }

    #[test]
    fn a_message_from_the_connected_org_verifies_in_its_15_or_18_character_form() {
        assert_eq!(READER.verify(&call(None, &message(ORG)), ORG.as_bytes()), Ok(()));
        assert_eq!(READER.verify(&call(None, &message(ORG)), &ORG.as_bytes()[..15]), Ok(()));
        assert_eq!(READER.verify(&call(None, &message(&ORG[..15])), ORG.as_bytes()), Ok(()));
    }

    #[test]
    fn a_message_from_another_org_or_with_no_org_configured_is_unauthenticated() {
        assert!(is_unauthenticated(READER.verify(&call(None, &message("00D8d0000000099EAA")), ORG.as_bytes())));
        assert!(is_unauthenticated(READER.verify(&call(None, &message(ORG)), b"")));
        assert!(is_unauthenticated(READER.verify(&call(Some("t0ken-value"), &message(ORG)), b":t0ken-value")));
    }

    #[test]
    fn with_a_token_configured_the_call_must_carry_it_as_well_as_the_org() {
        let secret = webhook_secret(ORG, Some("t0ken-value"));
        assert_eq!(READER.verify(&call(Some("t0ken-value"), &message(ORG)), &secret), Ok(()));
        for token in [None, Some("t0ken-valuE"), Some("")] {
            let err = READER.verify(&call(token, &message(ORG)), &secret).unwrap_err();
            assert!(matches!(err, WebhookError::Unauthenticated(_)), "{token:?}");
            assert!(!err.to_string().contains("t0ken"), "the secret never appears: {err}");
        }
        let other = message("00D8d0000000099EAA");
        assert!(is_unauthenticated(READER.verify(&call(Some("t0ken-value"), &other), &secret)));
    }

    #[test]
    fn an_outbound_message_parses_to_changed_records_and_leaves_leads_out() {
        let delivery = READER.parse(&call(None, &message(ORG))).unwrap();
        assert_eq!(
            delivery.notices,
            [Notice {
                kind: RecordKind::Company,
                id: "0018d0000000001AAA".into(),
                action: Action::Changed,
                at: Some(ExtVersion::from("2024-05-01T10:00:00.000Z")),
                by_us: false,
            }]
        );
    }

    #[test]
    fn a_message_about_leads_only_is_an_empty_delivery() {
        let leads = message(ORG).replace("sf:Account", "sf:Lead");
        assert_eq!(READER.parse(&call(None, &leads)).unwrap(), Delivery::default());
    }

    #[test]
    fn tasks_contacts_and_opportunities_take_their_kinds() {
        for (object, kind) in
            [("Task", RecordKind::Activity), ("Contact", RecordKind::Contact), ("Opportunity", RecordKind::Opportunity)]
        {
            let body = message(ORG).replace("sf:Account", &format!("sf:{object}"));
            assert_eq!(READER.parse(&call(None, &body)).unwrap().notices[0].kind, kind, "{object}");
        }
    }

    #[test]
    fn a_body_that_is_not_a_salesforce_notification_is_malformed() {
        let no_id = message(ORG).replace("<sf:Id>0018d0000000001AAA</sf:Id>", "");
        let no_org = message(ORG).replace(&format!("<OrganizationId>{ORG}</OrganizationId>"), "");
        for body in ["", "hello", "<notifications", "<a/>", "{\"x\": 1}", &no_id, &no_org] {
            assert!(matches!(READER.parse(&call(None, body)), Err(WebhookError::Malformed(_))), "{body}");
        }
        assert!(matches!(READER.verify(&call(None, "<oops"), ORG.as_bytes()), Err(WebhookError::Malformed(_))));
    }

    const EVENT: &str = r#"{"data": {"schema": "x", "event": {"replayId": 7}, "payload": {
        "ChangeEventHeader": {"entityName": "Contact", "recordIds": ["0038d0000000001AAA", "003*"],
            "changeType": "UPDATE", "changeOrigin": "com/salesforce/api/rest/62.0;client=TandemSync",
            "commitTimestamp": 1714557600000, "changedFields": ["Phone", "LastModifiedDate"]},
        "Phone": "555-0101"}}, "channel": "/data/ContactChangeEvent"}"#;

    #[test]
    fn a_change_event_from_our_own_client_is_marked_ours_and_a_delete_is_a_delete() {
        let n = READER.parse(&call(None, EVENT)).unwrap().notices;
        assert_eq!(n.len(), 1, "the wildcard id names no record: {n:?}");
        assert_eq!(
            (n[0].kind, n[0].id.as_str(), n[0].action, n[0].by_us),
            (RecordKind::Contact, "0038d0000000001AAA", Action::Changed, true)
        );
        assert_eq!(n[0].at.as_ref().and_then(ExtVersion::at).map(Timestamp::unix), Some(1_714_557_600));
        let theirs = EVENT.replace("client=TandemSync", "client=SfdcInternalAPI").replace("UPDATE", "DELETE");
        let n = READER.parse(&call(None, &theirs)).unwrap().notices;
        assert_eq!((n[0].action, n[0].by_us), (Action::Deleted, false));
        let lead = EVENT.replace("\"Contact\"", "\"Lead\"");
        assert_eq!(READER.parse(&call(None, &format!("[{lead}]"))).unwrap(), Delivery::default());
    }

    #[test]
    fn a_change_event_verifies_only_by_the_token() {
        let secret = webhook_secret(ORG, Some("t0ken-value"));
        assert_eq!(READER.verify(&call(Some("t0ken-value"), EVENT), &secret), Ok(()));
        assert!(is_unauthenticated(READER.verify(&call(None, EVENT), ORG.as_bytes())));
    }

    #[test]
    fn the_acknowledgement_is_a_soap_notifications_response() {
        let ack = acknowledgement(true);
        let doc = roxmltree::Document::parse(&ack).unwrap();
        let response = doc.descendants().find(|n| n.has_tag_name((OUTBOUND_NS, "notificationsResponse"))).unwrap();
        let value = response.children().find(|n| n.has_tag_name((OUTBOUND_NS, "Ack"))).and_then(|n| n.text());
        assert_eq!(value, Some("true"));
        assert!(acknowledgement(false).contains("<Ack>false</Ack>"));
    }

    #[test]
    fn only_our_client_in_the_change_origin_is_us() {
        assert!(changed_by_us("com/salesforce/api/soap/62.0;client=TandemSync"));
        assert!(!changed_by_us("com/salesforce/api/soap/62.0;client=TandemSyncX"));
        assert!(!changed_by_us(""));
    }
}
