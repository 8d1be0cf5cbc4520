//! The Syncro simulator over real HTTP: authentication, `/me`, users, paging with `meta`,
//! disabled customers, writes and their 422 and 404 bodies, the rate limit and fault injection.

// Helpers outside the #[test] functions unwrap too: a failed call is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Credentials, GenConfig, PAGE_SIZE, SimConfig, SimHandle, Simulator, Tenant};

async fn start(companies: usize) -> (SimHandle, Tenant) {
    let tenant = Tenant::generate(&GenConfig::with_companies(11, companies));
    let sim = Simulator::start(tenant.clone(), SimConfig::default(), 0).await.unwrap();
    (sim, tenant)
}

async fn call(
    sim: &SimHandle,
    creds: &Credentials,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, Option<String>) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", sim.api_url()))
        .header("Authorization", format!("Bearer {}", creds.api_key));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let retry = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    (status, resp.json().await.unwrap_or(Value::Null), retry)
}

async fn get(sim: &SimHandle, path: &str) -> (u16, Value) {
    let (s, v, _) = call(sim, &sim.credentials(), reqwest::Method::GET, path, None).await;
    (s, v)
}

#[tokio::test]
async fn me_answers_for_a_good_token_by_header_or_api_key_parameter() {
    let (sim, _) = start(10).await;
    let (status, me) = get(&sim, "/me").await;
    assert_eq!(status, 200);
    assert_eq!(me["subdomain"], "brightpath");
    assert!(me["user_id"].is_i64() && me["permissions"]["customer"]["read"] == true, "{me}");
    let url = format!("{}/me?api_key={}", sim.api_url(), sim.credentials().api_key);
    assert_eq!(reqwest::get(url).await.unwrap().status().as_u16(), 200);
}

#[tokio::test]
async fn a_wrong_token_gets_401_with_an_error_body() {
    let (sim, _) = start(10).await;
    let bad = Credentials { site: sim.base_url(), api_key: "nope".into() };
    let (status, body, _) = call(&sim, &bad, reqwest::Method::GET, "/customers", None).await;
    assert_eq!(status, 401);
    assert!(body["error"].as_str().is_some_and(|e| e.starts_with("Not authorized")), "{body}");
    assert_eq!(sim.stats().unauthorized, 1);
}

#[tokio::test]
async fn a_restricted_token_gets_the_permission_401_on_contacts_only() {
    let (sim, _) = start(10).await;
    let r = sim.restricted_credentials();
    let (status, _, _) = call(&sim, &r, reqwest::Method::GET, "/customers", None).await;
    assert_eq!(status, 200);
    let (status, body, _) = call(&sim, &r, reqwest::Method::GET, "/contacts", None).await;
    assert_eq!(status, 401);
    assert_eq!(body, json!({"error": "Not authorized. Please ask account admin to update your group permissions."}));
}

