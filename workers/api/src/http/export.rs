//! `GET /api/v1/admin/orders/export`: the orders the list shows for the same filters, every
//! page of them, as CSV or JSON lines, one row per order or per line, chosen columns
//! ([`crate::domain::export`]).
//!
//! Streamed with constant memory: the file is written a page of 500 orders at a time, each
//! page read by the list's own statement after the previous page's last key, so an export
//! holds exactly the orders the list pages through (orders placed while it runs, newer
//! than its first row, are not in it). Needs `orders.view`; the caller's stores apply as in
//! the list; the export is in the audit log (`orders.export`, with its query). A failure
//! after the first bytes cannot become a problem+json any more: the stream ends early
//! (the client sees a truncated transfer) and the cause is logged.

use std::sync::Arc;

use axum::{
    body::{Body, Bytes},
    extract::{RawQuery, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::stream;
use schemars::SchemaGenerator;
use tracing::{error, info};

use super::actions::Client;
use super::auth::Caller;
use super::endpoint::{Answer, AnswerHeader, Content};
use super::orders::pairs;
use super::{Api, Problem};
use crate::domain::access::Permission;
use crate::domain::cursor::Cursor;
use crate::domain::export::{self, Column, Format, Rows, Shape};
use crate::domain::filter::{self, ListQuery};
use crate::store::commands::{self as commands, AuditEntry, By};
use crate::store::read::{self, ExportOrder};

/// Orders read per page.
const PAGE: i64 = 500;

/// The streamed file (its media type is the format's; the document names CSV's).
#[derive(Debug)]
pub(crate) struct Export(Response);

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
    let mut pairs = pairs(raw);
    let shape = export::parse(&mut pairs).map_err(|e| Problem::bad_parameter(e.field, e.reason))?;
    if let Some((name, _)) = pairs
        .iter()
        .find(|(n, _)| matches!(n.as_str(), "limit" | "cursor" | "count"))
    {
        return Err(Problem::bad_parameter(
            name.clone(),
            "an export holds every page of the list: leave out limit, cursor and count",
        ));
    }
    let query = filter::parse(&pairs).map_err(|e| Problem::bad_parameter(e.field, e.reason))?;
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
    let body = Body::from_stream(pages(api, stores, query, shape));
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    if let Ok(value) = HeaderValue::from_str(&file) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(Export(response))
}

/// Where the stream is.
struct Pager {
    api: Arc<Api>,
    stores: Option<Vec<String>>,
    query: ListQuery,
    shape: Shape,
    after: Option<Cursor>,
    header_written: bool,
    done: bool,
}

/// The file, a page at a time.
fn pages(
    api: Arc<Api>,
    stores: Option<Vec<String>>,
    query: ListQuery,
    shape: Shape,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    let pager = Pager {
        api,
        stores,
        query,
        shape,
        after: None,
        header_written: false,
        done: false,
    };
    stream::unfold(pager, |mut pager| async move {
        if pager.done {
            return None;
        }
        let mut chunk = String::new();
        if !pager.header_written {
            pager.header_written = true;
            if pager.shape.format == Format::Csv {
                chunk.push_str(&export::csv_header(&pager.shape.columns));
            }
        }
        let page = read::export_page(
            &pager.api.pool,
            pager.stores.as_deref(),
            &pager.query,
            pager.after,
            PAGE,
        )
        .await;
        let orders = match page {
            Ok(orders) => orders,
            Err(e) => {
                error!(error = %e, "export stopped: database");
                pager.done = true;
                return Some((Err(std::io::Error::other("export stopped")), pager));
            }
        };
        if (orders.len() as i64) < PAGE {
            pager.done = true;
        }
        if let Some(last) = orders.last() {
            pager.after = Some(Cursor::after(last.placed_at, last.order_id));
        }
        for order in &orders {
            for cells in rows(order, &pager.shape) {
                match pager.shape.format {
                    Format::Csv => {
                        chunk.push_str(&export::csv_record(&pager.shape.columns, &cells))
                    }
                    Format::Jsonl => {
                        chunk.push_str(&export::json_line(&pager.shape.columns, &cells))
                    }
                }
            }
        }
        if chunk.is_empty() && pager.done {
            return None;
        }
        Some((Ok(Bytes::from(chunk)), pager))
    })
}

/// The rows of one order: one, or one per line (an order whose lines are not known yet,
/// on hold, has none in a per-line export).
fn rows(order: &ExportOrder, shape: &Shape) -> Vec<Vec<Option<String>>> {
    let money = |d: Option<rust_decimal::Decimal>| d.map(|d| d.to_string());
    let order_cell = |column: Column| -> Option<String> {
        match column {
            Column::OrderId => Some(order.order_id.to_string()),
            Column::StoreId => Some(order.store_id.clone()),
            Column::Channel => order.channel.clone(),
            Column::Marketplace => order.marketplace.clone(),
            Column::ExternalOrderId => Some(order.external_order_id.clone()),
            Column::Status => order.status.clone(),
            Column::PlacedAt => Some(order.placed_at.to_rfc3339()),
            Column::Currency => order.currency.clone(),
            Column::Total => money(order.total),
            Column::Shipping => money(order.shipping),
            Column::Discount => money(order.discount),
            Column::Tax => money(order.tax),
            Column::CustomerName => order.customer_name.clone(),
            Column::CustomerEmail => order.customer_email.clone(),
            Column::LineCount => Some(
                order
                    .lines
                    .as_ref()
                    .and_then(|l| l.as_array())
                    .map_or(0, Vec::len)
                    .to_string(),
            ),
            _ => None,
        }
    };
    match shape.rows {
        Rows::Order => vec![shape.columns.iter().map(|c| order_cell(*c)).collect()],
        Rows::Line => {
            let lines = order
                .lines
                .as_ref()
                .and_then(|l| l.as_array())
                .cloned()
                .unwrap_or_default();
            lines
                .iter()
                .map(|line| {
                    let text = |key: &str| match &line[key] {
                        serde_json::Value::Null => None,
                        serde_json::Value::String(s) => Some(s.clone()),
                        other => Some(other.to_string()),
                    };
                    shape
                        .columns
                        .iter()
                        .map(|c| match c {
                            Column::LineId => text("line_id"),
                            Column::Sku => text("sku"),
                            Column::Gtin => text("gtin"),
                            Column::Title => text("title"),
                            Column::Quantity => text("quantity"),
                            Column::UnitPrice => text("unit_price"),
                            Column::LineDiscount => text("discount"),
                            other => order_cell(*other),
                        })
                        .collect()
                })
                .collect()
        }
    }
}

fn internal(e: sqlx::Error) -> Problem {
    error!(error = %e, "export failed: database");
    Problem::unavailable()
}
