//! The Salesforce HTTP API on axum: `POST /services/oauth2/token`, `GET
//! /services/oauth2/userinfo`, the versions list `GET /services/data/`, and under
//! `/services/data/vXX.X/`: `query` / `queryAll` with `nextRecordsUrl` paging honouring
//! `Sforce-Query-Options: batchSize=N`, `limits`, `sobjects` (global describe),
//! `sobjects/{Object}/describe`, create, read, update, delete and upsert by external id,
//! the delete log (`sobjects/{Object}/deleted/`, `replication.rs`), and the sObject
//! Collections create and delete (`composite/sobjects`); with the bearer check, the daily
//! API allocation (`Sforce-Limit-Info`), and the run-time knobs.

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::{any, get, post};
use serde_json::{Value, json};

use super::auth::{Access, Sessions};
use super::error::{ApiError, ThrottleAnswer};
use super::replication;
use super::schema;
use super::soql;
use super::store::{Stamp, Store, Upserted};
use super::webhooks;
use crate::common::{Admission, Controls, empty_response, json_response, now_unix};
use crate::webhooks::{Change, Subscriptions};

/// The API version the versions list announces as newest; any `vNN.N` is served.
pub(crate) const API_VERSION: &str = "v62.0";
/// Default and bounds of `batchSize` (salesforce-api.md 2.3).
pub(crate) const DEFAULT_BATCH: usize = 2000;
pub(crate) const MIN_BATCH: usize = 200;
/// The daily allocation shown when none is configured (salesforce-api.md 5.4, UNCONFIRMED figure).
pub(crate) const DEFAULT_DAILY_ALLOCATION: u32 = 100_000;
/// Prefix of the locators in `nextRecordsUrl` (`01g` is the query-locator key prefix seen in the docs).
const LOCATOR_PREFIX: &str = "01gSIM";
/// The most records one sObject Collections call takes (salesforce-api.md 4.2).
const COLLECTION_MAX: usize = 200;

/// Shared state of one running simulator.
#[derive(Debug)]
pub(crate) struct App {
    pub store: RwLock<Store>,
    pub controls: Controls,
    pub access: Access,
    pub sessions: Sessions,
    pub base_url: String,
    /// Data calls counted against the daily allocation.
    pub api_usage: AtomicU64,
    /// The configured daily allocation; 0 = none (shown as [`DEFAULT_DAILY_ALLOCATION`]).
    pub daily_limit: AtomicU32,
    pub throttle_answer: Mutex<ThrottleAnswer>,
    pub subscriptions: Subscriptions,
    /// Seconds the org's clock runs off the wall clock (a test knob; 0 by default).
    pub clock_offset: AtomicI64,
}

impl App {
    /// State for a simulator reachable at `base_url`.
    pub(crate) fn new(store: Store, controls: Controls, access: Access, base_url: String) -> Self {
        Self {
            store: RwLock::new(store),
            controls,
            access,
            sessions: Sessions::default(),
            base_url,
            api_usage: AtomicU64::new(0),
            daily_limit: AtomicU32::new(0),
            throttle_answer: Mutex::new(ThrottleAnswer::default()),
            subscriptions: Subscriptions::default(),
            clock_offset: AtomicI64::new(0),
        }
    }

    /// The org's clock (Unix seconds): what writes and deletes are stamped with
    /// (`SystemModstamp`, `deletedDate`) and what the delete log's window is measured from.
    pub(crate) fn now(&self) -> i64 {
        now_unix() + self.clock_offset.load(Ordering::SeqCst)
    }

    fn allocation(&self) -> u32 {
        match self.daily_limit.load(Ordering::SeqCst) {
            0 => DEFAULT_DAILY_ALLOCATION,
            n => n,
        }
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        let used = self.api_usage.load(Ordering::SeqCst);
        vec![("sforce-limit-info", format!("api-usage={used}/{}", self.allocation()))]
    }

