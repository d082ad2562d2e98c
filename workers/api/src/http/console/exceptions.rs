//! The exceptions queue: the lines a marketplace sent that matched no product, oldest
//! first, each with a form to resolve it (map it to a product by SKU, optionally
//! remembering the GTIN for the store's next imports, or remove the line) for the roles
//! that may. The SKU field offers the products the store's recent orders carried
//! (`store::seen_products`), searchable by SKU, title or GTIN as one types. The form sends the JSON API's resolution (`POST
//! /api/v1/admin/order-exceptions/{id}/resolve`) through its own code path. It sends no
//! `If-Match`: the orders worker refuses a resolution of an exception that is no longer
//! open, and the queue can show an order's provisional ETag for a moment.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{Path, RawQuery, State},
    response::Response,
};
use chrono::Utc;
use maud::html;
use tracing::error;
use uuid::Uuid;

use super::super::Api;
use super::super::actions::Client;
use super::super::orders::pairs;
use super::layout::{self, Section, csrf_field, time};
use super::orders::send;
use super::{Signed, checked_form, csrf_refusal, unavailable};
use crate::domain::access::Permission;
use crate::domain::command::ResolveBody;
use crate::domain::cursor::Cursor;
use crate::domain::exceptions;
use crate::store::exceptions as store;
use crate::store::products as catalog;
use crate::store::seen_products::{self as products, SeenProduct};

/// Exceptions on a page.
const PAGE_SIZE: &str = "20";

