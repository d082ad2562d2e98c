//! All SQL of the orders worker. Every function takes the connection it runs on (the
//! handler's transaction, or any connection for the read-only listings the CLI uses); table
//! names are unqualified because the pool's `search_path` is the `orders` schema.
//!
//! Writes are idempotent by business key where a key exists (`on conflict`): a product by
//! SKU and `updated_at`, an order by `(store, channel, external id)`, a shipment by id, an
//! invoice by id, a request by its request id. Monotonic columns are only ever set once
//! (`coalesce(existing, new)`).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use orderly_contracts::messages::{
    Address, CancelledLine, CreditNoteIssued, ExceptionResolution, InvoiceIssued, ItemException,
    ItemProblem, OrderCancelRequested, OrderRefundRequested, Payment, ProductUpserted,
    ShipmentDelivered, ShipmentDispatched, ShipmentException, ShipmentRequested, StockReleased,
    StockReserved,
};
use orderly_contracts::types::{Channel, Gtin, OrderStatus, Sku, StoreId};
use orderly_contracts::{ContractError, RawEnvelope};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::{
    ExceptionStatus, Facts, Line, MatchedProduct, OpenException, OrderHead, Product,
};

fn corrupt(what: &str, err: impl Display) -> sqlx::Error {
    sqlx::Error::Decode(format!("orders: stored {what} is invalid: {err}").into())
}

fn parse<T: FromStr>(what: &str, value: &str) -> Result<T, sqlx::Error>
where
    T::Err: Display,
{
    value.parse().map_err(|e| corrupt(what, e))
}

fn parse_opt<T: FromStr>(what: &str, value: Option<&str>) -> Result<Option<T>, sqlx::Error>
where
    T::Err: Display,
{
    value.map(|v| parse(what, v)).transpose()
}

fn count(what: &str, value: i64) -> Result<u32, sqlx::Error> {
    u32::try_from(value).map_err(|e| corrupt(what, e))
}

fn amount(what: &str, value: Decimal) -> Result<orderly_contracts::types::Amount, sqlx::Error> {
    orderly_contracts::types::Amount::try_from(value).map_err(|e| corrupt(what, e))
}

// ---------------------------------------------------------------------------------------------
// The catalog projection and remembered mappings
// ---------------------------------------------------------------------------------------------

/// Applies a `catalog.product_upserted` unless a newer version is already stored; `true` if
/// it was applied.
pub async fn upsert_product(conn: &mut PgConnection, p: &ProductUpserted) -> sqlx::Result<bool> {
    let applied: Option<String> = sqlx::query_scalar(
        "insert into products (sku, title, tax_category, active, updated_at)
         values ($1, $2, $3, $4, $5)
         on conflict (sku) do update
           set title = excluded.title, tax_category = excluded.tax_category,
               active = excluded.active, updated_at = excluded.updated_at, received_at = now()
           where products.updated_at < excluded.updated_at
         returning sku",
    )
    .bind(p.sku.as_str())
    .bind(&p.title)
    .bind(p.tax_category.as_str())
    .bind(p.active)
    .bind(p.updated_at)
    .fetch_optional(&mut *conn)
    .await?;
    if applied.is_none() {
        return Ok(false);
    }
    sqlx::query("delete from product_gtins where sku = $1")
        .bind(p.sku.as_str())
        .execute(&mut *conn)
        .await?;
    let gtin14: Vec<String> = p.gtins.iter().map(Gtin::to_gtin14).collect();
    let given: Vec<&str> = p.gtins.iter().map(Gtin::as_str).collect();
    sqlx::query(
        "insert into product_gtins (gtin14, sku, gtin)
         select g14, $1, g from unnest($2::text[], $3::text[]) as t(g14, g)
         on conflict do nothing",
    )
    .bind(p.sku.as_str())
    .bind(&gtin14)
    .bind(&given)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

#[derive(sqlx::FromRow)]
struct ProductRow {
    sku: String,
    title: String,
    tax_category: String,
    active: bool,
}

impl TryFrom<ProductRow> for Product {
    type Error = sqlx::Error;

    fn try_from(row: ProductRow) -> Result<Self, Self::Error> {
        Ok(Product {
            sku: parse("product sku", &row.sku)?,
            title: row.title,
            tax_category: parse("product tax category", &row.tax_category)?,
            active: row.active,
        })
    }
}

/// Products by SKU.
pub async fn products_by_sku(
    conn: &mut PgConnection,
    skus: &[String],
) -> sqlx::Result<BTreeMap<String, Product>> {
    if skus.is_empty() {
        return Ok(BTreeMap::new());
    }
    let rows: Vec<ProductRow> =
        sqlx::query_as("select sku, title, tax_category, active from products where sku = any($1)")
            .bind(skus)
            .fetch_all(&mut *conn)
            .await?;
    rows.into_iter()
        .map(|r| {
            let sku = r.sku.clone();
            Product::try_from(r).map(|p| (sku, p))
        })
        .collect()
}

/// The product behind one SKU.
pub async fn product(conn: &mut PgConnection, sku: &Sku) -> sqlx::Result<Option<Product>> {
    let mut found = products_by_sku(conn, &[sku.as_str().to_owned()]).await?;
    Ok(found.remove(sku.as_str()))
}

#[derive(sqlx::FromRow)]
struct GtinProductRow {
    gtin14: String,
    #[sqlx(flatten)]
    product: ProductRow,
}

/// Catalog products by GTIN-14.
pub async fn products_by_gtin(
    conn: &mut PgConnection,
    gtin14: &[String],
) -> sqlx::Result<BTreeMap<String, Vec<Product>>> {
    let mut out: BTreeMap<String, Vec<Product>> = BTreeMap::new();
    if gtin14.is_empty() {
        return Ok(out);
    }
    let rows: Vec<GtinProductRow> = sqlx::query_as(
        "select g.gtin14, p.sku, p.title, p.tax_category, p.active
         from product_gtins g join products p on p.sku = g.sku
         where g.gtin14 = any($1)",
    )
    .bind(gtin14)
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        out.entry(row.gtin14)
            .or_default()
            .push(Product::try_from(row.product)?);
    }
    Ok(out)
}

/// What the catalog knows about some order lines: the products their SKUs name, the
/// products behind their GTINs, and the remembered GTIN mappings of their stores (with the
/// products those name).
#[derive(Debug, Clone, Default)]
pub struct CatalogView {
    /// SKU → product (the SKUs lines name, and the SKUs of their stores' mappings).
    pub products: BTreeMap<String, Product>,
    /// GTIN-14 → products carrying it.
    pub by_gtin: BTreeMap<String, Vec<Product>>,
    /// (store, GTIN-14) → the SKU an operator asked to remember.
    pub mappings: BTreeMap<(String, String), Sku>,
}

/// The catalog as `lines` (each with its order's store) need it for matching: two to four
/// statements, however many lines.
pub async fn catalog_view(
    conn: &mut PgConnection,
    lines: &[(&StoreId, &Line)],
) -> sqlx::Result<CatalogView> {
    let mut skus: Vec<String> = lines
        .iter()
        .filter_map(|(_, l)| l.requested_sku.as_ref().map(|s| s.as_str().to_owned()))
        .collect();
    let gtins: Vec<(&str, String)> = lines
        .iter()
        .filter_map(|(store, l)| l.gtin.as_ref().map(|g| (store.as_str(), g.to_gtin14())))
        .collect();
    let mut view = CatalogView::default();
    if !gtins.is_empty() {
        let gtin14: Vec<String> = gtins.iter().map(|(_, g)| g.clone()).collect();
        view.by_gtin = products_by_gtin(conn, &gtin14).await?;
        let stores: Vec<&str> = gtins.iter().map(|(s, _)| *s).collect();
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "select m.store_id, m.gtin14, m.sku
             from gtin_mappings m
             where (m.store_id, m.gtin14) in (select * from unnest($1::text[], $2::text[]))",
        )
        .bind(&stores)
        .bind(&gtin14)
        .fetch_all(&mut *conn)
        .await?;
        for (store, gtin14, sku) in rows {
            let sku: Sku = parse("mapped sku", &sku)?;
            skus.push(sku.as_str().to_owned());
            view.mappings.insert((store, gtin14), sku);
        }
    }
    skus.sort();
    skus.dedup();
    view.products = products_by_sku(conn, &skus).await?;
    Ok(view)
}

/// Remembers GTIN → SKU for a store (the latest decision wins).
pub async fn remember_mapping(
    conn: &mut PgConnection,
    store_id: &StoreId,
    gtin: &Gtin,
    sku: &Sku,
    by: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into gtin_mappings (store_id, gtin14, gtin, sku, created_by)
         values ($1, $2, $3, $4, $5)
         on conflict (store_id, gtin14) do update
           set gtin = excluded.gtin, sku = excluded.sku, created_by = excluded.created_by,
               updated_at = now()",
    )
    .bind(store_id.as_str())
    .bind(gtin.to_gtin14())
    .bind(gtin.as_str())
    .bind(sku.as_str())
    .bind(by)
    .execute(conn)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Orders
