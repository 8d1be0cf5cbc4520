//! Sync health of one connection (`GET /connections/{system}/health`, issue 13): from the
//! sync log and the connection's state, what happened over the last 24 hours and 7 days
//! (counts per outcome), which failures recur (grouped by error, with the records they
//! hit), when the import, the poll and a webhook last worked, the webhook's set-up, the API
//! calls against the budget, and the work waiting on a rate limit or the budget.
//!
//! The log is read a day partition at a time, a page at a time, folding each page into the
//! counts and groups: never the week's entries in memory at once.

use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

use crate::error::DomainError;
use crate::ids::{JobId, RecordId, RecordKind, Stage, System, TenantId};
use crate::job::JobStatus;
use crate::log::{Direction, LogEntry, Outcome};
use crate::normalise::Timestamp;
use crate::ports::ErrorKind;
use crate::usecases::Services;
use crate::usecases::connections::connection;
use crate::usecases::usage::{self, ApiCalls};
use crate::work::Waiting;

/// How many records a failure group names (the rest are counted in `records_total`).
pub const RECORDS_PER_GROUP: usize = 50;
/// How many failure groups the view lists, most frequent first.
pub const GROUPS: usize = 100;
/// Log entries read per page.
const PAGE: usize = 500;

/// The health view.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Health {
    pub system: System,
    /// When it was computed.
    pub at: Timestamp,
    pub counts: Counts,
    /// The failed operations of the last 7 days, grouped by error, most frequent first.
    pub failures: Vec<FailureGroup>,
    pub last_success: LastSuccess,
    pub webhook: WebhookHealth,
    pub api_calls: ApiCalls,
    /// Work waiting on a rate limit or the API budget, soonest to resume first.
    pub waiting: Vec<Waiting>,
}

/// Counts per outcome over the two windows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub last_24h: OutcomeCounts,
    pub last_7d: OutcomeCounts,
}

/// Record operations per outcome. `conflict` counts the operations that settled a conflict
/// (a field both sides changed); each is also counted under its outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OutcomeCounts {
    pub created: u64,
    pub linked: u64,
    pub updated: u64,
    pub skipped: u64,
    pub conflict: u64,
    pub failed: u64,
    pub deleted: u64,
}

impl OutcomeCounts {
    fn count(&mut self, e: &LogEntry) {
        match e.outcome {
            Outcome::Created => self.created += 1,
            Outcome::Linked => self.linked += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Skipped(_) => self.skipped += 1,
            Outcome::Failed(_) => self.failed += 1,
            Outcome::Deleted => self.deleted += 1,
        }
        if !e.conflicts.is_empty() {
            self.conflict += 1;
        }
    }
}

/// Failures that share an error: the vendor's code (when it gave one) and the message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailureGroup {
    /// The failure's class, when the system reported it.
    pub kind: Option<ErrorKind>,
    /// The vendor's own error code, if any.
    pub code: Option<String>,
    pub message: String,
    /// Failed operations with this error.
    pub count: u64,
    pub first_at: Timestamp,
    pub last_at: Timestamp,
    /// The records it hit, most recent first (at most [`RECORDS_PER_GROUP`]).
    pub records: Vec<FailedRecord>,
    /// How many distinct records it hit.
    pub records_total: u64,
}

/// A record a failure hit, with the log entry to retry (`POST /logs/{id}/retry`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailedRecord {
    pub object: RecordKind,
    pub crm_id: Option<RecordId>,
    pub external_id: Option<String>,
    pub direction: Direction,
    pub log_id: String,
    pub at: Timestamp,
}

/// When each way in last worked.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LastSuccess {
    /// The newest completed import of the connection.
    pub import: Option<ImportSuccess>,
    /// The newest complete poll's start (the latest of the stages' watermarks), with each
    /// stage's.
    pub poll: Option<Timestamp>,
    pub poll_stages: BTreeMap<Stage, Timestamp>,
    /// The newest webhook-brought operation that did not fail, within the 7 days read.
    pub webhook: Option<Timestamp>,
}

/// A completed import.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImportSuccess {
    pub at: Timestamp,
    /// The job, when it is still listed (the stages' completion times outlive jobs).
    pub job: Option<JobId>,
}

