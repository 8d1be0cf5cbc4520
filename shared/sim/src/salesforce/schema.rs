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
    /// A number with a fixed count of decimals (describe `double`).
    Double,
    /// A percentage (describe `percent`).
    Percent,
    /// A whole number (describe `int`).
    Int,
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
            Kind::Double => "double",
            Kind::Percent => "percent",
            Kind::Int => "int",
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
            Kind::Currency | Kind::Double | Kind::Percent => "xsd:double",
            Kind::Int => "xsd:int",
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
    /// Settable on create / update (system and formula fields are neither).
    pub writable: bool,
    /// Must be given on create (describe: createable, not nillable, not defaulted).
    pub required: bool,
    /// Usable as the upsert key.
    pub external_id: bool,
    /// Most characters a text value may hold; 0 = the kind's usual length ([`Field::length`]).
    pub length: u32,
    /// Total digits and digits after the point of a number (describe `precision`, `scale`).
    pub precision: u32,
    pub scale: u32,
    /// A restricted picklist: a value outside `picklist` is refused.
    pub restricted: bool,
    /// The picklist value a create that leaves the field out gets (describe `defaultValue`
    /// on that picklist entry, `defaultedOnCreate: true`).
    pub default: Option<&'static str>,
    /// A formula field's formula (describe `calculated: true`, `calculatedFormula`); its
    /// value is computed on every write and can never be written.
    pub formula: Option<&'static str>,
}

impl Field {
    /// The most characters a value may hold (describe `length`; 0 for non-text kinds).
    pub(crate) fn length(&self) -> u32 {
        if self.length > 0 {
            return self.length;
        }
        match self.kind {
            Kind::Id | Kind::Reference(_) => 18,
            Kind::TextArea => 32_000,
            Kind::Picklist | Kind::Str | Kind::Email | Kind::Phone | Kind::Url => 255,
            _ => 0,
        }
    }

    /// Whether values are text whose length is limited by [`Field::length`].
    pub(crate) fn is_text(&self) -> bool {
        matches!(self.kind, Kind::Str | Kind::TextArea | Kind::Email | Kind::Phone | Kind::Url)
    }

    /// Whether values are numbers.
    pub(crate) fn is_number(&self) -> bool {
        matches!(self.kind, Kind::Currency | Kind::Double | Kind::Percent | Kind::Int)
    }
}

const BASE: Field = Field {
    name: "",
    label: "",
    kind: Kind::Str,
    picklist: &[],
    writable: true,
    required: false,
    external_id: false,
    length: 0,
    precision: 0,
    scale: 0,
    restricted: false,
    default: None,
    formula: None,
};

const fn field(name: &'static str, label: &'static str, kind: Kind) -> Field {
    Field { name, label, kind, ..BASE }
}

const fn system(name: &'static str, label: &'static str, kind: Kind) -> Field {
    Field { name, label, kind, writable: false, ..BASE }
}

const fn required(name: &'static str, label: &'static str, kind: Kind) -> Field {
    Field { name, label, kind, required: true, ..BASE }
}

/// A text field of at most `length` characters.
const fn text(name: &'static str, label: &'static str, length: u32) -> Field {
    Field { name, label, kind: Kind::Str, length, ..BASE }
}

/// A long text area of at most `length` characters.
const fn long_text(name: &'static str, label: &'static str, length: u32) -> Field {
    Field { name, label, kind: Kind::TextArea, length, ..BASE }
}

/// A number (currency, double, percent) of `precision` digits, `scale` of them decimals.
const fn number(name: &'static str, label: &'static str, kind: Kind, precision: u32, scale: u32) -> Field {
    Field { name, label, kind, precision, scale, ..BASE }
}

/// A restricted picklist.
const fn pick(name: &'static str, label: &'static str, values: &'static [&'static str]) -> Field {
    Field { name, label, kind: Kind::Picklist, picklist: values, restricted: true, ..BASE }
}

/// A formula field: read-only, computed by [`crate::salesforce::store`] from `formula`.
const fn formula(name: &'static str, label: &'static str, kind: Kind, formula: &'static str) -> Field {
    Field { name, label, kind, writable: false, formula: Some(formula), ..BASE }
}

