//! The notifications handler: decode, decide (with [`crate::domain`]), write through
//! [`crate::store`], emit.
//!
//! Per order event, in the one transaction the runtime gives it:
//! 1. queue a webhook delivery for every endpoint of the store subscribed to the event's
//!    type (the delivery row *is* the durable queue; the dispatcher sends it after commit);
//! 2. if the order's contact is known, decide the notifications: staleness, the store's
//!    rules, recipients, language, template; record a request per recipient under its
//!    dedup key and emit `notification.requested` (or record why not); if the contact is
//!    not known yet (a shipment event overtook the order's first status change), park the
//!    event until it is.
//!
//! Every message about one order takes the order's lock (declared through
//! [`Handler::lock_keys`], so the consumer takes a batch's locks in one global order), which
//! serialises the watermark, the dedup checks and the webhook chain sequences.

use std::collections::BTreeMap;

use orderly_contracts::messages::{
    CreditNoteIssued, DocumentRef, InvoiceIssued, NotificationAudience, NotificationChannel,
    NotificationEvent, NotificationFailed, NotificationRequested, NotificationResendRequested,
    NotificationSent, OrderStatusChanged, SetupClientInvited, SetupCompleted, SetupOverdue,
    ShipmentDelivered, ShipmentDispatched, ShipmentException, StoreNotificationSettingsUpdated,
    WebhookEndpointRegistered,
};
use orderly_contracts::types::{Locale, OrderStatus, ShipmentStatus};
use orderly_contracts::{Envelope, RawEnvelope, Validate};
use orderly_runtime::{Handler, HandlerContext, HandlerError, Incoming, LockKey};
use serde::Serialize;
use sqlx::PgConnection;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::domain::{self, Freshness, ShipmentStep};
use crate::request::{RequestFor, request_once};
use crate::store::{self, NewDelivery, NewSuppression, OrderRow};

/// How many times a notification is requested in all when the notification system reports
/// non-permanent failures (the first request included).
pub(crate) const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// Notifications' message handler. Stateless apart from its retry policy: everything lives
/// in the worker's schema.
#[derive(Debug, Clone, Copy)]
pub struct NotificationsHandler {
    max_attempts: u32,
    name_retries: bool,
}

impl Default for NotificationsHandler {
    fn default() -> Self {
        Self::new()
    }
}

impl NotificationsHandler {
    /// The handler, re-requesting a failed notification up to [`DEFAULT_MAX_ATTEMPTS`]
    /// attempts in all.
    pub const fn new() -> Self {
        Self {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            name_retries: false,
        }
    }

    /// Whether a re-request names the request it retries (`retry_of`): only once the
    /// notification system knows the field (see [`crate::NotificationSettings`]).
    pub const fn naming_retries(mut self, name_retries: bool) -> Self {
        self.name_retries = name_retries;
        self
    }

    /// With another attempt budget for failed notifications (at least 1).
    pub const fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = if max_attempts == 0 { 1 } else { max_attempts };
        self
    }
}

orderly_runtime::inputs! {
    /// What the notifications worker consumes: its queue in the routing table receives
    /// exactly these (the host checks it before starting the worker).
    pub enum NotificationsInput {
        /// An order's status changed.
        StatusChanged(OrderStatusChanged),
        /// A shipment left.
        Dispatched(ShipmentDispatched),
        /// A shipment arrived.
        Delivered(ShipmentDelivered),
        /// A shipment needs attention.
        Exception(ShipmentException),
        /// An invoice was issued.
        InvoiceIssued(InvoiceIssued),
        /// A credit note was issued.
        CreditNoteIssued(CreditNoteIssued),
        /// The notification system delivered a request.
        Sent(NotificationSent),
        /// The notification system could not deliver a request.
        Failed(NotificationFailed),
        /// A store's rules, templates and staff.
        Settings(StoreNotificationSettingsUpdated),
        /// A merchant's webhook endpoint.
        EndpointRegistered(WebhookEndpointRegistered),
        /// An operator's request to send a customer notification again.
        Resend(NotificationResendRequested),
        /// A setup of a service product past its stage's SLA: the store's staff are told.
        SetupOverdue(SetupOverdue),
        /// A setup's client is asked to act (intake, approval, a reminder), with their link.
        SetupInvited(SetupClientInvited),
        /// A setup went through every stage: the client is told.
        SetupCompleted(SetupCompleted),
    }
}

