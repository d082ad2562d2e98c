//! The small rules every vendor's mapping shares: carrier codes, tracking numbers, status
//! words, free text, countries and times, each brought to what `shipment.updated` accepts.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use orderly_contracts::messages::TrackingLocation;
use orderly_contracts::types::CountryCode;

/// Longest carrier code the contract accepts.
const CARRIER_MAX: usize = 32;
/// Longest tracking number, status word and sub-status word the contract accepts.
pub(crate) const WORD_MAX: usize = 64;
/// Length limits of the contract's free text.
pub(crate) const DESCRIPTION_MAX: usize = 1000;
pub(crate) const CITY_MAX: usize = 100;
pub(crate) const POSTAL_CODE_MAX: usize = 16;
pub(crate) const PLACE_MAX: usize = 200;

/// The vendor's carrier as our carrier code: lowercased, every run of other characters
/// (spaces, dots, slashes) made one `_`, `_` and `-` trimmed from the ends (`DHLExpress` →
/// `dhlexpress`, `Canada Post` → `canada_post`, `dhl-global-mail` stays), then replaced by
/// its alias if the settings give one.
pub(crate) fn carrier_code(
    raw: &str,
    aliases: &BTreeMap<String, String>,
) -> Result<String, String> {
    let mut code = String::with_capacity(raw.len());
    let mut gap = false;
    for c in raw.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' {
            if gap && !code.is_empty() {
                code.push('_');
            }
            gap = false;
            code.push(c);
        } else {
            gap = true;
        }
    }
    let code = code.trim_matches(|c| c == '_' || c == '-').to_owned();
    let code = aliases.get(&code).cloned().unwrap_or(code);
    if code.is_empty() || code.len() > CARRIER_MAX {
        return Err(format!(
            "`{}` does not make a carrier code (1 to {CARRIER_MAX} of a-z 0-9 _ -)",
            truncate(raw, 80)
        ));
    }
    Ok(code)
}

/// Whether `code` keeps the contract's carrier-code rule (for the settings' aliases).
pub(crate) fn is_carrier_code(code: &str) -> bool {
    (1..=CARRIER_MAX).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A tracking number without the spaces some carriers print in it (`1Z 999 AA1 01 2345
/// 6784` is `1Z999AA10123456784`), 1 to 64 characters.
pub(crate) fn tracking_number(raw: &str) -> Result<String, String> {
    let number: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    if number.is_empty() {
        return Err("is empty".to_owned());
    }
    if number.chars().count() > WORD_MAX || number.chars().any(char::is_control) {
        return Err(format!(
            "`{}` is not a tracking number (1 to {WORD_MAX} characters)",
            truncate(raw, 80)
        ));
    }
    Ok(number)
}

/// A vendor's status or sub-status word, kept as sent (surrounding spaces aside): not
/// blank, at most 64 characters, no control characters. Too long is refused, not cut: a
/// cut word is a different word.
pub(crate) fn word(raw: &str) -> Result<String, String> {
    let word = raw.trim();
    if word.is_empty() {
        return Err("is blank".to_owned());
    }
    if word.chars().count() > WORD_MAX {
        return Err(format!(
            "`{}…` is longer than the {WORD_MAX} characters a status word may have",
            truncate(word, 40)
        ));
    }
    if word.chars().any(char::is_control) {
        return Err("contains control characters".to_owned());
    }
    Ok(word.to_owned())
}

/// A sub-status, which vendors often leave empty: `None` for absent or blank.
pub(crate) fn optional_word(raw: Option<&str>) -> Result<Option<String>, String> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => word(s).map(Some),
        None => Ok(None),
    }
}

/// Free text for people (a scan's message, a city): control characters become spaces,
/// surrounding space goes, blank is `None`, and more than `max` characters are cut (the
/// carrier's prose is context, not data).
pub(crate) fn text(raw: Option<&str>, max: usize) -> Option<String> {
    let cleaned: String = raw?
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty()).then(|| truncate(cleaned, max))
}

