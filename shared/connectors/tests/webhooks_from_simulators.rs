//! Every simulator's webhook delivery, as received over HTTP, passes the Tandem reader of
//! its system: `verify` with the connection's secret (ConnectWise: the signing key fetched
//! from the call's `key_url`) and `parse` naming the changed record, its kind and action.
//! This is where the simulators and the readers are shown to agree. A delete made through
//! a connector (sync out) is told as a person's delete is, and a ConnectWise callback
//! registered self-suppressed (as Tandem registers them) tells no change of the registering
//! API member's own, but a person's and another API member's.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{Value, json};
use tandem_connectors::{Connectors, Pacing, RetryPolicy, Settings};
use tandem_domain::external::{ExtCompany, ExternalRecord};
use tandem_domain::ports::{Connector, ConnectorFactory};
use tandem_domain::secret::Credentials;
use tandem_domain::webhook::{Action, Notice, WebhookCall};
use tandem_domain::{RecordKind, System, Timestamp};
use tandem_sim::webhooks::{Kind, Received, Receiver};
use tandem_sim::{RunningSystem, Scale, SimConfig, simulator};

const WAIT: Duration = Duration::from_secs(10);

async fn start(name: &str) -> Box<dyn RunningSystem> {
    simulator(name).unwrap().generate(&Scale::new(7, 4)).serve(SimConfig::default(), 0).await.unwrap()
}

fn call(received: &Received) -> WebhookCall {
    WebhookCall { headers: received.headers.clone(), query: received.query.clone(), body: received.body.clone() }
}

/// A person creates, edits and (where the system tells deletes) deletes a company; answers
/// its id.
fn change_a_company(sim: &dyn RunningSystem, fields: Value, edit: Value, delete: bool) -> String {
    let id = sim.create_as_person(Kind::Company, fields).unwrap();
    sim.edit_as_person(Kind::Company, &id, edit).unwrap();
    if delete {
        sim.delete_as_person(Kind::Company, &id).unwrap();
    }
    id
}

/// The notices of every call, each verified with `secret(call)` first.
async fn read_all(system: System, calls: &[Received], secret: impl AsyncFn(&WebhookCall) -> Vec<u8>) -> Vec<Notice> {
    let reader = tandem_connectors::webhook(system);
    let mut notices = Vec::new();
    for received in calls {
        let call = call(received);
        let key = secret(&call).await;
        assert_eq!(reader.verify(&call, &key), Ok(()), "{system:?}: {}", String::from_utf8_lossy(&call.body));
        assert!(reader.verify(&call, b"not-the-secret").is_err(), "{system:?}: a wrong secret fails");
        notices.extend(reader.parse(&call).unwrap().notices);
    }
    notices
}

fn kinds_ids_actions(notices: &[Notice]) -> Vec<(RecordKind, String, Action)> {
    notices.iter().map(|n| (n.kind, n.id.clone(), n.action)).collect()
}

fn company(id: &str, actions: &[Action]) -> Vec<(RecordKind, String, Action)> {
    actions.iter().map(|a| (RecordKind::Company, id.to_string(), *a)).collect()
}

