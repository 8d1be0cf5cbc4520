//! The solutions stage's handler: one page per stage message of the SQS batch, through the
//! stage runner all six stage functions share (`tandem_lambda::run_stage_batch`).

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use tandem_domain::Stage;
use tandem_domain::usecases::Services;

/// The stage this function imports.
pub const STAGE: Stage = Stage::Solutions;

/// Runs one SQS batch of solutions stage messages; the answer names the messages to redeliver.
pub async fn handle(svc: &Services, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, tandem_lambda::Error> {
    Ok(tandem_lambda::run_stage_batch(svc, STAGE, event.payload).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    tandem_lambda::stage_handler_tests!();
}
