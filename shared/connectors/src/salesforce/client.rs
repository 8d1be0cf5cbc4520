//! Salesforce requests: the token from `{login_url}/services/oauth2/token`, then every REST
//! call to the session's `instance_url` with the bearer header, sent through the shared
//! [`Transport`] (pacing narrowed by `Sforce-Limit-Info`, retry honouring `Retry-After`,
//! secrets scrubbed), and one token refresh + retry when a call answers 401
//! `INVALID_SESSION_ID` (salesforce-api.md 1.4).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use tandem_domain::System;
use tandem_domain::ports::{ConnectorError, ErrorKind};
use tandem_domain::secret::SalesforceCredentials;
use tokio::sync::Mutex;
use url::Url;

use super::auth::{AppCredentials, Session, TOKEN_PATH};
use super::error;
use super::models::TokenResponse;
use crate::http::{self, RetryPolicy, Settings};
use crate::pacing::{Rate, Usage};
use crate::transport::{Limits, Request, Transport};

/// The REST API version the connector speaks.
pub const API_VERSION: &str = "v62.0";
/// The request header carrying query options (salesforce-api.md 2.3).
pub const QUERY_OPTIONS_HEADER: &str = "Sforce-Query-Options";
/// The response header reporting the org's API usage (salesforce-api.md 5.4).
pub const LIMIT_INFO_HEADER: &str = "sforce-limit-info";

/// The rate one connection is paced at. Not a vendor number: Salesforce publishes no
/// per-second limit for short requests (salesforce-api.md 5.4: a rolling 24-hour allocation
/// per org, and at most 25 concurrent requests longer than 20 s). This ceiling keeps one
/// connection polite; the binding limit, the daily allocation, narrows it as it runs out
/// (read from `Sforce-Limit-Info` by [`usage`]). Change it here if needed.
pub const REQUEST_RATE: Rate = Rate::per_second(25);

/// What the transport needs to know of Salesforce's limits: [`REQUEST_RATE`], narrowed by
/// the `Sforce-Limit-Info` usage on every answer.
pub const LIMITS: Limits = Limits { rate: REQUEST_RATE, usage: Some(usage) };

/// The API usage of `Sforce-Limit-Info: api-usage=18/5000` (used/allocation, rolling 24 h;
/// salesforce-api.md 5.4). Other parts (`api-bursts=...`) are ignored.
pub fn usage(headers: &HeaderMap) -> Option<Usage> {
    let value = headers.get(LIMIT_INFO_HEADER)?.to_str().ok()?;
    tracing::trace!(usage = value, "Salesforce API usage");
    value.split(',').find_map(|part| {
        let (name, counts) = part.trim().split_once('=')?;
        let (used, limit) = counts.trim().split_once('/')?;
        (name.trim() == "api-usage")
            .then(|| Some(Usage { used: used.trim().parse().ok()?, limit: limit.trim().parse().ok()? }))
            .flatten()
    })
}

/// A Salesforce HTTP client for one connection. `Debug` never shows a secret or token.
#[derive(Debug)]
pub struct Client {
    transport: Transport,
    /// `scheme://host[:port]` of the login (or My Domain) host.
    login_origin: String,
    app: AppCredentials,
    session: Mutex<Option<Arc<Session>>>,
    generation: AtomicU64,
}

impl Client {
    /// A client for these credentials (no network call). Fails when the login URL is not
    /// a host or URL.
    pub fn new(
        http: reqwest::Client,
        settings: &Settings,
        creds: &SalesforceCredentials,
    ) -> Result<Self, ConnectorError> {
        let login_origin = origin(&creds.login_url).map_err(|reason| {
            ConnectorError::new(
                System::Salesforce,
                ErrorKind::UnknownAccount,
                format!("'{}' is not a Salesforce login URL: {reason}", creds.login_url.trim()),
            )
        })?;
        let app = AppCredentials::new(creds);
        let connection = format!("{login_origin} {}", app.client_id);
        let mut transport =
            Transport::new(System::Salesforce, http, settings, &connection, LIMITS).scrubbing(&creds.client_secret);
        if let Some(token) = &creds.refresh_token {
            transport = transport.scrubbing(token);
        }
        Ok(Self { transport, login_origin, app, session: Mutex::new(None), generation: AtomicU64::new(0) })
    }

    /// The login origin.
    pub fn login_origin(&self) -> &str {
        &self.login_origin
    }

    /// The transport (pacing included) of this connection.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The current session, fetching a token first when there is none.
    pub async fn session(&self, policy: &RetryPolicy) -> Result<Arc<Session>, ConnectorError> {
        let mut slot = self.session.lock().await;
        if let Some(s) = slot.as_ref() {
            return Ok(Arc::clone(s));
        }
        let fresh = Arc::new(self.token(policy).await?);
        *slot = Some(Arc::clone(&fresh));
        Ok(fresh)
    }

    /// A new session replacing `stale` (unless another caller already replaced it).
    async fn renew(&self, stale: &Session, policy: &RetryPolicy) -> Result<Arc<Session>, ConnectorError> {
        let mut slot = self.session.lock().await;
        if let Some(s) = slot.as_ref()
            && s.generation != stale.generation
        {
            return Ok(Arc::clone(s));
        }
        *slot = None;
        tracing::debug!(client_id = %self.app.client_id, "Salesforce session refused; fetching a new token");
        let fresh = Arc::new(self.token(policy).await?);
        *slot = Some(Arc::clone(&fresh));
        Ok(fresh)
    }

