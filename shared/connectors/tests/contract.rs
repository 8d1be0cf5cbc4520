//! One connector contract, written once and run against all four connectors over real HTTP
//! against their simulators (tandem-sim): credential checks, error classes, paging to the end,
//! cursor advance and idempotent reads, retries, rate limits and token expiry.
//!
//! Each system plugs in through a [`Harness`] (how to start its simulator, read its ground
//! truth and turn its knobs); [`checks`] holds the behaviour, generic over the harness; the
//! `contract!` macro generates one sentence-named test per check and system, so a failure reads
//! e.g. `syncro::an_injected_503_is_retried_and_the_fetch_succeeds`.

// Tests unwrap: a failed unwrap is a failed test, with the error in the panic message.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_connectors::{Connectors, Pacing, RetryPolicy, Settings};
use tandem_domain::external::{Cursor, ExternalRecord, Page};
use tandem_domain::ports::{Connector, ConnectorFactory, ErrorKind};
use tandem_domain::secret::Credentials;
use tandem_domain::{Stage, System};
use tandem_sim::{Expected, SimStats};

/// The page size the suite asks for (`Settings.page_size`); see [`Harness::EFFECTIVE_PAGE_SIZE`].
const SMALL_PAGE: u32 = 10;

/// The stage every system pages through in several pages at the harness's tenant size; used by
/// the checks that need "a paged read" (errors, rate limits, token expiry).
const PAGED_STAGE: Stage = Stage::Contacts;

/// A secret no simulator issued.
const WRONG_SECRET: &str = "Wr0ngContractSecret7f3a";

/// One system as the contract sees it: its simulator, ground truth and knobs.
trait Harness: Sized {
    /// The system under test.
    const SYSTEM: System;
    /// Companies in the generated tenant (the other stages scale with it).
    const COMPANIES: usize;
    /// The credentials field holding the site / login URL.
    const SITE_FIELD: &'static str;
    /// The credentials fields that are secrets; the first is the one the wrong-secret check
    /// replaces.
    const SECRET_FIELDS: &'static [&'static str];
    /// The most records a page of [`PAGED_STAGE`] holds when [`SMALL_PAGE`] is asked for: the
    /// page size where the connector honours `Settings.page_size`, else the system's own.
    const EFFECTIVE_PAGE_SIZE: usize;

    /// Generates a small tenant and serves it.
    async fn start() -> Self;
    /// The simulator's credentials, as the JSON body `Credentials::parse` takes.
    fn credentials(&self) -> serde_json::Value;
    /// The API root the credential check should report.
    fn api_url(&self) -> String;
    /// Generated records of `stage` (the generator's per-stage size).
    fn stage_size(&self, stage: Stage) -> usize;
    /// The ground truth's outcome total for `stage`: every record the import sees.
    fn expected_total(&self, stage: Stage) -> u64;
    /// The next `n` authenticated API requests answer `status`.
    fn fail_next(&self, n: u32, status: u16);
    /// Lowers the rate limit to one request per short window (Retry-After: 1 s).
    fn throttle(&self);
    /// The simulator's counters.
    fn stats(&self) -> SimStats;
    /// Makes every access token / session issued so far invalid. `None` when the system
    /// authenticates every request with static keys, so there is nothing to expire.
    fn expire_tokens(&self) -> Option<()>;
}

