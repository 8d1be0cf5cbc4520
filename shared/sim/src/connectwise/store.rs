//! The simulated tenant's mutable state: one id-ordered collection of JSON records per
//! endpoint, the opportunity forecasts, and the reads and writes the handlers perform
//! (listing with conditions/order/paging, create, replace, JSON-Patch, delete).

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

use super::error::{ApiError, ErrorItem};
use super::query::{ListQuery, compare_keys, project, sort_key};

/// How a reference to another record is written out after its id is looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefShape {
    /// `{id, name}` (name from the target's `name`).
    IdName,
    /// `{id, name}` where the target calls its label `description` (contact/opportunity types).
    Description,
    /// `{id, identifier, name}` (companies, members).
    IdIdentifierName,
    /// `{id, name}` with name = `firstName lastName` (contacts).
    PersonName,
}

/// One reference field of a writable collection.
#[derive(Debug)]
pub(crate) struct RefSpec {
    pub field: &'static str,
    pub target: &'static str,
    pub many: bool,
    pub shape: RefShape,
}

/// What the simulator knows about one endpoint's collection.
#[derive(Debug)]
pub(crate) struct Spec {
    /// Path under `/apis/3.0/`, e.g. `company/contacts`.
    pub path: &'static str,
    /// Noun in "X 5 not found".
    pub noun: &'static str,
    /// Resource in "x object is invalid".
    pub resource: &'static str,
    /// Takes POST/PUT/PATCH/DELETE (setup lists are read-only here).
    pub writable: bool,
    /// Fields a create or update must have: those the spec (S1, 2025.8) marks required, per
    /// psa-apis.md 1.7 and the generated models' constructors. Kept to those on purpose.
    pub required: &'static [&'static str],
    /// A field whose value must be unique (duplicates answer `ObjectExists`).
    pub unique: Option<&'static str>,
    /// Reference fields resolved on write.
    pub refs: &'static [RefSpec],
}

const fn r(field: &'static str, target: &'static str, many: bool, shape: RefShape) -> RefSpec {
    RefSpec { field, target, many, shape }
}

const fn setup(path: &'static str, noun: &'static str) -> Spec {
    Spec { path, noun, resource: noun, writable: false, required: &[], unique: None, refs: &[] }
}

/// Every collection endpoint of the simulator.
pub(crate) static SPECS: &[Spec] = &[
    Spec {
        path: "system/members",
        noun: "Member",
        resource: "member",
        writable: true,
        required: &["identifier", "firstName", "lastName"],
        unique: Some("identifier"),
        refs: &[
            r("securityRole", "system/securityroles", false, RefShape::IdName),
            r("type", "system/members/types", false, RefShape::IdName),
        ],
    },
    Spec {
        path: "company/companies",
        noun: "Company",
        resource: "company",
        writable: true,
        required: &["identifier", "name"],
        unique: Some("identifier"),
        refs: &[
            r("status", "company/companies/statuses", false, RefShape::IdName),
            r("types", "company/companies/types", true, RefShape::IdName),
        ],
    },
    Spec {
        path: "company/contacts",
        noun: "Contact",
        resource: "contact",
        writable: true,
        required: &["firstName"],
        unique: None,
        refs: &[
            r("company", "company/companies", false, RefShape::IdIdentifierName),
            r("types", "company/contacts/types", true, RefShape::Description),
        ],
    },
    Spec {
        path: "sales/opportunities",
        noun: "Opportunity",
        resource: "opportunity",
        writable: true,
        // S1 (2025.8) `NewOpportunity(name, primarySalesRep, company, contact)`: the four
        // fields the spec marks required.
        required: &["name", "primarySalesRep", "company", "contact"],
        unique: None,
        refs: &[
            r("company", "company/companies", false, RefShape::IdIdentifierName),
            r("contact", "company/contacts", false, RefShape::PersonName),
            r("primarySalesRep", "system/members", false, RefShape::IdIdentifierName),
            r("status", "sales/opportunities/statuses", false, RefShape::IdName),
            r("stage", "sales/stages", false, RefShape::IdName),
            r("type", "sales/opportunities/types", false, RefShape::Description),
        ],
    },
    Spec {
        path: "sales/activities",
        noun: "Activity",
        resource: "activity",
        writable: true,
        // S1 (2025.8) `NewActivity(name, assignTo)`.
        required: &["name", "assignTo"],
        unique: None,
        refs: &[
            r("type", "sales/activities/types", false, RefShape::IdName),
            r("status", "sales/activities/statuses", false, RefShape::IdName),
            r("company", "company/companies", false, RefShape::IdIdentifierName),
            r("contact", "company/contacts", false, RefShape::PersonName),
            r("opportunity", "sales/opportunities", false, RefShape::IdName),
            r("assignTo", "system/members", false, RefShape::IdIdentifierName),
        ],
    },
    Spec {
        path: "procurement/catalog",
        noun: "Catalog item",
        resource: "catalogItem",
        writable: true,
        required: &["identifier", "description"],
        unique: Some("identifier"),
        refs: &[
            r("category", "procurement/categories", false, RefShape::IdName),
            r("subcategory", "procurement/subcategories", false, RefShape::IdName),
            r("type", "procurement/types", false, RefShape::IdName),
        ],
    },
    setup("system/securityroles", "Security role"),
    setup("system/members/types", "Member type"),
    setup("company/companies/types", "Company type"),
    setup("company/companies/statuses", "Company status"),
    setup("company/contacts/types", "Contact type"),
    setup("sales/opportunities/statuses", "Opportunity status"),
    setup("sales/opportunities/types", "Opportunity type"),
    setup("sales/stages", "Stage"),
    setup("sales/probabilities", "Probability"),
    setup("sales/activities/types", "Activity type"),
    setup("sales/activities/statuses", "Activity status"),
    setup("procurement/types", "Product type"),
    setup("procurement/categories", "Category"),
    setup("procurement/subcategories", "Subcategory"),
];

