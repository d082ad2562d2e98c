//! The client's onboarding form of a setup: a signed, expiring link
//! (`/setup-intake/{token}`, see [`crate::domain::intake_link`]) that staff make with
//! `POST /api/v1/admin/setups/{id}/intake-link` and send the client.
//!
//! `GET` renders the form from the intake stage of the template version the setup follows;
//! `POST` checks the values field by field with the same check the setups worker applies
//! (`orderly_contracts::messages::check_intake`): with errors the form comes back (422) with
//! each field's error and nothing is sent; without, `setup.action_requested`
//! (`submit_intake`, as the client) goes through the api's outbox and the setups worker
//! decides. A setup in intake review takes a correction, which says why. While the setup
//! waits for the client's approval, the same link shows the stage to approve and takes the
//! approval (bound to the setup as of its last change, which is what the client saw) or a
//! request for changes (which says what). A link changed or signed by a secret rotated out
//! is 403, an expired one 410, a setup with nothing for the client to do 409.
//! Pages for people, like the console: not endpoints of the OpenAPI document.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};
use chrono::Utc;
use maud::{DOCTYPE, Markup, html};
use orderly_contracts::messages::{
    FieldError, FieldKind, IntakeField, SetupAction, SetupActionRequested, SetupActor, SetupRole,
    SetupStage, StageKind, check_intake,
};
use orderly_contracts::{Envelope, Validate};
use orderly_runtime::outbox::{self, OutboxMessage};
use schemars::JsonSchema;
use serde::Serialize;
use tracing::{error, info};
use uuid::Uuid;

use super::actions::Client;
use super::auth::Caller;
use super::endpoint::Reply;
use super::{Api, Problem};
use crate::domain::access::Permission;
use crate::domain::intake_link::{self, Refused};
use crate::domain::invitation;
use crate::store::commands::{self as audit_store, AuditEntry, By};
use crate::store::secrets;
use crate::store::setups::{self as store, IntakeContext};

/// The form's own field for a correction's reason (not a template key: those are
/// `[a-z0-9_]`, this has a dash).
const REASON: &str = "correction-reason";

/// A link for the client's onboarding form.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct IntakeLink {
    /// The form's path on this API (`/setup-intake/{token}`); send the client this address.
    path: String,
    /// When it stops working.
    expires_at: chrono::DateTime<Utc>,
}

/// `POST /api/v1/admin/setups/{id}/intake-link`: a signed link for the setup's client,
/// valid 14 days, signed with the store's current secret. Audited as `setups.intake_link`.
pub(crate) async fn mint(
    State(api): State<Arc<Api>>,
    caller: Caller,
    client: Client,
    Path(id): Path<String>,
) -> Result<Reply<IntakeLink>, Problem> {
    let caller = caller.require(Permission::SetupsAdvance)?;
    let setup_id = super::setups::setup_id(&id)?;
    let found = store::intake_context(&api.pool, setup_id)
        .await
        .map_err(internal)?
        .filter(|s| caller.scope().sees(&s.store_id))
        .ok_or_else(|| super::setups::not_found(setup_id))?;
    let secret = secrets::valid(&api.pool, &found.store_id)
        .await
        .map_err(internal)?
        .into_iter()
        .next()
        .ok_or_else(|| {
            Problem::new(
                StatusCode::CONFLICT,
                "no-store-secret",
                "The store has no secret to sign the link with",
                format!("make one: orderly store-secret rotate {}", found.store_id),
            )
        })?;
    let expires_at = Utc::now() + chrono::Duration::days(invitation::LINK_DAYS);
    let token = intake_link::mint(setup_id, expires_at.timestamp(), &secret);
    let entry = AuditEntry {
        by: By::Staff {
            staff_id: caller.0.staff_id,
            token_id: caller.0.token_id,
            email: &caller.0.email,
        },
        action: "setups.intake_link",
        order_id: Some(found.order_id),
        store_id: Some(&found.store_id),
        target: Some(format!("setup {setup_id}")),
        command_id: None,
        client_addr: client.addr().map(str::to_owned),
        forwarded_for: client.forwarded_for().map(str::to_owned),
        http_status: 200,
        outcome: "accepted",
        detail: None,
    };
    let mut conn = api.pool.acquire().await.map_err(internal)?;
    audit_store::audit(&mut conn, &entry)
        .await
        .map_err(internal)?;
    Ok(Reply::new(IntakeLink {
        path: format!("/setup-intake/{token}"),
        expires_at,
    }))
}

