//! [`EmbeddedQueue`]: an in-process stand-in for an SQS FIFO queue with a dead-letter
//! queue, carrying the work queue's messages ([`Work`]) of every kind and route: it knows
//! a message only by its [group](Work::group_id) and [deduplication id](Work::dedup_id).
//!
//! Semantics kept from SQS FIFO: a message whose deduplication id was sent within the
//! deduplication window is dropped; messages of one group are delivered in order and
//! never two at a time (a group with a message in flight is blocked, other groups are
//! not); a received message not acknowledged within the visibility timeout becomes
//! visible again, first in its group, with its receive count raised on the next receive;
//! a message that failed after `max_receives` receives moves to the dead-letter list.
//! A receipt is valid for one receive only: acknowledging after the visibility timeout
//! passed does nothing (the message will be delivered again).
//!
//! A queue made with [`EmbeddedQueue::durable`] (the local runner on a data directory)
//! writes every change through to its [journal](crate::journal) in `tandem.db` and reads
//! it back on open: queued, delayed and in-flight messages, receive counts, dead letters
//! and recent deduplication ids survive a restart, so work resumes where it was without
//! being re-derived from the jobs. A queue made with [`EmbeddedQueue::new`] keeps nothing
//! (tests, and the scratch store of a runner without a data directory).

use async_trait::async_trait;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

use tandem_domain::ports::{QueueError, WorkQueue};
use tandem_domain::work::Work;

use crate::error::OpenError;
use crate::journal::Journal;
use crate::sqlite::SqliteTable;

/// How the queue behaves (the SQS queue's attributes and redrive policy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// How long a received message stays invisible before it is delivered again.
    pub visibility_timeout: Duration,
    /// After this many failed receives a message goes to the dead-letter list (at least 1).
    pub max_receives: u32,
    /// How long a deduplication id is remembered.
    pub dedup_window: Duration,
}

impl Default for QueueConfig {
    /// SQS's defaults: 30 s visibility, 5 minutes of deduplication; 5 receives.
    fn default() -> Self {
        Self { visibility_timeout: Duration::from_secs(30), max_receives: 5, dedup_window: Duration::from_secs(300) }
    }
}

/// A received message: process it, then [`EmbeddedQueue::ack`] or
/// [`EmbeddedQueue::nack`] its receipt.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// The message.
    pub message: Work,
    /// The handle of this one receive.
    pub receipt: u64,
    /// How many times the message has been received, this time included (1 the first time).
    pub receive_count: u32,
}

/// A message that will not be delivered again.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter {
    /// Its place in the queue's order of sending.
    pub id: u64,
    /// The message.
    pub message: Work,
    /// How many times it was received.
    pub receive_count: u32,
    /// Why its last receive failed.
    pub reason: String,
}

/// Counts for a status line or a test.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QueueStats {
    /// Messages waiting to be received (visible or delayed).
    pub pending: usize,
    /// Messages received and not yet acknowledged.
    pub in_flight: usize,
    /// Messages in the dead-letter list.
    pub dead_lettered: usize,
    /// Messages accepted by `send` (duplicates not counted).
    pub sent: u64,
    /// Messages dropped by `send` as duplicates.
    pub deduplicated: u64,
    /// Receives (redeliveries included).
    pub received: u64,
    /// Messages acknowledged.
    pub acked: u64,
}

struct Waiting {
    /// The order of sending: the oldest visible message is delivered first.
    seq: u64,
    message: Work,
    receive_count: u32,
    visible_at: Instant,
}

#[derive(Default)]
struct Group {
    waiting: VecDeque<Waiting>,
    in_flight: Option<u64>,
}

struct InFlight {
    group: String,
    msg: Waiting,
    deadline: Instant,
}

