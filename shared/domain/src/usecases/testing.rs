//! In-process fakes of every port, for the domain's unit tests only.

use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};

use crate::describe::Description;
use crate::external::{AccountInfo, Choice, Cursor, ExternalRecord, OptionList, Page};
use crate::ids::{RecordKind, Stage, System, TenantId};
use crate::job::StageMessage;
use crate::normalise::Timestamp;
use crate::ports::*;
use crate::secret::{Credentials, SecretString};
use crate::table::RecordStore;
use crate::usecases::Services;
use crate::work::Work;

#[derive(Default)]
pub struct MemTable {
    items: Mutex<BTreeMap<(String, String), Item>>,
    /// How many index queries were made.
    pub index_queries: std::sync::atomic::AtomicUsize,
    /// How many (look-up) queries were made.
    pub queries: std::sync::atomic::AtomicUsize,
    /// How many transactions were committed.
    pub transactions: std::sync::atomic::AtomicUsize,
    /// When set, the next transaction fails as if someone else had written first.
    pub conflict_next: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait]
impl Table for MemTable {
    fn token_after(&self, item: &Item, index: bool) -> Result<String, StoreError> {
        // A partition read answers in one page; an index read pages by `limit`, its token
        // the item's index sort key and key.
        Ok(match (index, &item.gsi1) {
            (true, Some(g)) => index_token(&g.sk, &item.pk, &item.sk),
            _ => item.sk.clone(),
        })
    }
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        Ok(lock(&self.items).get(&(pk.to_string(), sk.to_string())).cloned())
    }
    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Item>, StoreError> {
        let items = lock(&self.items);
        Ok(keys.iter().filter_map(|k| items.get(k).cloned()).collect())
    }
    async fn query(&self, pk: &str, q: &Query) -> Result<QueryPage, StoreError> {
        self.queries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let items = lock(&self.items);
        let mut v: Vec<Item> = items
            .values()
            .filter(|i| i.pk == pk && q.sk_prefix.as_ref().is_none_or(|p| i.sk.starts_with(p.as_str())))
            .cloned()
            .collect();
        if q.descending {
            v.reverse();
        }
        v.truncate(q.limit.max(1));
        Ok(QueryPage { items: v, next: None })
    }
    async fn query_index(&self, pk: &str, q: &Query) -> Result<QueryPage, StoreError> {
        self.index_queries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let items = lock(&self.items);
        let mut v: Vec<Item> =
            items.values().filter(|i| i.gsi1.as_ref().is_some_and(|g| g.pk == pk)).cloned().collect();
        let token = |i: &Item| i.gsi1.as_ref().map(|g| index_token(&g.sk, &i.pk, &i.sk)).unwrap_or_default();
        v.sort_by_key(token);
        if q.descending {
            v.reverse();
        }
        if let Some(after) = &q.after {
            if after.split('\n').count() != 3 {
                return Err(StoreError::InvalidToken(format!("{after:?} is not a token this table issued")));
            }
            v.retain(|i| if q.descending { token(i) < *after } else { token(i) > *after });
        }
        let mut next = None;
        if q.limit > 0 && v.len() > q.limit {
            v.truncate(q.limit);
            next = v.last().map(token);
        }
        Ok(QueryPage { items: v, next })
    }
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        if self.conflict_next.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Conflict("someone else wrote first".into()));
        }
        let mut items = lock(&self.items);
        for w in &writes {
            if let Write::Put { item, condition } = w {
                let cur = items.get(&(item.pk.clone(), item.sk.clone()));
                let ok = match condition {
                    Condition::None => true,
                    Condition::NotExists => cur.is_none(),
                    Condition::VersionIs(v) => cur.is_some_and(|c| c.version == *v),
                };
                if !ok {
                    return Err(StoreError::Conflict(item.pk.clone()));
                }
            }
        }
        self.transactions.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        for w in writes {
            match w {
                Write::Put { item, .. } => {
                    items.insert((item.pk.clone(), item.sk.clone()), item);
                }
                Write::Delete { pk, sk } => {
                    items.remove(&(pk, sk));
                }
            }
        }
        Ok(())
    }
}

