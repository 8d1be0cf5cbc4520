//! The local server (`tandem serve`) under hostile clients, over raw TCP on 127.0.0.1:
//! half-sent headers and bodies, idle keep-alive connections, oversized bodies, more
//! connections than allowed, and tenant headers that are not plain ASCII. Every wait is
//! bounded.

#![allow(clippy::unwrap_used)] // tests: a failed set-up step should panic

use serde_json::Value;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use tandem_connectors::http::Settings;
use tandem_domain::System;
use tandem_embedded::QueueConfig;
use tandem_local::runtime::LocalRuntime;
use tandem_local::server::{self, ServerLimits};
use tandem_local::sims::{self, Scale};
use tandem_sim::SimConfig;

/// The longest any single step of these tests may take.
const STEP: Duration = Duration::from_secs(10);

async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, f).await.unwrap_or_else(|_| panic!("{what} took over {STEP:?}"))
}

fn runtime() -> LocalRuntime {
    LocalRuntime::new(
        None,
        QueueConfig::default(),
        Settings { pacing: tandem_connectors::Pacing::Off, ..Settings::default() },
    )
    .unwrap()
}

async fn start(rt: LocalRuntime, limits: ServerLimits) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    bounded("starting the server", server::serve_with(rt, "127.0.0.1:0".parse().unwrap(), limits)).await.unwrap()
}

fn short(limits: ServerLimits) -> ServerLimits {
    ServerLimits {
        header_read_timeout: Duration::from_millis(500),
        body_read_timeout: Duration::from_millis(500),
        ..limits
    }
}

async fn connect(addr: SocketAddr) -> TcpStream {
    bounded("connecting", TcpStream::connect(addr)).await.unwrap()
}

async fn send(stream: &mut TcpStream, bytes: &[u8]) {
    bounded("sending", stream.write_all(bytes)).await.unwrap();
}

/// One parsed HTTP response.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// (lowercased name, value)
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// Reads one response with a `content-length` body.
async fn read_answer(stream: &mut TcpStream) -> Answer {
    bounded("reading an answer", async {
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the connection closed before an answer: {:?}", String::from_utf8_lossy(&buf));
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        let len: usize = headers.iter().find(|(n, _)| n == "content-length").map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < len {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the connection closed mid-body");
            body.extend_from_slice(&chunk[..n]);
        }
        Answer { status, headers, body }
    })
    .await
}

