//! Dead letters over HTTP on the local runner, against the ConnectWise simulator: a page
//! that fails on every delivery is dead-lettered, listed by `GET /dead-letters` (to its
//! tenant only), and once the system is back `POST /dead-letters/{id}/redrive` runs its
//! job again to the ground truth. Another tenant sees none of it and cannot redrive it.
//! Both answers match the OpenAPI document's schemas.

use std::time::Duration;

use serde_json::Value;
use tandem_domain::job::JobStatus;
use tandem_domain::usecases::connections;
use tandem_domain::usecases::import::{self, AllStages, StageSelection};
use tandem_domain::{System, TenantId};
use tandem_embedded::QueueConfig;
use tandem_local::runtime::LocalRuntime;
use tandem_local::sims::{self, Scale};
use tandem_local::{report, server, setup};
use tandem_sim::SimConfig;

use crate::common::http;

use crate::common::fail_fast as settings;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_page_is_listed_to_its_tenant_only_and_a_redrive_finishes_its_job_to_the_ground_truth() {
    let sim = sims::start(System::ConnectWise, &Scale::new(5, 10), SimConfig::default(), 0).await.unwrap();
    let queue = QueueConfig { visibility_timeout: Duration::from_secs(5), max_receives: 3, ..QueueConfig::default() };
    let rt = LocalRuntime::new(None, queue, settings()).unwrap();
    let (addr, _server) = server::serve(rt.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{addr}");
    let t = TenantId::parse("deadletters").unwrap();
    let other = "other-msp";
    setup::seed_crm(&rt.svc, &t, &sim.crm_seed).await.unwrap();
    connections::save_credentials(&rt.svc, &t, sim.system, &sim.credentials).await.unwrap();
    setup::map_typically(&rt.svc, &t, sim.system, &sim.typical).await.unwrap();

    // The system is down for longer than the queue's deliveries last.
    let cw = sim.connectwise().unwrap();
    cw.fail_next(1_000, 503);
    let job = import::start_import(&rt.svc, &t, sim.system, StageSelection::All(AllStages::All)).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(60), rt.run_until_done(&t, &job.id, &|_| {}))
        .await
        .expect("the job ends instead of staying running")
        .unwrap();
    assert!(matches!(ended.status, JobStatus::Failed(_)), "{:?}", ended.status);

    // Listed to its tenant: the page, its delivery count and the reason.
    let (status, listed) = http::call_as(&base, t.as_str(), "GET", "/dead-letters", None).await;
    assert_eq!(status, 200, "{listed}");
    let entries = listed["dead_letters"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{listed}");
    let entry = &entries[0];
    assert_eq!((entry["kind"].as_str(), entry["receives"].as_u64()), (Some("import_page"), Some(3)), "{entry}");
    assert_eq!(entry["work"]["job_id"].as_str(), Some(job.id.as_str()), "{entry}");
    assert!(entry["reason"].as_str().unwrap().contains("503"), "{entry}");
    assert_eq!((entry["redrives"].as_u64(), &entry["redriven_at"]), (Some(0), &Value::Null), "{entry}");
    assert_eq!(listed["next"], Value::Null, "one page");
    let id = entry["id"].as_str().unwrap().to_string();
    let doc = tandem_api::openapi::document_json();
    let wrong = crate::openapi::violations(&doc, "GET", "/dead-letters", 200, &listed);
    assert_eq!(wrong, Vec::<String>::new(), "the answer matches the OpenAPI document");

    // Another tenant sees nothing and cannot redrive it.
    let (status, theirs) = http::call_as(&base, other, "GET", "/dead-letters", None).await;
    assert_eq!((status, theirs["dead_letters"].as_array().map(Vec::len)), (200, Some(0)), "{theirs}");
    let (status, refused) = http::call_as(&base, other, "POST", &format!("/dead-letters/{id}/redrive"), None).await;
    assert_eq!(status, 404, "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains(&id), "{refused}");
    let still = import::job(&rt.svc, &t, &job.id).await.unwrap();
    assert!(matches!(still.status, JobStatus::Failed(_)), "another tenant's redrive ran nothing: {:?}", still.status);

    // The system is back: the redrive runs the job again from its checkpoint.
    cw.fail_next(0, 503);
    let (status, redriven) =
        http::call_as(&base, t.as_str(), "POST", &format!("/dead-letters/{id}/redrive"), None).await;
    assert_eq!(status, 202, "{redriven}");
    assert_eq!((redriven["id"].as_str(), redriven["redrives"].as_u64()), (Some(id.as_str()), Some(1)), "{redriven}");
    assert!(redriven["redriven_at"].is_string(), "{redriven}");
    let wrong = crate::openapi::violations(&doc, "POST", "/dead-letters/{id}/redrive", 202, &redriven);
    assert_eq!(wrong, Vec::<String>::new(), "the answer matches the OpenAPI document");
    let done =
        tokio::time::timeout(Duration::from_secs(60), rt.run_until_done(&t, &job.id, &|_| {})).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Completed, "{:?}", done.status);
    assert_eq!(report::differences(&report::job_counts(&done), &sim.expected), Vec::<String>::new());

    // The entry stays listed (until it expires) with its redrive counted, and nothing new
    // was dead-lettered.
    let (_, after) = http::call_as(&base, t.as_str(), "GET", "/dead-letters", None).await;
    let entries = after["dead_letters"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{after}");
    assert_eq!(entries[0]["redrives"].as_u64(), Some(1), "{after}");
}
