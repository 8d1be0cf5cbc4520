//! `tandem demo --scenario two-way`: a tenant imported from its simulator switches two-way
//! sync on over real HTTP both ways, and both sides change records, each case on its own
//! imported company (or a new CRM record): a CRM-only edit (pushed; its echo changes
//! nothing in the CRM), a system-only edit (pulled; nothing written back; also on a company
//! whose CRM record kept values of its own when the import linked it), the same field
//! changed on both sides in either order (the later side wins on both sides, the loser in
//! the log), a CRM delete without and with `propagate_deletes`, a company leaving the
//! mapping in the CRM (its push refused, the reason logged; not on Syncro, whose customers
//! have no type), a new CRM company (not created until it has an opportunity, then created
//! and linked with it), a field flapping on both sides faster than the sync with duplicated
//! and reordered webhooks (both sides end equal, vendor writes at most the CRM edits), and
//! `outbound` then `inbound` alone (each moves one way only, also for a company changed on
//! both sides in different fields while `outbound`) before `two_way` again.
//!
//! Each case's `result` is read back from the store, the sync log and the simulator (through
//! the connector's `get`); `expected` is the case's intent. `echoes_skipped` counts the
//! scenario's `skipped:echo` log entries; `vendor_writes` the simulator's API writes over
//! the scenario, the webhook (un)registrations of the settings switches left out.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

use tandem_domain::external::{ExternalRecord, OptionList};
use tandem_domain::log::{Direction, LogEntry, LogFilter, Outcome, SkipReason};
use tandem_domain::ports::Connector;
use tandem_domain::records::Record;
use tandem_domain::usecases::{connections, crm, sync_in};
use tandem_domain::{RecordKind, Stage, System, TenantId, Timestamp};
use tandem_sim::webhooks::Kind;

use crate::demo::DemoOptions;
use crate::runtime::LocalRuntime;
use crate::scene::{self, Synced};
use crate::setup;
use crate::sims::RunningSim;

/// What the scenario found and meant, in the same shape (`{case: outcome}`), the two
/// counts, and one row per case for the table.
#[derive(Clone, Debug)]
pub struct TwoWayDemo {
    pub result: Value,
    pub expected: Value,
    /// The scenario's `skipped:echo` sync-log entries (both directions).
    pub echoes_skipped: usize,
    /// The simulator's API writes over the scenario (settings switches left out).
    pub vendor_writes: u64,
    pub rows: Vec<[String; 3]>,
}

struct Scene {
    sim: RunningSim,
    rt: LocalRuntime,
    t: TenantId,
    system: System,
    connector: Arc<dyn Connector>,
    /// The queue's worker; `None` while paused.
    worker: Option<JoinHandle<()>>,
    /// Whether the connection takes changes in now (a settle then polls too).
    inbound: bool,
    /// When the scenario began (after the import and the switch to two-way).
    started: Timestamp,
    result: BTreeMap<String, String>,
    expected: BTreeMap<String, String>,
    rows: Vec<[String; 3]>,
    /// Imported companies not used by a case yet, the CRM and the system holding the same.
    spare: Vec<(String, Record)>,
    /// Imported companies linked to an existing CRM record that kept a phone, website or
    /// address of its own (the import fills only empty fields), so the two sides differ
    /// there since the link.
    kept_at_link: Vec<(String, Record)>,
    /// API writes the settings switches cost (webhook registrations).
    setting_writes: u64,
}

