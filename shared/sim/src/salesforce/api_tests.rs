//! The Salesforce simulator over real HTTP: deletes (`DELETE /sobjects/{Type}/{Id}` to the
//! recycle bin, reads and updates of a deleted record, `query` against `queryAll`, the
//! delete log `sobjects/{Type}/deleted/`, the sObject Collections delete), the describe of
//! Lead, Account, Contact, Opportunity and Task with their custom fields, and the field
//! rules creates and updates are refused by (salesforce-api.md 3.3, 5).

// Helpers outside the #[test] functions unwrap too: a failed call is a failed test.
#![allow(clippy::unwrap_used)]

use reqwest::Method;
use serde_json::{Value, json};

use super::store::sf_datetime;
use super::{GenConfig, SimConfig, SimHandle, Simulator, Tenant};
use crate::common::now_unix;

async fn start() -> (SimHandle, String) {
    let sim =
        Simulator::start(Tenant::generate(&GenConfig::with_companies(3, 40)), SimConfig::default(), 0).await.unwrap();
    let c = sim.credentials();
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", &c.client_id)
        .append_pair("client_secret", &c.client_secret)
        .finish();
    let token: Value = reqwest::Client::new()
        .post(format!("{}/services/oauth2/token", sim.base_url()))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    (sim, bearer)
}

async fn call(sim: &SimHandle, bearer: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req =
        reqwest::Client::new().request(method, format!("{}/{path}", sim.api_url())).header("Authorization", bearer);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Creates an account; its id.
async fn account(sim: &SimHandle, bearer: &str, name: &str) -> String {
    let (status, body) = call(sim, bearer, Method::POST, "sobjects/Account", Some(json!({"Name": name}))).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_string()
}

fn code(body: &Value) -> &str {
    body[0]["errorCode"].as_str().unwrap_or_default()
}

fn ids_of(body: &Value, list: &str, field: &str) -> Vec<String> {
    body[list].as_array().unwrap().iter().map(|r| r[field].as_str().unwrap().to_string()).collect()
}

/// `?q=` of a SOQL query, encoded.
fn q(soql: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new()).append_pair("q", soql).finish()
}

/// `sobjects/Account/deleted/?start=..&end=..`, the times encoded.
fn window(start: i64, end: i64) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("start", &sf_datetime(start))
        .append_pair("end", &sf_datetime(end))
        .finish();
    format!("sobjects/Account/deleted/?{query}")
}

