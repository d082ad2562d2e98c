//! The fulfillment worker: turns reserved stock into shipments and carrier chatter into
//! facts the rest of Orderly can act on.
//!
//! What it owns, in its own schema (`fulfillment`):
//! - a copy of each accepted order (`order.accepted`): the address, items and prices that
//!   `shipment.requested` and `invoice.requested` need, because `stock.reserved` only says
//!   which warehouse ships which line;
//! - each store's invoice timing (`store.invoice_settings_updated`, highest revision wins;
//!   on shipment until told otherwise) — only the timing, the seller's settings are
//!   invoicing's;
//! - shipments, one per warehouse allocation (split shipments), with their items;
//! - the tracking history of every shipment, in the carrier's words and mapped onto ours,
//!   plus the tracking events that matched no shipment, for operators.
//!
//! Why it is built this way:
//! - the shipment state is *derived* from the tracking history every time (see
//!   `domain::tracking`), so carriers' late, repeated and reordered events give the same state in
//!   any arrival order, and nothing moves backwards;
//! - each outgoing event that must happen once (`shipment.dispatched`, `shipment.delivered`,
//!   `shipment.exception` per status, `invoice.requested` per order or shipment) has a
//!   unique key in the store, written in the same transaction as the outbox row;
//! - all work on one order (and every binding of one tracking number) is serialised by the
//!   lock keys the runtime takes before a batch runs, so several copies of the worker can run
//!   side by side;
//! - the common messages (a new order, its reservation, carrier updates) are decided a run
//!   at a time in memory and written one statement per table (`flow`): a carrier update went
//!   from about fifteen statements to a share of a dozen for the whole run.
//!
//! # Layout
//! Three layers, as in every worker, each split by concern:
//! - `domain/` — pure rules, no I/O: shipment states, carriers' vocabularies, the tracking
//!   state machine and the notices it owes, shipment planning, cancellations, invoice
//!   requests (unit-tested with plain values);
//! - [`store`] — all SQL, one module per topic (order snapshots, cancellations, shipments,
//!   tracking numbers and events, unmatched events, notices and invoice requests, store
//!   settings) and the operators' reads, which are the only public part;
//! - `handlers/` — the [`FulfillmentHandler`]: which path a message takes, its lock keys,
//!   and the messages handled alone (a re-accepted order, a cancellation, a store's
//!   settings);
//! - `flow/` — the common messages a run at a time: the run itself, accepted orders and
//!   reservations (→ shipments), carrier updates (→ tracking, notices, invoices);
//! - `steps` — what the flow and the handlers decide alike, imported by both;
//! - `input` — what the worker consumes, [`FulfillmentInput`], declared once.
//!
//! Imports go one way: `handlers` → `flow` → `steps` → `store`/`domain`, and `handlers` →
//! `steps`; the flow hands a re-accepted order back to the handler instead of calling it.
//! The public surface is what other crates use: the handler, its input, [`NAME`], and the
//! operators' reads in [`store`].

mod domain;
mod flow;
mod handlers;
mod input;
mod steps;
pub mod store;

pub use handlers::FulfillmentHandler;
pub use input::FulfillmentInput;

/// The worker's name: its queue and its schema.
pub const NAME: &str = "fulfillment";
