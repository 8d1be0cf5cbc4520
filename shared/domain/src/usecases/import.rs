//! Import use cases: start a job (stage order and prerequisites enforced), run one page
//! of a stage (fetch, then load -> decide -> write in batches, log, checkpoint, chain the next message),
//! cancel, and resume from the checkpoint. Every step is idempotent: a redelivered
//! message or a re-run page never creates a duplicate or counts a record twice.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;

use crate::error::DomainError;
use crate::external::{Cursor, ExternalRecord};
use crate::ids::{JobId, RecordId, Stage, System, TenantId};
use crate::job::{Job, JobStatus, StageMessage, StageProgress};
use crate::log::{Direction, LogEntry, Outcome, SkipReason};
use crate::mapping::Connection;
use crate::normalise::Timestamp;
use crate::ports::{ErrorKind, StoreError, Write};
use crate::reconcile::{self, Decision, Plan, Policy};
use crate::table::{MAX_TRANSACTION_WRITES, RecordStore, RecordWrite};
use crate::usecases::Services;
use crate::usecases::connections::connection;
use crate::usecases::load::load;
use crate::work::Work;

/// Which stages an import runs: `"all"` or one stage's name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, try_from = "String")]
pub enum StageSelection {
    /// `"all"`: every stage in the system's order.
    All(AllStages),
    /// One stage, whose prerequisites must have completed.
    One(Stage),
}

impl TryFrom<String> for StageSelection {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s == "all" {
            return Ok(StageSelection::All(AllStages::All));
        }
        s.parse::<Stage>().map(StageSelection::One).map_err(|_| {
            let stages: Vec<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
            format!("unknown stage {s:?}; stages are \"all\" or one of: {}", stages.join(", "))
        })
    }
}

/// The literal `"all"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllStages {
    All,
}

/// Starts an import job and queues its first page. Refused when a stage's mapping is
/// missing, when a single stage's prerequisites have not completed, or while another
/// import of the same connection is running.
pub async fn start_import(
    svc: &Services,
    tenant: &TenantId,
    system: System,
    selection: StageSelection,
) -> Result<Job, DomainError> {
    let conn = connection(svc, tenant, system).await?;
    let stages: Vec<Stage> = match &selection {
        StageSelection::All(_) => system.stages().to_vec(),
        StageSelection::One(stage) => {
            if !system.stages().contains(stage) {
                return Err(DomainError::invalid(format!("{} has no {stage} stage", system.display_name())));
            }
            let missing: Vec<&str> = stage
                .needs()
                .iter()
                .filter(|s| system.stages().contains(s) && !conn.completed_stages.contains_key(s))
                .map(|s| s.as_str())
                .collect();
            if !missing.is_empty() {
                return Err(DomainError::refused(format!(
                    "the {stage} stage needs {} imported first; import those stages or import \"all\"",
                    missing.join(" and ")
                )));
            }
            vec![*stage]
        }
    };
    let unmapped: Vec<&str> = stages.iter().filter(|s| !conn.mappings.contains_key(s)).map(|s| s.as_str()).collect();
    if !unmapped.is_empty() {
        return Err(DomainError::refused(format!(
            "save the {} mapping before importing (mappings are saved in the order {})",
            unmapped.join(", "),
            system.stages().iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" -> ")
        )));
    }
    let now = svc.clock.now();
    let job = Job {
        tenant: tenant.clone(),
        id: JobId::new(),
        system,
        progress: stages.iter().map(|s| (*s, StageProgress::default())).collect(),
        stages,
        current: 0,
        cursor: Cursor::start(),
        status: JobStatus::Running,
        created_at: now,
        updated_at: now,
        attempt: 0,
        version: 0,
    };
    let job = claim(svc, &job).await?;
    requeue(svc, &job).await?;
    tracing::info!(tenant = %tenant, system = %system, job = %job.id, stages = ?job.stages, "import started");
    Ok(job)
}

