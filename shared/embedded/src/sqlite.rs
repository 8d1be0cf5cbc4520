//! [`SqliteTable`]: the single item table in one SQLite database (rusqlite, the bundled
//! library), behaving like DynamoDB where the domain can tell (see [`tandem_domain::table_rules`]):
//! conditional all-or-nothing transactions, key-ordered queries with opaque paging tokens,
//! the secondary index, TTL, batch reads.
//!
//! One table `items (pk, sk, version, gsi_pk, gsi_sk, expires_at, body)` keyed by
//! `(pk, sk)` (`WITHOUT ROWID`, so a partition's items sit together in key order), a
//! partial index on `(gsi_pk, gsi_sk, pk, sk)` for the items that have an index key, and one
//! on `expires_at`. Text compares byte by byte (SQLite's `BINARY`), the order of Rust's
//! strings, so pages and tokens are those of the other tables. Expired items are invisible
//! at once and deleted at open and at most once a minute after a write.
//!
//! Durability: the database is in WAL mode with `synchronous=NORMAL`: a committed
//! transaction survives the process being killed; an operating-system crash or power cut
//! may lose the last commits but never corrupts the file (SQLite's guarantee for WAL at
//! NORMAL). Readers such as the `sqlite3` shell (`sqlite3 -readonly tandem.db`) can read
//! while Tandem writes.
//!
//! A `meta (key, value)` table keeps what the database knows about itself: the version of
//! the records' layout ([`RECORDS_SCHEMA`]; a database made by this version starts at it,
//! one imported from an old `table.log` at 1 until the runner's migration has run) and
//! whether an old log was imported.
//!
//! The connection sits behind one mutex, used without awaiting inside: every call is a
//! short synchronous SQLite call. The durable queue ([`crate::queue`]) writes its own
//! tables through the same connection.
//!
//! A scratch database ([`SqliteTable::scratch`], the runner without a data directory) is
//! a file in a temporary directory removed when the table is dropped, with
//! `synchronous=OFF`: nothing in it outlives the process anyway, and a file keeps memory
//! flat however many records a demo imports (SQLite caches a few MB of pages).

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tandem_domain::ports::{Clock, Condition, IndexKey, Item, Query, QueryPage, StoreError, SystemClock, Table, Write};

use crate::error::OpenError;
use crate::{DirLock, private_fs};
use tandem_domain::table_rules::{check, decode_token, encode_token, live, prefix_end, validate};

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "tandem.db";

/// The version of the records' layout a new database starts at. Older data (imported from
/// a `table.log`) is at 1 until the local runner's migration brings it here.
pub const RECORDS_SCHEMA: u32 = 2;
/// The `meta` key of [`RECORDS_SCHEMA`].
const SCHEMA_KEY: &str = "records_schema";

/// The connection to one database, shared by the table and the durable queue.
pub(crate) type Shared = Arc<Mutex<Connection>>;

/// Locks a shared connection (a panic while holding it leaves nothing half done: every
/// multi-statement change is a transaction).
pub(crate) fn lock(conn: &Shared) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|e| e.into_inner())
}

const COLUMNS: &str = "pk, sk, version, gsi_pk, gsi_sk, expires_at, body";

/// The item table in SQLite (see the module docs).
pub struct SqliteTable {
    conn: Shared,
    clock: Arc<dyn Clock>,
    /// When expired items were last deleted (epoch seconds).
    purged_at: AtomicI64,
    /// The temporary directory of a scratch database, removed when the table is dropped.
    _scratch: Option<tempfile::TempDir>,
    /// The data directory's lock, held while the table lives (set by `Embedded::open`).
    _dir_lock: Option<Arc<DirLock>>,
}

pub(crate) fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("sqlite: {e}"))
}

fn corrupt(pk: &str, sk: &str, why: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("item {pk} / {sk}: {why}"))
}

