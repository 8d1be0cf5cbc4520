//! The ConnectWise simulator over real HTTP: discovery, authentication, paging, the
//! query language, writes and the run-time knobs.

// Helpers outside the #[test] functions unwrap too: a failed call is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tandem_sim::connectwise::{Credentials, GenConfig, SimConfig, SimHandle, Simulator, Tenant};

struct Api {
    http: reqwest::Client,
    root: String,
    auth: String,
    client_id: Option<String>,
}

impl Api {
    fn new(sim: &SimHandle, creds: &Credentials) -> Self {
        let raw = format!("{}+{}:{}", creds.company_id, creds.public_key, creds.private_key);
        Api {
            http: reqwest::Client::new(),
            root: sim.api_url(),
            auth: format!("Basic {}", STANDARD.encode(raw)),
            client_id: Some(creds.client_id.clone()),
        }
    }

    fn url(&self, path: &str, params: &[(&str, &str)]) -> String {
        let base = format!("{}/{}", self.root, path.trim_start_matches('/'));
        if params.is_empty() {
            base
        } else {
            url::Url::parse_with_params(&base, params).map(String::from).unwrap_or(base)
        }
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let mut rb = self.http.request(method, url).header("Authorization", &self.auth);
        if let Some(c) = &self.client_id {
            rb = rb.header("clientId", c);
        }
        rb
    }

