//! The invoice PDF, checked with the tools a person would use: `pdftotext` reads back every
//! Art. 226 field, `qpdf --check` validates the file, `pdftoppm` renders page 1 to a PNG in
//! `target/test-output/` (printed, so a person can look at it).
//!
//! Needs poppler-utils and qpdf (`scripts/test` and `scripts/services` install them).

mod support;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use support::*;

use chrono::NaiveDate;
use orderly_contracts::messages::RoundingPolicy;
use orderly_contracts::types::TaxCategory;
use orderly_invoicing::domain::amounts::{self, DocumentInput, LineInput};
use orderly_invoicing::domain::document::{CreditedInvoice, Document, DocumentKind, Party};
use orderly_invoicing::domain::language::Language;
use orderly_invoicing::domain::vat::{self, Rule, VatIdCheck};
use orderly_invoicing::pdf;
use rust_decimal::Decimal;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal")
}

fn out_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-output");
    std::fs::create_dir_all(&dir).expect("output dir");
    dir
}

fn tool(name: &str, args: &[&str]) -> String {
    let out = Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{name} is not installed (run scripts/test): {e}"));
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn party(name: &str, country: &str, vat_id: Option<&str>) -> Party {
    Party {
        name: name.into(),
        attention: None,
        lines: vec!["Hauptstraße 12".into()],
        city_line: "10115 Berlin".into(),
        country: country.into(),
        vat_id: vat_id.map(Into::into),
        tax_number: None,
        postal_code: Some("10115".into()),
        city: Some("Berlin".into()),
    }
}

fn document(rule: Rule, lines: usize) -> Document {
    let categories = [TaxCategory::Standard, TaxCategory::Reduced];
    let rates = match rule {
        Rule::IntraEuReverseCharge | Rule::Export => [dec("0"), dec("0")],
        _ => [dec("19"), dec("7")],
    };
    let input = DocumentInput {
        lines: (0..lines)
            .map(|i| LineInput {
                line_id: format!("l{i}"),
                sku: format!("SKU-{i:04}"),
                title: if i == 0 {
                    "Kaffeebecher „Größe XL“ — Porzellan, spülmaschinenfest".into()
                } else {
                    format!("Artikel Nr. {i} – Bücher & Süßwaren")
                },
                category: categories[i % 2],
                quantity: u32::try_from(i % 3 + 1).expect("small"),
                unit_price: dec("19.99"),
                discount: Decimal::ZERO,
                rate: rates[i % 2],
                exemption_reference: None,
            })
            .collect(),
        order_discount: Decimal::ZERO,
        prices_include_tax: false,
        policy: RoundingPolicy::PerLine,
        scale: 2,
    };
    let priced = amounts::price(&input);
    let (legal_note, vat_id_check, buyer) = match rule {
        Rule::IntraEuReverseCharge => (
            Some(vat::REVERSE_CHARGE_WORDING.to_owned()),
            Some(VatIdCheck::FormatChecked),
            party(
                "Société Générale d'Édition SARL",
                "FR",
                Some("FR40303265045"),
            ),
        ),
        Rule::Export => (
            Some(vat::EXPORT_WORDING.to_owned()),
            None,
            party("Zoë Müller-Lüdenscheidt", "CH", None),
        ),
        _ => (None, None, party("Jörg Schäfer", "DE", None)),
    };
    Document {
        kind: DocumentKind::Invoice,
        number: "RE-2026-000042".into(),
        issue_date: NaiveDate::from_ymd_opt(2026, 3, 14).expect("date"),
        supply_date: NaiveDate::from_ymd_opt(2026, 3, 13).expect("date"),
        order_reference: "100234".into(),
        currency: "EUR".into(),
        seller: Party {
            tax_number: Some("37/123/45678".into()),
            ..party("Beispiel Handels GmbH", "DE", Some("DE123456789"))
        },
        buyer,
        ship_to: None,
        lines: priced.lines,
        breakdown: priced.breakdown,
        net: priced.net,
        tax: priced.tax,
        gross: priced.gross,
        rule,
        reason: "goods stay in DE (dispatch and delivery): DE rates in force since 2021-01-01"
            .into(),
        vat_id_check,
        legal_note,
        credits: None,
        payment_terms_days: Some(14),
        footer: Some(
            "Beispiel Handels GmbH · Amtsgericht Berlin-Charlottenburg HRB 123456 · IBAN DE89 3704 0044 0532 0130 00"
                .into(),
        ),
        language: Language::En,
        einvoice: Default::default(),
        vat_national: None,
    }
}

/// The same document as a store with `locale` issues it: its language, and the legal
/// wording in that language (as the handler stores it).
fn document_for(locale: &str, rule: Rule, lines: usize) -> Document {
    let language = Language::from_locale(locale);
    Document {
        language,
        legal_note: language.legal_note(rule).map(str::to_owned),
        ..document(rule, lines)
    }
}

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let path = out_dir().join(name);
    std::fs::write(&path, bytes).expect("write pdf");
    path
}

