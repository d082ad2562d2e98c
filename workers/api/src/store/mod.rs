//! All of the api worker's SQL, against its own schema (the pool's `search_path` is `api`,
//! and table names are unqualified).
//!
//! - [`analytics`]: the orders' analytics facts, their sums per day and week, and the
//!   figures read from them;
//! - [`commands`]: the commands the API sent and their outcomes, and the audit log;
//! - [`jobs`]: bulk jobs, their items and the batches that send their commands;
//! - [`exports`]: export jobs and their leases;
//! - [`exceptions`]: the open order item exceptions;
//! - [`projection`]: the read model's writes, from the handler's transaction;
//! - [`read`]: the order list and an order's detail;
//! - [`tracking`]: the carriers' scans of a parcel;
//! - [`views`]: the console's saved views of the order list;
//! - [`notifications`]: the messages sent to an order's customer and their outcomes;
//! - [`stats`]: a customer's order statistics;
//! - [`customers`]: a storefront customer's own orders;
//! - [`documents`]: an order's invoice or credit note, to serve its PDF;
//! - [`sessions`]: the admin console's sessions (sign-in, the session a cookie names,
//!   sign-out);
//! - [`products`]: the api's copy of the catalog, searched when resolving an exception;
//! - [`seen_products`]: the products recent orders carried, to pick one for an exception;
//! - [`secrets`]: each store's secrets for its customers' tokens (used by the CLI and by
//!   the customers' endpoint);
//! - [`staff`]: staff accounts, their stores and API tokens (used by the CLI and by
//!   authentication).

pub(crate) mod analytics;
pub(crate) mod commands;
pub(crate) mod customers;
pub(crate) mod documents;
pub(crate) mod exceptions;
pub(crate) mod exports;
pub(crate) mod jobs;
pub(crate) mod notifications;
pub(crate) mod products;
pub(crate) mod projection;
pub(crate) mod read;
pub mod secrets;
pub(crate) mod seen_products;
pub(crate) mod sessions;
pub(crate) mod setups;
pub mod staff;
pub(crate) mod stats;
pub(crate) mod tracking;
pub(crate) mod views;
