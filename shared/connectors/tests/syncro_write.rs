//! The Syncro writer over real HTTP against the Syncro simulator, beyond the shared write
//! contract: the name a contact update must carry, the searches by a contact's name and a
//! lead's name, the refusal of a write naming an unknown customer, and fields Syncro has no place for.

// Tests unwrap: a failed unwrap is a failed test, with the error in the panic message.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use tandem_connectors::{Connectors, Pacing, RetryPolicy, Settings};
use tandem_domain::external::{ExtCompany, ExtContact, ExtOpportunity, ExternalRecord};
use tandem_domain::ports::{Connector, ConnectorFactory, ErrorKind};
use tandem_domain::secret::Credentials;
use tandem_domain::{RecordKind, System};
use tandem_sim::{RunningSystem, Scale, SimConfig};

async fn start() -> (Box<dyn RunningSystem>, Arc<dyn Connector>) {
    let sim = tandem_sim::simulator(System::Syncro.as_str()).unwrap();
    let running = sim.generate(&Scale::new(5, 5)).serve(SimConfig::default(), 0).await.unwrap();
    let creds = Credentials::parse(System::Syncro, &running.credentials()).unwrap();
    let settings = Settings {
        retry: RetryPolicy { base_delay: Duration::from_millis(10), ..RetryPolicy::default() },
        pacing: Pacing::Off,
        ..Settings::default()
    };
    let conn = Connectors::new(settings).connect(&creds).unwrap();
    (running, conn)
}

fn company(name: &str) -> ExtCompany {
    ExtCompany {
        id: String::new(),
        name: name.into(),
        phone: Some("555-201-0199".into()),
        website: Some("https://northwind.example".into()),
        address: Some("12 Harbour Road".into()),
        types: Vec::new(),
        inactive: false,
        deleted: false,
        updated_at: None,
    }
}

fn contact(company_id: Option<&str>, email: Option<&str>) -> ExtContact {
    ExtContact {
        id: String::new(),
        first_name: "Ada".into(),
        last_name: "Quill".into(),
        email: email.map(str::to_string),
        phone: Some("555-201-0142".into()),
        title: Some("Operations Lead".into()),
        company_id: company_id.map(str::to_string),
        types: Vec::new(),
        inactive: false,
        updated_at: None,
    }
}

async fn read_contact(conn: &dyn Connector, id: &str) -> ExtContact {
    match conn.get(RecordKind::Contact, id).await.unwrap() {
        Some(ExternalRecord::Contact(c)) => c,
        other => panic!("not a contact: {other:?}"),
    }
}

#[tokio::test]
async fn a_contact_update_keeps_the_name_syncro_holds_unless_it_names_it() {
    let (_sim, conn) = start().await;
    let company_id = conn.create(&ExternalRecord::Company(company("Larkspur Dental"))).await.unwrap().id;
    let made = contact(Some(&company_id), Some("ada@larkspur.example"));
    let id = conn.create(&ExternalRecord::Contact(made.clone())).await.unwrap().id;
    let changed = ExtContact { id: id.clone(), first_name: "Grace".into(), phone: Some("555-0000".into()), ..made };
    conn.update(&ExternalRecord::Contact(changed.clone()), &["phone"]).await.unwrap();
    let back = read_contact(conn.as_ref(), &id).await;
    assert_eq!((back.first_name.as_str(), back.last_name.as_str()), ("Ada", "Quill"), "the name is Syncro's");
    assert_eq!(back.phone.as_deref(), Some("555-0000"));
    conn.update(&ExternalRecord::Contact(changed), &["first_name"]).await.unwrap();
    let back = read_contact(conn.as_ref(), &id).await;
    assert_eq!((back.first_name.as_str(), back.last_name.as_str()), ("Grace", "Quill"));
}

