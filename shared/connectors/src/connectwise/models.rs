//! ConnectWise wire types (serde), as the REST API 3.0 sends them. Field names follow the
//! generated models of psa-apis.md S2 (pyconnectwise) and the recorded fixtures of S4.
//! Tolerant on purpose: every field but `id` may be absent or `null`; unknown fields are
//! ignored. A field of the wrong type still fails, so the record becomes unreadable.

use serde::{Deserialize, Deserializer};

/// Reads `null` as the type's default (CW sends `null` for empty lists and flags at times).
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The `_info` map every object carries (psa-apis.md 1.6: a map of strings).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Info {
    /// When the record last changed (`YYYY-MM-DDTHH:MM:SSZ`).
    pub last_updated: Option<String>,
    /// The member identifier who last changed it.
    pub updated_by: Option<String>,
    /// When the record was created.
    pub date_entered: Option<String>,
    /// The member identifier who created it. UNCONFIRMED key name (psa-apis.md 1.6,
    /// Activity): read through [`Info::created_by`] only, so a rename is a one-line change.
    pub entered_by: Option<String>,
}

impl Info {
    /// Who created the record (a member identifier). The one place naming the key.
    pub fn created_by(&self) -> Option<&str> {
        self.entered_by.as_deref()
    }
}

/// A reference to another object: `{id, identifier?, name?, description?, _info}`
/// (S2 `CompanyReference`, `MemberReference`, `ActivityTypeReference`...). All optional:
/// the fixtures hold empty references like `"site": {}`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Reference {
    pub id: Option<i64>,
    pub identifier: Option<String>,
    pub name: Option<String>,
    /// Some references (opportunity types, contact types) carry `description` not `name`.
    pub description: Option<String>,
}

impl Reference {
    /// The id as text, when there is one.
    pub fn id_string(&self) -> Option<String> {
        self.id.map(|id| id.to_string())
    }

    /// `name`, else `description`, when non-empty.
    pub fn label(&self) -> Option<String> {
        non_empty(self.name.as_deref()).or_else(|| non_empty(self.description.as_deref()))
    }
}

/// `Some(trimmed)` for non-blank text.
pub(crate) fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// A member (staff user), `GET /system/members` (S2 `Member`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub id: i64,
    /// The login name; activities and opportunities refer to members by it.
    #[serde(default)]
    pub identifier: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub primary_email: Option<String>,
    #[serde(default)]
    pub security_role: Option<Reference>,
    #[serde(default, deserialize_with = "null_default")]
    pub inactive_flag: bool,
    #[serde(default, rename = "_info")]
    pub info: Option<Info>,
}

/// A company, `GET /company/companies` (S2 `Company`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Company {
    pub id: i64,
    #[serde(default)]
    pub identifier: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// Active/inactive is the status's `inactiveFlag` (psa-apis.md 1.6, Company).
    #[serde(default)]
    pub status: Option<Reference>,
    #[serde(default, deserialize_with = "null_default")]
    pub types: Vec<Reference>,
    #[serde(default)]
    pub phone_number: Option<String>,
    #[serde(default)]
    pub website: Option<String>,
    #[serde(default)]
    pub address_line1: Option<String>,
    #[serde(default)]
    pub address_line2: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub zip: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub deleted_flag: bool,
    #[serde(default, rename = "_info")]
    pub info: Option<Info>,
}

/// One of a contact's communication items (S2 `ContactCommunicationItem`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CommunicationItem {
    pub id: Option<i64>,
    #[serde(rename = "type")]
    pub kind: Option<Reference>,
    pub value: Option<String>,
    pub extension: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub default_flag: bool,
    /// `Email`, `Phone` or `Fax`.
    pub communication_type: Option<String>,
}

/// A contact, `GET /company/contacts` (S2 `Contact`; fixtures `read_contacts.json`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub id: i64,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub company: Option<Reference>,
    #[serde(default, deserialize_with = "null_default")]
    pub inactive_flag: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub types: Vec<Reference>,
    #[serde(default)]
    pub default_phone_type: Option<String>,
    #[serde(default)]
    pub default_phone_nbr: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub communication_items: Vec<CommunicationItem>,
    #[serde(default, rename = "_info")]
    pub info: Option<Info>,
}

/// A catalog item, `GET /procurement/catalog` (S2 `CatalogItem`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogItem {
    pub id: i64,
    #[serde(default)]
    pub identifier: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<Reference>,
    #[serde(default)]
    pub category: Option<Reference>,
    #[serde(default)]
    pub subcategory: Option<Reference>,
    /// `Billable`, `DoNotBill`, `NoCharge` or `NoDefault`.
    #[serde(default)]
    pub billable_option: Option<String>,
    #[serde(default)]
    pub price: Option<f64>,
    #[serde(default, deserialize_with = "null_default")]
    pub inactive_flag: bool,
    #[serde(default, rename = "_info")]
    pub info: Option<Info>,
}

