//! The business rules of EN 16931 that need no network, checked on a CII document as
//! stored (read back from its XML, not from the snapshot it was made from): the mandatory
//! terms (BR-01 to BR-27, BR-CO-18, BR-CO-25), the totals (BR-CO-10, 13, 14, 15, 16, 17),
//! the breakdown against the lines (BR-S-08 and its siblings), and the categories' own rules
//! (BR-S-02, BR-IC-02, 11, 12, BR-G-02, BR-E-02, BR-E-10, BR-IC-10, BR-G-10).
//!
//! BR-CO-17 (a category's VAT = its basis × rate, rounded) is an error beyond 0.01 per line
//! of the category and a warning within it: a store that rounds VAT per line (or prices
//! gross) rounds each line, and Factur-X's own schematron allows the same tolerance
//! (BR-FXEXT-S-09). XML schema validation is `scripts/einvoice-check` (the official XSD).

use std::collections::BTreeMap;
use std::str::FromStr;

use roxmltree::{Document, Node};
use rust_decimal::Decimal;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The document breaks the rule.
    Error,
    /// Within a tolerance the rule's authors allow elsewhere.
    Warning,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule's id (`BR-CO-15`).
    pub rule: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, with the values.
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{s} [{}] {}", self.rule, self.message)
    }
}

fn children<'a, 'i>(n: Node<'a, 'i>, name: &'a str) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    n.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

fn child<'a, 'i>(n: Node<'a, 'i>, path: &[&'a str]) -> Option<Node<'a, 'i>> {
    let mut at = n;
    for name in path {
        at = children(at, name).next()?;
    }
    Some(at)
}

fn text<'a>(n: Node<'a, '_>, path: &[&'a str]) -> Option<&'a str> {
    child(n, path)
        .and_then(|c| c.text())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

struct Checker {
    found: Vec<Finding>,
}

impl Checker {
    fn error(&mut self, rule: &'static str, message: impl Into<String>) {
        self.found.push(Finding {
            rule,
            severity: Severity::Error,
            message: message.into(),
        });
    }

    fn require(&mut self, rule: &'static str, present: bool, what: &str) {
        if !present {
            self.error(rule, format!("{what} is missing"));
        }
    }

    fn amount(
        &mut self,
        rule: &'static str,
        n: Node<'_, '_>,
        path: &[&str],
        what: &str,
    ) -> Decimal {
        match text(n, path).map(Decimal::from_str) {
            Some(Ok(d)) => d,
            Some(Err(_)) => {
                self.error(rule, format!("{what} is not a decimal"));
                Decimal::ZERO
            }
            None => {
                self.error(rule, format!("{what} is missing"));
                Decimal::ZERO
            }
        }
    }

    fn equal(&mut self, rule: &'static str, what: &str, got: Decimal, expected: Decimal) {
        if got != expected {
            self.error(rule, format!("{what} is {got}, expected {expected}"));
        }
    }
}