#[tokio::test]
async fn a_contact_without_email_is_searched_by_name_among_its_company_contacts() {
    let (_sim, conn) = start().await;
    let company_id = conn.create(&ExternalRecord::Company(company("Fernhill Surveyors"))).await.unwrap().id;
    let id = conn.create(&ExternalRecord::Contact(contact(Some(&company_id), None))).await.unwrap().id;
    let found = conn.find_similar(&ExternalRecord::Contact(contact(Some(&company_id), None))).await.unwrap();
    assert_eq!(found.iter().filter_map(ExternalRecord::id).collect::<Vec<_>>(), [id.as_str()]);
    let nowhere = conn.find_similar(&ExternalRecord::Contact(contact(None, None))).await.unwrap();
    assert!(nowhere.is_empty(), "a name alone, with no company, is no key: {nowhere:?}");
}

#[tokio::test]
async fn a_lead_is_found_by_its_name_through_the_query_search() {
    let (_sim, conn) = start().await;
    let lead = ExtOpportunity {
        id: String::new(),
        name: "Managed backup rollout".into(),
        status_id: Some("Prospect".into()),
        stage: None,
        opportunity_type: None,
        close_date: None,
        value: None,
        line_items: Vec::new(),
        salesperson_id: None,
        company_id: None,
        contact_id: None,
        notes: None,
        updated_at: None,
    };
    let id = conn.create(&ExternalRecord::Opportunity(lead.clone())).await.unwrap().id;
    let found = conn.find_similar(&ExternalRecord::Opportunity(lead)).await.unwrap();
    assert!(found.iter().any(|r| r.id() == Some(id.as_str())), "{found:?}");
}

#[tokio::test]
async fn a_contact_or_lead_naming_an_unknown_customer_is_refused_not_taken_for_a_missing_record() {
    // Syncro answers 404 {"message": "Not found"} for an unknown customer_id (the issue).
    let (_sim, conn) = start().await;
    let err = conn.create(&ExternalRecord::Contact(contact(Some("987654321"), None))).await.unwrap_err();
    assert_eq!((err.kind, err.status, err.retryable), (ErrorKind::Invalid, Some(404), false), "{err}");
    assert!(err.message.contains("customer_id 987654321 names no Syncro customer"), "{err}");
    let lead = ExtOpportunity {
        id: String::new(),
        name: "Quill upgrade".into(),
        status_id: Some("Prospect".into()),
        stage: None,
        opportunity_type: None,
        close_date: None,
        value: None,
        line_items: Vec::new(),
        salesperson_id: None,
        company_id: Some("987654321".into()),
        contact_id: None,
        notes: None,
        updated_at: None,
    };
    let err = conn.create(&ExternalRecord::Opportunity(lead)).await.unwrap_err();
    assert_eq!((err.kind, err.status, err.retryable), (ErrorKind::Invalid, Some(404), false), "{err}");
    assert!(err.message.contains("names no Syncro customer"), "{err}");
    let err = conn.create(&ExternalRecord::Contact(contact(Some("acme"), None))).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid, "an id that is no number is refused before any request: {err}");
}

#[tokio::test]
async fn an_update_leaves_a_company_as_syncro_held_it_and_a_website_is_never_written() {
    let (sim, conn) = start().await;
    let id = conn.create(&ExternalRecord::Company(company("Bellweather Tooling"))).await.unwrap().id;
    let Some(ExternalRecord::Company(before)) = conn.get(RecordKind::Company, &id).await.unwrap() else { panic!() };
    assert_eq!(before.website, None, "Syncro customers have no website");
    let changed =
        ExtCompany { id: id.clone(), name: "Renamed".into(), phone: Some("555-201-0777".into()), ..before.clone() };
    conn.update(&ExternalRecord::Company(changed.clone()), &["phone"]).await.unwrap();
    let Some(ExternalRecord::Company(after)) = conn.get(RecordKind::Company, &id).await.unwrap() else { panic!() };
    assert_eq!(after.phone.as_deref(), Some("555-201-0777"));
    assert_eq!((after.name, after.address, after.website), (before.name, before.address, before.website));
    let requests = sim.stats().requests;
    let err = conn.update(&ExternalRecord::Company(changed), &["website"]).await.unwrap_err();
    assert!(err.kind == ErrorKind::Invalid && err.message.contains("website"), "{err}");
    assert_eq!(sim.stats().requests, requests, "refused before any request");
}
