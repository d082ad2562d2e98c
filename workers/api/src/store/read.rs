//! The order list and an order's detail, read from the projection.
//!
//! The list is one statement naming only the filters the request gives, sorted by the
//! keyset `(placed_at desc, order_id desc)` and started after the cursor's key: see
//! [`crate::domain::cursor`] for why.
//!
//! Why a statement per combination of filters, planned for its values (measured on a
//! million orders by `orderly bench api`, `docs/benchmarks.md`): a filter's best index
//! depends on which filters are given and how selective their values are. One statement
//! for all of them (`$1 is null or store_id = any($1)`, …) planned once cannot use the
//! index that one filter needs; a list of one store written `store_id = any($1)` cannot
//! take its rows in order from the store's index (PostgreSQL 15 does not for an array);
//! and a plan made for a common status walks the whole list for a rare one. So a single
//! store or status is compared with `=`, several with `any`, and the statements are not
//! kept prepared: each is planned with its values (a fraction of a millisecond).

use chrono::{DateTime, Utc};
use orderly_contracts::messages::{
    AcceptedLine, Address, CancelledLine, Customer, ItemException, Payment, ShipmentItem,
};
use orderly_contracts::types::{Channel, OrderStatus};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::Serialize;
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::domain::cursor::Cursor;
use crate::domain::filter::{COUNT_LIMIT, ListQuery, Total};
use crate::domain::saga;
use crate::store::notifications::{self, Notification};
use crate::store::setups;
use crate::store::tracking::{self, TrackingEvent};

/// One row of the list.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub(crate) struct OrderSummary {
    pub(crate) order_id: Uuid,
    pub(crate) store_id: String,
    #[schemars(with = "Option<Channel>")]
    pub(crate) channel: Option<String>,
    pub(crate) marketplace: Option<String>,
    pub(crate) external_order_id: String,
    /// `null` until a status event arrived.
    #[schemars(with = "Option<OrderStatus>")]
    pub(crate) status: Option<String>,
    pub(crate) placed_at: DateTime<Utc>,
    /// False while `placed_at` is the time the api first heard of the order (an order on
    /// hold, whose events do not carry it).
    pub(crate) placed_at_known: bool,
    pub(crate) currency: Option<String>,
    pub(crate) total: Option<Decimal>,
    pub(crate) customer_name: Option<String>,
    pub(crate) customer_email: Option<String>,
}

/// `column` equal to one of `values`: `=` for one value (an index on the column then gives
/// its rows in order), `any` for several.
fn push_one_of<'t, T>(sql: &mut QueryBuilder<Postgres>, column: &str, values: Vec<T>)
where
    T: sqlx::Encode<'t, Postgres> + sqlx::Type<Postgres>,
    Vec<T>: sqlx::Encode<'t, Postgres> + sqlx::Type<Postgres>,
{
    sql.push(" and ").push(column);
    if values.len() == 1 {
        if let Some(value) = values.into_iter().next() {
            sql.push(" = ").push_bind(value);
        }
    } else {
        sql.push(" = any(").push_bind(values).push(")");
    }
}

/// ` from orders where …`: the filters the request gives (the caller's scope already
/// applied to the stores; `None`: every store).
fn push_filters(sql: &mut QueryBuilder<Postgres>, stores: Option<&[String]>, query: &ListQuery) {
    sql.push(" from orders where true");
    if let Some(stores) = stores {
        push_one_of(sql, "store_id", stores.iter().map(String::as_str).collect());
    }
    if !query.channels.is_empty() {
        push_one_of(
            sql,
            "channel",
            query.channels.iter().map(|c| c.as_str()).collect(),
        );
    }
    if !query.statuses.is_empty() {
        push_one_of(
            sql,
            "status",
            query.statuses.iter().map(|s| s.as_str()).collect(),
        );
    }
    if let Some(from) = query.placed_from {
        sql.push(" and placed_at >= ").push_bind(from);
    }
    if let Some(to) = query.placed_to {
        sql.push(" and placed_at <= ").push_bind(to);
    }
    if let (Some(pattern), Some(probe)) =
        (query.q_pattern.as_deref(), query.q_index_pattern.as_deref())
    {
        // The three columns joined by a character no search contains, as the trigram index
        // `orders_text` holds them (the expression must read exactly as in its migration):
        // the text matches there exactly when it matches one of the columns.
        sql.push(" and ")
            .push(TEXT)
            .push(" ilike ")
            .push_bind(probe);
        if probe != pattern {
            // The index looked for a part of the text (an e-mail up to its `@`).
            sql.push(" and ")
                .push(TEXT)
                .push(" ilike ")
                .push_bind(pattern);
        }
    }
}

