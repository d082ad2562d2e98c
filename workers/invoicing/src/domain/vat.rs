//! The VAT decision: which rule applies to a sale, whose rates, and why.
//!
//! The tree, in the order it is checked (Directive 2006/112/EC; places from [`territory`]):
//! 1. the seller is established outside the EU VAT area, or the goods leave from outside it
//!    (an import) → refused: Orderly invoices for EU sellers shipping from inside the EU;
//! 2. the store declares a small-business scheme (e.g. § 19 UStG) → no VAT, with the scheme
//!    named, where the sale takes place in its own state or (with the EU cross-border
//!    scheme, Art. 284(2)) in a state it notified; refused where it takes place elsewhere (a
//!    warehouse in another state, distance sales over the threshold), see `small_business`;
//!    a store with neither a VAT id nor such a declaration → refused (never guessed);
//! 3. destination outside the EU VAT area (a third country, or a territory such as the
//!    Canary Islands or Åland) → export, 0 % (Art. 146);
//! 4. destination = dispatch state → domestic, that state's rates (the warehouse's state
//!    when it is not the seller's: the seller is registered there);
//! 5. another state, business buyer with a VAT id of valid format of an EU state other than
//!    the dispatch state (and not refused by a registry) → intra-Community supply, exempt
//!    (Art. 138), both VAT ids printed; a buyer with a VAT id of the dispatch state is taxed
//!    there (Art. 32);
//! 6. another state otherwise (consumer, or no valid VAT id) → distance sale (Art. 33): the
//!    dispatch state's rates only while (a) the goods leave from the state where the seller
//!    is established, (b) the store has not opted for destination taxation (an
//!    OSS-registered store has, Art. 59c(3)), and (c) its cross-border B2C sales stay within
//!    EUR 10,000 in the previous and the current year (Art. 59c); the destination's rates
//!    otherwise (declared through the OSS, or the seller's own return when the destination
//!    is the seller's own state).
//!
//! Rates per line then come from the dated rate data ([`super::rates`]) of the chosen rate
//! area (`PT-20` for the Azores; `GR-ISL` when a seller established on a Greek island of
//! Art. 26(4) sends goods from one, [`super::greek_islands`]): a line's product class first, its category otherwise.
//! The decision carries a machine-readable rule and a sentence for the accountant; both are
//! stored with the invoice (the sentence is the audit record, never printed).

use chrono::NaiveDate;
use orderly_contracts::messages::VatTreatment;
use orderly_contracts::types::{CountryCode, TaxCategory, TaxClass, VatId};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::greek_islands;
use super::rates::{Found, Rates};
use super::territory::{self, Located, VatPlace};

/// The EU distance-sales threshold (Art. 59c): EUR 10,000 a calendar year.
pub const DISTANCE_SALES_THRESHOLD_EUR: Decimal = Decimal::from_parts(10_000, 0, 0, false, 0);

/// Wording printed on intra-Community supplies (Art. 226(11) and 226(4)).
pub const REVERSE_CHARGE_WORDING: &str = "VAT-exempt intra-Community supply of goods \
     (Art. 138 of Directive 2006/112/EC); the acquisition is taxed in the buyer's Member State.";

/// Wording printed on export invoices.
pub const EXPORT_WORDING: &str =
    "VAT exempt: export of goods outside the European Union (Art. 146 of Directive 2006/112/EC).";

/// Wording printed when the seller charges no VAT under a small-business scheme; the
/// store's own reference (`§ 19 UStG`) follows it.
pub const SMALL_BUSINESS_WORDING: &str = "No VAT charged: the seller applies the small-business exemption (Art. 284 ff. of Directive 2006/112/EC).";

