//! The overdue sweep: a background task that finds setups whose stage is past its SLA and
//! publishes one `setup.overdue` per stage visit (the notifications worker tells the
//! store's staff).
//!
//! The consumer keeps each setup's `due_at` (null while the SLA clock is stopped: waiting
//! for the client, on hold, finished) and clears `overdue_at` when the setup enters a stage;
//! the sweep marks `overdue_at` and writes the message in one transaction, so a setup is
//! reported once per visit whatever crashes, and a second copy of the worker skips the rows
//! the first one holds.

use std::time::Duration;

use chrono::{DateTime, Utc};
use orderly_contracts::messages::SetupOverdue;
use orderly_contracts::types::{Sku, StoreId};
use orderly_contracts::{Envelope, Validate};
use orderly_runtime::outbox::{self, Handoff, OutboxMessage};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::store;

/// `[setups]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SetupSettings {
    /// How often the overdue sweep runs, in milliseconds.
    pub sweep_ms: u64,
}

impl Default for SetupSettings {
    fn default() -> Self {
        Self { sweep_ms: 60_000 }
    }
}

/// Most setups one sweep transaction reports.
const BATCH: i64 = 500;

/// Reports every setup overdue by `now`: marks it and writes its `setup.overdue` through the
/// outbox (handed to the relay when `handoff` is given), in batches. Returns how many.
pub async fn sweep_overdue(
    pool: &PgPool,
    handoff: Option<&Handoff>,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let mut tx = pool.begin().await?;
        let due = store::mark_overdue(&mut tx, now, BATCH).await?;
        let mut messages = Vec::with_capacity(due.len());
        for d in &due {
            let Some(template) = store::template(
                &mut tx,
                &Sku::parse(&d.sku)?,
                u32::try_from(d.template_version)?,
            )
            .await?
            else {
                warn!(setup = %d.setup_id, "overdue setup without its template; not reported");
                continue;
            };
            let Some(stage) = usize::try_from(d.stage_index)
                .ok()
                .and_then(|i| template.stages.get(i))
            else {
                continue;
            };
            let overdue = SetupOverdue {
                setup_id: d.setup_id,
                order_id: d.order_id,
                line_id: d.line_id.clone(),
                store_id: StoreId::parse(&d.store_id)?,
                sku: Sku::parse(&d.sku)?,
                sequence: u32::try_from(d.sequence)?,
                stage: stage.key.clone(),
                sla_business_hours: stage.sla_business_hours,
                due_at: d.due_at,
            };
            overdue.validate()?;
            let envelope = Envelope::new(crate::NAME, d.order_id.to_string(), overdue);
            messages.push(OutboxMessage::from_envelope(&envelope));
        }
        let written = outbox::insert(&mut tx, &messages).await?;
        tx.commit().await?;
        if let Some(handoff) = handoff {
            handoff.hand(written);
        }
        total += due.len();
        if i64::try_from(due.len()).unwrap_or(i64::MAX) < BATCH {
            break;
        }
    }
    if total > 0 {
        info!(overdue = total, "setups past their SLA reported");
    }
    Ok(total)
}

/// Runs [`sweep_overdue`] every `settings.sweep_ms` until `shutdown`.
pub(crate) async fn run(
    pool: PgPool,
    handoff: Option<Handoff>,
    settings: SetupSettings,
    shutdown: CancellationToken,
) {
    let every = Duration::from_millis(settings.sweep_ms.max(100));
    loop {
        if let Err(e) = sweep_overdue(&pool, handoff.as_ref(), Utc::now()).await {
            warn!(error = %e, "overdue sweep failed; trying again next round");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
