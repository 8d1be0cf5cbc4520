//! The export function's handler: one export per message of the SQS batch, through
//! `tandem_lambda::run_export_batch`; the answer names the messages to redeliver.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use tandem_domain::usecases::Services;

/// Runs one SQS batch of export messages.
pub async fn handle(svc: &Services, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, tandem_lambda::Error> {
    Ok(tandem_lambda::run_export_batch(svc, event.payload).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_lambda::testing::{embedded_services, failed_ids, invocation, sqs_sample, sqs_sample_with_body};

    const SAMPLE: &str = "export-record.json";

    #[tokio::test]
    async fn the_sample_event_for_an_export_that_does_not_exist_is_acknowledged_with_nothing_to_do() {
        let t = embedded_services();
        let (event, _) = sqs_sample(SAMPLE);
        let answer = handle(&t.services, invocation(event)).await.unwrap();
        assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
        assert!(t.embedded.queue.is_idle(), "no message was sent");
    }

    #[tokio::test]
    async fn an_import_page_sent_to_the_export_queue_is_reported_as_misrouted() {
        let t = embedded_services();
        let body = r#"{"v":1,"kind":"import_page","tenant":"acme","system":"halo","job_id":"j","stage":"users","cursor":{"position":""}}"#;
        let (event, id) = sqs_sample_with_body(SAMPLE, body);
        let answer = handle(&t.services, invocation(event)).await.unwrap();
        assert_eq!(failed_ids(&answer), vec![id]);
    }

    #[test]
    fn the_sample_event_is_an_export_message() {
        let event = tandem_lambda::testing::event_json(SAMPLE);
        let body = event["Records"][0]["body"].as_str().unwrap();
        let work = tandem_domain::work::Work::decode(body).unwrap();
        assert_eq!(work.kind(), "export");
    }
}
