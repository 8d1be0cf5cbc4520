//! HaloPSA outbound webhooks (psa-apis.md 2.6): the registrations at `/api/Webhook` (list,
//! POST array of the H1 `Webhook` schema, read, delete) and the delivery of every committed
//! change of a client, user, opportunity, action or CRM note to each active webhook whose
//! events cover it, with the configured authentication (`authentication_type` 1 basic
//! from `basic_username`/`basic_password`, 2 bearer).
//!
//! The payload is UNCONFIRMED (2.6: "Default payload: the triggering object ... shape
//! UNCONFIRMED"). It is sent as the Tandem Halo reader's `Shape` documents it, so the two
//! agree: the body is the triggering object as the API answers it, a deleted record carries
//! `"deleted": true`, and the kind is not in the body (the reader takes it from the URL the
//! webhook was registered with).

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::server::App;
use super::store::{ACTIONS, CLIENT, CRM_NOTE, OPPORTUNITIES, USERS};
use crate::common::{empty_response, json_response};
use crate::webhooks::{Change, Kind, Outgoing, guid};

/// The resources whose changes are told: (resource, kind, the word its events name).
const RESOURCES: &[(&str, Kind, &str)] = &[
    (CLIENT, Kind::Company, "client"),
    (USERS, Kind::Contact, "user"),
    (OPPORTUNITIES, Kind::Opportunity, "opportunit"),
    (ACTIONS, Kind::Activity, "action"),
    (CRM_NOTE, Kind::Activity, "note"),
];

/// The configured webhooks by id, and how many ids were handed out.
type Configured = (BTreeMap<String, Map<String, Value>>, u64);

/// The webhooks configured in one tenant.
#[derive(Debug, Default)]
pub(crate) struct Webhooks {
    inner: Mutex<Configured>,
}

