//! The sync ledger: one entry per link between a CRM record and an external record, kept
//! apart from the CRM record (so writing sync state never bumps the record's version),
//! holding what the flows need to tell a change from an echo and to merge three ways:
//! the external version last seen, and per field what was last pulled and last pushed.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use time::PrimitiveDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

use crate::ids::{RecordId, RecordKind, System};
use crate::normalise::Timestamp;
use crate::records::Record;

/// Per CRM field (the record's top-level field names), a short hash of its value.
pub type FieldHashes = BTreeMap<String, String>;

/// An external record's last-modified stamp, parsed once into an instant. Two stamps are
/// the same version when they are the same instant (whatever offset each was written
/// with); a stamp that is no known date format compares by its text.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct ExtVersion {
    raw: String,
    at: Option<Timestamp>,
}

/// `2024-01-01T00:00:00.000+0000`: Salesforce's offset without a colon.
const COMPACT_OFFSET: &[BorrowedFormatItem<'static>] = format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]][offset_hour sign:mandatory][offset_minute]"
);
/// `2024-01-01T00:00:00.000`: no offset at all.
const NO_OFFSET: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]");

impl ExtVersion {
    /// Parses a stamp as a system sends it: RFC 3339 (ConnectWise, Syncro), an offset
    /// without a colon (Salesforce `+0000`), or no offset. A stamp without an offset is
    /// taken as UTC: HaloPSA sends its dates that way and documents them as UTC
    /// (unconfirmed for every endpoint; change here if a tenant's local time shows up).
    pub fn parse(raw: &str) -> Self {
        let text = raw.trim();
        let at = Timestamp::parse(text)
            .ok()
            .or_else(|| time::OffsetDateTime::parse(text, COMPACT_OFFSET).ok().map(Timestamp::from_datetime))
            .or_else(|| {
                PrimitiveDateTime::parse(text, NO_OFFSET).ok().map(|d| Timestamp::from_datetime(d.assume_utc()))
            });
        Self { raw: raw.to_string(), at }
    }

    /// The stamp as the system wrote it.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The instant, when the stamp is a date.
    pub fn at(&self) -> Option<Timestamp> {
        self.at
    }
}

impl PartialEq for ExtVersion {
    fn eq(&self, other: &Self) -> bool {
        match (self.at, other.at) {
            (Some(a), Some(b)) => a == b,
            _ => self.raw == other.raw,
        }
    }
}

impl Eq for ExtVersion {}

impl From<String> for ExtVersion {
    fn from(raw: String) -> Self {
        Self::parse(&raw)
    }
}

impl From<&str> for ExtVersion {
    fn from(raw: &str) -> Self {
        Self::parse(raw)
    }
}

impl From<ExtVersion> for String {
    fn from(v: ExtVersion) -> Self {
        v.raw
    }
}

impl fmt::Display for ExtVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// One link's ledger entry. System, kind and external id are its key; the rest its body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    #[serde(skip, default = "default_system")]
    pub system: System,
    #[serde(skip, default = "default_kind")]
    pub kind: RecordKind,
    #[serde(skip)]
    pub external_id: String,
    /// The CRM record linked.
    #[serde(rename = "id")]
    pub crm_id: RecordId,
    /// The external version last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<ExtVersion>,
    /// Per field, what the CRM record held after the last pull.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pulled: FieldHashes,
    /// Per field, what was last pushed to the external system.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pushed: FieldHashes,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulled_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_at: Option<Timestamp>,
    /// A digest of the external record's content as sync in last took it (its fields as
    /// the CRM names them): a stamp seen before with other content is a new change (two
    /// quick edits can share a whole-second stamp). `None` until sync in takes the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
    /// Per field where the CRM kept a value other than the system's at the last sync in
    /// (a link that only filled the CRM record's empty fields; a conflict the CRM won), the
    /// CRM's value then: the CRM side's base in the three-way merge, so only a change made
    /// since counts as the CRM's. Hashes as [`pulled`](Self::pulled); "" for no value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kept: FieldHashes,
    /// The store's version of this entry; 0 before its first write.
    #[serde(skip)]
    pub version: u64,
}

