//! One declaration per endpoint: the route the router serves and what the OpenAPI document
//! says about it come from the same [`Endpoint`] value, so the two cannot disagree on a
//! path, a method, a request body or an answer.
//!
//! How much is read from the code rather than written beside it:
//! - the **answer** is the handler's return type: a handler returns
//!   `Result<A, Problem>` where `A` is an [`Answer`] (usually [`Reply<T>`], a JSON `T` with a
//!   fixed status; a document's PDF is `documents::Pdf`), and [`Endpoint::get`] reads `A`
//!   from the handler's signature ([`Answers`]), so the schema is the type the handler
//!   serialises, and the headers and `304` an answer type always has are documented from it;
//! - an **action's body** is the type parameter of [`Endpoint::action`] (staff) or
//!   [`Endpoint::customer_action`] (a storefront's customer), the same type its handler
//!   parses ([`crate::domain::command::ActionBody`]), and its permission is the action's;
//! - **query parameters** come from the parsers' own lists (`domain::filter::Param`,
//!   `domain::audit::Param`);
//! - the **refusals** (400, 401, 403, 412, 413, 422, 429, 503) follow from what the
//!   declaration says the endpoint takes (see `openapi`).
//!
//! What is written by hand: the operation's id, summary and description, the path
//! parameters' descriptions (a test checks they are exactly the path's), who may call a
//! read endpoint (a staff permission, checked in its handler, or a customer token, its
//! handler's extractor; a test calls every endpoint that needs a token without one and
//! expects 401), the headers a JSON answer carries, and what a 404 means.

use std::sync::Arc;

use axum::{
    handler::Handler,
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
    routing::MethodRouter,
};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;
use tracing::error;

use super::{Api, Problem};
use crate::domain::access::Permission;
use crate::domain::command::ActionBody;
use crate::domain::query::Parameter;

/// A JSON answer: `body` serialised with status `STATUS` (200 unless said), and headers.
#[derive(Debug)]
pub(crate) struct Reply<T, const STATUS: u16 = 200> {
    body: T,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// A `202 Accepted` JSON answer.
pub(crate) type Accepted<T> = Reply<T, 202>;

impl<T, const STATUS: u16> Reply<T, STATUS> {
    pub(crate) fn new(body: T) -> Self {
        Self {
            body,
            headers: Vec::new(),
        }
    }

    /// What it answers (the console renders it as a page).
    pub(crate) fn body(&self) -> &T {
        &self.body
    }

    /// The answer with `Location: path` (where what it created is).
    pub(crate) fn located(self, path: &str) -> Result<Self, Problem> {
        let value = HeaderValue::from_str(path).map_err(|_| Problem::unavailable())?;
        Ok(self.with_header(header::LOCATION, value))
    }

