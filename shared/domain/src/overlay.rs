//! [`Overlay`]: a copy-on-write view of the [`Table`], what an import preview (dry run)
//! runs on. Reads see the table as the writes made through the view would have left it;
//! those writes land in the view's own scratch partitions of the same table (every key
//! under `~preview#<id>#`, each item expiring with the preview), never on the items
//! themselves. So a preview runs the import's own load -> decide -> write code, page after
//! page in separate function invocations, and later pages and stages see what earlier
//! ones would have written, while the tenant's records, links, jobs and checkpoints stay
//! untouched.
//!
//! - A write through the view checks its condition against what the view reads (the
//!   scratch copy of the item, else the item itself) and puts the scratch copy under a
//!   condition on that copy alone, so writers of one view still race safely.
//! - A delete leaves a tombstone in the scratch partition, hiding the item beneath.
//! - A read by key takes the scratch copy when there is one; a key-range read (of a
//!   partition or of the index) merges the scratch and the table's reads in key order,
//!   hides items the scratch replaced or deleted, and pages with a token holding each
//!   side's position.
//!
//! Items under the view whose index sort keys are equal order by their keys; a table
//! that orders such ties otherwise (DynamoDB does not promise an order) could, at a page
//! boundary falling exactly among such ties, repeat or skip one of them in a listing.
//! The preview's own reads (look-ups, batch reads) never page, so they are exact.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use crate::ports::{Condition, IndexKey, Item, Query, QueryPage, StoreError, Table, Write};

/// What a scratch item holds: the item's own body and expiry (the scratch item itself
/// expires with the preview), or that the item is deleted.
#[derive(Serialize, Deserialize)]
struct Scratch {
    #[serde(default)]
    body: serde_json::Value,
    #[serde(default)]
    expires_at: Option<i64>,
    #[serde(default)]
    deleted: bool,
}

/// A copy-on-write view of a table (see the module docs).
pub struct Overlay {
    table: Arc<dyn Table>,
    /// The scratch partitions' key prefix.
    prefix: String,
    /// Whether reads see the table beneath the scratch (false: the scratch alone).
    through: bool,
    /// When every scratch item expires (epoch seconds).
    expires_at: i64,
}

/// Where a merged key-range read continues: each side's own token and whether it is done.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Position {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scratch: Option<String>,
    #[serde(default)]
    scratch_done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    table: Option<String>,
    #[serde(default)]
    table_done: bool,
}

impl Position {
    fn decode(token: &str) -> Result<Self, StoreError> {
        let bad = || StoreError::InvalidToken(format!("{token:?} is not a token this preview issued"));
        let bytes = hex::decode(token).map_err(|_| bad())?;
        serde_json::from_slice(&bytes).map_err(|_| bad())
    }

    fn encode(&self) -> Result<String, StoreError> {
        let json = serde_json::to_vec(self).map_err(|e| StoreError::Corrupt(format!("cannot encode a token: {e}")))?;
        Ok(hex::encode(json))
    }
}

/// One side's page of a merged read.
struct Side {
    /// Items in read order: as stored, where the view sorts it, what the view shows
    /// (`None`: a tombstone, or a table item the scratch replaced).
    items: Vec<(Item, Item, Option<Item>)>,
    /// Whether the side has more after its page.
    more: bool,
}

impl Side {
    /// Where the side's page ends, if the side has more: nothing past it may be given yet,
    /// as the side's next page could hold items sorting before what lies beyond.
    fn end(&self) -> Option<&Item> {
        if self.more { self.items.last().map(|(_, at, _)| at) } else { None }
    }
}

impl Overlay {
    /// The view of preview `id` over `table`; its scratch items expire at `expires_at`.
    pub fn new(table: Arc<dyn Table>, id: &str, expires_at: i64) -> Self {
        Overlay { table, prefix: format!("~preview#{id}#"), through: true, expires_at }
    }

    /// The scratch of preview `id` alone: what the preview wrote, without the table beneath.
    pub fn scratch(table: Arc<dyn Table>, id: &str, expires_at: i64) -> Self {
        Overlay { through: false, ..Overlay::new(table, id, expires_at) }
    }

    fn raw(&self, pk: &str) -> String {
        format!("{}{pk}", self.prefix)
    }

    fn scratch_item(&self, item: Item) -> Result<Item, StoreError> {
        let scratch = Scratch { body: item.body, expires_at: item.expires_at, deleted: false };
        Ok(Item {
            pk: self.raw(&item.pk),
            sk: item.sk,
            version: item.version,
            gsi1: item.gsi1.map(|g| IndexKey { pk: self.raw(&g.pk), sk: g.sk }),
            expires_at: Some(item.expires_at.map_or(self.expires_at, |e| e.min(self.expires_at))),
            body: serde_json::to_value(scratch).map_err(|e| StoreError::Corrupt(format!("a scratch item: {e}")))?,
        })
    }

