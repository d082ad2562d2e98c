//! The webhook endpoint: `POST /webhooks/carriers/{easypost|aftership|shippo}`.
//!
//! One request, in order: the vendor must be configured (a secret), the body at most
//! `max_body_bytes`, the vendor's signature valid (and fresh, where the vendor signs a time),
//! the body the vendor's JSON for a tracking update. Then, in **one transaction**, the
//! delivery's row (vendor, delivery key) and the `shipment.updated` outbox row; after the
//! commit the row is handed to the relay and the vendor gets its 200. A delivery already
//! taken (the vendor's retry, a replay) finds its row: 200, nothing written, nothing
//! published. Nothing slow happens before the answer: publishing is the relay's job.
//!
//! Every refusal is `application/problem+json` (RFC 9457) with `detail`, and `field` where a
//! field is to blame: 401 for signatures (unsigned, wrong, stale), 413 for size, 400 for a
//! body that is not JSON, 422 for JSON we cannot map, 404 for an unknown vendor, 503 for a
//! vendor without a secret and while the database is unavailable (vendors retry on 5xx).
//! Never 500. Each outcome is a log line and a count in `orderly_webhooks_received_total`;
//! refused deliveries that were signed correctly are also recorded in
//! `ingress.refused_deliveries`.

use std::sync::Arc;

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use chrono::Utc;
use orderly_contracts::Envelope;
use orderly_runtime::metrics::Metrics;
use orderly_runtime::outbox::{self, Handoff, OutboxMessage};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tracing::{Instrument, error, info, info_span, warn};
use uuid::Uuid;

use crate::IngressSettings;
use crate::domain::{self, Decision, Invalid, MapOptions, Vendor, signature};
use crate::store::{self, Refusal};

/// What a request handler needs, shared by all requests.
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub(crate) pool: PgPool,
    pub(crate) handoff: Option<Handoff>,
    pub(crate) settings: IngressSettings,
    pub(crate) metrics: Arc<Metrics>,
}

/// The routes: the webhook, and problem+json for everything else.
/// Every outcome a delivery is counted under (`orderly_webhooks_received_total`).
pub(crate) const OUTCOMES: &[&str] = &[
    "accepted",
    "duplicate",
    "ignored",
    "unsigned",
    "bad_signature",
    "stale",
    "invalid",
    "too_large",
    "not_configured",
    "unavailable",
];

pub(crate) fn router(endpoint: Arc<Endpoint>) -> Router {
    Router::new()
        .route("/webhooks/carriers/{vendor}", post(receive))
        .fallback(|| async {
            Problem::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "No such endpoint",
                "carrier webhooks are POSTed to /webhooks/carriers/{easypost|aftership|shippo}",
            )
        })
        .with_state(endpoint)
}

async fn receive(
    State(endpoint): State<Arc<Endpoint>>,
    Path(vendor): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(vendor) = Vendor::parse(&vendor) else {
        return Problem::new(
            StatusCode::NOT_FOUND,
            "unknown-vendor",
            "Unknown carrier webhook",
            format!(
                "`{}` is not a vendor we take webhooks from (easypost, aftership, shippo)",
                domain::normalise::truncate(&vendor, 40)
            ),
        )
        .into_response();
    };
    let span = info_span!("carrier_webhook", %vendor);
    endpoint
        .take(vendor, &method, &headers, body)
        .instrument(span)
        .await
}

impl Endpoint {
    async fn take(
        &self,
        vendor: Vendor,
        method: &Method,
        headers: &HeaderMap,
        body: Body,
    ) -> Response {
        let count = |outcome: &'static str| self.metrics.webhook(vendor.as_str(), outcome);

        let Some(secret) = self.settings.secret(vendor) else {
            count("not_configured");
            warn!("delivery refused: no secret configured for this vendor");
            return Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "vendor-not-configured",
                "Vendor not configured",
                format!(
                    "no secret is configured for {vendor} (ingress.{vendor}.secret): deliveries \
                     cannot be verified and are refused until it is"
                ),
            )
            .vendor(vendor)
            .into_response();
        };

        let body = match self.read_body(headers, body).await {
            Ok(body) => body,
            Err(problem) => {
                count("too_large");
                warn!(
                    limit = self.settings.max_body_bytes,
                    "delivery refused: body too large"
                );
                return problem.vendor(vendor).into_response();
            }
        };

        if let Err(e) = self.verify(vendor, secret, method, headers, &body) {
            count(e.kind());
            warn!(reason = %e, bytes = body.len(), "delivery refused: signature");
            return Problem::new(
                StatusCode::UNAUTHORIZED,
                e.kind().replace('_', "-"),
                "Signature refused",
                e.to_string(),
            )
            .vendor(vendor)
            .into_response();
        }

