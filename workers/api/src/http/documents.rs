//! Invoice and credit-note PDFs, served from the document store: for staff,
//! `GET /api/v1/admin/orders/{id}/documents/{document_id}` (`orders.view`, the order's store in
//! the caller's scope, else 404 like the order itself); for customers, the same through
//! [`super::customer`], which shares [`serve`].
//!
//! A PDF is served only if it is the one issued: its bytes' SHA-256 must be the one its
//! event announced (projected into the read model). To know that before the first byte
//! goes out, the object is read whole (after checking its size, so a wrong object is refused
//! before it is read); invoices are tens of kilobytes. A mismatch is logged as an error and
//! answered 503: a damaged or replaced object is an operator's matter (`orderly documents
//! migrate --verify` restores it from invoicing's archive), never the caller's download. A
//! document whose object is missing is a 404 problem that says so, and is logged.
//!
//! The answer, a [`Pdf`]: `Content-Type: application/pdf`, `Content-Length`, `ETag` = the
//! SHA-256 (`If-None-Match` with it is answered 304), `Content-Disposition: inline` with the
//! number as the file name, `Cache-Control: private`. The OpenAPI document says so from the
//! type ([`Pdf`]'s [`Answer`] impl).

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use object_store::ObjectStoreExt;
use schemars::SchemaGenerator;
use sha2::{Digest, Sha256};
use tracing::error;
use uuid::Uuid;

use super::auth::Caller;
use super::endpoint::{Answer, AnswerHeader, Content};
use super::{Api, Problem};
use crate::domain::access::Permission;
use crate::store::documents::{self, StoredDocument};

/// A document's PDF as [`serve`] answers it: `200` with the bytes and their headers, or
/// `304 Not Modified` when `If-None-Match` named its `ETag`. Only [`serve`] makes one.
#[derive(Debug)]
pub(crate) struct Pdf(Response);

impl IntoResponse for Pdf {
    fn into_response(self) -> Response {
        self.0
    }
}

impl Answer for Pdf {
    const STATUS: u16 = 200;
    const HEADERS: &'static [AnswerHeader] = &[
        AnswerHeader::DocumentETag,
        AnswerHeader::ContentLength,
        AnswerHeader::ContentDisposition,
        AnswerHeader::CacheControl,
    ];
    const CONDITIONAL: bool = true;

    fn content(_: &mut SchemaGenerator) -> Content {
        Content::Binary("application/pdf")
    }
}

/// `GET /api/v1/admin/orders/{id}/documents/{document_id}`.
pub(crate) async fn admin(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path((id, document_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Pdf, Problem> {
    let caller = caller.require(Permission::OrdersView)?;
    let (order_id, document_id) = ids(&id, &document_id)?;
    let document = documents::find(&api.pool, order_id, document_id, None)
        .await
        .map_err(|e| database(&e))?
        .filter(|d| caller.scope().sees(&d.store_id))
        .ok_or_else(|| not_found(order_id, document_id))?;
    serve(&api, &document, &headers).await
}

/// The order id and document id of a document's path, or a 400 naming the one that is not
/// a UUID.
pub(crate) fn ids(order_id: &str, document_id: &str) -> Result<(Uuid, Uuid), Problem> {
    let order = order_id.parse().map_err(|_| {
        Problem::bad_parameter("id", format!("`{order_id}` is not an order id (a UUID)"))
    })?;
    let document = document_id.parse().map_err(|_| {
        Problem::bad_parameter(
            "document_id",
            format!("`{document_id}` is not a document id (a UUID)"),
        )
    })?;
    Ok((order, document))
}

/// The 404 of a document the caller may not see or that does not exist (the same answer).
pub(crate) fn not_found(order_id: Uuid, document_id: Uuid) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "document-not-found",
        "No such document",
        format!("no document {document_id} of an order {order_id} that this token may see"),
    )
}

/// A database failure, logged; 503.
pub(crate) fn database(e: &sqlx::Error) -> Problem {
    error!(error = %e, "document look-up failed: database");
    Problem::unavailable()
}

/// Answers with `document`'s PDF from the document store, once its bytes are proven to be
/// the ones issued.
pub(crate) async fn serve(
    api: &Api,
    document: &StoredDocument,
    headers: &HeaderMap,
) -> Result<Pdf, Problem> {
    let etag = format!("\"{}\"", document.pdf_sha256);
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        insert(&mut response, header::ETAG, &etag);
        return Ok(Pdf(response));
    }
    let number = document.number.as_str();
    let key = document.key().map_err(|reason| {
        error!(number, %reason, "document has no usable key");
        Problem::unavailable()
    })?;
    let unavailable = |what: &str| {
        error!(number, %key, what, "document not served");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "document-unavailable",
            "Document unavailable",
            "the document cannot be served now; operators have been told",
        )
    };
    let found = match api.documents.get(&key).await {
        Ok(found) => found,
        Err(object_store::Error::NotFound { .. }) => {
            error!(number, %key, "document missing from the document store");
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                "document-missing",
                "Document file missing",
                format!(
                    "document {number} is issued, but its PDF is not in the document store \
                     (operators: `orderly documents migrate`)"
                ),
            ));
        }
        Err(e) => return Err(unavailable(&format!("document store: {e}"))),
    };
    let expected = u64::try_from(document.pdf_size_bytes).unwrap_or(0);
    if found.meta.size != expected {
        return Err(unavailable(&format!(
            "the stored object has {} bytes, the issued PDF {expected}",
            found.meta.size
        )));
    }
    let bytes = found
        .bytes()
        .await
        .map_err(|e| unavailable(&format!("document store: {e}")))?;
    let sha256: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if sha256 != document.pdf_sha256 {
        return Err(unavailable(&format!(
            "SHA-256 mismatch: stored {sha256}, issued {}",
            document.pdf_sha256
        )));
    }
    let length = bytes.len().to_string();
    let mut response = (StatusCode::OK, Body::from(bytes)).into_response();
    insert(&mut response, header::CONTENT_TYPE, "application/pdf");
    insert(&mut response, header::CONTENT_LENGTH, &length);
    insert(&mut response, header::ETAG, &etag);
    insert(&mut response, header::CACHE_CONTROL, "private, no-cache");
    insert(
        &mut response,
        header::CONTENT_DISPOSITION,
        &format!("inline; filename=\"{}\"", document.file_name()),
    );
    Ok(Pdf(response))
}

fn insert(response: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}
