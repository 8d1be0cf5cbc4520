//! The ConnectWise callback reader (psa-apis.md 1.8), pure: verify a call's
//! `x-content-signature` against the signing key ConnectWise hands out at the payload's
//! `Metadata.key_url`, and read the record it names (`Type`, `ID`, `Action`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use tandem_domain::ledger::ExtVersion;
use tandem_domain::webhook::{Action, Delivery, Notice, WebhookCall, WebhookError, WebhookReader, same_bytes};
use tandem_domain::{RecordKind, System};

/// The header carrying the signature (psa-apis.md 1.8).
pub const SIGNATURE_HEADER: &str = "x-content-signature";

/// ConnectWise's callback calls, read.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reader;

/// The one reader.
pub const READER: Reader = Reader;

/// The fields of a callback body Tandem reads (fixtures `webhook_test_contact-update.json`,
/// `webhook_test_contact-delete.json`); the rest are ignored.
#[derive(Debug, Deserialize)]
struct Callback {
    #[serde(rename = "Action", default)]
    action: Option<String>,
    #[serde(rename = "Type", default)]
    kind: Option<String>,
    #[serde(rename = "ID", default)]
    id: Option<serde_json::Value>,
    /// The record serialised as a JSON string; `null` on a delete.
    #[serde(rename = "Entity", default)]
    entity: Option<String>,
    #[serde(rename = "Metadata", default)]
    metadata: Option<Metadata>,
}

#[derive(Debug, Default, Deserialize)]
struct Metadata {
    #[serde(default)]
    key_url: Option<String>,
}

/// The part of `Entity` that dates the change: `_info.lastUpdated`.
#[derive(Debug, Default, Deserialize)]
struct Entity {
    #[serde(rename = "_info", default)]
    info: Option<super::models::Info>,
}

/// The record kind of a callback `Type`; `None` for the kinds Tandem does not sync
/// (tickets, projects, agreements...).
pub fn kind_of(callback_type: &str) -> Option<RecordKind> {
    match callback_type.trim().to_ascii_lowercase().as_str() {
        "company" => Some(RecordKind::Company),
        "contact" => Some(RecordKind::Contact),
        "opportunity" => Some(RecordKind::Opportunity),
        "activity" => Some(RecordKind::Activity),
        _ => None,
    }
}

/// The action of a callback `Action`: `deleted` is a delete; `added`, `updated` (and,
/// should ConnectWise send another word, that too) mean "read it again", which is safe
/// whatever happened.
pub fn action_of(action: &str) -> Action {
    if action.trim().eq_ignore_ascii_case("deleted") { Action::Deleted } else { Action::Changed }
}

/// base64(HMAC-SHA256(key = SHA-256(signing key), message = body)), the signature ConnectWise
/// sends (psa-apis.md 1.8, S5).
pub fn signature(signing_key: &[u8], body: &[u8]) -> Vec<u8> {
    let key = Sha256::digest(signing_key);
    // An HMAC takes a key of any length; 32 bytes always fit.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else { return Vec::new() };
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// A callback's record id: a number, or digits in a string.
fn id_text(id: &serde_json::Value) -> Option<String> {
    match id {
        serde_json::Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        serde_json::Value::String(s) => {
            let s = s.trim();
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.to_string())
        }
        _ => None,
    }
}

/// When the record last changed, from its `Entity` copy; `None` when absent or unreadable
/// (the copy is only a hint: the flow reads the record itself).
fn changed_at(entity: Option<&str>) -> Option<ExtVersion> {
    let entity: Entity = serde_json::from_str(entity?).ok()?;
    super::mapping::updated_at(&entity.info)
}

impl WebhookReader for Reader {
    fn system(&self) -> System {
        System::ConnectWise
    }

