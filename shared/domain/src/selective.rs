//! Salesforce's selective sync (PRODUCT.md section 7): the criteria a CRM record must meet
//! to be sent in the field-level mode (every rule holds: a field equals a value, is one of
//! some values, is not empty, or is greater than a number or a date; a rule on an
//! opportunity field holds when any of the company's opportunities meets it, so "reached
//! the proposal stage" is `opportunity.stage` equals `proposal`), and [`matches`], the pure
//! test of one record against them. Criteria apply from the moment they are saved.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::normalise::Timestamp;
use crate::records::Record;

/// What a rule asks of a field's value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Test {
    Equals(Value),
    In(Vec<Value>),
    /// `true`: the field holds a value.
    NotEmpty(bool),
    /// A number, or a date (`YYYY-MM-DD` or RFC 3339).
    GreaterThan(Value),
}

/// One rule: a CRM field (`company.company_type`, `contact.email`, `opportunity.stage`,
/// `company.custom.<name>`) and its test, e.g. `{"field": "opportunity.value",
/// "greater_than": 5000}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub field: String,
    #[serde(flatten)]
    pub test: Test,
}

/// Saved criteria: the rules, and when they were saved (records are sent from then on).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SelectiveSync {
    pub rules: Vec<Rule>,
    pub since: Timestamp,
}

/// What a rule is tested against: a company or contact with what belongs to it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Subject<'a> {
    pub company: Option<&'a Record>,
    pub contact: Option<&'a Record>,
    pub opportunities: &'a [Record],
}

/// Whether a rule names a field that exists and a test its value can take; why not.
pub fn check(rule: &Rule) -> Result<(), String> {
    let (_, value) =
        crate::field_map::crm_field(&rule.field).ok_or_else(|| format!("{}: no such CRM field", rule.field))?;
    match (&rule.test, value.comparable()) {
        (Test::GreaterThan(v), false) => {
            Err(format!("{}: greater_than takes a number or date field, not {v}", rule.field))
        }
        (Test::GreaterThan(v), true) if !(v.is_number() || as_date(v).is_some()) => {
            Err(format!("{}: greater_than takes a number or a date, not {v}", rule.field))
        }
        (Test::NotEmpty(false), _) => Err(format!("{}: not_empty takes true", rule.field)),
        _ => Ok(()),
    }
}

/// Whether `subject` meets every rule (no rules: every record).
pub fn matches(rules: &[Rule], subject: &Subject<'_>) -> bool {
    rules.iter().all(|rule| values(&rule.field, subject).iter().any(|v| holds(&rule.test, v)))
}

/// The values `path` names in `subject` (one per opportunity for an opportunity field;
/// `Null` where a record lacks the field).
fn values(path: &str, subject: &Subject<'_>) -> Vec<Value> {
    let Some((kind, field)) = path.split_once('.') else { return Vec::new() };
    let read = |r: &Record| crate::field_map::crm_value(r, field);
    match kind {
        "company" => subject.company.map(read).into_iter().collect(),
        "contact" => subject.contact.map(read).into_iter().collect(),
        "opportunity" => subject.opportunities.iter().map(read).collect(),
        _ => Vec::new(),
    }
}

fn holds(test: &Test, v: &Value) -> bool {
    let empty = |v: &Value| v.is_null() || v.as_str().is_some_and(|s| s.trim().is_empty());
    match test {
        Test::Equals(want) => same(v, want),
        Test::In(wanted) => wanted.iter().any(|w| same(v, w)),
        Test::NotEmpty(_) => !empty(v),
        Test::GreaterThan(bound) => match (v.as_f64(), bound.as_f64(), as_date(v), as_date(bound)) {
            (Some(a), Some(b), _, _) => a > b,
            (_, _, Some(a), Some(b)) => a > b,
            _ => false,
        },
    }
}

