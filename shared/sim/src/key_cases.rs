//! The shared table of normaliser cases (`tests/key_cases.json`: per key kind, inputs and
//! the key each must give) and the one check both the simulators' normalisers and the
//! domain's run against it, so the two cannot drift apart.

use serde_json::Value;

/// The table: key kind (`phone`, `website`, `name`, `email`) -> cases of `{input, key, note?}`.
pub const TABLE: &str = include_str!("../tests/key_cases.json");

/// Every case of `kind` whose key from `normalise` differs from the table's, described
/// (an unreadable table or a kind with fewer than ten cases is one such line too).
pub fn mismatches(kind: &str, normalise: fn(&str) -> Option<String>) -> Vec<String> {
    let table: Value = match serde_json::from_str(TABLE) {
        Ok(t) => t,
        Err(e) => return vec![format!("the key case table does not parse: {e}")],
    };
    let Some(cases) = table[kind].as_array().filter(|c| c.len() >= 10) else {
        return vec![format!("{kind}: fewer than ten cases, too few to mean much")];
    };
    cases
        .iter()
        .filter_map(|case| {
            let Some(input) = case["input"].as_str() else {
                return Some(format!("{kind}: a case without an input: {case}"));
            };
            let want = case["key"].as_str().map(str::to_string);
            let got = normalise(input);
            (got != want).then(|| format!("{kind} {input:?}: want {want:?}, got {got:?}"))
        })
        .collect()
}
