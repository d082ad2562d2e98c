//! All of invoicing's SQL. Functions take the connection (the handler's transaction, or a
//! pool for operators' listings); table names are unqualified because the worker's
//! `search_path` is its own schema.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use orderly_contracts::messages::{DocumentBuyer, StoreInvoiceSettingsUpdated};
use orderly_runtime::db;
use rust_decimal::Decimal;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

pub(crate) mod fx;
pub(crate) mod rates;
pub(crate) mod warehouses;

use crate::domain::credit::Credited;
use crate::domain::document::{Document, DocumentKind};

fn corrupt(what: &str, detail: impl fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(format!("invoicing: stored {what} is invalid: {detail}").into())
}

/// Serialises all invoicing work of one store (numbering, the distance-sales total, the
/// held requests): taken first by every handler that writes for a store, held until the
/// transaction ends. Numbers are gap-free without it (the counter row is locked by its
/// update), but the threshold check reads and then adds to the year's total, and that must
/// not interleave between two workers.
pub(crate) async fn lock_store(conn: &mut PgConnection, store_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("select pg_advisory_xact_lock(hashtext('orderly.invoicing'), hashtext($1))")
        .bind(store_id)
        .execute(conn)
        .await?;
    Ok(())
}

// --- settings --------------------------------------------------------------------------------

/// Keeps `settings` if its revision is newer than the stored one. Returns whether it was.
pub(crate) async fn upsert_settings(
    conn: &mut PgConnection,
    settings: &StoreInvoiceSettingsUpdated,
) -> Result<bool, sqlx::Error> {
    let revision = i64::try_from(settings.revision).map_err(|e| corrupt("revision", e))?;
    let done = sqlx::query(
        "insert into store_settings (store_id, revision, settings) values ($1, $2, $3)
         on conflict (store_id) do update
           set revision = excluded.revision, settings = excluded.settings, updated_at = now()
           where store_settings.revision < excluded.revision",
    )
    .bind(settings.store_id.as_str())
    .bind(revision)
    .bind(Json(settings))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The store's settings, if any arrived.
pub(crate) async fn settings(
    conn: &mut PgConnection,
    store_id: &str,
) -> Result<Option<StoreInvoiceSettingsUpdated>, sqlx::Error> {
    let row: Option<Json<StoreInvoiceSettingsUpdated>> =
        sqlx::query_scalar("select settings from store_settings where store_id = $1")
            .bind(store_id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|j| j.0))
}

/// What an invoice request needs to know before it is issued.
#[derive(Debug, Clone)]
pub(crate) struct RequestFacts {
    /// The request, or its order and scope, is invoiced already.
    pub issued: bool,
    /// The store's settings, if any arrived.
    pub settings: Option<StoreInvoiceSettingsUpdated>,
    /// The store's EU distance sales (net EUR) in the year before the supply year.
    pub distance_sales_previous_year: Decimal,
    /// ... and in the supply year.
    pub distance_sales_this_year: Decimal,
    /// Cancellations of the order wait for this invoice.
    pub cancellations_waiting: bool,
}

/// An invoice request to look up: its id, its order and the scope it invoices.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestKey<'a> {
    /// The request.
    pub request_id: Uuid,
    /// Its order.
    pub order_id: Uuid,
    /// `order` or the shipment id.
    pub scope: &'a str,
}

impl<'a> RequestKey<'a> {
    /// The key of request `r`, which invoices `scope`.
    pub(crate) fn of(r: &orderly_contracts::messages::InvoiceRequested, scope: &'a str) -> Self {
        Self {
            request_id: r.request_id,
            order_id: r.order_id,
            scope,
        }
    }
}

/// What a store's invoice requests need to know first (see [`look_up_requests`]).
#[derive(Debug, Clone)]
pub(crate) struct StoreFacts {
    /// The store's settings, if any arrived.
    pub settings: Option<StoreInvoiceSettingsUpdated>,
    /// The store's EU distance sales (net EUR) by calendar year.
    pub distance_sales: std::collections::BTreeMap<i32, Decimal>,
    /// Per request, in the order asked: (invoiced already, cancellations of its order wait).
    pub requests: Vec<(bool, bool)>,
}

