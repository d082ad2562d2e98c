//! All of fulfillment's SQL. Every function takes the connection (inside the handler's
//! transaction, or a pool connection for operators' listings); table names are unqualified
//! because the worker's `search_path` is its own schema.
//!
//! Values go in as the contract types' wire forms and come back through the same parsers,
//! so a row that no longer parses (edited by hand) is an error that names the column, not a
//! silently wrong message.

use std::collections::{BTreeMap, HashMap};

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

/// The invoice timing of the stores among `store_ids` whose settings were ever received,
/// in one statement.
pub async fn invoice_timings(
    conn: &mut PgConnection,
    store_ids: &[&str],
) -> Result<HashMap<String, InvoiceTiming>, sqlx::Error> {
    if store_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, String)> = sqlx::query_as(
        "select store_id, invoice_timing from store_settings where store_id = any($1)",
    )
    .bind(store_ids)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(store, t)| Ok((store, parse("invoice_timing", t.parse::<InvoiceTiming>())?)))
        .collect()
}

// --- order snapshots -------------------------------------------------------------------------

/// What storing an `order.accepted` did (for the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotWrite {
    /// First time this order was seen.
    Inserted,
    /// A higher revision replaced the stored one.
    Updated,
    /// The same or an older revision: nothing changed.
    Unchanged,
}

/// Stores accepted orders: an order not stored yet is inserted with its `timing`; a stored
/// one is replaced when the revision is higher (it keeps the timing it was accepted under),
/// its lines upserted; otherwise nothing changes. Two statements, however many orders (each
/// at most once).
pub async fn upsert_orders(
    conn: &mut PgConnection,
    orders: &[(&OrderAccepted, InvoiceTiming)],
) -> Result<(), sqlx::Error> {
    if orders.is_empty() {
        return Ok(());
    }
    let o = || orders.iter().map(|(order, _)| *order);
    let ids: Vec<Uuid> = o().map(|x| x.order_id).collect();
    let stores: Vec<&str> = o().map(|x| x.store_id.as_str()).collect();
    let channels: Vec<&str> = o().map(|x| x.channel.as_str()).collect();
    let marketplaces: Vec<Option<&str>> = o().map(|x| x.marketplace.as_deref()).collect();
    let externals: Vec<&str> = o().map(|x| x.external_order_id.as_str()).collect();
    let revisions: Vec<i64> = o().map(|x| i64::from(x.revision)).collect();
    let placed: Vec<DateTime<Utc>> = o().map(|x| x.placed_at).collect();
    let currencies: Vec<&str> = o().map(|x| x.currency.as_str()).collect();
    let incl: Vec<bool> = o().map(|x| x.prices_include_tax).collect();
    let customers: Vec<Json<&orderly_contracts::messages::Customer>> =
        o().map(|x| Json(&x.customer)).collect();
    let billing: Vec<Json<&orderly_contracts::messages::Address>> =
        o().map(|x| Json(&x.billing_address)).collect();
    let shipping_to: Vec<Json<&orderly_contracts::messages::Address>> =
        o().map(|x| Json(&x.shipping_address)).collect();
    let payments: Vec<Json<&orderly_contracts::messages::Payment>> =
        o().map(|x| Json(&x.payment)).collect();
    let shipping: Vec<Decimal> = o().map(|x| x.shipping.value()).collect();
    let discounts: Vec<Decimal> = o().map(|x| x.discount.value()).collect();
    let taxes: Vec<Option<Decimal>> = o().map(|x| x.tax.map(Amount::value)).collect();
    let totals: Vec<Decimal> = o().map(|x| x.total.value()).collect();
    let timings: Vec<&str> = orders.iter().map(|(_, t)| t.as_str()).collect();
    let written: Vec<Uuid> = sqlx::query_scalar(
        "insert into orders (order_id, store_id, channel, marketplace, external_order_id,
                             revision, placed_at, currency, prices_include_tax, customer,
                             billing_address, shipping_address, payment, shipping, discount,
                             tax, total, invoice_timing)
         select * from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                              $6::bigint[], $7::timestamptz[], $8::text[], $9::bool[],
                              $10::jsonb[], $11::jsonb[], $12::jsonb[], $13::jsonb[],
                              $14::numeric[], $15::numeric[], $16::numeric[], $17::numeric[],
                              $18::text[])
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
         returning order_id",
    )
    .bind(&ids)
    .bind(&stores)
    .bind(&channels)
    .bind(&marketplaces)
    .bind(&externals)
    .bind(&revisions)
    .bind(&placed)
    .bind(&currencies)
    .bind(&incl)
    .bind(&customers)
    .bind(&billing)
    .bind(&shipping_to)
    .bind(&payments)
    .bind(&shipping)
    .bind(&discounts)
    .bind(&taxes)
    .bind(&totals)
    .bind(&timings)
    .fetch_all(&mut *conn)
    .await?;
    // Lines of the orders written (inserted or replaced), not of unchanged ones.
    let lines = || {
        o().filter(|x| written.contains(&x.order_id))
            .flat_map(|x| (0i32..).zip(&x.lines).map(move |(p, l)| (x.order_id, p, l)))
    };
    if lines().next().is_none() {
        return Ok(());
    }
    let order_ids: Vec<Uuid> = lines().map(|(id, _, _)| id).collect();
    let line_ids: Vec<&str> = lines().map(|(_, _, l)| l.line_id.as_str()).collect();
    let positions: Vec<i32> = lines().map(|(_, p, _)| p).collect();
    let skus: Vec<&str> = lines().map(|(_, _, l)| l.sku.as_str()).collect();
    let gtins: Vec<Option<&str>> = lines()
        .map(|(_, _, l)| l.gtin.as_ref().map(Gtin::as_str))
        .collect();
    let titles: Vec<&str> = lines().map(|(_, _, l)| l.title.as_str()).collect();
    let quantities: Vec<i64> = lines()
        .map(|(_, _, l)| i64::from(l.quantity.get()))
        .collect();
    let prices: Vec<Decimal> = lines().map(|(_, _, l)| l.unit_price.value()).collect();
    let line_discounts: Vec<Decimal> = lines().map(|(_, _, l)| l.discount.value()).collect();
    let categories: Vec<&str> = lines().map(|(_, _, l)| l.tax_category.as_str()).collect();
    sqlx::query(
        "insert into order_lines (order_id, line_id, position, sku, gtin, title, quantity,
                                  unit_price, discount, tax_category)
         select * from unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[],
                              $6::text[], $7::bigint[], $8::numeric[], $9::numeric[],
                              $10::text[])
         on conflict (order_id, line_id) do update set
           position = excluded.position, sku = excluded.sku, gtin = excluded.gtin,
           title = excluded.title, quantity = excluded.quantity,
           unit_price = excluded.unit_price, discount = excluded.discount,
           tax_category = excluded.tax_category",
    )
    .bind(&order_ids)
    .bind(&line_ids)
    .bind(&positions)
    .bind(&skus)
    .bind(&gtins)
    .bind(&titles)
    .bind(&quantities)
    .bind(&prices)
    .bind(&line_discounts)
    .bind(&categories)
    .execute(conn)
    .await?;
    Ok(())
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
    order_id: Uuid,
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

