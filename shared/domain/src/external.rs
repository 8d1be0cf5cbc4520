//! External records as the connectors hand them to the domain: one shape per stage,
//! already mapped from each system's wire types, plus cursors, pages and option lists.

use crate::ledger::ExtVersion;
use serde::{Deserialize, Serialize};

use crate::normalise::Timestamp;

/// The id a mapping uses for "records with no type" (an option every type list offers).
pub const NO_TYPE: &str = "(none)";

/// A position in an external list: opaque to the domain, owned by the connector
/// (ConnectWise: a page number). `position` empty means "from the start".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Where to read next.
    #[serde(default)]
    pub position: String,
    /// Only records updated at or after this instant (incremental reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
}

impl Cursor {
    /// The start of a full read.
    pub fn start() -> Self {
        Self::default()
    }
}

/// One page read from an external system.
#[derive(Clone, Debug, Default)]
pub struct Page {
    /// The records, in the order the system returned them.
    pub records: Vec<ExternalRecord>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// A member (staff user) of the external system.
#[derive(Clone, Debug, PartialEq)]
pub struct ExtUser {
    pub id: String,
    pub email: Option<String>,
    pub first_name: String,
    pub last_name: String,
    /// The role option id the mapping keys on.
    pub role: Option<String>,
    pub inactive: bool,
    pub updated_at: Option<ExtVersion>,
}

/// A company (ConnectWise company, Halo client, Syncro customer, Salesforce account).
#[derive(Clone, Debug, PartialEq)]
pub struct ExtCompany {
    pub id: String,
    pub name: String,
    pub phone: Option<String>,
    pub website: Option<String>,
    pub address: Option<String>,
    /// Type option ids in the system's order; the first decides.
    pub types: Vec<String>,
    pub inactive: bool,
    pub deleted: bool,
    pub updated_at: Option<ExtVersion>,
}

impl ExtCompany {
    /// A company with only a name: what a duplicate search by name is given, and the
    /// start of a record built field by field.
    pub fn named(name: &str) -> Self {
        Self {
            id: String::new(),
            name: name.into(),
            phone: None,
            website: None,
            address: None,
            types: Vec::new(),
            inactive: false,
            deleted: false,
            updated_at: None,
        }
    }
}

/// A contact.
#[derive(Clone, Debug, PartialEq)]
pub struct ExtContact {
    pub id: String,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub title: Option<String>,
    pub company_id: Option<String>,
    /// Type/status option ids in the system's order; the first decides.
    pub types: Vec<String>,
    pub inactive: bool,
    pub updated_at: Option<ExtVersion>,
}

/// A catalog item.
#[derive(Clone, Debug, PartialEq)]
pub struct ExtSolution {
    pub id: String,
    pub name: String,
    pub type_id: Option<String>,
    pub category_id: Option<String>,
    pub billing: Option<String>,
    pub price: Option<f64>,
    pub inactive: bool,
    pub updated_at: Option<ExtVersion>,
}

/// An activity (call, email, note, meeting...).
#[derive(Clone, Debug, PartialEq)]
pub struct ExtActivity {
    pub id: String,
    pub subject: String,
    pub body: Option<String>,
    pub type_id: Option<String>,
    pub contact_id: Option<String>,
    pub company_id: Option<String>,
    /// The external user (same id space as [`ExtUser::id`]) who created it.
    pub created_by: Option<String>,
    pub date: Option<Timestamp>,
    pub done: bool,
    pub updated_at: Option<ExtVersion>,
}

/// A line of an opportunity.
#[derive(Clone, Debug, PartialEq)]
pub struct ExtLineItem {
    pub description: String,
    pub quantity: f64,
    pub revenue: f64,
}

/// An opportunity.
#[derive(Clone, Debug, PartialEq)]
pub struct ExtOpportunity {
    pub id: String,
    pub name: String,
    pub status_id: Option<String>,
    pub stage: Option<String>,
    pub opportunity_type: Option<String>,
    pub close_date: Option<String>,
    pub value: Option<f64>,
    pub line_items: Vec<ExtLineItem>,
    /// The external user (same id space as [`ExtUser::id`]) selling it.
    pub salesperson_id: Option<String>,
    pub company_id: Option<String>,
    pub contact_id: Option<String>,
    pub notes: Option<String>,
    pub updated_at: Option<ExtVersion>,
}

/// A record the connector could not read: kept so it is logged as failed, never lost.
#[derive(Clone, Debug, PartialEq)]
pub struct Unreadable {
    /// The record's id, when it could be read.
    pub id: Option<String>,
    /// What was wrong with it.
    pub reason: String,
}

/// Any external record.
#[derive(Clone, Debug, PartialEq)]
pub enum ExternalRecord {
    User(ExtUser),
    Company(ExtCompany),
    Contact(ExtContact),
    Solution(ExtSolution),
    Activity(ExtActivity),
    Opportunity(ExtOpportunity),
    Unreadable(Unreadable),
}

impl ExternalRecord {
    /// The record's version as the system stamps it (its last update), when it has one.
    pub fn version(&self) -> Option<&crate::ledger::ExtVersion> {
        match self {
            ExternalRecord::User(r) => r.updated_at.as_ref(),
            ExternalRecord::Company(r) => r.updated_at.as_ref(),
            ExternalRecord::Contact(r) => r.updated_at.as_ref(),
            ExternalRecord::Solution(r) => r.updated_at.as_ref(),
            ExternalRecord::Activity(r) => r.updated_at.as_ref(),
            ExternalRecord::Opportunity(r) => r.updated_at.as_ref(),
            ExternalRecord::Unreadable(_) => None,
        }
    }