/// An item from a row of [`COLUMNS`], with its body still as text.
fn item_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Item, String)> {
    let (pk, sk): (String, String) = (row.get(0)?, row.get(1)?);
    let version: i64 = row.get(2)?;
    let gsi = match (row.get::<_, Option<String>>(3)?, row.get::<_, Option<String>>(4)?) {
        (Some(pk), Some(sk)) => Some(IndexKey { pk, sk }),
        _ => None,
    };
    let body: String = row.get(6)?;
    let item = Item {
        pk,
        sk,
        version: u64::try_from(version).unwrap_or_default(),
        gsi1: gsi,
        expires_at: row.get(5)?,
        body: serde_json::Value::Null,
    };
    Ok((item, body))
}

/// Parses the body read beside an item.
fn parsed((mut item, body): (Item, String)) -> Result<Item, StoreError> {
    item.body = serde_json::from_str(&body).map_err(|e| corrupt(&item.pk, &item.sk, e))?;
    Ok(item)
}

impl SqliteTable {
    /// A database in memory (tests, and a runner without a data directory).
    pub fn in_memory() -> Result<Self, OpenError> {
        let conn =
            Connection::open_in_memory().map_err(|e| OpenError::Sqlite { path: ":memory:".into(), source: e })?;
        Self::start(conn, Path::new(":memory:"), "NORMAL")
    }

    /// A scratch database in a new temporary directory (see the module docs).
    pub fn scratch() -> Result<Self, OpenError> {
        let dir = tempfile::Builder::new()
            .prefix("tandem-scratch-")
            .tempdir()
            .map_err(OpenError::io("create", "a temporary directory"))?;
        let mut table = Self::open_with(dir.path(), "OFF")?;
        table._scratch = Some(dir);
        Ok(table)
    }

    /// The database `dir/tandem.db`, created (mode 0600, in a 0700 directory) if missing.
    pub fn open(dir: &Path) -> Result<Self, OpenError> {
        Self::open_with(dir, "NORMAL")
    }

    fn open_with(dir: &Path, synchronous: &str) -> Result<Self, OpenError> {
        private_fs::prepare_dir(dir).map_err(OpenError::io("create", dir))?;
        let path = dir.join(DB_FILE);
        if !path.exists() {
            private_fs::options()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(OpenError::io("create", &path))?;
        }
        private_fs::restrict(&path).map_err(OpenError::io("restrict", &path))?;
        let conn = Connection::open(&path).map_err(|e| OpenError::Sqlite { path: path.clone(), source: e })?;
        Self::start(conn, &path, synchronous)
    }