use NotificationsInput as Input;

impl Handler for NotificationsHandler {
    type Input = NotificationsInput;

    async fn handle(
        &self,
        msg: &Incoming,
        cx: &mut HandlerContext<'_>,
    ) -> Result<(), HandlerError> {
        let input = msg.input::<Input>()?;
        if let Some(event) = OrderEvent::of(input)? {
            return order_event(cx, &msg.envelope, event, true).await;
        }
        match input {
            Input::Sent(env) => sent(cx, env, &msg.envelope.payload).await,
            Input::Failed(env) => failed(cx, env, &msg.envelope.payload, self).await,
            Input::Settings(env) => settings_updated(cx, env).await,
            Input::EndpointRegistered(env) => endpoint_registered(cx, env).await,
            Input::Resend(env) => crate::resend::resend(cx, env).await,
            Input::StatusChanged(_)
            | Input::Dispatched(_)
            | Input::Delivered(_)
            | Input::Exception(_)
            | Input::InvoiceIssued(_)
            | Input::CreditNoteIssued(_)
            | Input::SetupOverdue(_)
            | Input::SetupInvited(_)
            | Input::SetupCompleted(_) => Err(HandlerError::permanent(
                "an order event that is not an order event (a bug in OrderEvent::of)",
            )),
        }
    }

    /// The entity each message changes, from the decoded message: a receipt its request, a
    /// settings update its store, a registration its endpoint, an order event its order.
    async fn lock_keys(
        &self,
        msg: &Incoming,
        _conn: &mut PgConnection,
    ) -> Result<Vec<LockKey>, HandlerError> {
        let Ok(input) = msg.input::<Input>() else {
            return Ok(Vec::new());
        };
        let order = |id: Uuid| LockKey::exclusive("order", id);
        Ok(vec![match input {
            Input::Sent(env) => LockKey::exclusive("request", env.payload.request_id),
            Input::Failed(env) => LockKey::exclusive("request", env.payload.request_id),
            Input::Settings(env) => LockKey::exclusive("store", &env.payload.store_id),
            Input::EndpointRegistered(env) => {
                LockKey::exclusive("endpoint", env.payload.endpoint_id)
            }
            Input::StatusChanged(env) => order(env.payload.order_id),
            Input::Dispatched(env) => order(env.payload.order_id),
            Input::Delivered(env) => order(env.payload.order_id),
            Input::Exception(env) => order(env.payload.order_id),
            Input::InvoiceIssued(env) => order(env.payload.order_id),
            Input::CreditNoteIssued(env) => order(env.payload.order_id),
            Input::Resend(env) => order(env.payload.order_id),
            Input::SetupOverdue(env) => order(env.payload.order_id),
            Input::SetupInvited(env) => order(env.payload.order_id),
            Input::SetupCompleted(env) => order(env.payload.order_id),
        }])
    }
}

/// A payload we built that breaks its own contract is a bug: dead-letter the cause with the
/// reason rather than publish something the notification system would refuse.
fn checked<P: Validate>(payload: P) -> Result<P, String> {
    payload
        .validate()
        .map_err(|e| format!("the rendered notification breaks its contract: {e}"))?;
    Ok(payload)
}

// --- settings and endpoints ------------------------------------------------------------------

