//! All of notifications' SQL. Functions take a connection (the handler's transaction, the
//! dispatcher's, or a pool connection for operators' listings); table names are unqualified
//! because the worker's `search_path` is its own schema.

use chrono::{DateTime, Utc};
use orderly_contracts::messages::{
    CustomerContact, StoreNotificationSettingsUpdated, WebhookEndpointRegistered,
};
use serde::Serialize;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::domain::Watermark;

/// A stored value that does not parse any more.
fn corrupt(what: &str, detail: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(format!("notifications: stored {what} is invalid: {detail}").into())
}

fn i64_of(what: &str, v: u64) -> Result<i64, sqlx::Error> {
    i64::try_from(v).map_err(|e| corrupt(what, e))
}

// --- store settings --------------------------------------------------------------------------

/// Keeps `settings` if its revision is newer than the stored one. Returns whether it was.
pub(crate) async fn upsert_settings(
    conn: &mut PgConnection,
    settings: &StoreNotificationSettingsUpdated,
) -> Result<bool, sqlx::Error> {
    let json = serde_json::to_value(settings).map_err(|e| corrupt("settings", e))?;
    let row = sqlx::query(
        "insert into store_settings (store_id, revision, settings) values ($1, $2, $3)
         on conflict (store_id) do update
           set revision = excluded.revision, settings = excluded.settings, updated_at = now()
           where store_settings.revision < excluded.revision
         returning store_id",
    )
    .bind(settings.store_id.as_str())
    .bind(i64_of("revision", settings.revision)?)
    .bind(json)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

/// The store's settings, if it sent any.
pub(crate) async fn load_settings(
    conn: &mut PgConnection,
    store_id: &str,
) -> Result<Option<StoreNotificationSettingsUpdated>, sqlx::Error> {
    let row: Option<(serde_json::Value,)> =
        sqlx::query_as("select settings from store_settings where store_id = $1")
            .bind(store_id)
            .fetch_optional(conn)
            .await?;
    row.map(|(v,)| serde_json::from_value(v).map_err(|e| corrupt("settings", e)))
        .transpose()
}

// --- orders ----------------------------------------------------------------------------------

/// What the worker knows about an order.
#[derive(Debug, Clone)]
pub(crate) struct OrderRow {
    /// The store.
    pub store_id: String,
    /// The producer's order number.
    pub external_order_id: String,
    /// How to reach the customer.
    pub customer: CustomerContact,
    /// What was already notified.
    pub mark: Watermark,
}

/// The order, if any status change of it was seen.
pub(crate) async fn load_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Option<OrderRow>, sqlx::Error> {
    let row = sqlx::query(
        "select store_id, external_order_id, customer, notified_sequence, notified_rank
         from orders where order_id = $1",
    )
    .bind(order_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(order_row).transpose()
}

/// Records the contact of a status change (the newest sequence's contact wins) and returns
/// the order as it is now, with whether it was new (its contact not known before), the
/// store's settings and its endpoints subscribed to `event_type` — all in one round trip.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn upsert_order(
    conn: &mut PgConnection,
    order_id: Uuid,
    store_id: &str,
    external_order_id: &str,
    customer: &CustomerContact,
    sequence: i64,
    event_type: &str,
) -> Result<(OrderRow, bool, StoreContext), sqlx::Error> {
    let json = serde_json::to_value(customer).map_err(|e| corrupt("customer", e))?;
    let r = sqlx::query(
        "with o as (
           insert into orders (order_id, store_id, external_order_id, customer, status_sequence)
           values ($1, $2, $3, $4, $5)
           on conflict (order_id) do update
             set customer = case when excluded.status_sequence > orders.status_sequence
                                 then excluded.customer else orders.customer end,
                 status_sequence = greatest(orders.status_sequence, excluded.status_sequence),
                 updated_at = now()
           returning (xmax = 0) as inserted, store_id, external_order_id, customer,
                     notified_sequence, notified_rank
         )
         select o.*,
                (select settings from store_settings where store_id = $2) as settings,
                array(select endpoint_id from webhook_endpoints
                      where store_id = $2 and $6 = any(event_types) order by endpoint_id)
                  as endpoints
         from o",
    )
    .bind(order_id)
    .bind(store_id)
    .bind(external_order_id)
    .bind(json)
    .bind(sequence)
    .bind(event_type)
    .fetch_one(conn)
    .await?;
    Ok((order_row(&r)?, r.try_get("inserted")?, context_of(&r)?))
}

