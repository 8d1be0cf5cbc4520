//! [`DynamoTable`]: the single item table ([`Table`]) on DynamoDB, plus
//! [`create_table_if_missing`] for tests and the local runner.
//!
//! Schema: partition key `pk` (S), sort key `sk` (S); global secondary index `gsi1` on
//! `gsi1pk` (S) / `gsi1sk` (S), projecting all attributes; `version` (N); `expires_at` (N,
//! the TTL attribute); `body` (S). The body is stored as its JSON text rather than as a
//! DynamoDB map: it round-trips exactly (DynamoDB numbers would lose the difference
//! between `1` and `1.0`, and a map would need a second encoding of JSON types), costs no
//! conversion code, and the table never filters on body fields.
//!
//! What this adapter adds to plain DynamoDB so that it keeps the [`Table`] contract:
//! - expired items are dropped from every read, since DynamoDB deletes them up to days
//!   late, and count as absent for conditions (`NotExists` succeeds on an expired item,
//!   `VersionIs` fails on one);
//! - queries ask for one item more than the page holds, so `next` is `None` exactly
//!   when nothing follows; paging tokens are the base64url JSON of the last item's key
//!   (`pk`, `sk`, and `gsi1pk`, `gsi1sk` for the index) and must name the partition read;
//! - a cancelled transaction's `CancellationReasons` name the item whose condition
//!   failed in the [`StoreError::Conflict`];
//! - transactions DynamoDB would refuse (none, over 100 writes, two writes on one item,
//!   an empty key) are refused before anything is sent, as the non-retryable
//!   [`StoreError::Corrupt`] starting `invalid transaction`, like the embedded table.
//!
//! A single unconditional put or delete is a plain `PutItem` / `DeleteItem` (half the
//! cost of a transaction, and idempotent). Every conditional write goes through
//! `TransactWriteItems`, whose client request token (filled in by the SDK and kept across
//! its retries) makes a retried call after a lost answer succeed instead of failing its
//! own condition.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CancellationReason, Delete, GlobalSecondaryIndex, IndexStatus,
    KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType, Put, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus, TransactWriteItem,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tandem_domain::ports::{Clock, Condition, IndexKey, Item, Query, QueryPage, StoreError, SystemClock, Table, Write};
use tandem_domain::table_rules::validate;

use crate::error::{AwsError, AwsErrorKind};

/// The partition key attribute.
pub const PK: &str = "pk";
/// The sort key attribute.
pub const SK: &str = "sk";
/// The global secondary index.
pub const GSI1: &str = "gsi1";
/// The index's partition key attribute.
pub const GSI1_PK: &str = "gsi1pk";
/// The index's sort key attribute.
pub const GSI1_SK: &str = "gsi1sk";
/// The item version attribute (N).
pub const VERSION: &str = "version";
/// The TTL attribute (N, epoch seconds).
pub const EXPIRES_AT: &str = "expires_at";
/// The JSON body attribute (S).
pub const BODY: &str = "body";
pub use tandem_domain::table_rules::MAX_TRANSACTION_WRITES;
/// The most keys one `BatchGetItem` call may ask for.
pub const MAX_BATCH_GET: usize = 100;

const SERVICE: &str = "DynamoDB";
/// How often keys DynamoDB left unprocessed are asked for again before giving up.
const BATCH_RETRIES: u32 = 8;
/// How long [`create_table_if_missing`] waits for the table to become active.
const ACTIVE_WAIT: Duration = Duration::from_secs(120);

type AttrMap = HashMap<String, AttributeValue>;

/// The single item table on DynamoDB (see the module docs).
#[derive(Clone)]
pub struct DynamoTable {
    client: Client,
    table: String,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DynamoTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoTable").field("table", &self.table).finish_non_exhaustive()
    }
}

