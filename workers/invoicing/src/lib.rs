//! The invoicing worker: turns `invoice.requested` into legal invoices, and refunds and
//! cancellations into credit notes.
//!
//! What it owns, in its own schema (`invoicing`):
//! - each store's invoice settings (`store.invoice_settings_updated`, highest revision
//!   wins): seller, VAT id, number prefixes and format, rounding policy, footer;
//! - the number series, one per store and kind (invoice, credit note) and, when the store
//!   resets yearly, per year: gap-free and strictly increasing;
//! - the stores' EU distance sales per calendar year (the EUR 10,000 OSS threshold);
//! - the VAT rate data: the configured rate file's rows (loaded at start, [`load_rates`])
//!   and each store's own rows, which win where they cover the day;
//! - every document as a Factur-X invoice: the PDF embeds the EN 16931 XML of the same
//!   snapshot, and the XML is stored beside it in the document store;
//! - the warehouses' addresses (`warehouse.upserted`): where a shipment's supply starts;
//! - issued invoices and credit notes: immutable snapshots of everything printed (a
//!   database trigger refuses updates and deletes) with the rule and the reason of the VAT
//!   decision, and the PDF (bytea, SHA-256, size);
//! - the requests it refused or holds (a store without settings), for operators.
//!
//! Why it is built this way:
//! - the VAT decision and the rounding are pure ([`domain`]) and the rates are data (a rate
//!   change is a row in `data/vat-rates.csv`, loaded without a release), so they are tested
//!   with plain values;
//! - a number is taken by updating the series' counter row in the transaction that inserts
//!   the invoice: the row lock serialises workers and a rollback returns the number, so
//!   there are no gaps and no duplicates however many copies run;
//! - the invoice, its number and a render job holding the prepared `invoice.issued` commit
//!   together, and an invoice is unique per request and per (order, scope), so redelivery
//!   issues nothing twice;
//! - the PDF is rendered by the worker's renderer ([`render`]), outside the store's lock
//!   and on every core, which puts it in the shared document store (`[documents]`, an
//!   object store every worker can read) and then stores it and sends the `invoice.issued`
//!   that references it (its key and SHA-256) in one transaction: a store's series is
//!   numbered one document at a time, and only the numbering needs to be; and no message
//!   names a document the store does not hold. `migrate` copies PDFs issued before the
//!   document store existed into it (`orderly documents migrate`);
//! - credit notes copy the invoice's parties, rule, wording, language and rates (never
//!   today's) and can never credit more than was invoiced;
//! - a document prints in its store's language (English, German, French or Dutch, from the
//!   settings' `locale`; any other language prints English): every label and the legal
//!   wording, from one table ([`domain::language`]). The language is part of the snapshot,
//!   so a later locale change never changes an issued document; the accountant's VAT
//!   explanation stays English;
//! - a request for a store without settings is held, listed with its reason
//!   ([`store::list_refused`]), and issued automatically when the settings arrive.
//!
//! Layers: [`domain`] (pure rules), [`store`] (all SQL), [`handlers`] (the message
//! handler), [`render`] (the renderer task), `migrate` (older PDFs into the document
//! store), `rate_data` (the rate file into the schema), [`pdf`] (rendering) and `pdfa` (the
//! Factur-X / PDF/A-3 parts), [`einvoice`] (the EN 16931 XML and its rules), [`vies`] (the
//! pluggable VAT id registry), [`bench`] (the
//! benchmark behind `orderly bench invoices`). See `docs/invoicing.md`.

#[cfg(feature = "bench")]
pub mod bench;
pub mod domain;
pub mod einvoice;
mod handlers;
mod migrate;
pub mod pdf;
mod pdfa;
mod rate_data;
mod render;
mod store;
pub mod vies;

pub use handlers::{InvoicingHandler, InvoicingInput, SharedRates};
pub use migrate::{MigrateReport, migrate_pdfs};
pub use rate_data::{RateSettings, check_rates, load_rates, read_rates};
pub use render::{RenderSettings, Renderer};
pub use store::fx::load_fx;
pub use store::rates::{Loaded, file_sha256, set_store_rows};
pub use store::{DocumentRow, PdfState, RefusedRow, list_invoices, list_refused, pdf_by_number};

/// The worker's name: its queue and its schema.
pub const NAME: &str = "invoicing";

/// Starts the invoicing worker on `host`: loads the rate data (`[vat]`), then its consumer,
/// its renderer (which puts PDFs in the document store the host's `[documents]` settings
/// name) and the task that picks up a rate file loaded while it runs.
pub async fn start(
    host: &mut orderly_runtime::Host,
    handler: InvoicingHandler,
    rendering: RenderSettings,
) -> anyhow::Result<()> {
    let documents =
        orderly_runtime::documents::open_batched(&host.settings().section("documents")?)?;
    let vat: RateSettings = host.settings().section("vat")?;
    let pool = host.pool_for(NAME).await?;
    let (loaded, table) = load_rates(&pool, &vat).await?;
    tracing::info!(rows = loaded.rows, sha256 = %loaded.sha256, replaced = loaded.replaced, "VAT rate data loaded");
    handler.rates().replace(table);
    handler
        .rates()
        .replace_stores(store::rates::all_store_rows(&pool).await?);
    let refresher =
        rate_data::Refresher::new(pool, handler.rates().clone(), loaded.sha256, vat.refresh);
    host.spawn_task("vat-rates", move |shutdown| refresher.run(shutdown));
    host.start_worker(NAME, handler).await?;
    let renderer = Renderer::new(host.pool_for(NAME).await?, rendering, documents)
        .with_handoff(host.handoff(NAME))
        .with_wake(host.wake(NAME));
    host.spawn_task("invoice-renderer", move |shutdown| renderer.run(shutdown));
    Ok(())
}
