//! "Send to <system>" end to end for every simulated system on the local runner: a tenant
//! imported from its simulator creates a company, a contact, an opportunity (and an
//! activity, naming only its contact, where the system takes them) through the record
//! API's use case, exports the
//! contact with everything, and finds each record in the simulator once, with the values
//! sent, read back through the connector. A second export creates nothing; a company the
//! system already holds (as after a crash between the vendor's create and our link) is
//! found and linked, not created again; with every tenth vendor write committed and its
//! answer lost, and every export message delivered twice, each record is in the system
//! once and linked once; bad requests are refused and change nothing.

use serde_json::json;
use std::time::{Duration, Instant};

use tandem_connectors::http::{RetryPolicy, Settings};
use tandem_domain::export::{Export, ExportMessage, ExportOutcome, ExportStatus};
use tandem_domain::external::{ExtCompany, ExternalRecord, OptionList};
use tandem_domain::ids::Stage;
use tandem_domain::records::Record;
use tandem_domain::usecases::import::{self, AllStages, StageSelection};
use tandem_domain::usecases::{connections, crm, export};
use tandem_domain::{ErrorClass, RecordKind, System, TenantId};
use tandem_embedded::QueueConfig;
use tandem_local::runtime::LocalRuntime;
use tandem_local::setup;
use tandem_local::sims::{self, RunningSim, Scale};
use tandem_sim::SimConfig;

fn tenant() -> TenantId {
    TenantId::parse("exporter").unwrap()
}

fn settings() -> Settings {
    Settings {
        retry: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(1),
            ..RetryPolicy::default()
        },
        pacing: tandem_connectors::Pacing::Off,
        ..Settings::default()
    }
}

/// A simulator and a runtime whose tenant has imported it (mappings saved, users linked).
async fn imported(system: System) -> (RunningSim, LocalRuntime) {
    let sim = sims::start(system, &Scale::new(5, 12), SimConfig::default(), 0).await.unwrap();
    if let Some(h) = sim.syncro() {
        h.set_requests_per_minute(None);
    }
    let rt = LocalRuntime::new(None, QueueConfig::default(), settings()).unwrap();
    setup::seed_crm(&rt.svc, &tenant(), &sim.crm_seed).await.unwrap();
    connections::save_credentials(&rt.svc, &tenant(), system, &sim.credentials).await.unwrap();
    setup::map_typically(&rt.svc, &tenant(), system, &sim.typical).await.unwrap();
    let job = import::start_import(&rt.svc, &tenant(), system, StageSelection::All(AllStages::All)).await.unwrap();
    rt.run_until_done(&tenant(), &job.id, &|_| {}).await.unwrap();
    (sim, rt)
}

/// Runs the queue until the export ends.
async fn finish(rt: &LocalRuntime, started: &Export) -> Export {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        rt.work_once(Duration::from_millis(50)).await.unwrap();
        let e = export::export(&rt.svc, &tenant(), &started.id).await.unwrap();
        if e.status != ExportStatus::Running {
            return e;
        }
        assert!(Instant::now() < deadline, "the export did not finish: {e:?}");
    }
}

/// A CRM value of `list` in `stage`'s saved mapping that goes out as exactly one option.
async fn exportable(rt: &LocalRuntime, system: System, stage: Stage, list: OptionList) -> Option<String> {
    let conn = connections::connection(&rt.svc, &tenant(), system).await.unwrap();
    let values: Vec<String> =
        conn.mappings.get(&stage).and_then(|s| s.get(&list)).map(|m| m.values().cloned().collect()).unwrap_or_default();
    values.into_iter().find(|v| matches!(conn.export_option(stage, list, v), Ok(Some(_))))
}

/// A CRM user linked to a member of the system.
async fn linked_user(rt: &LocalRuntime, system: System) -> Option<Record> {
    rt.svc.store.all_records(&tenant(), RecordKind::User).await.unwrap().into_iter().find(|u| u.link(system).is_some())
}

async fn create(rt: &LocalRuntime, kind: RecordKind, body: serde_json::Value) -> Record {
    crm::create(&rt.svc, &tenant(), kind, &body).await.unwrap_or_else(|e| panic!("creating a {kind}: {e}"))
}

fn outcome_of(e: &Export, kind: RecordKind) -> Vec<ExportOutcome> {
    e.results.iter().filter(|r| r.kind == kind).map(|r| r.outcome).collect()
}

