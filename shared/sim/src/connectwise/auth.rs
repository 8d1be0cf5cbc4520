//! ConnectWise API authentication: HTTP Basic `{companyId}+{publicKey}:{privateKey}` plus
//! the `clientId` header, checked against the tenant's API members (psa-apis.md 1.2).

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::error::ApiError;

/// An API member (System > Members > API Members) and its key pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ApiMember {
    pub identifier: String,
    pub public_key: String,
    pub private_key: String,
    /// Its security role may call `/system/info` and nothing else.
    pub restricted: bool,
}

/// Who may call the tenant's API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Access {
    pub company_id: String,
    pub company_name: String,
    /// The integration's clientId. UNCONFIRMED how CW treats an unknown clientId; any
    /// non-empty value is accepted, only a missing one is refused.
    pub client_id: String,
    pub members: Vec<ApiMember>,
}

impl Access {
    /// The API member with full rights.
    pub(crate) fn full(&self) -> Option<&ApiMember> {
        self.members.iter().find(|m| !m.restricted)
    }

    /// An API member with full rights other than [`full`](Self::full) (another
    /// integration of the tenant), if there is one.
    pub(crate) fn other(&self) -> Option<&ApiMember> {
        self.members.iter().filter(|m| !m.restricted).nth(1)
    }

    /// The API member with the restricted role.
    pub(crate) fn restricted(&self) -> Option<&ApiMember> {
        self.members.iter().find(|m| m.restricted)
    }
}

/// The API member a request authenticates as, or the 401 to answer.
pub(crate) fn authenticate<'a>(access: &'a Access, headers: &HeaderMap) -> Result<&'a ApiMember, ApiError> {
    let raw = headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("The Authorization header is missing."))?
        .to_str()
        .map_err(|_| ApiError::unauthorized("The Authorization header is not readable text."))?;
    let encoded = raw
        .strip_prefix("Basic ")
        .or_else(|| raw.strip_prefix("basic "))
        .ok_or_else(|| ApiError::unauthorized("The Authorization header must use the Basic scheme."))?;
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::unauthorized("The Authorization header is not valid Base64."))?;
    let (user, private_key) = decoded
        .split_once(':')
        .ok_or_else(|| ApiError::unauthorized("The credentials must be companyId+publicKey:privateKey."))?;
    let (company, public_key) =
        user.split_once('+').ok_or_else(|| ApiError::unauthorized("The user name must be companyId+publicKey."))?;
    if !company.eq_ignore_ascii_case(&access.company_id) {
        return Err(ApiError::unauthorized(format!("Company '{company}' is not valid for these credentials.")));
    }
    let member = access
        .members
        .iter()
        .find(|m| m.public_key == public_key && m.private_key == private_key)
        .ok_or_else(|| ApiError::unauthorized("The public or private key is not valid."))?;
    let client_id = headers.get("clientid").and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or_default();
    if client_id.is_empty() {
        return Err(ApiError::unauthorized(
            "The clientId header is missing: every request needs the clientId of a registered integration.",
        ));
    }
    Ok(member)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn access() -> Access {
        Access {
            company_id: "acme".into(),
            company_name: "Acme".into(),
            client_id: "c".into(),
            members: vec![ApiMember {
                identifier: "api".into(),
                public_key: "pub".into(),
                private_key: "priv".into(),
                restricted: false,
            }],
        }
    }

    fn headers(user_pass: &str, client: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = format!("Basic {}", STANDARD.encode(user_pass));
        h.insert(AUTHORIZATION, HeaderValue::from_str(&v).unwrap());
        if let Some(c) = client {
            h.insert("ClientID", HeaderValue::from_str(c).unwrap());
        }
        h
    }

    #[test]
    fn good_keys_with_a_client_id_authenticate() {
        let a = access();
        assert_eq!(authenticate(&a, &headers("ACME+pub:priv", Some("x"))).unwrap().identifier, "api");
    }

    #[test]
    fn wrong_company_keys_or_client_id_are_refused() {
        let a = access();
        assert!(authenticate(&a, &headers("other+pub:priv", Some("x"))).is_err());
        assert!(authenticate(&a, &headers("acme+pub:nope", Some("x"))).is_err());
        let e = authenticate(&a, &headers("acme+pub:priv", None)).unwrap_err();
        assert!(e.message.contains("clientId"));
        assert!(authenticate(&a, &HeaderMap::new()).is_err());
    }
}
