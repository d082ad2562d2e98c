//! What each message means for inventory: decode it (validated), lock what the decision
//! depends on, let the domain decide, write the result through the store, and emit.
//!
//! Every stock change goes through [`store::apply_movements`] (the ledger). Before a batch
//! runs, the runtime takes the lock keys [`InventoryHandler`] declares (the order and its
//! SKUs, or all of stock for adjustments and releases), so batches that touch the same SKU
//! take turns and never deadlock; under them each handler takes its row locks in the order
//! documented in [`crate::store`]. A decision is made on rows this transaction has locked,
//! so two copies of the worker, or two batches of one copy, cannot both promise the same
//! unit: the second waits for the first to commit and then sees what is left.

use std::collections::BTreeSet;

use anyhow::anyhow;
use chrono::Utc;
use orderly_contracts::{
    Envelope,
    messages::{
        CancellationScope, InventoryAdjusted, OrderAccepted, OrderCancelled, ProductUpserted,
        ReleaseReason, ReleasedLine, ShipmentDispatched, StockReleased, StockReserved,
        StockUnavailable, WarehouseUpserted,
    },
    types::{Quantity, Sku, StoreId, WarehouseId},
};
use orderly_runtime::{Batch, Handler, HandlerContext, HandlerError, Incoming, LockKey};
use sqlx::PgConnection;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::{
    domain::{
        self, AdjustmentChange, AdjustmentOutcome, Allocated, BackorderDecision, Level,
        LineRequest, StockView, WarehousePicks,
    },
    store::{self, MovementKind, NewMovement, NewReservation, OrderState, StockRow},
};

/// The inventory worker's handler. Stateless: everything lives in the database.
#[derive(Debug, Clone, Copy, Default)]
pub struct InventoryHandler;

impl InventoryHandler {
    /// The handler.
    pub fn new() -> Self {
        Self
    }
}

orderly_runtime::inputs! {
    /// What the inventory worker consumes: its queue in the routing table receives exactly
    /// these (the host checks it before starting the worker).
    pub enum InventoryInput {
        /// A new order to reserve.
        Accepted(OrderAccepted),
        /// An order (or some of its lines) cancelled: release or un-backorder.
        Cancelled(OrderCancelled),
        /// A shipment left: its reservation becomes a deduction.
        Dispatched(ShipmentDispatched),
        /// A stock count or delta.
        Adjusted(InventoryAdjusted),
        /// A product's GTINs (for level messages) and whether its stock is tracked.
        ProductUpserted(ProductUpserted),
        /// A warehouse's priority and whether orders are allocated to it.
        WarehouseUpserted(WarehouseUpserted),
    }
}

use InventoryInput as Input;

impl Handler for InventoryHandler {
    type Input = InventoryInput;

    async fn handle(
        &self,
        msg: &Incoming,
        cx: &mut HandlerContext<'_>,
    ) -> Result<(), HandlerError> {
        match msg.input::<Input>()? {
            Input::Accepted(env) => order_accepted(env, cx).await,
            Input::Cancelled(env) => order_cancelled(env, cx).await,
            Input::Dispatched(env) => shipment_dispatched(env, cx).await,
            Input::Adjusted(env) => inventory_adjusted(env, cx).await,
            Input::ProductUpserted(env) => product_upserted(env, cx).await,
            Input::WarehouseUpserted(env) => warehouse_upserted(env, cx).await,
        }
    }

    /// A batch's `order.accepted` for orders no other message of the batch names are
    /// reserved together, first ([`reserve_together`]); then its `shipment.dispatched` of
    /// orders nothing but dispatches name (each shipment once) are booked together
    /// ([`dispatch_together`]); everything else follows one at a time, in arrival order.
    /// Moving them ahead keeps each order's own messages in order, which is all the runtime
    /// promises about arrival order.
    async fn handle_batch(
        &self,
        msgs: &[&Incoming],
        batch: &mut Batch<'_>,
    ) -> Result<(), HandlerError> {
        // What each message is (none: it does not decode, and fails alone on its own).
        let inputs: Vec<Option<&Input>> = msgs.iter().map(|m| m.input::<Input>().ok()).collect();
        // Compared as ids, not as text: the same order written two ways is one order.
        let order_of = |input: Option<&Input>| match input? {
            Input::Accepted(env) => Some(env.payload.order_id),
            Input::Cancelled(env) => Some(env.payload.order_id),
            Input::Dispatched(env) => Some(env.payload.order_id),
            Input::Adjusted(_) | Input::ProductUpserted(_) | Input::WarehouseUpserted(_) => None,
        };
        let named_by = |except: fn(&Input) -> bool| -> BTreeSet<Uuid> {
            inputs
                .iter()
                .filter(|i| !i.is_some_and(except))
                .filter_map(|i| order_of(*i))
                .collect()
        };
        let not_reserving = named_by(|i| matches!(i, Input::Accepted(_)));
        let not_dispatching = named_by(|i| matches!(i, Input::Dispatched(_)));
        // A shipment dispatched twice in one batch is left to be handled in turn.
        let mut shipments: std::collections::BTreeMap<Uuid, usize> =
            std::collections::BTreeMap::new();
        for input in inputs.iter().flatten() {
            if let Input::Dispatched(env) = input {
                *shipments.entry(env.payload.shipment_id).or_default() += 1;
            }
        }
        let group = |input: Option<&Input>| -> Option<Group> {
            match input? {
                Input::Accepted(env) if !not_reserving.contains(&env.payload.order_id) => {
                    Some(Group::Reserve)
                }
                Input::Dispatched(env)
                    if !not_dispatching.contains(&env.payload.order_id)
                        && shipments.get(&env.payload.shipment_id) == Some(&1) =>
                {
                    Some(Group::Dispatch)
                }
                _ => None,
            }
        };
        let groups: Vec<Option<Group>> = inputs.iter().map(|i| group(*i)).collect();
        let of = |kind: Group| -> Vec<&Incoming> {
            msgs.iter()
                .zip(&groups)
                .filter(|(_, g)| **g == Some(kind))
                .map(|(m, _)| *m)
                .collect()
        };
        let (reserving, dispatching) = (of(Group::Reserve), of(Group::Dispatch));
        let mut alone: Vec<(&Incoming, Option<Group>)> =
            msgs.iter().copied().zip(groups.iter().copied()).collect();
        if reserving.len() > 1 {
            reserve_together(&reserving, batch).await?;
            alone.retain(|(_, g)| *g != Some(Group::Reserve));
        }
        if dispatching.len() > 1 {
            dispatch_together(&dispatching, batch).await?;
            alone.retain(|(_, g)| *g != Some(Group::Dispatch));
        }
        for (msg, _) in alone {
            batch.handle_one(self, msg).await?;
        }
        Ok(())
    }

