//! Unit tests of the CRM record writes on in-process fakes: every bad field named and
//! nothing written, references checked in the tenant, idempotent creates, partial
//! updates, deletes, and one outbox entry per change.

use serde_json::json;

use super::*;
use crate::usecases::testing::{FakeConnector, World, world};

fn t() -> TenantId {
    TenantId::parse("crm-test").unwrap()
}

fn w() -> World {
    world(FakeConnector::default())
}

async fn changes(w: &World) -> Vec<Change> {
    w.svc.store.changes(&t(), &w.svc.clock.now().day()).await.unwrap()
}

async fn company(w: &World, body: serde_json::Value) -> Record {
    create(&w.svc, &t(), RecordKind::Company, &body).await.unwrap()
}

#[tokio::test]
async fn a_created_company_is_stored_with_its_outbox_entry() {
    let w = w();
    let c = company(&w, json!({"name": " Acme ", "phone": "+1 555 201 0100", "company_type": "client"})).await;
    let stored = w.svc.store.record(&t(), RecordKind::Company, c.id()).await.unwrap().unwrap();
    assert_eq!(stored.fields()["name"], "Acme", "text is trimmed");
    let key = crate::normalise::phone_key("+1 555 201 0100").unwrap();
    let found = w.svc.store.find(&t(), RecordKind::Company, crate::records::LookupField::Phone, &key).await;
    assert_eq!(found.unwrap().len(), 1, "the look-up entries are written with it");
    let log = changes(&w).await;
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].op, log[0].version, log[0].record.clone()), (ChangeOp::Created, 1, c.id().clone()));
    assert!(log[0].fields.contains(&"phone".to_string()) && !log[0].fields.contains(&"website".to_string()));
}

#[tokio::test]
async fn every_bad_field_is_named_and_nothing_is_written() {
    let w = w();
    let body = json!({"email": "not-an-email", "status": "Not A Slug", "company": "nope", "phone": "call me"});
    let err = create(&w.svc, &t(), RecordKind::Contact, &body).await.unwrap_err().to_string();
    for part in [
        "email: \"not-an-email\" is not an email address",
        "status:",
        "company: no company nope",
        "phone:",
        "first_name:",
    ] {
        assert!(err.contains(part), "{part:?} missing from {err}");
    }
    assert!(changes(&w).await.is_empty());
    assert!(w.svc.store.all_records(&t(), RecordKind::Contact).await.unwrap().is_empty());
}

#[tokio::test]
async fn unknown_and_read_only_fields_are_refused_by_name() {
    let w = w();
    let err = create(&w.svc, &t(), RecordKind::Company, &json!({"name": "A", "colour": "red", "meta": {}}))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("colour") && err.contains("meta") && err.contains("settable: name"), "{err}");
    let err = create(&w.svc, &t(), RecordKind::User, &json!({"name": "A"})).await.unwrap_err().to_string();
    assert!(err.contains("written by imports"), "{err}");
}

#[tokio::test]
async fn a_create_retried_with_its_id_answers_the_same_record_and_other_values_are_refused() {
    let w = w();
    let body = json!({"id": "crm-co-1", "name": "Acme"});
    let a = company(&w, body.clone()).await;
    let b = company(&w, body).await;
    assert_eq!(a, b);
    assert_eq!(changes(&w).await.len(), 1, "one change, however often it is sent");
    let err = create(&w.svc, &t(), RecordKind::Company, &json!({"id": "crm-co-1", "name": "Other"})).await.unwrap_err();
    assert_eq!(err.class(), crate::ErrorClass::Refused);
    let err = create(&w.svc, &t(), RecordKind::Company, &json!({"id": "a#b", "name": "X"})).await.unwrap_err();
    assert!(err.to_string().contains("id:"), "{err}");
}

