//! The HTTP API as plain data: a request (method, path, query, body, tenant) in, a status,
//! JSON body and headers out. It decodes, calls one use case and encodes; no rule lives
//! here. The local runner serves it with hyper, the Lambda HTTP functions with API
//! Gateway events.
//!
//! Bad input never reaches a use case half-checked: the tenant is checked first (401),
//! then the path (404) and the method (405 with `Allow`), then the query parameters (an
//! unknown one is a 400 naming it) and the body (an unknown field is a 400 naming it,
//! before anything else about it is checked).

pub mod openapi;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::BTreeMap;

use tandem_domain::external::OptionList;
use tandem_domain::log::LogFilter;
use tandem_domain::usecases::import::{self, StageSelection};
use tandem_domain::usecases::{
    Services, connections, crm, dead_letters, export, field_map, health, mappings, preview, retry, selective_sync,
    snapshots, sweep, sync_in, usage,
};
use tandem_domain::webhook::WebhookCall;
use tandem_domain::{DomainError, ErrorClass, JobId, RecordId, RecordKind, Stage, System, TenantId, Timestamp};

/// One API request, already taken off the transport.
#[derive(Clone, Debug, Default)]
pub struct ApiRequest {
    pub method: String,
    /// The path without the query string, e.g. `/connections/connectwise`.
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// The caller's tenant, from the authorizer; `None` is refused with 401.
    pub tenant: Option<String>,
}

/// One API answer: a status, a JSON body and any extra headers (e.g. `Allow` on a 405).
#[derive(Clone, Debug, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
    /// Headers besides `content-type: application/json`, as (name, value).
    pub headers: Vec<(&'static str, String)>,
    /// A body that is not JSON (content type, text), sent instead of `body`: the answer a
    /// webhook sender expects in its own format.
    pub raw: Option<(&'static str, String)>,
}

impl ApiResponse {
    /// An answer with `status` and `body` and no extra header.
    pub fn new(status: u16, body: Value) -> Self {
        Self { status, body, headers: Vec::new(), raw: None }
    }
    /// An error answer: `{"error": {"kind", "message"}}`.
    pub fn error(status: u16, kind: &str, message: impl Into<String>) -> Self {
        Self::new(status, json!({ "error": { "kind": kind, "message": message.into() } }))
    }
}

impl From<DomainError> for ApiResponse {
    fn from(e: DomainError) -> Self {
        // A system's rate limit or the connection's API budget used up: 429, with when to
        // come back (the message names the time).
        if let DomainError::Connector(c) = &e
            && c.kind == tandem_domain::ports::ErrorKind::RateLimited
        {
            let mut resp = ApiResponse::error(429, "rate_limited", e.to_string());
            if let Some(wait) = c.retry_after {
                resp.headers.push(("retry-after", wait.as_secs().max(1).to_string()));
            }
            return resp;
        }
        let (status, kind) = match e.class() {
            ErrorClass::Invalid => (400, "invalid"),
            ErrorClass::NotFound => (404, "not_found"),
            ErrorClass::Refused => (409, "refused"),
            ErrorClass::Credentials => (422, "credentials"),
            ErrorClass::Unavailable => (503, "unavailable"),
            ErrorClass::Internal => (500, "internal"),
            ErrorClass::Unauthenticated => (401, "unauthenticated"),
            ErrorClass::Unprocessable => (422, "unprocessable"),
        };
        if status >= 500 {
            tracing::error!(error = %e, "request failed");
        }
        ApiResponse::error(status, kind, e.to_string())
    }
}

fn encode<T: serde::Serialize>(status: u16, v: &T) -> ApiResponse {
    match serde_json::to_value(v) {
        Ok(body) => ApiResponse::new(status, body),
        Err(e) => ApiResponse::error(500, "internal", format!("cannot encode the answer: {e}")),
    }
}

/// `POST /snapshots`'s optional body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotRequest {
    /// Why it is taken, in the caller's words (at most 200 characters).
    #[serde(default)]
    note: Option<String>,
}

/// The body as JSON; an empty body is a 400.
fn json_body(req: &ApiRequest) -> Result<Value, DomainError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Err(DomainError::invalid("the request needs a JSON body"));
    }
    serde_json::from_slice(&req.body)
        .map_err(|e| DomainError::invalid(format!("the request body is not valid JSON: {e}")))
}

