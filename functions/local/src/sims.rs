//! The simulators the runner can start, behind tandem-sim's one shape: start one for a
//! system at a scale, read the credentials to save, the typical MSP mapping, the CRM seed,
//! the ground truth of a full import and the fewest requests it needs, and stop it. No
//! per-system arm lives here: the registry in tandem-sim answers by the system's name.

use serde_json::Value;
use std::collections::BTreeMap;

use tandem_domain::System;
use tandem_domain::external::OptionList;
use tandem_sim::{CrmSeed, Expected, RequestFloor, RunningSystem, SimConfig, SimulatedSystem};
use tandem_sim::{connectwise as cw, halo, syncro as sy};

pub use tandem_sim::Scale;

/// Option list -> (option name, CRM value or `None` for left unmapped).
pub type Typical = BTreeMap<OptionList, Vec<(String, Option<String>)>>;

/// The systems whose simulator is built.
pub const SIMULATED: &[System] = &[System::ConnectWise, System::Halo, System::Syncro, System::Salesforce];

/// The simulator of `system`, when one is built.
pub fn simulated(system: System) -> Option<&'static dyn SimulatedSystem> {
    tandem_sim::simulator(system.as_str())
}

fn simulated_or_err(system: System) -> anyhow::Result<&'static dyn SimulatedSystem> {
    simulated(system).ok_or_else(|| anyhow::anyhow!("{} has no simulator", system.display_name()))
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
    /// The fewest requests a first full import of the generated tenant can make.
    pub floor: RequestFloor,
    handle: Box<dyn RunningSystem>,
}

/// The typical MSP mapping of a simulated system, by option name.
pub fn typical(system: System) -> Option<Typical> {
    let t = simulated(system)?.typical_mapping();
    Some(BTreeMap::from([
        (OptionList::Roles, t.roles),
        (OptionList::CompanyTypes, t.company_types),
        (OptionList::ContactTypes, t.contact_types),
        (OptionList::CatalogTypes, t.catalog_types),
        (OptionList::CatalogCategories, t.catalog_categories),
        (OptionList::BillingOptions, t.billing_options),
        (OptionList::ActivityTypes, t.activity_types),
        (OptionList::OpportunityStatuses, t.opportunity_statuses),
    ]))
}

/// Starts `system`'s simulator with a generated tenant on `port` (0: any).
pub async fn start(system: System, scale: &Scale, cfg: SimConfig, port: u16) -> anyhow::Result<RunningSim> {
    let sim = simulated_or_err(system)?;
    let tenant = sim.generate(scale);
    let (expected, crm_seed, records, floor) =
        (tenant.expected().clone(), tenant.crm_seed().clone(), tenant.record_count(), tenant.request_floor());
    let handle = tenant.serve(cfg, port).await?;
    Ok(RunningSim {
        system,
        base_url: handle.base_url(),
        credentials: handle.credentials(),
        expected,
        crm_seed,
        records,
        typical: typical(system).unwrap_or_default(),
        floor,
        handle,
    })
}

impl RunningSim {
    /// Stops the simulator.
    pub async fn shutdown(self) {
        self.handle.shutdown().await;
    }

    /// Requests the simulator has received so far.
    pub fn requests(&self) -> u64 {
        self.handle.stats().requests
    }

    /// The running simulator's common knobs and counters.
    pub fn handle(&self) -> &dyn RunningSystem {
        self.handle.as_ref()
    }

    /// The ConnectWise handle, for tests that inject faults.
    pub fn connectwise(&self) -> Option<&cw::SimHandle> {
        self.handle.as_any().downcast_ref()
    }

    /// The HaloPSA handle, for tests that inject faults.
    pub fn halo(&self) -> Option<&halo::SimHandle> {
        self.handle.as_any().downcast_ref()
    }

    /// The Syncro handle, for tests that inject faults.
    pub fn syncro(&self) -> Option<&sy::SimHandle> {
        self.handle.as_any().downcast_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_simulated_system_has_a_simulator_and_every_simulator_a_system() {
        for system in SIMULATED {
            assert_eq!(simulated(*system).map(|s| s.name()), Some(system.as_str()));
            assert!(typical(*system).is_some_and(|t| !t[&OptionList::Roles].is_empty()), "{system}");
        }
        for sim in tandem_sim::simulators() {
            assert!(SIMULATED.iter().any(|s| s.as_str() == sim.name()), "{} is not listed", sim.name());
        }
    }

    #[tokio::test]
    async fn a_started_simulator_hands_out_its_own_typed_handle_only() {
        let sim = start(System::Syncro, &Scale::new(1, 3), SimConfig::default(), 0).await.expect("starts");
        assert!(sim.syncro().is_some());
        assert!(sim.connectwise().is_none() && sim.halo().is_none());
        assert!(sim.floor.total() > 0);
        assert_eq!(sim.handle().base_url(), sim.base_url);
        sim.shutdown().await;
    }
}
