//! The rate data in the schema: the configured rate file's rows (replaced whole when a
//! different file is loaded) and each store's own rows.

use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

use super::corrupt;
use crate::domain::rates::{RateClass, RateRow, RateTable};

/// What loading a rate file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The file's SHA-256 (hex).
    pub sha256: String,
    /// Rows in the file.
    pub rows: usize,
    /// `false` when that file was loaded already (nothing written).
    pub replaced: bool,
}

/// The SHA-256 of a rate file's text, hex.
pub fn file_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Makes `table` (the file at `path`, whose text hashes to `sha256`) the rows every store
/// uses, unless that file is the one loaded already. Stores' own rows are kept. One
/// transaction: a reader sees the old rows or the new, never a mix.
pub(crate) async fn load_file(
    pool: &PgPool,
    path: &str,
    sha256: &str,
    table: &RateTable,
) -> Result<Loaded, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Copies of the worker starting together load the file once.
    sqlx::query("select pg_advisory_xact_lock(hashtext('orderly.invoicing.rates'))")
        .execute(&mut *tx)
        .await?;
    let current: Option<String> =
        sqlx::query_scalar("select sha256 from vat_rate_files order by loaded_at desc limit 1")
            .fetch_optional(&mut *tx)
            .await?;
    if current.as_deref() == Some(sha256) {
        tx.commit().await?;
        return Ok(Loaded {
            sha256: sha256.to_owned(),
            rows: table.len(),
            replaced: false,
        });
    }
    sqlx::query("delete from vat_rates where store_id is null")
        .execute(&mut *tx)
        .await?;
    insert_rows(&mut tx, None, table.rows()).await?;
    sqlx::query(
        "insert into vat_rate_files (sha256, path, rows) values ($1, $2, $3)
         on conflict (sha256) do update set path = excluded.path, loaded_at = now()",
    )
    .bind(sha256)
    .bind(path)
    .bind(i32::try_from(table.len()).unwrap_or(i32::MAX))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Loaded {
        sha256: sha256.to_owned(),
        rows: table.len(),
        replaced: true,
    })
}

async fn insert_rows<'a>(
    conn: &mut PgConnection,
    store_id: Option<&str>,
    rows: impl Iterator<Item = &'a RateRow>,
) -> Result<(), sqlx::Error> {
    let rows: Vec<&RateRow> = rows.collect();
    orderly_runtime::db::unnest(
        "insert into vat_rates (store_id, area, class, rate, valid_from, valid_to, source, note)
         select $1, * from unnest($2::text[], $3::text[], $4::numeric[], $5::date[],
                                  $6::date[], $7::text[], $8::text[])",
        &rows,
    )
    .bind(store_id)
    .column(|r| r.area.as_str())
    .column(|r| r.class.as_str())
    .column(|r| r.rate)
    .column(|r| r.from)
    .column(|r| r.to)
    .column(|r| r.source.as_str())
    .column(|r| r.note.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces a store's own rows with `table` (an empty table removes them).
pub async fn set_store_rows(
    pool: &PgPool,
    store_id: &str,
    table: &RateTable,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("delete from vat_rates where store_id = $1")
        .bind(store_id)
        .execute(&mut *tx)
        .await?;
    insert_rows(&mut tx, Some(store_id), table.rows()).await?;
    tx.commit().await
}

#[derive(sqlx::FromRow)]
struct Row {
    area: String,
    class: String,
    rate: Decimal,
    valid_from: chrono::NaiveDate,
    valid_to: Option<chrono::NaiveDate>,
    source: String,
    note: String,
}

fn rows_of(rows: Vec<Row>) -> Result<Vec<RateRow>, sqlx::Error> {
    rows.into_iter()
        .map(|r| {
            Ok(RateRow {
                class: r
                    .class
                    .parse::<RateClass>()
                    .map_err(|e| corrupt("rate class", e))?,
                area: r.area,
                rate: r.rate.normalize(),
                from: r.valid_from,
                to: r.valid_to,
                source: r.source,
                note: r.note,
            })
        })
        .collect()
}

/// Every store's own rows, by store.
pub(crate) async fn all_store_rows(
    pool: &PgPool,
) -> Result<std::collections::HashMap<String, RateTable>, sqlx::Error> {
    let rows: Vec<StoreRow> = sqlx::query_as(
        "select store_id, area, class, rate, valid_from, valid_to, source, note
         from vat_rates where store_id is not null",
    )
    .fetch_all(pool)
    .await?;
    let mut by_store: std::collections::HashMap<String, Vec<Row>> = Default::default();
    for r in rows {
        by_store.entry(r.store_id).or_default().push(r.row);
    }
    by_store
        .into_iter()
        .map(|(store, rows)| Ok((store, RateTable::from_checked(rows_of(rows)?))))
        .collect()
}

#[derive(sqlx::FromRow)]
struct StoreRow {
    store_id: String,
    #[sqlx(flatten)]
    row: Row,
}

/// The rows every store uses, as loaded last, with the file's SHA-256 (`None` before any
/// file was loaded).
pub(crate) async fn base_rows(pool: &PgPool) -> Result<Option<(String, RateTable)>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let sha: Option<String> =
        sqlx::query_scalar("select sha256 from vat_rate_files order by loaded_at desc limit 1")
            .fetch_optional(&mut *conn)
            .await?;
    let Some(sha) = sha else {
        return Ok(None);
    };
    let rows: Vec<Row> = sqlx::query_as(
        "select area, class, rate, valid_from, valid_to, source, note
         from vat_rates where store_id is null",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some((sha, RateTable::from_checked(rows_of(rows)?))))
}

/// The SHA-256 of the file loaded last.
pub(crate) async fn loaded_sha256(pool: &PgPool) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("select sha256 from vat_rate_files order by loaded_at desc limit 1")
        .fetch_optional(pool)
        .await
}