/// Retries fast (10 ms base) but still honours a simulator's one-second `Retry-After`.
fn settings(page_size: u32) -> Settings {
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

/// A connector built the way the service builds one: factory + parsed credentials body.
fn connect<H: Harness>(body: &serde_json::Value, page_size: u32) -> Arc<dyn Connector> {
    let creds = Credentials::parse(H::SYSTEM, body).unwrap();
    Connectors::new(settings(page_size)).connect(&creds).unwrap()
}

fn ids(records: &[ExternalRecord]) -> Vec<String> {
    records.iter().map(|r| r.id().unwrap_or("<no id>").to_string()).collect()
}

/// Every page of `stage` from the start: the records and the pages as read.
async fn read_all(conn: &dyn Connector, stage: Stage) -> (Vec<ExternalRecord>, Vec<usize>) {
    let mut cursor = Cursor::start();
    let mut records = Vec::new();
    let mut pages = Vec::new();
    loop {
        let Page { records: got, next } =
            conn.fetch(stage, &cursor).await.unwrap_or_else(|e| panic!("{stage} page {}: {e}", pages.len()));
        pages.push(got.len());
        records.extend(got);
        match next {
            Some(next) => cursor = next,
            None => return (records, pages),
        }
        assert!(pages.len() < 10_000, "{stage}: paging does not end");
    }
}

/// A loopback port nothing listens on.
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

mod checks {
    use super::*;

    pub async fn credential_check_passes<H: Harness>() {
        let h = H::start().await;
        let info = connect::<H>(&h.credentials(), SMALL_PAGE).check().await.expect("the check passes");
        assert_eq!(info.api_url, h.api_url());
    }

    pub async fn wrong_secret_is_unauthorized<H: Harness>() {
        let h = H::start().await;
        let good = h.credentials();
        let mut body = good.clone();
        body[H::SECRET_FIELDS[0]] = WRONG_SECRET.into();
        let err = connect::<H>(&body, SMALL_PAGE).check().await.expect_err("a wrong secret is refused");
        assert_eq!(err.kind, ErrorKind::Unauthorized, "{err}");
        assert!(!err.retryable, "{err:?}");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(WRONG_SECRET), "the wrong secret is shown: {shown}");
        for field in H::SECRET_FIELDS {
            let secret = good[*field].as_str().unwrap();
            assert!(!shown.contains(secret), "the {field} is shown: {shown}");
        }
    }

    pub async fn unreachable_host_is_unreachable<H: Harness>() {
        let h = H::start().await;
        let port = dead_port();
        let mut body = h.credentials();
        body[H::SITE_FIELD] = format!("http://127.0.0.1:{port}").into();
        let started = Instant::now();
        let err = connect::<H>(&body, SMALL_PAGE).check().await.expect_err("nothing listens there");
        let took = started.elapsed();
        assert_eq!(err.kind, ErrorKind::Unreachable, "{err}");
        assert!(err.message.contains(&format!("127.0.0.1:{port}")), "the host is named: {}", err.message);
        assert!(took < Duration::from_secs(3), "took {took:?}");
    }

    pub async fn paging_yields_every_record_once<H: Harness>() {
        let h = H::start().await;
        let conn = connect::<H>(&h.credentials(), SMALL_PAGE);
        for stage in H::SYSTEM.stages() {
            let (records, pages) = read_all(conn.as_ref(), *stage).await;
            let unreadable: Vec<_> = records.iter().filter(|r| matches!(r, ExternalRecord::Unreadable(_))).collect();
            assert!(unreadable.is_empty(), "{stage}: {unreadable:?}");
            let mut ids = ids(&records);
            assert_eq!(ids.len(), h.stage_size(*stage), "{stage}: the generator's count");
            assert_eq!(ids.len() as u64, h.expected_total(*stage), "{stage}: the ground truth's total");
            ids.sort();
            let before = ids.len();
            ids.dedup();
            assert_eq!(ids.len(), before, "{stage}: every id once");
            if *stage == PAGED_STAGE {
                assert!(pages.len() >= 2, "{stage}: read in several pages: {pages:?}");
                assert!(pages.len() >= before.div_ceil(H::EFFECTIVE_PAGE_SIZE), "{stage}: {pages:?}");
                assert!(pages.iter().all(|n| *n <= H::EFFECTIVE_PAGE_SIZE), "{stage}: page sizes {pages:?}");
            }
        }
    }

    pub async fn cursors_advance_and_reads_are_idempotent<H: Harness>() {
        let h = H::start().await;
        let conn = connect::<H>(&h.credentials(), SMALL_PAGE);
        for stage in H::SYSTEM.stages() {
            let mut cursor = Cursor::start();
            let mut seen = vec![cursor.clone()];
            loop {
                let first = conn.fetch(*stage, &cursor).await.unwrap_or_else(|e| panic!("{stage} {cursor:?}: {e}"));
                let again = conn.fetch(*stage, &cursor).await.unwrap_or_else(|e| panic!("{stage} {cursor:?}: {e}"));
                assert_eq!(ids(&first.records), ids(&again.records), "{stage}: re-reading {cursor:?}");
                assert_eq!(first.next.is_some(), again.next.is_some(), "{stage}: re-reading {cursor:?}");
                if let (Some(a), Some(b)) = (&first.next, &again.next)
                    && a != b
                {
                    // Cursors are opaque: a re-read may hand out a new token for the same place
                    // (Salesforce issues a new query locator per query). Both must lead on alike.
                    let via_a = conn.fetch(*stage, a).await.unwrap_or_else(|e| panic!("{stage} {a:?}: {e}"));
                    let via_b = conn.fetch(*stage, b).await.unwrap_or_else(|e| panic!("{stage} {b:?}: {e}"));
                    assert_eq!(ids(&via_a.records), ids(&via_b.records), "{stage}: {a:?} and {b:?} lead on alike");
                }
                let Some(next) = first.next else { break };
                assert_ne!(next, cursor, "{stage}: the cursor advances");
                assert!(!seen.contains(&next), "{stage}: {next:?} was read before");
                seen.push(next.clone());
                cursor = next;
                assert!(seen.len() < 10_000, "{stage}: paging does not end");
            }
        }
    }

    pub async fn a_503_is_retried<H: Harness>() {
        let h = H::start().await;
        let conn = connect::<H>(&h.credentials(), SMALL_PAGE);
        conn.check().await.expect("the check passes (tokens and sites settled before injecting)");
        let before = h.stats().injected_failures;
        h.fail_next(1, 503);
        let page = conn.fetch(PAGED_STAGE, &Cursor::start()).await.expect("the 503 is retried");
        assert!(!page.records.is_empty());
        assert_eq!(h.stats().injected_failures, before + 1, "the 503 was answered");
    }

    pub async fn a_404_or_400_is_not_retried<H: Harness>() {
        let h = H::start().await;
        let conn = connect::<H>(&h.credentials(), SMALL_PAGE);
        conn.check().await.expect("the check passes (tokens and sites settled before injecting)");
        for (status, kind) in [(404, ErrorKind::NotFound), (400, ErrorKind::Invalid)] {
            let before = h.stats().injected_failures;
            h.fail_next(1, status);
            let err = conn.fetch(PAGED_STAGE, &Cursor::start()).await.expect_err("fails without a retry");
            assert_eq!((err.kind, err.retryable, err.status), (kind, false, Some(status)), "{err}");
            assert_eq!(h.stats().injected_failures, before + 1, "{status}: one attempt only");
        }
        conn.fetch(PAGED_STAGE, &Cursor::start()).await.expect("reads work again");
    }

    pub async fn rate_limits_are_waited_out<H: Harness>() {
        let h = H::start().await;
        // Bigger pages than elsewhere: every throttled page costs a one-second Retry-After.
        let conn = connect::<H>(&h.credentials(), 30);
        conn.check().await.expect("the check passes before throttling");
        h.throttle();
        let (records, pages) = read_all(conn.as_ref(), PAGED_STAGE).await;
        assert_eq!(records.len(), h.stage_size(PAGED_STAGE), "pages {pages:?}");
        assert!(pages.len() >= 2, "{pages:?}");
        let stats = h.stats();
        assert!(stats.throttled > 0, "429s were answered: {stats:?}");
    }

    pub async fn token_expiry<H: Harness>(issues_tokens: bool) {
        let h = H::start().await;
        let conn = connect::<H>(&h.credentials(), SMALL_PAGE);
        conn.check().await.expect("the check passes (a token is issued)");
        let before = h.stats().unauthorized;
        let expired = h.expire_tokens();
        assert_eq!(expired.is_some(), issues_tokens, "the harness and the test name disagree");
        if expired.is_none() {
            // Not applicable: the system signs every request with static keys, so there is no
            // token or session the simulator could expire (revoked keys are the wrong-secret check).
            eprintln!("{}: no token expiry to check (static keys)", H::SYSTEM.display_name());
            return;
        }
        let page = conn.fetch(PAGED_STAGE, &Cursor::start()).await.expect("the token is renewed");
        assert!(!page.records.is_empty());
        assert!(h.stats().unauthorized > before, "the expired token was refused once: {:?}", h.stats());
        let (records, _) = read_all(conn.as_ref(), PAGED_STAGE).await;
        assert_eq!(records.len(), h.stage_size(PAGED_STAGE));
    }
}