    /// What a stock transaction locks (see [`crate::store`] for the row order under them),
    /// from the decoded message:
    /// - a reservation (`order.accepted`) or a dispatch: the order and each SKU it names,
    ///   exclusively, under the stock-wide key held *shared*: reservations of different SKUs
    ///   run side by side, two batches wanting one SKU take turns;
    /// - an adjustment, a release or a warehouse's new priority (`inventory.adjusted`,
    ///   `order.cancelled`, `warehouse.upserted`): the stock-wide key *exclusively*. Both may serve backorders, i.e. reserve for orders and
    ///   SKUs they cannot name before they run, so they wait for every other stock
    ///   transaction and have stock to themselves. They are rare beside reservations.
    async fn lock_keys(
        &self,
        msg: &Incoming,
        _conn: &mut PgConnection,
    ) -> Result<Vec<LockKey>, HandlerError> {
        let Ok(input) = msg.input::<Input>() else {
            return Ok(Vec::new());
        };
        Ok(match input {
            Input::Accepted(env) => order_and_skus(
                env.payload.order_id,
                env.payload.lines.iter().map(|l| &l.sku),
            ),
            Input::Dispatched(env) => order_and_skus(
                env.payload.order_id,
                env.payload.items.iter().map(|i| &i.sku),
            ),
            Input::Adjusted(_) | Input::Cancelled(_) | Input::WarehouseUpserted(_) => {
                vec![LockKey::exclusive(STOCK, "*")]
            }
            Input::ProductUpserted(_) => Vec::new(),
        })
    }
}

/// Which messages of a batch are handled together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    /// New orders reserved together.
    Reserve,
    /// Dispatches booked together.
    Dispatch,
}

/// The keys of a reservation or a dispatch: the stock-wide key shared, the order and each
/// SKU exclusively.
fn order_and_skus<'a>(order_id: Uuid, skus: impl Iterator<Item = &'a Sku>) -> Vec<LockKey> {
    let mut keys = vec![
        LockKey::shared(STOCK, "*"),
        LockKey::exclusive("order", order_id),
    ];
    keys.extend(skus.map(|sku| LockKey::exclusive("sku", sku)));
    keys
}

/// Kind of the stock-wide lock key.
const STOCK: &str = "stock";

/// `order.accepted`: reserve every line, all or nothing, or backorder the order.
///
/// Idempotent by order id: the first `order.accepted` of an order decides; any later one
/// (a duplicate, or a newer `revision` of the same order) changes nothing, and an order
/// cancelled before its `order.accepted` arrived stays cancelled. In this version a newer
/// revision is treated exactly like a duplicate: the allocation of the first accepted
/// revision stands (re-allocating a changed order is not supported yet).
#[tracing::instrument(skip_all, fields(order_id = %env.payload.order_id))]
async fn order_accepted(
    env: &Envelope<OrderAccepted>,
    cx: &mut HandlerContext<'_>,
) -> Result<(), HandlerError> {
    let reserved = reserve_orders(cx.conn, &[env]).await?;
    if let Some(outcome) = &reserved.outcomes[0] {
        emit_outcome(cx, &env.payload, outcome)?;
    }
    emit_levels(cx, &reserved.touched).await
}

/// Reserves a batch's new orders together: what [`order_accepted`] does for each, in
/// arrival order, in a handful of statements for all of them (claim, lock and read the
/// stock, ledger, reservations, states), and one `stock.level_changed` per SKU for the lot
/// (its latest level: what a marketplace syncs to).
async fn reserve_together(msgs: &[&Incoming], batch: &mut Batch<'_>) -> Result<(), HandlerError> {
    let envelopes = msgs
        .iter()
        .map(|m| match m.input::<Input>()? {
            Input::Accepted(env) => Ok(env),
            _ => Err(HandlerError::permanent("not an order.accepted")),
        })
        .collect::<Result<Vec<_>, HandlerError>>()?;
    let reserved = reserve_orders(batch.conn, &envelopes).await?;
    for ((msg, env), outcome) in msgs.iter().zip(&envelopes).zip(&reserved.outcomes) {
        if let Some(outcome) = outcome {
            emit_outcome(&mut batch.context(msg), &env.payload, outcome)?;
        }
    }
    match msgs.last() {
        Some(last) => emit_levels(&mut batch.context(last), &reserved.touched).await,
        None => Ok(()),
    }
}

