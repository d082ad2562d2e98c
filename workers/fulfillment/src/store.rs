//! All of fulfillment's SQL. Every function takes the connection (inside the handler's
//! transaction, or a pool connection for operators' listings); table names are unqualified
//! because the worker's `search_path` is its own schema.
//!
//! Values go in as the contract types' wire forms and come back through the same parsers,
//! so a row that no longer parses (edited by hand) is an error that names the column, not a
//! silently wrong message.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use orderly_contracts::messages::{
    AcceptedLine, CancellationScope, InvoiceTiming, OrderAccepted, ShipmentUpdated,
    StatusVocabulary, TrackingLocation,
};
use orderly_contracts::types::{
    Amount, Channel, CurrencyCode, Gtin, Quantity, ShipmentStatus, Sku, StoreId, TaxCategory,
    WarehouseId,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::{
    Cancellation, InvoiceProgress, LineProgress, Notice, Observation, PlannedShipment,
    ShipmentState, Tracking,
};

/// A stored value that does not parse any more.
fn corrupt(what: &str, detail: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(format!("fulfillment: stored {what} is invalid: {detail}").into())
}

fn parse<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> Result<T, sqlx::Error> {
    r.map_err(|e| corrupt(what, e))
}

fn units(what: &str, n: i64) -> Result<u32, sqlx::Error> {
    parse(what, u32::try_from(n))
}

/// Serialises the transaction's work on one order: every handler that changes an order's
/// shipments takes this lock first, so a cancellation, a reservation and a dispatch of the
/// same order never interleave. Held until the transaction ends.
pub async fn lock_order(conn: &mut PgConnection, order_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "select pg_advisory_xact_lock(hashtext('orderly.fulfillment'), hashtext(($1::uuid)::text))",
    )
    .bind(order_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Serialises the handling of one carrier tracking number: binding it to a shipment and
/// looking it up happen one at a time, so an update naming only the tracking number either
/// sees the binding or is recorded as unmatched before the binding adopts it; never
/// neither. Taken before the order's lock.
pub async fn lock_tracking_number(
    conn: &mut PgConnection,
    carrier: &str,
    tracking_number: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "select pg_advisory_xact_lock(hashtext('orderly.fulfillment.tracking'),
                                      hashtext($1 || '/' || $2))",
    )
    .bind(carrier)
    .bind(tracking_number)
    .execute(conn)
    .await?;
    Ok(())
}

// --- store settings --------------------------------------------------------------------------

/// Keeps `timing` as the store's policy if `revision` is newer than the one stored. Returns
/// whether it was.
pub async fn upsert_store_settings(
    conn: &mut PgConnection,
    store_id: &StoreId,
    revision: i64,
    timing: InvoiceTiming,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "insert into store_settings (store_id, revision, invoice_timing) values ($1, $2, $3)
         on conflict (store_id) do update
           set revision = excluded.revision, invoice_timing = excluded.invoice_timing,
               updated_at = now()
           where store_settings.revision < excluded.revision",
    )
    .bind(store_id.as_str())
    .bind(revision)
    .bind(timing.as_str())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The store's invoice timing, if its settings were ever received.
pub async fn invoice_timing(
    conn: &mut PgConnection,
    store_id: &StoreId,
) -> Result<Option<InvoiceTiming>, sqlx::Error> {
    let timing: Option<String> =
        sqlx::query_scalar("select invoice_timing from store_settings where store_id = $1")
            .bind(store_id.as_str())
            .fetch_optional(conn)
            .await?;
    timing
        .map(|t| parse("invoice_timing", t.parse::<InvoiceTiming>()))
        .transpose()
}

// --- order snapshots -------------------------------------------------------------------------

/// What storing an `order.accepted` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotWrite {
    /// First time this order was seen.
    Inserted,
    /// A higher revision replaced the stored one.
    Updated,
    /// The same or an older revision: nothing changed.
    Unchanged,
}

