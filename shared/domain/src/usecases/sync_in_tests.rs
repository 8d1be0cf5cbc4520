//! Unit tests of sync in on in-process fakes: switching it on, the webhook intake's
//! proofs and replays, a notice applied by the three-way merge, deletes, and the poll's
//! pages and overlapping watermark.

use std::collections::BTreeMap;

use super::*;
use crate::external::{Choice, ExtCompany, OptionList};
use crate::log::LogFilter;
use crate::normalise::Timestamp;
use crate::ports::WorkQueue;
use crate::records::Record;
use crate::usecases::import::{self, AllStages, StageSelection};
use crate::usecases::testing::{FakeConnector, World, world};
use crate::usecases::{connections, crm, mappings};
use crate::work::Work;
use serde_json::json;

pub(crate) fn t() -> TenantId {
    TenantId::parse("acme-msp").unwrap()
}

pub(crate) const CW: System = System::ConnectWise;

pub(crate) fn connector() -> FakeConnector {
    let choices = |pairs: &[(&str, &str)]| -> Vec<Choice> {
        pairs.iter().map(|(id, name)| Choice { id: id.to_string(), name: name.to_string() }).collect()
    };
    FakeConnector {
        options: BTreeMap::from([
            (OptionList::Roles, choices(&[("1", "Admin")])),
            (OptionList::CompanyTypes, choices(&[("1", "Client"), ("2", "Prospect")])),
            (OptionList::ContactTypes, choices(&[("1", "Decision Maker")])),
            (OptionList::CatalogTypes, choices(&[("1", "Hardware")])),
            (OptionList::CatalogCategories, choices(&[("1", "Security")])),
            (OptionList::BillingOptions, choices(&[("Billable", "Billable")])),
            (OptionList::ActivityTypes, choices(&[("1", "Call")])),
            (OptionList::OpportunityStatuses, choices(&[("1", "Open")])),
        ]),
        ..FakeConnector::default()
    }
}

pub(crate) fn company(id: &str, name: &str, phone: &str, updated: &str) -> ExternalRecord {
    ExternalRecord::Company(ExtCompany {
        id: id.into(),
        name: name.into(),
        phone: Some(phone.into()),
        website: None,
        address: None,
        types: vec!["1".into()],
        inactive: false,
        deleted: false,
        updated_at: Some(updated.into()),
    })
}

pub(crate) fn set_companies(w: &World, records: Vec<ExternalRecord>) {
    w.connector.records.lock().unwrap().insert(Stage::Companies, records);
}

/// Runs every queued message (imports and sync work) to the end.
pub(crate) async fn drain(w: &World) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    while let Some(work) = w.queue.pop_work() {
        match work {
            Work::ImportPage(msg) => {
                import::run_page(&w.svc, &msg).await.unwrap();
            }
            Work::SyncRecord(msg) => outcomes.extend(apply_notice(&w.svc, &msg).await.unwrap()),
            Work::SyncPoll(msg) => outcomes.extend(run_poll(&w.svc, &msg).await.unwrap()),
            Work::SyncSweep(msg) => {
                crate::usecases::sweep::run_sweep(&w.svc, &msg).await.unwrap();
            }
            Work::SyncOut(msg) => outcomes.extend(crate::usecases::sync_out::push(&w.svc, &msg).await.unwrap()),
            Work::Export(_) | Work::Resume(_) => panic!("no export or rate limit in these tests"),
        }
    }
    outcomes
}

/// A connection imported from two companies, inbound sync not yet on.
pub(crate) async fn imported() -> World {
    imported_over(&[]).await
}

/// As [`imported`], into a CRM that already holds `companies` (bodies of the record API).
pub(crate) async fn imported_over(companies: &[serde_json::Value]) -> World {
    imported_with(connector(), companies).await
}

