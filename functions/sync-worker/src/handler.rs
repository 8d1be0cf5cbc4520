//! The sync worker's handler: one sync-in message per message of the SQS batch (a webhook
//! notice, a poll page or an id reconciliation page), through `tandem_lambda::run_sync_batch`; the answer names the
//! messages to redeliver.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use tandem_domain::usecases::Services;

/// Runs one SQS batch of sync-in messages.
pub async fn handle(svc: &Services, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, tandem_lambda::Error> {
    Ok(tandem_lambda::run_sync_batch(svc, event.payload).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_domain::work::{Route, Work};
    use tandem_lambda::testing::{
        embedded_services, event_json, failed_ids, invocation, sqs_sample, sqs_sample_body, sqs_sample_with_body,
    };

    const SAMPLE: &str = "sync-worker.json";

    #[test]
    fn the_sample_event_is_a_version_1_sync_record_with_its_record_kind_apart_from_its_kind() {
        let event = event_json(SAMPLE);
        let body = event["Records"][0]["body"].as_str().unwrap();
        let work = Work::decode(body).unwrap();
        assert_eq!((work.kind(), work.route()), ("sync_record", Route::Sync));
        let json = sqs_sample_body(SAMPLE);
        assert_eq!((json["v"].as_u64(), json["record_kind"].as_str()), (Some(1), Some("contact")));
        assert_eq!(event["Records"][0]["attributes"]["MessageGroupId"].as_str(), Some(work.group_id().as_str()));
        let dedup = event["Records"][0]["attributes"]["MessageDeduplicationId"].as_str();
        assert_eq!(dedup, Some(work.dedup_id().as_str()));
    }

    #[tokio::test]
    async fn a_message_failing_on_its_last_delivery_is_listed_as_its_tenants_dead_letter_and_not_before() {
        let t = embedded_services();
        let tenant = tandem_domain::TenantId::parse("acme").unwrap();
        // An export reaching the sync worker fails on every delivery (misrouted).
        let body = r#"{"v":1,"kind":"export","tenant":"acme","system":"halo","export_id":"x-1"}"#;
        for (receives, listed) in [(4, 0), (5, 1), (5, 1)] {
            let (mut event, id) = sqs_sample_with_body(SAMPLE, body);
            event.records[0].attributes.insert("ApproximateReceiveCount".into(), receives.to_string());
            let answer = handle(&t.services, invocation(event)).await.unwrap();
            assert_eq!(failed_ids(&answer), vec![id], "reported, so the queue dead-letters it");
            let page = tandem_domain::usecases::dead_letters::list(&t.services, &tenant, None, None).await.unwrap();
            assert_eq!(page.dead_letters.len(), listed, "after delivery {receives}: {page:?}");
        }
        let page = tandem_domain::usecases::dead_letters::list(&t.services, &tenant, None, None).await.unwrap();
        let entry = &page.dead_letters[0];
        assert_eq!((entry.kind.as_str(), entry.receives), ("export", 5));
        assert!(entry.reason.contains("wrong queue"), "{}", entry.reason);
    }

    #[tokio::test]
    async fn an_id_reconciliation_page_for_a_connection_that_does_not_exist_is_acknowledged_and_sends_nothing() {
        let t = embedded_services();
        let body = r#"{"v":1,"kind":"sync_sweep","tenant":"acme","system":"halo","stage":"companies","cursor":{"position":""},"started_at":"2025-01-01T00:00:00Z"}"#;
        let (event, _) = sqs_sample_with_body(SAMPLE, body);
        let answer = handle(&t.services, invocation(event)).await.unwrap();
        assert!(failed_ids(&answer).is_empty(), "{answer:?}");
        assert!(t.embedded.queue.is_idle(), "no message was sent");
    }

    #[tokio::test]
    async fn a_crm_change_to_push_for_a_connection_that_does_not_exist_is_acknowledged_and_sends_nothing() {
        let t = embedded_services();
        let body = r#"{"v":1,"kind":"sync_out","tenant":"acme","system":"halo","record_kind":"company","record":"c-1","change":"company-c-1-v2"}"#;
        let (event, _) = sqs_sample_with_body(SAMPLE, body);
        let answer = handle(&t.services, invocation(event)).await.unwrap();
        assert!(failed_ids(&answer).is_empty(), "{answer:?}");
        assert!(t.embedded.queue.is_idle(), "no message was sent");
    }

    #[tokio::test]
    async fn the_sample_notice_for_a_connection_that_does_not_exist_is_acknowledged_and_changes_nothing() {
        // No connection (it was removed after the notice was queued): nothing to sync, as
        // for a connection whose inbound sync was switched off; retrying cannot help.
        let t = embedded_services();
        let (event, _) = sqs_sample(SAMPLE);
        let answer = handle(&t.services, invocation(event)).await.unwrap();
        assert!(failed_ids(&answer).is_empty(), "{answer:?}");
        assert!(t.embedded.queue.is_idle(), "no message was sent");
        let acme = tandem_domain::TenantId::parse("acme").unwrap();
        assert!(t.services.store.connection(&acme, tandem_domain::System::Halo).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn an_export_sent_to_the_sync_queue_is_reported_as_misrouted() {
        let t = embedded_services();
        let body = r#"{"v":1,"kind":"export","tenant":"acme","system":"halo","export_id":"e-1"}"#;
        let (event, id) = sqs_sample_with_body(SAMPLE, body);
        let answer = handle(&t.services, invocation(event)).await.unwrap();
        assert_eq!(failed_ids(&answer), vec![id]);
        assert!(t.embedded.queue.is_idle(), "no message was sent");
    }

    #[tokio::test]
    async fn a_sync_record_in_the_clashing_shape_with_two_kinds_is_reported() {
        let t = embedded_services();
        let body = r#"{"v":1,"kind":"sync_record","tenant":"acme","system":"halo","external_id":"1042","received_at":"2025-01-01T00:00:00Z"}"#;
        let (event, id) = sqs_sample_with_body(SAMPLE, body);
        let answer = handle(&t.services, invocation(event)).await.unwrap();
        assert_eq!(failed_ids(&answer), vec![id], "a notice without its record kind cannot be read");
    }
}
