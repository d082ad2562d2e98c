//! What a refund request means to the order: which quantities can be refunded (invoicing
//! issues the credit note itself).

use orderly_contracts::messages::LineQuantity;

use super::*;

/// What a refund request means to the order (invoicing issues the credit note itself).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RefundPlan {
    /// Line id → units counted as refunded.
    pub(crate) accepted: Vec<(String, u32)>,
    /// Lines refused, with why.
    pub(crate) refused: Vec<String>,
}

impl RefundPlan {
    /// The recorded outcome: `recorded`, `partially_refused`, `refused`.
    pub(crate) fn outcome(&self, refund_shipping: bool) -> &'static str {
        match (
            self.accepted.is_empty() && !refund_shipping,
            self.refused.is_empty(),
        ) {
            (_, true) => "recorded",
            (false, false) => "partially_refused",
            (true, false) => "refused",
        }
    }
}

/// Checks a refund's quantities: at most what was ordered, less what was cancelled and what
/// earlier refunds already covered. A line asking for more is refused as a whole.
pub(crate) fn plan_refund(lines: &[Line], request: &[LineQuantity]) -> RefundPlan {
    let mut plan = RefundPlan::default();
    for req in request {
        let Some(line) = lines.iter().find(|l| l.line_id == req.line_id) else {
            plan.refused
                .push(format!("line {} is not part of the order", req.line_id));
            continue;
        };
        let refundable = line.open().saturating_sub(line.refunded);
        let wanted = req.quantity.get();
        if wanted > refundable {
            plan.refused.push(format!(
                "line {}: {wanted} units asked, only {refundable} can be refunded ({} ordered, {} cancelled, {} already refunded)",
                line.line_id, line.quantity, line.cancelled, line.refunded
            ));
        } else {
            plan.accepted.push((line.line_id.clone(), wanted));
        }
    }
    plan
}
