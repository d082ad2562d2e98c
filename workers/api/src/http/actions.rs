//! Actions on an order as commands: the staff's `POST /api/v1/admin/orders/{id}/cancel|refund|
//! notes|hold|release|notifications/resend` and `POST /api/v1/admin/order-exceptions/{id}/resolve`,
//! a storefront customer's `POST /api/v1/store/customer-orders/{id}/cancel`, and the command
//! resources they create (`GET /api/v1/admin/commands/{id}`, and a customer's own at
//! `GET /api/v1/store/customer-commands/{id}`).
//!
//! An action is never carried out here: it becomes a request message to the worker that
//! owns the order (orders), written with the command and its audit entry in one
//! transaction, and the answer is `202 Accepted` with the command, which moves from
//! `pending` to `applied`, `partially_applied`, `refused` or `duplicate` when the worker's
//! `order.request_answered` arrives. In order, a request is checked for: a valid token
//! (401), the action's permission (403; a customer's action is the type's to allow,
//! `domain::command::CustomerAction`), the order in the caller's stores or, for a customer,
//! among their own orders (404, like a missing one), a well-formed body naming the field at
//! fault (400), `If-Match` against the order's ETag (412, nothing sent), and
//! `Idempotency-Key` (the same key again answers with the first command and sends nothing;
//! the key reused for another request is 422).
//!
//! Staff and customers go through the one path here ([`Requester`] says who asks, whose
//! keys, which orders they see and how the message names them), so the customers'
//! cancellation has the staff's guarantees by construction. Every request that
//! authenticated is in the audit log, whatever its answer, with its actor.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{ConnectInfo, FromRequestParts, Path, State},
    http::{HeaderMap, Method, StatusCode, header, request::Parts},
};
use orderly_contracts::ContractError;
use schemars::JsonSchema;
use serde::Serialize;
use tracing::{error, info};
use uuid::Uuid;

use super::auth::Caller;
use super::customer::Customer;
use super::endpoint::{Accepted, Access, Endpoint, Reply, answer_of};
use super::{Api, Problem};
use crate::domain::access::{Permission, Role};
use crate::domain::command::{self, Action, ActionBody, CustomerAction, Target};
use crate::store::commands::{self as store, AuditEntry, By, Command, NewCommand};
use crate::store::customers::Owner;
use orderly_contracts::messages::SetupRole;

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

/// Who asks for an action: a staff member or a storefront's customer.
#[derive(Debug, Clone)]
pub(crate) enum Requester {
    Staff(Caller),
    Customer(Customer),
}

impl Requester {
    /// Whether they may ask for `action`: a staff member's role must grant its permission
    /// (else 403); a customer's actions are limited by type ([`CustomerAction`]) to what
    /// they may ask of their own orders.
    fn permit(&self, action: Action) -> Result<(), Problem> {
        match self {
            Self::Staff(caller) => caller.clone().require(action.permission()).map(|_| ()),
            Self::Customer(_) => Ok(()),
        }
    }

    /// Who they are, for commands and the audit log.
    fn by(&self) -> By<'_> {
        match self {
            Self::Staff(caller) => By::Staff {
                staff_id: caller.0.staff_id,
                token_id: caller.0.token_id,
                email: &caller.0.email,
            },
            Self::Customer(customer) => By::Customer(customer.owner()),
        }
    }

    /// The customer whose orders alone they may act on (none: staff, by their scope).
    fn owner(&self) -> Option<Owner<'_>> {
        match self {
            Self::Staff(_) => None,
            Self::Customer(customer) => Some(customer.owner()),
        }
    }

    /// Whether they see an order, or a command, of `store_id` (a customer's own orders are
    /// found by [`Self::owner`] in the statement; their store is their token's).
    fn sees(&self, store_id: &str) -> bool {
        match self {
            Self::Staff(caller) => caller.scope().sees(store_id),
            Self::Customer(customer) => customer.store_id == store_id,
        }
    }

    /// Whether `command` is one they may see: staff, one of their stores'; a customer, one
    /// they sent.
    fn may_see(&self, command: &Command) -> bool {
        self.sees(&command.store_id)
            && match self {
                Self::Staff(_) => true,
                Self::Customer(customer) => {
                    command.customer_id.as_deref() == Some(customer.customer_id.as_str())
                }
            }
    }

    /// The role they act on a setup in: the staff member's, or the client.
    fn setup_role(&self) -> SetupRole {
        match self {
            Self::Staff(caller) => match caller.0.role {
                Role::OrderAdmin => SetupRole::OrderAdmin,
                Role::SetupManager => SetupRole::SetupManager,
                Role::FulfillmentTeam => SetupRole::FulfillmentTeam,
                Role::AccountManager => SetupRole::AccountManager,
            },
            Self::Customer(_) => SetupRole::Client,
        }
    }

    /// How the request message names them (`requested_by`).
    fn actor(&self) -> orderly_contracts::messages::Actor {
        match self {
            Self::Staff(caller) => command::operator(&caller.0.email, caller.0.staff_id),
            Self::Customer(customer) => command::customer(&customer.customer_id),
        }
    }

    /// Where they find a command and its order.
    fn links(&self, command: &Command) -> CommandLinks {
        match self {
            Self::Staff(_) => CommandLinks {
                own: format!("/api/v1/admin/commands/{}", command.command_id),
                order: format!("/api/v1/admin/orders/{}", command.order_id),
            },
            Self::Customer(_) => CommandLinks {
                own: format!("/api/v1/store/customer-commands/{}", command.command_id),
                order: format!("/api/v1/store/customer-orders/{}", command.order_id),
            },
        }
    }

    /// For the log.
    fn who(&self) -> String {
        match self {
            Self::Staff(caller) => caller.0.email.clone(),
            Self::Customer(c) => format!("customer {} of {}", c.customer_id, c.store_id),
        }
    }
}

