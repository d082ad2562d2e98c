//! Invoicing's pure rules: no I/O, unit-tested with plain values.
//!
//! - [`rates`]: the dated rate data per rate area and class (loaded from a file, not code);
//! - [`territory`]: where a country and postcode is for VAT (inside the EU VAT area or not);
//! - [`vat`]: the decision tree (domestic, intra-Community supply, distance sale/OSS,
//!   export, small business);
//! - [`amounts`]: pricing, discounts and rounding (per line or per document);
//! - [`credit`]: what a credit note may credit, and its amounts;
//! - [`document`]: the immutable snapshot printed on an invoice or credit note;
//! - [`language`]: the document's language (from the store's locale) and every printed text;
//! - [`plan_invoice`] and [`format_number`] tie them together for the handler.

pub mod amounts;
pub mod credit;
pub mod document;
pub mod fx;
pub mod greek_islands;
pub mod language;
pub mod numbers;
pub mod rates;
pub mod territory;
pub mod vat;

use chrono::NaiveDate;
use orderly_contracts::messages::{InvoiceRequested, StoreInvoiceSettingsUpdated};
use rust_decimal::Decimal;

use amounts::{DocumentInput, LineInput, Priced};
use language::{Label, Language};
use orderly_contracts::messages::Address;
use orderly_contracts::types::TaxCategory;
use rates::Rates;
use vat::{RegistryAnswer, Sale, VatDecision, VatError, Where};

/// The state the decision needs besides the request and the settings.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The day of supply.
    pub supply_date: NaiveDate,
    /// What a registry said about the buyer's VAT id.
    pub registry: RegistryAnswer,
    /// The store's EU distance sales (net, EUR) last calendar year.
    pub distance_sales_previous_year: Decimal,
    /// The same, this calendar year so far.
    pub distance_sales_this_year: Decimal,
    /// The address the goods leave from (the shipment's warehouse); `None`: the store's.
    pub dispatch_from: Option<&'a Address>,
    /// A warehouse the request names whose address is not known (the store's is used, and
    /// the reason says so).
    pub unknown_warehouse: Option<&'a str>,
    /// The rate data (the configured file, the store's own rows over it).
    pub rates: Rates<'a>,
    /// The ECB's reference rates around the supply date (VAT in the national currency).
    pub fx: Option<&'a fx::FxTable>,
}

/// A decided and priced invoice, before it has a number.
#[derive(Debug, Clone)]
pub struct InvoicePlan {
    /// The VAT decision.
    pub decision: VatDecision,
    /// The priced lines and totals.
    pub priced: Priced,
    /// Net EUR to add to the store's distance-sales total for the year (0 if none).
    pub distance_sales_added: Decimal,
    /// The VAT in the national currency where it is due, when the invoice is in another
    /// (Art. 230).
    pub vat_national: Option<fx::Conversion>,
}

fn price_with(
    request: &InvoiceRequested,
    settings: &StoreInvoiceSettingsUpdated,
    decision: &VatDecision,
    cx: &Context<'_>,
) -> Result<Priced, VatError> {
    let date = cx.supply_date;
    let mut lines = Vec::with_capacity(request.lines.len() + 1);
    for l in &request.lines {
        lines.push(LineInput {
            line_id: l.line_id.clone(),
            sku: l.sku.as_str().to_owned(),
            title: l.title.clone(),
            category: l.tax_category,
            quantity: l.quantity.get(),
            unit_price: l.unit_price.value(),
            discount: l.discount.value(),
            rate: vat::rate_for(decision, cx.rates, l.tax_category, l.tax_class, date)?,
            exemption_reference: (l.tax_category == TaxCategory::Exempt)
                .then(|| l.exemption_reference.clone())
                .flatten(),
        });
    }
    if !request.shipping.is_zero() {
        // The shipping line's title is printed: in the store's language.
        let title = Language::from_locale(settings.locale.as_str()).label(Label::Shipping);
        let scale = u32::from(request.currency.minor_units().unwrap_or(2));
        lines.extend(shipping_lines(
            &lines,
            request.shipping.value(),
            title,
            scale,
        ));
    }
    Ok(amounts::price(&DocumentInput {
        lines,
        order_discount: request.discount.value(),
        prices_include_tax: request.prices_include_tax,
        policy: settings.rounding,
        scale: u32::from(request.currency.minor_units().unwrap_or(2)),
    }))
}

/// Shipping follows the goods it carries (an ancillary supply takes the principal supply's
/// treatment): at the goods' rate when they have one, split over their rates in proportion
/// to their amounts when they have several (largest remainder, so the parts add up to the
/// charge). The first part keeps the id `shipping`, the others `shipping/2`, ...; crediting
/// shipping credits them all.
fn shipping_lines(goods: &[LineInput], amount: Decimal, title: &str, scale: u32) -> Vec<LineInput> {
    let mut groups: Vec<((Decimal, TaxCategory), Decimal)> = Vec::new();
    for l in goods {
        let key = (l.rate.normalize(), shipping_category(l.category));
        let value = (l.unit_price * Decimal::from(l.quantity) - l.discount).max(Decimal::ZERO);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v += value,
            None => groups.push((key, value)),
        }
    }
    // Highest amount first: the main part keeps the plain `shipping` id.
    groups.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.0.cmp(&a.0.0)));
    if groups.iter().all(|(_, v)| v.is_zero()) {
        groups.truncate(1);
    }
    let weights: Vec<Decimal> = groups.iter().map(|(_, v)| *v).collect();
    let shares = if groups.len() == 1 {
        vec![amount]
    } else {
        amounts::allocate(amount, &weights, scale)
    };
    let several = groups.len() > 1;
    groups
        .iter()
        .zip(shares)
        .enumerate()
        .filter(|(_, (_, share))| !share.is_zero())
        .map(|(i, (((rate, category), _), share))| LineInput {
            line_id: credit::shipping_line_id(i),
            sku: String::new(),
            title: if several {
                format!("{title} ({rate} %)")
            } else {
                title.to_owned()
            },
            category: *category,
            quantity: 1,
            unit_price: share,
            discount: Decimal::ZERO,
            rate: *rate,
            exemption_reference: None,
        })
        .collect()
}

