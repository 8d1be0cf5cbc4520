//! The API budget (`api_budget_per_day`) over HTTP on the local runner, against the
//! stateful ConnectWise simulator: an import needing more calls than the budget stops with
//! its work waiting (logged with the time it resumes, listed by the health view, its ETA
//! pushed past the window), the calls counted are the requests the simulator received, and
//! once the clock has moved past the window the import resumes and ends at the ground
//! truth, nothing duplicated.

use crate::common::http;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tandem_connectors::http::{RetryPolicy, Settings};
use tandem_domain::job::JobStatus;
use tandem_domain::ports::{Clock, ShiftedClock};
use tandem_domain::usecases::{connections, import};
use tandem_domain::{JobId, System, TenantId, Timestamp};
use tandem_embedded::QueueConfig;
use tandem_local::runtime::LocalRuntime;
use tandem_local::sims::{self, Scale};
use tandem_local::{report, server, setup};
use tandem_sim::SimConfig;

fn settings() -> Settings {
    Settings {
        retry: RetryPolicy { max_attempts: 2, base_delay: Duration::from_millis(5), ..RetryPolicy::default() },
        pacing: tandem_connectors::Pacing::Off,
        ..Settings::default()
    }
}

/// Log lines written on this test's thread, for asserting on them.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn at(v: &Value) -> Timestamp {
    Timestamp::parse(v.as_str().unwrap_or_else(|| panic!("a time: {v}"))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_used_up_makes_an_import_wait_until_the_window_passes_and_it_then_finishes_without_duplicates() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let sim = sims::start(System::ConnectWise, &Scale::new(5, 10), SimConfig::default(), 0).await.unwrap();
    let mut rt = LocalRuntime::new(None, QueueConfig::default(), settings()).unwrap();
    let clock = Arc::new(ShiftedClock::default());
    rt.svc.clock = clock.clone();
    let t = TenantId::parse(server::DEFAULT_TENANT).unwrap();
    setup::seed_crm(&rt.svc, &t, &sim.crm_seed).await.unwrap();
    connections::save_credentials(&rt.svc, &t, sim.system, &sim.credentials).await.unwrap();
    setup::map_typically(&rt.svc, &t, sim.system, &sim.typical).await.unwrap();
    let (addr, _server) = server::serve(rt.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{addr}");

    let (status, body) =
        http::call(&base, "PUT", "/connections/connectwise/settings", Some(json!({"api_budget_per_day": 5}))).await;
    assert_eq!((status, &body["api_budget_per_day"]), (200, &json!(5)), "{body}");
    let before = sim.handle().stats().requests;
    let (status, job) =
        http::call(&base, "POST", "/connections/connectwise/imports", Some(json!({"stages": "all"}))).await;
    assert_eq!(status, 202, "{job}");
    let job_id = JobId::from_raw(job["id"].as_str().unwrap());

    // Work the queue on this thread (its log lines are captured) until the import waits.
    let mut health = Value::Null;
    for _ in 0..400 {
        rt.work_once(Duration::from_millis(20)).await.unwrap();
        let (_, h) = http::call(&base, "GET", "/connections/connectwise/health", None).await;
        if h["waiting"].as_array().is_some_and(|w| !w.is_empty()) {
            health = h;
            break;
        }
    }
    assert!(!health.is_null(), "the import never waited");
    let used = health["api_calls"]["used_24h"].as_u64().unwrap();
    assert!(used >= 5, "{health}");
    assert_eq!(used, sim.handle().stats().requests - before, "every request the simulator received was counted");
    assert_eq!((&health["api_calls"]["budget_per_day"], &health["api_calls"]["remaining"]), (&json!(5), &json!(0)));
    let free = at(&health["api_calls"]["resumes_at"]);
    let now = clock.now();
    assert!(free > now && free <= now.plus_seconds(24 * 3600), "{free} after {now}");
    let waiting = &health["waiting"][0];
    assert_eq!(waiting["work"], "import_page", "{waiting}");
    assert!(
        waiting["reason"].as_str().unwrap().contains("the API budget of 5 calls per day for ConnectWise is used up")
    );
    assert!(waiting["reason"].as_str().unwrap().contains(&format!("resumes at {free}")), "{waiting}");
    let lines = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    let wait_line =
        lines.lines().find(|l| l.contains("the work waits and resumes")).unwrap_or_else(|| panic!("{lines}"));
    assert!(wait_line.contains("resume_at=") && wait_line.contains(&format!("resumes at {free}")), "{wait_line}");

    // The job shows it runs, with an ETA past the window (or why there is none).
    let (_, view) = http::call(&base, "GET", &format!("/jobs/{job_id}"), None).await;
    assert_eq!(view["status"]["state"], "running", "{view}");
    let eta = at(&view["eta"]);
    assert!(eta >= now.plus_seconds(23 * 3600), "the calls left wait for the window: {eta} ({view})");

    // Nothing runs while the budget is used up: the simulator hears nothing more.
    let requests = sim.handle().stats().requests;
    for _ in 0..5 {
        rt.work_once(Duration::from_millis(20)).await.unwrap();
    }
    assert_eq!(sim.handle().stats().requests, requests, "no call while waiting");
    assert_eq!(import::job(&rt.svc, &t, &job_id).await.unwrap().status, JobStatus::Running);

    // A day later the held work is due: the import resumes and finishes.
    clock.advance(25 * 3600);
    assert!(rt.embedded().unwrap().queue.release_held() >= 1, "the waiting resume was held back");
    let done = tokio::time::timeout(Duration::from_secs(120), rt.run_until_done(&t, &job_id, &|_| {}))
        .await
        .expect("the job ends")
        .unwrap();
    assert_eq!(done.status, JobStatus::Completed, "{:?}", done.status);
    assert_eq!(report::differences(&report::job_counts(&done), &sim.expected), Vec::<String>::new());
    assert!(rt.embedded().unwrap().queue.dead_letters().is_empty(), "nothing dead-lettered");
    let (_, health) = http::call(&base, "GET", "/connections/connectwise/health", None).await;
    assert_eq!(health["waiting"], json!([]), "{health}");
    assert_eq!(
        health["api_calls"]["used_24h"].as_u64().unwrap(),
        sim.handle().stats().requests - requests,
        "yesterday's calls left the window; today's are counted"
    );
    assert_eq!(
        health["counts"]["last_24h"]["failed"],
        json!(0),
        "nothing failed, nothing imported twice: {}",
        health["counts"]
    );
}

#[tokio::test]
async fn settings_refuse_a_bad_budget_by_name_and_null_removes_it() {
    let sim = sims::start(System::ConnectWise, &Scale::new(2, 3), SimConfig::default(), 0).await.unwrap();
    let rt = LocalRuntime::new(None, QueueConfig::default(), settings()).unwrap();
    let t = TenantId::parse(server::DEFAULT_TENANT).unwrap();
    connections::save_credentials(&rt.svc, &t, sim.system, &sim.credentials).await.unwrap();
    let (addr, _server) = server::serve(rt.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{addr}");
    let path = "/connections/connectwise/settings";
    for bad in [json!(0), json!(2.5), json!(-1), json!("100")] {
        let (status, body) = http::call(&base, "PUT", path, Some(json!({ "api_budget_per_day": bad }))).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("api_budget_per_day"), "{body}");
    }
    let (_, body) = http::call(&base, "GET", path, None).await;
    assert_eq!(body["api_budget_per_day"], Value::Null, "a refused change changed nothing");
    let (status, body) = http::call(&base, "PUT", path, Some(json!({"api_budget_per_day": 1000}))).await;
    assert_eq!((status, &body["api_budget_per_day"]), (200, &json!(1000)), "{body}");
    let (status, body) = http::call(&base, "PUT", path, Some(json!({"api_budget_per_day": null}))).await;
    assert_eq!((status, &body["api_budget_per_day"]), (200, &Value::Null), "{body}");
}

#[tokio::test]
async fn a_route_that_calls_the_system_answers_429_with_the_resume_time_while_the_budget_is_used_up() {
    let sim = sims::start(System::ConnectWise, &Scale::new(2, 3), SimConfig::default(), 0).await.unwrap();
    let rt = LocalRuntime::new(None, QueueConfig::default(), settings()).unwrap();
    let t = TenantId::parse(server::DEFAULT_TENANT).unwrap();
    connections::save_credentials(&rt.svc, &t, sim.system, &sim.credentials).await.unwrap();
    let (addr, _server) = server::serve(rt.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{addr}");
    let (status, _) =
        http::call(&base, "PUT", "/connections/connectwise/settings", Some(json!({"api_budget_per_day": 1}))).await;
    assert_eq!(status, 200);
    let options = "/connections/connectwise/options/company_types";
    let (status, body) = http::call(&base, "GET", options, None).await;
    assert_eq!(status, 200, "the first call is within the budget: {body}");
    let requests = sim.handle().stats().requests;
    let resp = reqwest::Client::new()
        .get(format!("{base}{options}"))
        .header(server::TENANT_HEADER, server::DEFAULT_TENANT)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    let retry_after: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((60..=24 * 3600).contains(&retry_after), "{retry_after}");
    let body: Value = resp.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("API budget of 1 calls per day") && message.contains("resumes at"), "{message}");
    assert_eq!(sim.handle().stats().requests, requests, "the refused route called nothing");
}