/// A postal code: like [`text`], but one too long is left out rather than cut (a cut postal
/// code names another place).
pub(crate) fn postal_code(raw: Option<&str>) -> Option<String> {
    text(raw, usize::MAX).filter(|code| code.chars().count() <= POSTAL_CODE_MAX)
}

/// A tracking location from the parts a vendor gives; `None` when it gives none of them.
pub(crate) fn location(
    city: Option<&str>,
    postal: Option<&str>,
    country_code: Option<&str>,
    description: Option<&str>,
) -> Option<TrackingLocation> {
    let location = TrackingLocation {
        city: text(city, CITY_MAX),
        postal_code: postal_code(postal),
        country: country(country_code),
        description: text(description, PLACE_MAX),
    };
    let empty = location.city.is_none()
        && location.postal_code.is_none()
        && location.country.is_none()
        && location.description.is_none();
    (!empty).then_some(location)
}

/// "City, State" for a place given with a state or province (`ORLANDO, FL`), which our
/// location has no field for; `None` without a state.
pub(crate) fn place(city: Option<&str>, state: Option<&str>) -> Option<String> {
    let state = text(state, PLACE_MAX)?;
    Some(match text(city, CITY_MAX) {
        Some(city) => format!("{city}, {state}"),
        None => state,
    })
}

/// The first `max` characters of `s`.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// A country as ISO 3166-1 alpha-2, from the alpha-2 or alpha-3 code a vendor sends (in any
/// case: AfterShip sends `DEU`, EasyPost and Shippo `DE`). `None` for a code that is neither:
/// the event is kept without its country rather than refused over it.
pub(crate) fn country(raw: Option<&str>) -> Option<CountryCode> {
    let code = raw?.trim().to_ascii_uppercase();
    match code.len() {
        2 => CountryCode::parse(&code).ok(),
        3 => ISO3_TO_ISO2
            .binary_search_by(|(iso3, _)| (*iso3).cmp(code.as_str()))
            .ok()
            .and_then(|i| CountryCode::parse(ISO3_TO_ISO2[i].1).ok()),
        _ => None,
    }
}

/// A vendor's time in UTC. Accepted forms:
/// - RFC 3339 / ISO 8601 with an offset or `Z` (`2024-08-02T18:50:00Z`,
///   `2023-12-20T02:12:00-06:00`, also `+0600`): converted to UTC;
/// - a date and time without an offset (`2021-01-14T00:52:00`, AfterShip's checkpoint time
///   in the checkpoint's local time when the carrier gives no zone): taken as UTC, because
///   nothing in the payload says which zone it is in, so it may be off by the place's offset;
/// - a date alone (`2024-08-05`): midnight UTC that day.
pub(crate) fn time(raw: &str) -> Result<DateTime<Utc>, String> {
    let s = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, format) {
            return Ok(t.with_timezone(&Utc));
        }
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    Err(format!(
        "`{}` is not a date or time we read (RFC 3339, YYYY-MM-DDTHH:MM:SS, YYYY-MM-DD)",
        truncate(s, 60)
    ))
}

