//! Salesforce's field-level mode (PRODUCT.md section 7), the map a tenant saves: whether
//! CRM records become Leads or Accounts (with Contacts and Opportunities), which CRM field
//! goes to which Salesforce field (custom fields included), values for required fields
//! the CRM does not have, and how CRM choices become picklist values; and [`check`], the
//! pure check of a map against Salesforce's own describe of its objects (fetched live by
//! the use case), naming every field that cannot work and why.
//!
//! Saved and read through `usecases::field_map`; records go out and come in by it through
//! `usecases::field_sync`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

use crate::records::Record;

/// What a CRM company becomes in Salesforce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// One Lead per CRM company and contact, person and company fields on one record.
    Lead,
    /// An Account per company, a Contact per contact, an Opportunity per opportunity.
    Account,
}

/// One CRM field sent to one Salesforce field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMapping {
    /// The CRM field: `company.name`, `contact.email`, `opportunity.close_date`, or a
    /// company's custom field `company.custom.<name>`.
    pub crm: String,
    /// The Salesforce field's API name on the object the CRM record becomes.
    pub salesforce: String,
    /// For a CRM choice (a company type, a contact status): the Salesforce value of each
    /// CRM value; a value not named goes as it is.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
}

/// A tenant's field map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMap {
    pub target: Target,
    pub fields: Vec<FieldMapping>,
    /// Per Salesforce object, values for fields no CRM field fills (a required field the
    /// CRM has no counterpart for): `{"Lead": {"LeadSource": "Field Sales"}}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub defaults: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    /// Account target: a CRM opportunity whose stage reaches this one (case aside) creates
    /// an Opportunity on its company's Account; none: no Opportunities are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opportunity_stage: Option<String>,
    /// When the map was first saved (set by Tandem; a value sent is ignored): activities
    /// created since become Salesforce Tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<crate::normalise::Timestamp>,
}

impl FieldMap {
    /// The objects this map writes, whose describes the check needs: a Lead; or an Account
    /// and a Contact, and an Opportunity when a stage creates one.
    pub fn objects(&self) -> &'static [&'static str] {
        match (self.target, &self.opportunity_stage) {
            (Target::Lead, _) => &["Lead"],
            (Target::Account, None) => &["Account", "Contact"],
            (Target::Account, Some(_)) => &["Account", "Contact", "Opportunity"],
        }
    }
}

/// One field of a Salesforce object as its describe tells it (salesforce-api.md 3.3).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribedField {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: String,
    #[serde(default)]
    pub length: u32,
    #[serde(default)]
    pub nillable: bool,
    #[serde(default)]
    pub createable: bool,
    #[serde(default)]
    pub updateable: bool,
    #[serde(default)]
    pub defaulted_on_create: bool,
    #[serde(default)]
    pub calculated: bool,
    #[serde(default)]
    pub restricted_picklist: bool,
    #[serde(default)]
    pub picklist_values: Vec<PicklistValue>,
}

/// One value of a picklist field.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PicklistValue {
    pub value: String,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

impl DescribedField {
    /// Required in a mapping: Salesforce needs it on create and fills it itself not
    /// (createable, not nillable, not defaulted; salesforce-api.md 3.3's convention).
    pub fn required(&self) -> bool {
        self.createable && !self.nillable && !self.defaulted_on_create
    }
}

/// An object's describe: its name and fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ObjectDescribe {
    pub name: String,
    #[serde(default)]
    pub fields: Vec<DescribedField>,
}

/// What a CRM field holds, for the checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CrmValue {
    /// Text of at most this many characters.
    Text(u32),
    Date,
    Number,
    /// One of a vocabulary's values (open: any slug a tenant uses).
    Choice,
}

/// The longest text of a name-like CRM field, and of any other (crm.rs's limits).
const NAME: u32 = 255;
const LONG: u32 = 10_000;

impl CrmValue {
    /// Whether its values have an order (numbers, dates).
    pub(crate) fn comparable(self) -> bool {
        matches!(self, CrmValue::Date | CrmValue::Number)
    }
}

