//! The snapshots of accepted orders (`order.accepted`): the address, lines and prices that
//! shipment and invoice requests need, with the invoice timing each order was accepted under
//! and how much of it per-shipment invoices have covered. Orders are read locked, a run's
//! orders in two statements.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use orderly_contracts::messages::{
    AcceptedLine, InvoiceTiming, OrderAccepted, OrderAddressChanged,
};
use orderly_contracts::types::{
    Amount, Channel, CurrencyCode, Gtin, Quantity, Sku, StoreId, TaxCategory, TaxClass,
};
use orderly_runtime::db;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::{InvoiceProgress, LineProgress};

use super::{parse, units};

/// What storing an `order.accepted` did (for the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SnapshotWrite {
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
pub(crate) async fn upsert_orders(
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
           total = excluded.total, address_amendment = 0, updated_at = now()
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
    let lines: Vec<_> = o()
        .filter(|x| written.contains(&x.order_id))
        .flat_map(|x| (0i32..).zip(&x.lines).map(move |(p, l)| (x.order_id, p, l)))
        .collect();
    db::unnest(
        "insert into order_lines (order_id, line_id, position, sku, gtin, title, quantity,
                                  unit_price, discount, tax_category, tax_class,
                                  exemption_reference)
         select * from unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[],
                              $6::text[], $7::bigint[], $8::numeric[], $9::numeric[],
                              $10::text[], $11::text[], $12::text[])
         on conflict (order_id, line_id) do update set
           position = excluded.position, sku = excluded.sku, gtin = excluded.gtin,
           title = excluded.title, quantity = excluded.quantity,
           unit_price = excluded.unit_price, discount = excluded.discount,
           tax_category = excluded.tax_category, tax_class = excluded.tax_class,
           exemption_reference = excluded.exemption_reference",
        &lines,
    )
    .column(|(id, _, _)| *id)
    .column(|(_, _, l)| l.line_id.as_str())
    .column(|(_, p, _)| *p)
    .column(|(_, _, l)| l.sku.as_str())
    .column(|(_, _, l)| l.gtin.as_ref().map(Gtin::as_str))
    .column(|(_, _, l)| l.title.as_str())
    .column(|(_, _, l)| i64::from(l.quantity.get()))
    .column(|(_, _, l)| l.unit_price.value())
    .column(|(_, _, l)| l.discount.value())
    .column(|(_, _, l)| l.tax_category.as_str())
    .column(|(_, _, l)| l.tax_class.map(TaxClass::as_str))
    .column(|(_, _, l)| l.exemption_reference.as_deref())
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes the addresses of `change`, its revision and amendment, when they are newer than the
/// copy's (a higher revision, or the same with a higher amendment); `false` when not.
pub(crate) async fn update_addresses(
    conn: &mut PgConnection,
    change: &OrderAddressChanged,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "update orders set billing_address = $2, shipping_address = $3, revision = $4,
                address_amendment = $5, updated_at = now()
         where order_id = $1 and (revision, address_amendment) < ($4, $5)",
    )
    .bind(change.order_id)
    .bind(Json(&change.billing_address))
    .bind(Json(&change.shipping_address))
    .bind(i64::from(change.revision))
    .bind(i32::try_from(change.amendment).unwrap_or(i32::MAX))
    .execute(&mut *conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// An order as fulfillment keeps it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredOrder {
    /// The accepted order (latest revision).
    pub(crate) order: OrderAccepted,
    /// The invoice timing it was accepted under.
    pub(crate) invoice_timing: InvoiceTiming,
    /// Whether `stock.reserved` was already turned into shipments.
    pub(crate) shipments_created: bool,
    /// What per-shipment invoices have covered.
    pub(crate) progress: InvoiceProgress,
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
    tax_class: Option<String>,
    exemption_reference: Option<String>,
    invoiced_quantity: i64,
    invoiced_discount: Decimal,
}

fn amount(what: &str, value: Decimal) -> Result<Amount, sqlx::Error> {
    parse(what, Amount::new(value))
}

/// The stored order, if `order.accepted` was received (locked, see [`load_orders`]).
pub(crate) async fn load_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Option<StoredOrder>, sqlx::Error> {
    Ok(load_orders(conn, &[order_id]).await?.remove(&order_id))
}

/// The stored orders among `ids`, locked for this transaction, in two statements (orders,
/// then their lines). The lock keys the runtime takes serialise the work on an order; the
/// row lock keeps that true of anything that writes an order without them.
pub(crate) async fn load_orders(
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
                tax_class, exemption_reference, invoiced_quantity, invoiced_discount
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
            tax_class: l
                .tax_class
                .as_deref()
                .map(|c| parse("tax_class", c.parse::<TaxClass>()))
                .transpose()?,
            exemption_reference: l.exemption_reference,
            // Setups are the setups worker's; fulfillment neither keeps nor needs them.
            setup_template_version: None,
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
pub(crate) async fn save_invoice_progress(
    conn: &mut PgConnection,
    orders: &[(Uuid, &InvoiceProgress)],
) -> Result<(), sqlx::Error> {
    db::unnest(
        "update orders o set shipping_invoiced = v.s, discount_invoiced = v.d, updated_at = now()
         from unnest($1::uuid[], $2::bool[], $3::numeric[]) as v(id, s, d)
         where o.order_id = v.id",
        orders,
    )
    .column(|(id, _)| *id)
    .column(|(_, p)| p.shipping_invoiced)
    .column(|(_, p)| p.discount_invoiced)
    .execute(&mut *conn)
    .await?;
    let lines: Vec<_> = orders
        .iter()
        .flat_map(|(id, p)| p.lines.iter().map(move |(line, l)| (*id, line, l)))
        .collect();
    db::unnest(
        "update order_lines l set invoiced_quantity = v.q, invoiced_discount = v.d
         from unnest($1::uuid[], $2::text[], $3::bigint[], $4::numeric[]) as v(id, line, q, d)
         where l.order_id = v.id and l.line_id = v.line",
        &lines,
    )
    .column(|(id, _, _)| *id)
    .column(|(_, line, _)| line.as_str())
    .column(|(_, _, l)| i64::from(l.quantity))
    .column(|(_, _, l)| l.discount)
    .execute(conn)
    .await?;
    Ok(())
}
