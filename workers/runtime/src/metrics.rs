//! Prometheus metrics of one process, exposed at `/metrics`.

use std::sync::atomic::AtomicU64;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConsumerLabels {
    consumer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    consumer: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SchemaLabels {
    schema: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    check: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FigureLabels {
    figure: &'static str,
    store: String,
    currency: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    source: String,
    outcome: &'static str,
}

/// How one message ended, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The handler succeeded and its effects committed.
    Handled,
    /// Already handled before; acknowledged without effect.
    Duplicate,
    /// Failed transiently; scheduled for another attempt.
    Retried,
    /// Sent to the dead-letter queue.
    DeadLettered,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Handled => "handled",
            Self::Duplicate => "duplicate",
            Self::Retried => "retried",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

/// All of a process's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    messages: Family<OutcomeLabels, Counter>,
    failures: Family<OutcomeLabels, Counter>,
    latency: Family<ConsumerLabels, Histogram>,
    batch: Family<ConsumerLabels, Histogram>,
    outbox_published: Family<SchemaLabels, Counter>,
    outbox_failed: Family<SchemaLabels, Counter>,
    outbox_backlog: Family<SchemaLabels, Gauge>,
    outbox_age: Family<SchemaLabels, Gauge<f64, AtomicU64>>,
    webhooks: Family<WebhookLabels, Counter>,
    ready: Family<CheckLabels, Gauge>,
    queue_depth: Family<QueueLabels, Gauge>,
    endpoints_disabled: Counter,
    order_figures: Family<FigureLabels, Gauge<f64, AtomicU64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let messages = Family::<OutcomeLabels, Counter>::default();
        let failures = Family::<OutcomeLabels, Counter>::default();
        let latency = Family::<ConsumerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ])
        });
        let batch = Family::<ConsumerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])
        });
        let outbox_published = Family::<SchemaLabels, Counter>::default();
        let outbox_failed = Family::<SchemaLabels, Counter>::default();
        let outbox_backlog = Family::<SchemaLabels, Gauge>::default();
        let outbox_age = Family::<SchemaLabels, Gauge<f64, AtomicU64>>::default();
        let webhooks = Family::<WebhookLabels, Counter>::default();
        let ready = Family::<CheckLabels, Gauge>::default();
        let queue_depth = Family::<QueueLabels, Gauge>::default();
        let endpoints_disabled = Counter::default();
        let order_figures = Family::<FigureLabels, Gauge<f64, AtomicU64>>::default();
        let mut registry = Registry::with_prefix("orderly");
        registry.register(
            "messages",
            "Messages by consumer and outcome",
            messages.clone(),
        );
        registry.register(
            "handler_failures",
            "Handler failures by consumer and kind (transient, permanent, undecodable)",
            failures.clone(),
        );
        registry.register(
            "handler_duration_seconds",
            "Time from taking a batch to committing it, per message",
            latency.clone(),
        );
        registry.register(
            "batch_size",
            "Deliveries handled per transaction",
            batch.clone(),
        );
        registry.register(
            "outbox_published",
            "Outbox rows confirmed by the broker",
            outbox_published.clone(),
        );
        registry.register(
            "outbox_publish_failures",
            "Outbox rows refused or unroutable",
            outbox_failed.clone(),
        );
        registry.register(
            "outbox_backlog",
            "Pending outbox rows",
            outbox_backlog.clone(),
        );
        registry.register(
            "outbox_oldest_age_seconds",
            "Age of the oldest pending outbox row",
            outbox_age.clone(),
        );
        registry.register(
            "webhooks_received",
            "Inbound webhook deliveries by source and outcome (accepted, duplicate, ignored, \
             unsigned, bad_signature, stale, invalid, too_large, not_configured, unavailable)",
            webhooks.clone(),
        );
        registry.register(
            "ready",
            "Readiness checks (1 up, 0 down), as /readyz reports them: `<worker>.broker`, \
             `<worker>.db`",
            ready.clone(),
        );
        registry.register(
            "queue_messages",
            "Messages waiting in a worker's queue and its dead-letter queue, as the broker \
             counts them (sampled)",
            queue_depth.clone(),
        );
        registry.register(
            "webhook_endpoints_disabled",
            "Merchant webhook endpoints disabled after failing in a row",
            endpoints_disabled.clone(),
        );
        registry.register(
            "order_figures_last_24h",
            "Orders placed in the last 24 hours by store and currency (`figure`: orders, \
             cancelled, exceptions, backordered; gross: revenue of those not cancelled, in the \
             currency), as the api worker's analytics read them (sampled)",
            order_figures.clone(),
        );
        Self {
            registry,
            order_figures,
            messages,
            failures,
            latency,
            batch,
            outbox_published,
            outbox_failed,
            outbox_backlog,
            outbox_age,
            webhooks,
            ready,
            queue_depth,
            endpoints_disabled,
        }
    }
}

impl Metrics {
    /// Counts one message's outcome.
    pub fn message(&self, consumer: &str, outcome: Outcome) {
        self.messages
            .get_or_create(&OutcomeLabels {
                consumer: consumer.to_owned(),
                outcome: outcome.label(),
            })
            .inc();
    }

