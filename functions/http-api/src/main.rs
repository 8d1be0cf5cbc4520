//! The `http-api` Lambda function: every route of the HTTP API but saving credentials
//! (API Gateway HTTP API, payload v2). Only wiring: JSON logs, the config and the
//! services built once at cold start, then the runtime loop.

use http_api::handler;

use lambda_runtime::service_fn;
use tandem_lambda::HttpConfig;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tandem_lambda::init_tracing();
    let config = HttpConfig::from_env().inspect_err(|e| tracing::error!(error = %e, "start-up failed"))?;
    let services = tandem_lambda::build_services(&config.core).await;
    lambda_runtime::run(service_fn(|event| handler::handle(&services, &config.tenant_claim, event))).await
}
