//! The failure event (`record.failed`): what is published when one record operation fails,
//! carrying what a notification needs (tenant, system, direction, the record, the error,
//! when, and a link back to its log entry). Its JSON Schema is
//! `docs/events/sync-failed.schema.json` (version [`VERSION`]); the adapters publish it as
//! it serialises (EventBridge: the event's `detail`).

use serde::{Deserialize, Serialize};

use crate::ids::{RecordId, RecordKind, System, TenantId};
use crate::log::{Direction, LogEntry, Outcome};
use crate::normalise::Timestamp;
use crate::ports::ErrorKind;
use crate::usecases::Tuning;

/// The version of the event's shape (its `version` field).
pub const VERSION: u32 = 1;
/// The event's type (EventBridge `detail-type`).
pub const TYPE: &str = "record.failed";

/// One failed record operation, as published.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureEvent {
    /// [`VERSION`].
    pub version: u32,
    /// [`TYPE`].
    #[serde(rename = "type")]
    pub event_type: String,
    pub tenant: TenantId,
    pub system: System,
    pub direction: Direction,
    pub record: EventRecord,
    pub error: EventError,
    /// When the operation failed.
    pub at: Timestamp,
    /// The sync-log entry's id (`GET /logs/{id}`, `POST /logs/{id}/retry`).
    pub log_id: String,
    pub link: EventLink,
}

/// The record the operation was about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    pub kind: RecordKind,
    /// The CRM record's id, when there is one.
    pub crm_id: Option<RecordId>,
    /// The external system's id, when there is one.
    pub external_id: Option<String>,
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventError {
    /// The external system's failure class, when the system reported it (`None` for a
    /// record Tandem itself refused, say for a value with no counterpart there).
    pub kind: Option<ErrorKind>,
    /// The vendor's own error code, if it gave one.
    pub code: Option<String>,
    /// The HTTP status the system answered, if any.
    pub status: Option<u16>,
    /// The reason, in the system's own words where it gave some.
    pub message: String,
}

/// Where the failure's log entry is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLink {
    /// `/logs/{id}` on Tandem's API (the id percent-encoded).
    pub path: String,
    /// The whole URL, when Tandem knows its public address.
    pub url: Option<String>,
}

impl FailureEvent {
    /// The event of the failed operation `entry` logged; `tuning.public_url` gives the
    /// link's URL.
    pub fn of(entry: &LogEntry, tuning: &Tuning) -> Self {
        let message = match &entry.outcome {
            Outcome::Failed(why) => why.clone(),
            other => other.key(),
        };
        let path = log_path(&entry.id);
        let url = tuning.public_url.as_deref().map(|base| format!("{}{path}", base.trim_end_matches('/')));
        Self {
            version: VERSION,
            event_type: TYPE.to_string(),
            tenant: entry.tenant.clone(),
            system: entry.system,
            direction: entry.direction,
            record: EventRecord {
                kind: entry.object,
                crm_id: entry.crm_id.clone(),
                external_id: entry.external_id.clone(),
            },
            error: EventError {
                kind: entry.error.as_ref().map(|e| e.kind),
                code: entry.error.as_ref().and_then(|e| e.code.clone()),
                status: entry.error.as_ref().and_then(|e| e.status),
                message,
            },
            at: entry.at,
            log_id: entry.id.clone(),
            link: EventLink { path, url },
        }
    }
}

/// The API path of the log entry `id`: `/logs/` and the id with every byte outside
/// RFC 3986's unreserved characters and `:` percent-encoded.
pub fn log_path(id: &str) -> String {
    let mut out = String::from("/logs/");
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A path segment with its `%XX` escapes decoded (what [`log_path`] encoded); `None` when
/// an escape is malformed or the bytes are not UTF-8.
pub fn decode_segment(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::LogError;

    fn failed() -> LogEntry {
        let mut e = LogEntry::of(
            "sync:halo:company:42:2026-01-01T00:00:00+00:00:ours".into(),
            &TenantId::parse("acme").unwrap(),
            Timestamp::parse("2026-01-02T03:04:05Z").unwrap(),
            System::Halo,
            Direction::SyncIn,
            RecordKind::Company,
            Outcome::Failed("Name is required".into()),
        );
        e.external_id = Some("42".into());
        e.error = Some(LogError { kind: ErrorKind::Invalid, code: Some("E_NAME".into()), status: Some(400) });
        e
    }

    #[test]
    fn an_event_carries_the_record_the_error_and_a_link_back_to_its_log_entry() {
        let tuning = Tuning { public_url: Some("https://api.example.com/".into()), ..Tuning::default() };
        let event = FailureEvent::of(&failed(), &tuning);
        assert_eq!((event.tenant.as_str(), event.system, event.direction), ("acme", System::Halo, Direction::SyncIn));
        assert_eq!(event.record.external_id.as_deref(), Some("42"));
        assert_eq!(
            (event.error.kind, event.error.code.as_deref(), event.error.status, event.error.message.as_str()),
            (Some(ErrorKind::Invalid), Some("E_NAME"), Some(400), "Name is required")
        );
        assert_eq!(event.link.path, "/logs/sync:halo:company:42:2026-01-01T00:00:00%2B00:00:ours");
        assert_eq!(event.link.url.as_deref(), Some(format!("https://api.example.com{}", event.link.path).as_str()));
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!((json["type"].as_str(), json["version"].as_u64()), (Some("record.failed"), Some(1)));
        let without = FailureEvent::of(&failed(), &Tuning::default());
        assert_eq!(without.link.url, None);
    }

    #[test]
    fn a_log_path_decodes_back_to_its_id() {
        for id in ["j-1:users:17", "a/b c+d%e", "sync:x:é"] {
            let path = log_path(id);
            let segment = path.strip_prefix("/logs/").unwrap();
            assert!(!segment.contains('/') && !segment.contains(' '), "{segment}");
            assert_eq!(decode_segment(segment).as_deref(), Some(id));
        }
        assert_eq!(decode_segment("%zz"), None);
        assert_eq!(decode_segment("%4"), None);
    }
}
