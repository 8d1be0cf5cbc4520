//! Per-connection request pacing: a token bucket per connection (shared process-wide), its
//! rate taken from the vendor's limit, cut on a 429 and slowly recovered, and narrowed when a
//! vendor's usage header says the budget is running out.
//!
//! The bucket is a GCRA-style schedule (a "theoretical arrival time"): each request books the
//! next slot, one interval after the previous one, so requests leave evenly spaced at the
//! current rate and never faster. There is no burst allowance on purpose: the vendors count
//! in fixed or sliding windows, and a burst on top of a full rate is exactly what they
//! refuse. A request that leaves late (timers wake late) pushes the next one a whole
//! interval after it, so the spacing the vendor sees is never below the rate. The state
//! machine takes `now` as an argument, so it is tested without a clock.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use tandem_domain::System;
use tokio::time::Instant;

/// After a 429 the rate is multiplied by this (multiplicative decrease).
pub const DECREASE: f64 = 0.5;
/// Each answered request gives back this fraction of the ceiling (additive increase), so a
/// halved rate is whole again after 16 good answers.
pub const RECOVERY: f64 = 1.0 / 32.0;
/// The rate never drops below this fraction of the ceiling.
pub const FLOOR: f64 = 1.0 / 16.0;
/// A vendor's reported usage above this share of its budget starts narrowing the rate,
/// linearly down to [`FLOOR`] when the budget is used up.
pub const USAGE_HIGH_WATER: f64 = 0.8;

/// A request rate: `requests` per `per`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rate {
    /// Requests allowed in each `per`.
    pub requests: u32,
    /// The window the requests are counted over.
    pub per: Duration,
}

impl Rate {
    /// `requests` per second.
    pub const fn per_second(requests: u32) -> Self {
        Self { requests, per: Duration::from_secs(1) }
    }

    /// `requests` per minute.
    pub const fn per_minute(requests: u32) -> Self {
        Self { requests, per: Duration::from_secs(60) }
    }

    /// The rate a connection is paced at for a vendor limit of `self`: one request fewer
    /// per window. A request leaves on its slot but is counted when it arrives, and arrival
    /// times jitter with the network, so two evenly spaced requests can land closer than
    /// their interval and a window paced at exactly the limit sometimes counts one too many
    /// (measured: one 429 per ~100 requests at 20/s with eight requests in flight). The one
    /// request of headroom absorbs that; it costs 1/requests of the budget (5% at 20/s, 0.6%
    /// at Syncro's 180/min).
    pub const fn with_headroom(self) -> Self {
        if self.requests > 1 { Self { requests: self.requests - 1, per: self.per } } else { self }
    }

    /// Requests per second as a number (at least one request per day, so a zero never
    /// stops a connection for good).
    pub fn per_second_f64(&self) -> f64 {
        let secs = self.per.as_secs_f64().max(1e-6);
        (f64::from(self.requests) / secs).max(1.0 / 86_400.0)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} requests per {:?}", self.requests, self.per)
    }
}

/// How a connector paces its requests (a field of [`crate::Settings`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pacing {
    /// At each system's own rate (the `REQUEST_RATE` constant in its folder). The default.
    #[default]
    Published,
    /// At this rate for every system (tests, the local runner against simulators).
    At(Rate),
    /// Not paced at all (429s are still waited out by the retry policy).
    Off,
}

impl Pacing {
    /// The rate to pace at, given the system's own: `None` when pacing is off.
    pub fn rate(&self, published: Rate) -> Option<Rate> {
        match self {
            Pacing::Published => Some(published),
            Pacing::At(rate) => Some(*rate),
            Pacing::Off => None,
        }
    }
}

/// How much of its request budget a vendor says is used (e.g. Salesforce
/// `Sforce-Limit-Info: api-usage=18/5000`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Requests used in the vendor's window.
    pub used: u64,
    /// Requests allowed in the vendor's window.
    pub limit: u64,
}

impl Usage {
    /// The share of the ceiling still usable: 1 up to [`USAGE_HIGH_WATER`], then linearly
    /// down to [`FLOOR`] at a used-up budget.
    pub fn allowance(&self) -> f64 {
        if self.limit == 0 {
            return 1.0;
        }
        let share = self.used as f64 / self.limit as f64;
        if share <= USAGE_HIGH_WATER {
            return 1.0;
        }
        let left = ((1.0 - share) / (1.0 - USAGE_HIGH_WATER)).clamp(0.0, 1.0);
        FLOOR + (1.0 - FLOOR) * left
    }
}

#[derive(Debug)]
struct State {
    /// The current rate, requests per second, in `[ceiling * FLOOR, ceiling]`.
    rate: f64,
    /// The share of the ceiling the vendor's usage header leaves (1 when it says nothing).
    allowance: f64,
    /// When the next request may leave.
    next: Instant,
    /// A 429 before this does not cut the rate again (one cut per episode, however many
    /// requests were in flight when it began).
    calm_after: Instant,
}

