//! Notifications' rules, with no I/O: which events notify whom (rules and their defaults),
//! in which language, with which text (templates and rendering), which events are stale,
//! what makes a request unique, how failed requests and webhook deliveries are retried, how
//! webhook deliveries are signed, and which network addresses a webhook may not reach.
//!
//! # Rules
//! A rule is (event, audience) → enabled, channel, template. [`default_rules`] are what a
//! store gets without settings; a store's `store.notification_settings_updated` rules replace
//! the default of the same (event, audience) pair ([`effective_rules`]).
//!
//! # Staleness
//! Messages about an order can arrive late, twice and shuffled. What was already *notified*
//! is the watermark ([`Watermark`]): the highest `order.status_changed` sequence notified and
//! the highest status rank notified, plus per shipment the highest shipment rank notified.
//! An event older than the watermark is stale and suppressed (and the suppression recorded
//! by the handler); an equal one is not stale (it is either the same event, which the dedup
//! key stops, or a sibling such as a second exception status of one shipment).
//!
//! # Languages
//! The customer's locale if a template exists in its language, else the store's, else
//! English ([`choose_language`]); `de-AT` is served by `de`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use hmac::{KeyInit, Mac};
use orderly_contracts::messages::{
    ClientTask, NotificationAudience, NotificationChannel, NotificationEvent, NotificationTemplate,
    StoreNotificationSettingsUpdated,
};
use orderly_contracts::types::{OrderStatus, ShipmentStatus};

mod templates;

pub use templates::{BUILTIN_LANGUAGES, builtin};

// --- rules -----------------------------------------------------------------------------------

/// One rule in force: for `event`, tell `audience` by `channel` with `template`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The event.
    pub event: NotificationEvent,
    /// Who is told.
    pub audience: NotificationAudience,
    /// Whether it is on.
    pub enabled: bool,
    /// How.
    pub channel: NotificationChannel,
    /// Template key.
    pub template: String,
    /// Whether this is a built-in default (not set by the store).
    pub default: bool,
}

/// The built-in rules: order confirmation, backorder, each shipment's dispatch with its
/// tracking link, delivery, cancellation, invoices and credit notes with their PDF, to the
/// customer by email; orders on hold, shipment exceptions and disabled webhooks to the
/// store's staff by email, and so are setups past their SLA; a setup's client is asked for
/// its intake form and approvals (with their link), reminded, and told when it is done.
/// Other events notify nobody unless the store adds a rule.
pub fn default_rules() -> Vec<Rule> {
    use NotificationAudience::{Customer, Staff};
    use NotificationEvent as E;
    [
        (E::OrderAccepted, Customer),
        (E::OrderOnHold, Staff),
        (E::OrderBackordered, Customer),
        (E::ShipmentDispatched, Customer),
        (E::OrderDelivered, Customer),
        (E::OrderCancelled, Customer),
        (E::InvoiceIssued, Customer),
        (E::CreditNoteIssued, Customer),
        (E::ShipmentException, Staff),
        (E::WebhookEndpointDisabled, Staff),
        (E::SetupOverdue, Staff),
        (E::SetupIntakeRequested, Customer),
        (E::SetupApprovalRequested, Customer),
        (E::SetupClientReminder, Customer),
        (E::SetupCompleted, Customer),
    ]
    .into_iter()
    .map(|(event, audience)| Rule {
        event,
        audience,
        enabled: true,
        channel: NotificationChannel::Email,
        template: event.as_str().to_owned(),
        default: true,
    })
    .collect()
}

/// The rules in force for a store: its own rules, and the defaults for every (event,
/// audience) pair it has no rule for. Sorted by event, then audience.
pub fn effective_rules(settings: Option<&StoreNotificationSettingsUpdated>) -> Vec<Rule> {
    let mut rules: BTreeMap<(&str, &str), Rule> = default_rules()
        .into_iter()
        .map(|r| ((r.event.as_str(), r.audience.as_str()), r))
        .collect();
    for rule in settings.map(|s| s.rules.as_slice()).unwrap_or_default() {
        rules.insert(
            (rule.event.as_str(), rule.audience.as_str()),
            Rule {
                event: rule.event,
                audience: rule.audience,
                enabled: rule.enabled,
                channel: rule.channel,
                template: rule
                    .template
                    .clone()
                    .unwrap_or_else(|| rule.event.as_str().to_owned()),
                default: false,
            },
        );
    }
    let mut list: Vec<Rule> = rules.into_values().collect();
    list.sort_by_key(|r| {
        (
            NotificationEvent::ALL.iter().position(|e| *e == r.event),
            r.audience.as_str(),
        )
    });
    list
}

