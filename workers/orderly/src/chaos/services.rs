//! The fault suite's own PostgreSQL cluster and RabbitMQ node, on spare ports under a
//! directory of their own: the suite stops and kills them at will, and never touches the
//! services a developer or CI runs (nor another suite's).

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::Context;

/// A TCP port nobody listens on now, below Linux's ephemeral range (32768 and up): a port
/// the kernel picked could be handed to some outgoing connection before the process meant to
/// listen on it starts (a worker's API port was, once three broker nodes were connecting).
pub(crate) fn spare_port() -> anyhow::Result<u16> {
    for _ in 0..1000 {
        let port = rand::random_range(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    anyhow::bail!("no free port between 20000 and 32000")
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// Runs `command`, failing with its output when it fails.
fn run(command: &mut Command) -> anyhow::Result<String> {
    let output = command
        .output()
        .with_context(|| format!("could not run {command:?}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    anyhow::ensure!(
        output.status.success(),
        "{command:?} failed ({}): {}{}",
        output.status,
        stdout.trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(stdout)
}

/// Whether this process runs as root (PostgreSQL refuses to; it then runs as `postgres`).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// The newest PostgreSQL server binaries installed (Debian's layout).
fn postgres_bin() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL is not installed (run scripts/services)")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    let version = versions
        .last()
        .context("no PostgreSQL version under /usr/lib/postgresql")?;
    Ok(PathBuf::from(format!("/usr/lib/postgresql/{version}/bin")))
}

/// How PostgreSQL is stopped (`pg_ctl stop -m`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum PgStop {
    /// Connections are cut, a checkpoint is written: a clean shutdown.
    Fast,
    /// No checkpoint: recovery replays the WAL on the next start, as after a crash.
    Immediate,
}

/// A PostgreSQL cluster of the suite's own.
pub(crate) struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    pub(crate) port: u16,
}

impl Postgres {
    /// Creates a cluster under `dir` and starts it on a spare port.
    pub(crate) fn start_new(dir: &Path) -> anyhow::Result<Self> {
        let bin = postgres_bin()?;
        std::fs::create_dir_all(dir)?;
        let data = dir.join("data");
        if is_root() {
            run(Command::new("chown").args(["-R", "postgres"]).arg(dir))?;
        }
        run(as_postgres(&bin.join("initdb")).arg("-D").arg(&data).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ]))?;
        let pg = Self {
            bin,
            data,
            port: spare_port()?,
        };
        pg.start()?;
        Ok(pg)
    }

    /// Like [`Postgres::start_new`], with TLS on (`certs`' server certificate, for
    /// `localhost`) and every member of the workers' group role (`orderly_workers`) made to
    /// connect over TLS with a password; the suite's administrator (`postgres`) still
    /// connects as before.
    pub(crate) fn start_new_tls(dir: &Path, certs: &Certificates) -> anyhow::Result<Self> {
        let pg = Self::start_new(dir)?;
        pg.stop(PgStop::Fast)?;
        let key = pg.data.join("server.key");
        std::fs::copy(&certs.cert, pg.data.join("server.crt"))?;
        std::fs::copy(&certs.key, &key)?;
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        if is_root() {
            run(Command::new("chown")
                .arg("postgres")
                .arg(&key)
                .arg(pg.data.join("server.crt")))?;
        }
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(pg.data.join("postgresql.conf"))?;
        std::io::Write::write_all(
            &mut conf,
            b"ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\npassword_encryption = 'scram-sha-256'\n",
        )?;
        std::fs::write(
            pg.data.join("pg_hba.conf"),
            format!(
                "local all all trust\n\
                 hostssl all +{group} 127.0.0.1/32 scram-sha-256\n\
                 host all +{group} 127.0.0.1/32 reject\n\
                 host all all 127.0.0.1/32 trust\n",
                group = orderly_runtime::access::WORKERS_ROLE
            ),
        )?;
        pg.start()?;
        Ok(pg)
    }

    pub(crate) fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// The URL of `role` with `password` on `database`, verifying the server's certificate
    /// against `ca` and its name (`localhost`).
    pub(crate) fn url_verified(
        &self,
        role: &str,
        password: &str,
        database: &str,
        ca: &Path,
    ) -> String {
        format!(
            "postgres://{role}:{password}@localhost:{}/{database}?sslmode=verify-full&sslrootcert={}",
            self.port,
            ca.display()
        )
    }

    pub(crate) fn start(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c max_connections=200",
            self.port,
            self.data.display()
        );
        run(as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-o", &options, "-l"])
            .arg(self.data.join("server.log"))
            .args(["-w", "start"]))?;
        Ok(())
    }

    pub(crate) fn stop(&self, mode: PgStop) -> anyhow::Result<()> {
        let mode = match mode {
            PgStop::Fast => "fast",
            PgStop::Immediate => "immediate",
        };
        run(as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", mode, "-w", "stop"]))?;
        Ok(())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.stop(PgStop::Immediate);
    }
}

fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// How the broker is stopped.
#[derive(Debug, Clone, Copy)]
pub(crate) enum BrokerStop {
    /// `rabbitmqctl stop`: the node closes its connections and stops cleanly.
    Graceful,
    /// `kill -9` of the Erlang VM: what a crash or an out-of-memory kill does.
    Kill,
}

/// A RabbitMQ node of the suite's own: its own node name, AMQP and distribution ports,
/// database and logs under a directory, its own configuration (the consistent-hash exchange
/// plugin only) and cookie (shared with the other nodes of a [`Rabbit::cluster`]).
pub(crate) struct Rabbit {
    dir: PathBuf,
    node: String,
    pub(crate) port: u16,
    dist_port: u16,
    /// For a node that listens for TLS only ([`Rabbit::start_new_tls`]): the CA its clients
    /// trust.
    ca: Option<PathBuf>,
}

const RABBIT_BIN: &str = "/usr/lib/rabbitmq/bin";

impl Rabbit {
    /// Starts a new node under `dir` on spare ports.
    pub(crate) fn start_new(dir: &Path, name: &str) -> anyhow::Result<Self> {
        Self::start_with(dir, name, None)
    }

    /// A node that accepts AMQP over TLS only (`amqps://`, `certs`' server certificate for
    /// `localhost`), with the broker's defaults for `guest` (loopback only), as production
    /// would run it.
    pub(crate) fn start_new_tls(
        dir: &Path,
        name: &str,
        certs: &Certificates,
    ) -> anyhow::Result<Self> {
        Self::start_with(dir, name, Some(certs))
    }

    fn start_with(dir: &Path, name: &str, certs: Option<&Certificates>) -> anyhow::Result<Self> {
        anyhow::ensure!(
            Path::new(RABBIT_BIN).exists(),
            "RabbitMQ is not installed (run scripts/services)"
        );
        std::fs::create_dir_all(dir)?;
        let port = spare_port()?;
        let mut dist_port = spare_port()?;
        while dist_port == port {
            dist_port = spare_port()?;
        }
        let conf = match certs {
            None => format!(
                "listeners.tcp.default = 127.0.0.1:{port}\n\
                 # The suite's own node on loopback: guest may connect to it.\n\
                 loopback_users = none\n"
            ),
            Some(certs) => format!(
                "listeners.tcp = none\n\
                 listeners.ssl.default = 127.0.0.1:{port}\n\
                 ssl_options.cacertfile = {}\n\
                 ssl_options.certfile = {}\n\
                 ssl_options.keyfile = {}\n\
                 ssl_options.verify = verify_none\n\
                 ssl_options.fail_if_no_peer_cert = false\n",
                certs.ca.display(),
                certs.cert.display(),
                certs.key.display()
            ),
        };
        std::fs::write(dir.join("rabbitmq.conf"), conf)?;
        // Worker queues are partitioned through consistent-hash exchanges.
        std::fs::write(
            dir.join("enabled_plugins"),
            "[rabbitmq_consistent_hash_exchange].\n",
        )?;
        let rabbit = Self {
            dir: dir.to_owned(),
            node: format!("{name}@localhost"),
            port,
            dist_port,
            ca: certs.map(|c| c.ca.clone()),
        };
        rabbit.start()?;
        Ok(rabbit)
    }

