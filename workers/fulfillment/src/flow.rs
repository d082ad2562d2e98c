//! The common path of fulfillment, decided a run of messages at a time: a newly accepted
//! order (`order.accepted` of an order not stored yet), its reservation (`stock.reserved`,
//! turned into shipments) and the carriers' updates (`shipment.updated`). They are nearly
//! every message this worker gets.
//!
//! # Why
//! Handled one at a time, a carrier update cost about fifteen statements (find and lock the
//! shipment and its order, bind the tracking number, record the event, read the history back,
//! save the state, read the notices, read the order and the items, claim the invoice request,
//! save the invoice progress, record the notice), and the worker spent most of its time
//! waiting on those round trips. Here a run of messages (the consecutive ones of a batch the
//! flow takes, or one alone) reads what it needs in a few statements, decides every message
//! in arrival order in memory with the same [`domain`] functions, and writes one statement per
//! table at the end.
//!
//! # Why it means the same as one at a time
//! Every message sees what the ones before it did, because they changed the orders and
//! shipments the run holds, exactly as they would have changed the rows. What the flow does
//! not decide is handled alone where it arrived, with the run's writes flushed before it and
//! its state read again after: an `order.accepted` for an order stored already (a re-accept
//! or a new revision, [`crate::handlers::order_accepted_again`]). An update that matches no
//! shipment is recorded as unmatched and rejected, as alone. Errors are those of handling one
//! message (a reservation before its order is transient), and the runtime reruns the batch a
//! message at a time, where a message alone is a run of one: there is no second
//! implementation of these messages.
//!
//! # Locks
//! The runtime takes the batch's lock keys before the run starts (each order; each tracking
//! number an update names): every message about one order, and every binding of one tracking
//! number, is serialised by them. The run also locks the rows it reads to change (orders and
//! shipments, `for update`), so nothing depends on the advisory locks alone.

use std::collections::{HashMap, HashSet};

use anyhow::anyhow;
use orderly_contracts::Message;
use orderly_contracts::messages::{
    DispatchedItem, InvoiceTiming, OrderAccepted, ShipmentDelivered, ShipmentDispatched,
    ShipmentException, ShipmentItem, ShipmentRequested, ShipmentUpdated, StockReserved,
};
use orderly_contracts::types::Quantity;
use orderly_runtime::{Batch, HandlerContext, HandlerError, Incoming};
use sqlx::PgConnection;
use tracing::{Instrument, info, warn};
use uuid::Uuid;

use crate::domain::{
    self, Cancellation, InvoiceProgress, LineProgress, Notice, Observation, PlannedShipment,
    StatusMapping,
};
use crate::handlers;
use crate::store::{
    self, HeldEvent, NewBinding, NewInvoiceRequest, NewTrackingEvent, Shipment, ShipmentFacts,
    StoredOrder, UnmatchedEvent,
};

/// Whether the flow takes messages of this type (see the module documentation).
pub(crate) fn takes(message_type: &str) -> bool {
    matches!(
        message_type,
        OrderAccepted::TYPE | StockReserved::TYPE | ShipmentUpdated::TYPE
    )
}

/// A message of the flow, decoded (and validated) once.
enum Decoded {
    Accepted(Box<OrderAccepted>),
    Reserved(StockReserved),
    Updated(Box<ShipmentUpdated>),
}

impl Decoded {
    fn of(msg: &Incoming) -> Result<Self, HandlerError> {
        Ok(match msg.envelope.message_type.as_str() {
            OrderAccepted::TYPE => Self::Accepted(Box::new(msg.payload()?)),
            StockReserved::TYPE => Self::Reserved(msg.payload()?),
            ShipmentUpdated::TYPE => Self::Updated(Box::new(msg.payload()?)),
            other => return Err(HandlerError::unhandled(other, "the fulfillment flow")),
        })
    }
}

/// An order the run holds.
#[derive(Debug)]
struct HeldOrder {
    stored: StoredOrder,
    /// Accepted in this run: inserted at the end.
    new: bool,
    /// Its invoice progress moved in this run.
    progress_moved: bool,
}

/// A shipment the run holds.
#[derive(Debug)]
struct HeldShipment {
    shipment: Shipment,
    facts: ShipmentFacts,
    /// Bound or moved in this run: saved at the end.
    changed: bool,
}

/// What a run writes at its end.
#[derive(Debug, Default)]
struct Writes {
    shipments: Vec<(Uuid, Uuid, PlannedShipment)>,
    reserved: Vec<Uuid>,
    bindings: Vec<NewBinding>,
    events: Vec<NewTrackingEvent>,
    marks: Vec<(Uuid, Uuid)>,
    resolved: Vec<(i64, Uuid)>,
    notices: Vec<(Uuid, Notice, Uuid)>,
    requests: Vec<NewInvoiceRequest>,
}

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

/// What became of one message.
enum Step {
    /// Decided in memory.
    Done,
    /// An accepted order stored already: handled alone.
    Alone,
    /// An update that matches no shipment: recorded as unmatched and rejected.
    Unmatched(String),
}

