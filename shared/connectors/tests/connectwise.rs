//! The ConnectWise connector over real HTTP against the ConnectWise simulator (tandem-sim):
//! credential checks, paging, rate limits, retries, incremental reads, options, forecasts.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use tandem_connectors::connectwise::{ConnectWiseConnector, parse_page};
use tandem_connectors::{Connectors, Pacing, RetryPolicy, Settings};
use tandem_domain::external::{Choice, Cursor, ExternalRecord, NO_TYPE, OptionList};
use tandem_domain::ports::{Connector, ConnectorFactory, ErrorKind};
use tandem_domain::secret::{ConnectWiseCredentials, Credentials, SecretString};
use tandem_domain::{Stage, Timestamp};
use tandem_sim::connectwise::{GenConfig, SimConfig, SimHandle, Simulator, Tenant};

fn fast_settings(page_size: u32) -> Settings {
    Settings {
        page_size,
        retry: RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(2),
        },
        // Pacing has its own tests (pacing.rs); these run at full speed.
        pacing: Pacing::Off,
        ..Settings::default()
    }
}

async fn start(companies: usize) -> (SimHandle, Tenant) {
    let tenant = Tenant::generate(&GenConfig::with_companies(7, companies));
    let handle = Simulator::start(tenant.clone(), SimConfig::default(), 0).await.expect("simulator starts");
    (handle, tenant)
}

fn creds_of(c: tandem_sim::connectwise::Credentials) -> ConnectWiseCredentials {
    ConnectWiseCredentials {
        site: c.site,
        company_id: c.company_id,
        public_key: c.public_key,
        private_key: SecretString::new(c.private_key),
        client_id: c.client_id,
    }
}

fn connect(creds: ConnectWiseCredentials, settings: Settings) -> Arc<dyn Connector> {
    Connectors::new(settings).connect(&Credentials::ConnectWise(creds)).expect("connector builds")
}

fn good(handle: &SimHandle, page_size: u32) -> Arc<dyn Connector> {
    connect(creds_of(handle.credentials()), fast_settings(page_size))
}

/// Every page of a stage from `cursor`: the records and the number of pages.
async fn fetch_all(conn: &dyn Connector, stage: Stage, mut cursor: Cursor) -> (Vec<ExternalRecord>, usize) {
    let mut records = Vec::new();
    let mut pages = 0;
    loop {
        let page = conn.list(stage.kind(), &cursor).await.unwrap_or_else(|e| panic!("{stage} page {pages}: {e}"));
        pages += 1;
        records.extend(page.records);
        match page.next {
            Some(next) => cursor = next,
            None => return (records, pages),
        }
    }
}

/// A raw authenticated request to the simulator's API, for checks independent of the connector.
fn raw(handle: &SimHandle, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    let c = handle.credentials();
    let token = base64::engine::general_purpose::STANDARD
        .encode(format!("{}+{}:{}", c.company_id, c.public_key, c.private_key));
    reqwest::Client::new()
        .request(method, format!("{}{path}", handle.api_url()))
        .header("Authorization", format!("Basic {token}"))
        .header("clientId", c.client_id)
}

async fn raw_json(handle: &SimHandle, path: &str) -> serde_json::Value {
    let resp = raw(handle, reqwest::Method::GET, path).send().await.expect("the simulator answers");
    resp.json().await.expect("the simulator answers JSON")
}

fn ids(records: &[ExternalRecord]) -> Vec<String> {
    records.iter().map(|r| r.id().expect("every record has an id").to_string()).collect()
}

#[tokio::test]
async fn the_credential_check_passes_with_good_keys_and_returns_the_api_url() {
    let (handle, _) = start(10).await;
    let info = good(&handle, 1000).check().await.expect("check passes");
    assert_eq!(info.api_url, handle.api_url());
    assert!(info.version.is_some_and(|v| !v.is_empty()));
}

#[tokio::test]
async fn a_wrong_private_key_is_unauthorized_and_the_message_never_contains_the_key() {
    let (handle, _) = start(10).await;
    let mut creds = creds_of(handle.credentials());
    let wrong = "Wr0ngPr1vateKeyValue";
    creds.private_key = SecretString::new(wrong);
    let err = connect(creds.clone(), fast_settings(1000)).check().await.expect_err("refused");
    assert_eq!(err.kind, ErrorKind::Unauthorized);
    assert!(!err.retryable);
    assert_eq!(err.status, Some(401));
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(wrong), "{shown}");
    assert!(!shown.contains(&base64::engine::general_purpose::STANDARD.encode(wrong)), "{shown}");
    assert!(
        err.message.contains(&format!("rejected the public/private key pair for company '{}'", creds.company_id)),
        "{}",
        err.message
    );
    assert_eq!(handle.stats().unauthorized, 1, "a refused key is not retried");
}