/// Equal values; text compared without case or surrounding space.
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_str(), b.as_str()) {
        (Some(x), Some(y)) => x.trim().eq_ignore_ascii_case(y.trim()),
        _ => a == b || a.as_f64().is_some() && a.as_f64() == b.as_f64(),
    }
}

/// A date or a date and time, as an instant (a date at its midnight UTC).
fn as_date(v: &Value) -> Option<Timestamp> {
    let s = v.as_str()?.trim();
    Timestamp::parse(s).ok().or_else(|| Timestamp::parse(&format!("{s}T00:00:00Z")).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(v: Value) -> Record {
        serde_json::from_value(v).unwrap()
    }

    fn meta() -> Value {
        json!({"id": "x", "version": 1, "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"})
    }

    fn company() -> Record {
        record(json!({"object": "company", "meta": meta(), "name": "Acme", "phone": "555 0100",
            "company_type": "client", "custom_fields": {"Region": "North"}}))
    }

    fn opportunity(stage: &str, value: f64, close: &str) -> Record {
        record(json!({"object": "opportunity", "meta": meta(), "name": "Deal", "stage": stage, "value": value,
            "close_date": close}))
    }

    fn rule(v: Value) -> Rule {
        let rule: Rule = serde_json::from_value(v).unwrap();
        check(&rule).unwrap();
        rule
    }

    #[test]
    fn every_rule_must_hold_and_an_opportunity_rule_holds_for_any_opportunity() {
        let (c, opps) = (
            company(),
            vec![opportunity("discovery", 800.0, "2025-03-01"), opportunity("proposal", 12_000.0, "2025-06-30")],
        );
        let subject = Subject { company: Some(&c), contact: None, opportunities: &opps };
        let cases = [
            (json!({"field": "company.company_type", "equals": "Client"}), true),
            (json!({"field": "company.company_type", "in": ["prospect", "vendor"]}), false),
            (json!({"field": "company.website", "not_empty": true}), false),
            (json!({"field": "company.custom.Region", "equals": "north"}), true),
            (json!({"field": "opportunity.stage", "equals": "proposal"}), true),
            (json!({"field": "opportunity.value", "greater_than": 10_000}), true),
            (json!({"field": "opportunity.value", "greater_than": 20_000}), false),
            (json!({"field": "opportunity.close_date", "greater_than": "2025-06-01"}), true),
            (json!({"field": "opportunity.close_date", "greater_than": "2025-07-01"}), false),
        ];
        for (r, expected) in cases {
            assert_eq!(matches(&[rule(r.clone())], &subject), expected, "{r}");
        }
        let both = [
            rule(json!({"field": "company.company_type", "equals": "client"})),
            rule(json!({"field": "opportunity.stage", "equals": "won"})),
        ];
        assert!(!matches(&both, &subject), "every rule must hold");
        assert!(matches(&[], &subject), "no rules: every record");
        let none = Subject { company: Some(&c), contact: None, opportunities: &[] };
        assert!(!matches(&[rule(json!({"field": "opportunity.stage", "not_empty": true}))], &none));
    }

    #[test]
    fn a_rule_on_no_such_field_or_a_comparison_a_field_cannot_take_is_refused() {
        let parse = |v: Value| serde_json::from_value::<Rule>(v).map_err(|e| e.to_string()).and_then(|r| check(&r));
        assert!(parse(json!({"field": "company.shoe_size", "equals": 1})).unwrap_err().contains("no such CRM field"));
        assert!(
            parse(json!({"field": "company.name", "greater_than": 3})).unwrap_err().contains("number or date field")
        );
        assert!(
            parse(json!({"field": "opportunity.value", "greater_than": "lots"}))
                .unwrap_err()
                .contains("a number or a date")
        );
        assert!(parse(json!({"field": "company.name", "not_empty": false})).is_err());
        assert!(parse(json!({"field": "company.name", "matches": "A*"})).is_err(), "an unknown test");
    }
}
