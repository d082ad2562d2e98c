//! Bulk jobs: the job and its items, the batches that send their commands, and what became
//! of each.
//!
//! A batch is one transaction: the job's row locked (`for update skip locked`: another
//! replica takes another job, and a cancellation waits for the batch), the next pending
//! items read, their commands and audit entries written, their messages put in the outbox
//! and the items marked `sent` with their command. A crash before the commit leaves the
//! items pending with no command and no message; after it, they are sent, once.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use orderly_runtime::outbox::{self, OutboxMessage, Written};
use schemars::JsonSchema;
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::bulk::Item;
use crate::domain::command::Outgoing;

/// A job as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Job {
    pub(crate) job_id: Uuid,
    pub(crate) staff_id: Uuid,
    pub(crate) token_id: Uuid,
    pub(crate) staff_email: String,
    pub(crate) request_sha256: String,
    pub(crate) action: String,
    pub(crate) params: serde_json::Value,
    pub(crate) selection: serde_json::Value,
    pub(crate) dry_run: bool,
    pub(crate) state: String,
    pub(crate) notes: serde_json::Value,
    pub(crate) client_addr: Option<String>,
    pub(crate) forwarded_for: Option<String>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) finished_at: Option<DateTime<Utc>>,
    pub(crate) cancelled_by: Option<String>,
    /// The creating request's `traceparent`, for its commands.
    pub(crate) traceparent: Option<String>,
}

const JOB_COLUMNS: &str = "j.job_id, j.staff_id, j.token_id, s.email as staff_email, \
     j.request_sha256, j.action, j.params, j.selection, j.dry_run, j.state, j.notes, \
     j.client_addr, j.forwarded_for, j.created_at, j.finished_at, j.cancelled_by, \
     j.traceparent";

/// A new job.
#[derive(Debug)]
pub(crate) struct NewJob<'a> {
    pub(crate) job_id: Uuid,
    pub(crate) staff_id: Uuid,
    pub(crate) token_id: Uuid,
    pub(crate) idempotency_key: Option<&'a str>,
    pub(crate) request_sha256: &'a str,
    pub(crate) action: &'static str,
    pub(crate) params: &'a serde_json::Value,
    pub(crate) selection: &'a serde_json::Value,
    pub(crate) dry_run: bool,
    pub(crate) notes: &'a [String],
    pub(crate) client_addr: Option<&'a str>,
    pub(crate) forwarded_for: Option<&'a str>,
    pub(crate) traceparent: Option<&'a str>,
}

/// Writes a job and its items (a dry run's: `would_send`, and the job completed). `false`
/// when the staff member's `Idempotency-Key` was taken meanwhile.
pub(crate) async fn insert(
    conn: &mut PgConnection,
    job: &NewJob<'_>,
    items: &[Item],
) -> sqlx::Result<bool> {
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "insert into jobs (job_id, staff_id, token_id, idempotency_key, request_sha256, action, \
           params, selection, dry_run, state, finished_at, notes, client_addr, forwarded_for, \
           traceparent) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
           case when $9 then 'completed' else 'running' end, \
           case when $9 then now() end, $10, $11, $12, $13) \
         on conflict do nothing returning job_id",
    )
    .bind(job.job_id)
    .bind(job.staff_id)
    .bind(job.token_id)
    .bind(job.idempotency_key)
    .bind(job.request_sha256)
    .bind(job.action)
    .bind(Json(job.params))
    .bind(Json(job.selection))
    .bind(job.dry_run)
    .bind(Json(job.notes))
    .bind(job.client_addr)
    .bind(job.forwarded_for)
    .bind(job.traceparent)
    .fetch_optional(&mut *conn)
    .await?;
    if inserted.is_none() {
        return Ok(false);
    }
    // In slices, so one statement's arrays stay a few megabytes.
    for (chunk_no, chunk) in items.chunks(10_000).enumerate() {
        let first = i32::try_from(chunk_no * 10_000).unwrap_or(i32::MAX);
        let positions: Vec<i32> = (1..).map(|n: i32| first + n).take(chunk.len()).collect();
        let orders: Vec<Uuid> = chunk.iter().map(|i| i.order_id).collect();
        let stores: Vec<Option<&str>> = chunk.iter().map(|i| i.store_id.as_deref()).collect();
        let states: Vec<&str> = chunk
            .iter()
            .map(|i| match (&i.skip, job.dry_run) {
                (Some(_), _) => "skipped",
                (None, true) => "would_send",
                (None, false) => "pending",
            })
            .collect();
        let reasons: Vec<Option<&str>> = chunk
            .iter()
            .map(|i| i.skip.as_ref().map(|s| s.reason()))
            .collect();
        let details: Vec<Option<String>> = chunk
            .iter()
            .map(|i| i.skip.as_ref().map(|s| s.detail()))
            .collect();
        sqlx::query(
            "insert into job_items (job_id, position, order_id, store_id, state, reason, detail) \
             select $1, * from unnest($2::int[], $3::uuid[], $4::text[], $5::text[], $6::text[], \
               $7::text[])",
        )
        .bind(job.job_id)
        .bind(positions)
        .bind(orders)
        .bind(stores)
        .bind(states)
        .bind(reasons)
        .bind(details)
        .execute(&mut *conn)
        .await?;
    }
    Ok(true)
}