/// Which branch of the tree applied. Stored on the invoice (`rule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The seller applies a small-business exemption scheme.
    #[serde(alias = "seller_not_registered")]
    SmallBusiness,
    /// Taxed in the dispatch state (same state, or a business buyer of that state).
    Domestic,
    /// Intra-EU business sale with a valid VAT id.
    IntraEuReverseCharge,
    /// Intra-EU consumer sale within the threshold: seller's rates.
    DistanceSaleBelowThreshold,
    /// Intra-EU consumer sale beyond the threshold: destination rates (OSS).
    DistanceSaleOss,
    /// Outside the EU.
    Export,
}

impl Rule {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SmallBusiness => "small_business",
            Self::Domestic => "domestic",
            Self::IntraEuReverseCharge => "intra_eu_reverse_charge",
            Self::DistanceSaleBelowThreshold => "distance_sale_below_threshold",
            Self::DistanceSaleOss => "distance_sale_oss",
            Self::Export => "export",
        }
    }

    /// The contract's treatment for this rule.
    pub fn treatment(self) -> VatTreatment {
        match self {
            Self::SmallBusiness | Self::Domestic | Self::DistanceSaleBelowThreshold => {
                VatTreatment::Domestic
            }
            Self::IntraEuReverseCharge => VatTreatment::IntraEuReverseCharge,
            Self::DistanceSaleOss => VatTreatment::OssDistanceSale,
            Self::Export => VatTreatment::ExportZeroRated,
        }
    }
}

/// How far a buyer's VAT id was checked. Recorded on the invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VatIdCheck {
    /// Only the format was checked (no registry was asked).
    FormatChecked,
    /// A registry (VIES) confirmed the number.
    Verified,
}

impl VatIdCheck {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FormatChecked => "format_checked",
            Self::Verified => "verified",
        }
    }
}

/// What a registry said about a VAT id (see [`crate::vies`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryAnswer {
    /// No registry consulted: format check only.
    NotChecked,
    /// The registry confirmed the number.
    Valid,
    /// The registry says the number is not valid, with its words.
    Invalid(String),
}

/// A place as an address gives it.
#[derive(Debug, Clone, Copy)]
pub struct Where<'a> {
    /// The country.
    pub country: CountryCode,
    /// The postcode, if any.
    pub postcode: Option<&'a str>,
}

impl<'a> Where<'a> {
    /// A place from an address.
    pub fn of(address: &'a orderly_contracts::messages::Address) -> Self {
        Self {
            country: address.country,
            postcode: address.postal_code.as_deref(),
        }
    }
}

/// Everything the decision needs, as plain values.
#[derive(Debug, Clone)]
pub struct Sale<'a> {
    /// Where the seller is established (the store's address).
    pub establishment: Where<'a>,
    /// Where the goods leave from: the warehouse's address, or the store's when unknown.
    pub dispatch: Where<'a>,
    /// Where the goods go (the shipping address).
    pub destination: Where<'a>,
    /// The seller's VAT id.
    pub seller_vat_id: Option<&'a VatId>,
    /// The small-business scheme the store declares (its legal reference), if any.
    pub small_business: Option<&'a str>,
    /// The EU cross-border small-enterprise scheme (Art. 284(2)), if the store uses it.
    pub sme_cross_border: Option<CrossBorderSme<'a>>,
    /// Whether the store reports distance sales through the OSS (and so has opted for
    /// destination taxation from the first euro, Art. 59c(3)).
    pub oss_registered: bool,
    /// Whether the buyer buys as a business.
    pub buyer_is_business: bool,
    /// The buyer's VAT id as given (checked here; a malformed one makes a consumer sale).
    pub buyer_vat_id: Option<&'a str>,
    /// The registry's answer about the buyer's VAT id.
    pub registry: RegistryAnswer,
    /// The day of supply: picks the rates in force.
    pub supply_date: NaiveDate,
    /// The store's cross-border EU B2C sales (net, EUR) in the previous calendar year.
    pub distance_sales_previous_year: Decimal,
    /// The same, in the current year before this sale.
    pub distance_sales_this_year: Decimal,
    /// This sale's value for the threshold (net at the seller's rates, EUR); `None` when
    /// the invoice is not in EUR and cannot be converted.
    pub this_sale_eur: Option<Decimal>,
}

