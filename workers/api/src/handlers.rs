//! The projection: each event becomes writes to the read model, in the runtime's
//! transaction (with the inbox row, so a redelivered event has its effect once).
//!
//! Every event names its order, which is the message's lock key: two batches never write
//! one order at the same time, and [`store::projection::ensure_order`] locks the order's
//! row before the [`crate::domain::projection`] rules decide what the event may change.

use std::sync::Arc;

use chrono::Utc;
use orderly_runtime::{Batch, Handler, HandlerContext, HandlerError, Incoming, LockKey};
use sqlx::PgConnection;
use tracing::Instrument;
use uuid::Uuid;

use crate::domain::notice;
use crate::domain::projection as rules;
use crate::input::{ApiInput, FactsChange};
use crate::invite;
use crate::store::projection::{self as store, OrderKey, ShipmentFacts};
use crate::store::{analytics, commands, notifications, products, setups, tracking};

/// The orders whose analytics facts a message or batch may have changed.
#[derive(Debug, Default)]
struct FactsToRefresh {
    /// Facts only.
    facts: Vec<Uuid>,
    /// Facts and lines (an accepted header).
    with_lines: Vec<Uuid>,
}

impl FactsToRefresh {
    fn note(&mut self, input: &ApiInput) {
        let Some(order_id) = input.order_id() else {
            return;
        };
        match input.changes_facts() {
            FactsChange::None => {}
            FactsChange::Facts => self.facts.push(order_id),
            FactsChange::WithLines => self.with_lines.push(order_id),
        }
    }

    /// Recomputes them from the read model as it now is (after every event was projected),
    /// and the rollups by what changed.
    async fn refresh(mut self, conn: &mut PgConnection) -> Result<(), HandlerError> {
        self.with_lines.sort_unstable();
        self.with_lines.dedup();
        self.facts.sort_unstable();
        self.facts.dedup();
        self.facts
            .retain(|id| self.with_lines.binary_search(id).is_err());
        analytics::refresh(conn, &self.with_lines, &self.facts)
            .await
            .map_err(|e| match e {
                analytics::AnalyticsError::Database(e) => HandlerError::from(e),
                // Retried, then dead-lettered with the reason: the rollups need
                // `select rebuild_order_rollups()` (docs/operations.md).
                corrupt @ analytics::AnalyticsError::Corrupt(_) => {
                    HandlerError::Transient(corrupt.into())
                }
            })
    }
}

/// The api worker's handler: the read model's writer, and the one that asks setups'
/// clients to act (with links on `public_url`, [`crate::invite`]).
#[derive(Debug, Clone)]
pub struct ApiHandler {
    public_url: Arc<str>,
}

impl ApiHandler {
    /// A handler whose client links start with `public_url` (the address clients reach this
    /// API at).
    pub fn new(public_url: &str) -> Self {
        Self {
            public_url: Arc::from(public_url),
        }
    }
}

impl Handler for ApiHandler {
    type Input = ApiInput;

    async fn handle(
        &self,
        msg: &Incoming,
        cx: &mut HandlerContext<'_>,
    ) -> Result<(), HandlerError> {
        let input = msg.input::<ApiInput>()?;
        let mut appended = Appended::default();
        project(input, cx.conn, &mut appended).await?;
        invite::follow(cx, &self.public_url, input, Utc::now()).await?;
        appended.write(cx.conn).await?;
        let mut facts = FactsToRefresh::default();
        facts.note(input);
        facts.refresh(cx.conn).await
    }

    /// Each event projected in turn, then the scans and customer messages of the whole batch
    /// in a statement each, and the analytics facts of every order the batch touched in two
    /// statements (with and without their lines), instead of one per event.
    async fn handle_batch(
        &self,
        msgs: &[&Incoming],
        batch: &mut Batch<'_>,
    ) -> Result<(), HandlerError> {
        let mut facts = FactsToRefresh::default();
        let mut appended = Appended::default();
        for msg in msgs {
            let input = msg.input::<ApiInput>()?;
            let span = batch.span(msg);
            project(input, batch.conn, &mut appended)
                .instrument(span.clone())
                .await?;
            invite::follow(&mut batch.context(msg), &self.public_url, input, Utc::now())
                .instrument(span)
                .await?;
            facts.note(input);
        }
        appended.write(batch.conn).await?;
        facts.refresh(batch.conn).await
    }

