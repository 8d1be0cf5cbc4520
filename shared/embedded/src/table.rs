//! [`EmbeddedTable`]: the single item table on one machine, behaving like DynamoDB where
//! the domain can tell (conditional all-or-nothing transactions, key-ordered queries with
//! opaque paging tokens, a secondary index, TTL), optionally persisted to an append-only
//! log in a data directory.
//!
//! Layout: items live in a `BTreeMap<(pk, sk), Item>` and the secondary index in a
//! `BTreeSet<(gsi1.pk, gsi1.sk, pk, sk)>`, both behind one `RwLock` that is never held
//! across an `.await`. Reads take the read lock; expired items they meet are purged
//! afterwards under the write lock.
//!
//! Persistence (`open(dir)`): every committed transaction is appended to `dir/table.log`
//! as one JSON line (an array of `{"put": item}` / `{"delete": {pk, sk}}`) with a single
//! `write` before `transact` returns, so a killed process keeps every transaction it
//! acknowledged. The file is not fsynced per transaction: an operating-system crash or a
//! power cut may lose the last acknowledged writes (compaction does fsync). On open the
//! log is replayed; a truncated last line (a crash mid-write) is ignored with a warning,
//! any other unreadable line is an [`OpenError::CorruptLine`] naming it. The log is then
//! compacted when it holds anything but the current items: the live items are written
//! to `table.log.tmp`, fsynced and renamed over `table.log`.
//!
//! One process per directory: `Embedded::open` locks the directory (`tandem.lock`)
//! before opening the table and the table holds that lock while it lives (see the crate
//! docs); [`EmbeddedTable::open`] on its own takes no lock. The directory is created with
//! mode 0700 (an existing one tightened to it where allowed), and `table.log` and
//! `table.log.tmp` are created with mode 0600, an existing `table.log` tightened to 0600
//! before it is read: the log holds CRM personal data.
//!
//! [`EmbeddedTable::items_with_sort_key`] is a full scan for the local runner (finding
//! every tenant's running jobs at start), not part of the [`Table`] port.
//!
//! Invalid requests that DynamoDB rejects with a `ValidationException` (no writes, more
//! than 100, two writes on one item, an empty key, an item over 400 KB) are caller bugs
//! that no retry fixes; the domain's [`StoreError`] has no variant for that, so they are
//! reported as the non-retryable [`StoreError::Corrupt`] with a message starting
//! `invalid transaction`.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Write as _};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tandem_domain::ports::{Clock, Condition, Item, Query, QueryPage, StoreError, SystemClock, Table, Write};

use crate::error::OpenError;
use crate::{DirLock, private_fs};

/// The most writes one transaction may hold (DynamoDB `TransactWriteItems`).
pub const MAX_TRANSACTION_WRITES: usize = 100;
/// The largest item, measured as its JSON encoding (DynamoDB: 400 KB).
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// The log file's name inside the data directory.
pub const LOG_FILE: &str = "table.log";
const COMPACT_FILE: &str = "table.log.tmp";

type Key = (String, String);
/// `(gsi1.pk, gsi1.sk, pk, sk)`.
type IndexEntry = (String, String, String, String);

/// One write as it is logged.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum LoggedRef<'a> {
    Put(&'a Item),
    Delete { pk: &'a str, sk: &'a str },
}

/// One write as it is replayed.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Logged {
    Put(Item),
    Delete { pk: String, sk: String },
}

/// The append-only log of a persisted table.
struct LogFile {
    path: PathBuf,
    file: File,
    /// The length of the file up to the last whole line.
    len: u64,
    /// Set when a failed append could not be rolled back: the table refuses writes.
    broken: Option<String>,
}

impl LogFile {
    fn append(&mut self, line: &[u8]) -> Result<(), StoreError> {
        if let Some(why) = &self.broken {
            return Err(StoreError::Unavailable(why.clone()));
        }
        match self.file.write_all(line).and_then(|()| self.file.flush()) {
            Ok(()) => {
                self.len += line.len() as u64;
                Ok(())
            }
            Err(e) => {
                let msg = format!("cannot append to {}: {e}", self.path.display());
                // Cut a partial line off so the log stays readable.
                if let Err(e2) = self.file.set_len(self.len) {
                    let why = format!("{msg}; cannot cut the partial line off either: {e2}");
                    tracing::error!(path = %self.path.display(), "{why}");
                    self.broken = Some(why);
                }
                Err(StoreError::Unavailable(msg))
            }
        }
    }
}

#[derive(Default)]
struct State {
    items: BTreeMap<Key, Item>,
    index: BTreeSet<IndexEntry>,
    log: Option<LogFile>,
}

fn index_entry(item: &Item) -> Option<IndexEntry> {
    item.gsi1.as_ref().map(|g| (g.pk.clone(), g.sk.clone(), item.pk.clone(), item.sk.clone()))
}

