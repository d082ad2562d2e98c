//! Notifications: what Orderly asks the notification system to deliver, and what it reports.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::common::{DocumentRef, e164};
use crate::envelope::Message;
use crate::error::ContractError;
use crate::types::{EmailAddress, Locale, StoreId};
use crate::validate::{At, Validate, count, ensure, opt_text, text};

string_enum! {
    /// How a notification reaches its recipient.
    pub enum NotificationChannel {
        /// Email; `recipient` is an address.
        Email = "email",
        /// Text message; `recipient` is an E.164 number (`+491701234567`).
        Sms = "sms",
        /// Push notification; `recipient` is a device token.
        Push = "push",
    }
}

/// A template key: lowercase letters, digits, `_`, `.` and `-` (`order.shipped`).
fn template_key(s: &str) -> Result<(), String> {
    ensure(
        (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b)),
        || format!("`{s}` is not a template key (lowercase letters, digits, _ . -)"),
    )
}

/// `notification.requested`: deliver this message to this person.
///
/// The notifications worker has already chosen the template and rendered it in the
/// recipient's language; the notification system only delivers, and answers with
/// `notification.sent` or `notification.failed` quoting `request_id`, `order_id` and
/// `template`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationRequested {
    /// Id of the request; deliver at most once per id.
    pub request_id: Uuid,
    /// The store it is sent for (sender identity, branding).
    pub store_id: StoreId,
    /// The order it is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Uuid>,
    /// How to deliver.
    pub channel: NotificationChannel,
    /// Email address, E.164 phone number or push token, as `channel` says.
    #[schemars(length(max = 4096))]
    pub recipient: String,
    /// Language the text is in.
    pub locale: Locale,
    /// The template it was rendered from (`order.shipped`), for reporting.
    pub template: String,
    /// Subject line; required for email, absent for SMS, the title for push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 200))]
    pub subject: Option<String>,
    /// The rendered text (plain text; at most 1,600 characters for SMS).
    pub body: String,
    /// Documents to attach (invoice PDFs); email only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<DocumentRef>,
    /// The request this one retries (the attempt that failed); absent on a first request.
    /// Added in this release: Orderly sends it only where the deployment says the
    /// notification system knows it (`[notifications] name_retries`), and from the next
    /// release always (see Versioning in the contracts README).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<Uuid>,
}

impl Message for NotificationRequested {
    const TYPE: &'static str = "notification.requested";
    const VERSION: u16 = 1;
}

impl Validate for NotificationRequested {
    fn validate(&self) -> Result<(), ContractError> {
        match self.channel {
            NotificationChannel::Email => {
                EmailAddress::parse(&self.recipient)
                    .map_err(|e| e.reason().to_owned())
                    .at("payload.recipient")?;
                ensure(self.subject.is_some(), || "required for email".to_owned())
                    .at("payload.subject")?;
            }
            NotificationChannel::Sms => {
                e164(&self.recipient).at("payload.recipient")?;
                ensure(self.subject.is_none(), || {
                    "text messages have no subject".to_owned()
                })
                .at("payload.subject")?;
            }
            NotificationChannel::Push => text(&self.recipient, 4096).at("payload.recipient")?,
        }
        ensure(
            self.channel == NotificationChannel::Email || self.attachments.is_empty(),
            || format!("only email carries attachments, this is {}", self.channel),
        )
        .at("payload.attachments")?;
        template_key(&self.template).at("payload.template")?;
        opt_text(self.subject.as_ref(), 200).at("payload.subject")?;
        let max_body = if self.channel == NotificationChannel::Sms {
            1600
        } else {
            100_000
        };
        text(&self.body, max_body).at("payload.body")?;
        count(&self.attachments, 0, 10).at("payload.attachments")?;
        for (i, attachment) in self.attachments.iter().enumerate() {
            attachment.check(&format!("payload.attachments[{i}]"))?;
        }
        Ok(())
    }
}

