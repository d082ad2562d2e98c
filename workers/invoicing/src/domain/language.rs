//! The language a document is printed in, and every word it prints in that language.
//!
//! A document is printed in its store's language, chosen from the store's `locale`
//! (`store.invoice_settings_updated`) by its language subtag: `de-AT` → German, `fr-BE` →
//! French, `nl-BE` → Dutch; any other language prints in English. The language is part of
//! the issued document's snapshot ([`super::document::Document::language`]), so a later
//! settings change never changes how an issued document reads; a credit note copies its
//! invoice's language.
//!
//! The texts are data: [`Label::texts`] is one exhaustive `match` whose arms are arrays of
//! one text per language, so a new label does not compile until it has all four texts.
//!
//! French texts put a no-break space (U+00A0) before `:` and `;`, as French typography
//! wants; the PDF never breaks a line there.
//!
//! The legal wordings name the article of Directive 2006/112/EC they rest on in every
//! language (reverse charge Art. 138/196, export Art. 146), in the terms the member states'
//! own law uses: German "Steuerschuldnerschaft des Leistungsempfängers", French
//! "Autoliquidation", Dutch "Btw verlegd". They are generic (EU law), not a country's
//! national wording (e.g. § 19 UStG, art. 293 B du CGI), because the seller may be in any
//! member state. The accountant's explanation of the VAT decision (`reason`) stays English.

use serde::{Deserialize, Serialize};

use super::vat::{Rule, VatIdCheck};

/// A language documents are printed in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    /// English: also every locale that is not one of the others.
    #[default]
    En,
    /// German.
    De,
    /// French.
    Fr,
    /// Dutch.
    Nl,
}

impl Language {
    /// Every language, in the order of [`Label::texts`].
    pub const ALL: [Language; 4] = [Self::En, Self::De, Self::Fr, Self::Nl];

    /// The language of a BCP 47 locale, by its language subtag (`de-AT` → German); English
    /// when it is none of ours.
    pub fn from_locale(locale: &str) -> Self {
        let subtag = locale.split(['-', '_']).next().unwrap_or_default();
        match subtag.to_ascii_lowercase().as_str() {
            "de" => Self::De,
            "fr" => Self::Fr,
            "nl" => Self::Nl,
            _ => Self::En,
        }
    }

