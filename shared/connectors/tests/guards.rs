//! The guards every credential check and request passes, over real sockets on 127.0.0.1:
//! refused hosts (metadata, link-local, and private ranges where they are not allowed) are
//! refused before anything is sent; a check ends at its deadline; a `Retry-After` is
//! capped; a vendor's HTML error page is never quoted back.

// Tests unwrap: a failed unwrap is a failed test, with the error in the panic message.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tandem_connectors::{Connectors, RetryPolicy, Settings};
use tandem_domain::ErrorClass;
use tandem_domain::external::Cursor;
use tandem_domain::ports::{Connector, ConnectorFactory, ErrorKind};
use tandem_domain::secret::{
    ConnectWiseCredentials, Credentials, HaloCredentials, SalesforceCredentials, SecretString, SyncroCredentials,
};
use tandem_domain::{Stage, System};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// Credentials of `system` whose site (or login URL) is `site`.
fn creds(system: System, site: &str) -> Credentials {
    let secret = || SecretString::new("guard-test-secret");
    match system {
        System::ConnectWise => Credentials::ConnectWise(ConnectWiseCredentials {
            site: site.into(),
            company_id: "acme".into(),
            public_key: "pub".into(),
            private_key: secret(),
            client_id: "client".into(),
        }),
        System::Halo => Credentials::Halo(HaloCredentials {
            site: site.into(),
            auth_url: None,
            tenant: None,
            client_id: "client".into(),
            client_secret: secret(),
        }),
        System::Syncro => Credentials::Syncro(SyncroCredentials { site: site.into(), api_key: secret() }),
        System::Salesforce => Credentials::Salesforce(SalesforceCredentials {
            login_url: site.into(),
            client_id: "client".into(),
            client_secret: secret(),
            refresh_token: None,
            contact_status_field: None,
        }),
    }
}

const SYSTEMS: [System; 4] = [System::ConnectWise, System::Halo, System::Syncro, System::Salesforce];

fn connect(system: System, site: &str, settings: Settings) -> Arc<dyn Connector> {
    Connectors::new(settings).connect(&creds(system, site)).unwrap()
}

/// Settings as on AWS: private hosts refused.
fn cloud() -> Settings {
    Settings { allow_private_hosts: false, ..Settings::default() }
}

/// A listener on 127.0.0.1 that accepts connections and never answers; counts connections.
async fn silent_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (port, accepted)
}

/// Reads one request (head and `Content-Length` body); false when the peer closed.
async fn read_request(socket: &mut TcpStream) -> bool {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return false;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            while data.len() < end + 4 + length {
                let n = socket.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    return false;
                }
                data.extend_from_slice(&buf[..n]);
            }
            return true;
        }
    }
}

/// A server on 127.0.0.1 answering its n-th request with `answers[n]` (the last one
/// repeated), one request per connection; counts requests.
async fn scripted(answers: Vec<String>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let count = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let n = count.load(Ordering::SeqCst);
            let answer = answers[n.min(answers.len() - 1)].clone();
            if read_request(&mut socket).await {
                count.fetch_add(1, Ordering::SeqCst);
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        }
    });
    (base, requests)
}

fn answer(status: &str, headers: &[(&str, &str)], content_type: &str, body: &str) -> String {
    let mut out = format!("HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("connection: close\r\n\r\n");
    out.push_str(body);
    out
}

#[tokio::test]
async fn a_host_that_never_answers_fails_the_credential_check_at_its_deadline() {
    let (port, accepted) = silent_listener().await;
    let settings = Settings { check_deadline: Duration::from_secs(1), ..Settings::default() };
    let started = Instant::now();
    let checks = SYSTEMS.map(|system| {
        let conn = connect(system, &format!("http://127.0.0.1:{port}"), settings.clone());
        async move { (system, conn.check().await) }
    });
    for (system, result) in futures::future::join_all(checks).await {
        let err = result.expect_err("nothing answers");
        assert_eq!((err.kind, err.retryable), (ErrorKind::Unreachable, false), "{system}: {err}");
        assert_eq!(err.class(), ErrorClass::Unavailable);
        assert_eq!(err.message, "the host 127.0.0.1 did not answer within 1 s", "{system}");
    }
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(4), "{took:?}");
    assert!(accepted.load(Ordering::SeqCst) >= 4, "every check reached the host");
}

