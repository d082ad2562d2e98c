//! Where a place is for VAT: inside the EU VAT area (and in which member state and rate
//! area), or outside it although inside a member state's borders.
//!
//! Recognised from the country and the postcode (Art. 5 to 7 of Directive 2006/112/EC):
//! - outside the EU VAT area: the Canary Islands, Ceuta and Melilla (ES), the Åland Islands
//!   (FI), Mount Athos (GR), Büsingen and Heligoland (DE), Livigno and Campione d'Italia
//!   (IT), the French overseas departments and collectivities (FR postcodes 971 to 978;
//!   their own ISO codes GP, MQ, GF, RE, YT, PM, BL and MF are outside the EU anyway);
//! - inside, with rates of their own: the Azores (`PT-20`) and Madeira (`PT-30`), and
//!   Jungholz and Mittelberg (`AT-JM`, Germany's standard rate, Art. 105(2));
//! - treated as a member state: Monaco as France (Art. 7(1)); Northern Ireland (GB postcodes
//!   `BT`) as inside the EU for goods (Windsor Framework), rate area `XI`.
//!
//! A place in a member state with such territories but without a postcode is taken to be
//! on the mainland, and the decision's reason says so.

use orderly_contracts::types::CountryCode;

/// Where a place is for VAT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VatPlace {
    /// Inside the EU VAT area (for goods).
    Inside {
        /// The member state whose VAT applies (`FR` for Monaco, `XI` for Northern Ireland).
        state: &'static str,
        /// Where the rates come from (`PT-20` for the Azores, else the state).
        rate_area: &'static str,
        /// The territory's name where it is not simply the state.
        territory: Option<&'static str>,
    },
    /// Outside the EU VAT area.
    Outside {
        /// The territory's name when it lies within a member state's borders.
        territory: Option<&'static str>,
    },
}

/// A place and how sure we are of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The answer.
    pub place: VatPlace,
    /// Set when the country has territories but no postcode was given (mainland assumed).
    pub assumed_mainland: bool,
}

impl VatPlace {
    /// Whether inside the EU VAT area.
    pub fn is_inside(&self) -> bool {
        matches!(self, Self::Inside { .. })
    }

    /// The member state (`None` outside).
    pub fn state(&self) -> Option<&'static str> {
        match self {
            Self::Inside { state, .. } => Some(state),
            Self::Outside { .. } => None,
        }
    }

    /// The rate area (`None` outside).
    pub fn rate_area(&self) -> Option<&'static str> {
        match self {
            Self::Inside { rate_area, .. } => Some(rate_area),
            Self::Outside { .. } => None,
        }
    }

    /// A short name for reasons: `DE`, `PT (Azores)`, `ES (Canary Islands)`.
    pub fn describe(&self, country: CountryCode) -> String {
        match self {
            Self::Inside {
                territory: Some(t),
                state,
                ..
            } => format!("{country} ({t}, {state} VAT)"),
            Self::Outside { territory: Some(t) } => format!("{country} ({t})"),
            _ => country.to_string(),
        }
    }
}

/// Postcode ranges of territories: country, first and last postcode (as numbers of the
/// digits given), and what they are.
struct Territory {
    country: &'static str,
    first: u32,
    last: u32,
    digits: usize,
    name: &'static str,
    inside: Option<(&'static str, &'static str)>,
}

/// A territory outside the EU VAT area.
const fn out(
    country: &'static str,
    first: u32,
    last: u32,
    digits: usize,
    name: &'static str,
) -> Territory {
    Territory {
        country,
        first,
        last,
        digits,
        name,
        inside: None,
    }
}

/// A part of a member state with rates of its own (`state`'s VAT, rate area `area`).
const fn part(
    (country, first, last, digits, name): (&'static str, u32, u32, usize, &'static str),
    state: &'static str,
    area: &'static str,
) -> Territory {
    Territory {
        inside: Some((state, area)),
        ..out(country, first, last, digits, name)
    }
}

/// Compared on the first `digits` digits of the postcode.
const TERRITORIES: &[Territory] = &[
    out("ES", 35, 35, 2, "Canary Islands"),
    out("ES", 38, 38, 2, "Canary Islands"),
    out("ES", 51, 51, 2, "Ceuta"),
    out("ES", 52, 52, 2, "Melilla"),
    out("FI", 22, 22, 2, "Åland Islands"),
    out("GR", 63086, 63087, 5, "Mount Athos"),
    out("DE", 78266, 78266, 5, "Büsingen am Hochrhein"),
    out("DE", 27498, 27498, 5, "Heligoland"),
    out("IT", 23041, 23041, 5, "Livigno"),
    out("IT", 22061, 22061, 5, "Campione d'Italia"),
    out("FR", 971, 971, 3, "Guadeloupe"),
    out("FR", 972, 972, 3, "Martinique"),
    out("FR", 973, 973, 3, "French Guiana"),
    out("FR", 974, 974, 3, "Réunion"),
    out("FR", 975, 975, 3, "Saint-Pierre-et-Miquelon"),
    out("FR", 976, 976, 3, "Mayotte"),
    out("FR", 977, 978, 3, "Saint-Barthélemy or Saint-Martin"),
    part(("PT", 90, 94, 2, "Madeira"), "PT", "PT-30"),
    part(("PT", 95, 99, 2, "Azores"), "PT", "PT-20"),
    part(("AT", 6691, 6691, 4, "Jungholz"), "AT", "AT-JM"),
    part(("AT", 6991, 6993, 4, "Mittelberg"), "AT", "AT-JM"),
];

