//! The renderer: a background task of the invoicing worker that turns numbered documents
//! into PDFs and sends their issued messages.
//!
//! Why it exists: a store's documents are numbered one at a time under the store's lock
//! (that keeps the series gap-free), so whatever runs under that lock bounds the store's
//! invoices per second. The handler therefore only decides, numbers and stores the snapshot
//! with a render job (`store::enqueue_render`); the renderer, outside any store lock, claims
//! jobs (`FOR UPDATE SKIP LOCKED`: every worker copy runs one, they share the work), renders
//! them on all cores, puts each PDF in the document store (`[documents]`, see
//! [`orderly_runtime::documents`]), makes the round's puts durable together (its files,
//! then each directory once: [`BatchedStore::make_durable`]), and then in one transaction stores the PDFs in its own
//! table too, completes the prepared `invoice.issued` / `credit_note.issued` with the PDF's
//! reference (its key in the document store and its SHA-256) and puts it in the outbox, and
//! removes the jobs. So a message never names a document the store does not hold. A crash
//! before the commit leaves the jobs queued; the retry puts the same key again, which is
//! harmless (no message named the earlier bytes). One order's documents go out in the order
//! they were numbered (`store::claim_renders`).
//!
//! The table copy (`document_pdfs`) is the legal archive of what was issued, kept with the
//! invoices it belongs to; the document store is where every other worker reads it (decision
//! 0010).
//!
//! A document that does not render, or whose PDF the document store does not take, is not
//! lost: its job stays with the error and is retried with growing pauses; `orderly invoice
//! list` shows it as not rendered, with the error.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use object_store::{ObjectStoreExt, path::Path};
use orderly_contracts::messages::DocumentRef;
use orderly_runtime::documents::{self, BatchedStore, DocumentFolder};
use orderly_runtime::drain::{self, Round};
use orderly_runtime::outbox::{self, OutboxMessage};
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::domain::document::{Document, DocumentKind};
use crate::store::{self, RenderJob, RenderedPdf};
use crate::{einvoice, pdf};

/// How the renderer works: `[renderer]` in the configuration file, or
/// `ORDERLY__RENDERER__<FIELD>` (durations in milliseconds).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RenderSettings {
    /// Jobs claimed per round (rendered in parallel, stored in one transaction).
    pub batch_size: i64,
    /// Longest sleep without a wake-up (a safety net; queued jobs notify).
    #[serde(rename = "poll_interval_ms", with = "orderly_runtime::config::millis")]
    pub poll_interval: Duration,
    /// Pause after the first failed render of a job; doubles per attempt, up to an hour.
    #[serde(rename = "first_retry_ms", with = "orderly_runtime::config::millis")]
    pub first_retry: Duration,
    /// Whether the issued messages name the PDF's key in the document store (`pdf.key`).
    /// Turn off only while an outside consumer of those messages still refuses the field
    /// (`docs/contracts/README.md`, Versioning): the PDFs are stored under the same keys
    /// either way.
    pub announce_keys: bool,
}

impl Default for RenderSettings {
    fn default() -> Self {
        Self {
            batch_size: 64,
            poll_interval: Duration::from_secs(5),
            first_retry: Duration::from_secs(1),
            announce_keys: true,
        }
    }
}

/// How many PDFs one renderer puts in the document store at a time.
const PUTS_IN_FLIGHT: usize = 16;

/// The renderer of one worker process.
#[derive(Debug, Clone)]
pub struct Renderer {
    pool: PgPool,
    settings: RenderSettings,
    documents: BatchedStore,
    handoff: Option<outbox::Handoff>,
    wake: drain::Wake,
}

impl Renderer {
    /// A renderer working on `pool` (the invoicing schema's), putting PDFs in `documents`
    /// (made durable once per round, before the round's messages are committed).
    pub fn new(pool: PgPool, settings: RenderSettings, documents: impl Into<BatchedStore>) -> Self {
        Self {
            pool,
            settings,
            documents: documents.into(),
            handoff: None,
            wake: drain::Wake::default(),
        }
    }

