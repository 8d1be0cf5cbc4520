//! The Salesforce simulator: a seeded org ([`Tenant`]) with its CRM seed and ground truth,
//! and a stateful HTTP server ([`Simulator`]) speaking the OAuth 2.0 token endpoint and the
//! REST API shapes of salesforce-api.md sections 1-3, 5 and 6.4 (the delete log), controlled
//! through a [`SimHandle`].

#[cfg(test)]
#[path = "api_tests.rs"]
mod api_tests;
mod auth;
mod error;
mod generator;
mod replication;
mod schema;
mod server;
mod soql;
mod store;
mod system;
mod truth;
pub mod typical;
mod webhooks;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::common::{SimConfig, SimStats};
pub use crate::seed::{CrmSeed, Expected, SeedCompany, SeedContact, SeedUser};
pub use error::ThrottleAnswer;
pub use generator::GenConfig;
pub use typical::{NO_TYPE, TypicalMapping, typical_mapping};

use crate::common::{Controls, Served};
use auth::Access;
use server::App;
use store::{Store, TenantData};
use truth::Plans;

/// The API version the simulator's own URLs use (`/services/data/v62.0/...`).
pub const API_VERSION: &str = server::API_VERSION;

/// What a connector needs to reach the simulated org as its connected app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// Where the token endpoint lives: the simulator's base URL (`http://127.0.0.1:PORT`).
    pub login_url: String,
    /// The connected app's consumer key.
    pub client_id: String,
    /// The connected app's consumer secret.
    pub client_secret: String,
    /// A refresh token the org accepts (as if issued by the web-server flow).
    pub refresh_token: String,
}

/// A generated Salesforce org: its data, the CRM seed, and the ground truth of a full
/// import with the typical mapping.
#[derive(Clone, Debug)]
pub struct Tenant {
    data: TenantData,
    crm_seed: CrmSeed,
    expected: Expected,
    access: Access,
    plans: Plans,
}

impl Tenant {
    /// Generates the org of `cfg` (deterministic for a seed and sizes).
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

    /// Number of records the import reads (users, accounts, contacts, opportunities, tasks
    /// and events; deleted accounts and leads are not read).
    pub fn record_count(&self) -> usize {
        self.stage_sizes().values().sum()
    }

    /// Records per import stage (`users`, `companies`, `contacts`, `opportunities`, `activities`).
    pub fn stage_sizes(&self) -> std::collections::BTreeMap<String, usize> {
        let p = &self.plans;
        [
            (truth::USERS, p.users.len()),
            (truth::COMPANIES, p.companies.len()),
            (truth::CONTACTS, p.contacts.len()),
            (truth::OPPORTUNITIES, p.opportunities),
            (truth::ACTIVITIES, p.activities.len()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The generated rows of one sObject (every field, deleted rows included), as stored
    /// before any write.
    pub fn records(&self, object: &str) -> Vec<serde_json::Value> {
        self.data.rows(object).iter().map(|r| serde_json::Value::Object(r.clone())).collect()
    }
}

/// The Salesforce simulator.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// Serves `tenant` on 127.0.0.1:`port` (0: any free port). Needs a Tokio runtime.
    pub async fn start(tenant: Tenant, cfg: SimConfig, port: u16) -> std::io::Result<SimHandle> {
        let Tenant { data, crm_seed, expected, access, .. } = tenant;
        let store = Store::new(data);
        let mut app_slot: Option<Arc<App>> = None;
        let served = Served::start(port, |base_url| {
            let app = Arc::new(App::new(store, Controls::new(&cfg), access, base_url));
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
    /// `http://127.0.0.1:PORT`: both the login URL and the instance URL.
    pub fn base_url(&self) -> String {
        self.served.base_url()
    }

    /// The REST root, `http://127.0.0.1:PORT/services/data/v62.0`.
    pub fn api_url(&self) -> String {
        format!("{}/services/data/{API_VERSION}", self.base_url())
    }

    /// Valid credentials of the org's connected app.
    pub fn credentials(&self) -> Credentials {
        Credentials {
            login_url: self.base_url(),
            client_id: self.app.access.client_id.clone(),
            client_secret: self.app.access.client_secret.clone(),
            refresh_token: self.app.access.refresh_token.clone(),
        }
    }

    /// The org id (18 characters).
    pub fn org_id(&self) -> String {
        self.app.access.org_id.clone()
    }

    /// The next `n` authenticated data requests answer `status` with a Salesforce error body.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.app.controls.fail_next(n, status);
    }

    /// Changes the rate limit (`None`: unlimited).
    pub fn set_requests_per_second(&self, limit: Option<u32>) {
        self.app.controls.set_requests_per_second(limit);
    }

    /// How requests above the rate limit are answered (429 by default).
    pub fn set_throttle_answer(&self, answer: ThrottleAnswer) {
        *self.app.throttle_answer.lock().unwrap_or_else(|e| e.into_inner()) = answer;
    }

    /// Changes the delay before every answer.
    pub fn set_latency(&self, d: Duration) {
        self.app.controls.set_latency(d);
    }

    /// Every issued token becomes invalid: the next data call answers 401 `INVALID_SESSION_ID`.
    pub fn expire_sessions(&self) {
        self.app.sessions.expire_all();
    }

    /// The daily API allocation: once this many data calls were counted, every further one
    /// answers 403 `REQUEST_LIMIT_EXCEEDED`. `None`: no limit.
    pub fn set_daily_limit(&self, limit: Option<u32>) {
        self.app.daily_limit.store(limit.unwrap_or(0), Ordering::SeqCst);
    }

    /// Sets the org's clock `secs` seconds off the wall clock (negative: behind) from now
    /// on: writes and deletes are stamped with it, and the delete log's window
    /// (`sobjects/{Type}/deleted/`) is measured from it. 0 puts it back.
    pub fn set_clock_offset(&self, secs: i64) {
        self.app.clock_offset.store(secs, Ordering::SeqCst);
    }

    /// Data calls counted against the daily allocation so far.
    pub fn api_usage(&self) -> u64 {
        self.app.api_usage.load(Ordering::SeqCst)
    }

    /// Counters since start.
    pub fn stats(&self) -> SimStats {
        self.app.controls.stats()
    }

    /// Ground truth of a full import of the generated org.
    pub fn expected(&self) -> Expected {
        (*self.expected).clone()
    }

    /// The CRM seed of the generated org.
    pub fn crm_seed(&self) -> CrmSeed {
        (*self.crm_seed).clone()
    }

    /// Stops the server (open requests get up to 5 s to finish).
    pub async fn shutdown(self) {
        self.served.stop().await;
    }
}
