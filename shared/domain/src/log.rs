//! Record outcomes and sync-log entries (PRODUCT.md section 8): one entry per record
//! operation, with a deterministic id so a retried operation never logs twice.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::error::DomainError;
use crate::ids::{JobId, RecordId, RecordKind, Stage, System, TenantId};
use crate::normalise::Timestamp;

/// Why a record was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Inactive in the external system.
    Inactive,
    /// Deleted in the external system.
    Deleted,
    /// A member without an email cannot become a CRM user.
    NoEmail,
    /// The member's role is not mapped.
    RoleNotMapped,
    /// The record's (first) type/status is not mapped.
    TypeNotMapped,
    /// The catalog item's category is not mapped.
    CategoryNotMapped,
    /// The catalog item's billing option is not mapped.
    BillingNotMapped,
    /// The contact's company exists externally but was not imported.
    CompanyNotImported,
    /// The activity's contact is not in the CRM.
    ContactNotInCrm,
    /// The activity's creator is not linked to a CRM user.
    CreatorNotLinked,
    /// Already linked and unchanged since last seen.
    Unchanged,
    /// The incoming values are what Tandem itself last pushed (our own write echoed back).
    Echo,
    /// Not linked to the system, and the settings do not let a sync create it there.
    NotLinked,
    /// Tandem does not write records of this kind to the system.
    NotWritten,
    /// Not in the system, and the connection sends only companies and contacts that have
    /// an opportunity (settings: `export_requires_opportunity`).
    NoOpportunity,
    /// Salesforce's field-level mode: the record does not meet the selective-sync criteria
    /// (or the change came before they were saved), or is not one the map sends (a contact
    /// without a company, an opportunity before its stage).
    NotSelected,
}

impl SkipReason {
    /// Every reason.
    pub const ALL: &[SkipReason] = &[
        SkipReason::Inactive,
        SkipReason::Deleted,
        SkipReason::NoEmail,
        SkipReason::RoleNotMapped,
        SkipReason::TypeNotMapped,
        SkipReason::CategoryNotMapped,
        SkipReason::BillingNotMapped,
        SkipReason::CompanyNotImported,
        SkipReason::ContactNotInCrm,
        SkipReason::CreatorNotLinked,
        SkipReason::Unchanged,
        SkipReason::Echo,
        SkipReason::NotLinked,
        SkipReason::NotWritten,
        SkipReason::NoOpportunity,
        SkipReason::NotSelected,
    ];

    /// The reason's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Inactive => "inactive",
            SkipReason::Deleted => "deleted",
            SkipReason::NoEmail => "no_email",
            SkipReason::RoleNotMapped => "role_not_mapped",
            SkipReason::TypeNotMapped => "type_not_mapped",
            SkipReason::CategoryNotMapped => "category_not_mapped",
            SkipReason::BillingNotMapped => "billing_not_mapped",
            SkipReason::CompanyNotImported => "company_not_imported",
            SkipReason::ContactNotInCrm => "contact_not_in_crm",
            SkipReason::CreatorNotLinked => "creator_not_linked",
            SkipReason::Unchanged => "unchanged",
            SkipReason::Echo => "echo",
            SkipReason::NotLinked => "not_linked",
            SkipReason::NotWritten => "not_written",
            SkipReason::NoOpportunity => "no_opportunity",
            SkipReason::NotSelected => "not_selected",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to one record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "detail", rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Linked,
    Updated,
    Skipped(SkipReason),
    /// Failed, with the reason (the external system's own message where there is one).
    Failed(String),
    /// Deleted in the external system, and so removed from the CRM (`propagate_deletes`).
    Deleted,
}

impl Outcome {
    /// The counting key: `created`, `linked`, `updated`, `skipped:<reason>`, `failed`.
    pub fn key(&self) -> String {
        match self {
            Outcome::Created => "created".into(),
            Outcome::Linked => "linked".into(),
            Outcome::Updated => "updated".into(),
            Outcome::Skipped(r) => format!("skipped:{}", r.as_str()),
            Outcome::Failed(_) => "failed".into(),
            Outcome::Deleted => "deleted".into(),
        }
    }

    /// Whether the record is in the CRM (and linked) after this outcome.
    pub fn in_crm(&self) -> bool {
        matches!(self, Outcome::Created | Outcome::Linked | Outcome::Updated | Outcome::Skipped(SkipReason::Unchanged))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Failed(why) => write!(f, "failed: {why}"),
            other => f.write_str(&other.key()),
        }
    }
}

/// Which way a record moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Import,
    Export,
    SyncIn,
    SyncOut,
    Webhook,
}

