//! What every connector's reader shares: the stage a record kind is listed by, checking an
//! external id before it goes into a URL or a query, turning a single-record answer into
//! the one-element list the list mapping reads, and "the system says it does not exist"
//! (for a read, and for a delete, where it means the delete is already done).

use tandem_domain::external::ExternalRecord;
use tandem_domain::ports::{ConnectorError, ErrorKind, bad_id, no_such_kind};
use tandem_domain::{RecordKind, Stage, System};

/// The longest numeric id accepted (ConnectWise, Halo and Syncro ids are 32- or 64-bit
/// integers; 18 digits always fit an `i64`).
pub const MAX_NUMERIC_DIGITS: usize = 18;

/// The import stage that lists `kind` in `system`, or `None` when the system has no such
/// records (a list of it is an empty last page).
pub fn stage_in(system: System, kind: RecordKind) -> Option<Stage> {
    Stage::of_kind(kind).filter(|stage| system.stages().contains(stage))
}

/// The stage `get` reads `kind` by in `system`; a kind the system does not have is refused.
pub fn stage_to_get(system: System, kind: RecordKind) -> Result<Stage, ConnectorError> {
    stage_in(system, kind).ok_or_else(|| no_such_kind(system, kind))
}

/// A numeric id (ASCII digits only, no sign, at most [`MAX_NUMERIC_DIGITS`]), so nothing but
/// digits reaches a URL path; anything else is refused before a request.
pub fn numeric_id(system: System, kind: RecordKind, id: &str) -> Result<i64, ConnectorError> {
    let digits = !id.is_empty() && id.len() <= MAX_NUMERIC_DIGITS && id.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| id.parse::<i64>().ok()).flatten().ok_or_else(|| bad_id(system, kind, id, "a number"))
}

/// A single-record body (one JSON object) as the one-element JSON array the list mapping
/// parses, so `get` maps a record exactly as `list` does.
pub fn as_list(object: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(object.len() + 2);
    out.push(b'[');
    out.extend_from_slice(object);
    out.push(b']');
    out
}

/// An answer, or `None` when the system said the record does not exist (404).
pub fn found<T>(answer: Result<T, ConnectorError>) -> Result<Option<T>, ConnectorError> {
    match answer {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// A delete's answer: done, or the system said the record does not exist (404, Salesforce's
/// `ENTITY_IS_DELETED`), which is done too: a delete sent again succeeds.
pub fn deleted<T>(answer: Result<T, ConnectorError>) -> Result<(), ConnectorError> {
    found(answer).map(|_| ())
}

/// The one record a single-record answer mapped to; several are the system's mistake.
pub fn only(system: System, records: Vec<ExternalRecord>) -> Result<Option<ExternalRecord>, ConnectorError> {
    let n = records.len();
    let mut records = records.into_iter();
    match (records.next(), n) {
        (first, 0 | 1) => Ok(first),
        _ => Err(ConnectorError::new(
            system,
            ErrorKind::Invalid,
            format!("{} answered {n} records for one id", system.display_name()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_digits_pass_as_numeric_ids() {
        assert_eq!(numeric_id(System::Halo, RecordKind::Company, "42").ok(), Some(42));
        for bad in ["", "-1", "+1", "1 ", "1/2", "../x", "1e3", "١٢", "1234567890123456789"] {
            let err = numeric_id(System::Halo, RecordKind::Company, bad).expect_err(bad);
            assert_eq!(err.kind, ErrorKind::Invalid, "{bad}");
        }
    }

    #[test]
    fn a_kind_is_gettable_only_where_the_system_lists_it() {
        assert_eq!(stage_in(System::ConnectWise, RecordKind::Solution), Some(Stage::Solutions));
        assert_eq!(stage_in(System::Syncro, RecordKind::Activity), None);
        assert_eq!(stage_to_get(System::Halo, RecordKind::Solution).unwrap_err().kind, ErrorKind::Invalid);
        assert!(stage_to_get(System::Salesforce, RecordKind::List).unwrap_err().message.contains("list"));
    }

    #[test]
    fn a_single_object_reads_as_a_one_element_list() {
        let v: serde_json::Value = serde_json::from_slice(&as_list(br#"{"id": 1}"#)).unwrap();
        assert_eq!(v, serde_json::json!([{"id": 1}]));
    }
}
