//! Syncro authentication (psa-apis.md 3.2): `Authorization: Bearer {token}` on every call
//! (the `?api_key=` alternative is never used: it would put the token in URLs and logs).
//! The header value is marked sensitive and never printed.

use std::fmt;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use tandem_domain::System;
use tandem_domain::ports::{ConnectorError, ErrorKind};
use tandem_domain::secret::SyncroCredentials;

/// The header that authenticates a request. `Debug` shows nothing of it.
#[derive(Clone)]
pub struct Auth {
    authorization: HeaderValue,
}

impl Auth {
    /// Builds the header. Fails (UnknownAccount, never echoing the token) when the token is
    /// empty or cannot go into an HTTP header.
    pub fn new(creds: &SyncroCredentials) -> Result<Self, ConnectorError> {
        let token = creds.api_key.expose().trim();
        if token.is_empty() {
            return Err(bad_credentials("the API token is empty"));
        }
        let mut authorization = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| bad_credentials("the API token holds characters HTTP headers cannot carry"))?;
        authorization.set_sensitive(true);
        Ok(Self { authorization })
    }

    /// Adds `Authorization` to a request.
    pub fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.header(AUTHORIZATION, self.authorization.clone())
    }

    /// Puts `Authorization` into a request's headers.
    pub fn insert(&self, headers: &mut HeaderMap) {
        headers.insert(AUTHORIZATION, self.authorization.clone());
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth").field("authorization", &"Bearer ***").finish()
    }
}

fn bad_credentials(message: &str) -> ConnectorError {
    ConnectorError::new(System::Syncro, ErrorKind::UnknownAccount, format!("Syncro credentials: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_domain::secret::SecretString;

    fn creds(key: &str) -> SyncroCredentials {
        SyncroCredentials { site: "acme".into(), api_key: SecretString::new(key) }
    }

    #[test]
    fn the_token_goes_in_a_sensitive_bearer_header() {
        let auth = Auth::new(&creds("T0ken-value")).unwrap();
        let req = auth.apply(reqwest::Client::new().get("http://localhost/x")).build().unwrap();
        assert_eq!(req.headers()[AUTHORIZATION], "Bearer T0ken-value");
        assert!(req.headers()[AUTHORIZATION].is_sensitive());
        assert!(!format!("{auth:?}").contains("T0ken-value"));
    }

    #[test]
    fn an_empty_or_unsendable_token_is_refused_without_echoing_it() {
        assert!(Auth::new(&creds("  ")).is_err());
        let err = Auth::new(&creds("bad\ntoken")).unwrap_err();
        assert!(!err.message.contains("bad\ntoken"), "{}", err.message);
    }
}