    pub(crate) fn read(&self) -> std::sync::RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write(&self) -> std::sync::RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// The router of the simulated API.
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/services/oauth2/token", post(token))
        .route("/services/oauth2/userinfo", get(userinfo))
        .route("/services/data", get(versions))
        .route("/services/data/", get(versions))
        .route("/services/data/{version}/{*rest}", any(api))
        .fallback(fallback)
        .with_state(app)
}

async fn fallback(State(app): State<Arc<App>>) -> Response {
    app.controls.arrive().await;
    ApiError::not_found().into_response_with(&[])
}

async fn token(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    app.controls.arrive().await;
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    match app.sessions.grant(&app.access, &form, &headers, &app.base_url, now_ms) {
        Ok(t) => json_response(StatusCode::OK, &t, &[]),
        Err(e) => {
            app.controls.count_unauthorized();
            e.into_response()
        }
    }
}

/// The OpenID Connect userinfo of the run-as user (salesforce-api.md 1.5).
async fn userinfo(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    app.controls.arrive().await;
    if let Err(e) = app.sessions.check(&headers) {
        app.controls.count_unauthorized();
        return e.into_response_with(&[]);
    }
    let user = app.read().get("User", &app.access.run_as_user_id, API_VERSION).unwrap_or(Value::Null);
    let body = json!({
        "sub": format!("{}/id/{}/{}", app.base_url, app.access.org_id, app.access.run_as_user_id),
        "user_id": app.access.run_as_user_id,
        "organization_id": app.access.org_id,
        "name": user["Name"],
        "email": user["Email"],
        "email_verified": true,
        "active": true,
        "urls": {"query": format!("{}/services/data/{{version}}/query/", app.base_url)},
    });
    json_response(StatusCode::OK, &body, &[])
}

/// The versions list. UNCONFIRMED whether it needs auth: answered without.
async fn versions(State(app): State<Arc<App>>) -> Response {
    app.controls.arrive().await;
    let body: Vec<Value> = ["59.0", "60.0", "61.0", "62.0"]
        .iter()
        .map(|v| json!({"label": "Simulated", "url": format!("/services/data/v{v}"), "version": v}))
        .collect();
    json_response(StatusCode::OK, &body, &[])
}

fn valid_version(v: &str) -> bool {
    v.strip_prefix('v').and_then(|n| n.split_once('.')).is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && a.chars().all(|c| c.is_ascii_digit()) && b.chars().all(|c| c.is_ascii_digit())
    })
}

/// One data call as the handlers see it.
struct Call<'a> {
    version: &'a str,
    rest: &'a str,
    method: &'a Method,
    headers: &'a HeaderMap,
    params: Vec<(String, String)>,
    body: &'a Bytes,
}

async fn api(
    State(app): State<Arc<App>>,
    Path((version, rest)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    app.controls.arrive().await;
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes()).into_owned().collect();
    let call = Call { version: &version, rest: &rest, method: &method, headers: &headers, params, body: &body };
    match handle(&app, &call) {
        Ok(resp) => match app.controls.lost_answer(&method, resp.status().as_u16()) {
            Some(status) => ApiError::injected(status).into_response_with(&app.headers()),
            None => resp,
        },
        Err(e) => e.into_response_with(&app.headers()),
    }
}

