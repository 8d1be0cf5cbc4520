//! An export ("Send to <system>", PRODUCT.md section 5): what was asked for, where it
//! stands, and one result per record it touched, kept so a redelivered export message
//! resumes after the records it already sent.

use serde::{Deserialize, Serialize};

use crate::ids::{JobId, RecordId, RecordKind, System, TenantId};
use crate::normalise::Timestamp;

/// What of the record to send besides what it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Include {
    /// The record itself (its fields).
    Details,
    /// The activities on it.
    Activities,
    /// The opportunities of it.
    Opportunities,
}

/// Where an export stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportStatus {
    Running,
    /// Every record it touched has its result (some may be refused or failed).
    Done,
    /// It could not run at all (credentials, the connection gone); `message` says why.
    Failed,
}

/// What happened to one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportOutcome {
    /// Created in the system.
    Created,
    /// Already in the system (linked, or found by the duplicate search and linked now) and
    /// brought up to date.
    Updated,
    /// Not sent, and why (Tandem's rule: not mapped, not written, a record it needs missing).
    Refused,
    /// The system refused it; `message` is its own.
    Failed,
}

/// One record's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportResult {
    pub kind: RecordKind,
    pub id: RecordId,
    pub outcome: ExportOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Export {
    pub id: JobId,
    pub tenant: TenantId,
    pub system: System,
    /// The record the user sent: a company or a contact.
    pub kind: RecordKind,
    pub record: RecordId,
    pub include: Vec<Include>,
    pub status: ExportStatus,
    #[serde(default)]
    pub results: Vec<ExportResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The store's version; 0 before the first write.
    #[serde(skip)]
    pub version: u64,
}

impl Export {
    /// The result already reached for a record, if any (a resumed export skips it).
    pub fn result_of(&self, kind: RecordKind, id: &RecordId) -> Option<&ExportResult> {
        self.results.iter().find(|r| r.kind == kind && &r.id == id)
    }

    /// Running without a result for at least `stall_after` (its message lost or stuck).
    pub fn is_stalled(&self, now: Timestamp, stall_after: std::time::Duration) -> bool {
        let idle = (now.datetime() - self.updated_at.datetime()).as_seconds_f64();
        self.status == ExportStatus::Running && idle >= stall_after.as_secs_f64()
    }

    /// Whether the export asked for `what`.
    pub fn includes(&self, what: Include) -> bool {
        self.include.contains(&what)
    }
}

/// The work message of an export (kind `export`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportMessage {
    pub tenant: TenantId,
    pub system: System,
    pub export_id: JobId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_export_without_a_result_for_the_stall_time_is_stalled_and_a_finished_one_never() {
        let at = |s: i64| Timestamp::from_unix(s).unwrap();
        let mut e = Export {
            id: JobId::from_raw("e"),
            tenant: TenantId::parse("t").unwrap(),
            system: System::Halo,
            kind: RecordKind::Company,
            record: RecordId::from_raw("c"),
            include: vec![Include::Details],
            status: ExportStatus::Running,
            results: Vec::new(),
            message: None,
            created_at: at(0),
            updated_at: at(0),
            version: 1,
        };
        let ten_minutes = std::time::Duration::from_secs(600);
        assert!(!e.is_stalled(at(599), ten_minutes));
        assert!(e.is_stalled(at(600), ten_minutes));
        e.status = ExportStatus::Done;
        assert!(!e.is_stalled(at(6000), ten_minutes));
    }
}