#[tokio::test]
async fn users_list_as_id_name_pairs_and_detail_with_email_and_group() {
    let (sim, tenant) = start(10).await;
    let (_, list) = get(&sim, "/users").await;
    let pairs = list["users"].as_array().unwrap();
    assert_eq!(pairs.len(), tenant.records("users").len());
    let id = pairs[0][0].as_i64().unwrap();
    assert!(pairs[0][1].is_string());
    let (status, detail) = get(&sim, &format!("/users/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(detail["user"]["id"], id);
    assert!(detail["user"]["group"].is_string() && detail["user"].get("admin").is_some(), "{detail}");
}

#[tokio::test]
async fn customers_page_by_the_fixed_size_and_hide_disabled_ones_unless_asked() {
    let (sim, tenant) = start(120).await;
    let all = tenant.records("customers");
    let enabled = all.iter().filter(|c| c["disabled"] != true).count();
    assert!(enabled < all.len());
    let (_, first) = get(&sim, "/customers").await;
    assert_eq!(first["meta"]["per_page"], PAGE_SIZE);
    assert_eq!(first["meta"]["total_entries"], enabled);
    let (_, with) = get(&sim, "/customers?include_disabled=true").await;
    let pages = with["meta"]["total_pages"].as_u64().unwrap();
    assert_eq!(pages as usize, all.len().div_ceil(PAGE_SIZE));
    let mut seen = HashSet::new();
    for page in 1..=pages {
        let (_, body) = get(&sim, &format!("/customers?include_disabled=true&page={page}")).await;
        assert_eq!(body["meta"]["page"], page);
        for c in body["customers"].as_array().unwrap() {
            assert!(seen.insert(c["id"].as_i64().unwrap()));
        }
    }
    assert_eq!(seen.len(), all.len());
    let (_, past) = get(&sim, &format!("/customers?page={}", pages + 5)).await;
    assert_eq!(past["customers"], json!([]));
}

#[tokio::test]
async fn contacts_come_bare_and_filter_by_customer() {
    let (sim, tenant) = start(30).await;
    let c = &tenant.records("contacts")[0];
    let (status, one) = get(&sim, &format!("/contacts/{}", c["id"])).await;
    assert_eq!(status, 200);
    assert_eq!(one["id"], c["id"], "contacts are not wrapped");
    let (_, list) = get(&sim, &format!("/contacts?customer_id={}", c["customer_id"])).await;
    assert!(list["contacts"].as_array().unwrap().iter().all(|x| x["customer_id"] == c["customer_id"]));
    let (status, missing) = get(&sim, "/contacts/1").await;
    assert_eq!((status, missing), (404, json!({"message": "Not found"})));
}

#[tokio::test]
async fn customers_and_leads_come_wrapped_in_their_singular_by_id_and_a_missing_one_is_404() {
    let (sim, tenant) = start(30).await;
    for (plural, singular) in [("customers", "customer"), ("leads", "lead")] {
        let first = &tenant.records(plural)[0];
        let (status, one) = get(&sim, &format!("/{plural}/{}", first["id"])).await;
        assert_eq!(status, 200, "{plural}");
        assert_eq!(one.as_object().unwrap().keys().collect::<Vec<_>>(), [singular], "{plural}: wrapped");
        assert_eq!(one[singular]["id"], first["id"], "{plural}");
        assert_eq!(one[singular]["updated_at"], first["updated_at"], "{plural}");
        let (status, missing) = get(&sim, &format!("/{plural}/987654321")).await;
        assert_eq!((status, missing), (404, json!({"message": "Not found"})), "{plural}");
    }
    let (status, missing) = get(&sim, "/users/987654321").await;
    assert_eq!((status, missing), (404, json!({"message": "Not found"})));
}

#[tokio::test]
async fn creates_and_partial_updates_change_only_what_is_sent_and_bad_emails_get_422() {
    let (sim, _) = start(10).await;
    let creds = sim.credentials();
    let post = reqwest::Method::POST;
    let (status, made, _) = call(
        &sim,
        &creds,
        post.clone(),
        "/customers",
        Some(json!({"business_name": "Real Business", "phone": "555-010-1234"})),
    )
    .await;
    assert_eq!(status, 200);
    let id = made["customer"]["id"].as_i64().unwrap();
    assert_eq!(made["customer"]["business_then_name"], "Real Business");
    let (_, updated, _) =
        call(&sim, &creds, reqwest::Method::PUT, &format!("/customers/{id}"), Some(json!({"email": "a@b.com"}))).await;
    assert_eq!(updated["customer"]["phone"], "555-010-1234");
    assert_eq!(updated["customer"]["email"], "a@b.com");
    let bad = json!({"business_name": "Real Business", "firstname": "First", "lastname": "Last", "email": "it is not an email"});
    let (status, body, _) = call(&sim, &creds, post.clone(), "/customers", Some(bad.clone())).await;
    assert_eq!(status, 422);
    assert_eq!(body["success"], false);
    assert_eq!(body["message"][0], "Email is not an email");
    assert_eq!(body["params"], bad);
    let (status, body, _) =
        call(&sim, &creds, post.clone(), "/contacts", Some(json!({"customer_id": id, "name": "A B", "email": "x"})))
            .await;
    assert_eq!(status, 422);
    assert!(body["record"].is_object() && body["errors"].is_string(), "{body}");
    let (status, contact, _) =
        call(&sim, &creds, post, "/contacts", Some(json!({"customer_id": id, "name": "Boba Fett"}))).await;
    assert_eq!(status, 200);
    assert_eq!(contact["name"], "Boba Fett");
}

#[tokio::test]
/// Syncro answers an unknown `customer_id` with 404 (the issue) and the documented not-found
/// body (psa-apis.md 3.5).
async fn contact_and_lead_writes_naming_an_unknown_customer_get_404_not_found() {
    let (sim, _) = start(3).await;
    let creds = sim.credentials();
    let (post, put) = (reqwest::Method::POST, reqwest::Method::PUT);
    let missing = 987_654_321;
    let (status, body, _) =
        call(&sim, &creds, post.clone(), "/contacts", Some(json!({"customer_id": missing, "name": "A B"}))).await;
    assert_eq!((status, &body), (404, &json!({"message": "Not found"})), "{body}");
    let (_, customers) = get(&sim, "/customers").await;
    let customer = customers["customers"][0]["id"].as_i64().unwrap();
    let (status, contact, _) =
        call(&sim, &creds, post.clone(), "/contacts", Some(json!({"customer_id": customer, "name": "A B"}))).await;
    assert_eq!(status, 200, "{contact}");
    let path = format!("/contacts/{}", contact["id"]);
    let (status, body, _) =
        call(&sim, &creds, put.clone(), &path, Some(json!({"name": "A B", "customer_id": missing}))).await;
    assert_eq!((status, &body), (404, &json!({"message": "Not found"})), "{body}");
    let (status, body, _) =
        call(&sim, &creds, post, "/leads", Some(json!({"first_name": "Lee", "customer_id": missing}))).await;
    assert_eq!((status, &body), (404, &json!({"message": "Not found"})), "{body}");
}

#[tokio::test]
async fn customers_filter_by_a_business_name_like_the_one_given_ignoring_case() {
    let (sim, _) = start(10).await;
    let creds = sim.credentials();
    let body = json!({"business_name": "Quayside Logistics Group"});
    let (_, made, _) = call(&sim, &creds, reqwest::Method::POST, "/customers", Some(body)).await;
    let id = &made["customer"]["id"];
    for probe in ["Quayside%20Logistics%20Group", "quayside", "LOGISTICS"] {
        let (_, found) = get(&sim, &format!("/customers?business_name={probe}&include_disabled=true")).await;
        let ids: Vec<&Value> = found["customers"].as_array().unwrap().iter().map(|c| &c["id"]).collect();
        assert!(ids.contains(&id), "{probe}: {found}");
    }
    let (_, none) = get(&sim, "/customers?business_name=Zzyzx%20Unmatched").await;
    assert_eq!((none["customers"].clone(), none["meta"]["total_entries"].clone()), (json!([]), json!(0)));
}

#[tokio::test]
async fn a_lead_written_with_a_business_name_shows_it_and_the_query_search_finds_it() {
    let (sim, tenant) = start(10).await;
    let creds = sim.credentials();
    let body = json!({"business_name": "Managed backup rollout", "status": "New"});
    let (status, made, _) = call(&sim, &creds, reqwest::Method::POST, "/leads", Some(body)).await;
    assert_eq!(status, 200);
    assert_eq!(made["lead"]["business_then_name"], "Managed backup rollout");
    let id = made["lead"]["id"].as_i64().unwrap();
    let (_, found) = get(&sim, "/leads?query=backup%20ROLLOUT").await;
    assert_eq!(found["leads"].as_array().unwrap().iter().map(|l| l["id"].as_i64()).collect::<Vec<_>>(), [Some(id)]);
    let generated = &tenant.records("leads")[0];
    let path = format!("/leads/{}", generated["id"]);
    let (_, kept, _) = call(&sim, &creds, reqwest::Method::PUT, &path, Some(json!({"status": "Won"}))).await;
    assert_eq!(kept["lead"]["business_then_name"], generated["business_then_name"], "a status change keeps the name");
    let (_, renamed, _) =
        call(&sim, &creds, reqwest::Method::PUT, &path, Some(json!({"business_name": "Renamed"}))).await;
    assert_eq!(renamed["lead"]["business_then_name"], "Renamed");
}

#[tokio::test]
async fn an_update_of_a_record_that_does_not_exist_is_404() {
    let (sim, _) = start(10).await;
    for plural in ["customers", "contacts", "leads"] {
        let path = format!("/{plural}/987654321");
        let (status, body, _) =
            call(&sim, &sim.credentials(), reqwest::Method::PUT, &path, Some(json!({"name": "X"}))).await;
        assert_eq!((status, body), (404, json!({"message": "Not found"})), "{plural}");
    }
}

#[tokio::test]
async fn above_the_per_minute_limit_requests_get_429_with_retry_after() {
    let (sim, _) = start(10).await;
    sim.set_requests_per_minute(Some(3));
    for _ in 0..3 {
        assert_eq!(get(&sim, "/me").await.0, 200);
    }
    let (status, body, retry) = call(&sim, &sim.credentials(), reqwest::Method::GET, "/me", None).await;
    assert_eq!(status, 429);
    assert!(body["error"].is_string());
    assert!(retry.and_then(|r| r.parse::<u64>().ok()).is_some_and(|s| (1..=60).contains(&s)));
    assert_eq!(sim.stats().throttled, 1);
    sim.set_rate_window(Duration::from_millis(200));
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(get(&sim, "/me").await.0, 200);
}

#[tokio::test]
async fn injected_failures_answer_their_status_then_stop() {
    let (sim, _) = start(10).await;
    sim.fail_next(2, 503);
    assert_eq!(get(&sim, "/leads").await.0, 503);
    assert_eq!(get(&sim, "/leads").await.0, 503);
    let (status, leads) = get(&sim, "/leads").await;
    assert_eq!(status, 200);
    assert!(leads["leads"].is_array() && leads["meta"]["total_pages"].is_u64());
    assert_eq!(sim.stats().injected_failures, 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_customer_read_by_id_embeds_the_contacts_its_generated_tenant_and_later_writes_give_it() {
    use crate::system::RunningSystem;
    use crate::webhooks::Kind;
    let (sim, tenant) = start(30).await;
    let one = tenant.records("contacts")[0]["customer_id"].as_i64().unwrap();
    let two = tenant.records("customers").iter().filter_map(|c| c["id"].as_i64()).find(|c| *c != one).unwrap();
    let generated = |customer: i64| -> Vec<Value> {
        tenant.records("contacts").iter().filter(|c| c["customer_id"] == customer).cloned().collect()
    };
    let embedded = |read: &Value| -> Vec<Value> { read["customer"]["contacts"].as_array().unwrap().clone() };
    let ids = |list: &[Value]| -> Vec<i64> { list.iter().map(|c| c["id"].as_i64().unwrap()).collect() };
    let (status, read) = get(&sim, &format!("/customers/{one}")).await;
    assert_eq!(status, 200);
    assert!(!generated(one).is_empty());
    assert_eq!(embedded(&read), generated(one), "as generated, in id order");

    let added = sim.create_as_person(Kind::Contact, json!({"customer_id": one, "name": "Ada Quill"})).unwrap();
    let moved = ids(&generated(one))[0];
    sim.edit_as_person(Kind::Contact, &moved.to_string(), json!({"name": "Moved Over", "customer_id": two})).unwrap();
    let creds = sim.credentials();
    let (status, _, _) = call(&sim, &creds, reqwest::Method::DELETE, &format!("/contacts/{added}"), None).await;
    assert_eq!(status, 200);

    let want_one: Vec<i64> = ids(&generated(one)).into_iter().filter(|c| *c != moved).collect();
    let mut want_two = ids(&generated(two));
    want_two.push(moved);
    want_two.sort_unstable();
    let (_, read_one) = get(&sim, &format!("/customers/{one}")).await;
    let (_, read_two) = get(&sim, &format!("/customers/{two}")).await;
    assert_eq!(ids(&embedded(&read_one)), want_one);
    assert_eq!(ids(&embedded(&read_two)), want_two);
    let shown = embedded(&read_two).into_iter().find(|c| c["id"] == moved).unwrap();
    assert_eq!(shown["name"], "Moved Over", "the embedded contact is the edited one");
    let (_, direct) = get(&sim, &format!("/contacts/{moved}")).await;
    assert_eq!(direct, shown);
}