/// What [`reserve_orders`] decided.
struct Reserved {
    /// Per order, in the order given: none if an earlier `order.accepted` already decided.
    outcomes: Vec<Option<Allocated>>,
    /// SKUs whose sellable stock changed.
    touched: BTreeSet<Sku>,
}

/// Claims the orders, allocates each in turn from the locked stock (an earlier order's
/// reservation is gone for the later ones, as if each had its own transaction), and writes
/// reservations, backorders and order states.
async fn reserve_orders(
    conn: &mut PgConnection,
    orders: &[&Envelope<OrderAccepted>],
) -> Result<Reserved, HandlerError> {
    let claims: Vec<store::OrderClaim<'_>> = orders
        .iter()
        .map(|env| store::OrderClaim {
            order_id: env.payload.order_id,
            store_id: &env.payload.store_id,
            revision: env.payload.revision,
            placed_at: env.payload.placed_at,
        })
        .collect();
    let mut claimed: BTreeSet<Uuid> = store::claim_orders(conn, &claims)
        .await?
        .into_iter()
        .collect();
    // Each claimed order decides once, with the first of its messages.
    let requests: Vec<Option<Vec<LineRequest>>> = orders
        .iter()
        .map(|env| {
            claimed.remove(&env.payload.order_id).then(|| {
                // A service line is set up, not shipped: nothing to reserve or pick.
                env.payload
                    .lines
                    .iter()
                    .filter(|l| l.setup_template_version.is_none())
                    .map(|l| LineRequest {
                        line_id: l.line_id.clone(),
                        sku: l.sku.clone(),
                        quantity: l.quantity,
                    })
                    .collect()
            })
        })
        .collect();
    let skus = distinct(requests.iter().flatten().flatten().map(|l| &l.sku));
    let mut reserved = Reserved {
        outcomes: Vec::with_capacity(orders.len()),
        touched: BTreeSet::new(),
    };
    if requests.iter().all(Option::is_none) {
        debug!("orders already reserved, backordered or cancelled; nothing to do");
        reserved.outcomes.resize(orders.len(), None);
        return Ok(reserved);
    }
    store::lock_skus(conn, &skus).await?;
    let stock = store::stock_for_update(conn, &skus).await?;
    let mut view = stock_view(conn, &skus, &stock).await?;

    let (mut movements, mut reservations, mut sources) = (Vec::new(), Vec::new(), Vec::new());
    let (mut reserved_ids, mut backordered_ids) = (Vec::new(), Vec::new());
    for (env, lines) in orders.iter().zip(requests) {
        let Some(lines) = lines else {
            debug!(order_id = %env.payload.order_id, "order already reserved, backordered or cancelled; nothing to do");
            reserved.outcomes.push(None);
            continue;
        };
        let order = &env.payload;
        let outcome = view.allocate(&lines);
        match &outcome {
            Allocated::Reserved(picks) => {
                view.take(picks);
                let (m, r) = reservation_rows(order.order_id, picks);
                sources.extend(std::iter::repeat_n(env.message_id, m.len()));
                movements.extend(m);
                reservations.extend(r);
                reserved_ids.push(order.order_id);
                reserved.touched.extend(picked_skus(picks));
                debug!(order_id = %order.order_id, warehouses = picks.len(), "reserved");
            }
            Allocated::Short(shortages) => {
                store::insert_backorder(
                    conn,
                    order.order_id,
                    &order.store_id,
                    &lines,
                    order.placed_at,
                    &env.correlation_id,
                )
                .await?;
                backordered_ids.push(order.order_id);
                info!(order_id = %order.order_id, short_lines = shortages.len(), "not enough stock; backordered");
            }
        }
        reserved.outcomes.push(Some(outcome));
    }
    apply(conn, &movements, &sources).await?;
    store::insert_reservations(conn, &reservations).await?;
    store::set_order_state(conn, &reserved_ids, OrderState::Reserved).await?;
    store::set_order_state(conn, &backordered_ids, OrderState::Backordered).await?;
    Ok(reserved)
}

/// `stock.reserved` or `stock.unavailable` for an order [`reserve_orders`] decided.
fn emit_outcome(
    cx: &mut HandlerContext<'_>,
    order: &OrderAccepted,
    outcome: &Allocated,
) -> Result<(), HandlerError> {
    match outcome {
        Allocated::Reserved(picks) => emit_reserved(cx, order.order_id, &order.store_id, picks),
        Allocated::Short(shortages) => {
            cx.emit_correlated(
                order.order_id.to_string(),
                StockUnavailable {
                    order_id: order.order_id,
                    store_id: order.store_id.clone(),
                    shortages: domain::to_shortages(shortages),
                    backordered: true,
                },
            );
            Ok(())
        }
    }
}

