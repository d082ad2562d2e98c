//! The admin console: server-rendered pages under `/admin` for the staff who work in a
//! browser rather than with `curl` (the order list, an order, the exceptions queue), served
//! by the api worker's own router beside the JSON API.
//!
//! Why it is built this way (docs/console.md, decision 0013):
//! - **the API's code, not a second one**: a page reads with the functions the JSON
//!   endpoints read with (the list's filter parser and statement, an order's detail and saga
//!   position, the exceptions queue), and an action is the JSON action's own path
//!   (`super::actions::submit`), so its command, outgoing message and audit entry are the
//!   same as the API's. Permissions and store scope are the API's [`Caller`]: a session
//!   stands for a token, with the session's id where the token's id goes.
//! - **pages that work without script**: plain links and forms; a command's outcome page
//!   refreshes itself with `<meta http-equiv=refresh>` until the worker answers.
//! - **templates compiled in** (maud: escaping by default, checked by the compiler), one
//!   stylesheet compiled in, no CDN and no build step.
//! - **sessions**: sign-in with the staff member's password (Argon2id, set by `orderly staff
//!   password`); the session cookie is `HttpOnly`, `SameSite=Strict`, `Path=/admin` and
//!   `Secure` unless `[api] console_insecure_http` says the console is served over plain
//!   HTTP (development and tests on loopback). Every POST carries the session's form token
//!   (a hidden field) and is refused 403 without it. Sessions end when idle and at an
//!   absolute end (`domain::session`).
//! - **not in the OpenAPI document**: these are pages, not the API; `super::endpoints`
//!   stays the list of API endpoints, and this router is merged beside it.

mod analytics;
mod bulk;
mod exceptions;
mod layout;

pub(crate) use layout::STYLESHEET;
mod operations;
mod orders;
mod setups;
mod signin;
mod text;
mod views;

use std::sync::Arc;

use axum::{
    Router,
    body::Bytes,
    extract::FromRequestParts,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use chrono::Utc;
use maud::{Markup, html};
use tracing::{error, info};

use super::auth::{Caller, counted, not_barred, peer};
use super::{Api, Problem};
use crate::domain::rate::Bearer;
use crate::domain::session::{self, Lifetimes, Standing};
use crate::store::sessions;
use text::{LANG_COOKIE, Lang};

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "orderly_console";

/// How the console's sessions and cookies are made (from `[api]`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConsoleConfig {
    pub(crate) lifetimes: Lifetimes,
    /// Whether cookies are marked `Secure` (false only when the console is served over
    /// plain HTTP, for development and tests).
    pub(crate) secure_cookies: bool,
}

/// The console's routes (merged into the API's router; none of them is in the OpenAPI
/// document).
pub(crate) fn router() -> Router<Arc<Api>> {
    Router::new()
        .route("/admin", get(|| async { Redirect::to("/admin/orders") }))
        .route("/admin/", get(|| async { Redirect::to("/admin/orders") }))
        .route(layout::STYLESHEET, get(stylesheet))
        .route("/admin/language", get(signin::language))
        .route("/admin/sign-in", get(signin::form).post(signin::sign_in))
        .route("/admin/sign-out", post(signin::sign_out))
        .route("/admin/orders", get(orders::list))
        .route("/admin/orders/export", get(orders::export))
        .route("/admin/orders/bulk", get(bulk::form).post(bulk::start))
        .route("/admin/jobs/{id}", get(bulk::job))
        .route("/admin/orders/{id}", get(orders::detail))
        .route(
            "/admin/orders/{id}/cancel",
            get(orders::confirm_cancel).post(orders::cancel),
        )
        .route("/admin/orders/{id}/{action}", post(orders::edit))
        .route(
            "/admin/orders/{id}/documents/{document_id}",
            get(orders::document),
        )
        .route("/admin/commands/{id}", get(orders::command))
        .route("/admin/exceptions", get(exceptions::list))
        .route("/admin/setups", get(setups::list))
        .route("/admin/setups/{id}", get(setups::detail))
        .route("/admin/setups/{id}/steps", post(setups::step))
        .route("/admin/analytics", get(analytics::page))
        .route("/admin/operations", get(operations::page))
        .route("/admin/operations/{queue}/{action}", post(operations::act))
        .route("/admin/views", post(views::save))
        .route("/admin/views/{id}/delete", post(views::delete))
        .route("/admin/exceptions/{id}/resolve", post(exceptions::resolve))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400, immutable"),
        ],
        layout::CSS,
    )
        .into_response()
}