/// One test per check for `$system`; `tokens` / `static_keys` names the token-expiry test.
macro_rules! contract {
    ($system:ident, $harness:ty, $auth:ident) => {
        mod $system {
            use super::*;

            #[tokio::test]
            async fn the_credential_check_passes_with_good_credentials_and_returns_the_api_url() {
                checks::credential_check_passes::<$harness>().await;
            }

            #[tokio::test]
            async fn a_wrong_secret_is_unauthorized_not_retryable_and_never_shown() {
                checks::wrong_secret_is_unauthorized::<$harness>().await;
            }

            #[tokio::test]
            async fn an_unreachable_host_is_unreachable_quickly() {
                checks::unreachable_host_is_unreachable::<$harness>().await;
            }

            #[tokio::test]
            async fn paging_every_stage_to_the_end_yields_every_record_exactly_once() {
                checks::paging_yields_every_record_once::<$harness>().await;
            }

            #[tokio::test]
            async fn each_next_cursor_moves_on_and_rereading_a_cursor_returns_the_same_page() {
                checks::cursors_advance_and_reads_are_idempotent::<$harness>().await;
            }

            #[tokio::test]
            async fn an_injected_503_is_retried_and_the_fetch_succeeds() {
                checks::a_503_is_retried::<$harness>().await;
            }

            #[tokio::test]
            async fn an_injected_404_or_400_is_not_retried_and_keeps_its_kind() {
                checks::a_404_or_400_is_not_retried::<$harness>().await;
            }

            #[tokio::test]
            async fn a_full_read_under_a_low_rate_limit_waits_out_the_429s() {
                checks::rate_limits_are_waited_out::<$harness>().await;
            }

            contract!(@expiry $harness, $auth);
        }
    };
    (@expiry $harness:ty, tokens) => {
        #[tokio::test]
        async fn after_every_token_expires_the_next_fetch_renews_it_and_succeeds() {
            checks::token_expiry::<$harness>(true).await;
        }
    };
    (@expiry $harness:ty, static_keys) => {
        #[tokio::test]
        async fn token_expiry_does_not_apply_to_static_keys() {
            checks::token_expiry::<$harness>(false).await;
        }
    };
}