/// The path of the opportunities collection (it has forecasts).
pub(crate) const OPPORTUNITIES: &str = "sales/opportunities";

/// Generated content to load a store from.
#[derive(Clone, Debug, Default)]
pub(crate) struct TenantData {
    /// (collection path, records with integer `id`).
    pub collections: Vec<(&'static str, Vec<Value>)>,
    /// (opportunity id, forecast items).
    pub forecasts: Vec<(i64, Vec<Value>)>,
}

/// One collection: its spec and records by id.
#[derive(Debug)]
pub(crate) struct Collection {
    pub spec: &'static Spec,
    pub records: BTreeMap<i64, Value>,
}

/// One page of a list, already serialised (a JSON array).
#[derive(Debug)]
pub(crate) struct Page {
    pub body: Vec<u8>,
    /// Matching records over all pages.
    pub total: usize,
    /// More matching records after this page (forward-only paging).
    pub more: bool,
    /// Id of the page's last record.
    pub last_id: Option<i64>,
}

/// Ids selected and ordered by one query, valid while the store is at `version`.
#[derive(Debug)]
struct Selection {
    path: &'static str,
    key: String,
    version: u64,
    ids: Arc<Vec<i64>>,
}

/// Selections kept for paging through recent queries.
const SELECTIONS_KEPT: usize = 8;

/// Who writes and when: stamped into `_info`.
#[derive(Clone, Debug)]
pub(crate) struct Stamp {
    pub now: String,
    pub by: String,
}

/// The whole mutable state.
#[derive(Debug)]
pub(crate) struct Store {
    collections: HashMap<&'static str, Collection>,
    forecasts: BTreeMap<i64, Vec<Value>>,
    next_item_id: i64,
    /// Bumped by every write; selections of older versions are stale.
    version: u64,
    selections: Mutex<Vec<Selection>>,
}

/// The collection whose path is the longest prefix of `segments`, and the segments after it.
pub(crate) fn route<'s>(segments: &'s [&'s str]) -> Option<(&'static Spec, &'s [&'s str])> {
    SPECS
        .iter()
        .filter_map(|s| {
            let parts: Vec<&str> = s.path.split('/').collect();
            (segments.len() >= parts.len() && segments[..parts.len()] == parts[..])
                .then(|| (s, &segments[parts.len()..], parts.len()))
        })
        .max_by_key(|(_, _, n)| *n)
        .map(|(s, rest, _)| (s, rest))
}

fn id_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn item(resource: &str, field: &str, code: &str, message: String) -> ErrorItem {
    ErrorItem { code: code.into(), message, resource: resource.into(), field: field.into() }
}

impl Store {
    /// A store holding `data` (collections without data start empty).
    pub(crate) fn new(data: TenantData) -> Self {
        let mut collections: HashMap<&'static str, Collection> =
            SPECS.iter().map(|s| (s.path, Collection { spec: s, records: BTreeMap::new() })).collect();
        let mut max_item = 0;
        for (path, records) in data.collections {
            if let Some(c) = collections.get_mut(path) {
                for rec in records {
                    if let Some(id) = rec.get("id").and_then(id_of) {
                        if let Some(items) = rec.get("communicationItems").and_then(Value::as_array) {
                            max_item =
                                items.iter().filter_map(|i| i.get("id").and_then(id_of)).fold(max_item, i64::max);
                        }
                        c.records.insert(id, rec);
                    }
                }
            }
        }
        Self {
            collections,
            forecasts: data.forecasts.into_iter().collect(),
            next_item_id: max_item + 1,
            version: 0,
            selections: Mutex::new(Vec::new()),
        }
    }

    fn coll(&self, path: &str) -> Result<&Collection, ApiError> {
        self.collections.get(path).ok_or_else(ApiError::no_endpoint)
    }

    /// Records of `path` matching `q`'s filters.
    pub(crate) fn count(&self, path: &str, q: &ListQuery) -> Result<usize, ApiError> {
        let c = self.coll(path)?;
        if q.filters.is_empty() {
            return Ok(c.records.len());
        }
        Ok(self.selection(c, q).len())
    }

