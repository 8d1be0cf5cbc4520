//! The Syncro webhook reader (pure): verify a call by the secret token in its URL, parse the
//! record it names (psa-apis.md 3.6).
//!
//! Syncro has no webhook-registration API and documents no signature: an administrator
//! points a notification set at the URL Tandem gives, which carries a per-connection secret
//! token (`?token=`), compared here in constant time.
//!
//! The payload is UNCONFIRMED (psa-apis.md 3.6: "commonly an `attributes` object with the
//! record and a `link`"). Read here as the most plausible shape, and kept in the constants
//! and [`kind_of_link`] below so it is easy to change:
//!
//! ```json
//! { "event": "Customer Updated",
//!   "link": "https://acme.syncromsp.com/customers/123",
//!   "attributes": { "id": 123, "updated_at": "2024-05-01T10:00:00.000Z", ... } }
//! ```
//!
//! The record's kind comes from the last `/{plural}/{id}` pair of the `link` path
//! (`customers`, `contacts`, `leads`); its id from `attributes.id` (else the link's id); a
//! delete from an `event` name mentioning a delete (the event names are UNCONFIRMED too).
//! Syncro says nothing of who made a change, so no notice is marked as ours.

use serde_json::Value;
use tandem_domain::ledger::ExtVersion;
use tandem_domain::webhook::{Action, Delivery, Notice, WebhookCall, WebhookError, WebhookReader, same_bytes};
use tandem_domain::{RecordKind, System};

/// The query parameter of the webhook URL carrying the connection's secret token.
pub const TOKEN_PARAM: &str = "token";
/// The payload key holding the record (UNCONFIRMED).
pub const RECORD_KEY: &str = "attributes";
/// The payload key holding the record's URL (UNCONFIRMED).
pub const LINK_KEY: &str = "link";
/// The payload key naming the event (UNCONFIRMED).
pub const EVENT_KEY: &str = "event";
/// The path segments of a link, by the kind of record they name.
pub const LINK_KINDS: &[(&str, RecordKind)] =
    &[("customers", RecordKind::Company), ("contacts", RecordKind::Contact), ("leads", RecordKind::Opportunity)];

/// Syncro's webhook calls, read.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reader;

/// The one reader.
pub const READER: Reader = Reader;

fn malformed(why: impl Into<String>) -> WebhookError {
    WebhookError::Malformed(why.into())
}

/// The last `/{plural}/{id}` pair of a link's path whose plural Tandem syncs, as (the
/// segment, its kind, the id); `None` when the link names no such record (a ticket, an
/// invoice...). Works for UI links and `/api/v1/` links alike.
pub fn kind_of_link(link: &str) -> Option<(&'static str, RecordKind, String)> {
    let path = url::Url::parse(link).map(|u| u.path().to_string()).unwrap_or_else(|_| link.to_string());
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    segments.windows(2).rev().find_map(|pair| {
        let (plural, kind) = LINK_KINDS.iter().find(|(p, _)| *p == pair[0])?;
        let id = pair[1];
        (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then(|| (*plural, *kind, id.to_string()))
    })
}

/// The notice of one payload object; `None` for a record Tandem does not sync.
fn notice(payload: &Value) -> Result<Option<Notice>, WebhookError> {
    let record = payload
        .get(RECORD_KEY)
        .filter(|r| r.is_object())
        .ok_or_else(|| malformed(format!("the Syncro payload has no \"{RECORD_KEY}\" object")))?;
    let link = payload
        .get(LINK_KEY)
        .and_then(Value::as_str)
        .ok_or_else(|| malformed(format!("the Syncro payload has no \"{LINK_KEY}\" naming the record")))?;
    let Some((_, kind, link_id)) = kind_of_link(link) else {
        return Ok(None);
    };
    let id = match record.get("id") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        _ => link_id,
    };
    let deleted =
        payload.get(EVENT_KEY).and_then(Value::as_str).is_some_and(|e| e.to_ascii_lowercase().contains("delete"));
    let at = record.get("updated_at").and_then(Value::as_str).filter(|s| !s.trim().is_empty()).map(ExtVersion::from);
    let action = if deleted { Action::Deleted } else { Action::Changed };
    Ok(Some(Notice { kind, id, action, at, by_us: false }))
}

impl WebhookReader for Reader {
    fn system(&self) -> System {
        System::Syncro
    }

    /// The URL's `token` must equal the connection's secret (constant time). An empty
    /// secret verifies nothing: a connection without one refuses every call.
    fn verify(&self, call: &WebhookCall, secret: &[u8]) -> Result<(), WebhookError> {
        if secret.is_empty() {
            return Err(WebhookError::Unauthenticated("no Syncro webhook token is configured".into()));
        }
        let token = call
            .query
            .get(TOKEN_PARAM)
            .ok_or_else(|| WebhookError::Unauthenticated(format!("the call has no {TOKEN_PARAM} in its URL")))?;
        if same_bytes(token.as_bytes(), secret) {
            Ok(())
        } else {
            Err(WebhookError::Unauthenticated(format!("the call's {TOKEN_PARAM} is not this connection's")))
        }
    }