/// The columns the free text is looked for in, joined as the index `orders_text` holds them.
const TEXT: &str = "(external_order_id || E'\\x1f' || coalesce(customer_name, '') || E'\\x1f' \
                    || coalesce(customer_email, ''))";

/// One page of the list, and the cursor of the next page (none on the last).
pub(crate) async fn list(
    pool: &PgPool,
    stores: Option<&[String]>,
    query: &ListQuery,
) -> Result<(Vec<OrderSummary>, Option<Cursor>), sqlx::Error> {
    let mut sql = QueryBuilder::new(
        "select order_id, store_id, channel, marketplace, external_order_id, status, placed_at, \
           placed_at_known, currency, total, customer_name, customer_email",
    );
    push_filters(&mut sql, stores, query);
    if let Some(cursor) = query.cursor {
        sql.push(" and (placed_at, order_id) < (")
            .push_bind(cursor.placed_at)
            .push(", ")
            .push_bind(cursor.order_id)
            .push(")");
    }
    // One row more than asked says whether another page follows.
    sql.push(" order by placed_at desc, order_id desc limit ")
        .push_bind(i64::from(query.limit) + 1);
    let mut rows: Vec<OrderSummary> = sql
        .build_query_as()
        .persistent(false)
        .fetch_all(pool)
        .await?;
    let more = rows.len() > usize::from(query.limit);
    rows.truncate(usize::from(query.limit));
    let next = more
        .then(|| rows.last().map(|r| Cursor::after(r.placed_at, r.order_id)))
        .flatten();
    Ok((rows, next))
}

/// Every order the list shows for `query` (in its order), up to `limit`: id, store,
/// status. What a bulk job's items are, by the list's own filters.
pub(crate) async fn selection(
    conn: &mut sqlx::PgConnection,
    stores: Option<&[String]>,
    query: &ListQuery,
    limit: i64,
) -> Result<Vec<(Uuid, String, Option<String>)>, sqlx::Error> {
    let mut sql = QueryBuilder::new("select order_id, store_id, status");
    push_filters(&mut sql, stores, query);
    sql.push(" order by placed_at desc, order_id desc limit ")
        .push_bind(limit);
    sql.build_query_as().persistent(false).fetch_all(conn).await
}

/// An order as an export writes it: the list's columns, the money, the lines.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ExportOrder {
    pub(crate) order_id: Uuid,
    pub(crate) store_id: String,
    pub(crate) channel: Option<String>,
    pub(crate) marketplace: Option<String>,
    pub(crate) external_order_id: String,
    pub(crate) status: Option<String>,
    pub(crate) placed_at: DateTime<Utc>,
    pub(crate) currency: Option<String>,
    pub(crate) total: Option<Decimal>,
    pub(crate) shipping: Option<Decimal>,
    pub(crate) discount: Option<Decimal>,
    pub(crate) tax: Option<Decimal>,
    pub(crate) customer_name: Option<String>,
    pub(crate) customer_email: Option<String>,
    /// The lines, when the export is one row per line (else `None`: not read).
    pub(crate) lines: Option<serde_json::Value>,
    /// How many lines the order has.
    pub(crate) line_count: i32,
}