/// A store's settings (if it sent any) and its endpoints subscribed to the event's type.
pub(crate) type StoreContext = (Option<StoreNotificationSettingsUpdated>, Vec<Uuid>);

fn context_of(r: &sqlx::postgres::PgRow) -> Result<StoreContext, sqlx::Error> {
    let settings: Option<serde_json::Value> = r.try_get("settings")?;
    let settings = settings
        .map(|v| serde_json::from_value(v).map_err(|e| corrupt("settings", e)))
        .transpose()?;
    Ok((settings, r.try_get("endpoints")?))
}

/// The order (if its contact is known), the store's settings and its endpoints subscribed
/// to `event_type` (enabled or not: deliveries to a paused or disabled endpoint wait for
/// it), in one round trip.
pub(crate) async fn order_context(
    conn: &mut PgConnection,
    order_id: Uuid,
    store_id: &str,
    event_type: &str,
) -> Result<(Option<OrderRow>, StoreContext), sqlx::Error> {
    let r = sqlx::query(
        "select o.store_id, o.external_order_id, o.customer, o.notified_sequence,
                o.notified_rank, o.order_id is not null as known,
                (select settings from store_settings where store_id = $2) as settings,
                array(select endpoint_id from webhook_endpoints
                      where store_id = $2 and $3 = any(event_types) order by endpoint_id)
                  as endpoints
         from (select 1) one left join orders o on o.order_id = $1",
    )
    .bind(order_id)
    .bind(store_id)
    .bind(event_type)
    .fetch_one(conn)
    .await?;
    let known: bool = r.try_get("known")?;
    let order = if known { Some(order_row(&r)?) } else { None };
    Ok((order, context_of(&r)?))
}

fn order_row(r: &sqlx::postgres::PgRow) -> Result<OrderRow, sqlx::Error> {
    Ok(OrderRow {
        store_id: r.try_get("store_id")?,
        external_order_id: r.try_get("external_order_id")?,
        customer: serde_json::from_value(r.try_get("customer")?)
            .map_err(|e| corrupt("customer", e))?,
        mark: Watermark {
            sequence: r.try_get("notified_sequence")?,
            rank: r.try_get("notified_rank")?,
        },
    })
}

/// How far a shipment's notifications went (0: none).
pub(crate) async fn shipment_rank(
    conn: &mut PgConnection,
    shipment_id: Uuid,
) -> Result<i32, sqlx::Error> {
    let row: Option<(i32,)> =
        sqlx::query_as("select notified_rank from shipments where shipment_id = $1")
            .bind(shipment_id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map_or(0, |(r,)| r))
}

/// Raises a shipment's notified rank.
pub(crate) async fn set_shipment_rank(
    conn: &mut PgConnection,
    shipment_id: Uuid,
    order_id: Uuid,
    rank: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into shipments (shipment_id, order_id, notified_rank) values ($1, $2, $3)
         on conflict (shipment_id) do update
           set notified_rank = greatest(shipments.notified_rank, excluded.notified_rank)",
    )
    .bind(shipment_id)
    .bind(order_id)
    .bind(rank)
    .execute(conn)
    .await?;
    Ok(())
}

