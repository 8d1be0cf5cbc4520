//! The simulated org's schema: the sObjects the integration touches (salesforce-api.md
//! 3.2), their fields with types, picklist values and flags, and the describe documents
//! built from them (3.3, shaped like restforce's `sobject_describe_success_response.json`).

use serde_json::{Map, Value, json};

/// A field's data type, as describe names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Id,
    /// A lookup to one of these objects.
    Reference(&'static [&'static str]),
    Str,
    Boolean,
    DateTime,
    Date,
    Currency,
    Email,
    Phone,
    Url,
    Picklist,
    TextArea,
}

impl Kind {
    fn describe_type(self) -> &'static str {
        match self {
            Kind::Id => "id",
            Kind::Reference(_) => "reference",
            Kind::Str => "string",
            Kind::Boolean => "boolean",
            Kind::DateTime => "datetime",
            Kind::Date => "date",
            Kind::Currency => "currency",
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::Url => "url",
            Kind::Picklist => "picklist",
            Kind::TextArea => "textarea",
        }
    }

    fn soap_type(self) -> &'static str {
        match self {
            Kind::Id | Kind::Reference(_) => "tns:ID",
            Kind::Boolean => "xsd:boolean",
            Kind::DateTime => "xsd:dateTime",
            Kind::Date => "xsd:date",
            Kind::Currency => "xsd:double",
            _ => "xsd:string",
        }
    }
}

/// One field of an sObject.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: Kind,
    pub picklist: &'static [&'static str],
    /// Settable on create / update (system fields are neither).
    pub writable: bool,
    /// Must be given on create (describe: createable, not nillable, not defaulted).
    pub required: bool,
    /// Usable as the upsert key.
    pub external_id: bool,
}

const fn field(name: &'static str, label: &'static str, kind: Kind) -> Field {
    Field { name, label, kind, picklist: &[], writable: true, required: false, external_id: false }
}

const fn system(name: &'static str, label: &'static str, kind: Kind) -> Field {
    Field { name, label, kind, picklist: &[], writable: false, required: false, external_id: false }
}

const fn required(name: &'static str, label: &'static str, kind: Kind) -> Field {
    Field { name, label, kind, picklist: &[], writable: true, required: true, external_id: false }
}

const fn pick(name: &'static str, label: &'static str, values: &'static [&'static str]) -> Field {
    Field { name, label, kind: Kind::Picklist, picklist: values, writable: true, required: false, external_id: false }
}

const fn external(name: &'static str, label: &'static str) -> Field {
    Field { name, label, kind: Kind::Str, picklist: &[], writable: true, required: false, external_id: true }
}

/// An sObject: API name, labels, key prefix (the first three characters of its ids) and fields.
#[derive(Debug)]
pub(crate) struct Object {
    pub name: &'static str,
    pub label: &'static str,
    pub plural: &'static str,
    pub prefix: &'static str,
    pub fields: &'static [Field],
}

impl Object {
    /// Its own fields, then the system fields every object has.
    pub(crate) fn all_fields(&self) -> impl Iterator<Item = &'static Field> + use<'_> {
        self.fields.iter().chain(SYSTEM_FIELDS.iter())
    }