/// `inventory.adjusted`: apply a count or a delta, publish the new level, then serve
/// backorders if stock went up.
#[tracing::instrument(skip_all, fields(sku = %env.payload.sku, warehouse = %env.payload.warehouse_id))]
async fn inventory_adjusted(
    env: &Envelope<InventoryAdjusted>,
    cx: &mut HandlerContext<'_>,
) -> Result<(), HandlerError> {
    let adjustment = &env.payload;
    let sku = &adjustment.sku;
    let warehouse = &adjustment.warehouse_id;
    let key = format!("{}/{}", adjustment.source, adjustment.reference);
    let change = match (adjustment.set_on_hand, adjustment.delta) {
        (Some(on_hand), None) => AdjustmentChange::Count {
            on_hand,
            as_of: adjustment.as_of,
        },
        (None, Some(delta)) => AdjustmentChange::Delta(delta),
        // decode_valid refuses both of these; kept for completeness.
        _ => {
            return Err(HandlerError::permanent(
                "an adjustment needs exactly one of set_on_hand and delta",
            ));
        }
    };

    // Lock the SKUs of the backorders this may serve together with this one, in SKU order,
    // so that serving them later needs no lock out of order.
    let to_lock = with_backordered_skus(cx.conn, std::slice::from_ref(sku)).await?;
    store::lock_skus(cx.conn, &to_lock).await?;
    store::ensure_stock_row(cx.conn, warehouse, sku).await?;
    if store::movement_exists(cx.conn, MovementKind::Adjustment, &key, warehouse, sku).await? {
        info!(%key, "adjustment already applied");
        return Ok(());
    }
    let rows = store::stock_for_update(cx.conn, std::slice::from_ref(sku)).await?;
    let Some(row) = rows.iter().find(|r| &r.warehouse_id == warehouse) else {
        return Err(HandlerError::transient(anyhow!(
            "stock row of {sku} in {warehouse} vanished"
        )));
    };
    let (on_hand_delta, count_as_of) = match domain::plan_adjustment(row.level(), change) {
        Err(refused) => {
            return Err(HandlerError::permanent(format!(
                "adjustment {key} of {sku} in {warehouse} refused: {refused}"
            )));
        }
        Ok(AdjustmentOutcome::Stale { newest }) => {
            info!(%key, as_of = %adjustment.as_of, %newest, "count older than the newest applied; ignored");
            return Ok(());
        }
        Ok(AdjustmentOutcome::Apply {
            on_hand_delta,
            count_as_of,
        }) => (on_hand_delta, count_as_of),
    };

    let movement = NewMovement {
        warehouse_id: warehouse.clone(),
        sku: sku.clone(),
        kind: MovementKind::Adjustment,
        on_hand_delta,
        reserved_delta: 0,
        order_id: None,
        line_id: None,
        source_key: key,
    };
    apply(cx.conn, std::slice::from_ref(&movement), &[env.message_id]).await?;
    if let Some(as_of) = count_as_of {
        store::set_last_count(cx.conn, warehouse, sku, as_of).await?;
    }
    info!(on_hand_delta, reason = %adjustment.reason, "stock adjusted");

    let mut touched = BTreeSet::new();
    if on_hand_delta != 0 {
        touched.insert(sku.clone());
    }
    if on_hand_delta > 0 {
        serve_backorders(cx, std::slice::from_ref(sku), &mut touched, env.message_id).await?;
    }
    emit_levels(cx, &touched).await
}

/// `order.cancelled`: release what the cancelled lines (or the whole order) still hold, or
/// take the order off the backorder list. Releasing twice has no effect.
#[tracing::instrument(skip_all, fields(order_id = %env.payload.order_id))]
async fn order_cancelled(
    env: &Envelope<OrderCancelled>,
    cx: &mut HandlerContext<'_>,
) -> Result<(), HandlerError> {
    let cancel = &env.payload;
    let order_id = cancel.order_id;
    let whole = cancel.scope == CancellationScope::Order;
    // An order cancelled before inventory saw it (on hold, or messages out of order) is
    // remembered as cancelled, so that a late `order.accepted` reserves nothing.
    if whole && store::tombstone_order(cx.conn, order_id, &cancel.store_id).await? {
        info!("cancelled before anything was reserved; recorded");
        return Ok(());
    }
    // Lock order: the backorder row before the order row, as when serving backorders.
    let backorder = store::backorder_for_update(cx.conn, order_id).await?;
    let Some(state) = store::order_state_for_update(cx.conn, order_id).await? else {
        info!("lines cancelled on an order inventory has not reserved; nothing to release");
        return Ok(());
    };
    let cancel_key = match cancel.request_id {
        Some(id) => format!("request:{id}"),
        None => format!("message:{}", env.message_id),
    };
    match state {
        OrderState::Cancelled => {
            info!("already cancelled");
            Ok(())
        }
        OrderState::Pending => Err(HandlerError::transient(anyhow!(
            "order {order_id} is being reserved right now"
        ))),
        OrderState::Backordered => {
            if !store::claim_cancellation(cx.conn, &cancel_key, order_id).await? {
                info!(%cancel_key, "cancellation already applied");
                return Ok(());
            }
            let left = match (&backorder, whole) {
                (Some(stored), false) => {
                    let cancelled: Vec<(String, u32)> = cancel
                        .lines
                        .iter()
                        .map(|l| (l.line_id.clone(), l.quantity.get()))
                        .collect();
                    domain::reduce_lines(&stored.backorder.lines, &cancelled)
                }
                _ => Vec::new(),
            };
            if left.is_empty() {
                store::delete_backorders(cx.conn, &[order_id]).await?;
                store::set_order_state(cx.conn, &[order_id], OrderState::Cancelled).await?;
                info!("backordered order cancelled; taken off the backorder list");
            } else {
                store::update_backorder_lines(cx.conn, order_id, &left).await?;
                info!(lines_left = left.len(), "backordered lines cancelled");
            }
            Ok(())
        }
        OrderState::Reserved => release(env.message_id, cancel, &cancel_key, cx).await,
    }
}

