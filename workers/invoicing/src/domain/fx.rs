//! VAT in the national currency (Art. 230 of Directive 2006/112/EC): an invoice may be in
//! any currency, but the VAT payable must also be stated in the currency of the member
//! state where it is due, converted at the rate of Art. 91 (the European Central Bank's
//! latest reference rate on or before the chargeable event, the option most member states
//! offer and the one Orderly applies).
//!
//! The rates are data an operator loads (`orderly vat fx FILE`, the ECB's
//! `eurofxref-hist.csv`: `Date,USD,JPY,...` and one row per day, `N/A` where no rate), so a
//! conversion never depends on the network at invoice time.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;

/// The national currency of a VAT state (`XI`: pound sterling) on a day; `None` for a code
/// that is not a member state or `XI`.
pub fn national_currency(state: &str, day: NaiveDate) -> Option<&'static str> {
    let euro_since = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).is_some_and(|since| day >= since);
    Some(match state {
        // Bulgaria adopted the euro on 1 January 2026.
        "BG" if euro_since(2026, 1, 1) => "EUR",
        "BG" => "BGN",
        "CZ" => "CZK",
        "DK" => "DKK",
        "HU" => "HUF",
        "PL" => "PLN",
        "RO" => "RON",
        "SE" => "SEK",
        "XI" => "GBP",
        "AT" | "BE" | "CY" | "DE" | "EE" | "ES" | "FI" | "FR" | "GR" | "HR" | "IE" | "IT"
        | "LT" | "LU" | "LV" | "MT" | "NL" | "PT" | "SI" | "SK" => "EUR",
        _ => return None,
    })
}

/// One day's reference rates: units of a currency per euro.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FxRate {
    /// The day the ECB published it for.
    pub day: NaiveDate,
    /// ISO 4217.
    pub currency: String,
    /// Units of `currency` for one euro.
    pub per_eur: Decimal,
}

/// Parses the ECB's CSV (`Date,USD,JPY,...`). Every bad cell is named; `N/A` and empty cells
/// are days without a rate.
pub fn parse_ecb_csv(text: &str) -> Result<Vec<FxRate>, Vec<String>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return Err(vec!["the file is empty".to_owned()]);
    };
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    if columns.first() != Some(&"Date") {
        return Err(vec![format!(
            "line 1: expected `Date,USD,...`, found `{header}`"
        )]);
    }
    let mut rates = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in lines.enumerate() {
        let n = i + 2;
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let Ok(day) = NaiveDate::parse_from_str(cells[0], "%Y-%m-%d") else {
            errors.push(format!(
                "line {n}: `{}` is not a date (yyyy-mm-dd)",
                cells[0]
            ));
            continue;
        };
        for (currency, cell) in columns.iter().zip(&cells).skip(1) {
            if currency.is_empty() || cell.is_empty() || *cell == "N/A" {
                continue;
            }
            match Decimal::from_str(cell) {
                Ok(rate) if rate > Decimal::ZERO => rates.push(FxRate {
                    day,
                    currency: (*currency).to_owned(),
                    per_eur: rate,
                }),
                _ => errors.push(format!(
                    "line {n}, {currency}: `{cell}` is not a positive rate"
                )),
            }
        }
    }
    if errors.is_empty() {
        Ok(rates)
    } else {
        Err(errors)
    }
}

/// Rates by currency, oldest first: what a conversion looks up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FxTable {
    by_currency: BTreeMap<String, Vec<(NaiveDate, Decimal)>>,
}

/// A conversion, as stated on the invoice.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Conversion {
    /// The national currency.
    pub currency: String,
    /// The VAT in it, rounded to the cent.
    pub vat: Decimal,
    /// Units of the invoice currency per unit of the national currency.
    pub rate: Decimal,
    /// The day of the reference rate used.
    pub rate_day: NaiveDate,
}

impl FxTable {
    /// A table of `rates`.
    pub fn new(rates: impl IntoIterator<Item = FxRate>) -> Self {
        let mut t = Self::default();
        for r in rates {
            t.by_currency
                .entry(r.currency)
                .or_default()
                .push((r.day, r.per_eur));
        }
        for v in t.by_currency.values_mut() {
            v.sort();
        }
        t
    }

