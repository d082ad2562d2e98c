//! Carrier updates, decided in a run: the event goes into its shipment's history (binding
//! the tracking number when the update names the shipment, and adopting events that waited
//! for that number), the state is derived again from the whole history, and what the new
//! state owes the rest of Orderly is published once (`shipment.dispatched`, with the
//! shipment's invoice request when its order is invoiced per shipment; `shipment.delivered`;
//! `shipment.exception`). An update whose number no shipment has yet waits for
//! its binding (no dead letter: a scan before the label is a normal race); one naming a
//! shipment that does not exist is recorded and rejected.

use anyhow::anyhow;
use orderly_contracts::messages::{
    DispatchedItem, InvoiceTiming, ShipmentDelivered, ShipmentDispatched, ShipmentException,
    ShipmentUpdated,
};
use orderly_contracts::types::Quantity;
use orderly_runtime::{HandlerContext, HandlerError};
use tracing::{info, warn};
use uuid::Uuid;

use super::{Run, Step};
use crate::domain::{self, Notice, Observation, StatusMapping};
use crate::store::{
    self, HeldEvent, NewBinding, NewInvoiceRequest, NewTrackingEvent, UnmatchedEvent,
};

/// What a notice sends.
enum NoticeMessage {
    Dispatched(ShipmentDispatched),
    Delivered(ShipmentDelivered),
    Exception(ShipmentException),
}

impl NoticeMessage {
    fn order_id(&self) -> Uuid {
        match self {
            Self::Dispatched(m) => m.order_id,
            Self::Delivered(m) => m.order_id,
            Self::Exception(m) => m.order_id,
        }
    }
}

impl Run {
    /// `shipment.updated`: the carrier's event in the shipment's history, its state derived
    /// again, and what the new state calls for published.
    pub(super) fn shipment_updated(
        &mut self,
        cx: &mut HandlerContext<'_>,
        message_id: Uuid,
        update: &ShipmentUpdated,
    ) -> Result<Step, HandlerError> {
        let number = (update.carrier.clone(), update.tracking_number.clone());
        let found = update
            .shipment_id
            .or_else(|| self.bindings.get(&number).copied())
            .filter(|id| self.shipments.contains_key(id));
        let Some(shipment_id) = found else {
            return Ok(match update.shipment_id {
                Some(id) => Step::Unmatched(format!(
                    "no shipment {id} (tracking number {} of {})",
                    update.tracking_number, update.carrier
                )),
                // A carrier's first scans often beat the warehouse's label: the event waits
                // for its number to be bound, and is adopted then.
                None => Step::Waits,
            });
        };
        // An update naming the shipment binds its tracking number, unless that number is the
        // shipment's own already (then it is bound, and events waiting for it were adopted).
        let already_bound = self.shipments.get(&shipment_id).is_some_and(|held| {
            held.shipment.carrier.as_deref() == Some(update.carrier.as_str())
                && held.shipment.tracking_number.as_deref() == Some(update.tracking_number.as_str())
        });
        let binds = update.shipment_id.is_some() && !already_bound;
        if binds {
            let bound = match self.bindings.get(&number) {
                Some(bound) => *bound,
                None => {
                    self.bindings.insert(number.clone(), shipment_id);
                    self.writes.bindings.push(NewBinding {
                        carrier: update.carrier.clone(),
                        tracking_number: update.tracking_number.clone(),
                        shipment_id,
                        message_id,
                    });
                    shipment_id
                }
            };
            if bound != shipment_id {
                return Ok(Step::Unmatched(format!(
                    "tracking number {} of {} belongs to shipment {bound}, not to {shipment_id}",
                    update.tracking_number, update.carrier
                )));
            }
            let held = self
                .shipments
                .get_mut(&shipment_id)
                .ok_or_else(|| HandlerError::transient(anyhow!("shipment vanished")))?;
            if held.shipment.tracking_number.is_none() {
                held.shipment.carrier = Some(update.carrier.clone());
                held.shipment.tracking_number = Some(update.tracking_number.clone());
                held.changed = true;
            }
            self.adopt_waiting_events(update, shipment_id);
        }

        let mapping = domain::map_status(update.vocabulary, &update.raw_status);
        match mapping {
            StatusMapping::Unrecognised => warn!(
                vocabulary = %update.vocabulary,
                raw_status = update.raw_status,
                "unknown carrier status; kept in the history, state unchanged"
            ),
            StatusMapping::NoStatus | StatusMapping::Status(_) => {}
        }
        let event =
            NewTrackingEvent::from_update(shipment_id, message_id, update, mapping.status());
        if !self.record_event(event) {
            info!("tracking event already recorded");
        }
        self.advance(cx, shipment_id, Some(message_id))?;
        Ok(Step::Done)
    }

