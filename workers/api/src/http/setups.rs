//! `GET /api/v1/admin/setups` (the setups of service lines, most recently changed first: a
//! setup manager's work queue, with `overdue=true` for the late ones) and
//! `GET /api/v1/admin/setups/{id}` (one setup with its history). Both need `setups.view`
//! and show only the caller's stores (another store's setup is 404); and the setups'
//! analytics (`GET /api/v1/admin/analytics/setups`).

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
use super::orders::pairs;
use super::{Api, Problem};
use crate::domain::access::Permission;
use crate::domain::cursor::next_page;
use crate::domain::setups;
use crate::store::setups::{self as store, SetupChange, SetupFigures, SetupRow};

/// A page of setups.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct SetupPage {
    /// Most recently changed first.
    setups: Vec<SetupView>,
    /// The `cursor` of the next page; `null` on the last.
    next_cursor: Option<String>,
}

/// A setup of a service line, with a link to its order.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Setup")]
pub(crate) struct SetupView {
    #[serde(flatten)]
    setup: SetupRow,
    links: SetupLinks,
}

/// Where a setup's order is.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct SetupLinks {
    /// Its order (`/api/v1/admin/orders/{id}`).
    order: String,
    /// The setup itself.
    setup: String,
    /// Where staff move it along (`POST`).
    steps: String,
}

/// A setup with every change it went through.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "SetupDetail")]
pub(crate) struct SetupDetail {
    #[serde(flatten)]
    setup: SetupView,
    /// Every change, oldest first (the start is 1).
    history: Vec<SetupChange>,
    /// What the client was asked (the intake form, an approval, reminders) and when, or
    /// why they could not be, oldest first.
    client_invitations: Vec<store::Invitation>,
}

pub(crate) async fn list(
    State(api): State<Arc<Api>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Reply<SetupPage>, Problem> {
    let caller = caller.require(Permission::SetupsView)?;
    let query =
        setups::parse(&pairs(raw)).map_err(|e| Problem::bad_parameter(e.field, e.reason))?;
    let stores = caller.scope().narrow(&query.stores);
    let rows = store::list(&api.pool, stores.as_deref(), &query)
        .await
        .map_err(internal)?;
    let next = next_page(&rows, query.limit, |r| (r.updated_at, r.setup_id));
    Ok(Reply::new(SetupPage {
        setups: rows.into_iter().map(with_links).collect(),
        next_cursor: next,
    }))
}

pub(crate) async fn detail(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Reply<SetupDetail>, Problem> {
    let caller = caller.require(Permission::SetupsView)?;
    let setup_id = setup_id(&id)?;
    let found = store::one(&api.pool, setup_id)
        .await
        .map_err(internal)?
        .filter(|s| caller.scope().sees(&s.store_id))
        .ok_or_else(|| not_found(setup_id))?;
    let history = store::history(&api.pool, setup_id)
        .await
        .map_err(internal)?;
    let client_invitations = store::invitations(&api.pool, setup_id)
        .await
        .map_err(internal)?;
    // Its sequence: what `If-Match` names on a step.
    let etag = HeaderValue::from_str(&format!("\"{}\"", found.sequence))
        .map_err(|_| Problem::unavailable())?;
    Ok(Reply::new(SetupDetail {
        setup: with_links(found),
        history,
        client_invitations,
    })
    .with_header(header::ETAG, etag))
}

/// The setups' analytics.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct SetupAnalytics {
    /// Per service product and template version.
    products: Vec<SetupFigures>,
}

/// `GET /api/v1/admin/analytics/setups`: per product and template version, how many setups,
/// how long each stage took (p50, p90), loops per setup and the share found overdue.
pub(crate) async fn analytics(
    State(api): State<Arc<Api>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Reply<SetupAnalytics>, Problem> {
    let caller = caller.require(Permission::SetupsView)?;
    let query = setups::parse_analytics(&pairs(raw))
        .map_err(|e| Problem::bad_parameter(e.field, e.reason))?;
    let stores = caller.scope().narrow(&query.stores);
    let products = store::analytics(&api.pool, stores.as_deref(), &query)
        .await
        .map_err(internal)?;
    Ok(Reply::new(SetupAnalytics { products }))
}

/// The setup id a path names, or the problem naming `id`.
pub(crate) fn setup_id(id: &str) -> Result<Uuid, Problem> {
    id.parse()
        .map_err(|_| Problem::bad_parameter("id", format!("`{id}` is not a setup id (a UUID)")))
}

/// A setup that does not exist or that the token may not see: the same 404 for both.
pub(crate) fn not_found(setup_id: Uuid) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "No such setup",
        format!("no setup {setup_id} that this token may see"),
    )
}

fn with_links(setup: SetupRow) -> SetupView {
    let links = SetupLinks {
        order: format!("/api/v1/admin/orders/{}", setup.order_id),
        setup: format!("/api/v1/admin/setups/{}", setup.setup_id),
        steps: format!("/api/v1/admin/setups/{}/steps", setup.setup_id),
    };
    SetupView { setup, links }
}

fn internal(e: sqlx::Error) -> Problem {
    error!(error = %e, "setups read failed: database");
    Problem::unavailable()
}
