//! Connection use cases: validate and save credentials (secret only in the secret
//! store), read a connection, and fetch the live option lists a mapping UI renders.

use std::sync::Arc;

use crate::error::DomainError;
use crate::external::{Choice, OptionList};
use crate::ids::{System, TenantId};
use crate::mapping::{Connection, ConnectionStatus};
use crate::ports::{Connector, ErrorKind, SecretError, StoreError};
use crate::secret::{Credentials, SecretString};
use crate::settings::{AutoSync, ConnectionSettings, SettingsChange};
use crate::sync::{WebhookEndpoint, new_webhook_secret};
use crate::usecases::{Services, usage};

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
                webhook: None,
                polled: Default::default(),
                swept: Default::default(),
                relayed: None,
                field_map: None,
                selective_sync: None,
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

/// A connection's settings as `GET`/`PUT /connections/{system}/settings` answer them: the
/// settings, and once inbound sync is on, where the system calls and how it proves itself.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SettingsView {
    #[serde(flatten)]
    pub settings: ConnectionSettings,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookView>,
}

/// What to set up in the external system for its webhook calls.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct WebhookView {
    /// The path on Tandem's API the system calls (`POST`); the API's base URL goes before it.
    pub path: String,
    /// The whole URL, when Tandem knows where it is reached from outside.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// What was registered with the system through its API, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered: Option<String>,
    /// What the calls prove themselves with (shown to the tenant to paste where the set-up
    /// is manual; never logged).
    pub secret: String,
    /// How the system is told to call it.
    pub steps: String,
}

/// How each system is told where to call, for the settings answer.
fn webhook_steps(system: System) -> &'static str {
    match system {
        System::ConnectWise => {
            "ConnectWise signs each callback with a key it hands out; register callbacks (System > Callbacks, or POST /system/callbacks) at level owner for company, contact, opportunity and activity with this URL; the secret is not needed"
        }
        System::Halo => {
            "In HaloPSA (Configuration > Integrations > Webhooks) add an outbound webhook to this URL with bearer authentication using the secret, for client, user, opportunity and CRM note events"
        }
        System::Syncro => {
            "In Syncro's Notification Center add a webhook to this URL followed by ?token= and the secret, for customer, contact and lead events"
        }
        System::Salesforce => {
            "In Salesforce Setup create Outbound Messages for Account, Contact, Opportunity and Task to this URL followed by ?token= and the secret, sending the Id"
        }
    }
}

/// The whole URL of `endpoint`, when Tandem knows its public address.
fn webhook_url(svc: &Services, system: System, endpoint: &WebhookEndpoint) -> Option<String> {
    let base = svc.tuning.public_url.as_deref()?.trim_end_matches('/');
    Some(format!("{base}{}", endpoint.path(system)))
}

/// The connection's settings view, with the webhook set-up once inbound sync is on.
pub async fn settings_view(svc: &Services, tenant: &TenantId, system: System) -> Result<SettingsView, DomainError> {
    let conn = connection(svc, tenant, system).await?;
    view(svc, &conn).await
}

async fn view(svc: &Services, conn: &Connection) -> Result<SettingsView, DomainError> {
    let webhook = match (&conn.webhook, conn.settings.auto_sync.inbound()) {
        (Some(endpoint), true) => {
            let secret = svc.secrets.webhook_secret(&conn.tenant, conn.system).await.map_err(secret_error)?;
            Some(WebhookView {
                url: webhook_url(svc, conn.system, endpoint),
                registered: endpoint.registration.clone(),
                path: endpoint.path(conn.system),
                secret: secret.expose().to_string(),
                steps: webhook_steps(conn.system).to_string(),
            })
        }
        _ => None,
    };
    Ok(SettingsView { settings: conn.settings.clone(), webhook })
}

