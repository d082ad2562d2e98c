//! `orderly bench operations`: the operators' heavy requests on a read model of a platform's
//! size: an export of every order, a bulk job, the analytics endpoints and the admin
//! console's pages; and what the analytics facts and rollups cost.
//!
//! In a database and namespace of its own (created, then removed):
//! 1. `--orders` orders across `--stores` stores written into the api worker's read model
//!    with SQL (as `orderly bench api` writes them), then their analytics facts computed by
//!    the projection's own function (`refresh_order_facts`), timed: the facts' cost per
//!    order, which the projection pays once per event that can change them.
//! 2. The real api worker (HTTP server, consumer, relay, job sender; rate limits off, bulk
//!    jobs unpaced, 500 commands a batch) and an order admin's token.
//! 3. **Export**: `GET /api/v1/admin/orders/export` of every order, as CSV, read and thrown
//!    away: rows per second, and this process's resident memory (the api worker and the
//!    client both live in it) sampled every 20 ms: before, and the most while it ran.
//! 4. **Analytics**: each analytics request `--requests` times, one at a time: p50, p99.
//!    Then the **console**'s pages (`bench::console`), signed in as a browser would.
//! 5. **Bulk**: a job resending a notification to every order of the largest store that
//!    one job may hold (at most 100,000 orders): commands per second until every command was committed with its outbox
//!    message, and until the relay had published them all. Nothing consumes them: the
//!    notifications worker is not running, and the scratch namespace goes with the run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use orderly_runtime::{Host, Settings, topology};
use sqlx::PgPool;

/// What `orderly bench operations` is asked to do.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub(crate) struct Options {
    /// Orders in the read model.
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) orders: u64,
    /// Stores they are spread over (at most 20).
    #[arg(long, default_value_t = 20)]
    pub(crate) stores: usize,
    /// Times each analytics request is sent.
    #[arg(long, default_value_t = 50)]
    pub(crate) requests: usize,
}

impl Options {
    fn command(&self) -> String {
        crate::bench::command_line(
            "operations",
            &[
                ("--orders", self.orders.to_string(), 1_000_000.to_string()),
                ("--stores", self.stores.to_string(), 20.to_string()),
                ("--requests", self.requests.to_string(), 50.to_string()),
            ],
        )
    }
}

/// Connections writing the read model.
const LOADERS: usize = 2;
/// Orders whose facts one statement computes.
const FACTS_CHUNK: i64 = 50_000;

/// The analytics requests measured: what, and the query string.
const ANALYTICS: [(&str, &str); 5] = [
    ("orders, last 7 days by day", "orders?DAYS7"),
    ("orders, last 30 days by day", "orders?DAYS30"),
    (
        "orders, last 90 days by day and store",
        "orders?DAYS90&group=store",
    ),
    (
        "orders, a year by week, store and channel",
        "orders?DAYS366&interval=week&group=store,channel",
    ),
    ("top products, last 30 days", "top-skus?DAYS30&limit=20"),
];

