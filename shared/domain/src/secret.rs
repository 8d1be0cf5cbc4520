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

/// HaloPSA API application keys (psa-apis.md 2.2: OAuth2 client credentials).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaloCredentials {
    /// The resource server root, e.g. `https://acme.halopsa.com` (API at `{site}/api`).
    pub site: String,
    /// The authorisation server, when not `{site}/auth`.
    #[serde(default)]
    pub auth_url: Option<String>,
    /// The tenant name, for hosted (multi-tenant) instances: sent as `?tenant=` on the token URL.
    #[serde(default)]
    pub tenant: Option<String>,
    pub client_id: String,
    pub client_secret: SecretString,
}

/// A Syncro API token (psa-apis.md 3.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncroCredentials {
    /// The account's subdomain (`acme` for `acme.syncromsp.com`) or a base URL.
    pub site: String,
    pub api_key: SecretString,
}

/// A Salesforce connected app (salesforce-api.md 1.2): client credentials, or a refresh
/// token from the web-server flow when one is given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesforceCredentials {
    /// The login or My Domain host the token endpoint lives on.
    pub login_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
    #[serde(default)]
    pub refresh_token: Option<SecretString>,
    /// The Contact field whose values the contacts mapping keys on (a picklist).
    #[serde(default)]
    pub contact_status_field: Option<String>,
}

/// The credentials of one connection, per system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "system", rename_all = "snake_case")]
pub enum Credentials {
    /// ConnectWise PSA.
    #[serde(rename = "connectwise")]
    ConnectWise(ConnectWiseCredentials),
    /// HaloPSA.
    #[serde(rename = "halo")]
    Halo(HaloCredentials),
    /// Syncro.
    #[serde(rename = "syncro")]
    Syncro(SyncroCredentials),
    /// Salesforce.
    #[serde(rename = "salesforce")]
    Salesforce(SalesforceCredentials),
}

/// The JSON type of a value, for messages.
fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Required and optional fields of each system's credentials.
fn fields(system: System) -> (&'static [&'static str], &'static [&'static str]) {
    match system {
        System::ConnectWise => (&["site", "company_id", "public_key", "private_key", "client_id"], &[]),
        System::Halo => (&["site", "client_id", "client_secret"], &["auth_url", "tenant"]),
        System::Syncro => (&["site", "api_key"], &[]),
        System::Salesforce => {
            (&["login_url", "client_id", "client_secret"], &["refresh_token", "contact_status_field"])
        }
    }
}

impl Credentials {
    /// Parses a request body for `system`, naming every missing or empty field and any
    /// field the system does not take.
    pub fn parse(system: System, body: &serde_json::Value) -> Result<Self, DomainError> {
        let obj = body.as_object().ok_or_else(|| DomainError::invalid("credentials must be a JSON object"))?;
        let (required, optional) = fields(system);
        let unknown: Vec<&str> = obj
            .keys()
            .map(String::as_str)
            .filter(|k| !required.contains(k) && !optional.contains(k) && *k != "system")
            .collect();
        if !unknown.is_empty() {
            return Err(DomainError::invalid(format!(
                "{} credentials do not take: {} (they take {})",
                system.display_name(),
                unknown.join(", "),
                required.iter().chain(optional).copied().collect::<Vec<_>>().join(", ")
            )));
        }
        let mistyped: Vec<String> = required
            .iter()
            .chain(optional)
            .filter_map(|n| match obj.get(*n) {
                Some(v) if !(v.is_string() || (v.is_null() && optional.contains(n))) => {
                    Some(format!("{n} (got {})", json_type(v)))
                }
                _ => None,
            })
            .collect();
        if !mistyped.is_empty() {
            return Err(DomainError::invalid(format!(
                "{} credentials must be strings; wrong type: {}",
                system.display_name(),
                mistyped.join(", ")
            )));
        }
        let field = |name: &str| -> Option<String> {
            obj.get(name).and_then(|v| v.as_str()).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
        };
        let missing: Vec<&str> = required.iter().copied().filter(|n| field(n).is_none()).collect();
        if !missing.is_empty() {
            return Err(DomainError::invalid(format!(
                "{} credentials are missing: {}",
                system.display_name(),
                missing.join(", ")
            )));
        }
        let get = |n: &str| field(n).unwrap_or_default();
        Ok(match system {
            System::ConnectWise => Credentials::ConnectWise(ConnectWiseCredentials {
                site: get("site"),
                company_id: get("company_id"),
                public_key: get("public_key"),
                private_key: SecretString::new(get("private_key")),
                client_id: get("client_id"),
            }),
            System::Halo => Credentials::Halo(HaloCredentials {
                site: get("site"),
                auth_url: field("auth_url"),
                tenant: field("tenant"),
                client_id: get("client_id"),
                client_secret: SecretString::new(get("client_secret")),
            }),
            System::Syncro => {
                Credentials::Syncro(SyncroCredentials { site: get("site"), api_key: SecretString::new(get("api_key")) })
            }
            System::Salesforce => Credentials::Salesforce(SalesforceCredentials {
                login_url: get("login_url"),
                client_id: get("client_id"),
                client_secret: SecretString::new(get("client_secret")),
                refresh_token: field("refresh_token").map(SecretString::new),
                contact_status_field: field("contact_status_field"),
            }),
        })
    }

