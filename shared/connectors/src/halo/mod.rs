//! The HaloPSA connector (psa-apis.md section 2): OAuth2 client-credentials check, live
//! option lists and paged import reads over `/api`, built from the files beside this one.

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

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt as _;
use tandem_domain::external::{AccountInfo, Choice, Cursor, ExternalRecord, NO_TYPE, OptionList, Page};
use tandem_domain::ports::{Connector, ConnectorError, ErrorKind, Written, bad_id, no_such_kind};
use tandem_domain::secret::HaloCredentials;
use tandem_domain::{RecordKind, Stage, System};
use tokio::sync::Mutex;

use self::client::Client;
use self::mapping::{CRM_NOTE_NAME, CRM_NOTE_TYPE, TicketContacts};
use self::models::{Agent, NamedEntry, OutcomeEntry, RoleEntry, TicketList, non_empty};
use self::pagination::{MAX_PAGE_SIZE, Phase};
use crate::http::Settings;
use crate::read;

pub use self::mapping::{parse_list, parse_page};

/// The cheap authenticated call of the credential check (psa-apis.md 2.2).
pub const AGENT_ME_PATH: &str = "/Agent/me";
/// Agents with their roles, disabled ones too (psa-apis.md 2.3/2.4: `includeroles`,
/// `includedisabled`); one bare array, not paged [UNCONFIRMED].
pub const AGENTS_PATH: &str = "/Agent";
/// Clients (psa-apis.md 2.4).
pub const CLIENTS_PATH: &str = "/Client";
/// Users, i.e. contacts (psa-apis.md 2.4).
pub const USERS_PATH: &str = "/Users";
/// Opportunities (psa-apis.md 2.4).
pub const OPPORTUNITIES_PATH: &str = "/Opportunities";
/// Actions on tickets (psa-apis.md 2.4). UNCONFIRMED: listing every action without
/// `ticket_id`, and paging it like the other lists (the spec declares no paging here).
pub const ACTIONS_PATH: &str = "/Actions";
/// Client-level CRM notes (psa-apis.md 2.4). UNCONFIRMED: paging like the other lists.
pub const CRM_NOTES_PATH: &str = "/CRMNote";
/// Agent roles (H1 `/Roles`).
pub const ROLES_PATH: &str = "/Roles";
/// Lookup tables (H1 `/Lookup`); client types are one of them.
pub const LOOKUP_PATH: &str = "/Lookup";
/// The lookup id of customer (client) types. UNCONFIRMED; the simulator uses the same.
pub const CUSTOMER_TYPE_LOOKUP_ID: i64 = 33;
/// Ticket statuses (H1 `/Status`). UNCONFIRMED: a real tenant mixes ticket and
/// opportunity statuses here; every status is offered.
pub const STATUS_PATH: &str = "/Status";
/// Action outcomes (H1 `/Outcome`): the kinds of Halo activities.
pub const OUTCOME_PATH: &str = "/Outcome";

/// Attempts the credential check makes at most: one retry, so a user is not kept waiting.
pub const CHECK_ATTEMPTS: u32 = 2;
/// The name shown for the synthetic "no type" choice (the same text as the other systems).
pub const NO_TYPE_NAME: &str = "(no type)";
/// How many opportunities are read at once to find the contacts of a page of actions.
pub const TICKET_CONCURRENCY: usize = 8;
/// How many tickets one `ticketids` read asks for (kept well inside a URL's length).
pub const TICKETS_PER_READ: usize = 50;

/// A connector for these credentials (no network call yet).
pub fn connect(
    client: reqwest::Client,
    settings: Settings,
    creds: &HaloCredentials,
) -> Result<Arc<dyn Connector>, ConnectorError> {
    Ok(Arc::new(HaloConnector::new(client, settings, creds)?))
}

/// One HaloPSA connection. `Debug` never shows the secret or a token.
#[derive(Debug)]
pub struct HaloConnector {
    client: Client,
    settings: Settings,
    tickets: Mutex<TicketContacts>,
}

