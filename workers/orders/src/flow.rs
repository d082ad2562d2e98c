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
//! the flow does not decide (a re-push of a known order, an `order.placed` that breaks its
//! contract) first has the run's writes so far flushed, is then handled alone by
//! [`crate::handlers`], and the rest of the run reads its orders again. Failures are those of
//! the one-at-a-time handlers (an event about an unknown order is transient, one naming
//! another store permanent): the runtime then reruns the batch one message at a time, where
//! a message alone is a run of one. There is no second implementation of these messages.

use std::collections::HashMap;

use anyhow::anyhow;
use orderly_contracts::Message;
use orderly_contracts::messages::{
    ItemException, OrderPlaced, ShipmentDelivered, ShipmentDispatched, ShipmentRequested,
    StockReserved,
};
use orderly_contracts::types::{OrderStatus, StoreId};
use orderly_runtime::{Batch, HandlerContext, HandlerError, Incoming};
use sqlx::PgConnection;
use tracing::Instrument;
use uuid::Uuid;

use crate::domain::{self, Event, Facts, Line, OrderHead, Transition, Units};
use crate::handlers;
use crate::store::{self, CatalogView, Cause, NewEntry};

/// Whether the flow takes messages of this type (see the module documentation).
pub(crate) fn takes(message_type: &str) -> bool {
    matches!(
        message_type,
        OrderPlaced::TYPE
            | StockReserved::TYPE
            | ShipmentRequested::TYPE
            | ShipmentDispatched::TYPE
            | ShipmentDelivered::TYPE
    )
}

/// A message of the flow, decoded once.
enum Decoded {
    /// `order.placed`, or why it breaks its contract (then handled alone, which records it).
    Placed(Option<Box<OrderPlaced>>),
    Reserved(StockReserved),
    Requested(ShipmentRequested),
    Dispatched(ShipmentDispatched),
    Delivered(ShipmentDelivered),
}

impl Decoded {
    fn of(msg: &Incoming) -> Result<Self, HandlerError> {
        Ok(match msg.envelope.message_type.as_str() {
            OrderPlaced::TYPE => Self::Placed(msg.payload::<OrderPlaced>().ok().map(Box::new)),
            StockReserved::TYPE => Self::Reserved(msg.payload()?),
            ShipmentRequested::TYPE => Self::Requested(msg.payload()?),
            ShipmentDispatched::TYPE => Self::Dispatched(msg.payload()?),
            ShipmentDelivered::TYPE => Self::Delivered(msg.payload()?),
            other => return Err(HandlerError::unhandled(other, "the orders flow")),
        })
    }

    /// The known order an event is about, with its store and what to call it in errors.
    fn event_order(&self) -> Option<(Uuid, &StoreId, &'static str)> {
        match self {
            Self::Placed(_) => None,
            Self::Reserved(p) => Some((p.order_id, &p.store_id, StockReserved::TYPE)),
            Self::Requested(p) => Some((p.order_id, &p.store_id, ShipmentRequested::TYPE)),
            Self::Dispatched(p) => Some((p.order_id, &p.store_id, ShipmentDispatched::TYPE)),
            Self::Delivered(p) => Some((p.order_id, &p.store_id, ShipmentDelivered::TYPE)),
        }
    }
}

/// A business key `(store, channel, external order id)`.
type BusinessKey = (String, String, String);

