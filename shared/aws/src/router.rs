//! [`StageQueueRouter`]: the stage queue ([`StageQueue`]) that sends each [`StageMessage`]
//! to the queue of its stage. In AWS every import stage has its own SQS FIFO queue, each
//! feeding its own Lambda function, so the router holds one [`SqsStageQueue`] per stage
//! ([`StageQueueRouter::sqs`]); any other [`StageQueue`] can be routed to as well
//! ([`StageQueueRouter::new`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use tandem_domain::Stage;
use tandem_domain::job::StageMessage;
use tandem_domain::ports::{QueueError, StageQueue};

use crate::sqs::SqsStageQueue;

/// Sends each message to the queue of its `stage` (see the module docs).
#[derive(Clone)]
pub struct StageQueueRouter {
    routes: BTreeMap<Stage, Arc<dyn StageQueue>>,
}

impl std::fmt::Debug for StageQueueRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageQueueRouter").field("stages", &self.routes.keys().collect::<Vec<_>>()).finish()
    }
}

impl StageQueueRouter {
    /// A router over these queues, one per stage (a later entry for a stage replaces an
    /// earlier one).
    pub fn new(routes: impl IntoIterator<Item = (Stage, Arc<dyn StageQueue>)>) -> Self {
        Self { routes: routes.into_iter().collect() }
    }

    /// A router over one SQS FIFO queue per stage, given by URL, all reached through
    /// `client` (built once by the caller).
    pub fn sqs<'a>(client: &Client, urls: impl IntoIterator<Item = (Stage, &'a str)>) -> Self {
        Self::new(urls.into_iter().map(|(stage, url)| {
            let queue: Arc<dyn StageQueue> = Arc::new(SqsStageQueue::new(client.clone(), url));
            (stage, queue)
        }))
    }

    /// The stages that have a queue.
    pub fn stages(&self) -> impl Iterator<Item = Stage> + '_ {
        self.routes.keys().copied()
    }
}

#[async_trait]
impl StageQueue for StageQueueRouter {
    /// Sends `msg` to its stage's queue; a stage without a queue is an error naming it (a
    /// deployment problem, so the caller may retry once the queue is configured).
    async fn send(&self, msg: &StageMessage) -> Result<(), QueueError> {
        match self.routes.get(&msg.stage) {
            Some(queue) => queue.send(msg).await,
            None => Err(QueueError(format!("no queue is configured for the {} stage", msg.stage))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tandem_domain::external::Cursor;
    use tandem_domain::{JobId, System, TenantId};

    #[derive(Default)]
    struct Recording(Mutex<Vec<StageMessage>>);

    #[async_trait]
    impl StageQueue for Recording {
        async fn send(&self, msg: &StageMessage) -> Result<(), QueueError> {
            self.0.lock().unwrap().push(msg.clone());
            Ok(())
        }
    }

    fn message(stage: Stage) -> StageMessage {
        StageMessage {
            tenant: TenantId::parse("acme").unwrap(),
            system: System::ConnectWise,
            job_id: JobId::from_raw("job-1"),
            stage,
            cursor: Cursor::start(),
            attempt: 0,
        }
    }

    #[tokio::test]
    async fn each_message_goes_to_the_queue_of_its_stage() {
        let users = Arc::new(Recording::default());
        let companies = Arc::new(Recording::default());
        let router = StageQueueRouter::new([
            (Stage::Users, users.clone() as Arc<dyn StageQueue>),
            (Stage::Companies, companies.clone() as Arc<dyn StageQueue>),
        ]);
        router.send(&message(Stage::Companies)).await.unwrap();
        router.send(&message(Stage::Users)).await.unwrap();
        router.send(&message(Stage::Companies)).await.unwrap();
        assert_eq!(users.0.lock().unwrap().clone(), vec![message(Stage::Users)]);
        assert_eq!(companies.0.lock().unwrap().clone(), vec![message(Stage::Companies), message(Stage::Companies)]);
        assert_eq!(router.stages().collect::<Vec<_>>(), vec![Stage::Users, Stage::Companies]);
    }

    #[tokio::test]
    async fn a_stage_without_a_queue_is_an_error_naming_the_stage() {
        let router = StageQueueRouter::new([(Stage::Users, Arc::new(Recording::default()) as Arc<dyn StageQueue>)]);
        let err = router.send(&message(Stage::Opportunities)).await.unwrap_err();
        assert!(err.0.contains("opportunities"), "{err}");
    }
}
