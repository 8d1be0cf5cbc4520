//! What the auto-sync scenarios (`sync-in`, `two-way`) share: a tenant imported from its
//! simulator with auto-sync switched on over real HTTP both ways (the runner serves its
//! API; ConnectWise and Halo register their webhooks through their APIs, Syncro and
//! Salesforce are subscribed by hand as their admins would), a worker draining the queue,
//! and waiting, with patience, for a change to show.

use serde_json::json;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

use tandem_domain::usecases::connections;
use tandem_domain::usecases::import::{self, AllStages, StageSelection};
use tandem_domain::{System, TenantId};
use tandem_embedded::QueueConfig;

use crate::demo::DemoOptions;
use crate::runtime::LocalRuntime;
use crate::setup;
use crate::sims::{self, RunningSim};

/// How long a change may take to reach the other side before a scenario gives up on it.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A tenant imported from its simulator, served over HTTP, with auto-sync on.
pub struct Synced {
    pub sim: RunningSim,
    pub rt: LocalRuntime,
    pub t: TenantId,
    pub system: System,
    /// Where the system's webhooks reach the runner (with no token).
    pub webhook_url: String,
    pub worker: JoinHandle<()>,
    pub server: JoinHandle<()>,
}

/// Starts the simulator, imports it whole, serves the API and switches `auto_sync` (a mode
/// that takes changes in: `inbound` or `two_way`) on, subscribing by hand where the system
/// has no registration API; then spawns the worker. `sweep_every`, when given, is how
/// often a poll also reconciles ids (`Duration::ZERO`: every poll).
pub async fn imported_and_syncing(
    opts: &DemoOptions,
    auto_sync: &str,
    sweep_every: Option<Duration>,
) -> anyhow::Result<Synced> {
    let sim = sims::start(opts.system, &opts.scale, opts.sim.clone(), 0).await?;
    if let Some(h) = sim.syncro() {
        h.set_requests_per_minute(None);
    }
    let mut rt = LocalRuntime::new(None, QueueConfig::default(), opts.connectors.clone())?;
    let t = TenantId::parse(crate::server::DEFAULT_TENANT)?;
    setup::seed_crm(&rt.svc, &t, &sim.crm_seed).await?;
    connections::save_credentials(&rt.svc, &t, opts.system, &sim.credentials).await?;
    setup::map_typically(&rt.svc, &t, opts.system, &sim.typical).await?;
    let job = import::start_import(&rt.svc, &t, opts.system, StageSelection::All(AllStages::All)).await?;
    rt.run_until_done(&t, &job.id, &|_| {}).await?;
    let (addr, server) = crate::server::serve(rt.clone(), "127.0.0.1:0".parse()?).await?;
    rt.svc.tuning.public_url = Some(format!("http://{addr}"));
    if let Some(every) = sweep_every {
        rt.svc.tuning.sweep_every = every;
    }
    let view = connections::save_settings(&rt.svc, &t, opts.system, &json!({ "auto_sync": auto_sync })).await?;
    let hook = view.webhook.ok_or_else(|| anyhow::anyhow!("{auto_sync} sync gave no webhook set-up"))?;
    let webhook_url = hook.url.clone().unwrap_or_default();
    if hook.registered.is_none() {
        anyhow::ensure!(sim.handle().subscribe(&format!("{webhook_url}?token={}", hook.secret)), "no subscription");
    }
    let worker = rt.spawn_worker();
    Ok(Synced { sim, rt, t, system: opts.system, webhook_url, worker, server })
}

/// Waits until `check` holds, at most [`PATIENCE`]; whether it did.
pub async fn until(check: impl AsyncFn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < PATIENCE {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// A company type of `system` no CRM type is mapped to, and one that is (the simulators'
/// typical mappings); `None` where companies have no type.
pub fn type_pair(system: System) -> Option<(&'static str, &'static str)> {
    match system {
        System::ConnectWise => Some(("Vendor", "Client")),
        System::Halo => Some(("Supplier", "Customer")),
        System::Salesforce => Some(("Other", "Prospect")),
        System::Syncro => None,
    }
}
