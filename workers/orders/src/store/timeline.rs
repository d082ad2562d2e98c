//! The timeline, an order's audit trail: entries numbered from the timeline itself (last
//! number + 1) under the order's lock, one at a time or a run's in one statement.

use chrono::{DateTime, Utc};
use orderly_contracts::RawEnvelope;
use orderly_runtime::db;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

/// Declares [`TimelineKind`] from one list of variants and their stored forms.
macro_rules! timeline_kinds {
    ($( $(#[$doc:meta])* $variant:ident = $text:literal, )+) => {
        /// What a timeline entry records. Stored as text in the `kind` column, whose `CHECK`
        /// constraint lists the same words (a test compares the two).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum TimelineKind {
            $( $(#[$doc])* $variant, )+
        }

        impl TimelineKind {
            /// Every kind, in declaration order.
            #[cfg(test)]
            pub(crate) const ALL: &'static [TimelineKind] = &[ $( Self::$variant, )+ ];

            /// The stored form.
            pub(crate) fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }
        }
    };
}

timeline_kinds! {
    /// A new order was placed.
    Placed = "placed",
    /// Every line matched: `order.accepted` was sent.
    Accepted = "accepted",
    /// A line matched no product: `order.on_hold` was sent.
    OnHold = "on_hold",
    /// The status moved (`order.status_changed`).
    StatusChanged = "status_changed",
    /// Every shipment was delivered: `order.completed` was sent.
    Completed = "completed",
    /// `stock.reserved`.
    StockReserved = "stock_reserved",
    /// `stock.unavailable`.
    StockUnavailable = "stock_unavailable",
    /// `stock.released`.
    StockReleased = "stock_released",
    /// `shipment.requested`.
    ShipmentRequested = "shipment_requested",
    /// `shipment.dispatched`.
    ShipmentDispatched = "shipment_dispatched",
    /// `shipment.delivered`.
    ShipmentDelivered = "shipment_delivered",
    /// `shipment.exception`.
    ShipmentException = "shipment_exception",
    /// `invoice.issued`.
    InvoiceIssued = "invoice_issued",
    /// `credit_note.issued`.
    CreditNoteIssued = "credit_note_issued",
    /// `notification.sent`.
    NotificationSent = "notification_sent",
    /// `notification.failed`.
    NotificationFailed = "notification_failed",
    /// A re-push with the same or an older revision: ignored.
    DuplicateRepush = "duplicate_repush",
    /// A newer revision of a cancelled or completed order: noted only.
    RevisionIgnored = "revision_ignored",
    /// A newer revision replaced an order on hold or was applied as commands.
    RevisionApplied = "revision_applied",
    /// A cancellation request that cancelled something.
    Cancellation = "cancellation",
    /// A cancellation request that was refused.
    CancellationRefused = "cancellation_refused",
    /// A cancellation request already handled, received again.
    CancelDuplicate = "cancel_duplicate",
    /// A refund request recorded.
    Refund = "refund",
    /// A refund request refused (in part).
    RefundRefused = "refund_refused",
    /// A refund request already handled, received again.
    RefundDuplicate = "refund_duplicate",
    /// An order item exception resolved.
    ExceptionResolved = "exception_resolved",
    /// A resolution refused.
    ExceptionRefused = "exception_refused",
    /// A resolution already applied, received again.
    ExceptionDuplicate = "exception_duplicate",
    /// An operator's internal note.
    Note = "note",
    /// `setup.completed`: a service line's setup went through every stage.
    SetupCompleted = "setup_completed",
    /// An operator put the order on hold.
    Held = "held",
    /// An operator released the order.
    Released = "released",
    /// A hold or release refused (already held, not held, nothing left to hold).
    HoldRefused = "hold_refused",
    /// An operator's note, hold, release or address request already handled, received again.
    RequestDuplicate = "request_duplicate",
    /// An operator changed the order's address.
    AddressChanged = "address_changed",
    /// An operator's address change refused (something has shipped, the order is closed).
    AddressRefused = "address_refused",
}

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
    kind: TimelineKind,
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
    .bind(kind.as_str())
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
    pub(crate) kind: TimelineKind,
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
    db::unnest(
        "insert into timeline (order_id, seq, kind, message_id, message_type, producer, detail)
         select * from unnest($1::uuid[], $2::int[], $3::text[], $4::uuid[], $5::text[],
                              $6::text[], $7::text[])",
        entries,
    )
    .column(|e| e.order_id)
    .column(|e| e.seq)
    .column(|e| e.kind.as_str())
    .column(|e| e.message_id)
    .column(|e| e.message_type.as_str())
    .column(|e| e.producer.as_str())
    .column(|e| e.detail.as_str())
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

#[cfg(test)]
mod tests {
    use super::TimelineKind;

    /// The newest migration's `CHECK` constraint allows exactly the kinds the worker writes.
    #[test]
    fn the_check_constraint_lists_every_kind() {
        let migration = include_str!("../../../../migrations/20261207000030_setups.sql");
        let Some(allowed) = orderly_runtime::db::check_values(migration, "kind in (") else {
            panic!("the migration has no `kind in (...)` check");
        };
        let mut written: Vec<&str> = TimelineKind::ALL.iter().map(|k| k.as_str()).collect();
        written.sort_unstable();
        assert_eq!(allowed, written);
    }
}
