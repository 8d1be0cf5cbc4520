//! A data directory written by an earlier version (its table a `table.log`, imported into
//! `tandem.db` on open) opens with the runner, which brings it up to date once: the external versions kept inside each record's links (before the
//! sync ledger existed) move into the ledger, the record keeps its link, and records gain
//! the look-up entries of indexes added since.

#![allow(clippy::unwrap_used)] // tests: a failed set-up step should panic

use serde_json::json;
use tandem_connectors::Pacing;
use tandem_connectors::http::Settings;
use tandem_domain::ledger::ExtVersion;
use tandem_domain::ports::Item;
use tandem_domain::records::LookupField;
use tandem_domain::table::keys;
use tandem_domain::{RecordId, RecordKind, System, TenantId};
use tandem_embedded::QueueConfig;
use tandem_local::runtime::LocalRuntime;

fn settings() -> Settings {
    Settings { pacing: Pacing::Off, ..Settings::default() }
}

/// A data directory as the store before SQLite left it: `items` put by one transaction of
/// its `table.log`.
fn old_data_dir(items: &[Item]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let line: Vec<_> = items.iter().map(|item| json!({ "put": item })).collect();
    std::fs::write(dir.path().join("table.log"), format!("{}\n", json!(line))).unwrap();
    dir
}

#[tokio::test]
async fn an_old_data_directory_has_its_link_versions_moved_into_the_ledger_once() {
    let tenant = TenantId::parse("acme").unwrap();
    let id = RecordId::from_raw("0123abcd");
    let dir = {
        let body = json!({
            "object": "company",
            "meta": {
                "id": id, "version": 1,
                "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
                "links": {"connectwise": {"id": "42", "updated_at": "2024-05-01T10:00:00Z"}}
            },
            "name": "Acme", "company_type": "client"
        });
        let record = Item {
            pk: keys::record(&tenant, RecordKind::Company, &id),
            sk: "R".into(),
            version: 1,
            gsi1: None,
            expires_at: None,
            body,
        };
        let link = Item {
            pk: keys::link(&tenant, System::ConnectWise, RecordKind::Company, "42"),
            sk: "L".into(),
            version: 1,
            gsi1: None,
            expires_at: None,
            body: json!({ "id": id }),
        };
        old_data_dir(&[record, link])
    };

    let rt = LocalRuntime::new(Some(dir.path()), QueueConfig::default(), settings()).unwrap();
    assert_eq!(rt.migrate().await.unwrap(), 2, "the old record's versions moved and its name look-up was added");
    assert_eq!(rt.migrate().await.unwrap(), 0, "a second run has nothing left to move");
    drop(rt);
    let rt = LocalRuntime::new(Some(dir.path()), QueueConfig::default(), settings()).unwrap();
    assert_eq!(rt.migrate().await.unwrap(), 0, "nor a second open");
    let wanted = [(RecordKind::Company, "42".to_string())];
    let ledger = rt.svc.store.ledgers(&tenant, System::ConnectWise, &wanted).await.unwrap().remove(&wanted[0]).unwrap();
    assert_eq!(ledger.seen, Some(ExtVersion::parse("2024-05-01T10:00:00Z")));
    let record = rt.svc.store.record(&tenant, RecordKind::Company, &id).await.unwrap().unwrap();
    assert_eq!(record.link(System::ConnectWise).map(|l| l.id.as_str()), Some("42"), "the record keeps its link");
}

#[tokio::test]
async fn an_old_data_directory_gains_the_look_ups_of_indexes_added_since() {
    let tenant = TenantId::parse("acme").unwrap();
    let (company, opportunity) = (RecordId::from_raw("co-1"), RecordId::from_raw("op-1"));
    let dir = {
        let body = json!({
            "object": "opportunity",
            "meta": {"id": opportunity, "version": 1, "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"},
            "name": "Backup rollout", "company": company
        });
        let item = Item {
            pk: keys::record(&tenant, RecordKind::Opportunity, &opportunity),
            sk: "R".into(),
            version: 1,
            gsi1: None,
            expires_at: None,
            body,
        };
        old_data_dir(&[item])
    };
    let rt = LocalRuntime::new(Some(dir.path()), QueueConfig::default(), settings()).unwrap();
    let of_company = || rt.svc.store.find(&tenant, RecordKind::Opportunity, LookupField::Company, company.as_str());
    assert!(of_company().await.unwrap().is_empty(), "written before the index: not found by its company");
    assert_eq!(rt.migrate().await.unwrap(), 1);
    assert_eq!(rt.migrate().await.unwrap(), 0, "once");
    let found = of_company().await.unwrap();
    assert_eq!(found.iter().map(|r| r.id().clone()).collect::<Vec<_>>(), vec![opportunity]);
}
