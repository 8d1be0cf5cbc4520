//! `tandem demo --system salesforce --scenario spotio --object lead|account`: Salesforce's
//! field-level mode ("SPOTIO mode") end to end against the Salesforce simulator over real
//! HTTP, through the use cases the functions run (the runner's API for the field map and
//! the selective-sync criteria, the record API's use cases for CRM changes, the queue's
//! worker for the pushes, the schedule's tick for the polls).
//!
//! Cases, each on its own CRM company: an impossible field map refused naming each field
//! (nothing saved); the valid map saved; `auto_sync: two_way` switched on with no import;
//! the criteria saved (`company_type` equals `customer`, a prospect made meanwhile logged
//! `skipped:not_selected`, then equals `prospect`); a matching company created, and its
//! contact once the company is sent (a Lead, or an Account with a Contact, holding the
//! mapped fields custom ones included, the Lead its contact's person in place of the map's
//! `LastName` default); a company not matching (not sent, logged `skipped:not_selected`); a
//! company that matched before the rule was saved and is not touched (not sent); a
//! retroactive save (its `queued` count, and those companies sent); a CRM edit of a mapped
//! field (Salesforce updated); a mapped field empty when the company was sent, filled in
//! the CRM (Salesforce holds it, the CRM keeps it); edits in Salesforce, of the Lead or
//! Account's company name and of a person field (the Lead's or the Contact's email), each
//! in the CRM after the schedule's tick with nothing written back; an activity logged (a
//! Task with its fields) and marked done (the Task completed); and on the Account target an
//! opportunity moved to the map's stage (an Opportunity on the Account) and one Salesforce
//! refuses (a name longer than `Opportunity.Name` holds: logged failed with Salesforce's
//! code and message, nothing linked, no Opportunity; a negative amount, which the org's
//! validation rule would refuse, cannot be made, since the CRM takes no amount below 0).
//!
//! Each case's `result` is read back from the store, the sync log and the simulator
//! (through the connector's `query_objects`); `expected` is the case's intent.
//! `vendor_writes` counts the simulator's API writes over the scenario.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tandem_domain::field_map::Target;
use tandem_domain::log::{Direction, LogEntry, LogFilter, Outcome};
use tandem_domain::ports::{Connector, ObjectQuery, ObjectRow};
use tandem_domain::records::{Meta, Record, User};
use tandem_domain::table::RecordWrite;
use tandem_domain::usecases::{connections, crm, schedule};
use tandem_domain::vocab::{Role, UserState};
use tandem_domain::{RecordKind, System, TenantId, Timestamp};
use tandem_embedded::QueueConfig;

use crate::demo::DemoOptions;
use crate::runtime::LocalRuntime;
use crate::scene;
use crate::sims::{self, RunningSim};

/// What the scenario found and meant, in the same shape (`{case: outcome}`), the
/// simulator's writes, and one row per case for the table.
#[derive(Clone, Debug)]
pub struct SpotioDemo {
    pub object: Target,
    pub result: Value,
    pub expected: Value,
    /// The simulator's API writes over the scenario.
    pub vendor_writes: u64,
    pub rows: Vec<[String; 3]>,
}

/// The CRM stage whose opportunities become Salesforce Opportunities (Account target).
const STAGE: &str = "proposal";
/// The Salesforce stage those Opportunities get (a default of the map).
const SF_STAGE: &str = "Proposal/Price Quote";
/// The CRM company type the selective rule selects.
const SELECTED: &str = "prospect";
/// The custom CRM field mapped to a custom Salesforce field (`Territory__c`).
const CUSTOM: &str = "territory";
/// A custom CRM field mapped to a custom Salesforce long text, empty when a company is
/// first sent.
const NOTES: &str = "notes";

/// The Task fields the activity cases read.
const TASK_FIELDS: [&str; 5] = ["Subject", "Description", "ActivityDate", "Status", "WhoId"];

/// The words of one target: the object a company becomes and the fields the cases read.
struct Words {
    target: Target,
    /// `Lead` or `Account`.
    object: &'static str,
    /// The Salesforce field the company's name goes to.
    name: &'static str,
    /// The custom field [`CUSTOM`] goes to.
    custom: &'static str,
    /// The custom long text [`NOTES`] goes to.
    notes: &'static str,
    /// The restricted picklist the company type goes to, and the value `prospect` becomes.
    choice: (&'static str, &'static str),
    /// The formula field the impossible map names, and a picklist value not allowed.
    formula: &'static str,
    bad_value: &'static str,
}

impl Words {
    fn of(target: Target) -> Self {
        match target {
            Target::Lead => Words {
                target,
                object: "Lead",
                name: "Company",
                custom: "Territory__c",
                notes: "Visit_Notes__c",
                choice: ("Visit_Result__c", "Follow Up"),
                formula: "Is_Web_Lead__c",
                bad_value: "Maybe Later",
            },
            Target::Account => Words {
                target,
                object: "Account",
                name: "Name",
                custom: "Territory__c",
                notes: "Account_Notes__c",
                choice: ("Type", "Prospect"),
                formula: "Is_Customer__c",
                bad_value: "Platinum Prospect",
            },
        }
    }

