//! HaloPSA paging (psa-apis.md 2.3): `pageinate=true&page_no&page_size` (page size at most
//! 100), the `{record_count, <plural>}` envelope, `lastupdatefromdate` for incremental
//! reads, and the cursor positions of the stages (a page number; for activities a phase
//! and a page: CRM notes first, then actions).

use tandem_domain::Timestamp;
use time::macros::format_description;

/// The largest page Halo serves (psa-apis.md 2.3: "Maximum size: 100").
pub const MAX_PAGE_SIZE: u32 = 100;

/// The query of one list page, with `lastupdatefromdate` when `since` is set.
pub fn page_query(page: u32, page_size: u32, since: Option<Timestamp>) -> Vec<(&'static str, String)> {
    let mut q = vec![
        ("pageinate", "true".to_string()),
        ("page_no", page.to_string()),
        ("page_size", page_size.clamp(1, MAX_PAGE_SIZE).to_string()),
        ("order", "id".to_string()),
    ];
    if let Some(since) = since {
        q.push(("lastupdatefromdate", halo_datetime(since)));
    }
    q
}

/// A timestamp as sent in `lastupdatefromdate`: `YYYY-MM-DDTHH:MM:SS` in UTC. UNCONFIRMED
/// (psa-apis.md 2.3: the parameter's format is not documented); whole seconds, no zone.
pub fn halo_datetime(at: Timestamp) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    at.datetime().format(&format).unwrap_or_else(|_| at.to_rfc3339())
}

/// Whether a page `page` of `page_size` holding `got` rows out of `record_count` has a next.
pub fn has_next(page: u32, page_size: u32, got: usize, record_count: Option<u64>) -> bool {
    match record_count {
        Some(total) => got > 0 && u64::from(page) * u64::from(page_size.clamp(1, MAX_PAGE_SIZE)) < total,
        None => got >= page_size.clamp(1, MAX_PAGE_SIZE) as usize,
    }
}

/// Which source of the activities stage a cursor is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// `/api/CRMNote`.
    Notes,
    /// `/api/Actions`.
    Actions,
}

/// A parsed cursor position: (phase, page). Empty: the first page (of CRM notes for the
/// activities stage). Other stages use a bare page number.
pub fn position(raw: &str) -> Option<(Phase, u32)> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Some((Phase::Notes, 1));
    }
    let (phase, page) = match raw.split_once(':') {
        Some(("notes", p)) => (Phase::Notes, p),
        Some(("actions", p)) => (Phase::Actions, p),
        Some(_) => return None,
        None => (Phase::Notes, raw),
    };
    page.parse::<u32>().ok().filter(|p| *p >= 1).map(|p| (phase, p))
}

/// The text of a position.
pub fn position_text(phase: Phase, page: u32) -> String {
    match phase {
        Phase::Notes => format!("notes:{page}"),
        Phase::Actions => format!("actions:{page}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_query_caps_the_size_and_adds_the_since_filter() {
        let since = Timestamp::parse("2024-03-01T10:00:00.750+02:00").unwrap();
        let q = page_query(2, 1000, Some(since));
        assert!(q.contains(&("page_size", "100".into())));
        assert!(q.contains(&("lastupdatefromdate", "2024-03-01T08:00:00".into())));
        assert_eq!(page_query(1, 10, None).len(), 4);
    }

    #[test]
    fn the_record_count_says_whether_another_page_follows() {
        assert!(has_next(1, 100, 100, Some(250)));
        assert!(!has_next(3, 100, 50, Some(250)));
        assert!(!has_next(1, 100, 0, Some(250)));
        assert!(has_next(1, 10, 10, None));
    }

    #[test]
    fn positions_name_a_phase_and_a_page() {
        assert_eq!(position(""), Some((Phase::Notes, 1)));
        assert_eq!(position("4"), Some((Phase::Notes, 4)));
        assert_eq!(position("actions:2"), Some((Phase::Actions, 2)));
        assert_eq!(position(&position_text(Phase::Actions, 7)), Some((Phase::Actions, 7)));
        assert_eq!(position("x:1"), None);
        assert_eq!(position("0"), None);
    }
}
