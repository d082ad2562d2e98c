//! Documents of every rule, as the worker snapshots them, turned into CII and read back.

use std::str::FromStr;

use chrono::NaiveDate;
use orderly_contracts::messages::RoundingPolicy;
use orderly_contracts::types::TaxCategory;
use rust_decimal::Decimal;

use super::check::{Severity, check_cii};
use super::{VatCode, categories, cii, due_date};
use crate::domain::amounts::{self, DocumentInput, LineInput};
use crate::domain::document::{CreditedInvoice, Document, DocumentKind, Party};
use crate::domain::language::Language;
use crate::domain::vat::{self, Rule};

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal")
}

fn party(name: &str, country: &str, postcode: &str, city: &str, vat_id: Option<&str>) -> Party {
    Party {
        name: name.into(),
        attention: None,
        lines: vec!["Hauptstraße 12".into()],
        city_line: format!("{postcode} {city}"),
        country: country.into(),
        vat_id: vat_id.map(Into::into),
        tax_number: None,
        postal_code: Some(postcode.into()),
        city: Some(city.into()),
    }
}

/// Lines: (category, rate, quantity, unit price).
fn document(
    rule: Rule,
    lines: &[(TaxCategory, &str, u32, &str)],
    gross: bool,
    policy: RoundingPolicy,
) -> Document {
    let priced = amounts::price(&DocumentInput {
        lines: lines
            .iter()
            .enumerate()
            .map(|(i, (category, rate, quantity, price))| LineInput {
                line_id: (i + 1).to_string(),
                sku: format!("SKU-{i}"),
                title: format!("Artikel {i} – Bücher & Süßwaren <groß>"),
                category: *category,
                quantity: *quantity,
                unit_price: dec(price),
                discount: Decimal::ZERO,
                rate: dec(rate),
                exemption_reference: None,
            })
            .collect(),
        order_discount: Decimal::ZERO,
        prices_include_tax: gross,
        policy,
        scale: 2,
    });
    let (buyer, legal_note) = match rule {
        Rule::IntraEuReverseCharge => (
            party(
                "Société Générale d'Édition SARL",
                "FR",
                "75001",
                "Paris",
                Some("FR40303265045"),
            ),
            Some(vat::REVERSE_CHARGE_WORDING.to_owned()),
        ),
        Rule::Export => (
            party("Zoë Müller", "CH", "8001", "Zürich", None),
            Some(vat::EXPORT_WORDING.to_owned()),
        ),
        Rule::SmallBusiness => (
            party("Jörg Schäfer", "DE", "80331", "München", None),
            Some(format!("{} (§ 19 UStG)", vat::SMALL_BUSINESS_WORDING)),
        ),
        _ => (party("Jörg Schäfer", "DE", "80331", "München", None), None),
    };
    let seller_vat = (rule != Rule::SmallBusiness).then_some("DE123456789");
    Document {
        kind: DocumentKind::Invoice,
        number: "RE-2026-000042".into(),
        issue_date: NaiveDate::from_ymd_opt(2026, 3, 14).expect("date"),
        supply_date: NaiveDate::from_ymd_opt(2026, 3, 13).expect("date"),
        order_reference: "100234".into(),
        currency: "EUR".into(),
        seller: Party {
            tax_number: Some("37/123/45678".into()),
            ..party("Beispiel Handels GmbH", "DE", "10119", "Berlin", seller_vat)
        },
        buyer,
        ship_to: None,
        lines: priced.lines,
        breakdown: priced.breakdown,
        net: priced.net,
        tax: priced.tax,
        gross: priced.gross,
        rule,
        reason: "the audit record".into(),
        vat_id_check: None,
        legal_note,
        credits: None,
        payment_terms_days: Some(14),
        footer: Some("Amtsgericht Berlin HRB 123456".into()),
        language: Language::De,
        einvoice: Default::default(),
        vat_national: None,
    }
}

fn errors(xml: &str) -> Vec<String> {
    check_cii(xml)
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.to_string())
        .collect()
}