/// The stored order, if `order.accepted` was received (locked, see [`load_orders`]).
pub async fn load_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Option<StoredOrder>, sqlx::Error> {
    Ok(load_orders(conn, &[order_id]).await?.remove(&order_id))
}

/// The stored orders among `ids`, locked for this transaction, in two statements (orders,
/// then their lines). The lock keys the runtime takes serialise the work on an order; the
/// row lock keeps that true of anything that writes an order without them.
pub async fn load_orders(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, StoredOrder>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<OrderRow> = sqlx::query_as(
        "select order_id, store_id, channel, marketplace, external_order_id, revision, placed_at,
                currency, prices_include_tax, customer, billing_address, shipping_address,
                payment, shipping, discount, tax, total, invoice_timing, shipping_invoiced,
                discount_invoiced, shipments_created_at is not null as shipments_created
         from orders where order_id = any($1) for update",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Ok(HashMap::new());
    }
    let found: Vec<Uuid> = rows.iter().map(|r| r.order_id).collect();
    let line_rows: Vec<LineRow> = sqlx::query_as(
        "select order_id, line_id, sku, gtin, title, quantity, unit_price, discount, tax_category,
                invoiced_quantity, invoiced_discount
         from order_lines where order_id = any($1) order by order_id, position",
    )
    .bind(&found)
    .fetch_all(&mut *conn)
    .await?;
    let mut lines_of: HashMap<Uuid, Vec<LineRow>> = HashMap::new();
    for l in line_rows {
        lines_of.entry(l.order_id).or_default().push(l);
    }
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let line_rows = lines_of.remove(&row.order_id).unwrap_or_default();
        out.insert(row.order_id, stored_order(row, line_rows)?);
    }
    Ok(out)
}

