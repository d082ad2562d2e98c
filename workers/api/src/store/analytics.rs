//! Order analytics: the facts of each order (`order_facts`, `order_fact_lines`) and their
//! sums per day and ISO week (`order_rollups`, `sku_rollups`), kept by the projection, and
//! the figures read from the sums of a range.
//!
//! The facts are recomputed from the read model by one SQL function
//! (`refresh_order_facts`, in the migration that made the tables), so they are whatever
//! the read model says, whatever order and how often the events arrived. [`refresh`] reads
//! them before and after and adds the difference to the rollups in the same transaction
//! ([`crate::domain::rollup`]), so a figure request reads a few rows per day or week and
//! store, never the orders.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::domain::analytics::{AnalyticsQuery, Dimension, Interval};
use crate::domain::rollup::{
    self, Changes, Corrupt, Cover, FactLine, Facts, Histogram, Key, Kind, OrderFacts, Sums,
};

/// The columns of `order_rollups`, in [`RollupRow`]'s order.
macro_rules! rollup_columns {
    () => {
        "kind, period, store_id, channel, currency, orders, cancelled, gross, tax, exceptions, \
         backordered, resolve, serve, shipped, shipped_to_delivered, delivered, ship_hours"
    };
}

/// Why the analytics could not be read or kept.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AnalyticsError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Corrupt(#[from] Corrupt),
}

/// Recomputes the facts of `facts` (and of `with_lines`, with their lines) from the read
/// model, and adds what changed to the rollups.
pub(crate) async fn refresh(
    conn: &mut PgConnection,
    with_lines: &[Uuid],
    facts: &[Uuid],
) -> Result<(), AnalyticsError> {
    let all: Vec<Uuid> = with_lines
        .iter()
        .chain(facts)
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if all.is_empty() {
        return Ok(());
    }
    let before = read(conn, &all, &all).await?;
    for (ids, lines) in [(with_lines, true), (facts, false)] {
        if !ids.is_empty() {
            sqlx::query("select refresh_order_facts($1, $2)")
                .bind(ids)
                .bind(lines)
                .execute(&mut *conn)
                .await?;
        }
    }
    let mut after = read(conn, &all, with_lines).await?;
    let mut changes = Changes::default();
    let none = OrderFacts::default();
    for id in &all {
        let was = before.get(id).unwrap_or(&none);
        let now = after.entry(*id).or_default();
        if with_lines.binary_search(id).is_err() {
            // Its lines were not recomputed.
            now.lines.clone_from(&was.lines);
        }
        changes.add(was, now);
    }
    apply(conn, &changes).await
}

#[derive(sqlx::FromRow)]
struct FactsRow {
    order_id: Uuid,
    store_id: String,
    channel: Option<String>,
    currency: String,
    placed_at: DateTime<Utc>,
    gross: Decimal,
    tax: Option<Decimal>,
    cancelled: bool,
    exception: bool,
    resolved_at: Option<DateTime<Utc>>,
    backordered_at: Option<DateTime<Utc>>,
    served_at: Option<DateTime<Utc>>,
    shipped_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
}

