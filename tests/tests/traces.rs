//! OpenTelemetry traces end to end: every worker exporting spans over OTLP/HTTP (JSON) to a
//! receiver in this test, a storefront order placed without any trace context, the
//! simulated warehouse passing the context on as a well-behaved integration does.
//!
//! What must hold: the order is one trace (its id the order message's id) with spans from
//! every worker it passes through; exactly one root; every other span's parent is a span
//! of the same trace, and it is the span of the worker that sent the message, handling the
//! message that caused it (parent links follow causation).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, routing::post};
use orderly::sim::{self, Publisher};
use orderly_runtime::testing::{World, wait_until};
use rand::SeedableRng;
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(90);

/// One received span: ids and the attributes the test reads.
#[derive(Debug, Clone)]
struct Span {
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    worker: String,
    message_id: String,
    causation_id: Option<String>,
}

/// The spans in an OTLP JSON export request.
fn spans_of(request: &Value) -> Vec<Span> {
    let mut out = Vec::new();
    for resource in request["resourceSpans"].as_array().into_iter().flatten() {
        for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
            for span in scope["spans"].as_array().into_iter().flatten() {
                let attribute = |key: &str| {
                    span["attributes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|a| a["key"] == key)
                        .and_then(|a| a["value"]["stringValue"].as_str())
                        .map(str::to_owned)
                };
                out.push(Span {
                    trace_id: span["traceId"].as_str().unwrap_or_default().to_lowercase(),
                    span_id: span["spanId"].as_str().unwrap_or_default().to_lowercase(),
                    parent_span_id: span["parentSpanId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_lowercase(),
                    worker: attribute("orderly.worker").unwrap_or_default(),
                    message_id: attribute("messaging.message.id").unwrap_or_default(),
                    causation_id: attribute("orderly.causation_id"),
                });
            }
        }
    }
    out
}

type Received = Arc<Mutex<Vec<Span>>>;

async fn receive(State(received): State<Received>, body: Bytes) -> &'static str {
    if let Ok(request) = serde_json::from_slice::<Value>(&body)
        && let Ok(mut spans) = received.lock()
    {
        spans.extend(spans_of(&request));
    }
    "{}"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storefront_order_is_one_trace_across_every_worker_with_causal_parents()
-> anyhow::Result<()> {
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let collector = listener.local_addr()?;
    let app = Router::new()
        .route("/v1/traces", post(receive))
        .with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let world = World::new().await?;
    let settings = world.settings.clone().with_section(
        "telemetry",
        orderly_runtime::traces::TraceSettings {
            otlp_endpoint: format!("http://{collector}"),
            export_interval_ms: 100,
            ..orderly_runtime::traces::TraceSettings::default()
        },
    );
    let mut host = orderly_runtime::Host::new(settings);
    orderly::workers::start_all(&mut host).await?;
    let publisher = Publisher::new(&world.connection, world.names.clone()).await?;
    sim::seed(&publisher, 1).await?;
    sim::wait_for_catalog(&world.settings.database_url, DEADLINE).await?;
    sim::store_settings(&publisher).await?;
    sim::carrier(
        &world.connection,
        &world.names,
        publisher.clone(),
        Duration::from_millis(30),
        false,
        false,
    )
    .await?;

    let product = sim::catalog()
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("an empty catalog"))?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    let order = sim::order_placed(&mut rng, "TRACE-1", false, &[(product, 1)], 1);
    assert!(
        order.get("trace").is_none(),
        "placed without a trace context"
    );
    let message_id: uuid::Uuid = order["message_id"].as_str().unwrap_or_default().parse()?;
    let trace_id = hex::encode(message_id.as_bytes());
    publisher.send(&order).await?;

    let every = [
        "orders",
        "inventory",
        "fulfillment",
        "invoicing",
        "notifications",
        "api",
    ];
    let of_trace = || -> Vec<Span> {
        received
            .lock()
            .map(|s| {
                s.iter()
                    .filter(|s| s.trace_id == trace_id)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let linked = |spans: &[Span]| {
        let ids: BTreeSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
        spans
            .iter()
            .all(|s| s.parent_span_id.is_empty() || ids.contains(s.parent_span_id.as_str()))
    };
    wait_until(
        "spans of every worker, every parent received",
        DEADLINE,
        || async {
            let spans = of_trace();
            let workers: BTreeSet<&str> = spans.iter().map(|s| s.worker.as_str()).collect();
            Ok(every.iter().all(|w| workers.contains(w)) && linked(&spans))
        },
    )
    .await?;
    let spans = of_trace();
    let roots: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id.is_empty())
        .collect();
    assert_eq!(roots.len(), 1, "one root: {roots:#?}");
    assert_eq!(roots[0].worker, "orders");
    assert_eq!(roots[0].message_id, message_id.to_string());
    // Each parent is the span that handled the message that caused this one.
    let by_id: BTreeMap<&str, &Span> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    for span in spans.iter().filter(|s| !s.parent_span_id.is_empty()) {
        let parent = by_id[span.parent_span_id.as_str()];
        let caused_by_parent = span.causation_id.as_deref() == Some(parent.message_id.as_str());
        // A warehouse's scan is caused outside Orderly: its parent is the hop that asked
        // the warehouse (the trace context it passed on).
        let from_outside = span.causation_id.is_none();
        assert!(
            caused_by_parent || from_outside,
            "{span:#?} is parented on {parent:#?}"
        );
    }
    host.stop(Duration::from_secs(5)).await;
    world.cleanup().await
}
