//! End to end over HTTP: the local runner's API (`tandem serve`) against the ConnectWise
//! simulator — bad input is refused clearly and changes nothing; the full flow works.

use serde_json::{Value, json};
use std::time::Duration;

use tandem_connectors::http::Settings;
use tandem_domain::{RecordKind, System, TenantId};
use tandem_embedded::QueueConfig;
use tandem_local::runtime::LocalRuntime;
use tandem_local::{server, setup};
use tandem_sim::connectwise::{GenConfig, SimConfig, Simulator, Tenant};

struct Api {
    base: String,
    http: reqwest::Client,
    tenant: &'static str,
}

impl Api {
    async fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .header(server::TENANT_HEADER, self.tenant);
        if let Some(b) = body {
            req = req.body(b.to_string()).header("content-type", "application/json");
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_api_refuses_bad_input_clearly_and_runs_a_full_import() {
    let data = Tenant::generate(&GenConfig::with_companies(3, 120));
    let expected = data.expected().clone();
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
    let api = Api { base: format!("http://{addr}"), http: reqwest::Client::new(), tenant: "api-test" };
    let t = TenantId::parse("api-test").unwrap();
    let good = setup::credentials_body(&sim.credentials());

    // Bad bodies: clear errors naming the problem; nothing saved.
    let (s, b) = api.call("POST", "/connections/connectwise", Some("{not json")).await;
    assert_eq!(s, 400, "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("not valid JSON"), "{b}");
    let (s, b) = api.call("POST", "/connections/connectwise", Some(r#"{"site": "x"}"#)).await;
    assert_eq!(s, 400);
    assert!(b["error"]["message"].as_str().unwrap().contains("company_id"), "{b}");
    let (s, b) = api.call("POST", "/connections/nowhere", Some("{}")).await;
    assert_eq!(s, 400);
    assert!(b["error"]["message"].as_str().unwrap().contains("unknown system"), "{b}");

    // Wrong keys: refused by ConnectWise, nothing saved, the key never echoed.
    let mut wrong = good.clone();
    wrong["private_key"] = json!("definitely-wrong-key");
    let (s, b) = api.call("POST", "/connections/connectwise", Some(&wrong.to_string())).await;
    assert_eq!(s, 422, "{b}");
    assert!(!b.to_string().contains("definitely-wrong-key"), "{b}");
    let (s, _) = api.call("GET", "/connections/connectwise", None).await;
    assert_eq!(s, 404);
    assert!(rt.svc.secrets.get(&t, System::ConnectWise).await.is_err());

    // Unknown company id.
    let mut unknown = good.clone();
    unknown["company_id"] = json!("no-such-company");
    let (s, b) = api.call("POST", "/connections/connectwise", Some(&unknown.to_string())).await;
    assert_eq!(s, 422, "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("no-such-company"), "{b}");

    // Good keys: connected, no secret in the answer.
    let (s, b) = api.call("POST", "/connections/connectwise", Some(&good.to_string())).await;
    assert_eq!(s, 201, "{b}");
    assert!(!b.to_string().contains(good["private_key"].as_str().unwrap()), "{b}");
    assert_eq!(b["status"], "connected");

    // Options come live from the system.
    let (s, b) = api.call("GET", "/connections/connectwise/options/company_types", None).await;
    assert_eq!(s, 200);
    assert!(b["choices"].as_array().unwrap().iter().any(|c| c["name"] == "Vendor"), "{b}");

    // Mappings out of order are refused; an unknown option id is refused.
    let (s, b) = api.call("PUT", "/connections/connectwise/mappings/companies", Some(r#"{"company_types": {}}"#)).await;
    assert_eq!(s, 409, "{b}");
    let (s, b) =
        api.call("PUT", "/connections/connectwise/mappings/users", Some(r#"{"roles": {"999999": "admin"}}"#)).await;
    assert_eq!(s, 400, "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("999999"), "{b}");

    // An import before mappings is refused.
    let (s, _) = api.call("POST", "/connections/connectwise/imports", Some(r#"{"stages": "all"}"#)).await;
    assert_eq!(s, 409);

    setup::map_typically(&rt.svc, &t, System::ConnectWise, &tandem_local::sims::typical(System::ConnectWise).unwrap())
        .await
        .unwrap();
    setup::seed_crm(&rt.svc, &t, &crm_seed).await.unwrap();
    let (s, b) = api.call("POST", "/connections/connectwise/imports", Some(r#"{"stages": "everything"}"#)).await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = api.call("POST", "/connections/connectwise/imports", Some(r#"{"stages": "all"}"#)).await;
    assert_eq!(s, 202, "{b}");
    let job_id = b["id"].as_str().unwrap().to_string();

    let mut job = Value::Null;
    for _ in 0..600 {
        let (_, j) = api.call("GET", &format!("/jobs/{job_id}"), None).await;
        if j["status"]["state"] != "running" {
            job = j;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(job["status"]["state"], "completed", "{job}");
    for (stage, outcomes) in &expected {
        let p = &job["progress"][stage];
        for (outcome, n) in outcomes {
            let got = match outcome.split_once(':') {
                Some((_, reason)) => p["skipped"][reason].as_u64().unwrap_or(0),
                None => p[outcome.as_str()].as_u64().unwrap_or(0),
            };
            assert_eq!(got, *n, "{stage} {outcome}");
        }
    }

    // The sync log can be filtered; records can be listed.
    let (s, b) = api.call("GET", "/logs?outcome=skipped&object=company&limit=5", None).await;
    assert_eq!(s, 200);
    let entries = b["entries"].as_array().unwrap();
    assert!(!entries.is_empty() && entries.len() <= 5);
    assert!(entries.iter().all(|e| e["outcome"] == "skipped" && e["object"] == "company"), "{b}");
    let (s, b) = api.call("GET", "/records/company?limit=3", None).await;
    assert_eq!(s, 200);
    assert_eq!(b["records"].as_array().unwrap().len(), 3);
    let (s, _) = api.call("GET", "/records/spaceship", None).await;
    assert_eq!(s, 400);

    // Another tenant sees none of it.
    let other = Api { tenant: "someone-else", ..api };
    let (s, b) = other.call("GET", "/records/company", None).await;
    assert_eq!(s, 200);
    assert!(b["records"].as_array().unwrap().is_empty());
    let (s, _) = other.call("GET", &format!("/jobs/{job_id}"), None).await;
    assert_eq!(s, 404);
    assert!(rt.svc.store.all_records(&t, RecordKind::Company).await.unwrap().len() > 3);
    sim.shutdown().await;
}
