//! The preview's copy-on-write view ([`Overlay`]) over a real embedded table: it passes
//! the table conformance suite whether the table beneath is empty or in use, shows its own
//! writes over the table, pages merged reads exactly, and never changes the table's items.

use std::sync::Arc;

use tandem_domain::overlay::Overlay;
use tandem_domain::ports::{Condition, IndexKey, Item, Query, StoreError, Table, Write};

use crate::SqliteTable;
use crate::conformance;

/// Far enough ahead that nothing a test writes expires.
const LATER: i64 = 4_000_000_000;

fn item(pk: &str, sk: &str, version: u64, index: Option<(&str, &str)>) -> Item {
    Item {
        pk: pk.into(),
        sk: sk.into(),
        version,
        gsi1: index.map(|(p, s)| IndexKey { pk: p.into(), sk: s.into() }),
        expires_at: None,
        body: serde_json::json!({ "sk": sk, "version": version }),
    }
}

fn put(item: Item, condition: Condition) -> Write {
    Write::Put { item, condition }
}

async fn read_all(table: &dyn Table, pk: &str, index: bool, limit: usize, descending: bool) -> Vec<(String, u64)> {
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let q = Query { after, limit, descending, sk_prefix: None };
        let page = if index { table.query_index(pk, &q).await } else { table.query(pk, &q).await }.unwrap();
        seen.extend(page.items.iter().map(|i| (i.sk.clone(), i.version)));
        match page.next {
            Some(next) => after = Some(next),
            None => return seen,
        }
    }
}

/// Every item of the table: what a test compares before and after using a view.
async fn snapshot(table: &SqliteTable, pks: &[&str]) -> Vec<Item> {
    let mut all = Vec::new();
    for pk in pks {
        all.extend(table.query(pk, &Query { limit: 1000, ..Query::default() }).await.unwrap().items);
    }
    all
}

#[tokio::test]
async fn a_view_over_an_empty_table_passes_the_conformance_suite() {
    let table = Arc::new(SqliteTable::in_memory().unwrap());
    conformance::table_suite(Arc::new(Overlay::new(table.clone(), "p1", LATER))).await;
    assert!(!table.is_empty().unwrap(), "the suite's writes landed in the view's scratch");
    assert!(
        table.items_with_sort_key("A", None, usize::MAX).unwrap().iter().all(|i| i.pk.starts_with("~preview#p1#")),
        "every item written through the view is a scratch item"
    );
}

#[tokio::test]
async fn a_view_over_a_table_in_use_passes_the_conformance_suite_and_leaves_the_table_as_it_was() {
    let table = Arc::new(SqliteTable::in_memory().unwrap());
    conformance::table_suite(table.clone()).await;
    let before = table.len().unwrap();
    let beneath = snapshot(&table, &["kept"]).await;
    table.transact(vec![put(item("kept", "A", 3, Some(("kept-index", "1"))), Condition::None)]).await.unwrap();
    let kept = snapshot(&table, &["kept"]).await;

    conformance::table_suite(Arc::new(Overlay::new(table.clone(), "p2", LATER))).await;

    assert!(beneath.is_empty());
    assert_eq!(snapshot(&table, &["kept"]).await, kept, "the table's own items are untouched");
    assert!(table.len().unwrap() > before + 1, "the suite's writes went somewhere: the scratch");
}

#[tokio::test]
async fn the_view_shows_its_writes_over_the_table_and_hides_what_it_replaced_or_deleted() {
    let table = Arc::new(SqliteTable::in_memory().unwrap());
    table
        .transact(vec![
            put(item("p", "a", 1, Some(("idx", "x"))), Condition::None),
            put(item("p", "c", 4, Some(("idx", "x"))), Condition::None),
            put(item("p", "e", 2, Some(("idx", "x"))), Condition::None),
        ])
        .await
        .unwrap();
    let before = snapshot(&table, &["p"]).await;
    let view = Overlay::new(table.clone(), "p3", LATER);
    view.transact(vec![
        put(item("p", "b", 1, Some(("idx", "x"))), Condition::NotExists),
        put(item("p", "c", 5, Some(("idx2", "x"))), Condition::VersionIs(4)),
        Write::Delete { pk: "p".into(), sk: "e".into() },
    ])
    .await
    .unwrap();

    let shown = read_all(&view, "p", false, 10, false).await;
    assert_eq!(shown, vec![("a".into(), 1), ("b".into(), 1), ("c".into(), 5)]);
    assert_eq!(read_all(&view, "idx", true, 10, false).await, vec![("a".into(), 1), ("b".into(), 1)]);
    assert_eq!(read_all(&view, "idx", true, 10, false).await.len(), 2, "c left the old index value; e is gone");
    assert_eq!(read_all(&view, "idx", true, 10, true).await, vec![("b".into(), 1), ("a".into(), 1)]);
    assert_eq!(view.get("p", "e").await.unwrap(), None);
    assert_eq!(view.get("p", "c").await.unwrap().map(|i| i.version), Some(5));
    let many = view.get_many(&[("p".into(), "a".into()), ("p".into(), "c".into()), ("p".into(), "e".into())]).await;
    let mut versions: Vec<(String, u64)> = many.unwrap().into_iter().map(|i| (i.sk, i.version)).collect();
    versions.sort();
    assert_eq!(versions, vec![("a".into(), 1), ("c".into(), 5)]);
    assert_eq!(read_all(&view, "idx2", true, 10, false).await, vec![("c".into(), 5)], "c is under its new index value");

    assert_eq!(snapshot(&table, &["p"]).await, before, "the table beneath is as it was");
    let scratch = Overlay::scratch(table.clone(), "p3", LATER);
    assert_eq!(
        read_all(&scratch, "p", false, 10, false).await.len(),
        2,
        "the scratch holds b and c (e's tombstone hidden)"
    );
    assert_eq!(scratch.get("p", "a").await.unwrap(), None, "the scratch alone does not see the table");
    let other = Overlay::new(table.clone(), "other", LATER);
    assert_eq!(read_all(&other, "p", false, 10, false).await.len(), 3, "another preview sees none of it");
}