/// `notification.sent`: the notification system delivered a notification (handed it to the
/// mail server, SMS gateway or push service). Recorded on the order's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationSent {
    /// The request delivered.
    pub request_id: Uuid,
    /// The order, as in the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Uuid>,
    /// How it was delivered.
    pub channel: NotificationChannel,
    /// The template, as in the request.
    pub template: String,
    /// When it was delivered.
    pub delivered_at: DateTime<Utc>,
    /// Who delivered it (`ses`, `twilio`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub provider: Option<String>,
    /// The provider's message id, for tracing a complaint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub provider_message_id: Option<String>,
}

impl Message for NotificationSent {
    const TYPE: &'static str = "notification.sent";
    const VERSION: u16 = 1;
}

impl Validate for NotificationSent {
    fn validate(&self) -> Result<(), ContractError> {
        template_key(&self.template).at("payload.template")?;
        opt_text(self.provider.as_ref(), 64).at("payload.provider")?;
        opt_text(self.provider_message_id.as_ref(), 256).at("payload.provider_message_id")
    }
}

/// `notification.failed`: the notification system gave up on a notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationFailed {
    /// The request that failed.
    pub request_id: Uuid,
    /// The order, as in the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Uuid>,
    /// The channel tried.
    pub channel: NotificationChannel,
    /// The template, as in the request.
    pub template: String,
    /// When it gave up.
    pub failed_at: DateTime<Utc>,
    /// What went wrong, as the provider said it ("550 5.1.1 mailbox unavailable").
    #[schemars(length(max = 2000))]
    pub error: String,
    /// Whether retrying cannot help (bounced address, invalid number): then the address
    /// should not be used again.
    pub permanent: bool,
}

impl Message for NotificationFailed {
    const TYPE: &'static str = "notification.failed";
    const VERSION: u16 = 1;
}

impl Validate for NotificationFailed {
    fn validate(&self) -> Result<(), ContractError> {
        template_key(&self.template).at("payload.template")?;
        text(&self.error, 2000).at("payload.error")
    }
}

string_enum! {
    /// An event a store can be notified about. Order statuses come from
    /// `order.status_changed`, the others from the message of the same name.
    pub enum NotificationEvent {
        /// The order was accepted (`order.status_changed` to `accepted`): the confirmation.
        OrderAccepted = "order.accepted",
        /// The order waits for an operator (`on_hold`).
        OrderOnHold = "order.on_hold",
        /// Not enough stock; the order waits for it (`backordered`).
        OrderBackordered = "order.backordered",
        /// Stock reserved, shipments requested (`processing`).
        OrderProcessing = "order.processing",
        /// Some shipments have left (`partially_shipped`).
        OrderPartiallyShipped = "order.partially_shipped",
        /// Every shipment has left (`shipped`).
        OrderShipped = "order.shipped",
        /// Every shipment was delivered (`delivered`).
        OrderDelivered = "order.delivered",
        /// Every shipment delivered: nothing left to do (`completed`).
        OrderCompleted = "order.completed",
        /// The order was cancelled (`cancelled`).
        OrderCancelled = "order.cancelled",
        /// One shipment left a warehouse, with its tracking number and link
        /// (`shipment.dispatched`).
        ShipmentDispatched = "shipment.dispatched",
        /// One shipment was delivered (`shipment.delivered`).
        ShipmentDelivered = "shipment.delivered",
        /// A delivery failed, a parcel is coming back, or needs a human (`shipment.exception`).
        ShipmentException = "shipment.exception",
        /// An invoice was issued; its PDF is attached (`invoice.issued`).
        InvoiceIssued = "invoice.issued",
        /// A credit note was issued; its PDF is attached (`credit_note.issued`).
        CreditNoteIssued = "credit_note.issued",
        /// A merchant webhook endpoint was disabled after repeated failures.
        WebhookEndpointDisabled = "webhook.endpoint_disabled",
        /// A setup of a service product is past its stage's SLA (`setup.overdue`).
        SetupOverdue = "setup.overdue",
        /// A setup's client is asked to fill in its intake form, with their link
        /// (`setup.client_invited`, task `intake`).
        SetupIntakeRequested = "setup.intake_requested",
        /// A setup's client is asked to approve a stage, with their link
        /// (`setup.client_invited`, task `approval`).
        SetupApprovalRequested = "setup.approval_requested",
        /// A setup still waits for its client: a reminder with a fresh link
        /// (`setup.client_invited` with `reminder` ≥ 1).
        SetupClientReminder = "setup.client_reminder",
        /// A setup went through every stage (`setup.completed`).
        SetupCompleted = "setup.completed",
    }
}

