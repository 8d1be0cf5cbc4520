//! The Syncro connector over real HTTP against the Syncro simulator (tandem-sim):
//! credential checks, paging, rate limits, retries, incremental reads and options.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_connectors::syncro::{LEAD_STATUSES, parse_page};
use tandem_connectors::{Connectors, Pacing, RetryPolicy, Settings};
use tandem_domain::external::{Choice, Cursor, ExternalRecord, NO_TYPE, OptionList};
use tandem_domain::ports::{Connector, ConnectorFactory, ErrorKind};
use tandem_domain::secret::{Credentials, SecretString, SyncroCredentials};
use tandem_domain::{Stage, Timestamp};
use tandem_sim::syncro::{GenConfig, SimConfig, SimHandle, Simulator, Tenant};
use tandem_sim::system::RunningSystem;

fn fast_settings() -> Settings {
    Settings {
        page_size: 1000,
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
    handle.set_requests_per_minute(None);
    (handle, tenant)
}

fn creds_of(c: tandem_sim::syncro::Credentials) -> SyncroCredentials {
    SyncroCredentials { site: c.site, api_key: SecretString::new(c.api_key) }
}

fn connect(creds: SyncroCredentials, settings: Settings) -> Arc<dyn Connector> {
    Connectors::new(settings).connect(&Credentials::Syncro(creds)).expect("connector builds")
}

fn good(handle: &SimHandle) -> Arc<dyn Connector> {
    connect(creds_of(handle.credentials()), fast_settings())
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

fn ids(records: &[ExternalRecord]) -> Vec<String> {
    records.iter().map(|r| r.id().expect("every record has an id").to_string()).collect()
}

fn record_ids(tenant: &Tenant, resource: &str) -> Vec<String> {
    tenant.records(resource).iter().map(|r| r["id"].to_string()).collect()
}

#[tokio::test]
async fn the_credential_check_passes_with_a_good_token_and_returns_the_api_url() {
    let (handle, _) = start(5).await;
    let info = good(&handle).check().await.expect("check passes");
    assert_eq!(info.api_url, handle.api_url());
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized_and_the_message_never_contains_it() {
    let (handle, _) = start(5).await;
    let wrong = "Twr0ngTokenValue123";
    let creds = SyncroCredentials { site: handle.base_url(), api_key: SecretString::new(wrong) };
    let err = connect(creds, fast_settings()).check().await.expect_err("refused");
    assert_eq!((err.kind, err.retryable, err.status), (ErrorKind::Unauthorized, false, Some(401)));
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(wrong), "{shown}");
    assert!(err.message.contains("rejected the API token"), "{}", err.message);
    assert_eq!(handle.stats().unauthorized, 1, "a refused token is not retried");
}

#[tokio::test]
async fn an_unreachable_host_is_unreachable_and_names_the_host() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("an address").port()
    };
    let creds = SyncroCredentials { site: format!("http://127.0.0.1:{port}"), api_key: SecretString::new("token") };
    let started = Instant::now();
    let err = connect(creds, fast_settings()).check().await.expect_err("nothing listens");
    assert_eq!(err.kind, ErrorKind::Unreachable);
    assert!(err.message.contains(&format!("127.0.0.1:{port}")), "{}", err.message);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_url_without_a_syncro_api_is_an_unknown_account() {
    let (handle, _) = start(5).await;
    let creds = SyncroCredentials {
        site: format!("{}/no/such/account", handle.base_url()),
        api_key: SecretString::new(handle.credentials().api_key),
    };
    let err = connect(creds, fast_settings()).check().await.expect_err("no account there");
    assert_eq!(err.kind, ErrorKind::UnknownAccount);
    assert!(err.message.contains("/no/such/account"), "{}", err.message);
}

#[tokio::test]
async fn a_token_without_contact_rights_passes_the_check_but_is_forbidden_on_contacts() {
    let (handle, _) = start(5).await;
    let conn = connect(creds_of(handle.restricted_credentials()), fast_settings());
    conn.check().await.expect("check passes");
    let err = conn.list(Stage::Contacts.kind(), &Cursor::start()).await.expect_err("forbidden");
    assert_eq!(err.kind, ErrorKind::Forbidden);
    assert!(err.message.contains("group permissions"), "{}", err.message);
}

#[tokio::test]
async fn paging_to_the_end_yields_every_record_of_every_stage_exactly_once() {
    let (handle, tenant) = start(80).await;
    let conn = good(&handle);
    for (stage, resource) in [
        (Stage::Users, "users"),
        (Stage::Companies, "customers"),
        (Stage::Contacts, "contacts"),
        (Stage::Opportunities, "leads"),
    ] {
        let (records, pages) = fetch_all(conn.as_ref(), stage, Cursor::start()).await;
        let got = ids(&records);
        assert_eq!(got, record_ids(&tenant, resource), "{stage}");
        assert_eq!(got.iter().collect::<HashSet<_>>().len(), got.len());
        assert!(records.iter().all(|r| !matches!(r, ExternalRecord::Unreadable(_))), "{stage}");
        if stage != Stage::Users {
            assert_eq!(pages, got.len().div_ceil(tandem_sim::syncro::PAGE_SIZE).max(1), "{stage}");
        }
    }
    let (companies, _) = fetch_all(conn.as_ref(), Stage::Companies, Cursor::start()).await;
    assert!(companies.iter().any(|r| matches!(r, ExternalRecord::Company(c) if c.inactive)), "disabled are included");
}

#[tokio::test]
async fn users_carry_email_and_group_from_their_details() {
    let (handle, tenant) = start(5).await;
    let (records, _) = fetch_all(good(&handle).as_ref(), Stage::Users, Cursor::start()).await;
    let groups: BTreeMap<String, Option<String>> = records
        .iter()
        .filter_map(|r| match r {
            ExternalRecord::User(u) => Some((u.id.clone(), u.role.clone())),
            _ => None,
        })
        .collect();
    for u in tenant.records("users") {
        assert_eq!(groups.get(&u["id"].to_string()).cloned().flatten().as_deref(), u["group"].as_str());
    }
}

#[tokio::test]
async fn a_429_at_a_low_per_minute_limit_is_waited_out_and_every_page_arrives() {
    let (handle, tenant) = start(60).await;
    handle.set_requests_per_minute(Some(2));
    handle.set_rate_window(Duration::from_millis(300));
    let (records, _) = fetch_all(good(&handle).as_ref(), Stage::Companies, Cursor::start()).await;
    assert_eq!(records.len(), tenant.records("customers").len());
    assert!(handle.stats().throttled > 0, "{:?}", handle.stats());
}

#[tokio::test]
async fn server_errors_are_retried_until_the_fetch_succeeds() {
    let (handle, tenant) = start(10).await;
    handle.fail_next(3, 503);
    let page = good(&handle).list(Stage::Opportunities.kind(), &Cursor::start()).await.expect("retried to success");
    assert_eq!(page.records.len(), tenant.records("leads").len().min(tandem_sim::syncro::PAGE_SIZE));
    assert_eq!(handle.stats().injected_failures, 3);
}

#[tokio::test]
async fn a_since_cursor_keeps_only_records_updated_at_or_after_it() {
    let (handle, tenant) = start(60).await;
    let mut stamps: Vec<&str> = tenant.records("contacts").iter().filter_map(|c| c["updated_at"].as_str()).collect();
    stamps.sort_unstable();
    let since_text = stamps[stamps.len() / 2];
    let since = Timestamp::parse(since_text).expect("a timestamp");
    let want: Vec<String> = tenant
        .records("contacts")
        .iter()
        .filter(|c| c["updated_at"].as_str().is_some_and(|u| u >= since_text))
        .map(|c| c["id"].to_string())
        .collect();
    let cursor = Cursor { position: String::new(), since: Some(since) };
    let (records, pages) = fetch_all(good(&handle).as_ref(), Stage::Contacts, cursor).await;
    assert_eq!(ids(&records), want);
    assert_eq!(pages, tenant.records("contacts").len().div_ceil(tandem_sim::syncro::PAGE_SIZE), "pages through all");
}

#[tokio::test]
async fn customers_changed_since_are_read_newest_first_and_the_read_stops_at_the_first_older_page() {
    let (handle, tenant) = start(200).await;
    let all = record_ids(&tenant, "customers");
    assert!(all.len() > 4 * tandem_sim::syncro::PAGE_SIZE, "{} customers", all.len());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let since = Timestamp::from_unix(i64::try_from(now).unwrap() - 1).unwrap();
    // Two customers changed since, one at each end of the id order.
    let changed = [all[0].clone(), all[all.len() - 1].clone()];
    for id in &changed {
        let change = serde_json::json!({"business_name": "Changed"});
        handle.edit_as_person(tandem_sim::webhooks::Kind::Company, id, change).unwrap();
    }
    let cursor = Cursor { position: String::new(), since: Some(since) };
    let (records, pages) = fetch_all(good(&handle).as_ref(), Stage::Companies, cursor).await;
    let mut got = ids(&records);
    got.sort_unstable();
    let mut want = changed.to_vec();
    want.sort_unstable();
    assert_eq!(got, want, "exactly the changed customers");
    assert_eq!(pages, 1, "one page holds both changes and reaches back before `since`");
    // A full read (no `since`) still reads every page, in id order.
    let (records, pages) = fetch_all(good(&handle).as_ref(), Stage::Companies, Cursor::start()).await;
    assert_eq!(records.len(), all.len());
    assert_eq!(pages, all.len().div_ceil(tandem_sim::syncro::PAGE_SIZE));
}

#[tokio::test]
async fn options_offer_user_groups_no_type_and_the_lead_statuses() {
    let (handle, tenant) = start(5).await;
    let conn = good(&handle);
    let roles = conn.options(OptionList::Roles).await.expect("roles");
    let want: std::collections::BTreeSet<&str> =
        tenant.records("users").iter().filter_map(|u| u["group"].as_str()).collect();
    assert_eq!(roles.iter().map(|c| c.name.as_str()).collect::<std::collections::BTreeSet<_>>(), want);
    let no_type = vec![Choice { id: NO_TYPE.into(), name: "(no type)".into() }];
    assert_eq!(conn.options(OptionList::CompanyTypes).await.expect("types"), no_type);
    assert_eq!(conn.options(OptionList::ContactTypes).await.expect("types"), no_type);
    let statuses = conn.options(OptionList::OpportunityStatuses).await.expect("statuses");
    assert_eq!(statuses.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), LEAD_STATUSES);
    assert!(conn.options(OptionList::CatalogTypes).await.expect("empty").is_empty());
    assert!(conn.options(OptionList::ActivityTypes).await.expect("empty").is_empty());
}

