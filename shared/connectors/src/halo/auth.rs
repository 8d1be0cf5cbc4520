//! HaloPSA authentication (psa-apis.md 2.2; H2 `HaloPSA.ts`, H3 `transport.ts`): OAuth2
//! client credentials at `POST {auth}/token[?tenant=]` with a form body, and the Bearer
//! token cached until shortly before `expires_in`, dropped on a 401. Neither the secret nor
//! the token is ever printed.

use std::fmt;
use std::time::{Duration, Instant};

use reqwest::header::HeaderValue;
use tandem_domain::System;
use tandem_domain::secret::{HaloCredentials, SecretString};
use tokio::sync::Mutex;
use url::Url;

use super::error;
use super::models::TokenAnswer;
use crate::http::{self, RetryPolicy};
use crate::transport::{Request, Transport};
use tandem_domain::ports::{ConnectorError, ErrorKind};

/// The scope asked for (psa-apis.md 2.2: `scope=all`).
pub const SCOPE: &str = "all";
/// A token is renewed this long before it expires.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// Lifetime assumed when the answer has no `expires_in` (psa-apis.md 2.2: e.g. 3600).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// A cached bearer token.
#[derive(Clone)]
struct Token {
    header: HeaderValue,
    renew_at: Instant,
}

/// The token source of one connection. `Debug` shows the client id and tenant only.
pub struct Auth {
    token_url: Url,
    tenant: Option<String>,
    client_id: String,
    client_secret: SecretString,
    cached: Mutex<Option<Token>>,
}

impl Auth {
    /// The token source for these credentials: `{auth_url or site/auth}/token`, with
    /// `?tenant=` when a tenant is given. No network call.
    pub fn new(creds: &HaloCredentials, site_origin: &str) -> Result<Self, ConnectorError> {
        let auth_root = auth_root(creds, site_origin);
        let mut token_url = Url::parse(&format!("{auth_root}/token")).map_err(|e| {
            ConnectorError::new(
                System::Halo,
                ErrorKind::UnknownAccount,
                format!("'{auth_root}' is not a HaloPSA auth URL: {e}"),
            )
        })?;
        let tenant = creds.tenant.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_string);
        if let Some(t) = &tenant {
            token_url.query_pairs_mut().append_pair("tenant", t);
        }
        Ok(Self {
            token_url,
            tenant,
            client_id: creds.client_id.trim().to_string(),
            client_secret: creds.client_secret.clone(),
            cached: Mutex::new(None),
        })
    }

    /// The tenant name, if any.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// The `Authorization` header value: the cached token while it lives, else a new one.
    pub async fn header(&self, transport: &Transport, policy: &RetryPolicy) -> Result<HeaderValue, ConnectorError> {
        let mut cached = self.cached.lock().await;
        if let Some(t) = cached.as_ref().filter(|t| t.renew_at > Instant::now()) {
            return Ok(t.header.clone());
        }
        let token = self.request(transport, policy).await?;
        let header = token.header.clone();
        *cached = Some(token);
        Ok(header)
    }

    /// Forgets the cached token if it is still `used` (after a 401), so the next call gets
    /// a fresh one; a token another request already renewed is kept.
    pub async fn invalidate(&self, used: &HeaderValue) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|t| t.header == used) {
            *cached = None;
        }
    }

    /// The token request (a POST, but marked idempotent: a second token harms nothing).
    async fn request(&self, transport: &Transport, policy: &RetryPolicy) -> Result<Token, ConnectorError> {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.client_id)
            .append_pair("client_secret", self.client_secret.expose().trim())
            .append_pair("scope", SCOPE)
            .finish();
        let request = Request::new(reqwest::Method::POST, self.token_url.clone(), "an access token")
            .header(reqwest::header::ACCEPT, HeaderValue::from_static("application/json"))
            .body("application/x-www-form-urlencoded", form)
            .idempotent(true);
        let body = transport.send(&request, policy, &error::Token { tenant: self.tenant.as_deref() }).await?.body;
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| {
            let why = http::sanitise(&e.to_string());
            ConnectorError::new(
                System::Halo,
                ErrorKind::Invalid,
                format!("HaloPSA's token answer is unreadable: {why}"),
            )
        })?;
        let lifetime = answer.expires_in.map_or(DEFAULT_LIFETIME, Duration::from_secs);
        let renew_at = Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN.min(lifetime / 2));
        let mut header = HeaderValue::from_str(&format!("Bearer {}", answer.access_token.trim())).map_err(|_| {
            ConnectorError::new(System::Halo, ErrorKind::Invalid, "HaloPSA issued a token HTTP headers cannot carry")
        })?;
        header.set_sensitive(true);
        Ok(Token { header, renew_at })
    }
}

/// The authorisation server root: `auth_url` (a host is taken as `https://`), else
/// `{site}/auth` (psa-apis.md 2.2).
pub fn auth_root(creds: &HaloCredentials, site_origin: &str) -> String {
    match creds.auth_url.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(u) if u.contains("://") => u.trim_end_matches('/').to_string(),
        Some(u) => format!("https://{}", u.trim_end_matches('/')),
        None => format!("{site_origin}/auth"),
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(tenant: Option<&str>, auth_url: Option<&str>) -> HaloCredentials {
        HaloCredentials {
            site: "https://acme.halopsa.com".into(),
            auth_url: auth_url.map(str::to_string),
            tenant: tenant.map(str::to_string),
            client_id: "cid".into(),
            client_secret: SecretString::new("very-secret-value"),
        }
    }

    #[test]
    fn the_token_url_hangs_off_the_site_and_carries_the_tenant() {
        let a = Auth::new(&creds(Some("acme"), None), "https://acme.halopsa.com").unwrap();
        assert_eq!(a.token_url.as_str(), "https://acme.halopsa.com/auth/token?tenant=acme");
        let b = Auth::new(&creds(None, Some("login.example.com/auth/")), "https://x").unwrap();
        assert_eq!(b.token_url.as_str(), "https://login.example.com/auth/token");
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let a = Auth::new(&creds(None, None), "https://acme.halopsa.com").unwrap();
        let shown = format!("{a:?}");
        assert!(!shown.contains("very-secret-value") && shown.contains("cid"), "{shown}");
    }
}