#[tokio::test]
async fn a_retry_after_of_999999_seconds_fails_the_credential_check_at_once_and_says_so() {
    let too_many = answer("429 Too Many Requests", &[("retry-after", "999999")], "application/json", "{}");
    let (base, requests) = scripted(vec![too_many]).await;
    let started = Instant::now();
    let err = connect(System::Syncro, &base, Settings::default()).check().await.expect_err("rate limited");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!((err.kind, err.retryable, err.status), (ErrorKind::RateLimited, false, Some(429)));
    assert!(err.message.starts_with("the host 127.0.0.1 asked us to retry after 999999 s"), "{}", err.message);
    assert_eq!(requests.load(Ordering::SeqCst), 1, "the wait is not waited out");
}

#[tokio::test]
async fn a_retry_after_of_999999_seconds_during_an_import_is_waited_only_up_to_the_cap() {
    let too_many = answer("429 Too Many Requests", &[("retry-after", "999999")], "application/json", "{}");
    let page = answer("200 OK", &[], "application/json", r#"{"customers":[],"meta":{"total_pages":1,"page":1}}"#);
    let (base, requests) = scripted(vec![too_many, page]).await;
    let settings = Settings {
        retry: RetryPolicy { max_retry_after: Duration::from_millis(300), ..RetryPolicy::default() },
        ..Settings::default()
    };
    let started = Instant::now();
    let page = connect(System::Syncro, &base, settings).list(Stage::Companies.kind(), &Cursor::start()).await.unwrap();
    let took = started.elapsed();
    assert!(page.records.is_empty() && page.next.is_none(), "{page:?}");
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(5), "{took:?}");
    assert_eq!(requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn metadata_and_link_local_sites_are_refused_before_any_request_even_locally() {
    let cases = [
        ("http://169.254.169.254", "169.254.169.254 is a link-local / cloud metadata address (169.254.0.0/16)"),
        ("https://[fd00:ec2::254]", "[fd00:ec2::254] is the AWS instance metadata range (fd00:ec2::/32)"),
        ("http://[::ffff:169.254.169.254]", "is a link-local / cloud metadata address (169.254.0.0/16)"),
        ("http://[fe80::1]:8080", "[fe80::1] is a link-local address (fe80::/10)"),
        ("http://0.0.0.0:8080", "0.0.0.0 is a 'this network' address (0.0.0.0/8)"),
    ];
    for system in SYSTEMS {
        for (site, rule) in cases {
            let started = Instant::now();
            let err = connect(system, site, Settings::default()).check().await.expect_err("refused");
            assert!(started.elapsed() < Duration::from_millis(500), "{system} {site}: {:?}", started.elapsed());
            assert_eq!((err.kind, err.retryable), (ErrorKind::UnknownAccount, false), "{system} {site}: {err}");
            assert_eq!(err.class(), ErrorClass::Credentials);
            assert!(err.message.starts_with("site ") && err.message.contains(rule), "{system} {site}: {}", err.message);
            assert!(err.message.ends_with("Tandem never calls those"), "{}", err.message);
        }
    }
}

#[tokio::test]
async fn with_private_hosts_refused_loopback_localhost_and_private_sites_are_refused_before_any_request() {
    let (port, accepted) = silent_listener().await;
    let cases = [
        (format!("http://127.0.0.1:{port}"), "a loopback address (127.0.0.0/8)"),
        (format!("http://localhost:{port}"), "a loopback name (localhost)"),
        (format!("http://[::1]:{port}"), "the loopback address (::1)"),
        ("http://10.0.0.1".to_string(), "a private address (10.0.0.0/8)"),
        ("https://192.168.1.20".to_string(), "a private address (192.168.0.0/16)"),
        ("http://100.64.0.1".to_string(), "a carrier-grade NAT address (100.64.0.0/10)"),
    ];
    for system in SYSTEMS {
        for (site, rule) in &cases {
            let started = Instant::now();
            let err = connect(system, site, cloud()).check().await.expect_err("refused");
            assert!(started.elapsed() < Duration::from_millis(500), "{system} {site}: {:?}", started.elapsed());
            assert_eq!((err.kind, err.retryable), (ErrorKind::UnknownAccount, false), "{system} {site}: {err}");
            assert!(err.message.contains(rule), "{system} {site}: {}", err.message);
        }
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "no connection reached the loopback listener");
}

#[tokio::test]
async fn with_private_hosts_refused_an_import_on_a_loopback_site_sends_nothing_either() {
    let (port, accepted) = silent_listener().await;
    let conn = connect(System::ConnectWise, &format!("http://localhost:{port}"), cloud());
    let err = conn.list(Stage::Companies.kind(), &Cursor::start()).await.expect_err("refused");
    assert_eq!((err.kind, err.retryable), (ErrorKind::UnknownAccount, false), "{err}");
    assert!(err.message.contains("localhost"), "{}", err.message);
    let conn = connect(System::Syncro, &format!("http://127.0.0.1:{port}"), cloud());
    let err = conn.list(Stage::Companies.kind(), &Cursor::start()).await.expect_err("refused");
    assert!(err.message.starts_with("host 127.0.0.1 is a loopback address"), "{}", err.message);
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_local_default_still_reaches_a_simulator_on_loopback() {
    use tandem_sim::syncro::{GenConfig, SimConfig, Simulator, Tenant};
    let tenant = Tenant::generate(&GenConfig::with_companies(3, 5));
    let handle = Simulator::start(tenant, SimConfig::default(), 0).await.unwrap();
    let c = handle.credentials();
    let creds = Credentials::Syncro(SyncroCredentials { site: c.site, api_key: SecretString::new(c.api_key) });
    let info = Connectors::default().connect(&creds).unwrap().check().await.unwrap();
    assert_eq!(info.api_url, handle.api_url());
}

#[tokio::test]
async fn a_redirect_to_the_metadata_address_is_refused_without_following_it() {
    let redirect = answer("302 Found", &[("location", "http://169.254.169.254/latest/meta-data/")], "text/plain", "");
    let (base, requests) = scripted(vec![redirect]).await;
    let started = Instant::now();
    let err = connect(System::Syncro, &base, Settings::default()).check().await.expect_err("refused");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!((err.kind, err.retryable), (ErrorKind::UnknownAccount, false), "{err}");
    assert!(err.message.starts_with("host 169.254.169.254 is a link-local"), "{}", err.message);
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_salesforce_token_naming_an_instance_on_the_metadata_address_is_never_followed() {
    let token = r#"{"access_token":"00Dx!token","instance_url":"http://169.254.169.254","token_type":"Bearer"}"#;
    let (base, requests) = scripted(vec![answer("200 OK", &[], "application/json", token)]).await;
    let started = Instant::now();
    let err = connect(System::Salesforce, &base, Settings::default()).check().await.expect_err("refused");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(err.kind, ErrorKind::UnknownAccount, "{err}");
    assert!(err.message.starts_with("host 169.254.169.254 is a link-local"), "{}", err.message);
    assert_eq!(requests.load(Ordering::SeqCst), 1, "only the token request was sent");
}

#[tokio::test]
async fn an_html_error_page_from_a_site_is_never_quoted_back() {
    let page = format!(
        "<!DOCTYPE html><html><head><title>Sign in</title></head><body>{}<script>x()</script></body></html>",
        "<p>lorem ipsum</p>".repeat(200)
    );
    let (base, _) = scripted(vec![answer("400 Bad Request", &[], "text/html; charset=utf-8", &page)]).await;
    for system in SYSTEMS {
        let err = connect(system, &base, Settings::default()).check().await.expect_err("refused");
        assert!(
            err.message.contains(&format!("an HTML page ({} bytes)", page.len())) && !err.message.contains('<'),
            "{system}: {}",
            err.message
        );
    }
}
