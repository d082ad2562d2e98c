//! The timeline, an order's audit trail: entries numbered from the timeline itself (last
//! number + 1) under the order's lock, one at a time or a run's in one statement.

use chrono::{DateTime, Utc};
use orderly_contracts::RawEnvelope;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

/// The message behind a timeline entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cause<'a> {
    /// Its id.
    pub(crate) message_id: Uuid,
    /// Its type.
    pub(crate) message_type: &'a str,
    /// Who sent it.
    pub(crate) producer: &'a str,
}

impl<'a> Cause<'a> {
    /// The cause of an incoming envelope.
    pub(crate) fn of(envelope: &'a RawEnvelope) -> Self {
        Self {
            message_id: envelope.message_id,
            message_type: &envelope.message_type,
            producer: &envelope.producer,
        }
    }
}

/// Appends an entry to an order's timeline; returns its number (the order's last one plus
/// one, read from the timeline's primary key). Callers hold the order's lock
/// ([`lock_order`]), which is what keeps two entries from taking the same number; were one
/// to try, the primary key would refuse it and the message would be retried.
pub(crate) async fn add_timeline(
    conn: &mut PgConnection,
    order_id: Uuid,
    kind: &str,
    cause: &Cause<'_>,
    detail: &str,
) -> sqlx::Result<i32> {
    sqlx::query_scalar(
        "insert into timeline (order_id, seq, kind, message_id, message_type, producer, detail)
         select $1, coalesce(max(seq), 0) + 1, $2, $3, $4, $5, $6
         from timeline where order_id = $1
         returning seq",
    )
    .bind(order_id)
    .bind(kind)
    .bind(cause.message_id)
    .bind(cause.message_type)
    .bind(cause.producer)
    .bind(detail)
    .fetch_one(conn)
    .await
}

/// A timeline entry numbered by its writer (who holds the order and knows its last number).
#[derive(Debug, Clone)]
pub(crate) struct NewEntry {
    /// The order.
    pub(crate) order_id: Uuid,
    /// Its number within the order.
    pub(crate) seq: i32,
    /// What happened.
    pub(crate) kind: &'static str,
    /// The message that caused it.
    pub(crate) message_id: Uuid,
    /// That message's type.
    pub(crate) message_type: String,
    /// Who sent it.
    pub(crate) producer: String,
    /// In words.
    pub(crate) detail: String,
}

/// Appends numbered timeline entries, in one statement. A number taken twice (two writers
/// of one order, which the order's lock rules out) fails on the primary key.
pub(crate) async fn add_timeline_entries(
    conn: &mut PgConnection,
    entries: &[NewEntry],
) -> sqlx::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let orders: Vec<Uuid> = entries.iter().map(|e| e.order_id).collect();
    let seqs: Vec<i32> = entries.iter().map(|e| e.seq).collect();
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind).collect();
    let messages: Vec<Uuid> = entries.iter().map(|e| e.message_id).collect();
    let types: Vec<&str> = entries.iter().map(|e| e.message_type.as_str()).collect();
    let producers: Vec<&str> = entries.iter().map(|e| e.producer.as_str()).collect();
    let details: Vec<&str> = entries.iter().map(|e| e.detail.as_str()).collect();
    sqlx::query(
        "insert into timeline (order_id, seq, kind, message_id, message_type, producer, detail)
         select * from unnest($1::uuid[], $2::int[], $3::text[], $4::uuid[], $5::text[],
                              $6::text[], $7::text[])",
    )
    .bind(&orders)
    .bind(&seqs)
    .bind(&kinds)
    .bind(&messages)
    .bind(&types)
    .bind(&producers)
    .bind(&details)
    .execute(conn)
    .await?;
    Ok(())
}

/// One timeline entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct TimelineEntry {
    /// Its number within the order, from 1.
    pub seq: i32,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// What happened (`placed`, `accepted`, `status_changed`, `shipment_dispatched`, ...).
    pub kind: String,
    /// The message that caused it.
    pub message_id: Option<Uuid>,
    /// That message's type.
    pub message_type: Option<String>,
    /// Who sent it.
    pub producer: Option<String>,
    /// In words.
    pub detail: String,
}

/// An order's timeline, oldest first (for the CLI and the demo).
pub async fn timeline(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<Vec<TimelineEntry>> {
    sqlx::query_as(
        "select seq, at, kind, message_id, message_type, producer, detail
         from timeline where order_id = $1 order by seq",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await
}
