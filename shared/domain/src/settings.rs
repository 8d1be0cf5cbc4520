//! A connection's settings (PRODUCT.md section 10): what the tenant chose for the flows of
//! one connection, kept with the connection and changed field by field.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// Which way auto-sync moves changes (PRODUCT.md section 6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoSync {
    /// No auto-sync.
    #[default]
    Off,
    /// External changes reach the CRM (webhooks and the scheduled poll).
    Inbound,
    /// CRM changes reach the external system.
    Outbound,
    /// Both.
    TwoWay,
}

impl AutoSync {
    /// Whether external changes are taken in.
    pub fn inbound(self) -> bool {
        matches!(self, AutoSync::Inbound | AutoSync::TwoWay)
    }

    /// Whether CRM changes are pushed out.
    pub fn outbound(self) -> bool {
        matches!(self, AutoSync::Outbound | AutoSync::TwoWay)
    }
}

/// The settings of one connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionSettings {
    /// "Send to <system>" refuses a company or contact without an opportunity (PRODUCT.md
    /// section 5: send no clutter). Default true.
    #[serde(default = "yes")]
    pub export_requires_opportunity: bool,
    /// Auto-sync's direction; off until the tenant switches it on after an import.
    #[serde(default)]
    pub auto_sync: AutoSync,
    /// Whether a delete on one side deletes the linked record on the other: a record deleted
    /// in the external system is removed from the CRM (sync in), and a CRM record deleted
    /// through the API is deleted in the system (sync out). Otherwise a delete is only
    /// logged. Default false.
    #[serde(default)]
    pub propagate_deletes: bool,
    /// The most calls Tandem makes to the system in any rolling 24 hours (HubSpot's "calls
    /// allocated to the integration"); `None`: no cap. Work that would go over waits until
    /// calls leave the window ([`crate::budget`]).
    #[serde(default)]
    pub api_budget_per_day: Option<u32>,
}

fn yes() -> bool {
    true
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            export_requires_opportunity: true,
            auto_sync: AutoSync::Off,
            propagate_deletes: false,
            api_budget_per_day: None,
        }
    }
}

/// A change to some settings: the fields present are set, the others kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    pub export_requires_opportunity: Option<bool>,
    pub auto_sync: Option<AutoSync>,
    pub propagate_deletes: Option<bool>,
    /// `Some(None)`: the budget is removed (`null`); `None`: left as it is.
    #[serde(skip)]
    pub api_budget_per_day: Option<Option<u32>>,
}

/// The budget's field name.
const BUDGET: &str = "api_budget_per_day";

/// What the settings body looks like, for error messages.
pub const EXAMPLE: &str = r#"{"export_requires_opportunity": true, "auto_sync": "off" | "inbound" | "outbound" | "two_way", "propagate_deletes": false, "api_budget_per_day": 10000 | null}"#;

impl SettingsChange {
    /// Parses a `PUT /connections/{system}/settings` body, naming what is wrong.
    /// `api_budget_per_day` is a whole number of calls from 1 to 4294967295, or `null` to
    /// remove the cap.
    pub fn parse(body: &serde_json::Value) -> Result<Self, DomainError> {
        let mut rest = body.clone();
        let budget = match rest.as_object_mut().and_then(|o| o.remove(BUDGET)) {
            None => None,
            Some(serde_json::Value::Null) => Some(None),
            Some(value) => match value.as_u64().map(u32::try_from) {
                Some(Ok(n)) if n > 0 => Some(Some(n)),
                _ => {
                    return Err(DomainError::invalid(format!(
                        "{BUDGET} must be a whole number of calls from 1 to {} (or null for no cap), not {value}",
                        u32::MAX
                    )));
                }
            },
        };
        let mut change: SettingsChange = serde_json::from_value(rest)
            .map_err(|e| DomainError::invalid(format!("{e}; expected a body like {EXAMPLE}")))?;
        change.api_budget_per_day = budget;
        Ok(change)
    }

