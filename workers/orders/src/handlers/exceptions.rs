//! Resolutions of order item exceptions (`order.exception_resolved`), from an operator or
//! from the catalog ([`super::catalog`]), through one path: the same checks, timeline
//! entries and acceptance once nothing is open.
//!
//! A resolution the order's state refuses (the exception is closed another way, the SKU is
//! unknown or inactive) is an outcome, not an error: on the timeline, and answered
//! `refused` to an operator (`order.request_answered`). One that names an exception or
//! order that does not exist is malformed and dead-lettered.

use orderly_contracts::Message;
use orderly_contracts::messages::{ExceptionResolution, LineQuantity, OrderExceptionResolved};
use orderly_contracts::types::Quantity;
use orderly_runtime::{HandlerContext, HandlerError};

use super::answer::{self, Answer, Request};
use super::apply::{actor, apply_cancellation, try_accept};
use crate::domain::{self, CancelPlan, ResolutionCheck};
use crate::store::{self, Cause, Closing, TimelineKind};

#[tracing::instrument(skip_all, fields(message_id = %cause.message_id))]
pub(super) async fn exception_resolved(
    p: &OrderExceptionResolved,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let answer = resolve_exception(p, cx, cause).await?;
    answer::send(
        cx,
        Request {
            kind: OrderExceptionResolved::TYPE,
            request_id: None,
            order_id: p.order_id,
            store_id: &p.store_id,
        },
        answer,
    )
}

