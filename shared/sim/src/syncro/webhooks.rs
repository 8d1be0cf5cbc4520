//! Syncro notifications (psa-apis.md 3.6). Syncro has no webhook-registration API: an
//! administrator points a notification set at a URL in the UI, which the running system's
//! `subscribe` control stands for (the URL kept as given, its token and all). Every
//! committed change of a customer, contact or lead is then POSTed to each subscribed URL.
//!
//! The payload is UNCONFIRMED (3.6: "commonly an `attributes` object with the record and a
//! `link`"); it is sent as the Tandem Syncro reader documents it, so the two agree:
//! `{"event": "Customer Updated", "link": "https://{subdomain}.syncromsp.com/customers/1",
//! "attributes": {the record as the API answers it}}`. Event names ("Customer Created",
//! "Contact Deleted", ...) are UNCONFIRMED too. Nothing is signed (none documented).

use serde_json::{Value, json};

use super::server::App;
use super::store::Kind as Resource;
use crate::webhooks::{Change, Kind, Outgoing};

/// The resource a kind is in Syncro; `None` for activities (ticket comments, not simulated).
pub(crate) fn resource_of(kind: Kind) -> Option<Resource> {
    match kind {
        Kind::Company => Some(Resource::Customers),
        Kind::Contact => Some(Resource::Contacts),
        Kind::Opportunity => Some(Resource::Leads),
        Kind::Activity => None,
    }
}

/// The record out of its single-record envelope (`{"customer": {...}}`; contacts bare).
pub(crate) fn unwrapped(resource: Resource, answer: &Value) -> Value {
    match resource.singular() {
        Some(key) => answer.get(key).cloned().unwrap_or_else(|| answer.clone()),
        None => answer.clone(),
    }
}

/// Tells every subscribed URL that `record` (unwrapped; on a delete, as it was) changed.
pub(crate) fn changed(app: &App, resource: Resource, record: &Value, change: Change) {
    let (kind, noun) = match resource {
        Resource::Customers => (Kind::Company, "Customer"),
        Resource::Contacts => (Kind::Contact, "Contact"),
        Resource::Leads => (Kind::Opportunity, "Lead"),
        Resource::Users => return,
    };
    let id = record.get("id").and_then(Value::as_i64).unwrap_or_default();
    let verb = match change {
        Change::Created => "Created",
        Change::Updated => "Updated",
        Change::Deleted => "Deleted",
    };
    let payload = json!({
        "event": format!("{noun} {verb}"),
        "link": format!("https://{}.syncromsp.com/{}/{id}", app.access.subdomain, resource.plural()),
        "attributes": record,
    });
    let Ok(body) = serde_json::to_vec(&payload) else { return };
    let urls = app.subscriptions.urls();
    for url in urls {
        app.controls.outbox().deliver(Outgoing {
            url,
            headers: Vec::new(),
            content_type: "application/json",
            body: body.clone(),
            kind,
            id: id.to_string(),
            change,
            until_answer_contains: None,
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;
    use crate::syncro::{GenConfig, SimConfig, Simulator, Tenant};
    use crate::system::RunningSystem;
    use crate::webhooks::{PersonError, Receiver};

    const WAIT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn changes_through_the_api_and_by_a_person_reach_the_subscribed_url_with_its_token() {
        let tenant = Tenant::generate(&GenConfig::with_companies(5, 4));
        let customer = tenant.records("customers")[0]["id"].as_i64().unwrap();
        let sim = Simulator::start(tenant, SimConfig::default(), 0).await.unwrap();
        let receiver = Receiver::start().await.unwrap();
        let url = receiver.url("/syncro?token=s3cret");
        assert!(sim.subscribe(&url));
        let c = sim.credentials();
        let resp = reqwest::Client::new()
            .put(format!("{}/api/v1/customers/{customer}", c.site))
            .bearer_auth(&c.api_key)
            .json(&json!({"business_name": "Renamed Ltd"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let contact =
            sim.create_as_person(Kind::Contact, json!({"customer_id": customer, "name": "Ada Quill"})).unwrap();
        sim.delete_as_person(Kind::Contact, &contact).unwrap();
        assert!(sim.webhooks_settled(WAIT).await);
        let calls = receiver.calls();
        let bodies: Vec<Value> = calls.iter().map(|c| serde_json::from_slice(&c.body).unwrap()).collect();
        assert!(calls.iter().all(|c| c.query.get("token").map(String::as_str) == Some("s3cret")));
        let events: Vec<&str> = bodies.iter().map(|b| b["event"].as_str().unwrap()).collect();
        assert_eq!(events, ["Customer Updated", "Contact Created", "Contact Deleted"]);
        assert!(bodies[0]["link"].as_str().unwrap().ends_with(&format!(".syncromsp.com/customers/{customer}")));
        assert_eq!(bodies[0]["attributes"]["business_name"], json!("Renamed Ltd"));
        assert_eq!(bodies[2]["attributes"]["id"].to_string(), contact);
        assert!(matches!(sim.create_as_person(Kind::Activity, json!({})), Err(PersonError::Unsupported(_))));
        assert!(sim.unsubscribe(&url));
        sim.edit_as_person(Kind::Company, &customer.to_string(), json!({"business_name": "Quiet"})).unwrap();
        assert!(sim.webhooks_settled(WAIT).await);
        assert_eq!(receiver.calls().len(), 3);
    }
}
