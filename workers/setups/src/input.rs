//! What the setups worker consumes, declared once: [`SetupsInput`].

use orderly_contracts::messages::{
    OrderAccepted, OrderCancelled, ProductUpserted, SetupActionRequested,
};

orderly_runtime::inputs! {
    /// What the setups worker consumes: its queue in the routing table receives exactly
    /// these (the host checks it before starting the worker).
    pub enum SetupsInput {
        /// A catalog product: a service's setup template versions are kept.
        ProductUpserted(ProductUpserted),
        /// An accepted order: one setup per service line starts.
        Accepted(OrderAccepted),
        /// A cancelled order or lines: their open setups are cancelled.
        Cancelled(OrderCancelled),
        /// A request to move a setup along.
        ActionRequested(SetupActionRequested),
    }
}