        let options = MapOptions {
            accept_test_events: self.settings.accept_test_events,
            carrier_aliases: &self.settings.carriers,
        };
        match domain::decode(vendor, &body, &options) {
            Err(invalid) => {
                count("invalid");
                self.refuse(vendor, &body, &invalid).await
            }
            Ok(Decision::Ignore { reason }) => {
                count("ignored");
                info!(%reason, "delivery acknowledged and dropped");
                ok(&json!({"status": "ignored", "reason": reason}))
            }
            Ok(Decision::Publish { key, update }) => {
                match self.publish(vendor, &key, *update).await {
                    Ok((message_id, fresh)) => {
                        count(if fresh { "accepted" } else { "duplicate" });
                        info!(delivery = %key, %message_id, fresh, "delivery taken");
                        let status = if fresh { "accepted" } else { "duplicate" };
                        ok(&json!({"status": status, "message_id": message_id}))
                    }
                    Err(e) => {
                        count("unavailable");
                        error!(error = %e, "delivery not taken: the database is unavailable");
                        let mut response = Problem::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "unavailable",
                            "Try again later",
                            "the delivery could not be recorded; nothing was taken",
                        )
                        .vendor(vendor)
                        .into_response();
                        response
                            .headers_mut()
                            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                        response
                    }
                }
            }
        }
    }

    /// The body, refused past `max_body_bytes` (by its declared length first, so a large
    /// upload is refused before it is read).
    async fn read_body(&self, headers: &HeaderMap, body: Body) -> Result<Bytes, Problem> {
        let limit = self.settings.max_body_bytes;
        let too_large = || {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "Body too large",
                format!("a delivery may have at most {limit} bytes"),
            )
        };
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        // Reading fails past the limit, or when the sender goes away (nobody reads the answer).
        axum::body::to_bytes(body, limit)
            .await
            .map_err(|_| too_large())
    }

    fn verify(
        &self,
        vendor: Vendor,
        secret: &str,
        method: &Method,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), signature::SignatureError> {
        let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let tolerance = i64::try_from(self.settings.tolerance_secs).unwrap_or(i64::MAX);
        let now = Utc::now();
        match vendor {
            Vendor::Easypost => {
                let scheme = signature::easypost(
                    secret,
                    signature::EasypostHeaders {
                        signature: value(signature::EASYPOST_HEADER),
                        signature_v2: value(signature::EASYPOST_V2_HEADER),
                        timestamp: value(signature::EASYPOST_TIMESTAMP_HEADER),
                        path: value(signature::EASYPOST_PATH_HEADER),
                    },
                    method.as_str(),
                    body,
                    now,
                    tolerance,
                )?;
                tracing::debug!(?scheme, "EasyPost signature verified");
                Ok(())
            }
            Vendor::Aftership => {
                signature::aftership(secret, value(signature::AFTERSHIP_HEADER), body)
            }
            Vendor::Shippo => signature::shippo(
                secret,
                value(signature::SHIPPO_HEADER),
                body,
                now,
                tolerance,
            ),
        }
    }

    /// Writes the delivery's row and, if it is new, its outbox row, in one transaction;
    /// hands the committed row to the relay. Returns the message id and whether it is new.
    async fn publish(
        &self,
        vendor: Vendor,
        key: &str,
        update: orderly_contracts::messages::ShipmentUpdated,
    ) -> Result<(Uuid, bool), sqlx::Error> {
        // Without the order id, the carrier and number name the parcel (the contracts
        // README's rule for carriers' `correlation_id`).
        let correlation = format!("{}/{}", update.carrier, update.tracking_number);
        let envelope = Envelope::new(format!("{}:{vendor}", crate::NAME), correlation, update);
        let mut tx = self.pool.begin().await?;
        if let Some(earlier) =
            store::claim_delivery(&mut tx, vendor, key, envelope.message_id, &envelope.payload)
                .await?
        {
            tx.rollback().await?;
            return Ok((earlier, false));
        }
        let written = outbox::insert(&mut tx, &[OutboxMessage::from_envelope(&envelope)]).await?;
        tx.commit().await?;
        if let Some(handoff) = &self.handoff {
            handoff.hand(written);
        }
        Ok((envelope.message_id, true))
    }

    /// Answers a signed delivery we cannot take, and records it for operators.
    async fn refuse(&self, vendor: Vendor, body: &[u8], invalid: &Invalid) -> Response {
        let (status, kind, title) = if invalid.not_json {
            (StatusCode::BAD_REQUEST, "not-json", "Body is not JSON")
        } else {
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "unmappable",
                "Delivery cannot be mapped to shipment.updated",
            )
        };
        let field = (!invalid.field.is_empty()).then_some(invalid.field.as_str());
        warn!(field = field.unwrap_or(""), reason = %invalid.reason, "delivery refused: content");
        let sha = hex::encode(Sha256::digest(body));
        let refusal = Refusal {
            vendor,
            status: status.as_u16(),
            field,
            reason: &invalid.reason,
            body,
            body_sha256: &sha,
        };
        if let Err(e) = store::record_refusal(&self.pool, &refusal).await {
            // The answer stands; only the operator's record is missing (the log line above
            // has it).
            error!(error = %e, "could not record the refused delivery");
        }
        let mut problem = Problem::new(status, kind, title, invalid.to_string()).vendor(vendor);
        problem.field = field.map(str::to_owned);
        problem.into_response()
    }
}

/// A 200 with a small JSON body saying what became of the delivery.
fn ok(body: &serde_json::Value) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

/// An `application/problem+json` answer (RFC 9457).
#[derive(Debug)]
pub(crate) struct Problem {
    status: StatusCode,
    kind: String,
    title: &'static str,
    detail: String,
    vendor: Option<Vendor>,
    field: Option<String>,
}

impl Problem {
    fn new(
        status: StatusCode,
        kind: impl Into<String>,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind: kind.into(),
            title,
            detail: detail.into(),
            vendor: None,
            field: None,
        }
    }

    fn vendor(mut self, vendor: Vendor) -> Self {
        self.vendor = Some(vendor);
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": format!("urn:orderly:ingress:{}", self.kind),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Some(vendor) = self.vendor {
            body["vendor"] = vendor.as_str().into();
        }
        if let Some(field) = self.field {
            body["field"] = field.into();
        }
        (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            )],
            body.to_string(),
        )
            .into_response()
    }
}