fn business_key(p: &OrderPlaced) -> BusinessKey {
    (
        p.store_id.as_str().to_owned(),
        p.channel.as_str().to_owned(),
        p.external_order_id.clone(),
    )
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

/// The writes of a run, made at its end.
#[derive(Debug, Default)]
struct Writes {
    timeline: Vec<NewEntry>,
    allocations: Vec<StockReserved>,
    requests: Vec<ShipmentRequested>,
    dispatches: Vec<ShipmentDispatched>,
    deliveries: Vec<ShipmentDelivered>,
}

/// One run: the orders its messages name, the catalog its new orders are matched against,
/// and what it will write.
#[derive(Debug, Default)]
struct Run {
    orders: HashMap<Uuid, Open>,
    /// Orders that exist, by business key (their `order.placed` is a re-push).
    existing: HashMap<BusinessKey, Uuid>,
    catalog: CatalogView,
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
    for (i, (msg, message)) in msgs.iter().zip(decoded).enumerate() {
        let span = batch.span(msg);
        let cause = Cause::of(&msg.envelope);
        let alone = {
            let _entered = span.enter();
            let mut cx = batch.context(msg);
            run.take(message, &mut cx, &cause)?
        };
        if alone {
            // Flush so that it sees everything before it, handle it by itself, and read the
            // orders of what follows again: it may have changed them.
            run.flush(batch.conn).await?;
            handlers::order_placed_again(msg, &mut batch.context(msg), &cause)
                .instrument(span)
                .await?;
            let rest: Vec<Decoded> = msgs[i + 1..]
                .iter()
                .map(|m| Decoded::of(m))
                .collect::<Result<_, _>>()?;
            run = Run::load(batch.conn, &rest).await?;
        }
    }
    run.flush(batch.conn).await
}

impl Run {
    /// Reads what `messages` need, in a few statements: which of their new orders exist
    /// already, the orders their events name (locked) with their facts, and the catalog for
    /// the new orders' lines.
    async fn load(conn: &mut PgConnection, messages: &[Decoded]) -> Result<Self, HandlerError> {
        let mut run = Self::default();
        let placed: Vec<&OrderPlaced> = messages
            .iter()
            .filter_map(|m| match m {
                Decoded::Placed(Some(p)) => Some(p.as_ref()),
                _ => None,
            })
            .collect();
        let keys: Vec<(&str, &str, &str)> = placed
            .iter()
            .map(|p| {
                (
                    p.store_id.as_str(),
                    p.channel.as_str(),
                    p.external_order_id.as_str(),
                )
            })
            .collect();
        run.existing = store::orders_by_keys(conn, &keys).await?;

        let mut ids: Vec<Uuid> = messages
            .iter()
            .filter_map(|m| m.event_order().map(|(id, _, _)| id))
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

    /// Decides one message in memory. `Ok(true)`: the flow does not decide it (handle it
    /// alone).
    fn take(
        &mut self,
        message: Decoded,
        cx: &mut HandlerContext<'_>,
        cause: &Cause<'_>,
    ) -> Result<bool, HandlerError> {
        if let Decoded::Placed(placed) = message {
            let Some(placed) = placed else {
                return Ok(true);
            };
            let key = business_key(&placed);
            if self.existing.contains_key(&key) {
                return Ok(true);
            }
            let order_id = self.new_order(cx, cause, &placed)?;
            self.existing.insert(key, order_id);
            return Ok(false);
        }
        let Some((order_id, store_id, what)) = message.event_order() else {
            return Ok(true);
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
            Decoded::Reserved(p) => stock_reserved(open, writes, cx, cause, p)?,
            Decoded::Requested(p) => shipment_requested(open, writes, cause, p),
            Decoded::Dispatched(p) => shipment_dispatched(open, writes, cx, cause, p)?,
            Decoded::Delivered(p) => shipment_delivered(open, writes, cx, cause, p)?,
            Decoded::Placed(_) => {}
        }
        Ok(false)
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
        let unmatched = handlers::match_against(&self.catalog, &placed.store_id, &mut lines);
        let mut facts = Facts::default();
        if unmatched.is_empty() {
            facts.apply(&Event::Accepted);
        }
        let transitions =
            domain::decide(None, &facts).map_err(|e| handlers::illegal(order_id, e))?;
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
        note(writes, &mut open, "placed", cause, detail);
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
            handlers::emit(cx, order_id, accepted)?;
            note(
                writes,
                &mut open,
                "accepted",
                cause,
                format!("Accepted: every line matched ({summary})"),
            );
            if let Some(p) = &mut open.placed {
                p.accepted = true;
            }
            "Every line matched a product".to_owned()
        } else {
            let exceptions = handlers::exceptions_for(&lines, &unmatched);
            let detail = handlers::describe_exceptions(&exceptions);
            let n = exceptions.len();
            handlers::emit_on_hold(cx, &open.head, exceptions.clone())?;
            note(
                writes,
                &mut open,
                "on_hold",
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
        store::record_allocations(conn, &writes.allocations.iter().collect::<Vec<_>>()).await?;
        store::record_shipment_requests(conn, &writes.requests.iter().collect::<Vec<_>>()).await?;
        store::record_dispatches(conn, &writes.dispatches.iter().collect::<Vec<_>>()).await?;
        store::record_deliveries(conn, &writes.deliveries.iter().collect::<Vec<_>>()).await?;
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
    writes: &mut Writes,
    open: &mut Open,
    kind: &'static str,
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
    writes: &mut Writes,
    open: &mut Open,
    cx: &mut HandlerContext<'_>,
    transitions: &[Transition],
    cause: &Cause<'_>,
    reason: &str,
) -> Result<(), HandlerError> {
    for t in transitions {
        let change = handlers::status_change(&mut open.head, t, reason, &open.invoice_numbers);
        handlers::emit(cx, open.head.order_id, change.changed)?;
        note(writes, open, "status_changed", cause, change.detail);
        open.moved = true;
        tracing::info!(order_id = %open.head.order_id, from = ?t.from, to = %t.to, sequence = open.head.status_sequence, "order status changed");
        if let Some((completed, detail)) = change.completed {
            handlers::emit(cx, open.head.order_id, completed)?;
            note(writes, open, "completed", cause, detail);
        }
    }
    Ok(())
}

/// The status changes the order's facts call for now.
fn advance(
    writes: &mut Writes,
    open: &mut Open,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
    reason: &str,
) -> Result<(), HandlerError> {
    let transitions = domain::decide(Some(open.head.status), &open.facts)
        .map_err(|e| handlers::illegal(open.head.order_id, e))?;
    apply_transitions(writes, open, cx, &transitions, cause, reason)
}

fn stock_reserved(
    open: &mut Open,
    writes: &mut Writes,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
    p: StockReserved,
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
        let detail = format!(
            "Stock reserved in {n} warehouse{} ({n} shipment{} expected): {parts}{}",
            if n == 1 { "" } else { "s" },
            if n == 1 { "" } else { "s" },
            handlers::cancelled_note(&open.head)
        );
        writes.allocations.push(p);
        detail
    } else {
        "Stock reservation reported again; the first allocation stands".to_owned()
    };
    note(writes, open, "stock_reserved", cause, detail.clone());
    advance(writes, open, cx, cause, &detail)
}

fn shipment_requested(
    open: &mut Open,
    writes: &mut Writes,
    cause: &Cause<'_>,
    p: ShipmentRequested,
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
        handlers::cancelled_note(&open.head)
    );
    writes.requests.push(p);
    note(writes, open, "shipment_requested", cause, detail);
}

fn shipment_dispatched(
    open: &mut Open,
    writes: &mut Writes,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
    p: ShipmentDispatched,
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
    note(writes, open, "shipment_dispatched", cause, detail.clone());
    advance(writes, open, cx, cause, &detail)
}

fn shipment_delivered(
    open: &mut Open,
    writes: &mut Writes,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
    p: ShipmentDelivered,
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
    note(writes, open, "shipment_delivered", cause, detail.clone());
    advance(writes, open, cx, cause, &detail)
}