    /// `settings` with this change applied.
    pub fn apply(&self, settings: &ConnectionSettings) -> ConnectionSettings {
        ConnectionSettings {
            export_requires_opportunity: self
                .export_requires_opportunity
                .unwrap_or(settings.export_requires_opportunity),
            auto_sync: self.auto_sync.unwrap_or(settings.auto_sync),
            propagate_deletes: self.propagate_deletes.unwrap_or(settings.propagate_deletes),
            api_budget_per_day: self.api_budget_per_day.unwrap_or(settings.api_budget_per_day),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_connection_without_settings_requires_an_opportunity_to_export_and_does_not_sync() {
        let s: ConnectionSettings = serde_json::from_value(json!({})).unwrap();
        assert!(s.export_requires_opportunity);
        assert_eq!((s.auto_sync, s.propagate_deletes), (AutoSync::Off, false));
    }

    #[test]
    fn a_change_sets_only_the_fields_it_names() {
        let change = SettingsChange::parse(&json!({"export_requires_opportunity": false})).unwrap();
        assert!(!change.apply(&ConnectionSettings::default()).export_requires_opportunity);
        let empty = SettingsChange::parse(&json!({})).unwrap();
        assert_eq!(empty.apply(&ConnectionSettings::default()), ConnectionSettings::default());
        let sync =
            SettingsChange::parse(&json!({"auto_sync": "inbound"})).unwrap().apply(&ConnectionSettings::default());
        assert_eq!((sync.auto_sync, sync.export_requires_opportunity), (AutoSync::Inbound, true));
    }

    #[test]
    fn unknown_settings_are_refused_by_name() {
        let err = SettingsChange::parse(&json!({"colour": "red"})).unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
        let two_way = SettingsChange::parse(&json!({"auto_sync": "two_way"})).unwrap();
        assert_eq!(two_way.apply(&ConnectionSettings::default()).auto_sync, AutoSync::TwoWay);
        let err = SettingsChange::parse(&json!({"auto_sync": "sideways"})).unwrap_err().to_string();
        assert!(err.contains("sideways"), "{err}");
        let err = SettingsChange::parse(&json!({"export_requires_opportunity": "yes"})).unwrap_err().to_string();
        assert!(err.contains("boolean"), "{err}");
    }

    #[test]
    fn an_api_budget_is_set_kept_by_other_changes_and_removed_with_null() {
        let set = SettingsChange::parse(&json!({"api_budget_per_day": 5000})).unwrap();
        let with_budget = set.apply(&ConnectionSettings::default());
        assert_eq!(with_budget.api_budget_per_day, Some(5000));
        let other = SettingsChange::parse(&json!({"propagate_deletes": true})).unwrap().apply(&with_budget);
        assert_eq!((other.api_budget_per_day, other.propagate_deletes), (Some(5000), true));
        let removed = SettingsChange::parse(&json!({"api_budget_per_day": null})).unwrap().apply(&other);
        assert_eq!(removed.api_budget_per_day, None);
        let stored = serde_json::to_value(&with_budget).unwrap();
        assert_eq!(stored["api_budget_per_day"], 5000);
        let read: ConnectionSettings = serde_json::from_value(stored).unwrap();
        assert_eq!(read, with_budget);
    }

    #[test]
    fn a_budget_of_zero_a_fraction_a_negative_a_text_or_too_large_a_number_is_refused_naming_the_field() {
        for bad in [json!(0), json!(1.5), json!(-3), json!("1000"), json!(true), json!(5_000_000_000u64), json!([1])] {
            let err = SettingsChange::parse(&json!({"api_budget_per_day": bad, "auto_sync": "inbound"}))
                .unwrap_err()
                .to_string();
            assert!(err.contains("api_budget_per_day") && err.contains("whole number"), "{bad}: {err}");
        }
        let err = SettingsChange::parse(&json!({"api_budget_per_day": 10, "colour": "red"})).unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
    }
}
