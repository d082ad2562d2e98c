//! The common path of an order's life, decided a run of messages at a time: a new order
//! (`order.placed` of an order not seen before) and the events that carry an order to
//! completion (`stock.reserved`, `shipment.requested`, `shipment.dispatched`,
//! `shipment.delivered`). They are nearly every message this worker gets.
//!
//! # Why
//! Handled one at a time, each of these cost eight to ten statements: read and lock the
//! order, read its facts, write the fact, a timeline entry, the status and its entry, the
//! milestone. Under load that was half of everything the database did for an order, and a
//! third of this worker's own time went to waiting on those round trips. Here a run of them
//! (the consecutive messages of a batch the flow takes) costs a handful of statements however
//! long it is: the orders they name are read and locked together, every decision is made in
//! memory by the same [`domain`] functions, and the writes go out at the end, one statement
//! per table.
//!
//! # Why it means the same as one at a time
//! Messages are taken in arrival order against the orders held in memory, so a later message
//! about an order sees what an earlier one did to it, exactly as it would have read it back
//! from the database; timeline entries are numbered on from the order's last one. A message
//! that does not decode (an `order.placed` that breaks its contract) is never part of a run.
//! At a message the flow does not decide (a re-push of a known order) the run stops: its
//! writes so far are flushed, [`run`] hands the message back, [`crate::handlers`] handles it
//! alone and runs the flow again on the rest, which reads its orders again. The flow imports
//! neither the handlers nor anything that imports them: the steps both share are in
//! [`crate::steps`]. Failures are those of
//! the one-at-a-time handlers (an event about an unknown order is transient, one naming
//! another store permanent): the runtime then reruns the batch one message at a time, where
//! a message alone is a run of one. There is no second implementation of these messages.

use std::collections::HashMap;

use anyhow::anyhow;
use orderly_contracts::messages::{
    ItemException, OrderPlaced, ShipmentDelivered, ShipmentDispatched, ShipmentRequested,
    StockReserved,
};
use orderly_contracts::types::{OrderStatus, StoreId};
use orderly_contracts::{ContractError, Message};
use orderly_runtime::{Batch, HandlerContext, HandlerError, Incoming};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{self, Event, Facts, Line, OrderHead, Transition, Units};
use crate::input::FlowInput;
use crate::steps;
use crate::store::{self, CatalogView, Cause, NewEntry, TimelineKind};

/// The known order an event is about, with its store and what to call it in errors.
fn event_order<'m>(message: &FlowInput<'m>) -> Option<(Uuid, &'m StoreId, &'static str)> {
    match *message {
        FlowInput::Placed(_) => None,
        FlowInput::Reserved(p) => Some((p.order_id, &p.store_id, StockReserved::TYPE)),
        FlowInput::Requested(p) => Some((p.order_id, &p.store_id, ShipmentRequested::TYPE)),
        FlowInput::Dispatched(p) => Some((p.order_id, &p.store_id, ShipmentDispatched::TYPE)),
        FlowInput::Delivered(p) => Some((p.order_id, &p.store_id, ShipmentDelivered::TYPE)),
    }
}

/// A business key `(store, channel, external order id)`.
type BusinessKey = (String, String, String);

fn business_key(p: &OrderPlaced) -> BusinessKey {
    let (store_id, channel, external) = steps::business_key_ref(p);
    (store_id.to_owned(), channel.to_owned(), external.to_owned())
}

/// What a new order adds besides its header: inserted with it at the end of the run.
#[derive(Debug)]
struct Placed {
    lines: Vec<Line>,
    customer_key: String,
    exceptions: Vec<ItemException>,
    accepted: bool,
}

/// An order as the run holds it.
#[derive(Debug)]
struct Open {
    head: OrderHead,
    facts: Facts,
    /// The number of its last timeline entry.
    timeline_seq: i32,
    invoice_numbers: Vec<String>,
    /// Placed in this run (inserted at the end) rather than loaded (updated).
    placed: Option<Placed>,
    /// Its status moved in this run.
    moved: bool,
}

