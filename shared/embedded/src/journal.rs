//! The durable queue's journal: the [`crate::EmbeddedQueue`] of a data directory writes
//! every change of its messages through to three tables of `tandem.db`, in the same
//! database (and connection) as the item table, and reads them back on open, so queued,
//! delayed and in-flight work survives a restart with its receive count, as do dead letters
//! and the deduplication ids of the last window.
//!
//! - `queue_messages (seq, grp, body, receive_count, visible_at)`: every message not yet
//!   acknowledged, in-flight ones included (after a restart they are visible at once: the
//!   process that had them is gone);
//! - `queue_dead (seq, body, receive_count, reason, dead_at)`: the dead-letter list;
//! - `queue_dedup (id, sent_at)`: deduplication ids, forgotten after the window.
//!
//! Times are wall-clock milliseconds since the epoch (the queue itself counts in monotonic
//! instants, which do not survive a process). Bodies are the messages' wire JSON
//! ([`Work::encode`]); one that no longer decodes is dead-lettered on open with the reason.

use rusqlite::{OptionalExtension as _, params};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

use tandem_domain::work::Work;

use crate::error::OpenError;
use crate::sqlite::{Shared, SqliteTable, lock};

/// A message read back on open.
pub(crate) struct Stored {
    pub seq: u64,
    pub message: Work,
    pub receive_count: u32,
    pub visible_at: Instant,
}

/// A dead letter read back on open.
pub(crate) struct StoredDead {
    pub seq: u64,
    pub message: Work,
    pub receive_count: u32,
    pub reason: String,
}

/// Everything the journal held.
pub(crate) struct Loaded {
    pub messages: Vec<Stored>,
    pub dead: Vec<StoredDead>,
    pub dedup: Vec<(String, Instant)>,
}

/// The journal over a database connection (see the module docs).
pub(crate) struct Journal {
    conn: Shared,
}

fn wall_now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The wall-clock time of a monotonic instant.
pub(crate) fn wall_ms(at: Instant) -> i64 {
    let now = Instant::now();
    if at >= now {
        wall_now_ms().saturating_add(millis(at - now))
    } else {
        wall_now_ms().saturating_sub(millis(now - at))
    }
}

/// The monotonic instant of a wall-clock time (now, if it is past).
fn instant_of(ms: i64) -> Instant {
    let ahead = ms.saturating_sub(wall_now_ms()).max(0);
    Instant::now() + Duration::from_millis(u64::try_from(ahead).unwrap_or_default())
}

fn seq_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or_default()
}

