//! The invoicing handler: decode, decide, number and store the document with its prepared
//! issued message, in the message's transaction; the PDF is rendered and the message sent
//! by the renderer ([`crate::render`]), outside the store's lock.
//!
//! Every message is keyed by its store ([`InvoicingHandler::lock_keys`]): the consumer takes
//! the keys of a whole batch sorted before any handler runs (decision 0004), so batches that
//! touch the same stores queue behind each other and never deadlock. Each handler also takes
//! the store's own lock ([`store::lock_store`]) before it writes, so numbering, the
//! distance-sales total and held requests of one store are serialised across workers
//! whatever the runtime does; different stores are independent.

use crate::domain::language::Label;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use chrono::{Datelike, Utc};
use orderly_contracts::messages::{
    Address, CancellationScope, CreditNoteIssued, CreditReason, DocumentBuyer, DocumentTotals,
    InvoiceIssued, InvoiceRequested, InvoiceTiming, OrderCancelled, OrderRefundRequested,
    StoreInvoiceSettingsUpdated, TaxBreakdown, VatCategoryCode, WarehouseUpserted,
};
use orderly_contracts::types::{Amount, TaxRate};
use orderly_contracts::{Envelope, Message, decode_raw};
use orderly_runtime::{Batch, Handler, HandlerContext, HandlerError, Incoming, LockKey};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use tracing::{info, warn};
use uuid::Uuid;

use crate::domain::amounts::{self, PricedLine};
use crate::domain::credit::{self, CreditRequest, CreditableInvoice};
use crate::domain::document::{CreditedInvoice, Document, DocumentKind, EinvoiceData, Party};
use crate::domain::language::Language;
use crate::domain::rates::{RateTable, Rates};
use crate::domain::vat::RegistryAnswer;
use crate::domain::{self, Context};
use crate::render;
use crate::store::{self, StoredInvoice};
use crate::vies::{FormatOnly, VatIdRegistry};

/// Invoicing's message handler. Holds the VAT id registry and the rate data every store
/// uses (loaded from the configured file at start, refreshed when another file is loaded);
/// state lives in the schema.
#[derive(Debug, Clone)]
pub struct InvoicingHandler {
    registry: Arc<dyn VatIdRegistry>,
    rates: SharedRates,
}

/// The rate data in force: the rows every store uses and each store's own rows, swapped
/// whole when another file or a store's rows are loaded (read by the handler without a
/// statement: a query per batch, JIT-compiled by PostgreSQL under load, cost 15 ms an
/// invoice in the benchmark).
#[derive(Debug, Clone)]
pub struct SharedRates(Arc<RwLock<RatesInForce>>);

/// What [`SharedRates`] holds.
#[derive(Debug, Clone, Default)]
pub struct RatesInForce {
    /// The rows every store uses.
    pub base: Arc<RateTable>,
    /// Each store's own rows.
    pub stores: Arc<HashMap<String, Arc<RateTable>>>,
}

impl SharedRates {
    /// Starts with `table` and no store rows.
    pub fn new(table: RateTable) -> Self {
        Self::of(Arc::new(table))
    }

    /// Starts with the shipped data (parsed once per process) and no store rows.
    pub fn shipped() -> Self {
        static SHIPPED: std::sync::LazyLock<Arc<RateTable>> =
            std::sync::LazyLock::new(|| Arc::new(RateTable::shipped().clone()));
        Self::of(Arc::clone(&SHIPPED))
    }

    fn of(base: Arc<RateTable>) -> Self {
        Self(Arc::new(RwLock::new(RatesInForce {
            base,
            stores: Arc::default(),
        })))
    }

    /// What is in force.
    pub fn current(&self) -> RatesInForce {
        match self.0.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `table` in force for every store.
    pub fn replace(&self, table: RateTable) {
        let table = Arc::new(table);
        match self.0.write() {
            Ok(mut t) => t.base = table,
            Err(poisoned) => poisoned.into_inner().base = table,
        }
    }

    /// Puts the stores' own rows in force.
    pub fn replace_stores(&self, stores: HashMap<String, RateTable>) {
        let stores = Arc::new(stores.into_iter().map(|(k, v)| (k, Arc::new(v))).collect());
        match self.0.write() {
            Ok(mut t) => t.stores = stores,
            Err(poisoned) => poisoned.into_inner().stores = stores,
        }
    }
}

/// What the decisions of one store's requests read besides the request: the rate data (the
/// store's own rows over the shared ones) and the addresses of the warehouses they name.
struct Inputs {
    base: Arc<RateTable>,
    store: Option<Arc<RateTable>>,
    warehouses: HashMap<String, Address>,
    fx: crate::domain::fx::FxTable,
}

impl Inputs {
    async fn read(
        h: &InvoicingHandler,
        conn: &mut PgConnection,
        store_id: &str,
        requests: &[&InvoiceRequested],
    ) -> Result<Self, HandlerError> {
        let ids: Vec<&str> = requests
            .iter()
            .filter_map(|r| r.warehouse_id.as_ref().map(|w| w.as_str()))
            .collect();
        let rates = h.rates.current();
        Ok(Self {
            store: rates.stores.get(store_id).cloned(),
            base: rates.base,
            warehouses: store::warehouses::addresses(conn, &ids).await?,
            // Read only when a conversion needs them (`with_fx`).
            fx: crate::domain::fx::FxTable::default(),
        })
    }

