//! Credit notes: what may still be credited, and the amounts of a partial credit.
//!
//! A credit note reverses part of one invoice with that invoice's own rates and rounding:
//! crediting `k` of `q` units of a line credits `k/q` of the line's net and VAT (rounded
//! half away from zero), and crediting the last units credits exactly what is left, so a
//! line is never credited for more than it was invoiced, to the cent.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::amounts::{PricedLine, allocate, round};

/// The line id shipping is invoiced under.
pub const SHIPPING_LINE: &str = "shipping";

/// The id of the `i`-th (from 0) part of a shipping charge split over several rates:
/// `shipping`, `shipping/2`, ...
pub fn shipping_line_id(i: usize) -> String {
    if i == 0 {
        SHIPPING_LINE.to_owned()
    } else {
        format!("{SHIPPING_LINE}/{}", i + 1)
    }
}

/// Whether a line id is shipping (or a part of it).
pub fn is_shipping(line_id: &str) -> bool {
    line_id == SHIPPING_LINE
        || line_id
            .strip_prefix(SHIPPING_LINE)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|n| n.parse::<u32>().is_ok())
}

/// The line id prefix of a free amount's credit, one line per VAT rate (`adjustment-19`):
/// the rate in the id is how later credits know what it took from each rate.
pub const ADJUSTMENT_PREFIX: &str = "adjustment-";

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

    /// The shipping lines (a charge split over several rates has several) with units left
    /// to credit.
    pub fn shipping_remaining(&self) -> impl Iterator<Item = (String, u32)> + '_ {
        self.lines
            .iter()
            .filter(|l| is_shipping(&l.line_id))
            .map(|l| (l.line_id.clone(), self.remaining(&l.line_id)))
            .filter(|(_, left)| *left > 0)
    }

    /// Gross still held per VAT rate: what was invoiced at the rate, less every credit at it
    /// (of lines, of shipping and of free amounts).
    pub fn remaining_by_rate(&self) -> BTreeMap<Decimal, Decimal> {
        self.remaining_per_rate()
            .into_iter()
            .map(|(rate, (gross, _))| (rate, gross))
            .collect()
    }

    /// Gross and VAT still held per VAT rate. The VAT is what the invoice's lines charged
    /// less what was credited, so crediting all that is left reverses the VAT to the cent
    /// (its lines were rounded one by one; the rest computed at once could differ by one).
    pub fn remaining_per_rate(&self) -> BTreeMap<Decimal, (Decimal, Decimal)> {
        let mut by_rate: BTreeMap<Decimal, (Decimal, Decimal)> = BTreeMap::new();
        for l in &self.lines {
            let e = by_rate.entry(l.rate.normalize()).or_default();
            e.0 += l.gross;
            e.1 += l.tax;
        }
        for (line_id, c) in &self.credited {
            let rate = match self.lines.iter().find(|l| &l.line_id == line_id) {
                Some(l) => Some(l.rate.normalize()),
                None => line_id
                    .strip_prefix(ADJUSTMENT_PREFIX)
                    .and_then(|r| r.parse::<Decimal>().ok())
                    .map(|r| r.normalize()),
            };
            if let Some(rate) = rate {
                let e = by_rate.entry(rate).or_default();
                e.0 -= c.net + c.tax;
                e.1 -= c.tax;
            }
        }
        by_rate
    }

    /// Gross still held, all rates together.
    pub fn remaining_gross(&self) -> Decimal {
        self.remaining_by_rate()
            .values()
            .filter(|g| g.is_sign_positive())
            .sum()
    }

    /// Whether crediting `lines` keeps every rate's credits within what the invoice holds at
    /// it; `Err` names the rate. Unit credits alone never exceed a line; after a free
    /// amount was credited they could.
    pub fn check_within(&self, lines: &[PricedLine]) -> Result<(), String> {
        let left = self.remaining_by_rate();
        let mut asked: BTreeMap<Decimal, Decimal> = BTreeMap::new();
        for l in lines {
            *asked.entry(l.rate.normalize()).or_default() += l.gross;
        }
        for (rate, gross) in asked {
            let held = left.get(&rate).copied().unwrap_or_default();
            if gross > held {
                return Err(format!(
                    "crediting {gross} at {rate} % would credit more than the invoice still \
                     holds at that rate ({held}; a free amount was refunded earlier)"
                ));
            }
        }
        Ok(())
    }
}