#[test]
fn every_rule_makes_a_document_that_keeps_en_16931s_rules() {
    use TaxCategory::{Exempt, Reduced, Standard, Zero};
    let net = RoundingPolicy::PerDocument;
    let cases = [
        (
            "domestic, two rates",
            document(
                Rule::Domestic,
                &[(Standard, "19", 2, "12.90"), (Reduced, "7", 1, "21.40")],
                false,
                net,
            ),
        ),
        (
            "domestic, zero-rated and exempt",
            document(
                Rule::Domestic,
                &[
                    (Standard, "19", 1, "10"),
                    (Zero, "0", 1, "5"),
                    (Exempt, "0", 1, "7"),
                ],
                false,
                net,
            ),
        ),
        (
            "gross prices rounded per line",
            document(
                Rule::Domestic,
                &[
                    (Standard, "19", 3, "4.99"),
                    (Standard, "19", 2, "12.90"),
                    (Reduced, "7", 1, "21.40"),
                ],
                true,
                RoundingPolicy::PerLine,
            ),
        ),
        (
            "intra-Community supply",
            document(
                Rule::IntraEuReverseCharge,
                &[(Standard, "0", 2, "19.99")],
                false,
                net,
            ),
        ),
        (
            "export",
            document(Rule::Export, &[(Standard, "0", 1, "99")], false, net),
        ),
        (
            "small business",
            document(Rule::SmallBusiness, &[(Standard, "0", 1, "50")], false, net),
        ),
        (
            "distance sale at destination",
            document(
                Rule::DistanceSaleOss,
                &[(Standard, "20", 1, "83.30")],
                false,
                net,
            ),
        ),
    ];
    for (name, doc) in &cases {
        let xml = cii(doc);
        let found = errors(&xml);
        assert!(found.is_empty(), "{name}: {found:#?}\n{xml}");
    }
    // What the codes are.
    let codes = |doc: &Document| {
        categories(doc)
            .iter()
            .map(|c| (c.code, c.rate.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        codes(&cases[1].1),
        vec![
            (VatCode::S, "19".into()),
            (VatCode::Z, "0".into()),
            (VatCode::E, "0".into())
        ]
    );
    assert_eq!(codes(&cases[3].1), vec![(VatCode::K, "0".into())]);
    assert_eq!(codes(&cases[4].1), vec![(VatCode::G, "0".into())]);
    assert_eq!(codes(&cases[5].1), vec![(VatCode::E, "0".into())]);
    let ic = cii(&cases[3].1);
    for needle in [
        "<ram:CategoryCode>K</ram:CategoryCode>",
        "<ram:ExemptionReasonCode>VATEX-EU-IC</ram:ExemptionReasonCode>",
        "<ram:ID schemeID=\"VA\">FR40303265045</ram:ID>",
        "<ram:ShipToTradeParty>",
        "<ram:TypeCode>380</ram:TypeCode>",
        "Bücher &amp; Süßwaren &lt;groß&gt;",
    ] {
        assert!(ic.contains(needle), "{needle} missing:\n{ic}");
    }
    assert_eq!(due_date(&cases[0].1), NaiveDate::from_ymd_opt(2026, 3, 28));
}

#[test]
fn a_credit_note_names_the_invoice_it_corrects() {
    let mut doc = document(
        Rule::Domestic,
        &[(TaxCategory::Standard, "19", 1, "10")],
        false,
        RoundingPolicy::PerLine,
    );
    doc.kind = DocumentKind::CreditNote;
    doc.number = "GS-2026-000001".into();
    doc.payment_terms_days = None;
    doc.credits = Some(CreditedInvoice {
        number: "RE-2026-000042".into(),
        issue_date: NaiveDate::from_ymd_opt(2026, 3, 14).expect("date"),
        reason: "Returned: damaged in transit".into(),
    });
    let xml = cii(&doc);
    assert!(errors(&xml).is_empty(), "{:#?}", errors(&xml));
    assert!(xml.contains("<ram:TypeCode>381</ram:TypeCode>"));
    assert!(xml.contains("<ram:InvoiceReferencedDocument>"));
    assert!(xml.contains("<ram:IssuerAssignedID>RE-2026-000042</ram:IssuerAssignedID>"));
}

#[test]
fn the_checker_finds_broken_documents() {
    let doc = document(
        Rule::Domestic,
        &[(TaxCategory::Standard, "19", 2, "12.90")],
        false,
        RoundingPolicy::PerLine,
    );
    let good = cii(&doc);
    let rules = |xml: &str| {
        check_cii(xml)
            .into_iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| f.rule)
            .collect::<Vec<_>>()
    };
    // A total that does not add up, a missing seller name, a breakdown off by a euro.
    let bad_total = good.replace(
        "<ram:GrandTotalAmount>30.70</ram:GrandTotalAmount>",
        "<ram:GrandTotalAmount>30.71</ram:GrandTotalAmount>",
    );
    assert_ne!(bad_total, good);
    assert!(
        rules(&bad_total).contains(&"BR-CO-15"),
        "{:?}",
        rules(&bad_total)
    );
    let no_seller = good.replacen("<ram:Name>Beispiel Handels GmbH</ram:Name>", "", 1);
    assert!(rules(&no_seller).contains(&"BR-06"));
    let wrong_vat = good.replace(
        "<ram:CalculatedAmount>4.90</ram:CalculatedAmount>",
        "<ram:CalculatedAmount>5.90</ram:CalculatedAmount>",
    );
    assert_ne!(wrong_vat, good);
    let r = rules(&wrong_vat);
    assert!(r.contains(&"BR-CO-17") && r.contains(&"BR-CO-14"), "{r:?}");
    assert_eq!(rules("<x/>"), vec!["XML"]);
    assert_eq!(rules("not xml"), vec!["XML"]);
}

#[test]
fn the_pdf_embeds_exactly_the_xml_of_its_snapshot() {
    let doc = document(
        Rule::Domestic,
        &[(TaxCategory::Standard, "19", 2, "12.90")],
        false,
        RoundingPolicy::PerLine,
    );
    let (pdf, _) = crate::pdf::render(&doc).expect("render");
    assert_eq!(super::embedded_xml(&pdf).expect("embedded"), cii(&doc));
    assert!(super::embedded_xml(b"%PDF-1.7 nonsense").is_err());
}

/// A CII invoice written independently of this generator (by hand, from the XSD) keeps
/// the rules as the checker reads them: the checker is not only in step with the generator.
#[test]
fn an_independent_en_16931_invoice_passes_the_checker() {
    let sample = include_str!("../../tests/data/cii-en16931-sample.xml");
    let found = check_cii(sample);
    assert!(
        found.iter().all(|f| f.severity != Severity::Error),
        "{found:#?}"
    );
}