    fn start(conn: Connection, path: &Path, synchronous: &str) -> Result<Self, OpenError> {
        let failed = |e| OpenError::Sqlite { path: path.to_path_buf(), source: e };
        conn.pragma_update(None, "journal_mode", "WAL").map_err(failed)?;
        conn.pragma_update(None, "synchronous", synchronous).map_err(failed)?;
        // Room for every statement the table and the queue's journal prepare (a query's
        // shape varies with its prefix, token, order and index), so none is re-prepared.
        conn.set_prepared_statement_cache_capacity(64);
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(failed)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS items (
                pk TEXT NOT NULL, sk TEXT NOT NULL, version INTEGER NOT NULL,
                gsi_pk TEXT, gsi_sk TEXT, expires_at INTEGER, body TEXT NOT NULL,
                PRIMARY KEY (pk, sk)
             ) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS items_gsi1 ON items (gsi_pk, gsi_sk, pk, sk) WHERE gsi_pk IS NOT NULL;
             CREATE INDEX IF NOT EXISTS items_expiry ON items (expires_at) WHERE expires_at IS NOT NULL;
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
        )
        .map_err(failed)?;
        // A database without a schema mark is new (this version's layout) unless it holds
        // items already.
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value)
             SELECT ?1, CASE WHEN EXISTS (SELECT 1 FROM items) THEN '1' ELSE ?2 END",
            params![SCHEMA_KEY, RECORDS_SCHEMA.to_string()],
        )
        .map_err(failed)?;
        let table = SqliteTable {
            conn: Arc::new(Mutex::new(conn)),
            clock: Arc::new(SystemClock),
            purged_at: AtomicI64::new(0),
            _scratch: None,
            _dir_lock: None,
        };
        table.purge(table.now()).map_err(|e| OpenError::Io {
            action: "purge expired items of",
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
        Ok(table)
    }

    /// The same table reading time from `clock` (tests of TTL).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The same table holding the data directory's lock while it lives.
    pub(crate) fn with_dir_lock(mut self, lock: Arc<DirLock>) -> Self {
        self._dir_lock = Some(lock);
        self
    }

    /// The connection, for the durable queue's tables in the same database.
    pub(crate) fn shared(&self) -> Shared {
        self.conn.clone()
    }

    fn now(&self) -> i64 {
        self.clock.now().unix()
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        lock(&self.conn)
    }

    /// A value of the `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.lock()
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| r.get(0))
            .optional()
            .map_err(unavailable)
    }

    /// Sets a value of the `meta` table.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.lock()
            .execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", params![key, value])
            .map(drop)
            .map_err(unavailable)
    }

    /// The version of the records' layout (see [`RECORDS_SCHEMA`]).
    pub fn records_schema(&self) -> Result<u32, StoreError> {
        Ok(self.meta(SCHEMA_KEY)?.and_then(|v| v.parse().ok()).unwrap_or(1))
    }

    /// Marks the records as being at layout `version`.
    pub fn set_records_schema(&self, version: u32) -> Result<(), StoreError> {
        self.set_meta(SCHEMA_KEY, &version.to_string())
    }

    /// Up to `limit` live items whose sort key is `sk`, in partition-key order after
    /// `after` (a full scan, paged: for the one-off migration of old data, not the port).
    pub fn items_with_sort_key(&self, sk: &str, after: Option<&str>, limit: usize) -> Result<Vec<Item>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM items WHERE pk > ?1 AND sk = ?2 AND (expires_at IS NULL OR expires_at >= ?3)
                 ORDER BY pk LIMIT ?4"
            ))
            .map_err(unavailable)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<(Item, String)> = stmt
            .query_map(params![after.unwrap_or(""), sk, self.now(), limit], item_of)
            .map_err(unavailable)?
            .collect::<Result<_, _>>()
            .map_err(unavailable)?;
        rows.into_iter().map(parsed).collect()
    }

    /// How many items the table holds, expired ones not yet deleted included.
    pub fn len(&self) -> Result<usize, StoreError> {
        let n: i64 = self.lock().query_row("SELECT COUNT(*) FROM items", [], |r| r.get(0)).map_err(unavailable)?;
        Ok(usize::try_from(n).unwrap_or_default())
    }

    /// Whether the table holds no item.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// Runs `apply` on one immediate transaction, committed only if it succeeds (the
    /// import of an old log, `path`).
    pub(crate) fn in_transaction<T>(
        &self,
        path: &Path,
        apply: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, OpenError>,
    ) -> Result<T, OpenError> {
        let failed = |e| OpenError::Sqlite { path: path.to_path_buf(), source: e };
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(failed)?;
        let out = apply(&tx)?;
        tx.commit().map_err(failed)?;
        Ok(out)
    }

    /// Deletes the items expired by `now`.
    fn purge(&self, now: i64) -> Result<usize, StoreError> {
        self.purged_at.store(now, Ordering::Relaxed);
        self.lock()
            .execute("DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at < ?1", params![now])
            .map_err(unavailable)
    }

    /// A page of `pk`'s items (`index`: of the index partition `pk`).
    fn range(&self, index: bool, pk: &str, q: &Query) -> Result<QueryPage, StoreError> {
        let now = self.now();
        let limit = q.limit.max(1);
        let (part, key) = if index { ("gsi_pk", "gsi_sk") } else { ("pk", "sk") };
        let order = if index { "gsi_sk, pk, sk" } else { "sk" };
        let mut sql =
            format!("SELECT {COLUMNS} FROM items WHERE {part} = ?1 AND (expires_at IS NULL OR expires_at >= ?2)");
        // Values bound after the first two, as ?3, ?4, ...
        let mut args: Vec<String> = Vec::new();
        let mut bind = |value: String| {
            args.push(value);
            format!("?{}", args.len() + 2)
        };
        if let Some(prefix) = q.sk_prefix.as_deref().filter(|p| !p.is_empty()) {
            sql.push_str(&format!(" AND {key} >= {}", bind(prefix.to_string())));
            if let Some(end) = prefix_end(prefix) {
                sql.push_str(&format!(" AND {key} < {}", bind(end)));
            }
        }
        let cmp = if q.descending { "<" } else { ">" };
        if let Some(token) = q.after.as_deref() {
            if index {
                let mut parts = decode_token(token, 3)?.into_iter();
                let mut next = || parts.next().unwrap_or_default();
                let (gsk, ipk, isk) = (bind(next()), bind(next()), bind(next()));
                sql.push_str(&format!(" AND (gsi_sk, pk, sk) {cmp} ({gsk}, {ipk}, {isk})"));
            } else {
                let after = bind(decode_token(token, 1)?.remove(0));
                sql.push_str(&format!(" AND sk {cmp} {after}"));
            }
        }
        let direction = if q.descending { "DESC" } else { "ASC" };
        let ordered: Vec<String> = order.split(", ").map(|c| format!("{c} {direction}")).collect();
        sql.push_str(&format!(" ORDER BY {} LIMIT {}", ordered.join(", "), limit + 1));
        let rows: Vec<(Item, String)> = {
            let conn = self.lock();
            let mut stmt = conn.prepare_cached(&sql).map_err(unavailable)?;
            let mut values: Vec<&dyn rusqlite::ToSql> = vec![&pk, &now];
            values.extend(args.iter().map(|a| a as &dyn rusqlite::ToSql));
            stmt.query_map(values.as_slice(), item_of)
                .map_err(unavailable)?
                .collect::<Result<_, _>>()
                .map_err(unavailable)?
        };
        let mut items = rows.into_iter().map(parsed).collect::<Result<Vec<_>, _>>()?;
        let more = items.len() > limit;
        items.truncate(limit);
        let next = match items.last() {
            Some(last) if more => Some(self.token_after(last, index)?),
            _ => None,
        };
        Ok(QueryPage { items, next })
    }
}

