//! The facts the status machine is computed from (allocations, releases, shipment requests,
//! dispatches, deliveries), read for many orders at once and written a run at a time; and
//! the invoices and credit notes issued for an order.

use std::collections::{BTreeMap, HashMap};

use orderly_contracts::messages::{
    CreditNoteIssued, InvoiceIssued, ShipmentDelivered, ShipmentDispatched, ShipmentException,
    ShipmentRequested, StockReleased, StockReserved,
};
use orderly_runtime::db;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::Facts;

use super::*;

/// Everything the status machine needs to know about an order.
pub(crate) async fn load_facts(
    conn: &mut PgConnection,
    order: &StoredOrder,
) -> sqlx::Result<Facts> {
    let mut facts = facts_of(conn, &[order]).await?;
    Ok(facts.remove(&order.head.order_id).unwrap_or_default())
}

/// The facts of several orders (see [`load_facts`]), in one round trip for the four fact
/// tables: this runs for nearly every message.
pub(crate) async fn facts_of(
    conn: &mut PgConnection,
    orders: &[&StoredOrder],
) -> sqlx::Result<HashMap<Uuid, Facts>> {
    let mut facts: HashMap<Uuid, Facts> = orders
        .iter()
        .map(|o| {
            (
                o.head.order_id,
                Facts {
                    accepted: o.accepted,
                    cancelled: o.cancelled,
                    backordered: o.backordered,
                    address_amended: o.address_amendment > 0,
                    ..Facts::default()
                },
            )
        })
        .collect();
    if facts.is_empty() {
        return Ok(facts);
    }
    let ids: Vec<Uuid> = facts.keys().copied().collect();
    type Row = (
        Uuid,
        String,
        Option<String>,
        Option<String>,
        Option<Uuid>,
        i64,
        bool,
        bool,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "select order_id, 'allocation', warehouse_id, line_id, null::uuid, quantity::bigint,
                false, false
           from order_allocations where order_id = any($1)
         union all
         select order_id, 'nothing', null, null, null, 0, false, false
           from order_nothing_reserved where order_id = any($1)
         union all
         select order_id, 'release', warehouse_id, line_id, null, quantity::bigint, false, false
           from order_releases where order_id = any($1)
         union all
         select order_id, 'shipment', null, null, shipment_id, 0, dispatched_at is not null,
                delivered_at is not null
           from order_shipments where order_id = any($1)
         union all
         select order_id, 'item', null, line_id, shipment_id, quantity::bigint, false, false
           from order_shipment_items where order_id = any($1)
         union all
         select l.order_id, 'setup', null, l.line_id, null, 0,
                exists (select from order_setups_completed c
                        where c.order_id = l.order_id and c.line_id = l.line_id),
                false
           from order_lines l
          where l.order_id = any($1) and l.setup_template_version is not null
            and l.cancelled_quantity < l.quantity",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let missing = |what: &str| corrupt(what, "absent");
    let mut items = Vec::new();
    for (order_id, kind, warehouse, line, shipment, qty, dispatched, delivered) in rows {
        let Some(facts) = facts.get_mut(&order_id) else {
            continue;
        };
        match kind.as_str() {
            "allocation" => {
                facts
                    .allocations
                    .get_or_insert_with(BTreeMap::new)
                    .entry(warehouse.ok_or_else(|| missing("allocation warehouse"))?)
                    .or_default()
                    .insert(
                        line.ok_or_else(|| missing("allocation line"))?,
                        count("allocated quantity", qty)?,
                    );
            }
            // Reserved in no warehouse: nothing to ship.
            "nothing" => {
                facts.allocations.get_or_insert_with(BTreeMap::new);
            }
            "release" => {
                facts.released.insert(
                    (
                        warehouse.ok_or_else(|| missing("release warehouse"))?,
                        line.ok_or_else(|| missing("release line"))?,
                    ),
                    count("released quantity", qty)?,
                );
            }
            "shipment" => {
                let id = shipment.ok_or_else(|| missing("shipment id"))?;
                if dispatched {
                    facts.dispatched.insert(id, BTreeMap::new());
                }
                if delivered {
                    facts.delivered.insert(id);
                }
            }
            "setup" => {
                facts
                    .setups
                    .insert(line.ok_or_else(|| missing("setup line"))?, dispatched);
            }
            _ => items.push((
                order_id,
                shipment.ok_or_else(|| missing("shipment item's shipment"))?,
                line.ok_or_else(|| missing("shipment item's line"))?,
                qty,
            )),
        }
    }
    for (order_id, id, line, qty) in items {
        if let Some(lines) = facts
            .get_mut(&order_id)
            .and_then(|f| f.dispatched.get_mut(&id))
        {
            lines.insert(line, count("dispatched quantity", qty)?);
        }
    }
    Ok(facts)
}

/// Records that the setup of `line_id` completed; `false` if it was already recorded.
pub(crate) async fn record_setup_completed(
    conn: &mut PgConnection,
    p: &orderly_contracts::messages::SetupCompleted,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "insert into order_setups_completed (order_id, line_id, setup_id, completed_at)
         values ($1, $2, $3, $4) on conflict do nothing",
    )
    .bind(p.order_id)
    .bind(&p.line_id)
    .bind(p.setup_id)
    .bind(p.completed_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records the allocations of `stock.reserved` messages (the first one of an order stands),
/// in one statement.
pub(crate) async fn record_allocations(
    conn: &mut PgConnection,
    reserved: &[&StockReserved],
) -> sqlx::Result<()> {
    let rows: Vec<_> = reserved
        .iter()
        .flat_map(|p| {
            p.allocations
                .iter()
                .flat_map(move |a| a.lines.iter().map(move |l| (p.order_id, a, l)))
        })
        .collect();
    db::unnest(
        "insert into order_allocations (order_id, warehouse_id, line_id, sku, quantity)
         select * from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[])
         on conflict do nothing",
        &rows,
    )
    .column(|(id, _, _)| *id)
    .column(|(_, a, _)| a.warehouse_id.as_str())
    .column(|(_, _, l)| l.line_id.as_str())
    .column(|(_, _, l)| l.sku.as_str())
    .column(|(_, _, l)| i64::from(l.quantity.get()))
    .execute(&mut *conn)
    .await?;
    let nothing: Vec<Uuid> = reserved
        .iter()
        .filter(|p| p.allocations.is_empty())
        .map(|p| p.order_id)
        .collect();
    if !nothing.is_empty() {
        sqlx::query(
            "insert into order_nothing_reserved (order_id) select unnest($1::uuid[])
             on conflict do nothing",
        )
        .bind(&nothing)
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// Adds the units of a `stock.released`.
pub(crate) async fn record_releases(
    conn: &mut PgConnection,
    order_id: Uuid,
    p: &StockReleased,
) -> sqlx::Result<()> {
    db::unnest(
        "insert into order_releases (order_id, warehouse_id, line_id, quantity)
         select $1, * from unnest($2::text[], $3::text[], $4::bigint[])
         on conflict (order_id, warehouse_id, line_id)
           do update set quantity = order_releases.quantity + excluded.quantity",
        &p.lines,
    )
    .bind(order_id)
    .column(|l| l.warehouse_id.as_str())
    .column(|l| l.line_id.as_str())
    .column(|l| i64::from(l.quantity.get()))
    .execute(conn)
    .await?;
    Ok(())
}

/// Records `shipment.requested` messages, each shipment once (the first request of a
/// shipment stands), in one statement.
pub(crate) async fn record_shipment_requests(
    conn: &mut PgConnection,
    requests: &[&ShipmentRequested],
) -> sqlx::Result<()> {
    let mut seen = std::collections::HashSet::new();
    let requests: Vec<&&ShipmentRequested> = requests
        .iter()
        .filter(|p| seen.insert(p.shipment_id))
        .collect();
    db::unnest(
        "insert into order_shipments (shipment_id, order_id, warehouse_id, requested_at)
         select s, o, w, now() from unnest($1::uuid[], $2::uuid[], $3::text[]) as r(s, o, w)
         on conflict (shipment_id) do update
           set warehouse_id = coalesce(order_shipments.warehouse_id, excluded.warehouse_id),
               requested_at = coalesce(order_shipments.requested_at, excluded.requested_at)
           where order_shipments.order_id = excluded.order_id",
        &requests,
    )
    .column(|p| p.shipment_id)
    .column(|p| p.order_id)
    .column(|p| p.warehouse_id.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Records `shipment.dispatched` messages and what they carry (each shipment at most once:
/// the facts only take a shipment's first dispatch), in two statements.
pub(crate) async fn record_dispatches(
    conn: &mut PgConnection,
    dispatches: &[&ShipmentDispatched],
) -> sqlx::Result<()> {
    db::unnest(
        "insert into order_shipments (shipment_id, order_id, warehouse_id, carrier,
                                      tracking_number, tracking_url, dispatched_at)
         select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                              $6::text[], $7::timestamptz[])
         on conflict (shipment_id) do update
           set warehouse_id = coalesce(order_shipments.warehouse_id, excluded.warehouse_id),
               carrier = excluded.carrier, tracking_number = excluded.tracking_number,
               tracking_url = coalesce(excluded.tracking_url, order_shipments.tracking_url),
               dispatched_at = coalesce(order_shipments.dispatched_at, excluded.dispatched_at)
           where order_shipments.order_id = excluded.order_id",
        dispatches,
    )
    .column(|p| p.shipment_id)
    .column(|p| p.order_id)
    .column(|p| p.warehouse_id.as_str())
    .column(|p| p.carrier.as_str())
    .column(|p| p.tracking_number.as_str())
    .column(|p| p.tracking_url.as_deref())
    .column(|p| p.dispatched_at)
    .execute(&mut *conn)
    .await?;
    let items: Vec<_> = dispatches
        .iter()
        .flat_map(|p| p.items.iter().map(move |i| (*p, i)))
        .collect();
    db::unnest(
        "insert into order_shipment_items (shipment_id, order_id, line_id, sku, quantity)
         select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bigint[])
         on conflict do nothing",
        &items,
    )
    .column(|(p, _)| p.shipment_id)
    .column(|(p, _)| p.order_id)
    .column(|(_, i)| i.line_id.as_str())
    .column(|(_, i)| i.sku.as_str())
    .column(|(_, i)| i64::from(i.quantity.get()))
    .execute(conn)
    .await?;
    Ok(())
}

/// Records `shipment.delivered` messages (each shipment at most once, as the facts take
/// them), in one statement.
pub(crate) async fn record_deliveries(
    conn: &mut PgConnection,
    deliveries: &[&ShipmentDelivered],
) -> sqlx::Result<()> {
    db::unnest(
        "insert into order_shipments (shipment_id, order_id, carrier, tracking_number, delivered_at)
         select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[])
         on conflict (shipment_id) do update
           set carrier = coalesce(order_shipments.carrier, excluded.carrier),
               tracking_number = coalesce(order_shipments.tracking_number, excluded.tracking_number),
               delivered_at = coalesce(order_shipments.delivered_at, excluded.delivered_at)
           where order_shipments.order_id = excluded.order_id",
        deliveries,
    )
    .column(|p| p.shipment_id)
    .column(|p| p.order_id)
    .column(|p| p.carrier.as_str())
    .column(|p| p.tracking_number.as_str())
    .column(|p| p.delivered_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a `shipment.exception` (the latest one by event time is kept on the shipment).
pub(crate) async fn record_shipment_exception(
    conn: &mut PgConnection,
    p: &ShipmentException,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into order_shipments (shipment_id, order_id, carrier, tracking_number,
                                      last_exception, last_exception_at)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (shipment_id) do update
           set carrier = coalesce(order_shipments.carrier, excluded.carrier),
               tracking_number = coalesce(order_shipments.tracking_number, excluded.tracking_number),
               last_exception = case
                 when order_shipments.last_exception_at is null
                   or order_shipments.last_exception_at <= excluded.last_exception_at
                 then excluded.last_exception else order_shipments.last_exception end,
               last_exception_at = greatest(order_shipments.last_exception_at, excluded.last_exception_at)
           where order_shipments.order_id = excluded.order_id",
    )
    .bind(p.shipment_id)
    .bind(p.order_id)
    .bind(&p.carrier)
    .bind(&p.tracking_number)
    .bind(p.status.as_str())
    .bind(p.event_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records an invoice; `false` if it was known already.
pub(crate) async fn record_invoice(
    conn: &mut PgConnection,
    p: &InvoiceIssued,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "insert into order_invoices (invoice_id, order_id, invoice_number, shipment_id,
                                     issued_at, currency, gross)
         values ($1, $2, $3, $4, $5, $6, $7) on conflict do nothing",
    )
    .bind(p.invoice_id)
    .bind(p.order_id)
    .bind(&p.invoice_number)
    .bind(p.shipment_id)
    .bind(p.issued_at)
    .bind(p.currency.as_str())
    .bind(p.totals.gross.value())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The order's invoice numbers, in issue order.
pub(crate) async fn invoice_numbers(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "select invoice_number from order_invoices where order_id = $1
         order by issued_at, invoice_number",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await
}

/// Records a credit note; `false` if it was known already.
pub(crate) async fn record_credit_note(
    conn: &mut PgConnection,
    p: &CreditNoteIssued,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "insert into order_credit_notes (credit_note_id, order_id, credit_note_number,
                                         invoice_number, request_id, reason, issued_at,
                                         currency, gross)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9) on conflict do nothing",
    )
    .bind(p.credit_note_id)
    .bind(p.order_id)
    .bind(&p.credit_note_number)
    .bind(&p.invoice_number)
    .bind(p.request_id)
    .bind(p.reason.as_str())
    .bind(p.issued_at)
    .bind(p.currency.as_str())
    .bind(p.totals.gross.value())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