    /// The ECB's reference rates of the week before `first` up to today, for VAT in the
    /// national currency (Art. 230): read only for a request that needs a conversion.
    async fn with_fx(
        &mut self,
        conn: &mut PgConnection,
        first: chrono::NaiveDate,
    ) -> Result<(), HandlerError> {
        self.fx = store::fx::rates_between(conn, first, Utc::now().date_naive()).await?;
        Ok(())
    }

    fn rates(&self) -> Rates<'_> {
        Rates {
            base: &self.base,
            store: self.store.as_deref(),
        }
    }
}

impl Default for InvoicingHandler {
    fn default() -> Self {
        Self::new()
    }
}

impl InvoicingHandler {
    /// A handler that checks VAT ids by format only, with the shipped rate data.
    pub fn new() -> Self {
        Self {
            registry: Arc::new(FormatOnly),
            rates: SharedRates::shipped(),
        }
    }

    /// A handler that asks `registry` (a VIES client) about buyers' VAT ids.
    pub fn with_registry(registry: Arc<dyn VatIdRegistry>) -> Self {
        Self {
            registry,
            ..Self::new()
        }
    }

    /// The same handler deciding with `rates` (the worker's loaded rate file).
    pub fn with_rates(self, rates: SharedRates) -> Self {
        Self { rates, ..self }
    }

    /// The rate data it decides with.
    pub fn rates(&self) -> &SharedRates {
        &self.rates
    }
}

orderly_runtime::inputs! {
    /// What the invoicing worker consumes: its queue in the routing table receives exactly
    /// these (the host checks it before starting the worker).
    pub enum InvoicingInput {
        /// An order or shipment to invoice.
        Requested(InvoiceRequested),
        /// A store's seller details and policy (highest revision wins).
        Settings(StoreInvoiceSettingsUpdated),
        /// A refund: a credit note against the invoice.
        RefundRequested(OrderRefundRequested),
        /// A cancellation: its invoiced part is credited.
        Cancelled(OrderCancelled),
        /// A warehouse's address: where supplies from it start for VAT.
        Warehouse(WarehouseUpserted),
    }
}

use InvoicingInput as Input;

impl Input {
    /// What a message is about, as its lock: a store, or a warehouse.
    fn lock_key(&self) -> LockKey {
        match self {
            Input::Warehouse(env) => {
                LockKey::exclusive("warehouse", env.payload.warehouse_id.as_str())
            }
            other => LockKey::exclusive("store", other.store_id().unwrap_or_default()),
        }
    }

    /// The store a message is about (`None` for a warehouse).
    fn store_id(&self) -> Option<&str> {
        match self {
            Input::Requested(env) => Some(env.payload.store_id.as_str()),
            Input::Settings(env) => Some(env.payload.store_id.as_str()),
            Input::RefundRequested(env) => Some(env.payload.store_id.as_str()),
            Input::Cancelled(env) => Some(env.payload.store_id.as_str()),
            Input::Warehouse(_) => None,
        }
    }
}

impl Handler for InvoicingHandler {
    type Input = InvoicingInput;

    async fn handle(
        &self,
        msg: &Incoming,
        cx: &mut HandlerContext<'_>,
    ) -> Result<(), HandlerError> {
        match msg.input::<Input>()? {
            Input::Requested(env) => invoice_requested(self, cx, env).await,
            Input::Settings(env) => settings_updated(self, cx, env).await,
            Input::RefundRequested(env) => refund_requested(cx, env).await,
            Input::Cancelled(env) => order_cancelled(cx, env).await,
            Input::Warehouse(env) => {
                if store::warehouses::upsert(cx.conn, &env.payload).await? {
                    info!(warehouse_id = %env.payload.warehouse_id, "warehouse address kept");
                } else {
                    info!("older or repeated warehouse ignored");
                }
                Ok(())
            }
        }
    }

    /// Invoice requests of a store that nothing else in the batch is about are issued
    /// together, per store ([`issue_together`]); everything else follows one at a time, in
    /// arrival order. Stores are independent, so this keeps every store's messages in order.
    async fn handle_batch(
        &self,
        msgs: &[&Incoming],
        batch: &mut Batch<'_>,
    ) -> Result<(), HandlerError> {
        // The store of each invoice request (none for anything else, or what does not decode).
        fn requested_store(m: &Incoming) -> Option<&str> {
            match m.input::<Input>() {
                Ok(Input::Requested(env)) => Some(env.payload.store_id.as_str()),
                _ => None,
            }
        }
        let others: BTreeSet<&str> = msgs
            .iter()
            .filter(|m| requested_store(m).is_none())
            .filter_map(|m| m.input::<Input>().ok().and_then(Input::store_id))
            .collect();
        let mut groups: BTreeMap<&str, Vec<&Incoming>> = BTreeMap::new();
        for msg in msgs {
            if let Some(store) = requested_store(msg).filter(|s| !others.contains(s)) {
                groups.entry(store).or_default().push(msg);
            }
        }
        groups.retain(|_, group| group.len() > 1);
        for group in groups.values() {
            issue_together(self, group, batch).await?;
        }
        for msg in msgs {
            if !requested_store(msg).is_some_and(|s| groups.contains_key(s)) {
                batch.handle_one(self, msg).await?;
            }
        }
        Ok(())
    }

