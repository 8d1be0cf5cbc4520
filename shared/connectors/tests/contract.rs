//! One connector contract, written once and run against all four connectors over real HTTP
//! against their simulators (tandem-sim): credential checks, error classes, paging to the end,
//! cursor advance and idempotent reads, getting one record by id, retries, rate limits and token expiry.
//!
//! Each system plugs in through tandem-sim's one shape ([`SimulatedSystem`], found by the
//! system's name): its generator, ground truth, page sizes, credential fields and knobs. A
//! [`Harness`] is one started simulator; [`checks`] holds the behaviour; the `contract!` macro
//! generates one sentence-named test per check and system, so a failure reads e.g.
//! `syncro::an_injected_503_is_retried_and_the_fetch_succeeds`.

// Tests unwrap: a failed unwrap is a failed test, with the error in the panic message.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_connectors::{Connectors, Pacing, RetryPolicy, Settings};
use tandem_domain::external::{Cursor, ExternalRecord, Page};
use tandem_domain::ports::{Connector, ConnectorFactory, ErrorKind};
use tandem_domain::secret::Credentials;
use tandem_domain::{RecordKind, Stage, System};
use tandem_sim::{CredentialFields, Expected, RunningSystem, Scale, SimConfig, SimStats, SimulatedSystem};

/// The page size the suite asks for (`Settings.page_size`); see [`Harness::effective_page_size`].
const SMALL_PAGE: u32 = 10;

/// The stage every system pages through in several pages at the harness's tenant size; used by
/// the checks that need "a paged read" (errors, rate limits, token expiry).
const PAGED_STAGE: Stage = Stage::Contacts;

/// A secret no simulator issued.
const WRONG_SECRET: &str = "Wr0ngContractSecret7f3a";

/// Companies in a generated tenant unless the vendor's smallest page needs more (the other
/// stages scale with it).
const COMPANIES: usize = 30;

/// The generator's seed.
const SEED: u64 = 7;

/// One system as the contract sees it: its simulator started on a small generated tenant,
/// with that tenant's stage sizes and ground truth.
struct Harness {
    system: System,
    sim: &'static dyn SimulatedSystem,
    sizes: BTreeMap<String, usize>,
    expected: Expected,
    running: Box<dyn RunningSystem>,
}

impl Harness {
    /// Generates a tenant whose [`PAGED_STAGE`] spans at least two pages and serves it (with
    /// the vendor's own limits on, e.g. Syncro's 180 per minute).
    async fn start(system: System) -> Self {
        let sim = tandem_sim::simulator(system.as_str()).unwrap_or_else(|| panic!("{system} has no simulator"));
        let page = sim.page_sizes().effective(SMALL_PAGE as usize);
        let mut tenant = sim.generate(&Scale::new(SEED, COMPANIES));
        let paged = size(&tenant.stage_sizes(), PAGED_STAGE);
        if paged <= page {
            // e.g. Salesforce: `batchSize` is at least 200, so its org is bigger than the others.
            tenant = sim.generate(&Scale::new(SEED, (COMPANIES * (page + 10)).div_ceil(paged.max(1))));
        }
        let (sizes, expected) = (tenant.stage_sizes(), tenant.expected().clone());
        let running = tenant.serve(SimConfig::default(), 0).await.unwrap();
        Self { system, sim, sizes, expected, running }
    }

    /// Where the credentials keep the site and the secrets.
    fn fields(&self) -> CredentialFields {
        self.sim.credential_fields()
    }

    /// The most records a page of [`PAGED_STAGE`] holds when [`SMALL_PAGE`] is asked for: the
    /// page size where the vendor honours it, else the vendor's nearest.
    fn effective_page_size(&self) -> usize {
        self.sim.page_sizes().effective(SMALL_PAGE as usize)
    }

    /// The simulator's credentials, as the JSON body `Credentials::parse` takes.
    fn credentials(&self) -> serde_json::Value {
        self.running.credentials()
    }