/// As [`imported_over`], with the system `fc`.
pub(crate) async fn imported_with(fc: FakeConnector, companies: &[serde_json::Value]) -> World {
    let w = world(fc);
    for body in companies {
        crm::create(&w.svc, &t(), RecordKind::Company, body).await.unwrap();
    }
    let creds = json!({"site": "http://cw", "company_id": "acme", "public_key": "pub", "private_key": "priv", "client_id": "cid"});
    connections::save_credentials(&w.svc, &t(), CW, &creds).await.unwrap();
    let sections = [
        (Stage::Users, json!({"roles": {"1": "admin"}})),
        (Stage::Companies, json!({"company_types": {"1": "client"}})),
        (Stage::Contacts, json!({"contact_types": {"1": "talking"}})),
        (
            Stage::Solutions,
            json!({"catalog_types": {"1": "hardware"}, "catalog_categories": {"1": "security"}, "billing_options": {"Billable": "billable"}}),
        ),
        (Stage::Activities, json!({"activity_types": {"1": "call"}})),
        (Stage::Opportunities, json!({"opportunity_statuses": {"1": "open"}})),
    ];
    for (stage, body) in sections {
        mappings::save_mapping(&w.svc, &t(), CW, stage, &body).await.unwrap();
    }
    set_companies(
        &w,
        vec![
            company("1", "Acme Ltd", "+1 555 0100", "2024-01-01T00:00:00Z"),
            company("2", "Bolt Co", "+1 555 0200", "2024-01-01T00:00:00Z"),
        ],
    );
    import::start_import(&w.svc, &t(), CW, StageSelection::All(AllStages::All)).await.unwrap();
    drain(&w).await;
    w
}

async fn sync_on(w: &World) -> connections::SettingsView {
    connections::save_settings(&w.svc, &t(), CW, &json!({"auto_sync": "inbound"})).await.unwrap()
}

pub(crate) async fn crm_company(w: &World, ext: &str) -> Record {
    let id = w.svc.store.linked_id(&t(), CW, RecordKind::Company, ext).await.unwrap().expect("linked");
    w.svc.store.record(&t(), RecordKind::Company, &id).await.unwrap().unwrap()
}

/// The sync message of a webhook notice about company `id`.
pub(crate) fn notice(w: &World, id: &str, deleted: bool) -> SyncMessage {
    SyncMessage {
        tenant: t(),
        system: CW,
        record_kind: RecordKind::Company,
        external_id: id.into(),
        deleted,
        at: None,
        received_at: w.svc.clock.now(),
        delivery: None,
        by_us: false,
        retry: None,
    }
}

fn call(secret: &str, body: serde_json::Value) -> WebhookCall {
    WebhookCall {
        headers: BTreeMap::from([("x-secret".to_string(), secret.to_string())]),
        query: BTreeMap::new(),
        body: serde_json::to_vec(&body).unwrap(),
    }
}

#[tokio::test]
async fn inbound_sync_waits_for_the_import_and_then_gives_a_webhook_address_and_secret() {
    let w = world(connector());
    let creds = json!({"site": "http://cw", "company_id": "acme", "public_key": "pub", "private_key": "priv", "client_id": "cid"});
    connections::save_credentials(&w.svc, &t(), CW, &creds).await.unwrap();
    let err = connections::save_settings(&w.svc, &t(), CW, &json!({"auto_sync": "inbound"})).await.unwrap_err();
    assert_eq!(err.class(), crate::ErrorClass::Refused);
    assert!(err.to_string().contains("not been imported"), "{err}");

    let w = imported().await;
    let view = sync_on(&w).await;
    let hook = view.webhook.expect("a webhook set-up once inbound sync is on");
    assert!(hook.path.starts_with("/webhooks/connectwise/"), "{}", hook.path);
    assert_eq!(hook.secret.len(), 64);
    let again = connections::settings_view(&w.svc, &t(), CW).await.unwrap().webhook.unwrap();
    assert_eq!((again.path, again.secret), (hook.path, hook.secret), "the address and secret stay");
}

