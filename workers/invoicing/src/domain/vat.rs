//! The VAT decision: which rule applies to a sale, whose rates, and why.
//!
//! The tree, in the order it is checked (EU VAT Directive 2006/112/EC):
//! 1. the seller is not VAT-registered → no VAT (small business), domestic treatment;
//! 2. destination outside the EU → export, 0 % (Art. 146), with the exemption wording;
//! 3. destination = the seller's country → domestic rates;
//! 4. another EU country, business buyer with a VAT id of valid format *for the destination
//!    country* (and not found invalid by a registry check) → intra-Community supply, 0 %,
//!    reverse charge (Art. 138, 196), both VAT ids printed;
//! 5. another EU country otherwise (consumer, or no valid VAT id) → distance sale: the
//!    seller's rates while the store's cross-border EU B2C sales stay within EUR 10,000 in
//!    the previous and the current calendar year; the destination's rates (OSS, Art. 59c,
//!    369a ff.) from the sale that crosses the threshold on.
//!
//! Product categories then pick the rate per line from the chosen country's table
//! ([`super::rates`]). The decision carries a machine-readable rule and a sentence for the
//! accountant; both are stored on the invoice.

use chrono::NaiveDate;
use orderly_contracts::messages::VatTreatment;
use orderly_contracts::types::{CountryCode, TaxCategory, VatId};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::rates::Rates;

/// The EU distance-sales threshold (Art. 59c): EUR 10,000 a calendar year.
pub const DISTANCE_SALES_THRESHOLD_EUR: Decimal = Decimal::from_parts(10_000, 0, 0, false, 0);

/// Wording printed on reverse-charge invoices.
pub const REVERSE_CHARGE_WORDING: &str = "Reverse charge: intra-Community supply of goods exempt \
     under Art. 138 of Directive 2006/112/EC; VAT to be accounted for by the recipient \
     (Art. 196 of Directive 2006/112/EC).";

/// Wording printed on export invoices.
pub const EXPORT_WORDING: &str =
    "VAT exempt: export of goods outside the European Union (Art. 146 of Directive 2006/112/EC).";

/// Wording printed when the seller charges no VAT because it is not registered.
pub const SMALL_BUSINESS_WORDING: &str =
    "No VAT charged: the seller is not registered for VAT (small business scheme).";

/// Which branch of the tree applied. Stored on the invoice (`rule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Seller not registered for VAT.
    SellerNotRegistered,
    /// Same country as dispatch.
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
            Self::SellerNotRegistered => "seller_not_registered",
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
            Self::SellerNotRegistered | Self::Domestic | Self::DistanceSaleBelowThreshold => {
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

/// Everything the decision needs, as plain values.
#[derive(Debug, Clone)]
pub struct Sale<'a> {
    /// Where goods are dispatched from (the store's country).
    pub seller_country: CountryCode,
    /// The seller's VAT id; `None` for a seller not registered for VAT.
    pub seller_vat_id: Option<&'a VatId>,
    /// Where goods go (the shipping address).
    pub destination: CountryCode,
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

/// The outcome, stored on the invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VatDecision {
    /// Which branch applied.
    pub rule: Rule,
    /// Why, in a sentence an accountant can read.
    pub reason: String,
    /// Whose rates apply (`None`: everything at 0 %).
    pub rate_country: Option<CountryCode>,
    /// The buyer's VAT id as printed (reverse charge only).
    pub buyer_vat_id: Option<VatId>,
    /// How far that id was checked (reverse charge only).
    pub vat_id_check: Option<VatIdCheck>,
    /// Legal wording to print, if any.
    pub legal_note: Option<String>,
    /// Whether this sale counts toward the distance-sales threshold.
    pub counts_toward_threshold: bool,
}

/// A sale the rules cannot decide.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VatError {
    /// Orderly's rules are written for sellers established in the EU.
    #[error(
        "the seller's country {0} is not an EU member state; Orderly only invoices for sellers established in the EU"
    )]
    SellerOutsideEu(CountryCode),
    /// No rates for that day.
    #[error("no VAT rates of {country} are known for {date} (the rate table starts in 2016)")]
    NoRates {
        /// The country.
        country: CountryCode,
        /// The day.
        date: NaiveDate,
    },
}

/// Checks that `raw` is a VAT id of valid format for `country`. The error says why not.
pub fn vat_id_for(raw: &str, country: CountryCode) -> Result<VatId, String> {
    let id = VatId::parse(raw).map_err(|e| e.to_string())?;
    if id.country() != country {
        return Err(format!(
            "VAT id {} belongs to {}, but the goods go to {}",
            id.as_str(),
            id.country(),
            country
        ));
    }
    Ok(id)
}

