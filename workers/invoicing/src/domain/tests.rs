//! The decision tree, table-driven, and the invoice plan end to end (pure).

use std::str::FromStr;

use chrono::NaiveDate;
use orderly_contracts::messages::{InvoiceRequested, StoreInvoiceSettingsUpdated, VatTreatment};
use orderly_contracts::types::{CountryCode, TaxCategory, VatId};
use rust_decimal::Decimal;
use serde_json::json;

use super::vat::{self, RegistryAnswer, Rule, Sale, VatIdCheck};
use super::{Context, format_number, plan_invoice};

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal")
}

fn c(s: &str) -> CountryCode {
    CountryCode::parse(s).expect("country")
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::from_str(s).expect("date")
}

struct Case {
    name: &'static str,
    seller: &'static str,
    dest: &'static str,
    business: bool,
    vat_id: Option<&'static str>,
    registry: RegistryAnswer,
    previous_year: &'static str,
    this_year: &'static str,
    this_sale: Option<&'static str>,
    date: &'static str,
    categories: &'static [TaxCategory],
    rule: Rule,
    treatment: VatTreatment,
    rates: &'static [&'static str],
    reason_has: &'static str,
}

fn case(name: &'static str) -> Case {
    Case {
        name,
        seller: "DE",
        dest: "DE",
        business: false,
        vat_id: None,
        registry: RegistryAnswer::NotChecked,
        previous_year: "0",
        this_year: "0",
        this_sale: Some("100.00"),
        date: "2026-03-14",
        categories: &[TaxCategory::Standard],
        rule: Rule::Domestic,
        treatment: VatTreatment::Domestic,
        rates: &["19"],
        reason_has: "",
    }
}

