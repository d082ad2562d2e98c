//! Fulfillment's message handler: what each message is, what it locks, and which path
//! handles it.
//!
//! The common messages (a newly accepted order, its reservation, the carriers' updates) are
//! decided a run at a time by [`crate::flow`], alone or together; a re-accepted order
//! ([`reaccepted`]), a cancellation ([`cancelled`]), an address change ([`address`]), an
//! operator's hold ([`hold`]) and a store's settings ([`settings`]) are handled one message at a time where they arrived. Everything about one order is
//! serialised by the order's lock key, and every binding of a tracking number by the
//! number's, which the runtime takes (sorted) before a batch runs, so two copies of the
//! worker take turns and batches never deadlock on them. The keys come from the decoded
//! messages ([`FulfillmentInput`]), so a renamed contract field fails to compile instead of
//! dropping a lock. Every effect has a unique key in the store, so a message handled twice
//! has its effect once.
//!
//! This module depends on [`crate::flow`], never the other way round: the flow hands a
//! re-accepted order back ([`Ran::Reaccepted`]) instead of calling its handler.

mod address;
mod cancelled;
mod hold;
mod reaccepted;
mod settings;

use orderly_contracts::messages::ShipmentUpdated;
use orderly_runtime::{Batch, Handler, HandlerContext, HandlerError, Incoming, LockKey, Piece};
use sqlx::PgConnection;
use tracing::Instrument;
use uuid::Uuid;

use crate::flow::{self, Ran};
use crate::input::FulfillmentInput;
use crate::input::FulfillmentInput as Input;
use crate::store;

/// Fulfillment's message handler. Stateless: everything lives in the worker's schema.
#[derive(Debug, Clone, Copy, Default)]
pub struct FulfillmentHandler;

impl FulfillmentHandler {
    /// The handler.
    pub const fn new() -> Self {
        Self
    }
}

impl Handler for FulfillmentHandler {
    type Input = FulfillmentInput;

    async fn handle(
        &self,
        msg: &Incoming,
        cx: &mut HandlerContext<'_>,
    ) -> Result<(), HandlerError> {
        match msg.input::<Input>()? {
            // Alone, a message of the flow is a run of one.
            Input::Accepted(_) | Input::Reserved(_) | Input::Updated(_) => {
                run_flow(&[msg], &mut cx.as_batch()).await
            }
            Input::Cancelled(env) => cancelled::order_cancelled(cx, env).await,
            Input::AddressChanged(env) => address::address_changed(cx, env).await,
            Input::SettingsUpdated(env) => settings::settings_updated(cx, env).await,
            Input::HoldChanged(env) => hold::hold_changed(cx, env).await,
        }
    }

    /// Consecutive messages of the flow (accepted orders, reservations, carrier updates:
    /// nearly all of them) go through the flow together (`run_flow`); anything else is
    /// handled alone where it arrived, so the batch is handled in arrival order. A message
    /// that does not decode is handled alone, and fails there.
    async fn handle_batch(
        &self,
        msgs: &[&Incoming],
        batch: &mut Batch<'_>,
    ) -> Result<(), HandlerError> {
        for piece in orderly_runtime::runs(msgs, is_common) {
            match piece {
                Piece::Together(run) => run_flow(run, batch).await?,
                Piece::Alone(msg) => batch.handle_one(self, msg).await?,
            }
        }
        Ok(())
    }

    /// The order a message is about, and for a carrier update its tracking number too (the
    /// update names its shipment, or only the tracking number, so the order is looked up). A
    /// store's settings change is keyed by the store.
    async fn lock_keys(
        &self,
        msg: &Incoming,
        conn: &mut PgConnection,
    ) -> Result<Vec<LockKey>, HandlerError> {
        self.batch_lock_keys(&[msg], conn).await
    }

    /// [`FulfillmentHandler::lock_keys`] of a batch, from the decoded messages: the orders of
    /// all its carrier updates are looked up in one statement. A message that does not
    /// decode has no keys (its handler fails on its own).
    async fn batch_lock_keys(
        &self,
        msgs: &[&Incoming],
        conn: &mut PgConnection,
    ) -> Result<Vec<LockKey>, HandlerError> {
        let inputs: Vec<&Input> = msgs
            .iter()
            .filter_map(|m| m.input::<Input>().ok())
            .collect();
        let updates: Vec<(Option<Uuid>, &str, &str)> = inputs
            .iter()
            .filter_map(|input| match input {
                Input::Updated(env) => Some((
                    env.payload.shipment_id,
                    env.payload.carrier.as_str(),
                    env.payload.tracking_number.as_str(),
                )),
                _ => None,
            })
            .collect();
        // Keyed by the update's place among the batch's updates.
        let orders = store::orders_of_updates(conn, &updates).await?;
        let mut update = 0;
        let mut keys = Vec::new();
        for input in inputs {
            match input {
                Input::Accepted(env) => keys.push(order_key(env.payload.order_id)),
                Input::Reserved(env) => keys.push(order_key(env.payload.order_id)),
                Input::Cancelled(env) => keys.push(order_key(env.payload.order_id)),
                Input::AddressChanged(env) => keys.push(order_key(env.payload.order_id)),
                Input::HoldChanged(env) => keys.push(order_key(env.payload.order_id)),
                Input::Updated(env) => {
                    keys.push(tracking_key(&env.payload));
                    if let Some(order_id) = orders.get(&update) {
                        keys.push(order_key(*order_id));
                    }
                    update += 1;
                }
                Input::SettingsUpdated(env) => {
                    keys.push(LockKey::exclusive("store", &env.payload.store_id));
                }
            }
        }
        Ok(keys)
    }
}

/// Whether `msg` is one of the flow's (it decodes, and is one of the common messages).
fn is_common(msg: &Incoming) -> bool {
    msg.input::<Input>().is_ok_and(|i| i.common().is_some())
}

/// Runs consecutive messages of the flow through [`flow::run`]: an accepted order stored
/// already stops the run, is handled alone where it arrived
/// ([`reaccepted::order_accepted_again`]), and the rest run on after it.
async fn run_flow(msgs: &[&Incoming], batch: &mut Batch<'_>) -> Result<(), HandlerError> {
    let mut rest = msgs;
    loop {
        let at = match flow::run(rest, batch).await? {
            Ran::All => return Ok(()),
            Ran::Reaccepted(at) | Ran::Waits(at) => at,
        };
        let msg = rest[at];
        let span = batch.span(msg);
        let mut cx = batch.context(msg);
        match msg.input::<Input>()? {
            Input::Accepted(env) => {
                reaccepted::order_accepted_again(&mut cx, &env.payload)
                    .instrument(span)
                    .await?
            }
            Input::Updated(env) => {
                flow::wait_for_binding(&mut cx, msg.envelope.message_id, &env.payload)
                    .instrument(span)
                    .await?
            }
            _ => {
                return Err(HandlerError::permanent(
                    "only an accepted order or a carrier update is handed back by the flow",
                ));
            }
        }
        rest = &rest[at + 1..];
    }
}

/// The key of everything about one order.
fn order_key(order_id: Uuid) -> LockKey {
    LockKey::exclusive("order", order_id)
}

/// The key of every binding of the tracking number an update carries.
fn tracking_key(update: &ShipmentUpdated) -> LockKey {
    LockKey::exclusive(
        "tracking",
        format_args!("{}/{}", update.carrier, update.tracking_number),
    )
}
