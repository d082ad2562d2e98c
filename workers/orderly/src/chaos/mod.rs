//! `orderly chaos`: the fault suite. For each named scenario it runs every worker as its own
//! process against a PostgreSQL cluster and a RabbitMQ node of its own (spare ports, its own
//! directory: the services a developer or CI runs are never touched), drives the simulated
//! storefront, warehouse carrier and store settings at a steady rate, injects the fault
//! mid-load, lets everything drain and checks every invariant with one checker
//! ([`check`]). The figures and verdicts go to stdout and, with `--report`, to
//! `docs/chaos.md`.
//!
//! Why processes and real services rather than an in-process harness: the faults that matter
//! in production are a process killed between two statements, a broker that forgets
//! unconfirmed work, a database that replays its WAL. The in-process chaos test
//! (`tests/tests/pipeline.rs`) covers redelivery and reordering quickly; this suite covers
//! what only real processes show.

mod check;
mod fleet;
mod secured;
mod services;

use std::time::{Duration, Instant};

use anyhow::Context;
use orderly_runtime::broker::Names;

use crate::sim::{self, Publisher};
use check::Verdict;
use fleet::Fleet;
use services::{BrokerStop, Certificates, PgStop, Postgres, Rabbit};

/// What is done to the system mid-load.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// `kill -9` of a worker's process, started again at once.
    Kill(&'static str),
    /// The broker node stopped (cleanly or killed), started again after [`DOWN_FOR`].
    Broker(BrokerStop),
    /// PostgreSQL stopped (fast or immediate), started again after [`DOWN_FOR`].
    Postgres(PgStop),
    /// Two copies of every worker; one copy of each, in turn, killed every second.
    CopiesKilledRepeatedly,
    /// Nothing: the scenario's copies alone (several copies of every worker must not change
    /// what customers receive).
    None,
    /// The broker's memory alarm raised for [`DOWN_FOR`]: every publisher blocked.
    MemoryAlarm,
    /// On a three-node cluster: one node `kill -9`'d, started again after [`DOWN_FOR`]; its
    /// queues' replicas must come back.
    ClusterNodeKill,
    /// No fault: the deployment as production runs it ([`secured`]): a broker and a database
    /// of their own that speak TLS, each worker its own broker user and database role, the
    /// topology and roles provisioned by the administrator. The load must go through as
    /// usual, and what a worker may not do must be refused.
    Secured,
}

/// A named scenario.
#[derive(Debug, Clone, Copy)]
struct Scenario {
    name: &'static str,
    fault: Fault,
    /// Processes of each worker.
    copies: usize,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "kill-orders",
        fault: Fault::Kill("orders"),
        copies: 1,
    },
    Scenario {
        name: "kill-inventory",
        fault: Fault::Kill("inventory"),
        copies: 1,
    },
    Scenario {
        name: "kill-fulfillment",
        fault: Fault::Kill("fulfillment"),
        copies: 1,
    },
    Scenario {
        name: "kill-invoicing",
        fault: Fault::Kill("invoicing"),
        copies: 1,
    },
    Scenario {
        name: "kill-notifications",
        fault: Fault::Kill("notifications"),
        copies: 1,
    },
    Scenario {
        name: "kill-api",
        fault: Fault::Kill("api"),
        copies: 1,
    },
    Scenario {
        name: "broker-stop",
        fault: Fault::Broker(BrokerStop::Graceful),
        copies: 1,
    },
    Scenario {
        name: "broker-kill",
        fault: Fault::Broker(BrokerStop::Kill),
        copies: 1,
    },
    Scenario {
        name: "postgres-fast",
        fault: Fault::Postgres(PgStop::Fast),
        copies: 1,
    },
    Scenario {
        name: "postgres-immediate",
        fault: Fault::Postgres(PgStop::Immediate),
        copies: 1,
    },
    Scenario {
        name: "two-copies-killed-repeatedly",
        fault: Fault::CopiesKilledRepeatedly,
        copies: 2,
    },
    Scenario {
        name: "two-copies",
        fault: Fault::None,
        copies: 2,
    },
    Scenario {
        name: "three-copies",
        fault: Fault::None,
        copies: 3,
    },
    Scenario {
        name: "memory-alarm",
        fault: Fault::MemoryAlarm,
        copies: 1,
    },
    Scenario {
        name: "cluster-node-kill",
        fault: Fault::ClusterNodeKill,
        copies: 1,
    },
    Scenario {
        name: "least-privilege-tls",
        fault: Fault::Secured,
        copies: 1,
    },
];

