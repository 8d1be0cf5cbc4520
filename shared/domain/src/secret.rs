//! Credentials per system, held as secrets that never print: `Debug` and `Display`
//! redact them, and they are only ever serialised into the secret store.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::error::DomainError;
use crate::ids::System;

/// A secret string. Its `Debug` shows `***`; read it only where it goes on the wire.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret itself, for the wire only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// ConnectWise API-member keys (reference section 1.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectWiseCredentials {
    /// Site host or base URL, e.g. `api-na.myconnectwise.net` or `http://127.0.0.1:8080`.
    pub site: String,
    /// The ConnectWise company id used at login.
    pub company_id: String,
    /// The API member's public key.
    pub public_key: String,
    /// The API member's private key.
    pub private_key: SecretString,
    /// The integration's clientId (a GUID issued by ConnectWise).
    pub client_id: String,
}

/// The credentials of one connection, per system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "system", rename_all = "snake_case")]
pub enum Credentials {
    /// ConnectWise PSA.
    #[serde(rename = "connectwise")]
    ConnectWise(ConnectWiseCredentials),
}

impl Credentials {
    /// Parses a request body for `system`, naming every missing or empty field.
    pub fn parse(system: System, body: &serde_json::Value) -> Result<Self, DomainError> {
        let obj = body.as_object().ok_or_else(|| DomainError::invalid("credentials must be a JSON object"))?;
        let field = |name: &str| -> Option<String> {
            obj.get(name).and_then(|v| v.as_str()).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
        };
        match system {
            System::ConnectWise => {
                let names = ["site", "company_id", "public_key", "private_key", "client_id"];
                let missing: Vec<&str> = names.iter().copied().filter(|n| field(n).is_none()).collect();
                if !missing.is_empty() {
                    return Err(DomainError::invalid(format!(
                        "ConnectWise credentials are missing: {}",
                        missing.join(", ")
                    )));
                }
                let get = |n: &str| field(n).unwrap_or_default();
                Ok(Credentials::ConnectWise(ConnectWiseCredentials {
                    site: get("site"),
                    company_id: get("company_id"),
                    public_key: get("public_key"),
                    private_key: SecretString::new(get("private_key")),
                    client_id: get("client_id"),
                }))
            }
            other => Err(DomainError::refused(format!("{} connections are not built yet", other.display_name()))),
        }
    }

    /// The system these credentials are for.
    pub fn system(&self) -> System {
        match self {
            Credentials::ConnectWise(_) => System::ConnectWise,
        }
    }

    /// What may be shown and stored outside the secret store: the site and account,
    /// never a key.
    pub fn public_summary(&self) -> serde_json::Value {
        match self {
            Credentials::ConnectWise(c) => serde_json::json!({
                "site": c.site,
                "company_id": c.company_id,
                "public_key": c.public_key,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let c = Credentials::parse(
            System::ConnectWise,
            &serde_json::json!({"site":"s","company_id":"c","public_key":"p","private_key":"TOPSECRET","client_id":"id"}),
        )
        .unwrap();
        let shown = format!("{c:?} {}", c.public_summary());
        assert!(!shown.contains("TOPSECRET"), "{shown}");
    }

    #[test]
    fn missing_credential_fields_are_all_named() {
        let err = Credentials::parse(System::ConnectWise, &serde_json::json!({"site": "x", "public_key": " "}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("company_id") && err.contains("public_key") && err.contains("private_key"), "{err}");
        assert!(!err.contains("site,"), "{err}");
    }
}
