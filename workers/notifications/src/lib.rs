//! The notifications worker: turns Orderly's status events into notification requests for
//! the external notification system, records what that system reports back, and delivers
//! the same events to merchants' webhooks, signed, ordered and retried.
//!
//! What it owns, in its own schema (`notifications`):
//! - each store's notification settings (`store.notification_settings_updated`, highest
//!   revision wins): its language, name, staff recipients, rules and template texts; built-in
//!   rules and templates (en, de, fr, nl) apply where a store says nothing;
//! - per order: how to reach the customer (from `order.status_changed`) and what was already
//!   notified (the staleness watermark), per shipment how far its notifications went, and
//!   events parked until the order's contact is known;
//! - every `notification.requested` it made (unique per order, event, sequence or document,
//!   audience and recipient), with the receipt recorded against it; suppressions with their
//!   reason; receipts naming requests it never made;
//! - merchant webhook endpoints (`webhook.endpoint_registered`), the delivery queue and the
//!   attempt log.
//!
//! Why it is built this way:
//! - a notification is decided once per business key, in the transaction that handles the
//!   event, and emitted through the outbox: never twice, never lost;
//! - staleness is judged against what was *notified*, so shuffled or late events never send
//!   an older message after a newer one, and each suppression is on record;
//! - a webhook delivery is a row written in that same transaction (the durable queue), and a
//!   background dispatcher ([`webhooks::Dispatcher`]) sends each (endpoint, order) chain in
//!   order, with exponential backoff, disabling endpoints that keep failing;
//! - receipts are the notification system's word: an unknown request id is kept (not an
//!   error, not dropped), a non-permanent failure is requested again within a bounded budget,
//!   then left `failed` for operators.
//!
//! Layers: [`domain`] (pure rules, templates, signing, address policy), [`store`] (all SQL),
//! [`handlers`] (the message handler), [`webhooks`] (the dispatcher), [`ops`] (what the CLI
//! calls), [`bench`] (the benchmark).
//!
//! Assumptions (see `docs/notifications.md`): customers are reached by email only (order
//! events carry no phone number or push token); staff recipients are per store; a retried
//! notification is re-requested at once (the notification system does its own short-term
//! retries); webhook bodies carry the event payload as in the message contract.

#[cfg(feature = "bench")]
pub mod bench;
pub mod domain;
mod handlers;
pub mod ops;
mod request;
mod resend;
mod store;
mod webhooks;

pub use handlers::{NotificationsHandler, NotificationsInput};
pub use ops::{deliveries, failed_notifications, replay_delivery, unknown_receipts};
pub use webhooks::{Dispatcher, WebhookSettings};

/// The notifications settings: `[notifications]` in the configuration file.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationSettings {
    /// Whether a re-request of a failed notification names the request it retries
    /// (`retry_of`). Off by default in this release, because a notification system built
    /// from the previous schema refuses the unknown field: turn it on once yours knows it
    /// (it is on by default from the next release).
    pub name_retries: bool,
}

/// The worker's name: its queue and its schema.
pub const NAME: &str = "notifications";

/// Starts the worker on `host`: its consumer, its outbox relay and its webhook dispatcher.
pub async fn start(
    host: &mut orderly_runtime::Host,
    handler: NotificationsHandler,
    webhooks: WebhookSettings,
) -> anyhow::Result<()> {
    host.start_worker(NAME, handler).await?;
    start_dispatcher(host, webhooks).await
}

/// Starts only the webhook dispatcher on `host` (the consumer started separately).
pub async fn start_dispatcher(
    host: &mut orderly_runtime::Host,
    webhooks: WebhookSettings,
) -> anyhow::Result<()> {
    let pool = host.pool_for(NAME).await?;
    let dispatcher = Dispatcher::new(pool, webhooks)?
        .with_metrics(host.metrics())
        .with_handoff(host.handoff(NAME))
        .with_wake(host.wake(NAME));
    host.spawn_task("webhook-dispatcher", move |shutdown| {
        dispatcher.run(shutdown)
    });
    Ok(())
}
