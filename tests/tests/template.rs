//! The SAM template checked against the code: every function package has its resource,
//! every environment variable the code reads is set on it, and the queues and event
//! sources are wired the way the handlers expect.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a malformed template should panic

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
        if !events_of(&r, "HttpApi").is_empty() {
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
            let route = match binary.strip_prefix("import-") {
                Some(stage) => stage,
                None => binary.trim_end_matches("-record"),
            };
            let var = format!("QUEUE_URL_{}", route.to_uppercase());
            assert_eq!(
                t["Globals"]["Function"]["Environment"]["Variables"][var.as_str()].as_str(),
                Some(queue_name),
                "{var} must name the queue {name} reads"
            );
        }
    }
    assert_eq!(sqs_functions, 7, "six import stages and the export");
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
    let routes: BTreeSet<(String, String)> =
        tandem_api::ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(unique, routes, "the template's HttpApi events and the API's routes differ");
}
