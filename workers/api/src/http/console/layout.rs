//! The console's page shell and the small formatting helpers every page shares. maud
//! escapes every value it writes into HTML; nothing here writes raw HTML from data.

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use rust_decimal::{Decimal, RoundingStrategy};

use super::Signed;
use super::text::Lang;

/// The stylesheet, served at [`STYLESHEET`] with a long cache lifetime.
pub(crate) const CSS: &str = include_str!("style.css");
/// Where the stylesheet is served (its version in the path, so a new build is fetched).
pub(crate) const STYLESHEET: &str =
    concat!("/admin/assets/console-", env!("CARGO_PKG_VERSION"), ".css");

/// Which section of the console a page belongs to (marked in the navigation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Orders,
    Exceptions,
    Setups,
    Analytics,
    Operations,
}

/// A page for a signed-in staff member: the header (navigation, who, sign-out, language
/// switch) and `body`. `refresh` reloads the page after that many seconds (a command still
/// waiting for its answer), without script.
pub(crate) fn page(
    signed: &Signed,
    section: Option<Section>,
    title: &str,
    refresh: Option<u32>,
    here: &str,
    body: Markup,
) -> Markup {
    let text = signed.lang.text();
    let current = |s: Section| (section == Some(s)).then_some("page");
    html! {
        (DOCTYPE)
        html lang=(signed.lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(seconds) = refresh {
                    meta http-equiv="refresh" content=(seconds);
                }
                title { (title) " · " (text.console) }
                link rel="stylesheet" href=(STYLESHEET);
            }
            body {
                a.skip href="#main" { (text.skip_to_content) }
                header.top {
                    a.brand href="/admin/orders" { (text.console) }
                    nav aria-label="Console" {
                        a href="/admin/orders" aria-current=[current(Section::Orders)] { (text.orders) }
                        a href="/admin/exceptions" aria-current=[current(Section::Exceptions)] { (text.exceptions) }
                        @if signed.caller.0.role.grants(crate::domain::access::Permission::SetupsView) {
                            a href="/admin/setups" aria-current=[current(Section::Setups)] { (text.setups) }
                        }
                        a href="/admin/analytics" aria-current=[current(Section::Analytics)] { (text.analytics) }
                        @if signed.caller.0.role.grants(crate::domain::access::Permission::OperationsManage) {
                            a href="/admin/operations" aria-current=[current(Section::Operations)] { (text.operations) }
                        }
                    }
                    div.who {
                        span { (text.signed_in_as) " " strong { (signed.caller.0.email) } " (" (signed.caller.0.role) ")" }
                        (language_switch(signed.lang, here))
                        form method="post" action="/admin/sign-out" {
                            (csrf_field(&signed.csrf))
                            button.secondary type="submit" { (text.sign_out) }
                        }
                    }
                }
                main #main tabindex="-1" { (body) }
            }
        }
    }
}

/// A page without a session (sign-in, a refusal before sign-in).
pub(crate) fn bare(lang: Lang, title: &str, here: &str, body: Markup) -> Markup {
    let text = lang.text();
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (text.console) }
                link rel="stylesheet" href=(STYLESHEET);
            }
            body {
                header.top {
                    span.brand { (text.console) }
                    div.who { (language_switch(lang, here)) }
                }
                main #main tabindex="-1" { (body) }
            }
        }
    }
}

/// The link to the other language, back to this page.
fn language_switch(lang: Lang, here: &str) -> Markup {
    let other = lang.other();
    let href = format!(
        "/admin/language?to={}&back={}",
        other.code(),
        url::form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>()
    );
    html! { a href=(href) lang=(other.code()) { (lang.text().switch_language) } }
}

/// The hidden field carrying the session's form token (every form that POSTs has it).
pub(crate) fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// A status as a badge (the stored word, styled by it).
pub(crate) fn badge(status: Option<&str>) -> Markup {
    let status = status.unwrap_or("—");
    html! { span class=(format!("badge status-{status}")) { (status) } }
}

/// An amount with its currency (`49.90 EUR`; half a cent rounds away from zero, as on an
/// invoice), or a dash.
pub(crate) fn money(amount: Option<Decimal>, currency: Option<&str>) -> String {
    match amount {
        Some(amount) => format!(
            "{:.2} {}",
            amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero),
            currency.unwrap_or("")
        )
        .trim()
        .to_owned(),
        None => "—".to_owned(),
    }
}

/// A time, to the minute, in UTC.
pub(crate) fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A `<time>` element: the minute shown, the exact time machine-readable.
pub(crate) fn time(at: DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339()) { (when(at)) } }
}

/// An optional time, or a dash.
pub(crate) fn maybe_time(at: Option<DateTime<Utc>>) -> Markup {
    match at {
        Some(at) => time(at),
        None => html! { "—" },
    }
}

/// A notice box.
pub(crate) fn notice(kind: &str, body: Markup) -> Markup {
    html! { div class=(format!("notice {kind}")) role=(if kind == "error" { "alert" } else { "status" }) { (body) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_has_two_decimals_and_its_currency() {
        assert_eq!(money(Some(Decimal::new(0, 2)), Some("EUR")), "0.00 EUR");
        assert_eq!(money(Some(Decimal::new(1785, 2)), Some("EUR")), "17.85 EUR");
        assert_eq!(money(Some(Decimal::new(12345, 3)), None), "12.35");
        assert_eq!(money(None, Some("EUR")), "—");
    }
}
