//! The Salesforce writer (salesforce-api.md 3.1-3.2, 5): the duplicate search as one SOQL
//! query per record (`WHERE Name = '...'`, `Email = '...'`, values escaped), creates
//! (`POST /sobjects/{Object}` -> 201 `{id, success, errors}`, never repeated) and partial
//! updates (`PATCH /sobjects/{Object}/{id}` -> 204) of Accounts, Contacts, Opportunities
//! and Tasks, and deletes (`DELETE /sobjects/{Object}/{id}` -> 204); several creates at once
//! through sObject Collections (4.2). Refusals (`[{message, errorCode, fields}]`) are classified by `error.rs`.

use serde_json::{Map, Value};
use tandem_domain::external::{ExtActivity, ExtCompany, ExtContact, ExtOpportunity, ExternalRecord};
use tandem_domain::ports::{ConnectorError, ErrorKind, Written, bad_id, check_writable, not_deleted, not_written};
use tandem_domain::{RecordKind, Stage, System};

use super::describe::DESCRIPTION;
use super::mapping::{self, parse_page_with};
use super::models::CreateResult;
use super::{SalesforceConnector, error, is_salesforce_id, key_prefix, pagination};
use crate::transport::OUTCOME_UNKNOWN_NOTE;

/// The most candidates one duplicate search returns (the query's `LIMIT`).
pub const MAX_CANDIDATES: usize = 50;

/// The object activities are created as (salesforce-api.md 7: sync products send
/// activities to Tasks).
pub const ACTIVITY_OBJECT: &str = "Task";

/// The refusal of a record Tandem does not write to Salesforce (users, catalog items).
fn refused(record: &ExternalRecord) -> ConnectorError {
    match record.kind() {
        Some(kind) => not_written(System::Salesforce, kind),
        None => ConnectorError::new(System::Salesforce, ErrorKind::Invalid, "an unreadable record cannot be written"),
    }
}

/// What one duplicate search asks: the stage mapping its rows, the object, and the fields
/// that must be equal.
type Search<'a> = (Stage, &'static str, Vec<(&'static str, &'a str)>);

fn filled(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

fn search_of_company(a: &ExtCompany) -> Option<Search<'_>> {
    Some((Stage::Companies, "Account", vec![("Name", filled(&a.name)?)]))
}

/// By email when there is one; else by name, within the company when it is known.
fn search_of_contact(c: &ExtContact) -> Option<Search<'_>> {
    if let Some(email) = c.email.as_deref().and_then(filled) {
        return Some((Stage::Contacts, "Contact", vec![("Email", email)]));
    }
    let mut equal = vec![("LastName", filled(&c.last_name)?)];
    equal.extend(filled(&c.first_name).map(|f| ("FirstName", f)));
    equal.extend(c.company_id.as_deref().and_then(filled).map(|a| ("AccountId", a)));
    Some((Stage::Contacts, "Contact", equal))
}

fn search_of_opportunity(o: &ExtOpportunity) -> Option<Search<'_>> {
    let mut equal = vec![("Name", filled(&o.name)?)];
    equal.extend(o.company_id.as_deref().and_then(filled).map(|a| ("AccountId", a)));
    Some((Stage::Opportunities, "Opportunity", equal))
}

fn search_of_activity(a: &ExtActivity) -> Option<Search<'_>> {
    let mut equal = vec![("Subject", filled(&a.subject)?)];
    equal.extend(a.contact_id.as_deref().and_then(filled).map(|w| ("WhoId", w)));
    Some((Stage::Activities, ACTIVITY_OBJECT, equal))
}

/// Records like `record` the org holds, read with the list's fields and mapping: Accounts
/// of the same name; Contacts of the same email (else name); Opportunities of the same
/// name (and account); Tasks of the same subject (and contact). SOQL `=` ignores case. A
/// record with nothing to search by has no candidates.
pub async fn find_similar(
    c: &SalesforceConnector,
    record: &ExternalRecord,
) -> Result<Vec<ExternalRecord>, ConnectorError> {
    let search = match record {
        ExternalRecord::Company(a) => search_of_company(a),
        ExternalRecord::Contact(k) => search_of_contact(k),
        ExternalRecord::Opportunity(o) => search_of_opportunity(o),
        ExternalRecord::Activity(a) => search_of_activity(a),
        other => return Err(refused(other)),
    };
    let Some((stage, object, equal)) = search else {
        return Ok(Vec::new());
    };
    let soql = pagination::soql_matching(object, &c.fields_of(object), &equal, MAX_CANDIDATES);
    let body = c.query(&soql, None).await?;
    let (records, _) = parse_page_with(stage, &body, &c.options)?;
    Ok(records.into_iter().filter(|r| !matches!(r, ExternalRecord::Unreadable(_))).collect())
}

