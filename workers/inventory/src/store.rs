//! All of inventory's SQL, as functions on a connection (the handler's transaction).
//!
//! Table names are unqualified: the pool's `search_path` is the `inventory` schema. Values
//! go in and come out as the contracts' validated types (`Sku`, `WarehouseId`), so nothing
//! above this module handles raw strings from the database.
//!
//! # Locks
//! Before a batch runs, the runtime takes the lock keys the handler declares (the order and
//! its SKUs; all of stock, exclusively, for adjustments and releases), sorted, so batches
//! never deadlock (see `InventoryHandler::lock_keys`). Under them, rows are still locked in
//! one global order, so that correctness never depends on the advisory locks: the order's
//! `orders` row → [`lock_skus`] (`levels` rows, by SKU) →
//! [`stock_for_update`] (`stock` rows, by SKU then warehouse) → `backorders` rows (oldest
//! first) → `orders` rows of backordered orders → `reservations` rows. Every decision is
//! made on rows this transaction has locked.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use orderly_contracts::types::{Gtin, Sku, StoreId, WarehouseId};
use orderly_runtime::db;
use sqlx::{PgConnection, types::Json};
use uuid::Uuid;

use crate::domain::{Backorder, LineRequest, StockSlot, WarehouseStock};

/// Turns a value the database holds but the contracts refuse into a decode error (only
/// validated values are ever written, so this means someone edited the tables by hand).
fn valid<T, E>(result: Result<T, E>) -> sqlx::Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    result.map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn strings<T: AsRef<str>>(items: &[T]) -> Vec<String> {
    items.iter().map(|s| s.as_ref().to_owned()).collect()
}

/// Ensures a `levels` row exists for each of `skus` and locks them, in SKU order.
///
/// The `levels` row is the SKU's mutex: every handler that reads stock to decide on it, or
/// changes it, holds it first. Unlike the `stock` rows it exists before any stock does, so
/// an order for a SKU nobody has counted yet and the adjustment that brings the first units
/// cannot miss each other.
pub async fn lock_skus(conn: &mut PgConnection, skus: &[Sku]) -> sqlx::Result<()> {
    if skus.is_empty() {
        return Ok(());
    }
    let skus = strings(skus);
    let lock = "select count(*) from (select sku from levels where sku = any($1) order by sku for update) l";
    // Usually every row exists: one round trip. Otherwise create the missing ones and lock
    // again (rows created by a concurrent transaction are waited for by the insert).
    let locked: i64 = sqlx::query_scalar(lock)
        .bind(&skus)
        .fetch_one(&mut *conn)
        .await?;
    if usize::try_from(locked).ok() == Some(skus.len()) {
        return Ok(());
    }
    sqlx::query(
        "insert into levels (sku)
         select s from unnest($1::text[]) as t(s) order by s
         on conflict do nothing",
    )
    .bind(&skus)
    .execute(&mut *conn)
    .await?;
    sqlx::query(lock).bind(&skus).execute(&mut *conn).await?;
    Ok(())
}

/// Creates the warehouse (default priority) and an empty stock row when first seen.
pub async fn ensure_stock_row(
    conn: &mut PgConnection,
    warehouse: &WarehouseId,
    sku: &Sku,
) -> sqlx::Result<()> {
    sqlx::query("insert into warehouses (warehouse_id) values ($1) on conflict do nothing")
        .bind(warehouse.as_str())
        .execute(&mut *conn)
        .await?;
    sqlx::query("insert into stock (warehouse_id, sku) values ($1, $2) on conflict do nothing")
        .bind(warehouse.as_str())
        .bind(sku.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A stock row with its warehouse's priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockRow {
    /// The warehouse.
    pub warehouse_id: WarehouseId,
    /// Its priority (lower is preferred).
    pub priority: i32,
    /// The SKU.
    pub sku: Sku,
    /// Units on hand.
    pub on_hand: u64,
    /// Units reserved.
    pub reserved: u64,
    /// `as_of` of the newest absolute count applied.
    pub last_adjusted_as_of: Option<DateTime<Utc>>,
    /// Whether orders are allocated to the warehouse.
    pub active: bool,
}

impl StockRow {
    /// What the allocator sees of it.
    pub fn slot(&self) -> StockSlot {
        StockSlot {
            warehouse_id: self.warehouse_id.clone(),
            priority: self.priority,
            sku: self.sku.clone(),
            available: self.on_hand.saturating_sub(self.reserved),
        }
    }

    /// What adjustments and dispatches see of it.
    pub fn level(&self) -> crate::domain::Level {
        crate::domain::Level {
            on_hand: self.on_hand,
            reserved: self.reserved,
            last_count_as_of: self.last_adjusted_as_of,
        }
    }
}

#[derive(sqlx::FromRow)]
struct RawStockRow {
    warehouse_id: String,
    priority: i32,
    sku: String,
    on_hand: i64,
    reserved: i64,
    last_adjusted_as_of: Option<DateTime<Utc>>,
    active: bool,
}

impl RawStockRow {
    fn typed(self) -> sqlx::Result<StockRow> {
        Ok(StockRow {
            warehouse_id: valid(WarehouseId::parse(&self.warehouse_id))?,
            priority: self.priority,
            sku: valid(Sku::parse(&self.sku))?,
            on_hand: valid(u64::try_from(self.on_hand))?,
            reserved: valid(u64::try_from(self.reserved))?,
            last_adjusted_as_of: self.last_adjusted_as_of,
            active: self.active,
        })
    }
}

/// Locks and returns every stock row of `skus`, by SKU then warehouse. Call
/// [`lock_skus`] first.
pub async fn stock_for_update(
    conn: &mut PgConnection,
    skus: &[Sku],
) -> sqlx::Result<Vec<StockRow>> {
    let rows: Vec<RawStockRow> = sqlx::query_as(
        "select s.warehouse_id, w.priority, s.sku, s.on_hand, s.reserved, s.last_adjusted_as_of,
                w.active
         from stock s join warehouses w using (warehouse_id)
         where s.sku = any($1)
         order by s.sku, s.warehouse_id
         for update of s",
    )
    .bind(strings(skus))
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(RawStockRow::typed).collect()
}

/// What kind of change a movement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovementKind {
    /// A count or a relative change from outside.
    Adjustment,
    /// Units reserved for an order line.
    Reservation,
    /// Reserved units given back.
    Release,
    /// Reserved (or free) units shipped.
    Dispatch,
}