#[tokio::test]
async fn an_unknown_company_is_an_unknown_account_naming_company_and_site() {
    let (handle, _) = start(10).await;
    let mut creds = creds_of(handle.credentials());
    creds.company_id = "nosuchcompany".into();
    let err = connect(creds, fast_settings(1000)).check().await.expect_err("refused");
    assert_eq!(err.kind, ErrorKind::UnknownAccount);
    assert!(err.message.contains("nosuchcompany") && err.message.contains(&handle.base_url()), "{}", err.message);
}

#[tokio::test]
async fn an_unreachable_host_is_unreachable_quickly_and_names_the_host() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let creds = ConnectWiseCredentials {
        site: format!("http://127.0.0.1:{port}"),
        company_id: "acme".into(),
        public_key: "pub".into(),
        private_key: SecretString::new("priv"),
        client_id: "client".into(),
    };
    let started = Instant::now();
    let err = connect(creds, Settings::default()).check().await.expect_err("nothing listens");
    assert_eq!(err.kind, ErrorKind::Unreachable);
    assert!(err.message.contains(&format!("127.0.0.1:{port}")), "{}", err.message);
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_restricted_member_passes_the_check_but_is_forbidden_on_fetch() {
    let (handle, _) = start(10).await;
    let conn = connect(creds_of(handle.restricted_credentials()), fast_settings(1000));
    conn.check().await.expect("system/info is allowed");
    let err = conn.list(Stage::Contacts.kind(), &Cursor::start()).await.expect_err("forbidden");
    assert_eq!(err.kind, ErrorKind::Forbidden);
    assert!(!err.retryable);
    assert!(err.message.contains("/company/contacts"), "{}", err.message);
}

#[tokio::test]
async fn paging_with_small_pages_yields_every_company_and_contact_exactly_once() {
    let (handle, tenant) = start(120).await;
    let conn = good(&handle, 50);
    for (stage, path) in [(Stage::Companies, "company/companies"), (Stage::Contacts, "company/contacts")] {
        let generated = tenant.records(path).len();
        let counted = raw_json(&handle, &format!("/{path}/count")).await["count"].as_u64().unwrap() as usize;
        assert_eq!(counted, generated);
        let (records, pages) = fetch_all(conn.as_ref(), stage, Cursor::start()).await;
        let ids = ids(&records);
        assert_eq!(ids.len(), generated, "{stage}");
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), generated, "{stage}: no duplicates");
        assert_eq!(pages, generated.div_ceil(50), "{stage}");
        assert!(records.iter().all(|r| !matches!(r, ExternalRecord::Unreadable(_))), "{stage}");
    }
}

#[tokio::test]
async fn rate_limited_requests_wait_out_the_429_and_every_page_arrives() {
    let (handle, tenant) = start(60).await;
    let conn = good(&handle, 25);
    handle.set_requests_per_second(Some(2));
    let (records, pages) = fetch_all(conn.as_ref(), Stage::Contacts, Cursor::start()).await;
    assert_eq!(records.len(), tenant.records("company/contacts").len());
    assert!(pages >= 5, "{pages}");
    assert!(handle.stats().throttled > 0, "{:?}", handle.stats());
}

#[tokio::test]
async fn server_errors_are_retried_until_the_fetch_succeeds() {
    let (handle, _) = start(10).await;
    let conn = good(&handle, 1000);
    handle.fail_next(2, 503);
    let page = conn.list(Stage::Contacts.kind(), &Cursor::start()).await.expect("retried past two 503s");
    assert!(!page.records.is_empty());
    assert_eq!(handle.stats().injected_failures, 2);
}

#[tokio::test]
async fn a_bad_request_is_not_retried() {
    let (handle, _) = start(10).await;
    let conn = good(&handle, 1000);
    handle.fail_next(3, 400);
    let err = conn.list(Stage::Contacts.kind(), &Cursor::start()).await.expect_err("400 fails");
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(!err.retryable);
    assert_eq!(err.status, Some(400));
    assert_eq!(handle.stats().injected_failures, 1, "only one attempt was made");
    handle.fail_next(0, 400);
}

