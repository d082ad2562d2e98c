//! The fulfillment handler: decode, call the domain, write through the store, emit.
//!
//! Everything about one order runs under the order's lock (`store::lock_order`), so a
//! reservation, a cancellation and carrier updates of the same order are serialised even
//! with several copies of the worker; the handler declares the same entities as lock keys,
//! which the runtime takes sorted before a batch runs, so batches never deadlock on them.
//! Every effect has a unique key in the store, so a
//! message handled twice has its effect once.

use anyhow::anyhow;
use orderly_contracts::messages::{
    CancellationScope, DispatchedItem, InvoiceTiming, OrderAccepted, OrderCancelled,
    ShipmentDelivered, ShipmentDispatched, ShipmentException, ShipmentItem, ShipmentRequested,
    ShipmentUpdated, StockReserved, StoreInvoiceSettingsUpdated,
};
use orderly_contracts::{Envelope, Message};
use orderly_runtime::{Handler, HandlerContext, HandlerError, Incoming, LockKey};
use sqlx::PgConnection;
use tracing::{info, warn};
use uuid::Uuid;

use crate::domain::{
    self, Adjustment, Cancellation, Notice, ShipmentContents, StatusMapping, Tracking,
};
use crate::store::{self, NewTrackingEvent, Shipment, StoredOrder};

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
        let env = msg.envelope.clone();
        match env.message_type.as_str() {
            OrderAccepted::TYPE => order_accepted(cx, env.decode_valid::<OrderAccepted>()?).await,
            StockReserved::TYPE => stock_reserved(cx, env.decode_valid::<StockReserved>()?).await,
            ShipmentUpdated::TYPE => {
                shipment_updated(cx, env.decode_valid::<ShipmentUpdated>()?).await
            }
            OrderCancelled::TYPE => {
                order_cancelled(cx, env.decode_valid::<OrderCancelled>()?).await
            }
            StoreInvoiceSettingsUpdated::TYPE => {
                settings_updated(cx, env.decode_valid::<StoreInvoiceSettingsUpdated>()?).await
            }
            other => Err(HandlerError::unhandled(other, crate::NAME)),
        }
    }

    /// The order a message is about, and for a carrier update its tracking number too (the
    /// update names its shipment, or only the tracking number, so the order is looked up):
    /// exactly the entities the handlers lock (`store::lock_tracking_number`,
    /// `store::lock_order`). A store's settings change is keyed by the store.
    async fn lock_keys(
        &self,
        msg: &Incoming,
        conn: &mut PgConnection,
    ) -> Result<Vec<LockKey>, HandlerError> {
        match msg.envelope.message_type.as_str() {
            ShipmentUpdated::TYPE => {
                let (Some(carrier), Some(number)) =
                    (msg.field("carrier"), msg.field("tracking_number"))
                else {
                    return Ok(Vec::new());
                };
                let mut keys = vec![LockKey::exclusive(
                    "tracking",
                    format_args!("{carrier}/{number}"),
                )];
                let shipment_id = match msg.field("shipment_id").map(Uuid::parse_str) {
                    Some(Ok(id)) => Some(id),
                    Some(Err(_)) => None,
                    None => store::bound_shipment(conn, carrier, number).await?,
                };
                if let Some(id) = shipment_id
                    && let Some(shipment) = store::shipment(conn, id).await?
                {
                    keys.push(LockKey::exclusive("order", shipment.order_id));
                }
                Ok(keys)
            }
            StoreInvoiceSettingsUpdated::TYPE => Ok(msg.key("store", "store_id")),
            _ => Ok(msg.key("order", "order_id")),
        }
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

// --- order.accepted --------------------------------------------------------------------------

#[tracing::instrument(skip_all, fields(order_id = %env.payload.order_id))]
async fn order_accepted(
    cx: &mut HandlerContext<'_>,
    env: Envelope<OrderAccepted>,
) -> Result<(), HandlerError> {
    let order_id = env.payload.order_id;
    store::lock_order(cx.conn, order_id).await?;
    let timing = store::invoice_timing(cx.conn, &env.payload.store_id)
        .await?
        .unwrap_or(InvoiceTiming::OnShipment);
    let write = store::upsert_order(cx.conn, &env.payload, timing).await?;
    info!(
        ?write,
        revision = env.payload.revision,
        "order snapshot stored"
    );
    let stored = load(cx, order_id).await?;
    if stored.invoice_timing != InvoiceTiming::OnOrder {
        return Ok(());
    }
    let cancellations = store::cancellations(cx.conn, order_id).await?;
    if cancellations
        .iter()
        .any(|c| c.scope == CancellationScope::Order)
    {
        info!("order was cancelled before it was accepted here; no invoice requested");
        return Ok(());
    }
    let request_id = Uuid::now_v7();
    if store::claim_invoice_request(cx.conn, request_id, order_id, None, InvoiceTiming::OnOrder)
        .await?
    {
        let request = domain::invoice_for_order(&stored.order, request_id);
        cx.emit_valid(order_id.to_string(), request)?;
        info!(%request_id, "invoice requested for the whole order");
    }
    Ok(())
}

async fn load(cx: &mut HandlerContext<'_>, order_id: Uuid) -> Result<StoredOrder, HandlerError> {
    store::load_order(cx.conn, order_id)
        .await?
        .ok_or_else(|| HandlerError::transient(anyhow!("order {order_id} is not stored")))
}

// --- stock.reserved --------------------------------------------------------------------------

#[tracing::instrument(skip_all, fields(order_id = %env.payload.order_id))]
async fn stock_reserved(
    cx: &mut HandlerContext<'_>,
    env: Envelope<StockReserved>,
) -> Result<(), HandlerError> {
    let reserved = &env.payload;
    let order_id = reserved.order_id;
    store::lock_order(cx.conn, order_id).await?;
    let Some(stored) = store::load_order(cx.conn, order_id).await? else {
        // Out of order: the reservation overtook the accepted order. Retry later.
        return Err(HandlerError::transient(anyhow!(
            "order {order_id} has not arrived here yet (order.accepted); shipments wait for it"
        )));
    };
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
    let cancellations = store::cancellations(cx.conn, order_id).await?;
    domain::apply_cancellations_to_plan(&stored.order, &cancellations, &mut plan);
    let created = store::insert_shipments(cx.conn, order_id, &plan).await?;
    for (shipment_id, planned) in created {
        if planned.cancelled {
            info!(%shipment_id, warehouse = %planned.warehouse_id, "shipment cancelled before it was requested");
            continue;
        }
        let request = ShipmentRequested {
            shipment_id,
            order_id,
            store_id: stored.order.store_id.clone(),
            external_order_id: stored.order.external_order_id.clone(),
            warehouse_id: planned.warehouse_id.clone(),
            ship_to: stored.order.shipping_address.clone(),
            // We do not know whether the buyer agreed to share their address with carriers.
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
                        quantity: orderly_contracts::types::Quantity::new(item.quantity)
                            .map_err(|e| HandlerError::permanent(e.to_string()))?,
                    })
                })
                .collect::<Result<_, HandlerError>>()?,
        };
        cx.emit_valid(order_id.to_string(), request)?;
        info!(%shipment_id, warehouse = %planned.warehouse_id, "shipment requested");
    }
    Ok(())
}

