//! The setups worker's SQL, against its own schema (`setups`; table names unqualified).
//!
//! Locks: a request or a cancellation locks the setup rows it changes (`for update`, in
//! `setup_id` order), so two copies never move one setup at once; a setup's messages share
//! its order's correlation id, so they also arrive in one partition, in order.

use chrono::{DateTime, Utc};
use orderly_contracts::messages::{
    FieldError, SetupActionRequested, SetupStage, SetupStatus, SetupTemplate,
};
use orderly_contracts::types::{Sku, StoreId};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::Setup;
use crate::domain::sla::Clock;

/// A stored setup with what identifies it.
#[derive(Debug, Clone)]
pub(crate) struct StoredSetup {
    pub(crate) setup_id: Uuid,
    pub(crate) order_id: Uuid,
    pub(crate) line_id: String,
    pub(crate) store_id: StoreId,
    pub(crate) sku: Sku,
    pub(crate) quantity: u32,
    pub(crate) cancelled_units: u32,
    pub(crate) template_version: u32,
    pub(crate) sequence: u32,
    pub(crate) state: Setup,
    /// The current stage visit's SLA clock.
    pub(crate) clock: Clock,
    /// When the current stage is due (none while the clock is stopped).
    pub(crate) due_at: Option<DateTime<Utc>>,
    /// When the current stage visit was found overdue.
    pub(crate) overdue_at: Option<DateTime<Utc>>,
}

fn corrupt(what: &str, err: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(format!("setups: stored {what} is invalid: {err}").into())
}

fn nat(what: &str, value: i32) -> Result<u32, sqlx::Error> {
    u32::try_from(value).map_err(|e| corrupt(what, e))
}

fn int(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// Stores template `t` of `sku` unless that version is stored already. `Err` with the
/// stored one's difference when the version was published before with other stages: a
/// version never changes.
pub(crate) async fn insert_template(
    conn: &mut PgConnection,
    sku: &Sku,
    t: &SetupTemplate,
) -> sqlx::Result<Result<bool, ()>> {
    let inserted = sqlx::query(
        "insert into templates (sku, version, template) values ($1, $2, $3)
         on conflict do nothing",
    )
    .bind(sku.as_str())
    .bind(int(t.version))
    .bind(Json(t))
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Ok(true));
    }
    let stored = template(conn, sku, t.version).await?;
    Ok(if stored.as_ref() == Some(t) {
        Ok(false)
    } else {
        Err(())
    })
}

/// Template `version` of `sku`.
pub(crate) async fn template(
    conn: &mut PgConnection,
    sku: &Sku,
    version: u32,
) -> sqlx::Result<Option<SetupTemplate>> {
    let row: Option<Json<SetupTemplate>> =
        sqlx::query_scalar("select template from templates where sku = $1 and version = $2")
            .bind(sku.as_str())
            .bind(int(version))
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|Json(t)| t))
}

/// Stage `index` of template `version` of `sku`, if both are here.
pub(crate) async fn template_stage(
    conn: &mut PgConnection,
    sku: &Sku,
    version: i32,
    index: i32,
) -> anyhow::Result<Option<SetupStage>> {
    let template = template(conn, sku, u32::try_from(version)?).await?;
    Ok(template.and_then(|t| {
        usize::try_from(index)
            .ok()
            .and_then(|i| t.stages.into_iter().nth(i))
    }))
}

