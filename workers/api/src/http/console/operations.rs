//! The operations page (`/admin/operations`, `operations.manage`: Order Admins): every queue
//! as the broker sees it (waiting, consumers, dead letters; a worker queue without a
//! consumer is a worker that is not running), each worker's dead letters with the reason it
//! gave, replayed or purged from here (audited), the readiness checks of the workers this
//! process runs, and the API's own unpublished outbox. Nothing is read from another worker's
//! schema (see `crate::operations`).

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use maud::{Markup, html};
use tracing::{info, warn};

use super::super::actions::Client;
use super::super::orders::pairs;
use super::super::{Api, Problem};
use super::layout::{self, Section, csrf_field, maybe_time};
use super::text::Text;
use super::{Signed, checked_form, csrf_refusal, page_response, problem_page};
use crate::domain::access::Permission;
use crate::operations::{QueueState, is_worker_queue};
use crate::store::commands::{self, AuditEntry, By};

/// Dead letters listed per queue.
const SHOWN: usize = 20;

fn refused(signed: &Signed) -> Option<Response> {
    match signed.caller.clone().require(Permission::OperationsManage) {
        Ok(_) => None,
        Err(problem) => Some(problem_page(signed, &problem, "/admin/orders")),
    }
}

/// `GET /admin/operations`.
pub(crate) async fn page(
    State(api): State<Arc<Api>>,
    signed: Signed,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Some(refusal) = refused(&signed) {
        return refusal;
    }
    let text = signed.lang.text();
    let queues = api.operations.queues().await;
    if let Err(e) = &queues {
        warn!(error = %e, "operations page: the broker could not be asked");
    }
    let mut letters = Vec::new();
    for q in queues.iter().flatten().filter(|q| q.dead.unwrap_or(0) > 0) {
        match api.operations.dead_letters(q.queue, SHOWN).await {
            Ok(list) => letters.push((q.queue, list)),
            Err(e) => warn!(queue = q.queue, error = %e, "dead letters could not be listed"),
        }
    }
    let unpublished: Option<i64> =
        sqlx::query_scalar("select count(*) from outbox where published_at is null")
            .fetch_one(&api.pool)
            .await
            .ok();
    let done = pairs(raw);
    let notice = done
        .iter()
        .find(|(k, _)| k == "done")
        .map(|(_, v)| v.clone());
    let body = html! {
        h1 { (text.operations) }
        p.muted { (text.operations_note) }
        @if let Some(notice) = notice {
            p.notice.info role="status" #operations-done { (notice) }
        }
        section.card aria-labelledby="queues" {
            h2 #queues { (text.queues) }
            @match &queues {
                Ok(queues) => (queue_table(text, queues)),
                Err(_) => p.notice.error role="alert" { (text.broker_unreachable) },
            }
        }
        @for (queue, list) in &letters {
            section.card aria-labelledby=(format!("dead-{queue}")) {
                h2 id=(format!("dead-{queue}")) { (text.dead_letters) " · " (queue) }
                form method="post" action=(format!("/admin/operations/{queue}/replay")) {
                    (csrf_field(&signed.csrf))
                    table {
                        thead { tr {
                            th { span.visually-hidden { (text.replay) } }
                            th { (text.message_type) } th { (text.reason) }
                            th.num { (text.attempts) } th { (text.when) }
                        } }
                        tbody {
                            @for (i, l) in list.iter().enumerate() {
                                @let id = l.message_id.clone().unwrap_or_default();
                                tr {
                                    td {
                                        @if !id.is_empty() {
                                            input type="checkbox" name="id" value=(id) id=(format!("letter-{queue}-{i}"))
                                                aria-label=(format!("{} {}", l.message_type.as_deref().unwrap_or("?"), id));
                                        }
                                    }
                                    td { code { (l.message_type.as_deref().unwrap_or("—")) } br; small.muted { (id) } }
                                    td.reason { (l.reason) }
                                    td.num { (l.attempts.map_or("—".to_owned(), |a| a.to_string())) }
                                    td { (maybe_time(l.dead_at)) }
                                }
                            }
                        }
                    }
                    div.actions {
                        button type="submit" id=(format!("replay-{queue}")) { (text.replay) }
                        button.secondary type="submit" name="all" value="1" id=(format!("replay-all-{queue}")) { (text.replay_all) }
                        button.danger type="submit" formaction=(format!("/admin/operations/{queue}/purge"))
                            id=(format!("purge-{queue}")) title=(text.purge_confirm) { (text.purge) }
                        button.danger type="submit" name="all" value="1" formaction=(format!("/admin/operations/{queue}/purge"))
                            id=(format!("purge-all-{queue}")) title=(text.purge_confirm) { (text.purge_all) }
                    }
                }
            }
        }
        div.grid {
            section.card aria-labelledby="readiness" {
                h2 #readiness { (text.readiness) }
                ul #readiness-checks {
                    @for (check, ok) in api.health.checks() {
                        li { code { (check) } ": " @if ok { span.badge.status-completed { (text.ready) } } @else { span.badge.status-cancelled { (text.not_ready) } } }
                    }
                }
            }
            section.card aria-labelledby="outbox" {
                h2 #outbox { (text.outbox_backlog) }
                p #outbox-unpublished { strong { (unpublished.map_or("—".to_owned(), |n| n.to_string())) } }
            }
        }
    };
    page_response(
        StatusCode::OK,
        layout::page(
            &signed,
            Some(Section::Operations),
            text.operations,
            None,
            "/admin/operations",
            body,
        ),
    )
}

