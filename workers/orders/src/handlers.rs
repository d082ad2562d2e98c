//! The orders worker's message handler: decode, load and lock the order, ask the domain,
//! write, emit, all in the runtime's transaction.
//!
//! The common messages (a new order, `stock.reserved`, `shipment.requested`,
//! `shipment.dispatched`, `shipment.delivered`) are decided a run at a time by
//! [`crate::flow`], alone or together; everything else is handled here one message at a
//! time. Either way every message about an order is handled with the order's row locked
//! (`for update`) under its lock key, so two copies of the worker handling two messages about
//! one order take turns and the status machine sees one consistent set of facts. Everything
//! the handler emits is validated against its contract before it is written to the outbox:
//! orders never publishes a message its consumers would have to dead-letter.
//!
//! Errors, by what the runtime should do:
//! - contract violations → permanent (dead letter with the field); for `order.placed` the
//!   message is also recorded in `rejected_orders` (`HandlerError::Rejected`);
//! - operator and customer requests about an order that does not exist, or that contradict
//!   what already happened → `Rejected` with the reason (recorded, then dead-lettered);
//! - system events (stock, shipments, invoices, notifications) about an order not known yet
//!   → transient: they may have overtaken `order.placed`; the retry budget dead-letters them
//!   with the reason if the order never appears.

use anyhow::anyhow;
use orderly_contracts::messages::{
    Actor, CancellationScope, CancelledLine, CreditNoteIssued, ExceptionResolution, InvoiceIssued,
    ItemException, ItemProblem, LineQuantity, NotificationFailed, NotificationSent,
    OrderCancelRequested, OrderCancelled, OrderCompleted, OrderExceptionResolved, OrderOnHold,
    OrderPlaced, OrderRefundRequested, OrderStatusChanged, ProductUpserted, ShipmentException,
    StockReleased, StockUnavailable,
};
use orderly_contracts::types::{Gtin, OrderStatus, Quantity, Sku, StoreId};
use orderly_contracts::{ContractError, Message, Validate};
use orderly_runtime::{Batch, Handler, HandlerContext, HandlerError, Incoming, LockKey};
use sqlx::PgConnection;
use tracing::Instrument;
use uuid::Uuid;

use crate::domain::{
    self, AddressChange, CancelPlan, Event, Facts, Line, Lookup, Match, OrderHead, RepushPlan,
    ResolutionCheck, Transition, Units,
};
use crate::flow;
use crate::input::{self, FlowInput, OrdersInput, Undecoded};
use crate::locks;
use crate::store::{self, CatalogView, Cause, Closing, Milestone, StoredOrder};

/// The orders worker's handler. Stateless: everything lives in the database.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrdersHandler;

impl OrdersHandler {
    /// The handler.
    pub fn new() -> Self {
        Self
    }
}

use OrdersInput as I;

impl Handler for OrdersHandler {
    type Input = OrdersInput;

    async fn handle(
        &self,
        msg: &Incoming,
        cx: &mut HandlerContext<'_>,
    ) -> Result<(), HandlerError> {
        let input = match input::decode(msg) {
            Ok(input) => input,
            Err(Undecoded::PlacedBroken(e)) => return reject_placed(msg, cx, &e).await,
            Err(Undecoded::Other(e)) => return Err(e.into()),
        };
        let cause = Cause::of(&msg.envelope);
        match input {
            // Alone, a message of the flow is a run of one.
            I::Placed(_)
            | I::StockReserved(_)
            | I::ShipmentRequested(_)
            | I::ShipmentDispatched(_)
            | I::ShipmentDelivered(_) => run_flow(&[msg], &mut cx.as_batch()).await,
            I::CancelRequested(env) => cancel_requested(&env.payload, cx, &cause).await,
            I::RefundRequested(env) => refund_requested(&env.payload, cx, &cause).await,
            I::ExceptionResolved(env) => exception_resolved(&env.payload, cx, &cause).await,
            I::ProductUpserted(env) => product_upserted(&env.payload, cx, &cause).await,
            I::StockUnavailable(env) => stock_unavailable(&env.payload, cx, &cause).await,
            I::StockReleased(env) => stock_released(&env.payload, cx, &cause).await,
            I::ShipmentException(env) => shipment_exception(&env.payload, cx, &cause).await,
            I::InvoiceIssued(env) => invoice_issued(&env.payload, cx, &cause).await,
            I::CreditNoteIssued(env) => credit_note_issued(&env.payload, cx, &cause).await,
            I::NotificationSent(env) => notification_sent(&env.payload, cx, &cause).await,
            I::NotificationFailed(env) => notification_failed(&env.payload, cx, &cause).await,
        }
    }

    /// Consecutive messages of the flow (new orders and the events that carry orders to
    /// completion: nearly all of them) go through [`flow::run`] together; anything else is
    /// handled alone where it arrived, so the batch is handled in arrival order.
    async fn handle_batch(
        &self,
        msgs: &[&Incoming],
        batch: &mut Batch<'_>,
    ) -> Result<(), HandlerError> {
        let mut rest = msgs;
        while let Some(first) = rest.first() {
            let n = rest
                .iter()
                .take_while(|m| FlowInput::of_msg(m).is_some())
                .count();
            if n == 0 {
                batch.handle_one(self, first).await?;
                rest = &rest[1..];
            } else {
                run_flow(&rest[..n], batch).await?;
                rest = &rest[n..];
            }
        }
        Ok(())
    }

    /// The order a message is about (every message here names one, except catalog
    /// upserts), plus for a new order its customer's statistics row: the rows the handler
    /// locks (see [`crate::locks`]).
    async fn lock_keys(
        &self,
        msg: &Incoming,
        conn: &mut PgConnection,
    ) -> Result<Vec<LockKey>, HandlerError> {
        locks::of_batch(&[msg], conn).await
    }

    /// [`OrdersHandler::lock_keys`] of a batch: the business keys of all its `order.placed`
    /// are looked up in one statement.
    async fn batch_lock_keys(
        &self,
        msgs: &[&Incoming],
        conn: &mut PgConnection,
    ) -> Result<Vec<LockKey>, HandlerError> {
        locks::of_batch(msgs, conn).await
    }
}

