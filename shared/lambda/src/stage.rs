//! The handlers of the queue-driven functions. The one the six import-stage functions share: each decodes its SQS batch of work
//! messages ([`Work`], any version the domain reads) and runs one page per import page
//! with [`import::run_page`](tandem_domain::usecases::import::run_page). A function only
//! takes messages routed to its own stage; any other message (another stage's page, or a
//! kind a stage function does not run) was misrouted, which no retry fixes, so it is
//! reported and so reaches the dead-letter queue. A body that does not decode as [`Work`]
//! (unknown version or kind) is reported the same way by [`run_batch`]. The export
//! function's ([`run_export_batch`]) runs one export per message.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use tandem_domain::Stage;
use tandem_domain::usecases::Services;
use tandem_domain::usecases::import::{self, Step};
use tandem_domain::usecases::{export, sweep, sync_in, sync_out};
use tandem_domain::work::{Route, Work};

use crate::batch::{MessageError, run_batch};

/// Runs one page for `work` in the function of stage `own`.
pub async fn run_stage_message(svc: &Services, own: Stage, work: Work) -> Result<Step, MessageError> {
    if work.route() != Route::Stage(own) {
        return Err(MessageError::permanent(format!(
            "a {} message ({work}) for {} reached the {own} stage function: it was sent to the wrong queue",
            work.kind(),
            work.route()
        )));
    }
    let Some(msg) = work.import_page() else {
        return Err(MessageError::permanent(format!(
            "a {} message ({work}) reached the {own} stage function, which runs import pages only",
            work.kind()
        )));
    };
    let step = import::run_page(svc, msg).await?;
    match &step {
        Step::Page { job, stage, counts } => tracing::info!(
            tenant = %msg.tenant, job = %job.id, stage = %stage, records = counts.records(),
            next_stage = ?job.current_stage(), status = ?job.status, "page imported"
        ),
        Step::Stale => tracing::info!(
            tenant = %msg.tenant, job = %msg.job_id, stage = %msg.stage,
            "nothing to do: the job is unknown or ended, or this page was handled already"
        ),
    }
    Ok(step)
}

/// The stage queues' `maxReceiveCount` (infra/template.yaml's redrive policies; a test
/// checks they agree): the delivery after which a failed message is dead-lettered.
pub const MAX_RECEIVE_COUNT: u32 = 5;

/// Runs a batch of `own`'s work messages (see [`run_batch`]). A message that fails on
/// its last delivery ([`MAX_RECEIVE_COUNT`]) moves to the dead-letter queue, so its job is
/// marked failed with the reason ([`import::dead_lettered`]) instead of staying running.
pub async fn run_stage_batch(svc: &Services, own: Stage, event: SqsEvent) -> SqsBatchResponse {
    run_work_batch(svc, event, |work| async move { run_stage_message(svc, own, work).await.map(|_| ()) }).await
}

/// Runs a batch of work messages, each with `run_one` (see [`run_batch`]); one that fails
/// on its last delivery ([`MAX_RECEIVE_COUNT`]) is recorded as dead-lettered first
/// ([`dead_lettered`]), so its flow shows the failure.
async fn run_work_batch<'a, F, Fut>(svc: &'a Services, event: SqsEvent, run_one: F) -> SqsBatchResponse
where
    F: Fn(Work) -> Fut,
    Fut: Future<Output = Result<(), MessageError>> + 'a,
{
    run_batch(event, |work: Work, receives: u32| {
        let running = run_one(work.clone());
        async move {
            let result = running.await;
            if let Err(e) = &result
                && receives >= MAX_RECEIVE_COUNT
            {
                dead_lettered(svc, &work, receives, e.reason()).await;
            }
            result
        }
    })
    .await
}

/// Records that `work` failed on its last delivery, so its flow shows the failure (an
/// import page's job, or an export, is marked failed with the reason).
pub async fn dead_lettered(svc: &Services, work: &Work, receives: u32, reason: &str) {
    match work {
        Work::ImportPage(msg) => {
            if let Err(mark) = import::dead_lettered(svc, msg, receives, reason).await {
                tracing::error!(job = %msg.job_id, error = %mark, "could not mark the dead-lettered message's job failed");
            }
        }
        Work::Export(msg) => {
            if let Err(mark) = export::dead_lettered(svc, msg, receives, reason).await {
                tracing::error!(export = %msg.export_id, error = %mark, "could not mark the dead-lettered export failed");
            }
        }
        // A lost notice or poll page is caught up by the next poll (it reads from the
        // last complete poll's start), a lost reconciliation page by the next one due;
        // the dead letter stays for an operator to see.
        Work::SyncRecord(_) | Work::SyncPoll(_) | Work::SyncSweep(_) => {
            tracing::error!(work = %work, receives, reason, "sync work dead-lettered; the next poll catches up");
        }
        // The change stays in the outbox and the record in the CRM: its next change (or a
        // redrive of the dead letter) pushes it.
        Work::SyncOut(_) => {
            tracing::error!(work = %work, receives, reason, "sync out dead-lettered; the change was not pushed");
        }
    }
}

/// Runs one sync message (the `sync-worker` function's work): a webhook notice, a poll
/// page, an id reconciliation page, or a CRM change to push; any other kind was
/// misrouted and is reported.
pub async fn run_sync_message(svc: &Services, work: Work) -> Result<(), MessageError> {
    match &work {
        Work::SyncRecord(msg) => {
            sync_in::apply_notice(svc, msg).await?;
        }
        Work::SyncPoll(msg) => {
            let outcomes = sync_in::run_poll(svc, msg).await?;
            tracing::info!(tenant = %msg.tenant, system = %msg.system, stage = %msg.stage, records = outcomes.len(), "poll page applied");
        }
        Work::SyncSweep(msg) => {
            sweep::run_sweep(svc, msg).await?;
        }
        Work::SyncOut(msg) => {
            sync_out::push(svc, msg).await?;
        }
        _ => {
            return Err(MessageError::permanent(format!(
                "a {} message ({work}) for {} reached the sync worker: it was sent to the wrong queue",
                work.kind(),
                work.route()
            )));
        }
    }
    Ok(())
}

/// Runs a batch of sync-in messages (see [`run_batch`]).
pub async fn run_sync_batch(svc: &Services, event: SqsEvent) -> SqsBatchResponse {
    run_work_batch(svc, event, |work| run_sync_message(svc, work)).await
}

/// Runs one export message (the `export-record` function's work); any other kind was
/// misrouted and is reported, so it reaches the dead-letter queue.
pub async fn run_export_message(svc: &Services, work: Work) -> Result<(), MessageError> {
    let Work::Export(msg) = &work else {
        return Err(MessageError::permanent(format!(
            "a {} message ({work}) for {} reached the export function: it was sent to the wrong queue",
            work.kind(),
            work.route()
        )));
    };
    if let Some(done) = export::run(svc, msg).await? {
        tracing::info!(tenant = %msg.tenant, export = %done.id, status = ?done.status, records = done.results.len(), "export ran");
    }
    Ok(())
}

/// Runs a batch of export messages (see [`run_batch`]); the last delivery of a failing
/// one marks its export failed.
pub async fn run_export_batch(svc: &Services, event: SqsEvent) -> SqsBatchResponse {
    run_work_batch(svc, event, |work| run_export_message(svc, work)).await
}