    /// Starts `size` new nodes under `dir` and joins them into one cluster (the first is the
    /// seed; they share its Erlang cookie). Quorum queues declared afterwards get a replica
    /// on every node.
    /// With `certs`, every node listens for TLS only (clients' `amqps://`; the nodes' own
    /// Erlang distribution stays on loopback, unencrypted).
    pub(crate) fn cluster(
        dir: &Path,
        name: &str,
        size: usize,
        certs: Option<&Certificates>,
    ) -> anyhow::Result<Vec<Self>> {
        let seed = Self::start_with(&dir.join("node-1"), &format!("{name}-1"), certs)?;
        let cookie = std::fs::read(seed.dir.join(".erlang.cookie"))
            .context("the seed node's Erlang cookie")?;
        let mut nodes = vec![seed];
        for k in 2..=size {
            let node_dir = dir.join(format!("node-{k}"));
            std::fs::create_dir_all(&node_dir)?;
            let cookie_file = node_dir.join(".erlang.cookie");
            std::fs::write(&cookie_file, &cookie)?;
            std::fs::set_permissions(
                &cookie_file,
                std::os::unix::fs::PermissionsExt::from_mode(0o400),
            )?;
            let node = Self::start_with(&node_dir, &format!("{name}-{k}"), certs)?;
            let ctl = |args: &[&str]| {
                run(node
                    .command("rabbitmqctl")
                    .args(["-n", &node.node])
                    .args(args))
            };
            ctl(&["stop_app"])?;
            ctl(&["join_cluster", &nodes[0].node])?;
            ctl(&["start_app"])?;
            nodes.push(node);
        }
        // Leaders spread over the nodes (deploy/'s policy), so a node's loss costs some
        // queues their leader.
        run(nodes[0].command("rabbitmqctl").args([
            "-n",
            &nodes[0].node,
            "set_policy",
            "leaders",
            ".*",
            r#"{"queue-leader-locator":"balanced"}"#,
            "--apply-to",
            "queues",
        ]))?;
        Ok(nodes)
    }

    /// Whether every quorum queue keeps a quorum should this node stop: after a node came
    /// back, false until the queues have their replicas on it again.
    pub(crate) fn quorum_critical(&self) -> bool {
        run(self.command("rabbitmq-queues").args([
            "-n",
            &self.node,
            "check_if_node_is_quorum_critical",
        ]))
        .is_err()
    }

    pub(crate) fn url(&self) -> String {
        self.url_as("guest", "guest")
    }

    /// The URL of `user` with `password`: `amqps://` to `localhost` (the certificate's name)
    /// trusting the suite's CA on a TLS node, plain AMQP otherwise.
    pub(crate) fn url_as(&self, user: &str, password: &str) -> String {
        match &self.ca {
            Some(ca) => format!(
                "amqps://{user}:{password}@localhost:{}/%2f?cacertfile={}",
                self.port,
                ca.display()
            ),
            None => format!("amqp://{user}:{password}@127.0.0.1:{}/%2f", self.port),
        }
    }

    /// `rabbitmqctl <args>` against this node.
    pub(crate) fn ctl(&self, args: &[&str]) -> anyhow::Result<String> {
        run(self
            .command("rabbitmqctl")
            .args(["-n", &self.node])
            .args(args))
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(Path::new(RABBIT_BIN).join(program));
        // Its own cookie (HOME) and environment file (none: the machine's names its node).
        c.env("HOME", &self.dir)
            .env("RABBITMQ_CONF_ENV_FILE", "/dev/null")
            .env("RABBITMQ_NODENAME", &self.node)
            .env("ERL_EPMD_ADDRESS", "127.0.0.1");
        c
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("node.pid")
    }

