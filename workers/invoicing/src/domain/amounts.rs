//! Line and document amounts: discounts, VAT and rounding, all in exact decimals.
//!
//! Rounding is half away from zero to the currency's minor unit. Under both policies the
//! totals are *the sum of the rounded parts*: per line, the document adds up rounded lines;
//! per document, each rate's net and VAT are rounded once and the lines receive shares of
//! those rounded amounts (largest remainder), so lines, breakdown and totals always agree
//! to the cent.
//!
//! Prices may include VAT (`prices_include_tax`): then the gross amount is what the buyer
//! pays and is kept exactly; the net is derived from it and the VAT is the difference.

use std::collections::BTreeMap;

use orderly_contracts::messages::RoundingPolicy;
use orderly_contracts::types::TaxCategory;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// Rounds half away from zero to `scale` decimals, and always shows `scale` decimals
/// (`0` becomes `0.00`), as amounts are printed and sent.
pub fn round(value: Decimal, scale: u32) -> Decimal {
    let mut r = value.round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(scale);
    r
}

/// Splits `total` (already at `scale`) over `weights` proportionally, in whole units of
/// `scale`, so that the shares add up to `total` exactly (largest remainder; ties go to
/// the earlier weight). All zero weights put everything on the first share.
pub fn allocate(total: Decimal, weights: &[Decimal], scale: u32) -> Vec<Decimal> {
    let n = weights.len();
    if n == 0 {
        return Vec::new();
    }
    let sum: Decimal = weights.iter().copied().sum();
    if sum.is_zero() {
        let mut out = vec![Decimal::ZERO; n];
        out[0] = total;
        return out;
    }
    let unit = Decimal::new(1, scale);
    let mut shares = Vec::with_capacity(n);
    let mut remainders = Vec::with_capacity(n);
    for (i, w) in weights.iter().enumerate() {
        let exact = total * *w / sum;
        let floor = exact.round_dp_with_strategy(scale, RoundingStrategy::ToZero);
        shares.push(floor);
        remainders.push((exact - floor, i));
    }
    let mut left = total - shares.iter().copied().sum::<Decimal>();
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let step = if left.is_sign_negative() { -unit } else { unit };
    let mut k = 0;
    while !left.is_zero() && k < 10 * n {
        let (_, i) = remainders[k % n];
        shares[i] += step;
        left -= step;
        k += 1;
    }
    shares
}

/// A line to price.
#[derive(Debug, Clone, PartialEq)]
pub struct LineInput {
    /// The order line (or `shipping`).
    pub line_id: String,
    /// Product SKU (empty for shipping).
    pub sku: String,
    /// Description printed.
    pub title: String,
    /// The product's VAT category.
    pub category: TaxCategory,
    /// Units.
    pub quantity: u32,
    /// Unit price, gross or net as the document says.
    pub unit_price: Decimal,
    /// Discount on the line.
    pub discount: Decimal,
    /// The rate, percent.
    pub rate: Decimal,
    /// For an exempt line: the provision it is exempt under (Art. 226(11)).
    pub exemption_reference: Option<String>,
}

/// A priced line as it goes on the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedLine {
    /// The order line, or `shipping`.
    pub line_id: String,
    /// Product SKU (empty for shipping).
    pub sku: String,
    /// Description.
    pub title: String,
    /// The product's VAT category.
    pub category: TaxCategory,
    /// Units.
    pub quantity: u32,
    /// Unit price without VAT, before discounts (rounded to 2 more decimals than the
    /// currency, for display).
    pub unit_price_net: Decimal,
    /// Discounts on the line (its own and its share of the order's), as given: gross when
    /// prices include VAT.
    pub discount: Decimal,
    /// Rate, percent.
    pub rate: Decimal,
    /// Net amount.
    pub net: Decimal,
    /// VAT.
    pub tax: Decimal,
    /// `net + tax`.
    pub gross: Decimal,
    /// For an exempt line: the provision it is exempt under (Art. 226(11)), printed under
    /// the lines and given as the exemption reason of the e-invoice's exempt category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exemption_reference: Option<String>,
}

/// One rate's totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateTotal {
    /// Rate, percent.
    pub rate: Decimal,
    /// Net taxed at it.
    pub net: Decimal,
    /// VAT at it.
    pub tax: Decimal,
}

/// A priced document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Priced {
    /// Lines, in input order.
    pub lines: Vec<PricedLine>,
    /// Per rate, highest rate first.
    pub breakdown: Vec<RateTotal>,
    /// Σ net.
    pub net: Decimal,
    /// Σ VAT.
    pub tax: Decimal,
    /// net + tax.
    pub gross: Decimal,
}

