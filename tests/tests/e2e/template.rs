//! The SAM template checked against the code: every function package has its resource,
//! every environment variable the code reads is set on it, and the queues and event
//! sources are wired the way the handlers expect.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn template() -> Yaml {
    let text = std::fs::read_to_string(root().join("infra/template.yaml")).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

fn function_packages() -> BTreeSet<String> {
    std::fs::read_dir(root().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|name| name != "local")
        .collect()
}

fn functions(t: &Yaml) -> Vec<(String, Yaml)> {
    t["Resources"]
        .as_hash()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(k, r)| (k.as_str().unwrap().to_string(), r.clone()))
        .collect()
}

fn env_names(node: &Yaml) -> BTreeSet<String> {
    node["Environment"]["Variables"]
        .as_hash()
        .map(|h| h.keys().filter_map(|k| k.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn events_of(r: &Yaml, kind: &str) -> Vec<Yaml> {
    r["Properties"]["Events"]
        .as_hash()
        .map(|h| h.values().filter(|e| e["Type"].as_str() == Some(kind)).cloned().collect())
        .unwrap_or_default()
}

#[test]
fn every_function_package_has_exactly_one_resource_built_from_it() {
    let t = template();
    let built: Vec<String> = functions(&t)
        .iter()
        .map(|(name, r)| {
            assert_eq!(r["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{name}");
            r["Metadata"]["BuildProperties"]["Binary"].as_str().expect("a Binary build property").to_string()
        })
        .collect();
    let unique: BTreeSet<String> = built.iter().cloned().collect();
    assert_eq!(unique.len(), built.len(), "a package is built twice: {built:?}");
    assert_eq!(unique, function_packages());
}

#[test]
fn every_environment_variable_the_code_reads_is_set_on_each_function() {
    let t = template();
    let globals = env_names(&t["Globals"]["Function"]);
    for (name, r) in functions(&t) {
        let mut set = globals.clone();
        set.extend(env_names(&r["Properties"]));
        let mut needed: Vec<&str> = tandem_lambda::config::CORE_VARS.to_vec();
        // The tenant claim is read by the functions behind the JWT authorizer (the webhook
        // intake has none: its calls name no tenant).
        if events_of(&r, "HttpApi").iter().any(|e| e["Properties"]["Auth"]["Authorizer"].as_str() != Some("NONE")) {
            needed.extend(tandem_lambda::config::HTTP_VARS);
        }
        for var in needed {
            assert!(set.contains(var), "{name} does not set {var}");
        }
    }
}

#[test]
fn functions_run_on_arm64_al2023() {
    let t = template();
    assert_eq!(t["Globals"]["Function"]["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(t["Globals"]["Function"]["Architectures"][0].as_str(), Some("arm64"));
}

/// The variable naming the queue the function built from `binary` reads: the import
/// stages', the export's and the sync worker's.
fn queue_var_of(binary: &str) -> &'static str {
    use tandem_lambda::config::{QUEUE_URL_EXPORT, QUEUE_URL_SYNC, queue_url_var};
    if let Some(stage) = binary.strip_prefix("import-") {
        return queue_url_var(stage.parse().expect("an import-<stage> package"));
    }
    match binary {
        "export-record" => QUEUE_URL_EXPORT,
        "sync-worker" => QUEUE_URL_SYNC,
        other => panic!("{other} reads an SQS queue this test does not know"),
    }
}

/// The function resource built from `binary`.
fn function_built_from(t: &Yaml, binary: &str) -> (String, Yaml) {
    functions(t)
        .into_iter()
        .find(|(_, r)| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(binary))
        .unwrap_or_else(|| panic!("no function is built from {binary}"))
}

/// A policy statement's resources as written (`!GetAtt X.Arn` / `!Sub` keep their text).
fn statements(r: &Yaml) -> Vec<(Vec<String>, Vec<String>)> {
    let strings = |node: &Yaml| -> Vec<String> {
        match node.as_vec() {
            Some(items) => items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            None => node.as_str().map(str::to_string).into_iter().collect(),
        }
    };
    r["Properties"]["Policies"]
        .as_vec()
        .unwrap()
        .iter()
        .flat_map(|p| p["Statement"].as_vec().cloned().unwrap_or_default())
        .map(|st| (strings(&st["Action"]), strings(&st["Resource"])))
        .collect()
}

/// Every action the function's policies allow.
fn actions(r: &Yaml) -> BTreeSet<String> {
    statements(r).into_iter().flat_map(|(actions, _)| actions).collect()
}

/// The resources the function may send SQS messages to.
fn send_targets(r: &Yaml) -> BTreeSet<String> {
    statements(r)
        .into_iter()
        .filter(|(actions, _)| actions.iter().any(|a| a == "sqs:SendMessage"))
        .flat_map(|(_, resources)| resources)
        .collect()
}

#[test]
fn work_queues_are_fifo_with_dead_letters_and_outlast_their_functions() {
    let t = template();
    let default_timeout = t["Globals"]["Function"]["Timeout"].as_i64().unwrap();
    let mut sqs_functions = 0;
    for (name, r) in functions(&t) {
        for e in events_of(&r, "SQS") {
            sqs_functions += 1;
            let props = &e["Properties"];
            let types: Vec<&str> =
                props["FunctionResponseTypes"].as_vec().unwrap().iter().filter_map(|v| v.as_str()).collect();
            assert!(types.contains(&"ReportBatchItemFailures"), "{name}");
            // `!GetAtt ImportXQueue.Arn`: the loader keeps the tagged scalar's text.
            let queue_ref = props["Queue"].as_str().expect("Queue is !GetAtt <Queue>.Arn");
            let queue_name = queue_ref.trim_end_matches(".Arn");
            let queue = &t["Resources"][queue_name]["Properties"];
            assert_eq!(queue["FifoQueue"].as_bool(), Some(true), "{queue_name}");
            let timeout = r["Properties"]["Timeout"].as_i64().unwrap_or(default_timeout);
            let visibility = queue["VisibilityTimeout"].as_i64().unwrap();
            assert!(visibility > timeout, "{queue_name}: visibility {visibility} s <= {name} timeout {timeout} s");
            let dlq = queue["RedrivePolicy"]["deadLetterTargetArn"].as_str().unwrap().trim_end_matches(".Arn");
            assert_eq!(t["Resources"][dlq]["Properties"]["FifoQueue"].as_bool(), Some(true), "{dlq}");
            assert_eq!(
                queue["RedrivePolicy"]["maxReceiveCount"].as_i64(),
                Some(i64::from(tandem_lambda::stage::MAX_RECEIVE_COUNT)),
                "{queue_name}: the stage handler marks a job failed on the delivery the queue dead-letters"
            );
            let binary = r["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
            let var = queue_var_of(binary);
            assert_eq!(
                t["Globals"]["Function"]["Environment"]["Variables"][var].as_str(),
                Some(queue_name),
                "{var} must name the queue {name} reads"
            );
        }
    }
    assert_eq!(sqs_functions, 8, "six import stages, the export and the sync worker");
}

#[test]
fn the_table_has_its_index_ttl_and_point_in_time_recovery() {
    let t = template();
    let p = &t["Resources"]["Table"]["Properties"];
    assert_eq!(p["GlobalSecondaryIndexes"][0]["IndexName"].as_str(), Some("gsi1"));
    assert_eq!(p["TimeToLiveSpecification"]["AttributeName"].as_str(), Some("expires_at"));
    assert_eq!(p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(), Some(true));
}

#[test]
fn snapshots_are_private_encrypted_expire_and_only_the_http_api_reads_and_writes_them() {
    let t = template();
    let p = &t["Resources"]["SnapshotBucket"]["Properties"];
    let block = &p["PublicAccessBlockConfiguration"];
    for flag in ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"] {
        assert_eq!(block[flag].as_bool(), Some(true), "{flag}");
    }
    let sse = &p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"];
    assert_eq!(sse["SSEAlgorithm"].as_str(), Some("AES256"));
    let rule = &p["LifecycleConfiguration"]["Rules"][0];
    assert_eq!(rule["Status"].as_str(), Some("Enabled"));
    assert!(!rule["ExpirationInDays"].is_badvalue(), "snapshots expire");
    for (name, f) in functions(&t) {
        let s3: Vec<(Vec<String>, Vec<String>)> =
            statements(&f).into_iter().filter(|(actions, _)| actions.iter().any(|a| a.starts_with("s3:"))).collect();
        match f["Metadata"]["BuildProperties"]["Binary"].as_str() {
            Some("http-api") => assert_eq!(
                s3,
                vec![(
                    vec!["s3:PutObject".to_string(), "s3:GetObject".to_string()],
                    vec!["${SnapshotBucket.Arn}/*".to_string()]
                )],
                "objects of the snapshot bucket only, no listing or deleting"
            ),
            _ => assert!(s3.is_empty(), "{name} has no business with snapshots: {s3:?}"),
        }
    }
}

#[test]
fn secrets_access_is_limited_to_the_connection_prefix() {
    let text = std::fs::read_to_string(root().join("infra/template.yaml")).unwrap();
    for line in text.lines().filter(|l| l.contains(":secret:")) {
        assert!(line.contains(":secret:${SecretPrefix}/*"), "secret access wider than the prefix: {line}");
    }
    assert!(!text.contains("secretsmanager:*"));
}

#[test]
fn every_route_the_api_answers_is_an_http_event_of_exactly_one_function() {
    let t = template();
    let mut events: Vec<(String, String)> = Vec::new();
    for (_, r) in functions(&t) {
        for e in events_of(&r, "HttpApi") {
            let p = &e["Properties"];
            events.push((p["Method"].as_str().unwrap().to_string(), p["Path"].as_str().unwrap().to_string()));
        }
    }
    let unique: BTreeSet<(String, String)> = events.iter().cloned().collect();
    assert_eq!(unique.len(), events.len(), "a route is wired twice: {events:?}");
    let mut routes: BTreeSet<(String, String)> =
        tandem_api::ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    routes.insert((tandem_api::WEBHOOK_ROUTE.0.to_string(), tandem_api::WEBHOOK_ROUTE.1.to_string()));
    assert_eq!(unique, routes, "the template's HttpApi events and the API's routes differ");
}

#[test]
fn the_webhook_route_is_the_intakes_alone_and_skips_the_jwt_authorizer_every_other_route_has() {
    let t = template();
    assert_eq!(t["Resources"]["Api"]["Properties"]["Auth"]["DefaultAuthorizer"].as_str(), Some("Jwt"));
    let (method, path) = tandem_api::WEBHOOK_ROUTE;
    for (name, r) in functions(&t) {
        for e in events_of(&r, "HttpApi") {
            let p = &e["Properties"];
            let webhook = p["Method"].as_str() == Some(method) && p["Path"].as_str() == Some(path);
            let binary = r["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
            assert_eq!(webhook, binary == "webhook-intake", "{name}: {:?} {:?}", p["Method"], p["Path"]);
            assert!(tandem_api::is_webhook_path(p["Path"].as_str().unwrap()) == webhook, "{name}");
            let authorizer = p["Auth"]["Authorizer"].as_str();
            if webhook {
                assert_eq!(authorizer, Some("NONE"), "{name}: a webhook call proves itself, it has no JWT");
            } else {
                assert_eq!(authorizer, None, "{name}: only the webhook route opts out of the JWT authorizer");
            }
        }
    }
    let (_, intake) = function_built_from(&t, "webhook-intake");
    assert_eq!(events_of(&intake, "HttpApi").len(), 1, "the intake serves the webhook route only");
}

#[test]
fn the_scheduled_poll_runs_every_five_minutes_as_often_as_the_polls_overlap() {
    let t = template();
    let (name, r) = function_built_from(&t, "scheduled-sync");
    let schedules = events_of(&r, "Schedule");
    assert_eq!(schedules.len(), 1, "{name}");
    let expression = schedules[0]["Properties"]["Schedule"].as_str().unwrap();
    assert_eq!(expression, "rate(5 minutes)", "{name}");
    assert_eq!(tandem_domain::sync::POLL_OVERLAP_SECONDS, 5 * 60, "the schedule's comment and rate follow the overlap");
}

#[test]
fn the_sync_functions_have_only_the_access_their_flows_need() {
    let t = template();
    let sync_queue = "SyncQueue.Arn";
    // Everything that queues sync work may send to the sync queue.
    for binary in ["http-api", "webhook-intake", "sync-worker", "scheduled-sync"] {
        let (name, r) = function_built_from(&t, binary);
        assert!(send_targets(&r).contains(sync_queue), "{name} sends sync work");
    }
    let set = |items: &[&str]| -> BTreeSet<String> { items.iter().map(|s| s.to_string()).collect() };

    let (name, intake) = function_built_from(&t, "webhook-intake");
    assert_eq!(send_targets(&intake), set(&[sync_queue]), "{name}");
    assert_eq!(
        actions(&intake),
        set(&["dynamodb:GetItem", "dynamodb:PutItem", "secretsmanager:GetSecretValue", "sqs:SendMessage"]),
        "{name}: read the table, mark deliveries, read webhook secrets, queue notices"
    );
    let secrets: Vec<String> = statements(&intake)
        .into_iter()
        .filter(|(actions, _)| actions.iter().any(|a| a.starts_with("secretsmanager:")))
        .flat_map(|(_, resources)| resources)
        .collect();
    assert!(secrets.iter().any(|s| s.ends_with("${SecretPrefix}/*/webhook-??????")), "{secrets:?}");
    assert!(!secrets.iter().any(|s| s.ends_with("${SecretPrefix}/*")), "{name} reads more than it needs: {secrets:?}");

    let (name, worker) = function_built_from(&t, "sync-worker");
    assert_eq!(send_targets(&worker), set(&[sync_queue]), "{name} chains poll pages only");
    for action in ["dynamodb:PutItem", "dynamodb:Query", "secretsmanager:GetSecretValue", "events:PutEvents"] {
        assert!(actions(&worker).contains(action), "{name}: {action}");
    }

    let (name, scheduler) = function_built_from(&t, "scheduled-sync");
    assert_eq!(send_targets(&scheduler), set(&[sync_queue]), "{name}");
    assert_eq!(
        actions(&scheduler),
        set(&["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "sqs:SendMessage"]),
        "{name}: reads, moves sync out's catch-up watermark, and queues first poll pages and lost changes"
    );
}