#[test]
fn decision_tree() {
    let seller_vat = VatId::parse("DE123456789").expect("vat id");
    let cases = vec![
        Case {
            reason_has: "goods stay in DE",
            ..case("DE→DE consumer: domestic 19 %")
        },
        Case {
            dest: "FR",
            this_year: "4000.00",
            rule: Rule::DistanceSaleBelowThreshold,
            reason_has: "stay within EUR 10000",
            ..case("DE→FR consumer below the threshold: seller's 19 %")
        },
        Case {
            dest: "FR",
            this_year: "9950.00",
            this_sale: Some("100.00"),
            rule: Rule::DistanceSaleOss,
            treatment: VatTreatment::OssDistanceSale,
            rates: &["20"],
            reason_has: "from EUR 9950.00 to EUR 10050.00",
            ..case("DE→FR consumer, the sale that crosses the threshold: FR 20 %")
        },
        Case {
            dest: "FR",
            this_year: "10050.00",
            rule: Rule::DistanceSaleOss,
            treatment: VatTreatment::OssDistanceSale,
            rates: &["20"],
            reason_has: "are over the EUR 10000 threshold",
            ..case("DE→FR consumer, the sale after: FR 20 %")
        },
        Case {
            dest: "FR",
            this_year: "10000.00",
            this_sale: Some("0.00"),
            rule: Rule::DistanceSaleBelowThreshold,
            reason_has: "stay within",
            ..case("exactly EUR 10,000 is still within the threshold")
        },
        Case {
            dest: "FR",
            previous_year: "10000.01",
            rule: Rule::DistanceSaleOss,
            treatment: VatTreatment::OssDistanceSale,
            rates: &["20"],
            reason_has: "last year",
            ..case("over the threshold last year: destination rate from the first sale")
        },
        Case {
            dest: "FR",
            business: true,
            vat_id: Some("FR40303265045"),
            rule: Rule::IntraEuReverseCharge,
            treatment: VatTreatment::IntraEuReverseCharge,
            rates: &["0"],
            reason_has: "format checked only",
            ..case("DE→FR business with a valid-format VAT id: reverse charge 0 %")
        },
        Case {
            dest: "FR",
            business: true,
            vat_id: Some("FR40303265045"),
            registry: RegistryAnswer::Valid,
            rule: Rule::IntraEuReverseCharge,
            treatment: VatTreatment::IntraEuReverseCharge,
            rates: &["0"],
            reason_has: "verified with the registry",
            ..case("DE→FR business, VAT id verified by the registry")
        },
        Case {
            dest: "AT",
            business: true,
            vat_id: Some("ATU1234"),
            rule: Rule::DistanceSaleBelowThreshold,
            reason_has: "is not valid",
            ..case("DE→AT business with a malformed VAT id: treated as a consumer")
        },
        Case {
            dest: "AT",
            business: true,
            vat_id: Some("DE987654321"),
            rule: Rule::DistanceSaleBelowThreshold,
            reason_has: "belongs to DE, but the goods go to AT",
            ..case("DE→AT business with another country's VAT id: treated as a consumer")
        },
        Case {
            dest: "FR",
            business: true,
            vat_id: Some("FR40303265045"),
            registry: RegistryAnswer::Invalid("not registered".into()),
            rule: Rule::DistanceSaleBelowThreshold,
            reason_has: "refused by the registry",
            ..case("DE→FR business whose VAT id the registry refuses: consumer")
        },
        Case {
            dest: "CH",
            rule: Rule::Export,
            treatment: VatTreatment::ExportZeroRated,
            rates: &["0"],
            reason_has: "outside the EU",
            ..case("DE→CH: export 0 %")
        },
        Case {
            categories: &[TaxCategory::Reduced, TaxCategory::Standard],
            rates: &["7", "19"],
            ..case("a reduced-rate line (books) beside a standard line")
        },
        Case {
            seller: "FI",
            dest: "FI",
            date: "2024-08-31",
            rates: &["24"],
            ..case("FI the day before the change: 24 %")
        },
        Case {
            seller: "FI",
            dest: "FI",
            date: "2024-09-01",
            rates: &["25.5"],
            ..case("FI on the day of the change: 25.5 %")
        },
        Case {
            dest: "SK",
            previous_year: "50000",
            date: "2025-01-01",
            categories: &[TaxCategory::Standard, TaxCategory::Reduced],
            rule: Rule::DistanceSaleOss,
            treatment: VatTreatment::OssDistanceSale,
            rates: &["23", "5"],
            ..case("DE→SK under OSS on 2025-01-01: SK's new 23 % and 5 %")
        },
        Case {
            dest: "FR",
            this_sale: None,
            rule: Rule::DistanceSaleOss,
            treatment: VatTreatment::OssDistanceSale,
            rates: &["20"],
            reason_has: "not in EUR",
            ..case("a non-EUR distance sale is taxed at destination (cannot be counted)")
        },
    ];
    for t in cases {
        let sale = Sale {
            seller_country: c(t.seller),
            seller_vat_id: Some(&seller_vat),
            destination: c(t.dest),
            buyer_is_business: t.business,
            buyer_vat_id: t.vat_id,
            registry: t.registry.clone(),
            supply_date: day(t.date),
            distance_sales_previous_year: dec(t.previous_year),
            distance_sales_this_year: dec(t.this_year),
            this_sale_eur: t.this_sale.map(dec),
        };
        let d = vat::decide(&sale).unwrap_or_else(|e| panic!("{}: {e}", t.name));
        assert_eq!(d.rule, t.rule, "{}: {}", t.name, d.reason);
        assert_eq!(d.rule.treatment(), t.treatment, "{}", t.name);
        assert!(
            d.reason.contains(t.reason_has),
            "{}: reason `{}` lacks `{}`",
            t.name,
            d.reason,
            t.reason_has
        );
        let rates: Vec<Decimal> = t
            .categories
            .iter()
            .map(|cat| vat::rate_for(&d, *cat, day(t.date)).expect("rate"))
            .collect();
        let expected: Vec<Decimal> = t.rates.iter().map(|r| dec(r)).collect();
        assert_eq!(rates, expected, "{}", t.name);
        if t.rule == Rule::IntraEuReverseCharge {
            assert!(
                d.buyer_vat_id.is_some() && d.legal_note.is_some(),
                "{}",
                t.name
            );
            let check = if t.registry == RegistryAnswer::Valid {
                VatIdCheck::Verified
            } else {
                VatIdCheck::FormatChecked
            };
            assert_eq!(d.vat_id_check, Some(check), "{}", t.name);
        }
        if t.rule == Rule::Export {
            assert_eq!(d.legal_note.as_deref(), Some(vat::EXPORT_WORDING));
        }
    }
}

#[test]
fn a_seller_outside_the_eu_or_before_the_table_is_refused() {
    let seller_vat = VatId::parse("CHE123456789").expect("vat id");
    let sale = Sale {
        seller_country: c("CH"),
        seller_vat_id: Some(&seller_vat),
        destination: c("DE"),
        buyer_is_business: false,
        buyer_vat_id: None,
        registry: RegistryAnswer::NotChecked,
        supply_date: day("2026-01-01"),
        distance_sales_previous_year: Decimal::ZERO,
        distance_sales_this_year: Decimal::ZERO,
        this_sale_eur: None,
    };
    let refusal = vat::decide(&sale).expect_err("a Swiss seller is refused");
    assert_eq!(refusal, vat::VatError::SellerOutsideEu(c("CH")));
    assert_eq!(
        refusal.to_string(),
        "the seller's country CH is not an EU member state; Orderly only invoices for sellers \
         established in the EU"
    );

    // A registered German seller, one day before the rate table's first German row
    // (2016-01-01).
    let german_vat = VatId::parse("DE123456789").expect("vat id");
    let before_the_table = Sale {
        seller_country: c("DE"),
        seller_vat_id: Some(&german_vat),
        supply_date: day("2015-12-31"),
        ..sale
    };
    let refusal = vat::decide(&before_the_table).expect_err("no rates before the table");
    assert_eq!(
        refusal.to_string(),
        "no VAT rates of DE are known for 2015-12-31 (the rate table starts in 2016)"
    );
    // The table's first day is decided.
    let first_day = Sale {
        supply_date: day("2016-01-01"),
        ..before_the_table
    };
    assert!(vat::decide(&first_day).is_ok());
}

