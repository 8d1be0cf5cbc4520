//! Syncro wire types (serde), as the `/api/v1` endpoints send them (psa-apis.md 3.3-3.4;
//! samples in `specs/syncro/samples`). Tolerant on purpose: every field but `id` may be
//! absent or `null`; unknown fields are ignored. A field of the wrong type still fails, so
//! the record becomes unreadable.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// `Some(trimmed)` for non-blank text.
pub(crate) fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// `GET /me` (sample `me.json`); only what the credential check reads.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Me {
    pub user_id: Option<i64>,
    pub user_email: Option<String>,
    pub user_name: Option<String>,
    pub subdomain: Option<String>,
    pub admin: Option<bool>,
}

/// `GET /users`: `{ "users": [[id, "name"], ...] }`, not paged (psa-apis.md 3.4).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct UserList {
    #[serde(default)]
    pub users: Vec<(i64, Option<String>)>,
}

/// `GET /users/{id}`: `{ "user": {...} }` (sample `user_get.json`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct UserEnvelope {
    pub user: User,
}

/// A user (technician) in detail.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct User {
    pub id: i64,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub full_name: Option<String>,
    /// The user group (role name, e.g. "Admins").
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub admin: Option<bool>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// The `meta` of a list page (psa-apis.md 3.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Meta {
    pub total_pages: Option<u64>,
    pub total_entries: Option<u64>,
    pub per_page: Option<u64>,
    pub page: Option<u64>,
}

/// A customer (company or person), `GET /customers` (sample `customers_list.json`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Customer {
    pub id: i64,
    #[serde(default)]
    pub firstname: Option<String>,
    #[serde(default)]
    pub lastname: Option<String>,
    #[serde(default)]
    pub business_name: Option<String>,
    #[serde(default)]
    pub business_then_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub address_2: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub zip: Option<String>,
    #[serde(default, deserialize_with = "null_false")]
    pub disabled: bool,
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// A contact, `GET /contacts` (sample `contacts_list.json`): one `name` field, no inactive flag.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Contact {
    pub id: i64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub mobile: Option<String>,
    /// Documented on the PUT body; UNCONFIRMED whether reads return it.
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub customer_id: Option<i64>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// A lead (Syncro's opportunity), `GET /leads` (sample `leads_list.json`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Lead {
    pub id: i64,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub business_then_name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub customer_id: Option<i64>,
    #[serde(default)]
    pub contact_id: Option<i64>,
    #[serde(default)]
    pub user_id: Option<i64>,
    /// The value. Documented on the write body only (psa-apis.md 3.4); UNCONFIRMED in reads,
    /// and read as a number or a numeric string.
    #[serde(default)]
    pub opportunity_amount_dollars: Option<Value>,
    #[serde(default)]
    pub ticket_description: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

impl Lead {
    /// The value in dollars, when readable.
    pub fn amount(&self) -> Option<f64> {
        match self.opportunity_amount_dollars.as_ref()? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// Error bodies (psa-apis.md 3.2, 3.5): `{error}`, `{message: "..." | [...]}`,
/// `{errors: "..." | [...]}`; all optional.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ErrorBody {
    pub error: Option<Value>,
    pub message: Option<Value>,
    pub errors: Option<Value>,
}

fn null_false<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}
