//! The analytics rollups: an order's facts as its share of the sums per day and per ISO
//! week, store, channel and currency (`order_rollups`, `sku_rollups`), and those sums merged
//! back into the figures a request asks for.
//!
//! The projection reads an order's facts before and after an event and adds the difference
//! ([`Changes`]); a request merges the rows of its range ([`Sums::merge`]). Durations are
//! [`Histogram`]s, which add up where percentiles would not: a bucket holds the whole seconds
//! that share their first six binary digits ([`bucket_of`]), so a duration below 64 s is
//! exact and a bucket is at most 1/32 of its smallest value wide; a percentile is the
//! smallest value of the bucket the nearest-rank percentile falls in ([`bucket_floor`]).
//! `api.duration_bucket` in the migration that made the tables is the same function in SQL
//! (the rebuild uses it; the tests check that the running sums equal a rebuild).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use rust_decimal::Decimal;

/// Durations below this many seconds have a bucket each.
const EXACT_BELOW: i64 = 64;
/// Buckets per doubling above [`EXACT_BELOW`].
const PER_OCTAVE: i64 = 32;

/// The bucket of a duration of `seconds` whole seconds (negative, clock skew: 0).
pub(crate) fn bucket_of(seconds: i64) -> i32 {
    if seconds < EXACT_BELOW {
        return i32::try_from(seconds.max(0)).unwrap_or(0);
    }
    // The position of the leading one: 6 for 64..=127.
    let e = i64::from(63 - seconds.leading_zeros());
    let mantissa = seconds >> (e - 5);
    i32::try_from(EXACT_BELOW + (e - 6) * PER_OCTAVE + (mantissa - PER_OCTAVE)).unwrap_or(i32::MAX)
}

/// The smallest duration in `bucket`, in whole seconds.
pub(crate) fn bucket_floor(bucket: i32) -> i64 {
    let b = i64::from(bucket);
    if b < EXACT_BELOW {
        return b.max(0);
    }
    let e = (b - EXACT_BELOW) / PER_OCTAVE + 6;
    let mantissa = (b - EXACT_BELOW) % PER_OCTAVE + PER_OCTAVE;
    mantissa << (e - 5)
}

/// A duration of `seconds` in whole hours, rounded up (0 for none or negative): an order is
/// late after `h` hours when this is more than `h`.
pub(crate) fn hours_of(seconds: i64) -> i32 {
    i32::try_from((seconds.max(0) + 3599) / 3600).unwrap_or(i32::MAX)
}

/// Whole seconds from `from` to `to` (rounded down), when both are known.
fn seconds(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Option<i64> {
    let d = to? - from?;
    let s = d.num_seconds();
    // `num_seconds` rounds towards zero; whole seconds are rounded down.
    Some(if d < chrono::Duration::seconds(s) {
        s - 1
    } else {
        s
    })
}

/// Counts per key (a duration's bucket, or hours). A stored one has only positive counts; a
/// difference ([`Changes`]) may have negative ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Histogram(BTreeMap<i32, i64>);

/// A histogram as stored was not key, count pairs in key order, or a sum went below zero:
/// the rollups disagree with the facts (`rebuild_order_rollups` recomputes them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("analytics rollup: {0}")]
pub(crate) struct Corrupt(pub(crate) String);

impl Histogram {
    /// From stored key, count pairs (`None`: empty).
    pub(crate) fn from_pairs(pairs: Option<&[i32]>) -> Result<Self, Corrupt> {
        let mut h = Self::default();
        let pairs = pairs.unwrap_or_default();
        if !pairs.len().is_multiple_of(2) {
            return Err(Corrupt(format!("{} numbers are not pairs", pairs.len())));
        }
        for pair in pairs.chunks_exact(2) {
            if pair[1] <= 0 || h.0.insert(pair[0], i64::from(pair[1])).is_some() {
                return Err(Corrupt(format!("pair {pair:?} repeated or not positive")));
            }
        }
        Ok(h)
    }

    /// As stored (`None`: empty); refuses a negative count.
    pub(crate) fn to_pairs(&self) -> Result<Option<Vec<i32>>, Corrupt> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(self.0.len() * 2);
        for (&key, &n) in &self.0 {
            let n = i32::try_from(n)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| Corrupt(format!("count {n} of {key}")))?;
            out.extend([key, n]);
        }
        Ok(Some(out))
    }

    fn add(&mut self, key: i32, n: i64) {
        let count = self.0.entry(key).or_default();
        *count += n;
        if *count == 0 {
            self.0.remove(&key);
        }
    }

    /// Adds every count of `other`.
    pub(crate) fn merge(&mut self, other: &Self) {
        for (&key, &n) in &other.0 {
            self.add(key, n);
        }
    }

    fn total(&self) -> i64 {
        self.0.values().sum()
    }

    /// The nearest-rank percentile `tenths`/10 (the smallest key with at least that share of
    /// the counts at or below it), `None` when empty.
    fn percentile(&self, tenths: i64) -> Option<i32> {
        let n = self.total();
        if n <= 0 {
            return None;
        }
        let rank = ((n * tenths + 9) / 10).max(1);
        let mut seen = 0;
        for (&key, &count) in &self.0 {
            seen += count;
            if seen >= rank {
                return Some(key);
            }
        }
        None
    }

    /// p50 and p90 of a duration histogram, in whole seconds (each the smallest value of its
    /// bucket).
    pub(crate) fn p50_p90(&self) -> (Option<i64>, Option<i64>) {
        (
            self.percentile(5).map(bucket_floor),
            self.percentile(9).map(bucket_floor),
        )
    }

    /// The counts of keys above `key`.
    pub(crate) fn above(&self, key: i32) -> i64 {
        self.0.range(key.saturating_add(1)..).map(|(_, n)| n).sum()
    }
}

