//! The handlers of the queue-driven functions: the six import-stage functions', the
//! export function's and the sync worker's. Each decodes its SQS batch of work messages
//! ([`Work`], any version the domain reads), checks that each was routed to it, and runs
//! it with the one dispatcher of every kind ([`usecases::work::run`]). A function only
//! takes messages routed to its own queue; any other message was misrouted, which no
//! retry fixes, so it is reported and so reaches the dead-letter queue. A body that does
//! not decode as [`Work`] (unknown version or kind) is reported the same way by
//! [`run_batch`].
//!
//! Work its system rate limited waits and resumes: the dispatcher sends a resume copy and
//! the original is acknowledged; a resume received before it is due is held back on its
//! queue until then (its visibility timeout set to the time left) and reported, so it
//! comes again when due without running ([`run_work_batch`]).

use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use tandem_domain::Stage;
use tandem_domain::usecases::work::{self, Ran};
use tandem_domain::usecases::{Services, dead_letters, export, import};
use tandem_domain::work::{Route, Work};

use crate::batch::{MessageError, Received, run_batch};

/// Refuses `work` unless it was routed to `own` (the function `who`): a misrouted message
/// is reported and so reaches the dead-letter queue.
fn routed_to(work: &Work, own: Route, who: &str) -> Result<(), MessageError> {
    if work.route() == own {
        return Ok(());
    }
    Err(MessageError::permanent(format!(
        "a {} message ({work}) for {} reached {who}: it was sent to the wrong queue",
        work.kind(),
        work.route()
    )))
}

/// Runs one message (an import page, or a resume of one) in the function of stage `own`.
pub async fn run_stage_message(svc: &Services, own: Stage, work: Work) -> Result<Ran, MessageError> {
    routed_to(&work, Route::Stage(own), &format!("the {own} stage function"))?;
    Ok(work::run(svc, &work).await?)
}

/// The stage queues' `maxReceiveCount` (infra/template.yaml's redrive policies; a test
/// checks they agree): the delivery after which a failed message is dead-lettered.
pub const MAX_RECEIVE_COUNT: u32 = 5;

/// Runs a batch of `own`'s work messages (see [`run_batch`]). A message that fails on
/// its last delivery ([`MAX_RECEIVE_COUNT`]) moves to the dead-letter queue, so its job is
/// marked failed with the reason ([`import::dead_lettered`]) instead of staying running.
pub async fn run_stage_batch(svc: &Services, own: Stage, event: SqsEvent) -> SqsBatchResponse {
    run_work_batch(svc, event, |work| run_stage_message(svc, own, work)).await
}

/// Runs a batch of work messages, each with `run_one` (see [`run_batch`]): a message that
/// ran, or whose work now waits as a resume copy, is acknowledged; a resume not due yet is
/// held back until it is ([`hold`]) and reported. One that fails (or is held) on its last
/// delivery ([`MAX_RECEIVE_COUNT`]) is recorded as dead-lettered first ([`dead_lettered`]),
/// so its flow shows the failure.
async fn run_work_batch<'a, F, Fut>(svc: &'a Services, event: SqsEvent, run_one: F) -> SqsBatchResponse
where
    F: Fn(Work) -> Fut,
    Fut: Future<Output = Result<Ran, MessageError>> + 'a,
{
    run_batch(event, |work: Work, received: Received| {
        let running = run_one(work.clone());
        async move {
            let result = match running.await {
                Ok(Ran::Done | Ran::Waits(_)) => Ok(()),
                Ok(Ran::NotDue(left)) => Err(hold(svc, &work, received.receipt_handle.as_deref(), left).await),
                Err(e) => Err(e),
            };
            if let Err(e) = &result
                && received.receive_count >= MAX_RECEIVE_COUNT
            {
                dead_lettered(svc, &work, received.receive_count, e.reason()).await;
            }
            result
        }
    })
    .await
}

/// Holds a resume that is not due back on its queue for the time `left`, so it comes again
/// when due; answers the report for the batch. When it cannot be held, it comes back after
/// the queue's visibility timeout and is looked at again.
async fn hold(svc: &Services, work: &Work, receipt: Option<&str>, left: Duration) -> MessageError {
    let held = match receipt {
        Some(receipt) => svc.queue.hold(work, receipt, left).await.map_err(|e| e.to_string()),
        None => Err("the message has no receipt handle".to_string()),
    };
    if let Err(why) = held {
        tracing::warn!(work = %work, left_s = left.as_secs(), error = %why, "could not hold the resume back; it comes back after the visibility timeout");
    }
    MessageError::waiting(format!("{work} is not due for {} s", left.as_secs()))
}

/// Records that `work` failed on its last delivery: as a dead letter its tenant can list
/// and redrive ([`dead_letters::record`], every kind), and so its flow shows the failure
/// (an import page's job, or an export, is marked failed with the reason). A failure to
/// record is logged; it never stops the rest.
pub async fn dead_lettered(svc: &Services, work: &Work, receives: u32, reason: &str) {
    if let Err(e) = dead_letters::record(svc, work, receives, reason).await {
        tracing::error!(work = %work, receives, error = %e, "could not record the dead letter");
    }
    match work.underlying() {
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
        // Never built: a resume carries the work itself.
        Work::Resume(_) => tracing::error!(work = %work, receives, reason, "a resume of a resume dead-lettered"),
    }
}

/// Runs one sync message (the `sync-worker` function's work): a webhook notice, a poll
/// page, an id reconciliation page, a CRM change to push, or a resume of one; any other
/// kind was misrouted and is reported.
pub async fn run_sync_message(svc: &Services, work: Work) -> Result<Ran, MessageError> {
    routed_to(&work, Route::Sync, "the sync worker")?;
    Ok(work::run(svc, &work).await?)
}

/// Runs a batch of sync-in messages (see [`run_batch`]).
pub async fn run_sync_batch(svc: &Services, event: SqsEvent) -> SqsBatchResponse {
    run_work_batch(svc, event, |work| run_sync_message(svc, work)).await
}

/// Runs one export message (the `export-record` function's work), or a resume of one;
/// any other kind was misrouted and is reported, so it reaches the dead-letter queue.
pub async fn run_export_message(svc: &Services, work: Work) -> Result<Ran, MessageError> {
    routed_to(&work, Route::Export, "the export function")?;
    Ok(work::run(svc, &work).await?)
}

/// Runs a batch of export messages (see [`run_batch`]); the last delivery of a failing
/// one marks its export failed.
pub async fn run_export_batch(svc: &Services, event: SqsEvent) -> SqsBatchResponse {
    run_work_batch(svc, event, |work| run_export_message(svc, work)).await
}
