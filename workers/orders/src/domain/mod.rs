//! The orders worker's decisions, as pure functions over plain values: no I/O, no SQL, no
//! async. The handlers load state, ask this module what it means, then write and emit.
//!
//! What lives here:
//! - **Matching** ([`match_line`]): a line by SKU or by GTIN (catalog first, then a mapping an
//!   operator remembered) to a product, or to an [`ItemProblem`].
//! - **The status machine** ([`Facts`], [`Event`], [`decide`], [`can_transition`]). The
//!   status is not a register that messages overwrite: it is *computed* from facts that only
//!   ever grow (accepted, backordered, the allocation, which shipments were dispatched and
//!   delivered, cancelled). Whatever order messages arrive in, the same facts give the same
//!   status, so the end state does not depend on arrival order. On top of that the status
//!   only moves forward ([`rank`]) along explicitly legal transitions: a late
//!   `stock.reserved` after a dispatch is recorded but does not move the order back.
//! - **Cancellations, refunds and re-pushes** ([`plan_cancellation`], [`plan_refund`],
//!   [`plan_repush`]): what can still be done to an order, and why not otherwise.
//! - **The accepted order** ([`accepted_order`]): the `order.accepted` snapshot, with amounts
//!   recomputed when lines were cancelled before acceptance so the message stays consistent.
//! - **Stores** ([`store_refusal`]): a new order is taken only for a declared, open store.
//! - **Operator holds** ([`check_hold`], [`check_release`]): a flag beside the status.
//!
//! One file per concern: [`order`] (the order and its lines), [`matching`], [`exceptions`],
//! [`status`] (the status machine), [`cancellation`], [`refund`], [`repush`],
//! [`accepted`] (the `order.accepted` snapshot), [`hold`] and [`stores`]. Their items are re-exported here, so the
//! rest of the crate names them `domain::…`.

mod accepted;
mod address;
mod cancellation;
mod exceptions;
mod hold;
pub(crate) mod matching;
mod order;
mod refund;
mod repush;
mod status;
mod stores;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

pub(crate) use accepted::*;
pub(crate) use address::*;
pub(crate) use cancellation::*;
pub(crate) use exceptions::*;
pub(crate) use hold::*;
pub(crate) use matching::*;
pub(crate) use order::*;
pub(crate) use refund::*;
pub(crate) use repush::*;
pub(crate) use status::*;
pub(crate) use stores::*;
