//! Property tests of the four vendors' payload mappers: pages of arbitrary JSON in each
//! vendor's shape (the vendor's field names holding strings, numbers, nulls, bools, nested
//! objects, arrays, wrong types) never panic, never fail the page for one record, and turn
//! every record into the stage's domain record (with an id) or a clear `Unreadable`.

// Tests unwrap: a failed unwrap is a failed test, with the error in the panic message.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Number, Value, json};
use tandem_connectors::connectwise::mapping::Lookups;
use tandem_connectors::connectwise::models::Forecast;
use tandem_connectors::{connectwise, halo, salesforce, syncro};
use tandem_domain::Stage;
use tandem_domain::external::ExternalRecord;

/// Whether a mapped record is of the stage's kind.
type Fits = fn(&ExternalRecord) -> bool;
/// A vendor record's field names.
type Fields = &'static [&'static str];

/// Cases per property: enough to find a misfit, few enough for a few seconds in debug.
const CASES: u32 = 256;

/// Keys of nested objects: references, `_info`, communication items, forecast items,
/// roles, Salesforce `attributes`, Syncro `meta`, and a few unknown ones.
const NESTED_KEYS: &[&str] = &[
    "id",
    "identifier",
    "name",
    "description",
    "lastUpdated",
    "updatedBy",
    "dateEntered",
    "enteredBy",
    "value",
    "type",
    "communicationType",
    "defaultFlag",
    "forecastItems",
    "revenue",
    "quantity",
    "productDescription",
    "total_pages",
    "page",
    "url",
    "unknownField",
];

/// Text as vendors send it, and as they should not: any Unicode, blanks, timestamps and
/// near-timestamps (offsets without a colon, multi-byte characters where digits belong).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        2 => "[ -~]{0,16}",
        2 => "(19|20)[0-9]{2}-[01][0-9]-[0-3][0-9](T[0-2][0-9]:[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,3})?(Z|[+-][0-9]{2}:?[0-9]{2})?)?",
        2 => "[0-9T:+\\-Z. é漢]{0,12}",
        2 => "20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9](\\.000)?[+-][0-9é漢]{2,5}",
        1 => Just(String::new()),
        1 => Just("   ".to_string()),
    ]
}

/// A JSON scalar of any type.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (0i64..1000).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        text().prop_map(Value::String),
    ]
}

/// Any JSON value, objects keyed mostly by names the vendors use in nested objects.
fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        let key = prop_oneof![3 => select(NESTED_KEYS).prop_map(str::to_string), 1 => "[a-zA-Z_]{1,8}"];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..5).prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// One record: mostly an object with a usable id (`id_key` holding `id`) and any of the
/// vendor's `fields` holding any JSON; sometimes no or a wrong id; rarely not an object.
fn record(
    fields: Fields,
    id_key: &'static str,
    id: impl Strategy<Value = Value> + 'static,
) -> impl Strategy<Value = Value> {
    let id = prop_oneof![6 => id.prop_map(Some), 1 => json().prop_map(Some), 1 => Just(None)];
    let value = prop_oneof![2 => text().prop_map(Value::String), 3 => json()];
    let pairs = prop::collection::vec((select(fields), value), 0..=fields.len());
    let object = (id, pairs).prop_map(move |(id, pairs)| {
        let mut m = Map::new();
        if let Some(id) = id {
            m.insert(id_key.to_string(), id);
        }
        for (k, v) in pairs {
            m.insert(k.to_string(), v);
        }
        Value::Object(m)
    });
    prop_oneof![12 => object, 1 => json()]
}

fn numeric_id() -> impl Strategy<Value = Value> {
    (1i64..100_000).prop_map(Value::from)
}

/// Up to 6 records.
fn records(strategy: impl Strategy<Value = Value>) -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec(strategy, 0..6)
}

