//! The analytics page: orders per day (or week) as a bar chart drawn on the server in SVG
//! (no chart library, no script), with the figures beside it in a table (what a screen
//! reader reads, and what the chart is drawn from). The figures are the JSON API's
//! (`GET /api/v1/admin/analytics/orders`, its handler: the same parameters, scope and
//! definitions), summed over stores and channels for the chart.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::{
    extract::{RawQuery, State},
    http::StatusCode,
    response::Response,
};
use maud::{Markup, html};
use rust_decimal::Decimal;
use serde_json::Value;

use super::super::Api;
use super::super::analytics;
use super::super::orders::pairs;
use super::layout::{self, Section, money};
use super::{Signed, page_response, problem_page, unavailable};

/// One period's figures, summed over stores and channels.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Period {
    pub(crate) orders: i64,
    pub(crate) cancelled: i64,
    pub(crate) exceptions: i64,
    pub(crate) backordered: i64,
    pub(crate) late: i64,
    /// Gross revenue per currency.
    pub(crate) gross: BTreeMap<String, Decimal>,
    /// Lead time placed → delivered, p50 and p90 in seconds, when the period has one row
    /// (one currency: percentiles of several rows do not combine).
    pub(crate) lead: Option<(Option<i64>, Option<i64>)>,
    /// Rows summed into it.
    pub(crate) rows: usize,
}

impl Period {
    /// `part` as a percentage of the period's orders, one decimal (`None` without orders).
    pub(crate) fn rate(&self, part: i64) -> Option<Decimal> {
        (self.orders > 0).then(|| {
            (Decimal::from(part) * Decimal::ONE_HUNDRED / Decimal::from(self.orders)).round_dp(1)
        })
    }
}

/// The API's rows (`rows` of its answer) summed per period, in order.
pub(crate) fn per_period(rows: &[Value]) -> BTreeMap<String, Period> {
    let mut periods: BTreeMap<String, Period> = BTreeMap::new();
    for row in rows {
        let Some(period) = row["period"].as_str() else {
            continue;
        };
        let p = periods.entry(period.to_owned()).or_default();
        let n = |k: &str| row[k].as_i64().unwrap_or(0);
        p.orders += n("orders");
        p.cancelled += n("cancelled");
        p.exceptions += n("exceptions");
        p.backordered += n("backordered");
        p.late += n("late_shipments");
        p.rows += 1;
        let lead = &row["lead_time_seconds"]["placed_to_delivered"];
        p.lead = (p.rows == 1).then(|| (lead["p50"].as_i64(), lead["p90"].as_i64()));
        if let (Some(currency), Some(gross)) = (
            row["currency"].as_str(),
            row["revenue"]["gross"]
                .as_str()
                .and_then(|g| g.parse::<Decimal>().ok()),
        ) {
            *p.gross.entry(currency.to_owned()).or_default() += gross;
        }
    }
    periods
}

/// The bars of the chart: by day, every day from `from` to `to` (the API leaves days
/// without orders out; the chart shows them as empty); by week, the weeks the API gave.
pub(crate) fn bars(
    periods: &BTreeMap<String, Period>,
    interval: &str,
    from: &str,
    to: &str,
) -> Vec<(String, i64)> {
    let parse = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok();
    match (interval, parse(from), parse(to)) {
        ("day", Some(from), Some(to)) if from <= to => from
            .iter_days()
            .take_while(|d| *d <= to)
            .map(|d| {
                let key = d.to_string();
                let orders = periods.get(&key).map_or(0, |p| p.orders);
                (key, orders)
            })
            .collect(),
        _ => periods.iter().map(|(p, f)| (p.clone(), f.orders)).collect(),
    }
}

