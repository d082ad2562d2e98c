//! The invoicing benchmark (`orderly bench invoices`): invoices per second end to end
//! through a real worker, and the PDF rendering time alone.
//!
//! End to end: `invoices` requests for a fresh store are published to the broker first (a
//! backlog), then a worker host starts (consumer and renderer) and the clock runs until every
//! invoice is committed with its PDF and its `invoice.issued` has left the outbox. That
//! covers decoding, the VAT decision, numbering, the PDF, the SHA-256, the PDF's `put` in
//! the document store (a scratch directory, written with `fsync`), the inserts, the outbox
//! row and the relay; the publishing of the requests is not counted. The time until
//! the last invoice was numbered (the store's serial part) is reported beside it. PDF alone: the same 3-line invoice and a 120-line one
//! rendered in a loop, reported per page.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use orderly_contracts::messages::{InvoiceRequested, RoundingPolicy, StoreInvoiceSettingsUpdated};
use orderly_contracts::{Envelope, Message};
use orderly_runtime::broker::{self, Names};
use orderly_runtime::{Host, Settings, db, topology};
use rust_decimal::Decimal;
use serde_json::json;
use uuid::Uuid;

use crate::domain::amounts::{self, DocumentInput, LineInput};
use crate::domain::document::{Document, DocumentKind, Party};
use crate::domain::language::Language;
use crate::domain::vat::Rule;
use crate::{InvoicingHandler, NAME, RenderSettings, pdf};

/// What the benchmark measured.
#[derive(Debug, Clone)]
pub struct Figures {
    /// Invoices issued end to end.
    pub invoices: usize,
    /// Wall time from the worker's start to the last `invoice.issued` published.
    pub seconds: f64,
    /// `invoices / seconds`.
    pub invoices_per_second: f64,
    /// Invoices numbered and stored per second (the part under the store's lock), from the
    /// worker's start to the last invoice row.
    pub numbered_per_second: f64,
    /// The machine's cores during the end-to-end part.
    pub load: orderly_runtime::machine::MachineLoad,
    /// Average PDF size of the issued invoices, bytes.
    pub average_pdf_bytes: f64,
    /// PDF rendering alone, 3-line invoice (one page): ms per page.
    pub pdf_ms_per_page: f64,
    /// PDF rendering alone, 120-line invoice: pages and ms per page.
    pub long_pdf_pages: usize,
    /// ms per page of the 120-line invoice.
    pub long_pdf_ms_per_page: f64,
    /// Consumer settings used (prefetch, concurrency, batch size).
    pub consumer: String,
}

impl Figures {
    /// A markdown table of the figures, with the targets.
    pub fn markdown(&self) -> String {
        format!(
            "| measure | value | target |\n|---|---|---|\n\
             | invoices end to end | {} in {:.2} s | |\n\
             | invoices per second (VAT decision, numbering, PDF, storage, outbox) | {:.0} | ≥ 500 |\n\
             | of which numbered and stored per second (the store's serial part) | {:.0} | |\n\
             | machine during the run | {} | |\n\
             | PDF rendering, 3-line invoice | {:.2} ms/page | < 2 ms/page |\n\
             | PDF rendering, 120-line invoice ({} pages) | {:.2} ms/page | < 2 ms/page |\n\
             | average invoice PDF size | {:.0} bytes | |\n\
             | consumer | {} | |\n",
            self.invoices,
            self.seconds,
            self.invoices_per_second,
            self.numbered_per_second,
            self.load,
            self.pdf_ms_per_page,
            self.long_pdf_pages,
            self.long_pdf_ms_per_page,
            self.average_pdf_bytes,
            self.consumer
        )
    }
}

fn settings_payload(store: &str) -> anyhow::Result<StoreInvoiceSettingsUpdated> {
    Ok(serde_json::from_value(json!({
        "store_id": store,
        "revision": 1,
        "legal_name": "Bench Handels GmbH",
        "address": {"name": "Bench Handels GmbH", "lines": ["Torstraße 101"],
                    "postal_code": "10119", "city": "Berlin", "country": "DE"},
        "vat_id": "DE123456789",
        "invoice_timing": "on_order",
        "invoice_number_prefix": "B-",
        "credit_note_number_prefix": "BG-",
        "oss_registered": true,
        "locale": "de-DE",
        "payment_terms_days": 14,
        "footer": "Bench Handels GmbH · Amtsgericht Berlin-Charlottenburg HRB 123456",
        "number_yearly_reset": true
    }))?)
}

