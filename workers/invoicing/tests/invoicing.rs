//! The invoicing worker against the real RabbitMQ and PostgreSQL: each test gets its own
//! database and broker namespace (`World`), starts the worker on a host (two hosts for the
//! numbering test), publishes what fulfillment, operators and the admin API would, and
//! checks what the worker publishes and stores.

mod support;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;
use support::*;

use chrono::{Datelike, Utc};
use orderly_contracts::messages::{
    CreditNoteIssued, CreditReason, InvoiceIssued, InvoiceRequested, OrderCancelled,
    OrderRefundRequested, StoreInvoiceSettingsUpdated, VatTreatment,
};
use orderly_contracts::{Envelope, Message};
use orderly_invoicing::{
    InvoicingHandler, NAME, RenderSettings, list_invoices, list_refused, pdf_by_number, start,
};
use orderly_runtime::metrics::Outcome;
use orderly_runtime::testing::{World, wait_until};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);

fn settings(store: &str, revision: u64) -> Envelope<StoreInvoiceSettingsUpdated> {
    settings_in(store, revision, "de-DE")
}

/// The store's settings for a store not registered for the OSS: its distance sales are
/// taxed at its own rates until the EUR 10,000 threshold (an OSS-registered store taxes
/// them where they arrive from the first euro).
fn settings_without_oss(store: &str, revision: u64) -> Envelope<StoreInvoiceSettingsUpdated> {
    let mut settings = settings(store, revision);
    settings.payload.oss_registered = false;
    settings
}

/// The store's settings with its `locale` (the language its documents print in).
fn settings_in(store: &str, revision: u64, locale: &str) -> Envelope<StoreInvoiceSettingsUpdated> {
    let payload = serde_json::from_value(json!({
        "store_id": store,
        "revision": revision,
        "legal_name": "Beispiel Handels GmbH",
        "address": {"name": "Beispiel Handels GmbH", "lines": ["Torstraße 101"],
                    "postal_code": "10119", "city": "Berlin", "country": "DE"},
        "vat_id": "DE123456789",
        "tax_number": "37/123/45678",
        "invoice_timing": "on_order",
        "invoice_number_prefix": "RE-",
        "credit_note_number_prefix": "GS-",
        "oss_registered": true,
        "locale": locale,
        "payment_terms_days": 14,
        "footer": "Amtsgericht Berlin-Charlottenburg HRB 123456",
        "number_digits": 6,
        "number_yearly_reset": true,
        "rounding": "per_line"
    }))
    .expect("settings");
    Envelope::new("admin-api", store.to_owned(), payload)
}

fn three_lines() -> Value {
    json!([
        {"line_id": "1", "sku": "MUG-BLU-350", "title": "Becher „Blau“ 350 ml", "quantity": 2,
         "unit_price": "12.90", "discount": "0", "tax_category": "standard"},
        {"line_id": "2", "sku": "BOOK-42", "title": "Roman: Die Blechtrommel", "quantity": 1,
         "unit_price": "21.40", "discount": "0", "tax_category": "reduced"},
        {"line_id": "3", "sku": "TEA-EARL-100", "title": "Earl Grey 100 g", "quantity": 3,
         "unit_price": "4.99", "discount": "0", "tax_category": "standard"}
    ])
}

fn request_to(store: &str, order_id: Uuid, country: &str, buyer: Value) -> InvoiceRequested {
    serde_json::from_value(json!({
        "request_id": Uuid::now_v7(),
        "order_id": order_id,
        "store_id": store,
        "timing": "on_order",
        "external_order_id": format!("T-{}", &order_id.simple().to_string()[20..]),
        "placed_at": "2026-03-14T09:26:51Z",
        "currency": "EUR",
        "prices_include_tax": true,
        "buyer": buyer,
        "billing_address": {"name": "Jörg Schäfer", "lines": ["Hauptstraße 12"],
                            "postal_code": "75001", "city": "Paris", "country": country},
        "shipping_address": {"name": "Jörg Schäfer", "lines": ["Hauptstraße 12"],
                             "postal_code": "75001", "city": "Paris", "country": country},
        "lines": three_lines(),
        "shipping": "4.90",
        "discount": "0"
    }))
    .expect("request")
}

fn consumer() -> Value {
    json!({"name": "Jörg Schäfer", "email": "joerg@example.de", "locale": "de-DE",
           "is_business": false})
}

fn request(store: &str, order_id: Uuid) -> InvoiceRequested {
    request_to(store, order_id, "DE", consumer())
}

fn env<P: Message>(producer: &str, order_id: Uuid, payload: P) -> Envelope<P> {
    Envelope::new(producer, order_id.to_string(), payload)
}

fn refund(
    store: &str,
    order_id: Uuid,
    lines: &[(&str, u32)],
    shipping: bool,
) -> OrderRefundRequested {
    serde_json::from_value(json!({
        "request_id": Uuid::now_v7(),
        "order_id": order_id,
        "store_id": store,
        "requested_by": {"kind": "operator", "id": "anna"},
        "reason": "Returned: damaged in transit",
        "lines": lines.iter().map(|(l, q)| json!({"line_id": l, "quantity": q})).collect::<Vec<_>>(),
        "refund_shipping": shipping
    }))
    .expect("refund")
}

async fn count(pool: &PgPool, sql: &str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(pool)
        .await?)
}

fn year() -> i32 {
    Utc::now().year()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn pdftotext(bytes: &[u8], name: &str) -> String {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-output");
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    let out = Command::new("pdftotext")
        .args([path.to_str().expect("path"), "-"])
        .output()
        .expect("pdftotext installed (scripts/test)");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test]
async fn an_invoice_is_issued_once_with_its_pdf() -> anyhow::Result<()> {
    let world = World::new().await?;
    let mut tap = world.tap(&[InvoiceIssued::TYPE]).await?;
    let mut host = world.host();
    start(
        &mut host,
        InvoicingHandler::new(),
        RenderSettings::default(),
    )
    .await?;
    let pool = world.pool(NAME).await?;

    world.publish(&settings("shop-de", 1)).await?;
    let order_id = Uuid::now_v7();
    let req = request("shop-de", order_id);
    // The same request twice (a redelivery with a new message id), and another request for
    // the same order and scope: one invoice.
    world
        .publish(&env("fulfillment", order_id, req.clone()))
        .await?;
    world
        .publish(&env("fulfillment", order_id, req.clone()))
        .await?;
    let mut again = req.clone();
    again.request_id = Uuid::now_v7();
    world.publish(&env("fulfillment", order_id, again)).await?;

    let issued = tap.next_of::<InvoiceIssued>(WAIT).await?.payload;
    let number = format!("RE-{}-000001", year());
    assert_eq!(issued.invoice_number, number);
    assert_eq!(issued.request_id, req.request_id);
    assert_eq!(issued.vat_treatment, VatTreatment::Domestic);
    // 2 × 12.90 + 3 × 4.99 + 4.90 at 19 %, 21.40 at 7 %.
    assert_eq!(issued.totals.gross.value(), Decimal::new(6707, 2));
    assert_eq!(issued.totals.breakdown.len(), 2);
    assert_eq!(
        issued.pdf.uri,
        format!("orderly://invoicing/invoices/{number}.pdf")
    );

    // Settings and three requests (each its own message) have all been handled.
    wait_until("all three requests handled", WAIT, || async {
        Ok(count(&pool, "select count(*) from inbox").await? >= 4)
    })
    .await?;
    assert_eq!(count(&pool, "select count(*) from invoices").await?, 1);
    assert!(
        tap.next_of::<InvoiceIssued>(Duration::from_secs(1))
            .await
            .is_err(),
        "issued once"
    );

    let pdf = pdf_by_number(&pool, &number, None)
        .await?
        .expect("stored pdf");
    assert_eq!(sha256_hex(&pdf), issued.pdf.sha256);
    assert_eq!(pdf.len() as u64, issued.pdf.size_bytes);
    // The document store holds the same bytes under the key the message names.
    let key = issued.pdf.key.clone().expect("the message names the key");
    assert_eq!(key, format!("invoices/shop-de/{number}.pdf"));
    let stored = object_store::ObjectStoreExt::get(
        world.documents()?.as_ref(),
        &object_store::path::Path::parse(&key)?,
    )
    .await?
    .bytes()
    .await?;
    assert_eq!(stored.as_ref(), pdf.as_slice());
    let text = pdftotext(&pdf, "worker-invoice.pdf");
    for needle in [
        number.as_str(),
        "Beispiel Handels GmbH",
        "DE123456789",
        "Jörg Schäfer",
        // The store is de-DE: German numbers and labels.
        "19 %",
        "67,07 €",
        "14.03.2026",
        &format!("Rechnung {number}"),
        "Ausstellungsdatum",
        "Gesamtbetrag",
        "Versandkosten",
        "Zahlbar innerhalb von 14 Tagen",
        "Seite 1 von 1",
    ] {
        assert!(text.contains(needle), "`{needle}` missing: {text}");
    }
    assert!(
        pdf_by_number(&pool, "RE-1999-000001", None)
            .await?
            .is_none()
    );
    let listed = list_invoices(&pool, None, 10).await?;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].to_string().contains(&number));

    // Issued invoices are immutable.
    let change = sqlx::query("update invoices set gross = 0")
        .execute(&pool)
        .await;
    assert!(change.is_err(), "the trigger refuses changes");
    host.stop(Duration::from_secs(5)).await;
    world.cleanup().await
}

