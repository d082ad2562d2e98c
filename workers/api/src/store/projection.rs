//! The read model's writes. Each function is one statement in the handler's transaction;
//! what may be written was decided by [`crate::domain::projection`] on what
//! [`ensure_order`] returned (with the row locked), under the order's lock key.

use chrono::{DateTime, Utc};
use orderly_contracts::types::{Channel, OrderStatus, StoreId};
use serde::Serialize;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::projection::Shown;

/// How an order is named by every `order.*` event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OrderKey<'a> {
    pub(crate) order_id: Uuid,
    pub(crate) store_id: &'a str,
    pub(crate) channel: Option<Channel>,
    pub(crate) marketplace: Option<&'a str>,
    pub(crate) external_order_id: &'a str,
}

impl<'a> OrderKey<'a> {
    /// The key an event gives that does not name the channel (`order.address_changed`,
    /// `order.hold_changed`).
    pub(crate) fn unchannelled(
        order_id: Uuid,
        store_id: &'a StoreId,
        external_order_id: &'a str,
    ) -> Self {
        Self {
            order_id,
            store_id: store_id.as_str(),
            channel: None,
            marketplace: None,
            external_order_id,
        }
    }
}

/// Creates the order's row if it has none (listed at `first_seen` until its `placed_at` is
/// known), fills in the channel and marketplace if they were unknown, and returns what the
/// read model shows of the order, the row locked for the rest of the transaction.
///
/// Read first: most events are about an order the read model has, with its channel known,
/// and a read (`for update`) writes nothing, where an upsert would write a new version of
/// the whole (wide) row for every event. Only a new order is inserted, and only a channel
/// learnt late is written.
pub(crate) async fn ensure_order(
    conn: &mut PgConnection,
    key: OrderKey<'_>,
    first_seen: DateTime<Utc>,
) -> Result<Shown, sqlx::Error> {
    type Row = (i32, i32, i32, i64, bool, bool);
    let shown = |(revision, address_revision, address_amendment, sequence, _, _): Row| Shown {
        revision: u32::try_from(revision).unwrap_or(0),
        address_revision: u32::try_from(address_revision).unwrap_or(0),
        address_amendment: u32::try_from(address_amendment).unwrap_or(0),
        status_sequence: u64::try_from(sequence).unwrap_or(0),
    };
    let existing: Option<Row> = sqlx::query_as(
        "select revision, address_revision, address_amendment, status_sequence, \
           channel is null, marketplace is null \
         from orders where order_id = $1 for update",
    )
    .bind(key.order_id)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = existing {
        let (_, _, _, _, no_channel, no_marketplace) = row;
        let learnt =
            (no_channel && key.channel.is_some()) || (no_marketplace && key.marketplace.is_some());
        if learnt {
            sqlx::query(
                "update orders set channel = coalesce(channel, $2), \
                   marketplace = coalesce(marketplace, $3) where order_id = $1",
            )
            .bind(key.order_id)
            .bind(key.channel.map(Channel::as_str))
            .bind(key.marketplace)
            .execute(&mut *conn)
            .await?;
        }
        return Ok(shown(row));
    }
    // New to the read model. Under the order's lock key nobody else inserts it, but the
    // statement stays correct if someone did: it then updates and locks, like before.
    let row: Row = sqlx::query_as(
        "insert into orders (order_id, store_id, channel, marketplace, external_order_id, placed_at) \
         values ($1, $2, $3, $4, $5, $6) \
         on conflict (order_id) do update set \
           channel = coalesce(orders.channel, excluded.channel), \
           marketplace = coalesce(orders.marketplace, excluded.marketplace) \
         returning revision, address_revision, address_amendment, status_sequence, false, false",
    )
    .bind(key.order_id)
    .bind(key.store_id)
    .bind(key.channel.map(Channel::as_str))
    .bind(key.marketplace)
    .bind(key.external_order_id)
    .bind(first_seen)
    .fetch_one(conn)
    .await?;
    Ok(shown(row))
}

