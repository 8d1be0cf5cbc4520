//! Import use cases: start a job (stage order and prerequisites enforced), run one page
//! of a stage (fetch, decide, link or write, log, checkpoint, chain the next message),
//! cancel, and resume from the checkpoint. Every step is idempotent: a redelivered
//! message or a re-run page never creates a duplicate or counts a record twice.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

use crate::error::DomainError;
use crate::external::{
    Cursor, ExtActivity, ExtCompany, ExtContact, ExtOpportunity, ExtSolution, ExtUser, ExternalRecord, OptionList,
};
use crate::ids::{JobId, RecordId, RecordKind, Stage, System, TenantId};
use crate::job::{Job, JobStatus, StageMessage, StageProgress};
use crate::log::{Direction, LogEntry, Outcome, SkipReason};
use crate::mapping::Connection;
use crate::normalise::{Timestamp, email_key, name_key, phone_key, website_key};
use crate::ports::{ErrorKind, StoreError, Write};
use crate::records::{
    Activity, CompanyFields, CompanyRecord, ContactFields, ContactList, ContactRecord, ExternalLink, LineItem,
    LookupField, Meta, Opportunity, Record, Solution, User,
};
use crate::rules;
use crate::table::{MAX_TRANSACTION_WRITES, RecordStore, RecordWrite};
use crate::usecases::Services;
use crate::usecases::connections::connection;
use crate::usecases::page_view::PageView;

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
        svc.queue.send(&msg).await.map_err(|e| DomainError::Store(StoreError::Unavailable(e.0)))?;
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
    let fetched_at = svc.clock.now();
    let page = match connector.fetch(msg.stage, &msg.cursor).await {
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
    let (done, view) = futures::join!(
        svc.store.logs_by_id(tenant, &ids),
        PageView::load(&svc.store, tenant, msg.system, msg.stage, &page.records)
    );
    let (done, view) = (done?, view?);
    let mut ctx = PageCtx { svc, tenant, conn: &conn, job, stage: msg.stage, now, lists: HashSet::new(), view };
    let mut counts = StageProgress { pages: 1, ..StageProgress::default() };
    let mut staged = Vec::new();
    for (n, record) in page.records.iter().enumerate() {
        let ext_id = record.id().map(str::to_string).unwrap_or_else(|| format!("#{}:{n}", msg.cursor.position));
        let log_id = LogEntry::import_id(&job.id, msg.stage, &ext_id);
        if let Some(entry) = done.get(&log_id) {
            counts.count(&entry.outcome);
            continue;
        }
        match ctx.stage_one(record, &ext_id, &log_id).await? {
            Decided::Done(outcome) => counts.count(&outcome),
            Decided::Staged(writes, outcome) => staged.push(Staged { record, ext_id, log_id, writes, outcome }),
        }
    }
    for outcome in ctx.write_staged(staged).await? {
        counts.count(&outcome);
    }
    checkpoint(svc, job, msg, page.next, counts, fetched_at).await
}

/// What deciding one record gave: an outcome already final (a failure, logged), or the
/// writes that make it so.
enum Decided {
    Done(Outcome),
    Staged(Vec<Write>, Outcome),
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
        svc.queue.send(&next_msg).await.map_err(|e| DomainError::Store(StoreError::Unavailable(e.0)))?;
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

/// What to do with one external record.
enum Plan {
    Skip(SkipReason),
    Write { outcome: Outcome, write: Box<RecordWrite> },
}

struct PageCtx<'a> {
    svc: &'a Services,
    tenant: &'a TenantId,
    conn: &'a Connection,
    job: &'a Job,
    stage: Stage,
    now: Timestamp,
    /// Lists known to exist (created this page or before).
    lists: HashSet<String>,
    /// The store as this page sees it, loaded in batches up front.
    view: PageView,
}

/// Whether the external record changed since it was last seen.
fn unchanged(previous: &Record, system: System, updated_at: &Option<String>) -> bool {
    matches!((previous.link(system).and_then(|l| l.updated_at.as_ref()), updated_at), (Some(a), Some(b)) if a == b)
}

