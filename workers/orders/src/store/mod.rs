//! All SQL of the orders worker. Every function takes the connection it runs on (the
//! handler's transaction, or any connection for the read-only listings the CLI uses); table
//! names are unqualified because the pool's `search_path` is the `orders` schema.
//!
//! Writes are idempotent by business key where a key exists (`on conflict`): a product by
//! SKU and `updated_at`, an order by `(store, channel, external id)`, a shipment by id, an
//! invoice by id, a request by its request id. Monotonic columns are only ever set once
//! (`coalesce(existing, new)`).
//!
//! # Layout
//! One file per topic: `catalog` (products and GTIN mappings), `orders` (order headers),
//! `lines`, `exceptions`, `facts` (what the status is computed from, and invoices),
//! `timeline`, `requests` (cancellations and refunds), `rejected` orders, `stats`
//! (customer statistics), `stores` (the declared stores) and `reads` (for the CLI). Their items are re-exported here;
//! only the read functions other crates use (the CLI, the demo, the tests) are public.

use std::fmt::Display;
use std::str::FromStr;

use rust_decimal::Decimal;

mod catalog;
mod exceptions;
mod facts;
mod lines;
mod orders;
mod reads;
mod rejected;
mod requests;
mod stats;
mod stores;
mod timeline;

pub use crate::domain::matching::Product;
pub use catalog::products_by_sku;
pub(crate) use catalog::*;
pub(crate) use exceptions::*;
pub use exceptions::{ExceptionRecord, list_exceptions};
pub(crate) use facts::*;
pub(crate) use lines::*;
pub(crate) use orders::*;
pub use reads::{OrderSummary, find_order, status_counts};
pub(crate) use rejected::*;
pub use rejected::{RejectedOrder, list_rejected};
pub(crate) use requests::*;
pub use requests::{CancellationRecord, cancellation_requests};
pub(crate) use stats::*;
pub use stats::{CustomerStats, customer_spend, customer_stats};
pub use stores::declared_stores;
pub(crate) use stores::*;
pub(crate) use timeline::*;
pub use timeline::{TimelineEntry, timeline};

fn corrupt(what: &str, err: impl Display) -> sqlx::Error {
    sqlx::Error::Decode(format!("orders: stored {what} is invalid: {err}").into())
}

fn parse<T: FromStr>(what: &str, value: &str) -> Result<T, sqlx::Error>
where
    T::Err: Display,
{
    value.parse().map_err(|e| corrupt(what, e))
}

fn parse_opt<T: FromStr>(what: &str, value: Option<&str>) -> Result<Option<T>, sqlx::Error>
where
    T::Err: Display,
{
    value.map(|v| parse(what, v)).transpose()
}

fn count(what: &str, value: i64) -> Result<u32, sqlx::Error> {
    u32::try_from(value).map_err(|e| corrupt(what, e))
}

/// A stored version number (`integer`, never negative).
fn version(what: &str, value: Option<i32>) -> Result<Option<u32>, sqlx::Error> {
    value
        .map(|v| u32::try_from(v).map_err(|e| corrupt(what, e)))
        .transpose()
}

fn amount(what: &str, value: Decimal) -> Result<orderly_contracts::types::Amount, sqlx::Error> {
    orderly_contracts::types::Amount::try_from(value).map_err(|e| corrupt(what, e))
}
