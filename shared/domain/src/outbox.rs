//! The outbox: one entry per change the CRM made to its own records (through the record
//! API), written in the same transaction as the change, so sync out and export never miss
//! a change nor see one that did not happen.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::ids::{RecordId, RecordKind, System, TenantId};
use crate::normalise::Timestamp;
use crate::records::Record;

/// What the change did to the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    Created,
    Updated,
    Deleted,
}

/// One change of one CRM record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// `KIND-ID-vVERSION`: one change per record version, so a retried write finds its
    /// entry already there.
    pub id: String,
    pub tenant: TenantId,
    pub kind: RecordKind,
    pub record: RecordId,
    pub op: ChangeOp,
    /// The record's version after the change (a delete: one past the last stored).
    pub version: u64,
    /// The fields the change set (every field with a value on a create; none on a delete).
    pub fields: Vec<String>,
    pub at: Timestamp,
    /// A delete: the record's links as they were (system -> external id), so the systems
    /// it was in can still be told once the record is gone.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub links: BTreeMap<System, String>,
}

impl Change {
    /// The change that writes `record` (its `meta.version` the version it replaces).
    pub fn of(tenant: &TenantId, op: ChangeOp, record: &Record, fields: Vec<String>, at: Timestamp) -> Self {
        let version = record.meta().version + 1;
        let links = match op {
            ChangeOp::Deleted => record.meta().links.iter().map(|(s, l)| (*s, l.id.clone())).collect(),
            _ => BTreeMap::new(),
        };
        Self {
            id: format!("{}-{}-v{version}", record.kind(), record.id()),
            tenant: tenant.clone(),
            kind: record.kind(),
            record: record.id().clone(),
            op,
            version,
            fields,
            at,
            links,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{CompanyFields, CompanyRecord, Meta};

    #[test]
    fn a_change_is_named_by_the_record_and_the_version_it_writes() {
        let now = Timestamp::from_unix(0).unwrap();
        let mut meta = Meta::new(now);
        meta.id = RecordId::from_raw("c-1");
        meta.version = 3;
        let record = Record::Company(CompanyRecord { meta, fields: CompanyFields::default() });
        let t = TenantId::parse("t1").unwrap();
        let change = Change::of(&t, ChangeOp::Updated, &record, vec!["name".into()], now);
        assert_eq!(change.id, "company-c-1-v4");
        assert_eq!(change.version, 4);
    }
}
