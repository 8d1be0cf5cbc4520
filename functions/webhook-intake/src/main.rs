//! The `webhook-intake` Lambda function: `POST /webhooks/{system}/{key}` (API Gateway HTTP
//! API, payload v2, no JWT authorizer: each call proves itself per system). Only wiring:
//! JSON logs, the config and the services built once at cold start, then the runtime loop.

use webhook_intake::handler;

use lambda_runtime::service_fn;
use tandem_lambda::Config;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tandem_lambda::init_tracing();
    let config = Config::from_env().inspect_err(|e| tracing::error!(error = %e, "start-up failed"))?;
    let services = tandem_lambda::build_services(&config).await;
    lambda_runtime::run(service_fn(|event| handler::handle(&services, event))).await
}
