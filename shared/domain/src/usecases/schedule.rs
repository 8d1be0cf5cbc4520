//! The schedule's tick (EventBridge in AWS, a timer in the local runner): starts a poll of
//! every connection taking changes in, and sync out's catch-up of the changes the relay
//! lost for every connection pushing them.

use serde::Serialize;

use crate::error::DomainError;
use crate::usecases::{Services, sync_in, sync_out};

/// What one tick did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Ticked {
    /// Polls started (their first pages queued for the sync worker).
    pub started: usize,
    /// CRM changes queued again for sync out (committed, never queued).
    pub requeued: usize,
}

/// Runs one tick. A connection that cannot start is logged and skipped by the use cases;
/// only a failure to list the connections fails the tick.
pub async fn tick(svc: &Services) -> Result<Ticked, DomainError> {
    let started = sync_in::poll_all(svc).await?;
    let requeued = sync_out::catch_up(svc).await?;
    Ok(Ticked { started, requeued })
}
