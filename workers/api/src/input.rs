//! What the api worker consumes: the events its read model is made of. Its queue in the
//! routing table receives exactly these (the host checks it before starting the worker).

use orderly_contracts::messages::{
    CreditNoteIssued, InvoiceIssued, OrderAccepted, OrderAddressChanged, OrderCancelled,
    OrderCompleted, OrderHoldChanged, OrderOnHold, OrderRequestAnswered, OrderStatusChanged,
    ShipmentDelivered, ShipmentDispatched, ShipmentException, ShipmentRequested,
};

orderly_runtime::inputs! {
    /// The api worker's inputs.
    pub enum ApiInput {
        /// An order waiting for an operator: its item exceptions.
        OnHold(OrderOnHold),
        /// An accepted order: header, customer, addresses, lines, money.
        Accepted(OrderAccepted),
        /// A status change, with the per-order sequence.
        StatusChanged(OrderStatusChanged),
        /// New addresses of an accepted order.
        AddressChanged(OrderAddressChanged),
        /// The order or some lines cancelled.
        Cancelled(OrderCancelled),
        /// Delivered and invoiced: done.
        Completed(OrderCompleted),
        /// A shipment asked of a warehouse.
        ShipmentRequested(ShipmentRequested),
        /// A shipment left, with its tracking number.
        ShipmentDispatched(ShipmentDispatched),
        /// A shipment arrived.
        ShipmentDelivered(ShipmentDelivered),
        /// A shipment's delivery failed, it is returning, or it needs a human.
        ShipmentException(ShipmentException),
        /// An invoice was issued.
        InvoiceIssued(InvoiceIssued),
        /// A credit note was issued.
        CreditNoteIssued(CreditNoteIssued),
        /// What became of a request (a command the API sent, or another's).
        RequestAnswered(OrderRequestAnswered),
        /// An operator's hold or release.
        HoldChanged(OrderHoldChanged),
    }
}

impl ApiInput {
    /// The order the event is about: every input names one.
    pub(crate) fn order_id(&self) -> uuid::Uuid {
        match self {
            Self::OnHold(e) => e.payload.order_id,
            Self::Accepted(e) => e.payload.order_id,
            Self::StatusChanged(e) => e.payload.order_id,
            Self::AddressChanged(e) => e.payload.order_id,
            Self::Cancelled(e) => e.payload.order_id,
            Self::Completed(e) => e.payload.order_id,
            Self::ShipmentRequested(e) => e.payload.order_id,
            Self::ShipmentDispatched(e) => e.payload.order_id,
            Self::ShipmentDelivered(e) => e.payload.order_id,
            Self::ShipmentException(e) => e.payload.order_id,
            Self::InvoiceIssued(e) => e.payload.order_id,
            Self::CreditNoteIssued(e) => e.payload.order_id,
            Self::RequestAnswered(e) => e.payload.order_id,
            Self::HoldChanged(e) => e.payload.order_id,
        }
    }

    /// What the event may change in the order's analytics facts (`store::analytics`):
    /// nothing, the order's facts, or its facts and its lines (an accepted header). The
    /// facts are recomputed from the read model after the event is projected, so this only
    /// saves the work where nothing they are made of can have moved.
    pub(crate) fn changes_facts(&self) -> FactsChange {
        match self {
            Self::Accepted(_) => FactsChange::WithLines,
            Self::OnHold(_)
            | Self::StatusChanged(_)
            | Self::Completed(_)
            | Self::ShipmentRequested(_)
            | Self::ShipmentDispatched(_)
            | Self::ShipmentDelivered(_) => FactsChange::Facts,
            Self::AddressChanged(_)
            | Self::Cancelled(_)
            | Self::ShipmentException(_)
            | Self::InvoiceIssued(_)
            | Self::CreditNoteIssued(_)
            | Self::RequestAnswered(_)
            | Self::HoldChanged(_) => FactsChange::None,
        }
    }
}

/// What an event may change in an order's analytics facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FactsChange {
    None,
    Facts,
    WithLines,
}
