//! [`EventBridgePublisher`]: the event publisher ([`EventPublisher`]) on Amazon
//! EventBridge. Each failed record becomes one event on the configured bus with source
//! [`SOURCE`], detail type [`DETAIL_TYPE`] and the [`FailureEvent`] JSON as its detail
//! (its schema: `docs/events/sync-failed.schema.json`), for a rule to route to whatever
//! notifies the tenant. Publishing is best effort: a failure is
//! logged as a warning and never fails the record's operation.

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use tandem_domain::events::FailureEvent;
use tandem_domain::job::Job;
use tandem_domain::ports::EventPublisher;

use crate::error::{AwsError, AwsErrorKind};

const SERVICE: &str = "EventBridge";
/// The events' `source`.
pub const SOURCE: &str = "tandem";
/// The `detail-type` of a failed record's event (the detail is a [`FailureEvent`]).
pub const DETAIL_TYPE: &str = tandem_domain::events::TYPE;
/// The `detail-type` of a failed job's event (the detail is the job).
pub const JOB_FAILED: &str = "job.failed";

/// The event publisher on EventBridge (see the module docs).
#[derive(Clone, Debug)]
pub struct EventBridgePublisher {
    client: Client,
    bus_name: String,
}

impl EventBridgePublisher {
    /// A publisher to the bus `bus_name` (a name or ARN; `default` for the account's
    /// default bus), reached through `client` (built once by the caller).
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        Self { client, bus_name: bus_name.into() }
    }

    /// The bus events go to.
    pub fn bus_name(&self) -> &str {
        &self.bus_name
    }

    /// Publishes one failed-record event, reporting any failure to the caller.
    pub async fn publish(&self, event: &FailureEvent) -> Result<(), AwsError> {
        self.put_event(DETAIL_TYPE, event).await
    }

    /// Publishes one event of `detail_type` with `detail` as its JSON detail.
    pub async fn put_event<T: serde::Serialize>(&self, detail_type: &str, detail: &T) -> Result<(), AwsError> {
        const OP: &str = "PutEvents";
        let detail = serde_json::to_string(detail).map_err(|e| AwsError {
            kind: AwsErrorKind::Invalid,
            service: SERVICE,
            operation: OP,
            code: None,
            message: format!("cannot encode the event detail: {e}"),
        })?;
        let event = PutEventsRequestEntry::builder()
            .source(SOURCE)
            .detail_type(detail_type)
            .detail(detail)
            .event_bus_name(&self.bus_name)
            .build();
        let out =
            self.client.put_events().entries(event).send().await.map_err(|e| AwsError::from_sdk(SERVICE, OP, &e))?;
        if out.failed_entry_count() > 0 {
            let failed = out.entries().iter().find(|e| e.error_code().is_some());
            let code = failed.and_then(|e| e.error_code()).map(str::to_string);
            let message = failed.and_then(|e| e.error_message()).unwrap_or("no message");
            return Err(AwsError {
                kind: crate::error::kind_of_code(code.as_deref(), None),
                service: SERVICE,
                operation: OP,
                message: format!("the event was refused: {}: {message}", code.as_deref().unwrap_or("no code")),
                code,
            });
        }
        Ok(())
    }
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    async fn failed(&self, event: &FailureEvent) {
        if let Err(e) = self.publish(event).await {
            tracing::warn!(
                tenant = %event.tenant,
                log_id = %event.log_id,
                bus = %self.bus_name,
                error = %e,
                "could not publish a record.failed event"
            );
        }
    }

    async fn job_failed(&self, job: &Job) {
        if let Err(e) = self.put_event(JOB_FAILED, job).await {
            tracing::warn!(tenant = %job.tenant, job = %job.id, bus = %self.bus_name, error = %e,
                "could not publish a job.failed event");
        }
    }
}
