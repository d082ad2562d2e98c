//! Builders and a webhook receiver shared by the notifications tests.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use orderly_contracts::messages::{
    CustomerContact, InvoiceIssued, OrderStatusChanged, ShipmentDelivered, ShipmentDispatched,
    StoreNotificationSettingsUpdated, WebhookEndpointRegistered,
};
use orderly_contracts::types::{Locale, OrderStatus, StoreId};
use orderly_contracts::{Envelope, Message, RawEnvelope, Validate};
use orderly_notifications::WebhookSettings;
use orderly_notifications::domain::{Backoff, verify};
use orderly_runtime::testing::wait_until;
use sqlx::PgPool;
use uuid::Uuid;

pub const WAIT: Duration = Duration::from_secs(30);
pub const SECRET: &str = "whsec_test_0123456789abcdef0123456789abcdef";

pub fn golden<P: Message + Validate>(message_type: &str) -> P {
    let spec = orderly_contracts::catalog::spec(message_type, 1).expect("in the catalog");
    serde_json::from_value::<RawEnvelope>((spec.example)())
        .expect("envelope")
        .decode_valid::<P>()
        .expect("valid golden example")
        .payload
}

/// A store of its own per test (tests share nothing, but the names read better).
pub fn store() -> StoreId {
    StoreId::parse(&format!(
        "shop-{}",
        &Uuid::now_v7().simple().to_string()[20..]
    ))
    .expect("store")
}

/// An order of `store` for a customer speaking `locale`.
#[derive(Debug, Clone)]
pub struct Order {
    pub id: Uuid,
    pub store: StoreId,
    pub number: String,
    pub contact: CustomerContact,
}

impl Order {
    pub fn new(store: &StoreId, locale: &str) -> Self {
        let id = Uuid::now_v7();
        let mut contact: CustomerContact =
            golden::<OrderStatusChanged>("order.status_changed").customer;
        contact.locale = Locale::parse(locale).expect("locale");
        Self {
            id,
            store: store.clone(),
            number: format!("N-{}", &id.simple().to_string()[24..]),
            contact,
        }
    }

    pub fn status(
        &self,
        sequence: u64,
        from: Option<OrderStatus>,
        to: OrderStatus,
    ) -> Envelope<OrderStatusChanged> {
        let mut p: OrderStatusChanged = golden("order.status_changed");
        p.order_id = self.id;
        p.store_id = self.store.clone();
        p.external_order_id = self.number.clone();
        p.from = from;
        p.to = to;
        p.sequence = sequence;
        p.reason = Some(format!("step {sequence}"));
        p.customer = self.contact.clone();
        Envelope::new("orders", self.id.to_string(), p)
    }

    pub fn dispatched(&self, shipment: Uuid) -> Envelope<ShipmentDispatched> {
        let mut p: ShipmentDispatched = golden("shipment.dispatched");
        p.shipment_id = shipment;
        p.order_id = self.id;
        p.store_id = self.store.clone();
        p.external_order_id = self.number.clone();
        Envelope::new("fulfillment", self.id.to_string(), p)
    }

    pub fn delivered(&self, shipment: Uuid) -> Envelope<ShipmentDelivered> {
        let mut p: ShipmentDelivered = golden("shipment.delivered");
        p.shipment_id = shipment;
        p.order_id = self.id;
        p.store_id = self.store.clone();
        Envelope::new("fulfillment", self.id.to_string(), p)
    }

    pub fn invoice(&self) -> Envelope<InvoiceIssued> {
        let mut p: InvoiceIssued = golden("invoice.issued");
        p.invoice_id = Uuid::now_v7();
        p.order_id = self.id;
        p.store_id = self.store.clone();
        Envelope::new("invoicing", self.id.to_string(), p)
    }
}

pub fn settings(store: &StoreId, revision: u64) -> Envelope<StoreNotificationSettingsUpdated> {
    let mut s: StoreNotificationSettingsUpdated = golden("store.notification_settings_updated");
    s.store_id = store.clone();
    s.revision = revision;
    Envelope::new("admin-api", store.to_string(), s)
}

