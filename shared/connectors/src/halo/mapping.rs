//! HaloPSA wire types -> the domain's external records, and the tolerant page parse (bare
//! array or `{record_count, <plural>}` envelope): one record that does not fit becomes
//! [`ExternalRecord::Unreadable`], never a failed page.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tandem_domain::external::{
    ExtActivity, ExtCompany, ExtContact, ExtOpportunity, ExtUser, ExternalRecord, NO_TYPE, Unreadable,
};
use tandem_domain::ledger::ExtVersion;
use tandem_domain::ports::{ConnectorError, ErrorKind};
use tandem_domain::{Stage, System, Timestamp};

use super::models::{Action, Agent, Client, CrmNote, Opportunity, User, id_text, non_empty};

/// The activity type id of CRM notes (they have no outcome): offered as its own choice.
pub const CRM_NOTE_TYPE: &str = "crmnote";
/// The name shown for [`CRM_NOTE_TYPE`].
pub const CRM_NOTE_NAME: &str = "CRM Note";

/// What the actions of a page need from their tickets: ticket id -> (contact, client).
pub type TicketContacts = HashMap<i64, (Option<i64>, Option<i64>)>;

/// One parsed list answer: its records and `record_count` (when enveloped).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Parsed {
    pub records: Vec<ExternalRecord>,
    /// Every matching record, all pages together.
    pub record_count: Option<u64>,
    /// Rows on this page.
    pub rows: usize,
}

/// The envelope key of each list (psa-apis.md 2.3; `users`, `actions`, `notes` UNCONFIRMED).
pub fn envelope_key(stage: Stage, actions: bool) -> &'static str {
    match stage {
        Stage::Users => "agents",
        Stage::Companies => "clients",
        Stage::Contacts => "users",
        Stage::Opportunities | Stage::Solutions => "tickets",
        Stage::Activities if actions => "actions",
        Stage::Activities => "notes",
    }
}

/// Parses one list page of `stage` (for activities: CRM notes) into records.
pub fn parse_page(stage: Stage, body: &[u8]) -> Result<Vec<ExternalRecord>, ConnectorError> {
    Ok(parse_list(stage, body, false, &TicketContacts::new())?.records)
}

/// Parses one list answer. `actions`: the activities body is `/api/Actions`, whose contact
/// and client come from `tickets`.
pub fn parse_list(
    stage: Stage,
    body: &[u8],
    actions: bool,
    tickets: &TicketContacts,
) -> Result<Parsed, ConnectorError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| invalid(format!("HaloPSA answered a list that is not JSON: {e}")))?;
    let key = envelope_key(stage, actions);
    let (rows, record_count) = match value {
        Value::Array(rows) => (rows, None),
        Value::Object(mut m) => {
            let count = m.get("record_count").and_then(Value::as_u64);
            match m.remove(key) {
                Some(Value::Array(rows)) => (rows, count),
                _ => return Err(invalid(format!("HaloPSA's list answer has no '{key}' array"))),
            }
        }
        _ => return Err(invalid("HaloPSA answered a list that is neither an array nor an envelope".into())),
    };
    let n = rows.len();
    let records = match stage {
        Stage::Users => each(rows, |a: Agent| ExternalRecord::User(user(a))),
        Stage::Companies => each(rows, |c: Client| ExternalRecord::Company(company(c))),
        Stage::Contacts => each(rows, |u: User| ExternalRecord::Contact(contact(u))),
        Stage::Opportunities | Stage::Solutions => {
            each(rows, |o: Opportunity| ExternalRecord::Opportunity(opportunity(o)))
        }
        Stage::Activities if actions => {
            each(rows, |a: Action| action(a, tickets).map_or_else(ExternalRecord::Unreadable, ExternalRecord::Activity))
        }
        Stage::Activities => {
            each(rows, |n: CrmNote| note(n).map_or_else(ExternalRecord::Unreadable, ExternalRecord::Activity))
        }
    };
    Ok(Parsed { records, record_count, rows: n })
}

fn invalid(message: String) -> ConnectorError {
    ConnectorError::new(System::Halo, ErrorKind::Invalid, message)
}