    /// Every message invoicing handles is about one store (its settings, its number
    /// series, its distance-sales total, the invoices it credits): the store is the key,
    /// exactly the entity `store::lock_store` locks. Taken sorted for the whole batch by the
    /// consumer, so batches touching several stores queue instead of deadlocking.
    async fn lock_keys(
        &self,
        msg: &Incoming,
        _conn: &mut PgConnection,
    ) -> Result<Vec<LockKey>, HandlerError> {
        Ok(msg
            .input::<Input>()
            .map(|input| vec![input.lock_key()])
            .unwrap_or_default())
    }
}

fn amount(d: Decimal) -> Result<Amount, HandlerError> {
    Amount::new(d).map_err(|e| HandlerError::permanent(format!("amount {d}: {e}")))
}

/// The document's totals with its breakdown per VAT category and rate (the e-invoice's:
/// a zero-rated and an exempt share are two rows, as EN 16931 has them).
fn totals(doc: &Document) -> Result<DocumentTotals, HandlerError> {
    Ok(DocumentTotals {
        net: amount(doc.net)?,
        tax: amount(doc.tax)?,
        gross: amount(doc.gross)?,
        breakdown: crate::einvoice::categories(doc)
            .iter()
            .map(|c| {
                Ok(TaxBreakdown {
                    rate: TaxRate::parse(&c.rate.normalize().to_string())
                        .map_err(|e| HandlerError::permanent(format!("rate {}: {e}", c.rate)))?,
                    category: Some(category_code(c.code)),
                    net: amount(c.basis)?,
                    tax: amount(c.tax)?,
                })
            })
            .collect::<Result<_, HandlerError>>()?,
    })
}

/// The contract's name for an e-invoice category.
fn category_code(code: crate::einvoice::VatCode) -> VatCategoryCode {
    use crate::einvoice::VatCode;
    match code {
        VatCode::S => VatCategoryCode::Standard,
        VatCode::Z => VatCategoryCode::ZeroRated,
        VatCode::E => VatCategoryCode::Exempt,
        VatCode::K => VatCategoryCode::IntraCommunity,
        VatCode::G => VatCategoryCode::Export,
    }
}

/// The issued message of a document, checked against its contract, for its render job:
/// the renderer sends it once the PDF is stored ([`crate::render`]).
fn prepare<P: Message + orderly_contracts::Validate>(
    cx: &HandlerContext<'_>,
    order_id: Uuid,
    payload: P,
) -> Result<serde_json::Value, HandlerError> {
    let envelope = cx.defer_valid(order_id.to_string(), payload)?;
    serde_json::to_value(&envelope)
        .map_err(|e| HandlerError::permanent(format!("prepared {}: {e}", P::TYPE)))
}

/// Takes the next number of the store's series of `kind`.
async fn take_number(
    cx: &mut HandlerContext<'_>,
    settings: &StoreInvoiceSettingsUpdated,
    kind: DocumentKind,
    year: i32,
) -> Result<String, HandlerError> {
    let mut numbers = take_numbers(cx.conn, settings, kind, year, 1).await?;
    numbers
        .pop()
        .ok_or_else(|| HandlerError::transient(anyhow::anyhow!("no number taken")))
}

/// Takes the next `count` numbers of the store's series of `kind`, formatted, in order.
async fn take_numbers(
    conn: &mut PgConnection,
    settings: &StoreInvoiceSettingsUpdated,
    kind: DocumentKind,
    year: i32,
    count: usize,
) -> Result<Vec<String>, HandlerError> {
    let prefix = match kind {
        DocumentKind::Invoice => &settings.invoice_number_prefix,
        DocumentKind::CreditNote => &settings.credit_note_number_prefix,
    };
    let yearly = settings.number_yearly_reset.then_some(year);
    let count = i64::try_from(count).map_err(|e| HandlerError::permanent(e.to_string()))?;
    let last = store::next_numbers(
        conn,
        settings.store_id.as_str(),
        kind,
        prefix,
        yearly.unwrap_or(0),
        count,
    )
    .await?;
    Ok((last - count + 1..=last)
        .map(|n| domain::format_number(prefix, yearly, settings.number_digits, n))
        .collect())
}

// --- store.invoice_settings_updated ------------------------------------------------------------