/// The writes of a run, made at its end (the events borrowed from their deliveries).
#[derive(Debug, Default)]
struct Writes<'m> {
    timeline: Vec<NewEntry>,
    allocations: Vec<&'m StockReserved>,
    requests: Vec<&'m ShipmentRequested>,
    dispatches: Vec<&'m ShipmentDispatched>,
    deliveries: Vec<&'m ShipmentDelivered>,
}

/// One run: the orders its messages name, the catalog its new orders are matched against,
/// and what it will write.
#[derive(Debug, Default)]
struct Run<'m> {
    orders: HashMap<Uuid, Open>,
    /// Orders that exist, by business key (their `order.placed` is a re-push).
    existing: HashMap<BusinessKey, Uuid>,
    /// Whether the declared stores of the new orders take orders (absent: not declared).
    stores: HashMap<StoreId, bool>,
    catalog: CatalogView,
    writes: Writes<'m>,
}

/// Handles `msgs` (all messages of the flow, see [`FlowInput`]) in the batch's transaction,
/// in arrival order, with the effect of handling them one at a time, up to the first one
/// the flow does not decide (a re-push of a known order).
///
/// Returns `None` when every message was decided and written; `Some(i)` when `msgs[..i]`
/// were decided and written and `msgs[i]` is a re-push: the caller handles it alone (it then
/// sees everything before it) and runs the flow again on what follows, which reads its
/// orders again (the re-push may have changed them).
pub(crate) async fn run(
    msgs: &[&Incoming],
    batch: &mut Batch<'_>,
) -> Result<Option<usize>, HandlerError> {
    let inputs: Vec<FlowInput<'_>> = msgs
        .iter()
        .map(|m| {
            FlowInput::of_msg(m)
                .ok_or_else(|| HandlerError::permanent("not a message of the orders flow"))
        })
        .collect::<Result<_, _>>()?;
    let mut run = Run::load(batch.conn, &inputs).await?;
    for (i, (msg, message)) in msgs.iter().zip(inputs).enumerate() {
        let span = batch.span(msg);
        let cause = Cause::of(&msg.envelope);
        let taken = {
            let _entered = span.enter();
            let mut cx = batch.context(msg);
            run.take(message, &mut cx, &cause)?
        };
        match taken {
            Taken::Decided => {}
            Taken::Alone => {
                // Written, so that what is handled alone sees everything before it.
                run.flush(batch.conn).await?;
                return Ok(Some(i));
            }
            Taken::Refused(err) => {
                // On the operators' list of rejected orders, and dead-lettered: the batch is
                // rolled back and run again a message at a time, so only this one is refused.
                store::record_rejected(batch.conn, &msg.envelope, &err).await?;
                tracing::warn!(parent: &span, error = %err, "order.placed rejected");
                return Err(HandlerError::rejected(err.to_string()));
            }
        }
    }
    run.flush(batch.conn).await?;
    Ok(None)
}

/// Whether the flow decided a message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Taken {
    /// Decided in memory; written when the run is flushed.
    Decided,
    /// Not the flow's to decide: handled alone.
    Alone,
    /// A new order that is not taken (its store is not declared or closed), with why.
    Refused(ContractError),
}

