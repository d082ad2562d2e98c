//! What a cancellation (a request, a re-push that orders fewer units, an exception
//! resolution) can still do to an order, and why not otherwise.

use std::collections::BTreeMap;

use orderly_contracts::messages::{CancellationScope, CancelledLine, LineQuantity};
use orderly_contracts::types::{OrderStatus, Quantity};

use super::*;

/// What a cancellation (request, re-push or exception resolution) does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CancelPlan {
    /// `Some(Order)`: the whole order ends; `Some(Lines)`: some lines, the rest goes on;
    /// `None`: nothing is cancelled.
    pub(crate) scope: Option<CancellationScope>,
    /// What is cancelled.
    pub(crate) lines: Vec<CancelledLine>,
    /// What could not be cancelled, and why.
    pub(crate) refused: Vec<String>,
}

impl CancelPlan {
    fn refused(reason: impl Into<String>) -> Self {
        Self {
            scope: None,
            lines: Vec::new(),
            refused: vec![reason.into()],
        }
    }

    /// The recorded outcome: `cancelled`, `lines_cancelled`, `partially_refused`, `refused`.
    pub(crate) fn outcome(&self) -> &'static str {
        match (self.scope, self.refused.is_empty()) {
            (Some(CancellationScope::Order), _) => "cancelled",
            (Some(CancellationScope::Lines), true) => "lines_cancelled",
            (Some(CancellationScope::Lines), false) => "partially_refused",
            (None, _) => "refused",
        }
    }

    /// One sentence for the timeline.
    pub(crate) fn describe(&self) -> String {
        let what = self
            .lines
            .iter()
            .map(|l| format!("line {} × {}", l.line_id, l.quantity))
            .collect::<Vec<_>>()
            .join(", ");
        let mut out = match self.scope {
            Some(CancellationScope::Order) => format!("whole order cancelled ({what})"),
            Some(CancellationScope::Lines) => format!("cancelled {what}"),
            None => "nothing cancelled".to_owned(),
        };
        if !self.refused.is_empty() {
            out.push_str("; refused: ");
            out.push_str(&self.refused.join("; "));
        }
        out
    }
}

/// Decides a cancellation.
///
/// - Whole order (`request = None`): allowed in any non-terminal status while no shipment has
///   left a warehouse; every line with units left is cancelled. After a dispatch it is
///   refused: name the lines to cancel what has not left.
/// - Lines: each line's units not yet cancelled and not yet dispatched can be cancelled; a
///   request for more cancels what it can and refuses the rest, with the reason. When that
///   cancels everything still open and nothing has shipped, it is a whole-order cancellation.
pub(crate) fn plan_cancellation(
    status: OrderStatus,
    lines: &[Line],
    facts: &Facts,
    request: Option<&[LineQuantity]>,
) -> CancelPlan {
    match status {
        OrderStatus::Cancelled => return CancelPlan::refused("the order is already cancelled"),
        OrderStatus::Completed | OrderStatus::Delivered => {
            return CancelPlan::refused(
                "the order is delivered and completed; request a refund instead",
            );
        }
        _ => {}
    }
    let Some(request) = request else {
        if facts.any_shipped() {
            let n = facts.shipped().len();
            return CancelPlan::refused(format!(
                "{n} shipment{} already left the warehouse; a whole-order cancellation is no longer possible \
                 (name the lines to cancel what has not been dispatched)",
                if n == 1 { "" } else { "s" }
            ));
        }
        let cancelled: Vec<CancelledLine> = lines
            .iter()
            .filter_map(|l| cancelled_line(l, l.open()))
            .collect();
        if cancelled.is_empty() {
            return CancelPlan::refused("nothing left to cancel");
        }
        return CancelPlan {
            scope: Some(CancellationScope::Order),
            lines: cancelled,
            refused: Vec::new(),
        };
    };
    if facts.contents_unknown() {
        return CancelPlan::refused(
            "a shipment was reported delivered before its dispatch; what it holds is not known yet, \
             so no line can be cancelled safely (try again later)",
        );
    }
    let mut cancelled = Vec::new();
    let mut refused = Vec::new();
    let mut remaining: BTreeMap<&str, u32> = lines
        .iter()
        .map(|l| (l.line_id.as_str(), l.open()))
        .collect();
    for req in request {
        let Some(line) = lines.iter().find(|l| l.line_id == req.line_id) else {
            refused.push(format!("line {} is not part of the order", req.line_id));
            continue;
        };
        let dispatched = facts.dispatched_units(&line.line_id);
        let cancellable = line
            .quantity
            .saturating_sub(line.cancelled)
            .saturating_sub(dispatched);
        let wanted = req.quantity.get();
        if cancellable == 0 {
            refused.push(format!(
                "line {}: nothing left to cancel ({} ordered, {dispatched} dispatched, {} already cancelled)",
                line.line_id, line.quantity, line.cancelled
            ));
            continue;
        }
        let take = wanted.min(cancellable);
        if take < wanted {
            refused.push(format!(
                "line {}: only {take} of {wanted} units could be cancelled ({dispatched} dispatched, {} already cancelled)",
                line.line_id, line.cancelled
            ));
        }
        if let Some(slot) = remaining.get_mut(line.line_id.as_str()) {
            *slot = slot.saturating_sub(take);
        }
        if let Some(c) = cancelled_line(line, take) {
            cancelled.push(c);
        }
    }
    if cancelled.is_empty() {
        return CancelPlan {
            scope: None,
            lines: Vec::new(),
            refused,
        };
    }
    let everything = remaining.values().all(|q| *q == 0);
    let scope = if everything && !facts.any_shipped() {
        CancellationScope::Order
    } else {
        CancellationScope::Lines
    };
    CancelPlan {
        scope: Some(scope),
        lines: cancelled,
        refused,
    }
}

fn cancelled_line(line: &Line, quantity: u32) -> Option<CancelledLine> {
    Some(CancelledLine {
        line_id: line.line_id.clone(),
        sku: line.sku().cloned(),
        quantity: Quantity::new(quantity).ok()?,
    })
}
