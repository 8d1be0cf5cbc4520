//! `tandem demo --scenario sync-in`: a tenant imported from its simulator switches inbound
//! sync on, over real HTTP both ways (the runner serves its API; ConnectWise and Halo are
//! registered through their APIs, Syncro and Salesforce subscribed as their admins would
//! set them up), and people change records in the system: a single-field edit, a record
//! changed on both sides, a burst of records sharing one timestamp whose webhooks are all
//! lost (caught by the poll), a record moved out of the mapping and back in, a record
//! created there, a hard delete (told by webhook where
//! the system tells deletes), a hard delete whose webhook is lost (found by the poll's id
//! reconciliation, or Salesforce's delete log), duplicated and reordered deliveries, a
//! forged call and a replayed one. The result is read back from the store and the
//! log; the expectation is the scenario's intent. `webhook_p95_ms` is the 95th percentile,
//! over the scenario's delivered webhooks, of the time from the simulator sending one to
//! the CRM record being written.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

use tandem_domain::log::{LogFilter, Outcome, SkipReason};
use tandem_domain::records::Record;
use tandem_domain::usecases::{connections, crm, sync_in};
use tandem_domain::{RecordKind, System, TenantId};
use tandem_sim::webhooks::Kind;

use crate::demo::DemoOptions;
use crate::runtime::LocalRuntime;
use crate::scene::{self, Synced};
use crate::sims::RunningSim;

/// What the scenario found and meant, in the same shape (`{case: outcome}`), with the
/// webhook latency figure and one row per case for the table.
#[derive(Clone, Debug)]
pub struct SyncDemo {
    pub result: Value,
    pub expected: Value,
    pub webhook_p95_ms: Option<u64>,
    /// The 95th percentile of the intake's answer time over the scenario's deliveries.
    pub intake_p95_ms: Option<u64>,
    pub rows: Vec<[String; 3]>,
}

struct Scene {
    sim: RunningSim,
    rt: LocalRuntime,
    t: TenantId,
    system: System,
    webhook_url: String,
    result: BTreeMap<String, String>,
    expected: BTreeMap<String, String>,
    rows: Vec<[String; 3]>,
    /// The external ids whose webhook latency counts (delivered, not dropped).
    timed: Vec<String>,
    /// Imported companies not used by a case yet.
    spare: Vec<(String, Record)>,
}

/// Runs the scenario.
pub async fn run(opts: &DemoOptions) -> anyhow::Result<SyncDemo> {
    // Every poll of the scenario also reconciles ids (by default once a day).
    let Synced { sim, rt, t, system: _, webhook_url, worker, server } =
        scene::imported_and_syncing(opts, "inbound", Some(Duration::ZERO)).await?;
    let companies = rt.svc.store.all_records(&t, RecordKind::Company).await?;
    let spare = companies
        .into_iter()
        .filter_map(|c| Some((c.link(opts.system)?.id.clone(), c)))
        .collect::<Vec<(String, Record)>>();
    let mut scene = Scene {
        sim,
        rt,
        t,
        system: opts.system,
        webhook_url,
        result: BTreeMap::new(),
        expected: BTreeMap::new(),
        rows: Vec::new(),
        timed: Vec::new(),
        spare,
    };
    let played = scene.play().await;
    let p95 = scene.webhook_p95().await;
    let answers: Vec<u64> = scene.sim.handle().webhooks_sent().iter().filter_map(|w| w.answered_in_millis).collect();
    worker.abort();
    server.abort();
    scene.sim.shutdown().await;
    played?;
    Ok(SyncDemo {
        result: json!(scene.result),
        expected: json!(scene.expected),
        webhook_p95_ms: p95,
        intake_p95_ms: p95_of(answers),
        rows: scene.rows,
    })
}

/// The 95th percentile of `values` (nearest rank); `None` for none.
fn p95_of(mut values: Vec<u64>) -> Option<u64> {
    values.sort_unstable();
    let index = ((values.len() as f64) * 0.95).ceil() as usize;
    values.get(index.checked_sub(1)?).copied()
}

