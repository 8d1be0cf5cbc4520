//! The local runner on AWS interfaces (`--aws-endpoint`): provisions the table and the
//! stage, export and sync queues an AWS-compatible endpoint such as moto needs, builds the
//! Lambda functions' services on it, and plays the SQS event source for the queue-driven
//! functions: receive a batch, invoke the handler, delete what succeeded, leave the
//! failures.

use anyhow::Context;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use tandem_aws::{
    QueueSettings, SqsWorkQueue, create_bucket_if_missing, create_queues_if_missing, create_table_if_missing,
};
use tandem_domain::Stage;
use tandem_domain::work::{Route, Work};
use tandem_lambda::Config;

/// The names of the AWS resources the local runner uses.
#[derive(Clone, Debug)]
pub struct AwsNames {
    pub table: String,
    /// Stage queues are `{prefix}-{stage}.fifo`.
    pub queue_prefix: String,
    pub secret_prefix: String,
    pub event_bus: String,
    /// The snapshot bucket.
    pub snapshot_bucket: String,
    /// How long a received message stays hidden before it is redelivered.
    pub visibility_timeout: Duration,
}

impl Default for AwsNames {
    fn default() -> Self {
        Self {
            table: "tandem-local".into(),
            queue_prefix: "tandem-local-import".into(),
            secret_prefix: "tandem/connections".into(),
            event_bus: "default".into(),
            snapshot_bucket: "tandem-local-snapshots".into(),
            visibility_timeout: Duration::from_secs(10),
        }
    }
}

/// SDK configuration for `endpoint`: the environment's region and credentials, or
/// `us-east-1` and dummy credentials when it has none (moto accepts any).
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).endpoint_url(endpoint);
    if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none() {
        loader = loader.region(Region::new("us-east-1"));
    }
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "tandem-local",
        ));
    }
    loader.load().await
}

/// Creates the table and the stage, export and sync queues (with dead-letter queues) if
/// they are missing, and returns the configuration the functions read from their
/// environment in AWS.
pub async fn provision(sdk: &SdkConfig, names: &AwsNames) -> anyhow::Result<Config> {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    create_table_if_missing(&dynamodb, &names.table)
        .await
        .with_context(|| format!("creating table {}", names.table))?;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(sdk).force_path_style(true).build());
    create_bucket_if_missing(&s3, &names.snapshot_bucket)
        .await
        .with_context(|| format!("creating bucket {}", names.snapshot_bucket))?;
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let settings = QueueSettings { visibility_timeout: names.visibility_timeout, ..QueueSettings::default() };
    let mut queue_urls = BTreeMap::new();
    for stage in Stage::ALL {
        queue_urls.insert(*stage, fifo_queue(&sqs, names, &settings, stage.as_str()).await?);
    }
    let export_queue_url = fifo_queue(&sqs, names, &settings, "export").await?;
    let sync_queue_url = fifo_queue(&sqs, names, &settings, "sync").await?;
    Ok(Config {
        table_name: names.table.clone(),
        secret_prefix: names.secret_prefix.clone(),
        event_bus_name: names.event_bus.clone(),
        snapshot_bucket: names.snapshot_bucket.clone(),
        queue_urls,
        export_queue_url,
        sync_queue_url,
        public_url: None,
        sweep_every: tandem_domain::sync::DEFAULT_SWEEP_EVERY,
    })
}

/// Creates the FIFO queue `{prefix}-{name}.fifo` and its dead-letter queue if missing;
/// returns the queue's URL.
async fn fifo_queue(
    sqs: &aws_sdk_sqs::Client,
    names: &AwsNames,
    settings: &QueueSettings,
    name: &str,
) -> anyhow::Result<String> {
    let prefix = format!("{}-{name}", names.queue_prefix);
    let urls = create_queues_if_missing(sqs, &prefix, settings)
        .await
        .with_context(|| format!("creating queue {prefix}.fifo"))?;
    Ok(urls.queue_url)
}

/// Plays the SQS event source of the queue-driven functions (the stages', the export's and
/// the sync worker's).
pub struct SqsEventSource {
    queues: Vec<(Route, SqsWorkQueue)>,
}

impl SqsEventSource {
    /// An event source over the queues of `config`.
    pub fn new(sdk: &SdkConfig, config: &Config) -> Self {
        let client = aws_sdk_sqs::Client::new(sdk);
        let queues =
            config.routes().into_iter().map(|(route, url)| (route, SqsWorkQueue::new(client.clone(), url))).collect();
        Self { queues }
    }

    /// The queue of `route`, to look into it (a test).
    pub fn queue(&self, route: Route) -> Option<&SqsWorkQueue> {
        self.queues.iter().find(|(r, _)| *r == route).map(|(_, q)| q)
    }

    /// Receives one batch (up to 10) from every queue and invokes `invoke` with it,
    /// like Lambda's event source mapping; deletes the messages that did not fail. When
    /// `invoke` answers `None` the invocation failed as a whole: nothing is deleted and the
    /// messages come back after the visibility timeout. Returns how many were received.
    pub async fn poll_once<F, Fut>(&self, invoke: F) -> anyhow::Result<usize>
    where
        F: Fn(Route, SqsEvent) -> Fut,
        Fut: Future<Output = Option<SqsBatchResponse>>,
    {
        let mut received = 0;
        for (route, queue) in &self.queues {
            let messages = queue.receive(10, Duration::ZERO).await.map_err(|e| anyhow::anyhow!(e))?;
            if messages.is_empty() {
                continue;
            }
            received += messages.len();
            let mut event = SqsEvent::default();
            event.records = messages
                .iter()
                .map(|m| {
                    let mut msg = SqsMessage::default();
                    msg.message_id = Some(m.message_id.clone());
                    msg.receipt_handle = Some(m.receipt_handle.clone());
                    msg.body = Some(m.body.clone());
                    msg.event_source = Some("aws:sqs".into());
                    msg.attributes.insert("ApproximateReceiveCount".into(), m.receive_count.to_string());
                    if let Ok(work) = Work::decode(&m.body) {
                        msg.attributes.insert("MessageGroupId".into(), work.group_id());
                    }
                    msg
                })
                .collect();
            let Some(response) = invoke(*route, event).await else { continue };
            let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
            for m in &messages {
                if !failed.contains(&m.message_id.as_str()) {
                    queue.delete(&m.receipt_handle).await.map_err(|e| anyhow::anyhow!(e))?;
                }
            }
        }
        Ok(received)
    }
}
