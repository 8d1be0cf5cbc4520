//! The ConnectWise PSA connector (psa-apis.md section 1): credential check, option lists
//! and paged import reads over REST 3.0, built from the files beside this one.

pub mod auth;
pub mod client;
pub mod describe;
pub mod error;
pub mod mapping;
pub mod models;
pub mod pagination;
pub mod registration;
pub mod webhook;
pub mod write;

use std::collections::HashSet;

use async_trait::async_trait;
use futures::StreamExt as _;
use tandem_domain::external::{AccountInfo, Choice, Cursor, ExternalRecord, NO_TYPE, OptionList, Page};
use tandem_domain::ports::{Connector, ConnectorError, ErrorKind, Written, bad_id};
use tandem_domain::secret::ConnectWiseCredentials;
use tandem_domain::{RecordKind, Stage, System};
use tokio::sync::OnceCell;

use self::client::Client;
use self::mapping::{Lookups, NameField};
use self::models::{Forecast, ForecastItem, SetupEntry, SystemInfo};
use crate::http::{MAX_PAGE_SIZE, Settings};
use crate::read;

pub use self::mapping::{parse_page, parse_page_with};

/// The list endpoint of each import stage (psa-apis.md 1.6, S1/S2 endpoint names).
pub fn stage_path(stage: Stage) -> &'static str {
    match stage {
        Stage::Users => "/system/members",
        Stage::Companies => "/company/companies",
        Stage::Contacts => "/company/contacts",
        Stage::Solutions => "/procurement/catalog",
        Stage::Activities => "/sales/activities",
        Stage::Opportunities => "/sales/opportunities",
    }
}

/// The cheap authenticated call of the credential check (psa-apis.md 1.2).
pub const SYSTEM_INFO_PATH: &str = "/system/info";
/// Company statuses, whose `inactiveFlag` makes a company inactive (psa-apis.md 1.6, Company).
pub const COMPANY_STATUSES_PATH: &str = "/company/companies/statuses";
/// Activity statuses, whose `closedFlag` makes an activity done (psa-apis.md 1.6, Activity; S2 `ActivityStatus`).
pub const ACTIVITY_STATUSES_PATH: &str = "/sales/activities/statuses";

/// An opportunity's forecast, which holds its value (psa-apis.md 1.6, Opportunity).
pub fn forecast_path(opportunity_id: &str) -> String {
    format!("/sales/opportunities/{opportunity_id}/forecast")
}

/// How many forecasts of one page are read at once.
pub const FORECAST_CONCURRENCY: usize = 8;

/// Attempts the credential check makes at most: one retry, so a user is not kept waiting,
/// yet one 429 is honoured.
pub const CHECK_ATTEMPTS: u32 = 2;

/// The billing options of catalog items: a fixed enum, not a setup list (psa-apis.md 1.6,
/// CatalogItem `billableOption`).
pub const BILLING_OPTIONS: &[&str] = &["Billable", "DoNotBill", "NoCharge", "NoDefault"];

/// The name shown for the synthetic "no type" choice.
pub const NO_TYPE_NAME: &str = "(no type)";

/// A safety stop for reading a whole setup list (1000 per page).
const MAX_SETUP_PAGES: u32 = 100;

/// Where an option list comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionSource {
    /// A setup-list endpoint, the field naming its entries, and whether to add [`NO_TYPE`].
    Endpoint { path: &'static str, name: NameField, no_type: bool },
    /// A fixed list (id = name).
    Fixed(&'static [&'static str]),
}

/// The source of each option list (psa-apis.md 1.6 setup endpoints).
pub fn option_source(list: OptionList) -> OptionSource {
    use OptionSource::{Endpoint, Fixed};
    match list {
        OptionList::Roles => Endpoint { path: "/system/securityroles", name: NameField::Name, no_type: false },
        OptionList::CompanyTypes => Endpoint { path: "/company/companies/types", name: NameField::Name, no_type: true },
        // Contact types are named by `description` (S2 `ContactType`).
        OptionList::ContactTypes => {
            Endpoint { path: "/company/contacts/types", name: NameField::Description, no_type: true }
        }
        OptionList::CatalogTypes => Endpoint { path: "/procurement/types", name: NameField::Name, no_type: false },
        OptionList::CatalogCategories => {
            Endpoint { path: "/procurement/categories", name: NameField::Name, no_type: false }
        }
        OptionList::BillingOptions => Fixed(BILLING_OPTIONS),
        OptionList::ActivityTypes => {
            Endpoint { path: "/sales/activities/types", name: NameField::Name, no_type: false }
        }
        OptionList::OpportunityStatuses => {
            Endpoint { path: "/sales/opportunities/statuses", name: NameField::Name, no_type: false }
        }
    }
}

