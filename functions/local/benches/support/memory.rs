//! The import benchmark's memory section: Tandem's own peak RSS importing a tenant, with the
//! simulator in another process so that its memory is not counted. For each tenant size the
//! bench starts `tandem sim` (the release binary) and runs the import in a child process
//! (this bench binary again, told so by [`CHILD_ENV`]) on a fresh data directory: the
//! embedded SQLite store and the durable queue, as `tandem serve --data-dir` runs. The
//! child reports its peak RSS (`VmHWM`), the import's time and record counts, the size of
//! `tandem.db`, and how long reopening the data directory then takes (the median of five;
//! start-up time, which must not grow with the records stored). The simulator's own peak is read from
//! `/proc/<pid>/status` before it is stopped. The CRM starts empty, so every record is
//! created: the heaviest first import.

use serde_json::{Value, json};
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tandem_connectors::Pacing;
use tandem_connectors::http::Settings;
use tandem_domain::usecases::connections;
use tandem_domain::usecases::import::{self, AllStages, StageSelection};
use tandem_domain::{System, TenantId};
use tandem_embedded::QueueConfig;
use tandem_local::report;
use tandem_local::runtime::LocalRuntime;
use tandem_local::{setup, sims};

/// Set (to the child's instructions, JSON) when this binary runs as the importing child.
pub const CHILD_ENV: &str = "TANDEM_BENCH_MEMORY_CHILD";

/// One tenant size measured.
pub struct Measured {
    pub companies: usize,
    /// Records the import processed (every outcome).
    pub records: u64,
    pub failed: u64,
    pub tandem_mib: f64,
    pub sim_mib: f64,
    pub import: Duration,
    pub reopen: Duration,
    pub db_mib: f64,
}

/// `VmHWM` of `/proc/<pid>/status` in MiB (`self` for this process).
pub fn peak_rss_mib(pid: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Measures an import of `companies` companies of `system` (see the module docs).
pub fn measure(system: System, companies: usize) -> Measured {
    let mut sim = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["sim", system.as_str(), "--companies", &companies.to_string(), "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the tandem binary starts a simulator");
    let mut first = String::new();
    BufReader::new(sim.stdout.take().expect("piped")).read_line(&mut first).expect("the simulator says where it is");
    let started: Value = serde_json::from_str(&first).expect("the simulator's --json line");
    let spec = json!({ "system": system, "credentials": started["credentials"] });
    let out = Command::new(std::env::current_exe().expect("this bench's path"))
        .env(CHILD_ENV, spec.to_string())
        .stderr(Stdio::inherit())
        .output()
        .expect("the importing child runs");
    let sim_mib = peak_rss_mib(&sim.id().to_string()).unwrap_or(f64::NAN);
    let _ = sim.kill();
    let _ = sim.wait();
    assert!(out.status.success(), "the importing child failed: {}", String::from_utf8_lossy(&out.stdout));
    let text = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(text.lines().last().unwrap_or_default()).expect("the child's report");
    let secs = |k: &str| Duration::from_secs_f64(report[k].as_f64().unwrap_or_default());
    Measured {
        companies,
        records: report["records"].as_u64().unwrap_or_default(),
        failed: report["failed"].as_u64().unwrap_or_default(),
        tandem_mib: report["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
        sim_mib,
        import: secs("import_s"),
        reopen: secs("reopen_s"),
        db_mib: report["db_mib"].as_f64().unwrap_or(f64::NAN),
    }
}

/// The child: imports as told by `spec` on a fresh data directory, reopens it, and prints
/// its report as one JSON line.
pub async fn child(spec: &str) {
    let spec: Value = serde_json::from_str(spec).expect("the parent's instructions");
    let system: System = spec["system"].as_str().and_then(|s| s.parse().ok()).expect("a system");
    let dir = tempfile::tempdir().expect("a data directory");
    let settings = || Settings { pacing: Pacing::Off, ..Settings::default() };
    let tenant = TenantId::parse("bench").expect("a tenant id");
    let (job, import_time) = {
        let rt = LocalRuntime::new(Some(dir.path()), QueueConfig::default(), settings()).expect("the runtime opens");
        connections::save_credentials(&rt.svc, &tenant, system, &spec["credentials"]).await.expect("credentials");
        let typical = sims::typical(system).expect("a simulated system");
        setup::map_typically(&rt.svc, &tenant, system, &typical).await.expect("the typical mapping");
        let started = Instant::now();
        let job =
            import::start_import(&rt.svc, &tenant, system, StageSelection::All(AllStages::All)).await.expect("start");
        let job = rt.run_until_done(&tenant, &job.id, &|_| {}).await.expect("the import ends");
        (job, started.elapsed())
    };
    // The median of five reopens (open, then the migration check a start runs).
    let mut reopens = Vec::new();
    for _ in 0..5 {
        let reopened = Instant::now();
        let rt = LocalRuntime::new(Some(dir.path()), QueueConfig::default(), settings()).expect("the runtime reopens");
        rt.migrate().await.expect("nothing to migrate");
        reopens.push(reopened.elapsed());
    }
    reopens.sort();
    let reopen = reopens[reopens.len() / 2];
    let counts = report::job_counts(&job);
    let total = |outcome: Option<&str>| -> u64 {
        counts
            .values()
            .flat_map(|c| c.iter())
            .filter(|(o, _)| outcome.is_none_or(|w| o.as_str() == w))
            .map(|(_, n)| *n)
            .sum()
    };
    let db = std::fs::metadata(dir.path().join(tandem_embedded::sqlite::DB_FILE)).map(|m| m.len()).unwrap_or_default();
    println!(
        "{}",
        json!({
            "records": total(None),
            "failed": total(Some("failed")),
            "peak_rss_mib": peak_rss_mib("self"),
            "import_s": import_time.as_secs_f64(),
            "reopen_s": reopen.as_secs_f64(),
            "db_mib": db as f64 / 1_048_576.0,
        })
    );
}
