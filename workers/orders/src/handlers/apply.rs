//! Decisions applied to one locked order as the one-at-a-time handlers make them: status
//! changes written as they happen, acceptance once nothing blocks an order on hold, the
//! cancellation plan carried out, the order a system event names loaded and checked.
//!
//! Why here and not in [`crate::steps`]: these write through the handler's transaction
//! statement by statement, which the run-at-a-time flow never does (it decides in memory
//! and writes set-wise at the end). Every message family of [`super`] uses them.

use anyhow::anyhow;
use orderly_contracts::messages::{
    Actor, CancellationScope, ExceptionResolution, ItemProblem, OrderCancelled,
};
use orderly_contracts::types::{OrderStatus, Sku, StoreId};
use orderly_runtime::{HandlerContext, HandlerError};
use uuid::Uuid;

use crate::domain::{self, CancelPlan, Event, Facts, Line, OrderHead, Transition};
use crate::steps::{clip, emit, illegal, match_against, status_change};
use crate::store::{self, Cause, Closing, Milestone, StoredOrder, TimelineKind};

pub(super) fn actor(a: &Actor) -> String {
    match &a.id {
        Some(id) => format!("{} {id}", a.kind),
        None => a.kind.to_string(),
    }
}

/// Applies status changes: stores each with the next sequence number, emits
/// `order.status_changed`, writes the timeline, and completes the order when it gets there.
pub(super) async fn apply_transitions(
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
            store::add_timeline(
                cx.conn,
                head.order_id,
                TimelineKind::Completed,
                cause,
                &detail,
            )
            .await?;
        }
    }
    Ok(())
}

/// Computes and applies the status changes `facts` call for.
pub(super) async fn advance(
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
pub(super) async fn match_lines(
    cx: &mut HandlerContext<'_>,
    store_id: &StoreId,
    lines: &mut [Line],
) -> Result<Vec<(usize, ItemProblem, Option<Sku>)>, HandlerError> {
    let of_store: Vec<(&StoreId, &Line)> = lines.iter().map(|l| (store_id, l)).collect();
    let catalog = store::catalog_view(cx.conn, &of_store).await?;
    Ok(match_against(&catalog, store_id, lines))
}

/// Accepts an order on hold once no exception is open: sends `order.accepted` (built from the
/// stored lines) and moves the status. Does nothing while exceptions remain.
pub(super) async fn try_accept(
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
        TimelineKind::Accepted,
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
pub(super) async fn apply_cancellation(
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
pub(super) async fn known_order(
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