fn leading_digits(postcode: &str, n: usize) -> Option<u32> {
    // Only the digits: `630 86`, `9500-321` and `AX-22100` are read as 63086, 9500321 and
    // 22100.
    let digits: String = postcode
        .chars()
        .filter(char::is_ascii_digit)
        .take(n)
        .collect();
    if digits.len() == n {
        digits.parse().ok()
    } else {
        None
    }
}

/// Where `country` + `postcode` is for VAT on goods.
pub fn locate(country: CountryCode, postcode: Option<&str>) -> Located {
    let code = country.as_str();
    let postcode = postcode.map(str::trim).filter(|p| !p.is_empty());
    let has_territories = TERRITORIES.iter().any(|t| t.country == code) || code == "GB";
    let located = |place| Located {
        place,
        assumed_mainland: has_territories && postcode.is_none(),
    };
    if code == "MC" {
        return located(VatPlace::Inside {
            state: "FR",
            rate_area: "FR",
            territory: Some("Monaco"),
        });
    }
    if code == "GB" {
        let northern_ireland = postcode.is_some_and(|p| {
            let p = p.to_ascii_uppercase();
            p.starts_with("BT") && p[2..].starts_with(|c: char| c.is_ascii_digit())
        });
        return located(if northern_ireland {
            VatPlace::Inside {
                state: "XI",
                rate_area: "XI",
                territory: Some("Northern Ireland"),
            }
        } else {
            VatPlace::Outside { territory: None }
        });
    }
    if let Some(p) = postcode {
        for t in TERRITORIES.iter().filter(|t| t.country == code) {
            if leading_digits(p, t.digits).is_some_and(|n| (t.first..=t.last).contains(&n)) {
                return located(match t.inside {
                    Some((state, rate_area)) => VatPlace::Inside {
                        state,
                        rate_area,
                        territory: Some(t.name),
                    },
                    None => VatPlace::Outside {
                        territory: Some(t.name),
                    },
                });
            }
        }
    }
    if country.is_eu() {
        located(VatPlace::Inside {
            state: code,
            rate_area: code,
            territory: None,
        })
    } else {
        located(VatPlace::Outside { territory: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(country: &str, postcode: Option<&str>) -> VatPlace {
        locate(CountryCode::parse(country).expect("country"), postcode).place
    }

    #[test]
    fn territories_by_postcode() {
        let outside = |name| VatPlace::Outside {
            territory: Some(name),
        };
        assert_eq!(at("ES", Some("35001")), outside("Canary Islands"));
        assert_eq!(at("ES", Some("38670")), outside("Canary Islands"));
        assert_eq!(at("ES", Some("51001")), outside("Ceuta"));
        assert_eq!(at("ES", Some("52006")), outside("Melilla"));
        assert_eq!(at("FI", Some("22100")), outside("Åland Islands"));
        assert_eq!(at("FI", Some("AX-22100")), outside("Åland Islands"));
        assert_eq!(at("FI", Some("00100")).state(), Some("FI"));
        assert_eq!(at("GR", Some("630 86")), outside("Mount Athos"));
        assert_eq!(at("DE", Some("78266")), outside("Büsingen am Hochrhein"));
        assert_eq!(at("DE", Some("27498")), outside("Heligoland"));
        assert_eq!(at("IT", Some("23041")), outside("Livigno"));
        assert_eq!(at("IT", Some("22061")), outside("Campione d'Italia"));
        assert_eq!(at("FR", Some("97400")), outside("Réunion"));
        assert_eq!(at("FR", Some("97133")), outside("Guadeloupe"));
        assert_eq!(at("PT", Some("9500-321")).rate_area(), Some("PT-20"));
        assert_eq!(at("PT", Some("9000-018")).rate_area(), Some("PT-30"));
        assert_eq!(at("PT", Some("1100-148")).rate_area(), Some("PT"));
        assert_eq!(at("AT", Some("6691")).rate_area(), Some("AT-JM"));
        assert_eq!(at("AT", Some("6991")).rate_area(), Some("AT-JM"));
        assert_eq!(at("AT", Some("1010")).rate_area(), Some("AT"));
        assert_eq!(at("MC", Some("98000")).state(), Some("FR"));
        assert_eq!(at("GB", Some("BT1 1AA")).state(), Some("XI"));
        assert_eq!(at("GB", Some("bt7 1nn")).state(), Some("XI"));
        assert!(!at("GB", Some("SW1A 1AA")).is_inside());
        assert!(!at("CH", Some("8001")).is_inside());
        assert_eq!(at("DE", Some("10115")).state(), Some("DE"));
    }

    #[test]
    fn without_a_postcode_the_mainland_is_assumed_and_said() {
        let es = locate(CountryCode::parse("ES").expect("ES"), None);
        assert!(es.assumed_mainland);
        assert_eq!(es.place.state(), Some("ES"));
        let dk = locate(CountryCode::parse("DK").expect("DK"), None);
        assert!(!dk.assumed_mainland);
    }
}
