//! The API budget (`api_budget_per_day`, PRODUCT.md section 10): the calls made to a
//! system counted per UTC hour, what they add up to over the rolling 24 hours, when work
//! that found the budget used up may run again, and an import's estimated finish. Pure:
//! no store, no clock (the use cases in `usecases::usage` feed it).

use serde::{Deserialize, Serialize};
use std::time::Duration;

use crate::ids::System;
use crate::job::{Job, JobStatus};
use crate::normalise::Timestamp;
use crate::ports::{ConnectorError, ErrorKind};

/// The budget's window: the hour now and the 23 before it.
pub const WINDOW_HOURS: i64 = 24;
/// How long an hour's count is kept (its item's TTL): the window and then some, so the
/// health view can still show a day that just left it.
pub const KEEP_SECONDS: i64 = 8 * 86_400;
/// The shortest wait for a budget used up: calls leave the window by the hour, so waking
/// up sooner than a minute only finds it used up again.
pub const MIN_WAIT_SECONDS: i64 = 60;

/// The calls made to one system in one UTC hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourCalls {
    /// The hour's start (`2026-01-31T09:00:00Z`).
    pub hour: Timestamp,
    pub calls: u64,
}

/// The start of the UTC hour `at` is in (whole seconds: no fraction is left over).
pub fn hour_of(at: Timestamp) -> Timestamp {
    let secs = at.unix();
    Timestamp::from_unix(secs - secs.rem_euclid(3600)).unwrap_or(at)
}

/// The oldest hour still in the window at `now`.
pub fn window_start(now: Timestamp) -> Timestamp {
    hour_of(now).plus_seconds(-(WINDOW_HOURS - 1) * 3600)
}

/// Whether `hour` counts in the window at `now`.
fn in_window(hour: Timestamp, now: Timestamp) -> bool {
    hour >= window_start(now) && hour <= hour_of(now)
}

/// The calls of the rolling 24 hours at `now` (the hour now and the 23 before).
pub fn used(hours: &[HourCalls], now: Timestamp) -> u64 {
    hours.iter().filter(|h| in_window(h.hour, now)).map(|h| h.calls).sum()
}

/// When calls may be made again under `budget`, at `now`: `None` while fewer than
/// `budget` calls were made in the window; else the time the oldest hours leave it (an
/// hour's calls leave 24 hours after the hour started) until fewer than `budget` are
/// left, at least [`MIN_WAIT_SECONDS`] from now.
pub fn free_at(budget: u32, hours: &[HourCalls], now: Timestamp) -> Option<Timestamp> {
    let budget = u64::from(budget);
    let mut left = used(hours, now);
    if left < budget {
        return None;
    }
    let mut window: Vec<&HourCalls> = hours.iter().filter(|h| in_window(h.hour, now)).collect();
    window.sort_by_key(|h| h.hour);
    let earliest = now.plus_seconds(MIN_WAIT_SECONDS);
    for h in window {
        left = left.saturating_sub(h.calls);
        if left < budget {
            return Some(h.hour.plus_seconds(WINDOW_HOURS * 3600).max(earliest));
        }
    }
    Some(hour_of(now).plus_seconds(WINDOW_HOURS * 3600).max(earliest))
}

/// The refusal of work that found `system`'s budget used up at `now`: a rate limit
/// ([`ErrorKind::RateLimited`]) whose `retry_after` is the wait until `resumes_at`, so the
/// work waits and resumes as it does for the vendor's own 429.
pub fn used_up(system: System, budget: u32, resumes_at: Timestamp, now: Timestamp) -> ConnectorError {
    let mut e = ConnectorError::new(
        system,
        ErrorKind::RateLimited,
        format!(
            "the API budget of {budget} calls per day for {} is used up; resumes at {resumes_at}",
            system.display_name()
        ),
    );
    let wait = (resumes_at.unix() - now.unix()).max(MIN_WAIT_SECONDS);
    e.retry_after = Some(Duration::from_secs(u64::try_from(wait).unwrap_or(MIN_WAIT_SECONDS as u64)));
    e
}

/// What an import's estimated finish is made from.
#[derive(Clone, Debug, PartialEq)]
pub struct EtaInput {
    pub now: Timestamp,
    /// The connection's budget, if it has one.
    pub budget: Option<u32>,
    /// Calls made to the system in the window now (every flow's, not only this job's).
    pub used_24h: u64,
    /// The rate the transport paces the system at (requests per second), as the job's
    /// last page saw it; `None`: not paced (the vendor's rate does not bound the estimate).
    pub rate_per_second: Option<f64>,
}

/// An estimated finish, or why there is none.
#[derive(Clone, Debug, PartialEq)]
pub enum Eta {
    At(Timestamp),
    Unknown(String),
}

