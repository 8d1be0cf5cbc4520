//! What every Tandem Lambda function's `main` needs, so each function stays a thin entry
//! point: JSON logs ([`init_tracing`]), one typed [`Config`] read from the environment at
//! cold start, the AWS clients and [`Services`](tandem_domain::usecases::Services) built
//! once ([`build_services`]), the SQS batch runner reporting per-message failures
//! ([`run_batch`]), the import-stage handler all six stage functions share
//! ([`run_stage_batch`]), and the API Gateway HTTP API (payload v2) <-> `tandem_api`
//! conversion ([`http`]).

pub mod batch;
pub mod config;
pub mod http;
pub mod services;
pub mod stage;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use batch::{MessageError, Received, run_batch};
pub use config::{CORE_VARS, Config, ConfigError, HTTP_VARS, HttpConfig};
pub use services::{build_services, load_aws_config, services};
pub use stage::{
    dead_lettered, run_export_batch, run_export_message, run_stage_batch, run_stage_message, run_sync_batch,
    run_sync_message,
};
pub use telemetry::init_tracing;

/// The error type a Lambda handler returns (the runtime reports it to Lambda).
pub type Error = lambda_runtime::Error;
