//! The CRM-side records (PRODUCT.md section 2), each shown with its links to external
//! records (kept in the sync ledger, see `ledger`), plus the index keys the link rules use.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::ids::{RecordId, RecordKind, System};
use crate::normalise::{Timestamp, email_key, name_key, phone_key, website_key};
use crate::vocab::{ActivityKind, CompanyType, ContactStatus, Role, UserState};

/// One record's link to an external record (the rest of the link's state, such as the
/// version last seen, is its ledger entry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalLink {
    /// The external record's id.
    pub id: String,
}

/// What every record carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// CRM id.
    pub id: RecordId,
    /// Optimistic-concurrency version; 0 before the first write.
    pub version: u64,
    /// Links per system, as read from the ledger (never stored in the record's body).
    #[serde(default)]
    pub links: BTreeMap<System, ExternalLink>,
    /// When the CRM record was created.
    pub created_at: Timestamp,
    /// When the CRM record last changed.
    pub updated_at: Timestamp,
}

impl Meta {
    /// Meta of a record created now.
    pub fn new(now: Timestamp) -> Self {
        Self { id: RecordId::new(), version: 0, links: BTreeMap::new(), created_at: now, updated_at: now }
    }
}

/// A CRM user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub meta: Meta,
    /// Unique per tenant, case-insensitively.
    pub email: String,
    pub name: String,
    pub role: Role,
    pub state: UserState,
}

/// A named list of contacts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContactList {
    pub meta: Meta,
    pub name: String,
}

/// A catalog item (ConnectWise product).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Solution {
    pub meta: Meta,
    pub name: String,
    pub solution_type: String,
    pub category: String,
    pub billing: String,
    #[serde(default)]
    pub price: Option<f64>,
}

/// A call, email, note, meeting (or task) on a contact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    pub meta: Meta,
    pub kind: ActivityKind,
    pub subject: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub date: Option<Timestamp>,
    pub done: bool,
    pub contact: RecordId,
    #[serde(default)]
    pub company: Option<RecordId>,
    pub created_by: RecordId,
}

/// One line of an opportunity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LineItem {
    pub description: String,
    pub quantity: f64,
    pub revenue: f64,
}

/// A sales opportunity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Opportunity {
    pub meta: Meta,
    pub name: String,
    /// CRM status (mapped), if the external status is mapped.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default)]
    pub opportunity_type: Option<String>,
    #[serde(default)]
    pub close_date: Option<String>,
    #[serde(default)]
    pub value: Option<f64>,
    #[serde(default)]
    pub lifetime_value: Option<f64>,
    #[serde(default)]
    pub line_items: Vec<LineItem>,
    #[serde(default)]
    pub salesperson: Option<RecordId>,
    #[serde(default)]
    pub company: Option<RecordId>,
    #[serde(default)]
    pub contact: Option<RecordId>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// Any CRM record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "object", rename_all = "snake_case")]
pub enum Record {
    User(User),
    Company(CompanyRecord),
    Contact(ContactRecord),
    List(ContactList),
    Solution(Solution),
    Activity(Activity),
    Opportunity(Opportunity),
}

/// A stored company: its meta plus fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompanyRecord {
    pub meta: Meta,
    #[serde(flatten)]
    pub fields: CompanyFields,
}

/// A company's own fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct CompanyFields {
    pub name: String,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub website: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    pub company_type: CompanyType,
    #[serde(default)]
    pub custom_fields: BTreeMap<String, String>,
}

/// A stored contact: its meta plus fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContactRecord {
    pub meta: Meta,
    #[serde(flatten)]
    pub fields: ContactFields,
}

/// A contact's own fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct ContactFields {
    pub first_name: String,
    pub last_name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    pub status: ContactStatus,
    #[serde(default)]
    pub company: Option<RecordId>,
    #[serde(default)]
    pub lists: Vec<String>,
}

/// An index a link rule looks records up by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LookupField {
    Phone,
    Website,
    Name,
    Email,
    /// The CRM company a contact, opportunity or activity belongs to (its id).
    Company,
    /// The CRM contact an opportunity or activity is about (its id).
    Contact,
}

impl LookupField {
    /// The field's key segment.
    pub fn as_str(self) -> &'static str {
        match self {
            LookupField::Phone => "phone",
            LookupField::Website => "website",
            LookupField::Name => "name",
            LookupField::Email => "email",
            LookupField::Company => "company",
            LookupField::Contact => "contact",
        }
    }
}

