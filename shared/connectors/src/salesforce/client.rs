//! Salesforce requests: the token from `{login_url}/services/oauth2/token`, then every REST
//! call (reads; creates, never repeated; partial updates; deletes) to the session's `instance_url`
//! with the bearer header, sent through the shared [`Transport`] (pacing narrowed by
//! `Sforce-Limit-Info`, retry honouring `Retry-After`, secrets scrubbed), and one token
//! refresh + retry when a call answers 401 `INVALID_SESSION_ID` (salesforce-api.md 1.4).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
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
/// The request header naming the client a change came from, so Change Data Capture's
/// `changeOrigin` carries `client=<CALL_CLIENT>` for Tandem's own writes (creates, updates,
/// deletes). salesforce-api.md 3.1 and 6.1: the concept is confirmed, the header's name and
/// syntax are UNCONFIRMED; if Salesforce names it otherwise, change it here only. The
/// simulator ignores it.
pub const CALL_OPTIONS_HEADER: &str = "Sforce-Call-Options";
/// The client name Tandem's writes carry in [`CALL_OPTIONS_HEADER`]; the webhook reader
/// marks a change whose `changeOrigin` names it as Tandem's own.
pub const CALL_CLIENT: &str = "TandemSync";
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

/// The value of [`CALL_OPTIONS_HEADER`] on Tandem's writes.
pub fn call_options() -> String {
    format!("client={CALL_CLIENT}")
}

/// One REST call, as [`Client`] sends it (and sends again after a token refresh).
struct Call<'a> {
    method: Method,
    path: &'a str,
    query: &'a [(&'a str, String)],
    headers: &'a [(&'static str, String)],
    body: Option<Vec<u8>>,
    idempotent: bool,
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
        let call = Call { method: Method::GET, path, query, headers, body: None, idempotent: true };
        self.send(&call, policy).await
    }

    /// An authenticated `POST` of a JSON body that creates a record (salesforce-api.md
    /// 3.1), marked with [`CALL_OPTIONS_HEADER`]. Never repeated once it may have reached
    /// Salesforce (`idempotent(false)`); a 401 refused it before it was processed, so it is
    /// sent once more with a fresh token.
    pub async fn post(&self, path: &str, body: &Value, policy: &RetryPolicy) -> Result<Vec<u8>, ConnectorError> {
        let body = self.json(body)?;
        let headers = [(CALL_OPTIONS_HEADER, call_options())];
        let call =
            Call { method: Method::POST, path, query: &[], headers: &headers, body: Some(body), idempotent: false };
        self.send(&call, policy).await
    }

    /// An authenticated `PATCH` of a partial JSON body (salesforce-api.md 3.1: 204, fields
    /// not sent are left alone), marked with [`CALL_OPTIONS_HEADER`]. Setting the same
    /// values twice is setting them once, so it is retried like a read.
    pub async fn patch(&self, path: &str, body: &Value, policy: &RetryPolicy) -> Result<Vec<u8>, ConnectorError> {
        let body = self.json(body)?;
        let headers = [(CALL_OPTIONS_HEADER, call_options())];
        let call =
            Call { method: Method::PATCH, path, query: &[], headers: &headers, body: Some(body), idempotent: true };
        self.send(&call, policy).await
    }

    /// An authenticated `DELETE` of a record (salesforce-api.md 3.1: 204), marked with
    /// [`CALL_OPTIONS_HEADER`]. Idempotent (a record deleted is deleted), so retried like a
    /// read.
    pub async fn delete(&self, path: &str, policy: &RetryPolicy) -> Result<Vec<u8>, ConnectorError> {
        let headers = [(CALL_OPTIONS_HEADER, call_options())];
        let call = Call { method: Method::DELETE, path, query: &[], headers: &headers, body: None, idempotent: true };
        self.send(&call, policy).await
    }

    /// Sends `call` with the current session; on 401 the token is refreshed once and the
    /// call sent again.
    async fn send(&self, call: &Call<'_>, policy: &RetryPolicy) -> Result<Vec<u8>, ConnectorError> {
        let session = self.session(policy).await?;
        match self.send_with(&session, call, policy).await {
            Err(e) if error::is_invalid_session(&e) => {
                let fresh = self.renew(&session, policy).await?;
                self.send_with(&fresh, call, policy).await
            }
            other => other,
        }
    }

    async fn send_with(
        &self,
        session: &Session,
        call: &Call<'_>,
        policy: &RetryPolicy,
    ) -> Result<Vec<u8>, ConnectorError> {
        let path = call.path;
        let mut url = Url::parse(&format!("{}{path}", session.instance_url))
            .map_err(|e| self.invalid(format!("bad Salesforce path {path}: {e}")))?;
        if !call.query.is_empty() {
            url.query_pairs_mut().extend_pairs(call.query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let mut request = Request::new(call.method.clone(), url, endpoint_name(path))
            .idempotent(call.idempotent)
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .header(AUTHORIZATION, session.authorization.clone());
        for (name, value) in call.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| self.invalid(format!("{name:?} is not a header name")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| self.invalid(format!("the {name} header cannot carry {value:?}")))?;
            request = request.header(name, value);
        }
        if let Some(body) = &call.body {
            request = request.body("application/json", body.clone());
        }
        Ok(self.transport.send(&request, policy, &error::Api).await?.body)
    }

    fn json(&self, body: &Value) -> Result<Vec<u8>, ConnectorError> {
        serde_json::to_vec(body).map_err(|e| self.invalid(format!("a Salesforce body could not be written: {e}")))
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
