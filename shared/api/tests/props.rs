//! Property tests of what faces the outside: any method, path, query, body and tenant
//! the API can be sent is answered with a JSON status (never a panic, never a 5xx), and
//! the parsers of tenant ids, paging tokens and request bodies refuse what they must.

#![allow(clippy::unwrap_used)] // tests

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use tandem_api::{ApiRequest, handle};
use tandem_connectors::Connectors;
use tandem_connectors::http::Settings;
use tandem_domain::ports::StoreError;
use tandem_domain::usecases::{Services, Tuning};
use tandem_domain::{RecordKind, TenantId};
use tandem_embedded::{Embedded, QueueConfig};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap())
}

fn services() -> &'static Services {
    static SVC: OnceLock<Services> = OnceLock::new();
    SVC.get_or_init(|| {
        let e = Embedded::in_memory(QueueConfig::default());
        Services {
            store: e.record_store(),
            queue: e.queue.clone(),
            secrets: e.secrets.clone(),
            connectors: Arc::new(Connectors::new(Settings {
                pacing: tandem_connectors::Pacing::Off,
                ..Settings::default()
            })),
            clock: Arc::new(tandem_domain::ports::SystemClock),
            events: e.events.clone(),
            snapshots: e.snapshots.clone(),
            tuning: Tuning::default(),
            meter: Default::default(),
        }
    })
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("connections".to_string()),
        Just("connectwise".to_string()),
        Just("halo".to_string()),
        Just("mappings".to_string()),
        Just("imports".to_string()),
        Just("options".to_string()),
        Just("roles".to_string()),
        Just("companies".to_string()),
        Just("jobs".to_string()),
        Just("resume".to_string()),
        Just("cancel".to_string()),
        Just("records".to_string()),
        Just("company".to_string()),
        Just("logs".to_string()),
        "[a-z0-9%.:_-]{0,12}",
        any::<String>(),
    ]
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        prop_oneof![Just("all".to_string()), Just("users".to_string()), any::<String>()]
            .prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("stages".to_string()),
                    Just("site".to_string()),
                    Just("private_key".to_string()),
                    Just("company_types".to_string()),
                    any::<String>()
                ],
                inner,
                0..4
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()), prop::collection::vec(any::<u8>(), 0..64)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_request_gets_a_json_answer_and_never_a_server_error(
        method in prop_oneof![
            Just("GET".to_string()), Just("POST".to_string()), Just("PUT".to_string()),
            Just("PATCH".to_string()), Just("DELETE".to_string()), "[A-Z]{1,7}"
        ],
        path in prop::collection::vec(segment(), 0..5),
        query in prop::collection::btree_map(
            prop_oneof![Just("after".to_string()), Just("limit".to_string()), Just("outcome".to_string()),
                        Just("since".to_string()), Just("until".to_string()), any::<String>()],
            any::<String>(), 0..3),
        body in body(),
        tenant in prop_oneof![Just(Some("acme".to_string())), Just(None), any::<String>().prop_map(Some)],
    ) {
        let req = ApiRequest {
            method,
            path: format!("/{}", path.join("/")),
            query: query.into_iter().collect::<BTreeMap<_, _>>(),
            body,
            tenant,
        };
        let resp = runtime().block_on(handle(services(), req.clone()));
        prop_assert!(resp.status < 500, "{:?} -> {} {}", req, resp.status, resp.body);
        if resp.status >= 400 {
            prop_assert!(resp.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", resp.body);
        }
    }

    #[test]
    fn a_tenant_id_is_accepted_only_when_plain_and_short(raw in any::<String>()) {
        match TenantId::parse(&raw) {
            Ok(t) => {
                prop_assert!(!raw.is_empty() && raw.len() <= 64);
                prop_assert!(t.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
            }
            Err(e) => prop_assert!(e.to_string().contains("tenant id")),
        }
    }

    #[test]
    fn a_paging_token_is_either_one_the_store_issued_or_the_callers_error(after in any::<String>()) {
        let svc = services();
        let t = TenantId::parse("acme").unwrap();
        match runtime().block_on(svc.store.records(&t, RecordKind::Company, Some(after), 10)) {
            Ok(_) | Err(StoreError::InvalidToken(_)) => {}
            Err(e) => prop_assert!(false, "a token is never a server error: {e:?}"),
        }
    }
}