impl MovementKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Adjustment => "adjustment",
            Self::Reservation => "reservation",
            Self::Release => "release",
            Self::Dispatch => "dispatch",
        }
    }
}

/// One ledger entry to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMovement {
    /// The stock row it changes.
    pub warehouse_id: WarehouseId,
    /// The stock row it changes.
    pub sku: Sku,
    /// What kind of change.
    pub kind: MovementKind,
    /// Change of on hand.
    pub on_hand_delta: i64,
    /// Change of reserved.
    pub reserved_delta: i64,
    /// The order, for everything but adjustments.
    pub order_id: Option<Uuid>,
    /// The order line, for everything but adjustments.
    pub line_id: Option<String>,
    /// The business fact that caused it (see the migration for each kind's key).
    pub source_key: String,
}

/// What [`apply_movements`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Movements written (the others were already in the ledger).
    pub inserted: u64,
    /// Stock rows changed.
    pub stock_rows: u64,
}

/// Writes `movements` to the ledger and adds them to their stock rows, in one statement.
/// `sources` are the messages that caused them: one per movement, or one for all.
///
/// A movement whose `(kind, source_key, warehouse, sku)` is already in the ledger is skipped,
/// and so is its effect on stock: the ledger and the stock rows cannot disagree. The stock
/// rows must exist and be locked (see [`stock_for_update`]); the table's CHECK refuses any
/// result that would oversell.
pub async fn apply_movements(
    conn: &mut PgConnection,
    movements: &[NewMovement],
    sources: &[Uuid],
) -> sqlx::Result<Applied> {
    if movements.is_empty() {
        return Ok(Applied {
            inserted: 0,
            stock_rows: 0,
        });
    }
    let warehouses: Vec<String> = movements
        .iter()
        .map(|m| m.warehouse_id.to_string())
        .collect();
    let skus: Vec<String> = movements.iter().map(|m| m.sku.to_string()).collect();
    let kinds: Vec<&str> = movements.iter().map(|m| m.kind.as_str()).collect();
    let on_hand: Vec<i64> = movements.iter().map(|m| m.on_hand_delta).collect();
    let reserved: Vec<i64> = movements.iter().map(|m| m.reserved_delta).collect();
    let orders: Vec<Option<Uuid>> = movements.iter().map(|m| m.order_id).collect();
    let lines: Vec<Option<String>> = movements.iter().map(|m| m.line_id.clone()).collect();
    let keys: Vec<String> = movements.iter().map(|m| m.source_key.clone()).collect();
    let sources: Vec<Uuid> = match sources {
        [one] => vec![*one; movements.len()],
        each => each.to_vec(),
    };
    let (inserted, stock_rows): (i64, i64) = sqlx::query_as(
        "with ins as (
           insert into movements (warehouse_id, sku, kind, on_hand_delta, reserved_delta,
                                  order_id, line_id, source_key, source_message_id)
           select warehouse_id, sku, kind, on_hand_delta, reserved_delta, order_id, line_id,
                  source_key, source_message_id
           from unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[],
                       $6::uuid[], $7::text[], $8::text[], $9::uuid[])
                as m(warehouse_id, sku, kind, on_hand_delta, reserved_delta, order_id,
                     line_id, source_key, source_message_id)
           on conflict (kind, source_key, warehouse_id, sku) do nothing
           returning warehouse_id, sku, on_hand_delta, reserved_delta
         ),
         upd as (
           update stock s
           set on_hand = s.on_hand + d.on_hand_delta,
               reserved = s.reserved + d.reserved_delta,
               version = s.version + 1,
               updated_at = clock_timestamp()
           from (select warehouse_id, sku,
                        sum(on_hand_delta)::bigint as on_hand_delta,
                        sum(reserved_delta)::bigint as reserved_delta
                 from ins group by warehouse_id, sku) d
           where s.warehouse_id = d.warehouse_id and s.sku = d.sku
           returning 1
         )
         select (select count(*) from ins), (select count(*) from upd)",
    )
    .bind(&warehouses)
    .bind(&skus)
    .bind(&kinds)
    .bind(&on_hand)
    .bind(&reserved)
    .bind(&orders)
    .bind(&lines)
    .bind(&keys)
    .bind(&sources)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Applied {
        inserted: valid(u64::try_from(inserted))?,
        stock_rows: valid(u64::try_from(stock_rows))?,
    })
}

