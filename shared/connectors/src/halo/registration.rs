//! HaloPSA webhook registration (psa-apis.md 2.6): one outbound webhook (`POST /Webhook`,
//! an array of the H1 `Webhook` schema) per synced kind, to Tandem's URL with `?kind=`
//! naming the kind (Halo's payload does not say it, see the reader's `Shape`), with bearer
//! authentication (`authentication_type` 2) carrying the connection's secret. Registering
//! keeps the webhooks already there; unregistering deletes every webhook to Tandem's URL.
//! The event names are UNCONFIRMED (2.6 documents the `events[]` field, not its values):
//! the resource names are sent.

use serde::Deserialize;
use serde_json::json;
use tandem_domain::ports::ConnectorError;

use super::HaloConnector;

/// The webhooks resource.
const WEBHOOKS: &str = "/Webhook";
/// Per synced kind: the reader's `kind` value and the event name (UNCONFIRMED, see the
/// module docs).
const KINDS: &[(&str, &str)] =
    &[("client", "Client"), ("user", "User"), ("opportunity", "Opportunity"), ("note", "CRM Note")];

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

/// The URL of the webhook of one kind.
fn kind_url(url: &str, kind: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}={kind}", super::webhook::Shape::KIND_PARAM)
}

/// The webhooks already calling Tandem's `url` (any kind).
async fn registered(c: &HaloConnector, url: &str) -> Result<Vec<Webhook>, ConnectorError> {
    let answer = c.client.get(WEBHOOKS, &[], &c.settings.retry).await?;
    let all: Vec<Webhook> = serde_json::from_slice(&answer).unwrap_or_default();
    Ok(all.into_iter().filter(|w| w.url == url || w.url.starts_with(&format!("{url}?"))).collect())
}

/// Registers the webhooks of the kinds not registered yet; answers their ids.
pub async fn register(c: &HaloConnector, url: &str, secret: &str) -> Result<Option<String>, ConnectorError> {
    let mut have = registered(c, url).await?;
    for (kind, event) in KINDS {
        let target = kind_url(url, kind);
        if have.iter().any(|w| w.url == target) {
            continue;
        }
        let body = json!([{
            "name": format!("Tandem auto-sync ({kind})"), "type": 0, "url": target, "method": 0,
            "content_type": "application/json", "authentication_type": 2, "authentication_header": secret,
            "active": true, "events": [{ "name": event }],
        }]);
        let answer = c.client.post(WEBHOOKS, &body, false, &c.settings.retry).await?;
        let saved: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
        let made = saved.as_array().and_then(|a| a.first()).unwrap_or(&saved);
        have.push(Webhook { id: made["id"].clone(), url: target });
    }
    let ids: Vec<String> = have.iter().map(|w| id_text(&w.id)).collect();
    Ok(Some(format!("webhooks {}", ids.join(", "))))
}

/// Deletes every webhook calling Tandem's `url`.
pub async fn unregister(c: &HaloConnector, url: &str) -> Result<(), ConnectorError> {
    for hook in registered(c, url).await? {
        c.client.delete(&format!("{WEBHOOKS}/{}", id_text(&hook.id)), &c.settings.retry).await?;
    }
    Ok(())
}
