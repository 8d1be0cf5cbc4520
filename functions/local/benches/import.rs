//! Import benchmark: one run covers every simulated system (tandem-sim's registry) and
//! reports, per system:
//!
//! - records per second of a full import of a generated tenant (`--companies`, default
//!   18,000: about 100,000 records for ConnectWise) from a simulator with no latency, on the
//!   embedded adapters, beside the same records parsed by bare `serde_json` into the
//!   connector's wire structs (pages of the generator's records at the page size the import
//!   used), and their ratio (import / parse; target at least 0.25);
//! - the store round trips of that import per record, and records per second of a smaller
//!   import (`--latency-companies`, default 300) with 5 ms added to every store round trip,
//!   as on DynamoDB;
//! - the requests the full import made to the vendor beside the floor: the fewest a first
//!   import can make (every list at the largest page the vendor allows plus the per-record
//!   reads no client can avoid, such as ConnectWise's forecasts; tandem-sim's
//!   `RequestFloor` documents each system's);
//! - with the simulator's rate limit on (`--rate`, default 20 requests per second, the
//!   vendor's own limits lifted so one limit applies to all), an import asking for small
//!   pages (`--paced-page-size`, default 200, Salesforce's smallest batch) of the smallest
//!   tenant whose floor at that size is at least `--paced-requests` (default 100) requests:
//!   its wall time beside (requests - 429s) / rate (target at most 1.1), and the 429s it
//!   was answered.
//!
//! Every import is checked against the simulator's ground truth.
//!
//! Then, for ConnectWise at two tenant sizes (`--memory-companies A,B`, default 3,000 and
//! 18,000: about 17,000 and 100,000 records), Tandem's own peak RSS importing on a data
//! directory with the simulator in another process, and the time to reopen that directory
//! (see `support/memory.rs`). `--memory-only` runs this section alone.
//!
//! `cargo bench -p tandem-local --bench import [-- --system S] [--companies N] [--latency-companies N]
//!  [--paced-requests N] [--paced-page-size N] [--rate N] [--page-size N] [--memory-companies A,B] [--memory-only]`

#![allow(clippy::unwrap_used)] // a benchmark: a failed set-up step should stop it

use serde::de::DeserializeOwned;
use std::time::{Duration, Instant};

use tandem_connectors::http::Settings;
use tandem_connectors::{Pacing, Rate};
use tandem_connectors::{connectwise, halo, salesforce, syncro};
use tandem_domain::System;
use tandem_domain::TenantId;
use tandem_domain::usecases::connections;
use tandem_domain::usecases::import::{self, AllStages, StageSelection};
use tandem_embedded::QueueConfig;
use tandem_local::report;
use tandem_local::runtime::LocalRuntime;
use tandem_local::setup;
use tandem_local::sims::{self, Scale};
use tandem_sim::{RawList, SimConfig, SimulatedSystem};

#[path = "support/args.rs"]
mod args;
use args::{arg, arg_or};
#[path = "support/memory.rs"]
mod memory;

/// Parses one page (a bare JSON array) into a wire struct; returns records parsed.
type Parse = fn(&[u8]) -> usize;

fn count<T: DeserializeOwned>(body: &[u8]) -> usize {
    serde_json::from_slice::<Vec<T>>(body).unwrap().len()
}

