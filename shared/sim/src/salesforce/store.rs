//! The simulated org's records: one table per sObject (rows as JSON field maps), 18-char
//! ids with the right key prefix, SOQL execution (filter, order, limit, projection with
//! `attributes`), query locators for `nextRecordsUrl` paging, and create / update / upsert
//! with the validation Salesforce does (unknown field, read-only or formula field, restricted
//! picklist, text over its length, required fields, the org's validation rule), picklist and
//! checkbox defaults and formula values; deletes to the recycle bin (`IsDeleted`), with the org's delete log
//! ([`Tombstone`]s) that `sobjects/{Type}/deleted/` reads.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::schema::{self, Field, Kind, Object, attributes};
use super::soql::{Filter, Literal, Op, Pat, Soql, Test};
use crate::common::{format_unix, parse_timestamp};

/// Query locators kept at once; older ones answer `INVALID_QUERY_LOCATOR` (real locators
/// expire after about 15 minutes of disuse, UNCONFIRMED).
pub(crate) const MAX_LOCATORS: usize = 256;

/// The rows generated for one tenant, per object API name, in id order.
#[derive(Clone, Debug, Default)]
pub(crate) struct TenantData {
    pub tables: Vec<(&'static str, Vec<Map<String, Value>>)>,
    /// The user writes are attributed to (the client-credentials "run-as" user).
    pub run_as_user_id: String,
}

impl TenantData {
    /// The rows of one object.
    pub(crate) fn rows(&self, object: &str) -> &[Map<String, Value>] {
        self.tables.iter().find(|(o, _)| *o == object).map_or(&[], |(_, r)| r.as_slice())
    }
}

/// `YYYY-MM-DDTHH:MM:SS.000+0000`, the dateTime form Salesforce answers with (salesforce-api.md 2.4).
pub(crate) fn sf_datetime(secs: i64) -> String {
    let canonical = format_unix(secs);
    format!("{}.000+0000", canonical.trim_end_matches('Z'))
}

/// Parses a Salesforce dateTime (`...000+0000`) or any form [`parse_timestamp`] reads.
pub(crate) fn parse_sf_datetime(s: &str) -> Option<i64> {
    let s = s.trim();
    match s.strip_suffix("+0000") {
        Some(head) => parse_timestamp(&format!("{head}Z")),
        None => parse_timestamp(s),
    }
}

const BASE36: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const CHECKSUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// The 18-character id number `n` of an object with key `prefix`: the 15-character id
/// (prefix, instance `8d`, base-36 serial) plus the case-checksum suffix Salesforce
/// appends. Ids of one object sort in creation order.
pub(crate) fn make_id(prefix: &str, n: u64) -> String {
    let mut serial = [b'0'; 10];
    let mut v = n;
    for slot in serial.iter_mut().rev() {
        *slot = BASE36[(v % 36) as usize];
        v /= 36;
    }
    let id15 = format!("{prefix}8d{}", String::from_utf8_lossy(&serial));
    let bytes = id15.as_bytes();
    let mut suffix = String::new();
    for chunk in bytes.chunks(5) {
        let mask = chunk.iter().enumerate().fold(0usize, |m, (i, c)| m | (usize::from(c.is_ascii_uppercase()) << i));
        suffix.push(char::from(CHECKSUM[mask]));
    }
    id15 + &suffix
}

#[derive(Debug)]
struct Table {
    object: &'static Object,
    rows: Vec<Map<String, Value>>,
    by_id: HashMap<String, usize>,
}

/// Who and when, for a write.
#[derive(Clone, Debug)]
pub(crate) struct Stamp {
    pub now: i64,
}

/// What an upsert did.
#[derive(Debug)]
pub(crate) enum Upserted {
    Created(String),
    Updated(String),
    /// Several records hold the key: their URLs.
    Ambiguous(Vec<String>),
}

/// One entry of the org's delete log: which record went to the recycle bin, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tombstone {
    pub object: &'static str,
    pub id: String,
    /// Unix seconds of the delete (`deletedDate`).
    pub at: i64,
}

/// Every table, the id serial, the live query locators and the delete log.
#[derive(Debug)]
pub(crate) struct Store {
    tables: Vec<Table>,
    serial: u64,
    run_as: String,
    locators: BTreeMap<u64, Arc<Locator>>,
    next_locator: u64,
    /// Deletes in the order they happened (generated deleted rows first).
    tombstones: Vec<Tombstone>,
}

/// The rows of a query being paged, and its batch size.
#[derive(Debug)]
pub(crate) struct Locator {
    pub rows: Vec<Value>,
    pub batch: usize,
}

fn text_of(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.is_empty())
}

/// Sets the fields Salesforce derives (full names, closed flags, a task's account).
fn derive(object: &str, row: &mut Map<String, Value>, account_of_contact: &dyn Fn(&str) -> Option<String>) {
    let get = |row: &Map<String, Value>, k: &str| row.get(k).and_then(text_of).map(str::to_string);
    match object {
        "User" | "Contact" => {
            let name =
                [get(row, "FirstName"), get(row, "LastName")].into_iter().flatten().collect::<Vec<_>>().join(" ");
            row.insert("Name".into(), Value::String(name));
        }
        "Opportunity" => {
            let stage = get(row, "StageName").unwrap_or_default();
            row.insert("IsClosed".into(), Value::Bool(stage.starts_with("Closed")));
            row.insert("IsWon".into(), Value::Bool(stage == "Closed Won"));
        }
        "Task" | "Event" => {
            if object == "Task" {
                row.insert("IsClosed".into(), Value::Bool(get(row, "Status").as_deref() == Some("Completed")));
            }
            // salesforce-api.md 3.2: AccountId comes from WhatId when it is an Account,
            // else from a Contact WhoId (opportunities' accounts are not followed here).
            let what = get(row, "WhatId");
            let who = get(row, "WhoId");
            let account = match what {
                Some(w) if w.starts_with("001") => Some(w),
                _ => who.filter(|w| w.starts_with("003")).and_then(|w| account_of_contact(&w)),
            };
            row.insert("AccountId".into(), account.map_or(Value::Null, Value::String));
        }
        _ => {}
    }
    compute_formulas(object, row);
}