fn each<W: DeserializeOwned>(rows: Vec<Value>, map: impl Fn(W) -> ExternalRecord) -> Vec<ExternalRecord> {
    rows.into_iter()
        .map(|value| {
            let id = match value.get("id") {
                Some(Value::Number(n)) => Some(n.to_string()),
                Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
                _ => None,
            };
            match serde_json::from_value::<W>(value) {
                Ok(wire) => map(wire),
                Err(e) => ExternalRecord::Unreadable(Unreadable { id, reason: e.to_string() }),
            }
        })
        .collect()
}

fn text(s: Option<String>) -> String {
    s.map(|s| s.trim().to_string()).unwrap_or_default()
}

/// `(first, last)`: the explicit fields, else `name` split at its first space.
fn split_name(first: Option<String>, last: Option<String>, name: Option<String>) -> (String, String) {
    let (f, l) = (text(first), text(last));
    if !f.is_empty() || !l.is_empty() {
        return (f, l);
    }
    let name = text(name);
    match name.split_once(' ') {
        Some((a, b)) => (a.to_string(), b.trim().to_string()),
        None => (name, String::new()),
    }
}

/// An agent. Its id is the numeric agent id as text (actions' `who_agentid` and
/// opportunities' `agent_id` refer to agents by it); its role is its first role's id (a
/// GUID; an integer from an older Halo, as text), the id of its role choice.
pub fn user(a: Agent) -> ExtUser {
    let (first_name, last_name) = split_name(a.firstname, a.surname, a.name);
    ExtUser {
        id: a.id.to_string(),
        email: non_empty(a.email.as_deref()),
        first_name,
        last_name,
        role: a.roles.into_iter().next().and_then(|r| r.id),
        inactive: a.isdisabled,
        updated_at: None,
    }
}

/// A client; its one type is `customertype` (0: none, so the "no type" choice decides).
pub fn company(c: Client) -> ExtCompany {
    ExtCompany {
        id: c.id.to_string(),
        name: text(c.name),
        phone: non_empty(c.main_phonenumber.as_deref()),
        website: non_empty(c.website.as_deref()),
        address: non_empty(c.address.as_deref()),
        types: id_text(c.customertype).into_iter().collect(),
        inactive: c.inactive,
        deleted: false,
        updated_at: non_empty(c.alastupdate.as_deref()).map(ExtVersion::from),
    }
}

/// A user (contact). Halo has no contact types: `types` is empty, so the "no type" choice
/// decides. `client_id` 0 (or absent) means no client.
pub fn contact(u: User) -> ExtContact {
    let (first_name, last_name) = split_name(u.firstname, u.surname, u.name);
    ExtContact {
        id: u.id.to_string(),
        first_name,
        last_name,
        email: non_empty(u.emailaddress.as_deref()),
        phone: non_empty(u.phonenumber.as_deref()).or_else(|| non_empty(u.mobilenumber.as_deref())),
        title: non_empty(u.title.as_deref()),
        company_id: id_text(u.client_id),
        types: Vec::new(),
        inactive: u.inactive,
        updated_at: non_empty(u.ulastupdate.as_deref()).map(ExtVersion::from),
    }
}

/// The expected close date of an opportunity. UNCONFIRMED (psa-apis.md 2.4: which of
/// `targetdate` / `deadlinedate` a tenant uses): `targetdate`, else `deadlinedate`; the day only.
pub fn close_date(o: &Opportunity) -> Option<String> {
    non_empty(o.targetdate.as_deref())
        .or_else(|| non_empty(o.deadlinedate.as_deref()))
        .map(|d| d.chars().take(10).collect())
}

/// An opportunity (a ticket of an opportunity type).
pub fn opportunity(o: Opportunity) -> ExtOpportunity {
    ExtOpportunity {
        id: o.id.to_string(),
        close_date: close_date(&o),
        name: text(o.summary),
        status_id: id_text(o.status_id),
        stage: None,
        opportunity_type: None,
        value: o.oppvalue,
        line_items: Vec::new(),
        salesperson_id: id_text(o.agent_id),
        company_id: id_text(o.client_id),
        contact_id: id_text(o.user_id),
        notes: non_empty(o.details.as_deref()),
        updated_at: non_empty(o.last_update.as_deref()).map(ExtVersion::from),
    }
}

