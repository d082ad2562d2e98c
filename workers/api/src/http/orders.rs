//! `GET /api/v1/admin/orders` (the list) and `GET /api/v1/admin/orders/{id}` (the detail).
//!
//! Both need `orders.view`, and both show only orders of stores the caller sees: an order
//! of another store is `404`, exactly like an order that does not exist, so a token never
//! learns that an order exists outside its scope.

use std::sync::Arc;

use axum::{
    extract::{Path, RawQuery, State},
    http::{HeaderValue, StatusCode, header},
};
use schemars::JsonSchema;
use serde::Serialize;
use tracing::error;
use uuid::Uuid;

use super::auth::Caller;
use super::endpoint::Reply;
use super::{Api, Problem};
use crate::domain::access::Permission;
use crate::domain::filter;
use crate::store::read::{self, OrderDetail, OrderSummary};

/// A page of the order list.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct OrderPage {
    /// Newest first (`placed_at` descending, then order id).
    orders: Vec<OrderSummary>,
    /// The `cursor` of the next page; `null` on the last.
    next_cursor: Option<String>,
    /// Every matching order (not just this page), when `count=true` asked for it, counted
    /// up to 10,000 (see `total_exact`).
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<i64>,
    /// Whether `total` is every match (`false`: more than 10,000 match).
    #[serde(skip_serializing_if = "Option::is_none")]
    total_exact: Option<bool>,
}

/// The order list: filters, keyset page, optional total.
pub(crate) async fn list(
    State(api): State<Arc<Api>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Reply<OrderPage>, Problem> {
    let caller = caller.require(Permission::OrdersView)?;
    let query =
        filter::parse(&pairs(raw)).map_err(|e| Problem::bad_parameter(e.field, e.reason))?;
    let stores = caller.scope().narrow(&query.stores);
    let (orders, next) = read::list(&api.pool, stores.as_deref(), &query)
        .await
        .map_err(internal)?;
    let total = if query.count {
        Some(
            read::count(&api.pool, stores.as_deref(), &query)
                .await
                .map_err(internal)?,
        )
    } else {
        None
    };
    Ok(Reply::new(OrderPage {
        orders,
        next_cursor: next.map(|c| c.encode()),
        total: total.map(|t| t.value()),
        total_exact: total.map(|t| t.is_exact()),
    }))
}

/// One order, with its history, shipments and documents; `ETag` is its status sequence.
pub(crate) async fn detail(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Reply<OrderDetail>, Problem> {
    let caller = caller.require(Permission::OrdersView)?;
    let order_id: Uuid = id
        .parse()
        .map_err(|_| Problem::bad_parameter("id", format!("`{id}` is not an order id (a UUID)")))?;
    let not_found = || {
        Problem::new(
            StatusCode::NOT_FOUND,
            "order-not-found",
            "No such order",
            format!("no order {order_id} that this token may see"),
        )
    };
    let detail = read::detail(&api.pool, order_id)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    if !caller.scope().sees(&detail.header.store_id) {
        return Err(not_found());
    }
    let etag = HeaderValue::from_str(&format!("\"{}\"", detail.header.status_sequence))
        .map_err(|_| Problem::unavailable())?;
    Ok(Reply::new(detail).with_header(header::ETAG, etag))
}

/// A query string's `(name, value)` pairs, decoded.
pub(crate) fn pairs(raw: Option<String>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn internal(e: sqlx::Error) -> Problem {
    error!(error = %e, "order read failed: database");
    Problem::unavailable()
}
