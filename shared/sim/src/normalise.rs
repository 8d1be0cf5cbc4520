//! Comparison keys for the values import rules link by (phone, website, company name,
//! email). The generators use them to keep unintended records from matching, and the
//! tests use them to check the ground truth independently. They are written apart from the
//! domain's; one table of input -> expected key cases (`tests/key_cases.json`) checks both.

/// Digits of a phone number without an extension (`x12`, `ext. 12`, `#12`, `;12`), an
/// international `00` prefix or a leading North American `1` on 11 digits. `None` when
/// fewer than 7 digits remain.
pub fn phone_key(raw: &str) -> Option<String> {
    let lower = raw.to_lowercase();
    let cut = ["ext", "x", "#", ";"].iter().filter_map(|m| lower.find(m)).min().unwrap_or(lower.len());
    let mut digits: String = lower[..cut].chars().filter(char::is_ascii_digit).collect();
    if let Some(rest) = digits.strip_prefix("00") {
        digits = rest.to_string();
    }
    if digits.len() == 11 && digits.starts_with('1') {
        digits.remove(0);
    }
    (digits.len() >= 7).then_some(digits)
}

/// Lower-case host of a website without scheme, credentials, port, path, `www.` or a
/// trailing dot. `None` when no dotted host is left.
pub fn website_key(raw: &str) -> Option<String> {
    let lower = raw.trim().to_lowercase();
    let rest = lower.split_once("://").map_or(lower.as_str(), |(_, r)| r);
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = host_port.rsplit_once('@').map_or(host_port, |(_, h)| h);
    let host = host_port.split(':').next().unwrap_or_default().trim_end_matches('.');
    let host = host.strip_prefix("www.").unwrap_or(host);
    (!host.is_empty() && host.contains('.')).then(|| host.to_string())
}

/// Lower-case company name with punctuation dropped and spacing collapsed:
/// `"Acme, Inc."` and `"ACME  Inc"` both give `"acme inc"`.
pub fn name_key(raw: &str) -> Option<String> {
    let words: Vec<String> = raw
        .split(char::is_whitespace)
        .map(|w| w.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect::<String>())
        .filter(|w| !w.is_empty())
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// Trimmed lower-case email, when it looks like an address (`local@domain.tld`).
pub fn email_key(raw: &str) -> Option<String> {
    let t = raw.trim();
    let (local, domain) = t.split_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.contains('@')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !t.chars().any(char::is_whitespace);
    ok.then(|| t.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_in_any_format_share_one_key() {
        let k = phone_key("(555) 010-1234");
        assert_eq!(k.as_deref(), Some("5550101234"));
        assert_eq!(phone_key("555.010.1234"), k);
        assert_eq!(phone_key("+1 555 010 1234"), k);
        assert_eq!(phone_key("5550101234 x204"), k);
        assert_eq!(phone_key("12345"), None);
    }

    #[test]
    fn websites_lose_scheme_www_and_path() {
        assert_eq!(website_key("https://www.acme.com/about").as_deref(), Some("acme.com"));
        assert_eq!(website_key("acme.com"), website_key("http://ACME.com:8080/x?y"));
        assert_eq!(website_key("localhost"), None);
    }

    #[test]
    fn company_names_ignore_case_and_punctuation() {
        assert_eq!(name_key("Acme, Inc."), name_key("ACME  Inc"));
        assert_ne!(name_key("Acme Inc"), name_key("Acme Co"));
    }

    #[test]
    fn emails_compare_without_case() {
        assert_eq!(email_key(" John.Smith@Acme.com "), email_key("john.smith@acme.com"));
        assert_eq!(email_key("not-an-email"), None);
    }
}
