//! The Salesforce simulator's deletes over real HTTP: `DELETE /sobjects/{Type}/{Id}` to the
//! recycle bin, reads and updates of a deleted record, `query` against `queryAll`, the
//! delete log `sobjects/{Type}/deleted/`, and the sObject Collections delete.

// Helpers outside the #[test] functions unwrap too: a failed call is a failed test.
#![allow(clippy::unwrap_used)]

use reqwest::Method;
use serde_json::{Value, json};

use super::store::sf_datetime;
use super::{GenConfig, SimConfig, SimHandle, Simulator, Tenant};
use crate::common::now_unix;

async fn start() -> (SimHandle, String) {
    let sim =
        Simulator::start(Tenant::generate(&GenConfig::with_companies(3, 40)), SimConfig::default(), 0).await.unwrap();
    let c = sim.credentials();
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", &c.client_id)
        .append_pair("client_secret", &c.client_secret)
        .finish();
    let token: Value = reqwest::Client::new()
        .post(format!("{}/services/oauth2/token", sim.base_url()))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    (sim, bearer)
}

async fn call(sim: &SimHandle, bearer: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req =
        reqwest::Client::new().request(method, format!("{}/{path}", sim.api_url())).header("Authorization", bearer);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Creates an account; its id.
async fn account(sim: &SimHandle, bearer: &str, name: &str) -> String {
    let (status, body) = call(sim, bearer, Method::POST, "sobjects/Account", Some(json!({"Name": name}))).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_string()
}

fn code(body: &Value) -> &str {
    body[0]["errorCode"].as_str().unwrap_or_default()
}

fn ids_of(body: &Value, list: &str, field: &str) -> Vec<String> {
    body[list].as_array().unwrap().iter().map(|r| r[field].as_str().unwrap().to_string()).collect()
}

/// `?q=` of a SOQL query, encoded.
fn q(soql: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new()).append_pair("q", soql).finish()
}

/// `sobjects/Account/deleted/?start=..&end=..`, the times encoded.
fn window(start: i64, end: i64) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("start", &sf_datetime(start))
        .append_pair("end", &sf_datetime(end))
        .finish();
    format!("sobjects/Account/deleted/?{query}")
}

