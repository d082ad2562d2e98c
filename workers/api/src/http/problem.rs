//! The API's one error type: an `application/problem+json` answer (RFC 9457) with `type`,
//! `title`, `status`, `detail`, and `field` when a parameter is to blame.

use std::time::Duration;

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use schemars::JsonSchema;
use serde::Serialize;

use crate::domain::rate;

/// A refusal, as the caller sees it.
#[derive(Debug)]
pub(crate) struct Problem {
    status: StatusCode,
    kind: &'static str,
    title: &'static str,
    detail: String,
    field: Option<String>,
    /// Sent as `WWW-Authenticate` (401s).
    challenge: bool,
    /// Sent as `Retry-After`, in seconds (429s; a 503 always says 5).
    retry_after: Option<u64>,
}

impl Problem {
    pub(crate) fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind,
            title,
            detail: detail.into(),
            field: None,
            challenge: false,
            retry_after: None,
        }
    }

    /// A 400 naming `field`.
    pub(crate) fn bad_parameter(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let field = field.into();
        let mut problem = Self::new(
            StatusCode::BAD_REQUEST,
            "bad-parameter",
            "Bad parameter",
            format!("{field}: {}", reason.into()),
        );
        problem.field = Some(field);
        problem
    }

    /// The kind of problem, in words.
    pub(crate) fn title(&self) -> &'static str {
        self.title
    }

    /// Its HTTP status.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// What it says.
    pub(crate) fn detail(&self) -> &str {
        &self.detail
    }

    /// A 400 for a request body, naming the body's field at fault (`lines[0].quantity`, or
    /// `body` when it is not a JSON object).
    pub(crate) fn bad_body(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let field = field.into();
        let mut problem = Self::new(
            StatusCode::BAD_REQUEST,
            "bad-body",
            "Bad request body",
            format!("{field}: {}", reason.into()),
        );
        problem.field = Some(field);
        problem
    }

    /// A 401: no token, or one that does not authenticate (which, is not said).
    pub(crate) fn unauthenticated(detail: &str) -> Self {
        let mut problem = Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Not authenticated",
            detail,
        );
        problem.challenge = true;
        problem
    }

    /// A 429: over the rate limit; try again after `wait` (whole seconds, at least 1).
    pub(crate) fn too_many_requests(wait: Duration) -> Self {
        let seconds = rate::retry_after_secs(wait);
        let mut problem = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-requests",
            "Too many requests",
            format!("over the rate limit: try again in {seconds} s"),
        );
        problem.retry_after = Some(seconds);
        problem
    }

    /// A 503 for a failure that is ours, logged by the caller with its cause.
    pub(crate) fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Try again later",
            "the request could not be answered now",
        )
    }
}

/// A problem as the caller receives it (RFC 9457 problem details).
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Problem")]
pub(crate) struct ProblemDetails {
    /// What kind of problem: `urn:orderly:api:<kind>` (`bad-parameter`, `bad-body`,
    /// `unauthenticated`, `forbidden`, `order-not-found`, `precondition-failed`,
    /// `too-many-requests`, `unavailable`, ...).
    #[serde(rename = "type")]
    kind: String,
    /// The kind, in words.
    title: String,
    /// The HTTP status, repeated.
    status: u16,
    /// This occurrence, in words.
    detail: String,
    /// The parameter, header or body field at fault (`limit`, `If-Match`,
    /// `lines[0].quantity`), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = ProblemDetails {
            kind: format!("urn:orderly:api:{}", self.kind),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
            field: self.field,
        };
        let mut response = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            )],
            serde_json::to_string(&body).unwrap_or_default(),
        )
            .into_response();
        if self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"orderly\""),
            );
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