/// Stores the accepted order, or replaces it with a higher revision. `timing` is recorded
/// only when the order is new: an order keeps the policy it was accepted under.
pub async fn upsert_order(
    conn: &mut PgConnection,
    order: &OrderAccepted,
    timing: InvoiceTiming,
) -> Result<SnapshotWrite, sqlx::Error> {
    let inserted: Option<bool> = sqlx::query_scalar(
        "insert into orders (order_id, store_id, channel, marketplace, external_order_id,
                             revision, placed_at, currency, prices_include_tax, customer,
                             billing_address, shipping_address, payment, shipping, discount,
                             tax, total, invoice_timing)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
         on conflict (order_id) do update set
           store_id = excluded.store_id, channel = excluded.channel,
           marketplace = excluded.marketplace, external_order_id = excluded.external_order_id,
           revision = excluded.revision, placed_at = excluded.placed_at,
           currency = excluded.currency, prices_include_tax = excluded.prices_include_tax,
           customer = excluded.customer, billing_address = excluded.billing_address,
           shipping_address = excluded.shipping_address, payment = excluded.payment,
           shipping = excluded.shipping, discount = excluded.discount, tax = excluded.tax,
           total = excluded.total, updated_at = now()
         where orders.revision < excluded.revision
         returning (xmax = 0)",
    )
    .bind(order.order_id)
    .bind(order.store_id.as_str())
    .bind(order.channel.as_str())
    .bind(order.marketplace.as_deref())
    .bind(&order.external_order_id)
    .bind(i64::from(order.revision))
    .bind(order.placed_at)
    .bind(order.currency.as_str())
    .bind(order.prices_include_tax)
    .bind(Json(&order.customer))
    .bind(Json(&order.billing_address))
    .bind(Json(&order.shipping_address))
    .bind(Json(&order.payment))
    .bind(order.shipping.value())
    .bind(order.discount.value())
    .bind(order.tax.map(Amount::value))
    .bind(order.total.value())
    .bind(timing.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(inserted) = inserted else {
        return Ok(SnapshotWrite::Unchanged);
    };
    for (position, line) in (0i32..).zip(&order.lines) {
        sqlx::query(
            "insert into order_lines (order_id, line_id, position, sku, gtin, title, quantity,
                                      unit_price, discount, tax_category)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             on conflict (order_id, line_id) do update set
               position = excluded.position, sku = excluded.sku, gtin = excluded.gtin,
               title = excluded.title, quantity = excluded.quantity,
               unit_price = excluded.unit_price, discount = excluded.discount,
               tax_category = excluded.tax_category",
        )
        .bind(order.order_id)
        .bind(&line.line_id)
        .bind(position)
        .bind(line.sku.as_str())
        .bind(line.gtin.as_ref().map(Gtin::as_str))
        .bind(&line.title)
        .bind(i64::from(line.quantity.get()))
        .bind(line.unit_price.value())
        .bind(line.discount.value())
        .bind(line.tax_category.as_str())
        .execute(&mut *conn)
        .await?;
    }
    Ok(if inserted {
        SnapshotWrite::Inserted
    } else {
        SnapshotWrite::Updated
    })
}

/// An order as fulfillment keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredOrder {
    /// The accepted order (latest revision).
    pub order: OrderAccepted,
    /// The invoice timing it was accepted under.
    pub invoice_timing: InvoiceTiming,
    /// Whether `stock.reserved` was already turned into shipments.
    pub shipments_created: bool,
    /// What per-shipment invoices have covered.
    pub progress: InvoiceProgress,
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    order_id: Uuid,
    store_id: String,
    channel: String,
    marketplace: Option<String>,
    external_order_id: String,
    revision: i64,
    placed_at: DateTime<Utc>,
    currency: String,
    prices_include_tax: bool,
    customer: Json<orderly_contracts::messages::Customer>,
    billing_address: Json<orderly_contracts::messages::Address>,
    shipping_address: Json<orderly_contracts::messages::Address>,
    payment: Json<orderly_contracts::messages::Payment>,
    shipping: Decimal,
    discount: Decimal,
    tax: Option<Decimal>,
    total: Decimal,
    invoice_timing: String,
    shipping_invoiced: bool,
    discount_invoiced: Decimal,
    shipments_created: bool,
}

#[derive(sqlx::FromRow)]
struct LineRow {
    line_id: String,
    sku: String,
    gtin: Option<String>,
    title: String,
    quantity: i64,
    unit_price: Decimal,
    discount: Decimal,
    tax_category: String,
    invoiced_quantity: i64,
    invoiced_discount: Decimal,
}

fn amount(what: &str, value: Decimal) -> Result<Amount, sqlx::Error> {
    parse(what, Amount::new(value))
}