/// The CRM field `path` names: its record kind (`company`, `contact`, `opportunity`) and
/// what it holds; `None` for no such field.
pub(crate) fn crm_field(path: &str) -> Option<(&'static str, CrmValue)> {
    use CrmValue::{Choice, Date, Number, Text};
    // A custom field holds what the tenant puts in it, mostly short (a territory, a
    // rating): it may go to any text field, a value too long for one refused by
    // Salesforce record by record and logged.
    if path.strip_prefix("company.custom.").is_some_and(|name| !name.is_empty()) {
        return Some(("company", Text(NAME)));
    }
    Some(match path {
        "company.name" | "company.website" => ("company", Text(NAME)),
        "company.phone" => ("company", Text(50)),
        "company.address" => ("company", Text(LONG)),
        "company.company_type" => ("company", Choice),
        "contact.first_name" | "contact.last_name" | "contact.email" => ("contact", Text(NAME)),
        "contact.phone" => ("contact", Text(50)),
        "contact.title" => ("contact", Text(NAME)),
        "contact.status" => ("contact", Choice),
        "opportunity.name" => ("opportunity", Text(NAME)),
        "opportunity.stage" | "opportunity.opportunity_type" => ("opportunity", Text(NAME)),
        "opportunity.notes" => ("opportunity", Text(LONG)),
        "opportunity.status" => ("opportunity", Choice),
        "opportunity.close_date" => ("opportunity", Date),
        "opportunity.value" | "opportunity.lifetime_value" => ("opportunity", Number),
        _ => return None,
    })
}

/// The Salesforce object a CRM record kind becomes under `target`.
pub fn object_of(target: Target, kind: &str) -> &'static str {
    match (target, kind) {
        (Target::Lead, _) => "Lead",
        (Target::Account, "company") => "Account",
        (Target::Account, "contact") => "Contact",
        (Target::Account, _) => "Opportunity",
    }
}

/// The objects a map under `target` writes, whose describes the check needs.
pub fn objects(target: Target) -> &'static [&'static str] {
    match target {
        Target::Lead => &["Lead"],
        Target::Account => &["Account", "Contact", "Opportunity"],
    }
}

/// The value of CRM field `field` (`name`, or a custom field `custom.<name>`) in `record`;
/// `Null` where it holds none.
pub fn crm_value(record: &Record, field: &str) -> Value {
    let fields = record.fields();
    match field.strip_prefix("custom.") {
        Some(name) => fields.get("custom_fields").and_then(|c| c.get(name)).cloned().unwrap_or(Value::Null),
        None => fields.get(field).cloned().unwrap_or(Value::Null),
    }
}

/// The Salesforce fields of `object` for CRM `records` (each with its kind: `company`,
/// `contact`, `opportunity`; a Lead takes a contact's and its company's): every mapping
/// whose record writes `object`, a choice through its `values`, and on a create the
/// object's defaults for what nothing mapped fills and no empty value (an update sends an
/// empty value as null, clearing the field).
pub fn salesforce_values(
    map: &FieldMap,
    object: &str,
    records: &[(&str, &Record)],
    create: bool,
) -> Map<String, Value> {
    let mut out = Map::new();
    for m in &map.fields {
        let Some((kind, path)) = m.crm.split_once('.') else { continue };
        let Some((_, record)) = records.iter().find(|(k, _)| *k == kind) else { continue };
        if object_of(map.target, kind) != object {
            continue;
        }
        let value = match crm_value(record, path) {
            Value::String(s) => m.values.get(&s).cloned().map_or(Value::String(s), Value::String),
            other => other,
        };
        if !(create && value.is_null()) {
            out.insert(m.salesforce.clone(), value);
        }
    }
    if create && let Some(defaults) = map.defaults.get(object) {
        for (field, value) in defaults {
            out.entry(field.clone()).or_insert_with(|| value.clone());
        }
    }
    out
}

/// A field of the map that cannot work, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// `Object.Field` in Salesforce, or the CRM field when that is what is wrong.
    pub field: String,
    pub reason: String,
}

