//! The Halo writer (psa-apis.md 2.5): the duplicate search (the lists' `search` filters,
//! H1), creates and updates, both a `POST` of a one-element array to `/Client`, `/Users`,
//! `/Opportunities` or `/CRMNote` (an element without `id` creates, one with an `id` updates
//! the fields it carries). The elements are built in [`super::mapping`] as the inverse of
//! the read. Deletes are `DELETE /api/{Resource}/{id}` (psa-apis.md 2.5; H1 declares 200).

use serde_json::{Map, Value};
use tandem_domain::external::ExternalRecord;
use tandem_domain::ports::{ConnectorError, ErrorKind, Written, check_writable, not_deleted, not_written};
use tandem_domain::{RecordKind, Stage, System};

use super::describe::DESCRIPTION;
use super::mapping::{self, Out, TicketContacts};
use super::pagination::{self, MAX_PAGE_SIZE};
use super::{CLIENTS_PATH, CRM_NOTES_PATH, HaloConnector, OPPORTUNITIES_PATH, USERS_PATH, record_path};
use crate::read;

/// Candidates a duplicate search reads at most (`count`, H1: "when not using pagination,
/// the number of results to return").
pub const MAX_CANDIDATES: usize = 50;

fn invalid(message: String) -> ConnectorError {
    ConnectorError::new(System::Halo, ErrorKind::Invalid, message)
}

/// Where a record Tandem writes lives: its kind, stage and resource.
fn written_kind(record: &ExternalRecord) -> Result<(RecordKind, Stage, &'static str), ConnectorError> {
    match record {
        ExternalRecord::Company(_) => Ok((RecordKind::Company, Stage::Companies, CLIENTS_PATH)),
        ExternalRecord::Contact(_) => Ok((RecordKind::Contact, Stage::Contacts, USERS_PATH)),
        ExternalRecord::Opportunity(_) => Ok((RecordKind::Opportunity, Stage::Opportunities, OPPORTUNITIES_PATH)),
        ExternalRecord::Activity(_) => Ok((RecordKind::Activity, Stage::Activities, CRM_NOTES_PATH)),
        other => Err(not_written(System::Halo, other.kind().unwrap_or(RecordKind::Company))),
    }
}

/// The writable fields of `record`, as Halo takes them.
fn fields_of(record: &ExternalRecord) -> Result<Vec<Out>, ConnectorError> {
    match record {
        ExternalRecord::Company(c) => mapping::client_out(c),
        ExternalRecord::Contact(c) => mapping::user_out(c),
        ExternalRecord::Opportunity(o) => mapping::opportunity_out(o),
        ExternalRecord::Activity(a) => mapping::note_out(a),
        other => Err(not_written(System::Halo, other.kind().unwrap_or(RecordKind::Company))),
    }
}

/// The list filters that find records like `record` (H1): clients by `search` on the name,
/// users by `search` on the email, else the full name (UNCONFIRMED which user fields Halo's
/// `search` looks in; the email and name are assumed), opportunities by `search_summary`
/// within their client; activities by their client alone (a CRM note has no text the list
/// filters on: H1 `/CRMNote` takes only `client_id`, `count`, `supplier_id`,
/// `toplevel_id`). Inactive clients and users are searched too. `None`: nothing to search
/// by.
fn similar(record: &ExternalRecord) -> Result<Option<Vec<(&'static str, String)>>, ConnectorError> {
    let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let inactive_too = ("includeinactive", "true".to_string());
    Ok(match record {
        ExternalRecord::Company(c) => text(&c.name).map(|name| vec![("search", name), inactive_too]),
        ExternalRecord::Contact(c) => c
            .email
            .as_deref()
            .and_then(text)
            .or_else(|| text(&format!("{} {}", c.first_name.trim(), c.last_name.trim())))
            .map(|key| vec![("search", key), inactive_too]),
        ExternalRecord::Opportunity(o) => match text(&o.name) {
            None => None,
            Some(name) => {
                let mut query = vec![("search_summary", name)];
                if let Some(client) = o.company_id.as_deref().and_then(text) {
                    query.push(("client_id", mapping::number("client", &client)?.to_string()));
                }
                Some(query)
            }
        },
        // Every note of the client: the rules pick the one of the same subject and contact.
        ExternalRecord::Activity(a) => match a.company_id.as_deref().and_then(text) {
            None => None,
            Some(client) => Some(vec![("client_id", mapping::number("client", &client)?.to_string())]),
        },
        _ => None,
    })
}

