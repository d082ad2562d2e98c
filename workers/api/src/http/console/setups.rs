//! The setup manager's pages: the setups of service lines (`/admin/setups`, filtered by
//! status and overdue, most recently changed first) and one setup (`/admin/setups/{id}`:
//! where it stands, the client's invitations, its history, and the staff's steps — complete
//! the stage, send it back, record the QA checklist, hold, release). A step is the JSON
//! API's `POST /api/v1/admin/setups/{id}/steps` through its own code path, with the
//! setup's sequence the page showed as `If-Match`: a setup that moved meanwhile is refused
//! (412) instead of being moved twice by two people.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::Response,
};
use maud::{Markup, html};
use orderly_contracts::messages::{SetupStage, SetupTemplate, StageKind};
use tracing::error;
use uuid::Uuid;

use super::super::Api;
use super::super::actions::Client;
use super::super::orders::pairs;
use super::layout::{self, Section, badge, csrf_field, maybe_time, time};
use super::orders::send_with;
use super::text::Text;
use super::{Signed, checked_form, csrf_refusal, page_response, problem_page, unavailable};
use crate::domain::access::Permission;
use crate::domain::command::SetupStepBody;
use crate::domain::cursor::Cursor;
use crate::domain::setups as query;
use crate::store::setups::{self as store, SetupRow};

/// Setups on a page.
const PAGE_SIZE: &str = "50";

/// `GET /admin/setups?status=…&overdue=true&cursor=…`: the setups the staff member may see.
pub(crate) async fn list(
    State(api): State<Arc<Api>>,
    signed: Signed,
    RawQuery(raw): RawQuery,
) -> Response {
    let text = signed.lang.text();
    if let Err(refused) = signed.caller.clone().require(Permission::SetupsView) {
        return problem_page(&signed, &refused, "/admin/orders");
    }
    let here = super::here("/admin/setups", raw.as_deref());
    let mut asked: Vec<(String, String)> = pairs(raw)
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .collect();
    if !asked.iter().any(|(n, _)| n == "limit") {
        asked.push(("limit".to_owned(), PAGE_SIZE.to_owned()));
    }
    let chosen = |name: &str| {
        asked
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (status, overdue) = (chosen("status"), chosen("overdue") == "true");
    let (rows, bad) = match query::parse(&asked) {
        Ok(q) => {
            let stores = signed.caller.scope().narrow(&q.stores);
            match store::list(&api.pool, stores.as_deref(), &q).await {
                Ok(rows) => {
                    let full = rows.len() == usize::from(q.limit);
                    (Some((rows, full)), None)
                }
                Err(e) => {
                    error!(error = %e, "console setups read failed: database");
                    return unavailable(signed.lang);
                }
            }
        }
        Err(bad) => (None, Some(format!("{}: {}", bad.field, bad.reason))),
    };
    let (rows, full) = rows.unwrap_or_default();
    let next = full.then(|| rows.last()).flatten().map(|r| {
        let mut q: Vec<(String, String)> = asked
            .iter()
            .filter(|(n, _)| n != "cursor" && n != "limit")
            .cloned()
            .collect();
        q.push((
            "cursor".to_owned(),
            Cursor::after(r.updated_at, r.setup_id).encode(),
        ));
        format!(
            "/admin/setups?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(q)
                .finish()
        )
    });
    let statuses = [
        "pending_intake",
        "intake_review",
        "in_progress",
        "awaiting_client",
        "qa",
        "on_hold",
        "completed",
        "cancelled",
    ];
    let body = html! {
        h1 { (text.setups) }
        p.muted { (text.setups_note) }
        form.filters method="get" action="/admin/setups" {
            div.field {
                label for="status" { (text.status) }
                select #status name="status" {
                    option value="" { (text.any_status) }
                    @for s in statuses {
                        option value=(s) selected[status == s] { (s) }
                    }
                }
            }
            label.check for="overdue" {
                input #overdue type="checkbox" name="overdue" value="true" checked[overdue];
                span { (text.overdue_only) }
            }
            button type="submit" { (text.filter) }
        }
        @if let Some(bad) = &bad { (layout::notice("error", html! { p { (bad) } })) }
        @if rows.is_empty() && bad.is_none() { p.muted { (text.no_setups) } } @else if !rows.is_empty() {
            div.table-wrap { table.stack #setups {
                thead { tr {
                    th scope="col" { (text.product) } th scope="col" { (text.order) }
                    th scope="col" { (text.store) } th scope="col" { (text.status) }
                    th scope="col" { (text.stage) } th scope="col" { (text.loops) }
                    th scope="col" { (text.overdue) } th scope="col" { (text.when) }
                } }
                tbody { @for s in &rows { tr {
                    td data-label=(text.product) { a href=(format!("/admin/setups/{}", s.setup_id)) { code { (s.sku) } } }
                    td data-label=(text.order) { a href=(format!("/admin/orders/{}", s.order_id)) { (text.order) } }
                    td data-label=(text.store) { (s.store_id) }
                    td data-label=(text.status) { (badge(Some(&s.status))) }
                    td data-label=(text.stage) { (s.stage) }
                    td data-label=(text.loops) { (s.loops) }
                    td data-label=(text.overdue) { (maybe_time(s.overdue_since)) }
                    td data-label=(text.when) { (time(s.updated_at)) }
                } } }
            } }
        }
        @if let Some(next) = next {
            nav.pager aria-label="Pages" { a rel="next" href=(next) { (text.next_page) " →" } }
        }
    };
    super::list_response(
        &signed,
        Section::Setups,
        text.setups,
        &here,
        bad.is_some(),
        body,
    )
}