    /// The ISO 639-1 code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::De => "de",
            Self::Fr => "fr",
            Self::Nl => "nl",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::En => 0,
            Self::De => 1,
            Self::Fr => 2,
            Self::Nl => 3,
        }
    }

    /// A label in this language.
    pub fn label(self, label: Label) -> &'static str {
        label.texts()[self.index()]
    }

    /// The name of a VAT treatment, as printed next to "VAT treatment".
    pub fn treatment(self, rule: Rule) -> &'static str {
        let texts = match rule {
            Rule::SmallBusiness => [
                "No VAT (small business)",
                "Keine USt. (Kleinunternehmer)",
                "Sans TVA (franchise en base)",
                "Geen btw (kleineondernemersregeling)",
            ],
            Rule::Domestic => ["Domestic", "Inland", "Opération nationale", "Binnenland"],
            Rule::DistanceSaleBelowThreshold => [
                "Distance sale (seller's rates)",
                "Fernverkauf (Steuersätze des Verkäufers)",
                "Vente à distance (taux du vendeur)",
                "Afstandsverkoop (tarieven verkoper)",
            ],
            Rule::DistanceSaleOss => [
                "Distance sale (OSS, destination rates)",
                "Fernverkauf (OSS, Steuersätze des Bestimmungslands)",
                "Vente à distance (OSS, taux du pays de destination)",
                "Afstandsverkoop (OSS, tarieven land van bestemming)",
            ],
            Rule::IntraEuReverseCharge => [
                "Intra-Community supply, exempt",
                "Innergemeinschaftliche Lieferung",
                "Livraison intracommunautaire exonérée",
                "Intracommunautaire levering",
            ],
            Rule::Export => [
                "Export, zero-rated",
                "Steuerfreie Ausfuhrlieferung",
                "Exportation, exonérée",
                "Uitvoer, vrijgesteld",
            ],
        };
        texts[self.index()]
    }

    /// The legal wording a rule requires on the document, if any (Art. 226(11), (11a) of
    /// Directive 2006/112/EC). The English texts are [`super::vat`]'s constants.
    pub fn legal_note(self, rule: Rule) -> Option<&'static str> {
        let texts = match rule {
            // An intra-Community supply is exempt in the dispatch state (Art. 138); the buyer
            // declares the acquisition. It is not a reverse charge of a domestic supply
            // (§ 13b UStG in Germany): each language names the exemption the way its
            // authorities expect it on the invoice (Art. 226(11)).
            Rule::IntraEuReverseCharge => [
                super::vat::REVERSE_CHARGE_WORDING,
                "Steuerfreie innergemeinschaftliche Lieferung (§ 4 Nr. 1 Buchst. b i. V. m. § 6a \
                 UStG; Art. 138 der Richtlinie 2006/112/EG).",
                "Exonération de TVA, article 262 ter, I du CGI\u{a0}: livraison intracommunautaire \
                 de biens (article 138 de la directive 2006/112/CE).",
                "Vrijgestelde intracommunautaire levering van goederen (art. 138 van Richtlijn \
                 2006/112/EG); btw verlegd naar de afnemer voor de intracommunautaire verwerving.",
            ],
            Rule::Export => [
                super::vat::EXPORT_WORDING,
                "Steuerfreie Ausfuhrlieferung: Ausfuhr von Gegenständen aus der Europäischen \
                 Union (Art. 146 der Richtlinie 2006/112/EG).",
                "Exonération de TVA — exportation de biens hors de l'Union européenne (art. 146 \
                 de la directive 2006/112/CE).",
                "Vrijgesteld van btw — uitvoer van goederen buiten de Europese Unie (art. 146 van \
                 Richtlijn 2006/112/EG).",
            ],
            Rule::SmallBusiness => [
                super::vat::SMALL_BUSINESS_WORDING,
                "Keine Umsatzsteuer berechnet: Der Verkäufer wendet die \
                 Kleinunternehmerregelung an.",
                "TVA non applicable\u{a0}: le vendeur bénéficie de la franchise en base de TVA.",
                "Geen btw berekend: de verkoper past de kleineondernemersregeling toe.",
            ],
            Rule::Domestic | Rule::DistanceSaleBelowThreshold | Rule::DistanceSaleOss => {
                return None;
            }
        };
        Some(texts[self.index()])
    }

    /// The sentence on how far the buyer's VAT id was checked.
    pub fn vat_id_check(self, check: VatIdCheck) -> &'static str {
        let texts = match check {
            VatIdCheck::FormatChecked => [
                "Buyer's VAT id: format checked.",
                "USt-IdNr. des Käufers: Format geprüft.",
                "N° de TVA de l'acheteur\u{a0}: format vérifié.",
                "Btw-id van de koper: formaat gecontroleerd.",
            ],
            VatIdCheck::Verified => [
                "Buyer's VAT id: verified with VIES.",
                "USt-IdNr. des Käufers: über VIES bestätigt.",
                "N° de TVA de l'acheteur\u{a0}: vérifié auprès de VIES.",
                "Btw-id van de koper: geverifieerd via VIES.",
            ],
        };
        texts[self.index()]
    }

    /// The payment terms sentence of an invoice.
    pub fn payment_terms(self, days: u16) -> String {
        match (self, days) {
            (Self::En, 0) => "Payable on receipt.".to_owned(),
            (Self::En, d) => format!("Payable within {d} days of the date of issue."),
            (Self::De, 0) => "Zahlbar sofort nach Erhalt.".to_owned(),
            (Self::De, d) => format!("Zahlbar innerhalb von {d} Tagen ab Ausstellungsdatum."),
            (Self::Fr, 0) => "Payable à réception.".to_owned(),
            (Self::Fr, d) => format!("Payable sous {d} jours à compter de la date d'émission."),
            (Self::Nl, 0) => "Te betalen bij ontvangst.".to_owned(),
            (Self::Nl, d) => format!("Te betalen binnen {d} dagen na de uitgiftedatum."),
        }
    }

    /// What a French invoice must also say about late payment (art. L441-10 and D441-5 of
    /// the Code de commerce, art. 242 nonies A of annex II to the CGI): the penalty rate,
    /// the EUR 40 recovery indemnity, and that there is no discount for early payment.
    pub fn late_payment(self) -> Option<&'static str> {
        match self {
            Self::Fr => Some(
                "En cas de retard de paiement, des pénalités au taux de trois fois le taux \
                 d'intérêt légal sont exigibles, ainsi qu'une indemnité forfaitaire de 40\u{a0}€ \
                 pour frais de recouvrement (art. L441-10 et D441-5 du Code de commerce). \
                 Pas d'escompte pour paiement anticipé.",
            ),
            Self::En | Self::De | Self::Nl => None,
        }
    }

    /// The VAT in the national currency where it is due (Art. 230), with the ECB rate used.
    pub fn vat_in_national(self, c: &super::fx::Conversion, invoice_currency: &str) -> String {
        let vat = self.amount_in(c.vat, &c.currency);
        let day = self.date(c.rate_day);
        let rate = self.amount(c.rate);
        let cur = &c.currency;
        match self {
            Self::En => format!(
                "VAT in {cur}: {vat} (ECB reference rate of {day}: 1 {cur} = {rate} {invoice_currency})"
            ),
            Self::De => format!(
                "USt. in {cur}: {vat} (EZB-Referenzkurs vom {day}: 1 {cur} = {rate} {invoice_currency})"
            ),
            Self::Fr => format!(
                "TVA en {cur}\u{a0}: {vat} (taux de référence BCE du {day}\u{a0}: 1 {cur} = {rate} {invoice_currency})"
            ),
            Self::Nl => format!(
                "Btw in {cur}: {vat} (ECB-referentiekoers van {day}: 1 {cur} = {rate} {invoice_currency})"
            ),
        }
    }

    /// "Page n of m".
    pub fn page(self, n: usize, of: usize) -> String {
        match self {
            Self::En => format!("Page {n} of {of}"),
            Self::De => format!("Seite {n} von {of}"),
            Self::Fr => format!("Page {n} sur {of}"),
            Self::Nl => format!("Pagina {n} van {of}"),
        }
    }

    /// Every fixed text of this language (for the PDF's font subset).
    pub fn all_texts(self) -> Vec<String> {
        let rules = [
            Rule::SmallBusiness,
            Rule::Domestic,
            Rule::DistanceSaleBelowThreshold,
            Rule::DistanceSaleOss,
            Rule::IntraEuReverseCharge,
            Rule::Export,
        ];
        let mut out: Vec<String> = Label::ALL
            .iter()
            .map(|l| self.label(*l).to_owned())
            .collect();
        for rule in rules {
            out.push(self.treatment(rule).to_owned());
            out.extend(self.legal_note(rule).map(str::to_owned));
        }
        for check in [VatIdCheck::FormatChecked, VatIdCheck::Verified] {
            out.push(self.vat_id_check(check).to_owned());
        }
        out.push(self.payment_terms(0));
        out.push(self.payment_terms(14));
        out.push(self.page(1, 2));
        out
    }
}

