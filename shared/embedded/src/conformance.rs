//! The conformance suite every [`Table`] and [`SecretStore`] adapter passes: the embedded
//! ones in this crate's tests, the AWS ones in theirs. It is a test suite compiled as
//! ordinary code so other crates can call it; it panics on the first failed check.
//!
//! Every run works under fresh key prefixes and tenants, so one table (or secret store)
//! may be shared by tests running in parallel and by earlier runs. Reads of the secondary
//! index are retried for a few seconds before failing, as DynamoDB's global secondary
//! indexes are only eventually consistent; every other read must be strongly consistent.
//!
//! Contract points an adapter may not get for free from its backend: expired items are
//! absent from every read even before the backend deletes them; `QueryPage::next` is
//! `None` whenever no further item exists (also after a page that was exactly full); a
//! failed condition is `StoreError::Conflict` naming the item's partition key; invalid
//! transactions (over 100 writes, two writes on one item) are refused and write nothing.

// A test suite: panicking on a failed check is its purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tandem_domain::external::Cursor;
use tandem_domain::ids::{JobId, RecordId, RecordKind, System, TenantId};
use tandem_domain::job::{Job, JobStatus};
use tandem_domain::ledger::{ExtVersion, Ledger};
use tandem_domain::log::{Direction, LogEntry, LogFilter, Outcome, SkipReason};
use tandem_domain::normalise::Timestamp;
use tandem_domain::ports::{
    Clock, Condition, IndexKey, Item, Query, QueryPage, SecretError, SecretStore, StoreError, SystemClock, Table, Write,
};
use tandem_domain::records::{CompanyFields, CompanyRecord, LookupField, Meta, Record};
use tandem_domain::secret::{ConnectWiseCredentials, Credentials, SecretString};
use tandem_domain::table::{RecordStore, RecordWrite};

/// How long eventually-consistent reads are retried.
const SETTLE: Duration = Duration::from_secs(10);

/// A name no other run or parallel test uses: `conf-{tag}-{pid}-{time}-{n}` (at most 64
/// characters, valid as a tenant id).
pub fn unique(tag: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let tag: String = tag.chars().take(12).collect();
    format!("conf-{tag}-{}-{:x}-{n}", std::process::id(), nanos & 0xffff_ffff_ffff)
}

/// Runs every table check against `table`.
pub async fn table_suite(table: Arc<dyn Table>) {
    missing_items_are_absent(&*table).await;
    conditional_puts_check_existence_and_version(&*table).await;
    transactions_are_all_or_nothing(&*table).await;
    invalid_transactions_write_nothing(&*table).await;
    deletes_remove_items(&*table).await;
    get_many_returns_only_existing_items(&*table).await;
    queries_read_one_partition_in_sort_key_order(&*table).await;
    query_paging_visits_every_item_once(&*table).await;
    index_queries_read_in_index_order_and_page(&*table).await;
    index_entries_follow_their_items(&*table).await;
    expired_items_are_invisible(&*table).await;
    let store = RecordStore::new(table);
    record_store_keeps_tenants_apart(&store).await;
    record_store_writes_are_all_or_nothing(&store).await;
    record_store_updates_replace_lookups(&store).await;
    record_store_lists_every_record_once(&store).await;
    record_store_logs_once_and_filters_by_outcome(&store).await;
    record_store_reads_a_days_changes_back_only_as_far_as_asked(&store).await;
    record_store_jobs_are_versioned_and_listed_newest_first(&store).await;
    record_store_refuses_paging_tokens_it_did_not_issue(&store).await;
    record_store_lists_past_a_record_that_no_longer_parses(&store).await;
    record_store_lets_one_of_racing_import_claims_win(&store).await;
    record_store_frees_the_run_marker_when_the_job_ends(&store).await;
    record_store_moves_the_ledger_without_touching_the_record(&store).await;
    record_store_migrates_link_versions_kept_in_old_record_bodies(&store).await;
    record_store_keeps_dead_letters_once_per_tenant_newest_first_and_paged(&store).await;
}

/// Runs every secret-store check against `store`.
pub async fn secret_suite(store: Arc<dyn SecretStore>) {
    let a = TenantId::parse(&unique("sa")).unwrap();
    let b = TenantId::parse(&unique("sb")).unwrap();
    match store.get(&a, System::ConnectWise).await {
        Err(SecretError::NotFound(name)) => assert!(name.contains(a.as_str()), "{name}"),
        other => panic!("a missing secret must be NotFound, got {other:?}"),
    }
    let name = store.put(&a, System::ConnectWise, &creds("first")).await.unwrap();
    assert!(name.contains(a.as_str()), "the secret name {name} names its tenant");
    assert_eq!(store.get(&a, System::ConnectWise).await.unwrap(), creds("first"), "put then get round-trips");
    let again = store.put(&a, System::ConnectWise, &creds("second")).await.unwrap();
    assert_eq!(again, name, "one secret per connection");
    assert_eq!(store.get(&a, System::ConnectWise).await.unwrap(), creds("second"), "a put overwrites");
    assert!(
        matches!(store.get(&b, System::ConnectWise).await, Err(SecretError::NotFound(_))),
        "tenant B cannot read tenant A's secret"
    );
    assert!(matches!(store.get(&a, System::Halo).await, Err(SecretError::NotFound(_))), "secrets are per system");
    store.put(&b, System::ConnectWise, &creds("bee")).await.unwrap();
    assert_eq!(store.get(&a, System::ConnectWise).await.unwrap(), creds("second"), "B's put left A alone");
    assert_eq!(store.get(&b, System::ConnectWise).await.unwrap(), creds("bee"));
    store.invalidate(&a, System::ConnectWise).await;
    assert_eq!(store.get(&a, System::ConnectWise).await.unwrap(), creds("second"), "invalidate drops only caches");
}

// ---- helpers

fn creds(private_key: &str) -> Credentials {
    Credentials::ConnectWise(ConnectWiseCredentials {
        site: "http://127.0.0.1:9".into(),
        company_id: "acme".into(),
        public_key: "public".into(),
        private_key: SecretString::new(private_key),
        client_id: "client".into(),
    })
}

fn item(pk: &str, sk: &str, version: u64) -> Item {
    Item {
        pk: pk.into(),
        sk: sk.into(),
        version,
        gsi1: None,
        expires_at: None,
        body: serde_json::json!({ "sk": sk, "version": version, "nested": { "list": [1, "two", null, true] } }),
    }
}