// ---------------------------------------------------------------------------------------------

/// An order as stored: its header and the milestones the status machine is computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredOrder {
    /// The header.
    pub head: OrderHead,
    /// `order.accepted` was sent.
    pub accepted: bool,
    /// Stock was reported unavailable.
    pub backordered: bool,
    /// The whole order was cancelled.
    pub cancelled: bool,
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    order_id: Uuid,
    store_id: String,
    channel: String,
    marketplace: Option<String>,
    external_order_id: String,
    revision: i64,
    status: String,
    status_sequence: i64,
    placed_at: DateTime<Utc>,
    currency: String,
    prices_include_tax: bool,
    customer: Json<orderly_contracts::messages::Customer>,
    billing_address: Json<Address>,
    shipping_address: Json<Address>,
    payment: Json<Payment>,
    shipping: Decimal,
    discount: Decimal,
    tax: Option<Decimal>,
    total: Decimal,
    accepted_at: Option<DateTime<Utc>>,
    backordered_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
}

impl TryFrom<OrderRow> for StoredOrder {
    type Error = sqlx::Error;

    fn try_from(r: OrderRow) -> Result<Self, Self::Error> {
        Ok(StoredOrder {
            head: OrderHead {
                order_id: r.order_id,
                store_id: parse("store id", &r.store_id)?,
                channel: parse("channel", &r.channel)?,
                marketplace: r.marketplace,
                external_order_id: r.external_order_id,
                revision: count("revision", r.revision)?,
                status: parse("status", &r.status)?,
                status_sequence: u64::try_from(r.status_sequence)
                    .map_err(|e| corrupt("status sequence", e))?,
                placed_at: r.placed_at,
                currency: parse("currency", &r.currency)?,
                prices_include_tax: r.prices_include_tax,
                customer: r.customer.0,
                billing_address: r.billing_address.0,
                shipping_address: r.shipping_address.0,
                payment: r.payment.0,
                shipping: amount("shipping", r.shipping)?,
                discount: amount("discount", r.discount)?,
                tax: r.tax.map(|t| amount("tax", t)).transpose()?,
                total: amount("total", r.total)?,
            },
            accepted: r.accepted_at.is_some(),
            backordered: r.backordered_at.is_some(),
            cancelled: r.cancelled_at.is_some(),
        })
    }
}

/// `select <every order column> from orders <tail>`, as one literal.
macro_rules! select_order {
    ($tail:literal) => {
        concat!(
            "select order_id, store_id, channel, marketplace, external_order_id, revision, status,
                    status_sequence, placed_at, currency, prices_include_tax, customer,
                    billing_address, shipping_address, payment, shipping, discount, tax, total,
                    accepted_at, backordered_at, cancelled_at
             from orders ",
            $tail
        )
    };
}

/// Loads and locks an order by id (the lock serialises every message about one order).
pub async fn lock_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> sqlx::Result<Option<StoredOrder>> {
    let row: Option<OrderRow> = sqlx::query_as(select_order!("where order_id = $1 for update"))
        .bind(order_id)
        .fetch_optional(conn)
        .await?;
    row.map(StoredOrder::try_from).transpose()
}

/// Loads and locks an order by its business key.
pub async fn lock_order_by_key(
    conn: &mut PgConnection,
    store_id: &StoreId,
    channel: Channel,
    external_order_id: &str,
) -> sqlx::Result<Option<StoredOrder>> {
    let row: Option<OrderRow> = sqlx::query_as(select_order!(
        "where store_id = $1 and channel = $2 and external_order_id = $3 for update"
    ))
    .bind(store_id.as_str())
    .bind(channel.as_str())
    .bind(external_order_id)
    .fetch_optional(conn)
    .await?;
    row.map(StoredOrder::try_from).transpose()
}

/// An order loaded (and locked) for a run of messages about it: what [`lock_order`] gives,
/// plus what the run numbers and completes with.
#[derive(Debug, Clone)]
pub struct LoadedOrder {
    /// The order.
    pub stored: StoredOrder,
    /// The number of its last timeline entry (0: none).
    pub timeline_seq: i32,
    /// Its invoice numbers, in issue order.
    pub invoice_numbers: Vec<String>,
}

/// Loads and locks orders by id, in one statement; unknown ids are missing from the result.
pub async fn lock_orders(conn: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<Vec<LoadedOrder>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        order: OrderRow,
        timeline_seq: i32,
        invoice_numbers: Vec<String>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "select o.order_id, o.store_id, o.channel, o.marketplace, o.external_order_id,
                o.revision, o.status, o.status_sequence, o.placed_at, o.currency,
                o.prices_include_tax, o.customer, o.billing_address, o.shipping_address,
                o.payment, o.shipping, o.discount, o.tax, o.total, o.accepted_at,
                o.backordered_at, o.cancelled_at,
                (select coalesce(max(t.seq), 0) from timeline t where t.order_id = o.order_id)
                  as timeline_seq,
                array(select i.invoice_number from order_invoices i
                      where i.order_id = o.order_id order by i.issued_at, i.invoice_number)
                  as invoice_numbers
         from orders o where o.order_id = any($1)
         for update of o",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(LoadedOrder {
                stored: StoredOrder::try_from(r.order)?,
                timeline_seq: r.timeline_seq,
                invoice_numbers: r.invoice_numbers,
            })
        })
        .collect()
}

/// The ids of the orders with these business keys `(store, channel, external id)`, in one
/// statement (no lock); keys of no order are missing from the result.
pub async fn orders_by_keys(
    conn: &mut PgConnection,
    keys: &[(&str, &str, &str)],
) -> sqlx::Result<HashMap<(String, String, String), Uuid>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let stores: Vec<&str> = keys.iter().map(|k| k.0).collect();
    let channels: Vec<&str> = keys.iter().map(|k| k.1).collect();
    let externals: Vec<&str> = keys.iter().map(|k| k.2).collect();
    let rows: Vec<(String, String, String, Uuid)> = sqlx::query_as(
        // A lateral look-up per key: the business key's index, whatever the planner thinks
        // of the array's length (a join let it scan the whole table).
        "select o.store_id, o.channel, o.external_order_id, o.order_id
         from unnest($1::text[], $2::text[], $3::text[]) as k(s, c, e)
         cross join lateral (
           select store_id, channel, external_order_id, order_id from orders
           where store_id = k.s and channel = k.c and external_order_id = k.e
         ) o",
    )
    .bind(&stores)
    .bind(&channels)
    .bind(&externals)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(s, c, e, id)| ((s, c, e), id))
        .collect())
}

/// Open exceptions a newly published product can clear: lines naming its SKU that no product
/// had, lines naming one of its GTINs (`gtin14`: as GTIN-14) that matched nothing, and lines
/// naming it while it was inactive. Oldest first, with the order and its store (no lock).
pub async fn open_exceptions_for_product(
    conn: &mut PgConnection,
    sku: &str,
    gtin14: &[String],
) -> sqlx::Result<Vec<(Uuid, Uuid, String)>> {
    sqlx::query_as(
        "select e.exception_id, e.order_id, o.store_id
         from item_exceptions e join orders o using (order_id)
         where e.status = 'open'
           and ((e.problem in ('unknown_sku', 'inactive_product') and e.sku = $1)
                or (e.problem = 'unknown_gtin' and lpad(e.gtin, 14, '0') = any($2)))
         order by e.raised_at, e.exception_id",
    )
    .bind(sku)
    .bind(gtin14)
    .fetch_all(conn)
    .await
}

/// A new order to insert, as it stands after its first message.
#[derive(Debug, Clone, Copy)]
pub struct NewOrder<'a> {
    /// Its header (status and sequence as they stand).
    pub head: &'a OrderHead,
    /// The customer statistics key.
    pub customer_key: &'a str,
    /// Whether `order.accepted` was sent (sets the milestone).
    pub accepted: bool,
}

