//! Operator commands. Each opens what it needs, does one thing, and says what happened.

use std::{io::Read, path::Path};

use anyhow::Context;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use orderly_runtime::{
    Host, Settings,
    broker::{self, Names},
    db,
    dlq::{DeadLetter, DeadLetters},
    outbox, topology,
};

/// Hosts `worker` (or every worker) until SIGTERM.
pub(crate) async fn run(settings: Settings, worker: &str) -> anyhow::Result<()> {
    let known = crate::workers::names();
    let selected: Vec<String> = if worker == "all" {
        known.clone()
    } else if known.iter().any(|w| w == worker) {
        vec![worker.to_owned()]
    } else {
        anyhow::bail!("unknown worker `{worker}`; known: {}", known.join(", "));
    };
    let mut host = Host::new(settings);
    let specs = topology::standard_specs(host.settings());
    if host.settings().provision {
        for url in host.settings().all_database_urls() {
            db::ensure_database(url).await?;
            db::migrate(url).await?;
        }
        host.declare(&specs).await?;
    } else {
        // A deployment's job provisioned everything; each worker, as its own broker user,
        // (re)declares only its own queues.
        for name in &selected {
            if let Some(spec) = specs.iter().find(|s| &s.name == name) {
                host.declare_own(name, spec).await?;
            }
        }
    }
    for name in &selected {
        crate::workers::start(&mut host, name).await?;
    }
    host.serve_http().await?;
    host.run_until_signal().await;
    Ok(())
}

/// Publishes raw bytes without validating them (the demo's deliberately broken order).
pub(crate) async fn publish_unchecked(
    settings: &Settings,
    names: &Names,
    routing_key: &str,
    body: &[u8],
) -> anyhow::Result<()> {
    let connection = broker::connect(&settings.broker_url, "orderly-cli").await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    channel
        .basic_publish(
            names.events_exchange().into(),
            routing_key.into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            body,
            lapin::BasicProperties::default().with_delivery_mode(2),
        )
        .await?
        .await?;
    let _ = connection.close(200, "done".into()).await;
    Ok(())
}

/// An order's timeline as printable lines.
pub(crate) async fn timeline_lines(
    pool: &sqlx::PgPool,
    order_id: uuid::Uuid,
) -> anyhow::Result<Vec<String>> {
    let mut conn = pool.acquire().await?;
    let entries = orderly_orders::store::timeline(&mut conn, order_id).await?;
    Ok(entries
        .into_iter()
        .map(|e| {
            format!(
                "{:>3} {} {:<22} {}",
                e.seq,
                e.at.format("%H:%M:%S%.3f"),
                e.kind,
                e.detail
            )
        })
        .collect())
}

/// `orderly orders exceptions|rejected|timeline`.
pub(crate) async fn orders_query(settings: &Settings, what: OrdersQuery) -> anyhow::Result<()> {
    let pool = db::connect(
        settings.database_url_for(orderly_orders::NAME),
        orderly_orders::NAME,
        1,
    )
    .await?;
    let mut conn = pool.acquire().await?;
    match what {
        OrdersQuery::Exceptions { all } => {
            print_json(&orderly_orders::store::list_exceptions(&mut conn, !all).await?)?;
        }
        OrdersQuery::Rejected { limit } => {
            print_json(&orderly_orders::store::list_rejected(&mut conn, limit).await?)?;
        }
        OrdersQuery::Timeline { order_id } => {
            drop(conn);
            for line in timeline_lines(&pool, order_id).await? {
                println!("{line}");
            }
        }
    }
    Ok(())
}

/// What `orderly orders` can show.
#[derive(Debug)]
pub(crate) enum OrdersQuery {
    Exceptions { all: bool },
    Rejected { limit: i64 },
    Timeline { order_id: uuid::Uuid },
}

/// `orderly ingress deliveries|refused`.
pub(crate) async fn ingress_query(settings: &Settings, what: IngressQuery) -> anyhow::Result<()> {
    let pool = db::connect(
        settings.database_url_for(orderly_ingress::NAME),
        orderly_ingress::NAME,
        1,
    )
    .await?;
    match what {
        IngressQuery::Deliveries { limit } => {
            print_json(&orderly_ingress::store::deliveries(&pool, limit).await?)?;
        }
        IngressQuery::Refused { limit } => {
            print_json(&orderly_ingress::store::refused_deliveries(&pool, limit).await?)?;
        }
    }
    pool.close().await;
    Ok(())
}

