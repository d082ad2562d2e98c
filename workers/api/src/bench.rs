//! The api worker's side of `orderly bench api` (feature `bench`, never in the product): a
//! read model of a platform's size and shape, its size on disk, and orders to ask for.
//!
//! Why the read model is written with SQL and not by sending a million orders through the
//! pipeline: the benchmark measures reads, and the pipeline makes a few hundred orders a
//! second on this machine (an hour for a million). The rows are the ones the projection
//! writes (`store::projection`), in the shapes its events carry: `seed.sql` is the one place
//! that knows them, next to the schema it fills, so a change to the read model's tables
//! breaks the benchmark where it can be seen. What the projection alone would do differently
//! (every row of an order written in several transactions, dead tuples until a vacuum) is
//! left out; the tables are vacuumed and analysed after the load, as autovacuum would have
//! done by the time a year of orders had arrived.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::{PgPool, postgres::PgPoolOptions};
use uuid::Uuid;

/// One store of the benchmark's platform.
#[derive(Debug, Clone, Copy)]
pub struct Store {
    /// Its id.
    pub id: &'static str,
    /// Where its orders come from (`storefront`, `marketplace`, `pos`).
    pub channel: &'static str,
    /// The marketplace, for a marketplace's store.
    pub marketplace: Option<&'static str>,
    /// Its currency.
    pub currency: &'static str,
    /// Its customers' country.
    pub country: &'static str,
}

const fn store(
    id: &'static str,
    channel: &'static str,
    marketplace: Option<&'static str>,
    currency: &'static str,
    country: &'static str,
) -> Store {
    Store {
        id,
        channel,
        marketplace,
        currency,
        country,
    }
}

/// The stores, largest first (`seed.sql` gives the first the most orders).
pub const STORES: [Store; 20] = [
    store("shop-de", "storefront", None, "EUR", "DE"),
    store("amazon-de", "marketplace", Some("amazon.de"), "EUR", "DE"),
    store("bol-nl", "marketplace", Some("bol.com"), "EUR", "NL"),
    store("shop-nl", "storefront", None, "EUR", "NL"),
    store("zalando-de", "marketplace", Some("zalando"), "EUR", "DE"),
    store("shop-fr", "storefront", None, "EUR", "FR"),
    store("shop-at", "storefront", None, "EUR", "AT"),
    store("amazon-fr", "marketplace", Some("amazon.fr"), "EUR", "FR"),
    store("shop-be", "storefront", None, "EUR", "BE"),
    store("shop-it", "storefront", None, "EUR", "IT"),
    store("shop-es", "storefront", None, "EUR", "ES"),
    store("shop-pl", "storefront", None, "PLN", "PL"),
    store("pos-berlin", "pos", None, "EUR", "DE"),
    store("shop-se", "storefront", None, "SEK", "SE"),
    store("zalando-nl", "marketplace", Some("zalando"), "EUR", "NL"),
    store("shop-dk", "storefront", None, "DKK", "DK"),
    store("shop-ie", "storefront", None, "EUR", "IE"),
    store("shop-ch", "storefront", None, "CHF", "CH"),
    store("pos-wien", "pos", None, "EUR", "AT"),
    store("shop-uk", "storefront", None, "GBP", "GB"),
];

/// The first `n` stores (at least one, at most all twenty).
pub fn stores(n: usize) -> &'static [Store] {
    &STORES[..n.clamp(1, STORES.len())]
}

/// Orders one statement of the seed writes.
const CHUNK: u64 = 20_000;

/// What the seed wrote, and how long it took.
#[derive(Debug, Clone, Default)]
pub struct Seeded {
    /// Orders.
    pub orders: u64,
    /// Status history rows.
    pub history: u64,
    /// Shipments.
    pub shipments: u64,
    /// Invoices and credit notes.
    pub documents: u64,
    /// Cancellations.
    pub cancellations: u64,
    /// Writing the rows.
    pub load: Duration,
    /// `VACUUM (ANALYZE)` of the tables afterwards, and a checkpoint.
    pub vacuum: Duration,
}

/// A pool on the api schema of `database_url` for the benchmark's own statements. Not
/// `orderly_runtime::db::connect`: its sessions price sequential scans out, which suits a
/// worker's look-ups and not a bulk load or a random sample of a whole table.
pub async fn connect(database_url: &str, size: u32) -> anyhow::Result<PgPool> {
    use std::str::FromStr;
    let options = sqlx::postgres::PgConnectOptions::from_str(database_url)?
        .options([("search_path", format!("{},public", crate::NAME))])
        .application_name("orderly-bench-api");
    Ok(PgPoolOptions::new()
        .max_connections(size)
        .connect_with(options)
        .await?)
}

