//! The custom fields generated companies and contacts carry (S2 `CustomFieldValue`:
//! `id`, `caption`, `type`, `entryMethod`, `numberOfDecimals`, `value`), so that
//! `customFieldConditions` has something to select. ConnectWise lists every custom field
//! defined for the record type on each record, with `value` null where none is set.
//! Values come from the record's id alone, not the generator's random stream, so the rest
//! of a generated tenant (and its ground truth) is what it was without them.

use serde_json::{Value, json};

/// A tenant-defined custom field: id, caption, type, entry method, decimals, and the value
/// a record with id `n` holds (`None`: not set).
struct Definition {
    id: i64,
    caption: &'static str,
    kind: &'static str,
    entry: &'static str,
    decimals: u32,
    value: fn(u64) -> Value,
}

/// A well-mixed number from `id` and a salt, so fields of one record vary independently.
fn mix(id: i64, salt: u64) -> u64 {
    let mut x = (id as u64) ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

const COMPANY_FIELDS: &[Definition] = &[
    Definition {
        id: 1,
        caption: "Account Tier",
        kind: "Text",
        entry: "List",
        decimals: 0,
        value: |h| match h % 5 {
            0 => Value::Null,
            1 => json!("Gold"),
            2 | 3 => json!("Silver"),
            _ => json!("Bronze"),
        },
    },
    Definition {
        id: 2,
        caption: "Managed Seats",
        kind: "Number",
        entry: "EntryField",
        decimals: 0,
        value: |h| if h % 4 == 0 { Value::Null } else { json!(5 + h % 200) },
    },
    Definition {
        id: 3,
        caption: "Backup Included",
        kind: "Checkbox",
        entry: "EntryField",
        decimals: 0,
        value: |h| json!(h % 3 == 0),
    },
];

const CONTACT_FIELDS: &[Definition] = &[
    Definition {
        id: 11,
        caption: "Preferred Channel",
        kind: "Text",
        entry: "List",
        decimals: 0,
        value: |h| match h % 4 {
            0 => Value::Null,
            1 => json!("Email"),
            2 => json!("Phone"),
            _ => json!("Portal"),
        },
    },
    Definition {
        id: 12,
        caption: "Newsletter",
        kind: "Checkbox",
        entry: "EntryField",
        decimals: 0,
        value: |h| json!(h % 2 == 0),
    },
];

fn entries(defs: &[Definition], id: i64) -> Value {
    Value::Array(
        defs.iter()
            .map(|d| {
                json!({
                    "id": d.id,
                    "caption": d.caption,
                    "type": d.kind,
                    "entryMethod": d.entry,
                    "numberOfDecimals": d.decimals,
                    "value": (d.value)(mix(id, d.id as u64)),
                })
            })
            .collect(),
    )
}

/// The `customFields` of the generated company with id `id`.
pub(crate) fn company(id: i64) -> Value {
    entries(COMPANY_FIELDS, id)
}

/// The `customFields` of the generated contact with id `id`.
pub(crate) fn contact(id: i64) -> Value {
    entries(CONTACT_FIELDS, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_lists_every_field_and_values_vary_with_the_id() {
        let a = company(251);
        assert_eq!(a.as_array().map(Vec::len), Some(COMPANY_FIELDS.len()));
        assert_eq!(a, company(251), "the same id gives the same values");
        let tiers: std::collections::HashSet<String> =
            (250..300).map(|id| company(id)[0]["value"].to_string()).collect();
        assert!(tiers.len() >= 3, "{tiers:?}");
        assert_eq!(contact(7)[1]["caption"], "Newsletter");
    }
}