#[tokio::test]
async fn a_deleted_record_answers_204_then_entity_is_deleted_to_reads_updates_and_a_second_delete() {
    let (sim, bearer) = start().await;
    let id = account(&sim, &bearer, "Doomed Ltd").await;
    let path = format!("sobjects/Account/{id}");
    let (status, _) = call(&sim, &bearer, Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let (status, body) = call(&sim, &bearer, Method::GET, &path, None).await;
    assert_eq!((status, code(&body)), (404, "ENTITY_IS_DELETED"), "{body}");
    assert_eq!(body[0]["message"], json!("entity is deleted"));
    let (status, body) = call(&sim, &bearer, Method::PATCH, &path, Some(json!({"Phone": "1"}))).await;
    assert_eq!((status, code(&body)), (404, "ENTITY_IS_DELETED"), "{body}");
    let (status, body) = call(&sim, &bearer, Method::DELETE, &path, None).await;
    assert_eq!((status, code(&body)), (404, "ENTITY_IS_DELETED"), "{body}");
    let (status, body) = call(&sim, &bearer, Method::DELETE, "sobjects/Account/0018dZZZZZZZZZZAAA", None).await;
    assert_eq!((status, code(&body)), (404, "NOT_FOUND"), "an id never known is not found: {body}");
}

#[tokio::test]
async fn query_leaves_a_deleted_record_out_and_query_all_returns_it_marked_deleted() {
    let (sim, bearer) = start().await;
    let kept = account(&sim, &bearer, "Kept Ltd").await;
    let gone = account(&sim, &bearer, "Gone Ltd").await;
    call(&sim, &bearer, Method::DELETE, &format!("sobjects/Account/{gone}"), None).await;
    let soql = format!("SELECT Id, IsDeleted FROM Account WHERE Id IN ('{kept}', '{gone}') ORDER BY Id");
    let (_, live) = call(&sim, &bearer, Method::GET, &format!("query?{}", q(&soql)), None).await;
    assert_eq!(ids_of(&live, "records", "Id"), vec![kept.clone()]);
    let (_, all) = call(&sim, &bearer, Method::GET, &format!("queryAll?{}", q(&soql)), None).await;
    assert_eq!(ids_of(&all, "records", "Id"), [kept.clone(), gone.clone()]);
    assert_eq!(all["records"][1]["IsDeleted"], json!(true));
    let only_deleted = format!("SELECT Id FROM Account WHERE IsDeleted = true AND Id = '{gone}'");
    let (_, found) = call(&sim, &bearer, Method::GET, &format!("queryAll?{}", q(&only_deleted)), None).await;
    assert_eq!(ids_of(&found, "records", "Id"), [gone]);
}

#[tokio::test]
async fn query_all_pages_through_next_records_urls_that_keep_the_deleted_rows() {
    let (sim, bearer) = start().await;
    let mut gone = Vec::new();
    for n in 0..260 {
        let id = account(&sim, &bearer, &format!("Paged {n}")).await;
        if n < 220 {
            call(&sim, &bearer, Method::DELETE, &format!("sobjects/Account/{id}"), None).await;
            gone.push(id);
        }
    }
    let soql = "SELECT Id FROM Account WHERE IsDeleted = true AND Name LIKE 'Paged %' ORDER BY Id";
    let first = reqwest::Client::new()
        .get(format!("{}/queryAll?{}", sim.api_url(), q(soql)))
        .header("Authorization", &bearer)
        .header("Sforce-Query-Options", "batchSize=200")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!((first["totalSize"].as_u64(), first["done"].as_bool()), (Some(220), Some(false)));
    let next = first["nextRecordsUrl"].as_str().unwrap();
    assert!(next.contains("/queryAll/"), "{next}");
    let mut ids = ids_of(&first, "records", "Id");
    let mut url = Some(next.to_string());
    while let Some(u) = url {
        let page: Value = reqwest::Client::new()
            .get(format!("{}{u}", sim.base_url()))
            .header("Authorization", &bearer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.extend(ids_of(&page, "records", "Id"));
        url = page["nextRecordsUrl"].as_str().map(str::to_string);
    }
    assert_eq!(ids, gone);
}

#[tokio::test]
async fn the_delete_log_lists_deletes_of_the_window_only_and_refuses_a_bad_window() {
    let (sim, bearer) = start().await;
    let early = account(&sim, &bearer, "Early Ltd").await;
    let late = account(&sim, &bearer, "Late Ltd").await;
    // The org's clock is set back so the deletes fall in minutes that are over.
    sim.set_clock_offset(-600);
    call(&sim, &bearer, Method::DELETE, &format!("sobjects/Account/{early}"), None).await;
    sim.set_clock_offset(-180);
    call(&sim, &bearer, Method::DELETE, &format!("sobjects/Account/{late}"), None).await;
    sim.set_clock_offset(0);
    let now = now_unix();
    let (status, all) = call(&sim, &bearer, Method::GET, &window(now - 900, now), None).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(ids_of(&all, "deletedRecords", "id"), [early.clone(), late.clone()]);
    let date = all["deletedRecords"][0]["deletedDate"].as_str().unwrap();
    assert!(date.ends_with(".000+0000"), "{date}");
    assert_eq!(all["latestDateCovered"], json!(sf_datetime(now - now % 60)));
    assert!(all["earliestDateAvailable"].is_string(), "{all}");
    let (_, later) = call(&sim, &bearer, Method::GET, &window(now - 300, now), None).await;
    assert_eq!(ids_of(&later, "deletedRecords", "id"), [late], "the early delete is before the window");
    let (_, before) = call(&sim, &bearer, Method::GET, &window(now - 3600, now - 900), None).await;
    assert!(ids_of(&before, "deletedRecords", "id").is_empty(), "{before}");
    let (_, contacts) =
        call(&sim, &bearer, Method::GET, &window(now - 900, now).replace("Account", "Contact"), None).await;
    assert!(ids_of(&contacts, "deletedRecords", "id").is_empty(), "deletes are logged per object: {contacts}");
    for (start, end) in [(now, now - 600), (now - 16 * 86_400, now)] {
        let (status, body) = call(&sim, &bearer, Method::GET, &window(start, end), None).await;
        assert_eq!((status, code(&body)), (400, "INVALID_REPLICATION_DATE"), "{body}");
    }
}

#[tokio::test]
async fn a_collection_delete_answers_per_id_and_all_or_none_deletes_nothing_when_one_fails() {
    let (sim, bearer) = start().await;
    let a = account(&sim, &bearer, "One Ltd").await;
    let b = account(&sim, &bearer, "Two Ltd").await;
    let unknown = "0018dZZZZZZZZZZAAA";
    let (status, body) =
        call(&sim, &bearer, Method::DELETE, &format!("composite/sobjects?ids={a},{unknown}&allOrNone=true"), None)
            .await;
    assert_eq!(status, 200, "{body}");
    let codes: Vec<&str> =
        body.as_array().unwrap().iter().map(|r| r["errors"][0]["statusCode"].as_str().unwrap()).collect();
    assert_eq!(codes, ["ALL_OR_NONE_OPERATION_ROLLED_BACK", "NOT_FOUND"]);
    assert_eq!(
        call(&sim, &bearer, Method::GET, &format!("sobjects/Account/{a}"), None).await.0,
        200,
        "nothing deleted"
    );
    let (_, body) =
        call(&sim, &bearer, Method::DELETE, &format!("composite/sobjects?ids={a},{unknown},{b}"), None).await;
    let success: Vec<bool> = body.as_array().unwrap().iter().map(|r| r["success"].as_bool().unwrap()).collect();
    assert_eq!(success, [true, false, true]);
    assert_eq!(call(&sim, &bearer, Method::GET, &format!("sobjects/Account/{b}"), None).await.0, 404);
    let (status, body) = call(&sim, &bearer, Method::DELETE, "composite/sobjects?ids=", None).await;
    assert_eq!((status, code(&body)), (400, "REQUIRED_FIELD_MISSING"), "{body}");
}