impl StoreFacts {
    /// The store's distance sales in `year`.
    pub(crate) fn distance_sales(&self, year: i32) -> Decimal {
        self.distance_sales
            .get(&year)
            .copied()
            .unwrap_or(Decimal::ZERO)
    }

    /// The facts of request `n` (as asked), supplied in `year`.
    pub(crate) fn request(&self, n: usize, year: i32) -> RequestFacts {
        let (issued, cancellations_waiting) = self.requests.get(n).copied().unwrap_or_default();
        RequestFacts {
            issued,
            settings: self.settings.clone(),
            distance_sales_previous_year: self.distance_sales(year - 1),
            distance_sales_this_year: self.distance_sales(year),
            cancellations_waiting,
        }
    }
}

/// Everything a store's invoice requests need to know first, in one round trip: takes the
/// store's lock (as [`lock_store`]), then reads the store's settings and distance sales and,
/// per request, whether it (or its order and scope) is invoiced already and whether
/// cancellations of its order wait. The reads use the statement's snapshot, taken before
/// the lock was granted; a duplicate that slips through that window fails on the unique
/// keys of `invoices` and is retried, never issued twice.
pub(crate) async fn look_up_requests(
    conn: &mut PgConnection,
    store_id: &str,
    requests: &[RequestKey<'_>],
) -> Result<StoreFacts, sqlx::Error> {
    let ids: Vec<Uuid> = requests.iter().map(|r| r.request_id).collect();
    let orders: Vec<Uuid> = requests.iter().map(|r| r.order_id).collect();
    let scopes: Vec<&str> = requests.iter().map(|r| r.scope).collect();
    let row = sqlx::query(
        "with locked as (
           select pg_advisory_xact_lock(hashtext('orderly.invoicing'), hashtext($1))
         ), asked as (
           select * from unnest($2::uuid[], $3::uuid[], $4::text[]) with ordinality
                    as a(request_id, order_id, scope, n)
         )
         select (select settings from store_settings where store_id = $1) as settings,
                array(select year from distance_sales where store_id = $1 order by year)
                  as years,
                array(select net_eur from distance_sales where store_id = $1 order by year)
                  as amounts,
                array(select exists (select 1 from invoices i
                                     where i.request_id = a.request_id
                                        or (i.order_id = a.order_id and i.scope = a.scope))
                      from asked a order by a.n) as issued,
                array(select exists (select 1 from pending_cancellations p
                                     where p.order_id = a.order_id)
                      from asked a order by a.n) as waiting
         from locked",
    )
    .bind(store_id)
    .bind(&ids)
    .bind(&orders)
    .bind(&scopes)
    .fetch_one(conn)
    .await?;
    let years: Vec<i32> = row.try_get("years")?;
    let amounts: Vec<Decimal> = row.try_get("amounts")?;
    let issued: Vec<bool> = row.try_get("issued")?;
    let waiting: Vec<bool> = row.try_get("waiting")?;
    Ok(StoreFacts {
        settings: row
            .try_get::<Option<Json<StoreInvoiceSettingsUpdated>>, _>("settings")?
            .map(|j| j.0),
        distance_sales: years.into_iter().zip(amounts).collect(),
        requests: issued.into_iter().zip(waiting).collect(),
    })
}

// --- numbering and the threshold --------------------------------------------------------------

/// Takes the next `count` numbers of a series (numbers start at 1) and returns the last
/// of them: the numbers taken are `last - count + 1 ..= last`. The counter row stays locked
/// until the transaction ends; a rollback returns the numbers.
pub(crate) async fn next_numbers(
    conn: &mut PgConnection,
    store_id: &str,
    kind: DocumentKind,
    prefix: &str,
    period: i32,
    count: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "insert into number_series (store_id, kind, prefix, period, last_number)
         values ($1, $2, $3, $4, $5)
         on conflict (store_id, kind, prefix, period)
           do update set last_number = number_series.last_number + excluded.last_number
         returning last_number",
    )
    .bind(store_id)
    .bind(kind.as_str())
    .bind(prefix)
    .bind(period)
    .bind(count)
    .fetch_one(conn)
    .await
}

