//! Tandem's connectors to the external systems: one shared transport ([`transport`], over
//! [`http`], paced per connection by [`pacing`]) and one folder per system with the same
//! files (client, auth, models, mapping, pagination, error, describe).
//! [`Connectors`] is the domain's [`ConnectorFactory`]; [`guard`] holds every connector's
//! credential check to the address policy ([`hosts`]) and a deadline.

pub mod body;
pub mod connectwise;
pub mod guard;
pub mod halo;
pub mod hosts;
pub mod http;
pub mod pacing;
pub mod read;
pub mod salesforce;
pub mod syncro;
pub mod transport;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tandem_domain::System;
use tandem_domain::describe::Description;
use tandem_domain::ports::{Connector, ConnectorError, ConnectorFactory, ErrorKind};
use tandem_domain::secret::Credentials;
use tandem_domain::webhook::WebhookReader;

pub use http::{RetryPolicy, Settings};
pub use pacing::{Pacing, Rate};

/// How long a built connector is reused for the same credentials (its OAuth token, the
/// discovered API root and cached setup lists with it).
pub const REUSE_FOR: Duration = Duration::from_secs(10 * 60);
/// At most this many connectors are kept per process.
pub const MAX_KEPT: usize = 256;

type Kept = HashMap<u64, (Instant, Arc<dyn Connector>)>;

/// Builds connectors that all share one HTTP client (one connection pool, the address
/// policy in its resolver) and one set of [`Settings`]. Each is wrapped in
/// [`guard::Guarded`], so every credential check refuses hosts the settings refuse before
/// any request and ends by [`Settings::check_deadline`]. A connector built for some
/// credentials is reused for the same credentials for [`REUSE_FOR`], so a job's pages (and,
/// in Lambda, an execution environment's invocations) share one OAuth token instead of
/// asking for one per page.
#[derive(Clone)]
pub struct Connectors {
    /// The shared client, or why it could not be built (reported by `connect`).
    http: Result<reqwest::Client, String>,
    settings: Settings,
    kept: Arc<Mutex<Kept>>,
}

impl std::fmt::Debug for Connectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connectors").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// A process-local key for credentials (secrets included, so changed keys give a new
/// connector); never stored or logged.
fn fingerprint(creds: &Credentials) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(creds).unwrap_or_default().hash(&mut h);
    h.finish()
}

impl Connectors {
    /// A factory with these settings.
    pub fn new(settings: Settings) -> Self {
        Self {
            http: http::build_client(settings.hosts()).map_err(|e| e.to_string()),
            settings,
            kept: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn build(&self, creds: &Credentials) -> Result<Arc<dyn Connector>, ConnectorError> {
        let client = self.http.clone().map_err(|reason| {
            ConnectorError::new(
                creds.system(),
                ErrorKind::Invalid,
                format!("the HTTP client could not be built: {reason}"),
            )
        })?;
        // Each connector counts its own requests (`Connector::calls`).
        let settings = Settings { calls: http::CallCounter::fresh(), ..self.settings.clone() };
        let inner: Arc<dyn Connector> = match creds {
            Credentials::ConnectWise(c) => {
                Arc::new(connectwise::ConnectWiseConnector::new(client, settings.clone(), c)?)
            }
            Credentials::Halo(c) => halo::connect(client, settings.clone(), c)?,
            Credentials::Syncro(c) => syncro::connect(client, settings.clone(), c)?,
            Credentials::Salesforce(c) => salesforce::connect(client, settings.clone(), c)?,
        };
        Ok(Arc::new(guard::Guarded::new(inner, settings, creds)))
    }

    /// The settings every connector gets.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

impl Default for Connectors {
    fn default() -> Self {
        Self::new(Settings::default())
    }
}

/// What `system` supports and how its records differ: its folder's `describe.rs`.
pub fn describe(system: System) -> &'static Description {
    match system {
        System::ConnectWise => &connectwise::describe::DESCRIPTION,
        System::Halo => &halo::describe::DESCRIPTION,
        System::Syncro => &syncro::describe::DESCRIPTION,
        System::Salesforce => &salesforce::describe::DESCRIPTION,
    }
}

/// What `system`'s transport is told of its limits: the constants in its folder.
pub fn limits(system: System) -> transport::Limits {
    match system {
        System::ConnectWise => connectwise::client::LIMITS,
        System::Halo => halo::client::LIMITS,
        System::Syncro => syncro::client::LIMITS,
        System::Salesforce => salesforce::client::LIMITS,
    }
}

/// How `system`'s webhook calls are verified and read: its folder's `webhook.rs`.
pub fn webhook(system: System) -> &'static dyn WebhookReader {
    match system {
        System::ConnectWise => &connectwise::webhook::READER,
        System::Halo => &halo::webhook::READER,
        System::Syncro => &syncro::webhook::READER,
        System::Salesforce => &salesforce::webhook::READER,
    }
}

impl ConnectorFactory for Connectors {
    fn describe(&self, system: System) -> &'static Description {
        describe(system)
    }

    fn webhooks(&self, system: System) -> &'static dyn WebhookReader {
        webhook(system)
    }

    fn connect(&self, creds: &Credentials) -> Result<Arc<dyn Connector>, ConnectorError> {
        let key = fingerprint(creds);
        let now = Instant::now();
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((built, connector)) = kept.get(&key)
            && now.duration_since(*built) < REUSE_FOR
        {
            return Ok(connector.clone());
        }
        let connector = self.build(creds)?;
        kept.retain(|_, (built, _)| now.duration_since(*built) < REUSE_FOR);
        if kept.len() >= MAX_KEPT {
            kept.clear();
        }
        kept.insert(key, (now, connector.clone()));
        Ok(connector)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_domain::System;
    use tandem_domain::secret::{ConnectWiseCredentials, SecretString};

    fn creds(site: &str) -> Credentials {
        Credentials::ConnectWise(ConnectWiseCredentials {
            site: site.into(),
            company_id: "acme".into(),
            public_key: "pub".into(),
            private_key: SecretString::new("private-key-value"),
            client_id: "client".into(),
        })
    }

    #[test]
    fn the_factory_builds_a_connectwise_connector_without_a_network_call() {
        let conn = Connectors::default().connect(&creds("api-na.myconnectwise.net")).unwrap();
        assert_eq!(conn.system(), System::ConnectWise);
    }

    #[test]
    fn a_site_that_is_not_a_host_is_refused_when_connecting() {
        let err = Connectors::default().connect(&creds("not a host")).err().unwrap();
        assert_eq!(err.kind, ErrorKind::UnknownAccount);
        assert!(err.message.contains("not a host") && !err.message.contains("private-key-value"), "{}", err.message);
    }

    #[test]
    fn the_same_credentials_reuse_one_connector_and_changed_keys_get_a_new_one() {
        let f = Connectors::default();
        let a = f.connect(&creds("api-na.myconnectwise.net")).unwrap();
        let b = f.connect(&creds("api-na.myconnectwise.net")).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let mut rotated = creds("api-na.myconnectwise.net");
        if let Credentials::ConnectWise(c) = &mut rotated {
            c.private_key = SecretString::new("a-new-private-key");
        }
        let c = f.connect(&rotated).unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
