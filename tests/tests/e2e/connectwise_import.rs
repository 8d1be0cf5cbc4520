//! End to end on the local runner: a generated ConnectWise tenant imported through the
//! real simulator over HTTP, the real connector and the embedded adapters, checked
//! against the generator's ground truth; re-import, crash-and-resume, and refusals.

use std::collections::BTreeMap;
use std::time::Duration;

use tandem_connectors::http::{RetryPolicy, Settings};
use tandem_domain::usecases::import::{self, AllStages, StageSelection};
use tandem_domain::usecases::{connections, mappings};
use tandem_domain::{JobId, RecordKind, Stage, System, TenantId};
use tandem_embedded::QueueConfig;
use tandem_local::report::{self, Counts};
use tandem_local::runtime::LocalRuntime;
use tandem_local::setup;
use tandem_sim::connectwise::{GenConfig, SimConfig, SimHandle, Simulator, Tenant};

fn tenant() -> TenantId {
    TenantId::parse("e2e").unwrap()
}

fn settings(page_size: u32) -> Settings {
    Settings {
        page_size,
        retry: RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(2),
            ..RetryPolicy::default()
        },
        pacing: tandem_connectors::Pacing::Off,
        ..Settings::default()
    }
}

fn queue() -> QueueConfig {
    QueueConfig { visibility_timeout: Duration::from_millis(300), max_receives: 10, ..QueueConfig::default() }
}

struct World {
    sim: SimHandle,
    expected: Counts,
    records: usize,
}

async fn world(companies: usize) -> (World, tandem_sim::connectwise::CrmSeed) {
    let data = Tenant::generate(&GenConfig::with_companies(7, companies));
    let expected = data.expected().clone();
    let records = data.record_count();
    let seed = data.crm_seed().clone();
    let sim = Simulator::start(data, SimConfig::default(), 0).await.unwrap();
    (World { sim, expected, records }, seed)
}

async fn connect(rt: &LocalRuntime, w: &World, seed: &tandem_sim::connectwise::CrmSeed) {
    setup::seed_crm(&rt.svc, &tenant(), seed).await.unwrap();
    connections::save_credentials(
        &rt.svc,
        &tenant(),
        System::ConnectWise,
        &setup::credentials_body(&w.sim.credentials()),
    )
    .await
    .unwrap();
    setup::map_typically(
        &rt.svc,
        &tenant(),
        System::ConnectWise,
        &tandem_local::sims::typical(System::ConnectWise).unwrap(),
    )
    .await
    .unwrap();
}

async fn import_all(rt: &LocalRuntime) -> tandem_domain::job::Job {
    let job = import::start_import(&rt.svc, &tenant(), System::ConnectWise, StageSelection::All(AllStages::All))
        .await
        .unwrap();
    rt.run_until_done(&tenant(), &job.id, &|_| {}).await.unwrap()
}

async fn count(rt: &LocalRuntime, kind: RecordKind) -> usize {
    rt.svc.store.all_records(&tenant(), kind).await.unwrap().len()
}

async fn counts_by_kind(rt: &LocalRuntime) -> BTreeMap<RecordKind, usize> {
    let mut m = BTreeMap::new();
    for kind in RecordKind::ALL {
        m.insert(*kind, count(rt, *kind).await);
    }
    m
}

fn total(counts: &Counts, outcome: &str) -> u64 {
    counts.values().filter_map(|m| m.get(outcome)).sum()
}

