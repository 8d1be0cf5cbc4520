//! The writer half of the connector contract, written once and run against all four
//! connectors over real HTTP against their simulators: a created record reads back (through
//! the connector's own `get`) with the values sent, an update sets only the fields it names,
//! the duplicate search finds what is there, references (a contact's company) hold, the
//! vendor's refusals arrive as `Invalid` errors carrying its own words, and a create whose
//! answer is lost (committed, then a 502) is not sent again but found by the search. Deletes
//! (sync out): a deleted record of every kind the system deletes reads as gone and deleting
//! it again succeeds, a delete whose answer is lost is sent again and succeeds, and a kind
//! the system cannot delete is refused naming it, before any request. Which fields are
//! compared comes from each system's description (`writable`), so a system that does not
//! write a field is not asked to.

// Tests unwrap: a failed unwrap is a failed test, with the error in the panic message.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tandem_connectors::{Connectors, Pacing, RetryPolicy, Settings};
use tandem_domain::external::{
    ExtActivity, ExtCompany, ExtContact, ExtOpportunity, ExternalRecord, NO_TYPE, OptionList,
};
use tandem_domain::ports::{Connector, ConnectorFactory, ErrorKind};
use tandem_domain::secret::Credentials;
use tandem_domain::{RecordKind, System, Timestamp};
use tandem_sim::{RunningSystem, Scale, SimConfig};

/// A small tenant: the writes only need some setup lists and a few records beside them.
const COMPANIES: usize = 5;

struct Harness {
    system: System,
    running: Box<dyn RunningSystem>,
    conn: Arc<dyn Connector>,
}

impl Harness {
    async fn start(system: System) -> Self {
        let sim = tandem_sim::simulator(system.as_str()).unwrap();
        let tenant = sim.generate(&Scale::new(11, COMPANIES));
        let running = tenant.serve(SimConfig::default(), 0).await.unwrap();
        let creds = Credentials::parse(system, &running.credentials()).unwrap();
        let settings = Settings {
            retry: RetryPolicy {
                max_attempts: 4,
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_secs(1),
                max_retry_after: Duration::from_secs(1),
            },
            pacing: Pacing::Off,
            ..Settings::default()
        };
        let conn = Connectors::new(settings).connect(&creds).unwrap();
        Self { system, running, conn }
    }

