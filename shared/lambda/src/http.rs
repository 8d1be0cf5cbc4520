//! API Gateway HTTP API (payload format 2.0) <-> the transport-free `tandem_api`: an
//! [`ApiGatewayV2httpRequest`] becomes an [`ApiRequest`] (method, path without the stage
//! prefix, query parameters, body base64-decoded when marked so, tenant from a JWT claim),
//! and an [`ApiResponse`] becomes an [`ApiGatewayV2httpResponse`] with a JSON body. A
//! webhook call (no authorizer) becomes a [`WebhookRequest`] the same way, with its
//! headers and its exact body bytes, which its signature is computed over.

use std::collections::BTreeMap;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::HeaderValue;
use aws_lambda_events::http::header::CONTENT_TYPE;
use base64::Engine as _;

use tandem_api::{ApiRequest, ApiResponse};
use tandem_domain::webhook::WebhookCall;

/// The stage name of an HTTP API's default stage, which adds no path prefix.
pub const DEFAULT_STAGE: &str = "$default";

/// An error answer in `tandem_api`'s shape.
pub fn error_response(status: u16, kind: &str, message: impl Into<String>) -> ApiResponse {
    ApiResponse::error(status, kind, message)
}

/// The 404 for a route this function does not serve.
pub fn no_route(req: &ApiRequest) -> ApiResponse {
    error_response(404, "not_found", format!("no route {} {}", req.method.to_ascii_uppercase(), req.path))
}

/// The path's non-empty segments.
pub fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// Whether `req` is the save-credentials route, `POST` (or `PUT`) `/connections/{system}`,
/// served by the validate-credentials function only.
pub fn is_credentials_route(req: &ApiRequest) -> bool {
    let method = req.method.to_ascii_uppercase();
    matches!(method.as_str(), "POST" | "PUT") && matches!(segments(&req.path).as_slice(), ["connections", _])
}

/// The request's path: `rawPath` (else `requestContext.http.path`) without the
/// `/{stage}` prefix a named stage adds.
fn path(event: &ApiGatewayV2httpRequest) -> String {
    let raw = event.raw_path.clone().or_else(|| event.request_context.http.path.clone()).unwrap_or_default();
    let stage = event.request_context.stage.as_deref().unwrap_or(DEFAULT_STAGE);
    if stage.is_empty() || stage == DEFAULT_STAGE {
        return raw;
    }
    let prefix = format!("/{stage}");
    match raw.strip_prefix(&prefix) {
        Some("") => "/".to_string(),
        Some(rest) if rest.starts_with('/') => rest.to_string(),
        _ => raw,
    }
}

/// The query parameters; a parameter given several times keeps its values joined by
/// commas, as API Gateway delivers them.
fn query(event: &ApiGatewayV2httpRequest) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in event.query_string_parameters.iter() {
        out.entry(key.to_string())
            .and_modify(|v| {
                v.push(',');
                v.push_str(value);
            })
            .or_insert_with(|| value.to_string());
    }
    out
}

/// The tenant from the JWT claim `tenant_claim`; `None` when absent or empty.
fn tenant(event: &ApiGatewayV2httpRequest, tenant_claim: &str) -> Option<String> {
    let claims = &event.request_context.authorizer.as_ref()?.jwt.as_ref()?.claims;
    claims.get(tenant_claim).filter(|t| !t.trim().is_empty()).cloned()
}

/// The request body's bytes, base64-decoded when the event marks it so; the 400 answer
/// when it is marked base64 but is not.
fn body(event: &ApiGatewayV2httpRequest) -> Result<Vec<u8>, ApiResponse> {
    Ok(match event.body.as_deref() {
        None => Vec::new(),
        Some(b) if event.is_base64_encoded => base64::engine::general_purpose::STANDARD.decode(b).map_err(|e| {
            error_response(400, "invalid", format!("the request body is marked base64 but is not: {e}"))
        })?,
        Some(b) => b.as_bytes().to_vec(),
    })
}

