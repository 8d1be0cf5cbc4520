//! Syncro API authentication (psa-apis.md 3.2): `Authorization: Bearer {token}` or the
//! `api_key` query parameter, checked against the tenant's API tokens.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};

use super::error::ApiError;

/// An API token (Admin > API > API Tokens) and the user it acts as.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ApiToken {
    pub token: String,
    /// The Syncro user the token belongs to (`/me`).
    pub user_id: i64,
    /// The token's custom permissions lack "Customers - View Detail": `/contacts` answers
    /// the permission 401.
    pub restricted: bool,
}

/// Who may call the tenant's API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Access {
    pub subdomain: String,
    pub tokens: Vec<ApiToken>,
}

impl Access {
    /// The token with full rights.
    pub(crate) fn full(&self) -> Option<&ApiToken> {
        self.tokens.iter().find(|t| !t.restricted)
    }

    /// The token without contact rights.
    pub(crate) fn restricted(&self) -> Option<&ApiToken> {
        self.tokens.iter().find(|t| t.restricted)
    }
}

/// The token a request authenticates with (header first, then `api_key`), or the 401.
/// The header may carry `Bearer {token}` or, UNCONFIRMED but harmless, the bare token.
pub(crate) fn authenticate<'a>(
    access: &'a Access,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Result<&'a ApiToken, ApiError> {
    let from_header = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).map(|raw| {
        let raw = raw.trim();
        raw.strip_prefix("Bearer ").or_else(|| raw.strip_prefix("bearer ")).unwrap_or(raw).trim().to_string()
    });
    let from_query = params.iter().find(|(k, _)| k == "api_key").map(|(_, v)| v.trim().to_string());
    let given = from_header.filter(|t| !t.is_empty()).or(from_query).ok_or_else(ApiError::bad_token)?;
    access.tokens.iter().find(|t| t.token == given).ok_or_else(ApiError::bad_token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn access() -> Access {
        Access {
            subdomain: "acme".into(),
            tokens: vec![ApiToken { token: "T0k3n".into(), user_id: 1, restricted: false }],
        }
    }

    #[test]
    fn a_bearer_header_or_an_api_key_parameter_authenticates() {
        let a = access();
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer T0k3n"));
        assert_eq!(authenticate(&a, &h, &[]).unwrap().user_id, 1);
        let q = vec![("api_key".to_string(), "T0k3n".to_string())];
        assert_eq!(authenticate(&a, &HeaderMap::new(), &q).unwrap().user_id, 1);
    }

    #[test]
    fn a_missing_or_wrong_token_is_refused() {
        let a = access();
        assert!(authenticate(&a, &HeaderMap::new(), &[]).is_err());
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer nope"));
        assert!(authenticate(&a, &h, &[]).is_err());
    }
}