fn handle(app: &App, call: &Call<'_>) -> Result<Response, ApiError> {
    app.sessions.check(call.headers).inspect_err(|_| app.controls.count_unauthorized())?;
    match app.controls.admit() {
        Admission::Allowed => {}
        Admission::Throttled => {
            let answer = *app.throttle_answer.lock().unwrap_or_else(|e| e.into_inner());
            if answer == ThrottleAnswer::RequestLimitExceeded {
                app.controls.count_forbidden();
            }
            return Err(ApiError::throttled(answer));
        }
        Admission::Inject(status) => return Err(ApiError::injected(status)),
    }
    let limit = app.daily_limit.load(Ordering::SeqCst);
    if limit > 0 && app.api_usage.load(Ordering::SeqCst) >= u64::from(limit) {
        app.controls.count_forbidden();
        return Err(ApiError::daily_limit());
    }
    app.api_usage.fetch_add(1, Ordering::SeqCst);
    if !valid_version(call.version) {
        return Err(ApiError::not_found());
    }
    let segments: Vec<&str> = call.rest.split('/').filter(|s| !s.is_empty()).collect();
    let m = call.method;
    let headers = app.headers();
    let stamp = Stamp { now: app.now() };
    match segments.as_slice() {
        ["query"] | ["queryAll"] if m == Method::GET => {
            let all = segments[0] == "queryAll";
            let q = call
                .params
                .iter()
                .find(|(k, _)| k == "q")
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| ApiError::malformed_query("A query string (q) is required."))?;
            let parsed = soql::parse(q)?;
            let rows = app.read().query(&parsed, all, call.version)?;
            app.controls.count_get(segments[0]);
            Ok(first_page(app, call, segments[0], rows, &headers))
        }
        ["query", locator] | ["queryAll", locator] if m == Method::GET => {
            let (n, offset) = parse_locator(locator).ok_or_else(ApiError::invalid_locator)?;
            let loc = app.read().locator(n)?;
            app.controls.count_get("query/{locator}");
            let end = (offset + loc.batch).min(loc.rows.len());
            let records = loc.rows.get(offset..end).unwrap_or_default().to_vec();
            let mut body = json!({"totalSize": loc.rows.len(), "done": end >= loc.rows.len(), "records": records});
            if end < loc.rows.len() {
                body["nextRecordsUrl"] = Value::String(locator_url(call.version, segments[0], n, end));
            } else {
                app.write().drop_locator(n);
            }
            Ok(json_response(StatusCode::OK, &body, &headers))
        }
        ["limits"] if m == Method::GET => {
            let max = app.allocation();
            let used = app.api_usage.load(Ordering::SeqCst);
            let remaining = u64::from(max).saturating_sub(used);
            let body = json!({"DailyApiRequests": {"Max": max, "Remaining": remaining}});
            Ok(json_response(StatusCode::OK, &body, &headers))
        }
        ["sobjects"] if m == Method::GET => {
            let sobjects: Vec<Value> = schema::OBJECTS
                .iter()
                .map(|o| {
                    let base = format!("/services/data/{}/sobjects/{}", call.version, o.name);
                    // The keys of restforce's `describe_sobjects_success_response.json`.
                    let writable = o.fields.iter().any(|f| f.writable);
                    json!({"name": o.name, "label": o.label, "labelPlural": o.plural, "custom": false, "keyPrefix": o.prefix,
                        "createable": writable, "updateable": writable, "deletable": writable, "queryable": true,
                        "retrieveable": true, "replicateable": true, "searchable": true, "triggerable": true,
                        "undeletable": true, "mergeable": false, "layoutable": true, "activateable": false,
                        "customSetting": false, "deprecatedAndHidden": false, "feedEnabled": false,
                        "urls": {"sobject": base, "describe": format!("{base}/describe"), "rowTemplate": format!("{base}/{{ID}}")}})
                })
                .collect();
            Ok(json_response(
                StatusCode::OK,
                &json!({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects}),
                &headers,
            ))
        }
        ["sobjects", object, "describe"] if m == Method::GET => {
            let o = schema::object(object).ok_or_else(ApiError::not_found)?;
            app.controls.count_get(&format!("sobjects/{}/describe", o.name));
            Ok(json_response(StatusCode::OK, &schema::describe(o, call.version), &headers))
        }
        ["sobjects", object] if m == Method::POST => {
            let o = schema::object(object).ok_or_else(ApiError::not_found)?;
            let body = json_body(call.body)?;
            let id = app.write().create(o.name, &body, &stamp)?;
            webhooks::changed(app, o.name, &id, Change::Created);
            Ok(json_response(StatusCode::CREATED, &json!({"id": id, "success": true, "errors": []}), &headers))
        }
        ["composite", "sobjects"] if m == Method::POST => {
            let body = json_body(call.body)?;
            let records = body
                .get("records")
                .and_then(Value::as_array)
                .ok_or_else(|| ApiError::bad_body("records: an array of records is required"))?;
            // UNCONFIRMED: the code Salesforce gives a collection over its limit.
            if records.len() > COLLECTION_MAX {
                return Err(ApiError::bad_body(format!("records: at most {COLLECTION_MAX} records per call")));
            }
            if let Some(n) =
                records.iter().position(|r| r.pointer("/attributes/type").and_then(Value::as_str).is_none())
            {
                return Err(ApiError::bad_body(format!("records[{n}]: attributes.type is required")));
            }
            let all_or_none = body.get("allOrNone").and_then(Value::as_bool).unwrap_or(false);
            let created = app.write().create_collection(records, all_or_none, &stamp);
            for (record, result) in records.iter().zip(&created) {
                if let (Some(object), Ok(id)) = (record.pointer("/attributes/type").and_then(Value::as_str), result) {
                    webhooks::changed(app, object, id, Change::Created);
                }
            }
            let results: Vec<Value> = created
                .into_iter()
                .map(|r| match r {
                    Ok(id) => json!({"id": id, "success": true, "errors": []}),
                    Err(e) => json!({"success": false, "errors": [e.save_error()]}),
                })
                .collect();
            Ok(json_response(StatusCode::OK, &Value::Array(results), &headers))
        }
        ["composite", "sobjects"] if m == Method::DELETE => {
            let ids: Vec<&str> = call
                .params
                .iter()
                .find(|(k, _)| k == "ids")
                .map(|(_, v)| v.split(',').map(str::trim).filter(|s| !s.is_empty()).collect())
                .unwrap_or_default();
            if ids.is_empty() {
                return Err(ApiError::required_missing_message("At least 1 Id is required."));
            }
            // UNCONFIRMED, as for creates: the code Salesforce gives a collection over its limit.
            if ids.len() > COLLECTION_MAX {
                return Err(ApiError::bad_body(format!("ids: at most {COLLECTION_MAX} ids per call")));
            }
            let all_or_none = call.params.iter().any(|(k, v)| k == "allOrNone" && v.eq_ignore_ascii_case("true"));
            let deleted = app.write().delete_collection(&ids, all_or_none, &stamp);
            let results: Vec<Value> = ids
                .iter()
                .zip(deleted)
                .map(|(id, r)| match r {
                    Ok(object) => {
                        webhooks::changed(app, object, id, Change::Deleted);
                        json!({"id": id, "success": true, "errors": []})
                    }
                    Err(e) => json!({"id": id, "success": false, "errors": [e.save_error()]}),
                })
                .collect();
            Ok(json_response(StatusCode::OK, &Value::Array(results), &headers))
        }
        ["sobjects", object, "deleted"] if m == Method::GET => {
            let o = schema::object(object).ok_or_else(ApiError::not_found)?;
            app.controls.count_get(&format!("sobjects/{}/deleted", o.name));
            let body = replication::deleted(&app.read(), o.name, &call.params, app.now())?;
            Ok(json_response(StatusCode::OK, &body, &headers))
        }
        ["sobjects", object, id] => {
            let o = schema::object(object).ok_or_else(ApiError::not_found)?;
            if m == Method::DELETE {
                app.write().delete(o.name, id, &stamp)?;
                // Outbound Messages do not fire on deletes: this sends nothing (webhooks.rs).
                webhooks::changed(app, o.name, id, Change::Deleted);
                Ok(empty_response(StatusCode::NO_CONTENT, &headers))
            } else if m == Method::GET {
                app.controls.count_get(&format!("sobjects/{}/{{id}}", o.name));
                Ok(json_response(StatusCode::OK, &app.read().get(o.name, id, call.version)?, &headers))
            } else if m == Method::PATCH {
                let body = json_body(call.body)?;
                app.write().update(o.name, id, &body, &stamp)?;
                webhooks::changed(app, o.name, id, Change::Updated);
                Ok(empty_response(StatusCode::NO_CONTENT, &headers))
            } else {
                Err(ApiError::method_not_allowed(m.as_str()))
            }
        }
        ["sobjects", object, field, value] if m == Method::PATCH => {
            let o = schema::object(object).ok_or_else(ApiError::not_found)?;
            let body = json_body(call.body)?;
            let result = app.write().upsert(o.name, field, value, &body, &stamp, call.version)?;
            match &result {
                Upserted::Created(id) => webhooks::changed(app, o.name, id, Change::Created),
                Upserted::Updated(id) => webhooks::changed(app, o.name, id, Change::Updated),
                Upserted::Ambiguous(_) => {}
            }
            // UNCONFIRMED (salesforce-api.md 3.1): an update answers 200 with `created:
            // false` (newer versions) rather than 204.
            Ok(match result {
                Upserted::Created(id) => json_response(
                    StatusCode::CREATED,
                    &json!({"id": id, "success": true, "errors": [], "created": true}),
                    &headers,
                ),
                Upserted::Updated(id) => json_response(
                    StatusCode::OK,
                    &json!({"id": id, "success": true, "errors": [], "created": false}),
                    &headers,
                ),
                Upserted::Ambiguous(urls) => json_response(StatusCode::MULTIPLE_CHOICES, &urls, &headers),
            })
        }
        _ => Err(ApiError::not_found()),
    }
}

fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_body(format!("The request body is not valid JSON: {e}")))
}

/// `batchSize` from `Sforce-Query-Options`, clamped to 200..=2000 (default 2000).
pub(crate) fn batch_size(headers: &HeaderMap) -> usize {
    headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',').filter_map(|p| p.split_once('=')).find(|(k, _)| k.trim().eq_ignore_ascii_case("batchSize"))
        })
        .and_then(|(_, n)| n.trim().parse::<usize>().ok())
        .map_or(DEFAULT_BATCH, |n| n.clamp(MIN_BATCH, DEFAULT_BATCH))
}

/// The `nextRecordsUrl` of a `resource` (`query` or `queryAll`) being paged.
fn locator_url(version: &str, resource: &str, n: u64, offset: usize) -> String {
    format!("/services/data/{version}/{resource}/{LOCATOR_PREFIX}{n:09}-{offset}")
}

fn parse_locator(s: &str) -> Option<(u64, usize)> {
    let (head, offset) = s.strip_prefix(LOCATOR_PREFIX)?.split_once('-')?;
    Some((head.parse().ok()?, offset.parse().ok()?))
}

fn first_page(
    app: &App,
    call: &Call<'_>,
    resource: &str,
    rows: Vec<Value>,
    headers: &[(&'static str, String)],
) -> Response {
    let batch = batch_size(call.headers);
    let total = rows.len();
    if total <= batch {
        return json_response(StatusCode::OK, &json!({"totalSize": total, "done": true, "records": rows}), headers);
    }
    let records: Vec<Value> = rows[..batch].to_vec();
    let n = app.write().keep_locator(rows, batch);
    let body = json!({
        "totalSize": total,
        "done": false,
        "nextRecordsUrl": locator_url(call.version, resource, n, batch),
        "records": records,
    });
    json_response(StatusCode::OK, &body, headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn batch_sizes_are_read_from_the_query_options_and_clamped() {
        let mut h = HeaderMap::new();
        assert_eq!(batch_size(&h), 2000);
        h.insert("Sforce-Query-Options", HeaderValue::from_static("batchSize=500"));
        assert_eq!(batch_size(&h), 500);
        h.insert("Sforce-Query-Options", HeaderValue::from_static("batchSize=10"));
        assert_eq!(batch_size(&h), 200);
        h.insert("Sforce-Query-Options", HeaderValue::from_static("batchSize=9000"));
        assert_eq!(batch_size(&h), 2000);
    }

    #[test]
    fn locators_round_trip_through_the_next_records_url() {
        let url = locator_url("v62.0", "query", 12, 400);
        assert_eq!(url, "/services/data/v62.0/query/01gSIM000000012-400");
        assert_eq!(locator_url("v62.0", "queryAll", 12, 400), "/services/data/v62.0/queryAll/01gSIM000000012-400");
        assert_eq!(parse_locator(url.rsplit('/').next().unwrap()), Some((12, 400)));
        assert!(valid_version("v62.0") && !valid_version("62.0") && !valid_version("vx.0"));
    }
}