/// An accepted order's header, lines and money, as `order.accepted` carries them.
#[derive(Debug)]
pub(crate) struct Header<'a, C, L, P> {
    pub(crate) revision: u32,
    pub(crate) placed_at: DateTime<Utc>,
    pub(crate) currency: &'a str,
    pub(crate) total: rust_decimal::Decimal,
    pub(crate) shipping: rust_decimal::Decimal,
    pub(crate) discount: rust_decimal::Decimal,
    pub(crate) tax: Option<rust_decimal::Decimal>,
    pub(crate) prices_include_tax: bool,
    pub(crate) customer_name: &'a str,
    pub(crate) customer_email: Option<&'a str>,
    pub(crate) customer: &'a C,
    pub(crate) lines: &'a L,
    pub(crate) payment: &'a P,
}

/// Writes the header of an accepted order (its revision applies).
pub(crate) async fn write_header<C: Serialize, L: Serialize, P: Serialize>(
    conn: &mut PgConnection,
    order_id: Uuid,
    h: &Header<'_, C, L, P>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update orders set revision = $2, placed_at = $3, placed_at_known = true, currency = $4, \
           total = $5, shipping = $6, discount = $7, tax = $8, prices_include_tax = $9, \
           customer_name = $10, customer_email = $11, customer = $12, lines = $13, payment = $14, \
           exceptions = null, updated_at = now() \
         where order_id = $1",
    )
    .bind(order_id)
    .bind(i32::try_from(h.revision).unwrap_or(i32::MAX))
    .bind(h.placed_at)
    .bind(h.currency)
    .bind(h.total)
    .bind(h.shipping)
    .bind(h.discount)
    .bind(h.tax)
    .bind(h.prices_include_tax)
    .bind(h.customer_name)
    .bind(h.customer_email)
    .bind(Json(h.customer))
    .bind(Json(h.lines))
    .bind(Json(h.payment))
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes an order's addresses of `revision` (it applies).
pub(crate) async fn write_addresses<A: Serialize>(
    conn: &mut PgConnection,
    order_id: Uuid,
    (revision, amendment): (u32, u32),
    billing: &A,
    shipping: &A,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update orders set address_revision = $2, address_amendment = $5, \
           billing_address = $3, shipping_address = $4, updated_at = now() where order_id = $1",
    )
    .bind(order_id)
    .bind(i32::try_from(revision).unwrap_or(i32::MAX))
    .bind(Json(billing))
    .bind(Json(shipping))
    .bind(i32::try_from(amendment).unwrap_or(i32::MAX))
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes the order item exceptions of an order on hold.
pub(crate) async fn write_exceptions<E: Serialize>(
    conn: &mut PgConnection,
    order_id: Uuid,
    exceptions: &E,
) -> Result<(), sqlx::Error> {
    sqlx::query("update orders set exceptions = $2, updated_at = now() where order_id = $1")
        .bind(order_id)
        .bind(Json(exceptions))
        .execute(conn)
        .await?;
    Ok(())
}

/// Shows `status` with `sequence` (0: provisional) since `at`.
pub(crate) async fn write_status(
    conn: &mut PgConnection,
    order_id: Uuid,
    status: OrderStatus,
    sequence: u64,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update orders set status = $2, status_sequence = $3, status_changed_at = $4, \
           updated_at = now() where order_id = $1",
    )
    .bind(order_id)
    .bind(status.as_str())
    .bind(i64::try_from(sequence).unwrap_or(i64::MAX))
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// One status change, kept in the history whether or not it is the newest.
#[derive(Debug)]
pub(crate) struct StatusChange<'a> {
    pub(crate) order_id: Uuid,
    pub(crate) sequence: u64,
    pub(crate) from: Option<OrderStatus>,
    pub(crate) to: OrderStatus,
    pub(crate) reason: Option<&'a str>,
    pub(crate) at: DateTime<Utc>,
}

