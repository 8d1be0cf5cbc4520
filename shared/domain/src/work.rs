//! [`Work`]: the one work queue's typed, versioned messages, and where each goes ([`Route`]).
//!
//! Every flow that hands work to a worker (an import page today; export, sync in, sync
//! out and poll next) sends a [`Work`] through the one [`WorkQueue`](crate::ports::WorkQueue)
//! port. Messages carry ids and cursors, never pages of records. The queue adapters (the
//! embedded queue, the SQS queue and its router) know a message only through
//! [`Work::group_id`], [`Work::dedup_id`], [`Work::route`] and its JSON, never through
//! what a kind means.
//!
//! The adapters depend on this one type rather than on a trait every message type would
//! implement: there is one queue and one message type, and a new kind is a new variant
//! (with its route, group and deduplication id here), so no adapter changes when a flow
//! adds its work.
//!
//! # The wire format
//!
//! A message is one JSON object: its version `v`, its `kind`, and the kind's own fields
//! beside them, e.g. `{"v":1,"kind":"import_page","tenant":"acme","system":"connectwise",
//! "job_id":"...","stage":"users","cursor":{"position":""}}`.
//!
//! - **Version 1** is the format above. Kinds: `import_page` ([`StageMessage`]), `export`
//!   ([`ExportMessage`]: `tenant`, `system`, `export_id`), `sync_record` ([`SyncMessage`];
//!   the record's kind is its `record_kind`, as `kind` is the envelope's), `sync_poll`
//!   ([`PollMessage`]), `sync_sweep` ([`SweepMessage`]), `sync_out` ([`SyncOutMessage`];
//!   its record's kind is `record_kind` too) and `resume` ([`ResumeMessage`]:
//!   `not_before`, `waits`, and the waiting message itself as its own version 1 object in
//!   `work`, e.g. `{"v":1,"kind":"resume","not_before":"2025-01-01T00:15:00Z","waits":1,
//!   "work":{"v":1,"kind":"export",...}}`; a resume never wraps another resume).
//! - **Version 0** is the format from before the work queue: a bare [`StageMessage`]
//!   object with neither `v` nor `kind` (a `"v":0` written out reads the same). Such
//!   messages may still sit in a queue (or its dead-letter queue) after a deploy, so a
//!   body without `v` is read as an import page. (Code from before the work queue reads a
//!   version 1 import page too: it ignores the fields it does not know.)
//!
//! # Work that waits for a vendor's rate limit
//!
//! When a system answers 429 (or its own "limit exceeded") beyond the transport's few
//! in-process retries, the work is not redelivered until the queue dead-letters it: it
//! waits and resumes ([`resume_after`] decides when; the runner sends the
//! [`Work::Resume`] copy, then acknowledges the original). A resume goes to the same
//! worker and stays in the same FIFO group as the work it carries, and is deduplicated
//! apart from it (and from its earlier waits), so re-sending it is never dropped.
//!
//! Any other version, an unknown kind, or fields that do not fit their kind are refused
//! with a [`WorkDecodeError`] naming what was wrong; retrying cannot fix such a message, so
//! it belongs in the dead-letter queue.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::fmt;
use std::time::Duration;

use crate::error::DomainError;
use crate::export::ExportMessage;
use crate::ids::Stage;
use crate::job::StageMessage;
use crate::normalise::Timestamp;
use crate::ports::ErrorKind;
use crate::sync::{PollMessage, SweepMessage, SyncMessage, SyncOutMessage};

/// The version [`Work`] is written in.
pub const VERSION: u64 = 1;

/// One message of the work queue (see the module docs for its JSON).
#[derive(Clone, Debug, PartialEq)]
pub enum Work {
    /// Import one page of a job's current stage from its cursor (kind `import_page`).
    ImportPage(StageMessage),
    /// Send the records of one export (kind `export`).
    Export(ExportMessage),
    /// Take in one record a webhook named (kind `sync_record`).
    SyncRecord(SyncMessage),
    /// Read one page of a scheduled poll (kind `sync_poll`).
    SyncPoll(PollMessage),
    /// Read one page of an id reconciliation (kind `sync_sweep`).
    SyncSweep(SweepMessage),
    /// Push one CRM change to one system (kind `sync_out`).
    SyncOut(SyncOutMessage),
    /// Run another message once its system's rate limit has passed (kind `resume`).
    Resume(ResumeMessage),
}