// --- invoices --------------------------------------------------------------------------------

/// An invoice to insert.
#[derive(Debug)]
pub(crate) struct NewInvoice<'a> {
    /// Id.
    pub invoice_id: Uuid,
    /// The store.
    pub store_id: &'a str,
    /// The request answered.
    pub request_id: Uuid,
    /// The order.
    pub order_id: Uuid,
    /// `order` or the shipment id.
    pub scope: &'a str,
    /// The shipment, for per-shipment invoices.
    pub shipment_id: Option<Uuid>,
    /// `on_order` / `on_shipment`.
    pub timing: &'a str,
    /// Issue time.
    pub issued_at: DateTime<Utc>,
    /// Treatment (contract wire form).
    pub vat_treatment: &'a str,
    /// The buyer as sent in `invoice.issued`.
    pub buyer: &'a DocumentBuyer,
    /// The snapshot.
    pub document: &'a Document,
}

/// Inserts an issued invoice (immutable from then on), queues it for rendering with the
/// prepared `message` (see [`enqueue_render`]) and adds `distance_sales` (year, net EUR) to
/// the store's total when it is not zero: one statement.
pub(crate) async fn insert_invoice(
    conn: &mut PgConnection,
    i: &NewInvoice<'_>,
    message: &serde_json::Value,
    distance_sales: (i32, Decimal),
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "with invoice as (
           insert into invoices (invoice_id, store_id, number, request_id, order_id, scope,
                                 shipment_id, timing, issued_at, supply_date, currency,
                                 vat_treatment, vat_rule, vat_reason, vat_id_check, buyer,
                                 document, net, tax, gross)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                   $18, $19, $20)
           returning invoice_id, order_id
         ), job as (
           insert into render_queue (document_id, kind, order_id, message)
           select invoice_id, 'invoice', order_id, $21 from invoice
         ), threshold as (
           insert into distance_sales (store_id, year, net_eur)
           select $2, $22, $23 where $23 <> 0
           on conflict (store_id, year)
             do update set net_eur = distance_sales.net_eur + excluded.net_eur
         )
         select 1",
    )
    .bind(i.invoice_id)
    .bind(i.store_id)
    .bind(&i.document.number)
    .bind(i.request_id)
    .bind(i.order_id)
    .bind(i.scope)
    .bind(i.shipment_id)
    .bind(i.timing)
    .bind(i.issued_at)
    .bind(i.document.supply_date)
    .bind(&i.document.currency)
    .bind(i.vat_treatment)
    .bind(i.document.rule.as_str())
    .bind(&i.document.reason)
    .bind(i.document.vat_id_check.map(|c| c.as_str()))
    .bind(Json(i.buyer))
    .bind(Json(i.document))
    .bind(i.document.net)
    .bind(i.document.tax)
    .bind(i.document.gross)
    .bind(Json(message))
    .bind(distance_sales.0)
    .bind(distance_sales.1)
    .execute(conn)
    .await?;
    Ok(())
}

/// An issued invoice, as crediting needs it.
#[derive(Debug, Clone)]
pub(crate) struct StoredInvoice {
    /// Id.
    pub invoice_id: Uuid,
    /// The store.
    pub store_id: String,
    /// The order.
    pub order_id: Uuid,
    /// `on_order` / `on_shipment`.
    pub timing: String,
    /// Treatment (contract wire form).
    pub vat_treatment: String,
    /// The buyer as sent.
    pub buyer: DocumentBuyer,
    /// The snapshot.
    pub document: Document,
}

