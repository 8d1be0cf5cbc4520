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
