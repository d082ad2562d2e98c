//! What a re-pushed `order.placed` (a known order, a new revision) does to the order: nothing,
//! a replacement of an order on hold, or commands applied to an accepted order.

use orderly_contracts::messages::{LineQuantity, OrderPlaced};
use orderly_contracts::types::{OrderStatus, Quantity};

use super::*;

/// What a re-pushed `order.placed` does to an existing order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RepushPlan {
    /// Same or lower revision: nothing changes.
    Duplicate,
    /// The order is on hold (nothing reserved, nothing announced downstream): the revision
    /// replaces it wholesale and its lines are matched again.
    Replace,
    /// The order is completed or cancelled: the revision is noted, nothing applied.
    Closed,
    /// The order is accepted: the revision is applied as commands.
    Amend(Amendment),
}

/// A revision applied to an accepted order.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Amendment {
    /// Whether, and how, the addresses change.
    pub(crate) addresses: AddressChange,
    /// Whether the payment snapshot changes (a record only).
    pub(crate) payment_changed: bool,
    /// Units no longer ordered, to cancel like a cancellation request.
    pub(crate) reductions: Vec<LineQuantity>,
    /// Changes refused, with why.
    pub(crate) refused: Vec<String>,
    /// Changes not applied after acceptance, noted on the timeline.
    pub(crate) ignored: Vec<String>,
}

/// An address change on a re-push.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum AddressChange {
    /// Same addresses.
    #[default]
    Unchanged,
    /// Nothing has shipped: take the new addresses.
    Apply,
    /// Something has shipped: refused, with why.
    Refused(String),
}

/// Decides what a re-push does. For an accepted order (see the crate docs for why):
/// - lines removed or reduced compared to what is still ordered are cancelled (like a
///   cancellation request, so dispatched units are refused);
/// - added lines, raised quantities and a changed product on a line are refused: stock was
///   reserved for the accepted lines, and a new order is the way to sell more;
/// - address changes are taken until the first dispatch, refused after, and not taken once
///   an operator changed the address (their correction stands);
/// - price, total, customer changes are noted, not applied: the accepted snapshot stays.
pub(crate) fn plan_repush(
    head: &OrderHead,
    lines: &[Line],
    facts: &Facts,
    new: &OrderPlaced,
) -> RepushPlan {
    if new.revision <= head.revision {
        return RepushPlan::Duplicate;
    }
    if head.status.is_terminal() {
        return RepushPlan::Closed;
    }
    if head.status == OrderStatus::OnHold {
        return RepushPlan::Replace;
    }
    let mut a = Amendment::default();
    if new.billing_address != head.billing_address || new.shipping_address != head.shipping_address
    {
        a.addresses = if facts.any_shipped() {
            AddressChange::Refused(
                "address change refused: a shipment has already left the warehouse".to_owned(),
            )
        } else if facts.address_amended {
            AddressChange::Refused(
                "address change not applied: an operator changed the order's address, and \
                 that correction stands (change it again to take this one)"
                    .to_owned(),
            )
        } else {
            AddressChange::Apply
        };
    }
    a.payment_changed = new.payment != head.payment;
    for line in lines {
        let Some(n) = new.lines.iter().find(|n| n.line_id == line.line_id) else {
            if let Ok(q) = Quantity::new(line.open()) {
                a.reductions.push(LineQuantity {
                    line_id: line.line_id.clone(),
                    quantity: q,
                });
            }
            continue;
        };
        if n.sku != line.requested_sku || n.gtin != line.gtin {
            a.refused.push(format!(
                "line {}: product changed after acceptance; not applied (cancel the line and place a new order)",
                line.line_id
            ));
            continue;
        }
        let new_q = n.quantity.get();
        let open = line.open();
        if new_q > line.quantity {
            a.refused.push(format!(
                "line {}: quantity raised from {} to {new_q} after acceptance; not applied",
                line.line_id, line.quantity
            ));
        } else if new_q < open {
            if let Ok(q) = Quantity::new(open - new_q) {
                a.reductions.push(LineQuantity {
                    line_id: line.line_id.clone(),
                    quantity: q,
                });
            }
        } else if new_q > open {
            a.ignored.push(format!(
                "line {}: {} unit(s) cancelled earlier stay cancelled",
                line.line_id,
                new_q - open
            ));
        }
        if n.unit_price != line.unit_price || n.discount != line.discount {
            a.ignored.push(format!(
                "line {}: price change not applied after acceptance",
                line.line_id
            ));
        }
    }
    for n in &new.lines {
        if !lines.iter().any(|l| l.line_id == n.line_id) {
            a.refused.push(format!(
                "line {} (“{}”) added after acceptance; not applied (place a new order for it)",
                n.line_id, n.title
            ));
        }
    }
    if new.shipping != head.shipping
        || new.discount != head.discount
        || new.tax != head.tax
        || new.total != head.total
        || new.currency != head.currency
        || new.prices_include_tax != head.prices_include_tax
    {
        a.ignored
            .push("amounts changed; the accepted amounts stay".to_owned());
    }
    if new.customer != head.customer {
        a.ignored
            .push("customer details changed; not applied after acceptance".to_owned());
    }
    RepushPlan::Amend(a)
}