/// The facts of `orders`, with the lines of `lines_of` (sorted).
async fn read(
    conn: &mut PgConnection,
    orders: &[Uuid],
    lines_of: &[Uuid],
) -> sqlx::Result<HashMap<Uuid, OrderFacts>> {
    let rows: Vec<FactsRow> = sqlx::query_as(
        "select order_id, store_id, channel, currency, placed_at, gross, tax, cancelled, \
           exception, resolved_at, backordered_at, served_at, shipped_at, delivered_at \
         from order_facts where order_id = any($1)",
    )
    .bind(orders)
    .fetch_all(&mut *conn)
    .await?;
    let mut out: HashMap<Uuid, OrderFacts> = rows
        .into_iter()
        .map(|r| {
            (
                r.order_id,
                OrderFacts {
                    facts: Some(Facts {
                        store_id: r.store_id,
                        channel: r.channel,
                        currency: r.currency,
                        placed_at: r.placed_at,
                        gross: r.gross,
                        tax: r.tax,
                        cancelled: r.cancelled,
                        exception: r.exception,
                        resolved_at: r.resolved_at,
                        backordered_at: r.backordered_at,
                        served_at: r.served_at,
                        shipped_at: r.shipped_at,
                        delivered_at: r.delivered_at,
                    }),
                    lines: Vec::new(),
                },
            )
        })
        .collect();
    if lines_of.is_empty() {
        return Ok(out);
    }
    let lines: Vec<(Uuid, String, i32, Decimal)> = sqlx::query_as(
        "select order_id, sku, quantity, amount from order_fact_lines \
         where order_id = any($1) order by order_id, line_no",
    )
    .bind(lines_of)
    .fetch_all(&mut *conn)
    .await?;
    for (order_id, sku, quantity, amount) in lines {
        out.entry(order_id).or_default().lines.push(FactLine {
            sku,
            quantity: i64::from(quantity),
            amount,
        });
    }
    Ok(out)
}

/// The class of the rollups' advisory locks (two-key form: apart from the runtime's
/// one-key message locks).
const LOCK_CLASS: i32 = 0x524f_4c4c;

/// Adds `changes` to the rollups. The rows of one key are changed under an advisory lock
/// of the key, taken in ascending order (so two batches never wait for each other in a
/// circle): read, merged, written back, deleted when no order is left.
async fn apply(conn: &mut PgConnection, changes: &Changes) -> Result<(), AnalyticsError> {
    if changes.is_empty() {
        return Ok(());
    }
    let locks: BTreeSet<i32> = changes
        .orders
        .keys()
        .chain(changes.skus.keys().map(|(k, _)| k))
        .map(lock_of)
        .collect();
    let locks: Vec<i32> = locks.into_iter().collect();
    // Row by row in the array's order: no `order by` for the planner to move.
    sqlx::query("select pg_advisory_xact_lock($1, k) from unnest($2::int4[]) as t(k)")
        .bind(LOCK_CLASS)
        .bind(&locks)
        .execute(&mut *conn)
        .await?;
    apply_orders(conn, &changes.orders).await?;
    apply_skus(conn, &changes.skus).await
}

/// FNV-1a of a rollup key.
fn lock_of(key: &Key) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for part in [
        key.kind.code(),
        &key.period.to_string(),
        &key.store_id,
        &key.channel,
        &key.currency,
    ] {
        for b in part.bytes().chain([0]) {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    i32::from_ne_bytes(h.to_ne_bytes())
}

/// The key columns of `keys`, as arrays to unnest.
struct KeyArrays {
    kind: Vec<&'static str>,
    period: Vec<NaiveDate>,
    store: Vec<String>,
    channel: Vec<String>,
    currency: Vec<String>,
}

impl KeyArrays {
    fn of<'a>(keys: impl Iterator<Item = &'a Key>) -> Self {
        let mut a = Self {
            kind: Vec::new(),
            period: Vec::new(),
            store: Vec::new(),
            channel: Vec::new(),
            currency: Vec::new(),
        };
        for k in keys {
            a.kind.push(k.kind.code());
            a.period.push(k.period);
            a.store.push(k.store_id.clone());
            a.channel.push(k.channel.clone());
            a.currency.push(k.currency.clone());
        }
        a
    }

    /// `q` with the five key arrays bound as `$1` to `$5`.
    fn bind<'q>(
        &'q self,
        q: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
        q.bind(&self.kind)
            .bind(&self.period)
            .bind(&self.store)
            .bind(&self.channel)
            .bind(&self.currency)
    }

    /// The same for a query whose rows are read as `O`.
    fn bind_to<'q, O>(
        &'q self,
        q: sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments> {
        q.bind(&self.kind)
            .bind(&self.period)
            .bind(&self.store)
            .bind(&self.channel)
            .bind(&self.currency)
    }
}

