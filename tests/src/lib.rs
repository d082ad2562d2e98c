//! Test support: an isolated environment per test (its own database and broker namespace),
//! a probe worker whose behaviour is scripted by its messages, and waiting with deadlines.
//!
//! Every test gets a fresh namespace and database, so tests run in parallel without seeing
//! each other, against the real RabbitMQ and PostgreSQL.

pub mod chaos;
pub mod http;

use std::time::Duration;

use lapin::{BasicProperties, Channel, Connection, options::*};
use orderly_contracts::{Envelope, Message};
use orderly_runtime::{
    Handler, HandlerContext, HandlerError, Incoming, LockKey, Settings,
    broker::Names,
    config::{ConsumerSettings, RetrySettings},
    topology::{self, QueueKind, QueueSpec},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

/// Broker URL of the machine's RabbitMQ.
pub const BROKER_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// The probe worker's name (queue and schema).
pub const PROBE: &str = "probe";
/// The routing key probes are published under.
pub const PROBE_TYPE: &str = "test.probe";

/// A scripted test message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// A number the test chooses.
    pub n: u32,
    /// Fail transiently while the attempt is at most this.
    #[serde(default)]
    pub fail_transient_until: u32,
    /// Fail permanently.
    #[serde(default)]
    pub fail_permanent: bool,
    /// Sleep this long inside the handler.
    #[serde(default)]
    pub sleep_ms: u64,
    /// Emit one `test.probe.echo` message.
    #[serde(default)]
    pub emit: bool,
    /// Fail transiently while the switch of this name is on (a broken dependency).
    #[serde(default)]
    pub fail_while_switch: Option<String>,
    /// Counters to increment, in this order, each under its row lock and declared as a lock
    /// key; `touch_ms` is waited after each, to widen the window for lock-order conflicts.
    #[serde(default)]
    pub touch: Vec<u32>,
    /// Pause after each counter update.
    #[serde(default)]
    pub touch_ms: u64,
}

impl Message for Probe {
    const TYPE: &'static str = PROBE_TYPE;
    const VERSION: u16 = 1;
}

/// What the probe emits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProbeEcho {
    /// The probe's number.
    pub n: u32,
}

impl Message for ProbeEcho {
    const TYPE: &'static str = "test.probe.echo";
    const VERSION: u16 = 1;
}

/// The probe handler: records each attempt outside the transaction (so rolled-back attempts
/// are still seen) and its effect inside it (so an effect exists once per committed handling).
#[derive(Debug, Clone)]
pub struct ProbeHandler {
    /// A pool outside the handler's transaction.
    pub side: PgPool,
}

impl orderly_contracts::Validate for Probe {
    fn validate(&self) -> Result<(), orderly_contracts::ContractError> {
        Ok(())
    }
}

orderly_runtime::inputs! {
    /// The probe worker's one input.
    pub enum ProbeInput {
        /// A scripted probe.
        Probe(Probe),
    }
}

impl Handler for ProbeHandler {
    type Input = ProbeInput;

    async fn lock_keys(
        &self,
        msg: &Incoming,
        _conn: &mut sqlx::PgConnection,
    ) -> Result<Vec<LockKey>, HandlerError> {
        let Ok(ProbeInput::Probe(env)) = msg.input::<ProbeInput>() else {
            return Ok(Vec::new());
        };
        Ok(env
            .payload
            .touch
            .iter()
            .map(|counter| LockKey::exclusive("counter", counter))
            .collect())
    }

