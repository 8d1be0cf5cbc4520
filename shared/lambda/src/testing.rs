//! Test helpers for the function packages (feature `testing`): [`Services`] on the
//! embedded adapters, the sample events of the repository's `events/` folder, and a
//! [`LambdaEvent`] around a payload. They panic on failure, as test code does.

use std::path::PathBuf;
use std::sync::Arc;

use lambda_runtime::{Context, LambdaEvent};
use serde::de::DeserializeOwned;
use tandem_connectors::{Connectors, Settings};
use tandem_domain::ports::SystemClock;
use tandem_domain::usecases::{Services, Tuning};
use tandem_embedded::{Embedded, QueueConfig};

/// The tenant claim the sample HTTP events carry.
pub const SAMPLE_TENANT_CLAIM: &str = "custom:tenant_id";

/// Services on in-memory embedded adapters and real connectors, with the adapters kept
/// for a test to look into.
#[derive(Clone)]
pub struct TestServices {
    /// What a handler gets.
    pub services: Services,
    /// The adapters behind them.
    pub embedded: Embedded,
}

/// Fresh in-memory services.
pub fn embedded_services() -> TestServices {
    let embedded = Embedded::in_memory(QueueConfig::default());
    let services = Services {
        store: embedded.record_store(),
        queue: embedded.queue.clone(),
        secrets: embedded.secrets.clone(),
        connectors: Arc::new(Connectors::new(Settings {
            pacing: tandem_connectors::Pacing::Off,
            ..Settings::default()
        })),
        clock: Arc::new(SystemClock),
        events: embedded.events.clone(),
        snapshots: embedded.snapshots.clone(),
        tuning: Tuning::default(),
        meter: Default::default(),
    };
    TestServices { services, embedded }
}

/// The repository's `events/` folder.
pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

/// The sample event `events/{name}` as JSON.
pub fn event_json(name: &str) -> serde_json::Value {
    let path = events_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The sample event `events/{name}` decoded as a `T` (as the Lambda runtime would).
pub fn event<T: DeserializeOwned>(name: &str) -> T {
    decode(event_json(name))
}

/// A JSON event decoded as a `T`.
pub fn decode<T: DeserializeOwned>(json: serde_json::Value) -> T {
    serde_json::from_value(json)
        .unwrap_or_else(|e| panic!("the event is not a valid {}: {e}", std::any::type_name::<T>()))
}

/// `payload` as one invocation with an empty context.
pub fn invocation<T>(payload: T) -> LambdaEvent<T> {
    LambdaEvent::new(payload, Context::default())
}

/// The ids `batchItemFailures` names.
pub fn failed_ids(response: &aws_lambda_events::sqs::SqsBatchResponse) -> Vec<String> {
    response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect()
}

/// The sample SQS event `events/{name}` and the id of its first message.
pub fn sqs_sample(name: &str) -> (aws_lambda_events::sqs::SqsEvent, String) {
    let event: aws_lambda_events::sqs::SqsEvent = event(name);
    let id = event.records.first().and_then(|r| r.message_id.clone()).unwrap_or_default();
    (event, id)
}

/// The sample SQS event `events/{name}` with its first message's body replaced by `body`.
pub fn sqs_sample_with_body(name: &str, body: &str) -> (aws_lambda_events::sqs::SqsEvent, String) {
    let (mut event, id) = sqs_sample(name);
    if let Some(record) = event.records.first_mut() {
        record.body = Some(body.to_string());
    }
    (event, id)
}

/// The first message's body of the sample SQS event `events/{name}`, as JSON.
pub fn sqs_sample_body(name: &str) -> serde_json::Value {
    let (event, _) = sqs_sample(name);
    let body = event.records.first().and_then(|r| r.body.clone()).unwrap_or_default();
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("the first message's body in {name} is not JSON: {e}"))
}

#[doc(hidden)]
pub use serde_json as __serde_json;

/// The tests every import-stage function's handler must pass, run against its sample
/// event `events/import-<stage>.json`. Invoke inside the handler's test module, where
/// `STAGE` and `handle` are in scope: `tandem_lambda::stage_handler_tests!();`.
#[macro_export]
macro_rules! stage_handler_tests {
    () => {
        fn sample() -> String {
            format!("import-{}.json", STAGE.as_str())
        }

        #[tokio::test]
        async fn the_sample_event_for_a_job_that_does_not_exist_is_acknowledged_with_nothing_to_do() {
            let t = $crate::testing::embedded_services();
            let (event, _) = $crate::testing::sqs_sample(&sample());
            let body = $crate::testing::sqs_sample_body(&sample());
            assert_eq!(body["stage"], STAGE.as_str(), "the sample's stage");
            assert_eq!((&body["v"], &body["kind"]), (&1.into(), &"import_page".into()), "a version 1 import page");
            let answer = handle(&t.services, $crate::testing::invocation(event)).await.unwrap();
            assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
            assert!(t.embedded.queue.is_idle(), "no message was sent");
        }

        #[tokio::test]
        async fn a_message_with_a_malformed_body_is_reported_by_its_message_id() {
            let t = $crate::testing::embedded_services();
            let body = format!(r#"{{"tenant": "acme", "stage": "{}"}}"#, STAGE.as_str());
            let (event, id) = $crate::testing::sqs_sample_with_body(&sample(), &body);
            let answer = handle(&t.services, $crate::testing::invocation(event)).await.unwrap();
            assert_eq!($crate::testing::failed_ids(&answer), vec![id]);
        }

        #[tokio::test]
        async fn a_message_for_another_stage_is_reported_as_misrouted() {
            let t = $crate::testing::embedded_services();
            let mut body = $crate::testing::sqs_sample_body(&sample());
            let other = tandem_domain::Stage::ALL.iter().find(|s| **s != STAGE).unwrap();
            body["stage"] = $crate::testing::__serde_json::Value::String(other.as_str().to_string());
            let (event, id) = $crate::testing::sqs_sample_with_body(&sample(), &body.to_string());
            let answer = handle(&t.services, $crate::testing::invocation(event)).await.unwrap();
            assert_eq!($crate::testing::failed_ids(&answer), vec![id]);
            assert!(t.embedded.queue.is_idle(), "no message was sent");
        }

        #[tokio::test]
        async fn a_message_in_the_unversioned_format_from_before_the_work_queue_is_still_run() {
            let t = $crate::testing::embedded_services();
            let mut body = $crate::testing::sqs_sample_body(&sample());
            let fields = body.as_object_mut().unwrap();
            fields.remove("v");
            fields.remove("kind");
            let (event, _) = $crate::testing::sqs_sample_with_body(&sample(), &body.to_string());
            let answer = handle(&t.services, $crate::testing::invocation(event)).await.unwrap();
            assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
        }

        #[tokio::test]
        async fn a_message_of_an_unknown_version_or_kind_is_reported_by_its_message_id() {
            let t = $crate::testing::embedded_services();
            for (field, value) in [("v", $crate::testing::__serde_json::json!(2)), ("kind", "teleport".into())] {
                let mut body = $crate::testing::sqs_sample_body(&sample());
                body[field] = value;
                let (event, id) = $crate::testing::sqs_sample_with_body(&sample(), &body.to_string());
                let answer = handle(&t.services, $crate::testing::invocation(event)).await.unwrap();
                assert_eq!($crate::testing::failed_ids(&answer), vec![id], "{field}");
            }
            assert!(t.embedded.queue.is_idle(), "no message was sent");
        }
    };
}
