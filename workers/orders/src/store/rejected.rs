//! `order.placed` messages that broke their contract, kept with the field and the reason for
//! an operator.

use chrono::{DateTime, Utc};
use orderly_contracts::{ContractError, RawEnvelope};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

/// Records an `order.placed` that broke its contract (a replay of the same message updates
/// the row rather than adding one).
pub(crate) async fn record_rejected(
    conn: &mut PgConnection,
    envelope: &RawEnvelope,
    err: &ContractError,
) -> sqlx::Result<()> {
    let field = |name: &str| {
        envelope
            .payload
            .get(name)
            .and_then(serde_json::Value::as_str)
            .map(|s| s.chars().take(256).collect::<String>())
    };
    let body = serde_json::to_value(envelope).unwrap_or(serde_json::Value::Null);
    sqlx::query(
        "insert into rejected_orders (message_id, message_type, producer, store_id, channel,
                                      external_order_id, field, reason, body)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         on conflict (message_id) do update
           set field = excluded.field, reason = excluded.reason, received_at = now()",
    )
    .bind(envelope.message_id)
    .bind(&envelope.message_type)
    .bind(&envelope.producer)
    .bind(field("store_id"))
    .bind(field("channel"))
    .bind(field("external_order_id"))
    .bind(&err.field)
    .bind(&err.reason)
    .bind(body)
    .execute(conn)
    .await?;
    Ok(())
}

/// A rejected `order.placed`.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct RejectedOrder {
    /// Row id.
    pub id: i64,
    /// The message.
    pub message_id: Uuid,
    /// Its type.
    pub message_type: String,
    /// Who sent it.
    pub producer: String,
    /// The store, if the body named one.
    pub store_id: Option<String>,
    /// The channel, if the body named one.
    pub channel: Option<String>,
    /// The external order id, if the body named one.
    pub external_order_id: Option<String>,
    /// The offending field (JSON path).
    pub field: String,
    /// Why.
    pub reason: String,
    /// The whole envelope as received.
    pub body: serde_json::Value,
    /// When it was (last) rejected.
    pub received_at: DateTime<Utc>,
}

/// The most recent rejected orders, newest first (for the CLI).
pub async fn list_rejected(
    conn: &mut PgConnection,
    limit: i64,
) -> sqlx::Result<Vec<RejectedOrder>> {
    sqlx::query_as(
        "select id, message_id, message_type, producer, store_id, channel, external_order_id,
                field, reason, body, received_at
         from rejected_orders order by received_at desc, id desc limit $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}
