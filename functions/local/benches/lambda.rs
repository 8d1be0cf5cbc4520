//! The Lambda functions measured as functions: each function's release binary is started
//! against a minimal Lambda Runtime API on loopback (this file's emulator: `next`,
//! `response`, `error`, `init/error`), with moto for AWS, as Lambda starts it (the
//! `AWS_LAMBDA_*` variables, the function's own configuration variables). Per function:
//!
//! - **cold init**: from spawning the process to its first `GET /runtime/invocation/next`
//!   (everything before the first `next` is init: nothing slow may happen there);
//! - **first** and **warm invocation**: its `events/` sample, from handing it over to the
//!   response (the first pays the lazy set-ups: the SDK clients' first connections);
//! - **peak RSS** (`VmHWM` after the warm invocation) and the **binary size**.
//!
//! Medians over `--runs` fresh processes (default 5). The binaries are built first
//! (`cargo build --release` of every function). moto: `AWS_ENDPOINT_URL` if set, else
//! `.venv-ci/bin/moto_server` (what `scripts/test` installs) is started on a free port.
//!
//! `cargo bench -p tandem-local --bench lambda [-- --runs N] [--json]`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failed set-up step should stop it

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, mpsc};

use tandem_lambda::config::{self as vars, Config};
use tandem_local::aws::{AwsNames, provision, sdk_config};

#[path = "support/args.rs"]
mod args;

/// Every function, with whether it reads the HTTP functions' variables.
const FUNCTIONS: &[(&str, bool)] = &[
    ("validate-credentials", true),
    ("http-api", true),
    ("webhook-intake", false),
    ("import-users", false),
    ("import-companies", false),
    ("import-contacts", false),
    ("import-solutions", false),
    ("import-activities", false),
    ("import-opportunities", false),
    ("export-record", false),
    ("sync-worker", false),
    ("scheduled-sync", false),
];

/// What the emulator saw: when `next` was first called, and each invocation's end.
struct Emulator {
    first_next: std::sync::Mutex<Option<Instant>>,
    events: Mutex<mpsc::Receiver<(String, Bytes)>>,
    done: mpsc::Sender<(String, Result<(), String>, Instant)>,
}

async fn next(State(emu): State<Arc<Emulator>>) -> (HeaderMap, Bytes) {
    emu.first_next.lock().unwrap().get_or_insert_with(Instant::now);
    let (id, body) = emu.events.lock().await.recv().await.unwrap_or_default();
    let mut headers = HeaderMap::new();
    let deadline =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap() + Duration::from_secs(60);
    headers.insert("lambda-runtime-aws-request-id", HeaderValue::from_str(&id).unwrap());
    headers.insert("lambda-runtime-deadline-ms", HeaderValue::from(deadline.as_millis() as u64));
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:bench"),
    );
    headers.insert("lambda-runtime-trace-id", HeaderValue::from_static("Root=1-00000000-000000000000000000000000"));
    (headers, body)
}

async fn response(State(emu): State<Arc<Emulator>>, UrlPath(id): UrlPath<String>) -> StatusCode {
    let _ = emu.done.send((id, Ok(()), Instant::now())).await;
    StatusCode::ACCEPTED
}

async fn error(State(emu): State<Arc<Emulator>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    let _ = emu.done.send((id, Err(String::from_utf8_lossy(&body).into_owned()), Instant::now())).await;
    StatusCode::ACCEPTED
}

async fn init_error(State(emu): State<Arc<Emulator>>, body: Bytes) -> StatusCode {
    let _ = emu.done.send(("init".into(), Err(String::from_utf8_lossy(&body).into_owned()), Instant::now())).await;
    StatusCode::ACCEPTED
}

