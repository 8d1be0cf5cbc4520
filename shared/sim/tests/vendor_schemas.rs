//! Every record the ConnectWise, Halo and Syncro simulators serve validates against the
//! vendor's published response schema, so a client generated from the vendor's OpenAPI
//! definition parses it.
//!
//! The schemas are trimmed copies stored beside this file (`schemas/*.json`, each with a
//! `source` note: repository, commit, path and what was trimmed). Each is loaded whole and
//! validated with its `definitions` in place, so every `$ref` resolves locally.
//!
//! What the validation checks: JSON types, the properties the schema marks `required`, and
//! `enum`s where the schema has them (the ConnectWise copy carries none, see its note) —
//! what a generated client's parser rejects. OpenAPI 3.0 is not JSON Schema: `nullable:
//! true` is turned into a `null` alternative of the type (or of the `$ref`), and only
//! there is `null` accepted. Formats (`date-time`, `int32`) are not checked, and unknown
//! properties are allowed (most generators ignore them; the Go client of the ConnectWise
//! copy would not, which this test does not model), so the Halo copy's blanket
//! `additionalProperties: false` is not enforced. Other deviations, each said where it is
//! made: Syncro customers and leads accept `null` (their real payloads do). No simulator
//! defect is exempted by name.
//!
//! Salesforce is out of scope: it publishes no OpenAPI definition of its sObjects; their
//! schema is the describe the simulator itself serves.
//!
//! Covered, list (every page) and one single-record GET each:
//! - ConnectWise: `system/members`, `company/companies`, `company/contacts`,
//!   `sales/opportunities`, `sales/activities`, `procurement/catalog` and the setup lists
//!   `system/securityroles`, `system/members/types`, `company/companies/types`,
//!   `company/companies/statuses`, `company/contacts/types`, `sales/opportunities/statuses`,
//!   `sales/opportunities/types`, `sales/stages`, `sales/probabilities`,
//!   `sales/activities/types`, `sales/activities/statuses`, `procurement/types`,
//!   `procurement/categories`, `procurement/subcategories`.
//! - Halo: `Agent`, `Client`, `Users`, `Opportunities`, `Actions`, `CRMNote`, `Roles`,
//!   `Lookup`, `Status`, `Outcome`, `TicketType`.
//! - Syncro: `contacts` (the one GET with a published response schema), `customers` and
//!   `leads` (typed by their published request bodies). `users` and `me` publish no schema.

// Helpers outside the #[test] functions unwrap too: a failed call is a failed test.
#![allow(clippy::unwrap_used)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// Loads `tests/schemas/<file>` (its `definitions`, with OpenAPI's `nullable` turned into
/// JSON Schema), plus the `source` note's extra keys.
fn load(file: &str) -> Value {
    let path = format!("{}/tests/schemas/{file}", env!("CARGO_MANIFEST_DIR"));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut defs = doc["definitions"].clone();
    nullable_to_json_schema(&mut defs);
    json!({ "source": doc["source"], "definitions": defs })
}

/// OpenAPI 3.0 `nullable: true` beside `type` means the type or `null`; beside a `$ref` (which
/// in 3.0 ignores its siblings, but generators read it as optional-null) it means either.
fn nullable_to_json_schema(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for child in m.values_mut() {
                nullable_to_json_schema(child);
            }
            // The Halo copy (Swashbuckle output) closes every object with `additionalProperties:
            // false`; generated clients ignore unknown properties rather than reject them, so
            // this test does not enforce it (see the module doc). A deliberate deviation.
            if m.get("additionalProperties") == Some(&Value::Bool(false)) {
                m.remove("additionalProperties");
            }
            if m.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::String(t)) = m.get("type").cloned() {
                    m.insert("type".into(), json!([t, "null"]));
                    if let Some(Value::Array(e)) = m.get_mut("enum") {
                        e.push(Value::Null);
                    }
                } else if let Some(r) = m.remove("$ref") {
                    m.insert("anyOf".into(), json!([{ "$ref": r }, { "type": "null" }]));
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(nullable_to_json_schema),
        _ => {}
    }
}

