//! The webhook dispatcher: sends queued deliveries to merchants' endpoints, signed, in
//! order, with backoff, and disables endpoints that keep failing.
//!
//! # Why a table is the queue
//! The handler inserts a delivery row in the same transaction that handled the event, so a
//! delivery exists exactly when the event was handled: a crash loses nothing and a
//! redelivered event queues nothing twice (unique per endpoint and event). The dispatcher
//! is a background task of the worker process; several copies of the worker can run, each
//! with its own dispatcher: deliveries are claimed with `FOR UPDATE SKIP LOCKED` and a
//! lease (their `next_attempt_at` is pushed out while in flight), so no two dispatchers send
//! the same delivery at the same time. A dispatcher that dies mid-send leaves the lease to
//! expire and the delivery is sent again: at least once, deduplicated by the receiver on the
//! event id.
//!
//! # Order
//! Deliveries of one (endpoint, order) form a chain numbered from 1. Only a chain's head
//! (no earlier pending delivery) is ever claimed, so a later event waits until the earlier
//! one was delivered or given up.
//!
//! # Retries, giving up, disabling
//! A failed attempt (non-2xx, timeout, connection error, refused address) is retried after
//! [`Backoff::delay`]; after `max_attempts` the delivery is given up (and the chain moves on).
//! Every failed attempt counts against the endpoint; a success resets the count. At
//! `disable_after` failures in a row the endpoint is disabled: its deliveries wait,
//! `webhook.endpoint_disabled` is published through the outbox and the store's staff are
//! notified, all in the transaction that records the failure.
//!
//! # SSRF
//! Merchant URLs are untrusted. Unless the endpoint is registered with `allow_private`, the
//! scheme must be https, an IP literal must be public, and a host name is resolved by a
//! resolver that refuses the whole name if any address is loopback, private, link-local,
//! unique-local or otherwise not public ([`crate::domain::forbidden_address`]); the
//! connection goes to the addresses that were checked, so DNS rebinding between check and
//! connect does not help. Redirects are not followed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::StreamExt;
use orderly_contracts::messages::{
    NotificationAudience, NotificationChannel, NotificationEvent, NotificationRequested,
    WebhookEndpointDisabled,
};
use orderly_contracts::types::{Locale, StoreId};
use orderly_contracts::{Envelope, Validate};
use orderly_runtime::LockKey;
use orderly_runtime::drain::{self, Round};
use orderly_runtime::metrics::Metrics;
use orderly_runtime::outbox::{self, OutboxMessage};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use uuid::Uuid;

use crate::domain::{self, Backoff};
use crate::store::{self, Claimed, NewRequest};

/// How the dispatcher sends: `[webhooks]` in the configuration file, or
/// `ORDERLY__WEBHOOKS__<FIELD>` (durations in milliseconds: `timeout_ms`, `poll_interval_ms`,
/// and under `backoff`, `min_delay_ms`, `max_delay_ms`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Delays between attempts of one delivery.
    pub backoff: Backoff,
    /// Attempts per delivery before it is given up.
    pub max_attempts: u32,
    /// Failed attempts in a row (across the endpoint's deliveries) that disable an endpoint.
    pub disable_after: u32,
    /// Time allowed for one attempt (connect, send, answer).
    #[serde(rename = "timeout_ms", with = "orderly_runtime::config::millis")]
    pub timeout: Duration,
    /// Deliveries claimed per round.
    pub batch_size: i64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Longest sleep without a wake-up (a safety net; queued deliveries wake it).
    #[serde(rename = "poll_interval_ms", with = "orderly_runtime::config::millis")]
    pub poll_interval: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            backoff: Backoff::default(),
            max_attempts: 12,
            disable_after: 30,
            timeout: Duration::from_secs(10),
            batch_size: 256,
            concurrency: 64,
            poll_interval: Duration::from_secs(5),
        }
    }
}

/// The dispatcher task.
#[derive(Debug)]
pub struct Dispatcher {
    pool: PgPool,
    settings: WebhookSettings,
    strict: reqwest::Client,
    open: reqwest::Client,
    handoff: Option<outbox::Handoff>,
    wake: drain::Wake,
    metrics: Option<Arc<Metrics>>,
}

