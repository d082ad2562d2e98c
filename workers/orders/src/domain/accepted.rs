//! The `order.accepted` snapshot built from the stored order, with amounts recomputed when
//! lines were cancelled before acceptance so the message stays consistent.

use orderly_contracts::Validate;
use orderly_contracts::messages::{AcceptedLine, OrderAccepted};
use orderly_contracts::types::{Amount, CurrencyCode, Quantity};
use rust_decimal::{Decimal, RoundingStrategy};

use super::*;

fn round_minor(value: Decimal, currency: CurrencyCode, strategy: RoundingStrategy) -> Decimal {
    match currency.minor_units() {
        Some(dp) => value.round_dp_with_strategy(u32::from(dp), strategy),
        None => value,
    }
}

fn line_amount(unit_price: Amount, quantity: u32, discount: Decimal) -> Result<Decimal, String> {
    unit_price
        .value()
        .checked_mul(Decimal::from(quantity))
        .and_then(|gross| gross.checked_sub(discount))
        .ok_or_else(|| "line amount too large".to_owned())
}

fn amount(value: Decimal, what: &str) -> Result<Amount, String> {
    Amount::new(value).map_err(|e| format!("{what}: {e}"))
}

/// Builds `order.accepted` from the stored order: every line with units left, with its
/// matched SKU and VAT category.
///
/// When lines were cancelled before acceptance (an operator removed a line, a re-push or a
/// request cancelled units of an order on hold), the amounts are recomputed so the message
/// stays consistent (its total is checked against its lines): line discounts and the stated
/// VAT shrink in proportion, the order discount is capped at what is left, and the total is
/// lines + shipping − discount (+ VAT when prices exclude it), rounded to the currency's
/// minor unit. The payload is validated before it is returned: orders never sends a message
/// its consumers would refuse.
pub(crate) fn accepted_order(head: &OrderHead, lines: &[Line]) -> Result<OrderAccepted, String> {
    let currency = head.currency;
    let mut changed = false;
    let mut original = Decimal::ZERO;
    let mut kept = Decimal::ZERO;
    let mut accepted = Vec::new();
    for line in lines {
        let full = line_amount(line.unit_price, line.quantity, line.discount.value())?;
        original = original
            .checked_add(full)
            .ok_or("amounts too large to add up")?;
        let open = line.open();
        if open == 0 {
            changed = true;
            continue;
        }
        let Some(m) = &line.matched else {
            return Err(format!("{} is not matched to a product", line.describe()));
        };
        let discount = if open == line.quantity {
            line.discount
        } else {
            changed = true;
            let share = line
                .discount
                .value()
                .checked_mul(Decimal::from(open))
                .and_then(|d| d.checked_div(Decimal::from(line.quantity)))
                .ok_or("line discount too large")?;
            amount(
                round_minor(share, currency, RoundingStrategy::ToZero),
                "line discount",
            )?
        };
        kept = kept
            .checked_add(line_amount(line.unit_price, open, discount.value())?)
            .ok_or("amounts too large to add up")?;
        accepted.push(AcceptedLine {
            line_id: line.line_id.clone(),
            sku: m.sku.clone(),
            gtin: line.gtin.clone(),
            title: line.title.clone(),
            quantity: Quantity::new(open).map_err(|e| e.to_string())?,
            unit_price: line.unit_price,
            discount,
            tax_category: m.tax_category,
            tax_class: m.tax_class,
            // Only an exempt line cites an exemption (the line may bring its own category).
            exemption_reference: (m.tax_category == orderly_contracts::types::TaxCategory::Exempt)
                .then(|| m.exemption_reference.clone())
                .flatten(),
            setup_template_version: m.setup_template_version,
        });
    }
    if accepted.is_empty() {
        return Err("no line is left to accept".to_owned());
    }
    let (discount, tax, total) = if changed {
        let before = kept
            .checked_add(head.shipping.value())
            .ok_or("amounts too large to add up")?;
        let discount =
            head.discount
                .value()
                .min(round_minor(before, currency, RoundingStrategy::ToZero));
        let tax = match head.tax {
            Some(t) if !original.is_zero() => Some(round_minor(
                t.value()
                    .checked_mul(kept)
                    .and_then(|x| x.checked_div(original))
                    .ok_or("tax too large")?,
                currency,
                RoundingStrategy::MidpointAwayFromZero,
            )),
            Some(t) => Some(t.value()),
            None => None,
        };
        let mut total = before - discount;
        if !head.prices_include_tax {
            total += tax.unwrap_or_default();
        }
        let total = round_minor(total, currency, RoundingStrategy::MidpointAwayFromZero);
        (
            amount(discount, "discount")?,
            tax.map(|t| amount(t, "tax")).transpose()?,
            amount(total, "total")?,
        )
    } else {
        (head.discount, head.tax, head.total)
    };
    let accepted = OrderAccepted {
        order_id: head.order_id,
        store_id: head.store_id.clone(),
        channel: head.channel,
        marketplace: head.marketplace.clone(),
        external_order_id: head.external_order_id.clone(),
        revision: head.revision,
        placed_at: head.placed_at,
        currency,
        prices_include_tax: head.prices_include_tax,
        customer: head.customer.clone(),
        billing_address: head.billing_address.clone(),
        shipping_address: head.shipping_address.clone(),
        lines: accepted,
        shipping: head.shipping,
        discount,
        tax,
        total,
        payment: head.payment.clone(),
    };
    accepted
        .validate()
        .map_err(|e| format!("the accepted order would break its contract: {e}"))?;
    Ok(accepted)
}
