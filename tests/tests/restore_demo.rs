//! `tandem demo --scenario restore` on every system: the CRM imported and edited, then its
//! snapshot from before the import restored, equals its seed exactly; again, nothing
//! changes; the restore's own snapshot gives back the edited CRM.

#![allow(clippy::unwrap_used)] // tests: a failed set-up step should panic

use std::time::Duration;

use tandem_connectors::http::{RetryPolicy, Settings};
use tandem_domain::System;
use tandem_local::demo::DemoOptions;
use tandem_local::restore_demo;
use tandem_local::sims::Scale;
use tandem_sim::SimConfig;

async fn the_restore_scenario_puts_the_crm_back_as_seeded(system: System) {
    let opts = DemoOptions {
        system,
        scale: Scale::new(7, 20),
        sim: SimConfig::default(),
        connectors: Settings {
            retry: RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(10), ..RetryPolicy::default() },
            pacing: tandem_connectors::Pacing::Off,
            ..Settings::default()
        },
        data_dir: None,
        progress: false,
        aws_endpoint: None,
        store_latency: Duration::ZERO,
    };
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