/// Whether a movement with this identity is already in the ledger.
pub async fn movement_exists(
    conn: &mut PgConnection,
    kind: MovementKind,
    source_key: &str,
    warehouse: &WarehouseId,
    sku: &Sku,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists(select 1 from movements
                       where kind = $1 and source_key = $2 and warehouse_id = $3 and sku = $4)",
    )
    .bind(kind.as_str())
    .bind(source_key)
    .bind(warehouse.as_str())
    .bind(sku.as_str())
    .fetch_one(&mut *conn)
    .await
}

/// Which movements of `kind` with these source keys are in the ledger already, as
/// `(source key, warehouse, SKU)`, in one statement.
pub async fn movements_booked(
    conn: &mut PgConnection,
    kind: MovementKind,
    source_keys: &[String],
) -> sqlx::Result<std::collections::HashSet<(String, String, String)>> {
    if source_keys.is_empty() {
        return Ok(std::collections::HashSet::new());
    }
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "select source_key, warehouse_id, sku from movements
         where kind = $1 and source_key = any($2)",
    )
    .bind(kind.as_str())
    .bind(source_keys)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Records the `as_of` of the count just applied to a stock row.
pub async fn set_last_count(
    conn: &mut PgConnection,
    warehouse: &WarehouseId,
    sku: &Sku,
    as_of: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query("update stock set last_adjusted_as_of = $3 where warehouse_id = $1 and sku = $2")
        .bind(warehouse.as_str())
        .bind(sku.as_str())
        .bind(as_of)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Where inventory stands with an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderState {
    /// Claimed by the transaction handling its `order.accepted` (never seen after commit).
    Pending,
    /// Every line reserved.
    Reserved,
    /// Waiting for stock.
    Backordered,
    /// Cancelled: reservations released, or never made.
    Cancelled,
}

impl OrderState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Reserved => "reserved",
            Self::Backordered => "backordered",
            Self::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> sqlx::Result<Self> {
        match s {
            "pending" => Ok(Self::Pending),
            "reserved" => Ok(Self::Reserved),
            "backordered" => Ok(Self::Backordered),
            "cancelled" => Ok(Self::Cancelled),
            other => Err(sqlx::Error::Decode(
                format!("unknown order state `{other}`").into(),
            )),
        }
    }
}

/// One order to claim for its first `order.accepted`.
#[derive(Debug, Clone)]
pub struct OrderClaim<'a> {
    /// The order.
    pub order_id: Uuid,
    /// Its store.
    pub store_id: &'a StoreId,
    /// The revision accepted.
    pub revision: u32,
    /// When it was placed.
    pub placed_at: DateTime<Utc>,
}