/// A message waiting for its system's rate limit: run [`work`](Self::work) as a fresh
/// message of its kind, but not before `not_before`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResumeMessage {
    /// When the work may run again.
    pub not_before: Timestamp,
    /// How many times this work has waited so far, this wait included (1 the first time).
    pub waits: u32,
    /// The waiting message (never itself a resume).
    pub work: Box<Work>,
}

impl ResumeMessage {
    /// How long is left until the work may run, at `now`; `None` once it is due.
    pub fn left(&self, now: Timestamp) -> Option<Duration> {
        let left = self.not_before.datetime() - now.datetime();
        if left.is_positive() { Duration::try_from(left).ok() } else { None }
    }
}

/// The first wait of work rate limited by a system that named no `Retry-After`; each
/// later wait of the same work doubles it, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(30);
/// The longest wait a system that named no `Retry-After` gets (a daily API budget run
/// out is tried again this often until it is back).
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// The longest `Retry-After` honoured by a wait: SQS's longest visibility timeout, so a
/// waiting message is held back once and then runs (a system still limiting then gets a
/// fresh wait).
pub const MAX_WAIT: Duration = Duration::from_secs(12 * 3600);
/// The shortest wait (a `Retry-After` of 0 still waits this long).
pub const MIN_WAIT: Duration = Duration::from_secs(1);

/// Whether `work`, which failed with `error` at `now`, waits and resumes instead of
/// being redelivered: only when its system limited our rate ([`ErrorKind::RateLimited`]).
/// It resumes after the system's `Retry-After` when it named one (at least [`MIN_WAIT`],
/// at most [`MAX_WAIT`]), else after a backoff growing with the waits so far
/// ([`FIRST_BACKOFF`] doubled per wait, at most [`MAX_BACKOFF`]). A resume that fails
/// again waits again with its waits counted on; the copy wraps the work itself, never
/// the resume.
pub fn resume_after(work: &Work, error: &DomainError, now: Timestamp) -> Option<ResumeMessage> {
    let DomainError::Connector(e) = error else { return None };
    if e.kind != ErrorKind::RateLimited {
        return None;
    }
    let (inner, waits) = match work {
        Work::Resume(r) => (&*r.work, r.waits.saturating_add(1)),
        other => (other, 1),
    };
    let wait = match e.retry_after {
        Some(asked) => asked.clamp(MIN_WAIT, MAX_WAIT),
        None => FIRST_BACKOFF.saturating_mul(1 << waits.saturating_sub(1).min(16)).min(MAX_BACKOFF),
    };
    let secs = i64::try_from(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).unwrap_or(i64::MAX);
    Some(ResumeMessage { not_before: now.plus_seconds(secs), waits, work: Box::new(inner.clone()) })
}

/// Where a message must go: the worker that handles it. In AWS each route has its own
/// queue and function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Route {
    /// The function of one import stage.
    Stage(Stage),
    /// The export function.
    Export,
    /// The sync worker: sync in (webhook notices, poll pages, id reconciliations) and sync
    /// out (CRM changes), one worker for both so that, in one FIFO group per connection, a
    /// push and a pull of one connection never run at the same time.
    Sync,
}

impl From<Stage> for Route {
    fn from(stage: Stage) -> Self {
        Route::Stage(stage)
    }
}

impl fmt::Display for Route {
    /// `the users stage`, for messages such as "no queue is configured for ...".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Stage(stage) => write!(f, "the {stage} stage"),
            Route::Export => f.write_str("exports"),
            Route::Sync => f.write_str("sync"),
        }
    }
}