fn queue_table(text: &Text, queues: &[QueueState]) -> Markup {
    let n = |v: Option<u32>| v.map_or("—".to_owned(), |v| v.to_string());
    html! {
        table #queue-table {
            thead { tr {
                th { (text.queue) } th.num { (text.waiting) } th.num { (text.consumers) } th.num { (text.dead_letters) }
            } }
            tbody {
                @for q in queues {
                    tr {
                        th scope="row" {
                            code { (q.queue) }
                            @if !q.worker { " " small.muted { (text.outbound_queue) } }
                            @if q.waiting.is_none() {
                                br; span.badge.status-cancelled { (text.not_declared) }
                            } @else if q.worker && q.consumers == Some(0) {
                                br; span.badge.status-cancelled { (text.not_running) }
                            }
                        }
                        td.num { (n(q.waiting)) }
                        td.num { (n(q.consumers)) }
                        td.num {
                            @if q.dead.unwrap_or(0) > 0 {
                                a href=(format!("#dead-{}", q.queue)) { strong { (n(q.dead)) } }
                            } @else { (n(q.dead)) }
                        }
                    }
                }
            }
        }
    }
}

/// `POST /admin/operations/{queue}/replay|purge`: the chosen dead letters (`id`, repeated)
/// or every one (`all`), with the form token; audited as
/// `operations.dead_letters.replay|purge`.
pub(crate) async fn act(
    State(api): State<Arc<Api>>,
    signed: Signed,
    client: Client,
    Path((queue, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Some(refusal) = refused(&signed) {
        return refusal;
    }
    let Some(form) = checked_form(&signed, &body) else {
        return csrf_refusal(signed.lang);
    };
    let back = "/admin/operations";
    if !is_worker_queue(&queue) || !matches!(action.as_str(), "replay" | "purge") {
        let problem = Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "No such action",
            format!("`{queue}/{action}`: replay or purge the dead letters of a worker's queue"),
        );
        return problem_page(&signed, &problem, back);
    }
    let ids: Vec<String> = form
        .0
        .iter()
        .filter(|(k, v)| k == "id" && !v.trim().is_empty())
        .map(|(_, v)| v.trim().to_owned())
        .collect();
    let all = form.ticked("all");
    if ids.is_empty() && !all {
        let problem = Problem::bad_parameter(
            "id",
            "choose the dead letters to act on, or use the button for all of them",
        );
        return problem_page(&signed, &problem, back);
    }
    let chosen: &[String] = if all { &[] } else { &ids };
    let result = if action == "replay" {
        api.operations.replay(&queue, chosen).await
    } else {
        api.operations.purge(&queue, chosen).await
    };
    let text = signed.lang.text();
    let (status, outcome, detail) = match &result {
        Ok(n) => (
            200,
            "accepted",
            format!(
                "{n} {} ({})",
                if action == "replay" {
                    text.replayed
                } else {
                    text.purged
                },
                if all {
                    "all".to_owned()
                } else {
                    ids.join(", ")
                }
            ),
        ),
        Err(e) => (503, "refused", e.to_string()),
    };
    let name = format!("operations.dead_letters.{action}");
    let entry = AuditEntry {
        by: By::Staff {
            staff_id: signed.caller.0.staff_id,
            token_id: signed.caller.0.token_id,
            email: &signed.caller.0.email,
        },
        action: &name,
        order_id: None,
        store_id: None,
        target: Some(format!("queue {queue}")),
        command_id: None,
        client_addr: client.addr().map(str::to_owned),
        forwarded_for: client.forwarded_for().map(str::to_owned),
        http_status: status,
        outcome,
        detail: Some(detail.clone()),
    };
    let audited = match api.pool.acquire().await {
        Ok(mut conn) => commands::audit(&mut conn, &entry).await.is_ok(),
        Err(_) => false,
    };
    if !audited || result.is_err() {
        return super::unavailable(signed.lang);
    }
    info!(who = %signed.caller.0.email, %queue, %action, %detail, "dead letters");
    let done: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("done", &format!("{queue}: {detail}"))
        .finish();
    Redirect::to(&format!("{back}?{done}")).into_response()
}
