//! A storefront customer's own orders, read from the projection: the list (newest first,
//! keyset pages like the admin list, [`crate::domain::cursor`]) and one order.
//!
//! "Their own" is one condition, [`owned_by!`], used by every statement here, by the
//! document look-up and by a cancellation request's (`super::commands`): the order is in
//! the token's store, its `customer_id` (the `customer.id` of `order.accepted`) is the
//! token's customer, and it did not come from a marketplace (a marketplace's buyer ids are
//! the marketplace's, not the store's accounts, and could collide with them). An order on
//! hold is not theirs yet: its events carry no customer until it is accepted.

use chrono::{DateTime, Utc};
use orderly_contracts::messages::{AcceptedLine, Address, ShipmentItem};
use orderly_contracts::types::OrderStatus;
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::read::{self, Cancellation, DocumentRow};
use crate::domain::cursor::Cursor;

/// Whose order it is, on `orders o`, with the store as `$1` and the customer as `$2`. A
/// macro so that every statement stays a literal.
macro_rules! owned_by {
    () => {
        "o.store_id = $1 and o.customer_id = $2 and o.channel <> 'marketplace'"
    };
}
pub(crate) use owned_by;

/// A customer: the store whose secret signed their token, and their id there.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owner<'a> {
    pub(crate) store_id: &'a str,
    pub(crate) customer_id: &'a str,
}

/// An order's money, as `order.accepted` told it.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[schemars(rename = "CustomerOrderTotals")]
pub(crate) struct Totals {
    pub(crate) currency: Option<String>,
    pub(crate) total: Option<Decimal>,
    pub(crate) shipping: Option<Decimal>,
    pub(crate) discount: Option<Decimal>,
    pub(crate) tax: Option<Decimal>,
}

/// One order of the list.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[schemars(rename = "CustomerOrderSummary")]
pub(crate) struct OrderSummary {
    pub(crate) order_id: Uuid,
    /// The order number the storefront showed the customer.
    pub(crate) external_order_id: String,
    /// `null` until a status event arrived.
    #[schemars(with = "Option<OrderStatus>")]
    pub(crate) status: Option<String>,
    pub(crate) placed_at: DateTime<Utc>,
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub(crate) totals: Totals,
    /// Its shipments' tracking.
    #[sqlx(skip)]
    pub(crate) shipments: Vec<Tracking>,
}

/// A shipment as its customer sees it: who carries it and where to follow it.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[schemars(rename = "CustomerTracking")]
pub(crate) struct Tracking {
    #[serde(skip)]
    pub(crate) order_id: Uuid,
    pub(crate) shipment_id: Uuid,
    pub(crate) carrier: Option<String>,
    pub(crate) tracking_number: Option<String>,
    pub(crate) tracking_url: Option<String>,
    pub(crate) dispatched_at: Option<DateTime<Utc>>,
    pub(crate) delivered_at: Option<DateTime<Utc>>,
}