/// A small business's registration for the cross-border scheme: the `EX` number and the
/// other Member States where it is exempt.
#[derive(Debug, Clone, Copy)]
pub struct CrossBorderSme<'a> {
    /// The identification number with the suffix `EX` (Art. 284(3)).
    pub ex_number: &'a str,
    /// The Member States it notified.
    pub states: &'a [CountryCode],
}

/// The outcome, stored on the invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VatDecision {
    /// Which branch applied.
    pub rule: Rule,
    /// Why, in a sentence an accountant can read (the audit record; not printed).
    pub reason: String,
    /// Whose rates apply: a rate area (`DE`, `PT-20`, `XI`); `None`: everything at 0 %.
    pub rate_area: Option<String>,
    /// The buyer's VAT id as printed (intra-Community supply only).
    pub buyer_vat_id: Option<VatId>,
    /// How far that id was checked (intra-Community supply only).
    pub vat_id_check: Option<VatIdCheck>,
    /// Legal wording to print, if any (English; the document prints its language's).
    pub legal_note: Option<String>,
    /// The store's small-business reference, printed after the wording.
    pub small_business: Option<String>,
    /// Whether this sale counts toward the distance-sales threshold.
    pub counts_toward_threshold: bool,
}

impl VatDecision {
    /// Taxed in `area` with nothing else to say (the seller's own rates; a base for plans).
    pub fn at(area: &str, rule: Rule, reason: String) -> Self {
        Self {
            rule,
            reason,
            rate_area: Some(area.to_owned()),
            buyer_vat_id: None,
            vat_id_check: None,
            legal_note: None,
            small_business: None,
            counts_toward_threshold: false,
        }
    }

    fn zero(rule: Rule, reason: String, note: &str) -> Self {
        Self {
            rate_area: None,
            legal_note: Some(note.to_owned()),
            ..Self::at("", rule, reason)
        }
    }
}

/// A sale the rules cannot decide.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VatError {
    /// Orderly's rules are written for sellers established in the EU VAT area.
    #[error(
        "the seller is established in {0}, outside the EU VAT area; Orderly only invoices for sellers established in the EU"
    )]
    SellerOutsideEu(String),
    /// Goods leaving from outside the EU VAT area are imports.
    #[error(
        "the goods leave from {0}, outside the EU VAT area: an import, which Orderly does not invoice (no IOSS)"
    )]
    DispatchOutsideEu(String),
    /// Neither a VAT id nor a small-business declaration.
    #[error(
        "the store has no VAT id and does not declare a small-business scheme: set `vat_id`, or `small_business` with its legal reference, in the store's invoice settings"
    )]
    NoVatStatus,
    /// A small business's sale taking place in a state where no exemption of its own applies.
    #[error(
        "the store is a small business exempt in {seat}, but this sale takes place in {place} ({why}), where it has no exemption: declare the EU cross-border small-enterprise scheme for {place} (`sme_cross_border`, Art. 284(2)) or register for VAT there and drop `small_business`"
    )]
    SmallBusinessNotExemptThere {
        /// The seller's state.
        seat: String,
        /// Where the sale takes place.
        place: String,
        /// Why it takes place there.
        why: String,
    },
    /// The structured e-invoice the store or the buyer asks for lacks data it requires.
    #[error("a {format} e-invoice is asked for, but it needs {missing}")]
    EinvoiceIncomplete {
        /// The format.
        format: String,
        /// What is missing, in words.
        missing: String,
    },
    /// The VAT must also be stated in another currency, and no reference rate is loaded.
    #[error(
        "the VAT must also be stated in {to} (Art. 230), but no ECB reference rate of {from} and {to} is loaded for the week up to {date}: load the ECB's rates with `orderly vat fx FILE`"
    )]
    NoExchangeRate {
        /// The invoice currency.
        from: String,
        /// The national currency.
        to: String,
        /// The supply date.
        date: NaiveDate,
    },
    /// No rates for that day.
    #[error("no VAT rates of {area} are known for {date} (the rate data starts in 2016)")]
    NoRates {
        /// The rate area.
        area: String,
        /// The day.
        date: NaiveDate,
    },
}