/// A validator for definition `name` of the loaded document `doc`.
fn validator(doc: &Value, name: &str) -> jsonschema::Validator {
    let schema = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": doc["definitions"],
        "$ref": format!("#/definitions/{name}"),
    });
    jsonschema::draft7::new(&schema).unwrap()
}

/// Every violation of every record, as `what #i (id): path: message` lines.
fn violations(v: &jsonschema::Validator, what: &str, records: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, rec) in records.iter().enumerate() {
        for e in v.iter_errors(rec) {
            out.push(format!("{what} #{i} (id {}): {}: {e}", rec["id"], e.instance_path));
        }
    }
    out
}

fn assert_clean(all: Vec<String>) {
    let shown: Vec<&String> = all.iter().take(40).collect();
    assert!(all.is_empty(), "{} violation(s), first ones:\n{shown:#?}", all.len());
}

async fn get_json(rb: reqwest::RequestBuilder) -> Value {
    let resp = rb.send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.url().clone());
    resp.json().await.unwrap()
}

#[tokio::test]
async fn every_connectwise_record_the_simulator_serves_matches_the_official_schema() {
    use tandem_sim::connectwise::{GenConfig, SimConfig, Simulator, Tenant};
    let doc = load("connectwise-manage-schemas.json");
    let sim =
        Simulator::start(Tenant::generate(&GenConfig::with_companies(11, 40)), SimConfig::default(), 0).await.unwrap();
    let creds = sim.credentials();
    let auth = format!(
        "Basic {}",
        STANDARD.encode(format!("{}+{}:{}", creds.company_id, creds.public_key, creds.private_key))
    );
    let http = reqwest::Client::new();
    let call = |url: String| http.get(url).header("Authorization", &auth).header("clientId", &creds.client_id);
    let responses = doc["source"]["responses"].as_object().unwrap().clone();
    let mut all = Vec::new();
    for (path, name) in &responses {
        let v = validator(&doc, name.as_str().unwrap());
        let mut records = Vec::new();
        for page in 1.. {
            let body = get_json(call(format!("{}/{path}?page={page}&pageSize=1000", sim.api_url()))).await;
            let rows = body.as_array().unwrap().clone();
            let done = rows.len() < 1000;
            records.extend(rows);
            if done {
                break;
            }
        }
        assert!(!records.is_empty(), "{path} served no records");
        let one = get_json(call(format!("{}/{path}/{}", sim.api_url(), records[0]["id"]))).await;
        records.push(one);
        all.extend(violations(&v, path, &records));
    }
    sim.shutdown().await;
    assert_clean(all);
}

