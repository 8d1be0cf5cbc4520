//! The record store: Tandem's single-table key design over the [`Table`] port, shared by
//! the DynamoDB and embedded adapters so both keep the same keys and the same guarantees.
//!
//! Keys (every one starts with the tenant; one partition per record, never per tenant):
//!
//! | item | pk | sk | gsi1 (pk / sk) |
//! |---|---|---|---|
//! | record | `T#rec#KIND#ID` | `R` | `T#recs#KIND#SHARD` / `ID` |
//! | link + sync ledger (external id -> CRM id, versions, field hashes) | `T#link#SYSTEM#KIND#EXTID` | `L` | |
//! | look-up (phone, website, name, email) | `T#ix#KIND#FIELD#VALUE` | `ID` | |
//! | connection | `T#conn#SYSTEM` | `C` | |
//! | job | `T#job#ID` | `J` | `T#jobs` / `CREATED#ID` |
//! | run marker (the connection's running import) | `T#run#SYSTEM` | `R` | |
//! | sync-log entry (TTL) | `T#log#ID` | `E` | `T#log#DAY` / `AT#ID` |
//! | outbox entry: a CRM change (TTL) | `T#outbox#ID` | `O` | `T#outboxday#DAY` / `AT#ID` |
//! | export | `T#export#ID` | `X` | |
//! | calls made to a system in one UTC hour (TTL, API budget) | `T#usage#SYSTEM` | `H#HOUR` | |
//! | work waiting on a rate limit or the budget (TTL) | `T#waiting#SYSTEM` | work's dedup id | |
//! | dead letter: work that failed on its last delivery (TTL) | `T#dead#ID` | `D` | `T#deads` / `AT_MS#ID` |
//!
//! Records are written with their ledger entry, look-up entries and log entry in one
//! transaction, conditional on the record's version and on a new link being new: a
//! retried or racing write can never create a duplicate, link one CRM record twice to one
//! system, or lose an outcome. The ledger is its own item: the sync state (versions seen,
//! field hashes pulled and pushed) changes without touching the CRM record, so it never
//! bumps the record's version. The record keeps only the ids of its links (`meta.links`),
//! written once, in the transaction that creates the link, so a record read shows them.
//!
//! Data written before the ledger existed kept the external `updated_at` inside the
//! record's links; such bodies still read, and [`RecordStore::migrate_legacy_links`]
//! moves those versions into the ledger.
//!
//! Deviation from ARCHITECTURE.md (which puts adapters only in their crates): the key
//! design lives here, once, so the two adapters cannot drift apart; they implement only
//! item I/O.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use crate::export::Export;
use crate::ids::{JobId, RecordId, RecordKind, Stage, System, TenantId};
use crate::job::Job;
use crate::ledger::{ExtVersion, Ledger};
use crate::log::{LogEntry, LogFilter};
use crate::mapping::Connection;
use crate::normalise::Timestamp;
use crate::outbox::Change;
use crate::ports::{Condition, IndexKey, Item, Query, StoreError, Table, Write};
use crate::records::{ExternalLink, LookupField, Record};
use crate::sync::SweepMessage;

/// The most writes one transaction may hold (DynamoDB `TransactWriteItems`).
pub const MAX_TRANSACTION_WRITES: usize = 100;
/// How long sync-log entries are kept (DynamoDB TTL).
pub const LOG_RETENTION_DAYS: i64 = 90;
const SHARDS: &str = "0123456789abcdef";

/// A record write: the new state, what it replaces, its ledger entry, the log entry.
#[derive(Clone, Debug)]
pub struct RecordWrite {
    /// The record as it should be stored (its `meta.version` is the version it replaces).
    pub record: Record,
    /// The stored record it replaces, for index clean-up; `None` for a new record.
    pub previous: Option<Record>,
    /// The link's ledger entry: a new link when its version is 0 (must not exist yet at
    /// either end), else replaced if still at its version.
    pub ledger: Option<Ledger>,
    /// The log entry of this operation: must not exist yet.
    pub log: Option<LogEntry>,
}

/// A record item's tenant, kind, and (system, external id) of the links its body still
/// carries with a version from before the ledger existed.
type LegacyLinks = (TenantId, RecordKind, Vec<(System, String)>);

/// One page of a record listing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordPage {
    pub records: Vec<Record>,
    /// Where to continue; `None` at the end.
    pub next: Option<String>,
    /// Ids of stored records on this page that no longer parse (left out of `records`).
    pub unreadable: Vec<RecordId>,
}

/// The record store over any [`Table`].
#[derive(Clone)]
pub struct RecordStore {
    table: Arc<dyn Table>,
}

fn to_body<T: Serialize>(v: &T) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(v).map_err(|e| StoreError::Corrupt(format!("cannot encode: {e}")))
}

fn from_body<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    let pk = item.pk.clone();
    serde_json::from_value(item.body).map_err(|e| StoreError::Corrupt(format!("item {pk}: {e}")))
}

fn shard(id: &RecordId) -> char {
    id.as_str().chars().next().filter(|c| SHARDS.contains(*c)).unwrap_or('0')
}

/// Key builders (public so the conformance suite and adapters can check them).
pub mod keys {
    use super::*;