impl Scene {
    async fn play(&mut self) -> anyhow::Result<()> {
        let field = self.sim.handle().company_name_field();

        // One field changed by a person: the webhook brings it in.
        let (id, record) = self.take()?;
        let name = format!("{} (renamed)", record.fields()["name"].as_str().unwrap_or_default());
        self.sim.handle().edit_as_person(Kind::Company, &id, json!({ field: name }))?;
        let seen = self.until_named(&record, &name).await;
        self.timed.push(id);
        self.case("a person renames a company", seen, "updated", "updated");

        // Changed on both sides: the CRM first, the system later; the later side wins and
        // the loser is in the log.
        let (id, record) = self.take()?;
        crm::update(&self.rt.svc, &self.t, RecordKind::Company, record.id(), &json!({"name": "Renamed in the CRM"}))
            .await?;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        self.sim.handle().edit_as_person(Kind::Company, &id, json!({ field: "Renamed in the system later" }))?;
        let won = self.until_named(&record, "Renamed in the system later").await;
        self.timed.push(id.clone());
        let logged = won && self.conflict_logged(&record, "Renamed in the CRM").await?;
        let outcome = if logged { "the later side won, the loser logged" } else { "not merged as meant" };
        self.case("changed on both sides", true, outcome, "the later side won, the loser logged");

        // Duplicated and reordered deliveries: each change ends in one outcome.
        self.sim.handle().duplicate_webhooks(2);
        self.sim.handle().reorder_webhooks(3);
        let mut all = true;
        let mut renamed = Vec::new();
        for n in 0..3 {
            let (id, record) = self.take()?;
            let name = format!("Delivered oddly {n}");
            self.sim.handle().edit_as_person(Kind::Company, &id, json!({ field: name }))?;
            renamed.push((id, record, name));
        }
        self.sim.handle().duplicate_webhooks(0);
        self.sim.handle().reorder_webhooks(0);
        for (id, record, name) in &renamed {
            all &= self.until_named(record, name).await;
            all &= self.updates_logged(record).await? == 1;
            self.timed.push(id.clone());
        }
        self.case("duplicated and reordered webhooks", all, "each change applied once", "each change applied once");

        // A burst sharing one timestamp, every webhook lost: the next poll catches them all.
        // The cases after the burst take six companies.
        let burst = self.spare.len().saturating_sub(6).min(200);
        self.sim.handle().drop_webhooks(1);
        let mut burst_records = Vec::new();
        for n in 0..burst {
            let (id, record) = self.take()?;
            let name = format!("Burst rename {n}");
            self.sim.handle().edit_as_person(Kind::Company, &id, json!({ field: name }))?;
            burst_records.push((record, name));
        }
        self.sim.handle().webhooks_settled(Duration::from_secs(10)).await;
        self.sim.handle().drop_webhooks(0);
        sync_in::start_poll(&self.rt.svc, &self.t, self.system).await?;
        let mut caught = 0;
        for (record, name) in &burst_records {
            if self.until_named(record, name).await {
                caught += 1;
            }
        }
        self.case(
            "a burst whose webhooks are lost, caught by the poll",
            true,
            &format!("{caught} of {burst} caught"),
            &format!("{burst} of {burst} caught"),
        );

        // A company moved out of the mapping by a person (its type becomes one no CRM type
        // is mapped to), renamed meanwhile: left as the CRM has it, logged. Moved back in:
        // its changes come in again. (Syncro customers have no type.)
        if let Some((unmapped, mapped)) = scene::type_pair(self.system) {
            let (id, record) = self.take()?;
            let change = |type_name: &str, name: &str| -> anyhow::Result<Value> {
                let mut change = self
                    .sim
                    .handle()
                    .company_type_change(type_name)
                    .ok_or_else(|| anyhow::anyhow!("{type_name} is not a company type here"))?;
                change[field] = json!(name);
                Ok(change)
            };
            let (out, back) = (change(unmapped, "Renamed out of the mapping")?, change(mapped, "Back in the mapping")?);
            self.sim.handle().edit_as_person(Kind::Company, &id, out)?;
            let logged = self
                .until(async || {
                    self.logs_of_external(&id)
                        .await
                        .iter()
                        .any(|e| e.outcome == Outcome::Skipped(SkipReason::TypeNotMapped))
                })
                .await;
            let kept = self.current(&record).await.is_some_and(|r| r.fields()["name"] == record.fields()["name"]);
            let got = if kept { "left as the CRM has it, logged" } else { "changed in the CRM" };
            self.case("a company moved out of the mapping", logged, got, "left as the CRM has it, logged");
            self.sim.handle().edit_as_person(Kind::Company, &id, back)?;
            let came = self.until_named(&record, "Back in the mapping").await;
            self.timed.push(id);
            self.case("a company moved back into the mapping", came, "updated", "updated");
        }

        // A company created in the system by a person comes in.
        let created = format!("Created by a person in {}", self.system.display_name());
        let fields = match self.system {
            System::ConnectWise => json!({"identifier": "PersonMade", "name": created}),
            _ => json!({ field: created }),
        };
        let ext = self.sim.handle().create_as_person(Kind::Company, fields)?;
        let came = self.until_linked(&ext).await;
        self.timed.push(ext);
        self.case("a person creates a company", came, "created", "created");

        // A hard delete, with deletes propagating: the CRM record goes, by its webhook where
        // the system tells deletes (Salesforce's Outbound Messages do not: the next poll
        // reads its delete log).
        connections::save_settings(&self.rt.svc, &self.t, self.system, &json!({"propagate_deletes": true})).await?;
        let (id, record) = self.take()?;
        self.sim.handle().delete_as_person(Kind::Company, &id)?;
        let by_webhook = self.system != System::Salesforce;
        let gone = if by_webhook { self.until_gone(&record).await } else { self.gone_after_poll(&record).await? };
        let how =
            if by_webhook { "removed from the CRM by its webhook" } else { "removed from the CRM by the next poll" };
        self.case("a person deletes a company", true, if gone { how } else { "still in the CRM" }, how);

        // A hard delete whose webhook is lost: the next poll finds it (an id
        // reconciliation; Salesforce's delete log).
        let (id, record) = self.take()?;
        self.sim.handle().drop_webhooks(1);
        self.sim.handle().delete_as_person(Kind::Company, &id)?;
        self.sim.handle().webhooks_settled(Duration::from_secs(10)).await;
        self.sim.handle().drop_webhooks(0);
        let gone = self.gone_after_poll(&record).await?;
        let got = if gone { "removed from the CRM by the next poll" } else { "still in the CRM" };
        self.case("a hard delete whose webhook is lost", true, got, "removed from the CRM by the next poll");

        // A forged call: refused, nothing changes.
        let (_, record) = self.take()?;
        let status = reqwest::Client::new()
            .post(format!("{}?token=forged", self.webhook_url))
            .header("authorization", "Bearer forged")
            .header("x-content-signature", "Zm9yZ2Vk")
            .json(&json!({"id": 1, "ID": 1, "Type": "company", "Action": "updated"}))
            .send()
            .await?
            .status()
            .as_u16();
        let same = self.rt.svc.store.record(&self.t, RecordKind::Company, record.id()).await?.as_ref() == Some(&record);
        let got = if (status == 401 || status == 400) && same { "refused, nothing changed" } else { "accepted" };
        self.case("a forged webhook call", true, got, "refused, nothing changed");

        // A replayed call (one accepted before, sent again byte for byte, signature and
        // all): acknowledged and ignored.
        let got = match self.sim.handle().last_accepted_webhook() {
            None => "no webhook to replay".to_string(),
            Some(call) => {
                let mut request = reqwest::Client::new().post(&call.url).header("content-type", call.content_type);
                for (name, value) in &call.headers {
                    request = request.header(name.as_str(), value.as_str());
                }
                let answer = request.body(call.body.clone()).send().await?;
                let status = answer.status().as_u16();
                let text = answer.text().await.unwrap_or_default();
                // Salesforce reads only its SOAP acknowledgement; the others get the
                // intake's JSON, which says whether the call was a replay.
                let replay = serde_json::from_str::<Value>(&text)
                    .map_or(text.contains("<Ack>true</Ack>"), |v| v["replay"] == json!(true));
                if status == 200 && replay {
                    "acknowledged, ignored".into()
                } else {
                    format!("answered {status}: {text}")
                }
            }
        };
        self.case("a replayed webhook call", true, &got, "acknowledged, ignored");
        Ok(())
    }