/// One ConnectWise connection. `Debug` never shows the private key.
#[derive(Debug)]
pub struct ConnectWiseConnector {
    client: Client,
    settings: Settings,
    inactive_company_statuses: OnceCell<HashSet<i64>>,
    closed_activity_statuses: OnceCell<HashSet<i64>>,
    /// Callback signing keys by `key_url`, kept while the connector lives (it is reused
    /// for a while, see [`crate::Connectors`]): a burst of callbacks fetches each key once.
    signing_keys: std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>,
}

impl ConnectWiseConnector {
    /// A connector over a shared reqwest client (no network call yet).
    pub fn new(
        http: reqwest::Client,
        settings: Settings,
        creds: &ConnectWiseCredentials,
    ) -> Result<Self, ConnectorError> {
        Ok(Self {
            client: Client::new(http, &settings, creds)?,
            settings,
            inactive_company_statuses: OnceCell::new(),
            closed_activity_statuses: OnceCell::new(),
            signing_keys: Default::default(),
        })
    }

    /// The underlying client (its API root once discovered).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Every entry of a setup list, page after page (pageSize 1000, `orderBy=id asc`).
    pub async fn setup_list(&self, path: &str) -> Result<Vec<SetupEntry>, ConnectorError> {
        let mut entries = Vec::new();
        let mut page = 1;
        loop {
            let query = pagination::list_query(page, MAX_PAGE_SIZE, None);
            let answer = self.client.get(path, &query, &self.settings.retry).await?;
            let batch: Vec<SetupEntry> = serde_json::from_slice(&answer.body)
                .map_err(|e| invalid(format!("ConnectWise answered {path} with entries we cannot read: {e}")))?;
            entries.extend(batch);
            match next_page(answer.link.as_deref(), page, path)? {
                Some(next) if next <= MAX_SETUP_PAGES => page = next,
                Some(_) => return Err(invalid(format!("{path} has more than {MAX_SETUP_PAGES} pages"))),
                None => return Ok(entries),
            }
        }
    }

    /// The setup facts `stage`'s mapping needs, each loaded once per connector.
    async fn lookups(&self, stage: Stage) -> Result<Lookups, ConnectorError> {
        let mut lookups = Lookups::default();
        match stage {
            Stage::Companies => {
                lookups.inactive_company_statuses = self
                    .inactive_company_statuses
                    .get_or_try_init(|| self.ids_where(COMPANY_STATUSES_PATH, |s| s.inactive_flag))
                    .await?
                    .clone();
            }
            Stage::Activities => {
                lookups.closed_activity_statuses = self
                    .closed_activity_statuses
                    .get_or_try_init(|| self.ids_where(ACTIVITY_STATUSES_PATH, |s| s.closed_flag))
                    .await?
                    .clone();
            }
            Stage::Users | Stage::Contacts | Stage::Solutions | Stage::Opportunities => {}
        }
        Ok(lookups)
    }

    async fn ids_where(&self, path: &str, keep: fn(&SetupEntry) -> bool) -> Result<HashSet<i64>, ConnectorError> {
        Ok(self.setup_list(path).await?.iter().filter(|e| keep(e)).map(|e| e.id).collect())
    }

    /// One opportunity's forecast, with retry. The body is documented as a `Forecast` object
    /// (S2); a bare array of items is accepted too (UNCONFIRMED shape, tolerated here only).
    pub async fn forecast(&self, opportunity_id: &str) -> Result<Forecast, ConnectorError> {
        let path = forecast_path(opportunity_id);
        let answer = self.client.get(&path, &[], &self.settings.retry).await?;
        serde_json::from_slice::<Forecast>(&answer.body)
            .or_else(|e| {
                serde_json::from_slice::<Vec<ForecastItem>>(&answer.body)
                    .map(|forecast_items| Forecast { id: None, forecast_items })
                    .map_err(|_| e)
            })
            .map_err(|e| invalid(format!("ConnectWise answered {path} with a forecast we cannot read: {e}")))
    }