#[tokio::test]
async fn an_update_sets_only_the_named_fields_and_records_which_changed() {
    let w = w();
    let c = company(&w, json!({"name": "Acme", "phone": "555 0100", "website": "acme.example"})).await;
    w.clock.advance(60);
    let u = update(&w.svc, &t(), RecordKind::Company, c.id(), &json!({"phone": "555 0199", "website": null}))
        .await
        .unwrap();
    assert_eq!(u.fields()["name"], "Acme");
    assert_eq!(u.fields()["phone"], "555 0199");
    assert!(u.fields()["website"].is_null(), "null clears an optional field");
    assert_eq!(u.meta().version, 2);
    let log = changes(&w).await;
    assert_eq!(log.last().unwrap().fields, vec!["phone".to_string(), "website".to_string()]);
    let same = update(&w.svc, &t(), RecordKind::Company, c.id(), &json!({"phone": "555 0199"})).await.unwrap();
    assert_eq!(same.meta().version, 2, "a body that changes nothing writes nothing");
    assert_eq!(changes(&w).await.len(), 2);
    let err = update(&w.svc, &t(), RecordKind::Company, c.id(), &json!({"name": ""})).await.unwrap_err();
    assert!(err.to_string().contains("name: is required"), "{err}");
    let err = update(&w.svc, &t(), RecordKind::Company, &RecordId::from_raw("missing"), &json!({"name": "X"})).await;
    assert_eq!(err.unwrap_err().class(), crate::ErrorClass::NotFound);
}

#[tokio::test]
async fn activities_and_opportunities_check_their_references_in_the_tenant() {
    let w = w();
    let c = company(&w, json!({"name": "Acme"})).await;
    let contact =
        create(&w.svc, &t(), RecordKind::Contact, &json!({"first_name": "Ann", "company": c.id()})).await.unwrap();
    let err = create(
        &w.svc,
        &t(),
        RecordKind::Activity,
        &json!({"kind": "lunch", "subject": "Hi", "contact": contact.id(), "created_by": "ghost", "date": "yesterday"}),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("kind:") && err.contains("created_by: no user ghost") && err.contains("date:"), "{err}");
    let other = TenantId::parse("someone-else").unwrap();
    let err = create(&w.svc, &other, RecordKind::Opportunity, &json!({"name": "Deal", "company": c.id()}))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("company: no company"), "another tenant's record is not found: {err}");
    let o = create(
        &w.svc,
        &t(),
        RecordKind::Opportunity,
        &json!({"name": "Deal", "company": c.id(), "contact": contact.id(), "value": 1200, "close_date": "2027-03-31",
                "line_items": [{"description": "Backup", "quantity": 2, "revenue": 600}]}),
    )
    .await
    .unwrap();
    assert_eq!(o.fields()["close_date"], "2027-03-31");
    let err = update(&w.svc, &t(), RecordKind::Opportunity, o.id(), &json!({"value": -5, "close_date": "31/03/2027"}))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("value:") && err.contains("close_date:"), "{err}");
}

#[tokio::test]
async fn a_deleted_record_is_gone_with_its_look_ups_and_leaves_a_change() {
    let w = w();
    let c = company(&w, json!({"name": "Acme", "phone": "+1 555 201 0100"})).await;
    let key = crate::normalise::phone_key("+1 555 201 0100").unwrap();
    let before = w.svc.store.find(&t(), RecordKind::Company, crate::records::LookupField::Phone, &key).await;
    assert_eq!(before.unwrap().len(), 1);
    delete(&w.svc, &t(), RecordKind::Company, c.id()).await.unwrap();
    assert!(w.svc.store.record(&t(), RecordKind::Company, c.id()).await.unwrap().is_none());
    let found = w.svc.store.find(&t(), RecordKind::Company, crate::records::LookupField::Phone, &key).await;
    assert!(found.unwrap().is_empty());
    let log = changes(&w).await;
    assert_eq!((log.len(), log[1].op, log[1].version), (2, ChangeOp::Deleted, 2));
    let again = delete(&w.svc, &t(), RecordKind::Company, c.id()).await.unwrap_err();
    assert_eq!(again.class(), crate::ErrorClass::NotFound);
}

#[tokio::test]
async fn a_stored_value_the_api_would_refuse_does_not_block_an_edit_of_another_field() {
    let w = w();
    let c = company(&w, json!({"name": "Acme", "phone": "555 0100"})).await;
    // As an import stores a system's value as the system holds it.
    let Record::Company(mut imported) = c.clone() else { panic!("a company") };
    imported.fields.phone = Some("n/a".into());
    let write = RecordWrite { record: Record::Company(imported), previous: Some(c.clone()), ledger: None, log: None };
    w.svc.store.write(&t(), write).await.unwrap();

    let u = update(&w.svc, &t(), RecordKind::Company, c.id(), &json!({"name": "Acme Two"})).await.unwrap();
    assert_eq!((u.fields()["name"].clone(), u.fields()["phone"].clone()), (json!("Acme Two"), json!("n/a")));
    let err = update(&w.svc, &t(), RecordKind::Company, c.id(), &json!({"phone": "n/a"})).await.unwrap_err();
    assert!(err.to_string().contains("phone"), "a value the request sets is checked: {err}");
}
