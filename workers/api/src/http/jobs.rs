//! Bulk actions as jobs: `POST /api/v1/admin/orders/bulk` creates one, `GET
//! /api/v1/admin/jobs/{id}` and `/items` say how far it got and what became of each order,
//! and `POST /api/v1/admin/jobs/{id}/cancel` stops it.
//!
//! Creating a job fixes its orders at once, by the list's own filters (so it covers exactly
//! what the list shows for them, in the stores the token sees) or by ids, each with what
//! will be done: sent, or skipped with the reason ([`crate::domain::bulk`]). The commands
//! are then sent by the worker's job sender (`crate::jobs`), not in the request. In order, a
//! request is checked for: a valid token (401), a well-formed body naming the field at fault
//! (400), the action's permission (403), `Idempotency-Key` (the same key again answers with
//! the first job; reused for another request, 422), and a selection of at most 100,000
//! orders (422). A dry run is a job that is completed when created and sent nothing: its
//! items are what the real run would send and skip.
//!
//! Who sees a job: the staff member who created it, and staff who see every store. Every
//! request that authenticated is in the audit log, as a single action's is, and each order's
//! command too.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode},
};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use tracing::{error, info};
use uuid::Uuid;

use super::actions::Client;
use super::auth::Caller;
use super::endpoint::{Accepted, Reply};
use super::orders::pairs;
use super::{Api, Problem};
use crate::domain::access::{Permission, Scope};
use crate::domain::bulk::{self, Bulk, BulkAction, Found, Selection};
use crate::domain::command;
use crate::domain::jobs as jobs_query;
use crate::store::commands::{self as commands, AuditEntry, By};
use crate::store::jobs::{self as store, Job, JobItem, NewJob, Progress};
use crate::store::read;

/// A job as the API shows it.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Job")]
pub(crate) struct JobView {
    job_id: Uuid,
    /// What is done to each order.
    action: BulkAction,
    /// The action's body, as given.
    params: serde_json::Value,
    /// What the job was asked for: `{"filter": …}` or `{"order_ids": […]}`.
    selection: serde_json::Value,
    /// Nothing is sent: the items are what a real run would send and skip.
    dry_run: bool,
    /// `running` (commands are being sent), `completed` (every order sent or skipped;
    /// answers may still arrive, see `progress.awaiting_answer`), `cancelled`.
    state: String,
    /// What the job says about its selection as a whole (stores the token does not see).
    notes: serde_json::Value,
    /// Who created it.
    created_by: String,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    cancelled_by: Option<String>,
    progress: Progress,
    links: JobLinks,
}

/// Where a job and its items are.
#[derive(Debug, Serialize, JsonSchema)]
struct JobLinks {
    /// The job: poll it until `state` is not `running` and nothing awaits an answer.
    #[serde(rename = "self")]
    own: String,
    /// Its orders and what became of each (`GET …/items`).
    items: String,
    /// Stops it (`POST`), while it is running.
    cancel: String,
}

impl JobView {
    fn of(job: Job, progress: Progress) -> Self {
        let own = format!("/api/v1/admin/jobs/{}", job.job_id);
        Self {
            job_id: job.job_id,
            action: BulkAction::from_stored(&job.action).unwrap_or(BulkAction::Note),
            params: job.params,
            selection: job.selection,
            dry_run: job.dry_run,
            state: job.state,
            notes: job.notes,
            created_by: job.staff_email,
            created_at: job.created_at,
            finished_at: job.finished_at,
            cancelled_by: job.cancelled_by,
            progress,
            links: JobLinks {
                items: format!("{own}/items"),
                cancel: format!("{own}/cancel"),
                own,
            },
        }
    }
}

/// A page of a job's items.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct JobItemsPage {
    /// In the job's order.
    items: Vec<JobItem>,
    /// The `after` of the next page; `null` on the last.
    next_after: Option<i32>,
}