/// Every record is the stage's record with a non-blank id, or unreadable with a reason.
fn each_fits(out: &[ExternalRecord], sent: usize, fits: Fits) -> Result<(), TestCaseError> {
    prop_assert_eq!(out.len(), sent, "one record out per record in");
    for r in out {
        match r {
            ExternalRecord::Unreadable(u) => {
                prop_assert!(!u.reason.trim().is_empty(), "an unreadable record says why: {:?}", u);
                prop_assert!(u.id.as_deref().is_none_or(|id| !id.trim().is_empty()), "{:?}", u);
            }
            other => {
                prop_assert!(fits(other), "a record of another stage: {:?}", other);
                prop_assert!(other.id().is_some_and(|id| !id.trim().is_empty()), "a record without an id: {:?}", other);
            }
        }
    }
    Ok(())
}

fn is_user(r: &ExternalRecord) -> bool {
    matches!(r, ExternalRecord::User(_))
}
fn is_company(r: &ExternalRecord) -> bool {
    matches!(r, ExternalRecord::Company(_))
}
fn is_contact(r: &ExternalRecord) -> bool {
    matches!(r, ExternalRecord::Contact(_))
}
fn is_solution(r: &ExternalRecord) -> bool {
    matches!(r, ExternalRecord::Solution(_))
}
fn is_activity(r: &ExternalRecord) -> bool {
    matches!(r, ExternalRecord::Activity(_))
}
fn is_opportunity(r: &ExternalRecord) -> bool {
    matches!(r, ExternalRecord::Opportunity(_))
}

