//! Setups of service lines, from the read model: one row per setup at its highest
//! `setup.status_changed`, its history, and whether its current stage is past its SLA
//! (`setup.overdue` names the setup's sequence then; the flag holds while nothing changed
//! since).

use chrono::{DateTime, Utc};
use orderly_contracts::messages::{SetupActor, SetupStatus, SetupStatusChanged};
use schemars::JsonSchema;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::setups::SetupQuery;

/// Applies a `setup.status_changed`: its history row (once), and the setup's row unless a
/// higher sequence is there already.
pub(crate) async fn apply_change(
    conn: &mut PgConnection,
    p: &SetupStatusChanged,
) -> sqlx::Result<()> {
    let role = p.actor.as_ref().map(|a| a.role.as_str());
    let actor_id = p.actor.as_ref().map(|a| a.id.as_str());
    sqlx::query(
        "insert into setup_history (setup_id, sequence, from_status, to_status, stage, loops,
                                    actor_role, actor_id, request_id, detail, at, stage_index)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         on conflict do nothing",
    )
    .bind(p.setup_id)
    .bind(int(p.sequence))
    .bind(p.from.map(SetupStatus::as_str))
    .bind(p.to.as_str())
    .bind(&p.stage)
    .bind(int(p.loops))
    .bind(role)
    .bind(actor_id)
    .bind(p.request_id)
    .bind(&p.detail)
    .bind(p.changed_at)
    .bind(int(p.stage_index))
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "insert into setups (setup_id, order_id, line_id, store_id, sku, template_version,
                             status, stage, stage_index, loops, sequence, started_at,
                             updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
         on conflict (setup_id) do update
           set status = excluded.status, stage = excluded.stage,
               stage_index = excluded.stage_index, loops = excluded.loops,
               sequence = excluded.sequence, updated_at = excluded.updated_at,
               started_at = least(setups.started_at, excluded.started_at)
           where setups.sequence < excluded.sequence",
    )
    .bind(p.setup_id)
    .bind(p.order_id)
    .bind(&p.line_id)
    .bind(p.store_id.as_str())
    .bind(p.sku.as_str())
    .bind(int(p.template_version))
    .bind(p.to.as_str())
    .bind(&p.stage)
    .bind(int(p.stage_index))
    .bind(int(p.loops))
    .bind(int(p.sequence))
    .bind(p.changed_at)
    .execute(&mut *conn)
    .await?;
    // The start is the first change: an earlier `started_at` arriving late moves it back.
    if p.sequence == 1 {
        sqlx::query("update setups set started_at = $2 where setup_id = $1 and started_at > $2")
            .bind(p.setup_id)
            .bind(p.changed_at)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Applies a `setup.overdue` (the setup's row is there: the setups worker reports a setup
/// only after it started it, and both messages share the order's partition).
pub(crate) async fn mark_overdue(
    conn: &mut PgConnection,
    setup_id: Uuid,
    sequence: u32,
    due_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "update setups set overdue_due_at = $3, overdue_sequence = $2
         where setup_id = $1 and coalesce(overdue_sequence, 0) <= $2",
    )
    .bind(setup_id)
    .bind(int(sequence))
    .bind(due_at)
    .execute(conn)
    .await?;
    Ok(())
}

fn int(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// A setup as the list and the detail show it.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub(crate) struct SetupRow {
    pub(crate) setup_id: Uuid,
    pub(crate) order_id: Uuid,
    /// The order line it sets up.
    pub(crate) line_id: String,
    pub(crate) store_id: String,
    /// The service product.
    pub(crate) sku: String,
    /// The template version it follows.
    pub(crate) template_version: i32,
    #[schemars(with = "SetupStatus")]
    pub(crate) status: String,
    /// The current stage's key (the last one once completed).
    pub(crate) stage: String,
    /// The current stage's position, from 0.
    pub(crate) stage_index: i32,
    /// How many times it went back (changes asked, QA failed, returned).
    pub(crate) loops: i32,
    /// The number of its last change.
    pub(crate) sequence: i32,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    /// When its current stage was due, if it is past its SLA.
    pub(crate) overdue_since: Option<DateTime<Utc>>,
}

const SELECT: &str = "select setup_id, order_id, line_id, store_id, sku, template_version, \
       status, stage, stage_index, loops, sequence, started_at, updated_at, \
       case when overdue_sequence = sequence \
                 and status not in ('completed', 'cancelled') \
            then overdue_due_at end as overdue_since \
     from setups";

/// A page of setups (most recently changed first), of `stores` when given.
pub(crate) async fn list(
    pool: &PgPool,
    stores: Option<&[String]>,
    q: &SetupQuery,
) -> sqlx::Result<Vec<SetupRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select * from ({SELECT} \
           where ($1::text[] is null or store_id = any($1)) \
             and (cardinality($2::text[]) = 0 or store_id = any($2)) \
             and (cardinality($3::text[]) = 0 or status = any($3)) \
             and (cardinality($4::text[]) = 0 or sku = any($4)) \
             and ($5::text is null or stage = $5) \
             and ($6::uuid is null or order_id = $6) \
             and ($7::timestamptz is null or (updated_at, setup_id) < ($7, $8))) x \
         where ($9::boolean is null or (x.overdue_since is not null) = $9) \
         order by x.updated_at desc, x.setup_id desc limit $10"
    )))
    .bind(stores)
    .bind(&q.stores)
    .bind(&q.statuses)
    .bind(&q.products)
    .bind(q.stage.as_deref())
    .bind(q.order)
    .bind(q.cursor.map(|c| c.placed_at))
    .bind(q.cursor.map(|c| c.order_id))
    .bind(q.overdue)
    .bind(i64::from(q.limit))
    .fetch_all(pool)
    .await
}

