//! A data directory written before the sync ledger existed (the external version kept
//! inside each record's links) opens with the runner, which moves those versions into the
//! ledger once, and the record keeps its link.

#![allow(clippy::unwrap_used)] // tests: a failed set-up step should panic

use serde_json::json;
use tandem_connectors::Pacing;
use tandem_connectors::http::Settings;
use tandem_domain::ledger::ExtVersion;
use tandem_domain::ports::{Condition, Item, Write};
use tandem_domain::table::keys;
use tandem_domain::{RecordId, RecordKind, System, TenantId};
use tandem_embedded::QueueConfig;
use tandem_local::runtime::LocalRuntime;

fn settings() -> Settings {
    Settings { pacing: Pacing::Off, ..Settings::default() }
}

#[tokio::test]
async fn an_old_data_directory_has_its_link_versions_moved_into_the_ledger_once() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = TenantId::parse("acme").unwrap();
    let id = RecordId::from_raw("0123abcd");
    {
        let rt = LocalRuntime::new(Some(dir.path()), QueueConfig::default(), settings()).unwrap();
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
        rt.svc
            .store
            .table()
            .transact(vec![
                Write::Put { item: record, condition: Condition::NotExists },
                Write::Put { item: link, condition: Condition::NotExists },
            ])
            .await
            .unwrap();
    }

    let rt = LocalRuntime::new(Some(dir.path()), QueueConfig::default(), settings()).unwrap();
    assert_eq!(rt.migrate().await.unwrap(), 1, "the one old record moved");
    assert_eq!(rt.migrate().await.unwrap(), 0, "a second open has nothing left to move");
    let wanted = [(RecordKind::Company, "42".to_string())];
    let ledger = rt.svc.store.ledgers(&tenant, System::ConnectWise, &wanted).await.unwrap().remove(&wanted[0]).unwrap();
    assert_eq!(ledger.seen, Some(ExtVersion::parse("2024-05-01T10:00:00Z")));
    let record = rt.svc.store.record(&tenant, RecordKind::Company, &id).await.unwrap().unwrap();
    assert_eq!(record.link(System::ConnectWise).map(|l| l.id.as_str()), Some("42"), "the record keeps its link");
}