    /// The map the scenario saves.
    fn map(&self) -> Value {
        let (choice, value) = self.choice;
        let mut fields = vec![
            json!({"crm": "company.name", "salesforce": self.name}),
            json!({"crm": "company.phone", "salesforce": "Phone"}),
            json!({"crm": format!("company.custom.{CUSTOM}"), "salesforce": self.custom}),
            json!({"crm": format!("company.custom.{NOTES}"), "salesforce": self.notes}),
            json!({"crm": "company.company_type", "salesforce": choice, "values": {SELECTED: value}}),
            json!({"crm": "contact.first_name", "salesforce": "FirstName"}),
            json!({"crm": "contact.last_name", "salesforce": "LastName"}),
            json!({"crm": "contact.email", "salesforce": "Email"}),
        ];
        match self.target {
            // A Lead takes the person from the company's first contact; until it has one,
            // the default names nobody yet.
            Target::Lead => json!({"target": "lead", "fields": fields,
                "defaults": {"Lead": {"LeadSource": "Other", "LastName": "Unknown"}}}),
            Target::Account => {
                fields.extend([
                    json!({"crm": "opportunity.name", "salesforce": "Name"}),
                    json!({"crm": "opportunity.close_date", "salesforce": "CloseDate"}),
                    json!({"crm": "opportunity.value", "salesforce": "Amount"}),
                ]);
                json!({"target": "account", "fields": fields,
                    "defaults": {"Opportunity": {"StageName": SF_STAGE}, "Contact": {"LeadSource": "Other"}},
                    "opportunity_stage": STAGE})
            }
        }
    }

    /// The map with two fields that cannot work: a formula field, and a restricted
    /// picklist given a value it does not allow.
    fn impossible_map(&self) -> (Value, Vec<String>) {
        let mut map = self.map();
        let (choice, _) = self.choice;
        if let Some(fields) = map["fields"].as_array_mut() {
            fields.retain(|f| f["salesforce"] != choice);
            fields.push(json!({"crm": "company.website", "salesforce": self.formula}));
            fields.push(json!({"crm": "company.company_type", "salesforce": choice,
                "values": {SELECTED: self.bad_value}}));
        }
        (map, vec![format!("{}.{}", self.object, self.formula), format!("{}.{choice}", self.object)])
    }
}

/// The scenario's state: the simulator, the runner serving its API, the connection's
/// connector, and the cases so far.
struct Scene {
    sim: RunningSim,
    rt: LocalRuntime,
    t: TenantId,
    connector: Arc<dyn Connector>,
    http: reqwest::Client,
    /// The runner's API, `http://127.0.0.1:PORT`.
    api: String,
    w: Words,
    /// The CRM user activities are logged by.
    user: String,
    started: Timestamp,
    result: BTreeMap<String, String>,
    expected: BTreeMap<String, String>,
    rows: Vec<[String; 3]>,
}

/// A CRM company the scenario made, with its first contact.
struct Company {
    record: Record,
    contact: Record,
}

/// Runs the scenario for `target` (Salesforce only).
pub async fn run(opts: &DemoOptions, target: Target) -> anyhow::Result<SpotioDemo> {
    anyhow::ensure!(
        opts.system == System::Salesforce,
        "the spotio scenario is Salesforce's field-level mode: run it with --system salesforce, not {}",
        opts.system
    );
    let sim = sims::start(System::Salesforce, &opts.scale, opts.sim.clone(), 0).await?;
    let mut rt = LocalRuntime::new(None, QueueConfig::default(), opts.connectors.clone())?;
    let t = TenantId::parse(crate::server::DEFAULT_TENANT)?;
    let now = rt.svc.clock.now();
    let user = Record::User(User {
        meta: Meta::new(now),
        email: "field.rep@msp.example".into(),
        name: "Field Rep".into(),
        role: Role::parse("salesperson")?,
        state: UserState::Active,
    });
    let user_id = user.id().to_string();
    rt.svc.store.write(&t, RecordWrite { record: user, previous: None, ledger: None, log: None }).await?;
    connections::save_credentials(&rt.svc, &t, System::Salesforce, &sim.credentials).await?;
    let (addr, server) = crate::server::serve(rt.clone(), "127.0.0.1:0".parse()?).await?;
    rt.svc.tuning.public_url = Some(format!("http://{addr}"));
    let connector = connections::connector(&rt.svc, &t, System::Salesforce).await?;
    let writes_before = sim.handle().stats().writes();
    let worker = rt.spawn_worker();
    let mut scene = Scene {
        sim,
        rt,
        t,
        connector,
        http: reqwest::Client::new(),
        api: format!("http://{addr}"),
        w: Words::of(target),
        user: user_id,
        started: now,
        result: BTreeMap::new(),
        expected: BTreeMap::new(),
        rows: Vec::new(),
    };
    let played = scene.play().await;
    let vendor_writes = scene.writes().saturating_sub(writes_before);
    worker.abort();
    server.abort();
    scene.sim.shutdown().await;
    played?;
    Ok(SpotioDemo {
        object: target,
        result: json!(scene.result),
        expected: json!(scene.expected),
        vendor_writes,
        rows: scene.rows,
    })
}