/// Checks `map` against the describes of the objects it writes (`describes`, by object
/// name): every mapping's CRM field exists; its Salesforce field exists, is one Tandem may
/// write (not a formula, not read-only) and can hold the CRM value (its type, its length,
/// a restricted picklist's values); and every field Salesforce requires is mapped or given
/// a default. All refusals at once, empty when the map can work.
pub fn check(map: &FieldMap, describes: &BTreeMap<String, ObjectDescribe>) -> Vec<Refusal> {
    let mut refusals = Vec::new();
    let mut refuse = |field: String, reason: String| refusals.push(Refusal { field, reason });
    let mut filled: Vec<(String, String)> = Vec::new();
    for m in &map.fields {
        let Some((kind, value)) = crm_field(&m.crm) else {
            refuse(m.crm.clone(), "no such CRM field".into());
            continue;
        };
        let object = object_of(map.target, kind);
        let name = format!("{object}.{}", m.salesforce);
        let Some(field) = describes.get(object).and_then(|d| d.fields.iter().find(|f| f.name == m.salesforce)) else {
            refuse(name, format!("Salesforce's {object} has no such field"));
            continue;
        };
        filled.push((object.to_string(), field.name.clone()));
        if let Some(why) = not_writable(field).or_else(|| cannot_hold(field, value, &m.values)) {
            refuse(name, why);
        }
    }
    for object in map.objects() {
        let Some(describe) = describes.get(*object) else {
            refuse((*object).to_string(), "Salesforce's describe of it was not read".into());
            continue;
        };
        let defaults = map.defaults.get(*object);
        for field in describe.fields.iter().filter(|f| f.required()) {
            let mapped = filled.iter().any(|(o, f)| o == object && *f == field.name);
            if !mapped && defaults.is_none_or(|d| !d.contains_key(&field.name)) {
                refuse(format!("{object}.{}", field.name), "required by Salesforce, not mapped, no default".into());
            }
        }
    }
    refusals
}

fn not_writable(field: &DescribedField) -> Option<String> {
    if field.calculated {
        return Some("a formula field: Salesforce computes it, nothing may write it".into());
    }
    (!field.createable && !field.updateable).then(|| "read-only in Salesforce".into())
}

