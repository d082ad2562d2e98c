//! Orders: reading and locking them (one, or all a run names, `for update`), inserting a
//! run's new orders in one statement, and changing the header (status, revision, addresses,
//! milestones).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use orderly_contracts::messages::{Address, Payment};
use orderly_contracts::types::{Channel, OrderStatus, StoreId};
use orderly_runtime::db;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::OrderHead;

use super::*;

/// An order as stored: its header and the milestones the status machine is computed from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredOrder {
    /// The header.
    pub(crate) head: OrderHead,
    /// `order.accepted` was sent.
    pub(crate) accepted: bool,
    /// Stock was reported unavailable.
    pub(crate) backordered: bool,
    /// The whole order was cancelled.
    pub(crate) cancelled: bool,
    /// How many operators' changes its address has had (`order.address_changed`'s
    /// `amendment`).
    pub(crate) address_amendment: u32,
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
    address_amendment: i32,
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
            address_amendment: u32::try_from(r.address_amendment)
                .map_err(|e| corrupt("address amendment", e))?,
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
                    accepted_at, backordered_at, cancelled_at, address_amendment
             from orders ",
            $tail
        )
    };
}

/// Loads and locks an order by id (the lock serialises every message about one order).
pub(crate) async fn lock_order(
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
pub(crate) async fn lock_order_by_key(
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
pub(crate) struct LoadedOrder {
    /// The order.
    pub(crate) stored: StoredOrder,
    /// The number of its last timeline entry (0: none).
    pub(crate) timeline_seq: i32,
    /// Its invoice numbers, in issue order.
    pub(crate) invoice_numbers: Vec<String>,
}

/// Loads and locks orders by id, in one statement; unknown ids are missing from the result.
pub(crate) async fn lock_orders(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> sqlx::Result<Vec<LoadedOrder>> {
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
                o.backordered_at, o.cancelled_at, o.address_amendment,
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
pub(crate) async fn orders_by_keys(
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

/// A new order to insert, as it stands after its first message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewOrder<'a> {
    /// Its header (status and sequence as they stand).
    pub(crate) head: &'a OrderHead,
    /// The customer statistics key.
    pub(crate) customer_key: &'a str,
    /// Whether `order.accepted` was sent (sets the milestone).
    pub(crate) accepted: bool,
}

/// Inserts new orders in one statement; returns how many were inserted (fewer than given
/// when a business key exists already: a concurrent insert the caller must not overwrite).
pub(crate) async fn insert_orders(
    conn: &mut PgConnection,
    orders: &[NewOrder<'_>],
) -> sqlx::Result<u64> {
    db::unnest(
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
        orders,
    )
    .column(|o| o.head.order_id)
    .column(|o| o.head.store_id.as_str())
    .column(|o| o.head.channel.as_str())
    .column(|o| o.head.marketplace.as_deref())
    .column(|o| o.head.external_order_id.as_str())
    .column(|o| i64::from(o.head.revision))
    .column(|o| o.head.status.as_str())
    .column(|o| i64::try_from(o.head.status_sequence).unwrap_or(i64::MAX))
    .column(|o| o.head.placed_at)
    .column(|o| o.head.currency.as_str())
    .column(|o| o.head.prices_include_tax)
    .column(|o| Json(&o.head.customer))
    .column(|o| o.customer_key)
    .column(|o| Json(&o.head.billing_address))
    .column(|o| Json(&o.head.shipping_address))
    .column(|o| Json(&o.head.payment))
    .column(|o| o.head.shipping.value())
    .column(|o| o.head.discount.value())
    .column(|o| o.head.tax.map(|t| t.value()))
    .column(|o| o.head.total.value())
    .column(|o| o.accepted)
    .execute(conn)
    .await
}

/// Stores the status and sequence orders reached (a status change sets `updated_at`,
/// reaching `completed` sets that milestone), in one statement.
pub(crate) async fn update_statuses(
    conn: &mut PgConnection,
    orders: &[&OrderHead],
) -> sqlx::Result<()> {
    db::unnest(
        "update orders o
         set status = v.status, status_sequence = v.seq,
             completed_at = case when v.status = 'completed' then coalesce(o.completed_at, now())
                                 else o.completed_at end,
             updated_at = now()
         from unnest($1::uuid[], $2::text[], $3::bigint[]) as v(id, status, seq)
         where o.order_id = v.id",
        orders,
    )
    .column(|h| h.order_id)
    .column(|h| h.status.as_str())
    .column(|h| i64::try_from(h.status_sequence).unwrap_or(i64::MAX))
    .execute(conn)
    .await?;
    Ok(())
}

/// Rewrites an order's snapshot from a new revision (while it is on hold).
pub(crate) async fn replace_order(conn: &mut PgConnection, head: &OrderHead) -> sqlx::Result<()> {
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
pub(crate) async fn update_addresses(
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

/// An operator's change of the order's addresses: takes them and counts the amendment;
/// returns the new count.
pub(crate) async fn amend_addresses(
    conn: &mut PgConnection,
    order_id: Uuid,
    billing: &Address,
    shipping: &Address,
) -> sqlx::Result<u32> {
    let amendment: i32 = sqlx::query_scalar(
        "update orders set billing_address = $2, shipping_address = $3,
                address_amendment = address_amendment + 1, updated_at = now()
         where order_id = $1
         returning address_amendment",
    )
    .bind(order_id)
    .bind(Json(billing))
    .bind(Json(shipping))
    .fetch_one(conn)
    .await?;
    u32::try_from(amendment).map_err(|e| corrupt("address amendment", e))
}

/// Records the revision seen (and the payment as last pushed, when given).
pub(crate) async fn update_revision(
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
pub(crate) async fn set_status(
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
                $8, $4, $5, $6, $7
         from changed",
    )
    .bind(order_id)
    .bind(status.as_str())
    .bind(i64::try_from(sequence).unwrap_or(i64::MAX))
    .bind(cause.message_id)
    .bind(cause.message_type)
    .bind(cause.producer)
    .bind(detail)
    .bind(TimelineKind::StatusChanged.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// A milestone of an order's life, set once (`completed` is set with the status, by
/// [`set_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Milestone {
    /// `order.accepted` sent.
    Accepted,
    /// Stock unavailable.
    Backordered,
    /// Whole order cancelled.
    Cancelled,
}

/// Sets a milestone (keeping the first time it was reached).
pub(crate) async fn mark(
    conn: &mut PgConnection,
    order_id: Uuid,
    m: Milestone,
) -> sqlx::Result<()> {
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
