//! The CRM side of a generated tenant (what the CRM held before its first import) and the
//! ground-truth count table every simulator's generator produces.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Ground truth of an import: stage (`"users"`, `"companies"`, ...) -> outcome
/// (`"created"`, `"linked"`, `"skipped:<reason>"`) -> count. Only non-zero counts appear.
pub type Expected = BTreeMap<String, BTreeMap<String, u64>>;

/// Adds one `outcome` to `stage` in `expected`.
pub fn tally(expected: &mut Expected, stage: &str, outcome: &str) {
    *expected.entry(stage.to_string()).or_default().entry(outcome.to_string()).or_insert(0) += 1;
}

/// The records a CRM tenant holds before its first import.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrmSeed {
    /// CRM users (some share an email, in another letter case, with an external member).
    pub users: Vec<SeedUser>,
    /// CRM companies (some match an external company by phone, website or name only).
    pub companies: Vec<SeedCompany>,
    /// CRM contacts (some share an email, in another letter case, with an external contact).
    pub contacts: Vec<SeedContact>,
}

/// A CRM user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedUser {
    /// Login email.
    pub email: String,
    /// Display name.
    pub name: String,
    /// CRM role: `"admin"`, `"salesperson"`, `"marketer"` or `"no_type"`.
    pub role: String,
}

/// A CRM company.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedCompany {
    /// Company name as typed in the CRM.
    pub name: String,
    /// Phone, formatted however the CRM user typed it.
    pub phone: Option<String>,
    /// Website, with or without scheme, `www.` and path.
    pub website: Option<String>,
}

/// A CRM contact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedContact {
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Email, in whatever letter case the CRM user typed it.
    pub email: Option<String>,
    /// Phone.
    pub phone: Option<String>,
}