async fn apply_orders(
    conn: &mut PgConnection,
    changes: &BTreeMap<Key, Sums>,
) -> Result<(), AnalyticsError> {
    if changes.is_empty() {
        return Ok(());
    }
    let keys = KeyArrays::of(changes.keys());
    let rows: Vec<RollupRow> = keys
        .bind_to(sqlx::query_as(concat!(
            "select ",
            rollup_columns!(),
            " from order_rollups \
             join unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::text[]) \
               as k(kind, period, store_id, channel, currency) \
               using (kind, period, store_id, channel, currency)"
        )))
        .fetch_all(&mut *conn)
        .await?;
    let mut sums: BTreeMap<Key, Sums> = BTreeMap::new();
    for row in rows {
        let (key, s) = row.decode()?;
        sums.insert(key, s);
    }
    let mut gone = Vec::new();
    let mut kept = Vec::new();
    for (key, change) in changes {
        let s = sums.entry(key.clone()).or_default();
        s.merge(change);
        s.check()?;
        if s.orders == 0 {
            if !s.is_empty() {
                return Err(Corrupt(format!("{key:?} has no order but {s:?}")).into());
            }
            gone.push(key);
        } else {
            kept.push(key);
        }
    }
    if !gone.is_empty() {
        KeyArrays::of(gone.iter().copied())
            .bind(sqlx::query(
                "delete from order_rollups r \
                 using unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::text[]) \
                   as k(kind, period, store_id, channel, currency) \
                 where (r.kind, r.period, r.store_id, r.channel, r.currency) \
                       = (k.kind, k.period, k.store_id, k.channel, k.currency)",
            ))
            .execute(&mut *conn)
            .await?;
    }
    if kept.is_empty() {
        return Ok(());
    }
    let keys = KeyArrays::of(kept.iter().copied());
    let mut counts: [Vec<i64>; 4] = Default::default();
    let mut money: [Vec<Decimal>; 2] = Default::default();
    let mut histograms: [Vec<Option<String>>; 6] = Default::default();
    for key in &kept {
        let s = &sums[*key];
        for (column, n) in
            counts
                .iter_mut()
                .zip([s.orders, s.cancelled, s.exceptions, s.backordered])
        {
            column.push(n);
        }
        money[0].push(s.gross);
        money[1].push(s.tax);
        for (column, h) in histograms.iter_mut().zip([
            &s.resolve,
            &s.serve,
            &s.shipped,
            &s.shipped_to_delivered,
            &s.delivered,
            &s.ship_hours,
        ]) {
            column.push(h.to_pairs()?.map(|pairs| array_literal(&pairs)));
        }
    }
    let mut q = keys.bind(sqlx::query(
        "insert into order_rollups (kind, period, store_id, channel, currency, orders, \
           cancelled, exceptions, backordered, gross, tax, resolve, serve, shipped, \
           shipped_to_delivered, delivered, ship_hours) \
         select kind, period, store_id, channel, currency, orders, cancelled, exceptions, \
           backordered, gross, tax, resolve::int4[], serve::int4[], shipped::int4[], \
           shipped_to_delivered::int4[], delivered::int4[], ship_hours::int4[] \
         from unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::text[], \
           $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::numeric[], $11::numeric[], \
           $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[]) \
           as u(kind, period, store_id, channel, currency, orders, cancelled, exceptions, \
                backordered, gross, tax, resolve, serve, shipped, shipped_to_delivered, \
                delivered, ship_hours) \
         on conflict (kind, period, store_id, channel, currency) do update set \
           orders = excluded.orders, cancelled = excluded.cancelled, \
           exceptions = excluded.exceptions, backordered = excluded.backordered, \
           gross = excluded.gross, tax = excluded.tax, resolve = excluded.resolve, \
           serve = excluded.serve, shipped = excluded.shipped, \
           shipped_to_delivered = excluded.shipped_to_delivered, \
           delivered = excluded.delivered, ship_hours = excluded.ship_hours",
    ));
    for column in &counts {
        q = q.bind(column);
    }
    for column in &money {
        q = q.bind(column);
    }
    for column in &histograms {
        q = q.bind(column);
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

/// `{1,2,3}`.
fn array_literal(numbers: &[i32]) -> String {
    let mut s = String::with_capacity(numbers.len() * 6 + 2);
    s.push('{');
    for (i, n) in numbers.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&n.to_string());
    }
    s.push('}');
    s
}

