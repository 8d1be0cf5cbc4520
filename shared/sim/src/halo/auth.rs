//! HaloPSA authentication (psa-apis.md 2.2): OAuth2 client credentials at `POST
//! /auth/token` (form body; `?tenant=` on hosted instances) issuing Bearer tokens that
//! expire, and the check of the bearer token on every `/api` request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, TokenError};

/// Default token lifetime (psa-apis.md 2.2: `expires_in`, e.g. 3600).
pub(crate) const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// UNCONFIRMED token-endpoint answers, in one place (psa-apis.md 2.2 and 5.2): what a
/// hosted instance says when `?tenant=` is missing or names no tenant. Assumed: 400 with
/// OAuth error `invalid_request` (missing) and `invalid_tenant` (unknown); bad client
/// id/secret: 400 `invalid_client` (standard IdentityServer behaviour).
pub(crate) const MISSING_TENANT_ERROR: &str = "invalid_request";
/// See [`MISSING_TENANT_ERROR`].
pub(crate) const UNKNOWN_TENANT_ERROR: &str = "invalid_tenant";
/// See [`MISSING_TENANT_ERROR`].
pub(crate) const BAD_CLIENT_ERROR: &str = "invalid_client";

/// Who may call the tenant's API: the API application's keys and its agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Access {
    /// The hosted tenant name (`None`: a self-hosted instance, no `?tenant=`).
    pub tenant: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    /// The agent the API application runs as (`/api/Agent/me`).
    pub agent_id: i64,
}

/// Issued tokens and their expiry.
#[derive(Debug)]
pub(crate) struct Tokens {
    issued: Mutex<HashMap<String, Instant>>,
    lifetime_ms: AtomicU64,
    seq: AtomicU64,
}

impl Tokens {
    /// No tokens yet; the default lifetime.
    pub(crate) fn new() -> Self {
        Self {
            issued: Mutex::new(HashMap::new()),
            lifetime_ms: AtomicU64::new(DEFAULT_TOKEN_LIFETIME.as_millis() as u64),
            seq: AtomicU64::new(0),
        }
    }

    /// Sets the lifetime of tokens issued from now on.
    pub(crate) fn set_lifetime(&self, d: Duration) {
        self.lifetime_ms.store(u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1), Ordering::SeqCst);
    }

    /// Makes every issued token invalid now.
    pub(crate) fn expire_all(&self) {
        self.issued.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// A new token and its lifetime in whole seconds (at least 1).
    pub(crate) fn issue(&self, salt: &str) -> (String, u64) {
        let n = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let ms = self.lifetime_ms.load(Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let token = format!("halo-{:x}{:016x}{n:06}", salt.len(), nanos ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let at = Instant::now() + Duration::from_millis(ms);
        self.issued.lock().unwrap_or_else(|e| e.into_inner()).insert(token.clone(), at);
        (token, ms.div_ceil(1000).max(1))
    }

    /// Whether `token` was issued and has not expired.
    pub(crate) fn valid(&self, token: &str) -> bool {
        let mut map = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(token) {
            Some(at) if *at > Instant::now() => true,
            Some(_) => {
                map.remove(token);
                false
            }
            None => false,
        }
    }
}

/// Checks a token request's form and `?tenant=` against `access`.
pub(crate) fn check_token_request(
    access: &Access,
    tenant: Option<&str>,
    form: &[(String, String)],
) -> Result<(), TokenError> {
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_default();
    if let Some(expected) = &access.tenant {
        match tenant.map(str::trim).filter(|t| !t.is_empty()) {
            None => {
                return Err(TokenError::new(
                    MISSING_TENANT_ERROR,
                    "This is a hosted Halo instance: the tenant query parameter is required.",
                ));
            }
            Some(t) if !t.eq_ignore_ascii_case(expected) => {
                return Err(TokenError::new(UNKNOWN_TENANT_ERROR, format!("Tenant '{t}' was not found.")));
            }
            Some(_) => {}
        }
    }
    if field("grant_type") != "client_credentials" {
        return Err(TokenError::new("unsupported_grant_type", "Only grant_type=client_credentials is supported."));
    }
    if field("client_id") != access.client_id || field("client_secret") != access.client_secret {
        return Err(TokenError::new(BAD_CLIENT_ERROR, "The client id or client secret is not valid."));
    }
    Ok(())
}

/// Accepts a request whose `Authorization: Bearer` token is valid, or says why not (401).
pub(crate) fn authenticate(tokens: &Tokens, headers: &HeaderMap) -> Result<(), ApiError> {
    let raw = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::unauthorized("Authorization has been denied for this request."))?;
    let token = raw
        .strip_prefix("Bearer ")
        .or_else(|| raw.strip_prefix("bearer "))
        .ok_or_else(|| ApiError::unauthorized("Authorization has been denied for this request."))?;
    if tokens.valid(token.trim()) {
        Ok(())
    } else {
        Err(ApiError::unauthorized("The access token is invalid or has expired."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> Access {
        Access { tenant: Some("acme".into()), client_id: "id".into(), client_secret: "secret".into(), agent_id: 2 }
    }

    fn form(secret: &str) -> Vec<(String, String)> {
        vec![
            ("grant_type".into(), "client_credentials".into()),
            ("client_id".into(), "id".into()),
            ("client_secret".into(), secret.into()),
            ("scope".into(), "all".into()),
        ]
    }

    #[test]
    fn a_hosted_instance_needs_the_right_tenant_and_keys() {
        let a = access();
        assert!(check_token_request(&a, Some("ACME"), &form("secret")).is_ok());
        assert_eq!(check_token_request(&a, None, &form("secret")).unwrap_err().error, MISSING_TENANT_ERROR);
        assert_eq!(check_token_request(&a, Some("other"), &form("secret")).unwrap_err().error, UNKNOWN_TENANT_ERROR);
        assert_eq!(check_token_request(&a, Some("acme"), &form("nope")).unwrap_err().error, BAD_CLIENT_ERROR);
    }

    #[test]
    fn tokens_are_valid_until_expired() {
        let t = Tokens::new();
        let (tok, secs) = t.issue("x");
        assert_eq!(secs, 3600);
        assert!(t.valid(&tok));
        assert!(!t.valid("other"));
        t.expire_all();
        assert!(!t.valid(&tok));
        t.set_lifetime(Duration::from_millis(1));
        let (short, secs) = t.issue("x");
        assert_eq!(secs, 1);
        std::thread::sleep(Duration::from_millis(5));
        assert!(!t.valid(&short));
    }
}