impl Work {
    /// The message's kind as written in its `kind` field.
    pub fn kind(&self) -> &'static str {
        match self {
            Work::ImportPage(_) => "import_page",
            Work::Export(_) => "export",
            Work::SyncRecord(_) => "sync_record",
            Work::SyncPoll(_) => "sync_poll",
            Work::SyncSweep(_) => "sync_sweep",
            Work::SyncOut(_) => "sync_out",
            Work::Resume(_) => "resume",
        }
    }

    /// The connection the work is for: its tenant and system.
    pub fn connection(&self) -> (&crate::ids::TenantId, crate::ids::System) {
        match self {
            Work::ImportPage(msg) => (&msg.tenant, msg.system),
            Work::Export(msg) => (&msg.tenant, msg.system),
            Work::SyncRecord(msg) => (&msg.tenant, msg.system),
            Work::SyncPoll(msg) => (&msg.tenant, msg.system),
            Work::SyncSweep(msg) => (&msg.tenant, msg.system),
            Work::SyncOut(msg) => (&msg.tenant, msg.system),
            Work::Resume(msg) => msg.work.connection(),
        }
    }

    /// The work to run: the message itself, or the message a resume carries.
    pub fn underlying(&self) -> &Work {
        match self {
            Work::Resume(r) => &r.work,
            other => other,
        }
    }

    /// The FIFO group: one per tenant and system, so a connection never races itself
    /// (while many tenants run at once).
    pub fn group_id(&self) -> String {
        match self {
            Work::ImportPage(msg) => msg.group_id(),
            Work::Export(msg) => format!("{}:{}", msg.tenant, msg.system),
            Work::SyncRecord(msg) => format!("{}:{}", msg.tenant, msg.system),
            Work::SyncPoll(msg) => format!("{}:{}", msg.tenant, msg.system),
            Work::SyncSweep(msg) => format!("{}:{}", msg.tenant, msg.system),
            Work::SyncOut(msg) => format!("{}:{}", msg.tenant, msg.system),
            Work::Resume(msg) => msg.work.group_id(),
        }
    }

    /// The deduplication id: a second send of the same work within the queue's
    /// deduplication window is dropped. An import page keeps the id it had before the
    /// work queue ([`StageMessage::dedup_id`]); later kinds start theirs with their kind,
    /// so ids of different kinds never meet.
    pub fn dedup_id(&self) -> String {
        match self {
            Work::ImportPage(msg) => msg.dedup_id(),
            Work::Export(msg) => format!("export:{}", msg.export_id),
            // One notice per record, reported version (or arrival, when the system names
            // no version) and call: a call the intake sends twice is sent once, and two
            // calls under one whole-second stamp are both sent.
            Work::SyncRecord(msg) => {
                let at = msg.at.as_ref().map_or_else(|| msg.received_at.unix().to_string(), ToString::to_string);
                let call = msg.delivery.as_deref().unwrap_or_default();
                format!("sync_record:{}:{}:{}:{}:{at}:{call}", msg.tenant, msg.system, msg.record_kind, msg.external_id)
            }
            Work::SyncPoll(msg) => format!("sync_poll:{}:{}:{}", msg.poll_id(), msg.stage, msg.cursor.position),
            Work::SyncSweep(msg) => format!(
                "sync_sweep:{}:{}:{}:{}:{}",
                msg.tenant,
                msg.system,
                msg.stage,
                msg.sweep_id(),
                msg.cursor.position
            ),
            Work::SyncOut(msg) => format!("sync_out:{}:{}:{}", msg.tenant, msg.system, msg.change),
            // Apart from the work it carries (sent just before, within the window) and
            // from its earlier waits.
            Work::Resume(msg) => {
                format!("resume:{}:{}:{}", msg.waits, msg.not_before.unix_millis(), msg.work.dedup_id())
            }
        }
    }

    /// Where the message goes.
    pub fn route(&self) -> Route {
        match self {
            Work::ImportPage(msg) => Route::Stage(msg.stage),
            Work::Export(_) => Route::Export,
            Work::SyncRecord(_) | Work::SyncPoll(_) | Work::SyncSweep(_) | Work::SyncOut(_) => Route::Sync,
            Work::Resume(msg) => msg.work.route(),
        }
    }

    /// The import page this message asks for, if it is one.
    pub fn import_page(&self) -> Option<&StageMessage> {
        match self {
            Work::ImportPage(msg) => Some(msg),
            _ => None,
        }
    }

    /// Encodes the message as its JSON body.
    pub fn encode(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// Decodes a JSON body of any version this code reads (see the module docs).
    pub fn decode(body: &str) -> Result<Work, WorkDecodeError> {
        let value: Value = serde_json::from_str(body).map_err(|e| WorkDecodeError::NotJson(e.to_string()))?;
        Work::from_value(value)
    }

    fn from_value(value: Value) -> Result<Work, WorkDecodeError> {
        let Value::Object(mut fields) = value else {
            return Err(WorkDecodeError::NotAnObject);
        };
        let version = match fields.remove("v") {
            None => 0,
            Some(v) => v.as_u64().ok_or_else(|| WorkDecodeError::BadVersion(v.to_string()))?,
        };
        match version {
            0 => payload(fields, "import_page (version 0, a bare stage message)").map(Work::ImportPage),
            VERSION => {
                let kind = match fields.remove("kind") {
                    Some(Value::String(kind)) => kind,
                    Some(other) => return Err(WorkDecodeError::BadKind(other.to_string())),
                    None => return Err(WorkDecodeError::MissingKind),
                };
                match kind.as_str() {
                    "import_page" => payload(fields, "import_page").map(Work::ImportPage),
                    "export" => payload(fields, "export").map(Work::Export),
                    "sync_record" => payload(fields, "sync_record").map(Work::SyncRecord),
                    "sync_poll" => payload(fields, "sync_poll").map(Work::SyncPoll),
                    "sync_sweep" => payload(fields, "sync_sweep").map(Work::SyncSweep),
                    "sync_out" => payload(fields, "sync_out").map(Work::SyncOut),
                    "resume" => match payload::<ResumeMessage>(fields, "resume")? {
                        msg if matches!(*msg.work, Work::Resume(_)) => Err(WorkDecodeError::BadFields {
                            kind: kind.clone(),
                            reason: "a resume message carries another resume message".into(),
                        }),
                        msg => Ok(Work::Resume(msg)),
                    },
                    _ => Err(WorkDecodeError::UnknownKind { version, kind }),
                }
            }
            _ => Err(WorkDecodeError::UnknownVersion(version)),
        }
    }
}

