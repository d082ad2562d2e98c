//! Matching a line to the catalog: by SKU, or by GTIN (catalog first, then a mapping an
//! operator remembered), to a product or to an [`ItemProblem`]; and the checks on a product
//! an operator names in a resolution.

use orderly_contracts::messages::ItemProblem;
use orderly_contracts::types::{Sku, TaxCategory, TaxClass};

use super::*;

/// A product as the catalog projection knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// Its SKU.
    pub sku: Sku,
    /// Its name.
    pub title: String,
    /// Its VAT category.
    pub tax_category: TaxCategory,
    /// Its tax class, if the catalog gives one.
    pub tax_class: Option<TaxClass>,
    /// The provision an exempt product's supply is exempt under, if the catalog gives one.
    pub exemption_reference: Option<String>,
    /// The version of its setup template, for a service product set up after the order.
    pub setup_template_version: Option<u32>,
    /// Whether it is sold.
    pub active: bool,
}

/// What the catalog and the remembered mappings say about one line's identifier.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Lookup<'a> {
    /// For a line by SKU: the product with that SKU.
    pub(crate) by_sku: Option<&'a Product>,
    /// For a line by GTIN: the catalog products sold under it.
    pub(crate) by_gtin: &'a [Product],
    /// For a line by GTIN: the store's remembered mapping, and the product it names (if the
    /// catalog knows it).
    pub(crate) mapping: Option<(&'a Sku, Option<&'a Product>)>,
}

/// The outcome of matching one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Match {
    /// Matched to a sold product.
    Matched(MatchedProduct),
    /// Not matched: an order item exception.
    Unmatched {
        /// What is wrong.
        problem: ItemProblem,
        /// The SKU involved (the line's, or the one a mapping named), if any.
        sku: Option<Sku>,
    },
}

fn matched(product: &Product, line_tax: Option<TaxCategory>) -> Match {
    Match::Matched(MatchedProduct {
        sku: product.sku.clone(),
        tax_category: line_tax.unwrap_or(product.tax_category),
        tax_class: product.tax_class,
        exemption_reference: product.exemption_reference.clone(),
        setup_template_version: product.setup_template_version,
        catalog_title: product.title.clone(),
    })
}

/// Matches a line to a product.
///
/// - By SKU: the product must exist (else `unknown_sku`, whatever the channel) and be active
///   (else `inactive_product`).
/// - By GTIN (compared as GTIN-14, so an EAN-13 matches its zero-padded GTIN-14): an active
///   catalog product sold under it wins (several: the lowest SKU, deterministically); else the
///   store's remembered mapping (`unknown_sku` if the catalog does not know the SKU it names,
///   `inactive_product` if it is not sold); else `inactive_product` if only inactive products
///   carry the GTIN; else `unknown_gtin`.
///
/// The VAT category is the line's own when the producer sent one, else the catalog's.
pub(crate) fn match_line(line: &Line, lookup: &Lookup<'_>) -> Match {
    let tax = line.requested_tax_category;
    if let Some(sku) = &line.requested_sku {
        return match lookup.by_sku {
            Some(p) if p.active => matched(p, tax),
            Some(_) => Match::Unmatched {
                problem: ItemProblem::InactiveProduct,
                sku: Some(sku.clone()),
            },
            None => Match::Unmatched {
                problem: ItemProblem::UnknownSku,
                sku: Some(sku.clone()),
            },
        };
    }
    if let Some(p) = lookup
        .by_gtin
        .iter()
        .filter(|p| p.active)
        .min_by(|a, b| a.sku.cmp(&b.sku))
    {
        return matched(p, tax);
    }
    match lookup.mapping {
        Some((_, Some(p))) if p.active => matched(p, tax),
        Some((sku, Some(_))) => Match::Unmatched {
            problem: ItemProblem::InactiveProduct,
            sku: Some(sku.clone()),
        },
        Some((sku, None)) => Match::Unmatched {
            problem: ItemProblem::UnknownSku,
            sku: Some(sku.clone()),
        },
        None if !lookup.by_gtin.is_empty() => Match::Unmatched {
            problem: ItemProblem::InactiveProduct,
            sku: None,
        },
        None => Match::Unmatched {
            problem: ItemProblem::UnknownGtin,
            sku: None,
        },
    }
}

/// The product an operator named in a `map_to_sku` resolution, checked: it must be in the
/// catalog and sold (a typo must not reach inventory as a SKU nobody stocks).
pub(crate) fn resolve_to(
    sku: &Sku,
    product: Option<&Product>,
    line_tax: Option<TaxCategory>,
) -> Result<MatchedProduct, String> {
    match product {
        Some(p) if p.active => Ok(MatchedProduct {
            sku: p.sku.clone(),
            tax_category: line_tax.unwrap_or(p.tax_category),
            tax_class: p.tax_class,
            exemption_reference: p.exemption_reference.clone(),
            setup_template_version: p.setup_template_version,
            catalog_title: p.title.clone(),
        }),
        Some(_) => Err(format!(
            "SKU {sku} is not sold any more (inactive in the catalog)"
        )),
        None => Err(format!("SKU {sku} is not in the catalog")),
    }
}

/// Keeps what an earlier revision's line was matched to (possibly by an operator, without a
/// remembered mapping) when a replacing revision has the same line with the same product
/// identifiers and the catalog alone no longer matches it: an operator's work is not undone
/// by a re-push. Returns whether the match was carried over.
pub(crate) fn carry_over_match(old: &Line, new: &mut Line) -> bool {
    if new.matched.is_some()
        || old.line_id != new.line_id
        || old.requested_sku != new.requested_sku
        || old.gtin != new.gtin
    {
        return false;
    }
    let Some(m) = &old.matched else {
        return false;
    };
    new.matched = Some(MatchedProduct {
        sku: m.sku.clone(),
        tax_category: new.requested_tax_category.unwrap_or(m.tax_category),
        tax_class: m.tax_class,
        exemption_reference: m.exemption_reference.clone(),
        setup_template_version: m.setup_template_version,
        catalog_title: m.catalog_title.clone(),
    });
    true
}
