//! What fulfillment consumes, declared once: the routing table's `fulfillment` queue receives
//! exactly these types (the host checks it before it starts the worker), the handler matches
//! on them exhaustively, and the lock keys are derived from their decoded payloads.
//!
//! Why a second, borrowed view ([`Common`]): the common messages go through the flow a run
//! at a time and the rest are handled alone, and which is which is decided here, by a `match`
//! on the decoded message, not by comparing type names.

use orderly_contracts::messages::{
    OrderAccepted, OrderAddressChanged, OrderCancelled, OrderHoldChanged, ShipmentUpdated,
    StockReserved, StoreInvoiceSettingsUpdated,
};

orderly_runtime::inputs! {
    /// What the fulfillment worker consumes: its queue in the routing table receives exactly
    /// these (the host checks it before starting the worker).
    pub enum FulfillmentInput {
        /// An order to ship: fulfillment's copy of its address, items and prices.
        Accepted(OrderAccepted),
        /// Which warehouse ships which line: the order's shipments.
        Reserved(StockReserved),
        /// A carrier's (or a warehouse's) tracking event.
        Updated(ShipmentUpdated),
        /// An order, or some of its lines, cancelled.
        Cancelled(OrderCancelled),
        /// An accepted order's new addresses.
        AddressChanged(OrderAddressChanged),
        /// A store's invoice timing.
        SettingsUpdated(StoreInvoiceSettingsUpdated),
        /// An operator's hold or release.
        HoldChanged(OrderHoldChanged),
    }
}

/// A message of the flow (see `crate::flow`), borrowed from the decoded input.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Common<'a> {
    /// `order.accepted`.
    Accepted(&'a OrderAccepted),
    /// `stock.reserved`.
    Reserved(&'a StockReserved),
    /// `shipment.updated`.
    Updated(&'a ShipmentUpdated),
}

impl FulfillmentInput {
    /// The message as one of the flow's, or `None` for one handled alone (a cancellation, an
    /// address change, a store's settings).
    pub(crate) fn common(&self) -> Option<Common<'_>> {
        match self {
            Self::Accepted(env) => Some(Common::Accepted(&env.payload)),
            Self::Reserved(env) => Some(Common::Reserved(&env.payload)),
            Self::Updated(env) => Some(Common::Updated(&env.payload)),
            Self::Cancelled(_)
            | Self::AddressChanged(_)
            | Self::SettingsUpdated(_)
            | Self::HoldChanged(_) => None,
        }
    }
}
