//! Auto-sync's own types (PRODUCT.md section 6): a connection's webhook endpoint, the work
//! messages of sync in (one record a webhook named; one page of a scheduled poll; one page
//! of an id reconciliation) and of sync out (one CRM change to push), the poll's overlap,
//! and the mass-delete guard.
//!
//! # The poll's cursor
//!
//! A poll reads each kind "updated at or after `since`" page by page, and `since` overlaps
//! the previous poll: it is the previous poll's **start** (by our clock) less
//! [`POLL_OVERLAP`]. Records sharing one timestamp across a page boundary, records updated
//! while the poll ran, and a vendor clock somewhat behind ours are all read again rather
//! than missed; reading a record again changes nothing, because the ledger holds the
//! version last taken in (an equal version is `unchanged`) and the log id of an
//! operation is made of the record's id and version (a re-read writes no second entry).
//! The watermark is never a record's own timestamp, so a record updated mid-poll to a
//! time before another record's is not skipped.

use serde::{Deserialize, Serialize};

use crate::external::Cursor;
use crate::ids::{RecordId, RecordKind, Stage, System, TenantId};
use crate::ledger::ExtVersion;
use crate::normalise::Timestamp;

/// How far a poll reads back before the previous poll's start: clock skew between the
/// vendor and us, and records committed late with earlier stamps, up to this much.
pub const POLL_OVERLAP_SECONDS: i64 = 300;
/// [`POLL_OVERLAP_SECONDS`] as documented.
pub const POLL_OVERLAP: std::time::Duration = std::time::Duration::from_secs(POLL_OVERLAP_SECONDS as u64);

/// How often a stage's id reconciliation runs by default: it reads every record of the
/// kind (as many requests as an import's read of the stage), so once a day.
pub const DEFAULT_SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(86_400);

/// The mass-delete guard: a reconciliation that finds more linked records missing than
/// this many, or than a tenth of the linked ones if that is more, acts on none of them.
/// A listing cut short (a vendor answering an empty page, a permission taken away, a
/// filter changed) looks exactly like a mass delete; a person deleting a tenth of their
/// companies at once is rare enough to be confirmed by hand (the webhooks of such deletes
/// still act, one record at a time).
pub const MASS_DELETE_FLOOR: usize = 10;

/// Whether a reconciliation that finds `missing` of `linked` records gone is held back
/// by the mass-delete guard.
pub fn mass_delete_held_back(linked: usize, missing: usize) -> bool {
    missing > MASS_DELETE_FLOOR.max(linked / 10)
}

/// A connection's webhook endpoint: `POST /webhooks/{system}/{key}`. The key only routes a
/// call to its connection (it is random, so unguessable, but not the proof): each call
/// proves itself with the connection's webhook secret, kept in the secret store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    /// The connection key in the URL.
    pub key: String,
    /// Where the system was told to call it (registered through its API), or `None` when
    /// a person sets it up in the system by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<String>,
}

impl WebhookEndpoint {
    /// A new endpoint with a fresh random key.
    pub fn new() -> Self {
        Self { key: uuid::Uuid::new_v4().simple().to_string(), registration: None }
    }

    /// The path the system calls.
    pub fn path(&self, system: System) -> String {
        format!("/webhooks/{system}/{}", self.key)
    }
}

impl Default for WebhookEndpoint {
    fn default() -> Self {
        Self::new()
    }
}

/// A fresh webhook secret: 256 random bits, hex.
pub fn new_webhook_secret() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// The work message of one record a webhook named (kind `sync_record`): the worker reads
/// the record's current state from the system and applies it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncMessage {
    pub tenant: TenantId,
    pub system: System,
    /// The record's kind, written `record_kind`: the work envelope's own `kind` (the
    /// message kind, `sync_record`) sits beside these fields in one JSON object.
    pub record_kind: RecordKind,
    pub external_id: String,
    /// The notice said the record was deleted.
    #[serde(default)]
    pub deleted: bool,
    /// When the system says the change happened, if it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<ExtVersion>,
    /// When the intake accepted the call (for latency figures).
    pub received_at: Timestamp,
    /// The digest of the webhook call that named the record, if one did: two calls about
    /// one record under one whole-second stamp are two changes, not one sent twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<String>,
    /// The system marks the change as made by Tandem's own API user (Salesforce's
    /// `changeOrigin`): a hint only (see `usecases::sync_in::apply_notice`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub by_us: bool,
    /// Set by `POST /logs/{id}/retry` only: the failed log entry's retry token
    /// (`usecases::retry`). The record is taken in whether or not inbound sync is on (a
    /// person asked), and logged under its own id, so an unchanged record is applied again
    /// rather than found done under the failed entry's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<String>,
}

