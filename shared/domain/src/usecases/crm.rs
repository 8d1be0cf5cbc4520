//! The CRM's own record writes through the API (create, update, delete) of companies,
//! contacts, opportunities and activities: every field checked and every bad one named
//! before anything is written, each write committed with its outbox entry in one
//! transaction (the change auto-sync and export read), then relayed to sync out.

use serde_json::{Map, Value};

use crate::error::DomainError;
use crate::ids::{RecordId, RecordKind, TenantId};
use crate::normalise::{Timestamp, email_key};
use crate::outbox::{Change, ChangeOp};
use crate::ports::StoreError;
use crate::records::{Meta, Record};
use crate::table::{RecordStore, RecordWrite};
use crate::usecases::{Services, sync_out};
use crate::vocab::{ActivityKind, CompanyType, ContactStatus};

/// How often a write re-reads and tries again when another write took the version first.
const ATTEMPTS: usize = 5;
/// The longest text a name or subject may hold.
const MAX_NAME: usize = 255;
/// The longest text any other field may hold.
const MAX_TEXT: usize = 10_000;

/// The record kinds the API writes.
pub const WRITABLE_KINDS: &[RecordKind] =
    &[RecordKind::Company, RecordKind::Contact, RecordKind::Opportunity, RecordKind::Activity];

/// The fields a request body may set, per kind (the record's own fields; ids, versions,
/// links, lists and timestamps are Tandem's).
pub fn settable(kind: RecordKind) -> &'static [&'static str] {
    match kind {
        RecordKind::Company => &["name", "phone", "website", "address", "company_type", "custom_fields"],
        RecordKind::Contact => &["first_name", "last_name", "email", "phone", "title", "status", "company"],
        RecordKind::Opportunity => &[
            "name",
            "status",
            "stage",
            "opportunity_type",
            "close_date",
            "value",
            "lifetime_value",
            "line_items",
            "salesperson",
            "company",
            "contact",
            "notes",
        ],
        RecordKind::Activity => &["kind", "subject", "body", "date", "done", "contact", "company", "created_by"],
        _ => &[],
    }
}

/// The kind, if the API writes it.
fn writable(kind: RecordKind) -> Result<RecordKind, DomainError> {
    if WRITABLE_KINDS.contains(&kind) {
        return Ok(kind);
    }
    let names: Vec<&str> = WRITABLE_KINDS.iter().map(|k| k.as_str()).collect();
    Err(DomainError::invalid(format!(
        "{kind} records are written by imports, not the API; the API writes {}",
        names.join(", ")
    )))
}

fn object(body: &Value) -> Result<Map<String, Value>, DomainError> {
    body.as_object().cloned().ok_or_else(|| DomainError::invalid("the body must be a JSON object of fields"))
}

/// Refuses fields a body may not set, naming them and the ones it may.
fn only_settable(kind: RecordKind, body: &Map<String, Value>) -> Result<(), DomainError> {
    let allowed = settable(kind);
    let refused: Vec<&str> = body.keys().map(String::as_str).filter(|k| !allowed.contains(k)).collect();
    if refused.is_empty() {
        return Ok(());
    }
    Err(DomainError::invalid(format!(
        "a {kind} has no settable field {}; settable: {}",
        refused.join(", "),
        allowed.join(", ")
    )))
}

/// A client-chosen id (makes a retried create idempotent): 1-64 letters, digits, `-`, `_`.
fn client_id(value: &Value) -> Result<RecordId, DomainError> {
    match value.as_str() {
        Some(s)
            if !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)) =>
        {
            Ok(RecordId::from_raw(s))
        }
        _ => Err(DomainError::invalid("id: must be 1-64 letters, digits, '-' or '_'")),
    }
}

/// A new record of `kind` with `fields`, checked as a create checks them, not written (the
/// field-level mode's initial import writes it with its link).
pub(crate) async fn new_record(
    svc: &Services,
    t: &TenantId,
    kind: RecordKind,
    fields: Map<String, Value>,
) -> Result<Record, DomainError> {
    checked(svc, t, kind, Meta::new(svc.clock.now()), fields, None).await
}

