//! Unit tests of the import use cases on in-process fakes: link rules, stage order,
//! idempotency, cancellation and per-record failure.

use std::collections::BTreeMap;

use super::*;
use crate::external::{
    Choice, ExtActivity, ExtCompany, ExtContact, ExtLineItem, ExtOpportunity, ExtUser, ExternalRecord, NO_TYPE,
    OptionList, Unreadable,
};
use crate::ids::{RecordId, RecordKind};
use crate::log::LogFilter;
use crate::reconcile::Merge;
use crate::records::Record;
use crate::records::{CompanyFields, CompanyRecord, ContactFields, ContactRecord, Meta, Opportunity, User};
use crate::table::RecordWrite;
use crate::usecases::apply::{Applier, Run};
use crate::usecases::testing::{FakeConnector, World, world};
use crate::usecases::{connections, mappings};
use serde_json::json;

fn t() -> TenantId {
    TenantId::parse("acme-msp").unwrap()
}

fn choices(pairs: &[(&str, &str)]) -> Vec<Choice> {
    pairs.iter().map(|(id, name)| Choice { id: id.to_string(), name: name.to_string() }).collect()
}

fn connector() -> FakeConnector {
    FakeConnector {
        options: BTreeMap::from([
            (OptionList::Roles, choices(&[("1", "Admin"), ("2", "Sales"), ("3", "Technician")])),
            (
                OptionList::CompanyTypes,
                choices(&[("1", "Client"), ("2", "Prospect"), ("3", "Vendor"), (NO_TYPE, "(no type)")]),
            ),
            (
                OptionList::ContactTypes,
                choices(&[("1", "Decision Maker"), ("2", "Vendor Rep"), (NO_TYPE, "(no type)")]),
            ),
            (OptionList::CatalogTypes, choices(&[("1", "Hardware")])),
            (OptionList::CatalogCategories, choices(&[("1", "Security")])),
            (OptionList::BillingOptions, choices(&[("Billable", "Billable")])),
            (OptionList::ActivityTypes, choices(&[("1", "Call"), ("2", "Quote")])),
            (OptionList::OpportunityStatuses, choices(&[("1", "Open"), ("2", "Won")])),
        ]),
        ..FakeConnector::default()
    }
}

fn creds() -> serde_json::Value {
    json!({"site": "http://cw", "company_id": "acme", "public_key": "pub", "private_key": "priv", "client_id": "cid"})
}

async fn connected() -> World {
    let w = world(connector());
    connections::save_credentials(&w.svc, &t(), System::ConnectWise, &creds()).await.unwrap();
    let sections = [
        (Stage::Users, json!({"roles": {"1": "admin", "2": "salesperson"}})),
        (Stage::Companies, json!({"company_types": {"1": "client", "2": "prospect"}})),
        (Stage::Contacts, json!({"contact_types": {"1": "talking", "(none)": "no_status"}})),
        (
            Stage::Solutions,
            json!({"catalog_types": {"1": "hardware"}, "catalog_categories": {"1": "security"}, "billing_options": {"Billable": "billable"}}),
        ),
        (Stage::Activities, json!({"activity_types": {"1": "call"}})),
        (Stage::Opportunities, json!({"opportunity_statuses": {"1": "open"}})),
    ];
    for (stage, body) in sections {
        mappings::save_mapping(&w.svc, &t(), System::ConnectWise, stage, &body).await.unwrap();
    }
    w
}

fn set(w: &World, stage: Stage, records: Vec<ExternalRecord>) {
    w.connector.records.lock().unwrap().insert(stage, records);
}

fn company(id: &str, name: &str, phone: Option<&str>, website: Option<&str>) -> ExternalRecord {
    ExternalRecord::Company(ExtCompany {
        id: id.into(),
        name: name.into(),
        phone: phone.map(Into::into),
        website: website.map(Into::into),
        address: None,
        types: vec!["1".into()],
        inactive: false,
        deleted: false,
        updated_at: Some("2024-01-01T00:00:00Z".into()),
    })
}

fn contact(id: &str, email: &str, company: Option<&str>) -> ExternalRecord {
    ExternalRecord::Contact(ExtContact {
        id: id.into(),
        first_name: "Ann".into(),
        last_name: id.into(),
        email: Some(email.into()),
        phone: None,
        title: None,
        company_id: company.map(Into::into),
        types: vec![],
        inactive: false,
        updated_at: Some("2024-01-01T00:00:00Z".into()),
    })
}

fn member(id: &str, email: &str, role: &str) -> ExternalRecord {
    ExternalRecord::User(ExtUser {
        id: id.into(),
        email: Some(email.into()),
        first_name: "M".into(),
        last_name: id.into(),
        role: Some(role.into()),
        inactive: false,
        updated_at: Some("2024-01-01T00:00:00Z".into()),
    })
}

async fn seed(w: &World, record: Record) -> RecordId {
    let id = record.id().clone();
    w.svc.store.write(&t(), RecordWrite { record, previous: None, ledger: None, log: None }).await.unwrap();
    id
}

fn seed_company(name: &str, phone: Option<&str>, website: Option<&str>) -> Record {
    Record::Company(CompanyRecord {
        meta: Meta::new(Timestamp::from_unix(1).unwrap()),
        fields: CompanyFields {
            name: name.into(),
            phone: phone.map(Into::into),
            website: website.map(Into::into),
            company_type: crate::vocab::CompanyType::parse("prospect").unwrap(),
            ..CompanyFields::default()
        },
    })
}