/// A kind's own fields, read as `T`.
fn payload<T: serde::de::DeserializeOwned>(fields: Map<String, Value>, kind: &str) -> Result<T, WorkDecodeError> {
    serde_json::from_value(Value::Object(fields))
        .map_err(|e| WorkDecodeError::BadFields { kind: kind.to_string(), reason: e.to_string() })
}

impl From<StageMessage> for Work {
    fn from(msg: StageMessage) -> Self {
        Work::ImportPage(msg)
    }
}

/// Work waiting on a rate limit or the connection's API budget, as the health view
/// lists it (one item per waiting message, see `RecordStore::save_waiting`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub tenant: crate::ids::TenantId,
    pub system: crate::ids::System,
    /// The work's kind (`import_page`, `export`, `sync_record`, ...).
    pub work: String,
    /// What it is about: the job, export, record or stage, e.g. `job J (users stage)`.
    pub what: String,
    /// When it runs again.
    pub resumes_at: Timestamp,
    /// Why it waits (the rate limit's or the budget's message).
    pub reason: String,
    /// How many times it has waited so far.
    pub waits: u32,
}

impl Waiting {
    /// The note of `resume`'s wait (its work's connection, kind and subject), for `reason`.
    pub fn of(resume: &ResumeMessage, reason: &str) -> Self {
        let (tenant, system) = resume.work.connection();
        Self {
            tenant: tenant.clone(),
            system,
            work: resume.work.kind().to_string(),
            what: resume.work.to_string(),
            resumes_at: resume.not_before,
            reason: reason.to_string(),
            waits: resume.waits,
        }
    }
}

impl fmt::Display for Work {
    /// A short description for logs and errors: `import page of job J (users stage)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Work::ImportPage(msg) => write!(f, "import page of job {} ({} stage)", msg.job_id, msg.stage),
            Work::Export(msg) => write!(f, "export {}", msg.export_id),
            Work::SyncRecord(msg) => write!(f, "sync of {} {} from {}", msg.record_kind, msg.external_id, msg.system),
            Work::SyncPoll(msg) => write!(f, "poll of {} ({} stage)", msg.system, msg.stage),
            Work::SyncSweep(msg) => write!(f, "id reconciliation of {} ({} stage)", msg.system, msg.stage),
            Work::SyncOut(msg) => write!(f, "sync out of {} {} to {}", msg.record_kind, msg.record, msg.system),
            Work::Resume(msg) => write!(f, "{} (resuming at {})", msg.work, msg.not_before),
        }
    }
}

/// Why a body is not a [`Work`] this code reads. Retrying cannot fix any of these.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WorkDecodeError {
    #[error("the work message is not JSON: {0}")]
    NotJson(String),
    #[error("the work message is not a JSON object")]
    NotAnObject,
    #[error("the work message's version `v` is not a whole number: {0}")]
    BadVersion(String),
    #[error("the work message is of version {0}, which this code does not read (it reads versions 0 and {VERSION})")]
    UnknownVersion(u64),
    #[error("the version {VERSION} work message has no `kind`")]
    MissingKind,
    #[error("the work message's `kind` is not a string: {0}")]
    BadKind(String),
    #[error("the version {version} work message is of kind `{kind}`, which this code does not know")]
    UnknownKind { version: u64, kind: String },
    #[error("the {kind} work message's fields are not valid: {reason}")]
    BadFields { kind: String, reason: String },
}