/// The body decoded as `T` (whose fields are closed: unknown fields are refused by name).
fn typed_body<T: DeserializeOwned>(req: &ApiRequest, expected: &str) -> Result<T, DomainError> {
    serde_json::from_value(json_body(req)?)
        .map_err(|e| DomainError::invalid(format!("{e}; expected a body like {expected}")))
}

/// `POST /connections/{system}/imports`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    stages: StageSelection,
    /// A preview: what the import would do, writing nothing of the tenant's.
    #[serde(default)]
    dry_run: bool,
}

/// Every route the API answers, as (method, path template): what the SAM template's
/// HttpApi events must hold (checked by `tests/tests/e2e/template.rs`), and what a unit test
/// below checks each resolves to a route taking that method.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/connections"),
    ("GET", "/connections/{system}"),
    ("POST", "/connections/{system}"),
    ("PUT", "/connections/{system}"),
    ("GET", "/connections/{system}/options"),
    ("GET", "/connections/{system}/options/{list}"),
    ("GET", "/connections/{system}/mappings"),
    ("PUT", "/connections/{system}/mappings/{stage}"),
    ("POST", "/connections/{system}/mappings/{stage}"),
    ("POST", "/connections/{system}/imports"),
    ("GET", "/connections/{system}/settings"),
    ("PUT", "/connections/{system}/settings"),
    ("GET", "/connections/salesforce/field-map"),
    ("PUT", "/connections/salesforce/field-map"),
    ("POST", "/connections/salesforce/field-map/import"),
    ("GET", "/connections/salesforce/selective-sync"),
    ("PUT", "/connections/salesforce/selective-sync"),
    ("POST", "/connections/{system}/exports"),
    ("GET", "/exports/{id}"),
    ("GET", "/jobs"),
    ("GET", "/jobs/{id}"),
    ("POST", "/jobs/{id}/cancel"),
    ("POST", "/jobs/{id}/resume"),
    ("GET", "/records/{kind}"),
    ("POST", "/records/{kind}"),
    ("GET", "/records/{kind}/{id}"),
    ("PATCH", "/records/{kind}/{id}"),
    ("DELETE", "/records/{kind}/{id}"),
    ("GET", "/logs"),
    ("GET", "/logs/{id}"),
    ("POST", "/logs/{id}/retry"),
    ("GET", "/connections/{system}/health"),
    ("POST", "/connections/{system}/sync/poll"),
    ("POST", "/connections/{system}/sync/sweep"),
    ("GET", openapi::PATH),
    ("GET", "/snapshots"),
    ("POST", "/snapshots"),
    ("POST", "/snapshots/{id}/restore"),
    ("GET", "/previews"),
    ("GET", "/previews/{id}"),
    ("GET", "/dead-letters"),
    ("POST", "/dead-letters/{id}/redrive"),
];

/// The webhook intake's route: no tenant authorizer (a webhook call proves itself per
/// system, [`handle_webhook`]).
pub const WEBHOOK_ROUTE: (&str, &str) = ("POST", "/webhooks/{system}/{key}");