impl HaloConnector {
    /// A connector over a shared reqwest client (no network call yet).
    pub fn new(http: reqwest::Client, settings: Settings, creds: &HaloCredentials) -> Result<Self, ConnectorError> {
        Ok(Self { client: Client::new(http, &settings, creds)?, settings, tickets: Mutex::new(HashMap::new()) })
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn page_size(&self) -> u32 {
        self.settings.effective_page_size().min(MAX_PAGE_SIZE)
    }

    async fn entries<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<T>, ConnectorError> {
        let body = self.client.get(path, query, &self.settings.retry).await?;
        serde_json::from_slice(&body)
            .map_err(|e| invalid(format!("HaloPSA answered {path} with entries we cannot read: {e}")))
    }

    /// Contact and client of every ticket in `ids` not yet known, read [`TICKETS_PER_READ`]
    /// at a time with the list's `ticketids` filter (H1 swagger: "returns only the tickets
    /// specified"; UNCONFIRMED on a live tenant beyond the swagger). A ticket the answer
    /// leaves out (deleted, or gone) has no contact.
    async fn learn_tickets(&self, ids: Vec<i64>) -> Result<(), ConnectorError> {
        let unknown: Vec<i64> = {
            let known = self.tickets.lock().await;
            let mut v: Vec<i64> = ids.into_iter().filter(|id| !known.contains_key(id)).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let mut answers = futures::stream::iter(unknown.chunks(TICKETS_PER_READ).map(<[i64]>::to_vec))
            .map(|chunk| async move {
                let ids = chunk.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
                let query = [("ticketids", ids), ("count", chunk.len().to_string())];
                (chunk, self.client.get(OPPORTUNITIES_PATH, &query, &self.settings.retry).await)
            })
            .buffered(TICKET_CONCURRENCY);
        while let Some((chunk, result)) = answers.next().await {
            let body = result?;
            let listed: TicketList = serde_json::from_slice(&body).map_err(|e| {
                invalid(format!("HaloPSA answered {OPPORTUNITIES_PATH} with tickets we cannot read: {e}"))
            })?;
            let mut known = self.tickets.lock().await;
            for id in chunk {
                known.insert(id, (None, None));
            }
            for o in listed.tickets {
                known.insert(o.id, (o.user_id.filter(|u| *u > 0), o.client_id.filter(|c| *c > 0)));
            }
        }
        Ok(())
    }

    async fn fetch_activities(&self, cursor: &Cursor) -> Result<Page, ConnectorError> {
        let (phase, page) = pagination::position(&cursor.position).ok_or_else(|| {
            invalid(format!("cursor position {:?} is not a HaloPSA activities position", cursor.position))
        })?;
        let size = self.page_size();
        let query = pagination::page_query(page, size, cursor.since);
        let (path, actions) = match phase {
            Phase::Notes => (CRM_NOTES_PATH, false),
            Phase::Actions => (ACTIONS_PATH, true),
        };
        let body = self.client.get(path, &query, &self.settings.retry).await?;
        let parsed = if actions {
            let ids = ticket_ids(&body);
            self.learn_tickets(ids).await?;
            let tickets = self.tickets.lock().await.clone();
            parse_list(Stage::Activities, &body, true, &tickets)?
        } else {
            parse_list(Stage::Activities, &body, false, &TicketContacts::new())?
        };
        let next = if pagination::has_next(page, size, parsed.rows, parsed.record_count) {
            Some(pagination::position_text(phase, page + 1))
        } else if phase == Phase::Notes {
            Some(pagination::position_text(Phase::Actions, 1))
        } else {
            None
        };
        Ok(Page { records: parsed.records, next: next.map(|position| Cursor { position, since: cursor.since }) })
    }
}

/// The `ticket_id`s of an actions answer.
fn ticket_ids(body: &[u8]) -> Vec<i64> {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let rows = value.get("actions").or(Some(&value)).and_then(|v| v.as_array()).cloned().unwrap_or_default();
    rows.iter().filter_map(|a| a.get("ticket_id").and_then(serde_json::Value::as_i64)).filter(|t| *t > 0).collect()
}

fn invalid(message: String) -> ConnectorError {
    ConnectorError::new(System::Halo, ErrorKind::Invalid, message)
}

/// The stage, resource and number of the record `id` of `kind` (`/Agent`, `/Client`,
/// `/Users`, `/Opportunities`; an activity by its id's source: `note-N` is `/CRMNote` N,
/// `action-N` is `/Actions` N). An id that cannot be one, or a kind Halo does not have, is
/// refused.
pub fn record_path(kind: RecordKind, id: &str) -> Result<(Stage, &'static str, i64), ConnectorError> {
    let stage = read::stage_to_get(System::Halo, kind)?;
    let number = |id: &str| read::numeric_id(System::Halo, kind, id);
    Ok(match stage {
        Stage::Activities => {
            let (prefix, n) = id
                .split_once('-')
                .filter(|(p, _)| matches!(*p, "note" | "action"))
                .ok_or_else(|| bad_id(System::Halo, kind, id, "note-N or action-N"))?;
            (stage, if prefix == "note" { CRM_NOTES_PATH } else { ACTIONS_PATH }, number(n)?)
        }
        Stage::Users => (stage, AGENTS_PATH, number(id)?),
        Stage::Companies => (stage, CLIENTS_PATH, number(id)?),
        Stage::Contacts => (stage, USERS_PATH, number(id)?),
        Stage::Opportunities => (stage, OPPORTUNITIES_PATH, number(id)?),
        Stage::Solutions => return Err(no_such_kind(System::Halo, kind)),
    })
}

/// Whether a single-record answer is flagged `"deleted": true` (tickets and opportunities,
/// psa-apis.md 2.8).
fn flagged_deleted(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .is_ok_and(|v| v.get("deleted").and_then(serde_json::Value::as_bool) == Some(true))
}

fn named(entries: Vec<NamedEntry>) -> Vec<Choice> {
    entries
        .into_iter()
        .map(|e| Choice {
            id: e.id.to_string(),
            name: non_empty(e.name.as_deref()).unwrap_or_else(|| e.id.to_string()),
        })
        .collect()
}

/// The role choices: id the role's id as text (a GUID; an integer from an older Halo), name
/// its name. A role without an id cannot be chosen by an agent and is left out.
fn roles(entries: Vec<RoleEntry>) -> Vec<Choice> {
    entries
        .into_iter()
        .filter_map(|e| {
            let id = e.id?;
            Some(Choice { name: non_empty(e.name.as_deref()).unwrap_or_else(|| id.clone()), id })
        })
        .collect()
}

fn no_type() -> Choice {
    Choice { id: NO_TYPE.to_string(), name: NO_TYPE_NAME.to_string() }
}

#[async_trait]
impl Connector for HaloConnector {
    fn system(&self) -> System {
        System::Halo
    }

    /// A token (bad secret: Unauthorized; unknown tenant: UnknownAccount; no answer:
    /// Unreachable), then `GET /api/Agent/me` (psa-apis.md 2.2). At most [`CHECK_ATTEMPTS`].
    async fn check(&self) -> Result<AccountInfo, ConnectorError> {
        let policy = self.settings.retry.capped(CHECK_ATTEMPTS);
        let body = self.client.get(AGENT_ME_PATH, &[], &policy).await?;
        if let Err(e) = serde_json::from_slice::<Agent>(&body) {
            tracing::warn!(error = %e, "HaloPSA /Agent/me body unreadable");
        }
        Ok(AccountInfo { version: None, api_url: self.client.api_root().to_string() })
    }

    async fn options(&self, list: OptionList) -> Result<Vec<Choice>, ConnectorError> {
        match list {
            OptionList::Roles => Ok(roles(self.entries(ROLES_PATH, &[]).await?)),
            OptionList::CompanyTypes => {
                let query = [("lookupid", CUSTOMER_TYPE_LOOKUP_ID.to_string())];
                let mut choices = named(self.entries(LOOKUP_PATH, &query).await?);
                choices.push(no_type());
                Ok(choices)
            }
            OptionList::ContactTypes => Ok(vec![no_type()]),
            OptionList::ActivityTypes => {
                let outcomes: Vec<OutcomeEntry> = self.entries(OUTCOME_PATH, &[]).await?;
                let mut choices: Vec<Choice> = outcomes
                    .into_iter()
                    .filter_map(|o| non_empty(o.outcome.as_deref()).or_else(|| non_empty(o.buttonname.as_deref())))
                    .map(|name| Choice { id: name.clone(), name })
                    .collect();
                choices.push(Choice { id: CRM_NOTE_TYPE.to_string(), name: CRM_NOTE_NAME.to_string() });
                Ok(choices)
            }
            OptionList::OpportunityStatuses => Ok(named(self.entries(STATUS_PATH, &[]).await?)),
            OptionList::CatalogTypes | OptionList::CatalogCategories | OptionList::BillingOptions => Ok(Vec::new()),
        }
    }

    /// One page: agents in one read; clients, users and opportunities paged with
    /// `lastupdatefromdate` from `cursor.since`; activities = CRM notes, then actions.
    async fn list(&self, kind: RecordKind, cursor: &Cursor) -> Result<Page, ConnectorError> {
        let Some(stage) = read::stage_in(System::Halo, kind) else {
            return Ok(Page { records: Vec::new(), next: None });
        };
        let (path, extra): (&str, &[(&str, &str)]) = match stage {
            Stage::Users => {
                let query = [("includeroles", "true".to_string()), ("includedisabled", "true".to_string())];
                let body = self.client.get(AGENTS_PATH, &query, &self.settings.retry).await?;
                return Ok(Page { records: parse_page(stage, &body)?, next: None });
            }
            Stage::Solutions => return Ok(Page { records: Vec::<ExternalRecord>::new(), next: None }),
            Stage::Activities => return self.fetch_activities(cursor).await,
            Stage::Companies => (CLIENTS_PATH, &[("includeinactive", "true")]),
            Stage::Contacts => (USERS_PATH, &[("includeinactive", "true")]),
            Stage::Opportunities => (OPPORTUNITIES_PATH, &[]),
        };
        let page = match pagination::position(&cursor.position) {
            Some((Phase::Notes, p)) => p,
            _ => return Err(invalid(format!("cursor position {:?} is not a HaloPSA page number", cursor.position))),
        };
        let size = self.page_size();
        let mut query = pagination::page_query(page, size, cursor.since);
        query.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        let body = self.client.get(path, &query, &self.settings.retry).await?;
        let parsed = parse_list(stage, &body, false, &TicketContacts::new())?;
        let next = pagination::has_next(page, size, parsed.rows, parsed.record_count)
            .then(|| Cursor { position: (page + 1).to_string(), since: cursor.since });
        Ok(Page { records: parsed.records, next })
    }

    /// `GET /api/{Resource}/{id}` (psa-apis.md 2.4: `/Agent/{id}` with `includeroles` as the
    /// list reads agents, `/Client/{id}`, `/Users/{id}`, `/Opportunities/{id}`; activities by
    /// their id's source: `note-N` is `/CRMNote/N`, `action-N` is `/Actions/N`, whose contact
    /// comes from its ticket as in the list). A missing record is taken to be 404:
    /// UNCONFIRMED, H1 declares only 200 for these paths (the simulator answers 404 with a
    /// `{message}` body, which is not relied on).
    ///
    /// An opportunity Halo flags `deleted` (a deleted ticket, psa-apis.md 2.8) is gone: `None`.
    async fn get(&self, kind: RecordKind, id: &str) -> Result<Option<ExternalRecord>, ConnectorError> {
        let (stage, path, number) = record_path(kind, id)?;
        let actions = path == ACTIONS_PATH;
        // H1 declares `includedetails` on `/Agent/{id}` but not `includeroles`; UNCONFIRMED
        // which one brings the roles the list gets with `includeroles`, so both are sent.
        let query = if stage == Stage::Users {
            vec![("includedetails", "true".to_string()), ("includeroles", "true".to_string())]
        } else {
            Vec::new()
        };
        let Some(body) = read::found(self.client.get(&format!("{path}/{number}"), &query, &self.settings.retry).await)?
        else {
            return Ok(None);
        };
        if stage == Stage::Opportunities && flagged_deleted(&body) {
            return Ok(None);
        }
        let rows = read::as_list(&body);
        let parsed = if actions {
            self.learn_tickets(ticket_ids(&rows)).await?;
            let tickets = self.tickets.lock().await.clone();
            parse_list(stage, &rows, true, &tickets)?
        } else {
            parse_list(stage, &rows, false, &TicketContacts::new())?
        };
        read::only(System::Halo, parsed.records)
    }

    async fn find_similar(&self, record: &ExternalRecord) -> Result<Vec<ExternalRecord>, ConnectorError> {
        write::find_similar(self, record).await
    }

    async fn register_webhook(&self, url: &str, secret: &str) -> Result<Option<String>, ConnectorError> {
        registration::register(self, url, secret).await
    }

    async fn unregister_webhook(&self, url: &str) -> Result<(), ConnectorError> {
        registration::unregister(self, url).await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_choices_take_the_guid_as_id_and_an_integer_from_an_older_halo_too() {
        let body = serde_json::json!([
            {"id": "5f0c8a2e-3b1d-4c6e-9a7f-1e2d3c4b5a69", "name": "Sales", "id_int": 2},
            {"id": 3, "name": "Marketing"},
            {"id": "0b9e2f4a-7c1d-4e8f-a2b3-c4d5e6f70812", "name": " "},
            {"id": null, "name": "No id"}
        ]);
        let entries: Vec<RoleEntry> = serde_json::from_value(body).unwrap();
        let choices: Vec<(String, String)> = roles(entries).into_iter().map(|c| (c.id, c.name)).collect();
        let guid = "0b9e2f4a-7c1d-4e8f-a2b3-c4d5e6f70812".to_string();
        assert_eq!(
            choices,
            [
                ("5f0c8a2e-3b1d-4c6e-9a7f-1e2d3c4b5a69".to_string(), "Sales".to_string()),
                ("3".to_string(), "Marketing".to_string()),
                (guid.clone(), guid),
            ]
        );
    }
}