/// The gross revenue per period in the currency with the most revenue over the range (whole
/// units), as bars like [`bars`]; with that currency. `None` without revenue.
pub(crate) fn revenue_bars(
    periods: &BTreeMap<String, Period>,
    orders: &[(String, i64)],
) -> Option<(String, Vec<(String, i64)>)> {
    let mut totals: BTreeMap<&str, Decimal> = BTreeMap::new();
    for p in periods.values() {
        for (currency, gross) in &p.gross {
            *totals.entry(currency.as_str()).or_default() += *gross;
        }
    }
    let (currency, _) = totals.into_iter().max_by(|a, b| a.1.cmp(&b.1))?;
    let bars = orders
        .iter()
        .map(|(label, _)| {
            let gross = periods
                .get(label)
                .and_then(|p| p.gross.get(currency))
                .copied()
                .unwrap_or_default();
            (label.clone(), gross.trunc().try_into().unwrap_or(i64::MAX))
        })
        .collect();
    Some((currency.to_owned(), bars))
}

/// A duration in seconds as hours (one decimal) or minutes under an hour.
fn duration(seconds: Option<i64>) -> String {
    match seconds {
        None => "—".to_owned(),
        Some(s) if s < 3600 => format!("{} min", s / 60),
        Some(s) => format!("{:.1} h", s as f64 / 3600.0),
    }
}

fn percent(rate: Option<Decimal>) -> String {
    rate.map_or("—".to_owned(), |r| format!("{r} %"))
}

/// A bar chart of `bars` (label, value), `width` × `height` in SVG units, with its title
/// for assistive technology. Bars are scaled to the largest value; a label under every
/// bar when there is room, else under every n-th.
pub(crate) fn bar_chart(title: &str, bars: &[(String, i64)], width: u32, height: u32) -> Markup {
    chart("orders-chart", title, bars, (width, height))
}

/// [`bar_chart`] with its element id (and its title's, `<id>-title`).
fn chart(id: &str, title: &str, bars: &[(String, i64)], (width, height): (u32, u32)) -> Markup {
    let (left, bottom, top) = (40.0_f64, 28.0_f64, 12.0_f64);
    let plot_w = f64::from(width) - left - 8.0;
    let plot_h = f64::from(height) - bottom - top;
    let max = bars.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let count = bars.len().max(1);
    let slot = plot_w / count as f64;
    let bar_w = (slot * 0.7).max(1.0);
    let every = (count / 10).max(1);
    let y = |v: i64| top + plot_h - plot_h * (v as f64) / (max as f64);
    html! {
        svg id=(id) role="img" aria-labelledby=(format!("{id}-title")) viewBox=(format!("0 0 {width} {height}"))
            width="100%" preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg" {
            title id=(format!("{id}-title")) { (title) }
            line x1=(left) y1=(top + plot_h) x2=(left + plot_w) y2=(top + plot_h) stroke="#4d5661" stroke-width="1" {}
            text x=(left - 6.0) y=(top + 4.0) text-anchor="end" font-size="11" fill="#4d5661" { (max) }
            text x=(left - 6.0) y=(top + plot_h) text-anchor="end" font-size="11" fill="#4d5661" { "0" }
            @for (i, (label, value)) in bars.iter().enumerate() {
                @let x = left + slot * i as f64 + (slot - bar_w) / 2.0;
                rect.bar x=(format!("{x:.1}")) y=(format!("{:.1}", y(*value))) width=(format!("{bar_w:.1}"))
                    height=(format!("{:.1}", top + plot_h - y(*value))) fill="#0b5cad" {
                    title { (label) ": " (value) }
                }
                @if i % every == 0 {
                    text x=(format!("{:.1}", x + bar_w / 2.0)) y=(top + plot_h + 16.0) text-anchor="middle"
                        font-size="10" fill="#4d5661" { (label.get(5..).unwrap_or(label)) }
                }
            }
        }
    }
}