impl Scene {
    async fn play(&mut self) -> anyhow::Result<()> {
        self.impossible_map().await?;
        self.valid_map().await?;
        self.switch_on().await?;
        // A prospect made while the criteria select customers: it matched before the rule.
        let before = self.rules().await?;
        let sent = self.matching_company().await?;
        self.not_matching().await?;
        self.untouched(&before).await?;
        self.retroactive(&before).await?;
        self.crm_edit(&sent).await?;
        self.crm_fill(&sent).await?;
        self.salesforce_edit(&sent).await?;
        self.salesforce_person_edit(&sent).await?;
        self.activity(&sent).await?;
        if self.w.target == Target::Account {
            self.opportunity_at_stage(&sent).await?;
            self.refused_opportunity(&sent).await?;
        }
        Ok(())
    }

    /// A map naming a formula field and a picklist value Salesforce does not allow.
    async fn impossible_map(&mut self) -> anyhow::Result<()> {
        let (map, fields) = self.w.impossible_map();
        let (status, body) = self.put("/connections/salesforce/field-map", &map).await?;
        let message = body["error"]["message"].as_str().unwrap_or_default().to_string();
        let named: Vec<&String> = fields.iter().filter(|f| message.contains(f.as_str())).collect();
        let saved = self.get("/connections/salesforce/field-map").await?["map"].is_object();
        let meant = format!("refused (422) naming {}; nothing saved", fields.join(", "));
        let got = match (status, named.len() == fields.len(), saved) {
            (422, true, false) => meant.clone(),
            (422, _, false) => format!("refused (422), naming {named:?} only: {message}"),
            (_, _, true) => format!("saved ({status})"),
            (s, ..) => format!("answered {s}: {body}"),
        };
        self.case("an impossible field map", &got, &meant);
        Ok(())
    }

    async fn valid_map(&mut self) -> anyhow::Result<()> {
        let map = self.w.map();
        let (status, body) = self.put("/connections/salesforce/field-map", &map).await?;
        let n = map["fields"].as_array().map_or(0, Vec::len);
        let held = self.get("/connections/salesforce/field-map").await?;
        let meant = format!("saved: {n} fields to the {}", self.w.object);
        let got = match (status, held["map"]["fields"].as_array().map(Vec::len)) {
            (200, Some(k)) if k == n => meant.clone(),
            (200, k) => format!("saved, {k:?} fields held"),
            (s, _) => format!("answered {s}: {}", body["error"]["message"].as_str().unwrap_or_default()),
        };
        self.case("the valid field map", &got, &meant);
        Ok(())
    }

    /// The criteria saved: first `company_type` equals `customer` (so the company made
    /// next, a prospect, is seen and not selected), then equals `prospect`, each applying
    /// from when it is saved.
    async fn rules(&mut self) -> anyhow::Result<Company> {
        let first = self.save_rule("customer").await?;
        let made = self.company("Matched Before The Rule Ltd", SELECTED, "Pat", "Early").await?;
        let skipped = self.skipped(&made.record).await?;
        let second = self.save_rule(SELECTED).await?;
        let meant = format!(
            "saved: equals customer (a prospect made then not selected), then equals {SELECTED}, each from then on"
        );
        let got = match (first, skipped, second) {
            (Ok(()), true, Ok(())) => meant.clone(),
            (Err(e), ..) | (_, _, Err(e)) => e,
            (_, false, _) => format!(
                "the prospect made under the first rule not logged skipped:not_selected ({})",
                self.last_log(&made.record).await
            ),
        };
        self.case("a selective rule", &got, &meant);
        Ok(made)
    }

    /// Saves the one rule `company.company_type` equals `value`; why not, if not.
    async fn save_rule(&self, value: &str) -> anyhow::Result<Result<(), String>> {
        let body = json!({"rules": [{"field": "company.company_type", "equals": value}], "retroactive": false});
        let (status, answer) = self.put("/connections/salesforce/selective-sync", &body).await?;
        let saved = answer.get("selective_sync").unwrap_or(&answer);
        Ok(match (status, saved["rules"][0]["equals"].as_str(), saved["since"].is_string()) {
            (200, Some(v), true) if v == value => Ok(()),
            (s, ..) => Err(format!("answered {s}: {answer}")),
        })
    }

    /// Whether the record's push was logged `skipped:not_selected` (waiting for it).
    async fn skipped(&self, record: &Record) -> anyhow::Result<bool> {
        let skipped = scene::until(async || {
            self.logs_of(record).await.is_ok_and(|logs| {
                logs.iter().any(|e| e.direction == Direction::SyncOut && e.outcome.key() == "skipped:not_selected")
            })
        })
        .await;
        self.settle().await?;
        Ok(skipped)
    }