    fn writable(&self, kind: RecordKind) -> &'static [&'static str] {
        tandem_connectors::describe(self.system).writable(kind)
    }

    /// The first real choice of an option list (not the synthetic "no type").
    async fn first_option(&self, list: OptionList) -> Option<String> {
        let choices = self.conn.options(list).await.unwrap();
        choices.into_iter().map(|c| c.id).find(|id| id != NO_TYPE)
    }

    async fn read(&self, kind: RecordKind, id: &str) -> ExternalRecord {
        self.conn.get(kind, id).await.unwrap().unwrap_or_else(|| panic!("{kind} {id} was written but cannot be read"))
    }

    async fn create(&self, record: ExternalRecord) -> String {
        let kind = record.kind().unwrap();
        let written = self.conn.create(&record).await.unwrap_or_else(|e| panic!("creating a {kind}: {e}"));
        let back = self.read(kind, &written.id).await;
        if let Some(version) = &written.version {
            assert_eq!(Some(version), version_of(&back).as_ref(), "the version a create reports is the one read back");
        }
        assert_eq!(
            view(&back, self.writable(kind)),
            view(&record, self.writable(kind)),
            "a created {kind} reads back with the values sent"
        );
        written.id
    }

    async fn company(&self, name: &str) -> ExtCompany {
        let types = match self.first_option(OptionList::CompanyTypes).await {
            Some(t) if self.writable(RecordKind::Company).contains(&"company_type") => vec![t],
            _ => Vec::new(),
        };
        ExtCompany {
            id: String::new(),
            name: name.into(),
            phone: Some("555-201-0199".into()),
            website: Some("https://northwind.example".into()),
            address: Some("12 Harbour Road".into()),
            types,
            inactive: false,
            deleted: false,
            updated_at: None,
        }
    }

    /// Whether the system deletes `kind` through its API: every kind it writes, but Syncro's
    /// leads, which have no `DELETE` (psa-apis.md 3.4).
    fn deletable(&self, kind: RecordKind) -> bool {
        let syncro_lead = self.system == System::Syncro && kind == RecordKind::Opportunity;
        !self.writable(kind).is_empty() && !syncro_lead
    }

    /// An opportunity of the company (and the contact, where the system writes one).
    async fn opportunity(&self, company_id: &str, contact_id: &str) -> ExtOpportunity {
        let writable = self.writable(RecordKind::Opportunity);
        ExtOpportunity {
            id: String::new(),
            name: "Managed backup rollout".into(),
            status_id: self.first_option(OptionList::OpportunityStatuses).await,
            stage: writable.contains(&"stage").then(|| "Prospect".to_string()),
            opportunity_type: None,
            close_date: writable.contains(&"close_date").then(|| "2027-03-31".to_string()),
            value: writable.contains(&"value").then_some(1200.0),
            line_items: Vec::new(),
            salesperson_id: None,
            company_id: Some(company_id.into()),
            contact_id: writable.contains(&"contact").then(|| contact_id.to_string()),
            notes: writable.contains(&"notes").then(|| "Wants a quote by March".to_string()),
            updated_at: None,
        }
    }

    /// An activity on the contact (and the company, where the system writes one).
    async fn activity(&self, company_id: &str, contact_id: &str) -> ExtActivity {
        let writable = self.writable(RecordKind::Activity);
        let kind = match writable.contains(&"kind") {
            true => self.first_option(OptionList::ActivityTypes).await,
            false => None,
        };
        ExtActivity {
            id: String::new(),
            subject: "Discovery call".into(),
            body: Some("Talked through their backup gaps.".into()),
            type_id: kind,
            contact_id: writable.contains(&"contact").then(|| contact_id.to_string()),
            company_id: writable.contains(&"company").then(|| company_id.to_string()),
            created_by: None,
            date: Some(Timestamp::parse("2026-11-20T15:30:00Z").unwrap()),
            done: writable.contains(&"done"),
            updated_at: None,
        }
    }

    fn contact(&self, company_id: &str, email: &str) -> ExtContact {
        ExtContact {
            id: String::new(),
            first_name: "Ada".into(),
            last_name: "Quill".into(),
            email: Some(email.into()),
            phone: Some("555-201-0142".into()),
            title: Some("Operations Lead".into()),
            company_id: Some(company_id.into()),
            types: Vec::new(),
            inactive: false,
            updated_at: None,
        }
    }
}

/// The writable fields of a record, by the CRM names of the system's description, as text.
fn view(record: &ExternalRecord, fields: &[&str]) -> BTreeMap<String, Option<String>> {
    fields.iter().map(|f| (f.to_string(), record.field(f))).collect()
}

fn version_of(record: &ExternalRecord) -> Option<tandem_domain::ledger::ExtVersion> {
    match record {
        ExternalRecord::Company(c) => c.updated_at.clone(),
        ExternalRecord::Contact(c) => c.updated_at.clone(),
        ExternalRecord::Opportunity(o) => o.updated_at.clone(),
        ExternalRecord::Activity(a) => a.updated_at.clone(),
        _ => None,
    }
}

mod checks {
    use super::*;

    pub async fn a_created_company_reads_back_with_the_values_sent(system: System) {
        let h = Harness::start(system).await;
        let company = h.company("Northwind Harbour Traders").await;
        h.create(ExternalRecord::Company(company)).await;
    }

    pub async fn an_update_sets_only_the_fields_it_names(system: System) {
        let h = Harness::start(system).await;
        let company = h.company("Bellweather Tooling").await;
        let id = h.create(ExternalRecord::Company(company.clone())).await;
        let ExternalRecord::Company(held) = h.read(RecordKind::Company, &id).await else { panic!("not a company") };
        let changed = ExtCompany {
            id: id.clone(),
            name: "Bellweather Tooling Renamed".into(),
            phone: Some("555-201-0777".into()),
            ..company.clone()
        };
        h.conn.update(&ExternalRecord::Company(changed), &["phone"]).await.unwrap();
        let ExternalRecord::Company(back) = h.read(RecordKind::Company, &id).await else { panic!("not a company") };
        assert_eq!(back.phone.as_deref(), Some("555-201-0777"), "the named field changed");
        assert_eq!(back.name, held.name, "a field not named is left as the system held it");
        assert_eq!(back.website, held.website);
        assert_eq!(back.address, held.address);
    }