/// Releases a reserved order's cancelled units.
async fn release(
    message_id: Uuid,
    cancel: &OrderCancelled,
    cancel_key: &str,
    cx: &mut HandlerContext<'_>,
) -> Result<(), HandlerError> {
    let order_id = cancel.order_id;
    let whole = cancel.scope == CancellationScope::Order;
    if !store::claim_cancellation(cx.conn, cancel_key, order_id).await? {
        info!(%cancel_key, "cancellation already applied");
        return Ok(());
    }
    // Which SKUs to lock; the reservations cannot change meanwhile (the order row is ours).
    let seen = store::reservations(cx.conn, order_id, false).await?;
    let skus = distinct(seen.iter().map(|r| &r.sku));
    let to_lock = with_backordered_skus(cx.conn, &skus).await?;
    store::lock_skus(cx.conn, &to_lock).await?;
    store::stock_for_update(cx.conn, &skus).await?;
    let reservations = store::reservations(cx.conn, order_id, true).await?;

    // (line, warehouse, sku, units)
    let mut plan: Vec<(String, WarehouseId, Sku, u64)> = Vec::new();
    if whole {
        plan.extend(reservations.iter().filter(|r| r.open() > 0).map(|r| {
            (
                r.line_id.clone(),
                r.warehouse_id.clone(),
                r.sku.clone(),
                r.open(),
            )
        }));
    } else {
        for line in &cancel.lines {
            let of_line: Vec<&store::Reservation> = reservations
                .iter()
                .filter(|r| r.line_id == line.line_id)
                .collect();
            let open: Vec<(WarehouseId, u64)> = of_line
                .iter()
                .map(|r| (r.warehouse_id.clone(), r.open()))
                .collect();
            for (warehouse, units) in domain::plan_release(&open, Some(line.quantity.get())) {
                if let Some(r) = of_line.iter().find(|r| r.warehouse_id == warehouse) {
                    plan.push((line.line_id.clone(), warehouse, r.sku.clone(), units));
                }
            }
        }
    }
    if whole {
        store::set_order_state(cx.conn, &[order_id], OrderState::Cancelled).await?;
    }
    if plan.is_empty() {
        info!("nothing left to release (already released or shipped)");
        return Ok(());
    }

    let movements: Vec<NewMovement> = plan
        .iter()
        .map(|(line, warehouse, sku, units)| NewMovement {
            warehouse_id: warehouse.clone(),
            sku: sku.clone(),
            kind: MovementKind::Release,
            on_hand_delta: 0,
            reserved_delta: -as_i64(*units),
            order_id: Some(order_id),
            line_id: Some(line.clone()),
            source_key: format!("{cancel_key}/{line}"),
        })
        .collect();
    apply(cx.conn, &movements, &[message_id]).await?;
    let released: Vec<(String, WarehouseId, u64)> = plan
        .iter()
        .map(|(line, warehouse, _, units)| (line.clone(), warehouse.clone(), *units))
        .collect();
    store::add_released(cx.conn, order_id, &released).await?;
    info!(lines = plan.len(), "reservation released");

    cx.emit_correlated(
        order_id.to_string(),
        StockReleased {
            order_id,
            store_id: cancel.store_id.clone(),
            reason: if whole {
                ReleaseReason::OrderCancelled
            } else {
                ReleaseReason::LinesCancelled
            },
            lines: plan
                .iter()
                .filter_map(|(line, warehouse, sku, units)| {
                    let quantity = Quantity::new(u32::try_from(*units).ok()?).ok()?;
                    Some(ReleasedLine {
                        warehouse_id: warehouse.clone(),
                        line_id: line.clone(),
                        sku: sku.clone(),
                        quantity,
                    })
                })
                .collect(),
        },
    );

    let released_skus = distinct(plan.iter().map(|(_, _, sku, _)| sku));
    let mut touched: BTreeSet<Sku> = released_skus.iter().cloned().collect();
    serve_backorders(cx, &released_skus, &mut touched, message_id).await?;
    emit_levels(cx, &touched).await
}

/// `shipment.dispatched`: the shipped units leave stock, out of the line's reservation, and
/// `stock.level_changed` says so. Idempotent by shipment and line.
#[tracing::instrument(skip_all, fields(order_id = %env.payload.order_id, shipment_id = %env.payload.shipment_id))]
async fn shipment_dispatched(
    env: &Envelope<ShipmentDispatched>,
    cx: &mut HandlerContext<'_>,
) -> Result<(), HandlerError> {
    let changed = dispatch_shipments(cx.conn, &[env]).await?;
    emit_levels(cx, &changed).await
}

/// Books a batch's dispatches together: what [`shipment_dispatched`] does for each, in
/// arrival order, in a handful of statements for all of them (lock and read the stock and
/// the orders' reservations, look up what is booked already, ledger, reservations), and one
/// `stock.level_changed` per SKU whose stock changed.
async fn dispatch_together(msgs: &[&Incoming], batch: &mut Batch<'_>) -> Result<(), HandlerError> {
    let envelopes = msgs
        .iter()
        .map(|m| match m.input::<Input>()? {
            Input::Dispatched(env) => Ok(env),
            _ => Err(HandlerError::permanent("not a shipment.dispatched")),
        })
        .collect::<Result<Vec<_>, HandlerError>>()?;
    let changed = dispatch_shipments(batch.conn, &envelopes).await?;
    match msgs.last() {
        Some(last) => emit_levels(&mut batch.context(last), &changed).await,
        None => Ok(()),
    }
}