    pub fn record(t: &TenantId, kind: RecordKind, id: &RecordId) -> String {
        format!("{t}#rec#{kind}#{id}")
    }
    pub fn record_list(t: &TenantId, kind: RecordKind, shard: char) -> String {
        format!("{t}#recs#{kind}#{shard}")
    }
    pub fn link(t: &TenantId, system: System, kind: RecordKind, ext_id: &str) -> String {
        format!("{t}#link#{system}#{kind}#{ext_id}")
    }
    pub fn lookup(t: &TenantId, kind: RecordKind, field: LookupField, value: &str) -> String {
        format!("{t}#ix#{kind}#{}#{value}", field.as_str())
    }
    pub fn connection(t: &TenantId, system: System) -> String {
        format!("{t}#conn#{system}")
    }
    pub fn job(t: &TenantId, id: &JobId) -> String {
        format!("{t}#job#{id}")
    }
    pub fn jobs(t: &TenantId) -> String {
        format!("{t}#jobs")
    }
    /// The connection's run marker: which of its imports is running, if any.
    pub fn import_run(t: &TenantId, system: System) -> String {
        format!("{t}#run#{system}")
    }
    pub fn log(t: &TenantId, id: &str) -> String {
        format!("{t}#log#{id}")
    }
    pub fn log_day(t: &TenantId, day: &str) -> String {
        format!("{t}#logday#{day}")
    }
    pub fn export(t: &TenantId, id: &JobId) -> String {
        format!("{t}#export#{id}")
    }
    pub fn outbox(t: &TenantId, id: &str) -> String {
        format!("{t}#outbox#{id}")
    }
    pub fn outbox_day(t: &TenantId, day: &str) -> String {
        format!("{t}#outboxday#{day}")
    }
    /// Which connection a webhook key belongs to: the one item not under a tenant, as a
    /// webhook call names no tenant (the key is random and routes only; the call still
    /// proves itself with the connection's secret).
    pub fn webhook(key: &str) -> String {
        format!("webhook#{key}")
    }
    /// The index partition of the connections whose auto-sync is on (in either direction;
    /// the name is from when only inbound sync was built, kept so stored items stay found).
    pub const AUTO_SYNC: &str = "sync#inbound";
    /// A webhook delivery already taken, by the digest of its body.
    pub fn delivery(t: &TenantId, system: System, digest: &str) -> String {
        format!("{t}#delivery#{system}#{digest}")
    }
    /// The calls made to a system, one item per UTC hour (sort key `H#` and the hour).
    pub fn usage(t: &TenantId, system: System) -> String {
        format!("{t}#usage#{system}")
    }
    /// The work of a connection waiting on a rate limit or its API budget, one item per
    /// waiting message (sort key: the work's deduplication id).
    pub fn waiting(t: &TenantId, system: System) -> String {
        format!("{t}#waiting#{system}")
    }
    /// A dead letter (work that failed on its last delivery).
    pub fn dead_letter(t: &TenantId, id: &str) -> String {
        format!("{t}#dead#{id}")
    }
    /// The index partition listing the tenant's dead letters, by when (sort key: the
    /// milliseconds since 1970, 20 digits wide, `#` and the id).
    pub fn dead_letters(t: &TenantId) -> String {
        format!("{t}#deads")
    }
    /// The ids listed by one id reconciliation of a stage, one item per page.
    pub fn sweep(t: &TenantId, system: System, stage: Stage, sweep_id: &str) -> String {
        format!("{t}#sweep#{system}#{stage}#{sweep_id}")
    }
}

impl RecordStore {
    /// A record store over `table`.
    pub fn new(table: Arc<dyn Table>) -> Self {
        Self { table }
    }

    /// The table underneath.
    pub fn table(&self) -> &Arc<dyn Table> {
        &self.table
    }

    // ---- connections

    /// The tenant's connection to `system`.
    pub async fn connection(&self, t: &TenantId, system: System) -> Result<Option<Connection>, StoreError> {
        match self.table.get(&keys::connection(t, system), "C").await? {
            Some(item) => {
                let version = item.version;
                let mut c: Connection = from_body(item)?;
                c.version = version;
                Ok(Some(c))
            }
            None => Ok(None),
        }
    }

    /// Writes a connection if nobody changed it since it was read (`version`).
    pub async fn save_connection(&self, c: &Connection) -> Result<Connection, StoreError> {
        let condition = if c.version == 0 { Condition::NotExists } else { Condition::VersionIs(c.version) };
        // Connections with auto-sync on are indexed, for the schedule to find (the poll of
        // those taking changes in, sync out's catch-up of those pushing).
        let gsi1 = (c.settings.auto_sync != crate::settings::AutoSync::Off)
            .then(|| IndexKey { pk: keys::AUTO_SYNC.into(), sk: format!("{}#{}", c.tenant, c.system) });
        let item = Item {
            pk: keys::connection(&c.tenant, c.system),
            sk: "C".into(),
            version: c.version + 1,
            gsi1,
            expires_at: None,
            body: to_body(c)?,
        };
        self.table.transact(vec![Write::Put { item, condition }]).await?;
        let mut saved = c.clone();
        saved.version += 1;
        Ok(saved)
    }

    /// The tenant's connections, to every system it has one with (one batched read).
    pub async fn connections(&self, t: &TenantId) -> Result<Vec<Connection>, StoreError> {
        let wanted: Vec<(String, String)> =
            System::ALL.iter().map(|s| (keys::connection(t, *s), "C".to_string())).collect();
        let mut out = Vec::new();
        for item in self.table.get_many(&wanted).await? {
            let version = item.version;
            let mut c: Connection = from_body(item)?;
            c.version = version;
            out.push(c);
        }
        out.sort_by_key(|c| c.system);
        Ok(out)
    }

    /// Every connection (of any tenant) whose inbound sync is on, for the scheduled poll.
    pub async fn inbound_connections(&self) -> Result<Vec<(TenantId, System)>, StoreError> {
        let all = self.auto_sync_connections().await?;
        Ok(all.into_iter().filter(|c| c.settings.auto_sync.inbound()).map(|c| (c.tenant, c.system)).collect())
    }

    /// Every connection (of any tenant) whose auto-sync is on, in either direction.
    pub async fn auto_sync_connections(&self) -> Result<Vec<Connection>, StoreError> {
        let mut out = Vec::new();
        let mut q = Query { limit: 500, ..Query::default() };
        loop {
            let page = self.table.query_index(keys::AUTO_SYNC, &q).await?;
            for item in page.items {
                let version = item.version;
                let mut c: Connection = from_body(item)?;
                c.version = version;
                out.push(c);
            }
            match page.next {
                Some(next) => q.after = Some(next),
                None => return Ok(out),
            }
        }
    }

    // ---- webhooks

    /// Records that webhook `key` routes to the tenant's connection to `system`.
    pub async fn save_webhook_owner(&self, key: &str, t: &TenantId, system: System) -> Result<(), StoreError> {
        let item = Item {
            pk: keys::webhook(key),
            sk: "W".into(),
            version: 1,
            gsi1: None,
            expires_at: None,
            body: serde_json::json!({"tenant": t, "system": system}),
        };
        self.table.transact(vec![Write::Put { item, condition: Condition::None }]).await
    }