    /// A field by name, case-insensitively (SOQL and REST field names are case-insensitive).
    pub(crate) fn field(&self, name: &str) -> Option<&'static Field> {
        self.all_fields().find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

const USER_REF: Kind = Kind::Reference(&["User"]);

/// Fields every object has (read-only audit fields).
pub(crate) const SYSTEM_FIELDS: &[Field] = &[
    system("Id", "Record ID", Kind::Id),
    system("IsDeleted", "Deleted", Kind::Boolean),
    system("CreatedDate", "Created Date", Kind::DateTime),
    system("CreatedById", "Created By ID", USER_REF),
    system("LastModifiedDate", "Last Modified Date", Kind::DateTime),
    system("LastModifiedById", "Last Modified By ID", USER_REF),
    system("SystemModstamp", "System Modstamp", Kind::DateTime),
];

/// Account `Type` (the standard values of a new org).
pub(crate) const ACCOUNT_TYPES: &[&str] = &[
    "Prospect",
    "Customer - Direct",
    "Customer - Channel",
    "Channel Partner / Reseller",
    "Installation Partner",
    "Technology Partner",
    "Other",
];
/// Account `Industry` (a subset of the standard values).
pub(crate) const INDUSTRIES: &[&str] =
    &["Technology", "Healthcare", "Finance", "Manufacturing", "Retail", "Education", "Construction", "Legal"];
/// The custom contact status picklist the contacts mapping keys on (`Contact_Status__c`).
pub(crate) const CONTACT_STATUSES: &[&str] =
    &["New", "Working", "Nurturing", "Qualified", "Unqualified", "Do Not Contact"];
/// Opportunity `StageName` (the standard sales process).
pub(crate) const OPPORTUNITY_STAGES: &[&str] = &[
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Perception Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
];
/// Opportunity `Type`.
pub(crate) const OPPORTUNITY_TYPES: &[&str] =
    &["Existing Customer - Upgrade", "Existing Customer - Replacement", "New Customer"];
/// Task `TaskSubtype` (salesforce-api.md 3.2: values UNCONFIRMED).
pub(crate) const TASK_SUBTYPES: &[&str] = &["Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn"];
/// Task `Status` (UNCONFIRMED defaults, org-configurable); `Completed` closes a task.
pub(crate) const TASK_STATUSES: &[&str] =
    &["Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred"];
/// Task `Priority`.
pub(crate) const TASK_PRIORITIES: &[&str] = &["High", "Normal", "Low"];
/// Lead `Status`.
pub(crate) const LEAD_STATUSES: &[&str] =
    &["Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted"];

const ORGANIZATION: Object = Object {
    name: "Organization",
    label: "Organization",
    plural: "Organizations",
    prefix: "00D",
    fields: &[system("Name", "Name", Kind::Str), system("OrganizationType", "Edition", Kind::Str)],
};

const PROFILE: Object = Object {
    name: "Profile",
    label: "Profile",
    plural: "Profiles",
    prefix: "00e",
    fields: &[system("Name", "Name", Kind::Str), system("UserType", "User Type", Kind::Str)],
};

const USER: Object = Object {
    name: "User",
    label: "User",
    plural: "Users",
    prefix: "005",
    fields: &[
        required("Username", "Username", Kind::Str),
        field("FirstName", "First Name", Kind::Str),
        required("LastName", "Last Name", Kind::Str),
        system("Name", "Full Name", Kind::Str),
        required("Email", "Email", Kind::Email),
        field("IsActive", "Active", Kind::Boolean),
        required("ProfileId", "Profile ID", Kind::Reference(&["Profile"])),
        field("UserRoleId", "Role ID", Kind::Reference(&["UserRole"])),
        field("Title", "Title", Kind::Str),
        field("TimeZoneSidKey", "Time Zone", Kind::Str),
    ],
};

const ACCOUNT: Object = Object {
    name: "Account",
    label: "Account",
    plural: "Accounts",
    prefix: "001",
    fields: &[
        required("Name", "Account Name", Kind::Str),
        pick("Type", "Account Type", ACCOUNT_TYPES),
        field("Phone", "Account Phone", Kind::Phone),
        field("Website", "Website", Kind::Url),
        pick("Industry", "Industry", INDUSTRIES),
        field("BillingStreet", "Billing Street", Kind::TextArea),
        field("BillingCity", "Billing City", Kind::Str),
        field("BillingState", "Billing State/Province", Kind::Str),
        field("BillingPostalCode", "Billing Zip/Postal Code", Kind::Str),
        field("BillingCountry", "Billing Country", Kind::Str),
        field("OwnerId", "Owner ID", USER_REF),
        external("Tandem_Id__c", "Tandem Id"),
    ],
};

const CONTACT: Object = Object {
    name: "Contact",
    label: "Contact",
    plural: "Contacts",
    prefix: "003",
    fields: &[
        field("FirstName", "First Name", Kind::Str),
        required("LastName", "Last Name", Kind::Str),
        system("Name", "Full Name", Kind::Str),
        field("Email", "Email", Kind::Email),
        field("Phone", "Business Phone", Kind::Phone),
        field("MobilePhone", "Mobile Phone", Kind::Phone),
        field("Title", "Title", Kind::Str),
        field("AccountId", "Account ID", Kind::Reference(&["Account"])),
        field("OwnerId", "Owner ID", USER_REF),
        pick("Contact_Status__c", "Contact Status", CONTACT_STATUSES),
        external("Tandem_Id__c", "Tandem Id"),
    ],
};

const LEAD: Object = Object {
    name: "Lead",
    label: "Lead",
    plural: "Leads",
    prefix: "00Q",
    fields: &[
        field("FirstName", "First Name", Kind::Str),
        required("LastName", "Last Name", Kind::Str),
        required("Company", "Company", Kind::Str),
        pick("Status", "Lead Status", LEAD_STATUSES),
        field("Email", "Email", Kind::Email),
        field("Phone", "Phone", Kind::Phone),
        system("IsConverted", "Converted", Kind::Boolean),
        field("OwnerId", "Owner ID", USER_REF),
    ],
};

const OPPORTUNITY: Object = Object {
    name: "Opportunity",
    label: "Opportunity",
    plural: "Opportunities",
    prefix: "006",
    fields: &[
        required("Name", "Name", Kind::Str),
        Field { required: true, ..pick("StageName", "Stage", OPPORTUNITY_STAGES) },
        required("CloseDate", "Close Date", Kind::Date),
        field("Amount", "Amount", Kind::Currency),
        pick("Type", "Opportunity Type", OPPORTUNITY_TYPES),
        field("AccountId", "Account ID", Kind::Reference(&["Account"])),
        field("OwnerId", "Owner ID", USER_REF),
        field("Description", "Description", Kind::TextArea),
        system("IsClosed", "Closed", Kind::Boolean),
        system("IsWon", "Won", Kind::Boolean),
    ],
};

const WHO: Kind = Kind::Reference(&["Contact", "Lead"]);
const WHAT: Kind = Kind::Reference(&["Account", "Opportunity"]);

const TASK: Object = Object {
    name: "Task",
    label: "Task",
    plural: "Tasks",
    prefix: "00T",
    fields: &[
        field("Subject", "Subject", Kind::Str),
        field("Description", "Description", Kind::TextArea),
        pick("TaskSubtype", "Task Subtype", TASK_SUBTYPES),
        field("WhoId", "Name ID", WHO),
        field("WhatId", "Related To ID", WHAT),
        system("AccountId", "Account ID", Kind::Reference(&["Account"])),
        field("OwnerId", "Assigned To ID", USER_REF),
        field("ActivityDate", "Due Date Only", Kind::Date),
        pick("Status", "Status", TASK_STATUSES),
        pick("Priority", "Priority", TASK_PRIORITIES),
        system("IsClosed", "Closed", Kind::Boolean),
    ],
};

const EVENT: Object = Object {
    name: "Event",
    label: "Event",
    plural: "Events",
    prefix: "00U",
    fields: &[
        field("Subject", "Subject", Kind::Str),
        field("Description", "Description", Kind::TextArea),
        field("WhoId", "Name ID", WHO),
        field("WhatId", "Related To ID", WHAT),
        system("AccountId", "Account ID", Kind::Reference(&["Account"])),
        field("OwnerId", "Assigned To ID", USER_REF),
        required("StartDateTime", "Start Date Time", Kind::DateTime),
        required("EndDateTime", "End Date Time", Kind::DateTime),
        field("Location", "Location", Kind::Str),
    ],
};

/// Every object the simulated org has.
pub(crate) static OBJECTS: &[Object] = &[ORGANIZATION, PROFILE, USER, ACCOUNT, CONTACT, LEAD, OPPORTUNITY, TASK, EVENT];

/// An object by API name, case-insensitively.
pub(crate) fn object(name: &str) -> Option<&'static Object> {
    OBJECTS.iter().find(|o| o.name.eq_ignore_ascii_case(name))
}