const fn external(name: &'static str, label: &'static str) -> Field {
    Field { name, label, kind: Kind::Str, external_id: true, ..BASE }
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

/// `LeadSource` of Lead, Contact and Opportunity (the standard values of a new org;
/// UNCONFIRMED, the reference names the field but not its values).
pub(crate) const LEAD_SOURCES: &[&str] = &["Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"];
/// Task `CallType` (UNCONFIRMED values, as for the other Task picklists).
pub(crate) const CALL_TYPES: &[&str] = &["Internal", "Inbound", "Outbound"];
/// The custom `Visit_Result__c` of a Lead: how a field rep's last door knock went (the
/// field-sales data a SPOTIO-style mapping carries, salesforce-api.md 7).
pub(crate) const VISIT_RESULTS: &[&str] = &["Not Home", "Not Interested", "Follow Up", "Appointment Set", "Sold"];
/// The custom `Service_Tier__c` of an Account.
pub(crate) const SERVICE_TIERS: &[&str] = &["Bronze", "Silver", "Gold"];
/// The custom `Preferred_Channel__c` of a Contact.
pub(crate) const CHANNELS: &[&str] = &["Phone", "Email", "SMS", "In Person"];
/// The custom `Product_Line__c` of an Opportunity.
pub(crate) const PRODUCT_LINES: &[&str] = &["Roofing", "Solar", "Windows", "Siding"];
/// The custom `Visit_Outcome__c` of a Task (a logged visit).
pub(crate) const VISIT_OUTCOMES: &[&str] = &["Knocked", "Talked", "Appointment", "Callback"];

/// The message of the seeded validation rule on Opportunity (see [`OPPORTUNITY`]).
pub(crate) const NEGATIVE_AMOUNT_MESSAGE: &str = "Amount cannot be negative.";

// The custom fields (`__c`) below stand for what an org set up for field sales adds: per
// object a text with a length, a long text area, a number, a date, a checkbox, a restricted
// picklist and a formula. Describe shapes follow salesforce-api.md 3.3.

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
        Field { length: 255, ..field("BillingStreet", "Billing Street", Kind::TextArea) },
        field("BillingCity", "Billing City", Kind::Str),
        field("BillingState", "Billing State/Province", Kind::Str),
        field("BillingPostalCode", "Billing Zip/Postal Code", Kind::Str),
        field("BillingCountry", "Billing Country", Kind::Str),
        field("OwnerId", "Owner ID", USER_REF),
        external("Tandem_Id__c", "Tandem Id"),
        text("Territory__c", "Territory", 80),
        long_text("Account_Notes__c", "Account Notes", 32_768),
        number("Annual_Spend__c", "Annual Spend", Kind::Currency, 16, 2),
        field("Contract_Start__c", "Contract Start", Kind::Date),
        field("Key_Account__c", "Key Account", Kind::Boolean),
        pick("Service_Tier__c", "Service Tier", SERVICE_TIERS),
        formula("Is_Customer__c", "Is Customer", Kind::Boolean, "BEGINS(TEXT(Type), \"Customer\")"),
    ],
};

const CONTACT: Object = Object {
    name: "Contact",
    label: "Contact",
    plural: "Contacts",
    prefix: "003",
    fields: &[
        text("FirstName", "First Name", 40),
        Field { required: true, ..text("LastName", "Last Name", 80) },
        system("Name", "Full Name", Kind::Str),
        field("Email", "Email", Kind::Email),
        field("Phone", "Business Phone", Kind::Phone),
        field("MobilePhone", "Mobile Phone", Kind::Phone),
        text("Title", "Title", 128),
        field("AccountId", "Account ID", Kind::Reference(&["Account"])),
        field("OwnerId", "Owner ID", USER_REF),
        Field { length: 255, ..field("MailingStreet", "Mailing Street", Kind::TextArea) },
        field("MailingCity", "Mailing City", Kind::Str),
        field("MailingPostalCode", "Mailing Zip/Postal Code", Kind::Str),
        pick("LeadSource", "Lead Source", LEAD_SOURCES),
        // Unrestricted: the contacts mapping keys on it, and an org may add values.
        Field { restricted: false, ..pick("Contact_Status__c", "Contact Status", CONTACT_STATUSES) },
        external("Tandem_Id__c", "Tandem Id"),
        text("Nickname__c", "Nickname", 40),
        long_text("Contact_Notes__c", "Contact Notes", 32_768),
        number("Visit_Count__c", "Visit Count", Kind::Double, 5, 0),
        field("Last_Visit_Date__c", "Last Visit Date", Kind::Date),
        field("Decision_Maker__c", "Decision Maker", Kind::Boolean),
        pick("Preferred_Channel__c", "Preferred Channel", CHANNELS),
        formula("Has_Email__c", "Has Email", Kind::Boolean, "NOT(ISBLANK(Email))"),
    ],
};

