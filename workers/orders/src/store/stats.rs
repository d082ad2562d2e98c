//! Customer statistics: each new order counted once under its customer's key, with the spend
//! per currency.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use orderly_runtime::db;
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgConnection;

use crate::domain::OrderHead;

/// Counts new orders for their customers (never called for a re-push): one statement for
/// the counts and one for the spend, however many orders.
pub(crate) async fn count_new_orders(
    conn: &mut PgConnection,
    orders: &[(&OrderHead, &str)],
) -> sqlx::Result<()> {
    if orders.is_empty() {
        return Ok(());
    }
    // One row per key: an upsert may not touch a row twice. Per key: orders, first, last.
    type Count = (i32, DateTime<Utc>, DateTime<Utc>);
    let mut counts: BTreeMap<(&str, &str), Count> = BTreeMap::new();
    let mut spend: BTreeMap<(&str, &str, &str), Decimal> = BTreeMap::new();
    for (head, key) in orders {
        let c = counts.entry((head.store_id.as_str(), key)).or_insert((
            0,
            head.placed_at,
            head.placed_at,
        ));
        c.0 += 1;
        c.1 = c.1.min(head.placed_at);
        c.2 = c.2.max(head.placed_at);
        *spend
            .entry((head.store_id.as_str(), key, head.currency.as_str()))
            .or_default() += head.total.value();
    }
    let counts: Vec<_> = counts.into_iter().collect();
    db::unnest(
        "insert into customer_stats (store_id, customer_key, orders, first_order_at, last_order_at)
         select * from unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[],
                              $5::timestamptz[])
         on conflict (store_id, customer_key) do update
           set orders = customer_stats.orders + excluded.orders,
               first_order_at = least(customer_stats.first_order_at, excluded.first_order_at),
               last_order_at = greatest(customer_stats.last_order_at, excluded.last_order_at)",
        &counts,
    )
    .column(|((store, _), _)| *store)
    .column(|((_, key), _)| *key)
    .column(|(_, (n, _, _))| *n)
    .column(|(_, (_, first, _))| *first)
    .column(|(_, (_, _, last))| *last)
    .execute(&mut *conn)
    .await?;
    let spend: Vec<_> = spend.into_iter().collect();
    db::unnest(
        "insert into customer_spend (store_id, customer_key, currency, amount)
         select * from unnest($1::text[], $2::text[], $3::text[], $4::numeric[])
         on conflict (store_id, customer_key, currency) do update
           set amount = customer_spend.amount + excluded.amount",
        &spend,
    )
    .column(|((store, _, _), _)| *store)
    .column(|((_, key, _), _)| *key)
    .column(|((_, _, currency), _)| *currency)
    .column(|(_, amount)| *amount)
    .execute(conn)
    .await?;
    Ok(())
}

/// A customer's order statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct CustomerStats {
    /// The store.
    pub store_id: String,
    /// The customer key (id, lowercased email, or `guest:<order id>`).
    pub customer_key: String,
    /// Orders placed.
    pub orders: i32,
    /// First order's placing time.
    pub first_order_at: DateTime<Utc>,
    /// Last order's placing time.
    pub last_order_at: DateTime<Utc>,
}

/// One customer's statistics.
pub async fn customer_stats(
    conn: &mut PgConnection,
    store_id: &str,
    customer_key: &str,
) -> sqlx::Result<Option<CustomerStats>> {
    sqlx::query_as(
        "select store_id, customer_key, orders, first_order_at, last_order_at
         from customer_stats where store_id = $1 and customer_key = $2",
    )
    .bind(store_id)
    .bind(customer_key)
    .fetch_optional(conn)
    .await
}

/// One customer's spend per currency.
pub async fn customer_spend(
    conn: &mut PgConnection,
    store_id: &str,
    customer_key: &str,
) -> sqlx::Result<BTreeMap<String, Decimal>> {
    let rows: Vec<(String, Decimal)> = sqlx::query_as(
        "select currency, amount from customer_spend where store_id = $1 and customer_key = $2",
    )
    .bind(store_id)
    .bind(customer_key)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}