fn request_payload(store: &str, i: usize) -> anyhow::Result<InvoiceRequested> {
    let countries = ["DE", "FR", "AT", "CH", "NL"];
    let country = countries[i % countries.len()];
    Ok(serde_json::from_value(json!({
        "request_id": Uuid::now_v7(),
        "order_id": Uuid::now_v7(),
        "store_id": store,
        "timing": "on_order",
        "external_order_id": format!("B-{i}"),
        "placed_at": "2026-03-14T09:26:51Z",
        "currency": "EUR",
        "prices_include_tax": true,
        "buyer": {"name": "Jörg Schäfer", "locale": "de-DE", "is_business": false},
        "billing_address": {"name": "Jörg Schäfer", "lines": ["Hauptstraße 12"],
                            "postal_code": "10115", "city": "Köln", "country": country},
        "shipping_address": {"name": "Jörg Schäfer", "lines": ["Hauptstraße 12"],
                             "postal_code": "10115", "city": "Köln", "country": country},
        "lines": [
            {"line_id": "1", "sku": "MUG-BLU-350", "title": "Becher „Blau“ 350 ml", "quantity": 2,
             "unit_price": "12.90", "discount": "0", "tax_category": "standard"},
            {"line_id": "2", "sku": "BOOK-42", "title": "Roman", "quantity": 1,
             "unit_price": "21.40", "discount": "0", "tax_category": "reduced"},
            {"line_id": "3", "sku": "TEA-EARL-100", "title": "Earl Grey 100 g", "quantity": 3,
             "unit_price": "4.99", "discount": "0", "tax_category": "standard"}
        ],
        "shipping": "4.90",
        "discount": "0"
    }))?)
}

/// A document like the ones the worker issues, for timing the renderer alone.
fn sample_document(lines: usize) -> Document {
    let categories = [
        orderly_contracts::types::TaxCategory::Standard,
        orderly_contracts::types::TaxCategory::Reduced,
    ];
    let priced = amounts::price(&DocumentInput {
        lines: (0..lines)
            .map(|i| LineInput {
                line_id: i.to_string(),
                sku: format!("SKU-{i:04}"),
                title: format!("Artikel {i} – Bücher & Süßwaren"),
                category: categories[i % 2],
                quantity: 2,
                unit_price: Decimal::new(1999, 2),
                discount: Decimal::ZERO,
                rate: if i % 2 == 0 {
                    Decimal::new(19, 0)
                } else {
                    Decimal::new(7, 0)
                },
                exemption_reference: None,
            })
            .collect(),
        order_discount: Decimal::ZERO,
        prices_include_tax: true,
        policy: RoundingPolicy::PerLine,
        scale: 2,
    });
    let day = NaiveDate::from_ymd_opt(2026, 3, 14).unwrap_or_default();
    let party = |name: &str| Party {
        name: name.to_owned(),
        attention: None,
        lines: vec!["Hauptstraße 12".to_owned()],
        city_line: "10115 Berlin".to_owned(),
        country: "DE".to_owned(),
        vat_id: Some("DE123456789".to_owned()),
        tax_number: None,
        postal_code: Some("10115".to_owned()),
        city: Some("Berlin".to_owned()),
    };
    Document {
        kind: DocumentKind::Invoice,
        number: "B-2026-000001".to_owned(),
        issue_date: day,
        supply_date: day,
        order_reference: "B-1".to_owned(),
        currency: "EUR".to_owned(),
        seller: party("Bench Handels GmbH"),
        buyer: party("Jörg Schäfer"),
        ship_to: None,
        lines: priced.lines,
        breakdown: priced.breakdown,
        net: priced.net,
        tax: priced.tax,
        gross: priced.gross,
        rule: Rule::Domestic,
        reason: "goods stay in DE".to_owned(),
        vat_id_check: None,
        legal_note: None,
        credits: None,
        payment_terms_days: Some(14),
        footer: Some("Bench Handels GmbH".to_owned()),
        language: Language::De,
        einvoice: Default::default(),
        vat_national: None,
    }
}

/// Milliseconds per page of rendering `doc`, over enough rounds to be stable.
fn time_pdf(doc: &Document, rounds: usize) -> anyhow::Result<(usize, f64)> {
    let (_, pages) = pdf::render(doc)?; // warm-up (font parsing)
    let start = Instant::now();
    for _ in 0..rounds {
        pdf::render(doc)?;
    }
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    Ok((pages, ms / (rounds * pages.max(1)) as f64))
}