/// Runs consecutive messages of the flow through [`flow::run`]; a re-push of a known order
/// among them is handled alone where it arrived ([`order_placed_again`]), and the flow goes
/// on with what follows it.
async fn run_flow(msgs: &[&Incoming], batch: &mut Batch<'_>) -> Result<(), HandlerError> {
    let mut rest = msgs;
    while let Some(i) = flow::run(rest, batch).await? {
        let msg = rest[i];
        let I::Placed(env) = msg.input::<OrdersInput>()? else {
            return Err(HandlerError::permanent(
                "the orders flow handed back a message that is not an order.placed",
            ));
        };
        let span = batch.span(msg);
        let cause = Cause::of(&msg.envelope);
        order_placed_again(&env.payload, &mut batch.context(msg), &cause)
            .instrument(span)
            .await?;
        rest = &rest[i + 1..];
    }
    Ok(())
}

/// An `order.placed` that breaks its contract: recorded in `rejected_orders` with the
/// field and the reason, then rejected.
async fn reject_placed(
    msg: &Incoming,
    cx: &mut HandlerContext<'_>,
    err: &ContractError,
) -> Result<(), HandlerError> {
    store::record_rejected(cx.conn, &msg.envelope, err).await?;
    tracing::warn!(error = %err, "order.placed rejected");
    Err(HandlerError::rejected(format!("contract violation: {err}")))
}

// ---------------------------------------------------------------------------------------------
// Shared steps
// ---------------------------------------------------------------------------------------------

/// Validates `payload` and writes it to the outbox, correlated with the order.
pub(crate) fn emit<P: Message + Validate>(
    cx: &mut HandlerContext<'_>,
    order_id: Uuid,
    payload: P,
) -> Result<(), HandlerError> {
    cx.emit_valid(order_id.to_string(), payload)?;
    Ok(())
}

/// Text for a field limited to `max` characters.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

fn actor(a: &Actor) -> String {
    match &a.id {
        Some(id) => format!("{} {id}", a.kind),
        None => a.kind.to_string(),
    }
}

pub(crate) fn illegal(order_id: Uuid, e: domain::IllegalTransition) -> HandlerError {
    HandlerError::permanent(format!("order {order_id}: {e}"))
}

/// What one status change sends and notes: `order.status_changed` with its timeline
/// detail, and on reaching `completed` also `order.completed` with its own.
pub(crate) struct StatusChange {
    /// `order.status_changed`.
    pub changed: OrderStatusChanged,
    /// Its timeline detail.
    pub detail: String,
    /// `order.completed` and its timeline detail.
    pub completed: Option<(OrderCompleted, String)>,
}

/// Moves `head` by `t` (next sequence number) and says what that sends and notes.
/// `invoice_numbers`: the order's, for `order.completed`.
pub(crate) fn status_change(
    head: &mut OrderHead,
    t: &Transition,
    reason: &str,
    invoice_numbers: &[String],
) -> StatusChange {
    head.status_sequence += 1;
    head.status = t.to;
    let why = if t.to == OrderStatus::Completed {
        "Every shipment delivered".to_owned()
    } else {
        clip(reason, 1000)
    };
    let detail = match t.from {
        Some(from) => format!(
            "Status {from} → {} (change #{}): {why}",
            t.to, head.status_sequence
        ),
        None => format!("Status {} (change #{}): {why}", t.to, head.status_sequence),
    };
    let changed = OrderStatusChanged {
        order_id: head.order_id,
        store_id: head.store_id.clone(),
        channel: head.channel,
        marketplace: head.marketplace.clone(),
        external_order_id: head.external_order_id.clone(),
        from: t.from,
        to: t.to,
        sequence: head.status_sequence,
        reason: Some(why),
        customer: head.contact(),
    };
    let completed = (t.to == OrderStatus::Completed).then(|| {
        let detail = if invoice_numbers.is_empty() {
            "Completed: every shipment delivered (no invoice known yet)".to_owned()
        } else {
            format!(
                "Completed: every shipment delivered; invoices {}",
                invoice_numbers.join(", ")
            )
        };
        let completed = OrderCompleted {
            order_id: head.order_id,
            store_id: head.store_id.clone(),
            channel: head.channel,
            marketplace: head.marketplace.clone(),
            external_order_id: head.external_order_id.clone(),
            currency: head.currency,
            total: head.total,
            invoice_numbers: invoice_numbers.to_vec(),
        };
        (completed, detail)
    });
    StatusChange {
        changed,
        detail,
        completed,
    }
}

/// Applies status changes: stores each with the next sequence number, emits
/// `order.status_changed`, writes the timeline, and completes the order when it gets there.
async fn apply_transitions(
    cx: &mut HandlerContext<'_>,
    head: &mut OrderHead,
    transitions: &[Transition],
    cause: &Cause<'_>,
    reason: &str,
) -> Result<(), HandlerError> {
    let invoice_numbers = if transitions.iter().any(|t| t.to == OrderStatus::Completed) {
        store::invoice_numbers(cx.conn, head.order_id).await?
    } else {
        Vec::new()
    };
    for t in transitions {
        let change = status_change(head, t, reason, &invoice_numbers);
        emit(cx, head.order_id, change.changed)?;
        store::set_status(
            cx.conn,
            head.order_id,
            t.to,
            head.status_sequence,
            cause,
            &change.detail,
        )
        .await?;
        tracing::info!(order_id = %head.order_id, from = ?t.from, to = %t.to, sequence = head.status_sequence, "order status changed");
        if let Some((completed, detail)) = change.completed {
            emit(cx, head.order_id, completed)?;
            store::add_timeline(cx.conn, head.order_id, "completed", cause, &detail).await?;
        }
    }
    Ok(())
}

/// Computes and applies the status changes `facts` call for.
async fn advance(
    cx: &mut HandlerContext<'_>,
    head: &mut OrderHead,
    facts: &Facts,
    cause: &Cause<'_>,
    reason: &str,
) -> Result<(), HandlerError> {
    let transitions =
        domain::decide(Some(head.status), facts).map_err(|e| illegal(head.order_id, e))?;
    apply_transitions(cx, head, &transitions, cause, reason).await
}