/// What `orderly ingress` can show.
#[derive(Debug)]
pub(crate) enum IngressQuery {
    Deliveries { limit: i64 },
    Refused { limit: i64 },
}

/// `orderly staff add|grant|token|revoke`: the api worker's staff functions, printed as JSON.
pub(crate) async fn staff(settings: &Settings, command: StaffCommand) -> anyhow::Result<()> {
    let pool = db::connect(
        settings.database_url_for(orderly_api::NAME),
        orderly_api::NAME,
        1,
    )
    .await?;
    let result = match command {
        StaffCommand::Add {
            email,
            role,
            stores,
        } => orderly_api::staff::add(&pool, &email, &role, &stores)
            .await
            .map(|m| serde_json::to_value(m).unwrap_or_default()),
        StaffCommand::Grant {
            email,
            role,
            add_stores,
            remove_stores,
        } => orderly_api::staff::grant(&pool, &email, role.as_deref(), &add_stores, &remove_stores)
            .await
            .map(|m| serde_json::to_value(m).unwrap_or_default()),
        StaffCommand::Token { email, days } => orderly_api::staff::issue_token(&pool, &email, days)
            .await
            .map(|t| serde_json::to_value(t).unwrap_or_default()),
        StaffCommand::Revoke { token } => orderly_api::staff::revoke(&pool, &token)
            .await
            .map(|r| serde_json::to_value(r).unwrap_or_default()),
        StaffCommand::Password { email, password } => orderly_api::staff::set_password(
            &pool,
            &email,
            &password.0,
        )
        .await
        .map(|()| serde_json::json!({"email": email.trim().to_lowercase(), "password": "set"})),
    };
    pool.close().await;
    print_json(&result?)
}

/// `orderly store-secret rotate`: a store's new secret for its customers' tokens, printed
/// once as JSON.
pub(crate) async fn store_secret_rotate(
    settings: &Settings,
    store: &str,
    grace_hours: u32,
) -> anyhow::Result<()> {
    let pool = db::connect(
        settings.database_url_for(orderly_api::NAME),
        orderly_api::NAME,
        1,
    )
    .await?;
    let grace = chrono::Duration::hours(i64::from(grace_hours));
    let rotated = orderly_api::secrets::rotate(&pool, store, grace).await;
    pool.close().await;
    print_json(&rotated?)
}

/// `orderly customer-token`: a customer token signed with the store's current secret.
pub(crate) async fn customer_token(
    settings: &Settings,
    store: &str,
    customer: &str,
    email: Option<&str>,
    minutes: u32,
) -> anyhow::Result<()> {
    let pool = db::connect(
        settings.database_url_for(orderly_api::NAME),
        orderly_api::NAME,
        1,
    )
    .await?;
    let token = orderly_api::secrets::customer_token(&pool, store, customer, email, minutes).await;
    pool.close().await;
    print_json(&token?)
}

/// What `orderly staff` does.
#[derive(Debug)]
pub(crate) enum StaffCommand {
    Add {
        email: String,
        role: String,
        stores: Vec<String>,
    },
    Grant {
        email: String,
        role: Option<String>,
        add_stores: Vec<String>,
        remove_stores: Vec<String>,
    },
    Token {
        email: String,
        days: u32,
    },
    Revoke {
        token: String,
    },
    Password {
        email: String,
        password: Password,
    },
}

/// A password on its way to being hashed: never printed, not even by `Debug`.
pub(crate) struct Password(pub(crate) String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(…)")
    }
}

/// The password for `orderly staff password`: the first line of standard input (without
/// its line ending), with a prompt on standard error when it is a terminal and
/// `--password-stdin` was not given.
pub(crate) fn read_password(no_prompt: bool) -> anyhow::Result<Password> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    if !no_prompt && stdin.is_terminal() {
        eprint!("Password (shown as you type; pipe it in to avoid that): ");
        std::io::stderr().flush().ok();
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    anyhow::ensure!(!password.is_empty(), "no password on standard input");
    Ok(Password(password))
}

