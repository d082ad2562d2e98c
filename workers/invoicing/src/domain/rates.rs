//! The EU-27 VAT rate table, with the dates rates took effect.
//!
//! A rate change is data: add a row with the date it takes effect, and every invoice whose
//! supply date falls on or after that date uses it (invoices before keep the old rate,
//! and credit notes copy the rates of the invoice they credit, never today's).
//!
//! Each row gives the rates of one country from `from` until the next row of that country:
//! the standard rate, the *reduced* rate our `reduced` tax category maps to (the rate a
//! shop's typical reduced-rate goods, food and books, take), and the *super-reduced* rate
//! where a country has one (else `super_reduced` falls back to the reduced rate). Rates are
//! in hundredths of a percent (`2550` = 25.5 %) so the table holds no floats.
//!
//! Sources: the European Commission's "VAT rates applied in the Member States" (TEDB and the
//! yearly `vat_rates_en.pdf`, edition of 1 January 2025) and the national announcements of
//! the dated changes listed below. See `docs/invoicing.md` for the simplifications (one
//! reduced rate per category and country).

use chrono::{Datelike, NaiveDate};
use orderly_contracts::types::{CountryCode, TaxCategory};
use rust_decimal::Decimal;

/// One country's rates from a date on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatePeriod {
    /// ISO country code (`GR` for Greece).
    pub country: &'static str,
    /// First day the rates apply, as `yyyymmdd`.
    pub from: u32,
    /// Standard rate, hundredths of a percent.
    pub standard: u32,
    /// Reduced rate for food and books, if the country has one.
    pub reduced: Option<u32>,
    /// Super-reduced rate, if the country has one.
    pub super_reduced: Option<u32>,
}

const fn p(
    country: &'static str,
    from: u32,
    standard: u32,
    reduced: Option<u32>,
    super_reduced: Option<u32>,
) -> RatePeriod {
    RatePeriod {
        country,
        from,
        standard,
        reduced,
        super_reduced,
    }
}

/// Every row, grouped by country, oldest first within a country. The oldest row of each
/// country is the earliest date Orderly can invoice a supply to or from it.
pub const RATE_TABLE: &[RatePeriod] = &[
    p("AT", 20160101, 2000, Some(1000), None),
    p("BE", 20160101, 2100, Some(600), None),
    p("BG", 20160101, 2000, Some(900), None),
    p("CY", 20160101, 1900, Some(500), None),
    // Czechia merged its two reduced rates (15 % and 10 %) into 12 % on 1 January 2024.
    p("CZ", 20160101, 2100, Some(1500), Some(1000)),
    p("CZ", 20240101, 2100, Some(1200), None),
    // Germany's temporary COVID-19 cut, 1 July to 31 December 2020.
    p("DE", 20160101, 1900, Some(700), None),
    p("DE", 20200701, 1600, Some(500), None),
    p("DE", 20210101, 1900, Some(700), None),
    p("DK", 20160101, 2500, None, None),
    // Estonia: 20 -> 22 % on 1 January 2024, books 9 -> 13 % on 1 January 2025,
    // 22 -> 24 % on 1 July 2025.
    p("EE", 20160101, 2000, Some(900), None),
    p("EE", 20240101, 2200, Some(900), None),
    p("EE", 20250101, 2200, Some(1300), None),
    p("EE", 20250701, 2400, Some(1300), None),
    p("ES", 20160101, 2100, Some(1000), Some(400)),
    // Finland: 24 -> 25.5 % on 1 September 2024.
    p("FI", 20160101, 2400, Some(1400), None),
    p("FI", 20240901, 2550, Some(1400), None),
    p("FR", 20160101, 2000, Some(550), Some(210)),
    p("GR", 20160101, 2400, Some(1300), Some(600)),
    p("HR", 20160101, 2500, Some(1300), Some(500)),
    p("HU", 20160101, 2700, Some(1800), Some(500)),
    p("IE", 20160101, 2300, Some(1350), Some(480)),
    p("IT", 20160101, 2200, Some(1000), Some(400)),
    p("LT", 20160101, 2100, Some(900), Some(500)),
    p("LU", 20160101, 1700, Some(800), Some(300)),
    p("LV", 20160101, 2100, Some(1200), Some(500)),
    p("MT", 20160101, 1800, Some(700), Some(500)),
    p("NL", 20160101, 2100, Some(600), None),
    // The Netherlands: reduced 6 -> 9 % on 1 January 2019.
    p("NL", 20190101, 2100, Some(900), None),
    p("PL", 20160101, 2300, Some(800), Some(500)),
    p("PT", 20160101, 2300, Some(1300), Some(600)),
    // Romania: 19 -> 21 % and reduced 9 -> 11 % on 1 August 2025.
    p("RO", 20160101, 1900, Some(900), Some(500)),
    p("RO", 20250801, 2100, Some(1100), None),
    p("SE", 20160101, 2500, Some(1200), Some(600)),
    p("SI", 20160101, 2200, Some(950), Some(500)),
    // Slovakia: 20 -> 23 % on 1 January 2025; food and books 10 -> 5 %.
    p("SK", 20160101, 2000, Some(1000), None),
    p("SK", 20250101, 2300, Some(500), None),
];

