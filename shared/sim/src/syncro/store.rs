//! The simulated tenant's mutable state: one id-ordered collection of JSON records per
//! resource (users, customers, contacts, leads), and the reads and writes the handlers
//! perform (fixed-size `page` listing with `meta`, create, partial update, delete). Contacts
//! are indexed by the customer they name, so a customer's read embeds its contacts without
//! scanning every contact.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value, json};

use super::error::ApiError;
use crate::normalise::email_key;

/// Records per list page. UNCONFIRMED (psa-apis.md 3.3): the docs text says 25, an embedded
/// example shows `per_page: 100`; 25 is chosen. Clients should read `meta.per_page`.
pub const PAGE_SIZE: usize = 25;

/// The resources the simulator serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Users,
    Customers,
    Contacts,
    Leads,
}

impl Kind {
    /// The path segment and list envelope key.
    pub(crate) fn plural(self) -> &'static str {
        match self {
            Kind::Users => "users",
            Kind::Customers => "customers",
            Kind::Contacts => "contacts",
            Kind::Leads => "leads",
        }
    }

    /// The single-record envelope key; `None` for contacts (answered bare, psa-apis.md 3.3).
    pub(crate) fn singular(self) -> Option<&'static str> {
        match self {
            Kind::Users => Some("user"),
            Kind::Customers => Some("customer"),
            Kind::Contacts => None,
            Kind::Leads => Some("lead"),
        }
    }

    /// The resource of a path segment.
    pub(crate) fn of(segment: &str) -> Option<Kind> {
        [Kind::Users, Kind::Customers, Kind::Contacts, Kind::Leads].into_iter().find(|k| k.plural() == segment)
    }
}

/// A generated tenant's records, in id order per resource.
#[derive(Clone, Debug, Default)]
pub(crate) struct TenantData {
    /// Users as `/users/{id}` details them.
    pub users: Vec<Value>,
    pub customers: Vec<Value>,
    pub contacts: Vec<Value>,
    pub leads: Vec<Value>,
}

impl TenantData {
    /// The records of one resource.
    pub(crate) fn of(&self, kind: Kind) -> &[Value] {
        match kind {
            Kind::Users => &self.users,
            Kind::Customers => &self.customers,
            Kind::Contacts => &self.contacts,
            Kind::Leads => &self.leads,
        }
    }
}

/// The list filters the simulator understands (psa-apis.md 3.3, Y1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Filters {
    /// Customers: show disabled ones too.
    pub include_disabled: bool,
    /// Contacts: only this customer's.
    pub customer_id: Option<i64>,
    /// Customers: "any customers with a business name like the parameter" (Y1). UNCONFIRMED
    /// what "like" means; taken as a case-insensitive substring, as a SQL `ILIKE '%x%'`.
    pub business_name: Option<String>,
    /// Leads: the "search query" (Y1). UNCONFIRMED which fields it searches; taken as a
    /// case-insensitive substring of the names, business, email or phone.
    pub query: Option<String>,
    /// Customers: `sort`, "a customer field to order by" (Y1: `firstname ASC`, `city
    /// DESC`), as (field, descending). Times compare as instants, numbers as numbers, text
    /// as text; no value sorts last ascending and first descending, and ties keep id
    /// order (UNCONFIRMED: taken as Postgres orders). A field customers do not have leaves
    /// id order (UNCONFIRMED: Syncro's answer to one is not documented).
    pub sort: Option<(String, bool)>,
}

impl Filters {
    /// Reads a `sort` parameter: a field, then `ASC` (the default) or `DESC`.
    pub(crate) fn sort_of(raw: &str) -> Option<(String, bool)> {
        let mut words = raw.split_whitespace();
        let field = words.next()?.to_string();
        let descending = words.next().is_some_and(|d| d.eq_ignore_ascii_case("desc"));
        Some((field, descending))
    }
}

/// One value's place in a `sort` (see [`Filters::sort`]).
#[derive(Clone, Debug, PartialEq, PartialOrd)]
enum SortKey {
    Instant(i128),
    Number(f64),
    Text(String),
}