#[tokio::test]
async fn forged_unknown_and_cross_connection_webhook_calls_are_refused_and_queue_nothing() {
    let w = imported().await;
    let hook = sync_on(&w).await.webhook.unwrap();
    let key = hook.path.rsplit('/').next().unwrap().to_string();
    let body = json!([{"kind": "company", "id": "1"}]);
    let cases = [
        (CW, key.as_str(), call("not-the-secret", body.clone())),
        (CW, "no-such-key", call(&hook.secret, body.clone())),
        (System::Halo, key.as_str(), call(&hook.secret, body.clone())),
        (CW, key.as_str(), WebhookCall { body: serde_json::to_vec(&body).unwrap(), ..WebhookCall::default() }),
    ];
    for (system, key, call) in cases {
        let err = intake(&w.svc, system, key, &call).await.unwrap_err();
        assert_eq!(err.class(), crate::ErrorClass::Unauthenticated, "{err}");
    }
    assert!(w.queue.pop_work().is_none(), "nothing was queued");
    // A proven call whose body cannot be read is a bad request, and queues nothing either.
    let bad = WebhookCall { body: b"{not json".to_vec(), ..call(&hook.secret, json!([])) };
    assert_eq!(intake(&w.svc, CW, &key, &bad).await.unwrap_err().class(), crate::ErrorClass::Invalid);
    assert!(w.queue.pop_work().is_none());
}

#[tokio::test]
async fn a_proven_call_queues_each_record_once_and_its_replay_is_acknowledged_and_ignored() {
    let w = imported().await;
    let hook = sync_on(&w).await.webhook.unwrap();
    let key = hook.path.rsplit('/').next().unwrap().to_string();
    let c = call(&hook.secret, json!([{"kind": "company", "id": "1"}, {"kind": "company", "id": "2"}]));
    let first = intake(&w.svc, CW, &key, &c).await.unwrap();
    assert_eq!((first.queued, first.replay), (2, false));
    let replay = intake(&w.svc, CW, &key, &c).await.unwrap();
    assert_eq!((replay.queued, replay.replay), (0, true));
    let mut queued = 0;
    while let Some(work) = w.queue.pop_work() {
        assert!(matches!(work, Work::SyncRecord(_)), "{work}");
        queued += 1;
    }
    assert_eq!(queued, 2);
}

#[tokio::test]
async fn a_notice_takes_the_external_change_and_keeps_the_crm_s_own_change_of_another_field() {
    let w = imported().await;
    sync_on(&w).await;
    // The CRM changes the phone; the system renames the company later.
    let before = crm_company(&w, "1").await;
    w.clock.advance(60);
    crm::update(&w.svc, &t(), RecordKind::Company, before.id(), &json!({"phone": "+1 555 0199"})).await.unwrap();
    set_companies(&w, vec![company("1", "Acme Limited", "+1 555 0100", "2024-02-01T00:00:00Z")]);
    let msg = notice(&w, "1", false);
    w.queue.send(&Work::SyncRecord(msg.clone())).await.unwrap();
    w.queue.send(&Work::SyncRecord(msg)).await.unwrap();
    let outcomes = drain(&w).await;
    assert_eq!(outcomes, vec![Outcome::Updated, Outcome::Updated], "a duplicate delivery ends in the same outcome");
    let after = crm_company(&w, "1").await;
    let fields = after.fields();
    assert_eq!(fields["name"], json!("Acme Limited"), "the system's change came in");
    assert_eq!(fields["phone"], json!("+1 555 0199"), "the CRM's own change of another field stayed");
    let filter = LogFilter { outcome: Some("updated".into()), ..LogFilter::default() };
    let logs = w.svc.store.logs(&t(), &filter, w.svc.clock.now()).await.unwrap();
    let synced: Vec<_> = logs.iter().filter(|e| e.direction == Direction::Webhook).collect();
    assert_eq!(synced.len(), 1, "one log entry for one change, however often it was delivered: {synced:?}");
}

#[tokio::test]
async fn a_value_the_crm_kept_when_the_import_linked_its_record_stays_when_the_system_changes_another_field() {
    let w = imported_over(&[json!({"name": "Acme Ltd", "phone": "+1 555 0777"})]).await;
    let linked = crm_company(&w, "1").await;
    assert_eq!(linked.fields()["phone"], json!("+1 555 0777"), "the import linked by name and kept the CRM's phone");
    sync_on(&w).await;
    set_companies(&w, vec![company("1", "Acme Limited", "+1 555 0100", "2024-02-01T00:00:00Z")]);
    w.queue.send(&Work::SyncRecord(notice(&w, "1", false))).await.unwrap();
    assert_eq!(drain(&w).await, vec![Outcome::Updated]);
    let fields = crm_company(&w, "1").await.fields();
    assert_eq!(fields["name"], json!("Acme Limited"), "the system's change came in");
    assert_eq!(fields["phone"], json!("+1 555 0777"), "the phone the system did not change stays the CRM's");

    set_companies(&w, vec![company("1", "Acme Limited", "+1 555 0111", "2024-03-01T00:00:00Z")]);
    w.queue.send(&Work::SyncRecord(notice(&w, "1", false))).await.unwrap();
    drain(&w).await;
    assert_eq!(crm_company(&w, "1").await.fields()["phone"], json!("+1 555 0111"), "a real change of it comes in");
}