/// The object `record` is created as, with its body: every writable field (an activity as
/// a Task, with its due day).
fn create_body(record: &ExternalRecord) -> Result<(&'static str, Map<String, Value>), ConnectorError> {
    let writable = |kind| DESCRIPTION.writable(kind);
    Ok(match record {
        ExternalRecord::Company(a) => ("Account", mapping::account_body(a, writable(RecordKind::Company), true)?),
        ExternalRecord::Contact(k) => ("Contact", mapping::contact_body(k, writable(RecordKind::Contact), true)?),
        ExternalRecord::Opportunity(o) => {
            ("Opportunity", mapping::opportunity_body(o, writable(RecordKind::Opportunity), true)?)
        }
        ExternalRecord::Activity(a) => {
            let mut body = mapping::activity_body(ACTIVITY_OBJECT, a, writable(RecordKind::Activity), true)?;
            body.extend(mapping::task_due_day(a).map(|(k, v)| (k.to_string(), v)));
            (ACTIVITY_OBJECT, body)
        }
        other => return Err(refused(other)),
    })
}

/// The written record a save result names, or the error saying the create's outcome is
/// unknown (Salesforce took it, but its answer names no id).
fn created(object: &str, result: CreateResult) -> Result<Written, ConnectorError> {
    match result.id.filter(|id| is_salesforce_id(id)) {
        Some(id) => Ok(Written { id, version: None }),
        None => Err(unknown_outcome(&format!("accepted the create of a {object} but its answer names no id"))),
    }
}

/// Creates `record` with every writable field (an activity as a Task, with its due day),
/// sent once: a create whose outcome is unknown is an error, never repeated. The answer
/// carries the new id but no `LastModifiedDate`, so the version is unknown.
pub async fn create(c: &SalesforceConnector, record: &ExternalRecord) -> Result<Written, ConnectorError> {
    let (object, body) = create_body(record)?;
    let path = SalesforceConnector::data_path(&format!("sobjects/{object}"));
    let answer = c.client.post(&path, &Value::Object(body), &c.settings.retry).await?;
    created(object, serde_json::from_slice(&answer).unwrap_or_default())
}

/// The most records one sObject Collections call carries (salesforce-api.md 4.2).
pub const COLLECTION_MAX: usize = 200;

/// The sObject Collections endpoint (`POST` creates, answers one save result per record).
const COLLECTIONS: &str = "composite/sobjects";

/// Creates `records` through sObject Collections, up to [`COLLECTION_MAX`] per call with
/// `allOrNone: false` (one refused record does not hold back the others): one API call
/// where single creates would make one each. Each record's result is read from the save
/// result at its place (order is kept); a record that cannot be written is refused
/// without a call, and a call that fails (or whose outcome is unknown) fails every record
/// it carried with that error. Never repeated, like [`create`].
pub async fn create_many(c: &SalesforceConnector, records: &[ExternalRecord]) -> Vec<Result<Written, ConnectorError>> {
    let mut out: Vec<Result<Written, ConnectorError>> = Vec::with_capacity(records.len());
    let mut sendable: Vec<(usize, &'static str, Map<String, Value>)> = Vec::new();
    for (i, record) in records.iter().enumerate() {
        match create_body(record) {
            Ok((object, mut body)) => {
                body.insert("attributes".into(), serde_json::json!({ "type": object }));
                sendable.push((i, object, body));
                out.push(Ok(Written { id: String::new(), version: None }));
            }
            Err(e) => out.push(Err(e)),
        }
    }
    let path = SalesforceConnector::data_path(COLLECTIONS);
    for chunk in sendable.chunks(COLLECTION_MAX) {
        let records: Vec<Value> = chunk.iter().map(|(_, _, body)| Value::Object(body.clone())).collect();
        let request = serde_json::json!({ "allOrNone": false, "records": records });
        let answer = c.client.post(&path, &request, &c.settings.retry).await;
        let results: Result<Vec<CreateResult>, ConnectorError> = answer.and_then(|bytes| {
            serde_json::from_slice(&bytes).map_err(|_| {
                unknown_outcome("took a create of several records; its answer is not a list of save results")
            })
        });
        for (n, (i, object, _)) in chunk.iter().enumerate() {
            out[*i] = match &results {
                Err(e) => Err(e.clone()),
                Ok(results) => match results.get(n) {
                    None => Err(unknown_outcome("took a create of several records; its answer has fewer save results")),
                    Some(r) if r.success == Some(false) => Err(error::from_save_errors(&r.errors, COLLECTIONS)),
                    Some(r) => created(object, r.clone()),
                },
            };
        }
    }
    out
}

/// The error of a create Salesforce took but answered in a way that does not say what it
/// created: not repeated; the caller searches before trying again.
pub(crate) fn unknown_outcome(what: &str) -> ConnectorError {
    let mut err = ConnectorError::new(
        System::Salesforce,
        ErrorKind::Transient,
        format!("Salesforce {what}; {OUTCOME_UNKNOWN_NOTE}"),
    );
    err.retryable = false;
    err
}

/// The object an activity id belongs to, by its key prefix (Events `00U`); Tasks otherwise.
fn activity_object(id: &str) -> &'static str {
    match key_prefix("Event") {
        Some(prefix) if id.starts_with(prefix) => "Event",
        _ => ACTIVITY_OBJECT,
    }
}

