//! Syncro as a [`SimulatedSystem`]: its tenant at a common [`Scale`], the lists a first
//! import reads (the user list in one answer plus each user's details, the other lists in
//! fixed pages of 25), and its running handle behind the shared [`RunningSystem`] shape.

use std::any::Any;
use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::error::ApiError;
use super::server::now_text;
use super::{GenConfig, PAGE_SIZE, SimHandle, Simulator, Tenant, typical_mapping};
use super::{server, webhooks};
use crate::common::Controls;
use crate::common::{SimConfig, SimStats};
use crate::seed::{CrmSeed, Expected};
use crate::system::{
    BoxFuture, CredentialFields, ListRead, PageSizes, RawList, RequestFloor, RunningSystem, Scale, SimTenant,
    SimulatedSystem, credentials_body,
};
use crate::truth;
use crate::webhooks::{Change, Kind, PersonError};

fn resource(kind: Kind) -> Result<super::store::Kind, PersonError> {
    webhooks::resource_of(kind)
        .ok_or_else(|| PersonError::Unsupported(format!("Syncro has no {} records here", kind.as_str())))
}

fn record_id(id: &str) -> Result<i64, PersonError> {
    id.trim().parse().map_err(|_| PersonError::NotFound(format!("no record has the id {id:?}")))
}

fn person_error(e: ApiError) -> PersonError {
    if e.status == axum::http::StatusCode::NOT_FOUND {
        PersonError::NotFound(format!("{e:?}"))
    } else {
        PersonError::Refused(format!("{e:?}"))
    }
}

/// Each list the import reads: (stage, resource, paged), in stage order (psa-apis.md 3.3-3.6).
const LISTS: &[(&str, &str, bool)] = &[
    (truth::USERS, "users", false),
    (truth::COMPANIES, "customers", true),
    (truth::CONTACTS, "contacts", true),
    (truth::OPPORTUNITIES, "leads", true),
];

impl SimulatedSystem for Simulator {
    fn name(&self) -> &'static str {
        "syncro"
    }

    fn generate(&self, scale: &Scale) -> Box<dyn SimTenant> {
        Box::new(Tenant::generate(&GenConfig {
            users: scale.members,
            contacts: scale.contacts,
            leads: scale.opportunities,
            ..GenConfig::with_companies(scale.seed, scale.companies)
        }))
    }

    fn typical_mapping(&self) -> super::TypicalMapping {
        typical_mapping()
    }

    fn page_sizes(&self) -> PageSizes {
        PageSizes { min: PAGE_SIZE, max: PAGE_SIZE }
    }

    fn credential_fields(&self) -> CredentialFields {
        CredentialFields { site: "site", secrets: &["api_key"] }
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

    /// `/users` answers ids and names only, so each user's details are one read each
    /// (`/users/{id}`); the other lists come 25 a page.
    fn request_floor(&self) -> RequestFloor {
        let sizes = Tenant::stage_sizes(self);
        let lists = LISTS
            .iter()
            .map(|(stage, list, paged)| {
                let records = sizes.get(*stage).copied().unwrap_or(0);
                let per_record_reads = if *paged { 0 } else { records };
                ListRead { stage, list, records, max_page: paged.then_some(PAGE_SIZE), per_record_reads }
            })
            .collect();
        RequestFloor { lists }
    }

    fn raw_lists(&self) -> Vec<RawList> {
        LISTS
            .iter()
            .map(|(stage, list, _)| RawList { stage, list, records: Tenant::records(self, list).to_vec() })
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
    fn company_name_field(&self) -> &'static str {
        "business_name"
    }

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

    fn stats(&self) -> SimStats {
        SimHandle::stats(self)
    }

    /// Turns off the documented 180 requests per minute.
    fn lift_vendor_limits(&self) {
        SimHandle::set_requests_per_minute(self, None);
    }

    /// Syncro counts per minute: one request per 300 ms window keeps `Retry-After` at 1 s.
    fn throttle(&self) {
        SimHandle::set_requests_per_minute(self, Some(1));
        SimHandle::set_rate_window(self, Duration::from_millis(300));
    }

    /// The administrator's notification set, pointed at `url` as given.
    fn subscribe(&self, url: &str) -> bool {
        self.app.subscriptions.add(url)
    }

    fn unsubscribe(&self, url: &str) -> bool {
        self.app.subscriptions.remove(url)
    }

    /// Fields as `POST /{plural}` takes them (customers, contacts, leads).
    fn create_as_person(&self, kind: Kind, fields: Value) -> Result<String, PersonError> {
        let resource = resource(kind)?;
        let out = server::write(&self.app).create(resource, fields, &now_text()).map_err(person_error)?;
        let rec = webhooks::unwrapped(resource, &out);
        webhooks::changed(&self.app, resource, &rec, Change::Created);
        Ok(rec.get("id").and_then(Value::as_i64).unwrap_or_default().to_string())
    }

    fn edit_as_person(&self, kind: Kind, id: &str, changes: Value) -> Result<(), PersonError> {
        let resource = resource(kind)?;
        let id = record_id(id)?;
        let out = server::write(&self.app).update(resource, id, changes, &now_text()).map_err(person_error)?;
        webhooks::changed(&self.app, resource, &webhooks::unwrapped(resource, &out), Change::Updated);
        Ok(())
    }

    fn delete_as_person(&self, kind: Kind, id: &str) -> Result<(), PersonError> {
        let resource = resource(kind)?;
        let id = record_id(id)?;
        let mut store = server::write(&self.app);
        let before = store.get(resource, id).map_err(person_error)?;
        store.delete(resource, id).map_err(person_error)?;
        drop(store);
        webhooks::changed(&self.app, resource, &webhooks::unwrapped(resource, &before), Change::Deleted);
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn shutdown(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(SimHandle::shutdown(*self))
    }
}
