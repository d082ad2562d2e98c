//! The export jobs' writer: a task of the api worker that writes each asked-for export to
//! the document store (`exports/<id>.<csv|jsonl>`), a page of orders at a time, as a
//! multipart upload (so memory stays a part's size, whatever the file's), with its rows,
//! size and SHA-256 recorded when the upload is complete.
//!
//! An export is taken under a lease (`store::exports`): a writer that dies leaves it
//! running, and once the lease runs out it is written again from the start; an upload left
//! unfinished is never shown (the key is recorded only once it is complete). A failure that
//! may pass (the database or the document store away) gives the export back to be tried
//! again; a query that no longer parses fails it, saying why.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use object_store::{ObjectStoreExt, WriteMultipart, path::Path};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::domain::export;
use crate::http::Api;
use crate::store::exports::{self as store, ExportJob};

/// How long an idle writer waits before it looks for an export nobody told it of.
const IDLE: Duration = Duration::from_secs(2);

/// Writes the asked-for exports until shutdown.
pub(crate) async fn run(api: Arc<Api>, shutdown: CancellationToken) {
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let job = match store::take(&api.pool).await {
            Ok(Some(job)) => job,
            Ok(None) => {
                wait(&api, &shutdown).await;
                continue;
            }
            Err(e) => {
                warn!(error = %e, "exports: cannot look for one; retrying");
                wait(&api, &shutdown).await;
                continue;
            }
        };
        let export_id = job.export_id;
        let written = tokio::select! {
            () = shutdown.cancelled() => {
                // Stopped mid-file (a restart): give the export back at once rather than
                // leave it to the lease, so the next writer starts it again in seconds.
                if let Err(e) = store::release(&api.pool, export_id).await {
                    warn!(error = %e, %export_id, "export not given back; its lease will run out");
                }
                break;
            }
            written = write(&api, &job) => written,
        };
        let recorded = match written {
            Ok(Written::Done {
                key,
                rows,
                bytes,
                sha256,
            }) => {
                info!(%export_id, rows, bytes, "export written to the document store");
                store::complete(&api.pool, export_id, &key, rows, bytes, &sha256).await
            }
            Ok(Written::Refused(why)) => store::fail(&api.pool, export_id, &why).await,
            Err(e) => {
                warn!(error = %format!("{e:#}"), %export_id, "export not written; tried again soon");
                store::release(&api.pool, export_id).await
            }
        };
        if let Err(e) = recorded {
            warn!(error = %e, %export_id, "export's outcome not recorded; its lease will run out");
        }
    }
}

async fn wait(api: &Api, shutdown: &CancellationToken) {
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = api.exports.notified() => {}
        () = tokio::time::sleep(IDLE) => {}
    }
}

enum Written {
    Done {
        key: String,
        rows: u64,
        bytes: u64,
        sha256: String,
    },
    Refused(String),
}

async fn write(api: &Api, job: &ExportJob) -> anyhow::Result<Written> {
    let pairs = url::form_urlencoded::parse(job.query.as_bytes())
        .into_owned()
        .collect();
    let (shape, query) = match export::parse_request(pairs) {
        Ok(parsed) => parsed,
        Err(e) => return Ok(Written::Refused(format!("{}: {}", e.field, e.reason))),
    };
    let key = format!("exports/{}.{}", job.export_id, shape.format.extension());
    let path = Path::from(key.as_str());
    let upload = api.documents.put_multipart(&path).await?;
    let mut writer = WriteMultipart::new(upload);
    let mut digest = Sha256::new();
    let (mut rows, mut bytes) = (0u64, 0u64);
    let mut pages = std::pin::pin!(crate::export_file::pages(
        api.pool.clone(),
        job.stores.clone(),
        query,
        shape,
    ));
    while let Some(chunk) = pages.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                let _ = writer.abort().await;
                return Err(e.into());
            }
        };
        digest.update(&chunk.bytes);
        rows += chunk.rows;
        bytes += chunk.bytes.len() as u64;
        writer.wait_for_capacity(2).await?;
        writer.write(&chunk.bytes);
    }
    writer.finish().await?;
    Ok(Written::Done {
        key,
        rows,
        bytes,
        sha256: hex::encode(digest.finalize()),
    })
}
