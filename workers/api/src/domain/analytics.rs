//! Order analytics: the query strings of `GET /api/v1/admin/analytics/orders` and
//! `/top-skus`, parsed or refused naming the parameter, and the figures derived from the
//! sums the store reads (rates, average order value; the sums and percentiles are
//! `domain::rollup`'s). The definition of every figure is in
//! `docs/api.md` (Analytics); in short:
//!
//! - an order counts in the period (UTC day, or ISO week from Monday) of its `placed_at`;
//!   every figure is per currency (money is never added across currencies), and per store
//!   and channel when grouped by them;
//! - `orders`: placed in the period; `cancelled`: of those, cancelled as a whole;
//!   revenue (`gross`, `tax`, `net` = gross − tax) and `average_order_value` (gross ÷
//!   orders not cancelled, to the cent) are of the orders not cancelled, as placed;
//! - rates are a count divided by `orders`, to four decimals;
//! - durations are whole seconds, and p50/p90 are nearest-rank percentiles (the smallest
//!   value with at least that share of the values at or below it) of the orders that have
//!   both ends of the duration, reported to six binary digits (`domain::rollup`).

use chrono::{Days, NaiveDate, Utc};
use orderly_contracts::types::{Channel, StoreId};
use rust_decimal::{Decimal, RoundingStrategy};
use schemars::{Schema, SchemaGenerator, json_schema};

use super::query::{BadParameter, Parameter, list_of, recognise};

/// The longest period one request may cover.
pub(crate) const MAX_DAYS: u64 = 366;
/// Days covered when `from` is not given (up to `to`, inclusive).
pub(crate) const DEFAULT_DAYS: u64 = 30;
/// When an order counts as shipped late, unless `late_after_hours` says.
pub(crate) const DEFAULT_LATE_AFTER_HOURS: u32 = 48;
/// Products listed by `top-skus` unless `limit` says.
pub(crate) const DEFAULT_TOP: u16 = 10;
/// The most products `top-skus` lists.
pub(crate) const MAX_TOP: u16 = 100;

/// The length of a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interval {
    Day,
    Week,
}

impl Interval {
    /// PostgreSQL's `date_trunc` field.
    pub(crate) const fn trunc(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
        }
    }

    pub(crate) const fn as_str(self) -> &'static str {
        self.trunc()
    }
}

/// What the figures are grouped by besides the period and currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Dimension {
    Store,
    Channel,
}

impl Dimension {
    /// Its name in `group`.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Channel => "channel",
        }
    }
}

/// An analytics request, parsed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AnalyticsQuery {
    /// First day (UTC), inclusive.
    pub(crate) from: NaiveDate,
    /// Last day (UTC), inclusive.
    pub(crate) to: NaiveDate,
    pub(crate) interval: Interval,
    pub(crate) group: Vec<Dimension>,
    /// Only these stores (none: every store the caller sees).
    pub(crate) stores: Vec<String>,
    pub(crate) channels: Vec<Channel>,
    pub(crate) late_after_hours: u32,
    /// Products listed (`top-skus`).
    pub(crate) limit: u16,
}

/// A parameter of the analytics endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param {
    From,
    To,
    Interval,
    Group,
    Store,
    Channel,
    LateAfterHours,
    Limit,
}

impl Param {
    /// The parameters of `analytics/orders`.
    pub(crate) const ORDERS: [Param; 7] = [
        Self::From,
        Self::To,
        Self::Interval,
        Self::Group,
        Self::Store,
        Self::Channel,
        Self::LateAfterHours,
    ];

    /// The parameters of `analytics/top-skus`.
    pub(crate) const TOP: [Param; 5] = [
        Self::From,
        Self::To,
        Self::Store,
        Self::Channel,
        Self::Limit,
    ];