/// A fixed label printed on a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Label {
    /// The title of an invoice.
    Invoice,
    /// The title of a credit note.
    CreditNote,
    /// "Invoice number".
    InvoiceNumber,
    /// "Credit note number".
    CreditNoteNumber,
    /// "Date of issue".
    DateOfIssue,
    /// "Date of supply" (Art. 226(7)).
    DateOfSupply,
    /// "Order" (the buyer's order number).
    Order,
    /// "Currency".
    Currency,
    /// "VAT treatment".
    VatTreatment,
    /// "Credits invoice" (on a credit note).
    CreditsInvoice,
    /// "of" (the credited invoice's date).
    Of,
    /// "Reason" (of a credit note).
    Reason,
    /// The seller's block.
    Seller,
    /// The buyer's block.
    Buyer,
    /// The delivery address block.
    DeliveredTo,
    /// After the title on later pages.
    Continued,
    /// Table: position.
    Pos,
    /// Table: description and SKU.
    Description,
    /// Table: quantity.
    Qty,
    /// Table: net unit price (followed by the currency).
    UnitNet,
    /// Table: discount.
    Discount,
    /// Table: VAT rate.
    VatPercent,
    /// Table and breakdown: net.
    Net,
    /// Table and breakdown: VAT.
    Vat,
    /// Breakdown: rate.
    VatRate,
    /// Totals: net.
    TotalNet,
    /// Totals: VAT.
    TotalVat,
    /// Totals: gross (invoice).
    Total,
    /// Totals: gross (credit note).
    TotalCredited,
    /// A party's VAT id.
    VatId,
    /// A party's national tax number.
    TaxNumber,
    /// The title of the shipping line.
    Shipping,
    /// The title of a credit note's line for a free amount (a goodwill refund).
    PriceReduction,
    /// Before an exempt line's provision (Art. 226(11)).
    ExemptUnder,
}

