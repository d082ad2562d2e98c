//! The decision tree, table-driven, and the invoice plan end to end (pure).

use std::str::FromStr;

use chrono::NaiveDate;
use orderly_contracts::messages::{InvoiceRequested, StoreInvoiceSettingsUpdated, VatTreatment};
use orderly_contracts::types::{CountryCode, TaxCategory, TaxClass, VatId};
use rust_decimal::Decimal;
use serde_json::json;

use super::rates::{RateTable, Rates};
use super::vat::{self, RegistryAnswer, Rule, Sale, VatIdCheck, Where};
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

/// One sale and what the Directive says about it. The expectations are written from the
/// Directive (2006/112/EC), the Commission's explanatory notes on the 2021 e-commerce rules
/// and the Commission's rate list, not read off the implementation.
struct Case {
    name: &'static str,
    /// Where the seller is established: country, postcode.
    seat: (&'static str, &'static str),
    /// Where the goods leave from (`None`: the seat).
    dispatch: Option<(&'static str, &'static str)>,
    /// Where they go: country, postcode ("" for none).
    dest: (&'static str, &'static str),
    business: bool,
    vat_id: Option<&'static str>,
    registry: RegistryAnswer,
    small_business: Option<&'static str>,
    /// The states of the store's cross-border small-enterprise scheme (Art. 284(2)).
    sme: &'static [&'static str],
    oss: bool,
    previous_year: &'static str,
    this_year: &'static str,
    this_sale: Option<&'static str>,
    date: &'static str,
    lines: &'static [(TaxCategory, Option<TaxClass>)],
    rule: Rule,
    treatment: VatTreatment,
    /// The rate area whose rates apply (`None`: no VAT).
    area: Option<&'static str>,
    rates: &'static [&'static str],
    /// The legal reference the reason must cite.
    law: &'static str,
    /// Something else the reason must say.
    reason_has: &'static str,
    counts: bool,
}

const STD: &[(TaxCategory, Option<TaxClass>)] = &[(TaxCategory::Standard, None)];
const BOOKS: &[(TaxCategory, Option<TaxClass>)] = &[(TaxCategory::Reduced, Some(TaxClass::Books))];

fn case(name: &'static str) -> Case {
    Case {
        name,
        seat: ("DE", "10119"),
        dispatch: None,
        dest: ("DE", "80331"),
        business: false,
        vat_id: None,
        registry: RegistryAnswer::NotChecked,
        small_business: None,
        sme: &[],
        oss: false,
        previous_year: "0",
        this_year: "0",
        this_sale: Some("100.00"),
        date: "2026-03-14",
        lines: STD,
        rule: Rule::Domestic,
        treatment: VatTreatment::Domestic,
        area: Some("DE"),
        rates: &["19"],
        law: "Art. 32",
        reason_has: "",
        counts: false,
    }
}

/// An export: no VAT, Art. 146.
fn export(name: &'static str, dest: (&'static str, &'static str), territory: &'static str) -> Case {
    Case {
        dest,
        rule: Rule::Export,
        treatment: VatTreatment::ExportZeroRated,
        area: None,
        rates: &["0"],
        law: "Art. 146",
        reason_has: territory,
        ..case(name)
    }
}

/// A distance sale taxed where it arrives.
fn at_destination(
    name: &'static str,
    dest: (&'static str, &'static str),
    area: &'static str,
    rates: &'static [&'static str],
) -> Case {
    Case {
        dest,
        oss: true,
        rule: Rule::DistanceSaleOss,
        treatment: VatTreatment::OssDistanceSale,
        area: Some(area),
        rates,
        law: "Art. 33",
        counts: true,
        ..case(name)
    }
}

/// An intra-Community supply: exempt, Art. 138.
fn intra_community(
    name: &'static str,
    dest: (&'static str, &'static str),
    vat_id: &'static str,
) -> Case {
    Case {
        dest,
        business: true,
        vat_id: Some(vat_id),
        rule: Rule::IntraEuReverseCharge,
        treatment: VatTreatment::IntraEuReverseCharge,
        area: None,
        rates: &["0"],
        law: "Art. 138",
        ..case(name)
    }
}