/// Turns the dispatched units of `shipments` into deductions, each in turn against the
/// locked stock and reservations (an earlier dispatch's deduction is seen by the later ones,
/// as if each had its own transaction); returns the SKUs whose stock changed. Turning a
/// reservation into a deduction lowers on-hand and reserved alike, so `available` stays,
/// but `stock.level_changed` carries on-hand and reserved too: a connector syncing them
/// must see the change. Units of untracked products are not counted and not deducted.
async fn dispatch_shipments(
    conn: &mut PgConnection,
    shipments: &[&Envelope<ShipmentDispatched>],
) -> Result<BTreeSet<Sku>, HandlerError> {
    let skus = distinct(
        shipments
            .iter()
            .flat_map(|env| env.payload.items.iter().map(|i| &i.sku)),
    );
    let untracked = store::untracked_products(conn, &skus).await?;
    store::lock_skus(conn, &skus).await?;
    let stock = store::stock_for_update(conn, &skus).await?;
    let mut orders: Vec<Uuid> = shipments.iter().map(|env| env.payload.order_id).collect();
    orders.sort_unstable();
    orders.dedup();
    let mut reservations = store::reservations_of(conn, &orders, true).await?;
    let key_of = |shipment: &ShipmentDispatched, line_id: &str| {
        format!("{}/{}", shipment.shipment_id, line_id)
    };
    let keys: Vec<String> = shipments
        .iter()
        .flat_map(|env| {
            env.payload
                .items
                .iter()
                .map(|i| key_of(&env.payload, &i.line_id))
        })
        .collect();
    let mut booked = store::movements_booked(conn, MovementKind::Dispatch, &keys).await?;
    let mut levels: std::collections::BTreeMap<(WarehouseId, Sku), Level> = stock
        .iter()
        .map(|r| ((r.warehouse_id.clone(), r.sku.clone()), r.level()))
        .collect();

    let (mut movements, mut sources, mut dispatched) = (Vec::new(), Vec::new(), Vec::new());
    let mut changed: BTreeSet<Sku> = BTreeSet::new();
    for env in shipments {
        let shipment = &env.payload;
        let warehouse = &shipment.warehouse_id;
        let span = tracing::info_span!("dispatch", order_id = %shipment.order_id, shipment_id = %shipment.shipment_id);
        let _entered = span.enter();
        let before = movements.len();
        for item in &shipment.items {
            let key = key_of(shipment, &item.line_id);
            if !booked.insert((key.clone(), warehouse.to_string(), item.sku.to_string())) {
                debug!(line_id = %item.line_id, "already booked");
                continue;
            }
            let reservation = reservations.get_mut(&shipment.order_id).and_then(|rs| {
                rs.iter_mut().find(|r| {
                    r.line_id == item.line_id && &r.warehouse_id == warehouse && r.sku == item.sku
                })
            });
            let open = reservation.as_deref().map_or(0, store::Reservation::open);
            if open == 0 && untracked.contains(&item.sku) {
                // Never reserved, never counted (a reservation made before the product
                // stopped being tracked is still turned into a deduction).
                debug!(line_id = %item.line_id, "stock of the product is not tracked");
                continue;
            }
            let level = levels
                .get(&(warehouse.clone(), item.sku.clone()))
                .copied()
                .unwrap_or(Level {
                    on_hand: 0,
                    reserved: 0,
                    last_count_as_of: None,
                });
            let plan =
                domain::plan_dispatch(item.quantity.get(), open, level).map_err(|refused| {
                    HandlerError::permanent(format!(
                        "dispatch of shipment {} line {} ({} in {warehouse}) refused: {refused}",
                        shipment.shipment_id, item.line_id, item.sku
                    ))
                })?;
            if plan.from_free_stock > 0 {
                warn!(line_id = %item.line_id, units = plan.from_free_stock, "shipped more than was reserved; taken from free stock");
            }
            changed.insert(item.sku.clone());
            levels.insert(
                (warehouse.clone(), item.sku.clone()),
                Level {
                    on_hand: level
                        .on_hand
                        .saturating_sub(plan.from_reservation + plan.from_free_stock),
                    reserved: level.reserved.saturating_sub(plan.from_reservation),
                    ..level
                },
            );
            movements.push(NewMovement {
                warehouse_id: warehouse.clone(),
                sku: item.sku.clone(),
                kind: MovementKind::Dispatch,
                on_hand_delta: plan.on_hand_delta(),
                reserved_delta: plan.reserved_delta(),
                order_id: Some(shipment.order_id),
                line_id: Some(item.line_id.clone()),
                source_key: key,
            });
            sources.push(env.message_id);
            if plan.from_reservation > 0 {
                if let Some(r) = reservation {
                    r.dispatched += plan.from_reservation;
                }
                dispatched.push((
                    shipment.order_id,
                    item.line_id.clone(),
                    warehouse.clone(),
                    plan.from_reservation,
                ));
            }
        }
        if movements.len() == before {
            info!("shipment already booked");
        } else {
            info!(
                items = movements.len() - before,
                "dispatched units deducted"
            );
        }
    }
    apply(conn, &movements, &sources).await?;
    // One row per reservation: the same line of one order from one warehouse twice (two
    // shipments from one warehouse) adds up.
    let mut rows: std::collections::BTreeMap<(Uuid, String, WarehouseId), u64> =
        std::collections::BTreeMap::new();
    for (order, line, warehouse, units) in dispatched {
        *rows.entry((order, line, warehouse)).or_default() += units;
    }
    let rows: Vec<(Uuid, String, WarehouseId, u64)> = rows
        .into_iter()
        .map(|((o, l, w), u)| (o, l, w, u))
        .collect();
    store::add_dispatched(conn, &rows).await?;
    Ok(changed)
}

