//! `order.placed` for an order that exists already: a re-push. A new order is decided by
//! [`crate::flow`]; a re-push changes a known order and is handled alone where it arrived.
//!
//! The same or a lower revision is noted as a duplicate; a higher revision of an order on
//! hold replaces it (its lines matched again, its exceptions reconciled); a higher revision
//! of an accepted order is applied as commands (see the crate documentation for why).

use anyhow::anyhow;
use orderly_contracts::messages::{
    CancellationScope, CancelledLine, ItemException, ItemProblem, OrderAddressChanged, OrderPlaced,
};
use orderly_contracts::types::{Quantity, Sku};
use orderly_runtime::{HandlerContext, HandlerError};

use super::apply::{apply_cancellation, match_lines, try_accept};
use crate::domain::{self, AddressChange, CancelPlan, Facts, Line, OrderHead, RepushPlan};
use crate::steps::{emit, emit_on_hold, raise};
use crate::store::{self, Cause, StoredOrder, TimelineKind};

/// A re-push of a known order (an `order.placed` the flow does not decide).
pub(super) async fn order_placed_again(
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

pub(super) async fn repush(
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
                TimelineKind::DuplicateRepush,
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
                TimelineKind::RevisionIgnored,
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
                    // Fulfillment's copy and the warehouse must hear of it, or the parcel
                    // goes to the old address.
                    emit(
                        cx,
                        order_id,
                        OrderAddressChanged {
                            order_id,
                            store_id: head.store_id.clone(),
                            external_order_id: head.external_order_id.clone(),
                            revision: placed.revision,
                            // Only taken while no operator changed the address.
                            amendment: 0,
                            billing_address: placed.billing_address.clone(),
                            shipping_address: placed.shipping_address.clone(),
                        },
                    )?;
                    notes.push(
                        "addresses updated (sent to fulfillment and the warehouse)".to_owned(),
                    );
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
                TimelineKind::RevisionApplied,
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
pub(super) async fn replace_on_hold(
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
        TimelineKind::RevisionApplied,
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