async fn apply_skus(
    conn: &mut PgConnection,
    changes: &BTreeMap<(Key, String), rollup::SkuSums>,
) -> Result<(), AnalyticsError> {
    if changes.is_empty() {
        return Ok(());
    }
    let keys = KeyArrays::of(changes.keys().map(|(k, _)| k));
    let skus: Vec<&str> = changes.keys().map(|(_, sku)| sku.as_str()).collect();
    let units: Vec<i64> = changes.values().map(|s| s.units).collect();
    let orders: Vec<i64> = changes.values().map(|s| s.orders).collect();
    let revenue: Vec<Decimal> = changes.values().map(|s| s.revenue).collect();
    let after: Vec<(i64, i64)> = keys
        .bind_to(sqlx::query_as(
            "insert into sku_rollups as r (kind, period, store_id, channel, currency, sku, \
               units, orders, revenue) \
             select * from unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::text[], \
               $6::text[], $7::int8[], $8::int8[], $9::numeric[]) \
             on conflict (kind, period, store_id, channel, currency, sku) do update set \
               units = r.units + excluded.units, orders = r.orders + excluded.orders, \
               revenue = r.revenue + excluded.revenue \
             returning units, orders",
        ))
        .bind(&skus)
        .bind(&units)
        .bind(&orders)
        .bind(&revenue)
        .fetch_all(&mut *conn)
        .await?;
    if let Some((units, orders)) = after
        .iter()
        .find(|(units, orders)| *units < 0 || *orders < 0 || (*orders == 0) != (*units == 0))
    {
        return Err(Corrupt(format!(
            "a product's sums went to {units} units, {orders} orders"
        ))
        .into());
    }
    if after.iter().any(|(_, orders)| *orders == 0) {
        keys.bind(sqlx::query(
            "delete from sku_rollups r \
             using unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::text[], \
               $6::text[]) as k(kind, period, store_id, channel, currency, sku) \
             where (r.kind, r.period, r.store_id, r.channel, r.currency, r.sku) \
                   = (k.kind, k.period, k.store_id, k.channel, k.currency, k.sku) \
               and r.orders = 0",
        ))
        .bind(&skus)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Recomputes every rollup from the facts (the migration's backfill; the benchmark's seed;
/// the tests' check).
#[cfg(feature = "bench")]
pub(crate) async fn rebuild(pool: &PgPool) -> sqlx::Result<()> {
    sqlx::query("select rebuild_order_rollups()")
        .execute(pool)
        .await?;
    Ok(())
}

/// The sums of one group of orders, and its late shipments.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) period: NaiveDate,
    pub(crate) store_id: Option<String>,
    pub(crate) channel: Option<String>,
    pub(crate) currency: String,
    pub(crate) sums: Sums,
    /// Orders not cancelled shipped (or, not shipped yet, unshipped as of the request) more
    /// than `late_after_hours` after they were placed.
    pub(crate) late: i64,
}

/// A row of `order_rollups` as stored.
#[derive(Debug, sqlx::FromRow)]
struct RollupRow {
    kind: String,
    period: NaiveDate,
    store_id: String,
    channel: String,
    currency: String,
    orders: i64,
    cancelled: i64,
    gross: Decimal,
    tax: Decimal,
    exceptions: i64,
    backordered: i64,
    resolve: Option<Vec<i32>>,
    serve: Option<Vec<i32>>,
    shipped: Option<Vec<i32>>,
    shipped_to_delivered: Option<Vec<i32>>,
    delivered: Option<Vec<i32>>,
    ship_hours: Option<Vec<i32>>,
}

impl RollupRow {
    fn decode(self) -> Result<(Key, Sums), Corrupt> {
        let h = |pairs: Option<Vec<i32>>| Histogram::from_pairs(pairs.as_deref());
        Ok((
            Key {
                kind: Kind::parse(&self.kind)?,
                period: self.period,
                store_id: self.store_id,
                channel: self.channel,
                currency: self.currency,
            },
            Sums {
                orders: self.orders,
                cancelled: self.cancelled,
                gross: self.gross,
                tax: self.tax,
                exceptions: self.exceptions,
                backordered: self.backordered,
                resolve: h(self.resolve)?,
                serve: h(self.serve)?,
                shipped: h(self.shipped)?,
                shipped_to_delivered: h(self.shipped_to_delivered)?,
                delivered: h(self.delivered)?,
                ship_hours: h(self.ship_hours)?,
            },
        ))
    }
}

/// A group's period, store and channel (when grouped by them) and currency.
type GroupKey = (NaiveDate, Option<String>, Option<String>, String);

/// The rows, days or weeks, of `query` over the orders of `stores` (`None`: every store),
/// as of `now` (for orders not shipped yet that are already late): the rollups of its range
/// merged per period, currency and the dimensions asked for, read in one snapshot with the
/// late orders not shipped yet.
pub(crate) async fn orders(
    pool: &PgPool,
    stores: Option<&[String]>,
    query: &AnalyticsQuery,
    now: DateTime<Utc>,
) -> Result<Vec<Group>, AnalyticsError> {
    let by_day = query.interval == Interval::Day;
    let mut tx = pool.begin().await?;
    sqlx::query("set transaction isolation level repeatable read, read only")
        .execute(&mut *tx)
        .await?;
    let mut sql = QueryBuilder::new(concat!("select ", rollup_columns!(), " from order_rollups"));
    push_cover(
        &mut sql,
        &Cover::of(query.from, query.to, by_day),
        stores,
        query,
    );
    let rows: Vec<RollupRow> = sql
        .build_query_as()
        .persistent(false)
        .fetch_all(&mut *tx)
        .await?;

    // Not shipped yet and already late: more whole seconds since placed than the hours.
    let cutoff = now - chrono::Duration::seconds(i64::from(query.late_after_hours) * 3600 + 1);
    let mut sql = QueryBuilder::new(
        "select (placed_at at time zone 'UTC')::date, store_id, coalesce(channel, ''), \
           currency, count(*) from order_facts \
         where shipped_at is null and not cancelled and placed_at <= ",
    );
    sql.push_bind(cutoff);
    push_range(&mut sql, stores, query);
    sql.push(" group by 1, 2, 3, 4");
    let unshipped: Vec<(NaiveDate, String, String, String, i64)> = sql
        .build_query_as()
        .persistent(false)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;

    let group_key = |period: NaiveDate, store: &str, channel: &str, currency: &str| -> GroupKey {
        (
            if by_day {
                period
            } else {
                rollup::week_of(period)
            },
            query
                .group
                .contains(&Dimension::Store)
                .then(|| store.to_owned()),
            query
                .group
                .contains(&Dimension::Channel)
                .then(|| channel.to_owned())
                .filter(|c| !c.is_empty()),
            currency.to_owned(),
        )
    };
    let mut groups: BTreeMap<GroupKey, (Sums, i64)> = BTreeMap::new();
    for row in rows {
        let (key, sums) = row.decode()?;
        groups
            .entry(group_key(
                key.period,
                &key.store_id,
                &key.channel,
                &key.currency,
            ))
            .or_default()
            .0
            .merge(&sums);
    }
    let hours = i32::try_from(query.late_after_hours).unwrap_or(i32::MAX);
    for (sums, late) in groups.values_mut() {
        *late = sums.ship_hours.above(hours);
    }
    for (day, store, channel, currency, n) in unshipped {
        groups
            .entry(group_key(day, &store, &channel, &currency))
            .or_default()
            .1 += n;
    }
    Ok(groups
        .into_iter()
        .map(
            |((period, store_id, channel, currency), (sums, late))| Group {
                period,
                store_id,
                channel,
                currency,
                sums,
                late,
            },
        )
        .collect())
}

/// ` where …`: the rollup rows of `cover`, its stores (scoped) and channels.
fn push_cover(
    sql: &mut QueryBuilder<Postgres>,
    cover: &Cover,
    stores: Option<&[String]>,
    query: &AnalyticsQuery,
) {
    sql.push(" where (false");
    if let Some((first, last)) = cover.weeks {
        sql.push(" or (kind = 'w' and period between ")
            .push_bind(first)
            .push(" and ")
            .push_bind(last)
            .push(")");
    }
    for (first, last) in &cover.days {
        sql.push(" or (kind = 'd' and period between ")
            .push_bind(*first)
            .push(" and ")
            .push_bind(*last)
            .push(")");
    }
    sql.push(")");
    push_dimensions(sql, stores, query);
}

/// ` and …`: the stores (scoped) and channels of `query`.
fn push_dimensions(
    sql: &mut QueryBuilder<Postgres>,
    stores: Option<&[String]>,
    query: &AnalyticsQuery,
) {
    if let Some(stores) = stores {
        sql.push(" and store_id = any(")
            .push_bind(stores.to_vec())
            .push(")");
    }
    if !query.channels.is_empty() {
        let channels: Vec<&str> = query.channels.iter().map(|c| c.as_str()).collect();
        sql.push(" and channel = any(")
            .push_bind(channels)
            .push(")");
    }
}

/// ` and …`: the order facts placed on the days of `query`, its stores (scoped) and
/// channels.
fn push_range(sql: &mut QueryBuilder<Postgres>, stores: Option<&[String]>, query: &AnalyticsQuery) {
    let start = query.from.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    let end = query
        .to
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc());
    sql.push(" and placed_at >= ")
        .push_bind(start)
        .push(" and placed_at < ")
        .push_bind(end);
    push_dimensions(sql, stores, query);
}

/// One product's figures in one currency.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, schemars::JsonSchema)]
pub(crate) struct TopSku {
    pub(crate) sku: String,
    pub(crate) currency: String,
    /// Units on orders not cancelled as a whole.
    pub(crate) units: i64,
    /// Orders with the product.
    pub(crate) orders: i64,
    /// What the lines came to (units × unit price − the line's discount), as placed.
    pub(crate) revenue: Decimal,
}

/// The products sold most (by units) on the orders of `query`, per currency, from the
/// product rollups of its range.
pub(crate) async fn top_skus(
    pool: &PgPool,
    stores: Option<&[String]>,
    query: &AnalyticsQuery,
) -> sqlx::Result<Vec<TopSku>> {
    let mut sql = QueryBuilder::new(
        "select sku, currency, sum(units)::bigint as units, sum(orders)::bigint as orders, \
           sum(revenue) as revenue from sku_rollups",
    );
    push_cover(
        &mut sql,
        &Cover::of(query.from, query.to, false),
        stores,
        query,
    );
    sql.push(" group by sku, currency order by units desc, sku, currency limit ")
        .push_bind(i64::from(query.limit));
    sql.build_query_as().persistent(false).fetch_all(pool).await
}

/// The headline figures of the last 24 hours per store and currency, for `/metrics`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Headline {
    pub(crate) store_id: String,
    pub(crate) currency: String,
    pub(crate) orders: i64,
    pub(crate) cancelled: i64,
    pub(crate) exceptions: i64,
    pub(crate) backordered: i64,
    pub(crate) gross: Decimal,
}

/// The headline figures of orders placed since `since`.
pub(crate) async fn headline(pool: &PgPool, since: DateTime<Utc>) -> sqlx::Result<Vec<Headline>> {
    sqlx::query_as(
        "select store_id, currency, count(*) as orders, \
           count(*) filter (where cancelled) as cancelled, \
           count(*) filter (where exception) as exceptions, \
           count(*) filter (where backordered_at is not null) as backordered, \
           coalesce(sum(gross) filter (where not cancelled), 0) as gross \
         from order_facts where placed_at >= $1 group by 1, 2 order by 1, 2",
    )
    .bind(since)
    .fetch_all(pool)
    .await
}
