//! The handler the six import-stage functions share: each decodes its SQS batch of
//! [`StageMessage`]s and runs one page per message with
//! [`import::run_page`](tandem_domain::usecases::import::run_page). A function only takes
//! messages of its own stage; a message of another stage was misrouted, which no retry
//! fixes, so it is reported and so reaches the dead-letter queue.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use tandem_domain::Stage;
use tandem_domain::job::StageMessage;
use tandem_domain::usecases::Services;
use tandem_domain::usecases::import::{self, Step};

use crate::batch::{MessageError, run_batch};

/// Runs one page for `msg` in the function of stage `own`.
pub async fn run_stage_message(svc: &Services, own: Stage, msg: StageMessage) -> Result<Step, MessageError> {
    if msg.stage != own {
        return Err(MessageError::permanent(format!(
            "a {} stage message (job {}) reached the {own} stage function: it was sent to the wrong queue",
            msg.stage, msg.job_id
        )));
    }
    let step = import::run_page(svc, &msg).await?;
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

/// Runs a batch of `own`'s stage messages (see [`run_batch`]). A message that fails on
/// its last delivery ([`MAX_RECEIVE_COUNT`]) moves to the dead-letter queue, so its job is
/// marked failed with the reason ([`import::dead_lettered`]) instead of staying running.
pub async fn run_stage_batch(svc: &Services, own: Stage, event: SqsEvent) -> SqsBatchResponse {
    run_batch(event, |msg: StageMessage, receives: u32| async move {
        let result = run_stage_message(svc, own, msg.clone()).await.map(|_| ());
        if let Err(e) = &result
            && receives >= MAX_RECEIVE_COUNT
            && let Err(mark) = import::dead_lettered(svc, &msg, receives, e.reason()).await
        {
            tracing::error!(job = %msg.job_id, error = %mark, "could not mark the dead-lettered message's job failed");
        }
        result
    })
    .await
}
