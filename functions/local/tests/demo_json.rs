//! `tandem demo --json` as a user runs it: one object whose `result` equals `expected`,
//! with what the import cost beside it (store round trips, requests to the external
//! system, seconds), also with a wait added to every store round trip; and the export
//! scenario's object, whose `result` (read from the exports and the simulator) equals its
//! intent; the sync-in scenario's, with its webhook latency figure; and the spotio
//! scenario's for each `--object`, refused on any system but Salesforce; and the dry run's,
//! the import's ground truth with the tenant untouched.

#![allow(clippy::unwrap_used)] // tests

use std::process::Command;

#[test]
fn the_demo_json_reports_the_ground_truth_and_what_the_import_cost() {
    for system in ["connectwise", "syncro"] {
        let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(["demo", "--system", system, "--companies", "15", "--json", "--store-latency-ms", "1"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{system}: {}", String::from_utf8_lossy(&out.stderr));
        let line = String::from_utf8(out.stdout).unwrap();
        let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(v["system"], system);
        assert_eq!(v["result"], v["expected"], "{system}: {v}");
        let records: u64 = v["result"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|stage| stage.as_object().unwrap().values())
            .map(|n| n.as_u64().unwrap())
            .sum();
        let calls = v["store_calls"].as_u64().unwrap();
        assert!(calls >= records / 2, "{system}: {calls} store calls for {records} records is too few to be real");
        let rounds = v["store_rounds"].as_u64().unwrap();
        assert!(rounds > 0 && rounds <= calls, "{system}: {rounds} sequential rounds of {calls} calls");
        assert!(v["requests"].as_u64().unwrap() > 0, "{system}: {v}");
        assert!(v["seconds"].as_f64().unwrap() > 0.0, "{system}: {v}");
    }
}

#[test]
fn the_export_scenario_json_shows_every_export_as_meant_and_each_company_once() {
    for system in ["connectwise", "halo", "syncro", "salesforce"] {
        let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(["demo", "--system", system, "--companies", "20", "--scenario", "export", "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{system}: {}", String::from_utf8_lossy(&out.stderr));
        let line = String::from_utf8(out.stdout).unwrap();
        let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!((v["system"].as_str(), v["scenario"].as_str()), (Some(system), Some("export")));
        assert_eq!(v["result"], v["expected"], "{system}: {v}");
        let cases = v["result"]["cases"].as_object().unwrap();
        assert!(cases.len() >= 4, "{system}: {v}");
        assert_eq!(v["result"]["cases"]["sent again"]["company"], "updated", "{system}: sent twice, created once");
        assert!(v["result"]["in_system_once"].as_object().unwrap().values().all(|b| b == true), "{system}: {v}");
    }
}

#[test]
fn the_sync_in_scenario_json_shows_every_change_as_meant_and_the_webhook_latency() {
    for system in ["connectwise", "halo", "syncro", "salesforce"] {
        let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(["demo", "--system", system, "--companies", "40", "--scenario", "sync-in", "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{system}: {}", String::from_utf8_lossy(&out.stderr));
        let line = String::from_utf8(out.stdout).unwrap();
        let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!((v["system"].as_str(), v["scenario"].as_str()), (Some(system), Some("sync-in")));
        assert_eq!(v["result"], v["expected"], "{system}: {v}");
        assert!(v["result"].as_object().unwrap().len() >= 9, "{system}: {v}");
        let p95 = v["webhook_p95_ms"].as_u64().unwrap_or_else(|| panic!("{system}: no latency figure: {v}"));
        assert!(p95 <= 5_000, "{system}: webhook to record took {p95} ms at the 95th percentile");
        let intake = v["intake_p95_ms"].as_u64().unwrap_or_else(|| panic!("{system}: no intake figure: {v}"));
        assert!(intake <= p95.max(1_000), "{system}: the intake answered in {intake} ms at the 95th percentile");
    }
}

#[test]
fn the_spotio_scenario_json_shows_every_case_as_meant_for_each_object() {
    for (object, cases) in [(None, 14), (Some("lead"), 14), (Some("account"), 16)] {
        let mut args = vec!["demo", "--system", "salesforce", "--companies", "3", "--scenario", "spotio", "--json"];
        args.extend(object.iter().flat_map(|o| ["--object", *o]));
        let out = Command::new(env!("CARGO_BIN_EXE_tandem")).args(&args).output().unwrap();
        assert!(out.status.success(), "{object:?}: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
        let shown = (v["system"].as_str(), v["scenario"].as_str(), v["object"].as_str());
        assert_eq!(shown, (Some("salesforce"), Some("spotio"), Some(object.unwrap_or("lead"))));
        assert_eq!(v["result"], v["expected"], "{object:?}: {v}");
        assert_eq!(v["result"].as_object().unwrap().len(), cases, "{object:?}: {v}");
    }
}

#[test]
fn the_spotio_scenario_is_refused_on_another_system_and_its_object_without_it() {
    for (args, says) in [
        (&["--system", "halo", "--scenario", "spotio"][..], "--system salesforce"),
        (&["--system", "salesforce", "--scenario", "two-way", "--object", "account"][..], "--scenario spotio"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tandem")).arg("demo").args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn the_dry_run_json_reports_the_imports_ground_truth_and_leaves_the_tenant_untouched() {
    for system in ["connectwise", "halo", "syncro", "salesforce"] {
        let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(["demo", "--system", system, "--companies", "10", "--dry-run", "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{system}: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
        assert_eq!((v["system"].as_str(), v["dry_run"].as_bool()), (Some(system), Some(true)), "{v}");
        assert_eq!(v["result"], v["expected"], "{system}: {v}");
        assert_eq!(v["tenant_untouched"], true, "{system}: {v}");
    }
}