/// One setup.
pub(crate) async fn one(pool: &PgPool, setup_id: Uuid) -> sqlx::Result<Option<SetupRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} where setup_id = $1")))
        .bind(setup_id)
        .fetch_optional(pool)
        .await
}

/// A setup of an order, as the order's detail shows it: where it stands and every change.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct OrderSetup {
    #[serde(flatten)]
    pub(crate) setup: SetupRow,
    /// Every change, oldest first (the start is 1).
    pub(crate) history: Vec<SetupChange>,
}

/// The setups of `order_id` with their histories, by line.
pub(crate) async fn of_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> sqlx::Result<Vec<OrderSetup>> {
    let rows: Vec<SetupRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} where order_id = $1 order by line_id, setup_id"
    )))
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut setups = Vec::with_capacity(rows.len());
    for setup in rows {
        let history = history(&mut *conn, setup.setup_id).await?;
        setups.push(OrderSetup { setup, history });
    }
    Ok(setups)
}

/// One change of a setup.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct SetupChange {
    /// Its number, from 1 (the start).
    pub(crate) sequence: i32,
    /// Before (absent for the start).
    pub(crate) from: Option<SetupStatus>,
    /// After.
    pub(crate) to: SetupStatus,
    /// The stage after it.
    pub(crate) stage: String,
    pub(crate) loops: i32,
    /// Who caused it (absent for the start and a cancellation of the order).
    pub(crate) actor: Option<SetupActor>,
    /// The request that caused it.
    pub(crate) request_id: Option<Uuid>,
    /// What was done.
    pub(crate) detail: String,
    pub(crate) at: DateTime<Utc>,
}

type HistoryRow = (
    i32,
    Option<String>,
    String,
    String,
    i32,
    Option<String>,
    Option<String>,
    Option<Uuid>,
    String,
    DateTime<Utc>,
);

/// A setup's history, oldest first.
pub(crate) async fn history<'e>(
    db: impl sqlx::PgExecutor<'e>,
    setup_id: Uuid,
) -> sqlx::Result<Vec<SetupChange>> {
    let rows: Vec<HistoryRow> = sqlx::query_as(
        "select sequence, from_status, to_status, stage, loops, actor_role, actor_id,
                request_id, detail, at
         from setup_history where setup_id = $1 order by sequence",
    )
    .bind(setup_id)
    .fetch_all(db)
    .await?;
    let corrupt = |what: &str, e: orderly_contracts::types::InvalidValue| {
        sqlx::Error::Decode(format!("api: stored setup {what}: {e}").into())
    };
    rows.into_iter()
        .map(
            |(sequence, from, to, stage, loops, role, actor_id, request_id, detail, at)| {
                Ok(SetupChange {
                    sequence,
                    from: from
                        .map(|f| f.parse())
                        .transpose()
                        .map_err(|e| corrupt("status", e))?,
                    to: to.parse().map_err(|e| corrupt("status", e))?,
                    stage,
                    loops,
                    actor: match (role, actor_id) {
                        (Some(role), Some(id)) => Some(SetupActor {
                            role: role.parse().map_err(|e| corrupt("role", e))?,
                            id,
                        }),
                        _ => None,
                    },
                    request_id,
                    detail,
                    at,
                })
            },
        )
        .collect()
}

