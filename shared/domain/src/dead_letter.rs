//! [`DeadLetter`]: a work message that failed on its last delivery, as the record table
//! keeps it for a tenant to list and redrive (`GET /dead-letters`,
//! `POST /dead-letters/{id}/redrive`; the use cases are in
//! [`crate::usecases::dead_letters`]).
//!
//! Its id is derived from the message's deduplication id and the delivery it failed on
//! ([`DeadLetter::id_of`]), so the one hook both queue backends call on a last delivery
//! records a message once however often that hook runs for it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{System, TenantId};
use crate::normalise::Timestamp;
use crate::work::Work;

/// How long a dead letter is kept (by the table's TTL): 14 days, SQS's longest message
/// retention, so the list never outlives what the dead-letter queues keep.
pub const RETENTION_DAYS: i64 = 14;

/// The prefix of every dead-letter id.
pub const ID_PREFIX: &str = "dl-";

/// One dead-lettered work message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// `dl-` and 16 hex digits ([`DeadLetter::id_of`]).
    pub id: String,
    pub tenant: TenantId,
    pub system: System,
    /// The kind of the work that failed (`import_page`, `export`, `sync_record`, ...): a
    /// resume's own work's kind.
    pub kind: String,
    /// What the work was about, e.g. `import page of job J (users stage)`.
    pub what: String,
    /// The message as it was received, as its JSON (kept as JSON, so an entry of a kind a
    /// later version no longer reads still lists).
    pub work: serde_json::Value,
    /// The delivery it failed on.
    pub receives: u32,
    /// Why its last delivery failed.
    pub reason: String,
    /// When it was dead-lettered.
    pub at: Timestamp,
    /// How many times it was redriven.
    #[serde(default)]
    pub redrives: u32,
    /// When it was last redriven.
    #[serde(default)]
    pub redriven_at: Option<Timestamp>,
    /// When the table lets it go.
    pub expires_at: Timestamp,
    /// The store's version; 0 before the first write.
    #[serde(skip)]
    pub version: u64,
}

impl DeadLetter {
    /// The entry of `work`, which failed on delivery `receives` with `reason` at `at`.
    pub fn of(work: &Work, receives: u32, reason: &str, at: Timestamp) -> Result<Self, serde_json::Error> {
        let (tenant, system) = work.connection();
        Ok(Self {
            id: Self::id_of(work, receives),
            tenant: tenant.clone(),
            system,
            kind: work.underlying().kind().to_string(),
            what: work.to_string(),
            work: serde_json::to_value(work)?,
            receives,
            reason: reason.to_string(),
            at,
            redrives: 0,
            redriven_at: None,
            expires_at: at.plus_seconds(RETENTION_DAYS * 86_400),
            version: 0,
        })
    }

    /// The id of `work` dead-lettered on delivery `receives`: `dl-` and 16 hex digits of
    /// the SHA-256 of its FIFO group (its tenant and system: not every deduplication id
    /// names the tenant), its deduplication id and that count. The same message reported
    /// twice gets one id; a redriven copy (deduplicated apart from it) gets its own.
    pub fn id_of(work: &Work, receives: u32) -> String {
        let digest = Sha256::digest(format!("{}\n{}\n{receives}", work.group_id(), work.dedup_id()).as_bytes());
        format!("{ID_PREFIX}{}", hex::encode(&digest[..8]))
    }

    /// Whether `id` has the shape of a dead-letter id.
    pub fn is_id(id: &str) -> bool {
        id.strip_prefix(ID_PREFIX)
            .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::ExportMessage;
    use crate::ids::JobId;

    fn export(id: &str) -> Work {
        Work::Export(ExportMessage {
            tenant: TenantId::parse("acme").expect("a tenant"),
            system: System::Halo,
            export_id: JobId::from_raw(id),
        })
    }

    #[test]
    fn one_message_on_one_delivery_has_one_id_and_any_other_has_another() {
        let id = DeadLetter::id_of(&export("e-1"), 5);
        assert!(DeadLetter::is_id(&id), "{id}");
        assert_eq!(id, DeadLetter::id_of(&export("e-1"), 5));
        assert_ne!(id, DeadLetter::id_of(&export("e-1"), 6));
        assert_ne!(id, DeadLetter::id_of(&export("e-2"), 5));
        let Work::Export(mut theirs) = export("e-1") else { unreachable!() };
        theirs.tenant = TenantId::parse("other").expect("a tenant");
        assert_ne!(id, DeadLetter::id_of(&Work::Export(theirs), 5), "another tenant's export of the same id");
    }

    #[test]
    fn only_ids_of_the_issued_shape_are_ids() {
        for bad in ["", "dl-", "dl-0123456789abcdeF", "dl-0123456789abcde", "xx-0123456789abcdef", "../dl"] {
            assert!(!DeadLetter::is_id(bad), "{bad}");
        }
        assert!(DeadLetter::is_id("dl-0123456789abcdef"));
    }

    #[test]
    fn an_entry_keeps_the_message_its_tenant_and_expires_after_fourteen_days() {
        let at = Timestamp::from_unix(1_000_000).expect("a time");
        let entry = DeadLetter::of(&export("e-1"), 5, "boom", at).expect("encodes");
        assert_eq!((entry.tenant.as_str(), entry.system, entry.kind.as_str()), ("acme", System::Halo, "export"));
        assert_eq!(Work::decode(&entry.work.to_string()).expect("decodes"), export("e-1"));
        assert_eq!(entry.expires_at.unix() - at.unix(), 14 * 86_400);
    }
}
