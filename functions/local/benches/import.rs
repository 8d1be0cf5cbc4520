//! Import benchmark: records per second for a full ConnectWise import of a generated
//! tenant (at least 100,000 records by default) from the simulator with no latency, on the
//! embedded adapters — beside the same list pages parsed by bare `serde_json` into the
//! connector's wire structs, and their ratio.
//!
//! `cargo bench -p tandem-local --bench import [-- --companies N] [--page-size N]`

#![allow(clippy::unwrap_used)] // a benchmark: a failed set-up step should stop it

use base64::Engine;
use std::time::{Duration, Instant};

use tandem_connectors::connectwise::{mapping, models, stage_path};
use tandem_connectors::http::Settings;
use tandem_domain::usecases::connections;
use tandem_domain::usecases::import::{self, AllStages, StageSelection};
use tandem_domain::{Stage, System, TenantId};
use tandem_embedded::QueueConfig;
use tandem_local::report;
use tandem_local::runtime::LocalRuntime;
use tandem_local::setup;
use tandem_sim::connectwise::{Credentials, GenConfig, SimConfig, Simulator, Tenant};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Every list page of every stage, as the server sent them.
async fn raw_pages(api_url: &str, creds: &Credentials, page_size: usize) -> Vec<(Stage, Vec<u8>)> {
    let http = reqwest::Client::new();
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}+{}:{}", creds.company_id, creds.public_key, creds.private_key));
    let mut pages = Vec::new();
    for stage in System::ConnectWise.stages() {
        let mut page = 1;
        loop {
            let url = format!("{api_url}{}?page={page}&pageSize={page_size}&orderBy=id%20asc", stage_path(*stage));
            let resp = http
                .get(&url)
                .header("authorization", format!("Basic {basic}"))
                .header("clientId", &creds.client_id)
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

fn bare_parse(pages: &[(Stage, Vec<u8>)]) -> usize {
    let mut n = 0;
    for (stage, body) in pages {
        n += match stage {
            Stage::Users => serde_json::from_slice::<Vec<models::Member>>(body).unwrap().len(),
            Stage::Companies => serde_json::from_slice::<Vec<models::Company>>(body).unwrap().len(),
            Stage::Contacts => serde_json::from_slice::<Vec<models::Contact>>(body).unwrap().len(),
            Stage::Solutions => serde_json::from_slice::<Vec<models::CatalogItem>>(body).unwrap().len(),
            Stage::Activities => serde_json::from_slice::<Vec<models::Activity>>(body).unwrap().len(),
            Stage::Opportunities => serde_json::from_slice::<Vec<models::Opportunity>>(body).unwrap().len(),
        };
    }
    n
}

fn connector_parse(pages: &[(Stage, Vec<u8>)]) -> usize {
    pages.iter().map(|(stage, body)| mapping::parse_page(*stage, body).unwrap().len()).sum()
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let companies = arg("--companies", 18_000);
    let page_size = arg("--page-size", 1000).clamp(1, 1000);
    let data = Tenant::generate(&GenConfig::with_companies(42, companies));
    let records = data.record_count();
    let expected = data.expected().clone();
    let seed = data.crm_seed().clone();
    let sim = Simulator::start(data, SimConfig::default(), 0).await.unwrap();
    eprintln!("tenant: {companies} companies, {records} external records; pages of {page_size}");

    let rt = LocalRuntime::new(
        None,
        QueueConfig::default(),
        Settings { page_size: page_size as u32, ..Settings::default() },
    )
    .unwrap();
    let tenant = TenantId::parse("bench").unwrap();
    setup::seed_crm(&rt.svc, &tenant, &seed).await.unwrap();
    connections::save_credentials(&rt.svc, &tenant, System::ConnectWise, &setup::credentials_body(&sim.credentials()))
        .await
        .unwrap();
    setup::map_typically(
        &rt.svc,
        &tenant,
        System::ConnectWise,
        &tandem_local::sims::typical(System::ConnectWise).unwrap(),
    )
    .await
    .unwrap();

    let started = Instant::now();
    let job =
        import::start_import(&rt.svc, &tenant, System::ConnectWise, StageSelection::All(AllStages::All)).await.unwrap();
    let job = rt.run_until_done(&tenant, &job.id, &|_| {}).await.unwrap();
    let import_time = started.elapsed();
    let diffs = report::differences(&report::job_counts(&job), &expected);
    assert!(diffs.is_empty(), "the import differs from the ground truth: {diffs:?}");

    let pages = raw_pages(&sim.api_url(), &sim.credentials(), page_size).await;
    let bytes: usize = pages.iter().map(|(_, b)| b.len()).sum();
    let (parsed, bare_time) = best_of(3, || bare_parse(&pages));
    let (mapped, mapped_time) = best_of(3, || connector_parse(&pages));
    assert_eq!(parsed, records);
    assert_eq!(mapped, records);
    sim.shutdown().await;

    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    let import_rate = rate(records, import_time);
    let bare_rate = rate(parsed, bare_time);
    println!(
        "ConnectWise import benchmark ({records} records, {} pages, {:.1} MiB of JSON)",
        pages.len(),
        bytes as f64 / 1048576.0
    );
    println!("{:<52} {:>10} {:>14}", "what", "seconds", "records/s");
    println!(
        "{:<52} {:>10.3} {:>14.0}",
        "full import (HTTP, forecasts, rules, store, log)",
        import_time.as_secs_f64(),
        import_rate
    );
    println!(
        "{:<52} {:>10.3} {:>14.0}",
        "bare serde_json into wire structs (same pages)",
        bare_time.as_secs_f64(),
        bare_rate
    );
    println!(
        "{:<52} {:>10.3} {:>14.0}",
        "connector parse: wire structs -> domain records",
        mapped_time.as_secs_f64(),
        rate(mapped, mapped_time)
    );
    println!("ratio bare parse / full import: {:.1}x", bare_rate / import_rate);
    if let Some(mib) = peak_rss_mib() {
        println!("peak RSS of the whole process (simulator included): {mib:.0} MiB");
    }
}
