//! The ports the domain needs from the outside world: an item table (DynamoDB or
//! embedded), the work queue, a secret store, a clock, an event publisher, and connectors.
//! Each has a cloud adapter and an embedded one; both pass one conformance suite.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::describe::Description;
use crate::error::ErrorClass;
use crate::external::{AccountInfo, Choice, Cursor, ExternalRecord, OptionList, Page};
use crate::ids::{RecordKind, System, TenantId};
use crate::job::Job;
use crate::normalise::Timestamp;
use crate::secret::{Credentials, SecretString};
use crate::work::Work;

/// A store failure.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// A write's condition failed: someone else wrote first. Re-read and decide again.
    #[error("conflicting write: {0}")]
    Conflict(String),
    /// The store could not be reached or refused for load; worth retrying.
    #[error("record store unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be read back; a bug or tampering.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A paging token the caller sent is not one this store issued (the caller's error).
    #[error("invalid paging token: {0}")]
    InvalidToken(String),
}

impl StoreError {
    /// Whether trying again may help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Conflict(_) | StoreError::Unavailable(_))
    }
}

/// The key of a secondary-index entry (DynamoDB GSI1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexKey {
    pub pk: String,
    pub sk: String,
}

/// One item of the single table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub pk: String,
    pub sk: String,
    /// Written by the store: 1 on the first put, +1 on each conditional put.
    pub version: u64,
    #[serde(default)]
    pub gsi1: Option<IndexKey>,
    /// Epoch seconds after which the item may be gone (DynamoDB TTL).
    #[serde(default)]
    pub expires_at: Option<i64>,
    pub body: serde_json::Value,
}

/// A write's precondition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// No precondition.
    None,
    /// The item must not exist.
    NotExists,
    /// The item must exist with this version.
    VersionIs(u64),
}

/// One write of a transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    Put { item: Item, condition: Condition },
    Delete { pk: String, sk: String },
}

/// A key-range read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    /// Only sort keys starting with this.
    pub sk_prefix: Option<String>,
    /// Continue after this position (from a previous [`QueryPage::next`]).
    pub after: Option<String>,
    pub limit: usize,
    /// Newest / largest sort key first.
    pub descending: bool,
}

/// A page of a key-range read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryPage {
    pub items: Vec<Item>,
    /// Where to continue; `None` at the end.
    pub next: Option<String>,
}

/// The single table of items (DynamoDB in AWS, embedded locally).
#[async_trait]
pub trait Table: Send + Sync {
    /// One item by key; expired items are absent.
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError>;
    /// Several items by key, in any order; missing ones left out.
    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Item>, StoreError>;
    /// Items of one partition, by sort key.
    async fn query(&self, pk: &str, q: &Query) -> Result<QueryPage, StoreError>;
    /// Items of one secondary-index partition, by index sort key.
    async fn query_index(&self, pk: &str, q: &Query) -> Result<QueryPage, StoreError>;
    /// All writes or none (at most 100). A failed condition is [`StoreError::Conflict`].
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError>;
    /// The paging token that continues a read of `item`'s partition (with `index`, of its
    /// index partition) just after `item`: what a page ending with it gives as
    /// [`QueryPage::next`]. Lets a view over the table (the preview's
    /// [`Overlay`](crate::overlay::Overlay)) continue a read from any item it has used.
    fn token_after(&self, item: &Item, index: bool) -> Result<String, StoreError>;
}

/// A secret-store failure.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("secret {0} not found")]
    NotFound(String),
    #[error("secret store unavailable: {0}")]
    Unavailable(String),
}

/// Where credentials live: one secret per connection.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Creates or replaces the connection's secret; returns its name.
    async fn put(&self, tenant: &TenantId, system: System, creds: &Credentials) -> Result<String, SecretError>;
    /// Reads the connection's secret.
    async fn get(&self, tenant: &TenantId, system: System) -> Result<Credentials, SecretError>;
    /// Drops any cached copy (after the external system answered 401).
    async fn invalidate(&self, _tenant: &TenantId, _system: System) {}
    /// Creates or replaces the connection's webhook secret: what the system's webhook calls
    /// prove themselves with (a second secret beside the credentials).
    async fn put_webhook_secret(
        &self,
        tenant: &TenantId,
        system: System,
        secret: &SecretString,
    ) -> Result<(), SecretError>;
    /// The connection's webhook secret.
    async fn webhook_secret(&self, tenant: &TenantId, system: System) -> Result<SecretString, SecretError>;
}

