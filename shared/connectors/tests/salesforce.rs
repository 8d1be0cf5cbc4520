//! The Salesforce connector over real HTTP against the Salesforce simulator (tandem-sim):
//! token grants, credential checks, paging through `nextRecordsUrl`, session expiry and
//! refresh, request limits, retries, incremental reads, describe-based options.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_connectors::salesforce::parse_page;
use tandem_connectors::{Connectors, Pacing, RetryPolicy, Settings};
use tandem_domain::external::{Cursor, ExternalRecord, NO_TYPE, OptionList};
use tandem_domain::ports::{Connector, ConnectorFactory, ErrorKind};
use tandem_domain::secret::{Credentials, SalesforceCredentials, SecretString};
use tandem_domain::{Stage, Timestamp};
use tandem_sim::salesforce::{GenConfig, SimConfig, SimHandle, Simulator, Tenant, ThrottleAnswer, typical_mapping};

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

fn creds_of(c: tandem_sim::salesforce::Credentials) -> SalesforceCredentials {
    SalesforceCredentials {
        login_url: c.login_url,
        client_id: c.client_id,
        client_secret: SecretString::new(c.client_secret),
        refresh_token: None,
        contact_status_field: None,
    }
}

fn connect(creds: SalesforceCredentials, settings: Settings) -> Arc<dyn Connector> {
    Connectors::new(settings).connect(&Credentials::Salesforce(creds)).expect("connector builds")
}

fn good(handle: &SimHandle, page_size: u32) -> Arc<dyn Connector> {
    connect(creds_of(handle.credentials()), fast_settings(page_size))
}

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

fn ids(records: &[ExternalRecord]) -> Vec<String> {
    records.iter().map(|r| r.id().expect("every record has an id").to_string()).collect()
}

fn live(tenant: &Tenant, object: &str) -> Vec<serde_json::Value> {
    tenant.records(object).into_iter().filter(|r| r["IsDeleted"] != true).collect()
}

#[tokio::test]
async fn the_credential_check_gets_a_token_and_queries_the_organization() {
    let (handle, _) = start(10).await;
    let info = good(&handle, 2000).check().await.expect("check passes");
    assert_eq!(info.api_url, handle.api_url());
    assert!(info.version.is_some_and(|v| v.contains(&handle.org_id())));
}

#[tokio::test]
async fn a_wrong_client_secret_is_unauthorized_and_never_shown() {
    let (handle, _) = start(5).await;
    let mut creds = creds_of(handle.credentials());
    let wrong = "Wr0ngS3cretValue1234";
    creds.client_secret = SecretString::new(wrong);
    let err = connect(creds.clone(), fast_settings(2000)).check().await.expect_err("refused");
    assert_eq!((err.kind, err.retryable, err.status), (ErrorKind::Unauthorized, false, Some(400)));
    assert!(err.message.contains("client secret") && err.message.contains(&creds.client_id), "{}", err.message);
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(wrong), "{shown}");
    assert_eq!(handle.stats().unauthorized, 1, "a refused secret is not retried");
}

#[tokio::test]
async fn an_unknown_client_id_and_a_stale_refresh_token_are_unauthorized() {
    let (handle, _) = start(5).await;
    let mut creds = creds_of(handle.credentials());
    creds.client_id = "3MVGnobody".into();
    let err = connect(creds, fast_settings(2000)).check().await.expect_err("refused");
    assert_eq!(err.kind, ErrorKind::Unauthorized);
    assert!(err.message.contains("3MVGnobody"), "{}", err.message);
    let mut creds = creds_of(handle.credentials());
    creds.refresh_token = Some(SecretString::new("5Aep-revoked-token"));
    let err = connect(creds, fast_settings(2000)).check().await.expect_err("refused");
    assert!(err.message.contains("invalid_grant") && !err.message.contains("5Aep-revoked-token"), "{}", err.message);
}

#[tokio::test]
async fn a_refresh_token_grant_works_when_one_is_given() {
    let (handle, _) = start(5).await;
    let mut creds = creds_of(handle.credentials());
    creds.refresh_token = Some(SecretString::new(handle.credentials().refresh_token));
    connect(creds, fast_settings(2000)).check().await.expect("the refresh grant passes");
}

