//! Salesforce records -> the domain's external records, and the tolerant page parse: one
//! record that does not fit becomes [`ExternalRecord::Unreadable`], never a failed page.
//! Activities: a Task's type id is `Task:<TaskSubtype>` (no subtype: `Task:Task`), an
//! Event's is `Event`.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tandem_domain::external::{
    ExtActivity, ExtCompany, ExtContact, ExtOpportunity, ExtUser, ExternalRecord, NO_TYPE, Unreadable,
};
use tandem_domain::ledger::ExtVersion;
use tandem_domain::ports::{ConnectorError, ErrorKind};
use tandem_domain::{Stage, System, Timestamp};

use super::models::{Account, Contact, Event, Opportunity, QueryPage, Task, User, non_empty};
use crate::body::{set, string};

/// The contact status field used when the credentials name none.
pub const DEFAULT_CONTACT_STATUS_FIELD: &str = "Contact_Status__c";
/// The activity type id of an Event.
pub const EVENT_TYPE: &str = "Event";

/// What the mapping needs beyond the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapOptions {
    /// The Contact picklist whose value is the contact's type (see [`DEFAULT_CONTACT_STATUS_FIELD`]).
    pub contact_status_field: String,
}

impl Default for MapOptions {
    fn default() -> Self {
        Self { contact_status_field: DEFAULT_CONTACT_STATUS_FIELD.into() }
    }
}

/// Parses one query page of `stage` with the default options. See [`parse_page_with`].
pub fn parse_page(stage: Stage, body: &[u8]) -> Result<Vec<ExternalRecord>, ConnectorError> {
    parse_page_with(stage, body, &MapOptions::default()).map(|(records, _)| records)
}

/// Parses one query page of `stage`: its records (each by its `attributes.type`, so an
/// activities page holds Tasks or Events) and its `nextRecordsUrl`. A body that is not a
/// query result is an [`ErrorKind::Invalid`] error.
pub fn parse_page_with(
    stage: Stage,
    body: &[u8],
    options: &MapOptions,
) -> Result<(Vec<ExternalRecord>, Option<String>), ConnectorError> {
    let not_a_result = |why: String| {
        ConnectorError::new(
            System::Salesforce,
            ErrorKind::Invalid,
            format!("Salesforce answered the {stage} query with something that is not a query result: {why}"),
        )
    };
    // Serde would read a struct from an array too: insist on the JSON object.
    let value: Value = serde_json::from_slice(body).map_err(|e| not_a_result(e.to_string()))?;
    if !value.is_object() {
        return Err(not_a_result("not a JSON object".into()));
    }
    let page: QueryPage = serde_json::from_value(value).map_err(|e| not_a_result(e.to_string()))?;
    let next = if page.done { None } else { page.next_records_url.clone() };
    let records = page.records.into_iter().map(|v| record(stage, v, options)).collect();
    Ok((records, next))
}

fn record(stage: Stage, value: Value, options: &MapOptions) -> ExternalRecord {
    let object = value.pointer("/attributes/type").and_then(Value::as_str).unwrap_or_default().to_string();
    match (stage, object.as_str()) {
        (Stage::Users, _) => wire(value, |u: User| ExternalRecord::User(user(u))),
        (Stage::Companies, _) => wire(value, |a: Account| ExternalRecord::Company(company(a))),
        (Stage::Contacts, _) => {
            let status =
                value.get(&options.contact_status_field).and_then(Value::as_str).and_then(|s| non_empty(Some(s)));
            wire(value, |c: Contact| ExternalRecord::Contact(contact(c, status.clone())))
        }
        (Stage::Opportunities, _) => wire(value, |o: Opportunity| ExternalRecord::Opportunity(opportunity(o))),
        (Stage::Activities, "Event") => wire(value, |e: Event| ExternalRecord::Activity(event(e))),
        (Stage::Activities, _) => wire(value, |t: Task| ExternalRecord::Activity(task(t))),
        (Stage::Solutions, _) => ExternalRecord::Unreadable(Unreadable {
            id: readable_id(&value),
            reason: "Salesforce has no catalog items".into(),
        }),
    }
}