/// Matches lines to the catalog (by SKU, or by GTIN then remembered mappings), setting
/// `matched` on each line that matched; returns the unmatched ones (index, problem, SKU).
async fn match_lines(
    cx: &mut HandlerContext<'_>,
    store_id: &StoreId,
    lines: &mut [Line],
) -> Result<Vec<(usize, ItemProblem, Option<Sku>)>, HandlerError> {
    let of_store: Vec<(&StoreId, &Line)> = lines.iter().map(|l| (store_id, l)).collect();
    let catalog = store::catalog_view(cx.conn, &of_store).await?;
    Ok(match_against(&catalog, store_id, lines))
}

/// [`match_lines`] against a catalog already read.
pub(crate) fn match_against(
    catalog: &CatalogView,
    store_id: &StoreId,
    lines: &mut [Line],
) -> Vec<(usize, ItemProblem, Option<Sku>)> {
    let mut unmatched = Vec::new();
    for (i, line) in lines.iter_mut().enumerate() {
        let gtin14 = line.gtin.as_ref().map(Gtin::to_gtin14);
        let mapping = gtin14.as_ref().and_then(|g| {
            catalog
                .mappings
                .get(&(store_id.as_str().to_owned(), g.clone()))
        });
        let lookup = Lookup {
            by_sku: line
                .requested_sku
                .as_ref()
                .and_then(|s| catalog.products.get(s.as_str())),
            by_gtin: gtin14
                .as_ref()
                .and_then(|g| catalog.by_gtin.get(g))
                .map_or(&[], Vec::as_slice),
            mapping: mapping.map(|sku| (sku, catalog.products.get(sku.as_str()))),
        };
        match domain::match_line(line, &lookup) {
            Match::Matched(m) => line.matched = Some(m),
            Match::Unmatched { problem, sku } => {
                line.matched = None;
                if line.open() > 0 {
                    unmatched.push((i, problem, sku));
                }
            }
        }
    }
    unmatched
}

/// The exceptions a new order raises for its unmatched lines.
pub(crate) fn exceptions_for(
    lines: &[Line],
    unmatched: &[(usize, ItemProblem, Option<Sku>)],
) -> Vec<ItemException> {
    unmatched
        .iter()
        .map(|(i, problem, sku)| raise(&lines[*i], *problem, sku.clone()))
        .collect()
}

/// A new exception for `line`.
fn raise(line: &Line, problem: ItemProblem, sku: Option<Sku>) -> ItemException {
    ItemException {
        exception_id: Uuid::now_v7(),
        line_id: line.line_id.clone(),
        sku,
        gtin: line.gtin.clone(),
        title: line.title.clone(),
        problem,
    }
}

