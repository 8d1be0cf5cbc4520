//! The ConnectWise HTTP API on axum: `/login/companyinfo/{company}`, and under
//! `/{codebase}/apis/3.0/` the system info, the collections (list, count, get, create,
//! replace, patch, delete, search), opportunity forecasts and their items (read, add,
//! replace, patch, delete), and the setup lists, with
//! authentication, the run-time knobs and RFC 5988 `Link` paging headers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::{any, get};
use serde_json::{Value, json};

use super::auth::{Access, authenticate};
use super::error::ApiError;
use super::query::{param, parse_fields, parse_list_query};
use super::store::{OPPORTUNITIES, Spec, Stamp, Store, route};
use super::webhooks::{self, Callbacks, KEY_PATH};
use crate::common::{Admission, Controls, empty_response, format_unix, json_response, now_unix, raw_json_response};
use crate::webhooks::{Change, Origin};

/// The codebase `companyinfo` announces; any codebase segment is accepted in API paths.
pub(crate) const CODEBASE: &str = "v4_6_release/";
/// API version announced in `api-current-version`.
const API_VERSION: &str = "2025.8";

/// Shared state of one running simulator.
#[derive(Debug)]
pub(crate) struct App {
    pub store: RwLock<Store>,
    pub controls: Controls,
    pub access: Access,
    pub base_url: String,
    pub callbacks: Callbacks,
    request_seq: AtomicU64,
}

impl App {
    /// State for a simulator reachable at `base_url`.
    pub(crate) fn new(store: Store, controls: Controls, access: Access, base_url: String) -> Self {
        Self {
            store: RwLock::new(store),
            controls,
            access,
            base_url,
            callbacks: Callbacks::default(),
            request_seq: AtomicU64::new(0),
        }
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed) + 1;
        vec![
            ("api-current-version", API_VERSION.to_string()),
            ("x-server-name", "tandem-sim".to_string()),
            ("x-cw-request-id", format!("sim-{n:08}")),
        ]
    }
}

/// The router of the simulated API.
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/login/companyinfo/{company}", get(company_info))
        .route(&format!("/{{codebase}}/{KEY_PATH}"), get(webhooks::signing_key))
        .route("/{codebase}/apis/3.0/{*rest}", any(api))
        .fallback(fallback)
        .with_state(app)
}

async fn fallback(State(app): State<Arc<App>>) -> Response {
    app.controls.arrive().await;
    ApiError::no_endpoint().into_response_with(&app.headers())
}

/// Codebase discovery, no authentication. UNCONFIRMED: the answer for an unknown company
/// is assumed to be 404 `{"code":"NotFound","message":"Company not found"}`.
async fn company_info(State(app): State<Arc<App>>, Path(company): Path<String>) -> Response {
    app.controls.arrive().await;
    let headers = app.headers();
    if !company.eq_ignore_ascii_case(&app.access.company_id) {
        let body = json!({"code": "NotFound", "message": "Company not found"});
        return json_response(StatusCode::NOT_FOUND, &body, &headers);
    }
    let site = app.base_url.trim_start_matches("http://").trim_start_matches("https://").to_string();
    let body = json!({
        "CompanyName": app.access.company_name,
        "Codebase": CODEBASE,
        "VersionCode": "v2025.1",
        "VersionNumber": "v2025.1.0",
        "CompanyID": company,
        "IsCloud": true,
        "SiteUrl": site,
    });
    json_response(StatusCode::OK, &body, &headers)
}

/// One API request as the handlers see it.
struct Call<'a> {
    codebase: &'a str,
    rest: &'a str,
    method: &'a Method,
    headers: &'a HeaderMap,
    params: Vec<(String, String)>,
    body: &'a Bytes,
}

async fn api(
    State(app): State<Arc<App>>,
    Path((codebase, rest)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    app.controls.arrive().await;
    let resp_headers = app.headers();
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes()).into_owned().collect();
    let call = Call { codebase: &codebase, rest: &rest, method: &method, headers: &headers, params, body: &body };
    match handle(&app, &call, &resp_headers) {
        Ok(resp) => match app.controls.lost_answer(&method, resp.status().as_u16()) {
            Some(status) => ApiError::injected(status).into_response_with(&resp_headers),
            None => resp,
        },
        Err(e) => e.into_response_with(&resp_headers),
    }
}

fn module(first: &str) -> &'static str {
    match first {
        "company" => "Companies",
        "sales" => "Sales",
        "procurement" => "Procurement",
        "system" => "System",
        _ => "requested",
    }
}

