//! An operator's requests about an order that change no line or money:
//! `order.note_requested` (an internal note on the timeline), `order.hold_requested` and
//! `order.release_requested` (a hold beside the status, announced with
//! `order.hold_changed`), and `order.address_change_requested` (new addresses before
//! anything ships, announced with `order.address_changed`). Each request id takes effect once (`operator_requests`); each is
//! answered with `order.request_answered`; one about an order that does not exist, or that
//! names another store, is rejected with the reason.

use orderly_contracts::Message;
use orderly_contracts::messages::{
    Actor, OrderAddressChangeRequested, OrderAddressChanged, OrderHoldChanged, OrderHoldRequested,
    OrderNoteRequested, OrderReleaseRequested,
};
use orderly_contracts::types::StoreId;
use orderly_runtime::{HandlerContext, HandlerError};
use uuid::Uuid;

use super::answer::{self, Answer, Request};
use super::apply::actor;
use crate::domain;
use crate::steps::emit;
use crate::store::{self, Cause, TimelineKind};

/// What the operator's requests share.
struct Asked<'a> {
    request_type: &'static str,
    kind: &'static str,
    request_id: Uuid,
    order_id: Uuid,
    store_id: &'a StoreId,
    by: &'a Actor,
}

impl<'a> Asked<'a> {
    /// Request `P` (its type from the contract), called `kind` on the timeline.
    fn of<P: Message>(
        kind: &'static str,
        request_id: Uuid,
        order_id: Uuid,
        store_id: &'a StoreId,
        by: &'a Actor,
    ) -> Self {
        Self {
            request_type: P::TYPE,
            kind,
            request_id,
            order_id,
            store_id,
            by,
        }
    }
}

/// The order, locked, in the request's store; a request answered before is noted and
/// answered `duplicate` (`Ok(None)`).
async fn take(
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
    asked: &Asked<'_>,
) -> Result<Option<store::StoredOrder>, HandlerError> {
    let stored = store::lock_order(cx.conn, asked.order_id).await?;
    let stored = match stored {
        None => {
            return Err(HandlerError::rejected(format!(
                "{} refused: no order {} in store {}",
                asked.kind, asked.order_id, asked.store_id
            )));
        }
        Some(s) if s.head.store_id != *asked.store_id => {
            return Err(HandlerError::rejected(format!(
                "{} refused: order {} belongs to store {}, the request names store {}",
                asked.kind, asked.order_id, s.head.store_id, asked.store_id
            )));
        }
        Some(s) => s,
    };
    if let Some(outcome) = store::operator_request_outcome(cx.conn, asked.request_id).await? {
        let detail = format!(
            "{} request {} by {} received again; already handled ({outcome})",
            asked.kind,
            asked.request_id,
            actor(asked.by)
        );
        store::add_timeline(
            cx.conn,
            asked.order_id,
            TimelineKind::RequestDuplicate,
            cause,
            &detail,
        )
        .await?;
        reply(cx, asked, Answer::duplicate(detail))?;
        return Ok(None);
    }
    Ok(Some(stored))
}

/// Records the request's outcome, writes the timeline and answers.
async fn finish(
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
    asked: &Asked<'_>,
    kind: TimelineKind,
    answer: Answer,
) -> Result<(), HandlerError> {
    let outcome = match answer.outcome {
        orderly_contracts::messages::RequestOutcome::Refused => "refused",
        _ => "applied",
    };
    store::record_operator_request(
        cx.conn,
        asked.request_id,
        asked.kind,
        cause.message_id,
        asked.order_id,
        outcome,
    )
    .await?;
    store::add_timeline(cx.conn, asked.order_id, kind, cause, &answer.detail).await?;
    reply(cx, asked, answer)
}

fn reply(
    cx: &mut HandlerContext<'_>,
    asked: &Asked<'_>,
    answer: Answer,
) -> Result<(), HandlerError> {
    answer::send(
        cx,
        Request {
            kind: asked.request_type,
            request_id: Some(asked.request_id),
            order_id: asked.order_id,
            store_id: asked.store_id,
        },
        answer,
    )
}

/// An operator's internal note: on the timeline once per request id.
#[tracing::instrument(skip_all, fields(message_id = %cause.message_id))]
pub(super) async fn note_requested(
    p: &OrderNoteRequested,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let asked = Asked::of::<OrderNoteRequested>(
        "note",
        p.request_id,
        p.order_id,
        &p.store_id,
        &p.requested_by,
    );
    if take(cx, cause, &asked).await?.is_none() {
        return Ok(());
    }
    let detail = format!("Note by {}: “{}”", actor(&p.requested_by), p.text);
    let answer = Answer::of(true, detail, Vec::new());
    finish(cx, cause, &asked, TimelineKind::Note, answer).await
}