    /// The answer with `name: value` (an `ETag`, a `Location`).
    pub(crate) fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl<T: Serialize, const STATUS: u16> IntoResponse for Reply<T, STATUS> {
    fn into_response(self) -> Response {
        let body = match serde_json::to_vec(&self.body) {
            Ok(body) => body,
            Err(e) => {
                error!(error = %e, "answer not serialisable");
                return Problem::unavailable().into_response();
            }
        };
        let status = StatusCode::from_u16(STATUS).unwrap_or(StatusCode::OK);
        let mut response = (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        response.headers_mut().extend(self.headers);
        response
    }
}

/// What an answer's body is, for the document.
#[derive(Debug)]
pub(crate) enum Content {
    /// `application/json` with this schema.
    Json(Schema),
    /// Bytes of this media type (`application/pdf`).
    Binary(&'static str),
}

/// A successful answer, as the document describes it.
pub(crate) trait Answer: IntoResponse {
    /// Its HTTP status.
    const STATUS: u16;
    /// The headers every answer of this type carries (the endpoint may declare more).
    const HEADERS: &'static [AnswerHeader] = &[];
    /// Whether it answers `If-None-Match` naming its `ETag` with `304 Not Modified`.
    const CONDITIONAL: bool = false;
    /// Its body, with its schema generated from the type (serialising contract).
    fn content(generator: &mut SchemaGenerator) -> Content;
}

impl<T: Serialize + JsonSchema, const STATUS: u16> Answer for Reply<T, STATUS> {
    const STATUS: u16 = STATUS;

    fn content(generator: &mut SchemaGenerator) -> Content {
        Content::Json(generator.subschema_for::<T>())
    }
}

/// What a handler answers when it succeeds, read from its signature: `Args` are its
/// arguments (inferred, never written), [`Answers::Answer`] the `A` of its
/// `Result<A, Problem>`.
pub(crate) trait Answers<Args> {
    type Answer: Answer;
}

macro_rules! answers {
    ($($arg:ident),*) => {
        impl<F, Fut, A, $($arg,)*> Answers<($($arg,)*)> for F
        where
            F: FnOnce($($arg),*) -> Fut,
            Fut: Future<Output = Result<A, Problem>>,
            A: Answer,
        {
            type Answer = A;
        }
    };
}

answers!();
answers!(A1);
answers!(A1, A2);
answers!(A1, A2, A3);
answers!(A1, A2, A3, A4);
answers!(A1, A2, A3, A4, A5);
answers!(A1, A2, A3, A4, A5, A6);
answers!(A1, A2, A3, A4, A5, A6, A7);

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Anyone (rate-limited by address).
    Public,
    /// Staff with a bearer token whose role grants the permission.
    Staff(Permission),
    /// A storefront's customer with a customer token (`ocu_…`): their own orders only.
    Customer,
}

/// A request header an endpoint reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestHeader {
    IdempotencyKey,
    IfMatch,
    IfNoneMatch,
}

/// A header a successful answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AnswerHeader {
    /// An order's `ETag`: its status sequence.
    ETag,
    Location,
    /// A document's `ETag`: its PDF's SHA-256.
    DocumentETag,
    ContentLength,
    ContentDisposition,
    CacheControl,
}

impl AnswerHeader {
    /// The header's name, and the name of its description in `components.headers`.
    pub(crate) const fn names(self) -> (&'static str, &'static str) {
        match self {
            Self::ETag => ("ETag", "ETag"),
            Self::Location => ("Location", "Location"),
            Self::DocumentETag => ("ETag", "DocumentETag"),
            Self::ContentLength => ("Content-Length", "Content-Length"),
            Self::ContentDisposition => ("Content-Disposition", "Content-Disposition"),
            Self::CacheControl => ("Cache-Control", "Cache-Control"),
        }
    }
}

/// A successful answer as declared: read from the handler's [`Answer`] type.
#[derive(Debug)]
pub(crate) struct AnswerDoc {
    pub(crate) status: u16,
    pub(crate) content: fn(&mut SchemaGenerator) -> Content,
    pub(crate) headers: Vec<AnswerHeader>,
    /// It may be `304 Not Modified` (to `If-None-Match`).
    pub(crate) conditional: bool,
}

/// What the document says about an endpoint, beyond its path and method.
#[derive(Debug)]
pub(crate) struct Doc {
    pub(crate) operation_id: &'static str,
    pub(crate) tag: &'static str,
    pub(crate) summary: &'static str,
    pub(crate) description: &'static str,
    pub(crate) access: Access,
    /// The path's parameters (`{id}`), with what each is; all are UUIDs.
    pub(crate) path_params: Vec<(&'static str, &'static str)>,
    pub(crate) query: Vec<Parameter>,
    pub(crate) headers: Vec<RequestHeader>,
    /// The JSON body's schema (deserialising contract), for endpoints that take one.
    pub(crate) body: Option<fn(&mut SchemaGenerator) -> Schema>,
    pub(crate) answer: AnswerDoc,
    /// What a 404 means here, where one can happen.
    pub(crate) not_found: Option<&'static str>,
    /// Other refusals particular to the endpoint (a 409, a 422), with what each means.
    pub(crate) refusals: Vec<(u16, &'static str)>,
}

/// One endpoint: how it is served and how it is documented.
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub(crate) method: Method,
    pub(crate) path: &'static str,
    pub(crate) route: MethodRouter<Arc<Api>>,
    pub(crate) doc: Doc,
}

/// The answer's doc of `handler`, from its return type.
pub(super) fn answer_of<H: Answers<Args>, Args>(_: &H) -> AnswerDoc {
    AnswerDoc {
        status: H::Answer::STATUS,
        content: H::Answer::content,
        headers: H::Answer::HEADERS.to_vec(),
        conditional: H::Answer::CONDITIONAL,
    }
}

impl Endpoint {
    pub(super) fn new(
        method: Method,
        path: &'static str,
        route: MethodRouter<Arc<Api>>,
        answer: AnswerDoc,
    ) -> Self {
        let headers = if answer.conditional {
            vec![RequestHeader::IfNoneMatch]
        } else {
            Vec::new()
        };
        Self {
            method,
            path,
            route,
            doc: Doc {
                operation_id: "",
                tag: "",
                summary: "",
                description: "",
                access: Access::Public,
                path_params: Vec::new(),
                query: Vec::new(),
                headers,
                body: None,
                answer,
                not_found: None,
                refusals: Vec::new(),
            },
        }
    }

