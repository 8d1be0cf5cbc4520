//! The HaloPSA webhook reader (psa-apis.md 2.6), pure. Halo signs nothing it sends out: a
//! call proves itself with what the webhook is configured to send, here the connection's
//! secret as a bearer token or as the password of basic authentication (Halo's
//! `authentication_type` 2 or 1). The payload's shape is UNCONFIRMED (2.6: "the triggering
//! object ... shape UNCONFIRMED"); the plausible one read here is set out in [`Shape`], so a
//! real capture (`WebhookEvent.requestbody`) changes that one place.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use tandem_domain::ledger::ExtVersion;
use tandem_domain::webhook::{Action, Delivery, Notice, WebhookCall, WebhookError, WebhookReader, same_bytes};
use tandem_domain::{RecordKind, System};

/// HaloPSA's webhook calls, read.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reader;

/// The one reader.
pub const READER: Reader = Reader;

/// The payload as read (UNCONFIRMED, chosen as the most plausible; change here):
///
/// - The kind is not in Halo's payload in any documented form, so Tandem says it itself:
///   each webhook it registers points at a URL carrying `?kind=` [`Shape::KIND_PARAM`] with
///   one of `client`, `user`, `opportunity`, `note` (a CRM note; `action` for a ticket
///   action). Any other value is a kind Tandem does not sync.
/// - The body is the triggering object (psa-apis.md 2.6 "Default payload"), or that object
///   under one key (`{"client": {...}}`, H3-style envelopes); its `id` names the record.
/// - A deleted record says so with `"deleted": true` (tickets and opportunities carry that
///   flag, psa-apis.md 2.8), or the webhook URL carries `&event=deleted`.
/// - The last-update field of the kind dates the change when present.
pub struct Shape;

impl Shape {
    /// The query parameter naming the kind.
    pub const KIND_PARAM: &'static str = "kind";
    /// The query parameter naming the event, when the webhook is one for deletes.
    pub const EVENT_PARAM: &'static str = "event";

    /// The record kind, the prefix of its Tandem id, and the field dating a change, of a
    /// `kind` parameter value; `None` for the kinds Tandem does not sync.
    pub fn kind(value: &str) -> Option<(RecordKind, &'static str, &'static str)> {
        match value.trim().to_ascii_lowercase().as_str() {
            "client" => Some((RecordKind::Company, "", "alastupdate")),
            "user" => Some((RecordKind::Contact, "", "ulastupdate")),
            "opportunity" => Some((RecordKind::Opportunity, "", "last_update")),
            "note" => Some((RecordKind::Activity, "note-", "datetime")),
            "action" => Some((RecordKind::Activity, "action-", "last_updated")),
            _ => None,
        }
    }
}

/// The triggering object of a body: the body itself when it has an `id`, else the one
/// object it wraps.
fn object(body: &Value) -> Option<&serde_json::Map<String, Value>> {
    let map = body.as_object()?;
    if map.contains_key("id") {
        return Some(map);
    }
    match map.values().filter_map(Value::as_object).collect::<Vec<_>>().as_slice() {
        [inner] => Some(inner),
        _ => None,
    }
}

/// A positive record id, as a number or digits in a string.
fn id_text(id: &Value) -> Option<String> {
    let text = match id {
        Value::Number(n) => n.as_u64()?.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    let ok = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && text.bytes().any(|b| b != b'0');
    ok.then_some(text)
}

/// The secret a call carries: the bearer token, or the password of basic authentication.
fn presented(call: &WebhookCall) -> Option<Vec<u8>> {
    let value = call.header("authorization")?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().as_bytes().to_vec());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let pair = STANDARD.decode(rest.trim()).ok()?;
    let colon = pair.iter().position(|b| *b == b':')?;
    pair.get(colon + 1..).map(<[u8]>::to_vec)
}

impl WebhookReader for Reader {
    fn system(&self) -> System {
        System::Halo
    }

    /// The call must carry the connection's webhook secret (`Authorization: Bearer
    /// <secret>`, or basic authentication with the secret as its password, any user name),
    /// compared in constant time. An empty secret never verifies.
    fn verify(&self, call: &WebhookCall, secret: &[u8]) -> Result<(), WebhookError> {
        let unauthenticated = |why: &str| Err(WebhookError::Unauthenticated(format!("HaloPSA webhook {why}")));
        if secret.is_empty() {
            return unauthenticated("cannot be verified without the connection's secret");
        }
        match presented(call) {
            None => unauthenticated("carries no bearer token or basic authentication"),
            Some(sent) if same_bytes(&sent, secret) => Ok(()),
            Some(_) => unauthenticated("carries the wrong secret"),
        }
    }