/// The stored order, if `order.accepted` was received.
pub async fn load_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Option<StoredOrder>, sqlx::Error> {
    let row: Option<OrderRow> = sqlx::query_as(
        "select order_id, store_id, channel, marketplace, external_order_id, revision, placed_at,
                currency, prices_include_tax, customer, billing_address, shipping_address,
                payment, shipping, discount, tax, total, invoice_timing, shipping_invoiced,
                discount_invoiced, shipments_created_at is not null as shipments_created
         from orders where order_id = $1",
    )
    .bind(order_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let line_rows: Vec<LineRow> = sqlx::query_as(
        "select line_id, sku, gtin, title, quantity, unit_price, discount, tax_category,
                invoiced_quantity, invoiced_discount
         from order_lines where order_id = $1 order by position",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut lines = Vec::with_capacity(line_rows.len());
    let mut progress = InvoiceProgress {
        shipping_invoiced: row.shipping_invoiced,
        discount_invoiced: row.discount_invoiced,
        lines: BTreeMap::new(),
    };
    for l in line_rows {
        progress.lines.insert(
            l.line_id.clone(),
            LineProgress {
                quantity: units("invoiced_quantity", l.invoiced_quantity)?,
                discount: l.invoiced_discount,
            },
        );
        lines.push(AcceptedLine {
            sku: parse("sku", Sku::parse(&l.sku))?,
            gtin: l
                .gtin
                .as_deref()
                .map(|g| parse("gtin", Gtin::parse(g)))
                .transpose()?,
            title: l.title,
            quantity: parse("quantity", Quantity::new(units("quantity", l.quantity)?))?,
            unit_price: amount("unit_price", l.unit_price)?,
            discount: amount("discount", l.discount)?,
            tax_category: parse("tax_category", l.tax_category.parse::<TaxCategory>())?,
            line_id: l.line_id,
        });
    }
    let order = OrderAccepted {
        order_id: row.order_id,
        store_id: parse("store_id", StoreId::parse(&row.store_id))?,
        channel: parse("channel", row.channel.parse::<Channel>())?,
        marketplace: row.marketplace,
        external_order_id: row.external_order_id,
        revision: parse("revision", u32::try_from(row.revision))?,
        placed_at: row.placed_at,
        currency: parse("currency", CurrencyCode::parse(&row.currency))?,
        prices_include_tax: row.prices_include_tax,
        customer: row.customer.0,
        billing_address: row.billing_address.0,
        shipping_address: row.shipping_address.0,
        lines,
        shipping: amount("shipping", row.shipping)?,
        discount: amount("discount", row.discount)?,
        tax: row.tax.map(|t| amount("tax", t)).transpose()?,
        total: amount("total", row.total)?,
        payment: row.payment.0,
    };
    Ok(Some(StoredOrder {
        order,
        invoice_timing: parse(
            "invoice_timing",
            row.invoice_timing.parse::<InvoiceTiming>(),
        )?,
        shipments_created: row.shipments_created,
        progress,
    }))
}

/// Saves what per-shipment invoices have covered.
pub async fn save_invoice_progress(
    conn: &mut PgConnection,
    order_id: Uuid,
    progress: &InvoiceProgress,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update orders set shipping_invoiced = $2, discount_invoiced = $3, updated_at = now()
         where order_id = $1",
    )
    .bind(order_id)
    .bind(progress.shipping_invoiced)
    .bind(progress.discount_invoiced)
    .execute(&mut *conn)
    .await?;
    for (line_id, line) in &progress.lines {
        sqlx::query(
            "update order_lines set invoiced_quantity = $3, invoiced_discount = $4
             where order_id = $1 and line_id = $2",
        )
        .bind(order_id)
        .bind(line_id)
        .bind(i64::from(line.quantity))
        .bind(line.discount)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

// --- cancellations ---------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct StoredLine {
    line_id: String,
    quantity: u32,
}

/// Records a cancellation under its key. Returns whether it is new.
pub async fn record_cancellation(
    conn: &mut PgConnection,
    order_id: Uuid,
    cancel_key: Uuid,
    cancellation: &Cancellation,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let lines: Vec<StoredLine> = cancellation
        .lines
        .iter()
        .map(|(line_id, quantity)| StoredLine {
            line_id: line_id.clone(),
            quantity: *quantity,
        })
        .collect();
    let done = sqlx::query(
        "insert into order_cancellations (order_id, cancel_key, scope, lines, reason)
         values ($1, $2, $3, $4, $5) on conflict do nothing",
    )
    .bind(order_id)
    .bind(cancel_key)
    .bind(cancellation.scope.as_str())
    .bind(Json(&lines))
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Every cancellation recorded for the order, oldest first.
pub async fn cancellations(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Vec<Cancellation>, sqlx::Error> {
    let rows: Vec<(String, Json<Vec<StoredLine>>)> = sqlx::query_as(
        "select scope, lines from order_cancellations where order_id = $1
         order by received_at, cancel_key",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(scope, lines)| {
            Ok(Cancellation {
                scope: parse("cancellation scope", scope.parse::<CancellationScope>())?,
                lines: lines
                    .0
                    .into_iter()
                    .map(|l| (l.line_id, l.quantity))
                    .collect(),
            })
        })
        .collect()
}

// --- shipments -------------------------------------------------------------------------------

/// A shipment as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Shipment {
    /// Orderly's shipment id.
    pub shipment_id: Uuid,
    /// The order.
    pub order_id: Uuid,
    /// The warehouse that ships it.
    pub warehouse_id: WarehouseId,
    /// Position of its allocation.
    pub position: u32,
    /// Its tracking state.
    pub tracking: Tracking,
    /// Carrier of its first bound tracking number.
    pub carrier: Option<String>,
    /// Its first bound tracking number.
    pub tracking_number: Option<String>,
    /// When it was cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct ShipmentRow {
    shipment_id: Uuid,
    order_id: Uuid,
    warehouse_id: String,
    position: i32,
    status: String,
    status_at: Option<DateTime<Utc>>,
    status_cause: Option<Uuid>,
    dispatched_at: Option<DateTime<Utc>>,
    carrier: Option<String>,
    tracking_number: Option<String>,
    cancelled_at: Option<DateTime<Utc>>,
}

impl TryFrom<ShipmentRow> for Shipment {
    type Error = sqlx::Error;

    fn try_from(row: ShipmentRow) -> Result<Self, Self::Error> {
        let state = ShipmentState::parse(&row.status)
            .ok_or_else(|| corrupt("shipment status", &row.status))?;
        Ok(Self {
            shipment_id: row.shipment_id,
            order_id: row.order_id,
            warehouse_id: parse("warehouse_id", WarehouseId::parse(&row.warehouse_id))?,
            position: parse("position", u32::try_from(row.position))?,
            tracking: Tracking {
                state,
                since: row.status_at,
                cause: row.status_cause,
                dispatched_at: row.dispatched_at,
            },
            carrier: row.carrier,
            tracking_number: row.tracking_number,
            cancelled_at: row.cancelled_at,
        })
    }
}

/// Creates the planned shipments of an order (with fresh UUIDv7 ids) and marks the order's
/// reservation as handled. A warehouse that already has a shipment for the order is skipped.
/// Returns the shipments created, with their ids.
pub async fn insert_shipments<'p>(
    conn: &mut PgConnection,
    order_id: Uuid,
    plan: &'p [PlannedShipment],
) -> Result<Vec<(Uuid, &'p PlannedShipment)>, sqlx::Error> {
    let mut created = Vec::with_capacity(plan.len());
    for planned in plan {
        let status = if planned.cancelled {
            ShipmentState::Cancelled
        } else {
            ShipmentState::Requested
        };
        let id: Option<Uuid> = sqlx::query_scalar(
            "insert into shipments (shipment_id, order_id, warehouse_id, position, status,
                                    cancelled_at, cancel_reason)
             values ($1, $2, $3, $4, $5,
                     case when $6 then now() end,
                     case when $6 then 'cancelled before the reservation arrived' end)
             on conflict (order_id, warehouse_id) do nothing
             returning shipment_id",
        )
        .bind(Uuid::now_v7())
        .bind(order_id)
        .bind(planned.warehouse_id.as_str())
        .bind(parse("position", i32::try_from(planned.position))?)
        .bind(status.as_str())
        .bind(planned.cancelled)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(id) = id else {
            continue;
        };
        for (position, item) in (0i32..).zip(&planned.items) {
            sqlx::query(
                "insert into shipment_items (shipment_id, line_id, position, sku, gtin, title,
                                             quantity, allocated_quantity)
                 values ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(id)
            .bind(&item.line_id)
            .bind(position)
            .bind(item.sku.as_str())
            .bind(item.gtin.as_ref().map(Gtin::as_str))
            .bind(&item.title)
            .bind(i64::from(item.quantity))
            .bind(i64::from(item.allocated))
            .execute(&mut *conn)
            .await?;
        }
        created.push((id, planned));
    }
    sqlx::query(
        "update orders set shipments_created_at = coalesce(shipments_created_at, now())
         where order_id = $1",
    )
    .bind(order_id)
    .execute(&mut *conn)
    .await?;
    Ok(created)
}