/// `GET /admin/analytics?from=…&to=…&interval=…&store=…`.
pub(crate) async fn page(
    State(api): State<Arc<Api>>,
    signed: Signed,
    RawQuery(raw): RawQuery,
) -> Response {
    let text = signed.lang.text();
    let given: Vec<(String, String)> = pairs(raw)
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .collect();
    let value = |name: &str| {
        given
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&given)
        .finish();
    let answer = analytics::orders(
        State(api),
        signed.caller.clone(),
        RawQuery(Some(query.clone())),
    )
    .await;
    let figures = match answer.map(|reply| serde_json::to_value(reply.body())) {
        Ok(Ok(figures)) => figures,
        Ok(Err(_)) => return unavailable(signed.lang),
        Err(problem) => return problem_page(&signed, &problem, "/admin/analytics"),
    };
    let rows = figures["rows"].as_array().cloned().unwrap_or_default();
    let periods = per_period(&rows);
    let interval = figures["interval"].as_str().unwrap_or("day");
    let from = figures["from"].as_str().unwrap_or_default();
    let to = figures["to"].as_str().unwrap_or_default();
    let bars = bars(&periods, interval, from, to);
    let title = format!("{} ({interval}), {from} – {to}", text.orders_per_period);
    let revenue = revenue_bars(&periods, &bars);
    let body = html! {
        h1 { (text.analytics) }
        form.filters method="get" action="/admin/analytics" {
            div.field { label for="from" { (text.from) } input #from type="date" name="from" value=(value("from")); }
            div.field { label for="to" { (text.to) } input #to type="date" name="to" value=(value("to")); }
            div.field {
                label for="interval" { (text.interval) }
                select #interval name="interval" {
                    option value="day" selected[interval == "day"] { "day" }
                    option value="week" selected[interval == "week"] { "week" }
                }
            }
            div.field { label for="store" { (text.store) } input #store type="text" name="store" value=(value("store")); }
            button type="submit" { (text.filter) }
        }
        section.card aria-labelledby="chart-title" {
            h2 #chart-title { (title) }
            @if periods.is_empty() { p.muted { (text.no_orders) } }
            @if !bars.is_empty() { (bar_chart(&title, &bars, 1000, 260)) }
        }
        @if let Some((currency, revenue)) = &revenue {
            @let revenue_title = format!("{} ({currency}, {interval}), {from} – {to}", text.revenue);
            section.card aria-labelledby="revenue-title" {
                h2 #revenue-title { (revenue_title) }
                (chart("revenue-chart", &revenue_title, revenue, (1000, 220)))
            }
        }
        h2 { (text.figures) }
        div.table-wrap { table.stack #figures {
            thead { tr {
                th scope="col" { (text.period) } th.num scope="col" { (text.orders) } th.num scope="col" { "cancelled" }
                th.num scope="col" { "exceptions" } th.num scope="col" { "backordered" } th.num scope="col" { "late" }
                th.num scope="col" { (text.revenue) }
                th.num scope="col" { (text.rates) }
                th.num scope="col" { (text.lead_time) }
            } }
            tbody { @for (period, f) in &periods { tr {
                td data-label=(text.period) { (period) }
                td.num data-label=(text.orders) { (f.orders) }
                td.num data-label="cancelled" { (f.cancelled) }
                td.num data-label="exceptions" { (f.exceptions) }
                td.num data-label="backordered" { (f.backordered) }
                td.num data-label="late" { (f.late) }
                td.num data-label=(text.revenue) {
                    @for (currency, gross) in &f.gross { (money(Some(*gross), Some(currency))) br; }
                }
                td.num data-label=(text.rates) {
                    (percent(f.rate(f.cancelled))) " / " (percent(f.rate(f.exceptions))) " / " (percent(f.rate(f.backordered)))
                }
                td.num data-label=(text.lead_time) {
                    @match f.lead {
                        Some((p50, p90)) => { (duration(p50)) " / " (duration(p90)) }
                        None => { span title=(text.lead_time_per_currency) { "—" } }
                    }
                }
            } } }
        } }
        p.muted { (text.analytics_note) }
    };
    page_response(
        StatusCode::OK,
        layout::page(
            &signed,
            Some(Section::Analytics),
            text.analytics,
            None,
            &format!("/admin/analytics?{query}"),
            body,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_of_several_stores_and_currencies_sum_per_period() {
        let rows = vec![
            json!({"period": "2026-12-05", "currency": "EUR", "orders": 3, "cancelled": 1,
                   "exceptions": 0, "backordered": 1, "late_shipments": 0,
                   "revenue": {"gross": "30.00"}}),
            json!({"period": "2026-12-05", "currency": "EUR", "orders": 2, "cancelled": 0,
                   "exceptions": 1, "backordered": 0, "late_shipments": 1,
                   "revenue": {"gross": "12.50"}}),
            json!({"period": "2026-12-06", "currency": "GBP", "orders": 1, "cancelled": 0,
                   "exceptions": 0, "backordered": 0, "late_shipments": 0,
                   "revenue": {"gross": "9.99"}}),
        ];
        let periods = per_period(&rows);
        assert_eq!(periods.len(), 2);
        let first = &periods["2026-12-05"];
        assert_eq!((first.orders, first.cancelled, first.exceptions), (5, 1, 1));
        assert_eq!(first.gross["EUR"], Decimal::new(4250, 2));
        assert_eq!(periods["2026-12-06"].gross["GBP"], Decimal::new(999, 2));
    }

    #[test]
    fn rates_lead_times_and_the_revenue_chart_of_the_main_currency() {
        let rows = vec![
            json!({"period": "2026-12-05", "currency": "EUR", "orders": 8, "cancelled": 1,
                   "exceptions": 2, "backordered": 0, "revenue": {"gross": "80.50"},
                   "lead_time_seconds": {"placed_to_delivered": {"p50": 90000, "p90": 172800}}}),
            json!({"period": "2026-12-06", "currency": "EUR", "orders": 1,
                   "revenue": {"gross": "10.00"}}),
            json!({"period": "2026-12-06", "currency": "GBP", "orders": 1,
                   "revenue": {"gross": "9.99"}}),
        ];
        let periods = per_period(&rows);
        let first = &periods["2026-12-05"];
        assert_eq!(first.rate(first.cancelled), Some(Decimal::new(125, 1)));
        assert_eq!(first.rate(first.exceptions), Some(Decimal::new(250, 1)));
        assert_eq!(first.lead, Some((Some(90000), Some(172800))));
        assert_eq!(duration(Some(90000)), "25.0 h");
        assert_eq!(duration(Some(600)), "10 min");
        assert_eq!(
            periods["2026-12-06"].lead, None,
            "two currencies: no percentile"
        );
        let bars = bars(&periods, "day", "2026-12-05", "2026-12-07");
        let (currency, revenue) = revenue_bars(&periods, &bars).expect("revenue");
        assert_eq!(currency, "EUR");
        assert_eq!(
            revenue,
            vec![
                ("2026-12-05".to_owned(), 80),
                ("2026-12-06".to_owned(), 10),
                ("2026-12-07".to_owned(), 0)
            ]
        );
        assert_eq!(Period::default().rate(0), None);
    }

    #[test]
    fn every_day_of_the_range_is_a_bar_even_without_orders() {
        let rows = vec![json!({"period": "2026-12-02", "currency": "EUR", "orders": 3})];
        let periods = per_period(&rows);
        assert_eq!(
            bars(&periods, "day", "2026-12-01", "2026-12-03"),
            vec![
                ("2026-12-01".to_owned(), 0),
                ("2026-12-02".to_owned(), 3),
                ("2026-12-03".to_owned(), 0)
            ]
        );
        assert_eq!(
            bars(&periods, "week", "2026-12-01", "2026-12-03"),
            vec![("2026-12-02".to_owned(), 3)]
        );
    }

    #[test]
    fn bars_are_scaled_to_the_largest_and_every_one_is_drawn() {
        let bars = vec![
            ("2026-12-01".to_owned(), 2),
            ("2026-12-02".to_owned(), 4),
            ("2026-12-03".to_owned(), 0),
        ];
        let svg = bar_chart("Orders", &bars, 1000, 260).into_string();
        assert_eq!(svg.matches("<rect").count(), 3, "{svg}");
        // The plot is 260 - 28 - 12 = 220 high: 4 is all of it, 2 half, 0 nothing.
        assert!(svg.contains("height=\"220.0\""), "{svg}");
        assert!(svg.contains("height=\"110.0\""), "{svg}");
        assert!(svg.contains("height=\"0.0\""), "{svg}");
        assert!(
            svg.contains("<title id=\"orders-chart-title\">Orders</title>"),
            "{svg}"
        );
        assert!(
            bar_chart("None", &[], 1000, 260)
                .into_string()
                .contains("<svg")
        );
    }
}
