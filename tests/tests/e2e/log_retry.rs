//! Sync health, `POST /logs/{id}/retry` and the failure event over HTTP on the local runner,
//! against the stateful Salesforce simulator: an export whose opportunity Salesforce
//! refuses (no close date) is logged as failed and published as a `record.failed` event
//! that matches `docs/events/sync-failed.schema.json` and links back to its log entry; the
//! health view groups the failure with the record it hit; once the cause is fixed in the
//! CRM, retrying the entry (twice, quickly: one message) creates the opportunity in
//! Salesforce once. Another tenant can neither read nor retry the entry.

use crate::common::http;

use std::time::Duration;

use serde_json::{Value, json};
use tandem_connectors::http::{RetryPolicy, Settings};
use tandem_domain::external::{ExtOpportunity, ExternalRecord, OptionList};
use tandem_domain::ids::Stage;
use tandem_domain::usecases::import::{self, AllStages, StageSelection};
use tandem_domain::usecases::{connections, crm};
use tandem_domain::{RecordKind, System, TenantId};
use tandem_embedded::QueueConfig;
use tandem_local::runtime::LocalRuntime;
use tandem_local::sims::{self, Scale};
use tandem_local::{server, setup};
use tandem_sim::SimConfig;

fn settings() -> Settings {
    Settings {
        retry: RetryPolicy { max_attempts: 3, base_delay: Duration::from_millis(5), ..RetryPolicy::default() },
        pacing: tandem_connectors::Pacing::Off,
        ..Settings::default()
    }
}

fn schema() -> jsonschema::Validator {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/events/sync-failed.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::options().should_validate_formats(true).build(&schema).unwrap()
}