/// The invoices of an order, oldest first.
pub(crate) async fn invoices_of_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Vec<StoredInvoice>, sqlx::Error> {
    let rows = sqlx::query(
        "select invoice_id, store_id, order_id, timing, vat_treatment, buyer, document
         from invoices where order_id = $1 order by issued_at, number",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(StoredInvoice {
                invoice_id: r.try_get("invoice_id")?,
                store_id: r.try_get("store_id")?,
                order_id: r.try_get("order_id")?,
                timing: r.try_get("timing")?,
                vat_treatment: r.try_get("vat_treatment")?,
                buyer: r.try_get::<Json<DocumentBuyer>, _>("buyer")?.0,
                document: r.try_get::<Json<Document>, _>("document")?.0,
            })
        })
        .collect()
}

// --- credit notes ----------------------------------------------------------------------------

/// What was credited of an invoice so far, by line.
pub(crate) async fn credited(
    conn: &mut PgConnection,
    invoice_id: Uuid,
) -> Result<BTreeMap<String, Credited>, sqlx::Error> {
    let rows = sqlx::query(
        "select line_id, sum(quantity)::bigint as quantity, sum(net) as net, sum(tax) as tax
         from credited_lines where invoice_id = $1 group by line_id",
    )
    .bind(invoice_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            let q: i64 = r.try_get("quantity")?;
            Ok((
                r.try_get("line_id")?,
                Credited {
                    quantity: u32::try_from(q).map_err(|e| corrupt("credited quantity", e))?,
                    net: r.try_get("net")?,
                    tax: r.try_get("tax")?,
                },
            ))
        })
        .collect()
}

/// Whether any credit note was issued under this key (a refund request or cancellation).
pub(crate) async fn credit_key_used(
    conn: &mut PgConnection,
    key: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("select exists (select 1 from credit_notes where credit_key = $1)")
        .bind(key)
        .fetch_one(conn)
        .await
}

/// A credit note to insert.
#[derive(Debug)]
pub(crate) struct NewCreditNote<'a> {
    /// Id.
    pub credit_note_id: Uuid,
    /// The store.
    pub store_id: &'a str,
    /// The invoice credited.
    pub invoice_id: Uuid,
    /// The refund request id or the cancellation key.
    pub credit_key: Uuid,
    /// `refund` / `cancellation`.
    pub reason_kind: &'a str,
    /// Why.
    pub reason: &'a str,
    /// The order.
    pub order_id: Uuid,
    /// Issue time.
    pub issued_at: DateTime<Utc>,
    /// The snapshot.
    pub document: &'a Document,
}

/// Inserts a credit note and what it credited.
pub(crate) async fn insert_credit_note(
    conn: &mut PgConnection,
    c: &NewCreditNote<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into credit_notes (credit_note_id, store_id, number, invoice_id, credit_key,
                                   reason_kind, reason, order_id, issued_at, document, net,
                                   tax, gross)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(c.credit_note_id)
    .bind(c.store_id)
    .bind(&c.document.number)
    .bind(c.invoice_id)
    .bind(c.credit_key)
    .bind(c.reason_kind)
    .bind(c.reason)
    .bind(c.order_id)
    .bind(c.issued_at)
    .bind(Json(c.document))
    .bind(c.document.net)
    .bind(c.document.tax)
    .bind(c.document.gross)
    .execute(&mut *conn)
    .await?;
    for line in &c.document.lines {
        sqlx::query(
            "insert into credited_lines (credit_note_id, invoice_id, line_id, quantity, net, tax)
             values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(c.credit_note_id)
        .bind(c.invoice_id)
        .bind(&line.line_id)
        .bind(i64::from(line.quantity))
        .bind(line.net)
        .bind(line.tax)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

// --- refused and held requests ---------------------------------------------------------------

/// Records (or updates) why a message was refused or is held.
pub(crate) async fn record_refused(
    conn: &mut PgConnection,
    message_id: Uuid,
    message_type: &str,
    store_id: &str,
    order_id: Option<Uuid>,
    status: &str,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into refused (message_id, message_type, store_id, order_id, status, reason)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (message_id) do update
           set status = excluded.status, reason = excluded.reason, resolved_at = null",
    )
    .bind(message_id)
    .bind(message_type)
    .bind(store_id)
    .bind(order_id)
    .bind(status)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks a held request as issued.
pub(crate) async fn resolve_held(
    conn: &mut PgConnection,
    message_id: Uuid,
    note: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update refused set status = 'issued', resolved_at = now(),
                            reason = reason || ' — ' || $2
         where message_id = $1",
    )
    .bind(message_id)
    .bind(note)
    .execute(conn)
    .await?;
    Ok(())
}

/// Holds an invoice request until its store's settings arrive.
pub(crate) async fn hold_request(
    conn: &mut PgConnection,
    request_id: Uuid,
    store_id: &str,
    message_id: Uuid,
    envelope: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into held_requests (request_id, store_id, message_id, envelope)
         values ($1, $2, $3, $4) on conflict (request_id) do nothing",
    )
    .bind(request_id)
    .bind(store_id)
    .bind(message_id)
    .bind(Json(envelope))
    .execute(conn)
    .await?;
    Ok(())
}

/// A held request.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    /// The request id.
    pub request_id: Uuid,
    /// The message that carried it.
    pub message_id: Uuid,
    /// The envelope as received.
    pub envelope: serde_json::Value,
}