    async fn lock_keys(
        &self,
        msg: &Incoming,
        _conn: &mut PgConnection,
    ) -> Result<Vec<LockKey>, HandlerError> {
        Ok(match msg.input::<ApiInput>() {
            Ok(input) => input.lock_key().into_iter().collect(),
            Err(_) => Vec::new(),
        })
    }
}

/// How an `order.*` event that names its channel names its order.
macro_rules! order_key {
    ($p:expr) => {
        OrderKey {
            order_id: $p.order_id,
            store_id: $p.store_id.as_str(),
            channel: Some($p.channel),
            marketplace: $p.marketplace.as_deref(),
            external_order_id: &$p.external_order_id,
        }
    };
}

/// An issued document's row from its event (`invoice.issued`, `credit_note.issued`, which
/// share these fields).
macro_rules! document {
    ($p:expr, $kind:literal, $id:expr, $number:expr, $credit:expr) => {
        store::Document {
            document_id: $id,
            order_id: $p.order_id,
            kind: $kind,
            number: $number,
            credit: $credit,
            issued_at: $p.issued_at,
            currency: $p.currency.as_str(),
            vat_treatment: $p.vat_treatment.as_str(),
            totals: &$p.totals,
            pdf: &$p.pdf,
        }
    };
}

/// A notice of the request a `notification.*` event is about (they share these fields), when
/// it is about an order.
macro_rules! notice {
    ($p:expr) => {
        $p.order_id.map(|order_id| notice::Notice {
            request_id: $p.request_id,
            order_id,
            channel: $p.channel.as_str().to_owned(),
            template: $p.template.clone(),
            asked: None,
            sent: None,
            failed: None,
        })
    };
}

/// What events of a batch add that is written a batch at a time: a carrier's scans and the
/// customer's messages (append or merge; nothing else of the batch reads them).
#[derive(Debug, Default)]
struct Appended {
    scans: Vec<tracking::Scan>,
    notices: Vec<notice::Notice>,
}

impl Appended {
    async fn write(self, conn: &mut PgConnection) -> Result<(), HandlerError> {
        tracking::write(conn, &self.scans).await?;
        notifications::write(conn, &notice::merged(self.notices)).await?;
        Ok(())
    }
}

