//! `tandem serve`: the HTTP API (the routes API Gateway will have) on localhost, over
//! the embedded adapters, with the stage queue drained in-process.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::net::SocketAddr;

use tandem_api::{ApiRequest, handle};

use crate::runtime::LocalRuntime;

/// The header the local API reads the tenant from (API Gateway's JWT claims in AWS).
pub const TENANT_HEADER: &str = "x-tenant-id";
/// The tenant used when a local request names none.
pub const DEFAULT_TENANT: &str = "local";

async fn any(
    State(rt): State<LocalRuntime>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    let tenant = headers.get(TENANT_HEADER).and_then(|v| v.to_str().ok()).unwrap_or(DEFAULT_TENANT).to_string();
    let req = ApiRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        query,
        body: body.to_vec(),
        tenant: Some(tenant),
    };
    let resp = handle(&rt.svc, req).await;
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(resp.body)).into_response()
}

/// The local API router.
pub fn router(rt: LocalRuntime) -> Router {
    Router::new().fallback(any).with_state(rt)
}

/// Binds the API on `addr` and serves until the process ends; returns the bound address.
pub async fn serve(rt: LocalRuntime, addr: SocketAddr) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = router(rt);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the local API stopped");
        }
    });
    Ok((bound, task))
}
