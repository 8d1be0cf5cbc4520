//! Snapshots of a tenant's CRM records and links, and their restore (PRODUCT.md section 9):
//! taken by themselves before a connection's first import and before auto-sync is first
//! switched on, and on demand (`POST /snapshots`); listed (`GET /snapshots`); restored
//! (`POST /snapshots/{id}/restore`).
//!
//! A snapshot is one object of the [`SnapshotStore`](crate::ports::SnapshotStore) (S3 in
//! AWS, a file of the data directory locally), one JSON line per record with the ledger
//! entries of its links, written a page of records at a time: however many records, never
//! held whole in memory. Its description (when, why, how many) is an item of the table.
//!
//! A restore takes a snapshot of the present first (so it can be undone), then reads the
//! snapshot a line at a time and puts back each record and its links that differ from it
//! (records deleted since come back), then removes the records created since and their
//! links. Restoring the same snapshot again changes nothing. A restore raises no changes
//! for sync out: it puts the CRM back, it does not edit it, and nothing is sent to the
//! external systems (their records stay as they are; links restored point at them).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

use crate::error::DomainError;
use crate::ids::{RecordId, RecordKind, System, TenantId};
use crate::ledger::Ledger;
use crate::normalise::Timestamp;
use crate::ports::{Item, StoreError, Write};
use crate::records::Record;
use crate::table::{RecordStore, RecordWrite};
use crate::usecases::Services;

/// Records read per page while a snapshot is written or a restore clears what is new.
const PAGE: usize = 500;

/// Why a snapshot was taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Why {
    /// Asked for (`POST /snapshots`), with the caller's note if any.
    OnDemand {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Before the connection's first import.
    BeforeFirstImport { system: System },
    /// Before auto-sync was first switched on for the connection.
    BeforeAutoSync { system: System },
    /// Before a restore of another snapshot (restoring this one undoes it).
    BeforeRestore { of: String },
}

/// One snapshot's description.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: String,
    pub at: Timestamp,
    #[serde(flatten)]
    pub why: Why,
    /// Records in it.
    pub records: u64,
    /// Links (ledger entries) in it.
    pub links: u64,
    /// The object's size.
    pub bytes: u64,
    /// When it was restored, each time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restored: Vec<Timestamp>,
}

/// What a restore did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Restored {
    /// The snapshot restored.
    pub snapshot: String,
    /// The snapshot of the present taken first (restore it to undo this restore).
    pub undo: String,
    /// Records put back as they were (changed since, or deleted since).
    pub records_restored: u64,
    /// Records created since, removed.
    pub records_removed: u64,
    /// Records already as they were.
    pub records_unchanged: u64,
    /// Links put back, and links made since removed.
    pub links_restored: u64,
    pub links_removed: u64,
}

/// One line of a snapshot: a record and its links' ledger entries.
#[derive(Serialize, Deserialize)]
struct Line {
    record: Record,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    links: Vec<Link>,
}

/// A ledger entry with its key (the entry's own serialisation leaves the key out).
#[derive(Serialize, Deserialize)]
struct Link {
    system: System,
    kind: RecordKind,
    external_id: String,
    ledger: Ledger,
}

impl Link {
    fn of(ledger: Ledger) -> Self {
        Self { system: ledger.system, kind: ledger.kind, external_id: ledger.external_id.clone(), ledger }
    }

    fn into_ledger(self) -> Ledger {
        Ledger { system: self.system, kind: self.kind, external_id: self.external_id, ..self.ledger }
    }
}

mod keys {
    use crate::ids::TenantId;

    /// The partition of a tenant's snapshot descriptions (sort key: the snapshot's id).
    pub fn snapshots(t: &TenantId) -> String {
        format!("{t}#snapshots")
    }

    /// The snapshot's object in the snapshot store.
    pub fn object(t: &TenantId, id: &str) -> String {
        format!("{t}/{id}.jsonl")
    }
}

/// A new snapshot id: its time first, so ids sort as snapshots were taken.
fn new_id(at: Timestamp) -> String {
    let millis = at.datetime().unix_timestamp_nanos() / 1_000_000;
    format!("{millis:013}-{}", &RecordId::new().as_str()[..8])
}

fn corrupt(e: impl std::fmt::Display) -> DomainError {
    DomainError::Store(StoreError::Corrupt(format!("a snapshot line cannot be read: {e}")))
}

