//! Order analytics: the facts of each order (`order_facts`, `order_fact_lines`), refreshed
//! by the projection, and the figures read from a range of them.
//!
//! The facts are recomputed from the read model by one SQL function
//! (`refresh_order_facts`, in the migration that made the tables), so they are whatever
//! the read model says, whatever order and how often the events arrived. A figure request
//! reads the facts of its days through the index on `placed_at` (or `store_id, placed_at`),
//! never the orders' wide rows, and aggregates them in one statement: percentiles are
//! PostgreSQL's `percentile_disc`, the nearest-rank percentile.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::domain::analytics::AnalyticsQuery;

/// Recomputes the facts of `orders` (and their lines, `with_lines`) from the read model, in
/// one statement (none for no orders).
pub(crate) async fn refresh(
    conn: &mut PgConnection,
    orders: &[Uuid],
    with_lines: bool,
) -> sqlx::Result<()> {
    if orders.is_empty() {
        return Ok(());
    }
    sqlx::query("select refresh_order_facts($1, $2)")
        .bind(orders)
        .bind(with_lines)
        .execute(conn)
        .await?;
    Ok(())
}

/// The sums and percentiles of one group of orders.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Group {
    pub(crate) period: NaiveDate,
    pub(crate) store_id: Option<String>,
    pub(crate) channel: Option<String>,
    pub(crate) currency: String,
    pub(crate) orders: i64,
    pub(crate) cancelled: i64,
    pub(crate) gross: Decimal,
    pub(crate) tax: Decimal,
    pub(crate) exceptions: i64,
    /// `[p50, p90]` of each duration (`null` when no order has it; an element is `null`
    /// never otherwise).
    pub(crate) resolve: Option<Vec<Option<i64>>>,
    pub(crate) backordered: i64,
    pub(crate) serve: Option<Vec<Option<i64>>>,
    pub(crate) shipped: Option<Vec<Option<i64>>>,
    pub(crate) delivered_after_shipped: Option<Vec<Option<i64>>>,
    pub(crate) delivered: Option<Vec<Option<i64>>>,
    pub(crate) late: i64,
}

/// `a - b` in whole seconds (a SQL expression of two constant column names).
macro_rules! seconds {
    ($a:literal, $b:literal) => {
        concat!("floor(extract(epoch from (", $a, " - ", $b, ")))::bigint")
    };
}

/// p50 and p90 of a duration, from one sort: an array `[p50, p90]` named `$name`.
macro_rules! percentiles {
    ($a:literal, $b:literal, $name:literal) => {
        concat!(
            "percentile_disc(array[0.5, 0.9]) within group (order by ",
            seconds!($a, $b),
            ") as ",
            $name
        )
    };
}