#[tokio::test]
async fn a_deleted_record_answers_204_then_entity_is_deleted_to_reads_updates_and_a_second_delete() {
    let (sim, bearer) = start().await;
    let id = account(&sim, &bearer, "Doomed Ltd").await;
    let path = format!("sobjects/Account/{id}");
    let (status, _) = call(&sim, &bearer, Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let (status, body) = call(&sim, &bearer, Method::GET, &path, None).await;
    assert_eq!((status, code(&body)), (404, "ENTITY_IS_DELETED"), "{body}");
    assert_eq!(body[0]["message"], json!("entity is deleted"));
    let (status, body) = call(&sim, &bearer, Method::PATCH, &path, Some(json!({"Phone": "1"}))).await;
    assert_eq!((status, code(&body)), (404, "ENTITY_IS_DELETED"), "{body}");
    let (status, body) = call(&sim, &bearer, Method::DELETE, &path, None).await;
    assert_eq!((status, code(&body)), (404, "ENTITY_IS_DELETED"), "{body}");
    let (status, body) = call(&sim, &bearer, Method::DELETE, "sobjects/Account/0018dZZZZZZZZZZAAA", None).await;
    assert_eq!((status, code(&body)), (404, "NOT_FOUND"), "an id never known is not found: {body}");
}

#[tokio::test]
async fn query_leaves_a_deleted_record_out_and_query_all_returns_it_marked_deleted() {
    let (sim, bearer) = start().await;
    let kept = account(&sim, &bearer, "Kept Ltd").await;
    let gone = account(&sim, &bearer, "Gone Ltd").await;
    call(&sim, &bearer, Method::DELETE, &format!("sobjects/Account/{gone}"), None).await;
    let soql = format!("SELECT Id, IsDeleted FROM Account WHERE Id IN ('{kept}', '{gone}') ORDER BY Id");
    let (_, live) = call(&sim, &bearer, Method::GET, &format!("query?{}", q(&soql)), None).await;
    assert_eq!(ids_of(&live, "records", "Id"), vec![kept.clone()]);
    let (_, all) = call(&sim, &bearer, Method::GET, &format!("queryAll?{}", q(&soql)), None).await;
    assert_eq!(ids_of(&all, "records", "Id"), [kept.clone(), gone.clone()]);
    assert_eq!(all["records"][1]["IsDeleted"], json!(true));
    let only_deleted = format!("SELECT Id FROM Account WHERE IsDeleted = true AND Id = '{gone}'");
    let (_, found) = call(&sim, &bearer, Method::GET, &format!("queryAll?{}", q(&only_deleted)), None).await;
    assert_eq!(ids_of(&found, "records", "Id"), [gone]);
}

#[tokio::test]
async fn query_all_pages_through_next_records_urls_that_keep_the_deleted_rows() {
    let (sim, bearer) = start().await;
    let mut gone = Vec::new();
    for n in 0..260 {
        let id = account(&sim, &bearer, &format!("Paged {n}")).await;
        if n < 220 {
            call(&sim, &bearer, Method::DELETE, &format!("sobjects/Account/{id}"), None).await;
            gone.push(id);
        }
    }
    let soql = "SELECT Id FROM Account WHERE IsDeleted = true AND Name LIKE 'Paged %' ORDER BY Id";
    let first = reqwest::Client::new()
        .get(format!("{}/queryAll?{}", sim.api_url(), q(soql)))
        .header("Authorization", &bearer)
        .header("Sforce-Query-Options", "batchSize=200")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!((first["totalSize"].as_u64(), first["done"].as_bool()), (Some(220), Some(false)));
    let next = first["nextRecordsUrl"].as_str().unwrap();
    assert!(next.contains("/queryAll/"), "{next}");
    let mut ids = ids_of(&first, "records", "Id");
    let mut url = Some(next.to_string());
    while let Some(u) = url {
        let page: Value = reqwest::Client::new()
            .get(format!("{}{u}", sim.base_url()))
            .header("Authorization", &bearer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.extend(ids_of(&page, "records", "Id"));
        url = page["nextRecordsUrl"].as_str().map(str::to_string);
    }
    assert_eq!(ids, gone);
}

#[tokio::test]
async fn the_delete_log_lists_deletes_of_the_window_only_and_refuses_a_bad_window() {
    let (sim, bearer) = start().await;
    let early = account(&sim, &bearer, "Early Ltd").await;
    let late = account(&sim, &bearer, "Late Ltd").await;
    // The org's clock is set back so the deletes fall in minutes that are over.
    sim.set_clock_offset(-600);
    call(&sim, &bearer, Method::DELETE, &format!("sobjects/Account/{early}"), None).await;
    sim.set_clock_offset(-180);
    call(&sim, &bearer, Method::DELETE, &format!("sobjects/Account/{late}"), None).await;
    sim.set_clock_offset(0);
    let now = now_unix();
    let (status, all) = call(&sim, &bearer, Method::GET, &window(now - 900, now), None).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(ids_of(&all, "deletedRecords", "id"), [early.clone(), late.clone()]);
    let date = all["deletedRecords"][0]["deletedDate"].as_str().unwrap();
    assert!(date.ends_with(".000+0000"), "{date}");
    assert_eq!(all["latestDateCovered"], json!(sf_datetime(now - now % 60)));
    assert!(all["earliestDateAvailable"].is_string(), "{all}");
    let (_, later) = call(&sim, &bearer, Method::GET, &window(now - 300, now), None).await;
    assert_eq!(ids_of(&later, "deletedRecords", "id"), [late], "the early delete is before the window");
    let (_, before) = call(&sim, &bearer, Method::GET, &window(now - 3600, now - 900), None).await;
    assert!(ids_of(&before, "deletedRecords", "id").is_empty(), "{before}");
    let (_, contacts) =
        call(&sim, &bearer, Method::GET, &window(now - 900, now).replace("Account", "Contact"), None).await;
    assert!(ids_of(&contacts, "deletedRecords", "id").is_empty(), "deletes are logged per object: {contacts}");
    for (start, end) in [(now, now - 600), (now - 16 * 86_400, now)] {
        let (status, body) = call(&sim, &bearer, Method::GET, &window(start, end), None).await;
        assert_eq!((status, code(&body)), (400, "INVALID_REPLICATION_DATE"), "{body}");
    }
}

#[tokio::test]
async fn a_collection_delete_answers_per_id_and_all_or_none_deletes_nothing_when_one_fails() {
    let (sim, bearer) = start().await;
    let a = account(&sim, &bearer, "One Ltd").await;
    let b = account(&sim, &bearer, "Two Ltd").await;
    let unknown = "0018dZZZZZZZZZZAAA";
    let (status, body) =
        call(&sim, &bearer, Method::DELETE, &format!("composite/sobjects?ids={a},{unknown}&allOrNone=true"), None)
            .await;
    assert_eq!(status, 200, "{body}");
    let codes: Vec<&str> =
        body.as_array().unwrap().iter().map(|r| r["errors"][0]["statusCode"].as_str().unwrap()).collect();
    assert_eq!(codes, ["ALL_OR_NONE_OPERATION_ROLLED_BACK", "NOT_FOUND"]);
    assert_eq!(
        call(&sim, &bearer, Method::GET, &format!("sobjects/Account/{a}"), None).await.0,
        200,
        "nothing deleted"
    );
    let (_, body) =
        call(&sim, &bearer, Method::DELETE, &format!("composite/sobjects?ids={a},{unknown},{b}"), None).await;
    let success: Vec<bool> = body.as_array().unwrap().iter().map(|r| r["success"].as_bool().unwrap()).collect();
    assert_eq!(success, [true, false, true]);
    assert_eq!(call(&sim, &bearer, Method::GET, &format!("sobjects/Account/{b}"), None).await.0, 404);
    let (status, body) = call(&sim, &bearer, Method::DELETE, "composite/sobjects?ids=", None).await;
    assert_eq!((status, code(&body)), (400, "REQUIRED_FIELD_MISSING"), "{body}");
}

/// The `totalSize` of a SOQL query.
async fn count(sim: &SimHandle, bearer: &str, soql: &str) -> u64 {
    let (status, body) = call(sim, bearer, Method::GET, &format!("query?{}", q(soql)), None).await;
    assert_eq!(status, 200, "{body}");
    body["totalSize"].as_u64().unwrap()
}

/// The describe entry of one field.
fn field<'a>(describe: &'a Value, name: &str) -> &'a Value {
    describe["fields"].as_array().unwrap().iter().find(|f| f["name"] == name).unwrap_or_else(|| panic!("{name}"))
}

