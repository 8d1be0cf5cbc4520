//! The ConnectWise writer (psa-apis.md 1.7): the duplicate search (`conditions` and
//! `childConditions` on the list endpoints, psa-apis.md 1.4), creates (`POST`, answered 201
//! with the object) and partial updates (`PATCH` with JSON-Patch operations, answered 200)
//! of companies, contacts, opportunities and activities, and an opportunity's forecast
//! items, which hold its value and line items; and deletes (`DELETE`, answered 204). The bodies are built in
//! [`super::mapping`] as the inverse of the read; this file adds what needs ConnectWise's own
//! lists (members, activity statuses) or the record as it stands (communication items).

use serde_json::{Map, Value, json};
use tandem_domain::external::{ExtCompany, ExtContact, ExtOpportunity, ExternalRecord};
use tandem_domain::ports::{ConnectorError, ErrorKind, Written, check_writable, not_deleted, not_written};
use tandem_domain::{RecordKind, Stage, System};

use super::client::Answer;
use super::describe::DESCRIPTION;
use super::mapping::{self, number};
use super::models::{Contact, Member, Saved};
use super::{
    ACTIVITY_STATUSES_PATH, ConnectWiseConnector, UNKNOWN_ENDPOINT_CODE, error, member_identifier, stage_path,
};
use crate::read;

/// Candidates a duplicate search reads at most (one page).
pub const MAX_CANDIDATES: usize = 50;

/// Identifiers a company create tries while ConnectWise answers that the last one is taken.
pub const IDENTIFIER_ATTEMPTS: u32 = 5;

fn invalid(message: String) -> ConnectorError {
    ConnectorError::new(System::ConnectWise, ErrorKind::Invalid, message)
}

/// The stage (list endpoint) of a record Tandem writes; other kinds are refused.
fn written_stage(record: &ExternalRecord) -> Result<(RecordKind, Stage), ConnectorError> {
    match record {
        ExternalRecord::Company(_) => Ok((RecordKind::Company, Stage::Companies)),
        ExternalRecord::Contact(_) => Ok((RecordKind::Contact, Stage::Contacts)),
        ExternalRecord::Opportunity(_) => Ok((RecordKind::Opportunity, Stage::Opportunities)),
        ExternalRecord::Activity(_) => Ok((RecordKind::Activity, Stage::Activities)),
        other => Err(not_written(System::ConnectWise, other.kind().unwrap_or(RecordKind::Company))),
    }
}

/// Text as a `conditions` string literal: in double quotes, with `\` and `"` escaped by a
/// backslash. UNCONFIRMED how ConnectWise escapes a quote inside a string (psa-apis.md 1.4
/// documents only double-quoted strings); a backslash escape is the common form, and no
/// value can end the literal early either way.
pub fn quoted(text: &str) -> String {
    format!("\"{}\"", text.trim().replace('\\', "\\\\").replace('"', "\\\""))
}

/// `condition` narrowed to records whose `parent` reference is `id`, when there is one.
fn within(condition: String, parent: &str, id: Option<&str>) -> Result<String, ConnectorError> {
    match id.map(str::trim).filter(|s| !s.is_empty()) {
        Some(id) => Ok(format!("{condition} and {parent}/id = {}", number(parent, id)?)),
        None => Ok(condition),
    }
}

/// The list parameter and condition that find records like `record`: companies by name
/// (deleted ones left out), contacts by email (`childConditions` on
/// `communicationItems/value`, psa-apis.md 1.6, exact syntax UNCONFIRMED on every version) or
/// else by first and last name, opportunities by name within their company, activities by
/// subject on their contact (else company). `None`: nothing to search by.
fn similar(record: &ExternalRecord) -> Result<Option<(&'static str, String)>, ConnectorError> {
    let blank = |s: &str| s.trim().is_empty();
    Ok(match record {
        ExternalRecord::Company(c) if !blank(&c.name) => {
            Some(("conditions", format!("name = {} and deletedFlag = false", quoted(&c.name))))
        }
        ExternalRecord::Contact(c) => match c.email.as_deref().filter(|e| !blank(e)) {
            Some(email) => Some(("childConditions", format!("communicationItems/value = {}", quoted(email)))),
            None if blank(&c.first_name) && blank(&c.last_name) => None,
            None => Some((
                "conditions",
                format!("firstName = {} and lastName = {}", quoted(&c.first_name), quoted(&c.last_name)),
            )),
        },
        ExternalRecord::Opportunity(o) if !blank(&o.name) => {
            Some(("conditions", within(format!("name = {}", quoted(&o.name)), "company", o.company_id.as_deref())?))
        }
        ExternalRecord::Activity(a) if !blank(&a.subject) => {
            let (parent, id) = match a.contact_id.as_deref() {
                Some(contact) => ("contact", Some(contact)),
                None => ("company", a.company_id.as_deref()),
            };
            Some(("conditions", within(format!("name = {}", quoted(&a.subject)), parent, id)?))
        }
        _ => None,
    })
}

