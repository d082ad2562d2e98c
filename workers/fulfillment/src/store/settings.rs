//! Each store's invoice timing (`store.invoice_settings_updated`, the highest revision
//! wins): the only part of a store's settings fulfillment keeps, to know whether an order is
//! invoiced when it is accepted or per shipment when it leaves.

use std::collections::HashMap;

use orderly_contracts::messages::InvoiceTiming;
use orderly_contracts::types::StoreId;
use sqlx::PgConnection;

use super::parse;

/// Keeps `timing` as the store's policy if `revision` is newer than the one stored. Returns
/// whether it was.
pub(crate) async fn upsert_store_settings(
    conn: &mut PgConnection,
    store_id: &StoreId,
    revision: i64,
    timing: InvoiceTiming,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "insert into store_settings (store_id, revision, invoice_timing) values ($1, $2, $3)
         on conflict (store_id) do update
           set revision = excluded.revision, invoice_timing = excluded.invoice_timing,
               updated_at = now()
           where store_settings.revision < excluded.revision",
    )
    .bind(store_id.as_str())
    .bind(revision)
    .bind(timing.as_str())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The invoice timing of the stores among `store_ids` whose settings were ever received,
/// in one statement.
pub(crate) async fn invoice_timings(
    conn: &mut PgConnection,
    store_ids: &[&str],
) -> Result<HashMap<String, InvoiceTiming>, sqlx::Error> {
    if store_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, String)> = sqlx::query_as(
        "select store_id, invoice_timing from store_settings where store_id = any($1)",
    )
    .bind(store_ids)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(store, t)| Ok((store, parse("invoice_timing", t.parse::<InvoiceTiming>())?)))
        .collect()
}