/// What the action is on, as the path names it.
#[derive(Debug, Clone, Copy)]
enum On<'a> {
    Order(&'a str),
    Exception(&'a str),
    Setup(&'a str),
}

/// Who may ask for the action whose body is `B`, as a handler's extractor: a staff member
/// for any action (their role is checked when it is asked), a storefront's customer only
/// for what [`CustomerAction`] allows, so a customer's endpoint for anything else does not
/// compile.
pub(crate) trait MayAsk<B: ActionBody>:
    FromRequestParts<Arc<Api>, Rejection = Problem> + Into<Requester> + Send
{
}

impl<B: ActionBody> MayAsk<B> for Caller {}

impl<B: CustomerAction> MayAsk<B> for Customer {}

impl From<Caller> for Requester {
    fn from(caller: Caller) -> Self {
        Self::Staff(caller)
    }
}

impl From<Customer> for Requester {
    fn from(customer: Customer) -> Self {
        Self::Customer(customer)
    }
}

/// The action endpoints, declared here beside their one handler (so `endpoint` needs
/// nothing of this module).
impl Endpoint {
    /// `POST path`: the staff action whose body is `B` (parsed by the actions' one handler,
    /// documented from the same type), needing the action's permission, taking
    /// `Idempotency-Key` and `If-Match`, answered `202` with the command and its `Location`.
    pub(crate) fn action<B: ActionBody>(path: &'static str) -> Self {
        let handler = act::<B, Caller>;
        let answer = answer_of(&handler);
        let endpoint = Self::new(Method::POST, path, axum::routing::post(handler), answer);
        endpoint.command::<B>(Access::Staff(B::ACTION.permission()))
    }

    /// `POST path`: the action whose body is `B` asked by a storefront's customer of their
    /// own order (the staff actions' handler, with the customer as who asks), with
    /// `Idempotency-Key` and `If-Match`, answered `202` with the command and its `Location`.
    pub(crate) fn customer_action<B: CustomerAction>(path: &'static str) -> Self {
        let handler = act::<B, Customer>;
        let answer = answer_of(&handler);
        let endpoint = Self::new(Method::POST, path, axum::routing::post(handler), answer);
        endpoint.command::<B>(Access::Customer)
    }
}

/// The handler of the action whose body is `B` asked by `R` (`POST` with a JSON body, on
/// the order, or to resolve one, the order item exception, the path names).
/// [`super::endpoint::Endpoint::action`] (staff) and
/// [`super::endpoint::Endpoint::customer_action`] route it and document `B` as its body.
pub(crate) async fn act<B: ActionBody, R: MayAsk<B>>(
    State(api): State<Arc<Api>>,
    requester: R,
    client: Client,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Accepted<CommandView>, Problem> {
    submit::<B>(&api, requester.into(), &client, &id, &headers, &body).await
}

/// The action `B` asked by `requester` on what `id` names: decided, and audited whatever
/// the answer (but a 503, which is ours). The console's forms send their actions here too,
/// with the body the JSON endpoint would receive.
pub(crate) async fn submit<B: ActionBody>(
    api: &Api,
    requester: Requester,
    client: &Client,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Accepted<CommandView>, Problem> {
    let action = B::ACTION;
    let on = match action {
        Action::ResolveException => On::Exception(id),
        Action::SetupStep => On::Setup(id),
        Action::Cancel
        | Action::Refund
        | Action::Note
        | Action::ResendNotification
        | Action::Hold
        | Action::Release
        | Action::ChangeAddress => On::Order(id),
    };
    let mut facts = Facts::default();
    if let Requester::Customer(customer) = &requester {
        // A customer acts in their token's store, whatever the answer.
        facts.store_id = Some(customer.store_id.clone());
    }
    let answer = decide::<B>(api, &requester, client, on, headers, body, &mut facts).await;
    let problem = match answer {
        Ok(accepted) => return Ok(accepted),
        Err(problem) => problem,
    };
    audit_refusal(api, &problem, |status, outcome, detail| {
        entry(
            &requester,
            client,
            action,
            &facts,
            status,
            outcome,
            Some(detail),
        )
    })
    .await;
    let status = problem.status();
    info!(
        who = requester.who(),
        action = action.audit_name(),
        status = status.as_u16(),
        "action refused"
    );
    Err(problem)
}

/// Records a refused request in the audit log (`invalid` for a 400, else `refused`, with
/// the problem's detail), unless the refusal is ours (a 503). The entry is `entry`'s, given
/// the status, outcome and detail. An entry that cannot be written is logged.
pub(crate) async fn audit_refusal<'a>(
    api: &Api,
    problem: &Problem,
    entry: impl FnOnce(u16, &'static str, String) -> AuditEntry<'a>,
) {
    let status = problem.status();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        return;
    }
    let outcome = if status == StatusCode::BAD_REQUEST {
        "invalid"
    } else {
        "refused"
    };
    let entry = entry(status.as_u16(), outcome, problem.detail().to_owned());
    let written = match api.pool.acquire().await {
        Ok(mut conn) => store::audit(&mut conn, &entry).await,
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        error!(error = %e, action = entry.action, "audit entry not written");
    }
}

/// `GET /api/v1/admin/commands/{id}`: a command and what became of it.
pub(crate) async fn command(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Reply<CommandView>, Problem> {
    let caller = caller.require(Permission::OrdersView)?;
    show(&api, &Requester::Staff(caller), &id).await
}

/// `GET /api/v1/store/customer-commands/{id}`: a customer's own command (a cancellation
/// request) and what became of it.
pub(crate) async fn customer_command(
    State(api): State<Arc<Api>>,
    customer: Customer,
    Path(id): Path<String>,
) -> Result<Reply<CommandView>, Problem> {
    show(&api, &Requester::Customer(customer), &id).await
}

/// Command `id`, if `viewer` may see it; else 404, like one that does not exist.
async fn show(api: &Api, viewer: &Requester, id: &str) -> Result<Reply<CommandView>, Problem> {
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
        .filter(|c| viewer.may_see(c))
        .ok_or_else(not_found)?;
    Ok(Reply::new(CommandView::of(found, viewer)))
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
    requester: &Requester,
    client: &Client,
    on: On<'_>,
    headers: &HeaderMap,
    body: &[u8],
    facts: &mut Facts,
) -> Result<Accepted<CommandView>, Problem> {
    let action = B::ACTION;
    let target_text = match on {
        On::Order(id) | On::Exception(id) | On::Setup(id) => id,
    };
    let parsed_id: Result<Uuid, _> = target_text.parse();
    match (on, &parsed_id) {
        (On::Order(_), Ok(id)) => facts.order_id = Some(*id),
        (On::Exception(_), Ok(id)) => facts.target = Some(format!("exception {id}")),
        (On::Setup(_), Ok(id)) => facts.target = Some(format!("setup {id}")),
        (_, Err(_)) => facts.target = Some(target_text.chars().take(64).collect()),
    }
    requester.permit(action)?;
    let id = parsed_id.map_err(|_| {
        let what = match on {
            On::Order(_) => "an order id",
            On::Exception(_) => "an order item exception id",
            On::Setup(_) => "a setup id",
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
        .into_request(id)
        .with_role(requester.setup_role());
    let fingerprint = command::request_fingerprint(action, target_text, body);

    let mut tx = api.pool.begin().await.map_err(internal)?;
    if let Some(key) = &key
        && let Some(earlier) = store::by_key(&mut tx, requester.by(), key)
            .await
            .map_err(internal)?
    {
        facts.order_id = Some(earlier.order_id);
        facts.store_id = Some(earlier.store_id.clone());
        facts.command_id = Some(earlier.command_id);
        return replay(tx, requester, client, action, &earlier, &fingerprint, facts).await;
    }
    let not_found = |what: String| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "No such order",
            format!("no {what} that this token may see"),
        )
    };
    // A setup's step is conditional on the setup's own sequence (its `ETag`), not the
    // order's.
    let mut setup_sequence = None;
    let order_id = match on {
        On::Order(_) => id,
        On::Exception(_) => store::order_of_exception(&mut tx, id)
            .await
            .map_err(internal)?
            .ok_or_else(|| not_found(format!("order item exception {id}")))?,
        On::Setup(_) => {
            let (order_id, sequence) = store::order_of_setup(&mut tx, id)
                .await
                .map_err(internal)?
                .ok_or_else(|| not_found(format!("setup {id}")))?;
            setup_sequence = Some(i64::from(sequence));
            order_id
        }
    };
    facts.order_id = Some(order_id);
    let order = store::order_for_command(&mut tx, order_id, requester.owner())
        .await
        .map_err(internal)?
        .filter(|o| requester.sees(&o.store_id))
        .ok_or_else(|| match on {
            On::Order(_) => not_found(format!("order {order_id}")),
            On::Exception(_) => not_found(format!("order item exception {id}")),
            On::Setup(_) => not_found(format!("setup {id}")),
        })?;
    facts.store_id = Some(order.store_id.clone());
    let (what, etag) = match setup_sequence {
        Some(sequence) => ("setup", sequence),
        None => ("order", order.status_sequence),
    };
    if let Some(m) = &if_match
        && !m.matches(etag)
    {
        return Err(Problem::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition-failed",
            if setup_sequence.is_some() {
                "The setup has moved on"
            } else {
                "The order has moved on"
            },
            format!(
                "the {what}'s ETag is now \"{etag}\", not what If-Match names: reload it and decide again"
            ),
        ));
    }
    let command_id = Uuid::now_v7();
    let target = Target {
        order_id,
        store_id: &order.store_id,
    };
    let message = command::message(
        &request,
        target,
        command_id,
        requester.actor(),
        command::trace_of(headers.get("traceparent").map(|v| v.as_bytes())).as_ref(),
    )
    .map_err(body_problem)?;
    let new = NewCommand {
        command_id,
        by: requester.by(),
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
        let earlier = store::by_key(&mut tx, requester.by(), key)
            .await
            .map_err(internal)?
            .ok_or_else(Problem::unavailable)?;
        facts.command_id = Some(earlier.command_id);
        return replay(tx, requester, client, action, &earlier, &fingerprint, facts).await;
    };
    facts.command_id = Some(command_id);
    store::audit(
        &mut tx,
        &entry(requester, client, action, facts, 202, "accepted", None),
    )
    .await
    .map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    if let Some(handoff) = &api.handoff {
        handoff.hand(written);
    }
    info!(who = requester.who(), action = action.audit_name(), %order_id, %command_id, "command sent");
    let command = store::command(&api.pool, command_id)
        .await
        .map_err(internal)?
        .ok_or_else(Problem::unavailable)?;
    accepted(command, requester)
}

/// The same key again: the first command, if the request is the same; else 422.
async fn replay(
    mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
    requester: &Requester,
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
        &entry(requester, client, action, facts, 202, "replayed", None),
    )
    .await
    .map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    accepted(earlier.clone(), requester)
}

fn entry<'a>(
    requester: &'a Requester,
    client: &Client,
    action: Action,
    facts: &'a Facts,
    status: u16,
    outcome: &'static str,
    detail: Option<String>,
) -> AuditEntry<'a> {
    AuditEntry {
        by: requester.by(),
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

/// Where a command and its order are, for whoever looks: the staff's paths, or a
/// customer's.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct CommandLinks {
    /// The command (`/api/v1/admin/commands/{id}`, for a customer
    /// `/api/v1/store/customer-commands/{id}`): poll it until it is no longer `pending`.
    #[serde(rename = "self")]
    own: String,
    /// Its order (`/api/v1/admin/orders/{id}`, for a customer
    /// `/api/v1/store/customer-orders/{id}`).
    order: String,
}

impl CommandView {
    /// The command.
    pub(crate) fn command(&self) -> &Command {
        &self.command
    }

    fn of(command: Command, viewer: &Requester) -> Self {
        let links = viewer.links(&command);
        Self { command, links }
    }
}

/// A command's `202 Accepted`, with its `Location`.
fn accepted(command: Command, requester: &Requester) -> Result<Accepted<CommandView>, Problem> {
    let view = CommandView::of(command, requester);
    let own = view.links.own.clone();
    Accepted::new(view).located(&own)
}

fn internal(e: sqlx::Error) -> Problem {
    error!(error = %e, "action failed: database");
    Problem::unavailable()
}
