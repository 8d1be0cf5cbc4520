//! ConnectWise as a [`SimulatedSystem`]: its tenant at a common [`Scale`], the lists a first
//! import reads (pages of at most 1,000, plus one forecast read per opportunity), and its
//! running handle behind the shared [`RunningSystem`] shape.

use std::any::Any;
use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::error::ApiError;
use super::query::MAX_PAGE_SIZE;
use super::store::Stamp;
use super::{GenConfig, SimHandle, Simulator, Tenant, typical_mapping};
use super::{server, webhooks};
use crate::common::Controls;
use crate::common::{SimConfig, format_unix, now_unix};
use crate::seed::{CrmSeed, Expected};
use crate::system::{
    BoxFuture, CredentialFields, ListRead, PageSizes, RawList, RequestFloor, RunningSystem, Scale, SimTenant,
    SimulatedSystem, credentials_body,
};
use crate::truth;
use crate::webhooks::{Change, Kind, Origin, PersonError};

/// Who a person's change is stamped by, and when.
fn person_stamp() -> Stamp {
    Stamp { now: format_unix(now_unix()), by: webhooks::PERSON.to_string() }
}

fn record_id(id: &str) -> Result<i64, PersonError> {
    id.trim().parse().map_err(|_| PersonError::NotFound(format!("no record has the id {id:?}")))
}

fn person_error(e: ApiError) -> PersonError {
    if e.status == axum::http::StatusCode::NOT_FOUND {
        PersonError::NotFound(e.message)
    } else {
        PersonError::Refused(format!("{}: {}", e.code, e.message))
    }
}

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
    fn company_type_change(&self, type_name: &str) -> Option<Value> {
        let known = crate::connectwise::generator::COMPANY_TYPES.contains(&type_name);
        known.then(|| json!({"types": [crate::connectwise::generator::company_type_ref(type_name)]}))
    }

    fn company_name_field(&self) -> &'static str {
        "name"
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

    fn create_as_person(&self, kind: Kind, fields: Value) -> Result<String, PersonError> {
        let path = webhooks::path_of(kind);
        let rec = server::write(&self.app).create(path, fields, &person_stamp()).map_err(person_error)?;
        let id = rec.get("id").and_then(Value::as_i64).unwrap_or_default();
        webhooks::changed(&self.app, path, id, Change::Created, Some(&rec), &Origin::Person);
        Ok(id.to_string())
    }

    /// `changes` is an object of fields (JSON-Pointer paths allowed as keys, e.g.
    /// `"status/id"`), each replaced as a patch operation would.
    fn edit_as_person(&self, kind: Kind, id: &str, changes: Value) -> Result<(), PersonError> {
        let path = webhooks::path_of(kind);
        let id = record_id(id)?;
        let Value::Object(fields) = changes else {
            return Err(PersonError::Refused("the changes must be a JSON object of fields".into()));
        };
        let ops: Vec<Value> =
            fields.into_iter().map(|(k, v)| json!({"op": "replace", "path": format!("/{k}"), "value": v})).collect();
        let rec = server::write(&self.app).patch(path, id, Value::Array(ops), &person_stamp()).map_err(person_error)?;
        webhooks::changed(&self.app, path, id, Change::Updated, Some(&rec), &Origin::Person);
        Ok(())
    }

    fn delete_as_person(&self, kind: Kind, id: &str) -> Result<(), PersonError> {
        let path = webhooks::path_of(kind);
        let id = record_id(id)?;
        server::write(&self.app).delete(path, id).map_err(person_error)?;
        webhooks::changed(&self.app, path, id, Change::Deleted, None, &Origin::Person);
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn shutdown(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(SimHandle::shutdown(*self))
    }
}
