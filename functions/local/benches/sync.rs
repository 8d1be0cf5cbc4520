//! Sync benchmark, per simulated system, on the local runner with its HTTP server (the
//! simulator calls the runner's webhook intake over real HTTP; the worker applies):
//!
//! - **webhook -> record**: a burst of `--burst` (default 1,000) companies renamed by a
//!   person in the simulator at once; for each delivery, the time from the simulator
//!   sending it to the CRM record being written; p50, p95 and p99 (and of the intake's
//!   answer to each call), and how long the whole burst took to land;
//! - **poll catch-up**: `--changed` (default 10,000) companies renamed with every webhook
//!   lost; the time from starting a poll to the last of them written, and records per
//!   second;
//! - **CRM edit -> system** (sync out, two-way on): `--pushes` (default 1,000) companies
//!   renamed through the record API at once; for each, the time from the CRM write to its
//!   push logged (the system answered the update); p50, p95 and p99, and how long the
//!   whole burst took to reach the system.
//!
//! Every change is checked to have reached the other side.
//!
//! `cargo bench -p tandem-local --bench sync [-- --system S] [--burst N] [--changed N] [--pushes N]`

#![allow(clippy::unwrap_used)] // a benchmark: a failed set-up step should stop it

use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use tandem_connectors::Pacing;
use tandem_connectors::http::Settings;
use tandem_domain::records::Record;
use tandem_domain::usecases::import::{self, AllStages, StageSelection};
use tandem_domain::usecases::{connections, crm, sync_in};
use tandem_domain::{RecordKind, System, TenantId};
use tandem_embedded::QueueConfig;
use tandem_local::runtime::LocalRuntime;
use tandem_local::sims::{self, Scale};
use tandem_local::{server, setup};
use tandem_sim::SimConfig;
use tandem_sim::webhooks::Kind;

#[path = "support/args.rs"]
mod args;
use args::{arg, arg_or};

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let index = ((sorted.len() as f64) * p).ceil() as usize;
    sorted.get(index.saturating_sub(1)).copied().unwrap_or(0)
}

