//! The simulated tenant's mutable state: one id-ordered collection of JSON records per
//! `/api` resource, and the reads and writes the handlers perform (filtered, paged lists
//! with the `{record_count, <plural>}` envelope; create/update by POSTed array; delete).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::error::ApiError;
use crate::common::parse_timestamp;

/// Resource names (lower case; Halo resource names are case-insensitive, psa-apis.md 2.1).
pub(crate) const AGENT: &str = "agent";
pub(crate) const CLIENT: &str = "client";
pub(crate) const USERS: &str = "users";
pub(crate) const OPPORTUNITIES: &str = "opportunities";
pub(crate) const ACTIONS: &str = "actions";
pub(crate) const CRM_NOTE: &str = "crmnote";
pub(crate) const ROLES: &str = "roles";
pub(crate) const LOOKUP: &str = "lookup";
pub(crate) const STATUS: &str = "status";
pub(crate) const OUTCOME: &str = "outcome";
pub(crate) const TICKET_TYPE: &str = "tickettype";

/// The largest `page_size` served (psa-apis.md 2.3: "Maximum size: 100"). UNCONFIRMED what
/// Halo does above it: the simulator clamps silently.
pub(crate) const MAX_PAGE_SIZE: usize = 100;
/// `page_size` when `pageinate=true` comes without one. UNCONFIRMED.
pub(crate) const DEFAULT_PAGE_SIZE: usize = 50;

/// What the simulator knows about one resource.
#[derive(Debug)]
pub(crate) struct Spec {
    /// Lower-case resource name, e.g. `client`.
    pub name: &'static str,
    /// Noun in "X 5 not found".
    pub noun: &'static str,
    /// Envelope key of a paged list; `None`: the list is a bare array (psa-apis.md 2.3:
    /// `/Agent` bare [UNCONFIRMED]; setup lists assumed bare too).
    /// UNCONFIRMED: `users`, `actions` and `notes` keys; `clients`/`tickets` are confirmed (H3).
    pub envelope: Option<&'static str>,
    /// The last-updated field `lastupdatefromdate` compares with (psa-apis.md 2.8).
    /// UNCONFIRMED for actions and CRM notes (the spec declares no such filter there).
    pub updated: Option<&'static str>,
    /// Takes POSTed arrays and DELETE.
    pub writable: bool,
    /// The field a create must have.
    pub required: &'static [&'static str],
}

/// Every resource of the simulator.
pub(crate) static SPECS: &[Spec] = &[
    Spec { name: AGENT, noun: "Agent", envelope: None, updated: None, writable: false, required: &[] },
    Spec {
        name: CLIENT,
        noun: "Client",
        envelope: Some("clients"),
        updated: Some("alastupdate"),
        writable: true,
        required: &["name"],
    },
    Spec {
        name: USERS,
        noun: "User",
        envelope: Some("users"),
        updated: Some("ulastupdate"),
        writable: true,
        required: &["name"],
    },
    Spec {
        name: OPPORTUNITIES,
        noun: "Opportunity",
        envelope: Some("tickets"),
        updated: Some("last_update"),
        writable: true,
        required: &["summary"],
    },
    Spec {
        name: ACTIONS,
        noun: "Action",
        envelope: Some("actions"),
        updated: Some("last_updated"),
        writable: true,
        required: &["ticket_id"],
    },
    Spec {
        name: CRM_NOTE,
        noun: "CRM Note",
        envelope: Some("notes"),
        updated: Some("datetime"),
        writable: true,
        required: &["client_id"],
    },
    Spec { name: ROLES, noun: "Role", envelope: None, updated: None, writable: false, required: &[] },
    Spec { name: LOOKUP, noun: "Lookup", envelope: None, updated: None, writable: false, required: &[] },
    Spec { name: STATUS, noun: "Status", envelope: None, updated: None, writable: false, required: &[] },
    Spec { name: OUTCOME, noun: "Outcome", envelope: None, updated: None, writable: false, required: &[] },
    Spec { name: TICKET_TYPE, noun: "Ticket Type", envelope: None, updated: None, writable: false, required: &[] },
];

