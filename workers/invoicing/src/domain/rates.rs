//! The VAT rates in force: dated data per rate area and class, not code.
//!
//! The shipped data is `workers/invoicing/data/vat-rates.csv` (one row per rate area, class
//! and period, each citing its source). The worker loads the file it is configured with
//! (`invoicing.rates_file`, the shipped one by default) into its schema at start, and a
//! store may add or override rows of its own, so a rate change is an edit of the file (or a
//! store's row), never a release of the code. Invoices whose supply date falls on or after
//! a row's `from` use it; credit notes copy the rates of the invoice they credit.
//!
//! A **rate area** is a member state (`DE`, ISO spelling: Greece is `GR`), or a part of one
//! with rates of its own: `PT-20` (Azores), `PT-30` (Madeira), `AT-JM` (Jungholz and
//! Mittelberg), `GR-ISL` (the Greek islands with lower rates, see [`super::greek_islands`]), and `XI` (Northern Ireland, EU rules for goods). A part falls back to its
//! state's row for a class it has no row for.
//!
//! A **class** is either a generic category (`standard`, `reduced`, `super_reduced`: what a
//! product tagged only with a [`TaxCategory`] takes) or a product class ([`TaxClass`]:
//! `books`, `food`, ...), because "reduced" does not mean the same in every country.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::LazyLock;

use chrono::NaiveDate;
use orderly_contracts::types::{EU_MEMBER_STATES, TaxCategory, TaxClass};
use rust_decimal::Decimal;

/// The shipped rate data.
pub const SHIPPED_CSV: &str = include_str!("../../data/vat-rates.csv");

/// Rate areas that are parts of a member state with rates of their own, with their state.
pub const SPECIAL_AREAS: &[(&str, &str)] = &[
    ("PT-20", "PT"),
    ("PT-30", "PT"),
    ("AT-JM", "AT"),
    ("GR-ISL", "GR"),
    // Northern Ireland is not a member state; it applies UK rates under EU rules for goods.
    ("XI", "XI"),
];

/// The highest rate any row may carry (no EU rate is above 27 %): catches a typo such as 190.
const MAX_RATE: Decimal = Decimal::from_parts(30, 0, 0, false, 0);

/// What a row's rate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateClass {
    /// The standard rate.
    Standard,
    /// The main reduced rate for everyday goods.
    Reduced,
    /// The lowest positive rate on goods.
    SuperReduced,
    /// A product class.
    Product(TaxClass),
}

impl RateClass {
    /// The file's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Reduced => "reduced",
            Self::SuperReduced => "super_reduced",
            Self::Product(c) => c.as_str(),
        }
    }

    /// The class a generic category looks up; `None` for zero-rated and exempt, which have
    /// no rate to look up.
    pub fn of_category(category: TaxCategory) -> Option<Self> {
        match category {
            TaxCategory::Standard => Some(Self::Standard),
            TaxCategory::Reduced => Some(Self::Reduced),
            TaxCategory::SuperReduced => Some(Self::SuperReduced),
            TaxCategory::Zero | TaxCategory::Exempt => None,
        }
    }
}

impl FromStr for RateClass {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "standard" => Ok(Self::Standard),
            "reduced" => Ok(Self::Reduced),
            "super_reduced" => Ok(Self::SuperReduced),
            other => other.parse::<TaxClass>().map(Self::Product).map_err(|_| {
                format!(
                    "`{other}` is not a class (standard, reduced, super_reduced, {})",
                    TaxClass::ALL
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }),
        }
    }
}

/// One row: a rate of one class in one area for a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateRow {
    /// The rate area (`DE`, `PT-20`).
    pub area: String,
    /// The class.
    pub class: RateClass,
    /// The rate in percent (`25.5`); `0` is zero-rated, never exempt.
    pub rate: Decimal,
    /// First day.
    pub from: NaiveDate,
    /// Last day, inclusive; `None` while in force.
    pub to: Option<NaiveDate>,
    /// Where the figure comes from.
    pub source: String,
    /// Free text.
    pub note: String,
}

impl RateRow {
    fn covers(&self, date: NaiveDate) -> bool {
        self.from <= date && self.to.is_none_or(|to| date <= to)
    }
}