fn stored_order(row: OrderRow, line_rows: Vec<LineRow>) -> Result<StoredOrder, sqlx::Error> {
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
    Ok(StoredOrder {
        order,
        invoice_timing: parse(
            "invoice_timing",
            row.invoice_timing.parse::<InvoiceTiming>(),
        )?,
        shipments_created: row.shipments_created,
        progress,
    })
}

/// Saves what per-shipment invoices have covered, for several orders in two statements.
pub async fn save_invoice_progress(
    conn: &mut PgConnection,
    orders: &[(Uuid, &InvoiceProgress)],
) -> Result<(), sqlx::Error> {
    if orders.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = orders.iter().map(|(id, _)| *id).collect();
    let shipping: Vec<bool> = orders.iter().map(|(_, p)| p.shipping_invoiced).collect();
    let discounts: Vec<Decimal> = orders.iter().map(|(_, p)| p.discount_invoiced).collect();
    sqlx::query(
        "update orders o set shipping_invoiced = v.s, discount_invoiced = v.d, updated_at = now()
         from unnest($1::uuid[], $2::bool[], $3::numeric[]) as v(id, s, d)
         where o.order_id = v.id",
    )
    .bind(&ids)
    .bind(&shipping)
    .bind(&discounts)
    .execute(&mut *conn)
    .await?;
    let lines = || {
        orders
            .iter()
            .flat_map(|(id, p)| p.lines.iter().map(move |(line, l)| (*id, line, l)))
    };
    let order_ids: Vec<Uuid> = lines().map(|(id, _, _)| id).collect();
    let line_ids: Vec<&str> = lines().map(|(_, line, _)| line.as_str()).collect();
    let quantities: Vec<i64> = lines().map(|(_, _, l)| i64::from(l.quantity)).collect();
    let line_discounts: Vec<Decimal> = lines().map(|(_, _, l)| l.discount).collect();
    sqlx::query(
        "update order_lines l set invoiced_quantity = v.q, invoiced_discount = v.d
         from unnest($1::uuid[], $2::text[], $3::bigint[], $4::numeric[]) as v(id, line, q, d)
         where l.order_id = v.id and l.line_id = v.line",
    )
    .bind(&order_ids)
    .bind(&line_ids)
    .bind(&quantities)
    .bind(&line_discounts)
    .execute(conn)
    .await?;
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
    Ok(cancellations_of(conn, &[order_id])
        .await?
        .remove(&order_id)
        .unwrap_or_default())
}

