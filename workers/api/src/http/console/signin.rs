//! Signing in and out, and the language switch.
//!
//! Sign-in has no session yet, so its form is protected the double-submit way: the page
//! sets a random value in a short-lived cookie and the same value in a hidden field, and
//! the POST must carry both, equal (a form posted from another site cannot read or set the
//! cookie). A wrong e-mail and a wrong password get the same answer, and take as long
//! (an unknown e-mail is checked against a decoy hash). Failed attempts count against the
//! client's address like a wrong API token; sign-ins and refusals of a known staff member
//! are in the audit log (`console.sign_in`).

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{FromRequestParts, RawQuery, State},
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use maud::html;
use rand::RngCore;
use tracing::{error, info};

use super::super::actions::Client;
use super::super::auth::{not_barred, peer, unauthenticated};
use super::super::{Api, orders::pairs};
use super::text::Lang;
use super::{
    ConsoleConfig, Form, SESSION_COOKIE, Signed, checked_form, cookie, csrf_refusal, lang_cookie,
    layout, page_response, set_cookie, unavailable,
};
use crate::domain::session::{self, DECOY_PHC};
use crate::store::commands::{self as commands, AuditEntry, By};
use crate::store::sessions;

/// The sign-in form's double-submit cookie.
const SIGN_IN_COOKIE: &str = "orderly_console_sign_in";

/// The client's address, for the rate limit of failed sign-ins.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(peer(parts)))
    }
}

/// `GET /admin/sign-in?next=…`.
pub(crate) async fn form(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let lang = Lang::of(&headers);
    let next = pairs(raw)
        .into_iter()
        .find(|(n, _)| n == "next")
        .map(|(_, v)| v);
    sign_in_page(&api.console, lang, next.as_deref(), None, StatusCode::OK)
}

/// The sign-in page, with a fresh double-submit value, and `error` when the last attempt
/// failed.
fn sign_in_page(
    config: &ConsoleConfig,
    lang: Lang,
    next: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let text = lang.text();
    let mut random = [0u8; 32];
    rand::rng().fill_bytes(&mut random);
    let token = hex::encode(random);
    let next = session::after_sign_in(next);
    let here = format!(
        "/admin/sign-in?next={}",
        url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
    );
    let markup = layout::bare(
        lang,
        text.sign_in,
        &here,
        html! {
            div.signin {
                section.card {
                    h1 { (text.sign_in) }
                    @if let Some(error) = error {
                        (layout::notice("error", html! { p { (error) } }))
                    }
                    form method="post" action="/admin/sign-in" {
                        input type="hidden" name="sign_in" value=(token);
                        input type="hidden" name="next" value=(next);
                        label for="email" { (text.email) }
                        input #email type="email" name="email" autocomplete="username" required autofocus;
                        label for="password" { (text.password) }
                        input #password type="password" name="password" autocomplete="current-password" required;
                        button type="submit" { (text.sign_in) }
                    }
                }
            }
        },
    );
    let mut response = page_response(status, markup);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(config, SIGN_IN_COOKIE, &token, Some(3600)),
    );
    response
}

