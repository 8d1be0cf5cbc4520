//! Salesforce's field-level mode end to end against the Salesforce simulator over HTTP,
//! through the runner's worker: CRM companies sent as Leads (or Accounts with Contacts and
//! an Opportunity at the map's stage) by the field map, only those the selective-sync
//! criteria select from the moment they are saved (and those that matched before on a
//! retroactive run); CRM edits and Lead edits flowing each way without being written back;
//! activities sent as Tasks and completed; Salesforce refusing a record surfaced with its
//! message and nothing half written; a push delivered twice sending once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tandem_connectors::http::{RetryPolicy, Settings};
use tandem_domain::log::{Direction, LogEntry, LogFilter, Outcome, SkipReason};
use tandem_domain::ports::{Connector, ObjectQuery, ObjectRow};
use tandem_domain::records::{Meta, Record, User};
use tandem_domain::sync::SyncOutMessage;
use tandem_domain::table::RecordWrite;
use tandem_domain::usecases::{connections, crm, field_map, schedule, selective_sync, work};
use tandem_domain::vocab::{Role, UserState};
use tandem_domain::work::Work;
use tandem_domain::{RecordId, RecordKind, System, TenantId};
use tandem_embedded::QueueConfig;
use tandem_local::runtime::LocalRuntime;
use tandem_local::server;
use tandem_local::sims::{self, RunningSim, Scale};
use tandem_sim::SimConfig;

fn tenant() -> TenantId {
    TenantId::parse(server::DEFAULT_TENANT).unwrap()
}

struct Spotio {
    sim: RunningSim,
    rt: LocalRuntime,
    sf: Arc<dyn Connector>,
    _worker: tokio::task::JoinHandle<()>,
}

/// A runner connected to a fresh Salesforce simulator with `map` saved (auto-sync still
/// off), its worker running.
async fn spotio(map: Value) -> Spotio {
    let sim = sims::start(System::Salesforce, &Scale::new(2, 3), SimConfig::default(), 0).await.unwrap();
    let settings = Settings {
        retry: RetryPolicy { max_attempts: 3, base_delay: Duration::from_millis(10), ..RetryPolicy::default() },
        pacing: tandem_connectors::Pacing::Off,
        ..Settings::default()
    };
    let mut rt = LocalRuntime::new(None, QueueConfig::default(), settings).unwrap();
    rt.svc.tuning.public_url = Some("http://127.0.0.1:9".into());
    let t = tenant();
    connections::save_credentials(&rt.svc, &t, System::Salesforce, &sim.credentials).await.unwrap();
    field_map::save(&rt.svc, &t, &map).await.unwrap();
    let worker = rt.spawn_worker();
    let sf = connections::connector(&rt.svc, &t, System::Salesforce).await.unwrap();
    Spotio { sim, rt, sf, _worker: worker }
}

impl Spotio {
    async fn auto_sync(&self, mode: &str) {
        connections::save_settings(&self.rt.svc, &tenant(), System::Salesforce, &json!({ "auto_sync": mode }))
            .await
            .unwrap();
    }

    async fn create(&self, kind: RecordKind, body: Value) -> Record {
        crm::create(&self.rt.svc, &tenant(), kind, &body).await.unwrap()
    }

    async fn update(&self, record: &Record, body: Value) -> Record {
        crm::update(&self.rt.svc, &tenant(), record.kind(), record.id(), &body).await.unwrap()
    }

    async fn crm(&self, record: &Record) -> Record {
        self.rt.svc.store.record(&tenant(), record.kind(), record.id()).await.unwrap().unwrap()
    }

    /// The rows of `object` whose `field` is `value`, with `fields`.
    async fn rows(&self, object: &str, field: &str, value: &str, fields: &[&str]) -> Vec<ObjectRow> {
        let query = ObjectQuery {
            object: object.into(),
            fields: fields.iter().map(|f| f.to_string()).collect(),
            equal: vec![(field.into(), value.into())],
            ..ObjectQuery::default()
        };
        self.sf.query_objects(&query).await.unwrap()
    }

    async fn one(&self, object: &str, field: &str, value: &str, fields: &[&str]) -> ObjectRow {
        let mut rows = self.rows(object, field, value, fields).await;
        assert_eq!(rows.len(), 1, "one {object} with {field} = {value}: {rows:?}");
        rows.remove(0)
    }

    fn writes(&self) -> u64 {
        self.sim.handle().stats().writes()
    }

    fn idle(&self) -> bool {
        self.rt.embedded().unwrap().queue.is_idle()
    }