struct Figures {
    seeded_orders: u64,
    facts_seconds: f64,
    facts_bytes: i64,
    rollups_seconds: f64,
    rollup_bytes: i64,
    rollup_rows: i64,
    export_rows: u64,
    export_bytes: u64,
    export_seconds: f64,
    rss_before: u64,
    rss_peak: u64,
    analytics: Vec<(&'static str, f64, f64)>,
    console: Vec<super::console::Page>,
    bulk_orders: i64,
    bulk_sent_seconds: f64,
    bulk_published_seconds: f64,
}

/// Runs the benchmark, prints the figures and (if `write`) records them.
pub(crate) async fn run(settings: Settings, options: Options, write: bool) -> anyhow::Result<()> {
    let scratch = orderly_runtime::Scratch::new(&settings, "operations").await?;
    let result = measure(&scratch.settings, &options).await;
    if let Err(e) = scratch.remove().await {
        tracing::warn!(error = %format!("{e:#}"), "benchmark clean-up failed");
    }
    let f = result?;
    crate::bench::report(
        "operations",
        "Operators' heavy requests: export, bulk job, analytics, console pages (a million orders)",
        &options.command(),
        &render(&f),
        write,
    )
}

async fn measure(settings: &Settings, options: &Options) -> anyhow::Result<Figures> {
    let stores = orderly_api::bench::stores(options.stores);
    let pool = orderly_api::bench::connect(&settings.database_url, LOADERS as u32 + 1).await?;
    eprintln!("seeding the read model: {} orders...", options.orders);
    let seeded = orderly_api::bench::seed(&pool, options.orders, stores, LOADERS, |_| {}).await?;

    eprintln!("computing the analytics facts...");
    let started = Instant::now();
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar("select order_id from orders order by order_id")
        .fetch_all(&pool)
        .await?;
    for chunk in ids.chunks(usize::try_from(FACTS_CHUNK).unwrap_or(50_000)) {
        sqlx::query("select refresh_order_facts($1, true)")
            .bind(chunk)
            .execute(&pool)
            .await?;
    }
    drop(ids);
    let facts_seconds = started.elapsed().as_secs_f64();
    eprintln!("  {:.0} s; the rollups from the facts...", facts_seconds);
    let started = Instant::now();
    orderly_api::bench::rebuild_rollups(&pool).await?;
    let rollups_seconds = started.elapsed().as_secs_f64();
    sqlx::query("vacuum analyze order_facts, order_fact_lines, order_rollups, sku_rollups")
        .execute(&pool)
        .await?;
    let (facts_bytes, rollup_bytes, rollup_rows): (i64, i64, i64) = sqlx::query_as(
        "select pg_total_relation_size('order_facts') + pg_total_relation_size('order_fact_lines'), \
           pg_total_relation_size('order_rollups') + pg_total_relation_size('sku_rollups'), \
           (select count(*) from order_rollups) + (select count(*) from sku_rollups)",
    )
    .fetch_one(&pool)
    .await?;
    eprintln!("  {:.0} s", rollups_seconds);

    let api_settings = orderly_api::ApiSettings {
        rate_per_second: 0.0,
        address_rate_per_second: 0.0,
        bulk_rate_per_second: 0.0,
        bulk_batch: 500,
        ..settings.section("api")?
    };
    let settings = settings.clone().with_section("api", api_settings);
    let mut host = Host::new(settings.clone());
    host.declare(&topology::standard_specs(&settings)).await?;
    let addr = crate::workers::start_listening(&mut host, orderly_api::NAME)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the api worker did not say where it listens"))?;
    orderly_api::staff::add(&pool, "bench-admin@example.com", "order_admin", &[]).await?;
    let token = orderly_api::staff::issue_token(&pool, "bench-admin@example.com", 1)
        .await?
        .token;
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    let result = async {
        let export = export(&http, &base, &token).await?;
        let analytics = analytics(&http, &base, &token, options.requests).await?;
        // The store with the most orders one job may hold (100,000).
        let store: String = sqlx::query_scalar(
            "select store_id from orders group by store_id having count(*) <= 100000 \
             order by count(*) desc limit 1",
        )
        .fetch_one(&pool)
        .await?;
        let console = super::console::pages(
            &base,
            &pool,
            "bench-admin@example.com",
            &store,
            options.requests,
        )
        .await?;
        let bulk = bulk(&http, &base, &token, &pool, &store).await?;
        anyhow::Ok((export, analytics, console, bulk))
    }
    .await;
    host.stop(Duration::from_secs(10)).await;
    pool.close().await;
    let (
        (export_rows, export_bytes, export_seconds, rss_before, rss_peak),
        analytics,
        console,
        bulk,
    ) = result?;
    Ok(Figures {
        seeded_orders: seeded.orders,
        facts_seconds,
        facts_bytes,
        rollups_seconds,
        rollup_bytes,
        rollup_rows,
        export_rows,
        export_bytes,
        export_seconds,
        rss_before,
        rss_peak,
        analytics,
        console,
        bulk_orders: bulk.0,
        bulk_sent_seconds: bulk.1,
        bulk_published_seconds: bulk.2,
    })
}

/// This process's resident memory, in bytes (Linux).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Rows, bytes, seconds, resident memory before and at most.
async fn export(
    http: &reqwest::Client,
    base: &str,
    token: &str,
) -> anyhow::Result<(u64, u64, f64, u64, u64)> {
    eprintln!("export of every order...");
    let before = rss();
    let peak = Arc::new(AtomicU64::new(before));
    let sampling = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let started = Instant::now();
    let mut response = http
        .get(format!("{base}/api/v1/admin/orders/export"))
        .bearer_auth(token)
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "export: {}",
        response.status()
    );
    let (mut bytes, mut lines) = (0u64, 0u64);
    while let Some(chunk) = response.chunk().await? {
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
    }
    let seconds = started.elapsed().as_secs_f64();
    sampling.abort();
    let rows = lines.saturating_sub(1);
    eprintln!("  {rows} rows in {seconds:.1} s");
    Ok((rows, bytes, seconds, before, peak.load(Ordering::Relaxed)))
}

