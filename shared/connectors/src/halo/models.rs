//! HaloPSA wire types (serde), as the API sends them (psa-apis.md 2.4, H1 schemas `Uname`,
//! `Area`, `Users`, `Faults`, `Actions`, `AreaNote`). Tolerant on purpose: every field but
//! `id` may be absent or `null`; unknown fields are ignored.

use serde::{Deserialize, Deserializer};

/// Reads `null` as the type's default.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `Some(trimmed)` for non-blank text.
pub(crate) fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// A positive id as text (Halo writes 0 or -1 for "none").
pub(crate) fn id_text(id: Option<i64>) -> Option<String> {
    id.filter(|i| *i > 0).map(|i| i.to_string())
}

/// The OAuth2 token answer (psa-apis.md 2.2, H2 `HaloToken`).
#[derive(Clone, Deserialize)]
pub struct TokenAnswer {
    pub access_token: String,
    #[serde(default)]
    pub token_type: Option<String>,
    /// Seconds the token lives.
    #[serde(default)]
    pub expires_in: Option<u64>,
}

impl std::fmt::Debug for TokenAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAnswer").field("access_token", &"***").field("expires_in", &self.expires_in).finish()
    }
}

/// An OAuth2 error body `{error, error_description}` (RFC 6749 5.2).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct OAuthError {
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// An API error body. UNCONFIRMED shape: `message`/`Message` or `error` are read.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ApiErrorBody {
    #[serde(alias = "Message")]
    pub message: Option<String>,
    pub error: Option<String>,
}

/// An entry `{id, name}` of the customer-type lookup or the status list (integer ids).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct NamedEntry {
    pub id: i64,
    pub name: Option<String>,
}

/// An action outcome (`/api/Outcome`, H1 `TOutcome`): its name is `outcome`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct OutcomeEntry {
    pub id: i64,
    pub outcome: Option<String>,
    pub buttonname: Option<String>,
}

/// A role id as text, whatever its JSON type. Halo's schema (H1 `NHD_Roles.id`) makes it a
/// string, a GUID, which is kept as sent (trimmed). Older Halo versions sent an integer, so a
/// number is read too (0 or below: none, as for every Halo id). Blank, `null`, absent or of
/// any other type: none.
fn role_id<'de, D>(d: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(s)) => non_empty(Some(&s)),
        Some(serde_json::Value::Number(n)) => id_text(n.as_i64()),
        _ => None,
    })
}

/// An entry of the role list (`/api/Roles`, H1 `NHD_Roles`): its id is a GUID string.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RoleEntry {
    #[serde(deserialize_with = "role_id")]
    pub id: Option<String>,
    pub name: Option<String>,
}

/// A role reference on an agent (an `NHD_Roles` too: its id is the role's GUID).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RoleRef {
    #[serde(deserialize_with = "role_id")]
    pub id: Option<String>,
    pub name: Option<String>,
}

/// An agent (`/api/Agent`, H1 `Uname`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Agent {
    pub id: i64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub firstname: Option<String>,
    #[serde(default)]
    pub surname: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub isdisabled: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub roles: Vec<RoleRef>,
}

/// A client (`/api/Client`, H1 `Area`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Client {
    pub id: i64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub inactive: bool,
    /// The customer type id (0: none).
    #[serde(default)]
    pub customertype: Option<i64>,
    #[serde(default)]
    pub main_phonenumber: Option<String>,
    #[serde(default)]
    pub website: Option<String>,
    /// Some tenants send a formatted address line. UNCONFIRMED field.
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub alastupdate: Option<String>,
}

/// A user, i.e. a contact (`/api/Users`, H1 `Users`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct User {
    pub id: i64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub firstname: Option<String>,
    #[serde(default)]
    pub surname: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub emailaddress: Option<String>,
    #[serde(default)]
    pub phonenumber: Option<String>,
    #[serde(default)]
    pub mobilenumber: Option<String>,
    #[serde(default)]
    pub client_id: Option<i64>,
    #[serde(default, deserialize_with = "null_default")]
    pub inactive: bool,
    #[serde(default)]
    pub ulastupdate: Option<String>,
}

/// The `{record_count, tickets}` envelope of the tickets/opportunities list (H1).
#[derive(Debug, Deserialize)]
pub struct TicketList {
    #[serde(default)]
    pub tickets: Vec<Opportunity>,
}

/// An opportunity (`/api/Opportunities`, H1 `Faults`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Opportunity {
    pub id: i64,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
    #[serde(default)]
    pub status_id: Option<i64>,
    #[serde(default)]
    pub client_id: Option<i64>,
    #[serde(default)]
    pub user_id: Option<i64>,
    #[serde(default)]
    pub agent_id: Option<i64>,
    #[serde(default)]
    pub oppvalue: Option<f64>,
    #[serde(default)]
    pub targetdate: Option<String>,
    #[serde(default)]
    pub deadlinedate: Option<String>,
    #[serde(default)]
    pub last_update: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub deleted: bool,
}

/// An action on a ticket (`/api/Actions`, H1 `Actions`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Action {
    pub id: i64,
    #[serde(default)]
    pub ticket_id: Option<i64>,
    #[serde(default)]
    pub outcome: Option<String>,
    #[serde(default)]
    pub who_agentid: Option<i64>,
    #[serde(default)]
    pub datetime: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub last_updated: Option<String>,
}

/// A client-level CRM note (`/api/CRMNote`, H1 `AreaNote`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct CrmNote {
    pub id: i64,
    #[serde(default)]
    pub client_id: Option<i64>,
    #[serde(default)]
    pub user_id: Option<i64>,
    #[serde(default)]
    pub who_agentid: Option<i64>,
    #[serde(default)]
    pub datetime: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}
