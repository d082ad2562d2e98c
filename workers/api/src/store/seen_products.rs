//! The products the read model has seen, for picking one when resolving an order item
//! exception. The api worker has no catalog of its own (the orders worker owns it and the
//! api never reads its schema), so the choice is what the store's recent accepted orders
//! carried: their lines' SKU, GTIN and title. A product never ordered in the store lately
//! is not offered, but can still be typed.

use sqlx::PgPool;

/// A product as order lines carried it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct SeenProduct {
    pub(crate) sku: String,
    pub(crate) title: Option<String>,
    pub(crate) gtin: Option<String>,
}

/// How many of a store's newest orders are looked at.
const RECENT_ORDERS: i64 = 200;
/// How many products of a store are offered at most.
const MOST: i64 = 100;

/// The distinct products on the lines of each of `stores`' newest accepted orders, by SKU,
/// in one statement: `(store, product)`.
pub(crate) async fn seen(
    pool: &PgPool,
    stores: &[String],
) -> Result<Vec<(String, SeenProduct)>, sqlx::Error> {
    let rows: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
        "select s.store_id, p.sku, p.title, p.gtin from unnest($1::text[]) as s(store_id) \
         cross join lateral ( \
           select distinct on (l->>'sku') l->>'sku' as sku, l->>'title' as title, \
             l->>'gtin' as gtin \
           from (select lines from orders where store_id = s.store_id and lines is not null \
                 order by placed_at desc, order_id desc limit $2) o \
           cross join lateral jsonb_array_elements(o.lines) l \
           where l->>'sku' is not null \
           order by l->>'sku' limit $3) p \
         order by s.store_id, p.sku",
    )
    .bind(stores)
    .bind(RECENT_ORDERS)
    .bind(MOST)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(store, sku, title, gtin)| (store, SeenProduct { sku, title, gtin }))
        .collect())
}