/// One job.
pub(crate) async fn job(conn: &mut PgConnection, job_id: Uuid) -> sqlx::Result<Option<Job>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {JOB_COLUMNS} from jobs j join staff s using (staff_id) where j.job_id = $1"
    )))
    .bind(job_id)
    .fetch_optional(conn)
    .await
}

/// The job `staff_id` created under `key`, if any.
pub(crate) async fn by_key(
    conn: &mut PgConnection,
    staff_id: Uuid,
    key: &str,
) -> sqlx::Result<Option<Job>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {JOB_COLUMNS} from jobs j join staff s using (staff_id) \
         where j.staff_id = $1 and j.idempotency_key = $2"
    )))
    .bind(staff_id)
    .bind(key)
    .fetch_optional(conn)
    .await
}

/// The orders of `ids` in the read model, of `stores` (`None`: every store): id, store,
/// status.
pub(crate) async fn orders_of_ids(
    conn: &mut PgConnection,
    ids: &[Uuid],
    stores: Option<&[String]>,
) -> sqlx::Result<Vec<(Uuid, String, Option<String>)>> {
    sqlx::query_as(
        "select order_id, store_id, status from orders \
         where order_id = any($1) and ($2::text[] is null or store_id = any($2))",
    )
    .bind(ids)
    .bind(stores)
    .fetch_all(conn)
    .await
}

/// The oldest running job no other replica is sending, if any.
pub(crate) async fn next_running(pool: &PgPool) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "select job_id from jobs where state = 'running' order by created_at \
         for update skip locked limit 1",
    )
    .fetch_optional(pool)
    .await
}

/// Locks a running job for a batch (`None`: not running any more, or another replica has
/// it).
pub(crate) async fn lock_running(
    conn: &mut PgConnection,
    job_id: Uuid,
) -> sqlx::Result<Option<Job>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {JOB_COLUMNS} from jobs j join staff s using (staff_id) \
         where j.job_id = $1 and j.state = 'running' for update of j skip locked"
    )))
    .bind(job_id)
    .fetch_optional(conn)
    .await
}

/// A pending item.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Pending {
    pub(crate) position: i32,
    pub(crate) order_id: Uuid,
    pub(crate) store_id: String,
}