fn indexed(pk: &str, sk: &str, gsi_pk: &str, gsi_sk: &str) -> Item {
    Item { gsi1: Some(IndexKey { pk: gsi_pk.into(), sk: gsi_sk.into() }), ..item(pk, sk, 1) }
}

fn put(item: Item, condition: Condition) -> Write {
    Write::Put { item, condition }
}

fn delete(pk: &str, sk: &str) -> Write {
    Write::Delete { pk: pk.into(), sk: sk.into() }
}

async fn write_all(table: &dyn Table, items: Vec<Item>) {
    for chunk in items.chunks(25) {
        let writes = chunk.iter().cloned().map(|i| put(i, Condition::None)).collect();
        table.transact(writes).await.unwrap();
    }
}

fn sort_keys(page: &QueryPage) -> Vec<String> {
    page.items.iter().map(|i| i.sk.clone()).collect()
}

fn query(limit: usize, descending: bool, prefix: Option<&str>) -> Query {
    Query { sk_prefix: prefix.map(str::to_string), after: None, limit, descending }
}

fn now() -> Timestamp {
    // Whole seconds, so stored timestamps compare equal after a round trip.
    Timestamp::from_unix(SystemClock.now().unix()).unwrap()
}

fn tenant(tag: &str) -> TenantId {
    TenantId::parse(&unique(tag)).unwrap()
}

/// Retries `check` until it holds, for reads of eventually consistent indexes.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = std::time::Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(start.elapsed() < SETTLE, "{what}: still not true after {SETTLE:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads every page of a query, checking each page's size and `next`.
async fn read_pages(table: &dyn Table, pk: &str, base: &Query, index: bool) -> Vec<Item> {
    let limit = base.limit.max(1);
    let mut all = Vec::new();
    let mut q = base.clone();
    for _ in 0..10_000 {
        let page = if index { table.query_index(pk, &q).await } else { table.query(pk, &q).await }.unwrap();
        assert!(page.items.len() <= limit, "a page holds at most the limit ({limit}), got {}", page.items.len());
        all.extend(page.items);
        match page.next {
            Some(next) => q.after = Some(next),
            None => return all,
        }
    }
    panic!("paging {pk} never ended");
}

fn assert_conflict(result: Result<(), StoreError>, pk: &str, what: &str) {
    match result {
        Err(StoreError::Conflict(msg)) => assert!(msg.contains(pk), "{what}: the conflict {msg:?} names {pk}"),
        other => panic!("{what}: expected a conflict, got {other:?}"),
    }
}

fn company(name: &str, phone: Option<&str>, website: Option<&str>, at: Timestamp) -> Record {
    Record::Company(CompanyRecord {
        meta: Meta::new(at),
        fields: CompanyFields {
            name: name.into(),
            phone: phone.map(str::to_string),
            website: website.map(str::to_string),
            company_type: tandem_domain::vocab::CompanyType::parse("customer").unwrap(),
            ..CompanyFields::default()
        },
    })
}

fn log_entry(t: &TenantId, id: &str, at: Timestamp, outcome: Outcome, crm_id: Option<RecordId>) -> LogEntry {
    LogEntry {
        id: id.into(),
        tenant: t.clone(),
        at,
        system: System::ConnectWise,
        direction: Direction::Import,
        object: RecordKind::Company,
        crm_id,
        external_id: Some(format!("ext-{id}")),
        outcome,
        job_id: None,
        matched: None,
        fields: Vec::new(),
        conflicts: Vec::new(),
        error: None,
    }
}

fn lookup(record: &Record, field: LookupField) -> String {
    record.lookup_keys().into_iter().find(|(f, _)| *f == field).map(|(_, v)| v).unwrap()
}

// ---- raw table checks

async fn missing_items_are_absent(table: &dyn Table) {
    let p = unique("missing");
    assert_eq!(table.get(&p, "A").await.unwrap(), None, "get of a missing item is None");
    let keys = vec![(p.clone(), "A".to_string()), (p.clone(), "B".to_string())];
    assert!(table.get_many(&keys).await.unwrap().is_empty(), "get_many of missing items is empty");
    let page = table.query(&p, &query(10, false, None)).await.unwrap();
    assert!(page.items.is_empty() && page.next.is_none(), "a query of an empty partition is empty");
    let page = table.query_index(&p, &query(10, false, None)).await.unwrap();
    assert!(page.items.is_empty() && page.next.is_none(), "an index query of an empty partition is empty");
}

async fn conditional_puts_check_existence_and_version(table: &dyn Table) {
    let p = unique("cond");
    let first = item(&p, "A", 1);
    table.transact(vec![put(first.clone(), Condition::NotExists)]).await.unwrap();
    assert_eq!(table.get(&p, "A").await.unwrap(), Some(first.clone()), "a put round-trips the item exactly");

    let again = item(&p, "A", 9);
    assert_conflict(table.transact(vec![put(again, Condition::NotExists)]).await, &p, "NotExists on an existing item");
    assert_eq!(table.get(&p, "A").await.unwrap(), Some(first), "a refused put changes nothing");

    assert_conflict(
        table.transact(vec![put(item(&p, "A", 6), Condition::VersionIs(5))]).await,
        &p,
        "VersionIs with the wrong version",
    );
    let second = item(&p, "A", 2);
    table.transact(vec![put(second.clone(), Condition::VersionIs(1))]).await.unwrap();
    assert_eq!(table.get(&p, "A").await.unwrap(), Some(second), "the stored version is the put's");
    assert_conflict(
        table.transact(vec![put(item(&p, "A", 2), Condition::VersionIs(1))]).await,
        &p,
        "VersionIs with a version that was current before",
    );
    assert_conflict(
        table.transact(vec![put(item(&p, "missing", 2), Condition::VersionIs(1))]).await,
        &p,
        "VersionIs on a missing item",
    );
    let forced = item(&p, "A", 7);
    table.transact(vec![put(forced.clone(), Condition::None)]).await.unwrap();
    assert_eq!(table.get(&p, "A").await.unwrap(), Some(forced), "a put without condition overwrites");
}