/// Decides the VAT treatment of a sale.
pub fn decide(sale: &Sale<'_>) -> Result<VatDecision, VatError> {
    let seller = sale.seller_country;
    if !seller.is_eu() {
        return Err(VatError::SellerOutsideEu(seller));
    }
    let dest = sale.destination;
    let base = VatDecision {
        rule: Rule::Domestic,
        reason: String::new(),
        rate_country: Some(seller),
        buyer_vat_id: None,
        vat_id_check: None,
        legal_note: None,
        counts_toward_threshold: false,
    };
    let rates_of = |country: CountryCode| {
        Rates::on(country, sale.supply_date).ok_or(VatError::NoRates {
            country,
            date: sale.supply_date,
        })
    };
    if sale.seller_vat_id.is_none() {
        return Ok(VatDecision {
            rule: Rule::SellerNotRegistered,
            reason: "the seller has no VAT id (not registered for VAT): no VAT is charged"
                .to_owned(),
            rate_country: None,
            legal_note: Some(SMALL_BUSINESS_WORDING.to_owned()),
            ..base
        });
    }
    if !dest.is_eu() {
        return Ok(VatDecision {
            rule: Rule::Export,
            reason: format!(
                "goods go from {seller} to {dest}, outside the EU: export of goods, zero-rated"
            ),
            rate_country: None,
            legal_note: Some(EXPORT_WORDING.to_owned()),
            ..base
        });
    }
    if dest == seller {
        let rates = rates_of(seller)?;
        return Ok(VatDecision {
            rule: Rule::Domestic,
            reason: format!(
                "goods stay in {seller} (dispatch and delivery): {seller} rates in force since {}",
                rates.since()
            ),
            ..base
        });
    }
    // Another member state.
    let mut why_consumer = if sale.buyer_is_business {
        "the buyer is a business without a VAT id".to_owned()
    } else {
        "the buyer is a consumer".to_owned()
    };
    if sale.buyer_is_business
        && let Some(raw) = sale.buyer_vat_id
    {
        match (vat_id_for(raw, dest), &sale.registry) {
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
                        "goods go from {seller} to {dest}, to a business with VAT id {} ({}): \
                         intra-Community supply, 0 %, the buyer accounts for the VAT",
                        id.as_str(),
                        if check == VatIdCheck::Verified {
                            "verified with the registry"
                        } else {
                            "format checked only"
                        }
                    ),
                    rate_country: None,
                    buyer_vat_id: Some(id),
                    vat_id_check: Some(check),
                    legal_note: Some(REVERSE_CHARGE_WORDING.to_owned()),
                    ..base
                });
            }
            (Err(why), _) => {
                why_consumer = format!("the buyer's VAT id is not valid ({why})");
            }
        }
    }
    // Distance sale to a consumer (or a business treated as one).
    let threshold = DISTANCE_SALES_THRESHOLD_EUR;
    let over = if sale.distance_sales_previous_year > threshold {
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
    };
    match over {
        Some(why_over) => {
            let rates = rates_of(dest)?;
            Ok(VatDecision {
                rule: Rule::DistanceSaleOss,
                reason: format!(
                    "goods go from {seller} to {dest} and {why_consumer}: distance sale; \
                     {why_over}: {dest} rates in force since {} (One-Stop-Shop)",
                    rates.since()
                ),
                rate_country: Some(dest),
                counts_toward_threshold: true,
                ..base
            })
        }
        None => {
            let rates = rates_of(seller)?;
            Ok(VatDecision {
                rule: Rule::DistanceSaleBelowThreshold,
                reason: format!(
                    "goods go from {seller} to {dest} and {why_consumer}: distance sale; \
                     the store's EU distance sales stay within EUR {threshold} \
                     (last year EUR {}, this year EUR {} with this sale): {seller} rates in force since {}",
                    sale.distance_sales_previous_year,
                    sale.distance_sales_this_year + sale.this_sale_eur.unwrap_or_default(),
                    rates.since()
                ),
                counts_toward_threshold: true,
                ..base
            })
        }
    }
}

/// The rate (percent) of a product category under a decision on a day.
pub fn rate_for(
    decision: &VatDecision,
    category: TaxCategory,
    date: NaiveDate,
) -> Result<Decimal, VatError> {
    match decision.rate_country {
        None => Ok(Decimal::ZERO),
        Some(country) => Rates::on(country, date)
            .map(|r| r.for_category(category))
            .ok_or(VatError::NoRates { country, date }),
    }
}

/// The rate of shipping: the standard rate of the country whose rates apply (see the docs:
/// shipping follows the standard rate rather than being split over the goods' rates).
pub fn shipping_rate(decision: &VatDecision, date: NaiveDate) -> Result<Decimal, VatError> {
    rate_for(decision, TaxCategory::Standard, date)
}