/// Adds a status change to the history (once per sequence).
pub(crate) async fn record_status_change(
    conn: &mut PgConnection,
    change: &StatusChange<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into status_history (order_id, sequence, from_status, to_status, reason, changed_at) \
         values ($1, $2, $3, $4, $5, $6) on conflict do nothing",
    )
    .bind(change.order_id)
    .bind(i64::try_from(change.sequence).unwrap_or(i64::MAX))
    .bind(change.from.map(OrderStatus::as_str))
    .bind(change.to.as_str())
    .bind(change.reason)
    .bind(change.at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The customer's name and e-mail from a status change, where no accepted order gave them.
pub(crate) async fn write_contact_if_unknown(
    conn: &mut PgConnection,
    order_id: Uuid,
    name: &str,
    email: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update orders set customer_name = $2, customer_email = $3 \
         where order_id = $1 and customer_name is null",
    )
    .bind(order_id)
    .bind(name)
    .bind(email)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records one `order.cancelled` (by its message id, so a redelivery adds nothing).
pub(crate) async fn record_cancellation<L: Serialize>(
    conn: &mut PgConnection,
    message_id: Uuid,
    order_id: Uuid,
    scope: &str,
    lines: &L,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into cancellations (message_id, order_id, scope, lines, reason, cancelled_at) \
         values ($1, $2, $3, $4, $5, $6) on conflict do nothing",
    )
    .bind(message_id)
    .bind(order_id)
    .bind(scope)
    .bind(Json(lines))
    .bind(reason)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that the order completed, with its invoice numbers; its currency and total where
/// no accepted order gave them.
pub(crate) async fn record_completion(
    conn: &mut PgConnection,
    order_id: Uuid,
    at: DateTime<Utc>,
    currency: &str,
    total: rust_decimal::Decimal,
    invoice_numbers: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update orders set completed_at = coalesce(completed_at, $2), \
           currency = coalesce(currency, $3), total = coalesce(total, $4), \
           invoice_numbers = $5, updated_at = now() where order_id = $1",
    )
    .bind(order_id)
    .bind(at)
    .bind(currency)
    .bind(total)
    .bind(Json(invoice_numbers))
    .execute(conn)
    .await?;
    Ok(())
}

/// What a shipment event says; each event fills its own columns and leaves the others.
#[derive(Debug, Default)]
pub(crate) struct ShipmentFacts<'a> {
    pub(crate) warehouse_id: Option<&'a str>,
    pub(crate) ship_to: Option<serde_json::Value>,
    pub(crate) shipping_method: Option<&'a str>,
    pub(crate) items: Option<serde_json::Value>,
    pub(crate) requested_at: Option<DateTime<Utc>>,
    pub(crate) carrier: Option<&'a str>,
    pub(crate) tracking_number: Option<&'a str>,
    pub(crate) tracking_url: Option<&'a str>,
    pub(crate) dispatched_at: Option<DateTime<Utc>>,
    pub(crate) delivered_at: Option<DateTime<Utc>>,
}