    /// Units of `currency` per euro on the latest day on or before `day` (and its day).
    fn per_eur(&self, currency: &str, day: NaiveDate) -> Option<(NaiveDate, Decimal)> {
        if currency == "EUR" {
            return Some((day, Decimal::ONE));
        }
        self.by_currency
            .get(currency)?
            .iter()
            .rev()
            .find(|(d, _)| *d <= day)
            .copied()
    }

    /// `vat` (in `from`) in `to` at the reference rates on or before `day`, through the
    /// euro; `None` without a rate for either on or before that day, or one older than a
    /// week (a gap that long means the rates were not loaded, not a bank holiday).
    pub fn convert(
        &self,
        vat: Decimal,
        from: &str,
        to: &str,
        day: NaiveDate,
    ) -> Option<Conversion> {
        let (from_day, from_rate) = self.per_eur(from, day)?;
        let (to_day, to_rate) = self.per_eur(to, day)?;
        let rate_day = from_day.min(to_day);
        if (day - rate_day).num_days() > 7 {
            return None;
        }
        // One unit of `to` is worth `from_rate / to_rate` units of `from`.
        let rate = (from_rate / to_rate).round_dp(6);
        Some(Conversion {
            currency: to.to_owned(),
            vat: (vat * to_rate / from_rate)
                .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero),
            rate,
            rate_day,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).expect("decimal")
    }

    fn day(y: i32, m: u32, dd: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, dd).expect("date")
    }

    const ECB: &str = "Date,USD,JPY,BGN,PLN,GBP,\n\
                       2026-03-13,1.0845,161.20,N/A,4.2750,0.8400,\n\
                       2026-03-12,1.0800,160.00,N/A,4.2700,0.8390,\n";

    #[test]
    fn ecb_rates_convert_through_the_euro_from_the_latest_day() {
        let table = FxTable::new(parse_ecb_csv(ECB).expect("rates"));
        // A Saturday uses Friday's rate.
        let c = table
            .convert(d("19.00"), "USD", "EUR", day(2026, 3, 14))
            .expect("rate");
        assert_eq!(
            (c.vat, c.rate, c.rate_day),
            (d("17.52"), d("1.0845"), day(2026, 3, 13))
        );
        // USD to PLN through the euro: 19 USD × 4.2750 / 1.0845 = 74.90 PLN.
        let c = table
            .convert(d("19.00"), "USD", "PLN", day(2026, 3, 13))
            .expect("rate");
        assert_eq!(c.vat, d("74.90"));
        assert_eq!(table.convert(d("1"), "USD", "EUR", day(2026, 3, 11)), None);
        assert_eq!(
            table.convert(d("1"), "USD", "EUR", day(2026, 3, 30)),
            None,
            "a week stale"
        );
        assert_eq!(table.convert(d("1"), "CHF", "EUR", day(2026, 3, 13)), None);
    }

    #[test]
    fn national_currencies() {
        assert_eq!(national_currency("DE", day(2026, 1, 1)), Some("EUR"));
        assert_eq!(national_currency("BG", day(2025, 12, 31)), Some("BGN"));
        assert_eq!(national_currency("BG", day(2026, 1, 1)), Some("EUR"));
        assert_eq!(national_currency("PL", day(2026, 1, 1)), Some("PLN"));
        assert_eq!(national_currency("XI", day(2026, 1, 1)), Some("GBP"));
        assert_eq!(national_currency("CH", day(2026, 1, 1)), None);
    }

    #[test]
    fn a_bad_file_names_its_cells() {
        let errors = parse_ecb_csv("Date,USD\n2026-13-01,1.1\n2026-03-13,-1\n").expect_err("bad");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("line 2"));
        assert!(errors[1].contains("line 3, USD"));
        assert!(parse_ecb_csv("").is_err());
        assert!(parse_ecb_csv("Currency,USD\n").is_err());
    }
}