fn sort_key(v: &Value, field: &str) -> Option<SortKey> {
    match v.get(field)? {
        Value::Number(n) => n.as_f64().map(SortKey::Number),
        Value::String(s) if !s.trim().is_empty() => {
            let instant = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339);
            Some(
                instant
                    .map_or_else(|_| SortKey::Text(s.to_lowercase()), |t| SortKey::Instant(t.unix_timestamp_nanos())),
            )
        }
        Value::Bool(b) => Some(SortKey::Number(f64::from(u8::from(*b)))),
        _ => None,
    }
}

/// Orders `rows` (in id order) by `field`, ascending or descending, as [`Filters::sort`].
fn sort_rows(rows: &mut [&Value], field: &str, descending: bool) {
    rows.sort_by(|a, b| {
        let (ka, kb) = (sort_key(a, field), sort_key(b, field));
        let order = match (&ka, &kb) {
            (Some(x), Some(y)) => x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        if descending { order.reverse() } else { order }
    });
}

/// Lead fields the `query` search looks in (UNCONFIRMED, see [`Filters::query`]).
const LEAD_SEARCHED: &[&str] = &["first_name", "last_name", "business_then_name", "email", "phone"];

/// Whether `haystack` holds `needle`, ignoring case.
fn like(haystack: Option<&str>, needle: &str) -> bool {
    haystack.is_some_and(|h| h.to_lowercase().contains(&needle.trim().to_lowercase()))
}

impl Filters {
    /// Whether a record of `kind` passes these filters.
    fn keeps(&self, kind: Kind, v: &Value) -> bool {
        let disabled_ok = kind != Kind::Customers || self.include_disabled || v["disabled"] != true;
        let customer_ok = self.customer_id.is_none_or(|c| v["customer_id"].as_i64() == Some(c));
        let business_ok =
            kind != Kind::Customers || self.business_name.as_deref().is_none_or(|b| like(text(v, "business_name"), b));
        let query_ok = kind != Kind::Leads
            || self.query.as_deref().is_none_or(|q| LEAD_SEARCHED.iter().any(|k| like(text(v, k), q)));
        disabled_ok && customer_ok && business_ok && query_ok
    }
}

/// The live records.
#[derive(Debug)]
pub(crate) struct Store {
    records: BTreeMap<Kind, BTreeMap<i64, Value>>,
    /// The ids of the contacts whose `customer_id` is each number, kept by [`Store::put`]
    /// and [`Store::take`], the only ways records change.
    contacts_of: HashMap<i64, BTreeSet<i64>>,
}

fn id_of(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_default()
}

/// The customer a record of `kind` is indexed under: a contact's `customer_id`, when a
/// number (what the `customer_id` filter and a customer's `contacts` match on).
fn indexed_customer(kind: Kind, v: &Value) -> Option<i64> {
    if kind == Kind::Contacts { v["customer_id"].as_i64() } else { None }
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// The `business_then_name`, `fullname` and `business_and_full_name` a customer shows.
/// UNCONFIRMED: `business_and_full_name` is assumed to be `"Business - First Last"`.
pub(crate) fn derive_customer_names(c: &mut Value) {
    let full = [text(c, "firstname"), text(c, "lastname")].into_iter().flatten().collect::<Vec<_>>().join(" ");
    let business = text(c, "business_name").map(str::to_string);
    let then = business.clone().unwrap_or_else(|| full.clone());
    let and_full = match &business {
        Some(b) if !full.is_empty() => format!("{b} - {full}"),
        Some(b) => b.clone(),
        None => full.clone(),
    };
    c["fullname"] = json!(full);
    c["business_then_name"] = json!(then);
    c["business_and_full_name"] = json!(and_full);
}

/// The `business_then_name` a lead shows: its `business_name`, else `"first last"`.
/// UNCONFIRMED (psa-apis.md 3.4 lists `business_name` as a write-only lead field and
/// `business_then_name` as read-only): assumed derived as a customer's is, and only when a
/// write touches one of the fields it is made of, so a generated lead keeps its own.
pub(crate) fn derive_lead_name(lead: &mut Value, body: &Map<String, Value>) {
    if !["business_name", "first_name", "last_name"].iter().any(|k| body.contains_key(*k)) {
        return;
    }
    let full = [text(lead, "first_name"), text(lead, "last_name")].into_iter().flatten().collect::<Vec<_>>().join(" ");
    let then = text(lead, "business_name").map_or(full, str::to_string);
    lead["business_then_name"] = json!(then);
}

/// Fields a write may not set.
const READ_ONLY: &[&str] =
    &["id", "created_at", "updated_at", "fullname", "business_then_name", "business_and_full_name"];

impl Store {
    /// The store of a generated tenant.
    pub(crate) fn new(data: TenantData) -> Self {
        let mut store = Self { records: BTreeMap::new(), contacts_of: HashMap::new() };
        for (kind, list) in [
            (Kind::Users, data.users),
            (Kind::Customers, data.customers),
            (Kind::Contacts, data.contacts),
            (Kind::Leads, data.leads),
        ] {
            store.records.insert(kind, BTreeMap::new());
            for v in list {
                store.put(kind, id_of(&v), v);
            }
        }
        store
    }

    /// Stores `rec` as record `id` of `kind`, replacing any, and keeps the index.
    fn put(&mut self, kind: Kind, id: i64, rec: Value) {
        let customer = indexed_customer(kind, &rec);
        let old = self.map_mut(kind).insert(id, rec);
        self.unindex(kind, id, old.as_ref());
        if let Some(c) = customer {
            self.contacts_of.entry(c).or_default().insert(id);
        }
    }

    /// Removes record `id` of `kind`, if held, and its index entry.
    fn take(&mut self, kind: Kind, id: i64) -> Option<Value> {
        let old = self.map_mut(kind).remove(&id);
        self.unindex(kind, id, old.as_ref());
        old
    }

    fn unindex(&mut self, kind: Kind, id: i64, old: Option<&Value>) {
        let Some(c) = old.and_then(|v| indexed_customer(kind, v)) else { return };
        if let Some(ids) = self.contacts_of.get_mut(&c) {
            ids.remove(&id);
            if ids.is_empty() {
                self.contacts_of.remove(&c);
            }
        }
    }

    /// The contacts whose `customer_id` is `customer`, in id order.
    fn contacts_of(&self, customer: i64) -> Result<Vec<&Value>, ApiError> {
        let contacts = self.map(Kind::Contacts)?;
        Ok(self.contacts_of.get(&customer).into_iter().flatten().filter_map(|id| contacts.get(id)).collect())
    }

    fn map(&self, kind: Kind) -> Result<&BTreeMap<i64, Value>, ApiError> {
        self.records.get(&kind).ok_or_else(ApiError::not_found)
    }

    fn map_mut(&mut self, kind: Kind) -> &mut BTreeMap<i64, Value> {
        self.records.entry(kind).or_default()
    }

    /// `/users`: every user as an `[id, full_name]` pair, no paging (psa-apis.md 3.4).
    pub(crate) fn user_pairs(&self) -> Result<Value, ApiError> {
        let pairs: Vec<Value> = self.map(Kind::Users)?.values().map(|u| json!([u["id"], u["full_name"]])).collect();
        Ok(json!({ "users": pairs }))
    }

    /// One page (1-based; 0 and junk read as 1) of a list, in id order (customers: as
    /// `sort` says), with its `meta`.
    pub(crate) fn list(&self, kind: Kind, page: usize, f: &Filters) -> Result<Value, ApiError> {
        let candidates = match f.customer_id {
            Some(c) if kind == Kind::Contacts => self.contacts_of(c)?,
            _ => self.map(kind)?.values().collect(),
        };
        let mut all: Vec<&Value> = candidates.into_iter().filter(|v| f.keeps(kind, v)).collect();
        if kind == Kind::Customers
            && let Some((field, descending)) = &f.sort
            && all.iter().any(|v| v.get(field.as_str()).is_some())
        {
            sort_rows(&mut all, field, *descending);
        }
        let page = page.max(1);
        let total_pages = all.len().div_ceil(PAGE_SIZE);
        let items: Vec<&Value> = all.iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE).copied().collect();
        Ok(json!({
            kind.plural(): items,
            "meta": { "total_pages": total_pages, "total_entries": all.len(), "per_page": PAGE_SIZE, "page": page },
        }))
    }

    /// One record, in its envelope (contacts bare). Customers carry their contacts.
    pub(crate) fn get(&self, kind: Kind, id: i64) -> Result<Value, ApiError> {
        let mut rec = self.map(kind)?.get(&id).cloned().ok_or_else(ApiError::not_found)?;
        if kind == Kind::Customers {
            let contacts: Vec<Value> = self.contacts_of(id)?.into_iter().cloned().collect();
            rec["contacts"] = json!(contacts);
        }
        Ok(wrap(kind, rec))
    }

    /// Checks a write body; the 422 in the resource's shape when it is refused.
    /// UNCONFIRMED beyond the documented ones (email format; contacts need a `customer_id`
    /// on create and a `name` on update): a customer needs a business or a person name, as
    /// the UI does.
    ///
    /// A `customer_id` naming no customer (a contact's on create or when sent on update, a
    /// lead's when sent and not null) is answered 404 with the documented not-found body
    /// `{"message": "Not found"}` (psa-apis.md 3.5): Syncro looks the customer up and answers
    /// as for an unknown record. The 404 is the statement of Syncro's behaviour, the
    /// body the reference's; it is checked before the field validations.
    fn validate(&self, kind: Kind, body: &Map<String, Value>, merged: &Value, creating: bool) -> Result<(), ApiError> {
        let unknown_customer = match kind {
            Kind::Contacts => {
                (creating || body.contains_key("customer_id")) && !self.customer_exists(&merged["customer_id"])
            }
            Kind::Leads => body.get("customer_id").is_some_and(|c| !c.is_null() && !self.customer_exists(c)),
            Kind::Customers | Kind::Users => false,
        };
        if unknown_customer {
            return Err(ApiError::not_found());
        }
        let mut problems = Vec::new();
        if let Some(email) = body.get("email").and_then(Value::as_str).filter(|e| !e.trim().is_empty())
            && email_key(email).is_none()
        {
            problems.push("Email is not an email".to_string());
            problems.push(format!("Email Only able to parse up to \"{email}\""));
        }
        match kind {
            Kind::Customers => {
                if ["business_name", "firstname", "lastname"].iter().all(|k| text(merged, k).is_none()) {
                    problems.push("Business name or last name must be present".into());
                }
            }
            Kind::Contacts => {
                if !creating && text(&Value::Object(body.clone()), "name").is_none() {
                    problems.insert(0, "Name can't be blank".into());
                }
            }
            Kind::Leads | Kind::Users => {}
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(match kind {
            Kind::Contacts => ApiError::invalid_record(merged.clone(), problems.join(", ")),
            _ => ApiError::invalid_params(problems, Value::Object(body.clone())),
        })
    }

    /// Whether `id` is the number of a customer.
    fn customer_exists(&self, id: &Value) -> bool {
        id.as_i64().is_some_and(|c| self.map(Kind::Customers).is_ok_and(|m| m.contains_key(&c)))
    }

    /// `POST /{plural}`: a new record from the body's writable fields.
    pub(crate) fn create(&mut self, kind: Kind, body: Value, now: &str) -> Result<Value, ApiError> {
        let body = object(kind, body)?;
        let id = self.map(kind)?.keys().next_back().copied().unwrap_or(0) + 1;
        let mut rec = blank(kind);
        for (k, v) in &body {
            if !READ_ONLY.contains(&k.as_str()) {
                rec[k.as_str()] = v.clone();
            }
        }
        self.validate(kind, &body, &rec, true)?;
        rec["id"] = json!(id);
        rec["created_at"] = json!(now);
        rec["updated_at"] = json!(now);
        derive_names(kind, &mut rec, &body);
        self.put(kind, id, rec.clone());
        Ok(wrap(kind, rec))
    }

    /// `PUT /{plural}/{id}`: only the fields sent change (psa-apis.md 3.5).
    pub(crate) fn update(&mut self, kind: Kind, id: i64, body: Value, now: &str) -> Result<Value, ApiError> {
        let body = object(kind, body)?;
        let mut rec = self.map(kind)?.get(&id).cloned().ok_or_else(ApiError::not_found)?;
        for (k, v) in &body {
            if !READ_ONLY.contains(&k.as_str()) {
                rec[k.as_str()] = v.clone();
            }
        }
        self.validate(kind, &body, &rec, false)?;
        rec["updated_at"] = json!(now);
        derive_names(kind, &mut rec, &body);
        self.put(kind, id, rec.clone());
        Ok(wrap(kind, rec))
    }

    /// `DELETE /{plural}/{id}` (customers and contacts; leads have no delete).
    pub(crate) fn delete(&mut self, kind: Kind, id: i64) -> Result<Value, ApiError> {
        if !matches!(kind, Kind::Customers | Kind::Contacts) || self.take(kind, id).is_none() {
            return Err(ApiError::not_found());
        }
        Ok(match kind {
            Kind::Customers => json!({ "message": "Customer was deleted from the system." }),
            // UNCONFIRMED: the contact delete message.
            _ => json!({ "message": "Contact was deleted." }),
        })
    }
}

/// Sets the names a written record of `kind` derives from its fields.
fn derive_names(kind: Kind, rec: &mut Value, body: &Map<String, Value>) {
    match kind {
        Kind::Customers => derive_customer_names(rec),
        Kind::Leads => derive_lead_name(rec, body),
        Kind::Contacts | Kind::Users => {}
    }
}

/// The body as an object; a `{ "customer": {...} }`-style wrapper is unwrapped too.
fn object(kind: Kind, body: Value) -> Result<Map<String, Value>, ApiError> {
    let inner = match (kind.singular(), &body) {
        (Some(key), Value::Object(m)) if m.len() == 1 && m.get(key).is_some_and(Value::is_object) => m[key].clone(),
        _ => body,
    };
    match inner {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::bad_body("The request body must be a JSON object.")),
    }
}

fn wrap(kind: Kind, rec: Value) -> Value {
    match kind.singular() {
        Some(key) => json!({ key: rec }),
        None => rec,
    }
}

/// A new record with every documented field present (null or default).
pub(crate) fn blank(kind: Kind) -> Value {
    match kind {
        Kind::Customers => json!({
            "id": 0, "firstname": null, "lastname": null, "fullname": "", "business_name": null, "email": null,
            "phone": null, "mobile": null, "created_at": null, "updated_at": null, "pdf_url": null, "address": null,
            "address_2": null, "city": null, "state": null, "zip": null, "latitude": null, "longitude": null,
            "notes": null, "get_sms": false, "opt_out": false, "disabled": false, "no_email": false,
            "location_name": null, "location_id": null, "properties": {}, "online_profile_url": null,
            "tax_rate_id": null, "notification_email": null, "invoice_cc_emails": null, "invoice_term_id": null,
            "referred_by": null, "ref_customer_id": null, "business_and_full_name": "", "business_then_name": "",
        }),
        Kind::Contacts => json!({
            "id": 0, "name": null, "address1": null, "address2": null, "city": null, "state": null, "zip": null,
            "email": null, "phone": null, "mobile": null, "latitude": null, "longitude": null, "customer_id": null,
            "account_id": null, "notes": null, "created_at": null, "updated_at": null, "vendor_id": null,
            "properties": {}, "opt_out": false, "extension": null, "title": null,
        }),
        Kind::Leads => json!({
            "id": 0, "first_name": null, "last_name": null, "email": null, "phone": null, "mobile": null,
            "created_at": null, "updated_at": null, "address": null, "city": null, "state": null, "zip": null,
            "ticket_subject": null, "ticket_description": null, "ticket_problem_type": null, "ticket_id": null,
            "customer_id": null, "contact_id": null, "mailbox_id": null, "mailbox_name": null,
            "business_then_name": null, "has_attachments": false, "message_read": false, "status": "New",
            "user_id": null, "location_id": null, "opportunity_amount_dollars": null, "likelihood": null,
            "disabled": false, "converted": false,
        }),
        Kind::Users => json!({ "id": 0 }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        let mut c = blank(Kind::Customers);
        c["id"] = json!(1);
        c["business_name"] = json!("Acme");
        let mut d = c.clone();
        d["id"] = json!(2);
        d["disabled"] = json!(true);
        Store::new(TenantData { customers: vec![c, d], ..TenantData::default() })
    }

    #[test]
    fn a_customer_read_embeds_exactly_its_contacts_after_contacts_are_created_moved_refused_and_deleted() {
        let mut s = store();
        let id = |v: &Value| v["id"].as_i64().unwrap();
        let embedded = |s: &Store, customer: i64| -> Vec<Value> {
            s.get(Kind::Customers, customer).unwrap()["customer"]["contacts"].as_array().unwrap().clone()
        };
        let ids = |s: &Store, customer: i64| -> Vec<i64> { embedded(s, customer).iter().map(id).collect() };
        let scanned = |s: &Store, customer: i64| -> Vec<Value> {
            s.records[&Kind::Contacts]
                .values()
                .filter(|c| c["customer_id"].as_i64() == Some(customer))
                .cloned()
                .collect()
        };
        let listed = |s: &Store, customer: i64| -> Vec<i64> {
            let f = Filters { customer_id: Some(customer), ..Filters::default() };
            s.list(Kind::Contacts, 1, &f).unwrap()["contacts"].as_array().unwrap().iter().map(id).collect()
        };
        let a = id(&s.create(Kind::Contacts, json!({"customer_id": 1, "name": "A A"}), "t").unwrap());
        let b = id(&s.create(Kind::Contacts, json!({"customer_id": 1, "name": "B B"}), "t").unwrap());
        let c = id(&s.create(Kind::Contacts, json!({"customer_id": 2, "name": "C C"}), "t").unwrap());
        assert_eq!((ids(&s, 1), ids(&s, 2)), (vec![a, b], vec![c]));

        s.update(Kind::Contacts, a, json!({"name": "A A", "customer_id": 2}), "t").unwrap();
        s.update(Kind::Contacts, b, json!({"name": "B Renamed"}), "t").unwrap();
        assert!(s.update(Kind::Contacts, b, json!({"name": "B B", "customer_id": 99}), "t").is_err());
        assert_eq!((ids(&s, 1), ids(&s, 2)), (vec![b], vec![a, c]));
        assert_eq!(embedded(&s, 1)[0]["name"], "B Renamed", "the embedded contact is the updated one");

        s.delete(Kind::Contacts, c).unwrap();
        s.delete(Kind::Customers, 1).unwrap();
        assert_eq!(ids(&s, 2), vec![a]);
        let again = s.create(Kind::Customers, json!({"business_name": "Reused id"}), "t").unwrap();
        assert_eq!(again["customer"]["id"], 2 + 1, "ids follow the highest held");
        for customer in [2, 3] {
            assert_eq!(embedded(&s, customer), scanned(&s, customer), "customer {customer}");
            assert_eq!(listed(&s, customer), scanned(&s, customer).iter().map(id).collect::<Vec<_>>());
        }
        assert_eq!(listed(&s, 1), vec![b], "a deleted customer's contacts are still listed by its number");
    }

    #[test]
    fn disabled_customers_are_listed_only_when_asked_for() {
        let s = store();
        assert_eq!(s.list(Kind::Customers, 1, &Filters::default()).unwrap()["meta"]["total_entries"], 1);
        let all = Filters { include_disabled: true, ..Filters::default() };
        assert_eq!(s.list(Kind::Customers, 1, &all).unwrap()["customers"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn customers_sort_by_a_field_as_instants_with_no_value_last_ascending_and_first_descending() {
        let mut s = store();
        s.create(Kind::Customers, json!({"business_name": "Bolt"}), "2025-01-01T10:00:00.000-05:00").unwrap();
        s.create(Kind::Customers, json!({"business_name": "Core"}), "2025-01-01T14:30:00.000Z").unwrap();
        let ids = |sort: &str| -> Vec<i64> {
            let f = Filters { include_disabled: true, sort: Filters::sort_of(sort), ..Filters::default() };
            let page = s.list(Kind::Customers, 1, &f).unwrap();
            page["customers"].as_array().unwrap().iter().map(|c| c["id"].as_i64().unwrap()).collect()
        };
        let (bolt, core) = (3, 4);
        // 10:00 at -05:00 is 15:00Z, after Core's 14:30Z; the two seeded have no stamp.
        assert_eq!(ids("updated_at DESC"), vec![1, 2, bolt, core]);
        assert_eq!(ids("updated_at ASC"), vec![core, bolt, 1, 2]);
        assert_eq!(ids("updated_at"), vec![core, bolt, 1, 2], "ascending by default");
        assert_eq!(ids("business_name DESC"), vec![core, bolt, 1, 2]);
        assert_eq!(ids("no_such_field DESC"), vec![1, 2, bolt, core], "an unknown field leaves id order");
    }

    #[test]
    fn an_update_changes_only_the_fields_sent() {
        let mut s = store();
        let out = s.update(Kind::Customers, 1, json!({"phone": "555-010-1234"}), "2025-01-01T00:00:00.000Z").unwrap();
        assert_eq!(out["customer"]["phone"], "555-010-1234");
        assert_eq!(out["customer"]["business_name"], "Acme");
    }

    #[test]
    fn a_bad_email_is_refused_with_the_documented_422_shapes() {
        let mut s = store();
        let e = s.create(Kind::Customers, json!({"business_name": "X", "email": "nope"}), "t").unwrap_err();
        assert_eq!(e.status.as_u16(), 422);
        let e = s.create(Kind::Contacts, json!({"customer_id": 1, "name": "A B", "email": "nope"}), "t").unwrap_err();
        assert!(matches!(e.body, super::super::error::ErrorBody::Record { .. }));
    }

    #[test]
    fn a_customer_id_naming_no_customer_is_answered_404_not_found_on_contact_and_lead_writes() {
        use super::super::error::ErrorBody;
        let not_found = |e: ApiError| {
            assert_eq!(e.status.as_u16(), 404);
            assert!(matches!(&e.body, ErrorBody::Message(m) if m == "Not found"), "{:?}", e.body);
        };
        let mut s = store();
        not_found(s.create(Kind::Contacts, json!({"customer_id": 99, "name": "A B"}), "t").unwrap_err());
        let contact = s.create(Kind::Contacts, json!({"customer_id": 1, "name": "A B"}), "t").unwrap();
        let contact_id = contact["id"].as_i64().or_else(|| contact["contact"]["id"].as_i64()).unwrap();
        not_found(s.update(Kind::Contacts, contact_id, json!({"name": "A B", "customer_id": 99}), "t").unwrap_err());
        s.update(Kind::Contacts, contact_id, json!({"name": "A C"}), "t").unwrap();

        not_found(s.create(Kind::Leads, json!({"first_name": "L", "customer_id": 99}), "t").unwrap_err());
        let lead = s.create(Kind::Leads, json!({"first_name": "L", "customer_id": null}), "t").unwrap();
        let lead_id = lead["lead"]["id"].as_i64().or_else(|| lead["id"].as_i64()).unwrap();
        not_found(s.update(Kind::Leads, lead_id, json!({"customer_id": 99}), "t").unwrap_err());
        s.update(Kind::Leads, lead_id, json!({"customer_id": 1}), "t").unwrap();
    }
}
