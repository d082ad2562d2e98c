//! The console's saved views (`saved_views`): a staff member's named filters of the order
//! list. The query string was checked by the list's parser before it is saved.

use sqlx::PgPool;
use uuid::Uuid;

/// The most views one staff member keeps.
pub(crate) const MOST: i64 = 50;

/// A saved view.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct View {
    pub(crate) view_id: Uuid,
    pub(crate) name: String,
    /// The list's query string, without paging.
    pub(crate) query: String,
}

/// `staff_id`'s views, by name.
pub(crate) async fn of(pool: &PgPool, staff_id: Uuid) -> sqlx::Result<Vec<View>> {
    sqlx::query_as(
        "select view_id, name, query from saved_views where staff_id = $1 \
         order by name, view_id limit $2",
    )
    .bind(staff_id)
    .bind(MOST)
    .fetch_all(pool)
    .await
}

/// Saves `query` as `staff_id`'s view `name` (replacing a view of that name). `false` when
/// they already keep [`MOST`] other views.
pub(crate) async fn save(
    pool: &PgPool,
    staff_id: Uuid,
    name: &str,
    query: &str,
) -> sqlx::Result<bool> {
    let saved: Option<Uuid> = sqlx::query_scalar(
        "insert into saved_views (view_id, staff_id, name, query) \
         select $1, $2, $3, $4 \
         where (select count(*) from saved_views where staff_id = $2 and name <> $3) < $5 \
         on conflict (staff_id, name) do update set query = excluded.query \
         returning view_id",
    )
    .bind(Uuid::now_v7())
    .bind(staff_id)
    .bind(name)
    .bind(query)
    .bind(MOST)
    .fetch_optional(pool)
    .await?;
    Ok(saved.is_some())
}

/// Deletes `staff_id`'s view `view_id` (another's is left alone).
pub(crate) async fn delete(pool: &PgPool, staff_id: Uuid, view_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("delete from saved_views where staff_id = $1 and view_id = $2")
        .bind(staff_id)
        .bind(view_id)
        .execute(pool)
        .await?;
    Ok(())
}
