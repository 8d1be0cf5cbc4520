//! The users stage's handler: one page per stage message of the SQS batch, through the
//! stage runner all six stage functions share (`tandem_lambda::run_stage_batch`).

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use tandem_domain::Stage;
use tandem_domain::usecases::Services;

/// The stage this function imports.
pub const STAGE: Stage = Stage::Users;

/// Runs one SQS batch of users stage messages; the answer names the messages to redeliver.
pub async fn handle(svc: &Services, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, tandem_lambda::Error> {
    Ok(tandem_lambda::run_stage_batch(svc, STAGE, event.payload).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_lambda::testing::{embedded_services, invocation, sqs_sample_with_body};

    const SAMPLE: &str = "import-users.json";

    tandem_lambda::stage_handler_tests!();

    #[tokio::test]
    async fn a_queued_users_page_is_imported_and_the_job_completes() {
        use std::time::Duration;
        use tandem_domain::external::OptionList;
        use tandem_domain::job::JobStatus;
        use tandem_domain::usecases::import::{self, StageSelection};
        use tandem_domain::usecases::{connections, mappings};
        use tandem_domain::{System, TenantId};
        use tandem_sim::connectwise::{GenConfig, SimConfig, Simulator, Tenant, typical_mapping};

        let sim = Simulator::start(Tenant::generate(&GenConfig::with_companies(1, 20)), SimConfig::default(), 0)
            .await
            .expect("the simulator starts");
        let t = embedded_services();
        let svc = &t.services;
        let tenant = TenantId::parse("acme").unwrap();
        let c = sim.credentials();
        let keys = serde_json::json!({
            "site": c.site, "company_id": c.company_id, "public_key": c.public_key,
            "private_key": c.private_key, "client_id": c.client_id,
        });
        connections::save_credentials(svc, &tenant, System::ConnectWise, &keys).await.unwrap();
        let typical = typical_mapping();
        let roles: serde_json::Map<String, serde_json::Value> =
            connections::options(svc, &tenant, System::ConnectWise, OptionList::Roles)
                .await
                .unwrap()
                .into_iter()
                .map(|choice| {
                    let crm = typical.roles.iter().find(|(name, _)| *name == choice.name).and_then(|(_, v)| v.clone());
                    (choice.id, crm.map_or(serde_json::Value::Null, serde_json::Value::String))
                })
                .collect();
        let section = serde_json::json!({ "roles": roles });
        mappings::save_mapping(svc, &tenant, System::ConnectWise, STAGE, &section).await.unwrap();
        let job = import::start_import(svc, &tenant, System::ConnectWise, StageSelection::One(STAGE)).await.unwrap();

        let queued = t.embedded.queue.receive(Duration::from_secs(1)).await.expect("the first page was queued");
        t.embedded.queue.ack(queued.receipt);
        let (event, _) = sqs_sample_with_body(SAMPLE, &serde_json::to_string(&queued.message).unwrap());
        let answer = handle(svc, invocation(event)).await.unwrap();
        assert!(answer.batch_item_failures.is_empty(), "{answer:?}");

        let done = import::job(svc, &tenant, &job.id).await.unwrap();
        assert_eq!(done.status, JobStatus::Completed, "{done:?}");
        let progress = &done.progress[&STAGE];
        assert!(progress.pages >= 1 && progress.records() > 0, "{progress:?}");
    }
}