async fn a_contact_goes_out_with_its_company_opportunity_and_activity_once(system: System) {
    let (sim, rt) = imported(system).await;
    let described = tandem_connectors::describe(system);
    let company_type = exportable(&rt, system, Stage::Companies, OptionList::CompanyTypes).await;
    let company = create(
        &rt,
        RecordKind::Company,
        json!({"name": "Brightwater Analytics", "phone": "+1 555 201 0188", "company_type": company_type}),
    )
    .await;
    let contact = create(
        &rt,
        RecordKind::Contact,
        json!({"first_name": "Mira", "last_name": "Okafor", "email": "mira@brightwater.example", "company": company.id()}),
    )
    .await;
    let status = exportable(&rt, system, Stage::Opportunities, OptionList::OpportunityStatuses).await;
    let salesperson = linked_user(&rt, system).await;
    create(
        &rt,
        RecordKind::Opportunity,
        json!({"name": "Brightwater managed backup", "status": status, "close_date": "2027-03-31", "company": company.id(), "contact": contact.id(),
               "salesperson": salesperson.as_ref().map(|u| u.id().to_string())}),
    )
    .await;
    let takes_activities = !described.writable(RecordKind::Activity).is_empty();
    let kind = exportable(&rt, system, Stage::Activities, OptionList::ActivityTypes).await;
    let with_activity = takes_activities && kind.is_some() && salesperson.is_some();
    if let (true, Some(kind), Some(user)) = (with_activity, kind, salesperson.as_ref()) {
        create(
            &rt,
            RecordKind::Activity,
            json!({"kind": kind, "subject": "Discovery call", "body": "Backups are manual today.",
                   "contact": contact.id(), "created_by": user.id(),
                   "date": "2026-11-20T15:30:00Z"}),
        )
        .await;
    }

    let request = json!({"kind": "contact", "id": contact.id(), "include": ["details", "opportunities", "activities"]});
    let started = export::start(&rt.svc, &tenant(), system, &request).await.unwrap();
    let done = finish(&rt, &started).await;
    assert_eq!(done.status, ExportStatus::Done, "{done:?}");
    assert_eq!(outcome_of(&done, RecordKind::Company), vec![ExportOutcome::Created], "{done:?}");
    assert_eq!(outcome_of(&done, RecordKind::Contact), vec![ExportOutcome::Created], "{done:?}");
    assert_eq!(outcome_of(&done, RecordKind::Opportunity), vec![ExportOutcome::Created], "{done:?}");
    if with_activity {
        assert_eq!(outcome_of(&done, RecordKind::Activity), vec![ExportOutcome::Created], "{done:?}");
    }

    // Each record is in the system once, linked, with the values sent.
    let connector = connections::connector(&rt.svc, &tenant(), system).await.unwrap();
    let stored = rt.svc.store.record(&tenant(), RecordKind::Contact, contact.id()).await.unwrap().unwrap();
    let ext_id = stored.link(system).expect("the contact is linked").id.clone();
    let Some(ExternalRecord::Contact(c)) = connector.get(RecordKind::Contact, &ext_id).await.unwrap() else {
        panic!("the exported contact is not in {system}")
    };
    assert_eq!((c.first_name.as_str(), c.email.as_deref()), ("Mira", Some("mira@brightwater.example")));
    let company_ext = rt.svc.store.record(&tenant(), RecordKind::Company, company.id()).await.unwrap().unwrap();
    let company_ext = company_ext.link(system).expect("the company is linked").id.clone();
    assert_eq!(c.company_id.as_deref(), Some(company_ext.as_str()), "the contact sits under the exported company");

    // Sending again creates nothing.
    let again = export::start(&rt.svc, &tenant(), system, &request).await.unwrap();
    let again = finish(&rt, &again).await;
    assert!(again.results.iter().all(|r| r.outcome == ExportOutcome::Updated), "{again:?}");
    let probe = ExternalRecord::Company(ExtCompany::named("Brightwater Analytics"));
    let same_name: Vec<_> = connector
        .find_similar(&probe)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| matches!(r, ExternalRecord::Company(x) if x.name == "Brightwater Analytics"))
        .collect();
    assert_eq!(same_name.len(), 1, "one company in {system}, however often it is sent: {same_name:?}");
    sim.shutdown().await;
}