/// The spec of a resource name, any letter case.
pub(crate) fn spec_of(name: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

/// The generated records, per resource name.
#[derive(Clone, Debug, Default)]
pub(crate) struct TenantData {
    pub collections: Vec<(&'static str, Vec<Value>)>,
}

/// The list query parameters the simulator understands (psa-apis.md 2.3).
#[derive(Clone, Debug, Default)]
pub(crate) struct ListQuery {
    pub params: Vec<(String, String)>,
}

impl ListQuery {
    fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim())
    }

    fn flag(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// A comma-separated list of ids (`ticketids=1,2,3`); `None` when absent or empty.
    fn numbers(&self, name: &str) -> Result<Option<Vec<i64>>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) => v
                .split(',')
                .map(|n| n.trim().parse::<i64>())
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("The value '{v}' is not valid for {name}."))),
        }
    }

    fn number(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("The value '{v}' is not valid for {name}."))),
        }
    }
}

/// The mutable state.
#[derive(Debug)]
pub(crate) struct Store {
    colls: BTreeMap<&'static str, BTreeMap<i64, Value>>,
}

/// A record's key: its integer `id`, or, for a role (whose `id` is a GUID), its `id_int`.
fn id_of(v: &Value) -> Option<i64> {
    v.get("id").and_then(Value::as_i64).or_else(|| v.get("id_int").and_then(Value::as_i64))
}

fn truthy(v: &Value, field: &str) -> bool {
    v.get(field).and_then(Value::as_bool).unwrap_or(false)
}

impl Store {
    /// The store holding `data`.
    pub(crate) fn new(data: TenantData) -> Self {
        let mut colls: BTreeMap<&'static str, BTreeMap<i64, Value>> =
            SPECS.iter().map(|s| (s.name, BTreeMap::new())).collect();
        for (name, records) in data.collections {
            let coll = colls.entry(name).or_default();
            for r in records {
                if let Some(id) = id_of(&r) {
                    coll.insert(id, r);
                }
            }
        }
        Self { colls }
    }

    fn coll(&self, name: &str) -> &BTreeMap<i64, Value> {
        static EMPTY: BTreeMap<i64, Value> = BTreeMap::new();
        self.colls.get(name).unwrap_or(&EMPTY)
    }

    /// The key of the record a path segment names: an integer id, or a role's GUID
    /// (`/Roles/{id}` takes the GUID, any case). An id of neither form names no endpoint.
    pub(crate) fn key(&self, spec: &Spec, raw: &str) -> Result<i64, ApiError> {
        if let Ok(id) = raw.parse::<i64>() {
            return Ok(id);
        }
        if spec.name != ROLES {
            return Err(ApiError::no_endpoint());
        }
        self.coll(spec.name)
            .iter()
            .find(|(_, r)| r["id"].as_str().is_some_and(|g| g.eq_ignore_ascii_case(raw)))
            .map(|(k, _)| *k)
            .ok_or_else(|| ApiError::not_found(spec.noun, raw))
    }

    /// One record.
    pub(crate) fn get(&self, spec: &Spec, id: i64) -> Result<Value, ApiError> {
        self.coll(spec.name).get(&id).cloned().ok_or_else(|| ApiError::not_found(spec.noun, id))
    }