    async fn handle(
        &self,
        msg: &Incoming,
        cx: &mut HandlerContext<'_>,
    ) -> Result<(), HandlerError> {
        let ProbeInput::Probe(env) = msg.input::<ProbeInput>()?;
        let p = &env.payload;
        sqlx::query("insert into probe.attempts (message_id, attempt) values ($1, $2)")
            .bind(env.message_id)
            .bind(msg.attempt as i32)
            .execute(&self.side)
            .await?;
        if p.sleep_ms > 0 {
            tokio::time::sleep(Duration::from_millis(p.sleep_ms)).await;
        }
        if let Some(switch) = &p.fail_while_switch {
            let broken: bool =
                sqlx::query_scalar("select exists(select 1 from probe.switches where name = $1)")
                    .bind(switch)
                    .fetch_one(&self.side)
                    .await?;
            if broken {
                return Err(HandlerError::transient(anyhow::anyhow!(
                    "dependency {switch} is down"
                )));
            }
        }
        if p.fail_permanent {
            return Err(HandlerError::permanent(format!("probe {} refuses", p.n)));
        }
        if msg.attempt <= p.fail_transient_until {
            return Err(HandlerError::transient(anyhow::anyhow!(
                "probe {} fails attempt {}",
                p.n,
                msg.attempt
            )));
        }
        for counter in &p.touch {
            sqlx::query(
                "insert into probe.counters (id, n) values ($1, 1)
                 on conflict (id) do update set n = probe.counters.n + 1",
            )
            .bind(i64::from(*counter))
            .execute(&mut *cx.conn)
            .await?;
            if p.touch_ms > 0 {
                tokio::time::sleep(Duration::from_millis(p.touch_ms)).await;
            }
        }
        sqlx::query("insert into probe.effects (message_id, n) values ($1, $2)")
            .bind(env.message_id)
            .bind(p.n as i32)
            .execute(&mut *cx.conn)
            .await?;
        if p.emit {
            cx.emit(ProbeEcho { n: p.n });
        }
        Ok(())
    }
}

/// One test's private world.
#[derive(Debug)]
pub struct TestEnv {
    /// Settings pointing at the private database and namespace.
    pub settings: Settings,
    /// Broker names of the namespace.
    pub names: Names,
    /// A pool on the private database (probe schema first on the search path).
    pub pool: PgPool,
    /// A broker connection for the test's own publishing and inspection.
    pub connection: Connection,
    /// A channel with publisher confirms.
    pub channel: Channel,
    database: String,
    specs: Vec<QueueSpec>,
}

