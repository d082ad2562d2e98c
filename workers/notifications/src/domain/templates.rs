//! The built-in templates, in English, German, French and Dutch.
//!
//! Plain text with `{variables}` (see [`super::VARIABLES`]). Customer texts greet by name
//! and sign with the store's name; staff texts are short and factual. A store replaces any
//! of them per language with its own (`store.notification_settings_updated` templates).

use orderly_contracts::types::{OrderStatus, ShipmentStatus};

/// The languages every built-in template exists in.
pub const BUILTIN_LANGUAGES: &[&str] = &["en", "de", "fr", "nl"];

/// The built-in (subject, body) of `key` in `language`, if there is one.
pub fn builtin(key: &str, language: &str) -> Option<(&'static str, &'static str)> {
    let key = match key {
        "order.processing" | "order.partially_shipped" | "order.shipped" | "order.completed" => {
            "order.status"
        }
        other => other,
    };
    let texts: &[(&str, &str, &str)] = match key {
        "order.accepted" => &[
            (
                "en",
                "Your order {order_number} is confirmed",
                "Hello {customer_name},\n\nthank you for your order {order_number}. We have received it and are getting it ready.\n\nKind regards\n{store_name}",
            ),
            (
                "de",
                "Deine Bestellung {order_number} ist bestätigt",
                "Hallo {customer_name},\n\nvielen Dank für deine Bestellung {order_number}. Wir haben sie erhalten und bereiten sie vor.\n\nViele Grüße\n{store_name}",
            ),
            (
                "fr",
                "Votre commande {order_number} est confirmée",
                "Bonjour {customer_name},\n\nmerci pour votre commande {order_number}. Nous l'avons bien reçue et la préparons.\n\nCordialement,\n{store_name}",
            ),
            (
                "nl",
                "Je bestelling {order_number} is bevestigd",
                "Hallo {customer_name},\n\nbedankt voor je bestelling {order_number}. We hebben hem ontvangen en maken hem klaar.\n\nMet vriendelijke groet,\n{store_name}",
            ),
        ],
        "order.on_hold" => &[
            (
                "en",
                "Order {order_number} is on hold",
                "Order {order_number} is on hold and needs an operator: {reason}",
            ),
            (
                "de",
                "Bestellung {order_number} ist angehalten",
                "Bestellung {order_number} ist angehalten und wartet auf Bearbeitung: {reason}",
            ),
            (
                "fr",
                "La commande {order_number} est en attente",
                "La commande {order_number} est en attente d'une intervention : {reason}",
            ),
            (
                "nl",
                "Bestelling {order_number} staat in de wacht",
                "Bestelling {order_number} staat in de wacht en wacht op een medewerker: {reason}",
            ),
        ],
        "order.backordered" => &[
            (
                "en",
                "Your order {order_number} will take a little longer",
                "Hello {customer_name},\n\nsome items of your order {order_number} are not in stock right now. We will send it as soon as they arrive.\n\nKind regards\n{store_name}",
            ),
            (
                "de",
                "Deine Bestellung {order_number} dauert etwas länger",
                "Hallo {customer_name},\n\neinige Artikel deiner Bestellung {order_number} sind gerade nicht vorrätig. Wir versenden sie, sobald sie eintreffen.\n\nViele Grüße\n{store_name}",
            ),
            (
                "fr",
                "Votre commande {order_number} prendra un peu plus de temps",
                "Bonjour {customer_name},\n\ncertains articles de votre commande {order_number} ne sont pas en stock pour le moment. Nous l'expédierons dès leur arrivée.\n\nCordialement,\n{store_name}",
            ),
            (
                "nl",
                "Je bestelling {order_number} duurt iets langer",
                "Hallo {customer_name},\n\nsommige artikelen van je bestelling {order_number} zijn nu niet op voorraad. We versturen hem zodra ze binnen zijn.\n\nMet vriendelijke groet,\n{store_name}",
            ),
        ],
        "order.status" => &[
            (
                "en",
                "Your order {order_number}: {status}",
                "Hello {customer_name},\n\nyour order {order_number} is now: {status}.\n\nKind regards\n{store_name}",
            ),
            (
                "de",
                "Deine Bestellung {order_number}: {status}",
                "Hallo {customer_name},\n\ndeine Bestellung {order_number} ist jetzt: {status}.\n\nViele Grüße\n{store_name}",
            ),
            (
                "fr",
                "Votre commande {order_number} : {status}",
                "Bonjour {customer_name},\n\nvotre commande {order_number} est maintenant : {status}.\n\nCordialement,\n{store_name}",
            ),
            (
                "nl",
                "Je bestelling {order_number}: {status}",
                "Hallo {customer_name},\n\nje bestelling {order_number} is nu: {status}.\n\nMet vriendelijke groet,\n{store_name}",
            ),
        ],
        "order.delivered" => &[
            (
                "en",
                "Your order {order_number} has been delivered",
                "Hello {customer_name},\n\nyour order {order_number} has been delivered. We hope you enjoy it!\n\nKind regards\n{store_name}",
            ),
            (
                "de",
                "Deine Bestellung {order_number} wurde zugestellt",
                "Hallo {customer_name},\n\ndeine Bestellung {order_number} wurde zugestellt. Viel Freude damit!\n\nViele Grüße\n{store_name}",
            ),
            (
                "fr",
                "Votre commande {order_number} a été livrée",
                "Bonjour {customer_name},\n\nvotre commande {order_number} a été livrée. Nous espérons qu'elle vous plaira !\n\nCordialement,\n{store_name}",
            ),
            (
                "nl",
                "Je bestelling {order_number} is bezorgd",
                "Hallo {customer_name},\n\nje bestelling {order_number} is bezorgd. Veel plezier ermee!\n\nMet vriendelijke groet,\n{store_name}",
            ),
        ],
        "order.cancelled" => &[
            (
                "en",
                "Your order {order_number} has been cancelled",
                "Hello {customer_name},\n\nyour order {order_number} has been cancelled. {reason}\n\nKind regards\n{store_name}",
            ),
            (
                "de",
                "Deine Bestellung {order_number} wurde storniert",
                "Hallo {customer_name},\n\ndeine Bestellung {order_number} wurde storniert. {reason}\n\nViele Grüße\n{store_name}",
            ),
            (
                "fr",
                "Votre commande {order_number} a été annulée",
                "Bonjour {customer_name},\n\nvotre commande {order_number} a été annulée. {reason}\n\nCordialement,\n{store_name}",
            ),
            (
                "nl",
                "Je bestelling {order_number} is geannuleerd",
                "Hallo {customer_name},\n\nje bestelling {order_number} is geannuleerd. {reason}\n\nMet vriendelijke groet,\n{store_name}",
            ),
        ],
        "shipment.dispatched" => &[
            (
                "en",
                "Your order {order_number} is on its way",
                "Hello {customer_name},\n\nyour order {order_number} has left our warehouse with {carrier}.\nTracking number: {tracking_number}\nTrack your parcel: {tracking_url}\n\nKind regards\n{store_name}",
            ),
            (
                "de",
                "Deine Bestellung {order_number} ist unterwegs",
                "Hallo {customer_name},\n\ndeine Bestellung {order_number} hat unser Lager verlassen und ist mit {carrier} unterwegs.\nSendungsnummer: {tracking_number}\nSendung verfolgen: {tracking_url}\n\nViele Grüße\n{store_name}",
            ),
            (
                "fr",
                "Votre commande {order_number} est en route",
                "Bonjour {customer_name},\n\nvotre commande {order_number} a quitté notre entrepôt avec {carrier}.\nNuméro de suivi : {tracking_number}\nSuivre votre colis : {tracking_url}\n\nCordialement,\n{store_name}",
            ),
            (
                "nl",
                "Je bestelling {order_number} is onderweg",
                "Hallo {customer_name},\n\nje bestelling {order_number} heeft ons magazijn verlaten met {carrier}.\nTrack & trace-nummer: {tracking_number}\nVolg je pakket: {tracking_url}\n\nMet vriendelijke groet,\n{store_name}",
            ),
        ],
        "shipment.delivered" => &[
            (
                "en",
                "A parcel of your order {order_number} has been delivered",
                "Hello {customer_name},\n\n{carrier} delivered parcel {tracking_number} of your order {order_number}.\n\nKind regards\n{store_name}",
            ),
            (
                "de",
                "Ein Paket deiner Bestellung {order_number} wurde zugestellt",
                "Hallo {customer_name},\n\n{carrier} hat das Paket {tracking_number} deiner Bestellung {order_number} zugestellt.\n\nViele Grüße\n{store_name}",
            ),
            (
                "fr",
                "Un colis de votre commande {order_number} a été livré",
                "Bonjour {customer_name},\n\n{carrier} a livré le colis {tracking_number} de votre commande {order_number}.\n\nCordialement,\n{store_name}",
            ),
            (
                "nl",
                "Een pakket van je bestelling {order_number} is bezorgd",
                "Hallo {customer_name},\n\n{carrier} heeft pakket {tracking_number} van je bestelling {order_number} bezorgd.\n\nMet vriendelijke groet,\n{store_name}",
            ),
        ],
        "shipment.exception" => &[
            (
                "en",
                "Shipment problem: order {order_number}",
                "{carrier} reports {status} for parcel {tracking_number} of order {order_number}: {reason}",
            ),
            (
                "de",
                "Problem mit Sendung: Bestellung {order_number}",
                "{carrier} meldet {status} für Paket {tracking_number} der Bestellung {order_number}: {reason}",
            ),
            (
                "fr",
                "Problème d'expédition : commande {order_number}",
                "{carrier} signale {status} pour le colis {tracking_number} de la commande {order_number} : {reason}",
            ),
            (
                "nl",
                "Probleem met zending: bestelling {order_number}",
                "{carrier} meldt {status} voor pakket {tracking_number} van bestelling {order_number}: {reason}",
            ),
        ],
        "invoice.issued" => &[
            (
                "en",
                "Your invoice {invoice_number}",
                "Hello {customer_name},\n\nattached is invoice {invoice_number} for your order {order_number}, total {amount}.\n\nKind regards\n{store_name}",
            ),
            (
                "de",
                "Deine Rechnung {invoice_number}",
                "Hallo {customer_name},\n\nanbei die Rechnung {invoice_number} zu deiner Bestellung {order_number} über {amount}.\n\nViele Grüße\n{store_name}",
            ),
            (
                "fr",
                "Votre facture {invoice_number}",
                "Bonjour {customer_name},\n\nveuillez trouver ci-joint la facture {invoice_number} de votre commande {order_number}, d'un montant de {amount}.\n\nCordialement,\n{store_name}",
            ),
            (
                "nl",
                "Je factuur {invoice_number}",
                "Hallo {customer_name},\n\nin de bijlage vind je factuur {invoice_number} voor je bestelling {order_number}, totaal {amount}.\n\nMet vriendelijke groet,\n{store_name}",
            ),
        ],
        "credit_note.issued" => &[
            (
                "en",
                "Your credit note {credit_note_number}",
                "Hello {customer_name},\n\nattached is credit note {credit_note_number} for invoice {invoice_number} of your order {order_number}: {amount} credited.\n\nKind regards\n{store_name}",
            ),
            (
                "de",
                "Deine Gutschrift {credit_note_number}",
                "Hallo {customer_name},\n\nanbei die Gutschrift {credit_note_number} zur Rechnung {invoice_number} deiner Bestellung {order_number}: {amount} gutgeschrieben.\n\nViele Grüße\n{store_name}",
            ),
            (
                "fr",
                "Votre avoir {credit_note_number}",
                "Bonjour {customer_name},\n\nveuillez trouver ci-joint l'avoir {credit_note_number} sur la facture {invoice_number} de votre commande {order_number} : {amount} crédités.\n\nCordialement,\n{store_name}",
            ),
            (
                "nl",
                "Je creditnota {credit_note_number}",
                "Hallo {customer_name},\n\nin de bijlage vind je creditnota {credit_note_number} bij factuur {invoice_number} van je bestelling {order_number}: {amount} gecrediteerd.\n\nMet vriendelijke groet,\n{store_name}",
            ),
        ],
        "webhook.endpoint_disabled" => &[
            (
                "en",
                "Webhook endpoint disabled",
                "Orderly stopped delivering events to {endpoint_url} after repeated failures ({reason}). Deliveries are kept; register the endpoint again to resume.",
            ),
            (
                "de",
                "Webhook-Endpunkt deaktiviert",
                "Orderly liefert nach wiederholten Fehlern ({reason}) keine Ereignisse mehr an {endpoint_url}. Die Zustellungen bleiben erhalten; registriere den Endpunkt erneut, um fortzufahren.",
            ),
            (
                "fr",
                "Point de terminaison webhook désactivé",
                "Orderly a cessé d'envoyer des événements à {endpoint_url} après des échecs répétés ({reason}). Les envois sont conservés ; réenregistrez le point de terminaison pour reprendre.",
            ),
            (
                "nl",
                "Webhook-endpoint uitgeschakeld",
                "Orderly levert na herhaalde fouten ({reason}) geen gebeurtenissen meer aan {endpoint_url}. De leveringen blijven bewaard; registreer het endpoint opnieuw om verder te gaan.",
            ),
        ],
        "setup.overdue" => &[
            (
                "en",
                "Setup overdue: order {order_number}",
                "The setup of {product} for order {order_number} is past its time at stage `{stage}` (due {due}).",
            ),
            (
                "de",
                "Einrichtung überfällig: Bestellung {order_number}",
                "Die Einrichtung von {product} für Bestellung {order_number} ist in der Phase `{stage}` überfällig (fällig {due}).",
            ),
            (
                "fr",
                "Mise en place en retard : commande {order_number}",
                "La mise en place de {product} pour la commande {order_number} est en retard à l'étape `{stage}` (échéance {due}).",
            ),
            (
                "nl",
                "Inrichting te laat: bestelling {order_number}",
                "De inrichting van {product} voor bestelling {order_number} is te laat in de fase `{stage}` (uiterlijk {due}).",
            ),
        ],
        "setup.intake_requested" => &[
            (
                "en",
                "{product}: we need a few details from you",
                "Hello {customer_name},\n\nthank you for your order {order_number}. To start on {product}, please fill in the form \"{stage}\":\n{link}\n\nThe link works until {expires}.\n\nKind regards\n{store_name}",
            ),
            (
                "de",
                "{product}: Wir brauchen noch ein paar Angaben",
                "Hallo {customer_name},\n\ndanke für deine Bestellung {order_number}. Damit wir mit {product} beginnen können, fülle bitte das Formular „{stage}“ aus:\n{link}\n\nDer Link gilt bis {expires}.\n\nViele Grüße\n{store_name}",
            ),
            (
                "fr",
                "{product} : il nous faut quelques informations",
                "Bonjour {customer_name},\n\nmerci pour votre commande {order_number}. Pour commencer {product}, merci de remplir le formulaire « {stage} » :\n{link}\n\nLe lien est valable jusqu'au {expires}.\n\nCordialement\n{store_name}",
            ),
            (
                "nl",
                "{product}: we hebben nog wat gegevens nodig",
                "Hallo {customer_name},\n\nbedankt voor je bestelling {order_number}. Vul het formulier \"{stage}\" in zodat we met {product} kunnen beginnen:\n{link}\n\nDe link werkt tot {expires}.\n\nMet vriendelijke groet\n{store_name}",
            ),
        ],
        "setup.approval_requested" => &[
            (
                "en",
                "{product}: ready for your approval",
                "Hello {customer_name},\n\n\"{stage}\" of {product} (order {order_number}) is ready for you. Please approve it or tell us what to change:\n{link}\n\nThe link works until {expires}.\n\nKind regards\n{store_name}",
            ),
            (
                "de",
                "{product}: bereit zur Freigabe",
                "Hallo {customer_name},\n\n„{stage}“ von {product} (Bestellung {order_number}) ist fertig. Bitte gib es frei oder sag uns, was wir ändern sollen:\n{link}\n\nDer Link gilt bis {expires}.\n\nViele Grüße\n{store_name}",
            ),
            (
                "fr",
                "{product} : prêt pour votre validation",
                "Bonjour {customer_name},\n\n« {stage} » de {product} (commande {order_number}) est prêt. Merci de le valider ou de nous dire quoi modifier :\n{link}\n\nLe lien est valable jusqu'au {expires}.\n\nCordialement\n{store_name}",
            ),
            (
                "nl",
                "{product}: klaar voor je goedkeuring",
                "Hallo {customer_name},\n\n\"{stage}\" van {product} (bestelling {order_number}) staat klaar. Keur het goed of laat ons weten wat er anders moet:\n{link}\n\nDe link werkt tot {expires}.\n\nMet vriendelijke groet\n{store_name}",
            ),
        ],
        "setup.client_reminder" => &[
            (
                "en",
                "Reminder: {product} is waiting for you",
                "Hello {customer_name},\n\n{product} (order {order_number}) is waiting for you at \"{stage}\". Whenever you are ready:\n{link}\n\nThe link works until {expires}.\n\nKind regards\n{store_name}",
            ),
            (
                "de",
                "Erinnerung: {product} wartet auf dich",
                "Hallo {customer_name},\n\n{product} (Bestellung {order_number}) wartet bei „{stage}“ auf dich. Sobald du so weit bist:\n{link}\n\nDer Link gilt bis {expires}.\n\nViele Grüße\n{store_name}",
            ),
            (
                "fr",
                "Rappel : {product} vous attend",
                "Bonjour {customer_name},\n\n{product} (commande {order_number}) vous attend à l'étape « {stage} ». Dès que vous êtes prêt :\n{link}\n\nLe lien est valable jusqu'au {expires}.\n\nCordialement\n{store_name}",
            ),
            (
                "nl",
                "Herinnering: {product} wacht op je",
                "Hallo {customer_name},\n\n{product} (bestelling {order_number}) wacht op je bij \"{stage}\". Zodra je zover bent:\n{link}\n\nDe link werkt tot {expires}.\n\nMet vriendelijke groet\n{store_name}",
            ),
        ],
        "setup.completed" => &[
            (
                "en",
                "{product} is done",
                "Hello {customer_name},\n\nwe have finished {product} for your order {order_number}. Thank you for working with us!\n\nKind regards\n{store_name}",
            ),
            (
                "de",
                "{product} ist fertig",
                "Hallo {customer_name},\n\n{product} für deine Bestellung {order_number} ist fertig. Danke für die Zusammenarbeit!\n\nViele Grüße\n{store_name}",
            ),
            (
                "fr",
                "{product} est terminé",
                "Bonjour {customer_name},\n\nnous avons terminé {product} pour votre commande {order_number}. Merci de votre collaboration !\n\nCordialement\n{store_name}",
            ),
            (
                "nl",
                "{product} is klaar",
                "Hallo {customer_name},\n\nwe hebben {product} voor je bestelling {order_number} afgerond. Bedankt voor de samenwerking!\n\nMet vriendelijke groet\n{store_name}",
            ),
        ],
        _ => return None,
    };
    texts
        .iter()
        .find(|(l, _, _)| *l == language)
        .map(|(_, subject, body)| (*subject, *body))
}

