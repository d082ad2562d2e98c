//! Credit notes: what may still be credited, and the amounts of a partial credit.
//!
//! A credit note reverses part of one invoice with that invoice's own rates and rounding:
//! crediting `k` of `q` units of a line credits `k/q` of the line's net and VAT (rounded
//! half away from zero), and crediting the last units credits exactly what is left, so a
//! line is never credited for more than it was invoiced, to the cent.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::amounts::{PricedLine, round};

/// The line id shipping is invoiced under.
pub const SHIPPING_LINE: &str = "shipping";

/// What was already credited of one invoice line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Credited {
    /// Units.
    pub quantity: u32,
    /// Net.
    pub net: Decimal,
    /// VAT.
    pub tax: Decimal,
}

/// One invoice as crediting sees it.
#[derive(Debug, Clone)]
pub struct CreditableInvoice {
    /// Its lines, as invoiced.
    pub lines: Vec<PricedLine>,
    /// Already credited, by line id.
    pub credited: BTreeMap<String, Credited>,
}

impl CreditableInvoice {
    /// Units of `line_id` that can still be credited.
    pub fn remaining(&self, line_id: &str) -> u32 {
        let invoiced: u32 = self
            .lines
            .iter()
            .filter(|l| l.line_id == line_id)
            .map(|l| l.quantity)
            .sum();
        let credited = self.credited.get(line_id).map_or(0, |c| c.quantity);
        invoiced.saturating_sub(credited)
    }
}

/// What to credit: units per line, and whether shipping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreditRequest {
    /// `(line id, units)`.
    pub lines: Vec<(String, u32)>,
    /// Credit the shipping charge too.
    pub shipping: bool,
}

/// Spreads a refund over an order's invoices (oldest first): each line's units are taken
/// from the first invoices that still have them. Refuses, naming the line, when the
/// invoices hold fewer units than asked, or shipping was already credited or never invoiced.
pub fn split_over_invoices(
    invoices: &[CreditableInvoice],
    request: &CreditRequest,
) -> Result<Vec<(usize, CreditRequest)>, String> {
    let mut plan: BTreeMap<usize, CreditRequest> = BTreeMap::new();
    for (line_id, wanted) in &request.lines {
        let available: u32 = invoices.iter().map(|i| i.remaining(line_id)).sum();
        if available < *wanted {
            let invoiced: u32 = invoices
                .iter()
                .flat_map(|i| &i.lines)
                .filter(|l| &l.line_id == line_id)
                .map(|l| l.quantity)
                .sum();
            return Err(if invoiced == 0 {
                format!("line {line_id} was never invoiced for this order")
            } else {
                format!(
                    "line {line_id}: {wanted} units asked, but only {available} of the {invoiced} invoiced are not credited yet"
                )
            });
        }
        let mut left = *wanted;
        for (i, inv) in invoices.iter().enumerate() {
            if left == 0 {
                break;
            }
            let take = inv.remaining(line_id).min(left);
            if take > 0 {
                plan.entry(i)
                    .or_default()
                    .lines
                    .push((line_id.clone(), take));
                left -= take;
            }
        }
    }
    if request.shipping {
        match invoices.iter().position(|i| i.remaining(SHIPPING_LINE) > 0) {
            Some(i) => plan.entry(i).or_default().shipping = true,
            None => {
                return Err(
                    "shipping was not invoiced for this order, or is already credited".to_owned(),
                );
            }
        }
    }
    Ok(plan.into_iter().collect())
}

