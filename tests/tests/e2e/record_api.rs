//! The CRM's own records through the API, end to end: over HTTP on the local runner
//! (`tandem serve`, embedded store) and through the `http-api` Lambda handler on DynamoDB
//! (a moto server). Bad bodies are refused naming each bad field and write nothing; a
//! tenant never reaches another's records; every write leaves one outbox entry; the
//! connection's settings read and change.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::encodings::Body;
use serde_json::{Value, json};
use std::time::Duration;

use tandem_connectors::http::Settings;
use tandem_domain::outbox::ChangeOp;
use tandem_domain::usecases::Services;
use tandem_domain::{JobId, System, TenantId};
use tandem_embedded::QueueConfig;
use tandem_lambda::testing::{SAMPLE_TENANT_CLAIM, event_json, invocation};
use tandem_local::aws::{AwsNames, provision, sdk_config};
use tandem_local::runtime::LocalRuntime;
use tandem_local::server;

/// One way of calling the API: the local server over HTTP, or the Lambda handler.
enum Caller {
    Http { base: String, http: reqwest::Client },
    Lambda(Services),
}

impl Caller {
    async fn call(&self, tenant: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        match self {
            Caller::Http { base, http } => {
                let mut req = http
                    .request(method.parse().unwrap(), format!("{base}{path}"))
                    .header(server::TENANT_HEADER, tenant);
                if let Some(b) = body {
                    req = req.body(b.to_string()).header("content-type", "application/json");
                }
                let resp = req.send().await.unwrap();
                (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
            }
            Caller::Lambda(svc) => {
                let resp =
                    http_api::handler::handle(svc, SAMPLE_TENANT_CLAIM, invocation(event(method, path, tenant, body)))
                        .await
                        .unwrap();
                let body = match &resp.body {
                    Some(Body::Text(t)) => serde_json::from_str(t).unwrap_or(Value::Null),
                    _ => Value::Null,
                };
                (resp.status_code as u16, body)
            }
        }
    }
}

fn event(method: &str, path: &str, tenant: &str, body: Option<Value>) -> ApiGatewayV2httpRequest {
    let mut e = event_json("validate-credentials.json");
    e["rawPath"] = json!(path);
    e["routeKey"] = json!(format!("{method} {path}"));
    e["requestContext"]["http"]["method"] = json!(method);
    e["requestContext"]["http"]["path"] = json!(path);
    e["requestContext"]["authorizer"]["jwt"]["claims"][SAMPLE_TENANT_CLAIM] = json!(tenant);
    e["body"] = body.map_or(Value::Null, |b| json!(b.to_string()));
    e["isBase64Encoded"] = json!(false);
    serde_json::from_value(e).unwrap()
}

fn message(b: &Value) -> &str {
    b["error"]["message"].as_str().unwrap_or_default()
}

/// The behaviour, the same through either caller.
async fn records_and_settings(api: &Caller, svc: &Services) {
    let (me, other) = ("rec-api", "rec-other");
    let t = TenantId::parse(me).unwrap();

    // Bad bodies: each bad field named, nothing written.
    let (s, b) = api.call(me, "POST", "/records/company", Some(json!({"phone": "n/a", "colour": 1}))).await;
    assert_eq!(s, 400, "{b}");
    assert!(message(&b).contains("colour"), "{b}");
    let (s, b) = api.call(me, "POST", "/records/company", Some(json!({"phone": "n/a", "website": "no site"}))).await;
    assert_eq!(s, 400, "{b}");
    for field in ["name: is required", "phone:", "website:"] {
        assert!(message(&b).contains(field), "{field} missing: {b}");
    }
    let (s, b) = api.call(me, "POST", "/records/user", Some(json!({"name": "X"}))).await;
    assert_eq!(s, 400, "{b}");
    let (s, _) = api.call(me, "GET", "/records/company", None).await;
    assert_eq!(s, 200);

    // A company and a contact under it; the contact's bad company reference is named.
    let (s, b) = api
        .call(me, "POST", "/records/company", Some(json!({"name": "Harbour Dental", "phone": "+1 555 201 0100"})))
        .await;
    assert_eq!(s, 201, "{b}");
    let company = b["id"].as_str().unwrap().to_string();
    let (s, b) = api.call(me, "POST", "/records/contact", Some(json!({"first_name": "Ann", "company": "ghost"}))).await;
    assert_eq!(s, 400);
    assert!(message(&b).contains("company: no company ghost"), "{b}");
    let (s, b) = api
        .call(
            me,
            "POST",
            "/records/contact",
            Some(json!({"first_name": "Ann", "email": "ann@harbour.example", "company": company})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let contact = b["id"].as_str().unwrap().to_string();

    // A partial update; another tenant can neither read nor change the record.
    let path = format!("/records/company/{company}");
    let (s, b) = api.call(me, "PATCH", &path, Some(json!({"website": "harbour.example"}))).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!((b["name"].as_str(), b["website"].as_str()), (Some("Harbour Dental"), Some("harbour.example")));
    for (method, body) in [("GET", None), ("PATCH", Some(json!({"name": "Stolen"}))), ("DELETE", None)] {
        let (s, _) = api.call(other, method, &path, body).await;
        assert_eq!(s, 404, "{method} from another tenant");
    }
    let (s, b) = api.call(me, "PATCH", &path, Some(json!({"id": "other-id"}))).await;
    assert_eq!(s, 400, "{b}");

    // Delete; the record is gone, and a second delete is a 404.
    let contact_path = format!("/records/contact/{contact}");
    let (s, _) = api.call(me, "DELETE", &contact_path, None).await;
    assert_eq!(s, 200);
    let (s, _) = api.call(me, "GET", &contact_path, None).await;
    assert_eq!(s, 404);
    let (s, _) = api.call(me, "DELETE", &contact_path, None).await;
    assert_eq!(s, 404);

    // One outbox entry per write, none for the refused ones.
    let changes = svc.store.changes(&t, &svc.clock.now().day()).await.unwrap();
    let ops: Vec<(ChangeOp, String)> = changes.iter().map(|c| (c.op, c.kind.to_string())).collect();
    assert_eq!(
        ops,
        vec![
            (ChangeOp::Created, "company".into()),
            (ChangeOp::Created, "contact".into()),
            (ChangeOp::Updated, "company".into()),
            (ChangeOp::Deleted, "contact".into()),
        ]
    );
    assert!(svc.store.changes(&TenantId::parse(other).unwrap(), &svc.clock.now().day()).await.unwrap().is_empty());

    // Settings: 404 without a connection; then read, change, refuse a bad value by name.
    let (s, _) = api.call(me, "GET", "/connections/halo/settings", None).await;
    assert_eq!(s, 404);
    save_connection(svc, &t).await;
    let (s, b) = api.call(me, "GET", "/connections/halo/settings", None).await;
    assert_eq!((s, b["export_requires_opportunity"].as_bool()), (200, Some(true)), "{b}");
    let (s, b) =
        api.call(me, "PUT", "/connections/halo/settings", Some(json!({"export_requires_opportunity": false}))).await;
    assert_eq!((s, b["export_requires_opportunity"].as_bool()), (200, Some(false)), "{b}");
    let (s, b) = api.call(me, "PUT", "/connections/halo/settings", Some(json!({"api_budget_per_day": 500}))).await;
    assert_eq!((s, b["api_budget_per_day"].as_u64()), (200, Some(500)), "{b}");
    let refused = json!({"api_budget_per_day": 0, "export_requires_opportunity": true});
    let (s, b) = api.call(me, "PUT", "/connections/halo/settings", Some(refused)).await;
    assert_eq!(s, 400);
    assert!(message(&b).contains("api_budget_per_day"), "{b}");
    let (_, b) = api.call(me, "GET", "/connections/halo/settings", None).await;
    assert_eq!(b["export_requires_opportunity"].as_bool(), Some(false), "a refused change changes nothing");
    assert_eq!(b["api_budget_per_day"].as_u64(), Some(500), "a refused change changes nothing");
}

/// A Halo connection saved straight into the store (the settings need one; no simulator).
async fn save_connection(svc: &Services, t: &TenantId) {
    let now = svc.clock.now();
    let conn = tandem_domain::mapping::Connection {
        tenant: t.clone(),
        system: System::Halo,
        status: tandem_domain::mapping::ConnectionStatus::Connected,
        account: json!({}),
        secret_name: "unused".into(),
        mappings: Default::default(),
        completed_stages: Default::default(),
        settings: Default::default(),
        export_choices: Default::default(),
        webhook: None,
        polled: Default::default(),
        swept: Default::default(),
        relayed: None,
        field_map: None,
        selective_sync: None,
        created_at: now,
        updated_at: now,
        version: 0,
    };
    svc.store.save_connection(&conn).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_api_writes_the_crm_s_records_and_the_connection_settings() {
    let rt = LocalRuntime::new(None, QueueConfig::default(), Settings::default()).unwrap();
    let (addr, _server) = server::serve(rt.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let api = Caller::Http { base: format!("http://{addr}"), http: reqwest::Client::new() };
    records_and_settings(&api, &rt.svc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_api_function_writes_the_crm_s_records_on_dynamodb() {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL: run scripts/test, which starts moto");
    let unique = JobId::new().as_str()[..10].to_string();
    let names = AwsNames {
        table: format!("rec-{unique}"),
        queue_prefix: format!("rec-{unique}-import"),
        secret_prefix: format!("rec-{unique}/connections"),
        event_bus: "default".into(),
        snapshot_bucket: format!("rec-{unique}-snapshots"),
        visibility_timeout: Duration::from_secs(1),
    };
    let sdk = sdk_config(&endpoint).await;
    let config = provision(&sdk, &names).await.unwrap();
    let svc = tandem_lambda::services(&sdk, &config);
    records_and_settings(&Caller::Lambda(svc.clone()), &svc).await;
}
