//! Read functions for the CLI and the demo: an order's summary and the count per status.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

/// An order at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct OrderSummary {
    /// Orderly's id.
    pub order_id: Uuid,
    /// The store.
    pub store_id: String,
    /// The channel.
    pub channel: String,
    /// Marketplace name.
    pub marketplace: Option<String>,
    /// The producer's order number.
    pub external_order_id: String,
    /// Last revision seen.
    pub revision: i64,
    /// Current status.
    pub status: String,
    /// Last status change sequence.
    pub status_sequence: i64,
    /// When the buyer placed it.
    pub placed_at: DateTime<Utc>,
    /// Currency.
    pub currency: String,
    /// Total as placed.
    pub total: Decimal,
    /// The customer statistics key.
    pub customer_key: String,
    /// When orders first saw it.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

macro_rules! select_summary {
    ($tail:literal) => {
        concat!(
            "select order_id, store_id, channel, marketplace, external_order_id, revision, status,
                    status_sequence, placed_at, currency, total, customer_key, created_at,
                    updated_at
             from orders ",
            $tail
        )
    };
}

/// Finds an order by its business key.
pub async fn find_order(
    conn: &mut PgConnection,
    store_id: &str,
    channel: &str,
    external_order_id: &str,
) -> sqlx::Result<Option<OrderSummary>> {
    sqlx::query_as(select_summary!(
        "where store_id = $1 and channel = $2 and external_order_id = $3"
    ))
    .bind(store_id)
    .bind(channel)
    .bind(external_order_id)
    .fetch_optional(conn)
    .await
}

/// How many orders are in each status.
pub async fn status_counts(conn: &mut PgConnection) -> sqlx::Result<BTreeMap<String, i64>> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("select status, count(*) from orders group by status")
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().collect())
}
