//! Outgoing webhooks every simulator shares: the record kinds and changes a system tells
//! about, the [`Outbox`] (a queue drained by one Tokio task per running system, so a
//! delivery never happens inside the request that made the change), the imperfect-delivery
//! knobs (duplicate, hold back and send later, drop; deterministic counters, off by
//! default) and the record of what was sent ([`SentWebhook`]).
//!
//! Each system builds its own vendor payloads in `<system>/webhooks.rs` and hands them here
//! as [`Outgoing`] calls. A test receiver ([`Receiver`]) records what arrives.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::common::Served;

/// How long one delivery may take before it counts as unanswered.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a delivery that must be acknowledged is tried at most (Salesforce retries for
/// 24 hours with a back-off up to 2 hours, salesforce-api.md 6.2; shortened for tests).
pub const MAX_ATTEMPTS: u32 = 6;
/// The first wait before trying an unacknowledged delivery again (doubled each time).
pub const FIRST_RETRY: Duration = Duration::from_millis(100);

/// The kinds of record a simulator tells about, and the person hooks change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Companies, clients, customers, accounts.
    Company,
    /// Contacts, users (Halo), contacts.
    Contact,
    /// Opportunities, leads (Syncro).
    Opportunity,
    /// Activities, actions and CRM notes (Halo), tasks (Salesforce).
    Activity,
}

impl Kind {
    /// The lower-case name (`company`, `contact`, `opportunity`, `activity`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Company => "company",
            Kind::Contact => "contact",
            Kind::Opportunity => "opportunity",
            Kind::Activity => "activity",
        }
    }
}

/// What happened to a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Created,
    Updated,
    Deleted,
}

/// Who made a change: an API caller (by the vendor's name of the API user), or a person in
/// the system's own UI (the person hooks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Through the API, as this API user (ConnectWise: the API member's identifier).
    Api(String),
    /// By a person in the system.
    Person,
}

/// Why a person hook did nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PersonError {
    /// The system has no such kind of record, or people cannot do that to it.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// No record of that kind has that id.
    #[error("not found: {0}")]
    NotFound(String),
    /// The system refused the change (what its API would answer).
    #[error("refused: {0}")]
    Refused(String),
}

/// One webhook call a system built, ready to send.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// Where it goes.
    pub url: String,
    /// Headers besides `content-type`.
    pub headers: Vec<(String, String)>,
    /// The `content-type` of the body.
    pub content_type: &'static str,
    /// The exact bytes sent (signatures cover them).
    pub body: Vec<u8>,
    /// The record it tells about.
    pub kind: Kind,
    /// The record's id in the system.
    pub id: String,
    /// What happened to it.
    pub change: Change,
    /// Sent again, with a back-off, until the answer contains this text (Salesforce's
    /// `<Ack>true</Ack>`); `None`: sent once, whatever the answer.
    pub until_answer_contains: Option<&'static str>,
}

/// One delivery made (or deliberately lost), for tests and benchmarks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentWebhook {
    /// Milliseconds since the Unix epoch when it was sent (or dropped).
    pub sent_unix_millis: u64,
    /// Where it went.
    pub url: String,
    /// The record it told about.
    pub kind: Kind,
    /// The record's id in the system.
    pub id: String,
    /// What happened to the record.
    pub change: Change,
    /// The HTTP status answered; `None` when unanswered (refused, timed out) or dropped.
    pub status: Option<u16>,
    /// 1 for the first try; more for retries of an unacknowledged delivery.
    pub attempt: u32,
    /// A second copy sent by the duplicate knob.
    pub duplicate: bool,
    /// Never sent: lost by the drop knob.
    pub dropped: bool,
    /// Sent after a later delivery by the reorder knob.
    pub held_back: bool,
    /// Milliseconds from sending to the receiver's whole answer; `None` when unanswered
    /// or never sent.
    #[serde(default)]
    pub answered_in_millis: Option<u64>,
}

