//! Tracking events that matched no shipment: recorded (once per message) for operators, and
//! adopted by the shipment their tracking number is bound to later.

use chrono::{DateTime, Utc};
use orderly_contracts::messages::ShipmentUpdated;
use orderly_runtime::db;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use super::location_json;

/// A tracking event that named no shipment we know.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct UnmatchedEvent {
    /// Row id.
    pub id: i64,
    /// The message that carried it.
    pub message_id: Uuid,
    /// The shipment id it named, if any.
    pub shipment_id: Option<Uuid>,
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
    /// Carrier's text.
    pub description: Option<String>,
    /// Where.
    pub location: Option<serde_json::Value>,
    /// When, at the carrier.
    pub event_at: DateTime<Utc>,
    /// Delivery estimate.
    pub estimated_delivery_at: Option<DateTime<Utc>>,
    /// Why it matched nothing.
    pub reason: String,
    /// When we received it.
    pub received_at: DateTime<Utc>,
    /// The shipment it was later attached to.
    pub resolved_shipment_id: Option<Uuid>,
    /// When.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// Records an event that matched no shipment (once per message; a replay updates the
/// reason).
pub(crate) async fn record_unmatched(
    conn: &mut PgConnection,
    message_id: Uuid,
    update: &ShipmentUpdated,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into unmatched_tracking_events
           (message_id, shipment_id, carrier, tracking_number, vocabulary, raw_status,
            raw_substatus, description, location, event_at, estimated_delivery_at, reason)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         on conflict (message_id) do update set reason = excluded.reason",
    )
    .bind(message_id)
    .bind(update.shipment_id)
    .bind(&update.carrier)
    .bind(&update.tracking_number)
    .bind(update.vocabulary.as_str())
    .bind(&update.raw_status)
    .bind(update.raw_substatus.as_deref())
    .bind(update.description.as_deref())
    .bind(update.location.as_ref().map(|l| Json(location_json(l))))
    .bind(update.event_at)
    .bind(update.estimated_delivery_at)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// Unresolved unmatched events waiting for any of these tracking numbers, oldest first,
/// locked, in one statement.
pub(crate) async fn waiting_unmatched(
    conn: &mut PgConnection,
    numbers: &[(&str, &str)],
) -> Result<Vec<UnmatchedEvent>, sqlx::Error> {
    if numbers.is_empty() {
        return Ok(Vec::new());
    }
    let carriers: Vec<&str> = numbers.iter().map(|(c, _)| *c).collect();
    let tracking: Vec<&str> = numbers.iter().map(|(_, n)| *n).collect();
    sqlx::query_as(
        "select id, message_id, shipment_id, carrier, tracking_number, vocabulary, raw_status,
                raw_substatus, description, location, event_at, estimated_delivery_at, reason,
                received_at, resolved_shipment_id, resolved_at
         from unmatched_tracking_events
         where resolved_at is null
           and (carrier, tracking_number) in (select * from unnest($1::text[], $2::text[]))
         order by id for update",
    )
    .bind(&carriers)
    .bind(&tracking)
    .fetch_all(conn)
    .await
}

/// Marks unmatched events `(row id, shipment)` as attached to their shipments, in one
/// statement.
pub(crate) async fn resolve_unmatched(
    conn: &mut PgConnection,
    resolved: &[(i64, Uuid)],
) -> Result<(), sqlx::Error> {
    db::unnest(
        "update unmatched_tracking_events u set resolved_shipment_id = v.s, resolved_at = now()
         from unnest($1::bigint[], $2::uuid[]) as v(id, s)
         where u.id = v.id",
        resolved,
    )
    .column(|(id, _)| *id)
    .column(|(_, s)| *s)
    .execute(conn)
    .await?;
    Ok(())
}
