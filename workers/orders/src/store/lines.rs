//! Order lines: inserted with their order (a run's in one statement), read back, matched by
//! an operator, and the cancelled and refunded quantities.

use orderly_contracts::messages::CancelledLine;
use orderly_contracts::types::{Gtin, Sku};
use orderly_runtime::db;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{Line, MatchedProduct};

use super::*;

/// Inserts an order's lines (in the order given).
pub(crate) async fn insert_lines(
    conn: &mut PgConnection,
    order_id: Uuid,
    lines: &[Line],
) -> sqlx::Result<()> {
    insert_lines_of(conn, &[(order_id, lines)]).await
}

/// Inserts the lines of several orders (each in the order given), in one statement.
pub(crate) async fn insert_lines_of(
    conn: &mut PgConnection,
    orders: &[(Uuid, &[Line])],
) -> sqlx::Result<()> {
    let rows: Vec<_> = orders
        .iter()
        .flat_map(|(order_id, lines)| {
            lines
                .iter()
                .enumerate()
                .map(move |(i, line)| (*order_id, i, line))
        })
        .collect();
    db::unnest(
        "insert into order_lines (order_id, line_id, position, requested_sku, gtin, gtin14, title,
                                  quantity, unit_price, discount, requested_tax_category, sku,
                                  tax_category, catalog_title, cancelled_quantity,
                                  refunded_quantity, tax_class, setup_template_version,
                                  exemption_reference)
         select * from unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[],
                              $6::text[], $7::text[], $8::bigint[], $9::numeric[],
                              $10::numeric[], $11::text[], $12::text[], $13::text[],
                              $14::text[], $15::bigint[], $16::bigint[], $17::text[],
                              $18::int[], $19::text[])",
        &rows,
    )
    .column(|(id, _, _)| *id)
    .column(|(_, _, l)| l.line_id.as_str())
    .column(|(_, i, _)| i32::try_from(*i).unwrap_or(i32::MAX))
    .column(|(_, _, l)| l.requested_sku.as_ref().map(Sku::as_str))
    .column(|(_, _, l)| l.gtin.as_ref().map(Gtin::as_str))
    .column(|(_, _, l)| l.gtin.as_ref().map(Gtin::to_gtin14))
    .column(|(_, _, l)| l.title.as_str())
    .column(|(_, _, l)| i64::from(l.quantity))
    .column(|(_, _, l)| l.unit_price.value())
    .column(|(_, _, l)| l.discount.value())
    .column(|(_, _, l)| l.requested_tax_category.map(|t| t.as_str()))
    .column(|(_, _, l)| l.matched.as_ref().map(|m| m.sku.as_str()))
    .column(|(_, _, l)| l.matched.as_ref().map(|m| m.tax_category.as_str()))
    .column(|(_, _, l)| l.matched.as_ref().map(|m| m.catalog_title.as_str()))
    .column(|(_, _, l)| i64::from(l.cancelled))
    .column(|(_, _, l)| i64::from(l.refunded))
    .column(|(_, _, l)| {
        l.matched
            .as_ref()
            .and_then(|m| m.tax_class.map(|c| c.as_str()))
    })
    .column(|(_, _, l)| {
        l.matched
            .as_ref()
            .and_then(|m| m.setup_template_version)
            .map(|v| i32::try_from(v).unwrap_or(i32::MAX))
    })
    .column(|(_, _, l)| {
        l.matched
            .as_ref()
            .and_then(|m| m.exemption_reference.as_deref())
    })
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes an order's lines (before a replacing revision inserts its own).
pub(crate) async fn delete_lines(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("delete from order_lines where order_id = $1")
        .bind(order_id)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct LineRow {
    line_id: String,
    requested_sku: Option<String>,
    gtin: Option<String>,
    title: String,
    quantity: i64,
    unit_price: Decimal,
    discount: Decimal,
    requested_tax_category: Option<String>,
    sku: Option<String>,
    tax_category: Option<String>,
    tax_class: Option<String>,
    exemption_reference: Option<String>,
    setup_template_version: Option<i32>,
    catalog_title: Option<String>,
    cancelled_quantity: i64,
    refunded_quantity: i64,
}

impl TryFrom<LineRow> for Line {
    type Error = sqlx::Error;

    fn try_from(r: LineRow) -> Result<Self, Self::Error> {
        let matched = match (r.sku, r.tax_category) {
            (Some(sku), Some(tax)) => Some(MatchedProduct {
                sku: parse("line sku", &sku)?,
                tax_category: parse("line tax category", &tax)?,
                tax_class: parse_opt("line tax class", r.tax_class.as_deref())?,
                exemption_reference: r.exemption_reference,
                setup_template_version: version("line setup template", r.setup_template_version)?,
                catalog_title: r.catalog_title.unwrap_or_default(),
            }),
            _ => None,
        };
        Ok(Line {
            line_id: r.line_id,
            requested_sku: parse_opt("requested sku", r.requested_sku.as_deref())?,
            gtin: parse_opt("gtin", r.gtin.as_deref())?,
            title: r.title,
            quantity: count("quantity", r.quantity)?,
            unit_price: amount("unit price", r.unit_price)?,
            discount: amount("line discount", r.discount)?,
            requested_tax_category: parse_opt(
                "requested tax category",
                r.requested_tax_category.as_deref(),
            )?,
            matched,
            cancelled: count("cancelled quantity", r.cancelled_quantity)?,
            refunded: count("refunded quantity", r.refunded_quantity)?,
        })
    }
}

/// An order's lines, in the order they were placed.
pub(crate) async fn load_lines(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<Vec<Line>> {
    let rows: Vec<LineRow> = sqlx::query_as(
        "select line_id, requested_sku, gtin, title, quantity, unit_price, discount,
                requested_tax_category, sku, tax_category, tax_class, exemption_reference,
                setup_template_version, catalog_title, cancelled_quantity, refunded_quantity
         from order_lines where order_id = $1 order by position",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Line::try_from).collect()
}

/// Records the product a line was matched to.
pub(crate) async fn set_line_match(
    conn: &mut PgConnection,
    order_id: Uuid,
    line_id: &str,
    m: &MatchedProduct,
) -> sqlx::Result<()> {
    sqlx::query(
        "update order_lines set sku = $3, tax_category = $4, catalog_title = $5, tax_class = $6,
                                setup_template_version = $7, exemption_reference = $8
         where order_id = $1 and line_id = $2",
    )
    .bind(order_id)
    .bind(line_id)
    .bind(m.sku.as_str())
    .bind(m.tax_category.as_str())
    .bind(&m.catalog_title)
    .bind(m.tax_class.map(|c| c.as_str()))
    .bind(
        m.setup_template_version
            .map(|v| i32::try_from(v).unwrap_or(i32::MAX)),
    )
    .bind(m.exemption_reference.as_deref())
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds cancelled units to lines (never beyond what was ordered).
pub(crate) async fn add_cancelled(
    conn: &mut PgConnection,
    order_id: Uuid,
    lines: &[CancelledLine],
) -> sqlx::Result<()> {
    db::unnest(
        "update order_lines l
         set cancelled_quantity = least(l.quantity, l.cancelled_quantity + c.q)
         from unnest($2::text[], $3::bigint[]) as c(id, q)
         where l.order_id = $1 and l.line_id = c.id",
        lines,
    )
    .bind(order_id)
    .column(|l| l.line_id.as_str())
    .column(|l| i64::from(l.quantity.get()))
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds refunded units to lines.
pub(crate) async fn add_refunded(
    conn: &mut PgConnection,
    order_id: Uuid,
    lines: &[(String, u32)],
) -> sqlx::Result<()> {
    db::unnest(
        "update order_lines l set refunded_quantity = l.refunded_quantity + c.q
         from unnest($2::text[], $3::bigint[]) as c(id, q)
         where l.order_id = $1 and l.line_id = c.id",
        lines,
    )
    .bind(order_id)
    .column(|(l, _)| l.as_str())
    .column(|(_, q)| i64::from(*q))
    .execute(conn)
    .await?;
    Ok(())
}