    /// The token request (a POST, but marked idempotent: a second token harms nothing),
    /// retried on transient failures.
    async fn token(&self, policy: &RetryPolicy) -> Result<Session, ConnectorError> {
        let url = Url::parse(&format!("{}{TOKEN_PATH}", self.login_origin))
            .map_err(|e| self.invalid(format!("bad Salesforce login URL: {e}")))?;
        let form: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(self.app.form()).finish();
        let request = Request::new(reqwest::Method::POST, url, "a Salesforce token")
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .body("application/x-www-form-urlencoded", form)
            .idempotent(true);
        let classify = error::OAuth { client_id: &self.app.client_id };
        let answer = self.transport.send(&request, policy, &classify).await?;
        let token: TokenResponse = serde_json::from_slice(&answer.body).map_err(|e| {
            self.invalid(format!("Salesforce answered a token we cannot read: {}", http::sanitise(&e.to_string())))
        })?;
        Session::from_token(&token, self.generation.fetch_add(1, Ordering::SeqCst) + 1)
            .map_err(|e| self.transport.scrub(e))
    }

    /// An authenticated `GET` of `path` (starting with `/services/data/`, e.g. a
    /// `nextRecordsUrl`) on the instance, with retry; on 401 the token is refreshed once
    /// and the call retried.
    pub async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        headers: &[(&'static str, String)],
        policy: &RetryPolicy,
    ) -> Result<Vec<u8>, ConnectorError> {
        let session = self.session(policy).await?;
        match self.get_with(&session, path, query, headers, policy).await {
            Err(e) if error::is_invalid_session(&e) => {
                let fresh = self.renew(&session, policy).await?;
                self.get_with(&fresh, path, query, headers, policy).await
            }
            other => other,
        }
    }

    async fn get_with(
        &self,
        session: &Session,
        path: &str,
        query: &[(&str, String)],
        headers: &[(&'static str, String)],
        policy: &RetryPolicy,
    ) -> Result<Vec<u8>, ConnectorError> {
        let mut url = Url::parse(&format!("{}{path}", session.instance_url))
            .map_err(|e| self.invalid(format!("bad Salesforce path {path}: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let mut request = Request::get(url, endpoint_name(path))
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .header(AUTHORIZATION, session.authorization.clone());
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| self.invalid(format!("{name:?} is not a header name")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| self.invalid(format!("the {name} header cannot carry {value:?}")))?;
            request = request.header(name, value);
        }
        Ok(self.transport.send(&request, policy, &error::Api).await?.body)
    }

    fn invalid(&self, message: String) -> ConnectorError {
        self.transport.scrub(ConnectorError::new(System::Salesforce, ErrorKind::Invalid, message))
    }
}

/// A short name of an endpoint for messages: the path after the version
/// (`query`, `sobjects/Account/describe`), locators reduced to `query/{locator}`.
fn endpoint_name(path: &str) -> String {
    let rest = path.trim_start_matches("/services/data/");
    let rest = rest.split_once('/').map_or(rest, |(_, r)| r);
    match rest.split_once('/') {
        Some(("query" | "queryAll", _)) => "query (next page)".into(),
        _ => rest.to_string(),
    }
}

/// `scheme://host[:port]` of a login URL given as a host (taken as `https://`) or a URL.
pub fn origin(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("it is empty".into());
    }
    let with_scheme = if raw.contains("://") { raw.to_string() } else { format!("https://{raw}") };
    let url = Url::parse(&with_scheme).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme {} is not http or https", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("it has no host".into());
    }
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_urls_may_be_hosts_or_urls() {
        assert_eq!(origin("login.salesforce.com").unwrap(), "https://login.salesforce.com");
        assert_eq!(origin("http://127.0.0.1:8080/").unwrap(), "http://127.0.0.1:8080");
        assert!(origin("").is_err() && origin("ftp://x.com").is_err() && origin("not a host").is_err());
    }

    #[test]
    fn the_api_usage_is_read_from_sforce_limit_info_whatever_else_it_holds() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(LIMIT_INFO_HEADER, HeaderValue::from_static(v));
            usage(&h)
        };
        assert_eq!(with("api-usage=18/5000"), Some(Usage { used: 18, limit: 5000 }));
        assert_eq!(with("api-bursts=1/750, api-usage=4990/5000"), Some(Usage { used: 4990, limit: 5000 }));
        assert_eq!(with("api-bursts=1/750"), None);
        assert_eq!(with("api-usage=lots"), None);
        assert_eq!(usage(&HeaderMap::new()), None);
    }

    #[test]
    fn endpoints_are_named_without_version_or_locator() {
        assert_eq!(endpoint_name("/services/data/v62.0/query"), "query");
        assert_eq!(endpoint_name("/services/data/v62.0/query/01gX-200"), "query (next page)");
        assert_eq!(endpoint_name("/services/data/v62.0/sobjects/Account/describe"), "sobjects/Account/describe");
    }
}
