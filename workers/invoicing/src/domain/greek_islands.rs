//! The Greek islands whose VAT rates are 30 % lower (rate area `GR-ISL`).
//!
//! Art. 26(4) of the Greek VAT Code (Law 5144/2024, formerly Art. 21(4) of Law 2859/2000)
//! keeps the rates 30 % lower (24 → 17 %, 13 → 9 %, 6 → 4 %) on Lesvos, Chios, Samos, Kos
//! and Leros; AADE circular E.2113/2025 extends them from 2026-01-01 (Art. 26(4)(b) and
//! 26(5)) to the islands of the North Aegean, Samothraki and the Dodecanese with up to
//! 20,000 inhabitants. The lower rates are for supplies **by a business established on
//! such an island of goods that are there**: goods sent from the mainland (or from another
//! Member State) to a consumer on an island are taxed at the mainland's rates. So the rate
//! area is `GR-ISL` only when both the seller's establishment and the place the goods leave
//! from are on a qualifying island on the day of supply ([`super::vat::decide`]).
//!
//! Recognised by postcode. The postcodes come from a public postcode list
//! (github.com/MentatInnovations/grpostcodes, `data/postcode_lat_long_output_file.csv`,
//! built from public look-ups, not Hellenic Post's own list), checked against a second
//! source where one was found (noted per row). Left out, and so taxed at the mainland's
//! rates (the safe side for the tax, not for the buyer): Agathonisi (no postcode found),
//! the islets of a municipality without a postcode of their own, and the years before 2018
//! (a wider list that was phased out in 2015–2017; the rate data starts in 2016). Tobacco
//! and means of transport are excluded from the lower rates; Orderly has no product class
//! for them, so a store selling them on an island must not rely on this.

use chrono::NaiveDate;
use orderly_contracts::types::CountryCode;

/// The rate area of the islands' lower rates (rows in the rate data).
pub const AREA: &str = "GR-ISL";

/// A run of five-digit postcodes on one island, and since when its lower rates apply.
struct Island {
    first: u32,
    last: u32,
    name: &'static str,
    /// `true`: one of the five islands kept since before 2018; `false`: from 2026-01-01.
    kept: bool,
}

const fn island(first: u32, last: u32, name: &'static str, kept: bool) -> Island {
    Island {
        first,
        last,
        name,
        kept,
    }
}

/// From the first day the shipped rate data carries `GR-ISL` rows.
fn kept_since() -> NaiveDate {
    NaiveDate::from_ymd_opt(2018, 1, 1).unwrap_or_default()
}

/// From AADE circular E.2113/2025.
fn extended_since() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default()
}

/// Ordered by postcode. Where an island's codes sit inside another's run (Oinousses and
/// Psara in Chios's, Nisyros in Kos's), the narrower row comes first.
const ISLANDS: &[Island] = &[
    island(68002, 68002, "Samothraki", false),
    island(81100, 81399, "Lesvos", true),
    island(81400, 81499, "Lemnos", false),
    island(81500, 81599, "Agios Efstratios", false),
    // Chios's run holds Oinousses (821 01; wiki.phantis.com) and Psara (821 04;
    // enciklopedija.cc, Prefektura Hios, which also lists Chios's 821 00–823 00).
    island(82101, 82101, "Oinousses", false),
    island(82104, 82104, "Psara", false),
    island(82100, 82399, "Chios", true),
    island(83100, 83299, "Samos", true),
    island(83300, 83399, "Ikaria", false),
    island(83400, 83499, "Fournoi", false),
    island(85001, 85001, "Leipsoi", false),
    island(85002, 85002, "Tilos", false),
    // 851 00–851 09 are Rhodes, which does not qualify.
    island(85110, 85110, "Chalki", false),
    island(85111, 85111, "Megisti (Kastellorizo)", false),
    island(85200, 85299, "Kalymnos", false),
    // Kos's run holds Nisyros (853 03); both confirmed by a second postcode site
    // (scm-en.ecer.com).
    island(85303, 85303, "Nisyros", false),
    island(85300, 85302, "Kos", true),
    island(85400, 85499, "Leros", true),
    // Patmos 855 00 also on patmos-island.com.
    island(85500, 85599, "Patmos", false),
    island(85600, 85699, "Symi", false),
    island(85700, 85799, "Karpathos", false),
    island(85800, 85899, "Kasos", false),
    island(85900, 85999, "Astypalaia", false),
];

/// The qualifying island of a Greek address on `day`, if it is on one.
pub fn on_island(
    country: CountryCode,
    postcode: Option<&str>,
    day: NaiveDate,
) -> Option<&'static str> {
    if country.as_str() != "GR" {
        return None;
    }
    let digits: String = postcode?.chars().filter(char::is_ascii_digit).collect();
    let code: u32 = if digits.len() == 5 {
        digits.parse().ok()?
    } else {
        return None;
    };
    let found = ISLANDS
        .iter()
        .find(|i| (i.first..=i.last).contains(&code))?;
    let since = if found.kept {
        kept_since()
    } else {
        extended_since()
    };
    (day >= since).then_some(found.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(postcode: &str, day: &str) -> Option<&'static str> {
        let day = NaiveDate::parse_from_str(day, "%Y-%m-%d").expect("date");
        on_island(CountryCode::parse("GR").expect("GR"), Some(postcode), day)
    }

    #[test]
    fn the_five_islands_before_2026_and_the_extension_from_2026() {
        assert_eq!(on("811 00", "2025-06-01"), Some("Lesvos"));
        assert_eq!(on("82100", "2025-06-01"), Some("Chios"));
        assert_eq!(on("832 00", "2025-06-01"), Some("Samos"));
        assert_eq!(on("85300", "2025-06-01"), Some("Kos"));
        assert_eq!(on("85400", "2025-06-01"), Some("Leros"));
        // Sharing a run with a kept island, but only from 2026.
        assert_eq!(on("82101", "2025-12-31"), None);
        assert_eq!(on("82101", "2026-01-01"), Some("Oinousses"));
        assert_eq!(on("85303", "2025-12-31"), None);
        assert_eq!(on("85303", "2026-01-01"), Some("Nisyros"));
        assert_eq!(on("855 00", "2026-01-01"), Some("Patmos"));
        assert_eq!(on("68002", "2026-01-01"), Some("Samothraki"));
        assert_eq!(on("811 00", "2017-12-31"), None, "before the data's rows");
    }

    #[test]
    fn rhodes_the_mainland_and_other_countries_are_not_islands_of_the_scheme() {
        assert_eq!(on("85100", "2026-06-01"), None, "Rhodes");
        assert_eq!(on("85110", "2026-06-01"), Some("Chalki"));
        assert_eq!(on("68001", "2026-06-01"), None, "Evros, mainland");
        assert_eq!(on("10431", "2026-06-01"), None, "Athens");
        assert_eq!(on("811", "2026-06-01"), None, "too short");
        let day = NaiveDate::from_ymd_opt(2026, 6, 1).expect("date");
        let cy = CountryCode::parse("CY").expect("CY");
        assert_eq!(on_island(cy, Some("81100"), day), None);
        let gr = CountryCode::parse("GR").expect("GR");
        assert_eq!(on_island(gr, None, day), None);
    }
}