fn default_system() -> System {
    System::ConnectWise
}

fn default_kind() -> RecordKind {
    RecordKind::Company
}

impl Ledger {
    /// A new link of `record` to `external_id`, pulled now at version `seen`.
    pub fn pulled(
        system: System,
        record: &Record,
        external_id: &str,
        seen: Option<ExtVersion>,
        now: Timestamp,
    ) -> Self {
        Self {
            system,
            kind: record.kind(),
            external_id: external_id.to_string(),
            crm_id: record.id().clone(),
            seen,
            held: None,
            kept: FieldHashes::new(),
            pulled: field_hashes(record),
            pushed: FieldHashes::new(),
            pulled_at: Some(now),
            pushed_at: None,
            version: 0,
        }
    }

    /// This entry after pulling `record` at version `seen` now.
    pub fn repulled(&self, record: &Record, seen: Option<ExtVersion>, now: Timestamp) -> Self {
        Self { seen, pulled: field_hashes(record), pulled_at: Some(now), kept: FieldHashes::new(), ..self.clone() }
    }

    /// This entry with the CRM record as it now is, `crm`, kept where it differs from what
    /// was pulled (see [`kept`](Self::kept)).
    pub fn keeping(self, crm: &Record) -> Self {
        let now = field_hashes(crm);
        let mut names: Vec<&String> = now.keys().chain(self.pulled.keys()).collect();
        names.sort();
        names.dedup();
        let kept = names
            .into_iter()
            .filter(|f| now.get(*f) != self.pulled.get(*f))
            .map(|f| (f.clone(), now.get(f).cloned().unwrap_or_default()))
            .collect();
        Self { kept, ..self }
    }

    /// This entry with only those of `kept` (an earlier entry's) that the CRM record
    /// `crm` still holds: a field the CRM changed since, or took from the system, is no
    /// longer kept. A field the CRM changes or wins at a sync in is never added: it is the
    /// CRM's change, still to be pushed.
    pub fn still_kept(self, kept: &FieldHashes, crm: &Record) -> Self {
        let now = field_hashes(crm);
        let kept = kept
            .iter()
            .filter(|(f, h)| now.get(*f).map_or("", String::as_str) == h.as_str())
            .map(|(f, h)| (f.clone(), h.clone()))
            .collect();
        Self { kept, ..self }
    }

    /// This entry after pushing `fields` of `record` now; `seen` is the system's version
    /// after the write, when its answer carried one. The pushed fields are in step, no
    /// longer kept.
    pub fn repushed(&self, record: &Record, fields: &[String], seen: Option<ExtVersion>, now: Timestamp) -> Self {
        let all = field_hashes(record);
        let mut pushed = self.pushed.clone();
        let mut kept = self.kept.clone();
        for field in fields {
            match all.get(field) {
                Some(hash) => pushed.insert(field.clone(), hash.clone()),
                None => pushed.remove(field),
            };
            kept.remove(field);
        }
        Self { seen: seen.or_else(|| self.seen.clone()), pushed, kept, pushed_at: Some(now), ..self.clone() }
    }

    /// Whether the CRM changed `field` (now hashing to `now`) since the last sync: against
    /// the value it kept, where it kept one, else against the common base `base`.
    pub fn crm_changed(&self, base: &FieldHashes, field: &str, now: Option<&String>) -> bool {
        match self.kept.get(field) {
            Some(kept) => now.map_or("", String::as_str) != kept.as_str(),
            None => now != base.get(field),
        }
    }

    /// Per field, what both sides held at the last sync in either direction: the pulled
    /// values, overridden by the pushed ones where the push came later. The base of the
    /// three-way merge and of the outbound "what changed".
    pub fn base(&self) -> FieldHashes {
        let mut base = self.pulled.clone();
        if self.pushed_at > self.pulled_at {
            base.extend(self.pushed.iter().map(|(f, h)| (f.clone(), h.clone())));
        }
        base
    }
}

