//! The `sync-worker` Lambda function: sync in, fed by the sync SQS FIFO queue (webhook
//! notices and poll pages). Only wiring: JSON logs, the config and the services built once
//! at cold start, then the runtime loop.

use sync_worker::handler;

use lambda_runtime::service_fn;
use tandem_lambda::Config;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tandem_lambda::init_tracing();
    let config = Config::from_env().inspect_err(|e| tracing::error!(error = %e, "start-up failed"))?;
    let services = tandem_lambda::build_services(&config).await;
    lambda_runtime::run(service_fn(|event| handler::handle(&services, event))).await
}