fn decision_cases() -> Vec<Case> {
    const FR: (&str, &str) = ("FR", "75001");
    const NL_WAREHOUSE: Option<(&str, &str)> = Some(("NL", "5928 LZ"));
    vec![
        // --- domestic (Art. 32: where dispatch begins) -------------------------------------
        Case {
            reason_has: "within DE",
            ..case("DE→DE consumer: 19 %")
        },
        Case {
            lines: BOOKS,
            rates: &["7"],
            ..case("DE→DE books: 7 %")
        },
        Case {
            lines: &[(TaxCategory::Reduced, None), (TaxCategory::Standard, None)],
            rates: &["7", "19"],
            ..case("DE→DE a reduced line beside a standard one")
        },
        Case {
            lines: &[(TaxCategory::Zero, None), (TaxCategory::Exempt, None)],
            rates: &["0", "0"],
            ..case("DE→DE zero-rated and exempt lines: 0 % each")
        },
        Case {
            seat: ("IE", "D02 X285"),
            dest: ("IE", "D04 C932"),
            lines: &[
                (TaxCategory::Standard, None),
                (TaxCategory::Reduced, Some(TaxClass::Books)),
                (TaxCategory::Reduced, Some(TaxClass::Food)),
            ],
            area: Some("IE"),
            rates: &["23", "0", "0"],
            ..case("IE→IE books and food are zero-rated in Ireland")
        },
        Case {
            seat: ("FI", "00100"),
            dest: ("FI", "00100"),
            date: "2024-08-31",
            area: Some("FI"),
            rates: &["24"],
            ..case("FI the day before the 2024 change: 24 %")
        },
        Case {
            seat: ("FI", "00100"),
            dest: ("FI", "00100"),
            date: "2024-09-01",
            area: Some("FI"),
            rates: &["25.5"],
            ..case("FI on the day of the change: 25.5 %")
        },
        Case {
            seat: ("ES", "28001"),
            dest: ("ES", "08001"),
            area: Some("ES"),
            rates: &["21"],
            ..case("ES mainland → mainland: 21 %")
        },
        Case {
            seat: ("PT", "1100-148"),
            dest: ("PT", "9500-321"),
            area: Some("PT"),
            rates: &["23"],
            ..case("PT mainland → Azores: a domestic supply taxed where dispatch begins, 23 %")
        },
        // --- distance sales and the EUR 10,000 threshold (Art. 33, 59c) --------------------
        Case {
            dest: FR,
            this_year: "4000.00",
            rule: Rule::DistanceSaleBelowThreshold,
            law: "Art. 59c",
            reason_has: "stay within the EUR 10000 threshold",
            counts: true,
            ..case("DE→FR consumer below the threshold: DE 19 %")
        },
        Case {
            this_year: "9950.00",
            oss: false,
            reason_has: "from EUR 9950.00 to EUR 10050.00",
            ..at_destination(
                "DE→FR consumer, the sale that crosses the threshold: FR 20 %",
                FR,
                "FR",
                &["20"],
            )
        },
        Case {
            this_year: "10050.00",
            oss: false,
            reason_has: "must register for VAT in FR or join the OSS",
            ..at_destination(
                "DE→FR the sale after, store not in the OSS: FR 20 %",
                FR,
                "FR",
                &["20"],
            )
        },
        Case {
            dest: FR,
            this_year: "10000.00",
            this_sale: Some("0.00"),
            rule: Rule::DistanceSaleBelowThreshold,
            law: "Art. 59c",
            counts: true,
            ..case("exactly EUR 10,000 is still within the threshold")
        },
        Case {
            previous_year: "10000.01",
            oss: false,
            reason_has: "last year",
            ..at_destination(
                "over the threshold last year: destination from the first sale",
                FR,
                "FR",
                &["20"],
            )
        },
        Case {
            law: "Art. 59c(3)",
            reason_has: "declared through the OSS",
            ..at_destination(
                "OSS-registered store below the threshold: destination from the first euro",
                FR,
                "FR",
                &["20"],
            )
        },
        Case {
            this_sale: None,
            oss: false,
            reason_has: "not in EUR",
            ..at_destination(
                "a non-EUR distance sale is taxed at destination (cannot be counted)",
                FR,
                "FR",
                &["20"],
            )
        },
        Case {
            previous_year: "50000",
            date: "2025-01-01",
            lines: &[(TaxCategory::Standard, None), (TaxCategory::Reduced, None)],
            ..at_destination(
                "DE→SK on 2025-01-01: SK's new 23 % and 5 %",
                ("SK", "81101"),
                "SK",
                &["23", "5"],
            )
        },
        Case {
            lines: BOOKS,
            ..at_destination(
                "DE→IE books under the OSS: Irish 0 %",
                ("IE", "D04 C932"),
                "IE",
                &["0"],
            )
        },
        Case {
            lines: BOOKS,
            ..at_destination(
                "DE→DK books under the OSS: Danish 25 %",
                ("DK", "1050"),
                "DK",
                &["25"],
            )
        },
        Case {
            lines: BOOKS,
            ..at_destination(
                "DE→FR books under the OSS: French 5.5 %",
                FR,
                "FR",
                &["5.5"],
            )
        },
        at_destination(
            "DE→ES mainland consumer under the OSS: 21 %",
            ("ES", "28001"),
            "ES",
            &["21"],
        ),
        Case {
            reason_has: "mainland assumed",
            ..at_destination(
                "DE→ES without a postcode: mainland assumed and said",
                ("ES", ""),
                "ES",
                &["21"],
            )
        },
        // --- intra-Community supplies (Art. 138) --------------------------------------------
        Case {
            reason_has: "format checked only",
            ..intra_community("DE→FR business, valid-format VAT id", FR, "FR40303265045")
        },
        Case {
            registry: RegistryAnswer::Valid,
            reason_has: "verified with the registry",
            ..intra_community(
                "DE→FR business, VAT id verified by the registry",
                FR,
                "FR40303265045",
            )
        },
        intra_community(
            "DE→AT business with a French VAT id: another Member State than dispatch suffices",
            ("AT", "1010"),
            "FR40303265045",
        ),
        Case {
            dest: ("AT", "1010"),
            business: true,
            vat_id: Some("ATU1234"),
            rule: Rule::DistanceSaleBelowThreshold,
            law: "Art. 59c",
            reason_has: "not usable",
            counts: true,
            ..case("DE→AT business with a malformed VAT id: treated as a consumer")
        },
        Case {
            dest: ("AT", "1010"),
            business: true,
            vat_id: Some("DE987654321"),
            reason_has: "identified in DE",
            ..case("DE→AT business identified in DE (the dispatch state): taxed in DE, not counted")
        },
        Case {
            dest: FR,
            business: true,
            vat_id: Some("FR40303265045"),
            registry: RegistryAnswer::Invalid("not registered".into()),
            rule: Rule::DistanceSaleBelowThreshold,
            law: "Art. 59c",
            reason_has: "refused by the registry",
            counts: true,
            ..case("DE→FR business whose VAT id the registry refuses: a consumer")
        },
        Case {
            reason_has: "Northern Ireland",
            ..intra_community(
                "DE→Northern Ireland business with an XI VAT id",
                ("GB", "BT1 1AA"),
                "XI123456789",
            )
        },
        Case {
            reason_has: "Monaco",
            ..intra_community(
                "DE→Monaco business with a French VAT id",
                ("MC", "98000"),
                "FR40303265045",
            )
        },
        // --- outside the EU VAT area (Art. 6, 146) -------------------------------------------
        export("DE→CH: export", ("CH", "8001"), "CH"),
        export("DE→GB (Great Britain): export", ("GB", "SW1A 1AA"), "GB"),
        export(
            "DE→Canary Islands (Las Palmas)",
            ("ES", "35001"),
            "Canary Islands",
        ),
        export(
            "DE→Canary Islands (Tenerife)",
            ("ES", "38670"),
            "Canary Islands",
        ),
        export("DE→Ceuta", ("ES", "51001"), "Ceuta"),
        export("DE→Melilla", ("ES", "52006"), "Melilla"),
        export("DE→Åland", ("FI", "22100"), "Åland"),
        export("DE→Mount Athos", ("GR", "63086"), "Mount Athos"),
        Case {
            seat: ("FR", "75001"),
            ..export("FR→Büsingen", ("DE", "78266"), "Büsingen")
        },
        Case {
            seat: ("FR", "75001"),
            ..export("FR→Heligoland", ("DE", "27498"), "Heligoland")
        },
        export("DE→Livigno", ("IT", "23041"), "Livigno"),
        export("DE→Campione d'Italia", ("IT", "22061"), "Campione"),
        export("DE→Réunion", ("FR", "97400"), "Réunion"),
        export("DE→Guadeloupe", ("FR", "97110"), "Guadeloupe"),
        Case {
            business: true,
            vat_id: Some("ESB12345678"),
            ..export(
                "DE→Canary Islands business: still an export",
                ("ES", "35001"),
                "Canary Islands",
            )
        },
        // --- territories inside with rates of their own, and states treated as one -----------
        Case {
            reason_has: "Monaco",
            ..at_destination(
                "DE→Monaco consumer: France's rates",
                ("MC", "98000"),
                "FR",
                &["20"],
            )
        },
        Case {
            reason_has: "Northern Ireland",
            ..at_destination(
                "DE→Northern Ireland consumer: EU rules, UK rates",
                ("GB", "BT7 1NN"),
                "XI",
                &["20"],
            )
        },
        at_destination(
            "DE→Jungholz consumer: Germany's standard rate",
            ("AT", "6691"),
            "AT-JM",
            &["19"],
        ),
        Case {
            lines: BOOKS,
            ..at_destination(
                "DE→Mittelberg books: Austria's books rate",
                ("AT", "6991"),
                "AT-JM",
                &["10"],
            )
        },
        at_destination(
            "DE→Azores consumer: 16 %",
            ("PT", "9500-321"),
            "PT-20",
            &["16"],
        ),
        at_destination(
            "DE→Madeira consumer: 22 %",
            ("PT", "9000-018"),
            "PT-30",
            &["22"],
        ),
        at_destination(
            "DE→Lisbon consumer: 23 %",
            ("PT", "1100-148"),
            "PT",
            &["23"],
        ),
        // --- goods leaving from a warehouse in another state ---------------------------------
        Case {
            dispatch: NL_WAREHOUSE,
            dest: ("NL", "1012 AB"),
            area: Some("NL"),
            rates: &["21"],
            reason_has: "registered for VAT in NL",
            ..case("DE store, NL warehouse → NL consumer: a Dutch supply, 21 %")
        },
        Case {
            dispatch: NL_WAREHOUSE,
            oss: false,
            law: "Art. 59c(1)",
            reason_has: "threshold does not apply",
            counts: false,
            ..at_destination(
                "DE store, NL warehouse → FR consumer under EUR 10,000: FR 20 % all the same",
                FR,
                "FR",
                &["20"],
            )
        },
        Case {
            dispatch: NL_WAREHOUSE,
            rule: Rule::Domestic,
            treatment: VatTreatment::Domestic,
            reason_has: "own DE return",
            counts: false,
            ..at_destination(
                "DE store, NL warehouse → DE consumer: DE 19 % in the seller's own return",
                ("DE", "80331"),
                "DE",
                &["19"],
            )
        },
        Case {
            dispatch: NL_WAREHOUSE,
            ..intra_community(
                "DE store, NL warehouse → DE business with a DE VAT id: intra-Community",
                ("DE", "80331"),
                "DE987654321",
            )
        },
        Case {
            dispatch: NL_WAREHOUSE,
            dest: FR,
            business: true,
            vat_id: Some("NL123456789B01"),
            area: Some("NL"),
            rates: &["21"],
            reason_has: "identified in NL",
            ..case("DE store, NL warehouse → FR business identified in NL: taxed in NL")
        },
        // --- small businesses (Art. 282 ff.) -------------------------------------------------
        small("a declared small business charges no VAT at home"),
        Case {
            dest: FR,
            reason_has: "within the EUR 10000 threshold",
            counts: true,
            ..small("a small business's distance sale within the threshold: exempt at home")
        },
        Case {
            dest: ("AT", "1010"),
            business: true,
            vat_id: Some("ATU12345678"),
            law: "Art. 139(1)",
            reason_has: "§ 19 UStG",
            ..small(
                "a small business's sale to an Austrian business: no intra-Community supply, exempt at home",
            )
        },
        Case {
            dest: ("CH", "8001"),
            reason_has: "an export from the seller's own state",
            ..small("a small business's export: exempt at home")
        },
        Case {
            dest: FR,
            previous_year: "12000",
            sme: &["AT", "FR"],
            law: "Art. 284(2)",
            reason_has: "DE123456789EX",
            counts: true,
            ..small(
                "a small business over the threshold with the cross-border scheme for FR: exempt in FR",
            )
        },
        Case {
            dispatch: NL_WAREHOUSE,
            dest: ("NL", "1012 AB"),
            sme: &["NL"],
            law: "Art. 284(2)",
            reason_has: "takes place in NL",
            ..small(
                "a small business shipping from a Dutch warehouse to a Dutch consumer, scheme for NL",
            )
        },
        Case {
            dispatch: NL_WAREHOUSE,
            dest: ("CH", "8001"),
            small_business: Some("§ 19 UStG"),
            ..export(
                "a small business's export from a Dutch warehouse: exempt as an export",
                ("CH", "8001"),
                "small-business status",
            )
        },
        // --- the Greek islands' lower rates (Art. 26(4) of the Greek VAT Code) ---------------
        Case {
            law: "Art. 26(4)",
            reason_has: "established on Lesvos",
            ..greek(
                "a Lesvos seller sends goods from Lesvos to Athens: the islands' 17 %",
                ("GR", "811 00"),
                None,
                "GR-ISL",
                &["17"],
            )
        },
        Case {
            lines: BOOKS,
            law: "Art. 26(4)",
            ..greek(
                "a Lesvos seller's books: the islands' 4 %",
                ("GR", "81100"),
                None,
                "GR-ISL",
                &["4"],
            )
        },
        Case {
            dest: ("GR", "81100"),
            reason_has: "only for sellers established",
            ..greek(
                "an Athens seller's warehouse on Lesvos, to a Lesvos consumer: the mainland's 24 %",
                ("GR", "10431"),
                Some(("GR", "81100")),
                "GR",
                &["24"],
            )
        },
        Case {
            date: "2025-06-01",
            ..greek(
                "a Patmos seller in 2025, before the extension: 24 %",
                ("GR", "85500"),
                None,
                "GR",
                &["24"],
            )
        },
        Case {
            date: "2026-02-01",
            law: "Art. 26(4)",
            reason_has: "Patmos",
            ..greek(
                "a Patmos seller in 2026, after the extension: 17 %",
                ("GR", "85500"),
                None,
                "GR-ISL",
                &["17"],
            )
        },
        Case {
            reason_has: "",
            ..greek(
                "a Rhodes seller: Rhodes is not in the scheme, 24 %",
                ("GR", "85100"),
                None,
                "GR",
                &["24"],
            )
        },
        at_destination(
            "DE→Lesvos consumer, taxed where it arrives: the mainland's 24 % (the seller is not on an island)",
            ("GR", "81100"),
            "GR",
            &["24"],
        ),
    ]
}