#[tracing::instrument(skip_all, fields(message_id = %env.message_id))]
async fn settings_updated(
    cx: &mut HandlerContext<'_>,
    env: &Envelope<StoreNotificationSettingsUpdated>,
) -> Result<(), HandlerError> {
    let s = &env.payload;
    for (i, t) in s.templates.iter().enumerate() {
        for (field, text) in [("subject", &t.subject), ("body", &t.body)] {
            domain::check_template(text).map_err(|e| {
                HandlerError::permanent(format!(
                    "contract violation: payload.templates[{i}].{field}: {e}"
                ))
            })?;
        }
    }
    if store::upsert_settings(cx.conn, s).await? {
        info!(store_id = %s.store_id, revision = s.revision, "notification settings updated");
    } else {
        info!(store_id = %s.store_id, revision = s.revision, "older or repeated notification settings ignored");
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(message_id = %env.message_id))]
async fn endpoint_registered(
    cx: &mut HandlerContext<'_>,
    env: &Envelope<WebhookEndpointRegistered>,
) -> Result<(), HandlerError> {
    let e = &env.payload;
    // An endpoint the SSRF policy will always refuse is refused now, with the reason.
    domain::check_endpoint_url(&e.url, e.allow_private)
        .map_err(|reason| HandlerError::permanent(format!("payload.url: {reason}")))?;
    if store::upsert_endpoint(cx.conn, e).await? {
        info!(endpoint_id = %e.endpoint_id, revision = e.revision, enabled = e.enabled, "webhook endpoint registered");
    } else {
        info!(endpoint_id = %e.endpoint_id, revision = e.revision, "older or repeated endpoint registration ignored");
    }
    Ok(())
}

// --- order events ----------------------------------------------------------------------------

/// What an order event means for notifications, decoded from any of the six types.
struct OrderEvent {
    order_id: Uuid,
    store_id: String,
    event: NotificationEvent,
    kind: Kind,
    /// Status change sequence, shipment (and exception status) or document id.
    reference: String,
    vars: BTreeMap<&'static str, String>,
    attachments: Vec<DocumentRef>,
}

enum Kind {
    Status {
        sequence: i64,
        status: OrderStatus,
        /// The order has nothing to ship (every line a service): no "delivered" for the
        /// customer.
        nothing_to_ship: bool,
        contact: orderly_contracts::messages::CustomerContact,
        external_order_id: String,
    },
    Shipment {
        shipment_id: Uuid,
        step: ShipmentStep,
        status: Option<ShipmentStatus>,
    },
    Document,
}