/// The ledger entries of `records`' links, one batch read per system.
async fn ledgers_of(svc: &Services, t: &TenantId, records: &[Record]) -> Result<Vec<Ledger>, DomainError> {
    let mut wanted: BTreeMap<System, Vec<(RecordKind, String)>> = BTreeMap::new();
    for r in records {
        for (system, link) in &r.meta().links {
            wanted.entry(*system).or_default().push((r.kind(), link.id.clone()));
        }
    }
    let mut out = Vec::new();
    for (system, keys) in wanted {
        out.extend(svc.store.ledgers(t, system, &keys).await?.into_values());
    }
    Ok(out)
}

/// Takes a snapshot of every CRM record of the tenant and its links now.
pub async fn take(svc: &Services, t: &TenantId, why: Why) -> Result<Snapshot, DomainError> {
    let at = svc.clock.now();
    let id = new_id(at);
    let mut out = svc.snapshots.create(&keys::object(t, &id)).await?;
    let (mut records, mut links) = (0, 0);
    for kind in RecordKind::ALL {
        let mut after = None;
        loop {
            let page = svc.store.records(t, *kind, after.take(), PAGE).await?;
            if !page.unreadable.is_empty() {
                return Err(DomainError::Store(StoreError::Corrupt(format!(
                    "{} stored {kind} records cannot be read ({}...); nothing is snapshotted until they are repaired",
                    page.unreadable.len(),
                    page.unreadable[0]
                ))));
            }
            let mut by_record: BTreeMap<(RecordKind, RecordId), Vec<Link>> = BTreeMap::new();
            for ledger in ledgers_of(svc, t, &page.records).await? {
                by_record.entry((ledger.kind, ledger.crm_id.clone())).or_default().push(Link::of(ledger));
            }
            for record in page.records {
                let links_of = by_record.remove(&(record.kind(), record.id().clone())).unwrap_or_default();
                links += links_of.len() as u64;
                records += 1;
                let line = serde_json::to_vec(&Line { record, links: links_of }).map_err(corrupt)?;
                out.line(&line).await?;
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    let bytes = out.finish().await?;
    let snapshot = Snapshot { id, at, why, records, links, bytes, restored: Vec::new() };
    save(svc, t, &snapshot, None).await?;
    tracing::info!(tenant = %t, snapshot = %snapshot.id, why = ?snapshot.why, records, links, bytes, "snapshot taken");
    Ok(snapshot)
}

/// Writes a snapshot's description (`version`: the stored one it replaces, none for new).
async fn save(svc: &Services, t: &TenantId, s: &Snapshot, version: Option<u64>) -> Result<(), DomainError> {
    let body = serde_json::to_value(s).map_err(|e| DomainError::internal(e.to_string()))?;
    let item = Item {
        pk: keys::snapshots(t),
        sk: s.id.clone(),
        version: version.map_or(1, |v| v + 1),
        gsi1: None,
        expires_at: None,
        body,
    };
    let condition = match version {
        Some(v) => crate::ports::Condition::VersionIs(v),
        None => crate::ports::Condition::NotExists,
    };
    svc.store.commit(vec![Write::Put { item, condition }]).await?;
    Ok(())
}

/// The tenant's snapshots, newest first.
pub async fn list(svc: &Services, t: &TenantId) -> Result<Vec<Snapshot>, DomainError> {
    let mut out = Vec::new();
    let mut q = crate::ports::Query { limit: 200, descending: true, ..Default::default() };
    loop {
        let page = svc.store.table().query(&keys::snapshots(t), &q).await?;
        for item in page.items {
            out.push(serde_json::from_value::<Snapshot>(item.body).map_err(corrupt)?);
        }
        match page.next {
            Some(next) => q.after = Some(next),
            None => return Ok(out),
        }
    }
}

/// One snapshot's description and its stored version.
async fn get(svc: &Services, t: &TenantId, id: &str) -> Result<(Snapshot, u64), DomainError> {
    let item = svc
        .store
        .table()
        .get(&keys::snapshots(t), id)
        .await?
        .ok_or_else(|| DomainError::not_found(format!("no snapshot {id}")))?;
    let version = item.version;
    Ok((serde_json::from_value(item.body).map_err(corrupt)?, version))
}

/// Takes a snapshot for `why` unless the tenant has one for that reason already (the
/// automatic ones are taken once: before the first import, before auto-sync first).
pub async fn take_once(svc: &Services, t: &TenantId, why: Why) -> Result<Option<Snapshot>, DomainError> {
    if list(svc, t).await?.iter().any(|s| s.why == why) {
        return Ok(None);
    }
    take(svc, t, why).await.map(Some)
}

/// Restores snapshot `id` (see the module docs).
pub async fn restore(svc: &Services, t: &TenantId, id: &str) -> Result<Restored, DomainError> {
    let (snapshot, _) = get(svc, t, id).await?;
    let mut reader =
        svc.snapshots.open(&keys::object(t, id)).await?.ok_or_else(|| {
            DomainError::not_found(format!("snapshot {id}'s records are gone from the snapshot store"))
        })?;
    let undo = take(svc, t, Why::BeforeRestore { of: id.to_string() }).await?;
    let mut done = Restored { snapshot: id.to_string(), undo: undo.id.clone(), ..Restored::default() };
    let mut kept: HashSet<(RecordKind, RecordId)> = HashSet::new();
    let mut kept_links: HashSet<(System, RecordKind, String)> = HashSet::new();
    while let Some(raw) = reader.next().await? {
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let line: Line = serde_json::from_slice(&raw).map_err(corrupt)?;
        kept.insert((line.record.kind(), line.record.id().clone()));
        kept_links.extend(line.links.iter().map(|l| (l.system, l.kind, l.external_id.clone())));
        put_back(svc, t, line, &mut done).await?;
    }
    for kind in RecordKind::ALL {
        remove_new(svc, t, *kind, &kept, &kept_links, &mut done).await?;
    }
    mark_restored(svc, t, id).await?;
    tracing::info!(tenant = %t, snapshot = %snapshot.id, undo = %done.undo, restored = done.records_restored,
        removed = done.records_removed, unchanged = done.records_unchanged, "snapshot restored");
    Ok(done)
}

/// Puts one record and its links back as the snapshot has them, where they differ.
async fn put_back(svc: &Services, t: &TenantId, line: Line, done: &mut Restored) -> Result<(), DomainError> {
    let Line { mut record, links } = line;
    let current = svc.store.record(t, record.kind(), record.id()).await?;
    let mut writes = Vec::new();
    let same = current.as_ref().is_some_and(|c| c.fields() == record.fields() && c.meta().links == record.meta().links);
    if same {
        done.records_unchanged += 1;
    } else {
        record.meta_mut().version = current.as_ref().map_or(0, |c| c.meta().version);
        let write = RecordWrite { record, previous: current, ledger: None, log: None };
        writes.extend(RecordStore::prepare_write(t, write)?.0);
        done.records_restored += 1;
    }
    for link in links {
        let wanted = link.into_ledger();
        let key = (wanted.kind, wanted.external_id.clone());
        let held = svc.store.ledgers(t, wanted.system, std::slice::from_ref(&key)).await?.remove(&key);
        if held.as_ref().is_some_and(|h| Ledger { version: 0, ..h.clone() } == Ledger { version: 0, ..wanted.clone() })
        {
            continue;
        }
        writes.push(RecordStore::prepare_ledger(t, &Ledger { version: held.map_or(0, |h| h.version), ..wanted })?);
        done.links_restored += 1;
    }
    if !writes.is_empty() {
        svc.store.commit(writes).await?;
    }
    Ok(())
}

/// Removes the records of `kind` the snapshot does not have (created since) and the
/// links of every record that the snapshot does not have (made since).
async fn remove_new(
    svc: &Services,
    t: &TenantId,
    kind: RecordKind,
    kept: &HashSet<(RecordKind, RecordId)>,
    kept_links: &HashSet<(System, RecordKind, String)>,
    done: &mut Restored,
) -> Result<(), DomainError> {
    let mut after = None;
    loop {
        let page = svc.store.records(t, kind, after.take(), PAGE).await?;
        for ledger in ledgers_of(svc, t, &page.records).await? {
            if !kept_links.contains(&(ledger.system, ledger.kind, ledger.external_id.clone())) {
                svc.store.commit(vec![RecordStore::prepare_unlink(t, &ledger)]).await?;
                done.links_removed += 1;
            }
        }
        for record in page.records.iter().filter(|r| !kept.contains(&(r.kind(), r.id().clone()))) {
            svc.store.commit(RecordStore::prepare_delete(t, record)).await?;
            done.records_removed += 1;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(()),
        }
    }
}

async fn mark_restored(svc: &Services, t: &TenantId, id: &str) -> Result<(), DomainError> {
    for _ in 0..5 {
        let (mut snapshot, version) = get(svc, t, id).await?;
        snapshot.restored.push(svc.clock.now());
        match save(svc, t, &snapshot, Some(version)).await {
            Err(DomainError::Store(StoreError::Conflict(_))) => continue,
            other => return other,
        }
    }
    Err(DomainError::Store(StoreError::Conflict(format!("snapshot {id} kept changing"))))
}
