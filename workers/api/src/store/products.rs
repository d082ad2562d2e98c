//! The api worker's copy of the catalog (`catalog.product_upserted`): what an operator
//! searches by SKU, title or GTIN when resolving an order item exception. The newest
//! `updated_at` of a SKU wins, so a late or repeated upsert changes nothing.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::seen_products::SeenProduct;

/// A product as the catalog last described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Product<'a> {
    pub(crate) sku: &'a str,
    pub(crate) title: &'a str,
    /// GTIN-14 forms.
    pub(crate) gtins: Vec<String>,
    pub(crate) active: bool,
    pub(crate) updated_at: DateTime<Utc>,
}

/// Writes `p` unless a newer description of its SKU is kept.
pub(crate) async fn upsert(conn: &mut PgConnection, p: &Product<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "insert into products (sku, title, gtins, active, updated_at) values ($1, $2, $3, $4, $5) \
         on conflict (sku) do update set title = excluded.title, gtins = excluded.gtins, \
           active = excluded.active, updated_at = excluded.updated_at \
         where products.updated_at < excluded.updated_at",
    )
    .bind(p.sku)
    .bind(p.title)
    .bind(&p.gtins)
    .bind(p.active)
    .bind(p.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Most products a search answers with.
pub(crate) const FOUND: i64 = 50;

/// Active products whose SKU or title contains `q` (any case), or with `q` as a GTIN (any
/// padding: compared as GTIN-14), SKU order, at most [`FOUND`].
pub(crate) async fn search(pool: &PgPool, q: &str) -> sqlx::Result<Vec<SeenProduct>> {
    let q = q.trim();
    let gtin14 = (q.len() >= 8 && q.len() <= 14 && q.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{q:0>14}"));
    let pattern = format!(
        "%{}%",
        q.to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let rows: Vec<(String, String, Vec<String>)> = sqlx::query_as(
        "select sku, title, gtins from products \
         where active and (lower(sku) like $1 or lower(title) like $1 or gtins @> array[$2]) \
         order by sku limit $3",
    )
    .bind(&pattern)
    .bind(gtin14.unwrap_or_default())
    .bind(FOUND)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(sku, title, gtins)| SeenProduct {
            sku,
            title: Some(title),
            gtin: gtins.into_iter().next(),
        })
        .collect())
}