/// A row of a rate file that cannot be used, with its line and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {field}: {message}")]
pub struct RateFileError {
    /// 1-based line of the file (0: the file as a whole).
    pub line: usize,
    /// The column (or `row`).
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

/// The rate found for a line, with where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Percent.
    pub rate: Decimal,
    /// The row's first day.
    pub since: NaiveDate,
    /// The area whose row it is (a part's state when the part has no row of its own).
    pub area: String,
    /// The class looked up.
    pub class: RateClass,
    /// The row's source.
    pub source: String,
}

/// Every row, by area and class, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateTable {
    rows: HashMap<(String, RateClass), Vec<RateRow>>,
}

/// The area a rate area falls back to, if it is a part of a member state.
pub fn parent_area(area: &str) -> Option<&'static str> {
    SPECIAL_AREAS
        .iter()
        .find(|(a, parent)| *a == area && *parent != area)
        .map(|(_, parent)| *parent)
}

/// Whether `area` is a member state or one of the [`SPECIAL_AREAS`].
pub fn known_area(area: &str) -> bool {
    EU_MEMBER_STATES.contains(&area) || SPECIAL_AREAS.iter().any(|(a, _)| *a == area)
}

fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            _ => field.push(ch),
        }
    }
    fields.push(field);
    fields.into_iter().map(|f| f.trim().to_owned()).collect()
}

const HEADER: [&str; 7] = ["area", "class", "rate", "from", "to", "source", "note"];

impl RateTable {
    /// The shipped data, parsed once. The file is checked by a unit test, so this never
    /// fails in a built binary; if it did, it would be an empty table (every invoice then
    /// refused with "no rates"), not a panic.
    pub fn shipped() -> &'static Self {
        static SHIPPED: LazyLock<RateTable> =
            LazyLock::new(|| RateTable::parse(SHIPPED_CSV).unwrap_or_default());
        &SHIPPED
    }

    /// Parses a rate file and checks it whole: every error, by line and column.
    pub fn parse(text: &str) -> Result<Self, Vec<RateFileError>> {
        let mut rows = Vec::new();
        let mut errors = Vec::new();
        let mut header_seen = false;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let fields = split_csv(trimmed);
            if !header_seen {
                header_seen = true;
                if fields.iter().map(String::as_str).ne(HEADER) {
                    errors.push(RateFileError {
                        line,
                        field: "header",
                        message: format!("expected `{}`", HEADER.join(",")),
                    });
                    return Err(errors);
                }
                continue;
            }
            match Self::parse_row(line, &fields) {
                Ok(row) => rows.push((line, row)),
                Err(e) => errors.push(e),
            }
        }
        if !header_seen {
            errors.push(RateFileError {
                line: 0,
                field: "header",
                message: "the file is empty".to_owned(),
            });
        }
        let table = Self::from_rows(rows, &mut errors);
        if errors.is_empty() {
            Ok(table)
        } else {
            Err(errors)
        }
    }

    fn parse_row(line: usize, f: &[String]) -> Result<RateRow, RateFileError> {
        let err = |field, message: String| RateFileError {
            line,
            field,
            message,
        };
        if f.len() != HEADER.len() {
            return Err(err(
                "row",
                format!("{} fields, expected {}", f.len(), HEADER.len()),
            ));
        }
        let date = |field, s: &str| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| err(field, format!("`{s}` is not a date (yyyy-mm-dd)")))
        };
        if !known_area(&f[0]) {
            return Err(err(
                "area",
                format!(
                    "`{}` is neither a member state (ISO code, Greece is GR) nor one of PT-20, PT-30, AT-JM, GR-ISL, XI",
                    f[0]
                ),
            ));
        }
        let class = f[1].parse::<RateClass>().map_err(|m| err("class", m))?;
        let rate = Decimal::from_str(&f[2])
            .ok()
            .filter(|r| !r.is_sign_negative() && *r <= MAX_RATE)
            .ok_or_else(|| err("rate", format!("`{}` is not a rate from 0 to 30", f[2])))?;
        let from = date("from", &f[3])?;
        let to = if f[4].is_empty() {
            None
        } else {
            Some(date("to", &f[4])?)
        };
        if to.is_some_and(|to| to < from) {
            return Err(err("to", format!("{} is before `from` {from}", f[4])));
        }
        if f[5].is_empty() {
            return Err(err("source", "every row cites its source".to_owned()));
        }
        Ok(RateRow {
            area: f[0].clone(),
            class,
            rate: rate.normalize(),
            from,
            to,
            source: f[5].clone(),
            note: f[6].clone(),
        })
    }

    fn from_rows(rows: Vec<(usize, RateRow)>, errors: &mut Vec<RateFileError>) -> Self {
        let mut by_key: HashMap<(String, RateClass), Vec<(usize, RateRow)>> = HashMap::new();
        for (line, row) in rows {
            by_key
                .entry((row.area.clone(), row.class))
                .or_default()
                .push((line, row));
        }
        let mut table = Self::default();
        for (key, mut rows) in by_key {
            rows.sort_by_key(|(_, r)| r.from);
            for pair in rows.windows(2) {
                let (_, a) = &pair[0];
                let (line, b) = &pair[1];
                if a.to.is_none_or(|to| to >= b.from) {
                    errors.push(RateFileError {
                        line: *line,
                        field: "from",
                        message: format!(
                            "{} {} from {} overlaps the row from {} (close that row with `to` the day before)",
                            b.area,
                            b.class.as_str(),
                            b.from,
                            a.from
                        ),
                    });
                }
            }
            table
                .rows
                .insert(key, rows.into_iter().map(|(_, r)| r).collect());
        }
        table
    }

    /// Builds a table from rows already checked (a store's rows read back from the database).
    pub fn from_checked(rows: Vec<RateRow>) -> Self {
        let mut table = Self::default();
        for row in rows {
            table
                .rows
                .entry((row.area.clone(), row.class))
                .or_default()
                .push(row);
        }
        for rows in table.rows.values_mut() {
            rows.sort_by_key(|r| r.from);
        }
        table
    }

    /// Every row, for loading into the database.
    pub fn rows(&self) -> impl Iterator<Item = &RateRow> {
        self.rows.values().flatten()
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.rows.values().map(Vec::len).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn exact(&self, area: &str, class: RateClass, date: NaiveDate) -> Option<&RateRow> {
        self.rows
            .get(&(area.to_owned(), class))?
            .iter()
            .rev()
            .find(|r| r.covers(date))
    }

    /// The rate of `class` in `area` on `date`: the area's own row, else (for a part of a
    /// member state) the state's.
    pub fn find(&self, area: &str, class: RateClass, date: NaiveDate) -> Option<Found> {
        let (area, row) = match self.exact(area, class, date) {
            Some(row) => (area, row),
            None => {
                let parent = parent_area(area)?;
                (parent, self.exact(parent, class, date)?)
            }
        };
        Some(Found {
            rate: row.rate,
            since: row.from,
            area: area.to_owned(),
            class,
            source: row.source.clone(),
        })
    }

    /// Whether the area has a standard rate on `date` (the table covers it then).
    pub fn covers(&self, area: &str, date: NaiveDate) -> bool {
        self.find(area, RateClass::Standard, date).is_some()
    }
}