/// A zero-rated line and an exempt one are both 0 %, but not the same thing: the issued
/// invoice's breakdown keeps them apart by VAT category (as the e-invoice does), and the
/// exempt line's provision (its product's exemption reference, Art. 226(11)) is printed
/// and given as the e-invoice's exemption reason.
#[tokio::test]
async fn zero_rated_and_exempt_lines_are_two_rows_of_the_breakdown() -> anyhow::Result<()> {
    let world = World::new().await?;
    let mut tap = world.tap(&[InvoiceIssued::TYPE]).await?;
    let mut host = world.host();
    start(
        &mut host,
        InvoicingHandler::new(),
        RenderSettings::default(),
    )
    .await?;
    world.publish(&settings("shop-de", 1)).await?;
    let order_id = Uuid::now_v7();
    let mut req = serde_json::to_value(request("shop-de", order_id))?;
    req["lines"] = json!([
        {"line_id": "1", "sku": "MUG-BLU-350", "title": "Becher", "quantity": 1,
         "unit_price": "11.90", "discount": "0", "tax_category": "standard"},
        {"line_id": "2", "sku": "NEWS-1", "title": "Zeitung (zero-rated)", "quantity": 1,
         "unit_price": "3.00", "discount": "0", "tax_category": "zero"},
        {"line_id": "3", "sku": "STAMP-1", "title": "Briefmarken (exempt)", "quantity": 1,
         "unit_price": "5.00", "discount": "0", "tax_category": "exempt",
         "exemption_reference": "Art. 135(1)(h) Directive 2006/112/EC"}
    ]);
    req["shipping"] = json!("0");
    let req: InvoiceRequested = serde_json::from_value(req)?;
    world.publish(&env("fulfillment", order_id, req)).await?;
    let issued = tap.next_of::<InvoiceIssued>(WAIT).await?.payload;
    let rows: Vec<(String, Option<String>, String)> = issued
        .totals
        .breakdown
        .iter()
        .map(|b| {
            (
                b.rate.to_string(),
                b.category.map(|c| c.as_str().to_owned()),
                b.net.to_string(),
            )
        })
        .collect();
    let row = |rate: &str, code: &str, net: &str| {
        (rate.to_owned(), Some(code.to_owned()), net.to_owned())
    };
    assert_eq!(
        rows,
        [
            row("19", "S", "10.00"),
            row("0", "Z", "3.00"),
            row("0", "E", "5.00")
        ]
    );
    let pool = world.pool(NAME).await?;
    let number = issued.invoice_number.clone();
    // `invoice.issued` is sent once the PDF is stored.
    let pdf = pdf_by_number(&pool, &number, None)
        .await?
        .expect("stored pdf");
    let text = pdftotext(&pdf, "exempt-line");
    assert!(
        text.contains("Steuerfrei nach Art. 135(1)(h) Directive 2006/112/EC (Pos. 3)"),
        "{text}"
    );
    let xml = orderly_invoicing::einvoice::embedded_xml(&pdf).map_err(anyhow::Error::msg)?;
    assert!(
        xml.contains("Exempt from VAT under Art. 135(1)(h) Directive 2006/112/EC"),
        "{xml}"
    );
    host.stop(Duration::from_secs(5)).await;
    world.cleanup().await
}

#[tokio::test]
async fn a_request_without_settings_is_held_then_issued() -> anyhow::Result<()> {
    let world = World::new().await?;
    let mut tap = world.tap(&[InvoiceIssued::TYPE]).await?;
    let mut host = world.host();
    start(
        &mut host,
        InvoicingHandler::new(),
        RenderSettings::default(),
    )
    .await?;
    let pool = world.pool(NAME).await?;

    let order_id = Uuid::now_v7();
    world
        .publish(&env("fulfillment", order_id, request("shop-new", order_id)))
        .await?;
    wait_until("the request is on the refused list", WAIT, || async {
        Ok(!list_refused(&pool, None, true, 10).await?.is_empty())
    })
    .await?;
    let refused = list_refused(&pool, None, true, 10).await?;
    assert_eq!(refused[0].status, "held");
    assert!(
        refused[0]
            .reason
            .contains("store shop-new has no invoice settings"),
        "{}",
        refused[0]
    );
    assert!(
        tap.next_of::<InvoiceIssued>(Duration::from_millis(500))
            .await
            .is_err()
    );

    world.publish(&settings("shop-new", 1)).await?;
    let issued = tap.next_of::<InvoiceIssued>(WAIT).await?.payload;
    assert_eq!(issued.order_id, order_id);
    assert!(
        list_refused(&pool, None, true, 10).await?.is_empty(),
        "no longer open"
    );
    let all = list_refused(&pool, None, false, 10).await?;
    assert_eq!(all[0].status, "issued");
    host.stop(Duration::from_secs(5)).await;
    world.cleanup().await
}

#[tokio::test]
async fn two_workers_number_200_invoices_without_gaps() -> anyhow::Result<()> {
    let world = World::new().await?;
    // Numbered copies, so that each takes its share of the partitions at once.
    let mut a = world.copy_host(1, 2);
    start(&mut a, InvoicingHandler::new(), RenderSettings::default()).await?;
    let mut b = world.copy_host(2, 2);
    start(&mut b, InvoicingHandler::new(), RenderSettings::default()).await?;
    let pool = world.pool(NAME).await?;

    world.publish(&settings("shop-de", 1)).await?;
    wait_until("settings stored", WAIT, || async {
        Ok(count(&pool, "select count(*) from store_settings").await? == 1)
    })
    .await?;
    for _ in 0..200 {
        let order_id = Uuid::now_v7();
        world
            .publish(&env("fulfillment", order_id, request("shop-de", order_id)))
            .await?;
    }
    wait_until("200 invoices", Duration::from_secs(120), || async {
        Ok(count(&pool, "select count(*) from invoices").await? == 200)
    })
    .await?;
    let numbers: Vec<String> = sqlx::query_scalar("select number from invoices")
        .fetch_all(&pool)
        .await?;
    let prefix = format!("RE-{}-", year());
    let seen: BTreeSet<i64> = numbers
        .iter()
        .map(|n| {
            n.strip_prefix(&prefix)
                .and_then(|d| d.parse().ok())
                .unwrap_or_else(|| panic!("unexpected number {n}"))
        })
        .collect();
    assert_eq!(seen.len(), 200, "no duplicates");
    assert_eq!(
        seen,
        (1..=200).collect::<BTreeSet<i64>>(),
        "1..200 without gaps"
    );
    // Both renderers share the queue: every invoice gets one PDF and one `invoice.issued`.
    wait_until("200 PDFs stored and sent", WAIT, || async {
        Ok(
            count(&pool, "select count(*) from document_pdfs").await? == 200
                && count(&pool, "select count(*) from render_queue").await? == 0,
        )
    })
    .await?;
    assert_eq!(
        count(
            &pool,
            "select count(distinct message_id) from outbox where message_type = 'invoice.issued'"
        )
        .await?,
        200
    );
    // Both workers took part (each handled messages).
    let handled: Vec<u64> = vec![
        a.metrics().count(NAME, Outcome::Handled),
        b.metrics().count(NAME, Outcome::Handled),
    ];
    println!("handled per worker: {handled:?}");
    assert!(
        handled.iter().all(|h| *h > 0),
        "both workers issued invoices: {handled:?}"
    );
    a.stop(Duration::from_secs(5)).await;
    b.stop(Duration::from_secs(5)).await;
    world.cleanup().await
}

