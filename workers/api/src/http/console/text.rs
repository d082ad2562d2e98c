//! The console's words, in English and German: one struct with a field per label, so a
//! label missing in one language does not compile. The language is the `orderly_lang`
//! cookie's (set by the switch in the page header), else the browser's
//! `Accept-Language`, else English.
//!
//! Values shown as they are stored (statuses, store ids, what a worker answered) are not
//! translated: they are what the API, the logs and the other teams say.

use axum::http::{HeaderMap, header};

/// A language of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    En,
    De,
}

impl Lang {
    /// Its code (`en`, `de`), for `<html lang>` and the cookie.
    pub(crate) const fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::De => "de",
        }
    }

    /// The language a code names, if the console has it.
    pub(crate) fn named(code: &str) -> Option<Self> {
        match code.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Self::En),
            "de" => Some(Self::De),
            _ => None,
        }
    }

    /// The other language (what the switch offers).
    pub(crate) const fn other(self) -> Self {
        match self {
            Self::En => Self::De,
            Self::De => Self::En,
        }
    }

    /// The request's language: its cookie, else the first of `Accept-Language` the console
    /// has, else English.
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == LANG_COOKIE)
            .and_then(|(_, value)| Self::named(value));
        cookie
            .or_else(|| {
                headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| {
                        v.split(',')
                            .filter_map(|item| item.split(';').next())
                            .filter_map(|tag| Self::named(tag.split('-').next().unwrap_or(tag)))
                            .next()
                    })
            })
            .unwrap_or(Self::En)
    }

    /// Its words.
    pub(crate) const fn text(self) -> &'static Text {
        match self {
            Self::En => &EN,
            Self::De => &DE,
        }
    }
}

/// The cookie that keeps the language chosen with the switch.
pub(crate) const LANG_COOKIE: &str = "orderly_lang";