async fn transactions_are_all_or_nothing(table: &dyn Table) {
    let p = unique("tx");
    let (a, b, c, x) = (format!("{p}#a"), format!("{p}#b"), format!("{p}#c"), format!("{p}#x"));
    write_all(table, vec![item(&c, "C", 1), item(&x, "X", 1)]).await;
    let failing = vec![
        put(item(&a, "A", 1), Condition::NotExists),
        put(item(&b, "B", 1), Condition::None),
        delete(&c, "C"),
        put(item(&x, "X", 2), Condition::NotExists),
    ];
    assert_conflict(table.transact(failing).await, &x, "a transaction with one failed condition");
    assert_eq!(table.get(&a, "A").await.unwrap(), None, "the failed transaction wrote nothing");
    assert_eq!(table.get(&b, "B").await.unwrap(), None, "the failed transaction wrote nothing");
    assert!(table.get(&c, "C").await.unwrap().is_some(), "the failed transaction deleted nothing");
    assert_eq!(table.get(&x, "X").await.unwrap().map(|i| i.version), Some(1));

    let working = vec![
        put(item(&a, "A", 1), Condition::NotExists),
        put(item(&b, "B", 1), Condition::None),
        delete(&c, "C"),
        put(item(&x, "X", 2), Condition::VersionIs(1)),
    ];
    table.transact(working).await.unwrap();
    assert!(table.get(&a, "A").await.unwrap().is_some());
    assert!(table.get(&b, "B").await.unwrap().is_some());
    assert_eq!(table.get(&c, "C").await.unwrap(), None);
    assert_eq!(table.get(&x, "X").await.unwrap().map(|i| i.version), Some(2));
}

async fn invalid_transactions_write_nothing(table: &dyn Table) {
    let p = unique("invalid");
    let too_many: Vec<Write> = (0..101).map(|n| put(item(&format!("{p}#{n}"), "A", 1), Condition::None)).collect();
    assert!(table.transact(too_many).await.is_err(), "a transaction of 101 writes is refused");
    for n in [0, 50, 100] {
        assert_eq!(table.get(&format!("{p}#{n}"), "A").await.unwrap(), None, "the refused transaction wrote nothing");
    }
    let hundred: Vec<Write> = (0..100).map(|n| put(item(&format!("{p}#ok{n}"), "A", 1), Condition::None)).collect();
    table.transact(hundred).await.unwrap();
    assert!(table.get(&format!("{p}#ok99"), "A").await.unwrap().is_some(), "100 writes are allowed");

    let twice = vec![put(item(&format!("{p}#dup"), "A", 1), Condition::None), delete(&format!("{p}#dup"), "A")];
    assert!(table.transact(twice).await.is_err(), "two writes on one item in one transaction are refused");
    let twice = vec![
        put(item(&format!("{p}#other"), "A", 1), Condition::None),
        put(item(&format!("{p}#dup"), "A", 1), Condition::None),
        put(item(&format!("{p}#dup"), "A", 2), Condition::None),
    ];
    assert!(table.transact(twice).await.is_err(), "two puts on one item in one transaction are refused");
    assert_eq!(table.get(&format!("{p}#other"), "A").await.unwrap(), None, "the refused transaction wrote nothing");
    assert_eq!(table.get(&format!("{p}#dup"), "A").await.unwrap(), None);
}

async fn deletes_remove_items(table: &dyn Table) {
    let p = unique("del");
    write_all(table, vec![item(&p, "A", 1), item(&p, "B", 1)]).await;
    table.transact(vec![delete(&p, "A")]).await.unwrap();
    assert_eq!(table.get(&p, "A").await.unwrap(), None, "a deleted item is gone");
    assert!(table.get(&p, "B").await.unwrap().is_some(), "a delete removes one item only");
    table.transact(vec![delete(&p, "A")]).await.unwrap();
    table.transact(vec![delete(&p, "never")]).await.unwrap();
    assert_eq!(sort_keys(&table.query(&p, &query(10, false, None)).await.unwrap()), ["B"]);
}

async fn get_many_returns_only_existing_items(table: &dyn Table) {
    let p = unique("many");
    write_all(table, vec![item(&p, "A", 1), item(&format!("{p}#2"), "B", 1), item(&p, "C", 1)]).await;
    let keys: Vec<(String, String)> =
        [(p.clone(), "A"), (format!("{p}#2"), "B"), (p.clone(), "C"), (p.clone(), "missing"), (format!("{p}#3"), "A")]
            .into_iter()
            .map(|(pk, sk)| (pk, sk.to_string()))
            .collect();
    let got: BTreeSet<(String, String)> =
        table.get_many(&keys).await.unwrap().into_iter().map(|i| (i.pk, i.sk)).collect();
    let want: BTreeSet<(String, String)> = keys[..3].iter().cloned().collect();
    assert_eq!(got, want, "get_many returns the existing items and leaves the missing out");
    assert!(table.get_many(&[]).await.unwrap().is_empty(), "get_many of nothing is empty");
}

async fn queries_read_one_partition_in_sort_key_order(table: &dyn Table) {
    let p = unique("query");
    let sks = ["a#03", "b#02", "a#01", "a#05", "b#01", "a#04", "a#02"];
    let mut items: Vec<Item> = sks.iter().map(|sk| item(&p, sk, 1)).collect();
    // Neighbouring partitions must not leak into the query.
    items.push(item(&format!("{p}x"), "a#03", 1));
    items.push(item(&format!("{p}#"), "a#03", 1));
    write_all(table, items).await;

    let all = ["a#01", "a#02", "a#03", "a#04", "a#05", "b#01", "b#02"];
    let page = table.query(&p, &query(100, false, None)).await.unwrap();
    assert_eq!(sort_keys(&page), all, "a query reads its partition by ascending sort key");
    assert!(page.next.is_none(), "a query that read everything has no next");
    assert_eq!(page.items[0], item(&p, "a#01", 1), "queried items are whole");
    let page = table.query(&p, &query(100, true, None)).await.unwrap();
    let mut rev = all.to_vec();
    rev.reverse();
    assert_eq!(sort_keys(&page), rev, "a descending query reads by descending sort key");
    let page = table.query(&p, &query(100, false, Some("a#"))).await.unwrap();
    assert_eq!(sort_keys(&page), all[..5], "sk_prefix keeps only matching sort keys");
    let page = table.query(&p, &query(100, true, Some("b#"))).await.unwrap();
    assert_eq!(sort_keys(&page), ["b#02", "b#01"], "sk_prefix works descending");
    let page = table.query(&p, &query(5, false, Some("a#"))).await.unwrap();
    assert_eq!(page.items.len(), 5);
    assert!(page.next.is_none(), "an exactly full last page has no next");
    let page = table.query(&p, &query(100, false, Some("c#"))).await.unwrap();
    assert!(page.items.is_empty() && page.next.is_none(), "a prefix matching nothing reads nothing");
}

