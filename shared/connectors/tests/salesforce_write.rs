//! The Salesforce writer over real HTTP against the Salesforce simulator, beyond the shared
//! write contract: SOQL escaping of the duplicate search, a Task's due day and status, an
//! Event's done, and a refusal before any request.

// Tests unwrap: a failed unwrap is a failed test, with the error in the panic message.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use tandem_connectors::{Connectors, Pacing, RetryPolicy, Settings};
use tandem_domain::external::{ExtActivity, ExtCompany, ExtContact, ExternalRecord};
use tandem_domain::ports::{Connector, ConnectorFactory, ErrorKind};
use tandem_domain::secret::Credentials;
use tandem_domain::{RecordKind, System, Timestamp};
use tandem_sim::{RunningSystem, Scale, SimConfig};

async fn start() -> (Box<dyn RunningSystem>, Arc<dyn Connector>) {
    let sim = tandem_sim::simulator(System::Salesforce.as_str()).unwrap();
    let running = sim.generate(&Scale::new(5, 5)).serve(SimConfig::default(), 0).await.unwrap();
    let creds = Credentials::parse(System::Salesforce, &running.credentials()).unwrap();
    let settings = Settings {
        retry: RetryPolicy { base_delay: Duration::from_millis(10), ..RetryPolicy::default() },
        pacing: Pacing::Off,
        ..Settings::default()
    };
    let conn = Connectors::new(settings).connect(&creds).unwrap();
    (running, conn)
}

fn company(name: &str) -> ExtCompany {
    ExtCompany { address: Some("1 Quay St, Suite 4".into()), ..ExtCompany::named(name) }
}

fn activity(subject: &str, done: bool) -> ExtActivity {
    ExtActivity {
        id: String::new(),
        subject: subject.into(),
        body: None,
        type_id: None,
        contact_id: None,
        company_id: None,
        created_by: None,
        date: Some(Timestamp::parse("2026-11-20T15:30:00Z").unwrap()),
        done,
        updated_at: None,
    }
}

#[tokio::test]
async fn a_name_with_quotes_and_backslashes_is_searched_for_exactly() {
    let (_sim, conn) = start().await;
    let tricky = r"O'Brien \ Sons' OR Name != '";
    let id = conn.create(&ExternalRecord::Company(company(tricky))).await.unwrap().id;
    let found = conn.find_similar(&ExternalRecord::Company(company(tricky))).await.unwrap();
    assert_eq!(found.iter().filter_map(ExternalRecord::id).collect::<Vec<_>>(), [id.as_str()]);
    let Some(ExternalRecord::Company(back)) = conn.get(RecordKind::Company, &id).await.unwrap() else { panic!() };
    assert_eq!((back.name.as_str(), back.address.as_deref()), (tricky, Some("1 Quay St, Suite 4")));
}

#[tokio::test]
async fn a_task_gets_the_day_of_its_activity_and_reopens_when_not_done() {
    let (_sim, conn) = start().await;
    let made = activity("Discovery call", true);
    let id = conn.create(&ExternalRecord::Activity(made.clone())).await.unwrap().id;
    assert!(id.starts_with("00T"), "activities are written as Tasks: {id}");
    let Some(ExternalRecord::Activity(back)) = conn.get(RecordKind::Activity, &id).await.unwrap() else { panic!() };
    assert_eq!(back.date, Some(Timestamp::parse("2026-11-20T00:00:00Z").unwrap()), "a Task keeps the day only");
    assert!(back.done);
    let reopened = ExtActivity { id: id.clone(), done: false, ..made };
    conn.update(&ExternalRecord::Activity(reopened), &["done"]).await.unwrap();
    let Some(ExternalRecord::Activity(back)) = conn.get(RecordKind::Activity, &id).await.unwrap() else { panic!() };
    assert!(!back.done);
    let similar = conn.find_similar(&ExternalRecord::Activity(activity("discovery CALL", false))).await.unwrap();
    assert!(similar.iter().any(|r| r.id() == Some(id.as_str())), "{similar:?}");
}

