//! Import benchmark, per system: records per second for a full import of a generated
//! tenant (about 100,000 records for ConnectWise by default) from the simulator with no
//! latency, on the embedded adapters — beside the same records parsed by bare
//! `serde_json` into the connector's wire structs, and their ratio. For ConnectWise the
//! parsed pages are the very pages its API served; for the others, pages of the same
//! records as the generator made them.
//!
//! It also counts the store round trips of the import (per record), and imports a smaller
//! tenant (`--latency-companies`, default 300) with 5 ms added to every store round trip,
//! as on DynamoDB, reporting records per second there.
//!
//! `cargo bench -p tandem-local --bench import [-- --system S] [--companies N] [--latency-companies N] [--page-size N]`

#![allow(clippy::unwrap_used)] // a benchmark: a failed set-up step should stop it

use base64::Engine;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::{Duration, Instant};

use tandem_connectors::http::Settings;
use tandem_connectors::{connectwise, halo, salesforce, syncro};
use tandem_domain::usecases::connections;
use tandem_domain::usecases::import::{self, AllStages, StageSelection};
use tandem_domain::{Stage, System, TenantId};
use tandem_embedded::QueueConfig;
use tandem_local::report;
use tandem_local::runtime::LocalRuntime;
use tandem_local::setup;
use tandem_local::sims::{self, Scale};
use tandem_sim::SimConfig;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The list pages of every ConnectWise stage, as its API served them.
async fn connectwise_pages(base: &str, creds: &Value, page_size: usize) -> Vec<(Stage, Vec<u8>)> {
    let http = reqwest::Client::new();
    let s = |k: &str| creds[k].as_str().unwrap_or_default().to_string();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}+{}:{}",
        s("company_id"),
        s("public_key"),
        s("private_key")
    ));
    let mut pages = Vec::new();
    for stage in System::ConnectWise.stages() {
        let mut page = 1;
        loop {
            let url = format!(
                "{base}/v4_6_release/apis/3.0{}?page={page}&pageSize={page_size}&orderBy=id%20asc",
                connectwise::stage_path(*stage)
            );
            let resp = http
                .get(&url)
                .header("authorization", format!("Basic {basic}"))
                .header("clientId", s("client_id"))
                .send()
                .await
                .unwrap();
            let has_next =
                resp.headers().get("link").and_then(|v| v.to_str().ok()).is_some_and(|l| l.contains("rel=\"next\""));
            pages.push((*stage, resp.bytes().await.unwrap().to_vec()));
            if !has_next {
                break;
            }
            page += 1;
        }
    }
    pages
}

