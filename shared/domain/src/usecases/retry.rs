//! Replaying one failed record operation (`POST /logs/{id}/retry`, issue 13) through the
//! work the flows already have: an inbound operation (import, sync in, webhook) takes the
//! external record in again (a `sync_record` message for its system, kind and id, as a
//! webhook notice would); an outbound one (export, sync out) pushes the CRM record as it is
//! now (a `sync_out` message for it, or its delete when the record is gone).
//!
//! The message carries a retry token derived from the log id: its deduplication id and the
//! log id of the retried operation come from it, so retrying twice quickly queues once,
//! and a retry that already ran is found done. A retry runs whether or not the
//! connection's auto-sync is on in that direction (a person asked for it).

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::DomainError;
use crate::ids::{RecordId, RecordKind, System, TenantId};
use crate::log::{Direction, Outcome};
use crate::sync::{SyncMessage, SyncOutMessage};
use crate::usecases::Services;
use crate::usecases::connections::connection;
use crate::work::Work;

/// What a retry queued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Retried {
    /// The failed log entry retried.
    pub log_id: String,
    pub system: System,
    pub direction: Direction,
    /// The work queued: `sync_record` (inbound) or `sync_out` (outbound).
    pub queued: &'static str,
    /// The queued message's deduplication id (the same for every retry of this entry).
    pub dedup_id: String,
    pub object: RecordKind,
    pub crm_id: Option<RecordId>,
    pub external_id: Option<String>,
}

/// The retry token of the log entry `log_id`: `retry-` and 16 hex digits of its SHA-256.
pub fn token(log_id: &str) -> String {
    format!("retry-{}", hex::encode(&Sha256::digest(log_id.as_bytes())[..8]))
}

/// Queues the replay of the failed log entry `log_id` of tenant `t` (see the module docs).
/// Unknown to the tenant: not found; an entry that did not fail, or names no record to
/// replay: refused.
pub async fn retry(svc: &Services, t: &TenantId, log_id: &str) -> Result<Retried, DomainError> {
    let entry = svc
        .store
        .logs_by_id(t, &[log_id.to_string()])
        .await?
        .remove(log_id)
        .ok_or_else(|| DomainError::not_found(format!("no log entry {log_id:?}")))?;
    if !matches!(entry.outcome, Outcome::Failed(_)) {
        return Err(DomainError::refused(format!(
            "log entry {log_id:?} did not fail (its outcome is {}); only a failed operation is retried",
            entry.outcome.key()
        )));
    }
    connection(svc, t, entry.system).await?;
    let token = token(&entry.id);
    let work = match entry.direction {
        Direction::Import | Direction::SyncIn | Direction::Webhook => {
            let external_id = entry.external_id.clone().filter(|id| !id.starts_with('#')).ok_or_else(|| {
                DomainError::refused(format!("log entry {log_id:?} names no external record to take in again"))
            })?;
            Work::SyncRecord(SyncMessage {
                tenant: t.clone(),
                system: entry.system,
                record_kind: entry.object,
                external_id,
                deleted: false,
                at: None,
                received_at: entry.at,
                delivery: Some(token.clone()),
                by_us: false,
                retry: Some(token.clone()),
            })
        }
        Direction::Export | Direction::SyncOut => {
            let record = entry.crm_id.clone().ok_or_else(|| {
                DomainError::refused(format!("log entry {log_id:?} names no CRM record to send again"))
            })?;
            let exists = svc.store.record(t, entry.object, &record).await?.is_some();
            let deleted = match (exists, &entry.external_id) {
                (true, _) => None,
                (false, Some(ext)) => Some(ext.clone()),
                (false, None) => {
                    return Err(DomainError::refused(format!(
                        "the {} {record} of log entry {log_id:?} is gone from the CRM and was never in {}",
                        entry.object,
                        entry.system.display_name()
                    )));
                }
            };
            Work::SyncOut(SyncOutMessage {
                tenant: t.clone(),
                system: entry.system,
                record_kind: entry.object,
                record,
                change: token.clone(),
                deleted,
                retry: Some(token.clone()),
            })
        }
    };
    svc.queue.send(&work).await?;
    tracing::info!(tenant = %t, system = %entry.system, log_id, work = %work, "failed operation queued again");
    Ok(Retried {
        log_id: entry.id.clone(),
        system: entry.system,
        direction: entry.direction,
        queued: work.kind(),
        dedup_id: work.dedup_id(),
        object: entry.object,
        crm_id: entry.crm_id,
        external_id: entry.external_id,
    })
}