    /// `auto_sync: two_way` saved with no import (none is needed in field-level mode); the
    /// simulator's Outbound Messages pointed at the runner as an admin would.
    async fn switch_on(&mut self) -> anyhow::Result<()> {
        let body = json!({"auto_sync": "two_way"});
        let meant = "two_way, with no import";
        let got = match connections::save_settings(&self.rt.svc, &self.t, System::Salesforce, &body).await {
            Ok(view) => {
                if let Some(hook) = view.webhook
                    && hook.registered.is_none()
                {
                    let url = format!("{}?token={}", hook.url.unwrap_or_default(), hook.secret);
                    anyhow::ensure!(self.sim.handle().subscribe(&url), "no Outbound Message subscription");
                }
                meant.to_string()
            }
            Err(e) => format!("refused: {e}"),
        };
        self.case("the sync switched on", &got, meant);
        Ok(())
    }

    /// A matching company created in the CRM with a contact: created in Salesforce with
    /// the mapped fields (and on the Account target its contact as a Contact on it).
    async fn matching_company(&mut self) -> anyhow::Result<Company> {
        let company = self.company_and_contact("Northwind Roofing", SELECTED, ("Dana", "Reyes"), true).await?;
        let linked = scene::until(async || self.linked(&company.record).await.is_some()).await;
        self.settle().await?;
        let (choice, value) = self.w.choice;
        let want = [
            (self.w.name, json!("Northwind Roofing")),
            ("Phone", json!("+1 555 201 0100")),
            (self.w.custom, json!("North Shore")),
            (choice, json!(value)),
        ];
        let person =
            [("FirstName", json!("Dana")), ("LastName", json!("Reyes")), ("Email", json!("dana@northwind.example"))];
        let mut differ = Vec::new();
        let id = self.linked(&company.record).await;
        match &id {
            Some(id) => {
                let mut fields: Vec<&str> = want.iter().map(|(f, _)| *f).collect();
                if self.w.target == Target::Lead {
                    fields.extend(person.iter().map(|(f, _)| *f).chain(["LeadSource"]));
                }
                let row = self.row(self.w.object, id, &fields).await?;
                differ.extend(differences(self.w.object, row.as_ref(), &want));
                if self.w.target == Target::Lead {
                    differ.extend(differences("Lead", row.as_ref(), &person));
                    differ.extend(differences("Lead", row.as_ref(), &[("LeadSource", json!("Other"))]));
                } else {
                    let contact = self.linked(&company.contact).await;
                    let row = match &contact {
                        Some(c) => self.row("Contact", c, &["FirstName", "LastName", "Email", "AccountId"]).await?,
                        None => None,
                    };
                    let on = [("AccountId", json!(id))];
                    differ.extend(differences(
                        "Contact",
                        row.as_ref(),
                        &person.iter().cloned().chain(on).collect::<Vec<_>>(),
                    ));
                }
            }
            None => differ.push(format!("not linked ({})", self.last_log(&company.record).await)),
        }
        let logged = self
            .logs_of(&company.record)
            .await?
            .iter()
            .any(|e| e.direction == Direction::SyncOut && e.outcome == Outcome::Created && e.external_id == id);
        let with = match self.w.target {
            Target::Lead => "a Lead with the mapped fields (custom ones included, the choice as its picklist value)",
            Target::Account => "an Account with the mapped fields (custom ones included), its contact a Contact on it",
        };
        let meant = format!("created as {with}; logged sync_out created");
        let got = match (linked && differ.is_empty(), logged) {
            (true, true) => meant.clone(),
            (true, false) => format!("created as {with}; no sync_out created entry"),
            (false, _) => {
                let held = self.crm(&company.contact).await.map(|c| {
                    let f = c.fields();
                    format!("{} {} <{}>", f["first_name"], f["last_name"], f["email"])
                });
                format!("{}; the CRM contact now {}", differ.join("; "), held.unwrap_or_else(|| "gone".into()))
            }
        };
        self.case("a matching CRM company", &got, &meant);
        Ok(company)
    }

    /// A company whose type the rule does not select: not sent, logged `skipped:not_selected`.
    async fn not_matching(&mut self) -> anyhow::Result<()> {
        let company = self.company("Harbor Dental Group", "client", "Lee", "Okafor").await?;
        let skipped = self.skipped(&company.record).await?;
        let there = self.named_there("Harbor Dental Group").await?;
        let meant = "not in Salesforce; logged skipped:not_selected";
        let got = match (there, self.linked(&company.record).await, skipped) {
            (0, None, true) => meant.to_string(),
            (0, None, false) => {
                format!("not in Salesforce; not logged skipped:not_selected ({})", self.last_log(&company.record).await)
            }
            (n, _, _) => format!("{n} in Salesforce"),
        };
        self.case("a company the rule does not select", &got, meant);
        Ok(())
    }

    /// The company that matched before the rule was saved, not touched since: not sent.
    async fn untouched(&mut self, before: &Company) -> anyhow::Result<()> {
        self.settle().await?;
        let there = self.named_there("Matched Before The Rule Ltd").await?;
        let meant = "not sent";
        let got = match (there, self.linked(&before.record).await) {
            (0, None) => meant.to_string(),
            (n, link) => format!("sent: {n} in Salesforce, linked to {link:?}"),
        };
        self.case("a company that matched before the rule, untouched", &got, meant);
        Ok(())
    }