/// The live item at `(pk, sk)` through `conn`.
fn read(conn: &Connection, pk: &str, sk: &str, now: i64) -> Result<Option<Item>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM items WHERE pk = ?1 AND sk = ?2 AND (expires_at IS NULL OR expires_at >= ?3)"
        ))
        .map_err(unavailable)?;
    stmt.query_row(params![pk, sk, now], item_of).optional().map_err(unavailable)?.map(parsed).transpose()
}

/// Writes `item` whatever is there.
pub(crate) fn put_row(conn: &Connection, item: &Item) -> Result<(), StoreError> {
    let body = serde_json::to_string(&item.body).map_err(|e| corrupt(&item.pk, &item.sk, e))?;
    let version = i64::try_from(item.version).map_err(|e| corrupt(&item.pk, &item.sk, e))?;
    let mut stmt = conn
        .prepare_cached(&format!("INSERT OR REPLACE INTO items ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"))
        .map_err(unavailable)?;
    stmt.execute(params![
        item.pk,
        item.sk,
        version,
        item.gsi1.as_ref().map(|g| &g.pk),
        item.gsi1.as_ref().map(|g| &g.sk),
        item.expires_at,
        body
    ])
    .map(drop)
    .map_err(unavailable)
}

/// Deletes the item at `(pk, sk)`, if any.
pub(crate) fn delete_row(conn: &Connection, pk: &str, sk: &str) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached("DELETE FROM items WHERE pk = ?1 AND sk = ?2").map_err(unavailable)?;
    stmt.execute(params![pk, sk]).map(drop).map_err(unavailable)
}