/// `POST /api/v1/admin/orders/bulk`.
pub(crate) async fn create(
    State(api): State<Arc<Api>>,
    caller: Caller,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Accepted<JobView>, Problem> {
    let mut audit_action = "orders.bulk".to_owned();
    let answer = decide(&api, &caller, &client, &headers, &body, &mut audit_action).await;
    let problem = match answer {
        Ok(accepted) => return Ok(accepted),
        Err(problem) => problem,
    };
    super::actions::audit_refusal(&api, &problem, |status, outcome, detail| {
        audit_entry(
            &caller,
            &client,
            &audit_action,
            None,
            status,
            outcome,
            Some(detail),
        )
    })
    .await;
    Err(problem)
}

async fn decide(
    api: &Api,
    caller: &Caller,
    client: &Client,
    headers: &HeaderMap,
    body: &[u8],
    audit_action: &mut String,
) -> Result<Accepted<JobView>, Problem> {
    // The audit entry names the action even when the rest of the body is refused.
    if let Some(action) = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::from_value::<BulkAction>(v["action"].clone()).ok())
    {
        *audit_action = format!("orders.bulk.{}", action.action().as_str());
    }
    let bulk = bulk::parse(body).map_err(|e| Problem::bad_body(e.field, e.reason))?;
    let action = bulk.action.action();
    caller.clone().require(Permission::OrdersView)?;
    caller.clone().require(action.permission())?;
    let key = headers
        .get("idempotency-key")
        .map(|v| command::idempotency_key(v.as_bytes()))
        .transpose()
        .map_err(|why| Problem::bad_parameter("Idempotency-Key", why))?;
    let fingerprint = command::request_fingerprint(action, "bulk", body);
    let staff_id = caller.0.staff_id;

    let mut tx = api.pool.begin().await.map_err(internal)?;
    if let Some(key) = &key
        && let Some(earlier) = store::by_key(&mut tx, staff_id, key)
            .await
            .map_err(internal)?
    {
        return replay(tx, caller, client, audit_action, earlier, &fingerprint).await;
    }
    let (items, notes) = select(&mut tx, caller.scope(), &bulk).await?;
    let trace = command::trace_of(headers.get("traceparent").map(|v| v.as_bytes()));
    let job_id = Uuid::now_v7();
    let new = NewJob {
        job_id,
        staff_id,
        token_id: caller.0.token_id,
        idempotency_key: key.as_deref(),
        request_sha256: &fingerprint,
        action: action.as_str(),
        params: &bulk.params,
        selection: &bulk.selection_json,
        dry_run: bulk.dry_run,
        notes: &notes,
        client_addr: client.addr(),
        forwarded_for: client.forwarded_for(),
        traceparent: trace.as_ref().map(|t| t.traceparent.as_str()),
    };
    if !store::insert(&mut tx, &new, &items)
        .await
        .map_err(internal)?
    {
        // A concurrent request with the same key won: answer with its job.
        drop(tx);
        let mut tx = api.pool.begin().await.map_err(internal)?;
        let earlier = store::by_key(&mut tx, staff_id, key.as_deref().unwrap_or_default())
            .await
            .map_err(internal)?
            .ok_or_else(Problem::unavailable)?;
        return replay(tx, caller, client, audit_action, earlier, &fingerprint).await;
    }
    let skipped = items.iter().filter(|i| i.skip.is_some()).count();
    let detail = format!(
        "job {job_id}{}: {} orders, {} to send, {skipped} skipped",
        if bulk.dry_run { " (dry run)" } else { "" },
        items.len(),
        items.len() - skipped,
    );
    let entry = audit_entry(
        caller,
        client,
        audit_action,
        Some(job_id),
        202,
        "accepted",
        Some(detail.clone()),
    );
    commands::audit(&mut tx, &entry).await.map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    api.jobs.notify_one();
    info!(who = %caller.0.email, %detail, "bulk job created");
    let view = load(api, job_id).await?.ok_or_else(Problem::unavailable)?;
    accepted(view)
}

