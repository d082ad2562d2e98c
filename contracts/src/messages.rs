//! Every message payload, one module per area, one struct per message type.
//!
//! Each payload is a plain serde struct with `deny_unknown_fields` (a field a consumer does
//! not know is a contract violation, not something to ignore silently), doc comments that
//! become the JSON Schema descriptions, a [`crate::Message`] impl with its type and version,
//! and a [`crate::Validate`] impl with the rules that span fields.
//!
//! Optional fields are left out of the JSON when absent, never written as `null` (both are
//! accepted on input).

mod common;

pub mod catalog;
pub mod inventory;
pub mod invoices;
pub mod notifications;
pub mod orders;
pub mod shipments;
pub mod stores;
pub mod webhooks;

pub use catalog::ProductUpserted;
pub use common::{
    Actor, ActorKind, Address, Customer, CustomerContact, DocumentRef, DocumentTotals,
    LineQuantity, OrderRef, TaxBreakdown,
};
pub use inventory::{
    AdjustmentReason, AllocatedLine, Allocation, InventoryAdjusted, ReleaseReason, ReleasedLine,
    Shortage, StockLevelChanged, StockReleased, StockReserved, StockUnavailable, WarehouseLevel,
};
pub use invoices::{
    CreditNoteIssued, CreditReason, DocumentBuyer, InvoiceIssued, InvoiceLine, InvoiceRequested,
    InvoiceTiming, VatTreatment,
};
pub use notifications::{
    NotificationAudience, NotificationChannel, NotificationEvent, NotificationFailed,
    NotificationRequested, NotificationRule, NotificationSent, NotificationTemplate,
    StaffRecipient, StoreNotificationSettingsUpdated,
};
pub use orders::{
    AcceptedLine, CancellationScope, CancelledLine, ExceptionResolution, ItemException,
    ItemProblem, OrderAccepted, OrderCancelRequested, OrderCancelled, OrderCompleted,
    OrderExceptionResolved, OrderLine, OrderOnHold, OrderPlaced, OrderRefundRequested,
    OrderStatusChanged, Payment, PaymentStatus,
};
pub use shipments::{
    DispatchedItem, ShipmentDelivered, ShipmentDispatched, ShipmentException, ShipmentItem,
    ShipmentRequested, ShipmentUpdated, StatusVocabulary, TrackingLocation,
};
pub use stores::{RoundingPolicy, StoreInvoiceSettingsUpdated};
pub use webhooks::{WEBHOOK_EVENT_TYPES, WebhookEndpointDisabled, WebhookEndpointRegistered};
