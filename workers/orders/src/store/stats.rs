//! Customer statistics: each new order counted once under its customer's key, with the spend
//! per currency.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
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
    let stores: Vec<&str> = counts.keys().map(|k| k.0).collect();
    let keys: Vec<&str> = counts.keys().map(|k| k.1).collect();
    let n: Vec<i32> = counts.values().map(|c| c.0).collect();
    let first: Vec<DateTime<Utc>> = counts.values().map(|c| c.1).collect();
    let last: Vec<DateTime<Utc>> = counts.values().map(|c| c.2).collect();
    sqlx::query(
        "insert into customer_stats (store_id, customer_key, orders, first_order_at, last_order_at)
         select * from unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[],
                              $5::timestamptz[])
         on conflict (store_id, customer_key) do update
           set orders = customer_stats.orders + excluded.orders,
               first_order_at = least(customer_stats.first_order_at, excluded.first_order_at),
               last_order_at = greatest(customer_stats.last_order_at, excluded.last_order_at)",
    )
    .bind(&stores)
    .bind(&keys)
    .bind(&n)
    .bind(&first)
    .bind(&last)
    .execute(&mut *conn)
    .await?;
    let stores: Vec<&str> = spend.keys().map(|k| k.0).collect();
    let keys: Vec<&str> = spend.keys().map(|k| k.1).collect();
    let currencies: Vec<&str> = spend.keys().map(|k| k.2).collect();
    let amounts: Vec<Decimal> = spend.values().copied().collect();
    sqlx::query(
        "insert into customer_spend (store_id, customer_key, currency, amount)
         select * from unnest($1::text[], $2::text[], $3::text[], $4::numeric[])
         on conflict (store_id, customer_key, currency) do update
           set amount = customer_spend.amount + excluded.amount",
    )
    .bind(&stores)
    .bind(&keys)
    .bind(&currencies)
    .bind(&amounts)
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
