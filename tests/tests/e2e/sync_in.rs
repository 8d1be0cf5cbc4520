//! Sync in end to end for every simulated system on the local runner, over real HTTP both
//! ways: a tenant imported from its simulator switches inbound sync on (ConnectWise and
//! Halo are registered through their APIs; Syncro and Salesforce are set up by hand, as
//! their admins would, with the URL and secret the settings answer gives); a person
//! renames a company in the system, the simulator calls the runner's webhook intake, and
//! the worker brings the CRM record in step; a forged call is refused and changes nothing;
//! a change whose webhook is lost is caught by the next poll, and so is a hard delete (the
//! id reconciliation; Salesforce's delete log).

use std::time::{Duration, Instant};

use serde_json::json;
use tandem_domain::log::Outcome;
use tandem_domain::records::Record;
use tandem_domain::usecases::{connections, sync_in};
use tandem_domain::{RecordKind, System};
use tandem_local::runtime::LocalRuntime;
use tandem_sim::webhooks::Kind;

use crate::common::synced as common;

use common::{synced as synced_with, tenant};

/// The shared set-up with inbound sync on.
async fn synced(system: System) -> common::Synced {
    synced_with(system, "inbound").await
}

/// A company imported from the system: its external id and CRM id.
async fn imported_company(rt: &LocalRuntime, system: System, skip: usize) -> (String, Record) {
    let companies = rt.svc.store.all_records(&tenant(), RecordKind::Company).await.unwrap();
    let record = companies.into_iter().filter(|c| c.link(system).is_some()).nth(skip).expect("an imported company");
    (record.link(system).unwrap().id.clone(), record)
}

/// Waits until the CRM company's name is `name`; how long it took.
async fn until_named(rt: &LocalRuntime, record: &Record, name: &str) -> Duration {
    let start = Instant::now();
    loop {
        let now = rt.svc.store.record(&tenant(), RecordKind::Company, record.id()).await.unwrap().unwrap();
        if now.fields()["name"] == json!(name) {
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the CRM company never became {name:?}: {now:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_company_renamed_in_the_system_reaches_the_crm_by_webhook(system: System) {
    let s = synced(system).await;
    let (ext_id, record) = imported_company(&s.rt, system, 0).await;
    let name = format!("Renamed by a person in {}", system.display_name());
    let field = s.sim.handle().company_name_field();
    s.sim.handle().edit_as_person(Kind::Company, &ext_id, json!({ field: name })).unwrap();
    until_named(&s.rt, &record, &name).await;
    let sent = s.sim.handle().webhooks_sent();
    assert!(sent.iter().any(|w| w.id == ext_id && w.status == Some(200)), "delivered and accepted: {sent:?}");
    // Acknowledged as the system expects (Salesforce resends an Outbound Message until it
    // reads its SOAP acknowledgement): no delivery was sent a second time.
    assert!(s.sim.handle().webhooks_settled(Duration::from_secs(5)).await);
    let sent = s.sim.handle().webhooks_sent();
    assert!(sent.iter().all(|w| w.attempt == 1), "no delivery retried: {sent:?}");
    s.sim.shutdown().await;
}

async fn a_forged_webhook_call_is_refused_and_changes_nothing(system: System) {
    let s = synced(system).await;
    let (ext_id, record) = imported_company(&s.rt, system, 1).await;
    let before = s.rt.svc.store.record(&tenant(), RecordKind::Company, record.id()).await.unwrap();
    let http = reqwest::Client::new();
    let forged =
        json!({"ID": ext_id.parse::<i64>().unwrap_or(1), "Type": "company", "Action": "updated", "id": ext_id});
    for url in [format!("{}?token=not-the-secret", s.webhook_url), s.webhook_url.replace("/webhooks/", "/webhooks/x")] {
        let resp = http.post(&url).json(&forged).send().await.unwrap();
        assert!(matches!(resp.status().as_u16(), 401 | 400 | 404), "{url}: {}", resp.status());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = s.rt.svc.store.record(&tenant(), RecordKind::Company, record.id()).await.unwrap();
    assert_eq!(before, after, "nothing changed");
    s.sim.shutdown().await;
}

async fn a_change_whose_webhook_is_lost_is_caught_by_the_next_poll(system: System) {
    let s = synced(system).await;
    let (ext_id, record) = imported_company(&s.rt, system, 2).await;
    s.sim.handle().drop_webhooks(1);
    let name = format!("Renamed while webhooks were lost ({})", system.display_name());
    let field = s.sim.handle().company_name_field();
    s.sim.handle().edit_as_person(Kind::Company, &ext_id, json!({ field: name })).unwrap();
    assert!(s.sim.handle().webhooks_settled(Duration::from_secs(5)).await);
    assert!(s.sim.handle().webhooks_sent().iter().all(|w| w.dropped || w.id != ext_id), "the webhook was lost");
    let started = sync_in::start_poll(&s.rt.svc, &tenant(), system).await.unwrap();
    assert!(!started.stages.is_empty());
    until_named(&s.rt, &record, &name).await;
    s.sim.shutdown().await;
}

async fn a_company_deleted_while_webhooks_are_lost_is_found_by_the_next_poll(system: System) {
    let s = synced(system).await;
    connections::save_settings(&s.rt.svc, &tenant(), system, &json!({"propagate_deletes": true})).await.unwrap();
    let (ext_id, record) = imported_company(&s.rt, system, 3).await;
    let linked_before = s.rt.svc.store.linked_external_ids(&tenant(), system, RecordKind::Company).await.unwrap();
    s.sim.handle().drop_webhooks(1);
    s.sim.handle().delete_as_person(Kind::Company, &ext_id).unwrap();
    assert!(s.sim.handle().webhooks_settled(Duration::from_secs(5)).await);
    sync_in::start_poll(&s.rt.svc, &tenant(), system).await.unwrap();
    let start = Instant::now();
    while s.rt.svc.store.record(&tenant(), RecordKind::Company, record.id()).await.unwrap().is_some() {
        assert!(start.elapsed() < Duration::from_secs(20), "the deleted company is still in the CRM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let linked = s.rt.svc.store.linked_external_ids(&tenant(), system, RecordKind::Company).await.unwrap();
    assert_eq!(linked.len(), linked_before.len() - 1, "only the deleted company went");
    assert!(!linked.contains(&ext_id));
    let logs = s.rt.svc.store.logs(&tenant(), &Default::default(), s.rt.svc.clock.now()).await.unwrap();
    assert!(
        logs.iter().any(|l| l.external_id.as_deref() == Some(ext_id.as_str()) && l.outcome == Outcome::Deleted),
        "the delete is in the log"
    );
    s.sim.shutdown().await;
}

macro_rules! per_system {
    ($($module:ident => $system:expr),* $(,)?) => {$(
        mod $module {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_company_renamed_in_the_system_reaches_the_crm_by_webhook() {
                super::a_company_renamed_in_the_system_reaches_the_crm_by_webhook($system).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_forged_webhook_call_is_refused_and_changes_nothing() {
                super::a_forged_webhook_call_is_refused_and_changes_nothing($system).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_change_whose_webhook_is_lost_is_caught_by_the_next_poll() {
                super::a_change_whose_webhook_is_lost_is_caught_by_the_next_poll($system).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_company_deleted_while_webhooks_are_lost_is_found_by_the_next_poll() {
                super::a_company_deleted_while_webhooks_are_lost_is_found_by_the_next_poll($system).await;
            }
        }
    )*};
}

per_system! {
    connectwise => System::ConnectWise,
    halo => System::Halo,
    syncro => System::Syncro,
    salesforce => System::Salesforce,
}
