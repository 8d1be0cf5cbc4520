//! ConnectWise callbacks (psa-apis.md 1.8): the registrations at `/system/callbacks`
//! (list, create, read, replace, patch, delete; body and 201 answer as in the samples
//! `subscriber_test_create_contacts_request.json` / `_response.json`, validation errors in
//! the 400 shape of `subscriber_test_create_create-webhook-bad-request-1.json`), the
//! delivery of every committed change to each matching callback (the body of
//! `webhook_test_contact-update.json`, signed in `x-content-signature`), and the
//! `Metadata.key_url` endpoint serving the signing key.

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use super::auth::ApiMember;
use super::error::{ApiError, ErrorItem};
use super::server::{App, CODEBASE};
use super::store::{OPPORTUNITIES, apply_patch};
use crate::common::{empty_response, format_unix, json_response, now_unix};
use crate::webhooks::{Change, Kind, Origin, Outgoing, guid};

/// The header carrying the signature (psa-apis.md 1.8).
pub(crate) const SIGNATURE_HEADER: &str = "x-content-signature";
/// The path (under the codebase) of the endpoint serving signing keys, as in the samples'
/// `key_url` (`/{codebase}//system/callbackkey/index.rails?companyName=..&id={guid}`; one
/// slash here).
pub(crate) const KEY_PATH: &str = "system/callbackkey/index.rails";
/// The payload version a callback gets when it names none (the sample's).
const PAYLOAD_VERSION: &str = "3.0.0";
/// The resource named in validation errors (sample `..bad-request-1.json`).
const RESOURCE: &str = "callbackEntry";

/// The collections whose changes are told, by callback `Type`.
pub(crate) const KINDS: &[(&str, Kind)] = &[
    ("company/companies", Kind::Company),
    ("company/contacts", Kind::Contact),
    (OPPORTUNITIES, Kind::Opportunity),
    ("sales/activities", Kind::Activity),
];

/// The collection path of a kind.
pub(crate) fn path_of(kind: Kind) -> &'static str {
    KINDS.iter().find(|(_, k)| *k == kind).map_or("", |(p, _)| p)
}

/// The kind told for a collection path; `None` for collections callbacks do not cover here.
pub(crate) fn kind_of(path: &str) -> Option<Kind> {
    KINDS.iter().find(|(p, _)| *p == path).map(|(_, k)| *k)
}

/// The levels each callback type takes. The rows for activity, agreement and company are
/// psa-apis.md 1.8's table (S6); the others are UNCONFIRMED beyond `owner` (the excerpt was
/// cut off) and take the plausible company/status/type levels of their records.
fn levels(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "activity" => &["owner", "status", "type", "company", "activity"],
        "agreement" => &["owner", "type", "company", "agreement"],
        "company" => &["owner", "status", "type", "territory", "company", "integratortag"],
        "contact" => &["owner", "type", "company", "contact"],
        "opportunity" => &["owner", "status", "type", "company", "opportunity"],
        "ticket" | "project" => &["owner", "board", "status", "type", "company"],
        "configuration" | "invoice" | "purchaseorder" | "salesorder" | "member" | "schedule" | "timeentry"
        | "expense" => &["owner"],
        _ => return None,
    })
}

/// One registration and the API member who made it.
#[derive(Clone, Debug)]
struct Entry {
    /// The entry as the API answers it.
    record: Map<String, Value>,
    /// The identifier of the API member who registered it (self-suppression).
    creator: String,
}

/// The callback registrations and signing keys of one tenant.
#[derive(Debug, Default)]
pub(crate) struct Callbacks {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: BTreeMap<i64, Entry>,
    /// Signing keys by key id (the `id` of `key_url`).
    keys: BTreeMap<String, String>,
    /// GUIDs handed out (message ids, connectWiseIDs, keys).
    guids: u64,
}

impl Inner {
    fn guid(&mut self) -> String {
        self.guids += 1;
        guid(0xC0_77EC7, self.guids)
    }
}