fn date(id: &str, raw: Option<&str>) -> Result<Option<Timestamp>, Unreadable> {
    match non_empty(raw) {
        None => Ok(None),
        Some(raw) => {
            let with_zone = if raw.ends_with('Z') || raw.contains('+') || raw.len() == 10 {
                raw.clone()
            } else {
                format!("{raw}Z")
            };
            Timestamp::parse(&with_zone)
                .map(Some)
                .map_err(|e| Unreadable { id: Some(id.to_string()), reason: format!("datetime: {e}") })
        }
    }
}

/// A CRM note: type [`CRM_NOTE_TYPE`], contact `user_id`, creator `who_agentid`. Its id is
/// `note-{id}` (actions share the activity id space).
pub fn note(n: CrmNote) -> Result<ExtActivity, Unreadable> {
    let id = format!("note-{}", n.id);
    Ok(ExtActivity {
        date: date(&id, n.datetime.as_deref())?,
        subject: CRM_NOTE_NAME.to_string(),
        body: non_empty(n.note.as_deref()),
        type_id: Some(CRM_NOTE_TYPE.to_string()),
        contact_id: id_text(n.user_id),
        company_id: id_text(n.client_id),
        created_by: id_text(n.who_agentid),
        done: true,
        updated_at: non_empty(n.datetime.as_deref()).map(ExtVersion::from),
        id,
    })
}

/// An action: type = its outcome name, contact and client from its ticket, creator
/// `who_agentid`. Its id is `action-{id}`.
pub fn action(a: Action, tickets: &TicketContacts) -> Result<ExtActivity, Unreadable> {
    let id = format!("action-{}", a.id);
    let (contact, client) = a.ticket_id.and_then(|t| tickets.get(&t).copied()).unwrap_or((None, None));
    let outcome = non_empty(a.outcome.as_deref());
    Ok(ExtActivity {
        date: date(&id, a.datetime.as_deref())?,
        subject: outcome.clone().unwrap_or_default(),
        body: non_empty(a.note.as_deref()),
        type_id: outcome,
        contact_id: id_text(contact),
        company_id: id_text(client),
        created_by: id_text(a.who_agentid),
        done: true,
        updated_at: non_empty(a.last_updated.as_deref()).map(ExtVersion::from),
        id,
    })
}

// ------------------------------------------------------------------ writes (outgoing)
//
// The inverse of the read mapping above: an external record's writable fields as the
// elements Halo's `POST` arrays take (psa-apis.md 2.5), so that what is written reads back
// the same.

/// One writable field (a name of the description's `writable` list) and the Halo fields it
/// sets; `null` clears a field on update and is left out of a create.
#[derive(Clone, Debug, PartialEq)]
pub struct Out {
    pub field: &'static str,
    pub sets: Vec<(&'static str, Value)>,
}

fn out(field: &'static str, key: &'static str, value: Value) -> Out {
    Out { field, sets: vec![(key, value)] }
}

/// Trimmed text, or `null` when blank.
fn text_value(s: Option<&str>) -> Value {
    non_empty(s).map_or(Value::Null, Value::String)
}

/// A Halo id (digits only), refused before any request otherwise.
pub fn number(what: &str, id: &str) -> Result<i64, ConnectorError> {
    let id = id.trim();
    let digits =
        !id.is_empty() && id.len() <= crate::read::MAX_NUMERIC_DIGITS && id.bytes().all(|b| b.is_ascii_digit());
    digits
        .then(|| id.parse::<i64>().ok())
        .flatten()
        .ok_or_else(|| invalid(format!("{id:?} is not a HaloPSA {what} id (a number)")))
}

/// An id field (`client_id`, `user_id`, `status_id`...): the number, or `null` for none.
fn id_value(what: &str, id: Option<&str>) -> Result<Value, ConnectorError> {
    match id.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(Value::Null),
        Some(id) => Ok(json!(number(what, id)?)),
    }
}

/// A client's writable fields. Its type is `customertype`, `types[0]`; the "no type"
/// choice is 0, as the read takes it.
pub fn client_out(c: &ExtCompany) -> Result<Vec<Out>, ConnectorError> {
    let customertype = match c.types.first().map(String::as_str) {
        None => Value::Null,
        Some(NO_TYPE) => json!(0),
        Some(t) => json!(number("customer type", t)?),
    };
    Ok(vec![
        out("name", "name", json!(c.name.trim())),
        out("phone", "main_phonenumber", text_value(c.phone.as_deref())),
        out("website", "website", text_value(c.website.as_deref())),
        // The field the read takes the address from (UNCONFIRMED there too: H1's `Area` has
        // no single address field; Halo keeps addresses on the client's sites).
        out("address", "address", text_value(c.address.as_deref())),
        out("company_type", "customertype", customertype),
    ])
}