/// A queue failure.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("work queue unavailable: {0}")]
pub struct QueueError(pub String);

/// The one work queue: import pages and stages chained, and the other flows' work.
#[async_trait]
pub trait WorkQueue: Send + Sync {
    /// Sends a message to its [route](Work::route), in its [group](Work::group_id); a
    /// message with the same [dedup id](Work::dedup_id) sent before is dropped.
    async fn send(&self, work: &Work) -> Result<(), QueueError>;

    /// Keeps a received message (`work`, received from its route's queue with the handle
    /// `receipt`) hidden for `delay` from now, so it is delivered again only then (SQS's
    /// `ChangeMessageVisibility`); a resume not due yet waits so. A queue that cannot
    /// says so, and the message comes back after its visibility timeout instead.
    async fn hold(&self, work: &Work, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        let _ = (receipt, delay);
        Err(QueueError(format!("this queue cannot hold back a received {} message", work.kind())))
    }
}

/// The time.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_datetime(time::OffsetDateTime::now_utc())
    }
}

/// A clock that runs with the system clock, shifted by an offset that can be moved on
/// (tests and demos that need a day to pass: an API budget's 24 h window).
#[derive(Debug, Default)]
pub struct ShiftedClock {
    offset: std::sync::atomic::AtomicI64,
}

impl ShiftedClock {
    /// Moves the clock on by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.offset.fetch_add(seconds, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> Timestamp {
        SystemClock.now().plus_seconds(self.offset.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// Publishes failure events so a tenant can be notified (EventBridge in AWS).
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes one failed-record event ([`crate::events::FailureEvent`], built from its
    /// log entry). Failures to publish are logged, not raised.
    async fn failed(&self, event: &crate::events::FailureEvent);
    /// Publishes that a job failed (its status carries the reason). Failures to publish
    /// are logged, not raised.
    async fn job_failed(&self, job: &Job);
}

/// The class of an external system's failure, classified once near the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The keys were refused.
    Unauthorized,
    /// The keys lack a permission.
    Forbidden,
    /// The account/company/tenant id is unknown.
    UnknownAccount,
    /// The host could not be reached.
    Unreachable,
    /// The thing asked for does not exist.
    NotFound,
    /// Too many requests; `retry_after` says how long to wait.
    RateLimited,
    /// A server error or timeout that may pass.
    Transient,
    /// The system refused our request or answered something we cannot read.
    Invalid,
}

/// An external system's failure: kind, retryable, a clear message (never a secret).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{}: {message}", system.display_name())]
pub struct ConnectorError {
    pub system: System,
    pub kind: ErrorKind,
    pub retryable: bool,
    pub message: String,
    /// The HTTP status, when there was one.
    pub status: Option<u16>,
    /// How long the system asked us to wait.
    pub retry_after: Option<Duration>,
    /// The vendor's own error code, kept as data (ConnectWise `code`, Salesforce
    /// `errorCode`, an OAuth `error`), when it gave one.
    pub code: Option<String>,
}

impl ConnectorError {
    /// An error of `kind`, retryable as the kind implies.
    pub fn new(system: System, kind: ErrorKind, message: impl Into<String>) -> Self {
        let retryable = matches!(kind, ErrorKind::RateLimited | ErrorKind::Transient | ErrorKind::Unreachable);
        Self { system, kind, retryable, message: message.into(), status: None, retry_after: None, code: None }
    }

    /// Whether this is a request that is not idempotent whose outcome is unknown (it timed
    /// out or failed after it may have been carried out): kind `Transient` but not
    /// retryable. Its caller searches for the record before sending it again.
    pub fn outcome_unknown(&self) -> bool {
        self.kind == ErrorKind::Transient && !self.retryable
    }