#[tokio::test]
async fn a_change_on_both_sides_goes_to_the_more_recent_side_and_logs_the_loser() {
    let w = imported().await;
    sync_on(&w).await;
    let before = crm_company(&w, "1").await;
    // The CRM renamed it at 1_700_000_000 + 60; the system renamed it later still.
    w.clock.advance(60);
    crm::update(&w.svc, &t(), RecordKind::Company, before.id(), &json!({"name": "Acme (CRM)"})).await.unwrap();
    set_companies(&w, vec![company("1", "Acme (PSA)", "+1 555 0100", "2030-01-01T00:00:00Z")]);
    let msg = notice(&w, "1", false);
    assert_eq!(apply_notice(&w.svc, &msg).await.unwrap(), Some(Outcome::Updated));
    assert_eq!(crm_company(&w, "1").await.fields()["name"], json!("Acme (PSA)"));
    let all = LogFilter { limit: Some(1000), ..LogFilter::default() };
    let logs = w.svc.store.logs(&t(), &all, w.svc.clock.now()).await.unwrap();
    let conflict = logs.iter().flat_map(|e| e.conflicts.clone()).next().expect("the conflict is logged");
    assert_eq!((conflict.field.as_str(), conflict.winner.as_str()), ("name", "external"));
    assert_eq!(conflict.loser, json!("Acme (CRM)"), "the losing value is kept to restore");
    assert_eq!(conflict.external_at, Some(Timestamp::parse("2030-01-01T00:00:00Z").unwrap()));
    assert_eq!(conflict.crm_at, Timestamp::from_unix(1_700_000_060).unwrap());

    // Now the CRM changes it again, later than the system's next stamp: the CRM keeps it.
    w.clock.advance(10 * 365 * 86_400);
    let current = crm_company(&w, "1").await;
    crm::update(&w.svc, &t(), RecordKind::Company, current.id(), &json!({"name": "Acme (CRM again)"})).await.unwrap();
    set_companies(&w, vec![company("1", "Acme (PSA again)", "+1 555 0100", "2030-06-01T00:00:00Z")]);
    apply_notice(&w.svc, &msg).await.unwrap();
    assert_eq!(crm_company(&w, "1").await.fields()["name"], json!("Acme (CRM again)"), "the more recent CRM side won");
}

#[tokio::test]
async fn a_record_gone_from_the_system_is_logged_and_archived_only_when_deletes_propagate() {
    let w = imported().await;
    sync_on(&w).await;
    set_companies(&w, vec![company("2", "Bolt Co", "+1 555 0200", "2024-01-01T00:00:00Z")]);
    let msg = |id: &str| notice(&w, id, true);
    assert_eq!(apply_notice(&w.svc, &msg("1")).await.unwrap(), Some(Outcome::Skipped(SkipReason::Deleted)));
    let kept = crm_company(&w, "1").await;
    connections::save_settings(&w.svc, &t(), CW, &json!({"propagate_deletes": true})).await.unwrap();
    assert_eq!(apply_notice(&w.svc, &msg("1")).await.unwrap(), Some(Outcome::Deleted));
    assert!(w.svc.store.record(&t(), RecordKind::Company, kept.id()).await.unwrap().is_none(), "removed from the CRM");
    assert_eq!(
        apply_notice(&w.svc, &msg("nope")).await.unwrap(),
        Some(Outcome::Skipped(SkipReason::NotLinked)),
        "a record Tandem never took in is nothing to delete"
    );
}