/// Spreads a free gross `amount` over an order's invoices (oldest first, each as far as it
/// still holds) and, within an invoice, over its VAT rates in proportion to what each still
/// holds (so the credit reverses the invoice's own VAT mix): per invoice, one price-reduction
/// line per rate, titled `title`, its net and VAT at the invoice's rate (`scale`: the
/// currency's minor unit). Refuses when the invoices hold less than `amount`.
pub fn split_amount(
    invoices: &[CreditableInvoice],
    amount: Decimal,
    scale: u32,
    title: &str,
) -> Result<Vec<(usize, Vec<PricedLine>)>, String> {
    if round(amount, scale) != amount {
        return Err(format!(
            "an amount of {amount} has more decimals than the currency's {scale}"
        ));
    }
    let held: Decimal = invoices
        .iter()
        .map(CreditableInvoice::remaining_gross)
        .sum();
    if amount > held {
        return Err(format!(
            "an amount of {amount} was asked, the order's invoices hold only {held} that is not \
             credited yet"
        ));
    }
    let mut left = amount;
    let mut plan = Vec::new();
    for (i, invoice) in invoices.iter().enumerate() {
        if left.is_zero() {
            break;
        }
        let rates: Vec<(Decimal, (Decimal, Decimal))> = invoice
            .remaining_per_rate()
            .into_iter()
            .filter(|(_, (g, _))| g.is_sign_positive() && !g.is_zero())
            .collect();
        let here: Decimal = rates.iter().map(|(_, (g, _))| *g).sum();
        let take = left.min(here);
        if take.is_zero() {
            continue;
        }
        let weights: Vec<Decimal> = rates.iter().map(|(_, (g, _))| *g).collect();
        let shares = allocate(take, &weights, scale);
        let mut lines = Vec::new();
        for ((rate, (held, held_tax)), share) in rates.iter().zip(shares) {
            if share.is_zero() {
                continue;
            }
            // All that is left at the rate: exactly its VAT left.
            let net = if share == *held {
                share - held_tax
            } else {
                round(
                    share * Decimal::ONE_HUNDRED / (Decimal::ONE_HUNDRED + rate),
                    scale,
                )
            };
            let category = invoice
                .lines
                .iter()
                .find(|l| l.rate.normalize() == *rate)
                .map_or(orderly_contracts::types::TaxCategory::Standard, |l| {
                    l.category
                });
            lines.push(PricedLine {
                line_id: format!("{ADJUSTMENT_PREFIX}{rate}"),
                sku: String::new(),
                title: title.to_owned(),
                category,
                quantity: 1,
                unit_price_net: net,
                discount: Decimal::ZERO,
                rate: *rate,
                net,
                tax: share - net,
                gross: share,
                exemption_reference: None,
            });
        }
        left -= take;
        plan.push((i, lines));
    }
    Ok(plan)
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
        match invoices
            .iter()
            .position(|i| i.shipping_remaining().next().is_some())
        {
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
        wanted.extend(invoice.shipping_remaining());
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

/// A refund's credit notes, per invoice (by index, ascending): the lines and shipping asked
/// (each within what its invoice still holds at its rate), then the free `amount` from what
/// the invoices hold after them. Decided whole before anything is issued: `Err` says why the
/// whole request is refused.
pub fn plan_refund(
    open: &[CreditableInvoice],
    request: &CreditRequest,
    amount: Option<Decimal>,
    scale: u32,
    title: &str,
) -> Result<Vec<(usize, Vec<PricedLine>)>, String> {
    let mut after: Vec<CreditableInvoice> = open.to_vec();
    let mut decided: Vec<(usize, Vec<PricedLine>)> = Vec::new();
    if !request.lines.is_empty() || request.shipping {
        for (i, part) in split_over_invoices(open, request)? {
            let lines = credit_lines(&open[i], &part, scale)?;
            open[i].check_within(&lines)?;
            for l in &lines {
                let c = after[i].credited.entry(l.line_id.clone()).or_default();
                c.quantity += l.quantity;
                c.net += l.net;
                c.tax += l.tax;
            }
            decided.push((i, lines));
        }
    }
    if let Some(amount) = amount {
        for (i, lines) in split_amount(&after, amount, scale, title)? {
            match decided.iter_mut().find(|(j, _)| *j == i) {
                Some((_, existing)) => existing.extend(lines),
                None => decided.push((i, lines)),
            }
        }
    }
    decided.sort_by_key(|(i, _)| *i);
    Ok(decided)
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
            exemption_reference: None,
        }
    }

    #[test]
    fn a_free_amount_follows_the_invoices_vat_mix_and_what_they_still_hold() {
        // 119.00 at 19 % and 53.50 at 7 %: 172.50 gross.
        let first = CreditableInvoice {
            lines: vec![
                pl("a", 1, "100.00", "19.00", "19"),
                pl("b", 1, "50.00", "3.50", "7"),
            ],
            credited: BTreeMap::new(),
        };
        let plan = split_amount(
            std::slice::from_ref(&first),
            dec("20.00"),
            2,
            "Price reduction",
        )
        .expect("within the invoice");
        assert_eq!(plan.len(), 1);
        let lines = &plan[0].1;
        assert_eq!(lines.len(), 2);
        let gross: Decimal = lines.iter().map(|l| l.gross).sum();
        assert_eq!(gross, dec("20.00"), "exactly the amount");
        let at = |rate: &str| {
            lines
                .iter()
                .find(|l| l.rate == dec(rate))
                .expect("a line at the rate")
        };
        // 20 × 119/172.5 = 13.797 → 13.80 gross at 19 %: net 11.60, VAT 2.20.
        assert_eq!(
            (at("19").gross, at("19").net, at("19").tax),
            (dec("13.80"), dec("11.60"), dec("2.20"))
        );
        assert_eq!(
            (at("7").gross, at("7").net, at("7").tax),
            (dec("6.20"), dec("5.79"), dec("0.41"))
        );
        assert_eq!(at("19").line_id, "adjustment-19");

        // Credited, it is counted against the rates: a full refund of line a no longer fits.
        let mut after = first.clone();
        for l in lines {
            after.credited.insert(
                l.line_id.clone(),
                Credited {
                    quantity: 1,
                    net: l.net,
                    tax: l.tax,
                },
            );
        }
        assert_eq!(after.remaining_gross(), dec("152.50"));
        let a = credit_lines(
            &after,
            &CreditRequest {
                lines: vec![("a".into(), 1)],
                shipping: false,
            },
            2,
        )
        .expect("units are left");
        let why = after
            .check_within(&a)
            .expect_err("more than the rate holds");
        assert!(why.contains("19 %"), "{why}");

        // Over two invoices, oldest first; more than both hold is refused.
        let second = CreditableInvoice {
            lines: vec![pl("c", 1, "10.00", "1.90", "19")],
            credited: BTreeMap::new(),
        };
        let both = [after.clone(), second];
        let plan = split_amount(&both, dec("160.00"), 2, "Price reduction").expect("fits");
        let per: Vec<Decimal> = plan
            .iter()
            .map(|(_, ls)| ls.iter().map(|l| l.gross).sum())
            .collect();
        assert_eq!(per, vec![dec("152.50"), dec("7.50")]);
        let why = split_amount(&both, dec("1.005"), 2, "x").expect_err("a tenth of a cent");
        assert!(why.contains("more decimals"), "{why}");
        let why = split_amount(&both, dec("164.41"), 2, "x").expect_err("too much");
        assert!(why.contains("164.41") && why.contains("164.40"), "{why}");
    }

    #[test]
    fn lines_and_an_amount_in_one_request_are_one_credit_note_within_the_invoice() {
        let inv = CreditableInvoice {
            lines: vec![pl("a", 2, "100.00", "19.00", "19")],
            credited: BTreeMap::new(),
        };
        let one = CreditRequest {
            lines: vec![("a".into(), 1)],
            shipping: false,
        };
        let plan = plan_refund(
            std::slice::from_ref(&inv),
            &one,
            Some(dec("10.00")),
            2,
            "PR",
        )
        .expect("fits");
        assert_eq!(plan.len(), 1, "one credit note");
        let gross: Decimal = plan[0].1.iter().map(|l| l.gross).sum();
        assert_eq!(gross, dec("69.50"), "59.50 for the unit and 10.00");
        // The unit and more than the other unit's worth: refused whole.
        let why = plan_refund(
            std::slice::from_ref(&inv),
            &one,
            Some(dec("59.51")),
            2,
            "PR",
        )
        .expect_err("too much");
        assert!(why.contains("59.51"), "{why}");
        let none = CreditRequest::default();
        assert!(
            plan_refund(&[inv], &none, None, 2, "PR")
                .expect("nothing")
                .is_empty()
        );
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
