//! The HaloPSA connector over real HTTP against the HaloPSA simulator (tandem-sim):
//! credential checks, token expiry and refresh, paging, rate limits, retries, incremental
//! reads and option lists.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tandem_connectors::halo::TICKETS_PER_READ;
use tandem_connectors::{Connectors, Pacing, RetryPolicy, Settings};
use tandem_domain::external::{Cursor, ExternalRecord, NO_TYPE, OptionList};
use tandem_domain::ports::{Connector, ConnectorFactory, ErrorKind};
use tandem_domain::secret::{Credentials, HaloCredentials, SecretString};
use tandem_domain::{Stage, Timestamp};
use tandem_sim::halo::{GenConfig, SimConfig, SimHandle, Simulator, Tenant};

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

fn creds_of(c: tandem_sim::halo::Credentials) -> HaloCredentials {
    HaloCredentials {
        site: c.site,
        auth_url: None,
        tenant: c.tenant,
        client_id: c.client_id,
        client_secret: SecretString::new(c.client_secret),
    }
}

fn connect(creds: HaloCredentials, settings: Settings) -> Arc<dyn Connector> {
    Connectors::new(settings).connect(&Credentials::Halo(creds)).expect("connector builds")
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
        assert!(pages < 10_000, "paging does not end");
    }
}

fn size_of(t: &Tenant, stage: &str) -> usize {
    t.stage_sizes()[stage]
}