/// Resolves host names and refuses any that resolves to a non-public address.
#[derive(Debug)]
struct PublicOnlyResolver;

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some((ip, why)) = addrs
                .iter()
                .find_map(|a| domain::forbidden_address(a.ip()).map(|why| (a.ip(), why)))
            {
                return Err(format!("refused: {host} resolves to {ip} ({why})").into());
            }
            let iter: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(iter)
        })
    }
}

fn client(timeout: Duration, strict: bool) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Orderly-Webhooks/1")
        .pool_max_idle_per_host(64);
    if strict {
        builder = builder.dns_resolver(Arc::new(PublicOnlyResolver));
    }
    Ok(builder.build()?)
}

/// The outcome of one attempt.
#[derive(Debug)]
struct Outcome {
    claimed: Claimed,
    status_code: Option<i32>,
    error: Option<String>,
    duration_ms: i32,
}

impl Dispatcher {
    /// A dispatcher on the worker's pool.
    pub fn new(pool: PgPool, settings: WebhookSettings) -> anyhow::Result<Self> {
        Ok(Self {
            strict: client(settings.timeout, true)?,
            open: client(settings.timeout, false)?,
            pool,
            settings,
            handoff: None,
            wake: drain::Wake::default(),
            metrics: None,
        })
    }

    /// Counts the endpoints it disables in `metrics` (`orderly_webhook_endpoints_disabled`).
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Runs a round when `wake` is woken: the notifications consumer in this process wakes
    /// it after committing queued deliveries (see [`orderly_runtime::Host::wake`]).
    #[must_use]
    pub fn with_wake(mut self, wake: drain::Wake) -> Self {
        self.wake = wake;
        self
    }

    /// Hands the messages it commits (an endpoint disabled) to the relay (see
    /// [`outbox::Handoff`]); without one, the relay's sweep finds them.
    #[must_use]
    pub fn with_handoff(mut self, handoff: Option<outbox::Handoff>) -> Self {
        self.handoff = handoff;
        self
    }

