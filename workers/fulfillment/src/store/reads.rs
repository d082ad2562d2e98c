//! Read-only views for operators and tests: a shipment's tracking history, the unmatched
//! tracking events, and the consistency report (`orderly check`) over all of fulfillment's
//! tables. Nothing on the message path uses them; they are the store's public part.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::shipments::shipment;
use super::tracking::observations;
use super::unmatched::UnmatchedEvent;

/// One entry of a shipment's tracking history.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TrackingEvent {
    /// The shipment.
    pub shipment_id: Uuid,
    /// The message that carried it.
    pub source_message_id: Uuid,
    /// Carrier code.
    pub carrier: String,
    /// Tracking number.
    pub tracking_number: String,
    /// Whose words.
    pub vocabulary: String,
    /// The word.
    pub raw_status: String,
    /// The sender's sub-status, if it gave one.
    pub raw_substatus: Option<String>,
    /// Ours (`None`: unknown word or no status).
    pub mapped_status: Option<String>,
    /// Carrier's text.
    pub description: Option<String>,
    /// Where, as the carrier said.
    pub location: Option<serde_json::Value>,
    /// When, at the carrier.
    pub event_at: DateTime<Utc>,
    /// When we received it.
    pub received_at: DateTime<Utc>,
    /// Whether it changed the shipment's state when it arrived.
    pub changed_state: bool,
}

/// A shipment's tracking history, in carrier time.
pub async fn history(
    conn: &mut PgConnection,
    shipment_id: Uuid,
) -> Result<Vec<TrackingEvent>, sqlx::Error> {
    sqlx::query_as(
        "select shipment_id, source_message_id, carrier, tracking_number, vocabulary, raw_status,
                raw_substatus, mapped_status, description, location, event_at, received_at,
                changed_state
         from tracking_events where shipment_id = $1 order by event_at, id",
    )
    .bind(shipment_id)
    .fetch_all(conn)
    .await
}

/// Unmatched tracking events for operators, newest first: the open ones, or all.
pub async fn list_unmatched(
    conn: &mut PgConnection,
    include_resolved: bool,
    limit: i64,
) -> Result<Vec<UnmatchedEvent>, sqlx::Error> {
    sqlx::query_as(
        "select id, message_id, shipment_id, carrier, tracking_number, vocabulary, raw_status,
                raw_substatus, description, location, event_at, estimated_delivery_at, reason,
                received_at, resolved_shipment_id, resolved_at
         from unmatched_tracking_events
         where $1 or resolved_at is null
         order by id desc limit $2",
    )
    .bind(include_resolved)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Something in fulfillment's tables that breaks one of its invariants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Which invariant.
    pub check: &'static str,
    /// The order.
    pub order_id: Uuid,
    /// The shipment, where it is about one.
    pub shipment_id: Option<Uuid>,
    /// What is wrong.
    pub detail: String,
}

/// Checks fulfillment's invariants over all its data, for operators (`orderly check`):
/// - each shipment's stored state is the one its tracking history derives;
/// - each dispatched shipment has published `shipment.dispatched`, and, when its order is
///   invoiced per shipment, requested its invoice; each order invoiced on order has its
///   request (unless the whole order was cancelled);
/// - no line ships more units than were ordered;
/// - no cancelled shipment has carrier events saying it moved (goods left despite the
///   cancellation: someone has to look).
pub async fn consistency_report(conn: &mut PgConnection) -> Result<Vec<Finding>, sqlx::Error> {
    let mut findings = Vec::new();
    let ids: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "select shipment_id, order_id from shipments where status <> 'cancelled'
         order by order_id, position",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (shipment_id, order_id) in ids {
        let Some(stored) = shipment(conn, shipment_id).await? else {
            continue;
        };
        let derived = crate::domain::derive(&observations(conn, shipment_id).await?);
        if derived.state != stored.tracking.state {
            findings.push(Finding {
                check: "state_matches_history",
                order_id,
                shipment_id: Some(shipment_id),
                detail: format!(
                    "stored state {} but the tracking history says {}",
                    stored.tracking.state, derived.state
                ),
            });
        }
    }
    let rows: Vec<(Uuid, Uuid, String)> = sqlx::query_as(
        "select s.order_id, s.shipment_id, s.status from shipments s
         where s.status in ('in_transit', 'out_for_delivery', 'delivered', 'delivery_failed',
                            'exception', 'returned')
           and not exists (select 1 from shipment_notices n
                           where n.shipment_id = s.shipment_id and n.kind = 'dispatched')",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (order_id, shipment_id, status) in rows {
        findings.push(Finding {
            check: "dispatch_published",
            order_id,
            shipment_id: Some(shipment_id),
            detail: format!("shipment is {status} but shipment.dispatched was never published"),
        });
    }
    let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "select s.order_id, s.shipment_id from shipments s join orders o using (order_id)
         where o.invoice_timing = 'on_shipment'
           and exists (select 1 from shipment_notices n
                       where n.shipment_id = s.shipment_id and n.kind = 'dispatched')
           and not exists (select 1 from invoice_requests r where r.shipment_id = s.shipment_id)",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (order_id, shipment_id) in rows {
        findings.push(Finding {
            check: "shipment_invoiced",
            order_id,
            shipment_id: Some(shipment_id),
            detail: "dispatched, invoiced per shipment, but no invoice.requested".to_owned(),
        });
    }
    let rows: Vec<Uuid> = sqlx::query_scalar(
        "select o.order_id from orders o
         where o.invoice_timing = 'on_order'
           and not exists (select 1 from invoice_requests r
                           where r.order_id = o.order_id and r.shipment_id is null)
           and not exists (select 1 from order_cancellations c
                           where c.order_id = o.order_id and c.scope = 'order')",
    )
    .fetch_all(&mut *conn)
    .await?;
    for order_id in rows {
        findings.push(Finding {
            check: "order_invoiced",
            order_id,
            shipment_id: None,
            detail: "invoiced on order, but no invoice.requested".to_owned(),
        });
    }
    let rows: Vec<(Uuid, String, i64, i64)> = sqlx::query_as(
        "select l.order_id, l.line_id, l.quantity, sum(i.quantity)::bigint
         from order_lines l
         join shipments s on s.order_id = l.order_id and s.status <> 'cancelled'
         join shipment_items i on i.shipment_id = s.shipment_id and i.line_id = l.line_id
         group by l.order_id, l.line_id, l.quantity
         having sum(i.quantity) > l.quantity",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (order_id, line_id, ordered, shipping) in rows {
        findings.push(Finding {
            check: "line_not_overshipped",
            order_id,
            shipment_id: None,
            detail: format!("line `{line_id}`: {shipping} units in shipments, {ordered} ordered"),
        });
    }
    let rows: Vec<(Uuid, Uuid, i64)> = sqlx::query_as(
        "select s.order_id, s.shipment_id, count(*) from shipments s
         join tracking_events e using (shipment_id)
         where s.status = 'cancelled'
           and e.mapped_status in ('in_transit', 'out_for_delivery', 'delivered')
         group by s.order_id, s.shipment_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (order_id, shipment_id, events) in rows {
        findings.push(Finding {
            check: "cancelled_shipment_not_moving",
            order_id,
            shipment_id: Some(shipment_id),
            detail: format!("cancelled, but {events} carrier event(s) say the parcel is moving"),
        });
    }
    Ok(findings)
}