/// A record read as `W` and mapped; one that does not fit, or whose `Id` is blank (nothing
/// could link to it), is unreadable.
fn wire<W: DeserializeOwned>(value: Value, map: impl FnOnce(W) -> ExternalRecord) -> ExternalRecord {
    let id = readable_id(&value);
    match serde_json::from_value::<W>(value) {
        Ok(_) if id.is_none() => ExternalRecord::Unreadable(Unreadable { id, reason: "its Id is blank".into() }),
        Ok(w) => map(w),
        Err(e) => ExternalRecord::Unreadable(Unreadable { id, reason: e.to_string() }),
    }
}

fn readable_id(value: &Value) -> Option<String> {
    value.get("Id").and_then(Value::as_str).and_then(|s| non_empty(Some(s)))
}

fn text(s: Option<String>) -> String {
    s.map(|s| s.trim().to_string()).unwrap_or_default()
}

/// A Salesforce dateTime (`2011-07-07T00:37:00.000+0000`, salesforce-api.md 2.4) or date.
pub fn parse_datetime(raw: &str) -> Option<Timestamp> {
    let raw = raw.trim();
    if raw.len() == 10 {
        return Timestamp::parse(&format!("{raw}T00:00:00Z")).ok();
    }
    // `get` rather than slicing: a tail that is not five ASCII bytes is no `+hhmm` offset
    // (and slicing inside a multi-byte character would panic).
    let offset = raw.len().checked_sub(5).and_then(|i| Some((raw.get(..i)?, raw.get(i..)?)));
    let fixed = match offset {
        Some((head, tail))
            if (tail.starts_with('+') || tail.starts_with('-')) && !tail.contains(':') && tail.is_ascii() =>
        {
            format!("{head}{}:{}", &tail[..3], &tail[3..])
        }
        _ => raw.to_string(),
    };
    Timestamp::parse(&fixed).ok()
}

/// A User: the role option is its profile id.
pub fn user(u: User) -> ExtUser {
    ExtUser {
        id: u.id.trim().to_string(),
        email: non_empty(u.email.as_deref()),
        first_name: text(u.first_name),
        last_name: text(u.last_name),
        role: non_empty(u.profile_id.as_deref()),
        inactive: u.is_active == Some(false),
        updated_at: non_empty(u.last_modified_date.as_deref()).map(ExtVersion::from),
    }
}

/// An Account: type option = the `Type` value. Accounts have no inactive flag.
pub fn company(a: Account) -> ExtCompany {
    let address = [
        a.billing_street.as_deref(),
        a.billing_city.as_deref(),
        a.billing_state.as_deref(),
        a.billing_postal_code.as_deref(),
        a.billing_country.as_deref(),
    ]
    .into_iter()
    .filter_map(|p| non_empty(p))
    .collect::<Vec<_>>()
    .join(", ");
    ExtCompany {
        id: a.id.trim().to_string(),
        name: text(a.name),
        phone: non_empty(a.phone.as_deref()),
        website: non_empty(a.website.as_deref()),
        address: (!address.is_empty()).then_some(address),
        types: non_empty(a.account_type.as_deref()).into_iter().collect(),
        inactive: false,
        deleted: a.is_deleted == Some(true),
        updated_at: non_empty(a.last_modified_date.as_deref()).map(ExtVersion::from),
    }
}

/// A Contact: its type is the status field's value (none when empty). Contacts have no
/// inactive flag.
pub fn contact(c: Contact, status: Option<String>) -> ExtContact {
    ExtContact {
        id: c.id.trim().to_string(),
        first_name: text(c.first_name),
        last_name: text(c.last_name),
        email: non_empty(c.email.as_deref()),
        phone: non_empty(c.phone.as_deref()),
        title: non_empty(c.title.as_deref()),
        company_id: non_empty(c.account_id.as_deref()),
        types: status.into_iter().collect(),
        inactive: false,
        updated_at: non_empty(c.last_modified_date.as_deref()).map(ExtVersion::from),
    }
}