string_enum! {
    /// Who a notification rule addresses.
    pub enum NotificationAudience {
        /// The buyer, at the contact the order carries.
        Customer = "customer",
        /// The store's staff, at `staff_recipients`.
        Staff = "staff",
    }
}

/// Someone on the store's staff who gets staff notifications.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffRecipient {
    /// How to reach them.
    pub channel: NotificationChannel,
    /// Email address, E.164 number or push token, as `channel` says.
    #[schemars(length(max = 4096))]
    pub address: String,
    /// Their language; the store's `locale` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<Locale>,
}

/// A store's rule for one event and audience; replaces the built-in default for that pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationRule {
    /// The event.
    pub event: NotificationEvent,
    /// Who is told.
    pub audience: NotificationAudience,
    /// `false` turns the event off for this audience (also a built-in default).
    pub enabled: bool,
    /// How. Customers are reached by email (order events carry only their email address);
    /// staff recipients with this channel are used.
    pub channel: NotificationChannel,
    /// Template key; the built-in template named like the event when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// A store's own text for a template in one language; replaces the built-in text.
///
/// Variables are written `{name}`: `customer_name`, `order_number`, `store_name`, `status`,
/// `reason`, `carrier`, `tracking_number`, `tracking_url`, `invoice_number`,
/// `credit_note_number`, `amount`, `endpoint_url`, and for setups `product`, `stage`, `due`. `{{` and `}}` are literal braces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationTemplate {
    /// Template key (`order.shipped`, or a store's own like `order.shipped.express`).
    pub key: String,
    /// Language of the text; matched by language (`de` serves `de-AT`).
    pub locale: Locale,
    /// Subject line (email) or title (push); SMS ignores it.
    #[schemars(length(max = 200))]
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// `store.notification_settings_updated`: who a store's notifications go to, in which
/// language, by which rules and templates (set up through the admin API).
///
/// Carries the complete settings, not a diff; `revision` increases with every change and
/// the highest wins, so late or repeated messages are safe. Events without a rule here use
/// the built-in defaults (see `docs/notifications.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreNotificationSettingsUpdated {
    /// The store.
    pub store_id: StoreId,
    /// Settings version, from 1, increasing with every change.
    pub revision: u64,
    /// The store's name as customers know it (signs the messages).
    #[schemars(length(max = 200))]
    pub store_name: String,
    /// The store's language: used when the customer's language has no template.
    pub locale: Locale,
    /// Who gets staff notifications (orders on hold, disabled webhooks), at most 20.
    #[serde(default)]
    pub staff_recipients: Vec<StaffRecipient>,
    /// Rules replacing the defaults, one per event and audience, at most 100.
    #[serde(default)]
    pub rules: Vec<NotificationRule>,
    /// The store's own template texts, one per key and locale, at most 200.
    #[serde(default)]
    pub templates: Vec<NotificationTemplate>,
}

impl Message for StoreNotificationSettingsUpdated {
    const TYPE: &'static str = "store.notification_settings_updated";
    const VERSION: u16 = 1;
}

/// Checks a recipient address for its channel.
fn recipient(channel: NotificationChannel, address: &str) -> Result<(), String> {
    match channel {
        NotificationChannel::Email => EmailAddress::parse(address)
            .map(drop)
            .map_err(|e| e.reason().to_owned()),
        NotificationChannel::Sms => e164(address),
        NotificationChannel::Push => text(address, 4096),
    }
}

