//! The webhook intake's handler: decodes the API Gateway request into a webhook call
//! (lower-cased headers, query, the exact body bytes), answers it with
//! `tandem_api::handle_webhook` (route by key, prove per system, queue one sync message
//! per record named) and encodes the answer. No tenant authorizer: the call proves itself.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use lambda_runtime::LambdaEvent;
use tandem_domain::usecases::Services;
use tandem_lambda::http;

/// Answers one webhook call.
pub async fn handle(
    svc: &Services,
    event: LambdaEvent<ApiGatewayV2httpRequest>,
) -> Result<ApiGatewayV2httpResponse, tandem_lambda::Error> {
    let answer = match http::webhook_request(&event.payload) {
        Err(bad_request) => bad_request,
        Ok(req) => tandem_api::handle_webhook(svc, &req.method, &req.path, req.call).await,
    };
    Ok(http::gateway_response(answer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::encodings::Body;
    use serde_json::{Value, json};
    use tandem_domain::{System, TenantId};
    use tandem_lambda::testing::{TestServices, decode, embedded_services, event_json, invocation};

    const SAMPLE: &str = "webhook-intake.json";

    async fn call(t: &TestServices, event: Value) -> (i64, Value) {
        let answer = handle(&t.services, invocation(decode(event))).await.unwrap();
        let body = match &answer.body {
            Some(Body::Text(text)) => serde_json::from_str(text).unwrap(),
            other => panic!("expected a JSON text body, got {other:?}"),
        };
        (answer.status_code, body)
    }

    fn sample_key() -> String {
        let event = event_json(SAMPLE);
        event["rawPath"].as_str().unwrap().rsplit('/').next().unwrap().to_string()
    }

    #[test]
    fn the_sample_event_is_a_signed_connectwise_callback_to_a_webhook_address() {
        let event = event_json(SAMPLE);
        let path = event["rawPath"].as_str().unwrap();
        assert!(tandem_api::is_webhook_path(path), "{path}");
        assert!(path.starts_with("/webhooks/connectwise/"), "{path}");
        assert!(event["requestContext"]["authorizer"].is_null(), "a webhook call has no authorizer");
        assert!(event["headers"]["x-content-signature"].is_string());
        let body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
        assert_eq!((body["Type"].as_str(), body["Action"].as_str()), (Some("contact"), Some("updated")));
        assert!(body["Metadata"]["key_url"].is_string());
    }

    #[tokio::test]
    async fn the_sample_call_to_an_address_no_connection_has_is_refused_with_401_and_queues_nothing() {
        let t = embedded_services();
        let (status, body) = call(&t, event_json(SAMPLE)).await;
        assert_eq!(status, 401, "{body}");
        assert!(body.to_string().contains("no connection has this webhook address"), "{body}");
        assert!(t.embedded.queue.is_idle(), "nothing was queued");
    }

    #[tokio::test]
    async fn a_call_to_another_systems_address_is_refused_with_401_and_queues_nothing() {
        let t = embedded_services();
        let acme = TenantId::parse("acme").unwrap();
        t.services.store.save_webhook_owner(&sample_key(), &acme, System::Halo).await.unwrap();
        let (status, body) = call(&t, event_json(SAMPLE)).await;
        assert_eq!(status, 401, "{body}");
        assert!(t.embedded.queue.is_idle(), "nothing was queued");
    }

    #[tokio::test]
    async fn a_webhook_address_takes_post_only() {
        let t = embedded_services();
        let mut event = event_json(SAMPLE);
        event["requestContext"]["http"]["method"] = json!("GET");
        let answer = handle(&t.services, invocation(decode(event))).await.unwrap();
        assert_eq!(answer.status_code, 405);
        assert_eq!(answer.headers.get("allow").and_then(|v| v.to_str().ok()), Some("POST"));
        assert!(t.embedded.queue.is_idle());
    }

    #[tokio::test]
    async fn a_body_marked_base64_that_is_not_is_a_400() {
        let t = embedded_services();
        let mut event = event_json(SAMPLE);
        event["isBase64Encoded"] = json!(true);
        event["body"] = json!("not base64!");
        let (status, body) = call(&t, event).await;
        assert_eq!(status, 400, "{body}");
    }

    #[tokio::test]
    async fn a_path_that_is_not_a_webhook_address_is_not_found() {
        let t = embedded_services();
        let mut event = event_json(SAMPLE);
        event["rawPath"] = json!("/webhooks/connectwise");
        let (status, body) = call(&t, event).await;
        assert_eq!(status, 404, "{body}");
    }
}
