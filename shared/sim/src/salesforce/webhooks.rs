//! Salesforce Outbound Messages (salesforce-api.md 6.2). Salesforce has no registration API
//! for them: an administrator sets up an Outbound Message (workflow rule) with an endpoint
//! URL in Setup, which the running system's `subscribe` control stands for, for Account,
//! Contact, Opportunity and Task on create and update. Every committed create or update of
//! those objects is then POSTed to each URL as a SOAP `notifications` message (the org id
//! in `OrganizationId`, one `Notification` whose `sObject` carries `sf:Id` and the record's
//! other fields) and sent again, with a back-off, until the answer acknowledges it with
//! `<Ack>true</Ack>`. Outbound Messages do not fire on deletes (6, table), so deletes send
//! nothing.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use super::server::{API_VERSION, App};
use super::store::make_id;
use crate::webhooks::{Change, Kind, Outgoing, xml_escape};

/// The namespace of `notifications` (6.2).
const OUTBOUND_NS: &str = "http://soap.sforce.com/2005/09/outbound";
/// The acknowledgement an answer must contain.
const ACK: &str = "<Ack>true</Ack>";

/// The objects messages are set up for, by kind.
pub(crate) const OBJECTS: &[(&str, Kind)] = &[
    ("Account", Kind::Company),
    ("Contact", Kind::Contact),
    ("Opportunity", Kind::Opportunity),
    ("Task", Kind::Activity),
];

/// The object of a kind.
pub(crate) fn object_of(kind: Kind) -> &'static str {
    OBJECTS.iter().find(|(_, k)| *k == kind).map_or("", |(o, _)| o)
}

/// Notification ids handed out.
static NOTIFICATIONS: AtomicU64 = AtomicU64::new(0);

/// A field name fit to be an XML element name.
fn plain_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The SOAP message telling that `record` (as the REST API reads it) of `object` changed.
fn message(app: &App, object: &str, record: &Value) -> String {
    let org = &app.access.org_id;
    let org15 = &org[..15.min(org.len())];
    let n = NOTIFICATIONS.fetch_add(1, Ordering::Relaxed) + 1;
    let version = API_VERSION.trim_start_matches('v');
    let mut fields = String::new();
    if let Some(map) = record.as_object() {
        let id = map.get("Id").and_then(Value::as_str).unwrap_or_default();
        fields.push_str(&format!("<sf:Id>{}</sf:Id>", xml_escape(id)));
        for (name, value) in map {
            if name == "Id" || !plain_name(name) {
                continue;
            }
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => continue,
            };
            fields.push_str(&format!("<sf:{name}>{}</sf:{name}>", xml_escape(&text)));
        }
    }
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" "#,
            r#"xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#,
            r#"<soapenv:Body><notifications xmlns="{ns}">"#,
            r#"<OrganizationId>{org}</OrganizationId><ActionId>{action}</ActionId><SessionId xsi:nil="true"/>"#,
            r#"<EnterpriseUrl>{base}/services/Soap/c/{version}/{org15}</EnterpriseUrl>"#,
            r#"<PartnerUrl>{base}/services/Soap/u/{version}/{org15}</PartnerUrl>"#,
            r#"<Notification><Id>{notification}</Id>"#,
            r#"<sObject xsi:type="sf:{object}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">{fields}</sObject>"#,
            r#"</Notification></notifications></soapenv:Body></soapenv:Envelope>"#
        ),
        ns = OUTBOUND_NS,
        org = xml_escape(org),
        action = make_id("04k", 1),
        base = xml_escape(&app.base_url),
        version = version,
        org15 = xml_escape(org15),
        notification = make_id("04l", n),
        object = object,
        fields = fields,
    )
}