/// Records like `record` Halo holds, mapped as `list` maps them (unreadable ones left out:
/// they cannot be compared).
pub async fn find_similar(c: &HaloConnector, record: &ExternalRecord) -> Result<Vec<ExternalRecord>, ConnectorError> {
    let (_, stage, path) = written_kind(record)?;
    let Some(mut query) = similar(record)? else { return Ok(Vec::new()) };
    if stage == Stage::Activities {
        return client_notes(c, &query).await;
    }
    query.push(("count", MAX_CANDIDATES.to_string()));
    let body = c.client.get(path, &query, &c.settings.retry).await?;
    let mut records = mapping::parse_list(stage, &body, false, &TicketContacts::new())?.records;
    records.retain(|r| !matches!(r, ExternalRecord::Unreadable(_)));
    Ok(records)
}

/// Every CRM note of one client (`filter` names it), page by page in id order: with no
/// text to filter on, the whole client is read so a note just made is never missed.
async fn client_notes(
    c: &HaloConnector,
    filter: &[(&'static str, String)],
) -> Result<Vec<ExternalRecord>, ConnectorError> {
    let mut out = Vec::new();
    for page in 1.. {
        let mut query = pagination::page_query(page, MAX_PAGE_SIZE, None);
        query.extend(filter.iter().cloned());
        let body = c.client.get(CRM_NOTES_PATH, &query, &c.settings.retry).await?;
        let parsed = mapping::parse_list(Stage::Activities, &body, false, &TicketContacts::new())?;
        let more = pagination::has_next(page, MAX_PAGE_SIZE, parsed.rows, parsed.record_count);
        out.extend(parsed.records.into_iter().filter(|r| !matches!(r, ExternalRecord::Unreadable(_))));
        if !more {
            break;
        }
    }
    Ok(out)
}

/// Creates `record`: one `POST` of a one-element array, never repeated once it may have
/// reached Halo.
pub async fn create(c: &HaloConnector, record: &ExternalRecord) -> Result<Written, ConnectorError> {
    let (_, stage, path) = written_kind(record)?;
    let mut element = mapping::create_body(&fields_of(record)?);
    if let ExternalRecord::Contact(contact) = record {
        element.insert("name".into(), mapping::user_name(contact));
    }
    let answer = post(c, path, element, false).await?;
    saved(stage, &answer)
}

/// Sets `fields` of the record with `record`'s id: after checking Halo holds it (an element
/// with an unknown `id` is not relied on to fail: psa-apis.md 2.5 leaves it UNCONFIRMED
/// whether Halo would create a record instead), one `POST` of the id and those fields only.
pub async fn update(c: &HaloConnector, record: &ExternalRecord, fields: &[&str]) -> Result<Written, ConnectorError> {
    let (kind, stage, path) = written_kind(record)?;
    check_writable(&DESCRIPTION, kind, fields)?;
    let id = record.id().unwrap_or_default();
    let number = own_number(kind, id)?;
    let element = mapping::update_body(&fields_of(record)?, fields, number);
    if read::found(c.client.get(&format!("{path}/{number}"), &[], &c.settings.retry).await)?.is_none() {
        let shown: String = id.chars().take(40).collect();
        return Err(ConnectorError::new(System::Halo, ErrorKind::NotFound, format!("HaloPSA has no {kind} {shown}")));
    }
    let answer = post(c, path, element, true).await?;
    let written = saved(stage, &answer)?;
    if written.id != id {
        return Err(invalid(format!("HaloPSA saved the update of {kind} {id} as {}", written.id)));
    }
    Ok(written)
}

/// The number in the id of a record Tandem writes: the id itself, or for an activity the
/// `N` of `note-N` (activities are written as CRM notes; an action, `action-N`, is not).
fn own_number(kind: RecordKind, id: &str) -> Result<i64, ConnectorError> {
    match kind {
        RecordKind::Activity => id
            .strip_prefix("note-")
            .ok_or_else(|| tandem_domain::ports::bad_id(System::Halo, kind, id, "note-N: Tandem writes CRM notes"))
            .and_then(|n| read::numeric_id(System::Halo, kind, n)),
        _ => read::numeric_id(System::Halo, kind, id),
    }
}

async fn post(
    c: &HaloConnector,
    path: &str,
    element: Map<String, Value>,
    idempotent: bool,
) -> Result<Vec<u8>, ConnectorError> {
    let records = Value::Array(vec![Value::Object(element)]);
    c.client.post(path, &records, idempotent, &c.settings.retry).await
}

/// The id and version of the saved record Halo answers, read as `get` reads it. The answer
/// is the saved object, or an array holding it (UNCONFIRMED which, psa-apis.md 2.5; both are
/// taken).
fn saved(stage: Stage, answer: &[u8]) -> Result<Written, ConnectorError> {
    let value: Value = serde_json::from_slice(answer)
        .map_err(|e| invalid(format!("HaloPSA answered a write with a body that is not JSON: {e}")))?;
    let object = match value {
        Value::Array(mut items) if items.len() == 1 => items.remove(0),
        other => other,
    };
    let rows = Value::Array(vec![object]).to_string();
    let parsed = mapping::parse_list(stage, rows.as_bytes(), false, &TicketContacts::new())?;
    match read::only(System::Halo, parsed.records)? {
        Some(ExternalRecord::Unreadable(u)) => {
            Err(invalid(format!("HaloPSA answered a write with a record we cannot read: {}", u.reason)))
        }
        Some(record) => Ok(Written { id: record.id().unwrap_or_default().to_string(), version: updated_at(&record) }),
        None => Err(invalid("HaloPSA answered a write without the saved record".into())),
    }
}

fn updated_at(record: &ExternalRecord) -> Option<tandem_domain::ledger::ExtVersion> {
    match record {
        ExternalRecord::Company(c) => c.updated_at.clone(),
        ExternalRecord::Contact(c) => c.updated_at.clone(),
        ExternalRecord::Opportunity(o) => o.updated_at.clone(),
        ExternalRecord::Activity(a) => a.updated_at.clone(),
        _ => None,
    }
}

/// Deletes the record `id` of `kind`: `DELETE /api/{Resource}/{id}` on `/Client`, `/Users`,
/// `/Opportunities` (Halo flags the ticket `deleted`), and an activity's `/CRMNote` or
/// `/Actions` by its id's source (H1 declares `DELETE` with 200 on each). Retried like any
/// idempotent request. A record already gone is deleted: UNCONFIRMED that Halo answers 404
/// for it (H1 declares only 200; the simulator answers 404). Kinds Tandem does not write
/// (agents) are refused.
pub async fn delete(c: &HaloConnector, kind: RecordKind, id: &str) -> Result<(), ConnectorError> {
    if DESCRIPTION.writable(kind).is_empty() {
        return Err(not_deleted(System::Halo, kind));
    }
    let (_, path, number) = record_path(kind, id)?;
    read::deleted(c.client.delete(&format!("{path}/{number}"), &c.settings.retry).await)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tandem_domain::external::{ExtCompany, ExtContact};

    fn contact(email: Option<&str>) -> ExternalRecord {
        ExternalRecord::Contact(ExtContact {
            id: String::new(),
            first_name: "Ada".into(),
            last_name: "Quill".into(),
            email: email.map(str::to_string),
            phone: None,
            title: None,
            company_id: None,
            types: Vec::new(),
            inactive: false,
            updated_at: None,
        })
    }

    #[test]
    fn contacts_are_searched_by_email_else_by_name_and_inactive_ones_too() {
        let by_email = similar(&contact(Some(" ada@x.example "))).unwrap().unwrap();
        assert_eq!(by_email, [("search", "ada@x.example".to_string()), ("includeinactive", "true".to_string())]);
        let by_name = similar(&contact(None)).unwrap().unwrap();
        assert_eq!(by_name[0], ("search", "Ada Quill".to_string()));
    }

    #[test]
    fn a_nameless_company_is_not_searched() {
        let company = ExternalRecord::Company(ExtCompany::named(" "));
        assert_eq!(similar(&company).unwrap(), None);
    }

    #[test]
    fn activity_ids_are_crm_note_ids_and_actions_are_not_written() {
        assert_eq!(own_number(RecordKind::Activity, "note-12").unwrap(), 12);
        assert_eq!(own_number(RecordKind::Activity, "action-12").unwrap_err().kind, ErrorKind::Invalid);
        assert_eq!(own_number(RecordKind::Company, "note-12").unwrap_err().kind, ErrorKind::Invalid);
        assert_eq!(own_number(RecordKind::Company, "7").unwrap(), 7);
    }

    #[test]
    fn the_saved_record_is_read_from_an_object_or_a_one_element_array() {
        let object = br#"{"id": 9, "name": "Acme", "alastupdate": "2025-01-02T03:04:05.123"}"#;
        let w = saved(Stage::Companies, object).unwrap();
        assert_eq!((w.id.as_str(), w.version.as_ref().map(|v| v.as_str())), ("9", Some("2025-01-02T03:04:05.123")));
        let array = br#"[{"id": 4, "note": "hi", "datetime": "2025-01-02T03:04:05"}]"#;
        assert_eq!(saved(Stage::Activities, array).unwrap().id, "note-4");
        assert_eq!(saved(Stage::Companies, b"[]").unwrap_err().kind, ErrorKind::Invalid);
    }
}
