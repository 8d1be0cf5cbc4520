//! The Salesforce connector (salesforce-api.md sections 1-3, 5): OAuth token (client
//! credentials, or refresh token), credential check, live option lists from describe and
//! Profiles, paged incremental reads over SOQL with `nextRecordsUrl` cursors, the delete log
//! (`deleted.rs`, section 6.4), writes
//! (`write.rs`, sections 3-5) and the webhook reader (`webhook.rs`, section 6), built from
//! the files beside this one.

pub mod auth;
pub mod client;
pub mod deleted;
pub mod describe;
pub mod error;
pub mod mapping;
pub mod models;
pub mod objects;
pub mod pagination;
pub mod webhook;
pub mod write;

use std::sync::Arc;

use async_trait::async_trait;
use tandem_domain::external::{AccountInfo, Choice, Cursor, ExternalRecord, NO_TYPE, OptionList, Page};
use tandem_domain::ports::{Connector, ConnectorError, ErrorKind, ObjectQuery, ObjectRow, Written, bad_id};
use tandem_domain::secret::SalesforceCredentials;
use tandem_domain::{RecordKind, Stage, System, Timestamp};

use self::client::{API_VERSION, Client, QUERY_OPTIONS_HEADER};
use self::mapping::{DEFAULT_CONTACT_STATUS_FIELD, EVENT_TYPE, MapOptions};
use self::models::{Describe, Profile, QueryPage};
use self::pagination::Position;
use crate::http::Settings;
use crate::read;

pub use self::mapping::{parse_page, parse_page_with};

/// Attempts the credential check makes at most (one retry, so a user is not kept waiting).
pub const CHECK_ATTEMPTS: u32 = 2;
/// The cheap authenticated call of the credential check (salesforce-api.md 1.5).
pub const CHECK_QUERY: &str = "SELECT Id FROM Organization LIMIT 1";
/// The name shown for the synthetic "no type" choice.
pub const NO_TYPE_NAME: &str = "(no type)";
/// The fixed activity choices: (type id, name). Task subtypes per salesforce-api.md 3.2
/// (values UNCONFIRMED); other subtypes (`ListEmail`, `Cadence`, `LinkedIn`) come in as
/// `Task:<subtype>` and, offered by no choice, are never mapped.
pub const ACTIVITY_CHOICES: &[(&str, &str)] =
    &[("Task:Call", "Call"), ("Task:Email", "Email"), ("Task:Task", "Task"), (EVENT_TYPE, "Event")];
/// A safety stop for reading a whole option query.
const MAX_OPTION_PAGES: usize = 50;

/// The objects each stage reads, in order (activities: Tasks, then Events).
pub fn stage_objects(stage: Stage) -> &'static [&'static str] {
    match stage {
        Stage::Users => &["User"],
        Stage::Companies => &["Account"],
        Stage::Contacts => &["Contact"],
        Stage::Opportunities => &["Opportunity"],
        Stage::Activities => &["Task", "Event"],
        Stage::Solutions => &[],
    }
}

/// The fields read from each object (the contact status field is added per connection).
pub fn object_fields(object: &str) -> &'static [&'static str] {
    match object {
        "User" => &["Id", "Username", "Email", "FirstName", "LastName", "IsActive", "ProfileId", "LastModifiedDate"],
        "Account" => &[
            "Id",
            "Name",
            "Phone",
            "Website",
            "Type",
            "BillingStreet",
            "BillingCity",
            "BillingState",
            "BillingPostalCode",
            "BillingCountry",
            "IsDeleted",
            "LastModifiedDate",
        ],
        "Contact" => &["Id", "FirstName", "LastName", "Email", "Phone", "Title", "AccountId", "LastModifiedDate"],
        "Opportunity" => &[
            "Id",
            "Name",
            "StageName",
            "CloseDate",
            "Amount",
            "Type",
            "OwnerId",
            "AccountId",
            "Description",
            "LastModifiedDate",
        ],
        "Task" => &[
            "Id",
            "Subject",
            "Description",
            "TaskSubtype",
            "WhoId",
            "AccountId",
            "CreatedById",
            "ActivityDate",
            "IsClosed",
            "LastModifiedDate",
        ],
        "Event" => &[
            "Id",
            "Subject",
            "Description",
            "WhoId",
            "AccountId",
            "CreatedById",
            "StartDateTime",
            "EndDateTime",
            "LastModifiedDate",
        ],
        _ => &["Id"],
    }
}