/// The token bucket of one connection. Cheap to share: every connector built for the same
/// connection in a process gets the same one from [`shared`].
#[derive(Debug)]
pub struct Pacer {
    ceiling: f64,
    state: Mutex<State>,
}

impl Pacer {
    /// A bucket pacing at `rate`, the first request free to leave at once.
    pub fn new(rate: Rate) -> Self {
        let ceiling = rate.per_second_f64();
        let now = Instant::now();
        Self { ceiling, state: Mutex::new(State { rate: ceiling, allowance: 1.0, next: now, calm_after: now }) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The configured rate, requests per second.
    pub fn ceiling(&self) -> f64 {
        self.ceiling
    }

    /// The rate requests leave at now, requests per second.
    pub fn current(&self) -> f64 {
        self.effective(&self.state())
    }

    fn effective(&self, s: &State) -> f64 {
        s.rate.min(self.ceiling * s.allowance).max(self.ceiling * FLOOR)
    }

    /// Books the next slot at or after `now` and returns when it is.
    pub fn reserve_at(&self, now: Instant) -> Instant {
        let mut s = self.state();
        let at = s.next.max(now);
        s.next = at + Duration::from_secs_f64(1.0 / self.effective(&s));
        at
    }

    /// A request left at `now` (its slot, or later if the timer woke late): the next one
    /// leaves at least an interval after it. Timer lateness so adds to the spacing instead of
    /// being caught up, so a vendor counting in windows never sees more than the rate, even
    /// from a server whose clock and ours disagree by a timer tick.
    pub fn sent_at(&self, now: Instant) {
        let mut s = self.state();
        let after = now + Duration::from_secs_f64(1.0 / self.effective(&s));
        s.next = s.next.max(after);
    }

    /// Waits for the next slot and books it as sent.
    pub async fn ready(&self) {
        tokio::time::sleep_until(self.reserve_at(Instant::now())).await;
        self.sent_at(Instant::now());
    }

    /// The vendor refused a request for its rate (429, or a rate-limit error code) at `now`,
    /// asking for `wait`: nothing leaves before `now + wait`, and the rate is cut by
    /// [`DECREASE`] (once per episode).
    pub fn throttled_at(&self, now: Instant, wait: Option<Duration>) {
        let mut s = self.state();
        let wait = wait.unwrap_or_default();
        s.next = s.next.max(now + wait);
        if now >= s.calm_after {
            s.rate = (s.rate * DECREASE).max(self.ceiling * FLOOR);
            let interval = Duration::from_secs_f64(1.0 / self.effective(&s));
            s.calm_after = now + wait.max(interval);
            tracing::debug!(rate = s.rate, wait_ms = wait.as_millis() as u64, "rate limited; pacing slower");
        }
    }

    /// [`Pacer::throttled_at`] now.
    pub fn throttled(&self, wait: Option<Duration>) {
        self.throttled_at(Instant::now(), wait);
    }

    /// A request was answered without a rate-limit refusal: the rate recovers by
    /// [`RECOVERY`] of the ceiling.
    pub fn answered(&self) {
        let mut s = self.state();
        s.rate = (s.rate + self.ceiling * RECOVERY).min(self.ceiling);
    }

    /// The vendor reported its budget's usage: the rate narrows as the budget runs out.
    pub fn usage(&self, usage: Usage) {
        self.state().allowance = usage.allowance();
    }
}

type Registry = HashMap<(&'static str, String, Rate), Weak<Pacer>>;

static PACERS: LazyLock<Mutex<Registry>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// The process-wide bucket of one connection (`system` + `connection`, e.g. its base URL
/// and account) at `rate`: every connector built for the same connection and rate shares
/// it, for as long as one of them lives.
pub fn shared(system: System, connection: &str, rate: Rate) -> Arc<Pacer> {
    let key = (system.display_name(), connection.to_string(), rate);
    let mut pacers = PACERS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(pacer) = pacers.get(&key).and_then(Weak::upgrade) {
        return pacer;
    }
    pacers.retain(|_, p| p.strong_count() > 0);
    let pacer = Arc::new(Pacer::new(rate.with_headroom()));
    pacers.insert(key, Arc::downgrade(&pacer));
    pacer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test]
    async fn requests_leave_evenly_spaced_at_the_rate_and_never_in_a_burst() {
        let p = Pacer::new(Rate::per_second(10));
        let t0 = Instant::now();
        let slots: Vec<Duration> = (0..5).map(|_| p.reserve_at(t0) - t0).collect();
        assert_eq!(slots, vec![ms(0), ms(100), ms(200), ms(300), ms(400)]);
    }

    #[tokio::test]
    async fn an_idle_bucket_lets_the_next_request_go_at_once_but_banks_no_burst() {
        let p = Pacer::new(Rate::per_second(10));
        let t0 = Instant::now();
        p.reserve_at(t0);
        let later = t0 + Duration::from_secs(5);
        assert_eq!(p.reserve_at(later), later);
        assert_eq!(p.reserve_at(later) - later, ms(100));
    }

    #[tokio::test]
    async fn a_request_that_left_late_pushes_the_next_one_a_whole_interval_after_it() {
        let p = Pacer::new(Rate::per_second(10));
        let t0 = Instant::now();
        assert_eq!(p.reserve_at(t0), t0);
        p.sent_at(t0 + ms(30));
        assert_eq!(p.reserve_at(t0) - t0, ms(130));
    }

    #[tokio::test]
    async fn a_429_holds_every_request_for_the_retry_after_and_halves_the_rate() {
        let p = Pacer::new(Rate::per_second(10));
        let t0 = Instant::now();
        p.reserve_at(t0);
        p.throttled_at(t0, Some(Duration::from_secs(1)));
        assert!((p.current() - 5.0).abs() < 1e-9, "{}", p.current());
        let a = p.reserve_at(t0);
        let b = p.reserve_at(t0);
        assert_eq!(a - t0, Duration::from_secs(1));
        assert_eq!(b - a, ms(200), "half the rate: twice the interval");
    }

    #[tokio::test]
    async fn several_429s_of_one_episode_cut_the_rate_once() {
        let p = Pacer::new(Rate::per_second(10));
        let t0 = Instant::now();
        for _ in 0..4 {
            p.throttled_at(t0, Some(Duration::from_secs(1)));
        }
        assert!((p.current() - 5.0).abs() < 1e-9, "{}", p.current());
        p.throttled_at(t0 + Duration::from_secs(2), None);
        assert!((p.current() - 2.5).abs() < 1e-9, "a later episode cuts again: {}", p.current());
    }

    #[tokio::test]
    async fn the_rate_recovers_slowly_and_never_passes_the_ceiling_nor_drops_below_the_floor() {
        let p = Pacer::new(Rate::per_second(32));
        let mut t = Instant::now();
        for _ in 0..20 {
            t += Duration::from_secs(10);
            p.throttled_at(t, None);
        }
        assert!((p.current() - 2.0).abs() < 1e-9, "floor is 1/16 of 32: {}", p.current());
        p.answered();
        assert!((p.current() - 3.0).abs() < 1e-9, "one answer gives back 1/32 of the ceiling: {}", p.current());
        for _ in 0..100 {
            p.answered();
        }
        assert!((p.current() - 32.0).abs() < 1e-9, "{}", p.current());
    }

    #[tokio::test]
    async fn a_budget_running_out_narrows_the_rate_down_to_the_floor() {
        let p = Pacer::new(Rate::per_second(16));
        p.usage(Usage { used: 700, limit: 1000 });
        assert!((p.current() - 16.0).abs() < 1e-9);
        p.usage(Usage { used: 900, limit: 1000 });
        assert!((p.current() - 8.5).abs() < 1e-9, "halfway from high water: {}", p.current());
        p.usage(Usage { used: 1000, limit: 1000 });
        assert!((p.current() - 1.0).abs() < 1e-9, "{}", p.current());
        p.usage(Usage { used: 10, limit: 1000 });
        assert!((p.current() - 16.0).abs() < 1e-9);
    }

    #[test]
    fn pacing_published_uses_the_system_rate_an_override_replaces_it_and_off_disables_it() {
        let published = Rate::per_minute(180);
        assert_eq!(Pacing::default().rate(published), Some(published));
        assert_eq!(Pacing::At(Rate::per_second(50)).rate(published), Some(Rate::per_second(50)));
        assert_eq!(Pacing::Off.rate(published), None);
        assert!((published.per_second_f64() - 3.0).abs() < 1e-9);
    }

    #[test]
    fn a_connection_is_paced_one_request_per_window_below_the_vendor_limit() {
        assert_eq!(Rate::per_second(20).with_headroom(), Rate::per_second(19));
        assert_eq!(Rate::per_minute(180).with_headroom(), Rate::per_minute(179));
        assert_eq!(Rate::per_second(1).with_headroom(), Rate::per_second(1), "a limit of one stays one");
        let pacer = shared(System::Halo, "https://headroom.halopsa.com", Rate::per_second(20));
        assert!((pacer.ceiling() - 19.0).abs() < 1e-9, "{}", pacer.ceiling());
    }

    #[tokio::test]
    async fn connectors_of_the_same_connection_share_one_bucket_and_others_get_their_own() {
        let a = shared(System::Syncro, "https://acme.syncromsp.com/api/v1", Rate::per_minute(180));
        let b = shared(System::Syncro, "https://acme.syncromsp.com/api/v1", Rate::per_minute(180));
        let c = shared(System::Syncro, "https://other.syncromsp.com/api/v1", Rate::per_minute(180));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