/// Keeps a setup template version as the catalog published it (the first one stands).
pub(crate) async fn save_template(
    conn: &mut PgConnection,
    sku: &str,
    template: &orderly_contracts::messages::SetupTemplate,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into setup_templates (sku, version, template) values ($1, $2, $3)
         on conflict do nothing",
    )
    .bind(sku)
    .bind(int(template.version))
    .bind(sqlx::types::Json(template))
    .execute(conn)
    .await?;
    Ok(())
}

/// What the client's page needs of a setup.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct IntakeContext {
    pub(crate) setup_id: Uuid,
    pub(crate) order_id: Uuid,
    pub(crate) store_id: String,
    pub(crate) status: String,
    pub(crate) stage_index: i32,
    /// The number of its last change (what the client sees is the setup as of it).
    pub(crate) sequence: i32,
    /// The template version the setup follows, once the catalog's message is here.
    pub(crate) template: Option<sqlx::types::Json<orderly_contracts::messages::SetupTemplate>>,
    /// The order's customer, as the order carries them.
    pub(crate) customer_id: Option<String>,
    pub(crate) customer_name: Option<String>,
}

/// The setup `setup_id` as the client's page needs it.
pub(crate) async fn intake_context<'e>(
    db: impl sqlx::PgExecutor<'e>,
    setup_id: Uuid,
) -> sqlx::Result<Option<IntakeContext>> {
    sqlx::query_as(
        "select s.setup_id, s.order_id, s.store_id, s.status, s.stage_index, s.sequence,
                t.template, o.customer->>'id' as customer_id, o.customer_name
         from setups s
         left join setup_templates t on t.sku = s.sku and t.version = s.template_version
         left join orders o on o.order_id = s.order_id
         where s.setup_id = $1",
    )
    .bind(setup_id)
    .fetch_optional(db)
    .await
}

/// The figures of the setups of one product and template version.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub(crate) struct SetupFigures {
    /// The service product.
    pub(crate) product: String,
    pub(crate) template_version: i32,
    /// Setups started.
    pub(crate) setups: i64,
    /// Of which completed.
    pub(crate) completed: i64,
    /// Times back per setup, on average (changes asked, QA failed, returned).
    pub(crate) loops_per_setup: f64,
    /// The share of setups found past a stage's SLA at least once (0 to 1).
    pub(crate) overdue_share: f64,
    /// Per stage, in the template's order.
    #[sqlx(skip)]
    pub(crate) stages: Vec<StageFigures>,
}

/// How long setups spent in one stage (every visit together, time on hold left out).
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub(crate) struct StageFigures {
    #[serde(skip)]
    pub(crate) product: String,
    #[serde(skip)]
    pub(crate) template_version: i32,
    /// The stage's key.
    pub(crate) stage: String,
    /// Setups that left the stage at least once (the ones still in it are not counted).
    pub(crate) setups: i64,
    /// Median hours in it.
    pub(crate) p50_hours: f64,
    /// 90th percentile hours in it.
    pub(crate) p90_hours: f64,
}