/// The next `limit` pending items of a job, in order.
pub(crate) async fn pending(
    conn: &mut PgConnection,
    job_id: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<Pending>> {
    sqlx::query_as(
        "select position, order_id, store_id from job_items \
         where job_id = $1 and state = 'pending' order by position limit $2",
    )
    .bind(job_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// A command a batch sends.
#[derive(Debug)]
pub(crate) struct BatchCommand {
    pub(crate) position: i32,
    pub(crate) command_id: Uuid,
    pub(crate) order_id: Uuid,
    pub(crate) store_id: String,
    pub(crate) message: Outgoing,
}

/// Writes a batch's commands (with their audit entries, as a single action's are) and their
/// messages, and marks their items sent. Returns the outbox rows for the relay.
pub(crate) async fn send(
    conn: &mut PgConnection,
    job: &Job,
    audit_name: &str,
    batch: &[BatchCommand],
) -> sqlx::Result<Vec<Written>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let commands: Vec<Uuid> = batch.iter().map(|c| c.command_id).collect();
    let orders: Vec<Uuid> = batch.iter().map(|c| c.order_id).collect();
    let stores: Vec<&str> = batch.iter().map(|c| c.store_id.as_str()).collect();
    let types: Vec<&str> = batch.iter().map(|c| c.message.message_type).collect();
    let payloads: Vec<Json<&serde_json::Value>> =
        batch.iter().map(|c| Json(&c.message.payload)).collect();
    let positions: Vec<i32> = batch.iter().map(|c| c.position).collect();
    sqlx::query(
        "insert into commands (command_id, staff_id, token_id, request_sha256, action, order_id, \
           store_id, message_type, payload, job_id) \
         select c, $5, $6, $7, $8, o, s, t, p, $9 \
         from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $10::jsonb[]) \
           as x(c, o, s, t, p)",
    )
    .bind(&commands)
    .bind(&orders)
    .bind(&stores)
    .bind(&types)
    .bind(job.staff_id)
    .bind(job.token_id)
    .bind(&job.request_sha256)
    .bind(&job.action)
    .bind(job.job_id)
    .bind(&payloads)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "insert into audit_log (staff_id, staff_email, token_id, action, order_id, store_id, \
           command_id, client_addr, forwarded_for, http_status, outcome, detail) \
         select $4, $5, $6, $7, o, s, c, $8, $9, 202, 'accepted', $10 \
         from unnest($1::uuid[], $2::uuid[], $3::text[]) as x(c, o, s)",
    )
    .bind(&commands)
    .bind(&orders)
    .bind(&stores)
    .bind(job.staff_id)
    .bind(&job.staff_email)
    .bind(job.token_id)
    .bind(audit_name)
    .bind(job.client_addr.as_deref())
    .bind(job.forwarded_for.as_deref())
    .bind(format!("bulk job {}", job.job_id))
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "update job_items i set state = 'sent', command_id = x.c \
         from unnest($2::int[], $3::uuid[]) as x(p, c) \
         where i.job_id = $1 and i.position = x.p and i.state = 'pending'",
    )
    .bind(job.job_id)
    .bind(&positions)
    .bind(&commands)
    .execute(&mut *conn)
    .await?;
    let messages: Vec<OutboxMessage> = batch
        .iter()
        .map(|c| OutboxMessage {
            message_id: c.command_id,
            message_type: c.message.message_type.to_owned(),
            correlation_id: c.message.correlation_id.clone(),
            body: c.message.envelope.clone(),
        })
        .collect();
    outbox::insert(conn, &messages).await
}

/// Items whose message could not be built (a stored order whose store id the contract
/// refuses): skipped as not applicable, with why.
pub(crate) async fn skip(
    conn: &mut PgConnection,
    job_id: Uuid,
    position: i32,
    detail: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "update job_items set state = 'skipped', reason = 'not_applicable', detail = $3 \
         where job_id = $1 and position = $2 and state = 'pending'",
    )
    .bind(job_id)
    .bind(position)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks a job whose items are all sent or skipped as completed.
pub(crate) async fn complete(conn: &mut PgConnection, job_id: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "update jobs set state = 'completed', finished_at = now() \
         where job_id = $1 and state = 'running'",
    )
    .bind(job_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Cancels a running job: its pending items are skipped (`job_cancelled`). Waits for a batch
/// being sent. `false` when it was not running.
pub(crate) async fn cancel(
    conn: &mut PgConnection,
    job_id: Uuid,
    by_email: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "update jobs set state = 'cancelled', finished_at = now(), cancelled_by = $2 \
         where job_id = $1 and state = 'running'",
    )
    .bind(job_id)
    .bind(by_email)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "update job_items set state = 'skipped', reason = 'job_cancelled', \
           detail = 'the job was cancelled before this order was sent' \
         where job_id = $1 and state = 'pending'",
    )
    .bind(job_id)
    .execute(conn)
    .await?;
    Ok(true)
}

/// How many items of a job are in each outcome.
#[derive(Debug, Clone, Copy, Default, Serialize, JsonSchema)]
pub(crate) struct Progress {
    /// Orders in the job.
    pub(crate) total: i64,
    /// Not sent yet.
    pub(crate) pending: i64,
    /// A dry run's: would be sent.
    pub(crate) would_send: i64,
    /// Not sent: not visible, not applicable, or the job was cancelled first.
    pub(crate) skipped: i64,
    /// Sent, no answer yet.
    pub(crate) awaiting_answer: i64,
    /// Sent and done.
    pub(crate) applied: i64,
    /// Sent and partly done.
    pub(crate) partially_applied: i64,
    /// Sent and refused by the order's owner (the reason is the item's).
    pub(crate) refused: i64,
    /// Sent, and the owner had already done it.
    pub(crate) duplicate: i64,
}

