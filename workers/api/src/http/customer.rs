//! The storefronts' customers: `GET /api/v1/store/customer-orders` (their orders, newest
//! first, keyset pages), `…/customer-orders/{id}` (one of them),
//! `…/customer-orders/{id}/documents/{document_id}` (its invoice or credit note as a PDF,
//! served by [`super::documents::serve`] like the staff's download), and their cancellation
//! request, `POST …/customer-orders/{id}/cancel`, with its command at
//! `GET /api/v1/store/customer-commands/{id}` (both the staff actions' code,
//! [`super::actions`], with the customer as who asks).
//!
//! Who calls is a [`Customer`]: a bearer token the storefront minted for its signed-in
//! customer with its store's secret ([`crate::domain::customer_token`]). Every token that
//! does not authenticate — missing, malformed, forged, signed for another store, expired —
//! gets the same 401; the log says which. An order that is not theirs (another customer's,
//! another store's, a marketplace order) is a 404 exactly like a missing one.
//!
//! Rate limits as for staff ([`super::auth`]): an address over its limit is refused before
//! the token is looked at; a token that does not authenticate counts against its address;
//! one that does, against its customer (store and id: every token minted for them shares
//! one budget).

use std::sync::Arc;

use axum::{
    extract::{FromRequestParts, Path, RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
};
use chrono::Utc;
use schemars::JsonSchema;
use serde::Serialize;
use tracing::{error, info};
use uuid::Uuid;

use super::documents::{self, Pdf};
use super::endpoint::Reply;
use super::{Api, Problem, auth};
use crate::domain::rate::Bearer;
use crate::domain::{customer_token, filter, token};
use crate::store::customers::{self, OrderDetail, OrderSummary, Owner};
use crate::store::stats::{self, CustomerStats, Orders};
use crate::store::{documents as stored, secrets};

/// A customer whose token a store's secret signed: whose orders they may read.
#[derive(Debug, Clone)]
pub(crate) struct Customer {
    pub(crate) store_id: String,
    pub(crate) customer_id: String,
}

impl Customer {
    /// Whose orders: the token's store and customer.
    pub(crate) fn owner(&self) -> Owner<'_> {
        Owner {
            store_id: &self.store_id,
            customer_id: &self.customer_id,
        }
    }
}

/// The one answer to every customer token that does not authenticate.
fn refused() -> Problem {
    Problem::unauthenticated(
        "send `Authorization: Bearer <token>` with a current customer token from the store",
    )
}

impl FromRequestParts<Arc<Api>> for Customer {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Self, Problem> {
        let peer = auth::peer(parts);
        auth::not_barred(api, peer)?;
        // Every refusal is counted against the address: over its limit, 429 rather than 401.
        let refuse = |reason: &str| {
            info!(reason, "refused: customer token");
            auth::refusal(api, peer, refused())
        };
        let Some(text) = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(token::bearer)
        else {
            return Err(refuse("missing"));
        };
        let parsed = customer_token::parse(text).map_err(|reason| refuse(reason.as_str()))?;
        let store = parsed.claimed_store().to_owned();
        let valid = secrets::valid(&api.pool, &store).await.map_err(|e| {
            error!(error = %e, "customer authentication failed: database");
            Problem::unavailable()
        })?;
        let valid: Vec<&str> = valid.iter().map(String::as_str).collect();
        let claims = customer_token::verify(parsed, &valid, Utc::now().timestamp())
            .map_err(|reason| refuse(reason.as_str()))?;
        auth::counted(api, &Bearer::customer(&claims.store, &claims.customer))?;
        tracing::debug!(
            store = claims.store,
            customer = claims.customer,
            "customer authenticated"
        );
        Ok(Customer {
            store_id: claims.store,
            customer_id: claims.customer,
        })
    }
}

/// A page of a customer's orders.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "CustomerOrderPage")]
pub(crate) struct OrderPage {
    /// Newest first (`placed_at` descending, then order id).
    orders: Vec<OrderSummary>,
    /// The `cursor` of the next page; `null` on the last.
    next_cursor: Option<String>,
}

/// `GET /api/v1/store/customer-orders`: the customer's orders, newest first.
pub(crate) async fn list(
    State(api): State<Arc<Api>>,
    customer: Customer,
    RawQuery(raw): RawQuery,
) -> Result<Reply<OrderPage>, Problem> {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let page = filter::parse_page(&pairs).map_err(|e| Problem::bad_parameter(e.field, e.reason))?;
    let (orders, next) = customers::list(&api.pool, customer.owner(), page.cursor, page.limit)
        .await
        .map_err(|e| database(&e))?;
    Ok(Reply::new(OrderPage {
        orders,
        next_cursor: next.map(|c| c.encode()),
    }))
}

/// `GET /api/v1/store/customer-orders/{id}`: one of the customer's orders; `ETag` is its
/// status sequence (for `If-Match` on the cancellation request).
pub(crate) async fn detail(
    State(api): State<Arc<Api>>,
    customer: Customer,
    Path(id): Path<String>,
) -> Result<Reply<OrderDetail>, Problem> {
    let order_id: Uuid = id
        .parse()
        .map_err(|_| Problem::bad_parameter("id", format!("`{id}` is not an order id (a UUID)")))?;
    let download = |document_id: Uuid| {
        format!("/api/v1/store/customer-orders/{order_id}/documents/{document_id}")
    };
    let order = customers::detail(&api.pool, customer.owner(), order_id, download)
        .await
        .map_err(|e| database(&e))?
        .ok_or_else(|| {
            Problem::new(
                StatusCode::NOT_FOUND,
                "order-not-found",
                "No such order",
                format!("no order {order_id} of yours"),
            )
        })?;
    let etag = HeaderValue::from_str(&format!("\"{}\"", order.order.status_sequence))
        .map_err(|_| Problem::unavailable())?;
    Ok(Reply::new(order).with_header(header::ETAG, etag))
}

/// `GET /api/v1/store/customer-orders/{id}/documents/{document_id}`: its PDF.
pub(crate) async fn document(
    State(api): State<Arc<Api>>,
    customer: Customer,
    Path((id, document_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Pdf, Problem> {
    let (order_id, document_id) = documents::ids(&id, &document_id)?;
    let document = stored::find(&api.pool, order_id, document_id, Some(customer.owner()))
        .await
        .map_err(|e| documents::database(&e))?
        .ok_or_else(|| documents::not_found(order_id, document_id))?;
    documents::serve(&api, &document, &headers).await
}

fn database(e: &sqlx::Error) -> Problem {
    error!(error = %e, "customer order read failed: database");
    Problem::unavailable()
}

/// `GET /api/v1/store/customer-stats`: the customer's own order statistics in the token's
/// store (their storefront orders, as their list shows them; zeros before their first).
pub(crate) async fn stats(
    State(api): State<Arc<Api>>,
    customer: Customer,
) -> Result<Reply<CustomerStats>, Problem> {
    let found = stats::customer(
        &api.pool,
        &customer.store_id,
        &customer.customer_id,
        Orders::Own,
    )
    .await
    .map_err(|e| {
        error!(error = %e, "customer stats failed: database");
        Problem::unavailable()
    })?;
    Ok(Reply::new(found.unwrap_or_else(|| {
        CustomerStats::none(&customer.store_id, &customer.customer_id)
    })))
}
