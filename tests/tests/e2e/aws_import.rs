//! End to end on AWS interfaces (a moto server): credentials saved through the
//! `validate-credentials` handler, the import started through the `http-api` handler, and
//! every page run by the stage functions' handlers, with this test playing the SQS event
//! source (receive, invoke, delete what succeeded, leave the failures). The result in
//! DynamoDB must equal the simulator's ground truth — also when every message is
//! delivered twice and a tenth of the invocations die after doing their work. An export
//! started through the `http-api` handler and run by the `export-record` handler, with
//! every message delivered twice and every second ConnectWise write committed but
//! answered 502, sends each record once. Sync in: with inbound sync switched on through
//! the `http-api` handler, a record changed in the simulator reaches the CRM through a poll
//! started there and run, page by page, by the `sync-worker` handler; a company deleted
//! there is found by an id reconciliation the same handler runs. A preview (dry run) run by
//! the stage handlers, with messages delivered twice and invocations dying, reports the
//! ground truth and leaves the tenant's records, links and jobs in DynamoDB as they were.
//! A page dead-lettered after its fifth delivery is listed through the `http-api` handler
//! (to its tenant only) and redriven into its SQS queue, and the job then reaches the
//! ground truth.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tandem_connectors::http::{RetryPolicy, Settings};
use tandem_domain::export::{ExportOutcome, ExportStatus};
use tandem_domain::external::ExternalRecord;
use tandem_domain::job::Job;
use tandem_domain::usecases::Services;
use tandem_domain::usecases::import;
use tandem_domain::usecases::{crm, export, preview};
use tandem_domain::work::Route;
use tandem_domain::{DomainError, JobId, RecordKind, Stage, System, TenantId};
use tandem_lambda::testing::{SAMPLE_TENANT_CLAIM, event_json, invocation};
use tandem_local::aws::{AwsNames, SqsEventSource, provision, sdk_config};
use tandem_local::sims::{self, RunningSim, Scale};
use tandem_local::{report, setup};
use tandem_sim::{CrmSeed, Expected, SimConfig};

fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").expect(
        "AWS_ENDPOINT_URL is not set: these tests need a moto server; run scripts/test, which starts one, \
         or start `.venv-ci/bin/moto_server -p 4566` and export AWS_ENDPOINT_URL=http://127.0.0.1:4566",
    )
}

struct Stack {
    svc: Services,
    source: SqsEventSource,
}

async fn stack() -> Stack {
    let id = JobId::new();
    let unique = &id.as_str()[..10];
    let names = AwsNames {
        table: format!("e2e-{unique}"),
        queue_prefix: format!("e2e-{unique}-import"),
        secret_prefix: format!("e2e-{unique}/connections"),
        event_bus: "default".into(),
        snapshot_bucket: format!("e2e-{unique}-snapshots"),
        visibility_timeout: Duration::from_secs(1),
    };
    let sdk = sdk_config(&endpoint()).await;
    let config = provision(&sdk, &names).await.unwrap();
    let mut svc = tandem_lambda::services(&sdk, &config);
    svc.connectors = Arc::new(tandem_connectors::Connectors::new(Settings {
        page_size: 25,
        retry: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(1),
            ..RetryPolicy::default()
        },
        pacing: tandem_connectors::Pacing::Off,
        ..Settings::default()
    }));
    Stack { source: SqsEventSource::new(&sdk, &config), svc }
}

fn api_event(method: &str, path: &str, tenant: &str, body: Value) -> ApiGatewayV2httpRequest {
    let mut e = event_json("validate-credentials.json");
    e["rawPath"] = json!(path);
    e["routeKey"] = json!(format!("{method} {path}"));
    e["requestContext"]["http"]["method"] = json!(method);
    e["requestContext"]["http"]["path"] = json!(path);
    e["requestContext"]["authorizer"]["jwt"]["claims"][SAMPLE_TENANT_CLAIM] = json!(tenant);
    e["body"] = json!(body.to_string());
    e["isBase64Encoded"] = json!(false);
    serde_json::from_value(e).unwrap()
}

