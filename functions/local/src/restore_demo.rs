//! `tandem demo --system S --scenario restore`: the CRM seeded from the simulator's seed is
//! imported whole (the snapshot before the first import is taken by itself), then edited
//! through the record API (a seeded company renamed, another deleted, a company created,
//! an imported contact edited), then the snapshot taken before the import is restored.
//!
//! Each case's `result` is read back from the store: the CRM is compared with its seed,
//! record by record, fields and links (the state read just before the import); restoring
//! again changes nothing; restoring the restore's own snapshot gives back the CRM as it
//! was edited. `expected` is each case's intent.

use serde_json::{Value, json};
use std::collections::BTreeMap;

use tandem_domain::records::Record;
use tandem_domain::usecases::import::{self, AllStages, StageSelection};
use tandem_domain::usecases::snapshots::{self, Why};
use tandem_domain::usecases::{Services, connections, crm};
use tandem_domain::{RecordKind, TenantId};
use tandem_embedded::QueueConfig;

use crate::demo::DemoOptions;
use crate::runtime::LocalRuntime;
use crate::setup;
use crate::sims;

/// The scenario's outcome: `{case: outcome}` as found and as meant, and a row per case.
pub struct RestoreDemo {
    pub result: Value,
    pub expected: Value,
    pub rows: Vec<[String; 3]>,
}

/// Every CRM record of the tenant, by kind and id: its fields and its links.
pub async fn crm_state(svc: &Services, t: &TenantId) -> anyhow::Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    for kind in RecordKind::ALL {
        let mut after = None;
        loop {
            let page = svc.store.records(t, *kind, after.take(), 1000).await?;
            for r in &page.records {
                out.insert(format!("{kind} {}", r.id()), json!({"fields": r.fields(), "links": r.meta().links}));
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    Ok(out)
}

/// What differs between two states, in a few words.
fn compare(now: &BTreeMap<String, Value>, meant: &BTreeMap<String, Value>, what: &str) -> String {
    if now == meant {
        return format!("equal to {what} ({} records)", meant.len());
    }
    let differing: Vec<&String> = now
        .keys()
        .chain(meant.keys())
        .filter(|k| now.get(*k) != meant.get(*k))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let first = differing[0];
    format!("{} records differ from {what}, e.g. {first}", differing.len())
}

/// Runs the scenario against a fresh simulator of `opts.system`.
pub async fn run(opts: &DemoOptions) -> anyhow::Result<RestoreDemo> {
    let sim = sims::start(opts.system, &opts.scale, opts.sim.clone(), 0).await?;
    let rt = LocalRuntime::new(None, QueueConfig::default(), opts.connectors.clone())?;
    let (svc, t) = (&rt.svc, TenantId::parse(crate::server::DEFAULT_TENANT)?);
    setup::seed_crm(svc, &t, &sim.crm_seed).await?;
    connections::save_credentials(svc, &t, opts.system, &sim.credentials).await?;
    setup::map_typically(svc, &t, opts.system, &sim.typical).await?;
    let seeded = crm_state(svc, &t).await?;
    let job = import::start_import(svc, &t, opts.system, StageSelection::All(AllStages::All)).await?;
    rt.run_until_done(&t, &job.id, &|_| {}).await?;
    let imported = crm_state(svc, &t).await?;
    let mut cases: Vec<(&str, String, String)> = Vec::new();

    let before = snapshots::list(svc, &t).await?;
    let first = before.iter().find(|s| s.why == Why::BeforeFirstImport { system: opts.system });
    cases.push((
        "the snapshot before the first import",
        match first {
            Some(s) => format!("taken by itself: {} records, {} links", s.records, s.links),
            None => "none".into(),
        },
        format!("taken by itself: {} records, 0 links", seeded.len()),
    ));
    let linked = imported.values().filter(|v| v["links"].as_object().is_some_and(|l| !l.is_empty())).count();
    cases.push((
        "the import",
        match (imported.len() > seeded.len(), linked > 0) {
            (true, true) => "records created and linked".into(),
            _ => format!("{} records, {linked} linked", imported.len()),
        },
        "records created and linked".into(),
    ));

    // Edits after the import, through the record API.
    let companies: Vec<Record> =
        svc.store.records(&t, RecordKind::Company, None, 1000).await?.records.into_iter().collect();
    let renamed = companies.first().ok_or_else(|| anyhow::anyhow!("the seed has no company"))?;
    crm::update(svc, &t, RecordKind::Company, renamed.id(), &json!({"name": "Renamed after the import"})).await?;
    let contacts = svc.store.records(&t, RecordKind::Contact, None, 1).await?.records;
    if let Some(c) = contacts.first() {
        crm::update(svc, &t, RecordKind::Contact, c.id(), &json!({"title": "Edited after the import"})).await?;
    }
    if let Some(gone) = companies.get(1) {
        crm::delete(svc, &t, RecordKind::Company, gone.id()).await?;
    }
    crm::create(svc, &t, RecordKind::Company, &json!({"name": "Made after the import"})).await?;
    let edited = crm_state(svc, &t).await?;
    cases.push(("edits after the import", if edited == imported { "none" } else { "made" }.into(), "made".into()));

    let Some(first) = first else { anyhow::bail!("no snapshot was taken before the first import") };
    let done = snapshots::restore(svc, &t, &first.id).await?;
    cases.push(("the CRM after the restore", compare(&crm_state(svc, &t).await?, &seeded, "its seed"), {
        format!("equal to its seed ({} records)", seeded.len())
    }));
    let again = snapshots::restore(svc, &t, &first.id).await?;
    let changed = again.records_restored + again.records_removed + again.links_restored + again.links_removed;
    cases.push((
        "restored again",
        match changed {
            0 => "nothing changed".into(),
            n => format!("{n} records or links changed"),
        },
        "nothing changed".into(),
    ));
    snapshots::restore(svc, &t, &done.undo).await?;
    cases.push((
        "the restore's own snapshot, restored",
        compare(&crm_state(svc, &t).await?, &edited, "the CRM as edited"),
        format!("equal to the CRM as edited ({} records)", edited.len()),
    ));
    sim.shutdown().await;

    let result: serde_json::Map<String, Value> = cases.iter().map(|(c, r, _)| (c.to_string(), json!(r))).collect();
    let expected: serde_json::Map<String, Value> = cases.iter().map(|(c, _, e)| (c.to_string(), json!(e))).collect();
    let rows = cases.into_iter().map(|(c, r, e)| [c.to_string(), r, e]).collect();
    Ok(RestoreDemo { result: Value::Object(result), expected: Value::Object(expected), rows })
}
