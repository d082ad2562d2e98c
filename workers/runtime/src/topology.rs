//! Declares exchanges and queues, idempotently, from a list of [`QueueSpec`]s.
//!
//! Per consumer queue `Q` (all quorum queues, so they survive the loss of a node):
//! - `ns.Q.partitions`: a consistent-hash exchange (plugin `rabbitmq_consistent_hash_exchange`)
//!   hashing the correlation id, bound to `ns.events` for each message type `Q` consumes;
//! - `ns.Q.unrouted`: the partition exchange's alternate exchange, a fanout to `ns.Q.p0`:
//!   what the ring cannot route (a restarted cluster node's ring can miss a bucket for a
//!   moment) goes to the first partition rather than nowhere;
//! - `ns.Q.p0` … `ns.Q.p{N-1}`: the partitions, each bound to `ns.Q.partitions` with weight
//!   1, so everything about one order (one correlation id) lands in one partition, in
//!   publication order. Each has a **single active consumer**: with several copies of a
//!   worker, one copy at a time takes a partition's messages and the others stand by, so
//!   copies never handle one order's messages side by side or out of order (decision 0016).
//!   An explicit `x-delivery-limit` after which the broker dead-letters a message that keeps
//!   coming back unacknowledged (a message that crashes the process);
//! - `ns.Q.dlq`: the dead letters, bound to `ns.dead-letter` under `ns.Q`. The runtime
//!   publishes here itself (with the reason) for permanent failures and spent budgets; the
//!   broker routes here when the delivery limit is exceeded;
//! - `ns.Q.retry.K` for K in 1..=delay_queues: delay queues, one per step of the backoff,
//!   each bound under its own name to `ns.Q.delays`, the direct exchange the worker
//!   publishes its retries to (not the default exchange: see [`Names::delay_exchange`]). A
//!   message waiting for its next attempt sits in the queue of that attempt's step with a
//!   per-message expiration (the backoff delay with jitter); when it expires, the broker
//!   dead-letters it back through `ns.Q.partitions`, so it returns to its own partition. One
//!   queue per step keeps delays of one size together, so a short delay never waits behind
//!   a long one (expiry happens at the head of a queue) beyond the jitter spread of that
//!   step; attempts whose delay has reached the cap share the last queue (they all wait the
//!   cap). Dead-lettering uses the at-least-once strategy, so a message in delay cannot be
//!   lost between queues.
//!
//! Outbound queues (`ns.out.*`) hold events for outside consumers, with a length limit and
//! `reject-publish` overflow: when the outside consumer falls behind, the broker nacks, the
//! outbox keeps the row pending and the backlog is visible, instead of dropping messages.

use lapin::{
    Channel, ExchangeKind,
    options::{ExchangeBindOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, LongString, ShortString},
};

use crate::broker::Names;

/// What kind of queue a [`QueueSpec`] describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueKind {
    /// Consumed by an Orderly worker: delivery limit, dead-letter queue, retry queues.
    Worker {
        /// Deliveries before the broker dead-letters a message by itself.
        delivery_limit: u32,
        /// Delay queues for retries ([`crate::retry::RetryPolicy::delay_queues`]).
        delay_queues: u32,
        /// Partitions the input is split into ([`crate::config::ConsumerSettings::partitions`]).
        partitions: u16,
    },
    /// Consumed by an outside system: a length limit and nothing else.
    Outbound {
        /// Messages the queue holds before the broker refuses more.
        max_length: u32,
    },
}

/// One queue and the message types routed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// Quorum (always, outside throwaway test namespaces) or classic.
    pub queue_type: crate::config::QueueType,
    /// Name without the namespace (`orders`, `out.warehouse`).
    pub name: String,
    /// Routing keys (message types) bound from the events exchange.
    pub bindings: Vec<String>,
    /// Worker or outbound.
    pub kind: QueueKind,
}

fn arg_str(table: &mut FieldTable, key: &str, value: &str) {
    table.insert(
        ShortString::from(key),
        AMQPValue::LongString(LongString::from(value)),
    );
}

fn arg_int(table: &mut FieldTable, key: &str, value: i64) {
    table.insert(ShortString::from(key), AMQPValue::LongLongInt(value));
}

fn typed(queue_type: crate::config::QueueType) -> FieldTable {
    let mut args = FieldTable::default();
    let name = match queue_type {
        crate::config::QueueType::Quorum => "quorum",
        crate::config::QueueType::Classic => "classic",
    };
    arg_str(&mut args, "x-queue-type", name);
    args
}

/// The exchange type of the plugin `rabbitmq_consistent_hash_exchange`.
pub const CONSISTENT_HASH: &str = "x-consistent-hash";

