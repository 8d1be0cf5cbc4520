//! `tandem demo --scenario restore` on every system: the CRM imported and edited, then its
//! snapshot from before the import restored, equals its seed exactly; again, nothing
//! changes; the restore's own snapshot gives back the edited CRM.

use crate::common::demo;

use tandem_domain::System;
use tandem_local::restore_demo;
use tandem_local::sims::Scale;

async fn the_restore_scenario_puts_the_crm_back_as_seeded(system: System) {
    let opts = demo::options(system, Scale::new(7, 20));
    let demo = restore_demo::run(&opts).await.unwrap();
    assert_eq!(demo.result, demo.expected, "{system}");
    assert_eq!(demo.result.as_object().unwrap().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectwise() {
    the_restore_scenario_puts_the_crm_back_as_seeded(System::ConnectWise).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halo() {
    the_restore_scenario_puts_the_crm_back_as_seeded(System::Halo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncro() {
    the_restore_scenario_puts_the_crm_back_as_seeded(System::Syncro).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce() {
    the_restore_scenario_puts_the_crm_back_as_seeded(System::Salesforce).await;
}
