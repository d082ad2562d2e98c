//! The SLA clock: how long a setup has been in its stage, in business hours, not counting
//! the time it waited for the client or was on hold.
//!
//! Business hours are Monday to Friday, 09:00 to 17:00 UTC (an assumption until stores
//! carry their time zone and holidays; `docs/setups.md`). A stage's clock starts at zero
//! when the setup enters the stage (also when it comes back to it), runs while the setup is
//! in intake review, in progress or in QA, and stops while it waits for the client (intake
//! form, approval) or is on hold. The stage is due when the clock reaches the stage's
//! `sla_business_hours`.

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc, Weekday};
use orderly_contracts::messages::SetupStatus;

use super::Setup;

/// When the working day starts and ends (UTC hours).
const OPEN_HOUR: u32 = 9;
const CLOSE_HOUR: u32 = 17;
const DAY_SECONDS: i64 = (CLOSE_HOUR - OPEN_HOUR) as i64 * 3600;

/// A stage's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Clock {
    /// Business seconds counted in this stage before `since`.
    pub(crate) spent: i64,
    /// Since when it runs (`None`: stopped).
    pub(crate) since: Option<DateTime<Utc>>,
}

/// Whether the clock runs in `status` (the agency's turn).
pub(crate) fn runs(status: SetupStatus) -> bool {
    matches!(
        status,
        SetupStatus::IntakeReview | SetupStatus::InProgress | SetupStatus::Qa
    )
}

impl Clock {
    /// The clock of a setup that just started in `status` at `at`.
    pub(crate) fn start(status: SetupStatus, at: DateTime<Utc>) -> Self {
        Self {
            spent: 0,
            since: runs(status).then_some(at),
        }
    }

    /// Business seconds counted by `at`.
    pub(crate) fn spent_at(&self, at: DateTime<Utc>) -> i64 {
        self.spent + self.since.map_or(0, |s| business_seconds(s, at))
    }

    /// The clock after `before` became `after` at `at`: back to zero in a new stage visit
    /// (another stage, or the same one come back to), running or stopped as `after`'s
    /// status says.
    pub(crate) fn after(&self, before: &Setup, after: &Setup, at: DateTime<Utc>) -> Self {
        Self {
            spent: if new_visit(before, after) {
                0
            } else {
                self.spent_at(at)
            },
            since: runs(after.status).then_some(at),
        }
    }

    /// When the stage is due, given its SLA, if the clock runs (already due: `since`).
    pub(crate) fn due(&self, sla_business_hours: u32) -> Option<DateTime<Utc>> {
        let since = self.since?;
        let left = i64::from(sla_business_hours) * 3600 - self.spent;
        Some(add_business_seconds(since, left.max(0)))
    }
}

/// Whether `after` is a new visit of a stage (another one, or the same one come back to):
/// its clock starts from zero and it may be overdue once more.
pub(crate) fn new_visit(before: &Setup, after: &Setup) -> bool {
    after.stage_index != before.stage_index || after.loops != before.loops
}

fn is_workday(t: DateTime<Utc>) -> bool {
    !matches!(t.weekday(), Weekday::Sat | Weekday::Sun)
}

fn at_hour(t: DateTime<Utc>, hour: u32) -> DateTime<Utc> {
    let time = NaiveTime::from_hms_opt(hour, 0, 0).unwrap_or(NaiveTime::MIN);
    Utc.from_utc_datetime(&t.date_naive().and_time(time))
}

fn next_day(t: DateTime<Utc>) -> DateTime<Utc> {
    at_hour(t, 0) + Duration::days(1)
}

/// Business seconds in `[from, to)` (0 when `to` is not after `from`).
pub(crate) fn business_seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    let mut total = 0;
    let mut day = from;
    while day < to {
        if is_workday(day) {
            let start = day.max(at_hour(day, OPEN_HOUR));
            let end = to.min(at_hour(day, CLOSE_HOUR));
            if end > start {
                total += (end - start).num_seconds();
            }
        }
        day = next_day(day);
    }
    total
}