    const fn name(self) -> &'static str {
        match self {
            Self::From => "from",
            Self::To => "to",
            Self::Interval => "interval",
            Self::Group => "group",
            Self::Store => "store",
            Self::Channel => "channel",
            Self::LateAfterHours => "late_after_hours",
            Self::Limit => "limit",
        }
    }

    /// How the OpenAPI document describes it.
    pub(crate) fn doc(self) -> Parameter {
        let (description, schema): (&'static str, fn(&mut SchemaGenerator) -> Schema) = match self {
            Self::From => (
                "First day (UTC, `YYYY-MM-DD`), inclusive; 29 days before `to` when left out.",
                day,
            ),
            Self::To => (
                "Last day (UTC, `YYYY-MM-DD`), inclusive; today when left out. At most 366 \
                 days from `from`.",
                day,
            ),
            Self::Interval => ("`day` (default) or `week` (ISO, from Monday).", interval),
            Self::Group => (
                "Also group by `store` and/or `channel` (a comma list); the period and the \
                 currency always group.",
                group,
            ),
            Self::Store => (
                "Only orders of these stores (repeat it or give a comma list).",
                list_of::<StoreId>,
            ),
            Self::Channel => (
                "Only orders from these channels (repeat it or give a comma list).",
                list_of::<Channel>,
            ),
            Self::LateAfterHours => (
                "An order not shipped this many hours after it was placed is late (48).",
                late,
            ),
            Self::Limit => ("Products listed (10, at most 100).", top),
        };
        Parameter {
            name: self.name(),
            description,
            schema,
        }
    }
}

fn day(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "format": "date" })
}

fn interval(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "enum": ["day", "week"], "default": "day" })
}

fn group(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "array", "items": { "type": "string", "enum": ["store", "channel"] } })
}

fn late(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "integer", "minimum": 1, "maximum": 8760, "default": 48 })
}

fn top(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "integer", "minimum": 1, "maximum": MAX_TOP, "default": DEFAULT_TOP })
}

/// Parses the query string of an endpoint that takes `allowed`; `today` is the default
/// `to`.
pub(crate) fn parse(
    pairs: &[(String, String)],
    allowed: &[Param],
    today: NaiveDate,
) -> Result<AnalyticsQuery, BadParameter> {
    let mut from = None;
    let mut to = None;
    let mut q = AnalyticsQuery {
        from: today,
        to: today,
        interval: Interval::Day,
        group: Vec::new(),
        stores: Vec::new(),
        channels: Vec::new(),
        late_after_hours: DEFAULT_LATE_AFTER_HOURS,
        limit: DEFAULT_TOP,
    };
    let repeatable = |p| matches!(p, Param::Store | Param::Channel | Param::Group);
    for (param, name, value) in recognise(pairs, allowed, Param::name, repeatable, "this takes")? {
        let items = || value.split(',').map(str::trim).filter(|s| !s.is_empty());
        match param {
            Param::From => from = Some(date(name, value)?),
            Param::To => to = Some(date(name, value)?),
            Param::Interval => {
                q.interval = match value {
                    "day" => Interval::Day,
                    "week" => Interval::Week,
                    other => {
                        return Err(BadParameter::new(
                            name,
                            format!("`{other}` is not `day` or `week`"),
                        ));
                    }
                };
            }
            Param::Group => {
                for item in items() {
                    let dim = match item {
                        "store" => Dimension::Store,
                        "channel" => Dimension::Channel,
                        other => {
                            return Err(BadParameter::new(
                                name,
                                format!("`{other}` is not `store` or `channel`"),
                            ));
                        }
                    };
                    if !q.group.contains(&dim) {
                        q.group.push(dim);
                    }
                }
            }
            Param::Store => {
                for item in items() {
                    let store =
                        StoreId::parse(item).map_err(|e| BadParameter::new(name, e.to_string()))?;
                    q.stores.push(store.as_str().to_owned());
                }
            }
            Param::Channel => {
                for item in items() {
                    q.channels.push(item.parse().map_err(
                        |e: orderly_contracts::types::InvalidValue| {
                            BadParameter::new(name, e.to_string())
                        },
                    )?);
                }
            }
            Param::LateAfterHours => {
                q.late_after_hours = value
                    .parse()
                    .ok()
                    .filter(|h| (1..=8760).contains(h))
                    .ok_or_else(|| {
                        BadParameter::new(name, format!("`{value}` is not 1 to 8760 hours"))
                    })?;
            }
            Param::Limit => {
                q.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_TOP).contains(n))
                    .ok_or_else(|| {
                        BadParameter::new(name, format!("`{value}` is not 1 to {MAX_TOP}"))
                    })?;
            }
        }
    }
    q.group.sort();
    q.to = to.unwrap_or(today);
    q.from = match from {
        Some(from) => from,
        None => {
            q.to.checked_sub_days(Days::new(DEFAULT_DAYS - 1))
                .unwrap_or(q.to)
        }
    };
    if q.from > q.to {
        return Err(BadParameter::new(
            "from",
            format!("{} is after `to` {}", q.from, q.to),
        ));
    }
    let days = (q.to - q.from).num_days() + 1;
    if days > i64::try_from(MAX_DAYS).unwrap_or(i64::MAX) {
        return Err(BadParameter::new(
            "to",
            format!("{days} days from `from`: at most {MAX_DAYS} per request"),
        ));
    }
    Ok(q)
}