fn text_of(path: &Path, page: Option<usize>) -> String {
    let p = path.to_str().expect("path");
    match page {
        Some(n) => {
            let n = n.to_string();
            tool("pdftotext", &["-layout", "-f", &n, "-l", &n, p, "-"])
        }
        None => tool("pdftotext", &["-layout", p, "-"]),
    }
}

#[test]
fn a_domestic_invoice_shows_every_field_and_renders() {
    let doc = document(Rule::Domestic, 3);
    let (bytes, pages) = pdf::render(&doc).expect("render");
    assert_eq!(pages, 1);
    // The font subset is most of it; a Factur-X invoice also carries its XML (plain, like
    // the page streams), its XMP and the sRGB profile of its output intent (7 KB deflated).
    assert!(
        bytes.len() < 75_000,
        "font subset keeps it small: {} bytes",
        bytes.len()
    );
    let path = write("invoice-domestic.pdf", &bytes);
    tool("qpdf", &["--check", path.to_str().expect("path")]);
    let text = text_of(&path, None);
    for needle in [
        "Invoice RE-2026-000042",
        "Beispiel Handels GmbH",
        "VAT id: DE123456789",
        "Tax number: 37/123/45678",
        "Jörg Schäfer",
        "Hauptstraße 12",
        "Date of issue",
        "2026-03-14",
        "Date of supply",
        "2026-03-13",
        "Kaffeebecher „Größe",
        "19%",
        "7%",
        "Total net",
        "Total VAT",
        &pdf::money_in(doc.gross, "EUR"),
        "€",
        "Payable within 14 days",
        "Amtsgericht Berlin-Charlottenburg",
        "Page 1 of 1",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from:\n{text}");
    }
    // The per-rate breakdown: each rate's net and VAT as numbers.
    for b in &doc.breakdown {
        assert!(text.contains(&pdf::money(b.net)), "{}", b.net);
        assert!(text.contains(&pdf::money(b.tax)), "{}", b.tax);
    }
    // Render page 1 to PNG for a person to look at.
    let png_base = out_dir().join("invoice-domestic-page1");
    tool(
        "pdftoppm",
        &[
            "-png",
            "-r",
            "60",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            path.to_str().expect("path"),
            png_base.to_str().expect("path"),
        ],
    );
    let png = png_base.with_extension("png");
    let meta = std::fs::metadata(&png).expect("png written");
    assert!(meta.len() > 5_000, "a page with text is not blank");
    println!("page 1 rendered to {}", png.display());
}

#[test]
fn reverse_charge_and_export_carry_their_wording() {
    let doc = document(Rule::IntraEuReverseCharge, 2);
    let (bytes, _) = pdf::render(&doc).expect("render");
    let path = write("invoice-reverse-charge.pdf", &bytes);
    tool("qpdf", &["--check", path.to_str().expect("path")]);
    let text = text_of(&path, None)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for needle in [
        "Société Générale d'Édition SARL",
        "VAT id: FR40303265045",
        "VAT id: DE123456789",
        "VAT-exempt intra-Community supply of goods",
        "Art. 138",
        "format checked",
        "0%",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from:\n{text}");
    }
    // The decision's reason is the audit record, not printed for the customer.
    assert!(!text.contains("goods stay in DE"), "{text}");
    assert!(!text.contains("rates in force since"), "{text}");
    let doc = document(Rule::Export, 2);
    let (bytes, _) = pdf::render(&doc).expect("render");
    let path = write("invoice-export.pdf", &bytes);
    tool("qpdf", &["--check", path.to_str().expect("path")]);
    let text = text_of(&path, None)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        text.contains("export of goods outside the European Union"),
        "{text}"
    );
    assert!(text.contains("Zoë Müller-Lüdenscheidt"), "{text}");
}

