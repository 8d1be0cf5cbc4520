//! ConnectWise as a [`SimulatedSystem`]: its tenant at a common [`Scale`], the lists a first
//! import reads (pages of at most 1,000, plus one forecast read per opportunity), and its
//! running handle behind the shared [`RunningSystem`] shape.

use std::any::Any;
use std::collections::BTreeMap;

use serde_json::Value;

use super::query::MAX_PAGE_SIZE;
use super::{GenConfig, SimHandle, Simulator, Tenant, typical_mapping};
use crate::common::Controls;
use crate::common::SimConfig;
use crate::seed::{CrmSeed, Expected};
use crate::system::{
    BoxFuture, CredentialFields, ListRead, PageSizes, RawList, RequestFloor, RunningSystem, Scale, SimTenant,
    SimulatedSystem, credentials_body,
};
use crate::truth;

/// Each stage's collection path, in stage order (psa-apis.md 1.5-1.7).
const LISTS: &[(&str, &str)] = &[
    (truth::USERS, "system/members"),
    (truth::COMPANIES, "company/companies"),
    (truth::CONTACTS, "company/contacts"),
    (truth::SOLUTIONS, "procurement/catalog"),
    (truth::ACTIVITIES, "sales/activities"),
    (truth::OPPORTUNITIES, "sales/opportunities"),
];

impl SimulatedSystem for Simulator {
    fn name(&self) -> &'static str {
        "connectwise"
    }

    fn generate(&self, scale: &Scale) -> Box<dyn SimTenant> {
        Box::new(Tenant::generate(&GenConfig {
            members: scale.members,
            contacts: scale.contacts,
            opportunities: scale.opportunities,
            activities: scale.activities,
            catalog_items: scale.catalog_items,
            ..GenConfig::with_companies(scale.seed, scale.companies)
        }))
    }

    fn typical_mapping(&self) -> super::TypicalMapping {
        typical_mapping()
    }

    fn page_sizes(&self) -> PageSizes {
        PageSizes { min: 1, max: MAX_PAGE_SIZE }
    }

    fn credential_fields(&self) -> CredentialFields {
        CredentialFields { site: "site", secrets: &["private_key"] }
    }

    fn issues_tokens(&self) -> bool {
        false
    }
}

impl SimTenant for Tenant {
    fn expected(&self) -> &Expected {
        Tenant::expected(self)
    }

    fn crm_seed(&self) -> &CrmSeed {
        Tenant::crm_seed(self)
    }

    fn record_count(&self) -> usize {
        Tenant::record_count(self)
    }

    fn stage_sizes(&self) -> BTreeMap<String, usize> {
        Tenant::stage_sizes(self)
    }

    /// Every list at 1,000 a page, and one forecast read per opportunity: the list does not
    /// carry it (psa-apis.md 1.6).
    fn request_floor(&self) -> RequestFloor {
        let sizes = Tenant::stage_sizes(self);
        let lists = LISTS
            .iter()
            .map(|(stage, list)| {
                let records = sizes.get(*stage).copied().unwrap_or(0);
                let per_record_reads = if *stage == truth::OPPORTUNITIES { records } else { 0 };
                ListRead { stage, list, records, max_page: Some(MAX_PAGE_SIZE), per_record_reads }
            })
            .collect();
        RequestFloor { lists }
    }

    fn raw_lists(&self) -> Vec<RawList> {
        LISTS
            .iter()
            .map(|(stage, list)| RawList { stage, list, records: Tenant::records(self, list).to_vec() })
            .collect()
    }

    fn serve(
        self: Box<Self>,
        cfg: SimConfig,
        port: u16,
    ) -> BoxFuture<'static, std::io::Result<Box<dyn RunningSystem>>> {
        Box::pin(async move {
            let handle = Simulator::start(*self, cfg, port).await?;
            Ok(Box::new(handle) as Box<dyn RunningSystem>)
        })
    }
}

impl RunningSystem for SimHandle {
    fn controls(&self) -> &Controls {
        &self.app.controls
    }

    fn base_url(&self) -> String {
        SimHandle::base_url(self)
    }

    fn api_url(&self) -> String {
        SimHandle::api_url(self)
    }

    fn credentials(&self) -> Value {
        credentials_body(&SimHandle::credentials(self))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn shutdown(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(SimHandle::shutdown(*self))
    }
}