/// An Opportunity: status and stage = `StageName`, value = `Amount`, salesperson = owner.
pub fn opportunity(o: Opportunity) -> ExtOpportunity {
    let stage = non_empty(o.stage_name.as_deref());
    ExtOpportunity {
        id: o.id.trim().to_string(),
        name: text(o.name),
        status_id: stage.clone(),
        stage,
        opportunity_type: non_empty(o.opportunity_type.as_deref()),
        close_date: non_empty(o.close_date.as_deref()),
        value: o.amount,
        line_items: Vec::new(),
        salesperson_id: non_empty(o.owner_id.as_deref()),
        company_id: non_empty(o.account_id.as_deref()),
        contact_id: None,
        notes: non_empty(o.description.as_deref()),
        updated_at: non_empty(o.last_modified_date.as_deref()).map(ExtVersion::from),
    }
}

/// Only Contact ids (key prefix `003`) can be an activity's contact; a Lead `WhoId` is not.
fn contact_id(who: Option<&str>) -> Option<String> {
    non_empty(who).filter(|w| w.starts_with("003"))
}

/// A Task: type `Task:<TaskSubtype>`, done when closed, dated by `ActivityDate`.
pub fn task(t: Task) -> ExtActivity {
    let subtype = non_empty(t.task_subtype.as_deref()).unwrap_or_else(|| "Task".into());
    ExtActivity {
        id: t.id.trim().to_string(),
        subject: text(t.subject),
        body: non_empty(t.description.as_deref()),
        type_id: Some(format!("Task:{subtype}")),
        contact_id: contact_id(t.who_id.as_deref()),
        company_id: non_empty(t.account_id.as_deref()),
        created_by: non_empty(t.created_by_id.as_deref()),
        date: t.activity_date.as_deref().and_then(parse_datetime),
        done: t.is_closed == Some(true),
        updated_at: non_empty(t.last_modified_date.as_deref()).map(ExtVersion::from),
    }
}

/// An Event: type `Event`, dated by its start, done once it has ended (judged at read time).
pub fn event(e: Event) -> ExtActivity {
    let end = e.end_date_time.as_deref().and_then(parse_datetime);
    let now = Timestamp::from_datetime(time::OffsetDateTime::now_utc());
    ExtActivity {
        id: e.id.trim().to_string(),
        subject: text(e.subject),
        body: non_empty(e.description.as_deref()),
        type_id: Some(EVENT_TYPE.into()),
        contact_id: contact_id(e.who_id.as_deref()),
        company_id: non_empty(e.account_id.as_deref()),
        created_by: non_empty(e.created_by_id.as_deref()),
        date: e.start_date_time.as_deref().and_then(parse_datetime),
        done: end.is_some_and(|end| end.unix() <= now.unix()),
        updated_at: non_empty(e.last_modified_date.as_deref()).map(ExtVersion::from),
    }
}

// Outbound: the domain's records -> sObject write bodies (salesforce-api.md 3.1-3.2), the
// inverse of the mapping above, so that a record written reads back with the values sent.

/// A write body: field API name -> value.
pub type Body = Map<String, Value>;

/// The Task `Status` of a done activity (closes it: `IsClosed`), and of one not done
/// (salesforce-api.md 3.2: the standard values, org-configurable, UNCONFIRMED).
pub const TASK_DONE: &str = "Completed";
/// See [`TASK_DONE`].
pub const TASK_OPEN: &str = "Not Started";

fn unwritten(object: &str, field: &str) -> ConnectorError {
    ConnectorError::new(
        System::Salesforce,
        ErrorKind::Invalid,
        format!("Tandem does not write the {field} of a Salesforce {object}"),
    )
}

