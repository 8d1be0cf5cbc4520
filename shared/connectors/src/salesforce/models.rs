//! Salesforce wire types (salesforce-api.md 1.3, 2.2, 3.2, 3.3, 5.1): the token answer, a
//! query page, the records of each object the import reads, describe, and error bodies.
//! Every field is optional or defaulted, so an org that hides a field still parses.

use serde::Deserialize;
use serde_json::Value;

/// The OAuth token answer (restforce `auth_success_response.json`). `Debug` hides the token.
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    /// The bearer token (a session id).
    pub access_token: String,
    /// Where every later REST call goes.
    pub instance_url: String,
    /// The identity URL `.../id/<orgId>/<userId>`.
    #[serde(default)]
    pub id: Option<String>,
    /// Epoch milliseconds, as text.
    #[serde(default)]
    pub issued_at: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"***")
            .field("instance_url", &self.instance_url)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// An OAuth error (`{error, error_description}`, restforce `auth_error_response.json`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct OAuthErrorBody {
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_description: Option<String>,
}

/// One item of a REST error array (`[{message, errorCode, fields?}]`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ErrorItem {
    #[serde(default)]
    pub message: Option<String>,
    /// `errorCode`; sObject Collections items call it `statusCode` (salesforce-api.md 4.2).
    #[serde(default, rename = "errorCode", alias = "statusCode")]
    pub error_code: Option<String>,
    #[serde(default)]
    pub fields: Vec<String>,
}

/// The answer to a create, `201 {"id", "success", "errors"}` (salesforce-api.md 3.1;
/// restforce `create_success_response.json`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CreateResult {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub success: Option<bool>,
    #[serde(default)]
    pub errors: Vec<ErrorItem>,
}

/// One page of a query (`totalSize`, `done`, `nextRecordsUrl`, `records`).
#[derive(Clone, Debug, Deserialize)]
pub struct QueryPage {
    #[serde(default, rename = "totalSize")]
    pub total_size: u64,
    #[serde(default = "yes")]
    pub done: bool,
    #[serde(default, rename = "nextRecordsUrl")]
    pub next_records_url: Option<String>,
    /// Records kept as JSON, so one odd record never fails the page.
    #[serde(default)]
    pub records: Vec<Value>,
}

fn yes() -> bool {
    true
}

/// `attributes` of a record.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Attributes {
    #[serde(default, rename = "type")]
    pub object: Option<String>,
}

/// A User.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub is_active: Option<bool>,
    #[serde(default)]
    pub profile_id: Option<String>,
    #[serde(default)]
    pub last_modified_date: Option<String>,
}

/// An Account.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Account {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub website: Option<String>,
    #[serde(default, rename = "Type")]
    pub account_type: Option<String>,
    #[serde(default)]
    pub billing_street: Option<String>,
    #[serde(default)]
    pub billing_city: Option<String>,
    #[serde(default)]
    pub billing_state: Option<String>,
    #[serde(default)]
    pub billing_postal_code: Option<String>,
    #[serde(default)]
    pub billing_country: Option<String>,
    #[serde(default)]
    pub is_deleted: Option<bool>,
    #[serde(default)]
    pub last_modified_date: Option<String>,
}

/// A Contact (its status field is read separately: its name is configurable).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Contact {
    pub id: String,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub last_modified_date: Option<String>,
}

/// An Opportunity.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Opportunity {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub stage_name: Option<String>,
    #[serde(default)]
    pub close_date: Option<String>,
    #[serde(default)]
    pub amount: Option<f64>,
    #[serde(default, rename = "Type")]
    pub opportunity_type: Option<String>,
    #[serde(default)]
    pub owner_id: Option<String>,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub last_modified_date: Option<String>,
}

/// A Task.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Task {
    pub id: String,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub task_subtype: Option<String>,
    #[serde(default)]
    pub who_id: Option<String>,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub created_by_id: Option<String>,
    #[serde(default)]
    pub activity_date: Option<String>,
    #[serde(default)]
    pub is_closed: Option<bool>,
    #[serde(default)]
    pub last_modified_date: Option<String>,
}

/// An Event.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Event {
    pub id: String,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub who_id: Option<String>,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub created_by_id: Option<String>,
    #[serde(default)]
    pub start_date_time: Option<String>,
    #[serde(default)]
    pub end_date_time: Option<String>,
    #[serde(default)]
    pub last_modified_date: Option<String>,
}

/// A Profile (the roles list).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Profile {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// `sobjects/{Object}/describe`, the parts the connector reads.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Describe {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub fields: Vec<DescribeField>,
}

/// One field of a describe.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct DescribeField {
    pub name: String,
    #[serde(default, rename = "type")]
    pub field_type: String,
    #[serde(default, rename = "picklistValues")]
    pub picklist_values: Vec<PicklistValue>,
}

/// One picklist value.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PicklistValue {
    pub value: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
}

/// Trimmed text, `None` when empty.
pub(crate) fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}