#[tokio::test]
async fn a_since_cursor_returns_only_records_updated_at_or_after_it() {
    let (handle, tenant) = start(80).await;
    let conn = good(&handle, 1000);
    let mut stamps: Vec<String> = tenant
        .records("company/companies")
        .iter()
        .filter_map(|c| c["_info"]["lastUpdated"].as_str().map(str::to_string))
        .collect();
    stamps.sort();
    let since = Timestamp::parse(&stamps[stamps.len() / 2]).unwrap();
    let expected = stamps.iter().filter(|s| Timestamp::parse(s).unwrap() >= since).count();
    let cursor = Cursor { position: String::new(), since: Some(since) };
    let (records, _) = fetch_all(conn.as_ref(), Stage::Companies, cursor).await;
    assert_eq!(records.len(), expected);
    for r in &records {
        let ExternalRecord::Company(c) = r else { panic!("{r:?}") };
        assert!(c.updated_at.as_ref().and_then(|v| v.at()).unwrap() >= since, "{c:?}");
    }

    // A record changed now is in an incremental read from just before now.
    let id = records[0].id().unwrap().to_string();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let before = Timestamp::from_unix(now - 1).unwrap();
    let patch = serde_json::json!([{"op": "replace", "path": "/name", "value": "Renamed Just Now"}]);
    let resp = raw(&handle, reqwest::Method::PATCH, &format!("/company/companies/{id}"))
        .header("Content-Type", "application/json")
        .body(patch.to_string())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let cursor = Cursor { position: String::new(), since: Some(before) };
    let (recent, _) = fetch_all(conn.as_ref(), Stage::Companies, cursor).await;
    let renamed = recent.iter().find(|r| r.id() == Some(id.as_str())).expect("the changed record is read");
    assert!(matches!(renamed, ExternalRecord::Company(c) if c.name == "Renamed Just Now"));
    assert_eq!(recent.len(), 1, "the generated records all changed long before now");
}

#[tokio::test]
async fn options_offer_no_type_for_company_and_contact_types_and_the_fixed_billing_options() {
    let (handle, _) = start(10).await;
    let conn = good(&handle, 1000);
    let no_type = Choice { id: NO_TYPE.to_string(), name: "(no type)".to_string() };

    let company_types = conn.options(OptionList::CompanyTypes).await.unwrap();
    assert!(company_types.contains(&no_type), "{company_types:?}");
    assert!(company_types.iter().any(|c| c.name == "Client"), "{company_types:?}");

    let contact_types = conn.options(OptionList::ContactTypes).await.unwrap();
    assert!(contact_types.contains(&no_type), "{contact_types:?}");
    assert!(contact_types.iter().any(|c| c.name == "Decision Maker"), "contact types are named by description");

    let billing: Vec<String> =
        conn.options(OptionList::BillingOptions).await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(billing, ["Billable", "DoNotBill", "NoCharge", "NoDefault"]);

    let mut all = BTreeMap::new();
    for list in OptionList::ALL {
        let choices = conn.options(*list).await.unwrap_or_else(|e| panic!("{list:?}: {e}"));
        assert!(!choices.is_empty(), "{list:?}");
        assert!(choices.iter().all(|c| !c.id.is_empty() && !c.name.is_empty()), "{list:?}: {choices:?}");
        all.insert(*list, choices);
    }
    assert!(all[&OptionList::Roles].iter().any(|c| c.name == "Admin"));
    assert!(all[&OptionList::ActivityTypes].iter().any(|c| c.name == "Call"));
    assert!(all[&OptionList::OpportunityStatuses].iter().any(|c| c.name == "Won"));
}

#[tokio::test]
async fn opportunity_values_equal_the_sums_of_their_forecasts() {
    let (handle, tenant) = start(40).await;
    let conn = good(&handle, 1000);
    let (records, _) = fetch_all(conn.as_ref(), Stage::Opportunities, Cursor::start()).await;
    assert_eq!(records.len(), tenant.records("sales/opportunities").len());
    assert!(!records.is_empty());
    for r in &records {
        let ExternalRecord::Opportunity(o) = r else { panic!("{r:?}") };
        let forecast = raw_json(&handle, &format!("/sales/opportunities/{}/forecast", o.id)).await;
        let items = forecast["forecastItems"].as_array().unwrap();
        let sum: f64 = items.iter().map(|i| i["revenue"].as_f64().unwrap_or(0.0)).sum();
        assert_eq!(o.value, Some(sum), "opportunity {}", o.id);
        assert_eq!(o.line_items.len(), items.len(), "opportunity {}", o.id);
        assert!(o.salesperson_id.is_some() && o.company_id.is_some(), "{o:?}");
    }
}

