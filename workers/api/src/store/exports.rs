//! Export jobs: asked for, taken by a writer under a lease, finished or failed.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// How long a writer holds an export before another may take it up (a writer that died).
pub(crate) const LEASE_SECONDS: i32 = 600;

/// An export job as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ExportJob {
    pub(crate) export_id: Uuid,
    pub(crate) query: String,
    pub(crate) stores: Option<Vec<String>>,
}

/// An export job as the API shows it.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[schemars(rename = "ExportJob")]
pub(crate) struct ExportView {
    pub(crate) export_id: Uuid,
    /// The export's query string (filters, format, rows, columns).
    pub(crate) query: String,
    /// `running`, `completed` (download it) or `failed` (see `error`).
    pub(crate) state: String,
    /// Rows in the file (one per order, or per line).
    pub(crate) rows: Option<i64>,
    pub(crate) bytes: Option<i64>,
    /// The file's SHA-256 (hex), also its download's `ETag`.
    pub(crate) sha256: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) created_by: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) finished_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub(crate) staff_id: Uuid,
    #[serde(skip)]
    pub(crate) object_key: Option<String>,
}

/// Asks for an export.
pub(crate) async fn insert(
    conn: &mut PgConnection,
    export_id: Uuid,
    staff_id: Uuid,
    token_id: Uuid,
    query: &str,
    stores: Option<&[String]>,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into exports (export_id, staff_id, token_id, query, stores) \
         values ($1, $2, $3, $4, $5)",
    )
    .bind(export_id)
    .bind(staff_id)
    .bind(token_id)
    .bind(query)
    .bind(stores)
    .execute(conn)
    .await?;
    Ok(())
}

/// One export job, as shown.
pub(crate) async fn view(pool: &PgPool, export_id: Uuid) -> sqlx::Result<Option<ExportView>> {
    sqlx::query_as(
        "select e.export_id, e.query, e.state, e.rows, e.bytes, e.sha256, e.error, \
           s.email as created_by, e.created_at, e.finished_at, e.staff_id, e.object_key \
         from exports e join staff s using (staff_id) where e.export_id = $1",
    )
    .bind(export_id)
    .fetch_optional(pool)
    .await
}

/// Takes the oldest running export nobody holds (or whose holder's lease ran out).
pub(crate) async fn take(pool: &PgPool) -> sqlx::Result<Option<ExportJob>> {
    sqlx::query_as(
        "update exports set leased_until = now() + make_interval(secs => $1), \
           attempts = attempts + 1 \
         where export_id = (select export_id from exports \
                            where state = 'running' \
                              and (leased_until is null or leased_until < now()) \
                            order by created_at for update skip locked limit 1) \
         returning export_id, query, stores",
    )
    .bind(f64::from(LEASE_SECONDS))
    .fetch_optional(pool)
    .await
}

/// The file is in the document store.
pub(crate) async fn complete(
    pool: &PgPool,
    export_id: Uuid,
    key: &str,
    rows: u64,
    bytes: u64,
    sha256: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "update exports set state = 'completed', object_key = $2, rows = $3, bytes = $4, \
           sha256 = $5, finished_at = now(), leased_until = null \
         where export_id = $1 and state = 'running'",
    )
    .bind(export_id)
    .bind(key)
    .bind(i64::try_from(rows).unwrap_or(i64::MAX))
    .bind(i64::try_from(bytes).unwrap_or(i64::MAX))
    .bind(sha256)
    .execute(pool)
    .await?;
    Ok(())
}

/// The export cannot be written (`why`, for whoever asked).
pub(crate) async fn fail(pool: &PgPool, export_id: Uuid, why: &str) -> sqlx::Result<()> {
    sqlx::query(
        "update exports set state = 'failed', error = $2, finished_at = now(), \
           leased_until = null where export_id = $1 and state = 'running'",
    )
    .bind(export_id)
    .bind(why)
    .execute(pool)
    .await?;
    Ok(())
}

/// Gives the export back to be taken up again soon (a writer that failed for a reason
/// that may pass, such as the document store being away).
pub(crate) async fn release(pool: &PgPool, export_id: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "update exports set leased_until = now() + interval '5 seconds' \
         where export_id = $1 and state = 'running'",
    )
    .bind(export_id)
    .execute(pool)
    .await?;
    Ok(())
}
