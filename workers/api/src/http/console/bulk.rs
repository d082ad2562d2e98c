//! Bulk actions from the list: one action (note, hold, release, cancel) on every order the
//! list's filters select, or on the orders chosen one by one with the list's checkboxes, as a job of the JSON API (`POST /api/v1/admin/orders/bulk`, its
//! own code path: the role's permission for the action, the store scope, the selection
//! fixed when the job is created, one command per order), and the job's page with its
//! progress, which reloads itself until every order is sent and answered.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use maud::{Markup, html};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::super::Api;
use super::super::actions::Client;
use super::super::jobs;
use super::super::orders::pairs;
use super::layout::{self, Section, badge, csrf_field};
use super::text::Text;
use super::{Signed, checked_form, csrf_refusal, page_response, problem_page};
use crate::domain::access::Permission;

/// The bulk actions the console offers, with the permission each needs and the field of
/// its body the form's text fills.
const ACTIONS: [(&str, Permission, &str); 4] = [
    ("note", Permission::OrdersEdit, "text"),
    ("hold", Permission::OrdersEdit, "reason"),
    ("release", Permission::OrdersEdit, "reason"),
    ("cancel", Permission::OrdersCancel, "reason"),
];

/// The list's filters of a query string (no page, no blanks).
fn filters(raw: Option<String>) -> Vec<(String, String)> {
    pairs(raw)
        .into_iter()
        .filter(|(n, v)| {
            !v.trim().is_empty()
                && matches!(
                    n.as_str(),
                    "store" | "channel" | "status" | "q" | "placed_from" | "placed_to"
                )
        })
        .collect()
}

/// Orders chosen one by one on the list (`order_id`, repeated), at most the API's 1,000.
fn chosen(raw: Option<String>) -> Vec<String> {
    pairs(raw)
        .into_iter()
        .filter(|(n, v)| n == "order_id" && !v.trim().is_empty())
        .map(|(_, v)| v.trim().to_owned())
        .take(1000)
        .collect()
}

/// Whether the list should let orders be chosen for a bulk action (the role allows one).
pub(crate) fn choosable(signed: &Signed) -> bool {
    !allowed(signed).is_empty()
}

/// The actions `signed`'s role may take in bulk.
fn allowed(signed: &Signed) -> Vec<&'static str> {
    ACTIONS
        .iter()
        .filter(|(_, p, _)| signed.caller.0.role.grants(*p))
        .map(|(a, _, _)| *a)
        .collect()
}

/// Whether the list should offer a bulk action (a filter is given, and the role allows
/// one).
pub(crate) fn offered(signed: &Signed, pairs: &[(String, String)]) -> Option<String> {
    let filters: Vec<&(String, String)> = pairs
        .iter()
        .filter(|(n, _)| {
            matches!(
                n.as_str(),
                "store" | "channel" | "status" | "q" | "placed_from" | "placed_to"
            )
        })
        .collect();
    if filters.is_empty() || allowed(signed).is_empty() {
        return None;
    }
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (n, v) in filters {
        query.append_pair(n, v);
    }
    Some(format!("/admin/orders/bulk?{}", query.finish()))
}

/// `GET /admin/orders/bulk?<filters>` or `?order_id=…&order_id=…` (orders chosen on the
/// list): the bulk action's form, with its confirmation. Chosen orders take precedence.
pub(crate) async fn form(signed: Signed, RawQuery(raw): RawQuery) -> Response {
    let chosen = chosen(raw.clone());
    let filters = if chosen.is_empty() {
        filters(raw)
    } else {
        Vec::new()
    };
    form_page(&signed, &filters, &chosen, None, StatusCode::OK)
}

fn form_page(
    signed: &Signed,
    filters: &[(String, String)],
    chosen: &[String],
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let text = signed.lang.text();
    let actions = allowed(signed);
    let body = html! {
        p { a href="/admin/orders" { "← " (text.orders) } }
        h1 { (text.bulk_action) }
        @if let Some(error) = error { (layout::notice("error", html! { p { (error) } })) }
        section.card {
            @if chosen.is_empty() {
                p { (text.bulk_selection) }
                (describe(text, filters))
            } @else {
                p #bulk-chosen { (chosen.len()) " " (text.bulk_chosen) }
            }
            @if (filters.is_empty() && chosen.is_empty()) || actions.is_empty() {
                p.muted { (text.no_actions) }
            } @else {
                form method="post" action="/admin/orders/bulk" {
                    (csrf_field(&signed.csrf))
                    input type="hidden" name="key" value=(Uuid::now_v7());
                    @for (n, v) in filters { input type="hidden" name=(format!("filter.{n}")) value=(v); }
                    @for id in chosen { input type="hidden" name="order_id" value=(id); }
                    p {
                        label for="bulk-action" { (text.action) }
                        br;
                        select #bulk-action name="action" {
                            @for a in &actions { option value=(a) { (a) } }
                        }
                    }
                    p {
                        label for="bulk-text" { (text.bulk_text) }
                        textarea #bulk-text name="text" required maxlength="500" {}
                    }
                    p {
                        label.check for="bulk-confirm" {
                            input #bulk-confirm type="checkbox" name="confirm" value="yes" required;
                            span { (text.bulk_confirm) }
                        }
                    }
                    div.actions {
                        button #bulk-start type="submit" { (text.bulk_start) }
                        a.button.secondary href="/admin/orders" { (text.back) }
                    }
                }
            }
        }
    };
    page_response(
        status,
        layout::page(
            signed,
            Some(Section::Orders),
            text.bulk_action,
            None,
            "/admin/orders",
            body,
        ),
    )
}

