//! The Syncro HTTP API on axum, under `/api/v1`: `/me`, `/users` (pairs) and
//! `/users/{id}`, and `/customers`, `/contacts`, `/leads` (paged lists with `meta` and the
//! Y1 filters `include_disabled`, `business_name`, `customer_id` and `query`, customers'
//! `sort`; get, create, partial update, delete), with token authentication, the per-minute rate limit
//! (psa-apis.md 3.7) and the shared run-time knobs.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::any;
use serde_json::{Value, json};

use super::auth::{Access, ApiToken, authenticate};
use super::error::ApiError;
use super::store::{Filters, Kind, Store};
use super::webhooks;
use crate::common::{Admission, Controls, json_response, now_unix};
use crate::webhooks::Change;
use crate::webhooks::Subscriptions;

/// The path the API lives under (psa-apis.md 3.1).
pub(crate) const API_PREFIX: &str = "api/v1";

/// Syncro's documented limit: 180 requests per minute per IP address (psa-apis.md 3.7).
pub const DEFAULT_REQUESTS_PER_MINUTE: u32 = 180;

/// A sliding-window request limit (every request counts, as the limit is per IP).
#[derive(Debug)]
pub(crate) struct RateLimit {
    /// Requests allowed per window; 0 means none.
    limit: AtomicU32,
    window: Mutex<Duration>,
    seen: Mutex<VecDeque<Instant>>,
    throttled: AtomicU64,
}

impl RateLimit {
    /// `limit` requests per minute (`None`: unlimited).
    pub(crate) fn new(limit: Option<u32>) -> Self {
        Self {
            limit: AtomicU32::new(limit.unwrap_or(0)),
            window: Mutex::new(Duration::from_secs(60)),
            seen: Mutex::new(VecDeque::new()),
            throttled: AtomicU64::new(0),
        }
    }

    /// Changes the limit and starts counting afresh.
    pub(crate) fn set_limit(&self, limit: Option<u32>) {
        self.limit.store(limit.unwrap_or(0), Ordering::SeqCst);
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Changes the window the limit counts over (default one minute; tests shorten it).
    pub(crate) fn set_window(&self, window: Duration) {
        *self.window.lock().unwrap_or_else(|e| e.into_inner()) = window.max(Duration::from_millis(1));
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// `Ok` when the request fits, else the whole seconds until a slot frees (at least 1).
    pub(crate) fn admit(&self) -> Result<(), u64> {
        let limit = self.limit.load(Ordering::SeqCst) as usize;
        if limit == 0 {
            return Ok(());
        }
        let window = *self.window.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        while seen.front().is_some_and(|t| now.duration_since(*t) >= window) {
            seen.pop_front();
        }
        if seen.len() >= limit {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            let free_at = seen.front().map_or(Duration::ZERO, |t| window.saturating_sub(now.duration_since(*t)));
            return Err(free_at.as_millis().div_ceil(1000).max(1) as u64);
        }
        seen.push_back(now);
        Ok(())
    }

    /// Requests answered 429 by this limit.
    pub(crate) fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }
}

/// Shared state of one running simulator.
#[derive(Debug)]
pub(crate) struct App {
    pub store: RwLock<Store>,
    pub controls: Controls,
    pub rate: RateLimit,
    pub access: Access,
    pub subscriptions: Subscriptions,
}

impl App {
    /// State for a simulator with these knobs.
    pub(crate) fn new(store: Store, controls: Controls, rate: RateLimit, access: Access) -> Self {
        Self { store: RwLock::new(store), controls, rate, access, subscriptions: Subscriptions::default() }
    }
}

/// The router of the simulated API.
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new().route(&format!("/{API_PREFIX}/{{*rest}}"), any(api)).fallback(fallback).with_state(app)
}

async fn fallback(State(app): State<Arc<App>>) -> Response {
    app.controls.arrive().await;
    ApiError::not_found().into_response_with(&[])
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
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes()).into_owned().collect();
    let resp_headers = [("x-server", "tandem-sim".to_string())];
    match handle(&app, &rest, &method, &headers, &params, &body) {
        Ok((status, value)) => match app.controls.lost_answer(&method, status.as_u16()) {
            Some(lost) => ApiError::injected(lost).into_response_with(&resp_headers),
            None => json_response(status, &value, &resp_headers),
        },
        Err(e) => e.into_response_with(&resp_headers),
    }
}

/// Syncro timestamps carry milliseconds (psa-apis.md 3.1).
pub(crate) fn now_text() -> String {
    let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_millis());
    stamp(now_unix(), millis)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for a Unix time and milliseconds.