/// The hash of every top-level field of a record (its meta left out): what a flow compares
/// to tell which fields changed since the last pull or push, without keeping the values.
pub fn field_hashes(record: &Record) -> FieldHashes {
    record.fields().into_iter().map(|(name, value)| (name, value_hash(&value))).collect()
}

/// A short, stable hash of one JSON value (serde_json orders object keys).
pub fn value_hash(value: &serde_json::Value) -> String {
    let digest = Sha256::digest(value.to_string().as_bytes());
    hex::encode(&digest[..8])
}

/// The fields whose hash differs between two sets (present in one only counts).
pub fn changed_fields(a: &FieldHashes, b: &FieldHashes) -> Vec<String> {
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    names.dedup();
    names.into_iter().filter(|n| a.get(*n) != b.get(*n)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{CompanyFields, CompanyRecord, Meta};

    #[test]
    fn the_same_instant_written_with_different_offsets_is_the_same_version() {
        let a = ExtVersion::parse("2024-03-01T10:00:00Z");
        assert_eq!(a, ExtVersion::parse("2024-03-01T12:00:00+02:00"));
        assert_eq!(a, ExtVersion::parse("2024-03-01T10:00:00.000+0000"));
        assert_eq!(a, ExtVersion::parse("2024-03-01T10:00:00"));
        assert_ne!(a, ExtVersion::parse("2024-03-01T10:00:00.001Z"));
    }

    #[test]
    fn milliseconds_tell_two_versions_apart() {
        assert_ne!(ExtVersion::parse("2024-03-01T10:00:00.120Z"), ExtVersion::parse("2024-03-01T10:00:00.121Z"));
    }

    #[test]
    fn a_stamp_that_is_no_date_compares_by_its_text() {
        assert_eq!(ExtVersion::parse("v7"), ExtVersion::parse("v7"));
        assert_ne!(ExtVersion::parse("v7"), ExtVersion::parse("v8"));
        assert!(ExtVersion::parse("v7").at().is_none());
    }

    #[test]
    fn a_version_is_stored_as_the_text_the_system_sent() {
        let v = ExtVersion::parse("2024-03-01T10:00:00.000+0000");
        assert_eq!(serde_json::to_value(&v).unwrap(), serde_json::json!("2024-03-01T10:00:00.000+0000"));
    }

    fn company(name: &str, phone: Option<&str>) -> Record {
        Record::Company(CompanyRecord {
            meta: Meta::new(Timestamp::from_unix(0).unwrap()),
            fields: CompanyFields {
                name: name.into(),
                phone: phone.map(str::to_string),
                company_type: crate::vocab::CompanyType::parse("client").unwrap(),
                ..CompanyFields::default()
            },
        })
    }

    #[test]
    fn field_hashes_change_only_for_the_fields_that_changed() {
        let a = field_hashes(&company("Acme", None));
        let b = field_hashes(&company("Acme", Some("555")));
        assert_eq!(changed_fields(&a, &b), vec!["phone".to_string()]);
        assert!(!a.contains_key("meta"));
        let mut other_meta = company("Acme", None);
        other_meta.meta_mut().version = 9;
        assert_eq!(field_hashes(&other_meta), a);
    }

    #[test]
    fn a_ledger_body_keeps_the_crm_id_under_the_key_legacy_links_used() {
        let r = company("Acme", None);
        let l = Ledger::pulled(System::Halo, &r, "42", None, Timestamp::from_unix(5).unwrap());
        let body = serde_json::to_value(&l).unwrap();
        assert_eq!(body["id"], serde_json::json!(r.id()));
        let legacy: Ledger = serde_json::from_value(serde_json::json!({"id": "abc"})).unwrap();
        assert_eq!(legacy.crm_id, RecordId::from_raw("abc"));
        assert!(legacy.pulled.is_empty() && legacy.seen.is_none());
    }
}