/// A new setup, unless its line has one: `false` then.
pub(crate) async fn insert_setup(
    conn: &mut PgConnection,
    s: &StoredSetup,
    at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "insert into setups (setup_id, order_id, line_id, store_id, sku, quantity,
                             template_version, status, stage_index, sequence, started_at,
                             updated_at, sla_spent_seconds, clock_since, due_at,
                             client_waiting_since, client_wait_sequence)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14,
                 case when $8 in ('pending_intake', 'awaiting_client') then $11 end,
                 case when $8 in ('pending_intake', 'awaiting_client') then $10 end)
         on conflict (order_id, line_id) do nothing",
    )
    .bind(s.setup_id)
    .bind(s.order_id)
    .bind(&s.line_id)
    .bind(s.store_id.as_str())
    .bind(s.sku.as_str())
    .bind(int(s.quantity))
    .bind(int(s.template_version))
    .bind(s.state.status.as_str())
    .bind(i32::try_from(s.state.stage_index).unwrap_or(i32::MAX))
    .bind(int(s.sequence))
    .bind(at)
    .bind(s.clock.spent)
    .bind(s.clock.since)
    .bind(s.due_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[derive(sqlx::FromRow)]
struct SetupRow {
    setup_id: Uuid,
    order_id: Uuid,
    line_id: String,
    store_id: String,
    sku: String,
    quantity: i32,
    cancelled_units: i32,
    template_version: i32,
    status: String,
    stage_index: i32,
    held_from: Option<String>,
    loops: i32,
    sequence: i32,
    submissions: i32,
    sla_spent_seconds: i64,
    clock_since: Option<DateTime<Utc>>,
    due_at: Option<DateTime<Utc>>,
    overdue_at: Option<DateTime<Utc>>,
}

impl TryFrom<SetupRow> for StoredSetup {
    type Error = sqlx::Error;

    fn try_from(r: SetupRow) -> Result<Self, Self::Error> {
        Ok(Self {
            setup_id: r.setup_id,
            order_id: r.order_id,
            line_id: r.line_id,
            store_id: StoreId::parse(&r.store_id).map_err(|e| corrupt("store", e))?,
            sku: Sku::parse(&r.sku).map_err(|e| corrupt("sku", e))?,
            quantity: nat("quantity", r.quantity)?,
            cancelled_units: nat("cancelled units", r.cancelled_units)?,
            template_version: nat("template version", r.template_version)?,
            sequence: nat("sequence", r.sequence)?,
            state: Setup {
                status: r.status.parse().map_err(|e| corrupt("status", e))?,
                stage_index: usize::try_from(r.stage_index)
                    .map_err(|e| corrupt("stage index", e))?,
                held_from: r
                    .held_from
                    .map(|h| h.parse::<SetupStatus>())
                    .transpose()
                    .map_err(|e| corrupt("held from", e))?,
                loops: nat("loops", r.loops)?,
                submissions: nat("submissions", r.submissions)?,
            },
            clock: Clock {
                spent: r.sla_spent_seconds,
                since: r.clock_since,
            },
            due_at: r.due_at,
            overdue_at: r.overdue_at,
        })
    }
}

/// Setup `setup_id`, locked.
pub(crate) async fn lock_setup(
    conn: &mut PgConnection,
    setup_id: Uuid,
) -> sqlx::Result<Option<StoredSetup>> {
    let row: Option<SetupRow> = sqlx::query_as(
        "select setup_id, order_id, line_id, store_id, sku, quantity, cancelled_units,
                template_version, status, stage_index, held_from, loops, sequence, submissions,
                sla_spent_seconds, clock_since, due_at, overdue_at
         from setups where setup_id = $1 for update",
    )
    .bind(setup_id)
    .fetch_optional(conn)
    .await?;
    row.map(StoredSetup::try_from).transpose()
}

/// Every setup of `order_id`, locked in `setup_id` order.
pub(crate) async fn lock_setups_of_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> sqlx::Result<Vec<StoredSetup>> {
    let rows: Vec<SetupRow> = sqlx::query_as(
        "select setup_id, order_id, line_id, store_id, sku, quantity, cancelled_units,
                template_version, status, stage_index, held_from, loops, sequence, submissions,
                sla_spent_seconds, clock_since, due_at, overdue_at
         from setups where order_id = $1 order by setup_id for update",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(StoredSetup::try_from).collect()
}

/// Writes `s`'s state and sequence. Entering a status that waits for the client starts a
/// wait (its reminders count from 0); leaving it ends the wait. (In `set`, `status` is the
/// row's status before this update.)
pub(crate) async fn update_setup(
    conn: &mut PgConnection,
    s: &StoredSetup,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "update setups set status = $2, stage_index = $3, held_from = $4, loops = $5,
                sequence = $6, submissions = $7, cancelled_units = $8, updated_at = $9,
                sla_spent_seconds = $10, clock_since = $11, due_at = $12, overdue_at = $13,
                client_waiting_since = case
                  when $2 not in ('pending_intake', 'awaiting_client') then null
                  when status = $2 then client_waiting_since
                  else $9 end,
                client_wait_sequence = case
                  when $2 not in ('pending_intake', 'awaiting_client') then null
                  when status = $2 then client_wait_sequence
                  else $6 end,
                reminders = case when status = $2 then reminders else 0 end
         where setup_id = $1",
    )
    .bind(s.setup_id)
    .bind(s.state.status.as_str())
    .bind(i32::try_from(s.state.stage_index).unwrap_or(i32::MAX))
    .bind(s.state.held_from.map(SetupStatus::as_str))
    .bind(int(s.state.loops))
    .bind(int(s.sequence))
    .bind(int(s.state.submissions))
    .bind(int(s.cancelled_units))
    .bind(at)
    .bind(s.clock.spent)
    .bind(s.clock.since)
    .bind(s.due_at)
    .bind(s.overdue_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// One entry of the stage history.
pub(crate) struct HistoryEntry<'a> {
    pub(crate) from: Option<SetupStatus>,
    pub(crate) request: Option<&'a SetupActionRequested>,
    pub(crate) detail: &'a str,
    pub(crate) at: DateTime<Utc>,
}

/// Appends `s`'s current state (its `sequence`) to its history.
pub(crate) async fn append_history(
    conn: &mut PgConnection,
    s: &StoredSetup,
    e: &HistoryEntry<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into history (setup_id, sequence, from_status, to_status, stage_index, action,
                              actor_role, actor_id, request_id, detail, at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(s.setup_id)
    .bind(int(s.sequence))
    .bind(e.from.map(SetupStatus::as_str))
    .bind(s.state.status.as_str())
    .bind(i32::try_from(s.state.stage_index).unwrap_or(i32::MAX))
    .bind(e.request.map(|r| r.action.as_str()))
    .bind(e.request.map(|r| r.requested_by.role.as_str()))
    .bind(e.request.map(|r| r.requested_by.id.as_str()))
    .bind(e.request.map(|r| r.request_id))
    .bind(e.detail)
    .bind(e.at)
    .execute(conn)
    .await?;
    Ok(())
}

/// What became of a request, as stored.
pub(crate) struct Answer {
    pub(crate) applied: bool,
    pub(crate) detail: String,
    pub(crate) field_errors: Vec<FieldError>,
}

/// The answer already given to `request_id`, if any.
pub(crate) async fn answer_of(
    conn: &mut PgConnection,
    request_id: Uuid,
) -> sqlx::Result<Option<Answer>> {
    let row: Option<(String, String, Json<Vec<FieldError>>)> =
        sqlx::query_as("select outcome, detail, field_errors from requests where request_id = $1")
            .bind(request_id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(outcome, detail, Json(field_errors))| Answer {
        applied: outcome == "applied",
        detail,
        field_errors,
    }))
}

/// Records a request and what became of it (the audit).
pub(crate) async fn record_request(
    conn: &mut PgConnection,
    r: &SetupActionRequested,
    answer: &Answer,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into requests (request_id, setup_id, order_id, action, actor_role, actor_id,
                               outcome, detail, field_errors, at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(r.request_id)
    .bind(r.setup_id)
    .bind(r.order_id)
    .bind(r.action.as_str())
    .bind(r.requested_by.role.as_str())
    .bind(&r.requested_by.id)
    .bind(if answer.applied { "applied" } else { "refused" })
    .bind(&answer.detail)
    .bind(Json(&answer.field_errors))
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Keeps an intake submission (immutable).
pub(crate) async fn insert_submission(
    conn: &mut PgConnection,
    s: &StoredSetup,
    r: &SetupActionRequested,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into intake_submissions (setup_id, n, stage_index, field_values, reason,
                                         submitted_by, request_id, at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(s.setup_id)
    .bind(int(s.state.submissions))
    .bind(i32::try_from(s.state.stage_index).unwrap_or(i32::MAX))
    .bind(Json(&r.values))
    .bind(r.note.as_deref())
    .bind(&r.requested_by.id)
    .bind(r.request_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Keeps the client's decision at an approval stage, bound to what they approved.
pub(crate) async fn insert_approval(
    conn: &mut PgConnection,
    setup_id: Uuid,
    stage_index: usize,
    r: &SetupActionRequested,
    approved: bool,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into approvals (setup_id, request_id, stage_index, decision, approved, note,
                                decided_by, at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(setup_id)
    .bind(r.request_id)
    .bind(i32::try_from(stage_index).unwrap_or(i32::MAX))
    .bind(if approved {
        "approved"
    } else {
        "changes_requested"
    })
    .bind(if approved {
        r.approved.as_deref()
    } else {
        None
    })
    .bind(r.note.as_deref())
    .bind(&r.requested_by.id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Keeps QA results.
pub(crate) async fn insert_qa(
    conn: &mut PgConnection,
    setup_id: Uuid,
    stage_index: usize,
    r: &SetupActionRequested,
    passed: bool,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into qa_results (setup_id, request_id, stage_index, results, passed,
                                 recorded_by, at)
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(setup_id)
    .bind(r.request_id)
    .bind(i32::try_from(stage_index).unwrap_or(i32::MAX))
    .bind(Json(&r.results))
    .bind(passed)
    .bind(&r.requested_by.id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Remembers that `order_id` was cancelled as a whole; `false` if it was already.
pub(crate) async fn mark_order_cancelled(
    conn: &mut PgConnection,
    order_id: Uuid,
    reason: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "insert into cancelled_orders (order_id, reason, at) values ($1, $2, $3)
         on conflict do nothing",
    )
    .bind(order_id)
    .bind(reason)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether `order_id` was cancelled as a whole.
pub(crate) async fn order_cancelled(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<bool> {
    let found: Option<i32> =
        sqlx::query_scalar("select 1 from cancelled_orders where order_id = $1")
            .bind(order_id)
            .fetch_optional(conn)
            .await?;
    Ok(found.is_some())
}

/// A setup found overdue by [`mark_overdue`].
#[derive(sqlx::FromRow)]
pub(crate) struct Overdue {
    pub(crate) setup_id: Uuid,
    pub(crate) order_id: Uuid,
    pub(crate) line_id: String,
    pub(crate) store_id: String,
    pub(crate) sku: String,
    pub(crate) template_version: i32,
    pub(crate) stage_index: i32,
    pub(crate) sequence: i32,
    pub(crate) due_at: DateTime<Utc>,
}

/// Marks at most `limit` setups due by `now` and not yet found overdue in this stage visit,
/// and returns them. Rows another transaction holds are skipped (taken by the next sweep):
/// the sweep never waits for the consumer, nor the consumer for long on the sweep.
pub(crate) async fn mark_overdue(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<Overdue>> {
    sqlx::query_as(
        "update setups s set overdue_at = $1
         from (select setup_id from setups
               where due_at <= $1 and overdue_at is null
               order by due_at limit $2
               for update skip locked) due
         where s.setup_id = due.setup_id
         returning s.setup_id, s.order_id, s.line_id, s.store_id, s.sku, s.template_version,
                   s.stage_index, s.sequence, s.due_at",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// A setup whose client is due a reminder.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ReminderDue {
    pub(crate) setup_id: Uuid,
    pub(crate) order_id: Uuid,
    pub(crate) line_id: String,
    pub(crate) store_id: String,
    pub(crate) sku: String,
    pub(crate) template_version: i32,
    pub(crate) stage_index: i32,
    pub(crate) status: String,
    pub(crate) client_wait_sequence: i32,
    pub(crate) reminders: i32,
    pub(crate) client_waiting_since: DateTime<Utc>,
}

/// Counts a reminder for at most `limit` setups that have waited for their client `every`
/// hours per reminder already sent plus one, and fewer than `most` times, and returns them
/// (with the reminder's number in `reminders`). Rows another copy holds are skipped.
pub(crate) async fn mark_reminders(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    every_hours: i32,
    most: i32,
    limit: i64,
) -> sqlx::Result<Vec<ReminderDue>> {
    sqlx::query_as(
        "update setups s set reminders = s.reminders + 1
         from (select setup_id from setups
               where client_waiting_since is not null and reminders < $3
                 and client_waiting_since + make_interval(hours => $2 * (reminders + 1)) <= $1
               order by client_waiting_since limit $4
               for update skip locked) due
         where s.setup_id = due.setup_id
         returning s.setup_id, s.order_id, s.line_id, s.store_id, s.sku, s.template_version,
                   s.stage_index, s.status, s.client_wait_sequence, s.reminders,
                   s.client_waiting_since",
    )
    .bind(now)
    .bind(every_hours)
    .bind(most)
    .bind(limit)
    .fetch_all(conn)
    .await
}
