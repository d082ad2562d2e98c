//! Order item exceptions: raised for unmatched lines, listed, resolved by an operator (or by
//! the catalog), closed by a cancellation, superseded by a newer revision.

use chrono::{DateTime, Utc};
use orderly_contracts::messages::{ExceptionResolution, ItemException, ItemProblem};
use orderly_contracts::types::{Amount, Gtin, Quantity, Sku};
use orderly_runtime::db;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{ExceptionStatus, OpenException};

use super::*;

/// Open exceptions a newly published product can clear: lines naming its SKU that no product
/// had, lines naming one of its GTINs (`gtin14`: as GTIN-14) that matched nothing, and lines
/// naming it while it was inactive. Oldest first, with the order and its store (no lock).
pub(crate) async fn open_exceptions_for_product(
    conn: &mut PgConnection,
    sku: &str,
    gtin14: &[String],
) -> sqlx::Result<Vec<(Uuid, Uuid, String)>> {
    sqlx::query_as(
        "select e.exception_id, e.order_id, o.store_id
         from item_exceptions e join orders o using (order_id)
         where e.status = 'open'
           and ((e.problem in ('unknown_sku', 'inactive_product') and e.sku = $1)
                or (e.problem = 'unknown_gtin' and lpad(e.gtin, 14, '0') = any($2)))
         order by e.raised_at, e.exception_id",
    )
    .bind(sku)
    .bind(gtin14)
    .fetch_all(conn)
    .await
}

/// Raises exceptions for an order.
pub(crate) async fn insert_exceptions(
    conn: &mut PgConnection,
    order_id: Uuid,
    exceptions: &[ItemException],
) -> sqlx::Result<()> {
    insert_exceptions_of(conn, &[(order_id, exceptions)]).await
}

/// Raises exceptions for several orders, in one statement.
pub(crate) async fn insert_exceptions_of(
    conn: &mut PgConnection,
    orders: &[(Uuid, &[ItemException])],
) -> sqlx::Result<()> {
    let rows: Vec<(Uuid, &ItemException)> = orders
        .iter()
        .flat_map(|(order_id, exceptions)| exceptions.iter().map(move |e| (*order_id, e)))
        .collect();
    db::unnest(
        "insert into item_exceptions (exception_id, order_id, line_id, sku, gtin, title, problem)
         select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                              $6::text[], $7::text[])",
        &rows,
    )
    .column(|(_, e)| e.exception_id)
    .column(|(id, _)| *id)
    .column(|(_, e)| e.line_id.as_str())
    .column(|(_, e)| e.sku.as_ref().map(Sku::as_str))
    .column(|(_, e)| e.gtin.as_ref().map(Gtin::as_str))
    .column(|(_, e)| e.title.as_str())
    .column(|(_, e)| e.problem.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// An order item exception with its order's identifiers, for operators.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ExceptionRecord {
    /// Its id.
    pub exception_id: Uuid,
    /// The order.
    pub order_id: Uuid,
    /// The order's store.
    pub store_id: String,
    /// The order's channel.
    pub channel: String,
    /// The order's external id.
    pub external_order_id: String,
    /// The line.
    pub line_id: String,
    /// SKU involved.
    pub sku: Option<String>,
    /// GTIN involved.
    pub gtin: Option<String>,
    /// Title from the order.
    pub title: String,
    /// `unknown_sku`, `unknown_gtin`, `inactive_product`.
    pub problem: String,
    /// `open`, `resolved`, `superseded`.
    pub status: String,
    /// How it was resolved.
    pub resolution: Option<String>,
    /// The SKU chosen (`map_to_sku`).
    pub resolved_sku: Option<String>,
    /// Whether the mapping was remembered.
    pub remember_mapping: bool,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// The operator's note.
    pub note: Option<String>,
    /// When it was raised.
    pub raised_at: DateTime<Utc>,
    /// When it was closed.
    pub resolved_at: Option<DateTime<Utc>>,
}

impl ExceptionRecord {
    /// The stored status.
    pub(crate) fn status(&self) -> Result<ExceptionStatus, sqlx::Error> {
        ExceptionStatus::parse(&self.status)
            .ok_or_else(|| corrupt("exception status", &self.status))
    }

    /// The stored resolution.
    pub(crate) fn resolution(&self) -> Result<Option<ExceptionResolution>, sqlx::Error> {
        parse_opt("exception resolution", self.resolution.as_deref())
    }

    /// The stored resolved SKU.
    pub(crate) fn resolved_sku(&self) -> Result<Option<Sku>, sqlx::Error> {
        parse_opt("resolved sku", self.resolved_sku.as_deref())
    }
}

macro_rules! select_exception {
    ($tail:literal) => {
        concat!(
            "select e.exception_id, e.order_id, o.store_id, o.channel, o.external_order_id,
                    e.line_id, e.sku, e.gtin, e.title, e.problem, e.status, e.resolution,
                    e.resolved_sku, e.remember_mapping, e.resolved_by, e.note, e.raised_at,
                    e.resolved_at
             from item_exceptions e join orders o on o.order_id = e.order_id ",
            $tail
        )
    };
}

