//! Shipments (one per warehouse allocation) and their items: created from a reservation,
//! locked and read with what a run needs to decide about them (items, tracking history,
//! notices sent, invoice requested), saved as a run leaves them, shrunk or cancelled by
//! cancellations.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use orderly_contracts::types::{Gtin, ShipmentStatus, Sku, WarehouseId};
use orderly_runtime::db;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{Notice, PlannedShipment, ShipmentState, Tracking};

use super::{corrupt, parse, units};

/// A shipment as stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shipment {
    /// Orderly's shipment id.
    pub(crate) shipment_id: Uuid,
    /// The order.
    pub(crate) order_id: Uuid,
    /// The warehouse that ships it.
    pub(crate) warehouse_id: WarehouseId,
    /// Position of its allocation.
    pub(crate) position: u32,
    /// Its tracking state.
    pub(crate) tracking: Tracking,
    /// Carrier of its first bound tracking number.
    pub(crate) carrier: Option<String>,
    /// Its first bound tracking number.
    pub(crate) tracking_number: Option<String>,
    /// When it was cancelled.
    pub(crate) cancelled_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct ShipmentRow {
    shipment_id: Uuid,
    order_id: Uuid,
    warehouse_id: String,
    position: i32,
    status: String,
    status_at: Option<DateTime<Utc>>,
    status_cause: Option<Uuid>,
    dispatched_at: Option<DateTime<Utc>>,
    carrier: Option<String>,
    tracking_number: Option<String>,
    cancelled_at: Option<DateTime<Utc>>,
}

impl TryFrom<ShipmentRow> for Shipment {
    type Error = sqlx::Error;

    fn try_from(row: ShipmentRow) -> Result<Self, Self::Error> {
        let state = ShipmentState::parse(&row.status)
            .ok_or_else(|| corrupt("shipment status", &row.status))?;
        Ok(Self {
            shipment_id: row.shipment_id,
            order_id: row.order_id,
            warehouse_id: parse("warehouse_id", WarehouseId::parse(&row.warehouse_id))?,
            position: parse("position", u32::try_from(row.position))?,
            tracking: Tracking {
                state,
                since: row.status_at,
                cause: row.status_cause,
                dispatched_at: row.dispatched_at,
            },
            carrier: row.carrier,
            tracking_number: row.tracking_number,
            cancelled_at: row.cancelled_at,
        })
    }
}

/// Creates planned shipments (each with the id given, of the order given), in two
/// statements. Returns how many were created: fewer than given when an order already had a
/// shipment from one of the warehouses (those are skipped, items included).
pub(crate) async fn insert_shipments(
    conn: &mut PgConnection,
    shipments: &[(Uuid, Uuid, &PlannedShipment)],
) -> Result<u64, sqlx::Error> {
    if shipments.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = shipments.iter().map(|(id, _, _)| *id).collect();
    let orders: Vec<Uuid> = shipments.iter().map(|(_, order, _)| *order).collect();
    let warehouses: Vec<&str> = shipments
        .iter()
        .map(|(_, _, p)| p.warehouse_id.as_str())
        .collect();
    let positions: Vec<i32> = shipments
        .iter()
        .map(|(_, _, p)| parse("position", i32::try_from(p.position)))
        .collect::<Result<_, _>>()?;
    let cancelled: Vec<bool> = shipments.iter().map(|(_, _, p)| p.cancelled).collect();
    let created: Vec<Uuid> = sqlx::query_scalar(
        "insert into shipments (shipment_id, order_id, warehouse_id, position, status,
                                cancelled_at, cancel_reason)
         select id, o, w, p, case when c then 'cancelled' else 'requested' end,
                case when c then now() end,
                case when c then 'cancelled before the reservation arrived' end
         from unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[], $5::bool[])
           as s(id, o, w, p, c)
         on conflict (order_id, warehouse_id) do nothing
         returning shipment_id",
    )
    .bind(&ids)
    .bind(&orders)
    .bind(&warehouses)
    .bind(&positions)
    .bind(&cancelled)
    .fetch_all(&mut *conn)
    .await?;
    let items: Vec<_> = shipments
        .iter()
        .filter(|(id, _, _)| created.contains(id))
        .flat_map(|(id, _, p)| {
            (0i32..)
                .zip(&p.items)
                .map(move |(position, item)| (*id, position, item))
        })
        .collect();
    db::unnest(
        "insert into shipment_items (shipment_id, line_id, position, sku, gtin, title, quantity,
                                     allocated_quantity)
         select * from unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[],
                              $6::text[], $7::bigint[], $8::bigint[])",
        &items,
    )
    .column(|(id, _, _)| *id)
    .column(|(_, _, i)| i.line_id.as_str())
    .column(|(_, p, _)| *p)
    .column(|(_, _, i)| i.sku.as_str())
    .column(|(_, _, i)| i.gtin.as_ref().map(Gtin::as_str))
    .column(|(_, _, i)| i.title.as_str())
    .column(|(_, _, i)| i64::from(i.quantity))
    .column(|(_, _, i)| i64::from(i.allocated))
    .execute(conn)
    .await?;
    Ok(created.len() as u64)
}

