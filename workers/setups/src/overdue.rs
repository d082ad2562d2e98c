//! The overdue sweep: a background task that finds setups whose stage is past its SLA and
//! publishes one `setup.overdue` per stage visit (the notifications worker tells the
//! store's staff).
//!
//! The consumer keeps each setup's `due_at` (null while the SLA clock is stopped: waiting
//! for the client, on hold, finished) and clears `overdue_at` when the setup enters a stage;
//! the sweep marks `overdue_at` and writes the message in one transaction, so a setup is
//! reported once per visit whatever crashes, and a second copy of the worker skips the rows
//! the first one holds.

use chrono::{DateTime, Utc};
use orderly_contracts::messages::SetupOverdue;
use orderly_contracts::types::{Sku, StoreId};
use orderly_contracts::{Envelope, Validate};
use orderly_runtime::outbox::{Handoff, OutboxMessage};
use sqlx::{PgConnection, PgPool};
use tracing::{info, warn};

use crate::store;
use crate::sweep::{self, Sweep};

/// Reports every setup overdue by `now`: marks it and writes its `setup.overdue` through the
/// outbox (handed to the relay when `handoff` is given), in batches. Returns how many.
pub async fn sweep_overdue(
    pool: &PgPool,
    handoff: Option<&Handoff>,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let total = sweep::in_batches(pool, handoff, &Overdue { now }).await?;
    if total > 0 {
        info!(overdue = total, "setups past their SLA reported");
    }
    Ok(total)
}

/// The setups past their SLA at `now`.
struct Overdue {
    now: DateTime<Utc>,
}

impl Sweep for Overdue {
    async fn batch(
        &self,
        conn: &mut PgConnection,
        limit: i64,
    ) -> anyhow::Result<(usize, Vec<OutboxMessage>)> {
        let due = store::mark_overdue(conn, self.now, limit).await?;
        let mut messages = Vec::with_capacity(due.len());
        for d in &due {
            let sku = Sku::parse(&d.sku)?;
            let Some(stage) =
                store::template_stage(conn, &sku, d.template_version, d.stage_index).await?
            else {
                warn!(setup = %d.setup_id, "overdue setup without its template stage; not reported");
                continue;
            };
            let overdue = SetupOverdue {
                setup_id: d.setup_id,
                order_id: d.order_id,
                line_id: d.line_id.clone(),
                store_id: StoreId::parse(&d.store_id)?,
                sku,
                sequence: u32::try_from(d.sequence)?,
                stage: stage.key,
                sla_business_hours: stage.sla_business_hours,
                due_at: d.due_at,
            };
            overdue.validate()?;
            let envelope = Envelope::new(crate::NAME, d.order_id.to_string(), overdue);
            messages.push(OutboxMessage::from_envelope(&envelope));
        }
        Ok((due.len(), messages))
    }
}