/// Sets the formula fields (schema.rs) from the row's other fields, as the org computes
/// them on every save and read.
fn compute_formulas(object: &str, row: &mut Map<String, Value>) {
    let text = |row: &Map<String, Value>, k: &str| row.get(k).and_then(text_of).map(str::to_string);
    let num = |row: &Map<String, Value>, k: &str| row.get(k).and_then(Value::as_f64);
    let (name, value) = match object {
        // BEGINS(TEXT(Type), "Customer")
        "Account" => ("Is_Customer__c", Value::Bool(text(row, "Type").is_some_and(|t| t.starts_with("Customer")))),
        // NOT(ISBLANK(Email))
        "Contact" => ("Has_Email__c", Value::Bool(text(row, "Email").is_some())),
        // ISPICKVAL(LeadSource, "Web")
        "Lead" => ("Is_Web_Lead__c", Value::Bool(text(row, "LeadSource").as_deref() == Some("Web"))),
        // Amount * Probability (a percent field is a fraction in formulas; blank when either is).
        "Opportunity" => (
            "Weighted_Amount__c",
            match (num(row, "Amount"), num(row, "Probability")) {
                (Some(a), Some(p)) => json!((a * p).round() / 100.0),
                _ => Value::Null,
            },
        ),
        // ISPICKVAL(TaskSubtype, "Call")
        "Task" => ("Is_Call__c", Value::Bool(text(row, "TaskSubtype").as_deref() == Some("Call"))),
        _ => return,
    };
    row.insert(name.into(), value);
}

/// The org's validation rules, run on the record as it would be saved (after a create's
/// defaults, or an update's fields merged into the stored row). One rule is seeded, on
/// Opportunity: `Amount < 0` is refused with `FIELD_CUSTOM_VALIDATION_EXCEPTION`, its error
/// shown on the `Amount` field.
fn validate(object: &str, row: &Map<String, Value>) -> Result<(), ApiError> {
    if object == "Opportunity" && row.get("Amount").and_then(Value::as_f64).is_some_and(|a| a < 0.0) {
        return Err(ApiError::custom_validation(schema::NEGATIVE_AMOUNT_MESSAGE, "Amount"));
    }
    Ok(())
}

fn blank(v: &Value) -> bool {
    v.is_null() || v.as_str() == Some("")
}

fn compare_values(field: &Field, a: &Value, b: &Value) -> Ordering {
    match field.kind {
        Kind::DateTime => a.as_str().and_then(parse_sf_datetime).cmp(&b.as_str().and_then(parse_sf_datetime)),
        Kind::Currency | Kind::Double | Kind::Percent | Kind::Int => {
            a.as_f64().partial_cmp(&b.as_f64()).unwrap_or(Ordering::Equal)
        }
        Kind::Boolean => a.as_bool().cmp(&b.as_bool()),
        Kind::Id | Kind::Reference(_) | Kind::Date => a.as_str().cmp(&b.as_str()),
        _ => {
            let la = a.as_str().map(str::to_lowercase);
            let lb = b.as_str().map(str::to_lowercase);
            la.cmp(&lb)
        }
    }
}

fn literal_value(field: &Field, lit: &Literal) -> Result<Value, ApiError> {
    let wrong = |want: &str, quoted: bool| {
        ApiError::invalid_field(format!(
            "value of filter criterion for field '{}' must be of type {want} and should {}be enclosed in quotes",
            field.name,
            if quoted { "" } else { "not " }
        ))
    };
    Ok(match (field.kind, lit) {
        (_, Literal::Null) => Value::Null,
        (Kind::DateTime, Literal::DateTime(secs)) => Value::String(sf_datetime(*secs)),
        (Kind::DateTime, _) => return Err(wrong("dateTime", false)),
        (Kind::Date, Literal::Date(d)) => Value::String(d.clone()),
        (Kind::Date, _) => return Err(wrong("date", false)),
        (Kind::Boolean, Literal::Bool(b)) => Value::Bool(*b),
        (Kind::Boolean, _) => return Err(wrong("boolean", false)),
        (_, Literal::Num(n)) if field.is_number() => json!(n),
        _ if field.is_number() => return Err(wrong("double", false)),
        (_, Literal::Str(s)) => Value::String(s.clone()),
        _ => return Err(wrong("string", true)),
    })
}

fn matches(field: &Field, row_value: &Value, op: Op, lit: &Value) -> bool {
    if lit.is_null() || row_value.is_null() {
        let both = lit.is_null() && row_value.is_null();
        return match op {
            Op::Eq => both,
            Op::Ne => !both,
            _ => false,
        };
    }
    let ord = compare_values(field, row_value, lit);
    match op {
        Op::Eq => ord == Ordering::Equal,
        Op::Ne => ord != Ordering::Equal,
        Op::Lt => ord == Ordering::Less,
        Op::Le => ord != Ordering::Greater,
        Op::Gt => ord == Ordering::Greater,
        Op::Ge => ord != Ordering::Less,
    }
}

/// Whether `text` matches a LIKE pattern, case-insensitively (SOQL LIKE on text fields).
fn like(text: &str, pat: &[Pat]) -> bool {
    let text: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    let pat: Vec<Pat> = pat
        .iter()
        .flat_map(|p| match p {
            Pat::Char(c) => c.to_lowercase().map(Pat::Char).collect::<Vec<_>>(),
            other => vec![*other],
        })
        .collect();
    // reachable[j]: the pattern's first i elements can match the text's first j characters.
    let mut reachable = vec![false; text.len() + 1];
    reachable[0] = true;
    for p in &pat {
        let mut next = vec![false; text.len() + 1];
        for j in 0..=text.len() {
            next[j] = match p {
                Pat::Any => reachable[j] || (j > 0 && next[j - 1]),
                Pat::One => j > 0 && reachable[j - 1],
                Pat::Char(c) => j > 0 && reachable[j - 1] && text[j - 1] == *c,
            };
        }
        reachable = next;
    }
    reachable[text.len()]
}

