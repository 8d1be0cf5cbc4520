//! `GET / PUT /connections/salesforce/field-map` (PRODUCT.md sections 7 and 10): the field
//! map of Salesforce's field-level mode, checked against Salesforce's own describe of the
//! objects it writes, fetched live on every save, and the describe-derived choices a UI
//! needs to build one.

use serde::Serialize;
use std::collections::BTreeMap;

use crate::error::DomainError;
use crate::field_map::{self, FieldMap, ObjectDescribe, Target};
use crate::ids::{System, TenantId};
use crate::usecases::Services;
use crate::usecases::connections::{connection, connector, update_connection};

/// One Salesforce field a map may name, as a UI shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldChoice {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: String,
    /// Characters it holds (text fields).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<u32>,
    /// Salesforce needs it on create and fills it not itself.
    pub required: bool,
    /// The values a restricted picklist allows.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// What `GET` (and a saved `PUT`) answers: the map saved, if any, and per object of the
/// target the fields Tandem may write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldMapView {
    pub map: Option<FieldMap>,
    pub target: Target,
    pub choices: BTreeMap<String, Vec<FieldChoice>>,
}

/// The field map and the choices for its target (`target` when asked for, else the saved
/// map's, else Lead).
pub async fn get(svc: &Services, t: &TenantId, target: Option<Target>) -> Result<FieldMapView, DomainError> {
    let conn = connection(svc, t, System::Salesforce).await?;
    let target = target.or(conn.field_map.as_ref().map(|m| m.target)).unwrap_or(Target::Lead);
    let describes = describes(svc, t, target).await?;
    Ok(FieldMapView { map: conn.field_map, target, choices: choices(&describes) })
}

/// Saves a field map once Salesforce's describe of every object it writes accepts it;
/// otherwise refused (422) naming each field and why, nothing saved. A body that is not a
/// field map is 400.
pub async fn save(svc: &Services, t: &TenantId, body: &serde_json::Value) -> Result<FieldMapView, DomainError> {
    let map: FieldMap = serde_json::from_value(body.clone()).map_err(|e| {
        DomainError::invalid(format!(
            "{e}; expected a body like {{\"target\": \"lead\" | \"account\", \"fields\": [{{\"crm\": \"company.name\", \"salesforce\": \"Company\"}}], \"defaults\": {{\"Lead\": {{\"LeadSource\": \"Field Sales\"}}}}}}"
        ))
    })?;
    connection(svc, t, System::Salesforce).await?;
    let describes = describes(svc, t, map.target).await?;
    let refusals = field_map::check(&map, &describes);
    if !refusals.is_empty() {
        let each: Vec<String> = refusals.iter().map(|r| format!("{}: {}", r.field, r.reason)).collect();
        return Err(DomainError::Unprocessable(format!("the field map cannot work: {}", each.join("; "))));
    }
    let now = svc.clock.now();
    let saved = update_connection(svc, t, System::Salesforce, |conn| {
        let since = conn.field_map.as_ref().and_then(|m| m.since).unwrap_or(now);
        let next = FieldMap { since: Some(since), ..map.clone() };
        if conn.field_map.as_ref() == Some(&next) {
            return false;
        }
        conn.field_map = Some(next);
        true
    })
    .await?;
    tracing::info!(tenant = %t, target = ?map.target, fields = map.fields.len(), "Salesforce field map saved");
    Ok(FieldMapView { map: saved.field_map, target: map.target, choices: choices(&describes) })
}

/// Salesforce's describe of every object `target` writes, read live.
async fn describes(
    svc: &Services,
    t: &TenantId,
    target: Target,
) -> Result<BTreeMap<String, ObjectDescribe>, DomainError> {
    let connector = connector(svc, t, System::Salesforce).await?;
    let mut out = BTreeMap::new();
    for object in field_map::objects(target) {
        let describe = connector
            .describe_object(object)
            .await?
            .ok_or_else(|| DomainError::internal("the Salesforce connector describes no objects"))?;
        out.insert((*object).to_string(), describe);
    }
    Ok(out)
}

/// Per object, the fields a map may name: those Tandem may write (no formulas, nothing
/// read-only).
fn choices(describes: &BTreeMap<String, ObjectDescribe>) -> BTreeMap<String, Vec<FieldChoice>> {
    describes
        .iter()
        .map(|(object, d)| {
            let fields = d
                .fields
                .iter()
                .filter(|f| !f.calculated && (f.createable || f.updateable))
                .map(|f| FieldChoice {
                    name: f.name.clone(),
                    field_type: f.field_type.clone(),
                    length: (f.length > 0).then_some(f.length),
                    required: f.required(),
                    values: match f.restricted_picklist {
                        true => f.picklist_values.iter().filter(|v| v.active).map(|v| v.value.clone()).collect(),
                        false => Vec::new(),
                    },
                })
                .collect();
            (object.clone(), fields)
        })
        .collect()
}