/// The cancellations of several orders (see [`cancellations`]), in one statement.
pub async fn cancellations_of(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Cancellation>>, sqlx::Error> {
    let mut out: HashMap<Uuid, Vec<Cancellation>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let rows: Vec<(Uuid, String, Json<Vec<StoredLine>>)> = sqlx::query_as(
        "select order_id, scope, lines from order_cancellations where order_id = any($1)
         order by order_id, received_at, cancel_key",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?;
    for (order_id, scope, lines) in rows {
        out.entry(order_id).or_default().push(Cancellation {
            scope: parse("cancellation scope", scope.parse::<CancellationScope>())?,
            lines: lines
                .0
                .into_iter()
                .map(|l| (l.line_id, l.quantity))
                .collect(),
        });
    }
    Ok(out)
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

/// Creates planned shipments (each with the id given, of the order given), in two
/// statements. Returns how many were created: fewer than given when an order already had a
/// shipment from one of the warehouses (those are skipped, items included).
pub async fn insert_shipments(
    conn: &mut PgConnection,
    shipments: &[(Uuid, Uuid, &PlannedShipment)],
) -> Result<u64, sqlx::Error> {
    if shipments.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = shipments.iter().map(|(id, _, _)| *id).collect();
    let orders: Vec<Uuid> = shipments.iter().map(|(_, order, _)| *order).collect();
    let warehouses: Vec<&str> = shipments
        .iter()
        .map(|(_, _, p)| p.warehouse_id.as_str())
        .collect();
    let positions: Vec<i32> = shipments
        .iter()
        .map(|(_, _, p)| parse("position", i32::try_from(p.position)))
        .collect::<Result<_, _>>()?;
    let cancelled: Vec<bool> = shipments.iter().map(|(_, _, p)| p.cancelled).collect();
    let created: Vec<Uuid> = sqlx::query_scalar(
        "insert into shipments (shipment_id, order_id, warehouse_id, position, status,
                                cancelled_at, cancel_reason)
         select id, o, w, p, case when c then 'cancelled' else 'requested' end,
                case when c then now() end,
                case when c then 'cancelled before the reservation arrived' end
         from unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[], $5::bool[])
           as s(id, o, w, p, c)
         on conflict (order_id, warehouse_id) do nothing
         returning shipment_id",
    )
    .bind(&ids)
    .bind(&orders)
    .bind(&warehouses)
    .bind(&positions)
    .bind(&cancelled)
    .fetch_all(&mut *conn)
    .await?;
    let items = || {
        shipments
            .iter()
            .filter(|(id, _, _)| created.contains(id))
            .flat_map(|(id, _, p)| {
                (0i32..)
                    .zip(&p.items)
                    .map(move |(position, item)| (*id, position, item))
            })
    };
    let item_shipments: Vec<Uuid> = items().map(|(id, _, _)| id).collect();
    let lines: Vec<&str> = items().map(|(_, _, i)| i.line_id.as_str()).collect();
    let item_positions: Vec<i32> = items().map(|(_, p, _)| p).collect();
    let skus: Vec<&str> = items().map(|(_, _, i)| i.sku.as_str()).collect();
    let gtins: Vec<Option<&str>> = items()
        .map(|(_, _, i)| i.gtin.as_ref().map(Gtin::as_str))
        .collect();
    let titles: Vec<&str> = items().map(|(_, _, i)| i.title.as_str()).collect();
    let quantities: Vec<i64> = items().map(|(_, _, i)| i64::from(i.quantity)).collect();
    let allocated: Vec<i64> = items().map(|(_, _, i)| i64::from(i.allocated)).collect();
    sqlx::query(
        "insert into shipment_items (shipment_id, line_id, position, sku, gtin, title, quantity,
                                     allocated_quantity)
         select * from unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[],
                              $6::text[], $7::bigint[], $8::bigint[])",
    )
    .bind(&item_shipments)
    .bind(&lines)
    .bind(&item_positions)
    .bind(&skus)
    .bind(&gtins)
    .bind(&titles)
    .bind(&quantities)
    .bind(&allocated)
    .execute(conn)
    .await?;
    Ok(created.len() as u64)
}

/// Marks the orders' reservations as turned into shipments (the first time counts).
pub async fn mark_shipments_created(
    conn: &mut PgConnection,
    order_ids: &[Uuid],
) -> Result<(), sqlx::Error> {
    if order_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "update orders set shipments_created_at = coalesce(shipments_created_at, now())
         where order_id = any($1)",
    )
    .bind(order_ids)
    .execute(conn)
    .await?;
    Ok(())
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

// --- tracking numbers and events -------------------------------------------------------------

/// A tracking event to record.
#[derive(Debug, Clone)]
pub struct NewTrackingEvent {
    /// The shipment.
    pub shipment_id: Uuid,
    /// The message that carried it.
    pub source_message_id: Uuid,
    /// Carrier code.
    pub carrier: String,
    /// Tracking number.
    pub tracking_number: String,
    /// Whose words.
    pub vocabulary: StatusVocabulary,
    /// The word.
    pub raw_status: String,
    /// Ours, if the word has one.
    pub mapped_status: Option<ShipmentStatus>,
    /// Carrier's text.
    pub description: Option<String>,
    /// Where.
    pub location: Option<serde_json::Value>,
    /// When, at the carrier.
    pub event_at: DateTime<Utc>,
    /// Delivery estimate.
    pub estimated_delivery_at: Option<DateTime<Utc>>,
    /// Whether it changed the shipment's state when it arrived.
    pub changed_state: bool,
}