/// `catalog.product_upserted`: keep the GTINs (for level messages); newest wins.
#[tracing::instrument(skip_all, fields(sku = %env.payload.sku))]
async fn product_upserted(
    env: &Envelope<ProductUpserted>,
    cx: &mut HandlerContext<'_>,
) -> Result<(), HandlerError> {
    let product = &env.payload;
    let stored = store::upsert_product(
        cx.conn,
        &product.sku,
        &product.gtins,
        product.stock_tracked,
        product.active,
        product.updated_at,
    )
    .await?;
    debug!(stored, "catalog product");
    Ok(())
}

/// `warehouse.upserted`: a warehouse's priority, address and whether orders are allocated
/// to it; the newest revision wins. Allocations already made stand. A warehouse open for
/// orders may serve backorders (its stock, or the first place to ship untracked products
/// from), so they are tried, oldest first, as after a delivery of stock. Under the
/// stock-wide key held exclusively, like an adjustment.
#[tracing::instrument(skip_all, fields(warehouse = %env.payload.warehouse_id, revision = env.payload.revision))]
async fn warehouse_upserted(
    env: &Envelope<WarehouseUpserted>,
    cx: &mut HandlerContext<'_>,
) -> Result<(), HandlerError> {
    let w = &env.payload;
    let stored = store::upsert_warehouse(cx.conn, w).await?;
    info!(
        stored,
        priority = w.priority,
        active = w.active,
        "warehouse upserted"
    );
    if !(stored && w.active) {
        return Ok(());
    }
    let waiting = store::backordered_skus(cx.conn).await?;
    if waiting.is_empty() {
        return Ok(());
    }
    store::lock_skus(cx.conn, &waiting).await?;
    let mut touched = BTreeSet::new();
    serve_backorders(cx, &waiting, &mut touched, env.message_id).await?;
    emit_levels(cx, &touched).await
}

/// Serves backorders that need any of `changed` (whose stock just went up), oldest first,
/// by the fairness rule of [`domain::plan_backorders`]. Adds the SKUs it reserves to
/// `touched`.
async fn serve_backorders(
    cx: &mut HandlerContext<'_>,
    changed: &[Sku],
    touched: &mut BTreeSet<Sku>,
    message_id: Uuid,
) -> Result<(), HandlerError> {
    // The set of backorders needing `changed` cannot grow while we hold their SKU locks
    // (backordering needs them too), so the SKUs read here are all the ones to lock.
    let needed = store::skus_of_backorders_needing(cx.conn, changed).await?;
    if needed.is_empty() {
        return Ok(());
    }
    store::lock_skus(cx.conn, &needed).await?;
    let waiting = store::backorders_needing_for_update(cx.conn, changed).await?;
    if waiting.is_empty() {
        return Ok(());
    }
    let skus = distinct(
        waiting
            .iter()
            .flat_map(|b| b.backorder.lines.iter().map(|l| &l.sku)),
    );
    // Usually a no-op: a backorder changed since the first read is the only way to get here
    // with an unlocked SKU.
    store::lock_skus(cx.conn, &skus).await?;
    let stock = store::stock_for_update(cx.conn, &skus).await?;
    let mut view = stock_view(cx.conn, &skus, &stock).await?;
    let queue: Vec<domain::Backorder> = waiting.iter().map(|b| b.backorder.clone()).collect();
    let decisions = domain::plan_backorders(&mut view, &queue);

    let mut movements = Vec::new();
    let mut reservations = Vec::new();
    let mut served = Vec::new();
    let mut emits: Vec<(Uuid, StoreId, Vec<WarehousePicks>)> = Vec::new();
    for ((order_id, decision), stored) in decisions.into_iter().zip(&waiting) {
        match decision {
            BackorderDecision::Serve(picks) => {
                let (m, r) = reservation_rows(order_id, &picks);
                movements.extend(m);
                reservations.extend(r);
                served.push(order_id);
                touched.extend(picked_skus(&picks));
                emits.push((order_id, stored.store_id.clone(), picks));
            }
            BackorderDecision::StillShort(_) => debug!(%order_id, "backorder still short"),
            BackorderDecision::Behind { sku, older } => {
                debug!(%order_id, %sku, %older, "backorder waits behind an older one");
            }
        }
    }
    if served.is_empty() {
        debug!(waiting = waiting.len(), "no backorder can be served yet");
        return Ok(());
    }
    apply(cx.conn, &movements, &[message_id]).await?;
    store::insert_reservations(cx.conn, &reservations).await?;
    store::delete_backorders(cx.conn, &served).await?;
    store::set_order_state(cx.conn, &served, OrderState::Reserved).await?;
    info!(
        served = served.len(),
        still_waiting = waiting.len() - served.len(),
        "backorders served"
    );
    for (order_id, store_id, picks) in emits {
        emit_reserved(cx, order_id, &store_id, &picks)?;
    }
    Ok(())
}

/// `skus` and the SKUs of every backorder needing any of them, sorted: what to lock before a
/// change that may serve backorders. Read without locks: a backorder added meanwhile is
/// caught by [`serve_backorders`], which locks what is still missing.
async fn with_backordered_skus(
    conn: &mut PgConnection,
    skus: &[Sku],
) -> Result<Vec<Sku>, HandlerError> {
    let needed = store::skus_of_backorders_needing(conn, skus).await?;
    Ok(distinct(skus.iter().chain(&needed)))
}

