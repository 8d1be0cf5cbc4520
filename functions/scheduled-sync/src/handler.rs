//! The schedule's handler: on each EventBridge tick, starts a sync-in poll of every
//! connection whose inbound sync is on and queues again the CRM changes sync out has not
//! taken ([`schedule::tick`]), and answers how many.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::LambdaEvent;
use tandem_domain::usecases::Services;
use tandem_domain::usecases::schedule::{self, Ticked};

/// Runs one schedule tick. A connection that cannot start is logged and skipped by the
/// use case; only a failure to list the connections fails the invocation.
pub async fn handle(svc: &Services, event: LambdaEvent<EventBridgeEvent>) -> Result<Ticked, tandem_lambda::Error> {
    let ticked = schedule::tick(svc).await?;
    tracing::info!(started = ticked.started, requeued = ticked.requeued, time = ?event.payload.time, "schedule ticked");
    Ok(ticked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tandem_lambda::testing::{embedded_services, event, invocation};

    const SAMPLE: &str = "scheduled-sync.json";

    #[test]
    fn the_sample_event_is_a_scheduled_event() {
        let sample: EventBridgeEvent = event(SAMPLE);
        assert_eq!((sample.detail_type.as_str(), sample.source.as_str()), ("Scheduled Event", "aws.events"));
    }

    #[tokio::test]
    async fn the_sample_event_on_an_empty_store_starts_no_poll() {
        let t = embedded_services();
        let answer = handle(&t.services, invocation(event(SAMPLE))).await.unwrap();
        assert_eq!(answer, Ticked { started: 0, requeued: 0 });
        assert!(t.embedded.queue.is_idle(), "no message was sent");
    }

    #[tokio::test]
    async fn a_connection_with_inbound_sync_on_gets_its_poll_started_and_one_with_it_off_does_not() {
        let t = embedded_services();
        for (tenant, auto_sync) in [("acme", "inbound"), ("globex", "off")] {
            let connection = tandem_lambda::testing::decode(json!({
                "tenant": tenant,
                "system": "halo",
                "status": "connected",
                "account": {},
                "secret_name": format!("tandem/connections/{tenant}/halo"),
                "completed_stages": { "contacts": "2025-01-01T00:00:00Z" },
                "settings": { "auto_sync": auto_sync },
                "created_at": "2025-01-01T00:00:00Z",
                "updated_at": "2025-01-01T00:00:00Z"
            }));
            t.services.store.save_connection(&connection).await.unwrap();
        }
        let answer = handle(&t.services, invocation(event(SAMPLE))).await.unwrap();
        assert_eq!(answer, Ticked { started: 1, requeued: 0 });
        assert_eq!(t.embedded.queue.stats().sent, 1, "one first poll page queued");
    }
}