impl DynamoTable {
    /// The table `table_name`, reached through `client` (built once by the caller).
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self { client, table: table_name.into(), clock: Arc::new(SystemClock) }
    }

    /// The same table judging TTL expiry by `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The table's name.
    pub fn table_name(&self) -> &str {
        &self.table
    }

    fn now(&self) -> i64 {
        self.clock.now().unix()
    }

    /// One `BatchGetItem` of at most 100 keys, retrying the keys DynamoDB leaves unprocessed.
    async fn batch_get(&self, chunk: &[&(String, String)]) -> Result<Vec<Item>, StoreError> {
        let now = self.now();
        let mut out = Vec::with_capacity(chunk.len());
        let mut pending: Vec<AttrMap> = chunk.iter().map(|(pk, sk)| key(pk, sk)).collect();
        let mut attempt = 0u32;
        while !pending.is_empty() {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(true)
                .build()
                .map_err(|e| AwsError::build(SERVICE, "BatchGetItem", &e))?;
            let answer = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(SERVICE, "BatchGetItem", &e))?;
            let mut responses = answer.responses.unwrap_or_default();
            for raw in responses.remove(&self.table).unwrap_or_default() {
                let item = decode(&raw)?;
                if live(&item, now) {
                    out.push(item);
                }
            }
            let mut unprocessed = answer.unprocessed_keys.unwrap_or_default();
            pending = unprocessed.remove(&self.table).map(|k| k.keys).unwrap_or_default();
            if !pending.is_empty() {
                attempt += 1;
                if attempt > BATCH_RETRIES {
                    return Err(StoreError::Unavailable(format!(
                        "DynamoDB BatchGetItem left {} keys unprocessed after {BATCH_RETRIES} retries",
                        pending.len()
                    )));
                }
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
        Ok(out)
    }

    async fn put_item(&self, item: &Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(encode(item)))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, "PutItem", &e))?;
        Ok(())
    }

    async fn delete_item(&self, pk: &str, sk: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, "DeleteItem", &e))?;
        Ok(())
    }

    fn transact_item(&self, w: &Write, now: i64) -> Result<TransactWriteItem, StoreError> {
        let built = |e| StoreError::from(AwsError::build(SERVICE, "TransactWriteItems", &e));
        Ok(match w {
            Write::Put { item, condition } => {
                let mut put = Put::builder().table_name(&self.table).set_item(Some(encode(item)));
                if let Some(c) = condition_expression(*condition, now) {
                    put = put
                        .condition_expression(c.expression)
                        .set_expression_attribute_names(Some(c.names))
                        .set_expression_attribute_values(Some(c.values));
                }
                TransactWriteItem::builder().put(put.build().map_err(built)?).build()
            }
            Write::Delete { pk, sk } => {
                let delete = Delete::builder().table_name(&self.table).set_key(Some(key(pk, sk))).build();
                TransactWriteItem::builder().delete(delete.map_err(built)?).build()
            }
        })
    }

    /// Reads one page of the table (`index` false) or of `gsi1` (`index` true).
    async fn read_range(&self, index: bool, pk: &str, q: &Query) -> Result<QueryPage, StoreError> {
        let (pk_attr, sk_attr) = if index { (GSI1_PK, GSI1_SK) } else { (PK, SK) };
        let limit = q.limit.max(1);
        let mut start = q.after.as_deref().map(|t| decode_token(t, index, pk)).transpose()?;
        let mut expression = "#pk = :pk".to_string();
        let mut names = HashMap::from([("#pk".to_string(), pk_attr.to_string())]);
        let mut values = HashMap::from([(":pk".to_string(), AttributeValue::S(pk.to_string()))]);
        if let Some(prefix) = q.sk_prefix.as_deref().filter(|p| !p.is_empty()) {
            expression.push_str(" AND begins_with(#sk, :prefix)");
            names.insert("#sk".into(), sk_attr.into());
            values.insert(":prefix".into(), AttributeValue::S(prefix.to_string()));
        }
        let operation = if index { "Query (gsi1)" } else { "Query" };
        let now = self.now();
        let mut items: Vec<Item> = Vec::new();
        // One item more than the page holds tells whether anything follows.
        while items.len() <= limit {
            let want = i32::try_from(limit + 1 - items.len()).unwrap_or(i32::MAX);
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.then(|| GSI1.to_string()))
                .key_condition_expression(&expression)
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(!q.descending)
                .limit(want)
                .set_exclusive_start_key(start.take())
                .consistent_read(!index)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(SERVICE, operation, &e))?;
            for raw in out.items() {
                let item = decode(raw)?;
                if live(&item, now) {
                    items.push(item);
                }
            }
            match out.last_evaluated_key {
                Some(last) => start = Some(last),
                None => break,
            }
        }
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|last| encode_token(last, index)).transpose()?
        } else {
            None
        };
        Ok(QueryPage { items, next })
    }
}