/// One run: what its messages need, and what it will write.
#[derive(Debug, Default)]
struct Run {
    orders: HashMap<Uuid, HeldOrder>,
    shipments: HashMap<Uuid, HeldShipment>,
    /// Tracking number → the shipment it is bound to.
    bindings: HashMap<(String, String), Uuid>,
    /// Unmatched events waiting for a tracking number, not adopted yet.
    waiting: Vec<UnmatchedEvent>,
    cancellations: HashMap<Uuid, Vec<Cancellation>>,
    /// Orders whose on-order invoice was requested.
    invoiced: HashSet<Uuid>,
    timings: HashMap<String, InvoiceTiming>,
    writes: Writes,
}

/// Handles `msgs` (all of types the flow [`takes`]) in the batch's transaction, in arrival
/// order, with the effect of handling them one at a time.
pub(crate) async fn run(msgs: &[&Incoming], batch: &mut Batch<'_>) -> Result<(), HandlerError> {
    let decoded: Vec<Decoded> = msgs
        .iter()
        .map(|m| Decoded::of(m))
        .collect::<Result<_, _>>()?;
    let mut run = Run::load(batch.conn, &decoded).await?;
    for (i, (msg, message)) in msgs.iter().zip(&decoded).enumerate() {
        let span = batch.span(msg);
        let step = {
            let _entered = span.enter();
            let mut cx = batch.context(msg);
            run.take(message, msg.envelope.message_id, &mut cx)?
        };
        match step {
            Step::Done => {}
            Step::Alone => {
                run.flush(batch.conn).await?;
                let Decoded::Accepted(order) = message else {
                    return Err(HandlerError::permanent(
                        "only an accepted order is handled alone",
                    ));
                };
                handlers::order_accepted_again(&mut batch.context(msg), order)
                    .instrument(span)
                    .await?;
                run = Run::load(batch.conn, &decoded[i + 1..]).await?;
            }
            Step::Unmatched(reason) => {
                run.flush(batch.conn).await?;
                let Decoded::Updated(update) = message else {
                    return Err(HandlerError::permanent(
                        "only a carrier update is unmatched",
                    ));
                };
                return handlers::reject(
                    &mut batch.context(msg),
                    msg.envelope.message_id,
                    update,
                    reason,
                )
                .instrument(span)
                .await;
            }
        }
    }
    run.flush(batch.conn).await
}

impl Run {
    /// Reads what `messages` need: the tracking numbers' bindings, the shipments updates
    /// name (locked) with their items, history, notices and invoice requests, the orders
    /// named or shipped, their cancellations, the timing of new orders' stores, and the
    /// unmatched events waiting for the numbers being bound.
    async fn load(conn: &mut PgConnection, messages: &[Decoded]) -> Result<Self, HandlerError> {
        let mut run = Self::default();
        let updates: Vec<&ShipmentUpdated> = messages
            .iter()
            .filter_map(|m| match m {
                Decoded::Updated(u) => Some(u.as_ref()),
                _ => None,
            })
            .collect();
        let numbers: Vec<(&str, &str)> = updates
            .iter()
            .map(|u| (u.carrier.as_str(), u.tracking_number.as_str()))
            .collect();
        run.bindings = store::bindings(conn, &numbers).await?;
        let mut shipment_ids: Vec<Uuid> = updates
            .iter()
            .filter_map(|u| {
                u.shipment_id.or_else(|| {
                    run.bindings
                        .get(&(u.carrier.clone(), u.tracking_number.clone()))
                        .copied()
                })
            })
            .collect();
        shipment_ids.sort_unstable();
        shipment_ids.dedup();
        let shipments = store::lock_shipments(conn, &shipment_ids).await?;
        let found: Vec<Uuid> = shipments.iter().map(|s| s.shipment_id).collect();
        let mut facts = store::shipment_facts(conn, &found).await?;

        let named: Vec<Uuid> = messages
            .iter()
            .filter_map(|m| match m {
                Decoded::Accepted(o) => Some(o.order_id),
                Decoded::Reserved(r) => Some(r.order_id),
                Decoded::Updated(_) => None,
            })
            .collect();
        let mut order_ids: Vec<Uuid> = named
            .iter()
            .copied()
            .chain(shipments.iter().map(|s| s.order_id))
            .collect();
        order_ids.sort_unstable();
        order_ids.dedup();
        for (id, stored) in store::load_orders(conn, &order_ids).await? {
            run.orders.insert(
                id,
                HeldOrder {
                    stored,
                    new: false,
                    progress_moved: false,
                },
            );
        }
        for shipment in shipments {
            run.shipments.insert(
                shipment.shipment_id,
                HeldShipment {
                    facts: facts.remove(&shipment.shipment_id).unwrap_or_default(),
                    shipment,
                    changed: false,
                },
            );
        }

        let new_orders: Vec<&OrderAccepted> = messages
            .iter()
            .filter_map(|m| match m {
                Decoded::Accepted(o) if !run.orders.contains_key(&o.order_id) => Some(o.as_ref()),
                _ => None,
            })
            .collect();
        let mut stores: Vec<&str> = new_orders.iter().map(|o| o.store_id.as_str()).collect();
        stores.sort_unstable();
        stores.dedup();
        run.timings = store::invoice_timings(conn, &stores).await?;
        let mut cancelled: Vec<Uuid> = named;
        cancelled.sort_unstable();
        cancelled.dedup();
        run.cancellations = store::cancellations_of(conn, &cancelled).await?;
        // The numbers an update may bind: named with a shipment that does not carry them.
        let binding: Vec<(&str, &str)> = updates
            .iter()
            .filter(|u| {
                u.shipment_id.is_some_and(|id| {
                    run.shipments.get(&id).is_none_or(|s| {
                        s.shipment.carrier.as_deref() != Some(u.carrier.as_str())
                            || s.shipment.tracking_number.as_deref()
                                != Some(u.tracking_number.as_str())
                    })
                })
            })
            .map(|u| (u.carrier.as_str(), u.tracking_number.as_str()))
            .collect();
        run.waiting = store::waiting_unmatched(conn, &binding).await?;
        Ok(run)
    }

