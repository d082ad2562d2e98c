//! The entities a batch's messages will change, as lock keys the consumer takes before any
//! handler runs (see `orderly_runtime::LockKey`).
//!
//! Keys come from the decoded messages ([`OrdersInput`]), never from raw JSON: a renamed
//! contract field fails to compile instead of silently dropping a lock, and GTINs are
//! compared in the one form the [`Gtin`] type gives them (GTIN-14). A message that does not
//! decode contributes no keys: its handler fails on its own.
//!
//! What is locked, and why:
//! - every message about a known order: the order (`order`);
//! - an `order.placed`: its business key (`order-ref`), the order when it exists already
//!   (found by that key, for the whole batch in one statement, so a re-push and the events
//!   about the order share one key), its customer's statistics row (`customer`), and shared
//!   keys on the products and GTINs its lines name;
//! - a `catalog.product_upserted`: the product and its GTINs exclusively, and the orders it
//!   may release from hold. Placed orders and upserts of the same product therefore take
//!   turns: either the order sees the product, or the upsert sees the exception the order
//!   raised and matches the held line.
//!
//! - an `order.cancel_requested`: the order it names, by id, or by business key (the
//!   `order-ref` key a re-push of the same order takes, and the order when it exists,
//!   looked up with the placed orders' keys).

use std::collections::HashMap;

use orderly_contracts::messages::{OrderCancelRequested, OrderPlaced, ProductUpserted};
use orderly_contracts::types::Gtin;
use orderly_runtime::{HandlerError, Incoming, LockKey};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain;
use crate::input::OrdersInput;
use crate::steps::business_key_ref;
use crate::store;

/// The lock keys of a batch's messages; the business keys of all its `order.placed` are
/// looked up in one statement.
pub(crate) async fn of_batch(
    msgs: &[&Incoming],
    conn: &mut PgConnection,
) -> Result<Vec<LockKey>, HandlerError> {
    use OrdersInput as I;
    let inputs: Vec<&OrdersInput> = msgs
        .iter()
        .filter_map(|m| m.input::<OrdersInput>().ok())
        .collect();
    let refs: Vec<(&str, &str, &str)> = inputs
        .iter()
        .filter_map(|input| match input {
            I::Placed(env) => Some(business_key_ref(&env.payload)),
            I::CancelRequested(env) => cancelled_ref(&env.payload),
            _ => None,
        })
        .collect();
    let known = store::orders_by_keys(conn, &refs).await?;
    let mut keys = Vec::new();
    for input in inputs {
        match input {
            I::Placed(env) => keys.extend(placed_keys(&env.payload, &known)),
            I::ProductUpserted(env) => keys.extend(product_keys(&env.payload, conn).await?),
            I::StoreUpserted(env) => keys.push(LockKey::exclusive("store", &env.payload.store_id)),
            I::CancelRequested(env) => keys.extend(cancel_keys(&env.payload, &known)),
            I::RefundRequested(env) => keys.push(order(env.payload.order_id)),
            I::ExceptionResolved(env) => keys.push(order(env.payload.order_id)),
            I::NoteRequested(env) => keys.push(order(env.payload.order_id)),
            I::HoldRequested(env) => keys.push(order(env.payload.order_id)),
            I::ReleaseRequested(env) => keys.push(order(env.payload.order_id)),
            I::AddressChangeRequested(env) => keys.push(order(env.payload.order_id)),
            I::StockReserved(env) => keys.push(order(env.payload.order_id)),
            I::StockUnavailable(env) => keys.push(order(env.payload.order_id)),
            I::SetupCompleted(env) => keys.push(order(env.payload.order_id)),
            I::StockReleased(env) => keys.push(order(env.payload.order_id)),
            I::ShipmentRequested(env) => keys.push(order(env.payload.order_id)),
            I::ShipmentDispatched(env) => keys.push(order(env.payload.order_id)),
            I::ShipmentDelivered(env) => keys.push(order(env.payload.order_id)),
            I::ShipmentException(env) => keys.push(order(env.payload.order_id)),
            I::InvoiceIssued(env) => keys.push(order(env.payload.order_id)),
            I::CreditNoteIssued(env) => keys.push(order(env.payload.order_id)),
            I::NotificationSent(env) => keys.extend(env.payload.order_id.map(order)),
            I::NotificationFailed(env) => keys.extend(env.payload.order_id.map(order)),
        }
    }
    Ok(keys)
}

