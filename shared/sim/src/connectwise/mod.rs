//! The ConnectWise Manage (PSA) simulator: a seeded tenant ([`Tenant`]) with its CRM seed
//! and ground truth, and a stateful HTTP server ([`Simulator`]) speaking the REST API 3.0
//! shapes of psa-apis.md section 1, controlled through a [`SimHandle`].

mod auth;
mod custom_fields;
mod error;
mod generator;
mod query;
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
pub use generator::GenConfig;
pub use typical::{NO_TYPE, TypicalMapping, typical_mapping};

use crate::common::{Controls, Served};
use auth::{Access, ApiMember};
use server::App;
use store::{Store, TenantData};
use truth::Plans;

/// Everything needed to call the simulated API as one API member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// Base URL of the site, e.g. `http://127.0.0.1:PORT`.
    pub site: String,
    /// The login company.
    pub company_id: String,
    /// The API member's public key.
    pub public_key: String,
    /// The API member's private key.
    pub private_key: String,
    /// The integration's clientId header value.
    pub client_id: String,
}

/// A generated ConnectWise tenant: its data, the CRM seed, and the ground truth of a full
/// import with the typical mapping.
#[derive(Clone, Debug)]
pub struct Tenant {
    data: TenantData,
    crm_seed: CrmSeed,
    expected: Expected,
    access: Access,
    plans: Plans,
    record_count: usize,
}

impl Tenant {
    /// Generates the tenant of `cfg` (deterministic for a seed and sizes).
    pub fn generate(cfg: &GenConfig) -> Tenant {
        let g = generator::generate(cfg);
        let expected = truth::expected(&g.plans, &typical_mapping());
        let p = &g.plans;
        let record_count = p.members.len()
            + p.companies.len()
            + p.contacts.len()
            + p.solutions.len()
            + p.activities.len()
            + p.opportunities;
        Tenant { data: g.data, crm_seed: g.seed, expected, access: g.access, plans: g.plans, record_count }
    }

    /// The CRM records as they were before the first import.
    pub fn crm_seed(&self) -> &CrmSeed {
        &self.crm_seed
    }

    /// Ground truth of a full import with [`typical_mapping`]: stage -> outcome -> count.
    pub fn expected(&self) -> &Expected {
        &self.expected
    }

    /// Number of external records (members, companies, contacts, opportunities,
    /// activities and catalog items).
    pub fn record_count(&self) -> usize {
        self.record_count
    }

    /// Generated records per import stage (`users`, `companies`, `contacts`,
    /// `solutions`, `activities`, `opportunities`).
    pub fn stage_sizes(&self) -> std::collections::BTreeMap<String, usize> {
        let p = &self.plans;
        [
            (truth::USERS, p.members.len()),
            (truth::COMPANIES, p.companies.len()),
            (truth::CONTACTS, p.contacts.len()),
            (truth::SOLUTIONS, p.solutions.len()),
            (truth::ACTIVITIES, p.activities.len()),
            (truth::OPPORTUNITIES, p.opportunities),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The tenant's generated records of one collection path (e.g. `company/contacts`),
    /// as the API serves them before any write.
    pub fn records(&self, path: &str) -> &[serde_json::Value] {
        self.data.collections.iter().find(|(p, _)| *p == path).map_or(&[], |(_, r)| r.as_slice())
    }
}

/// The ConnectWise simulator.
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
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.served.base_url()
    }

    /// The REST root: `http://127.0.0.1:PORT/v4_6_release/apis/3.0`.
    pub fn api_url(&self) -> String {
        format!("{}/{}apis/3.0", self.base_url(), server::CODEBASE)
    }

    fn credentials_of(&self, member: Option<&ApiMember>) -> Credentials {
        Credentials {
            site: self.base_url(),
            company_id: self.app.access.company_id.clone(),
            public_key: member.map(|m| m.public_key.clone()).unwrap_or_default(),
            private_key: member.map(|m| m.private_key.clone()).unwrap_or_default(),
            client_id: self.app.access.client_id.clone(),
        }
    }

    /// Valid credentials of the API member with full rights.
    pub fn credentials(&self) -> Credentials {
        self.credentials_of(self.app.access.full())
    }

    /// Valid credentials of an API member whose security role may call `/system/info`
    /// but gets 403 on every data endpoint.
    pub fn restricted_credentials(&self) -> Credentials {
        self.credentials_of(self.app.access.restricted())
    }

    /// Valid credentials of a second API member with full rights: another integration of
    /// the same tenant, whose changes a self-suppressed callback of the first still tells.
    pub fn other_credentials(&self) -> Credentials {
        self.credentials_of(self.app.access.other())
    }

    /// The next `n` authenticated API requests answer `status` with a CW error body.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.app.controls.fail_next(n, status);
    }

    /// Changes the rate limit (`None`: unlimited).
    pub fn set_requests_per_second(&self, limit: Option<u32>) {
        self.app.controls.set_requests_per_second(limit);
    }

    /// Changes the delay before every answer.
    pub fn set_latency(&self, d: Duration) {
        self.app.controls.set_latency(d);
    }

    /// Counters since start.
    pub fn stats(&self) -> SimStats {
        self.app.controls.stats()
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