#[async_trait]
impl Table for DynamoTable {
    fn token_after(&self, item: &Item, index: bool) -> Result<String, StoreError> {
        encode_token(item, index)
    }
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, "GetItem", &e))?;
        let now = self.now();
        match out.item() {
            Some(raw) => Ok(Some(decode(raw)?).filter(|item| live(item, now))),
            None => Ok(None),
        }
    }

    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Item>, StoreError> {
        // BatchGetItem refuses duplicate keys and takes 100 at a time: the chunks go
        // concurrently, so a page's batch read is one round trip however many keys it has.
        let mut seen = HashSet::with_capacity(keys.len());
        let unique: Vec<&(String, String)> = keys.iter().filter(|k| seen.insert(*k)).collect();
        let chunks = unique.chunks(MAX_BATCH_GET).map(|chunk| self.batch_get(chunk));
        let mut out = Vec::with_capacity(unique.len());
        for items in futures::future::join_all(chunks).await {
            out.extend(items?);
        }
        Ok(out)
    }

    async fn query(&self, pk: &str, q: &Query) -> Result<QueryPage, StoreError> {
        self.read_range(false, pk, q).await
    }

    async fn query_index(&self, pk: &str, q: &Query) -> Result<QueryPage, StoreError> {
        self.read_range(true, pk, q).await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        validate(&writes)?;
        match writes.as_slice() {
            [Write::Put { item, condition: Condition::None }] => return self.put_item(item).await,
            [Write::Delete { pk, sk }] => return self.delete_item(pk, sk).await,
            _ => {}
        }
        let now = self.now();
        let items = writes.iter().map(|w| self.transact_item(w, now)).collect::<Result<Vec<_>, _>>()?;
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(()),
            Err(err) => match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
                    Err(cancelled(&writes, e.cancellation_reasons()))
                }
                _ => Err(AwsError::from_sdk(SERVICE, "TransactWriteItems", &err).into()),
            },
        }
    }
}

/// Creates the table (on-demand billing, the `gsi1` index, TTL on `expires_at`) unless it
/// exists, waits until it is active, and makes sure TTL is on. Safe to call every start.
pub async fn create_table_if_missing(client: &Client, name: &str) -> Result<(), AwsError> {
    const OP: &str = "CreateTable";
    let built = |e| AwsError::build(SERVICE, OP, &e);
    let attribute = |n: &str| {
        AttributeDefinition::builder().attribute_name(n).attribute_type(ScalarAttributeType::S).build().map_err(built)
    };
    let key_element = |n: &str, t: KeyType| KeySchemaElement::builder().attribute_name(n).key_type(t).build();
    let gsi = GlobalSecondaryIndex::builder()
        .index_name(GSI1)
        .key_schema(key_element(GSI1_PK, KeyType::Hash).map_err(built)?)
        .key_schema(key_element(GSI1_SK, KeyType::Range).map_err(built)?)
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
        .map_err(built)?;
    let created = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(PK)?)
        .attribute_definitions(attribute(SK)?)
        .attribute_definitions(attribute(GSI1_PK)?)
        .attribute_definitions(attribute(GSI1_SK)?)
        .key_schema(key_element(PK, KeyType::Hash).map_err(built)?)
        .key_schema(key_element(SK, KeyType::Range).map_err(built)?)
        .global_secondary_indexes(gsi)
        .send()
        .await;
    match created {
        Ok(_) => tracing::info!(table = name, "created the DynamoDB table"),
        Err(e) => {
            let e = AwsError::from_sdk(SERVICE, OP, &e);
            if e.kind != AwsErrorKind::AlreadyExists {
                return Err(e);
            }
        }
    }
    wait_until_active(client, name).await?;
    enable_ttl(client, name).await
}