    /// The answer body of a list: filters, `lastupdatefromdate`, id order, then paging
    /// (`pageinate=true&page_no&page_size`) or `count`.
    pub(crate) fn list(&self, spec: &Spec, q: &ListQuery) -> Result<Value, ApiError> {
        let since = match q.get("lastupdatefromdate").filter(|s| !s.is_empty()) {
            None => None,
            Some(raw) => Some(parse_halo_date(raw).ok_or_else(|| {
                ApiError::bad_request(format!("The value '{raw}' is not a valid date for lastupdatefromdate."))
            })?),
        };
        let client_id = q.number("client_id")?;
        let ticket_id = q.number("ticket_id")?;
        let lookup_id = q.number("lookupid")?;
        // H1 swagger, GET /Tickets and /Opportunities: `ticketids` "returns only the tickets
        // specified in the response" (comma-separated ids).
        let ticket_ids = if spec.name == OPPORTUNITIES { q.numbers("ticketids")? } else { None };
        let searches = searches(spec.name, q);
        let keep = |r: &Value| -> bool {
            let ok_flags = match spec.name {
                AGENT => q.flag("includedisabled") || !truthy(r, "isdisabled"),
                CLIENT | USERS => q.flag("includeinactive") || !truthy(r, "inactive"),
                OPPORTUNITIES => truthy(r, "deleted") == q.flag("deleted"),
                _ => true,
            };
            let ok_since = match (since, spec.updated) {
                (Some(s), Some(field)) => {
                    r.get(field).and_then(Value::as_str).and_then(parse_halo_date).is_some_and(|t| t >= s)
                }
                _ => true,
            };
            let eq =
                |field: &str, want: Option<i64>| want.is_none_or(|w| r.get(field).and_then(Value::as_i64) == Some(w));
            ok_flags
                && searches.iter().all(|(fields, needle)| contains_any(r, fields, needle))
                && ok_since
                && eq("client_id", client_id)
                && eq("ticket_id", ticket_id)
                && eq("lookupid", lookup_id)
                && ticket_ids
                    .as_ref()
                    .is_none_or(|ids| r.get("id").and_then(Value::as_i64).is_some_and(|id| ids.contains(&id)))
        };
        let include_roles = q.flag("includeroles");
        // Filter by reference and clone only the rows answered: a page must not cost a
        // deep copy of the whole collection.
        let matching: Vec<&Value> = self.coll(spec.name).values().filter(|r| keep(r)).collect();
        let total = matching.len();
        let selected: Vec<&Value> = if q.flag("pageinate") {
            let page_no = q.number("page_no")?.unwrap_or(1).max(1) as usize;
            let size = q.number("page_size")?.map_or(DEFAULT_PAGE_SIZE, |n| n.max(1) as usize).min(MAX_PAGE_SIZE);
            matching.into_iter().skip((page_no - 1).saturating_mul(size)).take(size).collect()
        } else if let Some(count) = q.number("count")? {
            matching.into_iter().take(count.max(0) as usize).collect()
        } else {
            matching
        };
        let mut rows: Vec<Value> = selected.into_iter().cloned().collect();
        if spec.name == AGENT && !include_roles {
            for r in &mut rows {
                if let Some(m) = r.as_object_mut() {
                    m.remove("roles");
                }
            }
        }
        Ok(match spec.envelope {
            Some(key) => {
                let mut m = Map::new();
                m.insert("record_count".into(), json!(total));
                m.insert(key.into(), Value::Array(rows));
                Value::Object(m)
            }
            None => Value::Array(rows),
        })
    }

    /// Saves one POSTed element: without `id` (or `id` 0) creates, with an existing `id`
    /// updates only the fields sent (psa-apis.md 2.5, upsert semantics UNCONFIRMED).
    pub(crate) fn save(&mut self, spec: &Spec, element: Value, now: &str) -> Result<Value, ApiError> {
        let Value::Object(mut fields) = element else {
            return Err(ApiError::bad_request("Every element of the posted array must be a JSON object."));
        };
        let id = fields.get("id").and_then(Value::as_i64).filter(|id| *id > 0);
        let coll = self.colls.entry(spec.name).or_default();
        match id {
            Some(id) => {
                let Some(existing) = coll.get_mut(&id) else {
                    return Err(ApiError::not_found(spec.noun, id));
                };
                if let Some(m) = existing.as_object_mut() {
                    for (k, v) in fields {
                        m.insert(k, v);
                    }
                    if let Some(field) = spec.updated.filter(|f| *f != "datetime") {
                        m.insert(field.into(), json!(now));
                    }
                }
                Ok(existing.clone())
            }
            None => {
                for req in spec.required {
                    let missing = match fields.get(*req) {
                        None | Some(Value::Null) => true,
                        Some(Value::String(s)) => s.trim().is_empty(),
                        _ => false,
                    };
                    if missing {
                        return Err(ApiError::bad_request(format!("{} is required.", req)));
                    }
                }
                let new_id = coll.keys().next_back().copied().unwrap_or(0) + 1;
                fields.insert("id".into(), json!(new_id));
                defaults(spec.name, &mut fields, now);
                let rec = Value::Object(fields);
                coll.insert(new_id, rec.clone());
                Ok(rec)
            }
        }
    }