/// An Account body: `name` -> `Name`, `phone`, `website`, `company_type` -> `Type` (the
/// first type; "no type" clears it), and `address` as one text in `BillingStreet` with the
/// other billing parts cleared, since the read joins them all into the one address.
pub fn account_body(a: &ExtCompany, fields: &[&str], creating: bool) -> Result<Body, ConnectorError> {
    let mut body = Body::new();
    for field in fields {
        match *field {
            "name" => set(&mut body, "Name", string(Some(&a.name)), creating),
            "phone" => set(&mut body, "Phone", string(a.phone.as_deref()), creating),
            "website" => set(&mut body, "Website", string(a.website.as_deref()), creating),
            "company_type" => {
                let first = a.types.first().map(String::as_str).filter(|t| *t != NO_TYPE);
                set(&mut body, "Type", string(first), creating)
            }
            "address" => {
                set(&mut body, "BillingStreet", string(a.address.as_deref()), creating);
                for part in ["BillingCity", "BillingState", "BillingPostalCode", "BillingCountry"] {
                    set(&mut body, part, None, creating);
                }
            }
            other => return Err(unwritten("Account", other)),
        }
    }
    Ok(body)
}

/// A Contact body: `first_name`, `last_name`, `email`, `phone`, `title` to their fields,
/// `company` -> `AccountId`.
pub fn contact_body(c: &ExtContact, fields: &[&str], creating: bool) -> Result<Body, ConnectorError> {
    let mut body = Body::new();
    for field in fields {
        match *field {
            "first_name" => set(&mut body, "FirstName", string(Some(&c.first_name)), creating),
            "last_name" => set(&mut body, "LastName", string(Some(&c.last_name)), creating),
            "email" => set(&mut body, "Email", string(c.email.as_deref()), creating),
            "phone" => set(&mut body, "Phone", string(c.phone.as_deref()), creating),
            "title" => set(&mut body, "Title", string(c.title.as_deref()), creating),
            "company" => set(&mut body, "AccountId", string(c.company_id.as_deref()), creating),
            other => return Err(unwritten("Contact", other)),
        }
    }
    Ok(body)
}

/// An Opportunity body: `name`, `status` -> `StageName`, `close_date` -> `CloseDate`,
/// `value` -> `Amount`, `company` -> `AccountId`.
pub fn opportunity_body(o: &ExtOpportunity, fields: &[&str], creating: bool) -> Result<Body, ConnectorError> {
    let mut body = Body::new();
    for field in fields {
        match *field {
            "name" => set(&mut body, "Name", string(Some(&o.name)), creating),
            "status" => set(&mut body, "StageName", string(o.status_id.as_deref()), creating),
            "close_date" => set(&mut body, "CloseDate", string(o.close_date.as_deref()), creating),
            "value" => set(&mut body, "Amount", o.value.map(Value::from), creating),
            "company" => set(&mut body, "AccountId", string(o.company_id.as_deref()), creating),
            other => return Err(unwritten("Opportunity", other)),
        }
    }
    Ok(body)
}

/// A Task body (or, on an update, an Event's): `subject`, `body` -> `Description`,
/// `contact` -> `WhoId`, and for a Task `done` -> `Status` ([`TASK_DONE`] or
/// [`TASK_OPEN`]). An Event is done once it has ended, which no field sets: its `done` is
/// refused.
pub fn activity_body(object: &str, a: &ExtActivity, fields: &[&str], creating: bool) -> Result<Body, ConnectorError> {
    let mut body = Body::new();
    for field in fields {
        match *field {
            "subject" => set(&mut body, "Subject", string(Some(&a.subject)), creating),
            "body" => set(&mut body, "Description", string(a.body.as_deref()), creating),
            "contact" => set(&mut body, "WhoId", string(a.contact_id.as_deref()), creating),
            "done" if object == "Task" => {
                set(&mut body, "Status", string(Some(if a.done { TASK_DONE } else { TASK_OPEN })), creating)
            }
            other => return Err(unwritten(object, other)),
        }
    }
    Ok(body)
}

