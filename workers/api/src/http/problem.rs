//! The API's one error type: an `application/problem+json` answer (RFC 9457) with `type`,
//! `title`, `status`, `detail`, and `field` when a parameter is to blame.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

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

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": format!("urn:orderly:api:{}", self.kind),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Some(field) = self.field {
            body["field"] = field.into();
        }
        let mut response = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            )],
            body.to_string(),
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
        response
    }
}