/// Waits until the server closes the connection (end of file or reset); returns how
/// long that took. Panics if it stays open for [`STEP`].
async fn closed_after(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    bounded("waiting for the server to close the connection", async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    started.elapsed()
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n").into_bytes()
}

#[tokio::test]
async fn a_connection_that_sends_half_a_request_header_is_closed_after_the_header_read_timeout() {
    let (addr, _server) = start(runtime(), short(ServerLimits::default())).await;
    let mut c = connect(addr).await;
    send(&mut c, b"GET /jobs HTTP/1.1\r\nhost: 127.0.0.1\r\nx-tenant-id: ac").await;
    let waited = closed_after(&mut c).await;
    assert!(waited >= Duration::from_millis(300), "closed too early: {waited:?}");
    assert!(waited < Duration::from_secs(5), "closed too late: {waited:?}");
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_header_read_timeout() {
    let (addr, _server) = start(runtime(), short(ServerLimits::default())).await;
    let mut c = connect(addr).await;
    let waited = closed_after(&mut c).await;
    assert!(waited < Duration::from_secs(5), "closed too late: {waited:?}");
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_header_read_timeout() {
    let (addr, _server) = start(runtime(), short(ServerLimits::default())).await;
    let mut c = connect(addr).await;
    send(&mut c, &get("/jobs")).await;
    let a = read_answer(&mut c).await;
    assert_eq!(a.status, 200, "{a:?}");
    // Kept alive: a second request on the same connection is served.
    send(&mut c, &get("/jobs")).await;
    assert_eq!(read_answer(&mut c).await.status, 200);
    let waited = closed_after(&mut c).await;
    assert!(waited >= Duration::from_millis(300), "closed too early: {waited:?}");
    assert!(waited < Duration::from_secs(5), "an idle connection stayed open {waited:?}");
}

#[tokio::test]
async fn a_body_that_stalls_half_sent_is_answered_408_in_json_and_the_connection_closed() {
    let (addr, _server) = start(runtime(), short(ServerLimits::default())).await;
    let mut c = connect(addr).await;
    send(
        &mut c,
        b"POST /connections/connectwise HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"site\": ",
    )
    .await;
    let started = Instant::now();
    let a = read_answer(&mut c).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(a.status, 408, "{a:?}");
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(a.json()["error"]["kind"], "timeout", "{a:?}");
    assert!(closed_after(&mut c).await < Duration::from_secs(2));
}

#[tokio::test]
async fn a_body_over_the_default_limit_is_answered_413_in_json_before_it_is_read() {
    let (addr, _server) = start(runtime(), ServerLimits::default()).await;
    let mut c = connect(addr).await;
    send(&mut c, b"POST /connections/connectwise HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 1048577\r\n\r\n").await;
    let a = read_answer(&mut c).await;
    assert_eq!(a.status, 413, "{a:?}");
    assert_eq!(a.header("content-type"), Some("application/json"));
    let want = serde_json::json!({"error": {"kind": "too_large", "message": "the request body is over 1048576 bytes"}});
    assert_eq!(a.json(), want);
    closed_after(&mut c).await;
}

#[tokio::test]
async fn a_chunked_body_that_grows_over_the_limit_is_answered_413_in_json() {
    let limits = ServerLimits { max_body_bytes: 1024, ..ServerLimits::default() };
    let (addr, _server) = start(runtime(), limits).await;
    let mut c = connect(addr).await;
    let chunk = format!("320\r\n{}\r\n", "x".repeat(0x320));
    let req = format!(
        "POST /connections/connectwise HTTP/1.1\r\nhost: 127.0.0.1\r\ntransfer-encoding: chunked\r\n\r\n{chunk}{chunk}"
    );
    send(&mut c, req.as_bytes()).await;
    let a = read_answer(&mut c).await;
    assert_eq!(a.status, 413, "{a:?}");
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(a.json()["error"]["message"], "the request body is over 1024 bytes");
}

#[tokio::test]
async fn a_body_within_the_limit_and_an_odd_query_string_are_served_as_json() {
    let limits = ServerLimits { max_body_bytes: 1024, ..ServerLimits::default() };
    let (addr, _server) = start(runtime(), limits).await;
    let mut c = connect(addr).await;
    send(&mut c, &get("/logs?limit=%ZZ&&=&outcome")).await;
    let a = read_answer(&mut c).await;
    assert_eq!(a.header("content-type"), Some("application/json"), "{a:?}");
    a.json();
    let body = "{\"stages\": \"all\"}";
    let req = format!(
        "POST /connections/connectwise/imports HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    send(&mut c, req.as_bytes()).await;
    let a = read_answer(&mut c).await;
    assert_ne!(a.status, 413, "{a:?}");
    assert_eq!(a.header("content-type"), Some("application/json"), "{a:?}");
    a.json();
}

#[tokio::test]
async fn the_connection_limit_holds_the_next_connection_unserved_until_one_closes() {
    let limits = ServerLimits { max_connections: 2, ..ServerLimits::default() };
    let (addr, _server) = start(runtime(), limits).await;
    let mut c1 = connect(addr).await;
    let mut c2 = connect(addr).await;
    for c in [&mut c1, &mut c2] {
        send(c, &get("/jobs")).await;
        assert_eq!(read_answer(c).await.status, 200);
    }
    // Both stay open (kept alive); a third connects (the kernel's backlog) but is not served.
    let mut c3 = connect(addr).await;
    send(&mut c3, &get("/jobs")).await;
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(800), c3.read(&mut byte)).await;
    assert!(early.is_err(), "the connection over the limit was served: {early:?}");
    drop(c1);
    let a = read_answer(&mut c3).await;
    assert_eq!(a.status, 200, "{a:?}");
    // The second one is still served on its kept-alive connection.
    send(&mut c2, &get("/jobs")).await;
    assert_eq!(read_answer(&mut c2).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_header_that_is_not_plain_ascii_is_refused_and_changes_nothing_of_the_default_tenant() {
    let sim =
        bounded("starting a simulator", sims::start(System::ConnectWise, &Scale::new(3, 5), SimConfig::default(), 0))
            .await
            .unwrap();
    let rt = runtime();
    let embedded = rt.embedded().unwrap().clone();
    let (addr, _server) = start(rt, ServerLimits::default()).await;
    let body = sim.credentials.to_string();
    let post = |tenant: &[u8]| {
        let mut req =
            b"POST /connections/connectwise HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n".to_vec();
        if !tenant.is_empty() {
            req.extend_from_slice(b"x-tenant-id: ");
            req.extend_from_slice(tenant);
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(format!("content-length: {}\r\n\r\n{body}", body.len()).as_bytes());
        req
    };
    let mut c = connect(addr).await;
    for tenant in ["Bé".as_bytes(), b"loc\xffal", "lócal".as_bytes()] {
        send(&mut c, &post(tenant)).await;
        let a = read_answer(&mut c).await;
        assert_eq!(a.status, 401, "{a:?}");
        assert_eq!(a.header("content-type"), Some("application/json"));
        let err = a.json();
        assert_eq!(err["error"]["kind"], "unauthorized", "{err}");
        let msg = err["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with("the x-tenant-id header is not a valid tenant id: "), "{msg}");
    }
    // Two tenant headers: refused too.
    let twice = post(b"local\r\nx-tenant-id: other");
    send(&mut c, &twice).await;
    assert_eq!(read_answer(&mut c).await.status, 401);
    // Nothing of tenant `local` (nor of anyone) changed.
    assert!(embedded.secrets.is_empty(), "a secret was saved: {:?}", embedded.secrets.names());
    assert!(embedded.table.is_empty().unwrap(), "records were written");
    send(&mut c, &get("/connections")).await;
    assert_eq!(read_answer(&mut c).await.json(), serde_json::json!({ "connections": [] }));
    // The same request without the header is tenant `local`'s, and does save.
    send(&mut c, &post(b"")).await;
    let a = read_answer(&mut c).await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(embedded.secrets.names(), ["tandem/local/connectwise"]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_handling_outlasts_the_header_read_timeout_is_still_answered() {
    let slow = SimConfig { latency: Duration::from_millis(1500), ..SimConfig::default() };
    let sim =
        bounded("starting a simulator", sims::start(System::ConnectWise, &Scale::new(3, 5), slow, 0)).await.unwrap();
    let (addr, _server) = start(runtime(), short(ServerLimits::default())).await;
    let body = sim.credentials.to_string();
    let req = format!(
        "POST /connections/connectwise HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut c = connect(addr).await;
    send(&mut c, req.as_bytes()).await;
    let started = Instant::now();
    let a = read_answer(&mut c).await;
    assert!(started.elapsed() >= Duration::from_millis(1000), "the simulator's latency was not waited for");
    assert_eq!(a.status, 201, "{a:?}");
    sim.shutdown().await;
}
