//! Configuration: defaults, then an optional TOML file, then `ORDERLY__`-prefixed environment
//! variables (`ORDERLY__BROKER_URL`, `ORDERLY__WORKERS__ORDERS__PREFETCH`, ...).
//!
//! Secrets (the passwords inside the URLs) never reach a log line: [`Settings`] prints them
//! through [`redact_url`].

use std::{collections::BTreeMap, path::Path, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

/// Everything a process needs to run workers and operator commands.
#[derive(Clone, Serialize, Deserialize)]
pub struct Settings {
    /// AMQP URL of the broker, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`; for a cluster,
    /// its nodes' URLs separated by commas (connections fail over between them).
    pub broker_url: String,
    /// PostgreSQL URL: every worker's schema, unless `databases` names another database for
    /// it.
    pub database_url: String,
    /// Per-worker databases: a worker named here keeps its schema in this PostgreSQL
    /// database instead of `database_url` (`ORDERLY__DATABASES__ORDERS=postgres://…`).
    /// Workers never read each other's schemas, so each can live on its own server.
    #[serde(default)]
    pub databases: BTreeMap<String, String>,
    /// Per-worker broker URLs: a worker named here connects with this URL (its own broker
    /// user, `ORDERLY__BROKERS__ORDERS=amqps://orderly-orders:…@…`) instead of `broker_url`.
    /// `deploy/rabbitmq/definitions.json` has one user per worker with permissions on its
    /// own queues and exchanges only ([`crate::access`]).
    #[serde(default)]
    pub brokers: BTreeMap<String, String>,
    /// Whether `orderly run` provisions what the workers need before starting them: creates
    /// and migrates the databases and declares the whole broker topology. True by default
    /// (a laptop, the demo, the tests: one set of administrator credentials). A production
    /// deployment sets it false: migrations, the topology and the workers' roles are
    /// applied by a job with administrator credentials (`orderly migrate`, `orderly
    /// topology`, `orderly roles --apply`), and each worker, connecting as its own user,
    /// declares only its own queues (`docs/operations.md`, "Least privilege").
    #[serde(default = "yes")]
    pub provision: bool,
    /// Prefix of every exchange and queue name, so environments and tests never collide.
    pub namespace: String,
    /// Address of the health and metrics endpoint; port 0 picks a free one.
    pub http_addr: String,
    /// Queue type of every declared queue. `quorum` (the default) everywhere that matters;
    /// `classic` only for throwaway namespaces (tests), because quorum queues are not built
    /// for being created and deleted by the hundred (RabbitMQ stalls under that churn), and
    /// classic queues lack the delivery limit and at-least-once dead-lettering.
    #[serde(default)]
    pub queue_type: QueueType,
    /// Defaults for every worker, overridable per worker under `workers.<name>`.
    pub consumer: ConsumerSettings,
    /// Per-worker overrides.
    #[serde(default)]
    pub workers: BTreeMap<String, ConsumerSettings>,
    /// Retry policy for transient handler failures.
    pub retry: RetrySettings,
    /// Outbox relay tuning.
    pub relay: RelaySettings,
    /// Where these settings came from (defaults, file, environment), kept so that a
    /// worker's own section (`[webhooks]`, `[renderer]`) is read from the same sources with
    /// [`Settings::section`].
    #[serde(skip)]
    pub sources: Sources,
}

/// The sources settings were loaded from (opaque; empty for settings built in code).
#[derive(Clone, Default)]
pub struct Sources(Option<Figment>);

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Sources(loaded)"
        } else {
            "Sources(none)"
        })
    }
}

/// The kind of queue the topology declares.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    /// Replicated, with delivery limits and at-least-once dead-lettering.
    #[default]
    Quorum,
    /// Single-node; for throwaway test namespaces only.
    Classic,
}

/// Most partitions a worker's queue may have (each is a queue on the broker, a Raft group
/// for a quorum queue).
pub const MAX_PARTITIONS: u16 = 64;

