//! The activities stage's handler: one page per stage message of the SQS batch, through the
//! stage runner all six stage functions share (`tandem_lambda::run_stage_batch`).

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use tandem_domain::Stage;
use tandem_domain::usecases::Services;

/// The stage this function imports.
pub const STAGE: Stage = Stage::Activities;

/// Runs one SQS batch of activities stage messages; the answer names the messages to redeliver.
pub async fn handle(svc: &Services, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, tandem_lambda::Error> {
    Ok(tandem_lambda::run_stage_batch(svc, STAGE, event.payload).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_lambda::testing::{
        embedded_services, failed_ids, invocation, sqs_sample, sqs_sample_body, sqs_sample_with_body,
    };

    const SAMPLE: &str = "import-activities.json";

    #[tokio::test]
    async fn the_sample_event_for_a_job_that_does_not_exist_is_acknowledged_with_nothing_to_do() {
        let t = embedded_services();
        let (event, _) = sqs_sample(SAMPLE);
        assert_eq!(sqs_sample_body(SAMPLE)["stage"], STAGE.as_str(), "the sample is a activities message");
        let answer = handle(&t.services, invocation(event)).await.unwrap();
        assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
        assert!(t.embedded.queue.is_idle(), "no message was sent");
    }

    #[tokio::test]
    async fn a_message_with_a_malformed_body_is_reported_by_its_message_id() {
        let t = embedded_services();
        let (event, id) = sqs_sample_with_body(SAMPLE, r#"{"tenant": "acme", "stage": "activities"}"#);
        let answer = handle(&t.services, invocation(event)).await.unwrap();
        assert_eq!(failed_ids(&answer), vec![id]);
    }

    #[tokio::test]
    async fn a_message_for_another_stage_is_reported_as_misrouted() {
        let t = embedded_services();
        let mut body = sqs_sample_body(SAMPLE);
        let other = Stage::ALL.iter().find(|s| **s != STAGE).unwrap();
        body["stage"] = serde_json::json!(other.as_str());
        let (event, id) = sqs_sample_with_body(SAMPLE, &body.to_string());
        let answer = handle(&t.services, invocation(event)).await.unwrap();
        assert_eq!(failed_ids(&answer), vec![id]);
        assert!(t.embedded.queue.is_idle(), "no message was sent");
    }
}