// --- order.cancelled -------------------------------------------------------------------------

#[tracing::instrument(skip_all, fields(order_id = %env.payload.order_id))]
async fn order_cancelled(
    cx: &mut HandlerContext<'_>,
    env: Envelope<OrderCancelled>,
) -> Result<(), HandlerError> {
    let cancelled = &env.payload;
    let order_id = cancelled.order_id;
    store::lock_order(cx.conn, order_id).await?;
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

#[tracing::instrument(skip_all, fields(
    carrier = %env.payload.carrier,
    tracking_number = %env.payload.tracking_number,
    shipment_id = tracing::field::Empty,
    order_id = tracing::field::Empty,
))]
async fn shipment_updated(
    cx: &mut HandlerContext<'_>,
    env: Envelope<ShipmentUpdated>,
) -> Result<(), HandlerError> {
    let update = &env.payload;
    let message_id = env.message_id;
    store::lock_tracking_number(cx.conn, &update.carrier, &update.tracking_number).await?;
    let found = match update.shipment_id {
        Some(id) => store::shipment(cx.conn, id).await?,
        None => {
            match store::bound_shipment(cx.conn, &update.carrier, &update.tracking_number).await? {
                Some(id) => store::shipment(cx.conn, id).await?,
                None => None,
            }
        }
    };
    let Some(found) = found else {
        let reason = match update.shipment_id {
            Some(id) => format!(
                "no shipment {id} (tracking number {} of {})",
                update.tracking_number, update.carrier
            ),
            None => format!(
                "tracking number {} of {} belongs to no shipment, and the update names none",
                update.tracking_number, update.carrier
            ),
        };
        return reject(cx, message_id, update, reason).await;
    };
    let span = tracing::Span::current();
    span.record("shipment_id", tracing::field::display(found.shipment_id));
    span.record("order_id", tracing::field::display(found.order_id));

    store::lock_order(cx.conn, found.order_id).await?;
    let shipment = store::shipment_for_update(cx.conn, found.shipment_id)
        .await?
        .ok_or_else(|| HandlerError::transient(anyhow!("shipment vanished")))?;
    let shipment_id = shipment.shipment_id;

    // An update naming the shipment binds its tracking number, unless that number is the
    // shipment's own already (then it is bound, and events waiting for it were adopted).
    let already_bound = shipment.carrier.as_deref() == Some(update.carrier.as_str())
        && shipment.tracking_number.as_deref() == Some(update.tracking_number.as_str());
    let binds = update.shipment_id.is_some() && !already_bound;
    if binds {
        let bound = store::bind_tracking(
            cx.conn,
            &update.carrier,
            &update.tracking_number,
            shipment_id,
            message_id,
        )
        .await?;
        if bound != shipment_id {
            let reason = format!(
                "tracking number {} of {} belongs to shipment {bound}, not to {shipment_id}",
                update.tracking_number, update.carrier
            );
            return reject(cx, message_id, update, reason).await;
        }
        adopt_waiting_events(cx, update, shipment_id).await?;
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
    let event = NewTrackingEvent::from_update(shipment_id, message_id, update, mapping.status());
    if !store::insert_tracking_event(cx.conn, &event).await? {
        info!("tracking event already recorded");
    }
    advance(cx, &shipment, Some(message_id), binds).await
}

/// Records an update that matches no shipment and rejects it (dead letter, kept on record).
async fn reject(
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

/// Moves events that waited for this tracking number into the shipment's history.
async fn adopt_waiting_events(
    cx: &mut HandlerContext<'_>,
    update: &ShipmentUpdated,
    shipment_id: Uuid,
) -> Result<(), HandlerError> {
    let waiting = store::waiting_unmatched(
        cx.conn,
        &update.carrier,
        &update.tracking_number,
        shipment_id,
    )
    .await?;
    for w in waiting {
        let Ok(vocabulary) = w.vocabulary.parse() else {
            continue;
        };
        let mapped = domain::map_status(vocabulary, &w.raw_status).status();
        let event = NewTrackingEvent {
            shipment_id,
            source_message_id: w.message_id,
            carrier: &w.carrier,
            tracking_number: &w.tracking_number,
            vocabulary,
            raw_status: &w.raw_status,
            mapped_status: mapped,
            description: w.description.as_deref(),
            location: w.location.clone(),
            event_at: w.event_at,
            estimated_delivery_at: w.estimated_delivery_at,
        };
        store::insert_tracking_event(cx.conn, &event).await?;
        store::resolve_unmatched(cx.conn, w.id, shipment_id).await?;
        info!(message_id = %w.message_id, "earlier unmatched tracking event attached");
    }
    Ok(())
}

/// Derives the shipment's state from its history, saves it, and publishes what it owes.
/// `rebound`: the handler bound a tracking number to it since `shipment` was read.
async fn advance(
    cx: &mut HandlerContext<'_>,
    shipment: &Shipment,
    arrived: Option<Uuid>,
    rebound: bool,
) -> Result<(), HandlerError> {
    let shipment_id = shipment.shipment_id;
    if shipment.tracking.state == domain::ShipmentState::Cancelled {
        warn!("tracking event for a cancelled shipment; kept in the history, state unchanged");
        return Ok(());
    }
    let observations = store::observations(cx.conn, shipment_id).await?;
    let tracking = domain::derive(&observations);
    if tracking != shipment.tracking {
        store::save_tracking(cx.conn, shipment_id, &tracking).await?;
        if tracking.state != shipment.tracking.state {
            if let Some(source) = arrived {
                store::mark_state_changed(cx.conn, shipment_id, source).await?;
            }
            info!(from = %shipment.tracking.state, to = %tracking.state, "shipment state changed");
        }
    }
    let sent = store::notices_sent(cx.conn, shipment_id).await?;
    let due = domain::due_notices(&tracking, &sent);
    if due.is_empty() {
        return Ok(());
    }
    // Binding may have given the shipment its tracking number: read it again then.
    let reloaded;
    let shipment = if rebound {
        reloaded = store::shipment(cx.conn, shipment_id)
            .await?
            .ok_or_else(|| HandlerError::transient(anyhow!("shipment vanished")))?;
        &reloaded
    } else {
        shipment
    };
    let stored = load(cx, shipment.order_id).await?;
    for notice in due {
        let message_id = publish_notice(cx, &stored, shipment, &tracking, notice).await?;
        if !store::record_notice(cx.conn, shipment_id, notice, message_id).await? {
            // Impossible under the order lock; roll everything back rather than publish twice.
            return Err(HandlerError::transient(anyhow!(
                "notice {} of shipment {shipment_id} was recorded concurrently",
                notice.key()
            )));
        }
    }
    Ok(())
}

/// Publishes one notice (and, for a dispatch invoiced per shipment, the invoice request).
async fn publish_notice(
    cx: &mut HandlerContext<'_>,
    stored: &StoredOrder,
    shipment: &Shipment,
    tracking: &Tracking,
    notice: Notice,
) -> Result<Uuid, HandlerError> {
    let order = &stored.order;
    let order_id = order.order_id;
    let carrier = shipment.carrier.clone().unwrap_or_default();
    let tracking_number = shipment.tracking_number.clone().unwrap_or_default();
    let at = tracking
        .since
        .ok_or_else(|| HandlerError::permanent("a tracked state without an event time"))?;
    match notice {
        Notice::Dispatched => {
            let items = store::items(cx.conn, shipment.shipment_id).await?;
            let dispatched = ShipmentDispatched {
                shipment_id: shipment.shipment_id,
                order_id,
                store_id: order.store_id.clone(),
                channel: order.channel,
                marketplace: order.marketplace.clone(),
                external_order_id: order.external_order_id.clone(),
                warehouse_id: shipment.warehouse_id.clone(),
                tracking_url: domain::tracking_url(&carrier, &tracking_number),
                carrier,
                tracking_number,
                dispatched_at: tracking.dispatched_at.unwrap_or(at),
                items: items
                    .iter()
                    .filter(|i| i.quantity > 0)
                    .map(|i| {
                        Ok(DispatchedItem {
                            line_id: i.line_id.clone(),
                            sku: i.sku.clone(),
                            quantity: orderly_contracts::types::Quantity::new(i.quantity)
                                .map_err(|e| HandlerError::permanent(e.to_string()))?,
                        })
                    })
                    .collect::<Result<_, HandlerError>>()?,
            };
            let id = cx.emit_valid(order_id.to_string(), dispatched)?;
            info!("shipment dispatched");
            if stored.invoice_timing == InvoiceTiming::OnShipment {
                request_shipment_invoice(cx, stored, shipment.shipment_id, &items).await?;
            }
            Ok(id)
        }
        Notice::Delivered => {
            let delivered = ShipmentDelivered {
                shipment_id: shipment.shipment_id,
                order_id,
                store_id: order.store_id.clone(),
                carrier,
                tracking_number,
                delivered_at: at,
            };
            info!("shipment delivered");
            cx.emit_valid(order_id.to_string(), delivered)
        }
        Notice::Exception(status) => {
            let cause = match tracking.cause {
                Some(source) => {
                    store::tracking_event(cx.conn, shipment.shipment_id, source).await?
                }
                None => None,
            };
            let exception = ShipmentException {
                shipment_id: shipment.shipment_id,
                order_id,
                store_id: order.store_id.clone(),
                carrier,
                tracking_number,
                status,
                raw_status: cause
                    .as_ref()
                    .map_or_else(|| status.as_str().to_owned(), |c| c.raw_status.clone()),
                description: cause.and_then(|c| c.description),
                event_at: at,
            };
            warn!(%status, "shipment exception");
            cx.emit_valid(order_id.to_string(), exception)
        }
    }
}

/// `invoice.requested` for a dispatched shipment's items, once per shipment.
async fn request_shipment_invoice(
    cx: &mut HandlerContext<'_>,
    stored: &StoredOrder,
    shipment_id: Uuid,
    items: &[store::ShipmentItem],
) -> Result<(), HandlerError> {
    let order_id = stored.order.order_id;
    let request_id = Uuid::now_v7();
    if !store::claim_invoice_request(
        cx.conn,
        request_id,
        order_id,
        Some(shipment_id),
        InvoiceTiming::OnShipment,
    )
    .await?
    {
        return Ok(());
    }
    let lines: Vec<(String, u32)> = items
        .iter()
        .map(|i| (i.line_id.clone(), i.quantity))
        .collect();
    let (request, progress) = domain::invoice_for_shipment(
        &stored.order,
        &stored.progress,
        shipment_id,
        &lines,
        request_id,
    )
    .map_err(|e| {
        HandlerError::permanent(format!(
            "cannot request the invoice of shipment {shipment_id}: {e}"
        ))
    })?;
    store::save_invoice_progress(cx.conn, order_id, &progress).await?;
    cx.emit_valid(order_id.to_string(), request)?;
    info!(%request_id, "invoice requested for the shipment");
    Ok(())
}
