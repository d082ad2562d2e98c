//! `order.accepted` of an order stored already (a re-accept, or a new revision of the
//! order), handled alone where it arrived: the flow stops before it, and the handler calls
//! this. It is rare, and reads back what it stored, so it is not worth a set-wise path.

use anyhow::anyhow;
use orderly_contracts::messages::{InvoiceTiming, OrderAccepted};
use orderly_runtime::{HandlerContext, HandlerError};
use tracing::info;

use crate::steps;
use crate::store::{self, NewInvoiceRequest, SnapshotWrite};

/// An `order.accepted` for an order stored already (a re-accept, or a new revision): the
/// snapshot replaced when the revision is higher, then invoiced on order if its store does
/// so and it was not yet. (A new order goes through [`crate::flow`].)
#[tracing::instrument(skip_all, fields(order_id = %order.order_id))]
pub(super) async fn order_accepted_again(
    cx: &mut HandlerContext<'_>,
    order: &OrderAccepted,
) -> Result<(), HandlerError> {
    let order_id = order.order_id;
    let before = store::load_order(cx.conn, order_id).await?;
    let timing = store::invoice_timings(cx.conn, &[order.store_id.as_str()])
        .await?
        .remove(order.store_id.as_str())
        .unwrap_or(InvoiceTiming::OnShipment);
    store::upsert_orders(cx.conn, &[(order, timing)]).await?;
    let write = match &before {
        None => SnapshotWrite::Inserted,
        Some(b) if b.order.revision < order.revision => SnapshotWrite::Updated,
        Some(_) => SnapshotWrite::Unchanged,
    };
    info!(?write, revision = order.revision, "order snapshot stored");
    let stored = store::load_order(cx.conn, order_id)
        .await?
        .ok_or_else(|| HandlerError::transient(anyhow!("order {order_id} is not stored")))?;
    if stored.invoice_timing != InvoiceTiming::OnOrder {
        return Ok(());
    }
    let cancellations = store::cancellations(cx.conn, order_id).await?;
    let invoiced = store::orders_invoiced(cx.conn, &[order_id]).await?;
    if let Some(request) = steps::invoice_on_order(&stored, &cancellations, &invoiced) {
        store::record_invoice_requests(
            cx.conn,
            &[NewInvoiceRequest {
                request_id: request.request_id,
                order_id,
                shipment_id: None,
                timing: InvoiceTiming::OnOrder,
            }],
        )
        .await?;
        cx.emit_valid(order_id.to_string(), request)?;
    }
    Ok(())
}