async fn wait_until_active(client: &Client, name: &str) -> Result<(), AwsError> {
    const OP: &str = "DescribeTable";
    let started = std::time::Instant::now();
    loop {
        let out =
            client.describe_table().table_name(name).send().await.map_err(|e| AwsError::from_sdk(SERVICE, OP, &e))?;
        let table = out.table.ok_or_else(|| AwsError::unexpected(SERVICE, OP, "no table description"))?;
        let indexes_active =
            table.global_secondary_indexes().iter().all(|i| i.index_status() == Some(&IndexStatus::Active));
        if table.table_status() == Some(&TableStatus::Active) && indexes_active {
            return Ok(());
        }
        if started.elapsed() > ACTIVE_WAIT {
            return Err(AwsError {
                kind: AwsErrorKind::Transient,
                service: SERVICE,
                operation: OP,
                code: None,
                message: format!("table {name} is still not active after {ACTIVE_WAIT:?}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn enable_ttl(client: &Client, name: &str) -> Result<(), AwsError> {
    let out = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk(SERVICE, "DescribeTimeToLive", &e))?;
    if let Some(ttl) = out.time_to_live_description()
        && matches!(ttl.time_to_live_status(), Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling))
    {
        if ttl.attribute_name() != Some(EXPIRES_AT) {
            tracing::warn!(table = name, attribute = ?ttl.attribute_name(), "TTL is on, but not on {EXPIRES_AT}");
        }
        return Ok(());
    }
    let spec = TimeToLiveSpecification::builder()
        .attribute_name(EXPIRES_AT)
        .enabled(true)
        .build()
        .map_err(|e| AwsError::build(SERVICE, "UpdateTimeToLive", &e))?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(spec)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk(SERVICE, "UpdateTimeToLive", &e))?;
    Ok(())
}

// ---- items

fn key(pk: &str, sk: &str) -> AttrMap {
    HashMap::from([
        (PK.to_string(), AttributeValue::S(pk.to_string())),
        (SK.to_string(), AttributeValue::S(sk.to_string())),
    ])
}

fn encode(item: &Item) -> AttrMap {
    let mut m = key(&item.pk, &item.sk);
    m.insert(VERSION.into(), AttributeValue::N(item.version.to_string()));
    if let Some(g) = &item.gsi1 {
        m.insert(GSI1_PK.into(), AttributeValue::S(g.pk.clone()));
        m.insert(GSI1_SK.into(), AttributeValue::S(g.sk.clone()));
    }
    if let Some(at) = item.expires_at {
        m.insert(EXPIRES_AT.into(), AttributeValue::N(at.to_string()));
    }
    m.insert(BODY.into(), AttributeValue::S(item.body.to_string()));
    m
}

fn corrupt(pk: &str, why: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("DynamoDB item {pk}: {why}"))
}

fn string_attr<'a>(m: &'a AttrMap, pk: &str, name: &str) -> Result<Option<&'a str>, StoreError> {
    match m.get(name) {
        None => Ok(None),
        Some(AttributeValue::S(s)) => Ok(Some(s)),
        Some(_) => Err(corrupt(pk, format!("attribute {name} is not a string"))),
    }
}

fn number_attr<T: std::str::FromStr>(m: &AttrMap, pk: &str, name: &str) -> Result<Option<T>, StoreError> {
    match m.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(n)) => {
            n.parse().map(Some).map_err(|_| corrupt(pk, format!("attribute {name} = {n} is out of range")))
        }
        Some(_) => Err(corrupt(pk, format!("attribute {name} is not a number"))),
    }
}

