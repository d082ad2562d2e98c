//! Staff actions: `POST /api/v1/admin/orders/{id}/cancel|refund|notes|hold|release|
//! notifications/resend` and `POST /api/v1/admin/order-exceptions/{id}/resolve`, and the command resources they create
//! (`GET /api/v1/admin/commands/{id}`).
//!
//! An action is never carried out here: it becomes a request message to the worker that
//! owns the order (orders), written with the command and its audit entry in one
//! transaction, and the answer is `202 Accepted` with the command, which moves from
//! `pending` to `applied`, `partially_applied`, `refused` or `duplicate` when the worker's
//! `order.request_answered` arrives. In order, a request is checked for: a valid token
//! (401), the action's permission (403), the order in the caller's stores (404, like a
//! missing one), a well-formed body naming the field at fault (400), `If-Match` against the
//! order's ETag (412, nothing sent), and `Idempotency-Key` (the same key again answers with
//! the first command and sends nothing; the key reused for another request is 422).
//!
//! Every request that authenticated is in the audit log, whatever its answer.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{ConnectInfo, FromRequestParts, Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
};
use orderly_contracts::ContractError;
use schemars::JsonSchema;
use serde::Serialize;
use tracing::{error, info};
use uuid::Uuid;

use super::auth::Caller;
use super::endpoint::{Accepted, Reply};
use super::{Api, Problem};
use crate::domain::access::Permission;
use crate::domain::command::{self, Action, ActionBody, Target};
use crate::store::commands::{self as store, AuditEntry, Command, NewCommand};

/// Where a request came from: the peer's address and, as told (not trusted), the
/// `X-Forwarded-For` header of a proxy in front.
#[derive(Debug, Clone, Default)]
pub(crate) struct Client {
    addr: Option<String>,
    forwarded_for: Option<String>,
}

impl Client {
    /// The peer's address.
    pub(crate) fn addr(&self) -> Option<&str> {
        self.addr.as_deref()
    }

    /// `X-Forwarded-For`, as told.
    pub(crate) fn forwarded_for(&self) -> Option<&str> {
        self.forwarded_for.as_deref()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self {
            addr: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string()),
            forwarded_for: parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(200).collect()),
        })
    }
}

