//! Salesforce OAuth 2.0 as the simulator does it (salesforce-api.md 1.2-1.4): the connected
//! app's client id and secret, the `client_credentials` and `refresh_token` grants, issued
//! bearer tokens (`{orgId}!{opaque}`), and the bearer check on every REST call. Expiring all
//! sessions makes every issued token invalid at once.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, OAuthError};

/// The connected app and the org it reaches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Access {
    /// The 18-character org id (the token prefix uses its first 15).
    pub org_id: String,
    pub org_name: String,
    /// The "run-as" user of the client-credentials flow.
    pub run_as_user_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// The one refresh token the app was issued (web-server flow, done out of band).
    pub refresh_token: String,
}

/// The tokens issued and still valid.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    valid: Mutex<HashSet<String>>,
    seq: AtomicU64,
}

/// What a successful grant returns (restforce `auth_success_response.json`).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    pub instance_url: String,
    pub id: String,
    pub token_type: &'static str,
    pub issued_at: String,
    pub signature: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'static str>,
}

impl Sessions {
    /// Runs a grant from the form fields (and an HTTP Basic header carrying the client id
    /// and secret, which the client-credentials flow also accepts).
    pub(crate) fn grant(
        &self,
        access: &Access,
        form: &[(String, String)],
        headers: &HeaderMap,
        base_url: &str,
        now_ms: i64,
    ) -> Result<TokenResponse, OAuthError> {
        let field = |k: &str| form.iter().find(|(name, _)| name == k).map(|(_, v)| v.trim().to_string());
        let (basic_id, basic_secret) = basic(headers).unzip();
        let client_id = field("client_id").or(basic_id).unwrap_or_default();
        let secret = field("client_secret").or(basic_secret).unwrap_or_default();
        let grant_type = field("grant_type").unwrap_or_default();
        if grant_type != "client_credentials" && grant_type != "refresh_token" {
            return Err(OAuthError::unsupported_grant());
        }
        if client_id != access.client_id {
            return Err(OAuthError::unknown_client());
        }
        if secret != access.client_secret {
            return Err(OAuthError::bad_secret());
        }
        if grant_type == "refresh_token" && field("refresh_token").as_deref() != Some(access.refresh_token.as_str()) {
            return Err(OAuthError::bad_refresh_token());
        }
        let n = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let token = format!("{}!AQ{}", &access.org_id[..15.min(access.org_id.len())], opaque(n, &access.client_secret));
        self.valid.lock().unwrap_or_else(|e| e.into_inner()).insert(token.clone());
        let id = format!("{base_url}/id/{}/{}", access.org_id, access.run_as_user_id);
        let issued_at = now_ms.to_string();
        let signature = STANDARD.encode(format!("{:016x}{:016x}", mix(n ^ 0x5a5a), mix(now_ms as u64)));
        Ok(TokenResponse {
            access_token: token,
            instance_url: base_url.to_string(),
            id,
            token_type: "Bearer",
            issued_at,
            signature,
            scope: (grant_type == "client_credentials").then_some("api"),
        })
    }

    /// The bearer token of a request when it is one we issued and did not expire.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let token = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("OAuth ")))
            .map(str::trim)
            .ok_or_else(ApiError::invalid_session)?;
        if self.valid.lock().unwrap_or_else(|e| e.into_inner()).contains(token) {
            Ok(())
        } else {
            Err(ApiError::invalid_session())
        }
    }

    /// Every issued token becomes invalid.
    pub(crate) fn expire_all(&self) {
        self.valid.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let raw = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let decoded = STANDARD.decode(raw.strip_prefix("Basic ")?.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// A 64-bit mixer (splitmix64's finaliser).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An opaque token body: unguessable enough for a loopback simulator, different per grant.
fn opaque(n: u64, salt: &str) -> String {
    let salt = salt.bytes().fold(0u64, |h, b| mix(h ^ u64::from(b)));
    format!("{:016x}{:016x}{:016x}", mix(n), mix(n ^ salt), mix(salt.wrapping_add(n)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn access() -> Access {
        Access {
            org_id: "00D000000000001AAA".into(),
            org_name: "Acme".into(),
            run_as_user_id: "005000000000001AAA".into(),
            client_id: "cid".into(),
            client_secret: "secret".into(),
            refresh_token: "rt".into(),
        }
    }

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
        h
    }

    #[test]
    fn a_client_credentials_grant_issues_a_token_that_then_authenticates() {
        let s = Sessions::default();
        let f = form(&[("grant_type", "client_credentials"), ("client_id", "cid"), ("client_secret", "secret")]);
        let t = s.grant(&access(), &f, &HeaderMap::new(), "http://h", 1).unwrap();
        assert!(t.access_token.starts_with("00D000000000001!"));
        assert_eq!(t.instance_url, "http://h");
        assert!(s.check(&bearer(&t.access_token)).is_ok());
        s.expire_all();
        assert_eq!(s.check(&bearer(&t.access_token)).unwrap_err().code, "INVALID_SESSION_ID");
    }

    #[test]
    fn wrong_secrets_unknown_clients_and_stale_refresh_tokens_are_refused() {
        let s = Sessions::default();
        let a = access();
        let bad = form(&[("grant_type", "client_credentials"), ("client_id", "cid"), ("client_secret", "x")]);
        assert_eq!(s.grant(&a, &bad, &HeaderMap::new(), "h", 1).unwrap_err().error, "invalid_client");
        let who = form(&[("grant_type", "client_credentials"), ("client_id", "no"), ("client_secret", "secret")]);
        assert_eq!(s.grant(&a, &who, &HeaderMap::new(), "h", 1).unwrap_err().error, "invalid_client_id");
        let rt = form(&[("grant_type", "refresh_token"), ("client_id", "cid"), ("client_secret", "secret")]);
        assert_eq!(s.grant(&a, &rt, &HeaderMap::new(), "h", 1).unwrap_err().error, "invalid_grant");
        assert_eq!(s.grant(&a, &form(&[]), &HeaderMap::new(), "h", 1).unwrap_err().error, "unsupported_grant_type");
    }
}
