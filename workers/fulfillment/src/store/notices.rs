//! What was sent once and must never be sent again: the notices published per shipment
//! (dispatched, delivered, each exception status) and the invoice requests per order or
//! shipment. Each has a unique key, written in the transaction of the outbox row.

use orderly_contracts::messages::InvoiceTiming;
use orderly_runtime::db;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::Notice;

/// Records notices `(shipment, notice, message id)` as published, in one statement (the
/// caller knows none was).
pub(crate) async fn record_notices(
    conn: &mut PgConnection,
    notices: &[(Uuid, Notice, Uuid)],
) -> Result<(), sqlx::Error> {
    db::unnest(
        "insert into shipment_notices (shipment_id, kind, message_id)
         select * from unnest($1::uuid[], $2::text[], $3::uuid[])",
        notices,
    )
    .column(|(s, _, _)| *s)
    .column(|(_, n, _)| n.key())
    .column(|(_, _, m)| *m)
    .execute(conn)
    .await?;
    Ok(())
}

/// An invoice request sent by a run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewInvoiceRequest {
    /// Its id.
    pub(crate) request_id: Uuid,
    /// The order.
    pub(crate) order_id: Uuid,
    /// The shipment (on shipment), or none (on order).
    pub(crate) shipment_id: Option<Uuid>,
    /// When the store invoices.
    pub(crate) timing: InvoiceTiming,
}

/// Records invoice requests as sent, in one statement (the caller knows none was).
pub(crate) async fn record_invoice_requests(
    conn: &mut PgConnection,
    requests: &[NewInvoiceRequest],
) -> Result<(), sqlx::Error> {
    db::unnest(
        "insert into invoice_requests (request_id, order_id, shipment_id, timing)
         select * from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[])",
        requests,
    )
    .column(|r| r.request_id)
    .column(|r| r.order_id)
    .column(|r| r.shipment_id)
    .column(|r| r.timing.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether the orders among `ids` have their on-order invoice requested, in one statement.
pub(crate) async fn orders_invoiced(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<std::collections::HashSet<Uuid>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(std::collections::HashSet::new());
    }
    let rows: Vec<Uuid> = sqlx::query_scalar(
        "select order_id from invoice_requests where order_id = any($1) and shipment_id is null",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}