pub fn endpoint(
    store: &StoreId,
    id: Uuid,
    revision: u64,
    url: &str,
) -> Envelope<WebhookEndpointRegistered> {
    let mut e: WebhookEndpointRegistered = golden("webhook.endpoint_registered");
    e.endpoint_id = id;
    e.store_id = store.clone();
    e.revision = revision;
    e.url = url.to_owned();
    e.secret = SECRET.to_owned();
    e.allow_private = true;
    e.event_types = orderly_contracts::messages::WEBHOOK_EVENT_TYPES
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    Envelope::new("admin-api", store.to_string(), e)
}

/// Fast, measurable webhook timing for tests: no jitter.
pub fn fast_webhooks(min_ms: u64) -> WebhookSettings {
    WebhookSettings {
        backoff: Backoff {
            min_delay: Duration::from_millis(min_ms),
            max_delay: Duration::from_secs(5),
            factor: 2.0,
            jitter: false,
        },
        max_attempts: 8,
        disable_after: 6,
        timeout: Duration::from_secs(5),
        batch_size: 128,
        concurrency: 16,
        poll_interval: Duration::from_millis(500),
    }
}

/// Waits until the worker has handled (committed) message `id`.
pub async fn handled(pool: &PgPool, id: Uuid) -> anyhow::Result<()> {
    wait_until(&format!("message {id} handled"), WAIT, || async move {
        Ok(
            sqlx::query_scalar("select exists(select 1 from inbox where message_id = $1)")
                .bind(id)
                .fetch_one(pool)
                .await?,
        )
    })
    .await
}

// --- a webhook receiver ----------------------------------------------------------------------

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub at: Instant,
    pub event_id: String,
    pub event_type: String,
    pub order_id: String,
    pub sequence: i64,
    pub status_sequence: Option<u64>,
    pub signature_ok: bool,
    pub accepted: bool,
    /// The CloudEvents headers (`ce-…`), by name.
    pub cloudevents: std::collections::BTreeMap<String, String>,
}

/// How the receiver answers.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// 200 to everything.
    Ok,
    /// 500 to the first n attempts of each event, then 200.
    FailFirst(u32),
    /// 503 always.
    AlwaysFail,
}

#[derive(Debug)]
pub struct ReceiverState {
    pub hits: Mutex<Vec<Hit>>,
    pub mode: Mutex<Mode>,
    tries: Mutex<HashMap<String, u32>>,
}

/// A real HTTP server on loopback that checks signatures and records what it got.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    pub state: Arc<ReceiverState>,
}

impl Receiver {
    pub async fn start(mode: Mode) -> anyhow::Result<Self> {
        let state = Arc::new(ReceiverState {
            hits: Mutex::new(Vec::new()),
            mode: Mutex::new(mode),
            tries: Mutex::new(HashMap::new()),
        });
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, state })
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().expect("lock") = mode;
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().expect("lock").clone()
    }

    pub fn accepted(&self) -> Vec<Hit> {
        self.hits().into_iter().filter(|h| h.accepted).collect()
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let timestamp: i64 = header("orderly-timestamp").parse().unwrap_or_default();
    let signature_ok = verify(SECRET, timestamp, &body, &header("orderly-signature"));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let event_id = header("orderly-event-id");
    let tries = {
        let mut tries = state.tries.lock().expect("lock");
        let n = tries.entry(event_id.clone()).or_default();
        *n += 1;
        *n
    };
    let accepted = match *state.mode.lock().expect("lock") {
        Mode::Ok => true,
        Mode::FailFirst(n) => tries > n,
        Mode::AlwaysFail => false,
    };
    state.hits.lock().expect("lock").push(Hit {
        at: Instant::now(),
        event_id: json["id"].as_str().unwrap_or_default().to_owned(),
        event_type: json["type"].as_str().unwrap_or_default().to_owned(),
        order_id: json["order_id"].as_str().unwrap_or_default().to_owned(),
        sequence: json["sequence"].as_i64().unwrap_or_default(),
        status_sequence: json["data"]["sequence"].as_u64(),
        signature_ok: signature_ok && json["id"].as_str() == Some(event_id.as_str()),
        accepted,
        cloudevents: headers
            .iter()
            .filter(|(name, _)| name.as_str().starts_with("ce-"))
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
            .collect(),
    });
    if accepted {
        StatusCode::OK
    } else if matches!(*state.mode.lock().expect("lock"), Mode::AlwaysFail) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}