/// Creates a record of `kind` from a request body (its fields, and optionally the `id` to
/// give it). A create retried with the same id and values answers the record it made.
pub async fn create(svc: &Services, t: &TenantId, kind: RecordKind, body: &Value) -> Result<Record, DomainError> {
    let kind = writable(kind)?;
    let mut fields = object(body)?;
    let id = fields.remove("id").map(|v| client_id(&v)).transpose()?.unwrap_or_default();
    only_settable(kind, &fields)?;
    let now = svc.clock.now();
    let mut meta = Meta::new(now);
    meta.id = id.clone();
    let record = checked(svc, t, kind, meta, fields, None).await?;
    let change = Change::of(t, ChangeOp::Created, &record, set_fields(&record), now);
    let (mut writes, stored) =
        RecordStore::prepare_write(t, RecordWrite { record, previous: None, ledger: None, log: None })?;
    writes.push(RecordStore::prepare_change(&change)?);
    match svc.store.commit(writes).await {
        Ok(()) => {
            sync_out::relay_committed(svc, t, &[change]).await;
            Ok(stored)
        }
        Err(StoreError::Conflict(_)) => match svc.store.record(t, kind, &id).await? {
            Some(existing) if existing.fields() == stored.fields() => Ok(existing),
            _ => Err(DomainError::refused(format!("a {kind} with id {id} already exists with other values"))),
        },
        Err(e) => Err(e.into()),
    }
}

/// Sets the fields a request body names on a stored record (`null` clears an optional
/// field); the others keep their values. A body that changes nothing writes nothing.
pub async fn update(
    svc: &Services,
    t: &TenantId,
    kind: RecordKind,
    id: &RecordId,
    body: &Value,
) -> Result<Record, DomainError> {
    let kind = writable(kind)?;
    let patch = object(body)?;
    if patch.contains_key("id") {
        return Err(DomainError::invalid("id: a record's id cannot change"));
    }
    only_settable(kind, &patch)?;
    patch_record(svc, t, kind, id, &patch).await
}

