//! Fulfillment's rules, with no I/O, one module per concern:
//! - [`state`]: where a shipment stands (the carrier statuses plus our own);
//! - [`carriers`]: what a carrier's word means (each vocabulary a table), tracking links;
//! - [`tracking`]: which state a shipment is in given its whole tracking history, and
//!   which one-off events that state owes the rest of the system;
//! - [`shipments`]: how a warehouse allocation becomes shipments;
//! - [`cancellations`]: how cancellations shrink or cancel shipments;
//! - [`invoices`]: what goes on an invoice request, per order or per shipment.
//!
//! Why pure: these are the decisions that must come out the same on the run-at-a-time and
//! the one-at-a-time paths and in any arrival order, so they take plain values and are
//! unit-tested with plain values (`tests`); the handlers read and write the rows around them.

mod cancellations;
mod carriers;
mod invoices;
mod shipments;
mod state;
mod tracking;

pub(crate) use cancellations::*;
pub(crate) use carriers::*;
pub(crate) use invoices::*;
pub(crate) use shipments::*;
pub(crate) use state::*;
pub(crate) use tracking::*;

#[cfg(test)]
mod tests;