#[tokio::test]
async fn a_credit_note_reverses_two_of_three_lines_and_too_much_is_refused() -> anyhow::Result<()> {
    let world = World::new().await?;
    let mut tap = world
        .tap(&[InvoiceIssued::TYPE, CreditNoteIssued::TYPE])
        .await?;
    let mut host = world.host();
    start(
        &mut host,
        InvoicingHandler::new(),
        RenderSettings::default(),
    )
    .await?;
    let pool = world.pool(NAME).await?;
    world.publish(&settings("shop-de", 1)).await?;

    // A French business with a valid-format VAT id: reverse charge.
    let order_id = Uuid::now_v7();
    let buyer = json!({"name": "Société Générale d'Édition", "locale": "fr-FR",
                       "is_business": true, "vat_id": "FR40303265045"});
    let req = request_to("shop-de", order_id, "FR", buyer);
    world.publish(&env("fulfillment", order_id, req)).await?;
    let invoice = tap.next_of::<InvoiceIssued>(WAIT).await?.payload;
    assert_eq!(invoice.vat_treatment, VatTreatment::IntraEuReverseCharge);
    assert!(invoice.totals.tax.is_zero());
    let pdf = pdf_by_number(&pool, &invoice.invoice_number, Some("shop-de"))
        .await?
        .expect("pdf");
    let text = pdftotext(&pdf, "worker-reverse-charge.pdf");
    // The store is de-DE: the German reverse-charge wording.
    for needle in [
        "Steuerfreie innergemeinschaftliche Lieferung",
        "§ 6a UStG",
        "USt-IdNr.: FR40303265045",
        "USt-IdNr.: DE123456789",
        "Société Générale",
    ] {
        assert!(text.contains(needle), "`{needle}` missing: {text}");
    }

    let r = refund("shop-de", order_id, &[("1", 2), ("2", 1)], false);
    world.publish(&env("operator", order_id, r.clone())).await?;
    let note = tap.next_of::<CreditNoteIssued>(WAIT).await?.payload;
    assert_eq!(note.invoice_number, invoice.invoice_number);
    assert_eq!(note.credit_note_number, format!("GS-{}-000001", year()));
    assert_eq!(note.reason, CreditReason::Refund);
    assert_eq!(note.request_id, Some(r.request_id));
    assert_eq!(
        note.vat_treatment,
        VatTreatment::IntraEuReverseCharge,
        "the invoice's treatment"
    );
    // Reverse charge: prices incl. VAT are taken as net at 0 %: 2 × 12.90 + 21.40.
    assert_eq!(note.totals.gross.value(), Decimal::new(4720, 2));
    let note_pdf = pdf_by_number(&pool, &note.credit_note_number, None)
        .await?
        .expect("pdf");
    let text = pdftotext(&note_pdf, "worker-credit-note.pdf");
    assert!(
        text.contains("Korrigiert Rechnung")
            && text.contains(&invoice.invoice_number)
            && text.contains("Steuerfreie innergemeinschaftliche Lieferung"),
        "{text}"
    );

    // Line 1 is fully credited: one more unit is more than was invoiced.
    let too_much = refund("shop-de", order_id, &[("1", 1)], false);
    world
        .publish(&env("operator", order_id, too_much.clone()))
        .await?;
    wait_until("the refund is refused on record", WAIT, || async {
        Ok(list_refused(&pool, None, true, 10)
            .await?
            .iter()
            .any(|r| r.message_type == OrderRefundRequested::TYPE))
    })
    .await?;
    let refused = list_refused(&pool, None, true, 10).await?;
    assert!(
        refused[0]
            .reason
            .contains("line 1: 1 units asked, but only 0 of the 2 invoiced"),
        "{}",
        refused[0]
    );
    wait_until("dead-lettered with the reason", WAIT, || async {
        Ok(world
            .dead_letters(NAME)
            .await?
            .iter()
            .any(|d| d.reason.contains("only 0 of the 2 invoiced")))
    })
    .await?;
    assert_eq!(count(&pool, "select count(*) from credit_notes").await?, 1);
    host.stop(Duration::from_secs(5)).await;
    world.cleanup().await
}

#[tokio::test]
async fn a_cancellation_after_invoicing_is_credited() -> anyhow::Result<()> {
    let world = World::new().await?;
    let mut tap = world
        .tap(&[InvoiceIssued::TYPE, CreditNoteIssued::TYPE])
        .await?;
    let mut host = world.host();
    start(
        &mut host,
        InvoicingHandler::new(),
        RenderSettings::default(),
    )
    .await?;
    world.publish(&settings("shop-de", 1)).await?;
    let order_id = Uuid::now_v7();
    world
        .publish(&env("fulfillment", order_id, request("shop-de", order_id)))
        .await?;
    let invoice = tap.next_of::<InvoiceIssued>(WAIT).await?.payload;

    let cancelled: OrderCancelled = serde_json::from_value(json!({
        "order_id": order_id,
        "store_id": "shop-de",
        "channel": "storefront",
        "external_order_id": "100234",
        "request_id": Uuid::now_v7(),
        "scope": "lines",
        "lines": [{"line_id": "3", "sku": "TEA-EARL-100", "quantity": 3}],
        "reason": "Customer changed their mind"
    }))?;
    world
        .publish(&env("orders", order_id, cancelled.clone()))
        .await?;
    world.publish(&env("orders", order_id, cancelled)).await?;
    let note = tap.next_of::<CreditNoteIssued>(WAIT).await?.payload;
    assert_eq!(note.reason, CreditReason::Cancellation);
    assert_eq!(note.invoice_id, invoice.invoice_id);
    // 3 × 4.99 at 19 %, gross prices: 14.97 credited, 12.58 net + 2.39 VAT.
    assert_eq!(note.totals.gross.value(), Decimal::new(1497, 2));
    assert_eq!(note.totals.tax.value(), Decimal::new(239, 2));
    assert!(
        tap.next_of::<CreditNoteIssued>(Duration::from_secs(1))
            .await
            .is_err(),
        "once"
    );
    host.stop(Duration::from_secs(5)).await;
    world.cleanup().await
}

