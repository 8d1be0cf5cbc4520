//! A connection's settings (PRODUCT.md section 10): what the tenant chose for the flows of
//! one connection, kept with the connection and changed field by field.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// The settings of one connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionSettings {
    /// "Send to <system>" refuses a company or contact without an opportunity (PRODUCT.md
    /// section 5: send no clutter). Default true.
    #[serde(default = "yes")]
    pub export_requires_opportunity: bool,
}

fn yes() -> bool {
    true
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self { export_requires_opportunity: true }
    }
}

/// A change to some settings: the fields present are set, the others kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    pub export_requires_opportunity: Option<bool>,
}

/// The settings the next issues add, refused by name until their flows exist rather than
/// stored without effect.
const NOT_BUILT: &[&str] = &["auto_sync", "propagate_deletes", "api_budget_per_day"];

impl SettingsChange {
    /// Parses a `PUT /connections/{system}/settings` body, naming what is wrong.
    pub fn parse(body: &serde_json::Value) -> Result<Self, DomainError> {
        if let Some(field) = body.as_object().and_then(|o| NOT_BUILT.iter().find(|f| o.contains_key(**f))) {
            return Err(DomainError::invalid(format!(
                "the setting {field:?} is not built yet; settable now: export_requires_opportunity"
            )));
        }
        serde_json::from_value(body.clone()).map_err(|e| {
            DomainError::invalid(format!("{e}; expected a body like {{\"export_requires_opportunity\": true}}"))
        })
    }

    /// `settings` with this change applied.
    pub fn apply(&self, settings: &ConnectionSettings) -> ConnectionSettings {
        ConnectionSettings {
            export_requires_opportunity: self
                .export_requires_opportunity
                .unwrap_or(settings.export_requires_opportunity),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_connection_without_settings_requires_an_opportunity_to_export() {
        let s: ConnectionSettings = serde_json::from_value(json!({})).unwrap();
        assert!(s.export_requires_opportunity);
    }

    #[test]
    fn a_change_sets_only_the_fields_it_names() {
        let change = SettingsChange::parse(&json!({"export_requires_opportunity": false})).unwrap();
        assert!(!change.apply(&ConnectionSettings::default()).export_requires_opportunity);
        let empty = SettingsChange::parse(&json!({})).unwrap();
        assert_eq!(empty.apply(&ConnectionSettings::default()), ConnectionSettings::default());
    }

    #[test]
    fn unknown_settings_and_settings_not_built_yet_are_refused_by_name() {
        let err = SettingsChange::parse(&json!({"colour": "red"})).unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
        let err = SettingsChange::parse(&json!({"auto_sync": "inbound"})).unwrap_err().to_string();
        assert!(err.contains("auto_sync") && err.contains("not built"), "{err}");
        let err = SettingsChange::parse(&json!({"export_requires_opportunity": "yes"})).unwrap_err().to_string();
        assert!(err.contains("boolean"), "{err}");
    }
}