/// A page of an export: the orders the list would show for `query`, in its order, after
/// `after`; `limit` of them; their lines only `with_lines` (the lines are most of an
/// order's row: an export of one row per order reads their number only).
pub(crate) async fn export_page(
    pool: &PgPool,
    stores: Option<&[String]>,
    query: &ListQuery,
    after: Option<Cursor>,
    limit: i64,
    with_lines: bool,
) -> Result<Vec<ExportOrder>, sqlx::Error> {
    let mut sql = QueryBuilder::new(
        "select order_id, store_id, channel, marketplace, external_order_id, status, placed_at, \
           currency, total, shipping, discount, tax, customer_name, customer_email, \
           case when jsonb_typeof(lines) = 'array' then jsonb_array_length(lines) else 0 end \
             as line_count, ",
    );
    sql.push(if with_lines {
        "lines"
    } else {
        "null::jsonb as lines"
    });
    push_filters(&mut sql, stores, query);
    if let Some(after) = after {
        sql.push(" and (placed_at, order_id) < (")
            .push_bind(after.placed_at)
            .push(", ")
            .push_bind(after.order_id)
            .push(")");
    }
    sql.push(" order by placed_at desc, order_id desc limit ")
        .push_bind(limit);
    sql.build_query_as().persistent(false).fetch_all(pool).await
}

/// How many orders match the list's filters (the cursor aside), counted up to
/// [`COUNT_LIMIT`] and one more, which says there are more.
pub(crate) async fn count(
    pool: &PgPool,
    stores: Option<&[String]>,
    query: &ListQuery,
) -> Result<Total, sqlx::Error> {
    let mut sql = QueryBuilder::new("select count(*) from (select 1");
    push_filters(&mut sql, stores, query);
    sql.push(" limit ")
        .push_bind(COUNT_LIMIT + 1)
        .push(") matches");
    let (counted,): (i64,) = sql
        .build_query_as()
        .persistent(false)
        .fetch_one(pool)
        .await?;
    Ok(Total::of(counted))
}

/// An order's header as the projection holds it. What no event has said yet is `null`.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub(crate) struct OrderHeader {
    pub(crate) order_id: Uuid,
    pub(crate) store_id: String,
    #[schemars(with = "Option<Channel>")]
    pub(crate) channel: Option<String>,
    pub(crate) marketplace: Option<String>,
    pub(crate) external_order_id: String,
    pub(crate) revision: i32,
    /// `null` until a status event arrived.
    #[schemars(with = "Option<OrderStatus>")]
    pub(crate) status: Option<String>,
    /// The sequence of the status shown (0 before any): the order's `ETag`.
    pub(crate) status_sequence: i64,
    pub(crate) status_changed_at: Option<DateTime<Utc>>,
    pub(crate) placed_at: DateTime<Utc>,
    pub(crate) placed_at_known: bool,
    pub(crate) currency: Option<String>,
    pub(crate) total: Option<Decimal>,
    pub(crate) shipping: Option<Decimal>,
    pub(crate) discount: Option<Decimal>,
    pub(crate) tax: Option<Decimal>,
    pub(crate) prices_include_tax: Option<bool>,
    pub(crate) customer_name: Option<String>,
    pub(crate) customer_email: Option<String>,
    /// The customer, as `order.accepted` named them.
    #[schemars(with = "Option<Customer>")]
    pub(crate) customer: Option<serde_json::Value>,
    #[schemars(with = "Option<Address>")]
    pub(crate) billing_address: Option<serde_json::Value>,
    #[schemars(with = "Option<Address>")]
    pub(crate) shipping_address: Option<serde_json::Value>,
    /// The lines with their product and price snapshots.
    #[schemars(with = "Option<Vec<AcceptedLine>>")]
    pub(crate) lines: Option<serde_json::Value>,
    #[schemars(with = "Option<Payment>")]
    pub(crate) payment: Option<serde_json::Value>,
    /// The order item exceptions while the order is on hold (their ids resolve them).
    #[schemars(with = "Option<Vec<ItemException>>")]
    pub(crate) exceptions: Option<serde_json::Value>,
    pub(crate) completed_at: Option<DateTime<Utc>>,
    #[schemars(with = "Option<Vec<String>>")]
    pub(crate) invoice_numbers: Option<serde_json::Value>,
    /// On an operator's hold (not a status: the status goes on as it was).
    /// Whether an operator holds the order (a hold is not a status).
    pub(crate) held: bool,
    pub(crate) hold_reason: Option<String>,
    pub(crate) hold_changed_at: Option<DateTime<Utc>>,
}