/// One run's figures.
#[derive(Clone, Copy, Debug)]
struct Run {
    cold: Duration,
    first: Duration,
    warm: Duration,
    peak_kib: u64,
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Starts `binary` against a fresh emulator with `env`, invokes `event` twice.
async fn run_once(binary: &Path, name: &str, env: &BTreeMap<String, String>, event: &Bytes) -> Result<Run, String> {
    let (events_tx, events_rx) = mpsc::channel(1);
    let (done_tx, mut done_rx) = mpsc::channel(4);
    let emu =
        Arc::new(Emulator { first_next: std::sync::Mutex::new(None), events: Mutex::new(events_rx), done: done_tx });
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(emu.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let started = Instant::now();
    let mut child: Child = Command::new(binary)
        .env_clear()
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let pid = child.id();
    let result = async {
        let deadline = started + Duration::from_secs(10);
        let cold = loop {
            if let Some(at) = *emu.first_next.lock().unwrap() {
                break at - started;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("exited before its first next: {status}"));
            }
            if Instant::now() > deadline {
                return Err("no first next within 10 s".into());
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        let mut invoke = async |id: &str| -> Result<Duration, String> {
            let sent = Instant::now();
            events_tx.send((id.to_string(), event.clone())).await.map_err(|e| e.to_string())?;
            match tokio::time::timeout(Duration::from_secs(30), done_rx.recv()).await {
                Ok(Some((got, Ok(()), at))) if got == id => Ok(at - sent),
                Ok(Some((got, Err(e), _))) => Err(format!("{got} failed: {e}")),
                other => Err(format!("no answer: {other:?}")),
            }
        };
        let first = invoke("bench-1").await?;
        let warm = invoke("bench-2").await?;
        Ok(Run { cold, first, warm, peak_kib: peak_rss_kib(pid) })
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    server.abort();
    result
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

/// The workspace root (this package is `functions/local`).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Builds every function in release; returns the directory holding the binaries.
fn build() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace()).args(["build", "--release", "--locked"]);
    for (name, _) in FUNCTIONS {
        cmd.args(["-p", name]);
    }
    let status = cmd.status().expect("cargo runs");
    assert!(status.success(), "the release build of the functions failed");
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| workspace().join("target"));
    target.join("release")
}

/// moto's endpoint: `AWS_ENDPOINT_URL`, else a moto server started here (kept running
/// until the returned child is dropped and killed).
fn moto() -> (String, Option<Child>) {
    if let Ok(url) = std::env::var("AWS_ENDPOINT_URL") {
        return (url, None);
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = workspace().join(".venv-ci/bin/moto_server");
    let child = Command::new(&server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{}: {e} (run scripts/test once to install it, or set AWS_ENDPOINT_URL)", server.display())
        });
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (url, Some(child))
}

/// The variables Lambda and the SAM template give every function, pointed at moto.
fn environment(endpoint: &str, config: &Config, http: bool) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
        (vars::TABLE_NAME, &config.table_name),
        (vars::SECRET_PREFIX, &config.secret_prefix),
        (vars::EVENT_BUS_NAME, &config.event_bus_name),
        (vars::SNAPSHOT_BUCKET, &config.snapshot_bucket),
        (vars::QUEUE_URL_EXPORT, &config.export_queue_url),
        (vars::QUEUE_URL_SYNC, &config.sync_queue_url),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (stage, url) in &config.queue_urls {
        env.insert(vars::queue_url_var(*stage).to_string(), url.clone());
    }
    if http {
        env.insert(vars::TENANT_CLAIM.into(), "sub".into());
    }
    env
}

#[tokio::main]
async fn main() {
    let runs: usize = args::arg_or("--runs", 5).max(1);
    let as_json = std::env::args().any(|a| a == "--json");
    eprintln!("Building the functions in release...");
    let bin_dir = build();
    let (endpoint, mut moto_child) = moto();
    let sdk = sdk_config(&endpoint).await;
    let names = AwsNames {
        table: "bench-lambda".into(),
        queue_prefix: "bench-lambda".into(),
        snapshot_bucket: "bench-lambda-snapshots".into(),
        ..AwsNames::default()
    };
    let config = provision(&sdk, &names).await.expect("moto provisions the table and queues");

    let mut rows = Vec::new();
    for (name, http) in FUNCTIONS {
        let binary = bin_dir.join(name);
        let size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
        let event = Bytes::from(std::fs::read(workspace().join(format!("events/{name}.json"))).unwrap());
        let env = environment(&endpoint, &config, *http);
        let mut done = Vec::new();
        for _ in 0..runs {
            match run_once(&binary, name, &env, &event).await {
                Ok(run) => done.push(run),
                Err(e) => eprintln!("{name}: {e}"),
            }
        }
        if done.is_empty() {
            continue;
        }
        let row = serde_json::json!({
            "function": name,
            "cold_init_ms": ms(median(done.iter().map(|r| r.cold).collect())),
            "first_invocation_ms": ms(median(done.iter().map(|r| r.first).collect())),
            "warm_invocation_ms": ms(median(done.iter().map(|r| r.warm).collect())),
            "peak_rss_mib": (done.iter().map(|r| r.peak_kib).max().unwrap_or(0) as f64 / 1024.0 * 10.0).round() / 10.0,
            "binary_mib": (size as f64 / 1_048_576.0 * 10.0).round() / 10.0,
            "runs": done.len(),
        });
        rows.push(row);
    }
    if let Some(child) = moto_child.as_mut() {
        let _ = child.kill();
    }
    if as_json {
        println!("{}", serde_json::Value::Array(rows));
        return;
    }
    let mut table = comfy_table::Table::new();
    table.set_header(["function", "cold init ms", "first ms", "warm ms", "peak RSS MiB", "binary MiB"]);
    for r in &rows {
        table.add_row([
            r["function"].as_str().unwrap_or_default().to_string(),
            r["cold_init_ms"].to_string(),
            r["first_invocation_ms"].to_string(),
            r["warm_invocation_ms"].to_string(),
            r["peak_rss_mib"].to_string(),
            r["binary_mib"].to_string(),
        ]);
    }
    println!("{table}\n(medians of {runs} fresh processes each; peak RSS the largest)");
}