/// The business key a cancellation request names its order by, if it does.
fn cancelled_ref(request: &OrderCancelRequested) -> Option<(&str, &str, &str)> {
    let reference = &request.order;
    Some((
        request.store_id.as_str(),
        reference.channel.as_ref()?.as_str(),
        reference.external_order_id.as_deref()?,
    ))
}

/// What an `order.cancel_requested` locks: its order by id, or its business key and the
/// order if it is known (`known`, by business key).
fn cancel_keys(
    request: &OrderCancelRequested,
    known: &HashMap<(String, String, String), Uuid>,
) -> Vec<LockKey> {
    if let Some(order_id) = request.order.order_id {
        return vec![order(order_id)];
    }
    let Some((store_id, channel, external)) = cancelled_ref(request) else {
        return Vec::new();
    };
    let mut keys = vec![LockKey::exclusive(
        "order-ref",
        format_args!("{store_id}/{channel}/{external}"),
    )];
    let business_key = (store_id.to_owned(), channel.to_owned(), external.to_owned());
    keys.extend(known.get(&business_key).map(|id| order(*id)));
    keys
}

/// The exclusive key of one order.
fn order(order_id: Uuid) -> LockKey {
    LockKey::exclusive("order", order_id)
}

/// What an `order.placed` locks: its business key, the order if it exists (`known`, by
/// business key), its customer's statistics, and (shared) the products its lines name.
fn placed_keys(
    placed: &OrderPlaced,
    known: &HashMap<(String, String, String), Uuid>,
) -> Vec<LockKey> {
    let (store_id, channel, external) = business_key_ref(placed);
    let mut keys = vec![LockKey::exclusive(
        "order-ref",
        format_args!("{store_id}/{channel}/{external}"),
    )];
    let business_key = (store_id.to_owned(), channel.to_owned(), external.to_owned());
    if let Some(order_id) = known.get(&business_key) {
        keys.push(order(*order_id));
    }
    let customer = &placed.customer;
    if let Some(key) = domain::returning_customer_key(
        customer.id.as_deref(),
        customer.email.as_ref().map(|e| e.as_str()),
    ) {
        keys.push(LockKey::exclusive(
            "customer",
            format_args!("{store_id}/{key}"),
        ));
    }
    // Shared keys on the products the lines name, against a concurrent upsert of one of
    // them (exclusive there): either this order sees the product, or the upsert sees the
    // exception this order raises and matches the line.
    for line in &placed.lines {
        if let Some(sku) = &line.sku {
            keys.push(LockKey::shared("product", sku));
        }
        if let Some(gtin) = &line.gtin {
            keys.push(LockKey::shared("gtin", gtin.to_gtin14()));
        }
    }
    keys
}

/// What a `catalog.product_upserted` locks: the product, its GTINs, and the orders it may
/// release from hold (read, not locked, here: the consumer locks their keys).
async fn product_keys(
    product: &ProductUpserted,
    conn: &mut PgConnection,
) -> Result<Vec<LockKey>, HandlerError> {
    let gtins: Vec<String> = product.gtins.iter().map(Gtin::to_gtin14).collect();
    let held = store::open_exceptions_for_product(conn, product.sku.as_str(), &gtins).await?;
    let mut keys = vec![LockKey::exclusive("product", &product.sku)];
    keys.extend(gtins.iter().map(|g| LockKey::exclusive("gtin", g)));
    keys.extend(held.into_iter().map(|(_, order_id, _)| order(order_id)));
    Ok(keys)
}