/// Keeps an event until the order's contact is known.
pub(crate) async fn park(
    conn: &mut PgConnection,
    message_id: Uuid,
    order_id: Uuid,
    envelope: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into parked_events (message_id, order_id, envelope) values ($1, $2, $3)
         on conflict (message_id) do nothing",
    )
    .bind(message_id)
    .bind(order_id)
    .bind(envelope)
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes the order's parked events, oldest first.
pub(crate) async fn take_parked(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Vec<serde_json::Value>, sqlx::Error> {
    let rows: Vec<(serde_json::Value,)> = sqlx::query_as(
        "with taken as (delete from parked_events where order_id = $1 returning position, envelope)
         select envelope from taken order by position",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(v,)| v).collect())
}

// --- requests --------------------------------------------------------------------------------

/// A request about to be made.
#[derive(Debug, Clone)]
pub(crate) struct NewRequest<'a> {
    /// Its id.
    pub request_id: Uuid,
    /// Unique key (see [`crate::domain::dedup_key`]).
    pub dedup_key: &'a str,
    /// The store.
    pub store_id: &'a str,
    /// The order, if any.
    pub order_id: Option<Uuid>,
    /// The event.
    pub event: &'a str,
    /// `customer` or `staff`.
    pub audience: &'a str,
    /// Template key.
    pub template: &'a str,
    /// Channel.
    pub channel: &'a str,
    /// Recipient address.
    pub recipient: &'a str,
    /// Language.
    pub locale: &'a str,
    /// Attempt number.
    pub attempt: i32,
    /// The first request of a retry chain.
    pub first_request_id: Option<Uuid>,
    /// The message that caused it.
    pub cause_message_id: Uuid,
    /// The `notification.requested` payload.
    pub payload: &'a serde_json::Value,
    /// The order's watermark to raise (greatest wins) when the request is new.
    pub mark: Option<Watermark>,
}

/// Records a request unless its dedup key exists, and raises the order's watermark if it
/// was new (one round trip). Returns whether it was new.
pub(crate) async fn insert_request(
    conn: &mut PgConnection,
    r: &NewRequest<'_>,
) -> Result<bool, sqlx::Error> {
    let row = sqlx::query(
        "with ins as (
           insert into requests (request_id, dedup_key, store_id, order_id, event, audience,
                                 template, channel, recipient, locale, attempt,
                                 first_request_id, cause_message_id, payload)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
           on conflict (dedup_key) do nothing
           returning request_id
         ), marked as (
           update orders set notified_sequence = greatest(notified_sequence, $15),
                             notified_rank = greatest(notified_rank, $16), updated_at = now()
           where order_id = $4 and $15 is not null and exists (select 1 from ins)
         )
         select request_id from ins",
    )
    .bind(r.request_id)
    .bind(r.dedup_key)
    .bind(r.store_id)
    .bind(r.order_id)
    .bind(r.event)
    .bind(r.audience)
    .bind(r.template)
    .bind(r.channel)
    .bind(r.recipient)
    .bind(r.locale)
    .bind(r.attempt)
    .bind(r.first_request_id)
    .bind(r.cause_message_id)
    .bind(r.payload)
    .bind(r.mark.map(|m| m.sequence))
    .bind(r.mark.map(|m| m.rank))
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

/// A notification not requested, and why.
#[derive(Debug, Clone)]
pub(crate) struct NewSuppression<'a> {
    /// The store.
    pub store_id: &'a str,
    /// The order.
    pub order_id: Option<Uuid>,
    /// The event.
    pub event: &'a str,
    /// The event's reference (sequence, shipment, document).
    pub reference: &'a str,
    /// The audience, when the reason is about one.
    pub audience: Option<&'a str>,
    /// Why.
    pub reason: &'a str,
    /// The message that would have caused it.
    pub cause_message_id: Uuid,
}