/// What to price.
#[derive(Debug, Clone)]
pub struct DocumentInput {
    /// Lines (shipping included as a line, if any).
    pub lines: Vec<LineInput>,
    /// Order-level discount, shared over the lines in proportion to their amounts.
    pub order_discount: Decimal,
    /// Whether prices and discounts include VAT.
    pub prices_include_tax: bool,
    /// Where to round.
    pub policy: RoundingPolicy,
    /// The currency's minor unit digits.
    pub scale: u32,
}

fn hundred() -> Decimal {
    Decimal::ONE_HUNDRED
}

/// Prices a document.
pub fn price(input: &DocumentInput) -> Priced {
    let scale = input.scale;
    let amounts: Vec<Decimal> = input
        .lines
        .iter()
        .map(|l| Decimal::from(l.quantity) * l.unit_price - l.discount)
        .collect();
    let order_shares = allocate(round(input.order_discount, scale), &amounts, scale);
    let amounts: Vec<Decimal> = amounts
        .iter()
        .zip(&order_shares)
        .map(|(a, d)| *a - *d)
        .collect();
    let n = input.lines.len();
    let mut net = vec![Decimal::ZERO; n];
    let mut tax = vec![Decimal::ZERO; n];
    match input.policy {
        RoundingPolicy::PerLine => {
            for (i, line) in input.lines.iter().enumerate() {
                let r = line.rate / hundred();
                if input.prices_include_tax {
                    let gross = round(amounts[i], scale);
                    net[i] = round(gross / (Decimal::ONE + r), scale);
                    tax[i] = gross - net[i];
                } else {
                    net[i] = round(amounts[i], scale);
                    tax[i] = round(net[i] * r, scale);
                }
            }
        }
        RoundingPolicy::PerDocument => {
            let mut groups: BTreeMap<Decimal, Vec<usize>> = BTreeMap::new();
            for (i, line) in input.lines.iter().enumerate() {
                groups.entry(line.rate).or_default().push(i);
            }
            for (rate, idx) in groups {
                let r = rate / hundred();
                let weights: Vec<Decimal> = idx.iter().map(|&i| amounts[i]).collect();
                let sum: Decimal = weights.iter().copied().sum();
                if input.prices_include_tax {
                    let gross_total = round(sum, scale);
                    let net_total = round(gross_total / (Decimal::ONE + r), scale);
                    let gross = allocate(gross_total, &weights, scale);
                    let nets = allocate(net_total, &gross, scale);
                    for (k, &i) in idx.iter().enumerate() {
                        net[i] = nets[k];
                        tax[i] = gross[k] - nets[k];
                    }
                } else {
                    let net_total = round(sum, scale);
                    let tax_total = round(net_total * r, scale);
                    let nets = allocate(net_total, &weights, scale);
                    let taxes = allocate(tax_total, &nets, scale);
                    for (k, &i) in idx.iter().enumerate() {
                        net[i] = nets[k];
                        tax[i] = taxes[k];
                    }
                }
            }
        }
    }
    let lines: Vec<PricedLine> = input
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let unit_net = if input.prices_include_tax {
                l.unit_price / (Decimal::ONE + l.rate / hundred())
            } else {
                l.unit_price
            };
            PricedLine {
                line_id: l.line_id.clone(),
                sku: l.sku.clone(),
                title: l.title.clone(),
                category: l.category,
                quantity: l.quantity,
                unit_price_net: round(unit_net, scale + 2),
                discount: l.discount + order_shares[i],
                rate: l.rate.normalize(),
                net: net[i],
                tax: tax[i],
                gross: net[i] + tax[i],
                exemption_reference: l.exemption_reference.clone(),
            }
        })
        .collect();
    let (breakdown, net, tax) = totals(&lines);
    Priced {
        lines,
        breakdown,
        gross: net + tax,
        net,
        tax,
    }
}

