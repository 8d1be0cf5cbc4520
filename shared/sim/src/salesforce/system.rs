//! Salesforce as a [`SimulatedSystem`]: its org at a common [`Scale`], the queries a first
//! import runs (users, accounts, contacts, opportunities, tasks and events, in batches of at
//! most 2,000), and its running handle behind the shared [`RunningSystem`] shape.

use std::any::Any;
use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::error::ApiError;
use super::server::{DEFAULT_BATCH, MIN_BATCH};
use super::store::Stamp;
use super::webhooks;
use super::{GenConfig, SimHandle, Simulator, Tenant, typical_mapping};
use crate::common::Controls;
use crate::common::SimConfig;
use crate::seed::{CrmSeed, Expected};
use crate::system::{
    BoxFuture, CredentialFields, ListRead, PageSizes, RawList, RequestFloor, RunningSystem, Scale, SimTenant,
    SimulatedSystem, credentials_body,
};
use crate::truth;
use crate::webhooks::{Change, Kind, PersonError};

fn person_error(e: ApiError) -> PersonError {
    if e.status == axum::http::StatusCode::NOT_FOUND {
        PersonError::NotFound(format!("{e:?}"))
    } else {
        PersonError::Refused(format!("{e:?}"))
    }
}

/// The activity option events are mapped by (`typical::activity_option(None)`).
const EVENT: &str = "Event";

/// Each sObject the import queries, in stage order (salesforce-api.md 2-3).
const LISTS: &[(&str, &str)] = &[
    (truth::USERS, "User"),
    (truth::COMPANIES, "Account"),
    (truth::CONTACTS, "Contact"),
    (truth::OPPORTUNITIES, "Opportunity"),
    (truth::ACTIVITIES, "Task"),
    (truth::ACTIVITIES, EVENT),
];

impl SimulatedSystem for Simulator {
    fn name(&self) -> &'static str {
        "salesforce"
    }

    fn generate(&self, scale: &Scale) -> Box<dyn SimTenant> {
        Box::new(Tenant::generate(&GenConfig {
            users: scale.members,
            contacts: scale.contacts,
            opportunities: scale.opportunities,
            activities: scale.activities,
            ..GenConfig::with_companies(scale.seed, scale.companies)
        }))
    }

    fn typical_mapping(&self) -> super::TypicalMapping {
        typical_mapping()
    }

    fn page_sizes(&self) -> PageSizes {
        PageSizes { min: MIN_BATCH, max: DEFAULT_BATCH }
    }

    fn credential_fields(&self) -> CredentialFields {
        CredentialFields { site: "login_url", secrets: &["client_secret", "refresh_token"] }
    }

    fn issues_tokens(&self) -> bool {
        true
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

    /// Each query and its `queryMore` batches at 2,000.
    fn request_floor(&self) -> RequestFloor {
        let sizes = Tenant::stage_sizes(self);
        let events = self.plans.activities.iter().filter(|a| a.kind == EVENT).count();
        let lists = LISTS
            .iter()
            .map(|(stage, list)| {
                let records = match *list {
                    EVENT => events,
                    "Task" => self.plans.activities.len() - events,
                    _ => sizes.get(*stage).copied().unwrap_or(0),
                };
                ListRead { stage, list, records, max_page: Some(DEFAULT_BATCH), per_record_reads: 0 }
            })
            .collect();
        RequestFloor { lists }
    }

    fn raw_lists(&self) -> Vec<RawList> {
        LISTS.iter().map(|(stage, list)| RawList { stage, list, records: Tenant::records(self, list) }).collect()
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
    fn company_type_change(&self, type_name: &str) -> Option<Value> {
        Some(json!({"Type": type_name}))
    }

    fn company_name_field(&self) -> &'static str {
        "Name"
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

    fn expire_tokens(&self) -> bool {
        SimHandle::expire_sessions(self);
        true
    }

    /// The administrator's Outbound Message endpoint for Account, Contact, Opportunity
    /// and Task, set to `url` as given; each message carries the org id.
    fn subscribe(&self, url: &str) -> bool {
        self.app.subscriptions.add(url)
    }

    fn unsubscribe(&self, url: &str) -> bool {
        self.app.subscriptions.remove(url)
    }

    /// Fields as `POST /sobjects/{object}` takes them (Account, Contact, Opportunity, Task).
    fn create_as_person(&self, kind: Kind, fields: Value) -> Result<String, PersonError> {
        let object = webhooks::object_of(kind);
        let id = self.app.write().create(object, &fields, &Stamp { now: self.app.now() }).map_err(person_error)?;
        webhooks::changed(&self.app, object, &id, Change::Created);
        Ok(id)
    }

    fn edit_as_person(&self, kind: Kind, id: &str, changes: Value) -> Result<(), PersonError> {
        let object = webhooks::object_of(kind);
        self.app.write().update(object, id, &changes, &Stamp { now: self.app.now() }).map_err(person_error)?;
        webhooks::changed(&self.app, object, id, Change::Updated);
        Ok(())
    }

    /// `DELETE /sobjects/{object}/{id}` as a person would: to the recycle bin, logged for
    /// `sobjects/{object}/deleted/`; no Outbound Message is sent (webhooks.rs). The ground
    /// truth is the first import's and stays as it is, as for the other systems.
    fn delete_as_person(&self, kind: Kind, id: &str) -> Result<(), PersonError> {
        let object = webhooks::object_of(kind);
        self.app.write().delete(object, id, &Stamp { now: self.app.now() }).map_err(person_error)?;
        webhooks::changed(&self.app, object, id, Change::Deleted);
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn shutdown(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(SimHandle::shutdown(*self))
    }
}
