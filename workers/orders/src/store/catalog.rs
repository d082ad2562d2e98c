//! The catalog projection (products by SKU and their GTINs, newest `updated_at` wins) and the
//! GTIN mappings operators asked to remember per store: what order lines are matched against.

use std::collections::BTreeMap;

use orderly_contracts::messages::ProductUpserted;
use orderly_contracts::types::{Gtin, Sku, StoreId, TaxClass};
use orderly_runtime::db;
use sqlx::PgConnection;

use crate::domain::{Line, Product};

use super::*;

/// Applies a `catalog.product_upserted` unless a newer version is already stored; `true` if
/// it was applied.
pub(crate) async fn upsert_product(
    conn: &mut PgConnection,
    p: &ProductUpserted,
) -> sqlx::Result<bool> {
    let applied: Option<String> = sqlx::query_scalar(
        "insert into products (sku, title, tax_category, active, updated_at, tax_class,
                               setup_template_version, exemption_reference)
         values ($1, $2, $3, $4, $5, $6, $7, $8)
         on conflict (sku) do update
           set title = excluded.title, tax_category = excluded.tax_category,
               tax_class = excluded.tax_class,
               exemption_reference = excluded.exemption_reference,
               setup_template_version = excluded.setup_template_version,
               active = excluded.active, updated_at = excluded.updated_at, received_at = now()
           where products.updated_at < excluded.updated_at
         returning sku",
    )
    .bind(p.sku.as_str())
    .bind(&p.title)
    .bind(p.tax_category.as_str())
    .bind(p.active)
    .bind(p.updated_at)
    .bind(p.tax_class.map(TaxClass::as_str))
    .bind(
        p.setup
            .as_ref()
            .map(|t| i32::try_from(t.version).unwrap_or(i32::MAX)),
    )
    .bind(p.exemption_reference.as_deref())
    .fetch_optional(&mut *conn)
    .await?;
    if applied.is_none() {
        return Ok(false);
    }
    sqlx::query("delete from product_gtins where sku = $1")
        .bind(p.sku.as_str())
        .execute(&mut *conn)
        .await?;
    db::unnest(
        "insert into product_gtins (gtin14, sku, gtin)
         select g14, $1, g from unnest($2::text[], $3::text[]) as t(g14, g)
         on conflict do nothing",
        &p.gtins,
    )
    .bind(p.sku.as_str())
    .column(Gtin::to_gtin14)
    .column(Gtin::as_str)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

#[derive(sqlx::FromRow)]
struct ProductRow {
    sku: String,
    title: String,
    tax_category: String,
    tax_class: Option<String>,
    exemption_reference: Option<String>,
    setup_template_version: Option<i32>,
    active: bool,
}

impl TryFrom<ProductRow> for Product {
    type Error = sqlx::Error;

    fn try_from(row: ProductRow) -> Result<Self, Self::Error> {
        Ok(Product {
            sku: parse("product sku", &row.sku)?,
            title: row.title,
            tax_category: parse("product tax category", &row.tax_category)?,
            tax_class: parse_opt("product tax class", row.tax_class.as_deref())?,
            exemption_reference: row.exemption_reference,
            setup_template_version: version("product setup template", row.setup_template_version)?,
            active: row.active,
        })
    }
}

/// Products by SKU.
pub async fn products_by_sku(
    conn: &mut PgConnection,
    skus: &[String],
) -> sqlx::Result<BTreeMap<String, Product>> {
    if skus.is_empty() {
        return Ok(BTreeMap::new());
    }
    let rows: Vec<ProductRow> = sqlx::query_as(
        "select sku, title, tax_category, tax_class, exemption_reference,
                setup_template_version, active
         from products where sku = any($1)",
    )
    .bind(skus)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            let sku = r.sku.clone();
            Product::try_from(r).map(|p| (sku, p))
        })
        .collect()
}

/// The product behind one SKU.
pub(crate) async fn product(conn: &mut PgConnection, sku: &Sku) -> sqlx::Result<Option<Product>> {
    let mut found = products_by_sku(conn, &[sku.as_str().to_owned()]).await?;
    Ok(found.remove(sku.as_str()))
}