/// ISO 3166-1 alpha-3 to alpha-2, sorted by alpha-3: every one of the 249 assigned codes
/// (from Debian's iso-codes 4.15, `iso_3166-1.json`; a test checks it against the
/// contract's list of alpha-2 codes).
pub(crate) const ISO3_TO_ISO2: &[(&str, &str)] = &[
    ("ABW", "AW"),
    ("AFG", "AF"),
    ("AGO", "AO"),
    ("AIA", "AI"),
    ("ALA", "AX"),
    ("ALB", "AL"),
    ("AND", "AD"),
    ("ARE", "AE"),
    ("ARG", "AR"),
    ("ARM", "AM"),
    ("ASM", "AS"),
    ("ATA", "AQ"),
    ("ATF", "TF"),
    ("ATG", "AG"),
    ("AUS", "AU"),
    ("AUT", "AT"),
    ("AZE", "AZ"),
    ("BDI", "BI"),
    ("BEL", "BE"),
    ("BEN", "BJ"),
    ("BES", "BQ"),
    ("BFA", "BF"),
    ("BGD", "BD"),
    ("BGR", "BG"),
    ("BHR", "BH"),
    ("BHS", "BS"),
    ("BIH", "BA"),
    ("BLM", "BL"),
    ("BLR", "BY"),
    ("BLZ", "BZ"),
    ("BMU", "BM"),
    ("BOL", "BO"),
    ("BRA", "BR"),
    ("BRB", "BB"),
    ("BRN", "BN"),
    ("BTN", "BT"),
    ("BVT", "BV"),
    ("BWA", "BW"),
    ("CAF", "CF"),
    ("CAN", "CA"),
    ("CCK", "CC"),
    ("CHE", "CH"),
    ("CHL", "CL"),
    ("CHN", "CN"),
    ("CIV", "CI"),
    ("CMR", "CM"),
    ("COD", "CD"),
    ("COG", "CG"),
    ("COK", "CK"),
    ("COL", "CO"),
    ("COM", "KM"),
    ("CPV", "CV"),
    ("CRI", "CR"),
    ("CUB", "CU"),
    ("CUW", "CW"),
    ("CXR", "CX"),
    ("CYM", "KY"),
    ("CYP", "CY"),
    ("CZE", "CZ"),
    ("DEU", "DE"),
    ("DJI", "DJ"),
    ("DMA", "DM"),
    ("DNK", "DK"),
    ("DOM", "DO"),
    ("DZA", "DZ"),
    ("ECU", "EC"),
    ("EGY", "EG"),
    ("ERI", "ER"),
    ("ESH", "EH"),
    ("ESP", "ES"),
    ("EST", "EE"),
    ("ETH", "ET"),
    ("FIN", "FI"),
    ("FJI", "FJ"),
    ("FLK", "FK"),
    ("FRA", "FR"),
    ("FRO", "FO"),
    ("FSM", "FM"),
    ("GAB", "GA"),
    ("GBR", "GB"),
    ("GEO", "GE"),
    ("GGY", "GG"),
    ("GHA", "GH"),
    ("GIB", "GI"),
    ("GIN", "GN"),
    ("GLP", "GP"),
    ("GMB", "GM"),
    ("GNB", "GW"),
    ("GNQ", "GQ"),
    ("GRC", "GR"),
    ("GRD", "GD"),
    ("GRL", "GL"),
    ("GTM", "GT"),
    ("GUF", "GF"),
    ("GUM", "GU"),
    ("GUY", "GY"),
    ("HKG", "HK"),
    ("HMD", "HM"),
    ("HND", "HN"),
    ("HRV", "HR"),
    ("HTI", "HT"),
    ("HUN", "HU"),
    ("IDN", "ID"),
    ("IMN", "IM"),
    ("IND", "IN"),
    ("IOT", "IO"),
    ("IRL", "IE"),
    ("IRN", "IR"),
    ("IRQ", "IQ"),
    ("ISL", "IS"),
    ("ISR", "IL"),
    ("ITA", "IT"),
    ("JAM", "JM"),
    ("JEY", "JE"),
    ("JOR", "JO"),
    ("JPN", "JP"),
    ("KAZ", "KZ"),
    ("KEN", "KE"),
    ("KGZ", "KG"),
    ("KHM", "KH"),
    ("KIR", "KI"),
    ("KNA", "KN"),
    ("KOR", "KR"),
    ("KWT", "KW"),
    ("LAO", "LA"),
    ("LBN", "LB"),
    ("LBR", "LR"),
    ("LBY", "LY"),
    ("LCA", "LC"),
    ("LIE", "LI"),
    ("LKA", "LK"),
    ("LSO", "LS"),
    ("LTU", "LT"),
    ("LUX", "LU"),
    ("LVA", "LV"),
    ("MAC", "MO"),
    ("MAF", "MF"),
    ("MAR", "MA"),
    ("MCO", "MC"),
    ("MDA", "MD"),
    ("MDG", "MG"),
    ("MDV", "MV"),
    ("MEX", "MX"),
    ("MHL", "MH"),
    ("MKD", "MK"),
    ("MLI", "ML"),
    ("MLT", "MT"),
    ("MMR", "MM"),
    ("MNE", "ME"),
    ("MNG", "MN"),
    ("MNP", "MP"),
    ("MOZ", "MZ"),
    ("MRT", "MR"),
    ("MSR", "MS"),
    ("MTQ", "MQ"),
    ("MUS", "MU"),
    ("MWI", "MW"),
    ("MYS", "MY"),
    ("MYT", "YT"),
    ("NAM", "NA"),
    ("NCL", "NC"),
    ("NER", "NE"),
    ("NFK", "NF"),
    ("NGA", "NG"),
    ("NIC", "NI"),
    ("NIU", "NU"),
    ("NLD", "NL"),
    ("NOR", "NO"),
    ("NPL", "NP"),
    ("NRU", "NR"),
    ("NZL", "NZ"),
    ("OMN", "OM"),
    ("PAK", "PK"),
    ("PAN", "PA"),
    ("PCN", "PN"),
    ("PER", "PE"),
    ("PHL", "PH"),
    ("PLW", "PW"),
    ("PNG", "PG"),
    ("POL", "PL"),
    ("PRI", "PR"),
    ("PRK", "KP"),
    ("PRT", "PT"),
    ("PRY", "PY"),
    ("PSE", "PS"),
    ("PYF", "PF"),
    ("QAT", "QA"),
    ("REU", "RE"),
    ("ROU", "RO"),
    ("RUS", "RU"),
    ("RWA", "RW"),
    ("SAU", "SA"),
    ("SDN", "SD"),
    ("SEN", "SN"),
    ("SGP", "SG"),
    ("SGS", "GS"),
    ("SHN", "SH"),
    ("SJM", "SJ"),
    ("SLB", "SB"),
    ("SLE", "SL"),
    ("SLV", "SV"),
    ("SMR", "SM"),
    ("SOM", "SO"),
    ("SPM", "PM"),
    ("SRB", "RS"),
    ("SSD", "SS"),
    ("STP", "ST"),
    ("SUR", "SR"),
    ("SVK", "SK"),
    ("SVN", "SI"),
    ("SWE", "SE"),
    ("SWZ", "SZ"),
    ("SXM", "SX"),
    ("SYC", "SC"),
    ("SYR", "SY"),
    ("TCA", "TC"),
    ("TCD", "TD"),
    ("TGO", "TG"),
    ("THA", "TH"),
    ("TJK", "TJ"),
    ("TKL", "TK"),
    ("TKM", "TM"),
    ("TLS", "TL"),
    ("TON", "TO"),
    ("TTO", "TT"),
    ("TUN", "TN"),
    ("TUR", "TR"),
    ("TUV", "TV"),
    ("TWN", "TW"),
    ("TZA", "TZ"),
    ("UGA", "UG"),
    ("UKR", "UA"),
    ("UMI", "UM"),
    ("URY", "UY"),
    ("USA", "US"),
    ("UZB", "UZ"),
    ("VAT", "VA"),
    ("VCT", "VC"),
    ("VEN", "VE"),
    ("VGB", "VG"),
    ("VIR", "VI"),
    ("VNM", "VN"),
    ("VUT", "VU"),
    ("WLF", "WF"),
    ("WSM", "WS"),
    ("YEM", "YE"),
    ("ZAF", "ZA"),
    ("ZMB", "ZM"),
    ("ZWE", "ZW"),
];