    /// Starts the node (again) and waits until it accepts work.
    pub(crate) fn start(&self) -> anyhow::Result<()> {
        let mut start = self.command("rabbitmq-server");
        start
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", self.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", self.dir.join("log"))
            .env("RABBITMQ_CONFIG_FILE", self.dir.join("rabbitmq"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                self.dir.join("enabled_plugins"),
            )
            .env("RABBITMQ_PID_FILE", self.pid_file())
            .arg("-detached");
        run(&mut start)?;
        run(self
            .command("rabbitmqctl")
            .args(["-n", &self.node, "wait", "--timeout", "120"])
            .arg(self.pid_file()))?;
        let started = Instant::now();
        while !port_open(self.port) {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "RabbitMQ node {} did not open port {}",
                self.node,
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    pub(crate) fn stop(&self, how: BrokerStop) -> anyhow::Result<()> {
        match how {
            BrokerStop::Graceful => {
                run(self.command("rabbitmqctl").args(["-n", &self.node, "stop"]))?;
            }
            BrokerStop::Kill => {
                let pid = std::fs::read_to_string(self.pid_file())?;
                run(Command::new("kill").args(["-9", pid.trim()]))?;
                let started = Instant::now();
                while port_open(self.port) && started.elapsed() < Duration::from_secs(30) {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        Ok(())
    }

    /// Messages ready or unacknowledged per queue of `namespace` (`<namespace>.<queue>`; not
    /// a namespace that merely starts the same: `chaos-two-copies` is not
    /// `chaos-two-copies-killed-repeatedly`).
    pub(crate) fn queue_depths(&self, namespace: &str) -> anyhow::Result<Vec<(String, u64)>> {
        let prefix = format!("{namespace}.");
        let out = run(self.command("rabbitmqctl").args([
            "-n",
            &self.node,
            "-q",
            "list_queues",
            "name",
            "messages",
            "--no-table-headers",
        ]))?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let mut parts = l.split_whitespace();
                let name = parts.next()?;
                let messages = parts.next()?.parse().ok()?;
                name.starts_with(&prefix)
                    .then(|| (name.to_owned(), messages))
            })
            .collect())
    }

    /// Sets the memory high watermark (a fraction of the machine's memory): a tiny one
    /// raises the memory alarm, and the node blocks every publishing connection.
    pub(crate) fn set_memory_watermark(&self, fraction: f64) -> anyhow::Result<()> {
        run(self.command("rabbitmqctl").args([
            "-n",
            &self.node,
            "set_vm_memory_high_watermark",
            &fraction.to_string(),
        ]))?;
        Ok(())
    }
}

impl Drop for Rabbit {
    fn drop(&mut self) {
        let _ = self.stop(BrokerStop::Kill);
    }
}

/// A private certificate authority and a server certificate it signed for `localhost`,
/// made with the machine's `openssl` for the suite's TLS services.
pub(crate) struct Certificates {
    /// The authority's certificate (PEM): what clients trust.
    pub(crate) ca: PathBuf,
    /// The server's certificate (PEM), for the DNS name `localhost` only.
    pub(crate) cert: PathBuf,
    /// The server's private key (PEM).
    pub(crate) key: PathBuf,
}

impl Certificates {
    /// Generates them under `dir` (P-256 keys, valid for two days).
    pub(crate) fn generate(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = |name: &str| dir.join(name);
        let openssl = |args: &[&str]| run(Command::new("openssl").args(args).current_dir(dir));
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=Orderly fault suite CA",
                ],
            ]
            .concat(),
        )
        .context("openssl is needed for the TLS scenario (Debian package openssl)")?;
        openssl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=localhost",
                ],
            ]
            .concat(),
        )?;
        std::fs::write(
            path("server.ext"),
            "subjectAltName = DNS:localhost\nbasicConstraints = CA:FALSE\n\
             keyUsage = digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth\n",
        )?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ])?;
        // Readable by the services (PostgreSQL copies its own, see start_new_tls).
        std::fs::set_permissions(
            path("server.key"),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )?;
        Ok(Self {
            ca: path("ca.pem"),
            cert: path("server.pem"),
            key: path("server.key"),
        })
    }
}
