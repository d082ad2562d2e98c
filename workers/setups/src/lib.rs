//! The setups worker: what happens after the order to a **service product** (a listings
//! setup, an ad campaign) — the stages of its setup template, the client's intake form,
//! work, the client's approval, quality checks — one **setup** per service line.
//!
//! It owns (schema `setups`):
//! - `templates`: every setup template version received from the catalog, as published (a
//!   version never changes: a setup pinned to it always follows the stages it started with);
//! - `setups`: one per service line of an accepted order, pinned to the template version the
//!   orders worker matched with the line (`order.accepted`'s `setup_template_version`), with
//!   its status, stage, loops and per-setup `sequence`;
//! - `history` (append-only: every change), `intake_submissions` (immutable; a correction is
//!   a new one with its reason), `approvals` (each bound to what the client approved),
//!   `qa_results`, and `requests`: every request received and what became of it, refusals
//!   included (the audit of who asked what).
//!
//! Messages in: `catalog.product_upserted` (templates), `order.accepted` (start setups),
//! `order.cancelled` (cancel open setups, recording why), `setup.action_requested` (the
//! client's intake and approvals, staff's advance, return, QA, hold and release). Out:
//! `setup.status_changed` for every change, `setup.completed` (the orders worker completes
//! an order when its goods are delivered **and** its setups are completed), and
//! `setup.request_answered` for every request, applied or refused with the reason (and
//! field-level errors for an intake).
//!
//! A background task (`overdue`) keeps the SLA: a stage's clock counts business hours while
//! it is the agency's turn, and a stage past its SLA is reported once per visit
//! (`setup.overdue`, which the notifications worker turns into a staff notification). The
//! same sweep reminds a client who keeps a setup waiting (`reminders`:
//! `setup.client_reminder_due`, which the api worker answers with a fresh signed link).
//!
//! Why its own worker and its own state machine: a setup's life (weeks, loops back, waiting
//! on the client) is not an order's monotonic status; the order only needs to know when
//! each setup is done.
//!
//! Layers: [`domain`] decides (pure), [`store`] reads and writes (SQL), [`handlers`] glues
//! them to messages.

mod domain;
mod handlers;
mod input;
mod overdue;
mod reminders;
mod store;
mod sweep;

pub use handlers::SetupsHandler;
pub use input::SetupsInput;
pub use overdue::sweep_overdue;
pub use reminders::sweep_reminders;
pub use sweep::SetupSettings;

/// The worker's name: its queue, its schema, the producer of what it emits.
pub const NAME: &str = "setups";

/// Starts the worker on `host`: its consumer, its outbox relay and the sweep (overdue
/// stages, reminders to clients).
pub async fn start(
    host: &mut orderly_runtime::Host,
    settings: SetupSettings,
) -> anyhow::Result<()> {
    host.start_worker(NAME, SetupsHandler).await?;
    let pool = host.pool_for(NAME).await?;
    let handoff = host.handoff(NAME);
    host.spawn_task("sweep", move |shutdown| {
        sweep::run(pool, handoff, settings, shutdown)
    });
    Ok(())
}