/// `orderly inventory check`: exits non-zero when stock and movements disagree.
pub(crate) async fn inventory_check(settings: &Settings) -> anyhow::Result<()> {
    let pool = db::connect(
        settings.database_url_for(orderly_inventory::NAME),
        orderly_inventory::NAME,
        1,
    )
    .await?;
    let mut conn = pool.acquire().await?;
    let violations = orderly_inventory::consistency_check(&mut conn).await?;
    if violations.is_empty() {
        println!(
            "inventory consistent: every stock level equals the sum of its movements; reservations match open orders"
        );
        return Ok(());
    }
    for v in &violations {
        println!("{v}");
    }
    anyhow::bail!("{} inventory inconsistencies", violations.len())
}

/// `orderly roles`: every worker's database role and its grants (its own schema only), as
/// SQL; with `apply`, run in each worker's database (as the administrator who ran the
/// migrations; after every migration, so new tables are granted too).
pub(crate) async fn roles(settings: &Settings, apply: bool) -> anyhow::Result<()> {
    use orderly_runtime::access;
    for worker in crate::workers::names() {
        let sql = access::postgres_grants(&worker);
        if !apply {
            println!("-- worker `{worker}`\n{sql}");
            continue;
        }
        let url = settings.database_url_for(&worker);
        let mut conn = db::connect(url, "public", 1)
            .await?
            .acquire()
            .await?
            .detach();
        // Built from the built-in workers' names only.
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .with_context(|| format!("granting worker `{worker}` its schema"))?;
        println!(
            "role {} may use schema {worker} in {}",
            access::postgres_role(&worker),
            orderly_runtime::config::redact_url(url)
        );
    }
    Ok(())
}

/// `orderly migrate`.
pub(crate) async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    // One migration set for every database: each gets every worker's schema, and a worker
    // uses its own (docs/operations.md, "Per-worker databases").
    for url in settings.all_database_urls() {
        db::ensure_database(url).await?;
        db::migrate(url).await?;
        println!(
            "database migrated: {}",
            orderly_runtime::config::redact_url(url)
        );
    }
    Ok(())
}

/// `orderly topology`.
pub(crate) async fn topology(settings: &Settings, definitions: bool) -> anyhow::Result<()> {
    let specs = topology::standard_specs(settings);
    if definitions {
        println!(
            "{}",
            serde_json::to_string_pretty(&crate::workers::broker_definitions(settings, "/"))?
        );
        return Ok(());
    }
    Host::new(settings.clone()).declare(&specs).await?;
    let names = Names::new(settings.namespace.clone());
    for spec in &specs {
        let queue = match spec.kind {
            topology::QueueKind::Worker { partitions, .. } => format!(
                "{} (p0..p{})",
                names.partition_exchange(&spec.name),
                partitions.saturating_sub(1)
            ),
            topology::QueueKind::Outbound { .. } => names.queue(&spec.name),
        };
        println!("{queue:<48} {}", spec.bindings.join(", "));
    }
    Ok(())
}

/// The bytes of `file`, or of standard input for `-`.
fn read_input(file: &Path) -> anyhow::Result<Vec<u8>> {
    if file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        Ok(buf)
    } else {
        std::fs::read(file).with_context(|| format!("reading {}", file.display()))
    }
}

/// `orderly publish FILE`.
/// `orderly validate FILE`: the envelope's type, version, schema and business rules, as a
/// consumer will judge them; nothing is sent.
pub(crate) fn validate(file: &Path) -> anyhow::Result<()> {
    let origin = file.display().to_string();
    let raw = orderly_contracts::decode_raw(&read_input(file)?)
        .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    let summary = format!(
        "{} v{} {} (correlation {})",
        raw.message_type, raw.schema_version, raw.message_id, raw.correlation_id
    );
    orderly_contracts::catalog::validate_any(raw).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    println!("valid: {summary}");
    Ok(())
}

pub(crate) async fn publish(settings: &Settings, file: &Path) -> anyhow::Result<()> {
    publish_envelope(settings, &read_input(file)?, &file.display().to_string()).await
}