/// The EU state a VAT id belongs to for goods (`GR` for `EL`, `XI` for Northern Ireland),
/// or why it is not an EU VAT id.
fn eu_state_of(id: &VatId) -> Result<&'static str, String> {
    match id.country_prefix() {
        "XI" => Ok("XI"),
        _ if id.country().is_eu() => Ok(id.country().as_str()),
        _ => Err(format!(
            "{} is a VAT id of {}, not of an EU Member State",
            id.as_str(),
            id.country()
        )),
    }
}

/// Checks that `raw` is an EU VAT id of valid format of a state other than `dispatch`.
/// The error says why not.
pub fn vat_id_for(raw: &str, dispatch: &str) -> Result<VatId, String> {
    let id = VatId::parse(raw).map_err(|e| e.to_string())?;
    let state = eu_state_of(&id)?;
    if state == dispatch {
        return Err(format!(
            "VAT id {} is of {state}, the state the goods leave from (Art. 138 needs another Member State's)",
            id.as_str()
        ));
    }
    Ok(id)
}

fn inside(located: &Located, country: CountryCode) -> Result<(&'static str, &'static str), String> {
    match located.place {
        VatPlace::Inside {
            state, rate_area, ..
        } => Ok((state, rate_area)),
        VatPlace::Outside { .. } => Err(located.place.describe(country)),
    }
}

fn mainland_note(located: &Located, what: &str) -> String {
    if located.assumed_mainland {
        format!(" ({what} has no postcode: mainland assumed)")
    } else {
        String::new()
    }
}

