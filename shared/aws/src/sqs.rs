//! [`SqsWorkQueue`]: the work queue ([`WorkQueue`]) on one SQS FIFO queue, plus
//! [`create_queues_if_missing`] (the queue and its dead-letter queue) and the helpers a
//! test or the local runner uses to play the Lambda event source ([`SqsWorkQueue::receive`],
//! [`SqsWorkQueue::delete`]). A received message is held back (a resume not due yet) by
//! changing its visibility timeout ([`WorkQueue::hold`]).
//!
//! A message's body is the [`Work`] JSON (versioned, with its kind); its `MessageGroupId`
//! is [`Work::group_id`] (one group per tenant and system, so one connection never races
//! itself) and its `MessageDeduplicationId` is [`Work::dedup_id`], so SQS drops a second
//! send of one message within its five-minute deduplication window. The queue knows
//! nothing else of a message: which queue a kind goes to is the router's business
//! ([`crate::router`]). SQS takes
//! at most 128 printable ASCII characters in either id; an id that does not fit is
//! replaced by `sha256:` and its SHA-256 hex digest (see [`sqs_id`]).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use tandem_domain::ports::{QueueError, WorkQueue};
use tandem_domain::work::Work;

use crate::error::{AwsError, AwsErrorKind};
use sha2::{Digest, Sha256};

const SERVICE: &str = "SQS";
/// The longest deduplication or group id SQS accepts.
pub const MAX_ID_LEN: usize = 128;
const HASHED: &str = "sha256:";
/// The longest visibility timeout SQS sets.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

/// `raw` as an SQS deduplication or group id: itself when it is 1-128 printable ASCII
/// characters (letters, digits, punctuation), otherwise `sha256:` and its hex digest. An
/// id that already starts with `sha256:` is hashed too, so two different ids never map to
/// the same one.
pub fn sqs_id(raw: &str) -> String {
    let fits = !raw.is_empty()
        && raw.len() <= MAX_ID_LEN
        && raw.bytes().all(|b| b.is_ascii_graphic())
        && !raw.starts_with(HASHED);
    if fits { raw.to_string() } else { format!("{HASHED}{}", hex::encode(Sha256::digest(raw.as_bytes()))) }
}

/// The work queue on one SQS FIFO queue (see the module docs).
#[derive(Clone, Debug)]
pub struct SqsWorkQueue {
    client: Client,
    queue_url: String,
}

/// A message as [`SqsWorkQueue::receive`] hands it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// SQS's id of the message (the same on every delivery).
    pub message_id: String,
    /// What [`SqsWorkQueue::delete`] needs (new on every delivery).
    pub receipt_handle: String,
    /// The message body.
    pub body: String,
    /// How often the message has been received, this delivery included.
    pub receive_count: u32,
}

impl SqsWorkQueue {
    /// The queue at `queue_url`, reached through `client` (built once by the caller).
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }

    /// The queue's URL.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Receives up to `max` (1-10) messages, waiting up to `wait` (at most 20 s) for the
    /// first. Received messages stay hidden for the queue's visibility timeout and come
    /// back unless deleted.
    pub async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
        let max = i32::try_from(max.clamp(1, 10)).unwrap_or(10);
        let wait = i32::try_from(wait.as_secs().min(20)).unwrap_or(20);
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, "ReceiveMessage", &e))?;
        let mut messages = Vec::with_capacity(out.messages().len());
        for m in out.messages() {
            let missing = |what: &str| QueueError::from(AwsError::unexpected(SERVICE, "ReceiveMessage", what));
            messages.push(ReceivedMessage {
                message_id: m.message_id().ok_or_else(|| missing("a message without an id"))?.to_string(),
                receipt_handle: m.receipt_handle().ok_or_else(|| missing("a message without a receipt"))?.to_string(),
                body: m.body().unwrap_or_default().to_string(),
                receive_count: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1),
            });
        }
        Ok(messages)
    }

    /// Deletes a received message, so it is not delivered again.
    pub async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, "DeleteMessage", &e))?;
        Ok(())
    }
}

#[async_trait]
impl WorkQueue for SqsWorkQueue {
    async fn send(&self, work: &Work) -> Result<(), QueueError> {
        let body = work.encode().map_err(|e| QueueError(format!("cannot encode the {} message: {e}", work.kind())))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_group_id(sqs_id(&work.group_id()))
            .message_deduplication_id(sqs_id(&work.dedup_id()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, "SendMessage", &e))?;
        Ok(())
    }

    /// Sets the received message's visibility timeout to `delay` (whole seconds, rounded
    /// up, at most SQS's 12 hours).
    async fn hold(&self, _work: &Work, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        let secs = (delay.as_secs() + u64::from(delay.subsec_nanos() > 0)).min(MAX_VISIBILITY.as_secs());
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(i32::try_from(secs).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, "ChangeMessageVisibility", &e))?;
        Ok(())
    }
}