#[tokio::test]
async fn merged_reads_page_through_every_item_once_in_order_both_ways() {
    let table = Arc::new(SqliteTable::in_memory().unwrap());
    let beneath: Vec<Write> = (0..40)
        .filter(|n| n % 2 == 1)
        .map(|n| put(item("p", &format!("k{n:02}"), 1, Some(("idx", &format!("{:02}", n % 7)))), Condition::None))
        .collect();
    table.transact(beneath).await.unwrap();
    let view = Overlay::new(table.clone(), "p4", LATER);
    let mut expected: std::collections::BTreeMap<String, u64> =
        (0..40).filter(|n| n % 2 == 1).map(|n| (format!("k{n:02}"), 1)).collect();
    let mut writes = Vec::new();
    for n in 0..40u32 {
        let sk = format!("k{n:02}");
        let index = Some(("idx", format!("{:02}", n % 5)));
        match n % 6 {
            // New items between the table's.
            0 | 2 | 4 => {
                writes
                    .push(put(item("p", &sk, 1, index.as_ref().map(|(p, s)| (*p, s.as_str()))), Condition::NotExists));
                expected.insert(sk, 1);
            }
            // Deleted table items.
            3 => {
                writes.push(Write::Delete { pk: "p".into(), sk: sk.clone() });
                expected.remove(&sk);
            }
            // Replaced table items (new version, new index value).
            5 if n % 4 == 1 => {
                writes.push(put(
                    item("p", &sk, 2, index.as_ref().map(|(p, s)| (*p, s.as_str()))),
                    Condition::VersionIs(1),
                ));
                expected.insert(sk, 2);
            }
            _ => {}
        }
    }
    for chunk in writes.chunks(10) {
        view.transact(chunk.to_vec()).await.unwrap();
    }
    let ascending: Vec<(String, u64)> = expected.into_iter().collect();
    let mut descending = ascending.clone();
    descending.reverse();
    for limit in [1, 2, 3, 7, 100] {
        assert_eq!(read_all(&view, "p", false, limit, false).await, ascending, "ascending, pages of {limit}");
        assert_eq!(read_all(&view, "p", false, limit, true).await, descending, "descending, pages of {limit}");
        let mut by_index = read_all(&view, "idx", true, limit, false).await;
        assert_eq!(by_index.len(), ascending.len(), "index, pages of {limit}: each item once");
        by_index.sort();
        assert_eq!(by_index, ascending, "index, pages of {limit}");
    }
}

#[tokio::test]
async fn conditions_are_checked_against_what_the_view_shows() {
    let table = Arc::new(SqliteTable::in_memory().unwrap());
    table.transact(vec![put(item("p", "a", 3, None), Condition::None)]).await.unwrap();
    let view = Overlay::new(table.clone(), "p5", LATER);
    let conflict = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Conflict(_)));
    assert!(conflict(view.transact(vec![put(item("p", "a", 1, None), Condition::NotExists)]).await));
    assert!(conflict(view.transact(vec![put(item("p", "a", 3, None), Condition::VersionIs(2))]).await));
    view.transact(vec![put(item("p", "a", 4, None), Condition::VersionIs(3))]).await.unwrap();
    assert!(
        conflict(view.transact(vec![put(item("p", "a", 4, None), Condition::VersionIs(3))]).await),
        "the view's copy is at version 4 now"
    );
    view.transact(vec![Write::Delete { pk: "p".into(), sk: "a".into() }]).await.unwrap();
    view.transact(vec![put(item("p", "a", 1, None), Condition::NotExists)]).await.unwrap();
    assert_eq!(view.get("p", "a").await.unwrap().map(|i| i.version), Some(1));
    assert_eq!(table.get("p", "a").await.unwrap().map(|i| i.version), Some(3), "the table's item is untouched");
}

#[tokio::test]
async fn a_token_of_another_store_is_refused_by_the_view() {
    let view = Overlay::new(Arc::new(SqliteTable::in_memory().unwrap()), "p6", LATER);
    let q = Query { after: Some("not a token".into()), limit: 5, ..Query::default() };
    assert!(matches!(view.query("p", &q).await, Err(StoreError::InvalidToken(_))));
}

#[tokio::test]
async fn the_views_writes_expire_with_the_preview() {
    let table = Arc::new(SqliteTable::in_memory().unwrap());
    table.transact(vec![put(item("p", "a", 1, None), Condition::None)]).await.unwrap();
    let view = Overlay::new(table.clone(), "p7", 1);
    view.transact(vec![
        Write::Delete { pk: "p".into(), sk: "a".into() },
        put(item("p", "b", 1, None), Condition::None),
    ])
    .await
    .unwrap();
    assert_eq!(read_all(&view, "p", false, 10, false).await, vec![("a".into(), 1)], "expired scratch items are gone");
}