impl OrderEvent {
    /// The order event `input` is, if it is one of the six.
    fn of(input: &Input) -> Result<Option<OrderEvent>, HandlerError> {
        let mut vars = BTreeMap::new();
        Ok(Some(match input {
            Input::StatusChanged(env) => {
                let p = env.payload.clone();
                let sequence = i64::try_from(p.sequence)
                    .map_err(|_| HandlerError::permanent("payload.sequence is out of range"))?;
                if let Some(reason) = &p.reason {
                    vars.insert("reason", reason.clone());
                }
                OrderEvent {
                    order_id: p.order_id,
                    store_id: p.store_id.to_string(),
                    event: domain::event_for_status(p.to),
                    reference: sequence.to_string(),
                    kind: Kind::Status {
                        sequence,
                        status: p.to,
                        nothing_to_ship: p.nothing_to_ship,
                        contact: p.customer,
                        external_order_id: p.external_order_id,
                    },
                    vars,
                    attachments: Vec::new(),
                }
            }
            Input::Dispatched(env) => {
                let p = env.payload.clone();
                vars.insert("carrier", p.carrier.clone());
                vars.insert("tracking_number", p.tracking_number.clone());
                vars.insert(
                    "tracking_url",
                    p.tracking_url.clone().unwrap_or(p.tracking_number.clone()),
                );
                OrderEvent {
                    order_id: p.order_id,
                    store_id: p.store_id.to_string(),
                    event: NotificationEvent::ShipmentDispatched,
                    reference: p.shipment_id.to_string(),
                    kind: Kind::Shipment {
                        shipment_id: p.shipment_id,
                        step: ShipmentStep::Dispatched,
                        status: None,
                    },
                    vars,
                    attachments: Vec::new(),
                }
            }
            Input::Delivered(env) => {
                let p = env.payload.clone();
                vars.insert("carrier", p.carrier.clone());
                vars.insert("tracking_number", p.tracking_number.clone());
                OrderEvent {
                    order_id: p.order_id,
                    store_id: p.store_id.to_string(),
                    event: NotificationEvent::ShipmentDelivered,
                    reference: p.shipment_id.to_string(),
                    kind: Kind::Shipment {
                        shipment_id: p.shipment_id,
                        step: ShipmentStep::Delivered,
                        status: None,
                    },
                    vars,
                    attachments: Vec::new(),
                }
            }
            Input::Exception(env) => {
                let p = env.payload.clone();
                vars.insert("carrier", p.carrier.clone());
                vars.insert("tracking_number", p.tracking_number.clone());
                vars.insert(
                    "reason",
                    p.description.clone().unwrap_or(p.raw_status.clone()),
                );
                OrderEvent {
                    order_id: p.order_id,
                    store_id: p.store_id.to_string(),
                    event: NotificationEvent::ShipmentException,
                    reference: domain::exception_reference(&p.shipment_id.to_string(), p.status),
                    kind: Kind::Shipment {
                        shipment_id: p.shipment_id,
                        step: ShipmentStep::Exception,
                        status: Some(p.status),
                    },
                    vars,
                    attachments: Vec::new(),
                }
            }
            Input::InvoiceIssued(env) => {
                let p = env.payload.clone();
                vars.insert("invoice_number", p.invoice_number.clone());
                vars.insert("amount", format!("{} {}", p.totals.gross, p.currency));
                OrderEvent {
                    order_id: p.order_id,
                    store_id: p.store_id.to_string(),
                    event: NotificationEvent::InvoiceIssued,
                    reference: p.invoice_id.to_string(),
                    kind: Kind::Document,
                    vars,
                    attachments: vec![p.pdf],
                }
            }
            Input::CreditNoteIssued(env) => {
                let p = env.payload.clone();
                vars.insert("invoice_number", p.invoice_number.clone());
                vars.insert("credit_note_number", p.credit_note_number.clone());
                vars.insert("amount", format!("{} {}", p.totals.gross, p.currency));
                OrderEvent {
                    order_id: p.order_id,
                    store_id: p.store_id.to_string(),
                    event: NotificationEvent::CreditNoteIssued,
                    reference: p.credit_note_id.to_string(),
                    kind: Kind::Document,
                    vars,
                    attachments: vec![p.pdf],
                }
            }
            Input::SetupOverdue(env) => {
                let p = env.payload.clone();
                vars.insert("product", p.sku.to_string());
                vars.insert("stage", p.stage.clone());
                vars.insert("due", p.due_at.format("%Y-%m-%d %H:%M UTC").to_string());
                OrderEvent {
                    order_id: p.order_id,
                    store_id: p.store_id.to_string(),
                    event: NotificationEvent::SetupOverdue,
                    // One stage visit: the setup and its sequence when it became overdue.
                    reference: format!("{}:{}", p.setup_id, p.sequence),
                    kind: Kind::Document,
                    vars,
                    attachments: Vec::new(),
                }
            }
            Input::SetupInvited(env) => {
                let p = env.payload.clone();
                vars.insert("product", p.sku.to_string());
                vars.insert("stage", p.stage_title.clone());
                vars.insert("link", p.url.clone());
                vars.insert(
                    "expires",
                    p.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                );
                OrderEvent {
                    order_id: p.order_id,
                    store_id: p.store_id.to_string(),
                    event: domain::event_for_invitation(p.task, p.reminder),
                    // One invitation: the setup, its wait and the reminder's number.
                    reference: format!("{}:{}:{}", p.setup_id, p.sequence, p.reminder),
                    kind: Kind::Document,
                    vars,
                    attachments: Vec::new(),
                }
            }
            Input::SetupCompleted(env) => {
                let p = env.payload.clone();
                vars.insert("product", p.sku.to_string());
                OrderEvent {
                    order_id: p.order_id,
                    store_id: p.store_id.to_string(),
                    event: NotificationEvent::SetupCompleted,
                    reference: p.setup_id.to_string(),
                    kind: Kind::Document,
                    vars,
                    attachments: Vec::new(),
                }
            }
            Input::Sent(_)
            | Input::Failed(_)
            | Input::Settings(_)
            | Input::EndpointRegistered(_)
            | Input::Resend(_) => {
                return Ok(None);
            }
        }))
    }
}