async fn project(
    input: &ApiInput,
    conn: &mut PgConnection,
    appended: &mut Appended,
) -> Result<(), HandlerError> {
    match input {
        ApiInput::OnHold(env) => {
            let p = &env.payload;
            let key = order_key!(p);
            let shown = store::ensure_order(conn, key, env.occurred_at).await?;
            if rules::hold_applies(shown, p.revision) {
                store::write_exceptions(conn, p.order_id, &p.exceptions).await?;
            }
            if rules::provisional_status_applies(shown) {
                let status = orderly_contracts::types::OrderStatus::OnHold;
                store::write_status(conn, p.order_id, status, 0, env.occurred_at).await?;
            }
        }
        ApiInput::Accepted(env) => {
            let p = &env.payload;
            let key = order_key!(p);
            let shown = store::ensure_order(conn, key, p.placed_at).await?;
            if rules::header_applies(shown, p.revision) {
                let header = store::Header {
                    revision: p.revision,
                    placed_at: p.placed_at,
                    currency: p.currency.as_str(),
                    total: p.total.value(),
                    shipping: p.shipping.value(),
                    discount: p.discount.value(),
                    tax: p.tax.map(|t| t.value()),
                    prices_include_tax: p.prices_include_tax,
                    customer_name: &p.customer.name,
                    customer_email: p.customer.email.as_ref().map(|e| e.as_str()),
                    customer: &p.customer,
                    lines: &p.lines,
                    payment: &p.payment,
                };
                store::write_header(conn, p.order_id, &header).await?;
            }
            if rules::addresses_apply(shown, p.revision, 0) {
                store::write_addresses(
                    conn,
                    p.order_id,
                    (p.revision, 0),
                    &p.billing_address,
                    &p.shipping_address,
                )
                .await?;
            }
            if rules::provisional_status_applies(shown) {
                let status = orderly_contracts::types::OrderStatus::Accepted;
                store::write_status(conn, p.order_id, status, 0, env.occurred_at).await?;
            }
        }
        ApiInput::StatusChanged(env) => {
            let p = &env.payload;
            let key = order_key!(p);
            let shown = store::ensure_order(conn, key, env.occurred_at).await?;
            let change = store::StatusChange {
                order_id: p.order_id,
                sequence: p.sequence,
                from: p.from,
                to: p.to,
                reason: p.reason.as_deref(),
                at: env.occurred_at,
            };
            store::record_status_change(conn, &change).await?;
            if rules::status_applies(shown, p.sequence) {
                store::write_status(conn, p.order_id, p.to, p.sequence, env.occurred_at).await?;
            }
            let email = p.customer.email.as_ref().map(|e| e.as_str());
            store::write_contact_if_unknown(conn, p.order_id, &p.customer.name, email).await?;
        }
        ApiInput::AddressChanged(env) => {
            let p = &env.payload;
            let key = OrderKey::unchannelled(p.order_id, &p.store_id, &p.external_order_id);
            let shown = store::ensure_order(conn, key, env.occurred_at).await?;
            if rules::addresses_apply(shown, p.revision, p.amendment) {
                store::write_addresses(
                    conn,
                    p.order_id,
                    (p.revision, p.amendment),
                    &p.billing_address,
                    &p.shipping_address,
                )
                .await?;
            }
        }
        ApiInput::HoldChanged(env) => {
            let p = &env.payload;
            let key = OrderKey::unchannelled(p.order_id, &p.store_id, &p.external_order_id);
            store::ensure_order(conn, key, env.occurred_at).await?;
            store::write_hold(
                conn,
                p.order_id,
                p.held,
                p.sequence,
                p.reason.as_deref(),
                env.occurred_at,
            )
            .await?;
        }
        ApiInput::Cancelled(env) => {
            let p = &env.payload;
            store::ensure_order(conn, order_key!(p), env.occurred_at).await?;
            store::record_cancellation(
                conn,
                env.message_id,
                p.order_id,
                p.scope.as_str(),
                &p.lines,
                &p.reason,
                env.occurred_at,
            )
            .await?;
        }
        ApiInput::Completed(env) => {
            let p = &env.payload;
            store::ensure_order(conn, order_key!(p), env.occurred_at).await?;
            store::record_completion(
                conn,
                p.order_id,
                env.occurred_at,
                p.currency.as_str(),
                p.total.value(),
                &p.invoice_numbers,
            )
            .await?;
        }
        ApiInput::ShipmentRequested(env) => {
            let p = &env.payload;
            let facts = ShipmentFacts {
                warehouse_id: Some(p.warehouse_id.as_str()),
                ship_to: Some(to_json(&p.ship_to)?),
                shipping_method: p.shipping_method.as_deref(),
                items: Some(to_json(&p.items)?),
                requested_at: Some(env.occurred_at),
                ..ShipmentFacts::default()
            };
            store::merge_shipment(conn, p.shipment_id, p.order_id, &facts).await?;
        }
        ApiInput::ShipmentDispatched(env) => {
            let p = &env.payload;
            let facts = ShipmentFacts {
                warehouse_id: Some(p.warehouse_id.as_str()),
                carrier: Some(&p.carrier),
                tracking_number: Some(&p.tracking_number),
                tracking_url: p.tracking_url.as_deref(),
                dispatched_at: Some(p.dispatched_at),
                ..ShipmentFacts::default()
            };
            store::merge_shipment(conn, p.shipment_id, p.order_id, &facts).await?;
        }
        ApiInput::ShipmentDelivered(env) => {
            let p = &env.payload;
            let facts = ShipmentFacts {
                carrier: Some(&p.carrier),
                tracking_number: Some(&p.tracking_number),
                delivered_at: Some(p.delivered_at),
                ..ShipmentFacts::default()
            };
            store::merge_shipment(conn, p.shipment_id, p.order_id, &facts).await?;
        }
        ApiInput::ShipmentException(env) => {
            let p = &env.payload;
            let exception = store::ShipmentProblem {
                status: p.status.as_str(),
                raw_status: &p.raw_status,
                description: p.description.as_deref(),
                at: p.event_at,
            };
            let facts = ShipmentFacts {
                carrier: Some(&p.carrier),
                tracking_number: Some(&p.tracking_number),
                ..ShipmentFacts::default()
            };
            store::merge_shipment(conn, p.shipment_id, p.order_id, &facts).await?;
            store::record_shipment_exception(conn, p.shipment_id, &exception).await?;
        }
        ApiInput::InvoiceIssued(env) => {
            let p = &env.payload;
            let document = document!(p, "invoice", p.invoice_id, &p.invoice_number, None);
            store::record_document(conn, &document).await?;
        }
        ApiInput::CreditNoteIssued(env) => {
            let p = &env.payload;
            let credit = store::CreditOf {
                invoice_id: p.invoice_id,
                invoice_number: &p.invoice_number,
                reason: p.reason.as_str(),
            };
            let number = &p.credit_note_number;
            let document = document!(p, "credit_note", p.credit_note_id, number, Some(credit));
            store::record_document(conn, &document).await?;
        }
        ApiInput::Tracking(env) => {
            let p = &env.payload;
            appended.scans.push(tracking::Scan {
                message_id: env.message_id,
                shipment_id: p.shipment_id,
                carrier: p.carrier.clone(),
                tracking_number: p.tracking_number.clone(),
                vocabulary: p.vocabulary.as_str().to_owned(),
                raw_status: p.raw_status.clone(),
                raw_substatus: p.raw_substatus.clone().unwrap_or_default(),
                description: p.description.clone(),
                location: p.location.as_ref().map(to_json).transpose()?,
                event_at: p.event_at,
                estimated_delivery_at: p.estimated_delivery_at,
            });
        }
        ApiInput::NotificationRequested(env) => {
            let p = &env.payload;
            if let Some(mut n) = notice!(p) {
                n.asked = Some(notice::Asked {
                    recipient: p.recipient.clone(),
                    subject: p.subject.clone(),
                    locale: p.locale.as_str().to_owned(),
                    at: env.occurred_at,
                });
                appended.notices.push(n);
            }
        }
        ApiInput::NotificationSent(env) => {
            let p = &env.payload;
            if let Some(mut n) = notice!(p) {
                n.sent = Some(notice::Sent {
                    at: p.delivered_at,
                    provider: p.provider.clone(),
                });
                appended.notices.push(n);
            }
        }
        ApiInput::NotificationFailed(env) => {
            let p = &env.payload;
            if let Some(mut n) = notice!(p) {
                n.failed = Some(notice::Failed {
                    at: p.failed_at,
                    error: p.error.clone(),
                    permanent: p.permanent,
                });
                appended.notices.push(n);
            }
        }
        ApiInput::Product(env) => {
            let p = &env.payload;
            let product = products::Product {
                sku: p.sku.as_str(),
                title: &p.title,
                gtins: p.gtins.iter().map(|g| g.to_gtin14()).collect(),
                active: p.active,
                updated_at: p.updated_at,
            };
            products::upsert(conn, &product).await?;
            if let Some(template) = &p.setup {
                setups::save_template(conn, p.sku.as_str(), template).await?;
            }
        }
        ApiInput::SetupChanged(env) => {
            let p = &env.payload;
            setups::apply_change(conn, p).await?;
        }
        // Answered by `invite::follow`: the read model keeps the invitation it makes.
        ApiInput::SetupReminderDue(_) => {}
        ApiInput::SetupOverdue(env) => {
            let p = &env.payload;
            setups::mark_overdue(conn, p.setup_id, p.sequence, p.due_at).await?;
        }
        ApiInput::SetupAnswered(env) => {
            // Like an order request's answer: only the API's own commands are recorded.
            if let Some(command_id) = env.causation_id {
                let p = &env.payload;
                let refused: Vec<String> = if p.field_errors.is_empty() {
                    match p.outcome {
                        orderly_contracts::messages::RequestOutcome::Refused => {
                            vec![p.detail.clone()]
                        }
                        _ => Vec::new(),
                    }
                } else {
                    p.field_errors
                        .iter()
                        .map(|e| format!("{}: {}", e.field, e.message))
                        .collect()
                };
                commands::record_answer(
                    conn,
                    command_id,
                    p.outcome.as_str(),
                    &p.detail,
                    &refused,
                    env.occurred_at,
                )
                .await?;
            }
        }
        ApiInput::RequestAnswered(env) => {
            // The answer names the request it answers by causation; only the API's own
            // commands are recorded (a storefront's request is answered too).
            if let Some(command_id) = env.causation_id {
                let p = &env.payload;
                let recorded = commands::record_answer(
                    conn,
                    command_id,
                    p.outcome.as_str(),
                    &p.detail,
                    &p.refused,
                    env.occurred_at,
                )
                .await?;
                if recorded {
                    commands::close_resolved_exception(conn, command_id).await?;
                }
                tracing::debug!(%command_id, outcome = %p.outcome, recorded, "request answered");
            }
        }
    }
    Ok(())
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, HandlerError> {
    serde_json::to_value(value).map_err(|e| HandlerError::permanent(format!("not JSON: {e}")))
}