/// Inserts new orders in one statement; returns how many were inserted (fewer than given
/// when a business key exists already: a concurrent insert the caller must not overwrite).
pub async fn insert_orders(conn: &mut PgConnection, orders: &[NewOrder<'_>]) -> sqlx::Result<u64> {
    if orders.is_empty() {
        return Ok(0);
    }
    let heads = || orders.iter().map(|o| o.head);
    let ids: Vec<Uuid> = heads().map(|h| h.order_id).collect();
    let stores: Vec<&str> = heads().map(|h| h.store_id.as_str()).collect();
    let channels: Vec<&str> = heads().map(|h| h.channel.as_str()).collect();
    let marketplaces: Vec<Option<&str>> = heads().map(|h| h.marketplace.as_deref()).collect();
    let externals: Vec<&str> = heads().map(|h| h.external_order_id.as_str()).collect();
    let revisions: Vec<i64> = heads().map(|h| i64::from(h.revision)).collect();
    let statuses: Vec<&str> = heads().map(|h| h.status.as_str()).collect();
    let sequences: Vec<i64> = heads()
        .map(|h| i64::try_from(h.status_sequence).unwrap_or(i64::MAX))
        .collect();
    let placed: Vec<DateTime<Utc>> = heads().map(|h| h.placed_at).collect();
    let currencies: Vec<&str> = heads().map(|h| h.currency.as_str()).collect();
    let incl: Vec<bool> = heads().map(|h| h.prices_include_tax).collect();
    let customers: Vec<Json<&orderly_contracts::messages::Customer>> =
        heads().map(|h| Json(&h.customer)).collect();
    let keys: Vec<&str> = orders.iter().map(|o| o.customer_key).collect();
    let billing: Vec<Json<&Address>> = heads().map(|h| Json(&h.billing_address)).collect();
    let shipping_to: Vec<Json<&Address>> = heads().map(|h| Json(&h.shipping_address)).collect();
    let payments: Vec<Json<&Payment>> = heads().map(|h| Json(&h.payment)).collect();
    let shipping: Vec<Decimal> = heads().map(|h| h.shipping.value()).collect();
    let discounts: Vec<Decimal> = heads().map(|h| h.discount.value()).collect();
    let taxes: Vec<Option<Decimal>> = heads().map(|h| h.tax.map(|t| t.value())).collect();
    let totals: Vec<Decimal> = heads().map(|h| h.total.value()).collect();
    let accepted: Vec<bool> = orders.iter().map(|o| o.accepted).collect();
    let done = sqlx::query(
        "insert into orders (order_id, store_id, channel, marketplace, external_order_id,
                             revision, status, status_sequence, placed_at, currency,
                             prices_include_tax, customer, customer_key, billing_address,
                             shipping_address, payment, shipping, discount, tax, total,
                             accepted_at)
         select id, st, ch, mp, ext, rev, status, seq, placed, cur, incl, cust, ckey, bill,
                ship_to, pay, ship, disc, tax, total, case when acc then now() end
         from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[],
                     $7::text[], $8::bigint[], $9::timestamptz[], $10::text[], $11::bool[],
                     $12::jsonb[], $13::text[], $14::jsonb[], $15::jsonb[], $16::jsonb[],
                     $17::numeric[], $18::numeric[], $19::numeric[], $20::numeric[],
                     $21::bool[])
           as o(id, st, ch, mp, ext, rev, status, seq, placed, cur, incl, cust, ckey, bill,
                ship_to, pay, ship, disc, tax, total, acc)
         on conflict on constraint orders_business_key do nothing",
    )
    .bind(&ids)
    .bind(&stores)
    .bind(&channels)
    .bind(&marketplaces)
    .bind(&externals)
    .bind(&revisions)
    .bind(&statuses)
    .bind(&sequences)
    .bind(&placed)
    .bind(&currencies)
    .bind(&incl)
    .bind(&customers)
    .bind(&keys)
    .bind(&billing)
    .bind(&shipping_to)
    .bind(&payments)
    .bind(&shipping)
    .bind(&discounts)
    .bind(&taxes)
    .bind(&totals)
    .bind(&accepted)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Stores the status and sequence orders reached (a status change sets `updated_at`,
/// reaching `completed` sets that milestone), in one statement.
pub async fn update_statuses(conn: &mut PgConnection, orders: &[&OrderHead]) -> sqlx::Result<()> {
    if orders.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = orders.iter().map(|h| h.order_id).collect();
    let statuses: Vec<&str> = orders.iter().map(|h| h.status.as_str()).collect();
    let sequences: Vec<i64> = orders
        .iter()
        .map(|h| i64::try_from(h.status_sequence).unwrap_or(i64::MAX))
        .collect();
    sqlx::query(
        "update orders o
         set status = v.status, status_sequence = v.seq,
             completed_at = case when v.status = 'completed' then coalesce(o.completed_at, now())
                                 else o.completed_at end,
             updated_at = now()
         from unnest($1::uuid[], $2::text[], $3::bigint[]) as v(id, status, seq)
         where o.order_id = v.id",
    )
    .bind(&ids)
    .bind(&statuses)
    .bind(&sequences)
    .execute(conn)
    .await?;
    Ok(())
}

/// Rewrites an order's snapshot from a new revision (while it is on hold).
pub async fn replace_order(conn: &mut PgConnection, head: &OrderHead) -> sqlx::Result<()> {
    sqlx::query(
        "update orders set marketplace = $2, revision = $3, placed_at = $4, currency = $5,
                prices_include_tax = $6, customer = $7, billing_address = $8,
                shipping_address = $9, payment = $10, shipping = $11, discount = $12, tax = $13,
                total = $14, updated_at = now()
         where order_id = $1",
    )
    .bind(head.order_id)
    .bind(head.marketplace.as_deref())
    .bind(i64::from(head.revision))
    .bind(head.placed_at)
    .bind(head.currency.as_str())
    .bind(head.prices_include_tax)
    .bind(Json(&head.customer))
    .bind(Json(&head.billing_address))
    .bind(Json(&head.shipping_address))
    .bind(Json(&head.payment))
    .bind(head.shipping.value())
    .bind(head.discount.value())
    .bind(head.tax.map(|t| t.value()))
    .bind(head.total.value())
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes new addresses.
pub async fn update_addresses(
    conn: &mut PgConnection,
    order_id: Uuid,
    billing: &Address,
    shipping: &Address,
) -> sqlx::Result<()> {
    sqlx::query(
        "update orders set billing_address = $2, shipping_address = $3, updated_at = now()
         where order_id = $1",
    )
    .bind(order_id)
    .bind(Json(billing))
    .bind(Json(shipping))
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the revision seen (and the payment as last pushed, when given).
pub async fn update_revision(
    conn: &mut PgConnection,
    order_id: Uuid,
    revision: u32,
    payment: Option<&Payment>,
) -> sqlx::Result<()> {
    sqlx::query(
        "update orders set revision = greatest(revision, $2),
                payment = coalesce($3, payment), updated_at = now()
         where order_id = $1",
    )
    .bind(order_id)
    .bind(i64::from(revision))
    .bind(payment.map(Json))
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores a new status and its `order.status_changed` sequence, and appends `detail` to the
/// timeline as a `status_changed` entry caused by `cause`: one statement. Reaching
/// `completed` also sets that milestone.
pub async fn set_status(
    conn: &mut PgConnection,
    order_id: Uuid,
    status: OrderStatus,
    sequence: u64,
    cause: &Cause<'_>,
    detail: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "with changed as (
           update orders
           set status = $2, status_sequence = $3,
               completed_at = case when $2 = 'completed' then coalesce(completed_at, now())
                                   else completed_at end,
               updated_at = now()
           where order_id = $1
           returning order_id
         )
         insert into timeline (order_id, seq, kind, message_id, message_type, producer, detail)
         select $1, (select coalesce(max(seq), 0) + 1 from timeline where order_id = $1),
                'status_changed', $4, $5, $6, $7
         from changed",
    )
    .bind(order_id)
    .bind(status.as_str())
    .bind(i64::try_from(sequence).unwrap_or(i64::MAX))
    .bind(cause.message_id)
    .bind(cause.message_type)
    .bind(cause.producer)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}

/// A milestone of an order's life, set once (`completed` is set with the status, by
/// [`set_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Milestone {
    /// `order.accepted` sent.
    Accepted,
    /// Stock unavailable.
    Backordered,
    /// Whole order cancelled.
    Cancelled,
}

/// Sets a milestone (keeping the first time it was reached).
pub async fn mark(conn: &mut PgConnection, order_id: Uuid, m: Milestone) -> sqlx::Result<()> {
    let sql = match m {
        Milestone::Accepted => {
            "update orders set accepted_at = coalesce(accepted_at, now()) where order_id = $1"
        }
        Milestone::Backordered => {
            "update orders set backordered_at = coalesce(backordered_at, now()) where order_id = $1"
        }
        Milestone::Cancelled => {
            "update orders set cancelled_at = coalesce(cancelled_at, now()) where order_id = $1"
        }
    };
    sqlx::query(sql).bind(order_id).execute(conn).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Lines
// ---------------------------------------------------------------------------------------------

/// Inserts an order's lines (in the order given).
pub async fn insert_lines(
    conn: &mut PgConnection,
    order_id: Uuid,
    lines: &[Line],
) -> sqlx::Result<()> {
    insert_lines_of(conn, &[(order_id, lines)]).await
}

/// Inserts the lines of several orders (each in the order given), in one statement.
pub async fn insert_lines_of(
    conn: &mut PgConnection,
    orders: &[(Uuid, &[Line])],
) -> sqlx::Result<()> {
    let rows = || {
        orders.iter().flat_map(|(order_id, lines)| {
            lines
                .iter()
                .enumerate()
                .map(move |(i, line)| (*order_id, i, line))
        })
    };
    if rows().next().is_none() {
        return Ok(());
    }
    let order_ids: Vec<Uuid> = rows().map(|(id, _, _)| id).collect();
    let ids: Vec<&str> = rows().map(|(_, _, l)| l.line_id.as_str()).collect();
    let positions: Vec<i32> = rows()
        .map(|(_, i, _)| i32::try_from(i).unwrap_or(i32::MAX))
        .collect();
    let requested: Vec<Option<&str>> = rows()
        .map(|(_, _, l)| l.requested_sku.as_ref().map(Sku::as_str))
        .collect();
    let gtins: Vec<Option<&str>> = rows()
        .map(|(_, _, l)| l.gtin.as_ref().map(Gtin::as_str))
        .collect();
    let gtin14: Vec<Option<String>> = rows()
        .map(|(_, _, l)| l.gtin.as_ref().map(Gtin::to_gtin14))
        .collect();
    let titles: Vec<&str> = rows().map(|(_, _, l)| l.title.as_str()).collect();
    let quantities: Vec<i64> = rows().map(|(_, _, l)| i64::from(l.quantity)).collect();
    let prices: Vec<Decimal> = rows().map(|(_, _, l)| l.unit_price.value()).collect();
    let discounts: Vec<Decimal> = rows().map(|(_, _, l)| l.discount.value()).collect();
    let requested_tax: Vec<Option<&str>> = rows()
        .map(|(_, _, l)| l.requested_tax_category.map(|t| t.as_str()))
        .collect();
    let skus: Vec<Option<&str>> = rows()
        .map(|(_, _, l)| l.matched.as_ref().map(|m| m.sku.as_str()))
        .collect();
    let tax: Vec<Option<&str>> = rows()
        .map(|(_, _, l)| l.matched.as_ref().map(|m| m.tax_category.as_str()))
        .collect();
    let catalog_titles: Vec<Option<&str>> = rows()
        .map(|(_, _, l)| l.matched.as_ref().map(|m| m.catalog_title.as_str()))
        .collect();
    let cancelled: Vec<i64> = rows().map(|(_, _, l)| i64::from(l.cancelled)).collect();
    let refunded: Vec<i64> = rows().map(|(_, _, l)| i64::from(l.refunded)).collect();
    sqlx::query(
        "insert into order_lines (order_id, line_id, position, requested_sku, gtin, gtin14, title,
                                  quantity, unit_price, discount, requested_tax_category, sku,
                                  tax_category, catalog_title, cancelled_quantity,
                                  refunded_quantity)
         select * from unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[],
                              $6::text[], $7::text[], $8::bigint[], $9::numeric[],
                              $10::numeric[], $11::text[], $12::text[], $13::text[],
                              $14::text[], $15::bigint[], $16::bigint[])",
    )
    .bind(&order_ids)
    .bind(&ids)
    .bind(&positions)
    .bind(&requested)
    .bind(&gtins)
    .bind(&gtin14)
    .bind(&titles)
    .bind(&quantities)
    .bind(&prices)
    .bind(&discounts)
    .bind(&requested_tax)
    .bind(&skus)
    .bind(&tax)
    .bind(&catalog_titles)
    .bind(&cancelled)
    .bind(&refunded)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes an order's lines (before a replacing revision inserts its own).
pub async fn delete_lines(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("delete from order_lines where order_id = $1")
        .bind(order_id)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct LineRow {
    line_id: String,
    requested_sku: Option<String>,
    gtin: Option<String>,
    title: String,
    quantity: i64,
    unit_price: Decimal,
    discount: Decimal,
    requested_tax_category: Option<String>,
    sku: Option<String>,
    tax_category: Option<String>,
    catalog_title: Option<String>,
    cancelled_quantity: i64,
    refunded_quantity: i64,
}

impl TryFrom<LineRow> for Line {
    type Error = sqlx::Error;

    fn try_from(r: LineRow) -> Result<Self, Self::Error> {
        let matched = match (r.sku, r.tax_category) {
            (Some(sku), Some(tax)) => Some(MatchedProduct {
                sku: parse("line sku", &sku)?,
                tax_category: parse("line tax category", &tax)?,
                catalog_title: r.catalog_title.unwrap_or_default(),
            }),
            _ => None,
        };
        Ok(Line {
            line_id: r.line_id,
            requested_sku: parse_opt("requested sku", r.requested_sku.as_deref())?,
            gtin: parse_opt("gtin", r.gtin.as_deref())?,
            title: r.title,
            quantity: count("quantity", r.quantity)?,
            unit_price: amount("unit price", r.unit_price)?,
            discount: amount("line discount", r.discount)?,
            requested_tax_category: parse_opt(
                "requested tax category",
                r.requested_tax_category.as_deref(),
            )?,
            matched,
            cancelled: count("cancelled quantity", r.cancelled_quantity)?,
            refunded: count("refunded quantity", r.refunded_quantity)?,
        })
    }
}

/// An order's lines, in the order they were placed.
pub async fn load_lines(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<Vec<Line>> {
    let rows: Vec<LineRow> = sqlx::query_as(
        "select line_id, requested_sku, gtin, title, quantity, unit_price, discount,
                requested_tax_category, sku, tax_category, catalog_title, cancelled_quantity,
                refunded_quantity
         from order_lines where order_id = $1 order by position",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Line::try_from).collect()
}

/// Records the product a line was matched to.
pub async fn set_line_match(
    conn: &mut PgConnection,
    order_id: Uuid,
    line_id: &str,
    m: &MatchedProduct,
) -> sqlx::Result<()> {
    sqlx::query(
        "update order_lines set sku = $3, tax_category = $4, catalog_title = $5
         where order_id = $1 and line_id = $2",
    )
    .bind(order_id)
    .bind(line_id)
    .bind(m.sku.as_str())
    .bind(m.tax_category.as_str())
    .bind(&m.catalog_title)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds cancelled units to lines (never beyond what was ordered).
pub async fn add_cancelled(
    conn: &mut PgConnection,
    order_id: Uuid,
    lines: &[CancelledLine],
) -> sqlx::Result<()> {
    let ids: Vec<&str> = lines.iter().map(|l| l.line_id.as_str()).collect();
    let qty: Vec<i64> = lines.iter().map(|l| i64::from(l.quantity.get())).collect();
    sqlx::query(
        "update order_lines l
         set cancelled_quantity = least(l.quantity, l.cancelled_quantity + c.q)
         from unnest($2::text[], $3::bigint[]) as c(id, q)
         where l.order_id = $1 and l.line_id = c.id",
    )
    .bind(order_id)
    .bind(&ids)
    .bind(&qty)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds refunded units to lines.
pub async fn add_refunded(
    conn: &mut PgConnection,
    order_id: Uuid,
    lines: &[(String, u32)],
) -> sqlx::Result<()> {
    let ids: Vec<&str> = lines.iter().map(|(l, _)| l.as_str()).collect();
    let qty: Vec<i64> = lines.iter().map(|(_, q)| i64::from(*q)).collect();
    sqlx::query(
        "update order_lines l set refunded_quantity = l.refunded_quantity + c.q
         from unnest($2::text[], $3::bigint[]) as c(id, q)
         where l.order_id = $1 and l.line_id = c.id",
    )
    .bind(order_id)
    .bind(&ids)
    .bind(&qty)
    .execute(conn)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Order item exceptions
// ---------------------------------------------------------------------------------------------

/// Raises exceptions for an order.
pub async fn insert_exceptions(
    conn: &mut PgConnection,
    order_id: Uuid,
    exceptions: &[ItemException],
) -> sqlx::Result<()> {
    insert_exceptions_of(conn, &[(order_id, exceptions)]).await
}

/// Raises exceptions for several orders, in one statement.
pub async fn insert_exceptions_of(
    conn: &mut PgConnection,
    orders: &[(Uuid, &[ItemException])],
) -> sqlx::Result<()> {
    let rows = || {
        orders
            .iter()
            .flat_map(|(order_id, exceptions)| exceptions.iter().map(move |e| (*order_id, e)))
    };
    if rows().next().is_none() {
        return Ok(());
    }
    let ids: Vec<Uuid> = rows().map(|(_, e)| e.exception_id).collect();
    let order_ids: Vec<Uuid> = rows().map(|(id, _)| id).collect();
    let lines: Vec<&str> = rows().map(|(_, e)| e.line_id.as_str()).collect();
    let skus: Vec<Option<&str>> = rows()
        .map(|(_, e)| e.sku.as_ref().map(Sku::as_str))
        .collect();
    let gtins: Vec<Option<&str>> = rows()
        .map(|(_, e)| e.gtin.as_ref().map(Gtin::as_str))
        .collect();
    let titles: Vec<&str> = rows().map(|(_, e)| e.title.as_str()).collect();
    let problems: Vec<&str> = rows().map(|(_, e)| e.problem.as_str()).collect();
    sqlx::query(
        "insert into item_exceptions (exception_id, order_id, line_id, sku, gtin, title, problem)
         select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                              $6::text[], $7::text[])",
    )
    .bind(&ids)
    .bind(&order_ids)
    .bind(&lines)
    .bind(&skus)
    .bind(&gtins)
    .bind(&titles)
    .bind(&problems)
    .execute(conn)
    .await?;
    Ok(())
}

/// An order item exception with its order's identifiers, for operators.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ExceptionRecord {
    /// Its id.
    pub exception_id: Uuid,
    /// The order.
    pub order_id: Uuid,
    /// The order's store.
    pub store_id: String,
    /// The order's channel.
    pub channel: String,
    /// The order's external id.
    pub external_order_id: String,
    /// The line.
    pub line_id: String,
    /// SKU involved.
    pub sku: Option<String>,
    /// GTIN involved.
    pub gtin: Option<String>,
    /// Title from the order.
    pub title: String,
    /// `unknown_sku`, `unknown_gtin`, `inactive_product`.
    pub problem: String,
    /// `open`, `resolved`, `superseded`.
    pub status: String,
    /// How it was resolved.
    pub resolution: Option<String>,
    /// The SKU chosen (`map_to_sku`).
    pub resolved_sku: Option<String>,
    /// Whether the mapping was remembered.
    pub remember_mapping: bool,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// The operator's note.
    pub note: Option<String>,
    /// When it was raised.
    pub raised_at: DateTime<Utc>,
    /// When it was closed.
    pub resolved_at: Option<DateTime<Utc>>,
}

impl ExceptionRecord {
    /// The stored status.
    pub fn status(&self) -> Result<ExceptionStatus, sqlx::Error> {
        ExceptionStatus::parse(&self.status)
            .ok_or_else(|| corrupt("exception status", &self.status))
    }

    /// The stored resolution.
    pub fn resolution(&self) -> Result<Option<ExceptionResolution>, sqlx::Error> {
        parse_opt("exception resolution", self.resolution.as_deref())
    }

    /// The stored resolved SKU.
    pub fn resolved_sku(&self) -> Result<Option<Sku>, sqlx::Error> {
        parse_opt("resolved sku", self.resolved_sku.as_deref())
    }
}

macro_rules! select_exception {
    ($tail:literal) => {
        concat!(
            "select e.exception_id, e.order_id, o.store_id, o.channel, o.external_order_id,
                    e.line_id, e.sku, e.gtin, e.title, e.problem, e.status, e.resolution,
                    e.resolved_sku, e.remember_mapping, e.resolved_by, e.note, e.raised_at,
                    e.resolved_at
             from item_exceptions e join orders o on o.order_id = e.order_id ",
            $tail
        )
    };
}

/// One exception by id.
pub async fn find_exception(
    conn: &mut PgConnection,
    exception_id: Uuid,
) -> sqlx::Result<Option<ExceptionRecord>> {
    sqlx::query_as(select_exception!("where e.exception_id = $1"))
        .bind(exception_id)
        .fetch_optional(conn)
        .await
}

/// Order item exceptions, oldest first; only the open ones if `only_open` (for the CLI).
pub async fn list_exceptions(
    conn: &mut PgConnection,
    only_open: bool,
) -> sqlx::Result<Vec<ExceptionRecord>> {
    sqlx::query_as(select_exception!(
        "where (not $1 or e.status = 'open') order by e.raised_at, e.exception_id"
    ))
    .bind(only_open)
    .fetch_all(conn)
    .await
}

/// An order's open exceptions, in line order, as `order.on_hold` carries them.
pub async fn open_exceptions(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> sqlx::Result<Vec<ItemException>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        exception_id: Uuid,
        line_id: String,
        sku: Option<String>,
        gtin: Option<String>,
        title: String,
        problem: String,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "select e.exception_id, e.line_id, e.sku, e.gtin, e.title, e.problem
             from item_exceptions e
             left join order_lines l on l.order_id = e.order_id and l.line_id = e.line_id
             where e.order_id = $1 and e.status = 'open'
             order by l.position, e.line_id",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(ItemException {
                exception_id: r.exception_id,
                line_id: r.line_id,
                sku: parse_opt("exception sku", r.sku.as_deref())?,
                gtin: parse_opt("exception gtin", r.gtin.as_deref())?,
                title: r.title,
                problem: parse::<ItemProblem>("exception problem", &r.problem)?,
            })
        })
        .collect()
}

/// The open exceptions as the re-push reconciliation needs them.
pub fn as_open(exceptions: &[ItemException]) -> Vec<OpenException> {
    exceptions
        .iter()
        .map(|e| OpenException {
            exception_id: e.exception_id,
            line_id: e.line_id.clone(),
            problem: e.problem,
            sku: e.sku.clone(),
            gtin: e.gtin.clone(),
        })
        .collect()
}

/// How an exception was closed.
#[derive(Debug, Clone, Copy)]
pub struct Closing<'a> {
    /// The resolution.
    pub resolution: ExceptionResolution,
    /// The SKU chosen (`map_to_sku`).
    pub sku: Option<&'a Sku>,
    /// Whether the mapping was remembered.
    pub remember: bool,
    /// Who (operator id, or `system`).
    pub by: Option<&'a str>,
    /// Note.
    pub note: Option<&'a str>,
}