/// Records like `record` ConnectWise holds, mapped as [`list`](super::ConnectWiseConnector)
/// maps them (unreadable ones left out: they cannot be compared).
pub async fn find_similar(
    c: &ConnectWiseConnector,
    record: &ExternalRecord,
) -> Result<Vec<ExternalRecord>, ConnectorError> {
    let (_, stage) = written_stage(record)?;
    let Some((param, condition)) = similar(record)? else { return Ok(Vec::new()) };
    let query = [(param, condition), ("orderBy", "id asc".to_string()), ("pageSize", MAX_CANDIDATES.to_string())];
    let lookups = c.lookups(stage).await?;
    let answer = c.client.get(stage_path(stage), &query, &c.settings.retry).await?;
    let mut records = mapping::parse_page_with(stage, &answer.body, &lookups)?;
    records.retain(|r| !matches!(r, ExternalRecord::Unreadable(_)));
    if stage == Stage::Opportunities {
        c.add_forecasts(&mut records).await?;
    }
    Ok(records)
}

/// Creates `record`: one `POST` (never repeated once it may have reached ConnectWise), after
/// the look-ups its body needs.
pub async fn create(c: &ConnectWiseConnector, record: &ExternalRecord) -> Result<Written, ConnectorError> {
    let (_, stage) = written_stage(record)?;
    let path = stage_path(stage);
    let answer = match record {
        ExternalRecord::Company(company) => create_company(c, company).await?,
        ExternalRecord::Contact(contact) => post(c, path, contact_body(contact)?).await?,
        ExternalRecord::Opportunity(o) => {
            let mut body = mapping::create_body(&mapping::opportunity_out(o)?);
            body.insert("primarySalesRep".into(), member_ref(c, o.salesperson_id.as_deref()).await?);
            let answer = post(c, path, body).await?;
            add_forecast(c, &written(&answer)?.id, o).await;
            answer
        }
        ExternalRecord::Activity(a) => {
            let mut body = mapping::create_body(&mapping::activity_out(a)?);
            body.insert("status".into(), activity_status(c, a.done).await?);
            body.insert("assignTo".into(), member_ref(c, a.created_by.as_deref()).await?);
            post(c, path, body).await?
        }
        other => return Err(not_written(System::ConnectWise, other.kind().unwrap_or(RecordKind::Company))),
    };
    written(&answer)
}

/// Writes a new opportunity's value as its forecast (psa-apis.md 1.6: ConnectWise keeps
/// an opportunity's value only in its forecast items): one `Product` item per line item,
/// or, without line items, one `Other1` item holding the value. The opportunity exists
/// once its own create answered, so an item ConnectWise refuses is logged and the create
/// still counts; the reader then shows the value the items written add up to.
async fn add_forecast(c: &ConnectWiseConnector, id: &str, o: &ExtOpportunity) {
    let path = super::forecast_path(id);
    for item in mapping::forecast_items(o) {
        if let Err(e) = c.client.post(&path, &item, &c.settings.retry).await {
            tracing::warn!(opportunity = %id, error = %e, "ConnectWise refused a forecast item; the opportunity's value is incomplete");
        }
    }
}

fn contact_body(contact: &ExtContact) -> Result<Map<String, Value>, ConnectorError> {
    let mut body = mapping::create_body(&mapping::contact_out(contact)?);
    body.insert("communicationItems".into(), mapping::communication_items(contact));
    Ok(body)
}

/// A company create under the identifier [`mapping::identifier`] gives, the next one when
/// ConnectWise answers that it is taken (a 400: nothing was created).
async fn create_company(c: &ConnectWiseConnector, company: &ExtCompany) -> Result<Answer, ConnectorError> {
    let mut body = mapping::create_body(&mapping::company_out(company)?);
    let mut attempt = 1;
    loop {
        body.insert("identifier".into(), json!(mapping::identifier(&company.name, attempt)));
        match post(c, stage_path(Stage::Companies), body.clone()).await {
            Err(e) if attempt < IDENTIFIER_ATTEMPTS && error::is_taken(&e, "identifier") => attempt += 1,
            other => return other,
        }
    }
}

