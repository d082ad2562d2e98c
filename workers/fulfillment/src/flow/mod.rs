//! The common path of fulfillment, decided a run of messages at a time: a newly accepted
//! order (`order.accepted` of an order not stored yet), its reservation (`stock.reserved`,
//! turned into shipments) and the carriers' updates (`shipment.updated`). They are nearly
//! every message this worker gets. This module holds the run itself (what it reads, how it
//! walks its messages, what it writes); [`shipments`] decides accepted orders and
//! reservations, [`tracking`] carrier updates.
//!
//! # Why
//! Handled one at a time, a carrier update cost about fifteen statements (find and lock the
//! shipment and its order, bind the tracking number, record the event, read the history back,
//! save the state, read the notices, read the order and the items, claim the invoice request,
//! save the invoice progress, record the notice), and the worker spent most of its time
//! waiting on those round trips. Here a run of messages (the consecutive ones of a batch the
//! flow takes, or one alone) reads what it needs in a few statements, decides every message
//! in arrival order in memory with the same [`domain`](crate::domain) functions, and writes
//! one statement per table at the end.
//!
//! # Why it means the same as one at a time
//! Every message sees what the ones before it did, because they changed the orders and
//! shipments the run holds, exactly as they would have changed the rows. What the flow does
//! not decide it leaves to the caller, with the run's writes flushed before it: an
//! `order.accepted` for an order stored already (a re-accept or a new revision) stops the
//! run ([`Ran::Reaccepted`]); the handler handles it alone where it arrived and runs the rest
//! again, which reads their state afresh. An update whose tracking number no shipment has yet
//! (a carrier's scan before the warehouse's label) is handed back to be recorded as waiting,
//! and adopted when the number is bound; one naming a shipment that does not exist is
//! recorded and rejected, as alone. Errors are those of handling one message (a reservation
//! before its order is transient), and the runtime reruns the batch a message at a time,
//! where a message alone is a run of one: there is no second implementation of these
//! messages.
//!
//! # Locks
//! The runtime takes the batch's lock keys before the run starts (each order; each tracking
//! number an update names): every message about one order, and every binding of one tracking
//! number, is serialised by them. The run also locks the rows it reads to change (orders and
//! shipments, `for update`), so nothing depends on the advisory locks alone.

mod shipments;
mod tracking;

pub(crate) use tracking::wait_for_binding;

use std::collections::{HashMap, HashSet};

use anyhow::anyhow;
use orderly_contracts::RawEnvelope;
use orderly_contracts::messages::{InvoiceTiming, OrderAccepted, ShipmentUpdated};
use orderly_runtime::{Batch, HandlerContext, HandlerError, Incoming};
use sqlx::PgConnection;
use tracing::Instrument;
use uuid::Uuid;

use crate::domain::{Cancellation, InvoiceProgress, Notice, PlannedShipment};
use crate::input::{Common, FulfillmentInput};
use crate::store::{
    self, NewBinding, NewInvoiceRequest, NewTrackingEvent, Shipment, ShipmentFacts, StoredOrder,
    UnmatchedEvent,
};

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
    /// Reservations of orders on an operator's hold: `(order_id, message_id, envelope)`.
    parked: Vec<(Uuid, Uuid, serde_json::Value)>,
    reserved: Vec<Uuid>,
    bindings: Vec<NewBinding>,
    events: Vec<NewTrackingEvent>,
    marks: Vec<(Uuid, Uuid)>,
    resolved: Vec<(i64, Uuid)>,
    notices: Vec<(Uuid, Notice, Uuid)>,
    requests: Vec<NewInvoiceRequest>,
}