    /// The ids `q` selects in `c`, in its order; one filter (and sort) pass per query,
    /// reused by the following pages until the next write.
    fn selection(&self, c: &Collection, q: &ListQuery) -> Arc<Vec<i64>> {
        {
            let kept = self.selections.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(hit) =
                kept.iter().find(|s| s.path == c.spec.path && s.key == q.key && s.version == self.version)
            {
                return Arc::clone(&hit.ids);
            }
        }
        let keep = |r: &&Value| q.filters.iter().all(|f| f.matches(r));
        let ids: Vec<i64> = if q.order.is_empty() {
            c.records.iter().filter(|(_, r)| keep(r)).map(|(id, _)| *id).collect()
        } else {
            let mut keyed: Vec<(Vec<_>, i64)> = c
                .records
                .iter()
                .filter(|(_, r)| keep(r))
                .map(|(id, r)| (q.order.iter().map(|(p, _)| sort_key(r, p)).collect(), *id))
                .collect();
            keyed.sort_by(|a, b| compare_keys(&a.0, &b.0, &q.order));
            keyed.into_iter().map(|(_, id)| id).collect()
        };
        let ids = Arc::new(ids);
        let mut kept = self.selections.lock().unwrap_or_else(|e| e.into_inner());
        kept.retain(|s| s.version == self.version);
        if kept.len() >= SELECTIONS_KEPT {
            kept.remove(0);
        }
        kept.push(Selection { path: c.spec.path, key: q.key.clone(), version: self.version, ids: Arc::clone(&ids) });
        ids
    }

    /// One page of `path` under `q`, serialised. `forward_only`: ids above `q.page_id`,
    /// no offset.
    pub(crate) fn list(&self, path: &str, q: &ListQuery, forward_only: bool) -> Result<Page, ApiError> {
        let c = self.coll(path)?;
        let (recs, total, more): (Vec<&Value>, usize, bool) = if forward_only {
            let from = q.page_id.map_or(Bound::Unbounded, Bound::Excluded);
            let mut it = c
                .records
                .range((from, Bound::Unbounded))
                .map(|(_, v)| v)
                .filter(|r| q.filters.iter().all(|f| f.matches(r)));
            let recs: Vec<&Value> = it.by_ref().take(q.page_size).collect();
            let more = it.next().is_some();
            let n = recs.len();
            (recs, n, more)
        } else {
            let offset = (q.page - 1).saturating_mul(q.page_size);
            if q.filters.is_empty() && q.order.is_empty() {
                (c.records.values().skip(offset).take(q.page_size).collect(), c.records.len(), false)
            } else {
                let ids = self.selection(c, q);
                let recs = ids.iter().skip(offset).take(q.page_size).filter_map(|id| c.records.get(id)).collect();
                (recs, ids.len(), false)
            }
        };
        let last_id = recs.last().and_then(|r| r.get("id")).and_then(Value::as_i64);
        let body = match &q.fields {
            Some(f) => serde_json::to_vec(&recs.iter().map(|r| project(r, f)).collect::<Vec<_>>()),
            None => serde_json::to_vec(&recs),
        }
        .map_err(|e| ApiError::server_error(format!("The page could not be serialised: {e}")))?;
        Ok(Page { body, total, more, last_id })
    }

    /// One record, optionally cut down to `fields`.
    pub(crate) fn get(&self, path: &str, id: i64, fields: Option<&[Vec<String>]>) -> Result<Value, ApiError> {
        let c = self.coll(path)?;
        let rec = c.records.get(&id).ok_or_else(|| ApiError::not_found(c.spec.noun, id))?;
        Ok(fields.map_or_else(|| rec.clone(), |f| project(rec, f)))
    }

    /// The forecast of opportunity `id`, totals computed from its items.
    pub(crate) fn forecast(&self, id: i64) -> Result<Value, ApiError> {
        let c = self.coll(OPPORTUNITIES)?;
        let opp = c.records.get(&id).ok_or_else(|| ApiError::not_found(c.spec.noun, id))?;
        let items = self.forecasts.get(&id).cloned().unwrap_or_default();
        Ok(forecast_body(id, opp, items))
    }

    /// Adds a forecast item to opportunity `id` (`POST /sales/opportunities/{id}/forecast`,
    /// S2 `ForecastItem`), checked by [`check_forecast_item`]; `revenue`, `cost` and
    /// `quantity` default to 0, 0 and 1, `includeFlag` to true. Answers the item.
    pub(crate) fn add_forecast_item(&mut self, id: i64, body: Value) -> Result<Value, ApiError> {
        self.opportunity(id)?;
        let Value::Object(mut map) = body else {
            return Err(ApiError::bad_body("The ForecastItem must be sent as a JSON object."));
        };
        for (field, default) in
            [("revenue", json!(0.0)), ("cost", json!(0.0)), ("quantity", json!(1.0)), ("includeFlag", json!(true))]
        {
            if map.get(field).is_none_or(Value::is_null) {
                map.insert(field.into(), default);
            }
        }
        check_forecast_item(&map)?;
        let next =
            self.forecasts.values().flatten().filter_map(|i| i.get("id").and_then(Value::as_i64)).max().unwrap_or(0)
                + 1;
        map.insert("id".into(), json!(next));
        map.insert("opportunityId".into(), json!(id));
        let stored = Value::Object(map);
        self.forecasts.entry(id).or_default().push(stored.clone());
        Ok(stored)
    }