#[tokio::test]
async fn an_unreachable_login_host_is_unreachable_quickly_and_names_the_host() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let creds = SalesforceCredentials {
        login_url: format!("http://127.0.0.1:{port}"),
        client_id: "app".into(),
        client_secret: SecretString::new("secret"),
        refresh_token: None,
        contact_status_field: None,
    };
    let started = Instant::now();
    let err = connect(creds, Settings::default()).check().await.expect_err("nothing listens");
    assert_eq!(err.kind, ErrorKind::Unreachable);
    assert!(err.message.contains(&format!("127.0.0.1:{port}")), "{}", err.message);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn every_stage_pages_to_the_end_through_next_records_url() {
    let (handle, tenant) = start(150).await;
    let conn = good(&handle, 200);
    let (contacts, pages) = fetch_all(conn.as_ref(), Stage::Contacts, Cursor::start()).await;
    let want: Vec<String> = live(&tenant, "Contact").iter().map(|r| r["Id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids(&contacts), want);
    assert_eq!(pages, want.len().div_ceil(200));
    assert!(handle.stats().gets_by_path.get("query/{locator}").is_some_and(|n| *n >= 2));
    let (companies, _) = fetch_all(conn.as_ref(), Stage::Companies, Cursor::start()).await;
    assert_eq!(companies.len(), 150, "deleted accounts are not read");
    assert!(companies.iter().all(|r| matches!(r, ExternalRecord::Company(_))));
    let (users, _) = fetch_all(conn.as_ref(), Stage::Users, Cursor::start()).await;
    assert_eq!(users.len(), live(&tenant, "User").len());
    let (solutions, pages) = fetch_all(conn.as_ref(), Stage::Solutions, Cursor::start()).await;
    assert_eq!((solutions.len(), pages), (0, 1));
}

#[tokio::test]
async fn activities_read_all_tasks_then_all_events() {
    let (handle, tenant) = start(400).await;
    let (records, _) = fetch_all(good(&handle, 200).as_ref(), Stage::Activities, Cursor::start()).await;
    let tasks = tenant.records("Task").len();
    let events = tenant.records("Event").len();
    assert!(tasks > 200 && events > 0);
    assert_eq!(records.len(), tasks + events);
    let types: Vec<&str> = records
        .iter()
        .map(|r| match r {
            ExternalRecord::Activity(a) => a.type_id.as_deref().unwrap_or_default(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(types[..tasks].iter().all(|t| t.starts_with("Task:")));
    assert!(types[tasks..].iter().all(|t| *t == "Event"));
}

#[tokio::test]
async fn an_expired_session_is_refreshed_once_and_the_read_succeeds() {
    let (handle, _) = start(20).await;
    let conn = good(&handle, 2000);
    conn.list(Stage::Users.kind(), &Cursor::start()).await.expect("first read");
    handle.expire_sessions();
    let page = conn.list(Stage::Users.kind(), &Cursor::start()).await.expect("read after expiry");
    assert!(!page.records.is_empty());
    assert_eq!(handle.stats().unauthorized, 1, "one 401, then a new token");
}

#[tokio::test]
async fn rate_limits_answered_either_way_are_waited_out() {
    let (handle, _) = start(20).await;
    let conn = good(&handle, 2000);
    conn.check().await.expect("token first");
    handle.fail_next(2, 429);
    conn.list(Stage::Users.kind(), &Cursor::start()).await.expect("429s are retried");
    handle.fail_next(1, 403);
    conn.list(Stage::Users.kind(), &Cursor::start()).await.expect("REQUEST_LIMIT_EXCEEDED is retried");
    assert_eq!(handle.stats().injected_failures, 3);
    // A 403 carries no Retry-After: the backoff alone must outlast the one-second window.
    let mut patient = fast_settings(2000);
    patient.retry.base_delay = Duration::from_millis(250);
    let conn = connect(creds_of(handle.credentials()), patient);
    conn.check().await.expect("token and check");
    handle.set_throttle_answer(ThrottleAnswer::RequestLimitExceeded);
    handle.set_requests_per_second(Some(1));
    for _ in 0..3 {
        conn.list(Stage::Users.kind(), &Cursor::start()).await.expect("throttled reads eventually pass");
    }
    assert!(handle.stats().throttled >= 1);
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let (handle, _) = start(20).await;
    let conn = good(&handle, 2000);
    handle.fail_next(2, 503);
    conn.list(Stage::Companies.kind(), &Cursor::start()).await.expect("503s are retried");
    handle.fail_next(1, 500);
    conn.list(Stage::Companies.kind(), &Cursor::start()).await.expect("500 is retried");
    assert_eq!(handle.stats().injected_failures, 3);
}

#[tokio::test]
async fn a_used_up_daily_allocation_is_a_rate_limit_error() {
    let (handle, _) = start(5).await;
    let mut settings = fast_settings(2000);
    settings.retry.max_attempts = 2;
    let conn = connect(creds_of(handle.credentials()), settings);
    handle.set_daily_limit(Some(1));
    conn.list(Stage::Users.kind(), &Cursor::start()).await.expect("within the allocation");
    let err = conn.list(Stage::Users.kind(), &Cursor::start()).await.expect_err("allocation used up");
    assert_eq!((err.kind, err.status), (ErrorKind::RateLimited, Some(403)));
    assert!(err.message.contains("REQUEST_LIMIT_EXCEEDED"), "{}", err.message);
}

#[tokio::test]
async fn the_since_filter_reads_only_records_modified_at_or_after_it() {
    let (handle, tenant) = start(120).await;
    let accounts = live(&tenant, "Account");
    let mut stamps: Vec<&str> = accounts.iter().map(|r| r["LastModifiedDate"].as_str().unwrap()).collect();
    stamps.sort_unstable();
    let median = stamps[stamps.len() / 2];
    let since = Timestamp::parse(&median.replace(".000+0000", "Z")).unwrap();
    let cursor = Cursor { position: String::new(), since: Some(since) };
    let (records, _) = fetch_all(good(&handle, 200).as_ref(), Stage::Companies, cursor).await;
    let want = stamps.iter().filter(|s| **s >= median).count();
    assert_eq!(records.len(), want);
    assert!(want < accounts.len());
}

#[tokio::test]
async fn options_come_from_describe_profiles_and_the_fixed_activity_choices() {
    let (handle, _) = start(5).await;
    let conn = good(&handle, 2000);
    let names =
        |choices: &[tandem_domain::external::Choice]| choices.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    let company = conn.options(OptionList::CompanyTypes).await.unwrap();
    assert!(company.iter().any(|c| c.id == "Customer - Direct"));
    assert_eq!(company.last().map(|c| c.id.as_str()), Some(NO_TYPE));
    let contact = conn.options(OptionList::ContactTypes).await.unwrap();
    assert!(names(&contact).contains(&"Qualified".to_string()));
    let roles = conn.options(OptionList::Roles).await.unwrap();
    assert!(roles.iter().all(|c| c.id.starts_with("00e")) && roles.len() == 5);
    let activity = conn.options(OptionList::ActivityTypes).await.unwrap();
    assert_eq!(
        activity.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["Task:Call", "Task:Email", "Task:Task", "Event"]
    );
    let stages = conn.options(OptionList::OpportunityStatuses).await.unwrap();
    assert!(names(&stages).contains(&"Closed Won".to_string()));
    assert!(conn.options(OptionList::CatalogTypes).await.unwrap().is_empty());
    let typical = typical_mapping();
    for (list, table, offered) in [
        ("roles", &typical.roles, names(&roles)),
        ("company types", &typical.company_types, names(&company)),
        ("contact types", &typical.contact_types, names(&contact)),
        ("activity types", &typical.activity_types, names(&activity)),
        ("opportunity statuses", &typical.opportunity_statuses, names(&stages)),
    ] {
        for (name, _) in table.iter() {
            assert!(offered.contains(name), "{list}: the typical mapping's {name:?} is not offered: {offered:?}");
        }
    }
}

#[tokio::test]
async fn a_contact_status_field_the_org_lacks_is_a_clear_error() {
    let (handle, _) = start(5).await;
    let mut creds = creds_of(handle.credentials());
    creds.contact_status_field = Some("Lifecycle__c".into());
    let conn = connect(creds, fast_settings(2000));
    let err = conn.options(OptionList::ContactTypes).await.expect_err("no such field");
    assert!(err.message.contains("Lifecycle__c"), "{}", err.message);
    let err = conn.list(Stage::Contacts.kind(), &Cursor::start()).await.expect_err("no such column");
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(err.message.contains("INVALID_FIELD"), "{}", err.message);
}

#[tokio::test]
async fn a_page_the_simulator_served_parses_with_parse_page() {
    let (handle, _) = start(10).await;
    let c = handle.credentials();
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!("{}/services/oauth2/token", c.login_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=client_credentials&client_id={}&client_secret={}", c.client_id, c.client_secret))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token["instance_url"], handle.base_url());
    let resp = http
        .get(format!("{}/query?q=SELECT+Id,+Name,+Type,+Phone,+Website+FROM+Account+ORDER+BY+Id", handle.api_url()))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(resp.headers()["sforce-limit-info"].to_str().unwrap().starts_with("api-usage="));
    let body = resp.bytes().await.unwrap();
    let records = parse_page(Stage::Companies, &body).unwrap();
    assert_eq!(records.len(), 10);
}

#[tokio::test]
async fn an_activity_is_got_from_the_object_its_id_prefix_names_in_one_query() {
    let (handle, tenant) = start(10).await;
    let conn = good(&handle, 200);
    for object in ["Task", "Event"] {
        let id = live(&tenant, object)[0]["Id"].as_str().unwrap().to_string();
        let before = handle.stats().gets_by_path.get("query").copied().unwrap_or(0);
        let got = conn.get(Stage::Activities.kind(), &id).await.unwrap_or_else(|e| panic!("{object} {id}: {e}"));
        assert_eq!(got.as_ref().and_then(ExternalRecord::id), Some(id.as_str()), "{object}");
        assert_eq!(handle.stats().gets_by_path.get("query").copied().unwrap_or(0), before + 1, "{object}: one query");
    }
    let err = conn.get(Stage::Companies.kind(), "001' OR Name != '").await.expect_err("refused");
    assert_eq!(err.kind, ErrorKind::Invalid);
    handle.shutdown().await;
}

#[tokio::test]
async fn a_record_deleted_in_salesforce_is_in_the_delete_log_since_before_it_not_since_after_and_gets_none() {
    use tandem_domain::RecordKind;
    use tandem_domain::external::ExtCompany;
    use tandem_sim::RunningSystem;
    use tandem_sim::webhooks::Kind;

    let (handle, tenant) = start(10).await;
    let conn = good(&handle, 2000);
    let account = live(&tenant, "Account")[0]["Id"].as_str().expect("an account id").to_string();
    let task = live(&tenant, "Task")[0]["Id"].as_str().expect("a task id").to_string();
    assert!(conn.get(RecordKind::Company, &account).await.expect("get").is_some());
    // The org's clock is set back two minutes for the deletes, so they fall in a minute the
    // log already covers (Salesforce lists the current minute once it is over).
    handle.set_clock_offset(-120);
    handle.delete_as_person(Kind::Company, &account).expect("the account is deleted");
    handle.delete_as_person(Kind::Activity, &task).expect("the task is deleted");
    handle.set_clock_offset(0);
    let now = Timestamp::from_datetime(time::OffsetDateTime::now_utc());

    let before = conn.deleted_since(RecordKind::Company, now.plus_seconds(-600)).await.expect("the log is read");
    assert_eq!(before, Some(vec![account.clone()]));
    let after = conn.deleted_since(RecordKind::Company, now.plus_seconds(-60)).await.expect("the log is read");
    assert_eq!(after, Some(vec![]), "a since after the delete does not list it");
    let long_ago = conn.deleted_since(RecordKind::Company, now.plus_seconds(-40 * 86_400)).await;
    assert_eq!(long_ago.expect("a since older than 15 days is moved up, not refused"), Some(vec![account.clone()]));
    let activities = conn.deleted_since(RecordKind::Activity, now.plus_seconds(-600)).await.expect("read");
    assert_eq!(activities, Some(vec![task]), "Tasks' log, then Events'");
    assert_eq!(conn.deleted_since(RecordKind::Contact, now.plus_seconds(-600)).await.expect("read"), Some(vec![]));
    assert_eq!(conn.deleted_since(RecordKind::User, now.plus_seconds(-600)).await.expect("no call"), None);

    assert!(conn.get(RecordKind::Company, &account).await.expect("get").is_none(), "a deleted record is gone");
    let record = ExternalRecord::Company(ExtCompany { id: account, ..ExtCompany::named("Gone Ltd") });
    let err = conn.update(&record, &["phone"]).await.expect_err("a deleted record cannot be updated");
    assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::NotFound, Some("ENTITY_IS_DELETED")), "{err}");
}