/// A filter with its fields looked up and its literals typed for them.
enum Resolved<'a> {
    Cmp(&'a Field, Op, Value),
    In(&'a Field, bool, Vec<Value>),
    Like(&'a Field, &'a [Pat]),
    And(Vec<Resolved<'a>>),
    Or(Vec<Resolved<'a>>),
    Not(Box<Resolved<'a>>),
}

fn resolve<'a>(object: &'a Object, filter: &'a Filter) -> Result<Resolved<'a>, ApiError> {
    let all = |fs: &'a [Filter]| fs.iter().map(|f| resolve(object, f)).collect::<Result<Vec<_>, _>>();
    Ok(match filter {
        Filter::And(fs) => Resolved::And(all(fs)?),
        Filter::Or(fs) => Resolved::Or(all(fs)?),
        Filter::Not(f) => Resolved::Not(Box::new(resolve(object, f)?)),
        Filter::Cond(c) => {
            let f = object.field(&c.field).ok_or_else(|| no_column(object.name, &c.field))?;
            match &c.test {
                Test::Cmp(op, lit) => Resolved::Cmp(f, *op, literal_value(f, lit)?),
                Test::In { negated, values } => {
                    Resolved::In(f, *negated, values.iter().map(|v| literal_value(f, v)).collect::<Result<_, _>>()?)
                }
                Test::Like(pat) => {
                    if f.is_number() || matches!(f.kind, Kind::Boolean | Kind::DateTime | Kind::Date) {
                        return Err(ApiError::invalid_field(format!(
                            "invalid operator on field '{}': LIKE applies to text fields only",
                            f.name
                        )));
                    }
                    Resolved::Like(f, pat)
                }
            }
        }
    })
}

impl Resolved<'_> {
    fn holds(&self, row: &Map<String, Value>) -> bool {
        let get = |f: &Field| row.get(f.name).unwrap_or(&Value::Null);
        match self {
            Resolved::Cmp(f, op, lit) => matches(f, get(f), *op, lit),
            Resolved::In(f, negated, values) => values.iter().any(|v| matches(f, get(f), Op::Eq, v)) != *negated,
            Resolved::Like(f, pat) => get(f).as_str().is_some_and(|t| like(t, pat)),
            Resolved::And(fs) => fs.iter().all(|f| f.holds(row)),
            Resolved::Or(fs) => fs.iter().any(|f| f.holds(row)),
            Resolved::Not(f) => !f.holds(row),
        }
    }
}

/// The ids a filter keeps rows to, when it names them: `Id = '...'` or `Id IN ('...', ...)`,
/// alone or as one condition of an `AND`. `None` for any other filter.
fn named_ids<'a>(filter: &'a Resolved<'_>) -> Option<Vec<&'a str>> {
    match filter {
        Resolved::Cmp(f, Op::Eq, Value::String(id)) if f.kind == Kind::Id => Some(vec![id.as_str()]),
        Resolved::In(f, false, values) if f.kind == Kind::Id => values.iter().map(Value::as_str).collect(),
        Resolved::And(fs) => fs.iter().find_map(named_ids),
        _ => None,
    }
}

impl Table {
    /// The rows a query's filter may keep, in table order: those it names by id
    /// ([`named_ids`], looked up in `by_id`), else every row. The filter is still applied
    /// to them, so the answer is the scan's.
    fn candidates(&self, filter: Option<&Resolved<'_>>) -> Vec<&Map<String, Value>> {
        let Some(ids) = filter.and_then(named_ids) else {
            return self.rows.iter().collect();
        };
        let mut at: Vec<usize> = ids.iter().filter_map(|id| self.by_id.get(*id).copied()).collect();
        at.sort_unstable();
        at.dedup();
        at.into_iter().filter_map(|i| self.rows.get(i)).collect()
    }
}

fn no_column(object: &str, field: &str) -> ApiError {
    ApiError::invalid_field(format!(
        "No such column '{field}' on entity '{object}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
    ))
}

impl Store {
    /// A store holding `data`, every row completed with the fields it lacks (null) and
    /// the derived ones.
    pub(crate) fn new(data: TenantData) -> Self {
        let mut serial = 0;
        let contact_accounts: HashMap<String, String> = data
            .rows("Contact")
            .iter()
            .filter_map(|r| Some((r.get("Id")?.as_str()?.to_string(), r.get("AccountId")?.as_str()?.to_string())))
            .collect();
        let lookup = |c: &str| contact_accounts.get(c).cloned();
        let tables: Vec<Table> = schema::OBJECTS
            .iter()
            .map(|object| {
                let rows: Vec<Map<String, Value>> = data
                    .rows(object.name)
                    .iter()
                    .map(|r| {
                        let mut row = r.clone();
                        for f in object.all_fields() {
                            row.entry(f.name.to_string()).or_insert(Value::Null);
                        }
                        derive(object.name, &mut row, &lookup);
                        row
                    })
                    .collect();
                serial += rows.len() as u64;
                let by_id = rows
                    .iter()
                    .enumerate()
                    .filter_map(|(i, r)| Some((r.get("Id")?.as_str()?.to_string(), i)))
                    .collect();
                Table { object, rows, by_id }
            })
            .collect();
        // Rows generated as deleted were deleted when last stamped.
        let tombstones = tables
            .iter()
            .flat_map(|t| {
                t.rows.iter().filter(|r| r.get("IsDeleted") == Some(&Value::Bool(true))).filter_map(move |r| {
                    let at = r.get("SystemModstamp").and_then(Value::as_str).and_then(parse_sf_datetime)?;
                    Some(Tombstone { object: t.object.name, id: r.get("Id")?.as_str()?.to_string(), at })
                })
            })
            .collect();
        Self {
            tables,
            serial: serial + 1_000,
            run_as: data.run_as_user_id,
            locators: BTreeMap::new(),
            next_locator: 1,
            tombstones,
        }
    }

    fn table(&self, object: &str) -> Result<&Table, ApiError> {
        self.tables
            .iter()
            .find(|t| t.object.name.eq_ignore_ascii_case(object))
            .ok_or_else(|| ApiError::invalid_type(object))
    }

    fn table_mut(&mut self, object: &str) -> Result<&mut Table, ApiError> {
        self.tables
            .iter_mut()
            .find(|t| t.object.name.eq_ignore_ascii_case(object))
            .ok_or_else(|| ApiError::invalid_type(object))
    }

    /// Runs a query: the projected rows with `attributes`, in order. `all_rows` (queryAll)
    /// includes deleted rows.
    pub(crate) fn query(&self, q: &Soql, all_rows: bool, version: &str) -> Result<Vec<Value>, ApiError> {
        let table = self.table(&q.object)?;
        let object = table.object;
        let select: Vec<&Field> = q
            .fields
            .iter()
            .map(|f| object.field(f).ok_or_else(|| no_column(object.name, f)))
            .collect::<Result<_, _>>()?;
        let filter = q.filter.as_ref().map(|f| resolve(object, f)).transpose()?;
        let order: Vec<(&Field, bool, bool)> = q
            .order
            .iter()
            .map(|k| {
                Ok((
                    object.field(&k.field).ok_or_else(|| no_column(object.name, &k.field))?,
                    k.descending,
                    k.nulls_first,
                ))
            })
            .collect::<Result<_, ApiError>>()?;
        let mut rows: Vec<&Map<String, Value>> = table
            .candidates(filter.as_ref())
            .into_iter()
            .filter(|r| all_rows || r.get("IsDeleted") != Some(&Value::Bool(true)))
            .filter(|r| filter.as_ref().is_none_or(|f| f.holds(r)))
            .collect();
        if !order.is_empty() {
            rows.sort_by(|a, b| {
                for (f, desc, nulls_first) in &order {
                    let (va, vb) = (a.get(f.name).unwrap_or(&Value::Null), b.get(f.name).unwrap_or(&Value::Null));
                    let ord = match (va.is_null(), vb.is_null()) {
                        (true, true) => Ordering::Equal,
                        (true, false) => {
                            if *nulls_first {
                                Ordering::Less
                            } else {
                                Ordering::Greater
                            }
                        }
                        (false, true) => {
                            if *nulls_first {
                                Ordering::Greater
                            } else {
                                Ordering::Less
                            }
                        }
                        (false, false) => {
                            let o = compare_values(f, va, vb);
                            if *desc { o.reverse() } else { o }
                        }
                    };
                    if ord != Ordering::Equal {
                        return ord;
                    }
                }
                Ordering::Equal
            });
        }
        let limit = q.limit.unwrap_or(usize::MAX);
        Ok(rows
            .into_iter()
            .skip(q.offset)
            .take(limit)
            .map(|r| {
                let id = r.get("Id").and_then(Value::as_str).unwrap_or_default();
                let mut out = Map::new();
                out.insert("attributes".into(), Value::Object(attributes(object.name, id, version)));
                for f in &select {
                    out.insert(f.name.to_string(), r.get(f.name).cloned().unwrap_or(Value::Null));
                }
                Value::Object(out)
            })
            .collect())
    }

    /// Keeps a query's rows for paging; returns the locator number.
    pub(crate) fn keep_locator(&mut self, rows: Vec<Value>, batch: usize) -> u64 {
        let n = self.next_locator;
        self.next_locator += 1;
        self.locators.insert(n, Arc::new(Locator { rows, batch }));
        while self.locators.len() > MAX_LOCATORS {
            self.locators.pop_first();
        }
        n
    }

    /// The rows of a live locator.
    pub(crate) fn locator(&self, n: u64) -> Result<Arc<Locator>, ApiError> {
        self.locators.get(&n).cloned().ok_or_else(ApiError::invalid_locator)
    }

    /// Drops a locator whose last page was served.
    pub(crate) fn drop_locator(&mut self, n: u64) {
        self.locators.remove(&n);
    }

    /// One record with every field and `attributes`.
    pub(crate) fn get(&self, object: &str, id: &str, version: &str) -> Result<Value, ApiError> {
        let t = self.table(object)?;
        let row = t.by_id.get(id).and_then(|i| t.rows.get(*i)).ok_or_else(ApiError::not_found)?;
        if row.get("IsDeleted") == Some(&Value::Bool(true)) {
            return Err(ApiError::entity_is_deleted());
        }
        let mut out = Map::new();
        out.insert("attributes".into(), Value::Object(attributes(t.object.name, id, version)));
        out.extend(row.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(Value::Object(out))
    }

    fn contact_account(&self, contact: &str) -> Option<String> {
        let t = self.tables.iter().find(|t| t.object.name == "Contact")?;
        let row = t.rows.get(*t.by_id.get(contact)?)?;
        row.get("AccountId").and_then(Value::as_str).map(str::to_string)
    }

    /// Validates a write body against the object's fields: known, writable, picklist values.
    fn checked_fields(object: &Object, body: &Value) -> Result<Vec<(&'static Field, Value)>, ApiError> {
        let Value::Object(map) = body else {
            return Err(ApiError::bad_body("The request body must be a JSON object of field values."));
        };
        let mut out = Vec::new();
        for (k, v) in map {
            if k == "attributes" {
                continue;
            }
            let f = object.field(k).ok_or_else(|| {
                ApiError::invalid_field(format!("No such column '{k}' on sobject of type {}", object.name))
            })?;
            if !f.writable {
                return Err(ApiError::not_writable(f.name));
            }
            // An empty string is a null to Salesforce: a required field's check catches it.
            if f.restricted
                && let Some(s) = v.as_str()
                && !s.is_empty()
                && !f.picklist.contains(&s)
            {
                return Err(ApiError::bad_picklist(f.name, s));
            }
            if f.is_text()
                && let Some(s) = v.as_str()
                && s.chars().count() > f.length() as usize
            {
                return Err(ApiError::string_too_long(f, s));
            }
            out.push((f, v.clone()));
        }
        Ok(out)
    }

    /// Creates a record; returns its id.
    pub(crate) fn create(&mut self, object: &str, body: &Value, stamp: &Stamp) -> Result<String, ApiError> {
        let spec = self.table(object)?.object;
        let fields = Self::checked_fields(spec, body)?;
        let missing: Vec<String> = spec
            .fields
            .iter()
            .filter(|f| f.required)
            .filter(|f| !fields.iter().any(|(g, v)| g.name == f.name && !blank(v)))
            .map(|f| f.name.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(ApiError::required_missing(missing));
        }
        let now = Value::String(sf_datetime(stamp.now));
        let mut row = Map::new();
        for f in spec.all_fields() {
            row.insert(f.name.to_string(), Value::Null);
        }
        // What a create leaves out gets the field's default: a picklist's default value, and
        // false for a checkbox.
        for f in spec.fields.iter().filter(|f| f.writable) {
            if let Some(d) = f.default {
                row.insert(f.name.to_string(), Value::String(d.to_string()));
            } else if f.kind == Kind::Boolean {
                row.insert(f.name.to_string(), Value::Bool(spec.name == "User" && f.name == "IsActive"));
            }
        }
        for (f, v) in fields {
            row.insert(f.name.to_string(), v);
        }
        row.insert("IsDeleted".into(), Value::Bool(false));
        for k in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
            row.insert(k.into(), now.clone());
        }
        for k in ["CreatedById", "LastModifiedById"] {
            row.insert(k.into(), Value::String(self.run_as.clone()));
        }
        if spec.field("OwnerId").is_some() && row.get("OwnerId").is_none_or(Value::is_null) {
            row.insert("OwnerId".into(), Value::String(self.run_as.clone()));
        }
        let lookup = |c: &str| self.contact_account(c);
        derive(spec.name, &mut row, &lookup);
        validate(spec.name, &row)?;
        self.serial += 1;
        let id = make_id(spec.prefix, self.serial);
        row.insert("Id".into(), Value::String(id.clone()));
        let t = self.table_mut(object)?;
        t.by_id.insert(id.clone(), t.rows.len());
        t.rows.push(row);
        Ok(id)
    }

    /// Creates the records of one sObject Collections call (salesforce-api.md 4.2), each
    /// named by its `attributes.type`, in order: one result per record. With `all_or_none`
    /// one refusal undoes the others, which then answer `ALL_OR_NONE_OPERATION_ROLLED_BACK`
    /// (UNCONFIRMED: the code and message are those Salesforce is widely reported to give).
    pub(crate) fn create_collection(
        &mut self,
        records: &[Value],
        all_or_none: bool,
        stamp: &Stamp,
    ) -> Vec<Result<String, ApiError>> {
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            let object = record.pointer("/attributes/type").and_then(Value::as_str).unwrap_or_default().to_string();
            let mut body = record.clone();
            if let Some(fields) = body.as_object_mut() {
                fields.remove("attributes");
            }
            out.push(self.create(&object, &body, stamp));
        }
        if all_or_none && out.iter().any(Result::is_err) {
            // Created rows are the last of their tables: undone newest first.
            for (record, result) in records.iter().zip(&out).rev() {
                let object = record.pointer("/attributes/type").and_then(Value::as_str).unwrap_or_default();
                if let (Ok(id), Ok(t)) = (result, self.table_mut(object)) {
                    t.by_id.remove(id);
                    t.rows.pop();
                }
            }
            for result in &mut out {
                if result.is_ok() {
                    *result = Err(ApiError::rolled_back());
                }
            }
        }
        out
    }

    /// Updates fields of a record: 404 `NOT_FOUND` for an id the org does not hold, 404
    /// `ENTITY_IS_DELETED` for one in the recycle bin (salesforce-api.md 5.3).
    pub(crate) fn update(&mut self, object: &str, id: &str, body: &Value, stamp: &Stamp) -> Result<(), ApiError> {
        let spec = self.table(object)?.object;
        if !(id.len() == 15 || id.len() == 18) || !id.starts_with(spec.prefix) {
            return Err(ApiError::malformed_id(spec.name, id));
        }
        let fields = Self::checked_fields(spec, body)?;
        // A required field cannot be emptied either.
        let emptied: Vec<String> =
            fields.iter().filter(|(f, v)| f.required && blank(v)).map(|(f, _)| f.name.to_string()).collect();
        if !emptied.is_empty() {
            return Err(ApiError::required_missing(emptied));
        }
        let run_as = self.run_as.clone();
        let t = self.table(object)?;
        let index = *t.by_id.get(id).ok_or_else(ApiError::not_found)?;
        let mut row = t.rows.get(index).cloned().ok_or_else(ApiError::not_found)?;
        if row.get("IsDeleted") == Some(&Value::Bool(true)) {
            return Err(ApiError::entity_is_deleted());
        }
        for (f, v) in fields {
            row.insert(f.name.to_string(), v);
        }
        let now = Value::String(sf_datetime(stamp.now));
        row.insert("LastModifiedDate".into(), now.clone());
        row.insert("SystemModstamp".into(), now);
        row.insert("LastModifiedById".into(), Value::String(run_as));
        let lookup = |c: &str| self.contact_account(c);
        derive(spec.name, &mut row, &lookup);
        validate(spec.name, &row)?;
        if let Some(slot) = self.table_mut(object)?.rows.get_mut(index) {
            *slot = row;
        }
        Ok(())
    }

    /// Deletes a record to the recycle bin (salesforce-api.md 3.1): `IsDeleted` becomes true
    /// (so `query` and reads no longer see it, `queryAll` still does), `SystemModstamp` the
    /// delete's time (UNCONFIRMED that a delete moves it; it is commonly relied on for
    /// `queryAll ... WHERE IsDeleted = true AND SystemModstamp > ...`), and the delete is logged
    /// with that time as its `deletedDate`. 404 `NOT_FOUND` for an id the org does not hold,
    /// 404 `ENTITY_IS_DELETED` for one already deleted (5.3).
    pub(crate) fn delete(&mut self, object: &str, id: &str, stamp: &Stamp) -> Result<(), ApiError> {
        let index = self.deletable(object, id)?;
        let t = self.table_mut(object)?;
        let spec = t.object;
        let row = t.rows.get_mut(index).ok_or_else(ApiError::not_found)?;
        row.insert("IsDeleted".into(), Value::Bool(true));
        row.insert("SystemModstamp".into(), Value::String(sf_datetime(stamp.now)));
        self.tombstones.push(Tombstone { object: spec.name, id: id.to_string(), at: stamp.now });
        Ok(())
    }

    /// The row index of a record [`delete`](Self::delete) would delete, or its refusal.
    fn deletable(&self, object: &str, id: &str) -> Result<usize, ApiError> {
        let t = self.table(object)?;
        if !(id.len() == 15 || id.len() == 18) || !id.starts_with(t.object.prefix) {
            return Err(ApiError::malformed_id(t.object.name, id));
        }
        let index = *t.by_id.get(id).ok_or_else(ApiError::not_found)?;
        if t.rows.get(index).and_then(|r| r.get("IsDeleted")) == Some(&Value::Bool(true)) {
            return Err(ApiError::entity_is_deleted());
        }
        Ok(index)
    }

    /// Deletes the records of one sObject Collections delete (salesforce-api.md 4.2,
    /// `DELETE /composite/sobjects?ids=`), each id's object told by its key prefix: one
    /// result per id, in order (the object deleted from, or the refusal). With `all_or_none`
    /// nothing is deleted unless every id can be, and the deletable ones then answer
    /// `ALL_OR_NONE_OPERATION_ROLLED_BACK`.
    pub(crate) fn delete_collection(
        &mut self,
        ids: &[&str],
        all_or_none: bool,
        stamp: &Stamp,
    ) -> Vec<Result<&'static str, ApiError>> {
        let object_of = |s: &Self, id: &str| {
            s.tables
                .iter()
                .find(|t| id.starts_with(t.object.prefix))
                .map(|t| t.object.name)
                .ok_or_else(|| ApiError::malformed_id("sObject", id))
        };
        if all_or_none {
            let checks: Vec<Result<&'static str, ApiError>> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let object = object_of(self, id)?;
                    self.deletable(object, id)?;
                    // The same id twice: its second delete finds it deleted.
                    if ids[..i].contains(id) {
                        return Err(ApiError::entity_is_deleted());
                    }
                    Ok(object)
                })
                .collect();
            if checks.iter().any(Result::is_err) {
                return checks.into_iter().map(|r| r.and(Err(ApiError::rolled_back()))).collect();
            }
        }
        ids.iter()
            .map(|id| {
                let object = object_of(self, id)?;
                self.delete(object, id, stamp).map(|()| object)
            })
            .collect()
    }

    /// The delete log of `object` (every delete, oldest first); unknown objects are
    /// `INVALID_TYPE`.
    pub(crate) fn tombstones(&self, object: &str) -> Result<Vec<&Tombstone>, ApiError> {
        let name = self.table(object)?.object.name;
        Ok(self.tombstones.iter().filter(|t| t.object == name).collect())
    }

    /// Upserts by an external-id field (or `Id`).
    pub(crate) fn upsert(
        &mut self,
        object: &str,
        key_field: &str,
        value: &str,
        body: &Value,
        stamp: &Stamp,
        version: &str,
    ) -> Result<Upserted, ApiError> {
        let t = self.table(object)?;
        let spec = t.object;
        let field = spec
            .field(key_field)
            .filter(|f| f.external_id || f.kind == Kind::Id)
            .ok_or_else(|| ApiError::bad_external_id(key_field))?;
        let found: Vec<String> = t
            .rows
            .iter()
            .filter(|r| r.get(field.name).and_then(Value::as_str) == Some(value))
            .filter_map(|r| r.get("Id").and_then(Value::as_str).map(str::to_string))
            .collect();
        match found.as_slice() {
            [] => {
                let mut body = body.clone();
                if let Value::Object(m) = &mut body
                    && field.kind != Kind::Id
                {
                    m.insert(field.name.to_string(), Value::String(value.to_string()));
                }
                Ok(Upserted::Created(self.create(object, &body, stamp)?))
            }
            [one] => {
                let id = one.clone();
                self.update(object, &id, body, stamp)?;
                Ok(Upserted::Updated(id))
            }
            many => Ok(Upserted::Ambiguous(
                many.iter().map(|id| format!("/services/data/{version}/sobjects/{}/{id}", spec.name)).collect(),
            )),
        }
    }

    /// The number of rows (deleted ones included) of an object.
    #[cfg(test)]
    pub(crate) fn len(&self, object: &str) -> usize {
        self.table(object).map_or(0, |t| t.rows.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salesforce::soql::parse;

    fn store() -> Store {
        let account = |n: u64, name: &str, modified: i64, deleted: bool| {
            let mut m = Map::new();
            m.insert("Id".into(), json!(make_id("001", n)));
            m.insert("Name".into(), json!(name));
            m.insert("LastModifiedDate".into(), json!(sf_datetime(modified)));
            m.insert("IsDeleted".into(), json!(deleted));
            m
        };
        Store::new(TenantData {
            tables: vec![(
                "Account",
                vec![
                    account(1, "b", 100, false),
                    account(2, "A", 200, false),
                    account(3, "c", 300, true),
                    account(4, "d", 400, false),
                ],
            )],
            run_as_user_id: make_id("005", 1),
        })
    }

    #[test]
    fn ids_are_18_characters_with_the_prefix_and_sort_by_creation() {
        let a = make_id("001", 35);
        let b = make_id("001", 36);
        assert_eq!(a.len(), 18);
        assert!(a.starts_with("0018d") && a < b, "{a} {b}");
        assert_eq!(&make_id("001", 1)[15..], "AAA");
    }

    #[test]
    fn queries_filter_by_datetime_skip_deleted_rows_and_order() {
        let s = store();
        let q =
            parse("SELECT Id, Name FROM Account WHERE LastModifiedDate >= 1970-01-01T00:03:20Z ORDER BY Name").unwrap();
        let rows = s.query(&q, false, "v60.0").unwrap();
        let names: Vec<&str> = rows.iter().map(|r| r["Name"].as_str().unwrap()).collect();
        assert_eq!(names, ["A", "d"]);
        assert_eq!(rows[0]["attributes"]["type"], "Account");
        assert_eq!(s.query(&q, true, "v60.0").unwrap().len(), 3);
    }

    #[test]
    fn one_record_is_read_by_id_through_soql_or_its_sobject_url_and_deleted_ones_are_gone() {
        let s = store();
        let by_id =
            |n: u64| parse(&format!("SELECT Id, Name FROM Account WHERE Id = '{}'", make_id("001", n))).unwrap();
        let rows = s.query(&by_id(2), false, "v60.0").unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0]["Id"].as_str(), rows[0]["Name"].as_str()), (Some(make_id("001", 2).as_str()), Some("A")));
        assert!(s.query(&by_id(9), false, "v60.0").unwrap().is_empty(), "an unknown id is no row");
        assert!(s.query(&by_id(3), false, "v60.0").unwrap().is_empty(), "a deleted row is not queried");
        assert_eq!(s.query(&by_id(3), true, "v60.0").unwrap().len(), 1, "queryAll still sees it");
        let one = s.get("Account", &make_id("001", 2), "v60.0").unwrap();
        assert_eq!((one["Name"].as_str(), one["attributes"]["type"].as_str()), (Some("A"), Some("Account")));
        let missing = s.get("Account", &make_id("001", 9), "v60.0").unwrap_err();
        assert_eq!((missing.status, missing.code), (axum::http::StatusCode::NOT_FOUND, "NOT_FOUND"));
        let deleted = s.get("Account", &make_id("001", 3), "v60.0").unwrap_err();
        assert_eq!((deleted.status, deleted.code), (axum::http::StatusCode::NOT_FOUND, "ENTITY_IS_DELETED"));
    }

    #[test]
    fn a_query_by_id_or_ids_answers_as_a_scan_of_every_row_does_after_creates_updates_and_a_rollback() {
        let mut s = store();
        let stamp = Stamp { now: 500 };
        let created = s.create("Account", &json!({"Name": "e"}), &stamp).unwrap();
        s.update("Account", &make_id("001", 2), &json!({"Name": "A renamed"}), &stamp).unwrap();
        let undone = make_id("001", s.serial + 1);
        let bad = json!({"attributes": {"type": "Account"}, "Nope__c": 1});
        let out = s.create_collection(&[json!({"attributes": {"type": "Account"}, "Name": "f"}), bad], true, &stamp);
        assert!(out.iter().all(Result::is_err), "the collection is rolled back");
        let ids: Vec<String> =
            [1, 2, 3, 4, 9].map(|n| make_id("001", n)).into_iter().chain([created.clone(), undone.clone()]).collect();

        let run = |where_: &str, all: bool| {
            let q = parse(&format!("SELECT Id, Name FROM Account WHERE {where_} ORDER BY Name DESC")).unwrap();
            s.query(&q, all, "v60.0").unwrap()
        };
        let indexed = |where_: &str| {
            let q = parse(&format!("SELECT Id FROM Account WHERE {where_}")).unwrap();
            let object = schema::object("Account").unwrap();
            named_ids(&resolve(object, q.filter.as_ref().unwrap()).unwrap()).is_some()
        };
        let quoted = |ids: &[String]| ids.iter().map(|i| format!("'{i}'")).collect::<Vec<_>>().join(", ");
        for all in [false, true] {
            for id in &ids {
                let (fast, slow) = (format!("Id = '{id}'"), format!("NOT (Id != '{id}')"));
                assert!(indexed(&fast) && !indexed(&slow));
                assert_eq!(run(&fast, all), run(&slow, all), "{id}, queryAll {all}");
            }
            let list = quoted(&[ids.clone(), ids.clone()].concat());
            let (fast, slow) =
                (format!("Id IN ({list}) AND Name != 'b'"), format!("(NOT (Id NOT IN ({list}))) AND Name != 'b'"));
            assert!(indexed(&fast) && !indexed(&slow));
            assert_eq!(run(&fast, all), run(&slow, all), "queryAll {all}");
        }
        let names = |rows: Vec<Value>| rows.iter().map(|r| r["Name"].as_str().unwrap().to_string()).collect::<Vec<_>>();
        assert_eq!(names(run(&format!("Id = '{created}'"), false)), ["e"]);
        assert_eq!(names(run(&format!("Id = '{}'", make_id("001", 2)), false)), ["A renamed"]);
        assert!(run(&format!("Id = '{undone}'"), true).is_empty(), "a rolled-back record is not found");
        let list = quoted(&ids);
        assert_eq!(names(run(&format!("Id IN ({list})"), false)), ["e", "d", "b", "A renamed"]);
        assert_eq!(names(run(&format!("Id IN ({list})"), true)), ["e", "d", "c", "b", "A renamed"]);
    }

    /// Five live accounts (1..=5) and a deleted one (6) for the filter table.
    fn people() -> Store {
        let account = |n: u64, name: &str, city: Option<&str>, phone: Option<&str>, deleted: bool| {
            let mut m = Map::new();
            m.insert("Id".into(), json!(make_id("001", n)));
            m.insert("Name".into(), json!(name));
            m.insert("BillingCity".into(), json!(city));
            m.insert("Phone".into(), json!(phone));
            m.insert("IsDeleted".into(), json!(deleted));
            m
        };
        Store::new(TenantData {
            tables: vec![(
                "Account",
                vec![
                    account(1, "O'Brien Ltd", Some("Leeds"), Some("111"), false),
                    account(2, "Acme", Some("York"), None, false),
                    account(3, "ACME Corp", Some("Leeds"), Some("333"), false),
                    account(4, "Bolt_Co", None, Some("444"), false),
                    account(5, "100% Juice", Some("Hull"), None, false),
                    account(6, "Acme Old", Some("Leeds"), Some("666"), true),
                ],
            )],
            run_as_user_id: make_id("005", 1),
        })
    }

    #[test]
    fn where_clauses_match_the_rows_salesforce_would() {
        let s = people();
        let cases: &[(&str, &[u64])] = &[
            ("Name = 'acme'", &[2]),
            ("Name != 'Acme'", &[1, 3, 4, 5]),
            ("Name <> 'Acme'", &[1, 3, 4, 5]),
            ("BillingCity = null", &[4]),
            ("BillingCity != null", &[1, 2, 3, 5]),
            ("BillingCity != 'Leeds'", &[2, 4, 5]),
            ("Phone = null AND BillingCity = 'York'", &[2]),
            ("Name = 'Acme' OR BillingCity = 'Hull'", &[2, 5]),
            ("Name = 'Acme' OR Name = 'Bolt_Co' OR Phone = '111'", &[1, 2, 4]),
            // AND binds nothing implicitly: the grouping is spelt out, and the two give different rows.
            ("Name = 'Acme' OR (BillingCity = 'Leeds' AND Phone = '333')", &[2, 3]),
            ("(Name = 'Acme' OR BillingCity = 'Leeds') AND Phone = '333'", &[3]),
            ("((Name = 'Acme') OR (Name = 'Bolt_Co' AND (Phone = '444' OR Phone = '0')))", &[2, 4]),
            ("Name IN ('O\\'Brien Ltd', 'acme corp')", &[1, 3]),
            ("Name NOT IN ('O\\'Brien Ltd', 'Acme')", &[3, 4, 5]),
            ("BillingCity IN ('Leeds', null)", &[1, 3, 4]),
            ("BillingCity NOT IN ('Leeds')", &[2, 4, 5]),
            ("Name LIKE 'acme%'", &[2, 3]),
            ("Name LIKE '%co%'", &[3, 4]),
            ("Name LIKE 'Acm_'", &[2]),
            ("Name LIKE 'Bolt\\_Co'", &[4]),
            ("Name LIKE 'Bolt_Co'", &[4]),
            ("Name LIKE 'Bolt\\_%' OR Name LIKE '100\\% %'", &[4, 5]),
            ("Name LIKE '_'", &[]),
            ("Name LIKE '%'", &[1, 2, 3, 4, 5]),
            ("BillingCity LIKE '%'", &[1, 2, 3, 5]),
            ("NOT Name = 'Acme'", &[1, 3, 4, 5]),
            ("NOT BillingCity = 'Leeds'", &[2, 4, 5]),
            ("NOT (Name LIKE 'acme%' OR BillingCity = 'Hull')", &[1, 4]),
            ("Phone != null AND (NOT BillingCity = 'Leeds')", &[4]),
            ("(NOT Name LIKE 'acme%') OR Phone = '333'", &[1, 3, 4, 5]),
            ("NOT (NOT Name = 'Acme')", &[2]),
        ];
        for (filter, want) in cases {
            let q = parse(&format!("SELECT Id FROM Account WHERE {filter} ORDER BY Id"))
                .unwrap_or_else(|e| panic!("{filter}: {e:?}"));
            let got: Vec<String> =
                s.query(&q, false, "v").unwrap().iter().map(|r| r["Id"].as_str().unwrap().to_string()).collect();
            let want: Vec<String> = want.iter().map(|n| make_id("001", *n)).collect();
            assert_eq!(got, want, "{filter}");
        }
    }

    #[test]
    fn mixing_and_with_or_without_parentheses_is_refused_as_salesforce_does() {
        let e =
            parse("SELECT Id FROM Account WHERE Name = 'Acme' OR BillingCity = 'Leeds' AND Phone = '333'").unwrap_err();
        assert_eq!((e.status, e.code), (axum::http::StatusCode::BAD_REQUEST, "MALFORMED_QUERY"));
    }

    #[test]
    fn like_on_a_non_text_field_is_an_invalid_field() {
        let e = people().query(&parse("SELECT Id FROM Account WHERE IsDeleted LIKE 't%'").unwrap(), false, "v");
        assert_eq!(e.unwrap_err().code, "INVALID_FIELD");
    }

    #[test]
    fn unknown_fields_and_mistyped_filters_are_invalid_fields() {
        let s = store();
        let e = s.query(&parse("SELECT Nope__c FROM Account").unwrap(), false, "v").unwrap_err();
        assert_eq!(e.code, "INVALID_FIELD");
        let e =
            s.query(&parse("SELECT Id FROM Account WHERE LastModifiedDate > '2024'").unwrap(), false, "v").unwrap_err();
        assert_eq!(e.code, "INVALID_FIELD");
        assert_eq!(s.query(&parse("SELECT Id FROM Gizmo").unwrap(), false, "v").unwrap_err().code, "INVALID_TYPE");
    }

    #[test]
    fn an_update_of_an_unknown_or_deleted_record_is_not_found() {
        let mut s = store();
        let stamp = Stamp { now: 1_000 };
        let body = json!({"Phone": "555"});
        let unknown = s.update("Account", "001ZZZZZZZZZZZZZZZ", &body, &stamp).unwrap_err();
        assert_eq!((unknown.status, unknown.code), (axum::http::StatusCode::NOT_FOUND, "NOT_FOUND"));
        let deleted = s.update("Account", &make_id("001", 3), &body, &stamp).unwrap_err();
        assert_eq!((deleted.status, deleted.code), (axum::http::StatusCode::NOT_FOUND, "ENTITY_IS_DELETED"));
        s.update("Account", &make_id("001", 2), &body, &stamp).unwrap();
        let row = s.get("Account", &make_id("001", 2), "v").unwrap();
        assert_eq!(
            (row["Phone"].as_str(), row["Name"].as_str()),
            (Some("555"), Some("A")),
            "only the field sent changed"
        );
    }

    #[test]
    fn a_collection_keeps_each_result_at_its_place_and_all_or_none_undoes_the_rest() {
        let mut s = store();
        let stamp = Stamp { now: 1_000 };
        let records = [
            json!({"attributes": {"type": "Account"}, "Name": "One"}),
            json!({"attributes": {"type": "Account"}, "Phone": "1"}),
            json!({"attributes": {"type": "Account"}, "Name": "Three"}),
        ];
        let some = s.create_collection(&records, false, &stamp);
        let codes: Vec<Option<&str>> = some.iter().map(|r| r.as_ref().err().map(|e| e.code)).collect();
        assert_eq!(codes, [None, Some("REQUIRED_FIELD_MISSING"), None]);
        assert_eq!(s.len("Account"), 6, "the two good records were created");
        let all = s.create_collection(&records, true, &stamp);
        let codes: Vec<Option<&str>> = all.iter().map(|r| r.as_ref().err().map(|e| e.code)).collect();
        let undone = Some("ALL_OR_NONE_OPERATION_ROLLED_BACK");
        assert_eq!(codes, [undone, Some("REQUIRED_FIELD_MISSING"), undone]);
        assert_eq!(s.len("Account"), 6, "nothing of the all-or-none call remains");
        let back = s.get("Account", some[2].as_ref().unwrap(), "v").unwrap();
        assert_eq!(back["Name"], json!("Three"), "earlier records are untouched by the undo");
    }

    #[test]
    fn creates_check_required_fields_and_upserts_create_then_update() {
        let mut s = store();
        let stamp = Stamp { now: 1_000 };
        assert_eq!(s.create("Account", &json!({"Phone": "1"}), &stamp).unwrap_err().code, "REQUIRED_FIELD_MISSING");
        assert_eq!(
            s.create("Account", &json!({"Name": "x", "Type": "Nope"}), &stamp).unwrap_err().code,
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
        );
        let body = json!({"Name": "Upserted"});
        let created = s.upsert("Account", "Tandem_Id__c", "t-1", &body, &stamp, "v").unwrap();
        assert!(matches!(created, Upserted::Created(_)));
        let updated = s.upsert("Account", "Tandem_Id__c", "t-1", &json!({"Phone": "555"}), &stamp, "v").unwrap();
        assert!(matches!(updated, Upserted::Updated(_)));
        assert_eq!(s.len("Account"), 5);
        assert_eq!(s.upsert("Account", "Name", "x", &body, &stamp, "v").unwrap_err().code, "NOT_FOUND");
    }
}
