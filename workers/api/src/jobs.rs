//! The bulk jobs' sender: a task of the api worker that sends each running job's commands,
//! a batch per transaction ([`crate::store::jobs`]), oldest job first, at most
//! `[api] bulk_rate_per_second` commands a second.
//!
//! Why a batch per transaction: the batch's commands, their outbox messages and their
//! items' `sent` mark commit together, so a worker killed mid-job leaves each item either
//! sent (with its one command) or pending (with none); the next start resumes with the
//! pending ones and no order is sent a command twice. Several replicas of the api worker
//! may run: a job being sent is locked (`skip locked`), so each batch is one replica's.
//!
//! Why a rate: a bulk job of a hundred thousand cancellations would otherwise put them all
//! in the orders worker's queue at once, ahead of the storefronts' orders.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use uuid::Uuid;

use crate::domain::bulk::BulkAction;
use crate::domain::command::{self, Target};
use crate::http::Api;
use crate::store::jobs::{self as store, BatchCommand};

/// How the sender paces itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// Items per transaction.
    pub(crate) batch: u32,
    /// Commands per second at most (0: no limit).
    pub(crate) per_second: f64,
}

/// How long an idle sender waits before it looks for a job nobody told it of (one created
/// by another replica).
const IDLE: Duration = Duration::from_secs(2);

/// Sends the running jobs' commands until shutdown.
pub(crate) async fn run(api: Arc<Api>, pace: Pace, shutdown: CancellationToken) {
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let next = match store::next_running(&api.pool).await {
            Ok(next) => next,
            Err(e) => {
                warn!(error = %e, "bulk jobs: cannot look for a running job; retrying");
                wait(&api, &shutdown, IDLE).await;
                continue;
            }
        };
        let Some(job_id) = next else {
            wait(&api, &shutdown, IDLE).await;
            continue;
        };
        let started = Instant::now();
        match batch(&api, job_id, pace.batch).await {
            Ok(sent) => {
                if pace.per_second > 0.0 && sent > 0 {
                    let due = started + Duration::from_secs_f64(sent as f64 / pace.per_second);
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep_until(due) => {}
                    }
                }
            }
            Err(e) => {
                warn!(error = %e, %job_id, "bulk job: a batch failed; it is retried");
                wait(&api, &shutdown, Duration::from_secs(1)).await;
            }
        }
    }
}

async fn wait(api: &Api, shutdown: &CancellationToken, at_most: Duration) {
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = api.jobs.notified() => {}
        () = tokio::time::sleep(at_most) => {}
    }
}

/// Sends the next batch of `job_id`'s pending items; completes the job when none is left.
/// Returns how many commands it sent.
async fn batch(api: &Api, job_id: Uuid, size: u32) -> anyhow::Result<usize> {
    let mut tx = api.pool.begin().await?;
    let Some(job) = store::lock_running(&mut tx, job_id).await? else {
        return Ok(0);
    };
    let request = match BulkAction::from_stored(&job.action)
        .ok_or_else(|| format!("`{}` is not a bulk action", job.action))
        .and_then(|a| {
            a.request(&job.params)
                .map(|r| (a, r))
                .map_err(|e| format!("{}: {}", e.field, e.reason))
        }) {
        Ok(request) => request,
        Err(why) => {
            // Checked when the job was created: only a change of the rules since can get
            // here. Stopping the job says so; sending nothing is the safe side.
            error!(%job_id, %why, "bulk job: its parameters are no longer valid; cancelled");
            store::cancel(&mut tx, job_id, &format!("orderly: {why}")).await?;
            tx.commit().await?;
            return Ok(0);
        }
    };
    let (action, request) = request;
    let pending = store::pending(&mut tx, job_id, i64::from(size)).await?;
    let actor = command::operator(&job.staff_email, job.staff_id);
    // Every command of the job continues the trace of the request that created it.
    let trace = command::trace_of(job.traceparent.as_deref().map(str::as_bytes));
    let mut commands = Vec::with_capacity(pending.len());
    for item in &pending {
        let command_id = Uuid::now_v7();
        let target = Target {
            order_id: item.order_id,
            store_id: &item.store_id,
        };
        match command::message(&request, target, command_id, actor.clone(), trace.as_ref()) {
            Ok(message) => commands.push(BatchCommand {
                position: item.position,
                command_id,
                order_id: item.order_id,
                store_id: item.store_id.clone(),
                message,
            }),
            Err(e) => {
                store::skip(
                    &mut tx,
                    job_id,
                    item.position,
                    &format!("{}: {}", e.field, e.reason),
                )
                .await?;
            }
        }
    }
    let written = store::send(&mut tx, &job, action.action().audit_name(), &commands).await?;
    let done = pending.len() < usize::try_from(size).unwrap_or(usize::MAX);
    if done {
        store::complete(&mut tx, job_id).await?;
    }
    tx.commit().await?;
    if let Some(handoff) = &api.handoff {
        handoff.hand(written);
    }
    if done {
        info!(%job_id, "bulk job: every order sent or skipped");
    }
    Ok(commands.len())
}
