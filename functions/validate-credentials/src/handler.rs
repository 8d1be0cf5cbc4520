//! The validate-credentials handler: decodes the API Gateway request, runs the
//! save-credentials use case (through `tandem_api`, whose `POST /connections/{system}`
//! route calls exactly that use case) and encodes the answer. Every other route is a 404:
//! the `http-api` function serves those.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use lambda_runtime::LambdaEvent;
use tandem_domain::usecases::Services;
use tandem_lambda::http;

/// Answers one request; the tenant comes from the JWT claim `tenant_claim`.
pub async fn handle(
    svc: &Services,
    tenant_claim: &str,
    event: LambdaEvent<ApiGatewayV2httpRequest>,
) -> Result<ApiGatewayV2httpResponse, tandem_lambda::Error> {
    let answer = match http::api_request(&event.payload, tenant_claim) {
        Err(bad_request) => bad_request,
        Ok(req) if !http::is_credentials_route(&req) => http::no_route(&req),
        Ok(req) => tandem_api::handle(svc, req).await,
    };
    Ok(http::gateway_response(answer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::encodings::Body;
    use serde_json::{Value, json};
    use tandem_domain::mapping::ConnectionStatus;
    use tandem_domain::{System, TenantId};
    use tandem_lambda::testing::{
        SAMPLE_TENANT_CLAIM, TestServices, decode, embedded_services, event_json, invocation,
    };
    use tandem_sim::connectwise::{GenConfig, SimConfig, SimHandle, Simulator, Tenant};

    const SAMPLE: &str = "validate-credentials.json";

    async fn simulator() -> SimHandle {
        Simulator::start(Tenant::generate(&GenConfig::with_companies(1, 20)), SimConfig::default(), 0)
            .await
            .expect("the simulator starts")
    }

    /// The sample request with the simulator's site and keys (and `private_key` if given).
    fn sample_for(sim: &SimHandle, private_key: Option<&str>) -> Value {
        let c = sim.credentials();
        let mut event = event_json(SAMPLE);
        let mut body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
        for field in ["site", "company_id", "public_key", "private_key", "client_id"] {
            assert!(body.get(field).is_some(), "the sample body has {field}");
        }
        body["site"] = json!(c.site);
        body["company_id"] = json!(c.company_id);
        body["public_key"] = json!(c.public_key);
        body["private_key"] = json!(private_key.unwrap_or(&c.private_key));
        body["client_id"] = json!(c.client_id);
        event["body"] = json!(body.to_string());
        event
    }

    async fn call(t: &TestServices, event: Value) -> (i64, Value) {
        let answer = handle(&t.services, SAMPLE_TENANT_CLAIM, invocation(decode(event))).await.unwrap();
        assert_eq!(answer.headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
        let body = match &answer.body {
            Some(Body::Text(text)) => serde_json::from_str(text).unwrap(),
            other => panic!("expected a JSON text body, got {other:?}"),
        };
        (answer.status_code, body)
    }

    async fn saved(t: &TestServices) -> bool {
        let tenant = TenantId::parse("acme").unwrap();
        let connection = t.services.store.connection(&tenant, System::ConnectWise).await.unwrap();
        connection.is_some() || !t.embedded.secrets.names().is_empty()
    }

    #[tokio::test]
    async fn good_keys_are_validated_and_saved_as_a_connection() {
        let sim = simulator().await;
        let t = embedded_services();
        let (status, body) = call(&t, sample_for(&sim, None)).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["status"], "connected", "{body}");
        let tenant = TenantId::parse("acme").unwrap();
        let connection = t.services.store.connection(&tenant, System::ConnectWise).await.unwrap().unwrap();
        assert_eq!(connection.status, ConnectionStatus::Connected);
        assert_eq!(t.embedded.secrets.names().len(), 1, "the keys went to the secret store");
        assert!(!body.to_string().contains(&sim.credentials().private_key), "the answer never shows the secret");
    }

    #[tokio::test]
    async fn a_request_without_the_tenant_claim_is_refused_with_401() {
        let sim = simulator().await;
        let t = embedded_services();
        let mut event = sample_for(&sim, None);
        let claims = event["requestContext"]["authorizer"]["jwt"]["claims"].as_object_mut().unwrap();
        claims.remove(SAMPLE_TENANT_CLAIM).unwrap();
        let (status, body) = call(&t, event).await;
        assert_eq!(status, 401, "{body}");
        assert!(!saved(&t).await);
    }

    #[tokio::test]
    async fn bad_keys_are_refused_with_422_and_nothing_is_saved() {
        let sim = simulator().await;
        let t = embedded_services();
        let (status, body) = call(&t, sample_for(&sim, Some("not-the-private-key"))).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["kind"], "credentials", "{body}");
        assert!(!saved(&t).await);
    }

    #[tokio::test]
    async fn any_other_route_is_not_found() {
        let t = embedded_services();
        let (status, body) = call(&t, event_json("http-api.json")).await;
        assert_eq!(status, 404, "{body}");
    }
}
