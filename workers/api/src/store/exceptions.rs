//! Open order item exceptions, from the read model: each element of an order's
//! `exceptions` (from `order.on_hold`) while the order waits for an operator.

use chrono::{DateTime, Utc};
use orderly_contracts::types::Channel;
use schemars::JsonSchema;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::exceptions::ExceptionQuery;

/// An open exception with its order.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub(crate) struct OpenException {
    /// Its id: resolve it with `POST /api/v1/admin/order-exceptions/{id}/resolve`.
    pub(crate) exception_id: Uuid,
    pub(crate) order_id: Uuid,
    pub(crate) store_id: String,
    #[schemars(with = "Option<Channel>")]
    pub(crate) channel: Option<String>,
    pub(crate) marketplace: Option<String>,
    pub(crate) external_order_id: String,
    /// The line as the marketplace sent it: its id, SKU, GTIN, title, units and unit price
    /// where given.
    pub(crate) line_id: Option<String>,
    pub(crate) sku: Option<String>,
    pub(crate) gtin: Option<String>,
    pub(crate) title: Option<String>,
    pub(crate) quantity: Option<i64>,
    /// A decimal string, in the order's currency.
    pub(crate) unit_price: Option<String>,
    /// Why it matched no product.
    pub(crate) problem: Option<String>,
    /// Since when the order waits (its status change to `on_hold`, or when the api first
    /// heard of it).
    pub(crate) held_since: DateTime<Utc>,
    /// The order's ETag, for `If-Match` on the resolution.
    pub(crate) order_etag: String,
}

const SELECT: &str = "select (e->>'exception_id')::uuid as exception_id, o.order_id, o.store_id, \
       o.channel, o.marketplace, o.external_order_id, e->>'line_id' as line_id, e->>'sku' as sku, \
       e->>'gtin' as gtin, e->>'title' as title, (e->>'quantity')::bigint as quantity, \
       e->>'unit_price' as unit_price, e->>'problem' as problem, \
       coalesce(o.status_changed_at, o.placed_at) as held_since, \
       '\"' || o.status_sequence || '\"' as order_etag \
     from orders o cross join lateral jsonb_array_elements(o.exceptions) e \
     where (o.status = 'on_hold' or (o.status is null and o.exceptions is not null))";

/// A page of open exceptions (oldest first), of `stores` when given.
pub(crate) async fn list(
    pool: &PgPool,
    stores: Option<&[String]>,
    q: &ExceptionQuery,
) -> sqlx::Result<Vec<OpenException>> {
    let channels: Vec<&str> = q.channels.iter().map(|c| c.as_str()).collect();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select * from ({SELECT} \
           and ($1::text[] is null or o.store_id = any($1)) \
           and (cardinality($2::text[]) = 0 or o.channel = any($2)) \
           and ($3::timestamptz is null or coalesce(o.status_changed_at, o.placed_at) <= $3)) x \
         where ($4::text is null or lpad(x.gtin, 14, '0') = $4) \
           and ($5::timestamptz is null or (x.held_since, x.exception_id) > ($5, $6)) \
         order by x.held_since, x.exception_id limit $7"
    )))
    .bind(stores)
    .bind(&channels)
    .bind(q.held_before)
    .bind(q.gtin.as_deref())
    .bind(q.cursor.map(|c| c.placed_at))
    .bind(q.cursor.map(|c| c.order_id))
    .bind(i64::from(q.limit))
    .fetch_all(pool)
    .await
}

/// One open exception.
pub(crate) async fn one(pool: &PgPool, exception_id: Uuid) -> sqlx::Result<Option<OpenException>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select * from ({SELECT}) x where x.exception_id = $1"
    )))
    .bind(exception_id)
    .fetch_optional(pool)
    .await
}
