//! `order.cancelled`: the cancellation is recorded under its key, and once the order's
//! shipments exist they are reconciled with every cancellation received (shrunk, or
//! cancelled when nothing is left to ship). Handled alone: cancellations are rare, and one
//! reconciles against everything recorded for its order.

use orderly_contracts::Envelope;
use orderly_contracts::messages::OrderCancelled;
use orderly_runtime::{HandlerContext, HandlerError};
use tracing::info;

use crate::domain::{self, Adjustment, Cancellation, ShipmentContents};
use crate::store;

#[tracing::instrument(skip_all, fields(order_id = %env.payload.order_id))]
pub(super) async fn order_cancelled(
    cx: &mut HandlerContext<'_>,
    env: &Envelope<OrderCancelled>,
) -> Result<(), HandlerError> {
    let cancelled = &env.payload;
    let order_id = cancelled.order_id;
    let cancellation = Cancellation {
        scope: cancelled.scope,
        lines: cancelled
            .lines
            .iter()
            .map(|l| (l.line_id.clone(), l.quantity.get()))
            .collect(),
    };
    let key = cancelled.request_id.unwrap_or(env.message_id);
    let new = store::record_cancellation(cx.conn, order_id, key, &cancellation, &cancelled.reason)
        .await?;
    if !new {
        info!("cancellation already recorded");
    }
    let Some(stored) = store::load_order(cx.conn, order_id).await? else {
        info!("cancellation recorded; the order has not arrived here (yet)");
        return Ok(());
    };
    if !stored.shipments_created {
        info!("cancellation recorded; it applies when the shipments are made");
        return Ok(());
    }
    let shipments = store::shipments_of_order(cx.conn, order_id).await?;
    let items = store::items_of_order(cx.conn, order_id).await?;
    let contents: Vec<ShipmentContents> = shipments
        .iter()
        .map(|s| ShipmentContents {
            position: s.position,
            state: s.tracking.state,
            items: items
                .get(&s.shipment_id)
                .map(|items| {
                    items
                        .iter()
                        .map(|i| (i.line_id.clone(), i.quantity))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    let all = store::cancellations(cx.conn, order_id).await?;
    for adjustment in
        domain::reconcile_cancellations(&domain::ordered_units(&stored.order), &all, &contents)
    {
        match adjustment {
            Adjustment::SetQuantity {
                shipment,
                line_id,
                quantity,
            } => {
                if let Some(s) = shipments.get(shipment) {
                    store::set_item_quantity(cx.conn, s.shipment_id, &line_id, quantity).await?;
                    info!(shipment_id = %s.shipment_id, line_id, quantity, "shipment shrunk by a cancellation");
                }
            }
            Adjustment::Cancel { shipment } => {
                if let Some(s) = shipments.get(shipment)
                    && store::cancel_shipment(cx.conn, s.shipment_id, &cancelled.reason).await?
                {
                    info!(shipment_id = %s.shipment_id, "shipment cancelled");
                }
            }
        }
    }
    Ok(())
}