/// The shipped (or configured) table with a store's own rows over it.
#[derive(Debug, Clone, Copy)]
pub struct Rates<'a> {
    /// The table every store uses.
    pub base: &'a RateTable,
    /// The store's rows, which win where they cover the day.
    pub store: Option<&'a RateTable>,
}

impl<'a> Rates<'a> {
    /// The base table only.
    pub fn of(base: &'a RateTable) -> Self {
        Self { base, store: None }
    }

    /// The rate of `class` in `area` on `date`, the store's row first.
    pub fn find(&self, area: &str, class: RateClass, date: NaiveDate) -> Option<Found> {
        self.store
            .and_then(|s| s.find(area, class, date))
            .or_else(|| self.base.find(area, class, date))
    }

    /// The rate of a line: its product class where the area has a row for it, else its
    /// category's. `Ok(None)` for a zero-rated or exempt line (no rate to look up); `Err`
    /// when the area has no rate for that day.
    pub fn for_line(
        &self,
        area: &str,
        category: TaxCategory,
        class: Option<TaxClass>,
        date: NaiveDate,
    ) -> Result<Option<Found>, RateClass> {
        let Some(generic) = RateClass::of_category(category) else {
            return Ok(None);
        };
        if let Some(found) = class.and_then(|c| self.find(area, RateClass::Product(c), date)) {
            return Ok(Some(found));
        }
        self.find(area, generic, date).map(Some).ok_or(generic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("date")
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).expect("decimal")
    }