#[tokio::test]
async fn connectwise_callbacks_verify_with_the_key_from_key_url_and_name_the_company() {
    let sim = start("connectwise").await;
    let receiver = Receiver::start().await.unwrap();
    let c = sim.credentials();
    let resp = reqwest::Client::new()
        .post(format!("{}/system/callbacks", sim.api_url()))
        .basic_auth(
            format!("{}+{}", c["company_id"].as_str().unwrap(), c["public_key"].as_str().unwrap()),
            c["private_key"].as_str(),
        )
        .header("clientId", c["client_id"].as_str().unwrap())
        .json(&json!({"url": receiver.url("/cw?id="), "objectId": 1, "type": "company", "level": "owner"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let id = change_a_company(
        sim.as_ref(),
        json!({"identifier": "HookCo", "name": "Hook Co"}),
        json!({"name": "Hook Company"}),
        true,
    );
    assert!(sim.webhooks_settled(WAIT).await);
    let notices = read_all(System::ConnectWise, &receiver.calls(), async |call: &WebhookCall| {
        let key_url = tandem_connectors::webhook(System::ConnectWise).parse(call).unwrap().key_url.unwrap();
        let key: Value = reqwest::get(key_url).await.unwrap().json().await.unwrap();
        key["signing_key"].as_str().unwrap().as_bytes().to_vec()
    })
    .await;
    assert_eq!(kinds_ids_actions(&notices), company(&id, &[Action::Changed, Action::Changed, Action::Deleted]));
    assert!(notices[1].at.is_some(), "the entity's _info.lastUpdated dates the change");
}

#[tokio::test]
async fn halo_webhooks_verify_with_the_configured_bearer_token_and_name_the_client() {
    let sim = start("halo").await;
    let receiver = Receiver::start().await.unwrap();
    let c = sim.credentials();
    let http = reqwest::Client::new();
    let mut token_url = format!("{}/auth/token", c["site"].as_str().unwrap());
    if let Some(tenant) = c["tenant"].as_str() {
        token_url.push_str(&format!("?tenant={tenant}"));
    }
    let token: Value = http
        .post(token_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope=all",
            c["client_id"].as_str().unwrap(),
            c["client_secret"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hook = json!([{"name": "Tandem clients", "url": receiver.url("/halo?kind=client"), "authentication_type": 2,
        "authentication_header": "halo-s3cret", "events": [{"name": "Client Updated"}], "active": true}]);
    let resp = http
        .post(format!("{}/Webhook", sim.api_url()))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .json(&hook)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let id = change_a_company(sim.as_ref(), json!({"name": "Hook Co"}), json!({"name": "Hook Company"}), true);
    assert!(sim.webhooks_settled(WAIT).await);
    let notices = read_all(System::Halo, &receiver.calls(), async |_: &WebhookCall| b"halo-s3cret".to_vec()).await;
    assert_eq!(kinds_ids_actions(&notices), company(&id, &[Action::Changed, Action::Changed, Action::Deleted]));
}

#[tokio::test]
async fn syncro_notifications_verify_with_the_token_in_their_url_and_name_the_customer() {
    let sim = start("syncro").await;
    let receiver = Receiver::start().await.unwrap();
    assert!(sim.subscribe(&receiver.url("/syncro?token=syncro-s3cret")));
    let id = change_a_company(
        sim.as_ref(),
        json!({"business_name": "Hook Co"}),
        json!({"business_name": "Hook Company"}),
        true,
    );
    assert!(sim.webhooks_settled(WAIT).await);
    let notices = read_all(System::Syncro, &receiver.calls(), async |_: &WebhookCall| b"syncro-s3cret".to_vec()).await;
    assert_eq!(kinds_ids_actions(&notices), company(&id, &[Action::Changed, Action::Changed, Action::Deleted]));
}

#[tokio::test]
async fn salesforce_outbound_messages_verify_with_the_org_id_and_token_and_name_the_account() {
    use tandem_connectors::salesforce::webhook::{ACK_CONTENT_TYPE, acknowledgement, webhook_secret};
    let sim = start("salesforce").await;
    let org_id = sim.as_any().downcast_ref::<tandem_sim::salesforce::SimHandle>().unwrap().org_id();
    let receiver = Receiver::start().await.unwrap();
    receiver.answer_with(200, ACK_CONTENT_TYPE, acknowledgement(true));
    assert!(sim.subscribe(&receiver.url("/sf?token=sf-t0ken")));
    let id = change_a_company(sim.as_ref(), json!({"Name": "Hook Co"}), json!({"Name": "Hook Company"}), false);
    assert!(sim.webhooks_settled(WAIT).await);
    let secret = webhook_secret(&org_id, Some("sf-t0ken"));
    let notices = read_all(System::Salesforce, &receiver.calls(), async |_: &WebhookCall| secret.clone()).await;
    assert_eq!(kinds_ids_actions(&notices), company(&id, &[Action::Changed, Action::Changed]));
    assert!(sim.webhooks_sent().iter().all(|s| s.status == Some(200) && s.attempt == 1), "acknowledged at once");
}

/// A connector of `system` for `creds` (the credentials body), retrying quickly, unpaced.
fn connector(system: System, creds: &Value) -> std::sync::Arc<dyn Connector> {
    let settings = Settings {
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(1),
        },
        pacing: Pacing::Off,
        ..Settings::default()
    };
    Connectors::new(settings).connect(&Credentials::parse(system, creds).unwrap()).unwrap()
}

/// Registers a ConnectWise callback for companies at `url` with the keys of `creds`.
async fn register_callback(sim: &dyn RunningSystem, creds: &Value, url: &str, self_suppressed: bool) {
    let text = |k: &str| creds[k].as_str().unwrap().to_string();
    let resp = reqwest::Client::new()
        .post(format!("{}/system/callbacks", sim.api_url()))
        .basic_auth(format!("{}+{}", text("company_id"), text("public_key")), Some(text("private_key")))
        .header("clientId", text("client_id"))
        .json(&json!({"url": url, "objectId": 1, "type": "company", "level": "owner",
            "isSelfSuppressedFlag": self_suppressed}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
}

/// A person creates two companies and deletes the first; the connector deletes the second.
/// Answers (deleted by the person, deleted through the API).
async fn delete_one_as_a_person_and_one_through_the_api(
    sim: &dyn RunningSystem,
    conn: &dyn Connector,
) -> (String, String) {
    let fields = |name: &str, identifier: &str| {
        let mut fields = json!({sim.company_name_field(): name});
        if conn.system() == System::ConnectWise {
            fields["identifier"] = json!(identifier);
        }
        fields
    };
    let by_person = sim.create_as_person(Kind::Company, fields("Gone By Hand", "ByHand")).unwrap();
    let by_api = sim.create_as_person(Kind::Company, fields("Gone By Api", "ByApi")).unwrap();
    sim.delete_as_person(Kind::Company, &by_person).unwrap();
    conn.delete(RecordKind::Company, &by_api).await.unwrap();
    (by_person, by_api)
}

/// What was told of each record's delete, by the kind, change and where it went (no ids).
fn deletes_told(sim: &dyn RunningSystem, id: &str) -> Vec<(Kind, String, String)> {
    sim.webhooks_sent()
        .into_iter()
        .filter(|s| s.id == id && s.change == tandem_sim::webhooks::Change::Deleted)
        .map(|s| (s.kind, format!("{:?}", s.change), s.url.trim_end_matches(id).to_string()))
        .collect()
}

/// Deletes each system tells of (ConnectWise, Halo, Syncro: a webhook; Salesforce: its
/// delete log), a delete made through the API is told as a person's is, and the reader
/// reads it as a delete.
async fn an_api_delete_is_told_as_a_persons_delete_is(system: System) {
    let sim = start(system.as_str()).await;
    let conn = connector(system, &sim.credentials());
    let receiver = Receiver::start().await.unwrap();
    let since = Timestamp::from_datetime(time::OffsetDateTime::now_utc() - time::Duration::minutes(5));
    let secret: Vec<u8> = match system {
        System::ConnectWise => {
            register_callback(sim.as_ref(), &sim.credentials(), &receiver.url("/cw?id="), false).await;
            Vec::new()
        }
        System::Halo => {
            conn.register_webhook(&receiver.url("/halo"), "halo-s3cret").await.unwrap();
            b"halo-s3cret".to_vec()
        }
        _ => {
            assert!(sim.subscribe(&receiver.url("/hook?token=s3cret")));
            b"s3cret".to_vec()
        }
    };
    // Salesforce's delete log is read up to the current minute: its org clock is set back
    // so both deletes fall in a minute the log covers.
    let salesforce = sim.as_any().downcast_ref::<tandem_sim::salesforce::SimHandle>();
    salesforce.inspect(|sf| sf.set_clock_offset(-120));
    let (by_person, by_api) = delete_one_as_a_person_and_one_through_the_api(sim.as_ref(), conn.as_ref()).await;
    salesforce.inspect(|sf| sf.set_clock_offset(0));
    assert!(sim.webhooks_settled(WAIT).await);
    if system == System::Salesforce {
        assert!(deletes_told(sim.as_ref(), &by_person).is_empty(), "Outbound Messages tell no deletes");
        assert!(deletes_told(sim.as_ref(), &by_api).is_empty(), "not a person's, not the API's");
        let logged = conn.deleted_since(RecordKind::Company, since).await.unwrap().unwrap();
        assert!(logged.contains(&by_person) && logged.contains(&by_api), "both are in the delete log: {logged:?}");
        return;
    }
    let told = deletes_told(sim.as_ref(), &by_person);
    assert_eq!(told.len(), 1, "{system:?}: a person's delete is told once");
    assert_eq!(deletes_told(sim.as_ref(), &by_api), told, "{system:?}: an API delete is told as a person's is");
    let deletes: Vec<Received> = receiver
        .calls()
        .into_iter()
        .filter(|c| {
            let notices = tandem_connectors::webhook(system).parse(&call(c)).unwrap().notices;
            notices.iter().any(|n| n.action == Action::Deleted)
        })
        .collect();
    let notices = read_all(system, &deletes, async |c: &WebhookCall| match system {
        System::ConnectWise => {
            let key_url = tandem_connectors::webhook(system).parse(c).unwrap().key_url.unwrap();
            let key: Value = reqwest::get(key_url).await.unwrap().json().await.unwrap();
            key["signing_key"].as_str().unwrap().as_bytes().to_vec()
        }
        _ => secret.clone(),
    })
    .await;
    assert_eq!(
        kinds_ids_actions(&notices),
        [company(&by_person, &[Action::Deleted]), company(&by_api, &[Action::Deleted])].concat()
    );
}

#[tokio::test]
async fn a_connectwise_delete_through_the_api_is_told_as_a_persons_delete_is() {
    an_api_delete_is_told_as_a_persons_delete_is(System::ConnectWise).await;
}

#[tokio::test]
async fn a_halo_delete_through_the_api_is_told_as_a_persons_delete_is() {
    an_api_delete_is_told_as_a_persons_delete_is(System::Halo).await;
}

#[tokio::test]
async fn a_syncro_delete_through_the_api_is_told_as_a_persons_delete_is() {
    an_api_delete_is_told_as_a_persons_delete_is(System::Syncro).await;
}

#[tokio::test]
async fn a_salesforce_delete_through_the_api_is_logged_as_a_persons_delete_is() {
    an_api_delete_is_told_as_a_persons_delete_is(System::Salesforce).await;
}

#[tokio::test]
async fn a_self_suppressed_connectwise_callback_skips_the_registering_members_own_changes_only() {
    let sim = start("connectwise").await;
    let handle = sim.as_any().downcast_ref::<tandem_sim::connectwise::SimHandle>().unwrap();
    let other = handle.other_credentials();
    let other = json!({"site": other.site, "company_id": other.company_id, "public_key": other.public_key,
        "private_key": other.private_key, "client_id": other.client_id});
    let ours = connector(System::ConnectWise, &sim.credentials());
    let theirs = connector(System::ConnectWise, &other);
    let receiver = Receiver::start().await.unwrap();
    ours.register_webhook(&receiver.url("/cw"), "unused").await.unwrap();
    let made = ours.create(&ExternalRecord::Company(ExtCompany::named("Made By Tandem"))).await.unwrap();
    let renamed = ExtCompany { id: made.id.clone(), ..ExtCompany::named("Changed By Tandem") };
    ours.update(&ExternalRecord::Company(renamed), &["name"]).await.unwrap();
    ours.delete(RecordKind::Company, &made.id).await.unwrap();
    let by_person =
        sim.create_as_person(Kind::Company, json!({"name": "Made By Hand", "identifier": "ByHand"})).unwrap();
    theirs.delete(RecordKind::Company, &by_person).await.unwrap();
    assert!(sim.webhooks_settled(WAIT).await);
    let told: Vec<(String, tandem_sim::webhooks::Change)> =
        sim.webhooks_sent().into_iter().map(|s| (s.id, s.change)).collect();
    use tandem_sim::webhooks::Change::{Created, Deleted};
    assert_eq!(
        told,
        [(by_person.clone(), Created), (by_person, Deleted)],
        "the registering member's create, update and delete are not told; a person's and another member's are"
    );
    let members: Vec<Value> = receiver
        .calls()
        .iter()
        .map(|c| serde_json::from_slice::<Value>(&c.body).unwrap()["MemberId"].clone())
        .collect();
    assert_eq!(members, [json!("jsmith"), json!("OtherIntegration")]);
}
