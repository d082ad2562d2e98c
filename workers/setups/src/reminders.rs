//! Reminders to a setup's client: a setup waiting for its client (the intake form, an
//! approval) longer than `[setups] client_reminder_hours` gets a `setup.client_reminder_due`
//! — after that many hours, again after twice as many, up to `client_reminders` per wait.
//! The api worker, which signs the client's links, answers it with a fresh link
//! (`setup.client_invited`), which the notifications worker sends.
//!
//! The consumer starts a wait when a setup enters a waiting status and ends it when the
//! setup leaves it (`store::update_setup`); the sweep counts the reminder and writes its
//! message in one transaction, so each reminder of a wait goes once whatever crashes, and a
//! second copy of the worker skips the rows the first one holds. Wall-clock hours, not
//! business hours: it is the client's time, not the agency's.

use chrono::{DateTime, Utc};
use orderly_contracts::messages::{ClientTask, SetupClientReminderDue};
use orderly_contracts::types::{Sku, StoreId};
use orderly_contracts::{Envelope, Validate};
use orderly_runtime::outbox::{Handoff, OutboxMessage};
use sqlx::{PgConnection, PgPool};
use tracing::{info, warn};

use crate::store;
use crate::sweep::{self, SetupSettings, Sweep};

/// Sends every reminder due by `now` (as `settings` say) through the outbox (handed to the
/// relay when `handoff` is given), in batches. Returns how many.
pub async fn sweep_reminders(
    pool: &PgPool,
    handoff: Option<&Handoff>,
    settings: &SetupSettings,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    if settings.client_reminder_hours == 0 || settings.client_reminders == 0 {
        return Ok(0);
    }
    let reminders = Reminders {
        now,
        every_hours: i32::try_from(settings.client_reminder_hours)?,
        most: i32::try_from(settings.client_reminders)?,
    };
    let total = sweep::in_batches(pool, handoff, &reminders).await?;
    if total > 0 {
        info!(
            reminders = total,
            "clients reminded of setups waiting for them"
        );
    }
    Ok(total)
}

/// The reminders due at `now`.
struct Reminders {
    now: DateTime<Utc>,
    every_hours: i32,
    most: i32,
}

impl Sweep for Reminders {
    async fn batch(
        &self,
        conn: &mut PgConnection,
        limit: i64,
    ) -> anyhow::Result<(usize, Vec<OutboxMessage>)> {
        let due = store::mark_reminders(conn, self.now, self.every_hours, self.most, limit).await?;
        let mut messages = Vec::with_capacity(due.len());
        for d in &due {
            let task = match d.status.as_str() {
                "pending_intake" => ClientTask::Intake,
                "awaiting_client" => ClientTask::Approval,
                other => {
                    warn!(setup = %d.setup_id, status = other, "a wait in a status that does not wait; no reminder");
                    continue;
                }
            };
            let sku = Sku::parse(&d.sku)?;
            let Some(stage) =
                store::template_stage(conn, &sku, d.template_version, d.stage_index).await?
            else {
                warn!(setup = %d.setup_id, "waiting setup without its template stage; no reminder");
                continue;
            };
            let due = SetupClientReminderDue {
                setup_id: d.setup_id,
                order_id: d.order_id,
                line_id: d.line_id.clone(),
                store_id: StoreId::parse(&d.store_id)?,
                sku,
                sequence: u32::try_from(d.client_wait_sequence)?,
                task,
                stage: stage.key,
                reminder: u32::try_from(d.reminders)?,
                waiting_since: d.client_waiting_since,
            };
            due.validate()?;
            let envelope = Envelope::new(crate::NAME, d.order_id.to_string(), due);
            messages.push(OutboxMessage::from_envelope(&envelope));
        }
        Ok((due.len(), messages))
    }
}
