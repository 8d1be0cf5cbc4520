//! The Syncro writer (psa-apis.md 3.4-3.5): the duplicate search over the list filters the
//! swagger documents, creates (`POST /{plural}`, never repeated) and partial updates (`PUT
//! /{plural}/{id}`) of customers, contacts and leads, and deletes (`DELETE /customers/{id}`,
//! `/contacts/{id}`; leads have none). Syncro has no activity Tandem could
//! write (ticket comments hang off tickets, which Tandem does not sync), so activities are
//! refused as not written.

use serde_json::Value;
use tandem_domain::external::{ExtCompany, ExtContact, ExtOpportunity, ExternalRecord};
use tandem_domain::ports::{ConnectorError, ErrorKind, Written, check_writable, not_deleted, not_written};
use tandem_domain::{RecordKind, Stage, System};

use super::describe::DESCRIPTION;
use super::mapping::{self, contact_name};
use super::{SyncroConnector, pagination, stage_path};
use crate::read;
use crate::transport::OUTCOME_UNKNOWN_NOTE;

/// The most list pages (25 records each) one duplicate search reads. A search that has not
/// reached the last page by then is refused rather than answered half done: a missed
/// duplicate would be created again. Change it here if tenants need more.
pub const MAX_SEARCH_PAGES: u64 = 100;

fn invalid(message: String) -> ConnectorError {
    ConnectorError::new(System::Syncro, ErrorKind::Invalid, message)
}

/// Syncro answers a write whose `customer_id` names no customer with 404 `{"message": "Not
/// found"}` (the issue and psa-apis.md 3.5), the answer of an unknown record. On a create,
/// or a contact update whose contact was just read, the 404 can only be the customer's: it
/// is a refusal of this record (Invalid, not retryable), saying so, not a missing record.
fn unknown_customer(err: ConnectorError, body: &serde_json::Map<String, Value>, what: &str) -> ConnectorError {
    match body.get("customer_id").filter(|c| !c.is_null()) {
        Some(customer) if err.kind == ErrorKind::NotFound => {
            let mut refusal = invalid(format!(
                "Syncro refused the {what}: its customer_id {customer} names no Syncro customer ({})",
                err.message
            ));
            refusal.status = err.status;
            refusal.retryable = false;
            refusal
        }
        _ => err,
    }
}

/// The refusal of a record Tandem does not write to Syncro (activities, users, catalog items).
fn refused(record: &ExternalRecord) -> ConnectorError {
    match record.kind() {
        Some(kind) => not_written(System::Syncro, kind),
        None => invalid("an unreadable record cannot be written to Syncro".into()),
    }
}

/// Records like `record` Syncro holds: customers whose business name is like the company's
/// (`business_name` filter, disabled ones included); contacts of the contact's customer
/// (`customer_id`, the only contact filter Y1 documents; every contact when the company is
/// not known) with the same email, or with the same name when there is no email; leads the
/// `query` search finds for the opportunity's name. A record with nothing to search by has
/// no candidates.
pub async fn find_similar(c: &SyncroConnector, record: &ExternalRecord) -> Result<Vec<ExternalRecord>, ConnectorError> {
    match record {
        ExternalRecord::Company(company) => similar_customers(c, company).await,
        ExternalRecord::Contact(contact) => similar_contacts(c, contact).await,
        ExternalRecord::Opportunity(opportunity) => similar_leads(c, opportunity).await,
        other => Err(refused(other)),
    }
}

async fn similar_customers(c: &SyncroConnector, company: &ExtCompany) -> Result<Vec<ExternalRecord>, ConnectorError> {
    let name = company.name.trim();
    if name.is_empty() {
        return Ok(Vec::new());
    }
    let filters = vec![("business_name", name.to_string()), ("include_disabled", "true".to_string())];
    search(c, Stage::Companies, filters, |_| true).await
}

