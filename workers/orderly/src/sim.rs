//! The simulated outside world: a storefront, a marketplace connector, an operator, a 3PL
//! and a carrier, speaking only the public contracts over the broker. `orderly demo` runs it
//! small and narrated; `orderly loadgen` runs it at volume.
//!
//! The simulator learns what happened the way an outside system would: from the events
//! (`order.status_changed`, `stock.level_changed`, …) on a private tap queue, and from the
//! warehouse's outbound queue (`shipment.requested`), which it answers as a carrier.

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use chrono::Utc;
use futures_util::StreamExt;
use lapin::{
    BasicProperties, Channel, Connection,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions,
    },
    types::FieldTable,
};
use orderly_contracts::{RawEnvelope, decode_raw};
use orderly_runtime::broker::{self, Names};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;

/// A product of the simulated catalog.
#[derive(Debug, Clone)]
pub struct Product {
    pub sku: &'static str,
    pub title: &'static str,
    pub price: Decimal,
    pub gtin: String,
    pub tax: &'static str,
}

/// Appends the GS1 check digit to `base` (digits only).
pub fn gtin(base: &str) -> String {
    let sum: u32 = base
        .chars()
        .rev()
        .enumerate()
        .map(|(i, c)| c.to_digit(10).unwrap_or(0) * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    format!("{base}{}", (10 - sum % 10) % 10)
}

pub fn catalog() -> Vec<Product> {
    let p = |sku, title, cents: i64, base: &str, tax| Product {
        sku,
        title,
        price: Decimal::new(cents, 2),
        gtin: gtin(base),
        tax,
    };
    vec![
        p(
            "MUG-BLU-350",
            "Kaffeebecher „Blau“ 350 ml",
            1290,
            "590123412345",
            "standard",
        ),
        p(
            "TEA-EARL-100",
            "Earl Grey Tee, 100 g",
            750,
            "400638133393",
            "reduced",
        ),
        p(
            "BOOK-RUST-EN",
            "The Rust Programming Language",
            3990,
            "978171850044",
            "reduced",
        ),
        p(
            "LAMP-DESK-01",
            "Schreibtischlampe Aalto",
            8900,
            "871234567890",
            "standard",
        ),
        p(
            "SOCK-WOOL-42",
            "Wollsocken, Gr. 42",
            1450,
            "540012345678",
            "standard",
        ),
        p(
            "PEN-FOUNT-M",
            "Füllfederhalter, Feder M",
            2495,
            "761234567890",
            "standard",
        ),
    ]
}

/// The simulated agency's service product: a listings setup, set up after the order.
pub const SERVICE_SKU: &str = "SVC-LISTINGS-40";

/// The service as an order line's product.
pub fn service_product() -> Product {
    Product {
        sku: SERVICE_SKU,
        title: "Listings setup, 40 products",
        price: Decimal::new(49000, 2),
        gtin: gtin("400000000001"),
        tax: "standard",
    }
}

/// The listings setup's template: the client's onboarding form, the build, the client's
/// review (changes go back to the build) and QA.
pub fn listings_template(version: u32) -> Value {
    json!({
        "version": version,
        "stages": [
            {"key": "onboarding", "title": "Onboarding form", "kind": "intake", "role": "client",
             "sla_business_hours": 16,
             "fields": [
                {"key": "shop_url", "label": "Your shop", "kind": "url", "required": true},
                {"key": "contact_email", "label": "Contact", "kind": "email", "required": true},
                {"key": "listings", "label": "Listings", "kind": "number", "required": true}
             ]},
            {"key": "build", "title": "Build the listings", "kind": "work", "role": "setup_manager",
             "sla_business_hours": 24},
            {"key": "review", "title": "Client review", "kind": "client_approval", "role": "client",
             "sla_business_hours": 40, "loop_back_to": "build"},
            {"key": "qa", "title": "Quality check", "kind": "qa", "role": "setup_manager",
             "sla_business_hours": 8, "loop_back_to": "build",
             "checklist": ["links work", "texts proofread"]}
        ]
    })
}

/// The PIM's `catalog.product_upserted` of a service product with its setup template.
pub fn service_upserted(sku: &str, title: &str, template: Value) -> Value {
    envelope(
        "catalog.product_upserted",
        "pim",
        sku,
        json!({"sku": sku, "gtins": [], "title": title, "tax_category": "standard",
               "active": true, "stock_tracked": false, "setup": template,
               "updated_at": Utc::now()}),
    )
}

/// A `setup.action_requested` as the client's form or the admin API sends it.
pub fn setup_request(
    setup_id: &str,
    order_id: &str,
    action: &str,
    role: &str,
    extra: &Value,
) -> Value {
    let mut payload = json!({
        "request_id": Uuid::now_v7(), "setup_id": setup_id, "order_id": order_id,
        "action": action, "requested_by": {"role": role, "id": format!("{role}-1")},
    });
    if let (Some(p), Some(e)) = (payload.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    envelope("setup.action_requested", "admin-api", order_id, payload)
}

/// What the simulated client and setup manager do when a listings setup reaches `status`
/// with `loops` ways back so far: (action, role, the action's fields, what it is, in words).
/// The client asks for one round of changes.
pub fn listings_next_step(
    status: &str,
    loops: u64,
) -> Option<(&'static str, &'static str, Value, &'static str)> {
    Some(match (status, loops) {
        ("pending_intake", _) => (
            "submit_intake",
            "client",
            json!({"values": {"shop_url": "https://keramik.example", "contact_email": "anna@keramik.example", "listings": "40"}}),
            "the client fills in the onboarding form",
        ),
        ("intake_review", _) => (
            "advance",
            "setup_manager",
            json!({}),
            "the setup manager accepts the intake",
        ),
        ("in_progress", _) => (
            "advance",
            "setup_manager",
            json!({}),
            "the listings are built",
        ),
        ("awaiting_client", 0) => (
            "request_changes",
            "client",
            json!({"note": "Please use our own product photos"}),
            "the client asks for changes",
        ),
        ("awaiting_client", _) => (
            "approve",
            "client",
            json!({"approved": "preview 2"}),
            "the client approves",
        ),
        ("qa", _) => (
            "record_qa",
            "setup_manager",
            json!({"results": [{"item": "links work", "passed": true}, {"item": "texts proofread", "passed": true}]}),
            "QA passes",
        ),
        _ => return None,
    })
}

/// Waits until the orders worker knows `sku` with a setup template.
pub async fn wait_for_service(
    database_url: &str,
    sku: &str,
    deadline: Duration,
) -> anyhow::Result<()> {
    let pool = orderly_runtime::db::connect(database_url, orderly_orders::NAME, 1).await?;
    let started = std::time::Instant::now();
    let result = loop {
        let known = {
            let mut conn = pool.acquire().await?;
            orderly_orders::store::products_by_sku(&mut conn, &[sku.to_owned()])
                .await?
                .values()
                .any(|p| p.setup_template_version.is_some())
        };
        if known {
            break Ok(());
        }
        if started.elapsed() > deadline {
            break Err(anyhow::anyhow!(
                "the orders worker does not know service {sku} after {deadline:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    pool.close().await;
    result
}

/// Warehouses and starting stock: (warehouse, sku, on hand).
pub fn starting_stock(scale: u32) -> Vec<(&'static str, &'static str, u32)> {
    let mut out = Vec::new();
    for (i, p) in catalog().iter().enumerate() {
        // Berlin holds most, Amsterdam some, so larger orders split; one product is scarce.
        let scarce = i == 3;
        out.push(("berlin-1", p.sku, if scarce { 3 } else { 30 * scale }));
        out.push(("amsterdam-1", p.sku, if scarce { 2 } else { 10 * scale }));
    }
    out
}

/// Builds a full envelope as JSON (validated by the catalog before it is sent).
pub fn envelope(message_type: &str, producer: &str, correlation: &str, payload: Value) -> Value {
    json!({
        "message_id": Uuid::now_v7(),
        "message_type": message_type,
        "schema_version": 1,
        "correlation_id": correlation,
        "occurred_at": Utc::now(),
        "producer": producer,
        "payload": payload,
    })
}

/// Publishes to the events exchange after validating against the contracts.
///
/// [`Publisher::new`] publishes on a channel of the caller's connection and fails when the
/// broker goes away. [`Publisher::resilient`] owns its connection and outlives the broker:
/// a send that fails (connection lost, channel closed, no confirm) reconnects and sends the
/// same message again, with the same id, until the broker confirms it; the consumers'
/// inboxes make the repeat harmless. What the fault suite and the load generator use.
#[derive(Debug, Clone)]
pub struct Publisher {
    /// The channel sends go out on, with its generation (how many times it was renewed).
    channel: std::sync::Arc<std::sync::Mutex<(u64, Channel)>>,
    names: Names,
    /// Messages confirmed so far, by this publisher and its clones.
    sent: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Where to reconnect to when the broker goes away; `None`: fail instead.
    reconnect: Option<std::sync::Arc<Reconnect>>,
}

/// What a resilient publisher needs to open a new channel, and the connection it has now.
#[derive(Debug)]
struct Reconnect {
    broker_url: String,
    /// Held while reconnecting, so a burst of failed sends opens one connection, not many.
    connection: tokio::sync::Mutex<Connection>,
}

/// How long a resilient send keeps trying before it gives up.
const RESEND_FOR: Duration = Duration::from_secs(300);

impl Publisher {
    pub async fn new(connection: &Connection, names: Names) -> anyhow::Result<Self> {
        Ok(Self {
            channel: std::sync::Arc::new(std::sync::Mutex::new((0, confirming(connection).await?))),
            names,
            sent: std::sync::Arc::default(),
            reconnect: None,
        })
    }

    /// A publisher with its own connection to `broker_url` that reconnects and re-sends
    /// until each message is confirmed (see the type's documentation).
    pub async fn resilient(broker_url: &str, names: Names) -> anyhow::Result<Self> {
        let connection = connect(broker_url, &names).await?;
        let channel = confirming(&connection).await?;
        Ok(Self {
            channel: std::sync::Arc::new(std::sync::Mutex::new((0, channel))),
            names,
            sent: std::sync::Arc::default(),
            reconnect: Some(std::sync::Arc::new(Reconnect {
                broker_url: broker_url.to_owned(),
                connection: tokio::sync::Mutex::new(connection),
            })),
        })
    }

    /// Messages the broker confirmed so far (this publisher and its clones).
    pub fn sent(&self) -> usize {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn current(&self) -> (u64, Channel) {
        self.channel
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Validates and publishes; waits for the broker's confirm (re-sending after a lost
    /// connection when resilient).
    pub async fn send(&self, envelope: &Value) -> anyhow::Result<()> {
        let body = serde_json::to_vec(envelope)?;
        let raw = decode_raw(&body)?;
        let message_type = raw.message_type.clone();
        // The AMQP properties as Orderly's relays set them: the workers' partitions hash
        // the correlation id, and tools read the id.
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_type(message_type.as_str().into())
            .with_message_id(raw.message_id.to_string().into())
            .with_correlation_id(raw.correlation_id.as_str().into());
        orderly_contracts::catalog::validate_any(raw)
            .map_err(|e| anyhow::anyhow!("simulator built an invalid {message_type}: {e}"))?;
        let Some(reconnect) = &self.reconnect else {
            return self
                .publish(&self.current().1, &message_type, &body, &properties)
                .await;
        };
        let started = Instant::now();
        // The runtime's reconnect back-off (100 ms … 10 s, jittered), as the workers use.
        let mut pauses = orderly_runtime::retry::reconnect_backoff();
        loop {
            let (generation, channel) = self.current();
            let failure = match self
                .publish(&channel, &message_type, &body, &properties)
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if started.elapsed() > RESEND_FOR {
                return Err(failure.context(format!(
                    "{message_type} not confirmed within {} s",
                    RESEND_FOR.as_secs()
                )));
            }
            tracing::debug!(error = %failure, "{message_type} not confirmed; sending it again");
            tokio::time::sleep(pauses.next().unwrap_or(Duration::from_secs(1))).await;
            self.renew(reconnect, generation, &channel).await;
        }
    }

    /// Replaces the channel of `generation` (which failed) with one on a working
    /// connection, unless another send renewed it already or it still works (the broker
    /// refused the message, as under an alarm: send again on it). Errors are left to the next
    /// attempt.
    async fn renew(&self, reconnect: &Reconnect, generation: u64, failed: &Channel) {
        let mut connection = reconnect.connection.lock().await;
        if self.current().0 != generation || failed.status().connected() {
            return;
        }
        if !connection.status().connected() {
            match connect(&reconnect.broker_url, &self.names).await {
                Ok(fresh) => {
                    tracing::warn!(
                        "simulator reconnected to the broker; re-sending what was not confirmed"
                    );
                    *connection = fresh;
                }
                Err(_) => return,
            }
        }
        if let Ok(channel) = confirming(&connection).await {
            *self
                .channel
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = (generation + 1, channel);
        }
    }

    async fn publish(
        &self,
        channel: &Channel,
        message_type: &str,
        body: &[u8],
        properties: &BasicProperties,
    ) -> anyhow::Result<()> {
        let confirm = channel
            .basic_publish(
                self.names.events_exchange().into(),
                message_type.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                properties.clone(),
            )
            .await?
            .await?;
        anyhow::ensure!(
            matches!(confirm, lapin::Confirmation::Ack(None)),
            "{message_type} not accepted by the broker: {confirm:?}"
        );
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// A channel in confirm mode.
async fn confirming(connection: &Connection) -> anyhow::Result<Channel> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}

fn money(d: Decimal) -> String {
    d.round_dp(2).to_string()
}

fn address(name: &str, street: &str, postal: &str, city: &str, country: &str) -> Value {
    json!({"name": name, "lines": [street], "postal_code": postal, "city": city, "country": country})
}

const CUSTOMERS: &[(&str, &str, &str, &str, &str, &str, &str)] = &[
    (
        "Jörg Schäfer",
        "joerg@example.de",
        "de-DE",
        "Müllerstraße 138",
        "13353",
        "Berlin",
        "DE",
    ),
    (
        "Amélie Dubois",
        "amelie@example.fr",
        "fr-FR",
        "12 rue de la Paix",
        "75002",
        "Paris",
        "FR",
    ),
    (
        "Sanne de Vries",
        "sanne@example.nl",
        "nl-NL",
        "Prinsengracht 263",
        "1016 GV",
        "Amsterdam",
        "NL",
    ),
    (
        "Oliver Brown",
        "oliver@example.ie",
        "en-IE",
        "5 Grafton Street",
        "D02 X285",
        "Dublin",
        "IE",
    ),
];

/// One `order.placed` from the storefront (lines by SKU) or a marketplace (lines by GTIN).
pub fn order_placed(
    rng: &mut StdRng,
    external_id: &str,
    marketplace: bool,
    lines: &[(Product, u32)],
    revision: u32,
) -> Value {
    let c = CUSTOMERS[rng.random_range(0..CUSTOMERS.len())];
    let mut total = Decimal::ZERO;
    let lines: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, (p, q))| {
            total += p.price * Decimal::from(*q);
            let mut line = json!({"line_id": (i + 1).to_string(), "title": p.title, "quantity": q,
                                  "unit_price": money(p.price), "discount": "0.00"});
            if marketplace {
                line["gtin"] = json!(p.gtin);
            } else {
                line["sku"] = json!(p.sku);
                line["tax_category"] = json!(p.tax);
            }
            line
        })
        .collect();
    let shipping = Decimal::new(495, 2);
    let (store, channel) = if marketplace {
        ("bol-nl", "marketplace")
    } else {
        ("shop-de", "storefront")
    };
    let mut payload = json!({
        "store_id": store, "channel": channel, "external_order_id": external_id, "revision": revision,
        "placed_at": Utc::now(), "currency": "EUR", "prices_include_tax": true,
        "customer": {"id": format!("C-{}", rng.random_range(1000..9999)), "email": c.1, "name": c.0, "locale": c.2, "is_business": false},
        "billing_address": address(c.0, c.3, c.4, c.5, c.6),
        "shipping_address": address(c.0, c.3, c.4, c.5, c.6),
        "lines": lines, "shipping": money(shipping), "discount": "0.00",
        "total": money(total + shipping),
        "payment": {"method": if marketplace { "marketplace" } else { "card" }, "status": if marketplace { "paid" } else { "authorized" }},
    });
    if marketplace {
        payload["marketplace"] = json!("bol.com");
    }
    envelope(
        "order.placed",
        if marketplace {
            "connector:bol"
        } else {
            "storefront"
        },
        &format!("{store}/{channel}/{external_id}"),
        payload,
    )
}

/// What the observer knows of one order.
#[derive(Debug, Clone, Default)]
pub struct OrderView {
    pub external_id: String,
    pub status: String,
    pub sequence: u64,
    pub stages: BTreeMap<&'static str, Instant>,
    /// `notification.requested` about the order so far (the latest is stage `notified`).
    pub notifications: usize,
}

/// Everything the simulator saw, built from events only.
#[derive(Debug, Default)]
pub struct Observed {
    pub orders: HashMap<Uuid, OrderView>,
    pub by_external: HashMap<String, Uuid>,
    pub stock: BTreeMap<String, (u64, Value)>,
    pub on_hold: Vec<(Uuid, Vec<Value>, String)>,
    /// `notification.requested` payloads, in arrival order.
    pub notifications: Vec<Value>,
    /// `invoice.issued` and `credit_note.issued` payloads, in arrival order.
    pub documents: Vec<(String, Value)>,
}

impl Observed {
    /// Orders by status (latest by sequence).
    pub fn status_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for o in self.orders.values() {
            *counts.entry(o.status.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// True when the order with this external id is in one of `statuses`.
    pub fn status_is(&self, external_id: &str, statuses: &[&str]) -> bool {
        self.by_external
            .get(external_id)
            .and_then(|id| self.orders.get(id))
            .is_some_and(|o| statuses.contains(&o.status.as_str()))
    }

    /// True when the order with this external id reached one of `stages`.
    pub fn has_stage(&self, external_id: &str, stages: &[&str]) -> bool {
        self.by_external
            .get(external_id)
            .and_then(|id| self.orders.get(id))
            .is_some_and(|o| stages.iter().any(|s| o.stages.contains_key(s)))
    }

    fn stage(&mut self, order_id: Uuid, stage: &'static str) {
        if let Some(o) = self.orders.get_mut(&order_id) {
            o.stages.entry(stage).or_insert_with(Instant::now);
        }
    }

    /// Applies one observed event.
    pub fn apply(&mut self, m: &RawEnvelope) {
        let p = &m.payload;
        let order_id = p
            .get("order_id")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse::<Uuid>().ok());
        match m.message_type.as_str() {
            "order.accepted" | "order.on_hold" => {
                let (Some(id), Some(ext)) = (order_id, p["external_order_id"].as_str()) else {
                    return;
                };
                self.by_external.insert(ext.to_owned(), id);
                let view = self.orders.entry(id).or_insert_with(|| OrderView {
                    external_id: ext.to_owned(),
                    ..OrderView::default()
                });
                if view.status.is_empty() {
                    view.status = "placed".into();
                }
                if m.message_type == "order.on_hold" {
                    let exceptions = p["exceptions"].as_array().cloned().unwrap_or_default();
                    self.on_hold.push((
                        id,
                        exceptions,
                        p["store_id"].as_str().unwrap_or_default().to_owned(),
                    ));
                    self.stage(id, "on_hold");
                } else {
                    self.stage(id, "accepted");
                }
            }
            "order.status_changed" => {
                let (Some(id), Some(seq), Some(to)) =
                    (order_id, p["sequence"].as_u64(), p["to"].as_str())
                else {
                    return;
                };
                let ext = p["external_order_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                self.by_external.insert(ext.clone(), id);
                let view = self.orders.entry(id).or_insert_with(|| OrderView {
                    external_id: ext,
                    ..OrderView::default()
                });
                if seq > view.sequence {
                    view.sequence = seq;
                    view.status = to.to_owned();
                }
                if to == "delivered" {
                    self.stage(id, "delivered");
                }
            }
            "stock.reserved" => order_id
                .into_iter()
                .for_each(|id| self.stage(id, "reserved")),
            "stock.unavailable" => order_id
                .into_iter()
                .for_each(|id| self.stage(id, "backordered")),
            "shipment.dispatched" => order_id
                .into_iter()
                .for_each(|id| self.stage(id, "dispatched")),
            // Completion is decided in the transaction that records the last delivery: a
            // delivery not observed by itself happened when the order completed.
            "order.completed" => order_id.into_iter().for_each(|id| {
                self.stage(id, "delivered");
                self.stage(id, "completed");
            }),
            "notification.requested" => {
                if let Some(o) = order_id.and_then(|id| self.orders.get_mut(&id)) {
                    o.notifications += 1;
                    o.stages.insert("notified", Instant::now());
                }
                self.notifications.push(p.clone());
            }
            "invoice.issued" | "credit_note.issued" => {
                if m.message_type == "invoice.issued" {
                    order_id
                        .into_iter()
                        .for_each(|id| self.stage(id, "invoiced"));
                }
                self.documents.push((m.message_type.clone(), p.clone()));
            }
            "stock.level_changed" => {
                let (Some(sku), Some(seq)) = (p["sku"].as_str(), p["sequence"].as_u64()) else {
                    return;
                };
                let entry = self.stock.entry(sku.to_owned()).or_insert((0, Value::Null));
                if seq >= entry.0 {
                    *entry = (seq, p.clone());
                }
            }
            _ => {}
        }
    }
}

/// Event types the observer listens to.
pub const OBSERVED: &[&str] = &[
    "order.accepted",
    "order.on_hold",
    "order.status_changed",
    "order.completed",
    "stock.reserved",
    "stock.unavailable",
    "stock.level_changed",
    "shipment.dispatched",
    "notification.requested",
    "invoice.issued",
    "credit_note.issued",
];

/// What the load generator observes: one message per stage it times, and the stock levels
/// it waits for before it starts. Every type a tap receives costs the broker a copy of each
/// such message, so the load generator takes no more than it measures.
pub const TIMED: &[&str] = &[
    "order.accepted",
    "stock.reserved",
    "stock.unavailable",
    "stock.level_changed",
    "shipment.dispatched",
    "order.completed",
];

/// What the load generator observes of an order's whole life: [`TIMED`], its invoice and
/// the customer notifications asked for.
pub const TIMED_WHOLE_LIFE: &[&str] = &[
    "order.accepted",
    "stock.reserved",
    "stock.unavailable",
    "stock.level_changed",
    "shipment.dispatched",
    "order.completed",
    "invoice.issued",
    "notification.requested",
];

/// A private queue receiving `types`, delivered into a channel.
pub async fn tap(
    connection: &Connection,
    names: &Names,
    types: &[&str],
) -> anyhow::Result<mpsc::UnboundedReceiver<RawEnvelope>> {
    let (channel, mut consumer) = broker::observe(connection, names, types).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let _keep = channel;
        while let Some(Ok(d)) = consumer.next().await {
            if let Ok(env) = decode_raw(&d.data)
                && tx.send(env).is_err()
            {
                break;
            }
        }
    });
    Ok(rx)
}

/// How the simulated carrier answers.
#[derive(Debug, Clone, Copy)]
struct Track {
    /// The pause before each scan.
    step: Duration,
    /// Some shipments also get a stale `in_transit` after delivery.
    late_scan: bool,
    /// The carriers' own vocabularies and every step, not only in transit and delivered.
    full_track: bool,
}

/// The carrier: answers every `shipment.requested` on the warehouse queue with tracking
/// events. With `late_scan`, some shipments also get a stale `in_transit` after delivery.
/// Runs on `connection` until it closes.
pub async fn carrier(
    connection: &Connection,
    names: &Names,
    publisher: Publisher,
    step: Duration,
    late_scan: bool,
    full_track: bool,
) -> anyhow::Result<()> {
    let track = Track {
        step,
        late_scan,
        full_track,
    };
    let (channel, consumer) = warehouse_consumer(connection, names).await?;
    tokio::spawn(answer_shipments(channel, consumer, publisher, track));
    Ok(())
}

/// [`carrier`] on its own connection to `broker_url`, reconnecting whenever the broker goes
/// away, with a publisher that re-sends until confirmed ([`Publisher::resilient`]): what the
/// fault suite and the load generator run. Runs until the handle is aborted.
pub async fn carrier_resilient(
    broker_url: &str,
    names: &Names,
    publisher: Publisher,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let track = Track {
        step: Duration::ZERO,
        late_scan: false,
        full_track: false,
    };
    let (broker_url, names) = (broker_url.to_owned(), names.clone());
    // The first connection is made here, so a wrong address is an error, not a silent retry.
    let connection = connect(&broker_url, &names).await?;
    let (channel, consumer) = warehouse_consumer(&connection, &names).await?;
    Ok(tokio::spawn(async move {
        let mut serving = Some((connection, channel, consumer));
        loop {
            if let Some((connection, channel, consumer)) = serving.take() {
                answer_shipments(channel, consumer, publisher.clone(), track).await;
                drop(connection);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let Ok(connection) = connect(&broker_url, &names).await else {
                continue;
            };
            if let Ok((channel, consumer)) = warehouse_consumer(&connection, &names).await {
                serving = Some((connection, channel, consumer));
            }
        }
    }))
}

async fn warehouse_consumer(
    connection: &Connection,
    names: &Names,
) -> anyhow::Result<(Channel, lapin::Consumer)> {
    let channel = connection.create_channel().await?;
    channel.basic_qos(200, BasicQosOptions::default()).await?;
    let consumer = channel
        .basic_consume(
            names.queue("out.warehouse").into(),
            "carrier".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((channel, consumer))
}

/// Answers each shipment request with its scans, and acknowledges the request only once
/// every scan is confirmed by the broker: a carrier that dies (or loses the broker) between
/// the two gets the request again and answers it again, with the same message ids and
/// tracking number, which the fulfillment worker's inbox makes harmless. Returns when the
/// consumer ends (the channel or connection closed).
async fn answer_shipments(
    channel: Channel,
    mut consumer: lapin::Consumer,
    publisher: Publisher,
    track: Track,
) {
    let _keep = channel;
    let mut n: u64 = 0;
    while let Some(Ok(d)) = consumer.next().await {
        let Ok(env) = decode_raw(&d.data) else {
            let _ = d.acker.ack(BasicAckOptions::default()).await;
            continue;
        };
        if env.message_type != "shipment.requested" {
            let _ = d.acker.ack(BasicAckOptions::default()).await;
            continue;
        }
        n += 1;
        let publisher = publisher.clone();
        let late = track.late_scan && n.is_multiple_of(4);
        tokio::spawn(async move {
            if scans(&env, &publisher, track, late).await.is_ok() {
                let _ = d.acker.ack(BasicAckOptions::default()).await;
            }
        });
    }
}

/// The scans of one shipment, published in order.
async fn scans(
    env: &RawEnvelope,
    publisher: &Publisher,
    track: Track,
    late: bool,
) -> anyhow::Result<()> {
    let p = &env.payload;
    // A well-behaved warehouse passes the W3C trace context on (`traceparent`), so its
    // scans join the order's trace, parented on the hop that asked it.
    let trace = env.trace.clone();
    let shipment_id = p["shipment_id"].as_str().unwrap_or_default().to_owned();
    let order_id = p["order_id"].as_str().unwrap_or_default().to_owned();
    // From the shipment, so a request answered twice gets the same tracking number.
    let key = Uuid::new_v5(&Uuid::NAMESPACE_OID, shipment_id.as_bytes());
    let tracking = format!("00340434{:012}", key.as_u128() % 1_000_000_000_000);
    let (vocab, steps): (&str, Vec<&str>) = if track.full_track {
        if key.as_u128().is_multiple_of(2) {
            (
                "easypost",
                vec!["pre_transit", "in_transit", "out_for_delivery", "delivered"],
            )
        } else {
            (
                "aftership",
                vec!["InfoReceived", "InTransit", "OutForDelivery", "Delivered"],
            )
        }
    } else {
        ("orderly", vec!["in_transit", "delivered"])
    };
    let started = Utc::now();
    let event = |i: usize, raw: &str, at: chrono::DateTime<Utc>| {
        let mut event = envelope(
            "shipment.updated",
            &format!("carrier:{vocab}"),
            &order_id,
            json!({"shipment_id": shipment_id, "carrier": "dhl", "tracking_number": tracking,
                   "vocabulary": vocab, "raw_status": raw, "event_at": at}),
        );
        // The same scan of the same shipment is the same message, however often it is sent.
        event["message_id"] = json!(Uuid::new_v5(&key, format!("{i}:{raw}").as_bytes()));
        if let Some(trace) = &trace {
            event["trace"] = json!(trace);
        }
        event
    };
    for (i, raw) in steps.iter().enumerate() {
        tokio::time::sleep(track.step).await;
        let at = started + chrono::Duration::milliseconds(1000 * (i as i64 + 1));
        publisher.send(&event(i, raw, at)).await?;
    }
    if late {
        // A scan that arrives after delivery, describing an earlier moment.
        publisher
            .send(&event(
                steps.len(),
                steps[1],
                started + chrono::Duration::milliseconds(1500),
            ))
            .await?;
    }
    Ok(())
}

/// A seeded random source, so a demo run is reproducible.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// The stores' settings, as their setup managers would send them through the admin API:
/// invoicing (seller, VAT id, numbering) and notifications (name, language, staff).
/// `shop-de` is a German web shop registered for OSS; `bol-nl` sells on bol.com from the
/// Netherlands.
pub async fn store_settings(publisher: &Publisher) -> anyhow::Result<()> {
    store_settings_invoicing(publisher, "on_shipment").await
}

/// [`store_settings`] with another invoice timing (`on_order`: invoiced when accepted).
pub async fn store_settings_invoicing(publisher: &Publisher, timing: &str) -> anyhow::Result<()> {
    let stores = [
        (
            "shop-de",
            "Beispiel Handels GmbH",
            address(
                "Beispiel Handels GmbH",
                "Torstraße 101",
                "10119",
                "Berlin",
                "DE",
            ),
            "DE123456789",
            "RE-",
            "GS-",
            "de-DE",
            "Beispiel Shop",
            "bestellungen@beispiel-shop.de",
        ),
        (
            "bol-nl",
            "Voorbeeld Handel B.V.",
            address(
                "Voorbeeld Handel B.V.",
                "Keizersgracht 1",
                "1015 CC",
                "Amsterdam",
                "NL",
            ),
            "NL123456789B01",
            "NL-F-",
            "NL-C-",
            "nl-NL",
            "Voorbeeld Winkel",
            "orders@voorbeeld-winkel.nl",
        ),
    ];
    for (store, legal, addr, vat, inv, cn, locale, name, staff) in stores {
        publisher
            .send(&envelope(
                "store.invoice_settings_updated",
                "admin-api",
                store,
                json!({"store_id": store, "revision": 1, "legal_name": legal, "address": addr,
                       "vat_id": vat, "invoice_timing": timing,
                       "invoice_number_prefix": inv, "credit_note_number_prefix": cn,
                       "oss_registered": true, "locale": locale, "payment_terms_days": 14,
                       "footer": format!("{legal} · IBAN DE02 1203 0000 0000 2020 51"),
                       "number_digits": 6, "number_yearly_reset": true, "rounding": "per_line"}),
            ))
            .await?;
        publisher
            .send(&envelope(
                "store.notification_settings_updated",
                "admin-api",
                store,
                json!({"store_id": store, "revision": 1, "store_name": name, "locale": locale,
                       "staff_recipients": [{"channel": "email", "address": staff}]}),
            ))
            .await?;
    }
    Ok(())
}

/// Waits until the orders worker's catalog projection holds every product of [`catalog`]
/// and the [`STORES`] are declared:
/// a storefront cannot sell what the catalog has not published, and the workers promise no
/// order between a product's upsert and an order placed the next instant (decision 0004).
/// Reads the orders schema of `database_url` (as an operator's tool may), polling until
/// `deadline`.
pub async fn wait_for_catalog(database_url: &str, deadline: Duration) -> anyhow::Result<()> {
    let pool = orderly_runtime::db::connect(database_url, orderly_orders::NAME, 1).await?;
    let skus: Vec<String> = catalog().iter().map(|p| p.sku.to_owned()).collect();
    let started = std::time::Instant::now();
    let result = loop {
        let (known, stores) = {
            let mut conn = pool.acquire().await?;
            let known = orderly_orders::store::products_by_sku(&mut conn, &skus)
                .await?
                .len();
            let stores = orderly_orders::store::declared_stores(&mut conn).await?;
            (known, stores.len())
        };
        if known == skus.len() && stores >= STORES.len() {
            break Ok(());
        }
        if started.elapsed() > deadline {
            break Err(anyhow::anyhow!(
                "the orders worker knows {known} of {} catalog products and {stores} of {} stores after {deadline:?}",
                skus.len(),
                STORES.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    pool.close().await;
    result
}

/// Waits until the inventory worker holds every count [`seed`] sent at `scale` (before any
/// order is placed: an order that reaches inventory before its product's count is
/// backordered, which a test counting backorders would not expect). `inventory` is a pool
/// on the inventory worker's schema (its own database, where it has one).
pub async fn wait_for_stock(
    inventory: &sqlx::PgPool,
    scale: u32,
    deadline: Duration,
) -> anyhow::Result<()> {
    let seeded: std::collections::BTreeSet<(String, String, i64)> = starting_stock(scale)
        .into_iter()
        .map(|(wh, sku, qty)| (wh.to_owned(), sku.to_owned(), i64::from(qty)))
        .collect();
    let started = std::time::Instant::now();
    loop {
        let held: std::collections::BTreeSet<(String, String, i64)> = {
            let mut conn = inventory.acquire().await?;
            orderly_inventory::store::list_stock(&mut conn, None)
                .await?
                .into_iter()
                .map(|r| (r.warehouse_id, r.sku, r.on_hand))
                .collect()
        };
        if seeded.is_subset(&held) {
            return Ok(());
        }
        if started.elapsed() > deadline {
            anyhow::bail!(
                "inventory holds {} of the {} seeded counts after {deadline:?}",
                seeded.intersection(&held).count(),
                seeded.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The stores orders are placed for: (id, name, country).
pub const STORES: [(&str, &str, &str); 2] = [
    ("shop-de", "Beispiel Shop", "DE"),
    ("bol-nl", "Voorbeeld Winkel op bol.com", "NL"),
];

/// The warehouses stock is counted in: (id, name, street, postal code, city, country,
/// priority). Berlin is preferred.
const WAREHOUSES: [(&str, &str, &str, &str, &str, &str, u16); 2] = [
    (
        "berlin-1",
        "Lager Berlin",
        "Oberlandstraße 26",
        "12099",
        "Berlin",
        "DE",
        10,
    ),
    (
        "amsterdam-1",
        "Magazijn Amsterdam",
        "Kabelweg 37",
        "1014 BA",
        "Amsterdam",
        "NL",
        20,
    ),
];

/// Declares the stores and warehouses, as setup managers would: orders are taken only for
/// declared stores, and allocation follows the warehouses' priorities.
pub async fn registry(publisher: &Publisher) -> anyhow::Result<()> {
    for (store, name, country) in STORES {
        publisher
            .send(&envelope(
                "store.upserted",
                "admin-api",
                store,
                json!({"store_id": store, "revision": 1, "name": name, "country": country,
                       "currency": "EUR", "active": true}),
            ))
            .await?;
    }
    for (wh, name, street, postal, city, country, priority) in WAREHOUSES {
        publisher
            .send(&envelope(
                "warehouse.upserted",
                "admin-api",
                wh,
                json!({"warehouse_id": wh, "revision": 1, "name": name,
                       "address": address(name, street, postal, city, country),
                       "priority": priority, "active": true}),
            ))
            .await?;
    }
    Ok(())
}

/// Declares the stores and warehouses, then seeds the catalog and the stock.
pub async fn seed(publisher: &Publisher, scale: u32) -> anyhow::Result<()> {
    registry(publisher).await?;
    for p in catalog() {
        publisher
            .send(&envelope(
                "catalog.product_upserted",
                "pim",
                p.sku,
                json!({"sku": p.sku, "gtins": [p.gtin], "title": p.title, "tax_category": p.tax,
                       "active": true, "stock_tracked": true, "updated_at": Utc::now()}),
            ))
            .await?;
    }
    for (wh, sku, qty) in starting_stock(scale) {
        publisher
            .send(&envelope(
                "inventory.adjusted",
                "wms",
                &format!("{wh}/{sku}"),
                json!({"warehouse_id": wh, "sku": sku, "set_on_hand": qty, "reason": "stock_count",
                       "source": "wms", "reference": format!("seed-{wh}-{sku}"), "as_of": Utc::now()}),
            ))
            .await?;
    }
    Ok(())
}

/// What [`place_orders`] answers: each order's external id and when it was sent, and how
/// long sending took (until the last was handed over, not confirmed).
#[cfg(feature = "bench")]
pub(crate) type Placed = (Vec<(String, Instant)>, Duration);

/// Places `orders` storefront orders of one product each at `rate` per second from `started`
/// (external ids `{prefix}-0000001`, ...), on a task.
#[cfg(feature = "bench")]
pub(crate) fn place_orders(
    publisher: Publisher,
    orders: usize,
    rate: f64,
    prefix: &'static str,
    started: Instant,
) -> tokio::task::JoinHandle<anyhow::Result<Placed>> {
    let catalog: Vec<Product> = catalog()
        .into_iter()
        .filter(|p| p.sku != "LAMP-DESK-01")
        .collect();
    tokio::spawn(async move {
        let mut rng = rng(7);
        let mut sent = Vec::with_capacity(orders);
        // Each order is sent on its own task: waiting for one confirm before sending the
        // next would cap the offered rate at 1 / confirm latency, which under load is
        // below the rate asked for (it was: ~80 orders/s at 150 asked).
        let mut sends = tokio::task::JoinSet::new();
        for i in 0..orders {
            tokio::time::sleep_until((started + Duration::from_secs_f64(i as f64 / rate)).into())
                .await;
            let p = catalog[rng.random_range(0..catalog.len())].clone();
            let ext = format!("{prefix}-{i:07}");
            let env = order_placed(&mut rng, &ext, false, &[(p, 1)], 1);
            sent.push((ext, Instant::now()));
            let publisher = publisher.clone();
            sends.spawn(async move { publisher.send(&env).await });
            while let Some(done) = sends.try_join_next() {
                done??;
            }
        }
        let offered_for = started.elapsed();
        while let Some(done) = sends.join_next().await {
            done??;
        }
        anyhow::Ok((sent, offered_for))
    })
}

/// Opens the simulator's broker connection.
pub async fn connect(broker_url: &str, names: &Names) -> anyhow::Result<Connection> {
    Ok(broker::connect(
        broker_url,
        &format!("orderly-simulator@{}", names.namespace()),
    )
    .await?)
}