async fn query_paging_visits_every_item_once(table: &dyn Table) {
    let p = unique("paging");
    let sks: Vec<String> = (0..23).map(|n| format!("s#{n:03}")).collect();
    write_all(table, sks.iter().map(|sk| item(&p, sk, 1)).collect()).await;
    write_all(table, vec![item(&p, "t#000", 1)]).await;
    for limit in [1, 2, 5, 23, 24, 100] {
        for descending in [false, true] {
            let got: Vec<String> = read_pages(table, &p, &query(limit, descending, Some("s#")), false)
                .await
                .into_iter()
                .map(|i| i.sk)
                .collect();
            let mut want = sks.clone();
            if descending {
                want.reverse();
            }
            assert_eq!(got, want, "paging by {limit} (descending: {descending}) visits every item once, in order");
        }
    }
    let got = read_pages(table, &p, &query(4, false, None), false).await;
    assert_eq!(got.len(), 24, "paging without a prefix reads the whole partition");
}

async fn index_queries_read_in_index_order_and_page(table: &dyn Table) {
    let p = unique("gsi");
    let g = format!("{p}#g");
    let keys = ["2024-03-01#c", "2024-01-01#a", "2024-05-01#e", "2024-02-01#b", "2024-04-01#d"];
    let mut items: Vec<Item> = keys.iter().enumerate().map(|(n, k)| indexed(&format!("{p}#{n}"), "R", &g, k)).collect();
    items.push(indexed(&format!("{p}#x"), "R", &g, "x#1"));
    items.push(indexed(&format!("{p}#y"), "R", &format!("{g}x"), "2024-01-01#a"));
    items.push(item(&format!("{p}#z"), "R", 1));
    write_all(table, items).await;

    eventually("the index lists the six items written", || async {
        table.query_index(&g, &query(100, false, None)).await.unwrap().items.len() == 6
    })
    .await;
    let gsk = |page: &QueryPage| -> Vec<String> {
        page.items.iter().map(|i| i.gsi1.as_ref().map(|k| k.sk.clone()).unwrap_or_default()).collect()
    };
    let mut sorted: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    sorted.sort();
    let page = table.query_index(&g, &query(100, false, Some("2024-"))).await.unwrap();
    assert_eq!(gsk(&page), sorted, "an index query reads by ascending index sort key");
    assert!(page.next.is_none());
    assert!(page.items.iter().all(|i| i.sk == "R" && i.pk.starts_with(&p)), "index queries return whole items");
    let page = table.query_index(&g, &query(100, true, Some("2024-"))).await.unwrap();
    let mut rev = sorted.clone();
    rev.reverse();
    assert_eq!(gsk(&page), rev, "a descending index query reads by descending index sort key");
    let page = table.query_index(&g, &query(100, false, Some("x#"))).await.unwrap();
    assert_eq!(gsk(&page), ["x#1"], "sk_prefix applies to the index sort key");
    for limit in [1, 2, 5, 6] {
        for descending in [false, true] {
            let got: Vec<String> = read_pages(table, &g, &query(limit, descending, Some("2024-")), true)
                .await
                .iter()
                .map(|i| i.gsi1.as_ref().map(|k| k.sk.clone()).unwrap_or_default())
                .collect();
            let want = if descending { &rev } else { &sorted };
            assert_eq!(&got, want, "index paging by {limit} (descending: {descending}) visits every item once");
        }
    }
}

async fn index_entries_follow_their_items(table: &dyn Table) {
    let p = unique("gsimove");
    let (g1, g2) = (format!("{p}#g1"), format!("{p}#g2"));
    write_all(table, vec![indexed(&p, "A", &g1, "k"), indexed(&p, "B", &g1, "k")]).await;
    eventually("both items are in the first index partition", || async {
        table.query_index(&g1, &query(10, false, None)).await.unwrap().items.len() == 2
    })
    .await;
    write_all(table, vec![indexed(&p, "A", &g2, "k")]).await;
    table.transact(vec![delete(&p, "B")]).await.unwrap();
    eventually("a moved item leaves its old index partition and a deleted one leaves the index", || async {
        table.query_index(&g1, &query(10, false, None)).await.unwrap().items.is_empty()
            && sort_keys(&table.query_index(&g2, &query(10, false, None)).await.unwrap()) == ["A"]
    })
    .await;
    write_all(table, vec![item(&p, "A", 2)]).await;
    eventually("an item written without an index key leaves the index", || async {
        table.query_index(&g2, &query(10, false, None)).await.unwrap().items.is_empty()
    })
    .await;
}

async fn expired_items_are_invisible(table: &dyn Table) {
    let p = unique("ttl");
    let g = format!("{p}#g");
    let past = SystemClock.now().unix() - 3_600;
    let future = SystemClock.now().unix() + 3_600;
    let expired = Item { expires_at: Some(past), ..indexed(&p, "old", &g, "1") };
    let alive = Item { expires_at: Some(future), ..indexed(&p, "new", &g, "2") };
    write_all(table, vec![expired, alive]).await;
    assert_eq!(table.get(&p, "old").await.unwrap(), None, "an expired item is absent from get");
    assert!(table.get(&p, "new").await.unwrap().is_some(), "an item expiring later is present");
    let keys = vec![(p.clone(), "old".to_string()), (p.clone(), "new".to_string())];
    let got: Vec<String> = table.get_many(&keys).await.unwrap().into_iter().map(|i| i.sk).collect();
    assert_eq!(got, ["new"], "an expired item is absent from get_many");
    assert_eq!(sort_keys(&table.query(&p, &query(10, false, None)).await.unwrap()), ["new"]);
    eventually("an expired item is absent from index queries", || async {
        sort_keys(&table.query_index(&g, &query(10, false, None)).await.unwrap()) == ["new"]
    })
    .await;
}

// ---- record-store checks

