//! Unit tests of applying records: how staged writes group into waves of transactions.

use super::*;
use crate::external::ExtCompany;
use serde_json::json;

#[test]
fn records_touching_one_item_commit_in_order_and_no_transaction_exceeds_the_limit() {
    let ext = ExternalRecord::Company(ExtCompany::named("A"));
    let put = |pk: &str| Write::Put {
        item: crate::ports::Item {
            pk: pk.into(),
            sk: "R".into(),
            version: 1,
            gsi1: None,
            expires_at: None,
            body: json!({}),
        },
        condition: crate::ports::Condition::None,
    };
    let staged = |pks: &[&str]| Staged {
        index: 0,
        record: &ext,
        ext_id: "1".into(),
        log_id: "l".into(),
        writes: pks.iter().map(|pk| put(pk)).collect(),
        outcome: Outcome::Created,
        change: None,
    };
    let many: Vec<String> = (0..60).map(|n| format!("x{n}")).collect();
    let many_refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let more: Vec<String> = (0..60).map(|n| format!("y{n}")).collect();
    let more_refs: Vec<&str> = more.iter().map(String::as_str).collect();
    let list = vec![staged(&["a", "b"]), staged(&["c"]), staged(&["a"]), staged(&many_refs), staged(&more_refs)];
    let w = waves(&list);
    assert_eq!(
        w,
        vec![vec![vec![0, 1]], vec![vec![2, 3], vec![4]]],
        "a touches a again: next wave; 100 writes at most"
    );
}
