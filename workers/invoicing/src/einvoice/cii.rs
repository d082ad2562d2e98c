//! The UN/CEFACT Cross Industry Invoice (D16B, as Factur-X 1.0 / ZUGFeRD 2 use it) of a
//! document, in the `EN 16931` profile. Elements are written in the order the schema
//! requires; every business term written is named (`BT-n`) beside it.

use rust_decimal::Decimal;

use super::xml::Xml;
use super::{EN16931_GUIDELINE, VatCode, categories, due_date, line_code};
use crate::domain::document::{Document, DocumentKind, Party};

const RSM: &str = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100";
const RAM: &str =
    "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100";
const QDT: &str = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100";
const UDT: &str = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100";

/// An amount with two decimals (EN 16931 amounts have at most two).
fn amount(d: Decimal) -> String {
    format!("{:.2}", d.round_dp(2))
}

/// A rate or a price as the shortest exact decimal (`19`, `5.5`, `10.8403`).
fn number(d: Decimal) -> String {
    d.normalize().to_string()
}

fn date(x: &mut Xml, tag: &'static str, day: chrono::NaiveDate) {
    x.open(tag, &[]);
    x.leaf_with(
        "udt:DateTimeString",
        &[("format", "102")],
        &day.format("%Y%m%d").to_string(),
    );
    x.close();
}

/// BG-4 / BG-7 / BG-13: a party with its postal address and tax registrations.
fn party(x: &mut Xml, tag: &'static str, p: &Party, with_tax_ids: bool) {
    x.open(tag, &[]);
    x.leaf("ram:Name", &p.name); // BT-27 / BT-44 / BT-70
    // A contact belongs to the seller and the buyer, not to a delivery address (CII-SR-312).
    if let (true, Some(person)) = (with_tax_ids, &p.attention) {
        x.open("ram:DefinedTradeContact", &[]);
        x.leaf("ram:PersonName", person); // BT-41 / BT-56
        x.close();
    }
    x.open("ram:PostalTradeAddress", &[]);
    // Snapshots from before structured invoices keep postcode and city in one line.
    let (postcode, city) = match (&p.postal_code, &p.city) {
        (pc, Some(city)) => (pc.clone(), city.clone()),
        (_, None) => (None, p.city_line.clone()),
    };
    if let Some(pc) = postcode {
        x.leaf("ram:PostcodeCode", &pc); // BT-38
    }
    for (tag, line) in ["ram:LineOne", "ram:LineTwo", "ram:LineThree"]
        .into_iter()
        .zip(&p.lines)
    {
        x.leaf(tag, line); // BT-35, BT-36, BT-162
    }
    x.leaf("ram:CityName", &city); // BT-37
    x.leaf("ram:CountryID", &p.country); // BT-40
    x.close();
    if with_tax_ids {
        if let Some(vat) = &p.vat_id {
            x.open("ram:SpecifiedTaxRegistration", &[]);
            x.leaf_with("ram:ID", &[("schemeID", "VA")], vat); // BT-31 / BT-48
            x.close();
        }
        if let Some(tax) = &p.tax_number {
            x.open("ram:SpecifiedTaxRegistration", &[]);
            x.leaf_with("ram:ID", &[("schemeID", "FC")], tax); // BT-32
            x.close();
        }
    }
    x.close();
}