#[tokio::test]
async fn a_free_amount_is_credited_over_the_vat_rates_and_counted_against_later_refunds()
-> anyhow::Result<()> {
    let world = World::new().await?;
    let pool = world.pool(NAME).await?;
    let mut tap = world
        .tap(&[InvoiceIssued::TYPE, CreditNoteIssued::TYPE])
        .await?;
    let mut host = world.host();
    start(
        &mut host,
        InvoicingHandler::new(),
        RenderSettings::default(),
    )
    .await?;
    world.publish(&settings("shop-de", 1)).await?;
    let order_id = Uuid::now_v7();
    world
        .publish(&env("fulfillment", order_id, request("shop-de", order_id)))
        .await?;
    let invoice = tap.next_of::<InvoiceIssued>(WAIT).await?.payload;
    // 25.80 + 14.97 + 4.90 shipping at 19 %, 21.40 at 7 %: 67.07 gross.
    assert_eq!(invoice.totals.gross.value(), Decimal::new(6707, 2));

    let mut goodwill = refund("shop-de", order_id, &[], false);
    goodwill.reason = "Kratzer am Becher: Kulanz".to_owned();
    goodwill.amount = Some("10.00".parse()?);
    world
        .publish(&env("operator", order_id, goodwill.clone()))
        .await?;
    let note = tap.next_of::<CreditNoteIssued>(WAIT).await?.payload;
    assert_eq!(note.request_id, Some(goodwill.request_id));
    assert_eq!(
        note.totals.gross.value(),
        Decimal::new(1000, 2),
        "exactly the amount"
    );
    // Shipping follows the goods: 3.21 at 19 %, 1.69 at 7 %, so 43.98 gross at 19 % and
    // 23.09 at 7 %. 10.00 × 43.98/67.07 = 6.56 at 19 % (5.51 + 1.05) and 3.44 at 7 %
    // (3.21 + 0.23).
    assert_eq!(note.totals.tax.value(), Decimal::new(128, 2));
    let text = pdftotext(
        &pdf_by_number(&pool, &note.credit_note_number, None)
            .await?
            .expect("pdf"),
        "worker-credit-note-amount.pdf",
    );
    assert!(
        text.contains("Preisnachlass") && text.contains("Kratzer am Becher: Kulanz"),
        "{text}"
    );

    // Everything else as lines: 67.07 more than the 57.07 left; refused whole, nothing issued.
    let all = refund("shop-de", order_id, &[("1", 2), ("2", 1), ("3", 3)], true);
    world.publish(&env("operator", order_id, all)).await?;
    // More than is left as an amount: refused with what is left.
    let mut greedy = refund("shop-de", order_id, &[], false);
    greedy.amount = Some("57.08".parse()?);
    world.publish(&env("operator", order_id, greedy)).await?;
    wait_until("both refused on record", WAIT, || async {
        Ok(list_refused(&pool, None, true, 10)
            .await?
            .iter()
            .filter(|r| r.message_type == OrderRefundRequested::TYPE)
            .count()
            == 2)
    })
    .await?;
    let reasons: Vec<String> = list_refused(&pool, None, true, 10)
        .await?
        .into_iter()
        .map(|r| r.reason)
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("a free amount was refunded earlier")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("hold only 57.07")),
        "{reasons:?}"
    );
    assert_eq!(count(&pool, "select count(*) from credit_notes").await?, 1);

    // The rest exactly: the invoice is then credited in full, to the cent.
    let mut rest = refund("shop-de", order_id, &[], false);
    rest.amount = Some("57.07".parse()?);
    world.publish(&env("operator", order_id, rest)).await?;
    let last = tap.next_of::<CreditNoteIssued>(WAIT).await?.payload;
    assert_eq!(last.totals.gross.value(), Decimal::new(5707, 2));
    assert_eq!(
        last.totals.tax.value() + note.totals.tax.value(),
        invoice.totals.tax.value(),
        "all the invoice's VAT reversed"
    );
    host.stop(Duration::from_secs(5)).await;
    world.cleanup().await
}

/// The cancellation overtakes the invoice request: it waits, and is credited as soon as the
/// invoice is issued.
#[tokio::test]
async fn a_cancellation_that_arrives_first_is_credited_after_the_invoice() -> anyhow::Result<()> {
    let world = World::new().await?;
    let mut tap = world
        .tap(&[InvoiceIssued::TYPE, CreditNoteIssued::TYPE])
        .await?;
    let mut host = world.host();
    start(
        &mut host,
        InvoicingHandler::new(),
        RenderSettings::default(),
    )
    .await?;
    let pool = world.pool(NAME).await?;
    world.publish(&settings("shop-de", 1)).await?;
    let order_id = Uuid::now_v7();
    let cancelled: OrderCancelled = serde_json::from_value(json!({
        "order_id": order_id,
        "store_id": "shop-de",
        "channel": "storefront",
        "external_order_id": "100234",
        "scope": "order",
        "lines": [{"line_id": "1", "quantity": 2}, {"line_id": "2", "quantity": 1},
                  {"line_id": "3", "quantity": 3}],
        "reason": "Payment failed"
    }))?;
    world.publish(&env("orders", order_id, cancelled)).await?;
    wait_until("the cancellation is kept", WAIT, || async {
        Ok(count(&pool, "select count(*) from pending_cancellations").await? == 1)
    })
    .await?;
    world
        .publish(&env("fulfillment", order_id, request("shop-de", order_id)))
        .await?;
    let invoice = tap.next_of::<InvoiceIssued>(WAIT).await?.payload;
    let note = tap.next_of::<CreditNoteIssued>(WAIT).await?.payload;
    assert_eq!(note.invoice_id, invoice.invoice_id);
    assert_eq!(note.reason, CreditReason::Cancellation);
    assert_eq!(
        note.totals, invoice.totals,
        "the whole order, shipping included, is credited"
    );
    assert_eq!(
        count(&pool, "select count(*) from pending_cancellations").await?,
        0
    );
    host.stop(Duration::from_secs(5)).await;
    world.cleanup().await
}

/// The renderer on its own (driven round by round): an order's credit note waits for its
/// invoice even when both are queued together, and a document that does not render stays
/// queued with the error, shown to operators, while the others go out.
#[tokio::test]
async fn the_renderer_keeps_an_orders_documents_in_order_and_keeps_failures() -> anyhow::Result<()>
{
    let world = World::new().await?;
    let mut host = world.host();
    // The consumer only: the test runs the renderer's rounds itself.
    host.start_worker(NAME, InvoicingHandler::new()).await?;
    let pool = world.pool(NAME).await?;
    world.publish(&settings("shop-de", 1)).await?;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let cancelled: OrderCancelled = serde_json::from_value(json!({
        "order_id": a, "store_id": "shop-de", "channel": "storefront",
        "external_order_id": "100234", "scope": "order",
        "lines": [{"line_id": "1", "quantity": 2}, {"line_id": "2", "quantity": 1},
                  {"line_id": "3", "quantity": 3}],
        "reason": "Payment failed"
    }))?;
    world.publish(&env("orders", a, cancelled)).await?;
    wait_until("the cancellation is kept", WAIT, || async {
        Ok(count(&pool, "select count(*) from pending_cancellations").await? == 1)
    })
    .await?;
    // A's invoice and its credit note are numbered in one transaction; then B's invoice.
    world
        .publish(&env("fulfillment", a, request("shop-de", a)))
        .await?;
    wait_until("A's documents queued", WAIT, || async {
        Ok(count(&pool, "select count(*) from render_queue").await? == 2)
    })
    .await?;
    world
        .publish(&env("fulfillment", b, request("shop-de", b)))
        .await?;
    wait_until("B's invoice queued", WAIT, || async {
        Ok(count(&pool, "select count(*) from render_queue").await? == 3)
    })
    .await?;
    // B's prepared message is damaged: its render cannot complete.
    sqlx::query("update render_queue set message = message - 'payload' where order_id = $1")
        .bind(b)
        .execute(&pool)
        .await?;
    let sent = || async {
        let types: Vec<String> = sqlx::query_scalar("select message_type from outbox order by id")
            .fetch_all(&pool)
            .await?;
        anyhow::Ok(types)
    };
    assert!(sent().await?.is_empty(), "nothing is sent before its PDF");

    let renderer = orderly_invoicing::Renderer::new(
        pool.clone(),
        RenderSettings {
            first_retry: Duration::from_secs(600),
            ..RenderSettings::default()
        },
        world.documents()?,
    );
    // Round 1: A's invoice and B's invoice; A's credit note waits for A's invoice.
    assert_eq!(renderer.round().await?, 2);
    assert_eq!(sent().await?, vec![InvoiceIssued::TYPE.to_owned()]);
    // Round 2: A's credit note; B's job is not due again yet.
    assert_eq!(renderer.round().await?, 1);
    assert_eq!(
        sent().await?,
        vec![
            InvoiceIssued::TYPE.to_owned(),
            CreditNoteIssued::TYPE.to_owned()
        ]
    );
    assert_eq!(renderer.round().await?, 0);

    let listed = list_invoices(&pool, None, 10).await?;
    let b_invoice = listed
        .iter()
        .find(|d| d.order_id == b)
        .expect("B's invoice is listed");
    match &b_invoice.pdf {
        orderly_invoicing::PdfState::Pending {
            attempts: 1,
            last_error: Some(e),
        } => assert!(e.contains("no payload"), "{e}"),
        other => panic!("B's PDF should be pending with the error, is {other:?}"),
    }
    assert!(
        b_invoice.to_string().contains("not rendered"),
        "{b_invoice}"
    );
    let err = pdf_by_number(&pool, &b_invoice.number, None)
        .await
        .expect_err("no PDF yet");
    assert!(err.to_string().contains("not rendered yet"), "{err}");
    assert!(
        listed
            .iter()
            .filter(|d| d.order_id == a)
            .all(|d| matches!(d.pdf, orderly_invoicing::PdfState::Stored(n) if n > 1000)),
        "A's documents have their PDFs: {listed:?}"
    );
    host.stop(Duration::from_secs(5)).await;
    world.cleanup().await
}