/// The pages `job` still has to read, estimated. The connectors do not say how many
/// records a system holds (none of the four APIs Tandem reads gives a total on the pages
/// it reads), so the estimate is made from the job itself: each stage still to run is
/// taken to need as many pages as the job's finished stages needed on average, less the
/// pages the stage running now has read (at least one more). `Err` says why there is no
/// estimate: no stage of the job has finished yet.
pub fn pages_left(job: &Job) -> Result<u64, String> {
    let finished: Vec<u64> =
        job.stages.iter().filter_map(|s| job.progress.get(s).filter(|p| p.completed).map(|p| p.pages)).collect();
    let unfinished: Vec<u64> = job
        .stages
        .iter()
        .filter(|s| !job.progress.get(s).is_some_and(|p| p.completed))
        .map(|s| job.progress.get(s).map_or(0, |p| p.pages))
        .collect();
    if unfinished.is_empty() {
        return Ok(0);
    }
    if finished.is_empty() {
        return Err(format!(
            "{} does not say how many records it holds, and no stage of this job has finished to estimate the others from",
            job.system.display_name()
        ));
    }
    let average = finished.iter().sum::<u64>().div_ceil(finished.len() as u64).max(1);
    Ok(unfinished.iter().map(|done| average.saturating_sub(*done).max(1)).sum())
}