    /// `secret` is the signing key fetched from the call's `Metadata.key_url` ([`parse`]
    /// hands it out). An empty key never verifies.
    ///
    /// [`parse`]: WebhookReader::parse
    fn verify(&self, call: &WebhookCall, secret: &[u8]) -> Result<(), WebhookError> {
        let unauthenticated = |why: &str| Err(WebhookError::Unauthenticated(format!("ConnectWise callback {why}")));
        if secret.is_empty() {
            return unauthenticated("cannot be verified without its signing key");
        }
        let Some(sent) = call.header(SIGNATURE_HEADER) else {
            return unauthenticated(&format!("has no {SIGNATURE_HEADER} header"));
        };
        let Ok(sent) = STANDARD.decode(sent.trim()) else {
            return unauthenticated(&format!("has a {SIGNATURE_HEADER} that is not base64"));
        };
        if same_bytes(&sent, &signature(secret, &call.body)) {
            Ok(())
        } else {
            unauthenticated("signature does not match its body")
        }
    }

    /// The record the callback names, and its `Metadata.key_url`. A `Type` Tandem does not
    /// sync gives no notice. `by_us` is false: the payload's `MemberId` says who made the
    /// change, and could be compared with the connection's API member once Tandem knows its
    /// identifier.
    fn parse(&self, call: &WebhookCall) -> Result<Delivery, WebhookError> {
        let malformed = |why: String| WebhookError::Malformed(format!("ConnectWise callback {why}"));
        let body: serde_json::Value =
            serde_json::from_slice(&call.body).map_err(|e| malformed(format!("body is not JSON: {e}")))?;
        if !body.is_object() {
            return Err(malformed("body is not a JSON object".into()));
        }
        let callback: Callback =
            serde_json::from_value(body).map_err(|e| malformed(format!("is not a callback body: {e}")))?;
        let key_url = callback.metadata.and_then(|m| m.key_url).filter(|u| !u.trim().is_empty());
        let Some(kind) = callback.kind.as_deref().and_then(kind_of) else {
            return Ok(Delivery { notices: Vec::new(), key_url });
        };
        let id = callback.id.as_ref().and_then(id_text).ok_or_else(|| malformed("has no record ID".into()))?;
        let action = callback.action.as_deref().map_or(Action::Changed, action_of);
        let notice = Notice { kind, id, action, at: changed_at(callback.entity.as_deref()), by_us: false };
        Ok(Delivery { notices: vec![notice], key_url })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::collections::BTreeMap;

    const UPDATE: &str = include_str!("../../tests/fixtures/webhook_test_contact-update.json");
    const DELETE: &str = include_str!("../../tests/fixtures/webhook_test_contact-delete.json");
    const KEY: &[u8] = b"a-signing-key-from-key-url";

    /// The signature computed here on its own, from the vendor's description, not with
    /// [`signature`].
    fn signed(body: &str, key: &[u8]) -> WebhookCall {
        let hashed_key = Sha256::digest(key);
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(hashed_key.as_slice()).unwrap();
        hmac::Mac::update(&mut mac, body.as_bytes());
        let sig = STANDARD.encode(hmac::Mac::finalize(mac).into_bytes());
        WebhookCall {
            headers: BTreeMap::from([(SIGNATURE_HEADER.to_string(), sig)]),
            query: BTreeMap::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn unsigned(body: &str) -> WebhookCall {
        WebhookCall { body: body.as_bytes().to_vec(), ..Default::default() }
    }

    #[test]
    fn a_call_signed_with_the_signing_key_verifies() {
        assert_eq!(READER.verify(&signed(UPDATE, KEY), KEY), Ok(()));
    }

    #[test]
    fn a_changed_body_fails_verification() {
        let mut call = signed(UPDATE, KEY);
        call.body = UPDATE.replace("57961", "57962").into_bytes();
        assert!(matches!(READER.verify(&call, KEY), Err(WebhookError::Unauthenticated(_))));
    }

    #[test]
    fn a_wrong_key_fails_verification() {
        let call = signed(UPDATE, KEY);
        assert!(matches!(READER.verify(&call, b"another-key"), Err(WebhookError::Unauthenticated(_))));
        assert!(matches!(READER.verify(&call, b""), Err(WebhookError::Unauthenticated(_))));
    }

    #[test]
    fn a_missing_or_unreadable_signature_fails_verification() {
        assert!(matches!(READER.verify(&unsigned(UPDATE), KEY), Err(WebhookError::Unauthenticated(_))));
        let mut call = signed(UPDATE, KEY);
        call.headers.insert(SIGNATURE_HEADER.into(), "not base64 !".into());
        assert!(matches!(READER.verify(&call, KEY), Err(WebhookError::Unauthenticated(_))));
    }

    #[test]
    fn the_update_sample_is_a_changed_contact_with_its_key_url_and_time() {
        let delivery = READER.parse(&unsigned(UPDATE)).unwrap();
        let [notice] = delivery.notices.as_slice() else { panic!("{delivery:?}") };
        assert_eq!((notice.kind, notice.id.as_str(), notice.action), (RecordKind::Contact, "57961", Action::Changed));
        assert_eq!(notice.at.as_ref().map(ExtVersion::as_str), Some("2026-06-09T21:59:49Z"));
        assert!(!notice.by_us);
        assert_eq!(
            delivery.key_url.as_deref(),
            Some(
                "https://sandbox-na.myconnectwise.net/v2025_1//system/callbackkey/index.rails?companyName=Cobalt&id=e17e6674-42f6-4105-9cff-4cd6cb4e62e8"
            )
        );
    }

    #[test]
    fn the_delete_sample_is_a_deleted_contact_without_a_time() {
        let delivery = READER.parse(&unsigned(DELETE)).unwrap();
        let [notice] = delivery.notices.as_slice() else { panic!("{delivery:?}") };
        assert_eq!((notice.kind, notice.id.as_str(), notice.action), (RecordKind::Contact, "57962", Action::Deleted));
        assert_eq!(notice.at, None);
        assert!(delivery.key_url.is_some());
    }

    #[test]
    fn each_synced_type_and_action_is_read() {
        for (kind_text, kind) in [
            ("company", RecordKind::Company),
            ("Contact", RecordKind::Contact),
            ("opportunity", RecordKind::Opportunity),
            ("activity", RecordKind::Activity),
        ] {
            for (action_text, action) in
                [("added", Action::Changed), ("updated", Action::Changed), ("deleted", Action::Deleted)]
            {
                let body =
                    format!(r#"{{"Action": "{action_text}", "Type": "{kind_text}", "ID": "42", "Entity": null}}"#);
                let delivery = READER.parse(&unsigned(&body)).unwrap();
                assert_eq!(
                    delivery.notices,
                    [Notice { kind, id: "42".into(), action, at: None, by_us: false }],
                    "{body}"
                );
            }
        }
    }

    #[test]
    fn a_type_tandem_does_not_sync_is_an_empty_delivery() {
        let body = UPDATE.replace(r#""Type": "contact""#, r#""Type": "ticket""#);
        let delivery = READER.parse(&unsigned(&body)).unwrap();
        assert!(delivery.notices.is_empty());
    }

    #[test]
    fn malformed_json_or_a_synced_type_without_an_id_is_malformed() {
        assert!(matches!(READER.parse(&unsigned("{not json")), Err(WebhookError::Malformed(_))));
        assert!(matches!(READER.parse(&unsigned(r#"["a"]"#)), Err(WebhookError::Malformed(_))));
        let no_id = r#"{"Action": "updated", "Type": "company"}"#;
        assert!(matches!(READER.parse(&unsigned(no_id)), Err(WebhookError::Malformed(_))));
        let bad_id = r#"{"Action": "updated", "Type": "company", "ID": "../1"}"#;
        assert!(matches!(READER.parse(&unsigned(bad_id)), Err(WebhookError::Malformed(_))));
    }

    #[test]
    fn an_unreadable_entity_copy_leaves_the_time_unknown() {
        let body = r#"{"Action": "updated", "Type": "company", "ID": 5, "Entity": "{not json"}"#;
        let delivery = READER.parse(&unsigned(body)).unwrap();
        assert_eq!(delivery.notices[0].at, None);
    }
}