/// Which rollup: of a UTC day, or of an ISO week (from Monday).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    Day,
    Week,
}

impl Kind {
    pub(crate) const fn code(self) -> &'static str {
        match self {
            Self::Day => "d",
            Self::Week => "w",
        }
    }

    pub(crate) fn parse(code: &str) -> Result<Self, Corrupt> {
        match code {
            "d" => Ok(Self::Day),
            "w" => Ok(Self::Week),
            other => Err(Corrupt(format!("kind `{other}`"))),
        }
    }
}

/// The Monday of `day`'s ISO week.
pub(crate) fn week_of(day: NaiveDate) -> NaiveDate {
    day - Days::new(u64::from(day.weekday().num_days_from_monday()))
}

/// A rollup row's key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Key {
    pub(crate) kind: Kind,
    pub(crate) period: NaiveDate,
    pub(crate) store_id: String,
    /// `""`: no channel.
    pub(crate) channel: String,
    pub(crate) currency: String,
}

/// The sums of a group of orders (or, as a difference, what they change by).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Sums {
    pub(crate) orders: i64,
    pub(crate) cancelled: i64,
    pub(crate) gross: Decimal,
    pub(crate) tax: Decimal,
    pub(crate) exceptions: i64,
    pub(crate) backordered: i64,
    pub(crate) resolve: Histogram,
    pub(crate) serve: Histogram,
    pub(crate) shipped: Histogram,
    pub(crate) shipped_to_delivered: Histogram,
    pub(crate) delivered: Histogram,
    /// Orders not cancelled and shipped, by [`hours_of`] their placed → shipped.
    pub(crate) ship_hours: Histogram,
}

impl Sums {
    /// Adds `other` to these.
    pub(crate) fn merge(&mut self, other: &Self) {
        self.orders += other.orders;
        self.cancelled += other.cancelled;
        self.gross += other.gross;
        self.tax += other.tax;
        self.exceptions += other.exceptions;
        self.backordered += other.backordered;
        self.resolve.merge(&other.resolve);
        self.serve.merge(&other.serve);
        self.shipped.merge(&other.shipped);
        self.shipped_to_delivered.merge(&other.shipped_to_delivered);
        self.delivered.merge(&other.delivered);
        self.ship_hours.merge(&other.ship_hours);
    }

    /// One order's share (`sign` 1) or its removal (`sign` -1).
    fn of(f: &Facts, sign: i64) -> Self {
        let mut s = Self {
            orders: sign,
            cancelled: sign * i64::from(f.cancelled),
            exceptions: sign * i64::from(f.exception),
            backordered: sign * i64::from(f.backordered_at.is_some()),
            ..Self::default()
        };
        if !f.cancelled {
            let d = Decimal::from(sign);
            s.gross = f.gross * d;
            s.tax = f.tax.unwrap_or_default() * d;
        }
        let placed = Some(f.placed_at);
        for (h, from, to) in [
            (&mut s.resolve, placed, f.resolved_at),
            (&mut s.serve, f.backordered_at, f.served_at),
            (&mut s.shipped, placed, f.shipped_at),
            (&mut s.shipped_to_delivered, f.shipped_at, f.delivered_at),
            (&mut s.delivered, placed, f.delivered_at),
        ] {
            if let Some(d) = seconds(from, to) {
                h.add(bucket_of(d), sign);
            }
        }
        if !f.cancelled
            && let Some(d) = seconds(placed, f.shipped_at)
        {
            s.ship_hours.add(hours_of(d), sign);
        }
        s
    }