/// The paging token of an index read stopped after the item with these keys.
fn index_token(gsi_sk: &str, pk: &str, sk: &str) -> String {
    format!("{gsi_sk}\n{pk}\n{sk}")
}

#[derive(Default)]
pub struct MemQueue {
    pub sent: Mutex<Vec<Work>>,
    /// While set, every send fails (the queue unreachable).
    pub down: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl WorkQueue for MemQueue {
    async fn send(&self, work: &Work) -> Result<(), QueueError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(QueueError("the queue is unreachable".into()));
        }
        lock(&self.sent).push(work.clone());
        Ok(())
    }
}

impl MemQueue {
    /// The oldest message sent, of any kind.
    pub fn pop_work(&self) -> Option<Work> {
        let mut v = lock(&self.sent);
        (!v.is_empty()).then(|| v.remove(0))
    }

    /// The oldest message sent, which must be an import page.
    pub fn pop(&self) -> Option<StageMessage> {
        let mut v = lock(&self.sent);
        (!v.is_empty()).then(|| v.remove(0)).map(|w| w.import_page().cloned().expect("an import page"))
    }
}

#[derive(Default)]
pub struct MemSecrets(Mutex<BTreeMap<String, Credentials>>, Mutex<BTreeMap<String, SecretString>>);

#[async_trait]
impl SecretStore for MemSecrets {
    async fn put(&self, t: &TenantId, s: System, c: &Credentials) -> Result<String, SecretError> {
        let name = format!("{t}/{s}");
        lock(&self.0).insert(name.clone(), c.clone());
        Ok(name)
    }
    async fn get(&self, t: &TenantId, s: System) -> Result<Credentials, SecretError> {
        let name = format!("{t}/{s}");
        lock(&self.0).get(&name).cloned().ok_or(SecretError::NotFound(name))
    }
    async fn put_webhook_secret(&self, t: &TenantId, s: System, secret: &SecretString) -> Result<(), SecretError> {
        lock(&self.1).insert(format!("{t}/{s}/webhook"), secret.clone());
        Ok(())
    }
    async fn webhook_secret(&self, t: &TenantId, s: System) -> Result<SecretString, SecretError> {
        let name = format!("{t}/{s}/webhook");
        lock(&self.1).get(&name).cloned().ok_or(SecretError::NotFound(name))
    }
}

/// A clock standing at 1_700_000_000 until a test moves it.
#[derive(Default)]
pub struct FixedClock(pub std::sync::atomic::AtomicI64);
impl FixedClock {
    /// Moves the clock forward by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, std::sync::atomic::Ordering::SeqCst);
    }
}
impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        let offset = self.0.load(std::sync::atomic::Ordering::SeqCst);
        Timestamp::from_unix(1_700_000_000 + offset).unwrap_or_else(|_| unreachable!())
    }
}

#[derive(Default)]
pub struct NoEvents(pub Mutex<Vec<crate::events::FailureEvent>>, pub Mutex<Vec<crate::job::Job>>);
#[async_trait]
impl EventPublisher for NoEvents {
    async fn failed(&self, event: &crate::events::FailureEvent) {
        lock(&self.0).push(event.clone());
    }
    async fn job_failed(&self, job: &crate::job::Job) {
        lock(&self.1).push(job.clone());
    }
}