/// The rates of one country on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    /// The row in force.
    pub period: RatePeriod,
}

fn percent(hundredths: u32) -> Decimal {
    Decimal::new(i64::from(hundredths), 2).normalize()
}

fn day_number(date: NaiveDate) -> u32 {
    // Years are four digits for any date an invoice can carry; larger ones sort last.
    let year = u32::try_from(date.year()).unwrap_or(0);
    year * 10_000 + date.month() * 100 + date.day()
}

impl Rates {
    /// The rates of `country` on `date`, or `None` when the country is not in the table (not
    /// an EU member state) or the date is before the table starts.
    pub fn on(country: CountryCode, date: NaiveDate) -> Option<Self> {
        let day = day_number(date);
        RATE_TABLE
            .iter()
            .filter(|r| r.country == country.as_str() && r.from <= day)
            .max_by_key(|r| r.from)
            .map(|period| Self { period: *period })
    }

    /// The rate (percent) for a product category.
    pub fn for_category(&self, category: TaxCategory) -> Decimal {
        let r = &self.period;
        match category {
            TaxCategory::Standard => percent(r.standard),
            TaxCategory::Reduced => percent(r.reduced.unwrap_or(r.standard)),
            TaxCategory::SuperReduced => {
                percent(r.super_reduced.or(r.reduced).unwrap_or(r.standard))
            }
            TaxCategory::Zero | TaxCategory::Exempt => Decimal::ZERO,
        }
    }

    /// The standard rate (percent).
    pub fn standard(&self) -> Decimal {
        percent(self.period.standard)
    }

    /// The first day of the row in force, for the reason text.
    pub fn since(&self) -> String {
        let f = self.period.from;
        format!("{:04}-{:02}-{:02}", f / 10_000, f / 100 % 100, f % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderly_contracts::types::EU_MEMBER_STATES;

    fn c(s: &str) -> CountryCode {
        CountryCode::parse(s).expect("country")
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("date")
    }

    #[test]
    fn every_member_state_has_rates_and_nothing_else_does() {
        for code in EU_MEMBER_STATES {
            assert!(Rates::on(c(code), d(2026, 1, 1)).is_some(), "{code}");
        }
        for row in RATE_TABLE {
            assert!(EU_MEMBER_STATES.contains(&row.country), "{}", row.country);
            assert!(row.reduced.is_none_or(|r| r < row.standard));
        }
        assert!(Rates::on(c("CH"), d(2026, 1, 1)).is_none());
    }

    #[test]
    fn rows_of_a_country_are_in_date_order() {
        for pair in RATE_TABLE.windows(2) {
            if pair[0].country == pair[1].country {
                assert!(pair[0].from < pair[1].from, "{:?}", pair[1]);
            }
        }
    }

    #[test]
    fn dated_changes_apply_from_their_day() {
        let fi = c("FI");
        let std = |country, date| Rates::on(country, date).expect("rates").standard();
        assert_eq!(std(fi, d(2024, 8, 31)), Decimal::new(24, 0));
        assert_eq!(std(fi, d(2024, 9, 1)), Decimal::new(255, 1));
        assert_eq!(std(c("SK"), d(2024, 12, 31)), Decimal::new(20, 0));
        assert_eq!(std(c("SK"), d(2025, 1, 1)), Decimal::new(23, 0));
        assert_eq!(std(c("EE"), d(2025, 6, 30)), Decimal::new(22, 0));
        assert_eq!(std(c("EE"), d(2025, 7, 1)), Decimal::new(24, 0));
        assert_eq!(std(c("DE"), d(2020, 7, 1)), Decimal::new(16, 0));
        assert_eq!(std(c("DE"), d(2021, 1, 1)), Decimal::new(19, 0));
        assert_eq!(Rates::on(c("DE"), d(2015, 12, 31)), None);
    }

    #[test]
    fn categories_pick_the_rate() {
        let de = Rates::on(c("DE"), d(2026, 3, 1)).expect("rates");
        assert_eq!(de.for_category(TaxCategory::Standard), Decimal::new(19, 0));
        assert_eq!(de.for_category(TaxCategory::Reduced), Decimal::new(7, 0));
        // No super-reduced rate in Germany: the reduced one.
        assert_eq!(
            de.for_category(TaxCategory::SuperReduced),
            Decimal::new(7, 0)
        );
        assert_eq!(de.for_category(TaxCategory::Exempt), Decimal::ZERO);
        let fr = Rates::on(c("FR"), d(2026, 3, 1)).expect("rates");
        assert_eq!(fr.for_category(TaxCategory::Reduced), Decimal::new(55, 1));
        assert_eq!(
            fr.for_category(TaxCategory::SuperReduced),
            Decimal::new(21, 1)
        );
        let dk = Rates::on(c("DK"), d(2026, 3, 1)).expect("rates");
        assert_eq!(dk.for_category(TaxCategory::Reduced), Decimal::new(25, 0));
    }
}