/// `GET /admin/setups/{id}`: one setup, its invitations and history, and its steps.
pub(crate) async fn detail(
    State(api): State<Arc<Api>>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    let text = signed.lang.text();
    let setup_id = match super::super::setups::setup_id(&id) {
        Ok(setup_id) => setup_id,
        Err(bad) => return problem_page(&signed, &bad, "/admin/setups"),
    };
    let not_found = || {
        problem_page(
            &signed,
            &super::super::setups::not_found(setup_id),
            "/admin/setups",
        )
    };
    if let Err(refused) = signed.caller.clone().require(Permission::SetupsView) {
        return problem_page(&signed, &refused, "/admin/orders");
    }
    let read = async {
        let found = store::one(&api.pool, setup_id).await?;
        let context = store::intake_context(&api.pool, setup_id).await?;
        let history = store::history(&api.pool, setup_id).await?;
        let invitations = store::invitations(&api.pool, setup_id).await?;
        Ok::<_, sqlx::Error>((found, context, history, invitations))
    };
    let (found, context, history, invitations) = match read.await {
        Ok(read) => read,
        Err(e) => {
            error!(error = %e, "console setup read failed: database");
            return unavailable(signed.lang);
        }
    };
    let Some(s) = found.filter(|s| signed.caller.scope().sees(&s.store_id)) else {
        return not_found();
    };
    let template = context.and_then(|c| c.template).map(|t| t.0);
    let may_move = signed.caller.0.role.grants(Permission::SetupsAdvance);
    let here = format!("/admin/setups/{setup_id}");
    let body = html! {
        p { a href=(format!("/admin/orders/{}", s.order_id)) { "← " (text.back_to_order) } }
        h1 { (text.setup) " " code { (s.sku) } }
        section.card {
            dl.facts {
                dt { (text.status) } dd #setup-status { (badge(Some(&s.status))) }
                dt { (text.stage) } dd #setup-stage { (stage_title(template.as_ref(), &s.stage)) }
                dt { (text.loops) } dd { (s.loops) }
                dt { (text.overdue) } dd { (maybe_time(s.overdue_since)) }
                dt { (text.store) } dd { (s.store_id) }
            }
        }
        h2 { (text.setup_steps) }
        @if !may_move { p.muted { (text.not_permitted_setups) } }
        @else { (steps(text, &signed.csrf, &s, template.as_ref())) }
        h2 { (text.client_invitations) }
        @if invitations.is_empty() { p.muted { (text.none) } } @else {
            ul #invitations { @for i in &invitations { li {
                (time(i.at)) " · " (i.task)
                @if i.reminder > 0 { " · reminder " (i.reminder) }
                @if let Some(until) = i.expires_at { " · " (text.link_until) " " (time(until)) }
                @if let Some(problem) = &i.problem { " · " span.muted { (problem) } }
            } } }
        }
        h2 { (text.history) }
        div.table-wrap { table.stack #setup-history {
            thead { tr { th scope="col" { (text.when) } th scope="col" { (text.what) } th scope="col" { (text.who) } } }
            tbody { @for h in &history { tr {
                td data-label=(text.when) { (time(h.at)) }
                td data-label=(text.what) {
                    (h.from.map_or("—", |f| f.as_str())) " → " (badge(Some(h.to.as_str())))
                    " (" (h.stage) ") " span.muted { (h.detail) }
                }
                td data-label=(text.who) {
                    (h.actor.as_ref().map_or("setups".to_owned(), |a| format!("{} {}", a.role, a.id)))
                }
            } } }
        } }
    };
    page_response(
        StatusCode::OK,
        layout::page(
            &signed,
            Some(Section::Setups),
            text.setup,
            None,
            &here,
            body,
        ),
    )
}

