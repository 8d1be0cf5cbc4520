//! Syncro wire types -> the domain's external records, and the tolerant page parse: one
//! record that does not fit becomes [`ExternalRecord::Unreadable`], never a failed page.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tandem_domain::external::{ExtCompany, ExtContact, ExtOpportunity, ExtUser, ExternalRecord, Unreadable};
use tandem_domain::ledger::ExtVersion;
use tandem_domain::ports::{ConnectorError, ErrorKind};
use tandem_domain::{RecordKind, Stage, System};

use super::models::{Contact, Customer, Lead, Meta, User, UserEnvelope, non_empty};
use crate::body::{set, string};

/// One parsed list page: its records and its `meta`.
#[derive(Clone, Debug, Default)]
pub struct ListPage {
    /// The records, in the order Syncro sent them.
    pub records: Vec<ExternalRecord>,
    /// The page's `meta`, when it had a readable one.
    pub meta: Option<Meta>,
}

fn invalid(message: String) -> ConnectorError {
    ConnectorError::new(System::Syncro, ErrorKind::Invalid, message)
}

/// Parses one answer of `stage` into records: a list envelope (`{customers|contacts|leads:
/// [...], meta}`) for companies, contacts and opportunities, a `{user: {...}}` detail for
/// users. See [`parse_list`].
pub fn parse_page(stage: Stage, body: &[u8]) -> Result<Vec<ExternalRecord>, ConnectorError> {
    match stage {
        Stage::Users => Ok(vec![parse_user(body)?]),
        _ => Ok(parse_list(stage, body)?.records),
    }
}

/// Parses a list envelope of `stage`. Each element is read on its own; a misfit becomes
/// [`Unreadable`] with the serde error text. A body without the envelope's array is an
/// [`ErrorKind::Invalid`] error naming the endpoint.
pub fn parse_list(stage: Stage, body: &[u8]) -> Result<ListPage, ConnectorError> {
    let endpoint = super::stage_path(stage)?;
    let key = endpoint.trim_start_matches('/');
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("Syncro answered {endpoint} with something that is not JSON: {e}")))?;
    let meta = value.get("meta").and_then(|m| serde_json::from_value::<Meta>(m.clone()).ok());
    let Some(Value::Array(items)) = value.get(key) else {
        return Err(invalid(format!("Syncro answered {endpoint} without a \"{key}\" list")));
    };
    let records = match stage {
        Stage::Companies => each(items, |c: Customer| ExternalRecord::Company(company(c))),
        Stage::Contacts => each(items, |c: Contact| ExternalRecord::Contact(contact(c))),
        Stage::Opportunities => each(items, |l: Lead| ExternalRecord::Opportunity(opportunity(l))),
        Stage::Users | Stage::Solutions | Stage::Activities => {
            return Err(invalid(format!("Syncro has no list page for the {stage} stage")));
        }
    };
    Ok(ListPage { records, meta })
}

/// A `/users/{id}` detail: a user, or unreadable.
pub fn parse_user(body: &[u8]) -> Result<ExternalRecord, ConnectorError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("Syncro answered /users/{{id}} with something that is not JSON: {e}")))?;
    let id = value.get("user").and_then(readable_id);
    Ok(match serde_json::from_value::<UserEnvelope>(value) {
        Ok(u) => ExternalRecord::User(user(u.user)),
        Err(e) => ExternalRecord::Unreadable(Unreadable { id, reason: e.to_string() }),
    })
}

fn each<W: DeserializeOwned>(items: &[Value], map: impl Fn(W) -> ExternalRecord) -> Vec<ExternalRecord> {
    items
        .iter()
        .map(|value| match serde_json::from_value::<W>(value.clone()) {
            Ok(wire) => map(wire),
            Err(e) => ExternalRecord::Unreadable(Unreadable { id: readable_id(value), reason: e.to_string() }),
        })
        .collect()
}