/// Sets `fields` of the record with `record`'s id (`PATCH /sobjects/{Object}/{id}`, a
/// partial body: fields not sent are left as the org holds them). A field Salesforce is
/// not written for is refused before any request, and so is an id that cannot be one; an id
/// the org does not hold is NotFound (404 `NOT_FOUND`), and so is one deleted to the recycle
/// bin (404 `ENTITY_IS_DELETED`, the code kept in the error's `code`).
pub async fn update(
    c: &SalesforceConnector,
    record: &ExternalRecord,
    fields: &[&str],
) -> Result<Written, ConnectorError> {
    let kind = record.kind().ok_or_else(|| refused(record))?;
    check_writable(&DESCRIPTION, kind, fields)?;
    let id = record.id().unwrap_or_default();
    if !is_salesforce_id(id) {
        return Err(bad_id(System::Salesforce, kind, id, "15 or 18 letters and digits"));
    }
    let (object, body) = match record {
        ExternalRecord::Company(a) => ("Account", mapping::account_body(a, fields, false)?),
        ExternalRecord::Contact(k) => ("Contact", mapping::contact_body(k, fields, false)?),
        ExternalRecord::Opportunity(o) => ("Opportunity", mapping::opportunity_body(o, fields, false)?),
        ExternalRecord::Activity(a) => {
            let object = activity_object(id);
            (object, mapping::activity_body(object, a, fields, false)?)
        }
        other => return Err(refused(other)),
    };
    let path = SalesforceConnector::data_path(&format!("sobjects/{object}/{id}"));
    c.client.patch(&path, &Value::Object(body), &c.settings.retry).await?;
    Ok(Written { id: id.to_string(), version: None })
}

/// Deletes the record `id` of `kind`: `DELETE /sobjects/{Object}/{id}`, answered 204
/// (salesforce-api.md 3.1; the record goes to the recycle bin), marked with the call
/// options header like every write and retried like any idempotent request. A record
/// already gone (404 `NOT_FOUND`, or `ENTITY_IS_DELETED` for one in the recycle bin) is
/// deleted. An activity is a Task, or an Event by its key prefix. An id that cannot be one,
/// and kinds Tandem does not write (users), are refused before any request.
pub async fn delete(c: &SalesforceConnector, kind: RecordKind, id: &str) -> Result<(), ConnectorError> {
    let object = match kind {
        RecordKind::Company => "Account",
        RecordKind::Contact => "Contact",
        RecordKind::Opportunity => "Opportunity",
        RecordKind::Activity => activity_object(id),
        other => return Err(not_deleted(System::Salesforce, other)),
    };
    if !is_salesforce_id(id) {
        return Err(bad_id(System::Salesforce, kind, id, "15 or 18 letters and digits"));
    }
    let path = SalesforceConnector::data_path(&format!("sobjects/{object}/{id}"));
    crate::read::deleted(c.client.delete(&path, &c.settings.retry).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contact_is_searched_by_email_else_by_name_within_its_company() {
        let mut k = ExtContact {
            id: String::new(),
            first_name: "Ada".into(),
            last_name: "Quill".into(),
            email: Some(" ada@x.example ".into()),
            phone: None,
            title: None,
            company_id: Some("0018d0000000001AAA".into()),
            types: Vec::new(),
            inactive: false,
            updated_at: None,
        };
        assert_eq!(search_of_contact(&k).map(|s| s.2), Some(vec![("Email", "ada@x.example")]));
        k.email = None;
        assert_eq!(
            search_of_contact(&k).map(|s| s.2),
            Some(vec![("LastName", "Quill"), ("FirstName", "Ada"), ("AccountId", "0018d0000000001AAA")])
        );
        k.last_name = " ".into();
        assert_eq!(search_of_contact(&k), None, "nothing to search by");
    }

    #[test]
    fn an_activity_id_names_its_object_by_key_prefix() {
        assert_eq!(activity_object("00U8d0000000001AAA"), "Event");
        assert_eq!(activity_object("00T8d0000000001AAA"), "Task");
    }
}
