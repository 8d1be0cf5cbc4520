//! ConnectWise wire types -> the domain's external records, and the tolerant page parse:
//! one record that does not fit becomes [`ExternalRecord::Unreadable`], never a failed page.

use std::collections::HashSet;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tandem_domain::external::{
    Choice, ExtActivity, ExtCompany, ExtContact, ExtLineItem, ExtOpportunity, ExtSolution, ExtUser, ExternalRecord,
    NO_TYPE, Unreadable,
};
use tandem_domain::ledger::ExtVersion;
use tandem_domain::ports::{ConnectorError, ErrorKind};
use tandem_domain::{Stage, System, Timestamp};
use time::macros::format_description;

use super::models::{
    Activity, CatalogItem, CommunicationItem, Company, Contact, Forecast, ForecastItem, Info, Member, Opportunity,
    SetupEntry, non_empty,
};

/// Facts from setup lists that some mappings need (loaded once per connector).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lookups {
    /// Ids of company statuses whose `inactiveFlag` is true (`/company/companies/statuses`).
    pub inactive_company_statuses: HashSet<i64>,
    /// Ids of activity statuses whose `closedFlag` is true (`/sales/activities/statuses`).
    pub closed_activity_statuses: HashSet<i64>,
}

/// Parses one list page of `stage` into records, without setup-list facts (companies all
/// active, activities all open) and without forecasts. See [`parse_page_with`].
pub fn parse_page(stage: Stage, body: &[u8]) -> Result<Vec<ExternalRecord>, ConnectorError> {
    parse_page_with(stage, body, &Lookups::default())
}

/// Parses one list page of `stage` into records. Fast path: the whole array as wire
/// structs. If any element does not fit, each element is parsed on its own and the misfits
/// become [`Unreadable`] with the serde error text. A body that is not a JSON array is an
/// [`ErrorKind::Invalid`] error naming the endpoint.
pub fn parse_page_with(stage: Stage, body: &[u8], lookups: &Lookups) -> Result<Vec<ExternalRecord>, ConnectorError> {
    let endpoint = super::stage_path(stage);
    match stage {
        Stage::Users => parse_each(body, endpoint, |m: Member| user(m).map_or_else(unreadable, ExternalRecord::User)),
        Stage::Companies => parse_each(body, endpoint, |c: Company| ExternalRecord::Company(company(c, lookups))),
        Stage::Contacts => parse_each(body, endpoint, |c: Contact| ExternalRecord::Contact(contact(c))),
        Stage::Solutions => parse_each(body, endpoint, |c: CatalogItem| ExternalRecord::Solution(solution(c))),
        Stage::Activities => parse_each(body, endpoint, |a: Activity| {
            activity(a, lookups).map_or_else(unreadable, ExternalRecord::Activity)
        }),
        Stage::Opportunities => {
            parse_each(body, endpoint, |o: Opportunity| ExternalRecord::Opportunity(opportunity(o)))
        }
    }
}

fn unreadable(u: Unreadable) -> ExternalRecord {
    ExternalRecord::Unreadable(u)
}

/// The fast parse, then the per-element fallback.
fn parse_each<W: DeserializeOwned>(
    body: &[u8],
    endpoint: &str,
    map: impl Fn(W) -> ExternalRecord,
) -> Result<Vec<ExternalRecord>, ConnectorError> {
    if let Ok(items) = serde_json::from_slice::<Vec<W>>(body) {
        return Ok(items.into_iter().map(map).collect());
    }
    let values: Vec<Value> = serde_json::from_slice(body).map_err(|e| {
        ConnectorError::new(
            System::ConnectWise,
            ErrorKind::Invalid,
            format!("ConnectWise answered {endpoint} with something that is not a JSON array: {e}"),
        )
    })?;
    Ok(values
        .into_iter()
        .map(|value| {
            let id = readable_id(&value);
            match serde_json::from_value::<W>(value) {
                Ok(wire) => map(wire),
                Err(e) => ExternalRecord::Unreadable(Unreadable { id, reason: e.to_string() }),
            }
        })
        .collect())
}

