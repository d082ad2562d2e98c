//! `GET /api/v1/admin/stores/{store_id}/customers/{customer_id}/stats`: a customer's order
//! statistics in a store (`orders.view`; a store the caller does not see is 404, like a
//! customer with no orders).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use orderly_contracts::types::StoreId;
use tracing::error;

use super::auth::Caller;
use super::endpoint::Reply;
use super::{Api, Problem};
use crate::domain::access::Permission;
use crate::store::stats::{self, CustomerStats, Orders};

pub(crate) async fn stats(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path((store_id, customer_id)): Path<(String, String)>,
) -> Result<Reply<CustomerStats>, Problem> {
    let caller = caller.require(Permission::OrdersView)?;
    let store =
        StoreId::parse(&store_id).map_err(|e| Problem::bad_parameter("store_id", e.to_string()))?;
    if customer_id.trim().is_empty() || customer_id.chars().count() > 128 {
        return Err(Problem::bad_parameter(
            "customer_id",
            "a customer id is 1 to 128 characters",
        ));
    }
    let not_found = || {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "No such customer",
            format!("no orders of customer {customer_id} in a store this token may see"),
        )
    };
    if !caller.scope().sees(store.as_str()) {
        return Err(not_found());
    }
    let found = stats::customer(&api.pool, store.as_str(), &customer_id, Orders::All)
        .await
        .map_err(|e| {
            error!(error = %e, "customer stats failed: database");
            Problem::unavailable()
        })?
        .ok_or_else(not_found)?;
    Ok(Reply::new(found))
}