/// Runs the scenario.
pub async fn run(opts: &DemoOptions) -> anyhow::Result<TwoWayDemo> {
    let Synced { sim, rt, t, system, webhook_url: _, worker, server } =
        scene::imported_and_syncing(opts, "two_way", None).await?;
    let connector = connections::connector(&rt.svc, &t, system).await?;
    let companies = rt.svc.store.all_records(&t, RecordKind::Company).await?;
    let linked: Vec<(String, Record)> =
        companies.into_iter().filter_map(|c| Some((c.link(system)?.id.clone(), c))).collect();
    let keys: Vec<(RecordKind, String)> = linked.iter().map(|(ext, _)| (RecordKind::Company, ext.clone())).collect();
    let ledgers = rt.svc.store.ledgers(&t, system, &keys).await?;
    let kept = |ext: &String| ledgers.get(&(RecordKind::Company, ext.clone())).map(|l| l.kept.clone());
    // In the external ids' order, so a seed plays the same companies every run.
    let (mut spare, mut kept_at_link) = (Vec::new(), Vec::new());
    for (ext, record) in linked {
        match kept(&ext) {
            Some(kept) if kept.is_empty() => spare.push((ext, record)),
            Some(kept) if ["phone", "website", "address"].iter().any(|f| kept.contains_key(*f)) => {
                kept_at_link.push((ext, record))
            }
            _ => {}
        }
    }
    spare.sort_by(|a, b| b.0.cmp(&a.0));
    kept_at_link.sort_by(|a, b| b.0.cmp(&a.0));
    let started = rt.svc.clock.now();
    let writes_before = sim.handle().stats().writes();
    let mut scene = Scene {
        sim,
        rt,
        t,
        system,
        connector,
        worker: Some(worker),
        inbound: true,
        started,
        result: BTreeMap::new(),
        expected: BTreeMap::new(),
        rows: Vec::new(),
        spare,
        kept_at_link,
        setting_writes: 0,
    };
    let played = scene.play().await;
    let echoes_skipped = scene.echoes().await;
    let vendor_writes = scene.writes().saturating_sub(writes_before + scene.setting_writes);
    if let Some(worker) = scene.worker.take() {
        worker.abort();
    }
    server.abort();
    scene.sim.shutdown().await;
    played?;
    Ok(TwoWayDemo {
        result: json!(scene.result),
        expected: json!(scene.expected),
        echoes_skipped,
        vendor_writes,
        rows: scene.rows,
    })
}

impl Scene {
    async fn play(&mut self) -> anyhow::Result<()> {
        self.crm_edit_pushed().await?;
        self.system_edits_pulled().await?;
        self.both_sides_changed().await?;
        self.crm_deletes().await?;
        self.leaving_the_mapping().await?;
        self.new_company().await?;
        self.flapping().await?;
        self.one_way_modes().await
    }

    /// A CRM-only edit through the record API reaches the system; its echo changes nothing.
    async fn crm_edit_pushed(&mut self) -> anyhow::Result<()> {
        let (ext, record) = self.take()?;
        let before = self.writes();
        let name = format!("Renamed in the CRM for {}", self.system.display_name());
        let edited =
            crm::update(&self.rt.svc, &self.t, RecordKind::Company, record.id(), &json!({"name": name})).await?;
        let pushed = scene::until(async || self.name_there(&ext).await.as_deref() == Some(&name)).await;
        self.settle().await?;
        let unchanged = self.crm(&record).await.is_some_and(|r| r.meta().version == edited.meta().version);
        let writes = self.writes() - before;
        let meant = "the system holds the CRM's value (one write); its echo changed nothing in the CRM";
        let got = match (pushed, unchanged, writes) {
            (false, ..) => "the system does not hold the CRM's value".to_string(),
            (true, false, _) => "pushed, but the echo changed the CRM".into(),
            (true, true, 1) => meant.into(),
            (true, true, n) => format!("pushed in {n} writes; its echo changed nothing in the CRM"),
        };
        self.case("a CRM-only edit", &got, meant);
        Ok(())
    }

    /// A system-only edit by a person reaches the CRM and is not written back: on a company
    /// both sides hold alike, and on one whose CRM record kept values of its own at the link
    /// (where the import linked such a company).
    async fn system_edits_pulled(&mut self) -> anyhow::Result<()> {
        let company = self.take()?;
        self.system_edit_pulled("a system-only edit", company).await?;
        if let Some(company) = self.kept_at_link.pop() {
            self.system_edit_pulled("a system-only edit, the CRM's own values kept at the link", company).await?;
        }
        Ok(())
    }

    async fn system_edit_pulled(&mut self, case: &str, (ext, record): (String, Record)) -> anyhow::Result<()> {
        let before = self.writes();
        let name = format!("Renamed by a person in {}", self.system.display_name());
        self.edit_there(&ext, &name)?;
        let pulled = self.until_named(&record, &name).await;
        self.settle().await?;
        let writes = self.writes() - before;
        let there = self.name_there(&ext).await.as_deref() == Some(&name);
        let meant = "the CRM holds the system's value; nothing written back";
        let got = match (pulled, there, writes) {
            (false, ..) => "the CRM does not hold the system's value".to_string(),
            (true, true, 0) => meant.into(),
            (true, _, n) => {
                let pushed: Vec<String> = (self.logs_of(&record).await?.iter())
                    .filter(|e| e.direction == Direction::SyncOut && e.outcome == Outcome::Updated)
                    .flat_map(|e| e.fields.clone())
                    .collect();
                format!("the CRM holds the system's value; {n} written back ({})", pushed.join(", "))
            }
        };
        self.case(case, &got, meant);
        Ok(())
    }