#[tracing::instrument(skip_all, fields(store_id = %env.payload.store_id, revision = env.payload.revision))]
async fn settings_updated(
    h: &InvoicingHandler,
    cx: &mut HandlerContext<'_>,
    env: &Envelope<StoreInvoiceSettingsUpdated>,
) -> Result<(), HandlerError> {
    let s = &env.payload;
    store::lock_store(cx.conn, s.store_id.as_str()).await?;
    if !store::upsert_settings(cx.conn, s).await? {
        info!("older or repeated store settings ignored");
        return Ok(());
    }
    info!("store invoice settings updated");
    for held in store::take_held(cx.conn, s.store_id.as_str()).await? {
        let raw = serde_json::to_vec(&held.envelope)
            .map_err(|e| HandlerError::permanent(format!("held request: {e}")))?;
        let request = decode_raw(&raw)
            .and_then(|r| r.decode_valid::<InvoiceRequested>())
            .map_err(|e| {
                HandlerError::permanent(format!("held request {}: {e}", held.request_id))
            })?;
        let facts = look_up(cx, &request).await?;
        let issued = if facts.issued {
            Ok(())
        } else {
            issue_invoice(h, cx, &request, s, &facts).await
        };
        match issued {
            Ok(()) => {
                store::resolve_held(cx.conn, held.message_id, "issued when the settings arrived")
                    .await?;
                info!(request_id = %held.request_id, "held invoice request issued");
            }
            // Refused on record (status `refused`, with the reason) by `issue_invoice`; the
            // settings and the other held requests go on.
            Err(HandlerError::Rejected(reason)) => {
                warn!(request_id = %held.request_id, reason, "held invoice request refused");
            }
            Err(other) => return Err(other),
        }
    }
    Ok(())
}

// --- invoice.requested -------------------------------------------------------------------------

fn scope_of(r: &InvoiceRequested) -> String {
    match (r.timing, r.shipment_id) {
        (InvoiceTiming::OnShipment, Some(id)) => id.to_string(),
        _ => "order".to_owned(),
    }
}

/// The tax point: the order date for invoices on order, the dispatch (when fulfillment
/// asked) for invoices per shipment.
fn supply_date_of(env: &Envelope<InvoiceRequested>) -> chrono::NaiveDate {
    match env.payload.timing {
        InvoiceTiming::OnOrder => env.payload.placed_at.date_naive(),
        InvoiceTiming::OnShipment => env.occurred_at.date_naive(),
    }
}

/// Locks the store and reads what issuing needs (one round trip).
async fn look_up(
    cx: &mut HandlerContext<'_>,
    env: &Envelope<InvoiceRequested>,
) -> Result<store::RequestFacts, HandlerError> {
    let r = &env.payload;
    let scope = scope_of(r);
    let key = store::RequestKey::of(r, &scope);
    let facts = store::look_up_requests(cx.conn, r.store_id.as_str(), &[key]).await?;
    Ok(facts.request(0, supply_date_of(env).year()))
}

/// What the VAT decision of a request needs besides the request and the settings: the
/// supply date, the registry's answer about the buyer's VAT id and the distance sales so far.
async fn context_for<'a>(
    h: &InvoicingHandler,
    env: &'a Envelope<InvoiceRequested>,
    inputs: &'a Inputs,
    distance_sales_previous_year: Decimal,
    distance_sales_this_year: Decimal,
) -> Context<'a> {
    let r = &env.payload;
    let registry = match (&r.buyer.vat_id, r.buyer.is_business) {
        (Some(id), true) => h.registry.check(id).await,
        _ => RegistryAnswer::NotChecked,
    };
    let warehouse = r.warehouse_id.as_ref().map(|w| w.as_str());
    let dispatch_from = warehouse.and_then(|w| inputs.warehouses.get(w));
    if let (Some(w), None) = (warehouse, dispatch_from) {
        warn!(
            warehouse_id = w,
            "no warehouse.upserted for this warehouse yet: the store's address is taken as where the goods leave from"
        );
    }
    Context {
        supply_date: supply_date_of(env),
        registry,
        distance_sales_previous_year,
        distance_sales_this_year,
        dispatch_from,
        unknown_warehouse: warehouse.filter(|_| dispatch_from.is_none()),
        rates: inputs.rates(),
        fx: Some(&inputs.fx),
    }
}