    /// Starts a poll and waits until `record` is gone from the CRM; whether it went.
    async fn gone_after_poll(&self, record: &Record) -> anyhow::Result<bool> {
        sync_in::start_poll(&self.rt.svc, &self.t, self.system).await?;
        Ok(self.until_gone(record).await)
    }

    fn take(&mut self) -> anyhow::Result<(String, Record)> {
        self.spare.pop().ok_or_else(|| anyhow::anyhow!("the tenant has too few companies for the scenario"))
    }

    fn case(&mut self, case: &str, happened: bool, got: &str, meant: &str) {
        let got = if happened { got.to_string() } else { "did not happen in time".into() };
        self.rows.push([case.to_string(), got.clone(), meant.to_string()]);
        self.result.insert(case.to_string(), got);
        self.expected.insert(case.to_string(), meant.to_string());
    }

    async fn current(&self, record: &Record) -> Option<Record> {
        self.rt.svc.store.record(&self.t, RecordKind::Company, record.id()).await.ok().flatten()
    }

    /// Waits until `check` holds, at most [`scene::PATIENCE`]; whether it did.
    async fn until(&self, check: impl AsyncFn() -> bool) -> bool {
        scene::until(check).await
    }

    async fn until_named(&self, record: &Record, name: &str) -> bool {
        self.until(async || self.current(record).await.is_some_and(|r| r.fields()["name"] == json!(name))).await
    }

