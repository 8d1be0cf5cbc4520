//! The import preview (dry run) on every simulated system: on a fresh tenant it reports
//! the import's ground truth, writes none of the tenant's records, links, jobs, logs or
//! checkpoints, and then the real import does exactly what it said, record for record; a
//! preview after the import sees the imported tenant (nothing new). Over HTTP: the import
//! route's `dry_run`, the list and the report, bad input and another tenant's id.

use crate::common::http;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use tandem_connectors::http::{RetryPolicy, Settings};
use tandem_domain::job::Job;
use tandem_domain::log::{LogFilter, Outcome};
use tandem_domain::usecases::import::{self, AllStages, StageSelection};
use tandem_domain::usecases::{connections, preview, snapshots};
use tandem_domain::{RecordKind, System, TenantId};
use tandem_embedded::QueueConfig;
use tandem_local::report;
use tandem_local::runtime::LocalRuntime;
use tandem_local::sims::{self, RunningSim, Scale};
use tandem_local::{server, setup};
use tandem_sim::SimConfig;

use http::call;

fn tenant() -> TenantId {
    TenantId::parse(server::DEFAULT_TENANT).unwrap()
}

fn runtime() -> LocalRuntime {
    let settings = Settings {
        page_size: 50,
        retry: RetryPolicy { base_delay: Duration::from_millis(10), ..RetryPolicy::default() },
        pacing: tandem_connectors::Pacing::Off,
        ..Settings::default()
    };
    let queue = QueueConfig { visibility_timeout: Duration::from_secs(10), max_receives: 10, ..QueueConfig::default() };
    LocalRuntime::new(None, queue, settings).unwrap()
}

async fn connect(rt: &LocalRuntime, sim: &RunningSim) {
    if let Some(h) = sim.syncro() {
        h.set_requests_per_minute(None);
    }
    setup::seed_crm(&rt.svc, &tenant(), &sim.crm_seed).await.unwrap();
    connections::save_credentials(&rt.svc, &tenant(), sim.system, &sim.credentials).await.unwrap();
    setup::map_typically(&rt.svc, &tenant(), sim.system, &sim.typical).await.unwrap();
}

fn all() -> StageSelection {
    StageSelection::All(AllStages::All)
}

/// What one record's operation did (or would do), by object and external id: the outcome,
/// why it matched, the fields an update changes, and the CRM record it links or updates.
type Plan = BTreeMap<(RecordKind, String), (Outcome, Option<String>, Vec<String>, Option<String>)>;

fn plan_of(
    entries: impl IntoIterator<Item = (RecordKind, Option<String>, Outcome, Option<String>, Vec<String>, Option<String>)>,
) -> Plan {
    entries
        .into_iter()
        .map(|(object, ext, outcome, matched, fields, crm)| {
            let crm = if outcome == Outcome::Created { None } else { crm };
            ((object, ext.unwrap()), (outcome, matched, fields, crm))
        })
        .collect()
}

/// Everything the tenant's own store holds that an import writes.
async fn state(rt: &LocalRuntime, system: System) -> String {
    let t = tenant();
    let mut out = Vec::new();
    for kind in RecordKind::ALL {
        let mut records = rt.svc.store.all_records(&t, *kind).await.unwrap();
        records.sort_by(|a, b| a.id().as_str().cmp(b.id().as_str()));
        out.push(serde_json::to_string(&records).unwrap());
    }
    let filter = LogFilter { limit: Some(1000), ..LogFilter::default() };
    out.push(format!("{:?}", rt.svc.store.logs(&t, &filter, rt.svc.clock.now()).await.unwrap()));
    out.push(format!("{:?}", import::jobs(&rt.svc, &t, 100).await.unwrap()));
    out.push(format!("{:?}", connections::connection(&rt.svc, &t, system).await.map(|c| c.completed_stages).ok()));
    out.join("\n")
}

async fn run(rt: &LocalRuntime, job: &Job) -> Job {
    rt.run_until_done(&tenant(), &job.id, &|_| {}).await.unwrap()
}