#[tokio::test]
async fn every_halo_record_the_simulator_serves_matches_the_published_schema() {
    use tandem_sim::halo::{GenConfig, SimConfig, Simulator, Tenant};
    let doc = load("halopsa-schemas.json");
    let sim =
        Simulator::start(Tenant::generate(&GenConfig::with_companies(11, 40)), SimConfig::default(), 0).await.unwrap();
    let creds = sim.credentials();
    let http = reqwest::Client::new();
    let mut token_url = format!("{}/auth/token", creds.site);
    if let Some(t) = &creds.tenant {
        token_url = format!("{token_url}?tenant={t}");
    }
    let form: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", &creds.client_id)
        .append_pair("client_secret", &creds.client_secret)
        .append_pair("scope", "all")
        .finish();
    let token_call = http.post(token_url).header("Content-Type", "application/x-www-form-urlencoded").body(form);
    let token = get_json(token_call).await["access_token"].as_str().unwrap().to_string();
    let call = |url: String| http.get(url).bearer_auth(&token);
    // Resource -> the `{record_count, <key>}` envelope key of its list (None: a bare array).
    let resources: &[(&str, &str, Option<&str>)] = &[
        ("agent", "Agent", None),
        ("client", "Client", Some("clients")),
        ("users", "Users", Some("users")),
        ("opportunities", "Opportunities", Some("tickets")),
        ("actions", "Actions", Some("actions")),
        ("crmnote", "CRMNote", Some("notes")),
        ("roles", "Roles", None),
        ("lookup", "Lookup", None),
        ("status", "Status", None),
        ("outcome", "Outcome", None),
        ("tickettype", "TicketType", None),
    ];
    let mut all = Vec::new();
    for (resource, path, envelope) in resources {
        let name = doc["source"]["responses"][resource].as_str().unwrap();
        let v = validator(&doc, name);
        let mut records = Vec::new();
        if let Some(key) = envelope {
            for page in 1.. {
                let url = format!(
                    "{}/{path}?pageinate=true&page_no={page}&page_size=100&includeinactive=true",
                    sim.api_url()
                );
                let body = get_json(call(url)).await;
                let rows = body[key].as_array().unwrap().clone();
                let done = rows.len() < 100;
                records.extend(rows);
                if done {
                    break;
                }
            }
        } else {
            records = get_json(call(format!("{}/{path}", sim.api_url()))).await.as_array().unwrap().clone();
        }
        assert!(!records.is_empty(), "{path} served no records");
        // A role's id is a GUID string, every other id a number: the path takes either bare.
        let first = &records[0]["id"];
        let first = first.as_str().map_or_else(|| first.to_string(), str::to_string);
        let one = get_json(call(format!("{}/{path}/{first}", sim.api_url()))).await;
        records.push(one);
        all.extend(violations(&v, path, &records));
    }
    sim.shutdown().await;
    assert_clean(all);
}

/// Syncro publishes no response schema for customers and leads; their request bodies are the
/// only published typing. A request body says what a write may send, not that an answer
/// fills every field: Syncro's own recorded answers (`customers_list`, `leads_list` in the
/// spec's examples) give `null` for fields left blank (19 of a customer's, 9 of a lead's,
/// typed there as plain strings and integers). So for these two, `null` is accepted for
/// every property and the published type is checked on every other value. A deviation
/// from the schema that the real payloads force; the contact schema, a real response
/// schema, is used as published.
fn nullable_properties(def: &mut Value) {
    for prop in def["properties"].as_object_mut().unwrap().values_mut() {
        if let Some(t) = prop["type"].as_str().map(str::to_string) {
            prop["type"] = json!([t, "null"]);
        }
    }
}

#[tokio::test]
async fn every_syncro_record_the_simulator_serves_matches_the_published_schema() {
    use tandem_sim::syncro::{GenConfig, SimConfig, Simulator, Tenant};
    let mut doc = load("syncro-schemas.json");
    nullable_properties(&mut doc["definitions"]["CustomerBody"]);
    nullable_properties(&mut doc["definitions"]["LeadBody"]);
    let sim =
        Simulator::start(Tenant::generate(&GenConfig::with_companies(11, 40)), SimConfig::default(), 0).await.unwrap();
    let key = sim.credentials().api_key;
    let http = reqwest::Client::new();
    let call = |url: String| http.get(url).bearer_auth(&key);
    let mut all = Vec::new();
    for (plural, name, extra) in [
        ("customers", "CustomerBody", "&include_disabled=true"),
        ("contacts", "ContactResponse", ""),
        ("leads", "LeadBody", ""),
    ] {
        let v = validator(&doc, name);
        let mut records = Vec::new();
        for page in 1.. {
            let body = get_json(call(format!("{}/{plural}?page={page}{extra}", sim.api_url()))).await;
            records.extend(body[plural].as_array().unwrap().iter().cloned());
            if body["meta"]["total_pages"].as_u64().unwrap() <= page {
                break;
            }
        }
        assert!(!records.is_empty(), "{plural} served no records");
        // GET /{plural}/{id} wraps the record in its singular.
        let one = get_json(call(format!("{}/{plural}/{}", sim.api_url(), records[0]["id"]))).await;
        let singular = plural.trim_end_matches('s');
        records.push(one.get(singular).cloned().unwrap_or(one));
        all.extend(violations(&v, plural, &records));
    }
    sim.shutdown().await;
    assert_clean(all);
}