/// Waits until every record has its new name; answers the moment the last one did.
async fn landed(rt: &LocalRuntime, t: &TenantId, wanted: &[(Record, String)], patience: Duration) -> Instant {
    let start = Instant::now();
    loop {
        let mut missing = 0;
        for (record, name) in wanted {
            let now = rt.svc.store.record(t, RecordKind::Company, record.id()).await.unwrap();
            if now.is_none_or(|r| r.fields()["name"] != json!(name)) {
                missing += 1;
            }
        }
        if missing == 0 {
            return Instant::now();
        }
        assert!(start.elapsed() < patience, "{missing} of {} changes never reached the CRM", wanted.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn bench(system: System, burst: usize, changed: usize, pushes: usize) {
    // Some generated companies are not imported (inactive, unmapped): a margin.
    let companies = (burst + changed + pushes) * 13 / 10 + 20;
    let sim = sims::start(system, &Scale::new(7, companies), SimConfig::default(), 0).await.unwrap();
    if let Some(h) = sim.syncro() {
        h.set_requests_per_minute(None);
    }
    let settings = Settings { pacing: Pacing::Off, ..Settings::default() };
    let mut rt = LocalRuntime::new(None, QueueConfig::default(), settings).unwrap();
    let t = TenantId::parse(server::DEFAULT_TENANT).unwrap();
    setup::seed_crm(&rt.svc, &t, &sim.crm_seed).await.unwrap();
    connections::save_credentials(&rt.svc, &t, system, &sim.credentials).await.unwrap();
    setup::map_typically(&rt.svc, &t, system, &sim.typical).await.unwrap();
    let job = import::start_import(&rt.svc, &t, system, StageSelection::All(AllStages::All)).await.unwrap();
    rt.run_until_done(&t, &job.id, &|_| {}).await.unwrap();
    let (addr, _server) = server::serve(rt.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    rt.svc.tuning.public_url = Some(format!("http://{addr}"));
    let view = connections::save_settings(&rt.svc, &t, system, &json!({"auto_sync": "inbound"})).await.unwrap();
    let hook = view.webhook.unwrap();
    if hook.registered.is_none() {
        assert!(sim.handle().subscribe(&format!("{}?token={}", hook.url.unwrap(), hook.secret)));
    }
    let _worker = rt.spawn_worker();
    let mut linked: Vec<(String, Record)> = rt
        .svc
        .store
        .all_records(&t, RecordKind::Company)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|c| Some((c.link(system)?.id.clone(), c)))
        .collect();
    let field = sim.handle().company_name_field();

    // A burst of webhooks.
    let burst = burst.min(linked.len());
    let wave: Vec<(String, Record)> = linked.drain(..burst).collect();
    let started = Instant::now();
    let mut wanted = Vec::new();
    for (n, (ext, record)) in wave.iter().enumerate() {
        let name = format!("Burst {n}");
        sim.handle().edit_as_person(Kind::Company, ext, json!({ field: name })).unwrap();
        wanted.push((record.clone(), name));
    }
    let last = landed(&rt, &t, &wanted, Duration::from_secs(600)).await;
    let sent: HashMap<String, u64> =
        sim.handle().webhooks_sent().into_iter().filter(|w| !w.dropped && w.status.is_some()).fold(
            HashMap::new(),
            |mut m, w| {
                let e = m.entry(w.id).or_insert(w.sent_unix_millis);
                *e = (*e).min(w.sent_unix_millis);
                m
            },
        );
    let mut latencies = Vec::new();
    for (ext, record) in &wave {
        let written = rt.svc.store.record(&t, RecordKind::Company, record.id()).await.unwrap().unwrap();
        if let Some(at) = sent.get(ext) {
            latencies.push(u64::try_from(written.meta().updated_at.unix_millis() - *at as i64).unwrap_or(0));
        }
    }
    latencies.sort_unstable();
    println!(
        "{:<11} webhook->record over {} deliveries: p50 {} ms, p95 {} ms, p99 {} ms; burst landed in {:.2} s",
        system.display_name(),
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99),
        last.duration_since(started).as_secs_f64()
    );
    let in_wave: std::collections::HashSet<&String> = wave.iter().map(|(ext, _)| ext).collect();
    let mut answers: Vec<u64> = sim
        .handle()
        .webhooks_sent()
        .into_iter()
        .filter(|w| in_wave.contains(&w.id))
        .filter_map(|w| w.answered_in_millis)
        .collect();
    answers.sort_unstable();
    println!(
        "{:<11} intake answered {} deliveries: p50 {} ms, p95 {} ms, p99 {} ms",
        system.display_name(),
        answers.len(),
        percentile(&answers, 0.50),
        percentile(&answers, 0.95),
        percentile(&answers, 0.99)
    );

    // Poll catch-up: every webhook lost.
    let changed = changed.min(linked.len());
    sim.handle().drop_webhooks(1);
    let mut wanted = Vec::new();
    for (n, (ext, record)) in linked.drain(..changed).enumerate() {
        let name = format!("Caught up {n}");
        sim.handle().edit_as_person(Kind::Company, &ext, json!({ field: name })).unwrap();
        wanted.push((record, name));
    }
    sim.handle().webhooks_settled(Duration::from_secs(30)).await;
    let started = Instant::now();
    sync_in::start_poll(&rt.svc, &t, system).await.unwrap();
    let last = landed(&rt, &t, &wanted, Duration::from_secs(1800)).await;
    let secs = last.duration_since(started).as_secs_f64();
    println!(
        "{:<11} poll catch-up of {} changed companies: {:.2} s ({:.0} records/s)",
        system.display_name(),
        changed,
        secs,
        changed as f64 / secs.max(1e-9)
    );

    // Sync out: CRM edits pushed.
    sim.handle().drop_webhooks(0);
    connections::save_settings(&rt.svc, &t, system, &json!({"auto_sync": "two_way"})).await.unwrap();
    let pushes = pushes.min(linked.len());
    let started = Instant::now();
    let mut edits = Vec::new();
    for (n, (_, record)) in linked.drain(..pushes).enumerate() {
        let body = json!({"name": format!("Pushed {n}")});
        let edited = crm::update(&rt.svc, &t, RecordKind::Company, record.id(), &body).await.unwrap();
        let change = format!("company-{}-v{}", edited.id(), edited.meta().version);
        edits.push((format!("sync_out:{system}:{change}:company:{}", edited.id()), edited.meta().updated_at));
    }
    let ids: Vec<String> = edits.iter().map(|(id, _)| id.clone()).collect();
    let patience = Instant::now() + Duration::from_secs(1800);
    let logged = loop {
        let logged = rt.svc.store.logs_by_id(&t, &ids).await.unwrap();
        if logged.len() == ids.len() {
            break logged;
        }
        assert!(Instant::now() < patience, "{} of {} pushes never logged", ids.len() - logged.len(), ids.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let landed_in = started.elapsed();
    let mut latencies = Vec::new();
    for (id, edited_at) in &edits {
        let entry = &logged[id];
        assert_eq!(entry.outcome, tandem_domain::log::Outcome::Updated, "{id}: {entry:?}");
        latencies.push(u64::try_from(entry.at.unix_millis() - edited_at.unix_millis()).unwrap_or(0));
    }
    latencies.sort_unstable();
    println!(
        "{:<11} CRM edit->system over {} pushes: p50 {} ms, p95 {} ms, p99 {} ms; burst reached the system in {:.2} s",
        system.display_name(),
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99),
        landed_in.as_secs_f64()
    );
    sim.shutdown().await;
}

#[tokio::main]
async fn main() {
    let burst: usize = arg_or("--burst", 1_000);
    let changed: usize = arg_or("--changed", 10_000);
    let pushes: usize = arg_or("--pushes", 1_000);
    let systems: Vec<System> = match arg("--system") {
        Some(s) => vec![s.parse().unwrap()],
        None => System::ALL.to_vec(),
    };
    for system in systems {
        bench(system, burst, changed, pushes).await;
    }
}