    fn opportunity(&self, id: i64) -> Result<&Value, ApiError> {
        let c = self.coll(OPPORTUNITIES)?;
        c.records.get(&id).ok_or_else(|| ApiError::not_found(c.spec.noun, id))
    }

    /// Where forecast item `item` of opportunity `id` is kept: 404 for an unknown
    /// opportunity, or an item that is not one of its own.
    fn forecast_slot(&self, id: i64, item: i64) -> Result<usize, ApiError> {
        self.opportunity(id)?;
        self.forecasts
            .get(&id)
            .and_then(|items| items.iter().position(|i| i.get("id").and_then(Value::as_i64) == Some(item)))
            .ok_or_else(|| ApiError::not_found(FORECAST_ITEM, item))
    }

    /// One forecast item (`GET /sales/opportunities/{id}/forecast/{itemId}`, S1).
    pub(crate) fn forecast_item(&self, id: i64, item: i64) -> Result<Value, ApiError> {
        let at = self.forecast_slot(id, item)?;
        Ok(self.forecasts[&id][at].clone())
    }

    /// Replaces forecast item `item` (`PUT …/forecast/{itemId}`, S1): the body is the whole
    /// item, checked as on create; its id and opportunity stay.
    pub(crate) fn replace_forecast_item(&mut self, id: i64, item: i64, body: Value) -> Result<Value, ApiError> {
        let at = self.forecast_slot(id, item)?;
        let Value::Object(map) = body else {
            return Err(ApiError::bad_body("The ForecastItem must be sent as a JSON object."));
        };
        self.store_forecast_item(id, item, at, map)
    }

    /// Applies JSON-Patch operations to forecast item `item` (`PATCH …/forecast/{itemId}`,
    /// S1), then checks the result as on create.
    pub(crate) fn patch_forecast_item(&mut self, id: i64, item: i64, ops: Value) -> Result<Value, ApiError> {
        let at = self.forecast_slot(id, item)?;
        let mut doc = self.forecasts[&id][at].clone();
        apply_patch(&mut doc, ops)?;
        let Value::Object(map) = doc else {
            return Err(ApiError::bad_body("The patch replaced the whole item with something that is not an object."));
        };
        self.store_forecast_item(id, item, at, map)
    }

    fn store_forecast_item(
        &mut self,
        id: i64,
        item: i64,
        at: usize,
        mut map: Map<String, Value>,
    ) -> Result<Value, ApiError> {
        check_forecast_item(&map)?;
        map.insert("id".into(), json!(item));
        map.insert("opportunityId".into(), json!(id));
        let stored = Value::Object(map);
        if let Some(items) = self.forecasts.get_mut(&id) {
            items[at] = stored.clone();
        }
        Ok(stored)
    }

    /// Deletes forecast item `item` (`DELETE …/forecast/{itemId}`, S1, answered 204).
    pub(crate) fn delete_forecast_item(&mut self, id: i64, item: i64) -> Result<(), ApiError> {
        let at = self.forecast_slot(id, item)?;
        if let Some(items) = self.forecasts.get_mut(&id) {
            items.remove(at);
        }
        Ok(())
    }

    /// Creates a record from `body`; answers the stored record.
    pub(crate) fn create(&mut self, path: &str, body: Value, stamp: &Stamp) -> Result<Value, ApiError> {
        let spec = self.coll(path)?.spec;
        let Value::Object(mut map) = body else {
            return Err(ApiError::bad_body(format!("The {} must be sent as a JSON object.", spec.resource)));
        };
        map.remove("id");
        map.remove("_info");
        apply_defaults(spec.path, &mut map);
        let id = self.coll(path)?.records.keys().next_back().map_or(1, |m| m + 1);
        self.check_and_resolve(spec, &mut map, None)?;
        map.insert("id".into(), json!(id));
        map.insert(
            "_info".into(),
            json!({"lastUpdated": stamp.now, "dateEntered": stamp.now, "enteredBy": stamp.by, "updatedBy": stamp.by}),
        );
        let rec = self.finish(map);
        self.insert(path, id, rec.clone())?;
        Ok(rec)
    }

    /// Replaces record `id` with `body` (keeping who entered it and when).
    pub(crate) fn replace(&mut self, path: &str, id: i64, body: Value, stamp: &Stamp) -> Result<Value, ApiError> {
        let c = self.coll(path)?;
        let spec = c.spec;
        let old = c.records.get(&id).ok_or_else(|| ApiError::not_found(spec.noun, id))?;
        let old_info = old.get("_info").cloned().unwrap_or_else(|| json!({}));
        let Value::Object(mut map) = body else {
            return Err(ApiError::bad_body(format!("The {} must be sent as a JSON object.", spec.resource)));
        };
        map.remove("_info");
        self.check_and_resolve(spec, &mut map, Some(id))?;
        map.insert("id".into(), json!(id));
        map.insert("_info".into(), restamp(old_info, stamp));
        let rec = self.finish(map);
        self.insert(path, id, rec.clone())?;
        Ok(rec)
    }

