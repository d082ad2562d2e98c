//! Operators' holds (`order.hold_changed`) and the reservations parked while an order is
//! held.

use std::collections::HashSet;

use orderly_contracts::messages::OrderHoldChanged;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

/// Of `order_ids`, those on hold now.
pub(crate) async fn held_orders(
    conn: &mut PgConnection,
    order_ids: &[Uuid],
) -> sqlx::Result<HashSet<Uuid>> {
    if order_ids.is_empty() {
        return Ok(HashSet::new());
    }
    let held: Vec<Uuid> =
        sqlx::query_scalar("select order_id from holds where order_id = any($1) and held")
            .bind(order_ids)
            .fetch_all(conn)
            .await?;
    Ok(held.into_iter().collect())
}

/// Records a hold change if it is newer than the one known; returns whether it applied.
pub(crate) async fn record_hold(
    conn: &mut PgConnection,
    change: &OrderHoldChanged,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "insert into holds (order_id, held, sequence, reason) values ($1, $2, $3, $4)
         on conflict (order_id) do update
           set held = excluded.held, sequence = excluded.sequence, reason = excluded.reason,
               changed_at = now()
           where holds.sequence < excluded.sequence",
    )
    .bind(change.order_id)
    .bind(change.held)
    .bind(i64::from(change.sequence))
    .bind(change.reason.as_deref())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Parks reservations of held orders: `(order_id, message_id, envelope)`. An order's first
/// parked reservation stays (a redelivery changes nothing).
pub(crate) async fn park_reservations(
    conn: &mut PgConnection,
    parked: &[(Uuid, Uuid, serde_json::Value)],
) -> sqlx::Result<()> {
    for (order_id, message_id, envelope) in parked {
        sqlx::query(
            "insert into parked_reservations (order_id, message_id, envelope)
             values ($1, $2, $3) on conflict (order_id) do nothing",
        )
        .bind(order_id)
        .bind(message_id)
        .bind(Json(envelope))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Takes the order's parked reservation (its envelope), if any.
pub(crate) async fn take_parked(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> sqlx::Result<Option<serde_json::Value>> {
    sqlx::query_scalar("delete from parked_reservations where order_id = $1 returning envelope")
        .bind(order_id)
        .fetch_optional(conn)
        .await
}