impl NewTrackingEvent {
    /// The event carried by `update` in message `message_id`, for `shipment_id`.
    pub fn from_update(
        shipment_id: Uuid,
        message_id: Uuid,
        update: &ShipmentUpdated,
        mapped_status: Option<ShipmentStatus>,
    ) -> Self {
        Self {
            shipment_id,
            source_message_id: message_id,
            carrier: update.carrier.clone(),
            tracking_number: update.tracking_number.clone(),
            vocabulary: update.vocabulary,
            raw_status: update.raw_status.clone(),
            mapped_status,
            description: update.description.clone(),
            location: update.location.as_ref().map(location_json),
            event_at: update.event_at,
            estimated_delivery_at: update.estimated_delivery_at,
            changed_state: false,
        }
    }
}

fn location_json(location: &TrackingLocation) -> serde_json::Value {
    serde_json::to_value(location).unwrap_or(serde_json::Value::Null)
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

// --- runs of messages (see `flow`) -----------------------------------------------------------

/// The order each carrier update is about, found through the shipment it names or, when
/// it names none, the shipment its tracking number is bound to: `(index, order)` for the
/// updates whose shipment is known, in one statement (no lock).
pub async fn orders_of_updates(
    conn: &mut PgConnection,
    updates: &[(Option<Uuid>, &str, &str)],
) -> Result<HashMap<usize, Uuid>, sqlx::Error> {
    if updates.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<Option<Uuid>> = updates.iter().map(|(id, _, _)| *id).collect();
    let carriers: Vec<&str> = updates.iter().map(|(_, c, _)| *c).collect();
    let numbers: Vec<&str> = updates.iter().map(|(_, _, n)| *n).collect();
    let rows: Vec<(i64, Uuid)> = sqlx::query_as(
        // Lateral look-ups by primary key, whatever the planner thinks of the array's length.
        "select k.i, s.order_id
         from unnest($1::uuid[], $2::text[], $3::text[]) with ordinality as k(id, c, n, i)
         cross join lateral (
           select coalesce(k.id, (select t.shipment_id from tracking_numbers t
                                  where t.carrier = k.c and t.tracking_number = k.n)) as id
         ) named
         cross join lateral (
           select order_id from shipments where shipment_id = named.id
         ) s",
    )
    .bind(&ids)
    .bind(&carriers)
    .bind(&numbers)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(i, order)| Some((usize::try_from(i - 1).ok()?, order)))
        .collect())
}

/// Shipments by id, locked for this transaction, in one statement; unknown ids are missing.
pub async fn lock_shipments(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<Shipment>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<ShipmentRow> = sqlx::query_as(
        "select shipment_id, order_id, warehouse_id, position, status, status_at, status_cause,
                dispatched_at, carrier, tracking_number, cancelled_at
         from shipments where shipment_id = any($1) for update",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Shipment::try_from).collect()
}

/// A tracking event as the run holds it: what the state machine, the exception notice and
/// the duplicate check need.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldEvent {
    /// The message that brought it.
    pub source: Uuid,
    /// When, at the carrier.
    pub at: DateTime<Utc>,
    /// Ours, if the word has one.
    pub mapped: Option<ShipmentStatus>,
    /// The carrier's word.
    pub raw_status: String,
    /// The carrier's text.
    pub description: Option<String>,
}

/// What a run needs to know about a shipment besides its row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShipmentFacts {
    /// Its items, in allocation order.
    pub items: Vec<ShipmentItem>,
    /// Its tracking history.
    pub events: Vec<HeldEvent>,
    /// The one-off events published for it.
    pub notices: Vec<Notice>,
    /// Whether its invoice was requested.
    pub invoice_requested: bool,
}