/// An element's `id` as text, if it has a number or string there.
fn readable_id(value: &Value) -> Option<String> {
    match value.get("id")? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

/// `"Mary Van Dyke"` -> (`"Mary"`, `"Van Dyke"`); one word is a first name.
pub fn split_name(full: &str) -> (String, String) {
    let mut words = full.split_whitespace();
    let first = words.next().unwrap_or_default().to_string();
    (first, words.collect::<Vec<_>>().join(" "))
}

/// A user. Its id is the numeric id as text (leads' `user_id` refers to it); its role is
/// the group name. Syncro users have no inactive flag.
pub fn user(u: User) -> ExtUser {
    let (first_name, last_name) = split_name(u.full_name.as_deref().unwrap_or_default());
    ExtUser {
        id: u.id.to_string(),
        email: non_empty(u.email.as_deref()),
        first_name,
        last_name,
        role: non_empty(u.group.as_deref()),
        inactive: false,
        updated_at: non_empty(u.updated_at.as_deref()).map(ExtVersion::from),
    }
}

/// The company name of a customer: `business_name`, else the person's
/// `"firstname lastname"`, else `business_then_name`.
pub fn customer_name(c: &Customer) -> String {
    if let Some(b) = non_empty(c.business_name.as_deref()) {
        return b;
    }
    let person = [c.firstname.as_deref(), c.lastname.as_deref()]
        .into_iter()
        .filter_map(|s| non_empty(s))
        .collect::<Vec<_>>()
        .join(" ");
    if person.is_empty() { non_empty(c.business_then_name.as_deref()).unwrap_or_default() } else { person }
}

/// A customer. Syncro has no website and no types; `disabled` makes it inactive.
pub fn company(c: Customer) -> ExtCompany {
    let state_zip =
        [c.state.as_deref(), c.zip.as_deref()].into_iter().filter_map(|s| non_empty(s)).collect::<Vec<_>>().join(" ");
    let parts: Vec<String> = [c.address.as_deref(), c.address_2.as_deref(), c.city.as_deref()]
        .into_iter()
        .filter_map(non_empty)
        .chain(Some(state_zip).filter(|s| !s.is_empty()))
        .collect();
    ExtCompany {
        id: c.id.to_string(),
        name: customer_name(&c),
        phone: non_empty(c.phone.as_deref()),
        website: None,
        address: if parts.is_empty() { None } else { Some(parts.join(", ")) },
        types: Vec::new(),
        inactive: c.disabled,
        deleted: false,
        updated_at: non_empty(c.updated_at.as_deref()).map(ExtVersion::from),
    }
}

/// A contact: first/last split from `name`; no types and no inactive flag.
pub fn contact(c: Contact) -> ExtContact {
    let (first_name, last_name) = split_name(c.name.as_deref().unwrap_or_default());
    ExtContact {
        id: c.id.to_string(),
        first_name,
        last_name,
        email: non_empty(c.email.as_deref()),
        phone: non_empty(c.phone.as_deref()).or_else(|| non_empty(c.mobile.as_deref())),
        title: non_empty(c.title.as_deref()),
        company_id: c.customer_id.map(|id| id.to_string()),
        types: Vec::new(),
        inactive: false,
        updated_at: non_empty(c.updated_at.as_deref()).map(ExtVersion::from),
    }
}

/// A lead. Named by `business_then_name`, else the person; the status name is the option
/// id; no stage, type or close date (psa-apis.md 3.4).
pub fn opportunity(l: Lead) -> ExtOpportunity {
    let person = [l.first_name.as_deref(), l.last_name.as_deref()]
        .into_iter()
        .filter_map(|s| non_empty(s))
        .collect::<Vec<_>>()
        .join(" ");
    let name = non_empty(l.business_then_name.as_deref())
        .or_else(|| Some(person).filter(|p| !p.is_empty()))
        .unwrap_or_else(|| format!("Lead {}", l.id));
    ExtOpportunity {
        id: l.id.to_string(),
        value: l.amount(),
        name,
        status_id: non_empty(l.status.as_deref()),
        stage: None,
        opportunity_type: None,
        close_date: None,
        line_items: Vec::new(),
        salesperson_id: l.user_id.map(|id| id.to_string()),
        company_id: l.customer_id.map(|id| id.to_string()),
        contact_id: l.contact_id.map(|id| id.to_string()),
        notes: non_empty(l.ticket_description.as_deref()),
        updated_at: non_empty(l.updated_at.as_deref()).map(ExtVersion::from),
    }
}

/// Parses a single-record answer of `stage` (`GET`, `POST` or `PUT` of `/{plural}[/{id}]`):
/// customers and leads come wrapped in their singular (`{"customer": {...}}`), contacts
/// bare (psa-apis.md 3.3). The record is put in the list envelope so it is mapped exactly
/// as a list page maps it.
pub fn parse_one(stage: Stage, body: &[u8]) -> Result<Option<ExternalRecord>, ConnectorError> {
    let plural = super::stage_path(stage)?;
    let mut value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("Syncro answered {plural}/{{id}} with something that is not JSON: {e}")))?;
    let record = match super::single_wrapper(stage) {
        Some(key) => value
            .get_mut(key)
            .map(Value::take)
            .ok_or_else(|| invalid(format!("Syncro answered {plural}/{{id}} without a \"{key}\" object")))?,
        None => value,
    };
    let envelope = serde_json::json!({ plural.trim_start_matches('/'): [record] });
    let body = serde_json::to_vec(&envelope).map_err(|e| invalid(e.to_string()))?;
    crate::read::only(System::Syncro, parse_list(stage, &body)?.records)
}