    pub async fn a_created_company_is_found_by_the_duplicate_search(system: System) {
        let h = Harness::start(system).await;
        let company = h.company("Quayside Logistics Group").await;
        let id = h.create(ExternalRecord::Company(company.clone())).await;
        let probe = ExtCompany { phone: None, website: None, address: None, ..company };
        let found = h.conn.find_similar(&ExternalRecord::Company(probe)).await.unwrap();
        assert!(found.iter().any(|r| r.id() == Some(id.as_str())), "the same-named company is a candidate: {found:?}");
        let stranger = h.company("Zzyzx Unmatched Holdings").await;
        let none = h.conn.find_similar(&ExternalRecord::Company(stranger)).await.unwrap();
        assert!(none.iter().all(|r| r.id() != Some(id.as_str())), "a different name does not find it");
    }

    pub async fn a_created_contact_belongs_to_its_company_and_is_found_by_email(system: System) {
        let h = Harness::start(system).await;
        let company_id = h.create(ExternalRecord::Company(h.company("Larkspur Dental").await)).await;
        let contact = h.contact(&company_id, "ada.quill@larkspur.example");
        let id = h.create(ExternalRecord::Contact(contact.clone())).await;
        let probe = ExtContact { phone: None, title: None, company_id: None, ..contact };
        let found = h.conn.find_similar(&ExternalRecord::Contact(probe)).await.unwrap();
        assert!(found.iter().any(|r| r.id() == Some(id.as_str())), "the contact is found by its email: {found:?}");
    }

    pub async fn an_opportunity_is_created_for_its_company(system: System) {
        let h = Harness::start(system).await;
        let company_id = h.create(ExternalRecord::Company(h.company("Copperline Freight").await)).await;
        let contact_id = h.create(ExternalRecord::Contact(h.contact(&company_id, "ops@copperline.example"))).await;
        let opportunity = h.opportunity(&company_id, &contact_id).await;
        h.create(ExternalRecord::Opportunity(opportunity)).await;
    }

    pub async fn an_activity_is_created_on_its_contact(system: System) {
        let h = Harness::start(system).await;
        let writable = h.writable(RecordKind::Activity);
        if writable.is_empty() {
            let err = h
                .conn
                .create(&ExternalRecord::Activity(ExtActivity {
                    id: String::new(),
                    subject: "Call".into(),
                    body: None,
                    type_id: None,
                    contact_id: None,
                    company_id: None,
                    created_by: None,
                    date: None,
                    done: false,
                    updated_at: None,
                }))
                .await
                .unwrap_err();
            assert_eq!(err.kind, ErrorKind::Invalid, "a kind the system is not written is refused: {err}");
            return;
        }
        let company_id = h.create(ExternalRecord::Company(h.company("Fernhill Surveyors").await)).await;
        let contact_id = h.create(ExternalRecord::Contact(h.contact(&company_id, "desk@fernhill.example"))).await;
        let activity = h.activity(&company_id, &contact_id).await;
        h.create(ExternalRecord::Activity(activity)).await;
    }