contract!(connectwise, ConnectWise, static_keys);
contract!(halo, Halo, tokens);
contract!(syncro, Syncro, static_keys);
contract!(salesforce, Salesforce, tokens);

/// The outcome total of `stage` in a simulator's ground truth.
fn total(expected: &Expected, stage: Stage) -> u64 {
    expected.get(stage.as_str()).map_or(0, |outcomes| outcomes.values().sum())
}

fn size(sizes: &std::collections::BTreeMap<String, usize>, stage: Stage) -> usize {
    *sizes.get(stage.as_str()).unwrap_or_else(|| panic!("the simulator has no {stage} stage size: {sizes:?}"))
}

/// ConnectWise: API-member keys (static), honours `pageSize`.
struct ConnectWise {
    sim: tandem_sim::connectwise::SimHandle,
    tenant: tandem_sim::connectwise::Tenant,
}

impl Harness for ConnectWise {
    const SYSTEM: System = System::ConnectWise;
    const COMPANIES: usize = 30;
    const SITE_FIELD: &'static str = "site";
    const SECRET_FIELDS: &'static [&'static str] = &["private_key"];
    const EFFECTIVE_PAGE_SIZE: usize = SMALL_PAGE as usize;

    async fn start() -> Self {
        use tandem_sim::connectwise::{GenConfig, SimConfig, Simulator, Tenant};
        let tenant = Tenant::generate(&GenConfig::with_companies(7, Self::COMPANIES));
        let sim = Simulator::start(tenant.clone(), SimConfig::default(), 0).await.unwrap();
        Self { sim, tenant }
    }
    fn credentials(&self) -> serde_json::Value {
        serde_json::to_value(self.sim.credentials()).unwrap()
    }
    fn api_url(&self) -> String {
        self.sim.api_url()
    }
    fn stage_size(&self, stage: Stage) -> usize {
        size(&self.tenant.stage_sizes(), stage)
    }
    fn expected_total(&self, stage: Stage) -> u64 {
        total(self.tenant.expected(), stage)
    }
    fn fail_next(&self, n: u32, status: u16) {
        self.sim.fail_next(n, status);
    }
    fn throttle(&self) {
        self.sim.set_requests_per_second(Some(1));
    }
    fn stats(&self) -> SimStats {
        self.sim.stats()
    }
    fn expire_tokens(&self) -> Option<()> {
        None
    }
}

/// HaloPSA: OAuth2 client credentials (bearer tokens), pages of at most 100.
struct Halo {
    sim: tandem_sim::halo::SimHandle,
    tenant: tandem_sim::halo::Tenant,
}

impl Harness for Halo {
    const SYSTEM: System = System::Halo;
    const COMPANIES: usize = 30;
    const SITE_FIELD: &'static str = "site";
    const SECRET_FIELDS: &'static [&'static str] = &["client_secret"];
    const EFFECTIVE_PAGE_SIZE: usize = SMALL_PAGE as usize;

    async fn start() -> Self {
        use tandem_sim::halo::{GenConfig, SimConfig, Simulator, Tenant};
        let tenant = Tenant::generate(&GenConfig::with_companies(7, Self::COMPANIES));
        let sim = Simulator::start(tenant.clone(), SimConfig::default(), 0).await.unwrap();
        Self { sim, tenant }
    }
    fn credentials(&self) -> serde_json::Value {
        serde_json::to_value(self.sim.credentials()).unwrap()
    }
    fn api_url(&self) -> String {
        self.sim.api_url()
    }
    fn stage_size(&self, stage: Stage) -> usize {
        size(&self.tenant.stage_sizes(), stage)
    }
    fn expected_total(&self, stage: Stage) -> u64 {
        total(self.tenant.expected(), stage)
    }
    fn fail_next(&self, n: u32, status: u16) {
        self.sim.fail_next(n, status);
    }
    fn throttle(&self) {
        self.sim.set_requests_per_second(Some(1));
    }
    fn stats(&self) -> SimStats {
        self.sim.stats()
    }
    fn expire_tokens(&self) -> Option<()> {
        self.sim.expire_tokens();
        Some(())
    }
}