/// A shipment by id.
pub async fn shipment(
    conn: &mut PgConnection,
    shipment_id: Uuid,
) -> Result<Option<Shipment>, sqlx::Error> {
    let row: Option<ShipmentRow> = sqlx::query_as(
        "select shipment_id, order_id, warehouse_id, position, status, status_at, status_cause,
                dispatched_at, carrier, tracking_number, cancelled_at
         from shipments where shipment_id = $1",
    )
    .bind(shipment_id)
    .fetch_optional(conn)
    .await?;
    row.map(Shipment::try_from).transpose()
}

/// A shipment by id, locked for this transaction.
pub async fn shipment_for_update(
    conn: &mut PgConnection,
    shipment_id: Uuid,
) -> Result<Option<Shipment>, sqlx::Error> {
    let row: Option<ShipmentRow> = sqlx::query_as(
        "select shipment_id, order_id, warehouse_id, position, status, status_at, status_cause,
                dispatched_at, carrier, tracking_number, cancelled_at
         from shipments where shipment_id = $1 for update",
    )
    .bind(shipment_id)
    .fetch_optional(conn)
    .await?;
    row.map(Shipment::try_from).transpose()
}

/// The shipments of an order, in allocation order.
pub async fn shipments_of_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Vec<Shipment>, sqlx::Error> {
    let rows: Vec<ShipmentRow> = sqlx::query_as(
        "select shipment_id, order_id, warehouse_id, position, status, status_at, status_cause,
                dispatched_at, carrier, tracking_number, cancelled_at
         from shipments where order_id = $1 order by position",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Shipment::try_from).collect()
}

/// An item of a shipment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentItem {
    /// The order line.
    pub line_id: String,
    /// The SKU.
    pub sku: Sku,
    /// The GTIN, if known.
    pub gtin: Option<Gtin>,
    /// Product name.
    pub title: String,
    /// Units still to ship (0 when cancelled).
    pub quantity: u32,
    /// Units allocated.
    pub allocated: u32,
}

