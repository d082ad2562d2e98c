//! Spans over OpenTelemetry's OTLP/HTTP, when `[telemetry] otlp_endpoint` names a collector
//! (off by default).
//!
//! A span is recorded for every message a consumer handled, from when its batch started to
//! when the batch's transaction ended, with the ids of its hop ([`crate::hop::Hop`]): one
//! trace per order across every worker, each span's parent the span of the hop that sent
//! its message. The ids are derived from the envelopes, so spans recorded by different
//! processes, or not recorded at all, never disagree.
//!
//! Exported in batches (`export_interval_ms`) by the SDK's batch processor on a thread of
//! its own, as OTLP JSON over HTTP (`<otlp_endpoint>/v1/traces`) with a blocking client; a
//! collector that is away loses spans, never messages.

use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, TraceContextExt as _, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, IdGenerator, RandomIdGenerator, SdkTracer,
    SdkTracerProvider,
};
use serde::{Deserialize, Serialize};

use crate::hop::Hop;

thread_local! {
    /// The ids of the span being built on this thread ([`Traces::handled`] sets them right
    /// before it builds the span, [`DerivedIds`] hands them to the SDK).
    static NEXT_IDS: std::cell::Cell<Option<([u8; 16], [u8; 8])>> =
        const { std::cell::Cell::new(None) };
}

/// The SDK's id generator, giving the span being recorded the ids of its hop (the SDK's
/// span builder takes no ids of its own): random ones only for a span built otherwise.
#[derive(Debug, Default)]
struct DerivedIds(RandomIdGenerator);

impl IdGenerator for DerivedIds {
    fn new_trace_id(&self) -> TraceId {
        NEXT_IDS
            .with(std::cell::Cell::get)
            .map_or_else(|| self.0.new_trace_id(), |(t, _)| TraceId::from_bytes(t))
    }

    fn new_span_id(&self) -> SpanId {
        NEXT_IDS
            .with(std::cell::Cell::get)
            .map_or_else(|| self.0.new_span_id(), |(_, s)| SpanId::from_bytes(s))
    }
}

/// `[telemetry]`: where spans go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TraceSettings {
    /// The OTLP/HTTP collector's base address (`http://127.0.0.1:4318`); empty: no export.
    pub otlp_endpoint: String,
    /// `service.name` of the spans.
    pub service_name: String,
    /// How often spans are sent, at most, in milliseconds.
    pub export_interval_ms: u64,
}

impl Default for TraceSettings {
    fn default() -> Self {
        Self {
            otlp_endpoint: String::new(),
            service_name: "orderly".to_owned(),
            export_interval_ms: 1_000,
        }
    }
}

/// A process's span exporter.
#[derive(Debug)]
pub struct Traces {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

/// One handled message, as a span records it.
#[derive(Debug, Clone, Copy)]
pub struct Handled<'a> {
    pub worker: &'a str,
    pub message_type: &'a str,
    pub message_id: uuid::Uuid,
    pub correlation_id: &'a str,
    pub causation_id: Option<uuid::Uuid>,
    pub hop: Hop,
    pub started: SystemTime,
    pub ended: SystemTime,
    /// `handled`, `duplicate`, `retried`, `dead_lettered`.
    pub outcome: &'static str,
}

impl Traces {
    /// The exporter `settings` ask for; `None` when they ask for none.
    pub fn start(settings: &TraceSettings) -> anyhow::Result<Option<Self>> {
        let endpoint = settings.otlp_endpoint.trim().trim_end_matches('/');
        if endpoint.is_empty() {
            return Ok(None);
        }
        anyhow::ensure!(
            endpoint.starts_with("http://") || endpoint.starts_with("https://"),
            "[telemetry] otlp_endpoint must be an http(s) address, not `{endpoint}`"
        );
        let url = format!("{endpoint}/v1/traces");
        // The blocking HTTP client owns a runtime of its own: it is made (and later dropped)
        // outside the async runtime, as it requires.
        let exporter = std::thread::spawn(move || {
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpJson)
                .with_endpoint(url)
                .build()
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the OTLP exporter could not be built"))??;
        let processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_scheduled_delay(Duration::from_millis(
                        settings.export_interval_ms.max(10),
                    ))
                    .build(),
            )
            .build();
        let provider = SdkTracerProvider::builder()
            .with_id_generator(DerivedIds::default())
            .with_span_processor(processor)
            .with_resource(
                Resource::builder()
                    .with_service_name(settings.service_name.clone())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("orderly");
        Ok(Some(Self { provider, tracer }))
    }

    /// Records the span of one handled message.
    pub fn handled(&self, h: &Handled<'_>) {
        let trace_id = TraceId::from_bytes(h.hop.trace_id);
        let flags = if h.hop.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let parent = match h.hop.parent_span_id {
            Some(span) => Context::new().with_remote_span_context(SpanContext::new(
                trace_id,
                SpanId::from_bytes(span),
                flags,
                true,
                TraceState::default(),
            )),
            None => Context::new(),
        };
        let mut attributes = vec![
            KeyValue::new("messaging.system", "rabbitmq"),
            KeyValue::new("messaging.operation.type", "process"),
            KeyValue::new("messaging.destination.name", h.worker.to_owned()),
            KeyValue::new("messaging.message.id", h.message_id.to_string()),
            KeyValue::new(
                "messaging.message.conversation_id",
                h.correlation_id.to_owned(),
            ),
            KeyValue::new("orderly.worker", h.worker.to_owned()),
            KeyValue::new("orderly.message_type", h.message_type.to_owned()),
            KeyValue::new("orderly.outcome", h.outcome),
        ];
        if let Some(cause) = h.causation_id {
            attributes.push(KeyValue::new("orderly.causation_id", cause.to_string()));
        }
        NEXT_IDS.with(|ids| ids.set(Some((h.hop.trace_id, h.hop.span_id))));
        let mut span = self
            .tracer
            .span_builder(format!("{} process {}", h.worker, h.message_type))
            .with_kind(SpanKind::Consumer)
            .with_start_time(h.started)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &parent);
        NEXT_IDS.with(|ids| ids.set(None));
        span.end_with_timestamp(h.ended);
    }

    /// Sends what is buffered and stops (at the host's stop).
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "spans not all exported at shutdown");
        }
    }
}
