//! Salesforce records -> the domain's external records, and the tolerant page parse: one
//! record that does not fit becomes [`ExternalRecord::Unreadable`], never a failed page.
//! Activities: a Task's type id is `Task:<TaskSubtype>` (no subtype: `Task:Task`), an
//! Event's is `Event`.

use serde::de::DeserializeOwned;
use serde_json::Value;
use tandem_domain::external::{
    ExtActivity, ExtCompany, ExtContact, ExtOpportunity, ExtUser, ExternalRecord, Unreadable,
};
use tandem_domain::ledger::ExtVersion;
use tandem_domain::ports::{ConnectorError, ErrorKind};
use tandem_domain::{Stage, System, Timestamp};

use super::models::{Account, Contact, Event, Opportunity, QueryPage, Task, User, non_empty};

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