/// The job's items, decided, and its notes.
async fn select(
    conn: &mut sqlx::PgConnection,
    scope: &Scope,
    bulk: &Bulk,
) -> Result<(Vec<bulk::Item>, Vec<String>), Problem> {
    let found = |rows: Vec<(Uuid, String, Option<String>)>| -> Vec<Found> {
        rows.into_iter()
            .map(|(order_id, store_id, status)| Found {
                order_id,
                store_id,
                status: status.and_then(|s| s.parse().ok()),
            })
            .collect()
    };
    match &bulk.selection {
        Selection::Filter(query) => {
            let stores = scope.narrow(&query.stores);
            let notes: Vec<String> = bulk::unseen_stores_note(&query.stores, stores.as_deref())
                .into_iter()
                .collect();
            let limit = i64::try_from(bulk::MAX_ORDERS).unwrap_or(i64::MAX) + 1;
            let rows = read::selection(conn, stores.as_deref(), query, limit)
                .await
                .map_err(internal)?;
            if rows.len() > bulk::MAX_ORDERS {
                return Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "selection-too-large",
                    "Too many orders for one job",
                    format!(
                        "the filter matches more than {} orders: narrow it (by placed_from and \
                         placed_to, say) and run one job per part",
                        bulk::MAX_ORDERS
                    ),
                ));
            }
            let items = found(rows)
                .iter()
                .map(|f| bulk::item(bulk.action, f))
                .collect();
            Ok((items, notes))
        }
        Selection::Ids(ids) => {
            let stores = scope.narrow(&[]);
            let rows = store::orders_of_ids(conn, ids, stores.as_deref())
                .await
                .map_err(internal)?;
            Ok((
                bulk::items_for_ids(bulk.action, ids, &found(rows)),
                Vec::new(),
            ))
        }
    }
}

/// The same key again: the first job, if the request is the same; else 422.
async fn replay(
    mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
    caller: &Caller,
    client: &Client,
    audit_action: &str,
    earlier: Job,
    fingerprint: &str,
) -> Result<Accepted<JobView>, Problem> {
    if earlier.request_sha256 != fingerprint {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "Idempotency-Key already used",
            format!(
                "this Idempotency-Key was used for another request (job {}); use a new key for \
                 a new request",
                earlier.job_id
            ),
        ));
    }
    let entry = audit_entry(
        caller,
        client,
        audit_action,
        Some(earlier.job_id),
        202,
        "replayed",
        Some(format!("job {}", earlier.job_id)),
    );
    commands::audit(&mut tx, &entry).await.map_err(internal)?;
    let progress = store::progress(&mut tx, earlier.job_id)
        .await
        .map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    accepted(JobView::of(earlier, progress))
}

fn accepted(view: JobView) -> Result<Accepted<JobView>, Problem> {
    let own = view.links.own.clone();
    Accepted::new(view).located(&own)
}

/// `GET /api/v1/admin/jobs/{id}`.
pub(crate) async fn show(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Reply<JobView>, Problem> {
    let caller = caller.require(Permission::OrdersView)?;
    let job_id = visible(&api, &caller, &id).await?;
    let view = load(&api, job_id).await?.ok_or_else(|| not_found(&id))?;
    Ok(Reply::new(view))
}

/// A page of bulk jobs, newest first.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct JobsPage {
    jobs: Vec<JobView>,
    /// The next page: `?before=` this (absent on the last page).
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<Uuid>,
}

