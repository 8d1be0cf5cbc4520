//! The local runner's secrets at rest: after credentials are saved and a whole import (and a
//! snapshot) has run on a data directory, no file in that directory holds any secret of
//! any of the four systems' credentials in plaintext, and a restart still reads them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tandem_connectors::http::{RetryPolicy, Settings};
use tandem_domain::usecases::import::{self, AllStages, StageSelection};
use tandem_domain::usecases::{connections, snapshots};
use tandem_domain::{System, TenantId};
use tandem_embedded::QueueConfig;
use tandem_local::runtime::LocalRuntime;
use tandem_local::setup;
use tandem_local::sims::{self, Scale};
use tandem_sim::SimConfig;

/// The credential fields that are secrets, per system.
const SECRET_FIELDS: &[&str] = &["private_key", "client_secret", "api_key", "refresh_token"];

fn every_file(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(every_file(&path));
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn runtime(dir: &Path) -> LocalRuntime {
    let settings = Settings {
        retry: RetryPolicy { base_delay: Duration::from_millis(10), ..RetryPolicy::default() },
        pacing: tandem_connectors::Pacing::Off,
        ..Settings::default()
    };
    LocalRuntime::new(Some(dir), QueueConfig::default(), settings).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_file_of_the_data_directory_holds_a_secret_after_imports_of_every_system() {
    let dir = tempfile::tempdir().unwrap();
    let t = TenantId::parse("sealed").unwrap();
    let mut secrets = Vec::new();
    {
        let rt = runtime(dir.path());
        for system in System::ALL {
            let sim = sims::start(*system, &Scale::new(4, 5), SimConfig::default(), 0).await.unwrap();
            if let Some(h) = sim.syncro() {
                h.set_requests_per_minute(None);
            }
            for field in SECRET_FIELDS {
                if let Some(value) = sim.credentials.get(*field).and_then(|v| v.as_str()) {
                    secrets.push((*system, value.to_string()));
                }
            }
            if *system == System::ConnectWise {
                setup::seed_crm(&rt.svc, &t, &sim.crm_seed).await.unwrap();
            }
            connections::save_credentials(&rt.svc, &t, *system, &sim.credentials).await.unwrap();
            setup::map_typically(&rt.svc, &t, *system, &sim.typical).await.unwrap();
            let job = import::start_import(&rt.svc, &t, *system, StageSelection::All(AllStages::All)).await.unwrap();
            let job = rt.run_until_done(&t, &job.id, &|_| {}).await.unwrap();
            assert!(job.status.is_final(), "{system}: {:?}", job.status);
            sim.shutdown().await;
        }
        snapshots::take(&rt.svc, &t, snapshots::Why::OnDemand { note: None }).await.unwrap();
    }
    for system in System::ALL {
        assert!(secrets.iter().any(|(s, _)| s == system), "{system} has a secret to look for: {secrets:?}");
    }
    let files = every_file(dir.path());
    assert!(
        files.len() >= 3,
        "the table, the secrets and a snapshot: {:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for (path, bytes) in &files {
        for (system, secret) in &secrets {
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "{} holds {system}'s secret in plaintext", path.display());
        }
    }
    let rt = runtime(dir.path());
    for system in System::ALL {
        assert!(rt.svc.secrets.get(&t, *system).await.is_ok(), "{system}: read back after a restart");
    }
}