/// An element's `id` as text, if it has a number or string there.
fn readable_id(value: &Value) -> Option<String> {
    match value.get("id")? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

/// `_info.lastUpdated`, parsed once (RFC 3339, whole seconds: psa-apis.md 1.8).
pub fn updated_at(info: &Option<Info>) -> Option<ExtVersion> {
    info.as_ref().and_then(|i| non_empty(i.last_updated.as_deref())).map(ExtVersion::from)
}

fn text(s: Option<String>) -> String {
    s.map(|s| s.trim().to_string()).unwrap_or_default()
}

/// A member. Its id is the `identifier` (login name), because activities (`_info`'s
/// creator) and opportunities (`primarySalesRep.identifier`) refer to members by it; a
/// member without one cannot be linked and is unreadable.
pub fn user(m: Member) -> Result<ExtUser, Unreadable> {
    let Some(id) = non_empty(m.identifier.as_deref()) else {
        return Err(Unreadable { id: Some(m.id.to_string()), reason: format!("member {} has no identifier", m.id) });
    };
    Ok(ExtUser {
        id,
        email: non_empty(m.primary_email.as_deref()),
        first_name: text(m.first_name),
        last_name: text(m.last_name),
        role: m.security_role.as_ref().and_then(|r| r.id_string()),
        inactive: m.inactive_flag,
        updated_at: updated_at(&m.info),
    })
}

/// A company. Inactive when its status is one of `lookups.inactive_company_statuses`
/// (psa-apis.md 1.6: no inactive flag on the company itself).
pub fn company(c: Company, lookups: &Lookups) -> ExtCompany {
    let inactive =
        c.status.as_ref().and_then(|s| s.id).is_some_and(|id| lookups.inactive_company_statuses.contains(&id));
    ExtCompany {
        id: c.id.to_string(),
        address: address(&c),
        name: text(c.name),
        phone: non_empty(c.phone_number.as_deref()),
        website: non_empty(c.website.as_deref()),
        types: c.types.iter().filter_map(|t| t.id_string()).collect(),
        inactive,
        deleted: c.deleted_flag,
        updated_at: updated_at(&c.info),
    }
}

/// `addressLine1, addressLine2, city, state zip`, leaving out blank parts.
fn address(c: &Company) -> Option<String> {
    let state_zip =
        [c.state.as_deref(), c.zip.as_deref()].into_iter().filter_map(non_empty_ref).collect::<Vec<_>>().join(" ");
    let parts: Vec<&str> = [c.address_line1.as_deref(), c.address_line2.as_deref(), c.city.as_deref()]
        .into_iter()
        .filter_map(non_empty_ref)
        .chain(Some(state_zip.as_str()).filter(|s| !s.is_empty()))
        .collect();
    if parts.is_empty() { None } else { Some(parts.join(", ")) }
}

fn non_empty_ref(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// The index of the item the read takes for one communication type: the default item of
/// that type, else the first of that type (psa-apis.md 1.6, Contact: "Default email = item
/// with communicationType=Email and defaultFlag=true"). Items without a value are skipped.
fn chosen(items: &[CommunicationItem], kind: &str) -> Option<usize> {
    let of_kind = || {
        items.iter().enumerate().filter(move |(_, i)| {
            i.communication_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(kind))
                && non_empty_ref(i.value.as_deref()).is_some()
        })
    };
    of_kind().find(|(_, i)| i.default_flag).or_else(|| of_kind().next()).map(|(n, _)| n)
}

/// The value of the item [`chosen`] for one communication type.
fn communication(items: &[CommunicationItem], kind: &str) -> Option<String> {
    chosen(items, kind).and_then(|n| items.get(n)).and_then(|i| non_empty(i.value.as_deref()))
}

/// A contact. Email and phone live in `communicationItems` (psa-apis.md 1.6); the phone
/// prefers `defaultPhoneNbr`.
pub fn contact(c: Contact) -> ExtContact {
    ExtContact {
        id: c.id.to_string(),
        email: communication(&c.communication_items, "Email"),
        phone: non_empty(c.default_phone_nbr.as_deref()).or_else(|| communication(&c.communication_items, "Phone")),
        first_name: text(c.first_name),
        last_name: text(c.last_name),
        title: non_empty(c.title.as_deref()),
        company_id: c.company.as_ref().and_then(|r| r.id_string()),
        types: c.types.iter().filter_map(|t| t.id_string()).collect(),
        inactive: c.inactive_flag,
        updated_at: updated_at(&c.info),
    }
}

/// A catalog item; its name is the `description` (the `identifier` is the SKU, used only
/// when the description is blank).
pub fn solution(c: CatalogItem) -> ExtSolution {
    ExtSolution {
        id: c.id.to_string(),
        name: non_empty(c.description.as_deref()).or_else(|| non_empty(c.identifier.as_deref())).unwrap_or_default(),
        type_id: c.kind.as_ref().and_then(|r| r.id_string()),
        category_id: c.category.as_ref().and_then(|r| r.id_string()),
        billing: non_empty(c.billable_option.as_deref()),
        price: c.price,
        inactive: c.inactive_flag,
        updated_at: updated_at(&c.info),
    }
}

/// An activity. Done when its status is one of `lookups.closed_activity_statuses`; the
/// creator is `_info`'s creator key (UNCONFIRMED, see [`Info::created_by`]). A `dateStart`
/// that is not a timestamp makes the record unreadable rather than silently undated.
pub fn activity(a: Activity, lookups: &Lookups) -> Result<ExtActivity, Unreadable> {
    let date = match non_empty(a.date_start.as_deref()) {
        None => None,
        Some(raw) => Some(
            Timestamp::parse(&raw)
                .map_err(|e| Unreadable { id: Some(a.id.to_string()), reason: format!("dateStart: {e}") })?,
        ),
    };
    let done = a.status.as_ref().and_then(|s| s.id).is_some_and(|id| lookups.closed_activity_statuses.contains(&id));
    Ok(ExtActivity {
        id: a.id.to_string(),
        subject: text(a.name),
        body: non_empty(a.notes.as_deref()),
        type_id: a.kind.as_ref().and_then(|r| r.id_string()),
        contact_id: a.contact.as_ref().and_then(|r| r.id_string()),
        company_id: a.company.as_ref().and_then(|r| r.id_string()),
        created_by: a.info.as_ref().and_then(|i| non_empty(i.created_by())),
        date,
        done,
        updated_at: updated_at(&a.info),
    })
}

/// An opportunity without its value: that comes from the forecast ([`apply_forecast`]).
/// Its close date is the day of `expectedCloseDate` (a timestamp at midnight), as the
/// domain and the other systems hold it.
pub fn opportunity(o: Opportunity) -> ExtOpportunity {
    ExtOpportunity {
        id: o.id.to_string(),
        name: text(o.name),
        status_id: o.status.as_ref().and_then(|r| r.id_string()),
        stage: o.stage.as_ref().and_then(|r| non_empty(r.name.as_deref())),
        opportunity_type: o.kind.as_ref().and_then(|r| r.label()),
        close_date: non_empty(o.expected_close_date.as_deref()).map(|d| d.chars().take(10).collect()),
        value: None,
        line_items: Vec::new(),
        salesperson_id: o.primary_sales_rep.as_ref().and_then(|r| non_empty(r.identifier.as_deref())),
        company_id: o.company.as_ref().and_then(|r| r.id_string()),
        contact_id: o.contact.as_ref().and_then(|r| r.id_string()),
        notes: non_empty(o.notes.as_deref()),
        updated_at: updated_at(&o.info),
    }
}

/// Sets an opportunity's value (the sum of every forecast item's `revenue`, psa-apis.md
/// 1.6) and its line items (description = `productDescription`, else `forecastDescription`).
pub fn apply_forecast(o: &mut ExtOpportunity, forecast: &Forecast) {
    o.line_items = forecast
        .forecast_items
        .iter()
        .map(|item| ExtLineItem {
            description: non_empty(item.product_description.as_deref())
                .or_else(|| non_empty(item.forecast_description.as_deref()))
                .unwrap_or_default(),
            quantity: item.quantity,
            revenue: item.revenue,
        })
        .collect();
    o.value = Some(forecast.forecast_items.iter().map(|i| i.revenue).sum());
}

/// The longest `forecastDescription` ConnectWise takes (S1 `ForecastItem`: "Max length: 50").
pub const FORECAST_DESCRIPTION_MAX: usize = 50;

/// The item carrying an opportunity's value without line items: `Other1`, described by the
/// opportunity's name (cut to [`FORECAST_DESCRIPTION_MAX`] characters).
fn value_item(o: &ExtOpportunity, revenue: f64) -> Value {
    let description: String = o.name.trim().chars().take(FORECAST_DESCRIPTION_MAX).collect();
    json!({
        "forecastType": "Other1", "forecastDescription": description, "quantity": 1.0, "revenue": revenue,
        "includeFlag": true
    })
}

fn line_item(l: &ExtLineItem) -> Value {
    json!({
        "forecastType": "Product", "productDescription": l.description,
        "quantity": l.quantity, "revenue": l.revenue, "includeFlag": true
    })
}

/// The forecast items that carry an opportunity's line items and value into ConnectWise
/// (the inverse of [`apply_forecast`]): one `Product` item per line item, or one `Other1`
/// item for a value without line items; none for neither.
pub fn forecast_items(o: &ExtOpportunity) -> Vec<Value> {
    if o.line_items.is_empty() {
        return match o.value {
            Some(v) if v > 0.0 => vec![value_item(o, v)],
            _ => Vec::new(),
        };
    }
    o.line_items.iter().map(line_item).collect()
}

/// One write that brings a forecast in step with the CRM ([`forecast_changes`]).
#[derive(Clone, Debug, PartialEq)]
pub enum ForecastChange {
    /// `PATCH …/forecast/{id}` with these `replace` operations.
    Replace { id: i64, operations: Vec<Value> },
    /// `POST …/forecast` of this item.
    Add(Value),
    /// `DELETE …/forecast/{id}`.
    Remove(i64),
}

/// Whether a forecast item is one Tandem may have written: a `Product` or `Other1` line
/// without a catalog item (what [`forecast_items`] writes). Anything else (a catalog
/// product, a `Service`, `Agreement` or `Other2` line) was entered in ConnectWise.
fn written_by_tandem(item: &ForecastItem) -> bool {
    item.catalog_item.as_ref().is_none_or(Value::is_null)
        && matches!(item.forecast_type.as_deref(), Some("Product" | "Other1"))
}

/// The description the reader gives an item (as [`apply_forecast`] does).
fn item_description(item: &ForecastItem) -> String {
    non_empty(item.product_description.as_deref())
        .or_else(|| non_empty(item.forecast_description.as_deref()))
        .unwrap_or_default()
}

fn wanted_description(w: &Value) -> &str {
    w["productDescription"].as_str().or_else(|| w["forecastDescription"].as_str()).unwrap_or_default().trim()
}

fn same_amount(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.005
}

/// The writes that make an opportunity's forecast (`current`, as ConnectWise holds it) say
/// what the CRM sends in `o`, after which the forecast reads back as `o`'s line items, and
/// its total is `o`'s value. The rule:
///
/// 1. The wanted items are [`forecast_items`]'s: one `Product` per line item, else one
///    `Other1` for the value. With no line items, the items Tandem did not write (see 3)
///    count towards the value, so the `Other1` item holds the rest (none when nothing is
///    left).
/// 2. A current item of any kind whose description, quantity and revenue are a wanted
///    item's already is that item: it is kept as it is. So a repeated update writes
///    nothing, and a line that came from ConnectWise and still stands in the CRM is left
///    alone, catalog item and all.
/// 3. The other current items Tandem may have written (a `Product` or `Other1` line without
///    a catalog item) are changed into the remaining wanted items of the same type, in
///    order (`PATCH`), and those left over are removed. Items Tandem did not write (a
///    catalog product, a `Service`, `Agreement` or `Other2` line) are never changed or
///    removed: when the CRM drops such a line, ConnectWise keeps it and the forecast total
///    stays above the CRM's value by it.
/// 4. Wanted items with no current item to hold them are added (`POST`).
pub fn forecast_changes(current: &[ForecastItem], o: &ExtOpportunity) -> Vec<ForecastChange> {
    let foreign: f64 = current.iter().filter(|i| !written_by_tandem(i)).map(|i| i.revenue).sum();
    let wanted: Vec<Value> = if o.line_items.is_empty() {
        match o.value.map(|v| v - foreign) {
            Some(rest) if rest > 0.005 => vec![value_item(o, rest)],
            _ => Vec::new(),
        }
    } else {
        o.line_items.iter().map(line_item).collect()
    };
    let mut used = vec![false; current.len()];
    let mut open = Vec::new();
    for w in wanted {
        let hit = current.iter().enumerate().position(|(k, item)| {
            !used[k]
                && item_description(item) == wanted_description(&w)
                && same_amount(item.quantity, w["quantity"].as_f64().unwrap_or(1.0))
                && same_amount(item.revenue, w["revenue"].as_f64().unwrap_or(0.0))
        });
        match hit {
            Some(k) => used[k] = true,
            None => open.push(w),
        }
    }
    let mut changes = Vec::new();
    for w in open {
        let slot = current.iter().enumerate().position(|(k, item)| {
            !used[k]
                && written_by_tandem(item)
                && item.id.is_some()
                && item.forecast_type.as_deref() == w["forecastType"].as_str()
        });
        match slot.and_then(|k| Some((k, current[k].id?))) {
            Some((k, id)) => {
                used[k] = true;
                let operations = ["productDescription", "forecastDescription", "quantity", "revenue"]
                    .into_iter()
                    .filter_map(|f| Some(json!({"op": "replace", "path": format!("/{f}"), "value": w.get(f)?})))
                    .collect();
                changes.push(ForecastChange::Replace { id, operations });
            }
            None => changes.push(ForecastChange::Add(w)),
        }
    }
    for (k, item) in current.iter().enumerate() {
        if !used[k]
            && written_by_tandem(item)
            && let Some(id) = item.id
        {
            changes.push(ForecastChange::Remove(id));
        }
    }
    changes
}

/// Which field of a setup-list entry names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameField {
    /// `name` (most lists), falling back to `description`.
    Name,
    /// `description` (contact types), falling back to `name`.
    Description,
}