/// A declared small business (§ 19 UStG) charging no VAT at home; cases override the rest.
fn small(name: &'static str) -> Case {
    Case {
        small_business: Some("§ 19 UStG"),
        rule: Rule::SmallBusiness,
        area: None,
        rates: &["0"],
        law: "§ 19 UStG",
        ..case(name)
    }
}

/// A Greek seller at `seat` (goods from `dispatch`, or the seat) to a consumer in Athens.
fn greek(
    name: &'static str,
    seat: (&'static str, &'static str),
    dispatch: Option<(&'static str, &'static str)>,
    area: &'static str,
    rates: &'static [&'static str],
) -> Case {
    Case {
        seat,
        dispatch,
        dest: ("GR", "10431"),
        area: Some(area),
        rates,
        ..case(name)
    }
}

#[test]
fn decision_tree() {
    let seller_vat = VatId::parse("DE123456789").expect("vat id");
    let rates = Rates::of(RateTable::shipped());
    let cases = decision_cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut failures = Vec::new();
    for t in &cases {
        let sme_states: Vec<CountryCode> = t.sme.iter().map(|s| c(s)).collect();
        let sale = Sale {
            establishment: Where {
                country: c(t.seat.0),
                postcode: Some(t.seat.1),
            },
            dispatch: t.dispatch.map_or(
                Where {
                    country: c(t.seat.0),
                    postcode: Some(t.seat.1),
                },
                |(cc, pc)| Where {
                    country: c(cc),
                    postcode: Some(pc),
                },
            ),
            destination: Where {
                country: c(t.dest.0),
                postcode: Some(t.dest.1).filter(|p| !p.is_empty()),
            },
            seller_vat_id: Some(&seller_vat),
            small_business: t.small_business,
            sme_cross_border: (!t.sme.is_empty()).then_some(vat::CrossBorderSme {
                ex_number: "DE123456789EX",
                states: &sme_states,
            }),
            oss_registered: t.oss,
            buyer_is_business: t.business,
            buyer_vat_id: t.vat_id,
            registry: t.registry.clone(),
            supply_date: day(t.date),
            distance_sales_previous_year: dec(t.previous_year),
            distance_sales_this_year: dec(t.this_year),
            this_sale_eur: t.this_sale.map(dec),
        };
        let d = match vat::decide(&sale, rates) {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{}: refused: {e}", t.name));
                continue;
            }
        };
        let got: Vec<Decimal> = t
            .lines
            .iter()
            .map(|(cat, class)| vat::rate_for(&d, rates, *cat, *class, day(t.date)).expect("rate"))
            .collect();
        let expected: Vec<Decimal> = t.rates.iter().map(|r| dec(r)).collect();
        let mut wrong = Vec::new();
        if d.rule != t.rule {
            wrong.push(format!("rule {:?}, expected {:?}", d.rule, t.rule));
        }
        if d.rule.treatment() != t.treatment {
            wrong.push(format!("treatment {:?}", d.rule.treatment()));
        }
        if d.rate_area.as_deref() != t.area {
            wrong.push(format!("area {:?}, expected {:?}", d.rate_area, t.area));
        }
        if got != expected {
            wrong.push(format!("rates {got:?}, expected {expected:?}"));
        }
        if d.counts_toward_threshold != t.counts {
            wrong.push(format!(
                "counts toward the threshold: {}",
                d.counts_toward_threshold
            ));
        }
        let cited = format!("{} {}", d.reason, d.small_business.as_deref().unwrap_or(""));
        for needle in [t.law, t.reason_has] {
            if !cited.contains(needle) {
                wrong.push(format!("reason lacks `{needle}`"));
            }
        }
        match t.rule {
            Rule::IntraEuReverseCharge => {
                let check = if t.registry == RegistryAnswer::Valid {
                    VatIdCheck::Verified
                } else {
                    VatIdCheck::FormatChecked
                };
                if d.buyer_vat_id.is_none() || d.vat_id_check != Some(check) {
                    wrong.push("the buyer's VAT id or its check is missing".to_owned());
                }
                if d.legal_note.as_deref() != Some(vat::REVERSE_CHARGE_WORDING) {
                    wrong.push("intra-Community wording missing".to_owned());
                }
            }
            Rule::Export if d.legal_note.as_deref() != Some(vat::EXPORT_WORDING) => {
                wrong.push("export wording missing".to_owned());
            }
            _ => {}
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{}: {} (reason: {})",
                t.name,
                wrong.join("; "),
                d.reason
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn german_sale<'a>(vat: Option<&'a VatId>) -> Sale<'a> {
    let berlin = Where {
        country: c("DE"),
        postcode: Some("10119"),
    };
    Sale {
        establishment: berlin,
        dispatch: berlin,
        destination: berlin,
        seller_vat_id: vat,
        small_business: None,
        sme_cross_border: None,
        oss_registered: false,
        buyer_is_business: false,
        buyer_vat_id: None,
        registry: RegistryAnswer::NotChecked,
        supply_date: day("2026-01-01"),
        distance_sales_previous_year: Decimal::ZERO,
        distance_sales_this_year: Decimal::ZERO,
        this_sale_eur: Some(Decimal::ONE),
    }
}