impl TestEnv {
    /// Creates the database and namespace, migrates, installs the probe schema and declares
    /// the probe queue (consuming `test.probe`) plus an outbound queue for echoes.
    pub async fn new(retry: RetrySettings, consumer: ConsumerSettings) -> anyhow::Result<Self> {
        orderly_runtime::testing::ensure_services()?;
        orderly_runtime::telemetry::init("warn");
        let suffix = Uuid::now_v7().simple().to_string();
        let suffix = &suffix[suffix.len() - 12..];
        let namespace = format!("t-{suffix}");
        let database = format!("orderly_t_{suffix}");
        let database_url = format!("postgres://postgres@127.0.0.1:5432/{database}");
        orderly_runtime::db::ensure_database(&database_url).await?;
        orderly_runtime::db::migrate(&database_url).await?;
        let pool = orderly_runtime::db::connect(&database_url, PROBE, 4).await?;
        sqlx::query("select orderly_messaging.install('probe')")
            .execute(&pool)
            .await?;
        sqlx::raw_sql(
            "create table probe.effects (message_id uuid not null, n int not null,
                                         seq bigint generated always as identity);
             create table probe.attempts (message_id uuid not null, attempt int not null);
             create table probe.switches (name text primary key);
             create table probe.counters (id bigint primary key, n int not null);",
        )
        .execute(&pool)
        .await?;
        let settings = Settings {
            broker_url: BROKER_URL.into(),
            database_url,
            namespace: namespace.clone(),
            http_addr: "127.0.0.1:0".into(),
            consumer: consumer.clone(),
            retry: retry.clone(),
            ..Settings::default()
        };
        let names = Names::new(namespace.clone());
        let connection =
            orderly_runtime::broker::connect(BROKER_URL, &format!("test-{namespace}")).await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let specs = vec![
            QueueSpec {
                queue_type: orderly_runtime::config::QueueType::Quorum,
                name: PROBE.into(),
                bindings: vec![PROBE_TYPE.into()],
                kind: QueueKind::Worker {
                    delivery_limit: consumer.delivery_limit,
                    delay_queues: orderly_runtime::retry::RetryPolicy::from(&retry).delay_queues(),
                    partitions: consumer.partitions,
                },
            },
            QueueSpec {
                queue_type: orderly_runtime::config::QueueType::Quorum,
                name: "out.echo".into(),
                bindings: vec![ProbeEcho::TYPE.into()],
                kind: QueueKind::Outbound { max_length: 10_000 },
            },
        ];
        topology::declare(&channel, &names, &specs).await?;
        Ok(Self {
            settings,
            names,
            pool,
            connection,
            channel,
            database,
            specs,
        })
    }

    /// Default retry settings with short delays, for tests.
    pub fn fast_retry(max_attempts: u32) -> RetrySettings {
        RetrySettings {
            max_attempts,
            initial_delay_ms: 50,
            max_delay_ms: 400,
        }
    }

    /// Publishes a probe as an outside producer would; returns its message id.
    pub async fn publish_probe(&self, probe: Probe) -> anyhow::Result<Uuid> {
        let env = Envelope::new("test", format!("probe-{}", probe.n), probe);
        self.publish_raw(PROBE_TYPE, &env.to_json(), Some(env.message_id))
            .await?;
        Ok(env.message_id)
    }

    /// Publishes probes, each about its flow (the correlation id, also as the AMQP property,
    /// as Orderly's relays publish), all at once, then waits for every confirm; returns their
    /// message ids.
    pub async fn publish_probes_in(
        &self,
        probes: Vec<(String, Probe)>,
    ) -> anyhow::Result<Vec<Uuid>> {
        let mut ids = Vec::new();
        let mut confirms = Vec::new();
        for (flow, probe) in probes {
            let env = Envelope::new("test", flow.clone(), probe);
            ids.push(env.message_id);
            confirms.push(
                self.channel
                    .basic_publish(
                        self.names.events_exchange().into(),
                        PROBE_TYPE.into(),
                        BasicPublishOptions {
                            mandatory: true,
                            ..BasicPublishOptions::default()
                        },
                        &env.to_json(),
                        BasicProperties::default()
                            .with_delivery_mode(2)
                            .with_message_id(env.message_id.to_string().into())
                            .with_correlation_id(flow.into()),
                    )
                    .await?,
            );
        }
        for confirm in confirms {
            let confirm = confirm.await?;
            anyhow::ensure!(
                matches!(confirm, lapin::Confirmation::Ack(None)),
                "publish not confirmed: {confirm:?}"
            );
        }
        Ok(ids)
    }

    /// Publishes raw bytes to the events exchange under `routing_key`, confirmed.
    pub async fn publish_raw(
        &self,
        routing_key: &str,
        body: &[u8],
        id: Option<Uuid>,
    ) -> anyhow::Result<()> {
        let mut props = BasicProperties::default().with_delivery_mode(2);
        if let Some(id) = id {
            props = props.with_message_id(id.to_string().into());
        }
        let confirm = self
            .channel
            .basic_publish(
                self.names.events_exchange().into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                props,
            )
            .await?
            .await?;
        anyhow::ensure!(
            matches!(confirm, lapin::Confirmation::Ack(None)),
            "publish not confirmed: {confirm:?}"
        );
        Ok(())
    }

    /// Messages ready in a queue (full name); for a worker's queue (`<ns>.probe`), in all
    /// its partitions.
    pub async fn queue_depth(&self, queue: &str) -> anyhow::Result<u32> {
        let queues = self
            .specs
            .iter()
            .find_map(|spec| match spec.kind {
                QueueKind::Worker { partitions, .. } if self.names.queue(&spec.name) == queue => {
                    Some(self.names.partition_queues(&spec.name, partitions))
                }
                _ => None,
            })
            .unwrap_or_else(|| vec![queue.to_owned()]);
        orderly_runtime::testing::messages_in(&self.connection, queues).await
    }

    /// How many effect rows the probe wrote for `id`.
    pub async fn effects(&self, id: Uuid) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar("select count(*) from probe.effects where message_id = $1")
                .bind(id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// All effect rows.
    pub async fn total_effects(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("select count(*) from probe.effects")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Distinct attempts the handler saw for `id`.
    pub async fn attempts(&self, id: Uuid) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(
            "select count(distinct attempt) from probe.attempts where message_id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// How often the handler was started for `id`, all attempts together.
    pub async fn starts(&self, id: Uuid) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar("select count(*) from probe.attempts where message_id = $1")
                .bind(id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Closes every broker connection of this namespace's workers (not the test's own), as
    /// `rabbitmqctl close_all_connections` would for them.
    pub fn close_worker_connections(&self) -> anyhow::Result<usize> {
        let out = std::process::Command::new("rabbitmqctl")
            .args(["-q", "list_connections", "pid", "client_properties"])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "rabbitmqctl list_connections failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let marker = format!("@{}", self.names.namespace());
        let mut closed = 0;
        for line in String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(&marker))
        {
            let Some(pid) = line.split_whitespace().next() else {
                continue;
            };
            let status = std::process::Command::new("rabbitmqctl")
                .args([
                    "-q",
                    "close_connection",
                    pid,
                    "test: broker connection lost",
                ])
                .status()?;
            anyhow::ensure!(
                status.success(),
                "rabbitmqctl close_connection {pid} failed"
            );
            closed += 1;
        }
        Ok(closed)
    }

    /// Turns a named dependency switch on (broken) or off.
    pub async fn switch(&self, name: &str, broken: bool) -> anyhow::Result<()> {
        let sql = if broken {
            "insert into probe.switches values ($1) on conflict do nothing"
        } else {
            "delete from probe.switches where name = $1"
        };
        sqlx::query(sql).bind(name).execute(&self.pool).await?;
        Ok(())
    }

    /// A pool for the probe handler's side records.
    pub async fn side_pool(&self) -> anyhow::Result<PgPool> {
        Ok(orderly_runtime::db::connect(&self.settings.database_url, PROBE, 4).await?)
    }

    /// Deletes the namespace's queues and the database.
    pub async fn cleanup(self) -> anyhow::Result<()> {
        let ch = self.connection.create_channel().await?;
        topology::delete(&ch, &self.names, &self.specs).await?;
        let _ = self.connection.close(200, "done".into()).await;
        self.pool.close().await;
        orderly_runtime::testing::drop_database(&self.database).await
    }
}

pub use orderly_runtime::testing::wait_until;

/// Runs `node tools/<tool>/validate.mjs <document>` (paths from the workspace root) and
/// returns whether it passed and what it printed. The validators are Node packages that
/// `scripts/services` installs from their lock files; `installed` is the package directory
/// under `tools/<tool>/node_modules` whose absence fails the test naming that command.
pub fn node_validator(tool: &str, installed: &str, document: &str) -> (bool, String) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    node_script(
        tool,
        installed,
        "validate.mjs",
        &[root.join(document).as_os_str()],
    )
}