/// One sync-log entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Deterministic per operation (import: `job:stage:external id`).
    pub id: String,
    pub tenant: TenantId,
    pub at: Timestamp,
    pub system: System,
    pub direction: Direction,
    pub object: RecordKind,
    #[serde(default)]
    pub crm_id: Option<RecordId>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
    #[serde(default)]
    pub job_id: Option<JobId>,
    /// For a linked record: the look-up that matched (`phone +15550100`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<String>,
    /// For an updated record: the CRM fields that changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// For a sync where both sides changed a field since the last sync: who won each, the
    /// losing value (so it can be restored) and both sides' timestamps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<ConflictLog>,
    /// For a failure the external system reported: its kind, status and the vendor's own
    /// code (the outcome keeps the message), for grouping failures and the failure event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<LogError>,
}

/// What the external system said when a record operation failed, beside the message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogError {
    /// The failure's class (`invalid`, `not_found`, `rate_limited`, ...).
    pub kind: crate::ports::ErrorKind,
    /// The vendor's own error code (ConnectWise `code`, Salesforce `errorCode`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The HTTP status it answered, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

impl LogError {
    /// What `e` says besides its message.
    pub fn of(e: &crate::ports::ConnectorError) -> Self {
        Self { kind: e.kind, code: e.code.clone(), status: e.status }
    }
}

/// One field both sides changed, as the log keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConflictLog {
    pub field: String,
    /// `external` or `crm`.
    pub winner: String,
    /// The value that lost.
    pub loser: serde_json::Value,
    /// When the CRM record last changed before the sync.
    pub crm_at: Timestamp,
    /// When the external system says its record changed, if it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_at: Option<Timestamp>,
}

impl LogEntry {
    /// An entry of `outcome` for one `object` record outside a job, with no record ids,
    /// match, fields or conflicts (set those with struct update syntax).
    pub fn of(
        id: String,
        tenant: &TenantId,
        at: Timestamp,
        system: System,
        direction: Direction,
        object: RecordKind,
        outcome: Outcome,
    ) -> Self {
        Self {
            id,
            tenant: tenant.clone(),
            at,
            system,
            direction,
            object,
            crm_id: None,
            external_id: None,
            outcome,
            job_id: None,
            matched: None,
            fields: Vec::new(),
            conflicts: Vec::new(),
            error: None,
        }
    }

    /// The id of the entry an import job writes for one external record.
    pub fn import_id(job: &JobId, stage: Stage, external_id: &str) -> String {
        format!("{job}:{stage}:{external_id}")
    }
}

/// A filter over the sync log.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogFilter {
    /// Outcome key (`created`, `skipped:inactive`) or prefix (`skipped`).
    #[serde(default)]
    pub outcome: Option<String>,
    #[serde(default)]
    pub system: Option<System>,
    #[serde(default)]
    pub object: Option<RecordKind>,
    #[serde(default)]
    pub job_id: Option<JobId>,
    /// Only entries at or after.
    #[serde(default)]
    pub since: Option<Timestamp>,
    /// Only entries before.
    #[serde(default)]
    pub until: Option<Timestamp>,
    /// At most this many (newest first); default 100, at most 1000.
    #[serde(default)]
    pub limit: Option<usize>,
}

impl LogFilter {
    /// Whether an entry passes the filter (the time window is applied by the store).
    pub fn matches(&self, e: &LogEntry) -> bool {
        let outcome_ok = self.outcome.as_deref().is_none_or(|o| {
            let key = e.outcome.key();
            key == o || key.split(':').next() == Some(o)
        });
        outcome_ok
            && self.system.is_none_or(|s| s == e.system)
            && self.object.is_none_or(|k| k == e.object)
            && self.job_id.as_ref().is_none_or(|j| e.job_id.as_ref() == Some(j))
            && self.since.is_none_or(|t| e.at >= t)
            && self.until.is_none_or(|t| e.at < t)
    }

    /// Checks what a caller asked for: a known outcome key (`created`, `linked`,
    /// `updated`, `failed`, `skipped` or `skipped:<reason>`) and `since` before `until`.
    pub fn validate(&self) -> Result<(), DomainError> {
        if let Some(o) = self.outcome.as_deref() {
            let known = matches!(o, "created" | "linked" | "updated" | "failed" | "skipped")
                || o.strip_prefix("skipped:").is_some_and(|r| SkipReason::ALL.iter().any(|k| k.as_str() == r));
            if !known {
                let reasons: Vec<&str> = SkipReason::ALL.iter().map(|r| r.as_str()).collect();
                return Err(DomainError::invalid(format!(
                    "unknown outcome {o:?}; expected created, linked, updated, failed, skipped, or skipped:<reason> \
                     with a reason among {}",
                    reasons.join(", ")
                )));
            }
        }
        if let (Some(since), Some(until)) = (self.since, self.until)
            && since >= until
        {
            return Err(DomainError::invalid(format!("since ({since}) must be before until ({until})")));
        }
        Ok(())
    }

    /// The effective limit.
    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(100).clamp(1, 1000)
    }
}
