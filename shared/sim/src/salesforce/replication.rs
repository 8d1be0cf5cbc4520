//! The delete log read of salesforce-api.md 6.4: `GET sobjects/{Type}/deleted/?start=&end=`
//! answers `{"deletedRecords":[{"id","deletedDate"}],"earliestDateAvailable","latestDateCovered"}`
//! for the records of `Type` deleted in the window. Times are UTC; the seconds of `start`
//! and `end` are ignored (both are truncated to the minute); the window is `[start, end)`
//! of those minutes, so a delete in the current minute is listed once the minute is over
//! (`latestDateCovered` is the window's end, the next call's `start`). `start` must be
//! before `end`, and no older than 15 days (the recycle bin's reach).

use serde_json::{Value, json};

use super::error::ApiError;
use super::store::{Store, sf_datetime};

/// How far back the delete log reaches (salesforce-api.md 6.4: "at most the last 15 days").
pub(crate) const DELETED_WINDOW_SECS: i64 = 15 * 86_400;

/// `secs` truncated to its minute.
fn minute(secs: i64) -> i64 {
    secs - secs.rem_euclid(60)
}

fn bad_window(message: impl Into<String>) -> ApiError {
    ApiError::invalid_replication_date(message)
}

/// The `start` / `end` parameter `name` as Unix seconds.
fn date_param(params: &[(String, String)], name: &str) -> Result<i64, ApiError> {
    let raw = params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| bad_window(format!("The {name} date is required.")))?;
    super::store::parse_sf_datetime(raw).ok_or_else(|| bad_window(format!("'{raw}' is not a valid {name} date.")))
}

/// The answer of `sobjects/{object}/deleted/` with query `params` at `now` (Unix seconds).
/// An `end` later than now covers up to the current minute only: the log holds nothing
/// later yet, and saying it covered more would make a caller skip deletes still to come.
pub(crate) fn deleted(store: &Store, object: &str, params: &[(String, String)], now: i64) -> Result<Value, ApiError> {
    let start = minute(date_param(params, "start")?);
    let end = minute(date_param(params, "end")?);
    if start >= end {
        return Err(bad_window("The start date must be before the end date (seconds are ignored)."));
    }
    let horizon = now - DELETED_WINDOW_SECS;
    if start < horizon {
        return Err(bad_window(format!(
            "The start date cannot be more than {} days ago.",
            DELETED_WINDOW_SECS / 86_400
        )));
    }
    let covered = end.min(minute(now));
    let records: Vec<Value> = store
        .tombstones(object)?
        .into_iter()
        .filter(|t| (start..covered).contains(&t.at))
        .map(|t| json!({"id": t.id, "deletedDate": sf_datetime(t.at)}))
        .collect();
    // The earliest start accepted: the horizon, up to its next minute.
    let earliest = minute(horizon + 59);
    Ok(json!({
        "deletedRecords": records,
        "earliestDateAvailable": sf_datetime(earliest),
        "latestDateCovered": sf_datetime(covered.max(start)),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::{Map, json};

    use super::*;
    use crate::salesforce::store::{Stamp, TenantData, make_id};

    /// Noon UTC of some day.
    const NOW: i64 = 1_796_126_400;

    fn store() -> Store {
        let account = |n: u64| {
            let mut m = Map::new();
            m.insert("Id".into(), json!(make_id("001", n)));
            m.insert("Name".into(), json!(format!("A{n}")));
            m.insert("IsDeleted".into(), json!(false));
            m
        };
        let mut s = Store::new(TenantData {
            tables: vec![("Account", (1..=4).map(account).collect())],
            run_as_user_id: make_id("005", 1),
        });
        // Deleted at 11:00:30, 11:30:00 and 11:59:59.
        for (n, at) in [(1, NOW - 3570), (2, NOW - 1800), (3, NOW - 1)] {
            s.delete("Account", &make_id("001", n), &Stamp { now: at }).unwrap();
        }
        s
    }

    fn params(start: i64, end: i64) -> Vec<(String, String)> {
        vec![("start".into(), sf_datetime(start)), ("end".into(), sf_datetime(end))]
    }

    fn ids(answer: &Value) -> Vec<String> {
        answer["deletedRecords"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
    }

    #[test]
    fn deletes_inside_the_window_are_listed_with_their_dates_and_those_outside_are_not() {
        let s = store();
        let answer = deleted(&s, "Account", &params(NOW - 3600, NOW - 900), NOW).unwrap();
        assert_eq!(ids(&answer), [make_id("001", 1), make_id("001", 2)]);
        assert_eq!(answer["deletedRecords"][0]["deletedDate"], json!(sf_datetime(NOW - 3570)));
        assert_eq!(answer["latestDateCovered"], json!(sf_datetime(NOW - 900)));
        let later = deleted(&s, "Account", &params(NOW - 1700, NOW), NOW).unwrap();
        assert_eq!(ids(&later), [make_id("001", 3)], "11:59:59 is inside [11:31, 12:00)");
        assert!(ids(&deleted(&s, "Contact", &params(NOW - 3600, NOW), NOW).unwrap()).is_empty());
    }

    #[test]
    fn the_seconds_of_start_and_end_are_ignored() {
        let s = store();
        // start 11:00:45 is 11:00:00, so the delete at 11:00:30 is in; end 11:30:59 is
        // 11:30:00, so the delete at 11:30:00 is out.
        let answer = deleted(&s, "Account", &params(NOW - 3555, NOW - 1741), NOW).unwrap();
        assert_eq!(ids(&answer), [make_id("001", 1)]);
        assert_eq!(answer["latestDateCovered"], json!(sf_datetime(NOW - 1800)));
    }

    #[test]
    fn the_current_minute_is_not_covered_until_it_is_over() {
        let s = store();
        let answer = deleted(&s, "Account", &params(NOW - 60, NOW + 3600), NOW + 30).unwrap();
        assert_eq!(ids(&answer), [make_id("001", 3)], "11:59:59 is in; nothing of 12:00 is covered yet");
        assert_eq!(answer["latestDateCovered"], json!(sf_datetime(NOW)), "an end in the future covers up to now");
    }

    #[test]
    fn a_start_not_before_the_end_or_older_than_fifteen_days_is_refused() {
        let s = store();
        for (start, end) in [(NOW - 60, NOW - 60), (NOW - 30, NOW - 10), (NOW, NOW - 600)] {
            let e = deleted(&s, "Account", &params(start, end), NOW).unwrap_err();
            assert_eq!((e.status.as_u16(), e.code), (400, "INVALID_REPLICATION_DATE"), "{start} {end}");
        }
        let e = deleted(&s, "Account", &params(NOW - DELETED_WINDOW_SECS - 60, NOW), NOW).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "INVALID_REPLICATION_DATE"));
        let oldest = deleted(&s, "Account", &params(NOW - DELETED_WINDOW_SECS, NOW), NOW).unwrap();
        assert_eq!(oldest["earliestDateAvailable"], json!(sf_datetime(NOW - DELETED_WINDOW_SECS)));
        let missing = deleted(&s, "Account", &[("start".into(), sf_datetime(NOW - 60))], NOW).unwrap_err();
        assert_eq!(missing.code, "INVALID_REPLICATION_DATE");
        let garbled = vec![("start".into(), "yesterday".into()), ("end".into(), sf_datetime(NOW))];
        assert_eq!(deleted(&s, "Account", &garbled, NOW).unwrap_err().code, "INVALID_REPLICATION_DATE");
        assert_eq!(deleted(&s, "Gizmo", &params(NOW - 60, NOW), NOW).unwrap_err().code, "INVALID_TYPE");
    }
}