/// Merges a shipment event into the shipment's row: a column once known keeps its value,
/// except the items, where the dispatched ones (what left) replace the requested ones.
pub(crate) async fn merge_shipment(
    conn: &mut PgConnection,
    shipment_id: Uuid,
    order_id: Uuid,
    f: &ShipmentFacts<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into shipments (shipment_id, order_id, warehouse_id, ship_to, shipping_method, items, \
           requested_at, carrier, tracking_number, tracking_url, dispatched_at, delivered_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         on conflict (shipment_id) do update set \
           warehouse_id = coalesce(shipments.warehouse_id, excluded.warehouse_id), \
           ship_to = coalesce(shipments.ship_to, excluded.ship_to), \
           shipping_method = coalesce(shipments.shipping_method, excluded.shipping_method), \
           items = coalesce(shipments.items, excluded.items), \
           requested_at = coalesce(shipments.requested_at, excluded.requested_at), \
           carrier = coalesce(shipments.carrier, excluded.carrier), \
           tracking_number = coalesce(shipments.tracking_number, excluded.tracking_number), \
           tracking_url = coalesce(shipments.tracking_url, excluded.tracking_url), \
           dispatched_at = coalesce(shipments.dispatched_at, excluded.dispatched_at), \
           delivered_at = coalesce(shipments.delivered_at, excluded.delivered_at)",
    )
    .bind(shipment_id)
    .bind(order_id)
    .bind(f.warehouse_id)
    .bind(f.ship_to.as_ref().map(Json))
    .bind(f.shipping_method)
    .bind(f.items.as_ref().map(Json))
    .bind(f.requested_at)
    .bind(f.carrier)
    .bind(f.tracking_number)
    .bind(f.tracking_url)
    .bind(f.dispatched_at)
    .bind(f.delivered_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// What a `shipment.exception` says.
#[derive(Debug)]
pub(crate) struct ShipmentProblem<'a> {
    pub(crate) status: &'a str,
    pub(crate) raw_status: &'a str,
    pub(crate) description: Option<&'a str>,
    pub(crate) at: DateTime<Utc>,
}

/// Shows a shipment's exception unless a newer one (by event time) is shown already, so
/// exceptions arriving out of order end with the latest shown. The shipment's row exists
/// ([`merge_shipment`] ran first in the transaction).
pub(crate) async fn record_shipment_exception(
    conn: &mut PgConnection,
    shipment_id: Uuid,
    e: &ShipmentProblem<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update shipments set exception_status = $2, exception_raw_status = $3, \
           exception_description = $4, exception_at = $5 \
         where shipment_id = $1 and (exception_at is null or exception_at <= $5)",
    )
    .bind(shipment_id)
    .bind(e.status)
    .bind(e.raw_status)
    .bind(e.description)
    .bind(e.at)
    .execute(conn)
    .await?;
    Ok(())
}

/// An issued invoice or credit note, as its event announced it.
#[derive(Debug)]
pub(crate) struct Document<'a> {
    pub(crate) document_id: Uuid,
    pub(crate) order_id: Uuid,
    pub(crate) kind: &'static str,
    pub(crate) number: &'a str,
    /// What a credit note credits, and why (none for an invoice).
    pub(crate) credit: Option<CreditOf<'a>>,
    pub(crate) issued_at: DateTime<Utc>,
    pub(crate) currency: &'a str,
    pub(crate) vat_treatment: &'a str,
    pub(crate) totals: &'a orderly_contracts::messages::DocumentTotals,
    pub(crate) pdf: &'a orderly_contracts::messages::DocumentRef,
}

/// The invoice a credit note credits, and why.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CreditOf<'a> {
    pub(crate) invoice_id: Uuid,
    pub(crate) invoice_number: &'a str,
    pub(crate) reason: &'a str,
}

/// Records a document (once: issued documents never change).
pub(crate) async fn record_document(
    conn: &mut PgConnection,
    d: &Document<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into documents (document_id, order_id, kind, number, invoice_id, invoice_number, \
           reason, issued_at, currency, vat_treatment, net, tax, gross, pdf_uri, pdf_sha256, \
           pdf_size_bytes, pdf_key) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
         on conflict do nothing",
    )
    .bind(d.document_id)
    .bind(d.order_id)
    .bind(d.kind)
    .bind(d.number)
    .bind(d.credit.map(|c| c.invoice_id))
    .bind(d.credit.map(|c| c.invoice_number))
    .bind(d.credit.map(|c| c.reason))
    .bind(d.issued_at)
    .bind(d.currency)
    .bind(d.vat_treatment)
    .bind(d.totals.net.value())
    .bind(d.totals.tax.value())
    .bind(d.totals.gross.value())
    .bind(&d.pdf.uri)
    .bind(&d.pdf.sha256)
    .bind(i64::try_from(d.pdf.size_bytes).unwrap_or(i64::MAX))
    .bind(d.pdf.key.as_deref())
    .execute(conn)
    .await?;
    Ok(())
}

/// An operator's hold change, if newer than the one shown (the order's row is locked).
pub(crate) async fn write_hold(
    conn: &mut PgConnection,
    order_id: Uuid,
    held: bool,
    sequence: u32,
    reason: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update orders set held = $2, hold_sequence = $3, hold_reason = $4, hold_changed_at = $5, \
           updated_at = now() \
         where order_id = $1 and hold_sequence < $3",
    )
    .bind(order_id)
    .bind(held)
    .bind(i64::from(sequence))
    .bind(reason)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}