#[derive(sqlx::FromRow)]
struct ItemRow {
    shipment_id: Uuid,
    line_id: String,
    sku: String,
    gtin: Option<String>,
    title: String,
    quantity: i64,
    allocated_quantity: i64,
}

impl TryFrom<ItemRow> for (Uuid, ShipmentItem) {
    type Error = sqlx::Error;

    fn try_from(row: ItemRow) -> Result<Self, Self::Error> {
        Ok((
            row.shipment_id,
            ShipmentItem {
                line_id: row.line_id,
                sku: parse("sku", Sku::parse(&row.sku))?,
                gtin: row
                    .gtin
                    .as_deref()
                    .map(|g| parse("gtin", Gtin::parse(g)))
                    .transpose()?,
                title: row.title,
                quantity: units("quantity", row.quantity)?,
                allocated: units("allocated_quantity", row.allocated_quantity)?,
            },
        ))
    }
}

/// The items of a shipment, in allocation order.
pub async fn items(
    conn: &mut PgConnection,
    shipment_id: Uuid,
) -> Result<Vec<ShipmentItem>, sqlx::Error> {
    let rows: Vec<ItemRow> = sqlx::query_as(
        "select shipment_id, line_id, sku, gtin, title, quantity, allocated_quantity
         from shipment_items where shipment_id = $1 order by position",
    )
    .bind(shipment_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| <(Uuid, ShipmentItem)>::try_from(r).map(|(_, item)| item))
        .collect()
}