    async fn get_url(&self, url: &str) -> (u16, reqwest::header::HeaderMap, Value) {
        let resp = self.request(reqwest::Method::GET, url).send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    async fn get(&self, path: &str, params: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, Value) {
        self.get_url(&self.url(path, params)).await
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> (u16, Value) {
        let resp = self.request(method, &self.url(path, &[])).json(body).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.unwrap_or(Value::Null))
    }
}

async fn start(companies: usize) -> (SimHandle, Api, Tenant) {
    let tenant = Tenant::generate(&GenConfig::with_companies(11, companies));
    let sim = Simulator::start(tenant.clone(), SimConfig::default(), 0).await.unwrap();
    let api = Api::new(&sim, &sim.credentials());
    (sim, api, tenant)
}

/// `rel` -> URL from an RFC 5988 Link header.
fn links(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    let raw = headers.get("link").and_then(|v| v.to_str().ok()).unwrap_or_default();
    raw.split(", <")
        .filter_map(|part| {
            let (url, rel) = part.trim_start_matches('<').split_once(">; rel=\"")?;
            Some((rel.trim_end_matches('"').to_string(), url.to_string()))
        })
        .collect()
}

fn link(headers: &reqwest::header::HeaderMap, rel: &str) -> Option<String> {
    links(headers).into_iter().find(|(r, _)| r == rel).map(|(_, u)| u)
}

fn ids(body: &Value) -> Vec<i64> {
    body.as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn companyinfo_returns_the_codebase_and_404_for_an_unknown_company() {
    let (sim, _api, _t) = start(20).await;
    let creds = sim.credentials();
    let http = reqwest::Client::new();
    let resp = http.get(format!("{}/login/companyinfo/{}", sim.base_url(), creds.company_id)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["Codebase"], "v4_6_release/");
    assert_eq!(body["CompanyID"], creds.company_id.as_str());
    assert_eq!(body["IsCloud"], true);
    assert_eq!(body["SiteUrl"], sim.base_url().trim_start_matches("http://"));
    let resp = http.get(format!("{}/login/companyinfo/nosuchco", sim.base_url())).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "NotFound");
    sim.shutdown().await;
}

#[tokio::test]
async fn wrong_keys_get_401_with_a_connectwise_error_body() {
    let (sim, _api, _t) = start(20).await;
    let mut creds = sim.credentials();
    creds.private_key = "wrong".into();
    let (status, headers, body) = Api::new(&sim, &creds).get("system/info", &[]).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "Unauthorized");
    assert!(body["message"].as_str().unwrap().contains("key"), "{body}");
    assert!(headers["content-type"].to_str().unwrap().starts_with("application/json"));
    let mut creds = sim.credentials();
    creds.company_id = "othercompany".into();
    assert_eq!(Api::new(&sim, &creds).get("system/info", &[]).await.0, 401);
    let mut anonymous = Api::new(&sim, &sim.credentials());
    anonymous.auth = String::new();
    assert_eq!(anonymous.get("company/companies", &[]).await.0, 401);
    assert!(sim.stats().unauthorized >= 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_request_without_client_id_gets_401_naming_client_id() {
    let (sim, mut api, _t) = start(20).await;
    assert_eq!(api.get("system/info", &[]).await.0, 200);
    api.client_id = None;
    let (status, _, body) = api.get("system/info", &[]).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "Unauthorized");
    assert!(body["message"].as_str().unwrap().contains("clientId"), "{body}");
    sim.shutdown().await;
}

#[tokio::test]
async fn the_restricted_member_reads_system_info_but_gets_403_on_data() {
    let (sim, _api, _t) = start(20).await;
    let api = Api::new(&sim, &sim.restricted_credentials());
    let (status, _, info) = api.get("system/info", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(info["isCloud"], true);
    assert!(info["version"].as_str().unwrap().starts_with('v'));
    for path in
        ["company/companies", "company/contacts", "sales/opportunities", "procurement/catalog", "system/members"]
    {
        let (status, _, body) = api.get(path, &[("pageSize", "1")]).await;
        assert_eq!(status, 403, "{path}");
        assert_eq!(body["code"], "Forbidden");
        assert!(body["message"].as_str().unwrap().starts_with("You do not have access to"), "{body}");
    }
    assert_eq!(sim.stats().forbidden, 5);
    sim.shutdown().await;
}

#[tokio::test]
async fn paging_follows_link_headers_to_the_last_page_seeing_every_id_once() {
    let (sim, api, t) = start(1800).await;
    assert!(t.record_count() > 10_000);
    let (_, _, count) = api.get("company/contacts/count", &[]).await;
    let total = count["count"].as_u64().unwrap() as usize;
    assert_eq!(total, t.records("company/contacts").len());

    let mut seen = HashSet::new();
    let mut url = api.url("company/contacts", &[("pageSize", "1000"), ("orderBy", "id asc")]);
    let mut pages = 0;
    loop {
        let (status, headers, body) = api.get_url(&url).await;
        assert_eq!(status, 200);
        pages += 1;
        for id in ids(&body) {
            assert!(seen.insert(id), "id {id} seen twice");
        }
        assert!(link(&headers, "first").is_some() && link(&headers, "last").is_some());
        match link(&headers, "next") {
            Some(next) => {
                assert!(next.starts_with(&sim.base_url()), "{next}");
                assert!(next.contains("orderBy=id%20asc"), "{next}");
                assert_eq!(body.as_array().unwrap().len(), 1000);
                url = next;
            }
            None => {
                assert_eq!(link(&headers, "last").unwrap(), url, "the last page links to itself as last");
                break;
            }
        }
        assert!(pages < 20, "paging does not end");
    }
    assert_eq!(seen.len(), total);
    assert_eq!(pages, total.div_ceil(1000));

    let (_, headers, body) = api.get("system/members", &[("pageSize", "7"), ("page", "2")]).await;
    assert_eq!(body.as_array().unwrap().len(), 7);
    assert!(link(&headers, "prev").unwrap().contains("page=1"));
    assert!(link(&headers, "next").unwrap().contains("page=3"));
    sim.shutdown().await;
}

#[tokio::test]
async fn page_size_above_1000_is_clamped_and_a_page_past_the_end_is_empty() {
    let (sim, api, _t) = start(600).await;
    let (status, _, body) = api.get("company/contacts", &[("pageSize", "5000")]).await;
    assert_eq!(status, 200);
    assert_eq!(body.as_array().unwrap().len(), 1000);
    let (_, headers, body) = api.get("company/companies", &[]).await;
    assert_eq!(body.as_array().unwrap().len(), 25, "default page size");
    assert!(link(&headers, "next").is_some());
    let (status, headers, body) = api.get("company/companies", &[("page", "999")]).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!([]));
    assert!(link(&headers, "next").is_none());
    let (status, _, body) = api.get("company/companies", &[("page", "0")]).await;
    assert_eq!(status, 400, "{body}");
    sim.shutdown().await;
}

#[tokio::test]
async fn last_updated_and_info_last_updated_conditions_filter_alike() {
    let (sim, api, t) = start(300).await;
    let cutoff = "2024-01-01T00:00:00Z";
    let want: HashSet<i64> = t
        .records("company/companies")
        .iter()
        .filter(|r| r["_info"]["lastUpdated"].as_str().unwrap() > cutoff)
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert!(!want.is_empty() && want.len() < t.records("company/companies").len());
    for cond in [format!("lastUpdated > [{cutoff}]"), format!("_info/lastUpdated > [{cutoff}]")] {
        let (status, _, body) = api.get("company/companies", &[("conditions", &cond), ("pageSize", "1000")]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(ids(&body).into_iter().collect::<HashSet<_>>(), want, "{cond}");
        let (_, _, count) = api.get("company/companies/count", &[("conditions", &cond)]).await;
        assert_eq!(count["count"].as_u64().unwrap() as usize, want.len());
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn and_or_parentheses_in_and_like_conditions_select_the_right_records() {
    let (sim, api, t) = start(300).await;
    let companies = t.records("company/companies");
    let count = |pred: &dyn Fn(&Value) -> bool| companies.iter().filter(|r| pred(r)).count();
    let cases: Vec<(&str, usize)> = vec![
        (
            "deletedFlag = false and (status/name = \"Active\" or status/name = \"Credit Hold\")",
            count(&|r| {
                r["deletedFlag"] == false && matches!(r["status"]["name"].as_str(), Some("Active" | "Credit Hold"))
            }),
        ),
        ("types/name = \"Vendor\"", count(&|r| r["types"].as_array().unwrap().iter().any(|t| t["name"] == "Vendor"))),
        (
            "status/id in (2, 3) OR deletedFlag = true",
            count(&|r| matches!(r["status"]["id"].as_i64(), Some(2 | 3)) || r["deletedFlag"] == true),
        ),
        ("name like \"summit%\"", count(&|r| r["name"].as_str().unwrap().to_lowercase().starts_with("summit"))),
        ("name contains \"dental\"", count(&|r| r["name"].as_str().unwrap().to_lowercase().contains("dental"))),
    ];
    for (cond, want) in cases {
        let (status, _, body) = api.get("company/companies", &[("conditions", cond), ("pageSize", "1000")]).await;
        assert_eq!(status, 200, "{cond}: {body}");
        assert_eq!(body.as_array().unwrap().len(), want, "{cond}");
    }
    let contact = &t.records("company/contacts")[3];
    let email = contact["communicationItems"][0]["value"].as_str().unwrap().to_uppercase();
    let child = format!("communicationItems/value = \"{email}\"");
    let (_, _, body) = api.get("company/contacts", &[("childConditions", &child)]).await;
    assert!(ids(&body).contains(&contact["id"].as_i64().unwrap()), "{body}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_malformed_condition_gets_400_naming_the_problem() {
    let (sim, api, _t) = start(20).await;
    for (cond, expect) in [
        ("name = ", "expected a value"),
        ("name == \"x\"", "unknown operator '=='"),
        ("(id = 1", "missing ')'"),
        ("name = \"open", "unterminated string"),
    ] {
        let (status, _, body) = api.get("company/companies", &[("conditions", cond)]).await;
        assert_eq!(status, 400, "{cond}");
        assert_eq!(body["code"], "InvalidObject");
        let msg = body["message"].as_str().unwrap();
        assert!(msg.starts_with("conditions is invalid") && msg.contains(expect), "{cond}: {msg}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn order_by_desc_sorts_descending_and_fields_keep_only_the_named_paths() {
    let (sim, api, _t) = start(100).await;
    let (_, _, body) = api.get("company/companies", &[("orderBy", "id desc"), ("pageSize", "50")]).await;
    let got = ids(&body);
    let mut sorted = got.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(got, sorted);
    let (_, _, body) = api.get("company/companies", &[("orderBy", "name desc"), ("pageSize", "1000")]).await;
    let names: Vec<String> =
        body.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_lowercase()).collect();
    assert!(names.windows(2).all(|w| w[0] >= w[1]));
    let (_, _, body) =
        api.get("company/contacts", &[("fields", "id,company/name,_info/lastUpdated"), ("pageSize", "3")]).await;
    for r in body.as_array().unwrap() {
        let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
        assert!(keys.iter().all(|k| ["id", "company", "_info"].contains(&k.as_str())), "{r}");
        assert!(r["_info"].as_object().unwrap().len() == 1);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn post_creates_with_201_and_patch_updates_and_bumps_last_updated() {
    let (sim, api, t) = start(40).await;
    let company = &t.records("company/companies")[0];
    let body = json!({
        "firstName": "Estella", "lastName": "Mcdowell",
        "company": {"id": company["id"]},
        "types": [{"id": "1"}],
        "communicationItems": [{"type": {"id": "1"}, "value": "estella@example.com", "defaultFlag": true, "communicationType": "Email"}],
    });
    let (status, created) = api.send(reqwest::Method::POST, "company/contacts", &body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    let max_before = t.records("company/contacts").iter().map(|r| r["id"].as_i64().unwrap()).max().unwrap();
    assert!(id > max_before);
    assert_eq!(created["company"]["name"], company["name"]);
    assert_eq!(created["types"][0]["name"], "Decision Maker");
    assert!(created["communicationItems"][0]["id"].as_i64().is_some());
    let first_stamp = created["_info"]["lastUpdated"].as_str().unwrap().to_string();
    assert!(first_stamp.as_str() > "2025-06-30T00:00:00Z", "stamped with the server's clock: {first_stamp}");

    let old = &t.records("company/contacts")[0];
    let old_id = old["id"].as_i64().unwrap();
    let patch = json!([
        {"op": "replace", "path": "/firstName", "value": "Renamed"},
        {"op": "replace", "path": "inactiveFlag", "value": true},
        {"op": "add", "path": "/communicationItems/0", "value": {"type": {"id": 1}, "value": "x@y.com", "communicationType": "Email", "defaultFlag": false}},
    ]);
    let (status, patched) = api.send(reqwest::Method::PATCH, &format!("company/contacts/{old_id}"), &patch).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["firstName"], "Renamed");
    assert_eq!(patched["inactiveFlag"], true);
    assert!(patched["_info"]["lastUpdated"].as_str().unwrap() > old["_info"]["lastUpdated"].as_str().unwrap());
    assert_eq!(patched["_info"]["dateEntered"], old["_info"]["dateEntered"]);
    let (_, _, fetched) = api.get(&format!("company/contacts/{old_id}"), &[]).await;
    assert_eq!(fetched, patched);
    let cond = format!("lastUpdated > [{}]", old["_info"]["lastUpdated"].as_str().unwrap());
    let (_, _, recent) = api.get("company/contacts", &[("conditions", &format!("id = {old_id} and {cond}"))]).await;
    assert_eq!(ids(&recent), vec![old_id]);

    let (status, replaced) = api
        .send(
            reqwest::Method::PUT,
            &format!("company/contacts/{id}"),
            &json!({"firstName": "Only", "lastName": "Name"}),
        )
        .await;
    assert_eq!(status, 200, "{replaced}");
    assert!(replaced.get("company").is_none());
    let resp =
        api.request(reqwest::Method::DELETE, &api.url(&format!("company/contacts/{id}"), &[])).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let (status, _, body) = api.get(&format!("company/contacts/{id}"), &[]).await;
    assert_eq!(status, 404);
    assert_eq!(body, json!({"code": "NotFound", "message": format!("Contact {id} not found")}));
    sim.shutdown().await;
}

#[tokio::test]
async fn invalid_writes_get_400_invalid_object_with_the_fields_named() {
    let (sim, api, t) = start(20).await;
    let (status, body) = api.send(reqwest::Method::POST, "company/contacts", &json!({"lastName": "NoFirst"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "InvalidObject");
    assert_eq!(body["message"], "contact object is invalid");
    assert_eq!(body["errors"][0]["code"], "MissingRequiredField");
    assert_eq!(body["errors"][0]["field"], "firstName");
    let existing = t.records("company/companies")[0]["identifier"].as_str().unwrap().to_string();
    let (status, body) =
        api.send(reqwest::Method::POST, "company/companies", &json!({"identifier": existing, "name": "Dup"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["code"], "ObjectExists");
    // An update that changes another field keeps its own identifier; one that takes
    // another company's identifier is refused the same way.
    let companies = t.records("company/companies");
    let (first, second) = (companies[0]["id"].as_i64().unwrap(), &companies[1]["identifier"]);
    let rename = json!([{"op": "replace", "path": "/name", "value": "Renamed"}]);
    let (status, body) = api.send(reqwest::Method::PATCH, &format!("company/companies/{first}"), &rename).await;
    assert_eq!(status, 200, "{body}");
    let take = json!([{"op": "replace", "path": "/identifier", "value": second}]);
    let (status, body) = api.send(reqwest::Method::PATCH, &format!("company/companies/{first}"), &take).await;
    assert_eq!((status, body["errors"][0]["code"].as_str()), (400, Some("ObjectExists")), "{body}");
    let (status, body) = api
        .send(reqwest::Method::POST, "company/contacts", &json!({"firstName": "A", "company": {"id": 999_999}}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["field"], "company");
    let (status, body) = api.send(reqwest::Method::PATCH, "company/contacts/999999", &json!([])).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("NotFound")));
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_endpoints_answer_404_connectwise_api() {
    let (sim, api, _t) = start(20).await;
    let (status, _, body) = api.get("company/nothing", &[]).await;
    assert_eq!(status, 404);
    assert_eq!(body, json!({"code": "ConnectWiseApi", "message": "The endpoint does not exist."}));
    let (status, _, _) = api.get_url(&format!("{}/v2025_1/apis/3.0/system/info", sim.base_url())).await;
    assert_eq!(status, 200, "any codebase segment works");
    sim.shutdown().await;
}

#[tokio::test]
async fn setup_lists_and_forecasts_have_the_connectwise_shapes() {
    let (sim, api, t) = start(100).await;
    let (_, _, types) = api.get("company/contacts/types", &[]).await;
    assert_eq!(types.as_array().unwrap().len(), 5);
    assert!(types[0]["description"].is_string() && types[0].get("name").is_none());
    let (_, _, statuses) = api.get("company/companies/statuses", &[("conditions", "inactiveFlag = true")]).await;
    let names: Vec<&str> = statuses.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["Inactive", "Not-Approved"]);
    let (_, _, roles) = api.get("system/securityroles", &[("pageSize", "2"), ("page", "3")]).await;
    assert_eq!(roles[0]["name"], "API");
    for opp in t.records("sales/opportunities").iter().take(10) {
        let id = opp["id"].as_i64().unwrap();
        let (status, _, f) = api.get(&format!("sales/opportunities/{id}/forecast"), &[]).await;
        assert_eq!(status, 200);
        let items = f["forecastItems"].as_array().unwrap();
        assert!(items.len() <= 4);
        let sum: f64 = items.iter().map(|i| i["revenue"].as_f64().unwrap()).sum();
        assert!((sum - f["forecastRevenueTotals"]["revenue"].as_f64().unwrap()).abs() < 0.01);
    }
    let (status, _, _) = api.get("sales/opportunities/1/forecast", &[]).await;
    assert_eq!(status, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after() {
    let (sim, api, _t) = start(20).await;
    sim.set_requests_per_second(Some(3));
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let resp = api.request(reqwest::Method::GET, &api.url("system/info", &[])).send().await.unwrap();
        statuses.push(resp.status().as_u16());
        if resp.status().as_u16() == 429 {
            retry_after = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["code"], "TooManyRequests");
        }
    }
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert!(throttled >= 1, "{statuses:?}");
    assert!(statuses[..3].iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(sim.stats().throttled, throttled as u64);
    sim.set_requests_per_second(None);
    assert_eq!(api.get("system/info", &[]).await.0, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn fail_next_answers_the_injected_status_then_normal_answers() {
    let (sim, api, _t) = start(20).await;
    sim.fail_next(2, 503);
    let (s1, _, b1) = api.get("company/companies", &[]).await;
    let (s2, _, _) = api.get("company/companies", &[]).await;
    let (s3, _, b3) = api.get("company/companies", &[]).await;
    assert_eq!((s1, s2, s3), (503, 503, 200));
    assert_eq!(b1["code"], "ServerError");
    assert!(b3.is_array());
    let stats = sim.stats();
    assert_eq!(stats.injected_failures, 2);
    assert_eq!(stats.gets_by_path.get("company/companies"), Some(&1));
    sim.shutdown().await;
}

#[tokio::test]
async fn latency_delays_every_answer() {
    let (sim, api, _t) = start(10).await;
    sim.set_latency(Duration::from_millis(150));
    let t0 = Instant::now();
    assert_eq!(api.get("system/info", &[]).await.0, 200);
    assert!(t0.elapsed() >= Duration::from_millis(150));
    sim.shutdown().await;
}

#[tokio::test]
async fn forward_only_paging_walks_by_page_id() {
    let (sim, api, t) = start(100).await;
    let mut url = api.url("company/companies", &[("pageSize", "40")]);
    let mut seen = Vec::new();
    for _ in 0..20 {
        let resp =
            api.request(reqwest::Method::GET, &url).header("pagination-type", "forward-only").send().await.unwrap();
        let headers = resp.headers().clone();
        let body: Value = resp.json().await.unwrap();
        seen.extend(ids(&body));
        match link(&headers, "next") {
            Some(next) => {
                assert!(next.contains("pageId="), "{next}");
                url = next;
            }
            None => break,
        }
    }
    let all: Vec<i64> = t.records("company/companies").iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(seen, all);
    sim.shutdown().await;
}

#[tokio::test]
async fn every_collection_serves_each_record_by_id_as_its_list_does_and_a_missing_id_is_404_not_found() {
    let (sim, api, _) = start(20).await;
    for path in [
        "system/members",
        "company/companies",
        "company/contacts",
        "procurement/catalog",
        "sales/activities",
        "sales/opportunities",
    ] {
        let (status, _, page) = api.get(path, &[("pageSize", "3"), ("orderBy", "id asc")]).await;
        assert_eq!(status, 200, "{path}");
        for listed in page.as_array().unwrap() {
            let (status, _, one) = api.get(&format!("{path}/{}", listed["id"]), &[]).await;
            assert_eq!((status, &one), (200, listed), "{path}: the object itself, as listed");
        }
        let (status, _, missing) = api.get(&format!("{path}/987654321"), &[]).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(missing["code"], "NotFound", "{path}: a missing record, not a missing endpoint: {missing}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn a_member_is_found_by_its_identifier_through_the_list_conditions() {
    let (sim, api, t) = start(20).await;
    let member = &t.records("system/members")[0];
    let cond = format!("identifier = \"{}\"", member["identifier"].as_str().unwrap());
    let (status, _, found) = api.get("system/members", &[("conditions", &cond)]).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&found), [member["id"].as_i64().unwrap()]);
    let (_, _, none) = api.get("system/members", &[("conditions", "identifier = \"nobody-here\"")]).await;
    assert_eq!(none, json!([]));
    sim.shutdown().await;
}

#[tokio::test]
async fn custom_field_conditions_select_by_caption_and_value_together_with_conditions() {
    let (sim, api, t) = start(200).await;
    let companies = t.records("company/companies");
    let field = |r: &Value, caption: &str| -> Value {
        r["customFields"].as_array().unwrap().iter().find(|f| f["caption"] == caption).unwrap()["value"].clone()
    };
    let gold: Vec<i64> =
        companies.iter().filter(|r| field(r, "Account Tier") == "Gold").map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(!gold.is_empty() && gold.len() < companies.len(), "the generator gives some companies the Gold tier");
    let cases: Vec<(&str, &str, Vec<i64>)> = vec![
        ("caption=\"Account Tier\" AND value=\"Gold\"", "", gold.clone()),
        (
            "caption='Account Tier' and value = 'gold'",
            "deletedFlag = false",
            companies
                .iter()
                .filter(|r| field(r, "Account Tier") == "Gold" && r["deletedFlag"] == false)
                .map(|r| r["id"].as_i64().unwrap())
                .collect(),
        ),
        (
            "caption = \"Managed Seats\" AND value >= 100",
            "",
            companies
                .iter()
                .filter(|r| field(r, "Managed Seats").as_f64().is_some_and(|n| n >= 100.0))
                .map(|r| r["id"].as_i64().unwrap())
                .collect(),
        ),
        (
            "id = 1 and value != null",
            "",
            companies
                .iter()
                .filter(|r| !field(r, "Account Tier").is_null())
                .map(|r| r["id"].as_i64().unwrap())
                .collect(),
        ),
    ];
    for (custom, cond, want) in cases {
        let mut params = vec![("customFieldConditions", custom), ("pageSize", "1000")];
        if !cond.is_empty() {
            params.push(("conditions", cond));
        }
        let (status, _, body) = api.get("company/companies", &params).await;
        assert_eq!(status, 200, "{custom}: {body}");
        assert_eq!(ids(&body), want, "{custom} / {cond}");
        let (_, _, count) = api.get("company/companies/count", &params).await;
        assert_eq!(count["count"].as_u64(), Some(want.len() as u64), "{custom}");
    }
    let (_, _, contacts) =
        api.get("company/contacts", &[("customFieldConditions", "caption = \"Newsletter\" and value = true")]).await;
    assert!(!ids(&contacts).is_empty(), "contacts carry custom fields too");
    for (custom, expect) in
        [("caption = ", "expected a value"), ("label = \"Tier\"", "not a property of a custom field")]
    {
        let (status, _, body) = api.get("company/companies", &[("customFieldConditions", custom)]).await;
        assert_eq!(status, 400, "{custom}");
        assert_eq!(body["code"], "InvalidObject");
        let msg = body["message"].as_str().unwrap();
        assert!(msg.starts_with("customFieldConditions is invalid") && msg.contains(expect), "{custom}: {msg}");
    }
    sim.shutdown().await;
}
