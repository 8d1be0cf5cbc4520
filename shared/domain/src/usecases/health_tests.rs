//! The health view against a seeded log (entries written at known times around the 24 h
//! and 7 d boundaries, failures to group), and the retry of a failed operation.

use super::*;
use crate::external::{ExternalRecord, Unreadable};
use crate::log::{ConflictLog, LogError, SkipReason};
use crate::usecases::sync_in::tests::{CW, company, drain, imported, set_companies, t};
use crate::usecases::testing::world;
use crate::usecases::{connections, import, retry};
use crate::work::Work;

/// An entry of `outcome` for company `ext` of `system`, `ago` seconds before now.
fn entry(w_now: Timestamp, id: &str, ago: i64, system: System, direction: Direction, outcome: Outcome) -> LogEntry {
    let mut e =
        LogEntry::of(id.into(), &t(), w_now.plus_seconds(-ago), system, direction, RecordKind::Company, outcome);
    e.external_id = Some(format!("ext-{id}"));
    e
}

fn failed(why: &str) -> Outcome {
    Outcome::Failed(why.into())
}

async fn seed(svc: &Services, entries: &[LogEntry]) {
    for e in entries {
        assert!(svc.store.put_log(e).await.unwrap(), "{} written", e.id);
    }
}

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

#[tokio::test]
async fn health_counts_the_last_day_and_the_last_week_apart_and_leaves_older_entries_and_other_systems_out() {
    let w = imported().await;
    let imported = health(&w.svc, &t(), CW).await.unwrap();
    let now = w.svc.clock.now();
    let mut conflicted = entry(now, "c1", 2 * HOUR, CW, Direction::SyncIn, Outcome::Updated);
    conflicted.conflicts = vec![ConflictLog {
        field: "name".into(),
        winner: "crm".into(),
        loser: serde_json::json!("Old"),
        crm_at: now,
        external_at: None,
    }];
    seed(
        &w.svc,
        &[
            entry(now, "a", 60, CW, Direction::Import, Outcome::Created),
            entry(now, "b", DAY - 60, CW, Direction::Import, Outcome::Linked),
            conflicted,
            entry(now, "d", DAY + 60, CW, Direction::SyncIn, Outcome::Updated),
            entry(now, "e", 3 * DAY, CW, Direction::Webhook, Outcome::Skipped(SkipReason::Echo)),
            entry(now, "f", 7 * DAY - 60, CW, Direction::Export, failed("Name is required")),
            entry(now, "g", 7 * DAY + 60, CW, Direction::Import, Outcome::Created),
            entry(now, "h", 60, System::Halo, Direction::Import, failed("elsewhere")),
            entry(now, "i", 30, CW, Direction::SyncOut, Outcome::Deleted),
        ],
    )
    .await;
    let h = health(&w.svc, &t(), CW).await.unwrap();
    let before = imported.counts.last_24h;
    let day = h.counts.last_24h;
    assert_eq!(
        (
            day.created - before.created,
            day.linked - before.linked,
            day.updated - before.updated,
            day.conflict,
            day.deleted,
            day.failed
        ),
        (1, 1, 1, 1, 1, 0),
        "{day:?}"
    );
    let week = h.counts.last_7d;
    let wb = imported.counts.last_7d;
    assert_eq!(
        (week.created - wb.created, week.updated - wb.updated, week.skipped - wb.skipped, week.failed, week.conflict),
        (1, 2, 1, 1, 1),
        "the 7-day window holds the 24 h one and what is older than a day, not what is older than a week: {week:?}"
    );
    assert_eq!(h.failures.len(), 1, "the Halo failure is another connection's: {:?}", h.failures);
    assert_eq!(h.last_success.webhook, Some(now.plus_seconds(-3 * DAY)), "the echo came by webhook and did not fail");
}

