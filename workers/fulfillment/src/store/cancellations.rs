//! Cancellations as received (`order.cancelled`), each under its key: kept whether or not
//! the order or its shipments exist yet, because shipments made later must still honour
//! them.

use std::collections::HashMap;

use orderly_contracts::messages::CancellationScope;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::Cancellation;

use super::parse;

#[derive(Serialize, Deserialize)]
struct StoredLine {
    line_id: String,
    quantity: u32,
}

/// Records a cancellation under its key. Returns whether it is new.
pub(crate) async fn record_cancellation(
    conn: &mut PgConnection,
    order_id: Uuid,
    cancel_key: Uuid,
    cancellation: &Cancellation,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let lines: Vec<StoredLine> = cancellation
        .lines
        .iter()
        .map(|(line_id, quantity)| StoredLine {
            line_id: line_id.clone(),
            quantity: *quantity,
        })
        .collect();
    let done = sqlx::query(
        "insert into order_cancellations (order_id, cancel_key, scope, lines, reason)
         values ($1, $2, $3, $4, $5) on conflict do nothing",
    )
    .bind(order_id)
    .bind(cancel_key)
    .bind(cancellation.scope.as_str())
    .bind(Json(&lines))
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Every cancellation recorded for the order, oldest first.
pub(crate) async fn cancellations(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Vec<Cancellation>, sqlx::Error> {
    Ok(cancellations_of(conn, &[order_id])
        .await?
        .remove(&order_id)
        .unwrap_or_default())
}

/// The cancellations of several orders (see [`cancellations`]), in one statement.
pub(crate) async fn cancellations_of(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Cancellation>>, sqlx::Error> {
    let mut out: HashMap<Uuid, Vec<Cancellation>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let rows: Vec<(Uuid, String, Json<Vec<StoredLine>>)> = sqlx::query_as(
        "select order_id, scope, lines from order_cancellations where order_id = any($1)
         order by order_id, received_at, cancel_key",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?;
    for (order_id, scope, lines) in rows {
        out.entry(order_id).or_default().push(Cancellation {
            scope: parse("cancellation scope", scope.parse::<CancellationScope>())?,
            lines: lines
                .0
                .into_iter()
                .map(|l| (l.line_id, l.quantity))
                .collect(),
        });
    }
    Ok(out)
}
