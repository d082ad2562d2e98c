//! The orders worker: where an order enters Orderly and where its status is decided.
//!
//! # What it owns (schema `orders`)
//! - **Orders and their lines**, with the price snapshot as placed and the product snapshot
//!   as matched; identified by `(store, channel, external order id)` so a re-push never
//!   makes a second order.
//! - **The catalog projection** it needs for matching (from `catalog.product_upserted`: SKU,
//!   GTINs, title, VAT category, active; the newest `updated_at` wins) and the **GTIN
//!   mappings** operators asked to remember, per store.
//! - **Order item exceptions**: lines that matched no product. An order with one open is
//!   `on_hold` and nothing is reserved. An operator resolves them (`order.exception_resolved`),
//!   or the catalog does: a `catalog.product_upserted` that brings the missing SKU or GTIN
//!   (or reactivates the product) matches the held lines through the same path, as the
//!   system actor `catalog`. Orders placed and products upserted concurrently take turns on shared
//!   and exclusive product keys, so a line is either matched at once or released later.
//! - **The status machine** (see `domain`) and the facts it is computed from: allocations
//!   (`stock.reserved`), releases, which shipments were dispatched (with their items) and
//!   delivered.
//! - **The timeline**: one entry for every message that touches an order (including
//!   duplicates, refusals, notifications), plus one per status change.
//! - **Rejected orders** (`order.placed` that broke its contract), **cancellation and refund
//!   requests** with their outcomes, **customer statistics**.
//!
//! It publishes only `order.accepted`, `order.on_hold`, `order.status_changed`,
//! `order.cancelled` and `order.completed`, all correlated with the order id.
//!
//! # Decisions
//! - **No `placed` status.** `OrderStatus` has none: an order is stored and matched in one
//!   transaction and is `accepted` or `on_hold` when it becomes visible. Its first
//!   `order.status_changed` has no `from` and sequence 1.
//! - **Re-pushes** (`order.placed` for a known order). The same or a lower revision
//!   changes nothing (the timeline notes the ignored duplicate). A higher revision of an
//!   order **on hold** replaces it wholesale — nothing was reserved or announced
//!   downstream — and its lines are matched again; an open exception whose line still has
//!   the same problem keeps its id (an operator may be working on it), others are
//!   superseded, and a line an operator already matched keeps that match while its
//!   product identifiers are unchanged. A higher revision of an **accepted** order is
//!   applied as commands: lines removed or reduced are cancelled like a cancellation
//!   request (`order.cancelled`, scope `lines`, no request id; dispatched units are
//!   refused with a reason); added lines, raised quantities and a changed product are
//!   refused and recorded (stock was reserved for the accepted lines; more goods are a
//!   new order); address changes are taken until the first dispatch and refused after,
//!   and a change taken is announced (`order.address_changed`) so fulfillment's copy and
//!   the warehouse follow; price, total and customer changes are noted, not applied. A
//!   revision for a cancelled or completed order is noted only.
//! - **Completion**: an order completes when every shipment is delivered (`delivered`, then
//!   at once `completed` and `order.completed`). Invoices are tracked on the timeline and
//!   listed in `order.completed.invoice_numbers` if known by then; an invoice issued later
//!   is still recorded on the timeline.
//! - **How many shipments**: one per warehouse in `stock.reserved` that still has units not
//!   released (`stock.released` after a line cancellation can drop one). Until the count is
//!   known, dispatched orders stay `partially_shipped`.
//! - **Cancellation**: the whole order while nothing has been dispatched; after a dispatch a
//!   whole-order request is refused (recorded, not an error) and only named, undispatched
//!   units can be cancelled. Refusals are outcomes in `cancellation_requests`.
//! - **Exception resolutions**: `map_to_sku` must name a product that is in the catalog and
//!   active (else the resolution is rejected, recorded on the timeline); `remove_line` and
//!   `cancel_order` emit `order.cancelled` (no request id). A resolution re-sent for an
//!   exception closed the same way is a no-op; closed another way it is rejected.
//! - **Unknown orders**: system events (stock, shipment, invoice, notification) about an
//!   unknown order fail transiently (they may have overtaken `order.placed`) and dead-letter
//!   when the retry budget is spent; requests (cancel, refund) about an unknown order are
//!   rejected with the reason recorded.
//! - **Customer statistics** count each new order once, keyed by the customer id, else the
//!   lowercased email, else `guest:<order id>`; spend is the placed total per currency.
//!
//! # Layout
//! - `input`: what the worker consumes, declared once ([`OrdersInput`]), and which of it
//!   the flow decides.
//! - `locks`: the lock keys of a batch, from the decoded messages.
//! - `handlers`: the [`Handler`](orderly_runtime::Handler) implementation and its
//!   dispatch, and one module per message family (intake, requests, exceptions, catalog,
//!   events), which decide one message at a time.
//! - `flow`: the common messages (new orders, reservations, shipments) a run at a time,
//!   deciding in memory and writing set-wise.
//! - `steps`: what the flow and the handlers both do (status changes, matching, the
//!   messages they send), so neither imports the other.
//! - `domain`: the decisions, pure, one file per concern.
//! - [`store`]: all SQL, one file per topic. Its public read functions (timelines,
//!   exceptions, rejected orders, products, summaries, statistics) are for the CLI, the
//!   demo and the tests; nothing else of the crate is public.
//!
//! Imports go one way: `handlers` → `flow` → `steps` → `store` → `domain` (and `handlers` →
//! `steps`, `locks` → `steps`); nothing imports a module that imports it back.

mod domain;
mod flow;
mod handlers;
mod input;
mod locks;
mod steps;
pub mod store;

pub use handlers::OrdersHandler;
pub use input::OrdersInput;

/// The worker's name: its queue and its schema.
pub const NAME: &str = "orders";
