//! The AWS clients and the use cases' [`Services`], built once per execution environment
//! (cold start) and shared by every invocation: the DynamoDB table, the work queue (one
//! SQS FIFO queue per import stage, and the export's, behind a [`WorkRouter`]), Secrets Manager,
//! EventBridge, the connectors and the system clock.

use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};
use tandem_aws::router::WorkRouter;
use tandem_aws::{DynamoTable, EventBridgePublisher, S3Snapshots, SecretsManagerStore};
use tandem_connectors::{Connectors, Settings};
use tandem_domain::ports::SystemClock;
use tandem_domain::table::RecordStore;
use tandem_domain::usecases::{Services, Tuning};

use crate::config::Config;

/// The SDK configuration from the environment: region, credentials, and
/// `AWS_ENDPOINT_URL` when set (e.g. moto on loopback in tests).
pub async fn load_aws_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// The services on AWS, with clients built from `sdk` and the resources named by `config`.
pub fn services(sdk: &SdkConfig, config: &Config) -> Services {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let secretsmanager = aws_sdk_secretsmanager::Client::new(sdk);
    let eventbridge = aws_sdk_eventbridge::Client::new(sdk);
    // Path-style addresses where an endpoint is set (moto, the local runner); AWS's own
    // virtual-hosted addresses otherwise.
    let s3 = aws_sdk_s3::config::Builder::from(sdk).force_path_style(sdk.endpoint_url().is_some()).build();
    let s3 = aws_sdk_s3::Client::from_conf(s3);
    let queues = config.routes();
    Services {
        store: RecordStore::new(Arc::new(DynamoTable::new(dynamodb, &config.table_name))),
        queue: Arc::new(WorkRouter::sqs(&sqs, queues)),
        secrets: Arc::new(SecretsManagerStore::new(secretsmanager, &config.secret_prefix)),
        // In AWS the credential check must not become a way into the VPC: sites on private,
        // loopback and CGNAT ranges (and `localhost`) are refused, as link-local and metadata
        // addresses are everywhere. The local runner keeps the default (its simulators
        // listen on loopback).
        connectors: Arc::new(Connectors::new(Settings { allow_private_hosts: false, ..Settings::default() })),
        clock: Arc::new(SystemClock),
        events: Arc::new(EventBridgePublisher::new(eventbridge, &config.event_bus_name)),
        snapshots: Arc::new(S3Snapshots::new(s3, &config.snapshot_bucket)),
        tuning: Tuning { public_url: config.public_url.clone(), sweep_every: config.sweep_every, ..Tuning::default() },
        meter: Default::default(),
    }
}

/// Loads the SDK configuration and builds the services: call once at cold start.
pub async fn build_services(config: &Config) -> Services {
    services(&load_aws_config().await, config)
}
