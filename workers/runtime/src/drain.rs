//! The loop of a worker's background task that drains one of its tables (webhook
//! deliveries, invoices waiting for their PDF): written once, so every such task wakes,
//! backs off and stops the same way.
//!
//! A round claims rows (`FOR UPDATE SKIP LOCKED`, so several copies share the work), does
//! them and commits. Rounds run back to back while they come back full; otherwise the task
//! sleeps until the next row is due, its [`Wake`] says rows arrived (the worker's consumer
//! wakes it in process after committing a batch that queued rows), a `NOTIFY` on its channel
//! says so (only for operator commands from another process, which cannot reach the wake),
//! or shutdown. A failed round (database away) is retried after a growing pause, never
//! dropped: the rows stay in the table.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Wakes a worker's background task in the same process: the consumer calls
/// [`Wake::wake`] after committing a batch that queued rows for the task. A wake given while
/// the task is busy is kept (one), so the task runs one more round and misses nothing.
#[derive(Debug, Clone, Default)]
pub struct Wake(Arc<tokio::sync::Notify>);

impl Wake {
    /// Wakes the task (or makes its next wait return at once).
    pub fn wake(&self) {
        self.0.notify_one();
    }

    /// Waits for a wake.
    pub async fn woken(&self) {
        self.0.notified().await;
    }
}

/// What a round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// It claimed a full batch: there may be more, run again at once.
    Full,
    /// It claimed less than a batch: wait for the next due row or a notification.
    Drained,
}

impl Round {
    /// `Full` when `claimed` reached `batch_size`.
    pub fn of(claimed: usize, batch_size: i64) -> Self {
        if i64::try_from(claimed).unwrap_or(i64::MAX) >= batch_size {
            Self::Full
        } else {
            Self::Drained
        }
    }
}

/// Runs `round` until `shutdown`. After a round that drained the table it sleeps until the
/// next row is due (`next_due`: the earliest time a row becomes due, if any), at most `poll`;
/// `wake`, or a `NOTIFY` on `channel` when there is one, cuts the sleep short. `name` is for
/// the logs.
#[allow(clippy::too_many_arguments)]
pub async fn run<R, RF, N, NF>(
    pool: &PgPool,
    wake: Wake,
    channel: Option<&str>,
    name: &str,
    shutdown: CancellationToken,
    poll: Duration,
    mut round: R,
    mut next_due: N,
) where
    R: FnMut() -> RF,
    RF: Future<Output = anyhow::Result<Round>>,
    N: FnMut() -> NF,
    NF: Future<Output = anyhow::Result<Option<DateTime<Utc>>>>,
{
    let mut listener = match channel {
        None => None,
        Some(channel) => match listen(pool, channel).await {
            Ok(l) => Some(l),
            Err(e) => {
                warn!(task = name, error = %e, "cannot listen for notifications; polling and wakes only");
                None
            }
        },
    };
    info!(task = name, "background task running");
    let mut failures_in_a_row = 0u32;
    while !shutdown.is_cancelled() {
        let wait = match round().await {
            Ok(Round::Full) => {
                failures_in_a_row = 0;
                continue;
            }
            Ok(Round::Drained) => {
                failures_in_a_row = 0;
                match next_due().await {
                    Ok(Some(at)) => (at - Utc::now())
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                        .min(poll),
                    _ => poll,
                }
            }
            Err(e) => {
                failures_in_a_row += 1;
                warn!(task = name, error = %e, "round failed; trying again");
                Duration::from_millis(200 * u64::from(failures_in_a_row.min(25)))
            }
        };
        let until = tokio::time::Instant::now() + wait;
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep_until(until) => {}
            () = wake.woken() => {}
            n = async {
                match listener.as_mut() {
                    Some(l) => l.recv().await.map(drop),
                    None => std::future::pending().await,
                }
            } => {
                if let Err(e) = n {
                    // The listener reconnects on its next call; while the database is away
                    // that fails at once, so sleep out the wait instead of spinning.
                    debug!(task = name, error = %e, "listener interrupted");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep_until(until) => {}
                    }
                }
            }
        }
    }
    info!(task = name, "background task stopped");
}

async fn listen(pool: &PgPool, channel: &str) -> sqlx::Result<PgListener> {
    let mut l = PgListener::connect_with(pool).await?;
    l.listen(channel).await?;
    Ok(l)
}