    /// The same field changed on both sides before the sync ran (the worker paused), the
    /// second side about a second after the first, in both orders: the later side wins on
    /// both sides, and the loser is in a log entry's `conflicts`.
    async fn both_sides_changed(&mut self) -> anyhow::Result<()> {
        for crm_first in [true, false] {
            let (ext, record) = self.take()?;
            let (first, later) = match crm_first {
                true => ("Changed in the CRM first", "Changed in the system later"),
                false => ("Changed in the system first", "Changed in the CRM later"),
            };
            self.pause().await?;
            let edits = [(crm_first, first), (!crm_first, later)];
            for (n, (in_crm, name)) in edits.into_iter().enumerate() {
                if n > 0 {
                    tokio::time::sleep(Duration::from_millis(1100)).await;
                }
                match in_crm {
                    true => {
                        let body = json!({ "name": name });
                        crm::update(&self.rt.svc, &self.t, RecordKind::Company, record.id(), &body).await?;
                    }
                    false => self.edit_there(&ext, name)?,
                }
            }
            self.resume();
            let equal = scene::until(async || {
                self.crm_name(&record).await == Some(json!(later))
                    && self.name_there(&ext).await.as_deref() == Some(later)
            })
            .await;
            self.settle().await?;
            let winner = if crm_first { "external" } else { "crm" };
            let logged = self
                .logs_of(&record)
                .await?
                .iter()
                .flat_map(|e| &e.conflicts)
                .any(|c| c.field == "name" && c.loser == json!(first) && c.winner == winner);
            let (case, meant) = match crm_first {
                true => {
                    ("changed on both sides, the system later", "the system's value on both sides, the CRM's logged")
                }
                false => ("changed on both sides, the CRM later", "the CRM's value on both sides, the system's logged"),
            };
            let got = match (equal, logged) {
                (true, true) => meant.to_string(),
                (true, false) => "the later value on both sides, no conflict logged".into(),
                (false, _) => format!(
                    "the CRM holds {}, the system {}",
                    self.crm_name(&record).await.unwrap_or_default(),
                    self.shown_there(&ext).await
                ),
            };
            self.case(case, &got, meant);
        }
        Ok(())
    }

    /// A CRM delete: only logged while `propagate_deletes` is off; with it on, the
    /// system's record goes too.
    async fn crm_deletes(&mut self) -> anyhow::Result<()> {
        for propagate in [false, true] {
            self.switch(&json!({ "propagate_deletes": propagate })).await?;
            let (ext, record) = self.take()?;
            crm::delete(&self.rt.svc, &self.t, RecordKind::Company, record.id()).await?;
            let (case, meant, got) = match propagate {
                false => {
                    let logged = scene::until(async || {
                        self.logs_of(&record).await.is_ok_and(|logs| {
                            logs.iter().any(|e| {
                                e.direction == Direction::SyncOut && e.outcome == Outcome::Skipped(SkipReason::Deleted)
                            })
                        })
                    })
                    .await;
                    self.settle().await?;
                    let kept = self.there(&ext).await?.is_some();
                    let meant = "logged (skipped:deleted), kept in the system";
                    let got = match (logged, kept) {
                        (true, true) => meant,
                        (false, true) => "kept in the system, not logged",
                        (_, false) => "deleted in the system",
                    };
                    ("a CRM delete, deletes not propagated", meant, got)
                }
                true => {
                    let gone = scene::until(async || self.there(&ext).await.is_ok_and(|r| r.is_none())).await;
                    self.settle().await?;
                    let meant = "gone from the system";
                    ("a CRM delete, deletes propagated", meant, if gone { meant } else { "still in the system" })
                }
            };
            self.case(case, got, meant);
        }
        self.switch(&json!({"propagate_deletes": false})).await
    }