/// Issues the invoices of several requests of one store together: what
/// [`invoice_requested`] does for each, in arrival order, with one look-up under the store's
/// lock and one numbering statement for all of them (the store's serial part shrinks from
/// three statements per invoice to one). Anything out of the ordinary (no settings yet, a
/// request the rules refuse, cancellations waiting for an invoice) is left to
/// [`invoice_requested`], one request at a time, before anything is written.
async fn issue_together(
    h: &InvoicingHandler,
    group: &[&Incoming],
    batch: &mut Batch<'_>,
) -> Result<(), HandlerError> {
    let envs = group
        .iter()
        .map(|m| match m.input::<Input>()? {
            Input::Requested(env) => Ok(env),
            _ => Err(HandlerError::permanent("not an invoice.requested")),
        })
        .collect::<Result<Vec<_>, HandlerError>>()?;
    let Some(first) = envs.first() else {
        return Ok(());
    };
    let store_id = first.payload.store_id.as_str();
    let scopes: Vec<String> = envs.iter().map(|e| scope_of(&e.payload)).collect();
    let keys: Vec<store::RequestKey<'_>> = envs
        .iter()
        .zip(&scopes)
        .map(|(e, scope)| store::RequestKey::of(&e.payload, scope))
        .collect();
    let facts = store::look_up_requests(batch.conn, store_id, &keys).await?;
    let Some(settings) = &facts.settings else {
        return handle_each(h, group, batch).await;
    };
    let requests: Vec<&InvoiceRequested> = envs.iter().map(|e| &e.payload).collect();
    let inputs = Inputs::read(h, batch.conn, store_id, &requests).await?;

    let mut seen_requests = BTreeSet::new();
    let mut seen_scopes = BTreeSet::new();
    let mut added: BTreeMap<i32, Decimal> = BTreeMap::new();
    let mut plans = Vec::new();
    for (n, env) in envs.iter().enumerate() {
        let r = &env.payload;
        let (issued, cancellations_waiting) = facts.requests.get(n).copied().unwrap_or_default();
        // A second request for what an earlier one of the batch invoices finds it issued.
        let new_request = seen_requests.insert(r.request_id);
        let new_scope = seen_scopes.insert((r.order_id, scopes[n].as_str()));
        if issued || !new_request || !new_scope {
            info!(order_id = %r.order_id, request_id = %r.request_id, "already invoiced; nothing to do");
            continue;
        }
        if cancellations_waiting && r.timing == InvoiceTiming::OnOrder {
            return handle_each(h, group, batch).await;
        }
        let year = supply_date_of(env).year();
        let so_far =
            |year: i32| facts.distance_sales(year) + added.get(&year).copied().unwrap_or_default();
        let context = context_for(h, env, &inputs, so_far(year - 1), so_far(year)).await;
        match domain::plan_invoice(r, settings, &context) {
            Ok(plan) => {
                *added.entry(year).or_default() += plan.distance_sales_added;
                plans.push((n, plan));
            }
            Err(_) => return handle_each(h, group, batch).await,
        }
    }
    if plans.is_empty() {
        return Ok(());
    }
    let issued_at = Utc::now();
    let numbers = take_numbers(
        batch.conn,
        settings,
        DocumentKind::Invoice,
        issued_at.year(),
        plans.len(),
    )
    .await?;
    for ((n, plan), number) in plans.iter().zip(numbers) {
        let mut cx = batch.context(group[*n]);
        write_invoice(&mut cx, envs[*n], settings, plan, number, issued_at).await?;
    }
    Ok(())
}

/// `group`, one message at a time.
async fn handle_each(
    h: &InvoicingHandler,
    group: &[&Incoming],
    batch: &mut Batch<'_>,
) -> Result<(), HandlerError> {
    for msg in group {
        batch.handle_one(h, msg).await?;
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(order_id = %env.payload.order_id, request_id = %env.payload.request_id))]
async fn invoice_requested(
    h: &InvoicingHandler,
    cx: &mut HandlerContext<'_>,
    env: &Envelope<InvoiceRequested>,
) -> Result<(), HandlerError> {
    let r = &env.payload;
    let store_id = r.store_id.as_str();
    let facts = look_up(cx, env).await?;
    if facts.issued {
        info!("already invoiced; nothing to do");
        return Ok(());
    }
    let Some(settings) = &facts.settings else {
        let reason = format!(
            "store {store_id} has no invoice settings (store.invoice_settings_updated); \
             the request is held and issued when they arrive"
        );
        let envelope = serde_json::from_slice::<serde_json::Value>(&env.to_json())
            .map_err(|e| HandlerError::permanent(format!("request: {e}")))?;
        store::hold_request(cx.conn, r.request_id, store_id, env.message_id, &envelope).await?;
        store::record_refused(
            cx.conn,
            env.message_id,
            InvoiceRequested::TYPE,
            store_id,
            Some(r.order_id),
            "held",
            &reason,
        )
        .await?;
        warn!(reason, "invoice request held");
        return Ok(());
    };
    issue_invoice(h, cx, env, settings, &facts).await
}

/// Issues the invoice of a request not invoiced yet (`facts`, read under the store's lock).
async fn issue_invoice(
    h: &InvoicingHandler,
    cx: &mut HandlerContext<'_>,
    env: &Envelope<InvoiceRequested>,
    settings: &StoreInvoiceSettingsUpdated,
    facts: &store::RequestFacts,
) -> Result<(), HandlerError> {
    let r = &env.payload;
    let store_id = r.store_id.as_str();
    let mut inputs = Inputs::read(h, cx.conn, store_id, &[r]).await?;
    let (previous, this) = (
        facts.distance_sales_previous_year,
        facts.distance_sales_this_year,
    );
    let mut planned = {
        let context = context_for(h, env, &inputs, previous, this).await;
        domain::plan_invoice(r, settings, &context)
    };
    // The VAT must also be stated in another currency: read the reference rates, decide again.
    if let Err(domain::vat::VatError::NoExchangeRate { .. }) = planned {
        inputs.with_fx(cx.conn, supply_date_of(env)).await?;
        let context = context_for(h, env, &inputs, previous, this).await;
        planned = domain::plan_invoice(r, settings, &context);
    }
    let plan = match planned {
        Ok(plan) => plan,
        Err(e) => {
            let reason = format!("cannot invoice order {}: {e}", r.order_id);
            store::record_refused(
                cx.conn,
                env.message_id,
                InvoiceRequested::TYPE,
                store_id,
                Some(r.order_id),
                "refused",
                &reason,
            )
            .await?;
            warn!(reason, "invoice request refused");
            return Err(HandlerError::rejected(reason));
        }
    };
    let issued_at = Utc::now();
    let number = take_number(cx, settings, DocumentKind::Invoice, issued_at.year()).await?;
    write_invoice(cx, env, settings, &plan, number, issued_at).await?;
    if r.timing == InvoiceTiming::OnOrder && facts.cancellations_waiting {
        let kept = store::take_cancellations(cx.conn, r.order_id).await?;
        if !kept.is_empty() {
            let invoices = whole_order_invoices(cx, r.order_id, store_id).await?;
            for c in kept {
                credit_cancellation(cx, &invoices, &c).await?;
                info!(cancel_key = %c.cancel_key, "cancellation that arrived first credited");
            }
        }
    }
    Ok(())
}

