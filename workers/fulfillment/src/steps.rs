//! Decisions shared by the run-at-a-time flow and the one-at-a-time handlers, so that both
//! import them from here and neither imports the other: a message means the same on either
//! path only if both call the same code.

use std::collections::HashSet;

use orderly_contracts::messages::{CancellationScope, InvoiceRequested};
use tracing::info;
use uuid::Uuid;

use crate::domain::{self, Cancellation};
use crate::store::StoredOrder;

/// The invoice request of an order its store invoices on order: none when the whole order
/// was cancelled before it got here, or when it was requested already (`invoiced`).
pub(crate) fn invoice_on_order(
    stored: &StoredOrder,
    cancellations: &[Cancellation],
    invoiced: &HashSet<Uuid>,
) -> Option<InvoiceRequested> {
    if cancellations
        .iter()
        .any(|c| c.scope == CancellationScope::Order)
    {
        info!("order was cancelled before it was accepted here; no invoice requested");
        return None;
    }
    if invoiced.contains(&stored.order.order_id) {
        return None;
    }
    let request_id = Uuid::now_v7();
    info!(%request_id, "invoice requested for the whole order");
    Some(domain::invoice_for_order(&stored.order, request_id))
}
