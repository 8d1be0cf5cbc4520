//! Salesforce paging (salesforce-api.md 2.1-2.4): the SOQL of an incremental read
//! (`WHERE LastModifiedDate >= <dateTime> ... ORDER BY Id`), the `Sforce-Query-Options:
//! batchSize=N` header, and the cursor position: the object being read, the last id read,
//! and the opaque `nextRecordsUrl` to continue with.

use tandem_domain::Timestamp;
use time::macros::format_description;

/// The field incremental reads filter on. salesforce-api.md 2.4 recommends
/// `SystemModstamp` for polling; `LastModifiedDate` (user and API edits only) is what the
/// import's "updated since" means. Change it here only.
pub const UPDATED_FIELD: &str = "LastModifiedDate";
/// The smallest and largest `batchSize` (salesforce-api.md 2.3).
pub const MIN_BATCH: u32 = 200;
/// The largest `batchSize`.
pub const MAX_BATCH: u32 = 2000;

/// The `batchSize` sent for a page size: clamped to 200..=2000.
pub fn batch_size(page_size: u32) -> u32 {
    page_size.clamp(MIN_BATCH, MAX_BATCH)
}

/// The `Sforce-Query-Options` header value.
pub fn query_options(page_size: u32) -> String {
    format!("batchSize={}", batch_size(page_size))
}

/// A dateTime literal: `YYYY-MM-DDTHH:MM:SSZ`, unquoted (SOQL-dates). Sub-seconds are
/// dropped, which only widens the window.
pub fn soql_datetime(at: Timestamp) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    at.datetime().format(&format).unwrap_or_else(|_| at.to_rfc3339())
}

/// `SELECT fields FROM object [WHERE LastModifiedDate >= since] [AND Id > 'after'] ORDER BY Id`.
/// Ordering by Id keeps pages stable and lets a read resume after the last id when a query
/// locator has expired. `after` must be an id (checked by the caller).
pub fn soql(object: &str, fields: &[&str], since: Option<Timestamp>, after: Option<&str>) -> String {
    let mut conditions = Vec::new();
    if let Some(since) = since {
        conditions.push(format!("{UPDATED_FIELD} >= {}", soql_datetime(since)));
    }
    if let Some(after) = after {
        conditions.push(format!("Id > '{after}'"));
    }
    let filter = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
    format!("SELECT {} FROM {object}{filter} ORDER BY Id", fields.join(", "))
}

/// A SOQL string literal: `value` in single quotes with the characters SOQL escapes
/// escaped (SOQL "Quoted String Escape Sequences": `\\`, `\'`, `\"`, `\n`, `\r`, `\t`,
/// `\b`, `\f`), so no value can end the literal and change the query.
pub fn soql_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            other => out.push(other),
        }
    }
    out.push('\'');
    out
}

/// `SELECT fields FROM object WHERE field = 'value' [AND ...] ORDER BY Id LIMIT limit`: the
/// records whose `equal` fields hold the values (SOQL `=` on text ignores case). `object`
/// and the field names are the connector's own constants; only the values come from records.
pub fn soql_matching(object: &str, fields: &[&str], equal: &[(&str, &str)], limit: usize) -> String {
    let conditions: Vec<String> = equal.iter().map(|(f, v)| format!("{f} = {}", soql_string(v))).collect();
    format!("SELECT {} FROM {object} WHERE {} ORDER BY Id LIMIT {limit}", fields.join(", "), conditions.join(" AND "))
}

/// Where a stage's read stands. Encoded as `object|after|nextRecordsUrl`; the empty
/// string is the start of the stage's first object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// The object being read (activities read `Task`, then `Event`).
    pub object: Option<String>,
    /// The last id read from it.
    pub after: Option<String>,
    /// The `nextRecordsUrl` to continue with (opaque, relative to the instance).
    pub next_url: Option<String>,
}

impl Position {
    /// Parses a cursor position; `None` when it is not one of ours.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Some(Self::default());
        }
        let mut parts = raw.splitn(3, '|');
        let part = |p: Option<&str>| p.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        let object = part(parts.next());
        let after = part(parts.next());
        let next_url = part(parts.next());
        if object.as_deref().is_some_and(|o| !o.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            || after.as_deref().is_some_and(|a| !is_id(a))
            || next_url.as_deref().is_some_and(|u| !u.starts_with("/services/data/"))
        {
            return None;
        }
        Some(Self { object, after, next_url })
    }

    /// The cursor text.
    pub fn encode(&self) -> String {
        format!(
            "{}|{}|{}",
            self.object.as_deref().unwrap_or(""),
            self.after.as_deref().unwrap_or(""),
            self.next_url.as_deref().unwrap_or("")
        )
    }
}

/// A 15- or 18-character Salesforce id.
pub fn is_id(s: &str) -> bool {
    (s.len() == 15 || s.len() == 18) && s.chars().all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_incremental_query_filters_by_last_modified_and_orders_by_id() {
        let since = Timestamp::parse("2024-03-01T10:00:00.750+02:00").unwrap();
        assert_eq!(
            soql("Account", &["Id", "Name"], Some(since), Some("0018d0000000001AAA")),
            "SELECT Id, Name FROM Account WHERE LastModifiedDate >= 2024-03-01T08:00:00Z AND Id > '0018d0000000001AAA' ORDER BY Id"
        );
        assert_eq!(soql("User", &["Id"], None, None), "SELECT Id FROM User ORDER BY Id");
    }

    #[test]
    fn soql_strings_escape_what_could_end_the_literal() {
        assert_eq!(soql_string("O'Brien & Sons"), r"'O\'Brien & Sons'");
        assert_eq!(soql_string("a\\' OR Name != '"), r"'a\\\' OR Name != \''");
        assert_eq!(soql_string("two\nlines\t\"q\""), r#"'two\nlines\t\"q\"'"#);
    }

    #[test]
    fn a_matching_query_ands_its_conditions_and_is_limited() {
        assert_eq!(
            soql_matching("Contact", &["Id", "Email"], &[("Email", "ada@x.example"), ("AccountId", "001A")], 50),
            "SELECT Id, Email FROM Contact WHERE Email = 'ada@x.example' AND AccountId = '001A' ORDER BY Id LIMIT 50"
        );
    }

    #[test]
    fn batch_sizes_stay_within_what_salesforce_serves() {
        assert_eq!(query_options(50), "batchSize=200");
        assert_eq!(query_options(1000), "batchSize=1000");
        assert_eq!(batch_size(9000), 2000);
    }

    #[test]
    fn positions_round_trip_and_foreign_ones_are_refused() {
        let p = Position {
            object: Some("Task".into()),
            after: Some("00T8d0000000001AAA".into()),
            next_url: Some("/services/data/v62.0/query/01gX-200".into()),
        };
        assert_eq!(Position::parse(&p.encode()), Some(p));
        assert_eq!(Position::parse(""), Some(Position::default()));
        assert_eq!(Position::parse("Event||"), Some(Position { object: Some("Event".into()), ..Position::default() }));
        assert_eq!(Position::parse("3"), Some(Position { object: Some("3".into()), ..Position::default() }));
        assert!(Position::parse("Task|x' OR Id != '|").is_none());
        assert!(Position::parse("Task||https://evil.example/steal").is_none());
    }
}