/// Drains the fake queue through `run_page`, like the runner does.
async fn drain(w: &World) -> usize {
    let mut n = 0;
    while let Some(msg) = w.queue.pop() {
        run_page(&w.svc, &msg).await.unwrap();
        n += 1;
    }
    n
}

async fn import(w: &World, sel: StageSelection) -> Job {
    let job = start_import(&w.svc, &t(), System::ConnectWise, sel).await.unwrap();
    drain(w).await;
    super::job(&w.svc, &t(), &job.id).await.unwrap()
}

fn all() -> StageSelection {
    StageSelection::All(AllStages::All)
}

fn counts(job: &Job, stage: Stage) -> BTreeMap<String, u64> {
    job.progress[&stage].outcome_counts()
}

async fn linked_company(w: &World, ext: &str) -> Option<RecordId> {
    w.svc.store.linked_id(&t(), System::ConnectWise, RecordKind::Company, ext).await.unwrap()
}

#[tokio::test]
async fn a_company_links_by_phone_before_website_before_name() {
    let w = connected().await;
    let by_phone = seed(&w, seed_company("Other Name", Some("(555) 010-1234"), None)).await;
    let by_web = seed(&w, seed_company("Third Name", None, Some("https://www.acme.com/about"))).await;
    let by_name = seed(&w, seed_company("Acme, Inc.", None, None)).await;
    set(
        &w,
        Stage::Companies,
        vec![
            company("10", "ACME Inc", Some("+1 555.010.1234"), Some("acme.com")),
            company("11", "ACME Inc", Some("555-999-0000"), Some("acme.com")),
            company("12", "acme   inc", None, None),
        ],
    );
    let job = import(&w, StageSelection::One(Stage::Companies)).await;
    assert_eq!(counts(&job, Stage::Companies), BTreeMap::from([("linked".to_string(), 3)]));
    assert_eq!(linked_company(&w, "10").await, Some(by_phone));
    assert_eq!(linked_company(&w, "11").await, Some(by_web));
    assert_eq!(linked_company(&w, "12").await, Some(by_name));
}

#[tokio::test]
async fn a_crm_company_links_to_one_external_company_and_the_second_match_is_created() {
    let w = connected().await;
    let crm = seed(&w, seed_company("Shared Switchboard", Some("555 010 7777"), None)).await;
    set(
        &w,
        Stage::Companies,
        vec![
            company("1", "First Co", Some("555-010-7777"), None),
            company("2", "Second Co", Some("555-010-7777"), None),
        ],
    );
    let job = import(&w, StageSelection::One(Stage::Companies)).await;
    assert_eq!(counts(&job, Stage::Companies), BTreeMap::from([("created".into(), 1), ("linked".into(), 1)]));
    assert_eq!(linked_company(&w, "1").await, Some(crm.clone()));
    assert_ne!(linked_company(&w, "2").await, Some(crm));
}

#[tokio::test]
async fn vendor_inactive_and_deleted_companies_are_skipped_with_their_reason() {
    let w = connected().await;
    let mut vendor = company("1", "Vendor", None, None);
    let mut inactive = company("2", "Sleepy", None, None);
    let mut deleted = company("3", "Gone", None, None);
    if let (ExternalRecord::Company(v), ExternalRecord::Company(i), ExternalRecord::Company(d)) =
        (&mut vendor, &mut inactive, &mut deleted)
    {
        v.types = vec!["3".into(), "1".into()];
        i.inactive = true;
        d.deleted = true;
    }
    set(&w, Stage::Companies, vec![vendor, inactive, deleted]);
    let job = import(&w, StageSelection::One(Stage::Companies)).await;
    assert_eq!(
        counts(&job, Stage::Companies),
        BTreeMap::from([
            ("skipped:deleted".into(), 1),
            ("skipped:inactive".into(), 1),
            ("skipped:type_not_mapped".into(), 1)
        ])
    );
    assert!(w.svc.store.all_records(&t(), RecordKind::Company).await.unwrap().is_empty());
}

#[tokio::test]
async fn contacts_link_by_email_ignoring_case_and_land_in_their_company_type_list() {
    let w = connected().await;
    let existing = seed(
        &w,
        Record::Contact(ContactRecord {
            meta: Meta::new(Timestamp::from_unix(1).unwrap()),
            fields: ContactFields {
                first_name: "Bob".into(),
                email: Some("Bob@Example.com".into()),
                status: crate::vocab::ContactStatus::parse("no_status").unwrap(),
                ..ContactFields::default()
            },
        }),
    )
    .await;
    set(&w, Stage::Companies, vec![company("1", "Client Co", None, None)]);
    set(
        &w,
        Stage::Contacts,
        vec![
            contact("100", "bob@example.COM", Some("1")),
            contact("101", "loner@example.com", None),
            contact("102", "vendor@example.com", Some("999")),
        ],
    );
    let job = import(&w, all()).await;
    assert_eq!(
        counts(&job, Stage::Contacts),
        BTreeMap::from([("linked".into(), 1), ("created".into(), 1), ("skipped:company_not_imported".into(), 1)])
    );
    let bob = w.svc.store.record(&t(), RecordKind::Contact, &existing).await.unwrap();
    let Some(Record::Contact(bob)) = bob else { panic!("contact missing") };
    assert_eq!(bob.fields.lists, vec!["Clients".to_string()]);
    assert_eq!(bob.fields.company, linked_company(&w, "1").await);
    let loner = w.svc.store.linked(&t(), System::ConnectWise, RecordKind::Contact, "101").await.unwrap();
    let Some(Record::Contact(loner)) = loner else { panic!("contact without company not imported") };
    assert_eq!(loner.fields.lists, vec!["No Company".to_string()]);
    assert_eq!(loner.fields.company, None);
    let lists = w.svc.store.all_records(&t(), RecordKind::List).await.unwrap();
    assert_eq!(lists.len(), 2);
    let filter = LogFilter { outcome: Some("linked".into()), ..LogFilter::default() };
    let linked = w.svc.store.logs(&t(), &filter, w.svc.clock.now()).await.unwrap();
    let reasons: Vec<Option<&str>> = linked.iter().map(|e| e.matched.as_deref()).collect();
    assert_eq!(reasons, vec![Some("email bob@example.com")], "a linked record's log entry names the key that matched");
}