pub(crate) fn describe_exceptions(exceptions: &[ItemException]) -> String {
    exceptions
        .iter()
        .map(|e| {
            let id = match (&e.sku, &e.gtin) {
                (_, Some(g)) => format!("GTIN {g}"),
                (Some(s), None) => format!("SKU {s}"),
                (None, None) => "no identifier".to_owned(),
            };
            format!("line {} ({id}, “{}”): {}", e.line_id, e.title, e.problem)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Sends `order.on_hold` with the order's open exceptions.
pub(crate) fn emit_on_hold(
    cx: &mut HandlerContext<'_>,
    head: &OrderHead,
    exceptions: Vec<ItemException>,
) -> Result<(), HandlerError> {
    emit(
        cx,
        head.order_id,
        OrderOnHold {
            order_id: head.order_id,
            store_id: head.store_id.clone(),
            channel: head.channel,
            marketplace: head.marketplace.clone(),
            external_order_id: head.external_order_id.clone(),
            revision: head.revision,
            exceptions,
        },
    )
}

/// Accepts an order on hold once no exception is open: sends `order.accepted` (built from the
/// stored lines) and moves the status. Does nothing while exceptions remain.
async fn try_accept(
    cx: &mut HandlerContext<'_>,
    head: &mut OrderHead,
    facts: &mut Facts,
    cause: &Cause<'_>,
    reason: &str,
) -> Result<(), HandlerError> {
    if head.status != OrderStatus::OnHold || facts.cancelled {
        return Ok(());
    }
    if !store::open_exceptions(cx.conn, head.order_id)
        .await?
        .is_empty()
    {
        return Ok(());
    }
    let lines = store::load_lines(cx.conn, head.order_id).await?;
    let accepted = domain::accepted_order(head, &lines).map_err(|e| {
        HandlerError::permanent(format!("order {} cannot be accepted: {e}", head.order_id))
    })?;
    let summary = accepted
        .lines
        .iter()
        .map(|l| format!("{} → {} × {}", l.line_id, l.sku, l.quantity))
        .collect::<Vec<_>>()
        .join(", ");
    emit(cx, head.order_id, accepted)?;
    facts.apply(&Event::Accepted);
    store::mark(cx.conn, head.order_id, Milestone::Accepted).await?;
    store::add_timeline(
        cx.conn,
        head.order_id,
        "accepted",
        cause,
        &format!("Accepted ({reason}): {summary}"),
    )
    .await?;
    advance(cx, head, facts, cause, reason).await
}

/// Carries out a cancellation plan: records the cancelled units, sends `order.cancelled`,
/// closes exceptions of lines that are gone, and then either ends the order (whole scope)
/// or, for an order on hold, accepts it if nothing else blocks it.
#[allow(clippy::too_many_arguments)]
async fn apply_cancellation(
    cx: &mut HandlerContext<'_>,
    head: &mut OrderHead,
    facts: &mut Facts,
    lines: &[Line],
    plan: &CancelPlan,
    request_id: Option<Uuid>,
    reason: &str,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let Some(scope) = plan.scope else {
        return Ok(());
    };
    store::add_cancelled(cx.conn, head.order_id, &plan.lines).await?;
    emit(
        cx,
        head.order_id,
        OrderCancelled {
            order_id: head.order_id,
            store_id: head.store_id.clone(),
            channel: head.channel,
            marketplace: head.marketplace.clone(),
            external_order_id: head.external_order_id.clone(),
            request_id,
            scope,
            lines: plan.lines.clone(),
            reason: clip(reason, 1000),
        },
    )?;
    match scope {
        CancellationScope::Order => {
            store::resolve_open_exceptions(
                cx.conn,
                head.order_id,
                None,
                Closing {
                    resolution: ExceptionResolution::CancelOrder,
                    sku: None,
                    remember: false,
                    by: Some("system"),
                    note: Some("the order was cancelled"),
                },
            )
            .await?;
            facts.apply(&Event::Cancelled);
            store::mark(cx.conn, head.order_id, Milestone::Cancelled).await?;
            advance(cx, head, facts, cause, &format!("Cancelled: {reason}")).await
        }
        CancellationScope::Lines => {
            let gone: Vec<String> = lines
                .iter()
                .filter(|l| {
                    let now = plan
                        .lines
                        .iter()
                        .filter(|c| c.line_id == l.line_id)
                        .map(|c| c.quantity.get())
                        .sum::<u32>();
                    now > 0 && l.open() <= now
                })
                .map(|l| l.line_id.clone())
                .collect();
            if !gone.is_empty() {
                store::resolve_open_exceptions(
                    cx.conn,
                    head.order_id,
                    Some(&gone),
                    Closing {
                        resolution: ExceptionResolution::RemoveLine,
                        sku: None,
                        remember: false,
                        by: Some("system"),
                        note: Some("the line was cancelled"),
                    },
                )
                .await?;
            }
            try_accept(cx, head, facts, cause, "the remaining lines are matched").await
        }
    }
}

/// Loads and locks an order a system event is about. Unknown → transient (the event may
/// have overtaken `order.placed`); another store → permanent.
async fn known_order(
    cx: &mut HandlerContext<'_>,
    order_id: Uuid,
    store_id: Option<&StoreId>,
    what: &str,
) -> Result<(StoredOrder, Facts), HandlerError> {
    let Some(stored) = store::lock_order(cx.conn, order_id).await? else {
        return Err(HandlerError::transient(anyhow!(
            "order {order_id} is not known (yet): this {what} may have overtaken its order.placed"
        )));
    };
    if let Some(store_id) = store_id
        && stored.head.store_id != *store_id
    {
        return Err(HandlerError::permanent(format!(
            "order {order_id} belongs to store {}, but the {what} names store {store_id}",
            stored.head.store_id
        )));
    }
    let facts = store::load_facts(cx.conn, &stored).await?;
    Ok((stored, facts))
}

// ---------------------------------------------------------------------------------------------
// order.placed
// ---------------------------------------------------------------------------------------------

/// A re-push of a known order (an `order.placed` the flow does not decide).
pub(crate) async fn order_placed_again(
    placed: &OrderPlaced,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    match store::lock_order_by_key(
        cx.conn,
        &placed.store_id,
        placed.channel,
        &placed.external_order_id,
    )
    .await?
    {
        Some(stored) => repush(cx, cause, stored, placed).await,
        None => Err(HandlerError::transient(anyhow!(
            "order {} ({}, {}) was taken for a re-push but is not stored",
            placed.external_order_id,
            placed.channel,
            placed.store_id
        ))),
    }
}

async fn repush(
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
    stored: StoredOrder,
    placed: &OrderPlaced,
) -> Result<(), HandlerError> {
    let mut facts = store::load_facts(cx.conn, &stored).await?;
    let mut head = stored.head;
    let order_id = head.order_id;
    let lines = store::load_lines(cx.conn, order_id).await?;
    match domain::plan_repush(&head, &lines, &facts, placed) {
        RepushPlan::Duplicate => {
            tracing::info!(%order_id, revision = placed.revision, "duplicate re-push ignored");
            store::add_timeline(
                cx.conn,
                order_id,
                "duplicate_repush",
                cause,
                &format!(
                    "Duplicate re-push ignored: revision {} (the order is at revision {})",
                    placed.revision, head.revision
                ),
            )
            .await?;
            Ok(())
        }
        RepushPlan::Closed => {
            store::update_revision(cx.conn, order_id, placed.revision, None).await?;
            store::add_timeline(
                cx.conn,
                order_id,
                "revision_ignored",
                cause,
                &format!(
                    "Revision {} received for a {} order: nothing applied",
                    placed.revision, head.status
                ),
            )
            .await?;
            Ok(())
        }
        RepushPlan::Replace => {
            replace_on_hold(cx, cause, &mut head, &mut facts, lines, placed).await
        }
        RepushPlan::Amend(a) => {
            let mut notes = Vec::new();
            match &a.addresses {
                AddressChange::Unchanged => {}
                AddressChange::Apply => {
                    store::update_addresses(
                        cx.conn,
                        order_id,
                        &placed.billing_address,
                        &placed.shipping_address,
                    )
                    .await?;
                    head.billing_address = placed.billing_address.clone();
                    head.shipping_address = placed.shipping_address.clone();
                    notes.push("addresses updated".to_owned());
                }
                AddressChange::Refused(why) => notes.push(why.clone()),
            }
            if a.payment_changed {
                notes.push(format!("payment now {}", placed.payment.status));
            }
            store::update_revision(
                cx.conn,
                order_id,
                placed.revision,
                a.payment_changed.then_some(&placed.payment),
            )
            .await?;
            let previous = head.revision;
            head.revision = placed.revision;
            let plan = (!a.reductions.is_empty()).then(|| {
                domain::plan_cancellation(head.status, &lines, &facts, Some(&a.reductions))
            });
            if let Some(plan) = &plan {
                notes.push(plan.describe());
            }
            if !a.refused.is_empty() {
                notes.push(format!("refused: {}", a.refused.join("; ")));
            }
            if !a.ignored.is_empty() {
                notes.push(format!("not applied: {}", a.ignored.join("; ")));
            }
            if notes.is_empty() {
                notes.push("no changes".to_owned());
            }
            store::add_timeline(
                cx.conn,
                order_id,
                "revision_applied",
                cause,
                &format!(
                    "Revision {} (was {previous}) applied as commands: {}",
                    placed.revision,
                    notes.join("; ")
                ),
            )
            .await?;
            if let Some(plan) = plan {
                let source = head
                    .marketplace
                    .clone()
                    .unwrap_or_else(|| head.channel.to_string());
                let reason = format!(
                    "{source} revision {} no longer orders these units",
                    placed.revision
                );
                apply_cancellation(
                    cx, &mut head, &mut facts, &lines, &plan, None, &reason, cause,
                )
                .await?;
            }
            Ok(())
        }
    }
}

/// A higher revision of an order on hold replaces it: nothing was reserved or accepted yet.
async fn replace_on_hold(
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
    head: &mut OrderHead,
    facts: &mut Facts,
    old_lines: Vec<Line>,
    placed: &OrderPlaced,
) -> Result<(), HandlerError> {
    let order_id = head.order_id;
    let previous = head.revision;
    head.replace_with(placed);
    store::replace_order(cx.conn, head).await?;
    let mut lines: Vec<Line> = placed
        .lines
        .iter()
        .map(|l| {
            let mut line = Line::from_placed(l);
            // Units cancelled earlier (a request, an operator) stay cancelled.
            if let Some(old) = old_lines.iter().find(|o| o.line_id == line.line_id) {
                line.cancelled = old.cancelled.min(line.quantity);
            }
            line
        })
        .collect();
    let mut unmatched = Vec::new();
    for (i, problem, sku) in match_lines(cx, &head.store_id, &mut lines).await? {
        let carried = old_lines
            .iter()
            .find(|o| o.line_id == lines[i].line_id)
            .is_some_and(|old| domain::carry_over_match(old, &mut lines[i]));
        if !carried {
            unmatched.push((i, problem, sku));
        }
    }
    store::delete_lines(cx.conn, order_id).await?;
    store::insert_lines(cx.conn, order_id, &lines).await?;
    let open = store::open_exceptions(cx.conn, order_id).await?;
    let candidates: Vec<(Line, ItemProblem, Option<Sku>)> = unmatched
        .iter()
        .map(|(i, p, s)| (lines[*i].clone(), *p, s.clone()))
        .collect();
    let plan = domain::reconcile_exceptions(&store::as_open(&open), &candidates);
    store::supersede_exceptions(cx.conn, &plan.supersede).await?;
    let raised: Vec<ItemException> = plan
        .raise
        .iter()
        .filter_map(|i| candidates.get(*i))
        .map(|(line, problem, sku)| raise(line, *problem, sku.clone()))
        .collect();
    store::insert_exceptions(cx.conn, order_id, &raised).await?;
    let still_open = store::open_exceptions(cx.conn, order_id).await?;
    store::add_timeline(
        cx.conn,
        order_id,
        "revision_applied",
        cause,
        &format!(
            "Revision {} replaces revision {previous} (the order was on hold): {} lines; {} exception(s) open, {} superseded",
            head.revision,
            lines.len(),
            still_open.len(),
            plan.supersede.len()
        ),
    )
    .await?;
    if lines.iter().all(|l| l.open() == 0) {
        // Everything this revision orders was cancelled earlier: the order ends.
        let cancelled: Vec<CancelledLine> = lines
            .iter()
            .filter_map(|l| {
                Some(CancelledLine {
                    line_id: l.line_id.clone(),
                    sku: l.sku().cloned(),
                    quantity: Quantity::new(l.cancelled).ok()?,
                })
            })
            .collect();
        let plan = CancelPlan {
            scope: Some(CancellationScope::Order),
            lines: cancelled,
            refused: Vec::new(),
        };
        let reason = format!(
            "revision {} orders nothing that was not cancelled already",
            head.revision
        );
        return apply_cancellation(cx, head, facts, &[], &plan, None, &reason, cause).await;
    }
    if still_open.is_empty() {
        try_accept(cx, head, facts, cause, "a new revision matched every line").await
    } else {
        emit_on_hold(cx, head, still_open)
    }
}

// ---------------------------------------------------------------------------------------------
// Requests: cancellation, refund, exception resolution
// ---------------------------------------------------------------------------------------------

/// A cancel or refund request whose id already has a final outcome: noted on the order's
/// timeline, nothing else. A rejected one is judged again (its cause may be fixed).
async fn seen_before(
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
    prev: Option<store::RequestOutcome>,
    kind: &str,
    what: &str,
    request_id: Uuid,
) -> Result<bool, HandlerError> {
    let Some(prev) = prev.filter(|p| p.outcome != "rejected") else {
        return Ok(false);
    };
    if let Some(order_id) = prev.order_id {
        let detail = format!(
            "{what} request {request_id} received again; already handled ({})",
            prev.outcome
        );
        store::add_timeline(cx.conn, order_id, kind, cause, &detail).await?;
    }
    Ok(true)
}

#[tracing::instrument(skip_all, fields(message_id = %cause.message_id))]
async fn cancel_requested(
    p: &OrderCancelRequested,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let prev = store::cancellation_outcome(cx.conn, p.request_id).await?;
    if seen_before(
        cx,
        cause,
        prev,
        "cancel_duplicate",
        "Cancellation",
        p.request_id,
    )
    .await?
    {
        return Ok(());
    }
    let stored = match (
        &p.order.order_id,
        &p.order.channel,
        &p.order.external_order_id,
    ) {
        (Some(id), _, _) => store::lock_order(cx.conn, *id).await?,
        (None, Some(channel), Some(ext)) => {
            store::lock_order_by_key(cx.conn, &p.store_id, *channel, ext).await?
        }
        _ => None,
    };
    let Some(stored) = stored else {
        let why = format!(
            "no order {} in store {}",
            describe_ref(&p.order),
            p.store_id
        );
        store::record_cancellation(cx.conn, cause.message_id, p, None, "rejected", Some(&why))
            .await?;
        return Err(HandlerError::rejected(format!(
            "cancellation refused: {why}"
        )));
    };
    if stored.head.store_id != p.store_id {
        let why = format!(
            "order {} belongs to store {}, the request names store {}",
            stored.head.order_id, stored.head.store_id, p.store_id
        );
        store::record_cancellation(cx.conn, cause.message_id, p, None, "rejected", Some(&why))
            .await?;
        return Err(HandlerError::rejected(format!(
            "cancellation refused: {why}"
        )));
    }
    let mut facts = store::load_facts(cx.conn, &stored).await?;
    let mut head = stored.head;
    let order_id = head.order_id;
    let lines = store::load_lines(cx.conn, order_id).await?;
    let plan = domain::plan_cancellation(head.status, &lines, &facts, p.lines.as_deref());
    let outcome = plan.outcome();
    tracing::info!(%order_id, outcome, "cancellation requested");
    let asked = match &p.lines {
        None => "the whole order".to_owned(),
        Some(l) => l
            .iter()
            .map(|q| format!("line {} × {}", q.line_id, q.quantity))
            .collect::<Vec<_>>()
            .join(", "),
    };
    store::add_timeline(
        cx.conn,
        order_id,
        if plan.scope.is_some() {
            "cancellation"
        } else {
            "cancellation_refused"
        },
        cause,
        &format!(
            "Cancellation of {asked} requested by {}: “{}” → {}",
            actor(&p.requested_by),
            p.reason,
            plan.describe()
        ),
    )
    .await?;
    let refused = (!plan.refused.is_empty()).then(|| plan.refused.join("; "));
    store::record_cancellation(
        cx.conn,
        cause.message_id,
        p,
        Some(order_id),
        outcome,
        refused.as_deref(),
    )
    .await?;
    let reason = format!("{} ({})", p.reason, actor(&p.requested_by));
    apply_cancellation(
        cx,
        &mut head,
        &mut facts,
        &lines,
        &plan,
        Some(p.request_id),
        &reason,
        cause,
    )
    .await
}

fn describe_ref(r: &orderly_contracts::messages::OrderRef) -> String {
    match (&r.order_id, &r.channel, &r.external_order_id) {
        (Some(id), _, _) => id.to_string(),
        (None, Some(c), Some(e)) => format!("{e} ({c})"),
        _ => "(unnamed)".to_owned(),
    }
}

#[tracing::instrument(skip_all, fields(message_id = %cause.message_id))]
async fn refund_requested(
    p: &OrderRefundRequested,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let prev = store::refund_outcome(cx.conn, p.request_id).await?;
    if seen_before(cx, cause, prev, "refund_duplicate", "Refund", p.request_id).await? {
        return Ok(());
    }
    let stored = store::lock_order(cx.conn, p.order_id).await?;
    let why = match &stored {
        None => Some(format!("no order {} in store {}", p.order_id, p.store_id)),
        Some(s) if s.head.store_id != p.store_id => Some(format!(
            "order {} belongs to store {}, the request names store {}",
            p.order_id, s.head.store_id, p.store_id
        )),
        Some(_) => None,
    };
    if let Some(why) = why {
        store::record_refund(cx.conn, cause.message_id, p, "rejected", Some(&why)).await?;
        return Err(HandlerError::rejected(format!("refund refused: {why}")));
    }
    let order_id = p.order_id;
    let lines = store::load_lines(cx.conn, order_id).await?;
    let plan = domain::plan_refund(&lines, &p.lines);
    store::add_refunded(cx.conn, order_id, &plan.accepted).await?;
    let outcome = plan.outcome(p.refund_shipping);
    let mut what: Vec<String> = plan
        .accepted
        .iter()
        .map(|(l, q)| format!("line {l} × {q}"))
        .collect();
    if p.refund_shipping {
        what.push("shipping".to_owned());
    }
    let mut detail = format!(
        "Refund requested by {}: “{}” → recorded {} (invoicing issues the credit note)",
        actor(&p.requested_by),
        p.reason,
        if what.is_empty() {
            "nothing".to_owned()
        } else {
            what.join(", ")
        }
    );
    if !plan.refused.is_empty() {
        detail.push_str(&format!("; refused: {}", plan.refused.join("; ")));
    }
    store::add_timeline(
        cx.conn,
        order_id,
        if plan.refused.is_empty() {
            "refund"
        } else {
            "refund_refused"
        },
        cause,
        &detail,
    )
    .await?;
    let refused = (!plan.refused.is_empty()).then(|| plan.refused.join("; "));
    store::record_refund(cx.conn, cause.message_id, p, outcome, refused.as_deref()).await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(message_id = %cause.message_id))]
async fn exception_resolved(
    p: &OrderExceptionResolved,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    resolve_exception(p, cx, cause).await
}

/// Applies a resolution of an order item exception, from an operator or from the catalog.
async fn resolve_exception(
    p: &OrderExceptionResolved,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let Some(record) = store::find_exception(cx.conn, p.exception_id).await? else {
        return Err(HandlerError::permanent(format!(
            "no order item exception {} (order {})",
            p.exception_id, p.order_id
        )));
    };
    if record.order_id != p.order_id {
        return Err(HandlerError::permanent(format!(
            "exception {} belongs to order {}, not {}",
            p.exception_id, record.order_id, p.order_id
        )));
    }
    let Some(stored) = store::lock_order(cx.conn, p.order_id).await? else {
        return Err(HandlerError::permanent(format!("no order {}", p.order_id)));
    };
    if stored.head.store_id != p.store_id {
        return Err(HandlerError::permanent(format!(
            "order {} belongs to store {}, the resolution names store {}",
            p.order_id, stored.head.store_id, p.store_id
        )));
    }
    let mut facts = store::load_facts(cx.conn, &stored).await?;
    let mut head = stored.head;
    let order_id = head.order_id;
    // Re-read under the order's lock: a concurrent resolution may have closed it.
    let record = store::find_exception(cx.conn, p.exception_id)
        .await?
        .unwrap_or(record);
    let by = actor(&p.resolved_by);
    let note = p
        .note
        .as_deref()
        .map(|n| format!(" — “{n}”"))
        .unwrap_or_default();
    let check = domain::check_resolution(
        record.status()?,
        record.resolution()?,
        record.resolved_sku()?.as_ref(),
        p.resolution,
        p.sku.as_ref(),
    );
    match check {
        ResolutionCheck::AlreadyApplied => {
            store::add_timeline(
                cx.conn,
                order_id,
                "exception_duplicate",
                cause,
                &format!(
                    "Resolution of the exception on line {} by {by} received again; already applied",
                    record.line_id
                ),
            )
            .await?;
            return Ok(());
        }
        ResolutionCheck::Refuse(why) => {
            store::add_timeline(
                cx.conn,
                order_id,
                "exception_refused",
                cause,
                &format!(
                    "Resolution of the exception on line {} by {by} refused: {why}",
                    record.line_id
                ),
            )
            .await?;
            return Err(HandlerError::rejected(format!(
                "exception {}: {why}",
                p.exception_id
            )));
        }
        ResolutionCheck::Apply => {}
    }
    let lines = store::load_lines(cx.conn, order_id).await?;
    let Some(line) = lines.iter().find(|l| l.line_id == record.line_id).cloned() else {
        return Err(HandlerError::permanent(format!(
            "exception {} names line {}, which order {order_id} does not have",
            p.exception_id, record.line_id
        )));
    };
    let operator = p.resolved_by.id.as_deref();
    match p.resolution {
        ExceptionResolution::MapToSku => {
            let Some(sku) = p.sku.as_ref() else {
                return Err(HandlerError::permanent("map_to_sku without a SKU"));
            };
            let product = store::product(cx.conn, sku).await?;
            let matched =
                match domain::resolve_to(sku, product.as_ref(), line.requested_tax_category) {
                    Ok(m) => m,
                    Err(why) => {
                        store::add_timeline(
                            cx.conn,
                            order_id,
                            "exception_refused",
                            cause,
                            &format!(
                                "Mapping {} to SKU {sku} by {by} refused: {why}",
                                line.describe()
                            ),
                        )
                        .await?;
                        return Err(HandlerError::rejected(format!(
                            "exception {}: {why}",
                            p.exception_id
                        )));
                    }
                };
            store::set_line_match(cx.conn, order_id, &line.line_id, &matched).await?;
            let remembered = match (&line.gtin, p.remember_mapping) {
                (Some(gtin), true) => {
                    store::remember_mapping(cx.conn, &head.store_id, gtin, sku, operator).await?;
                    format!(
                        " (GTIN {gtin} → {sku} remembered for store {})",
                        head.store_id
                    )
                }
                (None, true) => " (nothing to remember: the line has no GTIN)".to_owned(),
                (_, false) => String::new(),
            };
            store::resolve_exception(
                cx.conn,
                p.exception_id,
                Closing {
                    resolution: p.resolution,
                    sku: Some(sku),
                    remember: p.remember_mapping,
                    by: operator,
                    note: p.note.as_deref(),
                },
            )
            .await?;
            store::add_timeline(
                cx.conn,
                order_id,
                "exception_resolved",
                cause,
                &format!(
                    "Exception on {} resolved by {by}: mapped to SKU {sku}{remembered}{note}",
                    line.describe()
                ),
            )
            .await?;
            try_accept(
                cx,
                &mut head,
                &mut facts,
                cause,
                &format!("the last exception was resolved by {by}"),
            )
            .await
        }
        ExceptionResolution::RemoveLine | ExceptionResolution::CancelOrder => {
            store::resolve_exception(
                cx.conn,
                p.exception_id,
                Closing {
                    resolution: p.resolution,
                    sku: None,
                    remember: false,
                    by: operator,
                    note: p.note.as_deref(),
                },
            )
            .await?;
            let request = (p.resolution == ExceptionResolution::RemoveLine)
                .then(|| {
                    Quantity::new(line.open()).ok().map(|quantity| {
                        vec![LineQuantity {
                            line_id: line.line_id.clone(),
                            quantity,
                        }]
                    })
                })
                .flatten();
            let plan = match (&request, p.resolution) {
                (Some(r), _) => domain::plan_cancellation(head.status, &lines, &facts, Some(r)),
                (None, ExceptionResolution::CancelOrder) => {
                    domain::plan_cancellation(head.status, &lines, &facts, None)
                }
                (None, _) => CancelPlan {
                    scope: None,
                    lines: Vec::new(),
                    refused: vec!["nothing left on the line".to_owned()],
                },
            };
            store::add_timeline(
                cx.conn,
                order_id,
                "exception_resolved",
                cause,
                &format!(
                    "Exception on {} resolved by {by}: {} → {}{note}",
                    line.describe(),
                    p.resolution,
                    plan.describe()
                ),
            )
            .await?;
            let reason = match p.resolution {
                ExceptionResolution::RemoveLine => {
                    format!("line {} removed by {by}", line.line_id)
                }
                _ => format!("order cancelled by {by} while resolving an exception"),
            };
            let reason = match &p.note {
                Some(n) => format!("{reason}: {n}"),
                None => reason,
            };
            apply_cancellation(
                cx, &mut head, &mut facts, &lines, &plan, None, &reason, cause,
            )
            .await?;
            // A removed line that cancelled nothing (already gone) may still unblock the order.
            try_accept(
                cx,
                &mut head,
                &mut facts,
                cause,
                "the remaining lines are matched",
            )
            .await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The catalog
// ---------------------------------------------------------------------------------------------

async fn product_upserted(
    p: &ProductUpserted,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let applied = store::upsert_product(cx.conn, p).await?;
    tracing::debug!(sku = %p.sku, applied, "catalog product upserted");
    if !applied || !p.active {
        return Ok(());
    }
    // Orders held because this product was unknown (or inactive) when they came in: the
    // catalog now answers what an operator would have, so their lines are matched now, each
    // through the same path as an operator's resolution (checks, timeline, and the order
    // proceeding once nothing is open). A line the checks refuse stays held, with the reason
    // on its timeline.
    let gtins: Vec<String> = p.gtins.iter().map(Gtin::to_gtin14).collect();
    for (exception_id, order_id, store_id) in
        store::open_exceptions_for_product(cx.conn, p.sku.as_str(), &gtins).await?
    {
        let resolution = OrderExceptionResolved {
            order_id,
            store_id: StoreId::parse(&store_id)
                .map_err(|e| HandlerError::transient(anyhow!("stored store id {store_id}: {e}")))?,
            exception_id,
            resolution: ExceptionResolution::MapToSku,
            sku: Some(p.sku.clone()),
            remember_mapping: false,
            resolved_by: Actor {
                kind: orderly_contracts::messages::ActorKind::System,
                id: Some("catalog".to_owned()),
            },
            note: Some(format!("the catalog published {}", p.sku)),
        };
        match resolve_exception(&resolution, cx, cause).await {
            Ok(()) => tracing::info!(%order_id, sku = %p.sku, "held line matched by the catalog"),
            Err(HandlerError::Rejected(why)) => {
                tracing::info!(%order_id, %why, "held line still held");
            }
            Err(other) => return Err(other),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Stock
// ---------------------------------------------------------------------------------------------

pub(crate) fn cancelled_note(head: &OrderHead) -> &'static str {
    if head.status == OrderStatus::Cancelled {
        " — the order is already cancelled"
    } else {
        ""
    }
}

#[tracing::instrument(skip_all, fields(message_id = %cause.message_id))]
async fn stock_unavailable(
    p: &StockUnavailable,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let (stored, mut facts) =
        known_order(cx, p.order_id, Some(&p.store_id), "stock.unavailable").await?;
    let mut head = stored.head;
    if facts.apply(&Event::StockUnavailable) {
        store::mark(cx.conn, head.order_id, Milestone::Backordered).await?;
    }
    let shortages = p
        .shortages
        .iter()
        .map(|s| {
            format!(
                "line {} ({}) needs {}, {} available",
                s.line_id, s.sku, s.requested, s.available
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let detail = format!(
        "Stock unavailable: {shortages}; {}{}",
        if p.backordered {
            "backordered, waiting for stock"
        } else {
            "not backordered: an operator has to cancel the order or bring stock"
        },
        cancelled_note(&head)
    );
    store::add_timeline(cx.conn, head.order_id, "stock_unavailable", cause, &detail).await?;
    advance(cx, &mut head, &facts, cause, &detail).await
}

#[tracing::instrument(skip_all, fields(message_id = %cause.message_id))]
async fn stock_released(
    p: &StockReleased,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let (stored, mut facts) =
        known_order(cx, p.order_id, Some(&p.store_id), "stock.released").await?;
    let mut head = stored.head;
    let units: Vec<Units> = p
        .lines
        .iter()
        .map(|l| Units {
            warehouse_id: l.warehouse_id.to_string(),
            line_id: l.line_id.clone(),
            quantity: l.quantity.get(),
        })
        .collect();
    if facts.apply(&Event::StockReleased(units)) {
        store::record_releases(cx.conn, head.order_id, p).await?;
    }
    let what = p
        .lines
        .iter()
        .map(|l| {
            format!(
                "{}: line {} ({}) × {}",
                l.warehouse_id, l.line_id, l.sku, l.quantity
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let detail = format!("Stock released ({}): {what}", p.reason);
    store::add_timeline(cx.conn, head.order_id, "stock_released", cause, &detail).await?;
    advance(cx, &mut head, &facts, cause, &detail).await
}

// ---------------------------------------------------------------------------------------------
// Shipments
// ---------------------------------------------------------------------------------------------

#[tracing::instrument(skip_all, fields(message_id = %cause.message_id))]
async fn shipment_exception(
    p: &ShipmentException,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let (stored, _facts) =
        known_order(cx, p.order_id, Some(&p.store_id), "shipment.exception").await?;
    store::record_shipment_exception(cx.conn, p).await?;
    let detail = format!(
        "Shipment {} ({}, tracking {}): {} (carrier says “{}”){}",
        p.shipment_id,
        p.carrier.to_uppercase(),
        p.tracking_number,
        p.status,
        p.raw_status,
        p.description
            .as_deref()
            .map(|d| format!(": {d}"))
            .unwrap_or_default()
    );
    store::add_timeline(
        cx.conn,
        stored.head.order_id,
        "shipment_exception",
        cause,
        &detail,
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Invoices and notifications (timeline only)
// ---------------------------------------------------------------------------------------------

#[tracing::instrument(skip_all, fields(message_id = %cause.message_id))]
async fn invoice_issued(
    p: &InvoiceIssued,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let (stored, _facts) = known_order(cx, p.order_id, Some(&p.store_id), "invoice.issued").await?;
    let detail = if store::record_invoice(cx.conn, p).await? {
        format!(
            "Invoice {} issued: {} {} gross ({}){}",
            p.invoice_number,
            p.totals.gross,
            p.currency,
            p.vat_treatment,
            if stored.head.status == OrderStatus::Completed {
                " — after the order completed"
            } else {
                ""
            }
        )
    } else {
        format!("Invoice {} reported again", p.invoice_number)
    };
    store::add_timeline(
        cx.conn,
        stored.head.order_id,
        "invoice_issued",
        cause,
        &detail,
    )
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(message_id = %cause.message_id))]
async fn credit_note_issued(
    p: &CreditNoteIssued,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let (stored, _facts) =
        known_order(cx, p.order_id, Some(&p.store_id), "credit_note.issued").await?;
    let detail = if store::record_credit_note(cx.conn, p).await? {
        format!(
            "Credit note {} issued against invoice {} ({}): {} {} gross",
            p.credit_note_number, p.invoice_number, p.reason, p.totals.gross, p.currency
        )
    } else {
        format!("Credit note {} reported again", p.credit_note_number)
    };
    store::add_timeline(
        cx.conn,
        stored.head.order_id,
        "credit_note_issued",
        cause,
        &detail,
    )
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(message_id = %cause.message_id))]
async fn notification_sent(
    p: &NotificationSent,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let Some(order_id) = p.order_id else {
        tracing::debug!(request_id = %p.request_id, "notification not about an order");
        return Ok(());
    };
    let (stored, _facts) = known_order(cx, order_id, None, "notification.sent").await?;
    let detail = format!(
        "Notification “{}” sent by {}{}",
        p.template,
        p.channel,
        p.provider
            .as_deref()
            .map(|v| format!(" via {v}"))
            .unwrap_or_default()
    );
    store::add_timeline(
        cx.conn,
        stored.head.order_id,
        "notification_sent",
        cause,
        &detail,
    )
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(message_id = %cause.message_id))]
async fn notification_failed(
    p: &NotificationFailed,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let Some(order_id) = p.order_id else {
        tracing::debug!(request_id = %p.request_id, "notification not about an order");
        return Ok(());
    };
    let (stored, _facts) = known_order(cx, order_id, None, "notification.failed").await?;
    let detail = format!(
        "Notification “{}” by {} failed{}: {}",
        p.template,
        p.channel,
        if p.permanent { " permanently" } else { "" },
        p.error
    );
    store::add_timeline(
        cx.conn,
        stored.head.order_id,
        "notification_failed",
        cause,
        &detail,
    )
    .await?;
    Ok(())
}