/// The moment `seconds` business seconds after `from`.
pub(crate) fn add_business_seconds(from: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    let mut left = seconds.max(0);
    let mut t = from;
    // At most one step per day; a year of SLA is far beyond any template.
    for _ in 0..3660 {
        if is_workday(t) {
            let start = t.max(at_hour(t, OPEN_HOUR));
            let close = at_hour(t, CLOSE_HOUR);
            if start < close {
                let today = (close - start).num_seconds().min(DAY_SECONDS);
                if left <= today {
                    return start + Duration::seconds(left);
                }
                left -= today;
            }
        }
        t = next_day(t);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("a time")
    }

    #[test]
    fn business_time_counts_weekdays_nine_to_five() {
        // Friday 16:00 → Monday 10:00: one hour on Friday, one on Monday.
        assert_eq!(
            business_seconds(t("2026-12-04T16:00:00Z"), t("2026-12-07T10:00:00Z")),
            2 * 3600
        );
        // A whole week is five days of eight hours.
        assert_eq!(
            business_seconds(t("2026-12-07T00:00:00Z"), t("2026-12-14T00:00:00Z")),
            40 * 3600
        );
        // The night counts nothing.
        assert_eq!(
            business_seconds(t("2026-12-07T18:00:00Z"), t("2026-12-08T08:59:00Z")),
            0
        );
        assert_eq!(
            business_seconds(t("2026-12-08T10:00:00Z"), t("2026-12-07T10:00:00Z")),
            0
        );
    }

    #[test]
    fn adding_business_time_skips_nights_and_weekends() {
        // 16 business hours from Thursday 15:00: 2 h Thursday, 8 h Friday, 6 h Monday.
        assert_eq!(
            add_business_seconds(t("2026-12-03T15:00:00Z"), 16 * 3600),
            t("2026-12-07T15:00:00Z")
        );
        // From a Saturday, the clock starts on Monday at nine.
        assert_eq!(
            add_business_seconds(t("2026-12-05T12:00:00Z"), 3600),
            t("2026-12-07T10:00:00Z")
        );
        for (from, hours) in [("2026-12-03T15:00:00Z", 16), ("2026-12-05T12:00:00Z", 1)] {
            let due = add_business_seconds(t(from), hours * 3600);
            assert_eq!(business_seconds(t(from), due), hours * 3600);
        }
    }

    fn setup(status: SetupStatus, stage_index: usize) -> Setup {
        Setup {
            status,
            stage_index,
            held_from: None,
            loops: 0,
            submissions: 0,
        }
    }

    #[test]
    fn waiting_for_the_client_and_holds_are_not_counted() {
        // In progress Monday 09:00, SLA 16 h: due Tuesday 17:00.
        let work = setup(SetupStatus::InProgress, 1);
        let clock = Clock::start(work.status, t("2026-12-07T09:00:00Z"));
        assert_eq!(clock.due(16), Some(t("2026-12-08T17:00:00Z")));
        // On hold from Monday 13:00 (4 h spent) to Thursday 09:00: the clock stops...
        let mut held = work.clone();
        held.status = SetupStatus::OnHold;
        held.held_from = Some(SetupStatus::InProgress);
        let paused = clock.after(&work, &held, t("2026-12-07T13:00:00Z"));
        assert_eq!(
            (paused.spent, paused.since, paused.due(16)),
            (4 * 3600, None, None)
        );
        // ...and goes on from where it was: 12 h left from Thursday 09:00 → Friday 13:00.
        let running = paused.after(&held, &work, t("2026-12-10T09:00:00Z"));
        assert_eq!(running.due(16), Some(t("2026-12-11T13:00:00Z")));
        // The next stage starts from zero; waiting for the client stops it.
        let review = setup(SetupStatus::AwaitingClient, 2);
        let waiting = running.after(&work, &review, t("2026-12-10T10:00:00Z"));
        assert_eq!(waiting, Clock::default());
        // Back in the same stage after changes: a new visit, from zero.
        let mut again = work.clone();
        again.loops = 1;
        let back = waiting.after(&review, &again, t("2026-12-14T09:00:00Z"));
        assert_eq!(back.spent, 0);
        assert_eq!(back.due(1), Some(t("2026-12-14T10:00:00Z")));
    }

    #[test]
    fn a_stage_past_its_sla_is_due_at_once() {
        let clock = Clock {
            spent: 20 * 3600,
            since: Some(t("2026-12-07T09:00:00Z")),
        };
        assert_eq!(clock.due(16), Some(t("2026-12-07T09:00:00Z")));
    }
}