/// How one worker consumes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConsumerSettings {
    /// Unacknowledged deliveries the broker may push to this process (basic.qos), shared
    /// evenly by its partitions' subscriptions.
    pub prefetch: u16,
    /// Batches handled at the same time, each in its own database transaction.
    pub concurrency: usize,
    /// Most deliveries handled in one database transaction.
    pub batch_size: usize,
    /// Deliveries of one message before the broker dead-letters it by itself (a message
    /// that crashes the process every time). Quorum queue `x-delivery-limit`.
    pub delivery_limit: u32,
    /// Queues the worker's input is split into by correlation id (everything about one
    /// order lands in one), each with a single active consumer, so copies of a worker
    /// never handle one order's messages side by side or out of order (decision 0016).
    /// More partitions let more copies share the work; changing it moves some orders to
    /// another partition, so change it with the worker's queues drained.
    #[serde(default = "default_partitions")]
    pub partitions: u16,
    /// Which copy of the worker this process is, `"i/n"` (from 1), where copies are
    /// numbered (a StatefulSet's ordinal, the fault suite's copies): it takes the partitions
    /// `p` with `p % n == i - 1` at once, and the others as a stand-by behind whoever consumes
    /// them, or alone once nobody has for 5 s. Unset: first the partitions nobody consumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<String>,
}

impl ConsumerSettings {
    /// `copy` as (index from 0, number of copies), or why it is not `i/n` with 1 ≤ i ≤ n.
    pub fn copy_of(&self) -> Result<Option<(u16, u16)>, String> {
        let Some(copy) = &self.copy else {
            return Ok(None);
        };
        let parsed = copy.split_once('/').and_then(|(i, n)| {
            Some((i.trim().parse::<u16>().ok()?, n.trim().parse::<u16>().ok()?))
        });
        match parsed {
            Some((i, n)) if i >= 1 && i <= n => Ok(Some((i - 1, n))),
            _ => Err(format!(
                "copy is `{copy}`; it must be `i/n`, this process's number i from 1 to the n copies"
            )),
        }
    }
}

fn default_partitions() -> u16 {
    4
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self {
            prefetch: 64,
            concurrency: 4,
            batch_size: 32,
            delivery_limit: 10,
            partitions: default_partitions(),
            copy: None,
        }
    }
}

/// Retry budget and backoff for transient failures.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RetrySettings {
    /// Total handling attempts, the first one included, before a message is dead-lettered.
    pub max_attempts: u32,
    /// Delay before the first retry, in milliseconds.
    pub initial_delay_ms: u64,
    /// Upper bound of any one delay, in milliseconds.
    pub max_delay_ms: u64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            initial_delay_ms: 1_000,
            max_delay_ms: 60_000,
        }
    }
}

/// Outbox relay tuning.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RelaySettings {
    /// Rows published per database transaction.
    pub batch_size: i64,
    /// How often the relay sweeps the outbox for rows nobody handed over (a crash, another
    /// process, retries that are due); rows younger than this are left to the handoff.
    pub poll_interval_ms: u64,
    /// How long published rows are kept for inspection before they are pruned.
    pub retention_hours: u32,
    /// The deduplication window: how long the inbox remembers a handled message (its id
    /// per consumer) before the row is pruned. A message redelivered or re-sent with the same
    /// id within it has no second effect; after it, it would be handled as new. Longer than
    /// any redelivery, retry or replay of this system (the longest retry delay is seconds),
    /// and than outside producers' re-send windows.
    pub inbox_retention_hours: u32,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            batch_size: 256,
            poll_interval_ms: 1_000,
            retention_hours: 72,
            inbox_retention_hours: 168,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            broker_url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            database_url: "postgres://postgres@127.0.0.1:5432/orderly".into(),
            databases: BTreeMap::new(),
            brokers: BTreeMap::new(),
            provision: true,
            namespace: "orderly".into(),
            http_addr: "127.0.0.1:9464".into(),
            queue_type: QueueType::Quorum,
            consumer: ConsumerSettings::default(),
            workers: BTreeMap::new(),
            retry: RetrySettings::default(),
            relay: RelaySettings::default(),
            sources: Sources::default(),
        }
    }
}

