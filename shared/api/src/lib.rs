//! The HTTP API as plain data: a request (method, path, query, body, tenant) in, a status
//! and JSON body out. It decodes, calls one use case and encodes; no rule lives here.
//! The local runner serves it with axum; the Lambda HTTP function (a later issue) with
//! API Gateway events.

use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

use tandem_domain::external::OptionList;
use tandem_domain::log::LogFilter;
use tandem_domain::usecases::import::{self, StageSelection};
use tandem_domain::usecases::{Services, connections, mappings};
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

/// One API answer.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
}

impl ApiResponse {
    fn ok(body: Value) -> Self {
        Self { status: 200, body }
    }
    fn error(status: u16, kind: &str, message: impl Into<String>) -> Self {
        Self { status, body: json!({ "error": { "kind": kind, "message": message.into() } }) }
    }
}

impl From<DomainError> for ApiResponse {
    fn from(e: DomainError) -> Self {
        let (status, kind) = match e.class() {
            ErrorClass::Invalid => (400, "invalid"),
            ErrorClass::NotFound => (404, "not_found"),
            ErrorClass::Refused => (409, "refused"),
            ErrorClass::Credentials => (422, "credentials"),
            ErrorClass::Unavailable => (503, "unavailable"),
            ErrorClass::Internal => (500, "internal"),
        };
        if status >= 500 {
            tracing::error!(error = %e, "request failed");
        }
        ApiResponse::error(status, kind, e.to_string())
    }
}

fn encode<T: serde::Serialize>(status: u16, v: &T) -> ApiResponse {
    match serde_json::to_value(v) {
        Ok(body) => ApiResponse { status, body },
        Err(e) => ApiResponse::error(500, "internal", format!("cannot encode the answer: {e}")),
    }
}

fn json_body(req: &ApiRequest) -> Result<Value, DomainError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Err(DomainError::invalid("the request needs a JSON body"));
    }
    serde_json::from_slice(&req.body)
        .map_err(|e| DomainError::invalid(format!("the request body is not valid JSON: {e}")))
}

#[derive(Deserialize)]
struct ImportBody {
    stages: StageSelection,
}

/// Answers one request.
pub async fn handle(svc: &Services, req: ApiRequest) -> ApiResponse {
    let Some(tenant) = req.tenant.as_deref() else {
        return ApiResponse::error(401, "unauthorized", "no tenant in the request's authorization");
    };
    let tenant = match TenantId::parse(tenant) {
        Ok(t) => t,
        Err(e) => return ApiResponse::error(401, "unauthorized", e.to_string()),
    };
    match route(svc, &tenant, &req).await {
        Ok(resp) => resp,
        Err(e) => e.into(),
    }
}

async fn route(svc: &Services, t: &TenantId, req: &ApiRequest) -> Result<ApiResponse, DomainError> {
    let segments: Vec<&str> = req.path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let method = req.method.to_ascii_uppercase();
    let system = |s: &str| s.parse::<System>();
    Ok(match (method.as_str(), segments.as_slice()) {
        ("GET", ["connections"]) => {
            let mut out = Vec::new();
            for s in System::ALL {
                if let Some(c) = svc.store.connection(t, *s).await? {
                    out.push(c);
                }
            }
            encode(200, &json!({ "connections": out }))
        }
        ("POST" | "PUT", ["connections", s]) => {
            let conn = connections::save_credentials(svc, t, system(s)?, &json_body(req)?).await?;
            encode(201, &conn)
        }
        ("GET", ["connections", s]) => encode(200, &connections::connection(svc, t, system(s)?).await?),
        ("GET", ["connections", s, "options"]) => {
            let lists: Vec<&str> = OptionList::ALL.iter().map(|l| l.as_str()).collect();
            ApiResponse::ok(json!({ "lists": lists, "system": system(s)? }))
        }
        ("GET", ["connections", s, "options", list]) => {
            let choices = connections::options(svc, t, system(s)?, OptionList::parse(list)?).await?;
            encode(200, &json!({ "list": list, "choices": choices }))
        }
        ("GET", ["connections", s, "mappings"]) => {
            let conn = connections::connection(svc, t, system(s)?).await?;
            let order: Vec<&str> = conn.system.stages().iter().map(|s| s.as_str()).collect();
            encode(200, &json!({ "order": order, "mappings": conn.mappings }))
        }
        ("PUT" | "POST", ["connections", s, "mappings", stage]) => {
            let stage: Stage = stage.parse()?;
            let conn = mappings::save_mapping(svc, t, system(s)?, stage, &json_body(req)?).await?;
            encode(200, &json!({ "mappings": conn.mappings }))
        }
        ("POST", ["connections", s, "imports"]) => {
            let body: ImportBody = serde_json::from_value(json_body(req)?)
                .map_err(|e| DomainError::invalid(format!("expected {{\"stages\": \"all\" | \"<stage>\"}}: {e}")))?;
            encode(202, &import::start_import(svc, t, system(s)?, body.stages).await?)
        }
        ("GET", ["jobs"]) => encode(200, &json!({ "jobs": svc.store.jobs(t, 100).await? })),
        ("GET", ["jobs", id]) => encode(200, &import::job(svc, t, &JobId::from_raw(*id)).await?),
        ("POST", ["jobs", id, "cancel"]) => encode(200, &import::cancel(svc, t, &JobId::from_raw(*id)).await?),
        ("POST", ["jobs", id, "resume"]) => encode(200, &import::resume(svc, t, &JobId::from_raw(*id)).await?),
        ("GET", ["records", kind]) => {
            let kind: RecordKind = kind.parse()?;
            let limit = match req.query.get("limit") {
                Some(l) => {
                    l.parse::<usize>().map_err(|_| DomainError::invalid(format!("limit {l:?} is not a number")))?
                }
                None => 100,
            };
            let (records, next) = svc.store.records(t, kind, req.query.get("after").cloned(), limit).await?;
            encode(200, &json!({ "records": records, "next": next }))
        }
        ("GET", ["records", kind, id]) => {
            let kind: RecordKind = kind.parse()?;
            let record = svc
                .store
                .record(t, kind, &RecordId::from_raw(*id))
                .await?
                .ok_or_else(|| DomainError::not_found(format!("no {kind} {id}")))?;
            encode(200, &record)
        }
        ("GET", ["logs"]) => {
            let filter = log_filter(&req.query)?;
            encode(200, &json!({ "entries": svc.store.logs(t, &filter, svc.clock.now()).await? }))
        }
        (_, _) => ApiResponse::error(404, "not_found", format!("no route {method} {}", req.path)),
    })
}

fn log_filter(q: &BTreeMap<String, String>) -> Result<LogFilter, DomainError> {
    let time = |k: &str| q.get(k).map(|v| Timestamp::parse(v)).transpose();
    Ok(LogFilter {
        outcome: q.get("outcome").cloned(),
        system: q.get("system").map(|s| s.parse()).transpose()?,
        object: q.get("object").map(|s| s.parse()).transpose()?,
        job_id: q.get("job").map(JobId::from_raw),
        since: time("since")?,
        until: time("until")?,
        limit: q
            .get("limit")
            .map(|l| l.parse::<usize>().map_err(|_| DomainError::invalid(format!("limit {l:?} is not a number"))))
            .transpose()?,
    })
}