/// Takes a store's held requests (oldest first), removing them.
pub(crate) async fn take_held(
    conn: &mut PgConnection,
    store_id: &str,
) -> Result<Vec<Held>, sqlx::Error> {
    let rows = sqlx::query(
        "delete from held_requests where store_id = $1
         returning request_id, message_id, envelope, received_at",
    )
    .bind(store_id)
    .fetch_all(conn)
    .await?;
    let mut held: Vec<(DateTime<Utc>, Held)> = rows
        .into_iter()
        .map(|r| {
            Ok((
                r.try_get("received_at")?,
                Held {
                    request_id: r.try_get("request_id")?,
                    message_id: r.try_get("message_id")?,
                    envelope: r.try_get::<Json<serde_json::Value>, _>("envelope")?.0,
                },
            ))
        })
        .collect::<Result<_, sqlx::Error>>()?;
    held.sort_by_key(|(at, h)| (*at, h.request_id));
    Ok(held.into_iter().map(|(_, h)| h).collect())
}

// --- rendering -------------------------------------------------------------------------------

/// Queues a numbered document for its PDF; `message` is the issued message to send with it,
/// complete but for `payload.pdf`.
pub(crate) async fn enqueue_render(
    conn: &mut PgConnection,
    document_id: Uuid,
    kind: DocumentKind,
    order_id: Uuid,
    message: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into render_queue (document_id, kind, order_id, message) values ($1, $2, $3, $4)",
    )
    .bind(document_id)
    .bind(kind.as_str())
    .bind(order_id)
    .bind(Json(message))
    .execute(conn)
    .await?;
    Ok(())
}

/// A document claimed for rendering.
#[derive(Debug)]
pub(crate) struct RenderJob {
    /// Queue position.
    pub seq: i64,
    /// The invoice or credit note.
    pub document_id: Uuid,
    /// Its kind.
    pub kind: DocumentKind,
    /// Its store.
    pub store_id: String,
    /// The issued message to complete and send.
    pub message: serde_json::Value,
    /// The snapshot to render.
    pub document: Document,
    /// Earlier failed attempts.
    pub attempts: i32,
}

/// Claims up to `limit` due jobs, oldest first, locked until the transaction ends (other
/// renderers skip them). A job waits while an older job of its order is queued, so an
/// order's documents are sent in the order they were numbered.
pub(crate) async fn claim_renders(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<RenderJob>, sqlx::Error> {
    let rows = sqlx::query(
        "select q.seq, q.document_id, q.kind, q.message, q.attempts,
                coalesce(i.document, c.document) as document,
                coalesce(i.store_id, c.store_id) as store_id
         from render_queue q
         left join invoices i on q.kind = 'invoice' and i.invoice_id = q.document_id
         left join credit_notes c on q.kind = 'credit_note' and c.credit_note_id = q.document_id
         where q.available_at <= now()
           and not exists (select 1 from render_queue e
                           where e.order_id = q.order_id and e.seq < q.seq)
         order by q.seq limit $1
         for update of q skip locked",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            let kind: String = r.try_get("kind")?;
            Ok(RenderJob {
                seq: r.try_get("seq")?,
                document_id: r.try_get("document_id")?,
                kind: DocumentKind::parse(&kind).ok_or_else(|| corrupt("render kind", &kind))?,
                store_id: r
                    .try_get::<Option<String>, _>("store_id")?
                    .ok_or_else(|| corrupt("render job", "its document is missing"))?,
                message: r.try_get::<Json<serde_json::Value>, _>("message")?.0,
                document: r
                    .try_get::<Option<Json<Document>>, _>("document")?
                    .ok_or_else(|| corrupt("render job", "its document is missing"))?
                    .0,
                attempts: r.try_get("attempts")?,
            })
        })
        .collect()
}