/// The items, tracking events, notices and invoice requests of shipments, in one statement.
pub async fn shipment_facts(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, ShipmentFacts>, sqlx::Error> {
    let mut out: HashMap<Uuid, ShipmentFacts> = ids
        .iter()
        .map(|id| (*id, ShipmentFacts::default()))
        .collect();
    if ids.is_empty() {
        return Ok(out);
    }
    // kind, shipment, then per kind: item (line, sku, gtin, title, quantity, allocated,
    // position), event (source, at, mapped, raw, description), notice (key), request.
    type Row = (
        String,
        Uuid,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<i64>,
        Option<Uuid>,
        Option<DateTime<Utc>>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "select kind, shipment_id, a, b, c, d, n, m, source, at from (
           select 'item' as kind, shipment_id, line_id as a, sku as b, gtin as c, title as d,
                  quantity as n, allocated_quantity as m, null::uuid as source,
                  null::timestamptz as at, position::bigint as ord
             from shipment_items where shipment_id = any($1)
           union all
           select 'event', shipment_id, raw_status, mapped_status, description, null, null,
                  null, source_message_id, event_at, id
             from tracking_events where shipment_id = any($1)
           union all
           select 'notice', shipment_id, kind, null, null, null, null, null, null, null, 0
             from shipment_notices where shipment_id = any($1)
           union all
           select 'request', shipment_id, null, null, null, null, null, null, null, null, 0
             from invoice_requests where shipment_id = any($1)
         ) f order by shipment_id, kind, ord",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?;
    for (kind, shipment_id, a, b, c, d, n, m, source, at) in rows {
        let Some(facts) = out.get_mut(&shipment_id) else {
            continue;
        };
        let missing = |what: &str| corrupt(what, "absent");
        match kind.as_str() {
            "item" => facts.items.push(ShipmentItem {
                line_id: a.ok_or_else(|| missing("item line"))?,
                sku: parse("sku", Sku::parse(&b.ok_or_else(|| missing("item sku"))?))?,
                gtin: c
                    .as_deref()
                    .map(|g| parse("gtin", Gtin::parse(g)))
                    .transpose()?,
                title: d.ok_or_else(|| missing("item title"))?,
                quantity: units("quantity", n.ok_or_else(|| missing("item quantity"))?)?,
                allocated: units(
                    "allocated_quantity",
                    m.ok_or_else(|| missing("allocated quantity"))?,
                )?,
            }),
            "event" => facts.events.push(HeldEvent {
                source: source.ok_or_else(|| missing("event source"))?,
                at: at.ok_or_else(|| missing("event time"))?,
                mapped: b
                    .map(|s| parse("mapped_status", s.parse::<ShipmentStatus>()))
                    .transpose()?,
                raw_status: a.ok_or_else(|| missing("raw status"))?,
                description: c,
            }),
            "notice" => {
                let key = a.ok_or_else(|| missing("notice kind"))?;
                facts
                    .notices
                    .push(Notice::parse(&key).ok_or_else(|| corrupt("notice kind", &key))?);
            }
            _ => facts.invoice_requested = true,
        }
    }
    Ok(out)
}

/// The shipments these tracking numbers `(carrier, number)` are bound to, in one statement.
pub async fn bindings(
    conn: &mut PgConnection,
    numbers: &[(&str, &str)],
) -> Result<HashMap<(String, String), Uuid>, sqlx::Error> {
    if numbers.is_empty() {
        return Ok(HashMap::new());
    }
    let carriers: Vec<&str> = numbers.iter().map(|(c, _)| *c).collect();
    let tracking: Vec<&str> = numbers.iter().map(|(_, n)| *n).collect();
    let rows: Vec<(String, String, Uuid)> = sqlx::query_as(
        "select t.carrier, t.tracking_number, t.shipment_id
         from unnest($1::text[], $2::text[]) as k(c, n)
         cross join lateral (
           select carrier, tracking_number, shipment_id from tracking_numbers
           where carrier = k.c and tracking_number = k.n
         ) t",
    )
    .bind(&carriers)
    .bind(&tracking)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(c, n, id)| ((c, n), id)).collect())
}

