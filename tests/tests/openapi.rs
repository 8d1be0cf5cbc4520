//! The API's OpenAPI document over HTTP: `tandem serve` answers `GET /openapi.json`
//! without a tenant, with an OpenAPI 3.1 document that lists every route of the API.

#![allow(clippy::unwrap_used)] // tests: a failed set-up step should panic

use serde_json::Value;

use tandem_connectors::http::Settings;
use tandem_embedded::QueueConfig;
use tandem_local::runtime::LocalRuntime;
use tandem_local::server;

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

async fn served_document(tenant: Option<&str>) -> (u16, Value) {
    let rt = LocalRuntime::new(None, QueueConfig::default(), Settings::default()).unwrap();
    let (addr, _server) = server::serve(rt, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut req = reqwest::Client::new().get(format!("http://{addr}/openapi.json"));
    if let Some(t) = tenant {
        req = req.header(server::TENANT_HEADER, t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    assert_eq!(resp.headers()["content-type"], "application/json");
    (status, serde_json::from_str(&resp.text().await.unwrap()).unwrap())
}

#[tokio::test]
async fn the_served_document_is_openapi_3_1_and_lists_every_route_with_its_method() {
    let (status, doc) = served_document(None).await;
    assert_eq!(status, 200, "{doc}");
    let version = doc["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "version {version}");
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in tandem_api::ROUTES {
        let op = &paths[*path][method.to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {path} is missing");
        assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path} has no responses");
    }
    let operations: usize = paths
        .values()
        .map(|item| item.as_object().unwrap().keys().filter(|k| METHODS.contains(&k.as_str())).count())
        .sum();
    assert_eq!(operations, tandem_api::ROUTES.len(), "the document has operations the API does not answer");
}

#[tokio::test]
async fn the_document_needs_no_tenant_and_a_bad_tenant_header_does_not_hide_it() {
    let (status, doc) = served_document(Some("not a tenant")).await;
    assert_eq!(status, 200, "{doc}");
    assert!(doc["paths"]["/openapi.json"]["get"].is_object());
}