#[tokio::test]
async fn an_event_cannot_be_marked_done_and_nothing_is_sent() {
    let (sim, conn) = start().await;
    let event = ExtActivity { id: "00U8d0000000001AAA".into(), ..activity("Site visit", true) };
    let before = sim.stats().requests;
    let err = conn.update(&ExternalRecord::Activity(event), &["done"]).await.unwrap_err();
    assert!(err.kind == ErrorKind::Invalid && err.message.contains("done"), "{err}");
    assert_eq!(sim.stats().requests, before);
}

#[tokio::test]
async fn an_update_naming_an_unwritable_field_makes_no_request() {
    let (sim, conn) = start().await;
    let id = conn.create(&ExternalRecord::Company(company("Tidewater Optics"))).await.unwrap().id;
    let record = ExternalRecord::Company(ExtCompany { id, ..company("Tidewater Optics") });
    let before = sim.stats().requests;
    let err = conn.update(&record, &["name", "lifetime_value"]).await.unwrap_err();
    assert!(err.kind == ErrorKind::Invalid && err.message.contains("lifetime_value"), "{err}");
    let err = conn.update(&ExternalRecord::Company(company("No id")), &["name"]).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid, "an id that cannot be one is refused too: {err}");
    assert_eq!(sim.stats().requests, before, "no request was made");
}

#[tokio::test]
async fn an_update_of_an_id_the_org_does_not_hold_is_not_found_with_its_code() {
    let (_sim, conn) = start().await;
    let record = ExternalRecord::Company(ExtCompany { id: "001ZZZZZZZZZZZZZZZ".into(), ..company("Ghost") });
    let err = conn.update(&record, &["phone"]).await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::NotFound, Some("NOT_FOUND")), "{err}");
}

fn contact(first: &str, last: &str, email: &str) -> ExtContact {
    ExtContact {
        id: String::new(),
        first_name: first.into(),
        last_name: last.into(),
        email: Some(email.into()),
        phone: None,
        title: None,
        company_id: None,
        types: Vec::new(),
        inactive: false,
        updated_at: None,
    }
}

#[tokio::test]
async fn several_contacts_go_out_in_one_collection_call_and_a_refused_one_holds_back_no_other() {
    let (sim, conn) = start().await;
    assert!(conn.create_batch() > 1, "Salesforce creates through sObject Collections");
    conn.check().await.unwrap();
    let records = [
        contact("Ada", "Quill", "ada@quill.example"),
        contact("No", "", "nolast@quill.example"),
        contact("Bo", "Reed", "bo@reed.example"),
    ]
    .map(ExternalRecord::Contact);
    let before = sim.stats().requests;
    let results = conn.create_many(&records).await;
    assert_eq!(sim.stats().requests - before, 1, "one call for three records");
    assert_eq!(results.len(), 3);
    let refused = results[1].as_ref().unwrap_err();
    assert_eq!(
        (refused.kind, refused.code.as_deref()),
        (ErrorKind::Invalid, Some("REQUIRED_FIELD_MISSING")),
        "{refused}"
    );
    assert!(refused.message.contains("LastName"), "the vendor's message names the field: {refused}");
    for (n, (result, email)) in [(0, "ada@quill.example"), (2, "bo@reed.example")].map(|(n, e)| (n, (&results[n], e))) {
        let id = &result.as_ref().unwrap().id;
        let Some(ExternalRecord::Contact(back)) = conn.get(RecordKind::Contact, id).await.unwrap() else { panic!() };
        assert_eq!(back.email.as_deref(), Some(email), "record {n} is the one created at its place");
    }
}

#[tokio::test]
async fn a_collection_whose_answer_is_lost_fails_each_record_as_an_unknown_outcome_and_is_not_resent() {
    let (sim, conn) = start().await;
    conn.check().await.unwrap();
    let records = [contact("Cy", "Lowe", "cy@lowe.example"), contact("Di", "Marsh", "di@marsh.example")]
        .map(ExternalRecord::Contact);
    sim.lose_write_answers(1, 504);
    let before = sim.stats();
    let results = conn.create_many(&records).await;
    let after = sim.stats();
    sim.lose_write_answers(0, 504);
    assert_eq!(after.requests - before.requests, 1, "sent once, not repeated blindly");
    assert!(results.iter().all(|r| r.as_ref().is_err_and(|e| e.outcome_unknown())), "{results:?}");
    for record in &records {
        let found = conn.find_similar(record).await.unwrap();
        assert_eq!(found.len(), 1, "each record was committed once and is found by the search: {found:?}");
    }
}