/// A setup-list entry as a mapping choice (`id` as text).
pub fn choice(entry: &SetupEntry, field: NameField) -> Choice {
    let (first, second) = match field {
        NameField::Name => (&entry.name, &entry.description),
        NameField::Description => (&entry.description, &entry.name),
    };
    let name =
        non_empty(first.as_deref()).or_else(|| non_empty(second.as_deref())).unwrap_or_else(|| entry.id.to_string());
    Choice { id: entry.id.to_string(), name }
}

// ------------------------------------------------------------------ writes (outgoing)
//
// The inverse of the read mapping above: an external record's writable fields as the
// bodies ConnectWise takes (psa-apis.md 1.7), so that what is written reads back the same.

/// The longest company identifier ConnectWise takes (S1 `Company.identifier`: max 30).
pub const MAX_IDENTIFIER: usize = 30;

/// One writable field (a name of the description's `writable` list) and the top-level
/// wire fields it sets; `null` clears a field on update and is left out of a create.
#[derive(Clone, Debug, PartialEq)]
pub struct Out {
    pub field: &'static str,
    pub sets: Vec<(&'static str, Value)>,
}

fn out(field: &'static str, sets: Vec<(&'static str, Value)>) -> Out {
    Out { field, sets }
}

/// Trimmed text, or `null` when blank.
fn text_value(s: Option<&str>) -> Value {
    non_empty(s).map_or(Value::Null, Value::String)
}

