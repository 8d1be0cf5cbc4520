//! Each system's description, as its connector folder gives it, drives the shared rules
//! the way PRODUCT.md section 4 says that system behaves: checked through the pure
//! `decide` and the mapping check, with no store and no network.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use serde_json::json;
use tandem_connectors::describe;
use tandem_domain::external::{Choice, ExtCompany, ExtContact, ExtOpportunity, ExternalRecord, OptionList};
use tandem_domain::mapping::{Connection, ConnectionStatus, parse_section};
use tandem_domain::reconcile::{Known, Plan, Policy, decide};
use tandem_domain::records::Record;
use tandem_domain::{RecordKind, Stage, System, TenantId, Timestamp};

fn conn(system: System) -> Connection {
    let one = |list: OptionList, pairs: &[(&str, &str)]| {
        BTreeMap::from([(list, pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect())])
    };
    Connection {
        tenant: TenantId::parse("t").unwrap(),
        system,
        status: ConnectionStatus::Connected,
        account: json!({}),
        secret_name: "s".into(),
        mappings: BTreeMap::from([
            (Stage::Companies, one(OptionList::CompanyTypes, &[("client", "client")])),
            (Stage::Contacts, one(OptionList::ContactTypes, &[("dm", "talking")])),
            (Stage::Opportunities, one(OptionList::OpportunityStatuses, &[("open", "open"), ("won", "won")])),
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
        created_at: Timestamp::from_unix(0).unwrap(),
        updated_at: Timestamp::from_unix(0).unwrap(),
        version: 1,
    }
}

fn deal(name: &str, status: &str, stamp: &str) -> ExternalRecord {
    ExternalRecord::Opportunity(ExtOpportunity {
        id: "o1".into(),
        name: name.into(),
        status_id: Some(status.into()),
        stage: Some(format!("stage of {name}")),
        opportunity_type: None,
        close_date: Some(format!("close of {name}")),
        value: Some(name.len() as f64),
        line_items: Vec::new(),
        salesperson_id: None,
        company_id: None,
        contact_id: None,
        notes: Some(format!("notes of {name}")),
        updated_at: Some(stamp.into()),
    })
}

#[test]
fn every_system_is_described_in_its_own_folder_with_its_stage_order() {
    for system in System::ALL {
        let d = describe(*system);
        assert_eq!(d.system, *system);
        assert_eq!(d.stages, system.stages());
        assert!(!d.writable(RecordKind::Company).is_empty() && !d.writable(RecordKind::Contact).is_empty());
    }
}

#[test]
fn a_re_imported_opportunity_changes_the_fields_product_md_names_for_its_system() {
    let now = Timestamp::from_unix(1_000).unwrap();
    for (system, fields) in [
        (System::ConnectWise, &["close_date", "lifetime_value", "name", "notes", "stage", "status", "value"][..]),
        (System::Salesforce, &["close_date", "lifetime_value", "name", "status"][..]),
        (System::Halo, &["name", "status"][..]),
        (System::Syncro, &["name", "status"][..]),
    ] {
        let c = conn(system);
        let policy = Policy::import(&c, describe(system));
        let mut known = Known::default();
        let first =
            decide(&policy, &known, Stage::Opportunities, &deal("Renewal", "open", "2024-01-01T00:00:00Z"), now);
        known.apply(&first);
        let again =
            decide(&policy, &known, Stage::Opportunities, &deal("Renewal 2026", "won", "2024-02-01T00:00:00Z"), now);
        let Plan::Update { fields: changed, .. } = &again.plan else { panic!("{system}: {:?}", again.plan) };
        assert_eq!(changed, fields, "{system}");
    }
}

#[test]
fn only_syncro_lets_untyped_records_through_and_puts_every_contact_in_one_list() {
    let now = Timestamp::from_unix(1_000).unwrap();
    let company = ExternalRecord::Company(ExtCompany {
        id: "c1".into(),
        name: "Acme".into(),
        phone: None,
        website: None,
        address: None,
        types: Vec::new(),
        inactive: false,
        deleted: false,
        updated_at: None,
    });
    let contact = ExternalRecord::Contact(ExtContact {
        id: "p1".into(),
        first_name: "Ann".into(),
        last_name: "Lee".into(),
        email: None,
        phone: None,
        title: None,
        company_id: None,
        types: Vec::new(),
        inactive: false,
        updated_at: None,
    });
    for system in System::ALL {
        let c = conn(*system);
        let policy = Policy::import(&c, describe(*system));
        let company_plan = decide(&policy, &Known::default(), Stage::Companies, &company, now).plan;
        let contact_decision = decide(&policy, &Known::default(), Stage::Contacts, &contact, now);
        if *system == System::Syncro {
            assert!(
                matches!(&company_plan, Plan::Create { record: Record::Company(r), .. } if r.fields.company_type.is_none())
            );
            let lists: Vec<&str> = contact_decision
                .new_lists
                .iter()
                .filter_map(|l| if let Record::List(l) = l { Some(l.name.as_str()) } else { None })
                .collect();
            assert_eq!(lists, vec!["Syncro General"]);
        } else {
            assert!(matches!(company_plan, Plan::Skip(_)), "{system}: an untyped company needs no-type mapped");
            assert!(
                matches!(contact_decision.plan, Plan::Skip(_)),
                "{system}: an untyped contact needs no-type mapped"
            );
        }
    }
}

#[test]
fn halo_activity_types_map_onto_notes_only_and_the_others_onto_calls_too() {
    let offered = BTreeMap::from([(OptionList::ActivityTypes, vec![Choice { id: "5".into(), name: "Call".into() }])]);
    for system in [System::ConnectWise, System::Halo, System::Salesforce] {
        let call =
            parse_section(describe(system), Stage::Activities, &json!({"activity_types": {"5": "call"}}), &offered);
        assert_eq!(call.is_ok(), system != System::Halo, "{system}: {call:?}");
        let note =
            parse_section(describe(system), Stage::Activities, &json!({"activity_types": {"5": "note"}}), &offered);
        assert!(note.is_ok(), "{system}: {note:?}");
    }
}