/// Resolves one open exception; `false` if it was not open.
pub async fn resolve_exception(
    conn: &mut PgConnection,
    exception_id: Uuid,
    c: Closing<'_>,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "update item_exceptions
         set status = 'resolved', resolution = $2, resolved_sku = $3, remember_mapping = $4,
             resolved_by = $5, note = $6, resolved_at = now()
         where exception_id = $1 and status = 'open'",
    )
    .bind(exception_id)
    .bind(c.resolution.as_str())
    .bind(c.sku.map(Sku::as_str))
    .bind(c.remember)
    .bind(c.by)
    .bind(c.note)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Resolves the open exceptions of an order (all of them, or those of `line_ids`) the same
/// way: when the order or those lines are cancelled. Returns how many were closed.
pub async fn resolve_open_exceptions(
    conn: &mut PgConnection,
    order_id: Uuid,
    line_ids: Option<&[String]>,
    c: Closing<'_>,
) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "update item_exceptions
         set status = 'resolved', resolution = $3, resolved_by = $4, note = $5,
             resolved_at = now()
         where order_id = $1 and status = 'open' and ($2::text[] is null or line_id = any($2))",
    )
    .bind(order_id)
    .bind(line_ids)
    .bind(c.resolution.as_str())
    .bind(c.by)
    .bind(c.note)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Marks exceptions superseded by a newer revision.
