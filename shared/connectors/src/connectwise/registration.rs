//! ConnectWise callback registration (psa-apis.md 1.8): one `owner`-level callback
//! (`objectId` 1: every record of the type) per synced type, to Tandem's webhook URL with
//! `?id=` for ConnectWise to append the record id. Registering lists the callbacks first
//! and adds only those missing; unregistering deletes every callback to that URL.
//! `isSelfSuppressedFlag` is set (psa-apis.md 1.8: it suppresses events caused by the API
//! member that registered the callback): changes Tandem's own API member makes (exports,
//! sync out's writes and deletes) are not sent back. This only saves calls: Tandem never
//! relies on it alone. Its ledger recognises an echo by value (a change whose values are
//! those last synced writes nothing), so a callback that does come back for our own write,
//! say one registered by hand without the flag or with other keys, changes nothing.

use serde::Deserialize;
use serde_json::json;
use tandem_domain::ports::ConnectorError;

use super::ConnectWiseConnector;

/// The callbacks resource.
const CALLBACKS: &str = "/system/callbacks";
/// The callback types of the records Tandem syncs.
const TYPES: &[&str] = &["company", "contact", "opportunity", "activity"];

/// One registered callback, as listed.
#[derive(Debug, Deserialize)]
struct Callback {
    id: i64,
    #[serde(default)]
    url: String,
    #[serde(default, rename = "type")]
    kind: String,
}

/// The URL ConnectWise is given: Tandem's, ready for the record id to be appended.
fn callback_url(url: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}id=")
}

async fn registered(c: &ConnectWiseConnector, url: &str) -> Result<Vec<Callback>, ConnectorError> {
    let query = [("pageSize", "1000".to_string())];
    let answer = c.client().get(CALLBACKS, &query, &c.settings.retry).await?;
    let all: Vec<Callback> = serde_json::from_slice(&answer.body).unwrap_or_default();
    Ok(all.into_iter().filter(|cb| cb.url == url).collect())
}

/// Registers the missing callbacks; answers their ids, e.g. `callbacks 12, 13, 14, 15`.
pub async fn register(c: &ConnectWiseConnector, url: &str) -> Result<Option<String>, ConnectorError> {
    let url = callback_url(url);
    let mut have = registered(c, &url).await?;
    for kind in TYPES {
        if have.iter().any(|cb| cb.kind.eq_ignore_ascii_case(kind)) {
            continue;
        }
        let body = json!({
            "url": url, "objectId": 1, "type": kind, "level": "owner",
            "description": "Tandem auto-sync", "inactiveFlag": false, "isSelfSuppressedFlag": true,
        });
        let answer = c.client().post(CALLBACKS, &body, &c.settings.retry).await?;
        if let Ok(made) = serde_json::from_slice::<Callback>(&answer.body) {
            have.push(made);
        }
    }
    let ids: Vec<String> = have.iter().map(|cb| cb.id.to_string()).collect();
    Ok(Some(format!("callbacks {}", ids.join(", "))))
}

/// Deletes every callback to `url`.
pub async fn unregister(c: &ConnectWiseConnector, url: &str) -> Result<(), ConnectorError> {
    for cb in registered(c, &callback_url(url)).await? {
        c.client().delete(&format!("{CALLBACKS}/{}", cb.id), &c.settings.retry).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_id_is_appended_as_a_query_parameter() {
        assert_eq!(
            callback_url("https://t.example/webhooks/connectwise/k"),
            "https://t.example/webhooks/connectwise/k?id="
        );
        assert_eq!(callback_url("https://t.example/h?a=1"), "https://t.example/h?a=1&id=");
    }
}