/// Writes a decided, numbered invoice: the immutable snapshot, its render job with the
/// prepared `invoice.issued`, and its distance sales.
async fn write_invoice(
    cx: &mut HandlerContext<'_>,
    env: &Envelope<InvoiceRequested>,
    settings: &StoreInvoiceSettingsUpdated,
    plan: &domain::InvoicePlan,
    number: String,
    issued_at: chrono::DateTime<Utc>,
) -> Result<(), HandlerError> {
    let r = &env.payload;
    let store_id = r.store_id.as_str();
    let scope = scope_of(r);
    let supply_date = supply_date_of(env);
    let year = supply_date.year();
    let decision = &plan.decision;
    let buyer_vat = decision
        .buyer_vat_id
        .as_ref()
        .map(|v| v.as_str().to_owned());
    let business = r.buyer.is_business;
    let buyer = Party::buyer(&r.buyer.name, business, &r.billing_address, buyer_vat);
    let ship_to = (r.shipping_address != r.billing_address)
        .then(|| Party::buyer(&r.buyer.name, business, &r.shipping_address, None));
    let language = Language::from_locale(settings.locale.as_str());
    let document = Document {
        kind: DocumentKind::Invoice,
        number: number.clone(),
        issue_date: issued_at.date_naive(),
        supply_date,
        order_reference: r.external_order_id.clone(),
        currency: r.currency.as_str().to_owned(),
        seller: Party::seller(settings),
        buyer,
        ship_to,
        lines: plan.priced.lines.clone(),
        breakdown: plan.priced.breakdown.clone(),
        net: plan.priced.net,
        tax: plan.priced.tax,
        gross: plan.priced.gross,
        rule: decision.rule,
        reason: decision.reason.clone(),
        vat_id_check: decision.vat_id_check,
        // The decision's wording, in the store's language.
        // A small business's own legal reference follows (`§ 19 UStG`).
        legal_note: decision.legal_note.as_ref().map(|english| {
            let wording = language.legal_note(decision.rule).unwrap_or(english);
            match &decision.small_business {
                Some(reference) => format!("{wording} ({reference})"),
                None => wording.to_owned(),
            }
        }),
        credits: None,
        payment_terms_days: Some(settings.payment_terms_days),
        footer: settings.footer.clone(),
        language,
        einvoice: EinvoiceData::of(settings, &r.buyer),
        vat_national: plan.vat_national.clone(),
    };
    let doc_buyer = DocumentBuyer {
        name: document.buyer.name.clone(),
        country: r.billing_address.country,
        vat_id: decision.buyer_vat_id.clone(),
        email: r.buyer.email.clone(),
    };
    let invoice_id = Uuid::now_v7();
    let treatment = decision.rule.treatment();
    let issued = InvoiceIssued {
        invoice_id,
        invoice_number: number.clone(),
        request_id: r.request_id,
        order_id: r.order_id,
        store_id: r.store_id.clone(),
        shipment_id: r.shipment_id,
        issued_at,
        currency: r.currency,
        vat_treatment: treatment,
        buyer: doc_buyer.clone(),
        totals: totals(&document)?,
        pdf: render::pending_pdf_ref(DocumentKind::Invoice, &number),
        // The renderer sets it with the PDF.
        xml: None,
    };
    let message = prepare(cx, r.order_id, issued)?;
    // The renderer in this process runs once the invoice is committed.
    cx.wake_after_commit();
    // The invoice, its render job with the message, and the distance sales: one statement.
    store::insert_invoice(
        cx.conn,
        &store::NewInvoice {
            invoice_id,
            store_id,
            request_id: r.request_id,
            order_id: r.order_id,
            scope: &scope,
            shipment_id: r.shipment_id,
            timing: r.timing.as_str(),
            issued_at,
            vat_treatment: treatment.as_str(),
            buyer: &doc_buyer,
            document: &document,
        },
        &message,
        (year, plan.distance_sales_added),
    )
    .await?;
    info!(number, rule = decision.rule.as_str(), gross = %document.gross, "invoice issued");
    Ok(())
}