async fn preview_equals_the_import(system: System) {
    let sim = sims::start(system, &Scale::new(3, 120), SimConfig::default(), 0).await.unwrap();
    let rt = runtime();
    connect(&rt, &sim).await;
    let t = tenant();
    let before = state(&rt, system).await;

    let started = preview::start_preview(&rt.svc, &t, system, all()).await.unwrap();
    assert!(started.dry_run);
    let previewed = run(&rt, &started).await;
    let would = report::job_counts(&previewed);
    assert_eq!(report::differences(&would, &sim.expected), Vec::<String>::new(), "{system}: the preview's counts");
    assert_eq!(state(&rt, system).await, before, "{system}: the preview wrote nothing of the tenant's");
    assert!(snapshots::list(&rt.svc, &t).await.unwrap().is_empty(), "{system}: a preview takes no snapshot");

    let wide = LogFilter { limit: Some(1000), ..LogFilter::default() };
    let report = preview::report(&rt.svc, &t, &started.id, &wide).await.unwrap();
    let planned = plan_of(
        report
            .records
            .into_iter()
            .map(|p| (p.object, p.external_id, p.outcome, p.matched, p.fields, p.crm_id.map(|id| id.to_string()))),
    );
    let records: u64 = previewed.progress.values().map(|p| p.records()).sum();
    assert_eq!(planned.len() as u64, records, "{system}: one planned outcome per record");

    let job = run(&rt, &import::start_import(&rt.svc, &t, system, all()).await.unwrap()).await;
    assert_eq!(report::job_counts(&job), would, "{system}: the import's counts are the preview's");
    let filter = LogFilter { job_id: Some(job.id.clone()), ..wide.clone() };
    let done = plan_of(
        rt.svc
            .store
            .logs(&t, &filter, rt.svc.clock.now())
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.object, e.external_id, e.outcome, e.matched, e.fields, e.crm_id.map(|id| id.to_string()))),
    );
    assert_eq!(done, planned, "{system}: the import did what the preview said, record for record");

    // A preview of the imported tenant sees it: nothing would be created or linked.
    let again = run(&rt, &preview::start_preview(&rt.svc, &t, system, all()).await.unwrap()).await;
    let counts = report::job_counts(&again);
    for outcome in ["created", "linked", "updated", "failed"] {
        let n: u64 = counts.values().filter_map(|m| m.get(outcome)).sum();
        assert_eq!(n, 0, "{system}: {outcome} in a preview after the import: {counts:?}");
    }
    let listed = preview::list(&rt.svc, &t).await.unwrap();
    assert_eq!(listed.iter().map(|p| &p.listed.id).collect::<Vec<_>>(), vec![&again.id, &started.id], "newest first");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connectwise_preview_is_what_the_import_then_does() {
    preview_equals_the_import(System::ConnectWise).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_halo_preview_is_what_the_import_then_does() {
    preview_equals_the_import(System::Halo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_syncro_preview_is_what_the_import_then_does() {
    preview_equals_the_import(System::Syncro).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_salesforce_preview_is_what_the_import_then_does() {
    preview_equals_the_import(System::Salesforce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_routes_start_list_and_report_and_name_what_is_wrong() {
    let sim = sims::start(System::Halo, &Scale::new(2, 30), SimConfig::default(), 0).await.unwrap();
    let rt = runtime();
    connect(&rt, &sim).await;
    let (addr, _server) = server::serve(rt.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{addr}");

    let (status, started) =
        call(&base, "POST", "/connections/halo/imports", Some(json!({"stages": "all", "dry_run": true}))).await;
    assert_eq!((status, started["dry_run"].as_bool()), (202, Some(true)), "{started}");
    let id = started["id"].as_str().unwrap().to_string();
    let job = run(&rt, &preview::job(&rt.svc, &tenant(), &tandem_domain::JobId::from_raw(&id)).await.unwrap()).await;
    assert!(job.status.is_final());

    let (status, listed) = call(&base, "GET", "/previews", None).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["previews"][0]["id"].as_str(), Some(id.as_str()), "{listed}");
    assert_eq!(listed["previews"][0]["status"]["state"].as_str(), Some("completed"), "{listed}");
    let (status, created) =
        call(&base, "GET", &format!("/previews/{id}?outcome=created&object=company&limit=5"), None).await;
    assert_eq!(status, 200, "{created}");
    let rows = created["records"].as_array().unwrap();
    assert!(!rows.is_empty() && rows.len() <= 5, "{created}");
    assert!(
        rows.iter().all(|r| r["outcome"] == "created" && r["object"] == "company" && r.get("crm_id").is_none()),
        "{created}"
    );
    let (_, linked) = call(&base, "GET", &format!("/previews/{id}?outcome=linked"), None).await;
    let linked = linked["records"].as_array().unwrap();
    assert!(
        linked.iter().all(|r| r["matched"].is_string() && r["crm_id"].is_string()),
        "a link says why and to what: {linked:?}"
    );
    let (status, jobs) = call(&base, "GET", "/jobs", None).await;
    assert_eq!((status, jobs["jobs"].as_array().map(Vec::len)), (200, Some(0)), "a preview is not an import: {jobs}");

    let (status, bad) =
        call(&base, "POST", "/connections/halo/imports", Some(json!({"stages": "all", "dry_run": "yes"}))).await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad["error"]["message"].as_str().unwrap().contains("dry_run"), "{bad}");
    let (status, missing) = call(&base, "GET", "/previews/nosuch", None).await;
    assert_eq!(status, 404, "{missing}");
    let (status, _) = call(&base, "GET", &format!("/previews/{id}?since=2026-01-01T00:00:00Z"), None).await;
    assert_eq!(status, 400, "the report takes outcome, object and limit only");

    // Another tenant cannot read it.
    let other = reqwest::Client::new()
        .get(format!("{base}/previews/{id}"))
        .header(server::TENANT_HEADER, "someone-else")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 404);
    sim.shutdown().await;
}
