//! What goes on an invoice request: the whole order when the store invoices on order, or a
//! shipment's items when it invoices per shipment, with shipping and discounts shared out
//! so the requests of an order add up to the order exactly. Services (lines with a setup
//! template) are never shipped: a store that invoices per shipment has them invoiced when
//! the order is accepted, on a request of their own ([`invoice_for_services`]).

use std::collections::BTreeMap;

use orderly_contracts::messages::{
    AcceptedLine, InvoiceLine, InvoiceRequested, InvoiceTiming, OrderAccepted,
};
use orderly_contracts::types::{Amount, InvalidValue};
use rust_decimal::{Decimal, RoundingStrategy};
use uuid::Uuid;

/// How much of an order line per-shipment invoices have covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct LineProgress {
    /// Units invoiced.
    pub(crate) quantity: u32,
    /// Line discount invoiced.
    pub(crate) discount: Decimal,
}

/// How much of an order per-shipment invoices have covered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct InvoiceProgress {
    /// Whether the shipping charge was invoiced (it goes on the first invoice).
    pub(crate) shipping_invoiced: bool,
    /// Order discount invoiced so far.
    pub(crate) discount_invoiced: Decimal,
    /// Per line.
    pub(crate) lines: BTreeMap<String, LineProgress>,
}

/// Why an invoice request could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InvoiceError {
    /// The shipment ships a line the order does not have.
    #[error("the shipment has line `{0}`, which the order does not have")]
    UnknownLine(String),
    /// The shipment ships nothing.
    #[error("the shipment ships nothing to invoice")]
    Empty,
    /// An amount came out of range.
    #[error("amount out of range: {0}")]
    Amount(#[from] InvalidValue),
}

/// `invoice.requested` for the whole order (the store invoices on order).
pub(crate) fn invoice_for_order(order: &OrderAccepted, request_id: Uuid) -> InvoiceRequested {
    let lines = order
        .lines
        .iter()
        .map(|line| InvoiceLine {
            line_id: line.line_id.clone(),
            sku: line.sku.clone(),
            title: line.title.clone(),
            quantity: line.quantity,
            unit_price: line.unit_price,
            discount: line.discount,
            tax_category: line.tax_category,
            tax_class: line.tax_class,
            exemption_reference: line.exemption_reference.clone(),
        })
        .collect();
    invoice_request(
        order,
        request_id,
        InvoiceTiming::OnOrder,
        None,
        lines,
        order.shipping,
        order.discount,
    )
}

/// `invoice.requested` for one shipment's `items` (line, units), and the order's invoice
/// progress after it.
///
/// Each line carries its share of the line discount, proportional to the units and rounded
/// to the currency's minor unit; the invoice that covers a line's last units takes whatever
/// is left, so the shares add up to the line discount exactly. Shipping goes on the first
/// invoice of the order; the order discount too, as far as that invoice can carry it, the
/// rest on the next ones.
pub(crate) fn invoice_for_shipment(
    order: &OrderAccepted,
    progress: &InvoiceProgress,
    shipment_id: Uuid,
    items: &[(String, u32)],
    request_id: Uuid,
) -> Result<(InvoiceRequested, InvoiceProgress), InvoiceError> {
    invoice_for_items(order, progress, Some(shipment_id), items, request_id, true)
}

/// For an order of a store that invoices per shipment: `invoice.requested` for its service
/// lines (set up, never shipped, so no shipment would ever invoice them), and the order's
/// invoice progress after it; `None` when it has none. The shipping charge stays for the
/// first parcel's invoice (it follows the goods), unless the order has no goods at all.
/// Asked as an order-wide request (scope "order", supply date the order date).
pub(crate) fn invoice_for_services(
    order: &OrderAccepted,
    progress: &InvoiceProgress,
    request_id: Uuid,
) -> Option<Result<(InvoiceRequested, InvoiceProgress), InvoiceError>> {
    let items: Vec<(String, u32)> = order
        .lines
        .iter()
        .filter(|l| l.setup_template_version.is_some())
        .map(|l| (l.line_id.clone(), l.quantity.get()))
        .collect();
    if items.is_empty() {
        return None;
    }
    let goods = order.lines.len() > items.len();
    Some(invoice_for_items(
        order, progress, None, &items, request_id, !goods,
    ))
}

