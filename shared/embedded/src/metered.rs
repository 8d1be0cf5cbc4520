//! [`MeteredTable`]: any [`Table`] with its round trips counted and, optionally, a wait
//! added to each one, so the local runner and the benchmark can show what a flow costs on
//! DynamoDB (a few milliseconds per call) without DynamoDB. Calls made concurrently wait
//! concurrently, as they would over the network. Besides the calls it counts the
//! sequential rounds: a call that starts while no other is in flight starts a round, and
//! calls overlapping it belong to it, so with a latency set the rounds are what a flow's
//! wall time is made of.

use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tandem_domain::ports::{Item, Query, QueryPage, StoreError, Table, Write};

/// A table that counts its round trips and waits `latency` in each (see the module docs).
pub struct MeteredTable {
    inner: Arc<dyn Table>,
    latency: Duration,
    calls: AtomicU64,
    rounds: AtomicU64,
    in_flight: AtomicU64,
}

/// A call in flight; it lands when dropped.
struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl MeteredTable {
    /// Meters `inner`, adding `latency` to every call (zero: count only).
    pub fn new(inner: Arc<dyn Table>, latency: Duration) -> Self {
        Self { inner, latency, calls: AtomicU64::new(0), rounds: AtomicU64::new(0), in_flight: AtomicU64::new(0) }
    }

    /// Round trips made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Sequential rounds made so far (see the module docs).
    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    async fn trip(&self) -> InFlight<'_> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if self.in_flight.fetch_add(1, Ordering::SeqCst) == 0 {
            self.rounds.fetch_add(1, Ordering::Relaxed);
        }
        let flight = InFlight(&self.in_flight);
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        flight
    }
}

#[async_trait]
impl Table for MeteredTable {
    fn token_after(&self, item: &Item, index: bool) -> Result<String, StoreError> {
        self.inner.token_after(item, index)
    }
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let _flight = self.trip().await;
        self.inner.get(pk, sk).await
    }
    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Item>, StoreError> {
        let _flight = self.trip().await;
        self.inner.get_many(keys).await
    }
    async fn query(&self, pk: &str, q: &Query) -> Result<QueryPage, StoreError> {
        let _flight = self.trip().await;
        self.inner.query(pk, q).await
    }
    async fn query_index(&self, pk: &str, q: &Query) -> Result<QueryPage, StoreError> {
        let _flight = self.trip().await;
        self.inner.query_index(pk, q).await
    }
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let _flight = self.trip().await;
        self.inner.transact(writes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteTable;
    use std::time::Instant;

    #[tokio::test]
    async fn a_metered_table_counts_every_round_trip_and_passes_the_conformance_suite() {
        let metered = Arc::new(MeteredTable::new(Arc::new(SqliteTable::in_memory().unwrap()), Duration::ZERO));
        crate::conformance::table_suite(metered.clone()).await;
        let before = metered.calls();
        assert!(before > 100, "the suite made {before} calls");
        metered.get("p", "s").await.unwrap();
        metered.get_many(&[]).await.unwrap();
        assert_eq!(metered.calls(), before + 2);
    }

    #[tokio::test]
    async fn concurrent_calls_wait_their_latency_side_by_side() {
        let metered =
            Arc::new(MeteredTable::new(Arc::new(SqliteTable::in_memory().unwrap()), Duration::from_millis(200)));
        let started = Instant::now();
        let calls: Vec<_> = (0..10)
            .map(|_| {
                let m = metered.clone();
                tokio::spawn(async move { m.get("p", "s").await })
            })
            .collect();
        for c in calls {
            c.await.unwrap().unwrap();
        }
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(200), "each call waits: {took:?}");
        assert!(took < Duration::from_millis(1500), "ten calls overlap instead of queueing: {took:?}");
        assert_eq!(metered.calls(), 10);
        assert_eq!(metered.rounds(), 1, "ten overlapping calls are one round");
    }

    #[tokio::test]
    async fn calls_made_one_after_another_are_one_round_each() {
        let metered = MeteredTable::new(Arc::new(SqliteTable::in_memory().unwrap()), Duration::from_millis(5));
        for _ in 0..3 {
            metered.get("p", "s").await.unwrap();
        }
        let (a, b) = tokio::join!(metered.get("p", "s"), metered.get("q", "s"));
        a.unwrap();
        b.unwrap();
        assert_eq!((metered.calls(), metered.rounds()), (5, 4));
    }
}