fn body_json(body: &Option<Body>) -> Value {
    match body {
        Some(Body::Text(t)) => serde_json::from_str(t).unwrap(),
        other => panic!("unexpected body {other:?}"),
    }
}

/// The function's own handler for `route` (a stage's, the export's or the sync worker's).
async fn invoke_route(svc: &Services, route: Route, event: SqsEvent) -> SqsBatchResponse {
    let e = invocation(event);
    let stage = match route {
        Route::Stage(stage) => stage,
        Route::Export => return export_record::handler::handle(svc, e).await.unwrap(),
        Route::Sync => return sync_worker::handler::handle(svc, e).await.unwrap(),
    };
    match stage {
        Stage::Users => import_users::handler::handle(svc, e).await,
        Stage::Companies => import_companies::handler::handle(svc, e).await,
        Stage::Contacts => import_contacts::handler::handle(svc, e).await,
        Stage::Solutions => import_solutions::handler::handle(svc, e).await,
        Stage::Activities => import_activities::handler::handle(svc, e).await,
        Stage::Opportunities => import_opportunities::handler::handle(svc, e).await,
    }
    .unwrap()
}

async fn connect_and_start(s: &Stack, sim: &RunningSim, tenant: &str) -> JobId {
    connect_and_start_with(s, sim, tenant, json!({"stages": "all"})).await
}

/// Connects and starts an import (`body`: the import route's body) through the handlers.
async fn connect_and_start_with(s: &Stack, sim: &RunningSim, tenant: &str, body: Value) -> JobId {
    let t = TenantId::parse(tenant).unwrap();
    if let Some(h) = sim.syncro() {
        h.set_requests_per_minute(None); // its 429 handling has its own tests
    }
    setup::seed_crm(&s.svc, &t, &sim.crm_seed).await.unwrap();
    let path = format!("/connections/{}", sim.system);
    let save = api_event("POST", &path, tenant, sim.credentials.clone());
    let resp = validate_credentials::handler::handle(&s.svc, SAMPLE_TENANT_CLAIM, invocation(save)).await.unwrap();
    assert_eq!(resp.status_code, 201, "{:?}", resp.body);
    setup::map_typically(&s.svc, &t, sim.system, &sim.typical).await.unwrap();
    let start = api_event("POST", &format!("{path}/imports"), tenant, body);
    let resp = http_api::handler::handle(&s.svc, SAMPLE_TENANT_CLAIM, invocation(start)).await.unwrap();
    assert_eq!(resp.status_code, 202, "{:?}", resp.body);
    JobId::from_raw(body_json(&resp.body)["id"].as_str().unwrap())
}

/// The event source's invocation counters: how many ran, how many died.
#[derive(Default)]
struct Chaos {
    invocations: AtomicUsize,
    crashes: AtomicUsize,
}

/// One round of the event source: every queue's batch invoked `deliveries` times, and
/// with `crash_every`, one invocation in that many dies after doing its work (nothing is
/// deleted, so its messages come back).
async fn deliver_once(s: &Stack, deliveries: usize, crash_every: Option<usize>, chaos: &Chaos) {
    let svc = &s.svc;
    s.source
        .poll_once(|route, event| async move {
            let mut answer = None;
            for _ in 0..deliveries {
                answer = Some(invoke_route(svc, route, event.clone()).await);
            }
            let n = chaos.invocations.fetch_add(1, Ordering::SeqCst);
            match crash_every {
                Some(k) if n % k == k / 2 => {
                    chaos.crashes.fetch_add(1, Ordering::SeqCst);
                    None
                }
                _ => answer,
            }
        })
        .await
        .unwrap();
}