// --- credit notes ------------------------------------------------------------------------------

async fn creditable(
    cx: &mut HandlerContext<'_>,
    invoices: &[StoredInvoice],
) -> Result<Vec<CreditableInvoice>, HandlerError> {
    let mut out = Vec::with_capacity(invoices.len());
    for inv in invoices {
        out.push(CreditableInvoice {
            lines: inv.document.lines.clone(),
            credited: store::credited(cx.conn, inv.invoice_id).await?,
        });
    }
    Ok(out)
}

/// Refuses a refund or cancellation credit: on record, and dead-lettered with the reason.
async fn refuse(
    cx: &mut HandlerContext<'_>,
    message_id: Uuid,
    message_type: &str,
    store_id: &str,
    order_id: Uuid,
    reason: String,
) -> Result<(), HandlerError> {
    store::record_refused(
        cx.conn,
        message_id,
        message_type,
        store_id,
        Some(order_id),
        "refused",
        &reason,
    )
    .await?;
    warn!(reason, "refused");
    Err(HandlerError::rejected(reason))
}

#[tracing::instrument(skip_all, fields(order_id = %env.payload.order_id, request_id = %env.payload.request_id))]
async fn refund_requested(
    cx: &mut HandlerContext<'_>,
    env: &Envelope<OrderRefundRequested>,
) -> Result<(), HandlerError> {
    let r = &env.payload;
    let store_id = r.store_id.as_str();
    store::lock_store(cx.conn, store_id).await?;
    if store::credit_key_used(cx.conn, r.request_id).await? {
        info!("refund already credited");
        return Ok(());
    }
    let invoices: Vec<StoredInvoice> = store::invoices_of_order(cx.conn, r.order_id)
        .await?
        .into_iter()
        .filter(|i| i.store_id == store_id)
        .collect();
    let ty = OrderRefundRequested::TYPE;
    if invoices.is_empty() {
        let reason = format!(
            "refund {} refused: order {} of store {store_id} has no invoice to credit",
            r.request_id, r.order_id
        );
        return refuse(cx, env.message_id, ty, store_id, r.order_id, reason).await;
    }
    let request = CreditRequest {
        lines: r
            .lines
            .iter()
            .map(|l| (l.line_id.clone(), l.quantity.get()))
            .collect(),
        shipping: r.refund_shipping,
    };
    let open = creditable(cx, &invoices).await?;
    // Everything is decided before anything is issued: the request is refused whole, or
    // credited whole (lines and shipping first, then the free amount from what is left).
    // One order's invoices share its currency; a free amount's lines are titled in the
    // language of the first.
    let scale = scale_of(&invoices[0].document);
    let title = invoices[0].document.language.label(Label::PriceReduction);
    let amount = r.amount.map(|a| a.value());
    let decided = match credit::plan_refund(&open, &request, amount, scale, title) {
        Ok(decided) => decided,
        Err(why) => {
            let reason = format!("refund {} refused: {why}", r.request_id);
            return refuse(cx, env.message_id, ty, store_id, r.order_id, reason).await;
        }
    };
    for (i, lines) in decided {
        issue_credit_note(
            cx,
            &invoices[i],
            lines,
            r.request_id,
            Some(r.request_id),
            CreditReason::Refund,
            &r.reason,
        )
        .await?;
    }
    Ok(())
}

fn scale_of(doc: &Document) -> u32 {
    orderly_contracts::types::CurrencyCode::parse(&doc.currency)
        .ok()
        .and_then(|c| c.minor_units())
        .map_or(2, u32::from)
}

#[tracing::instrument(skip_all, fields(order_id = %env.payload.order_id))]
async fn order_cancelled(
    cx: &mut HandlerContext<'_>,
    env: &Envelope<OrderCancelled>,
) -> Result<(), HandlerError> {
    let c = &env.payload;
    let store_id = c.store_id.as_str();
    store::lock_store(cx.conn, store_id).await?;
    let cancellation = store::PendingCancellation {
        cancel_key: c.request_id.unwrap_or(env.message_id),
        request_id: c.request_id,
        scope: c.scope.as_str().to_owned(),
        lines: c
            .lines
            .iter()
            .map(|l| (l.line_id.clone(), l.quantity.get()))
            .collect(),
        reason: c.reason.clone(),
    };
    if store::credit_key_used(cx.conn, cancellation.cancel_key).await? {
        info!("cancellation already credited");
        return Ok(());
    }
    let invoices = whole_order_invoices(cx, c.order_id, store_id).await?;
    if invoices.is_empty() {
        // The invoice may still come (the request and the cancellation travel separately):
        // keep the cancellation and credit it right after that invoice is issued.
        store::keep_cancellation(cx.conn, c.order_id, store_id, &cancellation).await?;
        info!("no whole-order invoice yet; the cancellation waits for it");
        return Ok(());
    }
    credit_cancellation(cx, &invoices, &cancellation).await
}