/// Applies a settings change (a `PUT /connections/{system}/settings` body) to the
/// connection, retrying a racing write; answers the settings now in force. Switching
/// inbound sync on is refused until every stage of the connection's import has
/// completed; the first time, it gives the connection its webhook address and secret.
pub async fn save_settings(
    svc: &Services,
    tenant: &TenantId,
    system: System,
    body: &serde_json::Value,
) -> Result<SettingsView, DomainError> {
    let change = SettingsChange::parse(body)?;
    for _ in 0..5 {
        let mut conn = connection(svc, tenant, system).await?;
        let settings = change.apply(&conn.settings);
        if settings == conn.settings {
            return view(svc, &conn).await;
        }
        // Salesforce's field-level mode needs no import: it sends records by its map.
        let field_level = crate::usecases::field_sync::is_on(&conn);
        if settings.auto_sync != AutoSync::Off && conn.settings.auto_sync == AutoSync::Off && !field_level {
            let missing: Vec<&str> =
                system.stages().iter().filter(|s| !conn.completed_stages.contains_key(s)).map(|s| s.as_str()).collect();
            if !missing.is_empty() {
                return Err(DomainError::refused(format!(
                    "auto-sync starts after the import: the {} stage(s) have not been imported yet",
                    missing.join(", ")
                )));
            }
        }
        if settings.auto_sync != AutoSync::Off && conn.settings.auto_sync == AutoSync::Off {
            // Before auto-sync is first switched on, the CRM as it is, once (PRODUCT.md 9).
            let why = crate::usecases::snapshots::Why::BeforeAutoSync { system };
            crate::usecases::snapshots::take_once(svc, tenant, why).await?;
        }
        if settings.auto_sync.inbound() && !conn.settings.auto_sync.inbound() {
            if conn.webhook.is_none() {
                let endpoint = WebhookEndpoint::new();
                let secret = SecretString::new(new_webhook_secret());
                svc.secrets.put_webhook_secret(tenant, system, &secret).await.map_err(secret_error)?;
                svc.store.save_webhook_owner(&endpoint.key, tenant, system).await?;
                conn.webhook = Some(endpoint);
            }
            if let Some(endpoint) = conn.webhook.as_mut()
                && let Some(url) = webhook_url(svc, system, endpoint)
            {
                let secret = svc.secrets.webhook_secret(tenant, system).await.map_err(secret_error)?;
                let connector = connector_beyond_budget(svc, tenant, system).await?;
                endpoint.registration = connector.register_webhook(&url, secret.expose()).await?;
            }
        }
        if !settings.auto_sync.inbound()
            && conn.settings.auto_sync.inbound()
            && let Some(endpoint) = conn.webhook.as_mut()
            && let Some(url) = webhook_url(svc, system, endpoint)
            && endpoint.registration.is_some()
        {
            connector_beyond_budget(svc, tenant, system).await?.unregister_webhook(&url).await?;
            endpoint.registration = None;
        }
        if settings.auto_sync.outbound() && !conn.settings.auto_sync.outbound() {
            // Sync out takes the changes made from now on, never those from before.
            conn.relayed = Some(svc.clock.now());
        }
        conn.settings = settings;
        conn.updated_at = svc.clock.now();
        match svc.store.save_connection(&conn).await {
            Ok(saved) => {
                tracing::info!(tenant = %tenant, system = %system, auto_sync = ?saved.settings.auto_sync, "connection settings saved");
                return view(svc, &saved).await;
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DomainError::Store(StoreError::Conflict("the connection kept changing while saving its settings".into())))
}

/// Reads the connection, lets `change` edit it (`false`: nothing to change, the
/// connection as read is returned) and saves it; read and changed again when someone else
/// wrote it meanwhile.
pub(crate) async fn update_connection(
    svc: &Services,
    tenant: &TenantId,
    system: System,
    mut change: impl FnMut(&mut Connection) -> bool,
) -> Result<Connection, DomainError> {
    for _ in 0..5 {
        let mut conn = connection(svc, tenant, system).await?;
        if !change(&mut conn) {
            return Ok(conn);
        }
        match svc.store.save_connection(&conn).await {
            Ok(saved) => return Ok(saved),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DomainError::Store(StoreError::Conflict("the connection kept changing while saving".into())))
}

/// A connector for the tenant's saved credentials, for work that calls the system: refused
/// while the connection's API budget is used up (a rate limit naming when it resumes,
/// [`usage::check`]); its calls are counted by the unit of work's meter.
pub async fn connector(svc: &Services, tenant: &TenantId, system: System) -> Result<Arc<dyn Connector>, DomainError> {
    let conn = connection(svc, tenant, system).await?;
    usage::check(svc, &conn).await?;
    connect_metered(svc, tenant, system).await
}

/// A connector whose calls are counted but not held to the budget: a webhook call's
/// verification (its intake must answer at once; the work it queues waits instead) and the
/// webhook registration of a settings change.
pub(crate) async fn connector_beyond_budget(
    svc: &Services,
    tenant: &TenantId,
    system: System,
) -> Result<Arc<dyn Connector>, DomainError> {
    connection(svc, tenant, system).await?;
    connect_metered(svc, tenant, system).await
}

async fn connect_metered(svc: &Services, tenant: &TenantId, system: System) -> Result<Arc<dyn Connector>, DomainError> {
    let creds = svc.secrets.get(tenant, system).await.map_err(secret_error)?;
    let connector = svc.connectors.connect(&creds)?;
    svc.meter.watch(tenant, system, &connector);
    Ok(connector)
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