    /// Runs a round when `wake` is woken: the invoicing consumer in this process wakes it
    /// after committing a document (see [`orderly_runtime::Host::wake`]); without one, the
    /// renderer finds new jobs at its poll interval.
    #[must_use]
    pub fn with_wake(mut self, wake: drain::Wake) -> Self {
        self.wake = wake;
        self
    }

    /// Hands the issued messages it commits to the relay (see [`outbox::Handoff`]); without
    /// one, the relay's sweep finds them.
    #[must_use]
    pub fn with_handoff(mut self, handoff: Option<outbox::Handoff>) -> Self {
        self.handoff = handoff;
        self
    }

    /// Runs until `shutdown`. Rounds overlap by one: while a round's documents are made
    /// durable and its transaction commits, the next round is claimed, rendered and put
    /// (the disk and the database wait, the cores render). The next round never takes a
    /// job the previous one holds, nor a later document of the same order (its claim skips
    /// both), so one order's documents still go out in the order they were numbered.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = &self;
        let finishing: tokio::sync::Mutex<Option<JoinHandle<anyhow::Result<()>>>> =
            tokio::sync::Mutex::default();
        let finishing = &finishing;
        drain::run(
            &self.pool,
            self.wake.clone(),
            None,
            "invoice renderer",
            shutdown,
            this.settings.poll_interval,
            || async move {
                let prepared = this.prepare().await;
                // At most one round finishing; its failure is this round's error (its
                // jobs stay queued and are taken again).
                if let Some(previous) = finishing.lock().await.take() {
                    previous.await??;
                }
                let Some(prepared) = prepared? else {
                    return Ok(Round::of(0, this.settings.batch_size));
                };
                let claimed = prepared.claimed;
                let renderer = this.clone();
                *finishing.lock().await =
                    Some(tokio::spawn(async move { renderer.finish(prepared).await }));
                Ok(Round::of(claimed, this.settings.batch_size))
            },
            || async move {
                let mut conn = this.pool.acquire().await?;
                Ok(store::next_render_due(&mut conn).await?)
            },
        )
        .await;
        if let Some(last) = finishing.lock().await.take()
            && let Err(error) = last.await.map_err(anyhow::Error::from).and_then(|r| r)
        {
            warn!(%error, "the last round did not finish; its documents are rendered again");
        }
    }

    /// One round, start to end: claim, render, store and send. Returns how many jobs it
    /// claimed.
    pub async fn round(&self) -> anyhow::Result<usize> {
        match self.prepare().await? {
            None => Ok(0),
            Some(prepared) => {
                let claimed = prepared.claimed;
                self.finish(prepared).await?;
                Ok(claimed)
            }
        }
    }

    /// Claims a round's jobs, renders them and puts the documents in the store (not yet
    /// durable); `None` when no job is due.
    async fn prepare(&self) -> anyhow::Result<Option<Prepared>> {
        let mut tx = self.pool.begin().await?;
        let jobs = store::claim_renders(&mut tx, self.settings.batch_size).await?;
        let claimed = jobs.len();
        if claimed == 0 {
            tx.commit().await?;
            return Ok(None);
        }
        let mut pdfs = Vec::with_capacity(claimed);
        let mut messages = Vec::with_capacity(claimed);
        let mut stored = Vec::with_capacity(2 * claimed);
        let rendered = render_all(jobs, self.settings.announce_keys).await?;
        for (job, rendered) in self.put_all(rendered).await {
            match rendered.and_then(|r| complete(&job, r)) {
                Ok((pdf, message)) => {
                    stored.extend([xml_key(&job), pdf_key(&job)]);
                    pdfs.push(pdf);
                    messages.push(message);
                }
                Err(error) => {
                    let retry = self.retry_in(job.attempts);
                    warn!(
                        number = job.document.number,
                        error,
                        ?retry,
                        "PDF not rendered; retrying later"
                    );
                    let ms = i64::try_from(retry.as_millis()).unwrap_or(i64::MAX);
                    store::render_failed(&mut tx, job.seq, &error, ms).await?;
                }
            }
        }
        Ok(Some(Prepared {
            tx,
            claimed,
            pdfs,
            messages,
            stored,
        }))
    }

    /// Makes a prepared round's documents durable, then in its transaction stores the PDFs,
    /// writes the issued messages to the outbox and removes the jobs.
    async fn finish(&self, prepared: Prepared) -> anyhow::Result<()> {
        let Prepared {
            mut tx,
            pdfs,
            messages,
            stored,
            ..
        } = prepared;
        // Nothing is announced before every PDF and XML it names is durable.
        self.documents.make_durable(&stored).await?;
        store::store_pdfs(&mut tx, &pdfs).await?;
        let written = outbox::insert(&mut tx, &messages).await?;
        tx.commit().await?;
        if let Some(handoff) = &self.handoff {
            handoff.hand(written);
        }
        if !pdfs.is_empty() {
            info!(rendered = pdfs.len(), "documents rendered and sent");
        }
        Ok(())
    }

    /// Puts every rendered PDF in the document store, a few at a time; a PDF the store does
    /// not take becomes its job's error (retried like a failed render).
    async fn put_all(&self, rendered: Vec<(RenderJob, Rendered)>) -> Vec<(RenderJob, Rendered)> {
        stream::iter(rendered)
            .map(|(job, rendered)| async move {
                let Ok(r) = rendered else {
                    return (job, rendered);
                };
                // The XML first: a PDF in the store always has its XML beside it. The bytes
                // are shared, not copied (the PDF also goes to the archive table).
                let put = |key: Path, bytes: Bytes| async move {
                    self.documents
                        .store()
                        .put(&key, bytes.into())
                        .await
                        .map(|_| ())
                        .map_err(|e| format!("cannot store {key} in the document store: {e}"))
                };
                let stored = match put(xml_key(&job), r.xml.clone()).await {
                    Ok(()) => put(pdf_key(&job), r.pdf.clone()).await,
                    Err(e) => Err(e),
                };
                (job, stored.map(|()| r))
            })
            .buffer_unordered(PUTS_IN_FLIGHT)
            .collect()
            .await
    }

    fn retry_in(&self, attempts: i32) -> Duration {
        let doublings = u32::try_from(attempts.clamp(0, 12)).unwrap_or(12);
        (self.settings.first_retry * 2u32.pow(doublings)).min(Duration::from_secs(3600))
    }
}