/// Handles one order event. `fresh_arrival` is false for a parked event handled later:
/// its webhooks were queued when it arrived.
#[tracing::instrument(skip_all, fields(message_id = %env.message_id, message_type = %env.message_type))]
async fn order_event(
    cx: &mut HandlerContext<'_>,
    env: &RawEnvelope,
    event: OrderEvent,
    fresh_arrival: bool,
) -> Result<(), HandlerError> {
    let (order, newly_known, (settings, endpoints)) = match &event.kind {
        Kind::Status {
            sequence,
            contact,
            external_order_id,
            ..
        } => {
            let (order, new, context) = store::upsert_order(
                cx.conn,
                event.order_id,
                &event.store_id,
                external_order_id,
                contact,
                *sequence,
                &env.message_type,
            )
            .await?;
            (Some(order), new, context)
        }
        _ => {
            let (order, context) =
                store::order_context(cx.conn, event.order_id, &event.store_id, &env.message_type)
                    .await?;
            (order, false, context)
        }
    };
    // The dispatcher in this process sends queued deliveries once this batch has committed.
    if fresh_arrival && queue_webhooks(cx.conn, env, &event, &endpoints).await? {
        cx.wake_after_commit();
    }
    let Some(order) = order else {
        let json = serde_json::to_value(env)
            .map_err(|e| HandlerError::permanent(format!("cannot keep the event: {e}")))?;
        store::park(cx.conn, env.message_id, event.order_id, &json).await?;
        info!(order_id = %event.order_id, "order's contact not known yet; event parked");
        return Ok(());
    };
    notify(cx, env, &event, &order, settings.as_ref()).await?;
    if newly_known {
        for parked in store::take_parked(cx.conn, event.order_id).await? {
            let parked: RawEnvelope = serde_json::from_value(parked).map_err(|e| {
                HandlerError::permanent(format!("a parked event no longer decodes: {e}"))
            })?;
            let parked = Incoming::new(parked, 1);
            let parked_event = OrderEvent::of(parked.input::<Input>()?)?
                .ok_or_else(|| HandlerError::permanent("a parked event is not an order event"))?;
            let order = store::load_order(cx.conn, event.order_id)
                .await?
                .ok_or_else(|| HandlerError::transient(anyhow::anyhow!("order vanished")))?;
            notify(
                cx,
                &parked.envelope,
                &parked_event,
                &order,
                settings.as_ref(),
            )
            .await?;
        }
    }
    Ok(())
}