    pub async fn a_create_the_system_refuses_is_invalid_with_its_own_words(system: System) {
        let h = Harness::start(system).await;
        let nameless = ExtCompany { name: String::new(), ..h.company("x").await };
        let err = h.conn.create(&ExternalRecord::Company(nameless)).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid, "{err}");
        assert!(!err.retryable);
        assert!(matches!(err.status, Some(400 | 422)), "the vendor's own status is kept: {err:?}");
        assert!(err.message.len() > 20, "the vendor's message is kept: {err}");
    }

    pub async fn an_update_naming_an_unwritable_field_is_refused_before_any_request(system: System) {
        let h = Harness::start(system).await;
        let id = h.create(ExternalRecord::Company(h.company("Tidewater Optics").await)).await;
        let company = ExtCompany { id, ..h.company("Tidewater Optics").await };
        let before = h.running.stats().requests;
        let err = h.conn.update(&ExternalRecord::Company(company), &["name", "lifetime_value"]).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
        assert!(err.message.contains("lifetime_value"), "the refused field is named: {err}");
        assert_eq!(h.running.stats().requests, before, "no request was made");
    }

    pub async fn a_create_whose_answer_is_lost_is_not_sent_again_and_is_found_by_the_search(system: System) {
        let h = Harness::start(system).await;
        let company = h.company("Wrenfield Instruments").await;
        h.running.lose_write_answers(1, 502);
        let before = h.running.stats();
        let err = h.conn.create(&ExternalRecord::Company(company.clone())).await.unwrap_err();
        let after = h.running.stats();
        h.running.lose_write_answers(0, 502);
        assert!(err.outcome_unknown(), "the outcome is unknown, so the create is not repeated: {err}");
        assert_eq!(after.lost_answers - before.lost_answers, 1, "the write was committed, its answer lost");
        assert_eq!(after.requests - before.requests, 1, "the create was sent once, not repeated blindly");
        let probe = ExtCompany { phone: None, website: None, address: None, ..company };
        let found = h.conn.find_similar(&ExternalRecord::Company(probe)).await.unwrap();
        let same: Vec<_> = found
            .iter()
            .filter(|r| matches!(r, ExternalRecord::Company(c) if c.name == "Wrenfield Instruments"))
            .collect();
        assert_eq!(same.len(), 1, "the committed record is there once: {found:?}");
    }

    pub async fn an_update_of_a_record_the_system_does_not_hold_is_not_found(system: System) {
        let h = Harness::start(system).await;
        let id = match system {
            System::Salesforce => "001ZZZZZZZZZZZZZZZ".to_string(),
            _ => "987654321".to_string(),
        };
        let company = ExtCompany { id, ..h.company("Ghost Holdings").await };
        let err = h.conn.update(&ExternalRecord::Company(company), &["phone"]).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    }

    /// The committed `DELETE`s the simulator counted so far.
    fn deletes(h: &Harness) -> u64 {
        h.running.stats().writes_by_method.get("DELETE").copied().unwrap_or(0)
    }

    pub async fn a_deleted_record_is_gone_and_deleting_it_again_succeeds(system: System) {
        let h = Harness::start(system).await;
        let company_id = h.create(ExternalRecord::Company(h.company("Ashgrove Printing").await)).await;
        let contact_id = h.create(ExternalRecord::Contact(h.contact(&company_id, "desk@ashgrove.example"))).await;
        let mut made = vec![(RecordKind::Company, company_id.clone()), (RecordKind::Contact, contact_id.clone())];
        if h.deletable(RecordKind::Opportunity) {
            let o = h.opportunity(&company_id, &contact_id).await;
            made.push((RecordKind::Opportunity, h.create(ExternalRecord::Opportunity(o)).await));
        }
        if h.deletable(RecordKind::Activity) {
            let a = h.activity(&company_id, &contact_id).await;
            made.push((RecordKind::Activity, h.create(ExternalRecord::Activity(a)).await));
        }
        for (kind, id) in made.iter().rev() {
            let before = deletes(&h);
            h.conn.delete(*kind, id).await.unwrap_or_else(|e| panic!("deleting a {kind}: {e}"));
            assert_eq!(deletes(&h) - before, 1, "one vendor delete of the {kind}");
            let gone = h.conn.get(*kind, id).await.unwrap();
            assert!(gone.is_none(), "a deleted {kind} reads as gone: {gone:?}");
            h.conn.delete(*kind, id).await.unwrap_or_else(|e| panic!("deleting a {kind} already gone: {e}"));
        }
        let probe = h.company("Ashgrove Printing").await;
        let found = h.conn.find_similar(&ExternalRecord::Company(probe)).await.unwrap();
        assert!(found.iter().all(|r| r.id() != Some(company_id.as_str())), "the deleted company is not listed");
    }

    pub async fn a_delete_whose_answer_is_lost_is_sent_again_and_succeeds(system: System) {
        let h = Harness::start(system).await;
        let id = h.create(ExternalRecord::Company(h.company("Marlow Glassworks").await)).await;
        h.running.lose_write_answers(1, 502);
        let before = h.running.stats();
        let deleted = h.conn.delete(RecordKind::Company, &id).await;
        let after = h.running.stats();
        h.running.lose_write_answers(0, 502);
        deleted.unwrap_or_else(|e| panic!("a delete is idempotent, so it is retried: {e}"));
        assert_eq!(after.lost_answers - before.lost_answers, 1, "the delete was committed, its answer lost");
        assert!(after.requests - before.requests >= 2, "the delete was sent again");
        assert!(h.conn.get(RecordKind::Company, &id).await.unwrap().is_none(), "the company is gone");
    }

    pub async fn a_kind_the_system_cannot_delete_is_refused_naming_it_before_any_request(system: System) {
        let h = Harness::start(system).await;
        let kinds = [
            RecordKind::User,
            RecordKind::Solution,
            RecordKind::Company,
            RecordKind::Contact,
            RecordKind::Opportunity,
            RecordKind::Activity,
        ];
        let id = match system {
            System::Salesforce => "001ZZZZZZZZZZZZZZZ",
            _ => "12345",
        };
        let before = h.running.stats().requests;
        for kind in kinds.into_iter().filter(|k| !h.deletable(*k)) {
            let err = h.conn.delete(kind, id).await.unwrap_err();
            assert_eq!((err.kind, err.retryable), (ErrorKind::Invalid, false), "{kind}: {err}");
            assert!(err.message.contains(kind.as_str()), "the kind is named: {err}");
        }
        let err = h.conn.delete(RecordKind::Company, "../1").await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid, "an id that cannot be one is refused: {err}");
        assert_eq!(h.running.stats().requests, before, "no request was made");
    }
}

