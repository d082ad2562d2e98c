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
    pub recipient: String,
    /// Language the text is in.
    pub locale: Locale,
    /// The template it was rendered from (`order.shipped`), for reporting.
    pub template: String,
    /// Subject line; required for email, absent for SMS, the title for push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The rendered text (plain text; at most 1,600 characters for SMS).
    pub body: String,
    /// Documents to attach (invoice PDFs); email only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<DocumentRef>,
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
    pub provider: Option<String>,
    /// The provider's message id, for tracing a complaint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