#[tokio::test]
async fn leads_link_to_users_customers_and_contacts_by_their_numeric_ids() {
    let (handle, tenant) = start(40).await;
    let (records, _) = fetch_all(good(&handle).as_ref(), Stage::Opportunities, Cursor::start()).await;
    for (r, raw) in records.iter().zip(tenant.records("leads")) {
        let ExternalRecord::Opportunity(o) = r else { panic!("{r:?}") };
        assert_eq!(o.salesperson_id, raw["user_id"].as_i64().map(|i| i.to_string()));
        assert_eq!(o.company_id, raw["customer_id"].as_i64().map(|i| i.to_string()));
        assert_eq!(o.status_id.as_deref(), raw["status"].as_str());
    }
}

#[tokio::test]
async fn a_connector_never_shows_the_token_in_debug_output() {
    let (handle, _) = start(5).await;
    let creds = creds_of(handle.credentials());
    let conn = tandem_connectors::syncro::SyncroConnector::new(reqwest::Client::new(), fast_settings(), &creds)
        .expect("connector builds");
    let shown = format!("{conn:?}");
    assert!(!shown.contains(creds.api_key.expose()), "{shown}");
}

#[test]
fn a_contact_with_a_wrong_field_type_is_unreadable_while_the_others_map() {
    let body = br#"{"contacts":[
        {"id": 1, "name": "Boba Fett", "customer_id": 5, "email": "b@f.com"},
        {"id": 2, "name": 42, "customer_id": 5},
        {"id": 3, "name": "Jango Fett", "customer_id": "five"}
    ], "meta": {"total_pages": 1, "total_entries": 3, "per_page": 25, "page": 1}}"#;
    let records = parse_page(Stage::Contacts, body).expect("a page");
    assert!(matches!(&records[0], ExternalRecord::Contact(c) if c.last_name == "Fett"));
    for (r, id) in records[1..].iter().zip(["2", "3"]) {
        let ExternalRecord::Unreadable(u) = r else { panic!("{r:?}") };
        assert_eq!(u.id.as_deref(), Some(id));
        assert!(u.reason.contains("invalid type"), "{}", u.reason);
    }
}