/// The per-rate breakdown (highest rate first) and the totals of priced lines: sums of
/// the lines' rounded amounts.
pub fn totals(lines: &[PricedLine]) -> (Vec<RateTotal>, Decimal, Decimal) {
    let mut by_rate: BTreeMap<Decimal, (Decimal, Decimal)> = BTreeMap::new();
    for l in lines {
        let e = by_rate.entry(l.rate.normalize()).or_default();
        e.0 += l.net;
        e.1 += l.tax;
    }
    let breakdown: Vec<RateTotal> = by_rate
        .into_iter()
        .rev()
        .map(|(rate, (net, tax))| RateTotal { rate, net, tax })
        .collect();
    let net = breakdown.iter().map(|b| b.net).sum();
    let tax = breakdown.iter().map(|b| b.tax).sum();
    (breakdown, net, tax)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).expect("decimal")
    }

    fn line(id: &str, qty: u32, unit: &str, discount: &str, rate: &str) -> LineInput {
        LineInput {
            line_id: id.into(),
            sku: format!("SKU-{id}"),
            title: format!("Item {id}"),
            category: TaxCategory::Standard,
            quantity: qty,
            unit_price: dec(unit),
            discount: dec(discount),
            rate: dec(rate),
            exemption_reference: None,
        }
    }

    fn check_sums(p: &Priced) {
        let line_net: Decimal = p.lines.iter().map(|l| l.net).sum();
        let line_tax: Decimal = p.lines.iter().map(|l| l.tax).sum();
        assert_eq!(line_net, p.net, "lines' net adds up to the total");
        assert_eq!(line_tax, p.tax, "lines' VAT adds up to the total");
        assert_eq!(p.breakdown.iter().map(|b| b.net).sum::<Decimal>(), p.net);
        assert_eq!(p.breakdown.iter().map(|b| b.tax).sum::<Decimal>(), p.tax);
        assert_eq!(p.gross, p.net + p.tax);
        for l in &p.lines {
            assert_eq!(l.gross, l.net + l.tax);
            assert!(l.net.scale() <= 2 && l.tax.scale() <= 2, "{l:?}");
        }
    }

    #[test]
    fn half_away_from_zero() {
        assert_eq!(round(dec("0.005"), 2), dec("0.01"));
        assert_eq!(round(dec("0.015"), 2), dec("0.02"));
        assert_eq!(round(dec("0.025"), 2), dec("0.03"), "not banker's rounding");
        assert_eq!(round(dec("-0.025"), 2), dec("-0.03"));
        assert_eq!(round(dec("0.0049"), 2), dec("0.00"));
    }

    #[test]
    fn allocation_adds_up_and_follows_weights() {
        let shares = allocate(dec("10.00"), &[dec("1"), dec("1"), dec("1")], 2);
        assert_eq!(shares, vec![dec("3.34"), dec("3.33"), dec("3.33")]);
        let shares = allocate(dec("0.05"), &[dec("3"), dec("1")], 2);
        assert_eq!(shares.iter().copied().sum::<Decimal>(), dec("0.05"));
        assert_eq!(shares, vec![dec("0.04"), dec("0.01")]);
        assert_eq!(
            allocate(dec("1.00"), &[Decimal::ZERO, Decimal::ZERO], 2)[0],
            dec("1.00")
        );
    }

    /// Three lines of 0.10 net at 19 %: per line each VAT is 0.019 → 0.02, so 0.06;
    /// per document 0.30 × 19 % = 0.057 → 0.06 as well, but 7 such lines differ:
    /// per line 7 × 0.02 = 0.14, per document 0.70 × 0.19 = 0.133 → 0.13.
    #[test]
    fn the_policies_differ_and_both_add_up() {
        let lines: Vec<LineInput> = (0..7)
            .map(|i| line(&i.to_string(), 1, "0.10", "0", "19"))
            .collect();
        let mut input = DocumentInput {
            lines,
            order_discount: Decimal::ZERO,
            prices_include_tax: false,
            policy: RoundingPolicy::PerLine,
            scale: 2,
        };
        let per_line = price(&input);
        check_sums(&per_line);
        assert_eq!(per_line.tax, dec("0.14"));
        input.policy = RoundingPolicy::PerDocument;
        let per_doc = price(&input);
        check_sums(&per_doc);
        assert_eq!(per_doc.tax, dec("0.13"));
        assert_eq!(per_doc.net, dec("0.70"));
    }

    #[test]
    fn gross_prices_keep_the_gross_exact() {
        for policy in [RoundingPolicy::PerLine, RoundingPolicy::PerDocument] {
            let input = DocumentInput {
                lines: vec![
                    line("a", 3, "19.99", "1.00", "19"),
                    line("b", 1, "12.50", "0", "7"),
                    line("c", 2, "0.99", "0", "19"),
                ],
                order_discount: dec("5.00"),
                prices_include_tax: true,
                policy,
                scale: 2,
            };
            let p = price(&input);
            check_sums(&p);
            // What the buyer pays: 59.97 − 1 + 12.50 + 1.98 − 5 = 68.45.
            assert_eq!(p.gross, dec("68.45"), "{policy:?}");
            assert_eq!(p.breakdown.len(), 2);
            assert_eq!(p.breakdown[0].rate, dec("19"));
        }
    }

    #[test]
    fn net_prices_add_vat_on_top() {
        let input = DocumentInput {
            lines: vec![
                line("a", 2, "10.00", "0", "19"),
                line("b", 1, "20.00", "0", "7"),
            ],
            order_discount: Decimal::ZERO,
            prices_include_tax: false,
            policy: RoundingPolicy::PerLine,
            scale: 2,
        };
        let p = price(&input);
        check_sums(&p);
        assert_eq!(p.net, dec("40.00"));
        assert_eq!(p.tax, dec("5.20"));
        assert_eq!(p.gross, dec("45.20"));
    }

    /// Many awkward prices, both policies, both price modes: the sums always hold, and each
    /// rate's VAT is what the rate gives, computed here independently of [`price`].
    #[test]
    fn vat_follows_the_rates_and_sums_hold_for_many_documents() {
        let units = [
            "0.01", "0.05", "0.33", "1.99", "7.77", "12.345", "99.99", "0.1234",
        ];
        let rates = ["19", "7", "25.5", "5.5", "0", "2.1"];
        for seed in 0..200usize {
            let lines: Vec<LineInput> = (0..(seed % 9 + 1))
                .map(|i| {
                    let k = seed * 31 + i * 17;
                    line(
                        &i.to_string(),
                        u32::try_from(k % 5 + 1).expect("small"),
                        units[k % units.len()],
                        "0",
                        rates[k % rates.len()],
                    )
                })
                .collect();
            for policy in [RoundingPolicy::PerLine, RoundingPolicy::PerDocument] {
                for prices_include_tax in [false, true] {
                    let order_discount = if seed % 3 == 0 {
                        dec("0.07")
                    } else {
                        Decimal::ZERO
                    };
                    let p = price(&DocumentInput {
                        lines: lines.clone(),
                        order_discount,
                        prices_include_tax,
                        policy,
                        scale: 2,
                    });
                    check_sums(&p);
                    check_tax_against_rates(&lines, order_discount, prices_include_tax, policy, &p);
                }
            }
        }
    }

    /// Half away from zero to the cent, written here with the decimal library's own
    /// strategy rather than the module's [`round`].
    fn cents(value: Decimal) -> Decimal {
        value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
    }

    /// Checks `p` against VAT computed here from the rates: tax = round(net × rate) per line
    /// (`per_line`) or per rate over the document (`per_document`); with gross prices, the
    /// gross is kept and net = round(gross / (1 + rate)). Where there is no order discount
    /// (whose shares are the module's to decide) the nets are checked against the prices too.
    fn check_tax_against_rates(
        lines: &[LineInput],
        order_discount: Decimal,
        prices_include_tax: bool,
        policy: RoundingPolicy,
        p: &Priced,
    ) {
        let context = format!("{policy:?}, gross prices: {prices_include_tax}");
        let factor = |rate: Decimal| rate / Decimal::ONE_HUNDRED;
        let amount = |l: &LineInput| Decimal::from(l.quantity) * l.unit_price - l.discount;
        let mut rates: Vec<Decimal> = lines.iter().map(|l| l.rate.normalize()).collect();
        rates.sort();
        rates.dedup();
        let mut expected_tax = Decimal::ZERO;
        for rate in rates {
            let at_rate = |l: &&PricedLine| l.rate == rate;
            let net: Decimal = p.lines.iter().filter(at_rate).map(|l| l.net).sum();
            let tax: Decimal = p.lines.iter().filter(at_rate).map(|l| l.tax).sum();
            let gross = net + tax;
            let inputs = || lines.iter().filter(|l| l.rate.normalize() == rate);
            let undiscounted = order_discount.is_zero();
            match (policy, prices_include_tax) {
                (RoundingPolicy::PerLine, false) => {
                    for (l, input) in p.lines.iter().zip(lines) {
                        if l.rate == rate {
                            assert_eq!(l.tax, cents(l.net * factor(rate)), "{context}: {l:?}");
                            if undiscounted {
                                assert_eq!(l.net, cents(amount(input)), "{context}: {l:?}");
                            }
                        }
                    }
                }
                (RoundingPolicy::PerLine, true) => {
                    for (l, input) in p.lines.iter().zip(lines) {
                        if l.rate == rate {
                            let line_gross = l.net + l.tax;
                            let line_net = cents(line_gross / (Decimal::ONE + factor(rate)));
                            assert_eq!(l.net, line_net, "{context}: {l:?}");
                            if undiscounted {
                                assert_eq!(line_gross, cents(amount(input)), "{context}: {l:?}");
                            }
                        }
                    }
                }
                (RoundingPolicy::PerDocument, false) => {
                    assert_eq!(tax, cents(net * factor(rate)), "{context}: rate {rate}");
                    if undiscounted {
                        let sum: Decimal = inputs().map(amount).sum();
                        assert_eq!(net, cents(sum), "{context}: rate {rate}");
                    }
                }
                (RoundingPolicy::PerDocument, true) => {
                    let net_of_gross = cents(gross / (Decimal::ONE + factor(rate)));
                    assert_eq!(net, net_of_gross, "{context}: rate {rate}");
                    if undiscounted {
                        let sum: Decimal = inputs().map(amount).sum();
                        assert_eq!(gross, cents(sum), "{context}: rate {rate}");
                    }
                }
            }
            expected_tax += tax;
        }
        assert_eq!(
            p.tax, expected_tax,
            "{context}: the total is the rates' VAT"
        );
    }
}