async fn a_company_the_system_already_holds_is_linked_not_created_again(system: System) {
    let (sim, rt) = imported(system).await;
    connections::save_settings(&rt.svc, &tenant(), system, &json!({"export_requires_opportunity": false}))
        .await
        .unwrap();
    let company =
        create(&rt, RecordKind::Company, json!({"name": "Kestrel Freightworks", "phone": "+1 555 201 0177"})).await;
    // As if an earlier attempt created it in the system and died before linking it.
    let connector = connections::connector(&rt.svc, &tenant(), system).await.unwrap();
    let conn = connections::connection(&rt.svc, &tenant(), system).await.unwrap();
    let linked = Default::default();
    let ext =
        tandem_domain::outgoing::external(&conn, tandem_connectors::describe(system), &company, "", &linked).unwrap();
    let first = connector.create(&ext).await.unwrap();

    let request = json!({"kind": "company", "id": company.id()});
    let started = export::start(&rt.svc, &tenant(), system, &request).await.unwrap();
    let done = finish(&rt, &started).await;
    let result = &done.results[0];
    assert_eq!(result.outcome, ExportOutcome::Updated, "{done:?}");
    assert_eq!(result.external_id.as_deref(), Some(first.id.as_str()), "linked to the one already there");
    assert!(result.message.as_deref().unwrap_or_default().contains("found in"), "{result:?}");
    sim.shutdown().await;
}

/// Runs an export's message `deliveries` times by hand (as a queue redelivering it would),
/// tolerating the failures a delivery reports, then lets the worker finish it.
async fn delivered(rt: &LocalRuntime, started: &Export, deliveries: usize) -> Export {
    let msg = ExportMessage { tenant: tenant(), system: started.system, export_id: started.id.clone() };
    for _ in 0..deliveries {
        if let Err(e) = export::run(&rt.svc, &msg).await {
            assert!(e.is_retryable(), "only a failure that may pass is redelivered: {e}");
        }
    }
    finish(rt, started).await
}

async fn lost_vendor_answers_and_twice_delivered_messages_leave_each_record_once(system: System) {
    let (sim, rt) = imported(system).await;
    connections::save_settings(&rt.svc, &tenant(), system, &json!({"export_requires_opportunity": false}))
        .await
        .unwrap();
    sim.handle().lose_write_answers(10, 502);
    let company_type = exportable(&rt, system, Stage::Companies, OptionList::CompanyTypes).await;
    let mut names = Vec::new();
    for i in 0..12 {
        let name = format!("Lostwater Holdings {i}");
        let company = create(&rt, RecordKind::Company, json!({"name": name, "company_type": company_type})).await;
        let contact = create(
            &rt,
            RecordKind::Contact,
            json!({"first_name": "Ines", "last_name": format!("Vale {i}"), "email": format!("ines{i}@lostwater.example"),
                   "company": company.id()}),
        )
        .await;
        let started =
            export::start(&rt.svc, &tenant(), system, &json!({"kind": "contact", "id": contact.id()})).await.unwrap();
        let done = delivered(&rt, &started, 2).await;
        assert_eq!(done.status, ExportStatus::Done, "{done:?}");
        assert!(done.results.iter().all(|r| r.outcome != ExportOutcome::Failed), "{done:?}");
        names.push(name);
    }
    assert!(sim.handle().stats().lost_answers >= 2, "some writes were committed and their answers lost");
    let connector = connections::connector(&rt.svc, &tenant(), system).await.unwrap();
    for name in &names {
        let probe = ExternalRecord::Company(ExtCompany::named(name));
        let found = connector.find_similar(&probe).await.unwrap();
        let same = found.iter().filter(|r| matches!(r, ExternalRecord::Company(c) if &c.name == name)).count();
        assert_eq!(same, 1, "{name} is in {system} once");
    }
    let mut linked = std::collections::HashSet::new();
    for kind in [RecordKind::Company, RecordKind::Contact] {
        for r in rt.svc.store.all_records(&tenant(), kind).await.unwrap() {
            if let Some(l) = r.link(system) {
                assert!(linked.insert((kind, l.id.clone())), "{kind} {} is linked twice", l.id);
            }
        }
    }
    sim.shutdown().await;
}

