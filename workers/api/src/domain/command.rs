//! Staff actions on an order, and a storefront customer's cancellation request, as the API
//! takes them: the request body parsed into a typed
//! action, the action turned into the request message the owning worker acts on, and the
//! rules around it (`Idempotency-Key`, `If-Match`). Pure: the HTTP layer reads the request,
//! the store writes the command, its message and the audit entry in one transaction.
//!
//! Why the contract does the checking: each action becomes a contract message
//! (`order.cancel_requested`, `order.refund_requested`, `order.note_requested`,
//! `order.exception_resolved`) whose types and `Validate` rules are what the receiving
//! worker will apply. Parsing the body into those types and validating the message before
//! anything is written means a request the worker would dead-letter is refused here, with
//! the body's field named, and never sent.

use orderly_contracts::messages::{
    Actor, ActorKind, Address, ExceptionResolution, LineQuantity, NotificationEvent,
    NotificationResendRequested, OrderAddressChangeRequested, OrderCancelRequested,
    OrderExceptionResolved, OrderHoldRequested, OrderNoteRequested, OrderRef, OrderRefundRequested,
    OrderReleaseRequested, QaResult, SetupAction, SetupActionRequested, SetupActor, SetupRole,
};
use orderly_contracts::types::{Sku, StoreId};
use orderly_contracts::{ContractError, Envelope, Message, TraceContext, Validate};
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::access::Permission;

/// What a staff member asks the API to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Cancel the order or some lines (`order.cancel_requested`).
    Cancel,
    /// Refund lines and/or shipping (`order.refund_requested`).
    Refund,
    /// Add an internal note (`order.note_requested`).
    Note,
    /// Resolve an order item exception (`order.exception_resolved`).
    ResolveException,
    /// Send a customer notification again (`notification.resend_requested`).
    ResendNotification,
    /// Put the order on hold (`order.hold_requested`).
    Hold,
    /// Release the order's hold (`order.release_requested`).
    Release,
    /// Change the order's delivery and/or invoice address (`order.address_change_requested`).
    ChangeAddress,
    /// Move a setup of a service line along (`setup.action_requested`).
    SetupStep,
}

impl Action {
    /// Every action, in declaration order.
    #[cfg(test)]
    pub(crate) const ALL: &'static [Self] = &[
        Self::Cancel,
        Self::Refund,
        Self::Note,
        Self::ResolveException,
        Self::ResendNotification,
        Self::Hold,
        Self::Release,
        Self::ChangeAddress,
        Self::SetupStep,
    ];

    /// Its stored name.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Cancel => "cancel",
            Self::Refund => "refund",
            Self::Note => "note",
            Self::ResolveException => "resolve_exception",
            Self::ResendNotification => "resend_notification",
            Self::Hold => "hold",
            Self::Release => "release",
            Self::ChangeAddress => "change_address",
            Self::SetupStep => "setup_step",
        }
    }

    /// The permission it needs.
    pub(crate) const fn permission(self) -> Permission {
        match self {
            Self::Cancel => Permission::OrdersCancel,
            Self::Refund => Permission::OrdersRefund,
            Self::Note => Permission::OrdersEdit,
            Self::ResolveException => Permission::ExceptionsResolve,
            Self::ResendNotification | Self::Hold | Self::Release | Self::ChangeAddress => {
                Permission::OrdersEdit
            }
            Self::SetupStep => Permission::SetupsAdvance,
        }
    }

    /// The name in the audit log (`orders.cancel`).
    pub(crate) const fn audit_name(self) -> &'static str {
        match self {
            Self::Cancel => "orders.cancel",
            Self::Refund => "orders.refund",
            Self::Note => "orders.note",
            Self::ResolveException => "exceptions.resolve",
            Self::ResendNotification => "orders.resend_notification",
            Self::Hold => "orders.hold",
            Self::Release => "orders.release",
            Self::ChangeAddress => "orders.change_address",
            Self::SetupStep => "setups.advance",
        }
    }
}

/// `POST /api/v1/admin/orders/{id}/cancel`: cancel the whole order, or some of its lines.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CancelRequest")]
pub(crate) struct CancelBody {
    /// Why, in words (not blank); kept on the order's timeline.
    reason: String,
    /// The lines and quantities to cancel; leave it out to cancel the whole order.
    #[serde(default)]
    lines: Option<Vec<LineQuantity>>,
}

