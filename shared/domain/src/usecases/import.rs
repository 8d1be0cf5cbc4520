//! Import use cases: start a job (stage order and prerequisites enforced), run one page
//! of a stage (fetch, then load -> decide -> write in batches, log, checkpoint, chain the next message),
//! cancel, and resume from the checkpoint. Every step is idempotent: a redelivered
//! message or a re-run page never creates a duplicate or counts a record twice.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::external::Cursor;
use crate::ids::{JobId, Stage, System, TenantId};
use crate::job::{Job, JobStatus, StageMessage, StageProgress};
use crate::log::{Direction, LogEntry};
use crate::normalise::Timestamp;
use crate::ports::{ErrorKind, StoreError};
use crate::reconcile::Merge;
use crate::usecases::Services;
use crate::usecases::apply::{Applier, Run};
use crate::usecases::connections::connection;
use crate::usecases::preview;
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
    start(svc, tenant, system, selection, None).await
}

/// Starts an import, or (with `preview`, the preview's id; `svc` then runs on its view)
/// a preview of one, which takes no snapshot.
pub(crate) async fn start(
    svc: &Services,
    tenant: &TenantId,
    system: System,
    selection: StageSelection,
    preview: Option<JobId>,
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
    if conn.completed_stages.is_empty() && preview.is_none() {
        // Before the connection's first import, the CRM as it is, once (PRODUCT.md 9): no
        // snapshot, no import.
        let why = crate::usecases::snapshots::Why::BeforeFirstImport { system };
        crate::usecases::snapshots::take_once(svc, tenant, why).await?;
    }
    let now = svc.clock.now();
    let job = Job {
        tenant: tenant.clone(),
        dry_run: preview.is_some(),
        id: preview.unwrap_or_default(),
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
    tracing::info!(tenant = %tenant, system = %system, job = %job.id, stages = ?job.stages, dry_run = job.dry_run, "import started");
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
        svc.queue.send(&Work::ImportPage(msg)).await?;
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

/// A job with whether it is stalled (running, no progress for `stall_after`) and when it
/// is estimated to finish.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobView {
    #[serde(flatten)]
    pub job: Job,
    /// Running but without progress for longer than the configured stall time:
    /// `POST /jobs/{id}/resume` re-queues it from its checkpoint.
    pub stalled: bool,
    /// When the import is estimated to finish ([`crate::budget::eta`]: the calls its pages
    /// take so far, the pages left, the connection's API budget and the vendor's rate);
    /// `null` when it cannot be estimated, with `eta_reason` saying why.
    pub eta: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_reason: Option<String>,
}

/// A job by id, with whether it is stalled and its estimated finish.
pub async fn job_view(svc: &Services, tenant: &TenantId, id: &JobId) -> Result<JobView, DomainError> {
    let job = job(svc, tenant, id).await?;
    let input = eta_input(svc, &job).await?;
    Ok(view(svc, job, input.as_ref()))
}

/// The tenant's newest jobs, with whether each is stalled (and, for running ones, the
/// estimated finish).
pub async fn jobs(svc: &Services, tenant: &TenantId, limit: usize) -> Result<Vec<JobView>, DomainError> {
    let mut out = Vec::new();
    for j in svc.store.jobs(tenant, limit).await? {
        let input = if j.status.is_final() { None } else { eta_input(svc, &j).await? };
        out.push(view(svc, j, input.as_ref()));
    }
    Ok(out)
}

/// What the estimate of a running job needs besides the job: its connection's budget and
/// calls in the window, and the pace its last page saw.
async fn eta_input(svc: &Services, job: &Job) -> Result<Option<crate::budget::EtaInput>, DomainError> {
    if job.status.is_final() {
        return Ok(None);
    }
    let now = svc.clock.now();
    let Some(conn) = svc.store.connection(&job.tenant, job.system).await? else { return Ok(None) };
    let budget = conn.settings.api_budget_per_day;
    let used_24h = match budget {
        Some(_) => crate::budget::used(&svc.store.usage_hours(&job.tenant, job.system, now).await?, now),
        None => 0,
    };
    let rate_per_second = job
        .current_stage()
        .and_then(|s| job.progress.get(&s))
        .and_then(|p| p.pace)
        .or_else(|| job.stages.iter().rev().find_map(|s| job.progress.get(s).and_then(|p| p.pace)));
    Ok(Some(crate::budget::EtaInput { now, budget, used_24h, rate_per_second }))
}

fn view(svc: &Services, job: Job, input: Option<&crate::budget::EtaInput>) -> JobView {
    let now = svc.clock.now();
    let stalled = job.is_stalled(now, svc.tuning.stall_after);
    let fallback = crate::budget::EtaInput { now, budget: None, used_24h: 0, rate_per_second: None };
    let (eta, eta_reason) = match crate::budget::eta(&job, input.unwrap_or(&fallback)) {
        crate::budget::Eta::At(at) => (Some(at), None),
        crate::budget::Eta::Unknown(why) => (None, Some(why)),
    };
    JobView { job, stalled, eta, eta_reason }
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
    let svc = &*preview::for_message(svc, msg);
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
    let svc = &*preview::for_message(svc, msg);
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
    crate::usecases::usage::check(svc, &conn).await?;
    let connector = svc.connectors.connect(&creds)?;
    svc.meter.watch(tenant, msg.system, &connector);
    let fetched_at = svc.clock.now();
    let calls_before = connector.calls();
    let page = match connector.list(msg.stage.kind(), &msg.cursor).await {
        Ok(p) => p,
        Err(e) => {
            if e.kind == ErrorKind::Unauthorized {
                svc.secrets.invalidate(tenant, msg.system).await;
            }
            return Err(e.into());
        }
    };
    let run = Run { direction: Direction::Import, job: Some(job.id.clone()), merge: Merge::ExternalWins };
    let applier = Applier::new(svc, tenant, &conn, msg.stage, run);
    let log_ids: Vec<String> = page
        .records
        .iter()
        .enumerate()
        .map(|(n, r)| {
            let ext_id = r.id().map(str::to_string).unwrap_or_else(|| format!("#{}:{n}", msg.cursor.position));
            LogEntry::import_id(&job.id, msg.stage, &ext_id)
        })
        .collect();
    let mut counts = StageProgress {
        pages: 1,
        calls: connector.calls().saturating_sub(calls_before),
        pace: connector.pace(),
        ..StageProgress::default()
    };
    for outcome in applier.apply(&page.records, &log_ids).await? {
        counts.count(&outcome);
    }
    checkpoint(svc, job, msg, page.next, counts, fetched_at).await
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
        svc.queue.send(&Work::ImportPage(next_msg)).await?;
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

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;