fn describe(text: &Text, filters: &[(String, String)]) -> Markup {
    html! {
        @if filters.is_empty() { p.muted { (text.none) } } @else {
            dl.facts #bulk-filter { @for (n, v) in filters { dt { (n) } dd { (v) } } }
        }
    }
}

/// `POST /admin/orders/bulk`: with the form token and the ticked confirmation, the JSON
/// API's bulk job for the chosen orders or the filters; then the job's page.
pub(crate) async fn start(
    State(api): State<Arc<Api>>,
    signed: Signed,
    client: Client,
    body: Bytes,
) -> Response {
    let Some(form) = checked_form(&signed, &body) else {
        return csrf_refusal(signed.lang);
    };
    let filters: Vec<(String, String)> = form
        .0
        .iter()
        .filter_map(|(n, v)| n.strip_prefix("filter.").map(|n| (n.to_owned(), v.clone())))
        .filter(|(_, v)| !v.trim().is_empty())
        .collect();
    let chosen: Vec<String> = form
        .0
        .iter()
        .filter(|(n, v)| n == "order_id" && !v.trim().is_empty())
        .map(|(_, v)| v.trim().to_owned())
        .collect();
    let text = signed.lang.text();
    let action = form.text("action").unwrap_or_default();
    let (Some(words), true, Some((_, _, field))) = (
        form.text("text"),
        form.ticked("confirm"),
        ACTIONS.iter().find(|(a, _, _)| *a == action),
    ) else {
        let error = format!(
            "{} / {} / {}",
            text.action, text.bulk_text, text.bulk_confirm
        );
        return form_page(
            &signed,
            &filters,
            &chosen,
            Some(&error),
            StatusCode::BAD_REQUEST,
        );
    };
    let mut filter = Map::new();
    for (n, v) in &filters {
        match filter.get_mut(n) {
            Some(Value::Array(items)) => items.push(Value::String(v.clone())),
            Some(one) => *one = Value::Array(vec![one.clone(), Value::String(v.clone())]),
            None => {
                filter.insert(n.clone(), Value::String(v.clone()));
            }
        }
    }
    // The orders chosen one by one, else the list's filter (the API takes either).
    let json = if chosen.is_empty() {
        serde_json::json!({ "action": action, "params": { *field: words }, "filter": filter })
    } else {
        serde_json::json!({ "action": action, "params": { *field: words }, "order_ids": chosen })
    };
    let mut headers = HeaderMap::new();
    if let Some(key) = form.text("key").and_then(|k| HeaderValue::from_str(k).ok()) {
        headers.insert("idempotency-key", key);
    }
    let answer = jobs::create(
        State(api),
        signed.caller.clone(),
        client,
        headers,
        Bytes::from(json.to_string()),
    )
    .await;
    match answer.map(|a| serde_json::to_value(a.body())) {
        Ok(Ok(job)) => {
            let id = job["job_id"].as_str().unwrap_or_default().to_owned();
            Redirect::to(&format!("/admin/jobs/{id}")).into_response()
        }
        Ok(Err(_)) => super::unavailable(signed.lang),
        Err(problem) => problem_page(&signed, &problem, "/admin/orders"),
    }
}

/// `GET /admin/jobs/{id}`: a bulk job's progress; reloads itself until it is done.
pub(crate) async fn job(
    State(api): State<Arc<Api>>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    let job = match jobs::show(State(api), signed.caller.clone(), Path(id.clone())).await {
        Ok(reply) => match serde_json::to_value(reply.body()) {
            Ok(job) => job,
            Err(_) => return super::unavailable(signed.lang),
        },
        Err(problem) => return problem_page(&signed, &problem, "/admin/orders"),
    };
    let text = signed.lang.text();
    let p = &job["progress"];
    let n = |k: &str| p[k].as_i64().unwrap_or(0);
    let total = n("total");
    let done = total - n("pending") - n("awaiting_answer");
    let state = job["state"].as_str().unwrap_or("—");
    let running = state == "running" || n("awaiting_answer") > 0;
    let body = html! {
        p { a href="/admin/orders" { "← " (text.orders) } }
        h1 { (text.bulk_action) ": " (job["action"].as_str().unwrap_or("—")) }
        section.card {
            p { (text.status) ": " span #job-state { (badge(Some(state))) } }
            p {
                label for="job-progress" { (text.progress) }
                br;
                progress #job-progress max=(total.max(1)) value=(done) { (done) " / " (total) }
                " " span #job-count { (done) " / " (total) }
            }
            @if running { (layout::notice("info", html! { p { (text.command_pending) } })) }
            dl.facts #job-figures {
                @for k in ["total", "pending", "awaiting_answer", "applied", "partially_applied", "refused", "duplicate", "skipped"] {
                    dt { (k) } dd { (n(k)) }
                }
            }
        }
    };
    page_response(
        StatusCode::OK,
        layout::page(
            &signed,
            Some(Section::Orders),
            text.bulk_action,
            running.then_some(1),
            &format!("/admin/jobs/{id}"),
            body,
        ),
    )
}
