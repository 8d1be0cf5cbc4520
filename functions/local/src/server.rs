//! `tandem serve`: the HTTP API (the routes API Gateway will have) on localhost, over
//! the embedded adapters, with the work queue drained in-process.
//!
//! The server is hyper's HTTP/1 connection driver under this module's own accept loop,
//! so that no client holds a connection or a task for ever ([`ServerLimits`]):
//! - a request's header must have arrived `header_read_timeout` (default 10 s) after the
//!   connection opened or, on a kept-alive connection, after the previous answer was
//!   written, else the connection is closed. hyper (1.4 and later) restarts that timer
//!   whenever a connection goes idle, so the same limit closes idle keep-alive
//!   connections; a test guards that;
//! - a request's whole body must have arrived `body_read_timeout` (default 30 s) after its
//!   header, else the answer is 408 and the connection is closed;
//! - a body over `max_body_bytes` (default 1 MiB) is answered 413 without reading further
//!   (before reading any of it when its `Content-Length` says so), and the connection is
//!   closed;
//! - at most `max_connections` (default 256) connections are served at once. The accept
//!   loop takes a slot before it accepts, so at the limit further connections wait in the
//!   operating system's listen backlog (connected, not yet accepted, not answered) until
//!   a served connection closes; none is refused by the server itself.
//!
//! Every answer, the server's own included, has `content-type: application/json` and the
//! API's error shape `{"error": {"kind", "message"}}` when it is an error. Only requests
//! hyper cannot parse at all get hyper's bare 400 (or 431) with an empty body.
//!
//! The tenant comes from the `x-tenant-id` header ([`TENANT_HEADER`]; in AWS from the
//! JWT authorizer): absent, it is [`DEFAULT_TENANT`]; present, it must be one value of
//! visible ASCII, passed on for the API to validate as a tenant id (401 if it is not).
//! A value with other bytes, or several such headers, is answered 401 and never served
//! as another tenant. `GET /openapi.json`, the API's OpenAPI document, needs no tenant.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Query;
use axum::http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use futures::StreamExt as _;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use tandem_api::{ApiRequest, ApiResponse, handle};

use crate::runtime::LocalRuntime;

/// The header the local API reads the tenant from (API Gateway's JWT claims in AWS).
pub const TENANT_HEADER: &str = "x-tenant-id";
/// The tenant used when a local request names none.
pub const DEFAULT_TENANT: &str = "local";

/// The local server's timeouts and limits (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// How long a connection may take to send a request's header, from its opening or
    /// from the previous answer (so also how long it may stay idle). Default 10 s.
    pub header_read_timeout: Duration,
    /// How long reading a request's whole body may take, from its header. Default 30 s.
    pub body_read_timeout: Duration,
    /// The largest request body, in bytes. Default 1 MiB.
    pub max_body_bytes: usize,
    /// The most connections served at once; further ones wait to be accepted. Default 256.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_body_bytes: 1024 * 1024,
            max_connections: 256,
        }
    }
}

/// What every connection's requests are answered with.
struct App {
    rt: LocalRuntime,
    limits: ServerLimits,
}

/// Binds the API on `addr` with the default [`ServerLimits`] and serves until the
/// returned task is aborted or the process ends; returns the bound address.
pub async fn serve(rt: LocalRuntime, addr: SocketAddr) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    serve_with(rt, addr, ServerLimits::default()).await
}

/// [`serve`] with the given limits. Aborting the returned task stops accepting;
/// connections already accepted run to their end (bounded by the limits).
pub async fn serve_with(
    rt: LocalRuntime,
    addr: SocketAddr,
    limits: ServerLimits,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    anyhow::ensure!(limits.max_connections > 0, "the server needs room for at least one connection");
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(accept_loop(listener, Arc::new(App { rt, limits })));
    Ok((bound, task))
}

