//! Connection use cases: validate and save credentials (secret only in the secret
//! store), read a connection, and fetch the live option lists a mapping UI renders.

use std::sync::Arc;

use crate::error::DomainError;
use crate::external::{Choice, OptionList};
use crate::ids::{System, TenantId};
use crate::mapping::{Connection, ConnectionStatus};
use crate::ports::{Connector, ErrorKind, SecretError, StoreError};
use crate::secret::Credentials;
use crate::settings::{ConnectionSettings, SettingsChange};
use crate::usecases::Services;

fn secret_error(e: SecretError) -> DomainError {
    match e {
        SecretError::NotFound(_) => {
            DomainError::refused("the connection's credentials are missing; save credentials again")
        }
        SecretError::Unavailable(m) => DomainError::Store(StoreError::Unavailable(format!("secret store: {m}"))),
    }
}

/// Validates credentials with one cheap call, then saves the secret and marks the
/// connection `connected`. Invalid credentials change nothing.
pub async fn save_credentials(
    svc: &Services,
    tenant: &TenantId,
    system: System,
    body: &serde_json::Value,
) -> Result<Connection, DomainError> {
    let creds = Credentials::parse(system, body)?;
    let connector = svc.connectors.connect(&creds)?;
    let info = connector.check().await?;
    let secret_name = svc.secrets.put(tenant, system, &creds).await.map_err(secret_error)?;
    let now = svc.clock.now();
    let mut account = creds.public_summary();
    if let Some(obj) = account.as_object_mut() {
        obj.insert("api_url".into(), info.api_url.into());
        obj.insert("version".into(), info.version.into());
    }
    for _ in 0..5 {
        let existing = svc.store.connection(tenant, system).await?;
        let conn = match existing {
            Some(mut c) => {
                c.account = account.clone();
                c.secret_name = secret_name.clone();
                c.status = ConnectionStatus::Connected;
                c.updated_at = now;
                c
            }
            None => Connection {
                tenant: tenant.clone(),
                system,
                status: ConnectionStatus::Connected,
                account: account.clone(),
                secret_name: secret_name.clone(),
                mappings: Default::default(),
                completed_stages: Default::default(),
                settings: Default::default(),
                export_choices: Default::default(),
                created_at: now,
                updated_at: now,
                version: 0,
            },
        };
        match svc.store.save_connection(&conn).await {
            Ok(saved) => {
                tracing::info!(tenant = %tenant, system = %system, "connection saved");
                return Ok(saved);
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DomainError::Store(StoreError::Conflict("the connection kept changing while saving".into())))
}

/// The tenant's connection to `system`, or a clear not-found.
pub async fn connection(svc: &Services, tenant: &TenantId, system: System) -> Result<Connection, DomainError> {
    svc.store.connection(tenant, system).await?.ok_or_else(|| {
        DomainError::not_found(format!("no {} connection: save credentials first", system.display_name()))
    })
}

/// Applies a settings change (a `PUT /connections/{system}/settings` body) to the
/// connection, retrying a racing write; returns the settings now in force.
pub async fn save_settings(
    svc: &Services,
    tenant: &TenantId,
    system: System,
    body: &serde_json::Value,
) -> Result<ConnectionSettings, DomainError> {
    let change = SettingsChange::parse(body)?;
    for _ in 0..5 {
        let mut conn = connection(svc, tenant, system).await?;
        let settings = change.apply(&conn.settings);
        if settings == conn.settings {
            return Ok(settings);
        }
        conn.settings = settings;
        conn.updated_at = svc.clock.now();
        match svc.store.save_connection(&conn).await {
            Ok(saved) => {
                tracing::info!(tenant = %tenant, system = %system, "connection settings saved");
                return Ok(saved.settings);
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DomainError::Store(StoreError::Conflict("the connection kept changing while saving its settings".into())))
}

/// A connector for the tenant's saved credentials.
pub async fn connector(svc: &Services, tenant: &TenantId, system: System) -> Result<Arc<dyn Connector>, DomainError> {
    connection(svc, tenant, system).await?;
    let creds = svc.secrets.get(tenant, system).await.map_err(secret_error)?;
    Ok(svc.connectors.connect(&creds)?)
}

/// Runs a connector call; on 401 drops the cached secret so the next call re-reads it.
pub async fn unauthorized_invalidates<T>(
    svc: &Services,
    tenant: &TenantId,
    system: System,
    result: Result<T, crate::ports::ConnectorError>,
) -> Result<T, DomainError> {
    if let Err(e) = &result
        && e.kind == ErrorKind::Unauthorized
    {
        svc.secrets.invalidate(tenant, system).await;
    }
    Ok(result?)
}

/// The choices the system offers for one option list, fetched live.
pub async fn options(
    svc: &Services,
    tenant: &TenantId,
    system: System,
    list: OptionList,
) -> Result<Vec<Choice>, DomainError> {
    let c = connector(svc, tenant, system).await?;
    unauthorized_invalidates(svc, tenant, system, c.options(list).await).await
}