pub async fn supersede_exceptions(conn: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "update item_exceptions set status = 'superseded', resolved_at = now()
         where exception_id = any($1) and status = 'open'",
    )
    .bind(ids)
    .execute(conn)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Fulfilment facts
// ---------------------------------------------------------------------------------------------

/// Everything the status machine needs to know about an order.
pub async fn load_facts(conn: &mut PgConnection, order: &StoredOrder) -> sqlx::Result<Facts> {
    let mut facts = facts_of(conn, &[order]).await?;
    Ok(facts.remove(&order.head.order_id).unwrap_or_default())
}

/// The facts of several orders (see [`load_facts`]), in one round trip for the four fact
/// tables: this runs for nearly every message.
pub async fn facts_of(
    conn: &mut PgConnection,
    orders: &[&StoredOrder],
) -> sqlx::Result<HashMap<Uuid, Facts>> {
    let mut facts: HashMap<Uuid, Facts> = orders
        .iter()
        .map(|o| {
            (
                o.head.order_id,
                Facts {
                    accepted: o.accepted,
                    cancelled: o.cancelled,
                    backordered: o.backordered,
                    ..Facts::default()
                },
            )
        })
        .collect();
    if facts.is_empty() {
        return Ok(facts);
    }
    let ids: Vec<Uuid> = facts.keys().copied().collect();
    type Row = (
        Uuid,
        String,
        Option<String>,
        Option<String>,
        Option<Uuid>,
        i64,
        bool,
        bool,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "select order_id, 'allocation', warehouse_id, line_id, null::uuid, quantity::bigint,
                false, false
           from order_allocations where order_id = any($1)
         union all
         select order_id, 'release', warehouse_id, line_id, null, quantity::bigint, false, false
           from order_releases where order_id = any($1)
         union all
         select order_id, 'shipment', null, null, shipment_id, 0, dispatched_at is not null,
                delivered_at is not null
           from order_shipments where order_id = any($1)
         union all
         select order_id, 'item', null, line_id, shipment_id, quantity::bigint, false, false
           from order_shipment_items where order_id = any($1)",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let missing = |what: &str| corrupt(what, "absent");
    let mut items = Vec::new();
    for (order_id, kind, warehouse, line, shipment, qty, dispatched, delivered) in rows {
        let Some(facts) = facts.get_mut(&order_id) else {
            continue;
        };
        match kind.as_str() {
            "allocation" => {
                facts
                    .allocations
                    .get_or_insert_with(BTreeMap::new)
                    .entry(warehouse.ok_or_else(|| missing("allocation warehouse"))?)
                    .or_default()
                    .insert(
                        line.ok_or_else(|| missing("allocation line"))?,
                        count("allocated quantity", qty)?,
                    );
            }
            "release" => {
                facts.released.insert(
                    (
                        warehouse.ok_or_else(|| missing("release warehouse"))?,
                        line.ok_or_else(|| missing("release line"))?,
                    ),
                    count("released quantity", qty)?,
                );
            }
            "shipment" => {
                let id = shipment.ok_or_else(|| missing("shipment id"))?;
                if dispatched {
                    facts.dispatched.insert(id, BTreeMap::new());
                }
                if delivered {
                    facts.delivered.insert(id);
                }
            }
            _ => items.push((
                order_id,
                shipment.ok_or_else(|| missing("shipment item's shipment"))?,
                line.ok_or_else(|| missing("shipment item's line"))?,
                qty,
            )),
        }
    }
    for (order_id, id, line, qty) in items {
        if let Some(lines) = facts
            .get_mut(&order_id)
            .and_then(|f| f.dispatched.get_mut(&id))
        {
            lines.insert(line, count("dispatched quantity", qty)?);
        }
    }
    Ok(facts)
}

/// Records the allocations of `stock.reserved` messages (the first one of an order stands),
/// in one statement.
pub async fn record_allocations(
    conn: &mut PgConnection,
    reserved: &[&StockReserved],
) -> sqlx::Result<()> {
    let rows = || {
        reserved.iter().flat_map(|p| {
            p.allocations
                .iter()
                .flat_map(move |a| a.lines.iter().map(move |l| (p.order_id, a, l)))
        })
    };
    if rows().next().is_none() {
        return Ok(());
    }
    let orders: Vec<Uuid> = rows().map(|(id, _, _)| id).collect();
    let warehouses: Vec<&str> = rows().map(|(_, a, _)| a.warehouse_id.as_str()).collect();
    let lines: Vec<&str> = rows().map(|(_, _, l)| l.line_id.as_str()).collect();
    let skus: Vec<&str> = rows().map(|(_, _, l)| l.sku.as_str()).collect();
    let qty: Vec<i64> = rows()
        .map(|(_, _, l)| i64::from(l.quantity.get()))
        .collect();
    sqlx::query(
        "insert into order_allocations (order_id, warehouse_id, line_id, sku, quantity)
         select * from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[])
         on conflict do nothing",
    )
    .bind(&orders)
    .bind(&warehouses)
    .bind(&lines)
    .bind(&skus)
    .bind(&qty)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds the units of a `stock.released`.
pub async fn record_releases(
    conn: &mut PgConnection,
    order_id: Uuid,
    p: &StockReleased,
) -> sqlx::Result<()> {
    let warehouses: Vec<&str> = p.lines.iter().map(|l| l.warehouse_id.as_str()).collect();
    let lines: Vec<&str> = p.lines.iter().map(|l| l.line_id.as_str()).collect();
    let qty: Vec<i64> = p
        .lines
        .iter()
        .map(|l| i64::from(l.quantity.get()))
        .collect();
    sqlx::query(
        "insert into order_releases (order_id, warehouse_id, line_id, quantity)
         select $1, * from unnest($2::text[], $3::text[], $4::bigint[])
         on conflict (order_id, warehouse_id, line_id)
           do update set quantity = order_releases.quantity + excluded.quantity",
    )
    .bind(order_id)
    .bind(&warehouses)
    .bind(&lines)
    .bind(&qty)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records `shipment.requested` messages, each shipment once (the first request of a
/// shipment stands), in one statement.
pub async fn record_shipment_requests(
    conn: &mut PgConnection,
    requests: &[&ShipmentRequested],
) -> sqlx::Result<()> {
    let mut seen = std::collections::HashSet::new();
    let requests: Vec<&&ShipmentRequested> = requests
        .iter()
        .filter(|p| seen.insert(p.shipment_id))
        .collect();
    if requests.is_empty() {
        return Ok(());
    }
    let shipments: Vec<Uuid> = requests.iter().map(|p| p.shipment_id).collect();
    let orders: Vec<Uuid> = requests.iter().map(|p| p.order_id).collect();
    let warehouses: Vec<&str> = requests.iter().map(|p| p.warehouse_id.as_str()).collect();
    sqlx::query(
        "insert into order_shipments (shipment_id, order_id, warehouse_id, requested_at)
         select s, o, w, now() from unnest($1::uuid[], $2::uuid[], $3::text[]) as r(s, o, w)
         on conflict (shipment_id) do update
           set warehouse_id = coalesce(order_shipments.warehouse_id, excluded.warehouse_id),
               requested_at = coalesce(order_shipments.requested_at, excluded.requested_at)
           where order_shipments.order_id = excluded.order_id",
    )
    .bind(&shipments)
    .bind(&orders)
    .bind(&warehouses)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records `shipment.dispatched` messages and what they carry (each shipment at most once:
/// the facts only take a shipment's first dispatch), in two statements.
pub async fn record_dispatches(
    conn: &mut PgConnection,
    dispatches: &[&ShipmentDispatched],
) -> sqlx::Result<()> {
    if dispatches.is_empty() {
        return Ok(());
    }
    let shipments: Vec<Uuid> = dispatches.iter().map(|p| p.shipment_id).collect();
    let orders: Vec<Uuid> = dispatches.iter().map(|p| p.order_id).collect();
    let warehouses: Vec<&str> = dispatches.iter().map(|p| p.warehouse_id.as_str()).collect();
    let carriers: Vec<&str> = dispatches.iter().map(|p| p.carrier.as_str()).collect();
    let numbers: Vec<&str> = dispatches
        .iter()
        .map(|p| p.tracking_number.as_str())
        .collect();
    let urls: Vec<Option<&str>> = dispatches
        .iter()
        .map(|p| p.tracking_url.as_deref())
        .collect();
    let at: Vec<DateTime<Utc>> = dispatches.iter().map(|p| p.dispatched_at).collect();
    sqlx::query(
        "insert into order_shipments (shipment_id, order_id, warehouse_id, carrier,
                                      tracking_number, tracking_url, dispatched_at)
         select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                              $6::text[], $7::timestamptz[])
         on conflict (shipment_id) do update
           set warehouse_id = coalesce(order_shipments.warehouse_id, excluded.warehouse_id),
               carrier = excluded.carrier, tracking_number = excluded.tracking_number,
               tracking_url = coalesce(excluded.tracking_url, order_shipments.tracking_url),
               dispatched_at = coalesce(order_shipments.dispatched_at, excluded.dispatched_at)
           where order_shipments.order_id = excluded.order_id",
    )
    .bind(&shipments)
    .bind(&orders)
    .bind(&warehouses)
    .bind(&carriers)
    .bind(&numbers)
    .bind(&urls)
    .bind(&at)
    .execute(&mut *conn)
    .await?;
    let items = || {
        dispatches
            .iter()
            .flat_map(|p| p.items.iter().map(move |i| (*p, i)))
    };
    let item_shipments: Vec<Uuid> = items().map(|(p, _)| p.shipment_id).collect();
    let item_orders: Vec<Uuid> = items().map(|(p, _)| p.order_id).collect();
    let lines: Vec<&str> = items().map(|(_, i)| i.line_id.as_str()).collect();
    let skus: Vec<&str> = items().map(|(_, i)| i.sku.as_str()).collect();
    let qty: Vec<i64> = items().map(|(_, i)| i64::from(i.quantity.get())).collect();
    sqlx::query(
        "insert into order_shipment_items (shipment_id, order_id, line_id, sku, quantity)
         select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bigint[])
         on conflict do nothing",
    )
    .bind(&item_shipments)
    .bind(&item_orders)
    .bind(&lines)
    .bind(&skus)
    .bind(&qty)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records `shipment.delivered` messages (each shipment at most once, as the facts take
/// them), in one statement.
pub async fn record_deliveries(
    conn: &mut PgConnection,
    deliveries: &[&ShipmentDelivered],
) -> sqlx::Result<()> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let shipments: Vec<Uuid> = deliveries.iter().map(|p| p.shipment_id).collect();
    let orders: Vec<Uuid> = deliveries.iter().map(|p| p.order_id).collect();
    let carriers: Vec<&str> = deliveries.iter().map(|p| p.carrier.as_str()).collect();
    let numbers: Vec<&str> = deliveries
        .iter()
        .map(|p| p.tracking_number.as_str())
        .collect();
    let at: Vec<DateTime<Utc>> = deliveries.iter().map(|p| p.delivered_at).collect();
    sqlx::query(
        "insert into order_shipments (shipment_id, order_id, carrier, tracking_number, delivered_at)
         select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[])
         on conflict (shipment_id) do update
           set carrier = coalesce(order_shipments.carrier, excluded.carrier),
               tracking_number = coalesce(order_shipments.tracking_number, excluded.tracking_number),
               delivered_at = coalesce(order_shipments.delivered_at, excluded.delivered_at)
           where order_shipments.order_id = excluded.order_id",
    )
    .bind(&shipments)
    .bind(&orders)
    .bind(&carriers)
    .bind(&numbers)
    .bind(&at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a `shipment.exception` (the latest one by event time is kept on the shipment).
pub async fn record_shipment_exception(
    conn: &mut PgConnection,
    p: &ShipmentException,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into order_shipments (shipment_id, order_id, carrier, tracking_number,
                                      last_exception, last_exception_at)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (shipment_id) do update
           set carrier = coalesce(order_shipments.carrier, excluded.carrier),
               tracking_number = coalesce(order_shipments.tracking_number, excluded.tracking_number),
               last_exception = case
                 when order_shipments.last_exception_at is null
                   or order_shipments.last_exception_at <= excluded.last_exception_at
                 then excluded.last_exception else order_shipments.last_exception end,
               last_exception_at = greatest(order_shipments.last_exception_at, excluded.last_exception_at)
           where order_shipments.order_id = excluded.order_id",
    )
    .bind(p.shipment_id)
    .bind(p.order_id)
    .bind(&p.carrier)
    .bind(&p.tracking_number)
    .bind(p.status.as_str())
    .bind(p.event_at)
    .execute(conn)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Invoices and credit notes
// ---------------------------------------------------------------------------------------------

/// Records an invoice; `false` if it was known already.
pub async fn record_invoice(conn: &mut PgConnection, p: &InvoiceIssued) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "insert into order_invoices (invoice_id, order_id, invoice_number, shipment_id,
                                     issued_at, currency, gross)
         values ($1, $2, $3, $4, $5, $6, $7) on conflict do nothing",
    )
    .bind(p.invoice_id)
    .bind(p.order_id)
    .bind(&p.invoice_number)
    .bind(p.shipment_id)
    .bind(p.issued_at)
    .bind(p.currency.as_str())
    .bind(p.totals.gross.value())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The order's invoice numbers, in issue order.
pub async fn invoice_numbers(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "select invoice_number from order_invoices where order_id = $1
         order by issued_at, invoice_number",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await
}

/// Records a credit note; `false` if it was known already.
pub async fn record_credit_note(
    conn: &mut PgConnection,
    p: &CreditNoteIssued,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "insert into order_credit_notes (credit_note_id, order_id, credit_note_number,
                                         invoice_number, request_id, reason, issued_at,
                                         currency, gross)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9) on conflict do nothing",
    )
    .bind(p.credit_note_id)
    .bind(p.order_id)
    .bind(&p.credit_note_number)
    .bind(&p.invoice_number)
    .bind(p.request_id)
    .bind(p.reason.as_str())
    .bind(p.issued_at)
    .bind(p.currency.as_str())
    .bind(p.totals.gross.value())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

