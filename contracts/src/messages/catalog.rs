//! The product catalog as Orderly needs it: what a SKU is, its GTINs and VAT category.
//! The catalog itself lives in the merchant's PIM; it pushes every change.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::setups::SetupTemplate;
use crate::envelope::Message;
use crate::error::ContractError;
use crate::types::{CountryCode, Gtin, Sku, TaxCategory, TaxClass};
use crate::validate::{At, Validate, count, ensure, first_duplicate, opt_text, text};

fn yes() -> bool {
    true
}

/// `catalog.product_upserted`: a product was created or changed in the catalog.
///
/// One catalog serves every store. The message carries the whole product (not a diff), so
/// applying it twice or late is safe: consumers keep the version with the newest
/// `updated_at` and ignore older ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductUpserted {
    /// The product's SKU.
    pub sku: Sku,
    /// Every GTIN the product is sold under (an EAN-13 and a UPC-A, or none for
    /// unbranded goods). Marketplace lines are matched by these; each GTIN once.
    pub gtins: Vec<Gtin>,
    /// Product name.
    #[schemars(length(max = 500))]
    pub title: String,
    /// VAT category, for lines that do not bring their own.
    pub tax_category: TaxCategory,
    /// What kind of product it is where rates differ by kind (books, food, ...):
    /// invoicing looks the class up per country and falls back to `tax_category` where a
    /// country has no row for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_class: Option<TaxClass>,
    /// For an exempt product (`tax_category` `exempt`): the provision its supply is exempt
    /// under, printed on its invoices (Art. 226(11) of Directive 2006/112/EC): the
    /// Directive's article or the national one ("Art. 135(1)(h) Directive 2006/112/EC",
    /// "§ 4 Nr. 8 Buchst. i UStG"). Without it an exempt line cites the general exemption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 200))]
    pub exemption_reference: Option<String>,
    /// Whether the product is sold. Inactive products are kept (old orders refer to them)
    /// but new lines for them become order item exceptions.
    pub active: bool,
    /// Whether stock is counted (false for services, gift cards, digital goods: always
    /// available, never reserved). Defaults to true.
    #[serde(default = "yes")]
    pub stock_tracked: bool,
    /// Shipping weight in grams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_grams: Option<u32>,
    /// Customs tariff number (HS code, 6 to 10 digits), for exports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hs_code: Option<String>,
    /// Country of origin, for customs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_of_origin: Option<CountryCode>,
    /// For a service product set up after the order (a listings setup, an ad campaign):
    /// the stages it goes through. Each accepted line of it starts one setup, pinned to
    /// this version. Services are not stock-tracked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<SetupTemplate>,
    /// When the product last changed in the catalog; the newest wins.
    pub updated_at: DateTime<Utc>,
}

impl Message for ProductUpserted {
    const TYPE: &'static str = "catalog.product_upserted";
    const VERSION: u16 = 1;
}

impl Validate for ProductUpserted {
    fn validate(&self) -> Result<(), ContractError> {
        count(&self.gtins, 0, 20).at("payload.gtins")?;
        if let Some(i) = first_duplicate(&self.gtins, Gtin::to_gtin14) {
            return Err(ContractError::new(
                format!("payload.gtins[{i}]"),
                format!(
                    "GTIN {} is listed twice (possibly with different padding)",
                    self.gtins[i]
                ),
            ));
        }
        text(&self.title, 500).at("payload.title")?;
        opt_text(self.exemption_reference.as_ref(), 200).at("payload.exemption_reference")?;
        ensure(
            self.exemption_reference.is_none() || self.tax_category == TaxCategory::Exempt,
            || {
                format!(
                    "only an exempt product has an exemption reference (tax_category is {})",
                    self.tax_category
                )
            },
        )
        .at("payload.exemption_reference")?;
        ensure(self.weight_grams != Some(0), || {
            "a shipped product weighs something; leave it out if unknown".to_owned()
        })
        .at("payload.weight_grams")?;
        if let Some(hs) = &self.hs_code {
            ensure(
                (6..=10).contains(&hs.len()) && hs.bytes().all(|b| b.is_ascii_digit()),
                || format!("`{hs}` is not an HS code (6 to 10 digits, no dots)"),
            )
            .at("payload.hs_code")?;
        }
        if let Some(template) = &self.setup {
            template.check("payload.setup")?;
            ensure(!self.stock_tracked, || {
                "a service with a setup is not stock-tracked".to_owned()
            })
            .at("payload.stock_tracked")?;
        }
        Ok(())
    }
}

/// This area's message types, as catalog entries: who sends each, what it says, which
/// queues receive it (the routing table is derived from these) and its golden example.
pub(crate) fn specs() -> Vec<crate::catalog::MessageSpec> {
    use crate::catalog::entry;
    use crate::routing::queues::*;
    vec![entry!(
        ProductUpserted,
        example: golden::product_upserted,
        from: "PIM",
        says: "a product's SKU, GTINs, VAT category, status",
        // The API keeps the catalog to search it when an operator resolves an order item
        // exception; setups keeps the setup templates.
        to: [ORDERS, INVENTORY, API, SETUPS],
        only_from_outside,
    )]
}

/// The golden examples of this area's types: their part of the story told in
/// [`crate::examples`] (one order from checkout to refund), with its cast and ids.
mod golden {
    use serde_json::{Value, json};

    use crate::examples::*;
    use crate::messages::*;

    pub(super) fn product_upserted() -> Value {
        envelope::<ProductUpserted>(
            Meta {
                n: 0x10,
                correlation: "MUG-BLU-350",
                causation: None,
                at: "2026-03-02T07:00:12Z",
                producer: "pim",
                span: None,
            },
            json!({
                "sku": "MUG-BLU-350",
                "gtins": ["5901234123457"],
                "title": "Kaffeebecher „Blau“ 350 ml",
                "tax_category": "standard",
                "active": true,
                "stock_tracked": true,
                "weight_grams": 420,
                "hs_code": "691200",
                "country_of_origin": "PT",
                "updated_at": "2026-03-02T06:59:58Z"
            }),
        )
    }
}
