//! The API's OpenAPI document over HTTP: `tandem serve` answers `GET /openapi.json`
//! without a tenant, with an OpenAPI 3.1 document that lists every route of the API; the
//! answers of a whole import (connection, mappings, job, records, log, snapshots) match the document's
//! schemas, which schemathesis (scripts/schemathesis) cannot reach without ids.

use serde_json::{Value, json};
use std::time::Duration;

use tandem_connectors::http::Settings;
use tandem_domain::{System, TenantId};
use tandem_embedded::QueueConfig;
use tandem_local::runtime::LocalRuntime;
use tandem_local::{server, setup};
use tandem_sim::connectwise::{GenConfig, SimConfig, Simulator, Tenant};

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

/// The violations of `body` against the schema the document gives `method path`'s
/// `status` answer.
pub(crate) fn violations(doc: &Value, method: &str, path: &str, status: u16, body: &Value) -> Vec<String> {
    let schema = &doc["paths"][path][method.to_ascii_lowercase()]["responses"][status.to_string()]["content"]["application/json"]
        ["schema"];
    assert!(schema.is_object(), "{method} {path} documents no {status} answer");
    let mut root =
        json!({ "$schema": "https://json-schema.org/draft/2020-12/schema", "components": doc["components"] });
    for (k, v) in schema.as_object().unwrap() {
        root[k] = v.clone();
    }
    let validator = jsonschema::draft202012::new(&root).unwrap();
    validator.iter_errors(body).map(|e| format!("{method} {path} {status}: {}: {e}", e.instance_path)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answers_of_a_whole_import_match_the_documents_schemas() {
    let data = Tenant::generate(&GenConfig::with_companies(3, 40));
    let crm_seed = data.crm_seed().clone();
    let sim = Simulator::start(data, SimConfig::default(), 0).await.unwrap();
    let rt = LocalRuntime::new(
        None,
        QueueConfig::default(),
        Settings { pacing: tandem_connectors::Pacing::Off, ..Settings::default() },
    )
    .unwrap();
    let _worker = rt.spawn_worker();
    let (addr, _server) = server::serve(rt.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let http = reqwest::Client::new();
    let t = TenantId::parse("openapi-test").unwrap();
    let call = |method: &'static str, path: String, body: Option<String>| {
        let mut req = http
            .request(method.parse().unwrap(), format!("http://{addr}{path}"))
            .header(server::TENANT_HEADER, t.as_str());
        if let Some(b) = body {
            req = req.body(b).header("content-type", "application/json");
        }
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let (_, doc) = served_document(None).await;
    let mut problems = Vec::new();
    let mut check = |method: &str, template: &str, status: u16, body: &Value| {
        problems.extend(violations(&doc, method, template, status, body));
    };

    let creds = setup::credentials_body(&sim.credentials()).to_string();
    let (s, b) = call("POST", "/connections/connectwise".into(), Some(creds)).await;
    assert_eq!(s, 201, "{b}");
    check("POST", "/connections/{system}", s, &b);
    setup::map_typically(&rt.svc, &t, System::ConnectWise, &tandem_local::sims::typical(System::ConnectWise).unwrap())
        .await
        .unwrap();
    setup::seed_crm(&rt.svc, &t, &crm_seed).await.unwrap();
    let (s, b) = call("POST", "/connections/connectwise/imports".into(), Some(r#"{"stages": "all"}"#.into())).await;
    assert_eq!(s, 202, "{b}");
    check("POST", "/connections/{system}/imports", s, &b);
    let job_id = b["id"].as_str().unwrap().to_string();
    let mut state = Value::Null;
    for _ in 0..600 {
        let (s, j) = call("GET", format!("/jobs/{job_id}"), None).await;
        check("GET", "/jobs/{id}", s, &j);
        state = j["status"]["state"].clone();
        if state != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, "completed");
    for (template, path) in [
        ("/connections", "/connections".to_string()),
        ("/connections/{system}", "/connections/connectwise".into()),
        ("/connections/{system}/options", "/connections/connectwise/options".into()),
        ("/connections/{system}/options/{list}", "/connections/connectwise/options/company_types".into()),
        ("/connections/{system}/mappings", "/connections/connectwise/mappings".into()),
        ("/connections/{system}/settings", "/connections/connectwise/settings".into()),
        ("/jobs", "/jobs".into()),
        ("/logs", "/logs?limit=100".into()),
    ] {
        let (s, b) = call("GET", path.clone(), None).await;
        assert_eq!(s, 200, "{path}: {b}");
        check("GET", template, s, &b);
    }
    let mut fetched = 0;
    for kind in ["user", "company", "contact", "solution", "activity", "opportunity"] {
        let (s, b) = call("GET", format!("/records/{kind}?limit=20"), None).await;
        assert_eq!(s, 200, "{kind}: {b}");
        check("GET", "/records/{kind}", s, &b);
        if let Some(id) = b["records"][0]["meta"]["id"].as_str() {
            let (s, r) = call("GET", format!("/records/{kind}/{id}"), None).await;
            assert_eq!(s, 200, "{kind} {id}: {r}");
            check("GET", "/records/{kind}/{id}", s, &r);
            fetched += 1;
        }
    }
    let (s, b) = call("POST", "/snapshots".into(), Some(r#"{"note": "openapi"}"#.into())).await;
    assert_eq!(s, 201, "{b}");
    check("POST", "/snapshots", s, &b);
    let (s, list) = call("GET", "/snapshots".into(), None).await;
    assert_eq!(s, 200, "{list}");
    check("GET", "/snapshots", s, &list);
    let (s, b) = call("POST", format!("/snapshots/{}/restore", b["id"].as_str().unwrap()), None).await;
    assert_eq!(s, 200, "{b}");
    check("POST", "/snapshots/{id}/restore", s, &b);
    let (s, b) =
        call("POST", "/connections/connectwise/imports".into(), Some(r#"{"stages": "all", "dry_run": true}"#.into()))
            .await;
    assert_eq!(s, 202, "{b}");
    check("POST", "/connections/{system}/imports", s, &b);
    let preview = b["id"].as_str().unwrap().to_string();
    for _ in 0..600 {
        let (s, b) = call("GET", format!("/previews/{preview}?limit=50"), None).await;
        assert_eq!(s, 200, "{b}");
        check("GET", "/previews/{id}", s, &b);
        if b["status"]["state"] != "running" {
            assert!(!b["records"].as_array().unwrap().is_empty(), "{b}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, b) = call("GET", "/previews".into(), None).await;
    assert_eq!(s, 200, "{b}");
    check("GET", "/previews", s, &b);
    let (s, b) = call("POST", format!("/jobs/{job_id}/cancel"), None).await;
    check("POST", "/jobs/{id}/cancel", s, &b);
    let (s, b) = call("GET", "/nowhere".into(), None).await;
    assert_eq!(s, 404);
    check("GET", "/jobs/{id}", s, &b);
    assert!(fetched >= 4, "records of most kinds were read back by id");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let wrong = json!({ "jobs": [{ "id": 5 }] });
    assert!(!violations(&doc, "GET", "/jobs", 200, &wrong).is_empty(), "the check catches a wrong answer");
}
