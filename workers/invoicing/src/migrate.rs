//! `orderly documents migrate`: copies the PDFs issued before the document store existed
//! (kept only in this worker's `document_pdfs`) into it, under the keys the renderer uses
//! now, so every issued document can be served from the store (decision 0010).
//!
//! It is this worker's own tool on its own schema: it reads `document_pdfs` and the
//! documents' numbers and stores, and writes only to the document store. It is idempotent:
//! a document whose object is already there (same size; with `verify`, the same SHA-256) is
//! left alone, so it can be rerun after a failure or run while the workers run (the
//! renderer writes new documents to the store before they are announced, so they are never
//! missing). An object that differs from the archive copy is replaced by it: the table is
//! the legal archive, and the SHA-256 every message announced is the archive's.

use std::fmt;

use futures_util::{StreamExt, TryStreamExt, stream};
use object_store::{ObjectStore, ObjectStoreExt, path::Path};
use serde::Serialize;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::domain::document::DocumentKind;
use crate::render;

/// Documents looked at per page (one statement each).
const PAGE: i64 = 200;
/// Objects looked up or written at a time.
const IN_FLIGHT: usize = 16;

/// What a migration did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MigrateReport {
    /// Documents with a PDF in the table.
    pub examined: u64,
    /// Copied into the document store (it had no object under their key).
    pub copied: u64,
    /// Already in the document store, as the archive has them.
    pub already_stored: u64,
    /// In the document store with other bytes, replaced by the archive copy.
    pub replaced: u64,
}

impl fmt::Display for MigrateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} documents: {} copied, {} already stored, {} replaced",
            self.examined, self.copied, self.already_stored, self.replaced
        )
    }
}

/// What became of one document.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Copied,
    AlreadyStored,
    Replaced,
}

/// One archived PDF, as far as the check needs it (the bytes are read only to copy).
#[derive(Debug)]
struct Archived {
    document_id: Uuid,
    key: Path,
    sha256: String,
    size: u64,
}

/// Copies every PDF of `document_pdfs` that the document store lacks (or holds with other
/// bytes) into it. `verify`: compare the SHA-256 of objects already there too (reads every
/// object); without it, an object of the right size counts as stored.
pub async fn migrate_pdfs(
    pool: &PgPool,
    documents: &dyn ObjectStore,
    verify: bool,
) -> anyhow::Result<MigrateReport> {
    let mut report = MigrateReport::default();
    let mut after = Uuid::nil();
    loop {
        let page = archived_after(pool, after).await?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.document_id;
        let outcomes: Vec<Outcome> = stream::iter(page)
            .map(|doc| migrate_one(pool, documents, doc, verify))
            .buffer_unordered(IN_FLIGHT)
            .try_collect()
            .await?;
        for outcome in outcomes {
            report.examined += 1;
            match outcome {
                Outcome::Copied => report.copied += 1,
                Outcome::AlreadyStored => report.already_stored += 1,
                Outcome::Replaced => report.replaced += 1,
            }
        }
    }
    Ok(report)
}

/// The next page of archived PDFs, by document id.
async fn archived_after(pool: &PgPool, after: Uuid) -> anyhow::Result<Vec<Archived>> {
    let rows = sqlx::query(
        "select p.document_id, p.pdf_sha256, p.pdf_size, d.kind, d.store_id, d.number
         from document_pdfs p
         join (select invoice_id as id, 'invoice' as kind, store_id, number from invoices
               union all
               select credit_note_id, 'credit_note', store_id, number from credit_notes) d
           on d.id = p.document_id
         where p.document_id > $1
         order by p.document_id limit $2",
    )
    .bind(after)
    .bind(PAGE)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            let kind: String = r.try_get("kind")?;
            let kind = DocumentKind::parse(&kind)
                .ok_or_else(|| anyhow::anyhow!("unknown document kind {kind}"))?;
            let store_id: String = r.try_get("store_id")?;
            let number: String = r.try_get("number")?;
            Ok(Archived {
                document_id: r.try_get("document_id")?,
                key: orderly_runtime::documents::pdf_key(render::folder(kind), &store_id, &number),
                sha256: r.try_get("pdf_sha256")?,
                size: u64::try_from(r.try_get::<i32, _>("pdf_size")?)?,
            })
        })
        .collect()
}

async fn migrate_one(
    pool: &PgPool,
    documents: &dyn ObjectStore,
    doc: Archived,
    verify: bool,
) -> anyhow::Result<Outcome> {
    let present = match documents.head(&doc.key).await {
        Ok(meta) if meta.size != doc.size => Some(false),
        Ok(_) if verify => {
            let bytes = documents.get(&doc.key).await?.bytes().await?;
            Some(render::sha256_hex(&bytes) == doc.sha256)
        }
        Ok(_) => Some(true),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    if present == Some(true) {
        return Ok(Outcome::AlreadyStored);
    }
    let pdf: Vec<u8> = sqlx::query_scalar("select pdf from document_pdfs where document_id = $1")
        .bind(doc.document_id)
        .fetch_one(pool)
        .await?;
    anyhow::ensure!(
        render::sha256_hex(&pdf) == doc.sha256,
        "the archived PDF of {} does not match its recorded SHA-256; not copied",
        doc.key
    );
    documents.put(&doc.key, pdf.into()).await?;
    Ok(match present {
        None => Outcome::Copied,
        Some(_) => Outcome::Replaced,
    })
}