// ---------------------------------------------------------------------------------------------
// The timeline
// ---------------------------------------------------------------------------------------------

/// The message behind a timeline entry.
#[derive(Debug, Clone, Copy)]
pub struct Cause<'a> {
    /// Its id.
    pub message_id: Uuid,
    /// Its type.
    pub message_type: &'a str,
    /// Who sent it.
    pub producer: &'a str,
}

impl<'a> Cause<'a> {
    /// The cause of an incoming envelope.
    pub fn of(envelope: &'a RawEnvelope) -> Self {
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
pub async fn add_timeline(
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
pub struct NewEntry {
    /// The order.
    pub order_id: Uuid,
    /// Its number within the order.
    pub seq: i32,
    /// What happened.
    pub kind: &'static str,
    /// The message that caused it.
    pub message_id: Uuid,
    /// That message's type.
    pub message_type: String,
    /// Who sent it.
    pub producer: String,
    /// In words.
    pub detail: String,
}

/// Appends numbered timeline entries, in one statement. A number taken twice (two writers
/// of one order, which the order's lock rules out) fails on the primary key.
pub async fn add_timeline_entries(
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

// ---------------------------------------------------------------------------------------------
// Cancellation and refund requests
// ---------------------------------------------------------------------------------------------

/// A request already on record: its order and outcome.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RequestOutcome {
    /// The order, if it was found.
    pub order_id: Option<Uuid>,
    /// What became of it.
    pub outcome: String,
}

/// The recorded outcome of a cancellation request.
pub async fn cancellation_outcome(
    conn: &mut PgConnection,
    request_id: Uuid,
) -> sqlx::Result<Option<RequestOutcome>> {
    sqlx::query_as("select order_id, outcome from cancellation_requests where request_id = $1")
        .bind(request_id)
        .fetch_optional(conn)
        .await
}

/// Records a cancellation request and its outcome (a rejected one is judged again on replay).
pub async fn record_cancellation(
    conn: &mut PgConnection,
    message_id: Uuid,
    p: &OrderCancelRequested,
    order_id: Option<Uuid>,
    outcome: &str,
    outcome_reason: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into cancellation_requests (request_id, message_id, store_id, order_id, order_ref,
                                            requested_by, reason, lines, outcome, outcome_reason)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         on conflict (request_id) do update
           set message_id = excluded.message_id, order_id = excluded.order_id,
               outcome = excluded.outcome, outcome_reason = excluded.outcome_reason,
               received_at = now()
           where cancellation_requests.outcome = 'rejected'",
    )
    .bind(p.request_id)
    .bind(message_id)
    .bind(p.store_id.as_str())
    .bind(order_id)
    .bind(Json(&p.order))
    .bind(Json(&p.requested_by))
    .bind(&p.reason)
    .bind(p.lines.as_ref().map(Json))
    .bind(outcome)
    .bind(outcome_reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// The recorded outcome of a refund request.
pub async fn refund_outcome(
    conn: &mut PgConnection,
    request_id: Uuid,
) -> sqlx::Result<Option<RequestOutcome>> {
    sqlx::query_as("select order_id, outcome from refund_requests where request_id = $1")
        .bind(request_id)
        .fetch_optional(conn)
        .await
}

/// Records a refund request and what orders made of it.
pub async fn record_refund(
    conn: &mut PgConnection,
    message_id: Uuid,
    p: &OrderRefundRequested,
    outcome: &str,
    outcome_reason: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into refund_requests (request_id, message_id, store_id, order_id, requested_by,
                                      reason, lines, refund_shipping, outcome, outcome_reason)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         on conflict (request_id) do update
           set message_id = excluded.message_id, outcome = excluded.outcome,
               outcome_reason = excluded.outcome_reason, received_at = now()
           where refund_requests.outcome = 'rejected'",
    )
    .bind(p.request_id)
    .bind(message_id)
    .bind(p.store_id.as_str())
    .bind(p.order_id)
    .bind(Json(&p.requested_by))
    .bind(&p.reason)
    .bind(Json(&p.lines))
    .bind(p.refund_shipping)
    .bind(outcome)
    .bind(outcome_reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// A cancellation request as recorded (for operators and tests).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct CancellationRecord {
    /// The request id.
    pub request_id: Uuid,
    /// The order, if found.
    pub order_id: Option<Uuid>,
    /// `cancelled`, `lines_cancelled`, `partially_refused`, `refused`, `rejected`.
    pub outcome: String,
    /// Why (for refusals and rejections).
    pub outcome_reason: Option<String>,
    /// The requester's reason.
    pub reason: String,
    /// When it was received.
    pub received_at: DateTime<Utc>,
}

/// The cancellation requests of an order, oldest first.
pub async fn cancellation_requests(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> sqlx::Result<Vec<CancellationRecord>> {
    sqlx::query_as(
        "select request_id, order_id, outcome, outcome_reason, reason, received_at
         from cancellation_requests where order_id = $1 order by received_at, request_id",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await
}

// ---------------------------------------------------------------------------------------------
// Rejected orders
// ---------------------------------------------------------------------------------------------

/// Records an `order.placed` that broke its contract (a replay of the same message updates
/// the row rather than adding one).
pub async fn record_rejected(
    conn: &mut PgConnection,
    envelope: &RawEnvelope,
    err: &ContractError,
) -> sqlx::Result<()> {
    let field = |name: &str| {
        envelope
            .payload
            .get(name)
            .and_then(serde_json::Value::as_str)
            .map(|s| s.chars().take(256).collect::<String>())
    };
    let body = serde_json::to_value(envelope).unwrap_or(serde_json::Value::Null);
    sqlx::query(
        "insert into rejected_orders (message_id, message_type, producer, store_id, channel,
                                      external_order_id, field, reason, body)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         on conflict (message_id) do update
           set field = excluded.field, reason = excluded.reason, received_at = now()",
    )
    .bind(envelope.message_id)
    .bind(&envelope.message_type)
    .bind(&envelope.producer)
    .bind(field("store_id"))
    .bind(field("channel"))
    .bind(field("external_order_id"))
    .bind(&err.field)
    .bind(&err.reason)
    .bind(body)
    .execute(conn)
    .await?;
    Ok(())
}

/// A rejected `order.placed`.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct RejectedOrder {
    /// Row id.
    pub id: i64,
    /// The message.
    pub message_id: Uuid,
    /// Its type.
    pub message_type: String,
    /// Who sent it.
    pub producer: String,
    /// The store, if the body named one.
    pub store_id: Option<String>,
    /// The channel, if the body named one.
    pub channel: Option<String>,
    /// The external order id, if the body named one.
    pub external_order_id: Option<String>,
    /// The offending field (JSON path).
    pub field: String,
    /// Why.
    pub reason: String,
    /// The whole envelope as received.
    pub body: serde_json::Value,
    /// When it was (last) rejected.
    pub received_at: DateTime<Utc>,
}

/// The most recent rejected orders, newest first (for the CLI).
pub async fn list_rejected(
    conn: &mut PgConnection,
    limit: i64,
) -> sqlx::Result<Vec<RejectedOrder>> {
    sqlx::query_as(
        "select id, message_id, message_type, producer, store_id, channel, external_order_id,
                field, reason, body, received_at
         from rejected_orders order by received_at desc, id desc limit $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

// ---------------------------------------------------------------------------------------------
// Customer statistics
// ---------------------------------------------------------------------------------------------

/// Counts new orders for their customers (never called for a re-push): one statement for
/// the counts and one for the spend, however many orders.
pub async fn count_new_orders(
    conn: &mut PgConnection,
    orders: &[(&OrderHead, &str)],
) -> sqlx::Result<()> {
    if orders.is_empty() {
        return Ok(());
    }
    // One row per key: an upsert may not touch a row twice. Per key: orders, first, last.
    type Count = (i32, DateTime<Utc>, DateTime<Utc>);
    let mut counts: BTreeMap<(&str, &str), Count> = BTreeMap::new();
    let mut spend: BTreeMap<(&str, &str, &str), Decimal> = BTreeMap::new();
    for (head, key) in orders {
        let c = counts.entry((head.store_id.as_str(), key)).or_insert((
            0,
            head.placed_at,
            head.placed_at,
        ));
        c.0 += 1;
        c.1 = c.1.min(head.placed_at);
        c.2 = c.2.max(head.placed_at);
        *spend
            .entry((head.store_id.as_str(), key, head.currency.as_str()))
            .or_default() += head.total.value();
    }
    let stores: Vec<&str> = counts.keys().map(|k| k.0).collect();
    let keys: Vec<&str> = counts.keys().map(|k| k.1).collect();
    let n: Vec<i32> = counts.values().map(|c| c.0).collect();
    let first: Vec<DateTime<Utc>> = counts.values().map(|c| c.1).collect();
    let last: Vec<DateTime<Utc>> = counts.values().map(|c| c.2).collect();
    sqlx::query(
        "insert into customer_stats (store_id, customer_key, orders, first_order_at, last_order_at)
         select * from unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[],
                              $5::timestamptz[])
         on conflict (store_id, customer_key) do update
           set orders = customer_stats.orders + excluded.orders,
               first_order_at = least(customer_stats.first_order_at, excluded.first_order_at),
               last_order_at = greatest(customer_stats.last_order_at, excluded.last_order_at)",
    )
    .bind(&stores)
    .bind(&keys)
    .bind(&n)
    .bind(&first)
    .bind(&last)
    .execute(&mut *conn)
    .await?;
    let stores: Vec<&str> = spend.keys().map(|k| k.0).collect();
    let keys: Vec<&str> = spend.keys().map(|k| k.1).collect();
    let currencies: Vec<&str> = spend.keys().map(|k| k.2).collect();
    let amounts: Vec<Decimal> = spend.values().copied().collect();
    sqlx::query(
        "insert into customer_spend (store_id, customer_key, currency, amount)
         select * from unnest($1::text[], $2::text[], $3::text[], $4::numeric[])
         on conflict (store_id, customer_key, currency) do update
           set amount = customer_spend.amount + excluded.amount",
    )
    .bind(&stores)
    .bind(&keys)
    .bind(&currencies)
    .bind(&amounts)
    .execute(conn)
    .await?;
    Ok(())
}

/// A customer's order statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct CustomerStats {
    /// The store.
    pub store_id: String,
    /// The customer key (id, lowercased email, or `guest:<order id>`).
    pub customer_key: String,
    /// Orders placed.
    pub orders: i32,
    /// First order's placing time.
    pub first_order_at: DateTime<Utc>,
    /// Last order's placing time.
    pub last_order_at: DateTime<Utc>,
}

/// One customer's statistics.
pub async fn customer_stats(
    conn: &mut PgConnection,
    store_id: &str,
    customer_key: &str,
) -> sqlx::Result<Option<CustomerStats>> {
    sqlx::query_as(
        "select store_id, customer_key, orders, first_order_at, last_order_at
         from customer_stats where store_id = $1 and customer_key = $2",
    )
    .bind(store_id)
    .bind(customer_key)
    .fetch_optional(conn)
    .await
}

/// One customer's spend per currency.
pub async fn customer_spend(
    conn: &mut PgConnection,
    store_id: &str,
    customer_key: &str,
) -> sqlx::Result<BTreeMap<String, Decimal>> {
    let rows: Vec<(String, Decimal)> = sqlx::query_as(
        "select currency, amount from customer_spend where store_id = $1 and customer_key = $2",
    )
    .bind(store_id)
    .bind(customer_key)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}

// ---------------------------------------------------------------------------------------------
// Read API for the CLI and the demo
// ---------------------------------------------------------------------------------------------

/// An order at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct OrderSummary {
    /// Orderly's id.
    pub order_id: Uuid,
    /// The store.
    pub store_id: String,
    /// The channel.
    pub channel: String,
    /// Marketplace name.
    pub marketplace: Option<String>,
    /// The producer's order number.
    pub external_order_id: String,
    /// Last revision seen.
    pub revision: i64,
    /// Current status.
    pub status: String,
    /// Last status change sequence.
    pub status_sequence: i64,
    /// When the buyer placed it.
    pub placed_at: DateTime<Utc>,
    /// Currency.
    pub currency: String,
    /// Total as placed.
    pub total: Decimal,
    /// The customer statistics key.
    pub customer_key: String,
    /// When orders first saw it.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

macro_rules! select_summary {
    ($tail:literal) => {
        concat!(
            "select order_id, store_id, channel, marketplace, external_order_id, revision, status,
                    status_sequence, placed_at, currency, total, customer_key, created_at,
                    updated_at
             from orders ",
            $tail
        )
    };
}

/// Finds an order by its business key.
pub async fn find_order(
    conn: &mut PgConnection,
    store_id: &str,
    channel: &str,
    external_order_id: &str,
) -> sqlx::Result<Option<OrderSummary>> {
    sqlx::query_as(select_summary!(
        "where store_id = $1 and channel = $2 and external_order_id = $3"
    ))
    .bind(store_id)
    .bind(channel)
    .bind(external_order_id)
    .fetch_optional(conn)
    .await
}

/// Finds an order by id.
pub async fn get_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> sqlx::Result<Option<OrderSummary>> {
    sqlx::query_as(select_summary!("where order_id = $1"))
        .bind(order_id)
        .fetch_optional(conn)
        .await
}

/// How many orders are in each status.
pub async fn status_counts(conn: &mut PgConnection) -> sqlx::Result<BTreeMap<String, i64>> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("select status, count(*) from orders group by status")
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().collect())
}
