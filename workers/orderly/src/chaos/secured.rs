//! The `least-privilege-tls` scenario: Orderly deployed as production runs it, and probes
//! of what it must refuse.
//!
//! Its own RabbitMQ node listens for TLS only, its own PostgreSQL cluster requires TLS and a
//! password of every worker role; the certificates come from a private CA made for the run.
//! The administrator (the suite) migrates, declares the topology, imports the broker users
//! from the same definitions `deploy/rabbitmq/definitions.json` is generated from and
//! applies the workers' roles (`orderly roles`); each worker then runs with
//! `provision = false` and its own credentials only (`amqps://` trusting the CA,
//! `sslmode=verify-full`), the shared administrator URLs pointing nowhere, so a worker that
//! needed more than its own rights would fail the scenario. After the load, the probes check
//! the refusals (docs/operations.md, "Least privilege").

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions};
use orderly_runtime::{Settings, access, broker};
use sqlx::Connection;

use super::{
    check::Verdict,
    fleet,
    services::{Certificates, Postgres, Rabbit},
};

/// The scenario's services and each worker's password.
pub(crate) struct Services {
    pub(crate) pg: Postgres,
    pub(crate) rabbit: Rabbit,
    certs: Certificates,
    dir: PathBuf,
    passwords: BTreeMap<&'static str, String>,
}

/// A URL nothing answers on: what the workers get as the shared administrator URLs.
const NOWHERE_BROKER: &str = "amqp://nobody:nothing@127.0.0.1:1/%2f";
const NOWHERE_DATABASE: &str = "postgres://nobody@127.0.0.1:1/nothing";

impl Services {
    /// Generates the CA and starts the TLS node and cluster under `dir`.
    pub(crate) fn start(dir: &Path, id: u32) -> anyhow::Result<Self> {
        let certs = Certificates::generate(&dir.join("certs"))?;
        let pg = Postgres::start_new_tls(&dir.join("postgres"), &certs)?;
        let rabbit = Rabbit::start_new_tls(
            &dir.join("rabbitmq"),
            &format!("orderly-chaos-{id}-tls"),
            &certs,
        )?;
        eprintln!(
            "[chaos] TLS only: RabbitMQ on port {}, PostgreSQL on port {} (CA {})",
            rabbit.port,
            pg.port,
            certs.ca.display()
        );
        let passwords = fleet::WORKERS
            .iter()
            .map(|w| (*w, format!("{:032x}", rand::random::<u128>())))
            .collect();
        Ok(Self {
            pg,
            rabbit,
            certs,
            dir: dir.to_owned(),
            passwords,
        })
    }

    fn database_of(database_url: &str) -> &str {
        database_url.rsplit('/').next().unwrap_or_default()
    }

    fn broker_url_of(&self, namespace: &str, worker: &str) -> String {
        let user = access::broker_user(&broker::Names::new(namespace), worker);
        self.rabbit.url_as(&user, &self.passwords[worker])
    }

    fn database_url_of(&self, worker: &str, database_url: &str) -> String {
        self.pg.url_verified(
            &access::postgres_role(worker),
            &self.passwords[worker],
            Self::database_of(database_url),
            &self.certs.ca,
        )
    }

