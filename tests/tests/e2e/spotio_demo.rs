//! `tandem demo --system salesforce --scenario spotio` for both targets at a small scale:
//! every case (an impossible field map refused, the valid one saved, a selective rule, a
//! matching company sent with its mapped fields, one not selected, one that matched before
//! the rule left alone until a retroactive save sends it, edits each way, an activity as a
//! Task completed with the CRM, and on the Account target an Opportunity at the map's stage
//! and one Salesforce refuses) ends as the scenario means, read back from the store, the
//! sync log and the simulator.

use crate::common::demo;

use tandem_domain::System;
use tandem_domain::field_map::Target;
use tandem_local::sims::Scale;
use tandem_local::spotio_demo;

async fn the_spotio_scenario_does_what_it_means(target: Target, cases: usize) {
    let demo = spotio_demo::run(&demo::options(System::Salesforce, Scale::new(7, 3)), target).await.unwrap();
    let differ: Vec<String> = (demo.expected.as_object().unwrap().iter())
        .filter(|(case, meant)| demo.result.get(case.as_str()) != Some(*meant))
        .map(|(case, meant)| format!("{case}: got {}, meant {meant}", demo.result[case.as_str()]))
        .collect();
    assert!(differ.is_empty(), "{target:?}: {differ:#?}");
    assert_eq!(demo.result, demo.expected);
    assert_eq!(demo.result.as_object().unwrap().len(), cases, "{target:?}: {}", demo.result);
    assert!(demo.vendor_writes > 0, "{target:?}: the CRM's records were written to Salesforce");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spotio_scenario_does_what_it_means_with_leads() {
    the_spotio_scenario_does_what_it_means(Target::Lead, 14).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spotio_scenario_does_what_it_means_with_accounts_contacts_and_opportunities() {
    the_spotio_scenario_does_what_it_means(Target::Account, 16).await
}

#[tokio::test]
async fn the_spotio_scenario_refuses_any_system_but_salesforce() {
    let err =
        spotio_demo::run(&demo::options(System::Halo, Scale::new(7, 3)), Target::Lead).await.unwrap_err().to_string();
    assert!(err.contains("--system salesforce"), "{err}");
}
