//! The projection's lag: the pipeline at a rate, and for every event the api projected, the
//! time from its `occurred_at` to the commit of the api transaction that projected it.

use std::time::{Duration, Instant};

use chrono::Utc;
use orderly_runtime::{
    Host, Settings,
    broker::Names,
    machine::{CpuSample, MachineLoad, ProcessSample},
};
use sqlx::PgPool;

use super::Options;
use crate::sim::{self, Observed, Publisher};

/// What the pipeline phase measured.
#[derive(Debug, Clone)]
pub(super) struct Lag {
    pub(super) placed: usize,
    pub(super) offered: f64,
    pub(super) projected_completed: usize,
    pub(super) completed_after: f64,
    /// (message type, lag to commit ms, lag to the transaction's start ms), one per event.
    pub(super) events: Vec<(String, f64, f64)>,
    pub(super) load: MachineLoad,
    pub(super) busiest: Vec<(String, f64)>,
}

/// Notes when each api transaction that wrote an inbox row committed: a constraint trigger
/// deferred to commit, in the scratch database only.
const COMMIT_PROBE: &str = "
create schema bench_probe;
create table bench_probe.api_commits (
  message_id   uuid primary key,
  message_type text not null,
  committed_at timestamptz not null
);
create function bench_probe.note_commit() returns trigger language plpgsql as $$
begin
  insert into bench_probe.api_commits values (new.message_id, new.message_type, clock_timestamp())
  on conflict do nothing;
  return null;
end $$;
create constraint trigger note_commit after insert on api.inbox
  deferrable initially deferred for each row execute function bench_probe.note_commit();
";

pub(super) async fn projection_lag(
    host: &mut Host,
    settings: &Settings,
    pool: &PgPool,
    options: &Options,
) -> anyhow::Result<Lag> {
    sqlx::raw_sql(COMMIT_PROBE).execute(pool).await?;
    for worker in [
        orderly_orders::NAME,
        orderly_inventory::NAME,
        orderly_fulfillment::NAME,
    ] {
        crate::workers::start(host, worker).await?;
    }
    let names = Names::new(settings.namespace.clone());
    let connection = sim::connect(&settings.broker_url, &names).await?;
    let publisher = Publisher::new(&connection, names.clone()).await?;
    sim::carrier(
        &connection,
        &names,
        publisher.clone(),
        Duration::ZERO,
        false,
        false,
    )
    .await?;
    let orders = (options.pipeline_rate * options.seconds as f64).ceil() as usize;
    let mut stock = sim::tap(&connection, &names, &["stock.level_changed"]).await?;
    sim::seed(
        &publisher,
        u32::try_from(orders / 10 + 10).unwrap_or(u32::MAX),
    )
    .await?;
    sim::wait_for_catalog(&settings.database_url, Duration::from_secs(60)).await?;
    let mut seen = Observed::default();
    let wait = Instant::now();
    while seen.stock.len() < sim::catalog().len() {
        anyhow::ensure!(
            wait.elapsed() < Duration::from_secs(60),
            "the stock was not counted within a minute"
        );
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), stock.recv()).await {
            seen.apply(&m);
        }
    }
    drop(stock);

    let started_at = Utc::now();
    let started = Instant::now();
    let cpu = CpuSample::now();
    let processes = ProcessSample::now();
    let producer = sim::place_orders(publisher, orders, options.pipeline_rate, "BA", started);
    // Done when the read model shows every order completed.
    let deadline = Duration::from_secs(options.seconds + 120);
    let mut completed = 0;
    let mut completed_after = f64::NAN;
    while started.elapsed() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        completed = usize::try_from(
            sqlx::query_scalar::<_, i64>(
                "select count(*) from orders where placed_at >= $1 and completed_at is not null",
            )
            .bind(started_at - chrono::Duration::seconds(5))
            .fetch_one(pool)
            .await?,
        )
        .unwrap_or(0);
        if completed >= orders {
            completed_after = started.elapsed().as_secs_f64();
            break;
        }
    }
    let (sent, offered_for) = producer.await??;
    let load = CpuSample::now().since(&cpu);
    let busiest = ProcessSample::now().busiest_since(&processes, 6);
    let _ = connection.close(200, "done".into()).await;
    Ok(Lag {
        placed: sent.len(),
        offered: sent.len() as f64 / offered_for.as_secs_f64().max(f64::EPSILON),
        projected_completed: completed,
        completed_after,
        events: lag_of_events(pool).await?,
        load,
        busiest,
    })
}

/// Every event the api projected that a worker of this database sent: (type, ms from its
/// `occurred_at` to the commit of the api's transaction, ms to that transaction's start).
/// Reads every outbox of the database (a benchmark's view, not a worker's).
async fn lag_of_events(pool: &PgPool) -> anyhow::Result<Vec<(String, f64, f64)>> {
    let schemas: Vec<String> = sqlx::query_scalar(
        "select table_schema::text from information_schema.tables \
         where table_name = 'outbox' and table_schema <> $1",
    )
    .bind(orderly_api::NAME)
    .fetch_all(pool)
    .await?;
    let sent = schemas
        .iter()
        .map(|schema| {
            format!(
                "select message_id, (body ->> 'occurred_at')::timestamptz as occurred_at \
                 from \"{}\".outbox",
                schema.replace('"', "\"\"")
            )
        })
        .collect::<Vec<_>>()
        .join(" union all ");
    let sql = format!(
        "select c.message_type, \
           1000 * extract(epoch from c.committed_at - s.occurred_at)::float8, \
           1000 * extract(epoch from i.handled_at - s.occurred_at)::float8 \
         from bench_probe.api_commits c \
         join ({sent}) s using (message_id) \
         join api.inbox i using (message_id)"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await?)
}