    /// The connection webhook `key` routes to, if any.
    pub async fn webhook_owner(&self, key: &str) -> Result<Option<(TenantId, System)>, StoreError> {
        #[derive(serde::Deserialize)]
        struct Owner {
            tenant: TenantId,
            system: System,
        }
        match self.table.get(&keys::webhook(key), "W").await? {
            Some(item) => {
                let o: Owner = from_body(item)?;
                Ok(Some((o.tenant, o.system)))
            }
            None => Ok(None),
        }
    }

    /// Whether the delivery of `digest` was taken before (and its mark has not expired).
    pub async fn delivery_seen(
        &self,
        t: &TenantId,
        system: System,
        digest: &str,
        now: crate::normalise::Timestamp,
    ) -> Result<bool, StoreError> {
        let item = self.table.get(&keys::delivery(t, system, digest), "D").await?;
        Ok(item.is_some_and(|i| i.expires_at.is_none_or(|at| at > now.unix())))
    }

    /// Marks the delivery of `digest` as taken; `false` when it was taken before (a
    /// replay). The mark lasts `keep_seconds` from `now`.
    pub async fn first_delivery(
        &self,
        t: &TenantId,
        system: System,
        digest: &str,
        now: crate::normalise::Timestamp,
        keep_seconds: i64,
    ) -> Result<bool, StoreError> {
        let item = Item {
            pk: keys::delivery(t, system, digest),
            sk: "D".into(),
            version: 1,
            gsi1: None,
            expires_at: Some(now.plus_seconds(keep_seconds).unix()),
            body: serde_json::json!({"at": now}),
        };
        match self.table.transact(vec![Write::Put { item, condition: Condition::NotExists }]).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    // ---- API budget

    /// The calls made to `system` in the hours of the budget's window at `now` (one query:
    /// the newest 24 hourly items).
    pub async fn usage_hours(
        &self,
        t: &TenantId,
        system: System,
        now: Timestamp,
    ) -> Result<Vec<crate::budget::HourCalls>, StoreError> {
        let q = Query {
            sk_prefix: Some("H#".into()),
            limit: crate::budget::WINDOW_HOURS as usize,
            descending: true,
            ..Query::default()
        };
        let page = self.table.query(&keys::usage(t, system), &q).await?;
        let start = crate::budget::window_start(now);
        let mut out = Vec::new();
        for item in page.items {
            let hour: crate::budget::HourCalls = from_body(item)?;
            if hour.hour >= start {
                out.push(hour);
            }
        }
        Ok(out)
    }

    /// Adds `calls` to `system`'s count of the UTC hour `at` is in (read, add, write back
    /// at the version read; read again when someone else wrote meanwhile).
    pub async fn add_calls(&self, t: &TenantId, system: System, at: Timestamp, calls: u64) -> Result<(), StoreError> {
        let hour = crate::budget::hour_of(at);
        let pk = keys::usage(t, system);
        let sk = format!("H#{hour}");
        let mut last = None;
        for _ in 0..8 {
            let current = self.table.get(&pk, &sk).await?;
            let (condition, version, before) = match current {
                Some(item) => {
                    let version = item.version;
                    let count: crate::budget::HourCalls = from_body(item)?;
                    (Condition::VersionIs(version), version, count.calls)
                }
                None => (Condition::NotExists, 0, 0),
            };
            let body = to_body(&crate::budget::HourCalls { hour, calls: before + calls })?;
            let item = Item {
                pk: pk.clone(),
                sk: sk.clone(),
                version: version + 1,
                gsi1: None,
                expires_at: Some(hour.plus_seconds(crate::budget::KEEP_SECONDS).unix()),
                body,
            };
            match self.table.transact(vec![Write::Put { item, condition }]).await {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict(m)) => last = Some(m),
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict(last.unwrap_or_else(|| "the hour's call count kept changing".into())))
    }

    /// Notes that a message waits until `waiting.resumes_at`, under its work's
    /// deduplication id (a later wait of the same work replaces it); it expires an hour
    /// after it resumes.
    pub async fn save_waiting(&self, dedup_id: &str, waiting: &crate::work::Waiting) -> Result<(), StoreError> {
        let item = Item {
            pk: keys::waiting(&waiting.tenant, waiting.system),
            sk: dedup_id.to_string(),
            version: 1,
            gsi1: None,
            expires_at: Some(waiting.resumes_at.plus_seconds(3600).unix()),
            body: to_body(waiting)?,
        };
        self.table.transact(vec![Write::Put { item, condition: Condition::None }]).await
    }

    /// The work of `system` that waits past `now`, soonest to resume first (at most 1,000).
    pub async fn waiting(
        &self,
        t: &TenantId,
        system: System,
        now: Timestamp,
    ) -> Result<Vec<crate::work::Waiting>, StoreError> {
        let pk = keys::waiting(t, system);
        let mut out: Vec<crate::work::Waiting> = Vec::new();
        let mut q = Query { limit: 500, ..Query::default() };
        loop {
            let page = self.table.query(&pk, &q).await?;
            for item in page.items {
                let w: crate::work::Waiting = from_body(item)?;
                if w.resumes_at > now {
                    out.push(w);
                }
            }
            match page.next {
                Some(next) if out.len() < 1000 => q.after = Some(next),
                _ => break,
            }
        }
        out.sort_by_key(|w| w.resumes_at);
        Ok(out)
    }

    // ---- dead letters

    /// Writes a dead letter unless one with its id exists (the same message reported
    /// again); `false` if it existed. With `version` set, replaces the stored entry if it
    /// is still at that version (a conflict otherwise).
    pub async fn save_dead_letter(&self, d: &crate::dead_letter::DeadLetter) -> Result<bool, StoreError> {
        let condition = if d.version == 0 { Condition::NotExists } else { Condition::VersionIs(d.version) };
        let item = Item {
            pk: keys::dead_letter(&d.tenant, &d.id),
            sk: "D".into(),
            version: d.version + 1,
            gsi1: Some(IndexKey {
                pk: keys::dead_letters(&d.tenant),
                sk: format!("{:020}#{}", d.at.unix_millis().max(0), d.id),
            }),
            expires_at: Some(d.expires_at.unix()),
            body: to_body(d)?,
        };
        match self.table.transact(vec![Write::Put { item, condition }]).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict(_)) if d.version == 0 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The tenant's dead letter `id`, if it has one (and it has not expired).
    pub async fn dead_letter(
        &self,
        t: &TenantId,
        id: &str,
    ) -> Result<Option<crate::dead_letter::DeadLetter>, StoreError> {
        match self.table.get(&keys::dead_letter(t, id), "D").await? {
            Some(item) => {
                let version = item.version;
                let mut d: crate::dead_letter::DeadLetter = from_body(item)?;
                d.version = version;
                Ok(Some(d))
            }
            None => Ok(None),
        }
    }

    /// One page (at most `limit`) of the tenant's dead letters, newest first, from
    /// `after` (a previous page's token); the token to go on from, `None` at the end. A
    /// token this table did not issue is [`StoreError::InvalidToken`].
    pub async fn dead_letters(
        &self,
        t: &TenantId,
        after: Option<String>,
        limit: usize,
    ) -> Result<(Vec<crate::dead_letter::DeadLetter>, Option<String>), StoreError> {
        let q = Query { after, limit: limit.clamp(1, 1000), descending: true, ..Query::default() };
        let page = self.table.query_index(&keys::dead_letters(t), &q).await?;
        let mut out = Vec::new();
        for item in page.items {
            let version = item.version;
            let mut d: crate::dead_letter::DeadLetter = from_body(item)?;
            d.version = version;
            out.push(d);
        }
        Ok((out, page.next))
    }

    // ---- id reconciliation

    /// Keeps the ids the page of `msg` (an id reconciliation's) listed, until `expires`.
    /// Writing a page again (a retried message) replaces it.
    pub async fn save_sweep_page(
        &self,
        msg: &SweepMessage,
        ids: &[String],
        expires: Timestamp,
    ) -> Result<(), StoreError> {
        let item = Item {
            pk: keys::sweep(&msg.tenant, msg.system, msg.stage, &msg.sweep_id()),
            sk: format!("p#{}", msg.cursor.position),
            version: 1,
            gsi1: None,
            expires_at: Some(expires.unix()),
            body: serde_json::json!({ "ids": ids }),
        };
        self.table.transact(vec![Write::Put { item, condition: Condition::None }]).await
    }

    /// Every id the pages of `msg`'s id reconciliation listed.
    pub async fn sweep_ids(&self, msg: &SweepMessage) -> Result<HashSet<String>, StoreError> {
        let pk = keys::sweep(&msg.tenant, msg.system, msg.stage, &msg.sweep_id());
        let mut ids = HashSet::new();
        let mut after = None;
        loop {
            let page = self.table.query(&pk, &Query { after, limit: 100, ..Query::default() }).await?;
            for item in page.items {
                let page_ids: Vec<String> = serde_json::from_value(item.body.get("ids").cloned().unwrap_or_default())
                    .map_err(|e| StoreError::Corrupt(format!("item {pk}: {e}")))?;
                ids.extend(page_ids);
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(ids),
            }
        }
    }

    /// The external ids of `kind`'s records linked with `system` (every record read once).
    pub async fn linked_external_ids(
        &self,
        t: &TenantId,
        system: System,
        kind: RecordKind,
    ) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self.records(t, kind, after, 1000).await?;
            out.extend(page.records.iter().filter_map(|r| r.link(system).map(|l| l.id.clone())));
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(out),
            }
        }
    }

    // ---- jobs

    /// A job by id.
    pub async fn job(&self, t: &TenantId, id: &JobId) -> Result<Option<Job>, StoreError> {
        match self.table.get(&keys::job(t, id), "J").await? {
            Some(item) => {
                let version = item.version;
                let mut j: Job = from_body(item)?;
                j.version = version;
                Ok(Some(j))
            }
            None => Ok(None),
        }
    }

    fn job_put(job: &Job) -> Result<Write, StoreError> {
        let condition = if job.version == 0 { Condition::NotExists } else { Condition::VersionIs(job.version) };
        let item = Item {
            pk: keys::job(&job.tenant, &job.id),
            sk: "J".into(),
            version: job.version + 1,
            gsi1: Some(IndexKey { pk: keys::jobs(&job.tenant), sk: format!("{}#{}", job.created_at, job.id) }),
            expires_at: None,
            body: to_body(job)?,
        };
        Ok(Write::Put { item, condition })
    }

    fn run_marker_put(job: &Job, current: Option<&Item>, holder: Option<&JobId>) -> Write {
        let (version, condition) = match current {
            Some(item) => (item.version + 1, Condition::VersionIs(item.version)),
            None => (1, Condition::NotExists),
        };
        Write::Put {
            item: Item {
                pk: keys::import_run(&job.tenant, job.system),
                sk: "R".into(),
                version,
                gsi1: None,
                expires_at: None,
                body: serde_json::json!({ "job": holder }),
            },
            condition,
        }
    }

    fn run_holder(marker: Option<&Item>) -> Option<JobId> {
        marker.and_then(|i| i.body.get("job")).and_then(|v| v.as_str()).map(JobId::from_raw)
    }

    /// Writes a job if nobody changed it since it was read; returns it with its new
    /// version. A job that ends here also frees its connection's run marker, in the same
    /// transaction.
    pub async fn save_job(&self, job: &Job) -> Result<Job, StoreError> {
        let mut writes = vec![Self::job_put(job)?];
        if job.status.is_final() {
            let marker = self.table.get(&keys::import_run(&job.tenant, job.system), "R").await?;
            if Self::run_holder(marker.as_ref()).as_ref() == Some(&job.id) {
                writes.push(Self::run_marker_put(job, marker.as_ref(), None));
            }
        }
        self.table.transact(writes).await?;
        let mut saved = job.clone();
        saved.version += 1;
        Ok(saved)
    }

    /// Saves a running job that is starting (new) or starting again (resumed), claiming
    /// its connection's run marker in the same transaction, conditional on the marker's
    /// version: of two racing claims exactly one commits, the other gets
    /// [`StoreError::Conflict`] and, read again, sees the winner. `Ok(Err(holder))` when
    /// another job of the connection is running. A marker naming a job that has ended
    /// (or is gone) is free.
    pub async fn claim_job(&self, job: &Job) -> Result<Result<Job, JobId>, StoreError> {
        let writes = match self.plan_claim(job).await? {
            Ok(writes) => writes,
            Err(holder) => return Ok(Err(holder)),
        };
        self.table.transact(writes).await?;
        let mut saved = job.clone();
        saved.version += 1;
        Ok(Ok(saved))
    }

    /// The read half of [`RecordStore::claim_job`]: the writes that claim the marker as it
    /// is now (conditional on it staying so), or the running job that holds it.
    pub async fn plan_claim(&self, job: &Job) -> Result<Result<Vec<Write>, JobId>, StoreError> {
        let marker = self.table.get(&keys::import_run(&job.tenant, job.system), "R").await?;
        if let Some(holder) = Self::run_holder(marker.as_ref())
            && holder != job.id
            && self.job(&job.tenant, &holder).await?.is_some_and(|h| !h.status.is_final())
        {
            return Ok(Err(holder));
        }
        Ok(Ok(vec![Self::job_put(job)?, Self::run_marker_put(job, marker.as_ref(), Some(&job.id))]))
    }

    /// The tenant's jobs, newest first.
    pub async fn jobs(&self, t: &TenantId, limit: usize) -> Result<Vec<Job>, StoreError> {
        let page =
            self.table.query_index(&keys::jobs(t), &Query { limit, descending: true, ..Query::default() }).await?;
        page.items
            .into_iter()
            .map(|item| {
                let version = item.version;
                from_body::<Job>(item).map(|mut j| {
                    j.version = version;
                    j
                })
            })
            .collect()
    }

    // ---- records and their ledger

    fn decode_record(item: Item) -> Result<Record, StoreError> {
        let version = item.version;
        let mut r: Record = from_body(item)?;
        r.meta_mut().version = version;
        Ok(r)
    }

    /// A record by kind and id.
    pub async fn record(&self, t: &TenantId, kind: RecordKind, id: &RecordId) -> Result<Option<Record>, StoreError> {
        self.table.get(&keys::record(t, kind, id), "R").await?.map(Self::decode_record).transpose()
    }

    /// The CRM id linked to an external record.
    pub async fn linked_id(
        &self,
        t: &TenantId,
        system: System,
        kind: RecordKind,
        ext_id: &str,
    ) -> Result<Option<RecordId>, StoreError> {
        Ok(self.ledgers(t, system, &[(kind, ext_id.to_string())]).await?.into_values().next().map(|l| l.crm_id))
    }

    /// The CRM record linked to an external record.
    pub async fn linked(
        &self,
        t: &TenantId,
        system: System,
        kind: RecordKind,
        ext_id: &str,
    ) -> Result<Option<Record>, StoreError> {
        match self.linked_id(t, system, kind, ext_id).await? {
            Some(id) => self.record(t, kind, &id).await,
            None => Ok(None),
        }
    }

    /// The ledger entries of these external records (kind, external id), in one batch
    /// read; unlinked ones are left out.
    pub async fn ledgers(
        &self,
        t: &TenantId,
        system: System,
        wanted: &[(RecordKind, String)],
    ) -> Result<HashMap<(RecordKind, String), Ledger>, StoreError> {
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        let by_pk: HashMap<String, &(RecordKind, String)> =
            wanted.iter().map(|w| (keys::link(t, system, w.0, &w.1), w)).collect();
        let request: Vec<(String, String)> = by_pk.keys().map(|pk| (pk.clone(), "L".to_string())).collect();
        let mut out = HashMap::new();
        for item in self.table.get_many(&request).await? {
            let Some(w) = by_pk.get(&item.pk) else { continue };
            let version = item.version;
            let mut ledger: Ledger = from_body(item)?;
            ledger.system = system;
            ledger.kind = w.0;
            ledger.external_id = w.1.clone();
            ledger.version = version;
            out.insert((*w).clone(), ledger);
        }
        Ok(out)
    }

    /// The CRM ids linked to these external records, in one batch read.
    pub async fn link_ids(
        &self,
        t: &TenantId,
        system: System,
        wanted: &[(RecordKind, String)],
    ) -> Result<HashMap<(RecordKind, String), RecordId>, StoreError> {
        Ok(self.ledgers(t, system, wanted).await?.into_iter().map(|(k, l)| (k, l.crm_id)).collect())
    }

    /// The ids of the records of `kind` whose normalised `field` is `value` (at most 50).
    pub async fn lookup_ids(
        &self,
        t: &TenantId,
        kind: RecordKind,
        field: LookupField,
        value: &str,
    ) -> Result<Vec<RecordId>, StoreError> {
        let page =
            self.table.query(&keys::lookup(t, kind, field, value), &Query { limit: 50, ..Query::default() }).await?;
        Ok(page.items.into_iter().map(|i| RecordId::from_raw(i.sk)).collect())
    }

    /// Records by kind and id, in one batch read; missing ones are left out.
    pub async fn records_by_id(
        &self,
        t: &TenantId,
        wanted: &[(RecordKind, RecordId)],
    ) -> Result<HashMap<(RecordKind, RecordId), Record>, StoreError> {
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        let request: Vec<(String, String)> =
            wanted.iter().map(|(kind, id)| (keys::record(t, *kind, id), "R".to_string())).collect();
        let mut out = HashMap::new();
        for item in self.table.get_many(&request).await? {
            let record = Self::decode_record(item)?;
            out.insert((record.kind(), record.id().clone()), record);
        }
        Ok(out)
    }

    /// Every record of `kind` that belongs to the record `owner` (`field`: company or
    /// contact), oldest first, however many there are.
    pub async fn referencing(
        &self,
        t: &TenantId,
        kind: RecordKind,
        field: LookupField,
        owner: &RecordId,
    ) -> Result<Vec<Record>, StoreError> {
        let pk = keys::lookup(t, kind, field, owner.as_str());
        let mut wanted = Vec::new();
        let mut q = Query { limit: 500, ..Query::default() };
        loop {
            let page = self.table.query(&pk, &q).await?;
            wanted.extend(page.items.into_iter().map(|i| (kind, RecordId::from_raw(i.sk))));
            match page.next {
                Some(next) => q.after = Some(next),
                None => break,
            }
        }
        let mut records: Vec<Record> = self.records_by_id(t, &wanted).await?.into_values().collect();
        records.sort_by(Record::candidate_order);
        Ok(records)
    }

    // ---- exports

    /// An export by id.
    pub async fn export(&self, t: &TenantId, id: &JobId) -> Result<Option<Export>, StoreError> {
        match self.table.get(&keys::export(t, id), "X").await? {
            Some(item) => {
                let version = item.version;
                let mut e: Export = from_body(item)?;
                e.version = version;
                Ok(Some(e))
            }
            None => Ok(None),
        }
    }

    /// Writes an export if nobody changed it since it was read (a new one: if it does not
    /// exist); returns it with its new version.
    pub async fn save_export(&self, export: &Export) -> Result<Export, StoreError> {
        let condition = if export.version == 0 { Condition::NotExists } else { Condition::VersionIs(export.version) };
        let item = Item {
            pk: keys::export(&export.tenant, &export.id),
            sk: "X".into(),
            version: export.version + 1,
            gsi1: None,
            expires_at: None,
            body: to_body(export)?,
        };
        self.table.transact(vec![Write::Put { item, condition }]).await?;
        Ok(Export { version: export.version + 1, ..export.clone() })
    }

    /// Records of `kind` whose normalised `field` equals `value`, oldest first.
    pub async fn find(
        &self,
        t: &TenantId,
        kind: RecordKind,
        field: LookupField,
        value: &str,
    ) -> Result<Vec<Record>, StoreError> {
        let wanted: Vec<(RecordKind, RecordId)> =
            self.lookup_ids(t, kind, field, value).await?.into_iter().map(|id| (kind, id)).collect();
        let mut records: Vec<Record> = self.records_by_id(t, &wanted).await?.into_values().collect();
        records.sort_by(Record::candidate_order);
        Ok(records)
    }

    /// Writes a record with its ledger entry, look-up entries and log entry, all or nothing.
    pub async fn write(&self, t: &TenantId, w: RecordWrite) -> Result<Record, StoreError> {
        let (writes, record) = Self::prepare_write(t, w)?;
        self.table.transact(writes).await?;
        Ok(record)
    }

    /// The table writes of a record write (to commit together, all or nothing), and the
    /// record as it will be stored (with its new link, if any).
    pub fn prepare_write(t: &TenantId, w: RecordWrite) -> Result<(Vec<Write>, Record), StoreError> {
        let mut record = w.record;
        let kind = record.kind();
        let id = record.id().clone();
        let prev_version = record.meta().version;
        let condition = if prev_version == 0 { Condition::NotExists } else { Condition::VersionIs(prev_version) };
        record.meta_mut().version = prev_version + 1;
        if let Some(l) = &w.ledger {
            record.meta_mut().links.insert(l.system, ExternalLink { id: l.external_id.clone() });
        }
        let mut writes = vec![Write::Put {
            item: Item {
                pk: keys::record(t, kind, &id),
                sk: "R".into(),
                version: prev_version + 1,
                gsi1: Some(IndexKey { pk: keys::record_list(t, kind, shard(&id)), sk: id.to_string() }),
                expires_at: None,
                body: to_body(&record)?,
            },
            condition,
        }];
        if let Some(ledger) = &w.ledger {
            writes.push(Self::prepare_ledger(t, ledger)?);
        }
        let new_keys: BTreeSet<(LookupField, String)> = record.lookup_keys().into_iter().collect();
        let old_keys: BTreeSet<(LookupField, String)> =
            w.previous.as_ref().map(|p| p.lookup_keys().into_iter().collect()).unwrap_or_default();
        for (field, value) in old_keys.difference(&new_keys) {
            writes.push(Write::Delete { pk: keys::lookup(t, kind, *field, value), sk: id.to_string() });
        }
        for (field, value) in new_keys.difference(&old_keys) {
            writes.push(Write::Put {
                item: Item {
                    pk: keys::lookup(t, kind, *field, value),
                    sk: id.to_string(),
                    version: 1,
                    gsi1: None,
                    expires_at: None,
                    body: serde_json::json!({}),
                },
                condition: Condition::None,
            });
        }
        if let Some(entry) = &w.log {
            writes.push(Self::log_put(entry)?);
        }
        Ok((writes, record))
    }

    /// The table write of a ledger entry alone (the CRM record untouched): a new entry
    /// (version 0) must not exist yet; an existing one is replaced if still at its version.
    pub fn prepare_ledger(t: &TenantId, ledger: &Ledger) -> Result<Write, StoreError> {
        let body = to_body(ledger)?;
        let forward = |version, condition| Write::Put {
            item: Item {
                pk: keys::link(t, ledger.system, ledger.kind, &ledger.external_id),
                sk: "L".into(),
                version,
                gsi1: None,
                expires_at: None,
                body: body.clone(),
            },
            condition,
        };
        Ok(if ledger.version > 0 {
            forward(ledger.version + 1, Condition::VersionIs(ledger.version))
        } else {
            forward(1, Condition::NotExists)
        })
    }

    /// The look-up entries (keys) a stored record item should have, for a check that
    /// they all exist ([`RecordStore::index_repairs`]); none for an item that is not a
    /// record or does not parse.
    pub fn index_keys(item: &Item) -> Vec<(String, String)> {
        let Some((tenant, record)) = Self::record_of(item) else { return Vec::new() };
        let (kind, id) = (record.kind(), record.id().to_string());
        record
            .lookup_keys()
            .into_iter()
            .map(|(field, value)| (keys::lookup(&tenant, kind, field, &value), id.clone()))
            .collect()
    }

    /// The writes that add the look-up entries of a record item missing from `existing`
    /// (those of [`RecordStore::index_keys`] found stored): data written before an index
    /// existed gains it (the references of contacts, opportunities and activities).
    pub fn index_repairs(item: &Item, existing: &BTreeSet<(String, String)>) -> Vec<Write> {
        Self::index_keys(item)
            .into_iter()
            .filter(|key| !existing.contains(key))
            .map(|(pk, sk)| Write::Put {
                item: Item { pk, sk, version: 1, gsi1: None, expires_at: None, body: serde_json::json!({}) },
                condition: Condition::None,
            })
            .collect()
    }

    fn record_of(item: &Item) -> Option<(TenantId, Record)> {
        if item.sk != "R" {
            return None;
        }
        let (tenant, _) = item.pk.split_once("#rec#")?;
        Some((TenantId::parse(tenant).ok()?, serde_json::from_value(item.body.clone()).ok()?))
    }

    /// A record item's tenant, kind and the links its body still carries with an external
    /// version, from before the ledger existed (`meta.links.SYSTEM.updated_at`).
    fn legacy_links(item: &Item) -> Option<LegacyLinks> {
        if item.sk != "R" {
            return None;
        }
        let links = item.body.get("meta")?.get("links")?.as_object()?;
        let (tenant, rest) = item.pk.split_once("#rec#")?;
        let kind: RecordKind = rest.split_once('#')?.0.parse().ok()?;
        let found: Vec<(System, String)> = links
            .iter()
            .filter(|(_, l)| l.get("updated_at").is_some())
            .filter_map(|(system, l)| Some((system.parse().ok()?, l.get("id")?.as_str()?.to_string())))
            .collect();
        (!found.is_empty()).then_some((TenantId::parse(tenant).ok()?, kind, found))
    }

    /// The ledger entries (keys) a [`RecordStore::migrate_legacy_links`] of `item` reads.
    pub fn legacy_ledger_keys(item: &Item) -> Vec<(String, String)> {
        let Some((tenant, kind, links)) = Self::legacy_links(item) else { return Vec::new() };
        links.iter().map(|(system, ext)| (keys::link(&tenant, *system, kind, ext), "L".to_string())).collect()
    }

    /// Moves the external versions a record body still carries from before the ledger
    /// existed into the links' ledger entries (`existing`: those entries as stored, by
    /// pk, read with [`RecordStore::legacy_ledger_keys`]), and stores the body without
    /// them. Returns the writes to commit together; none when there is nothing to move.
    pub fn migrate_legacy_links(item: &Item, existing: &HashMap<String, Item>) -> Option<Vec<Write>> {
        let (tenant, kind, links) = Self::legacy_links(item)?;
        let id = item.pk.rsplit_once('#')?.1;
        let mut body = item.body.clone();
        let stored = body.get_mut("meta")?.get_mut("links")?.as_object_mut()?;
        let mut writes = Vec::new();
        for (system, external_id) in links {
            let seen = stored
                .get_mut(system.as_str())
                .and_then(|l| l.as_object_mut())
                .and_then(|l| l.remove("updated_at"))
                .and_then(|v| v.as_str().map(ExtVersion::parse));
            let pk = keys::link(&tenant, system, kind, &external_id);
            let current = existing.get(&pk);
            let mut ledger: Ledger = match current {
                Some(c) => serde_json::from_value(c.body.clone()).ok()?,
                None => serde_json::from_value(serde_json::json!({ "id": id })).ok()?,
            };
            ledger.seen = ledger.seen.or(seen);
            writes.push(Write::Put {
                item: Item {
                    pk,
                    sk: "L".into(),
                    version: current.map_or(1, |c| c.version + 1),
                    gsi1: None,
                    expires_at: None,
                    body: to_body(&ledger).ok()?,
                },
                condition: current.map_or(Condition::NotExists, |c| Condition::VersionIs(c.version)),
            });
        }
        writes.push(Write::Put {
            item: Item { version: item.version + 1, body, ..item.clone() },
            condition: Condition::VersionIs(item.version),
        });
        Some(writes)
    }

    /// The table write of a log entry that must not exist yet.
    pub fn prepare_log(entry: &LogEntry) -> Result<Write, StoreError> {
        Self::log_put(entry)
    }

    /// The table write of an outbox entry that must not exist yet (kept as long as the
    /// sync log, by TTL, once the flows that read it are done with it).
    pub fn prepare_change(change: &Change) -> Result<Write, StoreError> {
        Ok(Write::Put {
            item: Item {
                pk: keys::outbox(&change.tenant, &change.id),
                sk: "O".into(),
                version: 1,
                gsi1: Some(IndexKey {
                    pk: keys::outbox_day(&change.tenant, &change.at.day()),
                    sk: format!("{}#{}", change.at, change.id),
                }),
                expires_at: Some(change.at.plus_seconds(LOG_RETENTION_DAYS * 86_400).unix()),
                body: to_body(change)?,
            },
            condition: Condition::NotExists,
        })
    }

    /// The table write that removes a link (the ledger entry) to the external system.
    pub fn prepare_unlink(t: &TenantId, ledger: &Ledger) -> Write {
        Write::Delete { pk: keys::link(t, ledger.system, ledger.kind, &ledger.external_id), sk: "L".into() }
    }

    /// The table writes that delete `record` and its look-up entries. Its ledger entries
    /// stay: a flow that propagates deletes reads them. The delete itself carries no
    /// condition; committed with the change's outbox entry (named by the version it
    /// writes, and which must not exist), it fails when another write took that version.
    pub fn prepare_delete(t: &TenantId, record: &Record) -> Vec<Write> {
        let (kind, id) = (record.kind(), record.id());
        let mut writes = vec![Write::Delete { pk: keys::record(t, kind, id), sk: "R".into() }];
        for (field, value) in record.lookup_keys() {
            writes.push(Write::Delete { pk: keys::lookup(t, kind, field, &value), sk: id.to_string() });
        }
        writes
    }

    /// The CRM changes of `day` (`YYYY-MM-DD`), oldest first.
    pub async fn changes(&self, t: &TenantId, day: &str) -> Result<Vec<Change>, StoreError> {
        let mut out = Vec::new();
        let mut q = Query { limit: 500, ..Query::default() };
        loop {
            let page = self.table.query_index(&keys::outbox_day(t, day), &q).await?;
            for item in page.items {
                out.push(from_body(item)?);
            }
            match page.next {
                Some(next) => q.after = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// The CRM changes of `day` (`YYYY-MM-DD`) made after `after`, newest first: read back
    /// from the day's end only as far as needed (a second past `after`, as stamps of one
    /// second may sort apart from their instants by their written fraction).
    pub async fn changes_after(&self, t: &TenantId, day: &str, after: Timestamp) -> Result<Vec<Change>, StoreError> {
        let mut out = Vec::new();
        let mut q = Query { limit: 200, descending: true, ..Query::default() };
        let stop = after.plus_seconds(-1);
        loop {
            let page = self.table.query_index(&keys::outbox_day(t, day), &q).await?;
            for item in page.items {
                let change: Change = from_body(item)?;
                if change.at < stop {
                    return Ok(out);
                }
                if change.at > after {
                    out.push(change);
                }
            }
            match page.next {
                Some(next) => q.after = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// Commits several prepared writes in one transaction (at most 100 writes).
    pub async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.table.transact(writes).await
    }

    /// Records of `kind`, a page at a time (`after` from the previous page). A stored
    /// record that no longer parses does not hide the rest: it is left out, logged as an
    /// error and named in [`RecordPage::unreadable`]. A paging token this store did not
    /// issue is [`StoreError::InvalidToken`].
    pub async fn records(
        &self,
        t: &TenantId,
        kind: RecordKind,
        after: Option<String>,
        limit: usize,
    ) -> Result<RecordPage, StoreError> {
        // The cursor is `SHARD:ID-after`; shards are read in order.
        let limit = limit.clamp(1, 1000);
        let (mut shard_idx, mut within) = match after.as_deref() {
            None => (0, None),
            Some(a) => {
                let bad = || StoreError::InvalidToken(format!("{a:?} is not a token this store issued"));
                let (s, rest) = a.split_once(':').ok_or_else(bad)?;
                let mut chars = s.chars();
                let idx = match (chars.next(), chars.next()) {
                    (Some(c), None) => SHARDS.find(c).ok_or_else(bad)?,
                    _ => return Err(bad()),
                };
                (idx, (!rest.is_empty()).then(|| rest.to_string()))
            }
        };
        let mut out = RecordPage::default();
        while shard_idx < SHARDS.len() && out.records.len() + out.unreadable.len() < limit {
            let shard_char = SHARDS.as_bytes()[shard_idx] as char;
            let page = self
                .table
                .query_index(
                    &keys::record_list(t, kind, shard_char),
                    &Query {
                        after: within.take(),
                        limit: limit - out.records.len() - out.unreadable.len(),
                        ..Query::default()
                    },
                )
                .await?;
            for item in page.items {
                let id = item.gsi1.as_ref().map(|g| g.sk.clone()).unwrap_or_else(|| item.pk.clone());
                match Self::decode_record(item) {
                    Ok(r) => out.records.push(r),
                    Err(e) => {
                        tracing::error!(tenant = %t, kind = %kind, id = %id, error = %e, "a stored record does not parse; left out of the listing");
                        out.unreadable.push(RecordId::from_raw(id));
                    }
                }
            }
            match page.next {
                Some(n) if out.records.len() + out.unreadable.len() >= limit => {
                    out.next = Some(format!("{shard_char}:{n}"));
                    return Ok(out);
                }
                Some(n) => within = Some(n),
                None => shard_idx += 1,
            }
        }
        out.next = (shard_idx < SHARDS.len()).then(|| format!("{}:", SHARDS.as_bytes()[shard_idx] as char));
        Ok(out)
    }

    /// Every readable record of `kind` (for tests, the demo and small tenants).
    pub async fn all_records(&self, t: &TenantId, kind: RecordKind) -> Result<Vec<Record>, StoreError> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = self.records(t, kind, after, 1000).await?;
            all.extend(page.records);
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(all),
            }
        }
    }

    // ---- sync log

    fn log_put(entry: &LogEntry) -> Result<Write, StoreError> {
        Ok(Write::Put {
            item: Item {
                pk: keys::log(&entry.tenant, &entry.id),
                sk: "E".into(),
                version: 1,
                gsi1: Some(IndexKey {
                    pk: keys::log_day(&entry.tenant, &entry.at.day()),
                    sk: format!("{}#{}", entry.at, entry.id),
                }),
                expires_at: Some(entry.at.plus_seconds(LOG_RETENTION_DAYS * 86_400).unix()),
                body: to_body(entry)?,
            },
            condition: Condition::NotExists,
        })
    }

    /// Writes a log entry unless one with its id exists; `false` if it existed.
    pub async fn put_log(&self, entry: &LogEntry) -> Result<bool, StoreError> {
        match self.table.transact(vec![Self::log_put(entry)?]).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The log entries with these ids that exist, by id.
    pub async fn logs_by_id(&self, t: &TenantId, ids: &[String]) -> Result<HashMap<String, LogEntry>, StoreError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let keys: Vec<(String, String)> = ids.iter().map(|id| (keys::log(t, id), "E".to_string())).collect();
        let mut out = HashMap::new();
        for item in self.table.get_many(&keys).await? {
            let e: LogEntry = from_body(item)?;
            out.insert(e.id.clone(), e);
        }
        Ok(out)
    }

    /// One page (at most `limit` entries, newest first) of the log entries stamped on `day`
    /// (`YYYY-MM-DD`), from `after` (a previous page's position); the position to go on
    /// from, `None` at the day's end.
    pub async fn log_day_page(
        &self,
        t: &TenantId,
        day: &str,
        after: Option<String>,
        limit: usize,
    ) -> Result<(Vec<LogEntry>, Option<String>), StoreError> {
        let page = self
            .table
            .query_index(&keys::log_day(t, day), &Query { after, limit, descending: true, ..Query::default() })
            .await?;
        let entries = page.items.into_iter().map(from_body).collect::<Result<Vec<LogEntry>, _>>()?;
        Ok((entries, page.next))
    }

    /// Log entries matching `filter`, newest first, reading day by day back to `since`
    /// (default: the last 7 days). The window is clamped to what can exist: nothing is
    /// older than the retention ([`LOG_RETENTION_DAYS`], gone by TTL) and nothing is
    /// stamped more than a day ahead of `now`; so one query reads at most
    /// `LOG_RETENTION_DAYS + 2` day partitions, whatever range it asks for.
    pub async fn logs(&self, t: &TenantId, filter: &LogFilter, now: Timestamp) -> Result<Vec<LogEntry>, StoreError> {
        let limit = filter.limit();
        let newest = now.plus_seconds(86_400);
        let oldest = now.plus_seconds(-LOG_RETENTION_DAYS * 86_400);
        let until = filter.until.unwrap_or(newest).min(newest);
        let since = filter.since.unwrap_or(now.plus_seconds(-7 * 86_400)).max(oldest);
        let mut out = Vec::new();
        let mut day = until;
        while out.len() < limit && day.day() >= since.day() {
            let mut after = None;
            loop {
                let page = self
                    .table
                    .query_index(
                        &keys::log_day(t, &day.day()),
                        &Query { after, limit: 1000, descending: true, ..Query::default() },
                    )
                    .await?;
                for item in page.items {
                    let e: LogEntry = from_body(item)?;
                    if filter.matches(&e) {
                        out.push(e);
                        if out.len() >= limit {
                            return Ok(out);
                        }
                    }
                }
                match page.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            day = day.plus_seconds(-86_400);
        }
        Ok(out)
    }
}