/// The figures of the setups of `stores` (when given), by product and template version.
pub(crate) async fn analytics(
    pool: &PgPool,
    stores: Option<&[String]>,
    q: &SetupQuery,
) -> sqlx::Result<Vec<SetupFigures>> {
    let mut totals: Vec<SetupFigures> = sqlx::query_as(
        "select sku as product, template_version, count(*) as setups,
                count(*) filter (where status = 'completed') as completed,
                coalesce(avg(loops), 0)::float8 as loops_per_setup,
                (count(*) filter (where overdue_sequence is not null))::float8
                  / greatest(count(*), 1) as overdue_share
         from setups
         where ($1::text[] is null or store_id = any($1))
           and (cardinality($2::text[]) = 0 or store_id = any($2))
           and (cardinality($3::text[]) = 0 or sku = any($3))
           and ($4::date is null or started_at >= $4::date)
           and ($5::date is null or started_at < $5::date + 1)
         group by sku, template_version
         order by sku, template_version",
    )
    .bind(stores)
    .bind(&q.stores)
    .bind(&q.products)
    .bind(q.started_from)
    .bind(q.started_to)
    .fetch_all(pool)
    .await?;
    // Each span of the history (a change to the next one) counts for the stage it was in,
    // unless the setup was on hold; a setup's spans in one stage add up (loops included).
    let stages: Vec<StageFigures> = sqlx::query_as(
        "with spans as (
           select s.sku, s.template_version, h.setup_id, h.stage, h.stage_index, h.to_status,
                  extract(epoch from lead(h.at) over w - h.at) as seconds
           from setups s join setup_history h on h.setup_id = s.setup_id
           where ($1::text[] is null or s.store_id = any($1))
             and (cardinality($2::text[]) = 0 or s.store_id = any($2))
             and (cardinality($3::text[]) = 0 or s.sku = any($3))
             and ($4::date is null or s.started_at >= $4::date)
             and ($5::date is null or s.started_at < $5::date + 1)
           window w as (partition by h.setup_id order by h.sequence)
         ), per_setup as (
           select sku, template_version, setup_id, stage, min(stage_index) as stage_index,
                  sum(seconds) as seconds
           from spans
           where seconds is not null and to_status <> 'on_hold'
           group by sku, template_version, setup_id, stage
         )
         select sku as product, template_version, stage, count(*) as setups,
                (percentile_cont(0.5) within group (order by seconds) / 3600)::float8
                  as p50_hours,
                (percentile_cont(0.9) within group (order by seconds) / 3600)::float8
                  as p90_hours
         from per_setup
         group by sku, template_version, stage
         order by sku, template_version, min(stage_index)",
    )
    .bind(stores)
    .bind(&q.stores)
    .bind(&q.products)
    .bind(q.started_from)
    .bind(q.started_to)
    .fetch_all(pool)
    .await?;
    for stage in stages {
        if let Some(t) = totals
            .iter_mut()
            .find(|t| t.product == stage.product && t.template_version == stage.template_version)
        {
            t.stages.push(stage);
        }
    }
    Ok(totals)
}

/// An invitation of a setup's client, as the setup's detail shows it.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub(crate) struct Invitation {
    /// The setup's sequence when the wait began.
    pub(crate) sequence: i32,
    /// 0 for the first invitation of the wait, then the reminder's number.
    pub(crate) reminder: i32,
    /// `intake` or `approval`.
    pub(crate) task: String,
    pub(crate) at: DateTime<Utc>,
    /// When the link sent expires (absent when none could be sent).
    pub(crate) expires_at: Option<DateTime<Utc>>,
    /// Why no link could be sent.
    pub(crate) problem: Option<String>,
}

/// Records an invitation (once per setup, wait and reminder); `false` when it was already.
pub(crate) async fn record_invitation(
    conn: &mut PgConnection,
    setup_id: Uuid,
    i: &Invitation,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "insert into setup_invitations (setup_id, sequence, reminder, task, at, expires_at,
                                        problem)
         values ($1, $2, $3, $4, $5, $6, $7) on conflict do nothing",
    )
    .bind(setup_id)
    .bind(i.sequence)
    .bind(i.reminder)
    .bind(&i.task)
    .bind(i.at)
    .bind(i.expires_at)
    .bind(i.problem.as_deref())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A setup's invitations, oldest first.
pub(crate) async fn invitations(pool: &PgPool, setup_id: Uuid) -> sqlx::Result<Vec<Invitation>> {
    sqlx::query_as(
        "select sequence, reminder, task, at, expires_at, problem from setup_invitations
         where setup_id = $1 order by at, sequence, reminder",
    )
    .bind(setup_id)
    .fetch_all(pool)
    .await
}