/// A signed-in staff member: their session's holder as the API's [`Caller`], the
/// session's form token, and their language. Without a live session, a page answers with
/// a redirect to the sign-in page (coming back here after it).
#[derive(Debug, Clone)]
pub(crate) struct Signed {
    pub(crate) caller: Caller,
    pub(crate) csrf: String,
    pub(crate) lang: Lang,
}

impl FromRequestParts<Arc<Api>> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Self, Response> {
        let lang = Lang::of(&parts.headers);
        not_barred(api, peer(parts)).map_err(|p| refusal(lang, p))?;
        let to_sign_in = || {
            let here = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/admin/orders");
            let next = if parts.method == Method::GET {
                here
            } else {
                "/admin/orders"
            };
            Redirect::to(&format!(
                "/admin/sign-in?next={}",
                url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            ))
            .into_response()
        };
        let Some(secret) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_sign_in());
        };
        let found = sessions::find(&api.pool, &secret).await.map_err(|e| {
            error!(error = %e, "console session look-up failed: database");
            unavailable(lang)
        })?;
        let Some(found) = found else {
            info!("console: unknown session cookie");
            return Err(to_sign_in());
        };
        let standing = session::standing(found.times, api.console.lifetimes.idle, Utc::now());
        if standing != Standing::Alive || !found.holder_active {
            info!(staff = %found.principal.email, ?standing, active = found.holder_active, "console: session refused");
            return Err(to_sign_in());
        }
        counted(api, &Bearer::Staff(found.principal.token_id)).map_err(|p| refusal(lang, p))?;
        if let Err(e) = sessions::touch(&api.pool, found.principal.token_id).await {
            error!(error = %e, "console session not touched: database");
        }
        tracing::Span::current().record("staff", found.principal.email.as_str());
        Ok(Self {
            caller: Caller(found.principal),
            csrf: found.csrf_token,
            lang,
        })
    }
}

