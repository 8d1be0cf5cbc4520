//! The SQS batch runner: decodes each message of an [`SqsEvent`], runs it, and answers an
//! [`SqsBatchResponse`] whose `batchItemFailures` name exactly the messages that did not
//! succeed, so Lambda deletes the others and SQS redelivers only those (the event source
//! mapping needs `FunctionResponseTypes: [ReportBatchItemFailures]`).
//!
//! - Messages run one after another, in the batch's order: on a FIFO queue they share a
//!   message group, and a group's order is the order its pages must be handled in. Once a
//!   message of a group fails, the later messages of that group in the batch are reported
//!   as failures without being run, so they come back after it, still in order.
//! - A [retryable](MessageError::is_retryable) failure may pass on a later delivery.
//! - A message that can never succeed as it is (a body that does not decode, a message
//!   sent to the wrong function, a failure retrying cannot fix) is logged as an error and
//!   reported too: SQS has no other way to move it aside, so after the queue's
//!   `maxReceiveCount` receives it lands in the dead-letter queue, and nothing is lost.
//! - A message [held back](MessageError::waiting) (a resume not due yet) is reported too,
//!   logged as waiting, not as a failure: its visibility timeout was set to when it is due.
//! - A message without a `messageId` cannot be named; it is reported with an empty id,
//!   which Lambda treats as a failure of the whole batch (so it is redelivered too).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde::de::DeserializeOwned;
use tandem_domain::DomainError;
use tracing::Instrument;

/// The SQS system attribute naming a FIFO message's group.
pub const MESSAGE_GROUP_ID: &str = "MessageGroupId";
/// The SQS system attribute counting a message's receives.
pub const RECEIVE_COUNT: &str = "ApproximateReceiveCount";

/// Why one message failed, and whether a later delivery may succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageError {
    reason: String,
    retryable: bool,
    waiting: bool,
}

impl MessageError {
    /// A failure that may pass on a later delivery.
    pub fn retryable(reason: impl Into<String>) -> Self {
        Self { reason: reason.into(), retryable: true, waiting: false }
    }

    /// A failure no redelivery will fix: the message belongs in the dead-letter queue.
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self { reason: reason.into(), retryable: false, waiting: false }
    }

    /// Not a failure: the message is not due yet and was held back to come again then.
    pub fn waiting(reason: impl Into<String>) -> Self {
        Self { reason: reason.into(), retryable: true, waiting: true }
    }

    /// Whether the message was only held back ([`MessageError::waiting`]).
    pub fn is_waiting(&self) -> bool {
        self.waiting
    }

    /// Whether a later delivery may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// What went wrong.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for MessageError {}

impl From<DomainError> for MessageError {
    /// Retryable exactly when [`DomainError::is_retryable`] says so.
    fn from(e: DomainError) -> Self {
        Self { retryable: e.is_retryable(), reason: e.to_string(), waiting: false }
    }
}

/// The last segment of a type's path, for messages (`Work`).
fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

/// Decodes a message body as a `T`, naming what is wrong when it cannot.
fn decode<T: DeserializeOwned>(message: &SqsMessage) -> Result<T, MessageError> {
    let what = short_type_name::<T>();
    let body = message
        .body
        .as_deref()
        .ok_or_else(|| MessageError::permanent(format!("the message has no body; expected a {what} as JSON")))?;
    serde_json::from_str(body).map_err(|e| {
        MessageError::permanent(format!(
            "the message body is not a valid {what} JSON: {e} (body: {} bytes)",
            body.len()
        ))
    })
}

/// One receive of a message, as [`run_batch`] hands it to its handler.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// How often the message has been received, this time included (1 the first time),
    /// so the handler can tell the last delivery before the dead-letter queue.
    pub receive_count: u32,
    /// This receive's handle, to hold the message back ([`WorkQueue::hold`](tandem_domain::ports::WorkQueue::hold)).
    pub receipt_handle: Option<String>,
}