/// The document store (`[documents]`, a directory of this test's own): a PDF is put under
/// its key before its `invoice.issued` is released, and the message names that key and the
/// stored bytes' SHA-256; a store that refuses the PDF holds the message back and the job
/// is retried until the store takes it. Then `migrate_pdfs` copies what the table has and
/// the store lacks, leaves alone what is there, and replaces what differs, idempotently.
#[tokio::test]
async fn pdfs_are_in_the_document_store_before_they_are_announced_and_migrated_once()
-> anyhow::Result<()> {
    use object_store::ObjectStoreExt;
    use orderly_invoicing::{MigrateReport, migrate_pdfs};
    let world = World::new().await?;
    let mut host = world.host();
    // The consumer only: the test runs the renderer's rounds itself.
    host.start_worker(NAME, InvoicingHandler::new()).await?;
    let pool = world.pool(NAME).await?;
    let documents = world.documents()?;
    let directory = world
        .settings
        .section::<orderly_runtime::documents::DocumentSettings>("documents")?
        .path;
    world.publish(&settings("shop-de", 1)).await?;
    let order = Uuid::now_v7();
    world
        .publish(&env("fulfillment", order, request("shop-de", order)))
        .await?;
    wait_until("the invoice queued", WAIT, || async {
        Ok(count(&pool, "select count(*) from render_queue").await? == 1)
    })
    .await?;

    // The store cannot take the PDF: a file stands where its folder would be.
    let blocker = directory.join("invoices");
    std::fs::write(&blocker, b"not a folder")?;
    let renderer = orderly_invoicing::Renderer::new(
        pool.clone(),
        RenderSettings {
            first_retry: Duration::ZERO,
            ..RenderSettings::default()
        },
        documents.clone(),
    );
    assert_eq!(renderer.round().await?, 1);
    assert_eq!(
        count(&pool, "select count(*) from outbox").await?,
        0,
        "nothing is announced before the store holds it"
    );
    let (attempts, error): (i32, Option<String>) =
        sqlx::query_as("select attempts, last_error from render_queue")
            .fetch_one(&pool)
            .await?;
    assert_eq!(attempts, 1);
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("document store")),
        "{error:?}"
    );

    // The store is back: the retry stores it and sends the message naming it.
    std::fs::remove_file(&blocker)?;
    assert_eq!(renderer.round().await?, 1);
    let body: Value = sqlx::query_scalar("select body from outbox")
        .fetch_one(&pool)
        .await?;
    let number = format!("RE-{}-000001", year());
    let key = format!("invoices/shop-de/{number}.pdf");
    assert_eq!(body["payload"]["pdf"]["key"], key.as_str(), "{body}");
    let archived = pdf_by_number(&pool, &number, None)
        .await?
        .expect("the archive copy");
    let path = object_store::path::Path::parse(&key)?;
    let stored = documents.get(&path).await?.bytes().await?;
    assert_eq!(stored.as_ref(), archived.as_slice(), "the same bytes");
    assert_eq!(body["payload"]["pdf"]["sha256"], sha256_hex(&stored));
    assert_eq!(
        body["payload"]["pdf"]["size_bytes"],
        stored.len() as u64,
        "{body}"
    );
    // The structured e-invoice: stored beside the PDF, named by the message, the same XML the
    // PDF embeds, keeping EN 16931's rules; the stored PDF passes the Factur-X checker.
    let xml_key = format!("invoices/shop-de/{number}.xml");
    assert_eq!(body["payload"]["xml"]["key"], xml_key.as_str(), "{body}");
    assert_eq!(
        body["payload"]["xml"]["media_type"], "application/xml",
        "{body}"
    );
    let xml = documents
        .get(&object_store::path::Path::parse(&xml_key)?)
        .await?
        .bytes()
        .await?;
    assert_eq!(body["payload"]["xml"]["sha256"], sha256_hex(&xml));
    let xml = String::from_utf8(xml.to_vec())?;
    assert_eq!(
        orderly_invoicing::einvoice::embedded_xml(&stored).map_err(anyhow::Error::msg)?,
        xml
    );
    let findings = orderly_invoicing::einvoice::check::check_cii(&xml);
    assert!(
        findings
            .iter()
            .all(|f| f.severity != orderly_invoicing::einvoice::check::Severity::Error),
        "{findings:#?}"
    );
    let pdf_file = directory.join("checked.pdf");
    std::fs::write(&pdf_file, &stored)?;
    let check = einvoice_check(&pdf_file);
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    std::fs::remove_file(&pdf_file)?;

    // Migration: an object lost from the store is copied back from the archive, once.
    documents.delete(&path).await?;
    let report = migrate_pdfs(&pool, documents.as_ref(), false).await?;
    let only = |f: fn(&mut MigrateReport)| {
        let mut r = MigrateReport {
            examined: 1,
            ..MigrateReport::default()
        };
        f(&mut r);
        r
    };
    assert_eq!(report, only(|r| r.copied = 1));
    let copied = documents.get(&path).await?.bytes().await?;
    assert_eq!(copied.as_ref(), archived.as_slice());
    let again = migrate_pdfs(&pool, documents.as_ref(), false).await?;
    assert_eq!(again, only(|r| r.already_stored = 1), "idempotent");
    // Other bytes of another size are replaced by the archive's; other bytes of the same
    // size only when asked to verify.
    documents
        .put(&path, b"%PDF-damaged".to_vec().into())
        .await?;
    let repaired = migrate_pdfs(&pool, documents.as_ref(), false).await?;
    assert_eq!(repaired, only(|r| r.replaced = 1));
    let mut same_size = archived.clone();
    same_size[archived.len() / 2] ^= 0xff;
    documents.put(&path, same_size.into()).await?;
    let unverified = migrate_pdfs(&pool, documents.as_ref(), false).await?;
    assert_eq!(unverified, only(|r| r.already_stored = 1));
    let verified = migrate_pdfs(&pool, documents.as_ref(), true).await?;
    assert_eq!(verified, only(|r| r.replaced = 1));
    let restored = documents.get(&path).await?.bytes().await?;
    assert_eq!(restored.as_ref(), archived.as_slice());

    host.stop(Duration::from_secs(5)).await;
    world.cleanup().await
}