/// Which connector wire struct reads which simulator list: (system, list, parser). The one
/// per-system table left here, because the wire structs belong to tandem-connectors, which
/// tandem-sim does not know.
const WIRE: &[(&str, &str, Parse)] = &[
    ("connectwise", "system/members", count::<connectwise::models::Member>),
    ("connectwise", "company/companies", count::<connectwise::models::Company>),
    ("connectwise", "company/contacts", count::<connectwise::models::Contact>),
    ("connectwise", "procurement/catalog", count::<connectwise::models::CatalogItem>),
    ("connectwise", "sales/activities", count::<connectwise::models::Activity>),
    ("connectwise", "sales/opportunities", count::<connectwise::models::Opportunity>),
    ("halo", "agent", count::<halo::models::Agent>),
    ("halo", "client", count::<halo::models::Client>),
    ("halo", "users", count::<halo::models::User>),
    ("halo", "opportunities", count::<halo::models::Opportunity>),
    ("halo", "crmnote", count::<halo::models::CrmNote>),
    ("halo", "actions", count::<halo::models::Action>),
    ("syncro", "users", count::<syncro::models::User>),
    ("syncro", "customers", count::<syncro::models::Customer>),
    ("syncro", "contacts", count::<syncro::models::Contact>),
    ("syncro", "leads", count::<syncro::models::Lead>),
    ("salesforce", "User", count::<salesforce::models::User>),
    ("salesforce", "Account", count::<salesforce::models::Account>),
    ("salesforce", "Contact", count::<salesforce::models::Contact>),
    ("salesforce", "Opportunity", count::<salesforce::models::Opportunity>),
    ("salesforce", "Task", count::<salesforce::models::Task>),
    ("salesforce", "Event", count::<salesforce::models::Event>),
];

/// Every list's pages with its parser.
fn parse_jobs(sim: &dyn SimulatedSystem, lists: Vec<RawList>, page_size: usize) -> Vec<(Parse, Vec<u8>)> {
    let page = sim.page_sizes().effective(page_size);
    lists
        .into_iter()
        .flat_map(|list| {
            let parse = WIRE
                .iter()
                .find(|(s, l, _)| *s == sim.name() && *l == list.list)
                .map(|(_, _, p)| *p)
                .unwrap_or_else(|| panic!("no wire struct reads {} {}", sim.name(), list.list));
            list.pages(page).into_iter().map(move |body| (parse, body))
        })
        .collect()
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

/// One import of a generated tenant, checked against its ground truth.
struct Imported {
    records: usize,
    time: Duration,
    store_calls: u64,
    /// Requests the simulator received during the import, 429s included.
    requests: u64,
    /// Requests answered 429.
    throttled: u64,
    /// The fewest requests the import could have made at its page size.
    floor: u64,
}

/// Generates a tenant at `scale`, imports it with `latency` on every store round trip from a
/// simulator configured by `cfg` (the vendor's own limits lifted), the connectors paced at
/// the simulator's rate limit when it has one, and checks the outcome.
async fn import_tenant(system: System, scale: &Scale, page_size: usize, latency: Duration, cfg: SimConfig) -> Imported {
    let pacing = match cfg.requests_per_second {
        Some(rps) if rps > 0 => Pacing::At(Rate::per_second(rps)),
        _ => Pacing::Off,
    };
    let sim = sims::start(system, scale, cfg, 0).await.unwrap();
    sim.handle().lift_vendor_limits(); // measure Tandem against one limit, not Syncro's 180/min
    let mut rt = LocalRuntime::new(
        None,
        QueueConfig::default(),
        Settings { page_size: page_size as u32, pacing, ..Settings::default() },
    )
    .unwrap();
    let tenant = TenantId::parse("bench").unwrap();
    setup::seed_crm(&rt.svc, &tenant, &sim.crm_seed).await.unwrap();
    connections::save_credentials(&rt.svc, &tenant, system, &sim.credentials).await.unwrap();
    setup::map_typically(&rt.svc, &tenant, system, &sim.typical).await.unwrap();

    let store = rt.meter_store(latency);
    let before = sim.handle().stats();
    let started = Instant::now();
    let job = import::start_import(&rt.svc, &tenant, system, StageSelection::All(AllStages::All)).await.unwrap();
    let job = rt.run_until_done(&tenant, &job.id, &|_| {}).await.unwrap();
    let time = started.elapsed();
    let after = sim.handle().stats();
    let diffs = report::differences(&report::job_counts(&job), &sim.expected);
    assert!(diffs.is_empty(), "{system}: the import differs from the ground truth: {diffs:?}");
    let imported = Imported {
        records: sim.records,
        time,
        store_calls: store.calls(),
        requests: after.requests - before.requests,
        throttled: after.throttled - before.throttled,
        floor: sim.floor.total_at(sims::simulated(system).unwrap().page_sizes().effective(page_size)),
    };
    sim.shutdown().await;
    imported
}

struct Options {
    companies: usize,
    slow_companies: usize,
    paced_requests: u64,
    paced_page_size: usize,
    rate: u32,
    page_size: usize,
}

/// The smallest tenant (companies doubling from 25, at most 51,200) whose first import needs
/// at least `requests` requests at pages of `page_size`.
fn paced_scale(sim: &dyn SimulatedSystem, requests: u64, page_size: usize) -> Scale {
    let page = sim.page_sizes().effective(page_size);
    let mut companies = 25;
    while companies < 51_200 && sim.generate(&Scale::new(42, companies)).request_floor().total_at(page) < requests {
        companies *= 2;
    }
    Scale::new(42, companies)
}

struct Row {
    system: System,
    /// The full import, no latency.
    full: Imported,
    parsed: usize,
    parse: Duration,
    /// The smaller import with latency added to every store round trip.
    slow: Imported,
    /// The small import under the simulator's rate limit.
    paced: Imported,
}

async fn bench(system: System, o: &Options) -> Row {
    let sim = sims::simulated(system).unwrap();
    let unlimited = SimConfig::default();
    let store_latency = Duration::from_millis(STORE_LATENCY_MS);
    let slow =
        import_tenant(system, &Scale::new(42, o.slow_companies), o.page_size, store_latency, unlimited.clone()).await;
    let limited = SimConfig { requests_per_second: Some(o.rate), ..SimConfig::default() };
    let paced_scale = paced_scale(sim, o.paced_requests, o.paced_page_size);
    let paced = import_tenant(system, &paced_scale, o.paced_page_size, Duration::ZERO, limited).await;
    let scale = Scale::new(42, o.companies);
    let full = import_tenant(system, &scale, o.page_size, Duration::ZERO, unlimited).await;
    let jobs = parse_jobs(sim, sim.generate(&scale).raw_lists(), o.page_size);
    let (parsed, parse) = best_of(3, || jobs.iter().map(|(parse, body)| parse(body)).sum());
    Row { system, full, parsed, parse, slow, paced }
}

/// The wait added to every store round trip in the second import: DynamoDB's typical
/// single-digit-millisecond latency.
const STORE_LATENCY_MS: u64 = 5;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if let Ok(spec) = std::env::var(memory::CHILD_ENV) {
        return memory::child(&spec).await;
    }
    if !std::env::args().any(|a| a == "--memory-only") {
        import_section().await;
    }
    memory_section();
}