async fn post(c: &ConnectWiseConnector, path: &str, body: Map<String, Value>) -> Result<Answer, ConnectorError> {
    c.client.post(path, &Value::Object(body), &c.settings.retry).await
}

/// The id and version a write's answer carries.
fn written(answer: &Answer) -> Result<Written, ConnectorError> {
    let saved: Saved = serde_json::from_slice(&answer.body)
        .map_err(|e| invalid(format!("ConnectWise answered a write with a body we cannot read: {e}")))?;
    Ok(Written { id: saved.id.to_string(), version: mapping::updated_at(&saved.info) })
}

/// The member a created opportunity is sold by (`primarySalesRep`) or an activity is assigned
/// to (`assignTo`), both required by ConnectWise (S1 `Opportunity`, `Activity`), as `{id}`:
/// the record's member (its identifier looked up), else a fallback member.
///
/// UNCONFIRMED choice of fallback: the first active member (lowest id), usually the account's
/// first administrator. ConnectWise offers API keys no "who am I" call in the spec
/// (`/system/myAccount/{id}` needs the id), and Tandem has no per-connection default member
/// yet; change it here when one exists.
async fn member_ref(c: &ConnectWiseConnector, identifier: Option<&str>) -> Result<Value, ConnectorError> {
    let identifier = identifier.map(str::trim).filter(|s| !s.is_empty());
    let condition = match identifier {
        Some(id) => format!("identifier = {}", quoted(member_identifier(RecordKind::User, id)?)),
        None => "inactiveFlag = false".to_string(),
    };
    let query = [
        ("conditions", condition),
        ("orderBy", "id asc".to_string()),
        ("fields", "id,identifier".to_string()),
        ("pageSize", "1".to_string()),
    ];
    let path = stage_path(Stage::Users);
    let answer = c.client.get(path, &query, &c.settings.retry).await?;
    let members: Vec<Member> = serde_json::from_slice(&answer.body)
        .map_err(|e| invalid(format!("ConnectWise answered {path} with members we cannot read: {e}")))?;
    match (members.first(), identifier) {
        (Some(m), _) => Ok(json!({"id": m.id})),
        (None, Some(id)) => Err(invalid(format!("ConnectWise has no member {id:?} to give the record to"))),
        (None, None) => Err(invalid("ConnectWise has no active member to give the record to".into())),
    }
}

/// The activity status saying done (`closedFlag`) or not, as the read decides: an active
/// status of that kind, ConnectWise's default one first.
async fn activity_status(c: &ConnectWiseConnector, done: bool) -> Result<Value, ConnectorError> {
    let statuses = c.setup_list(ACTIVITY_STATUSES_PATH).await?;
    let fits = |e: &&super::models::SetupEntry| e.closed_flag == done && !e.inactive_flag;
    let status = statuses.iter().filter(fits).find(|e| e.default_flag).or_else(|| statuses.iter().find(fits));
    let what = if done { "closed" } else { "open" };
    status
        .map(|e| json!({"id": e.id}))
        .ok_or_else(|| invalid(format!("ConnectWise has no active {what} activity status ({ACTIVITY_STATUSES_PATH})")))
}

/// The refusal of an update of a company's type, before any request: ConnectWise takes
/// `types` only when a company is created (S1 `Company.types`: "can be passed in only during
/// new company creation (post)"; later through `/company/companies/{id}/typeAssociations`,
/// which Tandem does not write).
fn types_not_updated() -> ConnectorError {
    invalid(
        "ConnectWise sets a company's types only when it is created; Tandem does not change the type of an existing \
         company (company_type)"
            .into(),
    )
}