#[tokio::test]
async fn every_stage_reads_fully_and_links_by_the_right_ids() {
    let (handle, tenant) = start(40).await;
    let conn = good(&handle, 1000);
    let mut read = BTreeMap::new();
    for stage in tandem_domain::System::ConnectWise.stages() {
        let (records, _) = fetch_all(conn.as_ref(), *stage, Cursor::start()).await;
        let bad: Vec<_> = records.iter().filter(|r| matches!(r, ExternalRecord::Unreadable(_))).collect();
        assert!(bad.is_empty(), "{stage}: {bad:?}");
        assert_eq!(records.len(), tenant.stage_sizes()[stage.as_str()], "{stage}");
        read.insert(*stage, records);
    }
    let users: HashSet<&str> = read[&Stage::Users].iter().filter_map(|r| r.id()).collect();
    assert!(users.iter().all(|id| id.parse::<i64>().is_err()), "users are keyed by identifier: {users:?}");
    let creators: Vec<&str> = read[&Stage::Activities]
        .iter()
        .filter_map(|r| match r {
            ExternalRecord::Activity(a) => a.created_by.as_deref(),
            _ => None,
        })
        .collect();
    assert!(creators.iter().any(|c| users.contains(c)), "activity creators are member identifiers");
    assert!(read[&Stage::Activities].iter().any(|r| matches!(r, ExternalRecord::Activity(a) if a.done)));
    assert!(read[&Stage::Companies].iter().any(|r| matches!(r, ExternalRecord::Company(c) if c.inactive)));
}

#[tokio::test]
async fn a_connector_never_shows_the_private_key_in_debug_output() {
    let (handle, _) = start(10).await;
    let creds = creds_of(handle.credentials());
    let key = creds.private_key.expose().to_string();
    let conn = ConnectWiseConnector::new(reqwest::Client::new(), fast_settings(10), &creds).unwrap();
    conn.check().await.unwrap();
    let shown = format!("{conn:?}");
    assert!(!shown.contains(&key), "{shown}");
}

#[test]
fn an_element_of_a_page_with_a_wrong_field_type_is_unreadable_while_the_others_map() {
    let body = serde_json::json!([
        {"id": 1, "firstName": "Ann", "communicationItems": [{"communicationType": "Email", "value": "ann@x.com", "defaultFlag": true}]},
        {"id": 2, "firstName": "Bob", "inactiveFlag": "nope"},
        {"id": 3, "firstName": "Cy"}
    ]);
    let out = parse_page(Stage::Contacts, body.to_string().as_bytes()).unwrap();
    assert!(matches!(&out[0], ExternalRecord::Contact(c) if c.email.as_deref() == Some("ann@x.com")));
    assert!(
        matches!(&out[1], ExternalRecord::Unreadable(u) if u.id.as_deref() == Some("2") && u.reason.contains("invalid type"))
    );
    assert!(matches!(&out[2], ExternalRecord::Contact(c) if c.first_name == "Cy"));
}

#[test]
fn the_recorded_contact_fixtures_map_into_contacts() {
    for (fixture, id, company) in [
        (include_str!("fixtures/read_contacts.json"), "31045", "20481"),
        (include_str!("fixtures/read_one-contact.json"), "58024", "250"),
    ] {
        let out = parse_page(Stage::Contacts, fixture.as_bytes()).unwrap();
        let [ExternalRecord::Contact(c)] = out.as_slice() else { panic!("{out:?}") };
        assert_eq!(c.id, id);
        assert_eq!(c.company_id.as_deref(), Some(company));
        assert!(c.phone.is_some());
    }
}

/// A tiny HTTP/1.1 server answering each request path (query included) from `answer`, for
/// cases the simulator cannot stage (e.g. one forecast failing while its list succeeds).
async fn stub(answer: fn(&str) -> (u16, String)) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (status, body) = answer(&path);
                let resp = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(resp.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    base
}

fn stub_creds(site: String) -> ConnectWiseCredentials {
    ConnectWiseCredentials {
        site,
        company_id: "acme".into(),
        public_key: "pub".into(),
        private_key: SecretString::new("private-key-value"),
        client_id: "client".into(),
    }
}