/// An activity, `GET /sales/activities` (S2 `Activity`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    pub id: i64,
    /// The subject.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<Reference>,
    /// Done when this status is a closed one (`closedFlag`).
    #[serde(default)]
    pub status: Option<Reference>,
    #[serde(default)]
    pub company: Option<Reference>,
    #[serde(default)]
    pub contact: Option<Reference>,
    #[serde(default)]
    pub opportunity: Option<Reference>,
    #[serde(default)]
    pub assign_to: Option<Reference>,
    #[serde(default)]
    pub date_start: Option<String>,
    #[serde(default)]
    pub date_end: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default, rename = "_info")]
    pub info: Option<Info>,
}

/// An opportunity, `GET /sales/opportunities` (S2 `Opportunity`; no amount: see [`Forecast`]).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Opportunity {
    pub id: i64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<Reference>,
    #[serde(default)]
    pub stage: Option<Reference>,
    #[serde(default, rename = "type")]
    pub kind: Option<Reference>,
    #[serde(default)]
    pub expected_close_date: Option<String>,
    #[serde(default)]
    pub primary_sales_rep: Option<Reference>,
    #[serde(default)]
    pub company: Option<Reference>,
    #[serde(default)]
    pub contact: Option<Reference>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default, rename = "_info")]
    pub info: Option<Info>,
}

/// One line of an opportunity's forecast (S2 `ForecastItem`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ForecastItem {
    pub id: Option<i64>,
    /// `Product`, `Service`, `Agreement`, `Other1` or `Other2`.
    pub forecast_type: Option<String>,
    pub product_description: Option<String>,
    pub forecast_description: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub quantity: f64,
    #[serde(deserialize_with = "null_default")]
    pub revenue: f64,
    pub cost: Option<f64>,
    pub include_flag: Option<bool>,
    /// The catalog item the line sells (S2 `IvItemReference`); Tandem never sets one.
    pub catalog_item: Option<serde_json::Value>,
}

/// An opportunity's forecast, `GET /sales/opportunities/{id}/forecast` (S2 `Forecast`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Forecast {
    pub id: Option<i64>,
    #[serde(deserialize_with = "null_default")]
    pub forecast_items: Vec<ForecastItem>,
}

/// An entry of a setup list: roles, company statuses and types, contact types, product
/// types and categories, activity types and statuses, opportunity statuses (S2
/// `SecurityRole`, `CompanyStatus`, `CompanyType`, `ContactType`, `ProductType`,
/// `Category`, `ActivityType`, `ActivityStatus`, `OpportunityStatus`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetupEntry {
    pub id: i64,
    #[serde(default)]
    pub name: Option<String>,
    /// Contact types are named by `description`.
    #[serde(default)]
    pub description: Option<String>,
    /// Company statuses: companies with it are inactive.
    #[serde(default, deserialize_with = "null_default")]
    pub inactive_flag: bool,
    /// Activity (and opportunity) statuses: records with it are done.
    #[serde(default, deserialize_with = "null_default")]
    pub closed_flag: bool,
    /// The entry ConnectWise picks when none is given.
    #[serde(default, deserialize_with = "null_default")]
    pub default_flag: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub won_flag: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub lost_flag: bool,
}

/// What the writer keeps of a write's answer (psa-apis.md 1.7: `POST` answers 201 and
/// `PATCH` 200, both with the whole object): its id and `_info`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Saved {
    pub id: i64,
    #[serde(default, rename = "_info")]
    pub info: Option<Info>,
}

/// One field error of an error body.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ErrorItem {
    pub code: Option<String>,
    pub message: Option<String>,
    pub resource: Option<String>,
    pub field: Option<String>,
}

/// The error body of every failed call: `{code, message, errors[]?}` (psa-apis.md 1.3).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ErrorBody {
    pub code: Option<String>,
    pub message: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub errors: Vec<ErrorItem>,
}

/// `GET /login/companyinfo/{companyId}` (psa-apis.md 1.1; PascalCase keys per S2/S3). Only
/// the string fields we use, so an odd type elsewhere in it cannot fail the discovery.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct CompanyInfo {
    #[serde(rename = "CompanyName")]
    pub company_name: Option<String>,
    /// E.g. `v4_6_release/` or `v2025_1/`.
    #[serde(rename = "Codebase", alias = "codebase")]
    pub codebase: Option<String>,
    #[serde(rename = "VersionCode")]
    pub version_code: Option<String>,
}

/// `GET /system/info` (psa-apis.md 1.2, S2 `Info`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SystemInfo {
    pub version: Option<String>,
    pub is_cloud: Option<bool>,
    pub server_time_zone: Option<String>,
    pub cloud_region: Option<String>,
}

/// `GET .../count` (psa-apis.md 1.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Count {
    pub count: u64,
}