/// An order status in words.
pub(super) fn status_words(status: OrderStatus, language: &str) -> &'static str {
    use OrderStatus as S;
    match (language, status) {
        ("de", S::Accepted) => "angenommen",
        ("de", S::OnHold) => "angehalten",
        ("de", S::Backordered) => "im Rückstand",
        ("de", S::Processing) => "in Bearbeitung",
        ("de", S::PartiallyShipped) => "teilweise versandt",
        ("de", S::Shipped) => "versandt",
        ("de", S::Delivered) => "zugestellt",
        ("de", S::Completed) => "abgeschlossen",
        ("de", S::Cancelled) => "storniert",
        ("fr", S::Accepted) => "acceptée",
        ("fr", S::OnHold) => "en attente",
        ("fr", S::Backordered) => "en réapprovisionnement",
        ("fr", S::Processing) => "en préparation",
        ("fr", S::PartiallyShipped) => "partiellement expédiée",
        ("fr", S::Shipped) => "expédiée",
        ("fr", S::Delivered) => "livrée",
        ("fr", S::Completed) => "terminée",
        ("fr", S::Cancelled) => "annulée",
        ("nl", S::Accepted) => "geaccepteerd",
        ("nl", S::OnHold) => "in de wacht",
        ("nl", S::Backordered) => "in nabestelling",
        ("nl", S::Processing) => "in behandeling",
        ("nl", S::PartiallyShipped) => "gedeeltelijk verzonden",
        ("nl", S::Shipped) => "verzonden",
        ("nl", S::Delivered) => "bezorgd",
        ("nl", S::Completed) => "afgerond",
        ("nl", S::Cancelled) => "geannuleerd",
        (_, S::Accepted) => "accepted",
        (_, S::OnHold) => "on hold",
        (_, S::Backordered) => "backordered",
        (_, S::Processing) => "being prepared",
        (_, S::PartiallyShipped) => "partially shipped",
        (_, S::Shipped) => "shipped",
        (_, S::Delivered) => "delivered",
        (_, S::Completed) => "completed",
        (_, S::Cancelled) => "cancelled",
    }
}

/// A shipment status in words.
pub(super) fn shipment_status_words(status: ShipmentStatus, language: &str) -> &'static str {
    use ShipmentStatus as S;
    match (language, status) {
        ("de", S::DeliveryFailed) => "Zustellung fehlgeschlagen",
        ("de", S::Returned) => "Rücksendung",
        ("de", S::Exception) => "Problem",
        ("fr", S::DeliveryFailed) => "échec de livraison",
        ("fr", S::Returned) => "retour à l'expéditeur",
        ("fr", S::Exception) => "incident",
        ("nl", S::DeliveryFailed) => "bezorging mislukt",
        ("nl", S::Returned) => "retour afzender",
        ("nl", S::Exception) => "probleem",
        (_, S::DeliveryFailed) => "delivery failed",
        (_, S::Returned) => "returned",
        (_, S::Exception) => "exception",
        (_, S::LabelCreated) => "label created",
        (_, S::InTransit) => "in transit",
        (_, S::OutForDelivery) => "out for delivery",
        (_, S::Delivered) => "delivered",
    }
}