    /// Runs until `shutdown`: claims due deliveries, sends them, records the outcomes; sleeps
    /// until the next is due, a delivery is queued, or the poll interval passes.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = &self;
        drain::run(
            &self.pool,
            self.wake.clone(),
            Some(store::WAKE_CHANNEL),
            "webhook dispatcher",
            shutdown,
            this.settings.poll_interval,
            || async move { Ok(Round::of(this.round().await?, this.settings.batch_size)) },
            || async move {
                let mut conn = this.pool.acquire().await?;
                Ok(store::next_due(&mut conn).await?)
            },
        )
        .await;
    }

    /// One round: claim, send, record. Returns how many deliveries were attempted.
    pub async fn round(&self) -> anyhow::Result<usize> {
        let lease_ms =
            i64::try_from(self.settings.timeout.as_millis()).unwrap_or(60_000) * 2 + 5_000;
        let claimed = {
            let mut conn = self.pool.acquire().await?;
            store::claim_due(&mut conn, self.settings.batch_size, lease_ms).await?
        };
        if claimed.is_empty() {
            return Ok(0);
        }
        let n = claimed.len();
        let mut outcomes: Vec<Outcome> = futures_util::stream::iter(claimed)
            .map(|c| self.send(c))
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        // Lock endpoints in one order (and deliveries by id within one), whatever order the
        // answers came in: two dispatchers never wait for each other in a cycle.
        outcomes.sort_by_key(|o| (o.claimed.endpoint_id, o.claimed.delivery_id));
        let mut tx = self.pool.begin().await?;
        // And first the endpoints' lock keys, as the consumer takes them for a batch of
        // registrations: a registration batch and this recording then take turns on an
        // endpoint instead of locking two endpoint rows in opposite orders.
        let endpoints: Vec<LockKey> = outcomes
            .iter()
            .map(|o| LockKey::exclusive("endpoint", o.claimed.endpoint_id))
            .collect();
        orderly_runtime::lock_entities(&mut tx, crate::NAME, &endpoints).await?;
        let written = self.record(&mut tx, &outcomes).await?;
        tx.commit().await?;
        if let Some(handoff) = &self.handoff {
            handoff.hand(written);
        }
        Ok(n)
    }

    async fn send(&self, claimed: Claimed) -> Outcome {
        let started = Instant::now();
        let result = self.attempt(&claimed).await;
        let duration_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        let (status_code, error) = match result {
            Ok(code) if (200..300).contains(&code) => (Some(i32::from(code)), None),
            Ok(code) => (Some(i32::from(code)), Some(format!("HTTP {code}"))),
            Err(e) => (None, Some(e)),
        };
        Outcome {
            claimed,
            status_code,
            error,
            duration_ms,
        }
    }

    async fn attempt(&self, c: &Claimed) -> Result<u16, String> {
        let url = reqwest::Url::parse(&c.url).map_err(|e| format!("bad URL: {e}"))?;
        domain::check_scheme(url.scheme(), c.allow_private)?;
        if !c.allow_private {
            let host = url
                .host_str()
                .unwrap_or_default()
                .trim_start_matches('[')
                .trim_end_matches(']');
            if let Ok(ip) = host.parse::<IpAddr>()
                && let Some(why) = domain::forbidden_address(ip)
            {
                return Err(format!("refused: {ip} is {why} (SSRF policy)"));
            }
        }
        let timestamp = Utc::now().timestamp();
        let signature = domain::sign(&c.secret, timestamp, c.body.as_bytes());
        let client = if c.allow_private {
            &self.open
        } else {
            &self.strict
        };
        let mut request = client.post(url);
        for (name, value) in domain::webhook_cloudevent(&c.body) {
            request = request.header(name, value);
        }
        let response = request
            .header("content-type", "application/json")
            .header("orderly-event-id", c.event_id.to_string())
            .header("orderly-event-type", &c.event_type)
            .header("orderly-delivery-id", c.delivery_id.to_string())
            .header("orderly-timestamp", timestamp.to_string())
            .header("orderly-signature", format!("v1={signature}"))
            .body(c.body.clone())
            .send()
            .await
            .map_err(|e| describe(&e))?;
        Ok(response.status().as_u16())
    }

    /// Records the outcomes; returns the outbox rows written (an endpoint disabled).
    async fn record(
        &self,
        conn: &mut PgConnection,
        outcomes: &[Outcome],
    ) -> anyhow::Result<Vec<outbox::Written>> {
        let mut written = Vec::new();
        let delivered: Vec<Uuid> = outcomes
            .iter()
            .filter(|o| o.error.is_none())
            .map(|o| o.claimed.delivery_id)
            .collect();
        store::mark_delivered(conn, &delivered).await?;
        let mut last_endpoint = None;
        for o in outcomes {
            let c = &o.claimed;
            store::log_attempt(
                conn,
                c.delivery_id,
                c.attempts,
                o.status_code,
                o.error.as_deref(),
                o.duration_ms,
            )
            .await?;
            let Some(error) = &o.error else {
                if last_endpoint != Some((c.endpoint_id, true)) {
                    store::endpoint_succeeded(conn, c.endpoint_id).await?;
                    last_endpoint = Some((c.endpoint_id, true));
                }
                continue;
            };
            last_endpoint = Some((c.endpoint_id, false));
            let attempts = u32::try_from(c.attempts).unwrap_or(u32::MAX);
            let retry_at = (attempts < self.settings.max_attempts).then(|| {
                let delay = self.settings.backoff.delay(attempts);
                Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX)
            });
            store::mark_attempt_failed(conn, c.delivery_id, error, retry_at).await?;
            if retry_at.is_none() {
                warn!(delivery_id = %c.delivery_id, attempts, error, "webhook delivery given up");
            } else {
                debug!(delivery_id = %c.delivery_id, attempts, error, "webhook attempt failed");
            }
            let Some(endpoint) = store::endpoint_failed(conn, c.endpoint_id).await? else {
                continue;
            };
            let failures = u32::try_from(endpoint.consecutive_failures).unwrap_or(0);
            if !endpoint.already_disabled && failures >= self.settings.disable_after {
                written.extend(disable(conn, c.endpoint_id, &endpoint, failures, error).await?);
                if let Some(metrics) = &self.metrics {
                    metrics.webhook_endpoint_disabled();
                }
            }
        }
        Ok(written)
    }
}

fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Disables the endpoint, publishes `webhook.endpoint_disabled` and notifies the store's
/// staff, in the caller's transaction; returns the outbox rows written.
async fn disable(
    conn: &mut PgConnection,
    endpoint_id: Uuid,
    endpoint: &store::FailedEndpoint,
    failures: u32,
    last_error: &str,
) -> anyhow::Result<Vec<outbox::Written>> {
    let reason = format!("{failures} failed attempts in a row; last: {last_error}");
    if !store::disable_endpoint(conn, endpoint_id, &reason).await? {
        return Ok(Vec::new());
    }
    warn!(%endpoint_id, url = %endpoint.url, failures, "webhook endpoint disabled");
    let store_id = StoreId::parse(&endpoint.store_id)?;
    let disabled = WebhookEndpointDisabled {
        endpoint_id,
        store_id: store_id.clone(),
        revision: u64::try_from(endpoint.revision)?,
        url: endpoint.url.clone(),
        disabled_at: Utc::now(),
        consecutive_failures: failures,
        last_error: domain::truncate(last_error, 2000),
    };
    disabled.validate()?;
    let envelope = Envelope::new(crate::NAME, endpoint.store_id.clone(), disabled);
    let cause = envelope.message_id;
    let mut messages = vec![OutboxMessage::from_envelope(&envelope)];

    // Tell the staff, by the store's rules for this event.
    let settings = store::load_settings(conn, &endpoint.store_id).await?;
    let rules = domain::effective_rules(settings.as_ref());
    let mut vars = std::collections::BTreeMap::new();
    vars.insert("endpoint_url", endpoint.url.clone());
    vars.insert("reason", reason.clone());
    vars.insert(
        "store_name",
        settings
            .as_ref()
            .map_or_else(|| endpoint.store_id.clone(), |s| s.store_name.clone()),
    );
    for rule in domain::rules_for(&rules, NotificationEvent::WebhookEndpointDisabled) {
        if rule.audience != NotificationAudience::Staff {
            continue;
        }
        let staff = settings
            .iter()
            .flat_map(|s| s.staff_recipients.iter())
            .filter(|r| r.channel == rule.channel);
        for recipient in staff {
            let languages = domain::choose_language(
                recipient.locale.as_ref().map(Locale::as_str),
                settings.as_ref().map(|s| s.locale.as_str()),
            );
            let templates = settings
                .as_ref()
                .map(|s| s.templates.as_slice())
                .unwrap_or_default();
            let Some(text) = domain::choose_text(&rule.template, &languages, templates) else {
                continue;
            };
            let (Ok(subject), Ok(body)) = (
                domain::render(&text.subject, &vars),
                domain::render(&text.body, &vars),
            ) else {
                continue;
            };
            let request = NotificationRequested {
                request_id: Uuid::now_v7(),
                store_id: store_id.clone(),
                order_id: None,
                channel: recipient.channel,
                recipient: recipient.address.clone(),
                locale: Locale::parse(&text.language)?,
                template: rule.template.clone(),
                subject: (recipient.channel != NotificationChannel::Sms)
                    .then(|| domain::truncate(&subject, 200)),
                body: if recipient.channel == NotificationChannel::Sms {
                    domain::truncate(&body, 1600)
                } else {
                    body
                },
                attachments: Vec::new(),
                retry_of: None,
            };
            if request.validate().is_err() {
                continue;
            }
            let key = domain::dedup_key(
                &format!("endpoint:{endpoint_id}"),
                NotificationEvent::WebhookEndpointDisabled,
                &format!("{}:{}", endpoint.revision, cause),
                NotificationAudience::Staff,
                &format!("{}:{}", recipient.channel, recipient.address),
            );
            let payload = serde_json::to_value(&request)?;
            let new = store::insert_request(
                conn,
                &NewRequest {
                    request_id: request.request_id,
                    dedup_key: &key,
                    store_id: &endpoint.store_id,
                    order_id: None,
                    event: NotificationEvent::WebhookEndpointDisabled.as_str(),
                    audience: NotificationAudience::Staff.as_str(),
                    template: &request.template,
                    channel: request.channel.as_str(),
                    recipient: &request.recipient,
                    locale: request.locale.as_str(),
                    attempt: 1,
                    first_request_id: None,
                    cause_message_id: cause,
                    payload: &payload,
                    mark: None,
                },
            )
            .await?;
            if new {
                let env = Envelope::new(crate::NAME, endpoint.store_id.clone(), request)
                    .caused_by(&envelope);
                messages.push(OutboxMessage::from_envelope(&env));
            }
        }
    }
    Ok(outbox::insert(conn, &messages).await?)
}