/// A round claimed, rendered and put, its transaction (holding the jobs) still open.
struct Prepared {
    tx: Transaction<'static, Postgres>,
    claimed: usize,
    pdfs: Vec<RenderedPdf>,
    messages: Vec<OutboxMessage>,
    /// The keys put, to be made durable before the messages are committed.
    stored: Vec<Path>,
}

/// A rendered document: the PDF (with the XML embedded) and the XML, with their references.
struct Documents {
    pdf: Bytes,
    pdf_ref: DocumentRef,
    xml: Bytes,
    xml_ref: DocumentRef,
}

/// A rendered document, or why it did not render.
type Rendered = Result<Documents, String>;

/// Renders (and digests) every job's document, spread over the machine's cores: CPU work,
/// on blocking threads, not on the runtime's. `announce_key`: the reference names the key.
async fn render_all(
    jobs: Vec<RenderJob>,
    announce_key: bool,
) -> anyhow::Result<Vec<(RenderJob, Rendered)>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_chunk = jobs.len().div_ceil(cores).max(1);
    let mut chunks: Vec<Vec<RenderJob>> = Vec::new();
    let mut jobs = jobs.into_iter().peekable();
    while jobs.peek().is_some() {
        chunks.push(jobs.by_ref().take(per_chunk).collect());
    }
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            tokio::task::spawn_blocking(move || {
                chunk
                    .into_iter()
                    .map(|job| {
                        // The CII is made once: embedded in the PDF, and stored beside it
                        // unless the store or the buyer asked for a UBL format.
                        let cii = einvoice::cii(&job.document);
                        let rendered = render(&job.document, &cii).map(|bytes| {
                            let number = &job.document.number;
                            let key = announce_key.then(|| pdf_key(&job));
                            let pdf_ref = pdf_ref(job.kind, number, &bytes, key);
                            let xml = einvoice::structured_or(&job.document, cii);
                            let key = announce_key.then(|| xml_key(&job));
                            let xml_ref = xml_ref(job.kind, number, xml.as_bytes(), key);
                            Documents {
                                pdf: bytes.into(),
                                pdf_ref,
                                xml: xml.into_bytes().into(),
                                xml_ref,
                            }
                        });
                        (job, rendered)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut out = Vec::new();
    for handle in handles {
        out.extend(handle.await?);
    }
    Ok(out)
}

fn render(doc: &Document, cii: &str) -> Result<Vec<u8>, String> {
    pdf::render_with(doc, cii)
        .map(|(bytes, _)| bytes)
        .map_err(|e| format!("cannot render {}: {e}", doc.number))
}

/// The PDF row and the issued message, its `payload.pdf` and `payload.xml` now pointing at
/// the PDF and the XML.
fn complete(job: &RenderJob, rendered: Documents) -> Result<(RenderedPdf, OutboxMessage), String> {
    let Documents {
        pdf: bytes,
        pdf_ref: reference,
        xml_ref,
        ..
    } = rendered;
    let mut envelope = job.message.clone();
    let payload = envelope
        .get_mut("payload")
        .and_then(|p| p.as_object_mut())
        .ok_or_else(|| format!("queued message of {} has no payload", job.document.number))?;
    payload.insert(
        "pdf".to_owned(),
        serde_json::to_value(&reference).map_err(|e| e.to_string())?,
    );
    payload.insert(
        "xml".to_owned(),
        serde_json::to_value(&xml_ref).map_err(|e| e.to_string())?,
    );
    let field = |name: &str| {
        envelope
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| format!("queued message of {} has no {name}", job.document.number))
    };
    let message = OutboxMessage {
        message_id: field("message_id")?
            .parse()
            .map_err(|e| format!("queued message id: {e}"))?,
        message_type: field("message_type")?,
        correlation_id: field("correlation_id")?,
        body: envelope,
    };
    Ok((
        RenderedPdf {
            seq: job.seq,
            document_id: job.document_id,
            sha256: reference.sha256,
            pdf: bytes,
        },
        message,
    ))
}

/// Where a job's PDF goes in the document store.
fn pdf_key(job: &RenderJob) -> Path {
    documents::pdf_key(folder(job.kind), &job.store_id, &job.document.number)
}

/// Where a job's XML goes in the document store: beside its PDF.
fn xml_key(job: &RenderJob) -> Path {
    documents::xml_key(folder(job.kind), &job.store_id, &job.document.number)
}

/// The document store's folder of a kind of document.
pub(crate) fn folder(kind: DocumentKind) -> DocumentFolder {
    match kind {
        DocumentKind::Invoice => DocumentFolder::Invoices,
        DocumentKind::CreditNote => DocumentFolder::CreditNotes,
    }
}

/// A PDF's reference in an issued message; `key`: where it is in the document store.
pub(crate) fn pdf_ref(
    kind: DocumentKind,
    number: &str,
    bytes: &[u8],
    key: Option<Path>,
) -> DocumentRef {
    DocumentRef {
        uri: kind.pdf_uri(number),
        media_type: "application/pdf".to_owned(),
        sha256: sha256_hex(bytes),
        size_bytes: bytes.len() as u64,
        key: key.map(|k| k.to_string()),
    }
}

/// An e-invoice XML's reference in an issued message.
fn xml_ref(kind: DocumentKind, number: &str, bytes: &[u8], key: Option<Path>) -> DocumentRef {
    DocumentRef {
        uri: kind.xml_uri(number),
        media_type: "application/xml".to_owned(),
        ..pdf_ref(kind, number, bytes, key)
    }
}

/// The SHA-256 of `bytes`, as the messages carry it (64 lowercase hex digits).
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The reference a prepared message carries until its PDF exists: the final address, a
/// digest of zeros. The handler checks the message with it; the renderer replaces it.
pub(crate) fn pending_pdf_ref(kind: DocumentKind, number: &str) -> DocumentRef {
    DocumentRef {
        uri: kind.pdf_uri(number),
        media_type: "application/pdf".to_owned(),
        sha256: "0".repeat(64),
        size_bytes: 1,
        key: None,
    }
}