/// `orderly invoice settings FILE` and the like: a payload of type `P` (a store's settings,
/// as the admin API would send them) wrapped in an envelope from `orderly-cli`, checked and
/// published. The store id is the correlation id.
pub(crate) async fn publish_payload<P>(settings: &Settings, file: &Path) -> anyhow::Result<()>
where
    P: orderly_contracts::Message + serde::de::DeserializeOwned,
{
    let body = read_input(file)?;
    let origin = file.display().to_string();
    // Strict: a key named twice is refused, as the workers refuse it.
    let payload = orderly_contracts::decode_json(&body)
        .map_err(|e| anyhow::anyhow!("{origin}: not valid JSON: {e}"))?;
    let store = payload
        .get("store_id")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("cli")
        .to_owned();
    let typed: P = serde_path_to_error::deserialize(&payload)
        .map_err(|e| anyhow::anyhow!("{origin}: payload.{}: {}", e.path(), e.inner()))?;
    let envelope = orderly_contracts::Envelope::new("orderly-cli", store, typed);
    publish_envelope(settings, &envelope.to_json(), &origin).await
}

/// Validates an envelope against its contract and publishes it, confirmed and routable.
async fn publish_envelope(settings: &Settings, body: &[u8], origin: &str) -> anyhow::Result<()> {
    let raw = orderly_contracts::decode_raw(body).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    let id = raw.message_id;
    let message_type = raw.message_type.clone();
    let correlation = raw.correlation_id.clone();
    let producer = raw.producer.clone();
    let occurred = raw.occurred_at.timestamp().max(0) as u64;
    let time = raw
        .occurred_at
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let version = raw.schema_version;
    // Type, version, payload schema and business rules, with the offending field named.
    orderly_contracts::catalog::validate_any(raw).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;

    let names = Names::new(settings.namespace.clone());
    let connection = broker::connect(&settings.broker_url, "orderly-cli").await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let id_text = id.to_string();
    let cloudevent = orderly_contracts::cloudevents::Attributes {
        id: &id_text,
        message_type: &message_type,
        schema_version: version,
        source: &producer,
        time: &time,
        subject: &correlation,
    };
    let props = broker::envelope_properties(
        &id_text,
        &message_type,
        &correlation,
        &producer,
        occurred,
        broker::with_cloudevents(Default::default(), &cloudevent),
    );
    let confirmation = channel
        .basic_publish(
            names.events_exchange().into(),
            message_type.as_str().into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            body,
            props,
        )
        .await?
        .await?;
    let _ = connection.close(200, "done".into()).await;
    match confirmation {
        lapin::Confirmation::Ack(None) => {
            println!("published {message_type} {id}");
            Ok(())
        }
        lapin::Confirmation::Ack(Some(_)) => {
            anyhow::bail!(
                "`{message_type}` is unroutable: no queue is bound for it (run `orderly topology`)"
            )
        }
        other => anyhow::bail!("the broker did not accept the message: {other:?}"),
    }
}

async fn with_dead_letters<T>(
    settings: &Settings,
    queue: &str,
    f: impl AsyncFnOnce(DeadLetters<'_>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let names = Names::new(settings.namespace.clone());
    let connection = broker::connect(&settings.broker_url, "orderly-cli").await?;
    let channel = connection.create_channel().await?;
    let result = f(DeadLetters::new(&channel, &names, queue)).await;
    // Closing the channel hands back anything read without being removed.
    let _ = connection.close(200, "done".into()).await;
    result
}

/// `orderly dlq list`.
pub(crate) async fn dlq_list(
    settings: &Settings,
    queue: &str,
    limit: usize,
    json: bool,
) -> anyhow::Result<()> {
    let letters = with_dead_letters(settings, queue, async |d| Ok(d.list(limit).await?)).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&letters)?);
        return Ok(());
    }
    if letters.is_empty() {
        println!("no dead letters in {queue}");
        return Ok(());
    }
    println!("{:<38} {:<28} {:>4}  reason", "message id", "type", "att");
    for l in &letters {
        println!(
            "{:<38} {:<28} {:>4}  {}",
            l.message_id.as_deref().unwrap_or("-"),
            l.message_type.as_deref().unwrap_or("-"),
            l.attempts.map_or("-".to_owned(), |a| a.to_string()),
            l.reason
        );
    }
    Ok(())
}

