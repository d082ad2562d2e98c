//! The warehouses goods leave from (`warehouse.upserted`): their addresses are where a
//! supply starts for VAT.

use std::collections::HashMap;

use orderly_contracts::messages::{Address, WarehouseUpserted};
use sqlx::PgConnection;
use sqlx::types::Json;

/// Keeps a warehouse's address if the revision is newer than the stored one.
pub(crate) async fn upsert(
    conn: &mut PgConnection,
    w: &WarehouseUpserted,
) -> Result<bool, sqlx::Error> {
    let revision = i64::try_from(w.revision).unwrap_or(i64::MAX);
    let done = sqlx::query(
        "insert into warehouses (warehouse_id, revision, address) values ($1, $2, $3)
         on conflict (warehouse_id) do update
           set revision = excluded.revision, address = excluded.address
           where warehouses.revision < excluded.revision",
    )
    .bind(w.warehouse_id.as_str())
    .bind(revision)
    .bind(Json(&w.address))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The addresses of `ids` that are known.
pub(crate) async fn addresses(
    conn: &mut PgConnection,
    ids: &[&str],
) -> Result<HashMap<String, Address>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, Json<Address>)> =
        sqlx::query_as("select warehouse_id, address from warehouses where warehouse_id = any($1)")
            .bind(ids)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().map(|(id, a)| (id, a.0)).collect())
}
