//! The HaloPSA HTTP API on axum: `POST /auth/token` (client credentials) and under `/api/`
//! the agent check (`Agent/me`), the resources (list, get, POST array, delete) and the
//! setup lists, with bearer authentication and the run-time knobs.

use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::{any, post};
use serde_json::{Value, json};

use super::auth::{Access, Tokens, authenticate, check_token_request};
use super::error::ApiError;
use super::store::{AGENT, ListQuery, Store, spec_of};
use super::webhooks::{self, Webhooks};
use crate::common::{Admission, Controls, empty_response, format_unix, json_response, now_unix};
use crate::webhooks::Change;

/// Shared state of one running simulator.
#[derive(Debug)]
pub(crate) struct App {
    pub store: RwLock<Store>,
    pub controls: Controls,
    pub access: Access,
    pub tokens: Tokens,
    pub webhooks: Webhooks,
}

impl App {
    /// State for a simulator.
    pub(crate) fn new(store: Store, controls: Controls, access: Access) -> Self {
        Self { store: RwLock::new(store), controls, access, tokens: Tokens::new(), webhooks: Webhooks::default() }
    }
}

/// The router of the simulated API.
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new().route("/auth/token", post(token)).route("/api/{*rest}", any(api)).fallback(fallback).with_state(app)
}

async fn fallback(State(app): State<Arc<App>>) -> Response {
    app.controls.arrive().await;
    ApiError::no_endpoint().into_response()
}

fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect()
}

/// `POST /auth/token[?tenant=]` with a form body (psa-apis.md 2.2).
async fn token(State(app): State<Arc<App>>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    app.controls.arrive().await;
    let params = parse_query(query.as_deref());
    let tenant = params.iter().find(|(k, _)| k.eq_ignore_ascii_case("tenant")).map(|(_, v)| v.as_str());
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    if let Err(e) = check_token_request(&app.access, tenant, &form) {
        app.controls.count_unauthorized();
        return e.into_response();
    }
    let scope = form.iter().find(|(k, _)| k == "scope").map_or("all".to_string(), |(_, v)| v.clone());
    let (access_token, expires_in) = app.tokens.issue(&app.access.client_id);
    let body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "scope": scope,
    });
    json_response(StatusCode::OK, &body, &[])
}

async fn api(
    State(app): State<Arc<App>>,
    Path(rest): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    app.controls.arrive().await;
    let params = parse_query(query.as_deref());
    match handle(&app, &rest, &method, &headers, params, &body) {
        Ok(resp) => match app.controls.lost_answer(&method, resp.status().as_u16()) {
            Some(status) => ApiError::injected(status).into_response(),
            None => resp,
        },
        Err(e) => e.into_response(),
    }
}

pub(crate) fn read(app: &App) -> std::sync::RwLockReadGuard<'_, Store> {
    app.store.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write(app: &App) -> std::sync::RwLockWriteGuard<'_, Store> {
    app.store.write().unwrap_or_else(|e| e.into_inner())
}

fn handle(
    app: &App,
    rest: &str,
    method: &Method,
    headers: &HeaderMap,
    params: Vec<(String, String)>,
    body: &Bytes,
) -> Result<Response, ApiError> {
    authenticate(&app.tokens, headers).inspect_err(|_| app.controls.count_unauthorized())?;
    match app.controls.admit() {
        Admission::Allowed => {}
        Admission::Throttled => return Err(ApiError::too_many_requests()),
        Admission::Inject(status) => return Err(ApiError::injected(status)),
    }
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let (first, tail) = segments.split_first().ok_or_else(ApiError::no_endpoint)?;
    if first.eq_ignore_ascii_case("webhook") {
        return webhooks::handle(app, method, tail, body);
    }
    let spec = spec_of(first).ok_or_else(ApiError::no_endpoint)?;
    let ok = |v: &Value| Ok(json_response(StatusCode::OK, v, &[]));
    match tail {
        [] if method == Method::GET => {
            let body = read(app).list(spec, &ListQuery { params })?;
            app.controls.count_get(spec.name);
            ok(&body)
        }
        [] if method == Method::POST && spec.writable => {
            let elements = match serde_json::from_slice::<Value>(body) {
                Ok(Value::Array(a)) if !a.is_empty() => a,
                Ok(_) => return Err(ApiError::bad_request("The request body must be a non-empty JSON array.")),
                Err(e) => return Err(ApiError::bad_request(format!("The request body is not valid JSON: {e}"))),
            };
            let now = format_unix(now_unix());
            let mut store = write(app);
            let mut saved = Vec::with_capacity(elements.len());
            let mut changes = Vec::with_capacity(elements.len());
            for el in elements {
                let updates = el.get("id").and_then(Value::as_i64).is_some_and(|id| id > 0);
                let rec = store.save(spec, el, &now)?;
                changes.push((rec.clone(), if updates { Change::Updated } else { Change::Created }));
                saved.push(rec);
            }
            drop(store);
            for (rec, change) in &changes {
                webhooks::changed(app, spec.name, rec, *change);
            }
            // UNCONFIRMED (psa-apis.md 2.5): one element answers the saved object, several an array.
            let answer = if saved.len() == 1 { saved.remove(0) } else { Value::Array(saved) };
            Ok(json_response(StatusCode::CREATED, &answer, &[]))
        }
        [] => Err(ApiError::method_not_allowed(method.as_str())),
        ["me"] if spec.name == AGENT && method == Method::GET => {
            let me = read(app).get(spec, app.access.agent_id)?;
            app.controls.count_get("agent/me");
            ok(&me)
        }
        [id] => {
            let id = read(app).key(spec, id)?;
            if method == Method::GET {
                let rec = read(app).get(spec, id)?;
                app.controls.count_get(&format!("{}/{{id}}", spec.name));
                ok(&rec)
            } else if method == Method::DELETE && spec.writable {
                let mut store = write(app);
                let before = store.get(spec, id)?;
                store.delete(spec, id, &format_unix(now_unix()))?;
                drop(store);
                webhooks::changed(app, spec.name, &before, Change::Deleted);
                Ok(empty_response(StatusCode::OK, &[]))
            } else {
                Err(ApiError::method_not_allowed(method.as_str()))
            }
        }
        _ => Err(ApiError::no_endpoint()),
    }
}