/// Why `field` cannot hold a CRM value of `value`, if it cannot.
fn cannot_hold(field: &DescribedField, value: CrmValue, values: &BTreeMap<String, String>) -> Option<String> {
    let t = field.field_type.as_str();
    let text_types = ["string", "textarea", "email", "phone", "url", "combobox"];
    match value {
        // A long text (notes, an address) needs a field as long; a short one
        // (a name, an email) goes to Salesforce's shorter standard fields (LastName holds
        // 80), a value too long for one refused by Salesforce record by record, logged.
        CrmValue::Text(max) if text_types.contains(&t) => (max >= LONG && field.length > 0 && field.length < max)
            .then(|| format!("holds at most {} characters; the CRM field is a long text of up to {max}", field.length)),
        CrmValue::Text(_) if t == "picklist" && field.restricted_picklist => {
            Some("a restricted picklist: free text would be refused (map a CRM choice to it)".into())
        }
        CrmValue::Date if ["date", "datetime"].contains(&t) => None,
        CrmValue::Number if ["double", "currency", "percent", "int"].contains(&t) => None,
        CrmValue::Choice if text_types.contains(&t) || t == "picklist" && !field.restricted_picklist => None,
        CrmValue::Choice if t == "picklist" => {
            let allowed: Vec<&str> =
                field.picklist_values.iter().filter(|v| v.active).map(|v| v.value.as_str()).collect();
            let bad: Vec<&String> = values.values().filter(|v| !allowed.contains(&v.as_str())).collect();
            match bad.is_empty() {
                true => None,
                false => Some(format!(
                    "{} not among the picklist's values ({})",
                    bad.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", "),
                    allowed.join(", ")
                )),
            }
        }
        CrmValue::Text(_) => Some(format!("a {t} field cannot hold text")),
        CrmValue::Date => Some(format!("a {t} field cannot hold a date")),
        CrmValue::Number => Some(format!("a {t} field cannot hold a number")),
        CrmValue::Choice => Some(format!("a {t} field cannot hold a choice")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(name: &str, field_type: &str) -> DescribedField {
        DescribedField {
            name: name.into(),
            field_type: field_type.into(),
            length: if field_type == "string" { 255 } else { 0 },
            nillable: true,
            createable: true,
            updateable: true,
            ..DescribedField::default()
        }
    }

    /// A Lead describe: `LastName` and `Company` required, a short custom text, a date, a
    /// restricted picklist, a formula and a read-only field.
    fn lead() -> BTreeMap<String, ObjectDescribe> {
        let required = |name: &str| DescribedField { nillable: false, ..field(name, "string") };
        let fields = vec![
            required("LastName"),
            required("Company"),
            field("FirstName", "string"),
            field("Email", "email"),
            DescribedField { length: 20, ..field("Region__c", "string") },
            field("Next_Visit__c", "date"),
            DescribedField {
                restricted_picklist: true,
                picklist_values: ["Open", "Working", "Qualified"]
                    .iter()
                    .map(|v| PicklistValue { value: (*v).into(), active: true })
                    .collect(),
                ..field("Status", "picklist")
            },
            DescribedField { calculated: true, createable: false, updateable: false, ..field("Score__c", "double") },
            DescribedField { createable: false, updateable: false, ..field("CreatedDate", "datetime") },
            DescribedField { nillable: false, defaulted_on_create: true, ..field("OwnerId", "reference") },
        ];
        BTreeMap::from([("Lead".to_string(), ObjectDescribe { name: "Lead".into(), fields })])
    }

    fn map(fields: &[(&str, &str)]) -> FieldMap {
        FieldMap {
            target: Target::Lead,
            fields: fields
                .iter()
                .map(|(crm, sf)| FieldMapping { crm: (*crm).into(), salesforce: (*sf).into(), values: BTreeMap::new() })
                .collect(),
            defaults: BTreeMap::new(),
            opportunity_stage: None,
            since: None,
        }
    }

    const BASE: &[(&str, &str)] = &[("contact.last_name", "LastName"), ("company.name", "Company")];

    fn refused(extra: &[(&str, &str)]) -> Vec<Refusal> {
        let fields: Vec<(&str, &str)> = BASE.iter().chain(extra).copied().collect();
        check(&map(&fields), &lead())
    }

    #[test]
    fn a_map_that_fits_the_describe_is_refused_nowhere() {
        assert_eq!(refused(&[("contact.email", "Email"), ("opportunity.close_date", "Next_Visit__c")]), vec![]);
    }

    #[test]
    fn each_reason_a_field_cannot_work_is_named_with_the_field() {
        let cases = [
            (("contact.email", "Emial"), "Lead.Emial", "no such field"),
            (("company.address", "Region__c"), "Lead.Region__c", "at most 20 characters"),
            (("contact.first_name", "Next_Visit__c"), "Lead.Next_Visit__c", "cannot hold text"),
            (("company.phone", "Score__c"), "Lead.Score__c", "formula"),
            (("company.name", "CreatedDate"), "Lead.CreatedDate", "read-only"),
            (("contact.shoe_size", "FirstName"), "contact.shoe_size", "no such CRM field"),
        ];
        for ((crm, sf), field, why) in cases {
            let all = refused(&[(crm, sf)]);
            assert_eq!(all.len(), 1, "{crm} -> {sf}: {all:?}");
            assert_eq!(all[0].field, field);
            assert!(all[0].reason.contains(why), "{crm} -> {sf}: {:?}", all[0].reason);
        }
    }

    #[test]
    fn a_choice_goes_to_a_restricted_picklist_only_with_values_it_allows() {
        let mut m = map(BASE);
        let mapping = |values: &[(&str, &str)]| FieldMapping {
            crm: "contact.status".into(),
            salesforce: "Status".into(),
            values: values.iter().map(|(a, b)| ((*a).to_string(), (*b).to_string())).collect(),
        };
        m.fields.push(mapping(&[("talking", "Working"), ("customer", "Qualified")]));
        assert_eq!(check(&m, &lead()), vec![]);
        m.fields.pop();
        m.fields.push(mapping(&[("talking", "Chatting")]));
        let all = check(&m, &lead());
        assert_eq!(all.len(), 1, "{all:?}");
        assert!(all[0].reason.contains("\"Chatting\" not among") && all[0].reason.contains("Qualified"), "{all:?}");
        let free_text = refused(&[("contact.first_name", "Status")]);
        assert!(free_text[0].reason.contains("restricted picklist"), "{free_text:?}");
    }

    #[test]
    fn a_required_field_needs_a_mapping_or_a_default() {
        let all = check(&map(&[("contact.last_name", "LastName")]), &lead());
        assert_eq!(
            all,
            vec![Refusal {
                field: "Lead.Company".into(),
                reason: "required by Salesforce, not mapped, no default".into()
            }]
        );
        let mut with_default = map(&[("contact.last_name", "LastName")]);
        with_default.defaults.insert("Lead".into(), BTreeMap::from([("Company".to_string(), json!("Unknown"))]));
        assert_eq!(check(&with_default, &lead()), vec![], "OwnerId is defaulted by Salesforce");
    }

    #[test]
    fn an_account_map_checks_each_record_kind_against_its_own_object() {
        let account = |fields| ObjectDescribe { name: String::new(), fields };
        let describes = BTreeMap::from([
            ("Account".to_string(), account(vec![DescribedField { nillable: false, ..field("Name", "string") }])),
            ("Contact".to_string(), account(vec![DescribedField { nillable: false, ..field("LastName", "string") }])),
            ("Opportunity".to_string(), account(vec![field("Name", "string"), field("CloseDate", "date")])),
        ]);
        let mut m = map(&[
            ("company.name", "Name"),
            ("contact.last_name", "LastName"),
            ("opportunity.close_date", "CloseDate"),
        ]);
        m.target = Target::Account;
        assert_eq!(check(&m, &describes), vec![]);
        m.fields.push(FieldMapping {
            crm: "contact.email".into(),
            salesforce: "Website".into(),
            values: BTreeMap::new(),
        });
        assert_eq!(check(&m, &describes)[0].field, "Contact.Website");
    }

    #[test]
    fn a_lead_takes_its_contacts_and_companys_mapped_values_with_choices_mapped_and_defaults_on_create() {
        let meta = json!({"id": "x", "version": 1, "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"});
        let company: Record = serde_json::from_value(json!({"object": "company", "meta": meta, "name": "Acme",
            "company_type": "client", "custom_fields": {"Region": "North"}}))
        .unwrap();
        let contact: Record = serde_json::from_value(json!({"object": "contact", "meta": meta, "first_name": "Ann",
            "last_name": "Lee", "status": "talking"}))
        .unwrap();
        let mut m = map(&[
            ("contact.last_name", "LastName"),
            ("company.name", "Company"),
            ("company.custom.Region", "Region__c"),
            ("contact.email", "Email"),
        ]);
        m.fields.push(FieldMapping {
            crm: "contact.status".into(),
            salesforce: "Status".into(),
            values: BTreeMap::from([("talking".to_string(), "Working".to_string())]),
        });
        m.defaults.insert("Lead".into(), BTreeMap::from([("LeadSource".to_string(), json!("Field Sales"))]));
        let records = [("company", &company), ("contact", &contact)];
        let created = salesforce_values(&m, "Lead", &records, true);
        assert_eq!(
            Value::Object(created),
            json!({"LastName": "Lee", "Company": "Acme", "Region__c": "North",
            "Status": "Working", "LeadSource": "Field Sales"})
        );
        let updated = salesforce_values(&m, "Lead", &records, false);
        assert_eq!(updated.get("Email"), Some(&Value::Null), "an update clears what the CRM cleared");
        assert!(!updated.contains_key("LeadSource"), "defaults are for creates");
        assert!(salesforce_values(&m, "Account", &records, true).is_empty(), "a Lead map writes no Account");
    }

    #[test]
    fn a_field_map_body_reads_and_refuses_unknown_keys() {
        let body = json!({"target": "lead", "fields": [{"crm": "company.name", "salesforce": "Company"}],
            "defaults": {"Lead": {"LeadSource": "Field Sales"}}});
        let m: FieldMap = serde_json::from_value(body).unwrap();
        assert_eq!((m.target, m.fields.len()), (Target::Lead, 1));
        assert!(serde_json::from_value::<FieldMap>(json!({"target": "lead", "fields": [], "colour": 1})).is_err());
        assert!(serde_json::from_value::<FieldMap>(json!({"target": "deal", "fields": []})).is_err());
    }
}