/// A connector serving fixed pages per stage (page size 2), with options per list.
#[derive(Default)]
pub struct FakeConnector {
    pub records: Mutex<BTreeMap<Stage, Vec<ExternalRecord>>>,
    pub options: BTreeMap<OptionList, Vec<Choice>>,
    pub reject: bool,
    /// When set, every read fails with this transient error.
    pub down: std::sync::atomic::AtomicBool,
    /// Records per page (default 2).
    pub page_size: Option<usize>,
    /// The ids the system's delete log names (`None`: it keeps no such log).
    pub delete_log: Mutex<Option<Vec<String>>>,
    /// When set, reading the delete log is refused for good (a permission error).
    pub delete_log_refused: std::sync::atomic::AtomicBool,
    /// When set, the system takes writes (companies only): updates and creates replace
    /// the stored record, stamped as a new version; each write is noted in `writes`.
    pub writable: bool,
    /// The writes the system took: `update ID [fields]`, `create ID`, `delete ID`.
    pub writes: Mutex<Vec<String>>,
    /// How many of the next writes the system answers 429 (retry after 30 s).
    pub rate_limited_writes: std::sync::atomic::AtomicU32,
    /// Reads made (`list` and `get`): the "requests" `Connector::calls` reports.
    pub reads: std::sync::atomic::AtomicU64,
}

impl FakeConnector {
    /// Stores `record` as the system's company `id`, stamped as a new version.
    fn put_company(&self, record: &ExternalRecord, id: &str) -> Result<Written, ConnectorError> {
        let ExternalRecord::Company(c) = record else {
            return Err(not_written(System::ConnectWise, record.kind().unwrap_or(RecordKind::Company)));
        };
        let mut all = lock(&self.records);
        let companies = all.entry(Stage::Companies).or_default();
        let n = lock(&self.writes).len();
        let version = format!("2030-01-01T00:00:{:02}Z", n % 60);
        let stored = ExternalRecord::Company(crate::external::ExtCompany {
            id: id.into(),
            updated_at: Some(version.as_str().into()),
            ..c.clone()
        });
        match companies.iter_mut().find(|r| r.id() == Some(id)) {
            Some(slot) => *slot = stored,
            None => companies.push(stored),
        }
        Ok(Written { id: id.into(), version: Some(version.as_str().into()) })
    }
}

