//! Tandem's connectors to the external systems: a shared HTTP layer ([`http`]) and one
//! folder per system with the same files (client, auth, models, mapping, pagination, error).
//! [`Connectors`] is the domain's [`ConnectorFactory`].

pub mod connectwise;
pub mod halo;
pub mod http;
pub mod salesforce;
pub mod syncro;

use std::sync::Arc;

use tandem_domain::ports::{Connector, ConnectorError, ConnectorFactory, ErrorKind};
use tandem_domain::secret::Credentials;

pub use http::{RetryPolicy, Settings};

/// Builds connectors that all share one HTTP client (one connection pool) and one set of
/// [`Settings`].
#[derive(Clone, Debug)]
pub struct Connectors {
    /// The shared client, or why it could not be built (reported by `connect`).
    http: Result<reqwest::Client, String>,
    settings: Settings,
}

impl Connectors {
    /// A factory with these settings.
    pub fn new(settings: Settings) -> Self {
        Self { http: http::build_client().map_err(|e| e.to_string()), settings }
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

impl ConnectorFactory for Connectors {
    fn connect(&self, creds: &Credentials) -> Result<Arc<dyn Connector>, ConnectorError> {
        let client = self.http.clone().map_err(|reason| {
            ConnectorError::new(
                creds.system(),
                ErrorKind::Invalid,
                format!("the HTTP client could not be built: {reason}"),
            )
        })?;
        match creds {
            Credentials::ConnectWise(c) => {
                Ok(Arc::new(connectwise::ConnectWiseConnector::new(client, self.settings.clone(), c)?))
            }
            Credentials::Halo(c) => halo::connect(client, self.settings.clone(), c),
            Credentials::Syncro(c) => syncro::connect(client, self.settings.clone(), c),
            Credentials::Salesforce(c) => salesforce::connect(client, self.settings.clone(), c),
        }
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
}