pub(crate) fn stamp(secs: i64, millis: u32) -> String {
    let plain = crate::common::format_unix(secs);
    format!("{}.{:03}Z", plain.trim_end_matches('Z'), millis % 1000)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn handle(
    app: &App,
    rest: &str,
    method: &Method,
    headers: &HeaderMap,
    params: &[(String, String)],
    body: &Bytes,
) -> Result<(StatusCode, Value), ApiError> {
    app.rate.admit().map_err(ApiError::too_many_requests)?;
    let token = authenticate(&app.access, headers, params).inspect_err(|_| app.controls.count_unauthorized())?;
    match app.controls.admit() {
        Admission::Allowed => {}
        Admission::Throttled => return Err(ApiError::too_many_requests(1)),
        Admission::Inject(status) => return Err(ApiError::injected(status)),
    }
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let get = method == Method::GET;
    match segments.as_slice() {
        ["me"] if get => {
            app.controls.count_get("me");
            me(app, token)
        }
        ["users"] if get => {
            let out = read(app).user_pairs()?;
            app.controls.count_get("users");
            Ok((StatusCode::OK, out))
        }
        [plural, rest @ ..] => {
            let kind = Kind::of(plural).ok_or_else(ApiError::not_found)?;
            if token.restricted && kind == Kind::Contacts {
                app.controls.count_forbidden();
                return Err(ApiError::permission());
            }
            resource(app, kind, rest, method, params, body)
        }
        [] => Err(ApiError::not_found()),
    }
}

fn resource(
    app: &App,
    kind: Kind,
    rest: &[&str],
    method: &Method,
    params: &[(String, String)],
    body: &Bytes,
) -> Result<(StatusCode, Value), ApiError> {
    let plural = kind.plural();
    match rest {
        [] if *method == Method::GET && kind != Kind::Users => {
            let page = param(params, "page").and_then(|p| p.trim().parse::<usize>().ok()).unwrap_or(1);
            let filters = Filters {
                include_disabled: param(params, "include_disabled").is_some_and(|v| v.eq_ignore_ascii_case("true")),
                customer_id: param(params, "customer_id").and_then(|v| v.trim().parse().ok()),
                business_name: param(params, "business_name").filter(|v| !v.trim().is_empty()).map(str::to_string),
                query: param(params, "query").filter(|v| !v.trim().is_empty()).map(str::to_string),
                sort: param(params, "sort").and_then(Filters::sort_of),
            };
            let out = read(app).list(kind, page, &filters)?;
            app.controls.count_get(plural);
            Ok((StatusCode::OK, out))
        }
        [] if *method == Method::POST && kind != Kind::Users => {
            let out = write(app).create(kind, json_body(body)?, &now_text())?;
            webhooks::changed(app, kind, &webhooks::unwrapped(kind, &out), Change::Created);
            Ok((StatusCode::OK, out))
        }
        [id] => {
            let id = id.parse::<i64>().map_err(|_| ApiError::not_found())?;
            if *method == Method::GET {
                let out = read(app).get(kind, id)?;
                app.controls.count_get(&format!("{plural}/{{id}}"));
                Ok((StatusCode::OK, out))
            } else if *method == Method::PUT && kind != Kind::Users {
                let out = write(app).update(kind, id, json_body(body)?, &now_text())?;
                webhooks::changed(app, kind, &webhooks::unwrapped(kind, &out), Change::Updated);
                Ok((StatusCode::OK, out))
            } else if *method == Method::DELETE {
                let mut store = write(app);
                let before = store.get(kind, id).ok();
                let out = store.delete(kind, id)?;
                drop(store);
                if let Some(before) = before {
                    webhooks::changed(app, kind, &webhooks::unwrapped(kind, &before), Change::Deleted);
                }
                Ok((StatusCode::OK, out))
            } else {
                Err(ApiError::not_found())
            }
        }
        _ => Err(ApiError::not_found()),
    }
}

/// `GET /me`: the token's user (sample `me.json`).
fn me(app: &App, token: &ApiToken) -> Result<(StatusCode, Value), ApiError> {
    let user = read(app).get(Kind::Users, token.user_id)?;
    let u = &user["user"];
    let crud = json!({"read": true, "write": true, "delete": true});
    let restricted = json!({"read": false, "write": false, "delete": false});
    Ok((
        StatusCode::OK,
        json!({
            "user_token": token.token,
            "user_email": u["email"],
            "user_name": u["full_name"],
            "user_id": token.user_id,
            "admin": u["admin"],
            "can_use_app": true,
            "two_factor_required": false,
            "subdomain": app.access.subdomain,
            "default_location": null,
            "enable_multi_locations": false,
            "locations_allowed": [],
            "permissions": {
                "asset": crud, "customer": if token.restricted { restricted } else { crud.clone() },
                "ticket": crud, "invoice": crud, "payment": crud,
                "worksheet": {"add": true, "manage": true, "delete": true},
                "script": {"execute": true},
            },
        }),
    ))
}

pub(crate) fn read(app: &App) -> std::sync::RwLockReadGuard<'_, Store> {
    app.store.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write(app: &App) -> std::sync::RwLockWriteGuard<'_, Store> {
    app.store.write().unwrap_or_else(|e| e.into_inner())
}

fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_body(format!("The request body is not valid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_refuses_requests_beyond_the_window_and_says_how_long_to_wait() {
        let r = RateLimit::new(Some(2));
        assert_eq!(r.admit(), Ok(()));
        assert_eq!(r.admit(), Ok(()));
        let wait = r.admit().unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(r.throttled(), 1);
        r.set_window(Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(r.admit(), Ok(()));
    }

    #[test]
    fn timestamps_carry_milliseconds() {
        assert_eq!(stamp(1_704_067_200, 53), "2024-01-01T00:00:00.053Z");
    }
}
