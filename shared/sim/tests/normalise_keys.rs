//! The simulators' own normalisers (their independent oracle for the ground truth) give the
//! expected key for every case of the shared table `key_cases.json`, which the domain's
//! normalisers are checked against too.

#![allow(clippy::unwrap_used)] // a test: a bad table should fail loudly

use serde_json::Value;
use tandem_sim::normalise::{email_key, name_key, phone_key, website_key};

/// The shared table: key kind -> cases of `{input, key, note?}`.
const CASES: &str = include_str!("key_cases.json");

/// Every case of `kind` whose key from `normalise` differs from the table's, described.
fn mismatches(kind: &str, normalise: fn(&str) -> Option<String>) -> Vec<String> {
    let table: Value = serde_json::from_str(CASES).unwrap();
    let cases = table[kind].as_array().unwrap_or_else(|| panic!("no {kind} cases"));
    assert!(cases.len() >= 10, "{kind}: too few cases to mean much");
    cases
        .iter()
        .filter_map(|case| {
            let input = case["input"].as_str().unwrap();
            let want = case["key"].as_str().map(str::to_string);
            let got = normalise(input);
            (got != want).then(|| format!("{kind} {input:?}: want {want:?}, got {got:?}"))
        })
        .collect()
}

#[test]
fn the_simulators_phone_key_gives_every_expected_key() {
    assert_eq!(mismatches("phone", phone_key), Vec::<String>::new());
}

#[test]
fn the_simulators_website_key_gives_every_expected_key() {
    assert_eq!(mismatches("website", website_key), Vec::<String>::new());
}

#[test]
fn the_simulators_name_key_gives_every_expected_key() {
    assert_eq!(mismatches("name", name_key), Vec::<String>::new());
}

#[test]
fn the_simulators_email_key_gives_every_expected_key() {
    assert_eq!(mismatches("email", email_key), Vec::<String>::new());
}