/// Builds the connector (no network call). A contact status field that is not a field
/// name, or a login URL that is not a host, is refused here.
pub fn connect(
    client: reqwest::Client,
    settings: Settings,
    creds: &SalesforceCredentials,
) -> Result<Arc<dyn Connector>, ConnectorError> {
    Ok(Arc::new(SalesforceConnector::new(client, settings, creds)?))
}

/// One Salesforce connection. `Debug` never shows a secret or token.
#[derive(Debug)]
pub struct SalesforceConnector {
    client: Client,
    settings: Settings,
    options: MapOptions,
    /// The organisation's id, read once when a webhook call is verified.
    org_id: tokio::sync::OnceCell<String>,
}

fn invalid(message: String) -> ConnectorError {
    ConnectorError::new(System::Salesforce, ErrorKind::Invalid, message)
}

impl SalesforceConnector {
    /// A connector over a shared reqwest client.
    pub fn new(
        http: reqwest::Client,
        settings: Settings,
        creds: &SalesforceCredentials,
    ) -> Result<Self, ConnectorError> {
        let field = creds
            .contact_status_field
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .unwrap_or(DEFAULT_CONTACT_STATUS_FIELD)
            .to_string();
        let valid = field.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(invalid(format!("contact_status_field {field:?} is not a Salesforce field name")));
        }
        let client = Client::new(http, &settings, creds)?;
        Ok(Self { client, settings, options: MapOptions { contact_status_field: field }, org_id: Default::default() })
    }

    /// The underlying client (its transport and pacing).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The Contact field whose picklist values are the contact types.
    pub fn contact_status_field(&self) -> &str {
        &self.options.contact_status_field
    }

    pub(crate) fn data_path(rest: &str) -> String {
        format!("/services/data/{API_VERSION}/{rest}")
    }

    fn query_headers(&self) -> Vec<(&'static str, String)> {
        vec![(QUERY_OPTIONS_HEADER, pagination::query_options(self.settings.page_size))]
    }

    /// One page of a SOQL query (first page).
    async fn query(&self, soql: &str, attempts: Option<u32>) -> Result<Vec<u8>, ConnectorError> {
        let policy = attempts.map_or(self.settings.retry, |n| self.settings.retry.capped(n));
        self.client.get(&Self::data_path("query"), &[("q", soql.to_string())], &self.query_headers(), &policy).await
    }

    /// Every row of a query, following `nextRecordsUrl`.
    pub(crate) async fn query_all(&self, soql: &str) -> Result<Vec<serde_json::Value>, ConnectorError> {
        let mut body = self.query(soql, None).await?;
        let mut rows = Vec::new();
        for _ in 0..MAX_OPTION_PAGES {
            let page: QueryPage = serde_json::from_slice(&body)
                .map_err(|e| invalid(format!("Salesforce answered a query we cannot read: {e}")))?;
            rows.extend(page.records);
            match page.next_records_url.filter(|_| !page.done) {
                Some(next) => body = self.client.get(&next, &[], &self.query_headers(), &self.settings.retry).await?,
                None => return Ok(rows),
            }
        }
        Err(invalid(format!("the query {soql:?} has more than {MAX_OPTION_PAGES} pages")))
    }

    /// `sobjects/{object}/describe`.
    pub async fn describe(&self, object: &str) -> Result<Describe, ConnectorError> {
        self.describe_as(object).await
    }

    /// `sobjects/{object}/describe`, read as `T`.
    async fn describe_as<T: serde::de::DeserializeOwned>(&self, object: &str) -> Result<T, ConnectorError> {
        let path = Self::data_path(&format!("sobjects/{object}/describe"));
        let body = self.client.get(&path, &[], &[], &self.settings.retry).await?;
        serde_json::from_slice(&body)
            .map_err(|e| invalid(format!("Salesforce's describe of {object} is unreadable: {e}")))
    }

    /// The active picklist values of `object.field` as choices (id = value, name = label).
    async fn picklist(&self, object: &str, field: &str) -> Result<Vec<Choice>, ConnectorError> {
        let d = self.describe(object).await?;
        let f = d.fields.iter().find(|f| f.name.eq_ignore_ascii_case(field)).ok_or_else(|| {
            invalid(format!("Salesforce's {object} has no field {field}; check the connection's contact_status_field"))
        })?;
        Ok(f.picklist_values
            .iter()
            .filter(|v| v.active)
            .map(|v| Choice { id: v.value.clone(), name: v.label.clone().unwrap_or_else(|| v.value.clone()) })
            .collect())
    }

    fn fields_of(&self, object: &str) -> Vec<&str> {
        let mut fields = object_fields(object).to_vec();
        if object == "Contact" {
            fields.push(&self.options.contact_status_field);
        }
        fields
    }
}