    /// The system these credentials are for.
    pub fn system(&self) -> System {
        match self {
            Credentials::ConnectWise(_) => System::ConnectWise,
            Credentials::Halo(_) => System::Halo,
            Credentials::Syncro(_) => System::Syncro,
            Credentials::Salesforce(_) => System::Salesforce,
        }
    }

    /// What may be shown and stored outside the secret store: the site and account,
    /// never a key, secret or token.
    pub fn public_summary(&self) -> serde_json::Value {
        match self {
            Credentials::ConnectWise(c) => serde_json::json!({
                "site": c.site,
                "company_id": c.company_id,
                "public_key": c.public_key,
            }),
            Credentials::Halo(c) => serde_json::json!({
                "site": c.site,
                "auth_url": c.auth_url,
                "tenant": c.tenant,
                "client_id": c.client_id,
            }),
            Credentials::Syncro(c) => serde_json::json!({ "site": c.site }),
            Credentials::Salesforce(c) => serde_json::json!({
                "login_url": c.login_url,
                "client_id": c.client_id,
                "contact_status_field": c.contact_status_field,
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
    fn every_system_keeps_its_secrets_out_of_the_summary_and_debug_output() {
        let bodies = [
            (
                System::Halo,
                serde_json::json!({"site":"https://h","client_id":"c","client_secret":"TOPSECRET1","tenant":"acme"}),
            ),
            (System::Syncro, serde_json::json!({"site":"acme","api_key":"TOPSECRET2"})),
            (
                System::Salesforce,
                serde_json::json!({"login_url":"https://l","client_id":"c","client_secret":"TOPSECRET3","refresh_token":"TOPSECRET4"}),
            ),
        ];
        for (system, body) in bodies {
            let c = Credentials::parse(system, &body).unwrap();
            assert_eq!(c.system(), system);
            let shown = format!("{c:?} {}", c.public_summary());
            assert!(!shown.contains("TOPSECRET"), "{shown}");
        }
    }

    #[test]
    fn a_field_the_system_does_not_take_is_refused_by_name() {
        let err = Credentials::parse(System::Syncro, &serde_json::json!({"site":"a","api_key":"k","password":"x"}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("do not take: password"), "{err}");
    }

    #[test]
    fn missing_credential_fields_are_all_named() {
        let err = Credentials::parse(System::ConnectWise, &serde_json::json!({"site": "x", "public_key": " "}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("company_id") && err.contains("public_key") && err.contains("private_key"), "{err}");
        assert!(!err.contains("site,"), "{err}");
    }

    #[test]
    fn a_credential_field_of_the_wrong_type_is_named_as_mistyped_not_missing() {
        let body = serde_json::json!({
            "site": [], "company_id": "acme", "public_key": "pub", "private_key": 123, "client_id": "c"
        });
        let err = Credentials::parse(System::ConnectWise, &body).unwrap_err().to_string();
        assert!(err.contains("wrong type") && err.contains("private_key (got a number)"), "{err}");
        assert!(err.contains("site (got an array)"), "{err}");
        assert!(!err.contains("missing"), "{err}");
        assert!(!err.contains("123"), "the value itself (maybe a secret) is not quoted: {err}");
    }

    #[test]
    fn an_optional_credential_field_may_be_null() {
        let body = serde_json::json!({"site": "s", "client_id": "c", "client_secret": "x", "tenant": null});
        assert!(Credentials::parse(System::Halo, &body).is_ok());
    }
}
