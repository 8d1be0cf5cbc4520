//! The set-up the auto-sync tests share: a simulator, and a local runner serving HTTP whose
//! tenant imported it and switched auto-sync on (ConnectWise and Halo registered through
//! their APIs; Syncro and Salesforce subscribed by hand, as their admins would, with the URL
//! and secret the settings answer gives), its worker running.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tandem_connectors::http::{RetryPolicy, Settings};
use tandem_domain::ports::Connector;
use tandem_domain::usecases::connections;
use tandem_domain::usecases::import::{self, AllStages, StageSelection};
use tandem_domain::{System, TenantId};
use tandem_embedded::QueueConfig;
use tandem_local::runtime::LocalRuntime;
use tandem_local::server;
use tandem_local::setup;
use tandem_local::sims::{self, RunningSim, Scale};
use tandem_sim::SimConfig;

pub fn tenant() -> TenantId {
    TenantId::parse(server::DEFAULT_TENANT).unwrap()
}

fn settings() -> Settings {
    Settings {
        retry: RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(10), ..RetryPolicy::default() },
        pacing: tandem_connectors::Pacing::Off,
        ..Settings::default()
    }
}

// Each test file that includes this module reads only some of the fields.
#[allow(dead_code)]
pub struct Synced {
    pub sim: RunningSim,
    pub rt: LocalRuntime,
    pub system: System,
    pub webhook_url: String,
    /// The connection's own connector: reads the system as Tandem sees it.
    pub connector: Arc<dyn Connector>,
    _server: tokio::task::JoinHandle<()>,
    _worker: tokio::task::JoinHandle<()>,
}

/// `system`'s simulator and a runner whose tenant imported it and set `auto_sync` (which
/// must take changes in). Every poll also reconciles ids (by default once a day).
pub async fn synced(system: System, auto_sync: &str) -> Synced {
    let sim = sims::start(system, &Scale::new(5, 8), SimConfig::default(), 0).await.unwrap();
    if let Some(h) = sim.syncro() {
        h.set_requests_per_minute(None);
    }
    let mut rt = LocalRuntime::new(None, QueueConfig::default(), settings()).unwrap();
    let t = tenant();
    setup::seed_crm(&rt.svc, &t, &sim.crm_seed).await.unwrap();
    connections::save_credentials(&rt.svc, &t, system, &sim.credentials).await.unwrap();
    setup::map_typically(&rt.svc, &t, system, &sim.typical).await.unwrap();
    let job = import::start_import(&rt.svc, &t, system, StageSelection::All(AllStages::All)).await.unwrap();
    rt.run_until_done(&t, &job.id, &|_| {}).await.unwrap();
    let (addr, server) = server::serve(rt.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    rt.svc.tuning.public_url = Some(format!("http://{addr}"));
    rt.svc.tuning.sweep_every = Duration::ZERO;
    let view = connections::save_settings(&rt.svc, &t, system, &json!({ "auto_sync": auto_sync })).await.unwrap();
    let hook = view.webhook.expect("auto-sync taking changes in gives a webhook set-up");
    let url = hook.url.clone().expect("the runner knows its address");
    match system {
        System::ConnectWise | System::Halo => {
            assert!(hook.registered.is_some(), "{system} is registered through its API: {hook:?}")
        }
        System::Syncro | System::Salesforce => {
            assert!(hook.registered.is_none());
            assert!(sim.handle().subscribe(&format!("{url}?token={}", hook.secret)), "set up by hand");
        }
    }
    let worker = rt.spawn_worker();
    let connector = connections::connector(&rt.svc, &t, system).await.unwrap();
    Synced { sim, rt, system, webhook_url: url, connector, _server: server, _worker: worker }
}