/// One exception by id.
pub(crate) async fn find_exception(
    conn: &mut PgConnection,
    exception_id: Uuid,
) -> sqlx::Result<Option<ExceptionRecord>> {
    sqlx::query_as(select_exception!("where e.exception_id = $1"))
        .bind(exception_id)
        .fetch_optional(conn)
        .await
}

/// Order item exceptions, oldest first; only the open ones if `only_open` (for the CLI).
pub async fn list_exceptions(
    conn: &mut PgConnection,
    only_open: bool,
) -> sqlx::Result<Vec<ExceptionRecord>> {
    sqlx::query_as(select_exception!(
        "where (not $1 or e.status = 'open') order by e.raised_at, e.exception_id"
    ))
    .bind(only_open)
    .fetch_all(conn)
    .await
}

/// An order's open exceptions, in line order, as `order.on_hold` carries them.
pub(crate) async fn open_exceptions(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> sqlx::Result<Vec<ItemException>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        exception_id: Uuid,
        line_id: String,
        sku: Option<String>,
        gtin: Option<String>,
        title: String,
        quantity: Option<i64>,
        unit_price: Option<rust_decimal::Decimal>,
        problem: String,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "select e.exception_id, e.line_id, e.sku, e.gtin, e.title, l.quantity, l.unit_price,
                e.problem
             from item_exceptions e
             left join order_lines l on l.order_id = e.order_id and l.line_id = e.line_id
             where e.order_id = $1 and e.status = 'open'
             order by l.position, e.line_id",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(ItemException {
                exception_id: r.exception_id,
                line_id: r.line_id,
                sku: parse_opt("exception sku", r.sku.as_deref())?,
                gtin: parse_opt("exception gtin", r.gtin.as_deref())?,
                title: r.title,
                quantity: r
                    .quantity
                    .and_then(|q| u32::try_from(q).ok())
                    .and_then(|q| Quantity::new(q).ok()),
                unit_price: r.unit_price.and_then(|p| Amount::new(p).ok()),
                problem: parse::<ItemProblem>("exception problem", &r.problem)?,
            })
        })
        .collect()
}

/// The open exceptions as the re-push reconciliation needs them.
pub(crate) fn as_open(exceptions: &[ItemException]) -> Vec<OpenException> {
    exceptions
        .iter()
        .map(|e| OpenException {
            exception_id: e.exception_id,
            line_id: e.line_id.clone(),
            problem: e.problem,
            sku: e.sku.clone(),
            gtin: e.gtin.clone(),
        })
        .collect()
}

/// How an exception was closed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Closing<'a> {
    /// The resolution.
    pub(crate) resolution: ExceptionResolution,
    /// The SKU chosen (`map_to_sku`).
    pub(crate) sku: Option<&'a Sku>,
    /// Whether the mapping was remembered.
    pub(crate) remember: bool,
    /// Who (operator id, or `system`).
    pub(crate) by: Option<&'a str>,
    /// Note.
    pub(crate) note: Option<&'a str>,
}

/// Resolves one open exception; `false` if it was not open.
pub(crate) async fn resolve_exception(
    conn: &mut PgConnection,
    exception_id: Uuid,
    c: Closing<'_>,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "update item_exceptions
         set status = 'resolved', resolution = $2, resolved_sku = $3, remember_mapping = $4,
             resolved_by = $5, note = $6, resolved_at = now()
         where exception_id = $1 and status = 'open'",
    )
    .bind(exception_id)
    .bind(c.resolution.as_str())
    .bind(c.sku.map(Sku::as_str))
    .bind(c.remember)
    .bind(c.by)
    .bind(c.note)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Resolves the open exceptions of an order (all of them, or those of `line_ids`) the same
/// way: when the order or those lines are cancelled. Returns how many were closed.
pub(crate) async fn resolve_open_exceptions(
    conn: &mut PgConnection,
    order_id: Uuid,
    line_ids: Option<&[String]>,
    c: Closing<'_>,
) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "update item_exceptions
         set status = 'resolved', resolution = $3, resolved_by = $4, note = $5,
             resolved_at = now()
         where order_id = $1 and status = 'open' and ($2::text[] is null or line_id = any($2))",
    )
    .bind(order_id)
    .bind(line_ids)
    .bind(c.resolution.as_str())
    .bind(c.by)
    .bind(c.note)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Marks exceptions superseded by a newer revision.
pub(crate) async fn supersede_exceptions(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> sqlx::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "update item_exceptions set status = 'superseded', resolved_at = now()
         where exception_id = any($1) and status = 'open'",
    )
    .bind(ids)
    .execute(conn)
    .await?;
    Ok(())
}