/// Unresolved unmatched events waiting for any of these tracking numbers, oldest first,
/// locked, in one statement.
pub async fn waiting_unmatched(
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
                description, location, event_at, estimated_delivery_at, reason, received_at,
                resolved_shipment_id, resolved_at
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

/// A tracking number bound by a message.
#[derive(Debug, Clone)]
pub struct NewBinding {
    /// Carrier code.
    pub carrier: String,
    /// Tracking number.
    pub tracking_number: String,
    /// The shipment.
    pub shipment_id: Uuid,
    /// The message that bound it.
    pub message_id: Uuid,
}

/// Binds tracking numbers to shipments, in one statement (the caller knows none of them is
/// bound yet).
pub async fn bind_numbers(
    conn: &mut PgConnection,
    bound: &[NewBinding],
) -> Result<(), sqlx::Error> {
    if bound.is_empty() {
        return Ok(());
    }
    let carriers: Vec<&str> = bound.iter().map(|b| b.carrier.as_str()).collect();
    let numbers: Vec<&str> = bound.iter().map(|b| b.tracking_number.as_str()).collect();
    let shipments: Vec<Uuid> = bound.iter().map(|b| b.shipment_id).collect();
    let messages: Vec<Uuid> = bound.iter().map(|b| b.message_id).collect();
    sqlx::query(
        "insert into tracking_numbers (carrier, tracking_number, shipment_id, bound_by_message)
         select * from unnest($1::text[], $2::text[], $3::uuid[], $4::uuid[])",
    )
    .bind(&carriers)
    .bind(&numbers)
    .bind(&shipments)
    .bind(&messages)
    .execute(conn)
    .await?;
    Ok(())
}

/// Saves shipments as a run leaves them: the first bound tracking number (where the
/// shipment had none) and the tracking state, in one statement.
pub async fn save_shipments(
    conn: &mut PgConnection,
    shipments: &[&Shipment],
) -> Result<(), sqlx::Error> {
    if shipments.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = shipments.iter().map(|s| s.shipment_id).collect();
    let carriers: Vec<Option<&str>> = shipments.iter().map(|s| s.carrier.as_deref()).collect();
    let numbers: Vec<Option<&str>> = shipments
        .iter()
        .map(|s| s.tracking_number.as_deref())
        .collect();
    let states: Vec<&str> = shipments
        .iter()
        .map(|s| s.tracking.state.as_str())
        .collect();
    let since: Vec<Option<DateTime<Utc>>> = shipments.iter().map(|s| s.tracking.since).collect();
    let causes: Vec<Option<Uuid>> = shipments.iter().map(|s| s.tracking.cause).collect();
    let dispatched: Vec<Option<DateTime<Utc>>> =
        shipments.iter().map(|s| s.tracking.dispatched_at).collect();
    sqlx::query(
        "update shipments s
         set carrier = case when s.tracking_number is null then v.carrier else s.carrier end,
             tracking_number = coalesce(s.tracking_number, v.number),
             status = v.status, status_at = v.since, status_cause = v.cause,
             dispatched_at = coalesce(s.dispatched_at, v.dispatched), updated_at = now()
         from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
                     $6::uuid[], $7::timestamptz[])
           as v(id, carrier, number, status, since, cause, dispatched)
         where s.shipment_id = v.id",
    )
    .bind(&ids)
    .bind(&carriers)
    .bind(&numbers)
    .bind(&states)
    .bind(&since)
    .bind(&causes)
    .bind(&dispatched)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records tracking events (each new: the caller checked), in one statement.
pub async fn insert_tracking_events(
    conn: &mut PgConnection,
    events: &[NewTrackingEvent],
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let shipments: Vec<Uuid> = events.iter().map(|x| x.shipment_id).collect();
    let sources: Vec<Uuid> = events.iter().map(|x| x.source_message_id).collect();
    let carriers: Vec<&str> = events.iter().map(|x| x.carrier.as_str()).collect();
    let numbers: Vec<&str> = events.iter().map(|x| x.tracking_number.as_str()).collect();
    let vocabularies: Vec<&str> = events.iter().map(|x| x.vocabulary.as_str()).collect();
    let raw: Vec<&str> = events.iter().map(|x| x.raw_status.as_str()).collect();
    let mapped: Vec<Option<&str>> = events
        .iter()
        .map(|x| x.mapped_status.map(ShipmentStatus::as_str))
        .collect();
    let descriptions: Vec<Option<&str>> = events.iter().map(|x| x.description.as_deref()).collect();
    let locations: Vec<Option<Json<&serde_json::Value>>> = events
        .iter()
        .map(|x| x.location.as_ref().map(Json))
        .collect();
    let at: Vec<DateTime<Utc>> = events.iter().map(|x| x.event_at).collect();
    let estimated: Vec<Option<DateTime<Utc>>> =
        events.iter().map(|x| x.estimated_delivery_at).collect();
    let changed: Vec<bool> = events.iter().map(|x| x.changed_state).collect();
    sqlx::query(
        "insert into tracking_events (shipment_id, source_message_id, carrier, tracking_number,
                                      vocabulary, raw_status, mapped_status, description,
                                      location, event_at, estimated_delivery_at, changed_state)
         select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                              $6::text[], $7::text[], $8::text[], $9::jsonb[],
                              $10::timestamptz[], $11::timestamptz[], $12::bool[])",
    )
    .bind(&shipments)
    .bind(&sources)
    .bind(&carriers)
    .bind(&numbers)
    .bind(&vocabularies)
    .bind(&raw)
    .bind(&mapped)
    .bind(&descriptions)
    .bind(&locations)
    .bind(&at)
    .bind(&estimated)
    .bind(&changed)
    .execute(conn)
    .await?;
    Ok(())
}