/// One entry of the status history.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub(crate) struct StatusEntry {
    pub(crate) sequence: i64,
    #[schemars(with = "Option<OrderStatus>")]
    pub(crate) from: Option<String>,
    #[schemars(with = "OrderStatus")]
    pub(crate) to: String,
    pub(crate) reason: Option<String>,
    pub(crate) changed_at: DateTime<Utc>,
}

/// A shipment, as far as its events told.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub(crate) struct Shipment {
    pub(crate) shipment_id: Uuid,
    pub(crate) warehouse_id: Option<String>,
    #[schemars(with = "Option<Address>")]
    pub(crate) ship_to: Option<serde_json::Value>,
    pub(crate) shipping_method: Option<String>,
    #[schemars(with = "Option<Vec<ShipmentItem>>")]
    pub(crate) items: Option<serde_json::Value>,
    pub(crate) requested_at: Option<DateTime<Utc>>,
    pub(crate) carrier: Option<String>,
    pub(crate) tracking_number: Option<String>,
    pub(crate) tracking_url: Option<String>,
    pub(crate) dispatched_at: Option<DateTime<Utc>>,
    pub(crate) delivered_at: Option<DateTime<Utc>>,
    pub(crate) exception_status: Option<String>,
    pub(crate) exception_raw_status: Option<String>,
    pub(crate) exception_description: Option<String>,
    pub(crate) exception_at: Option<DateTime<Utc>>,
    /// Every scan of the parcel its carrier reported, oldest first.
    #[sqlx(skip)]
    pub(crate) tracking: Vec<TrackingEvent>,
}

/// An invoice or credit note.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[schemars(rename = "Document")]
pub(crate) struct DocumentRow {
    pub(crate) document_id: Uuid,
    pub(crate) kind: String,
    pub(crate) number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) invoice_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) invoice_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    pub(crate) issued_at: DateTime<Utc>,
    pub(crate) currency: String,
    pub(crate) vat_treatment: String,
    pub(crate) net: Decimal,
    pub(crate) tax: Decimal,
    pub(crate) gross: Decimal,
    pub(crate) pdf_uri: String,
    pub(crate) pdf_sha256: String,
    pub(crate) pdf_size_bytes: i64,
}

/// A cancellation.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub(crate) struct Cancellation {
    pub(crate) scope: String,
    /// The lines cancelled (empty when the whole order was).
    #[schemars(with = "Vec<CancelledLine>")]
    pub(crate) lines: serde_json::Value,
    pub(crate) reason: String,
    pub(crate) cancelled_at: DateTime<Utc>,
}

/// An action request about an order (from the audit log), with what became of its
/// command: what [`StaffAction`] and [`CustomerRequest`] share.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub(crate) struct Requested {
    pub(crate) at: DateTime<Utc>,
    pub(crate) action: String,
    pub(crate) http_status: i16,
    pub(crate) outcome: String,
    pub(crate) command_id: Option<Uuid>,
    pub(crate) command_status: Option<String>,
    /// The refusal's words, or the command's answer.
    pub(crate) detail: Option<String>,
}

