//! Unit tests of sync out on in-process fakes: which setting pushes, echoes both ways, a
//! redelivered push, conflicts across directions, creates and deletes.

use serde_json::json;

use super::*;
use crate::external::ExtCompany;
use crate::log::LogFilter;
use crate::usecases::sync_in::apply_notice;
use crate::usecases::sync_in::tests::{
    CW, company, connector, crm_company, drain, imported_with, notice, set_companies, t,
};
use crate::usecases::testing::{FakeConnector, World};
use crate::usecases::{connections, crm};

async fn writable() -> World {
    imported_with(FakeConnector { writable: true, ..connector() }, &[]).await
}

async fn set(w: &World, settings: serde_json::Value) {
    connections::save_settings(&w.svc, &t(), CW, &settings).await.unwrap();
}

fn writes(w: &World) -> Vec<String> {
    w.connector.writes.lock().unwrap().clone()
}

/// The system's company `id` as it holds it now.
fn held(w: &World, id: &str) -> ExtCompany {
    let all = w.connector.records.lock().unwrap();
    match all[&Stage::Companies].iter().find(|r| r.id() == Some(id)) {
        Some(ExternalRecord::Company(c)) => c.clone(),
        other => panic!("no company {id}: {other:?}"),
    }
}

/// The sync-log entries of sync out, oldest first.
async fn pushed_log(w: &World) -> Vec<LogEntry> {
    let all = LogFilter { limit: Some(1000), ..LogFilter::default() };
    let mut entries: Vec<LogEntry> = w
        .svc
        .store
        .logs(&t(), &all, w.svc.clock.now())
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.direction == Direction::SyncOut)
        .collect();
    entries.reverse();
    entries
}

async fn edit(w: &World, ext: &str, body: serde_json::Value) -> Record {
    w.clock.advance(10);
    let id = crm_company(w, ext).await.id().clone();
    crm::update(&w.svc, &t(), RecordKind::Company, &id, &body).await.unwrap()
}

use crate::external::ExternalRecord;
use crate::records::Record;