impl Record {
    /// The record's meta.
    pub fn meta(&self) -> &Meta {
        match self {
            Record::User(r) => &r.meta,
            Record::Company(r) => &r.meta,
            Record::Contact(r) => &r.meta,
            Record::List(r) => &r.meta,
            Record::Solution(r) => &r.meta,
            Record::Activity(r) => &r.meta,
            Record::Opportunity(r) => &r.meta,
        }
    }

    /// The record's meta, to change.
    pub fn meta_mut(&mut self) -> &mut Meta {
        match self {
            Record::User(r) => &mut r.meta,
            Record::Company(r) => &mut r.meta,
            Record::Contact(r) => &mut r.meta,
            Record::List(r) => &mut r.meta,
            Record::Solution(r) => &mut r.meta,
            Record::Activity(r) => &mut r.meta,
            Record::Opportunity(r) => &mut r.meta,
        }
    }

    /// The record's kind.
    pub fn kind(&self) -> RecordKind {
        match self {
            Record::User(_) => RecordKind::User,
            Record::Company(_) => RecordKind::Company,
            Record::Contact(_) => RecordKind::Contact,
            Record::List(_) => RecordKind::List,
            Record::Solution(_) => RecordKind::Solution,
            Record::Activity(_) => RecordKind::Activity,
            Record::Opportunity(_) => RecordKind::Opportunity,
        }
    }

    /// The CRM id.
    pub fn id(&self) -> &RecordId {
        &self.meta().id
    }

    /// The normalised values the link rules look this record up by, and the records it
    /// belongs to (so "the opportunities of this company" is one look-up).
    pub fn lookup_keys(&self) -> Vec<(LookupField, String)> {
        let mut keys = Vec::new();
        let mut push = |f: LookupField, v: Option<String>| {
            if let Some(v) = v {
                keys.push((f, v));
            }
        };
        match self {
            Record::User(u) => push(LookupField::Email, email_key(&u.email)),
            Record::Company(c) => {
                push(LookupField::Phone, c.fields.phone.as_deref().and_then(phone_key));
                push(LookupField::Website, c.fields.website.as_deref().and_then(website_key));
                push(LookupField::Name, name_key(&c.fields.name));
            }
            Record::Contact(c) => {
                push(LookupField::Email, c.fields.email.as_deref().and_then(email_key));
                push(LookupField::Company, c.fields.company.as_ref().map(ToString::to_string));
            }
            Record::Opportunity(o) => {
                push(LookupField::Company, o.company.as_ref().map(ToString::to_string));
                push(LookupField::Contact, o.contact.as_ref().map(ToString::to_string));
            }
            Record::Activity(a) => {
                push(LookupField::Contact, Some(a.contact.to_string()));
                push(LookupField::Company, a.company.as_ref().map(ToString::to_string));
            }
            _ => {}
        }
        keys
    }

    /// The record's own fields as JSON, by name (its meta and kind tag left out): what the
    /// flows compare, hash and merge field by field.
    pub fn fields(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut m)) => {
                m.remove("meta");
                m.remove("object");
                m
            }
            _ => serde_json::Map::new(),
        }
    }

    /// The order look-up candidates are tried in, as every reader must see it: oldest
    /// first, then by id.
    pub fn candidate_order(&self, other: &Record) -> std::cmp::Ordering {
        self.meta().created_at.cmp(&other.meta().created_at).then_with(|| self.id().cmp(other.id()))
    }

    /// The link to `system`, if any.
    pub fn link(&self, system: System) -> Option<&ExternalLink> {
        self.meta().links.get(&system)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_kind_round_trips_through_json() {
        let now = Timestamp::from_unix(0).unwrap();
        let activity = Record::Activity(Activity {
            meta: Meta::new(now),
            kind: crate::vocab::ActivityKind::parse("email").unwrap(),
            subject: "Hello".into(),
            body: None,
            date: Some(now),
            done: true,
            contact: RecordId::new(),
            company: None,
            created_by: RecordId::new(),
        });
        let json = serde_json::to_value(&activity).unwrap();
        assert_eq!(json["object"], "activity");
        assert_eq!(json["kind"], "email");
        assert_eq!(serde_json::from_value::<Record>(json).unwrap(), activity);
    }
}