/// The due day a new Task gets from an activity's date: `ActivityDate` holds a date only
/// (salesforce-api.md 3.2), so the time is dropped and the date reads back as that day's
/// midnight (UTC). That is why `date` is not among the writable fields, which must read
/// back as sent; a new Task still gets its day.
pub fn task_due_day(a: &ExtActivity) -> Option<(&'static str, Value)> {
    a.date.map(|d| ("ActivityDate", Value::String(d.day())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_account_body_sends_the_first_type_and_the_address_as_the_street() {
        let account = ExtCompany {
            id: "0018d0000000001AAA".into(),
            name: "Acme".into(),
            phone: Some("555".into()),
            website: None,
            address: Some("1 Main St, Tampa".into()),
            types: vec![NO_TYPE.into()],
            inactive: false,
            deleted: false,
            updated_at: None,
        };
        let body = account_body(&account, &["company_type", "address", "website"], false).unwrap();
        assert_eq!(
            Value::Object(body),
            json!({"Type": null, "BillingStreet": "1 Main St, Tampa", "BillingCity": null, "BillingState": null,
                "BillingPostalCode": null, "BillingCountry": null, "Website": null})
        );
        let typed = ExtCompany { types: vec!["Prospect".into(), "Other".into()], ..account };
        let body = account_body(&typed, &["name", "company_type", "website"], true).unwrap();
        assert_eq!(Value::Object(body), json!({"Name": "Acme", "Type": "Prospect"}));
    }

    #[test]
    fn a_task_body_closes_a_done_activity_and_an_event_refuses_done() {
        let activity = ExtActivity {
            id: String::new(),
            subject: "Call".into(),
            body: None,
            type_id: None,
            contact_id: Some("0038d0000000001AAA".into()),
            company_id: None,
            created_by: None,
            date: Timestamp::parse("2026-11-20T15:30:00Z").ok(),
            done: true,
            updated_at: None,
        };
        let body = activity_body("Task", &activity, &["subject", "done", "contact"], true).unwrap();
        assert_eq!(Value::Object(body), json!({"Subject": "Call", "Status": TASK_DONE, "WhoId": "0038d0000000001AAA"}));
        assert_eq!(task_due_day(&activity), Some(("ActivityDate", json!("2026-11-20"))));
        assert_eq!(activity_body("Event", &activity, &["done"], false).unwrap_err().kind, ErrorKind::Invalid);
    }

    #[test]
    fn a_datetime_with_multi_byte_characters_near_its_end_is_unreadable_not_a_panic() {
        for raw in ["é0000", "2011-07-07T00:37:00.000+0é0", "2011-07-07T00:37:00漢00"] {
            assert_eq!(parse_datetime(raw), None, "{raw}");
        }
        assert!(parse_datetime("2011-07-07T00:37:00.000+0000").is_some());
    }

    #[test]
    fn a_record_with_a_blank_id_is_unreadable() {
        let body = page(json!([{"attributes": {"type": "Account"}, "Id": "  ", "Name": "Blank"}]));
        let records = parse_page(Stage::Companies, &body).unwrap();
        assert!(matches!(&records[0], ExternalRecord::Unreadable(u) if u.id.is_none()), "{records:?}");
    }

    fn page(records: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"totalSize": 1, "done": true, "records": records})).unwrap()
    }

    #[test]
    fn salesforce_datetimes_without_a_colon_in_the_offset_parse() {
        assert_eq!(parse_datetime("2011-07-07T00:37:00.000+0000").map(|t| t.unix()), Some(1_309_999_020));
        assert_eq!(parse_datetime("2024-01-01").map(|t| t.unix()), Some(1_704_067_200));
        assert_eq!(parse_datetime("2024-01-01T01:00:00.000+0100").map(|t| t.unix()), Some(1_704_067_200));
        assert!(parse_datetime("soon").is_none());
    }

    #[test]
    fn the_recorded_paginated_page_gives_its_next_records_url() {
        let body = include_str!("../../tests/fixtures/salesforce_query_paginated_first_page_response.json");
        let (records, next) = parse_page_with(Stage::Companies, body.as_bytes(), &MapOptions::default()).unwrap();
        assert_eq!(next.as_deref(), Some("/services/data/v26.0/query/01gD"));
        assert!(matches!(records[0], ExternalRecord::Unreadable(_)), "a record without Id is unreadable");
    }

    #[test]
    fn contacts_take_their_type_from_the_configured_status_field() {
        let body = page(json!([{"attributes": {"type": "Contact"}, "Id": "0038d0000000001AAA", "LastName": "Doe",
            "AccountId": "0018d0000000001AAA", "Email": "J@X.com", "Stage__c": "Hot", "Contact_Status__c": "New"}]));
        let options = MapOptions { contact_status_field: "Stage__c".into() };
        let (records, _) = parse_page_with(Stage::Contacts, &body, &options).unwrap();
        let ExternalRecord::Contact(c) = &records[0] else { panic!("{records:?}") };
        assert_eq!(c.types, ["Hot"]);
        assert_eq!(c.company_id.as_deref(), Some("0018d0000000001AAA"));
        let ExternalRecord::Contact(c) = &parse_page(Stage::Contacts, &body).unwrap()[0] else { panic!() };
        assert_eq!(c.types, ["New"]);
    }

    #[test]
    fn tasks_and_events_share_the_activities_page_with_their_own_types() {
        let body = page(json!([
            {"attributes": {"type": "Task"}, "Id": "00T8d0000000001AAA", "TaskSubtype": "Call", "WhoId": "0038d0000000001AAA",
             "CreatedById": "0058d0000000001AAA", "ActivityDate": "2024-02-01", "IsClosed": true, "Subject": " Call "},
            {"attributes": {"type": "Task"}, "Id": "00T8d0000000002AAA", "TaskSubtype": null, "WhoId": "00Q8d0000000001AAA"},
            {"attributes": {"type": "Event"}, "Id": "00U8d0000000001AAA", "StartDateTime": "2020-01-01T10:00:00.000+0000",
             "EndDateTime": "2020-01-01T11:00:00.000+0000", "WhoId": "0038d0000000002AAA"}
        ]));
        let records = parse_page(Stage::Activities, &body).unwrap();
        let acts: Vec<&ExtActivity> = records
            .iter()
            .filter_map(|r| match r {
                ExternalRecord::Activity(a) => Some(a),
                _ => None,
            })
            .collect();
        assert_eq!(acts[0].type_id.as_deref(), Some("Task:Call"));
        assert!(acts[0].done && acts[0].subject == "Call");
        assert_eq!(acts[1].type_id.as_deref(), Some("Task:Task"));
        assert_eq!(acts[1].contact_id, None, "a lead is not a contact");
        assert_eq!(acts[2].type_id.as_deref(), Some("Event"));
        assert!(acts[2].done);
    }

    #[test]
    fn an_account_without_type_has_no_types_and_a_wrong_field_type_is_unreadable() {
        let body = page(json!([
            {"attributes": {"type": "Account"}, "Id": "0018d0000000001AAA", "Name": "Acme", "Type": null, "BillingCity": "Tampa"},
            {"attributes": {"type": "Account"}, "Id": "0018d0000000002AAA", "Name": 42}
        ]));
        let records = parse_page(Stage::Companies, &body).unwrap();
        let ExternalRecord::Company(a) = &records[0] else { panic!() };
        assert!(a.types.is_empty() && a.address.as_deref() == Some("Tampa"));
        assert!(matches!(&records[1], ExternalRecord::Unreadable(u) if u.id.as_deref() == Some("0018d0000000002AAA")));
        assert_eq!(parse_page(Stage::Users, b"[]").unwrap_err().kind, ErrorKind::Invalid);
    }
}