impl<'m> Run<'m> {
    /// Reads what `messages` need, in a few statements: which of their new orders exist
    /// already, the orders their events name (locked) with their facts, and the catalog for
    /// the new orders' lines.
    async fn load(
        conn: &mut PgConnection,
        messages: &[FlowInput<'m>],
    ) -> Result<Self, HandlerError> {
        let mut run = Self::default();
        let placed: Vec<&OrderPlaced> = messages
            .iter()
            .filter_map(|m| match m {
                FlowInput::Placed(p) => Some(*p),
                _ => None,
            })
            .collect();
        let keys: Vec<(&str, &str, &str)> =
            placed.iter().map(|p| steps::business_key_ref(p)).collect();
        run.existing = store::orders_by_keys(conn, &keys).await?;
        let mut stores: Vec<&StoreId> = placed
            .iter()
            .filter(|p| !run.existing.contains_key(&business_key(p)))
            .map(|p| &p.store_id)
            .collect();
        stores.sort_unstable();
        stores.dedup();
        run.stores = store::stores_open(conn, &stores).await?;

        let mut ids: Vec<Uuid> = messages
            .iter()
            .filter_map(|m| event_order(m).map(|(id, _, _)| id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let loaded = store::lock_orders(conn, &ids).await?;
        let stored: Vec<&store::StoredOrder> = loaded.iter().map(|l| &l.stored).collect();
        let mut facts = store::facts_of(conn, &stored).await?;
        for l in loaded {
            let order_id = l.stored.head.order_id;
            run.orders.insert(
                order_id,
                Open {
                    facts: facts.remove(&order_id).unwrap_or_default(),
                    head: l.stored.head,
                    timeline_seq: l.timeline_seq,
                    invoice_numbers: l.invoice_numbers,
                    placed: None,
                    moved: false,
                },
            );
        }

        let new_lines: Vec<(StoreId, Line)> = placed
            .iter()
            .filter(|p| !run.existing.contains_key(&business_key(p)))
            .flat_map(|p| {
                p.lines
                    .iter()
                    .map(|l| (p.store_id.clone(), Line::from_placed(l)))
            })
            .collect();
        if !new_lines.is_empty() {
            let lines: Vec<(&StoreId, &Line)> = new_lines.iter().map(|(s, l)| (s, l)).collect();
            run.catalog = store::catalog_view(conn, &lines).await?;
        }
        Ok(run)
    }

    /// Decides one message in memory, or says it is not the flow's to decide.
    fn take(
        &mut self,
        message: FlowInput<'m>,
        cx: &mut HandlerContext<'_>,
        cause: &Cause<'_>,
    ) -> Result<Taken, HandlerError> {
        if let FlowInput::Placed(placed) = message {
            let key = business_key(placed);
            if self.existing.contains_key(&key) {
                return Ok(Taken::Alone);
            }
            let open = self.stores.get(&placed.store_id).copied();
            if let Some(why) = domain::store_refusal(&placed.store_id, open) {
                return Ok(Taken::Refused(ContractError::new("payload.store_id", why)));
            }
            let order_id = self.new_order(cx, cause, placed)?;
            self.existing.insert(key, order_id);
            return Ok(Taken::Decided);
        }
        let Some((order_id, store_id, what)) = event_order(&message) else {
            return Ok(Taken::Alone);
        };
        let Some(open) = self.orders.get_mut(&order_id) else {
            return Err(HandlerError::transient(anyhow!(
                "order {order_id} is not known (yet): this {what} may have overtaken its order.placed"
            )));
        };
        if open.head.store_id != *store_id {
            return Err(HandlerError::permanent(format!(
                "order {order_id} belongs to store {}, but the {what} names store {store_id}",
                open.head.store_id
            )));
        }
        let writes = &mut self.writes;
        match message {
            FlowInput::Reserved(p) => stock_reserved(open, writes, cx, cause, p)?,
            FlowInput::Requested(p) => shipment_requested(open, writes, cause, p),
            FlowInput::Dispatched(p) => shipment_dispatched(open, writes, cx, cause, p)?,
            FlowInput::Delivered(p) => shipment_delivered(open, writes, cx, cause, p)?,
            FlowInput::Placed(_) => {}
        }
        Ok(Taken::Decided)
    }

    /// A new order: matched against the catalog, accepted or put on hold.
    fn new_order(
        &mut self,
        cx: &mut HandlerContext<'_>,
        cause: &Cause<'_>,
        placed: &OrderPlaced,
    ) -> Result<Uuid, HandlerError> {
        let order_id = Uuid::now_v7();
        let mut lines: Vec<Line> = placed.lines.iter().map(Line::from_placed).collect();
        let unmatched = steps::match_against(&self.catalog, &placed.store_id, &mut lines);
        let mut facts = Facts::default();
        if unmatched.is_empty() {
            facts.apply(&Event::Accepted);
        }
        let transitions = domain::decide(None, &facts).map_err(|e| steps::illegal(order_id, e))?;
        let status = transitions.last().map_or(OrderStatus::OnHold, |t| t.to);
        let head = OrderHead::from_placed(order_id, status, placed);
        tracing::info!(%order_id, order = %head.label(), lines = lines.len(), unmatched = unmatched.len(), "new order");
        let detail = format!(
            "Order {} placed via {} (revision {}): {} line{}, total {} {}",
            head.label(),
            head.channel,
            head.revision,
            lines.len(),
            if lines.len() == 1 { "" } else { "s" },
            head.total,
            head.currency
        );
        let mut open = Open {
            head,
            facts,
            timeline_seq: 0,
            invoice_numbers: Vec::new(),
            placed: Some(Placed {
                lines: Vec::new(),
                customer_key: domain::customer_key(&placed.customer, order_id),
                exceptions: Vec::new(),
                accepted: false,
            }),
            moved: false,
        };
        let writes = &mut self.writes;
        note(writes, &mut open, TimelineKind::Placed, cause, detail);
        let reason = if unmatched.is_empty() {
            let accepted = domain::accepted_order(&open.head, &lines).map_err(|e| {
                HandlerError::permanent(format!(
                    "order {} cannot be accepted: {e}",
                    open.head.label()
                ))
            })?;
            let summary = accepted
                .lines
                .iter()
                .map(|l| format!("{} → {} ({})", l.line_id, l.sku, l.tax_category))
                .collect::<Vec<_>>()
                .join(", ");
            steps::emit(cx, order_id, accepted)?;
            note(
                writes,
                &mut open,
                TimelineKind::Accepted,
                cause,
                format!("Accepted: every line matched ({summary})"),
            );
            if let Some(p) = &mut open.placed {
                p.accepted = true;
            }
            "Every line matched a product".to_owned()
        } else {
            let exceptions = steps::exceptions_for(&lines, &unmatched);
            let detail = steps::describe_exceptions(&exceptions);
            let n = exceptions.len();
            steps::emit_on_hold(cx, &open.head, exceptions.clone())?;
            note(
                writes,
                &mut open,
                TimelineKind::OnHold,
                cause,
                format!("On hold, nothing reserved until an operator resolves: {detail}"),
            );
            if let Some(p) = &mut open.placed {
                p.exceptions = exceptions;
            }
            format!(
                "{n} line{} matched no product",
                if n == 1 { "" } else { "s" }
            )
        };
        if let Some(p) = &mut open.placed {
            p.lines = lines;
        }
        apply_transitions(writes, &mut open, cx, &transitions, cause, &reason)?;
        self.orders.insert(order_id, open);
        Ok(order_id)
    }

    /// Writes what the run decided, one statement per table.
    async fn flush(&mut self, conn: &mut PgConnection) -> Result<(), HandlerError> {
        let writes = std::mem::take(&mut self.writes);
        let new: Vec<(&OrderHead, &Placed)> = self
            .orders
            .values()
            .filter_map(|o| o.placed.as_ref().map(|p| (&o.head, p)))
            .collect();
        let rows: Vec<store::NewOrder<'_>> = new
            .iter()
            .map(|(head, p)| store::NewOrder {
                head,
                customer_key: &p.customer_key,
                accepted: p.accepted,
            })
            .collect();
        let inserted = store::insert_orders(conn, &rows).await?;
        if inserted != rows.len() as u64 {
            return Err(HandlerError::transient(anyhow!(
                "an order of this batch was created concurrently by another message; retrying as a re-push"
            )));
        }
        let moved: Vec<&OrderHead> = self
            .orders
            .values()
            .filter(|o| o.placed.is_none() && o.moved)
            .map(|o| &o.head)
            .collect();
        store::update_statuses(conn, &moved).await?;
        let lines: Vec<(Uuid, &[Line])> = new
            .iter()
            .map(|(head, p)| (head.order_id, p.lines.as_slice()))
            .collect();
        store::insert_lines_of(conn, &lines).await?;
        let exceptions: Vec<(Uuid, &[ItemException])> = new
            .iter()
            .map(|(head, p)| (head.order_id, p.exceptions.as_slice()))
            .collect();
        store::insert_exceptions_of(conn, &exceptions).await?;
        let customers: Vec<(&OrderHead, &str)> = new
            .iter()
            .map(|(head, p)| (*head, p.customer_key.as_str()))
            .collect();
        store::count_new_orders(conn, &customers).await?;
        store::record_allocations(conn, &writes.allocations).await?;
        store::record_shipment_requests(conn, &writes.requests).await?;
        store::record_dispatches(conn, &writes.dispatches).await?;
        store::record_deliveries(conn, &writes.deliveries).await?;
        store::add_timeline_entries(conn, &writes.timeline).await?;
        // Written: from now on what the run holds is what is stored.
        for o in self.orders.values_mut() {
            o.placed = None;
            o.moved = false;
        }
        Ok(())
    }
}

/// Adds a timeline entry to `open`, numbered after its last one.
fn note(
    writes: &mut Writes<'_>,
    open: &mut Open,
    kind: TimelineKind,
    cause: &Cause<'_>,
    detail: String,
) {
    open.timeline_seq += 1;
    writes.timeline.push(NewEntry {
        order_id: open.head.order_id,
        seq: open.timeline_seq,
        kind,
        message_id: cause.message_id,
        message_type: cause.message_type.to_owned(),
        producer: cause.producer.to_owned(),
        detail,
    });
}

/// The status changes `transitions` make: each sent and noted, completion with its
/// `order.completed`.
fn apply_transitions(
    writes: &mut Writes<'_>,
    open: &mut Open,
    cx: &mut HandlerContext<'_>,
    transitions: &[Transition],
    cause: &Cause<'_>,
    reason: &str,
) -> Result<(), HandlerError> {
    for t in transitions {
        let change = steps::status_change(&mut open.head, t, reason, &open.invoice_numbers);
        steps::emit(cx, open.head.order_id, change.changed)?;
        note(
            writes,
            open,
            TimelineKind::StatusChanged,
            cause,
            change.detail,
        );
        open.moved = true;
        tracing::info!(order_id = %open.head.order_id, from = ?t.from, to = %t.to, sequence = open.head.status_sequence, "order status changed");
        if let Some((completed, detail)) = change.completed {
            steps::emit(cx, open.head.order_id, completed)?;
            note(writes, open, TimelineKind::Completed, cause, detail);
        }
    }
    Ok(())
}

/// The status changes the order's facts call for now.
fn advance(
    writes: &mut Writes<'_>,
    open: &mut Open,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
    reason: &str,
) -> Result<(), HandlerError> {
    let transitions = domain::decide(Some(open.head.status), &open.facts)
        .map_err(|e| steps::illegal(open.head.order_id, e))?;
    apply_transitions(writes, open, cx, &transitions, cause, reason)
}

fn stock_reserved<'m>(
    open: &mut Open,
    writes: &mut Writes<'m>,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
    p: &'m StockReserved,
) -> Result<(), HandlerError> {
    let units: Vec<Units> = p
        .allocations
        .iter()
        .flat_map(|a| {
            a.lines.iter().map(|l| Units {
                warehouse_id: a.warehouse_id.to_string(),
                line_id: l.line_id.clone(),
                quantity: l.quantity.get(),
            })
        })
        .collect();
    let detail = if open.facts.apply(&Event::StockReserved(units)) {
        let parts = p
            .allocations
            .iter()
            .map(|a| {
                let lines = a
                    .lines
                    .iter()
                    .map(|l| format!("line {} ({}) × {}", l.line_id, l.sku, l.quantity))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("{}: {lines}", a.warehouse_id)
            })
            .collect::<Vec<_>>()
            .join("; ");
        let n = p.allocations.len();
        let detail = if n == 0 {
            format!(
                "Nothing to reserve or ship: every line is a service, set up rather than shipped{}",
                steps::cancelled_note(&open.head)
            )
        } else {
            format!(
                "Stock reserved in {n} warehouse{} ({n} shipment{} expected): {parts}{}",
                if n == 1 { "" } else { "s" },
                if n == 1 { "" } else { "s" },
                steps::cancelled_note(&open.head)
            )
        };
        writes.allocations.push(p);
        detail
    } else {
        "Stock reservation reported again; the first allocation stands".to_owned()
    };
    note(
        writes,
        open,
        TimelineKind::StockReserved,
        cause,
        detail.clone(),
    );
    advance(writes, open, cx, cause, &detail)
}

fn shipment_requested<'m>(
    open: &mut Open,
    writes: &mut Writes<'m>,
    cause: &Cause<'_>,
    p: &'m ShipmentRequested,
) {
    let items = p
        .items
        .iter()
        .map(|i| format!("line {} ({}) × {}", i.line_id, i.sku, i.quantity))
        .collect::<Vec<_>>()
        .join(", ");
    let detail = format!(
        "Shipment {} requested from warehouse {}: {items}{}",
        p.shipment_id,
        p.warehouse_id,
        steps::cancelled_note(&open.head)
    );
    writes.requests.push(p);
    note(writes, open, TimelineKind::ShipmentRequested, cause, detail);
}

fn shipment_dispatched<'m>(
    open: &mut Open,
    writes: &mut Writes<'m>,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
    p: &'m ShipmentDispatched,
) -> Result<(), HandlerError> {
    let event = Event::Dispatched {
        shipment_id: p.shipment_id,
        items: p
            .items
            .iter()
            .map(|i| (i.line_id.clone(), i.quantity.get()))
            .collect(),
    };
    let detail = if open.facts.apply(&event) {
        let nth = open.facts.shipped().len();
        let warning = if open.head.status == OrderStatus::Cancelled {
            " — WARNING: the order was cancelled before this dispatch; check with the warehouse"
        } else {
            ""
        };
        let detail = format!(
            "{} dispatched via {} from {} (tracking {}){warning}",
            domain::shipment_ordinal(nth, open.facts.expected_shipments()),
            p.carrier.to_uppercase(),
            p.warehouse_id,
            p.tracking_number
        );
        writes.dispatches.push(p);
        detail
    } else {
        format!(
            "Dispatch of shipment {} reported again; nothing changes",
            p.shipment_id
        )
    };
    note(
        writes,
        open,
        TimelineKind::ShipmentDispatched,
        cause,
        detail.clone(),
    );
    advance(writes, open, cx, cause, &detail)
}

fn shipment_delivered<'m>(
    open: &mut Open,
    writes: &mut Writes<'m>,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
    p: &'m ShipmentDelivered,
) -> Result<(), HandlerError> {
    let detail = if open.facts.apply(&Event::Delivered {
        shipment_id: p.shipment_id,
    }) {
        let detail = format!(
            "{} delivered ({}, tracking {})",
            domain::shipment_ordinal(open.facts.delivered.len(), open.facts.expected_shipments()),
            p.carrier.to_uppercase(),
            p.tracking_number
        );
        writes.deliveries.push(p);
        detail
    } else {
        format!(
            "Delivery of shipment {} reported again; nothing changes",
            p.shipment_id
        )
    };
    note(
        writes,
        open,
        TimelineKind::ShipmentDelivered,
        cause,
        detail.clone(),
    );
    advance(writes, open, cx, cause, &detail)
}