/// Runs every message of `event` through `handle` (see the module docs) and answers which
/// ones failed. `handle` also gets the [receive](Received) (its count and handle).
pub async fn run_batch<T, F, Fut>(event: SqsEvent, mut handle: F) -> SqsBatchResponse
where
    T: DeserializeOwned,
    F: FnMut(T, Received) -> Fut,
    Fut: Future<Output = Result<(), MessageError>>,
{
    let mut response = SqsBatchResponse::default();
    // FIFO group -> the id of its message that failed first in this batch.
    let mut failed_groups: HashMap<String, String> = HashMap::new();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let group = message.attributes.get(MESSAGE_GROUP_ID).cloned();
        let receives = message.attributes.get(RECEIVE_COUNT).cloned().unwrap_or_default();
        let span = tracing::info_span!("sqs_message", message_id = %id, group = group.as_deref().unwrap_or(""));
        if let Some(earlier) = group.as_ref().and_then(|g| failed_groups.get(g)) {
            span.in_scope(|| {
                tracing::warn!(
                    earlier_failure = %earlier,
                    "message not run: an earlier message of its FIFO group failed in this batch; \
                     reported as failed so it is redelivered after that one, in order"
                )
            });
            response.add_failure(id);
            continue;
        }
        let outcome = match decode::<T>(&message) {
            Ok(decoded) => {
                let received = Received {
                    receive_count: receives.parse().unwrap_or(1),
                    receipt_handle: message.receipt_handle.clone(),
                };
                handle(decoded, received).instrument(span.clone()).await
            }
            Err(e) => Err(e),
        };
        let Err(error) = outcome else { continue };
        span.in_scope(|| {
            if error.is_waiting() {
                tracing::info!(reason = %error, receive_count = %receives, "message held back until it is due");
            } else if error.is_retryable() {
                tracing::warn!(
                    error = %error, receive_count = %receives, retryable = true,
                    "message failed; reported as failed so SQS redelivers it"
                );
            } else {
                tracing::error!(
                    error = %error, receive_count = %receives, retryable = false,
                    "message failed and cannot succeed as it is; reported as failed so that after the queue's \
                     maxReceiveCount receives it moves to the dead-letter queue"
                );
            }
            if id.is_empty() {
                tracing::error!("the failed message has no messageId: Lambda will redeliver the whole batch");
            }
        });
        if let Some(group) = group {
            failed_groups.entry(group).or_insert_with(|| id.clone());
        }
        response.add_failure(id);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::sync::{Arc, Mutex};

    #[derive(Debug, Deserialize)]
    struct Work {
        n: u32,
    }

    fn message(id: &str, group: Option<&str>, body: Option<&str>) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.to_string());
        m.body = body.map(str::to_string);
        if let Some(g) = group {
            m.attributes.insert(MESSAGE_GROUP_ID.to_string(), g.to_string());
        }
        m
    }

    fn event(messages: Vec<SqsMessage>) -> SqsEvent {
        let mut e = SqsEvent::default();
        e.records = messages;
        e
    }

    fn failed_ids(r: &SqsBatchResponse) -> Vec<&str> {
        r.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect()
    }

    /// Runs the batch; `n` 0 fails retryably, 1 permanently, anything else succeeds.
    async fn run(e: SqsEvent) -> (SqsBatchResponse, Vec<u32>) {
        let ran = Arc::new(Mutex::new(Vec::new()));
        let response = run_batch(e, |w: Work, _receives| {
            let ran = ran.clone();
            async move {
                ran.lock().unwrap().push(w.n);
                match w.n {
                    0 => Err(MessageError::retryable("the store is busy")),
                    1 => Err(MessageError::permanent("cannot ever work")),
                    _ => Ok(()),
                }
            }
        })
        .await;
        let ran = ran.lock().unwrap().clone();
        (response, ran)
    }

    #[tokio::test]
    async fn a_batch_that_succeeds_reports_no_failures() {
        let (response, ran) = run(event(vec![
            message("a", Some("g"), Some(r#"{"n": 5}"#)),
            message("b", Some("g"), Some(r#"{"n": 6}"#)),
        ]))
        .await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(ran, vec![5, 6]);
    }

    #[tokio::test]
    async fn only_the_messages_that_failed_are_reported() {
        let (response, ran) = run(event(vec![
            message("a", None, Some(r#"{"n": 5}"#)),
            message("b", None, Some(r#"{"n": 0}"#)),
            message("c", None, Some(r#"{"n": 7}"#)),
            message("d", None, Some(r#"{"n": 1}"#)),
        ]))
        .await;
        assert_eq!(failed_ids(&response), vec!["b", "d"]);
        assert_eq!(ran, vec![5, 0, 7, 1]);
    }

    #[tokio::test]
    async fn after_a_failure_the_rest_of_its_fifo_group_is_reported_without_running() {
        let (response, ran) = run(event(vec![
            message("a1", Some("acme"), Some(r#"{"n": 5}"#)),
            message("a2", Some("acme"), Some(r#"{"n": 0}"#)),
            message("b1", Some("other"), Some(r#"{"n": 6}"#)),
            message("a3", Some("acme"), Some(r#"{"n": 7}"#)),
            message("b2", Some("other"), Some(r#"{"n": 8}"#)),
        ]))
        .await;
        assert_eq!(failed_ids(&response), vec!["a2", "a3"]);
        assert_eq!(ran, vec![5, 0, 6, 8], "a3 was not run; the other group went on");
    }

    #[tokio::test]
    async fn a_body_that_does_not_decode_is_reported_and_blocks_its_group() {
        let (response, ran) = run(event(vec![
            message("bad", Some("g"), Some(r#"{"m": 1}"#)),
            message("empty", Some("h"), None),
            message("next", Some("g"), Some(r#"{"n": 5}"#)),
            message("fine", Some("i"), Some(r#"{"n": 6}"#)),
        ]))
        .await;
        assert_eq!(failed_ids(&response), vec!["bad", "empty", "next"]);
        assert_eq!(ran, vec![6]);
    }

    #[test]
    fn a_decode_error_names_the_expected_type_and_what_is_wrong() {
        let err = decode::<Work>(&message("x", None, Some(r#"{"m": 1}"#))).unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.reason().contains("not a valid Work JSON") && err.reason().contains("missing field `n`"), "{err}");
        let err = decode::<Work>(&message("x", None, None)).unwrap_err();
        assert!(err.reason().contains("no body"), "{err}");
    }

    #[test]
    fn domain_errors_keep_their_retryability() {
        use tandem_domain::ports::StoreError;
        assert!(MessageError::from(DomainError::Store(StoreError::Unavailable("busy".into()))).is_retryable());
        assert!(!MessageError::from(DomainError::invalid("bad")).is_retryable());
    }
}
