//! `order.hold_changed`: an operator's hold or release. Fulfillment keeps the newest (by the
//! order's hold sequence; the hold may arrive before the order itself). While an order is
//! held, its reservation is parked by the flow instead of becoming shipment requests; the
//! release replays the parked reservation through the flow, which then asks the warehouses
//! as it would have (with the addresses and cancellations as they are now). Shipments asked
//! for before the hold are the warehouse's to pause: it receives `order.hold_changed` too.

use anyhow::anyhow;
use orderly_contracts::Envelope;
use orderly_contracts::messages::OrderHoldChanged;
use orderly_runtime::{HandlerContext, HandlerError, Incoming};
use tracing::info;

use crate::flow::{self, Ran};
use crate::store;

#[tracing::instrument(skip_all, fields(order_id = %env.payload.order_id, sequence = env.payload.sequence))]
pub(super) async fn hold_changed(
    cx: &mut HandlerContext<'_>,
    env: &Envelope<OrderHoldChanged>,
) -> Result<(), HandlerError> {
    let change = &env.payload;
    if !store::record_hold(cx.conn, change).await? {
        info!("an older or the same hold change ignored");
        return Ok(());
    }
    if change.held {
        info!("order on hold: its reservation, if it comes, waits for the release");
        return Ok(());
    }
    let Some(parked) = store::take_parked(cx.conn, change.order_id).await? else {
        info!("order released; nothing was waiting for it");
        return Ok(());
    };
    let bytes = serde_json::to_vec(&parked)
        .map_err(|e| HandlerError::permanent(format!("parked reservation: {e}")))?;
    let envelope = orderly_contracts::decode_raw(&bytes)
        .map_err(|e| HandlerError::permanent(format!("parked reservation: {e}")))?;
    let reservation = Incoming::new(envelope, 1);
    info!("order released: its parked reservation is shipped now");
    match flow::run(&[&reservation], &mut cx.as_batch()).await? {
        Ran::All => Ok(()),
        Ran::Reaccepted(_) | Ran::Waits(_) => Err(HandlerError::transient(anyhow!(
            "a parked reservation was handed back by the flow"
        ))),
    }
}