fn link(updated_at: &Option<String>, id: &str) -> ExternalLink {
    ExternalLink { id: id.to_string(), updated_at: updated_at.clone() }
}

fn fill(slot: &mut Option<String>, value: &Option<String>) {
    if slot.as_deref().is_none_or(str::is_empty)
        && let Some(v) = value.as_ref().filter(|v| !v.trim().is_empty())
    {
        *slot = Some(v.clone());
    }
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_ref().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

impl PageCtx<'_> {
    fn system(&self) -> System {
        self.conn.system
    }

    fn entry(
        &self,
        kind: RecordKind,
        log_id: &str,
        ext_id: &str,
        crm_id: Option<RecordId>,
        outcome: Outcome,
    ) -> LogEntry {
        LogEntry {
            id: log_id.to_string(),
            tenant: self.tenant.clone(),
            at: self.now,
            system: self.system(),
            direction: Direction::Import,
            object: kind,
            crm_id,
            external_id: Some(ext_id.to_string()),
            outcome,
            job_id: Some(self.job.id.clone()),
        }
    }

    /// Decides one record against the page's view and stages its writes (the view takes
    /// them in at once, so the next record sees them); a record that fails is logged and
    /// does not stop the page.
    async fn stage_one(&mut self, record: &ExternalRecord, ext_id: &str, log_id: &str) -> Result<Decided, DomainError> {
        let kind = self.stage.kind();
        let plan = match self.plan(record).await {
            Ok(plan) => plan,
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => return self.failed(kind, log_id, ext_id, e.to_string()).await.map(Decided::Done),
        };
        match plan {
            Plan::Skip(reason) => {
                let outcome = Outcome::Skipped(reason);
                let entry = self.entry(kind, log_id, ext_id, None, outcome.clone());
                Ok(Decided::Staged(vec![RecordStore::prepare_log(&entry)?], outcome))
            }
            Plan::Write { outcome, mut write } => {
                let crm_id = write.record.id().clone();
                write.log = Some(self.entry(kind, log_id, ext_id, Some(crm_id), outcome.clone()));
                let (previous, new_link) = (write.previous.clone(), write.new_link.clone());
                let (writes, saved) = RecordStore::prepare_write(self.tenant, *write)?;
                self.view.wrote(previous.as_ref(), &saved, new_link.as_ref());
                Ok(Decided::Staged(writes, outcome))
            }
        }
    }

    /// Writes the page's staged records in as few round trips as the store allows (see
    /// [`waves`]) and returns their outcomes. A transaction whose condition fails (someone
    /// else wrote one of its items meanwhile) is redone record by record from the store,
    /// as [`PageCtx::import_one`] does, so every record still ends with exactly one outcome.
    async fn write_staged(&mut self, mut staged: Vec<Staged<'_>>) -> Result<Vec<Outcome>, DomainError> {
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
                self.view.forget();
                let st = &staged[i];
                outcomes.push(self.import_one(st.record, &st.ext_id, &st.log_id).await?);
            }
        }
        Ok(outcomes)
    }

    /// Decides and writes one record from the store; a record that fails is logged and does
    /// not stop the page.
    async fn import_one(
        &mut self,
        record: &ExternalRecord,
        ext_id: &str,
        log_id: &str,
    ) -> Result<Outcome, DomainError> {
        let kind = self.stage.kind();
        for _attempt in 0..4 {
            let plan = match self.plan(record).await {
                Ok(plan) => plan,
                Err(e) if e.is_retryable() => return Err(e),
                Err(e) => return self.failed(kind, log_id, ext_id, e.to_string()).await,
            };
            let result = match plan {
                Plan::Skip(reason) => {
                    let outcome = Outcome::Skipped(reason);
                    let entry = self.entry(kind, log_id, ext_id, None, outcome.clone());
                    self.svc.store.put_log(&entry).await.map(|_| outcome)
                }
                Plan::Write { outcome, mut write } => {
                    let crm_id = write.record.id().clone();
                    write.log = Some(self.entry(kind, log_id, ext_id, Some(crm_id), outcome.clone()));
                    let (previous, new_link) = (write.previous.clone(), write.new_link.clone());
                    self.svc.store.write(self.tenant, *write).await.map(|saved| {
                        self.view.wrote(previous.as_ref(), &saved, new_link.as_ref());
                        outcome
                    })
                }
            };
            match result {
                Ok(outcome) => return Ok(outcome),
                Err(StoreError::Conflict(_)) => {
                    self.view.forget();
                    // Someone wrote first: if it was this very operation, keep its outcome.
                    if let Some(e) = self.svc.store.logs_by_id(self.tenant, &[log_id.to_string()]).await?.remove(log_id)
                    {
                        return Ok(e.outcome);
                    }
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.failed(kind, log_id, ext_id, "the record kept changing while it was imported".into()).await
    }

    async fn failed(&self, kind: RecordKind, log_id: &str, ext_id: &str, why: String) -> Result<Outcome, DomainError> {
        tracing::warn!(job = %self.job.id, stage = %self.stage, external_id = ext_id, reason = %why, "record failed");
        let outcome = Outcome::Failed(why);
        let entry = self.entry(kind, log_id, ext_id, None, outcome.clone());
        self.svc.store.put_log(&entry).await?;
        self.svc.events.failed(&entry).await;
        Ok(outcome)
    }

    async fn plan(&mut self, record: &ExternalRecord) -> Result<Plan, DomainError> {
        match (self.stage, record) {
            (Stage::Users, ExternalRecord::User(u)) => self.plan_user(u).await,
            (Stage::Companies, ExternalRecord::Company(c)) => self.plan_company(c).await,
            (Stage::Contacts, ExternalRecord::Contact(c)) => self.plan_contact(c).await,
            (Stage::Solutions, ExternalRecord::Solution(s)) => self.plan_solution(s).await,
            (Stage::Activities, ExternalRecord::Activity(a)) => self.plan_activity(a).await,
            (Stage::Opportunities, ExternalRecord::Opportunity(o)) => self.plan_opportunity(o).await,
            (_, ExternalRecord::Unreadable(u)) => Err(DomainError::invalid(format!("unreadable record: {}", u.reason))),
            (stage, other) => Err(DomainError::internal(format!("the {stage} stage was handed {other:?}"))),
        }
    }

    async fn linked(&mut self, kind: RecordKind, ext_id: &str) -> Result<Option<Record>, DomainError> {
        self.view.linked(kind, ext_id).await
    }

    async fn linked_id(&mut self, kind: RecordKind, ext_id: Option<&str>) -> Result<Option<RecordId>, DomainError> {
        match ext_id {
            Some(id) => self.view.linked_id(kind, id).await,
            None => Ok(None),
        }
    }

    async fn candidate(
        &mut self,
        kind: RecordKind,
        field: LookupField,
        key: Option<String>,
    ) -> Result<Option<Record>, DomainError> {
        let Some(key) = key else { return Ok(None) };
        let found = self.view.find(kind, field, &key).await?;
        Ok(rules::free_candidate(found, self.system()))
    }

    fn new_meta(&self, ext_id: &str, updated_at: &Option<String>) -> Meta {
        let mut meta = Meta::new(self.now);
        meta.links.insert(self.system(), link(updated_at, ext_id));
        meta
    }

    fn create(&self, record: Record, ext_id: &str) -> Plan {
        Plan::Write {
            outcome: Outcome::Created,
            write: Box::new(RecordWrite {
                record,
                previous: None,
                new_link: Some((self.system(), ext_id.to_string())),
                log: None,
            }),
        }
    }

    fn attach(&self, previous: Record, mut updated: Record, ext_id: &str, updated_at: &Option<String>) -> Plan {
        updated.meta_mut().links.insert(self.system(), link(updated_at, ext_id));
        updated.meta_mut().updated_at = self.now;
        Plan::Write {
            outcome: Outcome::Linked,
            write: Box::new(RecordWrite {
                record: updated,
                previous: Some(previous),
                new_link: Some((self.system(), ext_id.to_string())),
                log: None,
            }),
        }
    }

    /// An already-linked record seen again: unchanged, or updated with `updated`.
    fn refresh(&self, previous: Record, mut updated: Record, updated_at: &Option<String>) -> Plan {
        if unchanged(&previous, self.system(), updated_at) {
            return Plan::Skip(SkipReason::Unchanged);
        }
        let ext_id = previous.link(self.system()).map(|l| l.id.clone()).unwrap_or_default();
        updated.meta_mut().links.insert(self.system(), link(updated_at, &ext_id));
        let same = {
            let mut a = updated.clone();
            *a.meta_mut() = previous.meta().clone();
            a == previous
        };
        if !same {
            updated.meta_mut().updated_at = self.now;
        }
        Plan::Write {
            outcome: if same { Outcome::Skipped(SkipReason::Unchanged) } else { Outcome::Updated },
            write: Box::new(RecordWrite { record: updated, previous: Some(previous), new_link: None, log: None }),
        }
    }

    async fn plan_user(&mut self, u: &ExtUser) -> Result<Plan, DomainError> {
        let role = match rules::user_role(self.conn, u) {
            Ok(r) => r,
            Err(why) => return Ok(Plan::Skip(why)),
        };
        let email = u.email.clone().unwrap_or_default().trim().to_string();
        let name = format!("{} {}", u.first_name.trim(), u.last_name.trim()).trim().to_string();
        if let Some(prev) = self.linked(RecordKind::User, &u.id).await? {
            let mut next = prev.clone();
            if let Record::User(x) = &mut next {
                x.name = name;
            }
            return Ok(self.refresh(prev, next, &u.updated_at));
        }
        let existing =
            self.view.find(RecordKind::User, LookupField::Email, &email_key(&email).unwrap_or_default()).await?;
        if let Some(taken) = existing.iter().find(|r| r.link(self.system()).is_some()) {
            return Err(DomainError::invalid(format!(
                "the CRM user with email {email} is already linked to member {}",
                taken.link(self.system()).map(|l| l.id.as_str()).unwrap_or_default()
            )));
        }
        if let Some(found) = existing.into_iter().next() {
            return Ok(self.attach(found.clone(), found, &u.id, &u.updated_at));
        }
        let user = User { meta: self.new_meta(&u.id, &u.updated_at), email, name, role, state: "invited".into() };
        Ok(self.create(Record::User(user), &u.id))
    }

    async fn plan_company(&mut self, c: &ExtCompany) -> Result<Plan, DomainError> {
        let company_type = match rules::company_type(self.conn, c) {
            Ok(t) => t,
            Err(why) => return Ok(Plan::Skip(why)),
        };
        let fields = CompanyFields {
            name: c.name.trim().to_string(),
            phone: non_empty(&c.phone),
            website: non_empty(&c.website),
            address: non_empty(&c.address),
            company_type,
            custom_fields: BTreeMap::new(),
        };
        if let Some(prev) = self.linked(RecordKind::Company, &c.id).await? {
            let mut next = prev.clone();
            if let Record::Company(x) = &mut next {
                let custom = std::mem::take(&mut x.fields.custom_fields);
                x.fields = CompanyFields { custom_fields: custom, ..fields };
            }
            return Ok(self.refresh(prev, next, &c.updated_at));
        }
        let keys = [
            (LookupField::Phone, c.phone.as_deref().and_then(phone_key)),
            (LookupField::Website, c.website.as_deref().and_then(website_key)),
            (LookupField::Name, name_key(&c.name)),
        ];
        for (field, key) in keys {
            if let Some(found) = self.candidate(RecordKind::Company, field, key).await? {
                let mut next = found.clone();
                if let Record::Company(x) = &mut next {
                    fill(&mut x.fields.phone, &fields.phone);
                    fill(&mut x.fields.website, &fields.website);
                    fill(&mut x.fields.address, &fields.address);
                    if x.fields.company_type == "no_type" {
                        x.fields.company_type = fields.company_type.clone();
                    }
                }
                return Ok(self.attach(found, next, &c.id, &c.updated_at));
            }
        }
        let record = CompanyRecord { meta: self.new_meta(&c.id, &c.updated_at), fields };
        Ok(self.create(Record::Company(record), &c.id))
    }

    async fn company_type_of(&mut self, id: &RecordId) -> Result<Option<String>, DomainError> {
        match self.view.record(RecordKind::Company, id).await? {
            Some(Record::Company(c)) => Ok(Some(c.fields.company_type)),
            _ => Ok(None),
        }
    }

    async fn ensure_list(&mut self, name: &str) -> Result<(), DomainError> {
        if self.lists.contains(name) {
            return Ok(());
        }
        let slug: String =
            name.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        let id = RecordId::from_raw(format!("list-{slug}"));
        if self.svc.store.record(self.tenant, RecordKind::List, &id).await?.is_none() {
            let mut meta = Meta::new(self.now);
            meta.id = id;
            let list = Record::List(ContactList { meta, name: name.to_string() });
            match self
                .svc
                .store
                .write(self.tenant, RecordWrite { record: list, previous: None, new_link: None, log: None })
                .await
            {
                Ok(_) | Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.lists.insert(name.to_string());
        Ok(())
    }

    async fn plan_contact(&mut self, c: &ExtContact) -> Result<Plan, DomainError> {
        let status = match rules::contact_status(self.conn, c) {
            Ok(s) => s,
            Err(why) => return Ok(Plan::Skip(why)),
        };
        let company = match c.company_id.as_deref() {
            Some(ext) => match self.linked_id(RecordKind::Company, Some(ext)).await? {
                Some(id) => Some(id),
                None => return Ok(Plan::Skip(SkipReason::CompanyNotImported)),
            },
            None => None,
        };
        let company_type = match &company {
            Some(id) => self.company_type_of(id).await?,
            None => None,
        };
        let list = rules::contact_list(self.system(), company_type.as_deref());
        self.ensure_list(&list).await?;
        let fields = ContactFields {
            first_name: c.first_name.trim().to_string(),
            last_name: c.last_name.trim().to_string(),
            email: non_empty(&c.email),
            phone: non_empty(&c.phone),
            title: non_empty(&c.title),
            status,
            company: company.clone(),
            lists: vec![list.clone()],
        };
        if let Some(prev) = self.linked(RecordKind::Contact, &c.id).await? {
            let mut next = prev.clone();
            if let Record::Contact(x) = &mut next {
                let mut lists = std::mem::take(&mut x.fields.lists);
                if !lists.contains(&list) {
                    lists.push(list);
                }
                x.fields = ContactFields { lists, ..fields };
            }
            return Ok(self.refresh(prev, next, &c.updated_at));
        }
        if let Some(found) =
            self.candidate(RecordKind::Contact, LookupField::Email, c.email.as_deref().and_then(email_key)).await?
        {
            let mut next = found.clone();
            if let Record::Contact(x) = &mut next {
                fill(&mut x.fields.phone, &fields.phone);
                fill(&mut x.fields.title, &fields.title);
                if x.fields.company.is_none() {
                    x.fields.company = company;
                }
                if !x.fields.lists.contains(&list) {
                    x.fields.lists.push(list);
                }
            }
            return Ok(self.attach(found, next, &c.id, &c.updated_at));
        }
        let record = ContactRecord { meta: self.new_meta(&c.id, &c.updated_at), fields };
        Ok(self.create(Record::Contact(record), &c.id))
    }

    async fn plan_solution(&mut self, s: &ExtSolution) -> Result<Plan, DomainError> {
        let (solution_type, category, billing) = match rules::solution_classes(self.conn, s) {
            Ok(x) => x,
            Err(why) => return Ok(Plan::Skip(why)),
        };
        let make = |meta: Meta| Solution {
            meta,
            name: s.name.trim().to_string(),
            solution_type,
            category,
            billing,
            price: s.price,
        };
        if let Some(prev) = self.linked(RecordKind::Solution, &s.id).await? {
            let next = Record::Solution(make(prev.meta().clone()));
            return Ok(self.refresh(prev, next, &s.updated_at));
        }
        let record = Record::Solution(make(self.new_meta(&s.id, &s.updated_at)));
        Ok(self.create(record, &s.id))
    }

    async fn plan_activity(&mut self, a: &ExtActivity) -> Result<Plan, DomainError> {
        let kind = match rules::activity_kind(self.conn, a) {
            Ok(k) => k,
            Err(why) => return Ok(Plan::Skip(why)),
        };
        let Some(contact) = self.linked_id(RecordKind::Contact, a.contact_id.as_deref()).await? else {
            return Ok(Plan::Skip(SkipReason::ContactNotInCrm));
        };
        let Some(created_by) = self.linked_id(RecordKind::User, a.created_by.as_deref()).await? else {
            return Ok(Plan::Skip(SkipReason::CreatorNotLinked));
        };
        let company = self.linked_id(RecordKind::Company, a.company_id.as_deref()).await?;
        let make = |meta: Meta| Activity {
            meta,
            kind,
            subject: a.subject.trim().to_string(),
            body: non_empty(&a.body),
            date: a.date,
            done: a.done,
            contact,
            company,
            created_by,
        };
        if let Some(prev) = self.linked(RecordKind::Activity, &a.id).await? {
            let next = Record::Activity(make(prev.meta().clone()));
            return Ok(self.refresh(prev, next, &a.updated_at));
        }
        let record = Record::Activity(make(self.new_meta(&a.id, &a.updated_at)));
        Ok(self.create(record, &a.id))
    }

    async fn plan_opportunity(&mut self, o: &ExtOpportunity) -> Result<Plan, DomainError> {
        let status = o
            .status_id
            .as_deref()
            .and_then(|s| self.conn.mapped(Stage::Opportunities, OptionList::OpportunityStatuses, s))
            .map(str::to_string);
        let salesperson = self.linked_id(RecordKind::User, o.salesperson_id.as_deref()).await?;
        let company = self.linked_id(RecordKind::Company, o.company_id.as_deref()).await?;
        let contact = self.linked_id(RecordKind::Contact, o.contact_id.as_deref()).await?;
        let line_items: Vec<LineItem> = o
            .line_items
            .iter()
            .map(|l| LineItem { description: l.description.clone(), quantity: l.quantity, revenue: l.revenue })
            .collect();
        let fresh = |meta: Meta| Opportunity {
            meta,
            name: o.name.trim().to_string(),
            status: status.clone(),
            stage: o.stage.clone(),
            opportunity_type: o.opportunity_type.clone(),
            close_date: o.close_date.clone(),
            value: o.value,
            lifetime_value: o.value,
            line_items: line_items.clone(),
            salesperson: salesperson.clone(),
            company: company.clone(),
            contact: contact.clone(),
            notes: non_empty(&o.notes),
        };
        if let Some(prev) = self.linked(RecordKind::Opportunity, &o.id).await? {
            let Record::Opportunity(old) = &prev else {
                return Err(DomainError::internal("an opportunity link points at another kind"));
            };
            let new = fresh(prev.meta().clone());
            // Which fields an update may change depends on the system (PRODUCT.md section 4).
            let next = match self.system() {
                System::ConnectWise => new,
                System::Salesforce => Opportunity {
                    name: new.name,
                    status: new.status,
                    close_date: new.close_date,
                    lifetime_value: new.lifetime_value,
                    ..old.clone()
                },
                System::Syncro | System::Halo => Opportunity { name: new.name, status: new.status, ..old.clone() },
            };
            return Ok(self.refresh(prev, Record::Opportunity(next), &o.updated_at));
        }
        let record = Record::Opportunity(fresh(self.new_meta(&o.id, &o.updated_at)));
        Ok(self.create(record, &o.id))
    }
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;
