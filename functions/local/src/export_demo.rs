//! `tandem demo --scenario export`: a tenant imported from its simulator sends records to
//! it the way a sales team would, through the same use cases the functions run: a new
//! company with its opportunity, a contact whose company is not in the system yet, a
//! company the import linked and the CRM has since changed, a company someone already
//! created in the system by hand, a record the system refuses (where the system has such
//! a rule), and one export sent twice. The result is read back from the export results
//! and from the simulator itself (each company there once); the expectation is the
//! scenario's own intent.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tandem_domain::export::{Export, ExportStatus};
use tandem_domain::external::{ExtCompany, ExternalRecord, OptionList};
use tandem_domain::ports::Connector;
use tandem_domain::records::Record;
use tandem_domain::usecases::import::{self, AllStages, StageSelection};
use tandem_domain::usecases::{connections, crm, export};
use tandem_domain::{RecordKind, Stage, System, TenantId};
use tandem_embedded::QueueConfig;

use crate::demo::DemoOptions;
use crate::runtime::LocalRuntime;
use crate::setup;
use crate::sims;

/// What the scenario found and what it meant to happen, in the same shape:
/// `{"cases": {case: {kind: outcome}}, "in_system_once": {company name: true}}`.
#[derive(Clone, Debug)]
pub struct ExportDemo {
    pub result: Value,
    pub expected: Value,
    /// (case, kind, outcome, message) per record sent, for the table.
    pub rows: Vec<[String; 4]>,
}

struct Scene {
    rt: LocalRuntime,
    t: TenantId,
    system: System,
    connector: std::sync::Arc<dyn Connector>,
    result: BTreeMap<String, BTreeMap<String, String>>,
    expected: BTreeMap<String, BTreeMap<String, String>>,
    rows: Vec<[String; 4]>,
    names: Vec<String>,
}

/// Runs the scenario.
pub async fn run(opts: &DemoOptions) -> anyhow::Result<ExportDemo> {
    let sim = sims::start(opts.system, &opts.scale, opts.sim.clone(), 0).await?;
    if let Some(h) = sim.syncro() {
        h.set_requests_per_minute(None);
    }
    let rt = LocalRuntime::new(None, QueueConfig::default(), opts.connectors.clone())?;
    let t = TenantId::parse(&format!("export-{}", &tandem_domain::JobId::new().as_str()[..8]))?;
    setup::seed_crm(&rt.svc, &t, &sim.crm_seed).await?;
    connections::save_credentials(&rt.svc, &t, opts.system, &sim.credentials).await?;
    setup::map_typically(&rt.svc, &t, opts.system, &sim.typical).await?;
    let job = import::start_import(&rt.svc, &t, opts.system, StageSelection::All(AllStages::All)).await?;
    rt.run_until_done(&t, &job.id, &|_| {}).await?;
    let connector = connections::connector(&rt.svc, &t, opts.system).await?;
    let mut scene = Scene {
        rt,
        t,
        system: opts.system,
        connector,
        result: BTreeMap::new(),
        expected: BTreeMap::new(),
        rows: Vec::new(),
        names: Vec::new(),
    };
    scene.play().await?;
    let once = scene.once().await?;
    sim.shutdown().await;
    let all_true: BTreeMap<&String, bool> = scene.names.iter().map(|n| (n, true)).collect();
    Ok(ExportDemo {
        result: json!({ "cases": scene.result, "in_system_once": once }),
        expected: json!({ "cases": scene.expected, "in_system_once": all_true }),
        rows: scene.rows,
    })
}

impl Scene {
    async fn play(&mut self) -> anyhow::Result<()> {
        let status = self.exportable(Stage::Opportunities, OptionList::OpportunityStatuses).await;
        let user = self.linked_user().await.map(|u| u.id().to_string());

        // A new company with its opportunity (and the opportunity's contact).
        let a = self.company("Aster Point Logistics", "+1 555 201 0101").await?;
        let a_contact = self.contact(&a, "Lena", "lena@asterpoint.example").await?;
        self.opportunity(&a, Some(&a_contact), "Aster Point backup rollout", &status, &user, true).await?;
        let outcomes = self.send("new company with its opportunity", &a, &["details", "opportunities"]).await?;
        self.expect(
            "new company with its opportunity",
            &[("company", "created"), ("contact", "created"), ("opportunity", "created")],
        );
        self.names.push("Aster Point Logistics".into());
        let _ = outcomes;

        // A contact whose company is not in the system yet: the company goes first.
        let b = self.company("Brook Hollow Clinics", "+1 555 201 0102").await?;
        let b_contact = self.contact(&b, "Omar", "omar@brookhollow.example").await?;
        self.opportunity(&b, Some(&b_contact), "Brook Hollow managed firewall", &status, &user, true).await?;
        self.send("contact whose company is not in the system", &b_contact, &["details", "opportunities"]).await?;
        self.expect(
            "contact whose company is not in the system",
            &[("company", "created"), ("contact", "created"), ("opportunity", "created")],
        );
        self.names.push("Brook Hollow Clinics".into());

        // A company the import linked, changed in the CRM since: updated, not created.
        if let Some(c) = self.imported_company_with_opportunity().await? {
            crm::update(&self.rt.svc, &self.t, RecordKind::Company, c.id(), &json!({"phone": "+1 555 201 0999"}))
                .await?;
            self.send("imported company changed in the CRM", &c, &["details"]).await?;
            self.expect("imported company changed in the CRM", &[("company", "updated")]);
        }

        // A company someone already created in the system by hand: found and linked.
        let d = self.company("Cinder Ridge Surveyors", "+1 555 201 0104").await?;
        self.opportunity(&d, None, "Cinder Ridge assessment", &status, &user, true).await?;
        let conn = connections::connection(&self.rt.svc, &self.t, self.system).await?;
        let described = tandem_connectors::describe(self.system);
        let by_hand = tandem_domain::outgoing::external(&conn, described, &d, "", &Default::default())
            .map_err(|e| anyhow::anyhow!(e))?;
        self.connector.create(&by_hand).await?;
        self.send("company already in the system", &d, &["details"]).await?;
        self.expect("company already in the system", &[("company", "updated")]);
        self.names.push("Cinder Ridge Surveyors".into());

        // A record the system refuses, where it has a rule Tandem does not check.
        if self.system == System::Salesforce {
            let e = self.company("Dunmore Glassworks", "+1 555 201 0105").await?;
            self.opportunity(&e, None, "Dunmore without a close date", &status, &user, false).await?;
            self.send("the system refuses a record", &e, &["details", "opportunities"]).await?;
            self.expect("the system refuses a record", &[("company", "created"), ("opportunity", "failed")]);
            self.names.push("Dunmore Glassworks".into());
        }

        // The first export sent again: nothing new.
        self.send("sent again", &a, &["details", "opportunities"]).await?;
        self.expect("sent again", &[("company", "updated"), ("opportunity", "updated")]);
        Ok(())
    }