/// A stage's title (its key while the template is not here).
fn stage_title(template: Option<&SetupTemplate>, key: &str) -> String {
    template
        .and_then(|t| t.stage(key))
        .map_or_else(|| key.to_owned(), |(_, s)| format!("{} ({key})", s.title))
}

/// The step forms that fit where the setup stands (the setups worker still decides).
fn steps(text: &Text, csrf: &str, s: &SetupRow, template: Option<&SetupTemplate>) -> Markup {
    let action = format!("/admin/setups/{}/steps", s.setup_id);
    let current: Option<&SetupStage> = template.and_then(|t| t.stage(&s.stage).map(|(_, st)| st));
    let earlier: Vec<&SetupStage> = template
        .map(|t| {
            t.stages
                .iter()
                .take(usize::try_from(s.stage_index).unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    let hidden = |step: &str| {
        html! {
            (csrf_field(csrf))
            input type="hidden" name="key" value=(Uuid::now_v7());
            input type="hidden" name="seen" value=(s.sequence);
            input type="hidden" name="action" value=(step);
        }
    };
    let status = s.status.as_str();
    html! {
        @if matches!(status, "pending_intake" | "awaiting_client") {
            p.muted { (text.waits_for_client) }
        }
        @if matches!(status, "intake_review" | "in_progress") {
            form.step method="post" action=(action) {
                (hidden("advance"))
                div.field { label for="advance-note" { (text.note) } input #advance-note type="text" name="note" maxlength="2000"; }
                button #step-advance type="submit" { (text.advance) }
            }
        }
        @if status == "qa" {
            @if let Some(stage) = current.filter(|c| c.kind == StageKind::Qa) {
                form.step method="post" action=(action) {
                    (hidden("record_qa"))
                    fieldset { legend { (text.record_qa) }
                        @for (i, item) in stage.checklist.iter().enumerate() {
                            input type="hidden" name=(format!("item-{i}")) value=(item);
                            label.check for=(format!("qa-{i}")) {
                                input #(format!("qa-{i}")) type="checkbox" name=(format!("passed-{i}")) value="yes";
                                span { (item) " — " (text.qa_passed) }
                            }
                        }
                    }
                    button #step-record-qa type="submit" { (text.record_qa) }
                }
            }
        }
        @if !earlier.is_empty() && matches!(status, "intake_review" | "in_progress" | "qa") {
            form.step method="post" action=(action) {
                (hidden("return"))
                div.field {
                    label for="to-stage" { (text.send_back_to) }
                    select #to-stage name="to_stage" {
                        @for st in &earlier { option value=(st.key) { (st.title) } }
                    }
                }
                div.field { label for="return-note" { (text.reason) } input #return-note type="text" name="note" required maxlength="2000"; }
                button.secondary #step-return type="submit" { (text.send_back) }
            }
        }
        @if !matches!(status, "on_hold" | "completed" | "cancelled") {
            form.step method="post" action=(action) {
                (hidden("hold"))
                div.field { label for="hold-note" { (text.reason) } input #hold-note type="text" name="note" required maxlength="2000"; }
                button.secondary #step-hold type="submit" { (text.hold) }
            }
        }
        @if status == "on_hold" {
            form.step method="post" action=(action) {
                (hidden("release"))
                button #step-release type="submit" { (text.release_setup) }
            }
        }
    }
}

/// `POST /admin/setups/{id}/steps`: with the form token, the JSON API's step (permission,
/// scope and body checked there, audited there) with `If-Match` on the sequence the page
/// showed; then the command's page.
pub(crate) async fn step(
    State(api): State<Arc<Api>>,
    signed: Signed,
    client: Client,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(form) = checked_form(&signed, &body) else {
        return csrf_refusal(signed.lang);
    };
    let action = form.text("action").unwrap_or_default();
    let mut json = serde_json::json!({ "action": action });
    if let Some(note) = form.text("note") {
        json["note"] = note.into();
    }
    if let Some(to) = form.text("to_stage") {
        json["to_stage"] = to.into();
    }
    if action == "record_qa" {
        let results: Vec<serde_json::Value> = (0..)
            .map_while(|i| {
                form.get(&format!("item-{i}")).map(|item| {
                    serde_json::json!({
                        "item": item,
                        "passed": form.ticked(&format!("passed-{i}")),
                    })
                })
            })
            .collect();
        json["results"] = results.into();
    }
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("idempotency-key", form.text("key").map(str::to_owned)),
        (
            "if-match",
            form.text("seen").map(|seen| format!("\"{seen}\"")),
        ),
    ] {
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(name, value);
        }
    }
    send_with::<SetupStepBody>(
        &api,
        &signed,
        &client,
        &id,
        &headers,
        &json.to_string(),
        &format!("/admin/setups/{id}"),
    )
    .await
}