#[async_trait]
impl Connector for SalesforceConnector {
    fn system(&self) -> System {
        System::Salesforce
    }

    /// A token (bad client id / secret / refresh token: Unauthorized; no answer:
    /// Unreachable), then `SELECT Id FROM Organization LIMIT 1` on the instance.
    async fn check(&self) -> Result<AccountInfo, ConnectorError> {
        let policy = self.settings.retry.capped(CHECK_ATTEMPTS);
        let session = self.client.session(&policy).await?;
        let body = self.query(CHECK_QUERY, Some(CHECK_ATTEMPTS)).await?;
        let org = serde_json::from_slice::<QueryPage>(&body)
            .ok()
            .and_then(|p| p.records.first().and_then(|r| r.get("Id")).and_then(|v| v.as_str()).map(str::to_string));
        Ok(AccountInfo {
            version: Some(match org {
                Some(id) => format!("{API_VERSION} (org {id})"),
                None => API_VERSION.to_string(),
            }),
            api_url: format!("{}/services/data/{API_VERSION}", session.instance_url),
        })
    }

    async fn options(&self, list: OptionList) -> Result<Vec<Choice>, ConnectorError> {
        let no_type = || Choice { id: NO_TYPE.to_string(), name: NO_TYPE_NAME.to_string() };
        match list {
            OptionList::Roles => {
                let rows = self.query_all("SELECT Id, Name FROM Profile ORDER BY Name").await?;
                Ok(rows
                    .into_iter()
                    .filter_map(|r| serde_json::from_value::<Profile>(r).ok())
                    .map(|p| Choice { name: p.name.unwrap_or_else(|| p.id.clone()), id: p.id })
                    .collect())
            }
            OptionList::CompanyTypes => {
                let mut choices = self.picklist("Account", "Type").await?;
                choices.push(no_type());
                Ok(choices)
            }
            OptionList::ContactTypes => {
                let mut choices = self.picklist("Contact", &self.options.contact_status_field).await?;
                choices.push(no_type());
                Ok(choices)
            }
            OptionList::ActivityTypes => Ok(ACTIVITY_CHOICES
                .iter()
                .map(|(id, name)| Choice { id: (*id).into(), name: (*name).into() })
                .collect()),
            OptionList::OpportunityStatuses => self.picklist("Opportunity", "StageName").await,
            OptionList::CatalogTypes | OptionList::CatalogCategories | OptionList::BillingOptions => Ok(Vec::new()),
        }
    }

    /// One page: the stage's object from the cursor (activities: Tasks, then Events), its
    /// `nextRecordsUrl` when there is one, else a fresh query `WHERE LastModifiedDate >=
    /// since [AND Id > last id] ORDER BY Id`. A query locator that expired is replaced by
    /// such a query after the last id read.
    async fn list(&self, kind: RecordKind, cursor: &Cursor) -> Result<Page, ConnectorError> {
        let Some(stage) = read::stage_in(System::Salesforce, kind) else {
            return Ok(Page { records: Vec::new(), next: None });
        };
        let objects = stage_objects(stage);
        let Some(first) = objects.first() else {
            return Ok(Page { records: Vec::new(), next: None });
        };
        let pos = Position::parse(&cursor.position)
            .ok_or_else(|| invalid(format!("cursor position {:?} is not a Salesforce position", cursor.position)))?;
        let object = pos.object.as_deref().unwrap_or(first);
        let index = objects.iter().position(|o| *o == object).ok_or_else(|| {
            invalid(format!("cursor position {:?} names no object of the {stage} stage", cursor.position))
        })?;
        let fields = self.fields_of(object);
        let fresh = || pagination::soql(object, &fields, cursor.since, pos.after.as_deref());
        let body = match &pos.next_url {
            Some(next) => match self.client.get(next, &[], &self.query_headers(), &self.settings.retry).await {
                Err(e) if error::is_invalid_locator(&e) => {
                    tracing::info!(object, "Salesforce query locator expired; resuming after the last id read");
                    self.query(&fresh(), None).await?
                }
                other => other?,
            },
            None => self.query(&fresh(), None).await?,
        };
        let (records, next_url) = parse_page_with(stage, &body, &self.options)?;
        let after = records.iter().rev().find_map(|r| r.id().map(str::to_string)).or(pos.after.clone());
        let next = match (next_url, objects.get(index + 1)) {
            (Some(url), _) => Some(Position { object: Some(object.to_string()), after, next_url: Some(url) }),
            (None, Some(following)) => {
                Some(Position { object: Some((*following).to_string()), after: None, next_url: None })
            }
            (None, None) => None,
        };
        Ok(Page { records, next: next.map(|p| Cursor { position: p.encode(), since: cursor.since }) })
    }

