//! The API budget on the use cases: calls counted per unit of work, work waiting while the
//! budget is used up and resuming once calls leave the window.

use super::*;
use crate::usecases::health::health;
use crate::usecases::sync_in::tests::{CW, imported, notice, t};
use crate::usecases::work::{Ran, run};
use crate::work::Work;

async fn budget(w: &crate::usecases::testing::World, per_day: serde_json::Value) {
    crate::usecases::connections::save_settings(
        &w.svc,
        &t(),
        CW,
        &serde_json::json!({ "api_budget_per_day": per_day }),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn each_unit_of_work_adds_the_calls_its_connector_made_to_the_hours_count() {
    let w = imported().await;
    crate::usecases::connections::save_settings(&w.svc, &t(), CW, &serde_json::json!({"auto_sync": "inbound"}))
        .await
        .unwrap();
    for id in ["1", "2", "1"] {
        assert_eq!(run(&w.svc, &Work::SyncRecord(notice(&w, id, false))).await.unwrap(), Ran::Done);
    }
    let hours = hours(&w.svc, &t(), CW).await.unwrap();
    assert_eq!(hours.len(), 1, "one item for the hour");
    assert_eq!(hours[0].calls, 3, "one read per notice");
    w.clock.advance(3600);
    run(&w.svc, &Work::SyncRecord(notice(&w, "2", false))).await.unwrap();
    let hours = super::hours(&w.svc, &t(), CW).await.unwrap();
    assert_eq!(hours.iter().map(|h| h.calls).collect::<Vec<_>>(), vec![1, 3], "the next hour has its own item");
    let other = TenantId::parse("someone-else").unwrap();
    assert!(super::hours(&w.svc, &other, CW).await.unwrap().is_empty(), "counted for the tenant alone");
}

#[tokio::test]
async fn a_budget_used_up_makes_work_wait_until_the_window_passes() {
    let w = imported().await;
    crate::usecases::connections::save_settings(&w.svc, &t(), CW, &serde_json::json!({"auto_sync": "inbound"}))
        .await
        .unwrap();
    budget(&w, serde_json::json!(2)).await;
    let start = w.svc.clock.now();
    for id in ["1", "2"] {
        assert_eq!(run(&w.svc, &Work::SyncRecord(notice(&w, id, false))).await.unwrap(), Ran::Done);
    }
    let reads = w.connector.reads.load(std::sync::atomic::Ordering::SeqCst);

    // The third notice finds the budget used up: it waits, reading nothing.
    let third = Work::SyncRecord(notice(&w, "1", false));
    let Ran::Waits(resume) = run(&w.svc, &third).await.unwrap() else { panic!("the work waits") };
    assert_eq!(w.connector.reads.load(std::sync::atomic::Ordering::SeqCst), reads, "no call made");
    let free = crate::budget::hour_of(start).plus_seconds(24 * 3600);
    assert_eq!(resume.not_before, start.plus_seconds(12 * 3600), "a wait is held at most MAX_WAIT");
    let h = health(&w.svc, &t(), CW).await.unwrap();
    assert_eq!((h.api_calls.used_24h, h.api_calls.remaining, h.api_calls.resumes_at), (2, Some(0), Some(free)));
    assert_eq!(h.waiting.len(), 1, "{:?}", h.waiting);
    assert_eq!((h.waiting[0].work.as_str(), h.waiting[0].resumes_at), ("sync_record", resume.not_before));
    assert!(h.waiting[0].reason.contains("API budget of 2 calls per day"), "{}", h.waiting[0].reason);
    assert!(
        h.waiting[0].reason.contains(&free.to_string()),
        "the reason names when it resumes: {}",
        h.waiting[0].reason
    );
    let sent = w.queue.pop_work().expect("the resume copy was queued");
    assert_eq!(sent, Work::Resume(resume.clone()));

    // Twelve hours on, the budget is still used up: it waits again, until the window passed.
    w.clock.advance(12 * 3600);
    let Ran::Waits(again) = run(&w.svc, &sent).await.unwrap() else { panic!("still used up") };
    assert_eq!((again.waits, again.not_before), (2, free));
    let sent = w.queue.pop_work().expect("the second resume copy");

    // Past the window: it runs, and reads the record.
    w.clock.advance(free.unix() - w.svc.clock.now().unix());
    assert_eq!(run(&w.svc, &sent).await.unwrap(), Ran::Done);
    assert_eq!(w.connector.reads.load(std::sync::atomic::Ordering::SeqCst), reads + 1);
    let h = health(&w.svc, &t(), CW).await.unwrap();
    assert!(h.waiting.is_empty(), "nothing waits any more: {:?}", h.waiting);
    assert_eq!(h.api_calls.used_24h, 1, "the two calls of yesterday left the window");
}

#[tokio::test]
async fn removing_the_budget_lets_waiting_work_run() {
    let w = imported().await;
    crate::usecases::connections::save_settings(&w.svc, &t(), CW, &serde_json::json!({"auto_sync": "inbound"}))
        .await
        .unwrap();
    budget(&w, serde_json::json!(1)).await;
    run(&w.svc, &Work::SyncRecord(notice(&w, "1", false))).await.unwrap();
    assert!(matches!(run(&w.svc, &Work::SyncRecord(notice(&w, "2", false))).await.unwrap(), Ran::Waits(_)));
    budget(&w, serde_json::Value::Null).await;
    assert_eq!(run(&w.svc, &Work::SyncRecord(notice(&w, "2", false))).await.unwrap(), Ran::Done);
}