/// Pages (bare JSON arrays) of the generator's records of each stage.
fn generated_pages(system: System, scale: &Scale, page_size: usize) -> Vec<(Stage, Vec<u8>)> {
    let by_stage: Vec<(Stage, Vec<Value>)> = match system {
        System::Halo => {
            let t = tandem_sim::halo::Tenant::generate(&tandem_sim::halo::GenConfig::with_companies(
                scale.seed,
                scale.companies,
            ));
            [
                (Stage::Users, "agent"),
                (Stage::Companies, "client"),
                (Stage::Contacts, "users"),
                (Stage::Opportunities, "opportunities"),
                (Stage::Activities, "crmnote"),
            ]
            .iter()
            .map(|(s, r)| (*s, t.records(r).to_vec()))
            .collect()
        }
        System::Syncro => {
            let t = tandem_sim::syncro::Tenant::generate(&tandem_sim::syncro::GenConfig::with_companies(
                scale.seed,
                scale.companies,
            ));
            [
                (Stage::Users, "users"),
                (Stage::Companies, "customers"),
                (Stage::Contacts, "contacts"),
                (Stage::Opportunities, "leads"),
            ]
            .iter()
            .map(|(s, r)| (*s, t.records(r).to_vec()))
            .collect()
        }
        System::Salesforce => {
            let t = tandem_sim::salesforce::Tenant::generate(&tandem_sim::salesforce::GenConfig::with_companies(
                scale.seed,
                scale.companies,
            ));
            [
                (Stage::Users, "User"),
                (Stage::Companies, "Account"),
                (Stage::Contacts, "Contact"),
                (Stage::Opportunities, "Opportunity"),
                (Stage::Activities, "Task"),
            ]
            .iter()
            .map(|(s, r)| (*s, t.records(r)))
            .collect()
        }
        System::ConnectWise => Vec::new(),
    };
    by_stage
        .into_iter()
        .flat_map(|(stage, records)| {
            records
                .chunks(page_size.max(1))
                .map(|chunk| (stage, serde_json::to_vec(chunk).unwrap()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn count<T: DeserializeOwned>(body: &[u8]) -> usize {
    serde_json::from_slice::<Vec<T>>(body).unwrap().len()
}

/// Bare `serde_json` into the system's wire structs; returns records parsed.
fn bare_parse(system: System, pages: &[(Stage, Vec<u8>)]) -> usize {
    use Stage::*;
    pages
        .iter()
        .map(|(stage, body)| match (system, stage) {
            (System::ConnectWise, Users) => count::<connectwise::models::Member>(body),
            (System::ConnectWise, Companies) => count::<connectwise::models::Company>(body),
            (System::ConnectWise, Contacts) => count::<connectwise::models::Contact>(body),
            (System::ConnectWise, Solutions) => count::<connectwise::models::CatalogItem>(body),
            (System::ConnectWise, Activities) => count::<connectwise::models::Activity>(body),
            (System::ConnectWise, Opportunities) => count::<connectwise::models::Opportunity>(body),
            (System::Halo, Users) => count::<halo::models::Agent>(body),
            (System::Halo, Companies) => count::<halo::models::Client>(body),
            (System::Halo, Contacts) => count::<halo::models::User>(body),
            (System::Halo, Opportunities) => count::<halo::models::Opportunity>(body),
            (System::Halo, Activities) => count::<halo::models::CrmNote>(body),
            (System::Syncro, Users) => count::<syncro::models::User>(body),
            (System::Syncro, Companies) => count::<syncro::models::Customer>(body),
            (System::Syncro, Contacts) => count::<syncro::models::Contact>(body),
            (System::Syncro, Opportunities) => count::<syncro::models::Lead>(body),
            (System::Salesforce, Users) => count::<salesforce::models::User>(body),
            (System::Salesforce, Companies) => count::<salesforce::models::Account>(body),
            (System::Salesforce, Contacts) => count::<salesforce::models::Contact>(body),
            (System::Salesforce, Opportunities) => count::<salesforce::models::Opportunity>(body),
            (System::Salesforce, Activities) => count::<salesforce::models::Task>(body),
            (s, st) => panic!("{s} has no {st} pages"),
        })
        .sum()
}

/// The fastest of `runs` timings of `f`.
fn best_of<F: FnMut() -> usize>(runs: usize, mut f: F) -> (usize, Duration) {
    let mut best = Duration::MAX;
    let mut n = 0;
    for _ in 0..runs {
        let t = Instant::now();
        n = std::hint::black_box(f());
        best = best.min(t.elapsed());
    }
    (n, best)
}

struct Row {
    system: System,
    records: usize,
    import: Duration,
    parsed: usize,
    parse: Duration,
    /// Store round trips of the full import.
    store_calls: u64,
    /// The smaller import with latency added to every store round trip.
    slow: Imported,
}

/// One import of a generated tenant, checked against its ground truth.
struct Imported {
    records: usize,
    time: Duration,
    store_calls: u64,
}

async fn import_tenant(
    system: System,
    scale: &Scale,
    page_size: usize,
    latency: Duration,
) -> (Imported, sims::RunningSim) {
    let sim = sims::start(system, scale, SimConfig::default(), 0).await.unwrap();
    if let Some(h) = sim.syncro() {
        h.set_requests_per_minute(None); // measure Tandem, not Syncro's 180/min limit
    }
    let mut rt = LocalRuntime::new(
        None,
        QueueConfig::default(),
        Settings { page_size: page_size as u32, pacing: tandem_connectors::Pacing::Off, ..Settings::default() },
    )
    .unwrap();
    let tenant = TenantId::parse("bench").unwrap();
    setup::seed_crm(&rt.svc, &tenant, &sim.crm_seed).await.unwrap();
    connections::save_credentials(&rt.svc, &tenant, system, &sim.credentials).await.unwrap();
    setup::map_typically(&rt.svc, &tenant, system, &sim.typical).await.unwrap();

    let store = rt.meter_store(latency);
    let started = Instant::now();
    let job = import::start_import(&rt.svc, &tenant, system, StageSelection::All(AllStages::All)).await.unwrap();
    let job = rt.run_until_done(&tenant, &job.id, &|_| {}).await.unwrap();
    let time = started.elapsed();
    let diffs = report::differences(&report::job_counts(&job), &sim.expected);
    assert!(diffs.is_empty(), "{system}: the import differs from the ground truth: {diffs:?}");
    (Imported { records: sim.records, time, store_calls: store.calls() }, sim)
}

async fn bench(system: System, companies: usize, slow_companies: usize, page_size: usize) -> Row {
    let scale = Scale::new(42, companies);
    let (slow, slow_sim) =
        import_tenant(system, &Scale::new(42, slow_companies), page_size, Duration::from_millis(STORE_LATENCY_MS))
            .await;
    slow_sim.shutdown().await;
    let (full, sim) = import_tenant(system, &scale, page_size, Duration::ZERO).await;
    let (import_time, store_calls) = (full.time, full.store_calls);

    let pages = match system {
        System::ConnectWise => connectwise_pages(&sim.base_url, &sim.credentials, page_size).await,
        other => generated_pages(other, &scale, page_size),
    };
    let (parsed, parse) = best_of(3, || bare_parse(system, &pages));
    let records = sim.records;
    sim.shutdown().await;
    Row { system, records, import: import_time, parsed, parse, store_calls, slow }
}

/// The wait added to every store round trip in the second import: DynamoDB's typical
/// single-digit-millisecond latency.
const STORE_LATENCY_MS: u64 = 5;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let page_size = arg("--page-size").and_then(|v| v.parse().ok()).unwrap_or(1000usize).clamp(1, 1000);
    let systems: Vec<System> = match arg("--system") {
        Some(s) => vec![s.parse().unwrap()],
        None => sims::SIMULATED.to_vec(),
    };
    let mut rows = Vec::new();
    for system in systems {
        // ConnectWise by default at about 100,000 records; the others at the same company count.
        let companies = arg("--companies").and_then(|v| v.parse().ok()).unwrap_or(18_000);
        let slow = arg("--latency-companies").and_then(|v| v.parse().ok()).unwrap_or(300);
        eprintln!("{system}: {companies} companies, and {slow} with {STORE_LATENCY_MS} ms per store call...");
        rows.push(bench(system, companies, slow, page_size).await);
    }
    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "{:<12} {:>9} {:>10} {:>14} {:>16} {:>7} {:>12} {:>14} {:>16}",
        "system",
        "records",
        "import s",
        "import rec/s",
        "bare parse rec/s",
        "ratio",
        "store/rec",
        "slow records",
        "rec/s at 5 ms"
    );
    for r in &rows {
        let (import_rate, parse_rate) = (rate(r.records, r.import), rate(r.parsed, r.parse));
        println!(
            "{:<12} {:>9} {:>10.3} {:>14.0} {:>16.0} {:>6.1}x {:>12.2} {:>14} {:>16.1}",
            r.system.as_str(),
            r.records,
            r.import.as_secs_f64(),
            import_rate,
            parse_rate,
            parse_rate / import_rate,
            r.store_calls as f64 / r.records.max(1) as f64,
            r.slow.records,
            rate(r.slow.records, r.slow.time),
        );
    }
    if let Some(mib) = peak_rss_mib() {
        println!("peak RSS of the whole process (simulators included): {mib:.0} MiB");
    }
}