/// The enabled rules for `event`.
pub fn rules_for(rules: &[Rule], event: NotificationEvent) -> Vec<&Rule> {
    rules
        .iter()
        .filter(|r| r.event == event && r.enabled)
        .collect()
}

/// The event an invitation of a setup's client is: the first of a wait asks for the intake
/// form or the approval; later ones are reminders.
pub fn event_for_invitation(task: ClientTask, reminder: u32) -> NotificationEvent {
    match (task, reminder) {
        (_, 1..) => NotificationEvent::SetupClientReminder,
        (ClientTask::Intake, 0) => NotificationEvent::SetupIntakeRequested,
        (ClientTask::Approval, 0) => NotificationEvent::SetupApprovalRequested,
    }
}

/// The event an order status change is.
pub fn event_for_status(status: OrderStatus) -> NotificationEvent {
    use NotificationEvent as E;
    match status {
        OrderStatus::Accepted => E::OrderAccepted,
        OrderStatus::OnHold => E::OrderOnHold,
        OrderStatus::Backordered => E::OrderBackordered,
        OrderStatus::Processing => E::OrderProcessing,
        OrderStatus::PartiallyShipped => E::OrderPartiallyShipped,
        OrderStatus::Shipped => E::OrderShipped,
        OrderStatus::Delivered => E::OrderDelivered,
        OrderStatus::Completed => E::OrderCompleted,
        OrderStatus::Cancelled => E::OrderCancelled,
    }
}

// --- staleness -------------------------------------------------------------------------------

/// How far along an order is, for comparing status changes with shipment events.
pub fn status_rank(status: OrderStatus) -> i32 {
    match status {
        OrderStatus::Accepted | OrderStatus::OnHold => 1,
        OrderStatus::Backordered => 2,
        OrderStatus::Processing => 3,
        OrderStatus::PartiallyShipped => 4,
        OrderStatus::Shipped => 5,
        OrderStatus::Delivered => 6,
        OrderStatus::Completed => 7,
        OrderStatus::Cancelled => 8,
    }
}

/// A shipment event, for staleness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShipmentStep {
    /// Left the warehouse.
    Dispatched,
    /// A delivery problem.
    Exception,
    /// Delivered.
    Delivered,
}

impl ShipmentStep {
    /// Rank within the shipment: dispatched < exception < delivered.
    pub fn rank(self) -> i32 {
        match self {
            Self::Dispatched => 1,
            Self::Exception => 2,
            Self::Delivered => 3,
        }
    }

    /// The highest order status rank at which this step is still news: a dispatch or an
    /// exception after the order was notified delivered (or cancelled) is stale; a
    /// shipment's delivery after the order was notified completed or cancelled is.
    pub fn stale_above(self) -> i32 {
        match self {
            Self::Dispatched | Self::Exception => status_rank(OrderStatus::Shipped),
            Self::Delivered => status_rank(OrderStatus::Delivered),
        }
    }

    /// What a notified step says about the order: it is at least `processing` (so a late
    /// `backordered` after a dispatch is stale). Not more: with split shipments, a
    /// `partially_shipped` can follow a dispatch and is news.
    pub fn implied_rank(self) -> i32 {
        status_rank(OrderStatus::Processing)
    }
}

/// What was already notified about one order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Watermark {
    /// Highest `order.status_changed` sequence notified (0: none).
    pub sequence: i64,
    /// Highest status rank notified (0: none).
    pub rank: i32,
}

/// Whether an event may be notified, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// Newer than (or as new as) anything notified.
    Fresh,
    /// Older than what was already notified; suppressed, with the reason.
    Stale(String),
}