/// The work message of one CRM change to push to one system (kind `sync_out`): the
/// worker reads the record's current state and the link's ledger and decides what to send
/// (see `usecases::sync_out`); the message names the change, never its values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncOutMessage {
    pub tenant: TenantId,
    pub system: System,
    /// The record's kind, written `record_kind` (beside the envelope's own `kind`).
    pub record_kind: RecordKind,
    pub record: RecordId,
    /// The outbox change this push is for (`KIND-ID-vVERSION`): names the push in the
    /// log, so a redelivered message is done once.
    pub change: String,
    /// The change deleted the record: the system's id of it, as the record was linked
    /// (the record itself is gone by the time the worker runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<String>,
    /// Set by `POST /logs/{id}/retry` only (then `change` is the retry token): the record
    /// is pushed whether or not outbound sync is on (a person asked for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<String>,
}

/// The work message of one page of a scheduled poll (kind `sync_poll`): `stage` read from
/// `cursor` (whose `since` is the overlapping watermark); `started_at` is the poll's start,
/// the next poll's watermark once every stage is done.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollMessage {
    pub tenant: TenantId,
    pub system: System,
    pub stage: Stage,
    pub cursor: Cursor,
    pub started_at: Timestamp,
    /// Salesforce's field-level mode: an initial import, which reads every row (no
    /// watermark) and brings in those not linked yet that meet the criteria.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub import: bool,
}

impl PollMessage {
    /// The poll's id: its connection and start, the same for each of its pages. The start
    /// is taken to the nanosecond: the id is in every page's deduplication id, so two polls
    /// started within one second (the schedule and a manual poll, or two manual ones) must
    /// not share it, or the second one's pages are dropped by the queue as repeats and the
    /// changes made since the first are not read until a later poll.
    pub fn poll_id(&self) -> String {
        format!("{}:{}:{}", self.tenant, self.system, self.started_at.datetime().unix_timestamp_nanos())
    }
}

/// The work message of one page of a stage's id reconciliation (kind `sync_sweep`): the
/// ids on each page are kept aside; after the last page, the linked records whose ids were
/// not listed are each checked with the system (see `usecases::sweep`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepMessage {
    pub tenant: TenantId,
    pub system: System,
    pub stage: Stage,
    pub cursor: Cursor,
    /// When the reconciliation started: names it, and is when it counts as done.
    pub started_at: Timestamp,
    /// A person confirmed the deletes it finds, however many: the mass-delete guard does
    /// not hold them back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirmed: bool,
}

impl SweepMessage {
    /// The reconciliation's id, the same for each of its pages (to the nanosecond, as a
    /// poll's).
    pub fn sweep_id(&self) -> String {
        format!("{}", self.started_at.datetime().unix_timestamp_nanos())
    }
}

/// What a stage's last id reconciliation found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepReport {
    /// When it started.
    pub at: Timestamp,
    /// Ids the system listed.
    pub listed: usize,
    /// Records linked with the system.
    pub linked: usize,
    /// Linked records whose ids were not listed.
    pub missing: usize,
    /// The mass-delete guard held them back: none was checked or acted on.
    pub held_back: bool,
    /// A person had confirmed the deletes it found (the guard did not apply).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirmed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_polls_started_within_one_second_have_different_ids() {
        let at = |raw: &str| Timestamp::parse(raw).unwrap();
        let poll = |started_at| PollMessage {
            tenant: TenantId::parse("t1").unwrap(),
            system: System::Halo,
            stage: Stage::Companies,
            cursor: Cursor::start(),
            started_at,
            import: false,
        };
        let (a, b) = (poll(at("2024-05-01T10:00:00.100Z")), poll(at("2024-05-01T10:00:00.900Z")));
        assert_ne!(a.poll_id(), b.poll_id());
        assert_eq!(a.poll_id(), poll(at("2024-05-01T10:00:00.100Z")).poll_id(), "the same poll keeps its id");
    }

    #[test]
    fn endpoints_and_secrets_are_fresh_each_time_and_long_enough() {
        let (a, b) = (WebhookEndpoint::new(), WebhookEndpoint::new());
        assert_ne!(a.key, b.key);
        assert_eq!(a.key.len(), 32);
        assert_eq!(a.path(System::Halo), format!("/webhooks/halo/{}", a.key));
        let secret = new_webhook_secret();
        assert_eq!(secret.len(), 64, "256 bits in hex");
        assert_ne!(secret, new_webhook_secret());
    }

    #[test]
    fn the_mass_delete_guard_holds_back_more_than_ten_missing_and_more_than_a_tenth() {
        assert!(!mass_delete_held_back(5, 5), "a small tenant may lose every record (up to ten)");
        assert!(!mass_delete_held_back(30, 10));
        assert!(mass_delete_held_back(30, 11));
        assert!(!mass_delete_held_back(14_300, 1_430));
        assert!(mass_delete_held_back(14_300, 1_431));
        assert!(mass_delete_held_back(14_300, 14_300), "an empty listing never empties the CRM");
    }
}