    /// Deletes one record (opportunities are flagged `deleted`, like Halo tickets).
    pub(crate) fn delete(&mut self, spec: &Spec, id: i64, now: &str) -> Result<(), ApiError> {
        let coll = self.colls.entry(spec.name).or_default();
        if spec.name == OPPORTUNITIES {
            let rec = coll.get_mut(&id).ok_or_else(|| ApiError::not_found(spec.noun, id))?;
            rec["deleted"] = json!(true);
            rec["last_update"] = json!(now);
            return Ok(());
        }
        coll.remove(&id).map(|_| ()).ok_or_else(|| ApiError::not_found(spec.noun, id))
    }
}

/// The text filters of a list (H1 swagger): `search` on `/Client` ("Filter by Customers
/// like your search string"), `/Users` ("Filter by Users like your search string") and
/// `/Opportunities` ("Filters response based on the search string"), and `search_summary` on
/// `/Opportunities` ("Returns tickets based on the summary matching the search"). "Like" is
/// taken as a case-insensitive substring. UNCONFIRMED which fields each looks in: a client's
/// name; a user's name and email address; a ticket's summary.
fn searches(resource: &str, q: &ListQuery) -> Vec<(&'static [&'static str], String)> {
    let mut out: Vec<(&'static [&'static str], String)> = Vec::new();
    let mut add = |param: &str, fields: &'static [&'static str]| {
        if let Some(needle) = q.get(param).filter(|v| !v.is_empty()) {
            out.push((fields, needle.to_lowercase()));
        }
    };
    match resource {
        CLIENT => add("search", &["name"]),
        USERS => add("search", &["name", "emailaddress"]),
        OPPORTUNITIES => {
            add("search", &["summary"]);
            add("search_summary", &["summary"]);
        }
        _ => {}
    }
    out
}

/// Whether one of `fields` of `r` contains the lower-cased `needle`, in any case.
fn contains_any(r: &Value, fields: &[&str], needle: &str) -> bool {
    fields.iter().any(|f| r.get(*f).and_then(Value::as_str).is_some_and(|v| v.to_lowercase().contains(needle)))
}

/// Fields a created record gets when not sent.
fn defaults(name: &str, m: &mut Map<String, Value>, now: &str) {
    let mut set = |k: &str, v: Value| {
        m.entry(k.to_string()).or_insert(v);
    };
    match name {
        CLIENT => {
            set("inactive", json!(false));
            set("customertype", json!(0));
            set("alastupdate", json!(now));
        }
        USERS => {
            set("inactive", json!(false));
            set("ulastupdate", json!(now));
        }
        OPPORTUNITIES => {
            set("deleted", json!(false));
            set("status_id", json!(1));
            set("dateoccurred", json!(now));
            set("last_update", json!(now));
        }
        ACTIONS => {
            set("datetime", json!(now));
            set("last_updated", json!(now));
        }
        CRM_NOTE => set("datetime", json!(now)),
        _ => {}
    }
}