/// Only whole-order invoices contain undispatched units: per-shipment invoices cover
/// dispatched goods, which a cancellation never touches.
async fn whole_order_invoices(
    cx: &mut HandlerContext<'_>,
    order_id: Uuid,
    store_id: &str,
) -> Result<Vec<StoredInvoice>, HandlerError> {
    Ok(store::invoices_of_order(cx.conn, order_id)
        .await?
        .into_iter()
        .filter(|i| i.store_id == store_id && i.timing == InvoiceTiming::OnOrder.as_str())
        .collect())
}

/// Credits what a cancellation cancelled of the whole-order invoices.
async fn credit_cancellation(
    cx: &mut HandlerContext<'_>,
    invoices: &[StoredInvoice],
    c: &store::PendingCancellation,
) -> Result<(), HandlerError> {
    let open = creditable(cx, invoices).await?;
    let whole_order = c.scope == CancellationScope::Order.as_str();
    for (i, inv) in invoices.iter().enumerate() {
        let request = CreditRequest {
            lines: c
                .lines
                .iter()
                .filter_map(|(line_id, q)| {
                    let k = (*q).min(open[i].remaining(line_id));
                    (k > 0).then(|| (line_id.clone(), k))
                })
                .collect(),
            shipping: whole_order && open[i].shipping_remaining().next().is_some(),
        };
        if request.lines.is_empty() && !request.shipping {
            continue;
        }
        let lines =
            credit::credit_lines(&open[i], &request, scale_of(&inv.document)).map_err(|why| {
                HandlerError::permanent(format!("cancellation {}: {why}", c.cancel_key))
            })?;
        issue_credit_note(
            cx,
            inv,
            lines,
            c.cancel_key,
            c.request_id,
            CreditReason::Cancellation,
            &c.reason,
        )
        .await?;
    }
    Ok(())
}

async fn issue_credit_note(
    cx: &mut HandlerContext<'_>,
    invoice: &StoredInvoice,
    lines: Vec<PricedLine>,
    key: Uuid,
    request_id: Option<Uuid>,
    reason_kind: CreditReason,
    reason: &str,
) -> Result<(), HandlerError> {
    let store_id = invoice.store_id.as_str();
    let settings = store::settings(cx.conn, store_id).await?.ok_or_else(|| {
        HandlerError::permanent(format!("store {store_id} has invoices but no settings"))
    })?;
    let issued_at = Utc::now();
    let number = take_number(cx, &settings, DocumentKind::CreditNote, issued_at.year()).await?;
    let (breakdown, net, tax) = amounts::totals(&lines);
    let inv = &invoice.document;
    // The credit note reverses the invoice as issued: its parties, rule, wording and rates.
    let document = Document {
        kind: DocumentKind::CreditNote,
        number: number.clone(),
        issue_date: issued_at.date_naive(),
        lines,
        breakdown,
        net,
        tax,
        gross: net + tax,
        credits: Some(CreditedInvoice {
            number: inv.number.clone(),
            issue_date: inv.issue_date,
            reason: reason.to_owned(),
        }),
        payment_terms_days: None,
        footer: settings.footer.clone(),
        // The VAT credited, in the national currency at the invoice's own rate.
        vat_national: inv
            .vat_national
            .as_ref()
            .map(|c| crate::domain::fx::Conversion {
                vat: (tax / c.rate).round_dp_with_strategy(
                    2,
                    rust_decimal::RoundingStrategy::MidpointAwayFromZero,
                ),
                ..c.clone()
            }),
        ..inv.clone()
    };
    let credit_note_id = Uuid::now_v7();
    store::insert_credit_note(
        cx.conn,
        &store::NewCreditNote {
            credit_note_id,
            store_id,
            invoice_id: invoice.invoice_id,
            credit_key: key,
            reason_kind: reason_kind.as_str(),
            reason,
            order_id: invoice.order_id,
            issued_at,
            document: &document,
        },
    )
    .await?;
    let treatment = invoice
        .vat_treatment
        .parse()
        .map_err(|e| HandlerError::permanent(format!("stored treatment: {e}")))?;
    let issued = CreditNoteIssued {
        credit_note_id,
        credit_note_number: number.clone(),
        invoice_id: invoice.invoice_id,
        invoice_number: inv.number.clone(),
        request_id,
        reason: reason_kind,
        order_id: invoice.order_id,
        store_id: settings.store_id.clone(),
        issued_at,
        currency: orderly_contracts::types::CurrencyCode::parse(&inv.currency)
            .map_err(|e| HandlerError::permanent(format!("stored currency: {e}")))?,
        vat_treatment: treatment,
        buyer: invoice.buyer.clone(),
        totals: totals(&document)?,
        pdf: render::pending_pdf_ref(DocumentKind::CreditNote, &number),
        // The renderer sets it with the PDF.
        xml: None,
    };
    let message = prepare(cx, invoice.order_id, issued)?;
    cx.wake_after_commit();
    store::enqueue_render(
        cx.conn,
        credit_note_id,
        DocumentKind::CreditNote,
        invoice.order_id,
        &message,
    )
    .await?;
    info!(number, invoice = inv.number, gross = %document.gross, "credit note issued");
    Ok(())
}