    /// The API root the credential check should report.
    fn api_url(&self) -> String {
        self.running.api_url()
    }

    /// Generated records of `stage` (the generator's per-stage size).
    fn stage_size(&self, stage: Stage) -> usize {
        size(&self.sizes, stage)
    }

    /// The ground truth's outcome total for `stage`: every record the import sees.
    fn expected_total(&self, stage: Stage) -> u64 {
        total(&self.expected, stage)
    }

    /// The next `n` authenticated API requests answer `status`.
    fn fail_next(&self, n: u32, status: u16) {
        self.running.fail_next(n, status);
    }

    /// Lowers the rate limit to one request per short window (Retry-After: 1 s).
    fn throttle(&self) {
        self.running.throttle();
    }

    /// The simulator's counters.
    fn stats(&self) -> SimStats {
        self.running.stats()
    }

    /// Makes every access token / session issued so far invalid; false when the system
    /// authenticates every request with static keys, so there is nothing to expire.
    fn expire_tokens(&self) -> bool {
        self.running.expire_tokens()
    }
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
fn connect(system: System, body: &serde_json::Value, page_size: u32) -> Arc<dyn Connector> {
    let creds = Credentials::parse(system, body).unwrap();
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
            conn.list(stage.kind(), &cursor).await.unwrap_or_else(|e| panic!("{stage} page {}: {e}", pages.len()));
        pages.push(got.len());
        records.extend(got);
        match next {
            Some(next) => cursor = next,
            None => return (records, pages),
        }
        assert!(pages.len() < 10_000, "{stage}: paging does not end");
    }
}

/// Ids no system could have: injections, paths, wrong shapes and lengths.
const MALFORMED_IDS: &[&str] = &[
    "",
    "1 OR 1=1",
    "1' OR Id != '",
    "../1",
    "1/forecast",
    "1?fields=id",
    "-1",
    "9999999999999999999999999999999999999999",
    "note-1' OR '1",
];

/// A well-formed id of `stage` that the simulator's tenant does not hold, shaped like
/// `sample` (a listed id): Salesforce keeps the key prefix, Halo activities their source.
fn unknown_id(system: System, stage: Stage, sample: &str) -> String {
    match (system, stage) {
        (System::Salesforce, _) => format!("{}{}", &sample[..3], "Z".repeat(15)),
        (System::Halo, Stage::Activities) => format!("{}-987654321", sample.split('-').next().unwrap()),
        _ => "987654321".to_string(),
    }
}

/// A loopback port nothing listens on.
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

mod checks {
    use super::*;

    pub async fn credential_check_passes(system: System) {
        let h = Harness::start(system).await;
        let info = connect(h.system, &h.credentials(), SMALL_PAGE).check().await.expect("the check passes");
        assert_eq!(info.api_url, h.api_url());
    }

