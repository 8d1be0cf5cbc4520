//! The Syncro (SyncroMSP) connector (psa-apis.md section 3): credential check, option lists,
//! paged import reads, writes (`write.rs`) over `/api/v1`, and the webhook reader
//! (`webhook.rs`), built from the files beside this one.

pub mod auth;
pub mod client;
pub mod describe;
pub mod error;
pub mod mapping;
pub mod models;
pub mod pagination;
pub mod webhook;
pub mod write;

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt as _;
use tandem_domain::external::{AccountInfo, Choice, Cursor, ExternalRecord, NO_TYPE, OptionList, Page, Unreadable};
use tandem_domain::ledger::ExtVersion;
use tandem_domain::ports::{Connector, ConnectorError, ErrorKind, Written};
use tandem_domain::secret::SyncroCredentials;
use tandem_domain::{RecordKind, Stage, System, Timestamp};

use self::client::Client;
use self::models::{Me, UserList};
use crate::http::{RetryPolicy, Settings};
use crate::read;

pub use self::mapping::{parse_list, parse_page};

/// The endpoint of the credential check (psa-apis.md 3.2).
pub const ME_PATH: &str = "/me";
/// The users list (`[[id, name], ...]`, not paged).
pub const USERS_PATH: &str = "/users";

/// A user's detail, which holds the email and group the list lacks.
pub fn user_path(id: i64) -> String {
    format!("/users/{id}")
}

/// The list endpoint of each import stage Syncro has (psa-apis.md 3.4); Syncro has no
/// catalog or activity import.
pub fn stage_path(stage: Stage) -> Result<&'static str, ConnectorError> {
    match stage {
        Stage::Users => Ok(USERS_PATH),
        Stage::Companies => Ok("/customers"),
        Stage::Contacts => Ok("/contacts"),
        Stage::Opportunities => Ok("/leads"),
        Stage::Solutions | Stage::Activities => Err(invalid(format!("Syncro has no {stage} stage"))),
    }
}

/// The key a single-record answer wraps its record in (psa-apis.md 3.3: customers and
/// leads are wrapped, contacts are not); `None`: the body is the record.
pub fn single_wrapper(stage: Stage) -> Option<&'static str> {
    match stage {
        Stage::Users => Some("user"),
        Stage::Companies => Some("customer"),
        Stage::Opportunities => Some("lead"),
        Stage::Contacts | Stage::Solutions | Stage::Activities => None,
    }
}

/// Extra list parameters of each stage: companies include disabled customers, which the
/// import needs to see to skip them (psa-apis.md 3.8).
pub fn stage_filters(stage: Stage) -> &'static [(&'static str, &'static str)] {
    match stage {
        Stage::Companies => &[("include_disabled", "true")],
        _ => &[],
    }
}

/// Customers changed since a time are read newest first (`sort`, the one list Syncro
/// orders on request, psa-apis.md 3.8 / Y1), and the read stops at the first page that
/// reaches back before it: a poll costs the changed customers' pages plus one, not every
/// page. Contacts and leads have neither a filter nor an order to ask for, so their polls
/// read every page (one request per 25 records) and keep the changed ones.
pub const CHANGED_CUSTOMERS_FIRST: (&str, &str) = ("sort", "updated_at DESC");

/// How many user details are read at once (the whole account shares 180 requests a minute).
pub const USER_CONCURRENCY: usize = 4;

/// Attempts the credential check makes at most: one retry, so a user is not kept waiting,
/// yet one 429 is honoured.
pub const CHECK_ATTEMPTS: u32 = 2;

/// The name shown for the synthetic "no type" choice (Syncro has no company or contact types).
pub const NO_TYPE_NAME: &str = "(no type)";

/// The lead statuses (psa-apis.md 3.4, Lead): a fixed list, not a setup endpoint.
pub const LEAD_STATUSES: &[&str] = &[
    "New",
    "Lead",
    "First Contact",
    "Opportunity",
    "Prospect",
    "Waiting on Client",
    "In Negotiation",
    "Pending",
    "Won",
    "Lost",
];

