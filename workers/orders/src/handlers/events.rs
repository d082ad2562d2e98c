//! System events about an order that the run-at-a-time flow does not decide: stock that
//! could not be reserved or was released, carrier exceptions, invoices and credit notes,
//! notifications. Each is noted on the order's timeline; the stock events may move its
//! status.
//!
//! An event about an order not known yet fails transiently: it may have overtaken the
//! order's `order.placed` (see [`super::apply::known_order`]).

use orderly_contracts::messages::{
    CreditNoteIssued, InvoiceIssued, NotificationFailed, NotificationSent, SetupCompleted,
    ShipmentException, StockReleased, StockUnavailable,
};
use orderly_contracts::types::OrderStatus;
use orderly_runtime::{HandlerContext, HandlerError};
use uuid::Uuid;

use super::apply::{advance, known_order};
use crate::domain::{Event, Units};
use crate::steps::cancelled_note;
use crate::store::{self, Cause, Milestone, TimelineKind};

#[tracing::instrument(skip_all, fields(message_id = %cause.message_id))]
pub(super) async fn stock_unavailable(
    p: &StockUnavailable,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let (stored, mut facts) =
        known_order(cx, p.order_id, Some(&p.store_id), "stock.unavailable").await?;
    let mut head = stored.head;
    if facts.apply(&Event::StockUnavailable) {
        store::mark(cx.conn, head.order_id, Milestone::Backordered).await?;
    }
    let shortages = p
        .shortages
        .iter()
        .map(|s| {
            format!(
                "line {} ({}) needs {}, {} available",
                s.line_id, s.sku, s.requested, s.available
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let detail = format!(
        "Stock unavailable: {shortages}; {}{}",
        if p.backordered {
            "backordered, waiting for stock"
        } else {
            "not backordered: an operator has to cancel the order or bring stock"
        },
        cancelled_note(&head)
    );
    store::add_timeline(
        cx.conn,
        head.order_id,
        TimelineKind::StockUnavailable,
        cause,
        &detail,
    )
    .await?;
    advance(cx, &mut head, &facts, cause, &detail).await
}

/// `setup.completed`: one setup of a service line went through every stage. The order
/// completes when its shipments are delivered and this was the last setup it waited for.
#[tracing::instrument(skip_all, fields(message_id = %cause.message_id))]
pub(super) async fn setup_completed(
    p: &SetupCompleted,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let (stored, mut facts) =
        known_order(cx, p.order_id, Some(&p.store_id), "setup.completed").await?;
    let mut head = stored.head;
    if !store::record_setup_completed(cx.conn, p).await? {
        return Ok(());
    }
    facts.apply(&Event::SetupCompleted {
        line_id: p.line_id.clone(),
    });
    let open = facts.setups.values().filter(|done| !**done).count();
    let detail = format!(
        "Setup of line {} ({}) completed{}",
        p.line_id,
        p.sku,
        match open {
            0 => String::new(),
            n => format!("; {n} setup(s) still open"),
        }
    );
    store::add_timeline(
        cx.conn,
        head.order_id,
        TimelineKind::SetupCompleted,
        cause,
        &detail,
    )
    .await?;
    advance(cx, &mut head, &facts, cause, &detail).await
}

#[tracing::instrument(skip_all, fields(message_id = %cause.message_id))]
pub(super) async fn stock_released(
    p: &StockReleased,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let (stored, mut facts) =
        known_order(cx, p.order_id, Some(&p.store_id), "stock.released").await?;
    let mut head = stored.head;
    let units: Vec<Units> = p
        .lines
        .iter()
        .map(|l| Units {
            warehouse_id: l.warehouse_id.to_string(),
            line_id: l.line_id.clone(),
            quantity: l.quantity.get(),
        })
        .collect();
    if facts.apply(&Event::StockReleased(units)) {
        store::record_releases(cx.conn, head.order_id, p).await?;
    }
    let what = p
        .lines
        .iter()
        .map(|l| {
            format!(
                "{}: line {} ({}) × {}",
                l.warehouse_id, l.line_id, l.sku, l.quantity
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let detail = format!("Stock released ({}): {what}", p.reason);
    store::add_timeline(
        cx.conn,
        head.order_id,
        TimelineKind::StockReleased,
        cause,
        &detail,
    )
    .await?;
    advance(cx, &mut head, &facts, cause, &detail).await
}

#[tracing::instrument(skip_all, fields(message_id = %cause.message_id))]
pub(super) async fn shipment_exception(
    p: &ShipmentException,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let (stored, _facts) =
        known_order(cx, p.order_id, Some(&p.store_id), "shipment.exception").await?;
    store::record_shipment_exception(cx.conn, p).await?;
    let detail = format!(
        "Shipment {} ({}, tracking {}): {} (carrier says “{}”){}",
        p.shipment_id,
        p.carrier.to_uppercase(),
        p.tracking_number,
        p.status,
        p.raw_status,
        p.description
            .as_deref()
            .map(|d| format!(": {d}"))
            .unwrap_or_default()
    );
    store::add_timeline(
        cx.conn,
        stored.head.order_id,
        TimelineKind::ShipmentException,
        cause,
        &detail,
    )
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(message_id = %cause.message_id))]
pub(super) async fn invoice_issued(
    p: &InvoiceIssued,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let (stored, _facts) = known_order(cx, p.order_id, Some(&p.store_id), "invoice.issued").await?;
    let detail = if store::record_invoice(cx.conn, p).await? {
        format!(
            "Invoice {} issued: {} {} gross ({}){}",
            p.invoice_number,
            p.totals.gross,
            p.currency,
            p.vat_treatment,
            if stored.head.status == OrderStatus::Completed {
                " — after the order completed"
            } else {
                ""
            }
        )
    } else {
        format!("Invoice {} reported again", p.invoice_number)
    };
    store::add_timeline(
        cx.conn,
        stored.head.order_id,
        TimelineKind::InvoiceIssued,
        cause,
        &detail,
    )
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(message_id = %cause.message_id))]
pub(super) async fn credit_note_issued(
    p: &CreditNoteIssued,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let (stored, _facts) =
        known_order(cx, p.order_id, Some(&p.store_id), "credit_note.issued").await?;
    let detail = if store::record_credit_note(cx.conn, p).await? {
        format!(
            "Credit note {} issued against invoice {} ({}): {} {} gross",
            p.credit_note_number, p.invoice_number, p.reason, p.totals.gross, p.currency
        )
    } else {
        format!("Credit note {} reported again", p.credit_note_number)
    };
    store::add_timeline(
        cx.conn,
        stored.head.order_id,
        TimelineKind::CreditNoteIssued,
        cause,
        &detail,
    )
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(message_id = %cause.message_id))]
pub(super) async fn notification_sent(
    p: &NotificationSent,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let detail = format!(
        "Notification “{}” sent by {}{}",
        p.template,
        p.channel,
        p.provider
            .as_deref()
            .map(|v| format!(" via {v}"))
            .unwrap_or_default()
    );
    let receipt = Receipt {
        order_id: p.order_id,
        request_id: p.request_id,
        message_type: "notification.sent",
        kind: TimelineKind::NotificationSent,
    };
    receipt.note(cx, cause, &detail).await
}

#[tracing::instrument(skip_all, fields(message_id = %cause.message_id))]
pub(super) async fn notification_failed(
    p: &NotificationFailed,
    cx: &mut HandlerContext<'_>,
    cause: &Cause<'_>,
) -> Result<(), HandlerError> {
    let detail = format!(
        "Notification “{}” by {} failed{}: {}",
        p.template,
        p.channel,
        if p.permanent { " permanently" } else { "" },
        p.error
    );
    let receipt = Receipt {
        order_id: p.order_id,
        request_id: p.request_id,
        message_type: "notification.failed",
        kind: TimelineKind::NotificationFailed,
    };
    receipt.note(cx, cause, &detail).await
}

/// A notification system's receipt (sent or failed), noted on its order's timeline.
struct Receipt {
    order_id: Option<Uuid>,
    request_id: Uuid,
    message_type: &'static str,
    kind: TimelineKind,
}

impl Receipt {
    /// Notes `detail` on the order's timeline; a receipt about no order is only logged.
    async fn note(
        &self,
        cx: &mut HandlerContext<'_>,
        cause: &Cause<'_>,
        detail: &str,
    ) -> Result<(), HandlerError> {
        let Some(order_id) = self.order_id else {
            tracing::debug!(request_id = %self.request_id, "notification not about an order");
            return Ok(());
        };
        let (stored, _facts) = known_order(cx, order_id, None, self.message_type).await?;
        store::add_timeline(cx.conn, stored.head.order_id, self.kind, cause, detail).await?;
        Ok(())
    }
}