/// Records a suppression (once per cause, event, reference and audience).
pub(crate) async fn record_suppression(
    conn: &mut PgConnection,
    s: &NewSuppression<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into suppressions (store_id, order_id, event, reference, audience, reason, cause_message_id)
         values ($1, $2, $3, $4, $5, $6, $7)
         on conflict do nothing",
    )
    .bind(s.store_id)
    .bind(s.order_id)
    .bind(s.event)
    .bind(s.reference)
    .bind(s.audience)
    .bind(s.reason)
    .bind(s.cause_message_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A request as stored.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRow {
    /// Its id.
    pub request_id: Uuid,
    /// Unique key.
    pub dedup_key: String,
    /// The store.
    pub store_id: String,
    /// The order.
    pub order_id: Option<Uuid>,
    /// The event.
    pub event: String,
    /// `customer` or `staff`.
    pub audience: String,
    /// Template key.
    pub template: String,
    /// Channel.
    pub channel: String,
    /// Recipient.
    pub recipient: String,
    /// Language.
    pub locale: String,
    /// Attempt number.
    pub attempt: i32,
    /// First request of the retry chain.
    pub first_request_id: Option<Uuid>,
    /// `requested`, `sent`, `retried` or `failed`.
    pub status: String,
    /// When requested.
    pub requested_at: DateTime<Utc>,
    /// When the receipt came.
    pub receipt_at: Option<DateTime<Utc>>,
    /// Provider (sent).
    pub provider: Option<String>,
    /// Error (failed).
    pub error: Option<String>,
    /// Whether the failure was permanent.
    pub permanent: Option<bool>,
    /// The payload sent.
    pub payload: serde_json::Value,
}

/// `select <every request column> from requests <tail>`, as one static string.
macro_rules! select_requests {
    ($tail:literal) => {
        concat!(
            "select request_id, dedup_key, store_id, order_id, event, audience, template,
                    channel, recipient, locale, attempt, first_request_id, status, requested_at,
                    receipt_at, provider, error, permanent, payload
             from requests ",
            $tail
        )
    };
}

fn request_row(r: &sqlx::postgres::PgRow) -> Result<RequestRow, sqlx::Error> {
    Ok(RequestRow {
        request_id: r.try_get("request_id")?,
        dedup_key: r.try_get("dedup_key")?,
        store_id: r.try_get("store_id")?,
        order_id: r.try_get("order_id")?,
        event: r.try_get("event")?,
        audience: r.try_get("audience")?,
        template: r.try_get("template")?,
        channel: r.try_get("channel")?,
        recipient: r.try_get("recipient")?,
        locale: r.try_get("locale")?,
        attempt: r.try_get("attempt")?,
        first_request_id: r.try_get("first_request_id")?,
        status: r.try_get("status")?,
        requested_at: r.try_get("requested_at")?,
        receipt_at: r.try_get("receipt_at")?,
        provider: r.try_get("provider")?,
        error: r.try_get("error")?,
        permanent: r.try_get("permanent")?,
        payload: r.try_get("payload")?,
    })
}

/// The newest customer notification of an order (of `event`, when given), the one an
/// operator's resend repeats.
pub(crate) async fn newest_customer_request(
    conn: &mut PgConnection,
    order_id: Uuid,
    event: Option<&str>,
) -> Result<Option<RequestRow>, sqlx::Error> {
    let row = sqlx::query(select_requests!(
        "where order_id = $1 and audience = 'customer' and ($2::text is null or event = $2)
         order by position desc limit 1"
    ))
    .bind(order_id)
    .bind(event)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(request_row).transpose()
}

/// One request, locked for the receipt's update.
pub(crate) async fn find_request(
    conn: &mut PgConnection,
    request_id: Uuid,
) -> Result<Option<RequestRow>, sqlx::Error> {
    let row = sqlx::query(select_requests!("where request_id = $1 for update"))
        .bind(request_id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(request_row).transpose()
}

/// Records a `notification.sent` receipt on a waiting request. Returns whether it applied.
pub(crate) async fn mark_sent(
    conn: &mut PgConnection,
    request_id: Uuid,
    at: DateTime<Utc>,
    provider: Option<&str>,
    provider_message_id: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update requests set status = 'sent', receipt_at = $2, provider = $3, provider_message_id = $4
         where request_id = $1 and status = 'requested'",
    )
    .bind(request_id)
    .bind(at)
    .bind(provider)
    .bind(provider_message_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a `notification.failed` receipt on a waiting request: `retried` when another
/// attempt follows, `failed` when not. Returns whether it applied.
pub(crate) async fn mark_failed(
    conn: &mut PgConnection,
    request_id: Uuid,
    status: &str,
    at: DateTime<Utc>,
    error: &str,
    permanent: bool,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update requests set status = $2, receipt_at = $3, error = $4, permanent = $5
         where request_id = $1 and status = 'requested'",
    )
    .bind(request_id)
    .bind(status)
    .bind(at)
    .bind(error)
    .bind(permanent)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Keeps a receipt for a request this worker never made.
pub(crate) async fn record_unknown_receipt(
    conn: &mut PgConnection,
    message_id: Uuid,
    request_id: Uuid,
    kind: &str,
    order_id: Option<Uuid>,
    payload: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into unknown_receipts (message_id, request_id, kind, order_id, payload)
         values ($1, $2, $3, $4, $5) on conflict do nothing",
    )
    .bind(message_id)
    .bind(request_id)
    .bind(kind)
    .bind(order_id)
    .bind(payload)
    .execute(conn)
    .await?;
    Ok(())
}

// --- listings for operators ------------------------------------------------------------------

/// The requests of an order, in the order they were made.
pub(crate) async fn requests_for_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Vec<RequestRow>, sqlx::Error> {
    let rows = sqlx::query(select_requests!("where order_id = $1 order by position"))
        .bind(order_id)
        .fetch_all(conn)
        .await?;
    rows.iter().map(request_row).collect()
}

/// Notifications that failed for good (permanent failure or out of attempts), newest first.
pub(crate) async fn failed_requests(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<RequestRow>, sqlx::Error> {
    let rows = sqlx::query(select_requests!(
        "where status = 'failed' order by requested_at desc, position desc limit $1"
    ))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(request_row).collect()
}

/// A suppressed notification.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SuppressionRow {
    /// The store.
    pub store_id: String,
    /// The order.
    pub order_id: Option<Uuid>,
    /// The event.
    pub event: String,
    /// Its reference.
    pub reference: String,
    /// The audience, if the reason concerns one.
    pub audience: Option<String>,
    /// Why.
    pub reason: String,
    /// The message.
    pub cause_message_id: Uuid,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// The suppressions of an order, oldest first.
pub(crate) async fn suppressions_for_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Vec<SuppressionRow>, sqlx::Error> {
    sqlx::query_as(
        "select store_id, order_id, event, reference, audience, reason, cause_message_id, created_at
         from suppressions where order_id = $1 order by id",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await
}

/// A receipt for an unknown request.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct UnknownReceipt {
    /// The receipt message.
    pub message_id: Uuid,
    /// The request id it named.
    pub request_id: Uuid,
    /// `sent` or `failed`.
    pub kind: String,
    /// The order it named.
    pub order_id: Option<Uuid>,
    /// The whole payload.
    pub payload: serde_json::Value,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
}

/// Receipts for unknown requests, newest first.
pub(crate) async fn unknown_receipts(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<UnknownReceipt>, sqlx::Error> {
    sqlx::query_as(
        "select message_id, request_id, kind, order_id, payload, received_at
         from unknown_receipts order by received_at desc limit $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

// --- webhook endpoints -----------------------------------------------------------------------

/// Keeps a registration if its revision is newer. A newer registration clears a disabled
/// state and the failure count. Returns whether it applied.
pub(crate) async fn upsert_endpoint(
    conn: &mut PgConnection,
    e: &WebhookEndpointRegistered,
) -> Result<bool, sqlx::Error> {
    let row = sqlx::query(
        "insert into webhook_endpoints (endpoint_id, store_id, revision, url, event_types, secret,
                                        enabled, allow_private)
         values ($1, $2, $3, $4, $5, $6, $7, $8)
         on conflict (endpoint_id) do update
           set store_id = excluded.store_id, revision = excluded.revision, url = excluded.url,
               event_types = excluded.event_types, secret = excluded.secret,
               enabled = excluded.enabled, allow_private = excluded.allow_private,
               consecutive_failures = 0, disabled_at = null, disabled_reason = null,
               updated_at = now()
           where webhook_endpoints.revision < excluded.revision
         returning endpoint_id",
    )
    .bind(e.endpoint_id)
    .bind(e.store_id.as_str())
    .bind(i64_of("revision", e.revision)?)
    .bind(&e.url)
    .bind(&e.event_types)
    .bind(&e.secret)
    .bind(e.enabled)
    .bind(e.allow_private)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

/// Gives out the next delivery sequence of (endpoint, order). For a status change, only if
/// its sequence is newer than every status change queued for the chain: `None` means stale.
pub(crate) async fn next_chain_sequence(
    conn: &mut PgConnection,
    endpoint_id: Uuid,
    order_key: &str,
    status_sequence: Option<i64>,
) -> Result<Option<i64>, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as(
        "insert into webhook_chains (endpoint_id, order_key, last_sequence, last_status_sequence)
         values ($1, $2, 1, coalesce($3, 0))
         on conflict (endpoint_id, order_key) do update
           set last_sequence = webhook_chains.last_sequence + 1,
               last_status_sequence = greatest(webhook_chains.last_status_sequence, coalesce($3, 0))
           where $3 is null or $3 > webhook_chains.last_status_sequence
         returning last_sequence",
    )
    .bind(endpoint_id)
    .bind(order_key)
    .bind(status_sequence)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(s,)| s))
}

/// A delivery about to be queued.
#[derive(Debug, Clone)]
pub(crate) struct NewDelivery<'a> {
    /// Its id.
    pub delivery_id: Uuid,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The store.
    pub store_id: &'a str,
    /// The order (the chain).
    pub order_key: &'a str,
    /// Position in the chain.
    pub sequence: i64,
    /// The event's message id.
    pub event_id: Uuid,
    /// The event's type.
    pub event_type: &'a str,
    /// The exact body to POST.
    pub body: &'a str,
}

/// Queues a delivery (once per endpoint and event); returns whether it was new. The handler
/// wakes the dispatcher in its process after the commit
/// ([`orderly_runtime::HandlerContext::wake_after_commit`]): a `NOTIFY` here would make the
/// worker's commits take turns (decision 0006).
pub(crate) async fn insert_delivery(
    conn: &mut PgConnection,
    d: &NewDelivery<'_>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "insert into webhook_deliveries (delivery_id, endpoint_id, store_id, order_key, sequence,
                                         event_id, event_type, body)
         values ($1, $2, $3, $4, $5, $6, $7, $8)
         on conflict do nothing",
    )
    .bind(d.delivery_id)
    .bind(d.endpoint_id)
    .bind(d.store_id)
    .bind(d.order_key)
    .bind(d.sequence)
    .bind(d.event_id)
    .bind(d.event_type)
    .bind(d.body)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The LISTEN/NOTIFY channel that wakes the dispatcher when an operator replays a delivery
/// from another process (`orderly notifications deliveries replay`), which the in-process
/// wake cannot reach. Rare, and outside the worker's transactions.
pub(crate) const WAKE_CHANNEL: &str = "orderly_notifications_webhooks";

/// A webhook endpoint as stored (secret left out).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EndpointRow {
    /// Its id.
    pub endpoint_id: Uuid,
    /// The store.
    pub store_id: String,
    /// Registration revision.
    pub revision: i64,
    /// URL.
    pub url: String,
    /// Subscribed event types.
    pub event_types: Vec<String>,
    /// Enabled by the merchant.
    pub enabled: bool,
    /// May reach private addresses.
    pub allow_private: bool,
    /// Failed attempts in a row.
    pub consecutive_failures: i32,
    /// When it was disabled after failures.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Why.
    pub disabled_reason: Option<String>,
}