/// What the partition exchange hashes: the AMQP correlation id, which every envelope carries
/// (the order's id for everything about an order). A message without one hashes as one key.
const HASH_PROPERTY: &str = "correlation_id";

fn durable_exchange() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    }
}

/// Declares a durable exchange.
async fn declare_exchange(
    channel: &Channel,
    name: &str,
    kind: ExchangeKind,
    args: FieldTable,
) -> lapin::Result<()> {
    channel
        .exchange_declare(name.into(), kind, durable_exchange(), args)
        .await
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

/// Declares the exchanges every namespace has.
pub async fn declare_exchanges(channel: &Channel, names: &Names) -> lapin::Result<()> {
    declare_exchange(
        channel,
        &names.events_exchange(),
        ExchangeKind::Topic,
        FieldTable::default(),
    )
    .await?;
    declare_exchange(
        channel,
        &names.dead_letter_exchange(),
        ExchangeKind::Direct,
        FieldTable::default(),
    )
    .await
}

/// Checks that the exchanges every namespace has exist, without declaring them (a passive
/// declaration needs no permission: a worker's own broker user can do it). A missing one
/// closes the channel.
pub async fn check_exchanges(channel: &Channel, names: &Names) -> lapin::Result<()> {
    let options = ExchangeDeclareOptions {
        passive: true,
        ..durable_exchange()
    };
    for (exchange, kind) in [
        (names.events_exchange(), ExchangeKind::Topic),
        (names.dead_letter_exchange(), ExchangeKind::Direct),
    ] {
        channel
            .exchange_declare(exchange.into(), kind, options, FieldTable::default())
            .await?;
    }
    Ok(())
}

/// Declares one queue with everything around it. Safe to repeat; arguments must not change
/// for an existing queue (the broker refuses that with PRECONDITION_FAILED).
pub async fn declare_queue(
    channel: &Channel,
    names: &Names,
    spec: &QueueSpec,
) -> lapin::Result<()> {
    match spec.kind {
        QueueKind::Worker {
            delivery_limit,
            delay_queues,
            partitions,
        } => {
            declare_worker(
                channel,
                names,
                spec,
                delivery_limit,
                delay_queues,
                partitions,
            )
            .await
        }
        QueueKind::Outbound { max_length } => {
            let queue = names.queue(&spec.name);
            let mut args = typed(spec.queue_type);
            arg_int(&mut args, "x-max-length", i64::from(max_length));
            arg_str(&mut args, "x-overflow", "reject-publish");
            channel
                .queue_declare(queue.clone().into(), durable(), args)
                .await?;
            for key in &spec.bindings {
                channel
                    .queue_bind(
                        queue.clone().into(),
                        names.events_exchange().into(),
                        key.as_str().into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
            }
            Ok(())
        }
    }
}

async fn declare_worker(
    channel: &Channel,
    names: &Names,
    spec: &QueueSpec,
    delivery_limit: u32,
    delay_queues: u32,
    partitions: u16,
) -> lapin::Result<()> {
    let quorum = spec.queue_type == crate::config::QueueType::Quorum;
    let logical = names.queue(&spec.name);
    let exchange = names.partition_exchange(&spec.name);

    let dlq = names.dead_letter_queue(&spec.name);
    channel
        .queue_declare(dlq.clone().into(), durable(), typed(spec.queue_type))
        .await?;
    channel
        .queue_bind(
            dlq.into(),
            names.dead_letter_exchange().into(),
            logical.clone().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    // What the ring cannot route (a restarted cluster node's ring can miss a bucket for a
    // moment: rabbitmq-server#3386) goes to the first partition rather than nowhere: the
    // events exchange fans a message out to several workers, so the publisher's `mandatory`
    // would not notice one worker's copy missing.
    let unrouted = names.unrouted_exchange(&spec.name);
    declare_exchange(
        channel,
        &unrouted,
        ExchangeKind::Fanout,
        FieldTable::default(),
    )
    .await?;
    let mut hash_args = FieldTable::default();
    arg_str(&mut hash_args, "hash-property", HASH_PROPERTY);
    arg_str(&mut hash_args, "alternate-exchange", &unrouted);
    declare_exchange(
        channel,
        &exchange,
        ExchangeKind::Custom(CONSISTENT_HASH.into()),
        hash_args,
    )
    .await?;
    for partition in names.partition_queues(&spec.name, partitions) {
        let mut args = typed(spec.queue_type);
        if quorum {
            arg_int(&mut args, "x-delivery-limit", i64::from(delivery_limit));
            arg_str(&mut args, "x-dead-letter-strategy", "at-least-once");
        }
        arg_str(
            &mut args,
            "x-dead-letter-exchange",
            &names.dead_letter_exchange(),
        );
        arg_str(&mut args, "x-dead-letter-routing-key", &logical);
        arg_str(&mut args, "x-overflow", "reject-publish");
        args.insert(
            ShortString::from("x-single-active-consumer"),
            AMQPValue::Boolean(true),
        );
        channel
            .queue_declare(partition.clone().into(), durable(), args)
            .await?;
        // The binding key of a consistent-hash exchange is the partition's weight.
        channel
            .queue_bind(
                partition.into(),
                exchange.clone().into(),
                "1".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }

    channel
        .queue_bind(
            names.partition_queue(&spec.name, 0).into(),
            unrouted.into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let delays = names.delay_exchange(&spec.name);
    declare_exchange(
        channel,
        &delays,
        ExchangeKind::Direct,
        FieldTable::default(),
    )
    .await?;
    for index in 1..=delay_queues {
        let mut retry_args = typed(spec.queue_type);
        arg_str(&mut retry_args, "x-dead-letter-exchange", &exchange);
        if quorum {
            arg_str(&mut retry_args, "x-dead-letter-strategy", "at-least-once");
        }
        arg_str(&mut retry_args, "x-overflow", "reject-publish");
        let retry = names.retry_queue(&spec.name, index);
        channel
            .queue_declare(retry.clone().into(), durable(), retry_args)
            .await?;
        channel
            .queue_bind(
                retry.clone().into(),
                delays.clone().into(),
                retry.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }

    for key in &spec.bindings {
        channel
            .exchange_bind(
                exchange.clone().into(),
                names.events_exchange().into(),
                key.as_str().into(),
                ExchangeBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

/// Declares the exchanges and every queue in `specs`.
pub async fn declare(channel: &Channel, names: &Names, specs: &[QueueSpec]) -> lapin::Result<()> {
    declare_exchanges(channel, names).await?;
    for spec in specs {
        declare_queue(channel, names, spec).await?;
    }
    Ok(())
}

/// Deletes every queue and exchange in `specs` (tests clean up after themselves).
pub async fn delete(channel: &Channel, names: &Names, specs: &[QueueSpec]) -> lapin::Result<()> {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let mut exchanges = vec![names.events_exchange(), names.dead_letter_exchange()];
    for spec in specs {
        let mut queues = Vec::new();
        if let QueueKind::Worker {
            delay_queues,
            partitions,
            ..
        } = spec.kind
        {
            queues.extend(names.partition_queues(&spec.name, partitions));
            queues.push(names.dead_letter_queue(&spec.name));
            queues.extend((1..=delay_queues).map(|k| names.retry_queue(&spec.name, k)));
            exchanges.push(names.partition_exchange(&spec.name));
            exchanges.push(names.unrouted_exchange(&spec.name));
            exchanges.push(names.delay_exchange(&spec.name));
        } else {
            queues.push(names.queue(&spec.name));
        }
        for q in queues {
            channel
                .queue_delete(q.into(), QueueDeleteOptions::default())
                .await?;
        }
    }
    for exchange in exchanges {
        channel
            .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
            .await?;
    }
    Ok(())
}

/// Orderly's own topology: every route of the contracts' routing table, with the worker
/// queues' limits taken from `settings`.
pub fn standard_specs(settings: &crate::Settings) -> Vec<QueueSpec> {
    use orderly_contracts::routing::{self, QueueKind as RouteKind};
    routing::routes()
        .iter()
        .map(|route| QueueSpec {
            queue_type: settings.queue_type,
            name: route.queue.to_owned(),
            bindings: route
                .message_types
                .iter()
                .map(|t| (*t).to_owned())
                .collect(),
            kind: match route.kind {
                RouteKind::Worker => {
                    let consumer = settings.consumer_for(route.queue);
                    QueueKind::Worker {
                        delivery_limit: consumer.delivery_limit,
                        delay_queues: crate::retry::RetryPolicy::from(&settings.retry)
                            .delay_queues(),
                        partitions: consumer.partitions,
                    }
                }
                RouteKind::Outbound { max_length } => QueueKind::Outbound { max_length },
            },
        })
        .collect()
}

/// How long a dead letter waits in its queue before the broker drops it, by the policy
/// `<ns>-dead-letters` of [`definitions`]: two weeks for someone to look, replay or purge
/// (the operations page and `orderly dlq` show their age). Change the policy's
/// `message-ttl`, or remove the policy to keep them until purged.
pub const DEAD_LETTER_TTL: std::time::Duration = std::time::Duration::from_secs(14 * 24 * 3600);

/// The topology as a RabbitMQ definitions document (`rabbitmqctl import_definitions`, or
/// `load_definitions` at boot), for operators who declare it ahead of the workers. It is
/// the same declaration the workers make, so the two cannot disagree.
pub fn definitions(names: &Names, specs: &[QueueSpec], vhost: &str) -> serde_json::Value {
    use serde_json::{Value, json};
    let mut queues: Vec<Value> = Vec::new();
    let mut bindings: Vec<Value> = Vec::new();
    let mut partition_exchanges: Vec<(String, String, String)> = Vec::new();
    let queue = |name: String, args: Value| json!({"name": name, "vhost": vhost, "durable": true, "auto_delete": false, "arguments": args});
    let binding = |source: String, destination: String, kind: &str, key: &str| json!({"source": source, "vhost": vhost, "destination": destination, "destination_type": kind, "routing_key": key, "arguments": {}});
    for spec in specs {
        let main = names.queue(&spec.name);
        match spec.kind {
            QueueKind::Worker {
                delivery_limit,
                delay_queues,
                partitions,
            } => {
                let exchange = names.partition_exchange(&spec.name);
                let unrouted = names.unrouted_exchange(&spec.name);
                bindings.push(binding(
                    unrouted.clone(),
                    names.partition_queue(&spec.name, 0),
                    "queue",
                    "",
                ));
                for partition in names.partition_queues(&spec.name, partitions) {
                    queues.push(queue(
                        partition.clone(),
                        json!({"x-queue-type": "quorum", "x-delivery-limit": delivery_limit,
                               "x-dead-letter-exchange": names.dead_letter_exchange(), "x-dead-letter-routing-key": main,
                               "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish",
                               "x-single-active-consumer": true}),
                    ));
                    bindings.push(binding(exchange.clone(), partition, "queue", "1"));
                }
                let dlq = names.dead_letter_queue(&spec.name);
                queues.push(queue(dlq.clone(), json!({"x-queue-type": "quorum"})));
                bindings.push(binding(names.dead_letter_exchange(), dlq, "queue", &main));
                let delays = names.delay_exchange(&spec.name);
                for index in 1..=delay_queues {
                    let retry = names.retry_queue(&spec.name, index);
                    bindings.push(binding(delays.clone(), retry.clone(), "queue", &retry));
                    queues.push(queue(
                        retry,
                        json!({"x-queue-type": "quorum", "x-dead-letter-exchange": exchange,
                               "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}),
                    ));
                }
                for key in &spec.bindings {
                    bindings.push(binding(
                        names.events_exchange(),
                        exchange.clone(),
                        "exchange",
                        key,
                    ));
                }
                partition_exchanges.push((exchange, unrouted, delays));
            }
            QueueKind::Outbound { max_length } => {
                queues.push(queue(main.clone(), json!({"x-queue-type": "quorum", "x-max-length": max_length, "x-overflow": "reject-publish"})));
                for key in &spec.bindings {
                    bindings.push(binding(names.events_exchange(), main.clone(), "queue", key));
                }
            }
        }
    }
    let exchange = |name: String, kind: &str, args: Value| json!({"name": name, "vhost": vhost, "type": kind, "durable": true, "auto_delete": false, "internal": false, "arguments": args});
    let mut exchanges = vec![
        exchange(names.events_exchange(), "topic", json!({})),
        exchange(names.dead_letter_exchange(), "direct", json!({})),
    ];
    for (name, unrouted, delays) in partition_exchanges {
        exchanges.push(exchange(
            name,
            CONSISTENT_HASH,
            json!({"hash-property": HASH_PROPERTY, "alternate-exchange": unrouted}),
        ));
        exchanges.push(exchange(unrouted, "fanout", json!({})));
        exchanges.push(exchange(delays, "direct", json!({})));
    }
    // On a cluster, quorum queue leaders spread over the nodes instead of all landing on the
    // node whose client declared them (one worker declares them all at start). Dead letters
    // expire after DEAD_LETTER_TTL (one policy applies to a queue, the one of highest
    // priority, so the dead-letter queues' policy says the leader locator again).
    let ns = crate::access::regex_escape(names.namespace());
    let policies = json!([{
        "vhost": vhost,
        "name": format!("{}-leaders", names.namespace()),
        "pattern": format!("^{ns}\\."),
        "apply-to": "queues",
        "definition": {"queue-leader-locator": "balanced"},
        "priority": 0,
    }, {
        "vhost": vhost,
        "name": format!("{}-dead-letters", names.namespace()),
        "pattern": format!("^{ns}\\.[^.]+\\.dlq$"),
        "apply-to": "queues",
        "definition": {"queue-leader-locator": "balanced", "message-ttl": DEAD_LETTER_TTL.as_millis()},
        "priority": 1,
    }]);
    json!({
        "exchanges": exchanges,
        "policies": policies,
        "queues": queues,
        "bindings": bindings,
    })
}
