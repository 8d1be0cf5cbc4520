//! End to end for every simulated system on the local runner: a generated tenant imports
//! to its simulator's ground truth, a second import creates nothing new, and an import
//! killed part way resumes in a new process from its checkpoint without duplicates.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use tandem_connectors::http::{RetryPolicy, Settings};
use tandem_domain::job::Job;
use tandem_domain::usecases::connections;
use tandem_domain::usecases::import::{self, AllStages, StageSelection};
use tandem_domain::{RecordKind, System, TenantId};
use tandem_embedded::QueueConfig;
use tandem_local::report;
use tandem_local::runtime::LocalRuntime;
use tandem_local::setup;
use tandem_local::sims::{self, RunningSim, Scale};
use tandem_sim::SimConfig;

fn tenant() -> TenantId {
    TenantId::parse("every").unwrap()
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

/// Nothing here is redelivered by the visibility timeout (a killed worker's queue dies with
/// its process), so it is long enough that a slow page on a loaded machine is never run
/// twice at once or dead-lettered for being slow.
fn queue() -> QueueConfig {
    QueueConfig { visibility_timeout: Duration::from_secs(10), max_receives: 10, ..QueueConfig::default() }
}

/// Lifts Syncro's 180-requests-a-minute limit: its 429 handling has its own tests.
fn unthrottled(sim: &RunningSim) {
    if let Some(h) = sim.syncro() {
        h.set_requests_per_minute(None);
    }
}

async fn connect(rt: &LocalRuntime, sim: &RunningSim) {
    unthrottled(sim);
    setup::seed_crm(&rt.svc, &tenant(), &sim.crm_seed).await.unwrap();
    connections::save_credentials(&rt.svc, &tenant(), sim.system, &sim.credentials).await.unwrap();
    setup::map_typically(&rt.svc, &tenant(), sim.system, &sim.typical).await.unwrap();
}

async fn import_all(rt: &LocalRuntime, system: System) -> Job {
    let job = import::start_import(&rt.svc, &tenant(), system, StageSelection::All(AllStages::All)).await.unwrap();
    rt.run_until_done(&tenant(), &job.id, &|_| {}).await.unwrap()
}

fn total(counts: &report::Counts, outcome: &str) -> u64 {
    counts.values().filter_map(|m| m.get(outcome)).sum()
}

async fn census(rt: &LocalRuntime, system: System) -> BTreeMap<RecordKind, usize> {
    let mut m = BTreeMap::new();
    for kind in RecordKind::ALL {
        let records = rt.svc.store.all_records(&tenant(), *kind).await.unwrap();
        let mut seen = HashSet::new();
        for r in &records {
            if let Some(l) = r.link(system) {
                assert!(seen.insert(l.id.clone()), "{kind} external id {} linked twice", l.id);
            }
        }
        m.insert(*kind, records.len());
    }
    m
}

async fn ground_truth_then_nothing_new(system: System) {
    let sim = sims::start(system, &Scale::new(5, 400), SimConfig::default(), 0).await.unwrap();
    let rt = LocalRuntime::new(None, queue(), settings(100)).unwrap();
    connect(&rt, &sim).await;
    let first = report::job_counts(&import_all(&rt, system).await);
    assert_eq!(report::differences(&first, &sim.expected), Vec::<String>::new());
    assert_eq!(total(&first, "failed"), 0);
    let before = census(&rt, system).await;
    let seeded = sim.crm_seed.users.len() + sim.crm_seed.companies.len() + sim.crm_seed.contacts.len();
    assert_eq!(before.values().sum::<usize>() - before[&RecordKind::List], seeded + total(&first, "created") as usize);

    let again = report::job_counts(&import_all(&rt, system).await);
    for outcome in ["created", "linked", "updated", "failed"] {
        assert_eq!(total(&again, outcome), 0, "{outcome} on re-import: {again:?}");
    }
    assert_eq!(total(&again, "skipped:unchanged"), total(&first, "created") + total(&first, "linked"));
    assert_eq!(census(&rt, system).await, before);
    sim.shutdown().await;
}

async fn killed_then_resumed(system: System) {
    let sim = sims::start(system, &Scale::new(9, 300), SimConfig::default(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let job_id = {
        let rt = LocalRuntime::new(Some(dir.path()), queue(), settings(25)).unwrap();
        connect(&rt, &sim).await;
        let job = import::start_import(&rt.svc, &tenant(), system, StageSelection::All(AllStages::All)).await.unwrap();
        // Work page by page and stop dead part way: the process "dies" with the next page's
        // message in its queue, which the data directory keeps. (Stepping,
        // not aborting a free-running worker, so the kill point cannot race an import that
        // has become fast.)
        loop {
            rt.work_once(Duration::from_millis(50)).await.unwrap();
            let j = import::job(&rt.svc, &tenant(), &job.id).await.unwrap();
            assert!(!j.status.is_final(), "the import finished before it could be killed");
            if j.current >= 2 && j.progress.values().map(|p| p.pages).sum::<u64>() >= 3 {
                break;
            }
        }
        job.id
    };
    let rt = LocalRuntime::new(Some(dir.path()), queue(), settings(25)).unwrap();
    let left = import::job(&rt.svc, &tenant(), &job_id).await.unwrap();
    assert!(!left.status.is_final(), "the killed job was left {:?}", left.status);
    assert_eq!(rt.migrate().await.unwrap(), 0, "a database of this version needs no migration");
    assert_eq!(rt.embedded().unwrap().queue.stats().pending, 1, "the next page's message survived the kill");
    let job = rt.run_until_done(&tenant(), &job_id, &|_| {}).await.unwrap();
    let result = report::job_counts(&job);
    assert_eq!(report::differences(&result, &sim.expected), Vec::<String>::new());
    let all = census(&rt, system).await;
    let seeded = sim.crm_seed.users.len() + sim.crm_seed.companies.len() + sim.crm_seed.contacts.len();
    assert_eq!(all.values().sum::<usize>() - all[&RecordKind::List], seeded + total(&result, "created") as usize);
    sim.shutdown().await;
}

macro_rules! every_system {
    ($($module:ident => $system:expr),+ $(,)?) => {$(
        mod $module {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn imports_to_the_ground_truth_and_a_second_import_creates_nothing() {
                ground_truth_then_nothing_new($system).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn an_import_killed_part_way_resumes_from_its_checkpoint_without_duplicates() {
                killed_then_resumed($system).await;
            }
        }
    )+};
}

every_system!(halo => System::Halo, syncro => System::Syncro, salesforce => System::Salesforce);

#[test]
fn every_simulated_system_is_covered_here_or_by_its_own_suite() {
    let covered = [System::ConnectWise, System::Halo, System::Syncro, System::Salesforce];
    for s in sims::SIMULATED {
        assert!(covered.contains(s), "{s} has a simulator but no end-to-end test");
    }
}
