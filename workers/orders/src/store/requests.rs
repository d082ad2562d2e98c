//! Cancellation and refund requests with their outcomes: a request id with a final outcome is
//! not judged again.

use chrono::{DateTime, Utc};
use orderly_contracts::messages::{OrderCancelRequested, OrderRefundRequested};
use serde::Serialize;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

/// A request already on record: its order and outcome.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct RequestOutcome {
    /// The order, if it was found.
    pub(crate) order_id: Option<Uuid>,
    /// What became of it.
    pub(crate) outcome: String,
}

/// The recorded outcome of a cancellation request.
pub(crate) async fn cancellation_outcome(
    conn: &mut PgConnection,
    request_id: Uuid,
) -> sqlx::Result<Option<RequestOutcome>> {
    sqlx::query_as("select order_id, outcome from cancellation_requests where request_id = $1")
        .bind(request_id)
        .fetch_optional(conn)
        .await
}

/// Records a cancellation request and its outcome (a rejected one is judged again on replay).
pub(crate) async fn record_cancellation(
    conn: &mut PgConnection,
    message_id: Uuid,
    p: &OrderCancelRequested,
    order_id: Option<Uuid>,
    outcome: &str,
    outcome_reason: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into cancellation_requests (request_id, message_id, store_id, order_id, order_ref,
                                            requested_by, reason, lines, outcome, outcome_reason)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         on conflict (request_id) do update
           set message_id = excluded.message_id, order_id = excluded.order_id,
               outcome = excluded.outcome, outcome_reason = excluded.outcome_reason,
               received_at = now()
           where cancellation_requests.outcome = 'rejected'",
    )
    .bind(p.request_id)
    .bind(message_id)
    .bind(p.store_id.as_str())
    .bind(order_id)
    .bind(Json(&p.order))
    .bind(Json(&p.requested_by))
    .bind(&p.reason)
    .bind(p.lines.as_ref().map(Json))
    .bind(outcome)
    .bind(outcome_reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// The recorded outcome of a refund request.
pub(crate) async fn refund_outcome(
    conn: &mut PgConnection,
    request_id: Uuid,
) -> sqlx::Result<Option<RequestOutcome>> {
    sqlx::query_as("select order_id, outcome from refund_requests where request_id = $1")
        .bind(request_id)
        .fetch_optional(conn)
        .await
}

/// Records a refund request and what orders made of it.
pub(crate) async fn record_refund(
    conn: &mut PgConnection,
    message_id: Uuid,
    p: &OrderRefundRequested,
    outcome: &str,
    outcome_reason: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into refund_requests (request_id, message_id, store_id, order_id, requested_by,
                                      reason, lines, refund_shipping, outcome, outcome_reason)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         on conflict (request_id) do update
           set message_id = excluded.message_id, outcome = excluded.outcome,
               outcome_reason = excluded.outcome_reason, received_at = now()
           where refund_requests.outcome = 'rejected'",
    )
    .bind(p.request_id)
    .bind(message_id)
    .bind(p.store_id.as_str())
    .bind(p.order_id)
    .bind(Json(&p.requested_by))
    .bind(&p.reason)
    .bind(Json(&p.lines))
    .bind(p.refund_shipping)
    .bind(outcome)
    .bind(outcome_reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// A cancellation request as recorded (for operators and tests).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct CancellationRecord {
    /// The request id.
    pub request_id: Uuid,
    /// The order, if found.
    pub order_id: Option<Uuid>,
    /// `cancelled`, `lines_cancelled`, `partially_refused`, `refused`, `rejected`.
    pub outcome: String,
    /// Why (for refusals and rejections).
    pub outcome_reason: Option<String>,
    /// The requester's reason.
    pub reason: String,
    /// When it was received.
    pub received_at: DateTime<Utc>,
}

/// The cancellation requests of an order, oldest first.
pub async fn cancellation_requests(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> sqlx::Result<Vec<CancellationRecord>> {
    sqlx::query_as(
        "select request_id, order_id, outcome, outcome_reason, reason, received_at
         from cancellation_requests where order_id = $1 order by received_at, request_id",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await
}

/// Records a note request; `false` if its id was recorded before (the note is not added
/// again).
pub(crate) async fn record_note(
    conn: &mut PgConnection,
    request_id: Uuid,
    message_id: Uuid,
    order_id: Uuid,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "insert into note_requests (request_id, message_id, order_id) values ($1, $2, $3)
         on conflict (request_id) do nothing",
    )
    .bind(request_id)
    .bind(message_id)
    .bind(order_id)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}