#[async_trait]
impl Table for SqliteTable {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        read(&self.lock(), pk, sk, self.now())
    }

    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Item>, StoreError> {
        let now = self.now();
        let conn = self.lock();
        let mut out = Vec::with_capacity(keys.len());
        for (pk, sk) in keys {
            if let Some(item) = read(&conn, pk, sk, now)? {
                out.push(item);
            }
        }
        Ok(out)
    }

    async fn query(&self, pk: &str, q: &Query) -> Result<QueryPage, StoreError> {
        self.range(false, pk, q)
    }

    async fn query_index(&self, pk: &str, q: &Query) -> Result<QueryPage, StoreError> {
        self.range(true, pk, q)
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        validate(&writes)?;
        let now = self.now();
        {
            let mut conn = self.lock();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(unavailable)?;
            for w in &writes {
                if let Write::Put { item, condition } = w
                    && *condition != Condition::None
                {
                    let current = read(&tx, &item.pk, &item.sk, now)?;
                    check(current.as_ref().filter(|i| live(i, now)), &item.pk, &item.sk, *condition)?;
                }
            }
            for w in &writes {
                match w {
                    Write::Put { item, .. } => put_row(&tx, item)?,
                    Write::Delete { pk, sk } => delete_row(&tx, pk, sk)?,
                }
            }
            tx.commit().map_err(unavailable)?;
        }
        if now - self.purged_at.load(Ordering::Relaxed) >= 60 {
            self.purge(now)?;
        }
        Ok(())
    }

    fn token_after(&self, item: &Item, index: bool) -> Result<String, StoreError> {
        if index {
            let gsk = item.gsi1.as_ref().map(|g| g.sk.as_str()).unwrap_or_default();
            encode_token(&[gsk, &item.pk, &item.sk])
        } else {
            encode_token(&[&item.sk])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};
    use tandem_domain::Timestamp;
    use tandem_domain::ports::IndexKey;
    use tandem_domain::table_rules::MAX_ITEM_BYTES;

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
        let t = SqliteTable::in_memory().unwrap();
        t.transact(vec![put(item("a", "A", 7))]).await.unwrap();
        assert_eq!(t.get("a", "A").await.unwrap().unwrap().version, 7);
    }

    #[tokio::test]
    async fn a_put_with_not_exists_on_an_existing_item_conflicts_and_names_the_key() {
        let t = SqliteTable::in_memory().unwrap();
        let w = || Write::Put { item: item("pk-1", "A", 1), condition: Condition::NotExists };
        t.transact(vec![w()]).await.unwrap();
        let err = t.transact(vec![w()]).await.unwrap_err();
        assert!(matches!(&err, StoreError::Conflict(m) if m.contains("pk-1")), "{err}");
    }

    #[tokio::test]
    async fn invalid_transactions_are_refused_as_not_retryable() {
        let t = SqliteTable::in_memory().unwrap();
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
        assert!(t.is_empty().unwrap());
    }

    #[tokio::test]
    async fn a_query_limit_of_zero_reads_one_item() {
        let t = SqliteTable::in_memory().unwrap();
        t.transact(vec![put(item("p", "a", 1)), put(item("p", "b", 1))]).await.unwrap();
        let page = t.query("p", &q(0)).await.unwrap();
        assert_eq!(page.items.len(), 1);
        assert!(page.next.is_some());
    }

    #[tokio::test]
    async fn queries_stay_inside_their_partition() {
        let t = SqliteTable::in_memory().unwrap();
        let writes = ["p", "p\0", "p0", "pp", "o"].iter().map(|pk| put(item(pk, "s", 1))).collect();
        t.transact(writes).await.unwrap();
        for desc in [false, true] {
            let page = t.query("p", &Query { limit: 10, descending: desc, ..Query::default() }).await.unwrap();
            assert_eq!(page.items.iter().map(|i| i.pk.as_str()).collect::<Vec<_>>(), vec!["p"]);
        }
    }

    #[tokio::test]
    async fn a_prefix_query_finds_keys_with_unusual_characters_in_both_directions() {
        let t = SqliteTable::in_memory().unwrap();
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
        let t = SqliteTable::in_memory().unwrap();
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
        let store = tandem_domain::table::RecordStore::new(Arc::new(SqliteTable::in_memory().unwrap()));
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
        let t = SqliteTable::in_memory().unwrap();
        let query = Query { after: Some("not a token!".into()), limit: 1, ..Query::default() };
        assert!(matches!(t.query("p", &query).await, Err(StoreError::InvalidToken(_))));
        assert!(matches!(t.query_index("p", &query).await, Err(StoreError::InvalidToken(_))));
    }

    #[tokio::test]
    async fn index_entries_follow_their_item_when_it_moves_or_goes() {
        let t = SqliteTable::in_memory().unwrap();
        let mut i = item("p", "A", 1);
        i.gsi1 = Some(IndexKey { pk: "g1".into(), sk: "x".into() });
        t.transact(vec![put(i.clone())]).await.unwrap();
        i.gsi1 = Some(IndexKey { pk: "g2".into(), sk: "x".into() });
        t.transact(vec![put(i)]).await.unwrap();
        assert!(t.query_index("g1", &q(10)).await.unwrap().items.is_empty());
        assert_eq!(t.query_index("g2", &q(10)).await.unwrap().items.len(), 1);
        t.transact(vec![Write::Delete { pk: "p".into(), sk: "A".into() }]).await.unwrap();
        assert!(t.query_index("g2", &q(10)).await.unwrap().items.is_empty());
        assert_eq!(t.len().unwrap(), 0);
    }

    #[tokio::test]
    async fn an_item_disappears_once_its_expiry_passes_and_is_purged() {
        let clock = Arc::new(ManualClock(AtomicI64::new(1_000)));
        let t = SqliteTable::in_memory().unwrap().with_clock(clock.clone());
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
        t.purge(t.now()).unwrap();
        assert_eq!(t.len().unwrap(), 0, "deleted by the purge");
    }

    #[tokio::test]
    async fn an_expired_item_counts_as_absent_for_conditions() {
        let clock = Arc::new(ManualClock(AtomicI64::new(1_000)));
        let t = SqliteTable::in_memory().unwrap().with_clock(clock.clone());
        let mut i = item("p", "A", 1);
        i.expires_at = Some(1_000);
        t.transact(vec![put(i.clone())]).await.unwrap();
        clock.0.store(2_000, Ordering::SeqCst);
        i.expires_at = None;
        t.transact(vec![Write::Put { item: i, condition: Condition::NotExists }]).await.unwrap();
        assert!(t.get("p", "A").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn items_with_sort_key_finds_the_live_items_with_that_exact_sort_key_in_every_partition() {
        let clock = Arc::new(ManualClock(AtomicI64::new(1_000)));
        let t = SqliteTable::in_memory().unwrap().with_clock(clock.clone());
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
        let found: Vec<(String, String)> =
            t.items_with_sort_key("JOB#1", None, 10).unwrap().into_iter().map(|i| (i.pk, i.sk)).collect();
        assert_eq!(found, [("t1".to_string(), "JOB#1".to_string()), ("t2".to_string(), "JOB#1".to_string())]);
        let paged = t.items_with_sort_key("JOB#1", Some("t1"), 10).unwrap();
        assert_eq!(paged.iter().map(|i| i.pk.as_str()).collect::<Vec<_>>(), ["t2"], "a page after t1");
        assert!(t.items_with_sort_key("nothing", None, 10).unwrap().is_empty());
    }

    #[tokio::test]
    async fn concurrent_conditional_writes_let_exactly_one_win() {
        let t = Arc::new(SqliteTable::in_memory().unwrap());
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