/// A page and its status.
struct PageAnswer(StatusCode, Markup);

impl IntoResponse for PageAnswer {
    fn into_response(self) -> Response {
        (self.0, Html(self.1.into_string())).into_response()
    }
}

/// The setup a link names, checked; or the page saying why not.
async fn open(api: &Api, token: &str) -> Result<IntakeContext, PageAnswer> {
    let refused = |status: StatusCode, why: &str| PageAnswer(status, notice(why));
    let parsed = intake_link::parse(token)
        .map_err(|_| refused(StatusCode::NOT_FOUND, "This link is not one we made."))?;
    let unavailable = |e: sqlx::Error| {
        error!(error = %e, "intake page: database");
        refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "The form cannot be shown right now; please try again in a moment.",
        )
    };
    let Some(setup) = store::intake_context(&api.pool, parsed.setup_id)
        .await
        .map_err(unavailable)?
    else {
        return Err(refused(
            StatusCode::NOT_FOUND,
            "This link is not one we made.",
        ));
    };
    let secrets = secrets::valid(&api.pool, &setup.store_id)
        .await
        .map_err(unavailable)?;
    match intake_link::verify(&parsed, &secrets, Utc::now().timestamp()) {
        Ok(_) => Ok(setup),
        Err(Refused::Expired) => Err(refused(
            StatusCode::GONE,
            "This link has expired; ask us for a new one.",
        )),
        Err(Refused::BadSignature | Refused::Malformed) => Err(refused(
            StatusCode::FORBIDDEN,
            "This link is not valid (changed, or replaced by a newer one).",
        )),
    }
}

/// What the client can do on their link now.
enum ClientStep<'a> {
    /// Fill in the intake form (`correction`: again, saying why).
    Form {
        fields: &'a [IntakeField],
        correction: bool,
    },
    /// Approve the stage, or ask for changes.
    Approval { stage: &'a SetupStage },
}

/// What the client can do with the setup now; or the page saying why nothing.
fn step_of(setup: &IntakeContext) -> Result<ClientStep<'_>, PageAnswer> {
    let stage = setup.template.as_ref().and_then(|t| {
        usize::try_from(setup.stage_index)
            .ok()
            .and_then(|i| t.stages.get(i))
    });
    let not_now = || {
        PageAnswer(
            StatusCode::SERVICE_UNAVAILABLE,
            notice("The form cannot be shown right now; please try again in a moment."),
        )
    };
    match (setup.status.as_str(), stage) {
        ("pending_intake" | "intake_review", Some(stage)) if stage.kind == StageKind::Intake => {
            Ok(ClientStep::Form {
                fields: &stage.fields,
                correction: setup.status == "intake_review",
            })
        }
        ("awaiting_client", Some(stage)) if stage.kind == StageKind::ClientApproval => {
            Ok(ClientStep::Approval { stage })
        }
        ("pending_intake" | "intake_review" | "awaiting_client", _) => Err(not_now()),
        _ => Err(PageAnswer(
            StatusCode::CONFLICT,
            notice("There is nothing for you to do on this setup right now: it is with us."),
        )),
    }
}

/// `GET /setup-intake/{token}`: the form.
pub(crate) async fn show(State(api): State<Arc<Api>>, Path(token): Path<String>) -> Response {
    let setup = match open(&api, &token).await {
        Ok(setup) => setup,
        Err(page) => return page.into_response(),
    };
    match step_of(&setup) {
        Ok(ClientStep::Form { fields, correction }) => PageAnswer(
            StatusCode::OK,
            form(&setup, fields, correction, &BTreeMap::new(), &[]),
        )
        .into_response(),
        Ok(ClientStep::Approval { stage }) => {
            PageAnswer(StatusCode::OK, approval(stage, None)).into_response()
        }
        Err(page) => page.into_response(),
    }
}