fn yes() -> bool {
    true
}

/// A configuration that cannot be used, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Settings {
    /// Loads defaults, then `file` if it exists, then `ORDERLY__*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        let figment = figment.merge(Env::prefixed("ORDERLY__").split("__"));
        let mut settings: Settings = figment.extract().map_err(|e| ConfigError(e.to_string()))?;
        settings.validate()?;
        settings.sources = Sources(Some(figment));
        Ok(settings)
    }

    /// A worker's own settings, under `key` (e.g. `[webhooks]` in the file,
    /// `ORDERLY__WEBHOOKS__TIMEOUT_MS` in the environment), read from the sources these
    /// settings were loaded from; `T::default()` for anything not given (and for settings
    /// that were not loaded, as in tests). An unknown or malformed field is an error that
    /// names it.
    pub fn section<T>(&self, key: &str) -> Result<T, ConfigError>
    where
        T: Serialize + serde::de::DeserializeOwned + Default,
    {
        let mut figment = Figment::from(Serialized::default(key, T::default()));
        if let Some(source) = &self.sources.0 {
            figment = figment.merge(source.clone());
        }
        figment
            .extract_inner(key)
            .map_err(|e| ConfigError(format!("[{key}]: {e}")))
    }

    /// These settings with a worker's section `key` set to `value`, over whatever the
    /// sources said: for settings built in code (a test's world gives every test its own
    /// document directory this way).
    #[must_use]
    pub fn with_section<T: Serialize>(mut self, key: &str, value: T) -> Self {
        let base = self.sources.0.take().unwrap_or_default();
        self.sources = Sources(Some(base.merge(Serialized::default(key, value))));
        self
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let ns_ok = !self.namespace.is_empty()
            && self.namespace.len() <= 64
            && self
                .namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ns_ok {
            return Err(ConfigError(format!(
                "namespace `{}` must be 1-64 characters of [A-Za-z0-9-_.]",
                self.namespace
            )));
        }
        for (name, c) in std::iter::once(("consumer", &self.consumer))
            .chain(self.workers.iter().map(|(k, v)| (k.as_str(), v)))
        {
            if c.prefetch == 0 || c.concurrency == 0 || c.batch_size == 0 || c.delivery_limit == 0 {
                return Err(ConfigError(format!(
                    "{name}: prefetch, concurrency, batch_size and delivery_limit must be positive"
                )));
            }
            if let Err(why) = c.copy_of() {
                return Err(ConfigError(format!("{name}.{why}")));
            }
            if !(1..=MAX_PARTITIONS).contains(&c.partitions) {
                return Err(ConfigError(format!(
                    "{name}.partitions is {}; it must be 1 to {MAX_PARTITIONS}",
                    c.partitions
                )));
            }
        }
        if self.retry.max_attempts == 0 {
            return Err(ConfigError("retry.max_attempts must be at least 1".into()));
        }
        Ok(())
    }

    /// The database of `worker` (the schema of that name): its own, else `database_url`.
    pub fn database_url_for(&self, worker: &str) -> &str {
        self.databases
            .get(worker)
            .map_or(self.database_url.as_str(), String::as_str)
    }

    /// The broker URL of `worker`: its own (its own broker user), else `broker_url`.
    pub fn broker_url_for(&self, worker: &str) -> &str {
        self.brokers
            .get(worker)
            .map_or(self.broker_url.as_str(), String::as_str)
    }

    /// Every database some worker keeps its schema in: `database_url` first, then the
    /// per-worker ones, each once (what `orderly migrate` migrates).
    pub fn all_database_urls(&self) -> Vec<&str> {
        let mut urls = vec![self.database_url.as_str()];
        for url in self.databases.values() {
            if !urls.contains(&url.as_str()) {
                urls.push(url);
            }
        }
        urls
    }

    /// Consumer settings for `worker`: its override, else the defaults.
    pub fn consumer_for(&self, worker: &str) -> ConsumerSettings {
        self.workers
            .get(worker)
            .cloned()
            .unwrap_or_else(|| self.consumer.clone())
    }

    /// The poll interval as a duration.
    pub fn relay_poll_interval(&self) -> Duration {
        Duration::from_millis(self.relay.poll_interval_ms)
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("broker_url", &redact_url(&self.broker_url))
            .field("database_url", &redact_url(&self.database_url))
            .field("databases", &redacted(&self.databases))
            .field("brokers", &redacted(&self.brokers))
            .field("provision", &self.provision)
            .field("namespace", &self.namespace)
            .field("http_addr", &self.http_addr)
            .field("queue_type", &self.queue_type)
            .field("consumer", &self.consumer)
            .field("workers", &self.workers)
            .field("retry", &self.retry)
            .field("relay", &self.relay)
            .finish()
    }
}

