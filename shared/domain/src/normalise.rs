//! Checked values and the normalisers the link rules compare by: email, phone, website,
//! company name; and the UTC timestamp type used everywhere.

use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::DomainError;

/// A UTC instant, serialised as RFC 3339 (`2024-01-01T00:00:00Z`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    /// Wraps an instant, converted to UTC.
    pub fn from_datetime(dt: OffsetDateTime) -> Self {
        Self(dt.to_offset(time::UtcOffset::UTC))
    }

    /// Seconds since the Unix epoch.
    pub fn from_unix(secs: i64) -> Result<Self, DomainError> {
        OffsetDateTime::from_unix_timestamp(secs)
            .map(Self)
            .map_err(|e| DomainError::invalid(format!("timestamp {secs} out of range: {e}")))
    }

    /// Parses RFC 3339 (`2024-01-01T00:00:00Z`, offsets allowed).
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        OffsetDateTime::parse(raw.trim(), &Rfc3339)
            .map(Self::from_datetime)
            .map_err(|e| DomainError::invalid(format!("{raw:?} is not an RFC 3339 timestamp: {e}")))
    }

    /// The instant as `time`'s type.
    pub fn datetime(self) -> OffsetDateTime {
        self.0
    }

    /// Seconds since the Unix epoch.
    pub fn unix(self) -> i64 {
        self.0.unix_timestamp()
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_millis(self) -> i64 {
        (self.0.unix_timestamp_nanos() / 1_000_000) as i64
    }

    /// RFC 3339 text, always UTC with `Z`.
    pub fn to_rfc3339(self) -> String {
        self.0.format(&Rfc3339).unwrap_or_else(|_| self.0.unix_timestamp().to_string())
    }

    /// The calendar day (`YYYY-MM-DD`), used to bucket sync-log entries.
    pub fn day(self) -> String {
        let d = self.0.date();
        format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
    }

    /// This instant plus whole seconds.
    pub fn plus_seconds(self, secs: i64) -> Self {
        Self(self.0 + time::Duration::seconds(secs))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Timestamp::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// An email address, compared case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Parses an address: trimmed, one `@` with text on both sides and a dot in the domain.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let t = raw.trim();
        let valid = match t.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !t.chars().any(char::is_whitespace)
            }
            None => false,
        };
        if valid {
            Ok(Self(t.to_string()))
        } else {
            Err(DomainError::invalid(format!("{raw:?} is not an email address")))
        }
    }

    /// The address as given (letter case kept).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The comparison key: lower case.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl TryFrom<String> for Email {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

/// The comparison key of a phone number: its digits, without a leading North American
/// country code (`1` on 11 digits) or international prefix (`00`), and without an
/// extension (`x123`, `ext. 123`, `#123`). `None` when fewer than 7 digits remain.
pub fn phone_key(raw: &str) -> Option<String> {
    let lower = raw.to_lowercase();
    let main =
        ["ext", "x", "#", ";"].iter().filter_map(|m| lower.find(m)).min().map_or(lower.as_str(), |i| &lower[..i]);
    let mut digits: String = main.chars().filter(char::is_ascii_digit).collect();
    if let Some(rest) = digits.strip_prefix("00") {
        digits = rest.to_string();
    }
    if digits.len() == 11 && digits.starts_with('1') {
        digits.remove(0);
    }
    (digits.len() >= 7).then_some(digits)
}

/// The comparison key of a website: the lower-case host without scheme, credentials,
/// port, path, `www.` or trailing dot. `None` when no host is left.
pub fn website_key(raw: &str) -> Option<String> {
    let t = raw.trim().to_lowercase();
    let no_scheme = t.split_once("://").map_or(t.as_str(), |(_, rest)| rest);
    let host_port = no_scheme.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = host_port.rsplit_once('@').map_or(host_port, |(_, h)| h);
    let host = host_port.split(':').next().unwrap_or_default().trim_end_matches('.');
    let host = host.strip_prefix("www.").unwrap_or(host);
    (!host.is_empty() && host.contains('.')).then(|| host.to_string())
}

/// The comparison key of a company name: lower case, punctuation dropped, runs of
/// spacing collapsed to one space. `"Acme, Inc."` and `"ACME  Inc"` share `"acme inc"`.
pub fn name_key(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    for word in raw
        .split(|c: char| c.is_whitespace())
        .map(|w| w.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect::<String>())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&word);
    }
    (!out.is_empty()).then_some(out)
}