/// The `sobjects/{Object}/describe` document.
pub(crate) fn describe(o: &Object, version: &str) -> Value {
    let fields: Vec<Value> = o.all_fields().map(describe_field).collect();
    let base = format!("/services/data/{version}/sobjects/{}", o.name);
    json!({
        "name": o.name,
        "label": o.label,
        "labelPlural": o.plural,
        "custom": false,
        "keyPrefix": o.prefix,
        "createable": o.fields.iter().any(|f| f.writable),
        "updateable": o.fields.iter().any(|f| f.writable),
        "deletable": o.fields.iter().any(|f| f.writable),
        "queryable": true,
        "replicateable": true,
        "retrieveable": true,
        "searchable": true,
        "triggerable": true,
        "undeletable": true,
        "mergeable": false,
        "feedEnabled": false,
        "layoutable": true,
        "urls": {
            "sobject": base,
            "describe": format!("{base}/describe"),
            "rowTemplate": format!("{base}/{{ID}}"),
        },
        "childRelationships": [],
        "recordTypeInfos": [],
        "fields": fields,
    })
}

fn describe_field(f: &Field) -> Value {
    let picklist: Vec<Value> = f
        .picklist
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"value": v, "label": v, "active": true, "defaultValue": i == 0 && f.name == "Status", "validFor": null}))
        .collect();
    let reference_to: &[&str] = match f.kind {
        Kind::Reference(to) => to,
        _ => &[],
    };
    let length = match f.kind {
        Kind::Id | Kind::Reference(_) => 18,
        Kind::Picklist => 255,
        Kind::TextArea => 32_000,
        Kind::Str | Kind::Email | Kind::Phone | Kind::Url => 255,
        _ => 0,
    };
    let custom = f.name.ends_with("__c");
    let relationship = match f.kind {
        Kind::Reference(_) if f.name.ends_with("Id") => Value::String(f.name.trim_end_matches("Id").to_string()),
        _ => Value::Null,
    };
    json!({
        "name": f.name,
        "label": f.label,
        "type": f.kind.describe_type(),
        "soapType": f.kind.soap_type(),
        "length": length,
        "byteLength": length * 3,
        "precision": if f.kind == Kind::Currency { 18 } else { 0 },
        "scale": if f.kind == Kind::Currency { 2 } else { 0 },
        "digits": 0,
        "nillable": !f.required && f.kind != Kind::Boolean && f.kind != Kind::Id,
        "createable": f.writable,
        "updateable": f.writable,
        "defaultedOnCreate": !f.writable || f.kind == Kind::Boolean,
        "defaultValue": null,
        "defaultValueFormula": null,
        "calculated": false,
        "calculatedFormula": null,
        "autoNumber": false,
        "unique": f.external_id,
        "externalId": f.external_id,
        "idLookup": f.external_id || f.kind == Kind::Id || f.name == "Email" || f.name == "Username",
        "caseSensitive": false,
        "custom": custom,
        "nameField": f.name == "Name",
        "filterable": true,
        "sortable": f.kind != Kind::TextArea,
        "groupable": f.kind != Kind::TextArea,
        "htmlFormatted": false,
        "picklistValues": picklist,
        "restrictedPicklist": f.kind == Kind::Picklist && f.name != "Contact_Status__c",
        "dependentPicklist": false,
        "controllerName": null,
        "referenceTo": reference_to,
        "relationshipName": relationship,
        "relationshipOrder": null,
        "namePointing": reference_to.len() > 1,
        "inlineHelpText": null,
        "deprecatedAndHidden": false,
        "writeRequiresMasterRead": false,
    })
}

/// A record's `attributes`.
pub(crate) fn attributes(object: &str, id: &str, version: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), Value::String(object.to_string()));
    m.insert("url".into(), Value::String(format!("/services/data/{version}/sobjects/{object}/{id}")));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_lists_custom_fields_and_picklist_values() {
        let d = describe(object("contact").unwrap(), "v60.0");
        let fields = d["fields"].as_array().unwrap();
        let status = fields.iter().find(|f| f["name"] == "Contact_Status__c").unwrap();
        assert_eq!(status["custom"], true);
        assert_eq!(status["type"], "picklist");
        assert_eq!(status["picklistValues"].as_array().unwrap().len(), CONTACT_STATUSES.len());
        assert!(fields.iter().any(|f| f["name"] == "LastModifiedDate" && f["type"] == "datetime"));
        assert_eq!(d["keyPrefix"], "003");
    }

    #[test]
    fn field_names_are_found_without_regard_to_case() {
        let a = object("Account").unwrap();
        assert_eq!(a.field("website").map(|f| f.name), Some("Website"));
        assert_eq!(a.field("lastmodifieddate").map(|f| f.name), Some("LastModifiedDate"));
        assert!(a.field("Nope__c").is_none());
    }
}