    /// The rule saved again with `retroactive`: the company that matched before is queued
    /// (the count in the answer) and sent.
    async fn retroactive(&mut self, before: &Company) -> anyhow::Result<()> {
        let body = json!({"rules": [{"field": "company.company_type", "equals": SELECTED}], "retroactive": true});
        let (status, answer) = self.put("/connections/salesforce/selective-sync", &body).await?;
        let queued = answer["queued"].as_u64().or(answer["selective_sync"]["queued"].as_u64());
        let sent = status == 200 && scene::until(async || self.linked(&before.record).await.is_some()).await;
        self.settle().await?;
        let there = self.named_there("Matched Before The Rule Ltd").await?;
        let meant = "queued 1; sent";
        let got = match (status, queued, sent && there == 1) {
            (200, Some(1), true) => meant.to_string(),
            (200, q, s) => format!("queued {q:?}; {}", if s { "sent" } else { "not sent" }),
            (s, ..) => format!("answered {s}: {}", answer["error"]["message"].as_str().unwrap_or_default()),
        };
        self.case("a retroactive save", &got, meant);
        Ok(())
    }

    /// A mapped field (the custom one) edited in the CRM reaches Salesforce.
    async fn crm_edit(&mut self, company: &Company) -> anyhow::Result<()> {
        let notes = "South Shore";
        let body = json!({"custom_fields": {CUSTOM: notes}});
        crm::update(&self.rt.svc, &self.t, RecordKind::Company, company.record.id(), &body).await?;
        let custom = self.w.custom;
        let updated = match self.linked(&company.record).await {
            Some(id) => {
                scene::until(async || {
                    self.row(self.w.object, &id, &[custom])
                        .await
                        .ok()
                        .flatten()
                        .is_some_and(|r| r[custom] == json!(notes))
                })
                .await
            }
            None => false,
        };
        self.settle().await?;
        let meant = format!("Salesforce's {}.{custom} updated", self.w.object);
        let got = match updated {
            true => meant.clone(),
            false => format!("not updated ({})", self.last_log(&company.record).await),
        };
        self.case("a CRM edit of a mapped field", &got, &meant);
        Ok(())
    }

    /// A mapped field empty when the company was sent, filled in the CRM: Salesforce holds
    /// it, and the CRM keeps it.
    async fn crm_fill(&mut self, company: &Company) -> anyhow::Result<()> {
        let notes = "Gate code 4512; dog in the yard";
        let body = json!({"custom_fields": {CUSTOM: "South Shore", NOTES: notes}});
        crm::update(&self.rt.svc, &self.t, RecordKind::Company, company.record.id(), &body).await?;
        let field = self.w.notes;
        let there = async || match self.linked(&company.record).await {
            Some(id) => {
                self.row(self.w.object, &id, &[field]).await.ok().flatten().is_some_and(|r| r[field] == json!(notes))
            }
            None => false,
        };
        let updated = scene::until(there).await;
        self.settle().await?;
        let kept = self.crm_field(&company.record, "custom_fields").await.is_some_and(|c| c[NOTES] == json!(notes));
        let meant = format!("Salesforce's {}.{field} holds it; the CRM keeps it", self.w.object);
        let got = match (updated && there().await, kept) {
            (true, true) => meant.clone(),
            (true, false) => format!("Salesforce's {}.{field} holds it; the CRM lost it", self.w.object),
            (false, true) => format!("not in Salesforce ({})", self.last_log(&company.record).await),
            (false, false) => format!(
                "not in Salesforce, and the CRM lost it: custom fields now {} ({})",
                self.crm_field(&company.record, "custom_fields").await.unwrap_or_default(),
                self.last_log(&company.record).await
            ),
        };
        self.case("a mapped field empty when sent, filled in the CRM", &got, &meant);
        Ok(())
    }

    /// The company's name edited in Salesforce: the CRM's name after a tick, nothing
    /// written back.
    async fn salesforce_edit(&mut self, company: &Company) -> anyhow::Result<()> {
        let object = self.w.object;
        let meant = format!("the CRM company's name updated after a tick; nothing written back to the {object}");
        let edit = (object, self.w.name, "Northwind Roofing & Solar");
        self.edited_there("an edit in Salesforce", &company.record, edit, (&company.record, "name"), &meant).await
    }

    /// A person field edited in Salesforce (a Lead's `Email`, or the Contact's): the CRM
    /// contact's email after a tick, nothing written back.
    async fn salesforce_person_edit(&mut self, company: &Company) -> anyhow::Result<()> {
        let (object, of) = match self.w.target {
            Target::Lead => ("Lead", &company.record),
            Target::Account => ("Contact", &company.contact),
        };
        let meant = format!("the CRM contact's email updated after a tick; nothing written back to the {object}");
        let edit = (object, "Email", "dana.reyes@northwind-solar.example");
        self.edited_there("a person field edited in Salesforce", of, edit, (&company.contact, "email"), &meant).await
    }