/// The imperfect-delivery knobs and their counter.
#[derive(Debug, Default)]
struct Knobs {
    duplicate_every: u64,
    hold_every: u64,
    drop_every: u64,
    /// Deliveries handed to the outbox so far.
    count: u64,
    /// Held back, sent after the next delivery.
    held: VecDeque<Outgoing>,
}

/// A call on its way to the sending task, with how it was sent.
#[derive(Debug)]
struct Queued {
    call: Outgoing,
    attempt: u32,
    duplicate: bool,
    held_back: bool,
}

/// What the sending task and the outbox share.
#[derive(Debug, Default)]
struct Shared {
    log: Mutex<Vec<SentWebhook>>,
    /// Calls queued or in flight (retries included).
    pending: AtomicU64,
    /// The last call the receiver accepted (2xx), exactly as sent.
    last_accepted: Mutex<Option<Outgoing>>,
}

/// The outgoing webhooks of one running system.
#[derive(Debug, Default)]
pub struct Outbox {
    knobs: Mutex<Knobs>,
    shared: Arc<Shared>,
    sender: OnceLock<Option<mpsc::UnboundedSender<Queued>>>,
}

fn unix_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Outbox {
    /// Every `every`-th delivery from now on is sent twice (0: off). Setting any knob
    /// starts the count again.
    pub fn duplicate_every(&self, every: u32) {
        let mut k = self.lock();
        k.duplicate_every = u64::from(every);
        k.count = 0;
    }

    /// Every `every`-th delivery from now on is held back and sent after the next one (0:
    /// off), so the receiver sees them out of order.
    pub fn hold_back_every(&self, every: u32) {
        let mut k = self.lock();
        k.hold_every = u64::from(every);
        k.count = 0;
        if every == 0 {
            let held: Vec<Outgoing> = k.held.drain(..).collect();
            drop(k);
            for call in held {
                self.queue(Queued { call, attempt: 1, duplicate: false, held_back: true });
            }
        }
    }

    /// Every `every`-th delivery from now on is lost: never sent (0: off).
    pub fn drop_every(&self, every: u32) {
        let mut k = self.lock();
        k.drop_every = u64::from(every);
        k.count = 0;
    }

    /// Every delivery made or lost so far, in the order they happened.
    pub fn sent(&self) -> Vec<SentWebhook> {
        self.shared.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The last call the receiver accepted, exactly as it was sent (headers, body): what
    /// someone who captured it could send again.
    pub fn last_accepted(&self) -> Option<Outgoing> {
        self.shared.last_accepted.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until nothing is queued or in flight (held-back calls wait for a later one and
    /// do not count), at most `timeout`; false when it ran out.
    pub async fn settle(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if self.shared.pending.load(Ordering::SeqCst) == 0 {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Hands a call to the sending task, through the knobs.
    pub fn deliver(&self, call: Outgoing) {
        let mut k = self.lock();
        k.count += 1;
        let n = k.count;
        let hits = |every: u64| every > 0 && n.is_multiple_of(every);
        if hits(k.drop_every) {
            drop(k);
            let lost = Queued { call, attempt: 1, duplicate: false, held_back: false };
            record(&self.shared, &lost, None, true, None);
            return;
        }
        if hits(k.hold_every) {
            k.held.push_back(call);
            return;
        }
        let twice = hits(k.duplicate_every);
        let held: Vec<Outgoing> = k.held.drain(..).collect();
        drop(k);
        if twice {
            self.queue(Queued { call: call.clone(), attempt: 1, duplicate: false, held_back: false });
            self.queue(Queued { call, attempt: 1, duplicate: true, held_back: false });
        } else {
            self.queue(Queued { call, attempt: 1, duplicate: false, held_back: false });
        }
        for call in held {
            self.queue(Queued { call, attempt: 1, duplicate: false, held_back: true });
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Knobs> {
        self.knobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a call for the sending task, started on first use on the current runtime.
    fn queue(&self, queued: Queued) {
        let sender = self.sender.get_or_init(|| {
            let handle = tokio::runtime::Handle::try_current().ok()?;
            let (tx, rx) = mpsc::unbounded_channel();
            handle.spawn(run(rx, tx.downgrade(), Arc::clone(&self.shared)));
            Some(tx)
        });
        self.shared.pending.fetch_add(1, Ordering::SeqCst);
        let unsent = match sender {
            Some(tx) => tx.send(queued).err().map(|e| e.0),
            None => Some(queued),
        };
        if let Some(q) = unsent {
            self.shared.pending.fetch_sub(1, Ordering::SeqCst);
            record(&self.shared, &q, None, false, None);
        }
    }
}

/// Logs what became of `q`: answered with `status` after `answered_in_millis`, or lost.
fn record(shared: &Shared, q: &Queued, status: Option<u16>, dropped: bool, answered_in_millis: Option<u64>) {
    let (call, attempt, dup, held) = (&q.call, q.attempt, q.duplicate, q.held_back);
    let entry = SentWebhook {
        // Logged once answered: the call left that long before.
        sent_unix_millis: unix_millis().saturating_sub(answered_in_millis.unwrap_or(0)),
        url: call.url.clone(),
        kind: call.kind,
        id: call.id.clone(),
        change: call.change,
        status,
        attempt,
        duplicate: dup,
        dropped,
        held_back: held,
        answered_in_millis,
    };
    shared.log.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
}

/// The sending task: one call at a time, in queue order; an unacknowledged call that must
/// be acknowledged is queued again after a back-off. Ends when the outbox is dropped.
async fn run(mut rx: mpsc::UnboundedReceiver<Queued>, tx: mpsc::WeakUnboundedSender<Queued>, shared: Arc<Shared>) {
    let client = match reqwest::Client::builder().timeout(DELIVERY_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("the webhook sender cannot start: {e}");
            return;
        }
    };
    while let Some(q) = rx.recv().await {
        let mut request = client.post(&q.call.url).header("content-type", q.call.content_type);
        for (name, value) in &q.call.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let sent = Instant::now();
        let answer = request.body(q.call.body.clone()).send().await;
        let (status, text) = match answer {
            Ok(resp) => {
                let status = resp.status().as_u16();
                (Some(status), resp.text().await.unwrap_or_default())
            }
            Err(_) => (None, String::new()),
        };
        let took = status.map(|_| u64::try_from(sent.elapsed().as_millis()).unwrap_or(u64::MAX));
        record(&shared, &q, status, false, took);
        if status.is_some_and(|s| (200..300).contains(&s)) {
            *shared.last_accepted.lock().unwrap_or_else(|e| e.into_inner()) = Some(q.call.clone());
        }
        let acknowledged = match q.call.until_answer_contains {
            None => true,
            Some(ack) => status.is_some_and(|s| (200..300).contains(&s)) && text.contains(ack),
        };
        if !acknowledged
            && q.attempt < MAX_ATTEMPTS
            && let Some(tx) = tx.upgrade()
        {
            let wait = FIRST_RETRY * 2u32.pow(q.attempt - 1);
            let again = Queued { attempt: q.attempt + 1, ..q };
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                // Still pending: the count stays up until the retry is sent.
                let _ = tx.send(again);
            });
            continue;
        }
        shared.pending.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The URLs an administrator set up by hand for a system with no registration API (the
/// `subscribe` control).
#[derive(Debug, Default)]
pub struct Subscriptions {
    urls: Mutex<Vec<String>>,
}

impl Subscriptions {
    /// The URLs, in the order they were added.
    pub fn urls(&self) -> Vec<String> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.urls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `url` (once).
    pub fn add(&self, url: &str) -> bool {
        let mut urls = self.lock();
        if !urls.iter().any(|u| u == url) {
            urls.push(url.to_string());
        }
        true
    }

    /// Removes `url`; false when it was not there.
    pub fn remove(&self, url: &str) -> bool {
        let mut urls = self.lock();
        let before = urls.len();
        urls.retain(|u| u != url);
        urls.len() != before
    }
}

/// One call a [`Receiver`] got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The request path.
    pub path: String,
    /// The query string's pairs.
    pub query: BTreeMap<String, String>,
    /// Header names lower-cased.
    pub headers: BTreeMap<String, String>,
    /// The raw body.
    pub body: Vec<u8>,
}

/// What a [`Receiver`] answers: status, content type, body.
type Answer = (u16, &'static str, String);

#[derive(Debug, Default)]
struct ReceiverState {
    calls: Mutex<Vec<Received>>,
    answer: Mutex<Option<Answer>>,
}

/// A tiny webhook receiver on 127.0.0.1 for tests: records every call to any path and
/// answers 200 with an empty body (or what [`Receiver::answer_with`] sets).
#[derive(Debug)]
pub struct Receiver {
    served: Served,
    state: Arc<ReceiverState>,
}

impl Receiver {
    /// Starts one on a free port. Needs a Tokio runtime.
    pub async fn start() -> std::io::Result<Receiver> {
        let state = Arc::new(ReceiverState::default());
        let shared = Arc::clone(&state);
        let served = Served::start(0, move |_| {
            axum::Router::new().fallback(
                move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let state = Arc::clone(&shared);
                    async move {
                        let query = url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
                            .into_owned()
                            .collect();
                        let headers = headers
                            .iter()
                            .filter_map(|(k, v)| Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_string())))
                            .collect();
                        let call = Received { path: uri.path().to_string(), query, headers, body: body.to_vec() };
                        state.calls.lock().unwrap_or_else(|e| e.into_inner()).push(call);
                        let answer = state.answer.lock().unwrap_or_else(|e| e.into_inner()).clone();
                        let (status, content_type, body) = answer.unwrap_or((200, "text/plain", String::new()));
                        let mut resp = axum::response::Response::new(axum::body::Body::from(body));
                        *resp.status_mut() =
                            axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK);
                        resp.headers_mut().insert(
                            axum::http::header::CONTENT_TYPE,
                            axum::http::HeaderValue::from_static(content_type),
                        );
                        resp
                    }
                },
            )
        })
        .await?;
        Ok(Receiver { served, state })
    }

    /// `http://127.0.0.1:PORT{path_and_query}`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.served.base_url())
    }

    /// From now on every call is answered `status` with `body` of `content_type`.
    pub fn answer_with(&self, status: u16, content_type: &'static str, body: impl Into<String>) {
        *self.state.answer.lock().unwrap_or_else(|e| e.into_inner()) = Some((status, content_type, body.into()));
    }

    /// Every call so far, in arrival order.
    pub fn calls(&self) -> Vec<Received> {
        self.state.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until at least `n` calls arrived (at most `timeout`); answers them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let end = Instant::now() + timeout;
        loop {
            let calls = self.calls();
            if calls.len() >= n || Instant::now() >= end {
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A GUID-shaped text, deterministic for a salt and a counter.
pub fn guid(salt: u64, n: u64) -> String {
    let a = mix(salt ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let b = mix(a ^ n);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48 & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// SplitMix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Escapes text for an XML element or attribute.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_shaped_like_guids_and_differ_by_counter() {
        let g = guid(7, 1);
        assert_eq!(g.len(), 36, "{g}");
        assert_eq!(g.matches('-').count(), 4, "{g}");
        assert_ne!(g, guid(7, 2));
        assert_eq!(g, guid(7, 1));
    }

    #[test]
    fn xml_text_is_escaped() {
        assert_eq!(xml_escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }

    #[test]
    fn without_a_runtime_a_delivery_is_recorded_unanswered() {
        let outbox = Outbox::default();
        let call = Outgoing {
            url: "http://127.0.0.1:9/x".into(),
            headers: Vec::new(),
            content_type: "application/json",
            body: b"{}".to_vec(),
            kind: Kind::Company,
            id: "1".into(),
            change: Change::Created,
            until_answer_contains: None,
        };
        outbox.drop_every(2);
        outbox.deliver(call.clone());
        outbox.deliver(call);
        let sent = outbox.sent();
        assert_eq!(sent.len(), 2);
        assert_eq!((sent[0].status, sent[0].dropped), (None, false));
        assert!(sent[1].dropped, "the second is lost by the knob");
    }
}
