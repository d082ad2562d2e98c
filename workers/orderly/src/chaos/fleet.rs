//! The workers of a scenario, each its own `orderly run <worker>` process (this binary), so a
//! fault is what it is in production: a process killed, a connection cut.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::services::spare_port;

/// One worker process and how to start it again.
struct Copy {
    worker: &'static str,
    /// `i/n` (`consumer.copy`) when the worker runs several copies.
    number: Option<String>,
    port: u16,
    child: Child,
}

/// Every worker of a scenario.
pub(crate) struct Fleet {
    exe: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
    copies: Vec<Copy>,
}

/// The workers a scenario runs, in an order's life.
pub(crate) const WORKERS: &[&str] = &[
    "orders",
    "inventory",
    "fulfillment",
    "invoicing",
    "notifications",
    "api",
    "setups",
];

impl Fleet {
    /// Starts `copies` processes of each of [`WORKERS`] with `env` (namespace, database,
    /// broker), their output appended to `log`.
    pub(crate) fn start(
        env: Vec<(String, String)>,
        copies: usize,
        log: PathBuf,
    ) -> anyhow::Result<Self> {
        let mut fleet = Self {
            exe: std::env::current_exe()?,
            env,
            log,
            copies: Vec::new(),
        };
        for worker in WORKERS {
            for i in 1..=copies {
                // Numbered, as a StatefulSet's would be: each takes its share of the partitions.
                let number = (copies > 1).then(|| format!("{i}/{copies}"));
                let port = spare_port()?;
                let child = fleet.spawn(worker, number.as_deref(), port)?;
                fleet.copies.push(Copy {
                    worker,
                    number,
                    port,
                    child,
                });
            }
        }
        Ok(fleet)
    }

    fn spawn(&self, worker: &str, number: Option<&str>, port: u16) -> anyhow::Result<Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut command = Command::new(&self.exe);
        if let Some(number) = number {
            command.env("ORDERLY__CONSUMER__COPY", number);
        }
        Ok(command
            .args(["run", worker])
            // Quiet unless the scenario (or `CHAOS_RUST_LOG`, docs/chaos.md) asks for more.
            .env(
                "RUST_LOG",
                std::env::var("CHAOS_RUST_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("ORDERLY__HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("MALLOC_ARENA_MAX", "2")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?)
    }

    /// `kill -9` of the first copy of `worker`, then the same process started again.
    pub(crate) fn kill_and_restart(&mut self, worker: &str) -> anyhow::Result<()> {
        self.kill_at(self.index_of(worker, 0)?)
    }

    /// The index of copy `n` of `worker`.
    pub(crate) fn index_of(&self, worker: &str, n: usize) -> anyhow::Result<usize> {
        self.copies
            .iter()
            .enumerate()
            .filter(|(_, c)| c.worker == worker)
            .nth(n)
            .map(|(i, _)| i)
            .ok_or_else(|| anyhow::anyhow!("no copy {n} of worker `{worker}`"))
    }

    /// `kill -9` of the process at `index` ([`Fleet::index_of`]), started again at once.
    pub(crate) fn kill_at(&mut self, index: usize) -> anyhow::Result<()> {
        let copy = &mut self.copies[index];
        copy.child.kill()?; // SIGKILL
        copy.child.wait()?;
        let (worker, number, port) = (copy.worker, copy.number.clone(), copy.port);
        let child = self.spawn(worker, number.as_deref(), port)?;
        self.copies[index].child = child;
        Ok(())
    }

    /// Every process still running (none exited on its own), and every `/readyz` 200.
    pub(crate) async fn ready(&mut self, client: &reqwest::Client) -> anyhow::Result<bool> {
        for copy in &mut self.copies {
            if let Some(status) = copy.child.try_wait()? {
                anyhow::bail!("worker `{}` exited on its own: {status}", copy.worker);
            }
        }
        for copy in &self.copies {
            let ok = client
                .get(format!("http://127.0.0.1:{}/readyz", copy.port))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Waits until [`Fleet::ready`], up to `deadline`; how long it took.
    pub(crate) async fn wait_ready(
        &mut self,
        client: &reqwest::Client,
        deadline: Duration,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        while !self.ready(client).await? {
            anyhow::ensure!(
                started.elapsed() < deadline,
                "the workers were not all ready within {} s",
                deadline.as_secs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(started.elapsed())
    }

    /// Stops every process with SIGTERM (as a deployment does), SIGKILL after 10 s.
    pub(crate) fn stop(&mut self) {
        for copy in &mut self.copies {
            if matches!(copy.child.try_wait(), Ok(None)) {
                let _ = Command::new("kill")
                    .args(["-TERM", &copy.child.id().to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let started = Instant::now();
        for copy in &mut self.copies {
            while matches!(copy.child.try_wait(), Ok(None))
                && started.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = copy.child.kill();
            let _ = copy.child.wait();
        }
        self.copies.clear();
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop();
    }
}