/// A status change is stale when a later status change of the order was already notified,
/// or a later shipment step was.
pub fn judge_status(mark: Watermark, sequence: i64, status: OrderStatus) -> Freshness {
    if sequence < mark.sequence {
        Freshness::Stale(format!(
            "status change {sequence} ({status}) is older than change {} already notified",
            mark.sequence
        ))
    } else if status_rank(status) < mark.rank {
        Freshness::Stale(format!(
            "{status} is behind what was already notified about the order"
        ))
    } else {
        Freshness::Fresh
    }
}

/// A shipment step is stale when the shipment was notified further along (delivered after
/// an exception is fine, an exception after delivered is not), or the order as a whole was
/// (a dispatch after the order was notified delivered or cancelled).
pub fn judge_shipment(order: Watermark, shipment_rank: i32, step: ShipmentStep) -> Freshness {
    if step.rank() < shipment_rank {
        Freshness::Stale(format!(
            "{step:?} is older than what was already notified for this shipment"
        ))
    } else if order.rank > step.stale_above() {
        Freshness::Stale(format!(
            "{step:?} is older than the order status already notified"
        ))
    } else {
        Freshness::Fresh
    }
}

/// The watermark after notifying a status change.
pub fn after_status(mark: Watermark, sequence: i64, status: OrderStatus) -> Watermark {
    Watermark {
        sequence: mark.sequence.max(sequence),
        rank: mark.rank.max(status_rank(status)),
    }
}

/// The watermark after notifying a shipment step.
pub fn after_shipment(mark: Watermark, step: ShipmentStep) -> Watermark {
    Watermark {
        sequence: mark.sequence,
        rank: mark.rank.max(step.implied_rank()),
    }
}

/// The unique key of one notification: never two requests for the same (order, event,
/// sequence or document, audience, recipient). `reference` is the status sequence, the
/// shipment (and exception status), or the document id.
pub fn dedup_key(
    order: &str,
    event: NotificationEvent,
    reference: &str,
    audience: NotificationAudience,
    recipient: &str,
) -> String {
    format!("{order}|{event}|{reference}|{audience}|{recipient}")
}

/// The exception statuses a shipment event can carry, as its reference part.
pub fn exception_reference(shipment: &str, status: ShipmentStatus) -> String {
    format!("{shipment}:{status}")
}

// --- languages and templates -----------------------------------------------------------------

/// A template text, as chosen for one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    /// The language it is written in (`de`).
    pub language: String,
    /// Subject or title.
    pub subject: String,
    /// Body.
    pub body: String,
}

/// Finds the text for `key`: the first of `languages` that has one, looking at the store's
/// own texts first, then the built-in ones; English last.
pub fn choose_text(key: &str, languages: &[&str], store: &[NotificationTemplate]) -> Option<Text> {
    let mut tried: Vec<&str> = languages.to_vec();
    tried.push("en");
    for language in tried {
        if let Some(t) = store
            .iter()
            .find(|t| t.key == key && t.locale.language() == language)
        {
            return Some(Text {
                language: language.to_owned(),
                subject: t.subject.clone(),
                body: t.body.clone(),
            });
        }
        if let Some((subject, body)) = builtin(key, language) {
            return Some(Text {
                language: language.to_owned(),
                subject: subject.to_owned(),
                body: body.to_owned(),
            });
        }
    }
    None
}

/// The languages to try, in order: the recipient's, then the store's (English is always
/// tried last by [`choose_text`]).
pub fn choose_language<'a>(recipient: Option<&'a str>, store: Option<&'a str>) -> Vec<&'a str> {
    let language = |tag: &'a str| tag.split('-').next().unwrap_or(tag);
    let mut list = Vec::with_capacity(2);
    for tag in [recipient, store].into_iter().flatten() {
        let l = language(tag);
        if !list.contains(&l) {
            list.push(l);
        }
    }
    list
}

/// Every variable a template may use.
pub const VARIABLES: &[&str] = &[
    "customer_name",
    "order_number",
    "store_name",
    "status",
    "reason",
    "carrier",
    "tracking_number",
    "tracking_url",
    "invoice_number",
    "credit_note_number",
    "amount",
    "endpoint_url",
    "product",
    "stage",
    "due",
    "link",
    "expires",
];