    pub async fn wrong_secret_is_unauthorized(system: System) {
        let h = Harness::start(system).await;
        let good = h.credentials();
        let mut body = good.clone();
        body[h.fields().secrets[0]] = WRONG_SECRET.into();
        let err = connect(h.system, &body, SMALL_PAGE).check().await.expect_err("a wrong secret is refused");
        assert_eq!(err.kind, ErrorKind::Unauthorized, "{err}");
        assert!(!err.retryable, "{err:?}");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(WRONG_SECRET), "the wrong secret is shown: {shown}");
        for field in h.fields().secrets {
            let secret = good[*field].as_str().unwrap();
            assert!(!shown.contains(secret), "the {field} is shown: {shown}");
        }
    }

    pub async fn unreachable_host_is_unreachable(system: System) {
        let h = Harness::start(system).await;
        let port = dead_port();
        let mut body = h.credentials();
        body[h.fields().site] = format!("http://127.0.0.1:{port}").into();
        let started = Instant::now();
        let err = connect(h.system, &body, SMALL_PAGE).check().await.expect_err("nothing listens there");
        let took = started.elapsed();
        assert_eq!(err.kind, ErrorKind::Unreachable, "{err}");
        assert!(err.message.contains(&format!("127.0.0.1:{port}")), "the host is named: {}", err.message);
        assert!(took < Duration::from_secs(3), "took {took:?}");
    }

    pub async fn paging_yields_every_record_once(system: System) {
        let h = Harness::start(system).await;
        let conn = connect(h.system, &h.credentials(), SMALL_PAGE);
        for stage in h.system.stages() {
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
                assert!(pages.len() >= before.div_ceil(h.effective_page_size()), "{stage}: {pages:?}");
                assert!(pages.iter().all(|n| *n <= h.effective_page_size()), "{stage}: page sizes {pages:?}");
            }
        }
    }

    pub async fn cursors_advance_and_reads_are_idempotent(system: System) {
        let h = Harness::start(system).await;
        let conn = connect(h.system, &h.credentials(), SMALL_PAGE);
        for stage in h.system.stages() {
            let mut cursor = Cursor::start();
            let mut seen = vec![cursor.clone()];
            loop {
                let first =
                    conn.list(stage.kind(), &cursor).await.unwrap_or_else(|e| panic!("{stage} {cursor:?}: {e}"));
                let again =
                    conn.list(stage.kind(), &cursor).await.unwrap_or_else(|e| panic!("{stage} {cursor:?}: {e}"));
                assert_eq!(ids(&first.records), ids(&again.records), "{stage}: re-reading {cursor:?}");
                assert_eq!(first.next.is_some(), again.next.is_some(), "{stage}: re-reading {cursor:?}");
                if let (Some(a), Some(b)) = (&first.next, &again.next)
                    && a != b
                {
                    // Cursors are opaque: a re-read may hand out a new token for the same place
                    // (Salesforce issues a new query locator per query). Both must lead on alike.
                    let via_a = conn.list(stage.kind(), a).await.unwrap_or_else(|e| panic!("{stage} {a:?}: {e}"));
                    let via_b = conn.list(stage.kind(), b).await.unwrap_or_else(|e| panic!("{stage} {b:?}: {e}"));
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

    pub async fn get_returns_each_listed_record_as_the_list_mapped_it(system: System) {
        let h = Harness::start(system).await;
        let conn = connect(h.system, &h.credentials(), SMALL_PAGE);
        // Gets go through a connector that listed nothing, so nothing a list learnt (setup
        // lists, Halo's ticket contacts) is lent to them.
        let fresh = connect(h.system, &h.credentials(), SMALL_PAGE);
        for stage in h.system.stages() {
            let (records, _) = read_all(conn.as_ref(), *stage).await;
            assert!(!records.is_empty(), "{stage}: nothing listed");
            // The first, a middle and the last record: for activities that spans both sources
            // (Halo CRM notes and actions, Salesforce Tasks and Events).
            for listed in [&records[0], &records[records.len() / 2], &records[records.len() - 1]] {
                let id = listed.id().unwrap();
                let got = fresh.get(stage.kind(), id).await.unwrap_or_else(|e| panic!("{stage} {id}: {e}"));
                assert_eq!(got.as_ref(), Some(listed), "{stage} {id}: get and list agree");
            }
            let unknown = unknown_id(h.system, *stage, records[0].id().unwrap());
            let got = fresh.get(stage.kind(), &unknown).await.unwrap_or_else(|e| panic!("{stage} {unknown}: {e}"));
            assert_eq!(got, None, "{stage}: {unknown} does not exist");
        }
    }

    pub async fn a_malformed_id_is_refused_without_a_request(system: System) {
        let h = Harness::start(system).await;
        let conn = connect(h.system, &h.credentials(), SMALL_PAGE);
        conn.check().await.expect("the check passes");
        let before = h.stats().requests;
        for stage in h.system.stages() {
            for bad in MALFORMED_IDS {
                let err = conn.get(stage.kind(), bad).await.expect_err(&format!("{stage} {bad:?} is refused"));
                assert_eq!((err.kind, err.retryable), (ErrorKind::Invalid, false), "{stage} {bad:?}: {err}");
            }
        }
        assert_eq!(h.stats().requests, before, "no malformed id reached the simulator");
    }

    pub async fn a_kind_the_system_lacks_is_refused_by_get_and_lists_empty(system: System) {
        let h = Harness::start(system).await;
        let conn = connect(h.system, &h.credentials(), SMALL_PAGE);
        conn.check().await.expect("the check passes");
        let before = h.stats().requests;
        let lacking = RecordKind::ALL.iter().filter(|k| !h.system.stages().iter().any(|s| s.kind() == **k));
        for kind in lacking {
            let err = conn.get(*kind, "1").await.expect_err(&format!("{kind} is refused"));
            assert_eq!(err.kind, ErrorKind::Invalid, "{kind}: {err}");
            assert!(err.message.contains(kind.as_str()), "the kind is named: {err}");
            let page = conn.list(*kind, &Cursor::start()).await.unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert!(page.records.is_empty() && page.next.is_none(), "{kind}: an empty last page");
        }
        assert_eq!(h.stats().requests, before, "nothing was asked of the simulator");
    }

    pub async fn a_503_is_retried(system: System) {
        let h = Harness::start(system).await;
        let conn = connect(h.system, &h.credentials(), SMALL_PAGE);
        conn.check().await.expect("the check passes (tokens and sites settled before injecting)");
        let before = h.stats().injected_failures;
        h.fail_next(1, 503);
        let page = conn.list(PAGED_STAGE.kind(), &Cursor::start()).await.expect("the 503 is retried");
        assert!(!page.records.is_empty());
        assert_eq!(h.stats().injected_failures, before + 1, "the 503 was answered");
    }

    pub async fn a_404_or_400_is_not_retried(system: System) {
        let h = Harness::start(system).await;
        let conn = connect(h.system, &h.credentials(), SMALL_PAGE);
        conn.check().await.expect("the check passes (tokens and sites settled before injecting)");
        for (status, kind) in [(404, ErrorKind::NotFound), (400, ErrorKind::Invalid)] {
            let before = h.stats().injected_failures;
            h.fail_next(1, status);
            let err = conn.list(PAGED_STAGE.kind(), &Cursor::start()).await.expect_err("fails without a retry");
            assert_eq!((err.kind, err.retryable, err.status), (kind, false, Some(status)), "{err}");
            assert_eq!(h.stats().injected_failures, before + 1, "{status}: one attempt only");
        }
        conn.list(PAGED_STAGE.kind(), &Cursor::start()).await.expect("reads work again");
    }

    pub async fn rate_limits_are_waited_out(system: System) {
        let h = Harness::start(system).await;
        // Bigger pages than elsewhere: every throttled page costs a one-second Retry-After.
        let conn = connect(h.system, &h.credentials(), 30);
        conn.check().await.expect("the check passes before throttling");
        h.throttle();
        let (records, pages) = read_all(conn.as_ref(), PAGED_STAGE).await;
        assert_eq!(records.len(), h.stage_size(PAGED_STAGE), "pages {pages:?}");
        assert!(pages.len() >= 2, "{pages:?}");
        let stats = h.stats();
        assert!(stats.throttled > 0, "429s were answered: {stats:?}");
    }

    pub async fn token_expiry(system: System, issues_tokens: bool) {
        let h = Harness::start(system).await;
        let conn = connect(h.system, &h.credentials(), SMALL_PAGE);
        conn.check().await.expect("the check passes (a token is issued)");
        let before = h.stats().unauthorized;
        assert_eq!(h.sim.issues_tokens(), issues_tokens, "the simulator and the test name disagree");
        if !h.expire_tokens() {
            // Not applicable: the system signs every request with static keys, so there is no
            // token or session the simulator could expire (revoked keys are the wrong-secret check).
            eprintln!("{}: no token expiry to check (static keys)", h.system.display_name());
            return;
        }
        let page = conn.list(PAGED_STAGE.kind(), &Cursor::start()).await.expect("the token is renewed");
        assert!(!page.records.is_empty());
        assert!(h.stats().unauthorized > before, "the expired token was refused once: {:?}", h.stats());
        let (records, _) = read_all(conn.as_ref(), PAGED_STAGE).await;
        assert_eq!(records.len(), h.stage_size(PAGED_STAGE));
    }
}

/// One test per check for `$system` in module `$module`; `tokens` / `static_keys` names the
/// token-expiry test (checked against the simulator).
macro_rules! contract {
    ($module:ident, $system:expr, $auth:ident) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn the_credential_check_passes_with_good_credentials_and_returns_the_api_url() {
                checks::credential_check_passes($system).await;
            }

            #[tokio::test]
            async fn a_wrong_secret_is_unauthorized_not_retryable_and_never_shown() {
                checks::wrong_secret_is_unauthorized($system).await;
            }

            #[tokio::test]
            async fn an_unreachable_host_is_unreachable_quickly() {
                checks::unreachable_host_is_unreachable($system).await;
            }

            #[tokio::test]
            async fn paging_every_stage_to_the_end_yields_every_record_exactly_once() {
                checks::paging_yields_every_record_once($system).await;
            }

            #[tokio::test]
            async fn each_next_cursor_moves_on_and_rereading_a_cursor_returns_the_same_page() {
                checks::cursors_advance_and_reads_are_idempotent($system).await;
            }

            #[tokio::test]
            async fn getting_a_listed_id_returns_the_record_the_list_mapped_and_an_unknown_id_is_none() {
                checks::get_returns_each_listed_record_as_the_list_mapped_it($system).await;
            }

            #[tokio::test]
            async fn a_malformed_id_is_refused_as_invalid_without_any_request() {
                checks::a_malformed_id_is_refused_without_a_request($system).await;
            }

            #[tokio::test]
            async fn a_kind_the_system_lacks_is_refused_by_get_and_lists_as_an_empty_last_page() {
                checks::a_kind_the_system_lacks_is_refused_by_get_and_lists_empty($system).await;
            }

            #[tokio::test]
            async fn an_injected_503_is_retried_and_the_fetch_succeeds() {
                checks::a_503_is_retried($system).await;
            }

            #[tokio::test]
            async fn an_injected_404_or_400_is_not_retried_and_keeps_its_kind() {
                checks::a_404_or_400_is_not_retried($system).await;
            }

            #[tokio::test]
            async fn a_full_read_under_a_low_rate_limit_waits_out_the_429s() {
                checks::rate_limits_are_waited_out($system).await;
            }

            contract!(@expiry $system, $auth);
        }
    };
    (@expiry $system:expr, tokens) => {
        #[tokio::test]
        async fn after_every_token_expires_the_next_fetch_renews_it_and_succeeds() {
            checks::token_expiry($system, true).await;
        }
    };
    (@expiry $system:expr, static_keys) => {
        #[tokio::test]
        async fn token_expiry_does_not_apply_to_static_keys() {
            checks::token_expiry($system, false).await;
        }
    };
}

contract!(connectwise, System::ConnectWise, static_keys);
contract!(halo, System::Halo, tokens);
contract!(syncro, System::Syncro, static_keys);
contract!(salesforce, System::Salesforce, tokens);

/// The outcome total of `stage` in a simulator's ground truth.
fn total(expected: &Expected, stage: Stage) -> u64 {
    expected.get(stage.as_str()).map_or(0, |outcomes| outcomes.values().sum())
}

fn size(sizes: &std::collections::BTreeMap<String, usize>, stage: Stage) -> usize {
    *sizes.get(stage.as_str()).unwrap_or_else(|| panic!("the simulator has no {stage} stage size: {sizes:?}"))
}