    /// Adds value and line items to the page's opportunities, [`FORECAST_CONCURRENCY`] at a
    /// time. A non-retryable failure leaves that opportunity without value (logged); a
    /// retryable one that outlived its retries fails the page, which is then redelivered.
    async fn add_forecasts(&self, records: &mut [ExternalRecord]) -> Result<(), ConnectorError> {
        let wanted: Vec<(usize, String)> = records
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match r {
                ExternalRecord::Opportunity(o) => Some((i, o.id.clone())),
                _ => None,
            })
            .collect();
        let mut results = futures::stream::iter(wanted)
            .map(|(i, id)| async move {
                let result = self.forecast(&id).await;
                (i, id, result)
            })
            .buffered(FORECAST_CONCURRENCY);
        while let Some((i, id, result)) = results.next().await {
            match result {
                Ok(forecast) => {
                    if let Some(ExternalRecord::Opportunity(o)) = records.get_mut(i) {
                        mapping::apply_forecast(o, &forecast);
                    }
                }
                Err(e) if e.retryable => return Err(e),
                Err(e) => {
                    tracing::warn!(opportunity = %id, error = %e, "ConnectWise forecast unreadable; opportunity comes in without value");
                }
            }
        }
        Ok(())
    }
}

/// The next page of a list answer, refusing a `Link` that does not move forward.
fn next_page(link: Option<&str>, page: u32, path: &str) -> Result<Option<u32>, ConnectorError> {
    let Some(link) = link else { return Ok(None) };
    match pagination::next_page(link) {
        Ok(Some(next)) if next <= page => {
            Err(invalid(format!("ConnectWise's Link header for {path} page {page} points back to page {next}")))
        }
        Ok(next) => Ok(next),
        Err(reason) => Err(invalid(format!("ConnectWise's Link header for {path}: {reason}"))),
    }
}

/// The error code of ConnectWise's 404 for a path it does not serve, as opposed to
/// `NotFound` for a missing record (psa-apis.md 1.3).
pub const UNKNOWN_ENDPOINT_CODE: &str = "ConnectWiseApi";

/// The longest member identifier accepted. UNCONFIRMED: ConnectWise's "Member ID" is
/// short (15 characters in the UI); 30 leaves room without letting anything long through.
pub const MAX_MEMBER_IDENTIFIER: usize = 30;

/// A member identifier safe inside a `conditions` string: a letter or digit first, then
/// letters, digits, `.`, `_`, `-` or `@`, at most [`MAX_MEMBER_IDENTIFIER`]. UNCONFIRMED
/// which characters ConnectWise allows; no quote or backslash can ever pass.
pub fn member_identifier(kind: RecordKind, id: &str) -> Result<&str, ConnectorError> {
    let ok = id.len() <= MAX_MEMBER_IDENTIFIER
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok { Ok(id) } else { Err(bad_id(System::ConnectWise, kind, id, "a member identifier")) }
}

fn invalid(message: String) -> ConnectorError {
    ConnectorError::new(System::ConnectWise, ErrorKind::Invalid, message)
}

#[async_trait]
impl Connector for ConnectWiseConnector {
    fn system(&self) -> System {
        System::ConnectWise
    }

    /// Discovers the API root (UnknownAccount for an unknown company), then `GET
    /// /system/info` with the keys (psa-apis.md 1.2). At most [`CHECK_ATTEMPTS`] attempts.
    async fn check(&self) -> Result<AccountInfo, ConnectorError> {
        let policy = self.settings.retry.capped(CHECK_ATTEMPTS);
        let api_url = self.client.api_root(&policy).await?.to_string();
        let answer = self.client.get(SYSTEM_INFO_PATH, &[], &policy).await?;
        let version = match serde_json::from_slice::<SystemInfo>(&answer.body) {
            Ok(info) => info.version,
            Err(e) => {
                tracing::warn!(error = %e, "ConnectWise /system/info body unreadable; version unknown");
                None
            }
        };
        Ok(AccountInfo { version, api_url })
    }

    async fn options(&self, list: OptionList) -> Result<Vec<Choice>, ConnectorError> {
        match option_source(list) {
            OptionSource::Fixed(values) => {
                Ok(values.iter().map(|v| Choice { id: (*v).to_string(), name: (*v).to_string() }).collect())
            }
            OptionSource::Endpoint { path, name, no_type } => {
                let mut choices: Vec<Choice> =
                    self.setup_list(path).await?.iter().map(|e| mapping::choice(e, name)).collect();
                if no_type {
                    choices.push(Choice { id: NO_TYPE.to_string(), name: NO_TYPE_NAME.to_string() });
                }
                Ok(choices)
            }
        }
    }