/// An operator puts the order on hold: refused when already held or nothing is left to ship.
#[tracing::instrument(skip_all, fields(message_id = %cause.message_id))]
pub(super) async fn hold_requested(
    p: &OrderHoldRequested,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let asked = Asked::of::<OrderHoldRequested>(
        "hold",
        p.request_id,
        p.order_id,
        &p.store_id,
        &p.requested_by,
    );
    let Some(stored) = take(cx, cause, &asked).await? else {
        return Ok(());
    };
    let by = actor(&p.requested_by);
    let hold = store::hold(cx.conn, p.order_id).await?;
    if let Err(why) = domain::check_hold(stored.head.status, hold.held) {
        let detail = format!("Hold by {by} refused: {why}");
        let answer = Answer::refused(detail, why);
        return finish(cx, cause, &asked, TimelineKind::HoldRefused, answer).await;
    }
    let sequence = store::set_hold(cx.conn, p.order_id, true, Some(&p.reason)).await?;
    announce(
        cx,
        &stored.head,
        true,
        sequence,
        Some(&p.reason),
        &p.requested_by,
    )?;
    tracing::info!(order_id = %p.order_id, "order put on hold");
    let detail = format!(
        "Put on hold by {by}: “{}” (nothing more is asked of a warehouse until it is released)",
        p.reason
    );
    finish(
        cx,
        cause,
        &asked,
        TimelineKind::Held,
        Answer::of(true, detail, Vec::new()),
    )
    .await
}

/// An operator releases an order on hold.
#[tracing::instrument(skip_all, fields(message_id = %cause.message_id))]
pub(super) async fn release_requested(
    p: &OrderReleaseRequested,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let asked = Asked::of::<OrderReleaseRequested>(
        "release",
        p.request_id,
        p.order_id,
        &p.store_id,
        &p.requested_by,
    );
    let Some(stored) = take(cx, cause, &asked).await? else {
        return Ok(());
    };
    let by = actor(&p.requested_by);
    let hold = store::hold(cx.conn, p.order_id).await?;
    if let Err(why) = domain::check_release(hold.held) {
        let detail = format!("Release by {by} refused: {why}");
        let answer = Answer::refused(detail, why);
        return finish(cx, cause, &asked, TimelineKind::HoldRefused, answer).await;
    }
    let sequence = store::set_hold(cx.conn, p.order_id, false, p.reason.as_deref()).await?;
    announce(
        cx,
        &stored.head,
        false,
        sequence,
        p.reason.as_deref(),
        &p.requested_by,
    )?;
    tracing::info!(order_id = %p.order_id, "order released");
    let why = p
        .reason
        .as_deref()
        .map(|r| format!(": “{r}”"))
        .unwrap_or_default();
    let held_for = hold
        .hold_reason
        .map(|r| format!(" (held for “{r}”)"))
        .unwrap_or_default();
    let detail = format!("Released by {by}{why}{held_for}");
    finish(
        cx,
        cause,
        &asked,
        TimelineKind::Released,
        Answer::of(true, detail, Vec::new()),
    )
    .await
}

/// `order.hold_changed`, for fulfillment, the warehouse and the read models.
fn announce(
    cx: &mut HandlerContext<'_>,
    head: &domain::OrderHead,
    held: bool,
    sequence: i32,
    reason: Option<&str>,
    by: &Actor,
) -> Result<(), HandlerError> {
    emit(
        cx,
        head.order_id,
        OrderHoldChanged {
            order_id: head.order_id,
            store_id: head.store_id.clone(),
            external_order_id: head.external_order_id.clone(),
            held,
            sequence: u32::try_from(sequence).unwrap_or(u32::MAX),
            reason: reason.map(str::to_owned),
            by: by.clone(),
        },
    )
}

/// An operator changes the order's addresses: refused once a shipment has left or the order
/// is closed. An accepted order announces the change (`order.address_changed`, its
/// `amendment` counted up) so fulfillment ships and invoices what it has not yet asked for to
/// the new address and the warehouse relabels open shipments; an order not yet accepted only
/// changes here (its acceptance will carry the new address).
#[tracing::instrument(skip_all, fields(message_id = %cause.message_id))]
pub(super) async fn address_change_requested(
    p: &OrderAddressChangeRequested,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let asked = Asked::of::<OrderAddressChangeRequested>(
        "address",
        p.request_id,
        p.order_id,
        &p.store_id,
        &p.requested_by,
    );
    let Some(stored) = take(cx, cause, &asked).await? else {
        return Ok(());
    };
    let by = actor(&p.requested_by);
    let facts = store::load_facts(cx.conn, &stored).await?;
    if let Err(why) = domain::check_address_change(stored.head.status, facts.any_shipped()) {
        let detail = format!("Address change by {by} refused: {why}");
        let answer = Answer::refused(detail, why);
        return finish(cx, cause, &asked, TimelineKind::AddressRefused, answer).await;
    }
    let head = &stored.head;
    let (billing, shipping) =
        domain::amended_addresses(p, &head.billing_address, &head.shipping_address);
    let amendment = store::amend_addresses(cx.conn, p.order_id, &billing, &shipping).await?;
    let told = if stored.accepted {
        emit(
            cx,
            p.order_id,
            OrderAddressChanged {
                order_id: p.order_id,
                store_id: head.store_id.clone(),
                external_order_id: head.external_order_id.clone(),
                revision: head.revision,
                amendment,
                billing_address: billing,
                shipping_address: shipping,
            },
        )?;
        "sent to fulfillment and the warehouse"
    } else {
        "the order's acceptance will carry it"
    };
    tracing::info!(order_id = %p.order_id, amendment, "address changed by an operator");
    let detail = format!(
        "Address changed by {by}: “{}”: {} ({told})",
        p.reason,
        domain::describe_change(p)
    );
    finish(
        cx,
        cause,
        &asked,
        TimelineKind::AddressChanged,
        Answer::of(true, detail, Vec::new()),
    )
    .await
}