/// Runs `node tools/openapi/validate-lines.mjs <openapi document> <schema> <lines>`: whether
/// every line of the JSON-lines file `lines` is valid against the document's
/// `#/components/schemas/<schema>` (Ajv, JSON Schema 2020-12, strict), and what it printed.
pub fn node_lines_validator(
    document: &str,
    schema: &str,
    lines: &std::path::Path,
) -> (bool, String) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let document = root.join(document);
    node_script(
        "openapi",
        "ajv",
        "validate-lines.mjs",
        &[document.as_os_str(), schema.as_ref(), lines.as_os_str()],
    )
}

/// `node tools/<tool>/<script> <args>`: whether it passed, and what it printed.
fn node_script(
    tool: &str,
    installed: &str,
    script: &str,
    args: &[&std::ffi::OsStr],
) -> (bool, String) {
    let tool_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tools")
        .join(tool);
    assert!(
        tool_dir.join("node_modules").join(installed).is_dir(),
        "the {tool} validator is not installed: run scripts/services (npm ci in tools/{tool})"
    );
    let output = std::process::Command::new("node")
        .arg(tool_dir.join(script))
        .args(args)
        .output()
        .expect("node runs (scripts/services installs it)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), report)
}

/// Whether a command answered by the orders worker is a cancellation refused because the
/// order had left a warehouse. The simulated carrier is quick: by the time the cancellation
/// arrives the parcel may be delivered and the order completed, which is refused just the
/// same, so any of those words will do.
pub fn refused_after_dispatch(command: &serde_json::Value) -> bool {
    let why = command["refused"].to_string();
    command["status"] == "refused"
        && ["dispatched", "shipped", "delivered", "completed", "left"]
            .iter()
            .any(|w| why.contains(w))
}

/// A TCP proxy to `127.0.0.1:target` on a port of its own (returned), forwarding while `up`
/// is true; while false, it cuts open connections and refuses new ones. "The database (or
/// broker) is down" as a switch, not a stopped server shared with other tests.
pub async fn proxy(target: u16, up: tokio::sync::watch::Receiver<bool>) -> anyhow::Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            if !*up.borrow() {
                drop(inbound);
                continue;
            }
            let mut up = up.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = up.wait_for(|up| !*up) => {}
                }
            });
        }
    });
    Ok(port)
}