/// `orderly dlq show`.
pub(crate) async fn dlq_show(settings: &Settings, queue: &str, id: &str) -> anyhow::Result<()> {
    let letters: Vec<DeadLetter> =
        with_dead_letters(settings, queue, async |d| Ok(d.list(usize::MAX).await?)).await?;
    let letter = letters
        .into_iter()
        .find(|l| l.message_id.as_deref() == Some(id))
        .ok_or_else(|| anyhow::anyhow!("no dead letter with message id {id} in {queue}"))?;
    println!("{}", serde_json::to_string_pretty(&letter)?);
    Ok(())
}

/// `orderly dlq replay`.
pub(crate) async fn dlq_replay(
    settings: &Settings,
    queue: &str,
    ids: &[String],
    all: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        all || !ids.is_empty(),
        "name message ids to replay, or pass --all"
    );
    let n = with_dead_letters(settings, queue, async |d| d.replay(ids).await).await?;
    println!("replayed {n} dead letter(s) to {queue}");
    Ok(())
}

/// `orderly dlq purge`.
pub(crate) async fn dlq_purge(
    settings: &Settings,
    queue: &str,
    ids: &[String],
    all: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        all || !ids.is_empty(),
        "name message ids to purge, or pass --all"
    );
    let n = with_dead_letters(settings, queue, async |d| Ok(d.purge(ids).await?)).await?;
    println!("purged {n} dead letter(s) from {queue}");
    Ok(())
}