/// Decides the VAT treatment of a sale. `rates` is only asked whether the chosen area has
/// rates on the day (so a decision is never made that no line can be priced by).
pub fn decide(sale: &Sale<'_>, rates: Rates<'_>) -> Result<VatDecision, VatError> {
    let seat = territory::locate(sale.establishment.country, sale.establishment.postcode);
    let (seat_state, _) =
        inside(&seat, sale.establishment.country).map_err(VatError::SellerOutsideEu)?;
    let from = territory::locate(sale.dispatch.country, sale.dispatch.postcode);
    let (from_state, from_area) =
        inside(&from, sale.dispatch.country).map_err(VatError::DispatchOutsideEu)?;
    let to = territory::locate(sale.destination.country, sale.destination.postcode);
    let from_name = from.place.describe(sale.dispatch.country);
    let to_name = to.place.describe(sale.destination.country);
    let notes = format!(
        "{}{}",
        mainland_note(&from, "the dispatch address"),
        mainland_note(&to, "the delivery address")
    );
    let date = sale.supply_date;
    let since = |area: &str| -> Result<String, VatError> {
        rates
            .find(area, super::rates::RateClass::Standard, date)
            .map(|f: Found| f.since.to_string())
            .ok_or(VatError::NoRates {
                area: area.to_owned(),
                date,
            })
    };

    // The Greek islands' lower rates: a seller established on one, goods leaving from one.
    let island = |at: &Where<'_>| greek_islands::on_island(at.country, at.postcode, date);
    let (from_area, island_note) = match (island(&sale.dispatch), island(&sale.establishment)) {
        (Some(goods), Some(seat)) if from_state == "GR" => (
            greek_islands::AREA,
            format!(
                " (the goods leave from {goods} and the seller is established on {seat}: the islands' rates, 30 % lower, Art. 26(4) of the Greek VAT Code)"
            ),
        ),
        (Some(goods), None) if from_state == "GR" => (
            from_area,
            format!(
                " ({goods} has lower rates only for sellers established on such an island, Art. 26(4) of the Greek VAT Code: the mainland's rates)"
            ),
        ),
        _ => (from_area, String::new()),
    };
    let notes = format!("{island_note}{notes}");
    let to_inside = inside(&to, sale.destination.country).ok();

    if let Some(scheme) = sale.small_business {
        return small_business(sale, scheme, seat_state, from_state, to_inside, &notes);
    }
    if sale.seller_vat_id.is_none() {
        return Err(VatError::NoVatStatus);
    }
    let (to_state, to_area) = match to_inside {
        Some(place) => place,
        None => {
            return Ok(VatDecision::zero(
                Rule::Export,
                format!(
                    "goods go from {from_name} to {to_name}, outside the EU VAT area: export of goods, exempt (Art. 146){notes}"
                ),
                EXPORT_WORDING,
            ));
        }
    };
    let registered_elsewhere = if from_state == seat_state {
        String::new()
    } else {
        format!(
            " (the goods leave from a warehouse in {from_state}, not from {seat_state} where the seller is established: the seller is registered for VAT in {from_state})"
        )
    };
    if to_state == from_state {
        return Ok(VatDecision::at(
            from_area,
            Rule::Domestic,
            format!(
                "goods go from {from_name} to {to_name}, within {from_state}: taxed where dispatch begins (Art. 32), {from_area} rates in force since {}{registered_elsewhere}{notes}",
                since(from_area)?
            ),
        ));
    }
    // Another state.
    let mut why_consumer = if sale.buyer_is_business {
        "the buyer is a business without a VAT id".to_owned()
    } else {
        "the buyer is a consumer".to_owned()
    };
    if sale.buyer_is_business
        && let Some(raw) = sale.buyer_vat_id
    {
        // A business buyer identified in the dispatch state is taxed there (Art. 32).
        if let Ok(id) = VatId::parse(raw)
            && eu_state_of(&id) == Ok(from_state)
            && !matches!(sale.registry, RegistryAnswer::Invalid(_))
        {
            return Ok(VatDecision::at(
                from_area,
                Rule::Domestic,
                format!(
                    "goods go from {from_name} to {to_name} for a business identified in {from_state} ({}): \
                     not an intra-Community supply (Art. 138 needs another Member State's VAT id); \
                     taxed where dispatch begins (Art. 32), {from_area} rates in force since {}{registered_elsewhere}{notes}",
                    id.as_str(),
                    since(from_area)?
                ),
            ));
        }
        match (vat_id_for(raw, from_state), &sale.registry) {
            (Ok(id), RegistryAnswer::Invalid(answer)) => {
                why_consumer = format!(
                    "the buyer's VAT id {} was refused by the registry ({answer})",
                    id.as_str()
                );
            }
            (Ok(id), answer) => {
                let check = if *answer == RegistryAnswer::Valid {
                    VatIdCheck::Verified
                } else {
                    VatIdCheck::FormatChecked
                };
                return Ok(VatDecision {
                    rule: Rule::IntraEuReverseCharge,
                    reason: format!(
                        "goods go from {from_name} to {to_name}, to a business with VAT id {} ({}): \
                         intra-Community supply, exempt (Art. 138), the buyer declares the acquisition{registered_elsewhere}{notes}",
                        id.as_str(),
                        if check == VatIdCheck::Verified {
                            "verified with the registry"
                        } else {
                            "format checked only"
                        }
                    ),
                    buyer_vat_id: Some(id),
                    vat_id_check: Some(check),
                    ..VatDecision::zero(
                        Rule::IntraEuReverseCharge,
                        String::new(),
                        REVERSE_CHARGE_WORDING,
                    )
                });
            }
            (Err(why), _) => {
                why_consumer = format!("the buyer's VAT id is not usable ({why})");
            }
        }
    }
    // A distance sale (Art. 33) to a consumer, or a business treated as one.
    let threshold = DISTANCE_SALES_THRESHOLD_EUR;
    let to_destination = taxed_where_it_arrives(sale, from_state, seat_state);
    match to_destination {
        Some(why) => {
            let own_state = to_state == seat_state;
            let (rule, declared) = if own_state {
                (
                    Rule::Domestic,
                    format!("declared in the seller's own {seat_state} return, not the OSS"),
                )
            } else if sale.oss_registered {
                (Rule::DistanceSaleOss, "declared through the OSS".to_owned())
            } else {
                (
                    Rule::DistanceSaleOss,
                    format!(
                        "the store is not registered for the OSS: it must register for VAT in {to_state} or join the OSS"
                    ),
                )
            };
            Ok(VatDecision {
                counts_toward_threshold: from_state == seat_state,
                ..VatDecision::at(
                    to_area,
                    rule,
                    format!(
                        "goods go from {from_name} to {to_name} and {why_consumer}: distance sale (Art. 33); \
                         {why}: {to_area} rates in force since {}, {declared}{notes}",
                        since(to_area)?
                    ),
                )
            })
        }
        None => Ok(VatDecision {
            counts_toward_threshold: true,
            ..VatDecision::at(
                from_area,
                Rule::DistanceSaleBelowThreshold,
                format!(
                    "goods go from {from_name} to {to_name} and {why_consumer}: distance sale; \
                     the store's EU distance sales stay within the EUR {threshold} threshold of Art. 59c \
                     (last year EUR {}, this year EUR {} with this sale): {from_area} rates in force since {}{notes}",
                    sale.distance_sales_previous_year,
                    sale.distance_sales_this_year + sale.this_sale_eur.unwrap_or_default(),
                    since(from_area)?
                ),
            )
        }),
    }
}