macro_rules! contract {
    ($($module:ident => $system:expr),* $(,)?) => {$(
        mod $module {
            use super::*;
            #[tokio::test]
            async fn a_created_company_reads_back_with_the_values_sent() {
                checks::a_created_company_reads_back_with_the_values_sent($system).await;
            }
            #[tokio::test]
            async fn an_update_sets_only_the_fields_it_names() {
                checks::an_update_sets_only_the_fields_it_names($system).await;
            }
            #[tokio::test]
            async fn a_created_company_is_found_by_the_duplicate_search() {
                checks::a_created_company_is_found_by_the_duplicate_search($system).await;
            }
            #[tokio::test]
            async fn a_created_contact_belongs_to_its_company_and_is_found_by_email() {
                checks::a_created_contact_belongs_to_its_company_and_is_found_by_email($system).await;
            }
            #[tokio::test]
            async fn an_opportunity_is_created_for_its_company() {
                checks::an_opportunity_is_created_for_its_company($system).await;
            }
            #[tokio::test]
            async fn an_activity_is_created_on_its_contact() {
                checks::an_activity_is_created_on_its_contact($system).await;
            }
            #[tokio::test]
            async fn a_create_the_system_refuses_is_invalid_with_its_own_words() {
                checks::a_create_the_system_refuses_is_invalid_with_its_own_words($system).await;
            }
            #[tokio::test]
            async fn an_update_naming_an_unwritable_field_is_refused_before_any_request() {
                checks::an_update_naming_an_unwritable_field_is_refused_before_any_request($system).await;
            }
            #[tokio::test]
            async fn a_create_whose_answer_is_lost_is_not_sent_again_and_is_found_by_the_search() {
                checks::a_create_whose_answer_is_lost_is_not_sent_again_and_is_found_by_the_search($system).await;
            }
            #[tokio::test]
            async fn an_update_of_a_record_the_system_does_not_hold_is_not_found() {
                checks::an_update_of_a_record_the_system_does_not_hold_is_not_found($system).await;
            }
            #[tokio::test]
            async fn a_deleted_record_is_gone_and_deleting_it_again_succeeds() {
                checks::a_deleted_record_is_gone_and_deleting_it_again_succeeds($system).await;
            }
            #[tokio::test]
            async fn a_delete_whose_answer_is_lost_is_sent_again_and_succeeds() {
                checks::a_delete_whose_answer_is_lost_is_sent_again_and_succeeds($system).await;
            }
            #[tokio::test]
            async fn a_kind_the_system_cannot_delete_is_refused_naming_it_before_any_request() {
                checks::a_kind_the_system_cannot_delete_is_refused_naming_it_before_any_request($system).await;
            }
        }
    )*};
}

contract! {
    connectwise => System::ConnectWise,
    halo => System::Halo,
    syncro => System::Syncro,
    salesforce => System::Salesforce,
}
