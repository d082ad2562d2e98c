//! Invoicing's pure rules: no I/O, unit-tested with plain values.
//!
//! - [`rates`]: the EU-27 rate table with effective dates (data, not code);
//! - [`vat`]: the decision tree (domestic, reverse charge, distance sale/OSS, export);
//! - [`amounts`]: pricing, discounts and rounding (per line or per document);
//! - [`credit`]: what a credit note may credit, and its amounts;
//! - [`document`]: the immutable snapshot printed on an invoice or credit note;
//! - [`language`]: the document's language (from the store's locale) and every printed text;
//! - [`plan_invoice`] and [`format_number`] tie them together for the handler.

pub mod amounts;
pub mod credit;
pub mod document;
pub mod language;
pub mod rates;
pub mod vat;

use chrono::NaiveDate;
use orderly_contracts::messages::{InvoiceRequested, StoreInvoiceSettingsUpdated};
use rust_decimal::Decimal;

use amounts::{DocumentInput, LineInput, Priced};
use language::{Label, Language};
use vat::{RegistryAnswer, Sale, VatDecision, VatError};

/// The state the decision needs besides the request and the settings.
#[derive(Debug, Clone)]
pub struct Context {
    /// The day of supply.
    pub supply_date: NaiveDate,
    /// What a registry said about the buyer's VAT id.
    pub registry: RegistryAnswer,
    /// The store's EU distance sales (net, EUR) last calendar year.
    pub distance_sales_previous_year: Decimal,
    /// The same, this calendar year so far.
    pub distance_sales_this_year: Decimal,
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
}

fn price_with(
    request: &InvoiceRequested,
    settings: &StoreInvoiceSettingsUpdated,
    decision: &VatDecision,
    date: NaiveDate,
) -> Result<Priced, VatError> {
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
            rate: vat::rate_for(decision, l.tax_category, date)?,
        });
    }
    if !request.shipping.is_zero() {
        lines.push(LineInput {
            line_id: credit::SHIPPING_LINE.to_owned(),
            sku: String::new(),
            // The shipping line's title is printed: in the store's language.
            title: Language::from_locale(settings.locale.as_str())
                .label(Label::Shipping)
                .to_owned(),
            category: orderly_contracts::types::TaxCategory::Standard,
            quantity: 1,
            unit_price: request.shipping.value(),
            discount: Decimal::ZERO,
            rate: vat::shipping_rate(decision, date)?,
        });
    }
    Ok(amounts::price(&DocumentInput {
        lines,
        order_discount: request.discount.value(),
        prices_include_tax: request.prices_include_tax,
        policy: settings.rounding,
        scale: u32::from(request.currency.minor_units().unwrap_or(2)),
    }))
}

/// Decides the VAT of a request and prices it.
///
/// The sale's value for the EUR 10,000 threshold is its net at the seller's own rates (the
/// rates it is taxed at while under the threshold); the amount then added to the year's
/// total is the net actually invoiced.
pub fn plan_invoice(
    request: &InvoiceRequested,
    settings: &StoreInvoiceSettingsUpdated,
    cx: &Context,
) -> Result<InvoicePlan, VatError> {
    let seller_country = settings.address.country;
    let as_domestic = VatDecision {
        rule: vat::Rule::Domestic,
        reason: String::new(),
        rate_country: Some(seller_country),
        buyer_vat_id: None,
        vat_id_check: None,
        legal_note: None,
        counts_toward_threshold: false,
    };
    let this_sale_eur = if request.currency.as_str() == "EUR" && seller_country.is_eu() {
        Some(price_with(request, settings, &as_domestic, cx.supply_date)?.net)
    } else {
        None
    };
    let sale = Sale {
        seller_country,
        seller_vat_id: settings.vat_id.as_ref(),
        destination: request.shipping_address.country,
        buyer_is_business: request.buyer.is_business,
        buyer_vat_id: request.buyer.vat_id.as_ref().map(|v| v.as_str()),
        registry: cx.registry.clone(),
        supply_date: cx.supply_date,
        distance_sales_previous_year: cx.distance_sales_previous_year,
        distance_sales_this_year: cx.distance_sales_this_year,
        this_sale_eur,
    };
    let decision = vat::decide(&sale)?;
    let priced = price_with(request, settings, &decision, cx.supply_date)?;
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
