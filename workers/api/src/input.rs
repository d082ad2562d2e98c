//! What the api worker consumes: the events its read model is made of. Its queue in the
//! routing table receives exactly these (the host checks it before starting the worker).

use orderly_contracts::messages::{
    CreditNoteIssued, InvoiceIssued, NotificationFailed, NotificationRequested, NotificationSent,
    OrderAccepted, OrderAddressChanged, OrderCancelled, OrderCompleted, OrderHoldChanged,
    OrderOnHold, OrderRequestAnswered, OrderStatusChanged, ProductUpserted, SetupClientReminderDue,
    SetupOverdue, SetupRequestAnswered, SetupStatusChanged, ShipmentDelivered, ShipmentDispatched,
    ShipmentException, ShipmentRequested, ShipmentUpdated,
};
use orderly_runtime::LockKey;

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
        /// A carrier's scan of a parcel: the shipment's tracking history.
        Tracking(ShipmentUpdated),
        /// A message to the customer, asked of the notification system.
        NotificationRequested(NotificationRequested),
        /// The notification system delivered it.
        NotificationSent(NotificationSent),
        /// The notification system could not deliver it.
        NotificationFailed(NotificationFailed),
        /// A catalog product: searched when an operator resolves an order item exception.
        Product(ProductUpserted),
        /// A setup of a service line started, moved or ended.
        SetupChanged(SetupStatusChanged),
        /// A setup's stage is past its SLA.
        SetupOverdue(SetupOverdue),
        /// What became of a setup request (a staff step the API sent, or another's).
        SetupAnswered(SetupRequestAnswered),
        /// A setup has kept its client waiting: the API sends them a fresh link.
        SetupReminderDue(SetupClientReminderDue),
    }
}

impl ApiInput {
    /// The order the event is about: every input names one, except a carrier's scan (which
    /// names its parcel), a notification not about an order and a catalog product.
    pub(crate) fn order_id(&self) -> Option<uuid::Uuid> {
        match self {
            Self::OnHold(e) => Some(e.payload.order_id),
            Self::Accepted(e) => Some(e.payload.order_id),
            Self::StatusChanged(e) => Some(e.payload.order_id),
            Self::AddressChanged(e) => Some(e.payload.order_id),
            Self::Cancelled(e) => Some(e.payload.order_id),
            Self::Completed(e) => Some(e.payload.order_id),
            Self::ShipmentRequested(e) => Some(e.payload.order_id),
            Self::ShipmentDispatched(e) => Some(e.payload.order_id),
            Self::ShipmentDelivered(e) => Some(e.payload.order_id),
            Self::ShipmentException(e) => Some(e.payload.order_id),
            Self::InvoiceIssued(e) => Some(e.payload.order_id),
            Self::CreditNoteIssued(e) => Some(e.payload.order_id),
            Self::RequestAnswered(e) => Some(e.payload.order_id),
            Self::HoldChanged(e) => Some(e.payload.order_id),
            Self::NotificationRequested(e) => e.payload.order_id,
            Self::NotificationSent(e) => e.payload.order_id,
            Self::NotificationFailed(e) => e.payload.order_id,
            Self::SetupChanged(e) => Some(e.payload.order_id),
            Self::SetupOverdue(e) => Some(e.payload.order_id),
            Self::SetupAnswered(e) => Some(e.payload.order_id),
            Self::SetupReminderDue(e) => Some(e.payload.order_id),
            Self::Tracking(_) | Self::Product(_) => None,
        }
    }

    /// What a batch locks for it: its order, a scan's tracking number (the scans of one
    /// parcel are written by one batch at a time; they change no order row), or a product's
    /// SKU.
    pub(crate) fn lock_key(&self) -> Option<LockKey> {
        match self {
            Self::Tracking(e) => Some(LockKey::exclusive("tracking", &e.payload.tracking_number)),
            Self::Product(e) => Some(LockKey::exclusive("product", &e.payload.sku)),
            other => other.order_id().map(|id| LockKey::exclusive("order", id)),
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
            | Self::HoldChanged(_)
            | Self::Tracking(_)
            | Self::NotificationRequested(_)
            | Self::NotificationSent(_)
            | Self::NotificationFailed(_)
            | Self::Product(_)
            | Self::SetupChanged(_)
            | Self::SetupOverdue(_)
            | Self::SetupAnswered(_)
            | Self::SetupReminderDue(_) => FactsChange::None,
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
