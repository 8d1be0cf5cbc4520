//! The CRM's vocabularies as types, parsed once where a value enters (a mapping, a
//! stored record, a request): closed ones as enums (user role and state, activity kind),
//! open ones (company type, contact status, each tenant's own) as checked slugs.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::error::DomainError;

/// Whether `value` is a CRM slug: 1-64 lower-case ASCII letters, digits or `_`.
pub fn is_slug(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

macro_rules! slug {
    ($name:ident, $what:literal, $none:literal) => {
        #[doc = concat!("A CRM ", $what, ": a slug such as `", $none, "` (see [`is_slug`]).")]
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            #[doc = concat!("The ", $what, " of a record that has none: `", $none, "`.")]
            pub fn none() -> Self {
                Self($none.to_string())
            }

            /// Checks `value` is a slug.
            pub fn parse(value: &str) -> Result<Self, DomainError> {
                if is_slug(value) {
                    Ok(Self(value.to_string()))
                } else {
                    Err(DomainError::invalid(format!(
                        "{value:?} is not a {}; they are 1-64 lower-case letters, digits or '_'",
                        $what
                    )))
                }
            }

            /// Whether this is the "none" value.
            pub fn is_none(&self) -> bool {
                self.0 == $none
            }

            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::none()
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(value: String) -> Result<Self, String> {
                Self::parse(&value).map_err(|e| e.to_string())
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

slug!(CompanyType, "company type", "no_type");
slug!(ContactStatus, "contact status", "no_status");

macro_rules! closed {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value's wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses a wire name; anything else is refused naming the allowed values.
            pub fn parse(value: &str) -> Result<Self, DomainError> {
                Self::ALL.iter().copied().find(|v| v.as_str() == value).ok_or_else(|| {
                    let allowed: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    DomainError::invalid(format!("{value:?} is not a {}; use one of: {}", $what, allowed.join(", ")))
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

closed!(
    /// A CRM user's role.
    Role, "CRM role" {
        NoType => "no_type",
        Marketer => "marketer",
        Salesperson => "salesperson",
        Admin => "admin",
    }
);

closed!(
    /// Whether a CRM user has accepted their invitation.
    UserState, "user state" {
        Invited => "invited",
        Active => "active",
    }
);

closed!(
    /// What a CRM activity is (`task` only from Salesforce Tasks).
    ActivityKind, "activity kind" {
        Call => "call",
        Email => "email",
        Note => "note",
        Meeting => "meeting",
        Task => "task",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_vocabularies_take_slugs_and_refuse_anything_else_by_name() {
        assert_eq!(CompanyType::parse("managed_services").unwrap().as_str(), "managed_services");
        for bad in ["", "Client", "client type", "kunde-ä", &"x".repeat(65)] {
            let err = CompanyType::parse(bad).unwrap_err().to_string();
            assert!(err.contains("company type"), "{bad:?}: {err}");
        }
        assert!(serde_json::from_value::<ContactStatus>(serde_json::json!("Talking")).is_err());
        assert!(ContactStatus::none().is_none() && CompanyType::none() == "no_type");
    }

    #[test]
    fn closed_vocabularies_round_trip_their_wire_names_and_list_the_allowed_ones() {
        for kind in ActivityKind::ALL {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, serde_json::json!(kind.as_str()));
            assert_eq!(serde_json::from_value::<ActivityKind>(json).unwrap(), *kind);
        }
        let err = Role::parse("owner").unwrap_err().to_string();
        assert!(err.contains("no_type, marketer, salesperson, admin"), "{err}");
        assert_eq!(UserState::parse("invited").unwrap(), UserState::Invited);
    }
}