/// The items of every shipment of an order, by shipment.
pub async fn items_of_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<BTreeMap<Uuid, Vec<ShipmentItem>>, sqlx::Error> {
    let rows: Vec<ItemRow> = sqlx::query_as(
        "select i.shipment_id, i.line_id, i.sku, i.gtin, i.title, i.quantity,
                i.allocated_quantity
         from shipment_items i join shipments s using (shipment_id)
         where s.order_id = $1 order by s.position, i.position",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    let mut out: BTreeMap<Uuid, Vec<ShipmentItem>> = BTreeMap::new();
    for row in rows {
        let (id, item) = <(Uuid, ShipmentItem)>::try_from(row)?;
        out.entry(id).or_default().push(item);
    }
    Ok(out)
}

/// Sets the units of a line still to ship.
pub async fn set_item_quantity(
    conn: &mut PgConnection,
    shipment_id: Uuid,
    line_id: &str,
    quantity: u32,
) -> Result<(), sqlx::Error> {
    sqlx::query("update shipment_items set quantity = $3 where shipment_id = $1 and line_id = $2")
        .bind(shipment_id)
        .bind(line_id)
        .bind(i64::from(quantity))
        .execute(conn)
        .await?;
    Ok(())
}

/// Cancels a shipment that has not left. Returns whether it was cancelled now.
pub async fn cancel_shipment(
    conn: &mut PgConnection,
    shipment_id: Uuid,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update shipments set status = 'cancelled', cancelled_at = now(), cancel_reason = $2,
                              updated_at = now()
         where shipment_id = $1 and status in ('requested', 'label_created')",
    )
    .bind(shipment_id)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Saves a shipment's tracking state.
pub async fn save_tracking(
    conn: &mut PgConnection,
    shipment_id: Uuid,
    tracking: &Tracking,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update shipments set status = $2, status_at = $3, status_cause = $4,
                              dispatched_at = coalesce(dispatched_at, $5), updated_at = now()
         where shipment_id = $1",
    )
    .bind(shipment_id)
    .bind(tracking.state.as_str())
    .bind(tracking.since)
    .bind(tracking.cause)
    .bind(tracking.dispatched_at)
    .execute(conn)
    .await?;
    Ok(())
}

// --- tracking numbers and events -------------------------------------------------------------

/// The shipment a tracking number is bound to.
pub async fn bound_shipment(
    conn: &mut PgConnection,
    carrier: &str,
    tracking_number: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "select shipment_id from tracking_numbers where carrier = $1 and tracking_number = $2",
    )
    .bind(carrier)
    .bind(tracking_number)
    .fetch_optional(conn)
    .await
}

/// Binds a tracking number to a shipment unless it is bound already, and makes it the
/// shipment's tracking number if it has none. Returns the shipment it is bound to (which
/// may be another one).
pub async fn bind_tracking(
    conn: &mut PgConnection,
    carrier: &str,
    tracking_number: &str,
    shipment_id: Uuid,
    message_id: Uuid,
) -> Result<Uuid, sqlx::Error> {
    sqlx::query(
        "insert into tracking_numbers (carrier, tracking_number, shipment_id, bound_by_message)
         values ($1, $2, $3, $4) on conflict do nothing",
    )
    .bind(carrier)
    .bind(tracking_number)
    .bind(shipment_id)
    .bind(message_id)
    .execute(&mut *conn)
    .await?;
    let bound: Uuid = sqlx::query_scalar(
        "select shipment_id from tracking_numbers where carrier = $1 and tracking_number = $2",
    )
    .bind(carrier)
    .bind(tracking_number)
    .fetch_one(&mut *conn)
    .await?;
    if bound == shipment_id {
        sqlx::query(
            "update shipments set carrier = $2, tracking_number = $3, updated_at = now()
             where shipment_id = $1 and tracking_number is null",
        )
        .bind(shipment_id)
        .bind(carrier)
        .bind(tracking_number)
        .execute(&mut *conn)
        .await?;
    }
    Ok(bound)
}

/// A tracking event to record.
#[derive(Debug, Clone)]
pub struct NewTrackingEvent<'a> {
    /// The shipment.
    pub shipment_id: Uuid,
    /// The message that carried it.
    pub source_message_id: Uuid,
    /// Carrier code.
    pub carrier: &'a str,
    /// Tracking number.
    pub tracking_number: &'a str,
    /// Whose words.
    pub vocabulary: StatusVocabulary,
    /// The word.
    pub raw_status: &'a str,
    /// Ours, if the word has one.
    pub mapped_status: Option<ShipmentStatus>,
    /// Carrier's text.
    pub description: Option<&'a str>,
    /// Where.
    pub location: Option<serde_json::Value>,
    /// When, at the carrier.
    pub event_at: DateTime<Utc>,
    /// Delivery estimate.
    pub estimated_delivery_at: Option<DateTime<Utc>>,
}