    fn expect(&mut self, case: &str, outcomes: &[(&str, &str)]) {
        let map = outcomes.iter().map(|(k, o)| (k.to_string(), o.to_string())).collect();
        self.expected.insert(case.to_string(), map);
    }

    /// Exports `record` and waits for the export; records its outcomes under `case`.
    async fn send(&mut self, case: &str, record: &Record, include: &[&str]) -> anyhow::Result<Export> {
        let body = json!({"kind": record.kind(), "id": record.id(), "include": include});
        let started = export::start(&self.rt.svc, &self.t, self.system, &body).await?;
        let deadline = Instant::now() + Duration::from_secs(300);
        let done = loop {
            self.rt.work_once(Duration::from_millis(20)).await?;
            let e = export::export(&self.rt.svc, &self.t, &started.id).await?;
            if e.status != ExportStatus::Running {
                break e;
            }
            anyhow::ensure!(Instant::now() < deadline, "export {} did not finish", e.id);
        };
        let outcomes = self.result.entry(case.to_string()).or_default();
        for r in &done.results {
            let outcome = serde_json::to_value(r.outcome)?.as_str().unwrap_or_default().to_string();
            outcomes.insert(r.kind.to_string(), outcome.clone());
            self.rows.push([case.to_string(), r.kind.to_string(), outcome, r.message.clone().unwrap_or_default()]);
        }
        Ok(done)
    }

    /// Whether each exported company name is in the system exactly once.
    async fn once(&self) -> anyhow::Result<BTreeMap<String, bool>> {
        let mut out = BTreeMap::new();
        for name in &self.names {
            let probe = ExternalRecord::Company(ExtCompany::named(name));
            let found = self.connector.find_similar(&probe).await?;
            let same = found.iter().filter(|r| matches!(r, ExternalRecord::Company(c) if &c.name == name)).count();
            out.insert(name.clone(), same == 1);
        }
        Ok(out)
    }

    async fn company(&self, name: &str, phone: &str) -> anyhow::Result<Record> {
        let company_type = self.exportable(Stage::Companies, OptionList::CompanyTypes).await;
        let body = json!({"name": name, "phone": phone, "company_type": company_type});
        Ok(crm::create(&self.rt.svc, &self.t, RecordKind::Company, &body).await?)
    }

    async fn contact(&self, company: &Record, first: &str, email: &str) -> anyhow::Result<Record> {
        let body = json!({"first_name": first, "last_name": "Hart", "email": email, "company": company.id()});
        Ok(crm::create(&self.rt.svc, &self.t, RecordKind::Contact, &body).await?)
    }

    async fn opportunity(
        &self,
        company: &Record,
        contact: Option<&Record>,
        name: &str,
        status: &Option<String>,
        salesperson: &Option<String>,
        with_close_date: bool,
    ) -> anyhow::Result<Record> {
        let body = json!({
            "name": name, "status": status, "company": company.id(), "contact": contact.map(|c| c.id().to_string()),
            "salesperson": salesperson, "close_date": with_close_date.then_some("2027-03-31"), "value": 4800
        });
        Ok(crm::create(&self.rt.svc, &self.t, RecordKind::Opportunity, &body).await?)
    }

    /// A CRM value of `list` that goes out as exactly one option of the system.
    async fn exportable(&self, stage: Stage, list: OptionList) -> Option<String> {
        setup::exportable(&self.rt.svc, &self.t, self.system, stage, list).await
    }

    async fn linked_user(&self) -> Option<Record> {
        let users = self.rt.svc.store.all_records(&self.t, RecordKind::User).await.ok()?;
        users.into_iter().find(|u| u.link(self.system).is_some())
    }

    /// A company the import linked that has a linked opportunity (so it may be sent).
    async fn imported_company_with_opportunity(&self) -> anyhow::Result<Option<Record>> {
        let opportunities = self.rt.svc.store.all_records(&self.t, RecordKind::Opportunity).await?;
        for o in opportunities.iter().filter(|o| o.link(self.system).is_some()) {
            let Record::Opportunity(op) = o else { continue };
            let Some(company) = &op.company else { continue };
            if let Some(c) = self.rt.svc.store.record(&self.t, RecordKind::Company, company).await?
                && c.link(self.system).is_some()
            {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }
}