/// A job's progress.
pub(crate) async fn progress(conn: &mut PgConnection, job_id: Uuid) -> sqlx::Result<Progress> {
    Ok(progress_of(conn, &[job_id])
        .await?
        .remove(&job_id)
        .unwrap_or_default())
}

/// The progress of each of `jobs`, in one statement.
pub(crate) async fn progress_of(
    conn: &mut PgConnection,
    jobs: &[Uuid],
) -> sqlx::Result<HashMap<Uuid, Progress>> {
    let rows: Vec<(Uuid, String, Option<String>, i64)> = sqlx::query_as(
        "select i.job_id, i.state, c.status, count(*) from job_items i \
         left join commands c on c.command_id = i.command_id \
         where i.job_id = any($1) group by 1, 2, 3",
    )
    .bind(jobs)
    .fetch_all(conn)
    .await?;
    let mut out: HashMap<Uuid, Progress> = HashMap::new();
    for (job_id, state, status, n) in rows {
        let p = out.entry(job_id).or_default();
        p.total += n;
        let slot = match (state.as_str(), status.as_deref()) {
            ("pending", _) => &mut p.pending,
            ("would_send", _) => &mut p.would_send,
            ("skipped", _) => &mut p.skipped,
            (_, Some("applied")) => &mut p.applied,
            (_, Some("partially_applied")) => &mut p.partially_applied,
            (_, Some("refused")) => &mut p.refused,
            (_, Some("duplicate")) => &mut p.duplicate,
            _ => &mut p.awaiting_answer,
        };
        *slot += n;
    }
    Ok(out)
}

/// A page of jobs, newest first: those `creator` created (`None`: everyone's), in `state`
/// if given, created before `before` if given.
pub(crate) async fn list(
    conn: &mut PgConnection,
    creator: Option<Uuid>,
    state: Option<&str>,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Job>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {JOB_COLUMNS} from jobs j join staff s using (staff_id) \
         where ($1::uuid is null or j.staff_id = $1) and ($2::text is null or j.state = $2) \
           and ($3::uuid is null or j.job_id < $3) \
         order by j.job_id desc limit $4"
    )))
    .bind(creator)
    .bind(state)
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// One order of a job and what became of it.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub(crate) struct JobItem {
    /// Its place in the job (the list's order, or the ids' order), from 1.
    pub(crate) position: i32,
    pub(crate) order_id: Uuid,
    /// `null` for an order the token does not see.
    pub(crate) store_id: Option<String>,
    /// `pending`, `would_send` (a dry run), `skipped`, or, once sent, the command's status:
    /// `awaiting_answer`, `applied`, `partially_applied`, `refused`, `duplicate`.
    pub(crate) outcome: String,
    /// Why it was skipped: `not_visible`, `not_applicable`, `job_cancelled`.
    pub(crate) reason: Option<String>,
    /// In words: why it was skipped, or the owner's answer.
    pub(crate) detail: Option<String>,
    /// What was refused, and why.
    #[schemars(with = "Option<Vec<String>>")]
    pub(crate) refused: Option<serde_json::Value>,
    /// The command sent for it.
    pub(crate) command_id: Option<Uuid>,
}

/// A page of a job's items after `after` (a position), of one outcome if asked.
pub(crate) async fn items(
    conn: &mut PgConnection,
    job_id: Uuid,
    outcome: Option<&str>,
    after: i32,
    limit: i64,
) -> sqlx::Result<Vec<JobItem>> {
    sqlx::query_as(
        "select * from ( \
           select i.position, i.order_id, i.store_id, \
             case when i.state <> 'sent' then i.state \
                  when c.status = 'pending' then 'awaiting_answer' else c.status end as outcome, \
             i.reason, coalesce(i.detail, c.detail) as detail, c.refused, i.command_id \
           from job_items i left join commands c on c.command_id = i.command_id \
           where i.job_id = $1 and i.position > $3 order by i.position) x \
         where $2::text is null or x.outcome = $2 order by position limit $4",
    )
    .bind(job_id)
    .bind(outcome)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}