/// Writes `orders` orders of `stores` into the read model with `parallel` connections (one
/// statement of [`CHUNK`] orders at a time each), calling `progress` with the orders written
/// so far; then vacuums and analyses the tables.
pub async fn seed(
    pool: &PgPool,
    orders: u64,
    stores: &[Store],
    parallel: usize,
    progress: impl Fn(u64) + Send + Sync + 'static,
) -> anyhow::Result<Seeded> {
    let started = Instant::now();
    let column = |f: fn(&Store) -> Option<&'static str>| -> Vec<Option<&'static str>> {
        stores.iter().map(f).collect()
    };
    let load = Arc::new(Load {
        orders,
        chunks: orders.div_ceil(CHUNK),
        next: AtomicU64::new(0),
        columns: [
            column(|s| Some(s.id)),
            column(|s| Some(s.channel)),
            column(|s| Some(s.currency)),
            column(|s| s.marketplace),
            column(|s| Some(s.country)),
        ],
        written: Mutex::new(Seeded::default()),
        progress: Box::new(progress),
    });
    let mut loaders = tokio::task::JoinSet::new();
    for _ in 0..parallel.max(1) {
        loaders.spawn(load.clone().run(pool.clone()));
    }
    while let Some(done) = loaders.join_next().await {
        done??;
    }
    let mut seeded = load
        .written
        .lock()
        .map_err(|_| anyhow::anyhow!("a loader panicked"))?
        .clone();
    seeded.load = started.elapsed();
    let started = Instant::now();
    for table in TABLES {
        // One statement per call: VACUUM cannot run in the implicit transaction of several.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("vacuum (analyze) {table}")))
            .execute(pool)
            .await?;
    }
    // The load's writes reach the disk now, not while the reads are measured (the kernel
    // flushing gigabytes of fresh pages took a fifth of a core in the first runs).
    sqlx::raw_sql("checkpoint").execute(pool).await?;
    seeded.vacuum = started.elapsed();
    Ok(seeded)
}

/// The seed's work, shared by its loaders: each takes the next chunk until none is left.
struct Load {
    orders: u64,
    chunks: u64,
    next: AtomicU64,
    /// The stores' ids, channels, currencies, marketplaces and countries (`$3` to `$7`).
    columns: [Vec<Option<&'static str>>; 5],
    written: Mutex<Seeded>,
    progress: Box<dyn Fn(u64) + Send + Sync>,
}

impl Load {
    async fn run(self: Arc<Self>, pool: PgPool) -> anyhow::Result<()> {
        let mut conn = pool.acquire().await?;
        // The load is repeatable from its start; losing it in a crash costs nothing.
        sqlx::query("set synchronous_commit = off")
            .execute(&mut *conn)
            .await?;
        loop {
            let chunk = self.next.fetch_add(1, Ordering::Relaxed);
            if chunk >= self.chunks {
                return Ok(());
            }
            let first = chunk * CHUNK + 1;
            let last = ((chunk + 1) * CHUNK).min(self.orders);
            // The same orders for the same numbers, run after run (the ids of shipments
            // and documents aside).
            sqlx::query("select setseed($1)")
                .bind(chunk as f64 / self.chunks as f64)
                .execute(&mut *conn)
                .await?;
            let [ids, channels, currencies, marketplaces, countries] = &self.columns;
            let (o, h, s, d, c): (i64, i64, i64, i64, i64) =
                sqlx::query_as(include_str!("bench/seed.sql"))
                    .bind(i64::try_from(first)?)
                    .bind(i64::try_from(last)?)
                    .bind(ids)
                    .bind(channels)
                    .bind(currencies)
                    .bind(marketplaces)
                    .bind(countries)
                    .bind(i64::try_from(self.orders)?)
                    .fetch_one(&mut *conn)
                    .await?;
            let total = {
                let mut w = self
                    .written
                    .lock()
                    .map_err(|_| anyhow::anyhow!("a loader panicked"))?;
                let n = |v: i64| u64::try_from(v).unwrap_or(0);
                w.orders += n(o);
                w.history += n(h);
                w.shipments += n(s);
                w.documents += n(d);
                w.cancellations += n(c);
                w.orders
            };
            (self.progress)(total);
        }
    }
}

/// The read model's tables.
const TABLES: [&str; 5] = [
    "orders",
    "status_history",
    "shipments",
    "documents",
    "cancellations",
];

/// An order of the read model, to ask for by id, store, number, name or e-mail.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Sampled {
    /// Its id.
    pub order_id: Uuid,
    /// Its store.
    pub store_id: String,
    /// Its number in the store.
    pub external_order_id: String,
    /// Its customer's name (none while on hold).
    pub customer_name: Option<String>,
    /// Its customer's e-mail.
    pub customer_email: Option<String>,
    /// When it was placed.
    pub placed_at: DateTime<Utc>,
}

/// `n` orders picked at random.
pub async fn sample(pool: &PgPool, n: u32) -> anyhow::Result<Vec<Sampled>> {
    Ok(sqlx::query_as(
        "select order_id, store_id, external_order_id, customer_name, customer_email, placed_at \
         from orders order by random() limit $1",
    )
    .bind(i64::from(n))
    .fetch_all(pool)
    .await?)
}

/// What one table of the api schema takes on disk.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TableSize {
    /// The table.
    pub table: String,
    /// Its rows (the planner's count, exact after the seed's analyse).
    pub rows: f32,
    /// The table with its TOAST, in bytes.
    pub table_bytes: i64,
    /// Its indexes, in bytes.
    pub index_bytes: i64,
}

/// Every table of the api schema, largest first.
pub async fn sizes(pool: &PgPool) -> anyhow::Result<Vec<TableSize>> {
    Ok(sqlx::query_as(
        "select c.relname::text as \"table\", c.reltuples as rows, \
           pg_table_size(c.oid) as table_bytes, pg_indexes_size(c.oid) as index_bytes \
         from pg_class c join pg_namespace n on n.oid = c.relnamespace \
         where n.nspname = $1 and c.relkind = 'r' \
         order by pg_total_relation_size(c.oid) desc",
    )
    .bind(crate::NAME)
    .fetch_all(pool)
    .await?)
}

/// Computes the analytics rollups from the facts (after the facts were computed for the
/// seeded orders), as the migration's backfill does.
pub async fn rebuild_rollups(pool: &PgPool) -> anyhow::Result<()> {
    crate::store::analytics::rebuild(pool).await?;
    Ok(())
}