#[tokio::test]
async fn members_matching_a_crm_user_by_email_are_linked_not_invited_again() {
    let w = connected().await;
    let existing = seed(
        &w,
        Record::User(User {
            meta: Meta::new(Timestamp::from_unix(1).unwrap()),
            email: "Sam@MSP.com".into(),
            name: "Sam".into(),
            role: crate::vocab::Role::parse("admin").unwrap(),
            state: crate::vocab::UserState::parse("active").unwrap(),
        }),
    )
    .await;
    set(
        &w,
        Stage::Users,
        vec![member("sam", "sam@msp.com", "2"), member("new", "new@msp.com", "2"), member("tech", "t@msp.com", "3")],
    );
    let first = import(&w, StageSelection::One(Stage::Users)).await;
    assert_eq!(
        counts(&first, Stage::Users),
        BTreeMap::from([("linked".into(), 1), ("created".into(), 1), ("skipped:role_not_mapped".into(), 1)])
    );
    let linked = w.svc.store.linked_id(&t(), System::ConnectWise, RecordKind::User, "sam").await.unwrap();
    assert_eq!(linked, Some(existing));
    set(
        &w,
        Stage::Users,
        vec![
            member("sam", "sam@msp.com", "2"),
            member("new", "new@msp.com", "2"),
            member("later", "later@msp.com", "1"),
        ],
    );
    let second = import(&w, StageSelection::One(Stage::Users)).await;
    assert_eq!(counts(&second, Stage::Users), BTreeMap::from([("created".into(), 1), ("skipped:unchanged".into(), 2)]));
    assert_eq!(w.svc.store.all_records(&t(), RecordKind::User).await.unwrap().len(), 3);
}

#[tokio::test]
async fn activities_need_a_crm_contact_and_a_linked_creator() {
    let w = connected().await;
    set(&w, Stage::Users, vec![member("rep", "rep@msp.com", "2")]);
    set(&w, Stage::Contacts, vec![contact("100", "a@x.com", None)]);
    let activity = |id: &str, ty: &str, contact: Option<&str>, by: &str| {
        ExternalRecord::Activity(ExtActivity {
            id: id.into(),
            subject: "Call".into(),
            body: None,
            type_id: Some(ty.into()),
            contact_id: contact.map(Into::into),
            company_id: None,
            created_by: Some(by.into()),
            date: None,
            done: true,
            updated_at: None,
        })
    };
    set(
        &w,
        Stage::Activities,
        vec![
            activity("1", "1", Some("100"), "rep"),
            activity("2", "2", Some("100"), "rep"),
            activity("3", "1", Some("555"), "rep"),
            activity("4", "1", None, "rep"),
            activity("5", "1", Some("100"), "ghost"),
        ],
    );
    let job = import(&w, all()).await;
    assert_eq!(
        counts(&job, Stage::Activities),
        BTreeMap::from([
            ("created".into(), 1),
            ("skipped:type_not_mapped".into(), 1),
            ("skipped:contact_not_in_crm".into(), 2),
            ("skipped:creator_not_linked".into(), 1)
        ])
    );
}

#[tokio::test]
async fn opportunities_all_come_in_and_leave_an_unlinked_salesperson_empty() {
    let w = connected().await;
    set(&w, Stage::Users, vec![member("rep", "rep@msp.com", "2")]);
    set(&w, Stage::Companies, vec![company("1", "Client Co", None, None)]);
    let opp = |id: &str, rep: &str, status: &str| {
        ExternalRecord::Opportunity(ExtOpportunity {
            id: id.into(),
            name: format!("Deal {id}"),
            status_id: Some(status.into()),
            stage: Some("Proposal".into()),
            opportunity_type: None,
            close_date: None,
            value: Some(100.0),
            line_items: vec![ExtLineItem { description: "Firewall".into(), quantity: 1.0, revenue: 100.0 }],
            salesperson_id: Some(rep.into()),
            company_id: Some("1".into()),
            contact_id: Some("nobody".into()),
            notes: None,
            updated_at: Some("2024-01-01T00:00:00Z".into()),
        })
    };
    set(&w, Stage::Opportunities, vec![opp("1", "rep", "1"), opp("2", "ghost", "9")]);
    let job = import(&w, all()).await;
    assert_eq!(counts(&job, Stage::Opportunities), BTreeMap::from([("created".into(), 2)]));
    let get = |id: &'static str| {
        let w = &w;
        async move {
            match w.svc.store.linked(&t(), System::ConnectWise, RecordKind::Opportunity, id).await.unwrap() {
                Some(Record::Opportunity(o)) => o,
                other => panic!("{other:?}"),
            }
        }
    };
    let (one, two) = (get("1").await, get("2").await);
    assert!(one.salesperson.is_some());
    assert_eq!(one.status.as_deref(), Some("open"));
    assert_eq!(one.company, linked_company(&w, "1").await);
    assert_eq!(one.contact, None);
    assert_eq!(two.salesperson, None);
    assert_eq!(two.status, None);
}