#[tokio::test]
async fn failures_are_grouped_by_vendor_code_and_message_with_their_records_counted_and_capped() {
    let w = world(crate::usecases::sync_in::tests::connector());
    connections::save_credentials(
        &w.svc,
        &t(),
        CW,
        &serde_json::json!({"site": "http://cw", "company_id": "acme", "public_key": "pub", "private_key": "priv", "client_id": "cid"}),
    )
    .await
    .unwrap();
    let now = w.svc.clock.now();
    let mut entries = Vec::new();
    for n in 0..60 {
        let mut e = entry(now, &format!("req-{n}"), HOUR + n, CW, Direction::Export, failed("Name is required"));
        e.error = Some(LogError { kind: ErrorKind::Invalid, code: Some("E_REQ".into()), status: Some(400) });
        entries.push(e);
    }
    // The same record failing twice is one record of the group, counted twice.
    let mut again = entry(now, "req-0-again", 30, CW, Direction::Export, failed("Name is required"));
    again.external_id = Some("ext-req-0".into());
    again.error = entries[0].error.clone();
    entries.push(again);
    // The same message with another code, and without a code: two more groups.
    let mut other_code = entry(now, "other", 2 * DAY, CW, Direction::SyncOut, failed("Name is required"));
    other_code.error = Some(LogError { kind: ErrorKind::Invalid, code: Some("E_OTHER".into()), status: None });
    entries.push(other_code);
    entries.push(entry(now, "plain", 5 * DAY, CW, Direction::Import, failed("Name is required")));
    seed(&w.svc, &entries).await;

    let h = health(&w.svc, &t(), CW).await.unwrap();
    assert_eq!(h.failures.len(), 3, "{:?}", h.failures.iter().map(|g| (&g.code, g.count)).collect::<Vec<_>>());
    let top = &h.failures[0];
    assert_eq!((top.code.as_deref(), top.kind, top.count), (Some("E_REQ"), Some(ErrorKind::Invalid), 61));
    assert_eq!((top.records_total, top.records.len()), (60, RECORDS_PER_GROUP));
    assert_eq!((top.first_at, top.last_at), (now.plus_seconds(-HOUR - 59), now.plus_seconds(-30)));
    assert_eq!(top.records[0].log_id, "req-0-again", "most recent first");
    assert_eq!(top.records[0].external_id.as_deref(), Some("ext-req-0"));
    let codes: Vec<Option<&str>> = h.failures[1..].iter().map(|g| g.code.as_deref()).collect();
    assert!(codes.contains(&Some("E_OTHER")) && codes.contains(&None), "{codes:?}");
    assert_eq!(h.counts.last_24h.failed, 61);
    assert_eq!(h.counts.last_7d.failed, 63);
}

#[tokio::test]
async fn health_tells_the_last_import_and_poll_the_webhook_set_up_and_the_api_calls_without_a_budget() {
    let w = imported().await;
    let h = health(&w.svc, &t(), CW).await.unwrap();
    let import = h.last_success.import.expect("the import completed");
    assert!(import.job.is_some());
    assert_eq!((h.last_success.poll, h.webhook.state), (None, "not_registered"));
    assert_eq!((h.api_calls.budget_per_day, h.api_calls.remaining, h.api_calls.used_24h), (None, None, 0));
    assert!(h.waiting.is_empty());
    connections::save_settings(&w.svc, &t(), CW, &serde_json::json!({"auto_sync": "inbound"})).await.unwrap();
    // One notice run as work: its one read is counted.
    let notice = Work::SyncRecord(crate::usecases::sync_in::tests::notice(&w, "1", false));
    crate::usecases::work::run(&w.svc, &notice).await.unwrap();
    let h2 = health(&w.svc, &t(), CW).await.unwrap();
    assert_eq!(h2.api_calls.used_24h, 1, "{:?}", h2.api_calls);
    let h = health(&w.svc, &t(), CW).await.unwrap();
    assert_eq!(h.webhook.state, "set_up_by_hand", "no public URL to register");
    assert!(h.webhook.path.as_deref().is_some_and(|p| p.starts_with("/webhooks/connectwise/")), "{:?}", h.webhook);
    let json = serde_json::to_string(&h).unwrap();
    let secret = w.svc.secrets.webhook_secret(&t(), CW).await.unwrap();
    assert!(!json.contains(secret.expose()), "never the webhook secret");
}

#[tokio::test]
async fn health_of_another_tenant_or_an_unknown_connection_is_not_found() {
    let w = imported().await;
    let other = TenantId::parse("someone-else").unwrap();
    assert!(matches!(health(&w.svc, &other, CW).await, Err(DomainError::NotFound(_))));
    assert!(matches!(health(&w.svc, &t(), System::Halo).await, Err(DomainError::NotFound(_))));
}