    /// The class for HTTP answers.
    pub fn class(&self) -> ErrorClass {
        match self.kind {
            ErrorKind::Unauthorized | ErrorKind::Forbidden | ErrorKind::UnknownAccount => ErrorClass::Credentials,
            ErrorKind::Unreachable | ErrorKind::RateLimited | ErrorKind::Transient => ErrorClass::Unavailable,
            ErrorKind::NotFound => ErrorClass::NotFound,
            ErrorKind::Invalid => ErrorClass::Internal,
        }
    }
}

/// Where snapshots of a tenant's CRM records are kept (S3 in AWS, files in the local
/// runner's data directory): objects written and read a line at a time, so a snapshot of
/// any size is never held whole in memory.
#[async_trait]
pub trait SnapshotStore: Send + Sync {
    /// A writer of the object `key`; the object exists, whole, once the writer finishes.
    async fn create(&self, key: &str) -> Result<Box<dyn LineWriter>, StoreError>;
    /// A reader of the object `key`, a line at a time; `None` when there is none.
    async fn open(&self, key: &str) -> Result<Option<Box<dyn LineReader>>, StoreError>;
}

/// Writes one snapshot object a line at a time.
#[async_trait]
pub trait LineWriter: Send {
    /// Appends one line (`line` without its newline).
    async fn line(&mut self, line: &[u8]) -> Result<(), StoreError>;
    /// Makes the object whole and visible; its size in bytes.
    async fn finish(self: Box<Self>) -> Result<u64, StoreError>;
}

/// Reads one snapshot object a line at a time.
#[async_trait]
pub trait LineReader: Send {
    /// The next line (without its newline); `None` at the end.
    async fn next(&mut self) -> Result<Option<Vec<u8>>, StoreError>;
}

/// One connection to one external system.
///
/// Its reader half is keyed by [`RecordKind`], not by import stage, so import, scheduled
/// sync and sync in read through the same two calls: [`list`](Connector::list) (a page
/// changed since a cursor) and [`get`](Connector::get) (one record by its external id).
/// They sit on the connector itself rather than on a separate `Reader` trait the connector
/// hands out: every connector reads, one object already travels as `Arc<dyn Connector>`,
/// and no caller needs the reader without the rest; a role trait can be split off when a
/// caller appears that should see nothing else.
#[async_trait]
pub trait Connector: Send + Sync {
    /// The system this connector speaks to.
    fn system(&self) -> System;
    /// Validates the credentials with one cheap authenticated call.
    async fn check(&self) -> Result<AccountInfo, ConnectorError>;
    /// How many HTTP requests this connector has sent to its system so far (every attempt,
    /// retries and token requests included), for the connection's API budget
    /// ([`crate::budget`]). A connector may be reused for many units of work, so callers
    /// count the difference over their own work. The default counts nothing.
    fn calls(&self) -> u64 {
        0
    }
    /// The rate its transport paces requests to the system at, in requests per second
    /// (`None`: not paced), for an import's estimated finish.
    fn pace(&self) -> Option<f64> {
        None
    }
    /// The choices the system offers for one mapping list, fetched live.
    async fn options(&self, list: OptionList) -> Result<Vec<Choice>, ConnectorError>;
    /// One page of `kind`'s records from `cursor`; with `cursor.since`, only those changed
    /// at or after it. A kind the system does not have is an empty last page.
    async fn list(&self, kind: RecordKind, cursor: &Cursor) -> Result<Page, ConnectorError>;
    /// One record of `kind` by its external id, mapped exactly as [`list`](Connector::list)
    /// maps it; `None` when the system says it does not exist. An id that cannot be one of
    /// the system's ids, or a kind the system does not have, is refused
    /// ([`ErrorKind::Invalid`]) before any request.
    async fn get(&self, kind: RecordKind, id: &str) -> Result<Option<ExternalRecord>, ConnectorError>;
    /// The ids of `kind`'s records the system says were deleted at or after `since`, where
    /// it keeps such a log (Salesforce's `/sobjects/{Type}/deleted/`); `None` where it
    /// keeps none (hard deletes are then found by the poll's id reconciliation). The
    /// answer names candidates only: each is confirmed with [`get`](Connector::get) before
    /// anything is done.
    async fn deleted_since(&self, kind: RecordKind, since: Timestamp) -> Result<Option<Vec<String>>, ConnectorError> {
        let _ = (kind, since);
        Ok(None)
    }

    // The writer half (export, sync out). Records go out in the same shape they come in:
    // the domain maps a CRM record to an [`ExternalRecord`] (option ids, external reference
    // ids), the connector maps that onto the vendor's body, as its reader maps the other way.