fn sql_seq(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

impl Journal {
    /// The journal of `table`'s database, its tables created if missing, and what it holds.
    pub(crate) fn open(table: &SqliteTable, dedup_window: Duration) -> Result<(Self, Loaded), OpenError> {
        let journal = Journal { conn: table.shared() };
        let failed = |e| OpenError::Sqlite { path: crate::sqlite::DB_FILE.into(), source: e };
        let conn = lock(&journal.conn);
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS queue_messages (
                seq INTEGER PRIMARY KEY, grp TEXT NOT NULL, body TEXT NOT NULL,
                receive_count INTEGER NOT NULL, visible_at INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS queue_dead (
                seq INTEGER PRIMARY KEY, body TEXT NOT NULL, receive_count INTEGER NOT NULL,
                reason TEXT NOT NULL, dead_at INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS queue_dedup (id TEXT PRIMARY KEY, sent_at INTEGER NOT NULL);
             CREATE INDEX IF NOT EXISTS queue_dedup_sent ON queue_dedup (sent_at);",
        )
        .map_err(failed)?;
        let now = wall_now_ms();
        conn.execute("DELETE FROM queue_dedup WHERE sent_at <= ?1", params![now - millis(dedup_window)])
            .map_err(failed)?;
        let rows: Vec<(i64, String, i64, i64)> = conn
            .prepare("SELECT seq, body, receive_count, visible_at FROM queue_messages ORDER BY seq")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?.collect())
            .map_err(failed)?;
        let dead_rows: Vec<(i64, String, i64, String)> = conn
            .prepare("SELECT seq, body, receive_count, reason FROM queue_dead ORDER BY seq")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?.collect())
            .map_err(failed)?;
        let dedup_rows: Vec<(String, i64)> = conn
            .prepare("SELECT id, sent_at FROM queue_dedup ORDER BY sent_at")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(failed)?;
        drop(conn);
        let mut loaded = Loaded { messages: Vec::new(), dead: Vec::new(), dedup: Vec::new() };
        for (seq, body, count, visible_at) in rows {
            let receive_count = u32::try_from(count).unwrap_or(u32::MAX);
            match Work::decode(&body) {
                Ok(message) => loaded.messages.push(Stored {
                    seq: seq_of(seq),
                    message,
                    receive_count,
                    visible_at: instant_of(visible_at),
                }),
                Err(e) => {
                    let reason = format!("the stored message no longer decodes: {e}");
                    tracing::error!(seq, %reason, "a queued work message dead-lettered on open");
                    journal.bury_unreadable(seq, &body, count, &reason);
                }
            }
        }
        for (seq, body, count, reason) in dead_rows {
            match Work::decode(&body) {
                Ok(message) => loaded.dead.push(StoredDead {
                    seq: seq_of(seq),
                    message,
                    receive_count: u32::try_from(count).unwrap_or(u32::MAX),
                    reason,
                }),
                Err(e) => tracing::error!(seq, error = %e, "a dead letter no longer decodes; left in queue_dead"),
            }
        }
        // A deduplication id is forgotten a window after it was sent, whatever the clock.
        loaded.dedup = dedup_rows
            .into_iter()
            .map(|(id, sent_at)| {
                let age = Duration::from_millis(u64::try_from(now - sent_at).unwrap_or_default());
                (id, Instant::now().checked_sub(age).unwrap_or_else(Instant::now))
            })
            .collect();
        Ok((journal, loaded))
    }

    fn run(&self, what: &str, sql: &str, args: impl rusqlite::Params) -> Result<(), String> {
        let conn = lock(&self.conn);
        let mut stmt = conn.prepare_cached(sql).map_err(|e| format!("the queue journal cannot {what}: {e}"))?;
        stmt.execute(args).map(drop).map_err(|e| format!("the queue journal cannot {what}: {e}"))
    }

    /// Logs a failed journal write that loses nothing the queue's guarantees need (at
    /// worst a message is delivered again after a restart).
    fn logged(result: Result<(), String>) {
        if let Err(why) = result {
            tracing::error!(error = %why, "queue journal write failed");
        }
    }

    /// A message accepted by `send`, with its deduplication id.
    pub(crate) fn sent(&self, seq: u64, work: &Work, dedup_id: &str, at: Instant) -> Result<(), String> {
        let body =
            work.encode().map_err(|e| format!("the queue journal cannot encode a {} message: {e}", work.kind()))?;
        let mut conn = lock(&self.conn);
        let fail = |e: rusqlite::Error| format!("the queue journal cannot record a sent message: {e}");
        let tx = conn.transaction().map_err(fail)?;
        tx.execute(
            "INSERT OR REPLACE INTO queue_messages (seq, grp, body, receive_count, visible_at) VALUES (?1, ?2, ?3, 0, ?4)",
            params![sql_seq(seq), work.group_id(), body, wall_ms(at)],
        )
        .map_err(fail)?;
        tx.execute("INSERT OR REPLACE INTO queue_dedup (id, sent_at) VALUES (?1, ?2)", params![dedup_id, wall_ms(at)])
            .map_err(fail)?;
        tx.commit().map_err(fail)
    }

    /// A message received for the `count`th time.
    pub(crate) fn received(&self, seq: u64, count: u32) {
        Self::logged(self.run(
            "count a receive",
            "UPDATE queue_messages SET receive_count = ?2 WHERE seq = ?1",
            params![sql_seq(seq), count],
        ));
    }

    /// A message acknowledged (done).
    pub(crate) fn acked(&self, seq: u64) {
        Self::logged(self.run(
            "delete a done message",
            "DELETE FROM queue_messages WHERE seq = ?1",
            params![sql_seq(seq)],
        ));
    }

    /// A message given back, visible again at `at`.
    pub(crate) fn delayed(&self, seq: u64, at: Instant) {
        Self::logged(self.run(
            "delay a message",
            "UPDATE queue_messages SET visible_at = ?2 WHERE seq = ?1",
            params![sql_seq(seq), wall_ms(at)],
        ));
    }

    /// A message moved to the dead-letter list.
    pub(crate) fn dead(&self, seq: u64, receive_count: u32, reason: &str) {
        let mut conn = lock(&self.conn);
        let moved = conn.transaction().and_then(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO queue_dead (seq, body, receive_count, reason, dead_at)
                 SELECT seq, body, ?2, ?3, ?4 FROM queue_messages WHERE seq = ?1",
                params![sql_seq(seq), receive_count, reason, wall_now_ms()],
            )?;
            tx.execute("DELETE FROM queue_messages WHERE seq = ?1", params![sql_seq(seq)])?;
            tx.commit()
        });
        Self::logged(moved.map_err(|e| format!("the queue journal cannot dead-letter a message: {e}")));
    }

    /// A dead letter sent again as message `seq`, visible at `at`, its count reset.
    pub(crate) fn redriven(&self, dead_seq: u64, seq: u64, group: &str, at: Instant) {
        let mut conn = lock(&self.conn);
        let moved = conn.transaction().and_then(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO queue_messages (seq, grp, body, receive_count, visible_at)
                 SELECT ?2, ?3, body, 0, ?4 FROM queue_dead WHERE seq = ?1",
                params![sql_seq(dead_seq), sql_seq(seq), group, wall_ms(at)],
            )?;
            tx.execute("DELETE FROM queue_dead WHERE seq = ?1", params![sql_seq(dead_seq)])?;
            tx.commit()
        });
        Self::logged(moved.map_err(|e| format!("the queue journal cannot redrive a dead letter: {e}")));
    }

    /// Every held message made visible at `at`.
    pub(crate) fn released(&self, at: Instant) {
        let at = wall_ms(at);
        Self::logged(self.run(
            "release held messages",
            "UPDATE queue_messages SET visible_at = ?1 WHERE visible_at > ?1",
            params![at],
        ));
    }

    /// Deduplication ids sent before `before` forgotten.
    pub(crate) fn forget_dedup(&self, before: Instant) {
        Self::logged(self.run(
            "forget old deduplication ids",
            "DELETE FROM queue_dedup WHERE sent_at <= ?1",
            params![wall_ms(before)],
        ));
    }

    /// The highest sequence number used, so that new messages follow the stored ones.
    pub(crate) fn last_seq(&self) -> u64 {
        let conn = lock(&self.conn);
        let max: Option<i64> = conn
            .query_row(
                "SELECT MAX(seq) FROM (SELECT seq FROM queue_messages UNION ALL SELECT seq FROM queue_dead)",
                [],
                |r| r.get(0),
            )
            .optional()
            .ok()
            .flatten()
            .flatten();
        max.map(seq_of).unwrap_or_default()
    }

    fn bury_unreadable(&self, seq: i64, body: &str, count: i64, reason: &str) {
        let mut conn = lock(&self.conn);
        let moved = conn.transaction().and_then(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO queue_dead (seq, body, receive_count, reason, dead_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![seq, body, count, reason, wall_now_ms()],
            )?;
            tx.execute("DELETE FROM queue_messages WHERE seq = ?1", params![seq])?;
            tx.commit()
        });
        Self::logged(moved.map_err(|e| format!("the queue journal cannot dead-letter an unreadable message: {e}")));
    }
}