fn body(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

// ConnectWise (psa-apis.md 1.6; field names of connectwise/models.rs, camelCase).

const CW_MEMBER: &[&str] =
    &["identifier", "firstName", "lastName", "primaryEmail", "securityRole", "inactiveFlag", "_info"];
const CW_COMPANY: &[&str] = &[
    "identifier",
    "name",
    "status",
    "types",
    "phoneNumber",
    "website",
    "addressLine1",
    "addressLine2",
    "city",
    "state",
    "zip",
    "deletedFlag",
    "_info",
];
const CW_CONTACT: &[&str] = &[
    "firstName",
    "lastName",
    "title",
    "company",
    "inactiveFlag",
    "types",
    "defaultPhoneType",
    "defaultPhoneNbr",
    "communicationItems",
    "_info",
];
const CW_CATALOG: &[&str] = &[
    "identifier",
    "description",
    "type",
    "category",
    "subcategory",
    "billableOption",
    "price",
    "inactiveFlag",
    "_info",
];
const CW_ACTIVITY: &[&str] = &[
    "name",
    "type",
    "status",
    "company",
    "contact",
    "opportunity",
    "assignTo",
    "dateStart",
    "dateEnd",
    "notes",
    "_info",
];
const CW_OPPORTUNITY: &[&str] = &[
    "name",
    "status",
    "stage",
    "type",
    "expectedCloseDate",
    "primarySalesRep",
    "company",
    "contact",
    "notes",
    "_info",
];
const CW_FORECAST_ITEM: &[&str] =
    &["id", "forecastType", "productDescription", "forecastDescription", "quantity", "revenue", "cost", "includeFlag"];

fn cw_stage() -> impl Strategy<Value = (Stage, Fields, Fits)> {
    select(vec![
        (Stage::Users, CW_MEMBER, is_user as Fits),
        (Stage::Companies, CW_COMPANY, is_company),
        (Stage::Contacts, CW_CONTACT, is_contact),
        (Stage::Solutions, CW_CATALOG, is_solution),
        (Stage::Activities, CW_ACTIVITY, is_activity),
        (Stage::Opportunities, CW_OPPORTUNITY, is_opportunity),
    ])
}

fn cw_lookups() -> Lookups {
    Lookups { inactive_company_statuses: HashSet::from([1, 2, 3]), closed_activity_statuses: HashSet::from([1, 2, 3]) }
}

// HaloPSA (psa-apis.md 2.3/2.4; halo/models.rs, lower-case keys).

const HALO_AGENT: &[&str] = &["name", "firstname", "surname", "email", "isdisabled", "roles"];
const HALO_CLIENT: &[&str] =
    &["name", "inactive", "customertype", "main_phonenumber", "website", "address", "alastupdate"];
const HALO_USER: &[&str] = &[
    "name",
    "firstname",
    "surname",
    "title",
    "emailaddress",
    "phonenumber",
    "mobilenumber",
    "client_id",
    "inactive",
    "ulastupdate",
];
const HALO_OPPORTUNITY: &[&str] = &[
    "summary",
    "details",
    "status_id",
    "client_id",
    "user_id",
    "agent_id",
    "oppvalue",
    "targetdate",
    "deadlinedate",
    "last_update",
    "deleted",
];
const HALO_NOTE: &[&str] = &["client_id", "user_id", "who_agentid", "datetime", "note"];
const HALO_ACTION: &[&str] = &["ticket_id", "outcome", "who_agentid", "datetime", "note", "last_updated"];

fn halo_stage() -> impl Strategy<Value = (Stage, Fields, Fits)> {
    select(vec![
        (Stage::Users, HALO_AGENT, is_user as Fits),
        (Stage::Companies, HALO_CLIENT, is_company),
        (Stage::Contacts, HALO_USER, is_contact),
        (Stage::Opportunities, HALO_OPPORTUNITY, is_opportunity),
        (Stage::Activities, HALO_NOTE, is_activity),
    ])
}

/// A bare array, or the `{record_count, <key>: [...]}` envelope (psa-apis.md 2.3).
fn halo_body(key: &str, rows: Vec<Value>, envelope: bool, count: Value) -> Value {
    if envelope { json!({ "record_count": count, key: rows }) } else { Value::Array(rows) }
}

// Syncro (psa-apis.md 3.4; syncro/models.rs, snake_case keys).

const SYNCRO_CUSTOMER: &[&str] = &[
    "firstname",
    "lastname",
    "business_name",
    "business_then_name",
    "email",
    "phone",
    "address",
    "address_2",
    "city",
    "state",
    "zip",
    "disabled",
    "updated_at",
];
const SYNCRO_CONTACT: &[&str] = &["name", "email", "phone", "mobile", "title", "customer_id", "updated_at"];
const SYNCRO_LEAD: &[&str] = &[
    "first_name",
    "last_name",
    "business_then_name",
    "status",
    "customer_id",
    "contact_id",
    "user_id",
    "opportunity_amount_dollars",
    "ticket_description",
    "updated_at",
];
const SYNCRO_USER: &[&str] = &["email", "full_name", "group", "admin", "updated_at"];

fn syncro_stage() -> impl Strategy<Value = (Stage, &'static str, Fields, Fits)> {
    select(vec![
        (Stage::Companies, "customers", SYNCRO_CUSTOMER, is_company as Fits),
        (Stage::Contacts, "contacts", SYNCRO_CONTACT, is_contact),
        (Stage::Opportunities, "leads", SYNCRO_LEAD, is_opportunity),
    ])
}

// Salesforce (salesforce-api.md 2.x; salesforce/models.rs, PascalCase API names).

const SF_USER: &[&str] = &["Email", "FirstName", "LastName", "IsActive", "ProfileId", "LastModifiedDate"];
const SF_ACCOUNT: &[&str] = &[
    "Name",
    "Phone",
    "Website",
    "Type",
    "BillingStreet",
    "BillingCity",
    "BillingState",
    "BillingPostalCode",
    "BillingCountry",
    "IsDeleted",
    "LastModifiedDate",
];
const SF_CONTACT: &[&str] =
    &["FirstName", "LastName", "Email", "Phone", "Title", "AccountId", "LastModifiedDate", "Contact_Status__c"];
const SF_OPPORTUNITY: &[&str] =
    &["Name", "StageName", "CloseDate", "Amount", "Type", "OwnerId", "AccountId", "Description", "LastModifiedDate"];
const SF_TASK: &[&str] = &[
    "Subject",
    "Description",
    "TaskSubtype",
    "WhoId",
    "AccountId",
    "CreatedById",
    "ActivityDate",
    "IsClosed",
    "LastModifiedDate",
];
const SF_EVENT: &[&str] = &[
    "Subject",
    "Description",
    "WhoId",
    "AccountId",
    "CreatedById",
    "StartDateTime",
    "EndDateTime",
    "LastModifiedDate",
];

fn sf_stage() -> impl Strategy<Value = (Stage, &'static str, Fields, Fits)> {
    select(vec![
        (Stage::Users, "User", SF_USER, is_user as Fits),
        (Stage::Companies, "Account", SF_ACCOUNT, is_company),
        (Stage::Contacts, "Contact", SF_CONTACT, is_contact),
        (Stage::Opportunities, "Opportunity", SF_OPPORTUNITY, is_opportunity),
        (Stage::Activities, "Task", SF_TASK, is_activity),
        (Stage::Activities, "Event", SF_EVENT, is_activity),
    ])
}

/// A Salesforce id (15 or 18 characters), or text that is not one.
fn sf_id() -> impl Strategy<Value = Value> {
    prop_oneof![4 => "00[0-9A-Za-z]{13}([0-9A-Za-z]{3})?", 1 => text()].prop_map(Value::String)
}

/// A query result page (salesforce-api.md 2.3) whose records carry `attributes.type`.
fn sf_body(object: &str, mut rows: Vec<Value>, done: bool) -> Value {
    for row in &mut rows {
        if let Value::Object(m) = row {
            m.entry("attributes").or_insert_with(|| json!({ "type": object, "url": "/services/data/v62.0/x" }));
        }
    }
    let mut page = json!({ "totalSize": rows.len(), "done": done, "records": rows });
    if !done {
        page["nextRecordsUrl"] = json!("/services/data/v62.0/query/01gx-2000");
    }
    page
}

/// Each system's page generator: a stage, the check of its records, and the page's rows
/// generated for that stage.
fn cw_page() -> impl Strategy<Value = (Stage, Fits, Vec<Value>)> {
    cw_stage()
        .prop_flat_map(|(stage, fields, fits)| (Just(stage), Just(fits), records(record(fields, "id", numeric_id()))))
}

fn halo_page() -> impl Strategy<Value = (Stage, Fits, Vec<Value>, bool, Value)> {
    halo_stage().prop_flat_map(|(stage, fields, fits)| {
        (Just(stage), Just(fits), records(record(fields, "id", numeric_id())), any::<bool>(), leaf())
    })
}

fn syncro_page() -> impl Strategy<Value = (Stage, &'static str, Fits, Vec<Value>, Value)> {
    syncro_stage().prop_flat_map(|(stage, key, fields, fits)| {
        (Just(stage), Just(key), Just(fits), records(record(fields, "id", numeric_id())), json())
    })
}

fn sf_page() -> impl Strategy<Value = (Stage, &'static str, Fits, Vec<Value>, bool)> {
    sf_stage().prop_flat_map(|(stage, object, fields, fits)| {
        (Just(stage), Just(object), Just(fits), records(record(fields, "Id", sf_id())), any::<bool>())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn connectwise_pages_of_any_json_in_its_shape_map_every_record_or_mark_it_unreadable(
        (stage, fits, rows) in cw_page(),
    ) {
        let out = connectwise::parse_page_with(stage, &body(&Value::Array(rows.clone())), &cw_lookups());
        prop_assert!(out.is_ok(), "one record never fails the page: {:?}", out);
        each_fits(&out.unwrap(), rows.len(), fits)?;
    }

    #[test]
    fn a_connectwise_forecast_of_any_json_in_its_shape_never_panics(
        items in records(record(CW_FORECAST_ITEM, "id", numeric_id())),
        id in leaf(),
    ) {
        let raw = json!({ "id": id, "forecastItems": items });
        if let Ok(forecast) = serde_json::from_value::<Forecast>(raw) {
            let page = connectwise::parse_page(Stage::Opportunities, br#"[{"id": 1}]"#).unwrap();
            let Some(ExternalRecord::Opportunity(mut o)) = page.into_iter().next() else {
                return Err(TestCaseError::fail("an opportunity with an id maps"));
            };
            connectwise::mapping::apply_forecast(&mut o, &forecast);
            prop_assert_eq!(o.line_items.len(), forecast.forecast_items.len());
        }
    }

    #[test]
    fn halo_pages_of_any_json_in_its_shape_map_every_record_or_mark_it_unreadable(
        (stage, fits, rows, envelope, count) in halo_page(),
    ) {
        let sent = halo_body(halo::mapping::envelope_key(stage, false), rows.clone(), envelope, count);
        let out = halo::parse_page(stage, &body(&sent));
        prop_assert!(out.is_ok(), "one record never fails the page: {:?}", out);
        each_fits(&out.unwrap(), rows.len(), fits)?;
    }

    #[test]
    fn halo_actions_of_any_json_in_their_shape_map_every_record_or_mark_it_unreadable(
        rows in records(record(HALO_ACTION, "id", numeric_id())),
        envelope in any::<bool>(),
        tickets in prop::collection::hash_map(0i64..10, (prop::option::of(0i64..10), prop::option::of(0i64..10)), 0..5),
    ) {
        let tickets: HashMap<i64, (Option<i64>, Option<i64>)> = tickets;
        let sent = halo_body("actions", rows.clone(), envelope, Value::from(rows.len()));
        let out = halo::parse_list(Stage::Activities, &body(&sent), true, &tickets);
        prop_assert!(out.is_ok(), "one record never fails the page: {:?}", out);
        each_fits(&out.unwrap().records, rows.len(), is_activity)?;
    }

    #[test]
    fn syncro_pages_of_any_json_in_its_shape_map_every_record_or_mark_it_unreadable(
        (stage, key, fits, rows, meta) in syncro_page(),
    ) {
        let sent = json!({ key: rows, "meta": meta });
        let out = syncro::parse_page(stage, &body(&sent));
        prop_assert!(out.is_ok(), "one record never fails the page: {:?}", out);
        each_fits(&out.unwrap(), rows.len(), fits)?;
    }

    #[test]
    fn a_syncro_user_of_any_json_in_its_shape_is_a_user_or_unreadable(
        user in record(SYNCRO_USER, "id", numeric_id()),
    ) {
        let out = syncro::mapping::parse_user(&body(&json!({ "user": user })));
        prop_assert!(out.is_ok(), "{:?}", out);
        each_fits(&[out.unwrap()], 1, is_user)?;
    }

    #[test]
    fn salesforce_pages_of_any_json_in_its_shape_map_every_record_or_mark_it_unreadable(
        (stage, object, fits, rows, done) in sf_page(),
    ) {
        let out = salesforce::parse_page(stage, &body(&sf_body(object, rows.clone(), done)));
        prop_assert!(out.is_ok(), "one record never fails the page: {:?}", out);
        each_fits(&out.unwrap(), rows.len(), fits)?;
    }

    #[test]
    fn activity_dates_of_any_text_map_or_mark_the_activity_unreadable_in_every_system(
        dates in prop::collection::vec(text(), 3),
        object in select(vec!["Task", "Event"]),
    ) {
        let (a, b, c) = (&dates[0], &dates[1], &dates[2]);
        let row = json!({ "Id": "00T000000000001AAA", "ActivityDate": a, "StartDateTime": b, "EndDateTime": c });
        let out = salesforce::parse_page(Stage::Activities, &body(&sf_body(object, vec![row], true))).unwrap();
        each_fits(&out, 1, is_activity)?;
        let out = connectwise::parse_page(Stage::Activities, &body(&json!([{ "id": 1, "dateStart": a }]))).unwrap();
        each_fits(&out, 1, is_activity)?;
        let out = halo::parse_page(Stage::Activities, &body(&json!([{ "id": 1, "datetime": b }]))).unwrap();
        each_fits(&out, 1, is_activity)?;
    }

    #[test]
    fn any_json_body_at_all_is_a_page_or_an_error_never_a_panic(
        sent in json(),
        stage in select(Stage::ALL.to_vec()),
    ) {
        let raw = body(&sent);
        let _ = connectwise::parse_page_with(stage, &raw, &cw_lookups());
        let _ = halo::parse_page(stage, &raw);
        let _ = halo::parse_list(stage, &raw, true, &HashMap::new());
        let _ = syncro::parse_page(stage, &raw);
        let _ = salesforce::parse_page(stage, &raw);
    }
}
