//! `GET /connections/{system}/health` over HTTP on the local runner, against a seeded log:
//! entries written at known times either side of the 24 h and 7 d boundaries, failures of
//! two errors, another system's entries and another tenant's; the answer counts and groups
//! them as the view says, and another tenant is told nothing.

use crate::common::http;

use serde_json::{Value, json};
use tandem_domain::log::{Direction, LogEntry, LogError, Outcome, SkipReason};
use tandem_domain::ports::ErrorKind;
use tandem_domain::usecases::connections;
use tandem_domain::{RecordId, RecordKind, System, TenantId};
use tandem_embedded::QueueConfig;
use tandem_local::runtime::LocalRuntime;
use tandem_local::server;
use tandem_local::sims::{self, Scale};
use tandem_sim::SimConfig;

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

#[tokio::test]
async fn health_over_http_counts_a_seeded_log_by_window_and_groups_its_failures() {
    let sim = sims::start(System::Halo, &Scale::new(2, 3), SimConfig::default(), 0).await.unwrap();
    let rt = LocalRuntime::new(None, QueueConfig::default(), tandem_connectors::Settings::default()).unwrap();
    let t = TenantId::parse(server::DEFAULT_TENANT).unwrap();
    connections::save_credentials(&rt.svc, &t, System::Halo, &sim.credentials).await.unwrap();
    let now = rt.svc.clock.now();
    let entry = |tenant: &TenantId, id: &str, ago: i64, system: System, direction: Direction, outcome: Outcome| {
        let mut e =
            LogEntry::of(id.into(), tenant, now.plus_seconds(-ago), system, direction, RecordKind::Contact, outcome);
        e.crm_id = Some(RecordId::from_raw(format!("crm-{id}")));
        e.external_id = Some(format!("ext-{id}"));
        e
    };
    let refused = |id: &str, ago: i64, code: &str| {
        let mut e = entry(&t, id, ago, System::Halo, Direction::SyncOut, Outcome::Failed("Email is not valid".into()));
        e.error = Some(LogError { kind: ErrorKind::Invalid, code: Some(code.into()), status: Some(400) });
        e
    };
    let other = TenantId::parse("other-msp").unwrap();
    let seeded = [
        entry(&t, "a", 10 * 60, System::Halo, Direction::Webhook, Outcome::Updated),
        entry(&t, "b", 23 * HOUR, System::Halo, Direction::Import, Outcome::Created),
        entry(&t, "c", 25 * HOUR, System::Halo, Direction::Import, Outcome::Linked),
        entry(&t, "d", 6 * DAY, System::Halo, Direction::SyncIn, Outcome::Skipped(SkipReason::Unchanged)),
        entry(&t, "e", 8 * DAY, System::Halo, Direction::Import, Outcome::Created),
        entry(&t, "f", HOUR, System::ConnectWise, Direction::Import, Outcome::Failed("elsewhere".into())),
        entry(&other, "g", HOUR, System::Halo, Direction::Import, Outcome::Failed("another tenant's".into())),
        refused("h", 2 * HOUR, "E_EMAIL"),
        refused("i", 3 * DAY, "E_EMAIL"),
        refused("j", 4 * DAY, "E_OTHER"),
    ];
    for e in &seeded {
        assert!(rt.svc.store.put_log(e).await.unwrap());
    }
    let (addr, _server) = server::serve(rt.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{addr}");

    let (status, h) = http::call(&base, "GET", "/connections/halo/health", None).await;
    assert_eq!(status, 200, "{h}");
    let day = &h["counts"]["last_24h"];
    let week = &h["counts"]["last_7d"];
    let pick =
        |c: &Value| ["created", "linked", "updated", "skipped", "failed", "conflict"].map(|k| c[k].as_u64().unwrap());
    assert_eq!(pick(day), [1, 0, 1, 0, 1, 0], "{day}");
    assert_eq!(pick(week), [1, 1, 1, 1, 3, 0], "{week}");
    let groups = h["failures"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{groups:?}");
    assert_eq!(
        (&groups[0]["code"], &groups[0]["count"], &groups[0]["records_total"]),
        (&json!("E_EMAIL"), &json!(2), &json!(2))
    );
    assert_eq!(groups[0]["records"][0]["log_id"], "h", "most recent first");
    assert_eq!(groups[0]["records"][0]["crm_id"], "crm-h");
    assert_eq!(groups[0]["records"][0]["external_id"], "ext-h");
    assert_eq!(groups[0]["first_at"].as_str().unwrap(), now.plus_seconds(-3 * DAY).to_string());
    assert_eq!((&groups[1]["code"], &groups[1]["count"]), (&json!("E_OTHER"), &json!(1)));
    assert_eq!(h["last_success"]["webhook"].as_str().unwrap(), now.plus_seconds(-10 * 60).to_string());
    assert_eq!(h["webhook"]["state"], "not_registered");
    assert_eq!(h["api_calls"], json!({"used_24h": 0, "budget_per_day": null, "remaining": null}));
    assert_eq!(h["waiting"], json!([]));

    let resp = reqwest::Client::new()
        .get(format!("{base}/connections/halo/health"))
        .header(server::TENANT_HEADER, other.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404, "another tenant has no Halo connection to see");
    let (status, _) = http::call(&base, "GET", "/connections/syncro/health", None).await;
    assert_eq!(status, 404, "no Syncro connection");
    let (status, body) = http::call(&base, "GET", "/connections/hubspot/health", None).await;
    assert_eq!(status, 400, "an unknown system is named: {body}");
}