    /// One page: `page` from the cursor (empty = 1), `pageSize`, `orderBy=id asc`, and the
    /// `since` condition (psa-apis.md 1.4); the next cursor from the `Link` header (1.5).
    async fn list(&self, kind: RecordKind, cursor: &Cursor) -> Result<Page, ConnectorError> {
        let Some(stage) = read::stage_in(System::ConnectWise, kind) else {
            return Ok(Page { records: Vec::new(), next: None });
        };
        let path = stage_path(stage);
        let page = pagination::page_of(&cursor.position).ok_or_else(|| {
            invalid(format!("cursor position {:?} is not a ConnectWise page number", cursor.position))
        })?;
        let query = pagination::list_query(page, self.settings.effective_page_size(), cursor.since);
        let lookups = self.lookups(stage).await?;
        let answer = self.client.get(path, &query, &self.settings.retry).await?;
        let next = next_page(answer.link.as_deref(), page, path)?;
        let mut records = mapping::parse_page_with(stage, &answer.body, &lookups)?;
        if stage == Stage::Opportunities {
            self.add_forecasts(&mut records).await?;
        }
        Ok(Page { records, next: next.map(|n| Cursor { position: n.to_string(), since: cursor.since }) })
    }

    /// `GET {list endpoint}/{id}` (psa-apis.md 1.6: every collection has GET `/{id}`; a
    /// missing record is 404, psa-apis.md 1.3), mapped with the same setup facts as a list page, and an
    /// opportunity's value from its forecast as the list reads it.
    /// A member (whose external id is its `identifier`, see [`mapping::user`]) is read
    /// from the members list with `conditions=identifier="…"`, as REST 3.0 has no GET by
    /// identifier (psa-apis.md 1.4 conditions, 1.6 Member).
    async fn get(&self, kind: RecordKind, id: &str) -> Result<Option<ExternalRecord>, ConnectorError> {
        let stage = read::stage_to_get(System::ConnectWise, kind)?;
        if stage == Stage::Users {
            let identifier = member_identifier(kind, id)?;
            let query = [("conditions", format!("identifier = \"{identifier}\"")), ("pageSize", "2".to_string())];
            let path = stage_path(stage);
            let answer = self.client.get(path, &query, &self.settings.retry).await?;
            return read::only(System::ConnectWise, mapping::parse_page(stage, &answer.body)?);
        }
        let id = read::numeric_id(System::ConnectWise, kind, id)?;
        let path = format!("{}/{id}", stage_path(stage));
        let lookups = self.lookups(stage).await?;
        let answer = match self.client.get(&path, &[], &self.settings.retry).await {
            // "The endpoint does not exist" is our mistake, not a missing record.
            Err(e) if e.code.as_deref() == Some(UNKNOWN_ENDPOINT_CODE) => return Err(e),
            other => other,
        };
        let Some(answer) = read::found(answer)? else {
            return Ok(None);
        };
        let mut records = mapping::parse_page_with(stage, &read::as_list(&answer.body), &lookups)?;
        if stage == Stage::Opportunities {
            self.add_forecasts(&mut records).await?;
        }
        read::only(System::ConnectWise, records)
    }

    async fn find_similar(&self, record: &ExternalRecord) -> Result<Vec<ExternalRecord>, ConnectorError> {
        write::find_similar(self, record).await
    }

    async fn create(&self, record: &ExternalRecord) -> Result<Written, ConnectorError> {
        write::create(self, record).await
    }

    async fn update(&self, record: &ExternalRecord, fields: &[&str]) -> Result<Written, ConnectorError> {
        write::update(self, record, fields).await
    }

    async fn delete(&self, kind: RecordKind, id: &str) -> Result<(), ConnectorError> {
        write::delete(self, kind, id).await
    }

    async fn register_webhook(&self, url: &str, _secret: &str) -> Result<Option<String>, ConnectorError> {
        registration::register(self, url).await
    }

    async fn unregister_webhook(&self, url: &str) -> Result<(), ConnectorError> {
        registration::unregister(self, url).await
    }

    async fn webhook_key(&self, key_url: &str) -> Result<Vec<u8>, ConnectorError> {
        let cached = self.signing_keys.lock().unwrap_or_else(|e| e.into_inner()).get(key_url).cloned();
        if let Some(key) = cached {
            return Ok(key);
        }
        let key = self.client.signing_key(key_url, &self.settings.retry).await?;
        let mut keys = self.signing_keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.len() >= 1000 {
            keys.clear();
        }
        keys.insert(key_url.to_string(), key.clone());
        Ok(key)
    }
}