    /// No order, and nothing else: a row to delete.
    pub(crate) fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Refuses what only a disagreement with the facts can make: a count below zero.
    pub(crate) fn check(&self) -> Result<(), Corrupt> {
        let counts = [
            self.orders,
            self.cancelled,
            self.exceptions,
            self.backordered,
        ];
        if counts.iter().any(|n| *n < 0) || self.cancelled > self.orders {
            return Err(Corrupt(format!("counts {counts:?}")));
        }
        Ok(())
    }
}

/// An order's facts (`order_facts`), as the rollups need them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Facts {
    pub(crate) store_id: String,
    pub(crate) channel: Option<String>,
    pub(crate) currency: String,
    pub(crate) placed_at: DateTime<Utc>,
    pub(crate) gross: Decimal,
    pub(crate) tax: Option<Decimal>,
    pub(crate) cancelled: bool,
    pub(crate) exception: bool,
    pub(crate) resolved_at: Option<DateTime<Utc>>,
    pub(crate) backordered_at: Option<DateTime<Utc>>,
    pub(crate) served_at: Option<DateTime<Utc>>,
    pub(crate) shipped_at: Option<DateTime<Utc>>,
    pub(crate) delivered_at: Option<DateTime<Utc>>,
}

impl Facts {
    /// The keys of its day's and its week's rows.
    fn keys(&self) -> [Key; 2] {
        let day = self.placed_at.date_naive();
        let key = |kind, period| Key {
            kind,
            period,
            store_id: self.store_id.clone(),
            channel: self.channel.clone().unwrap_or_default(),
            currency: self.currency.clone(),
        };
        [key(Kind::Day, day), key(Kind::Week, week_of(day))]
    }
}

/// One line of an order's facts (`order_fact_lines`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FactLine {
    pub(crate) sku: String,
    pub(crate) quantity: i64,
    pub(crate) amount: Decimal,
}

/// What a product sold in one rollup row (or, as a difference, what that changes by).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SkuSums {
    pub(crate) units: i64,
    pub(crate) orders: i64,
    pub(crate) revenue: Decimal,
}

/// An order as the rollups saw it: its facts and lines (`None`: no facts yet).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct OrderFacts {
    pub(crate) facts: Option<Facts>,
    pub(crate) lines: Vec<FactLine>,
}

/// What the rollups change by: per row, the difference of the orders' facts.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    pub(crate) orders: BTreeMap<Key, Sums>,
    pub(crate) skus: BTreeMap<(Key, String), SkuSums>,
}

impl Changes {
    /// Adds the difference `after` − `before` of one order.
    pub(crate) fn add(&mut self, before: &OrderFacts, after: &OrderFacts) {
        if before == after {
            return;
        }
        for (o, sign) in [(before, -1), (after, 1)] {
            let Some(facts) = &o.facts else { continue };
            let share = Sums::of(facts, sign);
            for key in facts.keys() {
                self.orders.entry(key).or_default().merge(&share);
            }
            if facts.cancelled {
                continue;
            }
            let skus: BTreeSet<&str> = o.lines.iter().map(|l| l.sku.as_str()).collect();
            for key in facts.keys() {
                for line in &o.lines {
                    let s = self
                        .skus
                        .entry((key.clone(), line.sku.clone()))
                        .or_default();
                    s.units += sign * line.quantity;
                    s.revenue += line.amount * Decimal::from(sign);
                }
                for sku in &skus {
                    let s = self
                        .skus
                        .entry((key.clone(), (*sku).to_owned()))
                        .or_default();
                    s.orders += sign;
                }
            }
        }
        self.orders.retain(|_, s| !s.is_empty());
        self.skus.retain(|_, s| *s != SkuSums::default());
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.orders.is_empty() && self.skus.is_empty()
    }
}

/// The rows a range of days reads: ISO weeks wholly inside it from the week rows, the days
/// of the weeks it cuts from the day rows (`by_day`: every day from the day rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cover {
    /// Mondays of the whole weeks (inclusive), if any.
    pub(crate) weeks: Option<(NaiveDate, NaiveDate)>,
    /// Ranges of days (inclusive).
    pub(crate) days: Vec<(NaiveDate, NaiveDate)>,
}

