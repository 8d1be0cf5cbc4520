//! [`WorkRouter`]: the work queue ([`WorkQueue`]) that sends each [`Work`] to the
//! queue of its [`Route`](Work::route). In AWS every import stage has its own SQS FIFO
//! queue, each feeding its own Lambda function, so the router holds one [`SqsWorkQueue`]
//! per stage ([`WorkRouter::sqs`]); later routes (export, sync) add their queues the
//! same way. Any other [`WorkQueue`] can be routed to as well ([`WorkRouter::new`]).
//! The router knows a message only by its route, never by what its kind means.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use tandem_domain::ports::{QueueError, WorkQueue};
use tandem_domain::work::{Route, Work};

use crate::sqs::SqsWorkQueue;

/// Sends each message to the queue of its route (see the module docs).
#[derive(Clone)]
pub struct WorkRouter {
    routes: BTreeMap<Route, Arc<dyn WorkQueue>>,
}

impl std::fmt::Debug for WorkRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkRouter").field("routes", &self.routes.keys().collect::<Vec<_>>()).finish()
    }
}

impl WorkRouter {
    /// A router over these queues, one per route (a stage converts into its route; a later
    /// entry for a route replaces an earlier one).
    pub fn new<R: Into<Route>>(routes: impl IntoIterator<Item = (R, Arc<dyn WorkQueue>)>) -> Self {
        Self { routes: routes.into_iter().map(|(route, queue)| (route.into(), queue)).collect() }
    }

    /// A router over one SQS FIFO queue per route (or stage), given by URL, all reached
    /// through `client` (built once by the caller).
    pub fn sqs<'a, R: Into<Route>>(client: &Client, urls: impl IntoIterator<Item = (R, &'a str)>) -> Self {
        Self::new(urls.into_iter().map(|(route, url)| {
            let queue: Arc<dyn WorkQueue> = Arc::new(SqsWorkQueue::new(client.clone(), url));
            (route.into(), queue)
        }))
    }

    /// The routes that have a queue.
    pub fn routes(&self) -> impl Iterator<Item = Route> + '_ {
        self.routes.keys().copied()
    }
}

#[async_trait]
impl WorkQueue for WorkRouter {
    /// Sends `work` to its route's queue; a route without a queue is an error naming it (a
    /// deployment problem, so the caller may retry once the queue is configured).
    async fn send(&self, work: &Work) -> Result<(), QueueError> {
        let route = work.route();
        match self.routes.get(&route) {
            Some(queue) => queue.send(work).await,
            None => Err(QueueError(format!("no queue is configured for {route} ({} message)", work.kind()))),
        }
    }

    /// Holds `work` back on its route's queue (the queue it was received from).
    async fn hold(&self, work: &Work, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        let route = work.route();
        match self.routes.get(&route) {
            Some(queue) => queue.hold(work, receipt, delay).await,
            None => Err(QueueError(format!("no queue is configured for {route} ({} message)", work.kind()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tandem_domain::external::Cursor;
    use tandem_domain::job::StageMessage;
    use tandem_domain::{JobId, Stage, System, TenantId};

    #[derive(Default)]
    struct Recording(Mutex<Vec<Work>>);

    #[async_trait]
    impl WorkQueue for Recording {
        async fn send(&self, work: &Work) -> Result<(), QueueError> {
            self.0.lock().unwrap().push(work.clone());
            Ok(())
        }
    }

    fn message(stage: Stage) -> Work {
        Work::ImportPage(StageMessage {
            tenant: TenantId::parse("acme").unwrap(),
            system: System::ConnectWise,
            job_id: JobId::from_raw("job-1"),
            stage,
            cursor: Cursor::start(),
            attempt: 0,
            dry_run: false,
        })
    }

    #[tokio::test]
    async fn each_message_goes_to_the_queue_of_its_route() {
        let users = Arc::new(Recording::default());
        let companies = Arc::new(Recording::default());
        let router = WorkRouter::new([
            (Stage::Users, users.clone() as Arc<dyn WorkQueue>),
            (Stage::Companies, companies.clone() as Arc<dyn WorkQueue>),
        ]);
        router.send(&message(Stage::Companies)).await.unwrap();
        router.send(&message(Stage::Users)).await.unwrap();
        router.send(&message(Stage::Companies)).await.unwrap();
        assert_eq!(users.0.lock().unwrap().clone(), vec![message(Stage::Users)]);
        assert_eq!(companies.0.lock().unwrap().clone(), vec![message(Stage::Companies), message(Stage::Companies)]);
        assert_eq!(
            router.routes().collect::<Vec<_>>(),
            vec![Route::Stage(Stage::Users), Route::Stage(Stage::Companies)]
        );
    }

    #[tokio::test]
    async fn a_route_without_a_queue_is_an_error_naming_the_route() {
        let router = WorkRouter::new([(Stage::Users, Arc::new(Recording::default()) as Arc<dyn WorkQueue>)]);
        let err = router.send(&message(Stage::Opportunities)).await.unwrap_err();
        assert!(err.0.contains("opportunities"), "{err}");
    }
}