#[test]
fn an_unregistered_seller_charges_no_vat() {
    let sale = Sale {
        seller_country: c("DE"),
        seller_vat_id: None,
        destination: c("DE"),
        buyer_is_business: false,
        buyer_vat_id: None,
        registry: RegistryAnswer::NotChecked,
        supply_date: day("2026-01-01"),
        distance_sales_previous_year: Decimal::ZERO,
        distance_sales_this_year: Decimal::ZERO,
        this_sale_eur: Some(Decimal::ONE),
    };
    let d = vat::decide(&sale).expect("decision");
    assert_eq!(d.rule, Rule::SellerNotRegistered);
    assert_eq!(
        vat::rate_for(&d, TaxCategory::Standard, day("2026-01-01")).expect("rate"),
        Decimal::ZERO
    );
}

pub(crate) fn settings_json() -> serde_json::Value {
    json!({
        "store_id": "shop-de",
        "revision": 1,
        "legal_name": "Beispiel Handels GmbH",
        "address": {"name": "Beispiel Handels GmbH", "lines": ["Torstraße 101"],
                    "postal_code": "10119", "city": "Berlin", "country": "DE"},
        "vat_id": "DE123456789",
        "invoice_timing": "on_order",
        "invoice_number_prefix": "RE-",
        "credit_note_number_prefix": "GS-",
        "oss_registered": true,
        "locale": "de-DE",
        "payment_terms_days": 14
    })
}

fn request(country: &str, lines: serde_json::Value) -> InvoiceRequested {
    serde_json::from_value(json!({
        "request_id": "0195f3a0-8000-7000-8000-000000000001",
        "order_id": "0195f3a0-7c4e-7b1a-9d2e-3f4a5b6c7d8e",
        "store_id": "shop-de",
        "timing": "on_order",
        "external_order_id": "100234",
        "placed_at": "2026-03-14T09:26:51Z",
        "currency": "EUR",
        "prices_include_tax": true,
        "buyer": {"name": "Jörg Schäfer", "locale": "de-DE", "is_business": false},
        "billing_address": {"name": "Jörg Schäfer", "lines": ["Hauptstraße 12"],
                            "postal_code": "75001", "city": "Paris", "country": country},
        "shipping_address": {"name": "Jörg Schäfer", "lines": ["Hauptstraße 12"],
                             "postal_code": "75001", "city": "Paris", "country": country},
        "lines": lines,
        "shipping": "4.90",
        "discount": "0"
    }))
    .expect("request")
}

#[test]
fn the_plan_prices_books_beside_standard_goods_and_counts_the_threshold() {
    let settings: StoreInvoiceSettingsUpdated =
        serde_json::from_value(settings_json()).expect("settings");
    let req = request(
        "FR",
        json!([
            {"line_id": "1", "sku": "BOOK-1", "title": "Roman", "quantity": 2,
             "unit_price": "21.40", "discount": "0", "tax_category": "reduced"},
            {"line_id": "2", "sku": "MUG-1", "title": "Tasse", "quantity": 1,
             "unit_price": "11.90", "discount": "0", "tax_category": "standard"}
        ]),
    );
    let below = Context {
        supply_date: day("2026-03-14"),
        registry: RegistryAnswer::NotChecked,
        distance_sales_previous_year: Decimal::ZERO,
        distance_sales_this_year: dec("100"),
    };
    let plan = plan_invoice(&req, &settings, &below).expect("plan");
    assert_eq!(plan.decision.rule, Rule::DistanceSaleBelowThreshold);
    let rates: Vec<Decimal> = plan.priced.breakdown.iter().map(|b| b.rate).collect();
    assert_eq!(rates, vec![dec("19"), dec("7")]);
    // 42.80 gross at 7 % → 40.00 net; 11.90 + 4.90 gross at 19 % → 14.12 net.
    assert_eq!(plan.priced.breakdown[1].net, dec("40.00"));
    assert_eq!(plan.priced.gross, dec("59.60"));
    assert_eq!(plan.distance_sales_added, plan.priced.net);
    // 54.12 net at DE rates on top of 9,950 crosses: the same order goes at FR rates.
    let crossing = Context {
        distance_sales_this_year: dec("9950"),
        ..below
    };
    let plan = plan_invoice(&req, &settings, &crossing).expect("plan");
    assert_eq!(plan.decision.rule, Rule::DistanceSaleOss);
    let rates: Vec<Decimal> = plan.priced.breakdown.iter().map(|b| b.rate).collect();
    assert_eq!(rates, vec![dec("20"), dec("5.5")]);
    assert_eq!(
        plan.priced.gross,
        dec("59.60"),
        "gross prices stay what the buyer paid"
    );
}

#[test]
fn numbers_are_prefix_year_and_padded_counter() {
    assert_eq!(format_number("RE-", Some(2026), 6, 42), "RE-2026-000042");
    assert_eq!(format_number("INV-2026-", None, 6, 42), "INV-2026-000042");
    assert_eq!(format_number("R", None, 3, 12345), "R12345");
}