impl Cover {
    pub(crate) fn of(from: NaiveDate, to: NaiveDate, by_day: bool) -> Self {
        let first_monday = {
            let w = week_of(from);
            if w == from { w } else { w + Days::new(7) }
        };
        // The Monday after the last whole week.
        let end_monday = week_of(to + Days::new(1));
        if by_day || first_monday >= end_monday {
            return Self {
                weeks: None,
                days: vec![(from, to)],
            };
        }
        let mut days = Vec::new();
        if from < first_monday {
            days.push((from, first_monday - Days::new(1)));
        }
        if end_monday <= to {
            days.push((end_monday, to));
        }
        Self {
            weeks: Some((first_monday, end_monday - Days::new(7))),
            days,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    fn facts(placed: &str) -> Facts {
        Facts {
            store_id: "shop-de".into(),
            channel: Some("storefront".into()),
            currency: "EUR".into(),
            placed_at: at(placed),
            gross: Decimal::new(11900, 2),
            tax: Some(Decimal::new(1900, 2)),
            cancelled: false,
            exception: false,
            resolved_at: None,
            backordered_at: None,
            served_at: None,
            shipped_at: None,
            delivered_at: None,
        }
    }

    #[test]
    fn buckets_are_exact_below_64_seconds_and_at_most_a_32nd_wide_above() {
        for s in 0..64 {
            assert_eq!(bucket_floor(bucket_of(s)), s);
        }
        assert_eq!(bucket_of(-5), 0);
        // The same values as `api.duration_bucket` in SQL.
        for (s, b) in [
            (64, 64),
            (65, 64),
            (66, 65),
            (127, 95),
            (128, 96),
            (131, 96),
            (132, 97),
            (255, 127),
            (256, 128),
            (3600, 248),
            (72_000, 387),
            (i64::MAX, 1887),
        ] {
            assert_eq!(bucket_of(s), b, "{s}");
        }
        let mut last = 0;
        for s in (0..10_000_000).step_by(997) {
            let b = bucket_of(s);
            let floor = bucket_floor(b);
            assert!(b >= last, "monotonic at {s}");
            last = b;
            assert!(
                floor <= s && (s - floor) * 32 <= floor.max(1),
                "{s} in {floor}"
            );
            assert_eq!(bucket_of(floor), b, "the floor is in its bucket");
        }
    }

    #[test]
    fn hours_round_up_so_late_means_more_than_the_hours() {
        assert_eq!(hours_of(0), 0);
        assert_eq!(hours_of(-1), 0);
        assert_eq!(hours_of(1), 1);
        assert_eq!(hours_of(3600), 1);
        assert_eq!(hours_of(3601), 2);
        let mut h = Histogram::default();
        for s in [3600, 3601, 7200, 10_000] {
            h.add(hours_of(s), 1);
        }
        // More than one hour: 3601, 7200, 10000.
        assert_eq!(h.above(1), 3);
        assert_eq!(h.above(2), 1);
    }

    #[test]
    fn percentiles_are_nearest_rank_over_the_buckets() {
        let mut h = Histogram::default();
        for s in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] {
            h.add(bucket_of(s), 1);
        }
        assert_eq!(h.p50_p90(), (Some(5), Some(9)));
        let mut one = Histogram::default();
        one.add(bucket_of(40), 1);
        assert_eq!(one.p50_p90(), (Some(40), Some(40)));
        assert_eq!(Histogram::default().p50_p90(), (None, None));
        // 3 values: p50 is the 2nd, p90 the 3rd.
        let mut three = Histogram::default();
        for s in [10, 20, 30] {
            three.add(bucket_of(s), 1);
        }
        assert_eq!(three.p50_p90(), (Some(20), Some(30)));
    }

    #[test]
    fn stored_pairs_round_trip_and_bad_ones_are_refused() {
        let h = Histogram::from_pairs(Some(&[3, 1, 5, 2])).expect("pairs");
        assert_eq!(h.to_pairs().expect("positive"), Some(vec![3, 1, 5, 2]));
        assert_eq!(
            Histogram::from_pairs(None).expect("empty").to_pairs(),
            Ok(None)
        );
        assert!(Histogram::from_pairs(Some(&[3])).is_err());
        assert!(Histogram::from_pairs(Some(&[3, 0])).is_err());
        assert!(Histogram::from_pairs(Some(&[3, 1, 3, 1])).is_err());
        let mut negative = Histogram::default();
        negative.add(4, -1);
        assert!(negative.to_pairs().is_err());
    }

    #[test]
    fn a_change_of_facts_moves_the_order_between_sums() {
        let before = OrderFacts {
            facts: Some(facts("2026-12-02T10:00:00Z")),
            lines: vec![
                FactLine {
                    sku: "A".into(),
                    quantity: 2,
                    amount: Decimal::new(2000, 2),
                },
                FactLine {
                    sku: "A".into(),
                    quantity: 1,
                    amount: Decimal::new(1000, 2),
                },
            ],
        };
        let mut shipped = before.clone();
        if let Some(f) = shipped.facts.as_mut() {
            f.shipped_at = Some(at("2026-12-02T13:00:30Z"));
        }
        // New: the order counts once in its day and once in its week (a Wednesday → Monday).
        let mut c = Changes::default();
        c.add(&OrderFacts::default(), &before);
        let week = Key {
            kind: Kind::Week,
            period: d("2026-11-30"),
            store_id: "shop-de".into(),
            channel: "storefront".into(),
            currency: "EUR".into(),
        };
        assert_eq!(c.orders.len(), 2);
        assert_eq!(c.orders[&week].orders, 1);
        assert_eq!(c.orders[&week].gross, Decimal::new(11900, 2));
        let sku = &c.skus[&(week.clone(), "A".to_owned())];
        assert_eq!((sku.units, sku.orders), (3, 1), "two lines, one order");
        assert_eq!(sku.revenue, Decimal::new(3000, 2));

        // Shipped: no order more, one placed → shipped duration, in hour 4.
        let mut c = Changes::default();
        c.add(&before, &shipped);
        let s = &c.orders[&week];
        assert_eq!((s.orders, s.gross), (0, Decimal::ZERO));
        assert_eq!(
            s.shipped.p50_p90().0,
            Some(bucket_floor(bucket_of(3 * 3600 + 30)))
        );
        assert_eq!(s.ship_hours.above(3), 1);
        assert!(c.skus.is_empty(), "the lines did not change");

        // Cancelled: out of revenue and the products, one cancellation.
        let mut cancelled = before.clone();
        if let Some(f) = cancelled.facts.as_mut() {
            f.cancelled = true;
        }
        let mut c = Changes::default();
        c.add(&before, &cancelled);
        let s = &c.orders[&week];
        assert_eq!((s.orders, s.cancelled), (0, 1));
        assert_eq!(s.gross, -Decimal::new(11900, 2));
        assert_eq!(c.skus[&(week, "A".to_owned())].orders, -1);

        // Nothing changed: nothing to write.
        let mut c = Changes::default();
        c.add(&before, &before);
        assert!(c.is_empty());
    }

    #[test]
    fn sums_merge_and_a_negative_count_is_refused() {
        let mut c = Changes::default();
        c.add(
            &OrderFacts::default(),
            &OrderFacts {
                facts: Some(facts("2026-12-02T10:00:00Z")),
                lines: Vec::new(),
            },
        );
        let mut total = Sums::default();
        for s in c.orders.values() {
            total.merge(s);
        }
        assert_eq!(total.orders, 2, "a day and a week");
        total.check().expect("fine");
        total.merge(&Sums {
            orders: -3,
            ..Sums::default()
        });
        assert!(total.check().is_err());
    }

    #[test]
    fn a_range_reads_whole_weeks_from_week_rows_and_the_rest_from_days() {
        // 2026-11-01 is a Sunday; 2026-11-30 a Monday.
        let c = Cover::of(d("2026-11-01"), d("2026-11-30"), false);
        assert_eq!(c.weeks, Some((d("2026-11-02"), d("2026-11-23"))));
        assert_eq!(
            c.days,
            vec![
                (d("2026-11-01"), d("2026-11-01")),
                (d("2026-11-30"), d("2026-11-30"))
            ]
        );
        // Exactly whole weeks: no days.
        let c = Cover::of(d("2026-11-02"), d("2026-11-15"), false);
        assert_eq!(c.weeks, Some((d("2026-11-02"), d("2026-11-09"))));
        assert!(c.days.is_empty());
        // No whole week inside: days only; by day: days only.
        let c = Cover::of(d("2026-11-04"), d("2026-11-09"), false);
        assert_eq!(c.weeks, None);
        assert_eq!(c.days, vec![(d("2026-11-04"), d("2026-11-09"))]);
        let c = Cover::of(d("2026-11-01"), d("2026-11-30"), true);
        assert_eq!(c.weeks, None);
    }

    #[test]
    fn whole_seconds_round_down() {
        let a = at("2026-12-02T10:00:00Z");
        assert_eq!(
            seconds(Some(a), Some(at("2026-12-02T10:00:01.9Z"))),
            Some(1)
        );
        assert_eq!(
            seconds(Some(a), Some(at("2026-12-02T09:59:59.5Z"))),
            Some(-1)
        );
        assert_eq!(seconds(Some(a), None), None);
    }
}