/// Asserts a refusal: status 400, the code, and the field named (when one is expected).
fn refused(status: u16, body: &Value, want: &str, field: Option<&str>) {
    assert_eq!((status, code(body)), (400, want), "{body}");
    match field {
        Some(f) => assert_eq!(body[0]["fields"], json!([f]), "{body}"),
        None => assert!(body[0].get("fields").is_none(), "{body}"),
    }
}

/// Per object: required fields, then its custom text (length), long text area (length),
/// number (type, precision, scale), date, checkbox, restricted picklist (values) and formula.
struct Expected {
    object: &'static str,
    required: &'static [&'static str],
    text: (&'static str, u64),
    long_text: (&'static str, u64),
    number: (&'static str, &'static str, u64, u64),
    date: &'static str,
    checkbox: &'static str,
    picklist: (&'static str, &'static [&'static str]),
    formula: (&'static str, &'static str),
}

const EXPECTED: &[Expected] = &[
    Expected {
        object: "Lead",
        required: &["LastName", "Company"],
        text: ("Territory__c", 80),
        long_text: ("Visit_Notes__c", 32_768),
        number: ("Estimated_Value__c", "currency", 16, 2),
        date: "Next_Visit_Date__c",
        checkbox: "Do_Not_Knock__c",
        picklist: ("Visit_Result__c", &["Not Home", "Not Interested", "Follow Up", "Appointment Set", "Sold"]),
        formula: ("Is_Web_Lead__c", "boolean"),
    },
    Expected {
        object: "Account",
        required: &["Name"],
        text: ("Territory__c", 80),
        long_text: ("Account_Notes__c", 32_768),
        number: ("Annual_Spend__c", "currency", 16, 2),
        date: "Contract_Start__c",
        checkbox: "Key_Account__c",
        picklist: ("Service_Tier__c", &["Bronze", "Silver", "Gold"]),
        formula: ("Is_Customer__c", "boolean"),
    },
    Expected {
        object: "Contact",
        required: &["LastName"],
        text: ("Nickname__c", 40),
        long_text: ("Contact_Notes__c", 32_768),
        number: ("Visit_Count__c", "double", 5, 0),
        date: "Last_Visit_Date__c",
        checkbox: "Decision_Maker__c",
        picklist: ("Preferred_Channel__c", &["Phone", "Email", "SMS", "In Person"]),
        formula: ("Has_Email__c", "boolean"),
    },
    Expected {
        object: "Opportunity",
        required: &["Name", "StageName", "CloseDate"],
        text: ("Territory__c", 80),
        long_text: ("Proposal_Notes__c", 131_072),
        number: ("Discount_Percent__c", "double", 5, 2),
        date: "Install_Date__c",
        checkbox: "Financing_Required__c",
        picklist: ("Product_Line__c", &["Roofing", "Solar", "Windows", "Siding"]),
        formula: ("Weighted_Amount__c", "currency"),
    },
    Expected {
        object: "Task",
        required: &[],
        text: ("Door_Number__c", 20),
        long_text: ("Knock_Notes__c", 32_768),
        number: ("Visit_Minutes__c", "double", 4, 0),
        date: "Follow_Up_Date__c",
        checkbox: "Appointment_Set__c",
        picklist: ("Visit_Outcome__c", &["Knocked", "Talked", "Appointment", "Callback"]),
        formula: ("Is_Call__c", "boolean"),
    },
];

#[tokio::test]
async fn the_describe_of_each_of_the_five_objects_lists_its_custom_fields_with_their_types_lengths_values_and_flags() {
    let (sim, bearer) = start().await;
    for e in EXPECTED {
        let (status, d) = call(&sim, &bearer, Method::GET, &format!("sobjects/{}/describe", e.object), None).await;
        assert_eq!(status, 200, "{d}");
        assert_eq!(d["name"], json!(e.object));
        let o = e.object;
        // "Required" = createable, not nillable, not defaulted on create (salesforce-api.md 3.3).
        let required: Vec<&str> = d["fields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["createable"] == true && f["nillable"] == false && f["defaultedOnCreate"] == false)
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(required, e.required, "{o}");
        let text = field(&d, e.text.0);
        assert_eq!(
            (&text["type"], &text["length"], &text["custom"]),
            (&json!("string"), &json!(e.text.1), &json!(true))
        );
        let long = field(&d, e.long_text.0);
        assert_eq!(
            (&long["type"], &long["length"], &long["filterable"]),
            (&json!("textarea"), &json!(e.long_text.1), &json!(false))
        );
        let (name, kind, precision, scale) = e.number;
        let n = field(&d, name);
        assert_eq!((&n["type"], &n["precision"], &n["scale"]), (&json!(kind), &json!(precision), &json!(scale)), "{o}");
        assert_eq!(field(&d, e.date)["type"], json!("date"), "{o}");
        let checkbox = field(&d, e.checkbox);
        assert_eq!(
            (&checkbox["type"], &checkbox["nillable"], &checkbox["defaultValue"]),
            (&json!("boolean"), &json!(false), &json!(false))
        );
        let pick = field(&d, e.picklist.0);
        assert_eq!((&pick["type"], &pick["restrictedPicklist"]), (&json!("picklist"), &json!(true)), "{o}");
        let values: Vec<&str> =
            pick["picklistValues"].as_array().unwrap().iter().map(|v| v["value"].as_str().unwrap()).collect();
        assert_eq!(values, e.picklist.1, "{o}");
        let formula = field(&d, e.formula.0);
        assert_eq!(formula["type"], json!(e.formula.1), "{o}");
        assert_eq!(
            (&formula["calculated"], &formula["createable"], &formula["updateable"]),
            (&json!(true), &json!(false), &json!(false)),
            "{o}"
        );
        assert!(formula["calculatedFormula"].as_str().is_some_and(|f| !f.is_empty()), "{o}");
        for read_only in ["CreatedDate", "LastModifiedDate", "IsDeleted"] {
            let f = field(&d, read_only);
            assert_eq!(
                (&f["createable"], &f["updateable"], &f["calculated"]),
                (&json!(false), &json!(false), &json!(false)),
                "{o} {read_only}"
            );
        }
    }
}

#[tokio::test]
async fn the_global_describe_lists_the_five_objects_with_their_describe_urls() {
    let (sim, bearer) = start().await;
    let (status, body) = call(&sim, &bearer, Method::GET, "sobjects", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["maxBatchSize"], json!(200));
    for e in EXPECTED {
        let o = body["sobjects"].as_array().unwrap().iter().find(|o| o["name"] == e.object).unwrap();
        assert_eq!((&o["createable"], &o["queryable"]), (&json!(true), &json!(true)), "{}", e.object);
        let url = o["urls"]["describe"].as_str().unwrap();
        let (status, _) = call(
            &sim,
            &bearer,
            Method::GET,
            url.split_once("/sobjects/").map(|(_, t)| format!("sobjects/{t}")).unwrap().as_str(),
            None,
        )
        .await;
        assert_eq!(status, 200, "{url}");
    }
}

#[tokio::test]
async fn a_create_that_leaves_out_a_required_field_is_refused_with_required_field_missing_and_writes_nothing() {
    let (sim, bearer) = start().await;
    let (status, body) =
        call(&sim, &bearer, Method::POST, "sobjects/Lead", Some(json!({"LastName": "Nocompany"}))).await;
    refused(status, &body, "REQUIRED_FIELD_MISSING", Some("Company"));
    assert_eq!(count(&sim, &bearer, "SELECT Id FROM Lead WHERE LastName = 'Nocompany'").await, 0);
    let (status, body) = call(
        &sim,
        &bearer,
        Method::POST,
        "sobjects/Opportunity",
        Some(json!({"Name": "No stage", "CloseDate": "2026-01-31", "StageName": ""})),
    )
    .await;
    refused(status, &body, "REQUIRED_FIELD_MISSING", Some("StageName"));
    assert_eq!(count(&sim, &bearer, "SELECT Id FROM Opportunity WHERE Name = 'No stage'").await, 0);
    // Emptying a required field on update is refused too, and leaves the record as it was.
    let id = account(&sim, &bearer, "Keeps Its Name").await;
    let (status, body) =
        call(&sim, &bearer, Method::PATCH, &format!("sobjects/Account/{id}"), Some(json!({"Name": null}))).await;
    refused(status, &body, "REQUIRED_FIELD_MISSING", Some("Name"));
    let (_, row) = call(&sim, &bearer, Method::GET, &format!("sobjects/Account/{id}"), None).await;
    assert_eq!(row["Name"], json!("Keeps Its Name"));
}

#[tokio::test]
async fn a_value_outside_a_restricted_picklist_is_refused_on_create_and_update_and_writes_nothing() {
    let (sim, bearer) = start().await;
    let lead = json!({"LastName": "Picky", "Company": "Picky Co", "Visit_Result__c": "Maybe"});
    let (status, body) = call(&sim, &bearer, Method::POST, "sobjects/Lead", Some(lead)).await;
    refused(status, &body, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", Some("Visit_Result__c"));
    assert_eq!(count(&sim, &bearer, "SELECT Id FROM Lead WHERE LastName = 'Picky'").await, 0);
    let ok = json!({"LastName": "Picky", "Company": "Picky Co", "Visit_Result__c": "Follow Up"});
    let (status, body) = call(&sim, &bearer, Method::POST, "sobjects/Lead", Some(ok)).await;
    assert_eq!(status, 201, "{body}");
    let path = format!("sobjects/Lead/{}", body["id"].as_str().unwrap());
    let (status, body) =
        call(&sim, &bearer, Method::PATCH, &path, Some(json!({"Visit_Result__c": "Sold!", "City": "Leeds"}))).await;
    refused(status, &body, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", Some("Visit_Result__c"));
    let (_, row) = call(&sim, &bearer, Method::GET, &path, None).await;
    assert_eq!(
        (&row["Visit_Result__c"], &row["City"]),
        (&json!("Follow Up"), &Value::Null),
        "nothing of the update was kept"
    );
}

#[tokio::test]
async fn a_text_longer_than_its_field_length_is_refused_with_string_too_long_and_writes_nothing() {
    let (sim, bearer) = start().await;
    let long = "x".repeat(81);
    let (status, body) =
        call(&sim, &bearer, Method::POST, "sobjects/Account", Some(json!({"Name": "Long Ltd", "Territory__c": long})))
            .await;
    refused(status, &body, "STRING_TOO_LONG", Some("Territory__c"));
    assert!(body[0]["message"].as_str().unwrap().contains("max length=80"), "{body}");
    assert_eq!(count(&sim, &bearer, "SELECT Id FROM Account WHERE Name = 'Long Ltd'").await, 0);
    let id = account(&sim, &bearer, "Short Ltd").await;
    let path = format!("sobjects/Account/{id}");
    let (status, _) = call(&sim, &bearer, Method::PATCH, &path, Some(json!({"Territory__c": "x".repeat(80)}))).await;
    assert_eq!(status, 204, "exactly the length is allowed");
    let (status, body) = call(&sim, &bearer, Method::PATCH, &path, Some(json!({"Territory__c": "é".repeat(81)}))).await;
    refused(status, &body, "STRING_TOO_LONG", Some("Territory__c"));
    let (_, row) = call(&sim, &bearer, Method::GET, &path, None).await;
    assert_eq!(row["Territory__c"], json!("x".repeat(80)));
}

#[tokio::test]
async fn writing_a_formula_or_read_only_field_is_refused_with_invalid_field_for_insert_update_and_writes_nothing() {
    let (sim, bearer) = start().await;
    let opp = json!({"Name": "Formula Deal", "StageName": "Prospecting", "CloseDate": "2026-06-30", "Weighted_Amount__c": 10});
    let (status, body) = call(&sim, &bearer, Method::POST, "sobjects/Opportunity", Some(opp)).await;
    refused(status, &body, "INVALID_FIELD_FOR_INSERT_UPDATE", Some("Weighted_Amount__c"));
    assert_eq!(count(&sim, &bearer, "SELECT Id FROM Opportunity WHERE Name = 'Formula Deal'").await, 0);
    let id = account(&sim, &bearer, "Read Only Ltd").await;
    let path = format!("sobjects/Account/{id}");
    let (_, before) = call(&sim, &bearer, Method::GET, &path, None).await;
    let write = json!({"Phone": "0113 496 0000", "CreatedDate": "2020-01-01T00:00:00.000+0000"});
    let (status, body) = call(&sim, &bearer, Method::PATCH, &path, Some(write)).await;
    refused(status, &body, "INVALID_FIELD_FOR_INSERT_UPDATE", Some("CreatedDate"));
    let (status, body) = call(&sim, &bearer, Method::PATCH, &path, Some(json!({"Is_Customer__c": true}))).await;
    refused(status, &body, "INVALID_FIELD_FOR_INSERT_UPDATE", Some("Is_Customer__c"));
    // A field the object does not have is INVALID_FIELD, without `fields` (restforce
    // `write_error_response.json`), the field named in the message.
    let (status, body) = call(&sim, &bearer, Method::PATCH, &path, Some(json!({"Phone": "1", "Nope__c": "x"}))).await;
    refused(status, &body, "INVALID_FIELD", None);
    assert!(body[0]["message"].as_str().unwrap().contains("'Nope__c'"), "{body}");
    let (_, after) = call(&sim, &bearer, Method::GET, &path, None).await;
    assert_eq!(before, after, "no refused update changed the record");
}

#[tokio::test]
async fn a_negative_opportunity_amount_breaks_the_seeded_validation_rule_on_create_and_update() {
    let (sim, bearer) = start().await;
    let opp = |amount: f64| json!({"Name": "Rule Deal", "StageName": "Prospecting", "CloseDate": "2026-06-30", "Amount": amount, "Probability": 50});
    let (status, body) = call(&sim, &bearer, Method::POST, "sobjects/Opportunity", Some(opp(-1.0))).await;
    refused(status, &body, "FIELD_CUSTOM_VALIDATION_EXCEPTION", Some("Amount"));
    assert_eq!(body[0]["message"], json!("Amount cannot be negative."));
    assert_eq!(count(&sim, &bearer, "SELECT Id FROM Opportunity WHERE Name = 'Rule Deal'").await, 0);
    let (status, body) = call(&sim, &bearer, Method::POST, "sobjects/Opportunity", Some(opp(1000.0))).await;
    assert_eq!(status, 201, "{body}");
    let path = format!("sobjects/Opportunity/{}", body["id"].as_str().unwrap());
    let (status, body) =
        call(&sim, &bearer, Method::PATCH, &path, Some(json!({"Amount": -5, "StageName": "Closed Won"}))).await;
    refused(status, &body, "FIELD_CUSTOM_VALIDATION_EXCEPTION", Some("Amount"));
    let (_, row) = call(&sim, &bearer, Method::GET, &path, None).await;
    assert_eq!(
        (&row["Amount"], &row["StageName"], &row["IsWon"]),
        (&json!(1000.0), &json!("Prospecting"), &json!(false))
    );
    assert_eq!(row["Weighted_Amount__c"], json!(500.0), "the formula is Amount * Probability");
}

#[tokio::test]
async fn a_create_fills_picklist_and_checkbox_defaults_and_computes_formulas() {
    let (sim, bearer) = start().await;
    let (status, body) = call(
        &sim,
        &bearer,
        Method::POST,
        "sobjects/Lead",
        Some(json!({"LastName": "Webb", "Company": "Webb Co", "LeadSource": "Web"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (_, lead) =
        call(&sim, &bearer, Method::GET, &format!("sobjects/Lead/{}", body["id"].as_str().unwrap()), None).await;
    assert_eq!(
        (&lead["Status"], &lead["Do_Not_Knock__c"], &lead["Is_Web_Lead__c"]),
        (&json!("Open - Not Contacted"), &json!(false), &json!(true))
    );
    let (status, body) = call(
        &sim,
        &bearer,
        Method::POST,
        "sobjects/Task",
        Some(json!({"Subject": "Call back", "TaskSubtype": "Call"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (_, task) =
        call(&sim, &bearer, Method::GET, &format!("sobjects/Task/{}", body["id"].as_str().unwrap()), None).await;
    assert_eq!(
        (&task["Status"], &task["Priority"], &task["Is_Call__c"]),
        (&json!("Not Started"), &json!("Normal"), &json!(true))
    );
}

#[tokio::test]
async fn a_collection_create_refuses_each_bad_record_on_its_own_and_keeps_the_good_ones() {
    let (sim, bearer) = start().await;
    let records = json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Lead"}, "LastName": "Batch Good", "Company": "Batch Co"},
        {"attributes": {"type": "Lead"}, "LastName": "Batch Bad", "Company": "Batch Co", "Visit_Result__c": "Maybe"},
        {"attributes": {"type": "Opportunity"}, "Name": "Batch Deal", "StageName": "Prospecting", "CloseDate": "2026-06-30", "Amount": -3},
    ]});
    let (status, body) = call(&sim, &bearer, Method::POST, "composite/sobjects", Some(records)).await;
    assert_eq!(status, 200, "{body}");
    let items = body.as_array().unwrap();
    assert_eq!(items[0]["success"], json!(true), "{body}");
    assert_eq!(items[1]["errors"][0]["statusCode"], json!("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"));
    assert_eq!(items[1]["errors"][0]["fields"], json!(["Visit_Result__c"]));
    assert_eq!(items[2]["errors"][0]["statusCode"], json!("FIELD_CUSTOM_VALIDATION_EXCEPTION"));
    assert_eq!(count(&sim, &bearer, "SELECT Id FROM Lead WHERE Company = 'Batch Co'").await, 1);
    assert_eq!(count(&sim, &bearer, "SELECT Id FROM Opportunity WHERE Name = 'Batch Deal'").await, 0);
}