fn decode(m: &AttrMap) -> Result<Item, StoreError> {
    let pk = string_attr(m, "?", PK)?.ok_or_else(|| corrupt("?", "no pk"))?;
    let sk = string_attr(m, pk, SK)?.ok_or_else(|| corrupt(pk, "no sk"))?;
    let version = number_attr(m, pk, VERSION)?.ok_or_else(|| corrupt(pk, "no version"))?;
    let gsi1 = match (string_attr(m, pk, GSI1_PK)?, string_attr(m, pk, GSI1_SK)?) {
        (Some(gpk), Some(gsk)) => Some(IndexKey { pk: gpk.to_string(), sk: gsk.to_string() }),
        (None, None) => None,
        _ => return Err(corrupt(pk, "only one of gsi1pk and gsi1sk")),
    };
    let expires_at = number_attr(m, pk, EXPIRES_AT)?;
    let body = string_attr(m, pk, BODY)?.ok_or_else(|| corrupt(pk, "no body"))?;
    let body = serde_json::from_str(body).map_err(|e| corrupt(pk, format!("body is not JSON: {e}")))?;
    Ok(Item { pk: pk.to_string(), sk: sk.to_string(), version, gsi1, expires_at, body })
}

/// Whether an item is visible at `now`: DynamoDB TTL semantics, expired once `expires_at`
/// is in the past (the same rule as the embedded table).
fn live(item: &Item, now: i64) -> bool {
    item.expires_at.is_none_or(|at| at >= now)
}

// ---- paging tokens