/// Marks the orders' reservations as turned into shipments (the first time counts).
pub(crate) async fn mark_shipments_created(
    conn: &mut PgConnection,
    order_ids: &[Uuid],
) -> Result<(), sqlx::Error> {
    if order_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "update orders set shipments_created_at = coalesce(shipments_created_at, now())
         where order_id = any($1)",
    )
    .bind(order_ids)
    .execute(conn)
    .await?;
    Ok(())
}

/// A shipment by id.
pub(crate) async fn shipment(
    conn: &mut PgConnection,
    shipment_id: Uuid,
) -> Result<Option<Shipment>, sqlx::Error> {
    let row: Option<ShipmentRow> = sqlx::query_as(
        "select shipment_id, order_id, warehouse_id, position, status, status_at, status_cause,
                dispatched_at, carrier, tracking_number, cancelled_at
         from shipments where shipment_id = $1",
    )
    .bind(shipment_id)
    .fetch_optional(conn)
    .await?;
    row.map(Shipment::try_from).transpose()
}

/// The shipments of an order, in allocation order.
pub(crate) async fn shipments_of_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Vec<Shipment>, sqlx::Error> {
    let rows: Vec<ShipmentRow> = sqlx::query_as(
        "select shipment_id, order_id, warehouse_id, position, status, status_at, status_cause,
                dispatched_at, carrier, tracking_number, cancelled_at
         from shipments where order_id = $1 order by position",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Shipment::try_from).collect()
}

/// An item of a shipment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShipmentItem {
    /// The order line.
    pub(crate) line_id: String,
    /// The SKU.
    pub(crate) sku: Sku,
    /// The GTIN, if known.
    pub(crate) gtin: Option<Gtin>,
    /// Product name.
    pub(crate) title: String,
    /// Units still to ship (0 when cancelled).
    pub(crate) quantity: u32,
    /// Units allocated.
    pub(crate) allocated: u32,
}

#[derive(sqlx::FromRow)]
struct ItemRow {
    shipment_id: Uuid,
    line_id: String,
    sku: String,
    gtin: Option<String>,
    title: String,
    quantity: i64,
    allocated_quantity: i64,
}

impl TryFrom<ItemRow> for (Uuid, ShipmentItem) {
    type Error = sqlx::Error;

    fn try_from(row: ItemRow) -> Result<Self, Self::Error> {
        Ok((
            row.shipment_id,
            ShipmentItem {
                line_id: row.line_id,
                sku: parse("sku", Sku::parse(&row.sku))?,
                gtin: row
                    .gtin
                    .as_deref()
                    .map(|g| parse("gtin", Gtin::parse(g)))
                    .transpose()?,
                title: row.title,
                quantity: units("quantity", row.quantity)?,
                allocated: units("allocated_quantity", row.allocated_quantity)?,
            },
        ))
    }
}

/// The items of every shipment of an order, by shipment.
pub(crate) async fn items_of_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<BTreeMap<Uuid, Vec<ShipmentItem>>, sqlx::Error> {
    let rows: Vec<ItemRow> = sqlx::query_as(
        "select i.shipment_id, i.line_id, i.sku, i.gtin, i.title, i.quantity,
                i.allocated_quantity
         from shipment_items i join shipments s using (shipment_id)
         where s.order_id = $1 order by s.position, i.position",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    let mut out: BTreeMap<Uuid, Vec<ShipmentItem>> = BTreeMap::new();
    for row in rows {
        let (id, item) = <(Uuid, ShipmentItem)>::try_from(row)?;
        out.entry(id).or_default().push(item);
    }
    Ok(out)
}

/// Sets the units of a line still to ship.
pub(crate) async fn set_item_quantity(
    conn: &mut PgConnection,
    shipment_id: Uuid,
    line_id: &str,
    quantity: u32,
) -> Result<(), sqlx::Error> {
    sqlx::query("update shipment_items set quantity = $3 where shipment_id = $1 and line_id = $2")
        .bind(shipment_id)
        .bind(line_id)
        .bind(i64::from(quantity))
        .execute(conn)
        .await?;
    Ok(())
}

/// Cancels a shipment that has not left. Returns whether it was cancelled now.
pub(crate) async fn cancel_shipment(
    conn: &mut PgConnection,
    shipment_id: Uuid,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update shipments set status = 'cancelled', cancelled_at = now(), cancel_reason = $2,
                              updated_at = now()
         where shipment_id = $1 and status in ('requested', 'label_created')",
    )
    .bind(shipment_id)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Shipments by id, locked for this transaction, in one statement; unknown ids are missing.
pub(crate) async fn lock_shipments(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<Shipment>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<ShipmentRow> = sqlx::query_as(
        "select shipment_id, order_id, warehouse_id, position, status, status_at, status_cause,
                dispatched_at, carrier, tracking_number, cancelled_at
         from shipments where shipment_id = any($1) for update",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Shipment::try_from).collect()
}

/// A tracking event as the run holds it: what the state machine, the exception notice and
/// the duplicate check need.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HeldEvent {
    /// The message that brought it.
    pub(crate) source: Uuid,
    /// When, at the carrier.
    pub(crate) at: DateTime<Utc>,
    /// Ours, if the word has one.
    pub(crate) mapped: Option<ShipmentStatus>,
    /// The carrier's word.
    pub(crate) raw_status: String,
    /// The carrier's text.
    pub(crate) description: Option<String>,
}

/// What a run needs to know about a shipment besides its row.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ShipmentFacts {
    /// Its items, in allocation order.
    pub(crate) items: Vec<ShipmentItem>,
    /// Its tracking history.
    pub(crate) events: Vec<HeldEvent>,
    /// The one-off events published for it.
    pub(crate) notices: Vec<Notice>,
    /// Whether its invoice was requested.
    pub(crate) invoice_requested: bool,
}

