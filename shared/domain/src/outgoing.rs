//! The way out's mapping, pure: a CRM record as the external system's record (the shape
//! its connector writes), with each CRM vocabulary value turned into the external option
//! the connection's mappings name ([`Connection::export_option`]) and each CRM reference
//! into the external id it is linked to. Export and sync out share it.

use std::collections::HashMap;

use crate::describe::Description;
use crate::external::{ExtActivity, ExtCompany, ExtContact, ExtLineItem, ExtOpportunity, ExternalRecord, OptionList};
use crate::ids::{RecordId, RecordKind, Stage};
use crate::mapping::Connection;
use crate::records::Record;

/// The external id each referenced CRM record is linked to in the system, by kind and id.
pub type Linked = HashMap<(RecordKind, RecordId), String>;

/// The CRM records `record` refers to (company, contact, salesperson, creator), whose
/// links the caller loads before calling [`external`].
pub fn references(record: &Record) -> Vec<(RecordKind, RecordId)> {
    let mut out = Vec::new();
    let mut add = |kind: RecordKind, id: Option<&RecordId>| {
        if let Some(id) = id {
            out.push((kind, id.clone()));
        }
    };
    match record {
        Record::Contact(c) => add(RecordKind::Company, c.fields.company.as_ref()),
        Record::Opportunity(o) => {
            add(RecordKind::Company, o.company.as_ref());
            add(RecordKind::Contact, o.contact.as_ref());
            add(RecordKind::User, o.salesperson.as_ref());
        }
        Record::Activity(a) => {
            add(RecordKind::Contact, Some(&a.contact));
            add(RecordKind::Company, a.company.as_ref());
            add(RecordKind::User, Some(&a.created_by));
        }
        _ => {}
    }
    out
}

/// `record` as `described`'s system holds it, with `external_id` (empty for a create).
/// Why not, when a value has no external counterpart or a record it needs is not in the
/// system yet. A salesperson or creator not linked to a member is left out (PRODUCT.md
/// section 5: set only when linked).
pub fn external(
    conn: &Connection,
    described: &Description,
    record: &Record,
    external_id: &str,
    linked: &Linked,
) -> Result<ExternalRecord, String> {
    let system = conn.system.display_name();
    let link = |kind: RecordKind, id: Option<&RecordId>| id.and_then(|id| linked.get(&(kind, id.clone())).cloned());
    let needed = |kind: RecordKind, id: Option<&RecordId>| -> Result<Option<String>, String> {
        match (id, link(kind, id)) {
            (None, _) => Ok(None),
            (Some(_), Some(ext)) => Ok(Some(ext)),
            (Some(id), None) => Err(format!("its {kind} {id} is not in {system} yet")),
        }
    };
    let option = |stage: Stage, list: OptionList, crm: &str| conn.export_option(stage, list, crm);
    Ok(match record {
        Record::Company(c) => ExternalRecord::Company(ExtCompany {
            id: external_id.into(),
            name: c.fields.name.clone(),
            phone: c.fields.phone.clone(),
            website: c.fields.website.clone(),
            address: c.fields.address.clone(),
            types: match described.typed_records {
                true => option(Stage::Companies, OptionList::CompanyTypes, c.fields.company_type.as_str())?
                    .into_iter()
                    .collect(),
                false => Vec::new(),
            },
            inactive: false,
            deleted: false,
            updated_at: None,
        }),
        Record::Contact(c) => ExternalRecord::Contact(ExtContact {
            id: external_id.into(),
            first_name: c.fields.first_name.clone(),
            last_name: c.fields.last_name.clone(),
            email: c.fields.email.clone(),
            phone: c.fields.phone.clone(),
            title: c.fields.title.clone(),
            company_id: needed(RecordKind::Company, c.fields.company.as_ref())?,
            types: match described.typed_records {
                true => {
                    option(Stage::Contacts, OptionList::ContactTypes, c.fields.status.as_str())?.into_iter().collect()
                }
                false => Vec::new(),
            },
            inactive: false,
            updated_at: None,
        }),
        Record::Opportunity(o) => ExternalRecord::Opportunity(ExtOpportunity {
            id: external_id.into(),
            name: o.name.clone(),
            status_id: match &o.status {
                Some(s) => option(Stage::Opportunities, OptionList::OpportunityStatuses, s)?,
                None => None,
            },
            stage: o.stage.clone(),
            opportunity_type: o.opportunity_type.clone(),
            close_date: o.close_date.clone(),
            value: o.value,
            line_items: o
                .line_items
                .iter()
                .map(|l| ExtLineItem { description: l.description.clone(), quantity: l.quantity, revenue: l.revenue })
                .collect(),
            salesperson_id: link(RecordKind::User, o.salesperson.as_ref()),
            company_id: needed(RecordKind::Company, o.company.as_ref())?,
            contact_id: needed(RecordKind::Contact, o.contact.as_ref())?,
            notes: o.notes.clone(),
            updated_at: None,
        }),
        Record::Activity(a) => ExternalRecord::Activity(ExtActivity {
            id: external_id.into(),
            subject: a.subject.clone(),
            body: a.body.clone(),
            type_id: option(Stage::Activities, OptionList::ActivityTypes, a.kind.as_str())?,
            contact_id: needed(RecordKind::Contact, Some(&a.contact))?,
            company_id: needed(RecordKind::Company, a.company.as_ref())?,
            created_by: link(RecordKind::User, Some(&a.created_by)),
            date: a.date,
            done: a.done,
            updated_at: None,
        }),
        other => return Err(format!("{} records are not sent to {system}", other.kind())),
    })
}