    /// A company whose CRM type becomes one the connection maps to nothing there, renamed
    /// meanwhile: its push is refused with the reason logged, the system's record is left
    /// alone. (Syncro customers have no type.)
    async fn leaving_the_mapping(&mut self) -> anyhow::Result<()> {
        if scene::type_pair(self.system).is_none() {
            return Ok(());
        }
        let (ext, record) = self.take()?;
        let held = self.name_there(&ext).await;
        let body = json!({"company_type": "mapped_nowhere", "name": "Renamed out of the mapping"});
        crm::update(&self.rt.svc, &self.t, RecordKind::Company, record.id(), &body).await?;
        let refused = scene::until(async || {
            self.logs_of(&record).await.is_ok_and(|logs| {
                logs.iter().any(|e| {
                    e.direction == Direction::SyncOut
                        && matches!(&e.outcome, Outcome::Failed(why) if why.contains("mapped_nowhere"))
                })
            })
        })
        .await;
        self.settle().await?;
        let left = self.name_there(&ext).await == held;
        let meant = "its push refused, the reason logged; the system's record left alone";
        let got = match (refused, left) {
            (true, true) => meant,
            (false, true) => "the system's record left alone, no reason logged",
            (_, false) => "the system's record changed",
        };
        self.case("a company leaving the mapping in the CRM", got, meant);
        Ok(())
    }

    /// A new CRM company is not created in the system without an opportunity; once one is
    /// created for it, both go there and are linked.
    async fn new_company(&mut self) -> anyhow::Result<()> {
        let before = self.writes();
        let company_type = self.exportable(Stage::Companies, OptionList::CompanyTypes).await;
        let name = format!("New in the CRM for {}", self.system.display_name());
        let body = json!({"name": name, "phone": "+1 555 301 0101", "company_type": company_type});
        let company = crm::create(&self.rt.svc, &self.t, RecordKind::Company, &body).await?;
        let skipped = scene::until(async || {
            self.logs_of(&company).await.is_ok_and(|logs| {
                logs.iter().any(|e| {
                    e.direction == Direction::SyncOut && e.outcome == Outcome::Skipped(SkipReason::NoOpportunity)
                })
            })
        })
        .await;
        self.settle().await?;
        let not_created = self.writes() == before && self.linked(&company).await.is_none();
        // The opportunity's contact (ConnectWise requires one), made in the CRM too.
        let body = json!({"first_name": "Nova", "last_name": "Reyes", "email": "nova.reyes@new-in-the-crm.example",
            "company": company.id()});
        let contact = crm::create(&self.rt.svc, &self.t, RecordKind::Contact, &body).await?;
        let status = self.exportable(Stage::Opportunities, OptionList::OpportunityStatuses).await;
        let body = json!({
            "name": format!("{name}: first project"), "status": status, "company": company.id(),
            "contact": contact.id(), "close_date": "2027-03-31", "value": 4800
        });
        let opportunity = crm::create(&self.rt.svc, &self.t, RecordKind::Opportunity, &body).await?;
        let linked = scene::until(async || {
            self.linked(&company).await.is_some()
                && self.linked(&contact).await.is_some()
                && self.linked(&opportunity).await.is_some()
        })
        .await;
        self.settle().await?;
        let mut in_system = linked;
        for record in [&company, &contact, &opportunity] {
            if let Some(ext) = self.linked(record).await {
                in_system &= self.connector.get(record.kind(), &ext).await?.is_some();
            }
        }
        let meant = "not created without an opportunity (skipped:no_opportunity); created and linked with one, with its contact";
        let got = match (skipped && not_created, in_system) {
            (true, true) => meant,
            (false, true) => "created and linked with an opportunity, but not held back without one",
            (_, false) => "not created and linked with its opportunity",
        };
        self.case("a new CRM company", got, meant);
        Ok(())
    }

    /// One field edited on both sides in turn, three times, faster than the sync, with
    /// duplicated and reordered webhooks: both sides end equal, and the vendor writes are
    /// at most the CRM edits.
    async fn flapping(&mut self) -> anyhow::Result<()> {
        let (ext, record) = self.take()?;
        let before = self.writes();
        self.sim.handle().duplicate_webhooks(2);
        self.sim.handle().reorder_webhooks(3);
        let crm_edits = 3;
        for n in 0..crm_edits {
            let body = json!({"name": format!("CRM edit {n}")});
            crm::update(&self.rt.svc, &self.t, RecordKind::Company, record.id(), &body).await?;
            self.edit_there(&ext, &format!("System edit {n}"))?;
        }
        self.settle().await?;
        self.sim.handle().duplicate_webhooks(0);
        self.sim.handle().reorder_webhooks(0);
        self.settle().await?;
        let (crm_name, there) = (self.crm_name(&record).await, self.name_there(&ext).await);
        let equal = crm_name.is_some() && crm_name == there.map(Value::from);
        let writes = self.writes() - before;
        let meant = "both sides equal; vendor writes at most the CRM edits";
        let got = match (equal, writes <= crm_edits) {
            (true, true) => meant.to_string(),
            (true, false) => format!("both sides equal; {writes} vendor writes for {crm_edits} CRM edits"),
            (false, _) => format!(
                "the CRM holds {}, the system {}",
                self.crm_name(&record).await.unwrap_or_default(),
                self.shown_there(&ext).await
            ),
        };
        self.case("a field flapping on both sides", &got, meant);
        Ok(())
    }

