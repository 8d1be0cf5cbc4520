//! The AWS adapters against a real moto server: the shared conformance suites for the
//! table and the secret store, the secret cache, the SQS FIFO behaviour the stage queue
//! relies on (deduplication, order, redelivery, dead-lettering) and EventBridge delivery.
//!
//! Needs `AWS_ENDPOINT_URL` pointing at moto (the project's test script starts one and
//! exports it with dummy credentials); without it every test fails saying so. Every test
//! creates resources under its own unique names, so they run in parallel on one server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, SdkConfig};
use tandem_aws::{
    DynamoTable, EventBridgePublisher, QueueSettings, ReceivedMessage, SecretsManagerStore, SqsWorkQueue,
    create_queues_if_missing, create_table_if_missing,
};
use tandem_domain::external::Cursor;
use tandem_domain::ids::{JobId, RecordKind, Stage, System, TenantId};
use tandem_domain::job::StageMessage;
use tandem_domain::log::{Direction, LogEntry, Outcome};
use tandem_domain::normalise::Timestamp;
use tandem_domain::ports::{
    Condition, EventPublisher, Item, SecretError, SecretStore, StoreError, Table, WorkQueue, Write,
};
use tandem_domain::secret::{ConnectWiseCredentials, Credentials, SecretString};
use tandem_domain::work::Work;
use tandem_embedded::conformance::{self, unique};