/// [`update`] of a patch already known to name only settable fields (Salesforce's
/// field-level mode taking in a Lead's values), checked and relayed the same way.
pub(crate) async fn patch_record(
    svc: &Services,
    t: &TenantId,
    kind: RecordKind,
    id: &RecordId,
    patch: &Map<String, Value>,
) -> Result<Record, DomainError> {
    for _ in 0..ATTEMPTS {
        let current = stored(svc, t, kind, id).await?;
        let mut fields = current.fields();
        fields.extend(patch.clone());
        let now = svc.clock.now();
        let mut meta = current.meta().clone();
        meta.updated_at = now;
        let next = checked(svc, t, kind, meta, fields, Some(patch)).await?;
        let changed = changed_fields(&current, &next);
        if changed.is_empty() {
            return Ok(current);
        }
        let change = Change::of(t, ChangeOp::Updated, &next, changed, now);
        let (mut writes, written) = RecordStore::prepare_write(
            t,
            RecordWrite { record: next, previous: Some(current), ledger: None, log: None },
        )?;
        writes.push(RecordStore::prepare_change(&change)?);
        match svc.store.commit(writes).await {
            Ok(()) => {
                sync_out::relay_committed(svc, t, &[change]).await;
                return Ok(written);
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DomainError::Store(StoreError::Conflict(format!("{kind} {id} kept changing while saving"))))
}

/// Deletes a stored record and its look-up entries; its links stay in the ledger for the
/// flows that propagate deletes.
pub async fn delete(svc: &Services, t: &TenantId, kind: RecordKind, id: &RecordId) -> Result<(), DomainError> {
    let kind = writable(kind)?;
    for _ in 0..ATTEMPTS {
        let current = stored(svc, t, kind, id).await?;
        let change = Change::of(t, ChangeOp::Deleted, &current, Vec::new(), svc.clock.now());
        let mut writes = RecordStore::prepare_delete(t, &current);
        writes.push(RecordStore::prepare_change(&change)?);
        match svc.store.commit(writes).await {
            Ok(()) => {
                sync_out::relay_committed(svc, t, &[change]).await;
                return Ok(());
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DomainError::Store(StoreError::Conflict(format!("{kind} {id} kept changing while deleting"))))
}

async fn stored(svc: &Services, t: &TenantId, kind: RecordKind, id: &RecordId) -> Result<Record, DomainError> {
    svc.store.record(t, kind, id).await?.ok_or_else(|| DomainError::not_found(format!("no {kind} {id}")))
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// The fields a new record sets: those holding a value.
pub(crate) fn set_fields(record: &Record) -> Vec<String> {
    record.fields().into_iter().filter(|(_, v)| !is_empty(v)).map(|(k, _)| k).collect()
}

/// The fields whose values differ between two states of a record.
pub fn changed_fields(a: &Record, b: &Record) -> Vec<String> {
    let (a, b) = (a.fields(), b.fields());
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    names.dedup();
    names.into_iter().filter(|n| a.get(*n) != b.get(*n)).cloned().collect()
}

/// The record of `kind` with `meta` and `fields`, every field checked (all problems named
/// at once) and every reference found in the tenant's store. On an update, `patch` names
/// the fields the request sets: a stored value the checks would refuse in a field the
/// request leaves alone (an import keeps a system's value as the system holds it, such as
/// a phone of "n/a") stays as it is rather than refusing every later edit of the record.
async fn checked(
    svc: &Services,
    t: &TenantId,
    kind: RecordKind,
    meta: Meta,
    mut fields: Map<String, Value>,
    patch: Option<&Map<String, Value>>,
) -> Result<Record, DomainError> {
    let mut problems = Vec::new();
    let mut refs: Vec<(&'static str, RecordKind, RecordId)> = Vec::new();
    for field in settable(kind) {
        let value = fields.get(*field).cloned().unwrap_or(Value::Null);
        match check_field(kind, field, &value) {
            Ok(Some(normal)) => {
                fields.insert((*field).to_string(), normal);
            }
            Ok(None) => {
                fields.remove(*field);
            }
            Err(_) if patch.is_some_and(|p| !p.contains_key(*field)) => {}
            Err(why) => problems.push(format!("{field}: {why}")),
        }
        if let (Some(target), Some(id)) = (reference(kind, field), fields.get(*field).and_then(Value::as_str)) {
            refs.push((field, target, RecordId::from_raw(id)));
        }
    }
    if kind == RecordKind::Contact && ["first_name", "last_name"].iter().all(|f| !fields.contains_key(*f)) {
        problems.push("first_name: a contact needs a first or a last name".into());
    }
    let wanted: Vec<(RecordKind, RecordId)> = refs.iter().map(|(_, k, id)| (*k, id.clone())).collect();
    let found = svc.store.records_by_id(t, &wanted).await?;
    for (field, target, id) in &refs {
        if !found.contains_key(&(*target, id.clone())) {
            problems.push(format!("{field}: no {target} {id}"));
        }
    }
    if !problems.is_empty() {
        return Err(DomainError::invalid(format!("invalid {kind}: {}", problems.join("; "))));
    }
    if kind == RecordKind::Contact {
        for name in ["first_name", "last_name"] {
            fields.entry(name).or_insert_with(|| Value::String(String::new()));
        }
    }
    fields.insert("object".into(), Value::String(kind.as_str().into()));
    fields.insert("meta".into(), serde_json::to_value(&meta).map_err(|e| DomainError::internal(e.to_string()))?);
    serde_json::from_value(Value::Object(fields))
        .map_err(|e| DomainError::internal(format!("a checked {kind} does not build: {e}")))
}

/// The kind a reference field points at.
fn reference(kind: RecordKind, field: &str) -> Option<RecordKind> {
    match (kind, field) {
        (_, "company") => Some(RecordKind::Company),
        (RecordKind::Opportunity | RecordKind::Activity, "contact") => Some(RecordKind::Contact),
        (_, "salesperson" | "created_by") => Some(RecordKind::User),
        _ => None,
    }
}

/// One field's value checked: `Some(value)` to keep (normalised), `None` for an absent
/// optional field, or why it is wrong.
fn check_field(kind: RecordKind, field: &str, value: &Value) -> Result<Option<Value>, String> {
    use RecordKind::{Activity, Company, Contact, Opportunity};
    let text = |max: usize| optional_text(value, max);
    match (kind, field) {
        (Company | Opportunity, "name") | (Activity, "subject") => required_text(value).map(Some),
        (Contact, "first_name" | "last_name") => text(MAX_NAME),
        (Company | Contact, "phone") => text(50)?.map(|p| has_digits(p, 3)).transpose(),
        (Company, "website") => text(MAX_NAME)?.map(website).transpose(),
        (Contact, "email") => text(MAX_NAME)?.map(email).transpose(),
        (Company, "company_type") => slug(value, CompanyType::parse, CompanyType::none().as_str()),
        (Contact, "status") => slug(value, ContactStatus::parse, ContactStatus::none().as_str()),
        (Company, "custom_fields") => custom_fields(value),
        (Opportunity, "close_date") => text(10)?.map(date).transpose(),
        (Opportunity, "value" | "lifetime_value") => amount(value),
        (Opportunity, "line_items") => line_items(value),
        (Activity, "kind") => match value.as_str() {
            Some(k) => {
                ActivityKind::parse(k).map(|k| Some(Value::String(k.as_str().into()))).map_err(|e| e.to_string())
            }
            None => Err("is required: call, email, note, meeting or task".into()),
        },
        (Activity, "date") => text(64)?.map(timestamp).transpose(),
        (Activity, "done") => match value {
            Value::Null => Ok(Some(Value::Bool(false))),
            Value::Bool(_) => Ok(Some(value.clone())),
            _ => Err("must be true or false".into()),
        },
        (Activity, "contact" | "created_by") => match value.as_str() {
            Some(id) if !id.is_empty() => Ok(Some(value.clone())),
            _ => Err("is required: the id of a CRM record".into()),
        },
        (_, "company" | "contact" | "salesperson") => match value {
            Value::Null => Ok(None),
            Value::String(s) if !s.is_empty() => Ok(Some(value.clone())),
            _ => Err("must be the id of a CRM record, or null".into()),
        },
        _ => text(MAX_TEXT),
    }
}

fn required_text(value: &Value) -> Result<Value, String> {
    match optional_text(value, MAX_NAME)? {
        Some(v) => Ok(v),
        None => Err("is required".into()),
    }
}

/// Null, or a string of at most `max` characters (trimmed; blank counts as absent).
fn optional_text(value: &Value, max: usize) -> Result<Option<Value>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) if s.chars().count() > max => Err(format!("is longer than {max} characters")),
        Value::String(s) => Ok(Some(Value::String(s.trim().to_string()))),
        _ => Err("must be text, or null".into()),
    }
}

fn as_str(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn has_digits(v: Value, n: usize) -> Result<Value, String> {
    match as_str(&v).chars().filter(char::is_ascii_digit).count() >= n {
        true => Ok(v),
        false => Err(format!("{:?} is not a phone number", as_str(&v))),
    }
}

fn website(v: Value) -> Result<Value, String> {
    let s = as_str(&v);
    match !s.contains(char::is_whitespace) && s.contains('.') {
        true => Ok(v),
        false => Err(format!("{s:?} is not a web address")),
    }
}

fn email(v: Value) -> Result<Value, String> {
    let s = as_str(&v);
    let ok = email_key(s).is_some()
        && s.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !s.contains(char::is_whitespace);
    if ok { Ok(v) } else { Err(format!("{s:?} is not an email address")) }
}

/// A vocabulary slug; absent, the vocabulary's "none".
fn slug<T>(value: &Value, parse: fn(&str) -> Result<T, DomainError>, none: &str) -> Result<Option<Value>, String> {
    match value {
        Value::Null => Ok(Some(Value::String(none.into()))),
        Value::String(s) => parse(s).map(|_| Some(value.clone())).map_err(|e| e.to_string()),
        _ => Err("must be text, or null".into()),
    }
}

fn custom_fields(value: &Value) -> Result<Option<Value>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Object(o) if o.values().all(Value::is_string) => Ok(Some(value.clone())),
        _ => Err("must be an object of text values".into()),
    }
}

fn date(v: Value) -> Result<Value, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(as_str(&v), format)
        .map(|_| v.clone())
        .map_err(|_| format!("{:?} is not a date (YYYY-MM-DD)", as_str(&v)))
}

fn timestamp(v: Value) -> Result<Value, String> {
    Timestamp::parse(as_str(&v))
        .map(|t| Value::String(t.to_rfc3339()))
        .map_err(|_| format!("{:?} is not a date and time (RFC 3339)", as_str(&v)))
}

fn amount(value: &Value) -> Result<Option<Value>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Number(n) if n.as_f64().is_some_and(|f| f.is_finite() && f >= 0.0) => Ok(Some(value.clone())),
        _ => Err("must be a number of at least 0, or null".into()),
    }
}

fn line_items(value: &Value) -> Result<Option<Value>, String> {
    let Value::Array(items) = value else {
        return match value {
            Value::Null => Ok(None),
            _ => Err("must be a list of {description, quantity, revenue}".into()),
        };
    };
    for (i, item) in items.iter().enumerate() {
        serde_json::from_value::<crate::records::LineItem>(item.clone()).map_err(|e| format!("item {i}: {e}"))?;
    }
    Ok(Some(value.clone()))
}

#[cfg(test)]
#[path = "crm_tests.rs"]
mod tests;