/// p50 and p99 in milliseconds of each analytics request.
async fn analytics(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    requests: usize,
) -> anyhow::Result<Vec<(&'static str, f64, f64)>> {
    eprintln!("analytics, {requests} of each...");
    let today = chrono::Utc::now().date_naive();
    let mut out = Vec::new();
    for (what, template) in ANALYTICS {
        let mut query = template.to_owned();
        for days in [366u64, 90, 30, 7] {
            let from = today - chrono::Days::new(days - 1);
            query = query.replace(&format!("DAYS{days}"), &format!("from={from}&to={today}"));
        }
        let url = format!("{base}/api/v1/admin/analytics/{query}");
        let mut millis = Vec::with_capacity(requests);
        for _ in 0..requests {
            let started = Instant::now();
            let response = http.get(&url).bearer_auth(token).send().await?;
            anyhow::ensure!(
                response.status().is_success(),
                "{url}: {}",
                response.status()
            );
            response.bytes().await?;
            millis.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        millis.sort_by(f64::total_cmp);
        let p50 = crate::bench::percentile(&millis, 50.0);
        let p99 = crate::bench::percentile(&millis, 99.0);
        eprintln!("  {what}: p50 {p50:.1} ms, p99 {p99:.1} ms");
        out.push((what, p50, p99));
    }
    Ok(out)
}

/// Orders, seconds until every command was sent, until every message was published.
async fn bulk(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    pool: &PgPool,
    store: &str,
) -> anyhow::Result<(i64, f64, f64)> {
    eprintln!("a bulk job over the orders of {store}...");
    let started = Instant::now();
    let response = http
        .post(format!("{base}/api/v1/admin/orders/bulk"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(
            serde_json::json!({"action": "resend_notification", "params": {},
                               "filter": {"store": [store]}})
            .to_string(),
        )
        .send()
        .await?;
    anyhow::ensure!(
        response.status().as_u16() == 202,
        "bulk: {}",
        response.status()
    );
    let body = response.bytes().await?;
    let job: serde_json::Value = serde_json::from_slice(&body)?;
    let job_id: uuid::Uuid = job["job_id"].as_str().unwrap_or_default().parse()?;
    let orders = job["progress"]["total"].as_i64().unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut sent_at = None;
    loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the bulk job did not finish in 10 minutes"
        );
        if sent_at.is_none() {
            let state: String = sqlx::query_scalar("select state from jobs where job_id = $1")
                .bind(job_id)
                .fetch_one(pool)
                .await?;
            if state != "running" {
                sent_at = Some(started.elapsed().as_secs_f64());
            }
        }
        let unpublished: i64 =
            sqlx::query_scalar("select count(*) from outbox where published_at is null")
                .fetch_one(pool)
                .await?;
        if let (Some(sent), 0) = (sent_at, unpublished) {
            let published = started.elapsed().as_secs_f64();
            eprintln!("  {orders} commands: sent in {sent:.1} s, published in {published:.1} s");
            return Ok((orders, sent, published));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn render(f: &Figures) -> String {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    #[allow(clippy::cast_precision_loss)]
    let per_second = |n: f64, s: f64| if s > 0.0 { n / s } else { 0.0 };
    let mut out = String::new();
    out.push_str("| Figure | Value | Target |\n|---|---|---|\n");
    out.push_str(&format!(
        "| analytics facts computed | {} orders in {:.0} s ({:.0} orders/s; {:.0} µs per order, paid by the projection per event that can change them) | — |\n",
        f.seeded_orders,
        f.facts_seconds,
        per_second(f.seeded_orders as f64, f.facts_seconds),
        f.facts_seconds * 1e6 / f.seeded_orders.max(1) as f64
    ));
    out.push_str(&format!(
        "| analytics facts on disk | {:.0} MiB ({:.0} bytes per order, with indexes) | — |\n",
        mib(u64::try_from(f.facts_bytes).unwrap_or_default()),
        f.facts_bytes as f64 / f.seeded_orders.max(1) as f64
    ));
    out.push_str(&format!(
        "| analytics rollups (per day and week, store, channel, currency; and per product) | {} rows, {:.0} MiB, rebuilt from the facts in {:.1} s (kept by the projection per change otherwise) | — |\n",
        f.rollup_rows,
        mib(u64::try_from(f.rollup_bytes).unwrap_or_default()),
        f.rollups_seconds
    ));
    out.push_str(&format!(
        "| export of every order (CSV) | {} rows, {:.0} MiB in {:.1} s: **{:.0} rows/s** | ≥ 100,000 rows/s |\n",
        f.export_rows,
        mib(f.export_bytes),
        f.export_seconds,
        per_second(f.export_rows as f64, f.export_seconds)
    ));
    out.push_str(&format!(
        "| resident memory during the export (api worker and client in one process) | {:.0} MiB before, **{:.0} MiB** at most (+{:.0} MiB) | < 100 MiB peak |\n",
        mib(f.rss_before),
        mib(f.rss_peak),
        mib(f.rss_peak.saturating_sub(f.rss_before))
    ));
    for (what, p50, p99) in &f.analytics {
        out.push_str(&format!(
            "| analytics: {what} | p50 {p50:.1} ms, **p99 {p99:.1} ms** | p99 < 100 ms |\n"
        ));
    }
    for page in &f.console {
        out.push_str(&format!(
            "| console page: {} | p50 {:.1} ms, **p99 {:.1} ms**; {:.0} KB with its stylesheet | p99 < 50 ms, < 200 KB (issue 16) |\n",
            page.what,
            page.p50,
            page.p99,
            page.bytes as f64 / 1024.0
        ));
    }
    out.push_str(&format!(
        "| bulk job (resend, one store's orders) | {} commands sent in {:.1} s: **{:.0} commands/s**; all published by the relay after {:.1} s ({:.0}/s) | ≥ 2,000 commands/s |\n",
        f.bulk_orders,
        f.bulk_sent_seconds,
        per_second(f.bulk_orders as f64, f.bulk_sent_seconds),
        f.bulk_published_seconds,
        per_second(f.bulk_orders as f64, f.bulk_published_seconds)
    ));
    out
}