    /// Records of `record`'s kind the system already holds that may be the same one (the
    /// keys each connector can search on: a company's name, a contact's email...), for the
    /// duplicate check a write makes before any create. Candidates only; the rules decide.
    async fn find_similar(&self, record: &ExternalRecord) -> Result<Vec<ExternalRecord>, ConnectorError>;
    /// Creates `record` (its id is ignored). A create that may have reached the system is
    /// never repeated: an unknown outcome is an error, and the caller looks for the record
    /// ([`find_similar`](Connector::find_similar)) before trying again.
    async fn create(&self, record: &ExternalRecord) -> Result<Written, ConnectorError>;
    /// How many creates one call of [`create_many`](Connector::create_many) carries (1: the
    /// system has no batch create, and `create_many` is one create after another).
    fn create_batch(&self) -> usize {
        1
    }
    /// Creates `records` (of one kind, none the same record as another) in as few calls
    /// as the system allows; one result per record, in order, each as
    /// [`create`](Connector::create)'s (a call whose outcome is unknown gives that error
    /// for every record it carried).
    async fn create_many(&self, records: &[ExternalRecord]) -> Vec<Result<Written, ConnectorError>> {
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            out.push(self.create(record).await);
        }
        out
    }
    /// Sets `fields` (names from the kind's writable list in the system's
    /// [`Description`]) of the record with `record`'s id to `record`'s values; other fields
    /// are left as the system holds them. A field the system does not write is refused
    /// before any request.
    async fn update(&self, record: &ExternalRecord, fields: &[&str]) -> Result<Written, ConnectorError>;
    /// Deletes the record `id` of `kind` (sync out, when a linked CRM record is deleted and
    /// the tenant propagates deletes): the record is gone afterwards. A record already gone
    /// (the vendor's 404, Salesforce's `ENTITY_IS_DELETED`) is `Ok(())`, so a redelivered
    /// message deletes once and succeeds the second time. A kind the system cannot delete
    /// through its API (or Tandem does not write) is refused before any request
    /// ([`not_deleted`]: not retryable, naming the kind). An id that cannot be one of the
    /// system's is refused as [`get`](Connector::get) refuses it. The default refuses every
    /// kind.
    async fn delete(&self, kind: RecordKind, id: &str) -> Result<(), ConnectorError> {
        let _ = id;
        Err(not_deleted(self.system(), kind))
    }

    /// `object`'s describe (its fields, their types, lengths, picklist values and flags),
    /// where the system describes its objects (Salesforce); `None` where it does not.
    async fn describe_object(&self, object: &str) -> Result<Option<crate::field_map::ObjectDescribe>, ConnectorError> {
        let _ = object;
        Ok(None)
    }

    // Field-level access (Salesforce's field-level mode, PRODUCT.md section 7): records of
    // the system's own objects as the system names their fields, for the field map.

    /// The rows of `query.object` the query selects, each with its `Id`, its
    /// `LastModifiedDate` and the fields asked for, in id order; the default refuses (the
    /// system has no field-level mode).
    async fn query_objects(&self, query: &ObjectQuery) -> Result<Vec<ObjectRow>, ConnectorError> {
        Err(no_field_level(self.system(), &query.object))
    }
    /// Creates one `object` with `fields` (sent once: an unknown outcome is an error, and
    /// the caller searches before trying again); its new id.
    async fn create_object(&self, object: &str, fields: &ObjectRow) -> Result<Written, ConnectorError> {
        let _ = fields;
        Err(no_field_level(self.system(), object))
    }
    /// Sets `fields` of the `object` with `id`; the others are left as they are.
    async fn update_object(&self, object: &str, id: &str, fields: &ObjectRow) -> Result<Written, ConnectorError> {
        let _ = (id, fields);
        Err(no_field_level(self.system(), object))
    }

    /// Tells the system to call `url` with changes of the records Tandem syncs, where it
    /// has an API for that (ConnectWise callbacks, Halo webhooks), idempotently: what is
    /// registered already is kept. `secret` is what the calls prove themselves with where
    /// the system sends a configured credential. Answers what was registered, or `None`
    /// where a person sets it up in the system.
    async fn register_webhook(&self, url: &str, secret: &str) -> Result<Option<String>, ConnectorError> {
        let _ = (url, secret);
        Ok(None)
    }

    /// Removes what [`register_webhook`](Connector::register_webhook) made for `url`, if
    /// anything, idempotently.
    async fn unregister_webhook(&self, url: &str) -> Result<(), ConnectorError> {
        let _ = url;
        Ok(())
    }

    /// What the system's webhook reader verifies a call with, given the connection's
    /// webhook secret: the secret itself, unless the system's proof also names the account
    /// (Salesforce's organisation id, read once from the org).
    async fn webhook_proof(&self, secret: &[u8]) -> Result<Vec<u8>, ConnectorError> {
        Ok(secret.to_vec())
    }

    /// The key a webhook call names for its own verification (ConnectWise's
    /// `Metadata.key_url`), fetched only from the connection's own host. Systems that
    /// verify with a secret Tandem holds have none.
    async fn webhook_key(&self, key_url: &str) -> Result<Vec<u8>, ConnectorError> {
        let _ = key_url;
        Err(ConnectorError::new(
            self.system(),
            ErrorKind::Invalid,
            format!("{} webhooks name no key to fetch", self.system().display_name()),
        ))
    }
}

