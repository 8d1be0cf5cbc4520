//! The simulators the runner can start, behind one shape: start one for a system at a
//! scale, read the credentials to save, the typical MSP mapping, the CRM seed and the
//! ground truth of a full import, and stop it.

use serde_json::Value;
use std::collections::BTreeMap;

use tandem_domain::System;
use tandem_domain::external::OptionList;
use tandem_sim::{CrmSeed, Expected, SimConfig};
use tandem_sim::{connectwise as cw, halo, salesforce as sf, syncro as sy};

/// Option list -> (option name, CRM value or `None` for left unmapped).
pub type Typical = BTreeMap<OptionList, Vec<(String, Option<String>)>>;

/// The systems whose simulator is built.
pub const SIMULATED: &[System] = &[System::ConnectWise, System::Halo, System::Syncro, System::Salesforce];

/// How big and which tenant to generate; overrides apply where the system has that object.
#[derive(Clone, Debug, Default)]
pub struct Scale {
    pub seed: u64,
    pub companies: usize,
    pub members: Option<usize>,
    pub contacts: Option<usize>,
    pub opportunities: Option<usize>,
    pub activities: Option<usize>,
    pub catalog_items: Option<usize>,
}

impl Scale {
    /// `companies` companies from `seed`, the rest scaled from it.
    pub fn new(seed: u64, companies: usize) -> Self {
        Self { seed, companies, ..Self::default() }
    }
}

enum Handle {
    ConnectWise(cw::SimHandle),
    Halo(halo::SimHandle),
    Salesforce(sf::SimHandle),
    Syncro(sy::SimHandle),
}

/// A running simulator with what a demo or test needs from it.
pub struct RunningSim {
    pub system: System,
    pub base_url: String,
    /// The body that saves its credentials (`POST /connections/{system}`).
    pub credentials: Value,
    pub expected: Expected,
    pub crm_seed: CrmSeed,
    /// External records generated.
    pub records: usize,
    pub typical: Typical,
    handle: Handle,
}

macro_rules! typical {
    ($t:expr) => {{
        let t = $t;
        BTreeMap::from([
            (OptionList::Roles, t.roles),
            (OptionList::CompanyTypes, t.company_types),
            (OptionList::ContactTypes, t.contact_types),
            (OptionList::CatalogTypes, t.catalog_types),
            (OptionList::CatalogCategories, t.catalog_categories),
            (OptionList::BillingOptions, t.billing_options),
            (OptionList::ActivityTypes, t.activity_types),
            (OptionList::OpportunityStatuses, t.opportunity_statuses),
        ])
    }};
}

/// The typical MSP mapping of a simulated system, by option name.
pub fn typical(system: System) -> Option<Typical> {
    match system {
        System::ConnectWise => Some(typical!(cw::typical_mapping())),
        System::Halo => Some(typical!(halo::typical_mapping())),
        System::Syncro => Some(typical!(sy::typical_mapping())),
        System::Salesforce => Some(typical!(sf::typical_mapping())),
    }
}

fn body<T: serde::Serialize>(creds: &T) -> anyhow::Result<Value> {
    let mut v = serde_json::to_value(creds)?;
    if let Some(obj) = v.as_object_mut() {
        obj.retain(|_, v| !v.is_null());
    }
    Ok(v)
}

/// Generates a tenant with `$gen`, starts the `$m` simulator and wraps its handle.
macro_rules! launch {
    ($m:ident, $variant:ident, $system:expr, $gen:expr, $cfg:expr, $port:expr) => {{
        let tenant = $m::Tenant::generate(&$gen);
        let (expected, crm_seed, records) =
            (tenant.expected().clone(), tenant.crm_seed().clone(), tenant.record_count());
        let h = $m::Simulator::start(tenant, $cfg, $port).await?;
        Ok(RunningSim {
            system: $system,
            base_url: h.base_url(),
            credentials: body(&h.credentials())?,
            expected,
            crm_seed,
            records,
            typical: typical!($m::typical_mapping()),
            handle: Handle::$variant(h),
        })
    }};
}

/// Starts `system`'s simulator with a generated tenant on `port` (0: any).
pub async fn start(system: System, scale: &Scale, cfg: SimConfig, port: u16) -> anyhow::Result<RunningSim> {
    let (seed, companies) = (scale.seed, scale.companies);
    match system {
        System::ConnectWise => launch!(
            cw,
            ConnectWise,
            system,
            cw::GenConfig {
                members: scale.members,
                contacts: scale.contacts,
                opportunities: scale.opportunities,
                activities: scale.activities,
                catalog_items: scale.catalog_items,
                ..cw::GenConfig::with_companies(seed, companies)
            },
            cfg,
            port
        ),
        System::Halo => launch!(
            halo,
            Halo,
            system,
            halo::GenConfig {
                members: scale.members,
                contacts: scale.contacts,
                opportunities: scale.opportunities,
                activities: scale.activities,
                ..halo::GenConfig::with_companies(seed, companies)
            },
            cfg,
            port
        ),
        System::Syncro => launch!(
            sy,
            Syncro,
            system,
            sy::GenConfig {
                users: scale.members,
                contacts: scale.contacts,
                leads: scale.opportunities,
                ..sy::GenConfig::with_companies(seed, companies)
            },
            cfg,
            port
        ),
        System::Salesforce => launch!(
            sf,
            Salesforce,
            system,
            sf::GenConfig {
                users: scale.members,
                contacts: scale.contacts,
                opportunities: scale.opportunities,
                activities: scale.activities,
                ..sf::GenConfig::with_companies(seed, companies)
            },
            cfg,
            port
        ),
    }
}

impl RunningSim {
    /// Stops the simulator.
    pub async fn shutdown(self) {
        match self.handle {
            Handle::ConnectWise(h) => h.shutdown().await,
            Handle::Halo(h) => h.shutdown().await,
            Handle::Syncro(h) => h.shutdown().await,
            Handle::Salesforce(h) => h.shutdown().await,
        }
    }

    /// Requests the simulator has received so far.
    pub fn requests(&self) -> u64 {
        match &self.handle {
            Handle::ConnectWise(h) => h.stats().requests,
            Handle::Halo(h) => h.stats().requests,
            Handle::Syncro(h) => h.stats().requests,
            Handle::Salesforce(h) => h.stats().requests,
        }
    }

    /// The ConnectWise handle, for tests that inject faults.
    pub fn connectwise(&self) -> Option<&cw::SimHandle> {
        match &self.handle {
            Handle::ConnectWise(h) => Some(h),
            _ => None,
        }
    }

    /// The HaloPSA handle, for tests that inject faults.
    pub fn halo(&self) -> Option<&halo::SimHandle> {
        match &self.handle {
            Handle::Halo(h) => Some(h),
            _ => None,
        }
    }

    /// The Syncro handle, for tests that inject faults.
    pub fn syncro(&self) -> Option<&sy::SimHandle> {
        match &self.handle {
            Handle::Syncro(h) => Some(h),
            _ => None,
        }
    }
}
