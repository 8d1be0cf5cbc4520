//! `tandem demo`: a seeded simulator, a CRM seeded like a real tenant, credentials and
//! typical mappings saved, everything imported (or, with `dry_run`, previewed: the
//! import's pages on the preview's view, the tenant's records left as they were), and the
//! result set against the simulator's ground truth.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_connectors::http::Settings;
use tandem_domain::job::Job;
use tandem_domain::log::LogFilter;
use tandem_domain::usecases::import::{self, AllStages, StageSelection};
use tandem_domain::usecases::{connections, preview};
use tandem_domain::{Stage, System, TenantId};
use tandem_embedded::QueueConfig;
use tandem_sim::SimConfig;

use crate::aws::AwsNames;
use crate::report::{self, Cost, Counts};
use crate::runtime::LocalRuntime;
use crate::setup;
use crate::sims::{self, Scale};

/// What the demo runs.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub system: System,
    pub scale: Scale,
    pub sim: SimConfig,
    pub connectors: Settings,
    pub data_dir: Option<PathBuf>,
    /// Show progress bars (off for `--json`).
    pub progress: bool,
    /// Run on the AWS adapters at this endpoint (e.g. moto) instead of the embedded ones.
    pub aws_endpoint: Option<String>,
    /// Added to every store round trip (DynamoDB's is a few milliseconds).
    pub store_latency: Duration,
    /// Preview the import instead of running it.
    pub dry_run: bool,
}

/// What the demo found.
#[derive(Clone, Debug)]
pub struct DemoOutcome {
    pub job: Job,
    pub result: Counts,
    pub expected: Counts,
    pub external_records: usize,
    pub import_time: Duration,
    pub log_lines: Vec<String>,
    /// What the import alone cost (set-up excluded).
    pub cost: Cost,
    /// A preview: whether the tenant's CRM records were left exactly as they were.
    pub untouched: Option<bool>,
}

/// Runs the whole demo.
pub async fn run(opts: DemoOptions) -> anyhow::Result<DemoOutcome> {
    let sim = sims::start(opts.system, &opts.scale, opts.sim.clone(), 0).await?;
    let (external_records, expected) = (sim.records, sim.expected.clone());
    let mut rt = match &opts.aws_endpoint {
        Some(endpoint) => LocalRuntime::aws(endpoint, &AwsNames::default(), opts.connectors.clone()).await?,
        None => LocalRuntime::new(opts.data_dir.as_deref(), QueueConfig::default(), opts.connectors.clone())?,
    };
    rt.migrate().await?;
    // A fresh tenant per run, so runs against a long-lived endpoint never mix.
    let tenant = TenantId::parse(&format!("demo-{}", &tandem_domain::JobId::new().as_str()[..8]))?;
    setup::seed_crm(&rt.svc, &tenant, &sim.crm_seed).await?;
    connections::save_credentials(&rt.svc, &tenant, opts.system, &sim.credentials).await?;
    setup::map_typically(&rt.svc, &tenant, opts.system, &sim.typical).await?;

    let store = rt.meter_store(opts.store_latency);
    let (calls_before, rounds_before, requests_before) = (store.calls(), store.rounds(), sim.requests());
    let started = Instant::now();
    let before = if opts.dry_run { Some(crm_records(&rt, &tenant).await?) } else { None };
    let all = StageSelection::All(AllStages::All);
    let job = match opts.dry_run {
        true => preview::start_preview(&rt.svc, &tenant, opts.system, all).await?,
        false => import::start_import(&rt.svc, &tenant, opts.system, all).await?,
    };
    let bars = Bars::new(opts.system, &expected, opts.progress);
    let job = rt.run_until_done(&tenant, &job.id, &|j| bars.update(j)).await?;
    bars.finish();
    let import_time = started.elapsed();
    let cost = Cost {
        store_calls: store.calls() - calls_before,
        store_rounds: store.rounds() - rounds_before,
        requests: sim.requests() - requests_before,
        seconds: import_time.as_secs_f64(),
    };
    let filter = LogFilter { job_id: Some(job.id.clone()), limit: Some(1000), ..LogFilter::default() };
    let entries = match opts.dry_run {
        true => preview::entries(&rt.svc, &tenant, &job, &filter).await?,
        false => rt.svc.store.logs(&tenant, &filter, rt.svc.clock.now()).await?,
    };
    let log_lines = report::sample_lines(&entries, 10);
    let untouched = match before {
        Some(before) => Some(crm_records(&rt, &tenant).await? == before),
        None => None,
    };
    sim.shutdown().await;
    let result = report::job_counts(&job);
    Ok(DemoOutcome { result, job, expected, external_records, import_time, log_lines, cost, untouched })
}

/// Every CRM record of the tenant, as stored (what a preview must leave as it was).
async fn crm_records(rt: &LocalRuntime, tenant: &TenantId) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for kind in tandem_domain::RecordKind::ALL {
        for record in rt.svc.store.all_records(tenant, *kind).await? {
            out.push(serde_json::to_string(&record)?);
        }
    }
    out.sort();
    Ok(out)
}

/// One progress bar per stage, sized by the expected totals.
#[derive(Clone)]
struct Bars {
    bars: Arc<BTreeMap<Stage, ProgressBar>>,
    _multi: Arc<MultiProgress>,
}

impl Bars {
    fn new(system: System, expected: &Counts, visible: bool) -> Self {
        let multi = MultiProgress::with_draw_target(if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let style = ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos:>7}/{len:7} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bars = system
            .stages()
            .iter()
            .map(|s| {
                let total: u64 = expected.get(s.as_str()).map(|m| m.values().sum()).unwrap_or(0);
                let bar = multi.add(ProgressBar::new(total));
                bar.set_style(style.clone());
                bar.set_prefix(s.as_str());
                (*s, bar)
            })
            .collect();
        Self { bars: Arc::new(bars), _multi: Arc::new(multi) }
    }

    fn update(&self, job: &Job) {
        for (stage, bar) in self.bars.iter() {
            if let Some(p) = job.progress.get(stage) {
                bar.set_position(p.records());
                bar.set_message(format!("{} pages", p.pages));
                if p.completed {
                    bar.finish();
                }
            }
        }
    }

    fn finish(&self) {
        for bar in self.bars.values() {
            bar.finish();
        }
    }
}