    /// Applies a JSON-Patch array to record `id`. CW accepts paths without the leading
    /// `/` and `replace` of a field the record does not have yet; both are honoured.
    pub(crate) fn patch(&mut self, path: &str, id: i64, ops: Value, stamp: &Stamp) -> Result<Value, ApiError> {
        let c = self.coll(path)?;
        let spec = c.spec;
        let mut doc = c.records.get(&id).cloned().ok_or_else(|| ApiError::not_found(spec.noun, id))?;
        apply_patch(&mut doc, ops)?;
        let old_info = doc.get("_info").cloned().unwrap_or_else(|| json!({}));
        let Value::Object(mut map) = doc else {
            return Err(ApiError::bad_body(
                "The patch replaced the whole record with something that is not an object.",
            ));
        };
        self.check_and_resolve(spec, &mut map, Some(id))?;
        map.insert("id".into(), json!(id));
        map.insert("_info".into(), restamp(old_info, stamp));
        let rec = self.finish(map);
        self.insert(path, id, rec.clone())?;
        Ok(rec)
    }

    /// Deletes record `id` (and an opportunity's forecast).
    pub(crate) fn delete(&mut self, path: &str, id: i64) -> Result<(), ApiError> {
        let c = self.collections.get_mut(path).ok_or_else(ApiError::no_endpoint)?;
        c.records.remove(&id).ok_or_else(|| ApiError::not_found(c.spec.noun, id))?;
        self.version += 1;
        if path == OPPORTUNITIES {
            self.forecasts.remove(&id);
        }
        Ok(())
    }

    fn insert(&mut self, path: &str, id: i64, rec: Value) -> Result<(), ApiError> {
        let c = self.collections.get_mut(path).ok_or_else(ApiError::no_endpoint)?;
        c.records.insert(id, rec);
        self.version += 1;
        Ok(())
    }

    /// Gives communication items without an id the next free one.
    fn finish(&mut self, mut map: Map<String, Value>) -> Value {
        if let Some(Value::Array(items)) = map.get_mut("communicationItems") {
            for it in items.iter_mut().filter_map(Value::as_object_mut) {
                if it.get("id").and_then(id_of).is_none() {
                    it.insert("id".into(), json!(self.next_item_id));
                    self.next_item_id += 1;
                }
            }
        }
        Value::Object(map)
    }

    /// Required fields, unique field and references; every problem in one 400.
    fn check_and_resolve(&self, spec: &Spec, map: &mut Map<String, Value>, own: Option<i64>) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        for f in spec.required {
            let missing = match map.get(*f) {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.trim().is_empty(),
                _ => false,
            };
            if missing {
                errors.push(item(spec.resource, f, "MissingRequiredField", format!("The {f} field is required.")));
            }
        }
        // A unique field an update leaves as it was is not checked again (so an edit of
        // another field costs no scan of every record).
        let unchanged = |field: &str, v: &str| {
            own.and_then(|id| self.collections.get(spec.path)?.records.get(&id))
                .and_then(|r| r.get(field).and_then(Value::as_str))
                .is_some_and(|x| x.eq_ignore_ascii_case(v))
        };
        if let Some(field) = spec.unique
            && let Some(v) = map.get(field).and_then(Value::as_str)
            && !unchanged(field, v)
        {
            let taken = self.collections.get(spec.path).is_some_and(|c| {
                c.records.iter().any(|(id, r)| {
                    Some(*id) != own && r.get(field).and_then(Value::as_str).is_some_and(|x| x.eq_ignore_ascii_case(v))
                })
            });
            if taken {
                errors.push(item(
                    spec.resource,
                    field,
                    "ObjectExists",
                    format!("The {field} '{v}' is already in use."),
                ));
            }
        }
        for rs in spec.refs {
            let Some(v) = map.get_mut(rs.field) else { continue };
            if v.is_null() {
                continue;
            }
            if rs.many {
                let Value::Array(list) = v else {
                    errors.push(item(spec.resource, rs.field, "InvalidField", format!("{} must be a list.", rs.field)));
                    continue;
                };
                for el in list.iter_mut() {
                    match self.build_ref(spec, rs, el) {
                        Ok(built) => *el = built,
                        Err(e) => errors.push(e),
                    }
                }
            } else {
                match self.build_ref(spec, rs, v) {
                    Ok(built) => *v = built,
                    Err(e) => errors.push(e),
                }
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(ApiError::invalid_object(spec.resource, errors)) }
    }

    fn build_ref(&self, spec: &Spec, rs: &RefSpec, v: &Value) -> Result<Value, ErrorItem> {
        let Some(id) = v.get("id").and_then(id_of) else {
            return Err(item(spec.resource, rs.field, "InvalidField", format!("{} needs an id.", rs.field)));
        };
        let target = self.collections.get(rs.target).and_then(|c| c.records.get(&id)).ok_or_else(|| {
            item(spec.resource, rs.field, "InvalidField", format!("The {} with id {id} was not found.", rs.field))
        })?;
        let text = |k: &str| target.get(k).cloned().unwrap_or(Value::Null);
        Ok(match rs.shape {
            RefShape::IdName => json!({"id": id, "name": text("name")}),
            RefShape::Description => json!({"id": id, "name": text("description")}),
            RefShape::IdIdentifierName => json!({"id": id, "identifier": text("identifier"), "name": text("name")}),
            RefShape::PersonName => {
                let part = |k: &str| target.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                let name = format!("{} {}", part("firstName"), part("lastName")).trim().to_string();
                json!({"id": id, "name": name})
            }
        })
    }
}