/// Every label of the console.
#[derive(Debug)]
pub(crate) struct Text {
    pub(crate) console: &'static str,
    pub(crate) orders: &'static str,
    pub(crate) exceptions: &'static str,
    pub(crate) analytics: &'static str,
    pub(crate) find_product: &'static str,
    pub(crate) find_product_hint: &'static str,
    pub(crate) found_products: &'static str,
    pub(crate) rates: &'static str,
    pub(crate) lead_time: &'static str,
    pub(crate) lead_time_per_currency: &'static str,
    pub(crate) refund: &'static str,
    pub(crate) refund_units: &'static str,
    pub(crate) refund_shipping: &'static str,
    pub(crate) refund_amount: &'static str,
    pub(crate) refund_reason: &'static str,
    pub(crate) operations: &'static str,
    pub(crate) operations_note: &'static str,
    pub(crate) queues: &'static str,
    pub(crate) queue: &'static str,
    pub(crate) waiting: &'static str,
    pub(crate) consumers: &'static str,
    pub(crate) dead_letters: &'static str,
    pub(crate) outbound_queue: &'static str,
    pub(crate) not_running: &'static str,
    pub(crate) not_declared: &'static str,
    pub(crate) readiness: &'static str,
    pub(crate) ready: &'static str,
    pub(crate) not_ready: &'static str,
    pub(crate) outbox_backlog: &'static str,
    pub(crate) replay: &'static str,
    pub(crate) purge: &'static str,
    pub(crate) replay_all: &'static str,
    pub(crate) purge_all: &'static str,
    pub(crate) purge_confirm: &'static str,
    pub(crate) reason: &'static str,
    pub(crate) attempts: &'static str,
    pub(crate) message_type: &'static str,
    pub(crate) broker_unreachable: &'static str,
    pub(crate) replayed: &'static str,
    pub(crate) purged: &'static str,
    pub(crate) orders_per_period: &'static str,
    pub(crate) figures: &'static str,
    pub(crate) period: &'static str,
    pub(crate) revenue: &'static str,
    pub(crate) from: &'static str,
    pub(crate) to: &'static str,
    pub(crate) interval: &'static str,
    pub(crate) analytics_note: &'static str,
    pub(crate) sign_in: &'static str,
    pub(crate) sign_out: &'static str,
    pub(crate) signed_in_as: &'static str,
    pub(crate) email: &'static str,
    pub(crate) password: &'static str,
    pub(crate) wrong_credentials: &'static str,
    pub(crate) switch_language: &'static str,
    pub(crate) store: &'static str,
    pub(crate) status: &'static str,
    pub(crate) any_status: &'static str,
    pub(crate) search: &'static str,
    pub(crate) search_hint: &'static str,
    pub(crate) filter: &'static str,
    pub(crate) clear: &'static str,
    pub(crate) order: &'static str,
    pub(crate) channel: &'static str,
    pub(crate) placed: &'static str,
    pub(crate) total: &'static str,
    pub(crate) customer: &'static str,
    pub(crate) next_page: &'static str,
    pub(crate) export_csv: &'static str,
    pub(crate) bulk_action: &'static str,
    pub(crate) bulk_selection: &'static str,
    pub(crate) bulk_text: &'static str,
    pub(crate) bulk_confirm: &'static str,
    pub(crate) bulk_start: &'static str,
    pub(crate) action: &'static str,
    pub(crate) back: &'static str,
    pub(crate) progress: &'static str,
    pub(crate) first_page: &'static str,
    pub(crate) no_orders: &'static str,
    pub(crate) saga_position: &'static str,
    pub(crate) waiting_for: &'static str,
    pub(crate) since: &'static str,
    pub(crate) held: &'static str,
    pub(crate) lines: &'static str,
    pub(crate) sku: &'static str,
    pub(crate) title: &'static str,
    pub(crate) quantity: &'static str,
    pub(crate) unit_price: &'static str,
    pub(crate) amounts: &'static str,
    pub(crate) shipping: &'static str,
    pub(crate) discount: &'static str,
    pub(crate) tax: &'static str,
    pub(crate) billing_address: &'static str,
    pub(crate) shipping_address: &'static str,
    pub(crate) shipments: &'static str,
    pub(crate) warehouse: &'static str,
    pub(crate) carrier: &'static str,
    pub(crate) tracking: &'static str,
    pub(crate) scans: &'static str,
    pub(crate) customer_messages: &'static str,
    pub(crate) message: &'static str,
    pub(crate) resend: &'static str,
    pub(crate) saved_views: &'static str,
    pub(crate) no_saved_views: &'static str,
    pub(crate) save_view_as: &'static str,
    pub(crate) save_view: &'static str,
    pub(crate) delete: &'static str,
    pub(crate) requested: &'static str,
    pub(crate) dispatched: &'static str,
    pub(crate) delivered: &'static str,
    pub(crate) documents: &'static str,
    pub(crate) invoice: &'static str,
    pub(crate) credit_note: &'static str,
    pub(crate) timeline: &'static str,
    pub(crate) when: &'static str,
    pub(crate) what: &'static str,
    pub(crate) who: &'static str,
    pub(crate) actions: &'static str,
    pub(crate) cancel_order: &'static str,
    pub(crate) add_note: &'static str,
    pub(crate) hold: &'static str,
    pub(crate) hold_reason: &'static str,
    pub(crate) release: &'static str,
    pub(crate) release_reason: &'static str,
    pub(crate) change_address: &'static str,
    pub(crate) change_address_reason: &'static str,
    pub(crate) address_name: &'static str,
    pub(crate) address_line: &'static str,
    pub(crate) address_postal_code: &'static str,
    pub(crate) address_city: &'static str,
    pub(crate) address_country: &'static str,
    pub(crate) skip_to_content: &'static str,
    pub(crate) cancel_reason: &'static str,
    pub(crate) cancel_confirm: &'static str,
    pub(crate) cancel_explain: &'static str,
    pub(crate) back_to_order: &'static str,
    pub(crate) no_actions: &'static str,
    pub(crate) finished: &'static str,
    pub(crate) none: &'static str,
    pub(crate) command: &'static str,
    pub(crate) command_pending: &'static str,
    pub(crate) outcome: &'static str,
    pub(crate) held_since: &'static str,
    pub(crate) gtin: &'static str,
    pub(crate) problem: &'static str,
    pub(crate) resolve: &'static str,
    pub(crate) resolution: &'static str,
    pub(crate) map_to_sku: &'static str,
    pub(crate) remove_line: &'static str,
    pub(crate) remember: &'static str,
    pub(crate) note: &'static str,
    pub(crate) no_exceptions: &'static str,
    pub(crate) not_permitted_resolve: &'static str,
    pub(crate) refused_form: &'static str,
    pub(crate) refused_form_detail: &'static str,
    pub(crate) reload_and_retry: &'static str,
}