    /// `outbound` alone pushes a CRM edit and takes no system edit in; `inbound` alone the
    /// other way round; then `two_way` again.
    async fn one_way_modes(&mut self) -> anyhow::Result<()> {
        self.switch(&json!({"auto_sync": "outbound"})).await?;
        let (crm_ext, crm_side) = self.take()?;
        let (sys_ext, sys_side) = self.take()?;
        let pushed_name = "Pushed while outbound";
        crm::update(&self.rt.svc, &self.t, RecordKind::Company, crm_side.id(), &json!({"name": pushed_name})).await?;
        let pushed = scene::until(async || self.name_there(&crm_ext).await.as_deref() == Some(pushed_name)).await;
        self.edit_there(&sys_ext, "Edited in the system while outbound")?;
        self.settle().await?;
        let kept = self.crm_name(&sys_side).await == Some(sys_side.fields()["name"].clone());
        let meant = "a CRM edit pushed; a system edit not taken in";
        let got = match (pushed, kept) {
            (true, true) => meant,
            (false, true) => "a CRM edit not pushed",
            (_, false) => "a system edit taken in",
        };
        self.case("outbound only", got, meant);

        // One company changed on both sides, in different fields: the CRM's change goes
        // out; the system's stays there and is not taken in.
        let (ext, record) = self.take()?;
        let renamed = "Renamed in the system while outbound";
        self.edit_there(&ext, renamed)?;
        let body = json!({"phone": "+1 555 301 0199"});
        crm::update(&self.rt.svc, &self.t, RecordKind::Company, record.id(), &body).await?;
        let pushed = scene::until(async || {
            self.logs_of(&record).await.is_ok_and(|logs| {
                logs.iter().any(|e| e.direction == Direction::SyncOut && e.outcome == Outcome::Updated)
            })
        })
        .await;
        self.settle().await?;
        let not_taken = self.crm_name(&record).await == Some(record.fields()["name"].clone());
        let left_there = self.name_there(&ext).await.as_deref() == Some(renamed);
        let meant = "the CRM's change pushed; the system's left there, not taken in";
        let got = match (pushed, not_taken, left_there) {
            (true, true, true) => meant,
            (false, ..) => "the CRM's change not pushed",
            (true, false, true) => "the CRM's change pushed; the system's taken in",
            (true, _, false) => "the CRM's change pushed; the system's overwritten",
        };
        self.case("outbound only, both sides changed in different fields", got, meant);

        self.switch(&json!({"auto_sync": "inbound"})).await?;
        let (crm_ext, crm_side) = self.take()?;
        let (sys_ext, sys_side) = self.take()?;
        let before = (self.writes(), self.name_there(&crm_ext).await);
        let body = json!({"name": "Not pushed while inbound"});
        crm::update(&self.rt.svc, &self.t, RecordKind::Company, crm_side.id(), &body).await?;
        let taken_name = "Taken in while inbound";
        self.edit_there(&sys_ext, taken_name)?;
        let taken = self.until_named(&sys_side, taken_name).await;
        self.settle().await?;
        let not_pushed = (self.writes(), self.name_there(&crm_ext).await) == before;
        let meant = "a CRM edit not pushed (vendor writes unchanged); a system edit taken in";
        let got = match (not_pushed, taken) {
            (true, true) => meant,
            (false, _) => "a CRM edit pushed",
            (true, false) => "a system edit not taken in",
        };
        self.case("inbound only", got, meant);
        self.switch(&json!({"auto_sync": "two_way"})).await
    }

    /// Saves a settings change; the API writes it costs (webhook registrations) are kept
    /// out of the sync's count.
    async fn switch(&mut self, body: &Value) -> anyhow::Result<()> {
        self.settle().await?;
        let before = self.writes();
        let view = connections::save_settings(&self.rt.svc, &self.t, self.system, body).await?;
        self.inbound = view.settings.auto_sync.inbound();
        self.setting_writes += self.writes() - before;
        Ok(())
    }