/// The rows, days or weeks, of `query` over the orders of `stores` (`None`: every store),
/// as of `now` (for orders not shipped yet that are already late).
pub(crate) async fn orders(
    pool: &PgPool,
    stores: Option<&[String]>,
    query: &AnalyticsQuery,
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<Group>> {
    let dims = |sql: &mut QueryBuilder<Postgres>| {
        for dim in [
            crate::domain::analytics::Dimension::Store,
            crate::domain::analytics::Dimension::Channel,
        ] {
            if query.group.contains(&dim) {
                sql.push(dim.column()).push(", ");
            } else {
                sql.push("null::text as ").push(dim.column()).push(", ");
            }
        }
    };
    let mut sql = QueryBuilder::new("select (date_trunc('");
    sql.push(query.interval.trunc())
        .push("', placed_at at time zone 'UTC'))::date as period, ");
    dims(&mut sql);
    sql.push(concat!(
        "currency, count(*) as orders, count(*) filter (where cancelled) as cancelled, ",
        "coalesce(sum(gross) filter (where not cancelled), 0) as gross, ",
        "coalesce(sum(tax) filter (where not cancelled), 0) as tax, ",
        "count(*) filter (where exception) as exceptions, ",
        percentiles!("resolved_at", "placed_at", "resolve"),
        ", count(*) filter (where backordered_at is not null) as backordered, ",
        percentiles!("served_at", "backordered_at", "serve"),
        ", ",
        percentiles!("shipped_at", "placed_at", "shipped"),
        ", ",
        percentiles!("delivered_at", "shipped_at", "delivered_after_shipped"),
        ", ",
        percentiles!("delivered_at", "placed_at", "delivered"),
        ", count(*) filter (where not cancelled and coalesce(shipped_at, "
    ));
    sql.push_bind(now)
        .push(") > placed_at + make_interval(hours => ")
        .push_bind(i32::try_from(query.late_after_hours).unwrap_or(i32::MAX))
        .push(")) as late from order_facts");
    push_range(&mut sql, stores, query);
    sql.push(" group by 1, 2, 3, 4 order by 1, 2, 3, 4");
    sql.build_query_as().persistent(false).fetch_all(pool).await
}

/// ` where …`: the days of `query`, its stores (scoped) and channels.
fn push_range(sql: &mut QueryBuilder<Postgres>, stores: Option<&[String]>, query: &AnalyticsQuery) {
    let start = query.from.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    let end = query
        .to
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc());
    sql.push(" where placed_at >= ")
        .push_bind(start)
        .push(" and placed_at < ")
        .push_bind(end);
    if let Some(stores) = stores {
        sql.push(" and store_id = any(")
            .push_bind(stores.to_vec())
            .push(")");
    }
    if !query.channels.is_empty() {
        let channels: Vec<&str> = query.channels.iter().map(|c| c.as_str()).collect();
        sql.push(" and channel = any(")
            .push_bind(channels)
            .push(")");
    }
}

/// One product's figures in one currency.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, schemars::JsonSchema)]
pub(crate) struct TopSku {
    pub(crate) sku: String,
    pub(crate) currency: String,
    /// Units on orders not cancelled as a whole.
    pub(crate) units: i64,
    /// Orders with the product.
    pub(crate) orders: i64,
    /// What the lines came to (units × unit price − the line's discount), as placed.
    pub(crate) revenue: Decimal,
}

/// The products sold most (by units) on the orders of `query`, per currency.
pub(crate) async fn top_skus(
    pool: &PgPool,
    stores: Option<&[String]>,
    query: &AnalyticsQuery,
) -> sqlx::Result<Vec<TopSku>> {
    let mut sql = QueryBuilder::new(
        "select l.sku, f.currency, sum(l.quantity)::bigint as units, \
           count(distinct l.order_id) as orders, sum(l.amount) as revenue \
         from (select order_id, currency, placed_at, store_id, channel from order_facts",
    );
    push_range(&mut sql, stores, query);
    sql.push(
        " and not cancelled) f join order_fact_lines l using (order_id) \
         group by l.sku, f.currency order by units desc, l.sku, f.currency limit ",
    )
    .push_bind(i64::from(query.limit));
    sql.build_query_as().persistent(false).fetch_all(pool).await
}

/// The headline figures of the last 24 hours per store and currency, for `/metrics`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Headline {
    pub(crate) store_id: String,
    pub(crate) currency: String,
    pub(crate) orders: i64,
    pub(crate) cancelled: i64,
    pub(crate) exceptions: i64,
    pub(crate) backordered: i64,
    pub(crate) gross: Decimal,
}

/// The headline figures of orders placed since `since`.
pub(crate) async fn headline(pool: &PgPool, since: DateTime<Utc>) -> sqlx::Result<Vec<Headline>> {
    sqlx::query_as(
        "select store_id, currency, count(*) as orders, \
           count(*) filter (where cancelled) as cancelled, \
           count(*) filter (where exception) as exceptions, \
           count(*) filter (where backordered_at is not null) as backordered, \
           coalesce(sum(gross) filter (where not cancelled), 0) as gross \
         from order_facts where placed_at >= $1 group by 1, 2 order by 1, 2",
    )
    .bind(since)
    .fetch_all(pool)
    .await
}