async fn record_store_keeps_tenants_apart(store: &RecordStore) {
    let (a, b) = (tenant("ta"), tenant("tb"));
    let at = now();
    let record = company("Acme Widgets Ltd", Some("+1 (555) 010-0100"), Some("https://www.acme.example/"), at);
    let id = record.id().clone();
    let entry = log_entry(&a, "op-1", at, Outcome::Created, Some(id.clone()));
    let w = RecordWrite {
        record: record.clone(),
        previous: None,
        ledger: Some(Ledger::pulled(System::ConnectWise, &record, "cw-1", None, at)),
        log: Some(entry.clone()),
    };
    let saved = store.write(&a, w).await.unwrap();
    assert_eq!(saved.meta().version, 1, "a new record is stored at version 1");

    let kind = RecordKind::Company;
    assert_eq!(store.record(&a, kind, &id).await.unwrap(), Some(saved.clone()), "tenant A reads its record");
    assert_eq!(store.linked_id(&a, System::ConnectWise, kind, "cw-1").await.unwrap(), Some(id.clone()));
    assert_eq!(store.linked(&a, System::ConnectWise, kind, "cw-1").await.unwrap(), Some(saved.clone()));
    for field in [LookupField::Name, LookupField::Phone, LookupField::Website] {
        let value = lookup(&record, field);
        assert_eq!(store.find(&a, kind, field, &value).await.unwrap(), vec![saved.clone()], "find by {field:?}");
        assert!(store.find(&b, kind, field, &value).await.unwrap().is_empty(), "tenant B cannot find by {field:?}");
    }
    assert_eq!(store.record(&b, kind, &id).await.unwrap(), None, "tenant B cannot read tenant A's record");
    assert_eq!(store.linked_id(&b, System::ConnectWise, kind, "cw-1").await.unwrap(), None);
    assert_eq!(store.linked(&b, System::ConnectWise, kind, "cw-1").await.unwrap(), None);
    let by_id = store.logs_by_id(&a, &["op-1".to_string()]).await.unwrap();
    assert_eq!(by_id.get("op-1"), Some(&entry), "the log entry was written with the record");
    assert!(store.logs_by_id(&b, &["op-1".to_string()]).await.unwrap().is_empty());
    eventually("tenant A's log lists the entry", || async {
        store.logs(&a, &LogFilter::default(), now()).await.unwrap() == vec![entry.clone()]
    })
    .await;
    eventually("tenant A lists the record", || async {
        store.all_records(&a, kind).await.unwrap() == vec![saved.clone()]
    })
    .await;
    assert!(store.logs(&b, &LogFilter::default(), now()).await.unwrap().is_empty(), "tenant B's log is empty");
    assert!(store.all_records(&b, kind).await.unwrap().is_empty(), "tenant B lists no records");
}

async fn record_store_writes_are_all_or_nothing(store: &RecordStore) {
    let t = tenant("link");
    let at = now();
    let kind = RecordKind::Company;
    let first = company("First Co", Some("+44 20 7946 0000"), None, at);
    let w = RecordWrite {
        record: first.clone(),
        previous: None,
        ledger: Some(Ledger::pulled(System::ConnectWise, &first, "cw-7", None, at)),
        log: Some(log_entry(&t, "first", at, Outcome::Created, Some(first.id().clone()))),
    };
    store.write(&t, w).await.unwrap();

    let second = company("Second Co", Some("+44 20 7946 1111"), Some("second.example"), at);
    let w = RecordWrite {
        record: second.clone(),
        previous: None,
        ledger: Some(Ledger::pulled(System::ConnectWise, &second, "cw-7", None, at)),
        log: Some(log_entry(&t, "second", at, Outcome::Created, Some(second.id().clone()))),
    };
    let err = store.write(&t, w).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "a second write of one link conflicts, got {err:?}");
    assert_eq!(store.record(&t, kind, second.id()).await.unwrap(), None, "the losing record was not written");
    for field in [LookupField::Name, LookupField::Phone, LookupField::Website] {
        let value = lookup(&second, field);
        assert!(store.find(&t, kind, field, &value).await.unwrap().is_empty(), "no look-up entry by {field:?}");
    }
    assert!(store.logs_by_id(&t, &["second".into()]).await.unwrap().is_empty(), "the losing log entry was not written");
    assert_eq!(
        store.linked_id(&t, System::ConnectWise, kind, "cw-7").await.unwrap().as_ref(),
        Some(first.id()),
        "the link still points at the first record"
    );
}

async fn record_store_updates_replace_lookups(store: &RecordStore) {
    let t = tenant("update");
    let kind = RecordKind::Company;
    let at = now();
    let w = RecordWrite { record: company("Old Name", None, None, at), previous: None, ledger: None, log: None };
    let v1 = store.write(&t, w).await.unwrap();
    let mut changed = v1.clone();
    if let Record::Company(c) = &mut changed {
        c.fields.name = "New Name".into();
    }
    let w = RecordWrite { record: changed.clone(), previous: Some(v1.clone()), ledger: None, log: None };
    let v2 = store.write(&t, w).await.unwrap();
    assert_eq!(v2.meta().version, 2, "an update raises the version");
    assert_eq!(store.record(&t, kind, v1.id()).await.unwrap(), Some(v2.clone()));
    let old = lookup(&v1, LookupField::Name);
    let new = lookup(&v2, LookupField::Name);
    assert!(store.find(&t, kind, LookupField::Name, &old).await.unwrap().is_empty(), "the old name is unindexed");
    assert_eq!(store.find(&t, kind, LookupField::Name, &new).await.unwrap(), vec![v2.clone()]);
    let stale = RecordWrite { record: changed, previous: Some(v1), ledger: None, log: None };
    let err = store.write(&t, stale).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "a write from a stale read conflicts, got {err:?}");
    assert_eq!(store.record(&t, kind, v2.id()).await.unwrap(), Some(v2));
}

