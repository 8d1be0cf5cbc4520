//! Calling the local runner's HTTP API as the route tests do (as the default tenant, or
//! as another).

use serde_json::Value;
use tandem_local::server;

/// `method path` with `body` as JSON; the status and the answer (`Null` when not JSON).
pub async fn call(base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    call_as(base, server::DEFAULT_TENANT, method, path, body).await
}

/// [`call`] as tenant `tenant`.
pub async fn call_as(base: &str, tenant: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method.parse().expect("an HTTP method"), format!("{base}{path}"))
        .header(server::TENANT_HEADER, tenant);
    if let Some(b) = body {
        req = req.body(b.to_string()).header("content-type", "application/json");
    }
    let resp = req.send().await.expect("the runner answers");
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}
