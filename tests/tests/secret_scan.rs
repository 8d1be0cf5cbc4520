//! The secret scan: every flow of every system run over the local API with tracing at
//! TRACE level, then every log line, every response body and every byte of the record
//! store searched for the connections' secrets (the saved ones, a wrong one tried first,
//! and ConnectWise's Basic credentials in their base64 form). Only the secret store may
//! hold them.

#![allow(clippy::unwrap_used)] // tests: a failed set-up step should panic

use base64::Engine as _;
use serde_json::Value;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tandem_connectors::http::Settings;
use tandem_domain::{System, TenantId};
use tandem_embedded::QueueConfig;
use tandem_local::runtime::LocalRuntime;
use tandem_local::sims::{self, Scale};
use tandem_local::{server, setup};
use tandem_sim::SimConfig;

/// Everything the process logs, at every level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The fields of each system's credentials that are secrets.
fn secret_fields(system: System) -> &'static [&'static str] {
    match system {
        System::ConnectWise => &["private_key"],
        System::Halo => &["client_secret"],
        System::Syncro => &["api_key"],
        System::Salesforce => &["client_secret", "refresh_token"],
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    tenant: String,
    responses: Vec<String>,
}

impl Client {
    async fn call(&mut self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .header(server::TENANT_HEADER, &self.tenant);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        self.responses.push(format!("{method} {path} -> {status} {text}"));
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_log_line_a_response_or_the_record_store() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let dir = tempfile::tempdir().unwrap();
    let rt = LocalRuntime::new(
        Some(dir.path()),
        QueueConfig::default(),
        Settings { pacing: tandem_connectors::Pacing::Off, ..Settings::default() },
    )
    .unwrap();
    let _worker = rt.spawn_worker();
    let (addr, _server) = server::serve(rt.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut secrets: Vec<String> = Vec::new();
    let mut client = Client {
        http: reqwest::Client::new(),
        base: format!("http://{addr}"),
        tenant: String::new(),
        responses: vec![],
    };

    for system in System::ALL.iter().copied() {
        let sim = sims::start(system, &Scale::new(11, 6), SimConfig::default(), 0).await.unwrap();
        if let Some(h) = sim.syncro() {
            h.set_requests_per_minute(None);
        }
        let tenant = format!("scan-{system}");
        client.tenant = tenant.clone();
        let t = TenantId::parse(&tenant).unwrap();
        setup::seed_crm(&rt.svc, &t, &sim.crm_seed).await.unwrap();

        // A wrong secret first (a known marker), then the right one.
        let mut wrong = sim.credentials.clone();
        for field in secret_fields(system) {
            if wrong.get(*field).is_some_and(Value::is_string) {
                let marker = format!("MARKER-WRONG-{system}-{field}-7f3a9c");
                wrong[*field] = Value::String(marker.clone());
                secrets.push(marker);
            }
            if let Some(real) = sim.credentials.get(*field).and_then(Value::as_str) {
                secrets.push(real.to_string());
            }
        }
        if system == System::ConnectWise {
            let c = &sim.credentials;
            let basic = format!(
                "{}+{}:{}",
                c["company_id"].as_str().unwrap(),
                c["public_key"].as_str().unwrap(),
                c["private_key"].as_str().unwrap()
            );
            secrets.push(base64::engine::general_purpose::STANDARD.encode(basic));
        }
        let path = format!("/connections/{system}");
        let (s, b) = client.call("POST", &path, Some(&wrong)).await;
        assert!((400..500).contains(&s), "{system}: a wrong secret is refused: {s} {b}");
        let (s, b) = client.call("POST", &path, Some(&sim.credentials)).await;
        assert_eq!(s, 201, "{system}: {b}");

        setup::map_typically(&rt.svc, &t, system, &sim.typical).await.unwrap();
        for route in ["", "/mappings", "/options/roles"] {
            client.call("GET", &format!("{path}{route}"), None).await;
        }
        let (s, job) =
            client.call("POST", &format!("{path}/imports"), Some(&serde_json::json!({"stages": "all"}))).await;
        assert_eq!(s, 202, "{system}: {job}");
        let id = job["id"].as_str().unwrap().to_string();
        let mut done = false;
        for _ in 0..600 {
            let (_, j) = client.call("GET", &format!("/jobs/{id}"), None).await;
            if j["status"]["state"] != "running" {
                assert_eq!(j["status"]["state"], "completed", "{system}: {j}");
                done = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(done, "{system}: the import ended");
        for route in ["/jobs", "/logs?limit=1000", "/records/company", "/records/contact", "/connections"] {
            client.call("GET", route, None).await;
        }
        sim.shutdown().await;
    }

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(logs.contains("TRACE") || logs.contains("DEBUG"), "the scan ran with verbose logging");
    let responses = client.responses.join("\n");
    let mut store = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("secrets") || entry.path().is_dir() {
            continue; // the secret store is where secrets belong
        }
        store.push((name, String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap()).into_owned()));
    }
    let names: Vec<&str> = store.iter().map(|(name, _)| name.as_str()).collect();
    assert!(names.contains(&tandem_embedded::sqlite::DB_FILE), "the record store (and its WAL) is scanned: {names:?}");
    assert!(secrets.len() >= 9, "every system's secrets are scanned for: {}", secrets.len());
    for secret in &secrets {
        assert!(secret.len() >= 8, "a secret long enough to search for: {secret:?}");
        assert!(!logs.contains(secret.as_str()), "a log line holds a secret ({} chars)", secret.len());
        assert!(!responses.contains(secret.as_str()), "a response holds a secret ({} chars)", secret.len());
        for (name, bytes) in &store {
            assert!(!bytes.contains(secret.as_str()), "the store file {name} holds a secret");
        }
    }
}
