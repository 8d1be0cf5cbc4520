//! HaloPSA webhook registration (psa-apis.md 2.6): one outbound webhook (`POST /Webhook`,
//! an array of the H1 `Webhook` schema) to Tandem's URL with bearer authentication
//! (`authentication_type` 2) carrying the connection's secret, for the events of the
//! records Tandem syncs. Registering keeps a webhook already pointing there; unregistering
//! deletes every webhook to that URL. The event names are UNCONFIRMED (2.6 documents the
//! `events[]` field, not its values): the resource names are sent.

use serde::Deserialize;
use serde_json::json;
use tandem_domain::ports::ConnectorError;

use super::HaloConnector;

/// The webhooks resource.
const WEBHOOKS: &str = "/Webhook";
/// The events of the records Tandem syncs (UNCONFIRMED names, see the module docs).
const EVENTS: &[&str] = &["Client", "User", "Opportunity", "CRM Note"];

/// One webhook, as listed.
#[derive(Debug, Deserialize)]
struct Webhook {
    #[serde(default)]
    id: serde_json::Value,
    #[serde(default)]
    url: String,
}

fn id_text(id: &serde_json::Value) -> String {
    id.as_str().map_or_else(|| id.to_string(), str::to_string)
}

async fn registered(c: &HaloConnector, url: &str) -> Result<Vec<Webhook>, ConnectorError> {
    let answer = c.client.get(WEBHOOKS, &[], &c.settings.retry).await?;
    let all: Vec<Webhook> = serde_json::from_slice(&answer).unwrap_or_default();
    Ok(all.into_iter().filter(|w| w.url == url).collect())
}

/// Registers the webhook unless one already calls `url`; answers its id.
pub async fn register(c: &HaloConnector, url: &str, secret: &str) -> Result<Option<String>, ConnectorError> {
    if let Some(existing) = registered(c, url).await?.first() {
        return Ok(Some(format!("webhook {}", id_text(&existing.id))));
    }
    let events: Vec<serde_json::Value> = EVENTS.iter().map(|e| json!({ "name": e })).collect();
    let body = json!([{
        "name": "Tandem auto-sync", "type": 0, "url": url, "method": 0, "content_type": "application/json",
        "authentication_type": 2, "authentication_header": secret, "active": true, "events": events,
    }]);
    let answer = c.client.post(WEBHOOKS, &body, false, &c.settings.retry).await?;
    let saved: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
    let made = saved.as_array().and_then(|a| a.first()).unwrap_or(&saved);
    Ok(Some(format!("webhook {}", id_text(&made["id"]))))
}

/// Deletes every webhook calling `url`.
pub async fn unregister(c: &HaloConnector, url: &str) -> Result<(), ConnectorError> {
    for hook in registered(c, url).await? {
        c.client.delete(&format!("{WEBHOOKS}/{}", id_text(&hook.id)), &c.settings.retry).await?;
    }
    Ok(())
}