#[tokio::test]
async fn a_poll_reads_every_synced_stage_applies_changes_and_overlaps_its_next_read() {
    let w = imported().await;
    let refused = start_poll(&w.svc, &t(), CW).await.unwrap_err();
    assert_eq!(refused.class(), crate::ErrorClass::Refused, "no poll while inbound sync is off");
    sync_on(&w).await;
    set_companies(
        &w,
        vec![
            company("1", "Acme Ltd", "+1 555 0100", "2024-01-01T00:00:00Z"),
            company("2", "Bolt Company", "+1 555 0200", "2024-03-01T00:00:00Z"),
            company("3", "Cobalt Inc", "+1 555 0300", "2024-03-01T00:00:00Z"),
        ],
    );
    let started = start_poll(&w.svc, &t(), CW).await.unwrap();
    assert_eq!(started.stages, System::ConnectWise.stages().to_vec());
    let outcomes = drain(&w).await;
    let count = |o: &Outcome| outcomes.iter().filter(|x| *x == o).count();
    assert_eq!((count(&Outcome::Updated), count(&Outcome::Created)), (1, 1), "{outcomes:?}");
    assert_eq!(crm_company(&w, "2").await.fields()["name"], json!("Bolt Company"));
    let conn = connection(&w.svc, &t(), CW).await.unwrap();
    let polled_at = conn.polled[&Stage::Companies];
    // The next poll reads from the previous poll's start less the overlap, and reading the
    // same records again changes nothing.
    w.clock.advance(600);
    start_poll(&w.svc, &t(), CW).await.unwrap();
    let first = w.queue.pop_work().unwrap();
    let Work::SyncPoll(page) = &first else { panic!("{first}") };
    assert_eq!(page.cursor.since, Some(conn.polled[&page.stage].plus_seconds(-POLL_OVERLAP_SECONDS)));
    let all = LogFilter { limit: Some(1000), ..LogFilter::default() };
    let logged = w.svc.store.logs(&t(), &all, w.svc.clock.now()).await.unwrap().len();
    let records = w.svc.store.all_records(&t(), RecordKind::Company).await.unwrap();
    w.queue.send(&first).await.unwrap();
    drain(&w).await;
    assert_eq!(w.svc.store.logs(&t(), &all, w.svc.clock.now()).await.unwrap().len(), logged, "no new log entry");
    assert_eq!(w.svc.store.all_records(&t(), RecordKind::Company).await.unwrap(), records, "no record changed");
    let conn = connection(&w.svc, &t(), CW).await.unwrap();
    assert_eq!(conn.polled[&Stage::Companies], polled_at.plus_seconds(600), "the watermark moved to the new start");
}

#[tokio::test]
async fn a_record_leaving_the_mapping_is_left_alone_and_one_entering_it_comes_in() {
    let w = imported().await;
    sync_on(&w).await;
    let before = crm_company(&w, "1").await;
    // Company 1 becomes a type the mapping does not take; company 3 is new and mapped.
    let mut leaving = company("1", "Acme Renamed", "+1 555 0100", "2024-02-01T00:00:00Z");
    if let ExternalRecord::Company(c) = &mut leaving {
        c.types = vec!["2".into()];
    }
    set_companies(&w, vec![leaving, company("3", "Cobalt Inc", "+1 555 0300", "2024-02-01T00:00:00Z")]);
    assert_eq!(
        apply_notice(&w.svc, &notice(&w, "1", false)).await.unwrap(),
        Some(Outcome::Skipped(SkipReason::TypeNotMapped))
    );
    assert_eq!(crm_company(&w, "1").await, before, "left as it was");
    assert_eq!(apply_notice(&w.svc, &notice(&w, "3", false)).await.unwrap(), Some(Outcome::Created));
    assert_eq!(crm_company(&w, "3").await.fields()["name"], json!("Cobalt Inc"));
}