fn restamp(old_info: Value, stamp: &Stamp) -> Value {
    let mut info = match old_info {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    info.insert("lastUpdated".into(), json!(stamp.now));
    info.insert("updatedBy".into(), json!(stamp.by));
    Value::Object(info)
}

/// Applies a JSON-Patch array to `doc`. CW accepts paths without the leading `/` and
/// `replace` of a field the document does not have yet; both are honoured.
pub(crate) fn apply_patch(doc: &mut Value, ops: Value) -> Result<(), ApiError> {
    let Value::Array(raw_ops) = ops else {
        return Err(ApiError::bad_body("The body of a PATCH must be a JSON array of patch operations."));
    };
    for (n, raw) in raw_ops.into_iter().enumerate() {
        let op = normalise_op(raw).map_err(|e| ApiError::bad_body(format!("Patch operation {n}: {e}")))?;
        let parsed: json_patch::PatchOperation = serde_json::from_value(op.clone())
            .map_err(|e| ApiError::bad_body(format!("Patch operation {n} is invalid: {e}")))?;
        if let Err(e) = json_patch::patch(doc, std::slice::from_ref(&parsed)) {
            let as_add = (op["op"] == "replace")
                .then(|| {
                    let mut add = op.clone();
                    add["op"] = json!("add");
                    serde_json::from_value::<json_patch::PatchOperation>(add).ok()
                })
                .flatten();
            match as_add {
                Some(add) if json_patch::patch(doc, std::slice::from_ref(&add)).is_ok() => {}
                _ => return Err(ApiError::bad_body(format!("Patch operation {n} cannot be applied: {e}"))),
            }
        }
    }
    Ok(())
}

fn normalise_op(raw: Value) -> Result<Value, String> {
    let Value::Object(mut m) = raw else { return Err("each operation must be a JSON object".into()) };
    let op = m.get("op").and_then(Value::as_str).ok_or("the \"op\" member is missing")?.to_ascii_lowercase();
    m.insert("op".into(), json!(op));
    let path = m.get("path").and_then(Value::as_str).ok_or("the \"path\" member is missing")?.to_string();
    if !path.starts_with('/') && !path.is_empty() {
        m.insert("path".into(), json!(format!("/{path}")));
    }
    if let Some(from) = m.get("from").and_then(Value::as_str).map(str::to_string)
        && !from.starts_with('/')
        && !from.is_empty()
    {
        m.insert("from".into(), json!(format!("/{from}")));
    }
    Ok(Value::Object(m))
}

/// Defaults CW fills in on create.
fn apply_defaults(path: &str, map: &mut Map<String, Value>) {
    let mut set = |k: &str, v: Value| {
        map.entry(k.to_string()).or_insert(v);
    };
    match path {
        "system/members" => {
            set("inactiveFlag", json!(false));
            set("adminFlag", json!(false));
        }
        "company/companies" => {
            set("deletedFlag", json!(false));
            set("types", json!([]));
            set("status", json!({"id": super::generator::DEFAULT_COMPANY_STATUS}));
            set("customFields", json!([]));
        }
        "company/contacts" => {
            set("inactiveFlag", json!(false));
            set("types", json!([]));
            set("communicationItems", json!([]));
        }
        "sales/opportunities" => {
            set("status", json!({"id": super::generator::DEFAULT_OPPORTUNITY_STATUS}));
            set("stage", json!({"id": super::generator::DEFAULT_STAGE}));
        }
        "sales/activities" => {
            set("status", json!({"id": super::generator::DEFAULT_ACTIVITY_STATUS}));
        }
        "procurement/catalog" => {
            set("inactiveFlag", json!(false));
            set("billableOption", json!("Billable"));
        }
        _ => {}
    }
}

/// The noun of a forecast item in a 404 ("ForecastItem 12 not found").
const FORECAST_ITEM: &str = "ForecastItem";

/// The checks of a forecast item as written (S2 `ForecastItem`), every problem in one 400
/// `InvalidObject`: `forecastType` one of the five types (required by the spec), a
/// `forecastDescription` of at most 50 characters (S1 "Max length: 50"), and numbers
/// where the spec has numbers. UNCONFIRMED: the spec also marks `opportunity` and `status`
/// required, but the opportunity is the one in the path and ConnectWise is assumed to take
/// its status from it, so neither is demanded here; the exact messages are ours.
fn check_forecast_item(map: &Map<String, Value>) -> Result<(), ApiError> {
    const TYPES: &[&str] = &["Product", "Service", "Agreement", "Other1", "Other2"];
    let mut errors = Vec::new();
    let kind = map.get("forecastType").and_then(Value::as_str).unwrap_or_default();
    if !TYPES.contains(&kind) {
        let message = format!("forecastType must be one of {}", TYPES.join(", "));
        errors.push(item(FORECAST_ITEM, "forecastType", "InvalidField", message));
    }
    if let Some(d) = map.get("forecastDescription").and_then(Value::as_str)
        && d.chars().count() > 50
    {
        let message = "forecastDescription may hold at most 50 characters.".to_string();
        errors.push(item(FORECAST_ITEM, "forecastDescription", "InvalidField", message));
    }
    for field in ["revenue", "cost", "quantity", "margin", "recurringRevenue", "recurringCost"] {
        if map.get(field).is_some_and(|v| !v.is_null() && !v.is_number()) {
            errors.push(item(FORECAST_ITEM, field, "InvalidField", format!("{field} must be a number.")));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(ApiError::invalid_object(FORECAST_ITEM, errors)) }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn totals<'a>(items: impl Iterator<Item = &'a Value>) -> Value {
    let (mut revenue, mut cost) = (0.0, 0.0);
    for it in items {
        revenue += it.get("revenue").and_then(Value::as_f64).unwrap_or(0.0);
        cost += it.get("cost").and_then(Value::as_f64).unwrap_or(0.0);
    }
    let margin = revenue - cost;
    let percentage = if revenue > 0.0 { round2(margin / revenue * 100.0) } else { 0.0 };
    json!({
        "revenue": round2(revenue), "cost": round2(cost), "margin": round2(margin),
        "percentage": percentage, "includeFlag": true,
    })
}

fn forecast_body(id: i64, opp: &Value, items: Vec<Value>) -> Value {
    let of_type = |t: &'static str| move |i: &&Value| i.get("forecastType").and_then(Value::as_str) == Some(t);
    let status_name = opp.pointer("/status/name").and_then(Value::as_str).unwrap_or("Open");
    let all = totals(items.iter());
    let probability: u64 = opp
        .pointer("/probability/name")
        .and_then(Value::as_str)
        .and_then(|n| n.trim_end_matches('%').trim().parse().ok())
        .unwrap_or(0);
    let (won, lost, open) = match status_name {
        "Won" => (all.clone(), totals([].iter()), totals([].iter())),
        "Lost" | "No Decision" => (totals([].iter()), all.clone(), totals([].iter())),
        _ => (totals([].iter()), totals([].iter()), all.clone()),
    };
    let recurring: f64 = items
        .iter()
        .filter(|i| i.get("recurringFlag").and_then(Value::as_bool) == Some(true))
        .filter_map(|i| i.get("revenue").and_then(Value::as_f64))
        .sum();
    json!({
        "id": id,
        "forecastItems": items,
        "productRevenue": totals(items.iter().filter(of_type("Product"))),
        "serviceRevenue": totals(items.iter().filter(of_type("Service"))),
        "agreementRevenue": totals(items.iter().filter(of_type("Agreement"))),
        "timeRevenue": totals([].iter()),
        "expenseRevenue": totals([].iter()),
        "forecastRevenueTotals": all.clone(),
        "inclusiveRevenueTotals": all.clone(),
        "recurringTotal": round2(recurring),
        "wonRevenue": won,
        "lostRevenue": lost,
        "openRevenue": open,
        "otherRevenue1": totals(items.iter().filter(of_type("Other1"))),
        "otherRevenue2": totals(items.iter().filter(of_type("Other2"))),
        "salesTaxRevenue": 0.0,
        "forecastTotalWithTaxes": all.get("revenue").cloned().unwrap_or(json!(0.0)),
        "expectedProbability": probability,
        "taxCode": {"id": 1, "name": "Tax-State"},
        "billingTerms": {"id": 1, "name": "Net 30 days"},
        "currency": {"id": 1, "symbol": "$", "currencyCode": "USD", "name": "US Dollars"},
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use axum::http::StatusCode;

    fn store() -> Store {
        let data = TenantData {
            collections: vec![
                ("company/companies", vec![json!({"id": 1, "identifier": "Acme", "name": "Acme"})]),
                ("company/contacts", vec![json!({"id": 2, "firstName": "Ada", "company": {"id": 1}})]),
                ("system/members", vec![json!({"id": 3, "identifier": "jdoe"})]),
                ("sales/opportunities/statuses", vec![json!({"id": 1, "name": "Open"})]),
                ("sales/stages", vec![json!({"id": 1, "name": "Prospecting"})]),
                ("sales/activities/statuses", vec![json!({"id": 1, "name": "Open"})]),
            ],
            forecasts: Vec::new(),
        };
        Store::new(data)
    }

    fn stamp() -> Stamp {
        Stamp { now: "2025-07-01T00:00:00Z".into(), by: "api".into() }
    }

    fn missing(e: &ApiError) -> Vec<&str> {
        e.errors.iter().filter(|i| i.code == "MissingRequiredField").map(|i| i.field.as_str()).collect()
    }

    #[test]
    fn an_opportunity_needs_the_sales_rep_company_and_contact_the_spec_requires() {
        let mut s = store();
        let err = s.create(OPPORTUNITIES, json!({"name": "Deal"}), &stamp()).unwrap_err();
        assert_eq!((err.status, err.code.as_str()), (StatusCode::BAD_REQUEST, "InvalidObject"));
        assert_eq!(missing(&err), ["primarySalesRep", "company", "contact"]);
        let ok = json!({"name": "Deal", "primarySalesRep": {"id": 3}, "company": {"id": 1}, "contact": {"id": 2}});
        let made = s.create(OPPORTUNITIES, ok, &stamp()).unwrap();
        assert_eq!(made["primarySalesRep"]["identifier"], "jdoe");
        assert_eq!(made["contact"]["name"], "Ada");
    }

    #[test]
    fn an_activity_needs_a_member_to_be_assigned_to() {
        let mut s = store();
        let err = s.create("sales/activities", json!({"name": "Call"}), &stamp()).unwrap_err();
        assert_eq!(missing(&err), ["assignTo"]);
        assert!(s.create("sales/activities", json!({"name": "Call", "assignTo": {"id": 3}}), &stamp()).is_ok());
    }

    #[test]
    fn forecast_items_are_added_to_an_opportunity_and_read_back_in_its_forecast() {
        let mut s = store();
        let ok = json!({"name": "Deal", "primarySalesRep": {"id": 3}, "company": {"id": 1}, "contact": {"id": 2}});
        let id = s.create(OPPORTUNITIES, ok, &stamp()).unwrap()["id"].as_i64().unwrap();
        let item = json!({"forecastType": "Product", "productDescription": "Backup", "quantity": 2, "revenue": 600});
        let made = s.add_forecast_item(id, item).unwrap();
        assert_eq!((made["includeFlag"].as_bool(), made["cost"].as_f64()), (Some(true), Some(0.0)));
        let forecast = s.forecast(id).unwrap();
        assert_eq!(forecast["forecastItems"][0]["productDescription"], "Backup");
        let err = s.add_forecast_item(id, json!({"forecastType": "Hardware"})).unwrap_err();
        assert_eq!((err.status, err.errors[0].field.as_str()), (StatusCode::BAD_REQUEST, "forecastType"));
        let err = s.add_forecast_item(987_654, json!({"forecastType": "Product"})).unwrap_err();
        assert_eq!(err.status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn forecast_items_are_read_replaced_patched_and_deleted_one_by_one() {
        let mut s = store();
        let ok = json!({"name": "Deal", "primarySalesRep": {"id": 3}, "company": {"id": 1}, "contact": {"id": 2}});
        let id = s.create(OPPORTUNITIES, ok, &stamp()).unwrap()["id"].as_i64().unwrap();
        let item = |s: &mut Store, revenue: f64| {
            let body = json!({"forecastType": "Other1", "forecastDescription": "Value", "revenue": revenue});
            s.add_forecast_item(id, body).unwrap()["id"].as_i64().unwrap()
        };
        let (a, b) = (item(&mut s, 100.0), item(&mut s, 200.0));
        assert_eq!(s.forecast_item(id, a).unwrap()["revenue"], 100.0);
        let put = s.replace_forecast_item(
            id,
            a,
            json!({"forecastType": "Product", "productDescription": "Kit", "revenue": 150}),
        );
        assert_eq!(put.unwrap()["id"], a, "a replaced item keeps its id");
        let patched =
            s.patch_forecast_item(id, b, json!([{"op": "replace", "path": "revenue", "value": 250}])).unwrap();
        assert_eq!(
            (patched["revenue"].as_f64(), patched["forecastDescription"].as_str()),
            (Some(250.0), Some("Value"))
        );
        assert_eq!(s.forecast(id).unwrap()["forecastRevenueTotals"]["revenue"], 400.0);
        s.delete_forecast_item(id, a).unwrap();
        assert_eq!(s.forecast(id).unwrap()["forecastItems"].as_array().unwrap().len(), 1);
        assert_eq!(s.forecast_item(id, a).unwrap_err().status, StatusCode::NOT_FOUND);
        assert_eq!(s.delete_forecast_item(id, a).unwrap_err().message, format!("ForecastItem {a} not found"));
        let bad =
            s.patch_forecast_item(id, b, json!([{"op": "replace", "path": "/forecastType", "value": "Hardware"}]));
        assert_eq!(bad.unwrap_err().errors[0].field, "forecastType");
        let long =
            s.replace_forecast_item(id, b, json!({"forecastType": "Other1", "forecastDescription": "x".repeat(51)}));
        assert_eq!(long.unwrap_err().errors[0].field, "forecastDescription");
        let text = s.patch_forecast_item(id, b, json!([{"op": "replace", "path": "/revenue", "value": "lots"}]));
        assert_eq!(text.unwrap_err().errors[0].field, "revenue");
        assert_eq!(s.forecast_item(id, b).unwrap()["revenue"], 250, "a refused write changes nothing");
    }

    #[test]
    fn a_patch_of_a_record_that_is_not_there_is_not_found() {
        let mut s = store();
        let ops = json!([{"op": "replace", "path": "/name", "value": "x"}]);
        let err = s.patch("company/companies", 987_654_321, ops, &stamp()).unwrap_err();
        assert_eq!((err.status, err.code.as_str()), (StatusCode::NOT_FOUND, "NotFound"));
    }
}