impl CancelBody {
    /// Whether it names lines (a part of one order) rather than the whole order.
    pub(crate) fn has_lines(&self) -> bool {
        self.lines.is_some()
    }
}

/// `POST /api/v1/admin/orders/{id}/refund`: refund lines, the shipping and/or a free amount
/// (at least one).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "RefundRequest")]
pub(crate) struct RefundBody {
    /// Why, in words (not blank); printed on the credit note.
    reason: String,
    /// The lines and quantities to refund.
    #[serde(default)]
    lines: Vec<LineQuantity>,
    /// Whether to refund the shipping too.
    #[serde(default)]
    refund_shipping: bool,
    /// A free amount to refund (gross, in the order's currency, as a decimal string:
    /// `"10.00"`): a goodwill gesture or a price adjustment, credited as a price reduction
    /// over the invoice's VAT rates.
    #[serde(default)]
    amount: Option<orderly_contracts::types::Amount>,
}

/// `POST /api/v1/admin/orders/{id}/notes`: an internal note on the order's timeline, never
/// shown to the customer.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "NoteRequest")]
pub(crate) struct NoteBody {
    /// The note (not blank).
    text: String,
}

/// `POST /api/v1/admin/order-exceptions/{id}/resolve`: resolve an order item exception.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ResolveRequest")]
pub(crate) struct ResolveBody {
    /// How: map the line to a product, remove the line, or cancel the order.
    resolution: ExceptionResolution,
    /// The product the line is, for `map_to_sku` (and only then).
    #[serde(default)]
    sku: Option<Sku>,
    /// Remember the line's GTIN → SKU for the store's next imports (`map_to_sku` only).
    #[serde(default)]
    remember: bool,
    /// A note for the order's timeline.
    #[serde(default)]
    note: Option<String>,
}

/// `POST /api/v1/admin/orders/{id}/notifications/resend`: send the customer's newest
/// notification (of `event`) again.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ResendRequest")]
pub(crate) struct ResendBody {
    /// Which notification: the newest of this event; leave it out for the newest of all.
    #[serde(default)]
    event: Option<NotificationEvent>,
}

/// `POST /api/v1/admin/orders/{id}/hold`: stop the order where it is until it is released.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "HoldRequest")]
pub(crate) struct HoldBody {
    /// Why, in words (not blank); kept on the order's timeline.
    reason: String,
}