const HOW_TO_START_MOTO: &str = "these tests need a moto server: start one with \
    `.venv-ci/bin/moto_server -H 127.0.0.1 -p 4566 &` and export AWS_ENDPOINT_URL=http://127.0.0.1:4566 \
    AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
    (the project's test script does both)";

/// The SDK configuration for moto; fails the test when no endpoint is set.
async fn moto() -> SdkConfig {
    for var in ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
        if std::env::var_os(var).is_none_or(|v| v.is_empty()) {
            panic!("{var} is not set: {HOW_TO_START_MOTO}");
        }
    }
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

async fn table() -> DynamoTable {
    let client = aws_sdk_dynamodb::Client::new(&moto().await);
    let name = unique("table");
    create_table_if_missing(&client, &name).await.unwrap();
    DynamoTable::new(client, name)
}

async fn queues(settings: QueueSettings) -> (SqsWorkQueue, SqsWorkQueue) {
    let client = aws_sdk_sqs::Client::new(&moto().await);
    let urls = create_queues_if_missing(&client, &unique("q"), &settings).await.unwrap();
    (SqsWorkQueue::new(client.clone(), urls.queue_url), SqsWorkQueue::new(client, urls.dlq_url))
}

fn creds(private_key: &str) -> Credentials {
    Credentials::ConnectWise(ConnectWiseCredentials {
        site: "https://api-na.myconnectwise.net".into(),
        company_id: "acme".into(),
        public_key: "public".into(),
        private_key: SecretString::new(private_key),
        client_id: "client".into(),
    })
}

fn message(tenant: &str, position: &str) -> Work {
    Work::ImportPage(StageMessage {
        tenant: TenantId::parse(tenant).unwrap(),
        system: System::ConnectWise,
        job_id: JobId::from_raw("job-1"),
        stage: Stage::Companies,
        cursor: Cursor { position: position.into(), since: None },
        attempt: 0,
        dry_run: false,
    })
}

fn body_of(m: &ReceivedMessage) -> Work {
    Work::decode(&m.body).unwrap()
}

fn page_of(m: &ReceivedMessage) -> StageMessage {
    body_of(m).import_page().unwrap().clone()
}

/// Receives until `want` messages arrived (deleting each) or `within` passed.
async fn drain(queue: &SqsWorkQueue, want: usize, within: Duration) -> Vec<ReceivedMessage> {
    let start = Instant::now();
    let mut got = Vec::new();
    while got.len() < want && start.elapsed() < within {
        for m in queue.receive(10, Duration::from_secs(1)).await.unwrap() {
            queue.delete(&m.receipt_handle).await.unwrap();
            got.push(m);
        }
    }
    got
}

// ---- DynamoDB

#[tokio::test]
async fn the_dynamo_table_passes_the_conformance_suite() {
    conformance::table_suite(Arc::new(table().await)).await;
}

#[tokio::test]
async fn a_preview_view_over_the_dynamo_table_passes_the_conformance_suite() {
    let view = tandem_domain::overlay::Overlay::new(Arc::new(table().await), "moto", 4_000_000_000);
    conformance::table_suite(Arc::new(view)).await;
}

#[tokio::test]
async fn creating_the_table_again_leaves_it_and_its_items_alone() {
    let table = table().await;
    let client = aws_sdk_dynamodb::Client::new(&moto().await);
    let item = Item {
        pk: "p".into(),
        sk: "s".into(),
        version: 1,
        gsi1: None,
        expires_at: None,
        body: serde_json::json!({ "kept": true }),
    };
    table.transact(vec![Write::Put { item: item.clone(), condition: Condition::NotExists }]).await.unwrap();
    create_table_if_missing(&client, table.table_name()).await.unwrap();
    assert_eq!(table.get("p", "s").await.unwrap(), Some(item));
    let ttl = client.describe_time_to_live().table_name(table.table_name()).send().await.unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"), "TTL is on expires_at");
}

#[tokio::test]
async fn a_missing_table_is_a_retryable_error_that_says_what_is_missing() {
    let client = aws_sdk_dynamodb::Client::new(&moto().await);
    let table = DynamoTable::new(client, unique("absent"));
    let err = table.get("p", "s").await.unwrap_err();
    assert!(matches!(&err, StoreError::Unavailable(m) if m.contains("ResourceNotFoundException")), "{err}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_single_conditional_put_that_fails_names_the_item() {
    let table = table().await;
    let item =
        Item { pk: "tenant#conn#x".into(), sk: "C".into(), version: 1, gsi1: None, expires_at: None, body: 1.into() };
    let put = || vec![Write::Put { item: item.clone(), condition: Condition::NotExists }];
    table.transact(put()).await.unwrap();
    let err = table.transact(put()).await.unwrap_err();
    assert!(matches!(&err, StoreError::Conflict(m) if m.contains("tenant#conn#x")), "{err}");
}

#[tokio::test]
async fn a_cancelled_transaction_names_only_the_item_whose_condition_failed() {
    let table = table().await;
    let item = |pk: &str, version| Item {
        pk: pk.into(),
        sk: "R".into(),
        version,
        gsi1: None,
        expires_at: None,
        body: serde_json::json!({}),
    };
    let setup = vec![
        Write::Put { item: item("fresh-one", 1), condition: Condition::None },
        Write::Put { item: item("stale-one", 3), condition: Condition::None },
    ];
    table.transact(setup).await.unwrap();
    let writes = vec![
        Write::Put { item: item("new-one", 1), condition: Condition::NotExists },
        Write::Put { item: item("fresh-one", 2), condition: Condition::VersionIs(1) },
        Write::Put { item: item("stale-one", 3), condition: Condition::VersionIs(2) },
    ];
    match table.transact(writes).await {
        Err(StoreError::Conflict(msg)) => {
            assert!(msg.contains("stale-one") && msg.contains("version 2"), "{msg}");
            assert!(!msg.contains("new-one") && !msg.contains("fresh-one"), "only the failed item is named: {msg}");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(table.get("new-one", "R").await.unwrap(), None);
    assert_eq!(table.get("fresh-one", "R").await.unwrap().map(|i| i.version), Some(1));
}

#[tokio::test]
async fn an_expired_item_can_be_written_again_as_new() {
    let table = table().await;
    let past = 1_000;
    let item = |expires_at| Item {
        pk: "log".into(),
        sk: "E".into(),
        version: 1,
        gsi1: None,
        expires_at,
        body: serde_json::json!({}),
    };
    table.transact(vec![Write::Put { item: item(Some(past)), condition: Condition::None }]).await.unwrap();
    assert_eq!(table.get("log", "E").await.unwrap(), None);
    table.transact(vec![Write::Put { item: item(None), condition: Condition::NotExists }]).await.unwrap();
    assert_eq!(table.get("log", "E").await.unwrap(), Some(item(None)));
}

// ---- Secrets Manager

#[tokio::test]
async fn the_secrets_manager_store_passes_the_conformance_suite() {
    let client = aws_sdk_secretsmanager::Client::new(&moto().await);
    let store = SecretsManagerStore::new(client, format!("tandem/{}", unique("secrets")));
    conformance::secret_suite(Arc::new(store)).await;
}

#[tokio::test]
async fn a_secret_changed_behind_the_store_is_seen_only_after_invalidate() {
    let client = aws_sdk_secretsmanager::Client::new(&moto().await);
    let store = SecretsManagerStore::new(client.clone(), "tandem/connections/");
    let tenant = TenantId::parse(&unique("cache")).unwrap();
    let name = store.put(&tenant, System::ConnectWise, &creds("old")).await.unwrap();
    assert_eq!(name, format!("tandem/connections/{tenant}/connectwise"));
    assert_eq!(store.get(&tenant, System::ConnectWise).await.unwrap(), creds("old"));

    let rotated = serde_json::to_string(&creds("rotated")).unwrap();
    client.put_secret_value().secret_id(&name).secret_string(rotated).send().await.unwrap();
    assert_eq!(store.get(&tenant, System::ConnectWise).await.unwrap(), creds("old"), "the cached copy is served");
    store.invalidate(&tenant, System::ConnectWise).await;
    assert_eq!(store.get(&tenant, System::ConnectWise).await.unwrap(), creds("rotated"), "invalidate re-reads");

    // A fresh store (a new execution environment) reads the current value at once.
    let fresh = SecretsManagerStore::new(client, "tandem/connections");
    assert_eq!(fresh.get(&tenant, System::ConnectWise).await.unwrap(), creds("rotated"));
}

#[tokio::test]
async fn a_secret_that_is_not_credentials_is_refused_without_showing_it() {
    let client = aws_sdk_secretsmanager::Client::new(&moto().await);
    let store = SecretsManagerStore::new(client.clone(), "tandem/connections");
    let tenant = TenantId::parse(&unique("bad")).unwrap();
    let name = store.secret_name(&tenant, System::ConnectWise);
    let value = r#"{"system":"connectwise","private_key":"TOPSECRET"}"#;
    client.create_secret().name(&name).secret_string(value).send().await.unwrap();
    match store.get(&tenant, System::ConnectWise).await {
        Err(SecretError::Unavailable(msg)) => {
            assert!(msg.contains(&name) && !msg.contains("TOPSECRET"), "{msg}")
        }
        other => panic!("expected an unreadable secret, got {other:?}"),
    }
}

// ---- SQS

#[tokio::test]
async fn two_messages_with_one_dedup_id_are_delivered_once() {
    let (queue, _) = queues(QueueSettings::default()).await;
    let tenant = unique("dedup");
    queue.send(&message(&tenant, "page-2")).await.unwrap();
    queue.send(&message(&tenant, "page-2")).await.unwrap();
    queue.send(&message(&tenant, "page-3")).await.unwrap();
    let got = drain(&queue, 3, Duration::from_secs(3)).await;
    let positions: Vec<String> = got.iter().map(|m| page_of(m).cursor.position).collect();
    assert_eq!(positions, ["page-2", "page-3"], "the duplicate was dropped");
}

#[tokio::test]
async fn a_message_travels_as_versioned_work_json() {
    let (queue, _) = queues(QueueSettings::default()).await;
    let sent = message(&unique("versioned"), "page-1");
    queue.send(&sent).await.unwrap();
    let got = drain(&queue, 1, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 1);
    let json: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!((json["v"].as_u64(), json["kind"].as_str()), (Some(1), Some("import_page")), "{json}");
    assert_eq!(body_of(&got[0]), sent);
}

#[tokio::test]
async fn a_cursor_too_long_for_a_dedup_id_still_deduplicates() {
    let (queue, _) = queues(QueueSettings::default()).await;
    let tenant = unique("long");
    let long = format!("https://example.com/api?after={}&note=with spaces", "x".repeat(300));
    assert!(message(&tenant, &long).dedup_id().len() > 128);
    queue.send(&message(&tenant, &long)).await.unwrap();
    queue.send(&message(&tenant, &long)).await.unwrap();
    queue.send(&message(&tenant, &format!("{long}y"))).await.unwrap();
    let got = drain(&queue, 3, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 2, "one of the two equal messages was dropped");
    assert_eq!(body_of(&got[0]), message(&tenant, &long), "the body carries the whole cursor");
}

#[tokio::test]
async fn messages_of_one_group_arrive_in_the_order_sent() {
    let (queue, _) = queues(QueueSettings::default()).await;
    let (a, b) = (unique("ordera"), unique("orderb"));
    for n in 0..5 {
        queue.send(&message(&a, &format!("a{n}"))).await.unwrap();
        queue.send(&message(&b, &format!("b{n}"))).await.unwrap();
    }
    let got = drain(&queue, 10, Duration::from_secs(5)).await;
    let of = |tenant: &str| -> Vec<String> {
        got.iter().map(page_of).filter(|m| m.tenant.as_str() == tenant).map(|m| m.cursor.position).collect()
    };
    assert_eq!(of(&a), ["a0", "a1", "a2", "a3", "a4"]);
    assert_eq!(of(&b), ["b0", "b1", "b2", "b3", "b4"]);
}

#[tokio::test]
async fn a_deleted_message_is_not_delivered_again() {
    let settings = QueueSettings { visibility_timeout: Duration::from_secs(1), ..QueueSettings::default() };
    let (queue, _) = queues(settings).await;
    queue.send(&message(&unique("delete"), "p1")).await.unwrap();
    let got = queue.receive(10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].receive_count, 1);
    queue.delete(&got[0].receipt_handle).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(queue.receive(10, Duration::from_secs(1)).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_message_not_deleted_comes_back_after_the_visibility_timeout() {
    let settings = QueueSettings { visibility_timeout: Duration::from_secs(1), ..QueueSettings::default() };
    let (queue, _) = queues(settings).await;
    queue.send(&message(&unique("again"), "p1")).await.unwrap();
    let first = queue.receive(10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(queue.receive(10, Duration::ZERO).await.unwrap().is_empty(), "hidden while in flight");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let second = queue.receive(10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(second.len(), 1, "redelivered after the visibility timeout");
    assert_eq!(second[0].message_id, first[0].message_id);
    assert_eq!(second[0].body, first[0].body);
    assert_eq!(second[0].receive_count, 2);
    queue.delete(&second[0].receipt_handle).await.unwrap();
}

#[tokio::test]
async fn a_message_received_too_often_moves_to_the_dead_letter_queue() {
    let settings = QueueSettings { visibility_timeout: Duration::from_secs(1), max_receive_count: 2 };
    let (queue, dlq) = queues(settings).await;
    let sent = message(&unique("dlq"), "poison");
    queue.send(&sent).await.unwrap();
    let mut receives = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(8) {
        let got = queue.receive(10, Duration::from_secs(1)).await.unwrap();
        if got.is_empty() && receives >= 2 {
            break;
        }
        receives += got.len();
        tokio::time::sleep(Duration::from_millis(1_100)).await;
    }
    assert_eq!(receives, 2, "delivered maxReceiveCount times, then no more");
    let dead = drain(&dlq, 1, Duration::from_secs(3)).await;
    assert_eq!(dead.len(), 1, "the message is in the dead-letter queue");
    assert_eq!(body_of(&dead[0]), sent);
}

#[tokio::test]
async fn creating_the_queues_again_finds_them_and_applies_new_settings() {
    let client = aws_sdk_sqs::Client::new(&moto().await);
    let prefix = unique("again");
    let first = create_queues_if_missing(&client, &prefix, &QueueSettings::default()).await.unwrap();
    let settings = QueueSettings { visibility_timeout: Duration::from_secs(7), max_receive_count: 3 };
    let second = create_queues_if_missing(&client, &prefix, &settings).await.unwrap();
    assert_eq!(first, second);
    assert!(first.queue_url.ends_with(&format!("{prefix}.fifo")) && first.dlq_url.ends_with("-dlq.fifo"));
    let attrs = client
        .get_queue_attributes()
        .queue_url(&second.queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    let get = |name: &str| attrs.get(&aws_sdk_sqs::types::QueueAttributeName::from(name)).cloned().unwrap_or_default();
    assert_eq!(get("VisibilityTimeout"), "7");
    assert!(
        get("RedrivePolicy").contains('3') && get("RedrivePolicy").contains("-dlq.fifo"),
        "{}",
        get("RedrivePolicy")
    );
}

// ---- EventBridge

fn failure(tenant: &TenantId) -> tandem_domain::events::FailureEvent {
    tandem_domain::events::FailureEvent::of(&failed_entry(tenant), &tandem_domain::usecases::Tuning::default())
}

fn failed_entry(tenant: &TenantId) -> LogEntry {
    LogEntry {
        id: "job-1:companies:42".into(),
        tenant: tenant.clone(),
        at: Timestamp::from_unix(1_750_000_000).unwrap(),
        system: System::ConnectWise,
        direction: Direction::Import,
        object: RecordKind::Company,
        crm_id: None,
        external_id: Some("42".into()),
        outcome: Outcome::Failed("ConnectWise said no".into()),
        job_id: Some(JobId::from_raw("job-1")),
        matched: None,
        fields: Vec::new(),
        conflicts: Vec::new(),
        error: None,
    }
}

#[tokio::test]
async fn a_published_failure_reaches_the_queue_a_rule_targets() {
    let config = moto().await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let bus = unique("bus");
    let rule = unique("rule");
    let queue_url = sqs.create_queue().queue_name(unique("events")).send().await.unwrap().queue_url.unwrap();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()
        .remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .unwrap();
    events.create_event_bus().name(&bus).send().await.unwrap();
    let pattern = serde_json::json!({ "source": ["tandem"], "detail-type": ["record.failed"] });
    events.put_rule().name(&rule).event_bus_name(&bus).event_pattern(pattern.to_string()).send().await.unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder().id("queue").arn(queue_arn).build().unwrap();
    events.put_targets().rule(&rule).event_bus_name(&bus).targets(target).send().await.unwrap();

    let tenant = TenantId::parse(&unique("events")).unwrap();
    let entry = failure(&tenant);
    EventBridgePublisher::new(events, &bus).failed(&entry).await;

    let queue = SqsWorkQueue::new(sqs, queue_url);
    let got = drain(&queue, 1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1, "the event reached the queue");
    let event: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(event["source"], "tandem");
    assert_eq!(event["detail-type"], "record.failed");
    let detail: tandem_domain::events::FailureEvent = serde_json::from_value(event["detail"].clone()).unwrap();
    assert_eq!(detail, entry, "the detail is the failure event");
}

#[tokio::test]
async fn a_failure_to_publish_is_reported_by_publish_and_only_logged_by_failed() {
    let events = aws_sdk_eventbridge::Client::new(&moto().await);
    let publisher = EventBridgePublisher::new(events, unique("nobus"));
    let entry = failure(&TenantId::parse(&unique("nobus")).unwrap());
    publisher.failed(&entry).await;
    assert!(publisher.publish(&entry).await.is_err(), "a bus that does not exist refuses the event");
}
