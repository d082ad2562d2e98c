//! Saved views of the order list: a staff member names the filters the list shows and finds
//! them again above the list (`store::views`). A view's query string is checked by the
//! list's own parser when it is saved, so a saved view always opens.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use maud::{Markup, html};
use tracing::error;
use uuid::Uuid;

use super::super::Api;
use super::super::orders::pairs;
use super::layout::csrf_field;
use super::{Signed, checked_form, csrf_refusal, problem_page, unavailable};
use crate::domain::filter;
use crate::http::Problem;
use crate::store::views::{self as store, View};

/// The longest name of a view.
const NAME_CHARS: usize = 80;

/// The views above the list, and the form that saves the list's current filters (`query`,
/// without paging) as one.
pub(crate) fn bar(signed: &Signed, views: &[View], query: &str) -> Markup {
    let text = signed.lang.text();
    html! {
        section.saved-views aria-labelledby="saved-views" {
            h2 #saved-views { (text.saved_views) }
            @if views.is_empty() { p.muted { (text.no_saved_views) } } @else {
                ul.views { @for (i, v) in views.iter().enumerate() { li {
                    a id=(format!("view-{i}")) href=(format!("/admin/orders?{}", v.query)) { (v.name) }
                    form.inline method="post" action=(format!("/admin/views/{}/delete", v.view_id)) {
                        (csrf_field(&signed.csrf))
                        button.link id=(format!("delete-view-{i}")) type="submit"
                            aria-label=(format!("{} {}", text.delete, v.name)) { "×" }
                    }
                } } }
            }
            @if !query.is_empty() {
                form.inline method="post" action="/admin/views" {
                    (csrf_field(&signed.csrf))
                    input type="hidden" name="query" value=(query);
                    label for="view-name" { (text.save_view_as) }
                    input #view-name type="text" name="name" required maxlength=(NAME_CHARS);
                    button.secondary #save-view type="submit" { (text.save_view) }
                }
            }
        }
    }
}

/// `POST /admin/views`: saves the form's `query` as the view `name`, then shows it.
pub(crate) async fn save(State(api): State<Arc<Api>>, signed: Signed, body: Bytes) -> Response {
    let Some(form) = checked_form(&signed, &body) else {
        return csrf_refusal(signed.lang);
    };
    let back = "/admin/orders";
    let refuse = |field: &str, reason: String| {
        problem_page(&signed, &Problem::bad_parameter(field, reason), back)
    };
    let name = form.text("name").unwrap_or_default();
    if name.is_empty() || name.chars().count() > NAME_CHARS {
        return refuse(
            "name",
            format!("a view's name is 1 to {NAME_CHARS} characters"),
        );
    }
    let query = form.get("query").unwrap_or_default();
    let given = pairs(Some(query.to_owned()));
    if let Err(bad) = filter::parse(&given) {
        return refuse(&format!("query.{}", bad.field), bad.reason);
    }
    match store::save(&api.pool, signed.caller.0.staff_id, name, query).await {
        Ok(true) => Redirect::to(&format!("/admin/orders?{query}")).into_response(),
        Ok(false) => problem_page(
            &signed,
            &Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "too-many-views",
                "Too many saved views",
                format!("at most {} views each: delete one first", store::MOST),
            ),
            back,
        ),
        Err(e) => {
            error!(error = %e, "saving a view failed: database");
            unavailable(signed.lang)
        }
    }
}

/// `POST /admin/views/{id}/delete`: deletes one of the caller's views.
pub(crate) async fn delete(
    State(api): State<Arc<Api>>,
    signed: Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if checked_form(&signed, &body).is_none() {
        return csrf_refusal(signed.lang);
    }
    let Ok(view_id) = id.parse::<Uuid>() else {
        return problem_page(
            &signed,
            &Problem::bad_parameter("id", format!("`{id}` is not a view id")),
            "/admin/orders",
        );
    };
    match store::delete(&api.pool, signed.caller.0.staff_id, view_id).await {
        Ok(()) => Redirect::to("/admin/orders").into_response(),
        Err(e) => {
            error!(error = %e, "deleting a view failed: database");
            unavailable(signed.lang)
        }
    }
}