    /// The item a scratch item stands for; `None` for a tombstone.
    fn shown(&self, raw: &Item) -> Option<Item> {
        let scratch = match serde_json::from_value::<Scratch>(raw.body.clone()) {
            Ok(s) if !s.deleted => s,
            Ok(_) => return None,
            Err(e) => {
                tracing::error!(pk = %raw.pk, sk = %raw.sk, error = %e, "a scratch item that does not parse is left out");
                return None;
            }
        };
        let strip = |pk: &str| pk.strip_prefix(&self.prefix).unwrap_or(pk).to_string();
        Some(Item {
            pk: strip(&raw.pk),
            sk: raw.sk.clone(),
            version: raw.version,
            gsi1: raw.gsi1.as_ref().map(|g| IndexKey { pk: strip(&g.pk), sk: g.sk.clone() }),
            expires_at: scratch.expires_at,
            body: scratch.body,
        })
    }

    fn tombstone(&self, pk: &str, sk: &str, version: u64) -> Item {
        Item {
            pk: self.raw(pk),
            sk: sk.to_string(),
            version,
            gsi1: None,
            expires_at: Some(self.expires_at),
            body: serde_json::json!({ "deleted": true }),
        }
    }

    /// The scratch items at `keys` (tombstones included), by key.
    async fn scratch_items(&self, keys: &[(String, String)]) -> Result<HashMap<(String, String), Item>, StoreError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let raw: Vec<(String, String)> = keys.iter().map(|(pk, sk)| (self.raw(pk), sk.clone())).collect();
        let found = self.table.get_many(&raw).await?;
        Ok(found
            .into_iter()
            .map(|item| {
                let pk = item.pk.strip_prefix(&self.prefix).unwrap_or(&item.pk).to_string();
                ((pk, item.sk.clone()), item)
            })
            .collect())
    }

    /// A merged key-range read of `pk` (with `index`, of the index partition `pk`).
    async fn read(&self, index: bool, pk: &str, q: &Query) -> Result<QueryPage, StoreError> {
        let limit = q.limit.max(1);
        let at = q.after.as_deref().map(Position::decode).transpose()?.unwrap_or_default();
        let side_query = |after: &Option<String>| Query { after: after.clone(), limit, ..q.clone() };
        let read_side = |raw_pk: String, after: Option<String>, skip: bool| async move {
            if skip {
                return Ok(QueryPage::default());
            }
            let q = side_query(&after);
            if index { self.table.query_index(&raw_pk, &q).await } else { self.table.query(&raw_pk, &q).await }
        };
        let (scratch_page, table_page) = futures::join!(
            read_side(self.raw(pk), at.scratch.clone(), at.scratch_done),
            read_side(pk.to_string(), at.table.clone(), at.table_done || !self.through),
        );
        let (scratch_page, table_page) = (scratch_page?, table_page?);
        // Table items the scratch replaced or deleted are hidden wherever they sort.
        let keys: Vec<(String, String)> = table_page.items.iter().map(|i| (i.pk.clone(), i.sk.clone())).collect();
        let replaced = self.scratch_items(&keys).await?;
        let scratch = Side {
            more: scratch_page.next.is_some(),
            items: scratch_page
                .items
                .into_iter()
                .map(|raw| {
                    let seen = self.shown(&raw);
                    let at = seen.clone().unwrap_or_else(|| Item { pk: pk.to_string(), ..raw.clone() });
                    (raw, at, seen)
                })
                .collect(),
        };
        let beneath = Side {
            more: table_page.next.is_some(),
            items: table_page
                .items
                .into_iter()
                .map(|item| {
                    let hidden = replaced.contains_key(&(item.pk.clone(), item.sk.clone()));
                    let seen = (!hidden).then(|| item.clone());
                    (item.clone(), item, seen)
                })
                .collect(),
        };
        let order = |a: &Item, b: &Item| {
            let o = order_key(a, index).cmp(&order_key(b, index));
            if q.descending { o.reverse() } else { o }
        };
        let mut cut: Option<Item> =
            [scratch.end(), beneath.end()].into_iter().flatten().min_by(|a, b| order(a, b)).cloned();
        let within = |item: &Item, cut: &Option<Item>| cut.as_ref().is_none_or(|c| order(item, c) != Ordering::Greater);
        let mut given: Vec<Item> = scratch
            .items
            .iter()
            .chain(&beneath.items)
            .filter_map(|(_, _, seen)| seen.clone())
            .filter(|i| within(i, &cut))
            .collect();
        given.sort_by(|a, b| order(a, b));
        if given.len() > limit {
            given.truncate(limit);
            cut = given.last().cloned();
        }
        // Each side is used up to the cut: what it gave there, and what it hid.
        let mut position = Position::default();
        for (side, token, done, was_done) in [
            (&scratch, &mut position.scratch, &mut position.scratch_done, at.scratch_done),
            (&beneath, &mut position.table, &mut position.table_done, at.table_done || !self.through),
        ] {
            let used = side.items.iter().take_while(|(_, at, _)| within(at, &cut)).count();
            *token = match used.checked_sub(1).map(|last| &side.items[last].0) {
                Some(raw) => Some(self.table.token_after(raw, index)?),
                None => None,
            };
            *done = was_done || (!side.more && used == side.items.len());
        }
        position.scratch = position.scratch.or(at.scratch);
        position.table = position.table.or(at.table);
        let next = if position.scratch_done && position.table_done { None } else { Some(position.encode()?) };
        Ok(QueryPage { items: given, next })
    }
}