/// What became of one message.
enum Step {
    /// Decided in memory.
    Done,
    /// An accepted order stored already: handled alone, by the caller.
    Alone,
    /// An update naming a shipment that does not exist: recorded as unmatched and rejected.
    Unmatched(String),
    /// An update whose tracking number no shipment has yet: for the caller to record as
    /// waiting for it.
    Waits,
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
    /// Orders on an operator's hold: their reservations are parked, not shipped.
    on_hold: HashSet<Uuid>,
    /// Orders whose on-order invoice was requested.
    invoiced: HashSet<Uuid>,
    timings: HashMap<String, InvoiceTiming>,
    writes: Writes,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ran {
    /// Every message was decided and written.
    All,
    /// The message at this index is an `order.accepted` of an order stored already (a
    /// re-accept or a new revision): the ones before it are written, it is for the caller
    /// to handle alone, and the ones after it are not handled yet.
    Reaccepted(usize),
    /// The message at this index is a carrier update whose tracking number no shipment has
    /// yet: the ones before it are written, it is for the caller to record as waiting
    /// ([`wait_for_binding`]), and the ones after it are not handled yet.
    Waits(usize),
}

/// Handles `msgs` (all messages of the flow, see [`FulfillmentInput::common`]) in the
/// batch's transaction, in arrival order, with the effect of handling them one at a time;
/// stops before an accepted order stored already ([`Ran::Reaccepted`]).
pub(crate) async fn run(msgs: &[&Incoming], batch: &mut Batch<'_>) -> Result<Ran, HandlerError> {
    let decoded: Vec<Common<'_>> = msgs
        .iter()
        .map(|m| {
            m.input::<FulfillmentInput>()?
                .common()
                .ok_or_else(|| HandlerError::permanent("not a message of the fulfillment flow"))
        })
        .collect::<Result<_, _>>()?;
    let mut run = Run::load(batch.conn, &decoded).await?;
    for (i, (msg, message)) in msgs.iter().zip(&decoded).enumerate() {
        let span = batch.span(msg);
        let step = {
            let _entered = span.enter();
            let mut cx = batch.context(msg);
            run.take(message, &msg.envelope, &mut cx)?
        };
        match step {
            Step::Done => {}
            Step::Alone => {
                run.flush(batch.conn).await?;
                return Ok(Ran::Reaccepted(i));
            }
            Step::Waits => {
                run.flush(batch.conn).await?;
                return Ok(Ran::Waits(i));
            }
            Step::Unmatched(reason) => {
                run.flush(batch.conn).await?;
                let Common::Updated(update) = message else {
                    return Err(HandlerError::permanent(
                        "only a carrier update is unmatched",
                    ));
                };
                return tracking::reject(
                    &mut batch.context(msg),
                    msg.envelope.message_id,
                    update,
                    reason,
                )
                .instrument(span)
                .await
                .map(|()| Ran::All);
            }
        }
    }
    run.flush(batch.conn).await?;
    Ok(Ran::All)
}

impl Run {
    /// Reads what `messages` need: the tracking numbers' bindings, the shipments updates
    /// name (locked) with their items, history, notices and invoice requests, the orders
    /// named or shipped, their cancellations, the timing of new orders' stores, and the
    /// unmatched events waiting for the numbers being bound.
    async fn load(conn: &mut PgConnection, messages: &[Common<'_>]) -> Result<Self, HandlerError> {
        let mut run = Self::default();
        let updates: Vec<&ShipmentUpdated> = messages
            .iter()
            .filter_map(|m| match m {
                Common::Updated(u) => Some(*u),
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
                Common::Accepted(o) => Some(o.order_id),
                Common::Reserved(r) => Some(r.order_id),
                Common::Updated(_) => None,
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
                Common::Accepted(o) if !run.orders.contains_key(&o.order_id) => Some(*o),
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
        let reserved: Vec<Uuid> = messages
            .iter()
            .filter_map(|m| match m {
                Common::Reserved(r) => Some(r.order_id),
                _ => None,
            })
            .collect();
        run.on_hold = store::held_orders(conn, &reserved).await?;
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
        message: &Common<'_>,
        envelope: &RawEnvelope,
        cx: &mut HandlerContext<'_>,
    ) -> Result<Step, HandlerError> {
        match message {
            Common::Accepted(order) => self.order_accepted(cx, order),
            Common::Reserved(reserved) => self
                .stock_reserved(cx, reserved, envelope)
                .map(|()| Step::Done),
            Common::Updated(update) => self.shipment_updated(cx, envelope.message_id, update),
        }
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
        store::park_reservations(conn, &w.parked).await?;
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
