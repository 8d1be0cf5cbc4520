//! Applying incoming records (load -> decide -> write), shared by the flows that take
//! records in: the import's pages, the scheduled poll's pages and the sync worker's single
//! records. One page's decisions are made against one batched load and written in waves
//! of transactions; a transaction that loses a race is redone record by record, so every
//! record ends with exactly one outcome under its deterministic log id.

use std::collections::HashSet;

use crate::describe::Description;
use crate::error::DomainError;
use crate::external::ExternalRecord;
use crate::ids::{JobId, RecordId, Stage, TenantId};
use crate::log::{ConflictLog, Direction, LogEntry, Outcome, SkipReason};
use crate::mapping::Connection;
use crate::normalise::Timestamp;
use crate::outbox::{Change, ChangeOp};
use crate::ports::{StoreError, Write};
use crate::reconcile::{self, Decision, Merge, Plan, Policy};
use crate::records::Record;
use crate::table::{MAX_TRANSACTION_WRITES, RecordStore, RecordWrite};
use crate::usecases::load::load;
use crate::usecases::{Services, crm, sync_out};

/// A decision turned into table writes, or a failure to log.
enum Prepared {
    Fail(String),
    /// The writes, the outcome, and the CRM change they make (sync in's writes only).
    Writes(Vec<Write>, Outcome, Option<Box<Change>>),
}

/// One record's decided writes, waiting for the page's batched write.
pub(crate) struct Staged<'r> {
    /// The record's place in the page.
    index: usize,
    record: &'r ExternalRecord,
    ext_id: String,
    log_id: String,
    writes: Vec<Write>,
    outcome: Outcome,
    change: Option<Box<Change>>,
}

/// The item a write touches.
fn item_of(w: &Write) -> (&str, &str) {
    match w {
        Write::Put { item, .. } => (&item.pk, &item.sk),
        Write::Delete { pk, sk } => (pk, sk),
    }
}

/// Groups staged records into waves of transactions: within a wave no two records touch
/// one item, so its transactions may commit concurrently; a record touching an item an
/// earlier record of the wave touches starts the next wave, so it commits after it. Each
/// transaction holds at most [`MAX_TRANSACTION_WRITES`] writes. Returns indices.
pub(crate) fn waves(staged: &[Staged<'_>]) -> Vec<Vec<Vec<usize>>> {
    let mut waves: Vec<Vec<Vec<usize>>> = Vec::new();
    let mut touched: HashSet<(&str, &str)> = HashSet::new();
    let mut size = 0;
    for (i, st) in staged.iter().enumerate() {
        let items: Vec<(&str, &str)> = st.writes.iter().map(item_of).collect();
        if waves.is_empty() || items.iter().any(|k| touched.contains(k)) {
            waves.push(vec![Vec::new()]);
            touched.clear();
            size = 0;
        }
        let wave = waves.last_mut().unwrap_or_else(|| unreachable!("a wave was just pushed"));
        if size + st.writes.len() > MAX_TRANSACTION_WRITES {
            wave.push(Vec::new());
            size = 0;
        }
        wave.last_mut().unwrap_or_else(|| unreachable!("a wave starts with a batch")).push(i);
        size += st.writes.len();
        touched.extend(items);
    }
    waves
}

/// Which flow applies records, and how: the log's direction, the job (an import's), the
/// merge rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    pub direction: Direction,
    pub job: Option<JobId>,
    pub merge: Merge,
}

/// Applies incoming records of one stage: load -> decide -> write, in batches.
pub(crate) struct Applier<'a> {
    svc: &'a Services,
    tenant: &'a TenantId,
    conn: &'a Connection,
    described: &'static Description,
    stage: Stage,
    run: Run,
    now: Timestamp,
}

impl<'a> Applier<'a> {
    /// An applier of `stage` records for `conn`, stamped with the clock's time now.
    pub fn new(svc: &'a Services, tenant: &'a TenantId, conn: &'a Connection, stage: Stage, run: Run) -> Self {
        let described = svc.connectors.describe(conn.system);
        Applier { svc, tenant, conn, described, stage, run, now: svc.clock.now() }
    }