fn unreadable(id: &str) -> ExternalRecord {
    ExternalRecord::Unreadable(Unreadable { id: Some(id.into()), reason: "name: invalid type: integer".into() })
}

#[tokio::test]
async fn a_failed_import_record_is_taken_in_again_once_the_system_serves_it_and_a_quick_second_retry_queues_the_same_work()
 {
    let w = imported().await;
    // A third company the system served unreadable: the import failed it.
    let mut records = vec![
        company("1", "Acme Ltd", "+1 555 0100", "2024-01-01T00:00:00Z"),
        company("2", "Bolt Co", "+1 555 0200", "2024-01-01T00:00:00Z"),
        unreadable("3"),
    ];
    set_companies(&w, records.clone());
    import::start_import(&w.svc, &t(), CW, import::StageSelection::One(Stage::Companies)).await.unwrap();
    drain(&w).await;
    let failed_entry = w
        .svc
        .store
        .logs(&t(), &crate::log::LogFilter { outcome: Some("failed".into()), ..Default::default() }, w.svc.clock.now())
        .await
        .unwrap()
        .pop()
        .expect("the unreadable company was logged as failed");
    assert_eq!(failed_entry.external_id.as_deref(), Some("3"));
    assert_eq!(w.events.0.lock().unwrap().last().map(|e| e.log_id.clone()), Some(failed_entry.id.clone()));

    // The cause is fixed in the system; the retry takes the record in.
    records[2] = company("3", "Crane Inc", "+1 555 0300", "2024-01-01T00:00:00Z");
    set_companies(&w, records);
    let first = retry::retry(&w.svc, &t(), &failed_entry.id).await.unwrap();
    let second = retry::retry(&w.svc, &t(), &failed_entry.id).await.unwrap();
    assert_eq!(first.queued, "sync_record");
    assert_eq!(first.dedup_id, second.dedup_id, "a second retry queues the same message (the queue drops it)");
    let queued: Vec<Work> = std::iter::from_fn(|| w.queue.pop_work()).collect();
    assert_eq!(queued.len(), 2);
    assert_eq!(queued[0].dedup_id(), queued[1].dedup_id());
    let Work::SyncRecord(msg) = &queued[0] else { panic!("a sync_record: {:?}", queued[0]) };
    let outcome = crate::usecases::sync_in::apply_notice(&w.svc, msg).await.unwrap();
    assert_eq!(outcome, Some(Outcome::Created), "taken in with inbound sync off: a person asked");
    assert!(
        w.svc.store.linked_id(&t(), CW, RecordKind::Company, "3").await.unwrap().is_some(),
        "the company is in the CRM, linked"
    );
    let again = crate::usecases::sync_in::apply_notice(&w.svc, msg).await.unwrap();
    assert_eq!(again, Some(Outcome::Created), "the same retry delivered twice finds its work done");
}

#[tokio::test]
async fn only_a_failed_entry_of_the_tenant_is_retried() {
    let w = imported().await;
    let created = w
        .svc
        .store
        .logs(&t(), &crate::log::LogFilter { outcome: Some("created".into()), ..Default::default() }, w.svc.clock.now())
        .await
        .unwrap()
        .pop()
        .expect("the import created companies");
    let err = retry::retry(&w.svc, &t(), &created.id).await.unwrap_err();
    assert!(matches!(&err, DomainError::Refused(m) if m.contains("did not fail")), "{err}");
    let err = retry::retry(&w.svc, &t(), "no-such-entry").await.unwrap_err();
    assert!(matches!(err, DomainError::NotFound(_)), "{err}");
    let now = w.svc.clock.now();
    seed(&w.svc, &[entry(now, "mine-failed", 10, CW, Direction::Import, failed("boom"))]).await;
    let other = TenantId::parse("someone-else").unwrap();
    let err = retry::retry(&w.svc, &other, "mine-failed").await.unwrap_err();
    assert!(matches!(err, DomainError::NotFound(_)), "another tenant's entry is unknown to it: {err}");
    assert!(w.queue.pop_work().is_none(), "nothing queued");
}