const LEAD: Object = Object {
    name: "Lead",
    label: "Lead",
    plural: "Leads",
    prefix: "00Q",
    fields: &[
        text("FirstName", "First Name", 40),
        Field { required: true, ..text("LastName", "Last Name", 80) },
        Field { required: true, ..text("Company", "Company", 255) },
        Field { default: Some("Open - Not Contacted"), ..pick("Status", "Lead Status", LEAD_STATUSES) },
        field("Email", "Email", Kind::Email),
        field("Phone", "Phone", Kind::Phone),
        Field { length: 255, ..field("Street", "Street", Kind::TextArea) },
        text("City", "City", 40),
        text("State", "State/Province", 80),
        text("PostalCode", "Zip/Postal Code", 20),
        text("Country", "Country", 80),
        pick("LeadSource", "Lead Source", LEAD_SOURCES),
        system("IsConverted", "Converted", Kind::Boolean),
        system("ConvertedAccountId", "Converted Account ID", Kind::Reference(&["Account"])),
        system("ConvertedContactId", "Converted Contact ID", Kind::Reference(&["Contact"])),
        system("ConvertedOpportunityId", "Converted Opportunity ID", Kind::Reference(&["Opportunity"])),
        field("OwnerId", "Owner ID", USER_REF),
        text("Territory__c", "Territory", 80),
        long_text("Visit_Notes__c", "Visit Notes", 32_768),
        number("Estimated_Value__c", "Estimated Value", Kind::Currency, 16, 2),
        field("Next_Visit_Date__c", "Next Visit Date", Kind::Date),
        field("Do_Not_Knock__c", "Do Not Knock", Kind::Boolean),
        pick("Visit_Result__c", "Visit Result", VISIT_RESULTS),
        formula("Is_Web_Lead__c", "Is Web Lead", Kind::Boolean, "ISPICKVAL(LeadSource, \"Web\")"),
    ],
};