/// The version 1 object: `v`, `kind`, then the kind's own fields.
#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    v: u64,
    kind: &'static str,
    #[serde(flatten)]
    fields: &'a T,
}

impl Serialize for Work {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let kind = self.kind();
        match self {
            Work::ImportPage(msg) => Envelope { v: VERSION, kind, fields: msg }.serialize(serializer),
            Work::Export(msg) => Envelope { v: VERSION, kind, fields: msg }.serialize(serializer),
            Work::SyncRecord(msg) => Envelope { v: VERSION, kind, fields: msg }.serialize(serializer),
            Work::SyncPoll(msg) => Envelope { v: VERSION, kind, fields: msg }.serialize(serializer),
            Work::SyncSweep(msg) => Envelope { v: VERSION, kind, fields: msg }.serialize(serializer),
            Work::SyncOut(msg) => Envelope { v: VERSION, kind, fields: msg }.serialize(serializer),
            Work::Resume(msg) => Envelope { v: VERSION, kind, fields: msg }.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Work {
    /// Reads any version this code reads; the error names what was wrong.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Work::from_value(Value::deserialize(deserializer)?).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::external::Cursor;
    use crate::ids::{JobId, System, TenantId};
    use crate::normalise::Timestamp;

    fn page(attempt: u32) -> StageMessage {
        StageMessage {
            tenant: TenantId::parse("acme").unwrap(),
            system: System::ConnectWise,
            job_id: JobId::from_raw("job-1"),
            stage: Stage::Contacts,
            cursor: Cursor { position: "page=3".into(), since: Some(Timestamp::from_unix(1_700_000_000).unwrap()) },
            attempt,
            dry_run: false,
        }
    }

    #[test]
    fn an_import_page_is_written_with_its_version_and_kind_beside_its_fields() {
        let json: Value = serde_json::from_str(&Work::ImportPage(page(0)).encode().unwrap()).unwrap();
        assert_eq!(json["v"], 1);
        assert_eq!(json["kind"], "import_page");
        assert_eq!(json["tenant"], "acme");
        assert_eq!(json["stage"], "contacts");
        assert_eq!(json["cursor"]["position"], "page=3");
    }

    #[test]
    fn an_import_page_reads_back_as_it_was_written() {
        for attempt in [0, 2] {
            let work = Work::ImportPage(page(attempt));
            assert_eq!(Work::decode(&work.encode().unwrap()).unwrap(), work);
            let via_serde: Work = serde_json::from_str(&serde_json::to_string(&work).unwrap()).unwrap();
            assert_eq!(via_serde, work);
        }
    }

    #[test]
    fn a_bare_stage_message_from_before_the_work_queue_reads_as_an_import_page() {
        let old = serde_json::to_string(&page(1)).unwrap();
        assert!(!old.contains("\"v\""), "{old}");
        assert_eq!(Work::decode(&old).unwrap(), Work::ImportPage(page(1)));
        let sample =
            r#"{"tenant":"acme","system":"connectwise","job_id":"j","stage":"users","cursor":{"position":""}}"#;
        let work = Work::decode(sample).unwrap();
        assert_eq!(work.route(), Route::Stage(Stage::Users));
        let mut explicit: Value = serde_json::from_str(&old).unwrap();
        explicit["v"] = 0.into();
        assert_eq!(Work::decode(&explicit.to_string()).unwrap(), Work::ImportPage(page(1)));
    }

    #[test]
    fn an_import_page_keeps_the_group_and_deduplication_ids_of_its_stage_message() {
        let msg = page(2);
        let work = Work::from(msg.clone());
        assert_eq!(work.group_id(), msg.group_id());
        assert_eq!(work.group_id(), "acme:connectwise");
        assert_eq!(work.dedup_id(), msg.dedup_id());
        assert_eq!(work.route(), Route::Stage(Stage::Contacts));
        assert_eq!(work.route().to_string(), "the contacts stage");
        assert_eq!(work.import_page(), Some(&msg));
    }

    #[test]
    fn an_export_reads_back_as_it_was_written_and_goes_to_the_export_route() {
        let msg = ExportMessage {
            tenant: crate::ids::TenantId::parse("acme").unwrap(),
            system: crate::ids::System::Halo,
            export_id: crate::ids::JobId::from_raw("e-1"),
        };
        let work = Work::Export(msg);
        let json: Value = serde_json::from_str(&work.encode().unwrap()).unwrap();
        assert_eq!(
            (json["v"].as_u64(), json["kind"].as_str(), json["export_id"].as_str()),
            (Some(1), Some("export"), Some("e-1"))
        );
        assert_eq!(Work::decode(&json.to_string()).unwrap(), work);
        assert_eq!(
            (work.route(), work.dedup_id(), work.group_id()),
            (Route::Export, "export:e-1".into(), "acme:halo".into())
        );
    }

    fn notice() -> SyncMessage {
        SyncMessage {
            tenant: TenantId::parse("acme").unwrap(),
            system: System::Halo,
            record_kind: crate::ids::RecordKind::Contact,
            external_id: "42".into(),
            deleted: false,
            at: Some(crate::ledger::ExtVersion::from("2025-01-01T00:00:00Z".to_string())),
            received_at: Timestamp::from_unix(1_735_689_600).unwrap(),
            delivery: None,
            by_us: false,
            retry: None,
        }
    }

    #[test]
    fn a_sync_record_keeps_its_message_kind_and_its_record_kind_apart_and_reads_back_as_written() {
        let work = Work::SyncRecord(notice());
        let body = work.encode().unwrap();
        assert_eq!(body.matches("\"kind\"").count(), 1, "one envelope kind: {body}");
        let json: Value = serde_json::from_str(&body).unwrap();
        assert_eq!((json["v"].as_u64(), json["kind"].as_str()), (Some(1), Some("sync_record")));
        assert_eq!(json["record_kind"], "contact");
        assert_eq!(json["external_id"], "42");
        assert_eq!(Work::decode(&body).unwrap(), work);
        assert_eq!((work.route(), work.group_id()), (Route::Sync, "acme:halo".into()));
    }

    #[test]
    fn a_sync_poll_page_reads_back_as_it_was_written_and_goes_to_the_sync_route() {
        let work = Work::SyncPoll(PollMessage {
            tenant: TenantId::parse("acme").unwrap(),
            system: System::Halo,
            stage: Stage::Contacts,
            cursor: Cursor { position: "page=2".into(), since: Some(Timestamp::from_unix(1_700_000_000).unwrap()) },
            started_at: Timestamp::from_unix(1_735_689_600).unwrap(),
            import: false,
        });
        let body = work.encode().unwrap();
        let json: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["kind"], "sync_poll");
        assert_eq!(Work::decode(&body).unwrap(), work);
        assert_eq!(work.route(), Route::Sync);
    }

    #[test]
    fn two_calls_about_one_record_under_one_stamp_are_both_sent_and_one_call_sent_twice_once() {
        let call = |digest: &str| {
            let mut msg = notice();
            msg.at = Some("2024-05-01T10:00:00Z".into());
            msg.delivery = Some(digest.into());
            Work::SyncRecord(msg)
        };
        assert_ne!(call("aaaa").dedup_id(), call("bbbb").dedup_id());
        assert_eq!(call("aaaa").dedup_id(), call("aaaa").dedup_id());
    }

    #[test]
    fn a_sync_sweep_page_reads_back_as_it_was_written_and_its_pages_are_told_apart() {
        let sweep = |position: &str| {
            Work::SyncSweep(SweepMessage {
                tenant: TenantId::parse("acme").unwrap(),
                system: System::Syncro,
                stage: Stage::Contacts,
                cursor: Cursor { position: position.into(), since: None },
                started_at: Timestamp::from_unix(1_735_689_600).unwrap(),
                confirmed: false,
            })
        };
        let work = sweep("page=2");
        let body = work.encode().unwrap();
        let json: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["kind"], "sync_sweep");
        assert_eq!(Work::decode(&body).unwrap(), work);
        assert_eq!((work.route(), work.group_id()), (Route::Sync, "acme:syncro".into()));
        assert_ne!(work.dedup_id(), sweep("page=3").dedup_id());
    }