/// Tandem's own peak RSS and reopen time at two tenant sizes (see `support/memory.rs`).
fn memory_section() {
    let sizes: Vec<usize> = arg("--memory-companies")
        .unwrap_or_else(|| "3000,18000".into())
        .split(',')
        .map(|n| n.trim().parse().expect("--memory-companies A,B"))
        .collect();
    let rows: Vec<memory::Measured> = sizes
        .iter()
        .map(|&companies| {
            eprintln!("memory: connectwise, {companies} companies, the simulator in another process...");
            memory::measure(System::ConnectWise, companies)
        })
        .collect();
    println!(
        "\n{:<11} {:>9} {:>8} {:>7} {:>15} {:>12} {:>9} {:>8} {:>10}",
        "memory",
        "companies",
        "records",
        "failed",
        "Tandem peak MiB",
        "sim peak MiB",
        "import s",
        "db MiB",
        "reopen ms"
    );
    for m in &rows {
        println!(
            "{:<11} {:>9} {:>8} {:>7} {:>15.1} {:>12.1} {:>9.2} {:>8.1} {:>10.1}",
            "connectwise",
            m.companies,
            m.records,
            m.failed,
            m.tandem_mib,
            m.sim_mib,
            m.import.as_secs_f64(),
            m.db_mib,
            m.reopen.as_secs_f64() * 1000.0
        );
    }
    if let [small, large] = rows.as_slice() {
        println!(
            "large / small: records {:.2}, Tandem peak RSS {:.2}, reopen time {:.2} (Tandem alone, on a data directory; \
             target: peak under 250 MiB at ~100,000 records, reopen flat)",
            large.records as f64 / small.records.max(1) as f64,
            large.tandem_mib / small.tandem_mib,
            large.reopen.as_secs_f64() / small.reopen.as_secs_f64().max(f64::EPSILON),
        );
    }
}