/// Tells every subscribed endpoint that record `id` of `object` was created or updated
/// (read back as it is now: messages carry the latest values, 6.2).
pub(crate) fn changed(app: &App, object: &str, id: &str, change: Change) {
    let Some((object, kind)) = OBJECTS.iter().find(|(o, _)| o.eq_ignore_ascii_case(object)) else { return };
    if change == Change::Deleted {
        return;
    }
    let Ok(record) = app.read().get(object, id, API_VERSION) else { return };
    let body = message(app, object, &record).into_bytes();
    for url in app.subscriptions.urls() {
        app.controls.outbox().deliver(Outgoing {
            url,
            headers: vec![("soapaction".to_string(), "\"\"".to_string())],
            content_type: "text/xml; charset=utf-8",
            body: body.clone(),
            kind: *kind,
            id: id.to_string(),
            change,
            until_answer_contains: Some(ACK),
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;
    use crate::salesforce::{GenConfig, SimConfig, Simulator, Tenant};
    use crate::system::RunningSystem;
    use crate::webhooks::Receiver;

    #[tokio::test]
    async fn an_account_changed_by_a_person_is_sent_as_an_outbound_message_until_acknowledged() {
        let sim = Simulator::start(Tenant::generate(&GenConfig::with_companies(5, 4)), SimConfig::default(), 0)
            .await
            .unwrap();
        let receiver = Receiver::start().await.unwrap();
        assert!(sim.subscribe(&receiver.url("/sf?token=t0ken")));
        let id = sim.create_as_person(Kind::Company, serde_json::json!({"Name": "Acme & Sons"})).unwrap();
        let first = receiver.wait_for(2, Duration::from_secs(5)).await;
        assert!(first.len() >= 2, "an unacknowledged message is sent again");
        receiver.answer_with(
            200,
            "text/xml",
            format!("<notificationsResponse xmlns=\"{OUTBOUND_NS}\">{ACK}</notificationsResponse>"),
        );
        assert!(sim.webhooks_settled(Duration::from_secs(10)).await);
        let calls = receiver.calls();
        let text = String::from_utf8(calls[0].body.clone()).unwrap();
        assert!(text.contains(&format!("<OrganizationId>{}</OrganizationId>", sim.org_id())), "{text}");
        assert!(text.contains(&format!("<sf:Id>{id}</sf:Id>")) && text.contains("xsi:type=\"sf:Account\""), "{text}");
        assert!(text.contains("<sf:Name>Acme &amp; Sons</sf:Name>"), "{text}");
        let sent = sim.webhooks_sent();
        assert_eq!(sent.last().map(|s| (s.status, s.attempt > 1)), Some((Some(200), true)));
        assert_eq!(sent.len(), calls.len());
        let before = calls.len();
        // Set back, so the delete falls in a minute the delete log already covers.
        sim.set_clock_offset(-120);
        sim.delete_as_person(Kind::Company, &id).unwrap();
        sim.set_clock_offset(0);
        assert!(sim.webhooks_settled(Duration::from_secs(10)).await);
        assert_eq!(receiver.calls().len(), before, "deletes send nothing");
        assert_eq!(sim.webhooks_sent().len(), before, "not even an unanswered try");
        let by_id = crate::salesforce::soql::parse(&format!("SELECT Id FROM Account WHERE Id = '{id}'")).unwrap();
        assert!(sim.app.read().query(&by_id, false, API_VERSION).unwrap().is_empty(), "gone from query");
        let now = sim.app.now();
        let window = [
            ("start".to_string(), crate::salesforce::store::sf_datetime(now - 600)),
            ("end".to_string(), crate::salesforce::store::sf_datetime(now)),
        ];
        let log = crate::salesforce::replication::deleted(&sim.app.read(), "Account", &window, now).unwrap();
        assert_eq!(log["deletedRecords"][0]["id"], serde_json::json!(id), "{log}");
        assert!(
            matches!(sim.delete_as_person(Kind::Company, &id), Err(crate::webhooks::PersonError::NotFound(_))),
            "a second delete finds it deleted"
        );
    }
}
