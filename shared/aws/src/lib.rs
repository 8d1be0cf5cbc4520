//! Tandem's AWS adapters: [`DynamoTable`] (the item table on DynamoDB), [`SqsWorkQueue`]
//! (the work queue on SQS FIFO; one queue per stage behind [`router::WorkRouter`]),
//! [`SecretsManagerStore`] (credentials in Secrets Manager), [`EventBridgePublisher`]
//! (failed-record events on EventBridge) and [`S3Snapshots`] (snapshots of the tenants' CRM
//! records in S3). Each takes an SDK client built once by the
//! caller plus the resource's name; none reads the environment. SDK errors are
//! classified once, in [`error`].
//!
//! [`create_table_if_missing`], [`create_queues_if_missing`] and [`create_bucket_if_missing`]
//! set the resources up for
//! tests and for the local runner against an AWS endpoint (in the cloud the SAM template
//! owns them).

pub mod dynamo;
pub mod error;
pub mod events;
pub mod router;
pub mod s3;
pub mod secrets;
pub mod sqs;

pub use dynamo::{DynamoTable, create_table_if_missing};
pub use error::{AwsError, AwsErrorKind};
pub use events::EventBridgePublisher;
pub use s3::{S3Snapshots, create_bucket_if_missing};
pub use secrets::SecretsManagerStore;
pub use sqs::{QueueSettings, QueueUrls, ReceivedMessage, SqsWorkQueue, create_queues_if_missing, sqs_id};
