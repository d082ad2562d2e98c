//! The `orderly` binary as an operator or producer uses it, against a test world.

use std::{process::Command, time::Duration};

use orderly_runtime::testing::World;

fn orderly(world: &World, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_orderly"))
        .args(args)
        .env("ORDERLY__NAMESPACE", &world.settings.namespace)
        .env("ORDERLY__DATABASE_URL", &world.settings.database_url)
        .env("ORDERLY__BROKER_URL", &world.settings.broker_url)
        .env("ORDERLY__QUEUE_TYPE", "classic")
        .output()
        .expect("the orderly binary runs")
}

fn example(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/../../docs/contracts/examples/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("golden example")).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_validates_against_the_contract_and_names_the_field() -> anyhow::Result<()> {
    let world = World::new().await?;
    let dir = std::env::temp_dir().join(format!("orderly-cli-{}", world.settings.namespace));
    std::fs::create_dir_all(&dir)?;

    let good = dir.join("good.json");
    std::fs::write(&good, example("order.placed.v1.json").to_string())?;
    let out = orderly(&world, &["publish", good.to_str().unwrap_or_default()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("published order.placed"));
    assert_eq!(
        world.queue_depth("orders").await?,
        1,
        "it reached the orders queue"
    );

    let mut broken = example("order.placed.v1.json");
    broken["payload"]["lines"][0]["quantity"] = serde_json::json!(0);
    let bad = dir.join("bad.json");
    std::fs::write(&bad, broken.to_string())?;
    let out = orderly(&world, &["publish", bad.to_str().unwrap_or_default()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("payload.lines[0].quantity"),
        "the error names the field: {stderr}"
    );
    assert_eq!(
        world.queue_depth("orders").await?,
        1,
        "nothing more was published"
    );

    let out = orderly(&world, &["outbox", "status"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = orderly(&world, &["dlq", "list", "orders"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("no dead letters"));

    std::fs::remove_dir_all(&dir)?;
    world.cleanup().await
}

#[test]
fn an_unreachable_broker_is_one_clear_line_naming_what_was_tried() {
    let out = Command::new(env!("CARGO_BIN_EXE_orderly"))
        .args(["topology"])
        .env("ORDERLY__BROKER_URL", "amqp://guest:secret@127.0.0.1:1/%2f")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:1/%2f"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "the password is not printed");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_commands_show_the_defaults_and_refuse_an_unknown_delivery()
-> anyhow::Result<()> {
    let world = World::new().await?;
    let rules = orderly(&world, &["notifications", "rules", "shop-de"]);
    let out = String::from_utf8_lossy(&rules.stdout);
    assert!(rules.status.success(), "{out}");
    assert!(
        out.contains("no settings received; built-in defaults apply"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("order.accepted") && l.contains("customer") && l.contains("on")),
        "the order confirmation is on by default: {out}"
    );

    let missing = uuid::Uuid::now_v7().to_string();
    let replay = orderly(&world, &["notifications", "replay", &missing]);
    let err = String::from_utf8_lossy(&replay.stderr);
    assert!(!replay.status.success());
    assert!(
        err.contains(&format!("no webhook delivery {missing}")),
        "{err}"
    );
    world.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoice_settings_are_checked_before_publishing_and_an_unknown_pdf_is_named()
-> anyhow::Result<()> {
    let world = World::new().await?;
    let dir = std::env::temp_dir().join(format!("orderly-cli-inv-{}", world.settings.namespace));
    std::fs::create_dir_all(&dir)?;
    let mut payload = example("store.invoice_settings_updated.v1.json")["payload"].clone();
    payload["invoice_number_prefix"] = serde_json::json!("RE 2026");
    let bad = dir.join("bad.json");
    std::fs::write(&bad, serde_json::to_vec(&payload)?)?;
    let out = orderly(
        &world,
        &["invoice", "settings", bad.to_str().unwrap_or_default()],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("payload.invoice_number_prefix"), "{err}");

    payload["invoice_number_prefix"] = serde_json::json!("RE-");
    let good = dir.join("good.json");
    std::fs::write(&good, serde_json::to_vec(&payload)?)?;
    let out = orderly(
        &world,
        &["invoice", "settings", good.to_str().unwrap_or_default()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("published store.invoice_settings_updated")
    );
    assert_eq!(
        world.queue_depth("invoicing").await?,
        1,
        "the settings reached invoicing"
    );

    let out = orderly(&world, &["invoice", "pdf", "RE-2026-999999"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("no invoice or credit note numbered RE-2026-999999"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
    world.cleanup().await
}

/// `orderly … | head` closes the pipe before the command has printed everything: the
/// command ends quietly with the status a shell reports for `SIGPIPE`, never a panic and a
/// backtrace. The pipe is closed before the command starts, so every write fails.
#[test]
fn a_closed_output_pipe_ends_a_command_quietly() {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_orderly"))
        .args(["topology", "--definitions"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("the orderly binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.trim().is_empty(), "nothing on stderr: {stderr}");
    assert_eq!(out.status.code(), Some(141), "{stderr}");
}

/// `orderly publish` reads JSON as the workers do: a key named twice is refused with the key
/// and where, before anything is sent (other parsers keep the first of two keys, serde_json
/// the last: the same bytes must not mean two messages).
#[test]
fn publish_refuses_a_key_named_twice() {
    let dir = std::env::temp_dir().join(format!("orderly-cli-dup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let text = example("order.placed.v1.json").to_string().replacen(
        r#""store_id":"shop-de""#,
        r#""store_id":"shop-de","store_id":"other""#,
        1,
    );
    assert!(
        text.contains(r#""store_id":"other""#),
        "the example names its store"
    );
    let file = dir.join("twice.json");
    std::fs::write(&file, text).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_orderly"))
        .args(["publish", file.to_str().unwrap_or_default()])
        .env("ORDERLY__BROKER_URL", "amqp://guest:guest@127.0.0.1:1/%2f")
        .output()
        .expect("the orderly binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("payload: duplicate key `store_id`"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn validate_checks_a_message_without_a_broker_and_names_the_field() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("orderly-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let validate = |file: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_orderly"))
            .args(["validate", file.to_str().unwrap_or_default()])
            // Nothing to reach: the check needs no broker or database.
            .env("ORDERLY__BROKER_URL", "amqp://nobody@127.0.0.1:1/%2f")
            .env(
                "ORDERLY__DATABASE_URL",
                "postgres://nobody@127.0.0.1:1/none",
            )
            .output()
            .expect("the orderly binary runs")
    };
    let good = dir.join("good.json");
    std::fs::write(&good, example("order.placed.v1.json").to_string())?;
    let out = validate(&good);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("valid: order.placed v1"));

    let mut wrong = example("order.placed.v1.json");
    wrong["payload"]["total"] = serde_json::json!("1.00");
    let bad = dir.join("bad.json");
    std::fs::write(&bad, wrong.to_string())?;
    let out = validate(&bad);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("payload.total: 1.00 does not match"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// `orderly orders export` and `orderly orders bulk` call the admin API with a staff token,
/// so they answer what the API answers (and are refused what it refuses).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_export_and_bulk_drive_the_admin_api() -> anyhow::Result<()> {
    let world = World::new().await?;
    let mut host = world.host();
    let addr = orderly_api::start(&mut host, orderly_api::ApiSettings::default()).await?;
    let api = format!("http://{addr}");
    let db = world.pool(orderly_api::NAME).await?;
    orderly_api::staff::add(&db, "admin@example.com", "order_admin", &[]).await?;
    let token = orderly_api::staff::issue_token(&db, "admin@example.com", 1)
        .await?
        .token;
    let accepted = example("order.accepted.v1.json");
    world
        .publish_raw("order.accepted", accepted.to_string().as_bytes())
        .await?;
    let order_id = accepted["payload"]["order_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let external = accepted["payload"]["external_order_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    orderly_runtime::testing::wait_until("the order projected", Duration::from_secs(60), || {
        let db = db.clone();
        let order_id = order_id.clone();
        async move {
            let n: i64 =
                sqlx::query_scalar("select count(*) from api.orders where order_id::text = $1")
                    .bind(order_id)
                    .fetch_one(&db)
                    .await?;
            Ok(n == 1)
        }
    })
    .await?;

    let cli = |args: &[&str], token: &str| {
        Command::new(env!("CARGO_BIN_EXE_orderly"))
            .args(args)
            .env("ORDERLY_API_URL", &api)
            .env("ORDERLY_API_TOKEN", token)
            .output()
            .expect("the orderly binary runs")
    };
    let out = cli(
        &[
            "orders",
            "export",
            "--filter",
            "store=shop-de",
            "--columns",
            "order_id,external_order_id",
        ],
        &token,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        [
            "order_id,external_order_id",
            &format!("{order_id},{external}")
        ],
        "{csv}"
    );

    let ids = order_id.as_str();
    let out = cli(
        &[
            "orders",
            "bulk",
            "note",
            "--params",
            r#"{"text": "called"}"#,
            "--ids",
            ids,
            "--dry-run",
        ],
        &token,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(job["dry_run"], true, "{job}");
    assert_eq!(job["progress"]["would_send"], 1, "{job}");

    // What the API refuses, the command refuses, saying why.
    let out = cli(&["orders", "export", "--filter", "status=lost"], &token);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("status"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["orders", "export"], "oly_not-a-token");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    host.stop(Duration::from_secs(5)).await;
    db.close().await;
    world.cleanup().await
}

/// An invoice issued by the invoicing worker, shown and checked the way an accountant or an
/// auditor asks for it on the command line: listed, its PDF, the EN 16931 XML embedded in
/// it, and the e-invoice's validation (business rules and the PDF/A-3 and Factur-X
/// declarations); an unknown number is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issued_invoice_is_listed_shown_as_xml_and_validated_from_the_command_line()
-> anyhow::Result<()> {
    let world = World::new().await?;
    let mut host = world.host();
    orderly::workers::start(&mut host, "invoicing").await?;
    for (kind, name) in [
        (
            "store.invoice_settings_updated",
            "store.invoice_settings_updated.v1.json",
        ),
        ("invoice.requested", "invoice.requested.v1.json"),
    ] {
        world
            .publish_raw(kind, &serde_json::to_vec(&example(name))?)
            .await?;
    }
    // Listed once its PDF is rendered (the list says `bytes` then).
    let world_ref = &world;
    let number = orderly_runtime::testing::wait_for(
        "the invoice listed with its PDF",
        Duration::from_secs(30),
        || async move {
            let out = orderly(world_ref, &["invoice", "list"]);
            let listed = String::from_utf8_lossy(&out.stdout).into_owned();
            Ok(listed
                .lines()
                .find(|l| l.starts_with("invoice") && l.contains(" bytes)"))
                .and_then(|l| l.split_whitespace().nth(1))
                .map(str::to_owned))
        },
    )
    .await?;
    assert!(number.starts_with("RE-"), "{number}");

    let pdf = orderly(&world, &["invoice", "pdf", &number]);
    assert!(
        pdf.status.success(),
        "{}",
        String::from_utf8_lossy(&pdf.stderr)
    );
    assert!(pdf.stdout.starts_with(b"%PDF-"), "a PDF on stdout");

    let xml = orderly(&world, &["invoice", "xml", &number]);
    assert!(
        xml.status.success(),
        "{}",
        String::from_utf8_lossy(&xml.stderr)
    );
    let xml = String::from_utf8_lossy(&xml.stdout);
    assert!(xml.contains("CrossIndustryInvoice"), "{xml}");
    assert!(
        xml.contains(&number),
        "the XML carries the invoice's number: {xml}"
    );

    let checked = orderly(&world, &["invoice", "validate", &number]);
    let report = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(report.contains("ok: the XMP declares PDF/A-3"), "{report}");
    assert!(
        report.contains(&format!("{number}: 0 error(s)")),
        "{report}"
    );

    for command in ["xml", "validate"] {
        let out = orderly(&world, &["invoice", command, "RE-1999-000001"]);
        assert!(!out.status.success(), "{command} of an unknown number");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("no invoice or credit note numbered RE-1999-000001"),
            "{command}: {err}"
        );
    }
    host.stop(Duration::from_secs(5)).await;
    world.cleanup().await
}
