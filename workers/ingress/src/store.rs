//! The ingress worker's SQL, against its own schema (`ingress`, the pool's search path):
//! the deliveries it took (one row per vendor and delivery key, the deduplication), and the
//! authenticated deliveries it refused (for operators).

use chrono::{DateTime, Utc};
use orderly_contracts::messages::ShipmentUpdated;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::Vendor;

/// How much of a refused body is kept for operators.
pub(crate) const BODY_EXCERPT_BYTES: usize = 4096;

/// Claims delivery `key` of `vendor` for message `message_id`, in the caller's transaction:
/// `None` if it is new (the caller writes its outbox row in the same transaction), else the
/// message the earlier delivery became (the caller writes nothing).
///
/// Two copies of one delivery arriving at once (a vendor's retry racing the first attempt)
/// meet on the primary key: the second waits for the first's transaction and then finds
/// its row.
pub(crate) async fn claim_delivery(
    conn: &mut PgConnection,
    vendor: Vendor,
    key: &str,
    message_id: Uuid,
    update: &ShipmentUpdated,
) -> Result<Option<Uuid>, sqlx::Error> {
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "insert into carrier_deliveries
           (vendor, delivery_key, message_id, carrier, tracking_number, raw_status, event_at)
         values ($1, $2, $3, $4, $5, $6, $7)
         on conflict (vendor, delivery_key) do nothing
         returning message_id",
    )
    .bind(vendor.as_str())
    .bind(key)
    .bind(message_id)
    .bind(&update.carrier)
    .bind(&update.tracking_number)
    .bind(&update.raw_status)
    .bind(update.event_at)
    .fetch_optional(&mut *conn)
    .await?;
    if inserted.is_some() {
        return Ok(None);
    }
    sqlx::query_scalar(
        "select message_id from carrier_deliveries where vendor = $1 and delivery_key = $2",
    )
    .bind(vendor.as_str())
    .bind(key)
    .fetch_one(conn)
    .await
    .map(Some)
}

/// An authenticated delivery that was refused, for the record.
#[derive(Debug)]
pub(crate) struct Refusal<'a> {
    pub(crate) vendor: Vendor,
    /// The HTTP status answered.
    pub(crate) status: u16,
    /// The field (a path in the vendor's JSON), if one is to blame.
    pub(crate) field: Option<&'a str>,
    /// Why.
    pub(crate) reason: &'a str,
    /// The body as received.
    pub(crate) body: &'a [u8],
    /// Its SHA-256, hex.
    pub(crate) body_sha256: &'a str,
}

/// Records a refused delivery with the first [`BODY_EXCERPT_BYTES`] of its body.
pub(crate) async fn record_refusal(
    pool: &PgPool,
    refusal: &Refusal<'_>,
) -> Result<(), sqlx::Error> {
    let excerpt =
        String::from_utf8_lossy(&refusal.body[..refusal.body.len().min(BODY_EXCERPT_BYTES)])
            .replace('\0', "\u{fffd}");
    sqlx::query(
        "insert into refused_deliveries
           (vendor, status, field, reason, body_excerpt, body_bytes, body_sha256)
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(refusal.vendor.as_str())
    .bind(i32::from(refusal.status))
    .bind(refusal.field)
    .bind(refusal.reason)
    .bind(excerpt)
    .bind(i64::try_from(refusal.body.len()).unwrap_or(i64::MAX))
    .bind(refusal.body_sha256)
    .execute(pool)
    .await?;
    Ok(())
}

/// A delivery taken and published, as recorded.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct Delivery {
    /// `easypost`, `aftership` or `shippo`.
    pub vendor: String,
    /// The vendor's event id, or `sha256:<hex>` of the body.
    pub delivery_key: String,
    /// The `shipment.updated` it became.
    pub message_id: Uuid,
    /// Carrier code, as published.
    pub carrier: String,
    /// Tracking number, as published.
    pub tracking_number: String,
    /// The vendor's status word.
    pub raw_status: String,
    /// When the event happened at the carrier.
    pub event_at: DateTime<Utc>,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
}

/// The latest deliveries, newest first (operators, tests).
pub async fn deliveries(pool: &PgPool, limit: i64) -> Result<Vec<Delivery>, sqlx::Error> {
    sqlx::query_as(
        "select vendor, delivery_key, message_id, carrier, tracking_number, raw_status,
                event_at, received_at
         from carrier_deliveries order by received_at desc, delivery_key limit $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// A refused delivery, as recorded.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct RefusedDelivery {
    /// Row id.
    pub id: i64,
    /// `easypost`, `aftership` or `shippo`.
    pub vendor: String,
    /// The HTTP status answered.
    pub status: i32,
    /// The field to blame, if any.
    pub field: Option<String>,
    /// Why it was refused.
    pub reason: String,
    /// The first 4 KiB of the body.
    pub body_excerpt: String,
    /// The body's full length.
    pub body_bytes: i64,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
}

/// The latest refused deliveries, newest first (operators, tests).
pub async fn refused_deliveries(
    pool: &PgPool,
    limit: i64,
) -> Result<Vec<RefusedDelivery>, sqlx::Error> {
    sqlx::query_as(
        "select id, vendor, status, field, reason, body_excerpt, body_bytes, received_at
         from refused_deliveries order by id desc limit $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}