/// A rendered PDF, to store.
#[derive(Debug)]
pub(crate) struct RenderedPdf {
    /// The job it finishes.
    pub seq: i64,
    /// The document.
    pub document_id: Uuid,
    /// The bytes (shared with the document store's put).
    pub pdf: bytes::Bytes,
    /// Their SHA-256, hex.
    pub sha256: String,
}

/// Stores the PDFs and removes their jobs, in one statement each.
pub(crate) async fn store_pdfs(
    conn: &mut PgConnection,
    pdfs: &[RenderedPdf],
) -> Result<(), sqlx::Error> {
    if pdfs.is_empty() {
        return Ok(());
    }
    let sized = pdfs
        .iter()
        .map(|p| i32::try_from(p.pdf.len()).map(|size| (p, size)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| corrupt("pdf size", e))?;
    let seqs: Vec<i64> = pdfs.iter().map(|p| p.seq).collect();
    db::unnest(
        "insert into document_pdfs (document_id, pdf, pdf_sha256, pdf_size)
         select * from unnest($1::uuid[], $2::bytea[], $3::text[], $4::int[])",
        &sized,
    )
    .column(|(p, _)| p.document_id)
    .column(|(p, _)| p.pdf.as_ref())
    .column(|(p, _)| p.sha256.as_str())
    .column(|(_, size)| *size)
    .execute(&mut *conn)
    .await?;
    sqlx::query("delete from render_queue where seq = any($1)")
        .bind(&seqs)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records a failed render: the job stays, due again after `retry_in_ms`.
pub(crate) async fn render_failed(
    conn: &mut PgConnection,
    seq: i64,
    error: &str,
    retry_in_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update render_queue
         set attempts = attempts + 1, last_error = $2,
             available_at = now() + make_interval(secs => $3::float8 / 1000)
         where seq = $1",
    )
    .bind(seq)
    .bind(error)
    .bind(retry_in_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// When the next queued job is due, if any.
pub(crate) async fn next_render_due(
    conn: &mut PgConnection,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar("select min(available_at) from render_queue")
        .fetch_one(conn)
        .await
}

// --- operators -------------------------------------------------------------------------------

/// A document's PDF by its number: invoices and credit notes. Numbers are unique per store;
/// when two stores share a prefix, pass `store` (else this is an error naming the stores).
pub async fn pdf_by_number(
    pool: &PgPool,
    number: &str,
    store: Option<&str>,
) -> anyhow::Result<Option<Vec<u8>>> {
    let rows = sqlx::query(
        "select d.store_id, p.pdf from (
           select invoice_id as id, store_id from invoices
           where number = $1 and ($2::text is null or store_id = $2)
           union all
           select credit_note_id, store_id from credit_notes
           where number = $1 and ($2::text is null or store_id = $2)
         ) d left join document_pdfs p on p.document_id = d.id",
    )
    .bind(number)
    .bind(store)
    .fetch_all(pool)
    .await?;
    match rows.len() {
        0 => Ok(None),
        1 => match rows[0].try_get::<Option<Vec<u8>>, _>("pdf")? {
            Some(pdf) => Ok(Some(pdf)),
            None => anyhow::bail!(
                "{number} is issued but its PDF is not rendered yet \
                 (see `orderly invoice list` for a render error)"
            ),
        },
        _ => {
            let stores: Vec<String> = rows
                .iter()
                .map(|r| r.try_get::<String, _>("store_id"))
                .collect::<Result<_, _>>()?;
            anyhow::bail!(
                "number {number} exists in several stores ({}); name the store",
                stores.join(", ")
            )
        }
    }
}

/// An invoice or credit note in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRow {
    /// `invoice` / `credit_note`.
    pub kind: String,
    /// The number.
    pub number: String,
    /// The store.
    pub store_id: String,
    /// The order.
    pub order_id: Uuid,
    /// Issue time.
    pub issued_at: DateTime<Utc>,
    /// Supply date (the credited invoice's, for credit notes).
    pub supply_date: NaiveDate,
    /// Currency.
    pub currency: String,
    /// VAT rule.
    pub vat_rule: String,
    /// Net.
    pub net: Decimal,
    /// VAT.
    pub tax: Decimal,
    /// Gross.
    pub gross: Decimal,
    /// The PDF: its size, or why there is none yet.
    pub pdf: PdfState,
}

/// Where a document's PDF is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PdfState {
    /// Rendered and stored, this many bytes.
    Stored(i32),
    /// Waiting for the renderer; `last_error` when an attempt failed.
    Pending {
        /// Failed attempts.
        attempts: i32,
        /// Why the last one failed.
        last_error: Option<String>,
    },
}