async fn record_store_lists_every_record_once(store: &RecordStore) {
    let t = tenant("list");
    let kind = RecordKind::Company;
    let at = now();
    let mut ids = BTreeSet::new();
    for n in 0..37 {
        let record = company(&format!("Company {n}"), None, None, at);
        ids.insert(record.id().clone());
        store.write(&t, RecordWrite { record, previous: None, ledger: None, log: None }).await.unwrap();
    }
    // Another kind and another tenant must not show up.
    let other = tenant("list2");
    store
        .write(
            &other,
            RecordWrite { record: company("Elsewhere", None, None, at), previous: None, ledger: None, log: None },
        )
        .await
        .unwrap();
    eventually("all 37 records are listed", || async { store.all_records(&t, kind).await.unwrap().len() == 37 }).await;
    assert!(store.all_records(&t, RecordKind::Contact).await.unwrap().is_empty(), "records are listed per kind");
    for limit in [1, 4, 36, 37, 100] {
        let mut seen = Vec::new();
        let mut after = None;
        for _ in 0..1_000 {
            let page = store.records(&t, kind, after, limit).await.unwrap();
            assert!(page.records.len() <= limit, "a page of records holds at most {limit}");
            assert!(page.unreadable.is_empty());
            seen.extend(page.records.into_iter().map(|r| r.id().clone()));
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let unique: BTreeSet<RecordId> = seen.iter().cloned().collect();
        assert_eq!(seen.len(), 37, "paging by {limit} lists 37 records");
        assert_eq!(unique, ids, "paging by {limit} lists every record once");
    }
}

async fn record_store_logs_once_and_filters_by_outcome(store: &RecordStore) {
    let t = tenant("logs");
    let at = now();
    let entries = vec![
        log_entry(&t, "e1", at.plus_seconds(-4), Outcome::Created, None),
        log_entry(&t, "e2", at.plus_seconds(-3), Outcome::Failed("ConnectWise said no".into()), None),
        log_entry(&t, "e3", at.plus_seconds(-2), Outcome::Skipped(SkipReason::Inactive), None),
        log_entry(&t, "e4", at.plus_seconds(-1), Outcome::Skipped(SkipReason::NoEmail), None),
    ];
    for e in &entries {
        assert!(store.put_log(e).await.unwrap(), "a new log entry is written");
    }
    let mut changed = entries[0].clone();
    changed.outcome = Outcome::Updated;
    assert!(!store.put_log(&changed).await.unwrap(), "a log entry with a known id is not written again");
    assert_eq!(store.logs_by_id(&t, &["e1".into()]).await.unwrap().get("e1"), Some(&entries[0]));

    let tr = &t;
    let ids = |filter: LogFilter| async move {
        store.logs(tr, &filter, at).await.unwrap().into_iter().map(|e| e.id).collect::<Vec<_>>()
    };
    eventually("the log lists four entries", || async { ids(LogFilter::default()).await.len() == 4 }).await;
    assert_eq!(ids(LogFilter::default()).await, ["e4", "e3", "e2", "e1"], "the log is newest first");
    let by = |outcome: &str| LogFilter { outcome: Some(outcome.into()), ..LogFilter::default() };
    assert_eq!(ids(by("failed")).await, ["e2"]);
    assert_eq!(ids(by("skipped")).await, ["e4", "e3"]);
    assert_eq!(ids(by("skipped:inactive")).await, ["e3"]);
    assert_eq!(ids(by("created")).await, ["e1"]);
    assert!(ids(by("linked")).await.is_empty());
    let limited = LogFilter { limit: Some(2), ..LogFilter::default() };
    assert_eq!(ids(limited).await, ["e4", "e3"], "the limit keeps the newest");
}

async fn record_store_reads_a_days_changes_back_only_as_far_as_asked(store: &RecordStore) {
    use tandem_domain::outbox::{Change, ChangeOp};
    let t = tenant("outbox");
    let noon = Timestamp::parse(&format!("{}T12:00:00Z", now().day())).unwrap();
    let change = |n: i64| Change {
        id: format!("company-c{n}-v1"),
        tenant: t.clone(),
        kind: RecordKind::Company,
        record: RecordId::from_raw(format!("c{n}")),
        op: ChangeOp::Created,
        version: 1,
        fields: vec!["name".into()],
        at: noon.plus_seconds(n * 2),
        links: Default::default(),
    };
    for n in 0..3 {
        store.commit(vec![RecordStore::prepare_change(&change(n)).unwrap()]).await.unwrap();
    }
    let day = noon.day();
    eventually("the day lists three changes", || async { store.changes(&t, &day).await.unwrap().len() == 3 }).await;
    let after: Vec<String> =
        store.changes_after(&t, &day, noon.plus_seconds(1)).await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(after, ["company-c2-v1", "company-c1-v1"], "newest first, none at or before the instant");
    assert!(store.changes_after(&t, &day, noon.plus_seconds(4)).await.unwrap().is_empty());
}

async fn record_store_jobs_are_versioned_and_listed_newest_first(store: &RecordStore) {
    let t = tenant("jobs");
    let at = now();
    let job = |id: &str, created: Timestamp| Job {
        tenant: t.clone(),
        id: JobId::from_raw(id),
        system: System::ConnectWise,
        stages: System::ConnectWise.stages().to_vec(),
        current: 0,
        cursor: Cursor::start(),
        status: JobStatus::Running,
        progress: Default::default(),
        created_at: created,
        updated_at: created,
        attempt: 0,
        version: 0,
        dry_run: false,
    };
    let older = store.save_job(&job("j1", at.plus_seconds(-10))).await.unwrap();
    assert_eq!(older.version, 1);
    let err = store.save_job(&job("j1", at)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "a second new job with one id conflicts, got {err:?}");
    let newer = store.save_job(&job("j2", at)).await.unwrap();
    let mut done = older.clone();
    done.status = JobStatus::Completed;
    let done = store.save_job(&done).await.unwrap();
    assert_eq!(done.version, 2);
    assert!(matches!(store.save_job(&older).await, Err(StoreError::Conflict(_))), "a stale job save conflicts");
    assert_eq!(store.job(&t, &JobId::from_raw("j1")).await.unwrap(), Some(done.clone()));
    eventually("the jobs are listed newest first", || async {
        store.jobs(&t, 10).await.unwrap() == vec![newer.clone(), done.clone()]
    })
    .await;
    assert!(store.jobs(&tenant("jobs2"), 10).await.unwrap().is_empty(), "another tenant has no jobs");
}

async fn record_store_refuses_paging_tokens_it_did_not_issue(store: &RecordStore) {
    let t = tenant("tokens");
    let kind = RecordKind::Company;
    store
        .write(
            &t,
            RecordWrite { record: company("Tokened", None, None, now()), previous: None, ledger: None, log: None },
        )
        .await
        .unwrap();
    for bad in ["0:garbage", "garbage", "\u{FFFD}\u{FFFD}", "z:", "00:", ":", "0:eyJhIjoxfQ", "0:WyJ4Il0"] {
        let err = store.records(&t, kind, Some(bad.to_string()), 10).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidToken(_)), "token {bad:?} is the caller's error, got {err:?}");
    }
    let table = store.table();
    for bad in ["garbage", "!!", "eyJhIjoxfQ"] {
        let q = Query { after: Some(bad.to_string()), limit: 5, ..Query::default() };
        let err = table.query("p", &q).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidToken(_)), "table token {bad:?}: {err:?}");
        let err = table.query_index("p", &q).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidToken(_)), "index token {bad:?}: {err:?}");
    }
}