/// EUR 10,000 of distance sales to France: the first sale is taxed at German rates, the one
/// that crosses the threshold and the next at French rates; the running total is kept.
#[tokio::test]
async fn distance_sales_switch_to_destination_rates_at_the_threshold() -> anyhow::Result<()> {
    let world = World::new().await?;
    let mut tap = world.tap(&[InvoiceIssued::TYPE]).await?;
    let mut host = world.host();
    start(
        &mut host,
        InvoicingHandler::new(),
        RenderSettings::default(),
    )
    .await?;
    let pool = world.pool(NAME).await?;
    world.publish(&settings_without_oss("shop-de", 1)).await?;

    // 100 × 99.96 gross at 19 % = 8,400.00 net at German rates.
    let big = |order_id: Uuid| -> anyhow::Result<InvoiceRequested> {
        let mut r = request_to("shop-de", order_id, "FR", consumer());
        r.lines.truncate(1);
        r.lines[0].quantity = orderly_contracts::types::Quantity::new(100)?;
        r.lines[0].unit_price = orderly_contracts::types::Amount::parse("99.96")?;
        r.shipping = orderly_contracts::types::Amount::ZERO;
        Ok(r)
    };
    let mut treatments = Vec::new();
    let mut rates = Vec::new();
    for _ in 0..3 {
        // One at a time, so the order of the sales is known.
        let order_id = Uuid::now_v7();
        world
            .publish(&env("fulfillment", order_id, big(order_id)?))
            .await?;
        let issued = tap.next_of::<InvoiceIssued>(WAIT).await?.payload;
        treatments.push(issued.vat_treatment);
        rates.push(issued.totals.breakdown[0].rate.to_string());
    }
    assert_eq!(
        treatments,
        vec![
            VatTreatment::Domestic,
            VatTreatment::OssDistanceSale,
            VatTreatment::OssDistanceSale
        ]
    );
    assert_eq!(rates, vec!["19", "20", "20"]);
    let reasons: Vec<String> =
        sqlx::query_scalar("select vat_reason from invoices order by number")
            .fetch_all(&pool)
            .await?;
    assert!(
        reasons[0].contains("stay within the EUR 10000 threshold"),
        "{}",
        reasons[0]
    );
    assert!(
        reasons[1].contains("from EUR 8400.00 to EUR 16800.00"),
        "{}",
        reasons[1]
    );
    // 8,400.00 + 2 × 8,330.00 (9,996 gross at 20 %).
    let total: Decimal = sqlx::query_scalar("select net_eur from distance_sales")
        .fetch_one(&pool)
        .await?;
    assert_eq!(total, Decimal::new(2506000, 2));
    host.stop(Duration::from_secs(5)).await;
    world.cleanup().await
}

#[tokio::test]
async fn the_benchmark_runs_end_to_end() -> anyhow::Result<()> {
    // A small run by default; `INVOICING_BENCH_INVOICES=5000 cargo test --release ...
    // the_benchmark -- --nocapture` for real figures.
    let n = std::env::var("INVOICING_BENCH_INVOICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let world = World::new().await?;
    let figures = orderly_invoicing::bench::run(&world.settings, n).await?;
    println!("{}", figures.markdown());
    assert_eq!(figures.invoices, n);
    assert!(figures.invoices_per_second > 0.0);
    assert!(figures.pdf_ms_per_page > 0.0);
    world.cleanup().await
}

/// The language is the store's when a document is issued and part of its snapshot: a
/// locale change prints later invoices in the new language, while a credit note keeps the
/// language (and wording) of the invoice it credits.
#[tokio::test]
async fn documents_print_in_the_store_language_of_their_issue() -> anyhow::Result<()> {
    let world = World::new().await?;
    let mut tap = world
        .tap(&[InvoiceIssued::TYPE, CreditNoteIssued::TYPE])
        .await?;
    let mut host = world.host();
    start(
        &mut host,
        InvoicingHandler::new(),
        RenderSettings::default(),
    )
    .await?;
    let pool = world.pool(NAME).await?;
    world.publish(&settings_in("shop-at", 1, "de-AT")).await?;
    let first = Uuid::now_v7();
    world
        .publish(&env("fulfillment", first, request("shop-at", first)))
        .await?;
    let german = tap.next_of::<InvoiceIssued>(WAIT).await?.payload;
    let pdf = pdf_by_number(&pool, &german.invoice_number, None)
        .await?
        .expect("pdf");
    let text = pdftotext(&pdf, "worker-de-at.pdf");
    assert!(
        text.contains(&format!("Rechnung {}", german.invoice_number)),
        "{text}"
    );

    world.publish(&settings_in("shop-at", 2, "fr-FR")).await?;
    wait_until("the fr-FR settings are stored", WAIT, || async {
        let locale: Option<String> = sqlx::query_scalar(
            "select settings->>'locale' from store_settings where store_id = 'shop-at'",
        )
        .fetch_optional(&pool)
        .await?;
        Ok(locale.as_deref() == Some("fr-FR"))
    })
    .await?;
    let second = Uuid::now_v7();
    world
        .publish(&env("fulfillment", second, request("shop-at", second)))
        .await?;
    let french = tap.next_of::<InvoiceIssued>(WAIT).await?.payload;
    assert_eq!(french.order_id, second);
    let pdf = pdf_by_number(&pool, &french.invoice_number, None)
        .await?
        .expect("pdf");
    let text = pdftotext(&pdf, "worker-fr.pdf");
    for needle in [
        format!("Facture {}", french.invoice_number),
        "Date d'émission".to_owned(),
        "Total TTC".to_owned(),
        "Frais de port".to_owned(),
        "Payable sous 14 jours".to_owned(),
    ] {
        assert!(text.contains(&needle), "`{needle}` missing: {text}");
    }

    // A refund of the first (German) invoice, issued after the switch to French.
    let r = refund("shop-at", first, &[("1", 1)], false);
    world.publish(&env("operator", first, r)).await?;
    let note = tap.next_of::<CreditNoteIssued>(WAIT).await?.payload;
    assert_eq!(note.invoice_number, german.invoice_number);
    let pdf = pdf_by_number(&pool, &note.credit_note_number, None)
        .await?
        .expect("pdf");
    let text = pdftotext(&pdf, "worker-credit-note-de-at.pdf");
    for needle in [
        format!("Rechnungskorrektur {}", note.credit_note_number),
        "Korrigiert Rechnung".to_owned(),
        german.invoice_number.clone(),
        "Gesamtbetrag der Korrektur".to_owned(),
    ] {
        assert!(text.contains(&needle), "`{needle}` missing: {text}");
    }
    assert!(
        !text.contains("Facture") && !text.contains("Avoir"),
        "{text}"
    );
    host.stop(Duration::from_secs(5)).await;
    world.cleanup().await
}

/// What the invoicing schema ended up with, for comparing two runs: invoices (number,
/// request, order, scope, rule, treatment, totals, the snapshot's lines and breakdown),
/// distance sales, number series and render jobs with the request their message answers.
async fn invoicing_state(pool: &PgPool) -> anyhow::Result<Vec<String>> {
    let mut rows = Vec::new();
    for sql in [
        "select format('invoice %s %s %s %s %s %s %s %s %s %s %s', number, request_id, order_id,
                       scope, vat_rule, vat_treatment, net, tax, gross,
                       document->'lines', document->'breakdown') from invoices",
        "select format('distance %s %s %s', store_id, year, net_eur) from distance_sales",
        "select format('series %s %s %s %s %s', store_id, kind, prefix, period, last_number)
         from number_series",
        "select format('job %s %s %s', kind, message->'payload'->>'invoice_number',
                       message->'payload'->>'request_id') from render_queue",
    ] {
        let mut some: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(pool)
            .await?;
        some.sort();
        rows.extend(some);
    }
    Ok(rows)
}

#[tokio::test]
async fn requests_issued_together_number_and_decide_as_one_at_a_time() -> anyhow::Result<()> {
    let raw = |e: &Envelope<InvoiceRequested>| orderly_contracts::decode_raw(&e.to_json()).unwrap();
    // 100 × 99.96 gross to France: 8,400.00 net at German rates, 8,330.00 at French ones.
    let big = |order_id: Uuid| -> InvoiceRequested {
        let mut r = request_to("shop-de", order_id, "FR", consumer());
        r.lines.truncate(1);
        r.lines[0].quantity = orderly_contracts::types::Quantity::new(100).unwrap();
        r.lines[0].unit_price = orderly_contracts::types::Amount::parse("99.96").unwrap();
        r.shipping = orderly_contracts::types::Amount::ZERO;
        r
    };
    let (a, b, c, d) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    let first = env("fulfillment", a, big(a));
    let mut same_scope = big(a);
    same_scope.request_id = Uuid::now_v7();
    let batch = vec![
        raw(&first),
        raw(&env("fulfillment", b, request("shop-de", b))), // domestic
        raw(&env("fulfillment", c, big(c))),                // crosses the threshold: French rate
        raw(&first),                                        // the same request again
        raw(&env("fulfillment", a, same_scope)),            // another request for what A invoices
        raw(&env("fulfillment", d, big(d))),                // over the threshold: French rate
    ];
    let setup = [orderly_contracts::decode_raw(
        &settings_without_oss("shop-de", 1).to_json(),
    )?];
    let [one, all] = orderly_runtime::testing::run_both_ways(
        NAME,
        &InvoicingHandler::new(),
        &setup,
        &batch,
        |pool| async move { invoicing_state(&pool).await },
    )
    .await?;
    let states = [one.state, all.state];
    assert_eq!(
        states[0], states[1],
        "the same invoices one at a time and together"
    );
    let invoices: Vec<&String> = states[1]
        .iter()
        .filter(|r| r.starts_with("invoice "))
        .collect();
    assert_eq!(invoices.len(), 4, "{invoices:#?}");
    let y = year();
    for (number, order, rule) in [
        (1, a, "distance_sale_below_threshold"),
        (2, b, "domestic"),
        (3, c, "distance_sale_oss"),
        (4, d, "distance_sale_oss"),
    ] {
        let prefix = format!("invoice RE-{y}-{number:06} ");
        let row = invoices.iter().find(|r| r.starts_with(&prefix));
        assert!(
            row.is_some_and(|r| r.contains(&order.to_string()) && r.contains(rule)),
            "{prefix}{order} {rule}: {invoices:#?}"
        );
    }
    assert!(
        states[1].contains(&format!("series shop-de invoice RE- {y} 4")),
        "{:#?}",
        states[1]
    );
    Ok(())
}