/// Sets `fields` of the record with `record`'s id: one `PATCH` of `replace` operations (and,
/// for a contact's email or phone, the communication-item operations), after the reads those
/// need. Fields not named are left as ConnectWise holds them.
pub async fn update(
    c: &ConnectWiseConnector,
    record: &ExternalRecord,
    fields: &[&str],
) -> Result<Written, ConnectorError> {
    let (kind, stage) = written_stage(record)?;
    check_writable(&DESCRIPTION, kind, fields)?;
    if kind == RecordKind::Company && fields.contains(&"company_type") {
        return Err(types_not_updated());
    }
    let id = read::numeric_id(System::ConnectWise, kind, record.id().unwrap_or_default())?;
    let path = format!("{}/{id}", stage_path(stage));
    let operations = operations(c, record, fields, &path).await?;
    let answer = if operations.is_empty() {
        c.client.get(&path, &[("fields", "id,_info".to_string())], &c.settings.retry).await?
    } else {
        let idempotent = operations.iter().all(|op| op["op"] == "replace");
        c.client.patch(&path, &Value::Array(operations), idempotent, &c.settings.retry).await?
    };
    if let ExternalRecord::Opportunity(o) = record
        && fields.iter().any(|f| matches!(*f, "value" | "line_items"))
    {
        sync_forecast(c, &id.to_string(), o).await?;
    }
    written(&answer)
}

/// Brings opportunity `id`'s forecast in step with `o`'s value and line items (they live
/// only there, psa-apis.md 1.6): reads the forecast, then replaces, adds and removes items
/// as [`mapping::forecast_changes`] decides (its doc comment has the rule: items Tandem did
/// not write are left alone, items already as wanted are not touched, so a repeated update
/// writes nothing). A failure ends the update with that error; the next update reads the
/// forecast afresh, so it picks up where this one stopped without duplicating items. An item
/// already gone when removed counts as removed.
async fn sync_forecast(c: &ConnectWiseConnector, id: &str, o: &ExtOpportunity) -> Result<(), ConnectorError> {
    let forecast = c.forecast(id).await?;
    let path = super::forecast_path(id);
    for change in mapping::forecast_changes(&forecast.forecast_items, o) {
        match change {
            mapping::ForecastChange::Replace { id: item, operations } => {
                let item_path = format!("{path}/{item}");
                c.client.patch(&item_path, &Value::Array(operations), true, &c.settings.retry).await?;
            }
            mapping::ForecastChange::Add(item) => {
                c.client.post(&path, &item, &c.settings.retry).await?;
            }
            mapping::ForecastChange::Remove(item) => {
                match c.client.delete(&format!("{path}/{item}"), &c.settings.retry).await {
                    Err(e) if e.kind == ErrorKind::NotFound => {}
                    other => other?,
                }
            }
        }
    }
    Ok(())
}

/// Deletes the record `id` of `kind`: `DELETE {collection}/{id}`, answered 204
/// (psa-apis.md 1.7), retried like any idempotent request. A record already gone (404
/// `NotFound`) is deleted; ConnectWise's 404 for a path it does not serve is our mistake and
/// stays an error. Kinds Tandem does not write (members, catalog items) are refused.
pub async fn delete(c: &ConnectWiseConnector, kind: RecordKind, id: &str) -> Result<(), ConnectorError> {
    if DESCRIPTION.writable(kind).is_empty() {
        return Err(not_deleted(System::ConnectWise, kind));
    }
    let stage = read::stage_to_get(System::ConnectWise, kind)?;
    let id = read::numeric_id(System::ConnectWise, kind, id)?;
    match c.client.delete(&format!("{}/{id}", stage_path(stage)), &c.settings.retry).await {
        Err(e) if e.code.as_deref() == Some(UNKNOWN_ENDPOINT_CODE) => Err(e),
        other => read::deleted(other),
    }
}

/// The JSON-Patch operations that set `fields` of `record` (at `path`).
async fn operations(
    c: &ConnectWiseConnector,
    record: &ExternalRecord,
    fields: &[&str],
    path: &str,
) -> Result<Vec<Value>, ConnectorError> {
    Ok(match record {
        ExternalRecord::Company(company) => mapping::replace_ops(&mapping::company_out(company)?, fields),
        ExternalRecord::Contact(contact) => {
            let mut ops = mapping::replace_ops(&mapping::contact_out(contact)?, fields);
            ops.extend(communication_ops(c, contact, fields, path).await?);
            ops
        }
        ExternalRecord::Opportunity(o) => mapping::replace_ops(&mapping::opportunity_out(o)?, fields),
        ExternalRecord::Activity(a) => {
            let mut ops = mapping::replace_ops(&mapping::activity_out(a)?, fields);
            if fields.contains(&"done") {
                ops.push(json!({"op": "replace", "path": "/status", "value": activity_status(c, a.done).await?}));
            }
            ops
        }
        other => return Err(not_written(System::ConnectWise, other.kind().unwrap_or(RecordKind::Company))),
    })
}

