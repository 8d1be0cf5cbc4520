//! The ConnectWise writer over real HTTP against the ConnectWise simulator, beyond the shared
//! write contract: communication items, activity statuses, members, taken identifiers,
//! refusals before any request, and a create whose outcome is unknown.

// Tests unwrap: a failed unwrap is a failed test, with the error in the panic message.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use tandem_connectors::transport::outcome_unknown;
use tandem_connectors::{Connectors, Pacing, RetryPolicy, Settings};
use tandem_domain::external::{ExtActivity, ExtCompany, ExtContact, ExtLineItem, ExtOpportunity, ExternalRecord};
use tandem_domain::ports::{Connector, ConnectorFactory, ErrorKind};
use tandem_domain::secret::{ConnectWiseCredentials, Credentials, SecretString};
use tandem_domain::{RecordKind, Timestamp};
use tandem_sim::connectwise::{GenConfig, SimConfig, SimHandle, Simulator, Tenant};

struct Setup {
    sim: SimHandle,
    tenant: Tenant,
    conn: Arc<dyn Connector>,
}

async fn start() -> Setup {
    let tenant = Tenant::generate(&GenConfig::with_companies(13, 5));
    let sim = Simulator::start(tenant.clone(), SimConfig::default(), 0).await.unwrap();
    let c = sim.credentials();
    let creds = ConnectWiseCredentials {
        site: c.site,
        company_id: c.company_id,
        public_key: c.public_key,
        private_key: SecretString::new(c.private_key),
        client_id: c.client_id,
    };
    let settings = Settings {
        retry: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(1),
        },
        pacing: Pacing::Off,
        ..Settings::default()
    };
    let conn = Connectors::new(settings).connect(&Credentials::ConnectWise(creds)).unwrap();
    Setup { sim, tenant, conn }
}

/// A record as the simulator holds it, read without the connector.
async fn raw(sim: &SimHandle, path: &str) -> Value {
    let c = sim.credentials();
    let token = base64::engine::general_purpose::STANDARD
        .encode(format!("{}+{}:{}", c.company_id, c.public_key, c.private_key));
    let resp = reqwest::Client::new()
        .get(format!("{}{path}", sim.api_url()))
        .header("Authorization", format!("Basic {token}"))
        .header("clientId", c.client_id)
        .send()
        .await
        .unwrap();
    resp.json().await.unwrap()
}

fn company(name: &str) -> ExtCompany {
    ExtCompany { address: Some("1 Quay Street".into()), ..ExtCompany::named(name) }
}

fn contact(company_id: &str) -> ExtContact {
    ExtContact {
        id: String::new(),
        first_name: "Ada".into(),
        last_name: "Quill".into(),
        email: Some("ada@quay.example".into()),
        phone: Some("555-201-0142".into()),
        title: None,
        company_id: Some(company_id.into()),
        types: Vec::new(),
        inactive: false,
        updated_at: None,
    }
}

fn activity(contact_id: &str, created_by: Option<String>) -> ExtActivity {
    ExtActivity {
        id: String::new(),
        subject: "Follow-up call".into(),
        body: None,
        type_id: None,
        contact_id: Some(contact_id.into()),
        company_id: None,
        created_by,
        date: Some(Timestamp::parse("2026-11-20T15:30:00Z").unwrap()),
        done: false,
        updated_at: None,
    }
}

async fn create(conn: &dyn Connector, record: ExternalRecord) -> String {
    conn.create(&record).await.unwrap().id
}

async fn read(conn: &dyn Connector, kind: RecordKind, id: &str) -> ExternalRecord {
    conn.get(kind, id).await.unwrap().unwrap()
}

#[tokio::test]
async fn refused_updates_make_no_request() {
    let s = start().await;
    let id = create(s.conn.as_ref(), ExternalRecord::Company(company("Tidewater Optics"))).await;
    let record = ExternalRecord::Company(ExtCompany { id, types: vec!["1".into()], ..company("Tidewater Optics") });
    let before = s.sim.stats().requests;
    let unwritable = s.conn.update(&record, &["name", "lifetime_value"]).await.unwrap_err();
    assert!(unwritable.message.contains("lifetime_value"), "{unwritable}");
    let types = s.conn.update(&record, &["company_type"]).await.unwrap_err();
    assert_eq!(types.kind, ErrorKind::Invalid);
    assert!(types.message.contains("only when it is created"), "{types}");
    let bad_id = ExternalRecord::Company(ExtCompany { id: "12/../3".into(), ..company("x") });
    assert_eq!(s.conn.update(&bad_id, &["name"]).await.unwrap_err().kind, ErrorKind::Invalid);
    assert_eq!(s.sim.stats().requests, before, "no request was made");
}

