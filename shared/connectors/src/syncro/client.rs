//! Syncro requests: the site -> API root (`https://{subdomain}.syncromsp.com/api/v1`, or a
//! full base URL), authentication, retry, and the answer body or a classified error.

use reqwest::header::{ACCEPT, HeaderValue};
use tandem_domain::System;
use tandem_domain::ports::{ConnectorError, ErrorKind};
use tandem_domain::secret::{SecretString, SyncroCredentials};
use url::Url;

use super::auth::Auth;
use super::error::{self, Context};
use crate::hosts::HostPolicy;
use crate::http::{self, RetryPolicy};

/// The path under the account's host where the API lives (psa-apis.md 3.1).
pub const API_PATH: &str = "/api/v1";
/// The domain of hosted Syncro accounts.
pub const SYNCRO_DOMAIN: &str = "syncromsp.com";

/// The shortest token scrubbed from messages.
const MIN_SCRUBBED_KEY_LEN: usize = 6;

/// One successful answer.
#[derive(Clone, Debug, Default)]
pub struct Answer {
    /// The body, unparsed.
    pub body: Vec<u8>,
}

/// A Syncro HTTP client for one connection. `Debug` never shows the token.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    /// The hosts requests may go to.
    hosts: HostPolicy,
    root: String,
    auth: Auth,
    /// Kept only to scrub it from any message, should a server ever echo it.
    api_key: SecretString,
}

impl Client {
    /// A client for these credentials. No network call; fails (UnknownAccount) only when the
    /// site is neither a subdomain nor a URL, or the token cannot go into a header.
    pub fn new(http: reqwest::Client, hosts: HostPolicy, creds: &SyncroCredentials) -> Result<Self, ConnectorError> {
        let root = api_root(&creds.site).map_err(|reason| {
            ConnectorError::new(
                System::Syncro,
                ErrorKind::UnknownAccount,
                format!("'{}' is not a Syncro subdomain or URL: {reason}", creds.site.trim()),
            )
        })?;
        Ok(Self { http, hosts, root, auth: Auth::new(creds)?, api_key: creds.api_key.clone() })
    }

    /// The API root, e.g. `https://acme.syncromsp.com/api/v1`.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// An authenticated `GET {root}{path}?{query}` with retry; `path` starts with `/`.
    pub async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        policy: &RetryPolicy,
    ) -> Result<Answer, ConnectorError> {
        let mut url = Url::parse(&format!("{}{path}", self.root)).map_err(|e| {
            self.scrub(ConnectorError::new(System::Syncro, ErrorKind::Invalid, format!("bad path {path}: {e}")))
        })?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        http::send_with_retry(policy, || self.attempt(&url, path)).await
    }

    /// One request: a success answer, or the classified error (scrubbed of the token).
    async fn attempt(&self, url: &Url, endpoint: &str) -> Result<Answer, ConnectorError> {
        let request =
            self.auth.apply(self.http.get(url.clone()).header(ACCEPT, HeaderValue::from_static("application/json")));
        let what = format!("requesting {endpoint}");
        let response = http::send(System::Syncro, self.hosts, request, &what).await.map_err(|e| self.scrub(e))?;
        let status = response.status().as_u16();
        let retry_after = http::retry_after(response.headers());
        let content_type = http::content_type(response.headers());
        let body = response
            .bytes()
            .await
            .map_err(|e| self.scrub(http::transport_error(System::Syncro, &e, &format!("reading {endpoint}"))))?;
        if !(200..300).contains(&status) {
            let ctx = Context { root: &self.root, endpoint };
            return Err(self.scrub(error::from_response(status, retry_after, content_type.as_deref(), &body, ctx)));
        }
        Ok(Answer { body: body.to_vec() })
    }

    /// Replaces the token in a message, should a server ever echo it back.
    fn scrub(&self, mut err: ConnectorError) -> ConnectorError {
        let key = self.api_key.expose().trim();
        if key.len() >= MIN_SCRUBBED_KEY_LEN && err.message.contains(key) {
            err.message = err.message.replace(key, "***");
        }
        err
    }
}

/// The API root of a site: a subdomain (`acme`) or a hosted host (`acme.syncromsp.com`) is
/// `https://acme.syncromsp.com/api/v1`; a URL with a scheme keeps scheme, host and port and
/// gets `/api/v1` unless it already has a path (the simulator's `http://127.0.0.1:PORT`).
pub fn api_root(site: &str) -> Result<String, String> {
    let site = site.trim().trim_end_matches('/');
    if site.is_empty() {
        return Err("the site is empty".into());
    }
    if site.contains("://") {
        let url = Url::parse(site).map_err(|e| e.to_string())?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("scheme {} is not http or https", url.scheme()));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("it has no host".into());
        }
        let path = url.path().trim_end_matches('/');
        let path = if path.is_empty() { API_PATH } else { path };
        return Ok(format!("{}{path}", url.origin().ascii_serialization()));
    }
    let lower = site.to_ascii_lowercase();
    let sub = lower.strip_suffix(&format!(".{SYNCRO_DOMAIN}")).unwrap_or(&lower);
    let valid = !sub.is_empty()
        && sub.len() <= 63
        && sub.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !sub.starts_with('-')
        && !sub.ends_with('-');
    if !valid {
        return Err("a subdomain has only letters, digits and dashes (acme for acme.syncromsp.com)".into());
    }
    Ok(format!("https://{sub}.{SYNCRO_DOMAIN}{API_PATH}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subdomain_or_hosted_host_becomes_the_hosted_api_root() {
        assert_eq!(api_root("acme").unwrap(), "https://acme.syncromsp.com/api/v1");
        assert_eq!(api_root(" ACME.syncromsp.com ").unwrap(), "https://acme.syncromsp.com/api/v1");
    }

    #[test]
    fn a_full_url_keeps_its_origin_and_gets_the_api_path_when_it_has_none() {
        assert_eq!(api_root("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080/api/v1");
        assert_eq!(api_root("https://acme.syncromsp.com/api/v1/").unwrap(), "https://acme.syncromsp.com/api/v1");
    }

    #[test]
    fn a_site_that_is_neither_is_refused() {
        for bad in ["", "not a host", "ftp://x.com", "http://", "a_b", "-acme"] {
            assert!(api_root(bad).is_err(), "{bad}");
        }
    }
}