/// `POST /setup-intake/{token}`: the submission, checked; sent only without errors.
pub(crate) async fn submit(
    State(api): State<Arc<Api>>,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let setup = match open(&api, &token).await {
        Ok(setup) => setup,
        Err(page) => return page.into_response(),
    };
    let (fields, correction) = match step_of(&setup) {
        Ok(ClientStep::Form { fields, correction }) => (fields, correction),
        Ok(ClientStep::Approval { stage }) => return decide(&api, &setup, stage, &body).await,
        Err(page) => return page.into_response(),
    };
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let mut reason = None;
    for (key, value) in url::form_urlencoded::parse(&body).into_owned() {
        if key == REASON {
            reason = Some(value.trim().to_owned()).filter(|r| !r.is_empty());
        } else if !value.trim().is_empty() {
            values.insert(key, value.trim().to_owned());
        }
    }
    let mut errors = check_intake(fields, &values);
    if correction && reason.is_none() {
        errors.push(FieldError {
            field: REASON.to_owned(),
            message: "Say what you corrected and why".to_owned(),
        });
    }
    if !errors.is_empty() {
        return PageAnswer(
            StatusCode::UNPROCESSABLE_ENTITY,
            form(&setup, fields, correction, &values, &errors),
        )
        .into_response();
    }
    let mut request = client_request(&setup, SetupAction::SubmitIntake);
    request.note = reason;
    request.values = values;
    sent(
        send(&api, request).await,
        "Thank you: your answers are with us. We will be in touch.",
    )
}

/// The client's decision at an approval stage: `decision=approve`, or `decision=changes`
/// with what to change (`changes`).
async fn decide(api: &Api, setup: &IntakeContext, stage: &SetupStage, body: &[u8]) -> Response {
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let changes = form
        .get("changes")
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    let request = match (form.get("decision").map(String::as_str), changes) {
        (Some("approve"), _) => {
            let mut r = client_request(setup, SetupAction::Approve);
            // What the client approved: the stage as the setup stood at its last change.
            r.approved = Some(format!(
                "stage `{}` as of setup change {}, approved through the client's link",
                stage.key, setup.sequence
            ));
            r
        }
        (Some("changes"), Some(what)) => {
            let mut r = client_request(setup, SetupAction::RequestChanges);
            r.note = Some(what.chars().take(2000).collect());
            r
        }
        (Some("changes"), None) => {
            return PageAnswer(
                StatusCode::UNPROCESSABLE_ENTITY,
                approval(stage, Some("Say what should change")),
            )
            .into_response();
        }
        _ => {
            return PageAnswer(
                StatusCode::UNPROCESSABLE_ENTITY,
                approval(stage, Some("Approve, or say what should change")),
            )
            .into_response();
        }
    };
    let approved = request.action == SetupAction::Approve;
    sent(
        send(api, request).await,
        if approved {
            "Thank you for your approval. We take it from here."
        } else {
            "Thank you: we will make the changes and ask you again."
        },
    )
}

/// A request from the setup's client (the order's customer).
fn client_request(setup: &IntakeContext, action: SetupAction) -> SetupActionRequested {
    SetupActionRequested {
        request_id: Uuid::now_v7(),
        setup_id: setup.setup_id,
        order_id: setup.order_id,
        action,
        requested_by: SetupActor {
            role: SetupRole::Client,
            id: setup
                .customer_id
                .clone()
                .unwrap_or_else(|| "client".to_owned()),
        },
        note: None,
        values: BTreeMap::new(),
        results: Vec::new(),
        to_stage: None,
        approved: None,
    }
}

/// The page after sending: `thanks`, or why it could not be sent.
fn sent(result: anyhow::Result<()>, thanks: &str) -> Response {
    match result {
        Ok(()) => PageAnswer(StatusCode::ACCEPTED, notice(thanks)).into_response(),
        Err(e) => {
            error!(error = %e, "client request not sent");
            PageAnswer(
                StatusCode::SERVICE_UNAVAILABLE,
                notice("Your answer could not be sent right now; please try again in a moment."),
            )
            .into_response()
        }
    }
}