/// A small business's sale (Art. 282 ff.): no VAT where an exemption of its own applies.
///
/// Its exemption covers the sales that take place in its own state (Art. 284(1)), and, with
/// the cross-border scheme, in the other states it notified (Art. 284(2)). Where the sale
/// takes place follows the same rules as anyone's: where dispatch begins (Art. 32), so a
/// warehouse in another state moves it there; a business buyer's VAT id changes nothing
/// (a small business makes no exempt intra-Community supply, Art. 139(1), and its buyer
/// has no acquisition to declare, Art. 2(1)(b)(i)); a distance sale to a consumer moves to
/// where it arrives once the store's distance sales pass the EUR 10,000 threshold
/// (Art. 59c). Where no exemption of its own applies, the sale is refused with what to set:
/// never invoiced without VAT on a guess.
fn small_business(
    sale: &Sale<'_>,
    scheme: &str,
    seat_state: &'static str,
    from_state: &'static str,
    to: Option<(&'static str, &'static str)>,
    notes: &str,
) -> Result<VatDecision, VatError> {
    let (place, why, counts) = match to {
        None => {
            // An export is exempt whoever makes it (Art. 146).
            if from_state != seat_state {
                return Ok(VatDecision::zero(
                    Rule::Export,
                    format!(
                        "goods go from {from_state} to outside the EU VAT area: export of goods, exempt (Art. 146), whatever the seller's small-business status{notes}"
                    ),
                    EXPORT_WORDING,
                ));
            }
            (
                from_state,
                "an export from the seller's own state".to_owned(),
                false,
            )
        }
        Some((to_state, _)) if to_state == from_state => (
            from_state,
            format!("goods delivered within {from_state}, taxed where dispatch begins (Art. 32)"),
            false,
        ),
        Some((to_state, _)) if sale.buyer_is_business && sale.buyer_vat_id.is_some() => (
            from_state,
            format!(
                "to a business in {to_state}: taxed where dispatch begins (Art. 32); a small business makes no exempt intra-Community supply (Art. 139(1)) and the buyer has no acquisition to declare (Art. 2(1)(b)(i))"
            ),
            false,
        ),
        Some((to_state, _)) => match taxed_where_it_arrives(sale, from_state, seat_state) {
            None => (
                from_state,
                format!(
                    "a distance sale to {to_state} within the EUR {DISTANCE_SALES_THRESHOLD_EUR} threshold (Art. 59c; last year EUR {}, this year EUR {} with this sale): taxed where dispatch begins",
                    sale.distance_sales_previous_year,
                    sale.distance_sales_this_year + sale.this_sale_eur.unwrap_or_default(),
                ),
                true,
            ),
            Some(why) => (
                to_state,
                format!("a distance sale to {to_state} (Art. 33): {why}"),
                from_state == seat_state,
            ),
        },
    };
    let (reference, under) = if place == seat_state {
        (
            scheme.to_owned(),
            format!("its own small-business scheme ({scheme})"),
        )
    } else if let Some(sme) = sale
        .sme_cross_border
        .filter(|sme| sme.states.iter().any(|s| s.as_str() == place))
    {
        (
            format!(
                "{place}: Art. 284(2) of Directive 2006/112/EC, {}",
                sme.ex_number
            ),
            format!(
                "the EU cross-border small-enterprise scheme in {place} (Art. 284(2), identification number {})",
                sme.ex_number
            ),
        )
    } else {
        return Err(VatError::SmallBusinessNotExemptThere {
            seat: seat_state.to_owned(),
            place: place.to_owned(),
            why,
        });
    };
    Ok(VatDecision {
        small_business: Some(reference),
        counts_toward_threshold: counts,
        ..VatDecision::zero(
            Rule::SmallBusiness,
            format!(
                "{why}; the sale takes place in {place}, where the seller is exempt under {under}: no VAT is charged{notes}"
            ),
            SMALL_BUSINESS_WORDING,
        )
    })
}