    /// Lets every queued message run.
    async fn settle(&self) {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let start = Instant::now();
        while !self.idle() {
            assert!(start.elapsed() < Duration::from_secs(20), "the queue never drained");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The schedule's tick (a poll), run to its end.
    async fn tick(&self) {
        schedule::tick(&self.rt.svc).await.unwrap();
        self.settle().await;
    }

    async fn logs_of(&self, record: &Record) -> Vec<LogEntry> {
        let filter = LogFilter { limit: Some(1000), ..LogFilter::default() };
        let logs = self.rt.svc.store.logs(&tenant(), &filter, self.rt.svc.clock.now()).await.unwrap();
        logs.into_iter().filter(|e| e.crm_id.as_ref() == Some(record.id())).collect()
    }

    /// A CRM user (the activities' author), written to the store as an import would.
    async fn user(&self) -> RecordId {
        let meta = Meta::new(self.rt.svc.clock.now());
        let id = meta.id.clone();
        let user = Record::User(User {
            meta,
            email: "rep@example.com".into(),
            name: "Field Rep".into(),
            role: Role::parse("salesperson").unwrap(),
            state: UserState::parse("active").unwrap(),
        });
        let write = RecordWrite { record: user, previous: None, ledger: None, log: None };
        self.rt.svc.store.write(&tenant(), write).await.unwrap();
        id
    }

    fn link(record: &Record) -> String {
        record.link(System::Salesforce).map(|l| l.id.clone()).unwrap_or_default()
    }
}

fn lead_map() -> Value {
    json!({
        "target": "lead",
        "fields": [
            {"crm": "company.name", "salesforce": "Company"},
            {"crm": "contact.first_name", "salesforce": "FirstName"},
            {"crm": "contact.last_name", "salesforce": "LastName"},
            {"crm": "contact.email", "salesforce": "Email"},
            {"crm": "company.custom.territory", "salesforce": "Territory__c"},
            {"crm": "company.company_type", "salesforce": "Visit_Result__c",
             "values": {"prospect": "Follow Up", "customer": "Sold"}}
        ],
        "defaults": {"Lead": {"LeadSource": "Other"}}
    })
}

async fn company(s: &Spotio, name: &str, territory: &str, kind: &str) -> (Record, Record) {
    let company = s
        .create(
            RecordKind::Company,
            json!({"name": name, "company_type": kind, "custom_fields": {"territory": territory}}),
        )
        .await;
    let last = name.split_whitespace().next().unwrap();
    let contact = s
        .create(
            RecordKind::Contact,
            json!({"first_name": "Pat", "last_name": last, "email": format!("pat@{}.example", last.to_lowercase()),
                   "company": company.id().as_str()}),
        )
        .await;
    (company, contact)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lead_mode_sends_selected_companies_by_the_map_and_takes_lead_edits_back_without_writing_them_again() {
    let s = spotio(lead_map()).await;
    let t = tenant();
    // Matched before the criteria were saved, while nothing was pushed yet.
    let (early, _) = company(&s, "Early Roofing", "North", "prospect").await;
    selective_sync::save(&s.rt.svc, &t, &json!({"rules": [{"field": "company.custom.territory", "equals": "North"}]}))
        .await
        .unwrap();
    s.auto_sync("two_way").await;

    let (north, north_contact) = company(&s, "Northwind Solar", "North", "prospect").await;
    let (south, _) = company(&s, "Southern Siding", "South", "prospect").await;
    s.settle().await;

    let lead = s
        .one(
            "Lead",
            "Company",
            "Northwind Solar",
            &["FirstName", "LastName", "Email", "Territory__c", "Visit_Result__c", "LeadSource"],
        )
        .await;
    assert_eq!(lead["LastName"], "Northwind");
    assert_eq!(lead["Email"], "pat@northwind.example");
    assert_eq!(lead["Territory__c"], "North", "a custom CRM field in a custom Salesforce field");
    assert_eq!(lead["Visit_Result__c"], "Follow Up", "a CRM choice through the map's values");
    assert_eq!(lead["LeadSource"], "Other", "a default for what the CRM does not hold");
    let north = s.crm(&north).await;
    assert_eq!(Spotio::link(&north), lead["Id"].as_str().unwrap(), "the company is linked to its Lead");
    assert!(s.rows("Lead", "Company", "Southern Siding", &[]).await.is_empty(), "not selected, not sent");
    let south_logs = s.logs_of(&south).await;
    assert!(
        south_logs.iter().any(|e| e.outcome == Outcome::Skipped(SkipReason::NotSelected)),
        "the skip is logged: {south_logs:#?}"
    );
    assert!(s.rows("Lead", "Company", "Early Roofing", &[]).await.is_empty(), "matched before the rule: not sent");

    // A retroactive run sends those that match now and are not sent yet, and says how many.
    let saved = selective_sync::save(
        &s.rt.svc,
        &t,
        &json!({"rules": [{"field": "company.custom.territory", "equals": "North"}], "retroactive": true}),
    )
    .await
    .unwrap();
    assert_eq!(saved.queued, Some(1), "Early Roofing only: Northwind is sent already");
    s.settle().await;
    s.one("Lead", "Company", "Early Roofing", &[]).await;
    assert!(s.crm(&early).await.link(System::Salesforce).is_some());

    // A CRM edit of a mapped field goes out; the contact's too (it is the Lead's person).
    let before = s.writes();
    s.update(&north, json!({"custom_fields": {"territory": "North-East"}})).await;
    s.update(&north_contact, json!({"email": "pat.new@northwind.example"})).await;
    s.settle().await;
    let lead = s.one("Lead", "Company", "Northwind Solar", &["Territory__c", "Email"]).await;
    assert_eq!(
        (lead["Territory__c"].as_str(), lead["Email"].as_str()),
        (Some("North-East"), Some("pat.new@northwind.example"))
    );
    // One write per edit at most: a push that finds both changes sends them together.
    let writes = s.writes() - before;
    assert!((1..=2).contains(&writes), "{writes} writes for two edits");

    // Two-way: a push reads the Lead first, so a Salesforce edit no poll has read yet is
    // taken in, not overwritten, while the CRM's own edit goes out.
    let lead_id = lead["Id"].as_str().unwrap().to_string();
    let mut edit = ObjectRow::new();
    edit.insert("Territory__c".into(), json!("Bayside"));
    s.sf.update_object("Lead", &lead_id, &edit).await.unwrap();
    s.update(&north_contact, json!({"first_name": "Patrick"})).await;
    s.settle().await;
    let lead = s.one("Lead", "Company", "Northwind Solar", &["Territory__c", "FirstName"]).await;
    assert_eq!((lead["Territory__c"].as_str(), lead["FirstName"].as_str()), (Some("Bayside"), Some("Patrick")));
    assert_eq!(s.crm(&north).await.fields()["custom_fields"]["territory"], "Bayside", "taken in before the push");

    // A Lead edited in Salesforce updates the CRM at the next poll and is not written back.
    let mut edit = ObjectRow::new();
    edit.insert("Territory__c".into(), json!("Coastal"));
    edit.insert("Visit_Result__c".into(), json!("Sold"));
    edit.insert("LastName".into(), json!("Northwind-Hale"));
    s.sf.update_object("Lead", &lead_id, &edit).await.unwrap();
    let before = s.writes();
    s.tick().await;
    let north = s.crm(&north).await;
    assert_eq!(north.fields()["custom_fields"]["territory"], "Coastal");
    assert_eq!(north.fields()["company_type"], "customer", "the picklist value back through the map's values");
    assert_eq!(
        s.crm(&north_contact).await.fields()["last_name"],
        "Northwind-Hale",
        "the Lead's person is the first contact"
    );
    s.tick().await;
    assert_eq!(s.writes(), before, "nothing written back to Salesforce");
    let taken = s.logs_of(&north).await;
    assert!(taken.iter().any(|e| e.direction == Direction::SyncIn && e.outcome == Outcome::Updated), "{taken:#?}");

    // An activity becomes a Task on the Lead; done in the CRM completes it.
    let user = s.user().await;
    let activity = s
        .create(
            RecordKind::Activity,
            json!({"kind": "call", "subject": "Door knock, follow up", "body": "Talked to Pat",
                   "date": "2026-12-01T10:00:00Z", "contact": north_contact.id().as_str(), "created_by": user.as_str()}),
        )
        .await;
    s.settle().await;
    let logged = s.logs_of(&activity).await;
    assert!(logged.iter().any(|e| e.outcome == Outcome::Created), "{logged:#?}");
    let task = s.one("Task", "WhoId", &lead_id, &["Subject", "Description", "ActivityDate", "Status"]).await;
    assert_eq!(
        (task["Subject"].as_str(), task["Description"].as_str()),
        (Some("Door knock, follow up"), Some("Talked to Pat"))
    );
    assert_eq!((task["ActivityDate"].as_str(), task["Status"].as_str()), (Some("2026-12-01"), Some("Not Started")));
    s.update(&activity, json!({"done": true})).await;
    s.settle().await;
    let task = s.one("Task", "WhoId", &lead_id, &["Status"]).await;
    assert_eq!(task["Status"], "Completed");
    s.sim.shutdown().await;
}

fn account_map() -> Value {
    json!({
        "target": "account",
        "fields": [
            {"crm": "company.name", "salesforce": "Name"},
            {"crm": "company.custom.territory", "salesforce": "Territory__c"},
            {"crm": "company.company_type", "salesforce": "Service_Tier__c",
             "values": {"prospect": "Bronze", "customer": "Gold"}},
            {"crm": "contact.first_name", "salesforce": "FirstName"},
            {"crm": "contact.last_name", "salesforce": "LastName"},
            {"crm": "contact.email", "salesforce": "Email"},
            {"crm": "opportunity.name", "salesforce": "Name"},
            {"crm": "opportunity.close_date", "salesforce": "CloseDate"},
            {"crm": "opportunity.value", "salesforce": "Amount"}
        ],
        "defaults": {"Opportunity": {"StageName": "Proposal/Price Quote"}},
        "opportunity_stage": "proposal"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_mode_sends_the_account_its_contacts_and_an_opportunity_once_it_reaches_the_stage() {
    let s = spotio(account_map()).await;
    s.auto_sync("two_way").await;
    let (acme, pat) = company(&s, "Acme Windows", "West", "customer").await;
    let deal = s
        .create(
            RecordKind::Opportunity,
            json!({"name": "Acme bay windows", "stage": "qualify", "close_date": "2027-01-31", "value": 4200,
                   "company": acme.id().as_str(), "contact": pat.id().as_str()}),
        )
        .await;
    s.settle().await;
    let account = s.one("Account", "Name", "Acme Windows", &["Territory__c", "Service_Tier__c"]).await;
    assert_eq!((account["Territory__c"].as_str(), account["Service_Tier__c"].as_str()), (Some("West"), Some("Gold")));
    let account_id = account["Id"].as_str().unwrap();
    let contact = s.one("Contact", "Email", "pat@acme.example", &["AccountId", "LastName"]).await;
    assert_eq!(contact["AccountId"], account_id, "the Contact is on the Account");
    assert!(s.rows("Opportunity", "AccountId", account_id, &[]).await.is_empty(), "not at the stage yet");
    assert!(s.logs_of(&deal).await.iter().any(|e| e.outcome == Outcome::Skipped(SkipReason::NotSelected)));

    s.update(&deal, json!({"stage": "Proposal"})).await;
    s.settle().await;
    let opportunity =
        s.one("Opportunity", "AccountId", account_id, &["Name", "CloseDate", "Amount", "StageName"]).await;
    assert_eq!(
        (opportunity["Name"].as_str(), opportunity["CloseDate"].as_str()),
        (Some("Acme bay windows"), Some("2027-01-31"))
    );
    assert_eq!(
        (opportunity["Amount"].as_f64(), opportunity["StageName"].as_str()),
        (Some(4200.0), Some("Proposal/Price Quote"))
    );

    // The same push delivered again sends nothing twice.
    let before = s.writes();
    let change = s.logs_of(&deal).await.into_iter().find(|e| e.outcome == Outcome::Created).unwrap().id;
    let change = change.split(':').nth(2).unwrap().to_string();
    let again = SyncOutMessage {
        tenant: tenant(),
        system: System::Salesforce,
        record_kind: RecordKind::Opportunity,
        record: deal.id().clone(),
        change,
        deleted: None,
        retry: None,
    };
    work::run(&s.rt.svc, &Work::SyncOut(again.clone())).await.unwrap();
    work::run(&s.rt.svc, &Work::SyncOut(again)).await.unwrap();
    assert_eq!(s.writes(), before, "a redelivered push writes nothing");
    assert_eq!(s.rows("Opportunity", "AccountId", account_id, &[]).await.len(), 1);

    // An Account edited in Salesforce comes back to the CRM at the next poll.
    let mut edit = ObjectRow::new();
    edit.insert("Territory__c".into(), json!("Pacific"));
    s.sf.update_object("Account", account_id, &edit).await.unwrap();
    let contact_id = contact["Id"].as_str().unwrap();
    let mut edit = ObjectRow::new();
    edit.insert("FirstName".into(), json!("Patricia"));
    s.sf.update_object("Contact", contact_id, &edit).await.unwrap();
    s.tick().await;
    assert_eq!(s.crm(&acme).await.fields()["custom_fields"]["territory"], "Pacific");
    assert_eq!(s.crm(&pat).await.fields()["first_name"], "Patricia");
    s.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_salesforce_refuses_is_logged_with_its_message_and_nothing_is_half_written() {
    let s = spotio(account_map()).await;
    s.auto_sync("two_way").await;
    // `partner` has no Service Tier in the map's values: it goes as it is, and the
    // restricted picklist refuses it.
    let (bad, _) = company(&s, "Partner Roofing", "East", "partner").await;
    s.settle().await;
    assert!(s.rows("Account", "Name", "Partner Roofing", &[]).await.is_empty(), "no Account");
    assert!(s.rows("Contact", "Email", "pat@partner.example", &[]).await.is_empty(), "its contact not sent alone");
    let failed: Vec<String> = s
        .logs_of(&bad)
        .await
        .into_iter()
        .filter_map(|e| match e.outcome {
            Outcome::Failed(why) => Some(why),
            _ => None,
        })
        .collect();
    assert!(
        failed.iter().any(|why| why.contains("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST") && why.contains("partner")),
        "Salesforce's code and message in the log: {failed:?}"
    );
    let crm = s.crm(&bad).await;
    assert!(crm.link(System::Salesforce).is_none(), "nothing linked");
    assert_eq!(crm.meta().version, bad.meta().version, "the CRM record untouched");

    // Once the value is one Salesforce takes, the next change sends the company and its contact.
    s.update(&bad, json!({"company_type": "prospect"})).await;
    s.settle().await;
    let account = s.one("Account", "Name", "Partner Roofing", &["Service_Tier__c"]).await;
    assert_eq!(account["Service_Tier__c"], "Bronze");
    s.one("Contact", "Email", "pat@partner.example", &[]).await;
    s.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_initial_import_brings_in_the_leads_that_meet_the_criteria_linking_the_companies_it_already_has() {
    let s = spotio(lead_map()).await;
    let t = tenant();
    let lead = |company: &str, last: &str, territory: &str| {
        let mut row = ObjectRow::new();
        row.insert("Company".into(), json!(company));
        row.insert("LastName".into(), json!(last));
        row.insert("FirstName".into(), json!("Sam"));
        row.insert("Email".into(), json!(format!("sam@{}.example", last.to_lowercase())));
        row.insert("Territory__c".into(), json!(territory));
        row.insert("Visit_Result__c".into(), json!("Sold"));
        row
    };
    for (company, last, territory) in
        [("Harbor Glass", "Harbor", "North"), ("Ridge Solar", "Ridge", "North"), ("Delta Doors", "Delta", "South")]
    {
        s.sf.create_object("Lead", &lead(company, last, territory)).await.unwrap();
    }
    let harbor = s.create(RecordKind::Company, json!({"name": "Harbor Glass", "company_type": "prospect"})).await;
    selective_sync::save(&s.rt.svc, &t, &json!({"rules": [{"field": "company.custom.territory", "equals": "North"}]}))
        .await
        .unwrap();
    let before = s.writes();
    let started = tandem_domain::usecases::sync_in::start_field_import(&s.rt.svc, &t).await.unwrap();
    assert_eq!(started.stages.len(), 1, "Leads only");
    s.settle().await;
    assert_eq!(s.writes(), before, "an import writes nothing to Salesforce");

    let companies = s.rt.svc.store.records(&t, RecordKind::Company, None, 100).await.unwrap().records;
    let named = |name: &str| companies.iter().filter(|c| c.fields()["name"] == name).cloned().collect::<Vec<_>>();
    assert!(named("Delta Doors").is_empty(), "not meeting the criteria: not brought in");
    let harbors = named("Harbor Glass");
    assert_eq!(harbors.len(), 1, "linked to the company the CRM had, not a second one");
    assert_eq!(harbors[0].id(), harbor.id());
    assert!(harbors[0].link(System::Salesforce).is_some());
    let ridge = named("Ridge Solar");
    assert_eq!(ridge.len(), 1);
    assert_eq!(ridge[0].fields()["custom_fields"]["territory"], "North");
    assert_eq!(ridge[0].fields()["company_type"], "customer", "the picklist value back through the map's values");
    let people =
        s.rt.svc
            .store
            .referencing(&t, RecordKind::Contact, tandem_domain::records::LookupField::Company, ridge[0].id())
            .await
            .unwrap();
    assert_eq!(people.len(), 1, "the Lead's person as the company's contact");
    assert_eq!(people[0].fields()["email"], "sam@ridge.example");

    // Brought in is in step: a tick changes nothing, and switching sync on sends nothing.
    s.auto_sync("two_way").await;
    s.tick().await;
    assert_eq!(s.writes(), before, "nothing written back");
    s.sim.shutdown().await;
}