#[test]
fn a_120_line_invoice_spans_pages_with_repeated_headers() {
    let doc = document(Rule::Domestic, 120);
    let (bytes, pages) = pdf::render(&doc).expect("render");
    assert!(pages >= 3, "120 lines take several pages, got {pages}");
    let path = write("invoice-120-lines.pdf", &bytes);
    tool("qpdf", &["--check", path.to_str().expect("path")]);
    let info = tool("pdfinfo", &[path.to_str().expect("path")]);
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap_or_default()
    };
    assert_eq!(field("Pages:"), pages.to_string(), "{info}");
    assert!(field("Page size:").contains("(A4)"), "{info}");
    let mut seen_positions = 0;
    for page in 1..=pages {
        let text = text_of(&path, Some(page));
        assert!(
            text.contains(&format!("Page {page} of {pages}")),
            "page {page}"
        );
        if page > 1 {
            assert!(
                text.contains("(continued)"),
                "page {page} says it continues"
            );
        }
        // Line 1's long title is cut with an ellipsis before its SKU.
        let rows = text
            .lines()
            .filter(|l| l.contains("SKU-") || l.contains("Kaffeebecher"))
            .count();
        if rows > 0 {
            assert!(
                text.contains("Description (SKU)") && text.contains("Unit net EUR"),
                "page {page} repeats the table header:\n{text}"
            );
        }
        seen_positions += rows;
    }
    assert_eq!(seen_positions, 120, "every line printed once");
    let last = text_of(&path, Some(pages));
    assert!(last.contains("Total VAT"), "totals on the last page");
}

#[test]
fn a_credit_note_names_the_invoice_it_credits() {
    let mut doc = document(Rule::Domestic, 2);
    doc.kind = DocumentKind::CreditNote;
    doc.number = "GS-2026-000007".into();
    doc.credits = Some(CreditedInvoice {
        number: "RE-2026-000042".into(),
        issue_date: NaiveDate::from_ymd_opt(2026, 3, 14).expect("date"),
        reason: "Returned: damaged in transit".into(),
    });
    let (bytes, _) = pdf::render(&doc).expect("render");
    let path = write("credit-note.pdf", &bytes);
    tool("qpdf", &["--check", path.to_str().expect("path")]);
    let text = text_of(&path, None);
    for needle in [
        "Credit note GS-2026-000007",
        "Credits invoice",
        "RE-2026-000042",
        "Returned: damaged in transit",
        "Total credited",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from:\n{text}");
    }
}

