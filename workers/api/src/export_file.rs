//! An export's file (CSV or JSON lines of the orders the list shows for a filter), written
//! a page at a time with constant memory: streamed to the caller by
//! `GET /api/v1/admin/orders/export`, and written to the document store by an export job
//! (`crate::exports`). One writer, so a job's file is the streamed export's file.

use axum::body::Bytes;
use futures_util::stream;
use sqlx::PgPool;
use tracing::error;

use crate::domain::cursor::Cursor;
use crate::domain::export::{self, Column, Format, Rows, Shape};
use crate::domain::filter::ListQuery;
use crate::store::read::{self, ExportOrder};

/// Orders read per page: few enough that a page of wide orders stays a few megabytes,
/// enough that a million-order export is 500 statements, not 2,000 (measured by
/// `orderly bench operations`).
pub(crate) const PAGE: i64 = 2_000;

/// Where the stream is.
struct Pager {
    pool: PgPool,
    stores: Option<Vec<String>>,
    query: ListQuery,
    shape: Shape,
    after: Option<Cursor>,
    header_written: bool,
    done: bool,
}

/// A piece of the file, and how many rows it holds.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub(crate) bytes: Bytes,
    pub(crate) rows: u64,
}

/// The file, a page of [`PAGE`] orders at a time, read by the list's own statement after
/// the previous page's last key.
pub(crate) fn pages(
    pool: PgPool,
    stores: Option<Vec<String>>,
    query: ListQuery,
    shape: Shape,
) -> impl futures_util::Stream<Item = Result<Chunk, std::io::Error>> {
    let pager = Pager {
        pool,
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
        let mut rows_written = 0u64;
        if !pager.header_written {
            pager.header_written = true;
            if pager.shape.format == Format::Csv {
                chunk.push_str(&export::csv_header(&pager.shape.columns));
            }
        }
        let page = read::export_page(
            &pager.pool,
            pager.stores.as_deref(),
            &pager.query,
            pager.after,
            PAGE,
            pager.shape.rows == Rows::Line,
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
                rows_written += 1;
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
        let chunk = Chunk {
            bytes: Bytes::from(chunk),
            rows: rows_written,
        };
        Some((Ok(chunk), pager))
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
            Column::LineCount => Some(order.line_count.to_string()),
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