/// Serde for a [`Duration`] written as whole milliseconds, for settings (`timeout_ms = 500`).
pub mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the duration as milliseconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Reads milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Per-worker URLs with their passwords redacted.
fn redacted(urls: &BTreeMap<String, String>) -> BTreeMap<&str, String> {
    urls.iter()
        .map(|(worker, url)| (worker.as_str(), redact_url(url)))
        .collect()
}

/// `scheme://user:secret@host/db` → `scheme://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    if url.contains(',') {
        // A list of broker URLs (a cluster's nodes).
        return url
            .split(',')
            .map(|u| redact_url(u.trim()))
            .collect::<Vec<_>>()
            .join(",");
    }
    // A password may also ride in the query (`postgres://h/db?user=u&password=…`).
    if let Some((base, query)) = url.split_once('?')
        && query.split('&').any(|p| p.starts_with("password="))
    {
        let query: Vec<&str> = query
            .split('&')
            .map(|p| {
                if p.starts_with("password=") {
                    "password=***"
                } else {
                    p
                }
            })
            .collect();
        return format!("{}?{}", redact_url(base), query.join("&"));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Section {
        listen: String,
        burst: u32,
    }

    #[test]
    fn a_section_set_in_code_is_read_back_with_defaults_for_the_rest() {
        let given = Section {
            listen: "127.0.0.1:9".into(),
            burst: 0,
        };
        let settings = Settings::default().with_section("thing", &given);
        assert_eq!(settings.section::<Section>("thing").expect("reads"), given);
        assert_eq!(
            settings.section::<Section>("other").expect("reads"),
            Section::default(),
            "other sections keep their defaults"
        );
    }

    #[test]
    fn a_workers_section_comes_from_the_same_file_with_defaults_for_the_rest() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        struct Section {
            #[serde(rename = "wait_ms", with = "millis")]
            wait: Duration,
            size: u32,
        }
        impl Default for Section {
            fn default() -> Self {
                Self {
                    wait: Duration::from_secs(1),
                    size: 7,
                }
            }
        }
        let dir = std::env::temp_dir().join(format!("orderly-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("orderly.toml");
        std::fs::write(&file, "namespace = \"n1\"\n[section]\nwait_ms = 250\n").expect("write");
        let settings = Settings::load(Some(&file)).expect("loads");
        assert_eq!(
            settings.section::<Section>("section").expect("section"),
            Section {
                wait: Duration::from_millis(250),
                size: 7
            }
        );
        assert_eq!(
            Settings::default()
                .section::<Section>("section")
                .expect("defaults"),
            Section::default()
        );
        std::fs::write(&file, "[section]\nwiat_ms = 250\n").expect("write");
        let err = Settings::load(Some(&file))
            .expect("loads")
            .section::<Section>("section")
            .expect_err("a misspelt field is refused");
        assert!(err.to_string().contains("wiat_ms"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("amqp://guest:guest@h:5672/%2f"),
            "amqp://guest:***@h:5672/%2f"
        );
        assert_eq!(
            redact_url("postgres://postgres@h/db"),
            "postgres://postgres@h/db"
        );
        assert_eq!(redact_url("not a url"), "not a url");
        assert_eq!(
            redact_url("amqp://g:a@n1:5672/%2f, amqp://g:b@n2:5672/%2f"),
            "amqp://g:***@n1:5672/%2f,amqp://g:***@n2:5672/%2f",
            "every node of a cluster list"
        );
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=pw&sslmode=verify-full"),
            "postgres://h/db?user=u&password=***&sslmode=verify-full",
            "a password in the query"
        );
        assert_eq!(
            redact_url("amqps://u:pw@h:5671/%2f?cacertfile=/etc/ca.pem"),
            "amqps://u:***@h:5671/%2f?cacertfile=/etc/ca.pem"
        );
        let s = Settings {
            broker_url: "amqp://u:hunter2@h".into(),
            brokers: [(
                "orders".to_owned(),
                "amqps://orderly-orders:opensesame@h".to_owned(),
            )]
            .into(),
            databases: [(
                "orders".to_owned(),
                "postgres://u:swordfish@h/db".to_owned(),
            )]
            .into(),
            ..Settings::default()
        };
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("hunter2")
                && !shown.contains("swordfish")
                && !shown.contains("opensesame"),
            "{shown}"
        );
    }

    #[test]
    fn a_worker_named_under_databases_uses_its_own_database() {
        let s = Settings {
            database_url: "postgres://h/shared".into(),
            databases: [
                ("orders".to_owned(), "postgres://h/orders".to_owned()),
                ("inventory".to_owned(), "postgres://h/shared".to_owned()),
            ]
            .into(),
            ..Settings::default()
        };
        assert_eq!(s.database_url_for("orders"), "postgres://h/orders");
        assert_eq!(s.database_url_for("fulfillment"), "postgres://h/shared");
        assert_eq!(
            s.all_database_urls(),
            vec!["postgres://h/shared", "postgres://h/orders"]
        );
    }

    #[test]
    fn rejects_bad_namespace_and_zero_limits() {
        let mut s = Settings {
            namespace: "has space".into(),
            ..Settings::default()
        };
        assert!(s.validate().unwrap_err().to_string().contains("namespace"));
        s.namespace = "ok".into();
        s.consumer.prefetch = 0;
        assert!(s.validate().unwrap_err().to_string().contains("prefetch"));
        s.consumer.prefetch = 1;
        s.consumer.partitions = 0;
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("consumer.partitions is 0")
        );
        s.consumer.partitions = 4;
        for bad in ["0/2", "3/2", "two", "1/"] {
            s.consumer.copy = Some(bad.into());
            assert!(
                s.validate()
                    .unwrap_err()
                    .to_string()
                    .contains(&format!("consumer.copy is `{bad}`")),
                "{bad}"
            );
        }
        s.consumer.copy = Some("2/3".into());
        assert_eq!(s.consumer.copy_of(), Ok(Some((1, 3))));
        assert!(s.validate().is_ok());
    }

    #[test]
    fn per_worker_override_falls_back_to_defaults() {
        let mut s = Settings::default();
        let custom = ConsumerSettings {
            prefetch: 7,
            ..ConsumerSettings::default()
        };
        s.workers.insert("orders".into(), custom.clone());
        assert_eq!(s.consumer_for("orders"), custom);
        assert_eq!(s.consumer_for("inventory"), ConsumerSettings::default());
    }
}