#[tokio::test]
async fn a_record_the_system_marks_deleted_is_removed_by_the_poll_only_when_deletes_propagate() {
    let w = imported().await;
    sync_on(&w).await;
    let kept = crm_company(&w, "1").await;
    let mut gone = company("1", "Acme Ltd", "+1 555 0100", "2024-02-01T00:00:00Z");
    if let ExternalRecord::Company(c) = &mut gone {
        c.deleted = true;
    }
    set_companies(&w, vec![gone.clone(), company("2", "Bolt Co", "+1 555 0200", "2024-01-01T00:00:00Z")]);
    start_poll(&w.svc, &t(), CW).await.unwrap();
    let outcomes = drain(&w).await;
    assert!(outcomes.contains(&Outcome::Skipped(SkipReason::Deleted)), "{outcomes:?}");
    assert!(w.svc.store.record(&t(), RecordKind::Company, kept.id()).await.unwrap().is_some(), "only logged");

    connections::save_settings(&w.svc, &t(), CW, &json!({"propagate_deletes": true})).await.unwrap();
    if let ExternalRecord::Company(c) = &mut gone {
        c.updated_at = Some("2024-03-01T00:00:00Z".into());
    }
    set_companies(&w, vec![gone, company("2", "Bolt Co", "+1 555 0200", "2024-01-01T00:00:00Z")]);
    w.clock.advance(600);
    start_poll(&w.svc, &t(), CW).await.unwrap();
    let outcomes = drain(&w).await;
    assert!(outcomes.contains(&Outcome::Deleted), "{outcomes:?}");
    assert!(w.svc.store.record(&t(), RecordKind::Company, kept.id()).await.unwrap().is_none(), "removed");
}

#[tokio::test]
async fn a_call_that_could_not_be_queued_is_not_marked_so_the_system_s_retry_is_taken() {
    let w = imported().await;
    let hook = sync_on(&w).await.webhook.unwrap();
    let key = hook.path.rsplit('/').next().unwrap().to_string();
    let c = call(&hook.secret, json!([{"kind": "company", "id": "1"}]));
    w.queue.down.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(intake(&w.svc, CW, &key, &c).await.unwrap_err().is_retryable(), "the system is told to retry");
    w.queue.down.store(false, std::sync::atomic::Ordering::SeqCst);
    let retried = intake(&w.svc, CW, &key, &c).await.unwrap();
    assert_eq!((retried.queued, retried.replay), (1, false), "the retry is taken, not ignored as a replay");
}

#[tokio::test]
async fn a_second_edit_under_the_same_stamp_is_taken_and_a_field_the_crm_won_stays_won() {
    let w = imported().await;
    sync_on(&w).await;
    // Two quick edits in the system share one stamp (systems stamp whole seconds).
    set_companies(&w, vec![company("1", "Acme One", "+1 555 0100", "2024-02-01T00:00:00Z")]);
    apply_notice(&w.svc, &notice(&w, "1", false)).await.unwrap();
    set_companies(&w, vec![company("1", "Acme Two", "+1 555 0100", "2024-02-01T00:00:00Z")]);
    assert_eq!(apply_notice(&w.svc, &notice(&w, "1", false)).await.unwrap(), Some(Outcome::Updated));
    assert_eq!(crm_company(&w, "1").await.fields()["name"], json!("Acme Two"), "the second edit is not missed");
    assert_eq!(
        apply_notice(&w.svc, &notice(&w, "1", false)).await.unwrap(),
        Some(Outcome::Updated),
        "the same change read again keeps its one outcome"
    );

    // The CRM renames it later than the system's stamp: the CRM wins the name...
    w.clock.advance(20 * 365 * 86_400);
    let current = crm_company(&w, "1").await;
    crm::update(&w.svc, &t(), RecordKind::Company, current.id(), &json!({"name": "Acme (CRM)"})).await.unwrap();
    set_companies(&w, vec![company("1", "Acme Three", "+1 555 0100", "2024-03-01T00:00:00Z")]);
    apply_notice(&w.svc, &notice(&w, "1", false)).await.unwrap();
    assert_eq!(crm_company(&w, "1").await.fields()["name"], json!("Acme (CRM)"));
    // ...and keeps it when the system later changes only the phone (its name still the loser).
    set_companies(&w, vec![company("1", "Acme Three", "+1 555 0177", "2024-04-01T00:00:00Z")]);
    apply_notice(&w.svc, &notice(&w, "1", false)).await.unwrap();
    let after = crm_company(&w, "1").await;
    assert_eq!(
        (after.fields()["name"].clone(), after.fields()["phone"].clone()),
        (json!("Acme (CRM)"), json!("+1 555 0177"))
    );
}