fn invalid(message: String) -> ConnectorError {
    ConnectorError::new(System::Syncro, ErrorKind::Invalid, message)
}

/// A connector for these credentials (no network call yet).
pub fn connect(
    client: reqwest::Client,
    settings: Settings,
    creds: &SyncroCredentials,
) -> Result<Arc<dyn Connector>, ConnectorError> {
    Ok(Arc::new(SyncroConnector::new(client, settings, creds)?))
}

/// Whether a record passes the `since` filter: kept when its `updated_at` is at or after
/// `since`, or cannot be read (better read twice than never). Syncro cannot filter
/// customers, contacts or leads by update time itself (psa-apis.md 3.3).
pub fn updated_since(record: &ExternalRecord, since: Timestamp) -> bool {
    record.version().and_then(ExtVersion::at).is_none_or(|at| at >= since)
}

/// One Syncro connection. `Debug` never shows the token.
#[derive(Debug)]
pub struct SyncroConnector {
    client: Client,
    settings: Settings,
}

impl SyncroConnector {
    /// A connector over a shared reqwest client (no network call yet).
    pub fn new(http: reqwest::Client, settings: Settings, creds: &SyncroCredentials) -> Result<Self, ConnectorError> {
        Ok(Self { client: Client::new(http, &settings, creds)?, settings })
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Every user id, ascending (`GET /users`).
    pub async fn user_ids(&self) -> Result<Vec<i64>, ConnectorError> {
        let answer = self.client.get(USERS_PATH, &[], &self.settings.retry).await?;
        let list: UserList = serde_json::from_slice(&answer.body)
            .map_err(|e| invalid(format!("Syncro answered {USERS_PATH} with a list we cannot read: {e}")))?;
        let mut ids: Vec<i64> = list.users.into_iter().map(|(id, _)| id).collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// The details of `ids`, [`USER_CONCURRENCY`] at a time, in order. A user refused for
    /// good is unreadable; a retryable failure that outlived its retries fails the call.
    pub async fn users(&self, ids: &[i64], policy: &RetryPolicy) -> Result<Vec<ExternalRecord>, ConnectorError> {
        let mut results = futures::stream::iter(ids.iter().copied())
            .map(|id| async move { (id, self.client.get(&user_path(id), &[], policy).await) })
            .buffered(USER_CONCURRENCY);
        let mut records = Vec::with_capacity(ids.len());
        while let Some((id, result)) = results.next().await {
            match result {
                Ok(answer) => records.push(mapping::parse_user(&answer.body)?),
                Err(e) if e.retryable => return Err(e),
                Err(e) => {
                    records.push(ExternalRecord::Unreadable(Unreadable { id: Some(id.to_string()), reason: e.message }))
                }
            }
        }
        Ok(records)
    }
}

#[async_trait]
impl Connector for SyncroConnector {
    fn system(&self) -> System {
        System::Syncro
    }

    /// `GET /me` with the token (psa-apis.md 3.2). At most [`CHECK_ATTEMPTS`] attempts. A
    /// 404, or an answer that is not Syncro's JSON, means no account lives at that address
    /// (UnknownAccount); an unknown host is Unreachable, naming the host.
    async fn check(&self) -> Result<AccountInfo, ConnectorError> {
        let policy = self.settings.retry.capped(CHECK_ATTEMPTS);
        let root = self.client.root().to_string();
        let unknown = |why: &str| {
            ConnectorError::new(
                System::Syncro,
                ErrorKind::UnknownAccount,
                format!("no Syncro account answers at {root} ({why}); check the subdomain"),
            )
        };
        let answer = match self.client.get(ME_PATH, &[], &policy).await {
            Err(e) if e.status == Some(404) => return Err(unknown("/me answered 404 Not Found")),
            other => other?,
        };
        if serde_json::from_slice::<Me>(&answer.body).is_err() {
            return Err(unknown("/me did not answer Syncro's JSON"));
        }
        Ok(AccountInfo { version: None, api_url: root })
    }

    async fn options(&self, list: OptionList) -> Result<Vec<Choice>, ConnectorError> {
        match list {
            OptionList::Roles => {
                let ids = self.user_ids().await?;
                let groups: BTreeSet<String> = self
                    .users(&ids, &self.settings.retry)
                    .await?
                    .into_iter()
                    .filter_map(|r| match r {
                        ExternalRecord::User(u) => u.role,
                        _ => None,
                    })
                    .collect();
                Ok(groups.into_iter().map(|g| Choice { id: g.clone(), name: g }).collect())
            }
            OptionList::CompanyTypes | OptionList::ContactTypes => {
                Ok(vec![Choice { id: NO_TYPE.to_string(), name: NO_TYPE_NAME.to_string() }])
            }
            OptionList::OpportunityStatuses => {
                Ok(LEAD_STATUSES.iter().map(|s| Choice { id: (*s).to_string(), name: (*s).to_string() }).collect())
            }
            OptionList::CatalogTypes
            | OptionList::CatalogCategories
            | OptionList::BillingOptions
            | OptionList::ActivityTypes => Ok(Vec::new()),
        }
    }

    /// One page: `page` from the cursor (empty = 1); the next cursor from `meta.total_pages`
    /// (users: a client-side page of [`pagination::USERS_PER_PAGE`] details). With
    /// `cursor.since`, only records updated at or after it are kept (customers read newest
    /// first, see [`CHANGED_CUSTOMERS_FIRST`]).
    async fn list(&self, kind: RecordKind, cursor: &Cursor) -> Result<Page, ConnectorError> {
        let Some(stage) = read::stage_in(System::Syncro, kind) else {
            return Ok(Page { records: Vec::new(), next: None });
        };
        let path = stage_path(stage)?;
        let page = pagination::page_of(&cursor.position)
            .ok_or_else(|| invalid(format!("cursor position {:?} is not a Syncro page number", cursor.position)))?;
        let (mut records, next) = if stage == Stage::Users {
            let ids = self.user_ids().await?;
            let (slice, more) = pagination::users_slice(&ids, page);
            (self.users(slice, &self.settings.retry).await?, more.then_some(page + 1))
        } else {
            let newest_first = stage == Stage::Companies && cursor.since.is_some();
            let mut filters = stage_filters(stage).to_vec();
            if newest_first {
                filters.push(CHANGED_CUSTOMERS_FIRST);
            }
            let query = pagination::list_query(page, &filters);
            let answer = self.client.get(path, &query, &self.settings.retry).await?;
            let parsed = mapping::parse_list(stage, &answer.body)?;
            let mut next = pagination::next_page(parsed.meta.as_ref(), page);
            // Newest first: a page whose last record is older than `since` is the last
            // one with changes.
            if newest_first
                && let (Some(since), Some(last)) = (cursor.since, parsed.records.last())
                && !updated_since(last, since)
            {
                next = None;
            }
            (parsed.records, next)
        };
        if let Some(since) = cursor.since {
            records.retain(|r| updated_since(r, since));
        }
        Ok(Page { records, next: next.map(|n| Cursor { position: n.to_string(), since: cursor.since }) })
    }

    /// `GET /{plural}/{id}` (psa-apis.md 3.4: `/users/{id}`, `/customers/{id}`,
    /// `/contacts/{id}`, `/leads/{id}`), mapped by [`mapping::parse_one`] as a list page
    /// maps it (sample `customer_get.json`). A missing record is 404.
    async fn get(&self, kind: RecordKind, id: &str) -> Result<Option<ExternalRecord>, ConnectorError> {
        let stage = read::stage_to_get(System::Syncro, kind)?;
        let id = read::numeric_id(System::Syncro, kind, id)?;
        let plural = stage_path(stage)?;
        let path = format!("{plural}/{id}");
        let Some(answer) = read::found(self.client.get(&path, &[], &self.settings.retry).await)? else {
            return Ok(None);
        };
        if stage == Stage::Users {
            return Ok(Some(mapping::parse_user(&answer.body)?));
        }
        mapping::parse_one(stage, &answer.body)
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
}