impl Label {
    /// Every label (a test checks it lists each variant).
    pub const ALL: [Label; 34] = [
        Self::Invoice,
        Self::CreditNote,
        Self::InvoiceNumber,
        Self::CreditNoteNumber,
        Self::DateOfIssue,
        Self::DateOfSupply,
        Self::Order,
        Self::Currency,
        Self::VatTreatment,
        Self::CreditsInvoice,
        Self::Of,
        Self::Reason,
        Self::Seller,
        Self::Buyer,
        Self::DeliveredTo,
        Self::Continued,
        Self::Pos,
        Self::Description,
        Self::Qty,
        Self::UnitNet,
        Self::Discount,
        Self::VatPercent,
        Self::Net,
        Self::Vat,
        Self::VatRate,
        Self::TotalNet,
        Self::TotalVat,
        Self::Total,
        Self::TotalCredited,
        Self::VatId,
        Self::TaxNumber,
        Self::Shipping,
        Self::PriceReduction,
        Self::ExemptUnder,
    ];

    /// The label in English, German, French and Dutch ([`Language::ALL`]'s order).
    pub fn texts(self) -> [&'static str; 4] {
        match self {
            Self::Invoice => ["Invoice", "Rechnung", "Facture", "Factuur"],
            // German: "Gutschrift" would mean a self-billed invoice (§ 14 Abs. 2 UStG).
            Self::CreditNote => ["Credit note", "Rechnungskorrektur", "Avoir", "Creditnota"],
            Self::InvoiceNumber => [
                "Invoice number",
                "Rechnungsnummer",
                "Numéro de facture",
                "Factuurnummer",
            ],
            Self::CreditNoteNumber => [
                "Credit note number",
                "Korrekturnummer",
                "Numéro d'avoir",
                "Creditnotanummer",
            ],
            Self::DateOfIssue => [
                "Date of issue",
                "Ausstellungsdatum",
                "Date d'émission",
                "Uitgiftedatum",
            ],
            Self::DateOfSupply => [
                "Date of supply",
                "Liefer-/Leistungsdatum",
                "Date de livraison",
                "Leveringsdatum",
            ],
            Self::Order => ["Order", "Bestellung", "Commande", "Bestelling"],
            Self::Currency => ["Currency", "Währung", "Devise", "Valuta"],
            Self::VatTreatment => [
                "VAT treatment",
                "Steuerliche Behandlung",
                "Régime de TVA",
                "Btw-behandeling",
            ],
            Self::CreditsInvoice => [
                "Credits invoice",
                "Korrigiert Rechnung",
                "Avoir sur la facture",
                "Crediteert factuur",
            ],
            Self::Of => ["of", "vom", "du", "van"],
            Self::Reason => ["Reason", "Grund", "Motif", "Reden"],
            Self::Seller => ["SELLER", "VERKÄUFER", "VENDEUR", "VERKOPER"],
            Self::Buyer => ["BUYER", "KÄUFER", "ACHETEUR", "KOPER"],
            Self::DeliveredTo => ["DELIVERED TO", "LIEFERANSCHRIFT", "LIVRÉ À", "AFLEVERADRES"],
            Self::Continued => ["(continued)", "(Fortsetzung)", "(suite)", "(vervolg)"],
            Self::Pos => ["Pos.", "Pos.", "N°", "Nr."],
            Self::Description => [
                "Description (SKU)",
                "Bezeichnung (Art.-Nr.)",
                "Désignation (réf.)",
                "Omschrijving (art.nr.)",
            ],
            Self::Qty => ["Qty", "Menge", "Qté", "Aantal"],
            Self::UnitNet => ["Unit net", "EP netto", "PU HT", "Prijs"],
            Self::Discount => ["Discount", "Rabatt", "Remise", "Korting"],
            Self::VatPercent => ["VAT %", "USt. %", "TVA %", "Btw %"],
            Self::Net => ["Net", "Netto", "HT", "Netto"],
            Self::Vat => ["VAT", "USt.", "TVA", "Btw"],
            Self::VatRate => ["VAT rate", "USt.-Satz", "Taux de TVA", "Btw-tarief"],
            Self::TotalNet => ["Total net", "Summe netto", "Total HT", "Totaal excl. btw"],
            Self::TotalVat => ["Total VAT", "Summe USt.", "Total TVA", "Totaal btw"],
            Self::Total => ["Total", "Gesamtbetrag", "Total TTC", "Totaal incl. btw"],
            Self::TotalCredited => [
                "Total credited",
                "Gesamtbetrag der Korrektur",
                "Total TTC crédité",
                "Totaal gecrediteerd",
            ],
            Self::VatId => ["VAT id", "USt-IdNr.", "N° TVA", "Btw-id"],
            Self::TaxNumber => ["Tax number", "Steuernummer", "N° fiscal", "Fiscaal nummer"],
            Self::Shipping => [
                "Shipping",
                "Versandkosten",
                "Frais de port",
                "Verzendkosten",
            ],
            Self::PriceReduction => [
                "Price reduction",
                "Preisnachlass",
                "Réduction de prix",
                "Prijsvermindering",
            ],
            Self::ExemptUnder => [
                "Exempt from VAT under",
                "Steuerfrei nach",
                "Exonération de TVA,",
                "Vrijgesteld van btw op grond van",
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: [Rule; 6] = [
        Rule::SmallBusiness,
        Rule::Domestic,
        Rule::DistanceSaleBelowThreshold,
        Rule::DistanceSaleOss,
        Rule::IntraEuReverseCharge,
        Rule::Export,
    ];

    /// Every label, rule and check has a non-empty text in `lang`.
    fn complete(lang: Language) {
        for label in Label::ALL {
            assert!(
                !lang.label(label).trim().is_empty(),
                "{label:?} in {lang:?}"
            );
        }
        for rule in RULES {
            assert!(!lang.treatment(rule).is_empty(), "{rule:?} in {lang:?}");
        }
        assert!(!lang.vat_id_check(VatIdCheck::FormatChecked).is_empty());
        assert!(lang.vat_id_check(VatIdCheck::Verified).contains("VIES"));
        assert!(!lang.payment_terms(0).is_empty());
        assert!(lang.payment_terms(14).contains("14"));
        // The wording names its article in every language.
        let rc = lang
            .legal_note(Rule::IntraEuReverseCharge)
            .expect("reverse charge wording");
        assert!(rc.contains("138") && rc.contains("2006/112/"), "{rc}");
        // Not the reverse-charge wording of a domestic supply.
        assert!(
            !rc.contains("13b") && !rc.contains("Steuerschuldnerschaft"),
            "{rc}"
        );
        let export = lang.legal_note(Rule::Export).expect("export wording");
        assert!(export.contains("146") && export.contains("2006/112/"));
        assert!(lang.legal_note(Rule::SmallBusiness).is_some());
        for rule in [
            Rule::Domestic,
            Rule::DistanceSaleBelowThreshold,
            Rule::DistanceSaleOss,
        ] {
            assert_eq!(lang.legal_note(rule), None);
        }
    }

    #[test]
    fn all_lists_every_label_once() {
        // `texts` is an exhaustive match, so a new variant needs its four texts; this
        // checks `ALL` (used for the font subset) has it too: `Label::ALL`'s length is
        // fixed by its type, and no variant appears twice.
        for (i, a) in Label::ALL.iter().enumerate() {
            for b in &Label::ALL[i + 1..] {
                assert_ne!(a, b);
            }
        }
        let last = |l: Label| match l {
            Label::ExemptUnder => true,
            Label::PriceReduction
            | Label::Shipping
            | Label::Invoice
            | Label::CreditNote
            | Label::InvoiceNumber
            | Label::CreditNoteNumber
            | Label::DateOfIssue
            | Label::DateOfSupply
            | Label::Order
            | Label::Currency
            | Label::VatTreatment
            | Label::CreditsInvoice
            | Label::Of
            | Label::Reason
            | Label::Seller
            | Label::Buyer
            | Label::DeliveredTo
            | Label::Continued
            | Label::Pos
            | Label::Description
            | Label::Qty
            | Label::UnitNet
            | Label::Discount
            | Label::VatPercent
            | Label::Net
            | Label::Vat
            | Label::VatRate
            | Label::TotalNet
            | Label::TotalVat
            | Label::Total
            | Label::TotalCredited
            | Label::VatId
            | Label::TaxNumber => false,
        };
        // A new variant breaks this exhaustive match: add it to the match and to `ALL`.
        assert_eq!(Label::ALL.iter().filter(|l| last(**l)).count(), 1);
    }

    #[test]
    fn locale_picks_the_language_by_its_subtag() {
        assert_eq!(Language::from_locale("de-DE"), Language::De);
        assert_eq!(Language::from_locale("de-AT"), Language::De);
        assert_eq!(Language::from_locale("de"), Language::De);
        assert_eq!(Language::from_locale("fr-BE"), Language::Fr);
        assert_eq!(Language::from_locale("nl-BE"), Language::Nl);
        assert_eq!(Language::from_locale("nl"), Language::Nl);
        assert_eq!(Language::from_locale("en-GB"), Language::En);
        assert_eq!(Language::from_locale("es-ES"), Language::En);
        assert_eq!(Language::from_locale("zh-Hant-TW"), Language::En);
        assert_eq!(Language::from_locale(""), Language::En);
    }

    #[test]
    fn stored_form_defaults_to_english() {
        assert_eq!(Language::default(), Language::En);
        assert_eq!(
            serde_json::to_string(&Language::De).expect("json"),
            "\"de\""
        );
        for l in Language::ALL {
            assert_eq!(
                serde_json::to_string(&l).expect("json"),
                format!("\"{}\"", l.as_str())
            );
        }
    }

    #[test]
    fn english_is_complete_and_keeps_the_existing_wording() {
        let l = Language::En;
        complete(l);
        assert_eq!(l.label(Label::Invoice), "Invoice");
        assert_eq!(l.label(Label::DateOfSupply), "Date of supply");
        assert_eq!(
            l.legal_note(Rule::IntraEuReverseCharge),
            Some(super::super::vat::REVERSE_CHARGE_WORDING)
        );
        assert_eq!(l.page(2, 3), "Page 2 of 3");
        assert_eq!(
            l.payment_terms(14),
            "Payable within 14 days of the date of issue."
        );
    }

    #[test]
    fn german_is_complete_and_uses_the_legal_terms() {
        let l = Language::De;
        complete(l);
        assert_eq!(l.label(Label::Invoice), "Rechnung");
        assert_eq!(l.label(Label::VatId), "USt-IdNr.");
        assert!(
            l.legal_note(Rule::IntraEuReverseCharge)
                .expect("rc")
                .starts_with("Steuerfreie innergemeinschaftliche Lieferung (§ 4 Nr. 1 Buchst. b")
        );
        assert!(
            l.legal_note(Rule::Export)
                .expect("export")
                .contains("Steuerfreie Ausfuhrlieferung")
        );
        assert_eq!(l.page(1, 2), "Seite 1 von 2");
        assert!(l.payment_terms(30).contains("30 Tagen"));
    }

    #[test]
    fn french_is_complete_and_uses_the_legal_terms() {
        let l = Language::Fr;
        complete(l);
        assert_eq!(l.label(Label::Invoice), "Facture");
        assert_eq!(l.label(Label::CreditNote), "Avoir");
        assert!(
            l.legal_note(Rule::IntraEuReverseCharge)
                .expect("rc")
                .starts_with("Exonération de TVA, article 262 ter, I du CGI")
        );
        assert!(
            l.legal_note(Rule::Export)
                .expect("export")
                .starts_with("Exonération de TVA — exportation")
        );
        assert_eq!(l.page(1, 2), "Page 1 sur 2");
    }

    #[test]
    fn dutch_is_complete_and_uses_the_legal_terms() {
        let l = Language::Nl;
        complete(l);
        assert_eq!(l.label(Label::Invoice), "Factuur");
        assert!(
            l.legal_note(Rule::IntraEuReverseCharge)
                .expect("rc")
                .starts_with("Vrijgestelde intracommunautaire levering")
        );
        assert!(
            l.legal_note(Rule::Export)
                .expect("export")
                .starts_with("Vrijgesteld van btw — uitvoer")
        );
        assert_eq!(l.page(1, 2), "Pagina 1 van 2");
    }

    #[test]
    fn translations_differ_from_english() {
        // A copy-pasted English text in another language is a missing translation; these
        // labels are different words in every language.
        for label in [
            Label::Invoice,
            Label::CreditNote,
            Label::InvoiceNumber,
            Label::DateOfIssue,
            Label::DateOfSupply,
            Label::Seller,
            Label::Buyer,
            Label::TotalNet,
            Label::VatId,
            Label::TaxNumber,
        ] {
            let t = label.texts();
            for other in &t[1..] {
                assert_ne!(*other, t[0], "{label:?}");
            }
        }
    }
}