/// A user's (contact's) writable fields. A create also sends `name` ([`user_name`]); an
/// update of the first or last name leaves `name` as Halo holds it (UNCONFIRMED whether Halo
/// rebuilds it; the read takes `firstname` and `surname` first).
pub fn user_out(u: &ExtContact) -> Result<Vec<Out>, ConnectorError> {
    Ok(vec![
        out("first_name", "firstname", text_value(Some(&u.first_name))),
        out("last_name", "surname", text_value(Some(&u.last_name))),
        out("email", "emailaddress", text_value(u.email.as_deref())),
        out("phone", "phonenumber", text_value(u.phone.as_deref())),
        out("title", "title", text_value(u.title.as_deref())),
        // UNCONFIRMED (psa-apis.md 2.5: a user needs `site_id` "or `client_id`"): the client
        // alone is sent, taken to place the user at its main site.
        out("company", "client_id", id_value("client", u.company_id.as_deref())?),
    ])
}

/// The display `name` Halo requires of a new user (psa-apis.md 2.5): first and last name.
pub fn user_name(u: &ExtContact) -> Value {
    json!(format!("{} {}", u.first_name.trim(), u.last_name.trim()).trim())
}

/// An opportunity's writable fields. UNCONFIRMED (psa-apis.md 2.4: opportunities are
/// tickets of an opportunity ticket type): no `tickettype_id` is sent, `/Opportunities`
/// taken to give a new one the tenant's default opportunity type.
pub fn opportunity_out(o: &ExtOpportunity) -> Result<Vec<Out>, ConnectorError> {
    Ok(vec![
        out("name", "summary", json!(o.name.trim())),
        out("status", "status_id", id_value("status", o.status_id.as_deref())?),
        out("value", "oppvalue", o.value.map_or(Value::Null, |v| json!(v))),
        out("company", "client_id", id_value("client", o.company_id.as_deref())?),
        out("contact", "user_id", id_value("user", o.contact_id.as_deref())?),
    ])
}

/// An activity's writable fields as a client-level CRM note (`/CRMNote`, H1 `AreaNote`),
/// the one activity kind Halo is written as (its description: notes only). A note has no
/// subject: it reads back as [`CRM_NOTE_NAME`].
pub fn note_out(a: &ExtActivity) -> Result<Vec<Out>, ConnectorError> {
    Ok(vec![
        out("body", "note", text_value(a.body.as_deref())),
        out("date", "datetime", a.date.map_or(Value::Null, |d| json!(d.to_rfc3339()))),
        out("contact", "user_id", id_value("user", a.contact_id.as_deref())?),
        out("company", "client_id", id_value("client", a.company_id.as_deref())?),
    ])
}