/// The ledger rows and reservation rows of an allocation.
fn reservation_rows(
    order_id: Uuid,
    picks: &[WarehousePicks],
) -> (Vec<NewMovement>, Vec<NewReservation>) {
    let mut movements = Vec::new();
    let mut reservations = Vec::new();
    for warehouse in picks {
        for pick in warehouse.picks.iter().filter(|p| p.reserved) {
            movements.push(NewMovement {
                warehouse_id: warehouse.warehouse_id.clone(),
                sku: pick.sku.clone(),
                kind: MovementKind::Reservation,
                on_hand_delta: 0,
                reserved_delta: i64::from(pick.quantity),
                order_id: Some(order_id),
                line_id: Some(pick.line_id.clone()),
                source_key: format!("{order_id}/{}", pick.line_id),
            });
            reservations.push(NewReservation {
                order_id,
                line_id: pick.line_id.clone(),
                warehouse_id: warehouse.warehouse_id.clone(),
                sku: pick.sku.clone(),
                quantity: pick.quantity,
            });
        }
    }
    (movements, reservations)
}

/// Writes movements through the ledger, insisting that each one is new and lands on a stock
/// row. Either failing means the callers' checks missed something: nothing is written.
async fn apply(
    conn: &mut PgConnection,
    movements: &[NewMovement],
    sources: &[Uuid],
) -> Result<(), HandlerError> {
    if movements.is_empty() {
        return Ok(());
    }
    let applied = store::apply_movements(conn, movements, sources)
        .await
        .map_err(|err| {
            let refused_by_check = err
                .as_database_error()
                .and_then(|e| e.code())
                .is_some_and(|code| code == "23514");
            if refused_by_check {
                // The last line of defence held: this would have oversold. Retrying the
                // same message cannot help.
                HandlerError::permanent(format!("stock invariant refused the change: {err}"))
            } else {
                HandlerError::from(err)
            }
        })?;
    let rows: BTreeSet<(&WarehouseId, &Sku)> = movements
        .iter()
        .map(|m| (&m.warehouse_id, &m.sku))
        .collect();
    let expected = u64::try_from(movements.len()).unwrap_or(u64::MAX);
    let expected_rows = u64::try_from(rows.len()).unwrap_or(u64::MAX);
    if applied.inserted != expected || applied.stock_rows != expected_rows {
        return Err(HandlerError::transient(anyhow!(
            "ledger mismatch: {} of {expected} movements new, {} of {expected_rows} stock rows \
             changed",
            applied.inserted,
            applied.stock_rows
        )));
    }
    Ok(())
}

fn emit_reserved(
    cx: &mut HandlerContext<'_>,
    order_id: Uuid,
    store_id: &StoreId,
    picks: &[WarehousePicks],
) -> Result<(), HandlerError> {
    // No allocation at all: nothing to ship (every line a service).
    let allocations = domain::to_allocations(picks);
    cx.emit_correlated(
        order_id.to_string(),
        StockReserved {
            order_id,
            store_id: store_id.clone(),
            allocations,
        },
    );
    Ok(())
}

/// Emits one `stock.level_changed` per SKU in `touched`, with the SKU's next sequence number.
/// The SKUs' `levels` rows are locked by this transaction, so sequence order is commit
/// order.
async fn emit_levels(
    cx: &mut HandlerContext<'_>,
    touched: &BTreeSet<Sku>,
) -> Result<(), HandlerError> {
    if touched.is_empty() {
        return Ok(());
    }
    let skus: Vec<Sku> = touched.iter().cloned().collect();
    let as_of = Utc::now();
    for snapshot in store::level_snapshots(cx.conn, &skus).await? {
        let sku = snapshot.sku.to_string();
        if let Some(level) = domain::level_changed(
            snapshot.sku,
            snapshot.gtins,
            &snapshot.warehouses,
            snapshot.sequence,
            as_of,
        ) {
            cx.emit_correlated(sku, level);
        }
    }
    Ok(())
}

/// The distinct SKUs of `skus`, sorted.
fn distinct<'a>(skus: impl Iterator<Item = &'a Sku>) -> Vec<Sku> {
    skus.cloned()
        .collect::<BTreeSet<Sku>>()
        .into_iter()
        .collect()
}

fn picked_skus(picks: &[WarehousePicks]) -> BTreeSet<Sku> {
    picks
        .iter()
        .flat_map(|w| w.picks.iter().filter(|p| p.reserved).map(|p| p.sku.clone()))
        .collect()
}

/// The allocator's view of the locked `stock` of `skus` in the warehouses open for orders,
/// knowing which of them are not tracked and where an order of only those ships from.
async fn stock_view(
    conn: &mut PgConnection,
    skus: &[Sku],
    stock: &[StockRow],
) -> Result<StockView, HandlerError> {
    let untracked = store::untracked_products(conn, skus).await?;
    let default_warehouse = if untracked.is_empty() {
        None
    } else {
        store::most_preferred_warehouse(conn).await?
    };
    let open = stock.iter().filter(|row| row.active).map(StockRow::slot);
    Ok(StockView::new(open).with_untracked(untracked, default_warehouse))
}

fn as_i64(units: u64) -> i64 {
    i64::try_from(units).unwrap_or(i64::MAX)
}