/// The value of cookie `name`, if the request has it.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value for the console: `HttpOnly`, `SameSite=Strict`, `Path=/admin`,
/// `Secure` unless the console is served over plain HTTP; `max_age` in seconds (0 deletes
/// it; `None`: until the browser closes).
pub(crate) fn set_cookie(
    config: &ConsoleConfig,
    name: &str,
    value: &str,
    max_age: Option<i64>,
) -> HeaderValue {
    let mut text = format!("{name}={value}; HttpOnly; SameSite=Strict; Path=/admin");
    if let Some(seconds) = max_age {
        text.push_str(&format!("; Max-Age={seconds}"));
    }
    if config.secure_cookies {
        text.push_str("; Secure");
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// A POSTed form's fields, decoded.
#[derive(Debug, Clone, Default)]
pub(crate) struct Form(pub(crate) Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of field `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The field's value, trimmed, or `None` when absent or blank.
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }

    /// Whether a checkbox `name` was ticked.
    pub(crate) fn ticked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// The form of a POST by `signed`, if it carries their session's form token; else `None`
/// (answer [`csrf_refusal`]: nothing is done).
pub(crate) fn checked_form(signed: &Signed, body: &Bytes) -> Option<Form> {
    let form = Form::parse(body);
    let valid = form
        .get("csrf")
        .is_some_and(|given| session::csrf_matches(given, &signed.csrf));
    if !valid {
        info!(staff = %signed.caller.0.email, "console: form refused, no valid form token");
    }
    valid.then_some(form)
}

/// The 403 page of a form without a valid token.
pub(crate) fn csrf_refusal(lang: Lang) -> Response {
    let text = lang.text();
    page_response(
        StatusCode::FORBIDDEN,
        layout::bare(
            lang,
            text.refused_form,
            "/admin/orders",
            html! {
                h1 { (text.refused_form) }
                (layout::notice("error", html! {
                    p { (text.refused_form_detail) }
                    p { (text.reload_and_retry) }
                }))
                p { a href="/admin/orders" { (text.orders) } }
            },
        ),
    )
}

/// The address of a list page with the query string it was asked with (to come back to).
pub(crate) fn here(path: &str, query: Option<&str>) -> String {
    match query {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_owned(),
    }
}

/// A list page (orders, exceptions, setups): 400 when its filters were refused (`refused`,
/// the page says which), 200 otherwise.
pub(crate) fn list_response(
    signed: &Signed,
    section: layout::Section,
    title: &str,
    here: &str,
    refused: bool,
    body: Markup,
) -> Response {
    let status = if refused {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    page_response(
        status,
        layout::page(signed, Some(section), title, None, here, body),
    )
}

/// An HTML page with `status`, never cached (it shows one staff member's view).
pub(crate) fn page_response(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        markup.into_string(),
    )
        .into_response()
}

/// A page saying what the API's `problem` says, with its status (the same refusal the
/// JSON API gives, in a page).
pub(crate) fn problem_page(signed: &Signed, problem: &Problem, back: &str) -> Response {
    let text = signed.lang.text();
    page_response(
        problem.status(),
        layout::page(
            signed,
            None,
            problem.title(),
            None,
            back,
            html! {
                h1 { (problem.title()) }
                (layout::notice("error", html! { p { (problem.detail()) } }))
                p { a href=(back) { "← " (text.back) } }
            },
        ),
    )
}

/// A refusal before the session is known (an address over its rate limit).
fn refusal(lang: Lang, problem: Problem) -> Response {
    page_response(
        problem.status(),
        layout::bare(
            lang,
            problem.title(),
            "/admin/orders",
            html! {
                h1 { (problem.title()) }
                (layout::notice("error", html! { p { (problem.detail()) } }))
            },
        ),
    )
}

/// The page of a database failure (logged by the caller): 503, without detail.
pub(crate) fn unavailable(lang: Lang) -> Response {
    refusal(lang, Problem::unavailable())
}

/// The language switch's cookie (a year; not `HttpOnly`-sensitive, but set like the rest).
pub(crate) fn lang_cookie(config: &ConsoleConfig, lang: Lang) -> HeaderValue {
    set_cookie(config, LANG_COOKIE, lang.code(), Some(365 * 24 * 3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(secure_cookies: bool) -> ConsoleConfig {
        ConsoleConfig {
            lifetimes: Lifetimes {
                idle: chrono::Duration::minutes(30),
                absolute: chrono::Duration::hours(12),
            },
            secure_cookies,
        }
    }

    #[test]
    fn the_session_cookie_is_http_only_strict_on_admin_and_secure_unless_told() {
        let secure = set_cookie(&config(true), SESSION_COOKIE, "abc", Some(60));
        assert_eq!(
            secure,
            "orderly_console=abc; HttpOnly; SameSite=Strict; Path=/admin; Max-Age=60; Secure"
        );
        let plain = set_cookie(&config(false), SESSION_COOKIE, "abc", None);
        assert_eq!(
            plain,
            "orderly_console=abc; HttpOnly; SameSite=Strict; Path=/admin"
        );
    }

    #[test]
    fn a_cookie_is_found_among_others_and_a_form_is_decoded() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; orderly_console=s3cret; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("s3cret"));
        assert_eq!(cookie(&headers, "missing"), None);
        let form = Form::parse(b"csrf=x&reason=Kunde+hat+%C3%BCberlegt&confirm=yes&blank=+");
        assert_eq!(form.text("reason"), Some("Kunde hat überlegt"));
        assert!(form.ticked("confirm"));
        assert!(!form.ticked("other"));
        assert_eq!(form.text("blank"), None);
    }
}
