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
    /// Every worker's database role, with rights on its own schema only: print the SQL, or
    /// apply it (as the administrator, after `migrate`). docs/operations.md, "Least
    /// privilege".
    Roles {
        /// Run the SQL in each worker's database instead of printing it.
        #[arg(long)]
        apply: bool,
    },
    /// Check one message (an envelope in a JSON file) against its contract, without a broker:
    /// prints what it is, or the first field that is wrong and why (exit 1).
    Validate {
        /// The envelope file; `-` reads standard input.
        file: PathBuf,
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
    #[cfg(feature = "bench")]
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
        /// The section of docs/benchmarks.md the figures replace (`pipeline` for the
        /// throughput run, `pipeline-latency` for the one below saturation).
        #[arg(long, default_value = "pipeline")]
        section: String,
        /// The whole life: send the stores' invoice and notification settings first, and
        /// count an order done when it is completed, invoiced and every customer
        /// notification is asked for (the invoicing and notifications workers must run).
        #[arg(long)]
        whole_life: bool,
    },
    /// Drive the load generator at a steady rate for a long time, sampling memory, table
    /// sizes and latency per window (`scripts/soak`; section `soak` of docs/benchmarks.md).
    #[cfg(feature = "bench")]
    Soak {
        /// How long to place orders, in minutes.
        #[arg(long, default_value_t = 30.0)]
        minutes: f64,
        /// Orders per second.
        #[arg(long, default_value_t = 50.0)]
        rate: f64,
        /// Seconds between samples.
        #[arg(long, default_value_t = 180)]
        window_seconds: u64,
        /// Worker process ids whose memory to sample.
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
    /// Invoices and credit notes: PDFs, lists, refused requests, a store's settings.
    Invoice {
        #[command(subcommand)]
        command: InvoiceCommand,
    },
    /// The VAT rate data invoicing decides with: check a rate file, load it, a store's rows.
    Vat {
        #[command(subcommand)]
        command: VatCommand,
    },
    /// Invoice and credit-note PDFs in the document store (`[documents]`).
    Documents {
        #[command(subcommand)]
        command: DocumentsCommand,
    },
    /// Notifications: rules in force, merchant webhooks and their deliveries, failures.
    Notifications {
        #[command(subcommand)]
        command: NotificationsCommand,
    },
    /// Carriers' webhooks: deliveries the ingress worker took, and the signed ones it refused.
    Ingress {
        #[command(subcommand)]
        command: IngressCommand,
    },
    /// Staff of the admin API: accounts, API tokens.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// A store's secret for its customers' tokens (`/api/v1/store/customer-orders`).
    StoreSecret {
        #[command(subcommand)]
        command: StoreSecretCommand,
    },
    /// Mint a customer token as the store's storefront would (for testing, and to compare
    /// with a storefront's own minting); printed as JSON.
    CustomerToken {
        /// The store.
        #[arg(long)]
        store: String,
        /// The customer's id in that store (the orders' `customer.id`).
        #[arg(long)]
        customer: String,
        /// The customer's e-mail, carried in the token (not used to find orders).
        #[arg(long)]
        email: Option<String>,
        /// Minutes until it expires (at most 60).
        #[arg(long, default_value_t = 15)]
        minutes: u32,
    },
    /// Inventory checks.
    Inventory {
        #[command(subcommand)]
        command: InventoryCommand,
    },
    /// The fault suite: every worker as its own process against a PostgreSQL cluster and a
    /// RabbitMQ node of its own (spare ports; the machine's services are not touched), a
    /// fault injected mid-load, then every invariant checked (docs/chaos.md).
    #[cfg(feature = "bench")]
    Chaos {
        /// Scenarios to run (repeatable); every scenario when none is given. Known:
        /// kill-orders, kill-inventory, kill-fulfillment, kill-invoicing, kill-notifications,
        /// kill-api, broker-stop, broker-kill, postgres-fast, postgres-immediate,
        /// two-copies-killed-repeatedly, two-copies, three-copies (no fault), memory-alarm,
        /// cluster-node-kill, least-privilege-tls (no fault: TLS only, each worker its own
        /// broker user and database role, then the refusals probed).
        #[arg(long = "scenario")]
        scenarios: Vec<String>,
        /// Orders each scenario places.
        #[arg(long, default_value_t = 600)]
        orders: usize,
        /// Orders per second.
        #[arg(long, default_value_t = 40.0)]
        rate: f64,
        /// Write the figures and verdicts to docs/chaos.md.
        #[arg(long)]
        report: bool,
    },
    /// Benchmarks that print figures and write them to docs/benchmarks.md.
    #[cfg(feature = "bench")]
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
enum StaffCommand {
    /// Add a staff member with a role (order_admin, fulfillment_team, account_manager,
    /// setup_manager), limited to the stores given (an account manager needs at least one).
    Add {
        /// Their e-mail, by which the other commands name them.
        email: String,
        /// Their role.
        #[arg(long)]
        role: String,
        /// A store they are limited to (repeat for several).
        #[arg(long = "store")]
        stores: Vec<String>,
    },
    /// Change a staff member's role or stores (effective on their next request).
    Grant {
        /// Their e-mail.
        email: String,
        /// A new role.
        #[arg(long)]
        role: Option<String>,
        /// A store to add to the ones they are limited to (repeat for several).
        #[arg(long = "store")]
        add_stores: Vec<String>,
        /// A store to take away (repeat for several).
        #[arg(long = "remove-store")]
        remove_stores: Vec<String>,
    },
    /// Issue an API token to a staff member; it is printed once and never stored.
    Token {
        /// Their e-mail.
        email: String,
        /// Days until it expires.
        #[arg(long, default_value_t = 90)]
        days: u32,
    },
    /// Revoke a token, named by its id or its first characters (at least 8).
    Revoke {
        /// The token id, or a prefix of the token.
        token: String,
    },
    /// Set a staff member's password for the admin console (`/admin`), read from standard
    /// input (its first line), never from the command line (which other users of the
    /// machine and the shell's history can see). Ends their console sessions.
    Password {
        /// Their e-mail.
        email: String,
        /// Read the password from standard input without prompting (for scripts; the
        /// default when standard input is not a terminal).
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
enum StoreSecretCommand {
    /// Make a new secret for the store (printed once, never again); the one it replaces
    /// stays valid for the grace period, older ones end now.
    Rotate {
        /// The store.
        store: String,
        /// Hours the replaced secret stays valid (0 ends it now).
        #[arg(long, default_value_t = 24)]
        grace_hours: u32,
    },
}

#[derive(Debug, Subcommand)]
enum IngressCommand {
    /// The latest deliveries taken (each published once as `shipment.updated`), as JSON.
    Deliveries {
        /// Most rows.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// The latest correctly signed deliveries that were refused (not JSON, a field that
    /// cannot be mapped), with the field, the reason and the start of the body, as JSON.
    Refused {
        /// Most rows.
        #[arg(long, default_value_t = 50)]
        limit: i64,
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
    /// Export the orders the admin API's list shows for a filter, to standard output
    /// (`orderly orders export --filter 'store=shop-de&status=shipped' > shipped.csv`).
    Export {
        #[command(flatten)]
        api: ApiArgs,
        /// The list's filters, as its query string (`store=shop-de&status=shipped`).
        #[arg(long, default_value = "")]
        filter: String,
        /// `csv` (default) or `jsonl`.
        #[arg(long)]
        format: Option<String>,
        /// `order` (default) or `line`.
        #[arg(long)]
        rows: Option<String>,
        /// The columns, in order (a comma list).
        #[arg(long)]
        columns: Option<String>,
    },
    /// One action on many orders through the admin API, as a job
    /// (`orderly orders bulk hold --params '{"reason":"stock check"}' --filter 'store=shop-de'`).
    Bulk {
        #[command(flatten)]
        api: ApiArgs,
        /// `cancel`, `hold`, `release`, `note` or `resend_notification`.
        action: String,
        /// The action's body, as JSON (`{"reason": "…"}`).
        #[arg(long, default_value = "{}")]
        params: String,
        /// The list's filters, as its query string.
        #[arg(long, conflicts_with = "ids")]
        filter: Option<String>,
        /// Order ids (a comma list).
        #[arg(long, value_delimiter = ',')]
        ids: Vec<uuid::Uuid>,
        /// Say what would be sent and skipped, and send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Makes the request safe to repeat (the same key answers with the same job).
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Wait until every order is sent and answered, with progress on standard error.
        #[arg(long)]
        wait: bool,
    },
}

/// Where the admin API is, and the staff token to call it with.
#[derive(Debug, clap::Args)]
struct ApiArgs {
    /// The admin API's address (`http://127.0.0.1:8081`).
    #[arg(long = "api", env = "ORDERLY_API_URL")]
    url: String,
    /// A staff API token (`orderly staff token`).
    #[arg(long, env = "ORDERLY_API_TOKEN", hide_env_values = true)]
    token: String,
}

#[derive(Debug, Subcommand)]
enum InvoiceCommand {
    /// Write the PDF of an invoice or credit note to standard output
    /// (`orderly invoice pdf RE-2026-000042 > RE-2026-000042.pdf`).
    Pdf {
        /// The document number.
        number: String,
        /// The store, when two stores' series share a number.
        #[arg(long)]
        store: Option<String>,
    },
    /// Write the structured e-invoice (the EN 16931 XML embedded in the issued PDF) to
    /// standard output.
    Xml {
        /// The document number.
        number: String,
        /// The store, when two stores' series share a number.
        #[arg(long)]
        store: Option<String>,
    },
    /// Check an issued document's e-invoice: the XML embedded in its PDF against EN 16931's
    /// business rules, and the PDF's PDF/A-3 and Factur-X declarations (XML schema
    /// validation: `scripts/einvoice-check`). Exits 1 when a rule is broken.
    Validate {
        /// The document number.
        number: String,
        /// The store, when two stores' series share a number.
        #[arg(long)]
        store: Option<String>,
    },
    /// Issued invoices and credit notes, newest first.
    List {
        /// Only this store's.
        #[arg(long)]
        store: Option<String>,
        /// Most rows.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Requests refused or held, with the reason (open ones unless --all).
    Refused {
        /// Only this store's.
        #[arg(long)]
        store: Option<String>,
        /// Include the ones settled since.
        #[arg(long)]
        all: bool,
        /// Most rows.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Publish a store's invoice settings (a `store.invoice_settings_updated` payload as JSON;
    /// `-` reads standard input), checked against the contract first.
    Settings {
        /// The payload file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum VatCommand {
    /// Check a rate file (`workers/invoicing/data/vat-rates.csv` is the format): every bad
    /// row by line and column, or the count of rows.
    Check {
        /// The file.
        file: PathBuf,
    },
    /// Load a rate file as the rates every store uses; running invoicing workers put it in
    /// force within `[vat] refresh_ms` (prints what was loaded as JSON).
    Load {
        /// The file.
        file: PathBuf,
    },
    /// Load the ECB's euro reference rates (`eurofxref-hist.csv` or `eurofxref.csv`: `Date,USD,
    /// JPY,...`): what states the VAT of an invoice in another currency in the national
    /// currency (Art. 230).
    Fx {
        /// The file.
        file: PathBuf,
    },
    /// Set a store's own rate rows (same format), which win where they cover the day.
    Store {
        /// The store.
        store: String,
        /// The file with the store's rows.
        #[arg(required_unless_present = "clear")]
        file: Option<PathBuf>,
        /// Remove the store's rows instead.
        #[arg(long, conflicts_with = "file")]
        clear: bool,
    },
}

#[derive(Debug, Subcommand)]
enum DocumentsCommand {
    /// Copy every PDF the invoicing worker keeps that the document store lacks into it
    /// (idempotent; prints the counts as JSON).
    Migrate {
        /// Also compare the SHA-256 of objects already there (reads every object).
        #[arg(long)]
        verify: bool,
    },
}

#[derive(Debug, Subcommand)]
enum NotificationsCommand {
    /// Publish a store's notification settings (a `store.notification_settings_updated`
    /// payload as JSON; `-` reads standard input), checked against the contract first.
    Settings {
        /// The payload file.
        file: PathBuf,
    },
    /// Register or change a merchant webhook endpoint (a `webhook.endpoint_registered`
    /// payload as JSON), checked against the contract first.
    Endpoint {
        /// The payload file.
        file: PathBuf,
    },
    /// The rules in force for a store (its own and the built-in defaults).
    Rules {
        /// The store.
        store: String,
    },
    /// A store's webhook endpoints (without secrets), as JSON.
    Endpoints {
        /// The store.
        store: String,
    },
    /// A store's webhook delivery log, newest first, as JSON.
    Deliveries {
        /// The store.
        store: String,
        /// Most rows.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Send a webhook delivery again (same event id: receivers deduplicate by it).
    Replay {
        /// The delivery id (from `deliveries`).
        delivery_id: uuid::Uuid,
    },
    /// Notifications that failed for good, as JSON.
    Failed {
        /// Most rows.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Receipts from the notification system naming a request Orderly never made, as JSON.
    UnknownReceipts {
        /// Most rows.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// An order's notification requests and suppressions, as JSON.
    Order {
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

#[cfg(feature = "bench")]
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
    /// The invoicing worker: invoices per second end to end (VAT decision, numbering, PDF,
    /// storage) and PDF rendering alone, in a scratch database and namespace.
    Invoices {
        /// Invoice requests to publish.
        #[arg(long, default_value_t = 4_000)]
        invoices: usize,
        /// Do not write docs/benchmarks.md.
        #[arg(long)]
        no_write: bool,
    },
    /// The admin API: mixed reads over HTTP on a read model of a million orders (list and
    /// detail latency, requests per second), the api schema's size per million orders, and
    /// the projection's lag behind the events while the pipeline runs; in a scratch
    /// database and namespace.
    Api {
        #[command(flatten)]
        options: crate::bench::api::Options,
        /// Do not write docs/benchmarks.md.
        #[arg(long)]
        no_write: bool,
    },
    /// The operators' heavy requests on a million orders: an export of all of them (rows
    /// per second, peak memory), a bulk job (commands per second), the analytics endpoints
    /// (p50, p99), and what the analytics facts cost per order; in a scratch database and
    /// namespace.
    Operations {
        #[command(flatten)]
        options: crate::bench::operations::Options,
        /// Do not write docs/benchmarks.md.
        #[arg(long)]
        no_write: bool,
    },
    /// The setups worker: stage transitions per second with many setups in progress at
    /// once (two per order), each request decided, recorded and answered; in a scratch
    /// database and namespace.
    Setups {
        /// Orders of two service lines each (so twice as many setups).
        #[arg(long, default_value_t = 5_000)]
        orders: usize,
        /// Do not write docs/benchmarks.md.
        #[arg(long)]
        no_write: bool,
    },
    /// The notifications worker: requests per second from status events, and webhook
    /// deliveries per second to a local receiver, with per-order order checked.
    Notifications {
        /// Status events to publish.
        #[arg(long, default_value_t = 6_000)]
        events: usize,
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
            // The suite cuts its own broker's connections on purpose: lapin's errors about
            // them are expected; the verdicts say whether anything was lost.
            #[cfg(feature = "bench")]
            Command::Chaos { .. } => "warn,sqlx=error,lapin=off",
            _ => "warn,sqlx=error",
        }
    }

    pub async fn execute(self) -> anyhow::Result<()> {
        let settings = Settings::load(self.config.as_deref())?;
        match self.command {
            Command::Run { worker } => crate::ops::run(settings, &worker).await,
            Command::Migrate => crate::ops::migrate(&settings).await,
            Command::Topology { definitions } => crate::ops::topology(&settings, definitions).await,
            Command::Roles { apply } => crate::ops::roles(&settings, apply).await,
            Command::Validate { file } => crate::ops::validate(&file),
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
            #[cfg(feature = "bench")]
            Command::Loadgen {
                orders,
                rate,
                worker_pids,
                no_write,
                section,
                whole_life,
            } => {
                let write = (!no_write).then_some(section.as_str());
                crate::loadgen::run(settings, orders, rate, worker_pids, write, whole_life).await
            }
            #[cfg(feature = "bench")]
            Command::Soak {
                minutes,
                rate,
                window_seconds,
                worker_pids,
                no_write,
            } => {
                crate::soak::run(
                    settings,
                    minutes,
                    rate,
                    std::time::Duration::from_secs(window_seconds),
                    worker_pids,
                    !no_write,
                )
                .await
            }
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
                    OrdersCommand::Export {
                        api,
                        filter,
                        format,
                        rows,
                        columns,
                    } => {
                        let remote = crate::api_client::Remote::new(&api.url, &api.token)?;
                        let shape = crate::api_client::ExportShape {
                            format,
                            rows,
                            columns,
                        };
                        return crate::api_client::export(&remote, &filter, &shape).await;
                    }
                    OrdersCommand::Bulk {
                        api,
                        action,
                        params,
                        filter,
                        ids,
                        dry_run,
                        idempotency_key,
                        wait,
                    } => {
                        let remote = crate::api_client::Remote::new(&api.url, &api.token)?;
                        let args = crate::api_client::BulkArgs {
                            action,
                            params,
                            filter,
                            ids,
                            dry_run,
                            idempotency_key,
                            wait,
                        };
                        return crate::api_client::bulk(&remote, &args).await;
                    }
                };
                crate::ops::orders_query(&settings, query).await
            }
            Command::Invoice { command } => {
                use crate::ops::InvoiceQuery as Q;
                let query = match command {
                    InvoiceCommand::Settings { file } => {
                        return crate::ops::publish_payload::<
                            orderly_contracts::messages::StoreInvoiceSettingsUpdated,
                        >(&settings, &file)
                        .await;
                    }
                    InvoiceCommand::Pdf { number, store } => Q::Pdf { number, store },
                    InvoiceCommand::Xml { number, store } => Q::Xml { number, store },
                    InvoiceCommand::Validate { number, store } => Q::Validate { number, store },
                    InvoiceCommand::List { store, limit } => Q::List { store, limit },
                    InvoiceCommand::Refused { store, all, limit } => {
                        Q::Refused { store, all, limit }
                    }
                };
                crate::ops::invoice_query(&settings, query).await
            }
            Command::Vat { command } => {
                use crate::ops::VatAction as A;
                let action = match command {
                    VatCommand::Check { file } => A::Check(file),
                    VatCommand::Load { file } => A::Load(file),
                    VatCommand::Fx { file } => A::Fx(file),
                    VatCommand::Store { store, file, .. } => A::Store { store, file },
                };
                crate::ops::vat(&settings, action).await
            }
            Command::Documents {
                command: DocumentsCommand::Migrate { verify },
            } => crate::ops::documents_migrate(&settings, verify).await,
            Command::Notifications { command } => {
                use crate::ops::NotificationsQuery as Q;
                let query = match command {
                    NotificationsCommand::Settings { file } => {
                        return crate::ops::publish_payload::<
                            orderly_contracts::messages::StoreNotificationSettingsUpdated,
                        >(&settings, &file)
                        .await;
                    }
                    NotificationsCommand::Endpoint { file } => {
                        return crate::ops::publish_payload::<
                            orderly_contracts::messages::WebhookEndpointRegistered,
                        >(&settings, &file)
                        .await;
                    }
                    NotificationsCommand::Rules { store } => Q::Rules { store },
                    NotificationsCommand::Endpoints { store } => Q::Endpoints { store },
                    NotificationsCommand::Deliveries { store, limit } => {
                        Q::Deliveries { store, limit }
                    }
                    NotificationsCommand::Replay { delivery_id } => Q::Replay { delivery_id },
                    NotificationsCommand::Failed { limit } => Q::Failed { limit },
                    NotificationsCommand::UnknownReceipts { limit } => Q::UnknownReceipts { limit },
                    NotificationsCommand::Order { order_id } => Q::Order { order_id },
                };
                crate::ops::notifications_query(&settings, query).await
            }
            Command::Ingress { command } => {
                let query = match command {
                    IngressCommand::Deliveries { limit } => {
                        crate::ops::IngressQuery::Deliveries { limit }
                    }
                    IngressCommand::Refused { limit } => {
                        crate::ops::IngressQuery::Refused { limit }
                    }
                };
                crate::ops::ingress_query(&settings, query).await
            }
            Command::Staff { command } => {
                let command = match command {
                    StaffCommand::Add {
                        email,
                        role,
                        stores,
                    } => crate::ops::StaffCommand::Add {
                        email,
                        role,
                        stores,
                    },
                    StaffCommand::Grant {
                        email,
                        role,
                        add_stores,
                        remove_stores,
                    } => crate::ops::StaffCommand::Grant {
                        email,
                        role,
                        add_stores,
                        remove_stores,
                    },
                    StaffCommand::Token { email, days } => {
                        crate::ops::StaffCommand::Token { email, days }
                    }
                    StaffCommand::Revoke { token } => crate::ops::StaffCommand::Revoke { token },
                    StaffCommand::Password {
                        email,
                        password_stdin,
                    } => crate::ops::StaffCommand::Password {
                        email,
                        password: crate::ops::read_password(password_stdin)?,
                    },
                };
                crate::ops::staff(&settings, command).await
            }
            Command::StoreSecret {
                command: StoreSecretCommand::Rotate { store, grace_hours },
            } => crate::ops::store_secret_rotate(&settings, &store, grace_hours).await,
            Command::CustomerToken {
                store,
                customer,
                email,
                minutes,
            } => {
                crate::ops::customer_token(&settings, &store, &customer, email.as_deref(), minutes)
                    .await
            }
            Command::Inventory {
                command: InventoryCommand::Check,
            } => crate::ops::inventory_check(&settings).await,
            #[cfg(feature = "bench")]
            Command::Chaos {
                scenarios,
                orders,
                rate,
                report,
            } => crate::chaos::run(&scenarios, orders, rate, report).await,
            #[cfg(feature = "bench")]
            Command::Bench {
                command:
                    BenchCommand::Runtime {
                        messages,
                        latency_seconds,
                        no_write,
                    },
            } => crate::bench::runtime(settings, messages, latency_seconds, !no_write).await,
            #[cfg(feature = "bench")]
            Command::Bench {
                command: BenchCommand::Invoices { invoices, no_write },
            } => {
                let scratch = orderly_runtime::Scratch::new(&settings, "invoices").await?;
                let figures = orderly_invoicing::bench::run(&scratch.settings, invoices).await;
                scratch.remove().await?;
                crate::bench::report(
                    "invoices",
                    "Invoicing: invoices end to end, and PDF rendering alone",
                    &format!(
                        "cargo run --release -p orderly --features bench -- bench invoices --invoices {invoices}"
                    ),
                    &figures?.markdown(),
                    !no_write,
                )
            }
            #[cfg(feature = "bench")]
            Command::Bench {
                command: BenchCommand::Api { options, no_write },
            } => crate::bench::api::run(settings, options, !no_write).await,
            #[cfg(feature = "bench")]
            Command::Bench {
                command: BenchCommand::Operations { options, no_write },
            } => crate::bench::operations::run(settings, options, !no_write).await,
            #[cfg(feature = "bench")]
            Command::Bench {
                command: BenchCommand::Setups { orders, no_write },
            } => crate::bench::setups::run(settings, orders, !no_write).await,
            #[cfg(feature = "bench")]
            Command::Bench {
                command: BenchCommand::Notifications { events, no_write },
            } => {
                let figures = orderly_notifications::bench::run(&settings, events).await?;
                crate::bench::report(
                    "notifications",
                    "Notifications: requests from status events, merchant webhook deliveries",
                    &format!(
                        "cargo run --release -p orderly --features bench -- bench notifications --events {events}"
                    ),
                    &figures.markdown(),
                    !no_write,
                )
            }
        }
    }
}
