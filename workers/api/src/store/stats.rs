//! A customer's order statistics (`CustomerOrderStats`): computed from the read model's
//! orders of that store and customer, through the `(store_id, customer_id)` index, so a
//! request reads that customer's orders only, never the table. Duplicate or reordered
//! events cannot skew them: the orders they are computed from are already deduplicated.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::Serialize;
use sqlx::PgPool;

/// A customer's figures in one currency.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub(crate) struct Spent {
    pub(crate) currency: String,
    /// Orders in that currency that were not cancelled as a whole.
    pub(crate) orders: i64,
    /// What those orders came to, as placed (a decimal string).
    pub(crate) total: Decimal,
    /// Credited back (the credit notes' gross amounts).
    pub(crate) refunded: Decimal,
}

/// A customer's order statistics in a store.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct CustomerStats {
    pub(crate) store_id: String,
    pub(crate) customer_id: String,
    /// Every order of theirs the read model knows (cancelled ones included).
    pub(crate) orders: i64,
    /// Orders cancelled as a whole.
    pub(crate) cancelled: i64,
    pub(crate) first_order_at: Option<DateTime<Utc>>,
    pub(crate) last_order_at: Option<DateTime<Utc>>,
    /// Per currency: orders, amount, refunds.
    pub(crate) spent: Vec<Spent>,
}

impl CustomerStats {
    /// A customer with no orders yet.
    pub(crate) fn none(store_id: &str, customer_id: &str) -> Self {
        Self {
            store_id: store_id.to_owned(),
            customer_id: customer_id.to_owned(),
            orders: 0,
            cancelled: 0,
            first_order_at: None,
            last_order_at: None,
            spent: Vec::new(),
        }
    }
}

/// Which of a customer's orders count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Orders {
    /// Every order of theirs (staff's view).
    All,
    /// The orders the customer themself sees: the store's own, not a marketplace's
    /// (`customers::owned_by!`).
    Own,
}

/// The statistics of `customer_id` in `store_id`; `None` when the read model knows no order
/// of theirs.
pub(crate) async fn customer(
    pool: &PgPool,
    store_id: &str,
    customer_id: &str,
    which: Orders,
) -> Result<Option<CustomerStats>, sqlx::Error> {
    let own = which == Orders::Own;
    let (orders, cancelled, first, last): (i64, i64, Option<DateTime<Utc>>, Option<DateTime<Utc>>) =
        sqlx::query_as(
            "select count(*), count(*) filter (where status = 'cancelled'), \
               min(placed_at) filter (where placed_at_known), \
               max(placed_at) filter (where placed_at_known) \
             from orders where store_id = $1 and customer_id = $2 \
               and (not $3 or channel <> 'marketplace')",
        )
        .bind(store_id)
        .bind(customer_id)
        .bind(own)
        .fetch_one(pool)
        .await?;
    if orders == 0 {
        return Ok(None);
    }
    let spent = sqlx::query_as(
        "select o.currency, count(*) as orders, coalesce(sum(o.total), 0) as total, \
           coalesce(sum((select sum(d.gross) from documents d \
                         where d.order_id = o.order_id and d.kind = 'credit_note')), 0) as refunded \
         from orders o \
         where o.store_id = $1 and o.customer_id = $2 and o.currency is not null \
           and o.status is distinct from 'cancelled' \
           and (not $3 or o.channel <> 'marketplace') \
         group by o.currency order by o.currency",
    )
    .bind(store_id)
    .bind(customer_id)
    .bind(own)
    .fetch_all(pool)
    .await?;
    Ok(Some(CustomerStats {
        store_id: store_id.to_owned(),
        customer_id: customer_id.to_owned(),
        orders,
        cancelled,
        first_order_at: first,
        last_order_at: last,
        spent,
    }))
}