/// When `job` is estimated to finish: the calls its remaining pages need (its calls per
/// page so far times [`pages_left`]) sent at the vendor's rate, and, under a budget, the
/// calls beyond what the window has left wait for calls to leave it: a budget's worth a
/// day (taking the calls in the window to leave it evenly, so the estimate is a day's
/// granularity, never sooner than the rate alone allows).
pub fn eta(job: &Job, input: &EtaInput) -> Eta {
    match &job.status {
        JobStatus::Running => {}
        JobStatus::Completed => return Eta::Unknown("the import has completed".into()),
        JobStatus::Cancelled => return Eta::Unknown("the import was cancelled".into()),
        JobStatus::Failed(_) => return Eta::Unknown("the import failed; resume it to go on".into()),
    }
    let pages: u64 = job.progress.values().map(|p| p.pages).sum();
    let calls: u64 = job.progress.values().map(|p| p.calls).sum();
    if pages == 0 || calls == 0 {
        return Eta::Unknown("no page has been read yet to measure the calls a page takes".into());
    }
    let left = match pages_left(job) {
        Ok(left) => left,
        Err(why) => return Eta::Unknown(why),
    };
    let calls_left = (left as f64 * calls as f64 / pages as f64).ceil() as u64;
    let sending = input.rate_per_second.filter(|r| *r > 0.0).map_or(0.0, |rate| calls_left as f64 / rate);
    let waiting_days = match input.budget {
        Some(budget) => {
            let available = u64::from(budget).saturating_sub(input.used_24h);
            calls_left.saturating_sub(available).div_ceil(u64::from(budget.max(1)))
        }
        None => 0,
    };
    let seconds =
        i64::try_from(waiting_days).unwrap_or(i64::MAX / 2).saturating_mul(86_400) + sending.ceil().min(1e12) as i64;
    Eta::At(input.now.plus_seconds(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::external::Cursor;
    use crate::ids::{JobId, Stage, TenantId};
    use crate::job::StageProgress;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn hour(s: &str, calls: u64) -> HourCalls {
        HourCalls { hour: at(s), calls }
    }

    #[test]
    fn the_window_is_the_hour_now_and_the_twenty_three_before_it() {
        let now = at("2026-01-02T10:30:00Z");
        assert_eq!(hour_of(now), at("2026-01-02T10:00:00Z"));
        assert_eq!(hour_of(at("2026-01-02T10:59:59.999999Z")), at("2026-01-02T10:00:00Z"), "no fraction left over");
        assert_eq!(window_start(now), at("2026-01-01T11:00:00Z"));
        let hours =
            [hour("2026-01-01T10:00:00Z", 100), hour("2026-01-01T11:00:00Z", 3), hour("2026-01-02T10:00:00Z", 4)];
        assert_eq!(used(&hours, now), 7, "the hour 24 hours back has left the window");
    }

    #[test]
    fn a_budget_not_used_up_leaves_work_free_to_run() {
        let now = at("2026-01-02T10:30:00Z");
        assert_eq!(free_at(10, &[hour("2026-01-02T09:00:00Z", 9)], now), None);
        assert_eq!(free_at(10, &[], now), None);
    }

    #[test]
    fn a_budget_used_up_frees_when_enough_of_the_oldest_hours_calls_leave_the_window() {
        let now = at("2026-01-02T10:30:00Z");
        let hours = [hour("2026-01-01T12:00:00Z", 2), hour("2026-01-01T15:00:00Z", 5), hour("2026-01-02T10:00:00Z", 3)];
        // 10 used of 8: the 12:00 hour leaving leaves 8 (still used up), the 15:00 one 3.
        assert_eq!(free_at(8, &hours, now), Some(at("2026-01-02T15:00:00Z")));
        assert_eq!(free_at(9, &hours, now), Some(at("2026-01-02T12:00:00Z")));
        assert_eq!(free_at(10, &hours, now), Some(at("2026-01-02T12:00:00Z")));
    }

    #[test]
    fn work_waits_at_least_a_minute_even_when_calls_leave_the_window_sooner() {
        let now = at("2026-01-02T10:59:50Z");
        let hours = [hour("2026-01-01T11:00:00Z", 5)];
        assert_eq!(free_at(5, &hours, now), Some(at("2026-01-02T11:00:50Z")));
    }

    #[test]
    fn the_refusal_is_a_rate_limit_naming_the_budget_and_when_it_resumes() {
        let now = at("2026-01-02T10:00:00Z");
        let e = used_up(System::Halo, 500, at("2026-01-02T12:00:00Z"), now);
        assert_eq!(e.kind, ErrorKind::RateLimited);
        assert_eq!(e.retry_after, Some(Duration::from_secs(7200)));
        assert!(
            e.message.contains("500 calls per day for HaloPSA") && e.message.contains("2026-01-02T12:00:00Z"),
            "{}",
            e.message
        );
    }

    fn job(progress: &[(Stage, u64, u64, bool)]) -> Job {
        let now = at("2026-01-02T10:00:00Z");
        Job {
            tenant: TenantId::parse("acme").unwrap(),
            id: JobId::from_raw("j"),
            system: System::ConnectWise,
            stages: vec![Stage::Users, Stage::Companies, Stage::Contacts],
            current: progress.iter().filter(|p| p.3).count(),
            cursor: Cursor::default(),
            status: JobStatus::Running,
            progress: progress
                .iter()
                .map(|(s, pages, calls, completed)| {
                    (*s, StageProgress { pages: *pages, calls: *calls, completed: *completed, ..Default::default() })
                })
                .collect(),
            created_at: now,
            updated_at: now,
            attempt: 0,
            version: 1,
            dry_run: false,
        }
    }

    #[test]
    fn pages_left_are_estimated_from_the_stages_that_finished() {
        let j = job(&[(Stage::Users, 2, 2, true), (Stage::Companies, 4, 4, true), (Stage::Contacts, 1, 1, false)]);
        assert_eq!(pages_left(&j), Ok(2), "an average of 3 pages, 1 read");
        let j = job(&[(Stage::Users, 4, 4, true), (Stage::Companies, 6, 6, false)]);
        assert_eq!(pages_left(&j), Ok(1 + 4), "a stage past the average still has one page, the next the average");
        let err = pages_left(&job(&[(Stage::Users, 3, 3, false)])).unwrap_err();
        assert!(err.contains("ConnectWise does not say how many records"), "{err}");
    }

    #[test]
    fn without_a_budget_the_estimate_is_the_calls_left_at_the_vendors_rate() {
        let now = at("2026-01-02T10:00:00Z");
        // 2 calls a page; 4 pages left: 8 calls at 2 a second.
        let j = job(&[(Stage::Users, 2, 4, true), (Stage::Companies, 3, 6, true), (Stage::Contacts, 0, 0, false)]);
        let input = EtaInput { now, budget: None, used_24h: 0, rate_per_second: Some(2.0) };
        assert_eq!(pages_left(&j), Ok(3));
        assert_eq!(eta(&j, &input), Eta::At(at("2026-01-02T10:00:03Z")));
        let unpaced = EtaInput { rate_per_second: None, ..input };
        assert_eq!(eta(&j, &unpaced), Eta::At(now));
    }

    #[test]
    fn under_a_budget_the_calls_beyond_what_is_left_wait_a_day_per_budget() {
        let now = at("2026-01-02T10:00:00Z");
        // 10 pages a stage at 1 call each: 10 calls left.
        let j = job(&[(Stage::Users, 10, 10, true), (Stage::Companies, 10, 10, true), (Stage::Contacts, 0, 0, false)]);
        let input = |budget, used| EtaInput { now, budget: Some(budget), used_24h: used, rate_per_second: Some(10.0) };
        assert_eq!(eta(&j, &input(100, 50)), Eta::At(at("2026-01-02T10:00:01Z")), "enough left today");
        assert_eq!(eta(&j, &input(4, 4)), Eta::At(at("2026-01-05T10:00:01Z")), "10 calls at 4 a day: 3 days");
        assert_eq!(eta(&j, &input(6, 2)), Eta::At(at("2026-01-03T10:00:01Z")), "4 today, 6 tomorrow");
    }

    #[test]
    fn an_estimate_that_cannot_be_made_says_why() {
        let input = EtaInput { now: at("2026-01-02T10:00:00Z"), budget: None, used_24h: 0, rate_per_second: None };
        let fresh = job(&[]);
        assert!(matches!(eta(&fresh, &input), Eta::Unknown(why) if why.contains("no page has been read")));
        let mut done = job(&[(Stage::Users, 1, 1, true)]);
        done.status = JobStatus::Completed;
        assert!(matches!(eta(&done, &input), Eta::Unknown(why) if why.contains("completed")));
        let early = job(&[(Stage::Users, 2, 2, false)]);
        assert!(matches!(eta(&early, &input), Eta::Unknown(why) if why.contains("no stage of this job has finished")));
    }
}
