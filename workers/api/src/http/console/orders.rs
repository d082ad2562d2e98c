//! The order pages: the list (the API's filters and keyset pages), one order (its saga
//! position, lines, money, addresses, shipments, documents and timeline, with the actions
//! the caller's role permits), the cancellation with its confirmation, and a command's
//! outcome.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use orderly_contracts::types::OrderStatus;
use serde_json::Value;
use tracing::error;
use uuid::Uuid;

use super::super::actions::{Client, Requester, submit};
use super::super::documents;
use super::super::orders::pairs;
use super::super::{Api, Problem};
use super::layout::{self, Section, badge, csrf_field, maybe_time, money, time};
use super::text::Text;
use super::{Signed, checked_form, csrf_refusal, page_response, problem_page, unavailable};
use crate::domain::access::Permission;
use crate::domain::command::{
    AddressBody, CancelBody, HoldBody, NoteBody, RefundBody, ReleaseBody, ResendBody,
};
use crate::domain::filter::{self, ListQuery};
use crate::domain::saga::WaitingFor;
use crate::store::commands::{self as commands};
use crate::store::read::{self, OrderDetail, OrderSummary};

/// Orders per page of the console's list.
const PAGE_SIZE: &str = "25";

/// The console's list filters: the query string without blank fields (an empty search box
/// sends `q=`, which the API refuses) and with the console's page size unless given.
fn list_pairs(raw: Option<String>) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = pairs(raw)
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .collect();
    if !pairs.iter().any(|(n, _)| n == "limit") {
        pairs.push(("limit".to_owned(), PAGE_SIZE.to_owned()));
    }
    pairs
}

/// `GET /admin/orders?store=…&status=…&q=…&cursor=…`.
pub(crate) async fn list(
    State(api): State<Arc<Api>>,
    signed: Signed,
    RawQuery(raw): RawQuery,
) -> Response {
    let here = super::here("/admin/orders", raw.as_deref());
    let pairs = list_pairs(raw);
    let value = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (store, status, q) = (value("store"), value("status"), value("q"));
    let text = signed.lang.text();
    let (rows, next, bad) = match filter::parse(&pairs) {
        Ok(query) => match page_of(&api, &signed, &query).await {
            Ok((rows, next)) => (rows, next, None),
            Err(response) => return response,
        },
        Err(bad) => (
            Vec::new(),
            None,
            Some(format!("{}: {}", bad.field, bad.reason)),
        ),
    };
    // The filters without paging: what a view saves, and what the next page continues.
    let view_query = {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in pairs.iter().filter(|(n, _)| n != "cursor" && n != "limit") {
            query.append_pair(name, value);
        }
        query.finish()
    };
    let next_href = next.map(|cursor| {
        let cursor: String = url::form_urlencoded::byte_serialize(cursor.as_bytes()).collect();
        if view_query.is_empty() {
            format!("/admin/orders?cursor={cursor}")
        } else {
            format!("/admin/orders?{view_query}&cursor={cursor}")
        }
    });
    let views = match crate::store::views::of(&api.pool, signed.caller.0.staff_id).await {
        Ok(views) => views,
        Err(e) => {
            error!(error = %e, "console views read failed: database");
            return unavailable(signed.lang);
        }
    };
    let stores: Vec<String> = match signed.caller.scope() {
        crate::domain::access::Scope::All => Vec::new(),
        crate::domain::access::Scope::Stores(s) => s.iter().cloned().collect(),
    };
    let body = html! {
        h1 { (text.orders) }
        form.filters method="get" action="/admin/orders" role="search" {
            div.field {
                label for="store" { (text.store) }
                input #store type="text" name="store" value=(store) list="stores" autocomplete="off";
                datalist #stores { @for s in &stores { option value=(s) {} } }
            }
            div.field {
                label for="status" { (text.status) }
                select #status name="status" {
                    option value="" { (text.any_status) }
                    @for s in OrderStatus::ALL {
                        option value=(s.as_str()) selected[status == s.as_str()] { (s.as_str()) }
                    }
                }
            }
            div.field {
                label for="q" { (text.search) }
                input #q type="search" name="q" value=(q) placeholder=(text.search_hint);
            }
            button type="submit" { (text.filter) }
            a.button.secondary href="/admin/orders" { (text.clear) }
            a.button.secondary #export href=(export_href(&pairs)) download { (text.export_csv) }
            @if let Some(href) = super::bulk::offered(&signed, &pairs) {
                a.button.secondary #bulk href=(href) { (text.bulk_action) "…" }
            }
        }
        @if let Some(bad) = &bad {
            (layout::notice("error", html! { p { (bad) } }))
        }
        (super::views::bar(&signed, &views, if bad.is_none() { &view_query } else { "" }))
        @if rows.is_empty() && bad.is_none() {
            p.muted { (text.no_orders) }
        } @else if !rows.is_empty() {
            @let choosable = super::bulk::choosable(&signed);
            form #chosen-orders method="get" action="/admin/orders/bulk" {}
            div.table-wrap {
                table.stack {
                    thead { tr {
                        @if choosable { th scope="col" { span.visually-hidden { (text.choose) } } }
                        th scope="col" { (text.order) }
                        th scope="col" { (text.store) }
                        th scope="col" { (text.channel) }
                        th scope="col" { (text.status) }
                        th scope="col" { (text.placed) }
                        th scope="col" { (text.customer) }
                        th.num scope="col" { (text.total) }
                    } }
                    tbody {
                        @for row in &rows { (list_row(text, row, choosable)) }
                    }
                }
            }
            @if choosable {
                div.actions {
                    button.secondary #bulk-chosen-start type="submit" form="chosen-orders" { (text.bulk_on_chosen) "…" }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if pairs.iter().any(|(n, _)| n == "cursor") {
                a href=(first_page(&pairs)) { (text.first_page) }
            }
            @if let Some(href) = &next_href {
                a href=(href) rel="next" { (text.next_page) " →" }
            }
        }
    };
    super::list_response(
        &signed,
        Section::Orders,
        text.orders,
        &here,
        bad.is_some(),
        body,
    )
}