    #[test]
    fn a_sync_out_reads_back_as_it_was_written_and_shares_the_connections_group_with_sync_in() {
        let push = |change: &str| {
            Work::SyncOut(SyncOutMessage {
                tenant: TenantId::parse("acme").unwrap(),
                system: System::Halo,
                record_kind: crate::ids::RecordKind::Company,
                record: crate::ids::RecordId::from_raw("c-1"),
                change: change.into(),
                deleted: None,
                retry: None,
            })
        };
        let work = push("company-c-1-v2");
        let body = work.encode().unwrap();
        let json: Value = serde_json::from_str(&body).unwrap();
        assert_eq!((json["kind"].as_str(), json["record_kind"].as_str()), (Some("sync_out"), Some("company")));
        assert_eq!(Work::decode(&body).unwrap(), work);
        assert_eq!((work.route(), work.group_id()), (Route::Sync, Work::SyncRecord(notice()).group_id()));
        assert_eq!(work.dedup_id(), push("company-c-1-v2").dedup_id());
        assert_ne!(work.dedup_id(), push("company-c-1-v3").dedup_id());
    }

    #[test]
    fn an_unknown_version_is_refused_naming_the_version() {
        let mut json = serde_json::to_value(Work::ImportPage(page(0))).unwrap();
        json["v"] = 2.into();
        let err = Work::decode(&json.to_string()).unwrap_err();
        assert_eq!(err, WorkDecodeError::UnknownVersion(2));
        assert!(err.to_string().contains("version 2"), "{err}");
        json["v"] = "1".into();
        assert!(matches!(Work::decode(&json.to_string()), Err(WorkDecodeError::BadVersion(_))));
    }

