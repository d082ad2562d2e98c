//! `GET /api/v1/admin/order-exceptions` (the open order item exceptions, oldest first: the
//! operators' work queue) and `GET /api/v1/admin/order-exceptions/{id}`. Both need
//! `orders.view` and show only the caller's stores (another store's exception is 404).
//! Resolving one is an action (`POST …/{id}/resolve`, see [`super::actions`]).

use std::sync::Arc;

use axum::{
    extract::{Path, RawQuery, State},
    http::StatusCode,
};
use chrono::Utc;
use schemars::JsonSchema;
use serde::Serialize;
use tracing::error;
use uuid::Uuid;

use super::auth::Caller;
use super::endpoint::Reply;
use super::orders::pairs;
use super::{Api, Problem};
use crate::domain::access::Permission;
use crate::domain::cursor::next_page;
use crate::domain::exceptions;
use crate::store::exceptions::{self as store, OpenException};

/// A page of the open order item exceptions.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ExceptionPage {
    /// Oldest first.
    exceptions: Vec<ExceptionView>,
    /// The `cursor` of the next page; `null` on the last.
    next_cursor: Option<String>,
}

/// An open order item exception, with links to its order and to resolve it.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "OrderException")]
pub(crate) struct ExceptionView {
    #[serde(flatten)]
    exception: OpenException,
    links: ExceptionLinks,
}

/// Where an exception's order is, and where to resolve it.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ExceptionLinks {
    /// Its order (`/api/v1/admin/orders/{id}`).
    order: String,
    /// Where to resolve it (`POST`).
    resolve: String,
}

pub(crate) async fn list(
    State(api): State<Arc<Api>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Reply<ExceptionPage>, Problem> {
    let caller = caller.require(Permission::OrdersView)?;
    let query = exceptions::parse(&pairs(raw), Utc::now())
        .map_err(|e| Problem::bad_parameter(e.field, e.reason))?;
    let stores = caller.scope().narrow(&query.stores);
    let rows = store::list(&api.pool, stores.as_deref(), &query)
        .await
        .map_err(internal)?;
    let next = next_page(&rows, query.limit, |r| (r.held_since, r.exception_id));
    Ok(Reply::new(ExceptionPage {
        exceptions: rows.into_iter().map(with_links).collect(),
        next_cursor: next,
    }))
}

pub(crate) async fn detail(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Reply<ExceptionView>, Problem> {
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
    Ok(Reply::new(with_links(found)))
}

fn with_links(exception: OpenException) -> ExceptionView {
    let links = ExceptionLinks {
        order: format!("/api/v1/admin/orders/{}", exception.order_id),
        resolve: format!(
            "/api/v1/admin/order-exceptions/{}/resolve",
            exception.exception_id
        ),
    };
    ExceptionView { exception, links }
}

fn internal(e: sqlx::Error) -> Problem {
    error!(error = %e, "order exceptions read failed: database");
    Problem::unavailable()
}