async fn similar_contacts(c: &SyncroConnector, contact: &ExtContact) -> Result<Vec<ExternalRecord>, ConnectorError> {
    let email = contact.email.as_deref().map(str::trim).filter(|e| !e.is_empty());
    let name = contact_name(&contact.first_name, &contact.last_name);
    let mut filters = Vec::new();
    if let Some(company) = &contact.company_id {
        filters.push(("customer_id", read::numeric_id(System::Syncro, RecordKind::Company, company)?.to_string()));
    }
    // A name alone is a weak key: matched only among one customer's contacts.
    if email.is_none() && (name.is_empty() || filters.is_empty()) {
        return Ok(Vec::new());
    }
    let same = move |r: &ExternalRecord| match (r, email) {
        (ExternalRecord::Contact(k), Some(email)) => k.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(email)),
        (ExternalRecord::Contact(k), None) => contact_name(&k.first_name, &k.last_name).eq_ignore_ascii_case(&name),
        _ => false,
    };
    search(c, Stage::Contacts, filters, same).await
}

async fn similar_leads(c: &SyncroConnector, lead: &ExtOpportunity) -> Result<Vec<ExternalRecord>, ConnectorError> {
    let name = lead.name.trim();
    if name.is_empty() {
        return Ok(Vec::new());
    }
    search(c, Stage::Opportunities, vec![("query", name.to_string())], |_| true).await
}