    /// As the administrator: the topology, the broker users (with passwords) and the
    /// database roles for `namespace` in `database_url` (migrated). Returns the workers'
    /// environment: their own credentials, and nothing else that works.
    pub(crate) async fn provision(
        &self,
        namespace: &str,
        database_url: &str,
    ) -> anyhow::Result<Vec<(String, String)>> {
        let settings = Settings {
            namespace: namespace.to_owned(),
            broker_url: self.rabbit.url(),
            database_url: database_url.to_owned(),
            ..Settings::default()
        };
        // The very document deploy/ ships, for this namespace: topology, policies, users.
        // The workers then declare their own queues over it, which the broker refuses if
        // the two disagree in any argument.
        let definitions = crate::workers::broker_definitions(&settings, "/");
        let file = self.dir.join(format!("{namespace}-definitions.json"));
        std::fs::write(&file, serde_json::to_vec_pretty(&definitions)?)?;
        self.rabbit
            .ctl(&["import_definitions", &file.display().to_string()])?;
        let mut admin = sqlx::PgConnection::connect(database_url).await?;
        let mut env = vec![
            ("ORDERLY__PROVISION".to_owned(), "false".to_owned()),
            ("ORDERLY__BROKER_URL".to_owned(), NOWHERE_BROKER.to_owned()),
            (
                "ORDERLY__DATABASE_URL".to_owned(),
                NOWHERE_DATABASE.to_owned(),
            ),
            // Connections are logged at info: the log must still hold no secret.
            ("RUST_LOG".to_owned(), "info,sqlx=warn".to_owned()),
        ];
        for (worker, password) in &self.passwords {
            let user = access::broker_user(&broker::Names::new(namespace), worker);
            self.rabbit.ctl(&["change_password", &user, password])?;
            // The grants name only the fixed worker names.
            sqlx::raw_sql(sqlx::AssertSqlSafe(access::postgres_grants(worker)))
                .execute(&mut admin)
                .await
                .with_context(|| format!("granting worker `{worker}` its schema"))?;
            // The password is the suite's own hexadecimal.
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "alter role {} password '{password}'",
                access::postgres_role(worker)
            )))
            .execute(&mut admin)
            .await?;
            let key = worker.to_uppercase();
            env.push((
                format!("ORDERLY__BROKERS__{key}"),
                self.broker_url_of(namespace, worker),
            ));
            env.push((
                format!("ORDERLY__DATABASES__{key}"),
                self.database_url_of(worker, database_url),
            ));
        }
        let _ = admin.close().await;
        Ok(env)
    }

    /// What must be refused, after the load went through; `log` is the workers' output.
    pub(crate) async fn probes(
        &self,
        namespace: &str,
        database_url: &str,
        log: &Path,
    ) -> Vec<Verdict> {
        vec![
            Verdict {
                name: "a worker's broker user can neither read nor feed another worker's queue",
                problems: self.broker_refusals(namespace).await,
            },
            Verdict {
                name: "guest may connect from loopback only",
                problems: self.guest_on_loopback_only(),
            },
            Verdict {
                name: "every dead-letter queue expires its messages by the deployment's policy",
                problems: self.dead_letters_expire(namespace),
            },
            Verdict {
                name: "a worker's database role cannot read another worker's tables",
                problems: self.database_refusals(database_url).await,
            },
            Verdict {
                name: "a client that cannot verify the broker's or the database's certificate is refused",
                problems: self.unverified_refusals(namespace, database_url).await,
            },
            Verdict {
                name: "no password in the workers' output, nor in a refused worker's error",
                problems: self.secrets_kept(namespace, database_url, log).await,
            },
        ]
    }

    async fn broker_refusals(&self, namespace: &str) -> Vec<String> {
        let names = broker::Names::new(namespace);
        let mut problems = Vec::new();
        let url = self.broker_url_of(namespace, "inventory");
        let connection = match broker::connect(&url, "orderly-chaos-probe").await {
            Ok(c) => c,
            Err(e) => {
                return vec![format!(
                    "the inventory worker's user could not connect: {e}"
                )];
            }
        };
        let consume = async |queue: String| -> lapin::Result<()> {
            let channel = connection.create_channel().await?;
            channel
                .basic_consume(
                    queue.into(),
                    "orderly-chaos-probe".into(),
                    BasicConsumeOptions::default(),
                    lapin::types::FieldTable::default(),
                )
                .await
                .map(drop)
        };
        if consume(names.dead_letter_queue("inventory")).await.is_err() {
            problems
                .push("the inventory worker's user may not even read its own dead letters".into());
        }
        match consume(names.partition_queue("orders", 0)).await {
            Ok(()) => problems.push(format!(
                "the inventory worker's user consumed {}",
                names.partition_queue("orders", 0)
            )),
            Err(e) if !e.to_string().contains("ACCESS_REFUSED") => {
                problems.push(format!(
                    "consuming another worker's queue failed, not as refused: {e}"
                ));
            }
            Err(_) => {}
        }
        // The default exchange reaches every queue by name: it is not the worker's to use.
        let published = async {
            let channel = connection.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            channel
                .basic_publish(
                    "".into(),
                    names.partition_queue("orders", 0).into(),
                    BasicPublishOptions::default(),
                    b"{}",
                    lapin::BasicProperties::default(),
                )
                .await?
                .await
        };
        if let Ok(confirmation) = published.await {
            problems.push(format!(
                "the inventory worker's user published into {} through the default exchange ({confirmation:?})",
                names.partition_queue("orders", 0)
            ));
        }
        let _ = connection.close(200, "probed".into()).await;
        problems
    }

    /// The node's `loopback_users` (RabbitMQ's default, which the production node keeps).
    fn guest_on_loopback_only(&self) -> Vec<String> {
        match self
            .rabbit
            .ctl(&["eval", "application:get_env(rabbit, loopback_users)."])
        {
            Ok(out) if out.contains("<<\"guest\">>") => Vec::new(),
            Ok(out) => vec![format!("the node's loopback_users is {}", out.trim())],
            Err(e) => vec![format!("could not read the node's loopback_users: {e}")],
        }
    }

    fn dead_letters_expire(&self, namespace: &str) -> Vec<String> {
        let out =
            match self
                .rabbit
                .ctl(&["-q", "list_queues", "name", "policy", "--no-table-headers"])
            {
                Ok(out) => out,
                Err(e) => return vec![format!("could not list the queues: {e}")],
            };
        let policy = format!("{namespace}-dead-letters");
        let names = broker::Names::new(namespace);
        let mut problems = Vec::new();
        for worker in fleet::WORKERS {
            let dlq = names.dead_letter_queue(worker);
            let applied = out.lines().any(|l| {
                let mut parts = l.split_whitespace();
                parts.next() == Some(dlq.as_str()) && parts.next() == Some(policy.as_str())
            });
            if !applied {
                problems.push(format!("{dlq} is not under the policy {policy}"));
            }
        }
        problems
    }

    async fn database_refusals(&self, database_url: &str) -> Vec<String> {
        let url = self.database_url_of("inventory", database_url);
        let mut conn = match sqlx::PgConnection::connect(&url).await {
            Ok(c) => c,
            Err(e) => {
                return vec![format!(
                    "the inventory worker's role could not connect: {e}"
                )];
            }
        };
        let mut problems = Vec::new();
        if let Err(e) = sqlx::query("select count(*) from inventory.inbox")
            .fetch_one(&mut conn)
            .await
        {
            problems.push(format!("the inventory role cannot read its own inbox: {e}"));
        }
        for table in ["orders.inbox", "invoicing.outbox", "api.inbox"] {
            // A fixed list of table names.
            match sqlx::query(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
                .fetch_one(&mut conn)
                .await
            {
                Ok(_) => problems.push(format!("the inventory role read {table}")),
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42501") => {}
                Err(e) => problems.push(format!("reading {table} failed, not as refused: {e}")),
            }
        }
        let _ = conn.close().await;
        problems
    }

    async fn unverified_refusals(&self, namespace: &str, database_url: &str) -> Vec<String> {
        let mut problems = Vec::new();
        // The system's roots only: the suite's CA is not among them.
        let url = self.broker_url_of(namespace, "inventory");
        let untrusting = url.split('?').next().unwrap_or_default();
        if broker::connect(untrusting, "orderly-chaos-probe")
            .await
            .is_ok()
        {
            problems.push("the broker was trusted without its CA".into());
        }
        let role = access::postgres_role("inventory");
        let password = &self.passwords["inventory"];
        let database = Self::database_of(database_url);
        let port = self.pg.port;
        let ca = self.certs.ca.display();
        // The certificate names `localhost`, not 127.0.0.1: verify-full must notice.
        let wrong_name = format!(
            "postgres://{role}:{password}@127.0.0.1:{port}/{database}?sslmode=verify-full&sslrootcert={ca}"
        );
        if sqlx::PgConnection::connect(&wrong_name).await.is_ok() {
            problems
                .push("the database was trusted under a name its certificate does not give".into());
        }
        let plain =
            format!("postgres://{role}:{password}@localhost:{port}/{database}?sslmode=disable");
        if sqlx::PgConnection::connect(&plain).await.is_ok() {
            problems.push("a worker role connected without TLS".into());
        }
        problems
    }

    async fn secrets_kept(&self, namespace: &str, database_url: &str, log: &Path) -> Vec<String> {
        let mut problems = Vec::new();
        let output = std::fs::read_to_string(log).unwrap_or_default();
        if output.is_empty() {
            problems.push(format!("the workers' output {} is empty", log.display()));
        }
        for (worker, password) in &self.passwords {
            if output.contains(password.as_str()) {
                problems.push(format!(
                    "worker `{worker}`'s password is in {}",
                    log.display()
                ));
            }
        }
        // A worker given a wrong password stops, naming what it tried, without the password.
        let wrong = "wrong-secret-2f9c";
        let user = access::broker_user(&broker::Names::new(namespace), "orders");
        let refused = tokio::process::Command::new(std::env::current_exe().unwrap_or_default())
            .args(["run", "orders"])
            .env("ORDERLY__NAMESPACE", namespace)
            .env("ORDERLY__PROVISION", "false")
            .env("ORDERLY__BROKER_URL", NOWHERE_BROKER)
            .env("ORDERLY__DATABASE_URL", NOWHERE_DATABASE)
            .env("ORDERLY__BROKERS__ORDERS", self.rabbit.url_as(&user, wrong))
            .env(
                "ORDERLY__DATABASES__ORDERS",
                self.database_url_of("orders", database_url),
            )
            .env("ORDERLY__HTTP_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "debug,sqlx=warn")
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(Duration::from_secs(60), refused).await {
            Err(_) => problems.push("a worker with a wrong broker password kept running".into()),
            Ok(Err(e)) => problems.push(format!("could not start a worker: {e}")),
            Ok(Ok(out)) => {
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                if out.status.success() {
                    problems.push("a worker with a wrong broker password exited 0".into());
                }
                if text.contains(wrong) {
                    problems.push(format!("the refused worker printed its password: {text}"));
                }
                if !text.contains(&format!("{user}:***@")) {
                    problems.push(format!(
                        "the refused worker did not name the broker it tried: {text}"
                    ));
                }
            }
        }
        problems
    }
}