/// Decides and requests the notifications of one event about a known order.
async fn notify(
    cx: &mut HandlerContext<'_>,
    env: &RawEnvelope,
    event: &OrderEvent,
    order: &OrderRow,
    settings: Option<&StoreNotificationSettingsUpdated>,
) -> Result<(), HandlerError> {
    let suppress =
        |audience: Option<NotificationAudience>, reason: String| Suppression { audience, reason };
    // Staleness first: a stale event notifies nobody.
    let shipment_rank = match &event.kind {
        Kind::Shipment { shipment_id, .. } => store::shipment_rank(cx.conn, *shipment_id).await?,
        _ => 0,
    };
    let freshness = match &event.kind {
        Kind::Status {
            sequence, status, ..
        } => domain::judge_status(order.mark, *sequence, *status),
        Kind::Shipment { step, .. } => domain::judge_shipment(order.mark, shipment_rank, *step),
        Kind::Document => Freshness::Fresh,
    };
    if let Freshness::Stale(reason) = freshness {
        record(cx.conn, env, event, &[suppress(None, reason)]).await?;
        return Ok(());
    }
    let rules = domain::effective_rules(settings);
    let store_locale = settings.map(|s| s.locale.as_str().to_owned());
    let store_name = settings.map_or_else(|| order.store_id.clone(), |s| s.store_name.clone());
    let mut vars = event.vars.clone();
    vars.insert("customer_name", order.customer.name.clone());
    vars.insert("order_number", order.external_order_id.clone());
    vars.insert("store_name", store_name);

    // What the order's watermark becomes if anything is requested (written with the request).
    let mark = match &event.kind {
        Kind::Status {
            sequence, status, ..
        } => Some(domain::after_status(order.mark, *sequence, *status)),
        Kind::Shipment { step, .. } => Some(domain::after_shipment(order.mark, *step)),
        Kind::Document => None,
    }
    .filter(|m| *m != order.mark);
    let mut suppressions = Vec::new();
    let mut requested = 0usize;
    let nothing_shipped = matches!(
        event.kind,
        Kind::Status {
            nothing_to_ship: true,
            ..
        }
    );
    for rule in domain::rules_for(&rules, event.event) {
        if nothing_shipped
            && event.event == NotificationEvent::OrderDelivered
            && rule.audience == NotificationAudience::Customer
        {
            suppressions.push(suppress(
                Some(rule.audience),
                "nothing was shipped: every line is a service (the setups tell the client)".into(),
            ));
            continue;
        }
        // (channel, address, locale) of each recipient.
        let recipients: Vec<(NotificationChannel, String, Option<String>)> = match rule.audience {
            NotificationAudience::Customer => match &order.customer.email {
                Some(email) => vec![(
                    NotificationChannel::Email,
                    email.to_string(),
                    Some(order.customer.locale.as_str().to_owned()),
                )],
                None => {
                    suppressions.push(suppress(
                        Some(rule.audience),
                        "the customer has no email address".into(),
                    ));
                    continue;
                }
            },
            NotificationAudience::Staff => {
                let staff: Vec<_> = settings
                    .iter()
                    .flat_map(|s| s.staff_recipients.iter())
                    .filter(|r| r.channel == rule.channel)
                    .map(|r| {
                        (
                            r.channel,
                            r.address.clone(),
                            r.locale.as_ref().map(|l| l.as_str().to_owned()),
                        )
                    })
                    .collect();
                if staff.is_empty() {
                    suppressions.push(suppress(
                        Some(rule.audience),
                        format!("the store has no staff recipients for {}", rule.channel),
                    ));
                    continue;
                }
                staff
            }
        };
        for (channel, address, locale) in recipients {
            let languages = domain::choose_language(locale.as_deref(), store_locale.as_deref());
            let templates = settings
                .as_ref()
                .map(|s| s.templates.as_slice())
                .unwrap_or_default();
            let Some(text) = domain::choose_text(&rule.template, &languages, templates) else {
                suppressions.push(suppress(
                    Some(rule.audience),
                    format!("no template `{}` in any language", rule.template),
                ));
                continue;
            };
            let mut vars = vars.clone();
            match &event.kind {
                Kind::Status { status, .. } => {
                    vars.insert(
                        "status",
                        domain::status_words(*status, &text.language).into(),
                    );
                }
                Kind::Shipment {
                    status: Some(status),
                    ..
                } => {
                    vars.insert(
                        "status",
                        domain::shipment_status_words(*status, &text.language).into(),
                    );
                }
                _ => {}
            }
            let rendered = domain::render(&text.subject, &vars)
                .and_then(|s| domain::render(&text.body, &vars).map(|b| (s, b)));
            let (subject, body) = match rendered {
                Ok(pair) => pair,
                Err(e) => {
                    suppressions.push(suppress(
                        Some(rule.audience),
                        format!(
                            "template `{}` ({}) does not render: {e}",
                            rule.template, text.language
                        ),
                    ));
                    continue;
                }
            };
            // The recipient's own tag when the text is in its language (`de-DE`), else the
            // text's language (`en`).
            let locale = locale
                .filter(|l| l.split('-').next() == Some(text.language.as_str()))
                .unwrap_or_else(|| text.language.clone());
            let request = NotificationRequested {
                request_id: Uuid::now_v7(),
                store_id: order_store(order)?,
                order_id: Some(event.order_id),
                channel,
                recipient: address.clone(),
                locale: Locale::parse(&locale)
                    .map_err(|e| HandlerError::permanent(format!("stored locale: {e}")))?,
                template: rule.template.clone(),
                subject: match channel {
                    NotificationChannel::Sms => None,
                    _ => Some(domain::truncate(&subject, 200)),
                },
                body: match channel {
                    NotificationChannel::Sms => domain::truncate(&body, 1600),
                    _ => body,
                },
                attachments: match channel {
                    NotificationChannel::Email => event.attachments.clone(),
                    _ => Vec::new(),
                },
                retry_of: None,
            };
            let request = match checked(request) {
                Ok(r) => r,
                Err(reason) => {
                    suppressions.push(suppress(Some(rule.audience), reason));
                    continue;
                }
            };
            let key = domain::dedup_key(
                &event.order_id.to_string(),
                event.event,
                &event.reference,
                rule.audience,
                &format!("{channel}:{address}"),
            );
            let about = RequestFor {
                store_id: &event.store_id,
                order_id: Some(event.order_id),
                event: event.event.as_str(),
            };
            if request_once(
                cx,
                env.message_id,
                &about,
                rule.audience,
                &key,
                request,
                1,
                None,
                mark,
            )
            .await?
            {
                requested += 1;
            }
        }
    }
    if requested > 0
        && let Kind::Shipment {
            shipment_id, step, ..
        } = &event.kind
    {
        store::set_shipment_rank(cx.conn, *shipment_id, event.order_id, step.rank()).await?;
    }
    record(cx.conn, env, event, &suppressions).await?;
    debug!(requested, suppressed = suppressions.len(), event = %event.event, "notifications decided");
    Ok(())
}