    /// Counts a handler failure of `kind`.
    pub fn failure(&self, consumer: &str, kind: &'static str) {
        self.failures
            .get_or_create(&OutcomeLabels {
                consumer: consumer.to_owned(),
                outcome: kind,
            })
            .inc();
    }

    /// Records a batch: its size and the per-message latency.
    pub fn batch(&self, consumer: &str, size: usize, seconds: f64) {
        let labels = ConsumerLabels {
            consumer: consumer.to_owned(),
        };
        self.batch.get_or_create(&labels).observe(size as f64);
        let hist = self.latency.get_or_create(&labels);
        for _ in 0..size {
            hist.observe(seconds);
        }
    }

    /// Counts relay results.
    pub fn outbox_published(&self, schema: &str, published: u64, failed: u64) {
        let labels = SchemaLabels {
            schema: schema.to_owned(),
        };
        self.outbox_published
            .get_or_create(&labels)
            .inc_by(published);
        self.outbox_failed.get_or_create(&labels).inc_by(failed);
    }

    /// Sets the backlog gauges.
    pub fn outbox_backlog(&self, schema: &str, pending: i64, oldest_age_seconds: f64) {
        let labels = SchemaLabels {
            schema: schema.to_owned(),
        };
        self.outbox_backlog.get_or_create(&labels).set(pending);
        self.outbox_age
            .get_or_create(&labels)
            .set(oldest_age_seconds);
    }

    /// Counts an inbound webhook delivery from `source` (`easypost`) by `outcome`.
    pub fn webhook(&self, source: &str, outcome: &'static str) {
        self.webhooks
            .get_or_create(&WebhookLabels {
                source: source.to_owned(),
                outcome,
            })
            .inc();
    }

    /// Reads an inbound webhook counter (tests).
    pub fn webhook_count(&self, source: &str, outcome: &'static str) -> u64 {
        self.webhooks
            .get_or_create(&WebhookLabels {
                source: source.to_owned(),
                outcome,
            })
            .get()
    }

    /// Creates consumer `consumer`'s series at zero, so that they are exported before
    /// anything happens and an alert's `increase` sees the first event (a series that
    /// appears with its first count has no earlier sample to increase from).
    pub fn consumer_started(&self, consumer: &str) {
        for outcome in [
            Outcome::Handled,
            Outcome::Duplicate,
            Outcome::Retried,
            Outcome::DeadLettered,
        ] {
            drop(self.messages.get_or_create(&OutcomeLabels {
                consumer: consumer.to_owned(),
                outcome: outcome.label(),
            }));
        }
        for kind in ["transient", "permanent", "rejected"] {
            drop(self.failures.get_or_create(&OutcomeLabels {
                consumer: consumer.to_owned(),
                outcome: kind,
            }));
        }
        let labels = ConsumerLabels {
            consumer: consumer.to_owned(),
        };
        drop(self.latency.get_or_create(&labels));
        drop(self.batch.get_or_create(&labels));
    }

    /// Creates the relay series of `schema` at zero (see [`Metrics::consumer_started`]).
    pub fn relay_started(&self, schema: &str) {
        let labels = SchemaLabels {
            schema: schema.to_owned(),
        };
        drop(self.outbox_published.get_or_create(&labels));
        drop(self.outbox_failed.get_or_create(&labels));
        drop(self.outbox_backlog.get_or_create(&labels));
        drop(self.outbox_age.get_or_create(&labels));
    }

    /// Creates the inbound webhook series of `source` at zero, one per outcome (see
    /// [`Metrics::consumer_started`]).
    pub fn webhooks_started(&self, source: &str, outcomes: &[&'static str]) {
        for outcome in outcomes {
            drop(self.webhooks.get_or_create(&WebhookLabels {
                source: source.to_owned(),
                outcome,
            }));
        }
    }

    /// Sets the readiness gauges from `checks` (name, up).
    pub fn readiness<'a>(&self, checks: impl IntoIterator<Item = (&'a str, bool)>) {
        for (check, up) in checks {
            self.ready
                .get_or_create(&CheckLabels {
                    check: check.to_owned(),
                })
                .set(i64::from(up));
        }
    }

    /// Sets the sampled depth of `queue` (its broker name).
    pub fn queue_depth(&self, queue: &str, messages: u32) {
        self.queue_depth
            .get_or_create(&QueueLabels {
                queue: queue.to_owned(),
            })
            .set(i64::from(messages));
    }

    /// Sets one of the last 24 hours' order figures of a store in a currency.
    pub fn order_figure(&self, figure: &'static str, store: &str, currency: &str, value: f64) {
        self.order_figures
            .get_or_create(&FigureLabels {
                figure,
                store: store.to_owned(),
                currency: currency.to_owned(),
            })
            .set(value);
    }

    /// Counts a merchant webhook endpoint disabled.
    pub fn webhook_endpoint_disabled(&self) {
        self.endpoints_disabled.inc();
    }

    /// Reads a message counter (tests and the demo's progress display).
    pub fn count(&self, consumer: &str, outcome: Outcome) -> u64 {
        self.messages
            .get_or_create(&OutcomeLabels {
                consumer: consumer.to_owned(),
                outcome: outcome.label(),
            })
            .get()
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}