/// How [`create_queues_if_missing`] sets the queues up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueSettings {
    /// How long a received message stays hidden (SQS: 0 s to 12 h; for a Lambda event
    /// source, at least six times the function's timeout).
    pub visibility_timeout: Duration,
    /// Receives after which a message moves to the dead-letter queue.
    pub max_receive_count: u32,
}

impl Default for QueueSettings {
    /// 180 s (six times a 30 s function timeout) and 5 receives.
    fn default() -> Self {
        Self { visibility_timeout: Duration::from_secs(180), max_receive_count: 5 }
    }
}

/// The URLs of the stage queue and its dead-letter queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueUrls {
    /// The FIFO stage queue, `{prefix}.fifo`.
    pub queue_url: String,
    /// Its FIFO dead-letter queue, `{prefix}-dlq.fifo`.
    pub dlq_url: String,
}

/// Creates the FIFO queue `{name_prefix}.fifo` and its FIFO dead-letter queue
/// `{name_prefix}-dlq.fifo` (14 days' retention) unless they exist, and sets the
/// queue's visibility timeout and redrive policy to `settings` either way. Queue names
/// take at most 80 letters, digits, `-` and `_` (with `.fifo`).
pub async fn create_queues_if_missing(
    client: &Client,
    name_prefix: &str,
    settings: &QueueSettings,
) -> Result<QueueUrls, AwsError> {
    let dlq_attributes = HashMap::from([
        (QueueAttributeName::FifoQueue, "true".to_string()),
        (QueueAttributeName::MessageRetentionPeriod, (14 * 24 * 3600).to_string()),
    ]);
    let dlq_url = create_queue(client, &format!("{name_prefix}-dlq.fifo"), dlq_attributes).await?;
    let arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk(SERVICE, "GetQueueAttributes", &e))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| AwsError::unexpected(SERVICE, "GetQueueAttributes", "no QueueArn"))?;
    let redrive = serde_json::json!({ "deadLetterTargetArn": arn, "maxReceiveCount": settings.max_receive_count });
    let mutable = HashMap::from([
        (QueueAttributeName::VisibilityTimeout, settings.visibility_timeout.as_secs().to_string()),
        (QueueAttributeName::RedrivePolicy, redrive.to_string()),
    ]);
    let mut attributes = mutable.clone();
    attributes.insert(QueueAttributeName::FifoQueue, "true".into());
    attributes.insert(QueueAttributeName::ContentBasedDeduplication, "false".into());
    let queue_url = create_queue(client, &format!("{name_prefix}.fifo"), attributes).await?;
    // An existing queue keeps its old settings through CreateQueue: apply them.
    client
        .set_queue_attributes()
        .queue_url(&queue_url)
        .set_attributes(Some(mutable))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk(SERVICE, "SetQueueAttributes", &e))?;
    Ok(QueueUrls { queue_url, dlq_url })
}

/// Creates a queue, or finds it when one of that name exists with other attributes.
async fn create_queue(
    client: &Client,
    name: &str,
    attributes: HashMap<QueueAttributeName, String>,
) -> Result<String, AwsError> {
    match client.create_queue().queue_name(name).set_attributes(Some(attributes)).send().await {
        Ok(out) => out.queue_url.ok_or_else(|| AwsError::unexpected(SERVICE, "CreateQueue", "no QueueUrl")),
        Err(e) => {
            let e = AwsError::from_sdk(SERVICE, "CreateQueue", &e);
            if e.kind != AwsErrorKind::AlreadyExists {
                return Err(e);
            }
            client
                .get_queue_url()
                .queue_name(name)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(SERVICE, "GetQueueUrl", &e))?
                .queue_url
                .ok_or_else(|| AwsError::unexpected(SERVICE, "GetQueueUrl", "no QueueUrl"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_printable_id_is_used_as_it_is() {
        let id = "0123abc:companies:page=2&size=100:1700000000";
        assert_eq!(sqs_id(id), id);
        let punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
        assert_eq!(sqs_id(punctuation), punctuation);
        assert_eq!(sqs_id(&"x".repeat(128)), "x".repeat(128));
    }

    #[test]
    fn a_long_or_unprintable_id_is_replaced_by_its_hash() {
        for raw in ["x".repeat(129), "has space".into(), "café".into(), String::new(), "tab\there".into()] {
            let id = sqs_id(&raw);
            assert!(id.starts_with("sha256:") && id.len() == 71, "{raw:?} -> {id}");
            assert!(id.bytes().all(|b| b.is_ascii_graphic()));
        }
        assert_ne!(sqs_id(&"x".repeat(129)), sqs_id(&"x".repeat(130)));
    }

    #[test]
    fn the_hash_is_sha_256_as_fips_180_4_defines_it() {
        // Known digests: the empty message (FIPS 180-4 examples) and "hello world".
        assert_eq!(sqs_id(""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(sqs_id("hello world"), "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
    }

    #[test]
    fn an_id_that_looks_hashed_cannot_collide_with_a_hash() {
        let hashed = sqs_id("has space");
        assert_ne!(sqs_id(&hashed), hashed);
    }
}
