//! Salesforce requests: the token from `{login_url}/services/oauth2/token`, then every REST
//! call to the session's `instance_url` with the bearer header, retry (honouring
//! `Retry-After`), and one token refresh + retry when a call answers 401
//! `INVALID_SESSION_ID` (salesforce-api.md 1.4).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use tandem_domain::System;
use tandem_domain::ports::{ConnectorError, ErrorKind};
use tandem_domain::secret::SalesforceCredentials;
use tokio::sync::Mutex;
use url::Url;

use super::auth::{AppCredentials, Session, TOKEN_PATH};
use super::error;
use super::models::TokenResponse;
use crate::hosts::HostPolicy;
use crate::http::{self, RetryPolicy};

/// The REST API version the connector speaks.
pub const API_VERSION: &str = "v62.0";
/// The request header carrying query options (salesforce-api.md 2.3).
pub const QUERY_OPTIONS_HEADER: &str = "Sforce-Query-Options";

/// A Salesforce HTTP client for one connection. `Debug` never shows a secret or token.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    /// The hosts requests may go to (the login host, and the instance a token names).
    hosts: HostPolicy,
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
        hosts: HostPolicy,
        creds: &SalesforceCredentials,
    ) -> Result<Self, ConnectorError> {
        let login_origin = origin(&creds.login_url).map_err(|reason| {
            ConnectorError::new(
                System::Salesforce,
                ErrorKind::UnknownAccount,
                format!("'{}' is not a Salesforce login URL: {reason}", creds.login_url.trim()),
            )
        })?;
        Ok(Self {
            http,
            hosts,
            login_origin,
            app: AppCredentials::new(creds),
            session: Mutex::new(None),
            generation: AtomicU64::new(0),
        })
    }

    /// The login origin.
    pub fn login_origin(&self) -> &str {
        &self.login_origin
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

    /// The token request, with retry for transient failures.
    async fn token(&self, policy: &RetryPolicy) -> Result<Session, ConnectorError> {
        let url = format!("{}{TOKEN_PATH}", self.login_origin);
        let form: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(self.app.form()).finish();
        http::send_with_retry(policy, || async {
            let what = "requesting a Salesforce token";
            let request = self
                .http
                .post(&url)
                .header(ACCEPT, HeaderValue::from_static("application/json"))
                .header(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"))
                .body(form.clone());
            let response =
                http::send(System::Salesforce, self.hosts, request, what).await.map_err(|e| self.scrub(e))?;
            let status = response.status().as_u16();
            let retry_after = http::retry_after(response.headers());
            let content_type = http::content_type(response.headers());
            let body =
                response.bytes().await.map_err(|e| self.scrub(http::transport_error(System::Salesforce, &e, what)))?;
            if !(200..300).contains(&status) {
                let client_id = &self.app.client_id;
                return Err(self.scrub(error::from_oauth(
                    status,
                    retry_after,
                    content_type.as_deref(),
                    &body,
                    client_id,
                )));
            }
            let token: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
                self.scrub(ConnectorError::new(
                    System::Salesforce,
                    ErrorKind::Invalid,
                    format!("Salesforce answered a token we cannot read: {}", http::sanitise(&e.to_string())),
                ))
            })?;
            Session::from_token(&token, self.generation.fetch_add(1, Ordering::SeqCst) + 1)
        })
        .await
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
        let endpoint = endpoint_name(path);
        http::send_with_retry(policy, || self.attempt(session, &url, &endpoint, headers)).await
    }

    async fn attempt(
        &self,
        session: &Session,
        url: &Url,
        endpoint: &str,
        headers: &[(&'static str, String)],
    ) -> Result<Vec<u8>, ConnectorError> {
        let mut request = self
            .http
            .get(url.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .header(AUTHORIZATION, session.authorization.clone());
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let what = format!("requesting {endpoint}");
        let response = http::send(System::Salesforce, self.hosts, request, &what).await.map_err(|e| self.scrub(e))?;
        let status = response.status().as_u16();
        let retry_after = http::retry_after(response.headers());
        let content_type = http::content_type(response.headers());
        if let Some(usage) = response.headers().get("sforce-limit-info").and_then(|v| v.to_str().ok()) {
            tracing::trace!(usage, "Salesforce API usage");
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| self.scrub(http::transport_error(System::Salesforce, &e, &format!("reading {endpoint}"))))?;
        if !(200..300).contains(&status) {
            return Err(self.scrub(error::from_response(
                status,
                retry_after,
                content_type.as_deref(),
                &body,
                endpoint,
            )));
        }
        Ok(body.to_vec())
    }

    fn invalid(&self, message: String) -> ConnectorError {
        self.scrub(ConnectorError::new(System::Salesforce, ErrorKind::Invalid, message))
    }

    /// Replaces any secret a server might echo back.
    fn scrub(&self, mut err: ConnectorError) -> ConnectorError {
        for secret in self.app.secrets() {
            if err.message.contains(&secret) {
                err.message = err.message.replace(&secret, "***");
            }
        }
        err
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
    fn endpoints_are_named_without_version_or_locator() {
        assert_eq!(endpoint_name("/services/data/v62.0/query"), "query");
        assert_eq!(endpoint_name("/services/data/v62.0/query/01gX-200"), "query (next page)");
        assert_eq!(endpoint_name("/services/data/v62.0/sobjects/Account/describe"), "sobjects/Account/describe");
    }
}