// ---- hard deletes found by the poll

/// A connection imported from `n` companies (ids 1..=n), inbound sync on with
/// `propagate_deletes`, and the first poll done.
async fn synced_with(n: usize) -> World {
    let w = imported().await;
    let all = (1..=n).map(|i| company(&i.to_string(), &format!("Company {i}"), "+1 555 0100", "2024-01-01T00:00:00Z"));
    set_companies(&w, all.collect());
    import::start_import(&w.svc, &t(), CW, StageSelection::All(AllStages::All)).await.unwrap();
    drain(&w).await;
    connections::save_settings(&w.svc, &t(), CW, &json!({"auto_sync": "inbound", "propagate_deletes": true}))
        .await
        .unwrap();
    start_poll(&w.svc, &t(), CW).await.unwrap();
    drain(&w).await;
    w
}

fn delete_companies(w: &World, ids: &[&str]) {
    let mut records = w.connector.records.lock().unwrap();
    records.get_mut(&Stage::Companies).unwrap().retain(|r| !ids.contains(&r.id().unwrap()));
}

async fn linked_companies(w: &World) -> usize {
    w.svc.store.linked_external_ids(&t(), CW, RecordKind::Company).await.unwrap().len()
}

#[tokio::test]
async fn a_hard_delete_no_webhook_told_is_found_by_the_id_reconciliation_once_it_is_due() {
    let w = synced_with(5).await;
    delete_companies(&w, &["3"]);
    start_poll(&w.svc, &t(), CW).await.unwrap();
    assert!(!drain(&w).await.contains(&Outcome::Deleted), "not due yet: a day has not passed since the import");
    assert_eq!(linked_companies(&w).await, 5);

    w.clock.advance(86_400);
    start_poll(&w.svc, &t(), CW).await.unwrap();
    let outcomes = drain(&w).await;
    assert_eq!(outcomes.iter().filter(|o| **o == Outcome::Deleted).count(), 1, "{outcomes:?}");
    assert_eq!(linked_companies(&w).await, 4);
    assert!(w.svc.store.linked_id(&t(), CW, RecordKind::Company, "3").await.unwrap().is_none());
    let conn = w.svc.store.connection(&t(), CW).await.unwrap().unwrap();
    let report = &conn.swept[&Stage::Companies];
    assert_eq!((report.listed, report.linked, report.missing, report.held_back), (4, 5, 1, false));

    start_poll(&w.svc, &t(), CW).await.unwrap();
    assert!(!drain(&w).await.contains(&Outcome::Deleted), "the next poll (not due again) finds nothing to delete");
}

#[tokio::test]
async fn a_reconciliation_missing_more_linked_records_than_the_guard_allows_acts_on_none_until_confirmed() {
    let w = synced_with(14).await;
    let gone: Vec<String> = (1..=11).map(|i| i.to_string()).collect();
    delete_companies(&w, &gone.iter().map(String::as_str).collect::<Vec<_>>());
    let stages = crate::usecases::sweep::start_sweep(&w.svc, &t(), CW, &Default::default()).await.unwrap();
    assert!(stages.contains(&Stage::Companies));
    let outcomes = drain(&w).await;
    assert!(!outcomes.contains(&Outcome::Deleted), "{outcomes:?}");
    assert_eq!(linked_companies(&w).await, 14, "nothing unlinked, nothing deleted");
    let conn = w.svc.store.connection(&t(), CW).await.unwrap().unwrap();
    let report = &conn.swept[&Stage::Companies];
    assert_eq!((report.listed, report.linked, report.missing, report.held_back), (3, 14, 11, true));

    // A person who checked confirms: the next reconciliation acts on every one.
    w.clock.advance(1);
    let confirm = crate::usecases::sweep::SweepRequest { confirm_deletes: true };
    crate::usecases::sweep::start_sweep(&w.svc, &t(), CW, &confirm).await.unwrap();
    let outcomes = drain(&w).await;
    assert_eq!(outcomes.iter().filter(|o| **o == Outcome::Deleted).count(), 11, "{outcomes:?}");
    assert_eq!(linked_companies(&w).await, 3);
    let conn = w.svc.store.connection(&t(), CW).await.unwrap().unwrap();
    let report = &conn.swept[&Stage::Companies];
    assert_eq!((report.missing, report.held_back, report.confirmed), (11, false, true));
}