/// What happens to a message whose receive failed.
enum Failure<'a> {
    /// Visible again at this instant, unless it used up its receives.
    Retry(Instant, &'a str),
    /// Straight to the dead-letter list.
    Reject(&'a str),
}

#[derive(Default)]
struct State {
    next_seq: u64,
    next_receipt: u64,
    groups: HashMap<String, Group>,
    in_flight: HashMap<u64, InFlight>,
    dedup: HashMap<String, Instant>,
    dedup_order: VecDeque<(Instant, String)>,
    dead: Vec<DeadLetter>,
    sent: u64,
    deduplicated: u64,
    received: u64,
    acked: u64,
}

impl State {
    /// Forgets the deduplication ids older than the window; whether it forgot any.
    fn forget_old_dedup_ids(&mut self, now: Instant, window: Duration) -> bool {
        let mut forgot = false;
        while let Some((at, _)) = self.dedup_order.front() {
            if *at + window > now {
                break;
            }
            if let Some((at, id)) = self.dedup_order.pop_front()
                && self.dedup.get(&id) == Some(&at)
            {
                self.dedup.remove(&id);
                forgot = true;
            }
        }
        forgot
    }

    /// Puts messages whose visibility timeout passed back (or into the dead-letter list).
    fn expire_in_flight(&mut self, now: Instant, config: &QueueConfig, journal: Option<&Journal>) {
        let expired: Vec<(u64, Instant)> =
            self.in_flight.iter().filter(|(_, f)| f.deadline <= now).map(|(r, f)| (*r, f.deadline)).collect();
        for (receipt, deadline) in expired {
            let why = format!("not acknowledged within the visibility timeout of {:?}", config.visibility_timeout);
            self.fail(receipt, Failure::Retry(deadline, &why), config, journal);
        }
    }

    /// Ends an in-flight receive that failed; `false` if the receipt is not in flight.
    fn fail(&mut self, receipt: u64, failure: Failure<'_>, config: &QueueConfig, journal: Option<&Journal>) -> bool {
        let Some(InFlight { group, mut msg, .. }) = self.in_flight.remove(&receipt) else {
            return false;
        };
        let g = self.groups.entry(group.clone()).or_default();
        g.in_flight = None;
        let dead_reason = match failure {
            Failure::Retry(_, why) if msg.receive_count >= config.max_receives.max(1) => Some(why),
            Failure::Retry(visible_at, _) => {
                msg.visible_at = visible_at;
                if let Some(j) = journal {
                    j.delayed(msg.seq, visible_at);
                }
                g.waiting.push_front(msg);
                return true;
            }
            Failure::Reject(why) => Some(why),
        };
        if let Some(reason) = dead_reason {
            tracing::warn!(
                group = %group,
                kind = msg.message.kind(),
                dedup_id = %msg.message.dedup_id(),
                receive_count = msg.receive_count,
                reason,
                "work message dead-lettered"
            );
            if let Some(j) = journal {
                j.dead(msg.seq, msg.receive_count, reason);
            }
            self.dead.push(DeadLetter {
                id: msg.seq,
                message: msg.message,
                receive_count: msg.receive_count,
                reason: reason.to_string(),
            });
        }
        if g.waiting.is_empty() {
            self.groups.remove(&group);
        }
        true
    }

    /// Takes the oldest visible message of a group with nothing in flight.
    fn take(&mut self, now: Instant, config: &QueueConfig, journal: Option<&Journal>) -> Option<Delivery> {
        let (name, _) = self
            .groups
            .iter()
            .filter(|(_, g)| g.in_flight.is_none())
            .filter_map(|(name, g)| g.waiting.front().filter(|m| m.visible_at <= now).map(|m| (name, m.seq)))
            .min_by_key(|(_, seq)| *seq)?;
        let name = name.clone();
        let g = self.groups.get_mut(&name)?;
        let mut msg = g.waiting.pop_front()?;
        let receipt = self.next_receipt;
        self.next_receipt += 1;
        g.in_flight = Some(receipt);
        msg.receive_count += 1;
        self.received += 1;
        if let Some(j) = journal {
            j.received(msg.seq, msg.receive_count);
        }
        let delivery = Delivery { message: msg.message.clone(), receipt, receive_count: msg.receive_count };
        self.in_flight.insert(receipt, InFlight { group: name, msg, deadline: now + config.visibility_timeout });
        Some(delivery)
    }

    /// The next instant something may become receivable without a call (a delay or a
    /// visibility timeout ending).
    fn next_event(&self) -> Option<Instant> {
        let deadlines = self.in_flight.values().map(|f| f.deadline);
        let delayed = self
            .groups
            .values()
            .filter(|g| g.in_flight.is_none())
            .filter_map(|g| g.waiting.front().map(|m| m.visible_at));
        deadlines.chain(delayed).min()
    }

    fn stats(&self) -> QueueStats {
        QueueStats {
            pending: self.groups.values().map(|g| g.waiting.len()).sum(),
            in_flight: self.in_flight.len(),
            dead_lettered: self.dead.len(),
            sent: self.sent,
            deduplicated: self.deduplicated,
            received: self.received,
            acked: self.acked,
        }
    }
}

/// An in-process SQS FIFO queue of work messages (see the module docs).
pub struct EmbeddedQueue {
    config: QueueConfig,
    state: Mutex<State>,
    changed: Notify,
    /// Where a durable queue writes its changes through.
    journal: Option<Journal>,
}

impl Default for EmbeddedQueue {
    fn default() -> Self {
        Self::new(QueueConfig::default())
    }
}

impl EmbeddedQueue {
    /// An empty queue.
    pub fn new(config: QueueConfig) -> Self {
        Self { config, state: Mutex::new(State::default()), changed: Notify::new(), journal: None }
    }

    /// A durable queue in `table`'s database, holding what it held when last closed (see
    /// the module docs).
    pub fn durable(table: &SqliteTable, config: QueueConfig) -> Result<Self, OpenError> {
        let (journal, loaded) = Journal::open(table, config.dedup_window)?;
        let mut state = State { next_seq: journal.last_seq() + 1, ..State::default() };
        for m in loaded.messages {
            state.groups.entry(m.message.group_id()).or_default().waiting.push_back(Waiting {
                seq: m.seq,
                message: m.message,
                receive_count: m.receive_count,
                visible_at: m.visible_at,
            });
        }
        state.dead = loaded
            .dead
            .into_iter()
            .map(|d| DeadLetter { id: d.seq, message: d.message, receive_count: d.receive_count, reason: d.reason })
            .collect();
        for (id, at) in loaded.dedup {
            state.dedup.insert(id.clone(), at);
            state.dedup_order.push_back((at, id));
        }
        let pending: usize = state.groups.values().map(|g| g.waiting.len()).sum();
        if pending > 0 || !state.dead.is_empty() {
            tracing::info!(pending, dead_letters = state.dead.len(), "the work queue was read back from its journal");
        }
        Ok(Self { config, state: Mutex::new(state), changed: Notify::new(), journal: Some(journal) })
    }

    /// The queue's configuration.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state, with visibility timeouts up to now applied.
    fn lock_now(&self) -> (MutexGuard<'_, State>, Instant) {
        let now = Instant::now();
        let mut state = self.lock();
        state.expire_in_flight(now, &self.config, self.journal.as_ref());
        (state, now)
    }

    /// The oldest visible message of a group with nothing in flight, waiting up to `wait`
    /// for one; `None` if none came.
    pub async fn receive(&self, wait: Duration) -> Option<Delivery> {
        let start = Instant::now();
        let deadline = start.checked_add(wait).unwrap_or_else(|| start + Duration::from_secs(365 * 86_400));
        loop {
            // Registered before looking, so a change made after the look still wakes us.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let (next_event, now) = {
                let (mut state, now) = self.lock_now();
                if let Some(delivery) = state.take(now, &self.config, self.journal.as_ref()) {
                    return Some(delivery);
                }
                (state.next_event(), now)
            };
            if now >= deadline {
                return None;
            }
            let until = next_event.map_or(deadline, |at| at.min(deadline));
            let _ = tokio::time::timeout_at(until, changed).await;
        }
    }

    /// Deletes a processed message; `false` if the receipt is unknown or stale (its
    /// visibility timeout passed, so the message will be delivered again).
    pub fn ack(&self, receipt: u64) -> bool {
        let done = {
            let (mut state, _) = self.lock_now();
            match state.in_flight.remove(&receipt) {
                Some(f) => {
                    if let Some(j) = &self.journal {
                        j.acked(f.msg.seq);
                    }
                    if let Some(g) = state.groups.get_mut(&f.group) {
                        g.in_flight = None;
                        if g.waiting.is_empty() {
                            state.groups.remove(&f.group);
                        }
                    }
                    state.acked += 1;
                    true
                }
                None => false,
            }
        };
        if done {
            self.changed.notify_waiters();
        } else {
            tracing::warn!(receipt, "ack of an unknown or expired receipt ignored");
        }
        done
    }

    /// Gives a message back, visible again after `delay` (or dead-lettered if it used up
    /// its receives); `false` if the receipt is unknown or stale.
    pub fn nack(&self, receipt: u64, delay: Duration) -> bool {
        self.nack_with_reason(receipt, delay, "processing failed")
    }

    /// Like [`EmbeddedQueue::nack`], recording why, in case the message is dead-lettered.
    pub fn nack_with_reason(&self, receipt: u64, delay: Duration, reason: &str) -> bool {
        let done = {
            let (mut state, now) = self.lock_now();
            state.fail(receipt, Failure::Retry(now + delay, reason), &self.config, self.journal.as_ref())
        };
        self.changed.notify_waiters();
        done
    }

    /// Moves a message straight to the dead-letter list (a failure no retry can fix);
    /// `false` if the receipt is unknown or stale.
    pub fn reject(&self, receipt: u64, reason: &str) -> bool {
        let done = {
            let (mut state, _) = self.lock_now();
            state.fail(receipt, Failure::Reject(reason), &self.config, self.journal.as_ref())
        };
        self.changed.notify_waiters();
        done
    }

    /// The dead-letter list, oldest first.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.lock().dead.clone()
    }

    /// Sends every dead letter again (receive counts reset, deduplication bypassed);
    /// returns how many.
    pub fn redrive_dead_letters(&self) -> usize {
        let n = {
            let (mut state, now) = self.lock_now();
            let dead = std::mem::take(&mut state.dead);
            let n = dead.len();
            for d in dead {
                let seq = state.next_seq;
                state.next_seq += 1;
                let group = d.message.group_id();
                if let Some(j) = &self.journal {
                    j.redriven(d.id, seq, &group, now);
                }
                state.groups.entry(group).or_default().waiting.push_back(Waiting {
                    seq,
                    message: d.message,
                    receive_count: 0,
                    visible_at: now,
                });
            }
            n
        };
        self.changed.notify_waiters();
        n
    }

    /// Makes every message held back for later (a resume not due yet, a nacked delivery)
    /// visible now; returns how many. What a clock moved on needs (a test or demo that lets
    /// a day pass: the held messages' times have come, though the queue's own clock did not
    /// move).
    pub fn release_held(&self) -> usize {
        let n = {
            let (mut state, now) = self.lock_now();
            let mut n = 0;
            for group in state.groups.values_mut() {
                for w in group.waiting.iter_mut().filter(|w| w.visible_at > now) {
                    w.visible_at = now;
                    n += 1;
                }
            }
            if let Some(j) = self.journal.as_ref().filter(|_| n > 0) {
                j.released(now);
            }
            n
        };
        self.changed.notify_waiters();
        n
    }

    /// The queue's counts now.
    pub fn stats(&self) -> QueueStats {
        self.lock_now().0.stats()
    }

    /// Whether nothing is pending or in flight (dead letters do not count).
    pub fn is_idle(&self) -> bool {
        let s = self.stats();
        s.pending == 0 && s.in_flight == 0
    }
}