/// The CSV export of every order the list's filters select (not just this page).
fn export_href(pairs: &[(String, String)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs
        .iter()
        .filter(|(n, _)| !matches!(n.as_str(), "cursor" | "limit" | "count"))
    {
        query.append_pair(name, value);
    }
    query.append_pair("format", "csv");
    format!("/admin/orders/export?{}", query.finish())
}

/// `GET /admin/orders/export?…`: the JSON API's export (`GET /api/v1/admin/orders/export`:
/// the same parameters, scope, streaming and audit entry) for a signed-in staff member.
pub(crate) async fn export(
    State(api): State<Arc<Api>>,
    signed: Signed,
    client: Client,
    RawQuery(raw): RawQuery,
) -> Response {
    match super::super::export::export(State(api), signed.caller.clone(), client, RawQuery(raw))
        .await
    {
        Ok(file) => file.into_response(),
        Err(problem) => problem_page(&signed, &problem, "/admin/orders"),
    }
}

/// The list's first page with the same filters.
fn first_page(pairs: &[(String, String)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs.iter().filter(|(n, _)| n != "cursor" && n != "limit") {
        query.append_pair(name, value);
    }
    format!("/admin/orders?{}", query.finish())
}

/// A page of the list as the JSON list reads it: the caller's scope narrowing the stores.
async fn page_of(
    api: &Api,
    signed: &Signed,
    query: &ListQuery,
) -> Result<(Vec<OrderSummary>, Option<String>), Response> {
    let stores = signed.caller.scope().narrow(&query.stores);
    read::list(&api.pool, stores.as_deref(), query)
        .await
        .map(|(rows, next)| (rows, next.map(|c| c.encode())))
        .map_err(|e| {
            error!(error = %e, "console order list failed: database");
            unavailable(signed.lang)
        })
}

fn list_row(text: &Text, row: &OrderSummary, choosable: bool) -> Markup {
    let href = format!("/admin/orders/{}", row.order_id);
    html! {
        tr {
            @if choosable {
                td data-label=(text.choose) {
                    input type="checkbox" form="chosen-orders" name="order_id" value=(row.order_id)
                        id=(format!("choose-{}", row.external_order_id))
                        aria-label=(format!("{} {}", text.choose, row.external_order_id));
                }
            }
            td data-label=(text.order) { a href=(href) { (row.external_order_id) } }
            td data-label=(text.store) { (row.store_id) }
            td data-label=(text.channel) {
                (row.channel.as_deref().unwrap_or("—"))
                @if let Some(m) = &row.marketplace { " · " (m) }
            }
            td data-label=(text.status) { (badge(row.status.as_deref())) }
            td data-label=(text.placed) { (time(row.placed_at)) }
            td data-label=(text.customer) { (row.customer_name.as_deref().unwrap_or("—")) }
            td.num data-label=(text.total) { (money(row.total, row.currency.as_deref())) }
        }
    }
}

/// The order `id` if the caller may see it; else the 404 page (the same for one of
/// another store and one that does not exist, as in the API).
async fn visible_order(api: &Api, signed: &Signed, id: &str) -> Result<OrderDetail, Response> {
    let not_found = || {
        problem_page(
            signed,
            &Problem::new(
                StatusCode::NOT_FOUND,
                "order-not-found",
                "No such order",
                format!("no order {id} that you may see"),
            ),
            "/admin/orders",
        )
    };
    let Ok(order_id) = id.parse::<Uuid>() else {
        return Err(not_found());
    };
    match read::detail(&api.pool, order_id).await {
        Ok(Some(detail)) if signed.caller.scope().sees(&detail.header.store_id) => Ok(detail),
        Ok(_) => Err(not_found()),
        Err(e) => {
            error!(error = %e, "console order read failed: database");
            Err(unavailable(signed.lang))
        }
    }
}

/// Whether the order may still be asked to cancel (the worker decides; a finished order is
/// not offered the button).
fn cancellable(detail: &OrderDetail) -> bool {
    !matches!(
        detail.header.status.as_deref(),
        Some("cancelled" | "completed")
    )
}

/// `GET /admin/orders/{id}`.
pub(crate) async fn detail(
    State(api): State<Arc<Api>>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    let detail = match visible_order(&api, &signed, &id).await {
        Ok(detail) => detail,
        Err(response) => return response,
    };
    let text = signed.lang.text();
    let h = &detail.header;
    let here = format!("/admin/orders/{}", h.order_id);
    let may_cancel = signed.caller.0.role.grants(Permission::OrdersCancel);
    let may_edit = signed.caller.0.role.grants(Permission::OrdersEdit);
    let may_refund = signed.caller.0.role.grants(Permission::OrdersRefund);
    // The address may change until a parcel has left (the orders worker decides; the form
    // is offered while the read model says so).
    let shipped =
        !cancellable(&detail) || detail.shipments.iter().any(|s| s.dispatched_at.is_some());
    let currency = h.currency.as_deref();
    let body = html! {
        p { a href="/admin/orders" { "← " (text.orders) } }
        h1 { (text.order) " " (h.external_order_id) " " (badge(h.status.as_deref())) }
        section.card.saga aria-labelledby="saga" {
            h2 #saga { (text.saga_position) }
            p {
                (text.waiting_for) ": " strong #waiting-for { (waiting_word(detail.saga.waiting_for)) }
                " " span.muted { (text.since) " " (time(detail.saga.since)) }
            }
            p #saga-detail { (detail.saga.detail) }
            @if h.held { p { span.badge.status-on_hold { (text.held) } } }
        }
        section.card aria-labelledby="actions" {
            h2 #actions { (text.actions) }
            @if !cancellable(&detail) {
                p.muted { (text.finished) }
            } @else if !may_cancel && !may_edit {
                p.muted { (text.no_actions) }
            } @else {
                @if may_cancel {
                    div.actions {
                        a.button.danger #cancel href=(format!("/admin/orders/{}/cancel", h.order_id)) { (text.cancel_order) "…" }
                    }
                }
                @if may_edit {
                    div.grid.edit-actions {
                        form method="post" action=(format!("/admin/orders/{}/note", h.order_id)) {
                            (csrf_field(&signed.csrf))
                            input type="hidden" name="key" value=(Uuid::now_v7());
                            label for="note" { (text.add_note) }
                            textarea #note name="text" required maxlength="2000" {}
                            button #add-note type="submit" { (text.add_note) }
                        }
                        @if h.held {
                            form method="post" action=(format!("/admin/orders/{}/release", h.order_id)) {
                                (csrf_field(&signed.csrf))
                                input type="hidden" name="key" value=(Uuid::now_v7());
                                label for="release-reason" { (text.release_reason) }
                                input #release-reason type="text" name="reason" maxlength="500";
                                button #release type="submit" { (text.release) }
                            }
                        } @else {
                            form method="post" action=(format!("/admin/orders/{}/hold", h.order_id)) {
                                (csrf_field(&signed.csrf))
                                input type="hidden" name="key" value=(Uuid::now_v7());
                                label for="hold-reason" { (text.hold_reason) }
                                input #hold-reason type="text" name="reason" required maxlength="500";
                                button.secondary #hold type="submit" { (text.hold) }
                            }
                        }
                    }
                }
            }
        }
        div.grid {
            section.card aria-labelledby="facts" {
                h2 #facts { (text.order) }
                dl.facts {
                    dt { (text.store) } dd { (h.store_id) }
                    dt { (text.channel) } dd { (h.channel.as_deref().unwrap_or("—")) @if let Some(m) = &h.marketplace { " · " (m) } }
                    dt { (text.placed) } dd { (time(h.placed_at)) }
                    dt { (text.customer) } dd { (h.customer_name.as_deref().unwrap_or("—")) @if let Some(e) = &h.customer_email { br; (e) } }
                }
            }
            section.card aria-labelledby="amounts" {
                h2 #amounts { (text.amounts) }
                dl.facts {
                    dt { (text.shipping) } dd { (money(h.shipping, currency)) }
                    dt { (text.discount) } dd { (money(h.discount, currency)) }
                    dt { (text.tax) } dd { (money(h.tax, currency)) }
                    dt { strong { (text.total) } } dd { strong { (money(h.total, currency)) } }
                }
            }
            section.card aria-labelledby="billing" {
                h2 #billing { (text.billing_address) }
                (address(text, h.billing_address.as_ref()))
            }
            section.card aria-labelledby="shipping-to" {
                h2 #shipping-to { (text.shipping_address) }
                (address(text, h.shipping_address.as_ref()))
                @if may_edit && !shipped {
                    (address_form(text, &signed.csrf, h.order_id, h.shipping_address.as_ref()))
                }
            }
        }
        @if let Some(open) = h.exceptions.as_ref().and_then(Value::as_array).filter(|e| !e.is_empty() && h.status.as_deref() != Some("cancelled")) {
            section.card #order-exceptions aria-labelledby="order-exceptions-title" {
                h2 #order-exceptions-title { (text.exceptions) }
                ul { @for e in open {
                    li {
                        (e["title"].as_str().unwrap_or("—")) " · " (text.gtin) " " (e["gtin"].as_str().unwrap_or("—"))
                        " · " (e["problem"].as_str().unwrap_or("—"))
                    }
                } }
                p { a href=(format!("/admin/exceptions?store={}", h.store_id)) { (text.exceptions) " →" } }
            }
        }
        h2 { (text.lines) }
        (lines(text, h.lines.as_ref(), currency))
        h2 { (text.shipments) }
        @if detail.shipments.is_empty() { p.muted { (text.none) } } @else {
            div.table-wrap { table.stack {
                thead { tr {
                    th scope="col" { (text.warehouse) } th scope="col" { (text.carrier) } th scope="col" { (text.tracking) }
                    th scope="col" { (text.requested) } th scope="col" { (text.dispatched) } th scope="col" { (text.delivered) }
                } }
                tbody { @for s in &detail.shipments { tr {
                    td data-label=(text.warehouse) { (s.warehouse_id.as_deref().unwrap_or("—")) }
                    td data-label=(text.carrier) { (s.carrier.as_deref().unwrap_or("—")) }
                    td data-label=(text.tracking) {
                        @match (&s.tracking_number, &s.tracking_url) {
                            (Some(n), Some(u)) if u.starts_with("https://") => a href=(u) rel="noopener noreferrer" { (n) },
                            (Some(n), _) => (n),
                            _ => "—",
                        }
                        @if let Some(problem) = &s.exception_status { br; span.badge.status-refused { (problem) } }
                    }
                    td data-label=(text.requested) { (maybe_time(s.requested_at)) }
                    td data-label=(text.dispatched) { (maybe_time(s.dispatched_at)) }
                    td data-label=(text.delivered) { (maybe_time(s.delivered_at)) }
                } } }
            } }
            @for s in detail.shipments.iter().filter(|s| !s.tracking.is_empty()) {
                details.scans {
                    summary {
                        (text.scans) " · " (s.tracking_number.as_deref().unwrap_or("—"))
                        " (" (s.tracking.len()) ")"
                    }
                    ol { @for scan in &s.tracking { li {
                        (time(scan.event_at)) " · " strong { (scan.raw_status) }
                        @if let Some(sub) = &scan.raw_substatus { " (" (sub) ")" }
                        @if let Some(d) = &scan.description { " · " (d) }
                        @if let Some(city) = scan.location.as_ref().and_then(|l| l["city"].as_str()) {
                            " · " (city)
                        }
                    } } }
                }
            }
        }
        @if !detail.setups.is_empty() {
            h2 #setups-title { (text.setups) }
            div.table-wrap { table.stack #order-setups aria-labelledby="setups-title" {
                thead { tr {
                    th scope="col" { (text.product) } th scope="col" { (text.status) }
                    th scope="col" { (text.stage) } th scope="col" { (text.loops) }
                    th scope="col" { (text.overdue) }
                } }
                tbody { @for s in &detail.setups { tr {
                    td data-label=(text.product) { a href=(format!("/admin/setups/{}", s.setup.setup_id)) { code { (s.setup.sku) } } }
                    td data-label=(text.status) { (badge(Some(&s.setup.status))) }
                    td data-label=(text.stage) { (s.setup.stage) }
                    td data-label=(text.loops) { (s.setup.loops) }
                    td data-label=(text.overdue) { (maybe_time(s.setup.overdue_since)) }
                } } }
            } }
        }
        h2 { (text.customer_messages) }
        @if detail.notifications.is_empty() { p.muted { (text.none) } } @else {
            div.table-wrap { table.stack {
                thead { tr {
                    th scope="col" { (text.message) } th scope="col" { (text.channel) }
                    th scope="col" { (text.status) } th scope="col" { (text.when) }
                    @if may_edit { th scope="col" { span.visually-hidden { (text.resend) } } }
                } }
                tbody { @for (i, n) in detail.notifications.iter().enumerate() { tr {
                    td data-label=(text.message) {
                        (n.template)
                        @if let Some(subject) = &n.subject { br; span.muted { (subject) } }
                    }
                    td data-label=(text.channel) { (n.channel) }
                    td data-label=(text.status) {
                        span.badge.(format!("status-{}", n.status)) { (n.status) }
                        @if let Some(e) = &n.error { br; span.muted { (e) } }
                    }
                    td data-label=(text.when) { (maybe_time(n.sent_at.or(n.requested_at).or(n.failed_at))) }
                    @if may_edit { td {
                        // The newest message of this kind is sent again (the API's resend).
                        form method="post" action=(format!("/admin/orders/{}/resend", h.order_id)) {
                            (csrf_field(&signed.csrf))
                            input type="hidden" name="key" value=(Uuid::now_v7());
                            input type="hidden" name="event" value=(n.template);
                            button.secondary id=(format!("resend-{i}")) type="submit" { (text.resend) }
                        }
                    } }
                } } }
            } }
        }
        h2 { (text.documents) }
        @if detail.invoices.is_empty() && detail.credit_notes.is_empty() { p.muted { (text.none) } } @else {
            ul { @for d in detail.invoices.iter().chain(&detail.credit_notes) {
                li {
                    a href=(format!("/admin/orders/{}/documents/{}", h.order_id, d.document_id)) {
                        (if d.kind == "invoice" { text.invoice } else { text.credit_note }) " " (d.number) " (PDF)"
                    }
                    " · " (money(Some(d.gross), Some(&d.currency))) " · " (time(d.issued_at))
                }
            } }
        }
        @if may_refund && !detail.invoices.is_empty() {
            (refund_form(text, &signed.csrf, h.order_id, h.lines.as_ref(), currency))
        }
        h2 #timeline-title { (text.timeline) }
        (timeline(text, &detail))
    };
    page_response(
        StatusCode::OK,
        layout::page(
            &signed,
            Some(Section::Orders),
            &format!("{} {}", text.order, h.external_order_id),
            None,
            &here,
            body,
        ),
    )
}