fn stub_api(path: &str, forecast_2: (u16, &str)) -> (u16, String) {
    let api = "/v4_6_release/apis/3.0";
    if path.starts_with("/login/companyinfo/acme") {
        (200, r#"{"Codebase":"v4_6_release/"}"#.into())
    } else if path.starts_with(&format!("{api}/sales/opportunities?")) {
        (200, r#"[{"id":1,"name":"One"},{"id":2,"name":"Two"}]"#.into())
    } else if path == format!("{api}/sales/opportunities/1/forecast") {
        (200, r#"{"forecastItems":[{"revenue":10.5,"quantity":1,"productDescription":"Thing"}]}"#.into())
    } else if path == format!("{api}/sales/opportunities/2/forecast") {
        (forecast_2.0, forecast_2.1.into())
    } else if path.starts_with(&format!("{api}/company/contacts?")) {
        (200, r#"{"not":"an array"}"#.into())
    } else {
        (404, r#"{"code":"ConnectWiseApi","message":"The endpoint does not exist."}"#.into())
    }
}

#[tokio::test]
async fn a_forecast_refused_for_good_leaves_only_its_opportunity_without_value() {
    let site = stub(|p| stub_api(p, (404, r#"{"code":"NotFound","message":"Opportunity 2 not found"}"#))).await;
    let conn = connect(stub_creds(site), fast_settings(1000));
    let page = conn.list(Stage::Opportunities.kind(), &Cursor::start()).await.expect("the page still comes in");
    let values: Vec<Option<f64>> = page
        .records
        .iter()
        .map(|r| match r {
            ExternalRecord::Opportunity(o) => o.value,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(values, [Some(10.5), None]);
    assert!(page.next.is_none());
}

#[tokio::test]
async fn a_forecast_failing_transiently_after_retries_fails_the_page() {
    let site = stub(|p| stub_api(p, (503, r#"{"code":"ServerError","message":"busy"}"#))).await;
    let conn = connect(stub_creds(site), fast_settings(1000));
    let err = conn.list(Stage::Opportunities.kind(), &Cursor::start()).await.expect_err("redelivered later");
    assert_eq!(err.kind, ErrorKind::Transient);
    assert!(err.retryable);
    assert!(err.message.contains("/sales/opportunities/2/forecast"), "{}", err.message);
}

#[tokio::test]
async fn a_list_body_that_is_not_an_array_is_invalid_and_names_the_endpoint() {
    let site = stub(|p| stub_api(p, (200, "{}"))).await;
    let conn = connect(stub_creds(site), fast_settings(1000));
    let err = conn.list(Stage::Contacts.kind(), &Cursor::start()).await.expect_err("not an array");
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(err.message.contains("/company/contacts"), "{}", err.message);
}

#[tokio::test]
async fn get_reads_an_opportunity_with_its_forecast_and_a_member_by_its_identifier() {
    let (handle, tenant) = start(10).await;
    let conn = good(&handle, 1000);
    let before = handle.stats().gets_by_path;
    let opportunity = tenant.records("sales/opportunities")[0]["id"].to_string();
    let got = conn.get(Stage::Opportunities.kind(), &opportunity).await.expect("the opportunity");
    assert!(matches!(got, Some(ExternalRecord::Opportunity(ref o)) if o.id == opportunity), "{got:?}");
    let identifier = tenant.records("system/members")[0]["identifier"].as_str().unwrap().to_string();
    let got = conn.get(Stage::Users.kind(), &identifier).await.expect("the member");
    assert_eq!(got.as_ref().and_then(ExternalRecord::id), Some(identifier.as_str()));
    let after = handle.stats().gets_by_path;
    let delta = |key: &str| after.get(key).copied().unwrap_or(0) - before.get(key).copied().unwrap_or(0);
    assert_eq!(
        (delta("sales/opportunities/{id}"), delta("sales/opportunities/{id}/forecast"), delta("system/members")),
        (1, 1, 1),
        "{after:?}"
    );
    assert_eq!(conn.get(Stage::Users.kind(), "nobody").await.expect("asked"), None, "an unknown identifier");
    let err = conn.get(Stage::Users.kind(), "a\" or id > 0 or \"").await.expect_err("refused");
    assert_eq!(err.kind, ErrorKind::Invalid);
    handle.shutdown().await;
}

#[tokio::test]
async fn a_connector_counts_every_request_it_sends_retries_included_and_its_own_only() {
    let (handle, _) = start(30).await;
    let conn = good(&handle, 10);
    let before = handle.stats().requests;
    let (_, pages) = fetch_all(&*conn, Stage::Companies, Cursor::start()).await;
    assert!(pages >= 3, "{pages}");
    let counted = conn.calls();
    assert_eq!(counted, handle.stats().requests - before, "one count per request the simulator received");
    handle.fail_next(2, 503);
    conn.list(tandem_domain::RecordKind::Company, &Cursor::start()).await.expect("a retried read succeeds");
    assert_eq!(conn.calls(), counted + 3, "two failed attempts and the one that succeeded");
    let fresh = connect(creds_of(handle.credentials()), fast_settings(5));
    assert_eq!(fresh.calls(), 0, "another connector counts its own requests");
}