/// Creates a company with a contact, `n` opportunities and (where the system takes them)
/// `n` activities by that contact; their names start with `prefix`.
async fn busy_company(rt: &LocalRuntime, system: System, prefix: &str, n: usize) -> Record {
    let company_type = exportable(rt, system, Stage::Companies, OptionList::CompanyTypes).await;
    let company =
        create(rt, RecordKind::Company, json!({"name": format!("{prefix} Ltd"), "company_type": company_type})).await;
    let contact = create(
        rt,
        RecordKind::Contact,
        json!({"first_name": "Tomas", "last_name": prefix, "email": format!("tomas@{}.example", prefix.to_lowercase()),
               "company": company.id()}),
    )
    .await;
    let status = exportable(rt, system, Stage::Opportunities, OptionList::OpportunityStatuses).await;
    let salesperson = linked_user(rt, system).await.map(|u| u.id().to_string());
    let kind = exportable(rt, system, Stage::Activities, OptionList::ActivityTypes).await;
    let takes_activities = !tandem_connectors::describe(system).writable(RecordKind::Activity).is_empty();
    for i in 0..n {
        create(
            rt,
            RecordKind::Opportunity,
            json!({"name": format!("{prefix} deal {i}"), "status": status, "close_date": "2027-03-31",
                   "company": company.id(), "contact": contact.id(), "salesperson": salesperson}),
        )
        .await;
        if let (true, Some(kind), Some(user)) = (takes_activities, kind.as_ref(), salesperson.as_ref()) {
            create(
                rt,
                RecordKind::Activity,
                json!({"kind": kind, "subject": format!("{prefix} call {i}"), "body": format!("Call {i} about backups."),
                       "contact": contact.id(),
                       "company": company.id(), "created_by": user, "date": "2026-11-20T15:30:00Z"}),
            )
            .await;
        }
    }
    company
}

/// Each of `company`'s opportunities and activities is in the system exactly once.
async fn each_once(rt: &LocalRuntime, system: System, company: &Record) {
    let connector = connections::connector(&rt.svc, &tenant(), system).await.unwrap();
    let mut linked = std::collections::HashSet::new();
    for kind in [RecordKind::Opportunity, RecordKind::Activity] {
        for r in rt.svc.store.all_records(&tenant(), kind).await.unwrap() {
            let company_key = (tandem_domain::records::LookupField::Company, company.id().to_string());
            if !r.lookup_keys().contains(&company_key) {
                continue;
            }
            let link = r.link(system).unwrap_or_else(|| panic!("{kind} {} is not linked", r.id()));
            assert!(linked.insert((kind, link.id.clone())), "{kind} {} is linked twice", link.id);
            let held = connector.get(kind, &link.id).await.unwrap();
            let held = held.unwrap_or_else(|| panic!("{kind} {} is not in {system}", link.id));
            let title = |r: &ExternalRecord| ["name", "subject", "body", "date"].map(|f| r.field(f));
            let found = connector.find_similar(&held).await.unwrap();
            let ids: Vec<&str> =
                found.iter().filter(|f| title(f) == title(&held)).filter_map(ExternalRecord::id).collect();
            assert_eq!(ids, [link.id.as_str()], "{kind} {} is in {system} once", r.id());
        }
    }
}

async fn a_company_s_opportunities_and_activities_go_out_once_each_in_as_few_calls_as_it_allows(system: System) {
    let (sim, rt) = imported(system).await;
    let n = 6;
    let include = json!(["details", "opportunities", "activities"]);
    let company = busy_company(&rt, system, "Harrowgate", n).await;
    let before = sim.handle().stats().requests;
    let started =
        export::start(&rt.svc, &tenant(), system, &json!({"kind": "company", "id": company.id(), "include": include}))
            .await
            .unwrap();
    let done = finish(&rt, &started).await;
    let calls = sim.handle().stats().requests - before;
    assert_eq!(done.status, ExportStatus::Done, "{done:?}");
    assert!(done.results.iter().all(|r| r.outcome == ExportOutcome::Created), "{done:?}");
    each_once(&rt, system, &company).await;
    if system == System::Salesforce {
        // The company and the contact: a search and a create each; then per kind a search
        // per record and one sObject Collections call (the session may be fetched once).
        // One create per record would be at least 2 + 2 + 4n calls.
        assert!(calls <= 4 + 2 * (n as u64 + 1) + 1, "{calls} calls for {} records", done.results.len());
    }

    // Answers lost on the way and every message delivered twice change nothing of that.
    sim.handle().lose_write_answers(3, 502);
    let company = busy_company(&rt, system, "Lostmere", n).await;
    let started =
        export::start(&rt.svc, &tenant(), system, &json!({"kind": "company", "id": company.id(), "include": include}))
            .await
            .unwrap();
    let done = delivered(&rt, &started, 2).await;
    sim.handle().lose_write_answers(0, 502);
    assert_eq!(done.status, ExportStatus::Done, "{done:?}");
    assert!(done.results.iter().all(|r| r.outcome != ExportOutcome::Failed), "{done:?}");
    each_once(&rt, system, &company).await;
    sim.shutdown().await;
}