impl Webhooks {
    fn lock(&self) -> std::sync::MutexGuard<'_, Configured> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A posted webhook checked and completed. UNCONFIRMED which fields Halo requires: a
/// valid http(s) `url` is; `active` defaults to true, `authentication_type` to 0 (none),
/// `method` to 0 (POST), `type` to 0 (outbound), `payload_type` to 0 (default).
fn checked(mut map: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let url = map.get("url").and_then(Value::as_str).unwrap_or_default().trim().to_string();
    if !url::Url::parse(&url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some()) {
        return Err(ApiError::bad_request("The webhook url is not a valid http(s) URL."));
    }
    let auth = map.get("authentication_type").and_then(Value::as_i64).unwrap_or(0);
    if !matches!(auth, 0..=2) {
        // UNCONFIRMED: API keys (3) and certificates (4) are not simulated.
        return Err(ApiError::bad_request("authentication_type must be 0 (none), 1 (basic) or 2 (bearer) here."));
    }
    for (field, default) in [("active", json!(true)), ("authentication_type", json!(0)), ("method", json!(0))] {
        map.entry(field).or_insert(default);
    }
    map.entry("type").or_insert(json!(0));
    map.entry("payload_type").or_insert(json!(0));
    map.entry("events").or_insert(json!([]));
    Ok(map)
}

/// `/api/Webhook[/{id}]`, for an authenticated caller.
pub(crate) fn handle(app: &App, method: &Method, tail: &[&str], body: &Bytes) -> Result<Response, ApiError> {
    let mut hooks = app.webhooks.lock();
    match tail {
        [] if *method == Method::GET => {
            let all: Vec<Value> = hooks.0.values().cloned().map(Value::Object).collect();
            app.controls.count_get("webhook");
            Ok(json_response(StatusCode::OK, &all, &[]))
        }
        [] if *method == Method::POST => {
            let elements = match serde_json::from_slice::<Value>(body) {
                Ok(Value::Array(a)) if !a.is_empty() => a,
                Ok(_) => return Err(ApiError::bad_request("The request body must be a non-empty JSON array.")),
                Err(e) => return Err(ApiError::bad_request(format!("The request body is not valid JSON: {e}"))),
            };
            let mut saved = Vec::new();
            for el in elements {
                let Value::Object(fields) = el else {
                    return Err(ApiError::bad_request("Every element of the posted array must be a JSON object."));
                };
                let id = fields.get("id").and_then(Value::as_str).filter(|id| !id.trim().is_empty());
                let map = match id {
                    Some(id) => {
                        let mut existing = hooks
                            .0
                            .get(id)
                            .cloned()
                            .ok_or_else(|| ApiError::bad_request(format!("Webhook {id} does not exist.")))?;
                        existing.extend(fields);
                        checked(existing)?
                    }
                    None => {
                        hooks.1 += 1;
                        let mut map = checked(fields)?;
                        map.insert("id".into(), json!(guid(0x4A10, hooks.1)));
                        map
                    }
                };
                let id = map.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
                hooks.0.insert(id, map.clone());
                saved.push(Value::Object(map));
            }
            let answer = if saved.len() == 1 { saved.remove(0) } else { Value::Array(saved) };
            Ok(json_response(StatusCode::CREATED, &answer, &[]))
        }
        [id] if *method == Method::GET => {
            let hook = hooks
                .0
                .get(*id)
                .cloned()
                .ok_or_else(|| ApiError::bad_request(format!("Webhook {id} does not exist.")))?;
            Ok(json_response(StatusCode::OK, &Value::Object(hook), &[]))
        }
        [id] if *method == Method::DELETE => {
            hooks.0.remove(*id).ok_or_else(|| ApiError::bad_request(format!("Webhook {id} does not exist.")))?;
            Ok(empty_response(StatusCode::OK, &[]))
        }
        [] | [_] => Err(ApiError::method_not_allowed(method.as_str())),
        _ => Err(ApiError::no_endpoint()),
    }
}

/// Whether a webhook's `events` cover a change of a resource whose events name `word`.
/// UNCONFIRMED (2.6: "exact event ids UNCONFIRMED"): an event (an H1 `UnameNotification`
/// object, or plain text) covers the change when its `name` mentions the word in any case
/// ("Client Updated", "New User", ...); a webhook with no events hears every change.
fn covers(events: Option<&Value>, word: &str) -> bool {
    let Some(events) = events.and_then(Value::as_array).filter(|e| !e.is_empty()) else { return true };
    events.iter().any(|e| {
        let name = e.as_str().or_else(|| e.get("name").and_then(Value::as_str)).unwrap_or_default();
        name.to_ascii_lowercase().contains(word)
    })
}

/// The `Authorization` header of a webhook's configured authentication, if any. The bearer
/// token is taken from `authentication_header` (UNCONFIRMED which field holds it; a value
/// already starting with `Bearer ` is sent as it is).
fn authorization(hook: &Map<String, Value>) -> Option<String> {
    let text = |k: &str| hook.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    match hook.get("authentication_type").and_then(Value::as_i64) {
        Some(1) => {
            Some(format!("Basic {}", STANDARD.encode(format!("{}:{}", text("basic_username"), text("basic_password")))))
        }
        Some(2) => {
            let token = text("authentication_header");
            Some(if token.to_ascii_lowercase().starts_with("bearer ") { token } else { format!("Bearer {token}") })
        }
        _ => None,
    }
}

/// Tells every active webhook covering `resource` that `record` changed (`record` as
/// stored after the change; on a delete, as it was, sent with `"deleted": true`).
pub(crate) fn changed(app: &App, resource: &str, record: &Value, change: Change) {
    let Some((_, kind, word)) = RESOURCES.iter().find(|(r, ..)| *r == resource) else { return };
    let mut payload = record.clone();
    if change == Change::Deleted {
        payload["deleted"] = json!(true);
    }
    let Ok(body) = serde_json::to_vec(&payload) else { return };
    let id = record.get("id").map(|v| v.as_i64().map_or_else(|| v.to_string(), |n| n.to_string())).unwrap_or_default();
    let calls: Vec<Outgoing> = app
        .webhooks
        .lock()
        .0
        .values()
        .filter(|h| h.get("active") != Some(&json!(false)) && covers(h.get("events"), word))
        .map(|h| Outgoing {
            url: h.get("url").and_then(Value::as_str).unwrap_or_default().to_string(),
            headers: authorization(h).map(|a| ("authorization".to_string(), a)).into_iter().collect(),
            content_type: "application/json",
            body: body.clone(),
            kind: *kind,
            id: id.clone(),
            change,
            until_answer_contains: None,
        })
        .collect();
    for call in calls {
        app.controls.outbox().deliver(call);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;
    use crate::halo::{GenConfig, SimConfig, SimHandle, Simulator, Tenant};
    use crate::system::RunningSystem;
    use crate::webhooks::{Received, Receiver};

    const WAIT: Duration = Duration::from_secs(5);

    async fn start() -> (SimHandle, i64) {
        let tenant = Tenant::generate(&GenConfig::with_companies(5, 4));
        let client = tenant.records("client")[0]["id"].as_i64().unwrap();
        (Simulator::start(tenant, SimConfig::default(), 0).await.unwrap(), client)
    }

    async fn api(sim: &SimHandle, method: reqwest::Method, path: &str, body: Option<Value>) -> reqwest::Response {
        let c = sim.credentials();
        let form = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("grant_type", "client_credentials"),
                ("client_id", c.client_id.as_str()),
                ("client_secret", c.client_secret.as_str()),
                ("scope", "all"),
            ])
            .finish();
        let token_url = format!("{}/auth/token?tenant={}", c.site, c.tenant.clone().unwrap_or_default());
        let http = reqwest::Client::new();
        let token: Value = http
            .post(token_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut req = http
            .request(method, format!("{}/{path}", sim.api_url()))
            .bearer_auth(token["access_token"].as_str().unwrap());
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.unwrap()
    }

    fn body(call: &Received) -> Value {
        serde_json::from_slice(&call.body).unwrap()
    }

    #[tokio::test]
    async fn a_client_changed_by_a_person_is_delivered_with_each_webhook_s_authentication() {
        let (sim, client) = start().await;
        let receiver = Receiver::start().await.unwrap();
        let hooks = json!([
            {"name": "basic", "url": receiver.url("/basic?kind=client"), "authentication_type": 1,
             "basic_username": "halo", "basic_password": "pa55", "events": [{"name": "Client Updated"}], "active": true},
            {"name": "bearer", "url": receiver.url("/bearer?kind=client"), "authentication_type": 2,
             "authentication_header": "t0ken", "events": [{"name": "Client Updated"}], "active": true},
            {"name": "users", "url": receiver.url("/users?kind=user"), "events": [{"name": "User Updated"}]},
        ]);
        let saved = api(&sim, reqwest::Method::POST, "Webhook", Some(hooks)).await;
        assert_eq!(saved.status(), 201);
        let saved: Value = saved.json().await.unwrap();
        assert_eq!(saved.as_array().map(Vec::len), Some(3));
        assert!(saved[0]["id"].as_str().is_some_and(|id| id.len() == 36));
        sim.edit_as_person(Kind::Company, &client.to_string(), json!({"name": "Renamed Ltd"})).unwrap();
        assert!(sim.webhooks_settled(WAIT).await);
        let mut calls = receiver.calls();
        calls.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(calls.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(), ["/basic", "/bearer"]);
        let basic = format!("Basic {}", STANDARD.encode("halo:pa55"));
        assert_eq!(calls[0].headers.get("authorization"), Some(&basic));
        assert_eq!(calls[1].headers.get("authorization").map(String::as_str), Some("Bearer t0ken"));
        for call in &calls {
            let b = body(call);
            assert_eq!((b["id"].as_i64(), b["name"].as_str()), (Some(client), Some("Renamed Ltd")));
            assert!(b["alastupdate"].is_string());
        }
        let list: Value = api(&sim, reqwest::Method::GET, "Webhook", None).await.json().await.unwrap();
        assert_eq!(list.as_array().map(Vec::len), Some(3));
    }

    #[tokio::test]
    async fn api_creates_and_deletes_are_delivered_and_a_deleted_webhook_hears_nothing() {
        let (sim, _) = start().await;
        let receiver = Receiver::start().await.unwrap();
        let hook =
            json!([{"url": receiver.url("/hook?kind=client"), "authentication_type": 2, "authentication_header": "x"}]);
        let saved: Value = api(&sim, reqwest::Method::POST, "Webhook", Some(hook)).await.json().await.unwrap();
        let created: Value =
            api(&sim, reqwest::Method::POST, "Client", Some(json!([{"name": "New Co"}]))).await.json().await.unwrap();
        let id = created["id"].as_i64().unwrap();
        assert_eq!(api(&sim, reqwest::Method::DELETE, &format!("Client/{id}"), None).await.status(), 200);
        assert!(sim.webhooks_settled(WAIT).await);
        let calls = receiver.calls();
        assert_eq!(calls.len(), 2);
        assert_eq!((body(&calls[0])["id"].as_i64(), body(&calls[0]).get("deleted")), (Some(id), None));
        assert_eq!((body(&calls[1])["id"].as_i64(), body(&calls[1])["deleted"].as_bool()), (Some(id), Some(true)));
        let hook_id = saved["id"].as_str().unwrap();
        assert_eq!(api(&sim, reqwest::Method::DELETE, &format!("Webhook/{hook_id}"), None).await.status(), 200);
        sim.create_as_person(Kind::Company, json!({"name": "Quiet Co"})).unwrap();
        assert!(sim.webhooks_settled(WAIT).await);
        assert_eq!(receiver.calls().len(), 2);
    }

    #[tokio::test]
    async fn a_webhook_without_a_valid_url_is_refused() {
        let (sim, _) = start().await;
        let resp = api(&sim, reqwest::Method::POST, "Webhook", Some(json!([{"url": "nope"}]))).await;
        assert_eq!(resp.status(), 400);
    }
}