/// `orderly outbox status`.
pub(crate) async fn outbox_status(settings: &Settings, json: bool) -> anyhow::Result<()> {
    let mut report = Vec::new();
    for worker in crate::workers::names() {
        let pool = db::connect(settings.database_url_for(&worker), &worker, 1).await?;
        let exists: bool = sqlx::query_scalar("select to_regclass('outbox') is not null")
            .fetch_one(&pool)
            .await?;
        if exists {
            let status = outbox::status(&pool).await?;
            let stuck = outbox::stuck(&pool, 20).await?;
            report.push(serde_json::json!({ "worker": worker, "status": status, "stuck": stuck }));
        }
        pool.close().await;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    if report.is_empty() {
        println!("no worker outboxes yet (run `orderly migrate`)");
    }
    for r in &report {
        println!(
            "{:<14} pending {:>6}  failing {:>6}  oldest {}",
            r["worker"].as_str().unwrap_or("?"),
            r["status"]["pending"],
            r["status"]["failing"],
            r["status"]["oldest_pending"].as_str().unwrap_or("-")
        );
        for s in r["stuck"].as_array().into_iter().flatten() {
            println!(
                "    #{} {} attempts {}: {}",
                s["id"],
                s["message_type"],
                s["attempts"],
                s["last_error"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

/// `orderly notifications ...`: what the notifications worker did and holds.
pub(crate) async fn notifications_query(
    settings: &Settings,
    what: NotificationsQuery,
) -> anyhow::Result<()> {
    use orderly_notifications::ops;
    let pool = db::connect(
        settings.database_url_for(orderly_notifications::NAME),
        orderly_notifications::NAME,
        1,
    )
    .await?;
    match what {
        NotificationsQuery::Rules { store } => {
            let (revision, rules) = ops::rules(&pool, &store).await?;
            match revision {
                Some(r) => println!("store {store}: settings revision {r}"),
                None => println!("store {store}: no settings received; built-in defaults apply"),
            }
            for r in rules {
                println!(
                    "{:<28} {:<8} {:<5} {:<4} {:<30} {}",
                    r.event.as_str(),
                    r.audience.as_str(),
                    r.channel.as_str(),
                    if r.enabled { "on" } else { "off" },
                    r.template,
                    if r.default { "default" } else { "store" }
                );
            }
            Ok(())
        }
        NotificationsQuery::Endpoints { store } => {
            print_json(&ops::endpoints(&pool, &store).await?)
        }
        NotificationsQuery::Deliveries { store, limit } => {
            print_json(&ops::deliveries(&pool, &store, limit).await?)
        }
        NotificationsQuery::Replay { delivery_id } => {
            ops::replay_delivery(&pool, delivery_id).await?;
            println!("delivery {delivery_id} queued again; the dispatcher sends it next");
            Ok(())
        }
        NotificationsQuery::Failed { limit } => {
            print_json(&ops::failed_notifications(&pool, limit).await?)
        }
        NotificationsQuery::UnknownReceipts { limit } => {
            print_json(&ops::unknown_receipts(&pool, limit).await?)
        }
        NotificationsQuery::Order { order_id } => {
            print_json(&ops::order_requests(&pool, order_id).await?)?;
            print_json(&ops::order_suppressions(&pool, order_id).await?)
        }
    }
}

/// What `orderly notifications` can show or do.
#[derive(Debug)]
pub(crate) enum NotificationsQuery {
    Rules { store: String },
    Endpoints { store: String },
    Deliveries { store: String, limit: i64 },
    Replay { delivery_id: uuid::Uuid },
    Failed { limit: i64 },
    UnknownReceipts { limit: i64 },
    Order { order_id: uuid::Uuid },
}

/// Prints rows as pretty JSON.
fn print_json<T: serde::Serialize>(rows: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(rows)?);
    Ok(())
}

/// `orderly invoice ...`: issued documents, their PDFs, refused requests.
pub(crate) async fn invoice_query(settings: &Settings, what: InvoiceQuery) -> anyhow::Result<()> {
    let pool = db::connect(
        settings.database_url_for(orderly_invoicing::NAME),
        orderly_invoicing::NAME,
        1,
    )
    .await?;
    match what {
        InvoiceQuery::Pdf { number, store } => {
            use std::io::{IsTerminal, Write};
            let Some(pdf) =
                orderly_invoicing::pdf_by_number(&pool, &number, store.as_deref()).await?
            else {
                anyhow::bail!("no invoice or credit note numbered {number}");
            };
            let mut out = std::io::stdout().lock();
            if out.is_terminal() {
                anyhow::bail!(
                    "{number} is a PDF of {} bytes: redirect it to a file (`orderly invoice pdf {number} > {number}.pdf`)",
                    pdf.len()
                );
            }
            out.write_all(&pdf)?;
            out.flush()?;
        }
        InvoiceQuery::Xml { number, store } => {
            let pdf = stored_pdf(&pool, &number, store.as_deref()).await?;
            let xml = orderly_invoicing::einvoice::embedded_xml(&pdf)
                .map_err(|e| anyhow::anyhow!("{number}: {e}"))?;
            print!("{xml}");
        }
        InvoiceQuery::Validate { number, store } => {
            use orderly_invoicing::einvoice::check::{Severity, check_cii};
            let pdf = stored_pdf(&pool, &number, store.as_deref()).await?;
            let xml = orderly_invoicing::einvoice::embedded_xml(&pdf)
                .map_err(|e| anyhow::anyhow!("{number}: {e}"))?;
            let findings = check_cii(&xml);
            let declares = |needle: &str| pdf.windows(needle.len()).any(|w| w == needle.as_bytes());
            let mut errors = findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .count();
            for (needle, what) in [
                ("<pdfaid:part>3</pdfaid:part>", "the XMP declares PDF/A-3"),
                (
                    "<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>",
                    "the XMP declares Factur-X EN 16931",
                ),
            ] {
                if declares(needle) {
                    println!("ok: {what}");
                } else {
                    errors += 1;
                    println!("error: {what}: not found");
                }
            }
            for f in &findings {
                println!("{f}");
            }
            let warnings = findings
                .iter()
                .filter(|f| f.severity == Severity::Warning)
                .count();
            println!(
                "{number}: {errors} error(s), {warnings} warning(s) against EN 16931's business rules and the Factur-X declarations; XML schema: scripts/einvoice-check"
            );
            if errors > 0 {
                anyhow::bail!("{number}: the e-invoice breaks {errors} rule(s)");
            }
        }
        InvoiceQuery::List { store, limit } => {
            for row in orderly_invoicing::list_invoices(&pool, store.as_deref(), limit).await? {
                println!("{row}");
            }
        }
        InvoiceQuery::Refused { store, all, limit } => {
            for row in orderly_invoicing::list_refused(&pool, store.as_deref(), !all, limit).await?
            {
                println!("{row}");
            }
        }
    }
    Ok(())
}

/// What `orderly vat` does.
#[derive(Debug)]
pub(crate) enum VatAction {
    Check(std::path::PathBuf),
    Load(std::path::PathBuf),
    Fx(std::path::PathBuf),
    Store {
        store: String,
        /// `None`: remove the store's rows.
        file: Option<std::path::PathBuf>,
    },
}

/// `orderly vat ...`: the rate data invoicing decides with.
pub(crate) async fn vat(settings: &Settings, action: VatAction) -> anyhow::Result<()> {
    let read = |path: &std::path::Path| orderly_invoicing::read_rates(path).map(|(_, t)| t);
    if let VatAction::Check(path) = &action {
        let table = read(path)?;
        println!("{}: {} rows, no errors", path.display(), table.len());
        return Ok(());
    }
    let pool = db::connect(
        settings.database_url_for(orderly_invoicing::NAME),
        orderly_invoicing::NAME,
        1,
    )
    .await?;
    let done = match action {
        VatAction::Check(_) => Ok(()),
        VatAction::Load(path) => {
            let vat = orderly_invoicing::RateSettings {
                rates_file: Some(path),
                ..Default::default()
            };
            match orderly_invoicing::load_rates(&pool, &vat).await {
                Ok((loaded, _)) => print_json(&serde_json::json!({
                    "sha256": loaded.sha256,
                    "rows": loaded.rows,
                    "replaced": loaded.replaced,
                })),
                Err(e) => Err(e),
            }
        }
        VatAction::Fx(path) => {
            let loaded = match std::fs::read_to_string(&path) {
                Ok(text) => orderly_invoicing::domain::fx::parse_ecb_csv(&text)
                    .map_err(|errors| anyhow::anyhow!("{}: {}", path.display(), errors.join("; "))),
                Err(e) => Err(anyhow::anyhow!("{}: {e}", path.display())),
            };
            match loaded {
                Ok(rates) => orderly_invoicing::load_fx(&pool, &rates)
                    .await
                    .map(|n| println!("{n} reference rates loaded from {}", path.display()))
                    .map_err(anyhow::Error::from),
                Err(e) => Err(e),
            }
        }
        VatAction::Store { store, file } => {
            let table = match &file {
                Some(path) => read(path),
                None => Ok(orderly_invoicing::domain::rates::RateTable::default()),
            };
            match table {
                Ok(table) => orderly_invoicing::set_store_rows(&pool, &store, &table)
                    .await
                    .map(|()| println!("store {store}: {} rate rows of its own", table.len()))
                    .map_err(anyhow::Error::from),
                Err(e) => Err(e),
            }
        }
    };
    pool.close().await;
    done
}

/// `orderly documents migrate`: the invoicing worker's PDFs into the document store.
pub(crate) async fn documents_migrate(settings: &Settings, verify: bool) -> anyhow::Result<()> {
    let documents = orderly_runtime::documents::open(&settings.section("documents")?)?;
    let pool = db::connect(
        settings.database_url_for(orderly_invoicing::NAME),
        orderly_invoicing::NAME,
        1,
    )
    .await?;
    let report = orderly_invoicing::migrate_pdfs(&pool, documents.as_ref(), verify).await;
    pool.close().await;
    print_json(&report?)
}

/// An issued document's PDF, or which number is unknown.
async fn stored_pdf(
    pool: &sqlx::PgPool,
    number: &str,
    store: Option<&str>,
) -> anyhow::Result<Vec<u8>> {
    orderly_invoicing::pdf_by_number(pool, number, store)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no invoice or credit note numbered {number}"))
}

/// What `orderly invoice` can show.
#[derive(Debug)]
pub(crate) enum InvoiceQuery {
    Pdf {
        number: String,
        store: Option<String>,
    },
    Xml {
        number: String,
        store: Option<String>,
    },
    Validate {
        number: String,
        store: Option<String>,
    },
    List {
        store: Option<String>,
        limit: i64,
    },
    Refused {
        store: Option<String>,
        all: bool,
        limit: i64,
    },
}
