//! [`MemTable`]: the domain's unit tests' table, a map in memory that keeps the port's
//! rules ([`crate::table_rules`]) and passes the same conformance suite as the real
//! tables (run from `tandem-embedded`'s tests, with this crate's `testing` feature), plus
//! counters and a conflict switch the tests use. Never used outside tests.

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};

use crate::ports::{Clock, Item, Query, QueryPage, StoreError, SystemClock, Table, Write};
use crate::table_rules::{check, decode_token, encode_token, live, validate};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The unit tests' table (see the module docs).
#[derive(Default)]
pub struct MemTable {
    /// The clock TTL is judged by (the system's when unset).
    clock: Option<Arc<dyn Clock>>,
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

impl MemTable {
    /// A table judging expiry by `clock` (the tests' fixed clock).
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self { clock: Some(clock), ..Self::default() }
    }

    fn now(&self) -> i64 {
        self.clock.as_ref().map_or_else(|| SystemClock.now().unix(), |c| c.now().unix())
    }

    /// Reads `pk`'s items (or, `index`, the index partition `pk`'s) as the port says: live
    /// ones, in key order (index: `(gsi sk, pk, sk)`), after the token, one page.
    fn read(&self, index: bool, pk: &str, q: &Query) -> Result<QueryPage, StoreError> {
        let now = self.now();
        let key = |i: &Item| -> Vec<String> {
            match (&i.gsi1, index) {
                (Some(g), true) => vec![g.sk.clone(), i.pk.clone(), i.sk.clone()],
                _ => vec![i.sk.clone()],
            }
        };
        let after = q.after.as_deref().map(|t| decode_token(t, if index { 3 } else { 1 })).transpose()?;
        let items = lock(&self.items);
        let mut v: Vec<&Item> = items
            .values()
            .filter(|i| live(i, now))
            .filter(|i| if index { i.gsi1.as_ref().is_some_and(|g| g.pk == pk) } else { i.pk == pk })
            .filter(|i| {
                let sk = if index { i.gsi1.as_ref().map_or("", |g| g.sk.as_str()) } else { i.sk.as_str() };
                q.sk_prefix.as_deref().is_none_or(|p| sk.starts_with(p))
            })
            .filter(|i| after.as_ref().is_none_or(|a| if q.descending { key(i) < *a } else { key(i) > *a }))
            .collect();
        v.sort_by_key(|i| key(i));
        if q.descending {
            v.reverse();
        }
        let limit = q.limit.max(1);
        let more = v.len() > limit;
        let items: Vec<Item> = v.into_iter().take(limit).cloned().collect();
        let next = match items.last() {
            Some(last) if more => Some(self.token_after(last, index)?),
            _ => None,
        };
        Ok(QueryPage { items, next })
    }
}

#[async_trait]
impl Table for MemTable {
    fn token_after(&self, item: &Item, index: bool) -> Result<String, StoreError> {
        match (&item.gsi1, index) {
            (Some(g), true) => encode_token(&[&g.sk, &item.pk, &item.sk]),
            _ => encode_token(&[&item.sk]),
        }
    }
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let now = self.now();
        Ok(lock(&self.items).get(&(pk.to_string(), sk.to_string())).filter(|i| live(i, now)).cloned())
    }
    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Item>, StoreError> {
        let now = self.now();
        let items = lock(&self.items);
        Ok(keys.iter().filter_map(|k| items.get(k).filter(|i| live(i, now)).cloned()).collect())
    }
    async fn query(&self, pk: &str, q: &Query) -> Result<QueryPage, StoreError> {
        self.queries.fetch_add(1, SeqCst);
        self.read(false, pk, q)
    }
    async fn query_index(&self, pk: &str, q: &Query) -> Result<QueryPage, StoreError> {
        self.index_queries.fetch_add(1, SeqCst);
        self.read(true, pk, q)
    }
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        if self.conflict_next.swap(false, SeqCst) {
            return Err(StoreError::Conflict("someone else wrote first".into()));
        }
        validate(&writes)?;
        let now = self.now();
        let mut items = lock(&self.items);
        for w in &writes {
            if let Write::Put { item, condition } = w {
                let current = items.get(&(item.pk.clone(), item.sk.clone())).filter(|i| live(i, now));
                check(current, &item.pk, &item.sk, *condition)?;
            }
        }
        self.transactions.fetch_add(1, SeqCst);
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
