//! The HaloPSA writer over real HTTP against the HaloPSA simulator, beyond the shared write
//! contract: CRM notes, the duplicate search of contacts and opportunities, refusals before
//! any request, and a create whose outcome is unknown.

// Tests unwrap: a failed unwrap is a failed test, with the error in the panic message.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use tandem_connectors::transport::outcome_unknown;
use tandem_connectors::{Connectors, Pacing, RetryPolicy, Settings};
use tandem_domain::external::{ExtActivity, ExtCompany, ExtContact, ExtOpportunity, ExternalRecord};
use tandem_domain::ports::{Connector, ConnectorFactory, ErrorKind};
use tandem_domain::secret::{Credentials, HaloCredentials, SecretString};
use tandem_domain::{RecordKind, Timestamp};
use tandem_sim::halo::{GenConfig, SimConfig, SimHandle, Simulator, Tenant};

struct Setup {
    sim: SimHandle,
    conn: Arc<dyn Connector>,
}

async fn start() -> Setup {
    let tenant = Tenant::generate(&GenConfig::with_companies(13, 5));
    let sim = Simulator::start(tenant, SimConfig::default(), 0).await.unwrap();
    let c = sim.credentials();
    let creds = HaloCredentials {
        site: c.site,
        auth_url: None,
        tenant: c.tenant,
        client_id: c.client_id,
        client_secret: SecretString::new(c.client_secret),
    };
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
    let conn = Connectors::new(settings).connect(&Credentials::Halo(creds)).unwrap();
    Setup { sim, conn }
}

fn company(name: &str) -> ExtCompany {
    ExtCompany::named(name)
}

fn contact(company_id: &str, email: Option<&str>) -> ExtContact {
    ExtContact {
        id: String::new(),
        first_name: "Ada".into(),
        last_name: "Quill".into(),
        email: email.map(str::to_string),
        phone: None,
        title: None,
        company_id: Some(company_id.into()),
        types: Vec::new(),
        inactive: false,
        updated_at: None,
    }
}

fn note(company_id: &str, body: &str) -> ExtActivity {
    ExtActivity {
        id: String::new(),
        subject: "Call".into(),
        body: Some(body.into()),
        type_id: None,
        contact_id: None,
        company_id: Some(company_id.into()),
        created_by: None,
        date: Some(Timestamp::parse("2026-11-20T15:30:00Z").unwrap()),
        done: true,
        updated_at: None,
    }
}

async fn create(conn: &dyn Connector, record: ExternalRecord) -> String {
    conn.create(&record).await.unwrap().id
}

#[tokio::test]
async fn refused_updates_make_no_request() {
    let s = start().await;
    let id = create(s.conn.as_ref(), ExternalRecord::Company(company("Tidewater Optics"))).await;
    let record = ExternalRecord::Company(ExtCompany { id, ..company("Tidewater Optics") });
    let before = s.sim.stats().requests;
    let err = s.conn.update(&record, &["name", "lifetime_value"]).await.unwrap_err();
    assert!(err.message.contains("lifetime_value"), "{err}");
    let subject = ExternalRecord::Activity(ExtActivity { id: "note-1".into(), ..note("1", "x") });
    assert_eq!(s.conn.update(&subject, &["subject"]).await.unwrap_err().kind, ErrorKind::Invalid);
    let action = ExternalRecord::Activity(ExtActivity { id: "action-1".into(), ..note("1", "x") });
    assert_eq!(s.conn.update(&action, &["body"]).await.unwrap_err().kind, ErrorKind::Invalid);
    assert_eq!(s.sim.stats().requests, before, "no request was made");
}

#[tokio::test]
async fn a_crm_note_is_created_and_its_body_updated() {
    let s = start().await;
    let company_id = create(s.conn.as_ref(), ExternalRecord::Company(company("Fernhill Surveyors"))).await;
    let id = create(s.conn.as_ref(), ExternalRecord::Activity(note(&company_id, "First words"))).await;
    assert!(id.starts_with("note-"), "{id}");
    let changed = ExtActivity { id: id.clone(), ..note(&company_id, "Second thoughts") };
    let written = s.conn.update(&ExternalRecord::Activity(changed), &["body"]).await.unwrap();
    assert_eq!(written.id, id);
    let Some(ExternalRecord::Activity(back)) = s.conn.get(RecordKind::Activity, &id).await.unwrap() else { panic!() };
    assert_eq!(
        (back.body.as_deref(), back.company_id.as_deref()),
        (Some("Second thoughts"), Some(company_id.as_str()))
    );
}

#[tokio::test]
async fn contacts_are_found_by_email_and_opportunities_by_name_within_their_client() {
    let s = start().await;
    let company_id = create(s.conn.as_ref(), ExternalRecord::Company(company("Larkspur Dental"))).await;
    let other_id = create(s.conn.as_ref(), ExternalRecord::Company(company("Other Dental"))).await;
    let contact_id =
        create(s.conn.as_ref(), ExternalRecord::Contact(contact(&company_id, Some("ada@larkspur.example")))).await;
    let probe = ExternalRecord::Contact(contact(&company_id, Some("ADA@larkspur.example")));
    let found = s.conn.find_similar(&probe).await.unwrap();
    assert!(found.iter().any(|r| r.id() == Some(contact_id.as_str())), "{found:?}");
    let opportunity = |client: &str| ExtOpportunity {
        id: String::new(),
        name: "Managed backup rollout".into(),
        status_id: None,
        stage: None,
        opportunity_type: None,
        close_date: None,
        value: Some(10.0),
        line_items: Vec::new(),
        salesperson_id: None,
        company_id: Some(client.into()),
        contact_id: None,
        notes: None,
        updated_at: None,
    };
    let id = create(s.conn.as_ref(), ExternalRecord::Opportunity(opportunity(&company_id))).await;
    let found = s.conn.find_similar(&ExternalRecord::Opportunity(opportunity(&company_id))).await.unwrap();
    assert_eq!(found.iter().filter_map(ExternalRecord::id).collect::<Vec<_>>(), [id.as_str()]);
    let elsewhere = s.conn.find_similar(&ExternalRecord::Opportunity(opportunity(&other_id))).await.unwrap();
    assert!(elsewhere.is_empty(), "{elsewhere:?}");
}

#[tokio::test]
async fn a_create_whose_outcome_is_unknown_is_not_sent_again() {
    let s = start().await;
    create(s.conn.as_ref(), ExternalRecord::Company(company("Warm Up Ltd"))).await;
    let before = s.sim.stats().requests;
    s.sim.fail_next(1, 500);
    let err = s.conn.create(&ExternalRecord::Company(company("Stormy Weather Co"))).await.unwrap_err();
    assert!(outcome_unknown(&err), "{err:?}");
    assert_eq!(s.sim.stats().requests, before + 1, "one POST, not repeated");
}