/// Nodes of the cluster the cluster scenarios run on.
const CLUSTER_SIZE: usize = 3;
/// How long a node that came back may take to have its queues' replicas again.
const REPLICAS_DEADLINE: Duration = Duration::from_secs(120);

/// How long a stopped service stays down, and the memory alarm stays raised.
const DOWN_FOR: Duration = Duration::from_secs(3);
/// How long the system may take to finish every order after the last was sent.
const DRAIN_DEADLINE: Duration = Duration::from_secs(240);

/// The names of every scenario, for `--help` and errors.
pub(crate) fn scenario_names() -> Vec<&'static str> {
    SCENARIOS.iter().map(|s| s.name).collect()
}

/// What a scenario measured.
struct Outcome {
    scenario: Scenario,
    orders: usize,
    /// From the fault's end (the process or service back) until every `/readyz` was 200.
    recovered_in: Duration,
    /// From the last order sent until every order reached its end state.
    drained_in: Duration,
    verdicts: Vec<Verdict>,
    /// Messages the outside systems' queues received more than once with the same id
    /// (theirs to deduplicate), out of how many.
    repeats: Repeats,
}

impl Outcome {
    fn passed(&self) -> bool {
        self.verdicts.iter().all(Verdict::holds)
    }
}

/// Runs `names` (every scenario when empty) with `orders` orders at `rate` per second each;
/// fails unless every invariant of every scenario holds.
pub(crate) async fn run(
    names: &[String],
    orders: usize,
    rate: f64,
    report: bool,
) -> anyhow::Result<()> {
    let selected: Vec<Scenario> = if names.is_empty() {
        SCENARIOS.to_vec()
    } else {
        names
            .iter()
            .map(|n| {
                SCENARIOS
                    .iter()
                    .find(|s| s.name == n)
                    .copied()
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "unknown scenario `{n}`; known: {}",
                            scenario_names().join(", ")
                        )
                    })
            })
            .collect::<anyhow::Result<_>>()?
    };
    let dir = std::env::temp_dir().join(format!("orderly-chaos-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    eprintln!("[chaos] own services under {}", dir.display());
    // The shared PostgreSQL cluster and node, unless every scenario brings its own.
    let shared = if selected.iter().all(|s| matches!(s.fault, Fault::Secured)) {
        None
    } else {
        let pg = Postgres::start_new(&dir.join("postgres"))?;
        let rabbit = Rabbit::start_new(
            &dir.join("rabbitmq"),
            &format!("orderly-chaos-{}", std::process::id()),
        )?;
        eprintln!(
            "[chaos] PostgreSQL on port {}, RabbitMQ on port {}",
            pg.port, rabbit.port
        );
        Some((pg, vec![rabbit]))
    };
    let started = Instant::now();
    let mut outcomes = Vec::new();
    for scenario in selected {
        eprintln!("[chaos] {}: {orders} orders at {rate}/s", scenario.name);
        // A cluster only for the scenario that needs it: three more Erlang VMs would take
        // their share of two cores from every other scenario.
        let cluster = if matches!(scenario.fault, Fault::ClusterNodeKill) {
            // Over TLS: the workers fail over between nodes with amqps:// URLs.
            let certs =
                Certificates::generate(&dir.join(format!("cluster-{}-certs", scenario.name)))?;
            let nodes = Rabbit::cluster(
                &dir.join(format!("cluster-{}", scenario.name)),
                &format!("orderly-chaos-{}-cluster", std::process::id()),
                CLUSTER_SIZE,
                Some(&certs),
            )?;
            eprintln!(
                "[chaos] a {CLUSTER_SIZE}-node RabbitMQ cluster, TLS only, on ports {}",
                nodes
                    .iter()
                    .map(|n| n.port.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            nodes
        } else {
            Vec::new()
        };
        // And TLS services of their own for the secured scenario.
        let secured = if matches!(scenario.fault, Fault::Secured) {
            Some(secured::Services::start(
                &dir.join(scenario.name),
                std::process::id(),
            )?)
        } else {
            None
        };
        let (pg, nodes) = match (&secured, &shared) {
            (Some(s), _) => (&s.pg, std::slice::from_ref(&s.rabbit)),
            (None, Some((pg, single))) if cluster.is_empty() => (pg, &single[..]),
            (None, Some((pg, _))) => (pg, &cluster[..]),
            (None, None) => anyhow::bail!("no services for scenario {}", scenario.name),
        };
        let outcome = scenario_run(pg, nodes, secured.as_ref(), &dir, scenario, orders, rate)
            .await
            .with_context(|| format!("scenario {}", scenario.name))?;
        drop(secured);
        for v in &outcome.verdicts {
            eprintln!(
                "[chaos] {}: {} {}{}",
                scenario.name,
                if v.holds() { "ok  " } else { "FAIL" },
                v.name,
                if v.holds() {
                    String::new()
                } else {
                    format!(": {}", v.problems.join("; "))
                }
            );
        }
        eprintln!(
            "[chaos] {}: ready again {:.1} s after the fault, drained {:.1} s after the last order",
            scenario.name,
            outcome.recovered_in.as_secs_f64(),
            outcome.drained_in.as_secs_f64()
        );
        outcomes.push(outcome);
    }
    let table = render(&outcomes, started.elapsed());
    println!("{table}");
    if report {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/chaos.md");
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        let marker = "<!-- chaos:report -->";
        let head = current.split(marker).next().unwrap_or_default();
        std::fs::write(&path, format!("{head}{marker}\n{table}"))?;
        println!("written to docs/chaos.md");
    }
    drop(shared);
    if std::env::var_os("CHAOS_RUST_LOG").is_some() {
        println!("workers' output kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.passed())
        .map(|o| o.scenario.name)
        .collect();
    anyhow::ensure!(
        failed.is_empty(),
        "invariants broken in: {}",
        failed.join(", ")
    );
    Ok(())
}

async fn scenario_run(
    pg: &Postgres,
    nodes: &[Rabbit],
    secured: Option<&secured::Services>,
    dir: &std::path::Path,
    scenario: Scenario,
    orders: usize,
    rate: f64,
) -> anyhow::Result<Outcome> {
    let rabbit = nodes.first().context("no broker node")?;
    // Every node's URL: the workers and the simulator fail over between them.
    let broker_url = nodes.iter().map(Rabbit::url).collect::<Vec<_>>().join(",");
    let namespace = format!("chaos-{}", scenario.name);
    let database_url = pg.url(&format!(
        "orderly_chaos_{}",
        scenario.name.replace('-', "_")
    ));
    orderly_runtime::db::ensure_database(&database_url).await?;
    orderly_runtime::db::migrate(&database_url).await?;
    let mut env = match secured {
        // The administrator provisions; the workers get their own credentials only.
        Some(s) => s.provision(&namespace, &database_url).await?,
        None => vec![
            ("ORDERLY__DATABASE_URL".to_owned(), database_url.clone()),
            ("ORDERLY__BROKER_URL".to_owned(), broker_url.clone()),
        ],
    };
    env.extend([
        ("ORDERLY__NAMESPACE".to_owned(), namespace.clone()),
        // The PDFs go with the rest of the run, not into the working directory.
        (
            "ORDERLY__DOCUMENTS__PATH".to_owned(),
            dir.join(format!("{}-documents", scenario.name))
                .display()
                .to_string(),
        ),
    ]);
    let client = reqwest::Client::new();
    let mut fleet = Fleet::start(
        env,
        scenario.copies,
        dir.join(format!("{}.log", scenario.name)),
    )?;
    fleet.wait_ready(&client, Duration::from_secs(120)).await?;

    // The outside world: store settings, catalog and stock, then the storefront's orders.
    let names = Names::new(namespace.clone());
    let publisher = Publisher::resilient(&broker_url, names.clone()).await?;
    sim::store_settings(&publisher).await?;
    let carrier = sim::carrier_resilient(&broker_url, &names, publisher.clone()).await?;
    let scale = u32::try_from(orders / 10 + 10).unwrap_or(u32::MAX);
    sim::seed(&publisher, scale).await?;
    sim::wait_for_catalog(&database_url, Duration::from_secs(60)).await?;
    let pool = orderly_runtime::db::connect(&database_url, "chaos", 2).await?;
    wait_for_stock(&pool, scale).await?;

    let started = Instant::now();
    let placing = sim::place_orders(publisher.clone(), orders, rate, "CH", started);
    // The fault comes a third of the way into the load.
    tokio::time::sleep(Duration::from_secs_f64(orders as f64 / rate / 3.0)).await;
    eprintln!("[chaos] {}: injecting the fault", scenario.name);
    let observed = inject(scenario.fault, &mut fleet, pg, nodes, &client).await?;
    let fault_over = Instant::now();
    let recovered_in = fleet.wait_ready(&client, Duration::from_secs(180)).await?;
    placing.await.context("the storefront task")??;
    eprintln!(
        "[chaos] {}: every order sent ({:.1} s after the fault); draining",
        scenario.name,
        fault_over.elapsed().as_secs_f64()
    );
    let drained_in = drain(&pool, rabbit, &namespace, orders as i64).await?;
    // Settled: nothing left in flight anywhere, every worker ready.
    settle(&pool, rabbit, &namespace).await;
    fleet.wait_ready(&client, Duration::from_secs(30)).await?;
    let queues = rabbit.queue_depths(&namespace)?;
    let mut verdicts = check::all(&pool, &database_url, orders as i64, &queues, &namespace).await?;
    verdicts.extend(observed);
    if matches!(scenario.fault, Fault::ClusterNodeKill) {
        verdicts.push(replicas_back(nodes, fault_over).await);
    }
    if let Some(s) = secured {
        let log = dir.join(format!("{}.log", scenario.name));
        verdicts.extend(s.probes(&namespace, &database_url, &log).await);
    }
    let repeats = repeats(&broker_url, &names).await?;
    fleet.stop();
    carrier.abort();
    pool.close().await;
    Ok(Outcome {
        scenario,
        orders,
        recovered_in,
        drained_in,
        verdicts,
        repeats,
    })
}

/// What the outside systems received twice (same message id), out of how many messages.
#[derive(Debug, Default)]
struct Repeats {
    notifications: (usize, usize),
    merchant_events: (usize, usize),
}

/// Takes every message off the notification system's and the merchant feed's queues (nobody
/// else consumes them in the suite) and counts the same ids received again: what a crash
/// between publishing and recording a confirm re-publishes, and outside consumers must
/// drop (docs/contracts/README.md).
async fn repeats(broker_url: &str, names: &Names) -> anyhow::Result<Repeats> {
    let connection = sim::connect(broker_url, names).await?;
    let channel = connection.create_channel().await?;
    let count = async |queue: &str| -> anyhow::Result<(usize, usize)> {
        let mut ids = std::collections::HashSet::new();
        let mut total = 0;
        while let Some(message) = channel
            .basic_get(
                names.queue(queue).into(),
                lapin::options::BasicGetOptions { no_ack: true },
            )
            .await?
        {
            total += 1;
            if let Ok(raw) = orderly_contracts::decode_raw(&message.delivery.data) {
                ids.insert(raw.message_id);
            }
        }
        Ok((total - ids.len(), total))
    };
    let notifications = count("out.notification-system").await?;
    let merchant_events = count("out.merchant-events").await?;
    let _ = connection.close(200, "counted".into()).await;
    Ok(Repeats {
        notifications,
        merchant_events,
    })
}

/// Waits until the seeded stock is on hand (its adjustments applied).
async fn wait_for_stock(pool: &sqlx::PgPool, scale: u32) -> anyhow::Result<()> {
    let expected: i64 = sim::starting_stock(scale)
        .iter()
        .map(|(_, _, qty)| i64::from(*qty))
        .sum();
    let started = Instant::now();
    loop {
        let on_hand: Option<rust_decimal::Decimal> =
            sqlx::query_scalar("select sum(on_hand) from inventory.stock")
                .fetch_one(pool)
                .await?;
        if on_hand == Some(rust_decimal::Decimal::from(expected)) {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the seeded stock was not on hand within 60 s ({on_hand:?} of {expected})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Injects `fault` and returns once it is over (the process or service back), with what the
/// fault itself must show (the memory alarm: readiness reports it).
async fn inject(
    fault: Fault,
    fleet: &mut Fleet,
    pg: &Postgres,
    nodes: &[Rabbit],
    client: &reqwest::Client,
) -> anyhow::Result<Vec<Verdict>> {
    let rabbit = nodes.first().context("no broker node")?;
    let mut observed = Vec::new();
    match fault {
        Fault::Kill(worker) => fleet.kill_and_restart(worker)?,
        Fault::Broker(how) => {
            rabbit.stop(how)?;
            tokio::time::sleep(DOWN_FOR).await;
            rabbit.start()?;
        }
        Fault::Postgres(how) => {
            pg.stop(how)?;
            tokio::time::sleep(DOWN_FOR).await;
            pg.start()?;
        }
        Fault::CopiesKilledRepeatedly => {
            for round in 0..fleet::WORKERS.len() * 2 {
                let worker = fleet::WORKERS[round % fleet::WORKERS.len()];
                let index = fleet.index_of(worker, round / fleet::WORKERS.len() % 2)?;
                fleet.kill_at(index)?;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Fault::None | Fault::Secured => {}
        Fault::ClusterNodeKill => {
            let victim = nodes.get(1).context("a cluster of at least two nodes")?;
            victim.stop(BrokerStop::Kill)?;
            tokio::time::sleep(DOWN_FOR).await;
            victim.start()?;
        }
        Fault::MemoryAlarm => {
            rabbit.set_memory_watermark(0.000_001)?;
            let raised = Instant::now();
            // While the alarm blocks publishing, the workers must say so on /readyz.
            let mut reported = None;
            while raised.elapsed() < DOWN_FOR {
                if reported.is_none() && !fleet.ready(client).await? {
                    reported = Some(raised.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            rabbit.set_memory_watermark(0.4)?;
            observed.push(Verdict {
                name: "readiness reported the broker's alarm while it lasted",
                problems: match reported {
                    Some(_) => Vec::new(),
                    None => vec![format!(
                        "every /readyz stayed 200 during the {} s alarm",
                        DOWN_FOR.as_secs()
                    )],
                },
            });
        }
    }
    Ok(observed)
}

/// Whether every quorum queue has its replicas on every node again, waiting up to
/// [`REPLICAS_DEADLINE`] after the node came back (`back`): until then stopping some node
/// would cost a queue its quorum (`rabbitmq-queues check_if_node_is_quorum_critical`).
async fn replicas_back(nodes: &[Rabbit], back: Instant) -> Verdict {
    let mut critical = true;
    while back.elapsed() < REPLICAS_DEADLINE {
        critical = nodes.iter().any(Rabbit::quorum_critical);
        if !critical {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "[chaos] replicas on every node again {:.1} s after the node came back",
        back.elapsed().as_secs_f64()
    );
    Verdict {
        name: "the node rejoined and every queue has its replicas again",
        problems: if critical {
            vec![format!(
                "some quorum queue still depends on fewer nodes {} s after the node came back",
                REPLICAS_DEADLINE.as_secs()
            )]
        } else {
            Vec::new()
        },
    }
}

/// How long the system must be at rest (nothing pending, nothing queued) with orders not
/// done before the suite stops waiting for them: nothing will move them any more.
const AT_REST_FOR: Duration = Duration::from_secs(15);

/// Waits until every order reached its end state, or the system is at rest without them
/// (then the checks say which), at most [`DRAIN_DEADLINE`]; how long it took.
async fn drain(
    pool: &sqlx::PgPool,
    rabbit: &Rabbit,
    namespace: &str,
    orders: i64,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut last = (0, 0);
    let mut resting_since: Option<(Instant, (i64, i64))> = None;
    let mut looked_at_rest = Instant::now();
    loop {
        // The database may be coming back: a failed read is a "not yet".
        if let Ok(progress) = check::progress(pool).await {
            last = progress;
            if progress.1 >= orders {
                return Ok(started.elapsed());
            }
        }
        // Every few seconds (rabbitmqctl is not cheap): is anything still moving?
        if looked_at_rest.elapsed() > Duration::from_secs(3) {
            looked_at_rest = Instant::now();
            let at_rest = at_rest(pool, rabbit, namespace).await;
            resting_since = match resting_since {
                Some((since, seen)) if at_rest && seen == last => Some((since, seen)),
                _ if at_rest => Some((Instant::now(), last)),
                _ => None,
            };
            if let Some((since, _)) = resting_since
                && since.elapsed() > AT_REST_FOR
            {
                eprintln!(
                    "[chaos] at rest for {} s with {} of {orders} orders done",
                    AT_REST_FOR.as_secs(),
                    last.1
                );
                return Ok(started.elapsed());
            }
        }
        if started.elapsed() > DRAIN_DEADLINE {
            eprintln!(
                "[chaos] not drained within {} s: {} orders known, {} done of {orders}",
                DRAIN_DEADLINE.as_secs(),
                last.0,
                last.1
            );
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits (up to 60 s) until no outbox row is pending and no work queue holds a message, so
/// the checks see a system at rest; the checks say what did not settle.
async fn settle(pool: &sqlx::PgPool, rabbit: &Rabbit, namespace: &str) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) && !at_rest(pool, rabbit, namespace).await {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Nothing pending in any outbox and nothing queued for a worker or the carrier (a failed
/// read, of a database or broker coming back, counts as not at rest).
async fn at_rest(pool: &sqlx::PgPool, rabbit: &Rabbit, namespace: &str) -> bool {
    check::outbox_pending(pool).await.is_ok_and(|n| n == 0)
        && rabbit
            .queue_depths(namespace)
            .is_ok_and(|q| check::queues_not_empty(&q, namespace).is_empty())
}

fn render(outcomes: &[Outcome], took: Duration) -> String {
    let reference = orderly_runtime::machine::reference_loop();
    let mut s = format!(
        "## Fault suite\n\nCommand: `scripts/chaos`  \nMachine: 2 cores, reference loop {} ms; the suite's own PostgreSQL and RabbitMQ, every worker its own process, on the same box. Run at {} UTC, {:.0} s in all.\n\n\
         | scenario | orders | ready again after the fault, s | drained after the last order, s | same id again to the notification system / merchant feed | invariants |\n|---|---|---|---|---|---|\n",
        reference.as_millis(),
        chrono::Utc::now().format("%Y-%m-%d %H:%M"),
        took.as_secs_f64()
    );
    for o in outcomes {
        let failed: Vec<String> = o
            .verdicts
            .iter()
            .filter(|v| !v.holds())
            .map(|v| format!("**{}**: {}", v.name, v.problems.join("; ")))
            .collect();
        s.push_str(&format!(
            "| {} | {} | {:.1} | {:.1} | {} of {} / {} of {} | {} |\n",
            o.scenario.name,
            o.orders,
            o.recovered_in.as_secs_f64(),
            o.drained_in.as_secs_f64(),
            o.repeats.notifications.0,
            o.repeats.notifications.1,
            o.repeats.merchant_events.0,
            o.repeats.merchant_events.1,
            if failed.is_empty() {
                format!("all {} hold", o.verdicts.len())
            } else {
                failed.join("<br>")
            }
        ));
    }
    s.push_str("\nThe invariants checked after every scenario:\n\n");
    if let Some(o) = outcomes.first() {
        for v in &o.verdicts {
            s.push_str(&format!("- {}\n", v.name));
        }
    }
    s
}