/// One page of `owner`'s orders after `cursor`, and the cursor of the next page (none on
/// the last).
pub(crate) async fn list(
    pool: &PgPool,
    owner: Owner<'_>,
    cursor: Option<Cursor>,
    limit: u16,
) -> Result<(Vec<OrderSummary>, Option<Cursor>), sqlx::Error> {
    let mut orders: Vec<OrderSummary> = sqlx::query_as(concat!(
        "select o.order_id, o.external_order_id, o.status, o.placed_at, o.currency, o.total, \
           o.shipping, o.discount, o.tax \
         from orders o where ",
        owned_by!(),
        " and ($3::timestamptz is null or (o.placed_at, o.order_id) < ($3, $4)) \
         order by o.placed_at desc, o.order_id desc limit $5"
    ))
    .bind(owner.store_id)
    .bind(owner.customer_id)
    .bind(cursor.map(|c| c.placed_at))
    .bind(cursor.map(|c| c.order_id))
    .bind(i64::from(limit) + 1)
    .fetch_all(pool)
    .await?;
    // One row more than asked says whether another page follows.
    let more = orders.len() > usize::from(limit);
    orders.truncate(usize::from(limit));
    let next = more
        .then(|| {
            orders
                .last()
                .map(|o| Cursor::after(o.placed_at, o.order_id))
        })
        .flatten();
    let ids: Vec<Uuid> = orders.iter().map(|o| o.order_id).collect();
    let tracking: Vec<Tracking> = sqlx::query_as(
        "select order_id, shipment_id, carrier, tracking_number, tracking_url, dispatched_at, \
           delivered_at \
         from shipments where order_id = any($1) order by requested_at nulls last, shipment_id",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    for shipment in tracking {
        if let Some(order) = orders.iter_mut().find(|o| o.order_id == shipment.order_id) {
            order.shipments.push(shipment);
        }
    }
    Ok((orders, next))
}

/// One order as its customer sees it.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[schemars(rename = "CustomerOrderHeader")]
pub(crate) struct Order {
    pub(crate) order_id: Uuid,
    /// The order number the storefront showed the customer.
    pub(crate) external_order_id: String,
    /// `null` until a status event arrived.
    #[schemars(with = "Option<OrderStatus>")]
    pub(crate) status: Option<String>,
    /// The sequence of the status shown: the order's `ETag`.
    #[serde(skip)]
    pub(crate) status_sequence: i64,
    pub(crate) status_changed_at: Option<DateTime<Utc>>,
    pub(crate) placed_at: DateTime<Utc>,
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub(crate) totals: Totals,
    pub(crate) prices_include_tax: Option<bool>,
    /// The lines with their product and price snapshots.
    #[schemars(with = "Option<Vec<AcceptedLine>>")]
    pub(crate) lines: Option<serde_json::Value>,
    #[schemars(with = "Option<Address>")]
    pub(crate) billing_address: Option<serde_json::Value>,
    #[schemars(with = "Option<Address>")]
    pub(crate) shipping_address: Option<serde_json::Value>,
    pub(crate) completed_at: Option<DateTime<Utc>>,
}

/// A shipment with its items, for the order's page.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[schemars(rename = "CustomerShipment")]
pub(crate) struct Shipment {
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub(crate) tracking: Tracking,
    #[schemars(with = "Option<Vec<ShipmentItem>>")]
    pub(crate) items: Option<serde_json::Value>,
}

/// An invoice or credit note of the order (as staff see it), with where to download its PDF.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(rename = "CustomerDocument")]
pub(crate) struct Document {
    #[serde(flatten)]
    pub(crate) document: DocumentRow,
    /// `GET` this (with the same token) for the PDF; its `ETag` is `pdf_sha256`.
    pub(crate) download: String,
}

/// Everything the customer sees of one of their orders.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(rename = "CustomerOrder")]
pub(crate) struct OrderDetail {
    #[serde(flatten)]
    pub(crate) order: Order,
    pub(crate) shipments: Vec<Shipment>,
    pub(crate) invoices: Vec<Document>,
    pub(crate) credit_notes: Vec<Document>,
    pub(crate) cancellations: Vec<Cancellation>,
}

/// `order_id`, if it is `owner`'s; `download` makes a document's download path.
pub(crate) async fn detail(
    pool: &PgPool,
    owner: Owner<'_>,
    order_id: Uuid,
    download: impl Fn(Uuid) -> String,
) -> Result<Option<OrderDetail>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    // One snapshot for the order and its parts.
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query("set transaction isolation level repeatable read, read only")
        .execute(&mut *tx)
        .await?;
    let order: Option<Order> = sqlx::query_as(concat!(
        "select o.order_id, o.external_order_id, o.status, o.status_sequence, \
           o.status_changed_at, o.placed_at, \
           o.currency, o.total, o.shipping, o.discount, o.tax, o.prices_include_tax, o.lines, \
           o.billing_address, o.shipping_address, o.completed_at \
         from orders o where ",
        owned_by!(),
        " and o.order_id = $3"
    ))
    .bind(owner.store_id)
    .bind(owner.customer_id)
    .bind(order_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(order) = order else {
        return Ok(None);
    };
    let shipments = sqlx::query_as(
        "select order_id, shipment_id, carrier, tracking_number, tracking_url, dispatched_at, \
           delivered_at, items \
         from shipments where order_id = $1 order by requested_at nulls last, shipment_id",
    )
    .bind(order_id)
    .fetch_all(&mut *tx)
    .await?;
    let documents = read::documents(&mut tx, order_id).await?;
    let cancellations = read::cancellations(&mut tx, order_id).await?;
    tx.commit().await?;
    let (invoices, credit_notes) = documents
        .into_iter()
        .map(|document| Document {
            download: download(document.document_id),
            document,
        })
        .partition(|d| d.document.kind == "invoice");
    Ok(Some(OrderDetail {
        order,
        shipments,
        invoices,
        credit_notes,
        cancellations,
    }))
}