/// `POST /api/v1/admin/orders/{id}/release`: release the order's hold.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ReleaseRequest")]
pub(crate) struct ReleaseBody {
    /// Why, in words, if worth saying.
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/v1/admin/orders/{id}/address`: change the delivery and/or invoice address of
/// an order nothing of which has left a warehouse yet.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AddressChangeRequest")]
pub(crate) struct AddressBody {
    /// Why, in words (not blank); kept on the order's timeline.
    reason: String,
    /// The new delivery address; leave it out to keep it.
    #[serde(default)]
    shipping_address: Option<Address>,
    /// The new invoice address; leave it out to keep it.
    #[serde(default)]
    billing_address: Option<Address>,
}

/// `POST /api/v1/admin/setups/{id}/steps`: move a setup of a service line along, as staff.
/// The setups worker decides (who may, in which state) and answers the command.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SetupStepRequest")]
pub(crate) struct SetupStepBody {
    /// What to do: `advance` (complete the current stage), `return` (back to `to_stage`),
    /// `record_qa` (the checklist's `results`), `hold` or `release`. The client's own steps
    /// (intake, approval) are theirs, not staff's.
    action: SetupAction,
    /// Why (required to return and to hold).
    #[serde(default)]
    note: Option<String>,
    /// The earlier stage to go back to (`return`).
    #[serde(default)]
    to_stage: Option<String>,
    /// One result per checklist item (`record_qa`).
    #[serde(default)]
    results: Vec<QaResult>,
}

/// A request body that is an action: the type its endpoint parses and documents, and how it
/// becomes a [`Request`]. The endpoint is generic over it, so the body the OpenAPI document
/// describes is the type the handler parses.
pub(crate) trait ActionBody: DeserializeOwned + JsonSchema + Send + 'static {
    /// The action it asks for.
    const ACTION: Action;

    /// The request, on the order or exception `id` the path named.
    fn into_request(self, id: Uuid) -> Request;
}

/// `impl ActionBody for $body`: the action `$action`, a [`Request::$variant`] of the body.
macro_rules! action_body {
    ($body:ty, $action:ident, $variant:ident) => {
        impl ActionBody for $body {
            const ACTION: Action = Action::$action;

            fn into_request(self, _: Uuid) -> Request {
                Request::$variant(self)
            }
        }
    };
}

action_body!(CancelBody, Cancel, Cancel);
action_body!(RefundBody, Refund, Refund);
action_body!(NoteBody, Note, Note);
action_body!(ResendBody, ResendNotification, Resend);
action_body!(HoldBody, Hold, Hold);
action_body!(ReleaseBody, Release, Release);

impl ActionBody for AddressBody {
    const ACTION: Action = Action::ChangeAddress;

    fn into_request(self, _: Uuid) -> Request {
        Request::ChangeAddress(Box::new(self))
    }
}

impl ActionBody for SetupStepBody {
    const ACTION: Action = Action::SetupStep;

    fn into_request(self, setup_id: Uuid) -> Request {
        Request::SetupStep {
            setup_id,
            body: self,
            // Set from the token by whoever sends it (see `Request::with_role`).
            role: SetupRole::SetupManager,
        }
    }
}

impl ActionBody for ResolveBody {
    const ACTION: Action = Action::ResolveException;

    fn into_request(self, exception_id: Uuid) -> Request {
        Request::Resolve {
            exception_id,
            body: self,
        }
    }
}

/// What a storefront's customer may ask of their own order through the API: a
/// cancellation only (the whole order or some lines, like the storefront's own
/// `order.cancel_requested`). Refunds, holds, notes and exception resolutions are the
/// shop's decisions. A marker on the body type, so the customers' action endpoint cannot be
/// declared for anything else.
pub(crate) trait CustomerAction: ActionBody {}

impl CustomerAction for CancelBody {}

/// A request body refused, naming the body's field (`lines[0].quantity`), or `body` when it
/// is not a JSON object at all.
pub(crate) fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ContractError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ContractError::new(
            "body",
            "a JSON object is required (Content-Type: application/json)",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        use serde_json::error::Category;
        if matches!(e.inner().classify(), Category::Syntax | Category::Eof) {
            return ContractError::new("body", format!("not valid JSON: {}", e.inner()));
        }
        let e = ContractError::from_path("", e);
        if e.field.is_empty() {
            ContractError::new("body", e.reason)
        } else {
            e
        }
    })?;
    de.end()
        .map_err(|e| ContractError::new("body", format!("trailing characters: {e}")))?;
    Ok(value)
}

/// A parsed action with its body.
#[derive(Debug, Clone)]
pub(crate) enum Request {
    Cancel(CancelBody),
    Refund(RefundBody),
    Note(NoteBody),
    Resolve {
        exception_id: Uuid,
        body: ResolveBody,
    },
    Resend(ResendBody),
    Hold(HoldBody),
    Release(ReleaseBody),
    /// Boxed: two addresses are much larger than the other bodies.
    ChangeAddress(Box<AddressBody>),
    /// A step of a setup, asked by staff in `role`.
    SetupStep {
        setup_id: Uuid,
        body: SetupStepBody,
        role: SetupRole,
    },
}

impl Request {
    /// The request asked by staff in `role` (what a setup step names as who asks; the
    /// other requests name the operator only).
    pub(crate) fn with_role(mut self, staff: SetupRole) -> Self {
        if let Self::SetupStep { role, .. } = &mut self {
            *role = staff;
        }
        self
    }
}

/// Who is acting, as the message names them: an operator, by e-mail (or staff id when the
/// address is longer than an actor id may be).
pub(crate) fn operator(email: &str, staff_id: Uuid) -> Actor {
    Actor {
        kind: ActorKind::Operator,
        id: Some(if email.chars().count() <= 128 {
            email.to_owned()
        } else {
            staff_id.to_string()
        }),
    }
}

/// Who is acting, as the message names them: a storefront's customer, by their id in the
/// store (at most 128 characters, as a customer token's claims and an actor id are).
pub(crate) fn customer(customer_id: &str) -> Actor {
    Actor {
        kind: ActorKind::Customer,
        id: Some(customer_id.to_owned()),
    }
}

/// The order a command is about, as the read model knows it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    pub(crate) order_id: Uuid,
    pub(crate) store_id: &'a str,
}

/// The message a command sends: its type, its id (the command's), and the whole envelope.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub(crate) message_type: &'static str,
    pub(crate) correlation_id: String,
    pub(crate) payload: serde_json::Value,
    pub(crate) envelope: serde_json::Value,
}

/// The request message of `request` on `target`, with `command_id` as its message id (and
/// request id), validated against its contract: a field it breaks is named as the body's.
pub(crate) fn message(
    request: &Request,
    target: Target<'_>,
    command_id: Uuid,
    by: Actor,
    trace: Option<&TraceContext>,
) -> Result<Outgoing, ContractError> {
    let store_id = StoreId::parse(target.store_id)
        .map_err(|e| ContractError::new("store_id", format!("the order's store: {e}")))?;
    match request {
        Request::Cancel(b) => build(
            OrderCancelRequested {
                request_id: command_id,
                store_id,
                order: OrderRef {
                    order_id: Some(target.order_id),
                    channel: None,
                    external_order_id: None,
                },
                requested_by: by,
                reason: b.reason.clone(),
                lines: b.lines.clone(),
            },
            target,
            command_id,
            trace,
        ),
        Request::Refund(b) => build(
            OrderRefundRequested {
                request_id: command_id,
                order_id: target.order_id,
                store_id,
                requested_by: by,
                reason: b.reason.clone(),
                lines: b.lines.clone(),
                refund_shipping: b.refund_shipping,
                amount: b.amount,
            },
            target,
            command_id,
            trace,
        ),
        Request::Note(b) => build(
            OrderNoteRequested {
                request_id: command_id,
                order_id: target.order_id,
                store_id,
                requested_by: by,
                text: b.text.clone(),
            },
            target,
            command_id,
            trace,
        ),
        Request::Resolve { exception_id, body } => build(
            OrderExceptionResolved {
                order_id: target.order_id,
                store_id,
                exception_id: *exception_id,
                resolution: body.resolution,
                sku: body.sku.clone(),
                remember_mapping: body.remember,
                resolved_by: by,
                note: body.note.clone(),
            },
            target,
            command_id,
            trace,
        ),
        Request::Hold(b) => build(
            OrderHoldRequested {
                request_id: command_id,
                order_id: target.order_id,
                store_id,
                requested_by: by,
                reason: b.reason.clone(),
            },
            target,
            command_id,
            trace,
        ),
        Request::Release(b) => build(
            OrderReleaseRequested {
                request_id: command_id,
                order_id: target.order_id,
                store_id,
                requested_by: by,
                reason: b.reason.clone(),
            },
            target,
            command_id,
            trace,
        ),
        Request::SetupStep {
            setup_id,
            body,
            role,
        } => {
            if !matches!(
                body.action,
                SetupAction::Advance
                    | SetupAction::Return
                    | SetupAction::RecordQa
                    | SetupAction::Hold
                    | SetupAction::Release
            ) {
                return Err(ContractError::new(
                    "action",
                    format!(
                        "`{}` is the client's step (their intake link), not staff's",
                        body.action
                    ),
                ));
            }
            build(
                SetupActionRequested {
                    request_id: command_id,
                    setup_id: *setup_id,
                    order_id: target.order_id,
                    action: body.action,
                    requested_by: SetupActor {
                        role: *role,
                        id: by.id.clone().unwrap_or_default(),
                    },
                    note: body.note.clone(),
                    values: Default::default(),
                    results: body.results.clone(),
                    to_stage: body.to_stage.clone(),
                    approved: None,
                },
                target,
                command_id,
                trace,
            )
        }
        Request::ChangeAddress(b) => build(
            OrderAddressChangeRequested {
                request_id: command_id,
                order_id: target.order_id,
                store_id,
                requested_by: by,
                reason: b.reason.clone(),
                shipping_address: b.shipping_address.clone(),
                billing_address: b.billing_address.clone(),
            },
            target,
            command_id,
            trace,
        ),
        Request::Resend(b) => build(
            NotificationResendRequested {
                request_id: command_id,
                order_id: target.order_id,
                store_id,
                requested_by: by,
                event: b.event,
            },
            target,
            command_id,
            trace,
        ),
    }
}

fn build<P: Message + Validate + serde::Serialize>(
    payload: P,
    target: Target<'_>,
    command_id: Uuid,
    trace: Option<&TraceContext>,
) -> Result<Outgoing, ContractError> {
    payload.validate().map_err(body_field)?;
    let mut envelope = Envelope::new("api", target.order_id.to_string(), payload);
    envelope.message_id = command_id;
    // The caller's trace (their request's `traceparent`) continues through the command.
    envelope.trace = trace.cloned();
    let value = serde_json::to_value(&envelope)
        .map_err(|e| ContractError::new("body", format!("not representable: {e}")))?;
    Ok(Outgoing {
        message_type: P::TYPE,
        correlation_id: envelope.correlation_id.clone(),
        payload: value["payload"].clone(),
        envelope: value,
    })
}

/// A contract error at `payload.x` as the body's field `x` (the body's names where they
/// differ from the message's).
fn body_field(e: ContractError) -> ContractError {
    let field = e.field.strip_prefix("payload.").unwrap_or(&e.field);
    let field = match field {
        "remember_mapping" => "remember",
        f => f,
    };
    ContractError::new(field, e.reason)
}

/// What an `Idempotency-Key` was first used for: the action, its target and the body (as
/// parsed JSON, so spacing and key order do not matter).
pub(crate) fn request_fingerprint(action: Action, target: &str, body: &[u8]) -> String {
    let canonical = serde_json::from_slice::<serde_json::Value>(body)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned());
    let digest = Sha256::digest(format!("{}\n{target}\n{canonical}", action.as_str()));
    hex::encode(digest)
}

/// The caller's W3C trace context, from a request's `traceparent` header: the command
/// continues their trace. A malformed one is ignored (the W3C rule: start afresh), never a
/// refusal.
pub(crate) fn trace_of(raw: Option<&[u8]>) -> Option<TraceContext> {
    let text = std::str::from_utf8(raw?).ok()?.trim();
    orderly_runtime::hop::parse(text).map(|_| TraceContext {
        traceparent: text.to_owned(),
    })
}

/// An `Idempotency-Key` header's value: 1 to 255 visible ASCII characters.
pub(crate) fn idempotency_key(raw: &[u8]) -> Result<String, String> {
    let ok = !raw.is_empty() && raw.len() <= 255 && raw.iter().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(String::from_utf8_lossy(raw).into_owned())
    } else {
        Err("must be 1 to 255 visible ASCII characters (a UUID is a good key)".to_owned())
    }
}

/// What an `If-Match` header asks: `*` (any current order), or one of the listed entity
/// tags, which for an order are its status sequence (`"12"`; a weak `W/"12"` is the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IfMatch {
    Any,
    Sequences(Vec<i64>),
}

/// Parses `If-Match`; an entity tag that is not an order's is refused (it can never match,
/// which is a mistake worth telling).
pub(crate) fn if_match(raw: &str) -> Result<IfMatch, String> {
    let raw = raw.trim();
    if raw == "*" {
        return Ok(IfMatch::Any);
    }
    let mut tags = Vec::new();
    for tag in raw.split(',') {
        let tag = tag.trim();
        let tag = tag.strip_prefix("W/").unwrap_or(tag);
        let inner = tag
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .ok_or_else(|| {
                format!("`{tag}` is not a quoted entity tag (send the ETag as given)")
            })?;
        let n = inner
            .parse::<i64>()
            .map_err(|_| format!("`{tag}` is not an order's ETag"))?;
        tags.push(n);
    }
    Ok(IfMatch::Sequences(tags))
}

impl IfMatch {
    /// Whether an order at `sequence` satisfies it.
    pub(crate) fn matches(&self, sequence: i64) -> bool {
        match self {
            Self::Any => true,
            Self::Sequences(s) => s.contains(&sequence),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The newest migration's `CHECK` on `api.commands.action` allows exactly the actions the
    /// API stores (a new action without the migration is refused by the database: a 503).
    #[test]
    fn the_commands_check_constraint_lists_every_action() {
        let migration = include_str!("../../../../migrations/20261207000040_api_setups.sql");
        let marker = "constraint commands_action_check check (action in (";
        let Some(allowed) = orderly_runtime::db::check_values(migration, marker) else {
            panic!("the migration has no `commands_action_check`");
        };
        let mut stored: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        stored.sort_unstable();
        assert_eq!(allowed, stored);
        // Every variant is in `ALL` (this match fails to compile when one is added).
        for action in Action::ALL {
            match action {
                Action::Cancel
                | Action::Refund
                | Action::Note
                | Action::ResolveException
                | Action::ResendNotification
                | Action::Hold
                | Action::Release
                | Action::ChangeAddress
                | Action::SetupStep => {}
            }
        }
        assert_eq!(Action::ALL.len(), 9, "a variant missing from `Action::ALL`");
    }

    fn target() -> Target<'static> {
        Target {
            order_id: Uuid::nil(),
            store_id: "shop-de",
        }
    }

    fn by() -> Actor {
        operator("ada@example.com", Uuid::nil())
    }

    #[test]
    fn a_body_error_names_the_bodys_field() {
        let e = parse_body::<CancelBody>(
            br#"{"reason": "x", "lines": [{"line_id": "1", "quantity": 0}]}"#,
        )
        .expect_err("quantity 0");
        assert_eq!(e.field, "lines[0].quantity", "{e}");
        let e =
            parse_body::<CancelBody>(br#"{"reason": "x", "colour": "red"}"#).expect_err("unknown");
        assert_eq!(e.field, "colour", "{e}");
        let e = parse_body::<CancelBody>(br#"{}"#).expect_err("missing");
        assert_eq!(e.field, "reason", "{e}");
        let e = parse_body::<CancelBody>(br#"{"reason": 5}"#).expect_err("type");
        assert_eq!(e.field, "reason", "{e}");
        let e = parse_body::<CancelBody>(b"{\"reason\": ").expect_err("broken");
        assert_eq!(e.field, "body", "{e}");
        let e = parse_body::<CancelBody>(b"").expect_err("empty");
        assert_eq!(e.field, "body", "{e}");
        let e = parse_body::<CancelBody>(br#"{"reason": "x"} []"#).expect_err("trailing");
        assert_eq!(e.field, "body", "{e}");
        let e = parse_body::<ResolveBody>(br#"{"resolution": "guess"}"#).expect_err("enum");
        assert_eq!(e.field, "resolution", "{e}");
    }

    #[test]
    fn the_contract_refuses_what_the_worker_would_and_names_the_bodys_field() {
        let blank: CancelBody = parse_body(br#"{"reason": "   "}"#).expect("parses");
        let e =
            message(&Request::Cancel(blank), target(), Uuid::nil(), by(), None).expect_err("blank");
        assert_eq!(e.field, "reason", "{e}");

        let nothing: RefundBody = parse_body(br#"{"reason": "broken"}"#).expect("parses");
        let e = message(&Request::Refund(nothing), target(), Uuid::nil(), by(), None)
            .expect_err("empty");
        assert_eq!(e.field, "lines", "{e}");

        let zero: RefundBody =
            parse_body(br#"{"reason": "Kulanz", "amount": "0.00"}"#).expect("parses");
        let e =
            message(&Request::Refund(zero), target(), Uuid::nil(), by(), None).expect_err("zero");
        assert_eq!(e.field, "amount", "{e}");
        let e = parse_body::<RefundBody>(br#"{"reason": "Kulanz", "amount": "-5"}"#)
            .expect_err("negative");
        assert_eq!(e.field, "amount", "{e}");
        let e = parse_body::<RefundBody>(br#"{"reason": "Kulanz", "amount": 10.5}"#)
            .expect_err("a number, not a decimal string");
        assert_eq!(e.field, "amount", "{e}");
        let goodwill: RefundBody =
            parse_body(br#"{"reason": "Kulanz", "amount": "10.00"}"#).expect("parses");
        let out = message(
            &Request::Refund(goodwill),
            target(),
            Uuid::nil(),
            by(),
            None,
        )
        .expect("an amount alone is a refund");
        assert_eq!(out.payload["amount"], "10.00");

        let remember: ResolveBody =
            parse_body(br#"{"resolution": "remove_line", "remember": true}"#).expect("parses");
        let request = Request::Resolve {
            exception_id: Uuid::nil(),
            body: remember,
        };
        let e = message(&request, target(), Uuid::nil(), by(), None).expect_err("remember");
        assert_eq!(e.field, "remember", "{e}");
    }

    #[test]
    fn a_command_is_its_messages_id_and_request_id() {
        let id = Uuid::now_v7();
        let body: CancelBody = parse_body(br#"{"reason": "doppelt bestellt"}"#).expect("parses");
        let out = message(&Request::Cancel(body), target(), id, by(), None).expect("valid");
        assert_eq!(out.message_type, "order.cancel_requested");
        assert_eq!(out.envelope["message_id"], id.to_string());
        assert_eq!(out.payload["request_id"], id.to_string());
        assert_eq!(out.payload["order"]["order_id"], Uuid::nil().to_string());
        assert_eq!(out.payload["requested_by"]["id"], "ada@example.com");
        assert_eq!(out.correlation_id, Uuid::nil().to_string());
    }

    #[test]
    fn a_customers_cancellation_names_the_customer_as_who_asks() {
        let body: CancelBody = parse_body(
            br#"{"reason": "zu lange Lieferzeit", "lines": [{"line_id": "1", "quantity": 1}]}"#,
        )
        .expect("parses");
        let out = message(
            &Request::Cancel(body),
            target(),
            Uuid::nil(),
            customer("C-1001"),
            None,
        )
        .expect("valid");
        assert_eq!(out.message_type, "order.cancel_requested");
        assert_eq!(
            out.payload["requested_by"],
            serde_json::json!({"kind": "customer", "id": "C-1001"})
        );
        assert_eq!(out.payload["lines"][0]["line_id"], "1");
        // The contract's own limit on an actor id holds for every customer a token names.
        let longest = "C".repeat(128);
        let body: CancelBody = parse_body(br#"{"reason": "x"}"#).expect("parses");
        assert!(
            message(
                &Request::Cancel(body),
                target(),
                Uuid::nil(),
                customer(&longest),
                None
            )
            .is_ok()
        );
    }

    #[test]
    fn a_fingerprint_ignores_spacing_and_key_order_but_not_content() {
        let a = request_fingerprint(Action::Cancel, "o", br#"{"reason":"x","lines":null}"#);
        let b = request_fingerprint(
            Action::Cancel,
            "o",
            b"{ \"lines\": null,\n \"reason\": \"x\" }",
        );
        assert_eq!(a, b);
        assert_ne!(
            a,
            request_fingerprint(Action::Cancel, "o", br#"{"reason":"y"}"#)
        );
        assert_ne!(
            a,
            request_fingerprint(Action::Cancel, "p", br#"{"reason":"x","lines":null}"#)
        );
        assert_ne!(
            a,
            request_fingerprint(Action::Note, "o", br#"{"reason":"x","lines":null}"#)
        );
    }

    #[test]
    fn idempotency_keys_and_if_match() {
        assert!(idempotency_key(b"3f2a-7b").is_ok());
        assert!(idempotency_key(b"").is_err());
        assert!(idempotency_key(b"has space").is_err());
        assert!(idempotency_key(&[b'k'; 256]).is_err());

        assert_eq!(if_match("*"), Ok(IfMatch::Any));
        let m = if_match("\"3\", W/\"5\"").expect("parses");
        assert!(m.matches(3) && m.matches(5) && !m.matches(4));
        assert!(if_match("3").is_err(), "unquoted");
        assert!(if_match("\"abc\"").is_err(), "not a sequence");
    }

    #[test]
    fn each_action_needs_its_permission() {
        assert_eq!(Action::Cancel.permission(), Permission::OrdersCancel);
        assert_eq!(Action::Refund.permission(), Permission::OrdersRefund);
        assert_eq!(Action::Note.permission(), Permission::OrdersEdit);
        assert_eq!(
            Action::ResolveException.permission(),
            Permission::ExceptionsResolve
        );
        assert_eq!(
            Action::ResendNotification.permission(),
            Permission::OrdersEdit
        );
    }

    #[test]
    fn a_requests_traceparent_is_continued_and_a_malformed_one_ignored() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            trace_of(Some(good.as_bytes())).map(|t| t.traceparent),
            Some(good.to_owned())
        );
        assert_eq!(trace_of(Some(b"00-nope")), None);
        assert_eq!(trace_of(Some(&[0xff, 0xfe])), None);
        assert_eq!(trace_of(None), None);
    }
}