impl fmt::Display for PdfState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stored(size) => write!(f, "{size} bytes"),
            Self::Pending {
                last_error: None, ..
            } => f.write_str("PDF pending"),
            Self::Pending {
                attempts,
                last_error: Some(e),
            } => write!(f, "PDF not rendered, {attempts} attempts failed: {e}"),
        }
    }
}

impl fmt::Display for DocumentRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<11} {:<20} {:<12} {} supply {} {:>12} {} net {:>12} VAT {:>10} {:<30} order {} ({})",
            self.kind,
            self.number,
            self.store_id,
            self.issued_at.format("%Y-%m-%d %H:%M"),
            self.supply_date,
            self.gross,
            self.currency,
            self.net,
            self.tax,
            self.vat_rule,
            self.order_id,
            self.pdf
        )
    }
}

/// The latest invoices and credit notes, newest first, optionally of one store.
pub async fn list_invoices(
    pool: &PgPool,
    store: Option<&str>,
    limit: i64,
) -> anyhow::Result<Vec<DocumentRow>> {
    let rows = sqlx::query(
        "select d.*, p.pdf_size, q.attempts, q.last_error from (
           select 'invoice' as kind, invoice_id as id, number, store_id, order_id, issued_at,
                  supply_date, currency, vat_rule, net, tax, gross
           from invoices where $1::text is null or store_id = $1
           union all
           select 'credit_note', c.credit_note_id, c.number, c.store_id, c.order_id, c.issued_at,
                  i.supply_date, i.currency, i.vat_rule, c.net, c.tax, c.gross
           from credit_notes c join invoices i using (invoice_id)
           where $1::text is null or c.store_id = $1
         ) d
         left join document_pdfs p on p.document_id = d.id
         left join render_queue q on q.document_id = d.id
         order by issued_at desc, number desc limit $2",
    )
    .bind(store)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(DocumentRow {
                kind: r.try_get("kind")?,
                number: r.try_get("number")?,
                store_id: r.try_get("store_id")?,
                order_id: r.try_get("order_id")?,
                issued_at: r.try_get("issued_at")?,
                supply_date: r.try_get("supply_date")?,
                currency: r.try_get("currency")?,
                vat_rule: r.try_get("vat_rule")?,
                net: r.try_get("net")?,
                tax: r.try_get("tax")?,
                gross: r.try_get("gross")?,
                pdf: match r.try_get::<Option<i32>, _>("pdf_size")? {
                    Some(size) => PdfState::Stored(size),
                    None => PdfState::Pending {
                        attempts: r.try_get::<Option<i32>, _>("attempts")?.unwrap_or(0),
                        last_error: r.try_get("last_error")?,
                    },
                },
            })
        })
        .collect()
}

