//! Syncro requests: the site -> API root (`https://{subdomain}.syncromsp.com/api/v1`, or a
//! full base URL) and authentication; reads (`GET`), creates (`POST`, never repeated) and
//! partial updates (`PUT`), sent through the shared [`Transport`] (pacing, retry, secrets
//! scrubbed) and classified by [`super::error`].

use reqwest::Method;
use reqwest::header::{ACCEPT, HeaderValue};
use serde_json::Value;
use tandem_domain::System;
use tandem_domain::ports::{ConnectorError, ErrorKind};
use tandem_domain::secret::SyncroCredentials;
use url::Url;

use super::auth::Auth;
use super::error::Api;
use crate::http::{RetryPolicy, Settings};
use crate::pacing::Rate;
use crate::transport::{Limits, Request, Transport};

/// The path under the account's host where the API lives (psa-apis.md 3.1).
pub const API_PATH: &str = "/api/v1";
/// The domain of hosted Syncro accounts.
pub const SYNCRO_DOMAIN: &str = "syncromsp.com";

/// The rate one connection is paced at: Syncro's published limit, 180 requests a minute
/// per IP address (psa-apis.md 3.7, from the official spec's description). The limit is
/// per IP, so connections sharing an egress IP share it too; the bucket is per connection.
pub const REQUEST_RATE: Rate = Rate::per_minute(180);

/// What the transport needs to know of Syncro's limits: [`REQUEST_RATE`]; no usage header
/// is documented (psa-apis.md 3.7: even `Retry-After` is UNCONFIRMED).
pub const LIMITS: Limits = Limits { rate: REQUEST_RATE, usage: None };

/// One successful answer.
#[derive(Clone, Debug, Default)]
pub struct Answer {
    /// The body, unparsed.
    pub body: Vec<u8>,
}

/// A Syncro HTTP client for one connection. `Debug` never shows the token.
#[derive(Debug)]
pub struct Client {
    transport: Transport,
    root: String,
    auth: Auth,
}

impl Client {
    /// A client for these credentials. No network call; fails (UnknownAccount) only when the
    /// site is neither a subdomain nor a URL, or the token cannot go into a header.
    pub fn new(http: reqwest::Client, settings: &Settings, creds: &SyncroCredentials) -> Result<Self, ConnectorError> {
        let root = api_root(&creds.site).map_err(|reason| {
            ConnectorError::new(
                System::Syncro,
                ErrorKind::UnknownAccount,
                format!("'{}' is not a Syncro subdomain or URL: {reason}", creds.site.trim()),
            )
        })?;
        let transport = Transport::new(System::Syncro, http, settings, &root, LIMITS).scrubbing(&creds.api_key);
        Ok(Self { transport, auth: Auth::new(creds)?, root })
    }

    /// The API root, e.g. `https://acme.syncromsp.com/api/v1`.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The transport (pacing included) of this connection.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// An authenticated `GET {root}{path}?{query}` with retry; `path` starts with `/`.
    pub async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        policy: &RetryPolicy,
    ) -> Result<Answer, ConnectorError> {
        self.send(self.request(Method::GET, path, query)?, policy).await
    }

    /// An authenticated `POST {root}{path}` of a JSON body that creates a record (psa-apis.md
    /// 3.5). Never repeated once it may have reached Syncro (`idempotent(false)`): a create
    /// whose outcome is unknown fails, and the caller looks for the record before sending it
    /// again.
    pub async fn post(&self, path: &str, body: &Value, policy: &RetryPolicy) -> Result<Answer, ConnectorError> {
        let request = self.request(Method::POST, path, &[])?.idempotent(false);
        self.send(with_json(request, body)?, policy).await
    }

    /// An authenticated `PUT {root}{path}` of a partial JSON body (psa-apis.md 3.5: fields
    /// not sent are left alone). Setting the same values twice is setting them once, so it
    /// is retried like a read.
    pub async fn put(&self, path: &str, body: &Value, policy: &RetryPolicy) -> Result<Answer, ConnectorError> {
        let request = self.request(Method::PUT, path, &[])?.idempotent(true);
        self.send(with_json(request, body)?, policy).await
    }

    /// An authenticated `DELETE {root}{path}` (psa-apis.md 3.5: customers answer 200
    /// `{"message": ...}`), idempotent as HTTP defines it, so retried like a read.
    pub async fn delete(&self, path: &str, policy: &RetryPolicy) -> Result<Answer, ConnectorError> {
        self.send(self.request(Method::DELETE, path, &[])?, policy).await
    }

    /// An authenticated request of `method` to `{root}{path}?{query}`, asking for JSON.
    fn request(&self, method: Method, path: &str, query: &[(&str, String)]) -> Result<Request, ConnectorError> {
        let mut url = Url::parse(&format!("{}{path}", self.root)).map_err(|e| {
            self.transport.scrub(ConnectorError::new(
                System::Syncro,
                ErrorKind::Invalid,
                format!("bad path {path}: {e}"),
            ))
        })?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let mut request = Request::new(method, url, path).header(ACCEPT, HeaderValue::from_static("application/json"));
        self.auth.insert(&mut request.headers);
        Ok(request)
    }

    async fn send(&self, request: Request, policy: &RetryPolicy) -> Result<Answer, ConnectorError> {
        let answer = self.transport.send(&request, policy, &Api { root: &self.root }).await?;
        Ok(Answer { body: answer.body })
    }
}

/// `request` carrying `body` as JSON.
fn with_json(request: Request, body: &Value) -> Result<Request, ConnectorError> {
    let bytes = serde_json::to_vec(body).map_err(|e| {
        ConnectorError::new(System::Syncro, ErrorKind::Invalid, format!("a Syncro body could not be written: {e}"))
    })?;
    Ok(request.body("application/json", bytes))
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