#[test]
fn a_list_body_without_its_array_is_invalid_and_names_the_endpoint() {
    let err = parse_page(Stage::Companies, br#"{"meta": {}}"#).expect_err("no customers");
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(err.message.contains("/customers"), "{}", err.message);
}

#[tokio::test]
async fn get_reads_each_kind_from_its_single_record_endpoint_never_a_list() {
    let (handle, tenant) = start(10).await;
    let conn = good(&handle);
    let before = handle.stats().gets_by_path;
    for (stage, plural) in [
        (Stage::Users, "users"),
        (Stage::Companies, "customers"),
        (Stage::Contacts, "contacts"),
        (Stage::Opportunities, "leads"),
    ] {
        let id = tenant.records(plural)[0]["id"].to_string();
        let got = conn.get(stage.kind(), &id).await.unwrap_or_else(|e| panic!("{plural} {id}: {e}"));
        assert_eq!(got.as_ref().and_then(ExternalRecord::id), Some(id.as_str()), "{plural}");
    }
    let after = handle.stats().gets_by_path;
    for plural in ["users", "customers", "contacts", "leads"] {
        let key = format!("{plural}/{{id}}");
        assert_eq!(after.get(&key).copied().unwrap_or(0) - before.get(&key).copied().unwrap_or(0), 1, "{key}");
        assert_eq!(after.get(plural), before.get(plural), "{plural}: no list read");
    }
    handle.shutdown().await;
}