    fn policy(&self) -> Policy<'_> {
        Policy { conn: self.conn, described: self.described, merge: self.run.merge }
    }

    /// Applies `records` (one page, in order; `log_ids[i]` is the deterministic id of
    /// record `i`'s operation): records whose operation is logged already (a redelivery)
    /// keep that outcome; the others are loaded, decided against what the load found and
    /// what the page decided before, and written in batched transactions. One outcome per
    /// record, in order; a record that fails is logged and does not stop the rest.
    pub async fn apply(&self, records: &[ExternalRecord], log_ids: &[String]) -> Result<Vec<Outcome>, DomainError> {
        let (done, known) = futures::join!(
            self.svc.store.logs_by_id(self.tenant, log_ids),
            load(&self.svc.store, self.tenant, self.conn, self.described, self.stage, records)
        );
        let (done, mut known) = (done?, known?);
        let policy = self.policy();
        let mut outcomes: Vec<Option<Outcome>> = vec![None; records.len()];
        let mut staged = Vec::new();
        for (n, (record, log_id)) in records.iter().zip(log_ids).enumerate() {
            if let Some(entry) = done.get(log_id) {
                outcomes[n] = Some(entry.outcome.clone());
                continue;
            }
            let ext_id = record.id().map_or_else(|| format!("#{n}"), str::to_string);
            let decision = reconcile::decide(&policy, &known, self.stage, record, self.now);
            known.apply(&decision);
            match self.prepare(decision, &ext_id, log_id)? {
                Prepared::Fail(why) => outcomes[n] = Some(self.failed(&ext_id, log_id, why).await?),
                Prepared::Writes(writes, outcome, change) => {
                    staged.push(Staged { index: n, record, ext_id, log_id: log_id.clone(), writes, outcome, change })
                }
            }
        }
        let indices: Vec<usize> = staged.iter().map(|s| s.index).collect();
        for (n, outcome) in indices.into_iter().zip(self.write_staged(staged).await?) {
            outcomes[n] = Some(outcome);
        }
        Ok(outcomes.into_iter().map(|o| o.unwrap_or_else(|| Outcome::Failed("not applied".into()))).collect())
    }

    fn entry(&self, log_id: &str, ext_id: &str, crm_id: Option<RecordId>, outcome: Outcome) -> LogEntry {
        LogEntry {
            id: log_id.to_string(),
            tenant: self.tenant.clone(),
            at: self.now,
            system: self.conn.system,
            direction: self.run.direction,
            object: self.stage.kind(),
            crm_id,
            external_id: Some(ext_id.to_string()),
            outcome,
            job_id: self.run.job.clone(),
            matched: None,
            fields: Vec::new(),
            conflicts: Vec::new(),
            error: None,
        }
    }

    /// The table writes of one decision, with its log entry, and its outcome.
    fn prepare(&self, decision: Decision, ext_id: &str, log_id: &str) -> Result<Prepared, DomainError> {
        let mut writes = Vec::new();
        for list in decision.new_lists {
            let w = RecordWrite { record: list, previous: None, ledger: None, log: None };
            writes.extend(RecordStore::prepare_write(self.tenant, w)?.0);
        }
        let (record, previous, ledger, entry) = match decision.plan {
            Plan::Fail(why) => return Ok(Prepared::Fail(why)),
            Plan::Skip(reason) => (None, None, None, self.entry(log_id, ext_id, None, Outcome::Skipped(reason))),
            Plan::Echo { ledger } => {
                let e = self.entry(log_id, ext_id, Some(ledger.crm_id.clone()), Outcome::Skipped(SkipReason::Echo));
                (None, None, Some(ledger), e)
            }
            Plan::Refresh { ledger } => {
                let e =
                    self.entry(log_id, ext_id, Some(ledger.crm_id.clone()), Outcome::Skipped(SkipReason::Unchanged));
                (None, None, Some(ledger), e)
            }
            Plan::Create { record, ledger } => {
                let e = self.entry(log_id, ext_id, Some(record.id().clone()), Outcome::Created);
                (Some(record), None, Some(ledger), e)
            }
            Plan::Link { previous, record, ledger, reason } => {
                let mut e = self.entry(log_id, ext_id, Some(record.id().clone()), Outcome::Linked);
                e.matched = Some(reason.to_string());
                (Some(record), Some(previous), Some(ledger), e)
            }
            Plan::Update { previous, record, ledger, fields } => {
                let mut e = self.entry(log_id, ext_id, Some(record.id().clone()), Outcome::Updated);
                e.fields = fields;
                (Some(record), Some(previous), Some(ledger), e)
            }
            Plan::Conflict { previous, record, ledger, fields, conflicts } => {
                let mut e = self.entry(log_id, ext_id, Some(record.id().clone()), Outcome::Updated);
                e.fields = fields;
                e.conflicts = conflicts
                    .into_iter()
                    .map(|c| ConflictLog {
                        winner: if c.external_won { "external" } else { "crm" }.into(),
                        field: c.field,
                        loser: c.loser,
                        crm_at: c.crm_at,
                        external_at: c.external_at,
                    })
                    .collect();
                (Some(record), Some(previous), Some(ledger), e)
            }
        };
        let outcome = entry.outcome.clone();
        let mut change = None;
        match record {
            Some(record) => {
                change = self.change_of(&record, previous.as_ref());
                if let Some(c) = &change {
                    writes.push(RecordStore::prepare_change(c)?);
                }
                let w = RecordWrite { record, previous, ledger, log: Some(entry) };
                writes.extend(RecordStore::prepare_write(self.tenant, w)?.0);
            }
            None => {
                if let Some(ledger) = &ledger {
                    writes.push(RecordStore::prepare_ledger(self.tenant, ledger)?);
                }
                writes.push(RecordStore::prepare_log(&entry)?);
            }
        }
        Ok(Prepared::Writes(writes, outcome, change))
    }

    /// The CRM change a sync-in write of `record` (replacing `previous`) makes: it goes into
    /// the outbox like the record API's own changes, so sync out sees it (as an echo for
    /// this connection, as a change for the tenant's other systems). The import's writes
    /// are bulk data, not changes: none.
    fn change_of(&self, record: &Record, previous: Option<&Record>) -> Option<Box<Change>> {
        if self.run.direction == Direction::Import {
            return None;
        }
        let change = match previous {
            None => Change::of(self.tenant, ChangeOp::Created, record, crm::set_fields(record), self.now),
            Some(previous) => {
                Change::of(self.tenant, ChangeOp::Updated, record, crm::changed_fields(previous, record), self.now)
            }
        };
        Some(Box::new(change))
    }

    /// Writes the page's staged records in as few round trips as the store allows (see
    /// [`waves`]) and returns their outcomes. A transaction whose condition fails (someone
    /// else wrote one of its items meanwhile) is redone record by record from the store,
    /// as [`Applier::import_one`] does, so every record still ends with exactly one outcome.
    async fn write_staged(&self, mut staged: Vec<Staged<'_>>) -> Result<Vec<Outcome>, DomainError> {
        let mut outcomes = Vec::with_capacity(staged.len());
        let mut relayed = Vec::new();
        for wave in waves(&staged) {
            let store = &self.svc.store;
            // The writes move into their transactions: a redo decides again from the store.
            let batches: Vec<Vec<Write>> = wave
                .iter()
                .map(|batch| batch.iter().flat_map(|i| std::mem::take(&mut staged[*i].writes)).collect())
                .collect();
            let commits = batches.into_iter().map(|writes| store.commit(writes));
            let results = futures::future::join_all(commits).await;
            let mut redo = Vec::new();
            for (batch, result) in wave.iter().zip(results) {
                match result {
                    Ok(()) => {
                        outcomes.extend(batch.iter().map(|i| staged[*i].outcome.clone()));
                        relayed.extend(batch.iter().filter_map(|i| staged[*i].change.take().map(|c| *c)));
                    }
                    Err(StoreError::Conflict(_)) => redo.extend(batch.iter().copied()),
                    Err(e) => return Err(e.into()),
                }
            }
            if !redo.is_empty() {
                tracing::info!(job = ?self.run.job, stage = %self.stage, records = redo.len(),
                    "a batch of the page conflicted with another write; redoing its records one by one");
            }
            for i in redo {
                let st = &staged[i];
                outcomes.push(self.import_one(st.record, &st.ext_id, &st.log_id).await?);
            }
        }
        sync_out::relay_committed(self.svc, self.tenant, &relayed).await;
        Ok(outcomes)
    }

    /// Loads, decides and writes one record from the store alone; a record that fails is
    /// logged and does not stop the page.
    async fn import_one(&self, record: &ExternalRecord, ext_id: &str, log_id: &str) -> Result<Outcome, DomainError> {
        let policy = self.policy();
        for _attempt in 0..4 {
            let record_slice = std::slice::from_ref(record);
            let known = load(&self.svc.store, self.tenant, self.conn, self.described, self.stage, record_slice).await?;
            let decision = reconcile::decide(&policy, &known, self.stage, record, self.now);
            let (writes, outcome, change) = match self.prepare(decision, ext_id, log_id)? {
                Prepared::Fail(why) => return self.failed(ext_id, log_id, why).await,
                Prepared::Writes(writes, outcome, change) => (writes, outcome, change),
            };
            match self.svc.store.commit(writes).await {
                Ok(()) => {
                    let change: Vec<Change> = change.into_iter().map(|c| *c).collect();
                    sync_out::relay_committed(self.svc, self.tenant, &change).await;
                    return Ok(outcome);
                }
                Err(StoreError::Conflict(_)) => {
                    // Someone wrote first: if it was this very operation, keep its outcome.
                    if let Some(e) = self.svc.store.logs_by_id(self.tenant, &[log_id.to_string()]).await?.remove(log_id)
                    {
                        return Ok(e.outcome);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.failed(ext_id, log_id, "the record kept changing while it was imported".into()).await
    }

    async fn failed(&self, ext_id: &str, log_id: &str, why: String) -> Result<Outcome, DomainError> {
        tracing::warn!(job = ?self.run.job, direction = ?self.run.direction, stage = %self.stage, external_id = ext_id, reason = %why, "record failed");
        let outcome = Outcome::Failed(why);
        let entry = self.entry(log_id, ext_id, None, outcome.clone());
        self.svc.store.put_log(&entry).await?;
        self.svc.events.failed(&crate::events::FailureEvent::of(&entry, &self.svc.tuning)).await;
        Ok(outcome)
    }
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