/// What a path names; each route lists the methods and query parameters it takes.
#[derive(Clone, Copy, Debug)]
enum Route<'a> {
    Connections,
    Connection(&'a str),
    OptionLists(&'a str),
    Options(&'a str, &'a str),
    Mappings(&'a str),
    Mapping(&'a str, &'a str),
    Imports(&'a str),
    Settings(&'a str),
    FieldMap,
    FieldImport,
    SelectiveSync,
    Exports(&'a str),
    Export(&'a str),
    Jobs,
    Job(&'a str),
    JobCancel(&'a str),
    JobResume(&'a str),
    Records(&'a str),
    Record(&'a str, &'a str),
    Logs,
    Log(&'a str),
    LogRetry(&'a str),
    Health(&'a str),
    SyncPoll(&'a str),
    SyncSweep(&'a str),
    OpenApi,
    Snapshots,
    SnapshotRestore(&'a str),
    Previews,
    Preview(&'a str),
    DeadLetters,
    DeadLetterRedrive(&'a str),
}

impl<'a> Route<'a> {
    fn resolve(segments: &[&'a str]) -> Option<Self> {
        Some(match segments {
            ["connections"] => Route::Connections,
            ["connections", s] => Route::Connection(s),
            ["connections", s, "options"] => Route::OptionLists(s),
            ["connections", s, "options", list] => Route::Options(s, list),
            ["connections", s, "mappings"] => Route::Mappings(s),
            ["connections", s, "mappings", stage] => Route::Mapping(s, stage),
            ["connections", s, "imports"] => Route::Imports(s),
            ["connections", s, "settings"] => Route::Settings(s),
            ["connections", "salesforce", "field-map"] => Route::FieldMap,
            ["connections", "salesforce", "field-map", "import"] => Route::FieldImport,
            ["connections", "salesforce", "selective-sync"] => Route::SelectiveSync,
            ["connections", s, "exports"] => Route::Exports(s),
            ["exports", id] => Route::Export(id),
            ["jobs"] => Route::Jobs,
            ["jobs", id] => Route::Job(id),
            ["jobs", id, "cancel"] => Route::JobCancel(id),
            ["jobs", id, "resume"] => Route::JobResume(id),
            ["records", kind] => Route::Records(kind),
            ["records", kind, id] => Route::Record(kind, id),
            ["logs"] => Route::Logs,
            ["logs", id] => Route::Log(id),
            ["logs", id, "retry"] => Route::LogRetry(id),
            ["connections", s, "health"] => Route::Health(s),
            ["connections", s, "sync", "poll"] => Route::SyncPoll(s),
            ["connections", s, "sync", "sweep"] => Route::SyncSweep(s),
            ["openapi.json"] => Route::OpenApi,
            ["snapshots"] => Route::Snapshots,
            ["snapshots", id, "restore"] => Route::SnapshotRestore(id),
            ["previews"] => Route::Previews,
            ["previews", id] => Route::Preview(id),
            ["dead-letters"] => Route::DeadLetters,
            ["dead-letters", id, "redrive"] => Route::DeadLetterRedrive(id),
            _ => return None,
        })
    }

    /// The methods the route answers.
    fn methods(self) -> &'static [&'static str] {
        match self {
            Route::Connection(_) => &["GET", "POST", "PUT"],
            Route::Mapping(..) => &["PUT", "POST"],
            Route::Imports(_)
            | Route::Exports(_)
            | Route::JobCancel(_)
            | Route::JobResume(_)
            | Route::SyncPoll(_)
            | Route::SyncSweep(_)
            | Route::FieldImport
            | Route::LogRetry(_)
            | Route::DeadLetterRedrive(_)
            | Route::SnapshotRestore(_) => &["POST"],
            Route::Snapshots => &["GET", "POST"],
            Route::Settings(_) | Route::FieldMap | Route::SelectiveSync => &["GET", "PUT"],
            Route::Records(_) => &["GET", "POST"],
            Route::Record(..) => &["GET", "PATCH", "DELETE"],
            _ => &["GET"],
        }
    }

    /// The query parameters the route takes.
    fn query_keys(self) -> &'static [&'static str] {
        match self {
            Route::Records(_) => &["after", "limit"],
            Route::Logs => &["outcome", "system", "object", "job", "since", "until", "limit"],
            Route::Preview(_) => &["outcome", "object", "limit"],
            Route::FieldMap => &["target"],
            Route::DeadLetters => &["limit", "token"],
            _ => &[],
        }
    }
}

/// Answers one webhook call (`POST /webhooks/{system}/{key}`, [`WEBHOOK_ROUTE`]): no
/// tenant authorizer; the call is routed by its key and proves itself per system
/// ([`sync_in::intake`]). 200 `{"queued", "replay", "ignored"}` once accepted; 401 naming
/// what failed; 400 for a proven call whose body cannot be read; 404 for another path.
pub async fn handle_webhook(svc: &Services, method: &str, path: &str, call: WebhookCall) -> ApiResponse {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let ["webhooks", system, key] = segments.as_slice() else {
        return ApiResponse::error(404, "not_found", format!("no route {path}"));
    };
    if !method.eq_ignore_ascii_case("POST") {
        let mut resp = ApiResponse::error(405, "method_not_allowed", format!("{path} takes POST only"));
        resp.headers.push(("allow", "POST".into()));
        return resp;
    }
    let system: System = match system.parse() {
        Ok(s) => s,
        Err(e) => return e.into(),
    };
    let scoped = usage::scoped(svc);
    let intake = sync_in::intake(&scoped, system, key, &call).await;
    usage::record(&scoped).await;
    match intake {
        Ok(intake) => {
            let mut resp = encode(200, &intake);
            resp.raw = intake.answer;
            resp
        }
        Err(e) => e.into(),
    }
}

/// Whether `path` is the webhook intake's (answered by [`handle_webhook`], not [`handle`]).
pub fn is_webhook_path(path: &str) -> bool {
    path.trim_start_matches('/').starts_with("webhooks/")
}

/// Answers one request.
pub async fn handle(svc: &Services, req: ApiRequest) -> ApiResponse {
    if openapi::is_document_request(&req.method, &req.path) && req.query.is_empty() {
        return ApiResponse::new(200, openapi::document_json());
    }
    let Some(tenant) = req.tenant.as_deref() else {
        return ApiResponse::error(401, "unauthorized", "no tenant in the request's authorization");
    };
    let tenant = match TenantId::parse(tenant) {
        Ok(t) => t,
        Err(e) => return ApiResponse::error(401, "unauthorized", e.to_string()),
    };
    let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    let Some(route) = Route::resolve(&segments) else {
        return ApiResponse::error(404, "not_found", format!("no route {}", req.path));
    };
    let method = req.method.to_ascii_uppercase();
    let allowed = route.methods();
    if !allowed.contains(&method.as_str()) {
        let mut resp = ApiResponse::error(
            405,
            "method_not_allowed",
            format!("{} does not take {method}; it takes {}", req.path, allowed.join(", ")),
        );
        resp.headers.push(("allow", allowed.join(", ")));
        return resp;
    }
    let unknown: Vec<&str> = req.query.keys().map(String::as_str).filter(|k| !route.query_keys().contains(k)).collect();
    if !unknown.is_empty() {
        let takes = match route.query_keys() {
            [] => "no query parameters".to_string(),
            keys => keys.join(", "),
        };
        return ApiResponse::error(
            400,
            "invalid",
            format!("unknown query parameter(s) {}; {} takes {takes}", unknown.join(", "), req.path),
        );
    }
    // The calls a route makes to a system count against its connection's API budget.
    let scoped = usage::scoped(svc);
    let answered = answer(&scoped, &tenant, route, &method, &req).await;
    usage::record(&scoped).await;
    match answered {
        Ok(resp) => resp,
        Err(e) => e.into(),
    }
}

fn system(s: &str) -> Result<System, DomainError> {
    s.parse()
}

fn limit(q: &BTreeMap<String, String>) -> Result<Option<usize>, DomainError> {
    q.get("limit")
        .map(|l| {
            l.parse::<usize>().map_err(|_| DomainError::invalid(format!("limit {l:?} is not a whole number (1-1000)")))
        })
        .transpose()
}

async fn answer(
    svc: &Services,
    t: &TenantId,
    route: Route<'_>,
    method: &str,
    req: &ApiRequest,
) -> Result<ApiResponse, DomainError> {
    Ok(match route {
        Route::Connections => {
            let mut out = Vec::new();
            for s in System::ALL {
                if let Some(c) = svc.store.connection(t, *s).await? {
                    out.push(c);
                }
            }
            encode(200, &json!({ "connections": out }))
        }
        Route::Connection(s) if method == "GET" => encode(200, &connections::connection(svc, t, system(s)?).await?),
        Route::Connection(s) => {
            let system = system(s)?;
            let conn = connections::save_credentials(svc, t, system, &json_body(req)?).await?;
            encode(201, &conn)
        }
        Route::OptionLists(s) => {
            let lists: Vec<&str> = OptionList::ALL.iter().map(|l| l.as_str()).collect();
            encode(200, &json!({ "lists": lists, "system": system(s)? }))
        }
        Route::Options(s, list) => {
            let system = system(s)?;
            let choices = connections::options(svc, t, system, OptionList::parse(list)?).await?;
            encode(200, &json!({ "list": list, "choices": choices }))
        }
        Route::Mappings(s) => {
            let conn = connections::connection(svc, t, system(s)?).await?;
            let order: Vec<&str> = conn.system.stages().iter().map(|s| s.as_str()).collect();
            encode(200, &json!({ "order": order, "mappings": conn.mappings }))
        }
        Route::Mapping(s, stage) => {
            let system = system(s)?;
            let stage: Stage = stage.parse()?;
            let conn = mappings::save_mapping(svc, t, system, stage, &json_body(req)?).await?;
            encode(200, &json!({ "mappings": conn.mappings }))
        }
        Route::Imports(s) => {
            let system = system(s)?;
            let body: ImportBody = typed_body(req, r#"{"stages": "all" | "<stage>", "dry_run": false}"#)?;
            match body.dry_run {
                true => encode(202, &preview::start_preview(svc, t, system, body.stages).await?),
                false => encode(202, &import::start_import(svc, t, system, body.stages).await?),
            }
        }
        Route::Jobs => encode(200, &json!({ "jobs": import::jobs(svc, t, 100).await? })),
        Route::Job(id) => encode(200, &import::job_view(svc, t, &JobId::from_raw(id)).await?),
        Route::JobCancel(id) => encode(200, &import::cancel(svc, t, &JobId::from_raw(id)).await?),
        Route::JobResume(id) => encode(200, &import::resume(svc, t, &JobId::from_raw(id)).await?),
        Route::Exports(s) => {
            let started = export::start(svc, t, system(s)?, &json_body(req)?).await?;
            encode(202, &json!({ "id": started.id, "status": started.status }))
        }
        Route::Export(id) => encode(200, &export::export_view(svc, t, &JobId::from_raw(id)).await?),
        Route::SyncPoll(s) => encode(202, &sync_in::start_poll(svc, t, system(s)?).await?),
        Route::SyncSweep(s) => {
            let body = match req.body.iter().all(u8::is_ascii_whitespace) {
                true => sweep::SweepRequest::default(),
                false => typed_body(req, r#"{"confirm_deletes": true}"#)?,
            };
            encode(202, &json!({ "stages": sweep::start_sweep(svc, t, system(s)?, &body).await? }))
        }
        Route::Settings(s) if method == "GET" => encode(200, &connections::settings_view(svc, t, system(s)?).await?),
        Route::Settings(s) => encode(200, &connections::save_settings(svc, t, system(s)?, &json_body(req)?).await?),
        Route::FieldMap if method == "GET" => {
            let target =
                match req.query.get("target") {
                    Some(t) => Some(serde_json::from_value(json!(t)).map_err(|_| {
                        DomainError::invalid(format!("target {t:?} is neither \"lead\" nor \"account\""))
                    })?),
                    None => None,
                };
            encode(200, &field_map::get(svc, t, target).await?)
        }
        Route::FieldMap => encode(200, &field_map::save(svc, t, &json_body(req)?).await?),
        Route::FieldImport => encode(202, &sync_in::start_field_import(svc, t).await?),
        Route::SelectiveSync if method == "GET" => {
            encode(200, &json!({ "selective_sync": selective_sync::get(svc, t).await? }))
        }
        Route::SelectiveSync => {
            encode(200, &json!({ "selective_sync": selective_sync::save(svc, t, &json_body(req)?).await? }))
        }
        Route::Records(kind) if method == "POST" => {
            let record = crm::create(svc, t, kind.parse()?, &json_body(req)?).await?;
            encode(201, &json!({ "id": record.id(), "record": record }))
        }
        Route::Record(kind, id) if method == "PATCH" => {
            encode(200, &crm::update(svc, t, kind.parse()?, &RecordId::from_raw(id), &json_body(req)?).await?)
        }
        Route::Record(kind, id) if method == "DELETE" => {
            crm::delete(svc, t, kind.parse()?, &RecordId::from_raw(id)).await?;
            encode(200, &json!({ "deleted": { "kind": kind, "id": id } }))
        }
        Route::Records(kind) => {
            let kind: RecordKind = kind.parse()?;
            let limit = limit(&req.query)?.unwrap_or(100);
            let page = svc.store.records(t, kind, req.query.get("after").cloned(), limit).await?;
            let unreadable = page.unreadable.len();
            encode(
                200,
                &json!({ "records": page.records, "next": page.next,
                         "unreadable": { "count": unreadable, "ids": page.unreadable } }),
            )
        }
        Route::Record(kind, id) => {
            let kind: RecordKind = kind.parse()?;
            let record = svc
                .store
                .record(t, kind, &RecordId::from_raw(id))
                .await?
                .ok_or_else(|| DomainError::not_found(format!("no {kind} {id}")))?;
            encode(200, &record)
        }
        Route::OpenApi => ApiResponse::new(200, openapi::document_json()),
        Route::Snapshots if method == "GET" => encode(200, &json!({ "snapshots": snapshots::list(svc, t).await? })),
        Route::Snapshots => {
            let body: SnapshotRequest = match req.body.iter().all(u8::is_ascii_whitespace) {
                true => SnapshotRequest::default(),
                false => typed_body(req, r#"{"note": "before the spring clean-up"} (or no body)"#)?,
            };
            if body.note.as_ref().is_some_and(|n| n.chars().count() > 200) {
                return Err(DomainError::invalid("note: at most 200 characters"));
            }
            let why = snapshots::Why::OnDemand { note: body.note };
            encode(201, &snapshots::take(svc, t, why).await?)
        }
        Route::SnapshotRestore(id) => encode(200, &snapshots::restore(svc, t, id).await?),
        Route::Previews => encode(200, &json!({ "previews": preview::list(svc, t).await? })),
        Route::Preview(id) => {
            encode(200, &preview::report(svc, t, &JobId::from_raw(id), &log_filter(&req.query)?).await?)
        }
        Route::Logs => {
            let filter = log_filter(&req.query)?;
            encode(200, &json!({ "entries": svc.store.logs(t, &filter, svc.clock.now()).await? }))
        }
        Route::Log(id) => {
            let id = log_id(id)?;
            match svc.store.logs_by_id(t, std::slice::from_ref(&id)).await?.remove(&id) {
                Some(entry) => encode(200, &entry),
                None => return Err(DomainError::not_found(format!("no log entry {id:?}"))),
            }
        }
        Route::LogRetry(id) => encode(202, &retry::retry(svc, t, &log_id(id)?).await?),
        Route::Health(s) => encode(200, &health::health(svc, t, system(s)?).await?),
        Route::DeadLetters => {
            encode(200, &dead_letters::list(svc, t, limit(&req.query)?, req.query.get("token").cloned()).await?)
        }
        Route::DeadLetterRedrive(id) => encode(202, &dead_letters::redrive(svc, t, id).await?),
    })
}

/// A log id from its path segment, percent-escapes decoded (as failure events' links
/// write it); a malformed escape names no entry.
fn log_id(segment: &str) -> Result<String, DomainError> {
    tandem_domain::events::decode_segment(segment)
        .ok_or_else(|| DomainError::not_found(format!("no log entry {segment:?} (a malformed %-escape)")))
}

fn log_filter(q: &BTreeMap<String, String>) -> Result<LogFilter, DomainError> {
    let time = |k: &str| {
        q.get(k)
            .map(|v| {
                Timestamp::parse(v).map_err(|_| {
                    DomainError::invalid(format!("{k} {v:?} is not an RFC 3339 time such as 2026-01-31T09:00:00Z"))
                })
            })
            .transpose()
    };
    let filter = LogFilter {
        outcome: q.get("outcome").cloned(),
        system: q.get("system").map(|s| s.parse()).transpose()?,
        object: q.get("object").map(|s| s.parse()).transpose()?,
        job_id: q.get("job").map(JobId::from_raw),
        since: time("since")?,
        until: time("until")?,
        limit: limit(q)?,
    };
    filter.validate()?;
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A path of the template with each `{param}` filled in.
    fn filled(template: &str) -> Vec<&str> {
        template.split('/').filter(|s| !s.is_empty()).map(|s| if s.starts_with('{') { "x" } else { s }).collect()
    }

    #[test]
    fn every_listed_route_resolves_and_takes_its_method() {
        for (method, path) in ROUTES {
            let segments = filled(path);
            let route = Route::resolve(&segments).unwrap_or_else(|| panic!("{path} does not resolve"));
            assert!(route.methods().contains(method), "{method} {path}: the route takes {:?}", route.methods());
        }
    }

    #[test]
    fn every_method_a_route_takes_is_listed() {
        let mut paths: Vec<&str> = ROUTES.iter().map(|(_, p)| *p).collect();
        paths.dedup();
        for path in paths {
            let segments = filled(path);
            let route = Route::resolve(&segments).unwrap_or_else(|| panic!("{path} does not resolve"));
            for method in route.methods() {
                assert!(ROUTES.contains(&(method, path)), "{method} {path} is answered but not listed in ROUTES");
            }
        }
    }
}