fn refused(message: String) -> ConnectorError {
    ConnectorError::new(System::ConnectWise, ErrorKind::Invalid, message)
}

/// A ConnectWise id (digits only), refused before any request otherwise.
pub fn number(what: &str, id: &str) -> Result<i64, ConnectorError> {
    let id = id.trim();
    let digits =
        !id.is_empty() && id.len() <= crate::read::MAX_NUMERIC_DIGITS && id.bytes().all(|b| b.is_ascii_digit());
    digits
        .then(|| id.parse::<i64>().ok())
        .flatten()
        .ok_or_else(|| refused(format!("{id:?} is not a ConnectWise {what} id (a number)")))
}

/// A reference as ConnectWise takes it on write, `{"id": n}` (psa-apis.md 1.6), or `null`.
pub fn reference(what: &str, id: Option<&str>) -> Result<Value, ConnectorError> {
    match id.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(Value::Null),
        Some(id) => Ok(json!({"id": number(what, id)?})),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the form ConnectWise dates take (psa-apis.md 1.1; S2
/// `cw_format_datetime`): UTC, whole seconds.
pub fn cw_datetime(at: Timestamp) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    at.datetime().format(&format).unwrap_or_else(|_| at.to_rfc3339())
}

/// A close date (`YYYY-MM-DD`, or a timestamp whose day is taken) as ConnectWise's
/// `expectedCloseDate`, midnight UTC of that day; anything else is refused.
fn close_date_value(day: Option<&str>) -> Result<Value, ConnectorError> {
    let Some(raw) = non_empty(day) else { return Ok(Value::Null) };
    let day: String = raw.chars().take(10).collect();
    time::Date::parse(&day, format_description!("[year]-[month]-[day]"))
        .map(|_| json!(format!("{day}T00:00:00Z")))
        .map_err(|e| refused(format!("close date {raw:?} is not a day (YYYY-MM-DD): {e}")))
}

/// A company's writable fields. Its type is `types[0]`, the "no type" choice none.
pub fn company_out(c: &ExtCompany) -> Result<Vec<Out>, ConnectorError> {
    let types = match c.types.first().map(String::as_str) {
        None | Some(NO_TYPE) => Value::Null,
        Some(t) => json!([{"id": number("company type", t)?}]),
    };
    Ok(vec![
        out("name", vec![("name", json!(c.name.trim()))]),
        out("phone", vec![("phoneNumber", text_value(c.phone.as_deref()))]),
        out("website", vec![("website", text_value(c.website.as_deref()))]),
        // The read joins addressLine1, addressLine2, city and "state zip"; the record's
        // address is one line of text, so it goes whole into addressLine1 and the other
        // parts are cleared, which reads back the same text. ConnectWise takes at most 50
        // characters there (S1); a longer address is refused in ConnectWise's own words.
        out(
            "address",
            vec![
                ("addressLine1", text_value(c.address.as_deref())),
                ("addressLine2", Value::Null),
                ("city", Value::Null),
                ("state", Value::Null),
                ("zip", Value::Null),
            ],
        ),
        out("company_type", vec![("types", types)]),
    ])
}

/// A contact's writable fields but email and phone, which live in `communicationItems`
/// ([`communication_items`], [`communication_ops`]).
pub fn contact_out(c: &ExtContact) -> Result<Vec<Out>, ConnectorError> {
    Ok(vec![
        out("first_name", vec![("firstName", json!(c.first_name.trim()))]),
        out("last_name", vec![("lastName", text_value(Some(&c.last_name)))]),
        out("title", vec![("title", text_value(c.title.as_deref()))]),
        out("company", vec![("company", reference("company", c.company_id.as_deref())?)]),
    ])
}

/// A new default communication item of `kind` (`Email`, `Phone`). Its `type` is left out:
/// communication types are tenant-specific ids and the spec requires none (S1
/// `ContactCommunicationItem`); which type ConnectWise then gives it is UNCONFIRMED.
fn new_item(kind: &str, value: String) -> Value {
    json!({"value": value, "defaultFlag": true, "communicationType": kind})
}

/// A new contact's `communicationItems`: its email and phone, each the default item of its
/// kind (sample `write_contacts_payload-post.json`).
pub fn communication_items(c: &ExtContact) -> Value {
    let items = [("Email", c.email.as_deref()), ("Phone", c.phone.as_deref())]
        .into_iter()
        .filter_map(|(kind, value)| non_empty(value).map(|v| new_item(kind, v)));
    Value::Array(items.collect())
}

/// The JSON-Patch operations that set a contact's email and/or phone (`wanted`: kind and
/// new value, `None` to remove it) among its current `items`, on the item the read takes for
/// that kind: its value replaced, the item removed, or a new default item added at the end
/// (sample `write_contacts_scenario1_2-patch.json`: index paths, `add` at the length).
/// Replacements come first, removals from the highest index down, additions last, so every
/// index is right when its operation runs.
pub fn communication_ops(items: &[CommunicationItem], wanted: &[(&str, Option<&str>)]) -> Vec<Value> {
    let (mut replaced, mut removed, mut added) = (Vec::new(), Vec::new(), Vec::new());
    for (kind, value) in wanted {
        match (chosen(items, kind), non_empty(*value)) {
            (Some(i), Some(v)) => {
                replaced.push(json!({"op": "replace", "path": format!("/communicationItems/{i}/value"), "value": v}))
            }
            (Some(i), None) => removed.push(i),
            (None, Some(v)) => added.push(new_item(kind, v)),
            (None, None) => {}
        }
    }
    removed.sort_unstable_by(|a, b| b.cmp(a));
    let start = items.len().saturating_sub(removed.len());
    let removals = removed.iter().map(|i| json!({"op": "remove", "path": format!("/communicationItems/{i}")}));
    let additions = added
        .into_iter()
        .enumerate()
        .map(|(k, v)| json!({"op": "add", "path": format!("/communicationItems/{}", start + k), "value": v}));
    replaced.into_iter().chain(removals).chain(additions).collect()
}

/// An opportunity's writable fields. Its value is not among them: ConnectWise has no
/// amount on the opportunity, only forecast lines (see `describe.rs`).
pub fn opportunity_out(o: &ExtOpportunity) -> Result<Vec<Out>, ConnectorError> {
    Ok(vec![
        out("name", vec![("name", json!(o.name.trim()))]),
        out("status", vec![("status", reference("opportunity status", o.status_id.as_deref())?)]),
        out("close_date", vec![("expectedCloseDate", close_date_value(o.close_date.as_deref())?)]),
        out("company", vec![("company", reference("company", o.company_id.as_deref())?)]),
        out("contact", vec![("contact", reference("contact", o.contact_id.as_deref())?)]),
        out("notes", vec![("notes", text_value(o.notes.as_deref()))]),
    ])
}

/// An activity's writable fields but `done`, which is a status reference the writer looks
/// up (a status with or without `closedFlag`, as the read decides).
pub fn activity_out(a: &ExtActivity) -> Result<Vec<Out>, ConnectorError> {
    Ok(vec![
        out("subject", vec![("name", json!(a.subject.trim()))]),
        out("body", vec![("notes", text_value(a.body.as_deref()))]),
        out("kind", vec![("type", reference("activity type", a.type_id.as_deref())?)]),
        out("date", vec![("dateStart", a.date.map_or(Value::Null, |d| json!(cw_datetime(d))))]),
        out("contact", vec![("contact", reference("contact", a.contact_id.as_deref())?)]),
        out("company", vec![("company", reference("company", a.company_id.as_deref())?)]),
    ])
}

/// A create's body: every field that has a value.
pub fn create_body(outs: &[Out]) -> Map<String, Value> {
    outs.iter()
        .flat_map(|o| o.sets.iter())
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

/// The `replace` operations of an update setting `fields` (the others are left alone).
pub fn replace_ops(outs: &[Out], fields: &[&str]) -> Vec<Value> {
    outs.iter()
        .filter(|o| fields.contains(&o.field))
        .flat_map(|o| o.sets.iter())
        .map(|(k, v)| json!({"op": "replace", "path": format!("/{k}"), "value": v}))
        .collect()
}

/// The company identifier (short unique code, required, S1) a create tries `attempt`
/// (1, 2, ...): the name's ASCII letters and digits, at most [`MAX_IDENTIFIER`], with the
/// attempt number after it from the second attempt on (ConnectWise refuses a taken one with
/// `ObjectExists`, psa-apis.md 1.7). A name without any gives `Company`. UNCONFIRMED which
/// characters ConnectWise allows in identifiers; letters and digits are safe.
pub fn identifier(name: &str, attempt: u32) -> String {
    let mut base: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
    if base.is_empty() {
        base = "Company".to_string();
    }
    let suffix = if attempt > 1 { attempt.to_string() } else { String::new() };
    base.truncate(MAX_IDENTIFIER.saturating_sub(suffix.len()));
    base + &suffix
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn records(stage: Stage, body: Value) -> Vec<ExternalRecord> {
        parse_page(stage, body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn the_recorded_contact_list_maps_into_contacts() {
        let out = parse_page(Stage::Contacts, include_bytes!("../../tests/fixtures/read_contacts.json")).unwrap();
        assert_eq!(
            out,
            [ExternalRecord::Contact(ExtContact {
                id: "31045".into(),
                first_name: "Alex".into(),
                last_name: "Morgan".into(),
                email: None,
                phone: Some("5558675309".into()),
                title: Some("Operations Manager".into()),
                company_id: Some("20481".into()),
                types: vec![],
                inactive: false,
                updated_at: None,
            })]
        );
    }

    #[test]
    fn the_recorded_single_contact_maps_with_its_company_and_phone() {
        let out = parse_page(Stage::Contacts, include_bytes!("../../tests/fixtures/read_one-contact.json")).unwrap();
        let [ExternalRecord::Contact(c)] = out.as_slice() else { panic!("{out:?}") };
        assert_eq!((c.id.as_str(), c.first_name.as_str(), c.last_name.as_str()), ("58024", "Jorge", "Smith"));
        assert_eq!(c.company_id.as_deref(), Some("250"));
        assert_eq!(c.phone.as_deref(), Some("4842618200"));
        assert_eq!((c.title.as_deref(), c.email.as_deref()), (None, None));
        assert!(!c.inactive && c.types.is_empty());
    }

    #[test]
    fn a_member_is_identified_by_its_login_name() {
        let body = json!([{"id": 7, "identifier": "jdoe", "firstName": "Jane", "lastName": "Doe",
            "primaryEmail": "", "securityRole": {"id": 3, "name": "Admin"}, "inactiveFlag": true,
            "_info": {"lastUpdated": "2024-01-02T03:04:05Z"}}]);
        let out = records(Stage::Users, body);
        let [ExternalRecord::User(u)] = out.as_slice() else { panic!("{out:?}") };
        assert_eq!(u.id, "jdoe");
        assert_eq!(u.email, None);
        assert_eq!(u.role.as_deref(), Some("3"));
        assert!(u.inactive);
        assert_eq!(u.updated_at.as_ref().map(ExtVersion::as_str), Some("2024-01-02T03:04:05Z"));
    }

    #[test]
    fn a_member_without_identifier_is_unreadable() {
        let out = records(Stage::Users, json!([{"id": 9}]));
        assert!(matches!(&out[0], ExternalRecord::Unreadable(u) if u.id.as_deref() == Some("9")), "{out:?}");
    }

    #[test]
    fn a_company_is_inactive_when_its_status_is_inactive() {
        let lookups = Lookups { inactive_company_statuses: HashSet::from([2]), ..Lookups::default() };
        let wire = |status: i64| -> Company {
            serde_json::from_value(json!({"id": 5, "name": " Acme ", "status": {"id": status},
                "types": [{"id": 4}, {"id": 1}], "addressLine1": "1 Main St", "city": "Springfield",
                "state": "IL", "zip": "62701", "deletedFlag": true}))
            .unwrap()
        };
        let active = company(wire(1), &lookups);
        assert!(!active.inactive);
        assert!(company(wire(2), &lookups).inactive);
        assert_eq!(active.name, "Acme");
        assert_eq!(active.types, ["4", "1"]);
        assert_eq!(active.address.as_deref(), Some("1 Main St, Springfield, IL 62701"));
        assert!(active.deleted);
    }

    #[test]
    fn a_contact_takes_the_default_email_else_the_first() {
        let wire = |items: Value| -> Contact {
            serde_json::from_value(json!({"id": 1, "communicationItems": items})).unwrap()
        };
        let c = contact(wire(json!([
            {"communicationType": "Email", "value": "first@x.com", "defaultFlag": false},
            {"communicationType": "Phone", "value": "555", "defaultFlag": true},
            {"communicationType": "Email", "value": "default@x.com", "defaultFlag": true}
        ])));
        assert_eq!(c.email.as_deref(), Some("default@x.com"));
        assert_eq!(c.phone.as_deref(), Some("555"));
        let c = contact(wire(json!([{"communicationType": "Email", "value": "only@x.com"}])));
        assert_eq!(c.email.as_deref(), Some("only@x.com"));
        assert_eq!(c.phone, None);
    }

    #[test]
    fn an_activity_is_done_when_its_status_is_closed() {
        let lookups = Lookups { closed_activity_statuses: HashSet::from([3]), ..Lookups::default() };
        let a: Activity = serde_json::from_value(json!({"id": 4, "name": "Call", "status": {"id": 3},
            "dateStart": "2024-05-01T10:00:00Z", "type": {"id": 2}, "contact": {"id": 8}, "company": {"id": 9},
            "_info": {"enteredBy": "jdoe"}}))
        .unwrap();
        let a = activity(a, &lookups).unwrap();
        assert!(a.done);
        assert_eq!(a.created_by.as_deref(), Some("jdoe"));
        assert_eq!(a.date.unwrap().to_rfc3339(), "2024-05-01T10:00:00Z");
        assert_eq!(
            (a.type_id.as_deref(), a.contact_id.as_deref(), a.company_id.as_deref()),
            (Some("2"), Some("8"), Some("9"))
        );
    }

    #[test]
    fn an_activity_with_an_unreadable_start_date_is_unreadable() {
        let out = records(Stage::Activities, json!([{"id": 4, "dateStart": "yesterday"}]));
        assert!(matches!(&out[0], ExternalRecord::Unreadable(u) if u.reason.contains("dateStart")), "{out:?}");
    }

    #[test]
    fn an_opportunity_is_worth_the_sum_of_its_forecast() {
        let o: Opportunity = serde_json::from_value(json!({"id": 1, "name": "Deal", "status": {"id": 2},
            "stage": {"id": 1, "name": "Qualify"}, "type": {"id": 3, "description": "New"},
            "primarySalesRep": {"id": 5, "identifier": "jdoe"}, "expectedCloseDate": "2024-06-01T00:00:00Z"}))
        .unwrap();
        let f: Forecast = serde_json::from_value(json!({"forecastItems": [
            {"productDescription": "Laptop", "quantity": 2.0, "revenue": 2000.0},
            {"forecastDescription": "Setup", "quantity": 1.0, "revenue": 150.5}
        ]}))
        .unwrap();
        let mut o = opportunity(o);
        assert_eq!(o.value, None);
        apply_forecast(&mut o, &f);
        assert_eq!(o.value, Some(2150.5));
        assert_eq!(o.line_items[1].description, "Setup");
        assert_eq!(o.salesperson_id.as_deref(), Some("jdoe"));
        assert_eq!(o.opportunity_type.as_deref(), Some("New"));
        assert_eq!(o.stage.as_deref(), Some("Qualify"));
    }

    #[test]
    fn an_element_with_a_wrong_field_type_is_unreadable_while_the_others_map() {
        let out = records(
            Stage::Companies,
            json!([{"id": 1, "name": "Good"}, {"id": 2, "name": ["not", "a", "name"]}, {"id": 3, "name": "Also good"}]),
        );
        assert_eq!(out.len(), 3);
        assert!(matches!(&out[0], ExternalRecord::Company(c) if c.name == "Good"));
        let ExternalRecord::Unreadable(bad) = &out[1] else { panic!("{out:?}") };
        assert_eq!(bad.id.as_deref(), Some("2"));
        assert!(bad.reason.contains("invalid type"), "{}", bad.reason);
        assert!(matches!(&out[2], ExternalRecord::Company(c) if c.id == "3"));
    }

    #[test]
    fn an_element_without_a_readable_id_is_unreadable_without_id() {
        let out = records(Stage::Contacts, json!([{"firstName": "No id"}]));
        assert!(matches!(&out[0], ExternalRecord::Unreadable(u) if u.id.is_none()), "{out:?}");
    }

    #[test]
    fn a_body_that_is_not_an_array_is_invalid_and_names_the_endpoint() {
        let err = parse_page(Stage::Companies, br#"{"code":"x"}"#).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
        assert!(err.message.contains("/company/companies"), "{}", err.message);
    }

    #[test]
    fn a_setup_entry_becomes_a_choice_named_by_the_right_field() {
        let e: SetupEntry = serde_json::from_value(json!({"id": 4, "description": "Decision Maker"})).unwrap();
        assert_eq!(choice(&e, NameField::Description), Choice { id: "4".into(), name: "Decision Maker".into() });
        assert_eq!(choice(&e, NameField::Name).name, "Decision Maker");
    }

    /// A create body as ConnectWise would store it: the body, an id, and each reference
    /// `{id}` as the store answers it.
    fn stored(body: Map<String, Value>) -> Value {
        let mut stored = Value::Object(body);
        stored["id"] = json!(77);
        stored
    }

    fn a_company() -> ExtCompany {
        ExtCompany {
            id: "77".into(),
            name: "Northwind Harbour Traders".into(),
            phone: Some("555-201-0199".into()),
            website: Some("https://northwind.example".into()),
            address: Some("12 Harbour Road, Unit 4".into()),
            types: vec!["3".into()],
            inactive: false,
            deleted: false,
            updated_at: None,
        }
    }

    #[test]
    fn a_written_company_reads_back_with_the_same_values() {
        let written = a_company();
        let body = create_body(&company_out(&written).unwrap());
        assert!(!body.contains_key("city"), "a create leaves out what it clears: {body:?}");
        let wire: Company = serde_json::from_value(stored(body)).unwrap();
        assert_eq!(company(wire, &Lookups::default()), written);
    }

    #[test]
    fn an_update_replaces_only_the_named_fields_and_an_address_clears_its_other_parts() {
        let outs = company_out(&a_company()).unwrap();
        let ops = replace_ops(&outs, &["phone"]);
        assert_eq!(ops, [json!({"op": "replace", "path": "/phoneNumber", "value": "555-201-0199"})]);
        let address = replace_ops(&outs, &["address"]);
        let paths: Vec<&str> = address.iter().filter_map(|o| o["path"].as_str()).collect();
        assert_eq!(paths, ["/addressLine1", "/addressLine2", "/city", "/state", "/zip"]);
        let cleared = ExtCompany { phone: None, ..a_company() };
        assert_eq!(replace_ops(&company_out(&cleared).unwrap(), &["phone"])[0]["value"], Value::Null);
    }

    #[test]
    fn ids_that_are_not_connectwise_numbers_are_refused_before_any_request() {
        let typed = ExtCompany { types: vec!["Client".into()], ..a_company() };
        assert_eq!(company_out(&typed).unwrap_err().kind, ErrorKind::Invalid);
        let untyped = ExtCompany { types: vec![NO_TYPE.into()], ..a_company() };
        assert!(!create_body(&company_out(&untyped).unwrap()).contains_key("types"));
        assert!(reference("company", Some("1 or 1=1")).is_err());
        assert_eq!(reference("company", Some(" 12 ")).unwrap(), json!({"id": 12}));
        assert_eq!(reference("company", None).unwrap(), Value::Null);
    }

    fn a_contact() -> ExtContact {
        ExtContact {
            id: "77".into(),
            first_name: "Ada".into(),
            last_name: "Quill".into(),
            email: Some("ada@larkspur.example".into()),
            phone: Some("555-201-0142".into()),
            title: Some("Operations Lead".into()),
            company_id: Some("5".into()),
            types: Vec::new(),
            inactive: false,
            updated_at: None,
        }
    }

    #[test]
    fn a_written_contact_reads_back_with_its_email_and_phone_as_communication_items() {
        let written = a_contact();
        let mut body = create_body(&contact_out(&written).unwrap());
        body.insert("communicationItems".into(), communication_items(&written));
        assert_eq!(body["company"], json!({"id": 5}));
        let wire: Contact = serde_json::from_value(stored(body)).unwrap();
        assert_eq!(contact(wire), written);
    }

    #[test]
    fn communication_ops_replace_remove_and_add_with_valid_indexes() {
        let items: Vec<CommunicationItem> = serde_json::from_value(json!([
            {"value": "555-1", "communicationType": "Phone", "defaultFlag": true},
            {"value": "old@x.example", "communicationType": "Email", "defaultFlag": false},
            {"value": "main@x.example", "communicationType": "Email", "defaultFlag": true},
        ]))
        .unwrap();
        let replace = communication_ops(&items, &[("Email", Some("new@x.example"))]);
        assert_eq!(
            replace,
            [json!({"op": "replace", "path": "/communicationItems/2/value", "value": "new@x.example"})]
        );
        let both = communication_ops(&items, &[("Email", None), ("Phone", None)]);
        let paths: Vec<&str> = both.iter().filter_map(|o| o["path"].as_str()).collect();
        assert_eq!(paths, ["/communicationItems/2", "/communicationItems/0"], "highest index first");
        let swap = communication_ops(&items[1..2], &[("Email", None), ("Phone", Some("555-2"))]);
        assert_eq!(swap[0], json!({"op": "remove", "path": "/communicationItems/0"}));
        assert_eq!(swap[1]["op"], "add");
        assert_eq!(swap[1]["path"], "/communicationItems/0", "added after the removal, at the new length");
        assert_eq!(swap[1]["value"]["communicationType"], "Phone");
    }

    #[test]
    fn a_written_opportunity_reads_back_with_its_close_day() {
        let written = ExtOpportunity {
            id: "77".into(),
            name: "Managed backup rollout".into(),
            status_id: Some("2".into()),
            stage: None,
            opportunity_type: None,
            close_date: Some("2027-03-31".into()),
            value: None,
            line_items: Vec::new(),
            salesperson_id: None,
            company_id: Some("5".into()),
            contact_id: Some("9".into()),
            notes: Some("Wants a quote".into()),
            updated_at: None,
        };
        let body = create_body(&opportunity_out(&written).unwrap());
        assert_eq!(body["expectedCloseDate"], "2027-03-31T00:00:00Z");
        let wire: Opportunity = serde_json::from_value(stored(body)).unwrap();
        assert_eq!(opportunity(wire), written);
        let bad = ExtOpportunity { close_date: Some("next spring".into()), ..written };
        assert_eq!(opportunity_out(&bad).unwrap_err().kind, ErrorKind::Invalid);
    }

    #[test]
    fn a_written_activity_reads_back_with_its_start_in_whole_seconds() {
        let written = ExtActivity {
            id: "77".into(),
            subject: "Discovery call".into(),
            body: Some("Talked through their backup gaps.".into()),
            type_id: Some("1".into()),
            contact_id: Some("9".into()),
            company_id: Some("5".into()),
            created_by: None,
            date: Some(Timestamp::parse("2026-11-20T15:30:00Z").unwrap()),
            done: false,
            updated_at: None,
        };
        let body = create_body(&activity_out(&written).unwrap());
        assert_eq!(body["dateStart"], "2026-11-20T15:30:00Z");
        let wire: Activity = serde_json::from_value(stored(body)).unwrap();
        assert_eq!(activity(wire, &Lookups::default()).unwrap(), written);
        let precise = Timestamp::parse("2026-11-20T15:30:00.750Z").unwrap();
        assert_eq!(cw_datetime(precise), "2026-11-20T15:30:00Z");
    }

    #[test]
    fn identifiers_are_the_name_s_letters_and_digits_numbered_after_the_first_try() {
        assert_eq!(identifier("Northwind Harbour Traders", 1), "NorthwindHarbourTraders");
        assert_eq!(identifier("Northwind Harbour Traders", 2), "NorthwindHarbourTraders2");
        let long = identifier("The Very Long Name Of A Company Limited", 3);
        assert_eq!((long.len(), long.ends_with('3')), (MAX_IDENTIFIER, true));
        assert_eq!(identifier("株式会社", 1), "Company");
        assert_eq!(identifier("", 2), "Company2");
    }

    fn item(id: i64, kind: &str, description: &str, quantity: f64, revenue: f64) -> ForecastItem {
        ForecastItem {
            id: Some(id),
            forecast_type: Some(kind.into()),
            product_description: (kind == "Product").then(|| description.into()),
            forecast_description: (kind != "Product").then(|| description.into()),
            quantity,
            revenue,
            ..ForecastItem::default()
        }
    }

    fn valued(name: &str, value: Option<f64>, line_items: Vec<ExtLineItem>) -> ExtOpportunity {
        ExtOpportunity {
            id: "9".into(),
            name: name.into(),
            status_id: None,
            stage: None,
            opportunity_type: None,
            close_date: None,
            value,
            line_items,
            salesperson_id: None,
            company_id: None,
            contact_id: None,
            notes: None,
            updated_at: None,
        }
    }

    #[test]
    fn a_new_value_replaces_tandem_s_value_item_and_counts_lines_entered_in_connectwise() {
        let o = valued("Deal", Some(1000.0), Vec::new());
        let ours = item(1, "Other1", "Deal", 1.0, 400.0);
        let replace = forecast_changes(std::slice::from_ref(&ours), &o);
        assert_eq!(replace.len(), 1);
        let ForecastChange::Replace { id: 1, operations } = &replace[0] else { panic!("{replace:?}") };
        assert!(operations.contains(&json!({"op": "replace", "path": "/revenue", "value": 1000.0})), "{operations:?}");
        let service = item(2, "Service", "Install", 1.0, 250.0);
        let changes = forecast_changes(&[ours.clone(), service.clone()], &o);
        let ForecastChange::Replace { operations, .. } = &changes[0] else { panic!("{changes:?}") };
        assert!(operations.contains(&json!({"op": "replace", "path": "/revenue", "value": 750.0})), "{operations:?}");
        assert!(forecast_changes(&[item(1, "Other1", "Deal", 1.0, 750.0), service.clone()], &o).is_empty());
        let cleared = valued("Deal", None, Vec::new());
        assert_eq!(forecast_changes(&[ours, service], &cleared), [ForecastChange::Remove(1)]);
        let long = valued(&"n".repeat(80), Some(5.0), Vec::new());
        let ForecastChange::Add(added) = &forecast_changes(&[], &long)[0] else { panic!() };
        assert_eq!(added["forecastDescription"].as_str().map(str::len), Some(FORECAST_DESCRIPTION_MAX));
    }

    #[test]
    fn line_items_already_in_the_forecast_are_kept_and_the_rest_replaced_added_or_removed() {
        let line = |d: &str, q: f64, r: f64| ExtLineItem { description: d.into(), quantity: q, revenue: r };
        let current = [
            item(1, "Product", "Kit", 1.0, 100.0),
            item(2, "Product", "Setup", 1.0, 50.0),
            item(3, "Other1", "Deal", 1.0, 150.0),
        ];
        let o = valued("Deal", Some(400.0), vec![line("Kit", 1.0, 100.0), line("Support", 2.0, 300.0)]);
        let changes = forecast_changes(&current, &o);
        assert!(matches!(&changes[0], ForecastChange::Replace { id: 2, .. }), "{changes:?}");
        assert_eq!(changes[1], ForecastChange::Remove(3));
        assert_eq!(changes.len(), 2);
        let mut catalog = item(4, "Product", "Rack", 1.0, 90.0);
        catalog.catalog_item = Some(json!({"id": 7}));
        let o = valued("Deal", None, vec![line("Kit", 1.0, 100.0), line("Kit", 1.0, 100.0)]);
        let changes = forecast_changes(&[current[0].clone(), catalog], &o);
        assert_eq!(changes.len(), 1, "a second Kit is added, the catalog line left: {changes:?}");
        assert!(matches!(&changes[0], ForecastChange::Add(v) if v["productDescription"] == "Kit"));
    }
}