/// `invoice.requested` for `items` (line, units): per shipment (`shipment_id`) or, without
/// one, as an order-wide request; with the shipping charge when `with_shipping` and not
/// invoiced yet.
fn invoice_for_items(
    order: &OrderAccepted,
    progress: &InvoiceProgress,
    shipment_id: Option<Uuid>,
    items: &[(String, u32)],
    request_id: Uuid,
    with_shipping: bool,
) -> Result<(InvoiceRequested, InvoiceProgress), InvoiceError> {
    let minor_units = order.currency.minor_units().map_or(8, u32::from);
    let mut next = progress.clone();
    let mut lines = Vec::with_capacity(items.len());
    let mut base = Decimal::ZERO;
    for (line_id, units) in items.iter().filter(|(_, units)| *units > 0) {
        let line = order
            .lines
            .iter()
            .find(|line| &line.line_id == line_id)
            .ok_or_else(|| InvoiceError::UnknownLine(line_id.clone()))?;
        let done = next.lines.entry(line_id.clone()).or_default();
        let share = discount_share(line, *done, *units, minor_units);
        let gross = line.unit_price.value() * Decimal::from(*units);
        done.quantity = done.quantity.saturating_add(*units);
        done.discount += share;
        base += gross - share;
        lines.push(InvoiceLine {
            line_id: line.line_id.clone(),
            sku: line.sku.clone(),
            title: line.title.clone(),
            quantity: orderly_contracts::types::Quantity::new(*units)?,
            unit_price: line.unit_price,
            discount: Amount::new(share)?,
            tax_category: line.tax_category,
            tax_class: line.tax_class,
            exemption_reference: line.exemption_reference.clone(),
        });
    }
    if lines.is_empty() {
        return Err(InvoiceError::Empty);
    }
    let shipping = if progress.shipping_invoiced || !with_shipping {
        Decimal::ZERO
    } else {
        order.shipping.value()
    };
    next.shipping_invoiced = progress.shipping_invoiced || with_shipping;
    let discount_left = (order.discount.value() - progress.discount_invoiced).max(Decimal::ZERO);
    let room = (base + shipping)
        .round_dp_with_strategy(minor_units, RoundingStrategy::ToZero)
        .max(Decimal::ZERO);
    let discount = discount_left.min(room);
    next.discount_invoiced += discount;
    let timing = if shipment_id.is_some() {
        InvoiceTiming::OnShipment
    } else {
        InvoiceTiming::OnOrder
    };
    let request = invoice_request(
        order,
        request_id,
        timing,
        shipment_id,
        lines,
        Amount::new(shipping)?,
        Amount::new(discount)?,
    );
    Ok((request, next))
}

/// The share of `line`'s discount that falls on `units` more units, given what was invoiced.
fn discount_share(
    line: &AcceptedLine,
    done: LineProgress,
    units: u32,
    minor_units: u32,
) -> Decimal {
    let total = line.discount.value();
    let left = (total - done.discount).max(Decimal::ZERO);
    let units_left = line.quantity.get().saturating_sub(done.quantity);
    let gross = line.unit_price.value() * Decimal::from(units);
    let share = if units >= units_left {
        left
    } else {
        (total * Decimal::from(units) / Decimal::from(line.quantity.get()))
            .round_dp_with_strategy(minor_units, RoundingStrategy::MidpointNearestEven)
            .min(left)
    };
    share.min(gross).max(Decimal::ZERO)
}

fn invoice_request(
    order: &OrderAccepted,
    request_id: Uuid,
    timing: InvoiceTiming,
    shipment_id: Option<Uuid>,
    lines: Vec<InvoiceLine>,
    shipping: Amount,
    discount: Amount,
) -> InvoiceRequested {
    InvoiceRequested {
        request_id,
        order_id: order.order_id,
        store_id: order.store_id.clone(),
        timing,
        shipment_id,
        // The caller knows the shipment's warehouse (invoices per shipment).
        warehouse_id: None,
        external_order_id: order.external_order_id.clone(),
        placed_at: order.placed_at,
        currency: order.currency,
        prices_include_tax: order.prices_include_tax,
        buyer: order.customer.clone(),
        billing_address: order.billing_address.clone(),
        shipping_address: order.shipping_address.clone(),
        lines,
        shipping,
        discount,
    }
}