impl<'a> NewTrackingEvent<'a> {
    /// The event carried by `update` in message `message_id`, for `shipment_id`.
    pub fn from_update(
        shipment_id: Uuid,
        message_id: Uuid,
        update: &'a ShipmentUpdated,
        mapped_status: Option<ShipmentStatus>,
    ) -> Self {
        Self {
            shipment_id,
            source_message_id: message_id,
            carrier: &update.carrier,
            tracking_number: &update.tracking_number,
            vocabulary: update.vocabulary,
            raw_status: &update.raw_status,
            mapped_status,
            description: update.description.as_deref(),
            location: update.location.as_ref().map(location_json),
            event_at: update.event_at,
            estimated_delivery_at: update.estimated_delivery_at,
        }
    }
}

fn location_json(location: &TrackingLocation) -> serde_json::Value {
    serde_json::to_value(location).unwrap_or(serde_json::Value::Null)
}

/// Records a tracking event; a second copy (same shipment and source message) is ignored.
/// Returns whether it is new.
pub async fn insert_tracking_event(
    conn: &mut PgConnection,
    event: &NewTrackingEvent<'_>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "insert into tracking_events (shipment_id, source_message_id, carrier, tracking_number,
                                      vocabulary, raw_status, mapped_status, description,
                                      location, event_at, estimated_delivery_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         on conflict (shipment_id, source_message_id) do nothing",
    )
    .bind(event.shipment_id)
    .bind(event.source_message_id)
    .bind(event.carrier)
    .bind(event.tracking_number)
    .bind(event.vocabulary.as_str())
    .bind(event.raw_status)
    .bind(event.mapped_status.map(ShipmentStatus::as_str))
    .bind(event.description)
    .bind(event.location.as_ref().map(Json))
    .bind(event.event_at)
    .bind(event.estimated_delivery_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Notes that the event from `source_message_id` changed the shipment's state on arrival.
pub async fn mark_state_changed(
    conn: &mut PgConnection,
    shipment_id: Uuid,
    source_message_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update tracking_events set changed_state = true
         where shipment_id = $1 and source_message_id = $2",
    )
    .bind(shipment_id)
    .bind(source_message_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The mapped events of a shipment, for the state machine.
pub async fn observations(
    conn: &mut PgConnection,
    shipment_id: Uuid,
) -> Result<Vec<Observation>, sqlx::Error> {
    let rows: Vec<(DateTime<Utc>, String, Uuid)> = sqlx::query_as(
        "select event_at, mapped_status, source_message_id from tracking_events
         where shipment_id = $1 and mapped_status is not null",
    )
    .bind(shipment_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(at, status, source)| {
            Ok(Observation {
                at,
                status: parse("mapped_status", status.parse::<ShipmentStatus>())?,
                source,
            })
        })
        .collect()
}

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
                mapped_status, description, location, event_at, received_at, changed_state
         from tracking_events where shipment_id = $1 order by event_at, id",
    )
    .bind(shipment_id)
    .fetch_all(conn)
    .await
}

/// The event from `source_message_id` in a shipment's history.
pub async fn tracking_event(
    conn: &mut PgConnection,
    shipment_id: Uuid,
    source_message_id: Uuid,
) -> Result<Option<TrackingEvent>, sqlx::Error> {
    sqlx::query_as(
        "select shipment_id, source_message_id, carrier, tracking_number, vocabulary, raw_status,
                mapped_status, description, location, event_at, received_at, changed_state
         from tracking_events where shipment_id = $1 and source_message_id = $2",
    )
    .bind(shipment_id)
    .bind(source_message_id)
    .fetch_optional(conn)
    .await
}

// --- unmatched tracking events ---------------------------------------------------------------

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
pub async fn record_unmatched(
    conn: &mut PgConnection,
    message_id: Uuid,
    update: &ShipmentUpdated,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into unmatched_tracking_events
           (message_id, shipment_id, carrier, tracking_number, vocabulary, raw_status,
            description, location, event_at, estimated_delivery_at, reason)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         on conflict (message_id) do update set reason = excluded.reason",
    )
    .bind(message_id)
    .bind(update.shipment_id)
    .bind(&update.carrier)
    .bind(&update.tracking_number)
    .bind(update.vocabulary.as_str())
    .bind(&update.raw_status)
    .bind(update.description.as_deref())
    .bind(update.location.as_ref().map(|l| Json(location_json(l))))
    .bind(update.event_at)
    .bind(update.estimated_delivery_at)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// Unresolved events waiting for `carrier`/`tracking_number` that could belong to
