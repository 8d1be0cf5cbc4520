//! Every simulator's webhook delivery, as received over HTTP, passes the Tandem reader of
//! its system: `verify` with the connection's secret (ConnectWise: the signing key fetched
//! from the call's `key_url`) and `parse` naming the changed record, its kind and action.
//! This is where the simulators and the readers are shown to agree.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{Value, json};
use tandem_domain::webhook::{Action, Notice, WebhookCall};
use tandem_domain::{RecordKind, System};
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