/// The webhook's registration (never its secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WebhookHealth {
    /// `registered` (through the system's API), `set_up_by_hand` (the system has no
    /// registration API, or Tandem has no public URL to register: a person sets it up with
    /// the path and secret of the settings answer), or `not_registered` (inbound sync off).
    pub state: &'static str,
    /// The path the system calls on Tandem's API.
    pub path: Option<String>,
    /// What the system's API registered, when it did.
    pub registration: Option<String>,
}

/// The connection's sync health now (see the module docs).
pub async fn health(svc: &Services, t: &TenantId, system: System) -> Result<Health, DomainError> {
    let conn = connection(svc, t, system).await?;
    let now = svc.clock.now();
    let day_ago = now.plus_seconds(-86_400);
    let week_ago = now.plus_seconds(-7 * 86_400);

    let mut counts = Counts::default();
    let mut groups = Groups::default();
    let mut webhook_ok: Option<Timestamp> = None;
    let mut day = now;
    while day.day() >= week_ago.day() {
        let mut after = None;
        loop {
            let (entries, next) = svc.store.log_day_page(t, &day.day(), after, PAGE).await?;
            for e in entries.iter().filter(|e| e.system == system && e.at >= week_ago && e.at <= now) {
                counts.last_7d.count(e);
                if e.at >= day_ago {
                    counts.last_24h.count(e);
                }
                if let Outcome::Failed(message) = &e.outcome {
                    groups.add(e, message);
                } else if e.direction == Direction::Webhook {
                    webhook_ok = webhook_ok.max(Some(e.at));
                }
            }
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        day = day.plus_seconds(-86_400);
    }

    let import = match svc
        .store
        .jobs(t, 100)
        .await?
        .into_iter()
        .find(|j| j.system == system && j.status == JobStatus::Completed)
    {
        Some(job) => Some(ImportSuccess { at: job.updated_at, job: Some(job.id) }),
        None => conn.completed_stages.values().max().map(|at| ImportSuccess { at: *at, job: None }),
    };
    let last_success = LastSuccess {
        import,
        poll: conn.polled.values().max().copied(),
        poll_stages: conn.polled.clone(),
        webhook: webhook_ok,
    };
    let webhook = match (&conn.webhook, conn.settings.auto_sync.inbound()) {
        (Some(endpoint), true) => {
            let state = if endpoint.registration.is_some() { "registered" } else { "set_up_by_hand" };
            WebhookHealth { state, path: Some(endpoint.path(system)), registration: endpoint.registration.clone() }
        }
        _ => WebhookHealth { state: "not_registered", path: None, registration: None },
    };
    Ok(Health {
        system,
        at: now,
        counts,
        failures: groups.finish(),
        last_success,
        webhook,
        api_calls: usage::api_calls(svc, &conn).await?,
        waiting: svc.store.waiting(t, system, now).await?,
    })
}

/// The failure groups being folded, by (code, message).
#[derive(Default)]
struct Groups(BTreeMap<(Option<String>, String), (FailureGroup, HashSet<RecordKey>)>);

type RecordKey = (RecordKind, Option<RecordId>, Option<String>);

impl Groups {
    fn add(&mut self, e: &LogEntry, message: &str) {
        let code = e.error.as_ref().and_then(|err| err.code.clone());
        let (group, seen) = self.0.entry((code.clone(), message.to_string())).or_insert_with(|| {
            let group = FailureGroup {
                kind: e.error.as_ref().map(|err| err.kind),
                code,
                message: message.to_string(),
                count: 0,
                first_at: e.at,
                last_at: e.at,
                records: Vec::new(),
                records_total: 0,
            };
            (group, HashSet::new())
        });
        group.count += 1;
        group.first_at = group.first_at.min(e.at);
        group.last_at = group.last_at.max(e.at);
        if seen.insert((e.object, e.crm_id.clone(), e.external_id.clone())) {
            group.records_total += 1;
            if group.records.len() < RECORDS_PER_GROUP {
                group.records.push(FailedRecord {
                    object: e.object,
                    crm_id: e.crm_id.clone(),
                    external_id: e.external_id.clone(),
                    direction: e.direction,
                    log_id: e.id.clone(),
                    at: e.at,
                });
            }
        }
    }

    /// The groups, most frequent first (then most recent), at most [`GROUPS`].
    fn finish(self) -> Vec<FailureGroup> {
        let mut out: Vec<FailureGroup> = self.0.into_values().map(|(g, _)| g).collect();
        out.sort_by(|a, b| b.count.cmp(&a.count).then(b.last_at.cmp(&a.last_at)));
        out.truncate(GROUPS);
        out
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