#[async_trait]
impl Connector for FakeConnector {
    fn system(&self) -> System {
        System::ConnectWise
    }
    async fn check(&self) -> Result<AccountInfo, ConnectorError> {
        if self.reject {
            return Err(ConnectorError::new(System::ConnectWise, ErrorKind::Unauthorized, "bad keys"));
        }
        Ok(AccountInfo { version: Some("fake".into()), api_url: "http://fake".into() })
    }
    async fn options(&self, list: OptionList) -> Result<Vec<Choice>, ConnectorError> {
        Ok(self.options.get(&list).cloned().unwrap_or_default())
    }
    fn calls(&self) -> u64 {
        self.reads.load(SeqCst)
    }
    async fn list(&self, kind: RecordKind, cursor: &Cursor) -> Result<Page, ConnectorError> {
        self.reads.fetch_add(1, SeqCst);
        self.up()?;
        let Some(stage) = Stage::of_kind(kind) else { return Ok(Page { records: Vec::new(), next: None }) };
        let all = lock(&self.records).get(&stage).cloned().unwrap_or_default();
        let start: usize = cursor.position.parse().unwrap_or(0);
        let end = (start + self.page_size.unwrap_or(2)).min(all.len());
        let next = (end < all.len()).then(|| Cursor { position: end.to_string(), since: None });
        Ok(Page { records: all[start.min(end)..end].to_vec(), next })
    }
    async fn get(&self, kind: RecordKind, id: &str) -> Result<Option<ExternalRecord>, ConnectorError> {
        self.reads.fetch_add(1, SeqCst);
        self.up()?;
        let stage = Stage::of_kind(kind).ok_or_else(|| crate::ports::no_such_kind(System::ConnectWise, kind))?;
        Ok(lock(&self.records).get(&stage).and_then(|all| all.iter().find(|r| r.id() == Some(id)).cloned()))
    }
    async fn deleted_since(&self, _kind: RecordKind, _since: Timestamp) -> Result<Option<Vec<String>>, ConnectorError> {
        self.up()?;
        if self.delete_log_refused.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ConnectorError::new(System::ConnectWise, ErrorKind::Forbidden, "no access to the delete log"));
        }
        Ok(lock(&self.delete_log).clone())
    }
    async fn find_similar(&self, record: &ExternalRecord) -> Result<Vec<ExternalRecord>, ConnectorError> {
        match self.writable {
            true => Ok(Vec::new()),
            false => Err(not_written(System::ConnectWise, record.kind().unwrap_or(RecordKind::Company))),
        }
    }
    async fn create(&self, record: &ExternalRecord) -> Result<Written, ConnectorError> {
        if !self.writable {
            return Err(not_written(System::ConnectWise, record.kind().unwrap_or(RecordKind::Company)));
        }
        let id = format!("new-{}", lock(&self.writes).len() + 1);
        let written = self.put_company(record, &id)?;
        lock(&self.writes).push(format!("create {id}"));
        Ok(written)
    }
    async fn update(&self, record: &ExternalRecord, fields: &[&str]) -> Result<Written, ConnectorError> {
        self.not_limited()?;
        let (true, ExternalRecord::Company(new)) = (self.writable, record) else {
            return Err(not_written(System::ConnectWise, record.kind().unwrap_or(RecordKind::Company)));
        };
        let id = record.id().unwrap_or_default().to_string();
        // Only the named fields change, as a real system's partial update does.
        let Some(ExternalRecord::Company(mut next)) = self.get(RecordKind::Company, &id).await? else {
            return Err(ConnectorError::new(System::ConnectWise, ErrorKind::NotFound, format!("no company {id}")));
        };
        for field in fields {
            match *field {
                "name" => next.name = new.name.clone(),
                "phone" => next.phone = new.phone.clone(),
                "website" => next.website = new.website.clone(),
                "address" => next.address = new.address.clone(),
                "company_type" => next.types = new.types.clone(),
                _ => {}
            }
        }
        let written = self.put_company(&ExternalRecord::Company(next), &id)?;
        lock(&self.writes).push(format!("update {id} {fields:?}"));
        Ok(written)
    }
    async fn delete(&self, kind: RecordKind, id: &str) -> Result<(), ConnectorError> {
        if !self.writable {
            return Err(not_written(System::ConnectWise, kind));
        }
        if let Some(all) = lock(&self.records).get_mut(&Stage::Companies) {
            all.retain(|r| r.id() != Some(id));
        }
        lock(&self.writes).push(format!("delete {id}"));
        Ok(())
    }
}

impl FakeConnector {
    /// The 429 a write is answered while [`FakeConnector::rate_limited_writes`] lasts.
    fn not_limited(&self) -> Result<(), ConnectorError> {
        let left = &self.rate_limited_writes;
        if left.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1)).is_ok() {
            let mut e = ConnectorError::new(System::ConnectWise, ErrorKind::RateLimited, "429 Too Many Requests");
            e.retryable = true;
            e.retry_after = Some(std::time::Duration::from_secs(30));
            return Err(e);
        }
        Ok(())
    }

    /// The transient error every read fails with while [`FakeConnector::down`] is set.
    fn up(&self) -> Result<(), ConnectorError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ConnectorError::new(System::ConnectWise, ErrorKind::Transient, "503 Service Unavailable"));
        }
        Ok(())
    }
}

pub struct FakeFactory(pub Arc<FakeConnector>);
impl ConnectorFactory for FakeFactory {
    fn connect(&self, _creds: &Credentials) -> Result<Arc<dyn Connector>, ConnectorError> {
        Ok(self.0.clone())
    }

    fn describe(&self, system: System) -> &'static Description {
        crate::describe::fixtures::like(system)
    }

    fn webhooks(&self, _system: System) -> &'static dyn crate::webhook::WebhookReader {
        &FakeWebhooks
    }
}

/// A webhook reader for tests: the call proves itself with header `x-secret` equal to the
/// secret; its body is `[{"kind", "id", "deleted"?}]`.
pub struct FakeWebhooks;

