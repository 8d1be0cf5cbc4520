//! What the writers share when they build a vendor's JSON body field by field.

use serde_json::{Map, Value};

/// Sets `key` in `body`. On a create a field without a value is left out (the system's
/// default applies); on an update it is sent as `null`, clearing it.
pub fn set(body: &mut Map<String, Value>, key: &str, value: Option<Value>, creating: bool) {
    match value {
        Some(v) => {
            body.insert(key.to_string(), v);
        }
        None if creating => {}
        None => {
            body.insert(key.to_string(), Value::Null);
        }
    }
}

/// A text value, when there is one.
pub fn string(s: Option<&str>) -> Option<Value> {
    s.map(|s| Value::String(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_value_is_left_out_of_a_create_and_cleared_by_an_update() {
        let mut create = Map::new();
        set(&mut create, "phone", None, true);
        set(&mut create, "name", string(Some("Acme")), true);
        assert_eq!(Value::Object(create), serde_json::json!({"name": "Acme"}));
        let mut update = Map::new();
        set(&mut update, "phone", None, false);
        assert_eq!(Value::Object(update), serde_json::json!({"phone": null}));
    }
}