/// Notes that stored events `(shipment, source message)` changed their shipment's state on
/// arrival, in one statement.
pub async fn mark_state_changed(
    conn: &mut PgConnection,
    events: &[(Uuid, Uuid)],
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let shipments: Vec<Uuid> = events.iter().map(|(s, _)| *s).collect();
    let sources: Vec<Uuid> = events.iter().map(|(_, m)| *m).collect();
    sqlx::query(
        "update tracking_events e set changed_state = true
         from unnest($1::uuid[], $2::uuid[]) as v(s, m)
         where e.shipment_id = v.s and e.source_message_id = v.m",
    )
    .bind(&shipments)
    .bind(&sources)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks unmatched events `(row id, shipment)` as attached to their shipments, in one
/// statement.
pub async fn resolve_unmatched(
    conn: &mut PgConnection,
    resolved: &[(i64, Uuid)],
) -> Result<(), sqlx::Error> {
    if resolved.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = resolved.iter().map(|(id, _)| *id).collect();
    let shipments: Vec<Uuid> = resolved.iter().map(|(_, s)| *s).collect();
    sqlx::query(
        "update unmatched_tracking_events u set resolved_shipment_id = v.s, resolved_at = now()
         from unnest($1::bigint[], $2::uuid[]) as v(id, s)
         where u.id = v.id",
    )
    .bind(&ids)
    .bind(&shipments)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records notices `(shipment, notice, message id)` as published, in one statement (the
/// caller knows none was).
pub async fn record_notices(
    conn: &mut PgConnection,
    notices: &[(Uuid, Notice, Uuid)],
) -> Result<(), sqlx::Error> {
    if notices.is_empty() {
        return Ok(());
    }
    let shipments: Vec<Uuid> = notices.iter().map(|(s, _, _)| *s).collect();
    let kinds: Vec<String> = notices.iter().map(|(_, n, _)| n.key()).collect();
    let messages: Vec<Uuid> = notices.iter().map(|(_, _, m)| *m).collect();
    sqlx::query(
        "insert into shipment_notices (shipment_id, kind, message_id)
         select * from unnest($1::uuid[], $2::text[], $3::uuid[])",
    )
    .bind(&shipments)
    .bind(&kinds)
    .bind(&messages)
    .execute(conn)
    .await?;
    Ok(())
}

/// An invoice request sent by a run.
#[derive(Debug, Clone, Copy)]
pub struct NewInvoiceRequest {
    /// Its id.
    pub request_id: Uuid,
    /// The order.
    pub order_id: Uuid,
    /// The shipment (on shipment), or none (on order).
    pub shipment_id: Option<Uuid>,
    /// When the store invoices.
    pub timing: InvoiceTiming,
}

/// Records invoice requests as sent, in one statement (the caller knows none was).
pub async fn record_invoice_requests(
    conn: &mut PgConnection,
    requests: &[NewInvoiceRequest],
) -> Result<(), sqlx::Error> {
    if requests.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = requests.iter().map(|r| r.request_id).collect();
    let orders: Vec<Uuid> = requests.iter().map(|r| r.order_id).collect();
    let shipments: Vec<Option<Uuid>> = requests.iter().map(|r| r.shipment_id).collect();
    let timings: Vec<&str> = requests.iter().map(|r| r.timing.as_str()).collect();
    sqlx::query(
        "insert into invoice_requests (request_id, order_id, shipment_id, timing)
         select * from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[])",
    )
    .bind(&ids)
    .bind(&orders)
    .bind(&shipments)
    .bind(&timings)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether the orders among `ids` have their on-order invoice requested, in one statement.
pub async fn orders_invoiced(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<std::collections::HashSet<Uuid>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(std::collections::HashSet::new());
    }
    let rows: Vec<Uuid> = sqlx::query_scalar(
        "select order_id from invoice_requests where order_id = any($1) and shipment_id is null",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
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