#[async_trait]
impl WorkQueue for EmbeddedQueue {
    async fn send(&self, work: &Work) -> Result<(), QueueError> {
        let now = Instant::now();
        let id = work.dedup_id();
        {
            let mut state = self.lock();
            if state.forget_old_dedup_ids(now, self.config.dedup_window)
                && let Some(j) = &self.journal
                && let Some(before) = now.checked_sub(self.config.dedup_window)
            {
                j.forget_dedup(before);
            }
            if state.dedup.contains_key(&id) {
                state.deduplicated += 1;
                tracing::debug!(dedup_id = %id, kind = work.kind(), "duplicate work message dropped");
                return Ok(());
            }
            let seq = state.next_seq;
            if let Some(j) = &self.journal {
                j.sent(seq, work, &id, now).map_err(QueueError)?;
            }
            state.dedup.insert(id.clone(), now);
            state.dedup_order.push_back((now, id));
            state.next_seq += 1;
            state.sent += 1;
            state.groups.entry(work.group_id()).or_default().waiting.push_back(Waiting {
                seq,
                message: work.clone(),
                receive_count: 0,
                visible_at: now,
            });
        }
        self.changed.notify_waiters();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tandem_domain::external::Cursor;
    use tandem_domain::job::StageMessage;
    use tandem_domain::{JobId, Stage, System, TenantId};

    const SHORT: Duration = Duration::from_millis(30);

    /// The import page a test message carries.
    trait Page {
        fn page(&self) -> &StageMessage;
    }

    impl Page for Work {
        fn page(&self) -> &StageMessage {
            self.import_page().expect("an import page")
        }
    }

    fn msg(tenant: &str, position: &str) -> Work {
        Work::ImportPage(StageMessage {
            tenant: TenantId::parse(tenant).unwrap(),
            system: System::ConnectWise,
            job_id: JobId::from_raw(format!("job-{tenant}")),
            stage: Stage::Companies,
            cursor: Cursor { position: position.into(), since: None },
            attempt: 0,
            dry_run: false,
        })
    }

    fn queue(visibility_ms: u64, max_receives: u32) -> EmbeddedQueue {
        EmbeddedQueue::new(QueueConfig {
            visibility_timeout: Duration::from_millis(visibility_ms),
            max_receives,
            dedup_window: Duration::from_secs(60),
        })
    }

    /// A durable queue on the database in `dir` (a new connection each time, as a new
    /// process would open it).
    fn durable(dir: &std::path::Path, max_receives: u32) -> EmbeddedQueue {
        let table = SqliteTable::open(dir).unwrap();
        let config = QueueConfig { max_receives, ..QueueConfig::default() };
        EmbeddedQueue::durable(&table, config).unwrap()
    }

    #[tokio::test]
    async fn a_durable_queue_gives_back_after_a_restart_what_was_queued_or_in_flight_with_its_receive_count() {
        let dir = tempfile::tempdir().unwrap();
        {
            let q = durable(dir.path(), 5);
            for p in ["1", "2", "3"] {
                q.send(&msg("t1", p)).await.unwrap();
            }
            q.send(&msg("t2", "x")).await.unwrap();
            let first = q.receive(SHORT).await.unwrap();
            assert_eq!(first.message.page().cursor.position, "1");
            let other = q.receive(SHORT).await.unwrap();
            assert!(q.ack(other.receipt), "t2's only message is done");
            // The process dies here, "1" in flight.
        }
        let q = durable(dir.path(), 5);
        assert_eq!(q.stats().pending, 3, "t2's done message is gone, t1's three are back");
        let again = q.receive(SHORT).await.unwrap();
        assert_eq!((again.message.page().cursor.position.as_str(), again.receive_count), ("1", 2));
        assert!(q.ack(again.receipt));
        for want in ["2", "3"] {
            let d = q.receive(SHORT).await.unwrap();
            assert_eq!((d.message.page().cursor.position.as_str(), d.receive_count), (want, 1));
            assert!(q.ack(d.receipt));
        }
        drop(q);
        assert!(durable(dir.path(), 5).is_idle(), "nothing acknowledged comes back");
    }

    #[tokio::test]
    async fn a_durable_queue_keeps_its_dead_letters_and_deduplication_ids_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let q = durable(dir.path(), 1);
            q.send(&msg("t1", "1")).await.unwrap();
            let d = q.receive(SHORT).await.unwrap();
            assert!(q.nack_with_reason(d.receipt, Duration::ZERO, "the vendor is down"));
        }
        let q = durable(dir.path(), 1);
        let dead = q.dead_letters();
        assert_eq!(dead.len(), 1);
        assert_eq!((dead[0].receive_count, dead[0].reason.as_str()), (1, "the vendor is down"));
        q.send(&msg("t1", "1")).await.unwrap();
        assert_eq!(q.stats().deduplicated, 1, "sent again within the window after a restart: dropped");
        assert_eq!(q.redrive_dead_letters(), 1);
        drop(q);
        let q = durable(dir.path(), 1);
        assert!(q.dead_letters().is_empty(), "the redrive was kept");
        let d = q.receive(SHORT).await.unwrap();
        assert_eq!((d.message.page().cursor.position.as_str(), d.receive_count), ("1", 1));
    }

    #[tokio::test]
    async fn a_durable_queue_keeps_a_delayed_message_held_until_its_time_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let q = durable(dir.path(), 5);
            q.send(&msg("t1", "1")).await.unwrap();
            let d = q.receive(SHORT).await.unwrap();
            assert!(q.nack_with_reason(d.receipt, Duration::from_secs(3600), "rate limited"));
        }
        let q = durable(dir.path(), 5);
        assert!(q.receive(SHORT).await.is_none(), "still held back after the restart");
        assert_eq!(q.release_held(), 1);
        drop(q);
        let q = durable(dir.path(), 5);
        let d = q.receive(SHORT).await.unwrap();
        assert_eq!(d.receive_count, 2);
    }

    #[tokio::test]
    async fn messages_of_one_group_come_in_order_and_one_at_a_time() {
        let q = queue(10_000, 5);
        for p in ["1", "2", "3"] {
            q.send(&msg("t1", p)).await.unwrap();
        }
        let first = q.receive(SHORT).await.unwrap();
        assert_eq!(first.message.page().cursor.position, "1");
        assert_eq!(first.receive_count, 1);
        assert!(q.receive(SHORT).await.is_none(), "the group is blocked while a message is in flight");
        assert!(q.ack(first.receipt));
        let second = q.receive(SHORT).await.unwrap();
        assert_eq!(second.message.page().cursor.position, "2");
        assert!(q.ack(second.receipt));
        assert_eq!(q.receive(SHORT).await.unwrap().message.page().cursor.position, "3");
    }

    #[tokio::test]
    async fn a_second_group_is_not_blocked_by_the_first_groups_message_in_flight() {
        let q = queue(10_000, 5);
        q.send(&msg("t1", "1")).await.unwrap();
        q.send(&msg("t1", "2")).await.unwrap();
        q.send(&msg("t2", "1")).await.unwrap();
        let a = q.receive(SHORT).await.unwrap();
        let b = q.receive(SHORT).await.unwrap();
        assert_eq!(a.message.page().tenant.as_str(), "t1");
        assert_eq!(b.message.page().tenant.as_str(), "t2");
        assert_eq!(q.stats().in_flight, 2);
        assert_eq!(q.stats().pending, 1);
    }

    #[tokio::test]
    async fn a_message_sent_again_within_the_dedup_window_is_dropped() {
        let q = EmbeddedQueue::new(QueueConfig { dedup_window: Duration::from_millis(50), ..QueueConfig::default() });
        q.send(&msg("t1", "1")).await.unwrap();
        let d = q.receive(SHORT).await.unwrap();
        assert!(q.ack(d.receipt));
        q.send(&msg("t1", "1")).await.unwrap();
        assert!(q.receive(Duration::ZERO).await.is_none());
        let s = q.stats();
        assert_eq!((s.sent, s.deduplicated), (1, 1));
        tokio::time::sleep(Duration::from_millis(60)).await;
        q.send(&msg("t1", "1")).await.unwrap();
        assert!(q.receive(Duration::ZERO).await.is_some(), "after the window the id is forgotten");
    }

    #[tokio::test]
    async fn an_unacknowledged_message_is_delivered_again_after_the_visibility_timeout() {
        let q = queue(30, 5);
        q.send(&msg("t1", "1")).await.unwrap();
        let first = q.receive(SHORT).await.unwrap();
        let again = q.receive(Duration::from_secs(2)).await.unwrap();
        assert_eq!(again.message, first.message);
        assert_eq!(again.receive_count, 2);
        assert!(!q.ack(first.receipt), "the first receipt is stale");
        assert!(q.ack(again.receipt));
        assert!(q.is_idle());
    }

    #[tokio::test]
    async fn a_nacked_message_comes_back_after_its_delay_and_still_first_in_its_group() {
        let q = queue(10_000, 5);
        q.send(&msg("t1", "1")).await.unwrap();
        q.send(&msg("t1", "2")).await.unwrap();
        let first = q.receive(SHORT).await.unwrap();
        let nacked_at = Instant::now();
        assert!(q.nack(first.receipt, Duration::from_millis(50)));
        assert!(q.receive(Duration::ZERO).await.is_none(), "delayed, and the group waits for it");
        let again = q.receive(Duration::from_secs(2)).await.unwrap();
        assert!(nacked_at.elapsed() >= Duration::from_millis(50));
        assert_eq!(again.message.page().cursor.position, "1");
        assert_eq!(again.receive_count, 2);
    }

    #[tokio::test]
    async fn a_held_message_released_is_delivered_at_once() {
        let q = queue(10_000, 5);
        q.send(&msg("t1", "1")).await.unwrap();
        let first = q.receive(SHORT).await.unwrap();
        assert!(q.nack(first.receipt, Duration::from_secs(3600)));
        assert!(q.receive(Duration::ZERO).await.is_none(), "held for an hour");
        assert_eq!(q.release_held(), 1);
        let again = q.receive(SHORT).await.expect("released");
        assert_eq!(again.message.page().cursor.position, "1");
        assert_eq!(q.release_held(), 0, "nothing else is held");
    }

    #[tokio::test]
    async fn a_message_failing_max_receives_times_is_dead_lettered_and_its_group_moves_on() {
        let q = queue(10_000, 2);
        q.send(&msg("t1", "1")).await.unwrap();
        q.send(&msg("t1", "2")).await.unwrap();
        for n in 1..=2 {
            let d = q.receive(SHORT).await.unwrap();
            assert_eq!((d.message.page().cursor.position.as_str(), d.receive_count), ("1", n));
            assert!(q.nack_with_reason(d.receipt, Duration::ZERO, "ConnectWise said 500"));
        }
        let dead = q.dead_letters();
        assert_eq!(dead.len(), 1);
        assert_eq!((dead[0].receive_count, dead[0].reason.as_str()), (2, "ConnectWise said 500"));
        assert_eq!(q.receive(SHORT).await.unwrap().message.page().cursor.position, "2");
        assert_eq!(q.stats().dead_lettered, 1);
    }

    #[tokio::test]
    async fn a_message_timing_out_on_its_last_receive_is_dead_lettered() {
        let q = queue(20, 1);
        q.send(&msg("t1", "1")).await.unwrap();
        q.receive(SHORT).await.unwrap();
        assert!(q.receive(Duration::from_millis(60)).await.is_none());
        let dead = q.dead_letters();
        assert_eq!(dead.len(), 1);
        assert!(dead[0].reason.contains("visibility timeout"), "{}", dead[0].reason);
        assert!(q.is_idle());
    }

    #[tokio::test]
    async fn a_rejected_message_is_dead_lettered_at_once_and_can_be_redriven() {
        let q = queue(10_000, 5);
        q.send(&msg("t1", "1")).await.unwrap();
        let d = q.receive(SHORT).await.unwrap();
        assert!(q.reject(d.receipt, "mapping missing"));
        assert_eq!(q.dead_letters()[0].receive_count, 1);
        assert_eq!(q.redrive_dead_letters(), 1);
        let again = q.receive(SHORT).await.unwrap();
        assert_eq!(again.receive_count, 1);
        assert!(q.dead_letters().is_empty());
    }

    #[tokio::test]
    async fn a_waiting_receive_wakes_when_a_message_is_sent() {
        let q = Arc::new(queue(10_000, 5));
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move { q.receive(Duration::from_secs(10)).await })
        };
        tokio::time::sleep(SHORT).await;
        let sent_at = Instant::now();
        q.send(&msg("t1", "1")).await.unwrap();
        let got = waiter.await.unwrap().unwrap();
        assert_eq!(got.message.page().cursor.position, "1");
        assert!(sent_at.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_waiting_receive_wakes_when_a_group_is_unblocked_by_an_ack() {
        let q = Arc::new(queue(10_000, 5));
        q.send(&msg("t1", "1")).await.unwrap();
        q.send(&msg("t1", "2")).await.unwrap();
        let first = q.receive(SHORT).await.unwrap();
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move { q.receive(Duration::from_secs(10)).await })
        };
        tokio::time::sleep(SHORT).await;
        assert!(q.ack(first.receipt));
        assert_eq!(waiter.await.unwrap().unwrap().message.page().cursor.position, "2");
    }

    #[tokio::test]
    async fn many_workers_drain_many_groups_each_message_exactly_once() {
        let q = Arc::new(queue(10_000, 5));
        for t in 0..8 {
            for p in 0..25 {
                q.send(&msg(&format!("t{t}"), &p.to_string())).await.unwrap();
            }
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut workers = Vec::new();
        for _ in 0..4 {
            let (q, seen) = (q.clone(), seen.clone());
            workers.push(tokio::spawn(async move {
                while let Some(d) = q.receive(Duration::from_millis(300)).await {
                    seen.lock()
                        .unwrap()
                        .push((d.message.page().tenant.to_string(), d.message.page().cursor.position.clone()));
                    assert!(q.ack(d.receipt));
                }
            }));
        }
        for w in workers {
            w.await.unwrap();
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 200);
        for t in 0..8 {
            let order: Vec<&str> =
                seen.iter().filter(|(tn, _)| *tn == format!("t{t}")).map(|(_, p)| p.as_str()).collect();
            let want: Vec<String> = (0..25).map(|p| p.to_string()).collect();
            assert_eq!(order, want, "group t{t} kept its order");
        }
        assert!(q.is_idle());
        assert_eq!(q.stats().acked, 200);
    }
}