/// Every readable record of `stage`'s list with `filters` that `keep` keeps, page by page
/// to the last (at most [`MAX_SEARCH_PAGES`]).
async fn search(
    c: &SyncroConnector,
    stage: Stage,
    filters: Vec<(&'static str, String)>,
    keep: impl Fn(&ExternalRecord) -> bool,
) -> Result<Vec<ExternalRecord>, ConnectorError> {
    let path = stage_path(stage)?;
    let mut found = Vec::new();
    for page in 1..=MAX_SEARCH_PAGES {
        let mut query = filters.clone();
        query.push(("page", page.to_string()));
        let answer = c.client.get(path, &query, &c.settings.retry).await?;
        let parsed = mapping::parse_list(stage, &answer.body)?;
        found.extend(parsed.records.into_iter().filter(|r| !matches!(r, ExternalRecord::Unreadable(_)) && keep(r)));
        if pagination::next_page(parsed.meta.as_ref(), page).is_none() {
            return Ok(found);
        }
    }
    Err(invalid(format!(
        "the duplicate search of Syncro {path} read {MAX_SEARCH_PAGES} pages without reaching the last; not answering half done"
    )))
}

/// Creates `record` with every writable field (`POST /customers`, `/contacts`, `/leads`),
/// sent once: a create whose outcome is unknown is an error, never repeated. The answer is
/// the record (customers and leads wrapped, contacts bare), whose id and `updated_at` are
/// the [`Written`].
pub async fn create(c: &SyncroConnector, record: &ExternalRecord) -> Result<Written, ConnectorError> {
    let (stage, body) = match record {
        ExternalRecord::Company(company) => {
            (Stage::Companies, mapping::customer_body(company, DESCRIPTION.writable(RecordKind::Company), true)?)
        }
        ExternalRecord::Contact(contact) => {
            (Stage::Contacts, mapping::contact_body(contact, DESCRIPTION.writable(RecordKind::Contact), true, None)?)
        }
        ExternalRecord::Opportunity(lead) => {
            (Stage::Opportunities, mapping::lead_body(lead, DESCRIPTION.writable(RecordKind::Opportunity), true)?)
        }
        other => return Err(refused(other)),
    };
    let path = stage_path(stage)?;
    let what = match stage {
        Stage::Contacts => "contact",
        Stage::Opportunities => "lead",
        _ => "customer",
    };
    let answer = c
        .client
        .post(path, &Value::Object(body.clone()), &c.settings.retry)
        .await
        .map_err(|e| unknown_customer(e, &body, what))?;
    match written(stage, &answer.body) {
        Some(w) => Ok(w),
        None => {
            let mut err = ConnectorError::new(
                System::Syncro,
                ErrorKind::Transient,
                format!("Syncro accepted the create on {path} but its answer names no record; {OUTCOME_UNKNOWN_NOTE}"),
            );
            err.retryable = false;
            Err(err)
        }
    }
}

/// The id and version of the record a write answered with, when it can be read.
fn written(stage: Stage, body: &[u8]) -> Option<Written> {
    match mapping::parse_one(stage, body).ok().flatten()? {
        ExternalRecord::Unreadable(u) => Some(Written { id: u.id?, version: None }),
        record => Some(Written { id: record.id()?.to_string(), version: record.version().cloned() }),
    }
}

/// Sets `fields` of the record with `record`'s id (`PUT /{plural}/{id}`, a partial body:
/// fields not sent are left as Syncro holds them). A field Syncro does not write is refused
/// before any request. A contact is read first: Syncro requires its one `name` on every
/// update, and a name not being changed must be sent as Syncro holds it. An id Syncro does
/// not hold is NotFound (404).
pub async fn update(c: &SyncroConnector, record: &ExternalRecord, fields: &[&str]) -> Result<Written, ConnectorError> {
    let kind = record.kind().ok_or_else(|| refused(record))?;
    check_writable(&DESCRIPTION, kind, fields)?;
    let stage = match record {
        ExternalRecord::Company(_) => Stage::Companies,
        ExternalRecord::Contact(_) => Stage::Contacts,
        ExternalRecord::Opportunity(_) => Stage::Opportunities,
        other => return Err(refused(other)),
    };
    let id = read::numeric_id(System::Syncro, kind, record.id().unwrap_or_default())?;
    let path = format!("{}/{id}", stage_path(stage)?);
    let body = match record {
        ExternalRecord::Company(company) => mapping::customer_body(company, fields, false)?,
        ExternalRecord::Contact(contact) => {
            let held = held_contact(c, &path).await?;
            mapping::contact_body(contact, fields, false, Some(&held))?
        }
        ExternalRecord::Opportunity(lead) => mapping::lead_body(lead, fields, false)?,
        other => return Err(refused(other)),
    };
    // A lead's 404 may be the lead's own: only a contact, just read, pins it on the customer.
    let contact = matches!(record, ExternalRecord::Contact(_));
    let answer = c
        .client
        .put(&path, &Value::Object(body.clone()), &c.settings.retry)
        .await
        .map_err(|e| if contact { unknown_customer(e, &body, "contact") } else { e })?;
    Ok(written(stage, &answer.body).unwrap_or(Written { id: id.to_string(), version: None }))
}

/// The contact at `path` as Syncro holds it (404: NotFound).
async fn held_contact(c: &SyncroConnector, path: &str) -> Result<ExtContact, ConnectorError> {
    let answer = c.client.get(path, &[], &c.settings.retry).await?;
    match mapping::parse_one(Stage::Contacts, &answer.body)? {
        Some(ExternalRecord::Contact(contact)) => Ok(contact),
        _ => Err(invalid(format!("Syncro answered {path} with a contact we cannot read, so its name is unknown"))),
    }
}
/// Deletes the record `id` of `kind`: `DELETE /customers/{id}` or `/contacts/{id}` (Y1:
/// 200, customers with `{"message": "Customer was deleted from the system."}`; an unknown
/// id 404), retried like any idempotent request; a record already gone is deleted. Leads
/// have no `DELETE` in Syncro's API (psa-apis.md 3.4), so an opportunity is refused before
/// any request, as are kinds Tandem does not write.
pub async fn delete(c: &SyncroConnector, kind: RecordKind, id: &str) -> Result<(), ConnectorError> {
    let stage = match kind {
        RecordKind::Company => Stage::Companies,
        RecordKind::Contact => Stage::Contacts,
        other => return Err(not_deleted(System::Syncro, other)),
    };
    let id = read::numeric_id(System::Syncro, kind, id)?;
    let path = format!("{}/{id}", stage_path(stage)?);
    read::deleted(c.client.delete(&path, &c.settings.retry).await)
}