/// Why a distance sale from `from_state` is taxed where it arrives (Art. 59c), or `None`
/// when it stays within the EUR 10,000 threshold and is taxed where dispatch begins.
fn taxed_where_it_arrives(sale: &Sale<'_>, from_state: &str, seat_state: &str) -> Option<String> {
    let threshold = DISTANCE_SALES_THRESHOLD_EUR;
    if from_state != seat_state {
        Some(format!(
            "the goods leave from {from_state}, not from {seat_state} where the seller is established, so the EUR {threshold} threshold does not apply (Art. 59c(1))"
        ))
    } else if sale.oss_registered {
        Some(
            "the store is registered for the OSS and so taxes distance sales where they arrive from the first euro (Art. 59c(3))"
                .to_owned(),
        )
    } else if sale.distance_sales_previous_year > threshold {
        Some(format!(
            "the store's EU distance sales were EUR {} last year, over the EUR {threshold} threshold",
            sale.distance_sales_previous_year
        ))
    } else {
        match sale.this_sale_eur {
            None => Some(
                "the invoice is not in EUR and cannot be counted toward the EUR threshold, \
                 so it is taxed where the goods arrive (the safe side)"
                    .to_owned(),
            ),
            Some(value) => {
                let after = sale.distance_sales_this_year + value;
                (after > threshold).then(|| {
                    if sale.distance_sales_this_year > threshold {
                        format!(
                            "the store's EU distance sales this year (EUR {}) are over the EUR {threshold} threshold",
                            sale.distance_sales_this_year
                        )
                    } else {
                        format!(
                            "this sale takes the store's EU distance sales this year from EUR {} to EUR {after}, over the EUR {threshold} threshold",
                            sale.distance_sales_this_year
                        )
                    }
                })
            }
        }
    }
}

/// The rate (percent) of a line under a decision on a day: its product class where the
/// area has a row for it, its category otherwise; 0 for zero-rated and exempt lines and
/// when the decision charges no VAT.
pub fn rate_for(
    decision: &VatDecision,
    rates: Rates<'_>,
    category: TaxCategory,
    class: Option<TaxClass>,
    date: NaiveDate,
) -> Result<Decimal, VatError> {
    match &decision.rate_area {
        None => Ok(Decimal::ZERO),
        Some(area) => match rates.for_line(area, category, class, date) {
            Ok(found) => Ok(found.map_or(Decimal::ZERO, |f| f.rate)),
            Err(_) => Err(VatError::NoRates {
                area: area.clone(),
                date,
            }),
        },
    }
}
