//! `GET /api/v1/admin/analytics/orders` (volumes, revenue, rates, lead times per day or
//! week, per currency, and per store and channel when asked) and
//! `GET /api/v1/admin/analytics/top-skus`, both over the orders the caller's stores hold,
//! read from the order facts (`store::analytics`). Needs `orders.view`. Every figure is
//! defined in `docs/api.md` (Analytics) and `domain::analytics`.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use chrono::{NaiveDate, Utc};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::Serialize;
use tracing::error;

use super::auth::Caller;
use super::endpoint::Reply;
use super::orders::pairs;
use super::{Api, Problem};
use crate::domain::access::Permission;
use crate::domain::analytics::{self, Param};
use crate::domain::rollup::Histogram;
use crate::store::analytics::{self as store, Group, TopSku};

/// The figures of orders, one row per period, currency and (if grouped) store and channel.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct OrderAnalytics {
    /// First day, inclusive (UTC).
    from: NaiveDate,
    /// Last day, inclusive (UTC).
    to: NaiveDate,
    /// `day` or `week`.
    interval: &'static str,
    /// The dimensions besides the period and currency.
    group: Vec<&'static str>,
    /// An order not shipped this many hours after it was placed is late.
    late_after_hours: u32,
    /// Periods without orders are left out.
    rows: Vec<Figures>,
}

/// p50 and p90 of a duration, in whole seconds (`null`: no order has it): nearest-rank,
/// each the smallest value of its histogram bucket (exact below 64 s, at most 1/32 under).
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Percentiles {
    p50: Option<i64>,
    p90: Option<i64>,
}

/// Revenue of the orders not cancelled, as placed.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Revenue {
    gross: Decimal,
    net: Decimal,
    tax: Decimal,
}

/// Lead times of the period's orders.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct LeadTimes {
    /// From placed to the last shipment's dispatch.
    placed_to_shipped: Percentiles,
    /// From the last dispatch to the last delivery.
    shipped_to_delivered: Percentiles,
    /// From placed to the last delivery.
    placed_to_delivered: Percentiles,
}

/// One row of figures.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Figures {
    /// The period's first day.
    period: NaiveDate,
    /// When grouped by store.
    #[serde(skip_serializing_if = "Option::is_none")]
    store_id: Option<String>,
    /// When grouped by channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<String>,
    currency: String,
    /// Orders placed in the period.
    orders: i64,
    /// Of those, cancelled as a whole.
    cancelled: i64,
    cancellation_rate: Option<f64>,
    revenue: Revenue,
    /// Gross revenue ÷ orders not cancelled, to the cent.
    average_order_value: Option<Decimal>,
    /// Orders that went on hold for an order item exception.
    exceptions: i64,
    exception_rate: Option<f64>,
    /// From placed to the last exception resolved.
    time_to_resolve_seconds: Percentiles,
    /// Orders that waited for stock.
    backordered: i64,
    backorder_rate: Option<f64>,
    /// From backordered to served by stock.
    time_to_serve_seconds: Percentiles,
    lead_time_seconds: LeadTimes,
    /// Orders not cancelled whose last shipment left (or, not shipped yet, would leave) more
    /// than `late_after_hours` after they were placed.
    late_shipments: i64,
}

impl Figures {
    fn of(g: Group) -> Self {
        let s = &g.sums;
        let kept = s.orders - s.cancelled;
        let pair = |h: &Histogram| {
            let (p50, p90) = h.p50_p90();
            Percentiles { p50, p90 }
        };
        Self {
            period: g.period,
            store_id: g.store_id,
            channel: g.channel,
            currency: g.currency,
            orders: s.orders,
            cancelled: s.cancelled,
            cancellation_rate: analytics::rate(s.cancelled, s.orders),
            revenue: Revenue {
                gross: s.gross,
                net: s.gross - s.tax,
                tax: s.tax,
            },
            average_order_value: analytics::average(s.gross, kept),
            exceptions: s.exceptions,
            exception_rate: analytics::rate(s.exceptions, s.orders),
            time_to_resolve_seconds: pair(&s.resolve),
            backordered: s.backordered,
            backorder_rate: analytics::rate(s.backordered, s.orders),
            time_to_serve_seconds: pair(&s.serve),
            lead_time_seconds: LeadTimes {
                placed_to_shipped: pair(&s.shipped),
                shipped_to_delivered: pair(&s.shipped_to_delivered),
                placed_to_delivered: pair(&s.delivered),
            },
            late_shipments: g.late,
        }
    }
}

/// `GET /api/v1/admin/analytics/orders`.
pub(crate) async fn orders(
    State(api): State<Arc<Api>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Reply<OrderAnalytics>, Problem> {
    let caller = caller.require(Permission::OrdersView)?;
    let query = analytics::parse(&pairs(raw), &Param::ORDERS, analytics::today())
        .map_err(|e| Problem::bad_parameter(e.field, e.reason))?;
    let stores = caller.scope().narrow(&query.stores);
    let rows = store::orders(&api.pool, stores.as_deref(), &query, Utc::now())
        .await
        .map_err(|e| match e {
            store::AnalyticsError::Database(e) => internal(e),
            store::AnalyticsError::Corrupt(e) => {
                error!(error = %e, "analytics failed: the rollups need a rebuild");
                Problem::unavailable()
            }
        })?;
    Ok(Reply::new(OrderAnalytics {
        from: query.from,
        to: query.to,
        interval: query.interval.as_str(),
        group: query.group.iter().map(|d| d.name()).collect(),
        late_after_hours: query.late_after_hours,
        rows: rows.into_iter().map(Figures::of).collect(),
    }))
}

/// The products sold most.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct TopSkus {
    from: NaiveDate,
    to: NaiveDate,
    /// By units, most first; one row per product and currency.
    skus: Vec<TopSku>,
}

/// `GET /api/v1/admin/analytics/top-skus`.
pub(crate) async fn top_skus(
    State(api): State<Arc<Api>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Reply<TopSkus>, Problem> {
    let caller = caller.require(Permission::OrdersView)?;
    let query = analytics::parse(&pairs(raw), &Param::TOP, analytics::today())
        .map_err(|e| Problem::bad_parameter(e.field, e.reason))?;
    let stores = caller.scope().narrow(&query.stores);
    let skus = store::top_skus(&api.pool, stores.as_deref(), &query)
        .await
        .map_err(internal)?;
    Ok(Reply::new(TopSkus {
        from: query.from,
        to: query.to,
        skus,
    }))
}

fn internal(e: sqlx::Error) -> Problem {
    error!(error = %e, "analytics failed: database");
    Problem::unavailable()
}