/// Applies a resolution of an order item exception, from an operator or from the catalog;
/// says what became of it.
pub(super) async fn resolve_exception(
    p: &OrderExceptionResolved,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<Answer, HandlerError> {
    let Some(record) = store::find_exception(cx.conn, p.exception_id).await? else {
        return Err(HandlerError::permanent(format!(
            "no order item exception {} (order {})",
            p.exception_id, p.order_id
        )));
    };
    if record.order_id != p.order_id {
        return Err(HandlerError::permanent(format!(
            "exception {} belongs to order {}, not {}",
            p.exception_id, record.order_id, p.order_id
        )));
    }
    let Some(stored) = store::lock_order(cx.conn, p.order_id).await? else {
        return Err(HandlerError::permanent(format!("no order {}", p.order_id)));
    };
    if stored.head.store_id != p.store_id {
        return Err(HandlerError::permanent(format!(
            "order {} belongs to store {}, the resolution names store {}",
            p.order_id, stored.head.store_id, p.store_id
        )));
    }
    let mut facts = store::load_facts(cx.conn, &stored).await?;
    let mut head = stored.head;
    let order_id = head.order_id;
    // Re-read under the order's lock: a concurrent resolution may have closed it.
    let record = store::find_exception(cx.conn, p.exception_id)
        .await?
        .unwrap_or(record);
    let by = actor(&p.resolved_by);
    let note = p
        .note
        .as_deref()
        .map(|n| format!(" — “{n}”"))
        .unwrap_or_default();
    let check = domain::check_resolution(
        record.status()?,
        record.resolution()?,
        record.resolved_sku()?.as_ref(),
        p.resolution,
        p.sku.as_ref(),
    );
    match check {
        ResolutionCheck::AlreadyApplied => {
            let detail = format!(
                "Resolution of the exception on line {} by {by} received again; already applied",
                record.line_id
            );
            store::add_timeline(
                cx.conn,
                order_id,
                TimelineKind::ExceptionDuplicate,
                cause,
                &detail,
            )
            .await?;
            return Ok(Answer::duplicate(detail));
        }
        ResolutionCheck::Refuse(why) => {
            let detail = format!(
                "Resolution of the exception on line {} by {by} refused: {why}",
                record.line_id
            );
            store::add_timeline(
                cx.conn,
                order_id,
                TimelineKind::ExceptionRefused,
                cause,
                &detail,
            )
            .await?;
            return Ok(Answer::refused(detail, why.to_string()));
        }
        ResolutionCheck::Apply => {}
    }
    let lines = store::load_lines(cx.conn, order_id).await?;
    let Some(line) = lines.iter().find(|l| l.line_id == record.line_id).cloned() else {
        return Err(HandlerError::permanent(format!(
            "exception {} names line {}, which order {order_id} does not have",
            p.exception_id, record.line_id
        )));
    };
    let operator = p.resolved_by.id.as_deref();
    match p.resolution {
        ExceptionResolution::MapToSku => {
            let Some(sku) = p.sku.as_ref() else {
                return Err(HandlerError::permanent("map_to_sku without a SKU"));
            };
            let product = store::product(cx.conn, sku).await?;
            let matched =
                match domain::resolve_to(sku, product.as_ref(), line.requested_tax_category) {
                    Ok(m) => m,
                    Err(why) => {
                        let detail = format!(
                            "Mapping {} to SKU {sku} by {by} refused: {why}",
                            line.describe()
                        );
                        store::add_timeline(
                            cx.conn,
                            order_id,
                            TimelineKind::ExceptionRefused,
                            cause,
                            &detail,
                        )
                        .await?;
                        return Ok(Answer::refused(detail, why.to_string()));
                    }
                };
            store::set_line_match(cx.conn, order_id, &line.line_id, &matched).await?;
            let remembered = match (&line.gtin, p.remember_mapping) {
                (Some(gtin), true) => {
                    store::remember_mapping(cx.conn, &head.store_id, gtin, sku, operator).await?;
                    format!(
                        " (GTIN {gtin} → {sku} remembered for store {})",
                        head.store_id
                    )
                }
                (None, true) => " (nothing to remember: the line has no GTIN)".to_owned(),
                (_, false) => String::new(),
            };
            store::resolve_exception(
                cx.conn,
                p.exception_id,
                Closing {
                    resolution: p.resolution,
                    sku: Some(sku),
                    remember: p.remember_mapping,
                    by: operator,
                    note: p.note.as_deref(),
                },
            )
            .await?;
            let detail = format!(
                "Exception on {} resolved by {by}: mapped to SKU {sku}{remembered}{note}",
                line.describe()
            );
            store::add_timeline(
                cx.conn,
                order_id,
                TimelineKind::ExceptionResolved,
                cause,
                &detail,
            )
            .await?;
            try_accept(
                cx,
                &mut head,
                &mut facts,
                cause,
                &format!("the last exception was resolved by {by}"),
            )
            .await?;
            Ok(Answer::of(true, detail, Vec::new()))
        }
        ExceptionResolution::RemoveLine | ExceptionResolution::CancelOrder => {
            store::resolve_exception(
                cx.conn,
                p.exception_id,
                Closing {
                    resolution: p.resolution,
                    sku: None,
                    remember: false,
                    by: operator,
                    note: p.note.as_deref(),
                },
            )
            .await?;
            let request = (p.resolution == ExceptionResolution::RemoveLine)
                .then(|| {
                    Quantity::new(line.open()).ok().map(|quantity| {
                        vec![LineQuantity {
                            line_id: line.line_id.clone(),
                            quantity,
                        }]
                    })
                })
                .flatten();
            let plan = match (&request, p.resolution) {
                (Some(r), _) => domain::plan_cancellation(head.status, &lines, &facts, Some(r)),
                (None, ExceptionResolution::CancelOrder) => {
                    domain::plan_cancellation(head.status, &lines, &facts, None)
                }
                (None, _) => CancelPlan {
                    scope: None,
                    lines: Vec::new(),
                    refused: vec!["nothing left on the line".to_owned()],
                },
            };
            let detail = format!(
                "Exception on {} resolved by {by}: {} → {}{note}",
                line.describe(),
                p.resolution,
                plan.describe()
            );
            store::add_timeline(
                cx.conn,
                order_id,
                TimelineKind::ExceptionResolved,
                cause,
                &detail,
            )
            .await?;
            let reason = match p.resolution {
                ExceptionResolution::RemoveLine => {
                    format!("line {} removed by {by}", line.line_id)
                }
                _ => format!("order cancelled by {by} while resolving an exception"),
            };
            let reason = match &p.note {
                Some(n) => format!("{reason}: {n}"),
                None => reason,
            };
            apply_cancellation(
                cx, &mut head, &mut facts, &lines, &plan, None, &reason, cause,
            )
            .await?;
            // A removed line that cancelled nothing (already gone) may still unblock the order.
            try_accept(
                cx,
                &mut head,
                &mut facts,
                cause,
                "the remaining lines are matched",
            )
            .await?;
            // The exception is closed either way: the resolution is applied.
            Ok(Answer::of(true, detail, Vec::new()))
        }
    }
}
