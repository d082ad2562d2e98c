//! The fulfillment handler: decode, call the domain, write through the store, emit.
//!
//! The common messages (a newly accepted order, its reservation, the carriers' updates) are
//! decided a run at a time by [`crate::flow`], alone or together; a cancellation, a store's
//! settings and a re-accepted order are handled here one message at a time. Everything about
//! one order is serialised by the order's lock key, and every binding of a tracking number by
//! the number's, which the runtime takes (sorted) before a batch runs, so two copies of the
//! worker take turns and batches never deadlock on them. Every effect has a unique key in the
//! store, so a message handled twice has its effect once.

use std::collections::HashSet;

use anyhow::anyhow;
use orderly_contracts::messages::{
    CancellationScope, InvoiceRequested, InvoiceTiming, OrderAccepted, OrderCancelled,
    ShipmentUpdated, StoreInvoiceSettingsUpdated,
};
use orderly_contracts::{Envelope, Message};
use orderly_runtime::{Batch, Handler, HandlerContext, HandlerError, Incoming, LockKey, Piece};
use sqlx::PgConnection;
use tracing::{info, warn};
use uuid::Uuid;

use crate::domain::{self, Adjustment, Cancellation, ShipmentContents};
use crate::flow;
use crate::store::{self, NewInvoiceRequest, SnapshotWrite, StoredOrder};

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
    async fn handle(
        &self,
        msg: &Incoming,
        cx: &mut HandlerContext<'_>,
    ) -> Result<(), HandlerError> {
        if flow::takes(&msg.envelope.message_type) {
            // Alone, a message of the flow is a run of one.
            return flow::run(&[msg], &mut cx.as_batch()).await;
        }
        let env = msg.envelope.clone();
        match env.message_type.as_str() {
            OrderCancelled::TYPE => {
                order_cancelled(cx, env.decode_valid::<OrderCancelled>()?).await
            }
            StoreInvoiceSettingsUpdated::TYPE => {
                settings_updated(cx, env.decode_valid::<StoreInvoiceSettingsUpdated>()?).await
            }
            other => Err(HandlerError::unhandled(other, crate::NAME)),
        }
    }

    /// Consecutive messages of the flow (accepted orders, reservations, carrier updates:
    /// nearly all of them) go through [`flow::run`] together; anything else is handled alone
    /// where it arrived, so the batch is handled in arrival order.
    async fn handle_batch(
        &self,
        msgs: &[&Incoming],
        batch: &mut Batch<'_>,
    ) -> Result<(), HandlerError> {
        for piece in orderly_runtime::runs(msgs, flow::takes) {
            match piece {
                Piece::Together(run) => flow::run(run, batch).await?,
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

    /// [`FulfillmentHandler::lock_keys`] of a batch: the orders of all its carrier updates
    /// are looked up in one statement.
    async fn batch_lock_keys(
        &self,
        msgs: &[&Incoming],
        conn: &mut PgConnection,
    ) -> Result<Vec<LockKey>, HandlerError> {
        let updates: Vec<(usize, Option<Uuid>, &str, &str)> = msgs
            .iter()
            .enumerate()
            .filter(|(_, m)| m.envelope.message_type == ShipmentUpdated::TYPE)
            .filter_map(|(i, m)| {
                let named = match m.field("shipment_id").map(Uuid::parse_str) {
                    Some(Ok(id)) => Some(id),
                    // An id that does not parse names no shipment: the handler rejects it.
                    Some(Err(_)) => return None,
                    None => None,
                };
                Some((i, named, m.field("carrier")?, m.field("tracking_number")?))
            })
            .collect();
        let lookups: Vec<(Option<Uuid>, &str, &str)> =
            updates.iter().map(|(_, id, c, n)| (*id, *c, *n)).collect();
        let orders = store::orders_of_updates(conn, &lookups).await?;
        let order_of: std::collections::HashMap<usize, Uuid> = updates
            .iter()
            .enumerate()
            .filter_map(|(k, (i, _, _, _))| orders.get(&k).map(|order| (*i, *order)))
            .collect();
        let mut keys = Vec::new();
        for (i, msg) in msgs.iter().enumerate() {
            match msg.envelope.message_type.as_str() {
                ShipmentUpdated::TYPE => {
                    let (Some(carrier), Some(number)) =
                        (msg.field("carrier"), msg.field("tracking_number"))
                    else {
                        continue;
                    };
                    keys.push(LockKey::exclusive(
                        "tracking",
                        format_args!("{carrier}/{number}"),
                    ));
                    if let Some(order_id) = order_of.get(&i) {
                        keys.push(LockKey::exclusive("order", order_id));
                    }
                }
                StoreInvoiceSettingsUpdated::TYPE => keys.extend(msg.key("store", "store_id")),
                _ => keys.extend(msg.key("order", "order_id")),
            }
        }
        Ok(keys)
    }
}

// --- store.invoice_settings_updated ----------------------------------------------------------

#[tracing::instrument(skip_all, fields(store_id = %env.payload.store_id, revision = env.payload.revision))]
async fn settings_updated(
    cx: &mut HandlerContext<'_>,
    env: Envelope<StoreInvoiceSettingsUpdated>,
) -> Result<(), HandlerError> {
    let s = &env.payload;
    let revision = i64::try_from(s.revision)
        .map_err(|_| HandlerError::permanent(format!("revision {} is out of range", s.revision)))?;
    let applied =
        store::upsert_store_settings(cx.conn, &s.store_id, revision, s.invoice_timing).await?;
    if applied {
        info!(timing = %s.invoice_timing, "store invoice timing updated");
    } else {
        info!("older or repeated store settings ignored");
    }
    Ok(())
}

// --- order.accepted -------------------------------------------------------------------------

/// An `order.accepted` for an order stored already (a re-accept, or a new revision): the
/// snapshot replaced when the revision is higher, then invoiced on order if its store does
/// so and it was not yet. (A new order goes through [`crate::flow`].)
#[tracing::instrument(skip_all, fields(order_id = %order.order_id))]
pub(crate) async fn order_accepted_again(
    cx: &mut HandlerContext<'_>,
    order: &OrderAccepted,
) -> Result<(), HandlerError> {
    let order_id = order.order_id;
    let before = store::load_order(cx.conn, order_id).await?;
    let timing = store::invoice_timings(cx.conn, &[order.store_id.as_str()])
        .await?
        .remove(order.store_id.as_str())
        .unwrap_or(InvoiceTiming::OnShipment);
    store::upsert_orders(cx.conn, &[(order, timing)]).await?;
    let write = match &before {
        None => SnapshotWrite::Inserted,
        Some(b) if b.order.revision < order.revision => SnapshotWrite::Updated,
        Some(_) => SnapshotWrite::Unchanged,
    };
    info!(?write, revision = order.revision, "order snapshot stored");
    let stored = store::load_order(cx.conn, order_id)
        .await?
        .ok_or_else(|| HandlerError::transient(anyhow!("order {order_id} is not stored")))?;
    if stored.invoice_timing != InvoiceTiming::OnOrder {
        return Ok(());
    }
    let cancellations = store::cancellations(cx.conn, order_id).await?;
    let invoiced = store::orders_invoiced(cx.conn, &[order_id]).await?;
    if let Some(request) = invoice_on_order(&stored, &cancellations, &invoiced) {
        store::record_invoice_requests(
            cx.conn,
            &[NewInvoiceRequest {
                request_id: request.request_id,
                order_id,
                shipment_id: None,
                timing: InvoiceTiming::OnOrder,
            }],
        )
        .await?;
        cx.emit_valid(order_id.to_string(), request)?;
    }
    Ok(())
}

/// The invoice request of an order its store invoices on order: none when the whole order
/// was cancelled before it got here, or when it was requested already (`invoiced`).
pub(crate) fn invoice_on_order(
    stored: &StoredOrder,
    cancellations: &[Cancellation],
    invoiced: &HashSet<Uuid>,
) -> Option<InvoiceRequested> {
    if cancellations
        .iter()
        .any(|c| c.scope == CancellationScope::Order)
    {
        info!("order was cancelled before it was accepted here; no invoice requested");
        return None;
    }
    if invoiced.contains(&stored.order.order_id) {
        return None;
    }
    let request_id = Uuid::now_v7();
    info!(%request_id, "invoice requested for the whole order");
    Some(domain::invoice_for_order(&stored.order, request_id))
}

// --- order.cancelled -------------------------------------------------------------------------

#[tracing::instrument(skip_all, fields(order_id = %env.payload.order_id))]
async fn order_cancelled(
    cx: &mut HandlerContext<'_>,
    env: Envelope<OrderCancelled>,
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

// --- shipment.updated ------------------------------------------------------------------------

/// Records an update that matches no shipment and rejects it (dead letter, kept on record).
pub(crate) async fn reject(
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