impl State {
    fn put(&mut self, item: Item) {
        let entry = index_entry(&item);
        let key = (item.pk.clone(), item.sk.clone());
        if let Some(old) = self.items.insert(key, item)
            && let Some(old_entry) = index_entry(&old)
            && Some(&old_entry) != entry.as_ref()
        {
            self.index.remove(&old_entry);
        }
        if let Some(entry) = entry {
            self.index.insert(entry);
        }
    }

    fn delete(&mut self, key: &Key) {
        if let Some(old) = self.items.remove(key)
            && let Some(entry) = index_entry(&old)
        {
            self.index.remove(&entry);
        }
    }

    fn apply(&mut self, op: Logged) {
        match op {
            Logged::Put(item) => self.put(item),
            Logged::Delete { pk, sk } => self.delete(&(pk, sk)),
        }
    }
}

/// Whether an item is still visible at `now` (epoch seconds): DynamoDB TTL semantics,
/// expired once `expires_at` is in the past.
pub(crate) fn live(item: &Item, now: i64) -> bool {
    item.expires_at.is_none_or(|at| at >= now)
}

/// The smallest string greater than every string starting with `prefix`, if any.
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(c) = chars.pop() {
        let next = match c {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(n) = next {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The key range `[start, end)` narrowed to strictly after (or, descending, strictly
/// before) `after`; `None` when empty.
fn window<K: Ord>(start: K, end: K, after: Option<K>, descending: bool) -> Option<(Bound<K>, Bound<K>)> {
    let mut lo = start;
    let mut lo_excluded = false;
    let mut hi = end;
    if let Some(a) = after {
        if descending {
            if a < hi {
                hi = a;
            }
        } else if a >= lo {
            lo = a;
            lo_excluded = true;
        }
    }
    (lo < hi).then(|| (if lo_excluded { Bound::Excluded(lo) } else { Bound::Included(lo) }, Bound::Excluded(hi)))
}

fn directed<'a, T: 'a>(
    iter: impl DoubleEndedIterator<Item = T> + 'a,
    descending: bool,
) -> Box<dyn Iterator<Item = T> + 'a> {
    if descending { Box::new(iter.rev()) } else { Box::new(iter) }
}

pub(crate) fn encode_token(parts: &[&str]) -> Result<String, StoreError> {
    let json =
        serde_json::to_vec(parts).map_err(|e| StoreError::Corrupt(format!("cannot encode a paging token: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

pub(crate) fn decode_token(token: &str, parts: usize) -> Result<Vec<String>, StoreError> {
    let bad = || StoreError::InvalidToken(format!("{token:?} is not a token this table issued"));
    let json = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let v: Vec<String> = serde_json::from_slice(&json).map_err(|_| bad())?;
    if v.len() == parts { Ok(v) } else { Err(bad()) }
}

fn invalid(why: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("invalid transaction (DynamoDB would refuse it): {why}"))
}

/// Counts the bytes written through it.
struct ByteCount(usize);

impl io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub(crate) fn validate(writes: &[Write]) -> Result<(), StoreError> {
    if writes.is_empty() {
        return Err(invalid("a transaction needs at least one write"));
    }
    if writes.len() > MAX_TRANSACTION_WRITES {
        return Err(invalid(format!("{} writes in one transaction, at most {MAX_TRANSACTION_WRITES}", writes.len())));
    }
    let mut seen: HashSet<(&str, &str)> = HashSet::with_capacity(writes.len());
    for w in writes {
        let (pk, sk) = match w {
            Write::Put { item, .. } => (item.pk.as_str(), item.sk.as_str()),
            Write::Delete { pk, sk } => (pk.as_str(), sk.as_str()),
        };
        if pk.is_empty() || sk.is_empty() {
            return Err(invalid(format!("empty key {pk:?} / {sk:?}")));
        }
        if !seen.insert((pk, sk)) {
            return Err(invalid(format!("the transaction has two operations on one item {pk} / {sk}")));
        }
        if let Write::Put { item, .. } = w {
            if item.gsi1.as_ref().is_some_and(|g| g.pk.is_empty() || g.sk.is_empty()) {
                return Err(invalid(format!("item {pk} / {sk} has an empty index key")));
            }
            let mut size = ByteCount(0);
            serde_json::to_writer(&mut size, item).map_err(|e| invalid(format!("item {pk} / {sk}: {e}")))?;
            if size.0 > MAX_ITEM_BYTES {
                return Err(invalid(format!("item {pk} / {sk} is {} bytes, at most {MAX_ITEM_BYTES}", size.0)));
            }
        }
    }
    Ok(())
}

pub(crate) fn check(current: Option<&Item>, pk: &str, sk: &str, condition: Condition) -> Result<(), StoreError> {
    let failed = |why: String| Err(StoreError::Conflict(format!("item {pk} / {sk} {why}")));
    match (condition, current) {
        (Condition::None, _) | (Condition::NotExists, None) => Ok(()),
        (Condition::NotExists, Some(_)) => failed("already exists".into()),
        (Condition::VersionIs(v), Some(item)) if item.version == v => Ok(()),
        (Condition::VersionIs(v), Some(item)) => failed(format!("is at version {}, expected {v}", item.version)),
        (Condition::VersionIs(v), None) => failed(format!("does not exist, expected version {v}")),
    }
}

/// What replaying a log found.
struct Replay {
    /// Writes applied.
    ops: usize,
    /// Whether the last line was cut off.
    truncated: bool,
}

fn replay(path: &Path, state: &mut State) -> Result<Replay, OpenError> {
    let file = File::open(path).map_err(OpenError::io("open", path))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buf = Vec::new();
    let mut out = Replay { ops: 0, truncated: false };
    let mut line_no = 0usize;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(OpenError::io("read", path))?;
        if n == 0 {
            return Ok(out);
        }
        line_no += 1;
        if buf.last() != Some(&b'\n') {
            tracing::warn!(
                path = %path.display(),
                line = line_no,
                bytes = buf.len(),
                "ignoring a truncated last line of the table log (a crash mid-write); that transaction was never acknowledged"
            );
            out.truncated = true;
            return Ok(out);
        }
        let line = buf.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let ops: Vec<Logged> = serde_json::from_slice(line).map_err(|source| OpenError::CorruptLine {
            path: path.to_path_buf(),
            line: line_no,
            source,
        })?;
        out.ops += ops.len();
        for op in ops {
            state.apply(op);
        }
    }
}

/// Rewrites the log as the current items: a temporary file, fsynced, renamed over it.
fn compact(dir: &Path, state: &State) -> Result<(), OpenError> {
    let tmp = dir.join(COMPACT_FILE);
    let path = dir.join(LOG_FILE);
    let file = private_fs::options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(OpenError::io("create", &tmp))?;
    // A leftover temporary file keeps the mode it was created with.
    private_fs::restrict(&tmp).map_err(OpenError::io("restrict", &tmp))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    for item in state.items.values() {
        serde_json::to_writer(&mut w, &[LoggedRef::Put(item)])
            .map_err(io::Error::other)
            .and_then(|()| w.write_all(b"\n"))
            .map_err(OpenError::io("write", &tmp))?;
    }
    let file = w.into_inner().map_err(|e| OpenError::io("write", &tmp)(e.into_error()))?;
    file.sync_all().map_err(OpenError::io("sync", &tmp))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(OpenError::io("rename", &tmp))?;
    // Make the rename itself durable; not every platform can sync a directory.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The single item table on one machine (see the module docs).
pub struct EmbeddedTable {
    state: RwLock<State>,
    clock: Arc<dyn Clock>,
    dir: Option<PathBuf>,
    /// The data directory's lock, held while the table lives (set by `Embedded::open`).
    _dir_lock: Option<Arc<DirLock>>,
}

impl Default for EmbeddedTable {
    fn default() -> Self {
        Self::in_memory()
    }
}

impl EmbeddedTable {
    /// An empty table kept in memory only.
    pub fn in_memory() -> Self {
        Self { state: RwLock::new(State::default()), clock: Arc::new(SystemClock), dir: None, _dir_lock: None }
    }

    /// The table persisted in `dir` (created with mode 0700 if missing): restricts
    /// `dir/table.log` to its owner, replays it, drops items expired by the wall clock,
    /// compacts the log if it holds anything else, and appends every later transaction
    /// to it. Takes no lock on `dir` (`Embedded::open` does).
    pub fn open(dir: &Path) -> Result<Self, OpenError> {
        private_fs::prepare_dir(dir).map_err(OpenError::io("create", dir))?;
        let path = dir.join(LOG_FILE);
        let mut state = State::default();
        let found = if path.exists() {
            private_fs::restrict(&path).map_err(OpenError::io("restrict", &path))?;
            Some(replay(&path, &mut state)?)
        } else {
            None
        };
        let now = SystemClock.now().unix();
        let expired: Vec<Key> = state.items.iter().filter(|(_, i)| !live(i, now)).map(|(k, _)| k.clone()).collect();
        for key in &expired {
            state.delete(key);
        }
        if let Some(r) = &found
            && (r.truncated || r.ops != state.items.len())
        {
            compact(dir, &state)?;
            tracing::info!(path = %path.display(), items = state.items.len(), replayed = r.ops, "compacted the table log");
        }
        let file = private_fs::options().create(true).append(true).open(&path).map_err(OpenError::io("open", &path))?;
        let len = file.metadata().map_err(OpenError::io("read", &path))?.len();
        state.log = Some(LogFile { path, file, len, broken: None });
        Ok(Self {
            state: RwLock::new(state),
            clock: Arc::new(SystemClock),
            dir: Some(dir.to_path_buf()),
            _dir_lock: None,
        })
    }

    /// The same table holding the data directory's lock for as long as it lives.
    pub(crate) fn with_dir_lock(mut self, lock: Arc<DirLock>) -> Self {
        self._dir_lock = Some(lock);
        self
    }

    /// Every live item whose sort key is `sk`, in any partition, in key order. A full
    /// scan of the table, for the local runner only (e.g. every tenant's running jobs at
    /// start); not part of the [`Table`] port, which DynamoDB could only answer with a
    /// `Scan`.
    pub fn items_with_sort_key(&self, sk: &str) -> Vec<Item> {
        let now = self.now();
        self.read()
            .items
            .iter()
            .filter(|((_, isk), item)| isk == sk && live(item, now))
            .map(|(_, i)| i.clone())
            .collect()
    }

    /// The same table reading TTL expiry from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The data directory, when persisted.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The number of live (unexpired) items.
    pub fn len(&self) -> usize {
        let now = self.now();
        self.read().items.values().filter(|i| live(i, now)).count()
    }

    /// Whether the table holds no live item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every expired item now; returns how many.
    pub fn purge_expired(&self) -> usize {
        let now = self.now();
        let mut state = self.write();
        let expired: Vec<Key> = state.items.iter().filter(|(_, i)| !live(i, now)).map(|(k, _)| k.clone()).collect();
        for key in &expired {
            state.delete(key);
        }
        expired.len()
    }

    fn now(&self) -> i64 {
        self.clock.now().unix()
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes the given items if they are (still) expired. In-memory only: the log
    /// keeps them until the next compaction, and reads never show them.
    fn purge(&self, keys: Vec<Key>, now: i64) {
        if keys.is_empty() {
            return;
        }
        let mut state = self.write();
        for key in keys {
            if state.items.get(&key).is_some_and(|i| !live(i, now)) {
                state.delete(&key);
            }
        }
    }
}

#[async_trait]
impl Table for EmbeddedTable {
    fn token_after(&self, item: &Item, index: bool) -> Result<String, StoreError> {
        if index {
            let gsk = item.gsi1.as_ref().map(|g| g.sk.as_str()).unwrap_or_default();
            encode_token(&[gsk, &item.pk, &item.sk])
        } else {
            encode_token(&[&item.sk])
        }
    }
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let now = self.now();
        let key = (pk.to_string(), sk.to_string());
        {
            let state = self.read();
            match state.items.get(&key) {
                Some(item) if live(item, now) => return Ok(Some(item.clone())),
                Some(_) => {}
                None => return Ok(None),
            }
        }
        self.purge(vec![key], now);
        Ok(None)
    }

    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Item>, StoreError> {
        let now = self.now();
        let mut out = Vec::with_capacity(keys.len());
        let mut expired = Vec::new();
        {
            let state = self.read();
            let mut seen = HashSet::with_capacity(keys.len());
            for key in keys {
                if !seen.insert(key) {
                    continue;
                }
                match state.items.get(key) {
                    Some(item) if live(item, now) => out.push(item.clone()),
                    Some(_) => expired.push(key.clone()),
                    None => {}
                }
            }
        }
        self.purge(expired, now);
        Ok(out)
    }

    async fn query(&self, pk: &str, q: &Query) -> Result<QueryPage, StoreError> {
        let now = self.now();
        let limit = q.limit.max(1);
        let prefix = q.sk_prefix.as_deref().unwrap_or("");
        let start = (pk.to_string(), prefix.to_string());
        let end = match prefix_end(prefix) {
            Some(e) => (pk.to_string(), e),
            None => (format!("{pk}\0"), String::new()),
        };
        let after = match q.after.as_deref() {
            Some(t) => {
                let mut parts = decode_token(t, 1)?;
                Some((pk.to_string(), parts.remove(0)))
            }
            None => None,
        };
        let mut items = Vec::new();
        let mut expired = Vec::new();
        let mut more = false;
        {
            let state = self.read();
            if let Some(range) = window(start, end, after, q.descending) {
                for (key, item) in directed(state.items.range(range), q.descending) {
                    if !live(item, now) {
                        expired.push(key.clone());
                    } else if items.len() == limit {
                        more = true;
                        break;
                    } else {
                        items.push(item.clone());
                    }
                }
            }
        }
        self.purge(expired, now);
        let next = match items.last() {
            Some(last) if more => Some(self.token_after(last, false)?),
            _ => None,
        };
        Ok(QueryPage { items, next })
    }

    async fn query_index(&self, pk: &str, q: &Query) -> Result<QueryPage, StoreError> {
        let now = self.now();
        let limit = q.limit.max(1);
        let prefix = q.sk_prefix.as_deref().unwrap_or("");
        let start = (pk.to_string(), prefix.to_string(), String::new(), String::new());
        let end = match prefix_end(prefix) {
            Some(e) => (pk.to_string(), e, String::new(), String::new()),
            None => (format!("{pk}\0"), String::new(), String::new(), String::new()),
        };
        let after = match q.after.as_deref() {
            Some(t) => {
                let mut parts = decode_token(t, 3)?.into_iter();
                let mut next = || parts.next().unwrap_or_default();
                Some((pk.to_string(), next(), next(), next()))
            }
            None => None,
        };
        let mut items = Vec::new();
        let mut expired = Vec::new();
        let mut more = false;
        {
            let state = self.read();
            if let Some(range) = window(start, end, after, q.descending) {
                for (_, _, ipk, isk) in directed(state.index.range(range), q.descending) {
                    let key = (ipk.clone(), isk.clone());
                    let Some(item) = state.items.get(&key) else {
                        tracing::error!(pk = %ipk, sk = %isk, "index entry without an item");
                        continue;
                    };
                    if !live(item, now) {
                        expired.push(key);
                    } else if items.len() == limit {
                        more = true;
                        break;
                    } else {
                        items.push(item.clone());
                    }
                }
            }
        }
        self.purge(expired, now);
        let next = match items.last() {
            Some(last) if more => Some(self.token_after(last, true)?),
            _ => None,
        };
        Ok(QueryPage { items, next })
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        validate(&writes)?;
        let now = self.now();
        let mut guard = self.write();
        let state = &mut *guard;
        for w in &writes {
            if let Write::Put { item, condition } = w {
                let current = state.items.get(&(item.pk.clone(), item.sk.clone())).filter(|i| live(i, now));
                check(current, &item.pk, &item.sk, *condition)?;
            }
        }
        if let Some(log) = state.log.as_mut() {
            let ops: Vec<LoggedRef<'_>> = writes
                .iter()
                .map(|w| match w {
                    Write::Put { item, .. } => LoggedRef::Put(item),
                    Write::Delete { pk, sk } => LoggedRef::Delete { pk, sk },
                })
                .collect();
            let mut line = serde_json::to_vec(&ops)
                .map_err(|e| StoreError::Corrupt(format!("cannot encode a transaction for the log: {e}")))?;
            line.push(b'\n');
            log.append(&line)?;
        }
        for w in writes {
            match w {
                Write::Put { item, .. } => state.put(item),
                Write::Delete { pk, sk } => state.delete(&(pk, sk)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};
    use tandem_domain::Timestamp;
    use tandem_domain::ports::IndexKey;

    struct ManualClock(AtomicI64);

    impl Clock for ManualClock {
        fn now(&self) -> Timestamp {
            Timestamp::from_unix(self.0.load(Ordering::SeqCst)).unwrap()
        }
    }

    fn item(pk: &str, sk: &str, version: u64) -> Item {
        Item {
            pk: pk.into(),
            sk: sk.into(),
            version,
            gsi1: None,
            expires_at: None,
            body: serde_json::json!({ "v": version }),
        }
    }

    fn put(item: Item) -> Write {
        Write::Put { item, condition: Condition::None }
    }

    fn q(limit: usize) -> Query {
        Query { limit, ..Query::default() }
    }

    #[tokio::test]
    async fn the_stored_item_keeps_the_version_the_put_gave_it() {
        let t = EmbeddedTable::in_memory();
        t.transact(vec![put(item("a", "A", 7))]).await.unwrap();
        assert_eq!(t.get("a", "A").await.unwrap().unwrap().version, 7);
    }

    #[tokio::test]
    async fn a_put_with_not_exists_on_an_existing_item_conflicts_and_names_the_key() {
        let t = EmbeddedTable::in_memory();
        let w = || Write::Put { item: item("pk-1", "A", 1), condition: Condition::NotExists };
        t.transact(vec![w()]).await.unwrap();
        let err = t.transact(vec![w()]).await.unwrap_err();
        assert!(matches!(&err, StoreError::Conflict(m) if m.contains("pk-1")), "{err}");
    }

    #[tokio::test]
    async fn invalid_transactions_are_refused_as_not_retryable() {
        let t = EmbeddedTable::in_memory();
        let too_many: Vec<Write> = (0..101).map(|i| put(item(&format!("p{i}"), "A", 1))).collect();
        let dup = vec![put(item("p", "A", 1)), Write::Delete { pk: "p".into(), sk: "A".into() }];
        let empty_key = vec![put(item("", "A", 1))];
        let huge = {
            let mut i = item("big", "A", 1);
            i.body = serde_json::json!("x".repeat(MAX_ITEM_BYTES));
            vec![put(i)]
        };
        for writes in [vec![], too_many, dup, empty_key, huge] {
            let err = t.transact(writes).await.unwrap_err();
            assert!(!err.is_retryable() && err.to_string().contains("invalid transaction"), "{err}");
        }
        assert!(t.is_empty());
    }

    #[tokio::test]
    async fn a_query_limit_of_zero_reads_one_item() {
        let t = EmbeddedTable::in_memory();
        t.transact(vec![put(item("p", "a", 1)), put(item("p", "b", 1))]).await.unwrap();
        let page = t.query("p", &q(0)).await.unwrap();
        assert_eq!(page.items.len(), 1);
        assert!(page.next.is_some());
    }

    #[tokio::test]
    async fn queries_stay_inside_their_partition() {
        let t = EmbeddedTable::in_memory();
        let writes = ["p", "p\0", "p0", "pp", "o"].iter().map(|pk| put(item(pk, "s", 1))).collect();
        t.transact(writes).await.unwrap();
        for desc in [false, true] {
            let page = t.query("p", &Query { limit: 10, descending: desc, ..Query::default() }).await.unwrap();
            assert_eq!(page.items.iter().map(|i| i.pk.as_str()).collect::<Vec<_>>(), vec!["p"]);
        }
    }

    #[tokio::test]
    async fn a_prefix_query_finds_keys_with_unusual_characters_in_both_directions() {
        let t = EmbeddedTable::in_memory();
        let sks = ["a", "a\u{10FFFF}", "a\u{10FFFF}z", "a\u{D7FF}", "b", "\u{10FFFF}", "\u{10FFFF}\u{10FFFF}"];
        t.transact(sks.iter().map(|sk| put(item("p", sk, 1))).collect()).await.unwrap();
        for (prefix, want) in [
            ("a", vec!["a", "a\u{D7FF}", "a\u{10FFFF}", "a\u{10FFFF}z"]),
            ("a\u{10FFFF}", vec!["a\u{10FFFF}", "a\u{10FFFF}z"]),
            ("\u{10FFFF}", vec!["\u{10FFFF}", "\u{10FFFF}\u{10FFFF}"]),
        ] {
            for desc in [false, true] {
                let query = Query { sk_prefix: Some(prefix.into()), limit: 10, descending: desc, ..Query::default() };
                let got: Vec<String> = t.query("p", &query).await.unwrap().items.into_iter().map(|i| i.sk).collect();
                let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
                if desc {
                    want.reverse();
                }
                assert_eq!(got, want, "prefix {prefix:?} descending {desc}");
            }
        }
    }

    #[tokio::test]
    async fn a_token_before_the_prefix_range_starts_at_the_prefix() {
        let t = EmbeddedTable::in_memory();
        t.transact(["a", "b1", "b2", "c"].iter().map(|sk| put(item("p", sk, 1))).collect()).await.unwrap();
        let after = Some(encode_token(&["a"]).unwrap());
        let query = Query { sk_prefix: Some("b".into()), after: after.clone(), limit: 10, ..Query::default() };
        let got: Vec<String> = t.query("p", &query).await.unwrap().items.into_iter().map(|i| i.sk).collect();
        assert_eq!(got, ["b1", "b2"]);
        let query = Query { sk_prefix: Some("b".into()), after, limit: 10, descending: true };
        assert!(t.query("p", &query).await.unwrap().items.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_eight_truly_concurrent_import_claims_exactly_one_wins() {
        let store = tandem_domain::table::RecordStore::new(Arc::new(EmbeddedTable::in_memory()));
        let t = tandem_domain::TenantId::parse("racing").unwrap();
        let claims: Vec<_> = (0..8)
            .map(|n| {
                let store = store.clone();
                let now = tandem_domain::Timestamp::from_unix(1_700_000_000).unwrap();
                let job = tandem_domain::job::Job {
                    tenant: t.clone(),
                    id: tandem_domain::JobId::from_raw(format!("j{n}")),
                    system: tandem_domain::System::Halo,
                    stages: vec![tandem_domain::Stage::Users],
                    current: 0,
                    cursor: Default::default(),
                    status: tandem_domain::job::JobStatus::Running,
                    progress: Default::default(),
                    created_at: now,
                    updated_at: now,
                    attempt: 0,
                    version: 0,
                    dry_run: false,
                };
                tokio::spawn(async move { store.claim_job(&job).await })
            })
            .collect();
        let mut won = 0;
        for claim in claims {
            match claim.await.unwrap() {
                Ok(Ok(_)) => won += 1,
                Ok(Err(_)) | Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("a claim failed unexpectedly: {e}"),
            }
        }
        assert_eq!(won, 1);
    }

    #[tokio::test]
    async fn a_malformed_paging_token_is_the_callers_error() {
        let t = EmbeddedTable::in_memory();
        let query = Query { after: Some("not a token!".into()), limit: 1, ..Query::default() };
        assert!(matches!(t.query("p", &query).await, Err(StoreError::InvalidToken(_))));
        assert!(matches!(t.query_index("p", &query).await, Err(StoreError::InvalidToken(_))));
    }

    #[tokio::test]
    async fn index_entries_follow_their_item_when_it_moves_or_goes() {
        let t = EmbeddedTable::in_memory();
        let mut i = item("p", "A", 1);
        i.gsi1 = Some(IndexKey { pk: "g1".into(), sk: "x".into() });
        t.transact(vec![put(i.clone())]).await.unwrap();
        i.gsi1 = Some(IndexKey { pk: "g2".into(), sk: "x".into() });
        t.transact(vec![put(i)]).await.unwrap();
        assert!(t.query_index("g1", &q(10)).await.unwrap().items.is_empty());
        assert_eq!(t.query_index("g2", &q(10)).await.unwrap().items.len(), 1);
        t.transact(vec![Write::Delete { pk: "p".into(), sk: "A".into() }]).await.unwrap();
        assert!(t.query_index("g2", &q(10)).await.unwrap().items.is_empty());
        assert!(t.read().index.is_empty());
    }

    #[tokio::test]
    async fn an_item_disappears_once_its_expiry_passes_and_is_purged() {
        let clock = Arc::new(ManualClock(AtomicI64::new(1_000)));
        let t = EmbeddedTable::in_memory().with_clock(clock.clone());
        let mut i = item("p", "A", 1);
        i.expires_at = Some(1_010);
        i.gsi1 = Some(IndexKey { pk: "g".into(), sk: "x".into() });
        t.transact(vec![put(i)]).await.unwrap();
        clock.0.store(1_010, Ordering::SeqCst);
        assert!(t.get("p", "A").await.unwrap().is_some());
        clock.0.store(1_011, Ordering::SeqCst);
        assert!(t.get("p", "A").await.unwrap().is_none());
        assert!(t.query("p", &q(10)).await.unwrap().items.is_empty());
        assert!(t.query_index("g", &q(10)).await.unwrap().items.is_empty());
        assert!(t.get_many(&[("p".into(), "A".into())]).await.unwrap().is_empty());
        assert!(t.read().items.is_empty() && t.read().index.is_empty());
    }

    #[tokio::test]
    async fn an_expired_item_counts_as_absent_for_conditions() {
        let clock = Arc::new(ManualClock(AtomicI64::new(1_000)));
        let t = EmbeddedTable::in_memory().with_clock(clock.clone());
        let mut i = item("p", "A", 1);
        i.expires_at = Some(1_000);
        t.transact(vec![put(i.clone())]).await.unwrap();
        clock.0.store(2_000, Ordering::SeqCst);
        i.expires_at = None;
        t.transact(vec![Write::Put { item: i, condition: Condition::NotExists }]).await.unwrap();
        assert!(t.get("p", "A").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_reopened_table_has_what_was_written_and_nothing_that_was_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let t = EmbeddedTable::open(dir.path()).unwrap();
            let mut a = item("a", "A", 1);
            a.gsi1 = Some(IndexKey { pk: "g".into(), sk: "1".into() });
            t.transact(vec![put(a), put(item("b", "B", 1)), put(item("c", "C", 1))]).await.unwrap();
            t.transact(vec![Write::Delete { pk: "c".into(), sk: "C".into() }]).await.unwrap();
            t.transact(vec![Write::Put { item: item("b", "B", 2), condition: Condition::VersionIs(1) }]).await.unwrap();
            let refused = vec![
                put(item("d", "D", 1)),
                Write::Put { item: item("b", "B", 9), condition: Condition::VersionIs(1) },
            ];
            assert!(t.transact(refused).await.is_err());
        }
        let t = EmbeddedTable::open(dir.path()).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.get("b", "B").await.unwrap().unwrap().version, 2);
        assert!(t.get("c", "C").await.unwrap().is_none());
        assert!(t.get("d", "D").await.unwrap().is_none());
        assert_eq!(t.query_index("g", &q(10)).await.unwrap().items.len(), 1);
        // Reopening compacted the log to one line per item.
        let log = fs::read_to_string(dir.path().join(LOG_FILE)).unwrap();
        assert_eq!(log.lines().count(), 2);
        assert!(!dir.path().join(COMPACT_FILE).exists());
    }

    #[tokio::test]
    async fn a_truncated_last_line_is_ignored_and_the_log_stays_appendable() {
        let dir = tempfile::tempdir().unwrap();
        {
            let t = EmbeddedTable::open(dir.path()).unwrap();
            t.transact(vec![put(item("a", "A", 1))]).await.unwrap();
            t.transact(vec![put(item("b", "B", 1))]).await.unwrap();
        }
        let path = dir.path().join(LOG_FILE);
        let log = fs::read(&path).unwrap();
        fs::write(&path, &log[..log.len() - 10]).unwrap();
        {
            let t = EmbeddedTable::open(dir.path()).unwrap();
            assert!(t.get("a", "A").await.unwrap().is_some());
            assert!(t.get("b", "B").await.unwrap().is_none());
            t.transact(vec![put(item("c", "C", 1))]).await.unwrap();
        }
        let t = EmbeddedTable::open(dir.path()).unwrap();
        assert_eq!(t.len(), 2);
        assert!(t.get("c", "C").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_corrupt_line_in_the_middle_is_an_error_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        {
            let t = EmbeddedTable::open(dir.path()).unwrap();
            for pk in ["a", "b", "c"] {
                t.transact(vec![put(item(pk, "A", 1))]).await.unwrap();
            }
        }
        let path = dir.path().join(LOG_FILE);
        let log = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        fs::write(&path, format!("{}\n{{\"oops\n{}\n", lines[0], lines[2])).unwrap();
        let err = EmbeddedTable::open(dir.path()).err().unwrap();
        assert!(matches!(err, OpenError::CorruptLine { line: 2, .. }), "{err}");
        assert!(err.to_string().contains("line 2"), "{err}");
        // The log is left as it was, for a human to look at.
        assert!(fs::read_to_string(&path).unwrap().contains("oops"));
    }

    #[tokio::test]
    async fn expired_items_are_dropped_when_the_log_is_compacted() {
        let dir = tempfile::tempdir().unwrap();
        {
            let t = EmbeddedTable::open(dir.path()).unwrap();
            let mut old = item("old", "E", 1);
            old.expires_at = Some(1);
            t.transact(vec![put(old), put(item("new", "E", 1))]).await.unwrap();
        }
        let t = EmbeddedTable::open(dir.path()).unwrap();
        assert_eq!(t.read().items.len(), 1);
        assert_eq!(fs::read_to_string(dir.path().join(LOG_FILE)).unwrap().lines().count(), 1);
    }

    #[tokio::test]
    async fn items_with_sort_key_finds_the_live_items_with_that_exact_sort_key_in_every_partition() {
        let clock = Arc::new(ManualClock(AtomicI64::new(1_000)));
        let t = EmbeddedTable::in_memory().with_clock(clock.clone());
        let mut expired = item("t3", "JOB#1", 1);
        expired.expires_at = Some(999);
        let writes = vec![
            put(item("t1", "JOB#1", 1)),
            put(item("t2", "JOB#1", 1)),
            put(item("t1", "JOB#10", 1)),
            put(item("t1", "JOB", 1)),
            put(item("JOB#1", "x", 1)),
            put(expired),
        ];
        t.transact(writes).await.unwrap();
        let found: Vec<(String, String)> = t.items_with_sort_key("JOB#1").into_iter().map(|i| (i.pk, i.sk)).collect();
        assert_eq!(found, [("t1".to_string(), "JOB#1".to_string()), ("t2".to_string(), "JOB#1".to_string())]);
        assert!(t.items_with_sort_key("nothing").is_empty());
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_table_log_is_created_and_compacted_readable_by_its_owner_only_in_an_owner_only_directory() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        {
            let t = EmbeddedTable::open(&dir).unwrap();
            t.transact(vec![put(item("a", "A", 1))]).await.unwrap();
            t.transact(vec![put(item("a", "A", 2))]).await.unwrap();
        }
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(LOG_FILE)), 0o600);
        // An existing log with looser permissions, which the next open compacts.
        fs::set_permissions(dir.join(LOG_FILE), fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let t = EmbeddedTable::open(&dir).unwrap();
        assert_eq!(fs::read_to_string(dir.join(LOG_FILE)).unwrap().lines().count(), 1, "the log was compacted");
        assert_eq!(mode(&dir.join(LOG_FILE)), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(t.len(), 1);
    }

    #[tokio::test]
    async fn concurrent_conditional_writes_let_exactly_one_win() {
        let t = Arc::new(EmbeddedTable::in_memory());
        let mut tasks = Vec::new();
        for n in 0..16u64 {
            let t = t.clone();
            tasks.push(tokio::spawn(async move {
                let w = Write::Put { item: item("race", "A", n + 1), condition: Condition::NotExists };
                t.transact(vec![w]).await.is_ok()
            }));
        }
        let mut wins = 0;
        for task in tasks {
            wins += usize::from(task.await.unwrap());
        }
        assert_eq!(wins, 1);
    }
}
