//! The admin API over HTTP (axum), laid out by resource: [`orders`] holds the order list and
//! detail; [`actions`] the staff actions (cancel, refund, hold, release, notes, resends,
//! exception resolutions) and the command resources they create; [`audit`] the audit log;
//! [`exceptions`] the order-exceptions queue; [`documents`] an order's PDFs; [`customer`] the
//! storefront customers' own orders; [`auth`] turns a bearer token into a [`auth::Caller`]
//! (401) and checks a
//! permission (403); [`problem`] is the one error type, answered as
//! `application/problem+json` (RFC 9457) naming the parameter at fault. Internal errors are
//! logged with their cause and answered 503 without detail: bad input is never a 5xx.

mod actions;
mod audit;
mod auth;
mod customer;
mod documents;
mod exceptions;
mod orders;
mod problem;

use std::sync::Arc;

use axum::http::HeaderValue;
use axum::{
    Router,
    extract::{DefaultBodyLimit, Request},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use orderly_runtime::outbox::Handoff;
use sqlx::PgPool;

pub(crate) use problem::Problem;

use crate::domain::command::Action;

/// What every request handler shares.
#[derive(Debug)]
pub(crate) struct Api {
    pub(crate) pool: PgPool,
    /// The relay of the api schema's outbox, to publish a command's message at once (the
    /// relay's sweep finds it otherwise).
    pub(crate) handoff: Option<Handoff>,
    /// Where invoice and credit-note PDFs are (`[documents]`).
    pub(crate) documents: Arc<dyn object_store::ObjectStore>,
}

/// The routes, with the body limit and problem+json for unknown paths and methods.
pub(crate) fn router(api: Arc<Api>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/api/v1/admin/orders", get(orders::list))
        .route("/api/v1/admin/orders/{id}", get(orders::detail))
        .route(
            "/api/v1/admin/orders/{id}/cancel",
            actions::route(Action::Cancel),
        )
        .route(
            "/api/v1/admin/orders/{id}/refund",
            actions::route(Action::Refund),
        )
        .route(
            "/api/v1/admin/orders/{id}/notes",
            actions::route(Action::Note),
        )
        .route(
            "/api/v1/admin/orders/{id}/hold",
            actions::route(Action::Hold),
        )
        .route(
            "/api/v1/admin/orders/{id}/release",
            actions::route(Action::Release),
        )
        .route(
            "/api/v1/admin/orders/{id}/notifications/resend",
            actions::route(Action::ResendNotification),
        )
        .route("/api/v1/admin/order-exceptions", get(exceptions::list))
        .route(
            "/api/v1/admin/order-exceptions/{id}",
            get(exceptions::detail),
        )
        .route(
            "/api/v1/admin/order-exceptions/{id}/resolve",
            actions::route(Action::ResolveException),
        )
        .route("/api/v1/admin/commands/{id}", get(actions::command))
        .route("/api/v1/admin/audit-log", get(audit::list))
        // Documents and the storefront customers' own orders.
        .route(
            "/api/v1/admin/orders/{id}/documents/{document_id}",
            get(documents::admin),
        )
        .route("/api/v1/store/customer-orders", get(customer::list))
        .route("/api/v1/store/customer-orders/{id}", get(customer::detail))
        .route(
            "/api/v1/store/customer-orders/{id}/documents/{document_id}",
            get(customer::document),
        )
        .fallback(|| async {
            Problem::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "No such endpoint",
                "see docs/api.md for the endpoints of this version",
            )
        })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                "see docs/api.md for the methods each endpoint takes",
            )
        })
        .layer(middleware::from_fn(move |req, next| {
            limit_body(req, next, max_body_bytes)
        }))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(api)
}

/// Refuses a request whose declared body is larger than the limit before reading it.
async fn limit_body(req: Request, next: Next, limit: usize) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Body too large",
            format!("a request body may have at most {limit} bytes"),
        )
        .into_response();
    }
    next.run(req).await
}

/// A JSON answer.
pub(crate) fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}