/// `shipment_id` (they named no shipment, or this one), locked.
pub async fn waiting_unmatched(
    conn: &mut PgConnection,
    carrier: &str,
    tracking_number: &str,
    shipment_id: Uuid,
) -> Result<Vec<UnmatchedEvent>, sqlx::Error> {
    sqlx::query_as(
        "select id, message_id, shipment_id, carrier, tracking_number, vocabulary, raw_status,
                description, location, event_at, estimated_delivery_at, reason, received_at,
                resolved_shipment_id, resolved_at
         from unmatched_tracking_events
         where carrier = $1 and tracking_number = $2 and resolved_at is null
           and (shipment_id is null or shipment_id = $3)
         order by id for update",
    )
    .bind(carrier)
    .bind(tracking_number)
    .bind(shipment_id)
    .fetch_all(conn)
    .await
}

/// Marks an unmatched event as attached to `shipment_id`.
pub async fn resolve_unmatched(
    conn: &mut PgConnection,
    id: i64,
    shipment_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update unmatched_tracking_events set resolved_shipment_id = $2, resolved_at = now()
         where id = $1",
    )
    .bind(id)
    .bind(shipment_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Unmatched tracking events for operators, newest first: the open ones, or all.
pub async fn list_unmatched(
    conn: &mut PgConnection,
    include_resolved: bool,
    limit: i64,
) -> Result<Vec<UnmatchedEvent>, sqlx::Error> {
    sqlx::query_as(
        "select id, message_id, shipment_id, carrier, tracking_number, vocabulary, raw_status,
                description, location, event_at, estimated_delivery_at, reason, received_at,
                resolved_shipment_id, resolved_at
         from unmatched_tracking_events
         where $1 or resolved_at is null
         order by id desc limit $2",
    )
    .bind(include_resolved)
    .bind(limit)
    .fetch_all(conn)
    .await
}

// --- notices and invoice requests ------------------------------------------------------------

/// The one-off events already published for a shipment.
pub async fn notices_sent(
    conn: &mut PgConnection,
    shipment_id: Uuid,
) -> Result<Vec<Notice>, sqlx::Error> {
    let kinds: Vec<String> =
        sqlx::query_scalar("select kind from shipment_notices where shipment_id = $1")
            .bind(shipment_id)
            .fetch_all(conn)
            .await?;
    kinds
        .iter()
        .map(|k| Notice::parse(k).ok_or_else(|| corrupt("notice kind", k)))
        .collect()
}

/// Records that `notice` was published as `message_id`. Returns false if it already was.
pub async fn record_notice(
    conn: &mut PgConnection,
    shipment_id: Uuid,
    notice: Notice,
    message_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "insert into shipment_notices (shipment_id, kind, message_id) values ($1, $2, $3)
         on conflict do nothing",
    )
    .bind(shipment_id)
    .bind(notice.key())
    .bind(message_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Claims the invoice request of an order (`shipment_id` = None, on order) or of a shipment.
/// Returns false when it was claimed before: the request was already sent.
pub async fn claim_invoice_request(
    conn: &mut PgConnection,
    request_id: Uuid,
    order_id: Uuid,
    shipment_id: Option<Uuid>,
    timing: InvoiceTiming,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "insert into invoice_requests (request_id, order_id, shipment_id, timing)
         values ($1, $2, $3, $4) on conflict do nothing",
    )
    .bind(request_id)
    .bind(order_id)
    .bind(shipment_id)
    .bind(timing.as_str())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// An invoice request sent.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InvoiceRequestRow {
    /// Its id.
    pub request_id: Uuid,
    /// The order.
    pub order_id: Uuid,
    /// The shipment, for per-shipment invoices.
    pub shipment_id: Option<Uuid>,
    /// `on_order` or `on_shipment`.
    pub timing: String,
    /// When.
    pub requested_at: DateTime<Utc>,
}

/// The invoice requests sent for an order.
pub async fn invoice_requests(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Vec<InvoiceRequestRow>, sqlx::Error> {
    sqlx::query_as(
        "select request_id, order_id, shipment_id, timing, requested_at
         from invoice_requests where order_id = $1 order by requested_at, request_id",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await
}

// --- consistency -----------------------------------------------------------------------------

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
