//! What an external system supports and how its records differ, described once in its
//! connector's folder (`shared/connectors/src/SYSTEM/describe.rs`) and read by the rules,
//! so per-system differences are data, not `match System` arms across the domain.

use crate::ids::{RecordKind, Stage, System};
use crate::vocab::ActivityKind;

/// How precise the system's last-modified stamps are: with second precision two edits
/// in one second look like one version, so a flow must not skip on equal stamps alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    Seconds,
    Milliseconds,
}

/// How the system tells us about changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Webhooks {
    /// Registered through its API when sync is switched on.
    Registered,
    /// Set up by an administrator in the system, with the URL and secret we give.
    Manual,
}

/// One system's description (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Description {
    pub system: System,
    /// The import stages in the order they run (PRODUCT.md section 3).
    pub stages: &'static [Stage],
    /// Whether companies and contacts carry types the mappings choose by. A system
    /// without them (Syncro) lets every company and contact through as "no type".
    pub typed_records: bool,
    /// The one list every contact lands in, for a system that puts them all in one
    /// ("Syncro General"); `None`: the list of the contact's company type.
    pub contact_list: Option<&'static str>,
    /// The fields of a linked opportunity a re-import updates; `None`: all of them.
    pub opportunity_updates: Option<&'static [&'static str]>,
    /// The CRM activity kinds the system's activity types may map to.
    pub activity_kinds: &'static [ActivityKind],
    /// Per record kind, the CRM fields a write to the system may set (export, sync out).
    pub writable: &'static [(RecordKind, &'static [&'static str])],
    /// Per record kind, the writable fields the system takes only when a record is created
    /// (ConnectWise company types): an update never sends them.
    pub created_only: &'static [(RecordKind, &'static [&'static str])],
    pub precision: Precision,
    pub webhooks: Webhooks,
}

impl Description {
    /// The CRM fields of `kind` a write may set (none when the kind is not written).
    pub fn writable(&self, kind: RecordKind) -> &'static [&'static str] {
        self.writable.iter().find(|(k, _)| *k == kind).map_or(&[], |(_, f)| f)
    }

    /// The fields of `kind` a write sets only when it creates the record.
    pub fn created_only(&self, kind: RecordKind) -> &'static [&'static str] {
        self.created_only.iter().find(|(k, _)| *k == kind).map_or(&[], |(_, f)| f)
    }
}

/// The activity kinds most systems' activity types may map to.
pub const COMMON_ACTIVITY_KINDS: &[ActivityKind] =
    &[ActivityKind::Call, ActivityKind::Email, ActivityKind::Note, ActivityKind::Meeting];

/// Descriptions for the domain's own tests, which cannot reach the connectors' real ones
/// (those are checked against `decide` in `shared/connectors/tests/described.rs`).
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use crate::external::{NO_TYPE, OptionList};
    use crate::ids::TenantId;
    use crate::mapping::{Connection, ConnectionStatus, SectionMapping};
    use crate::normalise::Timestamp;
    use std::collections::BTreeMap;

    /// A connection to `system` with a typical mapping of every stage.
    pub(crate) fn connection(system: System) -> Connection {
        let section = |list: OptionList, pairs: &[(&str, &str)]| -> SectionMapping {
            BTreeMap::from([(list, pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect())])
        };
        let mut solutions = section(OptionList::CatalogTypes, &[("hw", "hardware")]);
        solutions.insert(OptionList::CatalogCategories, [("ms".to_string(), "managed".to_string())].into());
        solutions.insert(OptionList::BillingOptions, [("Billable".to_string(), "billable".to_string())].into());
        Connection {
            tenant: TenantId::parse("t1").unwrap_or_else(|_| unreachable!()),
            system,
            status: ConnectionStatus::Connected,
            account: serde_json::json!({}),
            secret_name: "s".into(),
            mappings: BTreeMap::from([
                (Stage::Users, section(OptionList::Roles, &[("sales", "salesperson")])),
                (
                    Stage::Companies,
                    section(OptionList::CompanyTypes, &[("client", "client"), ("prospect", "prospect")]),
                ),
                (Stage::Contacts, section(OptionList::ContactTypes, &[("dm", "talking"), (NO_TYPE, "no_status")])),
                (Stage::Solutions, solutions),
                (Stage::Activities, section(OptionList::ActivityTypes, &[("call", "call")])),
                (Stage::Opportunities, section(OptionList::OpportunityStatuses, &[("open", "open"), ("won", "won")])),
            ]),
            completed_stages: BTreeMap::new(),
            settings: Default::default(),
            export_choices: Default::default(),
            webhook: None,
            polled: Default::default(),
            swept: Default::default(),
            relayed: None,
            field_map: None,
            selective_sync: None,
            created_at: Timestamp::from_unix(0).unwrap_or_else(|_| unreachable!()),
            updated_at: Timestamp::from_unix(0).unwrap_or_else(|_| unreachable!()),
            version: 1,
        }
    }

    /// A system whose records are typed and whose re-imports update every field.
    pub(crate) const TYPED: Description = Description {
        system: System::ConnectWise,
        stages: System::ConnectWise.stages(),
        typed_records: true,
        contact_list: None,
        opportunity_updates: None,
        activity_kinds: COMMON_ACTIVITY_KINDS,
        writable: &[(RecordKind::Company, &["name", "phone", "website", "address", "company_type"])],
        created_only: &[],
        precision: Precision::Seconds,
        webhooks: Webhooks::Registered,
    };

    /// A stand-in for `system` with the differences the domain's tests exercise: Syncro
    /// untyped with one contact list, Halo's notes-only activities, and the opportunity
    /// fields each updates.
    pub(crate) fn like(system: System) -> &'static Description {
        const HALO: Description = Description {
            system: System::Halo,
            stages: System::Halo.stages(),
            opportunity_updates: Some(&["name", "status"]),
            activity_kinds: &[ActivityKind::Note],
            ..TYPED
        };
        const SYNCRO: Description = Description {
            system: System::Syncro,
            stages: System::Syncro.stages(),
            typed_records: false,
            contact_list: Some("Syncro General"),
            opportunity_updates: Some(&["name", "status"]),
            ..TYPED
        };
        const SALESFORCE: Description = Description {
            system: System::Salesforce,
            stages: System::Salesforce.stages(),
            opportunity_updates: Some(&["name", "status", "close_date", "lifetime_value"]),
            ..TYPED
        };
        match system {
            System::ConnectWise => &TYPED,
            System::Halo => &HALO,
            System::Syncro => &SYNCRO,
            System::Salesforce => &SALESFORCE,
        }
    }
}
