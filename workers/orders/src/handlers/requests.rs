//! Customers' and operators' requests about an order: `order.cancel_requested` and
//! `order.refund_requested` (an operator's notes and holds are in [`super::operator`]).
//!
//! A request is recorded with its outcome (refusals are outcomes, not errors) and answered
//! with `order.request_answered` (see [`super::answer`]); one about an order that does not
//! exist, or that names another store, is rejected with the reason on record. A request id
//! that already has a final outcome is only noted on the timeline, and answered `duplicate`.

use orderly_contracts::Message;
use orderly_contracts::messages::{OrderCancelRequested, OrderRefundRequested};
use orderly_contracts::types::StoreId;
use orderly_runtime::{HandlerContext, HandlerError};
use uuid::Uuid;

use super::answer::{self, Answer, Request};
use super::apply::{actor, apply_cancellation};
use crate::domain;
use crate::store::{self, Cause, TimelineKind};

/// A request that was handled before, by its id.
struct Earlier<'a> {
    prev: Option<store::RequestOutcome>,
    kind: TimelineKind,
    what: &'static str,
    request_type: &'static str,
    request_id: Uuid,
    store_id: &'a StoreId,
}

/// A request whose id already has a final outcome: noted on the order's timeline and
/// answered `duplicate`, nothing else. A rejected one is judged again (its cause may be
/// fixed).
async fn seen_before(
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
    earlier: Earlier<'_>,
) -> Result<bool, HandlerError> {
    let Some(prev) = earlier.prev.filter(|p| p.outcome != "rejected") else {
        return Ok(false);
    };
    if let Some(order_id) = prev.order_id {
        let detail = format!(
            "{} request {} received again; already handled ({})",
            earlier.what, earlier.request_id, prev.outcome
        );
        store::add_timeline(cx.conn, order_id, earlier.kind, cause, &detail).await?;
        answer::send(
            cx,
            Request {
                kind: earlier.request_type,
                request_id: Some(earlier.request_id),
                order_id,
                store_id: earlier.store_id,
            },
            Answer::duplicate(detail),
        )?;
    }
    Ok(true)
}

#[tracing::instrument(skip_all, fields(message_id = %cause.message_id))]
pub(super) async fn cancel_requested(
    p: &OrderCancelRequested,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let prev = store::cancellation_outcome(cx.conn, p.request_id).await?;
    let earlier = Earlier {
        prev,
        kind: TimelineKind::CancelDuplicate,
        what: "Cancellation",
        request_type: OrderCancelRequested::TYPE,
        request_id: p.request_id,
        store_id: &p.store_id,
    };
    if seen_before(cx, cause, earlier).await? {
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
            TimelineKind::Cancellation
        } else {
            TimelineKind::CancellationRefused
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
    answer::send(
        cx,
        Request {
            kind: OrderCancelRequested::TYPE,
            request_id: Some(p.request_id),
            order_id,
            store_id: &head.store_id,
        },
        Answer::of(plan.scope.is_some(), plan.describe(), plan.refused.clone()),
    )?;
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

pub(super) fn describe_ref(r: &orderly_contracts::messages::OrderRef) -> String {
    match (&r.order_id, &r.channel, &r.external_order_id) {
        (Some(id), _, _) => id.to_string(),
        (None, Some(c), Some(e)) => format!("{e} ({c})"),
        _ => "(unnamed)".to_owned(),
    }
}

#[tracing::instrument(skip_all, fields(message_id = %cause.message_id))]
pub(super) async fn refund_requested(
    p: &OrderRefundRequested,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let prev = store::refund_outcome(cx.conn, p.request_id).await?;
    let earlier = Earlier {
        prev,
        kind: TimelineKind::RefundDuplicate,
        what: "Refund",
        request_type: OrderRefundRequested::TYPE,
        request_id: p.request_id,
        store_id: &p.store_id,
    };
    if seen_before(cx, cause, earlier).await? {
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
    // Shipping and a free amount are credited by invoicing as asked: recorded here.
    let beyond_lines = p.refund_shipping || p.amount.is_some();
    let outcome = plan.outcome(beyond_lines);
    let mut what: Vec<String> = plan
        .accepted
        .iter()
        .map(|(l, q)| format!("line {l} × {q}"))
        .collect();
    if p.refund_shipping {
        what.push("shipping".to_owned());
    }
    if let Some(amount) = p.amount {
        what.push(format!(
            "an amount of {amount} {}",
            head_currency(stored.as_ref())
        ));
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
            TimelineKind::Refund
        } else {
            TimelineKind::RefundRefused
        },
        cause,
        &detail,
    )
    .await?;
    let refused = (!plan.refused.is_empty()).then(|| plan.refused.join("; "));
    store::record_refund(cx.conn, cause.message_id, p, outcome, refused.as_deref()).await?;
    answer::send(
        cx,
        Request {
            kind: OrderRefundRequested::TYPE,
            request_id: Some(p.request_id),
            order_id,
            store_id: &p.store_id,
        },
        Answer::of(
            !plan.accepted.is_empty() || beyond_lines,
            detail,
            plan.refused,
        ),
    )
}

/// The order's currency, for words on the timeline.
fn head_currency(stored: Option<&store::StoredOrder>) -> String {
    stored.map_or_else(String::new, |s| s.head.currency.to_string())
}
