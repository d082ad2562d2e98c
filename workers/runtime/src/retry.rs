//! Backoff schedules, all built with `backon` (see `docs/decisions/0001-backon.md`).
//!
//! - Message retries: exponential from `initial_delay_ms`, doubling, capped at
//!   `max_delay_ms`, with jitter so a burst of failures does not come back as a burst.
//! - Reconnects (broker, database): from 100 ms up to 10 s, forever, with jitter.
//! - Outbox rows the broker did not accept: from 1 s up to 5 min.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::config::RetrySettings;

/// When to retry a message that failed transiently, and when to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Handling attempts in all, the first included.
    pub max_attempts: u32,
    /// First retry delay.
    pub initial_delay: Duration,
    /// Cap on any delay.
    pub max_delay: Duration,
}

impl From<&RetrySettings> for RetryPolicy {
    fn from(s: &RetrySettings) -> Self {
        Self {
            max_attempts: s.max_attempts,
            initial_delay: Duration::from_millis(s.initial_delay_ms),
            max_delay: Duration::from_millis(s.max_delay_ms.max(s.initial_delay_ms)),
        }
    }
}

impl RetryPolicy {
    /// How many delay queues the budget needs: one per distinct delay step. Attempts whose
    /// delay has reached the cap all wait the same time, so they share the last queue, and
    /// the number of queues does not grow with `max_attempts`.
    pub fn delay_queues(&self) -> u32 {
        let retries = self.max_attempts.saturating_sub(1);
        if retries == 0 {
            return 0;
        }
        let mut steps = 1;
        let mut delay = self.initial_delay;
        while delay < self.max_delay && steps < retries {
            delay = delay.saturating_mul(2);
            steps += 1;
        }
        steps
    }

    /// The delay queue (1-based) that holds a message waiting for attempt `next_attempt` (≥ 2).
    pub fn delay_queue_for(&self, next_attempt: u32) -> u32 {
        next_attempt
            .saturating_sub(1)
            .clamp(1, self.delay_queues().max(1))
    }

    /// What to do after attempt `attempt` failed transiently: `Some(delay)` before the next
    /// attempt, or `None` when the budget is spent.
    pub fn next_delay(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let mut schedule = ExponentialBuilder::default()
            .with_min_delay(self.initial_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build();
        let base = schedule
            .nth(attempt.saturating_sub(1) as usize)
            .unwrap_or(self.max_delay);
        Some(base.min(self.max_delay))
    }
}

/// The reconnect schedule for broker and database sessions.
pub fn reconnect_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(10))
        .with_jitter()
        .without_max_times()
        .build()
}

/// Delay before publishing an outbox row again after its `attempts`-th failure.
pub fn outbox_retry_delay(attempts: i32) -> Duration {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(Duration::from_secs(300))
        .without_max_times()
        .build()
        .nth(attempts.max(0) as usize)
        .unwrap_or(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1_000),
        }
    }

    #[test]
    fn budget_is_exact() {
        let p = policy();
        for attempt in 1..5 {
            assert!(
                p.next_delay(attempt).is_some(),
                "attempt {attempt} should be retried"
            );
        }
        assert_eq!(p.next_delay(5), None);
        assert_eq!(p.next_delay(6), None);
    }

    #[test]
    fn delays_grow_within_jitter_and_respect_the_cap() {
        let p = policy();
        for _ in 0..200 {
            let first = p.next_delay(1).expect("retry");
            assert!(
                first >= Duration::from_millis(100) && first <= Duration::from_millis(200),
                "{first:?}"
            );
            let third = p.next_delay(3).expect("retry");
            assert!(
                third >= Duration::from_millis(400) && third <= Duration::from_millis(1_000),
                "{third:?}"
            );
            assert!(p.next_delay(4).expect("retry") <= Duration::from_millis(1_000));
        }
    }

    #[test]
    fn attempts_past_the_cap_share_one_delay_queue() {
        let p = policy(); // 100 ms doubling to a 1 s cap: 100, 200, 400, 800, 1000
        assert_eq!(p.delay_queues(), 4, "five attempts need four retries");
        let long = RetryPolicy {
            max_attempts: 30,
            ..policy()
        };
        assert_eq!(
            long.delay_queues(),
            5,
            "100, 200, 400, 800, then the 1 s cap"
        );
        assert_eq!(long.delay_queue_for(2), 1);
        assert_eq!(long.delay_queue_for(6), 5);
        assert_eq!(long.delay_queue_for(30), 5);
        let once = RetryPolicy {
            max_attempts: 1,
            ..policy()
        };
        assert_eq!(once.delay_queues(), 0);
        // Every attempt that lands in the shared queue waits exactly the cap: no message
        // there can wait behind a longer one.
        for attempt in 5..30 {
            assert_eq!(long.next_delay(attempt), Some(Duration::from_millis(1_000)));
        }
    }

    #[test]
    fn outbox_delays_grow_and_cap() {
        assert_eq!(outbox_retry_delay(0), Duration::from_secs(1));
        assert_eq!(outbox_retry_delay(1), Duration::from_secs(2));
        assert_eq!(outbox_retry_delay(50), Duration::from_secs(300));
    }
}
