//! The rules of DynamoDB that every [`Table`](crate::ports::Table) keeps where the domain
//! can tell: the transaction limits and shape that DynamoDB refuses with a
//! `ValidationException` (checked by the DynamoDB adapter before sending, too), and for
//! the tables not backed by DynamoDB (the embedded SQLite table, the unit tests' table)
//! TTL visibility, prefix ranges, opaque paging tokens and the conditions of writes.
//!
//! Invalid requests that DynamoDB rejects with a `ValidationException` (no writes, more
//! than 100, two writes on one item, an empty key, an item over 400 KB) are caller bugs
//! that no retry fixes; the domain's [`StoreError`] has no variant for that, so they are
//! reported as the non-retryable [`StoreError::Corrupt`] with a message starting
//! `invalid transaction`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::collections::HashSet;
use std::io;

use crate::ports::{Condition, Item, StoreError, Write};

/// The most writes one transaction may hold (DynamoDB `TransactWriteItems`).
pub const MAX_TRANSACTION_WRITES: usize = 100;
/// The largest item, measured as its JSON encoding (DynamoDB: 400 KB).
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// Whether an item is still visible at `now` (epoch seconds): DynamoDB TTL semantics,
/// expired once `expires_at` is in the past.
pub fn live(item: &Item, now: i64) -> bool {
    item.expires_at.is_none_or(|at| at >= now)
}

/// The smallest string greater than every string starting with `prefix`, if any.
pub fn prefix_end(prefix: &str) -> Option<String> {
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

/// An opaque paging token of the key `parts` of the last item read.
pub fn encode_token(parts: &[&str]) -> Result<String, StoreError> {
    let json =
        serde_json::to_vec(parts).map_err(|e| StoreError::Corrupt(format!("cannot encode a paging token: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

/// The key parts of a token [`encode_token`] made, or `InvalidToken`.
pub fn decode_token(token: &str, parts: usize) -> Result<Vec<String>, StoreError> {
    let bad = || StoreError::InvalidToken(format!("{token:?} is not a token this table issued"));
    let json = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let v: Vec<String> = serde_json::from_slice(&json).map_err(|_| bad())?;
    if v.len() == parts { Ok(v) } else { Err(bad()) }
}

/// The error of a transaction DynamoDB would refuse.
pub fn invalid(why: impl std::fmt::Display) -> StoreError {
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

/// Refuses what DynamoDB would refuse with a `ValidationException`, writing nothing.
pub fn validate(writes: &[Write]) -> Result<(), StoreError> {
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

/// Whether a put's `condition` holds for the `current` item, or the conflict naming why not.
pub fn check(current: Option<&Item>, pk: &str, sk: &str, condition: Condition) -> Result<(), StoreError> {
    let failed = |why: String| Err(StoreError::Conflict(format!("item {pk} / {sk} {why}")));
    match (condition, current) {
        (Condition::None, _) | (Condition::NotExists, None) => Ok(()),
        (Condition::NotExists, Some(_)) => failed("already exists".into()),
        (Condition::VersionIs(v), Some(item)) if item.version == v => Ok(()),
        (Condition::VersionIs(v), Some(item)) => failed(format!("is at version {}, expected {v}", item.version)),
        (Condition::VersionIs(v), None) => failed(format!("does not exist, expected version {v}")),
    }
}