/// What the action is on, as the path names it.
#[derive(Debug, Clone, Copy)]
enum On<'a> {
    Order(&'a str),
    Exception(&'a str),
}

/// The handler of the action whose body is `B` (`POST` with a JSON body, on the order, or
/// to resolve one, the order item exception, the path names). [`super::endpoint::Endpoint::action`]
/// routes it and documents `B` as its body.
pub(crate) async fn act<B: ActionBody>(
    State(api): State<Arc<Api>>,
    caller: Caller,
    client: Client,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Accepted<CommandView>, Problem> {
    let action = B::ACTION;
    let on = match action {
        Action::ResolveException => On::Exception(&id),
        Action::Cancel
        | Action::Refund
        | Action::Note
        | Action::ResendNotification
        | Action::Hold
        | Action::Release => On::Order(&id),
    };
    let mut facts = Facts::default();
    let answer = decide::<B>(&api, &caller, &client, on, &headers, &body, &mut facts).await;
    let problem = match answer {
        Ok(accepted) => return Ok(accepted),
        Err(problem) => problem,
    };
    let status = problem.status();
    if status != StatusCode::SERVICE_UNAVAILABLE {
        let p = &caller.0;
        let entry = AuditEntry {
            staff_id: p.staff_id,
            staff_email: &p.email,
            token_id: p.token_id,
            action: action.audit_name(),
            order_id: facts.order_id,
            store_id: facts.store_id.as_deref(),
            target: facts.target,
            command_id: facts.command_id,
            client_addr: client.addr,
            forwarded_for: client.forwarded_for,
            http_status: status.as_u16(),
            outcome: if status == StatusCode::BAD_REQUEST {
                "invalid"
            } else {
                "refused"
            },
            detail: Some(problem.detail().to_owned()),
        };
        let written = match api.pool.acquire().await {
            Ok(mut conn) => store::audit(&mut conn, &entry).await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            error!(error = %e, staff = %p.email, action = action.audit_name(), "audit entry not written");
        }
    }
    info!(staff = %caller.0.email, action = action.audit_name(), status = status.as_u16(), "action refused");
    Err(problem)
}

/// `GET /api/v1/admin/commands/{id}`: a command and what became of it.
pub(crate) async fn command(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Reply<CommandView>, Problem> {
    let caller = caller.require(Permission::OrdersView)?;
    let not_found = || {
        Problem::new(
            StatusCode::NOT_FOUND,
            "command-not-found",
            "No such command",
            format!("no command {id} that this token may see"),
        )
    };
    let command_id: Uuid = id.parse().map_err(|_| {
        Problem::bad_parameter("id", format!("`{id}` is not a command id (a UUID)"))
    })?;
    let found = store::command(&api.pool, command_id)
        .await
        .map_err(internal)?
        .filter(|c| caller.scope().sees(&c.store_id))
        .ok_or_else(not_found)?;
    Ok(Reply::new(CommandView::of(found)))
}

/// The audit facts gathered while a request is checked.
#[derive(Debug, Default)]
struct Facts {
    order_id: Option<Uuid>,
    store_id: Option<String>,
    target: Option<String>,
    command_id: Option<Uuid>,
}

async fn decide<B: ActionBody>(
    api: &Api,
    caller: &Caller,
    client: &Client,
    on: On<'_>,
    headers: &HeaderMap,
    body: &[u8],
    facts: &mut Facts,
) -> Result<Accepted<CommandView>, Problem> {
    let action = B::ACTION;
    let target_text = match on {
        On::Order(id) | On::Exception(id) => id,
    };
    let parsed_id: Result<Uuid, _> = target_text.parse();
    match (on, &parsed_id) {
        (On::Order(_), Ok(id)) => facts.order_id = Some(*id),
        (On::Exception(_), Ok(id)) => facts.target = Some(format!("exception {id}")),
        (_, Err(_)) => facts.target = Some(target_text.chars().take(64).collect()),
    }
    let caller = caller.clone().require(action.permission())?;
    let id = parsed_id.map_err(|_| {
        let what = match on {
            On::Order(_) => "an order id",
            On::Exception(_) => "an order item exception id",
        };
        Problem::bad_parameter("id", format!("`{target_text}` is not {what} (a UUID)"))
    })?;
    let key = headers
        .get("idempotency-key")
        .map(|v| command::idempotency_key(v.as_bytes()))
        .transpose()
        .map_err(|why| Problem::bad_parameter("Idempotency-Key", why))?;
    let if_match = headers
        .get(header::IF_MATCH)
        .map(|v| {
            v.to_str()
                .map_err(|_| "is not text".to_owned())
                .and_then(command::if_match)
        })
        .transpose()
        .map_err(|why| Problem::bad_parameter("If-Match", why))?;
    let request = command::parse_body::<B>(body)
        .map_err(body_problem)?
        .into_request(id);
    let fingerprint = command::request_fingerprint(action, target_text, body);

    let mut tx = api.pool.begin().await.map_err(internal)?;
    if let Some(key) = &key
        && let Some(earlier) = store::by_key(&mut tx, caller.0.staff_id, key)
            .await
            .map_err(internal)?
    {
        facts.order_id = Some(earlier.order_id);
        facts.store_id = Some(earlier.store_id.clone());
        facts.command_id = Some(earlier.command_id);
        return replay(tx, &caller, client, action, &earlier, &fingerprint, facts).await;
    }
    let not_found = |what: String| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "No such order",
            format!("no {what} that this token may see"),
        )
    };
    let order_id = match on {
        On::Order(_) => id,
        On::Exception(_) => store::order_of_exception(&mut tx, id)
            .await
            .map_err(internal)?
            .ok_or_else(|| not_found(format!("order item exception {id}")))?,
    };
    facts.order_id = Some(order_id);
    let order = store::order_for_command(&mut tx, order_id)
        .await
        .map_err(internal)?
        .filter(|o| caller.scope().sees(&o.store_id))
        .ok_or_else(|| match on {
            On::Order(_) => not_found(format!("order {order_id}")),
            On::Exception(_) => not_found(format!("order item exception {id}")),
        })?;
    facts.store_id = Some(order.store_id.clone());
    if let Some(m) = &if_match
        && !m.matches(order.status_sequence)
    {
        return Err(Problem::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition-failed",
            "The order has moved on",
            format!(
                "the order's ETag is now \"{}\", not what If-Match names: reload it and decide again",
                order.status_sequence
            ),
        ));
    }
    let command_id = Uuid::now_v7();
    let target = Target {
        order_id,
        store_id: &order.store_id,
    };
    let by = command::operator(&caller.0.email, caller.0.staff_id);
    let message = command::message(&request, target, command_id, by).map_err(body_problem)?;
    let new = NewCommand {
        command_id,
        staff_id: caller.0.staff_id,
        token_id: caller.0.token_id,
        idempotency_key: key.as_deref(),
        request_sha256: &fingerprint,
        action: action.as_str(),
        order_id,
        store_id: &order.store_id,
        message: &message,
    };
    let Some(written) = store::insert(&mut tx, &new).await.map_err(internal)? else {
        // A concurrent request with the same key won: answer with its command.
        drop(tx);
        let mut tx = api.pool.begin().await.map_err(internal)?;
        let key = key.as_deref().unwrap_or_default();
        let earlier = store::by_key(&mut tx, caller.0.staff_id, key)
            .await
            .map_err(internal)?
            .ok_or_else(Problem::unavailable)?;
        facts.command_id = Some(earlier.command_id);
        return replay(tx, &caller, client, action, &earlier, &fingerprint, facts).await;
    };
    facts.command_id = Some(command_id);
    store::audit(
        &mut tx,
        &entry(&caller, client, action, facts, 202, "accepted", None),
    )
    .await
    .map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    if let Some(handoff) = &api.handoff {
        handoff.hand(written);
    }
    info!(staff = %caller.0.email, action = action.audit_name(), %order_id, %command_id, "command sent");
    let command = store::command(&api.pool, command_id)
        .await
        .map_err(internal)?
        .ok_or_else(Problem::unavailable)?;
    accepted(command)
}

