//! Accepted orders and their reservations, decided in a run: a new order is kept (and
//! invoiced at once when its store invoices on order), and a reservation becomes one
//! shipment per warehouse allocation, shrunk by the cancellations received before it.

use anyhow::anyhow;
use orderly_contracts::RawEnvelope;
use orderly_contracts::messages::{
    InvoiceRequested, InvoiceTiming, OrderAccepted, ShipmentItem, ShipmentRequested, StockReserved,
};
use orderly_contracts::types::Quantity;
use orderly_runtime::{HandlerContext, HandlerError};
use tracing::info;
use uuid::Uuid;

use super::{HeldOrder, Run, Step};
use crate::domain::{self, InvoiceProgress, LineProgress};
use crate::steps;
use crate::store::{self, NewInvoiceRequest, StoredOrder};

impl Run {
    /// `order.accepted` of an order not stored yet: stored, and invoiced now when its store
    /// invoices on order.
    pub(super) fn order_accepted(
        &mut self,
        cx: &mut HandlerContext<'_>,
        order: &OrderAccepted,
    ) -> Result<Step, HandlerError> {
        let order_id = order.order_id;
        if self.orders.contains_key(&order_id) {
            return Ok(Step::Alone);
        }
        let timing = self
            .timings
            .get(order.store_id.as_str())
            .copied()
            .unwrap_or(InvoiceTiming::OnShipment);
        info!(
            write = ?store::SnapshotWrite::Inserted,
            revision = order.revision,
            "order snapshot stored"
        );
        let mut stored = StoredOrder {
            progress: InvoiceProgress {
                shipping_invoiced: false,
                discount_invoiced: rust_decimal::Decimal::ZERO,
                lines: order
                    .lines
                    .iter()
                    .map(|l| (l.line_id.clone(), LineProgress::default()))
                    .collect(),
            },
            order: order.clone(),
            invoice_timing: timing,
            shipments_created: false,
        };
        if timing == InvoiceTiming::OnOrder {
            let cancellations = self
                .cancellations
                .get(&order_id)
                .map_or(&[][..], Vec::as_slice);
            if let Some(request) = steps::invoice_on_order(&stored, cancellations, &self.invoiced) {
                self.request_order_wide(cx, request)?;
            }
        }
        let mut progress_moved = false;
        if timing == InvoiceTiming::OnShipment
            && !self.invoiced.contains(&order_id)
            && let Some(services) =
                domain::invoice_for_services(&stored.order, &stored.progress, Uuid::now_v7())
        {
            let (request, progress) = services.map_err(|e| {
                HandlerError::permanent(format!(
                    "cannot request the invoice of order {order_id}'s services: {e}"
                ))
            })?;
            stored.progress = progress;
            progress_moved = true;
            info!(request_id = %request.request_id, "invoice requested for the order's services");
            self.request_order_wide(cx, request)?;
        }
        self.orders.insert(
            order_id,
            HeldOrder {
                stored,
                new: true,
                progress_moved,
            },
        );
        Ok(Step::Done)
    }

    /// Sends an order-wide invoice request (no shipment: the whole order, or its services),
    /// recorded so the order is asked for once.
    fn request_order_wide(
        &mut self,
        cx: &mut HandlerContext<'_>,
        request: InvoiceRequested,
    ) -> Result<(), HandlerError> {
        let order_id = request.order_id;
        self.invoiced.insert(order_id);
        self.writes.requests.push(NewInvoiceRequest {
            request_id: request.request_id,
            order_id,
            shipment_id: None,
            timing: InvoiceTiming::OnOrder,
        });
        cx.emit_valid(order_id.to_string(), request)?;
        Ok(())
    }

    /// `stock.reserved`: one shipment per warehouse allocation, requested from the warehouse;
    /// for an order on an operator's hold, the reservation (`envelope`) is parked until the
    /// release replays it.
    pub(super) fn stock_reserved(
        &mut self,
        cx: &mut HandlerContext<'_>,
        reserved: &StockReserved,
        envelope: &RawEnvelope,
    ) -> Result<(), HandlerError> {
        let order_id = reserved.order_id;
        let Some(held) = self.orders.get_mut(&order_id) else {
            // Out of order: the reservation overtook the accepted order. Retry later.
            return Err(HandlerError::transient(anyhow!(
                "order {order_id} has not arrived here yet (order.accepted); shipments wait for it"
            )));
        };
        let stored = &mut held.stored;
        if stored.order.store_id != reserved.store_id {
            return Err(HandlerError::permanent(format!(
                "stock.reserved names store {}, but order {order_id} belongs to {}",
                reserved.store_id, stored.order.store_id
            )));
        }
        if stored.shipments_created {
            info!("reservation already turned into shipments; nothing to do");
            return Ok(());
        }
        if self.on_hold.contains(&order_id) {
            let parked = serde_json::to_value(envelope).map_err(|e| {
                HandlerError::permanent(format!("cannot park the reservation: {e}"))
            })?;
            self.writes
                .parked
                .push((order_id, envelope.message_id, parked));
            info!("order on an operator's hold: reservation parked until it is released");
            return Ok(());
        }
        let mut plan = domain::plan_shipments(&stored.order, &reserved.allocations)
            .map_err(|e| HandlerError::permanent(e.to_string()))?;
        let cancellations = self
            .cancellations
            .get(&order_id)
            .map_or(&[][..], Vec::as_slice);
        domain::apply_cancellations_to_plan(&stored.order, cancellations, &mut plan);
        stored.shipments_created = true;
        self.writes.reserved.push(order_id);
        for planned in plan {
            let shipment_id = Uuid::now_v7();
            if planned.cancelled {
                info!(%shipment_id, warehouse = %planned.warehouse_id, "shipment cancelled before it was requested");
            } else {
                let request = ShipmentRequested {
                    shipment_id,
                    order_id,
                    store_id: stored.order.store_id.clone(),
                    external_order_id: stored.order.external_order_id.clone(),
                    warehouse_id: planned.warehouse_id.clone(),
                    ship_to: stored.order.shipping_address.clone(),
                    // We do not know whether the buyer agreed to share their address with
                    // carriers.
                    recipient_email: None,
                    shipping_method: None,
                    items: planned
                        .items
                        .iter()
                        .filter(|item| item.quantity > 0)
                        .map(|item| {
                            Ok(ShipmentItem {
                                line_id: item.line_id.clone(),
                                sku: item.sku.clone(),
                                gtin: item.gtin.clone(),
                                title: item.title.clone(),
                                quantity: Quantity::new(item.quantity)
                                    .map_err(|e| HandlerError::permanent(e.to_string()))?,
                            })
                        })
                        .collect::<Result<_, HandlerError>>()?,
                };
                cx.emit_valid(order_id.to_string(), request)?;
                info!(%shipment_id, warehouse = %planned.warehouse_id, "shipment requested");
            }
            self.writes.shipments.push((shipment_id, order_id, planned));
        }
        Ok(())
    }
}