/// Claims orders for their first `order.accepted`, in one statement: returns the ones this
/// transaction is the first to see. A concurrent claim of the same order waits for this
/// transaction and then does not get it.
pub async fn claim_orders(
    conn: &mut PgConnection,
    claims: &[OrderClaim<'_>],
) -> sqlx::Result<Vec<Uuid>> {
    let ids: Vec<Uuid> = claims.iter().map(|c| c.order_id).collect();
    let stores: Vec<&str> = claims.iter().map(|c| c.store_id.as_str()).collect();
    let revisions: Vec<i64> = claims.iter().map(|c| i64::from(c.revision)).collect();
    let placed: Vec<DateTime<Utc>> = claims.iter().map(|c| c.placed_at).collect();
    sqlx::query_scalar(
        "insert into orders (order_id, store_id, state, revision, placed_at)
         select id, s, 'pending', r, p
         from unnest($1::uuid[], $2::text[], $3::int8[], $4::timestamptz[]) as c(id, s, r, p)
         on conflict (order_id) do nothing
         returning order_id",
    )
    .bind(&ids)
    .bind(&stores)
    .bind(&revisions)
    .bind(&placed)
    .fetch_all(&mut *conn)
    .await
}

/// Records an order inventory never saw as cancelled, so that a late `order.accepted` for it
/// reserves nothing. False if the order was known (or is being claimed right now: then this
/// waits for that transaction).
pub async fn tombstone_order(
    conn: &mut PgConnection,
    order_id: Uuid,
    store_id: &StoreId,
) -> sqlx::Result<bool> {
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "insert into orders (order_id, store_id, state) values ($1, $2, 'cancelled')
         on conflict (order_id) do nothing
         returning order_id",
    )
    .bind(order_id)
    .bind(store_id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(inserted.is_some())
}

/// Locks the order's row and returns its state, if inventory knows the order.
pub async fn order_state_for_update(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> sqlx::Result<Option<OrderState>> {
    let state: Option<String> =
        sqlx::query_scalar("select state from orders where order_id = $1 for update")
            .bind(order_id)
            .fetch_optional(&mut *conn)
            .await?;
    state.as_deref().map(OrderState::parse).transpose()
}

/// Sets the state of `orders`.
pub async fn set_order_state(
    conn: &mut PgConnection,
    orders: &[Uuid],
    state: OrderState,
) -> sqlx::Result<()> {
    sqlx::query(
        "update orders set state = $2, updated_at = clock_timestamp() where order_id = any($1)",
    )
    .bind(orders)
    .bind(state.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One reservation row to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReservation {
    /// The order.
    pub order_id: Uuid,
    /// The line.
    pub line_id: String,
    /// The warehouse.
    pub warehouse_id: WarehouseId,
    /// The SKU.
    pub sku: Sku,
    /// Units reserved.
    pub quantity: u32,
}

/// Writes reservation rows.
pub async fn insert_reservations(
    conn: &mut PgConnection,
    rows: &[NewReservation],
) -> sqlx::Result<()> {
    db::unnest(
        "insert into reservations (order_id, line_id, warehouse_id, sku, quantity)
         select * from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int8[])",
        rows,
    )
    .column(|r| r.order_id)
    .column(|r| r.line_id.as_str())
    .column(|r| r.warehouse_id.as_str())
    .column(|r| r.sku.as_str())
    .column(|r| i64::from(r.quantity))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A reservation of an order line in a warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The line.
    pub line_id: String,
    /// The warehouse.
    pub warehouse_id: WarehouseId,
    /// The SKU.
    pub sku: Sku,
    /// Units reserved originally.
    pub quantity: u64,
    /// Units given back.
    pub released: u64,
    /// Units shipped.
    pub dispatched: u64,
}

impl Reservation {
    /// Units still reserved.
    pub fn open(&self) -> u64 {
        self.quantity
            .saturating_sub(self.released)
            .saturating_sub(self.dispatched)
    }
}

#[derive(sqlx::FromRow)]
struct RawReservation {
    order_id: Uuid,
    line_id: String,
    warehouse_id: String,
    sku: String,
    quantity: i64,
    released: i64,
    dispatched: i64,
}

impl RawReservation {
    fn typed(self) -> sqlx::Result<Reservation> {
        Ok(Reservation {
            line_id: self.line_id,
            warehouse_id: valid(WarehouseId::parse(&self.warehouse_id))?,
            sku: valid(Sku::parse(&self.sku))?,
            quantity: valid(u64::try_from(self.quantity))?,
            released: valid(u64::try_from(self.released))?,
            dispatched: valid(u64::try_from(self.dispatched))?,
        })
    }
}

/// The order's reservations, by line then warehouse. With `lock`, the rows are locked (take
/// the SKU locks first).
pub async fn reservations(
    conn: &mut PgConnection,
    order_id: Uuid,
    lock: bool,
) -> sqlx::Result<Vec<Reservation>> {
    Ok(reservations_of(conn, &[order_id], lock)
        .await?
        .remove(&order_id)
        .unwrap_or_default())
}

/// [`reservations`] of several orders, in one statement.
pub async fn reservations_of(
    conn: &mut PgConnection,
    order_ids: &[Uuid],
    lock: bool,
) -> sqlx::Result<std::collections::HashMap<Uuid, Vec<Reservation>>> {
    let query = if lock {
        "select order_id, line_id, warehouse_id, sku, quantity, released, dispatched
         from reservations where order_id = any($1)
         order by order_id, line_id, warehouse_id for update"
    } else {
        "select order_id, line_id, warehouse_id, sku, quantity, released, dispatched
         from reservations where order_id = any($1)
         order by order_id, line_id, warehouse_id"
    };
    let rows: Vec<RawReservation> = sqlx::query_as(query)
        .bind(order_ids)
        .fetch_all(&mut *conn)
        .await?;
    let mut out: std::collections::HashMap<Uuid, Vec<Reservation>> =
        std::collections::HashMap::new();
    for row in rows {
        let order_id = row.order_id;
        out.entry(order_id).or_default().push(row.typed()?);
    }
    Ok(out)
}

/// Adds released units to reservation rows: `(line, warehouse, units)`.
pub async fn add_released(
    conn: &mut PgConnection,
    order_id: Uuid,
    released: &[(String, WarehouseId, u64)],
) -> sqlx::Result<()> {
    db::unnest(
        "update reservations r set released = r.released + u.units
         from unnest($2::text[], $3::text[], $4::int8[]) as u(line_id, warehouse_id, units)
         where r.order_id = $1 and r.line_id = u.line_id and r.warehouse_id = u.warehouse_id",
        released,
    )
    .bind(order_id)
    .column(|r| r.0.as_str())
    .column(|r| r.1.as_str())
    .column(|r| i64::try_from(r.2).unwrap_or(i64::MAX))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Adds dispatched units to reservation rows `(order, line, warehouse, units)`, in one
/// statement (each row at most once).
pub async fn add_dispatched(
    conn: &mut PgConnection,
    dispatched: &[(Uuid, String, WarehouseId, u64)],
) -> sqlx::Result<()> {
    db::unnest(
        "update reservations r set dispatched = r.dispatched + u.units
         from unnest($1::uuid[], $2::text[], $3::text[], $4::int8[])
           as u(order_id, line_id, warehouse_id, units)
         where r.order_id = u.order_id and r.line_id = u.line_id
           and r.warehouse_id = u.warehouse_id",
        dispatched,
    )
    .column(|d| d.0)
    .column(|d| d.1.as_str())
    .column(|d| d.2.as_str())
    .column(|d| i64::try_from(d.3).unwrap_or(i64::MAX))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records that a cancellation was applied; false if it already was.
pub async fn claim_cancellation(
    conn: &mut PgConnection,
    cancel_key: &str,
    order_id: Uuid,
) -> sqlx::Result<bool> {
    let inserted: Option<String> = sqlx::query_scalar(
        "insert into cancellations (cancel_key, order_id) values ($1, $2)
         on conflict do nothing returning cancel_key",
    )
    .bind(cancel_key)
    .bind(order_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(inserted.is_some())
}

/// A backordered order as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBackorder {
    /// The order and its lines.
    pub backorder: Backorder,
    /// The store.
    pub store_id: StoreId,
    /// Correlation id of its messages.
    pub correlation: String,
}

#[derive(sqlx::FromRow)]
struct RawBackorder {
    order_id: Uuid,
    store_id: String,
    lines: Json<Vec<LineRequest>>,
    correlation: String,
}

impl RawBackorder {
    fn typed(self) -> sqlx::Result<StoredBackorder> {
        Ok(StoredBackorder {
            backorder: Backorder {
                order_id: self.order_id,
                lines: self.lines.0,
            },
            store_id: valid(StoreId::parse(&self.store_id))?,
            correlation: self.correlation,
        })
    }
}

fn skus_of(lines: &[LineRequest]) -> Vec<String> {
    let mut skus: Vec<String> = lines.iter().map(|l| l.sku.to_string()).collect();
    skus.sort();
    skus.dedup();
    skus
}

/// Puts an order on the backorder list.
pub async fn insert_backorder(
    conn: &mut PgConnection,
    order_id: Uuid,
    store_id: &StoreId,
    lines: &[LineRequest],
    placed_at: DateTime<Utc>,
    correlation: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into backorders (order_id, store_id, lines, skus, placed_at, correlation)
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(order_id)
    .bind(store_id.as_str())
    .bind(Json(lines))
    .bind(skus_of(lines))
    .bind(placed_at)
    .bind(correlation)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The SKUs needed by the backorders that need any of `skus` (unlocked: to know what to lock).
pub async fn skus_of_backorders_needing(
    conn: &mut PgConnection,
    skus: &[Sku],
) -> sqlx::Result<Vec<Sku>> {
    let all: Vec<String> = sqlx::query_scalar(
        "select distinct s from backorders, unnest(skus) as s where skus && $1::text[] order by s",
    )
    .bind(strings(skus))
    .fetch_all(&mut *conn)
    .await?;
    all.iter().map(|s| valid(Sku::parse(s))).collect()
}

/// Every SKU some backorder needs, sorted.
pub async fn backordered_skus(conn: &mut PgConnection) -> sqlx::Result<Vec<Sku>> {
    let all: Vec<String> =
        sqlx::query_scalar("select distinct s from backorders, unnest(skus) as s order by s")
            .fetch_all(&mut *conn)
            .await?;
    all.iter().map(|s| valid(Sku::parse(s))).collect()
}

/// Locks and returns the backorders that need any of `skus`, oldest first (by when the order
/// was placed, then when it was backordered, then id).
pub async fn backorders_needing_for_update(
    conn: &mut PgConnection,
    skus: &[Sku],
) -> sqlx::Result<Vec<StoredBackorder>> {
    let rows: Vec<RawBackorder> = sqlx::query_as(
        "select order_id, store_id, lines, correlation from backorders
         where skus && $1::text[]
         order by placed_at, created_at, order_id
         for update",
    )
    .bind(strings(skus))
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(RawBackorder::typed).collect()
}

/// Locks and returns the backorder of `order_id`, if it has one.
pub async fn backorder_for_update(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> sqlx::Result<Option<StoredBackorder>> {
    let row: Option<RawBackorder> = sqlx::query_as(
        "select order_id, store_id, lines, correlation from backorders
         where order_id = $1 for update",
    )
    .bind(order_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(RawBackorder::typed).transpose()
}

/// Replaces a backorder's lines (after some were cancelled).
pub async fn update_backorder_lines(
    conn: &mut PgConnection,
    order_id: Uuid,
    lines: &[LineRequest],
) -> sqlx::Result<()> {
    sqlx::query("update backorders set lines = $2, skus = $3 where order_id = $1")
        .bind(order_id)
        .bind(Json(lines))
        .bind(skus_of(lines))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Takes orders off the backorder list.
pub async fn delete_backorders(conn: &mut PgConnection, orders: &[Uuid]) -> sqlx::Result<()> {
    sqlx::query("delete from backorders where order_id = any($1)")
        .bind(orders)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A SKU's levels for a `stock.level_changed`: its next sequence number, GTINs and stock
/// per warehouse.
#[derive(Debug, Clone)]
pub struct LevelSnapshot {
    /// The SKU.
    pub sku: Sku,
    /// Its level sequence, already increased for this change.
    pub sequence: u64,
    /// GTINs from the catalog projection (none for SKUs the catalog never sent).
    pub gtins: Vec<Gtin>,
    /// Stock per warehouse, by warehouse id.
    pub warehouses: Vec<WarehouseStock>,
}

/// Increases the level sequence of each of `skus` (their `levels` rows are locked by the
/// caller) and returns what a level message needs, in one round trip: the statement's
/// snapshot includes this transaction's earlier movements.
pub async fn level_snapshots(
    conn: &mut PgConnection,
    skus: &[Sku],
) -> sqlx::Result<Vec<LevelSnapshot>> {
    type Row = (String, i64, Vec<String>, Vec<String>, Vec<i64>, Vec<i64>);
    let rows: Vec<Row> = sqlx::query_as(
        "with bumped as (
           update levels set sequence = sequence + 1 where sku = any($1) returning sku, sequence
         )
         select b.sku, b.sequence, coalesce(p.gtins, '{}'),
                coalesce(array_agg(s.warehouse_id order by s.warehouse_id)
                           filter (where s.warehouse_id is not null), '{}'),
                coalesce(array_agg(s.on_hand order by s.warehouse_id)
                           filter (where s.warehouse_id is not null), '{}'),
                coalesce(array_agg(s.reserved order by s.warehouse_id)
                           filter (where s.warehouse_id is not null), '{}')
         from bumped b
         left join products p on p.sku = b.sku
         left join stock s on s.sku = b.sku
         group by b.sku, b.sequence, p.gtins
         order by b.sku",
    )
    .bind(strings(skus))
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|(sku, sequence, gtins, warehouses, on_hand, reserved)| {
            Ok(LevelSnapshot {
                sku: valid(Sku::parse(&sku))?,
                sequence: valid(u64::try_from(sequence))?,
                gtins: gtins
                    .iter()
                    .map(|g| valid(Gtin::parse(g)))
                    .collect::<sqlx::Result<Vec<_>>>()?,
                warehouses: warehouses
                    .iter()
                    .zip(on_hand)
                    .zip(reserved)
                    .map(|((w, on_hand), reserved)| {
                        Ok(WarehouseStock {
                            warehouse_id: valid(WarehouseId::parse(w))?,
                            on_hand: valid(u64::try_from(on_hand))?,
                            reserved: valid(u64::try_from(reserved))?,
                        })
                    })
                    .collect::<sqlx::Result<Vec<_>>>()?,
            })
        })
        .collect()
}

/// Stores a catalog product unless a newer version is already stored. True if stored.
pub async fn upsert_product(
    conn: &mut PgConnection,
    sku: &Sku,
    gtins: &[Gtin],
    stock_tracked: bool,
    active: bool,
    updated_at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let stored: Option<String> = sqlx::query_scalar(
        "insert into products (sku, gtins, stock_tracked, active, updated_at)
         values ($1, $2, $3, $4, $5)
         on conflict (sku) do update
           set gtins = excluded.gtins, stock_tracked = excluded.stock_tracked,
               active = excluded.active, updated_at = excluded.updated_at
           where products.updated_at < excluded.updated_at
         returning sku",
    )
    .bind(sku.as_str())
    .bind(strings(gtins))
    .bind(stock_tracked)
    .bind(active)
    .bind(updated_at)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(stored.is_some())
}

/// Which of `skus` the catalog says are not stock-tracked (a SKU the catalog never sent is
/// tracked).
pub async fn untracked_products(
    conn: &mut PgConnection,
    skus: &[Sku],
) -> sqlx::Result<BTreeSet<Sku>> {
    if skus.is_empty() {
        return Ok(BTreeSet::new());
    }
    let rows: Vec<String> =
        sqlx::query_scalar("select sku from products where sku = any($1) and not stock_tracked")
            .bind(strings(skus))
            .fetch_all(&mut *conn)
            .await?;
    rows.iter().map(|s| valid(Sku::parse(s))).collect()
}

/// The most preferred open warehouse inventory knows (lowest priority, then id), if any.
pub async fn most_preferred_warehouse(
    conn: &mut PgConnection,
) -> sqlx::Result<Option<WarehouseId>> {
    let row: Option<String> = sqlx::query_scalar(
        "select warehouse_id from warehouses where active
         order by priority, warehouse_id limit 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|w| valid(WarehouseId::parse(&w))).transpose()
}

/// Stores a declared warehouse unless a newer revision is stored already (a warehouse
/// seen only in stock counts has revision 0). True if stored.
pub async fn upsert_warehouse(
    conn: &mut PgConnection,
    w: &orderly_contracts::messages::WarehouseUpserted,
) -> sqlx::Result<bool> {
    let stored: Option<String> = sqlx::query_scalar(
        "insert into warehouses (warehouse_id, priority, revision, name, country, address, active)
         values ($1, $2, $3, $4, $5, $6, $7)
         on conflict (warehouse_id) do update
           set priority = excluded.priority, revision = excluded.revision,
               name = excluded.name, country = excluded.country,
               address = excluded.address, active = excluded.active
           where warehouses.revision < excluded.revision
         returning warehouse_id",
    )
    .bind(w.warehouse_id.as_str())
    .bind(i32::from(w.priority))
    .bind(i64::try_from(w.revision).unwrap_or(i64::MAX))
    .bind(&w.name)
    .bind(w.country().as_str())
    .bind(Json(&w.address))
    .bind(w.active)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(stored.is_some())
}

/// Sets a warehouse's priority (lower is preferred), creating it if needed. For operators.
pub async fn set_warehouse_priority(
    conn: &mut PgConnection,
    warehouse: &WarehouseId,
    priority: i32,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into warehouses (warehouse_id, priority) values ($1, $2)
         on conflict (warehouse_id) do update set priority = excluded.priority",
    )
    .bind(warehouse.as_str())
    .bind(priority)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One stock row as operators see it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StockListing {
    /// The SKU.
    pub sku: String,
    /// The warehouse.
    pub warehouse_id: String,
    /// The warehouse's priority.
    pub priority: i32,
    /// Units on hand.
    pub on_hand: i64,
    /// Units reserved.
    pub reserved: i64,
    /// `on_hand - reserved`.
    pub available: i64,
}

/// Stock rows, of one SKU or all, by SKU then warehouse priority.
pub async fn list_stock(
    conn: &mut PgConnection,
    sku: Option<&Sku>,
) -> sqlx::Result<Vec<StockListing>> {
    sqlx::query_as(
        "select s.sku, s.warehouse_id, w.priority, s.on_hand, s.reserved,
                s.on_hand - s.reserved as available
         from stock s join warehouses w using (warehouse_id)
         where $1::text is null or s.sku = $1
         order by s.sku, w.priority, s.warehouse_id",
    )
    .bind(sku.map(Sku::as_str))
    .fetch_all(&mut *conn)
    .await
}

/// One backorder as operators see it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct BackorderListing {
    /// The order.
    pub order_id: Uuid,
    /// The store.
    pub store_id: String,
    /// SKUs it waits for.
    pub skus: Vec<String>,
    /// When the order was placed (the queue order).
    pub placed_at: DateTime<Utc>,
    /// When it was backordered.
    pub created_at: DateTime<Utc>,
}

/// Backorders in the order they will be served, at most `limit`.
pub async fn list_backorders(
    conn: &mut PgConnection,
    limit: i64,
) -> sqlx::Result<Vec<BackorderListing>> {
    sqlx::query_as(
        "select order_id, store_id, skus, placed_at, created_at from backorders
         order by placed_at, created_at, order_id limit $1",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
}

/// A stock row that disagrees with its movements (or movements without a stock row).
#[derive(sqlx::FromRow)]
struct LedgerMismatch {
    warehouse_id: String,
    sku: String,
    on_hand: Option<i64>,
    reserved: Option<i64>,
    ledger_on_hand: Option<i64>,
    ledger_reserved: Option<i64>,
}

/// A reservation that disagrees with its movements or over-releases.
#[derive(sqlx::FromRow)]
struct ReservationMismatch {
    order_id: Uuid,
    line_id: String,
    warehouse_id: String,
    quantity: i64,
    released: i64,
    dispatched: i64,
    ledger_reserved: i64,
    ledger_released: i64,
    ledger_dispatched: i64,
}

/// Checks inventory's invariants and returns every violation, in words (empty: all good).
///
/// - every stock row equals the sum of its movements (on hand and reserved), and every
///   movement belongs to a stock row;
/// - no stock row is negative or reserves more than it holds;
/// - every stock row's reserved equals the open units of its reservations;
/// - every reservation equals its movements (reserved, released, dispatched) and never
///   releases or ships more than it reserved;
/// - open reservations belong only to orders that are reserved (not cancelled or
///   backordered);
/// - backordered orders and the backorder list agree; no order is left `pending`.
///
/// Read-only. Each check is one statement, so it compares tables within one snapshot: safe
/// to run while the workers run, without false alarms.
pub async fn consistency_check(conn: &mut PgConnection) -> sqlx::Result<Vec<String>> {
    let mut violations = Vec::new();

    let ledger: Vec<LedgerMismatch> = sqlx::query_as(
        "select coalesce(s.warehouse_id, m.warehouse_id) as warehouse_id,
                coalesce(s.sku, m.sku) as sku,
                s.on_hand, s.reserved,
                m.on_hand as ledger_on_hand, m.reserved as ledger_reserved
         from stock s
         full join (select warehouse_id, sku,
                           sum(on_hand_delta)::bigint as on_hand,
                           sum(reserved_delta)::bigint as reserved
                    from movements group by warehouse_id, sku) m
           on m.warehouse_id = s.warehouse_id and m.sku = s.sku
         where s.on_hand is null
            or s.on_hand <> coalesce(m.on_hand, 0)
            or s.reserved <> coalesce(m.reserved, 0)
         order by 2, 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in ledger {
        let LedgerMismatch {
            warehouse_id,
            sku,
            on_hand,
            reserved,
            ledger_on_hand,
            ledger_reserved,
        } = row;
        let (ledger_on_hand, ledger_reserved) =
            (ledger_on_hand.unwrap_or(0), ledger_reserved.unwrap_or(0));
        violations.push(match (on_hand, reserved) {
            (Some(on_hand), Some(reserved)) => format!(
                "stock of {sku} in {warehouse_id} is on_hand {on_hand}, reserved {reserved}, but \
                 its movements add up to on_hand {ledger_on_hand}, reserved {ledger_reserved}"
            ),
            _ => format!(
                "movements of {sku} in {warehouse_id} (on_hand {ledger_on_hand}, reserved \
                 {ledger_reserved}) have no stock row"
            ),
        });
    }

    let invalid: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "select warehouse_id, sku, on_hand, reserved from stock
         where on_hand < 0 or reserved < 0 or reserved > on_hand
         order by sku, warehouse_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (warehouse, sku, on_hand, reserved) in invalid {
        violations.push(format!(
            "stock of {sku} in {warehouse} is invalid: on_hand {on_hand}, reserved {reserved}"
        ));
    }

    let reserved: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "select coalesce(s.warehouse_id, r.warehouse_id), coalesce(s.sku, r.sku),
                coalesce(s.reserved, 0), coalesce(r.open, 0)
         from stock s
         full join (select warehouse_id, sku,
                           sum(quantity - released - dispatched)::bigint as open
                    from reservations group by warehouse_id, sku) r
           on r.warehouse_id = s.warehouse_id and r.sku = s.sku
         where coalesce(s.reserved, 0) <> coalesce(r.open, 0)
         order by 2, 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (warehouse, sku, stock_reserved, open) in reserved {
        violations.push(format!(
            "stock of {sku} in {warehouse} has {stock_reserved} reserved, but its open \
             reservations add up to {open}"
        ));
    }

    let per_reservation: Vec<ReservationMismatch> = sqlx::query_as(
        "select coalesce(r.order_id, m.order_id) as order_id,
                coalesce(r.line_id, m.line_id) as line_id,
                coalesce(r.warehouse_id, m.warehouse_id) as warehouse_id,
                coalesce(r.quantity, 0) as quantity,
                coalesce(r.released, 0) as released,
                coalesce(r.dispatched, 0) as dispatched,
                coalesce(m.reserved, 0) as ledger_reserved,
                coalesce(m.released, 0) as ledger_released,
                coalesce(m.dispatched, 0) as ledger_dispatched
         from reservations r
         full join (select order_id, line_id, warehouse_id,
                           sum(reserved_delta) filter (where kind = 'reservation')::bigint
                             as reserved,
                           (-sum(reserved_delta) filter (where kind = 'release'))::bigint
                             as released,
                           (-sum(reserved_delta) filter (where kind = 'dispatch'))::bigint
                             as dispatched
                    from movements where kind <> 'adjustment'
                    group by order_id, line_id, warehouse_id) m
           on m.order_id = r.order_id and m.line_id = r.line_id
          and m.warehouse_id = r.warehouse_id
         where coalesce(r.quantity, 0) <> coalesce(m.reserved, 0)
            or coalesce(r.released, 0) <> coalesce(m.released, 0)
            or coalesce(r.dispatched, 0) <> coalesce(m.dispatched, 0)
            or r.released + r.dispatched > r.quantity
            or r.released < 0 or r.dispatched < 0
         order by 1, 2, 3",
    )
    .fetch_all(&mut *conn)
    .await?;
    for r in per_reservation {
        violations.push(format!(
            "reservation of order {} line {} in {}: reserved {}, released {}, dispatched {}; \
             its movements say reserved {}, released {}, dispatched {}",
            r.order_id,
            r.line_id,
            r.warehouse_id,
            r.quantity,
            r.released,
            r.dispatched,
            r.ledger_reserved,
            r.ledger_released,
            r.ledger_dispatched
        ));
    }

    let stray: Vec<(Uuid, String, i64)> = sqlx::query_as(
        "select r.order_id, coalesce(o.state, 'unknown'),
                sum(r.quantity - r.released - r.dispatched)::bigint
         from reservations r left join orders o using (order_id)
         where o.state is distinct from 'reserved'
         group by r.order_id, o.state
         having sum(r.quantity - r.released - r.dispatched) > 0
         order by 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (order, state, open) in stray {
        violations.push(format!(
            "order {order} is {state} but still holds {open} reserved units"
        ));
    }

    let backorders: Vec<(Uuid, Option<String>, bool)> = sqlx::query_as(
        "select coalesce(o.order_id, b.order_id), o.state, b.order_id is not null
         from (select * from orders where state in ('backordered', 'pending')) o
         full join backorders b using (order_id)
         where o.state is distinct from 'backordered' or b.order_id is null
         order by 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (order, state, listed) in backorders {
        violations.push(match (state.as_deref(), listed) {
            (Some("pending"), _) => format!("order {order} was left pending"),
            (Some(_), false) => {
                format!("order {order} is backordered but not on the backorder list")
            }
            (_, _) => format!("order {order} is on the backorder list but not backordered"),
        });
    }

    Ok(violations)
}
