//! Where a shipment stands: the carrier statuses plus our own `requested` and `cancelled`,
//! with their ranks and classes, which the state machine ([`super::tracking`]) and the
//! cancellation rules ([`super::cancellations`]) both judge by.

use orderly_contracts::types::ShipmentStatus;

/// Where a shipment stands: the carrier statuses plus our own `requested` (asked of the
/// warehouse, nothing heard yet) and `cancelled` (cancelled before it left).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ShipmentState {
    /// `shipment.requested` sent; no tracking event yet.
    Requested,
    /// The carrier has a label, nothing picked up yet. Not dispatched.
    LabelCreated,
    /// Picked up and moving: dispatched.
    InTransit,
    /// With the driver.
    OutForDelivery,
    /// Delivered (to the recipient, a neighbour or a pick-up point).
    Delivered,
    /// A delivery attempt failed (side state).
    DeliveryFailed,
    /// Something needs a human (side state).
    Exception,
    /// On its way back to the sender. Terminal.
    Returned,
    /// Cancelled before dispatch. Terminal.
    Cancelled,
}

impl ShipmentState {
    /// Every state.
    pub(crate) const ALL: [Self; 9] = [
        Self::Requested,
        Self::LabelCreated,
        Self::InTransit,
        Self::OutForDelivery,
        Self::Delivered,
        Self::DeliveryFailed,
        Self::Exception,
        Self::Returned,
        Self::Cancelled,
    ];

    /// The stored form.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::LabelCreated => "label_created",
            Self::InTransit => "in_transit",
            Self::OutForDelivery => "out_for_delivery",
            Self::Delivered => "delivered",
            Self::DeliveryFailed => "delivery_failed",
            Self::Exception => "exception",
            Self::Returned => "returned",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses the stored form.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// The state a carrier status puts a shipment in.
    pub(crate) const fn from_status(status: ShipmentStatus) -> Self {
        match status {
            ShipmentStatus::LabelCreated => Self::LabelCreated,
            ShipmentStatus::InTransit => Self::InTransit,
            ShipmentStatus::OutForDelivery => Self::OutForDelivery,
            ShipmentStatus::Delivered => Self::Delivered,
            ShipmentStatus::DeliveryFailed => Self::DeliveryFailed,
            ShipmentStatus::Exception => Self::Exception,
            ShipmentStatus::Returned => Self::Returned,
        }
    }

    /// Whether the goods have left the warehouse: the carrier has them (`label_created` only
    /// means a label was printed).
    pub(crate) const fn is_dispatched(self) -> bool {
        matches!(
            self,
            Self::InTransit
                | Self::OutForDelivery
                | Self::Delivered
                | Self::DeliveryFailed
                | Self::Exception
                | Self::Returned
        )
    }

    /// Whether the shipment has not left yet and can still be cancelled or shrunk.
    pub(crate) const fn is_open(self) -> bool {
        matches!(self, Self::Requested | Self::LabelCreated)
    }

    /// Rank on the main chain; `None` for side and terminal-only states.
    pub(super) const fn rank(self) -> Option<u8> {
        match self {
            Self::Requested => Some(0),
            Self::LabelCreated => Some(1),
            Self::InTransit => Some(2),
            Self::OutForDelivery => Some(3),
            Self::Delivered => Some(4),
            Self::DeliveryFailed | Self::Exception | Self::Returned | Self::Cancelled => None,
        }
    }
}

impl std::fmt::Display for ShipmentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
