//! `GET /api/v1/admin/orders` (the list) and `GET /api/v1/admin/orders/{id}` (the detail).
//!
//! Both need `orders.view`, and both show only orders of stores the caller sees: an order
//! of another store is `404`, exactly like an order that does not exist, so a token never
//! learns that an order exists outside its scope.

use std::sync::Arc;

use axum::{
    extract::{Path, RawQuery, State},
    http::{HeaderValue, StatusCode, header},
    response::Response,
};
use serde_json::json;
use tracing::error;
use uuid::Uuid;

use super::auth::Caller;
use super::{Api, Problem, json};
use crate::domain::access::Permission;
use crate::domain::filter;
use crate::store::read;

/// The order list: filters, keyset page, optional total.
pub(crate) async fn list(
    State(api): State<Arc<Api>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    let caller = caller.require(Permission::OrdersView)?;
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let query = filter::parse(&pairs).map_err(|e| Problem::bad_parameter(e.field, e.reason))?;
    let stores = caller.scope().narrow(&query.stores);
    let (orders, next) = read::list(&api.pool, stores.as_deref(), &query)
        .await
        .map_err(internal)?;
    let mut body = json!({
        "orders": orders,
        "next_cursor": next.map(|c| c.encode()),
    });
    if query.count {
        let total = read::count(&api.pool, stores.as_deref(), &query)
            .await
            .map_err(internal)?;
        body["total"] = total.value().into();
        body["total_exact"] = total.is_exact().into();
    }
    Ok(json_response(StatusCode::OK, &body, None))
}

/// One order, with its history, shipments and documents; `ETag` is its status sequence.
pub(crate) async fn detail(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
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
    let etag = format!("\"{}\"", detail.header.status_sequence);
    let body = serde_json::to_value(&detail).map_err(|e| {
        error!(error = %e, "order detail not serialisable");
        Problem::unavailable()
    })?;
    Ok(json_response(StatusCode::OK, &body, Some(&etag)))
}

fn json_response(status: StatusCode, body: &serde_json::Value, etag: Option<&str>) -> Response {
    let mut response = json(status, body);
    if let Some(value) = etag.and_then(|e| HeaderValue::from_str(e).ok()) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

fn internal(e: sqlx::Error) -> Problem {
    error!(error = %e, "order read failed: database");
    Problem::unavailable()
}