async fn bad_export_requests_are_refused_and_change_nothing(system: System) {
    let (sim, rt) = imported(system).await;
    let company = create(&rt, RecordKind::Company, json!({"name": "Lonely Fields"})).await;
    let err =
        export::start(&rt.svc, &tenant(), system, &json!({"kind": "company", "id": company.id()})).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Refused);
    assert!(err.to_string().contains("no opportunity"), "{err}");
    let err = export::start(&rt.svc, &tenant(), system, &json!({"kind": "company", "id": "nope"})).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::NotFound);
    let err = export::start(&rt.svc, &tenant(), system, &json!({"kind": "opportunity", "id": company.id()}))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Invalid);
    let err = export::start(&rt.svc, &tenant(), system, &json!({"kind": "company", "id": company.id(), "colour": 1}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("colour"), "{err}");
    assert!(
        rt.svc
            .store
            .record(&tenant(), RecordKind::Company, company.id())
            .await
            .unwrap()
            .unwrap()
            .link(system)
            .is_none()
    );
    // A record deleted after its export was queued ends the export as failed, saying so.
    let doomed = create(&rt, RecordKind::Company, json!({"name": "Short Lived Ltd"})).await;
    create(&rt, RecordKind::Opportunity, json!({"name": "Short deal", "company": doomed.id()})).await;
    let started =
        export::start(&rt.svc, &tenant(), system, &json!({"kind": "company", "id": doomed.id()})).await.unwrap();
    crm::delete(&rt.svc, &tenant(), RecordKind::Company, doomed.id()).await.unwrap();
    let ended = finish(&rt, &started).await;
    assert_eq!(ended.status, ExportStatus::Failed, "{ended:?}");
    assert!(ended.message.as_deref().unwrap_or_default().contains("deleted"), "{ended:?}");
    // A connection whose contacts mapping is not saved refuses, naming it.
    let mut conn = connections::connection(&rt.svc, &tenant(), system).await.unwrap();
    conn.mappings.remove(&Stage::Contacts);
    rt.svc.store.save_connection(&conn).await.unwrap();
    connections::save_settings(&rt.svc, &tenant(), system, &json!({"export_requires_opportunity": false}))
        .await
        .unwrap();
    let err =
        export::start(&rt.svc, &tenant(), system, &json!({"kind": "company", "id": company.id()})).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Refused);
    assert!(err.to_string().contains("contacts mapping"), "{err}");
    sim.shutdown().await;
}

macro_rules! per_system {
    ($($module:ident => $system:expr),* $(,)?) => {$(
        mod $module {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_contact_goes_out_with_its_company_opportunity_and_activity_once() {
                super::a_contact_goes_out_with_its_company_opportunity_and_activity_once($system).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_company_the_system_already_holds_is_linked_not_created_again() {
                super::a_company_the_system_already_holds_is_linked_not_created_again($system).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn lost_vendor_answers_and_twice_delivered_messages_leave_each_record_once() {
                super::lost_vendor_answers_and_twice_delivered_messages_leave_each_record_once($system).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_company_s_opportunities_and_activities_go_out_once_each_in_as_few_calls_as_it_allows() {
                super::a_company_s_opportunities_and_activities_go_out_once_each_in_as_few_calls_as_it_allows($system).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn bad_export_requests_are_refused_and_change_nothing() {
                super::bad_export_requests_are_refused_and_change_nothing($system).await;
            }
        }
    )*};
}

per_system! {
    connectwise => System::ConnectWise,
    halo => System::Halo,
    syncro => System::Syncro,
    salesforce => System::Salesforce,
}