    fn parse(&self, call: &WebhookCall) -> Result<Delivery, WebhookError> {
        let payload: Value = serde_json::from_slice(&call.body)
            .map_err(|e| malformed(format!("the Syncro payload is not JSON: {e}")))?;
        if !payload.is_object() {
            return Err(malformed("the Syncro payload is not a JSON object"));
        }
        Ok(Delivery { notices: notice(&payload)?.into_iter().collect(), key_url: None })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn call(token: Option<&str>, body: &str) -> WebhookCall {
        WebhookCall {
            query: token.map(|t| BTreeMap::from([(TOKEN_PARAM.to_string(), t.to_string())])).unwrap_or_default(),
            body: body.as_bytes().to_vec(),
            ..WebhookCall::default()
        }
    }

    const CUSTOMER: &str = r#"{
        "link": "https://acme.syncromsp.com/customers/1234",
        "attributes": {"id": 1234, "business_name": "Acme", "updated_at": "2024-05-01T10:00:00.053Z"}
    }"#;

    #[test]
    fn the_right_token_verifies_and_a_wrong_or_missing_one_does_not() {
        assert_eq!(READER.verify(&call(Some("s3cret-token"), CUSTOMER), b"s3cret-token"), Ok(()));
        for token in [Some("s3cret-tokeN"), Some(""), Some("s3cret-token-and-more"), None] {
            let err = READER.verify(&call(token, CUSTOMER), b"s3cret-token").unwrap_err();
            assert!(matches!(err, WebhookError::Unauthenticated(_)), "{token:?}");
            assert!(!err.to_string().contains("s3cret"), "the secret never appears: {err}");
        }
    }

    #[test]
    fn a_connection_without_a_token_refuses_every_call() {
        let err = READER.verify(&call(Some(""), CUSTOMER), b"").unwrap_err();
        assert!(matches!(err, WebhookError::Unauthenticated(_)));
    }

    #[test]
    fn a_customer_payload_is_a_changed_company_at_its_updated_at() {
        let delivery = READER.parse(&call(None, CUSTOMER)).unwrap();
        assert_eq!(
            delivery.notices,
            [Notice {
                kind: RecordKind::Company,
                id: "1234".into(),
                action: Action::Changed,
                at: Some(ExtVersion::from("2024-05-01T10:00:00.053Z")),
                by_us: false,
            }]
        );
        assert_eq!(delivery.key_url, None);
    }

    #[test]
    fn contacts_and_leads_are_told_by_their_link_and_a_deleted_event_is_a_delete() {
        let contact = r#"{"event": "Contact Deleted", "link": "https://acme.syncromsp.com/customers/9/contacts/77",
            "attributes": {"id": 77, "name": "Ada Quill"}}"#;
        let n = &READER.parse(&call(None, contact)).unwrap().notices[0];
        assert_eq!((n.kind, n.id.as_str(), n.action), (RecordKind::Contact, "77", Action::Deleted));
        let lead = r#"{"link": "https://acme.syncromsp.com/api/v1/leads/5", "attributes": {"status": "Won"}}"#;
        let n = &READER.parse(&call(None, lead)).unwrap().notices[0];
        assert_eq!(
            (n.kind, n.id.as_str(), n.action, n.at.as_ref()),
            (RecordKind::Opportunity, "5", Action::Changed, None)
        );
    }

    #[test]
    fn a_ticket_payload_is_an_empty_delivery() {
        let ticket =
            r#"{"link": "https://acme.syncromsp.com/tickets/3001", "attributes": {"id": 3001, "subject": "Printer"}}"#;
        assert_eq!(READER.parse(&call(None, ticket)).unwrap(), Delivery::default());
    }

    #[test]
    fn a_body_that_is_not_a_syncro_payload_is_malformed() {
        for body in [
            "",
            "not json",
            "[1, 2]",
            r#"{"link": "https://a.syncromsp.com/customers/1"}"#,
            r#"{"attributes": {"id": 1}}"#,
        ] {
            let err = READER.parse(&call(None, body)).unwrap_err();
            assert!(matches!(err, WebhookError::Malformed(_)), "{body}: {err:?}");
        }
    }

    #[test]
    fn a_link_names_the_last_record_pair_of_its_path() {
        assert_eq!(
            kind_of_link("/customers/1/contacts/2").map(|(_, k, id)| (k, id)),
            Some((RecordKind::Contact, "2".into()))
        );
        assert_eq!(kind_of_link("https://x.syncromsp.com/leads/abc"), None);
        assert_eq!(kind_of_link("https://x.syncromsp.com/invoices/4"), None);
    }
}