/// The credited lines for `request` against one invoice, at the invoice's rates.
pub fn credit_lines(
    invoice: &CreditableInvoice,
    request: &CreditRequest,
    scale: u32,
) -> Result<Vec<PricedLine>, String> {
    let mut wanted: Vec<(String, u32)> = request.lines.clone();
    if request.shipping {
        wanted.push((SHIPPING_LINE.to_owned(), invoice.remaining(SHIPPING_LINE)));
    }
    let mut out = Vec::new();
    for (line_id, k) in wanted {
        let Some(line) = invoice.lines.iter().find(|l| l.line_id == line_id) else {
            return Err(format!("line {line_id} is not on the invoice"));
        };
        let done = invoice.credited.get(&line_id).copied().unwrap_or_default();
        let left_units = line.quantity.saturating_sub(done.quantity);
        if k == 0 || k > left_units {
            return Err(format!(
                "line {line_id}: {k} units asked, {left_units} of {} can still be credited",
                line.quantity
            ));
        }
        let (net, tax) = if k == left_units {
            (line.net - done.net, line.tax - done.tax)
        } else {
            let share = Decimal::from(k) / Decimal::from(line.quantity);
            (
                round(line.net * share, scale),
                round(line.tax * share, scale),
            )
        };
        let discount_share = line.discount * Decimal::from(k) / Decimal::from(line.quantity);
        out.push(PricedLine {
            quantity: k,
            discount: round(discount_share, scale),
            net,
            tax,
            gross: net + tax,
            ..line.clone()
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderly_contracts::types::TaxCategory;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).expect("decimal")
    }

    fn pl(id: &str, qty: u32, net: &str, tax: &str, rate: &str) -> PricedLine {
        PricedLine {
            line_id: id.into(),
            sku: id.into(),
            title: id.into(),
            category: TaxCategory::Standard,
            quantity: qty,
            unit_price_net: dec(net) / Decimal::from(qty),
            discount: Decimal::ZERO,
            rate: dec(rate),
            net: dec(net),
            tax: dec(tax),
            gross: dec(net) + dec(tax),
        }
    }

    #[test]
    fn three_partial_credits_never_exceed_the_line() {
        let mut inv = CreditableInvoice {
            lines: vec![pl("a", 3, "10.00", "1.90", "19")],
            credited: BTreeMap::new(),
        };
        let mut total_net = Decimal::ZERO;
        let mut total_tax = Decimal::ZERO;
        for _ in 0..3 {
            let req = CreditRequest {
                lines: vec![("a".into(), 1)],
                shipping: false,
            };
            let lines = credit_lines(&inv, &req, 2).expect("credit");
            let c = inv.credited.entry("a".into()).or_default();
            c.quantity += lines[0].quantity;
            c.net += lines[0].net;
            c.tax += lines[0].tax;
            total_net += lines[0].net;
            total_tax += lines[0].tax;
        }
        assert_eq!(total_net, dec("10.00"));
        assert_eq!(total_tax, dec("1.90"));
        let more = CreditRequest {
            lines: vec![("a".into(), 1)],
            shipping: false,
        };
        assert!(credit_lines(&inv, &more, 2).is_err());
    }

    #[test]
    fn refunds_spread_over_invoices_and_refuse_too_much() {
        let invoices = vec![
            CreditableInvoice {
                lines: vec![
                    pl("a", 2, "20.00", "3.80", "19"),
                    pl(SHIPPING_LINE, 1, "4.20", "0.80", "19"),
                ],
                credited: BTreeMap::new(),
            },
            CreditableInvoice {
                lines: vec![pl("a", 1, "10.00", "1.90", "19")],
                credited: BTreeMap::new(),
            },
        ];
        let plan = split_over_invoices(
            &invoices,
            &CreditRequest {
                lines: vec![("a".into(), 3)],
                shipping: true,
            },
        )
        .expect("plan");
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[0].1.lines, vec![("a".to_owned(), 2)]);
        assert!(plan[0].1.shipping);
        assert_eq!(plan[1].1.lines, vec![("a".to_owned(), 1)]);
        let err = split_over_invoices(
            &invoices,
            &CreditRequest {
                lines: vec![("a".into(), 4)],
                shipping: false,
            },
        )
        .expect_err("too much");
        assert!(err.contains("4 units asked, but only 3"), "{err}");
        let err = split_over_invoices(
            &invoices,
            &CreditRequest {
                lines: vec![("zz".into(), 1)],
                shipping: false,
            },
        )
        .expect_err("unknown line");
        assert!(err.contains("never invoiced"), "{err}");
    }
}