/// `POST /admin/sign-in`: e-mail and password; a session and its cookie, or the form again
/// (401) saying the two do not match.
pub(crate) async fn sign_in(
    State(api): State<Arc<Api>>,
    Peer(peer): Peer,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = Lang::of(&headers);
    if let Err(problem) = not_barred(&api, peer) {
        return super::refusal(lang, problem);
    }
    let form = Form::parse(&body);
    let next = form.get("next").map(str::to_owned);
    let double_submitted = matches!(
        (form.get("sign_in"), cookie(&headers, SIGN_IN_COOKIE)),
        (Some(field), Some(cookie)) if session::csrf_matches(field, &cookie)
    );
    if !double_submitted {
        info!("console: sign-in form refused, no matching form token");
        return csrf_refusal(lang);
    }
    let email = form.text("email").unwrap_or_default().to_owned();
    let password = form.get("password").unwrap_or_default().to_owned();
    let found = match sessions::credentials(&api.pool, &email).await {
        Ok(found) => found,
        Err(e) => {
            error!(error = %e, "console sign-in failed: database");
            return unavailable(lang);
        }
    };
    let phc = found
        .as_ref()
        .and_then(|c| c.password_hash.clone())
        .unwrap_or_else(|| DECOY_PHC.to_owned());
    let verified = tokio::task::spawn_blocking(move || session::verify_password(&password, &phc))
        .await
        .unwrap_or(false);
    let refuse = |api: &Api| {
        if let Err(problem) = unauthenticated(api, peer) {
            return super::refusal(lang, problem);
        }
        sign_in_page(
            &api.console,
            lang,
            next.as_deref(),
            Some(lang.text().wrong_credentials),
            StatusCode::UNAUTHORIZED,
        )
    };
    let Some(staff) = found.filter(|c| verified && c.password_hash.is_some()) else {
        info!(email = %email.chars().take(254).collect::<String>(), "console: sign-in refused");
        if let Ok(Some(known)) = sessions::credentials(&api.pool, &email).await {
            audit(
                &api,
                &client,
                known.staff_id,
                uuid::Uuid::nil(),
                &known.email,
                401,
                "refused",
                Some("wrong password, or none set"),
            )
            .await;
        }
        return refuse(&api);
    };
    let opened = match sessions::open(&api.pool, staff.staff_id, api.console.lifetimes).await {
        Ok(opened) => opened,
        Err(e) => {
            error!(error = %e, "console session not opened: database");
            return unavailable(lang);
        }
    };
    audit(
        &api,
        &client,
        staff.staff_id,
        opened.session_id,
        &staff.email,
        303,
        "accepted",
        None,
    )
    .await;
    info!(staff = %staff.email, session = %opened.session_id, "console: signed in");
    let mut response = Redirect::to(&session::after_sign_in(next.as_deref())).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(
            &api.console,
            SESSION_COOKIE,
            &opened.secret,
            Some(api.console.lifetimes.absolute.num_seconds()),
        ),
    );
    headers.append(
        header::SET_COOKIE,
        set_cookie(&api.console, SIGN_IN_COOKIE, "", Some(0)),
    );
    response
}

/// An entry of the audit log for a sign-in (the session's id where a token's goes; the nil
/// id for a refused one, which opened no session).
#[allow(clippy::too_many_arguments)]
async fn audit(
    api: &Api,
    client: &Client,
    staff_id: uuid::Uuid,
    session_id: uuid::Uuid,
    email: &str,
    status: u16,
    outcome: &'static str,
    detail: Option<&str>,
) {
    let entry = AuditEntry {
        by: By::Staff {
            staff_id,
            token_id: session_id,
            email,
        },
        action: "console.sign_in",
        order_id: None,
        store_id: None,
        target: None,
        command_id: None,
        client_addr: client.addr().map(str::to_owned),
        forwarded_for: client.forwarded_for().map(str::to_owned),
        http_status: status,
        outcome,
        detail: detail.map(str::to_owned),
    };
    let written = match api.pool.acquire().await {
        Ok(mut conn) => commands::audit(&mut conn, &entry).await,
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        error!(error = %e, "console sign-in not audited");
    }
}

/// `POST /admin/sign-out`: ends the session (with its form token, like every POST).
pub(crate) async fn sign_out(State(api): State<Arc<Api>>, signed: Signed, body: Bytes) -> Response {
    if checked_form(&signed, &body).is_none() {
        return csrf_refusal(signed.lang);
    }
    if let Err(e) = sessions::end(&api.pool, signed.caller.0.token_id).await {
        error!(error = %e, "console session not ended: database");
        return unavailable(signed.lang);
    }
    info!(staff = %signed.caller.0.email, "console: signed out");
    let mut response = Redirect::to("/admin/sign-in").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&api.console, SESSION_COOKIE, "", Some(0)),
    );
    response
}

/// `GET /admin/language?to=de&back=/admin/orders`: keeps the language in a cookie and goes
/// back to the page (only one of the console's own).
pub(crate) async fn language(State(api): State<Arc<Api>>, RawQuery(raw): RawQuery) -> Response {
    let pairs = pairs(raw);
    let value = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let lang = value("to").and_then(Lang::named).unwrap_or(Lang::En);
    let back = value("back")
        .and_then(session::local_path)
        .unwrap_or("/admin/orders");
    let mut response = Redirect::to(back).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, lang_cookie(&api.console, lang));
    response
}