#[tokio::test]
async fn a_record_missing_from_the_listing_but_still_in_the_system_is_left_alone() {
    let w = synced_with(4).await;
    // The system lists three (a filter, a page read before a change) but still has all four.
    let hidden = w.connector.records.lock().unwrap()[&Stage::Companies][1].clone();
    delete_companies(&w, &["2"]);
    let msg = crate::sync::SweepMessage {
        tenant: t(),
        system: CW,
        stage: Stage::Companies,
        cursor: crate::external::Cursor::start(),
        started_at: w.svc.clock.now(),
        confirmed: false,
    };
    w.svc.queue.send(&Work::SyncSweep(msg)).await.unwrap();
    let mut first = Vec::new();
    while let Some(work) = w.queue.pop_work() {
        match work {
            Work::SyncSweep(msg) => {
                crate::usecases::sweep::run_sweep(&w.svc, &msg).await.unwrap();
            }
            other => first.push(other),
        }
    }
    w.connector.records.lock().unwrap().get_mut(&Stage::Companies).unwrap().push(hidden);
    for work in first {
        w.svc.queue.send(&work).await.unwrap();
    }
    let outcomes = drain(&w).await;
    assert!(!outcomes.contains(&Outcome::Deleted), "{outcomes:?}");
    assert_eq!(linked_companies(&w).await, 4);
}

#[tokio::test]
async fn deletes_in_the_systems_own_log_are_applied_at_the_next_poll_and_unlinked_ids_are_ignored() {
    let w = synced_with(3).await;
    delete_companies(&w, &["2"]);
    *w.connector.delete_log.lock().unwrap() = Some(vec!["2".into(), "999".into()]);
    start_poll(&w.svc, &t(), CW).await.unwrap();
    let outcomes = drain(&w).await;
    assert_eq!(outcomes.iter().filter(|o| **o == Outcome::Deleted).count(), 1, "{outcomes:?}");
    assert_eq!(linked_companies(&w).await, 2);
    assert!(w.svc.store.linked_id(&t(), CW, RecordKind::Company, "2").await.unwrap().is_none());
}

#[tokio::test]
async fn a_delete_log_refused_for_good_does_not_stop_the_poll_from_moving_its_watermark() {
    let w = synced_with(2).await;
    let before = w.svc.store.connection(&t(), CW).await.unwrap().unwrap().polled[&Stage::Companies];
    w.connector.delete_log_refused.store(true, std::sync::atomic::Ordering::SeqCst);
    w.clock.advance(60);
    start_poll(&w.svc, &t(), CW).await.unwrap();
    drain(&w).await;
    let after = w.svc.store.connection(&t(), CW).await.unwrap().unwrap().polled[&Stage::Companies];
    assert!(after > before, "the poll finished: {before} -> {after}");
}

#[tokio::test]
async fn every_reconciliation_message_delivered_twice_deletes_each_record_once_and_logs_it_once() {
    let w = synced_with(5).await;
    delete_companies(&w, &["2", "4"]);
    crate::usecases::sweep::start_sweep(&w.svc, &t(), CW, &Default::default()).await.unwrap();
    let mut outcomes = Vec::new();
    while let Some(work) = w.queue.pop_work() {
        for _ in 0..2 {
            match &work {
                Work::SyncSweep(msg) => {
                    crate::usecases::sweep::run_sweep(&w.svc, msg).await.unwrap();
                }
                Work::SyncRecord(msg) => outcomes.extend(apply_notice(&w.svc, msg).await.unwrap()),
                other => panic!("unexpected {other}"),
            }
        }
    }
    assert_eq!(outcomes.iter().filter(|o| **o == Outcome::Deleted).count(), 2, "{outcomes:?}");
    assert_eq!(linked_companies(&w).await, 3);
    let filter = LogFilter { outcome: Some("deleted".into()), ..LogFilter::default() };
    let logged = w.svc.store.logs(&t(), &filter, w.svc.clock.now()).await.unwrap();
    assert_eq!(logged.len(), 2, "one log entry per delete: {logged:?}");
}
