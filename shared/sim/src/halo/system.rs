//! HaloPSA as a [`SimulatedSystem`]: its tenant at a common [`Scale`], the lists a first
//! import reads (agents in one answer; clients, users, opportunities, CRM notes and actions
//! in pages of at most 100), and its running handle behind the shared [`RunningSystem`] shape.

use std::any::Any;
use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::error::ApiError;
use super::store::{ACTIONS, AGENT, CLIENT, CRM_NOTE, MAX_PAGE_SIZE, OPPORTUNITIES, USERS, spec_of};
use super::{CRM_NOTE_KIND, GenConfig, SimHandle, Simulator, Tenant, typical_mapping};
use super::{server, webhooks};
use crate::common::Controls;
use crate::common::{SimConfig, format_unix, now_unix};
use crate::seed::{CrmSeed, Expected};
use crate::system::{
    BoxFuture, CredentialFields, ListRead, PageSizes, RawList, RequestFloor, RunningSystem, Scale, SimTenant,
    SimulatedSystem, credentials_body,
};
use crate::truth;
use crate::webhooks::{Change, Kind, PersonError};

/// The resource of a kind (an activity id prefixed `action-` is a ticket action).
fn resource_of(kind: Kind, id: &str) -> &'static str {
    match kind {
        Kind::Company => CLIENT,
        Kind::Contact => USERS,
        Kind::Opportunity => OPPORTUNITIES,
        Kind::Activity if id.starts_with("action-") => ACTIONS,
        Kind::Activity => CRM_NOTE,
    }
}

fn resource_and_id(kind: Kind, id: &str) -> Result<(&'static str, i64), PersonError> {
    let resource = resource_of(kind, id);
    let digits = id.trim_start_matches("action-").trim_start_matches("note-");
    let n = digits.parse().map_err(|_| PersonError::NotFound(format!("no record has the id {id:?}")))?;
    Ok((resource, n))
}

fn person_error(e: ApiError) -> PersonError {
    if e.status == axum::http::StatusCode::NOT_FOUND {
        PersonError::NotFound(e.message)
    } else {
        PersonError::Refused(e.message)
    }
}

/// Each list the import reads: (stage, resource, paged), in stage order (psa-apis.md 2.3-2.5).
const LISTS: &[(&str, &str, bool)] = &[
    (truth::USERS, AGENT, false),
    (truth::COMPANIES, CLIENT, true),
    (truth::CONTACTS, USERS, true),
    (truth::OPPORTUNITIES, OPPORTUNITIES, true),
    (truth::ACTIVITIES, CRM_NOTE, true),
    (truth::ACTIVITIES, ACTIONS, true),
];

impl SimulatedSystem for Simulator {
    fn name(&self) -> &'static str {
        "halo"
    }

    fn generate(&self, scale: &Scale) -> Box<dyn SimTenant> {
        Box::new(Tenant::generate(&GenConfig {
            members: scale.members,
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
        PageSizes { min: 1, max: MAX_PAGE_SIZE }
    }

    fn credential_fields(&self) -> CredentialFields {
        CredentialFields { site: "site", secrets: &["client_secret"] }
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

    /// The agents in one answer, every other list at 100 a page. The tickets an
    /// action belongs to are not counted: the opportunities list already carries them, so
    /// reading each again is a connector's choice, not the vendor's demand.
    fn request_floor(&self) -> RequestFloor {
        let sizes = Tenant::stage_sizes(self);
        let notes = self.plans.activities.iter().filter(|a| a.kind == CRM_NOTE_KIND).count();
        let lists = LISTS
            .iter()
            .map(|(stage, list, paged)| {
                let records = match *list {
                    CRM_NOTE => notes,
                    ACTIONS => self.plans.activities.len() - notes,
                    _ => sizes.get(*stage).copied().unwrap_or(0),
                };
                ListRead { stage, list, records, max_page: paged.then_some(MAX_PAGE_SIZE), per_record_reads: 0 }
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
    fn company_type_change(&self, type_name: &str) -> Option<Value> {
        crate::halo::generator::customer_type_id(type_name).map(|id| json!({"customertype": id}))
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

    fn expire_tokens(&self) -> bool {
        SimHandle::expire_tokens(self);
        true
    }

    /// An activity is a CRM note (Halo's activities map onto notes); `create_as_person`
    /// takes the fields of `POST /api/{resource}` elements.
    fn create_as_person(&self, kind: Kind, fields: Value) -> Result<String, PersonError> {
        let resource = resource_of(kind, "");
        let spec = spec_of(resource).ok_or_else(|| PersonError::Unsupported(resource.into()))?;
        let mut fields = fields;
        if let Some(m) = fields.as_object_mut() {
            m.remove("id");
        }
        let rec = server::write(&self.app).save(spec, fields, &format_unix(now_unix())).map_err(person_error)?;
        webhooks::changed(&self.app, spec.name, &rec, Change::Created);
        Ok(rec.get("id").and_then(Value::as_i64).unwrap_or_default().to_string())
    }

    /// An activity id is `note-N` (CRM note) or `action-N` (ticket action), as Tandem names
    /// them; a bare number is a CRM note.
    fn edit_as_person(&self, kind: Kind, id: &str, changes: Value) -> Result<(), PersonError> {
        let (resource, n) = resource_and_id(kind, id)?;
        let spec = spec_of(resource).ok_or_else(|| PersonError::Unsupported(resource.into()))?;
        let Value::Object(mut fields) = changes else {
            return Err(PersonError::Refused("the changes must be a JSON object of fields".into()));
        };
        fields.insert("id".into(), json!(n));
        let rec = server::write(&self.app)
            .save(spec, Value::Object(fields), &format_unix(now_unix()))
            .map_err(person_error)?;
        webhooks::changed(&self.app, spec.name, &rec, Change::Updated);
        Ok(())
    }

    fn delete_as_person(&self, kind: Kind, id: &str) -> Result<(), PersonError> {
        let (resource, n) = resource_and_id(kind, id)?;
        let spec = spec_of(resource).ok_or_else(|| PersonError::Unsupported(resource.into()))?;
        let mut store = server::write(&self.app);
        let before = store.get(spec, n).map_err(person_error)?;
        store.delete(spec, n, &format_unix(now_unix())).map_err(person_error)?;
        drop(store);
        webhooks::changed(&self.app, spec.name, &before, Change::Deleted);
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn shutdown(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(SimHandle::shutdown(*self))
    }
}