/// The same key again: the first command, if the request is the same; else 422.
async fn replay(
    mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
    caller: &Caller,
    client: &Client,
    action: Action,
    earlier: &Command,
    fingerprint: &str,
    facts: &Facts,
) -> Result<Accepted<CommandView>, Problem> {
    if earlier.request_sha256 != fingerprint {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "Idempotency-Key already used",
            format!(
                "this Idempotency-Key was used for another request (command {}); use a new key for a new request",
                earlier.command_id
            ),
        ));
    }
    store::audit(
        &mut tx,
        &entry(caller, client, action, facts, 202, "replayed", None),
    )
    .await
    .map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    accepted(earlier.clone())
}

fn entry<'a>(
    caller: &'a Caller,
    client: &Client,
    action: Action,
    facts: &'a Facts,
    status: u16,
    outcome: &'static str,
    detail: Option<String>,
) -> AuditEntry<'a> {
    AuditEntry {
        staff_id: caller.0.staff_id,
        staff_email: &caller.0.email,
        token_id: caller.0.token_id,
        action: action.audit_name(),
        order_id: facts.order_id,
        store_id: facts.store_id.as_deref(),
        target: facts.target.clone(),
        command_id: facts.command_id,
        client_addr: client.addr.clone(),
        forwarded_for: client.forwarded_for.clone(),
        http_status: status,
        outcome,
        detail,
    }
}

fn body_problem(e: ContractError) -> Problem {
    Problem::bad_body(e.field, e.reason)
}

/// A command as the API shows it, with links to itself and its order.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Command")]
pub(crate) struct CommandView {
    #[serde(flatten)]
    command: Command,
    links: CommandLinks,
}

/// Where a command and its order are.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct CommandLinks {
    /// The command (`/api/v1/admin/commands/{id}`): poll it until it is no longer
    /// `pending`.
    #[serde(rename = "self")]
    own: String,
    /// Its order (`/api/v1/admin/orders/{id}`).
    order: String,
}

impl CommandView {
    fn of(command: Command) -> Self {
        let links = CommandLinks {
            own: format!("/api/v1/admin/commands/{}", command.command_id),
            order: format!("/api/v1/admin/orders/{}", command.order_id),
        };
        Self { command, links }
    }
}

/// A command's `202 Accepted`, with its `Location`.
fn accepted(command: Command) -> Result<Accepted<CommandView>, Problem> {
    let view = CommandView::of(command);
    let location = HeaderValue::from_str(&view.links.own).map_err(|_| Problem::unavailable())?;
    Ok(Accepted::new(view).with_header(header::LOCATION, location))
}

fn internal(e: sqlx::Error) -> Problem {
    error!(error = %e, "action failed: database");
    Problem::unavailable()
}
