//! `tandem demo --scenario two-way` on every simulated system at a small scale: every case
//! (a CRM-only edit, system-only edits, both sides changed in either order, CRM deletes
//! without and with `propagate_deletes`, a company leaving the mapping, a new company held
//! back until it has an opportunity, a flapping field, `outbound` and `inbound` alone) ends
//! as the scenario means, read back from the store and from the simulator.

use crate::common::demo;

use tandem_domain::System;
use tandem_local::sims::Scale;
use tandem_local::two_way_demo;

async fn the_two_way_scenario_does_what_it_means(system: System) {
    let opts = demo::options(system, Scale::new(7, 30));
    let demo = two_way_demo::run(&opts).await.unwrap();
    let differ: Vec<String> = (demo.expected.as_object().unwrap().iter())
        .filter(|(case, meant)| demo.result.get(case.as_str()) != Some(*meant))
        .map(|(case, meant)| format!("{case}: got {}, meant {meant}", demo.result[case.as_str()]))
        .collect();
    assert!(differ.is_empty(), "{}: {differ:#?}", system.display_name());
    // Syncro plays no type change (its customers have none).
    let cases = if system == System::Syncro { 10 } else { 11 };
    assert!(demo.result.as_object().unwrap().len() >= cases, "{}: {}", system.display_name(), demo.result);
    assert!(demo.echoes_skipped > 0, "{}: our own pushes come back as echoes", system.display_name());
    assert!(demo.vendor_writes > 0, "{}: the CRM's changes were written there", system.display_name());
}

mod the_two_way_scenario_does_what_it_means_for_every_system {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connectwise() {
        the_two_way_scenario_does_what_it_means(System::ConnectWise).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn halo() {
        the_two_way_scenario_does_what_it_means(System::Halo).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn syncro() {
        the_two_way_scenario_does_what_it_means(System::Syncro).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn salesforce() {
        the_two_way_scenario_does_what_it_means(System::Salesforce).await
    }
}