/// The comparison key of an email address: trimmed and lower case, if it parses.
pub fn email_key(raw: &str) -> Option<String> {
    Email::parse(raw).ok().map(|e| e.key())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_match_whatever_their_formatting() {
        let k = phone_key("(555) 010-1234");
        assert_eq!(k.as_deref(), Some("5550101234"));
        assert_eq!(phone_key("555.010.1234"), k);
        assert_eq!(phone_key("+1 555 010 1234"), k);
        assert_eq!(phone_key("1-555-010-1234"), k);
    }

    #[test]
    fn phone_extensions_are_ignored() {
        assert_eq!(phone_key("555-010-1234 x42").as_deref(), Some("5550101234"));
        assert_eq!(phone_key("555-010-1234 ext. 7").as_deref(), Some("5550101234"));
        assert_eq!(phone_key("+1 (555) 010-1234 #99").as_deref(), Some("5550101234"));
    }

    #[test]
    fn international_phone_prefixes_are_ignored_but_other_country_codes_kept() {
        assert_eq!(phone_key("0044 20 7946 0958"), phone_key("+44 20 7946 0958"));
        assert_ne!(phone_key("+44 20 7946 0958"), phone_key("20 7946 0958"));
    }

    #[test]
    fn phone_numbers_too_short_to_identify_anything_have_no_key() {
        assert_eq!(phone_key("123"), None);
        assert_eq!(phone_key(""), None);
        assert_eq!(phone_key("n/a"), None);
    }

    #[test]
    fn websites_compare_by_host_without_scheme_www_or_path() {
        let k = website_key("acme.com");
        assert_eq!(k.as_deref(), Some("acme.com"));
        assert_eq!(website_key("https://www.acme.com/about?x=1"), k);
        assert_eq!(website_key("HTTP://WWW.ACME.COM"), k);
        assert_eq!(website_key("www.acme.com:8080/"), k);
        assert_eq!(website_key("acme.com."), k);
        assert_ne!(website_key("shop.acme.com"), k);
    }

    #[test]
    fn websites_without_a_host_have_no_key() {
        assert_eq!(website_key(""), None);
        assert_eq!(website_key("https://"), None);
        assert_eq!(website_key("localhost"), None);
    }

    #[test]
    fn company_names_compare_ignoring_case_spacing_and_punctuation() {
        let k = name_key("Acme, Inc.");
        assert_eq!(k.as_deref(), Some("acme inc"));
        assert_eq!(name_key("ACME   Inc"), k);
        assert_eq!(name_key(" acme inc. "), k);
        assert_ne!(name_key("Acme Incorporated"), k);
        assert_eq!(name_key("..."), None);
    }

    #[test]
    fn emails_compare_ignoring_case_and_surrounding_space() {
        assert_eq!(email_key(" Bob@Example.COM "), email_key("bob@example.com"));
        assert_eq!(email_key("bob@example.com").as_deref(), Some("bob@example.com"));
    }

    #[test]
    fn malformed_emails_are_refused_with_the_value_named() {
        for bad in ["", "bob", "bob@", "@x.com", "bob@x", "a b@x.com", "a@b@c.com"] {
            let err = Email::parse(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("is not an email address"), "{bad}: {err}");
        }
    }

    /// The shared table of (input, expected key) cases (shared/sim/tests/key_cases.json),
    /// which the simulators' own normalisers are checked against too.
    use tandem_sim::key_cases::mismatches as key_case_mismatches;

    #[test]
    fn phone_keys_match_the_shared_table_of_cases() {
        assert_eq!(key_case_mismatches("phone", phone_key), Vec::<String>::new());
    }

    #[test]
    fn website_keys_match_the_shared_table_of_cases() {
        assert_eq!(key_case_mismatches("website", website_key), Vec::<String>::new());
    }

    #[test]
    fn name_keys_match_the_shared_table_of_cases() {
        assert_eq!(key_case_mismatches("name", name_key), Vec::<String>::new());
    }

    #[test]
    fn email_keys_match_the_shared_table_of_cases() {
        assert_eq!(key_case_mismatches("email", email_key), Vec::<String>::new());
    }

    #[test]
    fn timestamps_round_trip_as_utc_rfc3339() {
        let t = Timestamp::parse("2024-03-01T10:00:00+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-03-01T08:00:00Z");
        assert_eq!(t.day(), "2024-03-01");
        assert!(Timestamp::parse("yesterday").is_err());
    }
}
