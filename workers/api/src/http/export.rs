//! `GET /api/v1/admin/orders/export`: the orders the list shows for the same filters, every
//! page of them, as CSV or JSON lines, one row per order or per line, chosen columns
//! ([`crate::domain::export`]).
//!
//! Streamed with constant memory: the file is written a page of 2,000 orders at a time, each
//! page read by the list's own statement after the previous page's last key, so an export
//! holds exactly the orders the list pages through (orders placed while it runs, newer
//! than its first row, are not in it). Needs `orders.view`; the caller's stores apply as in
//! the list; the export is in the audit log (`orders.export`, with its query). A failure
//! after the first bytes cannot become a problem+json any more: the stream ends early
//! (the client sees a truncated transfer) and the cause is logged.

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{RawQuery, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::StreamExt;
use schemars::SchemaGenerator;
use tracing::{error, info};

use super::actions::Client;
use super::auth::Caller;
use super::endpoint::{Answer, AnswerHeader, Content};
use super::orders::pairs;
use super::{Api, Problem};
use crate::domain::access::Permission;
use crate::domain::export;
use crate::store::commands::{self as commands, AuditEntry, By};

/// The streamed file (its media type is the format's; the document names CSV's).
#[derive(Debug)]
pub(crate) struct Export(pub(crate) Response);

impl IntoResponse for Export {
    fn into_response(self) -> Response {
        self.0
    }
}

impl Answer for Export {
    const STATUS: u16 = 200;
    const HEADERS: &'static [AnswerHeader] =
        &[AnswerHeader::ContentDisposition, AnswerHeader::CacheControl];

    fn content(_: &mut SchemaGenerator) -> Content {
        Content::Binary("text/csv")
    }
}

pub(crate) async fn export(
    State(api): State<Arc<Api>>,
    caller: Caller,
    client: Client,
    RawQuery(raw): RawQuery,
) -> Result<Export, Problem> {
    let caller = caller.require(Permission::OrdersView)?;
    let raw_text = raw.clone().unwrap_or_default();
    let (shape, query) =
        export::parse_request(pairs(raw)).map_err(|e| Problem::bad_parameter(e.field, e.reason))?;
    let stores = caller.scope().narrow(&query.stores);
    let p = &caller.0;
    let entry = AuditEntry {
        by: By::Staff {
            staff_id: p.staff_id,
            token_id: p.token_id,
            email: &p.email,
        },
        action: "orders.export",
        order_id: None,
        store_id: None,
        target: None,
        command_id: None,
        client_addr: client.addr().map(str::to_owned),
        forwarded_for: client.forwarded_for().map(str::to_owned),
        http_status: 200,
        outcome: "accepted",
        detail: Some(format!(
            "export ?{}",
            raw_text.chars().take(1000).collect::<String>()
        )),
    };
    let mut conn = api.pool.acquire().await.map_err(internal)?;
    commands::audit(&mut conn, &entry).await.map_err(internal)?;
    drop(conn);
    info!(staff = %p.email, query = %raw_text, "export started");

    let media = shape.format.media_type();
    let file = format!(
        "attachment; filename=\"orders.{}\"",
        shape.format.extension()
    );
    let body = Body::from_stream(
        crate::export_file::pages(api.pool.clone(), stores, query, shape)
            .map(|chunk| chunk.map(|c| c.bytes)),
    );
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    if let Ok(value) = HeaderValue::from_str(&file) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(Export(response))
}

fn internal(e: sqlx::Error) -> Problem {
    error!(error = %e, "export failed: database");
    Problem::unavailable()
}