fn order_store(order: &OrderRow) -> Result<orderly_contracts::types::StoreId, HandlerError> {
    orderly_contracts::types::StoreId::parse(&order.store_id)
        .map_err(|e| HandlerError::permanent(format!("stored store id: {e}")))
}

struct Suppression {
    audience: Option<NotificationAudience>,
    reason: String,
}

async fn record(
    conn: &mut PgConnection,
    env: &RawEnvelope,
    event: &OrderEvent,
    suppressions: &[Suppression],
) -> Result<(), HandlerError> {
    for s in suppressions {
        info!(order_id = %event.order_id, event = %event.event, reason = %s.reason, "notification suppressed");
        store::record_suppression(
            conn,
            &NewSuppression {
                store_id: &event.store_id,
                order_id: Some(event.order_id),
                event: event.event.as_str(),
                reference: &event.reference,
                audience: s.audience.map(|a| a.as_str()),
                reason: &s.reason,
                cause_message_id: env.message_id,
            },
        )
        .await?;
    }
    Ok(())
}

// --- webhooks --------------------------------------------------------------------------------

/// The body POSTed to a merchant endpoint.
#[derive(Serialize)]
struct WebhookBody<'a> {
    /// The event's id (the message id): receivers deduplicate on it.
    id: Uuid,
    /// The event type.
    #[serde(rename = "type")]
    event_type: &'a str,
    /// Schema version of `data`.
    schema_version: u16,
    /// When it happened.
    occurred_at: chrono::DateTime<chrono::Utc>,
    store_id: &'a str,
    order_id: Uuid,
    /// Position of this event among this endpoint's events about this order, from 1.
    sequence: i64,
    /// The event's payload, as in the message contract.
    data: &'a serde_json::Value,
}

async fn queue_webhooks(
    conn: &mut PgConnection,
    env: &RawEnvelope,
    event: &OrderEvent,
    endpoints: &[Uuid],
) -> Result<bool, HandlerError> {
    let mut queued = false;
    if endpoints.is_empty() {
        return Ok(queued);
    }
    let status_sequence = match &event.kind {
        Kind::Status { sequence, .. } => Some(*sequence),
        _ => None,
    };
    let order_key = event.order_id.to_string();
    for &endpoint_id in endpoints {
        let Some(sequence) =
            store::next_chain_sequence(conn, endpoint_id, &order_key, status_sequence).await?
        else {
            info!(%endpoint_id, "status change older than one already queued for the endpoint; not sent");
            continue;
        };
        let body = serde_json::to_string(&WebhookBody {
            id: env.message_id,
            event_type: &env.message_type,
            schema_version: env.schema_version,
            occurred_at: env.occurred_at,
            store_id: &event.store_id,
            order_id: event.order_id,
            sequence,
            data: &env.payload,
        })
        .map_err(|e| HandlerError::permanent(format!("cannot encode the webhook body: {e}")))?;
        queued |= store::insert_delivery(
            conn,
            &NewDelivery {
                delivery_id: Uuid::now_v7(),
                endpoint_id,
                store_id: &event.store_id,
                order_key: &order_key,
                sequence,
                event_id: env.message_id,
                event_type: &env.message_type,
                body: &body,
            },
        )
        .await?;
    }
    Ok(queued)
}