#[tokio::test]
async fn a_contact_s_email_and_phone_change_in_its_communication_items() {
    let s = start().await;
    let company_id = create(s.conn.as_ref(), ExternalRecord::Company(company("Quayside Traders"))).await;
    let id = create(s.conn.as_ref(), ExternalRecord::Contact(contact(&company_id))).await;
    let changed = ExtContact {
        id: id.clone(),
        email: Some("ada.quill@quay.example".into()),
        phone: None,
        first_name: "Not".into(),
        ..contact(&company_id)
    };
    s.conn.update(&ExternalRecord::Contact(changed), &["email", "phone"]).await.unwrap();
    let ExternalRecord::Contact(back) = read(s.conn.as_ref(), RecordKind::Contact, &id).await else { panic!() };
    assert_eq!((back.email.as_deref(), back.phone.as_deref()), (Some("ada.quill@quay.example"), None));
    assert_eq!(back.first_name, "Ada", "a field not named is left alone");
    let stored = raw(&s.sim, &format!("/company/contacts/{id}")).await;
    assert_eq!(stored["communicationItems"].as_array().unwrap().len(), 1, "{stored}");
    let found = s.conn.find_similar(&ExternalRecord::Contact(back)).await.unwrap();
    assert!(found.iter().any(|r| r.id() == Some(id.as_str())), "found by the new email: {found:?}");
}

