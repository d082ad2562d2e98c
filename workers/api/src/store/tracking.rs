//! The carriers' scans of a parcel (`tracking_events`): written once each by the
//! projection, a batch at a time, and read for an order's shipments by the detail.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

/// A carrier's scan, as `shipment.updated` said it.
#[derive(Debug, Clone)]
pub(crate) struct Scan {
    pub(crate) message_id: Uuid,
    pub(crate) shipment_id: Option<Uuid>,
    pub(crate) carrier: String,
    pub(crate) tracking_number: String,
    pub(crate) vocabulary: String,
    pub(crate) raw_status: String,
    /// `""`: none.
    pub(crate) raw_substatus: String,
    pub(crate) description: Option<String>,
    pub(crate) location: Option<serde_json::Value>,
    pub(crate) event_at: DateTime<Utc>,
    pub(crate) estimated_delivery_at: Option<DateTime<Utc>>,
}

impl Scan {
    /// What makes two scans the same scan.
    fn key(&self) -> (&str, DateTime<Utc>, &str, &str) {
        (
            &self.tracking_number,
            self.event_at,
            &self.raw_status,
            &self.raw_substatus,
        )
    }
}

/// Records `scans` in one statement, each unless the same scan (parcel, time, status) is
/// recorded; a repeat that names the shipment where the first did not fills it in.
pub(crate) async fn write(conn: &mut PgConnection, scans: &[Scan]) -> Result<(), sqlx::Error> {
    // One row per scan: a statement may not change a row twice.
    let mut unique: Vec<Scan> = Vec::with_capacity(scans.len());
    for scan in scans {
        match unique.iter_mut().find(|u| u.key() == scan.key()) {
            Some(known) => {
                known.shipment_id = known.shipment_id.or(scan.shipment_id);
            }
            None => unique.push(scan.clone()),
        }
    }
    if unique.is_empty() {
        return Ok(());
    }
    let text = |f: fn(&Scan) -> String| unique.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "insert into tracking_events as t (tracking_number, event_at, raw_status, \
           raw_substatus, carrier, shipment_id, vocabulary, description, location, \
           estimated_delivery_at, message_id) \
         select * from unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], \
           $5::text[], $6::uuid[], $7::text[], $8::text[], $9::jsonb[], $10::timestamptz[], \
           $11::uuid[]) \
         on conflict (tracking_number, event_at, raw_status, raw_substatus) do update \
           set shipment_id = excluded.shipment_id \
           where t.shipment_id is null and excluded.shipment_id is not null",
    )
    .bind(text(|s| s.tracking_number.clone()))
    .bind(unique.iter().map(|s| s.event_at).collect::<Vec<_>>())
    .bind(text(|s| s.raw_status.clone()))
    .bind(text(|s| s.raw_substatus.clone()))
    .bind(text(|s| s.carrier.clone()))
    .bind(unique.iter().map(|s| s.shipment_id).collect::<Vec<_>>())
    .bind(text(|s| s.vocabulary.clone()))
    .bind(
        unique
            .iter()
            .map(|s| s.description.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        unique
            .iter()
            .map(|s| s.location.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        unique
            .iter()
            .map(|s| s.estimated_delivery_at)
            .collect::<Vec<_>>(),
    )
    .bind(unique.iter().map(|s| s.message_id).collect::<Vec<_>>())
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