#[test]
fn sales_the_rules_cannot_decide_are_refused_with_the_reason() {
    let rates = Rates::of(RateTable::shipped());
    let vat = VatId::parse("DE123456789").expect("vat id");
    let zurich = Where {
        country: c("CH"),
        postcode: Some("8001"),
    };
    let swiss = Sale {
        establishment: zurich,
        dispatch: zurich,
        ..german_sale(Some(&vat))
    };
    let refusal = vat::decide(&swiss, rates).expect_err("a Swiss seller is refused");
    assert_eq!(refusal, vat::VatError::SellerOutsideEu("CH".to_owned()));
    let canary_seller = Where {
        country: c("ES"),
        postcode: Some("35001"),
    };
    let refusal = vat::decide(
        &Sale {
            establishment: canary_seller,
            dispatch: canary_seller,
            ..german_sale(Some(&vat))
        },
        rates,
    )
    .expect_err("a seller in the Canary Islands is outside the EU VAT area");
    assert!(refusal.to_string().contains("Canary Islands"), "{refusal}");
    let import = Sale {
        dispatch: zurich,
        ..german_sale(Some(&vat))
    };
    let refusal = vat::decide(&import, rates).expect_err("goods from Zurich are an import");
    assert!(refusal.to_string().contains("an import"), "{refusal}");
    // Neither a VAT id nor a small-business declaration: never guessed.
    let refusal = vat::decide(&german_sale(None), rates).expect_err("no VAT status");
    assert_eq!(refusal, vat::VatError::NoVatStatus);
    assert!(refusal.to_string().contains("small_business"));
    // A small business's sale that takes place where it has no exemption of its own.
    let paris = Where {
        country: c("FR"),
        postcode: Some("75011"),
    };
    let amsterdam = Where {
        country: c("NL"),
        postcode: Some("1012 AB"),
    };
    let austria_only = [c("AT")];
    let small = Sale {
        small_business: Some("§ 19 UStG"),
        sme_cross_border: Some(vat::CrossBorderSme {
            ex_number: "DE123456789EX",
            states: &austria_only,
        }),
        ..german_sale(None)
    };
    for (sale, place, why) in [
        (
            Sale {
                destination: paris,
                distance_sales_previous_year: dec("12000"),
                ..small.clone()
            },
            "FR",
            "over the EUR 10000 threshold",
        ),
        (
            Sale {
                destination: paris,
                distance_sales_this_year: dec("9999.50"),
                this_sale_eur: Some(dec("1.00")),
                ..small.clone()
            },
            "FR",
            "this sale takes the store's EU distance sales this year from EUR 9999.50 to EUR 10000.50",
        ),
        (
            Sale {
                dispatch: amsterdam,
                destination: amsterdam,
                ..small.clone()
            },
            "NL",
            "goods delivered within NL",
        ),
    ] {
        let refusal = vat::decide(&sale, rates).expect_err(why);
        match &refusal {
            vat::VatError::SmallBusinessNotExemptThere {
                seat,
                place: at,
                why: said,
            } => {
                assert_eq!((seat.as_str(), at.as_str()), ("DE", place), "{refusal}");
                assert!(said.contains(why), "{refusal}");
            }
            other => panic!("{other}"),
        }
        assert!(
            refusal.to_string().contains("sme_cross_border"),
            "{refusal}"
        );
    }
    // Before the rate data starts.
    let early = Sale {
        supply_date: day("2015-12-31"),
        ..german_sale(Some(&vat))
    };
    let refusal = vat::decide(&early, rates).expect_err("no rates before the data");
    assert_eq!(
        refusal.to_string(),
        "no VAT rates of DE are known for 2015-12-31 (the rate data starts in 2016)"
    );
    let first_day = Sale {
        supply_date: day("2016-01-01"),
        ..german_sale(Some(&vat))
    };
    assert!(vat::decide(&first_day, rates).is_ok());
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
    // Not in the OSS: the threshold decides (an OSS-registered store taxes at destination
    // from the first euro).
    let mut settings = settings;
    settings.oss_registered = false;
    let below = Context {
        supply_date: day("2026-03-14"),
        registry: RegistryAnswer::NotChecked,
        distance_sales_previous_year: Decimal::ZERO,
        distance_sales_this_year: dec("100"),
        dispatch_from: None,
        unknown_warehouse: None,
        rates: Rates::of(RateTable::shipped()),
        fx: None,
    };
    let plan = plan_invoice(&req, &settings, &below).expect("plan");
    assert_eq!(plan.decision.rule, Rule::DistanceSaleBelowThreshold);
    let rates: Vec<Decimal> = plan.priced.breakdown.iter().map(|b| b.rate).collect();
    assert_eq!(rates, vec![dec("19"), dec("7")]);
    // Shipping follows the goods: 4.90 split 42.80 : 11.90 → 3.83 at 7 %, 1.07 at 19 %.
    // 42.80 + 3.83 gross at 7 % → 43.58 net; 11.90 + 1.07 gross at 19 % → 10.90 net.
    let shipping: Vec<(&str, Decimal, Decimal)> = plan
        .priced
        .lines
        .iter()
        .filter(|l| l.sku.is_empty())
        .map(|l| (l.line_id.as_str(), l.rate, l.net + l.tax))
        .collect();
    assert_eq!(
        shipping,
        vec![
            ("shipping", dec("7"), dec("3.83")),
            ("shipping/2", dec("19"), dec("1.07"))
        ]
    );
    assert_eq!(plan.priced.breakdown[1].net, dec("43.58"));
    assert_eq!(plan.priced.breakdown[0].net, dec("10.90"));
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

/// Art. 230: an invoice in dollars states its VAT in euros at the ECB rate of the supply day
/// (or the latest before), one in euros states nothing more, an OSS sale is stated in the
/// seller's own currency, a Polish supply in zloty; without a loaded rate it is refused.
#[test]
fn vat_is_also_stated_in_the_national_currency() {
    use super::fx::{FxTable, parse_ecb_csv};
    let fx =
        FxTable::new(parse_ecb_csv("Date,USD,PLN\n2026-03-13,1.0845,4.2750\n").expect("rates"));
    let settings: StoreInvoiceSettingsUpdated =
        serde_json::from_value(settings_json()).expect("settings");
    let lines = json!([{"line_id": "1", "sku": "MUG-1", "title": "Tasse", "quantity": 1,
                        "unit_price": "119.00", "discount": "0", "tax_category": "standard"}]);
    let mut dollars = request("DE", lines.clone());
    dollars.currency = orderly_contracts::types::CurrencyCode::parse("USD").expect("USD");
    dollars.shipping = orderly_contracts::types::Amount::ZERO;
    let cx = Context {
        supply_date: day("2026-03-14"),
        registry: RegistryAnswer::NotChecked,
        distance_sales_previous_year: Decimal::ZERO,
        distance_sales_this_year: Decimal::ZERO,
        dispatch_from: None,
        unknown_warehouse: None,
        rates: Rates::of(RateTable::shipped()),
        fx: Some(&fx),
    };
    let plan = plan_invoice(&dollars, &settings, &cx).expect("plan");
    assert_eq!(plan.priced.tax, dec("19.00"));
    let c = plan.vat_national.expect("stated in euros");
    // 19.00 USD / 1.0845 = 17.52 EUR, Friday's rate for a Saturday supply.
    assert_eq!(
        (c.currency.as_str(), c.vat, c.rate),
        ("EUR", dec("17.52"), dec("1.0845"))
    );
    assert_eq!(c.rate_day, day("2026-03-13"));

    let mut euros = request("DE", lines.clone());
    euros.shipping = orderly_contracts::types::Amount::ZERO;
    assert_eq!(
        plan_invoice(&euros, &settings, &cx)
            .expect("plan")
            .vat_national,
        None
    );
    // An OSS sale to Poland is invoiced under the seller's (German) rules: nothing more.
    let to_poland = request("PL", lines.clone());
    let plan = plan_invoice(&to_poland, &settings, &cx).expect("plan");
    assert_eq!(plan.decision.rule, Rule::DistanceSaleOss);
    assert_eq!(plan.vat_national, None);
    // Goods from a Polish warehouse to a Polish buyer: a Polish supply, VAT also in zloty.
    let warsaw: orderly_contracts::messages::Address = serde_json::from_value(json!({
        "name": "Magazyn", "lines": ["ul. Prosta 1"], "postal_code": "00-838",
        "city": "Warszawa", "country": "PL"}))
    .expect("address");
    let in_poland = Context {
        dispatch_from: Some(&warsaw),
        ..cx.clone()
    };
    let plan = plan_invoice(&to_poland, &settings, &in_poland).expect("plan");
    let c = plan.vat_national.expect("stated in zloty");
    assert_eq!(c.currency, "PLN");
    // No rate loaded: refused, saying how to load them.
    let none = Context { fx: None, ..cx };
    let refusal = plan_invoice(&dollars, &settings, &none).expect_err("no rate");
    assert!(refusal.to_string().contains("orderly vat fx"), "{refusal}");
}
