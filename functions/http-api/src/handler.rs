//! The HTTP API handler: decodes the API Gateway request, answers it with `tandem_api`
//! (connections, options, mappings, imports, jobs, records, logs; each route calls one use
//! case) and encodes the answer. Saving credentials is the `validate-credentials`
//! function's route, so it is a 404 here.

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
        Ok(req) if http::is_credentials_route(&req) => http::no_route(&req),
        Ok(req) => tandem_api::handle(svc, req).await,
    };
    Ok(http::gateway_response(answer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::encodings::Body;
    use serde_json::{Value, json};
    use tandem_domain::external::Cursor;
    use tandem_domain::job::{Job, JobStatus};
    use tandem_domain::{JobId, Stage, System, TenantId, Timestamp};
    use tandem_lambda::testing::{
        SAMPLE_TENANT_CLAIM, TestServices, decode, embedded_services, event_json, invocation,
    };

    const SAMPLE: &str = "http-api.json";

    async fn call(t: &TestServices, event: Value) -> (i64, Value) {
        let answer = handle(&t.services, SAMPLE_TENANT_CLAIM, invocation(decode(event))).await.unwrap();
        assert_eq!(answer.headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
        let body = match &answer.body {
            Some(Body::Text(text)) => serde_json::from_str(text).unwrap(),
            other => panic!("expected a JSON text body, got {other:?}"),
        };
        (answer.status_code, body)
    }

    fn job(tenant: &str) -> Job {
        let now = Timestamp::from_unix(1_735_689_600).unwrap();
        Job {
            tenant: TenantId::parse(tenant).unwrap(),
            id: JobId::from_raw("5f0c3c1e2b7a4d8e9a61c4f2d3b8e7a1"),
            system: System::ConnectWise,
            stages: vec![Stage::Users],
            current: 0,
            cursor: Cursor::start(),
            status: JobStatus::Running,
            progress: Default::default(),
            created_at: now,
            updated_at: now,
            attempt: 0,
            version: 0,
            dry_run: false,
        }
    }

    #[tokio::test]
    async fn the_sample_request_lists_the_tenants_jobs() {
        let t = embedded_services();
        let (status, body) = call(&t, event_json(SAMPLE)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["jobs"], json!([]), "{body}");

        t.services.store.save_job(&job("acme")).await.unwrap();
        t.services.store.save_job(&job("someone-else")).await.unwrap();
        let (status, body) = call(&t, event_json(SAMPLE)).await;
        assert_eq!(status, 200, "{body}");
        let jobs = body["jobs"].as_array().unwrap();
        assert_eq!(jobs.len(), 1, "only the caller's tenant's jobs: {body}");
        assert_eq!(jobs[0]["id"], "5f0c3c1e2b7a4d8e9a61c4f2d3b8e7a1");
    }

    #[tokio::test]
    async fn a_request_without_the_tenant_claim_is_refused_with_401() {
        let t = embedded_services();
        let mut event = event_json(SAMPLE);
        event["requestContext"]["authorizer"]["jwt"]["claims"].as_object_mut().unwrap().remove(SAMPLE_TENANT_CLAIM);
        let (status, body) = call(&t, event).await;
        assert_eq!(status, 401, "{body}");
    }

    #[tokio::test]
    async fn a_tenant_claim_that_is_present_but_not_a_tenant_id_is_refused_with_401_and_reads_nothing() {
        let t = embedded_services();
        t.services.store.save_job(&job("local")).await.unwrap();
        for bad in ["Bé", "local ", "../local", "a/b", &"a".repeat(65), " "] {
            let mut event = event_json(SAMPLE);
            event["requestContext"]["authorizer"]["jwt"]["claims"][SAMPLE_TENANT_CLAIM] = json!(bad);
            let (status, body) = call(&t, event).await;
            assert_eq!(status, 401, "claim {bad:?}: {body}");
            assert!(body["jobs"].is_null(), "claim {bad:?} read nothing: {body}");
        }
    }

    #[tokio::test]
    async fn a_known_path_with_a_wrong_method_is_405_with_an_allow_header() {
        let t = embedded_services();
        let mut event = event_json(SAMPLE);
        event["requestContext"]["http"]["method"] = json!("DELETE");
        let answer = handle(&t.services, SAMPLE_TENANT_CLAIM, invocation(decode(event))).await.unwrap();
        assert_eq!(answer.status_code, 405);
        assert_eq!(answer.headers.get("allow").and_then(|v| v.to_str().ok()), Some("GET"));
    }

    #[tokio::test]
    async fn saving_credentials_is_left_to_the_validate_credentials_function() {
        let t = embedded_services();
        let (status, body) = call(&t, event_json("validate-credentials.json")).await;
        assert_eq!(status, 404, "{body}");
        assert!(t.embedded.secrets.names().is_empty());
    }

    #[tokio::test]
    async fn the_openapi_document_is_served_without_a_tenant_and_lists_every_route() {
        let t = embedded_services();
        let mut event = event_json(SAMPLE);
        event["rawPath"] = json!("/openapi.json");
        event["requestContext"]["authorizer"]["jwt"]["claims"].as_object_mut().unwrap().remove(SAMPLE_TENANT_CLAIM);
        let (status, body) = call(&t, event).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["openapi"].as_str().unwrap().starts_with("3.1."), "{}", body["openapi"]);
        for (method, path) in tandem_api::ROUTES {
            assert!(body["paths"][path][method.to_ascii_lowercase()].is_object(), "{method} {path}");
        }
    }

    #[tokio::test]
    async fn an_unknown_route_is_not_found() {
        let t = embedded_services();
        let mut event = event_json(SAMPLE);
        event["rawPath"] = json!("/nowhere");
        let (status, body) = call(&t, event).await;
        assert_eq!(status, 404, "{body}");
    }
}