async fn record_store_lists_past_a_record_that_no_longer_parses(store: &RecordStore) {
    let t = tenant("unreadable");
    let kind = RecordKind::Company;
    let at = now();
    let mut good = BTreeSet::new();
    for n in 0..6 {
        let record = company(&format!("Good {n}"), None, None, at);
        good.insert(record.id().clone());
        store.write(&t, RecordWrite { record, previous: None, ledger: None, log: None }).await.unwrap();
    }
    // A record whose stored body is valid JSON of the wrong shape (a bug or an old format).
    let bad = company("Bad", None, None, at);
    let saved = store.write(&t, RecordWrite { record: bad, previous: None, ledger: None, log: None }).await.unwrap();
    let bad_id = saved.id().clone();
    let pk = tandem_domain::table::keys::record(&t, kind, &bad_id);
    let mut item = store.table().get(&pk, "R").await.unwrap().unwrap();
    item.body["name"] = serde_json::json!(["not", "a", "name"]);
    let condition = Condition::VersionIs(item.version);
    item.version += 1;
    store.table().transact(vec![Write::Put { item, condition }]).await.unwrap();

    eventually("every record is listed or reported", || async {
        store.records(&t, kind, None, 100).await.unwrap().records.len() == 6
    })
    .await;
    for limit in [1, 3, 100] {
        let (mut seen, mut unreadable, mut after) = (BTreeSet::new(), Vec::new(), None);
        for _ in 0..100 {
            let page = store.records(&t, kind, after, limit).await.unwrap();
            seen.extend(page.records.into_iter().map(|r| r.id().clone()));
            unreadable.extend(page.unreadable);
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, good, "paging by {limit}: every readable record is listed");
        assert_eq!(unreadable, vec![bad_id.clone()], "paging by {limit}: the unreadable one is reported once");
    }
}

fn running_job(t: &TenantId, id: &str) -> Job {
    Job {
        tenant: t.clone(),
        id: JobId::from_raw(id),
        system: System::Halo,
        stages: vec![tandem_domain::ids::Stage::Users],
        current: 0,
        cursor: Cursor::start(),
        status: JobStatus::Running,
        progress: Default::default(),
        created_at: now(),
        updated_at: now(),
        attempt: 0,
        version: 0,
        dry_run: false,
    }
}

async fn record_store_lets_one_of_racing_import_claims_win(store: &RecordStore) {
    // The race made deterministic: all eight claimers read the free marker first, then
    // each commits what it read. The claim is a conditional write, so only the first
    // commit can succeed, whatever the interleaving. (Truly concurrent claims are raced
    // in the embedded table's own tests. Raced concurrently on moto during a loaded full
    // test run, two of eight claims once both committed; the same race on an idle moto
    // never did in 20 rounds, so the cause, moto's atomicity under load or the adapter,
    // is not settled and is recorded as an open question in the README.)
    let t = tenant("claims");
    let jobs: Vec<Job> = (0..8).map(|n| running_job(&t, &format!("j{n}"))).collect();
    let mut plans = Vec::new();
    for job in &jobs {
        plans.push(store.plan_claim(job).await.unwrap().expect("the marker is free when read"));
    }
    let mut won = Vec::new();
    for (job, writes) in jobs.iter().zip(plans) {
        match store.commit(writes).await {
            Ok(()) => won.push(job.id.clone()),
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("a claim failed unexpectedly: {e}"),
        }
    }
    assert_eq!(won, vec![JobId::from_raw("j0")], "exactly the first of eight claims that read a free marker wins");
    let holder = store.claim_job(&running_job(&t, "late")).await.unwrap();
    assert_eq!(holder, Err(won[0].clone()), "a later claim names the running job");
}

async fn record_store_frees_the_run_marker_when_the_job_ends(store: &RecordStore) {
    let t = tenant("marker");
    let first = store.claim_job(&running_job(&t, "first")).await.unwrap().unwrap();
    let mut ended = first.clone();
    ended.status = JobStatus::Failed("boom".into());
    let ended = store.save_job(&ended).await.unwrap();
    let second = store.claim_job(&running_job(&t, "second")).await.unwrap();
    assert!(second.is_ok(), "once the first job ended, a new one may run");
    let mut again = ended.clone();
    again.status = JobStatus::Running;
    assert_eq!(store.claim_job(&again).await.unwrap(), Err(JobId::from_raw("second")), "resuming waits its turn");
    let other = tenant("marker2");
    assert!(store.claim_job(&running_job(&other, "mine")).await.unwrap().is_ok(), "other tenants are apart");
}

