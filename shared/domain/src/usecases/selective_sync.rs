//! `GET / PUT /connections/salesforce/selective-sync` (PRODUCT.md sections 7 and 10): the
//! criteria Salesforce's field-level mode sends CRM records by, each rule checked when
//! saved, applying from the moment they are saved (records that met them before are not
//! sent, as SPOTIO does) unless a retroactive run is asked for, which queues those that
//! meet them now and says how many. Changing them never deletes anything already sent.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{System, TenantId};
use crate::selective::{self, Rule, SelectiveSync};
use crate::usecases::Services;
use crate::usecases::connections::{connection, update_connection};
use crate::usecases::field_sync;

/// `PUT` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SelectiveSyncRequest {
    rules: Vec<Rule>,
    /// Also send the records that meet the criteria now, not only those changed from now.
    #[serde(default)]
    retroactive: bool,
}

/// The saved criteria, if any.
pub async fn get(svc: &Services, t: &TenantId) -> Result<Option<SelectiveSync>, DomainError> {
    Ok(connection(svc, t, System::Salesforce).await?.selective_sync)
}

/// What a saved `PUT` answers: the criteria, and for a retroactive run how many CRM
/// companies that meet them now (not in Salesforce yet) were queued to be sent.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Saved {
    #[serde(flatten)]
    pub criteria: SelectiveSync,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued: Option<usize>,
}

/// Saves the criteria (every rule checked, all problems named at once), applying from now;
/// with `retroactive`, also queues the companies that meet them now. A retroactive run
/// needs the field map saved and outbound sync on (409 otherwise), since it sends.
pub async fn save(svc: &Services, t: &TenantId, body: &serde_json::Value) -> Result<Saved, DomainError> {
    let req: SelectiveSyncRequest = serde_json::from_value(body.clone()).map_err(|e| {
        DomainError::invalid(format!(
            "{e}; expected a body like {{\"rules\": [{{\"field\": \"opportunity.stage\", \"equals\": \"proposal\"}}, {{\"field\": \"opportunity.value\", \"greater_than\": 5000}}], \"retroactive\": false}}"
        ))
    })?;
    let problems: Vec<String> = req.rules.iter().filter_map(|r| selective::check(r).err()).collect();
    if !problems.is_empty() {
        return Err(DomainError::invalid(problems.join("; ")));
    }
    if req.retroactive {
        let conn = connection(svc, t, System::Salesforce).await?;
        if conn.field_map.is_none() || !conn.settings.auto_sync.outbound() {
            return Err(DomainError::refused(
                "a retroactive run sends records: save the field map and switch auto_sync to \"outbound\" or \"two_way\" first",
            ));
        }
    }
    let criteria = SelectiveSync { rules: req.rules, since: svc.clock.now() };
    let saved = update_connection(svc, t, System::Salesforce, |conn| {
        conn.selective_sync = Some(criteria.clone());
        true
    })
    .await?;
    tracing::info!(tenant = %t, rules = criteria.rules.len(), "Salesforce selective sync saved");
    let criteria = saved.selective_sync.clone().ok_or_else(|| DomainError::internal("the criteria were not saved"))?;
    let queued = match req.retroactive {
        true => {
            let queued = field_sync::send_matching(svc, &saved).await?;
            tracing::info!(tenant = %t, queued, "Salesforce selective sync: retroactive run queued");
            Some(queued)
        }
        false => None,
    };
    Ok(Saved { criteria, queued })
}