// Outbound: the domain's records -> Syncro write bodies (psa-apis.md 3.4-3.5), the inverse
// of the mapping above, so that a record written reads back with the values sent.

/// A write body: Syncro field name -> value.
pub type Body = Map<String, Value>;

/// A reference to another Syncro record (a customer, a contact): its numeric id as a JSON
/// number, as the write bodies type it; an id that is not a number is refused.
fn reference(kind: RecordKind, id: Option<&str>) -> Result<Option<Value>, ConnectorError> {
    id.map(|id| crate::read::numeric_id(System::Syncro, kind, id).map(Value::from)).transpose()
}

fn unwritten(kind: RecordKind, field: &str) -> ConnectorError {
    invalid(format!("Syncro has no field for the {field} of a {kind}"))
}

/// A customer body: `name` -> `business_name` (read back first, psa-apis.md 3.4), `phone`,
/// and `address` as one line in `address` with `address_2`, `city`, `state` and `zip`
/// cleared, since the read joins them all into the one address.
pub fn customer_body(c: &ExtCompany, fields: &[&str], creating: bool) -> Result<Body, ConnectorError> {
    let mut body = Body::new();
    for field in fields {
        match *field {
            "name" => set(&mut body, "business_name", string(Some(&c.name)), creating),
            "phone" => set(&mut body, "phone", string(c.phone.as_deref()), creating),
            "address" => {
                set(&mut body, "address", string(c.address.as_deref()), creating);
                for part in ["address_2", "city", "state", "zip"] {
                    set(&mut body, part, None, creating);
                }
            }
            other => return Err(unwritten(RecordKind::Company, other)),
        }
    }
    Ok(body)
}

/// The one `name` of a contact: first and last name, as [`split_name`] splits it back (a
/// first name holding a space reads back split at that space).
pub fn contact_name(first: &str, last: &str) -> String {
    [first.trim(), last.trim()].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ")
}

/// A contact body. Syncro keeps one `name` and requires it on every update (Y1: the PUT
/// body's only required field), so `name` is always sent: the record's first and last
/// names where `fields` names them, else those of `held` (the contact as Syncro holds it;
/// `None` on a create). `company` -> `customer_id`; `email`, `phone`, `title` as they are.
pub fn contact_body(
    c: &ExtContact,
    fields: &[&str],
    creating: bool,
    held: Option<&ExtContact>,
) -> Result<Body, ConnectorError> {
    let part = |field: &str, ours: &str, theirs: Option<&str>| match theirs {
        Some(held) if !fields.contains(&field) => held.to_string(),
        _ => ours.to_string(),
    };
    let first = part("first_name", &c.first_name, held.map(|h| h.first_name.as_str()));
    let last = part("last_name", &c.last_name, held.map(|h| h.last_name.as_str()));
    let mut body = Body::new();
    body.insert("name".into(), Value::String(contact_name(&first, &last)));
    for field in fields {
        match *field {
            "first_name" | "last_name" => {}
            "email" => set(&mut body, "email", string(c.email.as_deref()), creating),
            "phone" => set(&mut body, "phone", string(c.phone.as_deref()), creating),
            "title" => set(&mut body, "title", string(c.title.as_deref()), creating),
            "company" => {
                set(&mut body, "customer_id", reference(RecordKind::Company, c.company_id.as_deref())?, creating)
            }
            other => return Err(unwritten(RecordKind::Contact, other)),
        }
    }
    Ok(body)
}