const EN: Text = Text {
    console: "Orderly console",
    orders: "Orders",
    exceptions: "Exceptions",
    analytics: "Analytics",
    find_product: "Find a product in the catalog",
    find_product_hint: "SKU, title or GTIN",
    found_products: "Products found",
    rates: "Cancelled / exceptions / backordered",
    lead_time: "Placed → delivered, p50 / p90",
    lead_time_per_currency: "Several currencies in this period: the API has the percentiles per currency",
    refund: "Refund",
    refund_units: "Units to refund per line",
    refund_shipping: "Refund the shipping too",
    refund_amount: "And/or a free amount, gross",
    refund_reason: "Why (printed on the credit note)",
    operations: "Operations",
    operations_note: "Every queue as the broker sees it: what waits, who reads it, what was refused. A worker queue without a consumer is a worker that is not running. Dead letters are messages a worker refused, with its reason: replay them once the cause is fixed, or purge them.",
    queues: "Queues",
    queue: "Queue",
    waiting: "Waiting",
    consumers: "Consumers",
    dead_letters: "Dead letters",
    outbound_queue: "outside Orderly",
    not_running: "no consumer: the worker is not running",
    not_declared: "not on the broker",
    readiness: "Readiness of the workers in this process",
    ready: "ready",
    not_ready: "not ready",
    outbox_backlog: "Commands and messages of the API not yet published",
    replay: "Replay",
    purge: "Purge",
    replay_all: "Replay all",
    purge_all: "Purge all",
    purge_confirm: "Purged messages are gone for good.",
    reason: "Reason",
    attempts: "Attempts",
    message_type: "Type",
    broker_unreachable: "The broker cannot be reached now; the figures are missing.",
    replayed: "replayed",
    purged: "purged",
    orders_per_period: "Orders placed per period",
    figures: "Figures",
    period: "Period",
    revenue: "Revenue (gross)",
    from: "From",
    to: "To",
    interval: "Interval",
    analytics_note: "Over the stores you see; the last 30 days unless you say otherwise. Every \
        figure is defined in docs/api.md (Analytics).",
    sign_in: "Sign in",
    sign_out: "Sign out",
    signed_in_as: "Signed in as",
    email: "E-mail",
    password: "Password",
    wrong_credentials: "The e-mail or the password is not right.",
    switch_language: "Deutsch",
    store: "Store",
    status: "Status",
    any_status: "Any status",
    search: "Search",
    search_hint: "Order number, customer name or e-mail",
    filter: "Filter",
    clear: "Clear",
    order: "Order",
    channel: "Channel",
    placed: "Placed",
    total: "Total",
    customer: "Customer",
    next_page: "Next page",
    export_csv: "Export CSV",
    bulk_action: "Bulk action",
    bulk_selection: "Every order the list shows for these filters (in the stores you see), fixed when the job starts:",
    bulk_text: "Text (the note, or the reason)",
    bulk_confirm: "Yes, apply this action to every one of these orders",
    bulk_start: "Start the job",
    action: "Action",
    back: "Back",
    progress: "Progress",
    first_page: "First page",
    no_orders: "No orders match.",
    saga_position: "Where it stands",
    waiting_for: "Waiting for",
    since: "since",
    held: "On hold by an operator",
    lines: "Lines",
    sku: "SKU",
    title: "Title",
    quantity: "Quantity",
    unit_price: "Unit price",
    amounts: "Amounts",
    shipping: "Shipping",
    discount: "Discount",
    tax: "Tax",
    billing_address: "Billing address",
    shipping_address: "Shipping address",
    shipments: "Shipments",
    warehouse: "Warehouse",
    carrier: "Carrier",
    tracking: "Tracking",
    scans: "Carrier scans",
    customer_messages: "Messages to the customer",
    message: "Message",
    resend: "Send again",
    saved_views: "Saved views",
    no_saved_views: "None yet: filter the list, then save it here.",
    save_view_as: "Save these filters as",
    save_view: "Save view",
    delete: "Delete",
    requested: "Requested",
    dispatched: "Dispatched",
    delivered: "Delivered",
    documents: "Invoices and credit notes",
    invoice: "Invoice",
    credit_note: "Credit note",
    timeline: "Timeline",
    when: "When",
    what: "What",
    who: "Who",
    actions: "Actions",
    cancel_order: "Cancel order",
    add_note: "Add an internal note",
    hold: "Put on hold",
    hold_reason: "Why hold it (nothing more is shipped until it is released)",
    release: "Release the hold",
    release_reason: "Why release it (optional)",
    change_address: "Change the delivery address",
    change_address_reason: "Why (kept on the order's timeline)",
    address_name: "Name",
    address_line: "Street and number",
    address_postal_code: "Postal code",
    address_city: "City",
    address_country: "Country (two letters, e.g. DE)",
    skip_to_content: "Skip to the content",
    cancel_reason: "Reason (kept on the order's timeline)",
    cancel_confirm: "Yes, cancel this whole order",
    cancel_explain: "The orders worker cancels the order if nothing has left the warehouse yet; \
        the reservation is released and the invoice credited. After dispatch it refuses, \
        saying why.",
    back_to_order: "Back to the order",
    no_actions: "Your role allows no actions on this order.",
    finished: "The order is finished: nothing more can be done to it here.",
    none: "None",
    command: "Command",
    command_pending: "Waiting for the worker's answer; this page refreshes itself.",
    outcome: "Outcome",
    held_since: "Held since",
    gtin: "GTIN",
    problem: "Problem",
    resolve: "Resolve",
    resolution: "Resolution",
    map_to_sku: "Map to product (SKU)",
    remove_line: "Remove the line",
    remember: "Remember this mapping for the store's next imports",
    note: "Note",
    no_exceptions: "No open exceptions.",
    not_permitted_resolve: "Your role does not allow resolving exceptions.",
    refused_form: "The form was not accepted",
    refused_form_detail: "Its security token is missing or does not belong to your session \
        (a page open from before you signed in again, or a form sent from elsewhere). \
        Nothing was done.",
    reload_and_retry: "Reload the page and try again.",
};

