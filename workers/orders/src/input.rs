//! What the orders worker consumes, declared once: [`OrdersInput`].
//!
//! The routing table's `orders` queue receives exactly these types (the host checks it
//! before it starts the worker), the handler matches on this enum exhaustively, and the
//! lock keys and the flow read the same decoded value: a message is decoded once per
//! delivery. This module also says which messages the run-at-a-time flow takes, as a match
//! on the decoded input rather than on type names.

use orderly_contracts::messages::{
    CreditNoteIssued, InvoiceIssued, NotificationFailed, NotificationSent,
    OrderAddressChangeRequested, OrderCancelRequested, OrderExceptionResolved, OrderHoldRequested,
    OrderNoteRequested, OrderPlaced, OrderRefundRequested, OrderReleaseRequested, ProductUpserted,
    SetupCompleted, ShipmentDelivered, ShipmentDispatched, ShipmentException, ShipmentRequested,
    StockReleased, StockReserved, StockUnavailable, StoreUpserted,
};
use orderly_contracts::{ContractError, Message};
use orderly_runtime::{Incoming, InputError};

orderly_runtime::inputs! {
    /// What the orders worker consumes: its queue in the routing table receives exactly
    /// these (the host checks it before starting the worker).
    pub enum OrdersInput {
        /// A new order, or a re-push of a known one.
        Placed(OrderPlaced),
        /// A customer's or operator's cancellation request.
        CancelRequested(OrderCancelRequested),
        /// A refund request (invoicing issues the credit note).
        RefundRequested(OrderRefundRequested),
        /// An operator's resolution of an order item exception.
        ExceptionResolved(OrderExceptionResolved),
        /// An operator's internal note.
        NoteRequested(OrderNoteRequested),
        /// An operator's hold.
        HoldRequested(OrderHoldRequested),
        /// An operator's release of a hold.
        ReleaseRequested(OrderReleaseRequested),
        /// An operator's change of the order's addresses.
        AddressChangeRequested(OrderAddressChangeRequested),
        /// A catalog product, for matching (and releasing held lines).
        ProductUpserted(ProductUpserted),
        /// A store orders are taken for.
        StoreUpserted(StoreUpserted),
        /// Inventory reserved the order's lines.
        StockReserved(StockReserved),
        /// Inventory could not reserve the order.
        StockUnavailable(StockUnavailable),
        /// Inventory released reserved units.
        StockReleased(StockReleased),
        /// Fulfillment asked a warehouse to ship.
        ShipmentRequested(ShipmentRequested),
        /// A shipment left its warehouse.
        ShipmentDispatched(ShipmentDispatched),
        /// A shipment was delivered.
        ShipmentDelivered(ShipmentDelivered),
        /// A carrier reported a problem with a shipment.
        ShipmentException(ShipmentException),
        /// Invoicing issued an invoice.
        InvoiceIssued(InvoiceIssued),
        /// Invoicing issued a credit note.
        CreditNoteIssued(CreditNoteIssued),
        /// A notification was sent.
        NotificationSent(NotificationSent),
        /// A notification failed.
        NotificationFailed(NotificationFailed),
        /// A service line's setup completed.
        SetupCompleted(SetupCompleted),
    }
}

/// A message the flow decides (see [`crate::flow`]), borrowed from its decoded input.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FlowInput<'a> {
    /// `order.placed`: a new order (a re-push of a known one is handled alone).
    Placed(&'a OrderPlaced),
    /// `stock.reserved`.
    Reserved(&'a StockReserved),
    /// `shipment.requested`.
    Requested(&'a ShipmentRequested),
    /// `shipment.dispatched`.
    Dispatched(&'a ShipmentDispatched),
    /// `shipment.delivered`.
    Delivered(&'a ShipmentDelivered),
}

impl<'a> FlowInput<'a> {
    /// The flow's view of `input`; `None` for a message handled one at a time.
    pub(crate) fn of(input: &'a OrdersInput) -> Option<Self> {
        use OrdersInput as I;
        match input {
            I::Placed(env) => Some(Self::Placed(&env.payload)),
            I::StockReserved(env) => Some(Self::Reserved(&env.payload)),
            I::ShipmentRequested(env) => Some(Self::Requested(&env.payload)),
            I::ShipmentDispatched(env) => Some(Self::Dispatched(&env.payload)),
            I::ShipmentDelivered(env) => Some(Self::Delivered(&env.payload)),
            I::CancelRequested(_)
            | I::RefundRequested(_)
            | I::ExceptionResolved(_)
            | I::NoteRequested(_)
            | I::HoldRequested(_)
            | I::ReleaseRequested(_)
            | I::AddressChangeRequested(_)
            | I::ProductUpserted(_)
            | I::StoreUpserted(_)
            | I::StockUnavailable(_)
            | I::StockReleased(_)
            | I::ShipmentException(_)
            | I::InvoiceIssued(_)
            | I::CreditNoteIssued(_)
            | I::NotificationSent(_)
            | I::NotificationFailed(_)
            | I::SetupCompleted(_) => None,
        }
    }

    /// The flow's view of a delivery: `None` when it is not a message of the flow, or does
    /// not decode (it is then handled alone, which records or refuses it).
    pub(crate) fn of_msg(msg: &'a Incoming) -> Option<Self> {
        msg.input::<OrdersInput>().ok().and_then(Self::of)
    }
}

/// The delivery decoded, or why not. An `order.placed` that breaks its contract is kept
/// apart (it is recorded in `rejected_orders` before it is refused): it is the one contract
/// violation this worker answers with more than a dead letter.
pub(crate) fn decode(msg: &Incoming) -> Result<&OrdersInput, Undecoded> {
    msg.input::<OrdersInput>().map_err(|err| match err {
        InputError::Contract(e) if msg.envelope.message_type == OrderPlaced::TYPE => {
            Undecoded::PlacedBroken(e)
        }
        other => Undecoded::Other(other),
    })
}

/// Why a delivery did not decode (see [`decode`]).
#[derive(Debug)]
pub(crate) enum Undecoded {
    /// An `order.placed` that breaks its contract.
    PlacedBroken(ContractError),
    /// Anything else: a contract violation or a type this worker does not consume.
    Other(InputError),
}
