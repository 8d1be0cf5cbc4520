//! Snapshots and their restore on both adapters: the embedded store (in memory, and a data
//! directory whose snapshots are files) and the AWS adapters on moto (DynamoDB and S3).
//! A restore puts the tenant's records and links back exactly (changed ones restored,
//! deleted ones back, new ones and their links removed); restoring again changes nothing;
//! restoring the restore's own snapshot undoes it. Over the local HTTP API: the routes,
//! their bad input, and the snapshot taken by itself before the first import.

use crate::common::http;

use crate::common::synced as common;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use tandem_connectors::http::Settings;
use tandem_domain::ledger::Ledger;
use tandem_domain::records::Record;
use tandem_domain::table::RecordWrite;
use tandem_domain::usecases::snapshots::{self, Why};
use tandem_domain::usecases::{Services, crm};
use tandem_domain::{JobId, RecordKind, System, TenantId};
use tandem_embedded::QueueConfig;
use tandem_local::aws::{AwsNames, provision, sdk_config};
use tandem_local::runtime::LocalRuntime;
use tandem_local::server;

use http::call;

/// Every record of the tenant (fields and links) and every link's ledger entry.
type State = BTreeMap<String, Value>;

async fn state(svc: &Services, t: &TenantId) -> State {
    let mut out = State::new();
    for kind in [RecordKind::Company, RecordKind::Contact, RecordKind::Opportunity] {
        let page = svc.store.records(t, kind, None, 1000).await.unwrap();
        for r in page.records {
            for (system, link) in &r.meta().links {
                let key = (kind, link.id.clone());
                let ledger = svc.store.ledgers(t, *system, std::slice::from_ref(&key)).await.unwrap().remove(&key);
                let ledger = ledger.map(|l| Ledger { version: 0, ..l });
                out.insert(format!("ledger {system} {kind} {}", link.id), serde_json::to_value(ledger).unwrap());
            }
            out.insert(format!("{kind} {}", r.id()), json!({"fields": r.fields(), "links": r.meta().links}));
        }
    }
    out
}

async fn link(svc: &Services, t: &TenantId, record: &Record, ext: &str) -> Record {
    let current = svc.store.record(t, record.kind(), record.id()).await.unwrap().unwrap();
    let ledger = Ledger::pulled(System::Halo, &current, ext, None, svc.clock.now());
    let write = RecordWrite { record: current.clone(), previous: Some(current), ledger: Some(ledger), log: None };
    svc.store.write(t, write).await.unwrap()
}

async fn round_trip(svc: &Services, t: &TenantId) {
    let create = |kind, body: Value| async move { crm::create(svc, t, kind, &body).await.unwrap() };
    let acme = create(RecordKind::Company, json!({"name": "Acme", "phone": "555 0100"})).await;
    let globex = create(RecordKind::Company, json!({"name": "Globex"})).await;
    create(RecordKind::Contact, json!({"first_name": "Ada", "last_name": "Lane", "company": acme.id().as_str()})).await;
    link(svc, t, &acme, "101").await;
    let seeded = state(svc, t).await;

    let snap = snapshots::take(svc, t, Why::OnDemand { note: Some("before the edits".into()) }).await.unwrap();
    assert_eq!((snap.records, snap.links), (3, 1), "{snap:?}");

    crm::update(svc, t, RecordKind::Company, acme.id(), &json!({"name": "Acme Renamed", "phone": null})).await.unwrap();
    crm::delete(svc, t, RecordKind::Company, globex.id()).await.unwrap();
    let initech = create(RecordKind::Company, json!({"name": "Initech"})).await;
    link(svc, t, &initech, "202").await;
    let edited = state(svc, t).await;
    assert_ne!(edited, seeded);

    let done = snapshots::restore(svc, t, &snap.id).await.unwrap();
    assert_eq!(state(svc, t).await, seeded, "the tenant's records and links as they were");
    assert_eq!((done.records_restored, done.records_removed, done.records_unchanged), (2, 1, 1), "{done:?}");
    assert_eq!(done.links_removed, 1, "the link made since is gone");
    let found = crm::update(svc, t, RecordKind::Company, acme.id(), &json!({"website": "acme.example"})).await;
    assert!(found.is_ok(), "a restored record is a normal record again: {found:?}");
    crm::update(svc, t, RecordKind::Company, acme.id(), &json!({"website": null})).await.unwrap();

    let again = snapshots::restore(svc, t, &snap.id).await.unwrap();
    assert_eq!((again.records_restored, again.records_removed, again.links_restored), (0, 0, 0), "{again:?}");
    assert_eq!(state(svc, t).await, seeded, "restoring twice changes nothing");

    // The first restore's own snapshot undoes it.
    snapshots::restore(svc, t, &done.undo).await.unwrap();
    assert_eq!(state(svc, t).await, edited, "restoring the restore gives back what it replaced");

    let listed = snapshots::list(svc, t).await.unwrap();
    assert_eq!(listed[listed.len() - 1].id, snap.id, "newest first");
    let restored = listed.iter().find(|s| s.id == snap.id).unwrap();
    assert_eq!(restored.restored.len(), 2, "each restore is on the snapshot's record");
    assert_eq!(listed.iter().filter(|s| matches!(s.why, Why::BeforeRestore { .. })).count(), 3);
}