/// A refused or held request in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedRow {
    /// The message.
    pub message_id: Uuid,
    /// Its type.
    pub message_type: String,
    /// The store.
    pub store_id: String,
    /// The order, if known.
    pub order_id: Option<Uuid>,
    /// `held`, `refused` or `issued` (a held request issued later).
    pub status: String,
    /// Why.
    pub reason: String,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
}

impl fmt::Display for RefusedRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:<8} {:<24} store {} order {} message {}: {}",
            self.received_at.format("%Y-%m-%d %H:%M:%S"),
            self.status,
            self.message_type,
            self.store_id,
            self.order_id
                .map_or_else(|| "-".to_owned(), |o| o.to_string()),
            self.message_id,
            self.reason
        )
    }
}

/// Refused and held requests, newest first; `open_only` leaves out held requests that were
/// issued since.
pub async fn list_refused(
    pool: &PgPool,
    store: Option<&str>,
    open_only: bool,
    limit: i64,
) -> anyhow::Result<Vec<RefusedRow>> {
    let rows = sqlx::query(
        "select message_id, message_type, store_id, order_id, status, reason, received_at
         from refused
         where ($1::text is null or store_id = $1) and (not $2 or status <> 'issued')
         order by received_at desc, id desc limit $3",
    )
    .bind(store)
    .bind(open_only)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(RefusedRow {
                message_id: r.try_get("message_id")?,
                message_type: r.try_get("message_type")?,
                store_id: r.try_get("store_id")?,
                order_id: r.try_get("order_id")?,
                status: r.try_get("status")?,
                reason: r.try_get("reason")?,
                received_at: r.try_get("received_at")?,
            })
        })
        .collect()
}

// --- cancellations waiting for their invoice ---------------------------------------------------

/// A cancellation kept until the order's whole-order invoice exists.
#[derive(Debug, Clone)]
pub(crate) struct PendingCancellation {
    /// The cancel request id, or the message id when there is none.
    pub cancel_key: Uuid,
    /// The cancel request, if any.
    pub request_id: Option<Uuid>,
    /// `order` or `lines`.
    pub scope: String,
    /// `(line id, units)`.
    pub lines: Vec<(String, u32)>,
    /// Why.
    pub reason: String,
}

/// Keeps a cancellation for an order not invoiced yet (once per key).
pub(crate) async fn keep_cancellation(
    conn: &mut PgConnection,
    order_id: Uuid,
    store_id: &str,
    c: &PendingCancellation,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into pending_cancellations (cancel_key, order_id, store_id, request_id, scope,
                                            lines, reason)
         values ($1, $2, $3, $4, $5, $6, $7) on conflict (cancel_key) do nothing",
    )
    .bind(c.cancel_key)
    .bind(order_id)
    .bind(store_id)
    .bind(c.request_id)
    .bind(&c.scope)
    .bind(Json(&c.lines))
    .bind(&c.reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes (removes) the cancellations kept for an order, oldest first.
pub(crate) async fn take_cancellations(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Vec<PendingCancellation>, sqlx::Error> {
    let rows = sqlx::query(
        "delete from pending_cancellations where order_id = $1
         returning cancel_key, request_id, scope, lines, reason, received_at",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    let mut out: Vec<(DateTime<Utc>, PendingCancellation)> = rows
        .into_iter()
        .map(|r| {
            Ok((
                r.try_get("received_at")?,
                PendingCancellation {
                    cancel_key: r.try_get("cancel_key")?,
                    request_id: r.try_get("request_id")?,
                    scope: r.try_get("scope")?,
                    lines: r.try_get::<Json<Vec<(String, u32)>>, _>("lines")?.0,
                    reason: r.try_get("reason")?,
                },
            ))
        })
        .collect::<Result<_, sqlx::Error>>()?;
    out.sort_by_key(|(at, c)| (*at, c.cancel_key));
    Ok(out.into_iter().map(|(_, c)| c).collect())
}
