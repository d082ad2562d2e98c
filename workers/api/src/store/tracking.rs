//! The carriers' scans of a parcel (`tracking_events`): written once each by the
//! projection, read for an order's shipments by the detail.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

/// A carrier's scan, as `shipment.updated` said it.
#[derive(Debug)]
pub(crate) struct Scan<'a> {
    pub(crate) message_id: Uuid,
    pub(crate) shipment_id: Option<Uuid>,
    pub(crate) carrier: &'a str,
    pub(crate) tracking_number: &'a str,
    pub(crate) vocabulary: &'a str,
    pub(crate) raw_status: &'a str,
    pub(crate) raw_substatus: Option<&'a str>,
    pub(crate) description: Option<&'a str>,
    pub(crate) location: Option<serde_json::Value>,
    pub(crate) event_at: DateTime<Utc>,
    pub(crate) estimated_delivery_at: Option<DateTime<Utc>>,
}

/// Records `scan` unless the same scan (parcel, time, status) is recorded; a repeat that
/// names the shipment where the first did not fills it in.
pub(crate) async fn record(conn: &mut PgConnection, scan: &Scan<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into tracking_events (tracking_number, event_at, raw_status, raw_substatus, \
           carrier, shipment_id, vocabulary, description, location, estimated_delivery_at, \
           message_id) \
         values ($1, $2, $3, coalesce($4, ''), $5, $6, $7, $8, $9, $10, $11) \
         on conflict (tracking_number, event_at, raw_status, raw_substatus) do update \
           set shipment_id = coalesce(tracking_events.shipment_id, excluded.shipment_id) \
           where tracking_events.shipment_id is null and excluded.shipment_id is not null",
    )
    .bind(scan.tracking_number)
    .bind(scan.event_at)
    .bind(scan.raw_status)
    .bind(scan.raw_substatus)
    .bind(scan.carrier)
    .bind(scan.shipment_id)
    .bind(scan.vocabulary)
    .bind(scan.description)
    .bind(&scan.location)
    .bind(scan.estimated_delivery_at)
    .bind(scan.message_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// One scan of a parcel, as an order's detail shows it.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub(crate) struct TrackingEvent {
    /// When the carrier scanned it (the carrier's clock).
    pub(crate) event_at: DateTime<Utc>,
    /// The carrier's status word in its vocabulary (`vocabulary`), unchanged.
    pub(crate) raw_status: String,
    /// The carrier's finer status, when it gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) raw_substatus: Option<String>,
    /// `orderly`, `easypost`, `aftership`, ...
    pub(crate) vocabulary: String,
    /// The carrier's words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    /// Where, as the carrier said it (city, postal code, country, description).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) location: Option<serde_json::Value>,
    /// The delivery the carrier expected then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) estimated_delivery_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub(crate) tracking_number: String,
    #[serde(skip)]
    pub(crate) shipment_id: Option<Uuid>,
}

/// The scans of the parcels `shipments` (ids) or `numbers` (tracking numbers), oldest
/// first.
pub(crate) async fn of(
    conn: &mut PgConnection,
    shipments: &[Uuid],
    numbers: &[String],
) -> Result<Vec<TrackingEvent>, sqlx::Error> {
    if shipments.is_empty() && numbers.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        "select event_at, raw_status, nullif(raw_substatus, '') as raw_substatus, vocabulary, \
           description, location, estimated_delivery_at, tracking_number, shipment_id \
         from tracking_events where shipment_id = any($1) or tracking_number = any($2) \
         order by event_at, raw_status",
    )
    .bind(shipments)
    .bind(numbers)
    .fetch_all(conn)
    .await
}
