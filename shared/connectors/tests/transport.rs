//! The shared transport over real HTTP: pacing against a simulator's rate limit (no 429
//! storm, wall time about N/R), a 429 slowing the connection's bucket, requests that are not
//! idempotent never repeated once they may have been carried out, and secrets never shown.

// Tests unwrap: a failed unwrap is a failed test, with the error in the panic message.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use tandem_connectors::http::{self, excerpt};
use tandem_connectors::transport::{self, Failure, Limits, Request, Transport};
use tandem_connectors::{Connectors, Pacing, Rate, RetryPolicy, Settings, connectwise, salesforce};
use tandem_domain::Stage;
use tandem_domain::System;
use tandem_domain::external::Cursor;
use tandem_domain::ports::{Connector, ConnectorError, ConnectorFactory, ErrorKind};
use tandem_domain::secret::{ConnectWiseCredentials, Credentials, SecretString};
use tandem_sim::connectwise::{GenConfig, SimConfig, SimHandle, Simulator, Tenant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

fn settings(pacing: Pacing) -> Settings {
    Settings {
        page_size: 5,
        retry: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(200),
            max_retry_after: Duration::from_secs(2),
        },
        pacing,
        ..Settings::default()
    }
}

async fn start(companies: usize) -> SimHandle {
    let tenant = Tenant::generate(&GenConfig::with_companies(7, companies));
    Simulator::start(tenant, SimConfig::default(), 0).await.expect("simulator starts")
}

fn connector(handle: &SimHandle, settings: Settings) -> Arc<dyn Connector> {
    let c = handle.credentials();
    let creds = ConnectWiseCredentials {
        site: c.site,
        company_id: c.company_id,
        public_key: c.public_key,
        private_key: SecretString::new(c.private_key),
        client_id: c.client_id,
    };
    Connectors::new(settings).connect(&Credentials::ConnectWise(creds)).expect("connector builds")
}

/// Every page of the companies stage; the number of pages.
async fn fetch_companies(conn: &dyn Connector) -> usize {
    let (mut cursor, mut pages) = (Cursor::start(), 0);
    loop {
        let page = conn.list(Stage::Companies.kind(), &cursor).await.unwrap_or_else(|e| panic!("page {pages}: {e}"));
        pages += 1;
        match page.next {
            Some(next) => cursor = next,
            None => return pages,
        }
    }
}

/// A transport to the simulator's API, as a connector would build it, with `pacing`.
fn sim_transport(handle: &SimHandle, pacing: Pacing) -> Transport {
    let client = http::build_client(settings(pacing).hosts()).expect("client builds");
    let connection = format!("{} test", handle.api_url());
    Transport::new(System::ConnectWise, client, &settings(pacing), &connection, connectwise::client::LIMITS)
}

/// A request to the simulator's API with its credentials (the Basic header marked sensitive).
fn sim_request(handle: &SimHandle, method: Method, path: &str) -> Request {
    let c = handle.credentials();
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}+{}:{}", c.company_id, c.public_key, c.private_key));
    let mut auth = HeaderValue::from_str(&format!("Basic {basic}")).unwrap();
    auth.set_sensitive(true);
    let url = Url::parse(&format!("{}{path}", handle.api_url())).unwrap();
    Request::new(method, url, path)
        .header(AUTHORIZATION, auth)
        .header(HeaderName::from_static("clientid"), HeaderValue::from_str(&c.client_id).unwrap())
}

fn classify(f: &Failure<'_>) -> ConnectorError {
    http::status_error(
        System::ConnectWise,
        f.status,
        f.retry_after,
        format!("{}: {}", f.status, excerpt(f.content_type, f.body)),
    )
}