/// A lead body: `name` -> `business_name` (read back as `business_then_name`), `status` (the
/// status name is the option id), `company` -> `customer_id`, `contact` -> `contact_id`.
pub fn lead_body(o: &ExtOpportunity, fields: &[&str], creating: bool) -> Result<Body, ConnectorError> {
    let mut body = Body::new();
    for field in fields {
        match *field {
            "name" => set(&mut body, "business_name", string(Some(&o.name)), creating),
            "status" => set(&mut body, "status", string(o.status_id.as_deref()), creating),
            "company" => {
                set(&mut body, "customer_id", reference(RecordKind::Company, o.company_id.as_deref())?, creating)
            }
            "contact" => {
                set(&mut body, "contact_id", reference(RecordKind::Contact, o.contact_id.as_deref())?, creating)
            }
            other => return Err(unwritten(RecordKind::Opportunity, other)),
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_pages_map_into_records() {
        let customers =
            parse_list(Stage::Companies, include_bytes!("../../tests/fixtures/syncro_customers_list.json")).unwrap();
        assert_eq!(customers.meta.and_then(|m| m.total_pages), Some(1));
        let ExternalRecord::Company(c) = &customers.records[0] else { panic!("{:?}", customers.records) };
        assert_eq!((c.name.as_str(), c.phone.as_deref(), c.types.len()), ("Walkin Customer", Some("123"), 0));
        let contacts =
            parse_page(Stage::Contacts, include_bytes!("../../tests/fixtures/syncro_contacts_list.json")).unwrap();
        let ExternalRecord::Contact(k) = &contacts[0] else { panic!("{contacts:?}") };
        assert_eq!((k.first_name.as_str(), k.last_name.as_str(), k.company_id.as_deref()), ("Boba", "Fett", Some("1")));
        let leads =
            parse_page(Stage::Opportunities, include_bytes!("../../tests/fixtures/syncro_leads_list.json")).unwrap();
        let ExternalRecord::Opportunity(o) = &leads[0] else { panic!("{leads:?}") };
        assert_eq!(
            (o.name.as_str(), o.status_id.as_deref(), o.salesperson_id.as_deref()),
            ("Klocko-Stracke", Some("New"), None)
        );
        let user = parse_page(Stage::Users, include_bytes!("../../tests/fixtures/syncro_user_get.json")).unwrap();
        let ExternalRecord::User(u) = &user[0] else { panic!("{user:?}") };
        assert_eq!((u.id.as_str(), u.role.as_deref(), u.last_name.as_str()), ("1", Some("Admins"), "Name"));
    }

    fn customer() -> ExtCompany {
        ExtCompany {
            id: "1".into(),
            name: "Acme".into(),
            phone: None,
            website: Some("https://acme.example".into()),
            address: Some("1 Main St".into()),
            types: Vec::new(),
            inactive: false,
            deleted: false,
            updated_at: None,
        }
    }

    #[test]
    fn a_create_leaves_out_what_has_no_value_and_an_update_clears_it() {
        let created = customer_body(&customer(), &["name", "phone", "address"], true).unwrap();
        assert_eq!(Value::Object(created), serde_json::json!({"business_name": "Acme", "address": "1 Main St"}));
        let updated = customer_body(&customer(), &["phone", "address"], false).unwrap();
        assert_eq!(
            Value::Object(updated),
            serde_json::json!({"phone": null, "address": "1 Main St", "address_2": null, "city": null, "state": null, "zip": null})
        );
        assert_eq!(customer_body(&customer(), &["website"], false).unwrap_err().kind, ErrorKind::Invalid);
    }

    #[test]
    fn a_written_customer_reads_back_as_sent() {
        let body = customer_body(&customer(), &["name", "phone", "address"], true).unwrap();
        let mut wire = Value::Object(body);
        wire["id"] = serde_json::json!(1);
        let back = company(serde_json::from_value::<Customer>(wire).unwrap());
        assert_eq!((back.name.as_str(), back.address.as_deref()), ("Acme", Some("1 Main St")));
    }

    #[test]
    fn a_contact_body_always_carries_the_name_and_numeric_references() {
        let contact = ExtContact {
            id: "5".into(),
            first_name: "Ada".into(),
            last_name: "Quill".into(),
            email: None,
            phone: None,
            title: None,
            company_id: Some("42".into()),
            types: Vec::new(),
            inactive: false,
            updated_at: None,
        };
        let held = ExtContact { first_name: "Grace".into(), last_name: "Hopper".into(), ..contact.clone() };
        let body = contact_body(&contact, &["company"], false, Some(&held)).unwrap();
        assert_eq!(Value::Object(body), serde_json::json!({"name": "Grace Hopper", "customer_id": 42}));
        let body = contact_body(&contact, &["last_name"], false, Some(&held)).unwrap();
        assert_eq!(body["name"], "Grace Quill");
        let bad = ExtContact { company_id: Some("x1".into()), ..contact };
        assert_eq!(contact_body(&bad, &["company"], true, None).unwrap_err().kind, ErrorKind::Invalid);
    }

    #[test]
    fn names_split_at_the_first_space() {
        assert_eq!(split_name(" Mary  Van Dyke "), ("Mary".into(), "Van Dyke".into()));
        assert_eq!(split_name("Cher"), ("Cher".into(), String::new()));
    }

    #[test]
    fn a_lead_amount_reads_from_a_number_or_a_numeric_string() {
        let lead = |v: Value| {
            serde_json::from_value::<Lead>(serde_json::json!({"id": 1, "opportunity_amount_dollars": v})).unwrap()
        };
        assert_eq!(lead(serde_json::json!(12.5)).amount(), Some(12.5));
        assert_eq!(lead(serde_json::json!("99.90")).amount(), Some(99.9));
        assert_eq!(lead(serde_json::json!("n/a")).amount(), None);
    }
}