    /// `field` of the `object` linked to `linked_to` set to `value` in Salesforce through
    /// its API; whether the CRM `record`'s `crm_field` holds it after the schedule's ticks,
    /// with nothing written back.
    async fn edited_there(
        &mut self,
        case: &str,
        linked_to: &Record,
        (object, field, value): (&str, &str, &str),
        (record, crm_field): (&Record, &str),
        meant: &str,
    ) -> anyhow::Result<()> {
        let Some(id) = self.linked(linked_to).await else {
            self.case(case, &format!("no {object} to edit"), meant);
            return Ok(());
        };
        let mut fields = ObjectRow::new();
        fields.insert(field.into(), json!(value));
        self.connector.update_object(object, &id, &fields).await?;
        let before = self.writes();
        let pulled = self.until_ticked(async || self.crm_field(record, crm_field).await == Some(json!(value))).await;
        self.settle().await?;
        let written_back = self.writes() - before;
        let got = match (pulled, written_back) {
            (true, 0) => meant.to_string(),
            (true, n) => format!("the CRM's {crm_field} updated; {n} written back"),
            (false, _) => format!("the CRM's {crm_field} not updated ({})", self.last_log(record).await),
        };
        self.case(case, &got, meant);
        Ok(())
    }

    /// Ticks the schedule (and drains the queue) until `check` holds, at most
    /// [`scene::PATIENCE`]; whether it did.
    async fn until_ticked(&self, check: impl AsyncFn() -> bool) -> bool {
        scene::until(async || {
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "tick failed");
            }
            check().await
        })
        .await
    }

    /// An activity logged in the CRM becomes a Task on the Lead (or the Contact); marked
    /// done, the Task is completed.
    async fn activity(&mut self, company: &Company) -> anyhow::Result<()> {
        let who = match self.w.target {
            Target::Lead => self.linked(&company.record).await,
            Target::Account => self.linked(&company.contact).await,
        };
        let on = match self.w.target {
            Target::Lead => "the Lead",
            Target::Account => "the Contact",
        };
        let body = json!({"kind": "meeting", "subject": "Door knock: roof inspection", "body": "Met Dana, wants a quote",
            "date": "2027-01-15T10:00:00Z", "done": false, "contact": company.contact.id(),
            "company": company.record.id(), "created_by": self.user});
        let activity = crm::create(&self.rt.svc, &self.t, RecordKind::Activity, &body).await?;
        let fields = TASK_FIELDS;
        let task = async |status: &str| self.task(who.as_deref(), status).await;
        let made = scene::until(async || task("Not Started").await.is_some()).await;
        self.settle().await?;
        let want = [
            ("Subject", json!("Door knock: roof inspection")),
            ("Description", json!("Met Dana, wants a quote")),
            ("ActivityDate", json!("2027-01-15")),
            ("Status", json!("Not Started")),
        ];
        let row = task("Not Started").await;
        let differ = differences("Task", row.as_ref(), &want);
        let meant = format!("a Task on {on}: Subject, Description, ActivityDate 2027-01-15, Status Not Started");
        let got = match (who.is_some(), made && differ.is_empty()) {
            (false, _) => format!("{on} is not in Salesforce"),
            (true, true) => meant.clone(),
            (true, false) => match self.tasks_of(who.as_deref().unwrap_or_default(), &fields).await?.first() {
                Some(_) => differ.join("; "),
                None => format!("no Task ({})", self.last_log(&activity).await),
            },
        };
        self.case("an activity logged", &got, &meant);

        crm::update(&self.rt.svc, &self.t, RecordKind::Activity, activity.id(), &json!({"done": true})).await?;
        let completed = scene::until(async || self.task(who.as_deref(), "Completed").await.is_some()).await;
        self.settle().await?;
        let count = match &who {
            Some(who) => self.tasks_of(who, &fields).await?.len(),
            None => 0,
        };
        let meant = "the Task completed (one Task)";
        let got = match (completed, count) {
            (true, 1) => meant.to_string(),
            (true, n) => format!("a Task completed; {n} Tasks"),
            (false, _) => format!("not completed ({})", self.last_log(&activity).await),
        };
        self.case("the activity marked done", &got, meant);
        Ok(())
    }

    /// An opportunity moved to the map's stage: none in Salesforce before, an Opportunity
    /// on the Account after.
    async fn opportunity_at_stage(&mut self, company: &Company) -> anyhow::Result<()> {
        let name = "Northwind: full roof";
        let body = json!({"name": name, "stage": "discovery", "company": company.record.id(),
            "contact": company.contact.id(), "close_date": "2027-03-31", "value": 4800});
        let opportunity = crm::create(&self.rt.svc, &self.t, RecordKind::Opportunity, &body).await?;
        self.settle().await?;
        let early = self.opportunities_named(name).await?.len();
        crm::update(&self.rt.svc, &self.t, RecordKind::Opportunity, opportunity.id(), &json!({"stage": STAGE})).await?;
        let made = scene::until(async || self.opportunities_named(name).await.is_ok_and(|r| !r.is_empty())).await;
        self.settle().await?;
        let account = self.linked(&company.record).await;
        let want = [
            ("Name", json!(name)),
            ("StageName", json!(SF_STAGE)),
            ("CloseDate", json!("2027-03-31")),
            ("Amount", json!(4800.0)),
            ("AccountId", json!(account)),
        ];
        let rows = self.opportunities_named(name).await?;
        let differ = differences("Opportunity", rows.first(), &want);
        let meant = format!(
            "none before the stage; at {STAGE}, an Opportunity on the Account ({SF_STAGE}, its amount and close date)"
        );
        let got = match (early, made, rows.len(), differ.is_empty()) {
            (0, true, 1, true) => meant.clone(),
            (n, ..) if n > 0 => format!("{n} Opportunities before the stage"),
            (_, false, ..) => format!("no Opportunity ({})", self.last_log(&opportunity).await),
            (_, _, n, true) if n != 1 => format!("{n} Opportunities"),
            _ => differ.join("; "),
        };
        self.case("an opportunity moved to the stage", &got, &meant);
        Ok(())
    }

    /// An opportunity at the stage that Salesforce refuses (a name longer than the 120
    /// characters `Opportunity.Name` holds; the CRM takes 255): logged failed with
    /// Salesforce's code and message, nothing linked, no Opportunity. (A negative value,
    /// which the org's validation rule refuses, cannot be made: the CRM takes no amount
    /// below 0.)
    async fn refused_opportunity(&mut self, company: &Company) -> anyhow::Result<()> {
        let name = format!("Northwind: {}", "full roof, gutters and skylights; ".repeat(5));
        let body = json!({"name": name, "stage": STAGE, "company": company.record.id(),
            "contact": company.contact.id(), "close_date": "2027-04-30", "value": 12500});
        let opportunity = crm::create(&self.rt.svc, &self.t, RecordKind::Opportunity, &body).await?;
        let failed = async || {
            self.logs_of(&opportunity).await.ok().and_then(|logs| {
                logs.iter().find_map(|e| match (&e.direction, &e.outcome) {
                    (Direction::SyncOut, Outcome::Failed(m)) => Some(m.clone()),
                    _ => None,
                })
            })
        };
        scene::until(async || failed().await.is_some()).await;
        self.settle().await?;
        let message = failed().await;
        let there = self
            .query("Opportunity", &["Name"], &[("AccountId", &self.linked(&company.record).await.unwrap_or_default())])
            .await?;
        let there =
            there.iter().filter(|r| r["Name"].as_str().is_some_and(|n| n.starts_with("Northwind: full roof,"))).count();
        let meant = "failed with Salesforce's STRING_TOO_LONG and its message; nothing linked, no Opportunity";
        let got = match (&message, self.linked(&opportunity).await, there) {
            (Some(m), None, 0) if m.contains("STRING_TOO_LONG: Name: data value too large") => meant.to_string(),
            (Some(m), None, 0) => format!("failed: {m}"),
            (None, None, 0) => format!("not failed, not sent ({})", self.last_log(&opportunity).await),
            (_, link, n) => format!("linked {link:?}; {n} Opportunities"),
        };
        self.case("an opportunity Salesforce refuses", &got, meant);
        Ok(())
    }

    /// Creates a company of `company_type` and its contact in the CRM.
    async fn company(&self, name: &str, company_type: &str, first: &str, last: &str) -> anyhow::Result<Company> {
        self.company_and_contact(name, company_type, (first, last), false).await
    }

    /// Creates a company and its contact; with `synced_between`, the contact only once the
    /// company's push has run (as a person adding the contact a moment later would: a
    /// Lead is then created without its person, the map's `LastName` default in place).
    async fn company_and_contact(
        &self,
        name: &str,
        company_type: &str,
        (first, last): (&str, &str),
        synced_between: bool,
    ) -> anyhow::Result<Company> {
        let domain: String = name.split_whitespace().next().unwrap_or("x").to_lowercase();
        let body = json!({"name": name, "company_type": company_type, "phone": "+1 555 201 0100",
            "website": format!("https://{domain}.example"),
            "custom_fields": {CUSTOM: "North Shore"}});
        let record = crm::create(&self.rt.svc, &self.t, RecordKind::Company, &body).await?;
        if synced_between {
            scene::until(async || self.linked(&record).await.is_some()).await;
            self.settle().await?;
        }
        let body = json!({"first_name": first, "last_name": last,
            "email": format!("{}@{domain}.example", first.to_lowercase()), "company": record.id()});
        let contact = crm::create(&self.rt.svc, &self.t, RecordKind::Contact, &body).await?;
        Ok(Company { record, contact })
    }

    fn case(&mut self, case: &str, got: &str, meant: &str) {
        self.rows.push([case.to_string(), got.to_string(), meant.to_string()]);
        self.result.insert(case.to_string(), got.to_string());
        self.expected.insert(case.to_string(), meant.to_string());
    }

    async fn put(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let answer = self.http.put(format!("{}{path}", self.api)).json(body).send().await?;
        let status = answer.status().as_u16();
        Ok((status, answer.json().await.unwrap_or(Value::Null)))
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self.http.get(format!("{}{path}", self.api)).send().await?.json().await?)
    }

    fn writes(&self) -> u64 {
        self.sim.handle().stats().writes()
    }

    /// The schedule's tick (a poll of every connection taking changes in), then the queue
    /// drained.
    async fn tick(&self) -> anyhow::Result<()> {
        schedule::tick(&self.rt.svc).await?;
        self.idle().await
    }

    async fn idle(&self) -> anyhow::Result<()> {
        let idle = async || self.rt.embedded().is_none_or(|e| e.queue.is_idle());
        anyhow::ensure!(scene::until(idle).await, "the queue never went idle");
        Ok(())
    }

    /// Lets every Outbound Message and queued message run, then ticks once.
    async fn settle(&self) -> anyhow::Result<()> {
        self.sim.handle().webhooks_settled(Duration::from_secs(10)).await;
        self.idle().await?;
        self.tick().await?;
        self.sim.handle().webhooks_settled(Duration::from_secs(10)).await;
        self.idle().await
    }

    async fn crm(&self, record: &Record) -> Option<Record> {
        self.rt.svc.store.record(&self.t, record.kind(), record.id()).await.ok().flatten()
    }

    async fn crm_field(&self, record: &Record, field: &str) -> Option<Value> {
        self.crm(record).await.map(|r| r.fields()[field].clone())
    }

    /// The Salesforce id the record is linked to now.
    async fn linked(&self, record: &Record) -> Option<String> {
        self.crm(record).await?.link(System::Salesforce).map(|l| l.id.clone())
    }

    /// One row of `object` by id, with `fields`.
    async fn row(&self, object: &str, id: &str, fields: &[&str]) -> anyhow::Result<Option<ObjectRow>> {
        Ok(self.query(object, fields, &[("Id", id)]).await?.into_iter().next())
    }

    async fn query(&self, object: &str, fields: &[&str], equal: &[(&str, &str)]) -> anyhow::Result<Vec<ObjectRow>> {
        let query = ObjectQuery {
            object: object.into(),
            fields: fields.iter().map(|f| f.to_string()).collect(),
            equal: equal.iter().map(|(f, v)| (f.to_string(), v.to_string())).collect(),
            limit: 200,
            ..ObjectQuery::default()
        };
        Ok(self.connector.query_objects(&query).await?)
    }

    /// How many records of the target's object carry this company name.
    async fn named_there(&self, name: &str) -> anyhow::Result<usize> {
        Ok(self.query(self.w.object, &[self.w.name], &[(self.w.name, name)]).await?.len())
    }

    /// The Task on `who` with `status`, if any.
    async fn task(&self, who: Option<&str>, status: &str) -> Option<ObjectRow> {
        let rows = self.tasks_of(who?, &TASK_FIELDS).await.ok()?;
        rows.into_iter().find(|r| r["Status"] == json!(status))
    }

    async fn tasks_of(&self, who: &str, fields: &[&str]) -> anyhow::Result<Vec<ObjectRow>> {
        self.query("Task", fields, &[("WhoId", who)]).await
    }

    async fn opportunities_named(&self, name: &str) -> anyhow::Result<Vec<ObjectRow>> {
        self.query("Opportunity", &["Name", "StageName", "CloseDate", "Amount", "AccountId"], &[("Name", name)]).await
    }

    /// The scenario's sync-log entries of one CRM record.
    async fn logs_of(&self, record: &Record) -> anyhow::Result<Vec<LogEntry>> {
        let filter = LogFilter { since: Some(self.started), limit: Some(1000), ..LogFilter::default() };
        let logs = self.rt.svc.store.logs(&self.t, &filter, self.rt.svc.clock.now()).await?;
        Ok(logs.into_iter().filter(|e| e.crm_id.as_ref() == Some(record.id())).collect())
    }

    /// The record's latest sync-log entry, for a message.
    async fn last_log(&self, record: &Record) -> String {
        match self.logs_of(record).await {
            Ok(logs) => logs.iter().max_by_key(|e| e.at).map_or_else(
                || "nothing logged".into(),
                |e| format!("last logged {:?} {}", e.direction, e.outcome.key()),
            ),
            Err(e) => format!("the log unreadable: {e}"),
        }
    }
}

/// Where `row` of `object` differs from `want` (numbers compared as numbers).
fn differences(object: &str, row: Option<&ObjectRow>, want: &[(&str, Value)]) -> Vec<String> {
    let Some(row) = row else { return vec![format!("no {object}")] };
    want.iter()
        .filter(|(field, value)| {
            let got = row.get(*field).unwrap_or(&Value::Null);
            got != value && !(got.as_f64().is_some() && got.as_f64() == value.as_f64())
        })
        .map(|(field, value)| format!("{object}.{field} = {} (meant {value})", row.get(*field).unwrap_or(&Value::Null)))
        .collect()
}