    /// Lets every webhook and queued message run; where changes are taken in, then polls
    /// once and lets that run too.
    async fn settle(&self) -> anyhow::Result<()> {
        let idle = async || self.rt.embedded().is_none_or(|e| e.queue.is_idle());
        self.sim.handle().webhooks_settled(Duration::from_secs(10)).await;
        anyhow::ensure!(scene::until(idle).await, "the queue never went idle");
        if self.inbound {
            sync_in::start_poll(&self.rt.svc, &self.t, self.system).await?;
            anyhow::ensure!(scene::until(idle).await, "the poll never finished");
            self.sim.handle().webhooks_settled(Duration::from_secs(10)).await;
            anyhow::ensure!(scene::until(idle).await, "the queue never went idle after the poll");
        }
        Ok(())
    }

    /// Settles, then stops the worker, so what follows waits in the queue.
    async fn pause(&mut self) -> anyhow::Result<()> {
        self.settle().await?;
        if let Some(worker) = self.worker.take() {
            worker.abort();
            let _ = worker.await;
        }
        Ok(())
    }

    fn resume(&mut self) {
        if self.worker.is_none() {
            self.worker = Some(self.rt.spawn_worker());
        }
    }

    fn take(&mut self) -> anyhow::Result<(String, Record)> {
        self.spare.pop().ok_or_else(|| anyhow::anyhow!("the tenant has too few companies for the scenario"))
    }

    fn case(&mut self, case: &str, got: &str, meant: &str) {
        self.rows.push([case.to_string(), got.to_string(), meant.to_string()]);
        self.result.insert(case.to_string(), got.to_string());
        self.expected.insert(case.to_string(), meant.to_string());
    }

    fn writes(&self) -> u64 {
        self.sim.handle().stats().writes()
    }

    /// A person renames the company in the system.
    fn edit_there(&self, ext: &str, name: &str) -> anyhow::Result<()> {
        let field = self.sim.handle().company_name_field();
        self.sim.handle().edit_as_person(Kind::Company, ext, json!({ field: name }))?;
        Ok(())
    }

    /// The company as the system holds it now, read through the connector.
    async fn there(&self, ext: &str) -> anyhow::Result<Option<ExternalRecord>> {
        Ok(self.connector.get(RecordKind::Company, ext).await?)
    }

    async fn name_there(&self, ext: &str) -> Option<String> {
        self.there(ext).await.ok().flatten().and_then(|r| r.field("name"))
    }

    /// The system's name of the company for a message.
    async fn shown_there(&self, ext: &str) -> String {
        self.name_there(ext).await.map_or_else(|| "nothing".into(), |n| format!("{n:?}"))
    }

    async fn crm(&self, record: &Record) -> Option<Record> {
        self.rt.svc.store.record(&self.t, record.kind(), record.id()).await.ok().flatten()
    }

    async fn crm_name(&self, record: &Record) -> Option<Value> {
        self.crm(record).await.map(|r| r.fields()["name"].clone())
    }

    async fn until_named(&self, record: &Record, name: &str) -> bool {
        scene::until(async || self.crm_name(record).await == Some(json!(name))).await
    }

    /// The external id the record is linked to now.
    async fn linked(&self, record: &Record) -> Option<String> {
        self.crm(record).await?.link(self.system).map(|l| l.id.clone())
    }

    /// The scenario's sync-log entries of one CRM record.
    async fn logs_of(&self, record: &Record) -> anyhow::Result<Vec<LogEntry>> {
        let filter = LogFilter { since: Some(self.started), limit: Some(1000), ..LogFilter::default() };
        let logs = self.rt.svc.store.logs(&self.t, &filter, self.rt.svc.clock.now()).await?;
        Ok(logs.into_iter().filter(|e| e.crm_id.as_ref() == Some(record.id()) && e.job_id.is_none()).collect())
    }

    /// The scenario's `skipped:echo` entries.
    async fn echoes(&self) -> usize {
        let filter = LogFilter {
            outcome: Some(Outcome::Skipped(SkipReason::Echo).key()),
            since: Some(self.started),
            limit: Some(1000),
            ..LogFilter::default()
        };
        let logs = self.rt.svc.store.logs(&self.t, &filter, self.rt.svc.clock.now()).await.unwrap_or_default();
        logs.iter().filter(|e| e.job_id.is_none()).count()
    }

    async fn exportable(&self, stage: Stage, list: OptionList) -> Option<String> {
        setup::exportable(&self.rt.svc, &self.t, self.system, stage, list).await
    }
}
