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

/// An operator's request (note, hold, release) as recorded: `None` if its id is new.
pub(crate) async fn operator_request_outcome(
    conn: &mut PgConnection,
    request_id: Uuid,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("select outcome from operator_requests where request_id = $1")
        .bind(request_id)
        .fetch_optional(conn)
        .await
}

/// Records an operator's request (`kind`: note, hold, release) and its outcome.
pub(crate) async fn record_operator_request(
    conn: &mut PgConnection,
    request_id: Uuid,
    kind: &str,
    message_id: Uuid,
    order_id: Uuid,
    outcome: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into operator_requests (request_id, kind, message_id, order_id, outcome)
         values ($1, $2, $3, $4, $5) on conflict (request_id) do nothing",
    )
    .bind(request_id)
    .bind(kind)
    .bind(message_id)
    .bind(order_id)
    .bind(outcome)
    .execute(conn)
    .await?;
    Ok(())
}

/// An order's operator hold: whether held, and why.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Hold {
    pub(crate) held: bool,
    pub(crate) hold_reason: Option<String>,
}

/// The order's hold (the caller holds the order's lock).
pub(crate) async fn hold(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<Hold> {
    sqlx::query_as("select held, hold_reason from orders where order_id = $1")
        .bind(order_id)
        .fetch_one(conn)
        .await
}

/// Sets the order's hold; returns the new hold sequence.
pub(crate) async fn set_hold(
    conn: &mut PgConnection,
    order_id: Uuid,
    held: bool,
    reason: Option<&str>,
) -> sqlx::Result<i32> {
    sqlx::query_scalar(
        "update orders set held = $2, hold_reason = $3, hold_sequence = hold_sequence + 1
         where order_id = $1 returning hold_sequence",
    )
    .bind(order_id)
    .bind(held)
    .bind(reason)
    .fetch_one(conn)
    .await
}