/// `GET /api/v1/admin/jobs`: the caller's own jobs, or everyone's for staff who see every
/// store (as [`show`] decides).
pub(crate) async fn list(
    State(api): State<Arc<Api>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Reply<JobsPage>, Problem> {
    let caller = caller.require(Permission::OrdersView)?;
    let query =
        jobs_query::parse(&pairs(raw)).map_err(|e| Problem::bad_parameter(e.field, e.reason))?;
    let creator = (!matches!(caller.scope(), Scope::All)).then_some(caller.0.staff_id);
    let mut conn = api.pool.acquire().await.map_err(internal)?;
    let mut jobs = store::list(
        &mut conn,
        creator,
        query.state,
        query.before,
        query.limit + 1,
    )
    .await
    .map_err(internal)?;
    let more = jobs.len() > usize::try_from(query.limit).unwrap_or(usize::MAX);
    jobs.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
    let ids: Vec<Uuid> = jobs.iter().map(|j| j.job_id).collect();
    let mut progress = store::progress_of(&mut conn, &ids)
        .await
        .map_err(internal)?;
    let next_before = more.then(|| ids.last().copied()).flatten();
    let jobs = jobs
        .into_iter()
        .map(|job| {
            let p = progress.remove(&job.job_id).unwrap_or_default();
            JobView::of(job, p)
        })
        .collect();
    Ok(Reply::new(JobsPage { jobs, next_before }))
}

/// `GET /api/v1/admin/jobs/{id}/items`.
pub(crate) async fn items(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Reply<JobItemsPage>, Problem> {
    let caller = caller.require(Permission::OrdersView)?;
    let query =
        bulk::parse_items(&pairs(raw)).map_err(|e| Problem::bad_parameter(e.field, e.reason))?;
    let job_id = visible(&api, &caller, &id).await?;
    let mut conn = api.pool.acquire().await.map_err(internal)?;
    let mut items = store::items(
        &mut conn,
        job_id,
        query.outcome,
        query.after,
        query.limit + 1,
    )
    .await
    .map_err(internal)?;
    let more = items.len() > usize::try_from(query.limit).unwrap_or(usize::MAX);
    items.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
    let next_after = more.then(|| items.last().map(|i| i.position)).flatten();
    Ok(Reply::new(JobItemsPage { items, next_after }))
}

/// `POST /api/v1/admin/jobs/{id}/cancel`: stops a running job; its orders not sent yet are
/// skipped (`job_cancelled`). Commands already sent stay sent.
pub(crate) async fn cancel(
    State(api): State<Arc<Api>>,
    caller: Caller,
    client: Client,
    Path(id): Path<String>,
) -> Result<Reply<JobView>, Problem> {
    let caller = caller.require(Permission::OrdersView)?;
    let job_id = visible(&api, &caller, &id).await?;
    let mut tx = api.pool.begin().await.map_err(internal)?;
    let job = store::job(&mut tx, job_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found(&id))?;
    let action = BulkAction::from_stored(&job.action)
        .map(BulkAction::action)
        .ok_or_else(Problem::unavailable)?;
    let caller = caller.require(action.permission())?;
    let cancelled = store::cancel(&mut tx, job_id, &caller.0.email)
        .await
        .map_err(internal)?;
    if !cancelled {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "job-not-running",
            "The job is not running",
            format!(
                "job {job_id} is {}: there is nothing left to stop",
                job.state
            ),
        ));
    }
    let entry = audit_entry(
        &caller,
        &client,
        "jobs.cancel",
        Some(job_id),
        200,
        "accepted",
        Some(format!("job {job_id}")),
    );
    commands::audit(&mut tx, &entry).await.map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    info!(who = %caller.0.email, %job_id, "bulk job cancelled");
    let view = load(&api, job_id).await?.ok_or_else(|| not_found(&id))?;
    Ok(Reply::new(view))
}

/// The job `id` names, if `caller` may see it (its creator, or staff who see every store);
/// else 404, like one that does not exist.
async fn visible(api: &Api, caller: &Caller, id: &str) -> Result<Uuid, Problem> {
    let job_id: Uuid = id
        .parse()
        .map_err(|_| Problem::bad_parameter("id", format!("`{id}` is not a job id (a UUID)")))?;
    let mut conn = api.pool.acquire().await.map_err(internal)?;
    let job = store::job(&mut conn, job_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found(id))?;
    if caller.sees_work_of(job.staff_id) {
        Ok(job_id)
    } else {
        Err(not_found(id))
    }
}

async fn load(api: &Api, job_id: Uuid) -> Result<Option<JobView>, Problem> {
    let mut conn = api.pool.acquire().await.map_err(internal)?;
    let Some(job) = store::job(&mut conn, job_id).await.map_err(internal)? else {
        return Ok(None);
    };
    let progress = store::progress(&mut conn, job_id).await.map_err(internal)?;
    Ok(Some(JobView::of(job, progress)))
}

fn not_found(id: &str) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "job-not-found",
        "No such job",
        format!("no job {id} that this token may see"),
    )
}

fn audit_entry<'a>(
    caller: &'a Caller,
    client: &Client,
    action: &'a str,
    job_id: Option<Uuid>,
    status: u16,
    outcome: &'static str,
    detail: Option<String>,
) -> AuditEntry<'a> {
    AuditEntry {
        by: By::Staff {
            staff_id: caller.0.staff_id,
            token_id: caller.0.token_id,
            email: &caller.0.email,
        },
        action,
        order_id: None,
        store_id: None,
        target: job_id.map(|id| format!("job {id}")),
        command_id: None,
        client_addr: client.addr().map(str::to_owned),
        forwarded_for: client.forwarded_for().map(str::to_owned),
        http_status: status,
        outcome,
        detail,
    }
}

fn internal(e: sqlx::Error) -> Problem {
    error!(error = %e, "bulk job request failed: database");
    Problem::unavailable()
}