impl Callbacks {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn item(field: &str, code: &str, message: &str) -> ErrorItem {
    ErrorItem { code: code.into(), message: message.into(), resource: RESOURCE.into(), field: field.into() }
}

/// A callback body checked and completed: url, type and level (as the sample's "Invalid
/// URL" / "Unrecognized level for type" errors), `objectId` 1 for level `owner` (the sample
/// answers 1 for a request's 0), defaults for the flags and payload version.
fn checked(body: Value) -> Result<Map<String, Value>, ApiError> {
    let Value::Object(mut map) = body else {
        return Err(ApiError::bad_body("The callbackEntry must be sent as a JSON object."));
    };
    let mut errors = Vec::new();
    let text =
        |map: &Map<String, Value>, k: &str| map.get(k).and_then(Value::as_str).unwrap_or_default().trim().to_string();
    let url = text(&map, "url");
    let url_ok = url::Url::parse(&url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if !url_ok {
        errors.push(item("url", "InvalidField", "Invalid URL"));
    }
    let kind = text(&map, "type").to_ascii_lowercase();
    let level = text(&map, "level").to_ascii_lowercase();
    match levels(&kind) {
        None => errors.push(item("type", "InvalidField", "Unrecognized type, see documentation for supported types")),
        Some(allowed) if !allowed.contains(&level.as_str()) => errors.push(item(
            "level",
            "InvalidObject",
            "Unrecognized level for type, see documentation for supported levels for each type",
        )),
        Some(_) => {}
    }
    let object_id = map.get("objectId").and_then(Value::as_i64).unwrap_or(0);
    if level == "owner" {
        map.insert("objectId".into(), json!(1));
    } else if object_id <= 0 && levels(&kind).is_some_and(|l| l.contains(&level.as_str())) {
        // UNCONFIRMED: the answer to a level other than owner without the record it names.
        errors.push(item("objectId", "InvalidField", "objectId is required for this level"));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid_object(RESOURCE, errors));
    }
    map.insert("url".into(), json!(url));
    map.insert("type".into(), json!(kind));
    map.insert("level".into(), json!(level));
    for flag in ["inactiveFlag", "isSoapCallbackFlag", "isSelfSuppressedFlag"] {
        if !map.get(flag).is_some_and(Value::is_boolean) {
            map.insert(flag.into(), json!(false));
        }
    }
    if text(&map, "payloadVersion").is_empty() {
        map.insert("payloadVersion".into(), json!(PAYLOAD_VERSION));
    }
    Ok(map)
}

/// The id ConnectWise numbers an API member with. UNCONFIRMED which record id an API
/// member has; the simulator's API members are not in `/system/members`, so they are
/// numbered from 900 in the order of the tenant's access list.
fn member_number(app: &App, member: &ApiMember) -> i64 {
    let n = app.access.members.iter().position(|m| m.identifier == member.identifier).unwrap_or(0);
    900 + i64::try_from(n).unwrap_or(0)
}

/// `/system/callbacks[/{id}]`, for an authenticated API member with full rights.
pub(crate) fn handle(
    app: &App,
    member: &ApiMember,
    method: &Method,
    tail: &[&str],
    body: &Bytes,
    headers: &[(&'static str, String)],
) -> Result<Response, ApiError> {
    let json_body = || {
        serde_json::from_slice::<Value>(body)
            .map_err(|e| ApiError::bad_body(format!("The request body is not valid JSON: {e}")))
    };
    let now = format_unix(now_unix());
    match tail {
        [] if *method == Method::GET => {
            let all: Vec<Value> =
                app.callbacks.lock().entries.values().map(|e| Value::Object(e.record.clone())).collect();
            app.controls.count_get("system/callbacks");
            Ok(json_response(StatusCode::OK, &all, headers))
        }
        [] if *method == Method::POST => {
            let mut map = checked(json_body()?)?;
            let mut inner = app.callbacks.lock();
            let id = inner.entries.keys().next_back().map_or(1, |m| m + 1);
            let cw_id = inner.guid();
            map.insert("id".into(), json!(id));
            map.insert("memberId".into(), json!(member_number(app, member)));
            map.insert("connectWiseID".into(), json!(cw_id));
            map.insert("_info".into(), json!({"lastUpdated": now, "updatedBy": member.identifier}));
            let key = format!("{}{}", inner.guid(), inner.guid()).replace('-', "");
            inner.keys.insert(cw_id, key);
            inner.entries.insert(id, Entry { record: map.clone(), creator: member.identifier.clone() });
            Ok(json_response(StatusCode::CREATED, &Value::Object(map), headers))
        }
        [] => Err(ApiError::method_not_allowed(method.as_str())),
        [id] => {
            let id = id.parse::<i64>().map_err(|_| ApiError::no_endpoint())?;
            let mut inner = app.callbacks.lock();
            let entry = inner.entries.get(&id).cloned().ok_or_else(|| ApiError::not_found("Callback", id))?;
            let keep = |mut map: Map<String, Value>| {
                for k in ["id", "memberId", "connectWiseID"] {
                    if let Some(v) = entry.record.get(k) {
                        map.insert(k.into(), v.clone());
                    }
                }
                map.insert("_info".into(), json!({"lastUpdated": now, "updatedBy": member.identifier}));
                map
            };
            let changed = if *method == Method::GET {
                app.controls.count_get("system/callbacks/{id}");
                return Ok(json_response(StatusCode::OK, &Value::Object(entry.record), headers));
            } else if *method == Method::PUT {
                keep(checked(json_body()?)?)
            } else if *method == Method::PATCH {
                let mut doc = Value::Object(entry.record.clone());
                apply_patch(&mut doc, json_body()?)?;
                keep(checked(doc)?)
            } else if *method == Method::DELETE {
                inner.entries.remove(&id);
                return Ok(empty_response(StatusCode::NO_CONTENT, headers));
            } else {
                return Err(ApiError::method_not_allowed(method.as_str()));
            };
            inner.entries.insert(id, Entry { record: changed.clone(), creator: entry.creator });
            Ok(json_response(StatusCode::OK, &Value::Object(changed), headers))
        }
        _ => Err(ApiError::no_endpoint()),
    }
}

/// The id of a reference field (`{"id": n}`) of a record.
fn ref_id(record: &Value, field: &str) -> Option<i64> {
    record.get(field).and_then(|r| r.get("id")).and_then(Value::as_i64)
}

/// Whether a callback of `level` on `object_id` covers a record of `kind`. `owner` covers
/// every record of the type; the other levels the records whose field of that name (or,
/// for the level named like the type, the record itself) is `object_id`. UNCONFIRMED
/// beyond `owner`.
fn covers(level: &str, object_id: i64, kind: Kind, id: i64, record: Option<&Value>) -> bool {
    if level == "owner" {
        return true;
    }
    if level == kind.as_str() {
        return id == object_id;
    }
    let Some(record) = record else { return false };
    match level {
        "type" => {
            ref_id(record, "type") == Some(object_id)
                || record
                    .get("types")
                    .and_then(Value::as_array)
                    .is_some_and(|ts| ts.iter().any(|t| t.get("id").and_then(Value::as_i64) == Some(object_id)))
        }
        other => ref_id(record, other) == Some(object_id),
    }
}

/// base64(HMAC-SHA256(key = SHA-256(signing key), message = body)) (psa-apis.md 1.8, S5).
pub(crate) fn signature(signing_key: &str, body: &[u8]) -> String {
    let key = Sha256::digest(signing_key.as_bytes());
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else { return String::new() };
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Tells every matching, active callback that the record `id` of collection `path`
/// changed. `record` is the record as stored after the change (`None` on a delete: the
/// payload's `Entity` is then `null`, as in `webhook_test_contact-delete.json`).
pub(crate) fn changed(app: &App, path: &str, id: i64, change: Change, record: Option<&Value>, origin: &Origin) {
    let Some(kind) = kind_of(path) else { return };
    let member = match origin {
        Origin::Api(identifier) => identifier.clone(),
        Origin::Person => PERSON.to_string(),
    };
    let action = match change {
        Change::Created => "added",
        Change::Updated => "updated",
        Change::Deleted => "deleted",
    };
    let entity = record.and_then(|r| serde_json::to_string(r).ok());
    let from_url = app.base_url.trim_start_matches("http://").trim_start_matches("https://").to_string();
    let mut calls = Vec::new();
    {
        let mut inner = app.callbacks.lock();
        let matching: Vec<Entry> = inner
            .entries
            .values()
            .filter(|e| e.record.get("type").and_then(Value::as_str) == Some(kind.as_str()))
            .filter(|e| e.record.get("inactiveFlag") != Some(&json!(true)))
            .filter(|e| {
                let level = e.record.get("level").and_then(Value::as_str).unwrap_or_default();
                let object_id = e.record.get("objectId").and_then(Value::as_i64).unwrap_or(0);
                covers(level, object_id, kind, id, record)
            })
            // isSelfSuppressedFlag: no callback for a change the registering member made.
            .filter(|e| {
                !(e.record.get("isSelfSuppressedFlag") == Some(&json!(true))
                    && matches!(origin, Origin::Api(by) if *by == e.creator))
            })
            .cloned()
            .collect();
        for e in matching {
            let key_id = e.record.get("connectWiseID").and_then(Value::as_str).unwrap_or_default().to_string();
            let Some(key) = inner.keys.get(&key_id).cloned() else { continue };
            let key_url = format!(
                "{}/{CODEBASE}{KEY_PATH}?companyName={}&id={key_id}",
                app.base_url,
                url::form_urlencoded::byte_serialize(app.access.company_id.as_bytes()).collect::<String>()
            );
            let body = json!({
                "Action": action,
                "CallbackObjectRecId": e.record.get("id"),
                "CompanyId": app.access.company_id,
                "Entity": entity,
                "FromUrl": from_url,
                "ID": id,
                "MemberId": member,
                "MessageId": inner.guid(),
                "Metadata": {"key_url": key_url},
                // UNCONFIRMED: cloud tenant identifiers; fixed made-up values of the
                // samples' shape (24 hex digits).
                "PartnerId": "5e1f0c2a9b3d4e5f6a7b8c9d",
                "ProductInstanceId": "6a2b1c3d4e5f60718293a4b5",
                "Type": kind.as_str(),
            });
            let Ok(bytes) = serde_json::to_vec(&body) else { continue };
            // CW appends the record id to the registered URL (psa-apis.md 1.8: the
            // examples end in `?id=` or `?recordId=`).
            let url = format!("{}{id}", e.record.get("url").and_then(Value::as_str).unwrap_or_default());
            calls.push(Outgoing {
                url,
                headers: vec![(SIGNATURE_HEADER.to_string(), signature(&key, &bytes))],
                content_type: "application/json",
                body: bytes,
                kind,
                id: id.to_string(),
                change,
                until_answer_contains: None,
            });
        }
    }
    for call in calls {
        app.controls.outbox().deliver(call);
    }
}

/// The member a change made by a person in ConnectWise is attributed to. UNCONFIRMED: any
/// member identifier would do; this one is not an API member's.
pub(crate) const PERSON: &str = "jsmith";

/// `GET /{codebase}/system/callbackkey/index.rails?companyName=..&id=..`: `{"signing_key":
/// ".."}` (psa-apis.md 1.8). UNCONFIRMED: whether it asks for credentials; it takes none
/// here (a receiver holds no ConnectWise keys), and answers 404 for an unknown company or
/// key id. One key per callback registration, named by its `connectWiseID` (UNCONFIRMED:
/// the samples show one key id per callback, not whether callbacks share keys).
pub(crate) async fn signing_key(State(app): State<std::sync::Arc<App>>, RawQuery(query): RawQuery) -> Response {
    app.controls.arrive().await;
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes()).into_owned().collect();
    let get = |name: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let company_ok = get("companyName").is_some_and(|c| c.eq_ignore_ascii_case(&app.access.company_id));
    let key = get("id").and_then(|id| app.callbacks.lock().keys.get(&id).cloned());
    match (company_ok, key) {
        (true, Some(key)) => json_response(StatusCode::OK, &json!({"signing_key": key}), &[]),
        _ => json_response(StatusCode::NOT_FOUND, &json!({"code": "NotFound", "message": "Key not found"}), &[]),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;
    use crate::connectwise::{GenConfig, SimConfig, SimHandle, Simulator, Tenant};
    use crate::system::RunningSystem;
    use crate::webhooks::{Received, Receiver};

    const WAIT: Duration = Duration::from_secs(5);
    /// The body of the vendor sample `subscriber_test_create_contacts_request.json`.
    const REQUEST: &str = r#"{"id": 0, "inactiveFlag": false, "url": "https://test.com/webhook?recordId=",
        "objectId": 0, "type": "contact", "level": "owner", "payloadVersion": "3.0.0", "memberId": 0,
        "isSelfSuppressedFlag": false, "connectWiseID": ""}"#;

    async fn start() -> (SimHandle, i64) {
        let tenant = Tenant::generate(&GenConfig::with_companies(5, 4));
        let contact = tenant.records("company/contacts")[0]["id"].as_i64().unwrap();
        (Simulator::start(tenant, SimConfig::default(), 0).await.unwrap(), contact)
    }

    fn api(sim: &SimHandle, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let c = sim.credentials();
        reqwest::Client::new()
            .request(method, format!("{}/{path}", sim.api_url()))
            .basic_auth(format!("{}+{}", c.company_id, c.public_key), Some(c.private_key))
            .header("clientId", c.client_id)
    }

    /// Registers a callback for `kind` at `url`; answers its id.
    async fn register(sim: &SimHandle, kind: &str, url: &str, self_suppressed: bool) -> i64 {
        let mut body: Value = serde_json::from_str(REQUEST).unwrap();
        body["type"] = json!(kind);
        body["url"] = json!(url);
        body["isSelfSuppressedFlag"] = json!(self_suppressed);
        let resp = api(sim, reqwest::Method::POST, "system/callbacks").json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 201);
        resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }

    fn body(call: &Received) -> Value {
        serde_json::from_slice(&call.body).unwrap()
    }

    /// Fetches the call's signing key from its `key_url` and checks its signature.
    async fn assert_signed(call: &Received) {
        let key_url = body(call)["Metadata"]["key_url"].as_str().unwrap().to_string();
        let key: Value = reqwest::get(&key_url).await.unwrap().json().await.unwrap();
        let key = key["signing_key"].as_str().unwrap();
        assert_eq!(call.headers.get(SIGNATURE_HEADER), Some(&signature(key, &call.body)));
    }

    #[tokio::test]
    async fn a_callback_is_registered_read_changed_and_deleted_as_the_samples_show() {
        let (sim, _) = start().await;
        let id = register(&sim, "contact", "https://test.com/webhook?recordId=", false).await;
        let got: Value = api(&sim, reqwest::Method::GET, &format!("system/callbacks/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for (field, value) in [
            ("url", json!("https://test.com/webhook?recordId=")),
            ("objectId", json!(1)),
            ("type", json!("contact")),
            ("level", json!("owner")),
            ("payloadVersion", json!("3.0.0")),
            ("inactiveFlag", json!(false)),
            ("isSoapCallbackFlag", json!(false)),
        ] {
            assert_eq!(got[field], value, "{field}");
        }
        assert_eq!(got["connectWiseID"].as_str().map(str::len), Some(36));
        assert!(got["memberId"].as_i64().is_some() && got["_info"]["lastUpdated"].is_string());
        let patch = json!([{"op": "replace", "path": "/inactiveFlag", "value": true}]);
        let patched: Value = api(&sim, reqwest::Method::PATCH, &format!("system/callbacks/{id}"))
            .json(&patch)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!((patched["inactiveFlag"].clone(), patched["id"].clone()), (json!(true), json!(id)));
        let list: Value =
            api(&sim, reqwest::Method::GET, "system/callbacks").send().await.unwrap().json().await.unwrap();
        assert_eq!(list.as_array().map(Vec::len), Some(1));
        let gone = api(&sim, reqwest::Method::DELETE, &format!("system/callbacks/{id}")).send().await.unwrap();
        assert_eq!(gone.status(), 204);
        let again = api(&sim, reqwest::Method::GET, &format!("system/callbacks/{id}")).send().await.unwrap();
        assert_eq!(again.status(), 404);
    }

    #[tokio::test]
    async fn a_bad_url_and_level_are_refused_in_the_shape_of_the_bad_request_sample() {
        let (sim, _) = start().await;
        let body = json!({"url": "not a url", "type": "contact", "level": "board", "objectId": 0});
        let resp = api(&sim, reqwest::Method::POST, "system/callbacks").json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 400);
        let got: Value = resp.json().await.unwrap();
        let sample: Value = serde_json::from_str(include_str!(
            "../../../connectors/tests/fixtures/subscriber_test_create_create-webhook-bad-request-1.json"
        ))
        .unwrap();
        assert_eq!(got, sample);
    }

    #[tokio::test]
    async fn a_contact_changed_by_a_person_is_delivered_signed_to_every_owner_level_callback() {
        let (sim, contact) = start().await;
        let receiver = Receiver::start().await.unwrap();
        register(&sim, "contact", &receiver.url("/one?recordId="), false).await;
        register(&sim, "contact", &receiver.url("/two?id="), false).await;
        register(&sim, "company", &receiver.url("/companies?id="), false).await;
        sim.edit_as_person(Kind::Contact, &contact.to_string(), json!({"firstName": "Xzavier"})).unwrap();
        let calls = receiver.wait_for(2, WAIT).await;
        assert!(sim.webhooks_settled(WAIT).await);
        assert_eq!(receiver.calls().len(), 2, "the company callback is not told about a contact");
        let mut paths: Vec<String> = calls
            .iter()
            .map(|c| format!("{}?{}", c.path, c.query.iter().map(|(k, v)| format!("{k}={v}")).collect::<String>()))
            .collect();
        paths.sort();
        assert_eq!(paths, [format!("/one?recordId={contact}"), format!("/two?id={contact}")]);
        for call in &calls {
            let b = body(call);
            assert_eq!(
                (b["Action"].as_str(), b["Type"].as_str(), b["ID"].as_i64()),
                (Some("updated"), Some("contact"), Some(contact))
            );
            assert_eq!(b["MemberId"], json!(PERSON));
            assert_eq!(b["CompanyId"], json!(sim.credentials().company_id));
            let entity: Value = serde_json::from_str(b["Entity"].as_str().unwrap()).unwrap();
            assert_eq!((entity["id"].as_i64(), entity["firstName"].as_str()), (Some(contact), Some("Xzavier")));
            assert!(b["MessageId"].as_str().is_some_and(|m| m.len() == 36));
            assert!(b["CallbackObjectRecId"].is_i64());
            assert_signed(call).await;
        }
        let sent = sim.webhooks_sent();
        assert_eq!(sent.len(), 2);
        assert!(sent.iter().all(|s| s.status == Some(200) && s.id == contact.to_string() && s.kind == Kind::Contact));
    }

    #[tokio::test]
    async fn api_changes_are_delivered_and_self_suppressed_callbacks_skip_the_api_member_s_own() {
        let (sim, contact) = start().await;
        let receiver = Receiver::start().await.unwrap();
        register(&sim, "contact", &receiver.url("/suppressed?id="), true).await;
        register(&sim, "contact", &receiver.url("/all?id="), false).await;
        let created: Value = api(&sim, reqwest::Method::POST, "company/contacts")
            .json(&json!({"firstName": "Ada", "lastName": "Quill"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let new_id = created["id"].as_i64().unwrap();
        let deleted = api(&sim, reqwest::Method::DELETE, &format!("company/contacts/{contact}")).send().await.unwrap();
        assert_eq!(deleted.status(), 204);
        sim.create_as_person(Kind::Contact, json!({"firstName": "Grace"})).unwrap();
        assert!(sim.webhooks_settled(WAIT).await);
        let calls = receiver.calls();
        let seen: Vec<(String, String, Value)> = calls
            .iter()
            .map(|c| (c.path.clone(), body(c)["Action"].as_str().unwrap().to_string(), body(c)["Entity"].clone()))
            .collect();
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert_eq!(seen.iter().filter(|(p, ..)| p == "/suppressed").count(), 1, "only the person's change: {seen:?}");
        let all: Vec<&(String, String, Value)> = seen.iter().filter(|(p, ..)| p == "/all").collect();
        assert_eq!(all[0].1, "added");
        assert_eq!(all[1].1, "deleted");
        assert_eq!(all[1].2, Value::Null, "a delete carries no entity");
        assert_eq!(body(&calls[0])["ID"].as_i64(), Some(new_id));
        for call in &calls {
            assert_signed(call).await;
        }
    }

    #[tokio::test]
    async fn deliveries_are_duplicated_reordered_and_dropped_when_told() {
        let (sim, contact) = start().await;
        let receiver = Receiver::start().await.unwrap();
        register(&sim, "contact", &receiver.url("/hook?id="), false).await;
        let edit = |n: usize| {
            sim.edit_as_person(Kind::Contact, &contact.to_string(), json!({"lastName": format!("V{n}")})).unwrap()
        };
        let last_names = |calls: &[Received]| -> Vec<String> {
            calls
                .iter()
                .map(|c| {
                    let entity: Value = serde_json::from_str(body(c)["Entity"].as_str().unwrap()).unwrap();
                    entity["lastName"].as_str().unwrap().to_string()
                })
                .collect()
        };
        sim.duplicate_webhooks(2);
        for n in 1..=4 {
            edit(n);
        }
        assert!(sim.webhooks_settled(WAIT).await);
        assert_eq!(last_names(&receiver.calls()), ["V1", "V2", "V2", "V3", "V4", "V4"]);
        sim.duplicate_webhooks(0);
        sim.reorder_webhooks(2);
        for n in 5..=8 {
            edit(n);
        }
        assert!(sim.webhooks_settled(WAIT).await);
        assert_eq!(receiver.calls().len(), 9, "the 8th waits for a later delivery");
        sim.reorder_webhooks(0);
        assert!(sim.webhooks_settled(WAIT).await);
        assert_eq!(last_names(&receiver.calls()[6..]), ["V5", "V7", "V6", "V8"], "the 6th is sent after the 7th");
        sim.drop_webhooks(3);
        for n in 9..=14 {
            edit(n);
        }
        assert!(sim.webhooks_settled(WAIT).await);
        let dropped = last_names(&receiver.calls()[10..]);
        assert_eq!(dropped.len(), 4, "{dropped:?}");
        let sent = sim.webhooks_sent();
        assert_eq!(sent.iter().filter(|s| s.dropped).count(), 2);
        assert_eq!(sent.iter().filter(|s| s.duplicate).count(), 2);
        assert_eq!(sent.iter().filter(|s| s.held_back).count(), 2);
    }
}
