//! Mapping use cases: save one section in the system's order, checked against the
//! options the system offers live.

use crate::error::DomainError;
use crate::ids::{Stage, System, TenantId};
use crate::mapping::{Connection, check_section_shape, parse_export, parse_section, section_lists};
use crate::ports::{StoreError, all_options};
use crate::usecases::Services;
use crate::usecases::connections::{connection, connector, unauthorized_invalidates};

/// Saves `stage`'s mapping section. Refused while an earlier section is missing;
/// an option the system does not offer or an invalid CRM value is a clear error.
pub async fn save_mapping(
    svc: &Services,
    tenant: &TenantId,
    system: System,
    stage: Stage,
    body: &serde_json::Value,
) -> Result<Connection, DomainError> {
    check_section_shape(stage, body)?;
    connection(svc, tenant, system).await?.check_mapping_order(stage)?;
    let c = connector(svc, tenant, system).await?;
    let offered =
        unauthorized_invalidates(svc, tenant, system, all_options(c.as_ref(), section_lists(stage)).await).await?;
    let section = parse_section(svc.connectors.describe(system), stage, body, &offered)?;
    let choices = parse_export(stage, body, &section)?;
    for _ in 0..5 {
        let mut conn = connection(svc, tenant, system).await?;
        conn.check_mapping_order(stage)?;
        conn.mappings.insert(stage, section.clone());
        for list in section_lists(stage) {
            match choices.get(list) {
                Some(chosen) => conn.export_choices.insert(*list, chosen.clone()),
                None => conn.export_choices.remove(list),
            };
        }
        conn.updated_at = svc.clock.now();
        match svc.store.save_connection(&conn).await {
            Ok(saved) => return Ok(saved),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DomainError::Store(StoreError::Conflict("the connection kept changing while saving".into())))
}
