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
//!   message is also recorded in `rejected_orders` (`HandlerError::Rejected`), as is a new
//!   order for a store that is not declared or closed;
//! - operator and customer requests about an order that does not exist, or that contradict
//!   what already happened → `Rejected` with the reason (recorded, then dead-lettered);
//! - system events (stock, shipments, invoices, notifications) about an order not known yet
//!   → transient: they may have overtaken `order.placed`; the retry budget dead-letters them
//!   with the reason if the order never appears.

//!
//! # Layout
//! This module is the [`Handler`] implementation and the dispatch only: which family
//! handles a message, and how a batch is walked (runs of the flow together, anything else
//! alone where it arrived). The families: [`intake`] (re-pushes of known orders),
//! [`requests`] (cancel and refund requests) and [`operator`] (notes, holds), answered by
//! [`answer`], [`exceptions`] and [`catalog`] (exception
//! resolutions, by an operator or by the catalog), [`events`] (stock, shipment, invoice and
//! notification events the flow does not decide), [`stores`] (the store registry). [`apply`] holds what they share; the
//! steps the flow shares with them are in [`crate::steps`].

mod answer;
mod apply;
mod catalog;
mod events;
mod exceptions;
mod intake;
mod operator;
mod requests;
mod stores;

use orderly_contracts::ContractError;
use orderly_runtime::{Batch, Handler, HandlerContext, HandlerError, Incoming, LockKey, Piece};
use sqlx::PgConnection;
use tracing::Instrument;

use crate::flow;
use crate::input::{self, FlowInput, OrdersInput, Undecoded};
use crate::locks;
use crate::store::{self, Cause};

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
            I::CancelRequested(env) => requests::cancel_requested(&env.payload, cx, &cause).await,
            I::RefundRequested(env) => requests::refund_requested(&env.payload, cx, &cause).await,
            I::NoteRequested(env) => operator::note_requested(&env.payload, cx, &cause).await,
            I::HoldRequested(env) => operator::hold_requested(&env.payload, cx, &cause).await,
            I::ReleaseRequested(env) => operator::release_requested(&env.payload, cx, &cause).await,
            I::AddressChangeRequested(env) => {
                operator::address_change_requested(&env.payload, cx, &cause).await
            }
            I::ExceptionResolved(env) => {
                exceptions::exception_resolved(&env.payload, cx, &cause).await
            }
            I::ProductUpserted(env) => catalog::product_upserted(&env.payload, cx, &cause).await,
            I::StoreUpserted(env) => stores::store_upserted(&env.payload, cx).await,
            I::StockUnavailable(env) => events::stock_unavailable(&env.payload, cx, &cause).await,
            I::SetupCompleted(env) => events::setup_completed(&env.payload, cx, &cause).await,
            I::StockReleased(env) => events::stock_released(&env.payload, cx, &cause).await,
            I::ShipmentException(env) => events::shipment_exception(&env.payload, cx, &cause).await,
            I::InvoiceIssued(env) => events::invoice_issued(&env.payload, cx, &cause).await,
            I::CreditNoteIssued(env) => events::credit_note_issued(&env.payload, cx, &cause).await,
            I::NotificationSent(env) => events::notification_sent(&env.payload, cx, &cause).await,
            I::NotificationFailed(env) => {
                events::notification_failed(&env.payload, cx, &cause).await
            }
        }
    }

    /// Consecutive messages of the flow (new orders and the events that carry orders to
    /// completion: nearly all of them) go through the flow (`flow::run`) together; anything else is
    /// handled alone where it arrived, so the batch is handled in arrival order.
    async fn handle_batch(
        &self,
        msgs: &[&Incoming],
        batch: &mut Batch<'_>,
    ) -> Result<(), HandlerError> {
        for piece in orderly_runtime::runs(msgs, |m| FlowInput::of_msg(m).is_some()) {
            match piece {
                Piece::Together(run) => run_flow(run, batch).await?,
                Piece::Alone(msg) => batch.handle_one(self, msg).await?,
            }
        }
        Ok(())
    }

    /// The order a message is about (every message here names one, except catalog
    /// upserts), plus for a new order its customer's statistics row: the rows the handler
    /// locks (see `crate::locks`).
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
/// among them is handled alone where it arrived ([`intake::order_placed_again`]), and the flow goes
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
        intake::order_placed_again(&env.payload, &mut batch.context(msg), &cause)
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