fn flat(path: &Path) -> String {
    text_of(path, None)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn a_de_de_store_prints_german_labels_and_the_german_reverse_charge_wording() {
    let doc = document_for("de-DE", Rule::IntraEuReverseCharge, 3);
    assert_eq!(doc.language, Language::De);
    let (bytes, pages) = pdf::render(&doc).expect("render");
    assert_eq!(pages, 1);
    let path = write("invoice-de.pdf", &bytes);
    tool("qpdf", &["--check", path.to_str().expect("path")]);
    let text = flat(&path);
    for needle in [
        "Rechnung RE-2026-000042",
        "VERKÄUFER",
        "KÄUFER",
        "Rechnungsnummer",
        "Ausstellungsdatum 14.03.2026",
        "Liefer-/Leistungsdatum 13.03.2026",
        "Bestellung",
        "Währung",
        "Steuerliche Behandlung",
        "Innergemeinschaftliche Lieferung",
        "USt-IdNr.: DE123456789",
        "USt-IdNr.: FR40303265045",
        "Steuernummer: 37/123/45678",
        "Bezeichnung (Art.-Nr.)",
        "Menge",
        "EP netto EUR",
        "Rabatt",
        "USt.-Satz",
        "Summe netto",
        "Summe USt.",
        "Gesamtbetrag",
        "Steuerfreie innergemeinschaftliche Lieferung",
        "§ 6a UStG",
        "Art. 138 der Richtlinie 2006/112/EG",
        "USt-IdNr. des Käufers: Format geprüft.",
        "Zahlbar innerhalb von 14 Tagen",
        "Seite 1 von 1",
        &Language::De.amount_in(doc.gross, "EUR"),
        "14.03.2026",
        "13.03.2026",
        "19,99",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from:\n{text}");
    }
    for english in [
        "Invoice",
        "Date of issue",
        "Total net",
        "intra-Community supply",
        "Payable",
        "Page 1",
    ] {
        assert!(!text.contains(english), "English `{english}` in:\n{text}");
    }
    // Render page 1 to PNG for a person to look at.
    let png_base = out_dir().join("invoice-de-page1");
    tool(
        "pdftoppm",
        &[
            "-png",
            "-r",
            "60",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            path.to_str().expect("path"),
            png_base.to_str().expect("path"),
        ],
    );
    println!(
        "page 1 rendered to {}",
        png_base.with_extension("png").display()
    );
}

#[test]
fn a_de_at_store_prints_the_german_export_wording_and_a_german_credit_note() {
    let doc = document_for("de-AT", Rule::Export, 2);
    let (bytes, _) = pdf::render(&doc).expect("render");
    let path = write("invoice-de-export.pdf", &bytes);
    let text = flat(&path);
    assert!(text.contains("Steuerfreie Ausfuhrlieferung"), "{text}");
    assert!(
        text.contains("Art. 146 der Richtlinie 2006/112/EG"),
        "{text}"
    );

    let mut note = document_for("de-DE", Rule::Domestic, 2);
    note.kind = DocumentKind::CreditNote;
    note.number = "GS-2026-000007".into();
    note.credits = Some(CreditedInvoice {
        number: "RE-2026-000042".into(),
        issue_date: NaiveDate::from_ymd_opt(2026, 3, 14).expect("date"),
        reason: "Rücksendung: Transportschaden".into(),
    });
    let (bytes, _) = pdf::render(&note).expect("render");
    let path = write("credit-note-de.pdf", &bytes);
    let text = flat(&path);
    for needle in [
        "Rechnungskorrektur GS-2026-000007",
        "Korrekturnummer",
        "Korrigiert Rechnung RE-2026-000042",
        "vom 14.03.2026",
        "Grund: Rücksendung: Transportschaden",
        "Gesamtbetrag der Korrektur",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from:\n{text}");
    }
}

#[test]
fn a_fr_fr_store_prints_french_labels_and_the_french_wordings() {
    let doc = document_for("fr-FR", Rule::IntraEuReverseCharge, 3);
    assert_eq!(doc.language, Language::Fr);
    let (bytes, _) = pdf::render(&doc).expect("render");
    let path = write("invoice-fr.pdf", &bytes);
    tool("qpdf", &["--check", path.to_str().expect("path")]);
    let text = flat(&path);
    for needle in [
        "Facture RE-2026-000042",
        "VENDEUR",
        "ACHETEUR",
        "Numéro de facture",
        "Date d'émission 14/03/2026",
        "Date de livraison 13/03/2026",
        "Commande",
        "Devise",
        "Régime de TVA",
        "N° TVA: DE123456789",
        "Désignation (réf.)",
        "PU HT EUR",
        "Taux de TVA",
        "Total HT",
        "Total TVA",
        "Total TTC",
        "Exonération de TVA, article 262 ter, I du CGI",
        "14/03/2026",
        "indemnité forfaitaire de 40",
        // pdftotext gives the no-break spaces as spaces.
        &Language::Fr
            .amount_in(doc.gross, "EUR")
            .replace('\u{a0}', " "),
        "19,99",
        "article 138 de la directive 2006/112/CE",
        "Livraison intracommunautaire exonérée",
        "format vérifié",
        "Payable sous 14 jours",
        "Page 1 sur 1",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from:\n{text}");
    }
    let doc = document_for("fr-BE", Rule::Export, 2);
    let (bytes, _) = pdf::render(&doc).expect("render");
    let text = flat(&write("invoice-fr-export.pdf", &bytes));
    assert!(
        text.contains("Exonération de TVA — exportation de biens hors de l'Union européenne (art. 146 de la directive 2006/112/CE)"),
        "{text}"
    );
}

#[test]
fn a_nl_store_prints_dutch_and_an_unknown_locale_english() {
    let doc = document_for("nl-NL", Rule::IntraEuReverseCharge, 2);
    let (bytes, _) = pdf::render(&doc).expect("render");
    let text = flat(&write("invoice-nl.pdf", &bytes));
    for needle in [
        "Factuur RE-2026-000042",
        "Factuurnummer",
        "Btw-id: DE123456789",
        "Vrijgestelde intracommunautaire levering",
        "art. 138 van Richtlijn 2006/112/EG",
        "14-03-2026",
        &Language::Nl.amount_in(doc.gross, "EUR"),
        "19,99",
        "Totaal excl. btw",
        "Pagina 1 van 1",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from:\n{text}");
    }
    let doc = document_for("es-ES", Rule::IntraEuReverseCharge, 2);
    let (bytes, _) = pdf::render(&doc).expect("render");
    let text = flat(&write("invoice-es-falls-back.pdf", &bytes));
    assert!(text.contains("Invoice RE-2026-000042"), "{text}");
    assert!(text.contains("VAT-exempt intra-Community supply"), "{text}");
}

#[test]
fn a_document_stored_before_languages_reads_as_english() {
    let doc = document(Rule::Domestic, 1);
    let mut json = serde_json::to_value(&doc).expect("json");
    assert_eq!(json["language"], "en");
    json.as_object_mut().expect("object").remove("language");
    let old: Document = serde_json::from_value(json).expect("an old snapshot still reads");
    assert_eq!(old.language, Language::En);
    assert_eq!(old, doc);
}

/// Names outside the shared font subset (Greek, Cyrillic) get a subset of their own, and
/// Central European names are in the shared one: all print, and both files are valid.
#[test]
fn names_beyond_latin_1_print_with_the_shared_or_an_own_font_subset() {
    for (file, buyer, country) in [
        ("invoice-greek.pdf", "Νίκος Παπαδόπουλος", "GR"),
        ("invoice-cyrillic.pdf", "Иван Петров", "BG"),
        ("invoice-polish.pdf", "Łukasz Wiśniewski-Żółć", "PL"),
    ] {
        let doc = Document {
            buyer: party(buyer, country, None),
            ..document(Rule::Domestic, 3)
        };
        let (bytes, _) = pdf::render(&doc).expect("render");
        let path = write(file, &bytes);
        tool("qpdf", &["--check", path.to_str().expect("path")]);
        let text = text_of(&path, None);
        assert!(text.contains(buyer), "`{buyer}` missing from:\n{text}");
        assert!(text.contains("Invoice RE-2026-000042"), "{text}");
    }
}

/// Every rendered document is a Factur-X invoice: the EN 16931 XML of the same snapshot is
/// embedded as factur-x.xml, the XMP declares PDF/A-3B and the Factur-X schema, and the
/// project's checker (the official XSD through the factur-x package, the XMP, qpdf --check)
/// accepts it; the embedded XML keeps EN 16931's business rules.
#[test]
fn every_document_is_a_facturx_invoice_the_checker_accepts() {
    for (name, doc) in [
        ("facturx-domestic.pdf", document(Rule::Domestic, 3)),
        (
            "facturx-intra-community.pdf",
            document(Rule::IntraEuReverseCharge, 2),
        ),
        ("facturx-export.pdf", document(Rule::Export, 2)),
    ] {
        let (bytes, _) = pdf::render(&doc).expect("render");
        let path = write(name, &bytes);
        let xml = orderly_invoicing::einvoice::cii(&doc);
        let findings = orderly_invoicing::einvoice::check::check_cii(&xml);
        assert!(
            findings
                .iter()
                .all(|f| f.severity != orderly_invoicing::einvoice::check::Severity::Error),
            "{name}: {findings:#?}"
        );
        let out = einvoice_check(&path);
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {report}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for needle in ["XSD valid", "PDF/A-3B", "qpdf --check: no errors"] {
            assert!(report.contains(needle), "{name}: {report}");
        }
    }
}

/// XRechnung and Peppol BIS (UBL) invoices and credit notes pass the official UBL 2.1
/// schema and the EN 16931 schematron (CEN/TC 434's artefacts, vendored under
/// tools/einvoice), run by scripts/einvoice-check.
#[test]
fn ubl_invoices_pass_the_official_schema_and_schematron() {
    use orderly_contracts::messages::EinvoiceFormat;
    let mut credit_note = with_xrechnung_terms(document(Rule::Domestic, 2));
    credit_note.kind = DocumentKind::CreditNote;
    credit_note.number = "GS-2026-000001".into();
    credit_note.payment_terms_days = None;
    credit_note.credits = Some(CreditedInvoice {
        number: "RE-2026-000042".into(),
        issue_date: NaiveDate::from_ymd_opt(2026, 3, 14).expect("date"),
        reason: "Returned: damaged in transit".into(),
    });
    let mut peppol = with_xrechnung_terms(document(Rule::IntraEuReverseCharge, 2));
    peppol.einvoice.format = Some(EinvoiceFormat::Peppol);
    for (name, doc) in [
        (
            "xrechnung-domestic.xml",
            with_xrechnung_terms(document(Rule::Domestic, 3)),
        ),
        (
            "xrechnung-export.xml",
            with_xrechnung_terms(document(Rule::Export, 2)),
        ),
        ("xrechnung-credit-note.xml", credit_note),
        ("peppol-intra-community.xml", peppol),
    ] {
        let xml = orderly_invoicing::einvoice::structured(&doc);
        let path = write(name, xml.as_bytes());
        let out = einvoice_check(&path);
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {report}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(report.contains("schematron"), "{name}: {report}");
    }
}

#[test]
fn ubl_invoices_carry_the_terms_their_format_requires() {
    use orderly_contracts::messages::EinvoiceFormat;
    let doc = with_xrechnung_terms(document(Rule::Domestic, 2));
    assert!(
        doc.einvoice.missing().is_empty(),
        "{:?}",
        doc.einvoice.missing()
    );
    let xml = orderly_invoicing::einvoice::structured(&doc);
    roxmltree::Document::parse(&xml).expect("well-formed");
    for needle in [
        "<Invoice xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\"",
        "urn:xeinkauf.de:kosit:xrechnung_3.0",
        "<cbc:BuyerReference>04011000-12345-34</cbc:BuyerReference>",
        "<cbc:EndpointID schemeID=\"9930\">DE123456789</cbc:EndpointID>",
        "<cbc:PaymentMeansCode>58</cbc:PaymentMeansCode>",
        "<cbc:ID>DE89370400440532013000</cbc:ID>",
        "<cbc:ElectronicMail>rechnung@beispiel.de</cbc:ElectronicMail>",
        "<cbc:DueDate>2026-03-28</cbc:DueDate>",
        "<cbc:TaxAmount currencyID=\"EUR\">",
    ] {
        assert!(xml.contains(needle), "{needle} missing:\n{xml}");
    }
    let peppol = orderly_invoicing::einvoice::ubl(&doc, EinvoiceFormat::Peppol);
    assert!(peppol.contains("urn:fdc:peppol.eu:2017:poacc:billing:3.0"));
    // What is missing is named, per format.
    let mut bare = doc.einvoice.clone();
    bare.buyer_reference = None;
    bare.payee = None;
    assert_eq!(
        bare.missing(),
        vec![
            "the buyer's buyer_reference (BT-10, the Leitweg-ID)",
            "the store's payee_account (BG-16/17: payment instructions)"
        ]
    );
    bare.format = Some(EinvoiceFormat::Peppol);
    assert!(bare.missing().is_empty());
    bare.buyer_address = None;
    assert_eq!(
        bare.missing(),
        vec!["the buyer's electronic_address (BT-49)"]
    );
}