/// Plays the event source until the job ends; returns it and how many invocations died.
async fn wait_for(s: &Stack, tenant: &str, job: &JobId, deliveries: usize, crash_every: Option<usize>) -> (Job, usize) {
    let t = TenantId::parse(tenant).unwrap();
    let chaos = Chaos::default();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        deliver_once(s, deliveries, crash_every, &chaos).await;
        let j = match import::job(&s.svc, &t, job).await {
            Err(DomainError::NotFound(_)) => preview::job(&s.svc, &t, job).await.unwrap(),
            other => other.unwrap(),
        };
        if j.status.is_final() {
            return (j, chaos.crashes.load(Ordering::SeqCst));
        }
        assert!(Instant::now() < deadline, "the import did not finish: {:?}", j.progress);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn assert_matches(s: &Stack, system: System, tenant: &str, job: &Job, expected: &Expected, seed: &CrmSeed) {
    assert_eq!(report::differences(&report::job_counts(job), expected), Vec::<String>::new());
    let t = TenantId::parse(tenant).unwrap();
    let mut total = 0;
    for kind in RecordKind::ALL {
        let records = s.svc.store.all_records(&t, *kind).await.unwrap();
        let mut seen = std::collections::HashSet::new();
        for r in &records {
            if let Some(l) = r.link(system) {
                assert!(seen.insert(l.id.clone()), "{kind} {} linked twice", l.id);
            }
        }
        if *kind != RecordKind::List {
            total += records.len();
        }
    }
    let created: u64 = report::job_counts(job).values().filter_map(|m| m.get("created")).sum();
    assert_eq!(total, seed.users.len() + seed.companies.len() + seed.contacts.len() + created as usize);
}

async fn sim(system: System) -> RunningSim {
    sims::start(system, &Scale::new(11, 30), SimConfig::default(), 0).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connectwise_import_through_the_lambda_handlers_on_moto_reaches_the_ground_truth() {
    let s = stack().await;
    let sim = sim(System::ConnectWise).await;
    let job = connect_and_start(&s, &sim, "moto-clean").await;
    let (job, _) = wait_for(&s, "moto-clean", &job, 1, None).await;
    assert_matches(&s, sim.system, "moto-clean", &job, &sim.expected, &sim.crm_seed).await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_delivered_twice_and_a_tenth_of_invocations_dying_change_nothing() {
    let s = stack().await;
    let sim = sim(System::ConnectWise).await;
    let job = connect_and_start(&s, &sim, "moto-chaos").await;
    let (job, crashes) = wait_for(&s, "moto-chaos", &job, 2, Some(10)).await;
    assert!(crashes >= 1, "no invocation died: the test proved nothing");
    assert_matches(&s, sim.system, "moto-chaos", &job, &sim.expected, &sim.crm_seed).await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_through_the_lambda_handlers_on_moto_reports_the_ground_truth_and_writes_nothing_of_the_tenants() {
    let s = stack().await;
    let sim = sim(System::Halo).await;
    let tenant = "moto-preview";
    let job = connect_and_start_with(&s, &sim, tenant, json!({"stages": "all", "dry_run": true})).await;
    let (job, crashes) = wait_for(&s, tenant, &job, 2, Some(10)).await;
    assert!(job.dry_run && crashes >= 1, "{crashes} invocations died");
    assert_eq!(report::differences(&report::job_counts(&job), &sim.expected), Vec::<String>::new());
    let t = TenantId::parse(tenant).unwrap();
    let mut records = 0;
    for kind in RecordKind::ALL.iter().filter(|k| **k != RecordKind::List) {
        let stored = s.svc.store.all_records(&t, *kind).await.unwrap();
        assert!(stored.iter().all(|r| r.link(System::Halo).is_none()), "{kind}: nothing linked");
        records += stored.len();
    }
    let seed = &sim.crm_seed;
    assert_eq!(records, seed.users.len() + seed.companies.len() + seed.contacts.len(), "nothing created");
    assert!(import::jobs(&s.svc, &t, 10).await.unwrap().is_empty(), "no import job");
    let report = api_event("GET", &format!("/previews/{}", job.id), tenant, Value::Null);
    let resp = http_api::handler::handle(&s.svc, SAMPLE_TENANT_CLAIM, invocation(report)).await.unwrap();
    let body = body_json(&resp.body);
    assert_eq!(resp.status_code, 200, "{body}");
    assert!(!body["records"].as_array().unwrap().is_empty(), "{body}");
    sim.shutdown().await;
}

macro_rules! through_the_handlers_on_moto {
    ($($name:ident => $system:expr),+ $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let s = stack().await;
            let sim = sim($system).await;
            let tenant = format!("moto-{}", $system);
            let job = connect_and_start(&s, &sim, &tenant).await;
            let (job, _) = wait_for(&s, &tenant, &job, 1, None).await;
            assert_matches(&s, sim.system, &tenant, &job, &sim.expected, &sim.crm_seed).await;
            sim.shutdown().await;
        }
    )+};
}

through_the_handlers_on_moto!(
    a_halo_import_through_the_lambda_handlers_on_moto_reaches_the_ground_truth => System::Halo,
    a_syncro_import_through_the_lambda_handlers_on_moto_reaches_the_ground_truth => System::Syncro,
    a_salesforce_import_through_the_lambda_handlers_on_moto_reaches_the_ground_truth => System::Salesforce,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_through_the_export_function_on_moto_sends_each_record_once_despite_lost_answers() {
    let s = stack().await;
    let sim = sim(System::ConnectWise).await;
    let tenant = "moto-export";
    let job = connect_and_start(&s, &sim, tenant).await;
    wait_for(&s, tenant, &job, 1, None).await;
    let t = TenantId::parse(tenant).unwrap();
    sim.handle().lose_write_answers(2, 502);
    let company = crm::create(&s.svc, &t, RecordKind::Company, &json!({"name": "Moto Harbour Supply"})).await.unwrap();
    let contact = crm::create(
        &s.svc,
        &t,
        RecordKind::Contact,
        &json!({"first_name": "Ada", "email": "ada@motoharbour.example", "company": company.id()}),
    )
    .await
    .unwrap();
    let settings =
        api_event("PUT", "/connections/connectwise/settings", tenant, json!({"export_requires_opportunity": false}));
    let resp = http_api::handler::handle(&s.svc, SAMPLE_TENANT_CLAIM, invocation(settings)).await.unwrap();
    assert_eq!(resp.status_code, 200, "{:?}", resp.body);
    let start =
        api_event("POST", "/connections/connectwise/exports", tenant, json!({"kind": "contact", "id": contact.id()}));
    let resp = http_api::handler::handle(&s.svc, SAMPLE_TENANT_CLAIM, invocation(start)).await.unwrap();
    assert_eq!(resp.status_code, 202, "{:?}", resp.body);
    let id = JobId::from_raw(body_json(&resp.body)["id"].as_str().unwrap());
    let chaos = Chaos::default();
    let deadline = Instant::now() + Duration::from_secs(300);
    let done = loop {
        deliver_once(&s, 2, None, &chaos).await;
        let e = export::export(&s.svc, &t, &id).await.unwrap();
        if e.status != ExportStatus::Running {
            break e;
        }
        assert!(Instant::now() < deadline, "the export did not finish: {e:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(done.status, ExportStatus::Done, "{done:?}");
    let outcomes: Vec<(RecordKind, ExportOutcome)> = done.results.iter().map(|r| (r.kind, r.outcome)).collect();
    assert_eq!(outcomes.len(), 2, "{done:?}");
    assert!(outcomes.iter().all(|(_, o)| *o != ExportOutcome::Failed), "{done:?}");
    assert!(sim.handle().stats().lost_answers >= 1, "a write's answer was lost: the test proved nothing");
    let get = api_event("GET", &format!("/exports/{id}"), tenant, json!(null));
    let resp = http_api::handler::handle(&s.svc, SAMPLE_TENANT_CLAIM, invocation(get)).await.unwrap();
    assert_eq!(body_json(&resp.body)["status"], "done");
    assert_eq!(body_json(&resp.body)["stalled"], false);
    let connector = tandem_domain::usecases::connections::connector(&s.svc, &t, System::ConnectWise).await.unwrap();
    let stored = s.svc.store.record(&t, RecordKind::Company, company.id()).await.unwrap().unwrap();
    let ext = stored.link(System::ConnectWise).expect("the company is linked").id.clone();
    let probe = connector.get(RecordKind::Company, &ext).await.unwrap().expect("the company is in ConnectWise");
    let same: Vec<_> = connector
        .find_similar(&probe)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| matches!(r, ExternalRecord::Company(c) if c.name == "Moto Harbour Supply"))
        .collect();
    assert_eq!(same.len(), 1, "once in ConnectWise: {same:?}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_in_connectwise_reaches_the_crm_through_a_poll_run_by_the_sync_worker_on_moto() {
    let s = stack().await;
    // A small tenant: the first poll after the import reads every record once more.
    let sim = sims::start(System::ConnectWise, &Scale::new(11, 6), SimConfig::default(), 0).await.unwrap();
    let tenant = "moto-sync";
    let job = connect_and_start(&s, &sim, tenant).await;
    let (job, _) = wait_for(&s, tenant, &job, 1, None).await;
    assert!(job.status.is_final(), "{:?}", job.status);
    let t = TenantId::parse(tenant).unwrap();

    let settings = api_event("PUT", "/connections/connectwise/settings", tenant, json!({"auto_sync": "inbound"}));
    let resp = http_api::handler::handle(&s.svc, SAMPLE_TENANT_CLAIM, invocation(settings)).await.unwrap();
    assert_eq!(resp.status_code, 200, "{:?}", resp.body);
    assert_eq!(body_json(&resp.body)["auto_sync"], "inbound");

    // Change a linked contact's title in ConnectWise, through its API.
    let contact = s
        .svc
        .store
        .all_records(&t, RecordKind::Contact)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.link(System::ConnectWise).is_some())
        .expect("an imported contact");
    let ext = contact.link(System::ConnectWise).unwrap().id.clone();
    let connector = tandem_domain::usecases::connections::connector(&s.svc, &t, System::ConnectWise).await.unwrap();
    let Some(ExternalRecord::Contact(mut changed)) = connector.get(RecordKind::Contact, &ext).await.unwrap() else {
        panic!("contact {ext} is not in ConnectWise");
    };
    let title = "Head of Moto Sync";
    assert_ne!(contact.fields()["title"], json!(title));
    changed.title = Some(title.into());
    connector.update(&ExternalRecord::Contact(changed), &["title"]).await.unwrap();

    let poll = api_event("POST", "/connections/connectwise/sync/poll", tenant, json!(null));
    let resp = http_api::handler::handle(&s.svc, SAMPLE_TENANT_CLAIM, invocation(poll)).await.unwrap();
    assert_eq!(resp.status_code, 202, "{:?}", resp.body);
    assert!(!body_json(&resp.body)["stages"].as_array().unwrap().is_empty(), "{:?}", resp.body);

    // Play the sync queue's event source until the poll has read every stage.
    let chaos = Chaos::default();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        deliver_once(&s, 1, None, &chaos).await;
        let conn = tandem_domain::usecases::connections::connection(&s.svc, &t, System::ConnectWise).await.unwrap();
        if conn.completed_stages.keys().all(|stage| conn.polled.contains_key(stage)) {
            break;
        }
        assert!(Instant::now() < deadline, "the poll did not finish: polled {:?}", conn.polled);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(chaos.invocations.load(Ordering::SeqCst) >= 1, "the sync worker ran");

    let stored = s.svc.store.record(&t, RecordKind::Contact, contact.id()).await.unwrap().unwrap();
    assert_eq!(stored.fields()["title"], json!(title), "the CRM contact took the change");
    assert_eq!(stored.link(System::ConnectWise).map(|l| l.id.clone()), Some(ext), "still the one link");

    // A company deleted in ConnectWise with its webhook lost: an id reconciliation started
    // through the API finds it, and with propagate_deletes the CRM company goes.
    let settings = api_event("PUT", "/connections/connectwise/settings", tenant, json!({"propagate_deletes": true}));
    let resp = http_api::handler::handle(&s.svc, SAMPLE_TENANT_CLAIM, invocation(settings)).await.unwrap();
    assert_eq!(resp.status_code, 200, "{:?}", resp.body);
    let company = s
        .svc
        .store
        .all_records(&t, RecordKind::Company)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.link(System::ConnectWise).is_some())
        .expect("an imported company");
    let ext = company.link(System::ConnectWise).unwrap().id.clone();
    sim.handle().delete_as_person(tandem_sim::webhooks::Kind::Company, &ext).unwrap();
    let sweep = api_event("POST", "/connections/connectwise/sync/sweep", tenant, json!({}));
    let resp = http_api::handler::handle(&s.svc, SAMPLE_TENANT_CLAIM, invocation(sweep)).await.unwrap();
    assert_eq!(resp.status_code, 202, "{:?}", resp.body);
    let deadline = Instant::now() + Duration::from_secs(300);
    while s.svc.store.record(&t, RecordKind::Company, company.id()).await.unwrap().is_some() {
        deliver_once(&s, 1, None, &chaos).await;
        assert!(Instant::now() < deadline, "the deleted company is still in the CRM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let conn = tandem_domain::usecases::connections::connection(&s.svc, &t, System::ConnectWise).await.unwrap();
    let report = &conn.swept[&tandem_domain::Stage::Companies];
    assert_eq!((report.missing, report.held_back), (1, false), "{report:?}");
    sim.shutdown().await;
}

/// Plays the event source (each batch invoked `deliveries` times) until `done` holds.
async fn deliver_until(s: &Stack, deliveries: usize, what: &str, done: impl AsyncFn() -> bool) {
    let chaos = Chaos::default();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done().await {
        deliver_once(s, deliveries, None, &chaos).await;
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crm_edits_and_deletes_reach_halo_through_the_sync_worker_on_moto_once_though_each_message_comes_twice() {
    let s = stack().await;
    let sim = sims::start(System::Halo, &Scale::new(7, 6), SimConfig::default(), 0).await.unwrap();
    let tenant = "moto-two-way";
    let job = connect_and_start(&s, &sim, tenant).await;
    let (job, _) = wait_for(&s, tenant, &job, 1, None).await;
    assert!(job.status.is_final(), "{:?}", job.status);
    let t = TenantId::parse(tenant).unwrap();
    let call = async |method: &str, path: &str, body: Value| {
        let event = api_event(method, path, tenant, body);
        http_api::handler::handle(&s.svc, SAMPLE_TENANT_CLAIM, invocation(event)).await.unwrap()
    };
    let resp = call("PUT", "/connections/halo/settings", json!({"auto_sync": "two_way"})).await;
    assert_eq!((resp.status_code, body_json(&resp.body)["auto_sync"].clone()), (200, json!("two_way")));

    let mut linked = s.svc.store.all_records(&t, RecordKind::Company).await.unwrap();
    linked.retain(|r| r.link(System::Halo).is_some());
    let (edited, deleted) = (&linked[0], &linked[1]);
    let connector = tandem_domain::usecases::connections::connector(&s.svc, &t, System::Halo).await.unwrap();
    let name_there = async |record: &tandem_domain::records::Record| {
        let ext = record.link(System::Halo).unwrap().id.clone();
        connector.get(RecordKind::Company, &ext).await.unwrap().and_then(|r| r.field("name"))
    };
    let before = sim.handle().stats().writes();
    let path = format!("/records/company/{}", edited.id());
    let resp = call("PATCH", &path, json!({"name": "Moto Two-Way Renamed"})).await;
    assert_eq!(resp.status_code, 200, "{:?}", resp.body);
    deliver_until(&s, 2, "the rename reached Halo", async || {
        name_there(edited).await.as_deref() == Some("Moto Two-Way Renamed")
    })
    .await;
    assert_eq!(sim.handle().stats().writes() - before, 1, "one vendor write, though the message came twice");

    // Deletes propagate only when the settings say so.
    let resp = call("PUT", "/connections/halo/settings", json!({"propagate_deletes": true})).await;
    assert_eq!(resp.status_code, 200, "{:?}", resp.body);
    let resp = call("DELETE", &format!("/records/company/{}", deleted.id()), json!(null)).await;
    assert!(resp.status_code < 300, "{:?}", resp.body);
    deliver_until(&s, 2, "the delete reached Halo", async || name_there(deleted).await.is_none()).await;
    assert_eq!(sim.handle().stats().writes() - before, 2, "one delete, though its message came twice");
    sim.shutdown().await;
}

/// One round of the event source through the functions' handlers; answers each queue's
/// event and response.
async fn deliver_recording(s: &Stack) -> Vec<(Route, SqsEvent, SqsBatchResponse)> {
    let svc = &s.svc;
    let seen = std::sync::Mutex::new(Vec::new());
    s.source
        .poll_once(|route, event| {
            let seen = &seen;
            async move {
                let answer = invoke_route(svc, route, event.clone()).await;
                seen.lock().unwrap().push((route, event, answer.clone()));
                Some(answer)
            }
        })
        .await
        .unwrap();
    seen.into_inner().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_page_is_re_sent_as_a_resume_and_acknowledged_and_the_import_still_reaches_the_ground_truth() {
    let s = stack().await;
    let sim = sim(System::ConnectWise).await;
    let tenant = "moto-429";
    let job = connect_and_start(&s, &sim, tenant).await;
    // Every attempt the transport makes for the first page is answered 429.
    sim.handle().fail_next(4, 429);
    let rounds = deliver_recording(&s).await;
    let [(route, event, answer)] = &rounds[..] else { panic!("one queue had a message: {}", rounds.len()) };
    assert_eq!(*route, Route::Stage(Stage::Users));
    assert!(answer.batch_item_failures.is_empty(), "the original is acknowledged: {answer:?}");
    let original = tandem_domain::work::Work::decode(event.records[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(sim.handle().stats().injected_failures, 4);

    let users = s.source.queue(Route::Stage(Stage::Users)).unwrap();
    let queued = users.receive(10, Duration::ZERO).await.unwrap();
    let [resume] = &queued[..] else { panic!("one message queued: {queued:?}") };
    let tandem_domain::work::Work::Resume(resume) = tandem_domain::work::Work::decode(&resume.body).unwrap() else {
        panic!("a resume: {}", resume.body)
    };
    assert_eq!((*resume.work).clone(), original, "the resume carries the page itself");
    assert_eq!(resume.waits, 1);

    let (job, _) = wait_for(&s, tenant, &job, 1, None).await;
    assert_matches(&s, sim.system, tenant, &job, &sim.expected, &sim.crm_seed).await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_not_due_yet_is_reported_failed_held_back_until_due_and_not_run() {
    use tandem_domain::work::{ResumeMessage, Work};
    let s = stack().await;
    let page = Work::ImportPage(tandem_domain::job::StageMessage {
        tenant: TenantId::parse("moto-wait").unwrap(),
        system: System::Halo,
        job_id: JobId::from_raw("no-such-job"),
        stage: Stage::Contacts,
        cursor: tandem_domain::external::Cursor::start(),
        attempt: 0,
        dry_run: false,
    });
    let not_before = s.svc.clock.now().plus_seconds(4);
    let resume = Work::Resume(ResumeMessage { not_before, waits: 1, work: Box::new(page) });
    s.svc.queue.send(&resume).await.unwrap();

    let rounds = deliver_recording(&s).await;
    let [(route, event, answer)] = &rounds[..] else { panic!("one queue had a message: {}", rounds.len()) };
    assert_eq!(*route, Route::Stage(Stage::Contacts), "the resume went to its page's queue");
    let id = event.records[0].message_id.clone().unwrap();
    let failed: Vec<&str> = answer.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, vec![id.as_str()], "not due: reported, so it is not deleted");

    // Held back beyond the queue's visibility timeout (1 s) until it is due.
    let contacts = s.source.queue(Route::Stage(Stage::Contacts)).unwrap();
    assert_eq!(contacts.receive(10, Duration::from_secs(2)).await.unwrap(), Vec::new(), "still hidden after 2 s");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        assert!(Instant::now() < deadline, "the resume never came back");
        let rounds = deliver_recording(&s).await;
        if let [(_, event, answer)] = &rounds[..] {
            assert!(s.svc.clock.now() >= not_before, "it came back only once due");
            assert_eq!(event.records[0].message_id.as_deref(), Some(id.as_str()), "the same message");
            let receives = &event.records[0].attributes["ApproximateReceiveCount"];
            assert_eq!(receives, "2", "one wait, then it ran: far from maxReceiveCount");
            assert!(answer.batch_item_failures.is_empty(), "due: it ran (its job is unknown, nothing to do)");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(contacts.receive(10, Duration::ZERO).await.unwrap(), Vec::new(), "deleted once it ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_dead_lettered_on_moto_is_listed_and_redriven_through_the_http_api_handler_to_the_ground_truth() {
    let s = stack().await;
    let sim = sims::start(System::ConnectWise, &Scale::new(5, 10), SimConfig::default(), 0).await.unwrap();
    let tenant = "moto-dead";
    let job = connect_and_start(&s, &sim, tenant).await;
    // ConnectWise goes down for longer than the queue's five deliveries last.
    let cw = sim.connectwise().unwrap();
    cw.fail_next(10_000, 503);
    let (failed, _) = wait_for(&s, tenant, &job, 1, None).await;
    assert!(matches!(failed.status, tandem_domain::job::JobStatus::Failed(_)), "{:?}", failed.status);

    // Listed through the http-api handler, to its tenant only.
    let list = |as_tenant: &str| api_event("GET", "/dead-letters", as_tenant, Value::Null);
    let resp = http_api::handler::handle(&s.svc, SAMPLE_TENANT_CLAIM, invocation(list(tenant))).await.unwrap();
    let listed = body_json(&resp.body);
    assert_eq!(resp.status_code, 200, "{listed}");
    let entries = listed["dead_letters"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{listed}");
    assert_eq!(entries[0]["kind"], "import_page", "{listed}");
    assert_eq!(entries[0]["receives"].as_u64(), Some(u64::from(tandem_lambda::stage::MAX_RECEIVE_COUNT)), "{listed}");
    let id = entries[0]["id"].as_str().unwrap().to_string();
    let resp = http_api::handler::handle(&s.svc, SAMPLE_TENANT_CLAIM, invocation(list("moto-other"))).await.unwrap();
    assert_eq!(body_json(&resp.body)["dead_letters"].as_array().map(Vec::len), Some(0));
    let path = format!("/dead-letters/{id}/redrive");
    let theirs = api_event("POST", &path, "moto-other", Value::Null);
    let resp = http_api::handler::handle(&s.svc, SAMPLE_TENANT_CLAIM, invocation(theirs)).await.unwrap();
    assert_eq!(resp.status_code, 404, "{:?}", resp.body);

    // ConnectWise is back: the redrive sends the work into the SQS queue, and the stage
    // handlers run the job to the ground truth.
    cw.fail_next(0, 503);
    let redrive = api_event("POST", &path, tenant, Value::Null);
    let resp = http_api::handler::handle(&s.svc, SAMPLE_TENANT_CLAIM, invocation(redrive)).await.unwrap();
    let redriven = body_json(&resp.body);
    assert_eq!((resp.status_code, redriven["redrives"].as_u64()), (202, Some(1)), "{redriven}");
    let (job, _) = wait_for(&s, tenant, &job, 1, None).await;
    assert_eq!(job.status, tandem_domain::job::JobStatus::Completed, "{:?}", job.status);
    assert_matches(&s, sim.system, tenant, &job, &sim.expected, &sim.crm_seed).await;
    sim.shutdown().await;
}