    /// The record's kind; `None` for an unreadable one.
    pub fn kind(&self) -> Option<crate::RecordKind> {
        use crate::RecordKind as K;
        Some(match self {
            ExternalRecord::User(_) => K::User,
            ExternalRecord::Company(_) => K::Company,
            ExternalRecord::Contact(_) => K::Contact,
            ExternalRecord::Solution(_) => K::Solution,
            ExternalRecord::Activity(_) => K::Activity,
            ExternalRecord::Opportunity(_) => K::Opportunity,
            ExternalRecord::Unreadable(_) => return None,
        })
    }

    /// The value of one writable field, named as the CRM names it in a system's
    /// description (`name`, `company_type`, `company`, `status`, ...), as text: what a
    /// write compares and sends. `None` when the record has no value there or no such
    /// field.
    pub fn field(&self, name: &str) -> Option<String> {
        let num = |v: Option<f64>| v.map(|v| format!("{v:.2}"));
        match (self, name) {
            (ExternalRecord::Company(c), "name") => Some(c.name.clone()),
            (ExternalRecord::Company(c), "phone") => c.phone.clone(),
            (ExternalRecord::Company(c), "website") => c.website.clone(),
            (ExternalRecord::Company(c), "address") => c.address.clone(),
            (ExternalRecord::Company(c), "company_type") => c.types.first().cloned(),
            (ExternalRecord::Contact(c), "first_name") => Some(c.first_name.clone()),
            (ExternalRecord::Contact(c), "last_name") => Some(c.last_name.clone()),
            (ExternalRecord::Contact(c), "email") => c.email.clone(),
            (ExternalRecord::Contact(c), "phone") => c.phone.clone(),
            (ExternalRecord::Contact(c), "title") => c.title.clone(),
            (ExternalRecord::Contact(c), "company") => c.company_id.clone(),
            (ExternalRecord::Opportunity(o), "name") => Some(o.name.clone()),
            (ExternalRecord::Opportunity(o), "status") => o.status_id.clone(),
            (ExternalRecord::Opportunity(o), "stage") => o.stage.clone(),
            (ExternalRecord::Opportunity(o), "close_date") => o.close_date.clone(),
            (ExternalRecord::Opportunity(o), "value") => num(o.value),
            (ExternalRecord::Opportunity(o), "company") => o.company_id.clone(),
            (ExternalRecord::Opportunity(o), "contact") => o.contact_id.clone(),
            (ExternalRecord::Opportunity(o), "notes") => o.notes.clone(),
            (ExternalRecord::Activity(a), "subject") => Some(a.subject.clone()),
            (ExternalRecord::Activity(a), "body") => a.body.clone(),
            (ExternalRecord::Activity(a), "kind") => a.type_id.clone(),
            (ExternalRecord::Activity(a), "date") => a.date.map(|d| d.to_string()),
            (ExternalRecord::Activity(a), "done") => Some(a.done.to_string()),
            (ExternalRecord::Activity(a), "contact") => a.contact_id.clone(),
            (ExternalRecord::Activity(a), "company") => a.company_id.clone(),
            _ => None,
        }
    }