    /// Adds an event to its shipment's history (held and written); `false` if the history
    /// has it already (the same message, adopted or replayed).
    fn record_event(&mut self, event: NewTrackingEvent) -> bool {
        let Some(held) = self.shipments.get_mut(&event.shipment_id) else {
            return false;
        };
        if held
            .facts
            .events
            .iter()
            .any(|e| e.source == event.source_message_id)
        {
            return false;
        }
        held.facts.events.push(HeldEvent {
            source: event.source_message_id,
            at: event.event_at,
            mapped: event.mapped_status,
            raw_status: event.raw_status.clone(),
            description: event.description.clone(),
        });
        self.writes.events.push(event);
        true
    }

    /// Moves events that waited for this tracking number into the shipment's history.
    fn adopt_waiting_events(&mut self, update: &ShipmentUpdated, shipment_id: Uuid) {
        let (adopted, rest): (Vec<UnmatchedEvent>, Vec<UnmatchedEvent>) =
            std::mem::take(&mut self.waiting)
                .into_iter()
                .partition(|w| {
                    w.carrier == update.carrier
                        && w.tracking_number == update.tracking_number
                        && w.shipment_id.is_none_or(|id| id == shipment_id)
                });
        self.waiting = rest;
        for w in adopted {
            let Ok(vocabulary) = w.vocabulary.parse() else {
                continue;
            };
            let mapped = domain::map_status(vocabulary, &w.raw_status).status();
            self.record_event(NewTrackingEvent {
                shipment_id,
                source_message_id: w.message_id,
                carrier: w.carrier,
                tracking_number: w.tracking_number,
                vocabulary,
                raw_status: w.raw_status,
                raw_substatus: w.raw_substatus,
                mapped_status: mapped,
                description: w.description,
                location: w.location,
                event_at: w.event_at,
                estimated_delivery_at: w.estimated_delivery_at,
                changed_state: false,
            });
            self.writes.resolved.push((w.id, shipment_id));
            info!(message_id = %w.message_id, "earlier unmatched tracking event attached");
        }
    }

    /// Derives the shipment's state from its history, keeps it, and publishes what it owes.
    fn advance(
        &mut self,
        cx: &mut HandlerContext<'_>,
        shipment_id: Uuid,
        arrived: Option<Uuid>,
    ) -> Result<(), HandlerError> {
        let held = self
            .shipments
            .get_mut(&shipment_id)
            .ok_or_else(|| HandlerError::transient(anyhow!("shipment vanished")))?;
        if held.shipment.tracking.state == domain::ShipmentState::Cancelled {
            warn!("tracking event for a cancelled shipment; kept in the history, state unchanged");
            return Ok(());
        }
        let observations: Vec<Observation> = held
            .facts
            .events
            .iter()
            .filter_map(|e| {
                Some(Observation {
                    at: e.at,
                    status: e.mapped?,
                    source: e.source,
                })
            })
            .collect();
        let tracking = domain::derive(&observations);
        let before = held.shipment.tracking;
        if tracking != before {
            held.shipment.tracking = tracking;
            held.changed = true;
            if tracking.state != before.state {
                if let Some(source) = arrived {
                    match self
                        .writes
                        .events
                        .iter_mut()
                        .find(|e| e.shipment_id == shipment_id && e.source_message_id == source)
                    {
                        Some(event) => event.changed_state = true,
                        None => self.writes.marks.push((shipment_id, source)),
                    }
                }
                info!(from = %before.state, to = %tracking.state, "shipment state changed");
            }
        }
        let due = domain::due_notices(&tracking, &held.facts.notices);
        if due.is_empty() {
            return Ok(());
        }
        let order_id = held.shipment.order_id;
        if !self.orders.contains_key(&order_id) {
            return Err(HandlerError::transient(anyhow!(
                "order {order_id} is not stored"
            )));
        }
        for notice in due {
            let message_id = self.publish_notice(cx, shipment_id, notice)?;
            if let Some(held) = self.shipments.get_mut(&shipment_id) {
                held.facts.notices.push(notice);
            }
            self.writes.notices.push((shipment_id, notice, message_id));
        }
        Ok(())
    }