fn handle(app: &App, call: &Call<'_>, headers: &[(&'static str, String)]) -> Result<Response, ApiError> {
    let member = authenticate(&app.access, call.headers).inspect_err(|_| app.controls.count_unauthorized())?;
    match app.controls.admit() {
        Admission::Allowed => {}
        Admission::Throttled => return Err(ApiError::too_many_requests()),
        Admission::Inject(status) => return Err(ApiError::injected(status)),
    }
    let segments: Vec<&str> = call.rest.split('/').filter(|s| !s.is_empty()).collect();
    if segments == ["system", "info"] {
        if call.method != Method::GET {
            return Err(ApiError::method_not_allowed(call.method.as_str()));
        }
        app.controls.count_get("system/info");
        let body = json!({
            "version": "v2025.1.12345",
            "isCloud": true,
            "serverTimeZone": "Eastern Standard Time",
            "cloudRegion": "NA",
            "licenseBits": [],
        });
        return Ok(json_response(StatusCode::OK, &body, headers));
    }
    if member.restricted {
        app.controls.count_forbidden();
        return Err(ApiError::forbidden(module(segments.first().copied().unwrap_or_default())));
    }
    if let ["system", "callbacks", tail @ ..] = segments.as_slice() {
        return webhooks::handle(app, member, call.method, tail, call.body, headers);
    }
    let (spec, tail) = route(&segments).ok_or_else(ApiError::no_endpoint)?;
    let origin = Origin::Api(member.identifier.clone());
    let stamp = Stamp { now: format_unix(now_unix()), by: member.identifier.clone() };
    let m = call.method;
    match tail {
        [] if m == Method::GET => list(app, call, spec, headers),
        [] if m == Method::POST => {
            writable(spec, m)?;
            let body = json_body(call.body)?;
            let rec = write(app).create(spec.path, body, &stamp)?;
            let id = rec.get("id").and_then(Value::as_i64).unwrap_or_default();
            webhooks::changed(app, spec.path, id, Change::Created, Some(&rec), &origin);
            Ok(json_response(StatusCode::CREATED, &rec, headers))
        }
        ["count"] if m == Method::GET => {
            let q = parse_list_query(&call.params)?;
            let n = read(app).count(spec.path, &q)?;
            app.controls.count_get(&format!("{}/count", spec.path));
            Ok(json_response(StatusCode::OK, &json!({"count": n}), headers))
        }
        ["search"] if m == Method::POST => search(app, call, spec, headers),
        [] | ["count"] | ["search"] => Err(ApiError::method_not_allowed(m.as_str())),
        [id] => {
            let id = id.parse::<i64>().map_err(|_| ApiError::no_endpoint())?;
            if *m == Method::GET {
                let fields = param(&call.params, "fields").map(parse_fields);
                let rec = read(app).get(spec.path, id, fields.as_deref())?;
                app.controls.count_get(&format!("{}/{{id}}", spec.path));
                Ok(json_response(StatusCode::OK, &rec, headers))
            } else if *m == Method::PUT {
                writable(spec, m)?;
                let body = json_body(call.body)?;
                let rec = write(app).replace(spec.path, id, body, &stamp)?;
                webhooks::changed(app, spec.path, id, Change::Updated, Some(&rec), &origin);
                Ok(json_response(StatusCode::OK, &rec, headers))
            } else if *m == Method::PATCH {
                writable(spec, m)?;
                let body = json_body(call.body)?;
                let rec = write(app).patch(spec.path, id, body, &stamp)?;
                webhooks::changed(app, spec.path, id, Change::Updated, Some(&rec), &origin);
                Ok(json_response(StatusCode::OK, &rec, headers))
            } else if *m == Method::DELETE {
                writable(spec, m)?;
                write(app).delete(spec.path, id)?;
                webhooks::changed(app, spec.path, id, Change::Deleted, None, &origin);
                Ok(empty_response(StatusCode::NO_CONTENT, headers))
            } else {
                Err(ApiError::method_not_allowed(m.as_str()))
            }
        }
        [id, "forecast"] if spec.path == OPPORTUNITIES && m == Method::POST => {
            let id = id.parse::<i64>().map_err(|_| ApiError::no_endpoint())?;
            let item = write(app).add_forecast_item(id, json_body(call.body)?)?;
            Ok(json_response(StatusCode::CREATED, &item, headers))
        }
        [id, "forecast"] if spec.path == OPPORTUNITIES => {
            if m != Method::GET {
                return Err(ApiError::method_not_allowed(m.as_str()));
            }
            let id = id.parse::<i64>().map_err(|_| ApiError::no_endpoint())?;
            let body = read(app).forecast(id)?;
            app.controls.count_get(&format!("{OPPORTUNITIES}/{{id}}/forecast"));
            Ok(json_response(StatusCode::OK, &body, headers))
        }
        [id, "forecast", item] if spec.path == OPPORTUNITIES => {
            let id = id.parse::<i64>().map_err(|_| ApiError::no_endpoint())?;
            let item = item.parse::<i64>().map_err(|_| ApiError::no_endpoint())?;
            if *m == Method::GET {
                let body = read(app).forecast_item(id, item)?;
                app.controls.count_get(&format!("{OPPORTUNITIES}/{{id}}/forecast/{{id}}"));
                Ok(json_response(StatusCode::OK, &body, headers))
            } else if *m == Method::PUT {
                let body = json_body(call.body)?;
                Ok(json_response(StatusCode::OK, &write(app).replace_forecast_item(id, item, body)?, headers))
            } else if *m == Method::PATCH {
                let body = json_body(call.body)?;
                Ok(json_response(StatusCode::OK, &write(app).patch_forecast_item(id, item, body)?, headers))
            } else if *m == Method::DELETE {
                write(app).delete_forecast_item(id, item)?;
                Ok(empty_response(StatusCode::NO_CONTENT, headers))
            } else {
                Err(ApiError::method_not_allowed(m.as_str()))
            }
        }
        _ => Err(ApiError::no_endpoint()),
    }
}

