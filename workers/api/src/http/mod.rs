//! The admin API over HTTP (axum), laid out by resource: [`orders`] holds the order list and
//! detail; [`documents`] an order's PDFs; [`customer`] the storefront customers' own orders; [`auth`] turns a bearer token into a [`auth::Caller`] (401) and checks a
//! permission (403); [`problem`] is the one error type, answered as
//! `application/problem+json` (RFC 9457) naming the parameter at fault. Internal errors are
//! logged with their cause and answered 503 without detail: bad input is never a 5xx.

mod auth;
mod customer;
mod documents;
mod orders;
mod problem;

use std::sync::Arc;

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use sqlx::PgPool;

pub(crate) use problem::Problem;

/// What every request handler shares.
#[derive(Debug)]
pub(crate) struct Api {
    pub(crate) pool: PgPool,
    /// Where invoice and credit-note PDFs are (`[documents]`).
    pub(crate) documents: Arc<dyn object_store::ObjectStore>,
}

/// The routes, with the body limit and problem+json for unknown paths and methods.
pub(crate) fn router(api: Arc<Api>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/api/v1/admin/orders", get(orders::list))
        .route("/api/v1/admin/orders/{id}", get(orders::detail))
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
                "the order endpoints of this version are read-only (GET)",
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