/// The import section: speed, store calls, requests and pacing per system.
async fn import_section() {
    let o = Options {
        // ConnectWise by default at about 100,000 records; the others at the same company count.
        companies: arg_or("--companies", 18_000),
        slow_companies: arg_or("--latency-companies", 300),
        paced_requests: arg_or("--paced-requests", 100),
        paced_page_size: arg_or("--paced-page-size", 200usize).clamp(1, 2000),
        rate: arg_or("--rate", 20u32).max(1),
        // The largest any vendor serves (Salesforce's 2,000); each connector clamps to its own.
        page_size: arg_or("--page-size", 2000usize).clamp(1, 2000),
    };
    let systems: Vec<System> = match arg("--system") {
        Some(s) => vec![s.parse().unwrap()],
        None => sims::SIMULATED.to_vec(),
    };
    let mut rows = Vec::new();
    for system in systems {
        eprintln!(
            "{system}: {} companies; {} with {STORE_LATENCY_MS} ms per store call; >= {} requests at {} requests/s...",
            o.companies, o.slow_companies, o.paced_requests, o.rate
        );
        rows.push(bench(system, &o).await);
    }
    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "{:<11} {:>8} {:>9} {:>13} {:>13} {:>6} {:>10} {:>15}",
        "system", "records", "import s", "import rec/s", "parse rec/s", "ratio", "store/rec", "rec/s at 5 ms"
    );
    for r in &rows {
        let (import_rate, parse_rate) = (rate(r.full.records, r.full.time), rate(r.parsed, r.parse));
        println!(
            "{:<11} {:>8} {:>9.3} {:>13.0} {:>13.0} {:>6.2} {:>10.2} {:>15.1}",
            r.system.as_str(),
            r.full.records,
            r.full.time.as_secs_f64(),
            import_rate,
            parse_rate,
            import_rate / parse_rate,
            r.full.store_calls as f64 / r.full.records.max(1) as f64,
            rate(r.slow.records, r.slow.time),
        );
    }
    println!("ratio = import rec/s / bare parse rec/s (target >= 0.25)\n");
    println!(
        "{:<11} {:>9} {:>7} {:>8} | {:>8} {:>9} {:>7} {:>5} {:>7} {:>9} {:>8}",
        "system", "requests", "floor", "req/flr", "paced", "requests", "floor", "429s", "wall s", "req/rate", "wall/rt"
    );
    for r in &rows {
        let p = &r.paced;
        let ideal = (p.requests - p.throttled) as f64 / f64::from(o.rate);
        println!(
            "{:<11} {:>9} {:>7} {:>8.2} | {:>8} {:>9} {:>7} {:>5} {:>7.2} {:>9.2} {:>8.2}",
            r.system.as_str(),
            r.full.requests,
            r.full.floor,
            r.full.requests as f64 / r.full.floor.max(1) as f64,
            p.records,
            p.requests,
            p.floor,
            p.throttled,
            p.time.as_secs_f64(),
            ideal,
            p.time.as_secs_f64() / ideal.max(f64::EPSILON),
        );
    }
    println!(
        "left: the full import's requests beside the floor at its page size; right: an import at {} requests/s with \
         pages of {} (paced = its records): wall s beside req/rate = (requests - 429s) / rate (target wall/rt <= 1.1)",
        o.rate, o.paced_page_size
    );
    if let Some(mib) = memory::peak_rss_mib("self") {
        println!("peak RSS of the whole process (simulators included): {mib:.0} MiB");
    }
}