pub(crate) fn date(name: &str, value: &str) -> Result<NaiveDate, BadParameter> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| BadParameter::new(name, format!("`{value}` is not a date (YYYY-MM-DD)")))
}

/// Today in UTC.
pub(crate) fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// `part` of `whole`, to four decimals; `None` when `whole` is 0.
pub(crate) fn rate(part: i64, whole: i64) -> Option<f64> {
    if whole <= 0 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let r = part as f64 / whole as f64;
    Some((r * 10_000.0).round() / 10_000.0)
}

/// `total` over `count` orders, to the cent (half away from zero); `None` for no orders.
pub(crate) fn average(total: Decimal, count: i64) -> Option<Decimal> {
    (count > 0).then(|| {
        (total / Decimal::from(count))
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::query::pairs;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn the_defaults_are_the_last_thirty_days_by_day() {
        let q = parse(&[], &Param::ORDERS, d("2026-12-06")).expect("parses");
        assert_eq!(q.from, d("2026-11-07"));
        assert_eq!(q.to, d("2026-12-06"));
        assert_eq!(q.interval, Interval::Day);
        assert_eq!(q.late_after_hours, 48);
    }

    #[test]
    fn parameters_are_parsed_and_refused_by_name() {
        let q = parse(
            &pairs(&[
                ("from", "2026-01-01"),
                ("to", "2026-03-31"),
                ("interval", "week"),
                ("group", "channel,store"),
                ("store", "shop-de,bol-nl"),
                ("channel", "marketplace"),
            ]),
            &Param::ORDERS,
            d("2026-12-06"),
        )
        .expect("parses");
        assert_eq!(q.group, [Dimension::Store, Dimension::Channel]);
        assert_eq!(q.stores, ["shop-de", "bol-nl"]);
        for (bad, field) in [
            (("from", "2026-13-01"), "from"),
            (("interval", "month"), "interval"),
            (("group", "sku"), "group"),
            (("late_after_hours", "0"), "late_after_hours"),
            (("limit", "5"), "limit"),
            (("store", "no spaces"), "store"),
        ] {
            let err = parse(&pairs(&[bad]), &Param::ORDERS, d("2026-12-06")).expect_err("refused");
            assert_eq!(err.field, field, "{bad:?}");
        }
        let err = parse(
            &pairs(&[("from", "2026-12-07")]),
            &Param::ORDERS,
            d("2026-12-06"),
        )
        .expect_err("after to");
        assert_eq!(err.field, "from");
        let err = parse(
            &pairs(&[("from", "2024-01-01"), ("to", "2026-01-01")]),
            &Param::ORDERS,
            d("2026-12-06"),
        )
        .expect_err("too long");
        assert_eq!(err.field, "to");
        let top = parse(&pairs(&[("limit", "5")]), &Param::TOP, d("2026-12-06")).expect("ok");
        assert_eq!(top.limit, 5);
    }

    #[test]
    fn rates_and_averages_are_rounded_as_documented() {
        assert_eq!(rate(1, 3), Some(0.3333));
        assert_eq!(rate(2, 3), Some(0.6667));
        assert_eq!(rate(0, 0), None);
        assert_eq!(
            average(Decimal::new(1000, 2), 3),
            Some(Decimal::new(333, 2))
        );
        assert_eq!(
            average(Decimal::new(1001, 2), 2),
            Some(Decimal::new(501, 2))
        );
        assert_eq!(average(Decimal::ZERO, 0), None);
    }
}
