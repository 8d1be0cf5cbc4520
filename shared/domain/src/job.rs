//! Import jobs: the stages they run, their checkpoint (stage + cursor), per-stage
//! progress, and the stage message that carries a cursor (never records) between pages.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::external::Cursor;
use crate::ids::{JobId, Stage, System, TenantId};
use crate::log::{Outcome, SkipReason};
use crate::normalise::Timestamp;

/// A job's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum JobStatus {
    Running,
    Completed,
    Cancelled,
    /// Stopped by an error that retrying will not fix.
    Failed(String),
}

impl JobStatus {
    /// Whether the job is over.
    pub fn is_final(&self) -> bool {
        !matches!(self, JobStatus::Running)
    }
}

/// A stage's progress within a job.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StageProgress {
    pub pages: u64,
    /// Requests its pages sent to the system (retries included), for the import's
    /// estimated finish (`crate::budget::eta`).
    #[serde(default)]
    pub calls: u64,
    /// The rate (requests per second) the transport paced the system at for its last
    /// page; absent when not paced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pace: Option<f64>,
    pub created: u64,
    pub linked: u64,
    pub updated: u64,
    pub failed: u64,
    /// Skipped records per reason.
    #[serde(default)]
    pub skipped: BTreeMap<SkipReason, u64>,
    pub completed: bool,
    /// When the stage's first page was fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When its last page was checkpointed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
}

impl StageProgress {
    /// Counts one outcome.
    pub fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Created => self.created += 1,
            Outcome::Linked => self.linked += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Failed(_) => self.failed += 1,
            Outcome::Skipped(r) => *self.skipped.entry(*r).or_default() += 1,
            // An import takes records in; it never removes one.
            Outcome::Deleted => {}
        }
    }

    /// Adds another progress (one page's counts) to this one.
    pub fn add(&mut self, other: &StageProgress) {
        self.pages += other.pages;
        self.calls += other.calls;
        if other.pace.is_some() {
            self.pace = other.pace;
        }
        self.created += other.created;
        self.linked += other.linked;
        self.updated += other.updated;
        self.failed += other.failed;
        for (k, v) in &other.skipped {
            *self.skipped.entry(*k).or_default() += v;
        }
    }

    /// Seconds from the first fetch to the last checkpoint (so far, while running).
    pub fn seconds(&self, now: Timestamp) -> Option<f64> {
        let start = self.started_at?.datetime();
        let end = self.finished_at.unwrap_or(now).datetime();
        Some((end - start).as_seconds_f64())
    }

    /// Records handled so far.
    pub fn records(&self) -> u64 {
        self.created + self.linked + self.updated + self.failed + self.skipped.values().sum::<u64>()
    }

    /// Outcome key -> count, non-zero only (`created`, `skipped:inactive`, ...).
    pub fn outcome_counts(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for (k, v) in
            [("created", self.created), ("linked", self.linked), ("updated", self.updated), ("failed", self.failed)]
        {
            if v > 0 {
                m.insert(k.to_string(), v);
            }
        }
        for (k, v) in &self.skipped {
            if *v > 0 {
                m.insert(format!("skipped:{k}"), *v);
            }
        }
        m
    }
}

/// One run of an import.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub tenant: TenantId,
    pub id: JobId,
    pub system: System,
    /// The stages to run, in order.
    pub stages: Vec<Stage>,
    /// Index into `stages` of the stage running now (== len when done).
    pub current: usize,
    /// Where the current stage reads next: the checkpoint.
    pub cursor: Cursor,
    pub status: JobStatus,
    #[serde(default)]
    pub progress: BTreeMap<Stage, StageProgress>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// How many times the job was resumed by hand: part of its messages' deduplication
    /// ids, so a resume is never swallowed by the queue's deduplication window, and
    /// messages of an earlier attempt are recognised as stale.
    #[serde(default)]
    pub attempt: u32,
    /// Optimistic-concurrency version.
    #[serde(default)]
    pub version: u64,
    /// A preview (dry run): its pages run on the preview's view of the table and write
    /// nothing of the tenant's ([`crate::usecases::preview`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

impl Job {
    /// The stage running now, if any.
    pub fn current_stage(&self) -> Option<Stage> {
        self.stages.get(self.current).copied()
    }

    /// The message that processes the job's current checkpoint.
    pub fn message(&self) -> Option<StageMessage> {
        Some(StageMessage {
            tenant: self.tenant.clone(),
            system: self.system,
            job_id: self.id.clone(),
            stage: self.current_stage()?,
            cursor: self.cursor.clone(),
            attempt: self.attempt,
            dry_run: self.dry_run,
        })
    }

    /// Whether the job is running but has made no progress for `stall_after` by `now`.
    pub fn is_stalled(&self, now: Timestamp, stall_after: std::time::Duration) -> bool {
        let idle = (now.datetime() - self.updated_at.datetime()).as_seconds_f64();
        self.status == JobStatus::Running && idle >= stall_after.as_secs_f64()
    }
}

/// The message chaining pages and stages: who, which job, which stage, where. Never records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageMessage {
    pub tenant: TenantId,
    pub system: System,
    pub job_id: JobId,
    pub stage: Stage,
    pub cursor: Cursor,
    /// The job's resume attempt this message belongs to (see [`Job::attempt`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
    /// A page of a preview (see [`Job::dry_run`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl StageMessage {
    /// Deduplication id: one per job, stage, cursor and resume attempt.
    pub fn dedup_id(&self) -> String {
        let since = self.cursor.since.map(|t| t.unix().to_string()).unwrap_or_default();
        let base = format!("{}:{}:{}:{}", self.job_id, self.stage, self.cursor.position, since);
        if self.attempt == 0 { base } else { format!("{base}:r{}", self.attempt) }
    }

    /// The FIFO group: one per tenant and system, so a connection never races itself.
    pub fn group_id(&self) -> String {
        format!("{}:{}", self.tenant, self.system)
    }
}