/// Writes the request to the api's outbox and hands it to the relay.
async fn send(api: &Api, request: SetupActionRequested) -> anyhow::Result<()> {
    request.validate()?;
    let setup_id = request.setup_id;
    let envelope = Envelope::new(crate::NAME, request.order_id.to_string(), request);
    let mut tx = api.pool.begin().await?;
    let written = outbox::insert(&mut tx, &[OutboxMessage::from_envelope(&envelope)]).await?;
    tx.commit().await?;
    if let Some(handoff) = &api.handoff {
        handoff.hand(written);
    }
    info!(%setup_id, "intake submitted");
    Ok(())
}

fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) }
                link rel="stylesheet" href=(super::console::STYLESHEET);
            }
            body { main #main { (body) } }
        }
    }
}

fn notice(text: &str) -> Markup {
    page(
        "Onboarding form",
        html! { h1 { "Onboarding form" } p { (text) } },
    )
}

/// The approval page of `stage`, with `problem` when the last answer was incomplete.
fn approval(stage: &SetupStage, problem: Option<&str>) -> Markup {
    page(
        "Your approval",
        html! {
            h1 { (stage.title) }
            p { "We have finished this step. Please approve it, or tell us what should change." }
            @if let Some(problem) = problem { p.error role="alert" { (problem) } }
            form method="post" {
                input type="hidden" name="decision" value="approve";
                button type="submit" { "Approve" }
            }
            form method="post" {
                input type="hidden" name="decision" value="changes";
                p {
                    label for="changes" { "What should change?" }
                    br;
                    textarea id="changes" name="changes" required {}
                }
                button type="submit" { "Ask for changes" }
            }
        },
    )
}

fn input_type(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Email => "email",
        FieldKind::Url => "url",
        FieldKind::Number => "text",
        FieldKind::Date => "date",
        FieldKind::Text | FieldKind::LongText | FieldKind::Choice | FieldKind::Boolean => "text",
    }
}

/// The form, with `values` filled in and each field's error beside it.
fn form(
    setup: &IntakeContext,
    fields: &[IntakeField],
    correction: bool,
    values: &BTreeMap<String, String>,
    errors: &[FieldError],
) -> Markup {
    let error_of = |key: &str| errors.iter().find(|e| e.field == key).map(|e| &e.message);
    let value_of = |key: &str| values.get(key).map_or("", String::as_str);
    page(
        "Onboarding form",
        html! {
            h1 { "Onboarding form" }
            @if let Some(name) = &setup.customer_name { p { "For " (name) } }
            @if correction {
                p { "We have your answers. Change what needs changing and tell us why." }
            }
            @if !errors.is_empty() {
                p.error role="alert" { (errors.len()) " field(s) need attention; nothing was sent." }
            }
            form method="post" {
                @for f in fields {
                    @let id = format!("f-{}", f.key);
                    p {
                        label for=(id) { (f.label) @if f.required { " *" } }
                        br;
                        @match f.kind {
                            FieldKind::LongText => {
                                textarea id=(id) name=(f.key) required[f.required] { (value_of(&f.key)) }
                            }
                            FieldKind::Choice => {
                                select id=(id) name=(f.key) required[f.required] {
                                    option value="" { "—" }
                                    @for c in &f.choices {
                                        option value=(c) selected[value_of(&f.key) == c] { (c) }
                                    }
                                }
                            }
                            FieldKind::Boolean => {
                                select id=(id) name=(f.key) required[f.required] {
                                    option value="" { "—" }
                                    option value="true" selected[value_of(&f.key) == "true"] { "yes" }
                                    option value="false" selected[value_of(&f.key) == "false"] { "no" }
                                }
                            }
                            _ => {
                                input id=(id) name=(f.key) type=(input_type(f.kind))
                                    value=(value_of(&f.key)) required[f.required];
                            }
                        }
                        @if let Some(message) = error_of(&f.key) {
                            br; span.error data-field=(f.key) { (message) }
                        }
                    }
                }
                @if correction {
                    p {
                        label for="reason" { "What did you correct, and why? *" }
                        br;
                        textarea id="reason" name=(REASON) required {}
                        @if let Some(message) = error_of(REASON) {
                            br; span.error data-field=(REASON) { (message) }
                        }
                    }
                }
                button type="submit" { "Send" }
            }
        },
    )
}

fn internal(e: sqlx::Error) -> Problem {
    error!(error = %e, "intake link: database");
    Problem::unavailable()
}