/// A store's endpoints.
pub(crate) async fn endpoints(
    conn: &mut PgConnection,
    store_id: &str,
) -> Result<Vec<EndpointRow>, sqlx::Error> {
    sqlx::query_as(
        "select endpoint_id, store_id, revision, url, event_types, enabled, allow_private,
                consecutive_failures, disabled_at, disabled_reason
         from webhook_endpoints where store_id = $1 order by endpoint_id",
    )
    .bind(store_id)
    .fetch_all(conn)
    .await
}

/// One delivery in the log.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DeliveryRow {
    /// Its id.
    pub delivery_id: Uuid,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The endpoint's URL.
    pub url: String,
    /// The order (chain).
    pub order_key: String,
    /// Position in the chain.
    pub sequence: i64,
    /// The event's message id.
    pub event_id: Uuid,
    /// The event's type.
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts so far (since the last replay).
    pub attempts: i32,
    /// Next attempt, while pending.
    pub next_attempt_at: DateTime<Utc>,
    /// The last error.
    pub last_error: Option<String>,
    /// When delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// How often an operator replayed it.
    pub replays: i32,
    /// When queued.
    pub created_at: DateTime<Utc>,
}

/// The store's deliveries, newest first.
pub(crate) async fn deliveries(
    conn: &mut PgConnection,
    store_id: &str,
    limit: i64,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(
        "select d.delivery_id, d.endpoint_id, e.url, d.order_key, d.sequence, d.event_id,
                d.event_type, d.status, d.attempts, d.next_attempt_at, d.last_error,
                d.delivered_at, d.replays, d.created_at
         from webhook_deliveries d join webhook_endpoints e using (endpoint_id)
         where d.store_id = $1
         order by d.created_at desc, d.order_key, d.sequence desc
         limit $2",
    )
    .bind(store_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Sends a delivery again: back to pending with a fresh attempt budget, due now. Returns
/// whether the delivery exists.
pub(crate) async fn replay_delivery(
    conn: &mut PgConnection,
    delivery_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update webhook_deliveries
         set status = 'pending', attempts = 0, next_attempt_at = now(), replays = replays + 1,
             delivered_at = null
         where delivery_id = $1",
    )
    .bind(delivery_id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 1 {
        sqlx::query("select pg_notify($1, '')")
            .bind(WAKE_CHANNEL)
            .execute(conn)
            .await?;
        return Ok(true);
    }
    Ok(false)
}

// --- the dispatcher's queries ----------------------------------------------------------------

/// A delivery claimed for an attempt.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Claimed {
    /// Its id.
    pub delivery_id: Uuid,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The attempt about to be made (1-based).
    pub attempts: i32,
    /// The event id.
    pub event_id: Uuid,
    /// The event type.
    pub event_type: String,
    /// Exact body.
    pub body: String,
    /// URL.
    pub url: String,
    /// Signing secret.
    pub secret: String,
    /// May reach private addresses.
    pub allow_private: bool,
}

/// Claims up to `limit` due deliveries that head their chain (no earlier pending delivery
/// of the same endpoint and order) on enabled endpoints: counts the attempt and pushes
/// `next_attempt_at` out by `lease_ms`, so another dispatcher does not take them meanwhile.
pub(crate) async fn claim_due(
    conn: &mut PgConnection,
    limit: i64,
    lease_ms: i64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    sqlx::query_as(
        "with due as (
           select d.delivery_id
           from webhook_deliveries d
           join webhook_endpoints e on e.endpoint_id = d.endpoint_id
           where d.status = 'pending' and d.next_attempt_at <= now()
             and e.enabled and e.disabled_at is null
             and not exists (
               select 1 from webhook_deliveries p
               where p.endpoint_id = d.endpoint_id and p.order_key = d.order_key
                 and p.status = 'pending' and p.sequence < d.sequence)
           order by d.next_attempt_at
           limit $1
           for update of d skip locked
         ), claimed as (
           update webhook_deliveries w
           set attempts = w.attempts + 1,
               next_attempt_at = now() + make_interval(secs => $2::double precision / 1000)
           from due where w.delivery_id = due.delivery_id
           returning w.delivery_id, w.endpoint_id, w.attempts, w.event_id, w.event_type, w.body
         )
         select c.delivery_id, c.endpoint_id, c.attempts, c.event_id, c.event_type, c.body,
                e.url, e.secret, e.allow_private
         from claimed c join webhook_endpoints e on e.endpoint_id = c.endpoint_id",
    )
    .bind(limit)
    .bind(lease_ms)
    .fetch_all(conn)
    .await
}