fn encode_token(last: &Item, index: bool) -> Result<String, StoreError> {
    let mut key = BTreeMap::from([(PK, last.pk.as_str()), (SK, last.sk.as_str())]);
    if index {
        let g = last.gsi1.as_ref().ok_or_else(|| corrupt(&last.pk, "read from gsi1 without an index key"))?;
        key.insert(GSI1_PK, &g.pk);
        key.insert(GSI1_SK, &g.sk);
    }
    let json =
        serde_json::to_vec(&key).map_err(|e| StoreError::Corrupt(format!("cannot encode a paging token: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

/// The `ExclusiveStartKey` in a token, which must be a key of the partition `pk` read.
fn decode_token(token: &str, index: bool, pk: &str) -> Result<AttrMap, StoreError> {
    let bad = || StoreError::InvalidToken(format!("{token:?} is not a token this table issued"));
    let json = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let key: BTreeMap<String, String> = serde_json::from_slice(&json).map_err(|_| bad())?;
    let (wanted, partition): (&[&str], &str) =
        if index { (&[GSI1_PK, GSI1_SK, PK, SK], GSI1_PK) } else { (&[PK, SK], PK) };
    let shape_ok = key.len() == wanted.len() && wanted.iter().all(|k| key.contains_key(*k));
    if !shape_ok || key.get(partition).map(String::as_str) != Some(pk) {
        return Err(bad());
    }
    Ok(key.into_iter().map(|(k, v)| (k, AttributeValue::S(v))).collect())
}

// ---- transactions

struct ConditionExpression {
    expression: String,
    names: HashMap<String, String>,
    values: AttrMap,
}

/// The condition of a put; expired items count as absent.
fn condition_expression(condition: Condition, now: i64) -> Option<ConditionExpression> {
    let now = (":now".to_string(), AttributeValue::N(now.to_string()));
    match condition {
        Condition::None => None,
        Condition::NotExists => Some(ConditionExpression {
            expression: "attribute_not_exists(#pk) OR #exp < :now".into(),
            names: HashMap::from([("#pk".into(), PK.into()), ("#exp".into(), EXPIRES_AT.into())]),
            values: HashMap::from([now]),
        }),
        Condition::VersionIs(v) => Some(ConditionExpression {
            expression: "#ver = :ver AND (attribute_not_exists(#exp) OR #exp >= :now)".into(),
            names: HashMap::from([("#ver".into(), VERSION.into()), ("#exp".into(), EXPIRES_AT.into())]),
            values: HashMap::from([(":ver".into(), AttributeValue::N(v.to_string())), now]),
        }),
    }
}

fn write_key(w: &Write) -> (&str, &str) {
    match w {
        Write::Put { item, .. } => (&item.pk, &item.sk),
        Write::Delete { pk, sk } => (pk, sk),
    }
}

/// The store error for a cancelled transaction, from its reasons (one per write, in order).
fn cancelled(writes: &[Write], reasons: &[CancellationReason]) -> StoreError {
    let mut failed = Vec::new();
    let mut busy = Vec::new();
    let mut throttled = Vec::new();
    let mut refused = Vec::new();
    for (w, reason) in writes.iter().zip(reasons) {
        let (pk, sk) = write_key(w);
        let message = reason.message().unwrap_or("no message");
        match reason.code() {
            None | Some("None") => {}
            Some("ConditionalCheckFailed") => failed.push(match w {
                Write::Put { condition: Condition::NotExists, .. } => format!("item {pk} / {sk} already exists"),
                Write::Put { condition: Condition::VersionIs(v), .. } => {
                    format!("item {pk} / {sk} does not exist at version {v}")
                }
                _ => format!("item {pk} / {sk}: condition failed"),
            }),
            Some("TransactionConflict") => {
                busy.push(format!("item {pk} / {sk} is being written by another transaction"))
            }
            Some(code @ ("ThrottlingError" | "ProvisionedThroughputExceeded" | "RequestLimitExceeded")) => {
                throttled.push(format!("item {pk} / {sk}: {code}"))
            }
            Some(code) => refused.push(format!("item {pk} / {sk}: {code}: {message}")),
        }
    }
    if !failed.is_empty() {
        StoreError::Conflict(failed.join("; "))
    } else if !busy.is_empty() {
        StoreError::Conflict(busy.join("; "))
    } else if !throttled.is_empty() {
        StoreError::Unavailable(format!("DynamoDB throttled the transaction: {}", throttled.join("; ")))
    } else if !refused.is_empty() {
        StoreError::Corrupt(format!("invalid transaction (DynamoDB refused it): {}", refused.join("; ")))
    } else {
        let conditional: Vec<String> = writes
            .iter()
            .filter(|w| matches!(w, Write::Put { condition: Condition::NotExists | Condition::VersionIs(_), .. }))
            .map(|w| {
                let (pk, sk) = write_key(w);
                format!("{pk} / {sk}")
            })
            .collect();
        StoreError::Conflict(format!(
            "DynamoDB cancelled the transaction without a reason; its conditional items: {}",
            conditional.join(", ")
        ))
    }
}

/// The wait before retry `attempt` (1-based): 50 ms doubling, at most 2 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(50u64.saturating_mul(1 << attempt.min(6))).min(Duration::from_secs(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pk: &str, sk: &str) -> Item {
        Item {
            pk: pk.into(),
            sk: sk.into(),
            version: 3,
            gsi1: Some(IndexKey { pk: "g".into(), sk: "2024#1".into() }),
            expires_at: Some(1_700_000_000),
            body: serde_json::json!({ "n": 1.0, "big": u64::MAX, "s": "é", "list": [null, true] }),
        }
    }

    fn put(item: Item, condition: Condition) -> Write {
        Write::Put { item, condition }
    }

    #[test]
    fn an_item_round_trips_through_its_attributes_exactly() {
        let i = item("p", "s");
        assert_eq!(decode(&encode(&i)).unwrap(), i);
        let plain = Item { gsi1: None, expires_at: None, ..item("p", "s") };
        let attrs = encode(&plain);
        assert!(!attrs.contains_key(GSI1_PK) && !attrs.contains_key(EXPIRES_AT));
        assert_eq!(decode(&attrs).unwrap(), plain);
    }

    #[test]
    fn an_item_with_a_malformed_attribute_is_corrupt_and_named() {
        let mut attrs = encode(&item("p-1", "s"));
        attrs.insert(BODY.into(), AttributeValue::S("{not json".into()));
        assert!(matches!(decode(&attrs), Err(StoreError::Corrupt(m)) if m.contains("p-1")));
        let mut attrs = encode(&item("p-1", "s"));
        attrs.remove(GSI1_SK);
        assert!(matches!(decode(&attrs), Err(StoreError::Corrupt(_))));
        let mut attrs = encode(&item("p-1", "s"));
        attrs.insert(VERSION.into(), AttributeValue::N("-1".into()));
        assert!(matches!(decode(&attrs), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn a_paging_token_carries_the_key_of_the_partition_it_came_from() {
        let i = item("p", "s");
        let token = encode_token(&i, false).unwrap();
        let key = decode_token(&token, false, "p").unwrap();
        assert_eq!(key, super::key("p", "s"));
        assert!(decode_token(&token, false, "other").is_err(), "a token of another partition is refused");
        assert!(decode_token(&token, true, "g").is_err(), "a table token is not an index token");
        let token = encode_token(&i, true).unwrap();
        let key = decode_token(&token, true, "g").unwrap();
        assert_eq!(key.len(), 4);
        assert_eq!(key.get(GSI1_SK), Some(&AttributeValue::S("2024#1".into())));
        assert!(matches!(decode_token("not a token!", false, "p"), Err(StoreError::InvalidToken(_))));
    }

    #[test]
    fn invalid_transactions_are_refused_before_sending() {
        let too_many: Vec<Write> = (0..101).map(|n| put(item(&format!("p{n}"), "s"), Condition::None)).collect();
        let twice = vec![put(item("p", "s"), Condition::None), Write::Delete { pk: "p".into(), sk: "s".into() }];
        let empty = vec![put(item("", "s"), Condition::None)];
        let empty_index = vec![put(
            Item { gsi1: Some(IndexKey { pk: "g".into(), sk: String::new() }), ..item("p", "s") },
            Condition::None,
        )];
        for writes in [vec![], too_many, twice, empty, empty_index] {
            let err = validate(&writes).unwrap_err();
            assert!(!err.is_retryable() && err.to_string().contains("invalid transaction"), "{err}");
        }
        let hundred: Vec<Write> = (0..100).map(|n| put(item(&format!("p{n}"), "s"), Condition::None)).collect();
        assert!(validate(&hundred).is_ok());
    }

    #[test]
    fn a_cancelled_transaction_names_the_item_whose_condition_failed() {
        let writes = vec![
            put(item("a", "A"), Condition::None),
            put(item("b", "B"), Condition::VersionIs(4)),
            put(item("c", "C"), Condition::NotExists),
        ];
        let reason = |code: &str| CancellationReason::builder().code(code).build();
        let err = cancelled(&writes, &[reason("None"), reason("None"), reason("ConditionalCheckFailed")]);
        assert!(
            matches!(&err, StoreError::Conflict(m) if m.contains("item c / C already exists") && !m.contains("b /")),
            "{err}"
        );
        let err = cancelled(&writes, &[reason("None"), reason("ConditionalCheckFailed"), reason("None")]);
        assert!(matches!(&err, StoreError::Conflict(m) if m.contains("b / B") && m.contains("version 4")), "{err}");
        let err = cancelled(&writes, &[reason("ThrottlingError"), reason("None"), reason("None")]);
        assert!(matches!(err, StoreError::Unavailable(_)));
        let err = cancelled(&writes, &[reason("ValidationError"), reason("None"), reason("None")]);
        assert!(matches!(err, StoreError::Corrupt(_)));
        let err = cancelled(&writes, &[]);
        assert!(matches!(&err, StoreError::Conflict(m) if m.contains("b / B") && m.contains("c / C")), "{err}");
    }

    #[test]
    fn conditions_treat_expired_items_as_absent() {
        let c = condition_expression(Condition::NotExists, 1_000).unwrap();
        assert_eq!(c.expression, "attribute_not_exists(#pk) OR #exp < :now");
        assert_eq!(c.values.get(":now"), Some(&AttributeValue::N("1000".into())));
        let c = condition_expression(Condition::VersionIs(7), 1_000).unwrap();
        assert!(c.expression.starts_with("#ver = :ver AND"));
        assert_eq!(c.values.get(":ver"), Some(&AttributeValue::N("7".into())));
        assert!(condition_expression(Condition::None, 1_000).is_none());
    }

    #[test]
    fn an_item_is_live_until_its_expiry_second_has_passed() {
        let i = item("p", "s");
        assert!(live(&i, 1_700_000_000));
        assert!(!live(&i, 1_700_000_001));
        assert!(live(&Item { expires_at: None, ..i }, i64::MAX));
    }

    #[test]
    fn batch_retries_back_off_up_to_two_seconds() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(30), Duration::from_secs(2));
    }
}