/// The request's method, upper-case as API Gateway gives it.
fn method(event: &ApiGatewayV2httpRequest) -> String {
    event.request_context.http.method.as_str().to_string()
}

/// The API request an API Gateway event carries, or the 400 answer when its body is
/// marked base64 but is not.
pub fn api_request(event: &ApiGatewayV2httpRequest, tenant_claim: &str) -> Result<ApiRequest, ApiResponse> {
    Ok(ApiRequest {
        method: method(event),
        path: path(event),
        query: query(event),
        body: body(event)?,
        tenant: tenant(event, tenant_claim),
    })
}

/// A webhook call as API Gateway delivered it (`POST /webhooks/{system}/{key}`, no
/// authorizer): the method and path to route it by, and the call itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookRequest {
    /// The HTTP method.
    pub method: String,
    /// The path without a named stage's prefix.
    pub path: String,
    /// Header names lower-cased (a header sent several times keeps its values joined by
    /// commas, as API Gateway delivers them), the query parameters, the exact body bytes.
    pub call: WebhookCall,
}

/// The webhook request an API Gateway event carries, or the 400 answer when its body is
/// marked base64 but is not.
pub fn webhook_request(event: &ApiGatewayV2httpRequest) -> Result<WebhookRequest, ApiResponse> {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &event.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_ascii_lowercase())
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    Ok(WebhookRequest {
        method: method(event),
        path: path(event),
        call: WebhookCall { headers, query: query(event), body: body(event)? },
    })
}

