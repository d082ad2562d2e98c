//! `order.address_changed`: an accepted order's addresses changed before anything shipped.
//! Fulfillment's copy of the order takes them when the change's (revision, amendment) is
//! newer (an operator's change keeps the revision and counts the amendment), so every
//! shipment and invoice it has not yet asked for goes to the new address (the warehouse
//! hears of the change directly, for the shipments already asked for). Handled alone: it is
//! rare.

use anyhow::anyhow;
use orderly_contracts::Envelope;
use orderly_contracts::messages::OrderAddressChanged;
use orderly_runtime::{HandlerContext, HandlerError};
use tracing::info;

use crate::store;

#[tracing::instrument(skip_all, fields(order_id = %env.payload.order_id, revision = env.payload.revision))]
pub(super) async fn address_changed(
    cx: &mut HandlerContext<'_>,
    env: &Envelope<OrderAddressChanged>,
) -> Result<(), HandlerError> {
    let change = &env.payload;
    // Orders announces an order before it changes it; a change that overtook the
    // announcement (a retry, another lane) waits for it.
    let Some(stored) = store::load_order(cx.conn, change.order_id).await? else {
        return Err(HandlerError::transient(anyhow!(
            "order {} is not known to fulfillment yet (its order.accepted has not arrived)",
            change.order_id
        )));
    };
    if !store::update_addresses(cx.conn, change).await? {
        info!(
            stored = stored.order.revision,
            amendment = change.amendment,
            "address change not newer than the copy's (revision, amendment): ignored"
        );
        return Ok(());
    }
    info!(
        shipments_requested = stored.shipments_created,
        "addresses updated for what is not yet asked for"
    );
    Ok(())
}
