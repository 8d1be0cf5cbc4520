//! Salesforce's delete log as the poll reads it (salesforce-api.md 6.4): `GET
//! sobjects/{Type}/deleted/?start=&end=` answers the ids of `Type`'s records deleted in the
//! window, with their `deletedDate`. Salesforce ignores the seconds of both ends, wants the
//! start before the end, and refuses a start older than 15 days; [`window`] makes a window
//! it takes out of "since then until now", [`deleted_ids`] reads its answer.

use serde::Deserialize;
use tandem_domain::ports::{ConnectorError, ErrorKind};
use tandem_domain::{RecordKind, Stage, System, Timestamp};

use super::pagination::soql_datetime;

/// How far back the log reaches (salesforce-api.md 6.4: "at most the last 15 days").
pub const LOG_REACH_SECS: i64 = 15 * 86_400;

/// Kept between the oldest start asked for and the log's reach. Salesforce refuses an
/// older start, and the reach moves on while the request travels; truncating the start to
/// its minute moves it back by up to 59 s, and our clock may be behind Salesforce's. Older
/// deletes are left to the poll's periodic id reconciliation, which finds any record gone.
pub const REACH_MARGIN_SECS: i64 = 5 * 60;

/// The objects whose delete log answers for `kind` (the objects `list` reads it from), or
/// `None` for a kind whose records cannot be deleted or that Salesforce does not have:
/// users (Salesforce deactivates users, it never deletes them) and solutions.
pub fn objects(kind: RecordKind) -> Option<&'static [&'static str]> {
    match Stage::of_kind(kind)? {
        Stage::Users | Stage::Solutions => None,
        stage => Some(super::stage_objects(stage)).filter(|o| !o.is_empty()),
    }
}

/// `secs` truncated to its minute.
fn minute(secs: i64) -> i64 {
    secs - secs.rem_euclid(60)
}

/// The `start` and `end` asked for deletes since `since` at `now`: `end` is now; `start`
/// is `since`, but no older than the log's reach less [`REACH_MARGIN_SECS`], and at least
/// one minute before `end` when `since` falls in the current minute (or later), as the
/// start must come before the end once seconds are dropped. A wider window only brings
/// candidates [`deleted_ids`] leaves out.
pub fn window(since: Timestamp, now: Timestamp) -> (Timestamp, Timestamp) {
    let oldest = now.unix() - LOG_REACH_SECS + REACH_MARGIN_SECS;
    let mut start = since.unix().max(oldest);
    if minute(start) >= minute(now.unix()) {
        start = now.unix() - 60;
    }
    (Timestamp::from_unix(start).unwrap_or(now), now)
}

/// The query of `sobjects/{Type}/deleted/` for a window (UTC, `YYYY-MM-DDTHH:MM:SSZ`).
pub fn query(start: Timestamp, end: Timestamp) -> [(&'static str, String); 2] {
    [("start", soql_datetime(start)), ("end", soql_datetime(end))]
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    #[serde(default)]
    deleted_records: Vec<Deleted>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Deleted {
    id: String,
    #[serde(default)]
    deleted_date: Option<String>,
}

/// A Salesforce dateTime (`2024-05-01T10:00:00.000+0000`, or RFC 3339) as a timestamp.
fn parse_date(raw: &str) -> Option<Timestamp> {
    let raw = raw.trim();
    let rfc3339 = match raw.strip_suffix("+0000") {
        Some(head) => format!("{head}Z"),
        None => raw.to_string(),
    };
    Timestamp::parse(&rfc3339).ok()
}

/// The ids of an answer of `sobjects/{Type}/deleted/` deleted at or after the minute of
/// `since` (the log is read by the minute, so a delete in `since`'s own minute counts: a
/// candidate too many is confirmed by `get`, one too few is a delete missed). A date that
/// does not parse keeps its id.
pub fn deleted_ids(body: &[u8], since: Timestamp) -> Result<Vec<String>, ConnectorError> {
    let answer: Answer = serde_json::from_slice(body).map_err(|e| {
        ConnectorError::new(
            System::Salesforce,
            ErrorKind::Invalid,
            format!("Salesforce's delete log is unreadable: {e}"),
        )
    })?;
    let from = minute(since.unix());
    Ok(answer
        .deleted_records
        .into_iter()
        .filter(|d| d.deleted_date.as_deref().and_then(parse_date).is_none_or(|at| at.unix() >= from))
        .map(|d| d.id)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(raw: &str) -> Timestamp {
        Timestamp::parse(raw).unwrap()
    }

    #[test]
    fn a_since_older_than_the_log_reaches_is_moved_up_to_the_reach_less_the_margin() {
        let now = at("2026-12-20T12:00:30Z");
        let (start, end) = window(at("2026-11-01T00:00:00Z"), now);
        assert_eq!(end, now);
        assert_eq!(start.unix(), now.unix() - LOG_REACH_SECS + REACH_MARGIN_SECS);
        let recent = at("2026-12-20T11:00:10Z");
        assert_eq!(window(recent, now), (recent, now), "a recent since is kept as it is");
    }

    #[test]
    fn a_since_in_the_current_minute_or_later_starts_a_minute_before_now() {
        let now = at("2026-12-20T12:00:30Z");
        for since in ["2026-12-20T12:00:00Z", "2026-12-20T12:00:29Z", "2026-12-20T12:05:00Z"] {
            assert_eq!(window(at(since), now).0, at("2026-12-20T11:59:30Z"), "{since}");
        }
        assert_eq!(window(at("2026-12-20T11:59:59Z"), now).0, at("2026-12-20T11:59:59Z"), "the minute before is kept");
        assert_eq!(
            query(at("2026-12-20T11:59:59Z"), now),
            [("start", "2026-12-20T11:59:59Z".to_string()), ("end", "2026-12-20T12:00:30Z".to_string())]
        );
    }

    #[test]
    fn deletes_before_the_minute_of_since_are_left_out_and_undated_ones_kept() {
        let body = br#"{"deletedRecords":[
            {"id":"0018d0000000001AAA","deletedDate":"2026-12-20T11:58:59.000+0000"},
            {"id":"0018d0000000002AAA","deletedDate":"2026-12-20T11:59:00.000+0000"},
            {"id":"0018d0000000003AAA"}
        ],"earliestDateAvailable":"2026-12-05T12:00:00.000+0000","latestDateCovered":"2026-12-20T12:00:00.000+0000"}"#;
        let ids = deleted_ids(body, at("2026-12-20T11:59:40Z")).unwrap();
        assert_eq!(ids, ["0018d0000000002AAA", "0018d0000000003AAA"]);
        assert_eq!(deleted_ids(b"<html>", at("2026-12-20T11:59:40Z")).unwrap_err().kind, ErrorKind::Invalid);
    }

    #[test]
    fn companies_contacts_opportunities_and_activities_have_a_log_and_users_none() {
        assert_eq!(objects(RecordKind::Company), Some(&["Account"][..]));
        assert_eq!(objects(RecordKind::Activity), Some(&["Task", "Event"][..]));
        assert_eq!(objects(RecordKind::Opportunity), Some(&["Opportunity"][..]));
        assert_eq!(objects(RecordKind::Contact), Some(&["Contact"][..]));
        assert_eq!((objects(RecordKind::User), objects(RecordKind::Solution)), (None, None));
    }
}
