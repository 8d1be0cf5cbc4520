//! `GET / PUT /connections/salesforce/selective-sync` (PRODUCT.md sections 7 and 10): the
//! criteria Salesforce's field-level mode sends CRM records by, each rule checked when
//! saved, applying from the moment they are saved (records that met them before are not
//! sent, as SPOTIO does). Changing them never deletes anything already sent.

use serde::Deserialize;

use crate::error::DomainError;
use crate::ids::{System, TenantId};
use crate::selective::{self, Rule, SelectiveSync};
use crate::usecases::Services;
use crate::usecases::connections::{connection, update_connection};

/// `PUT` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SelectiveSyncRequest {
    rules: Vec<Rule>,
    /// Also send the records that meet the criteria now (not built yet: refused).
    #[serde(default)]
    retroactive: bool,
}

/// The saved criteria, if any.
pub async fn get(svc: &Services, t: &TenantId) -> Result<Option<SelectiveSync>, DomainError> {
    Ok(connection(svc, t, System::Salesforce).await?.selective_sync)
}

/// Saves the criteria (every rule checked, all problems named at once), applying from now.
pub async fn save(svc: &Services, t: &TenantId, body: &serde_json::Value) -> Result<SelectiveSync, DomainError> {
    let req: SelectiveSyncRequest = serde_json::from_value(body.clone()).map_err(|e| {
        DomainError::invalid(format!(
            "{e}; expected a body like {{\"rules\": [{{\"field\": \"opportunity.stage\", \"equals\": \"proposal\"}}, {{\"field\": \"opportunity.value\", \"greater_than\": 5000}}]}}"
        ))
    })?;
    let problems: Vec<String> = req.rules.iter().filter_map(|r| selective::check(r).err()).collect();
    if !problems.is_empty() {
        return Err(DomainError::invalid(problems.join("; ")));
    }
    if req.retroactive {
        return Err(DomainError::invalid(
            "a retroactive run (sending the records that meet the criteria now) is not built yet; save without it",
        ));
    }
    let criteria = SelectiveSync { rules: req.rules, since: svc.clock.now() };
    let saved = update_connection(svc, t, System::Salesforce, |conn| {
        conn.selective_sync = Some(criteria.clone());
        true
    })
    .await?;
    tracing::info!(tenant = %t, rules = criteria.rules.len(), "Salesforce selective sync saved");
    saved.selective_sync.ok_or_else(|| DomainError::internal("the criteria were not saved"))
}