/// The operations setting a contact's email and phone when `fields` names them: they live
/// in its communication items, so the contact is read first to find their indexes.
async fn communication_ops(
    c: &ConnectWiseConnector,
    contact: &ExtContact,
    fields: &[&str],
    path: &str,
) -> Result<Vec<Value>, ConnectorError> {
    let wanted: Vec<(&str, Option<&str>)> = [("email", "Email", &contact.email), ("phone", "Phone", &contact.phone)]
        .into_iter()
        .filter(|(field, _, _)| fields.contains(field))
        .map(|(_, kind, value)| (kind, value.as_deref()))
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let answer = c.client.get(path, &[], &c.settings.retry).await?;
    let current: Contact = serde_json::from_slice(&answer.body)
        .map_err(|e| invalid(format!("ConnectWise answered {path} with a contact we cannot read: {e}")))?;
    Ok(mapping::communication_ops(&current.communication_items, &wanted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_domain::external::{ExtActivity, ExtOpportunity};

    #[test]
    fn quotes_and_backslashes_cannot_end_a_condition_string_early() {
        assert_eq!(quoted(" Acme "), r#""Acme""#);
        assert_eq!(quoted(r#"Bob's "Best" \ Co"#), r#""Bob's \"Best\" \\ Co""#);
    }

    fn company(name: &str) -> ExternalRecord {
        ExternalRecord::Company(ExtCompany::named(name))
    }

    #[test]
    fn companies_are_searched_by_name_and_nameless_ones_not_at_all() {
        assert_eq!(
            similar(&company("Acme \"Two\"")).unwrap(),
            Some(("conditions", r#"name = "Acme \"Two\"" and deletedFlag = false"#.to_string()))
        );
        assert_eq!(similar(&company("  ")).unwrap(), None);
    }

    #[test]
    fn contacts_are_searched_by_email_among_their_communication_items_else_by_name() {
        let mut contact = ExtContact {
            id: String::new(),
            first_name: "Ada".into(),
            last_name: "Quill".into(),
            email: Some("ada@x.example".into()),
            phone: None,
            title: None,
            company_id: None,
            types: Vec::new(),
            inactive: false,
            updated_at: None,
        };
        assert_eq!(
            similar(&ExternalRecord::Contact(contact.clone())).unwrap(),
            Some(("childConditions", r#"communicationItems/value = "ada@x.example""#.to_string()))
        );
        contact.email = None;
        assert_eq!(
            similar(&ExternalRecord::Contact(contact)).unwrap(),
            Some(("conditions", r#"firstName = "Ada" and lastName = "Quill""#.to_string()))
        );
    }

    #[test]
    fn opportunities_and_activities_are_searched_within_their_parent() {
        let o = ExtOpportunity {
            id: String::new(),
            name: "Backup".into(),
            status_id: None,
            stage: None,
            opportunity_type: None,
            close_date: None,
            value: None,
            line_items: Vec::new(),
            salesperson_id: None,
            company_id: Some("12".into()),
            contact_id: None,
            notes: None,
            updated_at: None,
        };
        assert_eq!(
            similar(&ExternalRecord::Opportunity(o.clone())).unwrap(),
            Some(("conditions", r#"name = "Backup" and company/id = 12"#.to_string()))
        );
        let bad = ExtOpportunity { company_id: Some("12 or 1=1".into()), ..o };
        assert_eq!(similar(&ExternalRecord::Opportunity(bad)).unwrap_err().kind, ErrorKind::Invalid);
        let a = ExtActivity {
            id: String::new(),
            subject: "Call".into(),
            body: None,
            type_id: None,
            contact_id: Some("7".into()),
            company_id: Some("12".into()),
            created_by: None,
            date: None,
            done: false,
            updated_at: None,
        };
        assert_eq!(
            similar(&ExternalRecord::Activity(a)).unwrap(),
            Some(("conditions", r#"name = "Call" and contact/id = 7"#.to_string()))
        );
    }

    #[test]
    fn kinds_tandem_does_not_write_are_refused() {
        let unreadable =
            ExternalRecord::Unreadable(tandem_domain::external::Unreadable { id: None, reason: "x".into() });
        assert_eq!(written_stage(&unreadable).unwrap_err().kind, ErrorKind::Invalid);
    }
}