    /// The record the call names, read as [`Shape`] sets out. Halo hands out no key, so
    /// `key_url` is `None`; it marks nothing as made by our API user, so `by_us` is false.
    fn parse(&self, call: &WebhookCall) -> Result<Delivery, WebhookError> {
        let malformed = |why: String| WebhookError::Malformed(format!("HaloPSA webhook {why}"));
        let body: Value =
            serde_json::from_slice(&call.body).map_err(|e| malformed(format!("body is not JSON: {e}")))?;
        let kind = call.query.get(Shape::KIND_PARAM).ok_or_else(|| {
            malformed(format!("URL has no ?{}= naming the kind of record (see Shape)", Shape::KIND_PARAM))
        })?;
        let Some((kind, prefix, dated_by)) = Shape::kind(kind) else {
            return Ok(Delivery::default());
        };
        let record = object(&body).ok_or_else(|| malformed("body is not the object that changed".into()))?;
        let id = record.get("id").and_then(id_text).ok_or_else(|| malformed("object has no record id".into()))?;
        let deleted = record.get("deleted").and_then(Value::as_bool) == Some(true)
            || call.query.get(Shape::EVENT_PARAM).is_some_and(|e| e.eq_ignore_ascii_case("deleted"));
        let at = record.get(dated_by).and_then(Value::as_str).filter(|s| !s.trim().is_empty()).map(ExtVersion::from);
        let action = if deleted { Action::Deleted } else { Action::Changed };
        let notice = Notice { kind, id: format!("{prefix}{id}"), action, at, by_us: false };
        Ok(Delivery { notices: vec![notice], key_url: None })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const SECRET: &[u8] = b"per-connection-webhook-secret";

    fn call(kind: Option<&str>, body: &str, authorization: Option<String>) -> WebhookCall {
        WebhookCall {
            headers: authorization.map(|a| ("authorization".to_string(), a)).into_iter().collect(),
            query: kind.map(|k| (Shape::KIND_PARAM.to_string(), k.to_string())).into_iter().collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn basic(user: &str, password: &[u8]) -> String {
        let mut pair = format!("{user}:").into_bytes();
        pair.extend_from_slice(password);
        format!("Basic {}", STANDARD.encode(pair))
    }

    #[test]
    fn the_secret_as_a_bearer_token_or_basic_password_verifies() {
        let bearer = call(None, "{}", Some(format!("Bearer {}", String::from_utf8_lossy(SECRET))));
        assert_eq!(READER.verify(&bearer, SECRET), Ok(()));
        assert_eq!(READER.verify(&call(None, "{}", Some(basic("halo", SECRET))), SECRET), Ok(()));
    }

    #[test]
    fn a_wrong_or_missing_secret_fails_verification() {
        let wrong = call(None, "{}", Some("Bearer something-else".into()));
        assert!(matches!(READER.verify(&wrong, SECRET), Err(WebhookError::Unauthenticated(_))));
        let wrong_password = call(None, "{}", Some(basic("halo", b"guess")));
        assert!(matches!(READER.verify(&wrong_password, SECRET), Err(WebhookError::Unauthenticated(_))));
        assert!(matches!(READER.verify(&call(None, "{}", None), SECRET), Err(WebhookError::Unauthenticated(_))));
        let other_scheme = call(None, "{}", Some(format!("Token {}", String::from_utf8_lossy(SECRET))));
        assert!(matches!(READER.verify(&other_scheme, SECRET), Err(WebhookError::Unauthenticated(_))));
    }

    #[test]
    fn an_empty_secret_never_verifies() {
        let empty_bearer = call(None, "{}", Some("Bearer ".into()));
        assert!(matches!(READER.verify(&empty_bearer, b""), Err(WebhookError::Unauthenticated(_))));
    }

    #[test]
    fn a_changed_client_is_a_changed_company_dated_by_its_last_update() {
        let body = r#"{"id": 42, "name": "Acme", "alastupdate": "2025-03-04T05:06:07.123"}"#;
        let delivery = READER.parse(&call(Some("client"), body, None)).unwrap();
        assert_eq!(delivery.key_url, None);
        let [n] = delivery.notices.as_slice() else { panic!("{delivery:?}") };
        assert_eq!((n.kind, n.id.as_str(), n.action, n.by_us), (RecordKind::Company, "42", Action::Changed, false));
        assert_eq!(n.at.as_ref().map(ExtVersion::as_str), Some("2025-03-04T05:06:07.123"));
    }

    #[test]
    fn each_synced_kind_gets_its_tandem_id() {
        for (kind, record_kind, id) in [
            ("user", RecordKind::Contact, "7"),
            ("opportunity", RecordKind::Opportunity, "7"),
            ("note", RecordKind::Activity, "note-7"),
            ("action", RecordKind::Activity, "action-7"),
        ] {
            let delivery = READER.parse(&call(Some(kind), r#"{"id": "7"}"#, None)).unwrap();
            assert_eq!((delivery.notices[0].kind, delivery.notices[0].id.as_str()), (record_kind, id), "{kind}");
        }
    }

    #[test]
    fn a_wrapped_object_and_a_deleted_one_are_read() {
        let wrapped = r#"{"event": "x", "ticket": {"id": 9, "deleted": true}}"#;
        let n = &READER.parse(&call(Some("opportunity"), wrapped, None)).unwrap().notices[0];
        assert_eq!((n.id.as_str(), n.action), ("9", Action::Deleted));
        let mut delete_hook = call(Some("client"), r#"{"id": 3}"#, None);
        delete_hook.query.insert(Shape::EVENT_PARAM.into(), "deleted".into());
        assert_eq!(READER.parse(&delete_hook).unwrap().notices[0].action, Action::Deleted);
    }

    #[test]
    fn a_kind_tandem_does_not_sync_is_an_empty_delivery() {
        let delivery = READER.parse(&call(Some("asset"), r#"{"id": 1}"#, None)).unwrap();
        assert_eq!(delivery, Delivery::default());
    }

    #[test]
    fn malformed_json_a_missing_kind_or_id_is_malformed() {
        for bad in [
            call(Some("client"), "{not json", None),
            call(None, r#"{"id": 1}"#, None),
            call(Some("client"), r#"{"name": "no id"}"#, None),
            call(Some("client"), r#"{"id": -4}"#, None),
            call(Some("client"), r#"{"id": "1/../2"}"#, None),
            call(Some("client"), r#"[1, 2]"#, None),
        ] {
            assert!(matches!(READER.parse(&bad), Err(WebhookError::Malformed(_))), "{:?}", bad.body);
        }
    }
}