fn round2(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

/// Checks a CII invoice or credit note. Empty: every rule holds.
pub fn check_cii(xml: &str) -> Vec<Finding> {
    let mut c = Checker { found: Vec::new() };
    let doc = match Document::parse(xml) {
        Ok(doc) => doc,
        Err(e) => {
            c.error("XML", format!("not well-formed XML: {e}"));
            return c.found;
        }
    };
    let root = doc.root_element();
    if root.tag_name().name() != "CrossIndustryInvoice" {
        c.error(
            "XML",
            format!(
                "the root is {}, not CrossIndustryInvoice",
                root.tag_name().name()
            ),
        );
        return c.found;
    }
    c.require(
        "BR-01",
        text(
            root,
            &[
                "ExchangedDocumentContext",
                "GuidelineSpecifiedDocumentContextParameter",
                "ID",
            ],
        )
        .is_some(),
        "the specification identifier (BT-24)",
    );
    let head = child(root, &["ExchangedDocument"]);
    let head_text = |path: &[&'static str]| head.and_then(|h| text(h, path));
    c.require(
        "BR-02",
        head_text(&["ID"]).is_some(),
        "the invoice number (BT-1)",
    );
    c.require(
        "BR-03",
        head_text(&["IssueDateTime", "DateTimeString"]).is_some(),
        "the issue date (BT-2)",
    );
    match head_text(&["TypeCode"]) {
        Some("380" | "381" | "384" | "389" | "751" | "326" | "386") => {}
        Some(other) => c.error(
            "BR-04",
            format!("type code {other} is not an invoice or credit note code"),
        ),
        None => c.error("BR-04", "the type code (BT-3) is missing"),
    }
    let Some(tx) = child(root, &["SupplyChainTradeTransaction"]) else {
        c.error("BR-16", "no SupplyChainTradeTransaction");
        return c.found;
    };
    let settlement = child(tx, &["ApplicableHeaderTradeSettlement"]);
    c.require(
        "BR-05",
        settlement
            .and_then(|s| text(s, &["InvoiceCurrencyCode"]))
            .is_some(),
        "the invoice currency (BT-5)",
    );
    let agreement = child(tx, &["ApplicableHeaderTradeAgreement"]);
    let seller = agreement.and_then(|a| child(a, &["SellerTradeParty"]));
    let buyer = agreement.and_then(|a| child(a, &["BuyerTradeParty"]));
    c.require(
        "BR-06",
        seller.and_then(|s| text(s, &["Name"])).is_some(),
        "the seller's name (BT-27)",
    );
    c.require(
        "BR-07",
        buyer.and_then(|b| text(b, &["Name"])).is_some(),
        "the buyer's name (BT-44)",
    );
    c.require(
        "BR-08",
        seller
            .and_then(|s| child(s, &["PostalTradeAddress"]))
            .is_some(),
        "the seller's postal address (BG-5)",
    );
    c.require(
        "BR-09",
        seller
            .and_then(|s| text(s, &["PostalTradeAddress", "CountryID"]))
            .is_some(),
        "the seller's country (BT-40)",
    );
    c.require(
        "BR-10",
        buyer
            .and_then(|b| child(b, &["PostalTradeAddress"]))
            .is_some(),
        "the buyer's postal address (BG-8)",
    );
    c.require(
        "BR-11",
        buyer
            .and_then(|b| text(b, &["PostalTradeAddress", "CountryID"]))
            .is_some(),
        "the buyer's country (BT-55)",
    );
    let vat_id = |p: Option<Node<'_, '_>>| {
        p.into_iter()
            .flat_map(|p| children(p, "SpecifiedTaxRegistration"))
            .filter_map(|r| child(r, &["ID"]))
            .find(|id| id.attribute("schemeID") == Some("VA"))
            .and_then(|id| id.text())
            .map(str::to_owned)
    };
    let tax_number = seller
        .into_iter()
        .flat_map(|p| children(p, "SpecifiedTaxRegistration"))
        .filter_map(|r| child(r, &["ID"]))
        .any(|id| id.attribute("schemeID") == Some("FC"));
    let seller_vat = vat_id(seller);
    let buyer_vat = vat_id(buyer);

    // Lines.
    let lines: Vec<Node<'_, '_>> = children(tx, "IncludedSupplyChainTradeLineItem").collect();
    if lines.is_empty() {
        c.error("BR-16", "the invoice has no line (BG-25)");
    }
    let mut line_sum = Decimal::ZERO;
    let mut per_category: BTreeMap<(String, Decimal), (Decimal, usize)> = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        c.require(
            "BR-21",
            text(*line, &["AssociatedDocumentLineDocument", "LineID"]).is_some(),
            &format!("line {n}: its identifier (BT-126)"),
        );
        let quantity = child(*line, &["SpecifiedLineTradeDelivery", "BilledQuantity"]);
        c.require(
            "BR-22",
            quantity.and_then(|q| q.text()).is_some(),
            &format!("line {n}: the quantity (BT-129)"),
        );
        c.require(
            "BR-23",
            quantity.and_then(|q| q.attribute("unitCode")).is_some(),
            &format!("line {n}: the unit of measure (BT-130)"),
        );
        let net = c.amount(
            "BR-24",
            *line,
            &[
                "SpecifiedLineTradeSettlement",
                "SpecifiedTradeSettlementLineMonetarySummation",
                "LineTotalAmount",
            ],
            &format!("line {n}: the net amount (BT-131)"),
        );
        c.require(
            "BR-25",
            text(*line, &["SpecifiedTradeProduct", "Name"]).is_some(),
            &format!("line {n}: the item name (BT-153)"),
        );
        let price = c.amount(
            "BR-26",
            *line,
            &[
                "SpecifiedLineTradeAgreement",
                "NetPriceProductTradePrice",
                "ChargeAmount",
            ],
            &format!("line {n}: the net price (BT-146)"),
        );
        if price.is_sign_negative() {
            c.error(
                "BR-27",
                format!("line {n}: the net price {price} is negative"),
            );
        }
        let tax = child(
            *line,
            &["SpecifiedLineTradeSettlement", "ApplicableTradeTax"],
        );
        let code = tax.and_then(|t| text(t, &["CategoryCode"]));
        c.require(
            "BR-CO-04",
            code.is_some(),
            &format!("line {n}: the VAT category (BT-151)"),
        );
        let rate = tax
            .and_then(|t| text(t, &["RateApplicablePercent"]))
            .and_then(|r| Decimal::from_str(r).ok())
            .unwrap_or_default()
            .normalize();
        line_sum += net;
        let e = per_category
            .entry((code.unwrap_or("").to_owned(), rate))
            .or_default();
        e.0 += net;
        e.1 += 1;
    }

    // Totals.
    let Some(settlement) = settlement else {
        c.error("BR-12", "no ApplicableHeaderTradeSettlement");
        return c.found;
    };
    let sums = child(
        settlement,
        &["SpecifiedTradeSettlementHeaderMonetarySummation"],
    );
    let Some(sums) = sums else {
        c.error("BR-12", "the document totals (BG-22) are missing");
        return c.found;
    };
    let line_total = c.amount(
        "BR-12",
        sums,
        &["LineTotalAmount"],
        "the sum of line nets (BT-106)",
    );
    let basis_total = c.amount(
        "BR-13",
        sums,
        &["TaxBasisTotalAmount"],
        "the total without VAT (BT-109)",
    );
    let grand = c.amount(
        "BR-14",
        sums,
        &["GrandTotalAmount"],
        "the total with VAT (BT-112)",
    );
    let due = c.amount(
        "BR-15",
        sums,
        &["DuePayableAmount"],
        "the amount due (BT-115)",
    );
    let tax_total = text(sums, &["TaxTotalAmount"])
        .and_then(|t| Decimal::from_str(t).ok())
        .unwrap_or_default();
    let allowances = text(sums, &["AllowanceTotalAmount"])
        .and_then(|t| Decimal::from_str(t).ok())
        .unwrap_or_default();
    let charges = text(sums, &["ChargeTotalAmount"])
        .and_then(|t| Decimal::from_str(t).ok())
        .unwrap_or_default();
    let prepaid = text(sums, &["TotalPrepaidAmount"])
        .and_then(|t| Decimal::from_str(t).ok())
        .unwrap_or_default();
    let rounding = text(sums, &["RoundingAmount"])
        .and_then(|t| Decimal::from_str(t).ok())
        .unwrap_or_default();
    c.equal(
        "BR-CO-10",
        "the sum of line nets (BT-106)",
        line_total,
        line_sum,
    );
    c.equal(
        "BR-CO-13",
        "the total without VAT (BT-109)",
        basis_total,
        line_total - allowances + charges,
    );
    c.equal(
        "BR-CO-15",
        "the total with VAT (BT-112)",
        grand,
        basis_total + tax_total,
    );
    c.equal(
        "BR-CO-16",
        "the amount due (BT-115)",
        due,
        grand - prepaid + rounding,
    );

    // The breakdown.
    let breakdown: Vec<Node<'_, '_>> = children(settlement, "ApplicableTradeTax").collect();
    if breakdown.is_empty() {
        c.error("BR-CO-18", "no VAT breakdown (BG-23)");
    }
    let mut category_tax = Decimal::ZERO;
    let mut codes = Vec::new();
    for row in &breakdown {
        let code = text(*row, &["CategoryCode"]).unwrap_or("").to_owned();
        let rate = text(*row, &["RateApplicablePercent"])
            .and_then(|r| Decimal::from_str(r).ok())
            .unwrap_or_default()
            .normalize();
        let basis = c.amount(
            "BR-45",
            *row,
            &["BasisAmount"],
            &format!("the {code} {rate} % taxable amount (BT-116)"),
        );
        let tax = c.amount(
            "BR-46",
            *row,
            &["CalculatedAmount"],
            &format!("the {code} {rate} % VAT (BT-117)"),
        );
        category_tax += tax;
        let (lines_net, lines_in) = per_category
            .remove(&(code.clone(), rate))
            .unwrap_or_default();
        // BR-S-08, BR-Z-08, BR-E-08, BR-IC-08, BR-G-08: the basis is the lines' nets.
        c.equal(
            "BR-S-08",
            &format!("the {code} {rate} % taxable amount (BT-116)"),
            basis,
            lines_net,
        );
        let expected = round2(basis * rate / Decimal::ONE_HUNDRED);
        let off = (tax - expected).abs();
        if off > Decimal::ZERO {
            let tolerance = Decimal::new(1, 2) * Decimal::from(lines_in.max(1));
            c.found.push(Finding {
                rule: "BR-CO-17",
                severity: if off <= tolerance { Severity::Warning } else { Severity::Error },
                message: format!(
                    "the {code} {rate} % VAT is {tax}, {basis} × {rate} % rounds to {expected} ({off} off; VAT rounded per line, {lines_in} line(s))"
                ),
            });
        }
        if matches!(code.as_str(), "E" | "K" | "G")
            && text(*row, &["ExemptionReason"]).is_none()
            && text(*row, &["ExemptionReasonCode"]).is_none()
        {
            c.error(
                "BR-E-10",
                format!("the {code} breakdown has no exemption reason (BT-120/121)"),
            );
        }
        if matches!(code.as_str(), "E" | "K" | "G" | "Z") && !tax.is_zero() {
            c.error(
                "BR-IC-09",
                format!("the {code} breakdown charges VAT {tax}"),
            );
        }
        codes.push(code);
    }
    for ((code, rate), _) in per_category {
        c.error(
            "BR-CO-18",
            format!("lines in category {code} at {rate} % have no breakdown row"),
        );
    }
    c.equal(
        "BR-CO-14",
        "the total VAT (BT-110)",
        tax_total,
        category_tax,
    );
    let has = |code: &str| codes.iter().any(|c| c == code);
    if has("S") && seller_vat.is_none() {
        c.error(
            "BR-S-02",
            "standard-rated lines need the seller's VAT id (BT-31)",
        );
    }
    if has("K") {
        c.require(
            "BR-IC-02",
            seller_vat.is_some() && buyer_vat.is_some(),
            "an intra-Community supply's seller and buyer VAT ids (BT-31, BT-48)",
        );
        let delivery = child(tx, &["ApplicableHeaderTradeDelivery"]);
        c.require(
            "BR-IC-11",
            delivery
                .and_then(|d| {
                    text(
                        d,
                        &[
                            "ActualDeliverySupplyChainEvent",
                            "OccurrenceDateTime",
                            "DateTimeString",
                        ],
                    )
                })
                .is_some(),
            "an intra-Community supply's delivery date (BT-72)",
        );
        c.require(
            "BR-IC-12",
            delivery
                .and_then(|d| text(d, &["ShipToTradeParty", "PostalTradeAddress", "CountryID"]))
                .is_some(),
            "an intra-Community supply's deliver-to country (BT-80)",
        );
    }
    if has("G") && seller_vat.is_none() {
        c.error("BR-G-02", "an export needs the seller's VAT id (BT-31)");
    }
    if has("E") && seller_vat.is_none() && !tax_number {
        c.error(
            "BR-E-02",
            "exempt lines need the seller's VAT id or tax number (BT-31/32)",
        );
    }
    for id in [&seller_vat, &buyer_vat].into_iter().flatten() {
        let prefix = id.get(..2).unwrap_or("");
        if !prefix.bytes().all(|b| b.is_ascii_uppercase()) || prefix.len() != 2 {
            c.error(
                "BR-CO-09",
                format!("VAT id {id} does not start with a country prefix"),
            );
        }
    }
    if due > Decimal::ZERO {
        let terms = child(settlement, &["SpecifiedTradePaymentTerms"]);
        c.require(
            "BR-CO-25",
            terms.is_some_and(|t| {
                text(t, &["DueDateDateTime", "DateTimeString"]).is_some()
                    || text(t, &["Description"]).is_some()
            }),
            "a due date or payment terms (BT-9/BT-20) for a positive amount due",
        );
    }
    c.found
}