/// Syncro: a static API token; pages are the API's fixed size (the connector cannot choose it).
/// The documented 180-per-minute limit stays on.
struct Syncro {
    sim: tandem_sim::syncro::SimHandle,
    tenant: tandem_sim::syncro::Tenant,
}

impl Harness for Syncro {
    const SYSTEM: System = System::Syncro;
    const COMPANIES: usize = 30;
    const SITE_FIELD: &'static str = "site";
    const SECRET_FIELDS: &'static [&'static str] = &["api_key"];
    const EFFECTIVE_PAGE_SIZE: usize = tandem_sim::syncro::PAGE_SIZE;

    async fn start() -> Self {
        use tandem_sim::syncro::{GenConfig, SimConfig, Simulator, Tenant};
        let tenant = Tenant::generate(&GenConfig::with_companies(7, Self::COMPANIES));
        let sim = Simulator::start(tenant.clone(), SimConfig::default(), 0).await.unwrap();
        Self { sim, tenant }
    }
    fn credentials(&self) -> serde_json::Value {
        serde_json::to_value(self.sim.credentials()).unwrap()
    }
    fn api_url(&self) -> String {
        self.sim.api_url()
    }
    fn stage_size(&self, stage: Stage) -> usize {
        size(&self.tenant.stage_sizes(), stage)
    }
    fn expected_total(&self, stage: Stage) -> u64 {
        total(self.tenant.expected(), stage)
    }
    fn fail_next(&self, n: u32, status: u16) {
        self.sim.fail_next(n, status);
    }
    fn throttle(&self) {
        // Syncro limits per minute; a short window keeps the Retry-After at one second.
        self.sim.set_requests_per_minute(Some(1));
        self.sim.set_rate_window(Duration::from_millis(300));
    }
    fn stats(&self) -> SimStats {
        self.sim.stats()
    }
    fn expire_tokens(&self) -> Option<()> {
        None
    }
}

/// Salesforce: OAuth2 sessions (the simulator's credentials carry a refresh token, so the
/// connector uses the refresh-token grant). `batchSize` is at least 200, so this org is bigger
/// than the others: 70 companies give 210 contacts, two batches.
struct Salesforce {
    sim: tandem_sim::salesforce::SimHandle,
    tenant: tandem_sim::salesforce::Tenant,
}

impl Harness for Salesforce {
    const SYSTEM: System = System::Salesforce;
    const COMPANIES: usize = 70;
    const SITE_FIELD: &'static str = "login_url";
    const SECRET_FIELDS: &'static [&'static str] = &["client_secret", "refresh_token"];
    const EFFECTIVE_PAGE_SIZE: usize = tandem_connectors::salesforce::pagination::MIN_BATCH as usize;

    async fn start() -> Self {
        use tandem_sim::salesforce::{GenConfig, SimConfig, Simulator, Tenant};
        let tenant = Tenant::generate(&GenConfig::with_companies(7, Self::COMPANIES));
        let sim = Simulator::start(tenant.clone(), SimConfig::default(), 0).await.unwrap();
        Self { sim, tenant }
    }
    fn credentials(&self) -> serde_json::Value {
        serde_json::to_value(self.sim.credentials()).unwrap()
    }
    fn api_url(&self) -> String {
        self.sim.api_url()
    }
    fn stage_size(&self, stage: Stage) -> usize {
        size(&self.tenant.stage_sizes(), stage)
    }
    fn expected_total(&self, stage: Stage) -> u64 {
        total(self.tenant.expected(), stage)
    }
    fn fail_next(&self, n: u32, status: u16) {
        self.sim.fail_next(n, status);
    }
    fn throttle(&self) {
        self.sim.set_requests_per_second(Some(1));
    }
    fn stats(&self) -> SimStats {
        self.sim.stats()
    }
    fn expire_tokens(&self) -> Option<()> {
        self.sim.expire_sessions();
        Some(())
    }
}