impl Validate for StoreNotificationSettingsUpdated {
    fn validate(&self) -> Result<(), ContractError> {
        super::common::counts_from_one(self.revision, "payload.revision")?;
        text(&self.store_name, 200).at("payload.store_name")?;
        count(&self.staff_recipients, 0, 20).at("payload.staff_recipients")?;
        for (i, r) in self.staff_recipients.iter().enumerate() {
            recipient(r.channel, &r.address)
                .at_with(|| format!("payload.staff_recipients[{i}].address"))?;
        }
        count(&self.rules, 0, 100).at("payload.rules")?;
        let mut seen = std::collections::HashSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            ensure(seen.insert((rule.event, rule.audience)), || {
                format!(
                    "a second rule for {} to {}; give one rule per event and audience",
                    rule.event, rule.audience
                )
            })
            .at_with(|| format!("payload.rules[{i}]"))?;
            ensure(
                rule.audience != NotificationAudience::Customer
                    || rule.channel == NotificationChannel::Email,
                || {
                    format!(
                        "customers are reached by email (order events carry only an email address), not {}",
                        rule.channel
                    )
                },
            )
            .at_with(|| format!("payload.rules[{i}].channel"))?;
            if let Some(key) = &rule.template {
                template_key(key).at_with(|| format!("payload.rules[{i}].template"))?;
            }
        }
        count(&self.templates, 0, 200).at("payload.templates")?;
        let mut seen = std::collections::HashSet::new();
        for (i, t) in self.templates.iter().enumerate() {
            template_key(&t.key).at_with(|| format!("payload.templates[{i}].key"))?;
            ensure(seen.insert((t.key.as_str(), t.locale.as_str())), || {
                format!("a second text for `{}` in {}", t.key, t.locale)
            })
            .at_with(|| format!("payload.templates[{i}]"))?;
            text(&t.subject, 200).at_with(|| format!("payload.templates[{i}].subject"))?;
            text(&t.body, 20_000).at_with(|| format!("payload.templates[{i}].body"))?;
        }
        Ok(())
    }
}

/// `notification.resend_requested`: an operator asks for a customer notification of an
/// order to be sent again (the customer lost the confirmation, the tracking mail went to
/// spam). The notifications worker requests the newest customer notification of the order
/// (of `event`, when given) again, as it was rendered, to the same recipient, and answers
/// with `order.request_answered`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationResendRequested {
    /// Id of this request; re-sending it with the same id resends once.
    pub request_id: Uuid,
    /// Orderly's order id.
    pub order_id: Uuid,
    /// The order's store.
    pub store_id: StoreId,
    /// Who asks.
    pub requested_by: super::common::Actor,
    /// Which notification: the newest of this event; absent, the newest of any event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<NotificationEvent>,
}

impl Message for NotificationResendRequested {
    const TYPE: &'static str = "notification.resend_requested";
    const VERSION: u16 = 1;
}

impl Validate for NotificationResendRequested {
    fn validate(&self) -> Result<(), ContractError> {
        self.requested_by.check("payload.requested_by")
    }
}

/// This area's message types, as catalog entries: who sends each, what it says, which
/// queues receive it (the routing table is derived from these) and its golden example.
pub(crate) fn specs() -> Vec<crate::catalog::MessageSpec> {
    use crate::catalog::entry;
    use crate::routing::queues::*;
    vec![
        entry!(
            NotificationRequested,
            example: golden::notification_requested,
            from: "notifications",
            says: "deliver this rendered message to this recipient",
            // The API shows what the customer was sent (and, from sent/failed, what became of it).
            to: [API, OUT_NOTIFICATION_SYSTEM],
        ),
        entry!(
            NotificationResendRequested,
            example: golden::notification_resend_requested,
            from: "operators (admin API)",
            says: "send an order's newest customer notification (of an event) again",
            to: [NOTIFICATIONS],
        ),
        entry!(
            NotificationSent,
            example: golden::notification_sent,
            from: "notification system",
            says: "it was delivered",
            to: [ORDERS, NOTIFICATIONS, API],
            only_from_outside,
        ),
        entry!(
            NotificationFailed,
            example: golden::notification_failed,
            from: "notification system",
            says: "it could not be delivered (and whether retrying can help)",
            to: [ORDERS, NOTIFICATIONS, API],
            only_from_outside,
        ),
        entry!(
            StoreNotificationSettingsUpdated,
            example: golden::store_notification_settings_updated,
            from: "admin API",
            says: "a store's notification language, staff recipients, rules and template texts",
            to: [NOTIFICATIONS],
            only_from_outside,
        ),
    ]
}

/// The golden examples of this area's types: their part of the story told in
/// [`crate::examples`] (one order from checkout to refund), with its cast and ids.
mod golden {
    use serde_json::{Value, json};