// --- receipts --------------------------------------------------------------------------------

#[tracing::instrument(skip_all, fields(message_id = %env.message_id))]
async fn sent(
    cx: &mut HandlerContext<'_>,
    env: &Envelope<NotificationSent>,
    raw_payload: &serde_json::Value,
) -> Result<(), HandlerError> {
    let message_id = env.message_id;
    let p = &env.payload;
    match store::find_request(cx.conn, p.request_id).await? {
        None => {
            warn!(request_id = %p.request_id, "receipt for an unknown request; kept for operators");
            store::record_unknown_receipt(
                cx.conn,
                message_id,
                p.request_id,
                "sent",
                p.order_id,
                raw_payload,
            )
            .await?;
        }
        Some(_) => {
            let applied = store::mark_sent(
                cx.conn,
                p.request_id,
                p.delivered_at,
                p.provider.as_deref(),
                p.provider_message_id.as_deref(),
            )
            .await?;
            info!(request_id = %p.request_id, applied, "notification sent");
        }
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(message_id = %env.message_id))]
async fn failed(
    cx: &mut HandlerContext<'_>,
    env: &Envelope<NotificationFailed>,
    raw_payload: &serde_json::Value,
    policy: &NotificationsHandler,
) -> Result<(), HandlerError> {
    let NotificationsHandler {
        max_attempts,
        name_retries,
    } = *policy;
    let message_id = env.message_id;
    let p = &env.payload;
    let Some(request) = store::find_request(cx.conn, p.request_id).await? else {
        warn!(request_id = %p.request_id, "failure receipt for an unknown request; kept for operators");
        store::record_unknown_receipt(
            cx.conn,
            message_id,
            p.request_id,
            "failed",
            p.order_id,
            raw_payload,
        )
        .await?;
        return Ok(());
    };
    if request.status != "requested" {
        info!(request_id = %p.request_id, status = %request.status, "late or repeated receipt ignored");
        return Ok(());
    }
    let attempt = u32::try_from(request.attempt).unwrap_or(1);
    match domain::after_failure(attempt, p.permanent, max_attempts) {
        domain::AfterFailure::GiveUp => {
            store::mark_failed(
                cx.conn,
                p.request_id,
                "failed",
                p.failed_at,
                &p.error,
                p.permanent,
            )
            .await?;
            warn!(request_id = %p.request_id, attempt, permanent = p.permanent, error = %p.error, "notification failed for good");
        }
        domain::AfterFailure::Retry(next) => {
            store::mark_failed(
                cx.conn,
                p.request_id,
                "retried",
                p.failed_at,
                &p.error,
                false,
            )
            .await?;
            let mut again: NotificationRequested = serde_json::from_value(request.payload.clone())
                .map_err(|e| {
                    HandlerError::permanent(format!("stored request does not decode: {e}"))
                })?;
            again.request_id = Uuid::now_v7();
            again.retry_of = name_retries.then_some(p.request_id);
            let first = request.first_request_id.unwrap_or(request.request_id);
            let base = request
                .dedup_key
                .split_once("#attempt")
                .map_or(request.dedup_key.as_str(), |(b, _)| b)
                .to_owned();
            let key = format!("{base}#attempt{next}");
            let about = RequestFor {
                store_id: &request.store_id,
                order_id: request.order_id,
                event: &request.event,
            };
            let audience: NotificationAudience = request
                .audience
                .parse()
                .map_err(|e| HandlerError::permanent(format!("stored audience: {e}")))?;
            let next_i32 = i32::try_from(next).unwrap_or(i32::MAX);
            request_once(
                cx,
                message_id,
                &about,
                audience,
                &key,
                again,
                next_i32,
                Some(first),
                None,
            )
            .await?;
            info!(request_id = %p.request_id, attempt = next, "notification failed; requested again");
        }
    }
    Ok(())
}