    /// The record with the external id `id` (an unreadable one unchanged).
    pub fn with_id(&self, id: &str) -> ExternalRecord {
        let mut out = self.clone();
        match &mut out {
            ExternalRecord::User(r) => r.id = id.into(),
            ExternalRecord::Company(r) => r.id = id.into(),
            ExternalRecord::Contact(r) => r.id = id.into(),
            ExternalRecord::Solution(r) => r.id = id.into(),
            ExternalRecord::Activity(r) => r.id = id.into(),
            ExternalRecord::Opportunity(r) => r.id = id.into(),
            ExternalRecord::Unreadable(_) => {}
        }
        out
    }

    /// The external id, when known.
    pub fn id(&self) -> Option<&str> {
        match self {
            ExternalRecord::User(r) => Some(&r.id),
            ExternalRecord::Company(r) => Some(&r.id),
            ExternalRecord::Contact(r) => Some(&r.id),
            ExternalRecord::Solution(r) => Some(&r.id),
            ExternalRecord::Activity(r) => Some(&r.id),
            ExternalRecord::Opportunity(r) => Some(&r.id),
            ExternalRecord::Unreadable(r) => r.id.as_deref(),
        }
    }
}

/// The option lists a mapping is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptionList {
    Roles,
    CompanyTypes,
    ContactTypes,
    CatalogTypes,
    CatalogCategories,
    BillingOptions,
    ActivityTypes,
    OpportunityStatuses,
}

impl OptionList {
    /// Every list.
    pub const ALL: &'static [OptionList] = &[
        OptionList::Roles,
        OptionList::CompanyTypes,
        OptionList::ContactTypes,
        OptionList::CatalogTypes,
        OptionList::CatalogCategories,
        OptionList::BillingOptions,
        OptionList::ActivityTypes,
        OptionList::OpportunityStatuses,
    ];

    /// The list's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OptionList::Roles => "roles",
            OptionList::CompanyTypes => "company_types",
            OptionList::ContactTypes => "contact_types",
            OptionList::CatalogTypes => "catalog_types",
            OptionList::CatalogCategories => "catalog_categories",
            OptionList::BillingOptions => "billing_options",
            OptionList::ActivityTypes => "activity_types",
            OptionList::OpportunityStatuses => "opportunity_statuses",
        }
    }

    /// Parses a wire name, naming the valid ones on failure.
    pub fn parse(raw: &str) -> Result<Self, crate::DomainError> {
        Self::ALL.iter().copied().find(|l| l.as_str() == raw).ok_or_else(|| {
            crate::DomainError::invalid(format!(
                "unknown option list {raw:?}; expected one of: {}",
                Self::ALL.iter().map(|l| l.as_str()).collect::<Vec<_>>().join(", ")
            ))
        })
    }
}

/// One choice the external system offers for a mapping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    /// The external id the mapping keys on.
    pub id: String,
    /// What the system calls it.
    pub name: String,
}

/// What a successful credential check learnt about the account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    /// The external system's version string.
    pub version: Option<String>,
    /// The API base URL the connector settled on.
    pub api_url: String,
}
