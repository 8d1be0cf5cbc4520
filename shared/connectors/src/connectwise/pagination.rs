//! ConnectWise paging: the list query (`page`, `pageSize`, `orderBy`, `conditions`) and the
//! RFC 8288 `Link` header whose `rel="next"` URL carries the next `page` (psa-apis.md 1.4,
//! 1.5; S2 `parse_link_headers`).

use tandem_domain::Timestamp;
use time::macros::format_description;

/// The order every list is read in, so pages never shift under a full read (psa-apis.md 1.4).
pub const ORDER_BY: &str = "id asc";

/// The field incremental reads filter on. psa-apis.md 1.4: both `lastUpdated` and
/// `_info/lastUpdated` appear in client code; which one every endpoint accepts is
/// UNCONFIRMED, the reference prefers `_info/lastUpdated`. Change it here only.
pub const UPDATED_FIELD: &str = "_info/lastUpdated";

/// The query of one list page: 1-based `page`, `pageSize`, `orderBy=id asc`, and when
/// `since` is set `conditions=_info/lastUpdated >= [YYYY-MM-DDTHH:MM:SSZ]`.
pub fn list_query(page: u32, page_size: u32, since: Option<Timestamp>) -> Vec<(&'static str, String)> {
    let mut query = vec![("page", page.to_string()), ("pageSize", page_size.to_string()), ("orderBy", ORDER_BY.into())];
    if let Some(since) = since {
        query.push(("conditions", since_condition(since)));
    }
    query
}

/// `_info/lastUpdated >= [2024-01-01T00:00:00Z]`: dates in square brackets, whole seconds,
/// UTC (psa-apis.md 1.1 and 1.4). Sub-seconds are dropped, which only widens the window.
pub fn since_condition(since: Timestamp) -> String {
    format!("{UPDATED_FIELD} >= [{}]", cw_datetime(since))
}

/// A timestamp as ConnectWise writes it: `YYYY-MM-DDTHH:MM:SSZ` (S2 `cw_format_datetime`).
pub fn cw_datetime(at: Timestamp) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    at.datetime().format(&format).unwrap_or_else(|_| at.to_rfc3339())
}

/// The page a cursor position names: empty is the first page.
pub fn page_of(position: &str) -> Option<u32> {
    let position = position.trim();
    if position.is_empty() {
        return Some(1);
    }
    position.parse::<u32>().ok().filter(|p| *p >= 1)
}

/// One link of a `Link` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The target, as written between `<` and `>`.
    pub target: String,
    /// The relation types (`rel="next last"` gives two).
    pub rels: Vec<String>,
}

/// Parses a `Link` header value: `<url>; rel="next", <url>; rel=last`. Quoted and unquoted
/// parameters; commas inside `<...>` or quotes do not split links (CW URLs may hold
/// `conditions` with commas). Malformed pieces are skipped.
pub fn parse_link_header(value: &str) -> Vec<Link> {
    let mut links = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else { break };
        let target = after[..close].trim().to_string();
        let (params, next) = split_params(&after[close + 1..]);
        let rels = params
            .split(';')
            .filter_map(|p| p.split_once('='))
            .filter(|(name, _)| name.trim().eq_ignore_ascii_case("rel"))
            .flat_map(|(_, v)| {
                v.trim().trim_matches('"').split_whitespace().map(str::to_ascii_lowercase).collect::<Vec<_>>()
            })
            .collect();
        links.push(Link { target, rels });
        rest = next;
    }
    links
}

/// Splits the parameters of one link from the rest of the header at the first comma that
/// is outside quotes.
fn split_params(s: &str) -> (&str, &str) {
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => return (&s[..i], &s[i + 1..]),
            _ => {}
        }
    }
    (s, "")
}

/// The next page a `Link` header announces: `Ok(None)` when there is no `rel="next"` (the
/// last page), `Err` when there is one without a readable `page` parameter (e.g. the
/// forward-only `pageId` mode, which we never ask for).
pub fn next_page(link_header: &str) -> Result<Option<u32>, String> {
    let Some(next) = parse_link_header(link_header).into_iter().find(|l| l.rels.iter().any(|r| r == "next")) else {
        return Ok(None);
    };
    let query = next.target.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k.eq_ignore_ascii_case("page"))
        .and_then(|(_, v)| v.trim().parse::<u32>().ok())
        .map(Some)
        .ok_or_else(|| format!("the Link header's next URL has no page number: {}", next.target))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CW: &str = "<https://na.myconnectwise.net/v4_6_release/apis/3.0/company/companies?pageSize=1000&page=2>; rel=\"next\", <https://na.myconnectwise.net/v4_6_release/apis/3.0/company/companies?pageSize=1000&page=9>; rel=\"last\"";

    #[test]
    fn the_next_page_is_read_from_the_link_header_among_several_rels() {
        assert_eq!(next_page(CW), Ok(Some(2)));
        let links = parse_link_header(CW);
        assert_eq!(links.len(), 2);
        assert_eq!(links[1].rels, ["last"]);
    }

    #[test]
    fn unquoted_and_multi_valued_rels_are_understood() {
        assert_eq!(next_page("</x?page=1>; rel=prev, </x?page=3&pageSize=5>; rel=next"), Ok(Some(3)));
        assert_eq!(next_page("</x?page=4>; rel=\"next last\""), Ok(Some(4)));
        assert_eq!(next_page("</x?page=5>; title=\"a, b\"; REL=\"Next\""), Ok(Some(5)));
    }

    #[test]
    fn commas_inside_the_url_do_not_split_links() {
        let h = "</x?conditions=board/id%20in%20(1,2)&page=7>; rel=\"next\", </x?page=1>; rel=\"first\"";
        assert_eq!(next_page(h), Ok(Some(7)));
    }

    #[test]
    fn no_next_rel_means_the_last_page() {
        assert_eq!(next_page("</x?page=1>; rel=\"first\", </x?page=2>; rel=\"prev\""), Ok(None));
        assert_eq!(next_page(""), Ok(None));
        assert_eq!(next_page("garbage"), Ok(None));
    }

    #[test]
    fn a_next_link_without_a_page_number_is_an_error() {
        assert!(next_page("</x?pageId=123>; rel=\"next\"").is_err());
    }

    #[test]
    fn the_list_query_orders_by_id_and_filters_by_last_update() {
        let since = Timestamp::parse("2024-03-01T10:00:00.750+02:00").unwrap();
        let q = list_query(3, 50, Some(since));
        assert_eq!(q[0], ("page", "3".into()));
        assert_eq!(q[1], ("pageSize", "50".into()));
        assert_eq!(q[2], ("orderBy", "id asc".into()));
        assert_eq!(q[3], ("conditions", "_info/lastUpdated >= [2024-03-01T08:00:00Z]".into()));
        assert_eq!(list_query(1, 10, None).len(), 3);
    }

    #[test]
    fn cursor_positions_are_page_numbers_and_empty_is_the_first() {
        assert_eq!(page_of(""), Some(1));
        assert_eq!(page_of("4"), Some(4));
        assert_eq!(page_of("0"), None);
        assert_eq!(page_of("abc"), None);
    }
}