#[tokio::test]
async fn paced_at_the_simulators_limit_forty_pages_arrive_in_about_n_over_r_without_a_429_storm() {
    const R: u32 = 30;
    let handle = start(200).await;
    handle.set_requests_per_second(Some(R));
    let conn = connector(&handle, settings(Pacing::At(Rate::per_second(R))));
    let before = handle.stats().requests;
    let started = Instant::now();
    let pages = fetch_companies(conn.as_ref()).await;
    let took = started.elapsed().as_secs_f64();
    let stats = handle.stats();
    let sent = stats.requests - before;
    eprintln!("{pages} pages, {sent} requests in {took:.3} s, {} answered 429", stats.throttled);
    assert!(pages >= 40, "{pages} pages");
    assert!(stats.throttled <= 1, "{} requests answered 429 of {sent}", stats.throttled);
    // The first request leaves at once, each later one an interval after the one before.
    let ideal = (sent - 1) as f64 / f64::from(R);
    assert!(took >= 0.8 * ideal && took <= 1.3 * ideal, "{sent} requests took {took:.2} s, N/R is {ideal:.2} s");
}

#[tokio::test]
async fn unpaced_the_same_pages_run_into_the_simulators_limit() {
    let handle = start(200).await;
    handle.set_requests_per_second(Some(30));
    let conn = connector(&handle, settings(Pacing::Off));
    fetch_companies(conn.as_ref()).await;
    assert!(handle.stats().throttled > 0, "without pacing the limit is hit, so the paced test can fail");
}

#[tokio::test]
async fn a_429_with_retry_after_holds_the_next_request_and_slows_the_connections_bucket() {
    let handle = start(5).await;
    handle.set_requests_per_second(Some(2));
    let transport = sim_transport(&handle, Pacing::At(Rate::per_second(50)));
    let pacer = transport.pacer().expect("pacing is on").clone();
    let policy = settings(Pacing::Off).retry;
    let request = sim_request(&handle, Method::GET, "/system/info");
    let started = Instant::now();
    for _ in 0..3 {
        transport.send(&request, &policy, &classify).await.expect("answered after waiting");
    }
    assert_eq!(handle.stats().throttled, 1, "the third request was refused once, then waited out");
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After: 1 was honoured: {:?}", started.elapsed());
    assert!(pacer.current() < 50.0, "the bucket slowed down: {} per second", pacer.current());
}

#[tokio::test]
async fn a_create_answered_500_is_sent_once_and_reported_as_of_unknown_outcome() {
    let handle = start(5).await;
    let transport = sim_transport(&handle, Pacing::Off);
    let policy = settings(Pacing::Off).retry;
    let create = sim_request(&handle, Method::POST, "/company/companies").body("application/json", r#"{"name":"X"}"#);
    handle.fail_next(1, 500);
    let before = handle.stats().requests;
    let err = transport.send(&create, &policy, &classify).await.expect_err("500");
    assert_eq!(handle.stats().requests - before, 1, "a create is never repeated blindly");
    assert_eq!((err.kind, err.retryable, err.status), (ErrorKind::Transient, false, Some(500)));
    assert!(transport::outcome_unknown(&err) && err.message.contains("look for a duplicate"), "{}", err.message);

    let read = sim_request(&handle, Method::GET, "/system/info");
    handle.fail_next(1, 500);
    let before = handle.stats().requests;
    transport.send(&read, &policy, &classify).await.expect("a read is retried");
    assert_eq!(handle.stats().requests - before, 2);
}

#[tokio::test]
async fn a_create_refused_with_429_before_processing_is_sent_again_after_the_wait() {
    let handle = start(5).await;
    handle.set_requests_per_second(Some(1));
    let transport = sim_transport(&handle, Pacing::Off);
    let policy = settings(Pacing::Off).retry;
    transport.send(&sim_request(&handle, Method::GET, "/system/info"), &policy, &classify).await.unwrap();
    let create = sim_request(&handle, Method::POST, "/company/companies").body("application/json", r#"{"name":"X"}"#);
    let before = handle.stats();
    let outcome = transport.send(&create, &policy, &classify).await;
    let after = handle.stats();
    assert_eq!((after.throttled - before.throttled, after.requests - before.requests), (1, 2));
    assert!(outcome.as_ref().err().is_none_or(|e| e.status != Some(429)), "{outcome:?}");
}

#[tokio::test]
async fn a_salesforce_daily_allocation_running_out_narrows_the_connections_pace() {
    use tandem_sim::salesforce as sf;
    let tenant = sf::Tenant::generate(&sf::GenConfig::with_companies(7, 3));
    let handle = sf::Simulator::start(tenant, sf::SimConfig::default(), 0).await.expect("simulator starts");
    handle.set_daily_limit(Some(20));
    let c = handle.credentials();
    let creds = tandem_domain::secret::SalesforceCredentials {
        login_url: c.login_url,
        client_id: c.client_id,
        client_secret: SecretString::new(c.client_secret),
        refresh_token: None,
        contact_status_field: None,
    };
    let s = settings(Pacing::At(Rate::per_second(100)));
    let conn = salesforce::SalesforceConnector::new(http::build_client(s.hosts()).unwrap(), s, &creds).unwrap();
    let pacer = conn.client().transport().pacer().expect("pacing is on").clone();
    conn.check().await.expect("check passes");
    assert!(
        (pacer.current() - 99.0).abs() < 1e-9,
        "plenty left (one of the 100 kept as headroom): {}",
        pacer.current()
    );
    while handle.api_usage() < 18 {
        conn.check().await.expect("check passes");
    }
    assert!(pacer.current() < 60.0, "18 of 20 used: {} per second", pacer.current());
}

/// A server that accepts connections, reads the request and never answers; counts them.
async fn silent() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while socket.read(&mut buf).await.is_ok_and(|n| n > 0) {}
            });
        }
    });
    (base, seen)
}