#[derive(sqlx::FromRow)]
struct GtinProductRow {
    gtin14: String,
    #[sqlx(flatten)]
    product: ProductRow,
}

/// Catalog products by GTIN-14.
pub(crate) async fn products_by_gtin(
    conn: &mut PgConnection,
    gtin14: &[String],
) -> sqlx::Result<BTreeMap<String, Vec<Product>>> {
    let mut out: BTreeMap<String, Vec<Product>> = BTreeMap::new();
    if gtin14.is_empty() {
        return Ok(out);
    }
    let rows: Vec<GtinProductRow> = sqlx::query_as(
        "select g.gtin14, p.sku, p.title, p.tax_category, p.tax_class, p.exemption_reference,
                p.setup_template_version, p.active
         from product_gtins g join products p on p.sku = g.sku
         where g.gtin14 = any($1)",
    )
    .bind(gtin14)
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        out.entry(row.gtin14)
            .or_default()
            .push(Product::try_from(row.product)?);
    }
    Ok(out)
}

/// What the catalog knows about some order lines: the products their SKUs name, the
/// products behind their GTINs, and the remembered GTIN mappings of their stores (with the
/// products those name).
#[derive(Debug, Clone, Default)]
pub(crate) struct CatalogView {
    /// SKU → product (the SKUs lines name, and the SKUs of their stores' mappings).
    pub(crate) products: BTreeMap<String, Product>,
    /// GTIN-14 → products carrying it.
    pub(crate) by_gtin: BTreeMap<String, Vec<Product>>,
    /// (store, GTIN-14) → the SKU an operator asked to remember.
    pub(crate) mappings: BTreeMap<(String, String), Sku>,
}

/// The catalog as `lines` (each with its order's store) need it for matching: two to four
/// statements, however many lines.
pub(crate) async fn catalog_view(
    conn: &mut PgConnection,
    lines: &[(&StoreId, &Line)],
) -> sqlx::Result<CatalogView> {
    let mut skus: Vec<String> = lines
        .iter()
        .filter_map(|(_, l)| l.requested_sku.as_ref().map(|s| s.as_str().to_owned()))
        .collect();
    let gtins: Vec<(&str, String)> = lines
        .iter()
        .filter_map(|(store, l)| l.gtin.as_ref().map(|g| (store.as_str(), g.to_gtin14())))
        .collect();
    let mut view = CatalogView::default();
    if !gtins.is_empty() {
        let gtin14: Vec<String> = gtins.iter().map(|(_, g)| g.clone()).collect();
        view.by_gtin = products_by_gtin(conn, &gtin14).await?;
        let stores: Vec<&str> = gtins.iter().map(|(s, _)| *s).collect();
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "select m.store_id, m.gtin14, m.sku
             from gtin_mappings m
             where (m.store_id, m.gtin14) in (select * from unnest($1::text[], $2::text[]))",
        )
        .bind(&stores)
        .bind(&gtin14)
        .fetch_all(&mut *conn)
        .await?;
        for (store, gtin14, sku) in rows {
            let sku: Sku = parse("mapped sku", &sku)?;
            skus.push(sku.as_str().to_owned());
            view.mappings.insert((store, gtin14), sku);
        }
    }
    skus.sort();
    skus.dedup();
    view.products = products_by_sku(conn, &skus).await?;
    Ok(view)
}

/// Remembers GTIN → SKU for a store (the latest decision wins).
pub(crate) async fn remember_mapping(
    conn: &mut PgConnection,
    store_id: &StoreId,
    gtin: &Gtin,
    sku: &Sku,
    by: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into gtin_mappings (store_id, gtin14, gtin, sku, created_by)
         values ($1, $2, $3, $4, $5)
         on conflict (store_id, gtin14) do update
           set gtin = excluded.gtin, sku = excluded.sku, created_by = excluded.created_by,
               updated_at = now()",
    )
    .bind(store_id.as_str())
    .bind(gtin.to_gtin14())
    .bind(gtin.as_str())
    .bind(sku.as_str())
    .bind(by)
    .execute(conn)
    .await?;
    Ok(())
}
