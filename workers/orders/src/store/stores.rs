//! The stores orders takes orders for (`store.upserted`): the newest revision wins.

use std::collections::HashMap;

use orderly_contracts::messages::StoreUpserted;
use orderly_contracts::types::StoreId;
use sqlx::PgConnection;

/// Stores the store unless a newer revision is stored already. True if stored.
pub(crate) async fn upsert_store(conn: &mut PgConnection, s: &StoreUpserted) -> sqlx::Result<bool> {
    let stored: Option<String> = sqlx::query_scalar(
        "insert into stores (store_id, revision, name, country, currency, active)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (store_id) do update
           set revision = excluded.revision, name = excluded.name, country = excluded.country,
               currency = excluded.currency, active = excluded.active, updated_at = now()
           where stores.revision < excluded.revision
         returning store_id",
    )
    .bind(s.store_id.as_str())
    .bind(i64::try_from(s.revision).unwrap_or(i64::MAX))
    .bind(&s.name)
    .bind(s.country.as_str())
    .bind(s.currency.as_str())
    .bind(s.active)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(stored.is_some())
}

/// Whether each declared store among `stores` takes new orders (absent: not declared).
pub(crate) async fn stores_open(
    conn: &mut PgConnection,
    stores: &[&StoreId],
) -> sqlx::Result<HashMap<StoreId, bool>> {
    if stores.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<&str> = stores.iter().map(|s| s.as_str()).collect();
    let rows: Vec<(String, bool)> =
        sqlx::query_as("select store_id, active from stores where store_id = any($1)")
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, active)| StoreId::parse(&id).ok().map(|id| (id, active)))
        .collect())
}

/// The ids of the declared stores, for readers outside the worker (the simulator waits for
/// them before it places orders).
pub async fn declared_stores(conn: &mut PgConnection) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("select store_id from stores order by store_id")
        .fetch_all(&mut *conn)
        .await
}