/// The category shipping takes beside goods of `category`: exempt goods make exempt
/// shipping, zero-rated ones zero-rated, every taxed rate the standard category (the rate
/// itself is carried beside it).
fn shipping_category(category: TaxCategory) -> TaxCategory {
    match category {
        TaxCategory::Exempt | TaxCategory::Zero => category,
        _ => TaxCategory::Standard,
    }
}

/// Decides the VAT of a request and prices it.
///
/// The sale's value for the EUR 10,000 threshold is its net at the dispatch state's own
/// rates (the rates it is taxed at while under the threshold); the amount then added to
/// the year's total is the net actually invoiced.
pub fn plan_invoice(
    request: &InvoiceRequested,
    settings: &StoreInvoiceSettingsUpdated,
    cx: &Context<'_>,
) -> Result<InvoicePlan, VatError> {
    let dispatch = cx.dispatch_from.unwrap_or(&settings.address);
    let dispatch_area = territory::locate(dispatch.country, dispatch.postal_code.as_deref())
        .place
        .rate_area();
    let this_sale_eur = match dispatch_area {
        Some(area) if request.currency.as_str() == "EUR" => {
            let own = VatDecision::at(area, vat::Rule::Domestic, String::new());
            Some(price_with(request, settings, &own, cx)?.net)
        }
        _ => None,
    };
    let sale = Sale {
        establishment: Where::of(&settings.address),
        dispatch: Where::of(dispatch),
        destination: Where::of(&request.shipping_address),
        seller_vat_id: settings.vat_id.as_ref(),
        small_business: settings.small_business.as_deref(),
        sme_cross_border: settings
            .sme_cross_border
            .as_ref()
            .map(|sme| vat::CrossBorderSme {
                ex_number: &sme.ex_number,
                states: &sme.member_states,
            }),
        oss_registered: settings.oss_registered,
        buyer_is_business: request.buyer.is_business,
        buyer_vat_id: request.buyer.vat_id.as_ref().map(|v| v.as_str()),
        registry: cx.registry.clone(),
        supply_date: cx.supply_date,
        distance_sales_previous_year: cx.distance_sales_previous_year,
        distance_sales_this_year: cx.distance_sales_this_year,
        this_sale_eur,
    };
    let einvoice = document::EinvoiceData::of(settings, &request.buyer);
    let missing = einvoice.missing();
    if let (Some(format), false) = (einvoice.format, missing.is_empty()) {
        return Err(VatError::EinvoiceIncomplete {
            format: format.as_str().to_owned(),
            missing: missing.join(", "),
        });
    }
    let mut decision = vat::decide(&sale, cx.rates)?;
    if let Some(w) = cx.unknown_warehouse {
        decision.reason.push_str(&format!(
            " (warehouse {w} is not known to invoicing yet: the store's address was taken as where the goods leave from)"
        ));
    }
    let priced = price_with(request, settings, &decision, cx)?;
    let vat_national = national_vat(request, settings, &decision, &priced, cx)?;
    let distance_sales_added =
        if decision.counts_toward_threshold && request.currency.as_str() == "EUR" {
            priced.net
        } else {
            Decimal::ZERO
        };
    Ok(InvoicePlan {
        decision,
        priced,
        distance_sales_added,
        vat_national,
    })
}

/// The VAT in the national currency of the member state whose invoicing rules apply
/// (Art. 219a: where the supply is taxed; the seller's own state for sales declared through
/// the OSS), when the invoice is in another currency and charges VAT (Art. 230, at the ECB
/// rate of Art. 91). Refused when the rate is not loaded.
fn national_vat(
    request: &InvoiceRequested,
    settings: &StoreInvoiceSettingsUpdated,
    decision: &VatDecision,
    priced: &Priced,
    cx: &Context<'_>,
) -> Result<Option<fx::Conversion>, VatError> {
    let Some(area) = &decision.rate_area else {
        return Ok(None);
    };
    if priced.tax.is_zero() {
        return Ok(None);
    }
    let state = if decision.rule == vat::Rule::DistanceSaleOss && settings.oss_registered {
        territory::locate(
            settings.address.country,
            settings.address.postal_code.as_deref(),
        )
        .place
        .state()
        .unwrap_or("")
        .to_owned()
    } else {
        rates::parent_area(area).unwrap_or(area).to_owned()
    };
    let Some(national) = fx::national_currency(&state, cx.supply_date) else {
        return Ok(None);
    };
    let currency = request.currency.as_str();
    if national == currency {
        return Ok(None);
    }
    cx.fx
        .and_then(|t| t.convert(priced.tax, currency, national, cx.supply_date))
        .map(Some)
        .ok_or_else(|| VatError::NoExchangeRate {
            from: currency.to_owned(),
            to: national.to_owned(),
            date: cx.supply_date,
        })
}

/// The printed number: prefix, the year when the series resets yearly, and the running
/// number zero-padded to `digits` (`RE-` `2026-` `000042`).
pub fn format_number(prefix: &str, yearly: Option<i32>, digits: u8, n: i64) -> String {
    let width = usize::from(digits);
    match yearly {
        Some(year) => format!("{prefix}{year}-{n:0width$}"),
        None => format!("{prefix}{n:0width$}"),
    }
}

#[cfg(test)]
mod tests;