/// One object's record as the system names its fields (`Id`, `Email`, `Visit_Result__c`).
pub type ObjectRow = serde_json::Map<String, serde_json::Value>;

/// A read of one of the system's objects by its own field names (field-level mode).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectQuery {
    pub object: String,
    /// Fields to read besides `Id` and `LastModifiedDate`.
    pub fields: Vec<String>,
    /// Fields that must equal these texts (a duplicate search).
    pub equal: Vec<(String, String)>,
    /// Only the rows with these ids (none: any).
    pub ids: Vec<String>,
    /// Only rows changed at or after this instant.
    pub changed_since: Option<Timestamp>,
    /// Only rows whose id sorts after this one (paging).
    pub after: Option<String>,
    /// At most this many rows.
    pub limit: usize,
}

/// The refusal of field-level access by a system that has no field-level mode.
pub fn no_field_level(system: System, object: &str) -> ConnectorError {
    ConnectorError::new(
        system,
        ErrorKind::Invalid,
        format!("{} has no field-level mode: Tandem reads and writes no {object} objects there", system.display_name()),
    )
}

/// What a write left in the external system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The record's external id (new on a create).
    pub id: String,
    /// Its version after the write, when the system's answer carries it.
    pub version: Option<crate::ledger::ExtVersion>,
}

/// The [`ErrorKind::Invalid`] refusal of a write of a kind `system` is not written to.
pub fn not_written(system: System, kind: RecordKind) -> ConnectorError {
    ConnectorError::new(
        system,
        ErrorKind::Invalid,
        format!("Tandem does not write {kind} records to {}", system.display_name()),
    )
}

/// The [`ErrorKind::Invalid`] refusal (not retryable) of a delete of a kind `system`
/// cannot delete through its API, or that Tandem does not write to it (Syncro's leads have
/// no `DELETE`).
pub fn not_deleted(system: System, kind: RecordKind) -> ConnectorError {
    ConnectorError::new(
        system,
        ErrorKind::Invalid,
        format!("Tandem cannot delete {kind} records in {} through its API", system.display_name()),
    )
}

/// The [`ErrorKind::Invalid`] refusal of an update naming fields `system` does not write
/// for `kind`, checked against its description before any request.
pub fn check_writable(description: &Description, kind: RecordKind, fields: &[&str]) -> Result<(), ConnectorError> {
    let writable = description.writable(kind);
    let refused: Vec<&str> = fields.iter().copied().filter(|f| !writable.contains(f)).collect();
    if refused.is_empty() {
        return Ok(());
    }
    Err(ConnectorError::new(
        description.system,
        ErrorKind::Invalid,
        format!(
            "{} does not write {} of a {kind}; writable: {}",
            description.system.display_name(),
            refused.join(", "),
            writable.join(", ")
        ),
    ))
}

/// The [`ErrorKind::Invalid`] refusal of `get` for a kind `system` does not have.
pub fn no_such_kind(system: System, kind: RecordKind) -> ConnectorError {
    ConnectorError::new(system, ErrorKind::Invalid, format!("{} has no {kind} records", system.display_name()))
}

/// The [`ErrorKind::Invalid`] refusal of `get` for an id that cannot be one of `system`'s.
pub fn bad_id(system: System, kind: RecordKind, id: &str, expected: &str) -> ConnectorError {
    let shown: String = id.chars().take(40).collect();
    ConnectorError::new(
        system,
        ErrorKind::Invalid,
        format!("{shown:?} is not a {} {kind} id ({expected})", system.display_name()),
    )
}

/// Builds connectors from credentials, and describes each system.
pub trait ConnectorFactory: Send + Sync {
    /// A connector for these credentials (no network call yet).
    fn connect(&self, creds: &Credentials) -> Result<Arc<dyn Connector>, ConnectorError>;
    /// What `system` supports and how its records differ.
    fn describe(&self, system: System) -> &'static Description;
    /// How `system`'s webhook calls are verified and read.
    fn webhooks(&self, system: System) -> &'static dyn crate::webhook::WebhookReader;
}

/// All option lists a connector offers, fetched live.
pub async fn all_options(
    connector: &dyn Connector,
    lists: &[OptionList],
) -> Result<BTreeMap<OptionList, Vec<Choice>>, ConnectorError> {
    let mut out = BTreeMap::new();
    for list in lists {
        out.insert(*list, connector.options(*list).await?);
    }
    Ok(out)
}
