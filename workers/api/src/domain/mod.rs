//! The api worker's decisions, pure: no database, broker or HTTP here, so each is tested with
//! plain values.
//!
//! - [`access`]: roles and their permissions, and which stores a caller may see;
//! - [`analytics`]: order analytics: the query strings, rates and averages;
//! - [`audit`]: the audit log's query string, parsed into an [`audit::AuditQuery`];
//! - [`bulk`]: bulk actions: the body, the selection, which orders are skipped and why;
//! - [`command`]: staff actions: request bodies, the messages they send, `Idempotency-Key`
//!   and `If-Match`;
//! - [`jobs`]: the list of bulk jobs' query string;
//! - [`filter`]: the order list's query string, parsed into a [`filter::ListQuery`] or
//!   refused naming the parameter;
//! - [`cursor`]: the lists' opaque keyset cursor;
//! - [`exceptions`]: the order-exceptions list's query string;
//! - [`setups`]: the setups list's query string;
//! - [`export`]: exports of the order list (CSV, JSON lines): shape, cells, escaping;
//! - [`customer_token`]: storefront customers' signed tokens: minting, parsing, verifying;
//! - [`notice`]: a message to a customer, merged from the events about its request;
//! - [`projection`]: what an event may change in the read model (sequence and revision
//!   rules);
//! - [`query`]: what the query-string parsers share: the refusal naming a parameter, and
//!   the parameters' descriptions the OpenAPI document is built from;
//! - [`rate`]: rate limits per token, and per address for requests that do not
//!   authenticate;
//! - [`rollup`]: the analytics sums per day and week: an order's share, histograms of
//!   durations and their percentiles;
//! - [`saga`]: where an order stands (what it waits for, since when);
//! - [`session`]: the console's sign-in: passwords, session lifetimes, form tokens;
//! - [`token`]: API tokens: minting, hashing, and recognising a prefix.

pub(crate) mod access;
pub(crate) mod analytics;
pub(crate) mod audit;
pub(crate) mod bulk;
pub(crate) mod command;
pub(crate) mod cursor;
pub(crate) mod customer_token;
pub(crate) mod exceptions;
pub(crate) mod export;
pub(crate) mod filter;
pub(crate) mod intake_link;
pub(crate) mod invitation;
pub(crate) mod jobs;
pub(crate) mod notice;
pub(crate) mod projection;
pub(crate) mod query;
pub(crate) mod rate;
pub(crate) mod rollup;
pub(crate) mod saga;
pub(crate) mod session;
pub(crate) mod setups;
pub(crate) mod token;