#[tokio::test]
async fn an_activity_is_assigned_to_its_member_and_marked_done_through_its_status() {
    let s = start().await;
    let company_id = create(s.conn.as_ref(), ExternalRecord::Company(company("Fernhill Surveyors"))).await;
    let contact_id = create(s.conn.as_ref(), ExternalRecord::Contact(contact(&company_id))).await;
    let member = s.tenant.records("system/members")[1]["identifier"].as_str().unwrap().to_string();
    let open = activity(&contact_id, Some(member.clone()));
    let id = create(s.conn.as_ref(), ExternalRecord::Activity(open.clone())).await;
    let stored = raw(&s.sim, &format!("/sales/activities/{id}")).await;
    assert_eq!(stored["assignTo"]["identifier"].as_str(), Some(member.as_str()));
    let ExternalRecord::Activity(back) = read(s.conn.as_ref(), RecordKind::Activity, &id).await else { panic!() };
    assert!(!back.done);
    let done = ExtActivity { id: id.clone(), done: true, ..open.clone() };
    s.conn.update(&ExternalRecord::Activity(done), &["done"]).await.unwrap();
    let ExternalRecord::Activity(back) = read(s.conn.as_ref(), RecordKind::Activity, &id).await else { panic!() };
    assert!(back.done, "{back:?}");
    let stranger = activity(&contact_id, Some("nobody-here".into()));
    let err = s.conn.create(&ExternalRecord::Activity(stranger)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(err.message.contains("nobody-here"), "{err}");
}

#[tokio::test]
async fn a_company_whose_identifier_is_taken_gets_the_next_one() {
    let s = start().await;
    let first = create(s.conn.as_ref(), ExternalRecord::Company(company("Acme Inc."))).await;
    let second = create(s.conn.as_ref(), ExternalRecord::Company(company("ACME inc"))).await;
    assert_ne!(first, second);
    let identifiers = [
        raw(&s.sim, &format!("/company/companies/{first}")).await["identifier"].clone(),
        raw(&s.sim, &format!("/company/companies/{second}")).await["identifier"].clone(),
    ];
    assert_eq!(identifiers, [Value::from("AcmeInc"), Value::from("ACMEinc2")]);
}

#[tokio::test]
async fn a_name_with_quotes_is_searched_safely() {
    let s = start().await;
    let name = r#"Bob's "Best" \ Tools"#;
    let id = create(s.conn.as_ref(), ExternalRecord::Company(company(name))).await;
    let found = s.conn.find_similar(&ExternalRecord::Company(company(name))).await.unwrap();
    assert_eq!(found.iter().filter_map(ExternalRecord::id).collect::<Vec<_>>(), [id.as_str()]);
}

#[tokio::test]
async fn an_opportunity_without_a_contact_is_refused_in_connectwise_s_words() {
    let s = start().await;
    let company_id = create(s.conn.as_ref(), ExternalRecord::Company(company("Copperline Freight"))).await;
    let opportunity = ExtOpportunity {
        id: String::new(),
        name: "Backup".into(),
        status_id: None,
        stage: None,
        opportunity_type: None,
        close_date: None,
        value: None,
        line_items: Vec::new(),
        salesperson_id: None,
        company_id: Some(company_id),
        contact_id: None,
        notes: None,
        updated_at: None,
    };
    let err = s.conn.create(&ExternalRecord::Opportunity(opportunity)).await.unwrap_err();
    assert_eq!((err.kind, err.status, err.code.as_deref()), (ErrorKind::Invalid, Some(400), Some("InvalidObject")));
    assert!(err.message.contains("contact: The contact field is required."), "{err}");
}

#[tokio::test]
async fn a_create_whose_outcome_is_unknown_is_not_sent_again() {
    let s = start().await;
    create(s.conn.as_ref(), ExternalRecord::Company(company("Warm Up Ltd"))).await;
    let before = s.sim.stats().requests;
    s.sim.fail_next(1, 500);
    let err = s.conn.create(&ExternalRecord::Company(company("Stormy Weather Co"))).await.unwrap_err();
    assert!(outcome_unknown(&err), "{err:?}");
    assert_eq!(s.sim.stats().requests, before + 1, "one POST, not repeated");
}

fn opportunity(company_id: &str, contact_id: &str, line_items: Vec<ExtLineItem>, value: Option<f64>) -> ExtOpportunity {
    ExtOpportunity {
        id: String::new(),
        name: "Quayside backup rollout".into(),
        status_id: None,
        stage: None,
        opportunity_type: None,
        close_date: Some("2027-03-31".into()),
        value,
        line_items,
        salesperson_id: None,
        company_id: Some(company_id.into()),
        contact_id: Some(contact_id.into()),
        notes: None,
        updated_at: None,
    }
}

#[tokio::test]
async fn a_new_opportunity_s_line_items_and_value_go_into_its_forecast() {
    let s = start().await;
    let company_id = create(s.conn.as_ref(), ExternalRecord::Company(company("Quayside Forecasts"))).await;
    let contact_id = create(s.conn.as_ref(), ExternalRecord::Contact(contact(&company_id))).await;
    let lines = vec![
        ExtLineItem { description: "Backup appliance".into(), quantity: 2.0, revenue: 1800.0 },
        ExtLineItem { description: "Onboarding".into(), quantity: 1.0, revenue: 450.0 },
    ];
    let id = create(
        s.conn.as_ref(),
        ExternalRecord::Opportunity(opportunity(&company_id, &contact_id, lines.clone(), None)),
    )
    .await;
    let ExternalRecord::Opportunity(back) = read(s.conn.as_ref(), RecordKind::Opportunity, &id).await else { panic!() };
    assert_eq!(back.line_items, lines, "each line item is a forecast item");
    assert_eq!(back.value, Some(2250.0), "the value is what the items add up to");
    let bare = opportunity(&company_id, &contact_id, Vec::new(), Some(990.0));
    let id = create(s.conn.as_ref(), ExternalRecord::Opportunity(bare)).await;
    let ExternalRecord::Opportunity(back) = read(s.conn.as_ref(), RecordKind::Opportunity, &id).await else { panic!() };
    assert_eq!(back.value, Some(990.0), "a value without line items is one forecast item");
}

/// The forecast as the simulator holds it: (total revenue, items).
async fn forecast(sim: &SimHandle, id: &str) -> (f64, Vec<Value>) {
    let f = raw(sim, &format!("/sales/opportunities/{id}/forecast")).await;
    (f["forecastRevenueTotals"]["revenue"].as_f64().unwrap(), f["forecastItems"].as_array().unwrap().clone())
}

#[tokio::test]
async fn a_changed_value_brings_the_forecast_total_to_it_and_a_repeated_update_changes_nothing() {
    let s = start().await;
    let company_id = create(s.conn.as_ref(), ExternalRecord::Company(company("Harbour Value Co"))).await;
    let contact_id = create(s.conn.as_ref(), ExternalRecord::Contact(contact(&company_id))).await;
    let o = opportunity(&company_id, &contact_id, Vec::new(), Some(990.0));
    let id = create(s.conn.as_ref(), ExternalRecord::Opportunity(o.clone())).await;
    let changed = ExtOpportunity { id: id.clone(), value: Some(1500.0), ..o };
    s.conn.update(&ExternalRecord::Opportunity(changed.clone()), &["value"]).await.unwrap();
    let (total, items) = forecast(&s.sim, &id).await;
    assert_eq!((total, items.len()), (1500.0, 1), "{items:?}");
    let ExternalRecord::Opportunity(back) = read(s.conn.as_ref(), RecordKind::Opportunity, &id).await else { panic!() };
    assert_eq!(back.value, Some(1500.0));
    let before = s.sim.stats().requests;
    s.conn.update(&ExternalRecord::Opportunity(changed), &["value"]).await.unwrap();
    assert_eq!(s.sim.stats().requests, before + 2, "a repeated update only reads the opportunity and its forecast");
    assert_eq!(forecast(&s.sim, &id).await, (total, items), "no duplicate items");
}

#[tokio::test]
async fn changed_line_items_replace_add_and_remove_forecast_items_and_leave_catalog_lines_alone() {
    let s = start().await;
    let company_id = create(s.conn.as_ref(), ExternalRecord::Company(company("Harbour Lines Co"))).await;
    let contact_id = create(s.conn.as_ref(), ExternalRecord::Contact(contact(&company_id))).await;
    let lines = vec![
        ExtLineItem { description: "Backup appliance".into(), quantity: 2.0, revenue: 1800.0 },
        ExtLineItem { description: "Onboarding".into(), quantity: 1.0, revenue: 450.0 },
    ];
    let o = opportunity(&company_id, &contact_id, lines.clone(), None);
    let id = create(s.conn.as_ref(), ExternalRecord::Opportunity(o.clone())).await;
    // A catalog product someone added in ConnectWise: not Tandem's to change.
    let c = s.sim.credentials();
    let token = base64::engine::general_purpose::STANDARD
        .encode(format!("{}+{}:{}", c.company_id, c.public_key, c.private_key));
    let catalog = serde_json::json!({"forecastType": "Product", "productDescription": "Rack", "catalogItem": {"id": 1},
        "quantity": 1.0, "revenue": 300.0});
    let resp = reqwest::Client::new()
        .post(format!("{}/sales/opportunities/{id}/forecast", s.sim.api_url()))
        .header("Authorization", format!("Basic {token}"))
        .header("clientId", c.client_id)
        .json(&catalog)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let new_lines = vec![
        ExtLineItem { description: "Backup appliance".into(), quantity: 3.0, revenue: 2700.0 },
        ExtLineItem { description: "Rack".into(), quantity: 1.0, revenue: 300.0 },
        ExtLineItem { description: "Monitoring".into(), quantity: 12.0, revenue: 600.0 },
    ];
    let changed = ExtOpportunity { id: id.clone(), line_items: new_lines, value: Some(3600.0), ..o };
    s.conn.update(&ExternalRecord::Opportunity(changed.clone()), &["value", "line_items"]).await.unwrap();
    let (total, items) = forecast(&s.sim, &id).await;
    assert_eq!(total, 3600.0, "{items:?}");
    let described: Vec<&str> = items.iter().map(|i| i["productDescription"].as_str().unwrap()).collect();
    assert_eq!(described, ["Backup appliance", "Monitoring", "Rack"], "Onboarding's item now holds Monitoring");
    assert_eq!(items[2]["catalogItem"]["id"], 1, "the catalog line is kept as it was");
    s.conn.update(&ExternalRecord::Opportunity(changed), &["line_items"]).await.unwrap();
    assert_eq!(forecast(&s.sim, &id).await, (total, items), "a repeated update leaves the forecast as it is");
}