/// `GET /admin/exceptions?store=…&cursor=…`: 20 exceptions a page, oldest first.
pub(crate) async fn list(
    State(api): State<Arc<Api>>,
    signed: Signed,
    RawQuery(raw): RawQuery,
) -> Response {
    let text = signed.lang.text();
    let here = super::here("/admin/exceptions", raw.as_deref());
    let pairs: Vec<(String, String)> = pairs(raw)
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .collect();
    // A catalog search (`product=`) is the page's own parameter, not the API's queue's.
    let search = pairs
        .iter()
        .find(|(n, _)| n == "product")
        .map(|(_, v)| v.trim().to_owned());
    // A page of exceptions, each with its form: a screenful, not the API's page.
    let mut asked: Vec<(String, String)> = pairs
        .iter()
        .filter(|(n, _)| n != "product")
        .cloned()
        .collect();
    if !asked.iter().any(|(n, _)| n == "limit") {
        asked.push(("limit".to_owned(), PAGE_SIZE.to_owned()));
    }
    let (rows, bad) = match exceptions::parse(&asked, Utc::now()) {
        Ok(query) => {
            let stores = signed.caller.scope().narrow(&query.stores);
            match store::list(&api.pool, stores.as_deref(), &query).await {
                Ok(rows) => {
                    let full = rows.len() == usize::from(query.limit);
                    (Some((rows, full)), None)
                }
                Err(e) => {
                    error!(error = %e, "console exceptions read failed: database");
                    return unavailable(signed.lang);
                }
            }
        }
        Err(bad) => (None, Some(format!("{}: {}", bad.field, bad.reason))),
    };
    let (rows, full) = rows.unwrap_or_default();
    let next = full
        .then(|| rows.last())
        .flatten()
        .map(|r| Cursor::after(r.held_since, r.exception_id).encode());
    let may_resolve = signed.caller.0.role.grants(Permission::ExceptionsResolve);
    // The products each store's recent orders carried, to pick from (by SKU, title or
    // GTIN: the browser filters the list as one types).
    let mut products: BTreeMap<String, Vec<SeenProduct>> = BTreeMap::new();
    if may_resolve {
        let stores: Vec<String> = rows
            .iter()
            .map(|r| r.store_id.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        match products::seen(&api.pool, &stores).await {
            Ok(seen) => {
                for (store_id, product) in seen {
                    products.entry(store_id).or_default().push(product);
                }
            }
            Err(e) => {
                error!(error = %e, "console products read failed: database");
                return unavailable(signed.lang);
            }
        }
    }
    // The catalog search's finds, offered to every SKU field instead of the recent ones.
    let found = match (&search, may_resolve) {
        (Some(q), true) => match catalog::search(&api.pool, q).await {
            Ok(found) => Some(found),
            Err(e) => {
                error!(error = %e, "console catalog search failed: database");
                return unavailable(signed.lang);
            }
        },
        _ => None,
    };
    let store = pairs
        .iter()
        .find(|(n, _)| n == "store")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let body = html! {
        h1 { (text.exceptions) }
        form.filters method="get" action="/admin/exceptions" {
            div.field {
                label for="store" { (text.store) }
                input #store type="text" name="store" value=(store);
            }
            button type="submit" { (text.filter) }
        }
        @if may_resolve {
            form.filters #catalog-search method="get" action="/admin/exceptions" {
                @if !store.is_empty() { input type="hidden" name="store" value=(store); }
                div.field {
                    label for="product" { (text.find_product) }
                    input #product type="search" name="product" value=(search.clone().unwrap_or_default())
                        placeholder=(text.find_product_hint);
                }
                button type="submit" { (text.search) }
            }
            @if let Some(found) = &found {
                section.card aria-labelledby="found-title" {
                    h2 #found-title { (text.found_products) " (" (found.len()) ")" }
                    @if found.is_empty() { p.muted { (text.none) } } @else {
                        div.table-wrap { table.stack #found-products {
                            thead { tr { th scope="col" { (text.sku) } th scope="col" { (text.title) } th scope="col" { (text.gtin) } } }
                            tbody { @for p in found { tr {
                                td data-label=(text.sku) { code { (p.sku) } }
                                td data-label=(text.title) { (p.title.as_deref().unwrap_or("—")) }
                                td data-label=(text.gtin) { (p.gtin.as_deref().unwrap_or("—")) }
                            } } }
                        } }
                    }
                }
            }
        }
        @if let Some(bad) = &bad { (layout::notice("error", html! { p { (bad) } })) }
        @if !may_resolve { p.muted { (text.not_permitted_resolve) } }
        @if rows.is_empty() && bad.is_none() { p.muted { (text.no_exceptions) } }
        @for e in &rows {
            @let id = e.exception_id;
            section.card.exception aria-labelledby=(format!("x-{id}")) {
                h2 #(format!("x-{id}")) {
                    a href=(format!("/admin/orders/{}", e.order_id)) { (e.external_order_id) }
                    " · " (e.store_id)
                    @if let Some(m) = &e.marketplace { " · " (m) }
                }
                dl.facts {
                    dt { (text.held_since) } dd { (time(e.held_since)) }
                    dt { (text.gtin) } dd.gtin { (e.gtin.as_deref().unwrap_or("—")) }
                    dt { (text.title) } dd { (e.title.as_deref().unwrap_or("—")) }
                    dt { (text.quantity) } dd { (e.quantity.map(|q| q.to_string()).unwrap_or_else(|| "—".into())) }
                    dt { (text.unit_price) } dd { (e.unit_price.as_deref().unwrap_or("—")) }
                    dt { (text.problem) } dd { (e.problem.as_deref().unwrap_or("—")) }
                }
                @if may_resolve {
                    form.resolve method="post" action=(format!("/admin/exceptions/{id}/resolve")) {
                        (csrf_field(&signed.csrf))
                        input type="hidden" name="key" value=(Uuid::now_v7());
                        div.field {
                            label for=(format!("resolution-{id}")) { (text.resolution) }
                            select #(format!("resolution-{id}")) name="resolution" {
                                option value="map_to_sku" selected { (text.map_to_sku) }
                                option value="remove_line" { (text.remove_line) }
                            }
                        }
                        div.field {
                            label for=(format!("sku-{id}")) { (text.sku) }
                            input #(format!("sku-{id}")) type="text" name="sku" autocomplete="off"
                                list=(if found.is_some() { "products-found".to_owned() } else { format!("products-{}", e.store_id) });
                        }
                        div.field {
                            label for=(format!("note-{id}")) { (text.note) }
                            input #(format!("note-{id}")) type="text" name="note" maxlength="500";
                        }
                        label.check for=(format!("remember-{id}")) {
                            input #(format!("remember-{id}")) type="checkbox" name="remember" value="yes";
                            span { (text.remember) }
                        }
                        button type="submit" { (text.resolve) }
                    }
                }
            }
        }
        @if let Some(found) = &found {
            datalist #products-found {
                @for p in found {
                    option value=(p.sku) {
                        (p.title.as_deref().unwrap_or("")) @if let Some(g) = &p.gtin { " · " (g) }
                    }
                }
            }
        }
        @for (store_id, seen) in &products {
            datalist #(format!("products-{store_id}")) {
                @for p in seen {
                    option value=(p.sku) {
                        (p.title.as_deref().unwrap_or("")) @if let Some(g) = &p.gtin { " · " (g) }
                    }
                }
            }
        }
        @if let Some(cursor) = next {
            nav.pager aria-label="Pages" {
                a rel="next" href=(format!("/admin/exceptions?cursor={cursor}{}", if store.is_empty() { String::new() } else { format!("&store={}", url::form_urlencoded::byte_serialize(store.as_bytes()).collect::<String>()) })) { (text.next_page) " →" }
            }
        }
    };
    super::list_response(
        &signed,
        Section::Exceptions,
        text.exceptions,
        &here,
        bad.is_some(),
        body,
    )
}

/// `POST /admin/exceptions/{id}/resolve`: with the form token, the JSON API's resolution
/// (the role's permission, the store scope and the body checked there, audited there);
/// then the command's page.
pub(crate) async fn resolve(
    State(api): State<Arc<Api>>,
    signed: Signed,
    client: Client,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(form) = checked_form(&signed, &body) else {
        return csrf_refusal(signed.lang);
    };
    let resolution = form.text("resolution").unwrap_or("map_to_sku");
    let mut json = serde_json::json!({ "resolution": resolution });
    if resolution == "map_to_sku" {
        if let Some(sku) = form.text("sku") {
            json["sku"] = sku.into();
        }
        json["remember"] = form.ticked("remember").into();
    }
    if let Some(note) = form.text("note") {
        json["note"] = note.into();
    }
    send::<ResolveBody>(
        &api,
        &signed,
        &client,
        &id,
        form.text("key"),
        &json.to_string(),
        "/admin/exceptions",
    )
    .await
}