    async fn until_gone(&self, record: &Record) -> bool {
        self.until(async || self.current(record).await.is_none()).await
    }

    async fn until_linked(&self, ext: &str) -> bool {
        let store = &self.rt.svc.store;
        self.until(async || {
            store.linked_id(&self.t, self.system, RecordKind::Company, ext).await.is_ok_and(|id| id.is_some())
        })
        .await
    }

    async fn logs_of(&self, record: &Record) -> anyhow::Result<Vec<tandem_domain::log::LogEntry>> {
        let filter = LogFilter { limit: Some(1000), ..LogFilter::default() };
        let logs = self.rt.svc.store.logs(&self.t, &filter, self.rt.svc.clock.now()).await?;
        Ok(logs.into_iter().filter(|e| e.crm_id.as_ref() == Some(record.id()) && e.job_id.is_none()).collect())
    }

    async fn logs_of_external(&self, ext: &str) -> Vec<tandem_domain::log::LogEntry> {
        let filter = LogFilter { limit: Some(1000), ..LogFilter::default() };
        let logs = self.rt.svc.store.logs(&self.t, &filter, self.rt.svc.clock.now()).await.unwrap_or_default();
        logs.into_iter().filter(|e| e.external_id.as_deref() == Some(ext) && e.job_id.is_none()).collect()
    }

    async fn conflict_logged(&self, record: &Record, loser: &str) -> anyhow::Result<bool> {
        let logs = self.logs_of(record).await?;
        Ok(logs.iter().flat_map(|e| &e.conflicts).any(|c| c.field == "name" && c.loser == json!(loser)))
    }

    async fn updates_logged(&self, record: &Record) -> anyhow::Result<usize> {
        Ok(self.logs_of(record).await?.iter().filter(|e| e.outcome == Outcome::Updated).count())
    }

    /// The 95th percentile of the time from a timed webhook's sending to its record's
    /// write, over the deliveries that reached the runner.
    async fn webhook_p95(&self) -> Option<u64> {
        let sent = self.sim.handle().webhooks_sent();
        let mut latencies = Vec::new();
        for ext in &self.timed {
            let Some(first) = sent
                .iter()
                .filter(|w| &w.id == ext && !w.dropped && w.status.is_some())
                .map(|w| w.sent_unix_millis)
                .min()
            else {
                continue;
            };
            let Ok(Some(id)) = self.rt.svc.store.linked_id(&self.t, self.system, RecordKind::Company, ext).await else {
                continue;
            };
            let Ok(Some(record)) = self.rt.svc.store.record(&self.t, RecordKind::Company, &id).await else { continue };
            let written = record.meta().updated_at.unix_millis();
            latencies.push(u64::try_from(written - first as i64).unwrap_or(0));
        }
        p95_of(latencies)
    }
}