/// What a merged read sorts by: the sort key, or the index sort key and then the keys.
fn order_key(item: &Item, index: bool) -> (String, String, String) {
    if index {
        let gsk = item.gsi1.as_ref().map(|g| g.sk.clone()).unwrap_or_default();
        (gsk, item.pk.clone(), item.sk.clone())
    } else {
        (item.sk.clone(), String::new(), String::new())
    }
}

#[async_trait]
impl Table for Overlay {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        match self.table.get(&self.raw(pk), sk).await? {
            Some(raw) => Ok(self.shown(&raw)),
            None if self.through => self.table.get(pk, sk).await,
            None => Ok(None),
        }
    }

    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Item>, StoreError> {
        let scratch = self.scratch_items(keys).await?;
        let rest: Vec<(String, String)> = keys.iter().filter(|k| !scratch.contains_key(*k)).cloned().collect();
        let mut items: Vec<Item> = scratch.values().filter_map(|raw| self.shown(raw)).collect();
        if self.through && !rest.is_empty() {
            items.extend(self.table.get_many(&rest).await?);
        }
        Ok(items)
    }

    async fn query(&self, pk: &str, q: &Query) -> Result<QueryPage, StoreError> {
        self.read(false, pk, q).await
    }

    async fn query_index(&self, pk: &str, q: &Query) -> Result<QueryPage, StoreError> {
        self.read(true, pk, q).await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let keys: Vec<(String, String)> = writes
            .iter()
            .map(|w| match w {
                Write::Put { item, .. } => (item.pk.clone(), item.sk.clone()),
                Write::Delete { pk, sk } => (pk.clone(), sk.clone()),
            })
            .collect();
        let scratch = self.scratch_items(&keys).await?;
        let rest: Vec<(String, String)> = keys.iter().filter(|k| !scratch.contains_key(*k)).cloned().collect();
        let beneath: HashMap<(String, String), Item> = if self.through && !rest.is_empty() {
            self.table.get_many(&rest).await?.into_iter().map(|i| ((i.pk.clone(), i.sk.clone()), i)).collect()
        } else {
            HashMap::new()
        };
        let mut raw_writes = Vec::with_capacity(writes.len());
        for (write, key) in writes.into_iter().zip(&keys) {
            let copy = scratch.get(key);
            let seen_version = match copy {
                Some(raw) => self.shown(raw).map(|i| i.version),
                None => beneath.get(key).map(|i| i.version),
            };
            // The scratch copy is written under a condition on itself alone.
            let on_copy = copy.map_or(Condition::NotExists, |raw| Condition::VersionIs(raw.version));
            match write {
                Write::Put { item, condition } => {
                    let holds = match condition {
                        Condition::None => true,
                        Condition::NotExists => seen_version.is_none(),
                        Condition::VersionIs(v) => seen_version == Some(v),
                    };
                    if !holds {
                        return Err(StoreError::Conflict(format!("{} {}", item.pk, item.sk)));
                    }
                    raw_writes.push(Write::Put { item: self.scratch_item(item)?, condition: on_copy });
                }
                Write::Delete { pk, sk } => {
                    let version = seen_version.unwrap_or_default() + 1;
                    raw_writes.push(Write::Put { item: self.tombstone(&pk, &sk, version), condition: on_copy });
                }
            }
        }
        self.table.transact(raw_writes).await
    }

    fn token_after(&self, item: &Item, index: bool) -> Result<String, StoreError> {
        // A page ending with `item`: both sides continue after it (a read of the view
        // compares by key, so continuing the table beneath after the same key is exact).
        let raw = self.scratch_item(item.clone())?;
        Position {
            scratch: Some(self.table.token_after(&raw, index)?),
            table: Some(self.table.token_after(item, index)?),
            ..Position::default()
        }
        .encode()
    }
}
