//! The failure event's schema in the repo (`docs/events/sync-failed.schema.json`): the
//! example its README shows and events built by the domain for each direction match it,
//! and an event missing what a notification needs does not.

use serde_json::Value;
use tandem_domain::events::FailureEvent;
use tandem_domain::log::{Direction, LogEntry, LogError, Outcome};
use tandem_domain::ports::ErrorKind;
use tandem_domain::usecases::Tuning;
use tandem_domain::{RecordId, RecordKind, System, TenantId, Timestamp};

fn docs(file: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/events").join(file)).unwrap()
}

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&docs("sync-failed.schema.json")).unwrap();
    jsonschema::draft202012::options().should_validate_formats(true).build(&schema).unwrap()
}

fn errors(v: &jsonschema::Validator, event: &Value) -> Vec<String> {
    v.iter_errors(event).map(|e| format!("{}: {e}", e.instance_path)).collect()
}

#[test]
fn the_readmes_example_matches_the_schema_and_reads_as_a_failure_event() {
    let readme = docs("README.md");
    let start = readme.find("```json").unwrap() + "```json".len();
    let end = start + readme[start..].find("```").unwrap();
    let example: Value = serde_json::from_str(&readme[start..end]).unwrap();
    assert_eq!(errors(&validator(), &example), Vec::<String>::new());
    let event: FailureEvent = serde_json::from_value(example).unwrap();
    assert_eq!(event.error.code.as_deref(), Some("REQUIRED_FIELD_MISSING"));
}

#[test]
fn events_of_every_direction_with_and_without_a_vendor_error_match_the_schema() {
    let v = validator();
    let at = Timestamp::parse("2026-01-02T03:04:05Z").unwrap();
    for direction in [Direction::Import, Direction::Export, Direction::SyncIn, Direction::SyncOut, Direction::Webhook] {
        for vendor in [false, true] {
            let mut entry = LogEntry::of(
                "job-1:companies:42/a b".into(),
                &TenantId::parse("acme").unwrap(),
                at,
                System::Halo,
                direction,
                RecordKind::Company,
                Outcome::Failed("refused: no counterpart for company type \"vendor\"".into()),
            );
            entry.crm_id = Some(RecordId::from_raw("c-1"));
            if vendor {
                entry.external_id = Some("42".into());
                entry.error = Some(LogError { kind: ErrorKind::Invalid, code: Some("E1".into()), status: Some(400) });
            }
            for public_url in [None, Some("https://api.example.com".to_string())] {
                let tuning = Tuning { public_url, ..Tuning::default() };
                let event = serde_json::to_value(FailureEvent::of(&entry, &tuning)).unwrap();
                assert_eq!(errors(&v, &event), Vec::<String>::new(), "{event}");
            }
        }
    }
}

#[test]
fn an_event_without_its_record_error_or_link_does_not_match() {
    let v = validator();
    let entry = LogEntry::of(
        "x".into(),
        &TenantId::parse("acme").unwrap(),
        Timestamp::parse("2026-01-02T03:04:05Z").unwrap(),
        System::ConnectWise,
        Direction::Import,
        RecordKind::Contact,
        Outcome::Failed("boom".into()),
    );
    let event = serde_json::to_value(FailureEvent::of(&entry, &Tuning::default())).unwrap();
    assert!(errors(&v, &event).is_empty());
    for field in ["tenant", "record", "error", "link", "log_id", "at"] {
        let mut broken = event.clone();
        broken.as_object_mut().unwrap().remove(field);
        assert!(!errors(&v, &broken).is_empty(), "without {field} it must not match");
    }
    let mut wrong = event.clone();
    wrong["system"] = "hubspot".into();
    assert!(!errors(&v, &wrong).is_empty(), "an unknown system does not match");
}
