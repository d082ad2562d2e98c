//! The setups worker's background sweep: every `[setups] sweep_ms` it reports the setups
//! past their stage's SLA ([`crate::overdue`]) and reminds the clients who keep a setup
//! waiting ([`crate::reminders`]).

use std::time::Duration;

use chrono::Utc;
use orderly_runtime::outbox::{self, Handoff, OutboxMessage};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::{overdue, reminders};

/// `[setups]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SetupSettings {
    /// How often the sweep runs, in milliseconds.
    pub sweep_ms: u64,
    /// Hours a setup waits for its client (intake form, approval) before each reminder
    /// (48: after two days, then after four; 0: no reminders).
    pub client_reminder_hours: u32,
    /// Most reminders per wait (2).
    pub client_reminders: u32,
}

impl Default for SetupSettings {
    fn default() -> Self {
        Self {
            sweep_ms: 60_000,
            client_reminder_hours: 48,
            client_reminders: 2,
        }
    }
}

/// Runs the sweeps every `settings.sweep_ms` until `shutdown`.
pub(crate) async fn run(
    pool: PgPool,
    handoff: Option<Handoff>,
    settings: SetupSettings,
    shutdown: CancellationToken,
) {
    let every = Duration::from_millis(settings.sweep_ms.max(100));
    loop {
        let now = Utc::now();
        if let Err(e) = overdue::sweep_overdue(&pool, handoff.as_ref(), now).await {
            warn!(error = %e, "overdue sweep failed; trying again next round");
        }
        if let Err(e) = reminders::sweep_reminders(&pool, handoff.as_ref(), &settings, now).await {
            warn!(error = %e, "reminder sweep failed; trying again next round");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// Most setups one sweep transaction takes.
const BATCH: i64 = 500;

/// One kind of sweep: what it marks and what it says about it.
pub(crate) trait Sweep {
    /// Marks at most `limit` setups in `conn`'s transaction; returns how many it marked and
    /// the messages to send for them.
    async fn batch(
        &self,
        conn: &mut PgConnection,
        limit: i64,
    ) -> anyhow::Result<(usize, Vec<OutboxMessage>)>;
}

/// Runs `sweep` a batch per transaction — the marks and the messages written through the
/// outbox together (handed to the relay when `handoff` is given) — until a batch comes back
/// short. Returns how many setups it marked.
pub(crate) async fn in_batches(
    pool: &PgPool,
    handoff: Option<&Handoff>,
    sweep: &impl Sweep,
) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let mut tx = pool.begin().await?;
        let (marked, messages) = sweep.batch(&mut tx, BATCH).await?;
        let written = outbox::insert(&mut tx, &messages).await?;
        tx.commit().await?;
        if let Some(handoff) = handoff {
            handoff.hand(written);
        }
        total += marked;
        if i64::try_from(marked).unwrap_or(i64::MAX) < BATCH {
            return Ok(total);
        }
    }
}