/// Runs the benchmark against the broker and database of `settings` (migrated and declared
/// here if needed), with a fresh store so runs never collide.
pub async fn run(settings: &Settings, invoices: usize) -> anyhow::Result<Figures> {
    db::ensure_database(&settings.database_url).await?;
    db::migrate(&settings.database_url).await?;
    let names = Names::new(settings.namespace.clone());
    let connection = broker::connect(&settings.broker_url, "orderly-bench-invoices").await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    topology::declare(&channel, &names, &topology::standard_specs(settings)).await?;

    let store = format!("bench-{}", &Uuid::now_v7().simple().to_string()[20..]);
    let publish = |env_json: Vec<u8>, ty: &'static str| {
        let channel = channel.clone();
        let exchange = names.events_exchange();
        async move {
            channel
                .basic_publish(
                    exchange.into(),
                    ty.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &env_json,
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await
        }
    };
    let settings_env = Envelope::new("bench", store.clone(), settings_payload(&store)?);
    publish(settings_env.to_json(), StoreInvoiceSettingsUpdated::TYPE)
        .await?
        .await?;
    let mut window = Vec::with_capacity(256);
    for i in 0..invoices {
        let req = request_payload(&store, i)?;
        let env = Envelope::new("bench", req.order_id.to_string(), req);
        window.push(publish(env.to_json(), InvoiceRequested::TYPE).await?);
        if window.len() >= 256 {
            for c in window.drain(..) {
                c.await?;
            }
        }
    }
    for c in window {
        c.await?;
    }

    let pool = db::connect(&settings.database_url, NAME, 2).await?;
    let consumer = settings.consumer_for(NAME);
    // The PDFs go to a scratch directory of their own, removed afterwards.
    let documents = std::env::temp_dir().join(format!("orderly-{store}-documents"));
    let host_settings = settings.clone().with_section(
        "documents",
        orderly_runtime::documents::DocumentSettings {
            path: documents.clone(),
            ..Default::default()
        },
    );
    let mut host = Host::new(host_settings);
    let start = Instant::now();
    let cpu = orderly_runtime::machine::CpuSample::now();
    // The renderer as configured (`[renderer]`, `ORDERLY__RENDERER__*`), so its settings
    // can be compared without a rebuild.
    let rendering: RenderSettings = settings.section("renderer")?;
    crate::start(&mut host, InvoicingHandler::new(), rendering).await?;
    let deadline = Duration::from_secs(60 + invoices as u64 / 10);
    let target = i64::try_from(invoices)?;
    let mut numbered_seconds = None;
    loop {
        // A job leaves the render queue in the transaction that stores its PDF and writes
        // its message, so every invoice numbered, no job left and nothing unsent means every
        // one rendered and sent. (The join with the stored PDFs this replaces took 20 ms and
        // more a poll by the end of a run: the benchmark's own load.)
        let (numbered, pending): (i64, i64) = sqlx::query_as(
            "select (select count(*) from invoices where store_id = $1),
                    (select count(*) from outbox where published_at is null)
                    + (select count(*) from render_queue)",
        )
        .bind(&store)
        .fetch_one(&pool)
        .await?;
        if numbered >= target && numbered_seconds.is_none() {
            numbered_seconds = Some(start.elapsed().as_secs_f64());
        }
        if numbered >= target && pending == 0 {
            break;
        }
        if start.elapsed() > deadline {
            anyhow::bail!(
                "{numbered} of {invoices} invoices numbered, {pending} renders or messages pending after {deadline:?}"
            );
        }
        // Coarse on purpose: these counts scan the tables, and polling them often took
        // database time from the worker being measured (0.1 s in a 10 s run is 1 %).
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds = start.elapsed().as_secs_f64();
    let load = orderly_runtime::machine::CpuSample::now().since(&cpu);
    let numbered_seconds = numbered_seconds.unwrap_or(seconds);
    host.stop(Duration::from_secs(5)).await;
    let _ = std::fs::remove_dir_all(&documents);
    let (with_pdf, average_pdf_bytes): (i64, Option<f64>) = sqlx::query_as(
        "select count(*), avg(p.pdf_size)::float8
         from invoices i join document_pdfs p on p.document_id = i.invoice_id
         where i.store_id = $1",
    )
    .bind(&store)
    .fetch_one(&pool)
    .await?;
    // Checked once the clock has stopped: every invoice has its PDF.
    anyhow::ensure!(
        with_pdf == target,
        "{with_pdf} of {invoices} invoices have a stored PDF"
    );
    let average_pdf_bytes = average_pdf_bytes.unwrap_or_default();
    pool.close().await;
    let _ = connection.close(200, "done".into()).await;

    let (_, pdf_ms_per_page) = time_pdf(&sample_document(3), 200)?;
    let (long_pdf_pages, long_pdf_ms_per_page) = time_pdf(&sample_document(120), 20)?;
    Ok(Figures {
        invoices,
        seconds,
        invoices_per_second: invoices as f64 / seconds,
        numbered_per_second: invoices as f64 / numbered_seconds,
        load,
        average_pdf_bytes,
        pdf_ms_per_page,
        long_pdf_pages,
        long_pdf_ms_per_page,
        consumer: format!(
            "prefetch {}, concurrency {}, batch {}",
            consumer.prefetch, consumer.concurrency, consumer.batch_size
        ),
    })
}