fn tenant() -> TenantId {
    TenantId::parse(&format!("snap{}", &JobId::new().as_str()[..8])).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_on_the_embedded_store_puts_every_record_and_link_back_and_can_be_undone() {
    let rt = LocalRuntime::new(None, QueueConfig::default(), Settings::default()).unwrap();
    round_trip(&rt.svc, &tenant()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_in_a_data_directory_are_files_that_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let t = tenant();
    let id = {
        let rt = LocalRuntime::new(Some(dir.path()), QueueConfig::default(), Settings::default()).unwrap();
        round_trip(&rt.svc, &t).await;
        crm::create(&rt.svc, &t, RecordKind::Company, &json!({"name": "Kept"})).await.unwrap();
        snapshots::take(&rt.svc, &t, Why::OnDemand { note: None }).await.unwrap().id
    };
    let files = std::fs::read_dir(dir.path().join("snapshots").join(t.as_str())).unwrap().count();
    assert!(files >= 5, "one file per snapshot: {files}");
    let rt = LocalRuntime::new(Some(dir.path()), QueueConfig::default(), Settings::default()).unwrap();
    let before = state(&rt.svc, &t).await;
    let done = snapshots::restore(&rt.svc, &t, &id).await.unwrap();
    assert_eq!(done.records_restored + done.records_removed, 0, "read back after the restart: {done:?}");
    assert_eq!(state(&rt.svc, &t).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_on_dynamodb_and_s3_puts_every_record_and_link_back_and_can_be_undone() {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL: run scripts/test, which starts moto");
    let unique = JobId::new().as_str()[..10].to_string();
    let names = AwsNames {
        table: format!("snap-{unique}"),
        queue_prefix: format!("snap-{unique}-import"),
        secret_prefix: format!("snap-{unique}/connections"),
        event_bus: "default".into(),
        snapshot_bucket: format!("snap-{unique}"),
        visibility_timeout: Duration::from_secs(1),
    };
    let sdk = sdk_config(&endpoint).await;
    let config = provision(&sdk, &names).await.unwrap();
    let svc = tandem_lambda::services(&sdk, &config);
    round_trip(&svc, &tenant()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_routes_take_list_and_restore_and_name_what_is_wrong() {
    let rt = LocalRuntime::new(None, QueueConfig::default(), Settings::default()).unwrap();
    let (addr, _server) = server::serve(rt.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{addr}");
    let (status, made) = call(&base, "POST", "/records/company", Some(json!({"name": "Acme"}))).await;
    assert_eq!(status, 201, "{made}");

    let (status, taken) = call(&base, "POST", "/snapshots", Some(json!({"note": "before the clean-up"}))).await;
    assert_eq!(status, 201, "{taken}");
    assert_eq!((taken["records"].as_u64(), taken["reason"].as_str()), (Some(1), Some("on_demand")), "{taken}");
    let (status, _) = call(&base, "POST", "/snapshots", None).await;
    assert_eq!(status, 201, "no body is fine");
    let (status, listed) = call(&base, "GET", "/snapshots", None).await;
    assert_eq!((status, listed["snapshots"].as_array().map(Vec::len)), (200, Some(2)), "{listed}");

    let (status, bad) = call(&base, "POST", "/snapshots", Some(json!({"why": "x"}))).await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad["error"]["message"].as_str().unwrap().contains("unknown field `why`"), "{bad}");
    let (status, missing) = call(&base, "POST", "/snapshots/0000000000000-nosuch/restore", None).await;
    assert_eq!(status, 404, "{missing}");

    let id = made["id"].as_str().unwrap();
    let (status, _) = call(&base, "DELETE", &format!("/records/company/{id}"), None).await;
    assert_eq!(status, 200, "deleted");
    let path = format!("/snapshots/{}/restore", taken["id"].as_str().unwrap());
    let (status, restored) = call(&base, "POST", &path, None).await;
    assert_eq!((status, restored["records_restored"].as_u64()), (200, Some(1)), "{restored}");
    let (status, back) = call(&base, "GET", &format!("/records/company/{id}"), None).await;
    assert_eq!((status, back["name"].as_str()), (200, Some("Acme")), "{back}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_is_taken_by_itself_before_the_first_import_and_before_auto_sync_first_starts() {
    let s = common::synced(System::Halo, "inbound").await;
    let t = common::tenant();
    let listed = snapshots::list(&s.rt.svc, &t).await.unwrap();
    let reasons: Vec<&Why> = listed.iter().map(|s| &s.why).collect();
    assert_eq!(
        reasons,
        vec![&Why::BeforeAutoSync { system: System::Halo }, &Why::BeforeFirstImport { system: System::Halo }],
        "newest first, one each"
    );
    let seeded = s.sim.crm_seed.companies.len() as u64;
    let first = listed.iter().find(|s| s.why == Why::BeforeFirstImport { system: System::Halo }).unwrap();
    assert!(first.records >= seeded, "the CRM as seeded, before the import: {first:?}");
    assert_eq!(first.links, 0, "nothing linked before the first import");

    // Neither is taken again: another import, auto-sync off and on again.
    let job = tandem_domain::usecases::import::start_import(
        &s.rt.svc,
        &t,
        System::Halo,
        tandem_domain::usecases::import::StageSelection::All(tandem_domain::usecases::import::AllStages::All),
    )
    .await
    .unwrap();
    s.rt.run_until_done(&t, &job.id, &|_| {}).await.unwrap();
    for mode in ["off", "inbound"] {
        tandem_domain::usecases::connections::save_settings(&s.rt.svc, &t, System::Halo, &json!({"auto_sync": mode}))
            .await
            .unwrap();
    }
    assert_eq!(snapshots::list(&s.rt.svc, &t).await.unwrap().len(), 2);
    s.sim.shutdown().await;
}