    #[test]
    fn an_unknown_kind_is_refused_naming_the_kind() {
        let mut json = serde_json::to_value(Work::ImportPage(page(0))).unwrap();
        json["kind"] = "sync_sideways".into();
        let err = Work::decode(&json.to_string()).unwrap_err();
        assert_eq!(err, WorkDecodeError::UnknownKind { version: 1, kind: "sync_sideways".into() });
        assert!(err.to_string().contains("`sync_sideways`"), "{err}");
        let via_serde = serde_json::from_str::<Work>(&json.to_string()).unwrap_err();
        assert!(via_serde.to_string().contains("`sync_sideways`"), "{via_serde}");
        json["kind"] = "export".into();
        let err = Work::decode(&json.to_string()).unwrap_err();
        assert!(matches!(err, WorkDecodeError::BadFields { ref kind, .. } if kind == "export"), "{err}");
    }

    #[test]
    fn a_version_1_message_without_a_kind_is_refused() {
        let mut json = serde_json::to_value(Work::ImportPage(page(0))).unwrap();
        json.as_object_mut().unwrap().remove("kind");
        assert_eq!(Work::decode(&json.to_string()).unwrap_err(), WorkDecodeError::MissingKind);
        json["kind"] = 7.into();
        assert!(matches!(Work::decode(&json.to_string()), Err(WorkDecodeError::BadKind(_))));
    }