    fn shipped() -> &'static RateTable {
        let table = RateTable::shipped();
        assert!(
            !table.is_empty(),
            "{:?}",
            RateTable::parse(SHIPPED_CSV).err()
        );
        table
    }

    fn rate(area: &str, class: RateClass, date: NaiveDate) -> Decimal {
        shipped()
            .find(area, class, date)
            .unwrap_or_else(|| panic!("{area} {} {date}", class.as_str()))
            .rate
    }

    #[test]
    fn the_shipped_file_parses_and_every_member_state_has_every_class() {
        RateTable::parse(SHIPPED_CSV).expect("shipped rates");
        let today = d(2026, 12, 7);
        let mut classes = vec![
            RateClass::Standard,
            RateClass::Reduced,
            RateClass::SuperReduced,
        ];
        classes.extend(TaxClass::ALL.iter().map(|c| RateClass::Product(*c)));
        for state in EU_MEMBER_STATES {
            for class in &classes {
                let found = shipped().find(state, *class, today);
                assert!(found.is_some(), "{state} has no {} rate", class.as_str());
            }
            assert!(shipped().covers(state, d(2016, 1, 1)), "{state} from 2016");
        }
        assert!(shipped().find("CH", RateClass::Standard, today).is_none());
    }

    #[test]
    fn todays_standard_and_reduced_rates_of_every_member_state() {
        // Written from the European Commission's rate list and the national announcements
        // (see the file's sources), not from the file: the standard rate, and the rate our
        // generic `reduced` category maps to (the reduced rate most food and books take:
        // Luxembourg's 3 %, Lithuania's 5 % since its 9 % rate went in 2026), on
        // 1 December 2026.
        let expected: &[(&str, &str, &str)] = &[
            ("AT", "20", "10"),
            ("BE", "21", "6"),
            ("BG", "20", "9"),
            ("CY", "19", "5"),
            ("CZ", "21", "12"),
            ("DE", "19", "7"),
            ("DK", "25", "25"),
            ("EE", "24", "9"),
            ("ES", "21", "10"),
            ("FI", "25.5", "13.5"),
            ("FR", "20", "5.5"),
            ("GR", "24", "13"),
            ("HR", "25", "5"),
            ("HU", "27", "5"),
            ("IE", "23", "13.5"),
            ("IT", "22", "10"),
            ("LT", "21", "5"),
            ("LU", "17", "3"),
            ("LV", "21", "12"),
            ("MT", "18", "5"),
            ("NL", "21", "9"),
            ("PL", "23", "5"),
            ("PT", "23", "6"),
            ("RO", "21", "11"),
            ("SE", "25", "6"),
            ("SI", "22", "9.5"),
            ("SK", "23", "5"),
        ];
        assert_eq!(expected.len(), EU_MEMBER_STATES.len());
        let day = d(2026, 12, 1);
        let mut wrong = Vec::new();
        for (state, standard, reduced) in expected {
            let s = rate(state, RateClass::Standard, day);
            let r = rate(state, RateClass::Reduced, day);
            if s != dec(standard) || r != dec(reduced) {
                wrong.push(format!(
                    "{state}: file {s}/{r}, expected {standard}/{reduced}"
                ));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn dated_changes_apply_from_their_day() {
        let s = RateClass::Standard;
        assert_eq!(rate("FI", s, d(2024, 8, 31)), dec("24"));
        assert_eq!(rate("FI", s, d(2024, 9, 1)), dec("25.5"));
        assert_eq!(rate("SK", s, d(2024, 12, 31)), dec("20"));
        assert_eq!(rate("SK", s, d(2025, 1, 1)), dec("23"));
        assert_eq!(rate("EE", s, d(2025, 6, 30)), dec("22"));
        assert_eq!(rate("EE", s, d(2025, 7, 1)), dec("24"));
        assert_eq!(rate("DE", s, d(2020, 7, 1)), dec("16"));
        assert_eq!(rate("DE", s, d(2021, 1, 1)), dec("19"));
        assert_eq!(rate("RO", s, d(2025, 7, 31)), dec("19"));
        assert_eq!(rate("RO", s, d(2025, 8, 1)), dec("21"));
        assert!(shipped().find("DE", s, d(2015, 12, 31)).is_none());
    }

    #[test]
    fn a_future_row_takes_effect_on_its_day_without_code() {
        // A country announces a change: the open row is closed the day before, and one row
        // is added. Nothing else.
        let table = RateTable::parse(
            "area,class,rate,from,to,source,note\n\
             # announced in the budget law\n\
             LU,standard,17,2016-01-01,2027-12-31,test,\n\
             LU,standard,18,2028-01-01,,test,announced\n",
        )
        .expect("table with a future row");
        let s = RateClass::Standard;
        assert_eq!(
            table.find("LU", s, d(2027, 12, 31)).map(|f| f.rate),
            Some(dec("17"))
        );
        let next = table.find("LU", s, d(2028, 1, 1)).expect("the new row");
        assert_eq!((next.rate, next.since), (dec("18"), d(2028, 1, 1)));
    }

    #[test]
    fn product_classes_differ_where_reduced_does_not_mean_the_same() {
        let day = d(2026, 6, 1);
        let books = RateClass::Product(TaxClass::Books);
        let food = RateClass::Product(TaxClass::Food);
        assert_eq!(rate("IE", books, day), dec("0"));
        assert_eq!(rate("DK", books, day), dec("25"));
        assert_eq!(rate("DE", books, day), dec("7"));
        assert_eq!(rate("FR", books, day), dec("5.5"));
        assert_eq!(rate("IE", food, day), dec("0"));
        assert_eq!(rate("MT", food, day), dec("0"));
        let rates = Rates::of(shipped());
        // A line with a class the area has a row for takes it; the generic category
        // otherwise; zero-rated and exempt lines look nothing up.
        let found = rates
            .for_line("IE", TaxCategory::Reduced, Some(TaxClass::Books), day)
            .expect("rate")
            .expect("found");
        assert_eq!(found.rate, dec("0"));
        let found = rates
            .for_line("IE", TaxCategory::Reduced, None, day)
            .expect("rate")
            .expect("found");
        assert_eq!(found.rate, dec("13.5"));
        assert_eq!(
            rates.for_line("IE", TaxCategory::Exempt, None, day),
            Ok(None)
        );
    }

    #[test]
    fn parts_of_a_state_fall_back_to_the_state() {
        let day = d(2026, 6, 1);
        let s = RateClass::Standard;
        assert_eq!(rate("PT-20", s, day), dec("16"));
        assert_eq!(rate("PT-30", s, day), dec("22"));
        assert_eq!(rate("AT-JM", s, day), dec("19"));
        // Jungholz and Mittelberg have no books row of their own: Austria's.
        let books = RateClass::Product(TaxClass::Books);
        let found = shipped().find("AT-JM", books, day).expect("books");
        assert_eq!((found.area.as_str(), found.rate), ("AT", dec("10")));
    }

    #[test]
    fn a_stores_row_wins_where_it_covers_the_day() {
        let store = RateTable::parse(
            "area,class,rate,from,to,source,note\n\
             DE,books,0,2026-07-01,2026-07-31,store decision 42,a trial\n",
        )
        .expect("store rows");
        let rates = Rates {
            base: shipped(),
            store: Some(&store),
        };
        let books = RateClass::Product(TaxClass::Books);
        assert_eq!(
            rates.find("DE", books, d(2026, 7, 15)).map(|f| f.rate),
            Some(dec("0"))
        );
        assert_eq!(
            rates.find("DE", books, d(2026, 8, 1)).map(|f| f.rate),
            Some(dec("7"))
        );
    }

    #[test]
    fn a_bad_file_names_every_line_and_field() {
        let errors = RateTable::parse(
            "area,class,rate,from,to,source,note\n\
             EL,standard,24,2016-01-01,,x,\n\
             DE,luxury,30,2016-01-01,,x,\n\
             DE,standard,190,2016-01-01,,x,\n\
             DE,reduced,7,2016-13-01,,x,\n\
             DE,reduced,7,2016-01-01,,,\n\
             FR,standard,20,2016-01-01,,x,\n\
             FR,standard,21,2026-01-01,,x,\n",
        )
        .expect_err("bad rows");
        let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.field)).collect();
        assert_eq!(
            got,
            vec![
                (2, "area"),
                (3, "class"),
                (4, "rate"),
                (5, "from"),
                (6, "source"),
                (8, "from")
            ],
            "{errors:#?}"
        );
        assert!(errors[0].message.contains("Greece is GR"));
        assert!(RateTable::parse("").is_err());
        assert!(RateTable::parse("country,rate\n").is_err());
    }
}