/// A warehouse in another member state, a rate file with a dated change and a store's own
/// rows decide invoices through the worker, with no code involved: the shipment from a Dutch
/// warehouse is a Dutch supply; the German rate the file changes on 2030-01-01 applies from
/// that day; the store's own books row wins over the file.
#[tokio::test]
async fn warehouses_rate_files_and_store_rows_decide_through_the_worker() -> anyhow::Result<()> {
    let world = World::new().await?;
    let mut tap = world.tap(&[InvoiceIssued::TYPE]).await?;
    // The shipped file, with Germany's standard rate changing on 2030-01-01.
    let mut changed = false;
    let mut text: String = orderly_invoicing::domain::rates::SHIPPED_CSV
        .lines()
        .map(|line| {
            if line.starts_with("DE,standard,19,2021-01-01,,") {
                changed = true;
                format!(
                    "{}\n",
                    line.replace(
                        "DE,standard,19,2021-01-01,,",
                        "DE,standard,19,2021-01-01,2029-12-31,"
                    )
                )
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    assert!(changed, "the shipped file has DE's open standard row");
    text.push_str("DE,standard,21,2030-01-01,,test: an announced change,\n");
    let dir = std::env::temp_dir().join(format!("orderly-rates-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("vat-rates.csv");
    std::fs::write(&file, &text)?;
    let settings = world.settings.clone().with_section(
        "vat",
        orderly_invoicing::RateSettings {
            rates_file: Some(file.clone()),
            ..Default::default()
        },
    );
    let mut host = orderly_runtime::Host::new(settings.clone());
    start(
        &mut host,
        InvoicingHandler::new(),
        RenderSettings::default(),
    )
    .await?;
    let pool = world.pool(NAME).await?;
    let loaded: Vec<String> = sqlx::query_scalar("select path from vat_rate_files")
        .fetch_all(&pool)
        .await?;
    assert_eq!(loaded, vec![file.display().to_string()]);
    world.publish(&settings_without_oss("shop-de", 1)).await?;
    let warehouse: orderly_contracts::messages::WarehouseUpserted =
        serde_json::from_value(json!({
            "warehouse_id": "venlo-1", "revision": 1, "name": "Venlo", "priority": 1,
            "active": true,
            "address": {"name": "Venlo DC", "lines": ["Celsiusweg 10"], "postal_code": "5928 PR",
                        "city": "Venlo", "country": "NL"}
        }))?;
    world
        .publish(&Envelope::new("admin-api", "venlo-1".to_owned(), warehouse))
        .await?;
    wait_until("the warehouse is known", WAIT, || async {
        Ok(count(&pool, "select count(*) from warehouses").await? == 1)
    })
    .await?;

    // From the Dutch warehouse to a Dutch consumer: Dutch VAT, 21 %.
    let order_id = Uuid::now_v7();
    let mut from_venlo = request_to("shop-de", order_id, "NL", consumer());
    from_venlo.timing = orderly_contracts::messages::InvoiceTiming::OnShipment;
    from_venlo.shipment_id = Some(Uuid::now_v7());
    from_venlo.warehouse_id = Some(orderly_contracts::types::WarehouseId::parse("venlo-1")?);
    from_venlo.lines.truncate(1);
    world
        .publish(&env("fulfillment", order_id, from_venlo))
        .await?;
    let issued = tap.next_of::<InvoiceIssued>(WAIT).await?.payload;
    assert_eq!(issued.vat_treatment, VatTreatment::Domestic);
    assert_eq!(issued.totals.breakdown[0].rate.to_string(), "21");
    let reason: String = sqlx::query_scalar("select vat_reason from invoices where order_id = $1")
        .bind(order_id)
        .fetch_one(&pool)
        .await?;
    assert!(reason.contains("registered for VAT in NL"), "{reason}");

    // German orders placed the day before and the day of the change.
    let mut rates = Vec::new();
    for placed in ["2029-12-31T10:00:00Z", "2030-01-01T10:00:00Z"] {
        let order_id = Uuid::now_v7();
        let mut r = request("shop-de", order_id);
        r.placed_at = placed.parse()?;
        r.lines.truncate(1);
        world.publish(&env("fulfillment", order_id, r)).await?;
        let issued = tap.next_of::<InvoiceIssued>(WAIT).await?.payload;
        rates.push(issued.totals.breakdown[0].rate.to_string());
    }
    assert_eq!(rates, vec!["19", "21"]);

    // The store's own row for books wins over the file's 7 % (a worker reads the stores'
    // rows at start and every `refresh_ms`; this one is restarted to read them now).
    let own = orderly_invoicing::domain::rates::RateTable::parse(
        "area,class,rate,from,to,source,note\nDE,books,0,2026-01-01,,store decision 7,a trial\n",
    )
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    orderly_invoicing::set_store_rows(&pool, "shop-de", &own).await?;
    host.stop(Duration::from_secs(5)).await;
    let mut host = orderly_runtime::Host::new(settings.clone());
    start(
        &mut host,
        InvoicingHandler::new(),
        RenderSettings::default(),
    )
    .await?;
    let order_id = Uuid::now_v7();
    let mut books = request("shop-de", order_id);
    books.lines.retain(|l| l.line_id == "2");
    books.lines[0].tax_class = Some(orderly_contracts::types::TaxClass::Books);
    books.shipping = orderly_contracts::types::Amount::ZERO;
    world.publish(&env("fulfillment", order_id, books)).await?;
    let issued = tap.next_of::<InvoiceIssued>(WAIT).await?.payload;
    assert_eq!(issued.totals.breakdown[0].rate.to_string(), "0");
    assert!(issued.totals.tax.is_zero());

    host.stop(Duration::from_secs(5)).await;
    std::fs::remove_dir_all(&dir)?;
    world.cleanup().await
}

/// A store that sends XRechnung: a buyer without a Leitweg-ID (BT-10) is refused with what
/// is missing, nothing numbered; a buyer with one gets the invoice, and the XML stored
/// beside the PDF (and named in invoice.issued) is the XRechnung UBL, which passes the
/// official schema and schematron.
#[tokio::test]
async fn xrechnung_is_written_beside_the_pdf_or_the_request_is_refused_with_what_is_missing()
-> anyhow::Result<()> {
    use object_store::ObjectStoreExt;
    let world = World::new().await?;
    let mut tap = world.tap(&[InvoiceIssued::TYPE]).await?;
    let mut host = world.host();
    start(
        &mut host,
        InvoicingHandler::new(),
        RenderSettings::default(),
    )
    .await?;
    let pool = world.pool(NAME).await?;
    let mut xrechnung = settings("shop-de", 1);
    let s = &mut xrechnung.payload;
    s.e_invoice_format = orderly_contracts::messages::EinvoiceFormat::Xrechnung;
    s.electronic_address = Some(serde_json::from_value(
        json!({"scheme": "9930", "id": "DE123456789"}),
    )?);
    s.contact = Some(serde_json::from_value(
        json!({"name": "Buchhaltung", "phone": "+49 30 1234567", "email": "rechnung@beispiel.de"}),
    )?);
    s.payee_account = Some(serde_json::from_value(
        json!({"iban": "DE89370400440532013000"}),
    )?);
    world.publish(&xrechnung).await?;

    let business = |reference: Option<&str>| {
        let mut buyer = json!({"name": "Bezirksamt Mitte", "locale": "de-DE", "is_business": true,
                               "electronic_address": {"scheme": "0204", "id": "04011000-12345-34"}});
        if let Some(r) = reference {
            buyer["buyer_reference"] = json!(r);
        }
        buyer
    };
    let refused_order = Uuid::now_v7();
    world
        .publish(&env(
            "fulfillment",
            refused_order,
            request_to("shop-de", refused_order, "DE", business(None)),
        ))
        .await?;
    wait_until("the request is refused", WAIT, || async {
        Ok(!list_refused(&pool, None, true, 10).await?.is_empty())
    })
    .await?;
    let refused = list_refused(&pool, None, true, 10).await?;
    assert!(
        refused[0].reason.contains("xrechnung") && refused[0].reason.contains("BT-10"),
        "{}",
        refused[0].reason
    );
    assert_eq!(count(&pool, "select count(*) from invoices").await?, 0);

    let order_id = Uuid::now_v7();
    world
        .publish(&env(
            "fulfillment",
            order_id,
            request_to(
                "shop-de",
                order_id,
                "DE",
                business(Some("04011000-12345-34")),
            ),
        ))
        .await?;
    let issued = tap.next_of::<InvoiceIssued>(WAIT).await?.payload;
    let xml_ref = issued.xml.expect("the XML is named");
    let key = xml_ref.key.expect("its key");
    assert!(key.ends_with(".xml"), "{key}");
    let xml = world
        .documents()?
        .get(&object_store::path::Path::parse(&key)?)
        .await?
        .bytes()
        .await?;
    let text = String::from_utf8(xml.to_vec())?;
    assert!(
        text.contains("urn:xeinkauf.de:kosit:xrechnung_3.0"),
        "{text}"
    );
    assert!(text.contains("<cbc:BuyerReference>04011000-12345-34</cbc:BuyerReference>"));
    let file = std::env::temp_dir().join(format!("xrechnung-{}.xml", Uuid::now_v7()));
    std::fs::write(&file, &text)?;
    let check = einvoice_check(&file);
    std::fs::remove_file(&file)?;
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    host.stop(Duration::from_secs(5)).await;
    world.cleanup().await
}

/// A running worker puts what operators load in force within `[vat] refresh_ms`: another
/// rate file (`orderly vat load`) and a store's own rows (`orderly vat store`), without a
/// restart.
#[tokio::test]
async fn a_running_worker_picks_up_a_loaded_rate_file_and_store_rows() -> anyhow::Result<()> {
    use orderly_invoicing::domain::rates::{RateClass, RateTable};
    let world = World::new().await?;
    let settings = world.settings.clone().with_section(
        "vat",
        orderly_invoicing::RateSettings {
            rates_file: None,
            refresh: Duration::from_millis(100),
        },
    );
    let handler = InvoicingHandler::new();
    let in_force = handler.rates().clone();
    let mut host = orderly_runtime::Host::new(settings);
    start(&mut host, handler, RenderSettings::default()).await?;
    let pool = world.pool(NAME).await?;
    let day = chrono::NaiveDate::from_ymd_opt(2030, 1, 1).expect("date");
    let lu = || {
        in_force
            .current()
            .base
            .find("LU", RateClass::Standard, day)
            .map(|f| f.rate.to_string())
    };
    assert_eq!(lu().as_deref(), Some("17"));

    // Luxembourg's rate changes in 2030 in another file, loaded while the worker runs.
    let text = orderly_invoicing::domain::rates::SHIPPED_CSV.replace(
        "\nLU,standard,17,2024-01-01,,",
        "\nLU,standard,17,2024-01-01,2029-12-31,",
    ) + "LU,standard,18,2030-01-01,,test: announced,\n";
    let file = std::env::temp_dir().join(format!("rates-{}.csv", Uuid::now_v7()));
    std::fs::write(&file, text)?;
    let (loaded, _) = orderly_invoicing::load_rates(
        &pool,
        &orderly_invoicing::RateSettings {
            rates_file: Some(file.clone()),
            ..Default::default()
        },
    )
    .await?;
    std::fs::remove_file(&file)?;
    assert!(loaded.replaced);
    wait_until("the loaded file is in force", WAIT, || async {
        Ok(lu().as_deref() == Some("18"))
    })
    .await?;

    let own =
        RateTable::parse("area,class,rate,from,to,source,note\nLU,books,0,2026-01-01,,trial,\n")
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    orderly_invoicing::set_store_rows(&pool, "shop-lu", &own).await?;
    wait_until("the store's rows are in force", WAIT, || async {
        Ok(in_force.current().stores.contains_key("shop-lu"))
    })
    .await?;
    host.stop(Duration::from_secs(5)).await;
    world.cleanup().await
}

/// Art. 230 through the worker: with the ECB's rates loaded, an invoice in dollars states
/// its VAT in euros on the PDF and in the XML (BT-6, BT-111), and the e-invoice passes the
/// official checks; before the rates are loaded the request is refused, saying how to load
/// them.
#[tokio::test]
async fn an_invoice_in_dollars_states_its_vat_in_euros() -> anyhow::Result<()> {
    let world = World::new().await?;
    let mut tap = world.tap(&[InvoiceIssued::TYPE]).await?;
    let mut host = world.host();
    start(
        &mut host,
        InvoicingHandler::new(),
        RenderSettings::default(),
    )
    .await?;
    let pool = world.pool(NAME).await?;
    world.publish(&settings("shop-de", 1)).await?;
    let dollars = |order_id: Uuid| -> anyhow::Result<InvoiceRequested> {
        let mut r = request("shop-de", order_id);
        r.currency = orderly_contracts::types::CurrencyCode::parse("USD")?;
        Ok(r)
    };
    let refused = Uuid::now_v7();
    world
        .publish(&env("fulfillment", refused, dollars(refused)?))
        .await?;
    wait_until("refused without rates", WAIT, || async {
        Ok(!list_refused(&pool, None, true, 10).await?.is_empty())
    })
    .await?;
    let reason = &list_refused(&pool, None, true, 10).await?[0].reason;
    assert!(reason.contains("orderly vat fx"), "{reason}");

    let rates = orderly_invoicing::domain::fx::parse_ecb_csv(
        "Date,USD,JPY,\n2026-03-13,1.0845,161.20,\n2026-03-12,1.0800,160.00,\n",
    )
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    assert_eq!(orderly_invoicing::load_fx(&pool, &rates).await?, 4);
    let order_id = Uuid::now_v7();
    world
        .publish(&env("fulfillment", order_id, dollars(order_id)?))
        .await?;
    let issued = tap.next_of::<InvoiceIssued>(WAIT).await?.payload;
    let pdf = pdf_by_number(&pool, &issued.invoice_number, None)
        .await?
        .expect("pdf");
    let text = pdftotext(&pdf, "worker-usd.pdf");
    // 8.53 USD of VAT / 1.0845 = 7.87 EUR, at Friday's rate for the Saturday order date.
    assert!(
        text.contains("USt. in EUR: 7,87 € (EZB-Referenzkurs vom 13.03.2026: 1 EUR = 1,0845 USD)"),
        "{text}"
    );
    let xml = orderly_invoicing::einvoice::embedded_xml(&pdf).map_err(anyhow::Error::msg)?;
    assert!(
        xml.contains("<ram:TaxCurrencyCode>EUR</ram:TaxCurrencyCode>"),
        "{xml}"
    );
    assert!(xml.contains("<ram:TaxTotalAmount currencyID=\"EUR\">7.87</ram:TaxTotalAmount>"));
    let file = std::env::temp_dir().join(format!("usd-{}.pdf", Uuid::now_v7()));
    std::fs::write(&file, &pdf)?;
    let check = einvoice_check(&file);
    std::fs::remove_file(&file)?;
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    host.stop(Duration::from_secs(5)).await;
    world.cleanup().await
}
