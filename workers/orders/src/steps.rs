//! The steps both paths of the orders worker take: the run-at-a-time [`crate::flow`] and
//! the one-at-a-time [`crate::handlers`].
//!
//! Why a module of its own: a status change, a match against the catalog, the exceptions a
//! new order raises and the messages they send must read the same whichever path decided
//! them (the comparison tests hold the two paths to that). Both paths import these steps;
//! the steps import neither path, so no module imports one that imports it back. Nothing
//! here touches the database: the flow writes set-wise at the end of a run, the handlers as
//! they go.

use orderly_contracts::messages::{
    ItemException, ItemProblem, OrderCompleted, OrderOnHold, OrderPlaced, OrderStatusChanged,
};
use orderly_contracts::types::{Gtin, OrderStatus, Quantity, Sku, StoreId};
use orderly_contracts::{Message, Validate};
use orderly_runtime::{HandlerContext, HandlerError};
use uuid::Uuid;

use crate::domain::{self, Line, Lookup, Match, OrderHead, Transition};
use crate::store::CatalogView;

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
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

pub(crate) fn illegal(order_id: Uuid, e: domain::IllegalTransition) -> HandlerError {
    HandlerError::permanent(format!("order {order_id}: {e}"))
}

/// What one status change sends and notes: `order.status_changed` with its timeline
/// detail, and on reaching `completed` also `order.completed` with its own.
pub(crate) struct StatusChange {
    /// `order.status_changed`.
    pub(crate) changed: OrderStatusChanged,
    /// Its timeline detail.
    pub(crate) detail: String,
    /// `order.completed` and its timeline detail.
    pub(crate) completed: Option<(OrderCompleted, String)>,
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
    let why = t.why.map_or_else(|| clip(reason, 1000), str::to_owned);
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
        reason: Some(why.clone()),
        customer: head.contact(),
        nothing_to_ship: t.nothing_to_ship,
    };
    let completed = (t.to == OrderStatus::Completed).then(|| {
        let what = why.to_lowercase();
        let detail = if invoice_numbers.is_empty() {
            format!("Completed: {what} (no invoice known yet)")
        } else {
            format!("Completed: {what}; invoices {}", invoice_numbers.join(", "))
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
pub(crate) fn raise(line: &Line, problem: ItemProblem, sku: Option<Sku>) -> ItemException {
    ItemException {
        exception_id: Uuid::now_v7(),
        line_id: line.line_id.clone(),
        sku,
        gtin: line.gtin.clone(),
        title: line.title.clone(),
        quantity: Quantity::new(line.quantity).ok(),
        unit_price: Some(line.unit_price),
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

pub(crate) fn cancelled_note(head: &OrderHead) -> &'static str {
    if head.status == OrderStatus::Cancelled {
        " — the order is already cancelled"
    } else {
        ""
    }
}

/// The business key `(store, channel, external order id)` of `p` as text: how an order is
/// found again (a re-push, its lock key).
pub(crate) fn business_key_ref(p: &OrderPlaced) -> (&str, &str, &str) {
    (
        p.store_id.as_str(),
        p.channel.as_str(),
        p.external_order_id.as_str(),
    )
}