#[tokio::test]
async fn a_redelivered_page_message_changes_nothing_and_counts_nothing_twice() {
    let w = connected().await;
    set(
        &w,
        Stage::Companies,
        vec![company("1", "A", None, None), company("2", "B", None, None), company("3", "C", None, None)],
    );
    let job = start_import(&w.svc, &t(), System::ConnectWise, StageSelection::One(Stage::Companies)).await.unwrap();
    let first = w.queue.pop().unwrap();
    assert!(matches!(run_page(&w.svc, &first).await.unwrap(), Step::Page { .. }));
    assert_eq!(run_page(&w.svc, &first).await.unwrap(), Step::Stale);
    drain(&w).await;
    let job = super::job(&w.svc, &t(), &job.id).await.unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(counts(&job, Stage::Companies), BTreeMap::from([("created".into(), 3)]));
    assert_eq!(job.progress[&Stage::Companies].pages, 2);
    assert_eq!(w.svc.store.all_records(&t(), RecordKind::Company).await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_page_half_written_before_a_crash_is_redone_with_the_same_outcomes() {
    let w = connected().await;
    set(&w, Stage::Companies, vec![company("1", "A", None, None), company("2", "B", None, None)]);
    let job = start_import(&w.svc, &t(), System::ConnectWise, StageSelection::One(Stage::Companies)).await.unwrap();
    // Simulate a crash after the first record of the page was written, before the checkpoint.
    let conn = connections::connection(&w.svc, &t(), System::ConnectWise).await.unwrap();
    let run = Run { direction: Direction::Import, job: Some(job.id.clone()), merge: Merge::ExternalWins };
    let tenant = t();
    let applier = Applier::new(&w.svc, &tenant, &conn, Stage::Companies, run);
    let log_id = LogEntry::import_id(&job.id, Stage::Companies, "1");
    applier.apply(&[company("1", "A", None, None)], &[log_id]).await.unwrap();
    drain(&w).await;
    let job = super::job(&w.svc, &t(), &job.id).await.unwrap();
    assert_eq!(counts(&job, Stage::Companies), BTreeMap::from([("created".into(), 2)]));
    assert_eq!(w.svc.store.all_records(&t(), RecordKind::Company).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_second_import_creates_nothing_and_reports_records_unchanged() {
    let w = connected().await;
    set(&w, Stage::Companies, vec![company("1", "A", None, None), company("2", "B", None, None)]);
    import(&w, StageSelection::One(Stage::Companies)).await;
    let mut changed = company("2", "B Renamed", None, None);
    if let ExternalRecord::Company(c) = &mut changed {
        c.updated_at = Some("2024-02-01T00:00:00Z".into());
    }
    set(&w, Stage::Companies, vec![company("1", "A", None, None), changed]);
    let job = import(&w, StageSelection::One(Stage::Companies)).await;
    assert_eq!(
        counts(&job, Stage::Companies),
        BTreeMap::from([("skipped:unchanged".into(), 1), ("updated".into(), 1)])
    );
    let names: Vec<String> = w
        .svc
        .store
        .all_records(&t(), RecordKind::Company)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| match r {
            Record::Company(c) => Some(c.fields.name),
            _ => None,
        })
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"B Renamed".to_string()));
}

#[tokio::test]
async fn a_stage_whose_prerequisites_have_not_completed_is_refused() {
    let w = connected().await;
    let err = start_import(&w.svc, &t(), System::ConnectWise, StageSelection::One(Stage::Contacts)).await.unwrap_err();
    assert_eq!(err.class(), crate::ErrorClass::Refused);
    assert!(err.to_string().contains("needs companies imported first"), "{err}");
    let err =
        start_import(&w.svc, &t(), System::ConnectWise, StageSelection::One(Stage::Opportunities)).await.unwrap_err();
    assert!(err.to_string().contains("users and companies and contacts"), "{err}");
    assert!(w.queue.pop().is_none());
}

#[tokio::test]
async fn a_mapping_saved_before_the_ones_it_follows_is_refused() {
    let w = world(connector());
    connections::save_credentials(&w.svc, &t(), System::ConnectWise, &creds()).await.unwrap();
    let err = mappings::save_mapping(
        &w.svc,
        &t(),
        System::ConnectWise,
        Stage::Contacts,
        &json!({"contact_types": {"1": "talking"}}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.class(), crate::ErrorClass::Refused);
    assert!(err.to_string().contains("save the users, companies mapping first"), "{err}");
    let conn = connections::connection(&w.svc, &t(), System::ConnectWise).await.unwrap();
    assert!(conn.mappings.is_empty());
}

#[tokio::test]
async fn an_import_before_mappings_exist_is_refused() {
    let w = world(connector());
    connections::save_credentials(&w.svc, &t(), System::ConnectWise, &creds()).await.unwrap();
    let err = start_import(&w.svc, &t(), System::ConnectWise, all()).await.unwrap_err();
    assert!(
        err.to_string().contains("save the users, companies, contacts, solutions, activities, opportunities mapping"),
        "{err}"
    );
}

#[tokio::test]
async fn rejected_credentials_save_nothing() {
    let w = world(FakeConnector { reject: true, ..connector() });
    let err = connections::save_credentials(&w.svc, &t(), System::ConnectWise, &creds()).await.unwrap_err();
    assert_eq!(err.class(), crate::ErrorClass::Credentials);
    assert!(w.svc.store.connection(&t(), System::ConnectWise).await.unwrap().is_none());
    assert!(w.svc.secrets.get(&t(), System::ConnectWise).await.is_err());
}

#[tokio::test]
async fn the_connection_record_never_holds_the_private_key() {
    let w = connected().await;
    let conn = w.svc.store.connection(&t(), System::ConnectWise).await.unwrap().unwrap();
    let stored = serde_json::to_string(&conn).unwrap();
    assert!(!stored.contains("priv"), "{stored}");
}

#[tokio::test]
async fn a_cancelled_job_stops_at_its_next_page() {
    let w = connected().await;
    set(
        &w,
        Stage::Companies,
        vec![company("1", "A", None, None), company("2", "B", None, None), company("3", "C", None, None)],
    );
    let job = start_import(&w.svc, &t(), System::ConnectWise, StageSelection::One(Stage::Companies)).await.unwrap();
    cancel(&w.svc, &t(), &job.id).await.unwrap();
    drain(&w).await;
    let job = super::job(&w.svc, &t(), &job.id).await.unwrap();
    assert_eq!(job.status, JobStatus::Cancelled);
    assert!(w.svc.store.all_records(&t(), RecordKind::Company).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unreadable_record_is_logged_as_failed_and_the_rest_come_in() {
    let w = connected().await;
    set(
        &w,
        Stage::Companies,
        vec![
            ExternalRecord::Unreadable(Unreadable {
                id: Some("7".into()),
                reason: "name: invalid type: integer".into(),
            }),
            company("8", "Fine", None, None),
        ],
    );
    let job = import(&w, StageSelection::One(Stage::Companies)).await;
    assert_eq!(counts(&job, Stage::Companies), BTreeMap::from([("created".into(), 1), ("failed".into(), 1)]));
    let events = w.events.0.lock().unwrap();
    assert_eq!(events.len(), 1);
    assert!(events[0].error.message.contains("invalid type"), "{:?}", events[0]);
    assert_eq!((events[0].record.external_id.as_deref(), events[0].error.kind), (Some("7"), None));
}

#[tokio::test]
async fn a_second_import_of_the_same_connection_is_refused_while_one_runs() {
    let w = connected().await;
    start_import(&w.svc, &t(), System::ConnectWise, all()).await.unwrap();
    let err = start_import(&w.svc, &t(), System::ConnectWise, all()).await.unwrap_err();
    assert!(err.to_string().contains("already running"), "{err}");
}

async fn connected_as(system: System) -> World {
    let w = world(connector());
    let creds = match system {
        System::ConnectWise => creds(),
        System::Halo => json!({"site": "http://halo", "client_id": "c", "client_secret": "s"}),
        System::Syncro => json!({"site": "http://syncro", "api_key": "k"}),
        System::Salesforce => json!({"login_url": "http://sf", "client_id": "c", "client_secret": "s"}),
    };
    connections::save_credentials(&w.svc, &t(), system, &creds).await.unwrap();
    for stage in system.stages() {
        let body = match stage {
            Stage::Users => json!({"roles": {"2": "salesperson"}}),
            Stage::Companies => json!({"company_types": {"1": "client", "(none)": "no_type"}}),
            Stage::Contacts => json!({"contact_types": {"(none)": "no_status"}}),
            Stage::Solutions => json!({"catalog_types": {}}),
            Stage::Activities => json!({"activity_types": {"1": "note"}}),
            Stage::Opportunities => json!({"opportunity_statuses": {"1": "open", "2": "won"}}),
        };
        mappings::save_mapping(&w.svc, &t(), system, *stage, &body).await.unwrap();
    }
    w
}

fn deal(name: &str, status: &str, close: &str, value: f64, stamp: &str) -> ExternalRecord {
    ExternalRecord::Opportunity(ExtOpportunity {
        id: "d1".into(),
        name: name.into(),
        status_id: Some(status.into()),
        stage: Some(format!("stage of {name}")),
        opportunity_type: Some(format!("type of {name}")),
        close_date: Some(close.into()),
        value: Some(value),
        line_items: vec![],
        salesperson_id: None,
        company_id: None,
        contact_id: None,
        notes: Some(format!("notes of {name}")),
        updated_at: Some(stamp.into()),
    })
}

async fn reimported_deal(system: System) -> Opportunity {
    let w = connected_as(system).await;
    let import = |sel| {
        let w = &w;
        async move {
            let job = start_import(&w.svc, &t(), system, sel).await.unwrap();
            drain(w).await;
            super::job(&w.svc, &t(), &job.id).await.unwrap()
        }
    };
    set(&w, Stage::Opportunities, vec![deal("Old", "1", "2024-01-31", 100.0, "2024-01-01T00:00:00Z")]);
    import(all()).await;
    set(&w, Stage::Opportunities, vec![deal("New", "2", "2024-06-30", 900.0, "2024-02-01T00:00:00Z")]);
    let job = import(StageSelection::One(Stage::Opportunities)).await;
    assert_eq!(counts(&job, Stage::Opportunities), BTreeMap::from([("updated".into(), 1)]));
    match w.svc.store.linked(&t(), system, RecordKind::Opportunity, "d1").await.unwrap() {
        Some(Record::Opportunity(o)) => o,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn salesforce_updates_name_status_close_date_and_lifetime_value_only() {
    let o = reimported_deal(System::Salesforce).await;
    assert_eq!((o.name.as_str(), o.status.as_deref()), ("New", Some("won")));
    assert_eq!((o.close_date.as_deref(), o.lifetime_value), (Some("2024-06-30"), Some(900.0)));
    assert_eq!((o.stage.as_deref(), o.notes.as_deref()), (Some("stage of Old"), Some("notes of Old")));
    assert_eq!(o.value, Some(100.0));
}

#[tokio::test]
async fn syncro_and_halo_update_name_and_status_only() {
    for system in [System::Syncro, System::Halo] {
        let o = reimported_deal(system).await;
        assert_eq!((o.name.as_str(), o.status.as_deref()), ("New", Some("won")), "{system}");
        assert_eq!((o.close_date.as_deref(), o.value), (Some("2024-01-31"), Some(100.0)), "{system}");
        assert_eq!(o.opportunity_type.as_deref(), Some("type of Old"), "{system}");
    }
}

#[tokio::test]
async fn connectwise_updates_every_field_it_imports() {
    let o = reimported_deal(System::ConnectWise).await;
    assert_eq!((o.name.as_str(), o.status.as_deref(), o.value), ("New", Some("won"), Some(900.0)));
    assert_eq!((o.stage.as_deref(), o.opportunity_type.as_deref()), (Some("stage of New"), Some("type of New")));
    assert_eq!(o.notes.as_deref(), Some("notes of New"));
}

#[tokio::test]
async fn syncro_contacts_all_land_in_syncro_general() {
    let w = connected_as(System::Syncro).await;
    let mut c = company("1", "Client Co", None, None);
    if let ExternalRecord::Company(x) = &mut c {
        x.types = vec![];
    }
    set(&w, Stage::Companies, vec![c]);
    set(&w, Stage::Contacts, vec![contact("100", "a@x.com", Some("1")), contact("101", "b@x.com", None)]);
    let job = start_import(&w.svc, &t(), System::Syncro, all()).await.unwrap();
    drain(&w).await;
    let job = super::job(&w.svc, &t(), &job.id).await.unwrap();
    assert_eq!(counts(&job, Stage::Companies), BTreeMap::from([("created".into(), 1)]));
    for ext in ["100", "101"] {
        match w.svc.store.linked(&t(), System::Syncro, RecordKind::Contact, ext).await.unwrap() {
            Some(Record::Contact(c)) => assert_eq!(c.fields.lists, vec!["Syncro General".to_string()]),
            other => panic!("{other:?}"),
        }
    }
}

// ---- jobs after outages: dead letters, resume, stalls (issue 7, defect 3)

/// Runs the one queued message, expecting it to fail retryably.
async fn fail_once(w: &World) -> (StageMessage, DomainError) {
    let msg = w.queue.pop().expect("a queued message");
    let err = run_page(&w.svc, &msg).await.expect_err("the page fails while the system is down");
    assert!(err.is_retryable(), "an outage is worth retrying: {err}");
    (msg, err)
}

#[tokio::test]
async fn a_dead_lettered_page_fails_its_job_with_the_stage_cursor_and_last_error_and_publishes_it() {
    let w = connected().await;
    set(&w, Stage::Users, vec![member("1", "a@x.io", "1")]);
    let job = start_import(&w.svc, &t(), System::ConnectWise, all()).await.unwrap();
    w.connector.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let (msg, err) = fail_once(&w).await;
    dead_lettered(&w.svc, &msg, 5, &err.to_string()).await.unwrap();
    let failed = super::job(&w.svc, &t(), &job.id).await.unwrap();
    let JobStatus::Failed(why) = &failed.status else { panic!("the job failed, got {:?}", failed.status) };
    assert!(why.contains("users stage") && why.contains("cursor") && why.contains("503"), "{why}");
    assert!(why.contains("5 failed deliveries"), "{why}");
    assert_eq!(w.events.1.lock().unwrap().iter().map(|j| &j.id).collect::<Vec<_>>(), vec![&job.id]);
    let again = start_import(&w.svc, &t(), System::ConnectWise, all()).await;
    assert!(again.is_ok(), "a failed job no longer blocks a new import: {again:?}");
}

#[tokio::test]
async fn a_dead_letter_of_a_message_the_job_moved_past_changes_nothing() {
    let w = connected().await;
    set(&w, Stage::Users, vec![member("1", "a@x.io", "1")]);
    let job = start_import(&w.svc, &t(), System::ConnectWise, all()).await.unwrap();
    let old = w.queue.pop().unwrap();
    run_page(&w.svc, &old).await.unwrap();
    dead_lettered(&w.svc, &old, 5, "an old failure").await.unwrap();
    assert_eq!(super::job(&w.svc, &t(), &job.id).await.unwrap().status, JobStatus::Running);
}

#[tokio::test]
async fn resuming_a_failed_job_requeues_its_checkpoint_under_a_new_deduplication_id_and_finishes_it() {
    let w = connected().await;
    set(&w, Stage::Users, vec![member("1", "a@x.io", "1"), member("2", "b@x.io", "1"), member("3", "c@x.io", "1")]);
    let job = start_import(&w.svc, &t(), System::ConnectWise, all()).await.unwrap();
    run_page(&w.svc, &w.queue.pop().unwrap()).await.unwrap(); // first page of users
    w.connector.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let (msg, err) = fail_once(&w).await;
    dead_lettered(&w.svc, &msg, 5, &err.to_string()).await.unwrap();
    w.connector.down.store(false, std::sync::atomic::Ordering::SeqCst);

    let resumed = resume(&w.svc, &t(), &job.id).await.unwrap();
    assert_eq!(resumed.status, JobStatus::Running);
    assert_eq!(resumed.attempt, 1);
    let requeued = w.queue.pop().expect("resume queues the checkpoint");
    assert_eq!((requeued.stage, &requeued.cursor), (msg.stage, &msg.cursor), "from the checkpoint, not the start");
    assert_ne!(requeued.dedup_id(), msg.dedup_id(), "a new deduplication id, so the queue cannot swallow it");
    assert_eq!(run_page(&w.svc, &msg).await.unwrap(), Step::Stale, "the dead attempt's message is stale");

    let again = resume(&w.svc, &t(), &job.id).await.unwrap();
    assert_eq!(again.attempt, 1, "resuming a running job again starts no new attempt");
    let duplicate = w.queue.pop().unwrap();
    assert_eq!(duplicate.dedup_id(), requeued.dedup_id(), "only the same message again, which the queue drops");

    run_page(&w.svc, &requeued).await.unwrap();
    drain(&w).await;
    let done = super::job(&w.svc, &t(), &job.id).await.unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!(done.progress[&Stage::Users].records(), 3, "every member counted exactly once");
}

#[tokio::test]
async fn a_dead_lettered_page_redriven_resumes_its_job_from_the_checkpoint_to_the_end() {
    use crate::usecases::dead_letters;
    use crate::work::Work;
    let w = connected().await;
    set(&w, Stage::Users, vec![member("1", "a@x.io", "1"), member("2", "b@x.io", "1"), member("3", "c@x.io", "1")]);
    let job = start_import(&w.svc, &t(), System::ConnectWise, all()).await.unwrap();
    run_page(&w.svc, &w.queue.pop().unwrap()).await.unwrap(); // first page of users
    w.connector.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let (msg, err) = fail_once(&w).await;
    let dead = Work::ImportPage(msg.clone());
    dead_letters::record(&w.svc, &dead, 5, &err.to_string()).await.unwrap();
    dead_lettered(&w.svc, &msg, 5, &err.to_string()).await.unwrap();
    assert!(matches!(super::job(&w.svc, &t(), &job.id).await.unwrap().status, JobStatus::Failed(_)));
    w.connector.down.store(false, std::sync::atomic::Ordering::SeqCst);

    let id = dead_letters::list(&w.svc, &t(), None, None).await.unwrap().dead_letters[0].id.clone();
    let entry = dead_letters::redrive(&w.svc, &t(), &id).await.unwrap();
    assert_eq!(entry.redrives, 1);
    let resumed = super::job(&w.svc, &t(), &job.id).await.unwrap();
    assert_eq!((resumed.status.clone(), resumed.attempt), (JobStatus::Running, 1));
    let sent = w.queue.pop().expect("the checkpoint's page is queued");
    assert_eq!((sent.stage, &sent.cursor), (msg.stage, &msg.cursor), "from the checkpoint");
    assert_ne!(sent.dedup_id(), msg.dedup_id(), "not dropped as the dead page's duplicate");
    run_page(&w.svc, &sent).await.unwrap();
    drain(&w).await;
    let done = super::job(&w.svc, &t(), &job.id).await.unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!(done.progress[&Stage::Users].records(), 3, "every member counted exactly once");
}

#[tokio::test]
async fn a_job_without_progress_for_the_stall_time_is_reported_stalled_and_resume_requeues_it() {
    let w = connected().await;
    let job = start_import(&w.svc, &t(), System::ConnectWise, all()).await.unwrap();
    let lost = w.queue.pop().unwrap(); // the message is lost: nobody runs it
    assert!(!job_view(&w.svc, &t(), &job.id).await.unwrap().stalled);
    w.clock.advance(w.svc.tuning.stall_after.as_secs() as i64 + 1);
    let view = job_view(&w.svc, &t(), &job.id).await.unwrap();
    assert!(view.stalled, "no progress for longer than the stall time");
    assert!(jobs(&w.svc, &t(), 10).await.unwrap()[0].stalled, "the job list says so too");
    let resumed = resume(&w.svc, &t(), &job.id).await.unwrap();
    assert_eq!(resumed.attempt, 1);
    assert!(!job_view(&w.svc, &t(), &job.id).await.unwrap().stalled, "resumed just now");
    let requeued = w.queue.pop().unwrap();
    assert_ne!(requeued.dedup_id(), lost.dedup_id());
    assert_eq!(requeued.cursor, lost.cursor);
}

#[tokio::test]
async fn a_completed_or_cancelled_job_cannot_be_resumed() {
    let w = connected().await;
    let job = start_import(&w.svc, &t(), System::ConnectWise, all()).await.unwrap();
    cancel(&w.svc, &t(), &job.id).await.unwrap();
    let err = resume(&w.svc, &t(), &job.id).await.unwrap_err();
    assert!(err.to_string().contains("cancelled"), "{err}");
    let job = start_import(&w.svc, &t(), System::ConnectWise, all()).await.unwrap();
    drain(&w).await;
    assert_eq!(super::job(&w.svc, &t(), &job.id).await.unwrap().status, JobStatus::Completed);
    let err = resume(&w.svc, &t(), &job.id).await.unwrap_err();
    assert!(err.to_string().contains("completed"), "{err}");
}

#[tokio::test]
async fn resuming_a_failed_job_waits_while_another_import_of_its_connection_runs() {
    let w = connected().await;
    let first = start_import(&w.svc, &t(), System::ConnectWise, all()).await.unwrap();
    let msg = w.queue.pop().unwrap();
    dead_lettered(&w.svc, &msg, 5, "503").await.unwrap();
    let second = start_import(&w.svc, &t(), System::ConnectWise, all()).await.unwrap();
    let err = resume(&w.svc, &t(), &first.id).await.unwrap_err();
    assert!(err.to_string().contains(second.id.as_str()), "names the running import: {err}");
}

#[test]
fn an_unknown_stage_in_an_import_body_names_the_stages_that_exist() {
    let err = serde_json::from_value::<StageSelection>(json!("everything")).unwrap_err().to_string();
    assert!(err.contains("\"everything\"") && err.contains("all") && err.contains("opportunities"), "{err}");
    assert!(!err.contains("untagged"), "{err}");
    assert_eq!(serde_json::from_value::<StageSelection>(json!("all")).unwrap(), all());
    assert_eq!(serde_json::to_value(StageSelection::One(Stage::Users)).unwrap(), json!("users"));
}

#[tokio::test]
async fn a_log_query_over_any_range_reads_at_most_the_retention_window() {
    let w = connected().await;
    let filter = crate::log::LogFilter {
        since: Some(Timestamp::parse("0001-01-01T00:00:00Z").unwrap()),
        until: Some(Timestamp::parse("9999-12-31T00:00:00Z").unwrap()),
        ..Default::default()
    };
    let before = w.table.index_queries.load(std::sync::atomic::Ordering::SeqCst);
    w.svc.store.logs(&t(), &filter, w.svc.clock.now()).await.unwrap();
    let queries = w.table.index_queries.load(std::sync::atomic::Ordering::SeqCst) - before;
    let most = crate::table::LOG_RETENTION_DAYS as usize + 2;
    assert!(queries <= most, "{queries} day partitions read, at most {most}");
}

#[test]
fn a_log_filter_refuses_an_unknown_outcome_naming_the_valid_ones_and_an_empty_range() {
    let f = |outcome: &str| crate::log::LogFilter { outcome: Some(outcome.into()), ..Default::default() };
    let err = f("banana").validate().unwrap_err().to_string();
    assert!(
        err.contains("banana")
            && err.contains("created")
            && err.contains("skipped:<reason>")
            && err.contains("inactive"),
        "{err}"
    );
    for ok in ["created", "linked", "updated", "failed", "skipped", "skipped:no_email"] {
        assert!(f(ok).validate().is_ok(), "{ok}");
    }
    assert!(f("skipped:banana").validate().is_err());
    let at = Timestamp::from_unix(1_700_000_000).unwrap();
    let empty = crate::log::LogFilter { since: Some(at), until: Some(at), ..Default::default() };
    assert!(empty.validate().unwrap_err().to_string().contains("before"));
}

// ---- the page's batched write (issue 8)

async fn connected_with_pages_of(size: usize) -> World {
    let mut c = connector();
    c.page_size = Some(size);
    let w = world(c);
    connections::save_credentials(&w.svc, &t(), System::ConnectWise, &creds()).await.unwrap();
    mappings::save_mapping(&w.svc, &t(), System::ConnectWise, Stage::Users, &json!({"roles": {"1": "admin"}}))
        .await
        .unwrap();
    let companies = json!({"company_types": {"1": "client"}});
    mappings::save_mapping(&w.svc, &t(), System::ConnectWise, Stage::Companies, &companies).await.unwrap();
    w
}

fn sixty_companies() -> Vec<ExternalRecord> {
    (0..60).map(|n| company(&n.to_string(), &format!("Company {n}"), Some(&format!("555-01{n:02}")), None)).collect()
}

#[tokio::test]
async fn a_page_of_records_is_written_in_a_few_transactions_not_one_per_record() {
    let w = connected_with_pages_of(100).await;
    set(&w, Stage::Companies, sixty_companies());
    start_import(&w.svc, &t(), System::ConnectWise, StageSelection::One(Stage::Companies)).await.unwrap();
    let before = w.table.transactions.load(std::sync::atomic::Ordering::SeqCst);
    run_page(&w.svc, &w.queue.pop().unwrap()).await.unwrap();
    let used = w.table.transactions.load(std::sync::atomic::Ordering::SeqCst) - before;
    // 60 records of 6 writes each fill 4 transactions; the checkpoint adds 2 or 3 more.
    assert!(used <= 8, "{used} transactions for a page of 60 records");
    assert_eq!(w.svc.store.all_records(&t(), RecordKind::Company).await.unwrap().len(), 60);
}

#[tokio::test]
async fn a_conflicting_batch_is_redone_record_by_record_with_the_same_outcomes() {
    let w = connected_with_pages_of(100).await;
    let crm = seed(&w, seed_company("Old Name", Some("555-0107"), None)).await;
    set(&w, Stage::Companies, sixty_companies());
    let job = start_import(&w.svc, &t(), System::ConnectWise, StageSelection::One(Stage::Companies)).await.unwrap();
    w.table.conflict_next.store(true, std::sync::atomic::Ordering::SeqCst);
    drain(&w).await;
    let job = super::job(&w.svc, &t(), &job.id).await.unwrap();
    assert_eq!(counts(&job, Stage::Companies), BTreeMap::from([("created".into(), 59), ("linked".into(), 1)]));
    assert_eq!(linked_company(&w, "7").await, Some(crm));
    assert_eq!(w.svc.store.all_records(&t(), RecordKind::Company).await.unwrap().len(), 60);
}

#[tokio::test]
async fn a_reimport_of_linked_records_makes_no_look_up_queries() {
    let w = connected_with_pages_of(100).await;
    set(&w, Stage::Companies, sixty_companies());
    import(&w, StageSelection::One(Stage::Companies)).await;
    let first = w.table.queries.load(std::sync::atomic::Ordering::SeqCst);
    assert!(first >= 60, "a first import looks each company up: {first} queries");
    let job = import(&w, StageSelection::One(Stage::Companies)).await;
    let again = w.table.queries.load(std::sync::atomic::Ordering::SeqCst) - first;
    assert_eq!(again, 0, "every record is linked already: nothing to look up");
    assert_eq!(counts(&job, Stage::Companies), BTreeMap::from([("skipped:unchanged".into(), 60)]));
}