#[tokio::test]
async fn valid_credentials_pass_the_check_with_the_api_root() {
    let (sim, _) = start(5).await;
    let info = good(&sim, 100).check().await.expect("check passes");
    assert_eq!(info.api_url, sim.api_url());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_bad_client_secret_is_unauthorized_and_never_echoed() {
    let (sim, _) = start(5).await;
    let mut creds = creds_of(sim.credentials());
    creds.client_secret = SecretString::new("wrong-secret-value");
    let err = connect(creds, fast_settings(100)).check().await.expect_err("refused");
    assert_eq!((err.kind, err.retryable), (ErrorKind::Unauthorized, false));
    assert!(!err.message.contains("wrong-secret-value"), "{}", err.message);
    assert!(err.message.contains("client secret"), "{}", err.message);
    sim.shutdown().await;
}

#[tokio::test]
async fn an_unknown_or_missing_tenant_is_an_unknown_account() {
    let (sim, _) = start(5).await;
    let mut creds = creds_of(sim.credentials());
    creds.tenant = Some("elsewhere".into());
    let err = connect(creds.clone(), fast_settings(100)).check().await.expect_err("refused");
    assert_eq!(err.kind, ErrorKind::UnknownAccount, "{}", err.message);
    assert!(err.message.contains("elsewhere"), "{}", err.message);
    creds.tenant = None;
    let err = connect(creds, fast_settings(100)).check().await.expect_err("refused");
    assert_eq!(err.kind, ErrorKind::UnknownAccount, "{}", err.message);
    sim.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_host_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let creds = HaloCredentials {
        site: format!("http://127.0.0.1:{port}"),
        auth_url: None,
        tenant: Some("x".into()),
        client_id: "id".into(),
        client_secret: SecretString::new("secret-value"),
    };
    let mut settings = fast_settings(100);
    settings.retry.max_attempts = 1;
    let err = connect(creds, settings).check().await.expect_err("unreachable");
    assert_eq!(err.kind, ErrorKind::Unreachable, "{}", err.message);
}

#[tokio::test]
async fn every_stage_pages_to_the_end_and_reads_every_record() {
    let (sim, t) = start(230).await;
    let conn = good(&sim, 1000);
    for (stage, name) in [
        (Stage::Users, "users"),
        (Stage::Companies, "companies"),
        (Stage::Contacts, "contacts"),
        (Stage::Opportunities, "opportunities"),
        (Stage::Activities, "activities"),
    ] {
        let (records, pages) = fetch_all(conn.as_ref(), stage, Cursor::start()).await;
        assert_eq!(records.len(), size_of(&t, name), "{name}");
        let ids: HashSet<&str> = records.iter().filter_map(ExternalRecord::id).collect();
        assert_eq!(ids.len(), records.len(), "{name} ids unique");
        assert!(records.iter().all(|r| !matches!(r, ExternalRecord::Unreadable(_))), "{name}");
        if name == "contacts" {
            assert!(pages >= 7, "contacts in pages of at most 100: {pages}");
        }
    }
    let (activities, _) = fetch_all(conn.as_ref(), Stage::Activities, Cursor::start()).await;
    assert!(activities.iter().any(|a| a.id().is_some_and(|i| i.starts_with("note-"))));
    assert!(
        activities
            .iter()
            .any(|a| matches!(a, ExternalRecord::Activity(x) if x.id.starts_with("action-") && x.contact_id.is_some()))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn an_expired_token_is_renewed_and_the_read_succeeds() {
    let (sim, _) = start(20).await;
    let conn = good(&sim, 10);
    conn.check().await.expect("first token");
    sim.expire_tokens();
    let page = conn.list(Stage::Companies.kind(), &Cursor::start()).await.expect("renewed");
    assert!(!page.records.is_empty());
    sim.set_token_lifetime(Duration::from_millis(1500));
    sim.expire_tokens();
    conn.check().await.expect("a short token");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    conn.check().await.expect("renewed after expiry");
    assert!(sim.stats().unauthorized >= 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_and_then_succeeds() {
    let (sim, _) = start(5).await;
    let conn = good(&sim, 100);
    conn.check().await.unwrap();
    sim.fail_next(2, 429);
    conn.list(Stage::Companies.kind(), &Cursor::start()).await.expect("succeeds after 429s");
    assert_eq!(sim.stats().injected_failures, 2);
    sim.set_requests_per_second(Some(2));
    for _ in 0..5 {
        conn.list(Stage::Companies.kind(), &Cursor::start()).await.expect("throttled then served");
    }
    assert!(sim.stats().throttled > 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn server_errors_are_retried_and_a_lasting_one_fails_as_transient() {
    let (sim, _) = start(5).await;
    let conn = good(&sim, 100);
    sim.fail_next(2, 503);
    conn.list(Stage::Contacts.kind(), &Cursor::start()).await.expect("retried");
    sim.fail_next(50, 500);
    let err = conn.list(Stage::Contacts.kind(), &Cursor::start()).await.expect_err("gives up");
    assert_eq!((err.kind, err.retryable), (ErrorKind::Transient, true));
    sim.shutdown().await;
}

#[tokio::test]
async fn the_since_filter_reads_only_records_updated_after_it() {
    let (sim, t) = start(120).await;
    let conn = good(&sim, 100);
    let since = Timestamp::parse("2024-06-01T00:00:00Z").unwrap();
    let cursor = Cursor { position: String::new(), since: Some(since) };
    let (recent, _) = fetch_all(conn.as_ref(), Stage::Companies, cursor).await;
    assert!(!recent.is_empty() && recent.len() < size_of(&t, "companies"));
    for r in &recent {
        let ExternalRecord::Company(c) = r else { panic!("{r:?}") };
        assert!(c.updated_at.as_ref().map(|v| v.as_str()).is_some_and(|u| u >= "2024-06-01"), "{c:?}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn option_lists_offer_the_halo_choices() {
    let (sim, _) = start(5).await;
    let conn = good(&sim, 100);
    let names = |cs: Vec<tandem_domain::external::Choice>| cs.into_iter().map(|c| c.name).collect::<Vec<_>>();
    let role_choices = conn.options(OptionList::Roles).await.unwrap();
    assert!(role_choices.iter().all(|c| c.id.len() == 36 && c.id.matches('-').count() == 4), "{role_choices:?}");
    let (users, _) = fetch_all(conn.as_ref(), Stage::Users, Cursor::default()).await;
    for r in &users {
        let ExternalRecord::User(u) = r else { panic!("{r:?}") };
        let role = u.role.as_deref().expect("every generated agent has a role");
        assert!(role_choices.iter().any(|c| c.id == role), "{role} is no role choice");
    }
    let roles = names(role_choices);
    assert!(roles.contains(&"Sales".to_string()) && roles.contains(&"API".to_string()), "{roles:?}");
    let types = conn.options(OptionList::CompanyTypes).await.unwrap();
    assert!(types.iter().any(|c| c.name == "Customer") && types.iter().any(|c| c.id == NO_TYPE));
    let contact_types = conn.options(OptionList::ContactTypes).await.unwrap();
    assert_eq!(contact_types.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), [NO_TYPE]);
    let kinds = names(conn.options(OptionList::ActivityTypes).await.unwrap());
    assert!(kinds.contains(&"Phone Call".to_string()) && kinds.contains(&"CRM Note".to_string()), "{kinds:?}");
    let statuses = names(conn.options(OptionList::OpportunityStatuses).await.unwrap());
    assert!(statuses.contains(&"Won".to_string()), "{statuses:?}");
    for list in [OptionList::CatalogTypes, OptionList::CatalogCategories, OptionList::BillingOptions] {
        assert!(conn.options(list).await.unwrap().is_empty());
    }
    // The typical mapping names exactly these choices.
    let typical = tandem_sim::halo::typical_mapping();
    for (name, _) in &typical.activity_types {
        assert!(kinds.contains(name), "{name} not offered");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn the_tickets_of_a_page_of_actions_are_read_together_not_one_by_one() {
    let (handle, _) = start(40).await;
    let before = handle.stats().gets_by_path;
    // Pages of 10: each page's tickets fit one read of TICKETS_PER_READ.
    const { assert!(TICKETS_PER_READ >= 10) };
    let (listed, _) = fetch_all(good(&handle, 10).as_ref(), Stage::Activities, Cursor::start()).await;
    let after = handle.stats().gets_by_path;
    let delta = |key: &str| after.get(key).copied().unwrap_or(0) - before.get(key).copied().unwrap_or(0);
    let actions = listed.iter().filter(|r| r.id().is_some_and(|id| id.starts_with("action-"))).count() as u64;
    assert!(actions > 10 && delta("actions") > 1, "enough actions to span pages: {actions}");
    assert_eq!(delta("opportunities/{id}"), 0, "no ticket is read on its own: {after:?}");
    let reads = delta("opportunities");
    assert!(reads <= delta("actions") && reads < actions, "{reads} ticket reads for {actions} actions: {after:?}");
    assert!(listed.iter().any(|r| matches!(r, ExternalRecord::Activity(a) if a.contact_id.is_some())));
    handle.shutdown().await;
}

#[tokio::test]
async fn an_action_got_on_its_own_takes_its_contact_from_its_ticket_and_a_note_reads_only_the_note() {
    let (handle, _) = start(10).await;
    let (listed, _) = fetch_all(good(&handle, 100).as_ref(), Stage::Activities, Cursor::start()).await;
    let action = listed.iter().find(|r| r.id().is_some_and(|id| id.starts_with("action-"))).expect("an action");
    let note = listed.iter().find(|r| r.id().is_some_and(|id| id.starts_with("note-"))).expect("a note");
    let fresh = good(&handle, 100);
    let before = handle.stats().gets_by_path;
    let got = fresh.get(Stage::Activities.kind(), action.id().unwrap()).await.expect("the action");
    assert_eq!(got.as_ref(), Some(action));
    let after = handle.stats().gets_by_path;
    let delta = |key: &str| after.get(key).copied().unwrap_or(0) - before.get(key).copied().unwrap_or(0);
    let reads = (delta("actions/{id}"), delta("opportunities"), delta("opportunities/{id}"), delta("actions"));
    assert_eq!(reads, (1, 1, 0, 0), "the action, then its ticket through the list's ticketids filter: {after:?}");
    let got = fresh.get(Stage::Activities.kind(), note.id().unwrap()).await.expect("the note");
    assert_eq!(got.as_ref(), Some(note));
    assert_eq!(handle.stats().gets_by_path.get("crmnote/{id}"), Some(&1));
    let err = fresh.get(Stage::Activities.kind(), "ticket-1").await.expect_err("not an activity id");
    assert_eq!(err.kind, ErrorKind::Invalid);
    handle.shutdown().await;
}
