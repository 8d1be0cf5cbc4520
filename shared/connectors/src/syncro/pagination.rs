//! Syncro paging (psa-apis.md 3.3): a 1-based `page` parameter, a fixed page size the
//! server chooses, and `meta.total_pages` saying when to stop. Users are one unpaged list,
//! paged here client-side so each page's detail reads stay bounded.

use super::models::Meta;

/// Users read (one detail request each) per page of the users stage.
pub const USERS_PER_PAGE: usize = 25;

/// The page a cursor position names: empty is the first page.
pub fn page_of(position: &str) -> Option<u64> {
    let position = position.trim();
    if position.is_empty() {
        return Some(1);
    }
    position.parse::<u64>().ok().filter(|p| *p >= 1)
}

/// The page after `page`, or `None` when `meta` says it was the last. A page without
/// `meta` (never seen in the samples) is taken as the last one, so a server that ignores
/// `page` cannot make us loop.
pub fn next_page(meta: Option<&Meta>, page: u64) -> Option<u64> {
    let total = meta?.total_pages?;
    (page < total).then_some(page + 1)
}

/// The query of one list page with `extra` filters.
pub fn list_query(page: u64, extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, String)> {
    let mut query: Vec<(&'static str, String)> = extra.iter().map(|(k, v)| (*k, (*v).to_string())).collect();
    query.push(("page", page.to_string()));
    query
}

/// The slice of `ids` that client-side users page `page` covers, and whether more follow.
pub fn users_slice(ids: &[i64], page: u64) -> (&[i64], bool) {
    let start = usize::try_from(page.saturating_sub(1)).unwrap_or(usize::MAX).saturating_mul(USERS_PER_PAGE);
    let start = start.min(ids.len());
    let end = start.saturating_add(USERS_PER_PAGE).min(ids.len());
    (&ids[start..end], end < ids.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_positions_are_page_numbers_and_empty_is_the_first() {
        assert_eq!(page_of(""), Some(1));
        assert_eq!(page_of("3"), Some(3));
        assert_eq!(page_of("0"), None);
        assert_eq!(page_of("x"), None);
    }

    #[test]
    fn paging_stops_at_the_total_pages_of_the_meta() {
        let meta = Meta { total_pages: Some(3), ..Meta::default() };
        assert_eq!(next_page(Some(&meta), 1), Some(2));
        assert_eq!(next_page(Some(&meta), 3), None);
        assert_eq!(next_page(Some(&Meta { total_pages: Some(0), ..Meta::default() }), 1), None);
        assert_eq!(next_page(None, 1), None);
    }

    #[test]
    fn users_are_paged_client_side() {
        let ids: Vec<i64> = (1..=30).collect();
        assert_eq!(users_slice(&ids, 1), (&ids[0..25], true));
        assert_eq!(users_slice(&ids, 2), (&ids[25..30], false));
        assert_eq!(users_slice(&ids, 9).0.len(), 0);
    }
}