/// Works the queue until it has been idle a few rounds.
async fn settle(rt: &LocalRuntime) {
    let mut idle = 0;
    while idle < 3 {
        if rt.work_once(Duration::from_millis(30)).await.unwrap() {
            idle = 0;
        } else {
            idle += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_record_is_published_grouped_in_health_and_retried_once_its_cause_is_fixed() {
    let system = System::Salesforce;
    let sim = sims::start(system, &Scale::new(5, 12), SimConfig::default(), 0).await.unwrap();
    let mut rt = LocalRuntime::new(None, QueueConfig::default(), settings()).unwrap();
    let t = TenantId::parse(server::DEFAULT_TENANT).unwrap();
    setup::seed_crm(&rt.svc, &t, &sim.crm_seed).await.unwrap();
    connections::save_credentials(&rt.svc, &t, system, &sim.credentials).await.unwrap();
    setup::map_typically(&rt.svc, &t, system, &sim.typical).await.unwrap();
    let job = import::start_import(&rt.svc, &t, system, StageSelection::All(AllStages::All)).await.unwrap();
    rt.run_until_done(&t, &job.id, &|_| {}).await.unwrap();
    let (addr, _server) = server::serve(rt.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{addr}");
    rt.svc.tuning.public_url = Some(base.clone());

    // A company with an opportunity Salesforce refuses: it has no close date.
    let company_type = setup::exportable(&rt.svc, &t, system, Stage::Companies, OptionList::CompanyTypes).await;
    let status = setup::exportable(&rt.svc, &t, system, Stage::Opportunities, OptionList::OpportunityStatuses).await;
    let company = crm::create(
        &rt.svc,
        &t,
        RecordKind::Company,
        &json!({"name": "Dunmore Glassworks", "phone": "+1 555 201 0105", "company_type": company_type}),
    )
    .await
    .unwrap();
    let opportunity = crm::create(
        &rt.svc,
        &t,
        RecordKind::Opportunity,
        &json!({"name": "Dunmore glazing", "status": status, "company": company.id(), "value": 4800}),
    )
    .await
    .unwrap();
    let body = json!({"kind": "company", "id": company.id(), "include": ["details", "opportunities"]});
    let (code, started) = http::call(&base, "POST", "/connections/salesforce/exports", Some(body)).await;
    assert_eq!(code, 202, "{started}");
    settle(&rt).await;
    let (_, export) = http::call(&base, "GET", &format!("/exports/{}", started["id"].as_str().unwrap()), None).await;
    let outcomes: Vec<(&str, &str)> = export["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(outcomes, [("company", "created"), ("opportunity", "failed")], "{export}");

    // The failure event: what a notification needs, as the schema in the repo says.
    let events = rt.embedded().unwrap().events.published();
    let event = events.iter().rfind(|e| e.record.kind == RecordKind::Opportunity).expect("a failure event");
    let json = serde_json::to_value(event).unwrap();
    let errors: Vec<String> = schema().iter_errors(&json).map(|e| format!("{}: {e}", e.instance_path)).collect();
    assert!(errors.is_empty(), "{errors:?}\n{json}");
    assert_eq!((json["tenant"].as_str(), json["system"].as_str()), (Some("local"), Some("salesforce")));
    assert_eq!(json["direction"], "export");
    assert_eq!(json["record"]["crm_id"].as_str(), Some(opportunity.id().as_str()));
    assert_eq!(json["error"]["kind"], "invalid", "{json}");
    assert!(json["error"]["code"].as_str().is_some_and(|c| !c.is_empty()), "the vendor's code: {json}");
    let link = json["link"]["path"].as_str().unwrap().to_string();
    assert_eq!(json["link"]["url"].as_str(), Some(format!("{base}{link}").as_str()));
    let log_id = event.log_id.clone();

    // The link reads the entry back; the failure is grouped in the health view.
    let (code, entry) = http::call(&base, "GET", &link, None).await;
    assert_eq!((code, entry["id"].as_str()), (200, Some(log_id.as_str())), "{entry}");
    assert_eq!(entry["outcome"], "failed");
    let (code, health) = http::call(&base, "GET", "/connections/salesforce/health", None).await;
    assert_eq!(code, 200, "{health}");
    let group = health["failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["records"].as_array().unwrap().iter().any(|r| r["log_id"] == log_id.as_str()))
        .unwrap_or_else(|| panic!("the failure is grouped: {health}"));
    assert_eq!((&group["code"], &group["count"]), (&json["error"]["code"], &json!(1)), "{group}");
    assert!(health["last_success"]["import"]["job"].is_string(), "{health}");
    assert_eq!(health["webhook"]["state"], "not_registered");
    assert!(health["api_calls"]["used_24h"].as_u64().unwrap() > 0, "the export's calls were counted: {health}");

    // Another tenant sees none of it.
    let retry = format!("{link}/retry");
    assert_eq!(http::call_as(&base, "intruder", "GET", &link, None).await.0, 404);
    assert_eq!(http::call_as(&base, "intruder", "POST", &retry, None).await.0, 404);
    assert_eq!(http::call_as(&base, "intruder", "GET", "/connections/salesforce/health", None).await.0, 404);

    // The cause is fixed in the CRM (auto-sync is off, so nothing pushes it by itself);
    // the retry, asked twice quickly, queues one push, and the opportunity goes out once.
    crm::update(&rt.svc, &t, RecordKind::Opportunity, opportunity.id(), &json!({"close_date": "2027-03-31"}))
        .await
        .unwrap();
    let writes = sim.handle().stats().writes();
    let (code, first) = http::call(&base, "POST", &retry, None).await;
    assert_eq!(code, 202, "{first}");
    assert_eq!((first["queued"].as_str(), first["direction"].as_str()), (Some("sync_out"), Some("export")));
    let (code, second) = http::call(&base, "POST", &retry, None).await;
    assert_eq!((code, &second["dedup_id"]), (202, &first["dedup_id"]), "{second}");
    settle(&rt).await;
    assert_eq!(sim.handle().stats().writes() - writes, 1, "one create, however often the retry was asked");
    let linked = rt.svc.store.record(&t, RecordKind::Opportunity, opportunity.id()).await.unwrap().unwrap();
    let ext = linked.link(system).expect("the opportunity is linked").id.clone();
    let account = rt.svc.store.record(&t, RecordKind::Company, company.id()).await.unwrap().unwrap();
    let account = account.link(system).expect("the company went out first").id.clone();
    let connector = connections::connector(&rt.svc, &t, system).await.unwrap();
    let Some(ExternalRecord::Opportunity(ExtOpportunity { name, company_id, close_date, .. })) =
        connector.get(RecordKind::Opportunity, &ext).await.unwrap()
    else {
        panic!("the opportunity is in Salesforce")
    };
    assert_eq!((name.as_str(), company_id.as_deref()), ("Dunmore glazing", Some(account.as_str())));
    assert!(close_date.is_some_and(|d| d.starts_with("2027-03-31")), "sent as fixed");
    let (_, logs) = http::call(&base, "GET", "/logs?system=salesforce&object=opportunity&outcome=created", None).await;
    let pushed: Vec<&Value> =
        logs["entries"].as_array().unwrap().iter().filter(|e| e["crm_id"] == opportunity.id().as_str()).collect();
    assert_eq!(pushed.len(), 1, "the retried push is logged once: {logs}");
    assert_eq!(pushed[0]["direction"], "sync_out");

    // The entry that did not fail is not retried; an unknown one is not found.
    let created_id = pushed[0]["id"].as_str().unwrap();
    let path = tandem_domain::events::log_path(created_id);
    let (code, body) = http::call(&base, "POST", &format!("{path}/retry"), None).await;
    assert_eq!(code, 409, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("did not fail"), "{body}");
    assert_eq!(http::call(&base, "POST", "/logs/no-such-entry/retry", None).await.0, 404);
    assert_eq!(http::call(&base, "GET", "/logs/no-such-entry", None).await.0, 404);
}
