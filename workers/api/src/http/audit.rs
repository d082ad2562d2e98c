//! `GET /api/v1/admin/audit-log`: every staff action, newest first (needs `audit.view`).
//!
//! Parameters (`domain::audit`): `order_id`, `staff` (an e-mail), `limit` (1 to 200, default
//! 50) and `before` (the `next_before` of the previous page). A caller limited to some
//! stores sees the entries of those stores only.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use schemars::JsonSchema;
use serde::Serialize;
use tracing::error;

use super::auth::Caller;
use super::endpoint::Reply;
use super::orders::pairs;
use super::{Api, Problem};
use crate::domain::access::Permission;
use crate::domain::audit;
use crate::store::commands::{self as store, AuditRow};

/// A page of the audit log.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct AuditPage {
    /// Newest first.
    entries: Vec<AuditRow>,
    /// The `before` of the next page; `null` on the last.
    next_before: Option<i64>,
}

pub(crate) async fn list(
    State(api): State<Arc<Api>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Reply<AuditPage>, Problem> {
    let caller = caller.require(Permission::AuditView)?;
    let q = audit::parse(&pairs(raw)).map_err(|e| Problem::bad_parameter(e.field, e.reason))?;
    let stores = caller.scope().narrow(&[]);
    let mut conn = api.pool.acquire().await.map_err(internal)?;
    let entries = store::audit_log(&mut conn, stores.as_deref(), &q)
        .await
        .map_err(internal)?;
    let next_before = (entries.len() as i64 == q.limit)
        .then(|| entries.last().map(|e| e.entry_id))
        .flatten();
    Ok(Reply::new(AuditPage {
        entries,
        next_before,
    }))
}

fn internal(e: sqlx::Error) -> Problem {
    error!(error = %e, "audit log read failed: database");
    Problem::unavailable()
}