/// The Factur-X / ZUGFeRD `EN 16931` CII XML of `doc`.
pub fn cii(doc: &Document) -> String {
    let mut x = Xml::new();
    x.open(
        "rsm:CrossIndustryInvoice",
        &[
            ("xmlns:rsm", RSM),
            ("xmlns:qdt", QDT),
            ("xmlns:ram", RAM),
            ("xmlns:udt", UDT),
        ],
    );
    x.open("rsm:ExchangedDocumentContext", &[]);
    x.open("ram:GuidelineSpecifiedDocumentContextParameter", &[]);
    x.leaf("ram:ID", EN16931_GUIDELINE); // BT-24
    x.close();
    x.close();

    x.open("rsm:ExchangedDocument", &[]);
    x.leaf("ram:ID", &doc.number); // BT-1
    let type_code = match doc.kind {
        DocumentKind::Invoice => "380",
        DocumentKind::CreditNote => "381",
    };
    x.leaf("ram:TypeCode", type_code); // BT-3
    date(&mut x, "ram:IssueDateTime", doc.issue_date); // BT-2
    if let Some(note) = &doc.legal_note {
        x.open("ram:IncludedNote", &[]);
        x.leaf("ram:Content", note); // BT-22
        x.leaf("ram:SubjectCode", "REG"); // BT-21: regulatory information
        x.close();
    }
    if let Some(credited) = &doc.credits {
        x.open("ram:IncludedNote", &[]);
        x.leaf("ram:Content", &credited.reason);
        x.close();
    }
    if let Some(footer) = &doc.footer {
        x.open("ram:IncludedNote", &[]);
        x.leaf("ram:Content", footer);
        x.close();
    }
    x.close();

    x.open("rsm:SupplyChainTradeTransaction", &[]);
    for (i, line) in doc.lines.iter().enumerate() {
        let code = line_code(doc.rule, line.category, line.rate);
        x.open("ram:IncludedSupplyChainTradeLineItem", &[]);
        x.open("ram:AssociatedDocumentLineDocument", &[]);
        x.leaf("ram:LineID", &(i + 1).to_string()); // BT-126
        x.close();
        x.open("ram:SpecifiedTradeProduct", &[]);
        if !line.sku.is_empty() {
            x.leaf("ram:SellerAssignedID", &line.sku); // BT-155
        }
        x.leaf("ram:Name", &line.title); // BT-153
        x.close();
        x.open("ram:SpecifiedLineTradeAgreement", &[]);
        x.open("ram:NetPriceProductTradePrice", &[]);
        // BT-146: the net per unit after the line's discounts, so quantity × price is the
        // line's net (the printed net column).
        let quantity = Decimal::from(line.quantity.max(1));
        x.leaf(
            "ram:ChargeAmount",
            &number((line.net / quantity).round_dp(4)),
        );
        x.close();
        x.close();
        x.open("ram:SpecifiedLineTradeDelivery", &[]);
        x.leaf_with(
            "ram:BilledQuantity",
            &[("unitCode", "C62")],
            &line.quantity.to_string(),
        ); // BT-129, BT-130 (C62: one)
        x.close();
        x.open("ram:SpecifiedLineTradeSettlement", &[]);
        x.open("ram:ApplicableTradeTax", &[]);
        x.leaf("ram:TypeCode", "VAT");
        x.leaf("ram:CategoryCode", code.as_str()); // BT-151
        x.leaf("ram:RateApplicablePercent", &number(line.rate)); // BT-152
        x.close();
        x.open("ram:SpecifiedTradeSettlementLineMonetarySummation", &[]);
        x.leaf("ram:LineTotalAmount", &amount(line.net)); // BT-131
        x.close();
        x.close();
        x.close();
    }

    let cats = categories(doc);
    x.open("ram:ApplicableHeaderTradeAgreement", &[]);
    party(&mut x, "ram:SellerTradeParty", &doc.seller, true);
    party(&mut x, "ram:BuyerTradeParty", &doc.buyer, true);
    x.open("ram:BuyerOrderReferencedDocument", &[]);
    x.leaf("ram:IssuerAssignedID", &doc.order_reference); // BT-13
    x.close();
    x.close();

    x.open("ram:ApplicableHeaderTradeDelivery", &[]);
    // BG-13: where the goods went; an intra-Community supply always names it (BR-IC-12).
    let ship_to = doc.ship_to.as_ref().or_else(|| {
        cats.iter()
            .any(|c| c.code == VatCode::K)
            .then_some(&doc.buyer)
    });
    if let Some(p) = ship_to {
        party(&mut x, "ram:ShipToTradeParty", p, false);
    }
    x.open("ram:ActualDeliverySupplyChainEvent", &[]);
    date(&mut x, "ram:OccurrenceDateTime", doc.supply_date); // BT-72
    x.close();
    x.close();

    x.open("ram:ApplicableHeaderTradeSettlement", &[]);
    if let Some(c) = &doc.vat_national {
        x.leaf("ram:TaxCurrencyCode", &c.currency); // BT-6 (Art. 230)
    }
    x.leaf("ram:InvoiceCurrencyCode", &doc.currency); // BT-5
    for c in &cats {
        x.open("ram:ApplicableTradeTax", &[]);
        x.leaf("ram:CalculatedAmount", &amount(c.tax)); // BT-117
        x.leaf("ram:TypeCode", "VAT");
        if let Some(reason) = &c.exemption_reason {
            x.leaf("ram:ExemptionReason", reason); // BT-120
        }
        x.leaf("ram:BasisAmount", &amount(c.basis)); // BT-116
        x.leaf("ram:CategoryCode", c.code.as_str()); // BT-118
        if let Some(code) = c.code.exemption_code() {
            x.leaf("ram:ExemptionReasonCode", code); // BT-121
        }
        x.leaf("ram:RateApplicablePercent", &number(c.rate)); // BT-119
        x.close();
    }
    // BT-20 / BT-9: an amount due needs terms or a due date (BR-CO-25); a credit note's
    // amount is paid back.
    match (doc.kind, doc.payment_terms_days) {
        (DocumentKind::Invoice, Some(days)) => {
            x.open("ram:SpecifiedTradePaymentTerms", &[]);
            x.leaf("ram:Description", &doc.language.payment_terms(days));
            if let Some(due) = due_date(doc) {
                date(&mut x, "ram:DueDateDateTime", due);
            }
            x.close();
        }
        (DocumentKind::CreditNote, _) => {
            x.open("ram:SpecifiedTradePaymentTerms", &[]);
            x.leaf(
                "ram:Description",
                "The amount credited is paid back to the buyer.",
            );
            x.close();
        }
        (DocumentKind::Invoice, None) => {}
    }
    x.open("ram:SpecifiedTradeSettlementHeaderMonetarySummation", &[]);
    x.leaf("ram:LineTotalAmount", &amount(doc.net)); // BT-106
    x.leaf("ram:TaxBasisTotalAmount", &amount(doc.net)); // BT-109
    x.leaf_with(
        "ram:TaxTotalAmount",
        &[("currencyID", &doc.currency)],
        &amount(doc.tax),
    ); // BT-110
    if let Some(c) = &doc.vat_national {
        x.leaf_with(
            "ram:TaxTotalAmount",
            &[("currencyID", &c.currency)],
            &amount(c.vat),
        ); // BT-111
    }
    x.leaf("ram:GrandTotalAmount", &amount(doc.gross)); // BT-112
    x.leaf("ram:DuePayableAmount", &amount(doc.gross)); // BT-115
    x.close();
    if let Some(credited) = &doc.credits {
        x.open("ram:InvoiceReferencedDocument", &[]);
        x.leaf("ram:IssuerAssignedID", &credited.number); // BT-25
        x.open("ram:FormattedIssueDateTime", &[]);
        x.leaf_with(
            "qdt:DateTimeString",
            &[("format", "102")],
            &credited.issue_date.format("%Y%m%d").to_string(),
        ); // BT-26
        x.close();
        x.close();
    }
    x.close();
    x.close();
    x.finish()
}