async fn record_store_moves_the_ledger_without_touching_the_record(store: &RecordStore) {
    let t = tenant("ledger");
    let at = now();
    let record = company("Ledger Co", None, None, at);
    let ledger = Ledger::pulled(System::Halo, &record, "h-1", Some(ExtVersion::parse("2024-01-01T00:00:00Z")), at);
    let w = RecordWrite { record: record.clone(), previous: None, ledger: Some(ledger), log: None };
    let saved = store.write(&t, w).await.unwrap();
    assert_eq!(saved.link(System::Halo).map(|l| l.id.as_str()), Some("h-1"), "the record shows its new link");
    assert_eq!(store.record(&t, RecordKind::Company, record.id()).await.unwrap(), Some(saved.clone()));

    let wanted = [(RecordKind::Company, "h-1".to_string())];
    let stored = store.ledgers(&t, System::Halo, &wanted).await.unwrap().remove(&wanted[0]).unwrap();
    assert_eq!((stored.version, stored.external_id.as_str(), &stored.crm_id), (1, "h-1", record.id()));
    assert_eq!(stored.seen, Some(ExtVersion::parse("2024-01-01T00:00:00.000+0000")));
    let moved = stored.repulled(&saved, Some(ExtVersion::parse("2024-02-01T00:00:00Z")), at);
    store.commit(vec![RecordStore::prepare_ledger(&t, &moved).unwrap()]).await.unwrap();
    let after = store.ledgers(&t, System::Halo, &wanted).await.unwrap().remove(&wanted[0]).unwrap();
    assert_eq!((after.version, after.seen.clone()), (2, moved.seen.clone()), "the ledger moved");
    let record_now = store.record(&t, RecordKind::Company, record.id()).await.unwrap().unwrap();
    assert_eq!(record_now.meta().version, 1, "the record's version did not move with its ledger");

    let stale = store.commit(vec![RecordStore::prepare_ledger(&t, &moved).unwrap()]).await.unwrap_err();
    assert!(matches!(stale, StoreError::Conflict(_)), "a ledger write from a stale read conflicts, got {stale:?}");
    let mut again = Ledger::pulled(System::Halo, &company("Other", None, None, at), "h-1", None, at);
    again.version = 0;
    let taken = store.commit(vec![RecordStore::prepare_ledger(&t, &again).unwrap()]).await.unwrap_err();
    assert!(matches!(taken, StoreError::Conflict(_)), "an external record links to one CRM record, got {taken:?}");
}

async fn record_store_migrates_link_versions_kept_in_old_record_bodies(store: &RecordStore) {
    let t = tenant("legacy");
    let at = now();
    let record = company("Legacy Co", None, None, at);
    let id = record.id().clone();
    let mut body = serde_json::to_value(&record).unwrap();
    body["meta"]["links"] = serde_json::json!({"connectwise": {"id": "cw-9", "updated_at": "2024-05-01T00:00:00Z"}});
    let pk = tandem_domain::table::keys::record(&t, RecordKind::Company, &id);
    let legacy = Item { pk: pk.clone(), sk: "R".into(), version: 1, gsi1: None, expires_at: None, body };
    let link = Item {
        pk: tandem_domain::table::keys::link(&t, System::ConnectWise, RecordKind::Company, "cw-9"),
        sk: "L".into(),
        version: 1,
        gsi1: None,
        expires_at: None,
        body: serde_json::json!({ "id": id }),
    };
    store
        .table()
        .transact(vec![
            Write::Put { item: legacy.clone(), condition: Condition::NotExists },
            Write::Put { item: link, condition: Condition::NotExists },
        ])
        .await
        .unwrap();
    let read = store.record(&t, RecordKind::Company, &id).await.unwrap().unwrap();
    assert_eq!(
        read.link(System::ConnectWise).map(|l| l.id.as_str()),
        Some("cw-9"),
        "an old body still reads its links"
    );

    let stored = store.table().get(&pk, "R").await.unwrap().unwrap();
    let keys = RecordStore::legacy_ledger_keys(&stored);
    let existing = store.table().get_many(&keys).await.unwrap().into_iter().map(|i| (i.pk.clone(), i)).collect();
    let writes = RecordStore::migrate_legacy_links(&stored, &existing).unwrap();
    store.commit(writes).await.unwrap();
    let wanted = [(RecordKind::Company, "cw-9".to_string())];
    let ledger = store.ledgers(&t, System::ConnectWise, &wanted).await.unwrap().remove(&wanted[0]).unwrap();
    assert_eq!(ledger.seen, Some(ExtVersion::parse("2024-05-01T00:00:00Z")), "the version moved to the ledger");
    assert_eq!(ledger.crm_id, id);
    let migrated = store.table().get(&pk, "R").await.unwrap().unwrap();
    assert_eq!(migrated.body["meta"]["links"], serde_json::json!({"connectwise": {"id": "cw-9"}}));
    assert!(RecordStore::migrate_legacy_links(&migrated, &existing).is_none(), "a migrated record has nothing to move");
}

async fn record_store_keeps_dead_letters_once_per_tenant_newest_first_and_paged(store: &RecordStore) {
    use tandem_domain::dead_letter::DeadLetter;
    use tandem_domain::export::ExportMessage;
    use tandem_domain::work::Work;
    let (t, other) = (tenant("dead"), tenant("dead2"));
    let at = now();
    let work = |t: &TenantId, n: usize| {
        Work::Export(ExportMessage {
            tenant: t.clone(),
            system: System::Halo,
            export_id: JobId::from_raw(format!("x{n}")),
        })
    };
    for n in 0..5 {
        let entry = DeadLetter::of(&work(&t, n), 5, &format!("failure {n}"), at.plus_seconds(n as i64)).unwrap();
        assert!(store.save_dead_letter(&entry).await.unwrap(), "a new dead letter is written");
        assert!(!store.save_dead_letter(&entry).await.unwrap(), "the same one again is not written twice");
        let theirs = DeadLetter::of(&work(&other, n), 5, "theirs", at).unwrap();
        store.save_dead_letter(&theirs).await.unwrap();
    }
    let mut stored = store.dead_letter(&t, &DeadLetter::id_of(&work(&t, 0), 5)).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.reason.as_str()), (1, "failure 0"));
    assert_eq!(store.dead_letter(&other, &stored.id).await.unwrap(), None, "another tenant's id finds nothing");
    stored.redrives = 1;
    assert!(store.save_dead_letter(&stored).await.unwrap(), "a versioned save replaces it");
    assert!(matches!(store.save_dead_letter(&stored).await, Err(StoreError::Conflict(_))), "a stale save conflicts");
    eventually("the dead letters are listed newest first, two a page, the tenant's own only", || async {
        let mut reasons = Vec::new();
        let mut token = None;
        loop {
            let (page, next) = store.dead_letters(&t, token, 2).await.unwrap();
            if page.len() > 2 || page.iter().any(|d| d.tenant != t) {
                return false;
            }
            reasons.extend(page.into_iter().map(|d| (d.reason, d.redrives)));
            match next {
                Some(n) => token = Some(n),
                None => break,
            }
        }
        let want: Vec<(String, u32)> = (0..5).rev().map(|n| (format!("failure {n}"), u32::from(n == 0))).collect();
        reasons == want
    })
    .await;
    let err = store.dead_letters(&t, Some("garbage".into()), 2).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidToken(_)), "{err:?}");
}
