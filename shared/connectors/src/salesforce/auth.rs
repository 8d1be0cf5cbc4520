//! Salesforce OAuth 2.0 (salesforce-api.md 1.2, 1.3): the token request of the
//! client-credentials grant, or of the refresh-token grant when a refresh token is set
//! (form-encoded `POST {login_url}/services/oauth2/token`), and the session it yields
//! (bearer token + `instance_url`). Secrets and tokens are never printed.

use std::fmt;

use reqwest::header::HeaderValue;
use tandem_domain::System;
use tandem_domain::ports::{ConnectorError, ErrorKind};
use tandem_domain::secret::{SalesforceCredentials, SecretString};

use super::models::TokenResponse;

/// The token endpoint under the login URL.
pub const TOKEN_PATH: &str = "/services/oauth2/token";

/// Which grant a connection uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// `client_credentials` (server-to-server, runs as the app's run-as user).
    ClientCredentials,
    /// `refresh_token` (a token from the web-server flow).
    RefreshToken,
}

/// The connected app's secrets. `Debug` shows the client id only.
#[derive(Clone)]
pub struct AppCredentials {
    pub client_id: String,
    client_secret: SecretString,
    refresh_token: Option<SecretString>,
}

impl AppCredentials {
    /// From the stored credentials (trimmed; an empty refresh token counts as none).
    pub fn new(creds: &SalesforceCredentials) -> Self {
        let refresh_token = creds.refresh_token.clone().filter(|t| !t.expose().trim().is_empty());
        Self {
            client_id: creds.client_id.trim().to_string(),
            client_secret: creds.client_secret.clone(),
            refresh_token,
        }
    }

    /// The grant these credentials use.
    pub fn grant(&self) -> Grant {
        if self.refresh_token.is_some() { Grant::RefreshToken } else { Grant::ClientCredentials }
    }

    /// The form fields of the token request (PM `auth/refresh_token`; CC-flow).
    pub fn form(&self) -> Vec<(&'static str, String)> {
        let mut form = vec![
            ("client_id", self.client_id.clone()),
            ("client_secret", self.client_secret.expose().trim().to_string()),
        ];
        match &self.refresh_token {
            Some(t) => {
                form.insert(0, ("grant_type", "refresh_token".into()));
                form.push(("refresh_token", t.expose().trim().to_string()));
            }
            None => form.insert(0, ("grant_type", "client_credentials".into())),
        }
        form
    }

    /// The secret values, to scrub from any message should a server echo one.
    pub fn secrets(&self) -> Vec<String> {
        let mut s = vec![self.client_secret.expose().trim().to_string()];
        if let Some(t) = &self.refresh_token {
            s.push(t.expose().trim().to_string());
        }
        s.into_iter().filter(|v| v.len() >= 6).collect()
    }
}

impl fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppCredentials")
            .field("client_id", &self.client_id)
            .field("grant", &self.grant())
            .finish_non_exhaustive()
    }
}

/// A live session: the bearer header and the instance to call. `Debug` hides the token.
#[derive(Clone)]
pub struct Session {
    /// `Bearer <token>`, marked sensitive.
    pub authorization: HeaderValue,
    /// `scheme://host[:port]` every REST call goes to.
    pub instance_url: String,
    /// Counts the sessions of a connector: a refresh only replaces the one that failed.
    pub generation: u64,
}

impl Session {
    /// A session from a token answer.
    pub fn from_token(token: &TokenResponse, generation: u64) -> Result<Self, ConnectorError> {
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {}", token.access_token.trim())).map_err(|_| {
                ConnectorError::new(
                    System::Salesforce,
                    ErrorKind::Invalid,
                    "Salesforce issued a token HTTP cannot carry",
                )
            })?;
        authorization.set_sensitive(true);
        let instance_url = token.instance_url.trim().trim_end_matches('/').to_string();
        if !(instance_url.starts_with("https://") || instance_url.starts_with("http://")) {
            return Err(ConnectorError::new(
                System::Salesforce,
                ErrorKind::Invalid,
                format!(
                    "Salesforce answered an instance_url that is not a URL: {}",
                    crate::http::sanitise(&instance_url)
                ),
            ));
        }
        Ok(Self { authorization, instance_url, generation })
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("instance_url", &self.instance_url)
            .field("generation", &self.generation)
            .field("authorization", &"***")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(refresh: Option<&str>) -> SalesforceCredentials {
        SalesforceCredentials {
            login_url: "https://login.salesforce.com".into(),
            client_id: "3MVGapp".into(),
            client_secret: SecretString::new("very-secret-value"),
            refresh_token: refresh.map(SecretString::new),
            contact_status_field: None,
        }
    }

    #[test]
    fn without_a_refresh_token_the_client_credentials_grant_is_used() {
        let a = AppCredentials::new(&creds(None));
        assert_eq!(a.grant(), Grant::ClientCredentials);
        assert_eq!(a.form()[0], ("grant_type", "client_credentials".to_string()));
        let a = AppCredentials::new(&creds(Some("5Aep-refresh")));
        assert_eq!(a.grant(), Grant::RefreshToken);
        assert!(a.form().contains(&("refresh_token", "5Aep-refresh".to_string())));
        assert_eq!(AppCredentials::new(&creds(Some("  "))).grant(), Grant::ClientCredentials);
    }

    #[test]
    fn debug_output_never_shows_secrets_or_tokens() {
        let a = AppCredentials::new(&creds(Some("5Aep-refresh")));
        let shown = format!("{a:?}");
        assert!(!shown.contains("very-secret-value") && !shown.contains("5Aep-refresh"), "{shown}");
        let body = include_str!("../../tests/fixtures/salesforce_auth_success_response.json");
        let token: TokenResponse = serde_json::from_str(body).unwrap();
        let s = Session::from_token(&token, 1).unwrap();
        assert_eq!(s.instance_url, "https://na1.salesforce.com");
        assert!(s.authorization.is_sensitive());
        let shown = format!("{s:?} {token:?}");
        assert!(!shown.contains("AR8AQAxo"), "{shown}");
    }
}