/// Opportunity, with the org's one seeded validation rule: `Amount < 0` refuses the save
/// with `FIELD_CUSTOM_VALIDATION_EXCEPTION` [`NEGATIVE_AMOUNT_MESSAGE`], shown on `Amount`
/// (salesforce-api.md 5.3; the rule itself is the simulator's choice).
const OPPORTUNITY: Object = Object {
    name: "Opportunity",
    label: "Opportunity",
    plural: "Opportunities",
    prefix: "006",
    fields: &[
        Field { required: true, ..text("Name", "Name", 120) },
        Field { required: true, ..pick("StageName", "Stage", OPPORTUNITY_STAGES) },
        required("CloseDate", "Close Date", Kind::Date),
        number("Amount", "Amount", Kind::Currency, 18, 2),
        number("Probability", "Probability (%)", Kind::Percent, 3, 0),
        pick("Type", "Opportunity Type", OPPORTUNITY_TYPES),
        pick("LeadSource", "Lead Source", LEAD_SOURCES),
        field("AccountId", "Account ID", Kind::Reference(&["Account"])),
        field("OwnerId", "Owner ID", USER_REF),
        field("Description", "Description", Kind::TextArea),
        system("IsClosed", "Closed", Kind::Boolean),
        system("IsWon", "Won", Kind::Boolean),
        text("Territory__c", "Territory", 80),
        long_text("Proposal_Notes__c", "Proposal Notes", 131_072),
        number("Discount_Percent__c", "Discount Percent", Kind::Double, 5, 2),
        field("Install_Date__c", "Install Date", Kind::Date),
        field("Financing_Required__c", "Financing Required", Kind::Boolean),
        pick("Product_Line__c", "Product Line", PRODUCT_LINES),
        formula("Weighted_Amount__c", "Weighted Amount", Kind::Currency, "Amount * Probability"),
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
        Field { default: Some("Not Started"), ..pick("Status", "Status", TASK_STATUSES) },
        Field { default: Some("Normal"), ..pick("Priority", "Priority", TASK_PRIORITIES) },
        system("IsClosed", "Closed", Kind::Boolean),
        field("CallDurationInSeconds", "Call Duration", Kind::Int),
        pick("CallType", "Call Type", CALL_TYPES),
        text("CallDisposition", "Call Result", 255),
        system("CompletedDateTime", "Completed Date/Time", Kind::DateTime),
        text("Door_Number__c", "Door Number", 20),
        long_text("Knock_Notes__c", "Knock Notes", 32_768),
        number("Visit_Minutes__c", "Visit Minutes", Kind::Double, 4, 0),
        field("Follow_Up_Date__c", "Follow Up Date", Kind::Date),
        field("Appointment_Set__c", "Appointment Set", Kind::Boolean),
        pick("Visit_Outcome__c", "Visit Outcome", VISIT_OUTCOMES),
        formula("Is_Call__c", "Is Call", Kind::Boolean, "ISPICKVAL(TaskSubtype, \"Call\")"),
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
        .map(|v| json!({"value": v, "label": v, "active": true, "defaultValue": f.default == Some(*v), "validFor": null}))
        .collect();
    let reference_to: &[&str] = match f.kind {
        Kind::Reference(to) => to,
        _ => &[],
    };
    let length = f.length();
    let custom = f.name.ends_with("__c");
    let relationship = match f.kind {
        Kind::Reference(_) if f.name.ends_with("Id") => Value::String(f.name.trim_end_matches("Id").to_string()),
        _ => Value::Null,
    };
    let calculated = f.formula.is_some();
    // A long text area (over 255 characters) can be neither filtered, sorted nor grouped on.
    let long = f.kind == Kind::TextArea && length > 255;
    // Audit fields, checkboxes, picklists with a default and the owner are filled on create.
    let defaulted = SYSTEM_FIELDS.iter().any(|s| s.name == f.name)
        || f.kind == Kind::Boolean
        || f.default.is_some()
        || f.name == "OwnerId";
    let (precision, scale) = match f.kind {
        Kind::Currency | Kind::Double | Kind::Percent if f.precision == 0 => {
            (18, if f.kind == Kind::Currency { 2 } else { 0 })
        }
        Kind::Currency | Kind::Double | Kind::Percent => (f.precision, f.scale),
        _ => (0, 0),
    };
    json!({
        "name": f.name,
        "label": f.label,
        "type": f.kind.describe_type(),
        "soapType": f.kind.soap_type(),
        "length": length,
        "byteLength": length * 3,
        "precision": precision,
        "scale": scale,
        "digits": if f.kind == Kind::Int { 9 } else { 0 },
        "nillable": !f.required && !defaulted,
        "createable": f.writable,
        "updateable": f.writable,
        "defaultedOnCreate": defaulted,
        "defaultValue": if f.kind == Kind::Boolean && f.writable { json!(false) } else { json!(f.default) },
        "defaultValueFormula": null,
        "calculated": calculated,
        "calculatedFormula": f.formula,
        "autoNumber": false,
        "unique": f.external_id,
        "externalId": f.external_id,
        "idLookup": f.external_id || f.kind == Kind::Id || f.name == "Email" || f.name == "Username",
        "caseSensitive": false,
        "custom": custom,
        "nameField": f.name == "Name",
        "filterable": !long,
        "sortable": !long && f.kind != Kind::TextArea,
        "groupable": !long && f.kind != Kind::TextArea && !f.is_number(),
        "htmlFormatted": false,
        "picklistValues": picklist,
        "restrictedPicklist": f.restricted,
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