/// Unix seconds of a Halo date: ISO with or without `Z`/offset, or a bare date.
/// UNCONFIRMED (psa-apis.md 2.3): the format `lastupdatefromdate` takes; both forms accepted.
pub(crate) fn parse_halo_date(raw: &str) -> Option<i64> {
    let s = raw.trim();
    parse_timestamp(s).or_else(|| {
        let base = s.split('.').next().unwrap_or(s);
        parse_timestamp(&format!("{base}Z"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        let clients = (1..=7)
            .map(|i| json!({"id": i, "name": format!("C{i}"), "inactive": i == 3, "alastupdate": format!("2024-01-0{i}T00:00:00Z")}))
            .collect();
        Store::new(TenantData { collections: vec![(CLIENT, clients)] })
    }

    fn q(pairs: &[(&str, &str)]) -> ListQuery {
        ListQuery { params: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    #[test]
    fn paged_lists_count_every_match_and_serve_one_page() {
        let s = store();
        let spec = spec_of("Client").unwrap();
        let body = s
            .list(spec, &q(&[("pageinate", "true"), ("page_no", "2"), ("page_size", "2"), ("includeinactive", "true")]))
            .unwrap();
        assert_eq!(body["record_count"], 7);
        assert_eq!(
            body["clients"].as_array().unwrap().iter().map(|c| c["id"].as_i64().unwrap()).collect::<Vec<_>>(),
            [3, 4]
        );
        let active = s.list(spec, &q(&[])).unwrap();
        assert_eq!(active["record_count"], 6);
    }

    #[test]
    fn the_tickets_list_answers_only_the_tickets_named_in_ticketids() {
        let tickets = (1..=5).map(|i| json!({"id": i, "summary": format!("T{i}"), "user_id": 10 + i})).collect();
        let s = Store::new(TenantData { collections: vec![(OPPORTUNITIES, tickets)] });
        let spec = spec_of("Opportunities").unwrap();
        let body = s.list(spec, &q(&[("ticketids", "2, 4,9")])).unwrap();
        let ids: Vec<i64> = body["tickets"].as_array().unwrap().iter().map(|t| t["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, [2, 4]);
        assert_eq!(s.list(spec, &q(&[("ticketids", "")])).unwrap()["record_count"], 5, "empty: no filter");
        assert!(s.list(spec, &q(&[("ticketids", "2,x")])).is_err(), "a bad id is a 400");
    }

    #[test]
    fn last_update_filters_accept_dates_with_or_without_a_zone() {
        let s = store();
        let spec = spec_of("client").unwrap();
        let body = s.list(spec, &q(&[("lastupdatefromdate", "2024-01-05T00:00:00")])).unwrap();
        assert_eq!(body["record_count"], 3);
        assert!(s.list(spec, &q(&[("lastupdatefromdate", "soon")])).is_err());
    }

    #[test]
    fn the_search_filters_find_clients_by_name_users_by_name_or_email_and_tickets_by_summary() {
        let users = vec![
            json!({"id": 1, "name": "Ada Quill", "emailaddress": "ada@larkspur.example"}),
            json!({"id": 2, "name": "Bo Vance", "emailaddress": "bo@other.example"}),
        ];
        let tickets = vec![json!({"id": 5, "summary": "Backup rollout"}), json!({"id": 6, "summary": "Laptops"})];
        let s = Store::new(TenantData {
            collections: vec![
                (CLIENT, vec![json!({"id": 3, "name": "Larkspur Dental"})]),
                (USERS, users),
                (OPPORTUNITIES, tickets),
            ],
        });
        let ids = |resource: &str, key: &str, pairs: &[(&str, &str)]| -> Vec<i64> {
            let body = s.list(spec_of(resource).unwrap(), &q(pairs)).unwrap();
            body[key].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect()
        };
        assert_eq!(ids("client", "clients", &[("search", "larkspur")]), [3]);
        assert!(ids("client", "clients", &[("search", "zzyzx")]).is_empty());
        assert_eq!(ids("users", "users", &[("search", "ADA@larkspur.example")]), [1]);
        assert_eq!(ids("users", "users", &[("search", "vance")]), [2]);
        assert_eq!(ids("opportunities", "tickets", &[("search_summary", "backup")]), [5]);
        assert_eq!(ids("opportunities", "tickets", &[("search", "")]), [5, 6], "empty: no filter");
    }

    #[test]
    fn posting_without_an_id_creates_and_with_an_id_updates() {
        let mut s = store();
        let spec = spec_of("client").unwrap();
        let made = s.save(spec, json!({"name": "New"}), "2025-01-01T00:00:00Z").unwrap();
        assert_eq!(made["id"], 8);
        let upd = s.save(spec, json!({"id": 2, "website": "x.com"}), "2025-01-02T00:00:00Z").unwrap();
        assert_eq!((upd["name"].as_str(), upd["website"].as_str()), (Some("C2"), Some("x.com")));
        assert!(s.save(spec, json!({"website": "x"}), "now").is_err());
        assert!(s.save(spec, json!({"id": 99, "name": "x"}), "now").is_err());
    }
}
