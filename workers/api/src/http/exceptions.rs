//! `GET /api/v1/admin/order-exceptions` (the open order item exceptions, oldest first: the
//! operators' work queue) and `GET /api/v1/admin/order-exceptions/{id}`. Both need
//! `orders.view` and show only the caller's stores (another store's exception is 404).
//! Resolving one is an action (`POST …/{id}/resolve`, see [`super::actions`]).

use std::sync::Arc;

use axum::{
    extract::{Path, RawQuery, State},
    http::StatusCode,
    response::Response,
};
use chrono::Utc;
use serde_json::json;
use tracing::error;
use uuid::Uuid;

use super::auth::Caller;
use super::{Api, Problem, json};
use crate::domain::access::Permission;
use crate::domain::cursor::Cursor;
use crate::domain::exceptions;
use crate::store::exceptions::{self as store, OpenException};

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
    let query = exceptions::parse(&pairs, Utc::now())
        .map_err(|e| Problem::bad_parameter(e.field, e.reason))?;
    let stores = caller.scope().narrow(&query.stores);
    let rows = store::list(&api.pool, stores.as_deref(), &query)
        .await
        .map_err(internal)?;
    let next = (rows.len() == usize::from(query.limit))
        .then(|| rows.last())
        .flatten()
        .map(|r| Cursor::after(r.held_since, r.exception_id).encode());
    let rows: Vec<_> = rows.iter().map(with_links).collect();
    Ok(json(
        StatusCode::OK,
        &json!({ "exceptions": rows, "next_cursor": next }),
    ))
}

pub(crate) async fn detail(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let caller = caller.require(Permission::OrdersView)?;
    let exception_id: Uuid = id.parse().map_err(|_| {
        Problem::bad_parameter(
            "id",
            format!("`{id}` is not an order item exception id (a UUID)"),
        )
    })?;
    let found = store::one(&api.pool, exception_id)
        .await
        .map_err(internal)?
        .filter(|e| caller.scope().sees(&e.store_id))
        .ok_or_else(|| {
            Problem::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "No such order item exception",
                format!("no open order item exception {exception_id} that this token may see"),
            )
        })?;
    Ok(json(StatusCode::OK, &with_links(&found)))
}

fn with_links(e: &OpenException) -> serde_json::Value {
    let mut value = serde_json::to_value(e).unwrap_or_default();
    value["links"] = json!({
        "order": format!("/api/v1/admin/orders/{}", e.order_id),
        "resolve": format!("/api/v1/admin/order-exceptions/{}/resolve", e.exception_id),
    });
    value
}

fn internal(e: sqlx::Error) -> Problem {
    error!(error = %e, "order exceptions read failed: database");
    Problem::unavailable()
}
