//! How a document's language writes dates, amounts and rates: the reader's own conventions
//! (a German accountant reads `1.234,56 €` and `14.03.2026`; `1,234.56` is a different
//! number to them). English keeps ISO dates, which no English-speaking reader misreads.
//!
//! | language | date | amount | rate |
//! |---|---|---|---|
//! | English | `2026-03-14` | `1,234.56 €` | `19%` |
//! | German | `14.03.2026` | `1.234,56 €` | `19 %` |
//! | French | `14/03/2026` | `1 234,56 €` (no-break space) | `19 %` |
//! | Dutch | `14-03-2026` | `€ 1.234,56` | `19%` |

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::language::Language;

/// The no-break space French puts between thousands and before `%` and `€`.
const NBSP: char = '\u{a0}';

impl Language {
    fn separators(self) -> (&'static str, char) {
        match self {
            Self::En => (",", '.'),
            Self::De | Self::Nl => (".", ','),
            Self::Fr => ("\u{a0}", ','),
        }
    }

    /// A date as the language writes it.
    pub fn date(self, d: NaiveDate) -> String {
        match self {
            Self::En => d.format("%Y-%m-%d").to_string(),
            Self::De => d.format("%d.%m.%Y").to_string(),
            Self::Fr => d.format("%d/%m/%Y").to_string(),
            Self::Nl => d.format("%d-%m-%Y").to_string(),
        }
    }

    /// An amount with thousands separators and the decimals it has (`1.234,56`).
    pub fn amount(self, amount: Decimal) -> String {
        let (thousands, decimal) = self.separators();
        let s = amount.to_string();
        let (sign, s) = match s.strip_prefix('-') {
            Some(rest) => ("-", rest.to_owned()),
            None => ("", s),
        };
        let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
        let mut grouped = String::with_capacity(int.len() + int.len() / 3 * 2);
        for (i, ch) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                grouped.push_str(thousands);
            }
            grouped.push(ch);
        }
        if frac.is_empty() {
            format!("{sign}{grouped}")
        } else {
            format!("{sign}{grouped}{decimal}{frac}")
        }
    }

    /// An amount with its currency (`€` for euros, the ISO code otherwise), where the
    /// language puts it.
    pub fn amount_in(self, amount: Decimal, currency: &str) -> String {
        let symbol = match currency {
            "EUR" => "€",
            other => other,
        };
        let n = self.amount(amount);
        match self {
            Self::Nl => format!("{symbol} {n}"),
            Self::Fr => format!("{n}{NBSP}{symbol}"),
            Self::En | Self::De => format!("{n} {symbol}"),
        }
    }

    /// A VAT rate (`19 %`, `5,5 %`).
    pub fn percent(self, rate: Decimal) -> String {
        let n = self.amount(rate.normalize());
        match self {
            Self::En | Self::Nl => format!("{n}%"),
            Self::De => format!("{n} %"),
            Self::Fr => format!("{n}{NBSP}%"),
        }
    }

    /// A unit price: at least two decimals, more only when they matter (`8,4034`).
    pub fn unit_price(self, d: Decimal) -> String {
        let mut n = d.normalize();
        if n.scale() < 2 {
            n.rescale(2);
        }
        self.amount(n)
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).expect("decimal")
    }

    #[test]
    fn each_language_writes_numbers_and_dates_its_own_way() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 14).expect("date");
        let amount = d("1234567.89");
        let cases = [
            (
                Language::En,
                "2026-03-14",
                "1,234,567.89 €",
                "5.5%",
                "8.4034",
            ),
            (
                Language::De,
                "14.03.2026",
                "1.234.567,89 €",
                "5,5 %",
                "8,4034",
            ),
            (
                Language::Fr,
                "14/03/2026",
                "1\u{a0}234\u{a0}567,89\u{a0}€",
                "5,5\u{a0}%",
                "8,4034",
            ),
            (
                Language::Nl,
                "14-03-2026",
                "€ 1.234.567,89",
                "5,5%",
                "8,4034",
            ),
        ];
        for (lang, date, money, rate, price) in cases {
            assert_eq!(lang.date(day), date, "{lang:?}");
            assert_eq!(lang.amount_in(amount, "EUR"), money, "{lang:?}");
            assert_eq!(lang.percent(d("5.50")), rate, "{lang:?}");
            assert_eq!(lang.unit_price(d("8.4034")), price, "{lang:?}");
        }
        assert_eq!(Language::De.amount(d("-0.5")), "-0,5");
        assert_eq!(Language::De.amount(d("999.00")), "999,00");
        assert_eq!(Language::En.unit_price(d("10")), "10.00");
        assert_eq!(Language::En.amount_in(d("12.00"), "CHF"), "12.00 CHF");
        assert_eq!(Language::De.percent(d("19")), "19 %");
    }
}