    #[test]
    fn fields_that_do_not_fit_the_kind_are_refused_naming_the_kind_and_the_field() {
        let err = Work::decode(r#"{"v":1,"kind":"import_page","tenant":"acme"}"#).unwrap_err();
        assert!(matches!(&err, WorkDecodeError::BadFields { kind, .. } if kind == "import_page"), "{err}");
        assert!(err.to_string().contains("missing field `system`"), "{err}");
        let old = Work::decode(r#"{"tenant":"acme"}"#).unwrap_err();
        assert!(old.to_string().contains("version 0"), "{old}");
    }

    fn rate_limited(retry_after: Option<Duration>) -> DomainError {
        let mut e = crate::ports::ConnectorError::new(System::Salesforce, ErrorKind::RateLimited, "slow down");
        e.retry_after = retry_after;
        DomainError::Connector(e)
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix(secs).unwrap()
    }

    #[test]
    fn rate_limited_work_resumes_after_the_retry_after_the_system_named() {
        let work = Work::ImportPage(page(0));
        let resume = resume_after(&work, &rate_limited(Some(Duration::from_secs(120))), at(1_000)).unwrap();
        assert_eq!((resume.not_before, resume.waits, &*resume.work), (at(1_120), 1, &work));
        let short = resume_after(&work, &rate_limited(Some(Duration::from_millis(1_500))), at(1_000)).unwrap();
        assert_eq!(short.not_before, at(1_002), "a part second is waited in full");
        let none = resume_after(&work, &rate_limited(Some(Duration::ZERO)), at(1_000)).unwrap();
        assert_eq!(none.not_before, at(1_001), "a Retry-After of 0 still waits a second");
        let day = resume_after(&work, &rate_limited(Some(Duration::from_secs(86_400))), at(0)).unwrap();
        assert_eq!(day.not_before, at(12 * 3600), "capped at SQS's longest visibility timeout");
    }

    #[test]
    fn rate_limited_work_without_a_retry_after_waits_longer_each_time_up_to_fifteen_minutes() {
        let mut work = Work::ImportPage(page(0));
        let mut waited = Vec::new();
        for _ in 0..8 {
            let resume = resume_after(&work, &rate_limited(None), at(0)).unwrap();
            waited.push((resume.waits, resume.not_before.unix()));
            work = Work::Resume(resume);
        }
        assert_eq!(waited, vec![(1, 30), (2, 60), (3, 120), (4, 240), (5, 480), (6, 900), (7, 900), (8, 900)]);
        assert_eq!(*work.underlying(), Work::ImportPage(page(0)), "never a resume of a resume");
        let Work::Resume(last) = &work else { panic!("a resume") };
        assert!(matches!(*last.work, Work::ImportPage(_)));
    }

    #[test]
    fn only_a_rate_limit_makes_work_wait() {
        let work = Work::ImportPage(page(0));
        let unavailable = crate::ports::ConnectorError::new(System::Halo, ErrorKind::Transient, "503");
        for error in [
            DomainError::Connector(unavailable),
            DomainError::Store(crate::ports::StoreError::Unavailable("busy".into())),
            DomainError::invalid("bad"),
        ] {
            assert_eq!(resume_after(&work, &error, at(0)), None, "{error}");
        }
    }

    #[test]
    fn a_resume_reads_back_as_written_with_its_work_nested_as_its_own_version_1_object() {
        let work = Work::Resume(ResumeMessage {
            not_before: at(1_735_689_600),
            waits: 2,
            work: Box::new(Work::SyncRecord(notice())),
        });
        let body = work.encode().unwrap();
        let json: Value = serde_json::from_str(&body).unwrap();
        assert_eq!((json["v"].as_u64(), json["kind"].as_str()), (Some(1), Some("resume")));
        assert_eq!((json["not_before"].as_str(), json["waits"].as_u64()), (Some("2025-01-01T00:00:00Z"), Some(2)));
        assert_eq!((json["work"]["v"].as_u64(), json["work"]["kind"].as_str()), (Some(1), Some("sync_record")));
        assert_eq!(Work::decode(&body).unwrap(), work);
    }

    #[test]
    fn a_resume_goes_where_its_work_goes_in_its_group_and_is_deduplicated_apart_from_it() {
        let inner = Work::ImportPage(page(1));
        let resume = |waits: u32, secs: i64| {
            Work::Resume(ResumeMessage { not_before: at(secs), waits, work: Box::new(inner.clone()) })
        };
        let first = resume(1, 1_000);
        assert_eq!((first.route(), first.group_id()), (inner.route(), inner.group_id()));
        assert_eq!(first.kind(), "resume");
        assert!(first.dedup_id().contains(&inner.dedup_id()), "{}", first.dedup_id());
        assert_ne!(first.dedup_id(), inner.dedup_id());
        assert_ne!(first.dedup_id(), resume(2, 1_000).dedup_id(), "a later wait");
        assert_ne!(first.dedup_id(), resume(1, 1_030).dedup_id(), "another resume time");
        assert_eq!(first.dedup_id(), resume(1, 1_000).dedup_id(), "the same copy sent twice");
        assert!(first.to_string().contains("resuming at 1970-01-01T00:16:40Z"), "{first}");
    }

    #[test]
    fn a_resume_carrying_a_resume_is_refused() {
        let inner =
            Work::Resume(ResumeMessage { not_before: at(5), waits: 1, work: Box::new(Work::ImportPage(page(0))) });
        let nested = Work::Resume(ResumeMessage { not_before: at(9), waits: 2, work: Box::new(inner) });
        let err = Work::decode(&nested.encode().unwrap()).unwrap_err();
        assert!(matches!(&err, WorkDecodeError::BadFields { kind, .. } if kind == "resume"), "{err}");
    }

    #[test]
    fn a_resume_is_due_at_its_resume_time() {
        let resume = ResumeMessage { not_before: at(100), waits: 1, work: Box::new(Work::ImportPage(page(0))) };
        assert_eq!(resume.left(at(40)), Some(Duration::from_secs(60)));
        assert_eq!(resume.left(at(100)), None);
        assert_eq!(resume.left(at(101)), None);
    }

    #[test]
    fn a_body_that_is_not_a_json_object_is_refused() {
        assert!(matches!(Work::decode("not json"), Err(WorkDecodeError::NotJson(_))));
        assert_eq!(Work::decode("[1]").unwrap_err(), WorkDecodeError::NotAnObject);
    }
}
