//! Export jobs: `POST /api/v1/admin/orders/exports` asks for the export of a filter to be
//! written to the document store (for files too large to stream to a browser);
//! `GET /api/v1/admin/exports/{id}` says how far it got; `GET …/download` streams the file.
//!
//! The query string is the streamed export's (`GET /api/v1/admin/orders/export`: the list's
//! filters, `format`, `rows`, `columns`), checked the same way before anything is written,
//! and the file is written by the same writer (`crate::export_file`), so it is that export's
//! file. The stores are the creator's when they asked. Seen and downloaded by its creator,
//! and by staff who see every store; to others a 404. In the audit log as
//! `orders.export_job`.

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{Path, RawQuery, State},
    http::{HeaderValue, StatusCode, header},
    response::IntoResponse,
};
use futures_util::StreamExt;
use object_store::ObjectStoreExt;
use schemars::JsonSchema;
use serde::Serialize;
use tracing::{error, info};
use uuid::Uuid;

use super::actions::Client;
use super::auth::Caller;
use super::endpoint::{Accepted, Reply};
use super::export::Export;
use super::orders::pairs;
use super::{Api, Problem};
use crate::domain::access::Permission;
use crate::domain::export;
use crate::store::commands::{self as commands, AuditEntry, By};
use crate::store::exports::{self as store, ExportView};

/// An export job with where to find it and its file.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ExportJobView {
    #[serde(flatten)]
    export: ExportView,
    links: ExportLinks,
}

#[derive(Debug, Serialize, JsonSchema)]
struct ExportLinks {
    /// The job: poll it until `state` is not `running`.
    #[serde(rename = "self")]
    own: String,
    /// The file, once `completed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    download: Option<String>,
}

impl ExportJobView {
    fn of(export: ExportView) -> Self {
        let own = format!("/api/v1/admin/exports/{}", export.export_id);
        let download = (export.state == "completed").then(|| format!("{own}/download"));
        Self {
            export,
            links: ExportLinks { own, download },
        }
    }
}

/// `POST /api/v1/admin/orders/exports?<the export's query string>`.
pub(crate) async fn create(
    State(api): State<Arc<Api>>,
    caller: Caller,
    client: Client,
    RawQuery(raw): RawQuery,
) -> Result<Accepted<ExportJobView>, Problem> {
    let caller = caller.require(Permission::OrdersView)?;
    let text = raw.clone().unwrap_or_default();
    let (_, query) =
        export::parse_request(pairs(raw)).map_err(|e| Problem::bad_parameter(e.field, e.reason))?;
    let stores = caller.scope().narrow(&query.stores);
    let export_id = Uuid::now_v7();
    let p = &caller.0;
    let mut tx = api.pool.begin().await.map_err(internal)?;
    store::insert(
        &mut tx,
        export_id,
        p.staff_id,
        p.token_id,
        &text,
        stores.as_deref(),
    )
    .await
    .map_err(internal)?;
    let entry = AuditEntry {
        by: By::Staff {
            staff_id: p.staff_id,
            token_id: p.token_id,
            email: &p.email,
        },
        action: "orders.export_job",
        order_id: None,
        store_id: None,
        target: Some(format!("export {export_id}")),
        command_id: None,
        client_addr: client.addr().map(str::to_owned),
        forwarded_for: client.forwarded_for().map(str::to_owned),
        http_status: 202,
        outcome: "accepted",
        detail: Some(format!(
            "export ?{}",
            text.chars().take(1000).collect::<String>()
        )),
    };
    commands::audit(&mut tx, &entry).await.map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    api.exports.notify_one();
    info!(staff = %p.email, %export_id, query = %text, "export job asked for");
    let view = store::view(&api.pool, export_id)
        .await
        .map_err(internal)?
        .ok_or_else(Problem::unavailable)?;
    let view = ExportJobView::of(view);
    let own = view.links.own.clone();
    Accepted::new(view).located(&own)
}

/// `GET /api/v1/admin/exports/{id}`.
pub(crate) async fn show(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Reply<ExportJobView>, Problem> {
    let caller = caller.require(Permission::OrdersView)?;
    let export = visible(&api, &caller, &id).await?;
    Ok(Reply::new(ExportJobView::of(export)))
}

/// `GET /api/v1/admin/exports/{id}/download`: the file, streamed from the document store.
pub(crate) async fn download(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Export, Problem> {
    let caller = caller.require(Permission::OrdersView)?;
    let export = visible(&api, &caller, &id).await?;
    let (Some(key), Some(sha256)) = (export.object_key.as_deref(), export.sha256.as_deref()) else {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "export-not-ready",
            "The export is not written",
            format!(
                "export {id} is {}: download it once it is completed",
                export.state
            ),
        ));
    };
    let stored = api
        .documents
        .get(&object_store::path::Path::from(key))
        .await
        .map_err(|e| {
            error!(error = %e, %key, "export file not readable from the document store");
            Problem::unavailable()
        })?;
    let jsonl = key.ends_with(".jsonl");
    let body = Body::from_stream(
        stored
            .into_stream()
            .map(|r| r.map_err(std::io::Error::other)),
    );
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    let (media, ext) = if jsonl {
        ("application/jsonl", "jsonl")
    } else {
        ("text/csv; charset=utf-8", "csv")
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"orders-{id}.{ext}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{sha256}\"")) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(Export(response))
}

/// The export `id` names, if `caller` may see it; else 404, like one that does not exist.
async fn visible(api: &Api, caller: &Caller, id: &str) -> Result<ExportView, Problem> {
    let not_found = || {
        Problem::new(
            StatusCode::NOT_FOUND,
            "export-not-found",
            "No such export",
            format!("no export {id} that this token may see"),
        )
    };
    let export_id: Uuid = id.parse().map_err(|_| {
        Problem::bad_parameter("id", format!("`{id}` is not an export id (a UUID)"))
    })?;
    let export = store::view(&api.pool, export_id)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    if caller.sees_work_of(export.staff_id) {
        Ok(export)
    } else {
        Err(not_found())
    }
}

fn internal(e: sqlx::Error) -> Problem {
    error!(error = %e, "export job request failed: database");
    Problem::unavailable()
}