impl crate::webhook::WebhookReader for FakeWebhooks {
    fn system(&self) -> System {
        System::ConnectWise
    }
    fn verify(&self, call: &crate::webhook::WebhookCall, secret: &[u8]) -> Result<(), crate::webhook::WebhookError> {
        match call.header("x-secret") {
            Some(s) if crate::webhook::same_bytes(s.as_bytes(), secret) => Ok(()),
            _ => Err(crate::webhook::WebhookError::Unauthenticated("wrong x-secret".into())),
        }
    }
    fn parse(
        &self,
        call: &crate::webhook::WebhookCall,
    ) -> Result<crate::webhook::Delivery, crate::webhook::WebhookError> {
        use crate::webhook::{Action, Delivery, Notice, WebhookError};
        let items: Vec<serde_json::Value> =
            serde_json::from_slice(&call.body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
        let notices = items
            .iter()
            .map(|i| {
                let kind =
                    serde_json::from_value(i["kind"].clone()).map_err(|e| WebhookError::Malformed(e.to_string()))?;
                let id = i["id"].as_str().ok_or_else(|| WebhookError::Malformed("no id".into()))?.to_string();
                let action = if i["deleted"] == true { Action::Deleted } else { Action::Changed };
                Ok(Notice { kind, id, action, at: None, by_us: false })
            })
            .collect::<Result<Vec<_>, WebhookError>>()?;
        Ok(Delivery { notices, key_url: None })
    }
}

pub struct World {
    pub svc: Services,
    pub table: Arc<MemTable>,
    pub clock: Arc<FixedClock>,
    pub queue: Arc<MemQueue>,
    pub connector: Arc<FakeConnector>,
    pub events: Arc<NoEvents>,
}

/// Snapshot objects in memory (unit tests).
#[derive(Default)]
pub struct MemSnapshots(Arc<Mutex<HashMap<String, Vec<Vec<u8>>>>>);

struct MemLines(Arc<Mutex<HashMap<String, Vec<Vec<u8>>>>>, String, Vec<Vec<u8>>);

#[async_trait]
impl LineWriter for MemLines {
    async fn line(&mut self, line: &[u8]) -> Result<(), StoreError> {
        self.2.push(line.to_vec());
        Ok(())
    }
    async fn finish(self: Box<Self>) -> Result<u64, StoreError> {
        let bytes = self.2.iter().map(|l| l.len() as u64 + 1).sum();
        self.0.lock().unwrap().insert(self.1, self.2);
        Ok(bytes)
    }
}

struct MemRead(std::vec::IntoIter<Vec<u8>>);

#[async_trait]
impl LineReader for MemRead {
    async fn next(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.0.next())
    }
}

#[async_trait]
impl SnapshotStore for MemSnapshots {
    async fn create(&self, key: &str) -> Result<Box<dyn LineWriter>, StoreError> {
        Ok(Box::new(MemLines(self.0.clone(), key.to_string(), Vec::new())))
    }
    async fn open(&self, key: &str) -> Result<Option<Box<dyn LineReader>>, StoreError> {
        let lines = self.0.lock().unwrap().get(key).cloned();
        Ok(lines.map(|l| Box::new(MemRead(l.into_iter())) as Box<dyn LineReader>))
    }
}

pub fn world(connector: FakeConnector) -> World {
    let queue = Arc::new(MemQueue::default());
    let connector = Arc::new(connector);
    let events = Arc::new(NoEvents::default());
    let table = Arc::new(MemTable::default());
    let clock = Arc::new(FixedClock::default());
    let svc = Services {
        store: RecordStore::new(table.clone()),
        queue: queue.clone(),
        secrets: Arc::new(MemSecrets::default()),
        connectors: Arc::new(FakeFactory(connector.clone())),
        clock: clock.clone(),
        events: events.clone(),
        snapshots: Arc::new(MemSnapshots::default()),
        tuning: crate::usecases::Tuning::default(),
        meter: Default::default(),
    };
    World { svc, table, clock, queue, connector, events }
}