    /// Publishes one notice (and, for a dispatch invoiced per shipment, the invoice request).
    fn publish_notice(
        &mut self,
        cx: &mut HandlerContext<'_>,
        shipment_id: Uuid,
        notice: Notice,
    ) -> Result<Uuid, HandlerError> {
        let (message, invoice) = self.notice_message(shipment_id, notice)?;
        let order_id = message.order_id();
        let id = match message {
            NoticeMessage::Dispatched(m) => {
                let id = cx.emit_valid(order_id.to_string(), m)?;
                info!("shipment dispatched");
                id
            }
            NoticeMessage::Delivered(m) => {
                info!("shipment delivered");
                cx.emit_valid(order_id.to_string(), m)?
            }
            NoticeMessage::Exception(m) => {
                warn!(status = %m.status, "shipment exception");
                cx.emit_valid(order_id.to_string(), m)?
            }
        };
        if invoice {
            self.request_shipment_invoice(cx, shipment_id)?;
        }
        Ok(id)
    }

    /// The message a notice sends, and whether it also requests the shipment's invoice (a
    /// dispatch of an order invoiced per shipment).
    fn notice_message(
        &self,
        shipment_id: Uuid,
        notice: Notice,
    ) -> Result<(NoticeMessage, bool), HandlerError> {
        let held = self
            .shipments
            .get(&shipment_id)
            .ok_or_else(|| HandlerError::transient(anyhow!("shipment vanished")))?;
        let shipment = &held.shipment;
        let order = self
            .orders
            .get(&shipment.order_id)
            .map(|o| &o.stored)
            .ok_or_else(|| {
                HandlerError::transient(anyhow!("order {} is not stored", shipment.order_id))
            })?;
        let o = &order.order;
        let tracking = shipment.tracking;
        let carrier = shipment.carrier.clone().unwrap_or_default();
        let tracking_number = shipment.tracking_number.clone().unwrap_or_default();
        let at = tracking
            .since
            .ok_or_else(|| HandlerError::permanent("a tracked state without an event time"))?;
        Ok(match notice {
            Notice::Dispatched => (
                NoticeMessage::Dispatched(ShipmentDispatched {
                    shipment_id,
                    order_id: o.order_id,
                    store_id: o.store_id.clone(),
                    channel: o.channel,
                    marketplace: o.marketplace.clone(),
                    external_order_id: o.external_order_id.clone(),
                    warehouse_id: shipment.warehouse_id.clone(),
                    tracking_url: domain::tracking_url(&carrier, &tracking_number),
                    carrier,
                    tracking_number,
                    dispatched_at: tracking.dispatched_at.unwrap_or(at),
                    items: held
                        .facts
                        .items
                        .iter()
                        .filter(|i| i.quantity > 0)
                        .map(|i| {
                            Ok(DispatchedItem {
                                line_id: i.line_id.clone(),
                                sku: i.sku.clone(),
                                quantity: Quantity::new(i.quantity)
                                    .map_err(|e| HandlerError::permanent(e.to_string()))?,
                            })
                        })
                        .collect::<Result<_, HandlerError>>()?,
                }),
                order.invoice_timing == InvoiceTiming::OnShipment,
            ),
            Notice::Delivered => (
                NoticeMessage::Delivered(ShipmentDelivered {
                    shipment_id,
                    order_id: o.order_id,
                    store_id: o.store_id.clone(),
                    carrier,
                    tracking_number,
                    delivered_at: at,
                }),
                false,
            ),
            Notice::Exception(status) => {
                let cause = tracking
                    .cause
                    .and_then(|source| held.facts.events.iter().find(|e| e.source == source));
                (
                    NoticeMessage::Exception(ShipmentException {
                        shipment_id,
                        order_id: o.order_id,
                        store_id: o.store_id.clone(),
                        carrier,
                        tracking_number,
                        status,
                        raw_status: cause
                            .map_or_else(|| status.as_str().to_owned(), |c| c.raw_status.clone()),
                        description: cause.and_then(|c| c.description.clone()),
                        event_at: at,
                    }),
                    false,
                )
            }
        })
    }