/// Saves `job` as its connection's one running import (a conditional write: of racing
/// claims exactly one wins); refused while another import of the connection runs.
async fn claim(svc: &Services, job: &Job) -> Result<Job, DomainError> {
    for _ in 0..5 {
        match svc.store.claim_job(job).await {
            Ok(Ok(saved)) => return Ok(saved),
            Ok(Err(holder)) => {
                return Err(DomainError::refused(format!(
                    "an import of {} is already running (job {holder}); cancel it or wait for it to finish",
                    job.system.display_name(),
                )));
            }
            // Someone claimed or changed it meanwhile: read again and decide again.
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DomainError::Store(StoreError::Conflict(format!("the {} connection kept changing", job.system))))
}

/// Sends the message of the job's checkpoint (the queue drops it if the same one is
/// already pending).
async fn requeue(svc: &Services, job: &Job) -> Result<(), DomainError> {
    if let (JobStatus::Running, Some(msg)) = (&job.status, job.message()) {
        svc.queue.send(&Work::ImportPage(msg)).await.map_err(|e| DomainError::Store(StoreError::Unavailable(e.0)))?;
    }
    Ok(())
}

/// A job by id.
pub async fn job(svc: &Services, tenant: &TenantId, id: &JobId) -> Result<Job, DomainError> {
    svc.store.job(tenant, id).await?.ok_or_else(|| DomainError::not_found(format!("no job {id}")))
}

/// Cancels a running job; its next message stops there. Cancelling a finished job is refused.
pub async fn cancel(svc: &Services, tenant: &TenantId, id: &JobId) -> Result<Job, DomainError> {
    for _ in 0..5 {
        let mut j = job(svc, tenant, id).await?;
        if j.status.is_final() {
            return Err(DomainError::refused(format!("job {id} has already ended ({:?})", j.status)));
        }
        j.status = JobStatus::Cancelled;
        j.updated_at = svc.clock.now();
        match svc.store.save_job(&j).await {
            Ok(saved) => return Ok(saved),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DomainError::Store(StoreError::Conflict(format!("job {id} kept changing"))))
}

/// A job with whether it is stalled (running, no progress for `stall_after`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobView {
    #[serde(flatten)]
    pub job: Job,
    /// Running but without progress for longer than the configured stall time:
    /// `POST /jobs/{id}/resume` re-queues it from its checkpoint.
    pub stalled: bool,
}

/// A job by id, with whether it is stalled.
pub async fn job_view(svc: &Services, tenant: &TenantId, id: &JobId) -> Result<JobView, DomainError> {
    let job = job(svc, tenant, id).await?;
    Ok(view(svc, job))
}

/// The tenant's newest jobs, with whether each is stalled.
pub async fn jobs(svc: &Services, tenant: &TenantId, limit: usize) -> Result<Vec<JobView>, DomainError> {
    Ok(svc.store.jobs(tenant, limit).await?.into_iter().map(|j| view(svc, j)).collect())
}

fn view(svc: &Services, job: Job) -> JobView {
    let stalled = job.is_stalled(svc.clock.now(), svc.tuning.stall_after);
    JobView { job, stalled }
}

/// Resumes a job from its checkpoint. A failed job runs again (if no other import of
/// its connection runs meanwhile) and a stalled one is re-queued, each under a new
/// resume attempt, so the message is never swallowed by the queue's deduplication
/// window and older messages of the job become stale. A running job that is not
/// stalled only gets its checkpoint's message re-sent (a duplicate is dropped), so
/// resuming twice does no more than resuming once. A completed or cancelled job is
/// refused.
pub async fn resume(svc: &Services, tenant: &TenantId, id: &JobId) -> Result<Job, DomainError> {
    for _ in 0..5 {
        let j = job(svc, tenant, id).await?;
        let now = svc.clock.now();
        let failed = match &j.status {
            JobStatus::Completed => {
                return Err(DomainError::refused(format!("job {id} has completed; start a new import")));
            }
            JobStatus::Cancelled => {
                return Err(DomainError::refused(format!("job {id} was cancelled; start a new import")));
            }
            JobStatus::Running if !j.is_stalled(now, svc.tuning.stall_after) => {
                requeue(svc, &j).await?;
                return Ok(j);
            }
            JobStatus::Running => false,
            JobStatus::Failed(_) => true,
        };
        let mut next = j.clone();
        next.status = JobStatus::Running;
        next.attempt += 1;
        next.updated_at = now;
        let saved = if failed { claim(svc, &next).await } else { svc.store.save_job(&next).await.map_err(Into::into) };
        match saved {
            Ok(saved) => {
                requeue(svc, &saved).await?;
                tracing::info!(tenant = %tenant, job = %id, attempt = saved.attempt, stage = ?saved.current_stage(),
                    cursor = %saved.cursor.position, was_failed = failed, "job resumed from its checkpoint");
                return Ok(saved);
            }
            Err(DomainError::Store(StoreError::Conflict(_))) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(DomainError::Store(StoreError::Conflict(format!("job {id} kept changing"))))
}

/// Marks the job of a message that was dead-lettered (it failed on every delivery) as
/// failed, with the stage, the cursor and the last error, and publishes the failure.
/// A message the job has moved past (or of an earlier resume attempt) changes nothing.
pub async fn dead_lettered(
    svc: &Services,
    msg: &StageMessage,
    deliveries: u32,
    last_error: &str,
) -> Result<(), DomainError> {
    let Some(j) = svc.store.job(&msg.tenant, &msg.job_id).await? else { return Ok(()) };
    let current = j.attempt == msg.attempt && j.current_stage() == Some(msg.stage) && j.cursor == msg.cursor;
    if j.status.is_final() || !current {
        return Ok(());
    }
    let why = format!(
        "the {} stage stopped at cursor {:?} after {deliveries} failed deliveries; last error: {last_error}",
        msg.stage, msg.cursor.position
    );
    fail_job(svc, &msg.tenant, &msg.job_id, &why).await
}

/// What handling one stage message did.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// A page was processed and checkpointed; these are its counts.
    Page { job: Box<Job>, stage: Stage, counts: StageProgress },
    /// The message was a duplicate or outdated, or the job had ended: nothing done.
    Stale,
}

/// Processes one stage message: one page. Errors worth retrying are returned (the
/// message is redelivered); errors that retrying cannot fix fail the job and return Ok.
pub async fn run_page(svc: &Services, msg: &StageMessage) -> Result<Step, DomainError> {
    let Some(job) = svc.store.job(&msg.tenant, &msg.job_id).await? else {
        tracing::warn!(job = %msg.job_id, "message for an unknown job dropped");
        return Ok(Step::Stale);
    };
    if job.status.is_final() || job.attempt != msg.attempt {
        return Ok(Step::Stale);
    }
    if job.current_stage() != Some(msg.stage) || job.cursor != msg.cursor {
        // Already checkpointed past this message: make sure the current one is queued.
        requeue(svc, &job).await?;
        return Ok(Step::Stale);
    }
    match process_page(svc, &job, msg).await {
        Ok(step) => Ok(step),
        Err(e) if e.is_retryable() => Err(e),
        Err(e) => {
            fail_job(svc, &msg.tenant, &msg.job_id, &e.to_string()).await?;
            Ok(Step::Stale)
        }
    }
}

/// Ends a job as failed with `why` and publishes the failure (once: a job already
/// ended is left as it is).
async fn fail_job(svc: &Services, tenant: &TenantId, id: &JobId, why: &str) -> Result<(), DomainError> {
    tracing::error!(tenant = %tenant, job = %id, error = %why, "import failed");
    for _ in 0..5 {
        let mut j = job(svc, tenant, id).await?;
        if j.status.is_final() {
            return Ok(());
        }
        j.status = JobStatus::Failed(why.to_string());
        j.updated_at = svc.clock.now();
        match svc.store.save_job(&j).await {
            Ok(saved) => {
                svc.events.job_failed(&saved).await;
                return Ok(());
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

async fn process_page(svc: &Services, job: &Job, msg: &StageMessage) -> Result<Step, DomainError> {
    let tenant = &msg.tenant;
    // Independent reads go together: one round trip each time, not one per read.
    let (conn, creds) = futures::join!(connection(svc, tenant, msg.system), svc.secrets.get(tenant, msg.system));
    let conn = conn?;
    let creds = creds.map_err(|e| match e {
        crate::ports::SecretError::NotFound(_) => {
            DomainError::refused("the connection's credentials are missing; save credentials again")
        }
        crate::ports::SecretError::Unavailable(m) => DomainError::Store(StoreError::Unavailable(m)),
    })?;
    let connector = svc.connectors.connect(&creds)?;
    let described = svc.connectors.describe(msg.system);
    let fetched_at = svc.clock.now();
    let page = match connector.list(msg.stage.kind(), &msg.cursor).await {
        Ok(p) => p,
        Err(e) => {
            if e.kind == ErrorKind::Unauthorized {
                svc.secrets.invalidate(tenant, msg.system).await;
            }
            return Err(e.into());
        }
    };
    let now = svc.clock.now();
    let ids: Vec<String> =
        page.records.iter().filter_map(|r| r.id()).map(|id| LogEntry::import_id(&job.id, msg.stage, id)).collect();
    // Load: the page's log entries (records a redelivery already did) and what the
    // decisions read, concurrently.
    let (done, known) = futures::join!(
        svc.store.logs_by_id(tenant, &ids),
        load(&svc.store, tenant, &conn, described, msg.stage, &page.records)
    );
    let (done, mut known) = (done?, known?);
    let writer = PageWriter { svc, tenant, conn: &conn, job, stage: msg.stage, now };
    let policy = Policy::import(&conn, described);
    let mut counts = StageProgress { pages: 1, ..StageProgress::default() };
    let mut staged = Vec::new();
    for (n, record) in page.records.iter().enumerate() {
        let ext_id = record.id().map(str::to_string).unwrap_or_else(|| format!("#{}:{n}", msg.cursor.position));
        let log_id = LogEntry::import_id(&job.id, msg.stage, &ext_id);
        if let Some(entry) = done.get(&log_id) {
            counts.count(&entry.outcome);
            continue;
        }
        // Decide: pure, against what the load found and what the page decided before.
        let decision = reconcile::decide(&policy, &known, msg.stage, record, now);
        known.apply(&decision);
        match writer.prepare(decision, &ext_id, &log_id)? {
            Prepared::Fail(why) => counts.count(&writer.failed(&ext_id, &log_id, why).await?),
            Prepared::Writes(writes, outcome) => staged.push(Staged { record, ext_id, log_id, writes, outcome }),
        }
    }
    // Write: batched transactions, then the checkpoint.
    for outcome in writer.write_staged(staged).await? {
        counts.count(&outcome);
    }
    checkpoint(svc, job, msg, page.next, counts, fetched_at).await
}

/// A decision turned into table writes, or a failure to log.
enum Prepared {
    Fail(String),
    Writes(Vec<Write>, Outcome),
}

/// One record's decided writes, waiting for the page's batched write.
struct Staged<'r> {
    record: &'r ExternalRecord,
    ext_id: String,
    log_id: String,
    writes: Vec<Write>,
    outcome: Outcome,
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
fn waves(staged: &[Staged<'_>]) -> Vec<Vec<Vec<usize>>> {
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

async fn checkpoint(
    svc: &Services,
    job: &Job,
    msg: &StageMessage,
    next: Option<Cursor>,
    counts: StageProgress,
    fetched_at: Timestamp,
) -> Result<Step, DomainError> {
    let mut j = job.clone();
    let now = svc.clock.now();
    let progress = j.progress.entry(msg.stage).or_default();
    progress.add(&counts);
    progress.started_at.get_or_insert(fetched_at);
    let stage_done = next.is_none();
    match next {
        Some(cursor) => j.cursor = cursor,
        None => {
            progress.completed = true;
            progress.finished_at = Some(now);
            j.current += 1;
            j.cursor = Cursor::start();
            if j.current >= j.stages.len() {
                j.status = JobStatus::Completed;
            }
        }
    }
    j.updated_at = now;
    if stage_done {
        mark_stage_completed(svc, &msg.tenant, msg.system, msg.stage, now).await?;
    }
    let saved = match svc.store.save_job(&j).await {
        Ok(saved) => saved,
        Err(StoreError::Conflict(_)) => {
            // Someone else checkpointed this page, or the job was cancelled meanwhile.
            return Ok(Step::Stale);
        }
        Err(e) => return Err(e.into()),
    };
    if let (JobStatus::Running, Some(next_msg)) = (&saved.status, saved.message()) {
        svc.queue
            .send(&Work::ImportPage(next_msg))
            .await
            .map_err(|e| DomainError::Store(StoreError::Unavailable(e.0)))?;
    } else if saved.status == JobStatus::Completed {
        tracing::info!(job = %saved.id, "import completed");
    }
    Ok(Step::Page { job: Box::new(saved), stage: msg.stage, counts })
}

async fn mark_stage_completed(
    svc: &Services,
    tenant: &TenantId,
    system: System,
    stage: Stage,
    now: Timestamp,
) -> Result<(), DomainError> {
    for _ in 0..5 {
        let mut conn = connection(svc, tenant, system).await?;
        conn.completed_stages.insert(stage, now);
        match svc.store.save_connection(&conn).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DomainError::Store(StoreError::Conflict("the connection kept changing".into())))
}

/// Turns one page's decisions into writes and commits them.
struct PageWriter<'a> {
    svc: &'a Services,
    tenant: &'a TenantId,
    conn: &'a Connection,
    job: &'a Job,
    stage: Stage,
    now: Timestamp,
}

impl PageWriter<'_> {
    fn entry(&self, log_id: &str, ext_id: &str, crm_id: Option<RecordId>, outcome: Outcome) -> LogEntry {
        LogEntry {
            id: log_id.to_string(),
            tenant: self.tenant.clone(),
            at: self.now,
            system: self.conn.system,
            direction: Direction::Import,
            object: self.stage.kind(),
            crm_id,
            external_id: Some(ext_id.to_string()),
            outcome,
            job_id: Some(self.job.id.clone()),
            matched: None,
            fields: Vec::new(),
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
            Plan::Echo => (None, None, None, self.entry(log_id, ext_id, None, Outcome::Skipped(SkipReason::Echo))),
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
            Plan::Update { previous, record, ledger, fields }
            | Plan::Conflict { previous, record, ledger, fields, .. } => {
                let mut e = self.entry(log_id, ext_id, Some(record.id().clone()), Outcome::Updated);
                e.fields = fields;
                (Some(record), Some(previous), Some(ledger), e)
            }
        };
        let outcome = entry.outcome.clone();
        match record {
            Some(record) => {
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
        Ok(Prepared::Writes(writes, outcome))
    }

    /// Writes the page's staged records in as few round trips as the store allows (see
    /// [`waves`]) and returns their outcomes. A transaction whose condition fails (someone
    /// else wrote one of its items meanwhile) is redone record by record from the store,
    /// as [`PageWriter::import_one`] does, so every record still ends with exactly one outcome.
    async fn write_staged(&self, mut staged: Vec<Staged<'_>>) -> Result<Vec<Outcome>, DomainError> {
        let mut outcomes = Vec::with_capacity(staged.len());
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
                    Ok(()) => outcomes.extend(batch.iter().map(|i| staged[*i].outcome.clone())),
                    Err(StoreError::Conflict(_)) => redo.extend(batch.iter().copied()),
                    Err(e) => return Err(e.into()),
                }
            }
            if !redo.is_empty() {
                tracing::info!(job = %self.job.id, stage = %self.stage, records = redo.len(),
                    "a batch of the page conflicted with another write; redoing its records one by one");
            }
            for i in redo {
                let st = &staged[i];
                outcomes.push(self.import_one(st.record, &st.ext_id, &st.log_id).await?);
            }
        }
        Ok(outcomes)
    }

    /// Loads, decides and writes one record from the store alone; a record that fails is
    /// logged and does not stop the page.
    async fn import_one(&self, record: &ExternalRecord, ext_id: &str, log_id: &str) -> Result<Outcome, DomainError> {
        let described = self.svc.connectors.describe(self.conn.system);
        let policy = Policy::import(self.conn, described);
        for _attempt in 0..4 {
            let record_slice = std::slice::from_ref(record);
            let known = load(&self.svc.store, self.tenant, self.conn, described, self.stage, record_slice).await?;
            let decision = reconcile::decide(&policy, &known, self.stage, record, self.now);
            let (writes, outcome) = match self.prepare(decision, ext_id, log_id)? {
                Prepared::Fail(why) => return self.failed(ext_id, log_id, why).await,
                Prepared::Writes(writes, outcome) => (writes, outcome),
            };
            match self.svc.store.commit(writes).await {
                Ok(()) => return Ok(outcome),
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
        tracing::warn!(job = %self.job.id, stage = %self.stage, external_id = ext_id, reason = %why, "record failed");
        let outcome = Outcome::Failed(why);
        let entry = self.entry(log_id, ext_id, None, outcome.clone());
        self.svc.store.put_log(&entry).await?;
        self.svc.events.failed(&entry).await;
        Ok(outcome)
    }
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;