/// Why a template cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{name}` names no variable.
    #[error("unknown variable `{{{0}}}`; known: {known}", known = VARIABLES.join(", "))]
    UnknownVariable(String),
    /// A `{` without its `}`, or a lone `}`.
    #[error("unbalanced brace at character {0} (write `{{{{` and `}}}}` for literal braces)")]
    Unbalanced(usize),
}

/// Renders `template`, replacing `{name}` by `vars[name]` (empty when the event has no such
/// value). `{{` and `}}` are literal braces.
pub fn render(
    template: &str,
    vars: &BTreeMap<&'static str, String>,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len() + 64);
    let mut chars = template.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|(_, c)| *c) == Some('{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some((_, '}')) => break,
                        Some((_, c)) if c.is_ascii_lowercase() || c == '_' => name.push(c),
                        _ => return Err(TemplateError::Unbalanced(i)),
                    }
                }
                let known = VARIABLES
                    .iter()
                    .find(|v| **v == name)
                    .ok_or_else(|| TemplateError::UnknownVariable(name.clone()))?;
                if let Some(value) = vars.get(known) {
                    out.push_str(value);
                }
            }
            '}' => return Err(TemplateError::Unbalanced(i)),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Checks that a store's template renders (known variables, balanced braces).
pub fn check_template(template: &str) -> Result<(), TemplateError> {
    render(template, &BTreeMap::new()).map(drop)
}

/// A status in words, in `language` (English when the language is unknown).
pub fn status_words(status: OrderStatus, language: &str) -> &'static str {
    templates::status_words(status, language)
}

/// A shipment status in words, in `language`.
pub fn shipment_status_words(status: ShipmentStatus, language: &str) -> &'static str {
    templates::shipment_status_words(status, language)
}

/// Cuts `text` to at most `max` characters (SMS bodies, subjects), marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

// --- retries ---------------------------------------------------------------------------------

/// What to do with a failed notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Request it again as attempt `n`.
    Retry(u32),
    /// Give up and surface it to operators.
    GiveUp,
}

/// Failed, not permanent, and attempts left: request again; otherwise give up. `attempt` is
/// the attempt that failed (1 for the first request).
pub fn after_failure(attempt: u32, permanent: bool, max_attempts: u32) -> AfterFailure {
    if !permanent && attempt < max_attempts {
        AfterFailure::Retry(attempt + 1)
    } else {
        AfterFailure::GiveUp
    }
}

/// Backoff of webhook deliveries: exponential from `min_delay` by `factor`, capped at
/// `max_delay`, optionally with jitter (on by default; tests turn it off to measure).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Backoff {
    /// Delay after the first failed attempt.
    #[serde(rename = "min_delay_ms", with = "orderly_runtime::config::millis")]
    pub min_delay: Duration,
    /// Largest delay.
    #[serde(rename = "max_delay_ms", with = "orderly_runtime::config::millis")]
    pub max_delay: Duration,
    /// Growth per attempt.
    pub factor: f32,
    /// Random extra of up to one delay, so many endpoints do not retry in lockstep.
    pub jitter: bool,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(3600),
            factor: 2.0,
            jitter: true,
        }
    }
}

impl Backoff {
    /// The delay after failed attempt `attempt` (1-based), as `backon`'s exponential
    /// schedule gives it.
    pub fn delay(&self, attempt: u32) -> Duration {
        use backon::BackoffBuilder;
        let mut builder = backon::ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_factor(self.factor)
            .with_max_times(attempt as usize);
        if self.jitter {
            builder = builder.with_jitter();
        }
        let delay = builder
            .build()
            .nth(attempt.saturating_sub(1) as usize)
            .unwrap_or(self.max_delay);
        // backon computes in f32; whole milliseconds are what a schedule means.
        Duration::from_millis(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX))
    }
}

// --- webhook signatures ----------------------------------------------------------------------