pub(crate) fn read(app: &App) -> std::sync::RwLockReadGuard<'_, Store> {
    app.store.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write(app: &App) -> std::sync::RwLockWriteGuard<'_, Store> {
    app.store.write().unwrap_or_else(|e| e.into_inner())
}

fn writable(spec: &Spec, m: &Method) -> Result<(), ApiError> {
    if spec.writable { Ok(()) } else { Err(ApiError::method_not_allowed(m.as_str())) }
}

fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_body(format!("The request body is not valid JSON: {e}")))
}

fn list(app: &App, call: &Call<'_>, spec: &Spec, headers: &[(&'static str, String)]) -> Result<Response, ApiError> {
    let q = parse_list_query(&call.params)?;
    let forward_only = call
        .headers
        .get("pagination-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("forward-only"));
    let page = read(app).list(spec.path, &q, forward_only)?;
    app.controls.count_get(spec.path);
    let base = format!("{}/{}/apis/3.0/{}", app.base_url, call.codebase, call.rest.trim_matches('/'));
    let mut all = headers.to_vec();
    if forward_only {
        if let (true, Some(last_id)) = (page.more, page.last_id) {
            let url = page_url(&base, &call.params, &[("pageId", last_id.to_string())], &["page"]);
            all.push(("link", format!("<{url}>; rel=\"next\"")));
        }
    } else {
        all.push(("link", link_header(&base, &call.params, q.page, q.page_size, page.total)));
    }
    Ok(raw_json_response(StatusCode::OK, page.body, &all))
}

/// `POST …/search`: the list parameters come in a JSON body instead of the query.
fn search(app: &App, call: &Call<'_>, spec: &Spec, headers: &[(&'static str, String)]) -> Result<Response, ApiError> {
    let body = json_body(call.body)?;
    let Value::Object(map) = body else {
        return Err(ApiError::bad_body("The search body must be a JSON object (conditions, orderBy, page, ...)."));
    };
    let params: Vec<(String, String)> = map
        .into_iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k, s)),
            Value::Number(n) => Some((k, n.to_string())),
            Value::Bool(b) => Some((k, b.to_string())),
            _ => None,
        })
        .collect();
    let q = parse_list_query(&params)?;
    let page = read(app).list(spec.path, &q, false)?;
    app.controls.count_get(&format!("{}/search", spec.path));
    Ok(raw_json_response(StatusCode::OK, page.body, headers))
}

/// Percent-encodes a query component (space as `%20`, never `+`).
fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

/// `base` with the request's query, `set` replacing or adding parameters and `drop` removed.
fn page_url(base: &str, params: &[(String, String)], set: &[(&str, String)], drop: &[&str]) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| !drop.iter().any(|d| d.eq_ignore_ascii_case(k)))
        .filter(|(k, _)| !set.iter().any(|(s, _)| s.eq_ignore_ascii_case(k)))
        .cloned()
        .collect();
    pairs.extend(set.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
    format!("{base}?{}", query.join("&"))
}

/// The RFC 5988 `Link` header of a navigable page: `next` (absent on the last page),
/// `prev` (absent on the first), `first` and `last`.
fn link_header(base: &str, params: &[(String, String)], page: usize, page_size: usize, total: usize) -> String {
    let last = total.div_ceil(page_size).max(1);
    let url = |p: usize| page_url(base, params, &[("page", p.to_string())], &[]);
    let mut links = Vec::new();
    if page < last {
        links.push(format!("<{}>; rel=\"next\"", url(page + 1)));
    }
    if page > 1 {
        links.push(format!("<{}>; rel=\"prev\"", url((page - 1).min(last))));
    }
    links.push(format!("<{}>; rel=\"first\"", url(1)));
    links.push(format!("<{}>; rel=\"last\"", url(last)));
    links.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_keep_the_query_and_change_the_page() {
        let params = vec![("conditions".to_string(), "name like \"a%\"".to_string()), ("page".into(), "2".into())];
        let h = link_header("http://h/x", &params, 2, 10, 35);
        assert!(h.contains("<http://h/x?conditions=name%20like%20%22a%25%22&page=3>; rel=\"next\""), "{h}");
        assert!(h.contains("page=1>; rel=\"prev\""), "{h}");
        assert!(h.contains("page=4>; rel=\"last\""), "{h}");
        let last = link_header("http://h/x", &params, 4, 10, 35);
        assert!(!last.contains("rel=\"next\""), "{last}");
    }
}
