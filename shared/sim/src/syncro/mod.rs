//! The Syncro (SyncroMSP) simulator: a seeded tenant ([`Tenant`]) with its CRM seed and
//! ground truth, and a stateful HTTP server ([`Simulator`]) speaking the `/api/v1` shapes of
//! psa-apis.md section 3, controlled through a [`SimHandle`].

mod auth;
mod error;
mod generator;
mod server;
mod store;
mod system;
mod truth;
pub mod typical;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::common::{SimConfig, SimStats};
pub use crate::seed::{CrmSeed, Expected, SeedCompany, SeedContact, SeedUser};
pub use generator::{GROUPS, GenConfig, LEAD_STATUSES};
pub use server::DEFAULT_REQUESTS_PER_MINUTE;
pub use store::PAGE_SIZE;
pub use typical::{NO_TYPE, TypicalMapping, typical_mapping};

use crate::common::{Controls, Served};
use auth::{Access, ApiToken};
use server::{App, RateLimit};
use store::{Kind, Store, TenantData};
use truth::Plans;

/// Everything needed to call the simulated API with one API token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// Base URL of the account, e.g. `http://127.0.0.1:PORT` (the API is under `/api/v1`).
    pub site: String,
    /// The API token.
    pub api_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("site", &self.site).field("api_key", &"***").finish()
    }
}

/// A generated Syncro tenant: its data, the CRM seed, and the ground truth of a full import
/// with the typical mapping.
#[derive(Clone, Debug)]
pub struct Tenant {
    data: TenantData,
    crm_seed: CrmSeed,
    expected: Expected,
    access: Access,
    plans: Plans,
}

impl Tenant {
    /// Generates the tenant of `cfg` (deterministic for a seed and sizes).
    pub fn generate(cfg: &GenConfig) -> Tenant {
        let g = generator::generate(cfg);
        let expected = truth::expected(&g.plans, &typical_mapping());
        Tenant { data: g.data, crm_seed: g.seed, expected, access: g.access, plans: g.plans }
    }

    /// The CRM records as they were before the first import.
    pub fn crm_seed(&self) -> &CrmSeed {
        &self.crm_seed
    }

    /// Ground truth of a full import with [`typical_mapping`]: stage -> outcome -> count.
    pub fn expected(&self) -> &Expected {
        &self.expected
    }

    /// Number of external records (users, customers, contacts and leads).
    pub fn record_count(&self) -> usize {
        self.stage_sizes().values().sum()
    }

    /// Generated records per import stage (`users`, `companies`, `contacts`, `opportunities`).
    pub fn stage_sizes(&self) -> std::collections::BTreeMap<String, usize> {
        let p = &self.plans;
        [
            (truth::USERS, p.users.len()),
            (truth::COMPANIES, p.companies.len()),
            (truth::CONTACTS, p.contacts.len()),
            (truth::OPPORTUNITIES, p.leads),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The tenant's generated records of one resource (`users` as `/users/{id}` details
    /// them, `customers` including disabled ones, `contacts`, `leads`), before any write.
    pub fn records(&self, resource: &str) -> &[serde_json::Value] {
        Kind::of(resource).map_or(&[], |k| self.data.of(k))
    }
}

/// The Syncro simulator.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// Serves `tenant` on 127.0.0.1:`port` (0: any free port) with the documented limit of
    /// [`DEFAULT_REQUESTS_PER_MINUTE`] (change it with [`SimHandle::set_requests_per_minute`]).
    /// `cfg.requests_per_second`, when set, applies on top. Needs a Tokio runtime.
    pub async fn start(tenant: Tenant, cfg: SimConfig, port: u16) -> std::io::Result<SimHandle> {
        let Tenant { data, crm_seed, expected, access, .. } = tenant;
        let store = Store::new(data);
        let mut app_slot: Option<Arc<App>> = None;
        let served = Served::start(port, |_base_url| {
            let rate = RateLimit::new(Some(DEFAULT_REQUESTS_PER_MINUTE));
            let app = Arc::new(App::new(store, Controls::new(&cfg), rate, access));
            app_slot = Some(Arc::clone(&app));
            server::router(app)
        })
        .await?;
        let app = app_slot.ok_or_else(|| std::io::Error::other("the simulator's router was not built"))?;
        Ok(SimHandle { served, app, crm_seed: Arc::new(crm_seed), expected: Arc::new(expected) })
    }
}

/// A running simulator. Dropping it stops the server too.
#[derive(Debug)]
pub struct SimHandle {
    served: Served,
    app: Arc<App>,
    crm_seed: Arc<CrmSeed>,
    expected: Arc<Expected>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.served.base_url()
    }

    /// The REST root: `http://127.0.0.1:PORT/api/v1`.
    pub fn api_url(&self) -> String {
        format!("{}/{}", self.base_url(), server::API_PREFIX)
    }

    fn credentials_of(&self, token: Option<&ApiToken>) -> Credentials {
        Credentials { site: self.base_url(), api_key: token.map(|t| t.token.clone()).unwrap_or_default() }
    }

    /// Valid credentials of the API token with full rights.
    pub fn credentials(&self) -> Credentials {
        self.credentials_of(self.app.access.full())
    }

    /// Valid credentials of a token whose permissions lack contacts: `/me`, users,
    /// customers and leads answer, `/contacts` answers the permission 401.
    pub fn restricted_credentials(&self) -> Credentials {
        self.credentials_of(self.app.access.restricted())
    }

    /// The next `n` authenticated API requests answer `status`.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.app.controls.fail_next(n, status);
    }

    /// Changes the per-minute rate limit (`None`: unlimited; default 180).
    pub fn set_requests_per_minute(&self, limit: Option<u32>) {
        self.app.rate.set_limit(limit);
    }

    /// Changes the window the per-minute limit counts over (default 60 s), so tests can
    /// exercise throttling without waiting a minute.
    pub fn set_rate_window(&self, window: Duration) {
        self.app.rate.set_window(window);
    }

    /// Changes the delay before every answer.
    pub fn set_latency(&self, d: Duration) {
        self.app.controls.set_latency(d);
    }

    /// Counters since start (`throttled` counts both limits).
    pub fn stats(&self) -> SimStats {
        let mut s = self.app.controls.stats();
        s.throttled += self.app.rate.throttled();
        s
    }

    /// Ground truth of a full import of the generated tenant.
    pub fn expected(&self) -> Expected {
        (*self.expected).clone()
    }

    /// The CRM seed of the generated tenant.
    pub fn crm_seed(&self) -> CrmSeed {
        (*self.crm_seed).clone()
    }

    /// Stops the server (open requests get up to 5 s to finish).
    pub async fn shutdown(self) {
        self.served.stop().await;
    }
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod api_tests;