async fn accept_loop(listener: TcpListener, app: Arc<App>) {
    let slots = Arc::new(Semaphore::new(app.limits.max_connections));
    loop {
        // A slot first: at the limit, new connections wait in the listen backlog.
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors or similar: wait for some to be released.
                tracing::warn!(error = %e, "cannot accept a connection; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let app = app.clone();
        tokio::spawn(async move {
            serve_connection(stream, peer, app).await;
            drop(slot);
        });
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

async fn serve_connection(stream: TcpStream, peer: SocketAddr, app: Arc<App>) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    let header_read_timeout = app.limits.header_read_timeout;
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.answer(req.map(Body::new)).await) }
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(e) = served {
        tracing::debug!(%peer, error = %e, "connection closed");
    }
}

impl App {
    async fn answer(&self, req: Request<Body>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        // The body first, so that every later answer leaves the connection reusable.
        let body = match read_body(&parts.headers, body, &self.limits).await {
            Ok(body) => body,
            Err(answer) => return answer,
        };
        let query = match Query::<BTreeMap<String, String>>::try_from_uri(&parts.uri) {
            Ok(Query(query)) => query,
            Err(e) => {
                return to_http(ApiResponse::error(
                    400,
                    "invalid",
                    format!("the query string is invalid: {}", e.body_text()),
                ));
            }
        };
        if tandem_api::is_webhook_path(parts.uri.path()) {
            // A webhook call names no tenant: it proves itself to its connection.
            let headers = parts
                .headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_string())))
                .collect();
            let call = tandem_domain::webhook::WebhookCall { headers, query, body };
            return to_http(
                tandem_api::handle_webhook(&self.rt.svc, parts.method.as_str(), parts.uri.path(), call).await,
            );
        }
        if tandem_api::openapi::is_document_request(parts.method.as_str(), parts.uri.path()) {
            // The API's OpenAPI document names no tenant: any caller may read it.
            return to_http(
                handle(
                    &self.rt.svc,
                    ApiRequest { method: "GET".into(), path: parts.uri.path().into(), query, ..Default::default() },
                )
                .await,
            );
        }
        let tenant = match tenant_of(&parts.headers) {
            Ok(tenant) => tenant,
            Err(why) => return to_http(ApiResponse::error(401, "unauthorized", why)),
        };
        let req = ApiRequest {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query,
            body,
            tenant: Some(tenant),
        };
        to_http(handle(&self.rt.svc, req).await)
    }
}

/// The tenant a request names: its `x-tenant-id` header, or [`DEFAULT_TENANT`] when it
/// has none. A value that is not visible ASCII, or more than one value, is refused with
/// the reason, never mapped to another tenant.
fn tenant_of(headers: &HeaderMap) -> Result<String, String> {
    let mut values = headers.get_all(TENANT_HEADER).iter();
    let Some(value) = values.next() else { return Ok(DEFAULT_TENANT.to_string()) };
    let invalid = |why: String| format!("the {TENANT_HEADER} header is not a valid tenant id: {why}");
    if values.next().is_some() {
        return Err(invalid("the header is sent more than once".into()));
    }
    value
        .to_str()
        .map(str::to_string)
        .map_err(|_| invalid(format!("{:?} is not plain ASCII", String::from_utf8_lossy(value.as_bytes()))))
}

enum BodyError {
    TooLarge,
    Broken(String),
}

/// Reads a request's whole body within the limits, or the answer to make instead.
async fn read_body(headers: &HeaderMap, body: Body, limits: &ServerLimits) -> Result<Vec<u8>, Response<Body>> {
    let max = limits.max_body_bytes;
    let too_large =
        || closing(to_http(ApiResponse::error(413, "too_large", format!("the request body is over {max} bytes"))));
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let read = async {
        let mut out = Vec::with_capacity(declared.map_or(0, |n| n as usize));
        let mut chunks = body.into_data_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| BodyError::Broken(e.to_string()))?;
            if chunk.len() > max - out.len() {
                return Err(BodyError::TooLarge);
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    };
    match tokio::time::timeout(limits.body_read_timeout, read).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(BodyError::TooLarge)) => Err(too_large()),
        Ok(Err(BodyError::Broken(e))) => {
            Err(closing(to_http(ApiResponse::error(400, "invalid", format!("the request body cannot be read: {e}")))))
        }
        Err(_) => Err(closing(to_http(ApiResponse::error(
            408,
            "timeout",
            format!("the request body did not arrive within {:?}", limits.body_read_timeout),
        )))),
    }
}

