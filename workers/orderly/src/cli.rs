//! The command line: parsing and dispatch. Each command is a thin call into the runtime.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use orderly_runtime::Settings;

/// Orderly: order management as independent workers over RabbitMQ and PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "orderly", version)]
pub struct Cli {
    /// Configuration file (TOML); `ORDERLY__*` environment variables override it.
    #[arg(long, global = true, env = "ORDERLY_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a worker (or `all`) until SIGTERM.
    Run {
        /// Worker name, or `all`.
        worker: String,
    },
    /// Create the database if needed and apply pending migrations.
    Migrate,
    /// Declare exchanges and queues (idempotent).
    Topology {
        /// Print the topology as a RabbitMQ definitions document instead of declaring it.
        #[arg(long)]
        definitions: bool,
    },
    /// Validate one message (an envelope in a JSON file) and publish it, as a producer would.
    Publish {
        /// The envelope file; `-` reads standard input.
        file: PathBuf,
    },
    /// Inspect and replay dead letters.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Outbox backlog of every worker.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// All workers plus a simulated storefront, marketplace, operator and carrier, narrated.
    Demo {
        /// Storefront checkouts to simulate.
        #[arg(long, default_value_t = 16)]
        orders: usize,
        /// Random seed (the same seed tells the same story).
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Drive the simulator at volume against running workers and report throughput and
    /// latency per stage.
    Loadgen {
        /// Orders to place.
        #[arg(long, default_value_t = 3000)]
        orders: usize,
        /// Orders per second.
        #[arg(long, default_value_t = 150.0)]
        rate: f64,
        /// Worker process ids whose peak memory to report.
        #[arg(long = "worker-pid")]
        worker_pids: Vec<u32>,
        /// Do not write docs/benchmarks.md.
        #[arg(long)]
        no_write: bool,
    },
    /// Look at orders: exceptions, rejected orders, a timeline.
    Orders {
        #[command(subcommand)]
        command: OrdersCommand,
    },
    /// Inventory checks.
    Inventory {
        #[command(subcommand)]
        command: InventoryCommand,
    },
    /// Benchmarks that print figures and write them to docs/benchmarks.md.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// List dead letters of a queue (they stay in place).
    List {
        /// Consumer queue, e.g. `orders`.
        queue: String,
        /// Most letters shown.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one dead letter in full (headers and body).
    Show {
        /// Consumer queue.
        queue: String,
        /// Message id.
        message_id: String,
    },
    /// Send dead letters back to their queue with a fresh attempt budget (copy, confirm,
    /// then remove).
    Replay {
        /// Consumer queue.
        queue: String,
        /// Message ids; none with `--all`.
        message_ids: Vec<String>,
        /// Replay every dead letter of the queue.
        #[arg(long, conflicts_with = "message_ids")]
        all: bool,
    },
    /// Delete dead letters.
    Purge {
        /// Consumer queue.
        queue: String,
        /// Message ids; none with `--all`.
        message_ids: Vec<String>,
        /// Delete every dead letter of the queue.
        #[arg(long, conflicts_with = "message_ids")]
        all: bool,
    },
}

#[derive(Debug, Subcommand)]
enum OrdersCommand {
    /// Order item exceptions (open ones unless --all), as JSON.
    Exceptions {
        /// Include resolved ones.
        #[arg(long)]
        all: bool,
    },
    /// Orders rejected for bad input, with the field and the reason, as JSON.
    Rejected {
        /// Most rows.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Everything that happened to an order.
    Timeline {
        /// The order id.
        order_id: uuid::Uuid,
    },
}

#[derive(Debug, Subcommand)]
enum InventoryCommand {
    /// Verify that every stock level equals the sum of its movements and that reservations
    /// match open orders.
    Check,
}

#[derive(Debug, Subcommand)]
enum OutboxCommand {
    /// Pending, failing and published rows per worker, and why rows are stuck.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// One exactly-once hop (inbox + outbox + relay) against the raw broker and database.
    Runtime {
        /// Messages in the throughput run.
        #[arg(long, default_value_t = 20_000)]
        messages: usize,
        /// Seconds of the latency run at half the measured rate.
        #[arg(long, default_value_t = 5)]
        latency_seconds: u64,
        /// Do not write docs/benchmarks.md.
        #[arg(long)]
        no_write: bool,
    },
}

impl Cli {
    pub fn default_log_filter(&self) -> &'static str {
        match self.command {
            Command::Run { .. } => "info,sqlx=warn",
            Command::Demo { .. } => "error",
            _ => "warn,sqlx=error",
        }
    }

    pub async fn execute(self) -> anyhow::Result<()> {
        let settings = Settings::load(self.config.as_deref())?;
        match self.command {
            Command::Run { worker } => crate::ops::run(settings, &worker).await,
            Command::Migrate => crate::ops::migrate(&settings).await,
            Command::Topology { definitions } => crate::ops::topology(&settings, definitions).await,
            Command::Publish { file } => crate::ops::publish(&settings, &file).await,
            Command::Dlq { command } => match command {
                DlqCommand::List { queue, limit, json } => {
                    crate::ops::dlq_list(&settings, &queue, limit, json).await
                }
                DlqCommand::Show { queue, message_id } => {
                    crate::ops::dlq_show(&settings, &queue, &message_id).await
                }
                DlqCommand::Replay {
                    queue,
                    message_ids,
                    all,
                } => crate::ops::dlq_replay(&settings, &queue, &message_ids, all).await,
                DlqCommand::Purge {
                    queue,
                    message_ids,
                    all,
                } => crate::ops::dlq_purge(&settings, &queue, &message_ids, all).await,
            },
            Command::Outbox {
                command: OutboxCommand::Status { json },
            } => crate::ops::outbox_status(&settings, json).await,
            Command::Demo { orders, seed } => crate::demo::run(settings, orders, seed).await,
            Command::Loadgen {
                orders,
                rate,
                worker_pids,
                no_write,
            } => crate::loadgen::run(settings, orders, rate, worker_pids, !no_write).await,
            Command::Orders { command } => {
                let query = match command {
                    OrdersCommand::Exceptions { all } => {
                        crate::ops::OrdersQuery::Exceptions { all }
                    }
                    OrdersCommand::Rejected { limit } => {
                        crate::ops::OrdersQuery::Rejected { limit }
                    }
                    OrdersCommand::Timeline { order_id } => {
                        crate::ops::OrdersQuery::Timeline { order_id }
                    }
                };
                crate::ops::orders_query(&settings, query).await
            }
            Command::Inventory {
                command: InventoryCommand::Check,
            } => crate::ops::inventory_check(&settings).await,
            Command::Bench {
                command:
                    BenchCommand::Runtime {
                        messages,
                        latency_seconds,
                        no_write,
                    },
            } => crate::bench::runtime(settings, messages, latency_seconds, !no_write).await,
        }
    }
}