fn plain_transport(secret: &SecretString) -> Transport {
    let s = settings(Pacing::Off);
    let client = http::build_client(s.hosts()).unwrap();
    let limits = Limits { rate: Rate::per_second(100), usage: None };
    Transport::new(System::Syncro, client, &s, "test", limits).scrubbing(secret)
}

#[tokio::test]
async fn a_create_that_times_out_is_not_sent_again_while_a_read_is() {
    let (base, seen) = silent().await;
    let transport = plain_transport(&SecretString::new("unused-secret"));
    let policy = RetryPolicy { max_attempts: 3, ..settings(Pacing::Off).retry };
    let url = Url::parse(&format!("{base}/customers")).unwrap();
    let create = Request::new(Method::POST, url.clone(), "/customers").timeout(Duration::from_millis(200));
    let err = transport.send(&create, &policy, &classify).await.expect_err("timed out");
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    assert!(transport::outcome_unknown(&err), "{err:?}");
    let read = Request::get(url, "/customers").timeout(Duration::from_millis(200));
    let err = transport.send(&read, &policy, &classify).await.expect_err("timed out");
    assert_eq!(seen.load(Ordering::SeqCst), 4, "a read is tried three times");
    assert_eq!((err.kind, err.retryable), (ErrorKind::Transient, true));
}

/// A server answering every request 400 with the request itself (headers and body) as text.
async fn echo() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&buf[..n]);
                // The echoed request, secrets first so they fall inside the quoted excerpt.
                let mut lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
                lines.reverse();
                let body = lines.join(" ");
                let answer = format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    base
}

#[tokio::test]
async fn secrets_and_sensitive_headers_never_appear_in_error_messages_even_when_echoed() {
    let base = echo().await;
    let secret = SecretString::new("client-secret-9f8e7d");
    let transport = plain_transport(&secret);
    let mut bearer = HeaderValue::from_static("Bearer tok-abc123xyz");
    bearer.set_sensitive(true);
    let request = Request::new(Method::POST, Url::parse(&format!("{base}/token")).unwrap(), "/token")
        .header(AUTHORIZATION, bearer)
        .body("application/x-www-form-urlencoded", "client_secret=client-secret-9f8e7d")
        .idempotent(true);
    let err = transport.send(&request, &settings(Pacing::Off).retry, &classify).await.expect_err("400");
    assert_eq!(err.status, Some(400));
    assert!(err.message.contains("client_secret=***"), "the echo is quoted, scrubbed: {}", err.message);
    for shown in ["client-secret-9f8e7d", "tok-abc123xyz"] {
        assert!(!err.message.contains(shown), "{shown} in {}", err.message);
    }
}