    /// `invoice.requested` for a dispatched shipment's items, once per shipment.
    fn request_shipment_invoice(
        &mut self,
        cx: &mut HandlerContext<'_>,
        shipment_id: Uuid,
    ) -> Result<(), HandlerError> {
        let Some(held) = self.shipments.get_mut(&shipment_id) else {
            return Ok(());
        };
        if held.facts.invoice_requested {
            return Ok(());
        }
        let Some(order) = self.orders.get_mut(&held.shipment.order_id) else {
            return Ok(());
        };
        let order_id = order.stored.order.order_id;
        let request_id = Uuid::now_v7();
        let lines: Vec<(String, u32)> = held
            .facts
            .items
            .iter()
            .map(|i| (i.line_id.clone(), i.quantity))
            .collect();
        let (mut request, progress) = domain::invoice_for_shipment(
            &order.stored.order,
            &order.stored.progress,
            shipment_id,
            &lines,
            request_id,
        )
        .map_err(|e| {
            HandlerError::permanent(format!(
                "cannot request the invoice of shipment {shipment_id}: {e}"
            ))
        })?;
        // The goods leave from the shipment's warehouse: where the supply starts for VAT.
        request.warehouse_id = Some(held.shipment.warehouse_id.clone());
        held.facts.invoice_requested = true;
        order.stored.progress = progress;
        order.progress_moved = true;
        self.writes.requests.push(NewInvoiceRequest {
            request_id,
            order_id,
            shipment_id: Some(shipment_id),
            timing: InvoiceTiming::OnShipment,
        });
        cx.emit_valid(order_id.to_string(), request)?;
        info!(%request_id, "invoice requested for the shipment");
        Ok(())
    }
}

/// Records an update whose tracking number no shipment has yet, as waiting for it (the
/// binding adopts it), and accepts it: the normal race of a scan before the label, not bad
/// input, so no dead letter.
pub(crate) async fn wait_for_binding(
    cx: &mut HandlerContext<'_>,
    message_id: Uuid,
    update: &ShipmentUpdated,
) -> Result<(), HandlerError> {
    let reason = format!(
        "tracking number {} of {} belongs to no shipment yet; waiting for it to be bound",
        update.tracking_number, update.carrier
    );
    store::record_unmatched(cx.conn, message_id, update, &reason).await?;
    info!(reason, "tracking event waits for its tracking number");
    Ok(())
}

/// Records an update that names a shipment that does not exist and rejects it (dead
/// letter, kept on record).
pub(super) async fn reject(
    cx: &mut HandlerContext<'_>,
    message_id: Uuid,
    update: &ShipmentUpdated,
    reason: String,
) -> Result<(), HandlerError> {
    store::record_unmatched(cx.conn, message_id, update, &reason).await?;
    warn!(
        reason,
        "tracking event matches no shipment; recorded as unmatched"
    );
    Err(HandlerError::rejected(reason))
}