/// When the next delivery [`claim_due`] could claim is due, if any: a pending delivery of an
/// enabled endpoint that is first in its (endpoint, order) chain. A delivery waiting behind
/// an earlier one of its chain is not due whatever its own time says; counting it made the
/// dispatcher wake for it at once, claim nothing, and do so again without end (issue 13: an
/// idle worker kept database backends busy).
pub(crate) async fn next_due(
    conn: &mut PgConnection,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let (at,): (Option<DateTime<Utc>>,) = sqlx::query_as(
        "select min(d.next_attempt_at) from webhook_deliveries d
         join webhook_endpoints e on e.endpoint_id = d.endpoint_id
         where d.status = 'pending' and e.enabled and e.disabled_at is null
           and not exists (
             select 1 from webhook_deliveries p
             where p.endpoint_id = d.endpoint_id and p.order_key = d.order_key
               and p.status = 'pending' and p.sequence < d.sequence)",
    )
    .fetch_one(conn)
    .await?;
    Ok(at)
}

/// Logs one attempt.
pub(crate) async fn log_attempt(
    conn: &mut PgConnection,
    delivery_id: Uuid,
    attempt: i32,
    status_code: Option<i32>,
    error: Option<&str>,
    duration_ms: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into webhook_attempts (delivery_id, attempt, attempted_at, status_code, error, duration_ms)
         values ($1, $2, clock_timestamp(), $3, $4, $5)",
    )
    .bind(delivery_id)
    .bind(attempt)
    .bind(status_code)
    .bind(error)
    .bind(duration_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks deliveries delivered and resets their endpoints' failure counts.
pub(crate) async fn mark_delivered(
    conn: &mut PgConnection,
    delivery_ids: &[Uuid],
) -> Result<(), sqlx::Error> {
    if delivery_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "update webhook_deliveries set status = 'delivered', delivered_at = now(), last_error = null
         where delivery_id = any($1) and status = 'pending'",
    )
    .bind(delivery_ids)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Sets an endpoint's failure count to 0 (after a success).
pub(crate) async fn endpoint_succeeded(
    conn: &mut PgConnection,
    endpoint_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update webhook_endpoints set consecutive_failures = 0
         where endpoint_id = $1 and consecutive_failures <> 0",
    )
    .bind(endpoint_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a failed attempt: the delivery is retried at `retry_at`, or given up (`None`).
pub(crate) async fn mark_attempt_failed(
    conn: &mut PgConnection,
    delivery_id: Uuid,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update webhook_deliveries
         set last_error = $2,
             status = case when $3::timestamptz is null then 'failed' else 'pending' end,
             next_attempt_at = coalesce($3, next_attempt_at)
         where delivery_id = $1 and status = 'pending'",
    )
    .bind(delivery_id)
    .bind(error)
    .bind(retry_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// An endpoint after a failure was counted.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct FailedEndpoint {
    /// The store.
    pub store_id: String,
    /// Registration revision.
    pub revision: i64,
    /// URL.
    pub url: String,
    /// Failures in a row, this one included.
    pub consecutive_failures: i32,
    /// Whether it was already disabled.
    pub already_disabled: bool,
}

/// Counts a failed attempt against its endpoint.
pub(crate) async fn endpoint_failed(
    conn: &mut PgConnection,
    endpoint_id: Uuid,
) -> Result<Option<FailedEndpoint>, sqlx::Error> {
    sqlx::query_as(
        "update webhook_endpoints set consecutive_failures = consecutive_failures + 1
         where endpoint_id = $1
         returning store_id, revision, url, consecutive_failures, disabled_at is not null as already_disabled",
    )
    .bind(endpoint_id)
    .fetch_optional(conn)
    .await
}

/// Disables an endpoint after failures.
pub(crate) async fn disable_endpoint(
    conn: &mut PgConnection,
    endpoint_id: Uuid,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update webhook_endpoints set disabled_at = now(), disabled_reason = $2
         where endpoint_id = $1 and disabled_at is null",
    )
    .bind(endpoint_id)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, Utc};
    use orderly_contracts::messages::WebhookEndpointRegistered;
    use uuid::Uuid;

    use super::{NewDelivery, claim_due, insert_delivery, next_due, upsert_endpoint};

    /// A delivery waiting behind an earlier one of its chain is not "due": the dispatcher
    /// would wake for it, claim nothing and spin.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_delivery_behind_its_chain_is_not_due() -> anyhow::Result<()> {
        let world = orderly_runtime::testing::World::new().await?;
        let pool = world.pool(crate::NAME).await?;
        let mut conn = pool.acquire().await?;
        let mut endpoint: WebhookEndpointRegistered = serde_json::from_value(
            orderly_contracts::catalog::spec("webhook.endpoint_registered", 1)
                .map(|s| (s.example)()["payload"].clone())
                .unwrap_or_default(),
        )?;
        endpoint.endpoint_id = Uuid::now_v7();
        upsert_endpoint(&mut conn, &endpoint).await?;
        let delivery = |sequence: i64| NewDelivery {
            delivery_id: Uuid::now_v7(),
            endpoint_id: endpoint.endpoint_id,
            store_id: endpoint.store_id.as_str(),
            order_key: "order-1",
            sequence,
            event_id: Uuid::now_v7(),
            event_type: "order.status_changed",
            body: "{}",
        };
        let (first, second) = (delivery(1), delivery(2));
        insert_delivery(&mut conn, &first).await?;
        insert_delivery(&mut conn, &second).await?;
        // The first failed and waits an hour; the second is due by its own time.
        let later = Utc::now() + TimeDelta::hours(1);
        sqlx::query("update webhook_deliveries set next_attempt_at = $2 where delivery_id = $1")
            .bind(first.delivery_id)
            .bind(later)
            .execute(&mut *conn)
            .await?;
        assert!(
            claim_due(&mut conn, 10, 1_000).await?.is_empty(),
            "nothing claimable"
        );
        let due = next_due(&mut conn).await?.expect("a delivery is pending");
        assert!(
            due > Utc::now() + TimeDelta::minutes(59),
            "next due at {due}, not now: the second waits behind the first"
        );
        drop(conn);
        world.cleanup().await
    }
}