/// The API Gateway answer for `resp`: its status and its JSON body.
pub fn gateway_response(resp: ApiResponse) -> ApiGatewayV2httpResponse {
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(resp.status);
    let (content_type, text) = match resp.raw {
        Some((content_type, text)) => (content_type, text),
        None => ("application/json", resp.body.to_string()),
    };
    out.headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (name, value) in &resp.headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            out.headers.insert(*name, v);
        }
    }
    out.body = Some(Body::Text(text));
    out.is_base64_encoded = false;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::http::Method;
    use serde_json::json;

    const CLAIM: &str = "custom:tenant_id";

    fn event(value: serde_json::Value) -> ApiGatewayV2httpRequest {
        serde_json::from_value(value).unwrap()
    }

    fn get(raw_path: &str, stage: &str) -> ApiGatewayV2httpRequest {
        event(json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": raw_path,
            "rawQueryString": "limit=5&outcome=created&outcome=failed",
            "queryStringParameters": { "limit": "5", "outcome": "created,failed" },
            "requestContext": {
                "http": { "method": "GET", "path": raw_path },
                "stage": stage,
                "authorizer": { "jwt": { "claims": { CLAIM: "acme", "sub": "u-1" }, "scopes": null } }
            },
            "isBase64Encoded": false
        }))
    }

    #[test]
    fn a_request_carries_method_path_query_and_the_tenant_claim() {
        let req = api_request(&get("/logs", "$default"), CLAIM).unwrap();
        assert_eq!(req.method, Method::GET.as_str());
        assert_eq!(req.path, "/logs");
        assert_eq!(req.query.get("limit").map(String::as_str), Some("5"));
        assert_eq!(req.query.get("outcome").map(String::as_str), Some("created,failed"));
        assert_eq!(req.tenant.as_deref(), Some("acme"));
        assert!(req.body.is_empty());
    }

    #[test]
    fn a_named_stage_prefix_is_stripped_from_the_path() {
        assert_eq!(api_request(&get("/prod/jobs/j1", "prod"), CLAIM).unwrap().path, "/jobs/j1");
        assert_eq!(api_request(&get("/prod", "prod"), CLAIM).unwrap().path, "/");
        assert_eq!(api_request(&get("/production/jobs", "prod"), CLAIM).unwrap().path, "/production/jobs");
        assert_eq!(api_request(&get("/jobs", "$default"), CLAIM).unwrap().path, "/jobs");
    }

    #[test]
    fn without_the_claim_the_tenant_is_absent() {
        assert_eq!(api_request(&get("/jobs", "$default"), "tenant").unwrap().tenant, None);
        let mut e = get("/jobs", "$default");
        e.request_context.authorizer = None;
        assert_eq!(api_request(&e, CLAIM).unwrap().tenant, None);
    }

    #[test]
    fn a_base64_body_is_decoded_and_a_broken_one_is_a_400() {
        let mut e = get("/connections/connectwise", "$default");
        e.body = Some(base64::engine::general_purpose::STANDARD.encode(br#"{"site":"x"}"#));
        e.is_base64_encoded = true;
        assert_eq!(api_request(&e, CLAIM).unwrap().body, br#"{"site":"x"}"#.to_vec());
        e.body = Some("not base64!".into());
        assert_eq!(api_request(&e, CLAIM).unwrap_err().status, 400);
        e.body = Some(r#"{"site":"x"}"#.into());
        e.is_base64_encoded = false;
        assert_eq!(api_request(&e, CLAIM).unwrap().body, br#"{"site":"x"}"#.to_vec());
    }

    #[test]
    fn a_response_is_json_with_its_status() {
        let out = gateway_response(ApiResponse::new(201, json!({ "ok": true })));
        assert_eq!(out.status_code, 201);
        assert_eq!(out.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()), Some("application/json"));
        assert_eq!(out.body, Some(Body::Text(r#"{"ok":true}"#.into())));
        let wire = serde_json::to_value(&out).unwrap();
        assert_eq!(wire["statusCode"], 201);
        assert_eq!(wire["headers"]["content-type"], "application/json");
    }

    fn webhook(body: &str, base64: bool) -> ApiGatewayV2httpRequest {
        event(json!({
            "version": "2.0",
            "routeKey": "POST /webhooks/{system}/{key}",
            "rawPath": "/webhooks/connectwise/k1",
            "rawQueryString": "a=1",
            "headers": { "X-Content-Signature": "c2ln", "content-type": "application/json" },
            "queryStringParameters": { "a": "1" },
            "requestContext": { "http": { "method": "POST", "path": "/webhooks/connectwise/k1" }, "stage": "$default" },
            "body": body,
            "isBase64Encoded": base64
        }))
    }

    #[test]
    fn a_webhook_call_carries_lower_cased_headers_the_query_and_the_exact_body() {
        let req = webhook_request(&webhook(r#"{"ID": 1}"#, false)).unwrap();
        assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", "/webhooks/connectwise/k1"));
        assert_eq!(req.call.headers.get("x-content-signature").map(String::as_str), Some("c2ln"));
        assert_eq!(req.call.header("X-Content-Signature"), Some("c2ln"));
        assert_eq!(req.call.query.get("a").map(String::as_str), Some("1"));
        assert_eq!(req.call.body, br#"{"ID": 1}"#.to_vec());
    }

    #[test]
    fn a_base64_webhook_body_is_decoded_and_a_broken_one_is_a_400() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(b"\x00raw bytes");
        assert_eq!(webhook_request(&webhook(&encoded, true)).unwrap().call.body, b"\x00raw bytes".to_vec());
        assert_eq!(webhook_request(&webhook("not base64!", true)).unwrap_err().status, 400);
    }

    #[test]
    fn only_saving_credentials_is_the_credentials_route() {
        let req =
            |method: &str, path: &str| ApiRequest { method: method.into(), path: path.into(), ..Default::default() };
        assert!(is_credentials_route(&req("POST", "/connections/connectwise")));
        assert!(is_credentials_route(&req("put", "/connections/connectwise/")));
        assert!(!is_credentials_route(&req("GET", "/connections/connectwise")));
        assert!(!is_credentials_route(&req("POST", "/connections/connectwise/imports")));
        assert!(!is_credentials_route(&req("GET", "/jobs")));
    }
}