    /// Decides one message in memory.
    fn take(
        &mut self,
        message: &Decoded,
        message_id: Uuid,
        cx: &mut HandlerContext<'_>,
    ) -> Result<Step, HandlerError> {
        match message {
            Decoded::Accepted(order) => self.order_accepted(cx, order),
            Decoded::Reserved(reserved) => self.stock_reserved(cx, reserved).map(|()| Step::Done),
            Decoded::Updated(update) => self.shipment_updated(cx, message_id, update),
        }
    }

    /// `order.accepted` of an order not stored yet: stored, and invoiced now when its store
    /// invoices on order.
    fn order_accepted(
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
        let stored = StoredOrder {
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
            if let Some(request) =
                handlers::invoice_on_order(&stored, cancellations, &self.invoiced)
            {
                self.invoiced.insert(order_id);
                self.writes.requests.push(NewInvoiceRequest {
                    request_id: request.request_id,
                    order_id,
                    shipment_id: None,
                    timing: InvoiceTiming::OnOrder,
                });
                cx.emit_valid(order_id.to_string(), request)?;
            }
        }
        self.orders.insert(
            order_id,
            HeldOrder {
                stored,
                new: true,
                progress_moved: false,
            },
        );
        Ok(Step::Done)
    }

    /// `stock.reserved`: one shipment per warehouse allocation, requested from the warehouse.
    fn stock_reserved(
        &mut self,
        cx: &mut HandlerContext<'_>,
        reserved: &StockReserved,
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

    /// `shipment.updated`: the carrier's event in the shipment's history, its state derived
    /// again, and what the new state calls for published.
    fn shipment_updated(
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
            return Ok(Step::Unmatched(match update.shipment_id {
                Some(id) => format!(
                    "no shipment {id} (tracking number {} of {})",
                    update.tracking_number, update.carrier
                ),
                None => format!(
                    "tracking number {} of {} belongs to no shipment, and the update names none",
                    update.tracking_number, update.carrier
                ),
            }));
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
        let (request, progress) = domain::invoice_for_shipment(
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

    /// Writes what the run decided, one statement per table.
    async fn flush(&mut self, conn: &mut PgConnection) -> Result<(), HandlerError> {
        let w = std::mem::take(&mut self.writes);
        let new: Vec<(&OrderAccepted, InvoiceTiming)> = self
            .orders
            .values()
            .filter(|o| o.new)
            .map(|o| (&o.stored.order, o.stored.invoice_timing))
            .collect();
        store::upsert_orders(conn, &new).await?;
        let planned: Vec<(Uuid, Uuid, &PlannedShipment)> =
            w.shipments.iter().map(|(s, o, p)| (*s, *o, p)).collect();
        let created = store::insert_shipments(conn, &planned).await?;
        if created != planned.len() as u64 {
            return Err(HandlerError::transient(anyhow!(
                "an order of this batch got shipments concurrently; trying again"
            )));
        }
        store::mark_shipments_created(conn, &w.reserved).await?;
        store::bind_numbers(conn, &w.bindings).await?;
        let changed: Vec<&Shipment> = self
            .shipments
            .values()
            .filter(|s| s.changed)
            .map(|s| &s.shipment)
            .collect();
        store::save_shipments(conn, &changed).await?;
        store::insert_tracking_events(conn, &w.events).await?;
        store::mark_state_changed(conn, &w.marks).await?;
        store::resolve_unmatched(conn, &w.resolved).await?;
        store::record_notices(conn, &w.notices).await?;
        store::record_invoice_requests(conn, &w.requests).await?;
        let progress: Vec<(Uuid, &InvoiceProgress)> = self
            .orders
            .iter()
            .filter(|(_, o)| o.progress_moved)
            .map(|(id, o)| (*id, &o.stored.progress))
            .collect();
        store::save_invoice_progress(conn, &progress).await?;
        // Written: from now on what the run holds is what is stored.
        for o in self.orders.values_mut() {
            o.new = false;
            o.progress_moved = false;
        }
        for s in self.shipments.values_mut() {
            s.changed = false;
        }
        Ok(())
    }
}
