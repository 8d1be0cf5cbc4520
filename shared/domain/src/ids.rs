//! Identifiers and closed vocabularies: tenants, record ids, systems, record kinds, stages.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::error::DomainError;

/// One CRM account (an MSP). Every key, record and log line starts with it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    /// Parses a tenant id: 1-64 characters of letters, digits, `-`, `_` or `.`.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(Self(raw.to_string()))
        } else {
            Err(DomainError::invalid(format!("tenant id {raw:?} must be 1-64 letters, digits, '-', '_' or '.'")))
        }
    }

    /// The tenant id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TenantId> for String {
    fn from(value: TenantId) -> Self {
        value.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! uuid_id {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new random id.
            pub fn new() -> Self {
                Self(uuid::Uuid::new_v4().simple().to_string())
            }
            /// Wraps an id read back from storage or a request path.
            pub fn from_raw(raw: impl Into<String>) -> Self {
                Self(raw.into())
            }
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

uuid_id!(RecordId, "The CRM-side id of a record.");
uuid_id!(JobId, "The id of one import job.");

macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($variant),+ }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = std::borrow::Cow::<'de, str>::deserialize(d)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The value's wire name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(DomainError::invalid(format!(
                        concat!("unknown ", $what, " {:?}; expected one of: {}"),
                        other,
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }
    };
}

vocabulary!(
    /// An external system Tandem connects to.
    System, "system", {
        ConnectWise => "connectwise",
        Halo => "halo",
        Syncro => "syncro",
        Salesforce => "salesforce",
    }
);

vocabulary!(
    /// The kind of a CRM record.
    RecordKind, "record kind", {
        User => "user",
        Company => "company",
        Contact => "contact",
        List => "list",
        Solution => "solution",
        Activity => "activity",
        Opportunity => "opportunity",
    }
);

vocabulary!(
    /// One step of an import.
    Stage, "stage", {
        Users => "users",
        Companies => "companies",
        Contacts => "contacts",
        Solutions => "solutions",
        Activities => "activities",
        Opportunities => "opportunities",
    }
);

impl Stage {
    /// The CRM record kind a stage writes.
    pub fn kind(self) -> RecordKind {
        match self {
            Stage::Users => RecordKind::User,
            Stage::Companies => RecordKind::Company,
            Stage::Contacts => RecordKind::Contact,
            Stage::Solutions => RecordKind::Solution,
            Stage::Activities => RecordKind::Activity,
            Stage::Opportunities => RecordKind::Opportunity,
        }
    }

    /// The stage that imports `kind`, if one does (lists are made, not imported).
    pub fn of_kind(kind: RecordKind) -> Option<Stage> {
        Stage::ALL.iter().copied().find(|s| s.kind() == kind)
    }

    /// The stages whose records this stage links to, so must have completed first.
    pub fn needs(self) -> &'static [Stage] {
        match self {
            Stage::Users | Stage::Companies | Stage::Solutions => &[],
            Stage::Contacts => &[Stage::Companies],
            Stage::Activities => &[Stage::Users, Stage::Contacts],
            Stage::Opportunities => &[Stage::Users, Stage::Companies, Stage::Contacts],
        }
    }
}

impl System {
    /// The system's import stages in the order they run (PRODUCT.md section 3).
    pub const fn stages(self) -> &'static [Stage] {
        use Stage::*;
        match self {
            System::ConnectWise => &[Users, Companies, Contacts, Solutions, Activities, Opportunities],
            System::Salesforce | System::Halo => &[Users, Companies, Contacts, Opportunities, Activities],
            System::Syncro => &[Users, Companies, Contacts, Opportunities],
        }
    }

    /// The display name users know the system by.
    pub fn display_name(self) -> &'static str {
        match self {
            System::ConnectWise => "ConnectWise",
            System::Halo => "HaloPSA",
            System::Syncro => "Syncro",
            System::Salesforce => "Salesforce",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabularies_serialise_as_their_wire_names() {
        assert_eq!(serde_json::to_string(&System::ConnectWise).unwrap(), "\"connectwise\"");
        assert_eq!(serde_json::from_str::<Stage>("\"opportunities\"").unwrap(), Stage::Opportunities);
        let err = serde_json::from_str::<System>("\"connect_wise\"").unwrap_err().to_string();
        assert!(err.contains("unknown system"), "{err}");
    }

    #[test]
    fn every_stage_is_found_again_from_its_record_kind_and_lists_have_no_stage() {
        for stage in Stage::ALL {
            assert_eq!(Stage::of_kind(stage.kind()), Some(*stage));
        }
        assert_eq!(Stage::of_kind(RecordKind::List), None);
    }

    #[test]
    fn tenant_ids_are_checked() {
        assert!(TenantId::parse("acme-msp_1.eu").is_ok());
        assert!(TenantId::parse("").is_err());
        assert!(TenantId::parse("a#b").is_err());
    }
}
