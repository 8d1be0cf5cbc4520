//! Salesforce's field map over the runner's HTTP API against the Salesforce simulator:
//! the describe-derived choices, a map that fits saved, one that cannot work refused with
//! 422 naming each field and why (nothing saved), a body that is no map refused with 400,
//! and no field map for another system; selective sync's rules checked and saved.

use crate::common::http;

use serde_json::{Value, json};

use tandem_connectors::http::Settings;
use tandem_domain::usecases::connections;
use tandem_domain::{System, TenantId};
use tandem_embedded::QueueConfig;
use tandem_local::runtime::LocalRuntime;
use tandem_local::server;

use http::call;
use tandem_local::sims::{self, Scale};
use tandem_sim::SimConfig;

fn message(body: &Value) -> String {
    body["error"]["message"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_map_is_saved_only_when_salesforces_describe_says_it_can_work() {
    let sim = sims::start(System::Salesforce, &Scale::new(3, 5), SimConfig::default(), 0).await.unwrap();
    let rt = LocalRuntime::new(None, QueueConfig::default(), Settings::default()).unwrap();
    let t = TenantId::parse(server::DEFAULT_TENANT).unwrap();
    connections::save_credentials(&rt.svc, &t, System::Salesforce, &sim.credentials).await.unwrap();
    let (addr, _server) = server::serve(rt.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{addr}");
    let path = "/connections/salesforce/field-map";

    let (status, view) = call(&base, "GET", &format!("{path}?target=account"), None).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["map"], Value::Null);
    let account = view["choices"]["Account"].as_array().unwrap();
    let name = account.iter().find(|f| f["name"] == "Name").expect("Account.Name is a choice");
    assert_eq!(name["required"], true);
    assert!(account.iter().all(|f| f["name"] != "Id"), "read-only fields are no choice");
    assert!(view["choices"]["Contact"].is_array() && view["choices"]["Opportunity"].is_array());

    let good = json!({
        "target": "account",
        "fields": [
            {"crm": "company.name", "salesforce": "Name"},
            {"crm": "contact.last_name", "salesforce": "LastName"},
            {"crm": "contact.email", "salesforce": "Email"},
            {"crm": "opportunity.name", "salesforce": "Name"},
            {"crm": "opportunity.close_date", "salesforce": "CloseDate"}
        ],
        "defaults": {"Opportunity": {"StageName": "Prospecting"}},
        "opportunity_stage": "proposal"
    });
    let (status, refused) = call(&base, "POST", "/connections/salesforce/field-map/import", None).await;
    assert_eq!(status, 409, "no initial import without a field map: {refused}");
    assert!(message(&refused).contains("save one first"), "{refused}");
    let (status, saved) = call(&base, "PUT", path, Some(good.clone())).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["map"]["fields"].as_array().map(Vec::len), Some(5));

    let bad = json!({
        "target": "account",
        "fields": [
            {"crm": "company.name", "salesforce": "Name"},
            {"crm": "company.phone", "salesforce": "No_Such__c"},
            {"crm": "opportunity.name", "salesforce": "CloseDate"}
        ],
        "opportunity_stage": "proposal"
    });
    let (status, refused) = call(&base, "PUT", path, Some(bad)).await;
    assert_eq!(status, 422, "{refused}");
    let why = message(&refused);
    for expected in [
        "Account.No_Such__c: Salesforce's Account has no such field",
        "Opportunity.CloseDate: a date field cannot hold text",
        "Contact.LastName: required by Salesforce, not mapped, no default",
        "Opportunity.StageName: required by Salesforce",
    ] {
        assert!(why.contains(expected), "{expected:?} not in {why}");
    }
    let (_, after) = call(&base, "GET", path, None).await;
    assert_eq!(after["map"], saved["map"], "a refused map changes nothing");
    assert_eq!(after["target"], "account", "the saved map's target");

    let (status, body) = call(&base, "PUT", path, Some(json!({"target": "deal", "fields": []}))).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = call(&base, "GET", "/connections/halo/field-map", None).await;
    assert_eq!(status, 404, "{body}");

    // Selective sync: the rules checked, saved with the moment they apply from.
    let path = "/connections/salesforce/selective-sync";
    let (status, none) = call(&base, "GET", path, None).await;
    assert_eq!((status, &none["selective_sync"]), (200, &Value::Null), "{none}");
    let rules = json!({"rules": [{"field": "opportunity.stage", "equals": "proposal"},
        {"field": "opportunity.value", "greater_than": 5000}]});
    let (status, saved) = call(&base, "PUT", path, Some(rules)).await;
    assert_eq!(status, 200, "{saved}");
    assert!(saved["selective_sync"]["since"].is_string(), "{saved}");
    let bad = json!({"rules": [{"field": "company.name", "greater_than": 3}, {"field": "deal.size", "equals": 1}]});
    let (status, refused) = call(&base, "PUT", path, Some(bad)).await;
    assert_eq!(status, 400, "{refused}");
    let why = message(&refused);
    assert!(why.contains("company.name: greater_than") && why.contains("deal.size: no such CRM field"), "{why}");
    let (_, after) = call(&base, "GET", path, None).await;
    assert_eq!(after, saved, "a refused change changes nothing");
    sim.shutdown().await;
}