/// A staff action on the order (from the audit log), with what became of its command.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub(crate) struct StaffAction {
    pub(crate) staff_email: String,
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub(crate) request: Requested,
}

/// A storefront customer's request about the order (from the audit log), with what became
/// of its command.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub(crate) struct CustomerRequest {
    /// The customer's id in the store (another customer's attempt is listed too, refused
    /// 404).
    pub(crate) customer_id: String,
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub(crate) request: Requested,
}

/// An audit log entry about an order, as [`detail`] reads it.
#[derive(Debug, sqlx::FromRow)]
struct Audited {
    staff_email: Option<String>,
    customer_id: Option<String>,
    #[sqlx(flatten)]
    request: Requested,
}

/// An order's invoices and credit notes, in the order they were issued.
pub(crate) async fn documents(
    conn: &mut sqlx::PgConnection,
    order_id: Uuid,
) -> Result<Vec<DocumentRow>, sqlx::Error> {
    sqlx::query_as(
        "select document_id, kind, number, invoice_id, invoice_number, reason, issued_at, \
           currency, vat_treatment, net, tax, gross, pdf_uri, pdf_sha256, pdf_size_bytes \
         from documents where order_id = $1 order by issued_at, number",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await
}

/// An order's cancellations, oldest first.
pub(crate) async fn cancellations(
    conn: &mut sqlx::PgConnection,
    order_id: Uuid,
) -> Result<Vec<Cancellation>, sqlx::Error> {
    sqlx::query_as(
        "select scope, lines, reason, cancelled_at from cancellations \
         where order_id = $1 order by cancelled_at, message_id",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await
}

/// Everything the read model knows of an order.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct OrderDetail {
    #[serde(flatten)]
    pub(crate) header: OrderHeader,
    /// Where the order stands in its saga (derived, see `domain::saga`).
    pub(crate) saga: saga::SagaPosition,
    pub(crate) status_history: Vec<StatusEntry>,
    pub(crate) shipments: Vec<Shipment>,
    pub(crate) invoices: Vec<DocumentRow>,
    pub(crate) credit_notes: Vec<DocumentRow>,
    pub(crate) cancellations: Vec<Cancellation>,
    /// Every staff action on the order through the API, oldest first (the audit log's
    /// entries for it): the order's timeline of who did what.
    pub(crate) staff_actions: Vec<StaffAction>,
    /// Every request a storefront's customer made about the order through the API (a
    /// cancellation), oldest first, from the audit log.
    pub(crate) customer_requests: Vec<CustomerRequest>,
    /// The messages sent to the customer about the order and what became of them, in the
    /// order they were asked for.
    pub(crate) notifications: Vec<Notification>,
    /// The setups of its service lines, each with its history (none for an order of goods
    /// only).
    pub(crate) setups: Vec<setups::OrderSetup>,
}

/// An order's detail, if the read model knows the order.
pub(crate) async fn detail(
    pool: &PgPool,
    order_id: Uuid,
) -> Result<Option<OrderDetail>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    // One snapshot for the header and its parts.
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query("set transaction isolation level repeatable read, read only")
        .execute(&mut *tx)
        .await?;
    let header: Option<OrderHeader> = sqlx::query_as(
        "select order_id, store_id, channel, marketplace, external_order_id, revision, status, \
           status_sequence, status_changed_at, placed_at, placed_at_known, currency, total, \
           shipping, discount, tax, prices_include_tax, customer_name, customer_email, customer, \
           billing_address, shipping_address, lines, payment, exceptions, completed_at, \
           invoice_numbers, held, hold_reason, hold_changed_at \
         from orders where order_id = $1",
    )
    .bind(order_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(header) = header else {
        return Ok(None);
    };
    let status_history = sqlx::query_as(
        "select sequence, from_status as \"from\", to_status as \"to\", reason, changed_at \
         from status_history where order_id = $1 order by sequence",
    )
    .bind(order_id)
    .fetch_all(&mut *tx)
    .await?;
    let mut shipments: Vec<Shipment> = sqlx::query_as(
        "select shipment_id, warehouse_id, ship_to, shipping_method, items, requested_at, carrier, \
           tracking_number, tracking_url, dispatched_at, delivered_at, exception_status, \
           exception_raw_status, exception_description, exception_at \
         from shipments where order_id = $1 order by requested_at nulls last, shipment_id",
    )
    .bind(order_id)
    .fetch_all(&mut *tx)
    .await?;
    let ids: Vec<Uuid> = shipments.iter().map(|s| s.shipment_id).collect();
    let numbers: Vec<String> = shipments
        .iter()
        .filter_map(|s| s.tracking_number.clone())
        .collect();
    for scan in tracking::of(&mut tx, &ids, &numbers).await? {
        let shipment = shipments.iter_mut().find(|s| {
            scan.shipment_id == Some(s.shipment_id)
                || s.tracking_number.as_deref() == Some(scan.tracking_number.as_str())
        });
        if let Some(shipment) = shipment {
            shipment.tracking.push(scan);
        }
    }
    let documents = documents(&mut tx, order_id).await?;
    let cancellations = cancellations(&mut tx, order_id).await?;
    let notifications = notifications::of(&mut tx, order_id).await?;
    let setups = setups::of_order(&mut tx, order_id).await?;
    // Each entry is a staff member's or a customer's (the table's check says one of them).
    let audited: Vec<Audited> = sqlx::query_as(
        "select a.staff_email, a.customer_id, a.at, a.action, a.http_status, a.outcome, \
           a.command_id, c.status as command_status, coalesce(c.detail, a.detail) as detail \
         from audit_log a left join commands c using (command_id) \
         where a.order_id = $1 order by a.entry_id",
    )
    .bind(order_id)
    .fetch_all(&mut *tx)
    .await?;
    let mut staff_actions = Vec::new();
    let mut customer_requests = Vec::new();
    for Audited {
        staff_email,
        customer_id,
        request,
    } in audited
    {
        match (staff_email, customer_id) {
            (Some(staff_email), _) => staff_actions.push(StaffAction {
                staff_email,
                request,
            }),
            (None, Some(customer_id)) => customer_requests.push(CustomerRequest {
                customer_id,
                request,
            }),
            (None, None) => {}
        }
    }
    tx.commit().await?;
    let (invoices, credit_notes) = documents.into_iter().partition(|d| d.kind == "invoice");
    let facts: Vec<saga::ShipmentFacts<'_>> = shipments
        .iter()
        .map(|s| saga::ShipmentFacts {
            warehouse_id: s.warehouse_id.as_deref(),
            requested_at: s.requested_at,
            dispatched_at: s.dispatched_at,
            delivered_at: s.delivered_at,
            exception: s.exception_status.as_deref().zip(s.exception_at),
        })
        .collect();
    let mut saga = saga::position(
        header.status.as_deref(),
        header.status_changed_at,
        header.placed_at,
        &facts,
    );
    let open: Vec<saga::OpenSetup<'_>> = setups
        .iter()
        .filter(|s| !matches!(s.setup.status.as_str(), "completed" | "cancelled"))
        .map(|s| saga::OpenSetup {
            sku: &s.setup.sku,
            stage: &s.setup.stage,
            status: &s.setup.status,
        })
        .collect();
    saga = saga::with_setups(saga, header.status.as_deref(), &open);
    if header.held {
        let since = header.hold_changed_at.unwrap_or(saga.since);
        saga = saga::held(saga, since, header.hold_reason.as_deref());
    }
    Ok(Some(OrderDetail {
        header,
        saga,
        status_history,
        shipments,
        invoices,
        credit_notes,
        cancellations,
        staff_actions,
        customer_requests,
        notifications,
        setups,
    }))
}