    /// `SELECT {the list's fields} FROM {object} WHERE Id = '{id}'` over the same query
    /// endpoint the list uses (salesforce-api.md 2.1), so the record has the list's fields
    /// and mapping, and deleted rows stay out as they do from the list (`query`, not
    /// `queryAll`); no row means it does not exist. An activity is read from the object
    /// its id's key prefix names ([`KEY_PREFIXES`]), else from each activity object in turn.
    /// The id is checked first ([`is_salesforce_id`]): only letters and digits reach the query.
    async fn get(&self, kind: RecordKind, id: &str) -> Result<Option<ExternalRecord>, ConnectorError> {
        let stage = read::stage_to_get(System::Salesforce, kind)?;
        if !is_salesforce_id(id) {
            return Err(bad_id(System::Salesforce, kind, id, "15 or 18 letters and digits"));
        }
        let objects = stage_objects(stage);
        let by_prefix: Vec<&str> =
            objects.iter().copied().filter(|o| key_prefix(o).is_some_and(|p| id.starts_with(p))).collect();
        let objects = if by_prefix.is_empty() { objects.to_vec() } else { by_prefix };
        for object in objects {
            let soql = format!("SELECT {} FROM {object} WHERE Id = '{id}'", self.fields_of(object).join(", "));
            let body = self.query(&soql, None).await?;
            let (records, _) = parse_page_with(stage, &body, &self.options)?;
            if let Some(record) = read::only(System::Salesforce, records)? {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    /// The ids `GET sobjects/{Type}/deleted/` lists for the objects `list` reads `kind` from
    /// (activities: Tasks, then Events), deleted at or after the minute of `since`; the
    /// window runs from `since` to now, moved as [`deleted::window`] says (Salesforce keeps
    /// 15 days; older deletes are the poll's id reconciliation's). Users and solutions: `None`
    /// (Salesforce never deletes users, it deactivates them, and has no solutions), so the
    /// poll does for them what it did before there was a log. Requests go through the
    /// client's pacing, retry and token refresh; refusals are classified by `error.rs`.
    async fn describe_object(
        &self,
        object: &str,
    ) -> Result<Option<tandem_domain::field_map::ObjectDescribe>, ConnectorError> {
        self.describe_as(object).await.map(Some)
    }

    async fn deleted_since(&self, kind: RecordKind, since: Timestamp) -> Result<Option<Vec<String>>, ConnectorError> {
        let Some(objects) = deleted::objects(kind) else {
            return Ok(None);
        };
        let now = Timestamp::from_datetime(time::OffsetDateTime::now_utc());
        let (start, end) = deleted::window(since, now);
        let query = deleted::query(start, end);
        let mut ids = Vec::new();
        for object in objects {
            let path = Self::data_path(&format!("sobjects/{object}/deleted/"));
            let body = self.client.get(&path, &query, &[], &self.settings.retry).await?;
            ids.extend(deleted::deleted_ids(&body, since)?);
        }
        Ok(Some(ids))
    }

    async fn find_similar(&self, record: &ExternalRecord) -> Result<Vec<ExternalRecord>, ConnectorError> {
        write::find_similar(self, record).await
    }

    /// The organisation id (read once) then `:` and the secret, the URL token of the
    /// connection's Outbound Messages ([`webhook::webhook_secret`]).
    async fn webhook_proof(&self, secret: &[u8]) -> Result<Vec<u8>, ConnectorError> {
        let org = self
            .org_id
            .get_or_try_init(|| async {
                let body = self.query(CHECK_QUERY, None).await?;
                serde_json::from_slice::<QueryPage>(&body)
                    .ok()
                    .and_then(|p| {
                        p.records.first().and_then(|r| r.get("Id")).and_then(|v| v.as_str()).map(str::to_string)
                    })
                    .ok_or_else(|| {
                        ConnectorError::new(
                            System::Salesforce,
                            ErrorKind::Invalid,
                            "the org answered no Organization id",
                        )
                    })
            })
            .await?;
        Ok(webhook::webhook_secret(org, Some(&String::from_utf8_lossy(secret))))
    }

    async fn create(&self, record: &ExternalRecord) -> Result<Written, ConnectorError> {
        write::create(self, record).await
    }

    fn create_batch(&self) -> usize {
        write::COLLECTION_MAX
    }

    async fn create_many(&self, records: &[ExternalRecord]) -> Vec<Result<Written, ConnectorError>> {
        write::create_many(self, records).await
    }

    async fn update(&self, record: &ExternalRecord, fields: &[&str]) -> Result<Written, ConnectorError> {
        write::update(self, record, fields).await
    }

    async fn query_objects(&self, query: &ObjectQuery) -> Result<Vec<ObjectRow>, ConnectorError> {
        objects::query(self, query).await
    }

    async fn create_object(&self, object: &str, fields: &ObjectRow) -> Result<Written, ConnectorError> {
        objects::create(self, object, fields).await
    }

    async fn update_object(&self, object: &str, id: &str, fields: &ObjectRow) -> Result<Written, ConnectorError> {
        objects::update(self, object, id, fields).await
    }

    async fn delete(&self, kind: RecordKind, id: &str) -> Result<(), ConnectorError> {
        write::delete(self, kind, id).await
    }
}

/// The standard key prefixes (an id's first three characters) of the objects whose records
/// share a stage: activities are Tasks (`00T`) or Events (`00U`).
pub const KEY_PREFIXES: &[(&str, &str)] = &[("Task", "00T"), ("Event", "00U")];

/// The key prefix of `object`, where one is needed to tell its ids apart.
pub fn key_prefix(object: &str) -> Option<&'static str> {
    KEY_PREFIXES.iter().find(|(o, _)| *o == object).map(|(_, p)| *p)
}

/// Whether `id` can be a Salesforce record id: 15 (case-sensitive) or 18 (case-safe)
/// ASCII letters and digits (salesforce-api.md 2.4: 18 in answers, 15 accepted on input).
pub fn is_salesforce_id(id: &str) -> bool {
    matches!(id.len(), 15 | 18) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_domain::secret::SecretString;

    fn creds(field: Option<&str>) -> SalesforceCredentials {
        SalesforceCredentials {
            login_url: "https://login.salesforce.com".into(),
            client_id: "3MVGapp".into(),
            client_secret: SecretString::new("secret-value"),
            refresh_token: None,
            contact_status_field: field.map(str::to_string),
        }
    }

    #[test]
    fn the_contact_status_field_defaults_and_must_be_a_field_name() {
        let c = SalesforceConnector::new(reqwest::Client::new(), Settings::default(), &creds(None)).unwrap();
        assert_eq!(c.contact_status_field(), "Contact_Status__c");
        let c =
            SalesforceConnector::new(reqwest::Client::new(), Settings::default(), &creds(Some("Stage__c"))).unwrap();
        assert!(c.fields_of("Contact").contains(&"Stage__c"));
        let err = SalesforceConnector::new(reqwest::Client::new(), Settings::default(), &creds(Some("X, Password")))
            .err()
            .unwrap();
        assert_eq!(err.kind, ErrorKind::Invalid);
    }

    #[test]
    fn a_login_url_that_is_not_a_host_is_refused_when_connecting() {
        let mut c = creds(None);
        c.login_url = "not a host".into();
        let err = connect(reqwest::Client::new(), Settings::default(), &c).err().unwrap();
        assert_eq!(err.kind, ErrorKind::UnknownAccount);
    }
}