#[tokio::test]
async fn a_crm_edit_is_pushed_only_while_outbound_sync_is_on_and_its_echo_writes_nothing() {
    let w = writable().await;
    set(&w, json!({"auto_sync": "inbound"})).await;
    edit(&w, "1", json!({"name": "Acme Inbound Only"})).await;
    drain(&w).await;
    assert!(writes(&w).is_empty(), "inbound never pushes: {:?}", writes(&w));

    set(&w, json!({"auto_sync": "two_way"})).await;
    let edited = edit(&w, "1", json!({"phone": "+1 555 0199"})).await;
    drain(&w).await;
    assert_eq!(writes(&w), vec![r#"update 1 ["name", "phone"]"#.to_string()], "every field not yet in step goes out");
    assert_eq!(held(&w, "1").phone.as_deref(), Some("+1 555 0199"));
    let log = pushed_log(&w).await;
    assert_eq!(
        log.last().map(|e| (&e.outcome, e.fields.clone())),
        Some((&Outcome::Updated, vec!["name".into(), "phone".into()]))
    );

    // The system reports our own write back: an echo, nothing written in the CRM.
    assert_eq!(apply_notice(&w.svc, &notice(&w, "1", false)).await.unwrap(), Some(Outcome::Skipped(SkipReason::Echo)));
    let after = crm_company(&w, "1").await;
    assert_eq!(after.meta().version, edited.meta().version, "the echo changed nothing in the CRM");
    drain(&w).await;
    assert_eq!(writes(&w).len(), 1, "and nothing went out again");

    set(&w, json!({"auto_sync": "outbound"})).await;
    edit(&w, "1", json!({"website": "acme.example"})).await;
    drain(&w).await;
    assert_eq!(writes(&w).len(), 2, "outbound pushes");
    assert_eq!(held(&w, "1").website.as_deref(), Some("acme.example"));
}

#[tokio::test]
async fn an_external_edit_taken_in_is_recognised_as_an_echo_on_the_way_out() {
    let w = writable().await;
    set(&w, json!({"auto_sync": "two_way"})).await;
    set_companies(
        &w,
        vec![
            company("1", "Acme Renamed", "+1 555 0100", "2030-02-01T00:00:00Z"),
            company("2", "Bolt Co", "+1 555 0200", "2024-01-01T00:00:00Z"),
        ],
    );
    assert_eq!(apply_notice(&w.svc, &notice(&w, "1", false)).await.unwrap(), Some(Outcome::Updated));
    let outcomes = drain(&w).await;
    assert_eq!(outcomes, vec![Outcome::Skipped(SkipReason::Echo)], "the inbound write's outbox entry, pushed");
    assert!(writes(&w).is_empty(), "{:?}", writes(&w));
    assert_eq!(pushed_log(&w).await.len(), 1);
}

#[tokio::test]
async fn a_push_delivered_twice_writes_to_the_system_once() {
    let w = writable().await;
    set(&w, json!({"auto_sync": "two_way"})).await;
    edit(&w, "2", json!({"name": "Bolt Company"})).await;
    let Some(crate::work::Work::SyncOut(msg)) = w.queue.pop_work() else { panic!("a sync-out message") };
    let first = push(&w.svc, &msg).await.unwrap();
    let second = push(&w.svc, &msg).await.unwrap();
    assert_eq!((first, second), (Some(Outcome::Updated), Some(Outcome::Updated)));
    assert_eq!(writes(&w).len(), 1, "{:?}", writes(&w));
    assert_eq!(pushed_log(&w).await.len(), 1, "one log entry per change");
}

/// Two-way sync on; the CRM changes company 1's phone, then the system holds another phone
/// stamped `ext_stamp`, before sync out runs; then everything runs.
async fn both_changed(ext_stamp: &str) -> World {
    let w = writable().await;
    set(&w, json!({"auto_sync": "two_way"})).await;
    edit(&w, "1", json!({"phone": "+1 555 0111"})).await;
    set_companies(
        &w,
        vec![
            company("1", "Acme Ltd", "+1 555 0122", ext_stamp),
            company("2", "Bolt Co", "+1 555 0200", "2024-01-01T00:00:00Z"),
        ],
    );
    drain(&w).await;
    w
}

async fn crm_phone(w: &World) -> Option<String> {
    let Record::Company(c) = crm_company(w, "1").await else { panic!("a company") };
    c.fields.phone
}

#[tokio::test]
async fn a_field_both_sides_changed_goes_to_the_later_edit_and_both_sides_end_equal() {
    // The CRM's edit is the later one: it wins and is written to the system.
    let w = both_changed("2023-11-14T22:13:25Z").await;
    assert_eq!(held(&w, "1").phone.as_deref(), Some("+1 555 0111"));
    assert_eq!(crm_phone(&w).await.as_deref(), Some("+1 555 0111"));
    let all = LogFilter { limit: Some(1000), ..LogFilter::default() };
    let logs = w.svc.store.logs(&t(), &all, w.svc.clock.now()).await.unwrap();
    let conflict = logs.iter().flat_map(|e| e.conflicts.iter()).next().expect("the conflict is logged");
    assert_eq!((conflict.winner.as_str(), &conflict.loser), ("crm", &json!("+1 555 0122")));

    // The system's edit is the later one: it wins, the CRM takes it, nothing is sent.
    let w = both_changed("2030-01-01T00:00:00Z").await;
    assert!(writes(&w).is_empty(), "{:?}", writes(&w));
    assert_eq!(crm_phone(&w).await.as_deref(), Some("+1 555 0122"));
}

#[tokio::test]
async fn a_new_crm_company_is_created_in_the_system_only_when_the_settings_allow_it() {
    let w = writable().await;
    set(&w, json!({"auto_sync": "two_way"})).await;
    let body = json!({"name": "Cobalt Inc", "phone": "+1 555 0300", "company_type": "client"});
    crm::create(&w.svc, &t(), RecordKind::Company, &body).await.unwrap();
    assert_eq!(drain(&w).await, vec![Outcome::Skipped(SkipReason::NoOpportunity)]);
    assert!(writes(&w).is_empty());

    set(&w, json!({"export_requires_opportunity": false})).await;
    let body = json!({"name": "Delta LLC", "phone": "+1 555 0400", "company_type": "client"});
    let delta = crm::create(&w.svc, &t(), RecordKind::Company, &body).await.unwrap();
    assert_eq!(drain(&w).await, vec![Outcome::Created]);
    assert_eq!(writes(&w), vec!["create new-1".to_string()]);
    let linked = w.svc.store.linked_id(&t(), CW, RecordKind::Company, "new-1").await.unwrap();
    assert_eq!(linked.as_ref(), Some(delta.id()));
    assert_eq!(held(&w, "new-1").name, "Delta LLC");
}

#[tokio::test]
async fn a_crm_delete_reaches_the_system_only_with_propagate_deletes() {
    let w = writable().await;
    set(&w, json!({"auto_sync": "two_way"})).await;
    let one = crm_company(&w, "1").await;
    crm::delete(&w.svc, &t(), RecordKind::Company, one.id()).await.unwrap();
    assert_eq!(drain(&w).await, vec![Outcome::Skipped(SkipReason::Deleted)]);
    assert!(writes(&w).is_empty());

    set(&w, json!({"propagate_deletes": true})).await;
    let two = crm_company(&w, "2").await;
    crm::delete(&w.svc, &t(), RecordKind::Company, two.id()).await.unwrap();
    assert_eq!(drain(&w).await, vec![Outcome::Deleted]);
    assert_eq!(writes(&w), vec!["delete 2".to_string()]);
    assert!(w.svc.store.linked_id(&t(), CW, RecordKind::Company, "2").await.unwrap().is_none(), "unlinked");
}

#[tokio::test]
async fn a_change_committed_but_never_queued_is_pushed_by_the_catch_up_and_older_ones_never() {
    let w = writable().await;
    edit(&w, "1", json!({"name": "Edited before sync out was on"})).await;
    set(&w, json!({"auto_sync": "two_way"})).await;
    w.clock.advance(5);
    edit(&w, "2", json!({"name": "Bolt, queue lost"})).await;
    let lost = w.queue.pop_work();
    assert!(matches!(lost, Some(crate::work::Work::SyncOut(_))), "{lost:?}");
    assert_eq!(catch_up(&w.svc).await.unwrap(), 0, "within the grace period the relay is trusted");

    w.clock.advance(RELAY_GRACE_SECONDS + 1);
    assert_eq!(catch_up(&w.svc).await.unwrap(), 1, "only the change made while sync out was on");
    drain(&w).await;
    assert_eq!(held(&w, "2").name, "Bolt, queue lost");
    assert_ne!(held(&w, "1").name, "Edited before sync out was on");
    w.clock.advance(RELAY_GRACE_SECONDS + 1);
    assert_eq!(catch_up(&w.svc).await.unwrap(), 0, "the watermark moved on");
    assert_eq!(writes(&w).len(), 1);
}

#[tokio::test]
async fn a_value_the_import_kept_from_the_crm_goes_out_only_once_someone_changes_it() {
    let crm_own = json!({"name": "Acme (our name)", "phone": "+1 555 0100", "company_type": "client"});
    let w = crate::usecases::sync_in::tests::imported_with(FakeConnector { writable: true, ..connector() }, &[crm_own])
        .await;
    let Record::Company(linked) = crm_company(&w, "1").await else { panic!() };
    assert_eq!(linked.fields.name, "Acme (our name)", "the link kept the CRM's name");
    set(&w, json!({"auto_sync": "two_way"})).await;

    edit(&w, "1", json!({"website": "acme.example"})).await;
    drain(&w).await;
    assert_eq!(writes(&w), vec![r#"update 1 ["website"]"#.to_string()], "the kept name stays the CRM's own");
    assert_eq!(held(&w, "1").name, "Acme Ltd");

    set_companies(
        &w,
        vec![
            company("1", "Acme Ltd", "+1 555 0111", "2030-03-01T00:00:00Z"),
            company("2", "Bolt Co", "+1 555 0200", "2024-01-01T00:00:00Z"),
        ],
    );
    apply_notice(&w.svc, &notice(&w, "1", false)).await.unwrap();
    drain(&w).await;
    assert_eq!(writes(&w).len(), 1, "a system edit writes nothing back: {:?}", writes(&w));

    edit(&w, "1", json!({"name": "Acme Renamed Here"})).await;
    drain(&w).await;
    assert_eq!(writes(&w).last().unwrap(), r#"update 1 ["name"]"#);
    assert_eq!(held(&w, "1").name, "Acme Renamed Here");
}

#[tokio::test]
async fn a_notice_marked_as_ours_naming_our_pushed_version_is_an_echo_unread_and_the_mark_alone_decides_nothing() {
    let w = writable().await;
    set(&w, json!({"auto_sync": "two_way"})).await;
    edit(&w, "1", json!({"name": "Acme Pushed"})).await;
    drain(&w).await;
    let version = held(&w, "1").updated_at.expect("the system stamped the write");
    w.connector.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut marked = notice(&w, "1", false);
    marked.by_us = true;
    marked.at = Some(version);
    let echo = apply_notice(&w.svc, &marked).await.unwrap();
    assert_eq!(echo, Some(Outcome::Skipped(SkipReason::Echo)), "no read needed: the system is down");

    marked.at = Some("2031-01-01T00:00:00Z".into());
    assert!(apply_notice(&w.svc, &marked).await.is_err(), "another version is read and compared as any notice");
}

#[tokio::test]
async fn push_only_sends_what_the_crm_changed_and_takes_nothing_in() {
    let w = writable().await;
    set(&w, json!({"auto_sync": "outbound"})).await;
    set_companies(
        &w,
        vec![
            company("1", "Acme Renamed There", "+1 555 0100", "2030-01-01T00:00:00Z"),
            company("2", "Bolt Co", "+1 555 0200", "2024-01-01T00:00:00Z"),
        ],
    );
    edit(&w, "1", json!({"phone": "+1 555 0177"})).await;
    drain(&w).await;
    assert_eq!(writes(&w), vec![r#"update 1 ["phone"]"#.to_string()]);
    assert_eq!(
        (held(&w, "1").name.as_str(), held(&w, "1").phone.as_deref()),
        ("Acme Renamed There", Some("+1 555 0177"))
    );
    let Record::Company(c) = crm_company(&w, "1").await else { panic!() };
    assert_eq!(c.fields.name, "Acme Ltd", "nothing taken in");
}

#[tokio::test]
async fn a_push_the_system_rate_limits_waits_and_resumes_and_never_fails_for_it() {
    use crate::usecases::work::{Ran, run};
    let w = writable().await;
    set(&w, json!({"auto_sync": "two_way"})).await;
    w.connector.rate_limited_writes.store(2, std::sync::atomic::Ordering::SeqCst);
    edit(&w, "1", json!({"name": "Acme, once the limit passes"})).await;
    let mut work = w.queue.pop_work().expect("the push");
    for wait in 1..=2 {
        let Ran::Waits(resume) = run(&w.svc, &work).await.unwrap() else { panic!("wait {wait}: a 429 waits") };
        assert_eq!(resume.waits, wait);
        work = w.queue.pop_work().expect("the resume is queued");
        assert!(matches!(run(&w.svc, &work).await.unwrap(), Ran::NotDue(_)), "not before its time");
        w.clock.advance(31);
    }
    assert!(matches!(run(&w.svc, &work).await.unwrap(), Ran::Done));
    assert_eq!(writes(&w), vec![r#"update 1 ["name"]"#.to_string()]);
    assert_eq!(held(&w, "1").name, "Acme, once the limit passes");
}