/// A create's element: every field that has a value.
pub fn create_body(outs: &[Out]) -> Map<String, Value> {
    outs.iter()
        .flat_map(|o| o.sets.iter())
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

/// An update's element: the record's `id` and the fields `fields` names, nothing else
/// (Halo updates only the fields sent, psa-apis.md 2.5).
pub fn update_body(outs: &[Out], fields: &[&str], id: i64) -> Map<String, Value> {
    let mut body: Map<String, Value> = outs
        .iter()
        .filter(|o| fields.contains(&o.field))
        .flat_map(|o| o.sets.iter())
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect();
    body.insert("id".into(), json!(id));
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_enveloped_client_page_maps_into_companies() {
        let body = json!({"record_count": 9, "clients": [
            {"id": 5, "name": " Acme ", "inactive": false, "customertype": 2, "main_phonenumber": "555", "website": "acme.com"},
            {"id": 6, "name": "NoType", "customertype": 0},
            {"id": "bad"}
        ]});
        let p = parse_list(Stage::Companies, body.to_string().as_bytes(), false, &TicketContacts::new()).unwrap();
        assert_eq!((p.record_count, p.rows), (Some(9), 3));
        let ExternalRecord::Company(c) = &p.records[0] else { panic!() };
        assert_eq!((c.name.as_str(), c.types.as_slice()), ("Acme", &["2".to_string()][..]));
        let ExternalRecord::Company(c) = &p.records[1] else { panic!() };
        assert!(c.types.is_empty());
        assert!(matches!(&p.records[2], ExternalRecord::Unreadable(u) if u.id.as_deref() == Some("bad")));
    }

    #[test]
    fn agents_come_as_a_bare_array_keyed_by_numeric_id_with_their_first_roles_guid() {
        let sales = "5f0c8a2e-3b1d-4c6e-9a7f-1e2d3c4b5a69";
        let body = json!([{"id": 7, "name": "Ann Lee", "email": "a@x.com",
            "roles": [{"id": sales, "name": "Sales"}, {"id": "0b9e2f4a-7c1d-4e8f-a2b3-c4d5e6f70812"}]}]);
        let out = parse_page(Stage::Users, body.to_string().as_bytes()).unwrap();
        let ExternalRecord::User(u) = &out[0] else { panic!() };
        assert_eq!(
            (u.id.as_str(), u.role.as_deref(), u.first_name.as_str(), u.last_name.as_str()),
            ("7", Some(sales), "Ann", "Lee")
        );
    }

    #[test]
    fn an_agents_role_id_may_also_be_an_integer_as_older_halo_versions_send_it() {
        let body = json!([
            {"id": 7, "name": "Ann Lee", "roles": [{"id": 2, "name": "Sales"}, {"id": 4}]},
            {"id": 8, "name": "Bo Vance", "roles": [{"id": 0}]},
            {"id": 9, "name": "Cy Moor", "roles": [{"id": "  "}]},
            {"id": 10, "name": "Di Ruiz", "roles": null}
        ]);
        let out = parse_page(Stage::Users, body.to_string().as_bytes()).unwrap();
        let roles: Vec<Option<String>> =
            out.iter().map(|r| if let ExternalRecord::User(u) = r { u.role.clone() } else { panic!() }).collect();
        assert_eq!(roles, [Some("2".to_string()), None, None, None]);
    }

    #[test]
    fn contacts_without_a_client_have_no_company_and_no_types() {
        let body = json!({"users": [{"id": 3, "firstname": "A", "surname": "B", "client_id": 0, "emailaddress": ""}]});
        let out = parse_page(Stage::Contacts, body.to_string().as_bytes()).unwrap();
        let ExternalRecord::Contact(c) = &out[0] else { panic!() };
        assert_eq!((c.company_id.clone(), c.email.clone(), c.types.len()), (None, None, 0));
    }

    #[test]
    fn actions_take_contact_and_client_from_their_ticket() {
        let tickets = TicketContacts::from([(40, (Some(3), Some(5)))]);
        let body = json!({"actions": [{"id": 1, "ticket_id": 40, "outcome": "Phone Call", "who_agentid": 7, "datetime": "2024-01-02T03:04:05"}]});
        let p = parse_list(Stage::Activities, body.to_string().as_bytes(), true, &tickets).unwrap();
        let ExternalRecord::Activity(a) = &p.records[0] else { panic!() };
        assert_eq!(a.id, "action-1");
        assert_eq!(
            (a.contact_id.as_deref(), a.company_id.as_deref(), a.created_by.as_deref()),
            (Some("3"), Some("5"), Some("7"))
        );
        assert_eq!(a.type_id.as_deref(), Some("Phone Call"));
        assert!(a.date.is_some());
    }

    #[test]
    fn opportunities_prefer_the_target_date_and_keep_the_salesperson_id() {
        let body = json!({"tickets": [{"id": 9, "summary": "Deal", "agent_id": 1, "user_id": 0, "oppvalue": 10.5,
            "deadlinedate": "2024-05-01T00:00:00", "targetdate": "2024-04-01T00:00:00"}]});
        let out = parse_page(Stage::Opportunities, body.to_string().as_bytes()).unwrap();
        let ExternalRecord::Opportunity(o) = &out[0] else { panic!() };
        assert_eq!(
            (o.close_date.as_deref(), o.salesperson_id.as_deref(), o.contact_id.clone()),
            (Some("2024-04-01"), Some("1"), None)
        );
    }

    /// A create element as Halo would store it: the element and an id.
    fn stored(element: Map<String, Value>, id: i64) -> Vec<u8> {
        let mut stored = Value::Object(element);
        stored["id"] = json!(id);
        Value::Array(vec![stored]).to_string().into_bytes()
    }

    fn read_back(stage: Stage, element: Map<String, Value>, id: i64) -> ExternalRecord {
        parse_list(stage, &stored(element, id), false, &TicketContacts::new()).unwrap().records.remove(0)
    }

    #[test]
    fn a_written_client_reads_back_with_the_same_values() {
        let written = ExtCompany {
            id: "8".into(),
            name: "Larkspur Dental".into(),
            phone: Some("555-201-0199".into()),
            website: Some("larkspur.example".into()),
            address: Some("12 Harbour Road".into()),
            types: vec!["2".into()],
            inactive: false,
            deleted: false,
            updated_at: None,
        };
        let element = create_body(&client_out(&written).unwrap());
        assert_eq!(element["customertype"], 2);
        assert_eq!(read_back(Stage::Companies, element, 8), ExternalRecord::Company(written.clone()));
        let none = ExtCompany { types: vec![NO_TYPE.into()], ..written };
        assert_eq!(create_body(&client_out(&none).unwrap())["customertype"], 0);
    }

    #[test]
    fn a_written_user_reads_back_and_carries_the_display_name_halo_requires() {
        let written = ExtContact {
            id: "9".into(),
            first_name: "Ada".into(),
            last_name: "Quill".into(),
            email: Some("ada@larkspur.example".into()),
            phone: Some("555-201-0142".into()),
            title: Some("Operations Lead".into()),
            company_id: Some("8".into()),
            types: Vec::new(),
            inactive: false,
            updated_at: None,
        };
        assert_eq!(user_name(&written), "Ada Quill");
        let element = create_body(&user_out(&written).unwrap());
        assert_eq!(element["client_id"], 8);
        assert_eq!(read_back(Stage::Contacts, element, 9), ExternalRecord::Contact(written));
    }

    #[test]
    fn a_written_opportunity_reads_back_with_its_value() {
        let written = ExtOpportunity {
            id: "4".into(),
            name: "Managed backup rollout".into(),
            status_id: Some("3".into()),
            stage: None,
            opportunity_type: None,
            close_date: None,
            value: Some(1200.5),
            line_items: Vec::new(),
            salesperson_id: None,
            company_id: Some("8".into()),
            contact_id: Some("9".into()),
            notes: None,
            updated_at: None,
        };
        let element = create_body(&opportunity_out(&written).unwrap());
        assert_eq!(read_back(Stage::Opportunities, element, 4), ExternalRecord::Opportunity(written));
    }

    #[test]
    fn a_written_activity_is_a_crm_note_that_reads_back_with_its_body_date_and_links() {
        let written = ExtActivity {
            id: "note-6".into(),
            subject: CRM_NOTE_NAME.into(),
            body: Some("Talked through their backup gaps.".into()),
            type_id: Some(CRM_NOTE_TYPE.into()),
            contact_id: Some("9".into()),
            company_id: Some("8".into()),
            created_by: None,
            date: Some(Timestamp::parse("2026-11-20T15:30:00Z").unwrap()),
            done: true,
            updated_at: Some("2026-11-20T15:30:00Z".into()),
        };
        let element = create_body(&note_out(&written).unwrap());
        assert_eq!(read_back(Stage::Activities, element, 6), ExternalRecord::Activity(written));
    }

    #[test]
    fn an_update_element_holds_the_id_and_the_named_fields_only() {
        let company = ExtCompany {
            id: "8".into(),
            name: "Renamed".into(),
            phone: None,
            website: Some("x.example".into()),
            address: None,
            types: Vec::new(),
            inactive: false,
            deleted: false,
            updated_at: None,
        };
        let element = update_body(&client_out(&company).unwrap(), &["phone", "website"], 8);
        assert_eq!(Value::Object(element), json!({"id": 8, "main_phonenumber": null, "website": "x.example"}));
        let bad = ExtCompany { types: vec!["Client".into()], ..company };
        assert_eq!(client_out(&bad).unwrap_err().kind, ErrorKind::Invalid);
    }
}