/// The CloudEvents attributes of a webhook delivery as HTTP headers (`ce-id`, ...), read
/// from its body: `id`, `type`, `schema_version`, `occurred_at`; the source is the store
/// (`orderly/stores/<store_id>`: the context the merchant subscribed to) and the subject the
/// order. Empty if the body is not one of ours (it always is; nothing is sent wrong).
pub fn webhook_cloudevent(body: &str) -> Vec<(String, String)> {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let text = |key: &str| json[key].as_str();
    let (Some(id), Some(message_type), Some(time), Some(store), Some(order)) = (
        text("id"),
        text("type"),
        text("occurred_at"),
        text("store_id"),
        text("order_id"),
    ) else {
        return Vec::new();
    };
    let version = json["schema_version"]
        .as_u64()
        .and_then(|v| u16::try_from(v).ok())
        .unwrap_or(1);
    let source = format!("orderly/stores/{store}");
    let attributes = orderly_contracts::cloudevents::Attributes {
        id,
        message_type,
        schema_version: version,
        source: &source,
        time,
        subject: order,
    };
    attributes
        .pairs()
        .into_iter()
        .map(|(name, value)| {
            (
                format!("{}{name}", orderly_contracts::cloudevents::HTTP_PREFIX),
                value,
            )
        })
        .collect()
}

/// The signature of a webhook delivery: lowercase hex HMAC-SHA256 with the endpoint's
/// secret over `timestamp + "." + body`. Sent as `Orderly-Signature: v1=<hex>`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this never fails; an empty signature (which never
    // verifies) is the answer if it ever did.
    let Ok(mut mac) = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
    else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

/// Checks a signature header value (`v1=<hex>`) in constant time.
pub fn verify(secret: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let Some(given) = header.strip_prefix("v1=") else {
        return false;
    };
    let expected = sign(secret, timestamp, body);
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

// --- SSRF ------------------------------------------------------------------------------------

/// Why an address may not be reached by a webhook without `allow_private`; `None` when it
/// is a public address.
pub fn forbidden_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            forbidden_v6(v6)
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified (this network)")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared address space (carrier-grade NAT)")
    } else if a == 192 && b == 0 && c == 0 {
        Some("IETF protocol assignments")
    } else if a == 198 && (18..20).contains(&b) {
        Some("benchmarking")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some("multicast, broadcast or reserved")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if first & 0xfe00 == 0xfc00 {
        Some("unique-local")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if first & 0xff00 == 0xff00 {
        Some("multicast")
    } else if ip.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64: the embedded IPv4 address decides.
        let [.., hi, lo] = ip.segments();
        let v4 = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
        forbidden_v4(v4)
    } else {
        None
    }
}

/// Checks an endpoint URL's scheme against the policy: `https` always, `http` only for
/// endpoints with `allow_private`.
pub fn check_scheme(scheme: &str, allow_private: bool) -> Result<(), String> {
    match scheme {
        "https" => Ok(()),
        "http" if allow_private => Ok(()),
        other => Err(format!(
            "`{other}` URLs are refused: webhooks need https (http only with allow_private)"
        )),
    }
}

/// Checks a webhook endpoint's URL against the policy when it is registered, so an endpoint
/// that could never be called is refused at once with the reason instead of queueing
/// deliveries that are refused at every attempt: the scheme ([`check_scheme`]) and, without
/// `allow_private`, the host — `localhost` and its subdomains, and IP literals in any form
/// the URL standard accepts (`127.0.0.1`, `[::1]`, `2130706433`, `0x7f000001`,
/// `0177.0.0.1` are one address) that are not public ([`forbidden_address`]). Host names
/// are still resolved and checked at every attempt (DNS can change), see `webhooks`.
pub fn check_endpoint_url(raw: &str, allow_private: bool) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("`{raw}` is not a URL: {e}"))?;
    check_scheme(url.scheme(), allow_private)?;
    if allow_private {
        return Ok(());
    }
    match url.host() {
        None => Err(format!("`{raw}` names no host")),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                Err(format!(
                    "`{raw}` is refused: {name} is loopback (SSRF policy; allow_private permits it)"
                ))
            } else {
                Ok(())
            }
        }
        Some(url::Host::Ipv4(ip)) => refuse_ip(raw, IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => refuse_ip(raw, IpAddr::V6(ip)),
    }
}

fn refuse_ip(raw: &str, ip: IpAddr) -> Result<(), String> {
    match forbidden_address(ip) {
        Some(why) => Err(format!(
            "`{raw}` is refused: {ip} is {why} (SSRF policy; allow_private permits it)"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