/// Every CRM record linked to ConnectWise is linked to a distinct external id.
async fn assert_no_duplicate_links(rt: &LocalRuntime) {
    for kind in RecordKind::ALL {
        let mut seen = std::collections::HashSet::new();
        for r in rt.svc.store.all_records(&tenant(), *kind).await.unwrap() {
            if let Some(l) = r.link(System::ConnectWise) {
                assert!(seen.insert(l.id.clone()), "{kind} external id {} linked twice", l.id);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_thousand_record_tenant_imports_to_the_ground_truth_and_a_second_import_creates_nothing() {
    let (w, seed) = world(1800).await;
    assert!(w.records >= 10_000, "the tenant has only {} records", w.records);
    let rt = LocalRuntime::new(None, queue(), settings(1000)).unwrap();
    connect(&rt, &w, &seed).await;

    let first = import_all(&rt).await;
    let result = report::job_counts(&first);
    assert_eq!(report::differences(&result, &w.expected), Vec::<String>::new());
    assert_eq!(result, w.expected);
    assert_eq!(total(&result, "failed"), 0);
    assert_no_duplicate_links(&rt).await;
    let after_first = counts_by_kind(&rt).await;
    let seeded = seed.users.len() + seed.companies.len() + seed.contacts.len();
    let created = total(&result, "created") as usize;
    let lists = after_first[&RecordKind::List];
    assert_eq!(after_first.values().sum::<usize>(), seeded + created + lists);

    let second = import_all(&rt).await;
    let again = report::job_counts(&second);
    assert_eq!(total(&again, "created"), 0, "{again:?}");
    assert_eq!(total(&again, "linked"), 0, "{again:?}");
    assert_eq!(total(&again, "updated"), 0, "{again:?}");
    let in_crm = total(&result, "created") + total(&result, "linked");
    assert_eq!(total(&again, "skipped:unchanged"), in_crm);
    assert_eq!(counts_by_kind(&rt).await, after_first);
    w.sim.shutdown().await;
}

async fn pages_done(rt: &LocalRuntime, job: &JobId) -> u64 {
    let j = import::job(&rt.svc, &tenant(), job).await.unwrap();
    j.progress.values().map(|p| p.pages).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_mid_stage_resumes_from_its_checkpoint_without_duplicates() {
    let (w, seed) = world(500).await;
    let dir = tempfile::tempdir().unwrap();
    let job_id;
    let pages_before;
    {
        let rt = LocalRuntime::new(Some(dir.path()), queue(), settings(100)).unwrap();
        connect(&rt, &w, &seed).await;
        let job = import::start_import(&rt.svc, &tenant(), System::ConnectWise, StageSelection::All(AllStages::All))
            .await
            .unwrap();
        job_id = job.id.clone();
        // Let the worker run until it is inside the contacts stage, then kill it.
        let worker = rt.spawn_worker();
        loop {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let j = import::job(&rt.svc, &tenant(), &job_id).await.unwrap();
            if j.current_stage() == Some(Stage::Contacts) && j.progress[&Stage::Contacts].pages >= 2 {
                break;
            }
            assert!(!j.status.is_final(), "the import finished before it could be killed");
        }
        worker.abort();
        let _ = worker.await;
        pages_before = pages_done(&rt, &job_id).await;
        let j = import::job(&rt.svc, &tenant(), &job_id).await.unwrap();
        assert!(!j.status.is_final());
        assert!(j.progress[&Stage::Companies].completed);
    }
    // A new process on the same data directory: the queue and the checkpoint survived.
    let rt = LocalRuntime::new(Some(dir.path()), queue(), settings(100)).unwrap();
    assert!(rt.embedded().unwrap().queue.stats().pending >= 1, "the killed worker's next page is still queued");
    let companies_pages = import::job(&rt.svc, &tenant(), &job_id).await.unwrap().progress[&Stage::Companies].pages;
    rt.run_until_done(&tenant(), &job_id, &|_| {}).await.unwrap();
    let job = import::job(&rt.svc, &tenant(), &job_id).await.unwrap();
    // The companies stage was not read again after the restart, and no page counted twice.
    assert_eq!(job.progress[&Stage::Companies].pages, companies_pages);
    let expected_pages: u64 =
        w.expected.values().map(|m| m.values().sum::<u64>()).map(|n| n.div_ceil(100).max(1)).sum();
    assert_eq!(pages_done(&rt, &job_id).await, expected_pages);
    assert!(pages_done(&rt, &job_id).await > pages_before);
    let result = report::job_counts(&job);
    assert_eq!(report::differences(&result, &w.expected), Vec::<String>::new());
    assert_no_duplicate_links(&rt).await;
    let seeded = seed.users.len() + seed.companies.len() + seed.contacts.len();
    let all = counts_by_kind(&rt).await;
    assert_eq!(all.values().sum::<usize>() - all[&RecordKind::List], seeded + total(&result, "created") as usize);
    w.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_delivered_twice_still_reaches_the_ground_truth() {
    let (w, seed) = world(300).await;
    let rt = LocalRuntime::new(None, queue(), settings(50)).unwrap();
    connect(&rt, &w, &seed).await;
    let job = import::start_import(&rt.svc, &tenant(), System::ConnectWise, StageSelection::All(AllStages::All))
        .await
        .unwrap();
    // Play the queue by hand: run every message twice, as an at-least-once queue may.
    loop {
        let Some(d) = rt.embedded().unwrap().queue.receive(Duration::from_millis(50)).await else {
            let j = import::job(&rt.svc, &tenant(), &job.id).await.unwrap();
            if j.status.is_final() {
                break;
            }
            continue;
        };
        let page = d.message.import_page().expect("an import page");
        import::run_page(&rt.svc, page).await.unwrap();
        import::run_page(&rt.svc, page).await.unwrap();
        rt.embedded().unwrap().queue.ack(d.receipt);
    }
    let job = import::job(&rt.svc, &tenant(), &job.id).await.unwrap();
    assert_eq!(report::differences(&report::job_counts(&job), &w.expected), Vec::<String>::new());
    assert_no_duplicate_links(&rt).await;
    w.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_order_mappings_and_stages_are_refused_and_change_nothing() {
    let (w, _seed) = world(50).await;
    let rt = LocalRuntime::new(None, queue(), settings(1000)).unwrap();
    let t = tenant();
    connections::save_credentials(&rt.svc, &t, System::ConnectWise, &setup::credentials_body(&w.sim.credentials()))
        .await
        .unwrap();
    let companies =
        connections::options(&rt.svc, &t, System::ConnectWise, tandem_domain::external::OptionList::ContactTypes)
            .await
            .unwrap();
    let body = serde_json::json!({ "contact_types": { companies[0].id.clone(): "talking" } });
    let err = mappings::save_mapping(&rt.svc, &t, System::ConnectWise, Stage::Contacts, &body).await.unwrap_err();
    assert!(err.to_string().contains("save the users, companies mapping first"), "{err}");
    assert!(connections::connection(&rt.svc, &t, System::ConnectWise).await.unwrap().mappings.is_empty());

    setup::map_typically(&rt.svc, &t, System::ConnectWise, &tandem_local::sims::typical(System::ConnectWise).unwrap())
        .await
        .unwrap();
    let err = import::start_import(&rt.svc, &t, System::ConnectWise, StageSelection::One(Stage::Activities))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("needs users and contacts imported first"), "{err}");
    assert!(rt.svc.store.jobs(&t, 10).await.unwrap().is_empty());
    assert!(rt.embedded().unwrap().queue.is_idle());
    w.sim.shutdown().await;
}