/// The answer with `connection: close`: hyper closes the connection once it is written
/// (for answers made before the request's body was read to its end).
fn closing(mut resp: Response<Body>) -> Response<Body> {
    resp.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// The HTTP response for an API answer: its status, its JSON body with
/// `content-type: application/json`, and its extra headers (such as `Allow`).
fn to_http(resp: ApiResponse) -> Response<Body> {
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (content_type, body) = match resp.raw {
        Some((content_type, text)) => (content_type, text.into_bytes()),
        None => (
            "application/json",
            serde_json::to_vec(&resp.body).unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot encode an answer");
                br#"{"error":{"kind":"internal","message":"cannot encode the answer"}}"#.to_vec()
            }),
        ),
    };
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = status;
    let headers = out.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (name, value) in resp.headers {
        match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
            (Ok(n), _) if n == CONTENT_TYPE || n == CONTENT_LENGTH => {
                tracing::debug!(header = name, "the answer's own {name} header is ignored");
            }
            (Ok(n), Ok(v)) => {
                headers.append(n, v);
            }
            _ => tracing::warn!(header = name, "the API answered a header that is not valid HTTP; left out"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answers_extra_headers_reach_the_http_response_beside_its_json_content_type() {
        let mut resp = ApiResponse::error(405, "method_not_allowed", "no");
        resp.headers =
            vec![("Allow", "GET, PUT".into()), ("content-type", "text/plain".into()), ("bad header", "x".into())];
        let http = to_http(resp);
        assert_eq!(http.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(http.headers().get("allow").and_then(|v| v.to_str().ok()), Some("GET, PUT"));
        let types: Vec<_> = http.headers().get_all(CONTENT_TYPE).iter().collect();
        assert_eq!(types, [HeaderValue::from_static("application/json")]);
    }

    #[test]
    fn a_request_without_a_tenant_header_is_the_default_tenant_and_one_ascii_value_is_passed_on() {
        assert_eq!(tenant_of(&HeaderMap::new()), Ok(DEFAULT_TENANT.to_string()));
        let mut headers = HeaderMap::new();
        headers.insert(TENANT_HEADER, HeaderValue::from_static("acme"));
        assert_eq!(tenant_of(&headers), Ok("acme".to_string()));
        // Visible ASCII but not a tenant id: passed on for the API to refuse.
        headers.insert(TENANT_HEADER, HeaderValue::from_static("not a tenant!"));
        assert_eq!(tenant_of(&headers), Ok("not a tenant!".to_string()));
    }

    #[test]
    fn a_tenant_header_with_other_bytes_or_sent_twice_is_refused_not_defaulted() {
        let mut headers = HeaderMap::new();
        headers.insert(TENANT_HEADER, HeaderValue::from_bytes("Bé".as_bytes()).unwrap());
        let err = tenant_of(&headers).unwrap_err();
        assert!(err.starts_with("the x-tenant-id header is not a valid tenant id: "), "{err}");
        headers.insert(TENANT_HEADER, HeaderValue::from_bytes(b"ac\xffme").unwrap());
        assert!(tenant_of(&headers).is_err());
        let mut twice = HeaderMap::new();
        twice.append(TENANT_HEADER, HeaderValue::from_static("acme"));
        twice.append(TENANT_HEADER, HeaderValue::from_static("other"));
        assert!(tenant_of(&twice).unwrap_err().contains("more than once"));
    }

    #[test]
    fn the_default_limits_are_those_documented() {
        let l = ServerLimits::default();
        assert_eq!(l.header_read_timeout, Duration::from_secs(10));
        assert_eq!(l.body_read_timeout, Duration::from_secs(30));
        assert_eq!(l.max_body_bytes, 1_048_576);
        assert_eq!(l.max_connections, 256);
    }
}