    /// `GET path`, served by `handler`; its answer is documented from its return type.
    pub(crate) fn get<H, T, Args>(path: &'static str, handler: H) -> Self
    where
        H: Handler<T, Arc<Api>> + Answers<Args>,
        T: 'static,
    {
        let answer = answer_of(&handler);
        Self::new(Method::GET, path, axum::routing::get(handler), answer)
    }

    /// `POST path`, served by `handler`, taking no body (its answer is documented from its
    /// return type; [`Endpoint::body`] declares a body).
    pub(crate) fn post<H, T, Args>(path: &'static str, handler: H) -> Self
    where
        H: Handler<T, Arc<Api>> + Answers<Args>,
        T: 'static,
    {
        let answer = answer_of(&handler);
        Self::new(Method::POST, path, axum::routing::post(handler), answer)
    }

    /// It takes a JSON body `B` (the type its handler parses).
    pub(crate) fn body<B: JsonSchema>(mut self) -> Self {
        self.doc.body = Some(SchemaGenerator::subschema_for::<B>);
        self
    }

    /// It reads `header`.
    pub(crate) fn header(mut self, header: RequestHeader) -> Self {
        self.doc.headers.push(header);
        self
    }

    /// What every action endpoint declares: who may, the headers, the body `B`, `Location`
    /// (the action endpoints themselves are declared beside their handler, in `actions`).
    pub(super) fn command<B: ActionBody>(mut self, access: Access) -> Self {
        self.doc.access = access;
        self.doc.headers = vec![RequestHeader::IdempotencyKey, RequestHeader::IfMatch];
        self.doc.body = Some(SchemaGenerator::subschema_for::<B>);
        self.doc.answer.headers.push(AnswerHeader::Location);
        self
    }

    /// Its operation id (unique), tag, one-line summary and description (Markdown).
    pub(crate) fn doc(
        mut self,
        operation_id: &'static str,
        tag: &'static str,
        summary: &'static str,
        description: &'static str,
    ) -> Self {
        self.doc.operation_id = operation_id;
        self.doc.tag = tag;
        self.doc.summary = summary;
        self.doc.description = description;
        self
    }

    /// Callable by staff whose role grants `permission` (the handler checks it).
    pub(crate) fn staff(mut self, permission: Permission) -> Self {
        self.doc.access = Access::Staff(permission);
        self
    }

    /// Callable by a storefront's customer with a customer token (the handler takes a
    /// `Customer`).
    pub(crate) fn customer(mut self) -> Self {
        self.doc.access = Access::Customer;
        self
    }

    /// What the path parameter `{name}` is.
    pub(crate) fn path_param(mut self, name: &'static str, description: &'static str) -> Self {
        self.doc.path_params.push((name, description));
        self
    }

    /// The query parameters its parser takes.
    pub(crate) fn query(mut self, parameters: impl IntoIterator<Item = Parameter>) -> Self {
        self.doc.query.extend(parameters);
        self
    }

    /// A header its successful answer carries.
    pub(crate) fn answer_header(mut self, header: AnswerHeader) -> Self {
        self.doc.answer.headers.push(header);
        self
    }

    /// What its 404 means.
    pub(crate) fn not_found(mut self, description: &'static str) -> Self {
        self.doc.not_found = Some(description);
        self
    }

    /// A refusal particular to it (`status`, what it means).
    pub(crate) fn refuses(mut self, status: u16, description: &'static str) -> Self {
        self.doc.refusals.push((status, description));
        self
    }
}
