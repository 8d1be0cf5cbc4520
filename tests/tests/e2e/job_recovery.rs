//! Jobs after an outage, on the local runner: a page that fails on every delivery is
//! dead-lettered and its job fails with the reason (never stuck "running"), a resume
//! really runs it again from its checkpoint to the ground truth, and a restart resumes
//! the running jobs of every tenant.

use std::time::Duration;

use tandem_domain::job::JobStatus;
use tandem_domain::usecases::import::{self, AllStages, StageSelection};
use tandem_domain::usecases::{Tuning, connections};
use tandem_domain::{System, TenantId};
use tandem_embedded::QueueConfig;
use tandem_local::runtime::LocalRuntime;
use tandem_local::sims::{self, Scale};
use tandem_local::{report, setup};
use tandem_sim::SimConfig;

use crate::common::fail_fast as settings;

fn queue() -> QueueConfig {
    QueueConfig { visibility_timeout: Duration::from_secs(5), max_receives: 3, ..QueueConfig::default() }
}

fn all() -> StageSelection {
    StageSelection::All(AllStages::All)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_fails_on_every_delivery_fails_its_job_and_a_resume_finishes_it_to_the_ground_truth() {
    let sim = sims::start(System::ConnectWise, &Scale::new(5, 10), SimConfig::default(), 0).await.unwrap();
    let rt = LocalRuntime::new(None, queue(), settings()).unwrap();
    let t = TenantId::parse("outage").unwrap();
    setup::seed_crm(&rt.svc, &t, &sim.crm_seed).await.unwrap();
    connections::save_credentials(&rt.svc, &t, sim.system, &sim.credentials).await.unwrap();
    setup::map_typically(&rt.svc, &t, sim.system, &sim.typical).await.unwrap();

    // The system goes down for longer than the queue's deliveries last.
    let cw = sim.connectwise().unwrap();
    cw.fail_next(1_000, 503);
    let job = import::start_import(&rt.svc, &t, sim.system, all()).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(60), rt.run_until_done(&t, &job.id, &|_| {}))
        .await
        .expect("the job ends instead of staying running")
        .unwrap();
    let JobStatus::Failed(why) = &ended.status else { panic!("the job failed: {:?}", ended.status) };
    assert!(why.contains("users stage") && why.contains("3 failed deliveries") && why.contains("503"), "{why}");
    let embedded = rt.embedded().unwrap();
    assert_eq!(embedded.queue.dead_letters().len(), 1, "the page is kept in the dead-letter list");
    let published: Vec<_> = embedded.events.failed_jobs().into_iter().map(|j| j.id).collect();
    assert_eq!(published, vec![job.id.clone()], "the failure is published as an event");

    // The system is back: resume runs the job again from its checkpoint.
    cw.fail_next(0, 503);
    let resumed = import::resume(&rt.svc, &t, &job.id).await.unwrap();
    assert_eq!(resumed.status, JobStatus::Running);
    let done =
        tokio::time::timeout(Duration::from_secs(60), rt.run_until_done(&t, &job.id, &|_| {})).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Completed, "{:?}", done.status);
    let result = report::job_counts(&done);
    assert_eq!(report::differences(&result, &sim.expected), Vec::<String>::new(), "the ground truth, once each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_the_running_jobs_of_every_tenant_and_reports_stalled_ones() {
    let sim = sims::start(System::ConnectWise, &Scale::new(6, 6), SimConfig::default(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tenants: Vec<TenantId> = ["alpha", "beta", "local"].iter().map(|n| TenantId::parse(n).unwrap()).collect();
    let mut jobs = Vec::new();
    {
        // The first process starts an import per tenant and dies before working the queue.
        let rt = LocalRuntime::new(Some(dir.path()), queue(), settings()).unwrap();
        for t in &tenants {
            connections::save_credentials(&rt.svc, t, sim.system, &sim.credentials).await.unwrap();
            setup::map_typically(&rt.svc, t, sim.system, &sim.typical).await.unwrap();
            jobs.push(import::start_import(&rt.svc, t, sim.system, all()).await.unwrap().id);
        }
    }
    let mut rt = LocalRuntime::new(Some(dir.path()), queue(), settings()).unwrap();
    rt.svc.tuning = Tuning { stall_after: Duration::ZERO, ..Tuning::default() };
    for (t, id) in tenants.iter().zip(&jobs) {
        assert!(import::job_view(&rt.svc, t, id).await.unwrap().stalled, "nothing ran it since: stalled");
    }
    let queued = rt.embedded().unwrap().queue.stats().pending;
    assert_eq!(queued, tenants.len(), "every tenant's first page is still queued, not only the default tenant's");
    rt.svc.tuning = Tuning::default();
    for (t, id) in tenants.iter().zip(&jobs) {
        let done = rt.run_until_done(t, id, &|_| {}).await.unwrap();
        assert_eq!(done.status, JobStatus::Completed, "{t}: {:?}", done.status);
    }
}

/// Log lines written while a test runs on its own thread, for asserting on them.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_rate_limited_for_longer_than_the_queues_deliveries_waits_and_resumes_and_is_never_dead_lettered() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let sim = sims::start(System::ConnectWise, &Scale::new(5, 10), SimConfig::default(), 0).await.unwrap();
    let rt = LocalRuntime::new(None, queue(), settings()).unwrap();
    let t = TenantId::parse("limited").unwrap();
    setup::seed_crm(&rt.svc, &t, &sim.crm_seed).await.unwrap();
    connections::save_credentials(&rt.svc, &t, sim.system, &sim.credentials).await.unwrap();
    setup::map_typically(&rt.svc, &t, sim.system, &sim.typical).await.unwrap();

    // The system answers 429 (Retry-After: 1) to more deliveries than the queue allows
    // (3), each of which tries once.
    let cw = sim.connectwise().unwrap();
    let limited = queue().max_receives + 2;
    cw.fail_next(limited, 429);
    let job = import::start_import(&rt.svc, &t, sim.system, all()).await.unwrap();
    let done = tokio::time::timeout(Duration::from_secs(90), rt.run_until_done(&t, &job.id, &|_| {}))
        .await
        .expect("the job ends")
        .unwrap();
    assert_eq!(done.status, JobStatus::Completed, "{:?}", done.status);
    assert_eq!(report::differences(&report::job_counts(&done), &sim.expected), Vec::<String>::new());
    let embedded = rt.embedded().unwrap();
    assert_eq!(embedded.queue.dead_letters(), Vec::new(), "nothing dead-lettered");
    assert!(embedded.events.failed_jobs().is_empty(), "no failure published");
    assert_eq!(sim.handle().stats().injected_failures, u64::from(limited), "every 429 was answered");

    let logs = logs.text();
    let waits: Vec<&str> = logs.lines().filter(|l| l.contains("the work waits and resumes")).collect();
    assert_eq!(waits.len(), limited as usize, "one wait logged per 429:\n{logs}");
    assert!(waits.iter().all(|l| l.contains("rate limited by ConnectWise") && l.contains("resume_at=")), "{waits:?}");
    assert!(waits.last().unwrap().contains(&format!("waits={limited}")), "{waits:?}");
    assert!(!logs.contains("dead-lettered"), "{logs}");
}
