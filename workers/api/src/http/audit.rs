//! `GET /api/v1/admin/audit-log`: every staff action, newest first (needs `audit.view`).
//!
//! Parameters: `order_id`, `staff` (an e-mail), `limit` (1 to 200, default 50) and
//! `before` (the `next_before` of the previous page). A caller limited to some stores sees
//! the entries of those stores only.

use std::sync::Arc;

use axum::{
    extract::{RawQuery, State},
    http::StatusCode,
    response::Response,
};
use tracing::error;

use super::auth::Caller;
use super::{Api, Problem, json};
use crate::domain::access::Permission;
use crate::store::commands::{self as store, AuditQuery};

pub(crate) async fn list(
    State(api): State<Arc<Api>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    let caller = caller.require(Permission::AuditView)?;
    let mut q = AuditQuery {
        limit: 50,
        ..AuditQuery::default()
    };
    for (name, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "order_id" => {
                q.order_id = Some(value.parse().map_err(|_| {
                    Problem::bad_parameter("order_id", format!("`{value}` is not a UUID"))
                })?);
            }
            "staff" => q.staff_email = Some(value.trim().to_lowercase()),
            "before" => {
                q.before = Some(value.parse().ok().filter(|n: &i64| *n > 0).ok_or_else(|| {
                    Problem::bad_parameter("before", format!("`{value}` is not an entry number"))
                })?);
            }
            "limit" => {
                q.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=200).contains(n))
                    .ok_or_else(|| {
                        Problem::bad_parameter(
                            "limit",
                            format!("`{value}` is not a whole number from 1 to 200"),
                        )
                    })?;
            }
            other => {
                return Err(Problem::bad_parameter(
                    other,
                    "unknown parameter (order_id, staff, before, limit)",
                ));
            }
        }
    }
    let stores = caller.scope().narrow(&[]);
    let mut conn = api.pool.acquire().await.map_err(internal)?;
    let entries = store::audit_log(&mut conn, stores.as_deref(), &q)
        .await
        .map_err(internal)?;
    let next = (entries.len() as i64 == q.limit)
        .then(|| entries.last().map(|e| e.entry_id))
        .flatten();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "entries": entries, "next_before": next }),
    ))
}

fn internal(e: sqlx::Error) -> Problem {
    error!(error = %e, "audit log read failed: database");
    Problem::unavailable()
}