    use crate::examples::*;
    use crate::messages::*;

    pub(super) fn notification_requested() -> Value {
        envelope::<NotificationRequested>(
            Meta {
                n: 0x1d,
                correlation: ORDER,
                causation: Some(0x17),
                at: "2026-03-15T04:12:09.911Z",
                producer: "notifications",
                span: Some("6071829304152637"),
            },
            json!({
                "request_id": NOTIFICATION,
                "store_id": STORE,
                "order_id": ORDER,
                "channel": "email",
                "recipient": "joerg.schaefer@example.de",
                "locale": "de-DE",
                "template": "order.shipped",
                "subject": "Deine Bestellung 100234 ist unterwegs",
                "body": format!(
                    "Hallo Jörg,\n\ndeine Bestellung 100234 hat unser Lager verlassen und ist mit DHL unterwegs.\n\
                     Sendungsnummer: {TRACKING}\n\nViele Grüße\ndein Team von shop-de"
                )
            }),
        )
    }

    pub(super) fn notification_resend_requested() -> Value {
        envelope::<NotificationResendRequested>(
            Meta {
                n: 0x29,
                correlation: ORDER,
                causation: None,
                at: "2026-03-16T08:12:03Z",
                producer: "api",
                span: Some("c3d4e5f607182930"),
            },
            json!({
                "request_id": RESEND_REQUEST,
                "order_id": ORDER,
                "store_id": STORE,
                "requested_by": { "kind": "operator", "id": "anna.becker@example.de" },
                "event": "shipment.dispatched"
            }),
        )
    }

    pub(super) fn notification_sent() -> Value {
        envelope::<NotificationSent>(
            Meta {
                n: 0x1e,
                correlation: ORDER,
                causation: Some(0x1d),
                at: "2026-03-15T04:12:11.204Z",
                producer: "notification-system",
                span: None,
            },
            json!({
                "request_id": NOTIFICATION,
                "order_id": ORDER,
                "channel": "email",
                "template": "order.shipped",
                "delivered_at": "2026-03-15T04:12:11Z",
                "provider": "ses",
                "provider_message_id": "0102018e3f6c2b1a-7d4e9c2f-5b8a-4e1d-9c3f-2a7b6d8e0f11-000000"
            }),
        )
    }

    pub(super) fn notification_failed() -> Value {
        envelope::<NotificationFailed>(
            Meta {
                n: 0x1f,
                correlation: ORDER,
                causation: Some(0x33),
                at: "2026-03-16T06:30:02Z",
                producer: "notification-system",
                span: None,
            },
            json!({
                "request_id": "0195f3a5-4d5e-7f60-9172-8394a5b6c7d8",
                "order_id": ORDER,
                "channel": "sms",
                "template": "order.out_for_delivery",
                "failed_at": "2026-03-16T06:30:01Z",
                "error": "21614: 'To' number is not a valid mobile number",
                "permanent": true
            }),
        )
    }

    pub(super) fn store_notification_settings_updated() -> Value {
        envelope::<StoreNotificationSettingsUpdated>(
            Meta {
                n: 0x21,
                correlation: STORE,
                causation: None,
                at: "2026-01-02T08:45:00Z",
                producer: "admin-api",
                span: None,
            },
            json!({
                "store_id": STORE,
                "revision": 2,
                "store_name": "Beispiel Shop",
                "locale": "de-DE",
                "staff_recipients": [
                    { "channel": "email", "address": "bestellungen@beispiel-shop.de" },
                    { "channel": "sms", "address": "+491701234567", "locale": "de" }
                ],
                "rules": [
                    {
                        "event": "shipment.delivered",
                        "audience": "customer",
                        "enabled": false,
                        "channel": "email"
                    },
                    {
                        "event": "shipment.exception",
                        "audience": "staff",
                        "enabled": true,
                        "channel": "sms",
                        "template": "shipment.exception.short"
                    }
                ],
                "templates": [
                    {
                        "key": "shipment.exception.short",
                        "locale": "de",
                        "subject": "Problem mit Sendung {tracking_number}",
                        "body": "Bestellung {order_number}: {carrier} meldet {status} für {tracking_number}."
                    }
                ]
            }),
        )
    }
}