/// The word for what an order waits for (as the API says it).
fn waiting_word(w: WaitingFor) -> &'static str {
    match w {
        WaitingFor::Operator => "operator",
        WaitingFor::Stock => "stock",
        WaitingFor::Warehouse => "warehouse",
        WaitingFor::Carrier => "carrier",
        WaitingFor::Setups => "setups",
        WaitingFor::Nothing => "nothing",
    }
}

/// An address as the events carried it (JSON), or a dash.
/// The form that changes the delivery address (`POST /admin/orders/{id}/address`), filled
/// with the current one; the orders worker refuses it, with the reason, once something has
/// shipped.
fn address_form(text: &Text, csrf: &str, order_id: Uuid, current: Option<&Value>) -> Markup {
    let s = |k: &str| {
        current
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let line = |i: usize| {
        current
            .and_then(|a| a.get("lines"))
            .and_then(|l| l.get(i))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    html! {
        details #change-address {
            summary { (text.change_address) "…" }
            form method="post" action=(format!("/admin/orders/{order_id}/address")) {
                (csrf_field(csrf))
                input type="hidden" name="key" value=(Uuid::now_v7());
                label for="address-name" { (text.address_name) }
                input #address-name type="text" name="name" required maxlength="200" value=(s("name"));
                label for="address-line1" { (text.address_line) }
                input #address-line1 type="text" name="line1" required maxlength="200" value=(line(0));
                label for="address-line2" { (text.address_line) " 2" }
                input #address-line2 type="text" name="line2" maxlength="200" value=(line(1));
                label for="address-postal-code" { (text.address_postal_code) }
                input #address-postal-code type="text" name="postal_code" maxlength="16" value=(s("postal_code"));
                label for="address-city" { (text.address_city) }
                input #address-city type="text" name="city" required maxlength="100" value=(s("city"));
                label for="address-country" { (text.address_country) }
                input #address-country type="text" name="country" required minlength="2" maxlength="2" value=(s("country"));
                label for="address-reason" { (text.change_address_reason) }
                input #address-reason type="text" name="reason" required maxlength="1000";
                button #change-address-submit type="submit" { (text.change_address) }
            }
        }
    }
}

fn address(text: &Text, value: Option<&Value>) -> Markup {
    let Some(a) = value.filter(|v| v.is_object()) else {
        return html! { p.muted { (text.none) } };
    };
    let s = |k: &str| a.get(k).and_then(Value::as_str);
    html! {
        address {
            @if let Some(name) = s("name") { (name) br; }
            @if let Some(company) = s("company") { (company) br; }
            @if let Some(lines) = a.get("lines").and_then(Value::as_array) {
                @for line in lines.iter().filter_map(Value::as_str) { (line) br; }
            }
            (s("postal_code").unwrap_or("")) " " (s("city").unwrap_or("")) br;
            @if let Some(region) = s("region") { (region) ", " }
            (s("country").unwrap_or(""))
        }
    }
}

/// The order's lines (JSON as `order.accepted` carried them, or the exceptions' lines of
/// an order on hold).
fn lines(text: &Text, value: Option<&Value>, currency: Option<&str>) -> Markup {
    let rows = value.and_then(Value::as_array).cloned().unwrap_or_default();
    if rows.is_empty() {
        return html! { p.muted { (text.none) } };
    }
    let s = |l: &Value, k: &str| -> String {
        match l.get(k) {
            Some(Value::String(v)) => v.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => "—".to_owned(),
        }
    };
    html! {
        div.table-wrap { table.stack {
            thead { tr {
                th scope="col" { (text.sku) } th scope="col" { (text.title) }
                th.num scope="col" { (text.quantity) } th.num scope="col" { (text.unit_price) }
            } }
            tbody { @for l in &rows { tr {
                td data-label=(text.sku) { (s(l, "sku")) }
                td data-label=(text.title) { (s(l, "title")) }
                td.num data-label=(text.quantity) { (s(l, "quantity")) }
                td.num data-label=(text.unit_price) { (s(l, "unit_price")) " " (currency.unwrap_or("")) }
            } } }
        } }
    }
}

/// The refund form (`POST /admin/orders/{id}/refund`, `orders.refund`, once the order is
/// invoiced): units per line, the shipping, and/or a free amount, with the reason printed on
/// the credit note. Invoicing decides what can still be credited and refuses the rest.
fn refund_form(
    text: &Text,
    csrf: &str,
    order_id: Uuid,
    lines: Option<&Value>,
    currency: Option<&str>,
) -> Markup {
    let rows = lines.and_then(Value::as_array).cloned().unwrap_or_default();
    let s = |l: &Value, k: &str| match l.get(k) {
        Some(Value::String(v)) => v.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    html! {
        details #refund {
            summary { (text.refund) "…" }
            form method="post" action=(format!("/admin/orders/{order_id}/refund")) {
                (csrf_field(csrf))
                input type="hidden" name="key" value=(Uuid::now_v7());
                fieldset {
                    legend { (text.refund_units) }
                    @for (i, l) in rows.iter().enumerate() {
                        @let id = s(l, "line_id");
                        label for=(format!("refund-line-{i}")) { (s(l, "title")) " (" (s(l, "sku")) ", " (text.quantity) " " (s(l, "quantity")) ")" }
                        input type="hidden" name="line" value=(id);
                        input id=(format!("refund-line-{i}")) type="number" name="quantity" min="0"
                            max=(s(l, "quantity")) value="0" inputmode="numeric";
                    }
                }
                label { input #refund-shipping type="checkbox" name="shipping" value="1"; " " (text.refund_shipping) }
                label for="refund-amount" { (text.refund_amount) " (" (currency.unwrap_or("")) ")" }
                input #refund-amount type="text" name="amount" inputmode="decimal" pattern="[0-9]+([.][0-9]{1,2})?" placeholder="10.00";
                label for="refund-reason" { (text.refund_reason) }
                input #refund-reason type="text" name="reason" required maxlength="1000";
                label.check for="refund-confirm" {
                    input #refund-confirm type="checkbox" name="confirm" value="yes" required;
                    span { (text.refund_confirm) }
                }
                button.danger #refund-submit type="submit" { (text.refund) }
            }
        }
    }
}

/// The refund form as the JSON API's body: lines with a quantity above 0, the shipping when
/// ticked, the amount when given (the API names what is wrong with it).
fn refund_body(form: &super::Form) -> Value {
    let lines: Vec<Value> = form
        .0
        .iter()
        .filter(|(k, _)| k == "line")
        .map(|(_, v)| v)
        .zip(
            form.0
                .iter()
                .filter(|(k, _)| k == "quantity")
                .map(|(_, v)| v),
        )
        .filter_map(|(line, q)| {
            let q: u64 = q.trim().parse().ok().filter(|q| *q > 0)?;
            Some(serde_json::json!({ "line_id": line, "quantity": q }))
        })
        .collect();
    let mut body = serde_json::json!({
        "reason": form.text("reason").unwrap_or_default(),
        "lines": lines,
        "refund_shipping": form.ticked("shipping"),
    });
    if let Some(amount) = form.text("amount") {
        body["amount"] = amount.into();
    }
    body
}

/// One entry of the timeline.
struct Entry {
    at: DateTime<Utc>,
    what: Markup,
    who: String,
}

/// Status changes, cancellations, setups' changes, staff actions and customers' requests,
/// oldest first.
fn timeline(text: &Text, detail: &OrderDetail) -> Markup {
    let mut entries: Vec<Entry> = Vec::new();
    for s in &detail.status_history {
        entries.push(Entry {
            at: s.changed_at,
            what: html! {
                (s.from.as_deref().unwrap_or("—")) " → " (badge(Some(&s.to)))
                @if let Some(r) = &s.reason { " " span.muted { (r) } }
            },
            who: "orders".to_owned(),
        });
    }
    for c in &detail.cancellations {
        entries.push(Entry {
            at: c.cancelled_at,
            what: html! { "cancelled (" (c.scope) "): " (c.reason) },
            who: "orders".to_owned(),
        });
    }
    for s in &detail.setups {
        for h in &s.history {
            entries.push(Entry {
                at: h.at,
                what: html! {
                    (text.setup) " " code { (s.setup.sku) } ": "
                    (h.from.map_or("—", |f| f.as_str())) " → " (badge(Some(h.to.as_str())))
                    " (" (h.stage) ") " span.muted { (h.detail) }
                },
                who: h
                    .actor
                    .as_ref()
                    .map_or_else(|| "setups".to_owned(), |a| format!("{} {}", a.role, a.id)),
            });
        }
    }
    for a in &detail.staff_actions {
        entries.push(Entry {
            at: a.request.at,
            what: action_words(&a.request),
            who: a.staff_email.clone(),
        });
    }
    for r in &detail.customer_requests {
        entries.push(Entry {
            at: r.request.at,
            what: action_words(&r.request),
            who: format!("customer {}", r.customer_id),
        });
    }
    entries.sort_by_key(|e| e.at);
    html! {
        @if entries.is_empty() { p.muted { (text.none) } } @else {
            div.table-wrap { table.stack #timeline aria-labelledby="timeline-title" {
                thead { tr { th scope="col" { (text.when) } th scope="col" { (text.what) } th scope="col" { (text.who) } } }
                tbody { @for e in &entries { tr {
                    td data-label=(text.when) { (time(e.at)) }
                    td data-label=(text.what) { (e.what) }
                    td data-label=(text.who) { (e.who) }
                } } }
            } }
        }
    }
}

/// A staff action or customer request in words: what, how it was answered, what became of
/// its command.
fn action_words(r: &read::Requested) -> Markup {
    html! {
        (r.action) " · " (r.outcome) " (" (r.http_status) ")"
        @if let Some(status) = &r.command_status { " · " (badge(Some(status))) }
        @if let Some(detail) = &r.detail { " " span.muted { (detail) } }
    }
}

/// `GET /admin/orders/{id}/cancel`: the confirmation.
pub(crate) async fn confirm_cancel(
    State(api): State<Arc<Api>>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    let detail = match visible_order(&api, &signed, &id).await {
        Ok(detail) => detail,
        Err(response) => return response,
    };
    cancel_page(&signed, &detail, None, StatusCode::OK)
}

/// The confirmation page (again with `error` when the form was incomplete). A new
/// idempotency key per page: sending the same form twice sends one command.
fn cancel_page(
    signed: &Signed,
    detail: &OrderDetail,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let text = signed.lang.text();
    let h = &detail.header;
    let here = format!("/admin/orders/{}/cancel", h.order_id);
    let body = html! {
        p { a href=(format!("/admin/orders/{}", h.order_id)) { "← " (text.back_to_order) } }
        h1 { (text.cancel_order) " " (h.external_order_id) }
        @if let Some(error) = error { (layout::notice("error", html! { p { (error) } })) }
        section.card {
            p { (text.status) ": " (badge(h.status.as_deref())) " · " (text.total) ": " (money(h.total, h.currency.as_deref())) }
            p.muted { (text.cancel_explain) }
            form method="post" action=(here) {
                (csrf_field(&signed.csrf))
                input type="hidden" name="key" value=(Uuid::now_v7());
                p {
                    label for="reason" { (text.cancel_reason) }
                    textarea #reason name="reason" required maxlength="500" {}
                }
                p {
                    label.check for="confirm" {
                        input #confirm type="checkbox" name="confirm" value="yes" required;
                        span { (text.cancel_confirm) }
                    }
                }
                div.actions {
                    button.danger #confirm-cancel type="submit" { (text.cancel_order) }
                    a.button.secondary href=(format!("/admin/orders/{}", h.order_id)) { (text.back_to_order) }
                }
            }
        }
    };
    page_response(
        status,
        layout::page(
            signed,
            Some(Section::Orders),
            text.cancel_order,
            None,
            &here,
            body,
        ),
    )
}

/// `POST /admin/orders/{id}/cancel`: with the form token, the ticked confirmation and a
/// reason, the JSON API's cancellation (the same checks, command, message and audit
/// entry); then the command's page.
pub(crate) async fn cancel(
    State(api): State<Arc<Api>>,
    signed: Signed,
    client: Client,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(form) = checked_form(&signed, &body) else {
        return csrf_refusal(signed.lang);
    };
    let (Some(reason), true) = (form.text("reason"), form.ticked("confirm")) else {
        let detail = match visible_order(&api, &signed, &id).await {
            Ok(detail) => detail,
            Err(response) => return response,
        };
        let text = signed.lang.text();
        let error = format!("{} / {}", text.cancel_reason, text.cancel_confirm);
        return cancel_page(&signed, &detail, Some(&error), StatusCode::BAD_REQUEST);
    };
    let json = serde_json::json!({ "reason": reason }).to_string();
    send::<CancelBody>(
        &api,
        &signed,
        &client,
        &id,
        form.text("key"),
        &json,
        &format!("/admin/orders/{id}"),
    )
    .await
}

/// `POST /admin/orders/{id}/note|hold|release|address|refund|resend`: with the form token, the JSON
/// API's note, hold, release, address change or resend of a customer's message (its permission `orders.edit`, scope, body checks and audit entry);
/// then the command's page. `which` is the path's last segment.
pub(crate) async fn edit(
    State(api): State<Arc<Api>>,
    signed: Signed,
    client: Client,
    Path((id, which)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Some(form) = checked_form(&signed, &body) else {
        return csrf_refusal(signed.lang);
    };
    let back = format!("/admin/orders/{id}");
    let key = form.text("key");
    match which.as_str() {
        "note" => {
            let json = serde_json::json!({ "text": form.get("text").unwrap_or_default() });
            send::<NoteBody>(&api, &signed, &client, &id, key, &json.to_string(), &back).await
        }
        "hold" => {
            let json = serde_json::json!({ "reason": form.get("reason").unwrap_or_default() });
            send::<HoldBody>(&api, &signed, &client, &id, key, &json.to_string(), &back).await
        }
        "refund" if !form.ticked("confirm") => problem_page(
            &signed,
            &Problem::bad_parameter("confirm", "tick the confirmation to refund"),
            &back,
        ),
        "refund" => {
            let json = refund_body(&form);
            send::<RefundBody>(&api, &signed, &client, &id, key, &json.to_string(), &back).await
        }
        "address" => {
            let json = address_change(&form);
            send::<AddressBody>(&api, &signed, &client, &id, key, &json.to_string(), &back).await
        }
        "resend" => {
            let json = match form.text("event") {
                Some(event) => serde_json::json!({ "event": event }),
                None => serde_json::json!({}),
            };
            send::<ResendBody>(&api, &signed, &client, &id, key, &json.to_string(), &back).await
        }
        "release" => {
            let json = match form.text("reason") {
                Some(reason) => serde_json::json!({ "reason": reason }),
                None => serde_json::json!({}),
            };
            send::<ReleaseBody>(&api, &signed, &client, &id, key, &json.to_string(), &back).await
        }
        _ => problem_page(
            &signed,
            &Problem::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "No such action",
                format!(
                    "`{which}` is not an action of the console (note, hold, release, address, \
                     refund, resend)"
                ),
            ),
            &back,
        ),
    }
}

/// The address form as the JSON API's body: the delivery address (empty optional fields
/// left out, so the API names what is missing) and the reason.
fn address_change(form: &super::Form) -> Value {
    let text = |k: &str| form.text(k).map(str::trim).filter(|v| !v.is_empty());
    let lines: Vec<&str> = ["line1", "line2"].into_iter().filter_map(text).collect();
    let mut address = serde_json::json!({
        "name": text("name").unwrap_or_default(),
        "lines": lines,
        "city": text("city").unwrap_or_default(),
        "country": text("country").unwrap_or_default().to_uppercase(),
    });
    if let Some(code) = text("postal_code") {
        address["postal_code"] = code.into();
    }
    serde_json::json!({
        "reason": text("reason").unwrap_or_default(),
        "shipping_address": address,
    })
}

/// Sends action `B` on `id` as the JSON API does (`key` as its `Idempotency-Key`) and
/// answers with the command's page, or the API's refusal as a page.
pub(crate) async fn send<B: crate::domain::command::ActionBody>(
    api: &Api,
    signed: &Signed,
    client: &Client,
    id: &str,
    key: Option<&str>,
    json: &str,
    back: &str,
) -> Response {
    let mut headers = HeaderMap::new();
    if let Some(value) = key.and_then(|k| HeaderValue::from_str(k).ok()) {
        headers.insert("idempotency-key", value);
    }
    send_with::<B>(api, signed, client, id, &headers, json, back).await
}

/// Like [`send`], with the request's headers given (`Idempotency-Key`, `If-Match`).
pub(crate) async fn send_with<B: crate::domain::command::ActionBody>(
    api: &Api,
    signed: &Signed,
    client: &Client,
    id: &str,
    headers: &HeaderMap,
    json: &str,
    back: &str,
) -> Response {
    let requester = Requester::Staff(signed.caller.clone());
    match submit::<B>(api, requester, client, id, headers, json.as_bytes()).await {
        Ok(accepted) => Redirect::to(&format!(
            "/admin/commands/{}",
            accepted.body().command().command_id
        ))
        .into_response(),
        Err(problem) => problem_page(signed, &problem, back),
    }
}

/// `GET /admin/commands/{id}`: what became of a command; refreshes itself while pending.
pub(crate) async fn command(
    State(api): State<Arc<Api>>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    let text = signed.lang.text();
    let not_found = || {
        problem_page(
            &signed,
            &Problem::new(
                StatusCode::NOT_FOUND,
                "command-not-found",
                "No such command",
                format!("no command {id} that you may see"),
            ),
            "/admin/orders",
        )
    };
    let Ok(command_id) = id.parse::<Uuid>() else {
        return not_found();
    };
    let command = match commands::command(&api.pool, command_id).await {
        Ok(Some(c)) if signed.caller.scope().sees(&c.store_id) && c.customer_id.is_none() => c,
        Ok(_) => return not_found(),
        Err(e) => {
            error!(error = %e, "console command read failed: database");
            return unavailable(signed.lang);
        }
    };
    let pending = command.status == "pending";
    let here = format!("/admin/commands/{command_id}");
    let body = html! {
        p { a href=(format!("/admin/orders/{}", command.order_id)) { "← " (text.back_to_order) } }
        h1 { (text.command) ": " (command.action) }
        section.card {
            p { (text.outcome) ": " span #command-status { (badge(Some(&command.status))) } }
            @if pending { (layout::notice("info", html! { p { (text.command_pending) } })) }
            @if let Some(detail) = &command.detail { p #command-detail { (detail) } }
            @if let Some(refused) = command.refused.as_ref().and_then(Value::as_array) {
                ul { @for r in refused { li { (r.as_str().map(str::to_owned).unwrap_or_else(|| r.to_string())) } } }
            }
            dl.facts {
                dt { (text.who) } dd { (command.requested_by) }
                dt { (text.when) } dd { (time(command.created_at)) }
                @if let Some(at) = command.answered_at { dt { (text.outcome) } dd { (time(at)) } }
            }
        }
    };
    page_response(
        StatusCode::OK,
        layout::page(
            &signed,
            None,
            text.command,
            pending.then_some(1),
            &here,
            body,
        ),
    )
}

/// `GET /admin/orders/{id}/documents/{document_id}`: the PDF, as the API serves it (the
/// same checks: the caller's stores, the SHA-256 as issued).
pub(crate) async fn document(
    State(api): State<Arc<Api>>,
    signed: Signed,
    Path((id, document_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match documents::admin(
        State(api),
        signed.caller.clone(),
        Path((id, document_id)),
        headers,
    )
    .await
    {
        Ok(pdf) => pdf.into_response(),
        Err(problem) => problem_page(&signed, &problem, "/admin/orders"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> super::super::Form {
        super::super::Form(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn the_refund_form_becomes_the_apis_body() {
        let body = refund_body(&form(&[
            ("line", "1"),
            ("quantity", "2"),
            ("line", "2"),
            ("quantity", "0"),
            ("line", "3"),
            ("quantity", "x"),
            ("shipping", "1"),
            ("amount", " 10.00 "),
            ("reason", "Kratzer"),
        ]));
        assert_eq!(
            body,
            serde_json::json!({"reason": "Kratzer", "lines": [{"line_id": "1", "quantity": 2}],
                               "refund_shipping": true, "amount": "10.00"})
        );
        crate::domain::command::parse_body::<RefundBody>(body.to_string().as_bytes())
            .expect("a body the API parses");
        let nothing = refund_body(&form(&[("reason", "x"), ("amount", "  ")]));
        assert_eq!(
            nothing,
            serde_json::json!({"reason": "x", "lines": [], "refund_shipping": false})
        );
    }

    #[test]
    fn the_address_form_becomes_the_apis_body() {
        let body = address_change(&form(&[
            ("name", "Jörg"),
            ("line1", "Paketshop"),
            ("line2", " "),
            ("postal_code", ""),
            ("city", "Berlin"),
            ("country", "de"),
            ("reason", "Anruf"),
        ]));
        assert_eq!(
            body,
            serde_json::json!({"reason": "Anruf", "shipping_address": {
                "name": "Jörg", "lines": ["Paketshop"], "city": "Berlin", "country": "DE"}})
        );
    }
}