/// The items, tracking events, notices and invoice requests of shipments, in one statement.
pub(crate) async fn shipment_facts(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, ShipmentFacts>, sqlx::Error> {
    let mut out: HashMap<Uuid, ShipmentFacts> = ids
        .iter()
        .map(|id| (*id, ShipmentFacts::default()))
        .collect();
    if ids.is_empty() {
        return Ok(out);
    }
    // kind, shipment, then per kind: item (line, sku, gtin, title, quantity, allocated,
    // position), event (source, at, mapped, raw, description), notice (key), request.
    type Row = (
        String,
        Uuid,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<i64>,
        Option<Uuid>,
        Option<DateTime<Utc>>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "select kind, shipment_id, a, b, c, d, n, m, source, at from (
           select 'item' as kind, shipment_id, line_id as a, sku as b, gtin as c, title as d,
                  quantity as n, allocated_quantity as m, null::uuid as source,
                  null::timestamptz as at, position::bigint as ord
             from shipment_items where shipment_id = any($1)
           union all
           select 'event', shipment_id, raw_status, mapped_status, description, null, null,
                  null, source_message_id, event_at, id
             from tracking_events where shipment_id = any($1)
           union all
           select 'notice', shipment_id, kind, null, null, null, null, null, null, null, 0
             from shipment_notices where shipment_id = any($1)
           union all
           select 'request', shipment_id, null, null, null, null, null, null, null, null, 0
             from invoice_requests where shipment_id = any($1)
         ) f order by shipment_id, kind, ord",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?;
    for (kind, shipment_id, a, b, c, d, n, m, source, at) in rows {
        let Some(facts) = out.get_mut(&shipment_id) else {
            continue;
        };
        let missing = |what: &str| corrupt(what, "absent");
        match kind.as_str() {
            "item" => facts.items.push(ShipmentItem {
                line_id: a.ok_or_else(|| missing("item line"))?,
                sku: parse("sku", Sku::parse(&b.ok_or_else(|| missing("item sku"))?))?,
                gtin: c
                    .as_deref()
                    .map(|g| parse("gtin", Gtin::parse(g)))
                    .transpose()?,
                title: d.ok_or_else(|| missing("item title"))?,
                quantity: units("quantity", n.ok_or_else(|| missing("item quantity"))?)?,
                allocated: units(
                    "allocated_quantity",
                    m.ok_or_else(|| missing("allocated quantity"))?,
                )?,
            }),
            "event" => facts.events.push(HeldEvent {
                source: source.ok_or_else(|| missing("event source"))?,
                at: at.ok_or_else(|| missing("event time"))?,
                mapped: b
                    .map(|s| parse("mapped_status", s.parse::<ShipmentStatus>()))
                    .transpose()?,
                raw_status: a.ok_or_else(|| missing("raw status"))?,
                description: c,
            }),
            "notice" => {
                let key = a.ok_or_else(|| missing("notice kind"))?;
                facts
                    .notices
                    .push(Notice::parse(&key).ok_or_else(|| corrupt("notice kind", &key))?);
            }
            _ => facts.invoice_requested = true,
        }
    }
    Ok(out)
}

/// Saves shipments as a run leaves them: the first bound tracking number (where the
/// shipment had none) and the tracking state, in one statement.
pub(crate) async fn save_shipments(
    conn: &mut PgConnection,
    shipments: &[&Shipment],
) -> Result<(), sqlx::Error> {
    db::unnest(
        "update shipments s
         set carrier = case when s.tracking_number is null then v.carrier else s.carrier end,
             tracking_number = coalesce(s.tracking_number, v.number),
             status = v.status, status_at = v.since, status_cause = v.cause,
             dispatched_at = coalesce(s.dispatched_at, v.dispatched), updated_at = now()
         from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
                     $6::uuid[], $7::timestamptz[])
           as v(id, carrier, number, status, since, cause, dispatched)
         where s.shipment_id = v.id",
        shipments,
    )
    .column(|s| s.shipment_id)
    .column(|s| s.carrier.as_deref())
    .column(|s| s.tracking_number.as_deref())
    .column(|s| s.tracking.state.as_str())
    .column(|s| s.tracking.since)
    .column(|s| s.tracking.cause)
    .column(|s| s.tracking.dispatched_at)
    .execute(conn)
    .await?;
    Ok(())
}