const DE: Text = Text {
    console: "Orderly-Konsole",
    orders: "Bestellungen",
    exceptions: "Ausnahmen",
    analytics: "Auswertungen",
    find_product: "Produkt im Katalog suchen",
    find_product_hint: "SKU, Titel oder GTIN",
    found_products: "Gefundene Produkte",
    rates: "Storniert / Ausnahmen / Rückstand",
    lead_time: "Bestellt → zugestellt, p50 / p90",
    lead_time_per_currency: "Mehrere Währungen in diesem Zeitraum: die API hat die Perzentile je Währung",
    refund: "Erstatten",
    refund_units: "Zu erstattende Stückzahl je Position",
    refund_shipping: "Auch die Versandkosten erstatten",
    refund_amount: "Und/oder ein freier Betrag, brutto",
    refund_reason: "Warum (steht auf der Rechnungskorrektur)",
    operations: "Betrieb",
    operations_note: "Jede Warteschlange, wie der Broker sie sieht: was wartet, wer liest, was abgewiesen wurde. Eine Worker-Warteschlange ohne Leser ist ein Worker, der nicht läuft. Unzustellbare Nachrichten hat ein Worker mit Begründung abgewiesen: nach Behebung der Ursache erneut einspielen oder verwerfen.",
    queues: "Warteschlangen",
    queue: "Warteschlange",
    waiting: "Wartend",
    consumers: "Leser",
    dead_letters: "Unzustellbar",
    outbound_queue: "außerhalb von Orderly",
    not_running: "kein Leser: der Worker läuft nicht",
    not_declared: "nicht auf dem Broker",
    readiness: "Bereitschaft der Worker in diesem Prozess",
    ready: "bereit",
    not_ready: "nicht bereit",
    outbox_backlog: "Noch nicht veröffentlichte Befehle und Nachrichten der API",
    replay: "Erneut einspielen",
    purge: "Verwerfen",
    replay_all: "Alle erneut einspielen",
    purge_all: "Alle verwerfen",
    purge_confirm: "Verworfene Nachrichten sind endgültig weg.",
    reason: "Grund",
    attempts: "Versuche",
    message_type: "Typ",
    broker_unreachable: "Der Broker ist gerade nicht erreichbar; die Zahlen fehlen.",
    replayed: "erneut eingespielt",
    purged: "verworfen",
    orders_per_period: "Bestellungen je Zeitraum",
    figures: "Zahlen",
    period: "Zeitraum",
    revenue: "Umsatz (brutto)",
    from: "Von",
    to: "Bis",
    interval: "Intervall",
    analytics_note: "Über die Shops, die Sie sehen; die letzten 30 Tage, wenn nicht anders \
        angegeben. Jede Zahl ist in docs/api.md (Analytics) definiert.",
    sign_in: "Anmelden",
    sign_out: "Abmelden",
    signed_in_as: "Angemeldet als",
    email: "E-Mail",
    password: "Passwort",
    wrong_credentials: "E-Mail oder Passwort stimmen nicht.",
    switch_language: "English",
    store: "Shop",
    status: "Status",
    any_status: "Jeder Status",
    search: "Suche",
    search_hint: "Bestellnummer, Kundenname oder E-Mail",
    filter: "Filtern",
    clear: "Zurücksetzen",
    order: "Bestellung",
    channel: "Kanal",
    placed: "Bestellt",
    total: "Summe",
    customer: "Kunde",
    next_page: "Nächste Seite",
    export_csv: "Als CSV exportieren",
    bulk_action: "Sammelaktion",
    bulk_selection: "Jede Bestellung, die die Liste für diese Filter zeigt (in Ihren Shops), festgelegt beim Start:",
    bulk_text: "Text (die Notiz oder der Grund)",
    bulk_confirm: "Ja, diese Aktion auf jede dieser Bestellungen anwenden",
    bulk_start: "Auftrag starten",
    action: "Aktion",
    back: "Zurück",
    progress: "Fortschritt",
    first_page: "Erste Seite",
    no_orders: "Keine Bestellungen gefunden.",
    saga_position: "Wo sie steht",
    waiting_for: "Wartet auf",
    since: "seit",
    held: "Von einem Operator angehalten",
    lines: "Positionen",
    sku: "Artikelnummer",
    title: "Bezeichnung",
    quantity: "Menge",
    unit_price: "Stückpreis",
    amounts: "Beträge",
    shipping: "Versand",
    discount: "Rabatt",
    tax: "Steuer",
    billing_address: "Rechnungsadresse",
    shipping_address: "Lieferadresse",
    shipments: "Sendungen",
    warehouse: "Lager",
    carrier: "Versanddienst",
    tracking: "Sendungsverfolgung",
    scans: "Scans des Zustellers",
    customer_messages: "Nachrichten an den Kunden",
    message: "Nachricht",
    resend: "Erneut senden",
    saved_views: "Gespeicherte Ansichten",
    no_saved_views: "Noch keine: Liste filtern, dann hier speichern.",
    save_view_as: "Diese Filter speichern als",
    save_view: "Ansicht speichern",
    delete: "Löschen",
    requested: "Angefordert",
    dispatched: "Versandt",
    delivered: "Zugestellt",
    documents: "Rechnungen und Gutschriften",
    invoice: "Rechnung",
    credit_note: "Gutschrift",
    timeline: "Verlauf",
    when: "Wann",
    what: "Was",
    who: "Wer",
    actions: "Aktionen",
    cancel_order: "Bestellung stornieren",
    add_note: "Interne Notiz hinzufügen",
    hold: "Anhalten",
    hold_reason: "Warum anhalten (bis zur Freigabe wird nichts mehr versandt)",
    release: "Freigeben",
    release_reason: "Warum freigeben (optional)",
    change_address: "Lieferadresse ändern",
    change_address_reason: "Warum (bleibt im Verlauf der Bestellung)",
    address_name: "Name",
    address_line: "Straße und Hausnummer",
    address_postal_code: "Postleitzahl",
    address_city: "Ort",
    address_country: "Land (zwei Buchstaben, z. B. DE)",
    skip_to_content: "Zum Inhalt springen",
    cancel_reason: "Grund (bleibt im Verlauf der Bestellung)",
    cancel_confirm: "Ja, die ganze Bestellung stornieren",
    cancel_explain: "Der Bestell-Worker storniert, solange nichts das Lager verlassen hat; \
        die Reservierung wird freigegeben und die Rechnung gutgeschrieben. Nach dem Versand \
        lehnt er mit Begründung ab.",
    back_to_order: "Zurück zur Bestellung",
    no_actions: "Ihre Rolle erlaubt keine Aktionen an dieser Bestellung.",
    finished: "Die Bestellung ist abgeschlossen: hier ist nichts mehr zu tun.",
    none: "Keine",
    command: "Auftrag",
    command_pending: "Wartet auf die Antwort des Workers; die Seite lädt sich selbst neu.",
    outcome: "Ergebnis",
    held_since: "Angehalten seit",
    gtin: "GTIN",
    problem: "Problem",
    resolve: "Auflösen",
    resolution: "Lösung",
    map_to_sku: "Einem Produkt zuordnen (Artikelnummer)",
    remove_line: "Position entfernen",
    remember: "Diese Zuordnung für die nächsten Importe des Shops merken",
    note: "Notiz",
    no_exceptions: "Keine offenen Ausnahmen.",
    not_permitted_resolve: "Ihre Rolle erlaubt nicht, Ausnahmen aufzulösen.",
    refused_form: "Das Formular wurde nicht angenommen",
    refused_form_detail: "Sein Sicherheitstoken fehlt oder gehört nicht zu Ihrer Sitzung \
        (eine Seite von vor der letzten Anmeldung, oder ein Formular von anderswo). Es wurde \
        nichts getan.",
    reload_and_retry: "Laden Sie die Seite neu und versuchen Sie es noch einmal.",
};

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn the_cookie_wins_then_the_browsers_languages_then_english() {
        assert_eq!(Lang::of(&HeaderMap::new()), Lang::En);
        assert_eq!(
            Lang::of(&headers(&[(
                header::ACCEPT_LANGUAGE,
                "fr-FR, de-DE;q=0.8, en;q=0.5"
            )])),
            Lang::De
        );
        assert_eq!(
            Lang::of(&headers(&[
                (header::ACCEPT_LANGUAGE, "de"),
                (header::COOKIE, "a=b; orderly_lang=en")
            ])),
            Lang::En
        );
        assert_eq!(
            Lang::of(&headers(&[(header::COOKIE, "orderly_lang=xx")])),
            Lang::En
        );
    }
}
