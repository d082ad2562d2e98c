//! Renders a [`Document`] to an A4 PDF with `printpdf`.
//!
//! The font is DejaVu Sans, vendored in `assets/fonts/` with its licence (Bitstream Vera
//! licence, public-domain changes): it covers Latin, Greek and Cyrillic, so every EU
//! language's names, and the € sign. It is embedded, never taken from the system.
//!
//! A PDF embeds a subset of the font, cut with `allsorts` (the crate printpdf itself uses)
//! before printpdf sees it; without that, `printpdf` (built without its heavy `text_layout`
//! feature) would embed the whole 740 KB font in every invoice. Nearly every document uses
//! only Latin letters and common signs, so one shared subset (ASCII, Latin-1, Latin
//! Extended-A, the euro, typographic punctuation) is cut and deflated once per process and
//! embedded as is; a document with other characters (Greek, Cyrillic) gets its own subset.
//! Subsetting and deflating were most of a render's cost. The parsed full font (glyph map
//! and advance widths, used for measuring right-aligned amounts) is loaded once per process.
//!
//! Every fixed text is in the document's language ([`Document::language`], texts in
//! [`crate::domain::language`]); dates print as ISO `YYYY-MM-DD` and amounts with a decimal
//! point in every language.
//!
//! Layout: seller and document facts at the top, buyer (and delivery address), a line table
//! whose header repeats on every page, then the per-rate breakdown, the totals, the VAT
//! wording, payment terms and the store's footer; every page says "Page n of m". Amounts
//! are right-aligned by measuring their width with the font's advance widths.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use printpdf::{
    Color, FontId, Greyscale, Line, LinePoint, Mm, Op, ParsedFont, PdfDocument, PdfFontHandle,
    PdfPage, PdfSaveOptions, Point, Pt, TextItem, TextMatrix,
};
use rust_decimal::Decimal;

use crate::domain::document::{Document, DocumentKind, Party};
use crate::domain::language::{Label, Language};

/// DejaVu Sans (see `assets/fonts/LICENSE-DejaVu.txt`).
static FONT_BYTES: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

/// A4 in points.
const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 42.0;
const BODY: f32 = 8.5;
const ROW: f32 = 13.0;
/// Lowest baseline of table rows; the space below is for the page footer.
const TABLE_BOTTOM: f32 = 80.0;

/// A PDF that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// The vendored font did not parse or subset.
    #[error("PDF font: {0}")]
    Font(String),
    /// The document could not be written out.
    #[error("writing the PDF: {0}")]
    Write(String),
}

struct FullFont {
    parsed: ParsedFont,
}

fn full_font() -> Result<&'static FullFont, PdfError> {
    static FONT: OnceLock<Option<FullFont>> = OnceLock::new();
    FONT.get_or_init(|| {
        let mut warnings = Vec::new();
        ParsedFont::from_bytes(FONT_BYTES, 0, &mut warnings).map(|parsed| FullFont { parsed })
    })
    .as_ref()
    .ok_or_else(|| PdfError::Font("the vendored DejaVu Sans does not parse".into()))
}

impl FullFont {
    fn glyph(&self, c: char) -> Option<u16> {
        self.parsed.lookup_glyph_index(u32::from(c))
    }

    /// Width of `s` at `size` points.
    fn width(&self, s: &str, size: f32) -> f32 {
        let upem = f32::from(self.parsed.units_per_em.max(1));
        s.chars()
            .map(|c| {
                let gid = self.glyph(c).unwrap_or(0);
                f32::from(self.parsed.get_glyph_width(gid).unwrap_or(0))
            })
            .sum::<f32>()
            * size
            / upem
    }
}

/// The font embedded in one document: the glyphs of `text` only.
fn subset_font(full: &FullFont, chars: &BTreeSet<char>) -> Result<ParsedFont, PdfError> {
    use allsorts::binary::read::ReadScope;
    use allsorts::font_data::FontData;
    use allsorts::subset::{CmapTarget, SubsetProfile, subset};

    let mut gids: BTreeSet<u16> = BTreeSet::new();
    for c in chars {
        if let Some(g) = full.glyph(*c) {
            gids.insert(g);
        }
    }
    let ids: Vec<u16> = std::iter::once(0)
        .chain(gids.iter().copied().filter(|g| *g != 0))
        .collect();
    let scope = ReadScope::new(FONT_BYTES);
    let font_file = scope
        .read::<FontData<'_>>()
        .map_err(|e| PdfError::Font(e.to_string()))?;
    let provider = font_file
        .table_provider(0)
        .map_err(|e| PdfError::Font(e.to_string()))?;
    let bytes = subset(&provider, &ids, &SubsetProfile::Pdf, CmapTarget::Unicode)
        .map_err(|e| PdfError::Font(e.to_string()))?;
    let mut warnings = Vec::new();
    let mut parsed = ParsedFont::from_bytes(&bytes, 0, &mut warnings)
        .ok_or_else(|| PdfError::Font("the subset font does not parse".into()))?;
    // The subset numbers glyphs by their position in `ids`; map characters accordingly
    // rather than trusting the subset's own cmap.
    let position: BTreeMap<u16, u16> = ids
        .iter()
        .enumerate()
        .filter_map(|(i, g)| u16::try_from(i).ok().map(|i| (*g, i)))
        .collect();
    parsed.codepoint_to_glyph = chars
        .iter()
        .filter_map(|c| {
            let g = full.glyph(*c)?;
            Some((u32::from(*c), *position.get(&g)?))
        })
        .collect();
    Ok(parsed)
}

/// An amount as English writes it: `1,234.56` (documents use their language's
/// [`Language::amount`]).
pub fn money(amount: Decimal) -> String {
    Language::En.amount(amount)
}

/// An amount with its currency as English writes it: `1,234.56 €`.
pub fn money_in(amount: Decimal, currency: &str) -> String {
    Language::En.amount_in(amount, currency)
}

/// Draws onto pages; knows the font for measuring.
struct Canvas<'a> {
    font: &'a FullFont,
    id: FontId,
    pages: Vec<Vec<Op>>,
    current: usize,
}

impl Canvas<'_> {
    fn ops(&mut self) -> &mut Vec<Op> {
        while self.pages.len() <= self.current {
            self.pages.push(Vec::new());
        }
        &mut self.pages[self.current]
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.current = self.pages.len() - 1;
    }

    fn text(&mut self, x: f32, y: f32, size: f32, s: &str) {
        let font = PdfFontHandle::External(self.id.clone());
        let ops = self.ops();
        ops.push(Op::StartTextSection);
        ops.push(Op::SetFont {
            font,
            size: Pt(size),
        });
        ops.push(Op::SetTextMatrix {
            matrix: TextMatrix::Translate(Pt(x), Pt(y)),
        });
        ops.push(Op::ShowText {
            items: vec![TextItem::Text(s.to_owned())],
        });
        ops.push(Op::EndTextSection);
    }

    /// Text whose right edge is at `right`.
    fn text_right(&mut self, right: f32, y: f32, size: f32, s: &str) {
        let w = self.font.width(s, size);
        self.text(right - w, y, size, s);
    }

    /// `s` cut to fit `max` points, with an ellipsis.
    fn fit(&self, s: &str, size: f32, max: f32) -> String {
        if self.font.width(s, size) <= max {
            return s.to_owned();
        }
        let mut out = String::new();
        for c in s.chars() {
            out.push(c);
            if self.font.width(&out, size) + self.font.width("…", size) > max {
                out.pop();
                break;
            }
        }
        out.push('…');
        out
    }

    /// Words of `s` wrapped to `max` points. Breaks at ASCII whitespace only, never at a
    /// no-break space (U+00A0, before French `:` and `;`).
    fn wrap(&self, s: &str, size: f32, max: f32) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::new();
        for word in s.split_ascii_whitespace() {
            let candidate = if line.is_empty() {
                word.to_owned()
            } else {
                format!("{line} {word}")
            };
            if self.font.width(&candidate, size) > max && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                line = word.to_owned();
            } else {
                line = candidate;
            }
        }
        if !line.is_empty() {
            lines.push(line);
        }
        lines
    }

    fn rule(&mut self, y: f32, grey: f32, thickness: f32) {
        let ops = self.ops();
        ops.push(Op::SetOutlineColor {
            col: Color::Greyscale(Greyscale {
                percent: grey,
                icc_profile: None,
            }),
        });
        ops.push(Op::SetOutlineThickness { pt: Pt(thickness) });
        ops.push(Op::DrawLine {
            line: Line {
                points: vec![
                    LinePoint {
                        p: Point {
                            x: Pt(MARGIN),
                            y: Pt(y),
                        },
                        bezier: false,
                    },
                    LinePoint {
                        p: Point {
                            x: Pt(PAGE_W - MARGIN),
                            y: Pt(y),
                        },
                        bezier: false,
                    },
                ],
                is_closed: false,
            },
        });
    }
}

/// The table's columns: (header, right edge or left x, right-aligned).
const COL_POS: f32 = MARGIN;
const COL_DESC: f32 = MARGIN + 22.0;
const COL_QTY_R: f32 = 318.0;
const COL_UNIT_R: f32 = 378.0;
const COL_DISC_R: f32 = 428.0;
const COL_RATE_R: f32 = 463.0;
const COL_NET_R: f32 = 513.0;
const COL_VAT_R: f32 = PAGE_W - MARGIN;

fn table_header(c: &mut Canvas<'_>, y: f32, currency: &str, lang: Language) {
    let l = |label| lang.label(label);
    c.text(COL_POS, y, BODY, l(Label::Pos));
    c.text(COL_DESC, y, BODY, l(Label::Description));
    c.text_right(COL_QTY_R, y, BODY, l(Label::Qty));
    c.text_right(
        COL_UNIT_R,
        y,
        BODY,
        &format!("{} {currency}", l(Label::UnitNet)),
    );
    c.text_right(COL_DISC_R, y, BODY, l(Label::Discount));
    c.text_right(COL_RATE_R, y, BODY, l(Label::VatPercent));
    c.text_right(COL_NET_R, y, BODY, l(Label::Net));
    c.text_right(COL_VAT_R, y, BODY, l(Label::Vat));
    c.rule(y - 4.0, 0.0, 0.6);
}

fn party_block(
    c: &mut Canvas<'_>,
    x: f32,
    mut y: f32,
    title: &str,
    p: &Party,
    lang: Language,
) -> f32 {
    c.text(x, y, 7.0, title);
    y -= 11.0;
    c.text(x, y, 10.0, &p.name);
    y -= 12.0;
    if let Some(att) = &p.attention {
        c.text(x, y, BODY, att);
        y -= 11.0;
    }
    for line in &p.lines {
        c.text(x, y, BODY, line);
        y -= 11.0;
    }
    c.text(x, y, BODY, &p.city_line);
    y -= 11.0;
    c.text(x, y, BODY, &p.country);
    y -= 11.0;
    if let Some(v) = &p.vat_id {
        c.text(x, y, BODY, &format!("{}: {v}", lang.label(Label::VatId)));
        y -= 11.0;
    }
    if let Some(t) = &p.tax_number {
        c.text(
            x,
            y,
            BODY,
            &format!("{}: {t}", lang.label(Label::TaxNumber)),
        );
        y -= 11.0;
    }
    y
}

/// The characters of the shared subset: ASCII, Latin-1's letters and signs, Latin
/// Extended-A (Central European names), the euro and typographic punctuation.
fn common_characters() -> BTreeSet<char> {
    (' '..='~')
        .chain('\u{a0}'..='\u{ff}')
        .chain('\u{100}'..='\u{17f}')
        .chain("€–—‘’‚“”„…•·′″‹›".chars())
        .collect()
}

/// One subset of the font for every document whose characters it covers (nearly all in
/// the languages we print): subsetting is the most expensive step of a render, and a
/// per-document subset only saves a few KB that the database compresses anyway. A document
/// with other characters (Greek, Cyrillic names) gets its own subset.
fn common_font(
    full: &FullFont,
) -> Result<(&'static ParsedFont, &'static BTreeSet<char>), PdfError> {
    static COMMON: OnceLock<Result<(ParsedFont, BTreeSet<char>), String>> = OnceLock::new();
    let built = COMMON.get_or_init(|| {
        let chars: BTreeSet<char> = common_characters()
            .into_iter()
            .filter(|c| full.glyph(*c).is_some())
            .collect();
        subset_font(full, &chars)
            .map(|font| (font, chars))
            .map_err(|e| e.to_string())
    });
    match built {
        Ok((font, chars)) => Ok((font, chars)),
        Err(e) => Err(PdfError::Font(e.clone())),
    }
}

/// Every character the document prints (for the font subset).
fn characters(doc: &Document) -> BTreeSet<char> {
    let json = serde_json::to_string(doc).unwrap_or_default();
    let mut set: BTreeSet<char> = json.chars().collect();
    for s in doc.language.all_texts() {
        set.extend(s.chars());
    }
    // Labels, digits and punctuation used by the layout.
    set.extend(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .,:;-–+()%/€…·'\"#*"
            .chars(),
    );
    set
}

/// Renders the document as a Factur-X PDF with its CII embedded. Returns the PDF bytes and
/// the number of pages.
pub fn render(doc: &Document) -> Result<(Vec<u8>, usize), PdfError> {
    render_with(doc, &crate::einvoice::cii(doc))
}

/// Renders the document with `cii` (its [`crate::einvoice::cii`], made by a caller that
/// needs it too) embedded.
pub fn render_with(doc: &Document, cii: &str) -> Result<(Vec<u8>, usize), PdfError> {
    let full = full_font()?;
    let lang = doc.language;
    let l = |label| lang.label(label);
    let treatment = lang.treatment(doc.rule);
    let chars = characters(doc);
    let own;
    let (subset, shared) = match common_font(full)? {
        (common, covered) if chars.is_subset(covered) => (common, true),
        _ => {
            own = subset_font(full, &chars)?;
            (&own, false)
        }
    };
    let title = match doc.kind {
        DocumentKind::Invoice => l(Label::Invoice),
        DocumentKind::CreditNote => l(Label::CreditNote),
    };
    let mut pdf = PdfDocument::new(&format!("{title} {}", doc.number));
    let id = pdf.add_font(subset);
    let mut c = Canvas {
        font: full,
        id,
        pages: vec![Vec::new()],
        current: 0,
    };
    let cur = doc.currency.as_str();
    let right = PAGE_W - MARGIN;

    // --- head --------------------------------------------------------------------------
    let mut y = PAGE_H - MARGIN - 6.0;
    c.text(MARGIN, y, 18.0, &format!("{title} {}", doc.number));
    y -= 26.0;
    let seller_end = party_block(&mut c, MARGIN, y, l(Label::Seller), &doc.seller, lang);
    let facts_x = 340.0;
    let mut fy = y;
    let mut fact = |c: &mut Canvas<'_>, label: &str, value: &str| {
        c.text(facts_x, fy, BODY, label);
        // A value that does not fit beside its label goes right-aligned on the next line.
        let wide = c.font.width(label, BODY) + 8.0 + c.font.width(value, BODY);
        if wide > right - facts_x {
            fy -= 11.0;
        }
        c.text_right(right, fy, BODY, value);
        fy -= 11.0;
    };
    let number_label = match doc.kind {
        DocumentKind::Invoice => l(Label::InvoiceNumber),
        DocumentKind::CreditNote => l(Label::CreditNoteNumber),
    };
    fact(&mut c, number_label, &doc.number);
    fact(&mut c, l(Label::DateOfIssue), &lang.date(doc.issue_date));
    fact(&mut c, l(Label::DateOfSupply), &lang.date(doc.supply_date));
    let order = c.fit(&doc.order_reference, BODY, 120.0);
    fact(&mut c, l(Label::Order), &order);
    fact(&mut c, l(Label::Currency), cur);
    fact(&mut c, l(Label::VatTreatment), treatment);
    if let Some(credited) = &doc.credits {
        fact(&mut c, l(Label::CreditsInvoice), &credited.number);
        fact(&mut c, l(Label::Of), &lang.date(credited.issue_date));
    }
    y = seller_end.min(fy) - 10.0;
    let buyer_end = party_block(&mut c, MARGIN, y, l(Label::Buyer), &doc.buyer, lang);
    let ship_end = match &doc.ship_to {
        Some(ship) => party_block(&mut c, facts_x, y, l(Label::DeliveredTo), ship, lang),
        None => y,
    };
    y = buyer_end.min(ship_end) - 8.0;
    if let Some(credited) = &doc.credits {
        for line in c.wrap(
            &format!("{}: {}", l(Label::Reason), credited.reason),
            BODY,
            right - MARGIN,
        ) {
            c.text(MARGIN, y, BODY, &line);
            y -= 11.0;
        }
    }
    y -= 8.0;

    // --- lines -------------------------------------------------------------------------
    table_header(&mut c, y, cur, lang);
    y -= ROW + 2.0;
    let desc_max = COL_QTY_R - 30.0 - COL_DESC;
    for (i, line) in doc.lines.iter().enumerate() {
        if y < TABLE_BOTTOM {
            c.new_page();
            y = PAGE_H - MARGIN - 6.0;
            c.text(
                MARGIN,
                y,
                10.0,
                &format!("{title} {} {}", doc.number, l(Label::Continued)),
            );
            y -= 20.0;
            table_header(&mut c, y, cur, lang);
            y -= ROW + 2.0;
        }
        let description = if line.sku.is_empty() {
            line.title.clone()
        } else {
            format!("{} ({})", line.title, line.sku)
        };
        c.text(COL_POS, y, BODY, &(i + 1).to_string());
        let d = c.fit(&description, BODY, desc_max);
        c.text(COL_DESC, y, BODY, &d);
        c.text_right(COL_QTY_R, y, BODY, &line.quantity.to_string());
        c.text_right(COL_UNIT_R, y, BODY, &lang.unit_price(line.unit_price_net));
        // The discount net of VAT, so quantity × unit price − discount is the line's net on
        // paper (the discount as given is gross when prices include VAT).
        let discount = if line.discount.is_zero() {
            String::new()
        } else {
            let before = (Decimal::from(line.quantity) * line.unit_price_net).round_dp(2);
            lang.amount((before - line.net).max(Decimal::ZERO))
        };
        c.text_right(COL_DISC_R, y, BODY, &discount);
        c.text_right(COL_RATE_R, y, BODY, &lang.percent(line.rate));
        c.text_right(COL_NET_R, y, BODY, &lang.amount(line.net));
        c.text_right(COL_VAT_R, y, BODY, &lang.amount(line.tax));
        y -= ROW;
    }
    c.rule(y + ROW - 4.0, 0.0, 0.6);

    // --- breakdown and totals, kept together ----------------------------------------------
    // Under which provision each exempt line is exempt (Art. 226(11)), then the legal note.
    let mut exemptions: Vec<(&str, Vec<String>)> = Vec::new();
    for (i, line) in doc.lines.iter().enumerate() {
        if let Some(reference) = line.exemption_reference.as_deref() {
            let pos = (i + 1).to_string();
            match exemptions.iter_mut().find(|(r, _)| *r == reference) {
                Some((_, positions)) => positions.push(pos),
                None => exemptions.push((reference, vec![pos])),
            }
        }
    }
    let mut note_lines: Vec<String> = Vec::new();
    for (reference, positions) in &exemptions {
        let text = format!(
            "{} {reference} ({} {})",
            l(Label::ExemptUnder),
            l(Label::Pos),
            positions.join(", ")
        );
        note_lines.extend(c.wrap(&text, BODY, right - MARGIN));
    }
    if let Some(note) = &doc.legal_note {
        note_lines.extend(c.wrap(note, BODY, right - MARGIN));
    }
    // The decision's reason (the rule explanation, the store's running distance-sales
    // totals) is the audit record, stored with the invoice: it is not printed.
    let late_payment = if lang.late_payment().is_some() {
        40.0
    } else {
        0.0
    };
    let needed = ROW * (doc.breakdown.len() as f32 + 5.0)
        + 11.0 * (note_lines.len() + 4) as f32
        + late_payment;
    if y - needed < TABLE_BOTTOM - 30.0 {
        c.new_page();
        y = PAGE_H - MARGIN - 6.0;
        c.text(
            MARGIN,
            y,
            10.0,
            &format!("{title} {} {}", doc.number, l(Label::Continued)),
        );
        y -= 24.0;
    }
    y -= 6.0;
    let label_x = 300.0;
    c.text(label_x, y, BODY, l(Label::VatRate));
    c.text_right(COL_NET_R, y, BODY, l(Label::Net));
    c.text_right(COL_VAT_R, y, BODY, l(Label::Vat));
    y -= ROW;
    for b in &doc.breakdown {
        c.text(label_x, y, BODY, &lang.percent(b.rate));
        c.text_right(COL_NET_R, y, BODY, &lang.amount(b.net));
        c.text_right(COL_VAT_R, y, BODY, &lang.amount(b.tax));
        y -= ROW;
    }
    c.rule(y + ROW - 4.0, 0.4, 0.4);
    let total_label = match doc.kind {
        DocumentKind::Invoice => l(Label::Total),
        DocumentKind::CreditNote => l(Label::TotalCredited),
    };
    for (label, amount, size) in [
        (l(Label::TotalNet), doc.net, BODY),
        (l(Label::TotalVat), doc.tax, BODY),
        (total_label, doc.gross, 11.0),
    ] {
        c.text(label_x, y, size, label);
        c.text_right(COL_VAT_R, y, size, &lang.amount_in(amount, cur));
        y -= ROW + (size - BODY);
    }
    if let Some(conversion) = &doc.vat_national {
        c.text(MARGIN, y, BODY, &lang.vat_in_national(conversion, cur));
        y -= 11.0;
    }
    y -= 6.0;
    for line in &note_lines {
        c.text(MARGIN, y, BODY, line);
        y -= 11.0;
    }
    if let Some(check) = doc.vat_id_check {
        c.text(MARGIN, y, 7.0, lang.vat_id_check(check));
        y -= 10.0;
    }
    if let (DocumentKind::Invoice, Some(days)) = (doc.kind, doc.payment_terms_days) {
        y -= 4.0;
        c.text(MARGIN, y, BODY, &lang.payment_terms(days));
        if let Some(late) = lang.late_payment() {
            for line in c.wrap(late, 7.0, right - MARGIN) {
                y -= 9.0;
                c.text(MARGIN, y, 7.0, &line);
            }
        }
    }

    // --- page footers ----------------------------------------------------------------------
    let count = c.pages.len();
    let footer_lines = doc
        .footer
        .as_ref()
        .map(|f| c.wrap(f, 7.0, right - MARGIN))
        .unwrap_or_default();
    for page in 0..count {
        c.current = page;
        let mut fy = 30.0 + 9.0 * footer_lines.len() as f32;
        for line in &footer_lines {
            c.text(MARGIN, fy, 7.0, line);
            fy -= 9.0;
        }
        c.text_right(
            right,
            20.0,
            7.0,
            &format!("{} · {}", doc.number, lang.page(page + 1, count)),
        );
    }

    let pages: Vec<PdfPage> = c
        .pages
        .into_iter()
        .map(|ops| PdfPage::new(Mm(210.0), Mm(297.0), ops))
        .collect();
    pdf.with_pages(pages);
    let mut warnings = Vec::new();
    let mut lopdf = pdf.to_lopdf_document(
        &PdfSaveOptions {
            subset_fonts: false,
            optimize: false,
            ..PdfSaveOptions::default()
        },
        &mut warnings,
    );
    // Deflating a document costs more than rendering it (printpdf compresses every stream
    // at the best level: 1.2 of 1.6 ms for a one-page invoice), so the page streams stay
    // plain (the database compresses the stored bytes with lz4). The font program is most
    // of the file, though, and the shared one is the same in every document: it is
    // deflated once per process and reused.
    if shared {
        for object in lopdf.objects.values_mut() {
            let Ok(stream) = object.as_stream_mut() else {
                continue;
            };
            if !stream.dict.has(b"Length1") || stream.dict.has(b"Filter") {
                continue;
            }
            static PACKED: OnceLock<Option<Vec<u8>>> = OnceLock::new();
            let packed = PACKED.get_or_init(|| {
                let mut s = stream.clone();
                s.compress().ok()?;
                s.dict.has(b"Filter").then_some(s.content)
            });
            if let Some(packed) = packed {
                stream.dict.set("Filter", "FlateDecode");
                stream.set_content(packed.clone());
            }
        }
    }
    // A Factur-X invoice: the EN 16931 XML of the same snapshot inside a PDF/A-3.
    crate::pdfa::make_facturx(&mut lopdf, doc, &format!("{title} {}", doc.number), cii)
        .ok_or_else(|| PdfError::Write("the PDF has no catalog".to_owned()))?;
    let mut bytes = Vec::new();
    lopdf
        .save_to(&mut bytes)
        .map_err(|e| PdfError::Write(e.to_string()))?;
    Ok((bytes, count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn money_groups_thousands() {
        let d = |s| Decimal::from_str(s).expect("decimal");
        assert_eq!(money(d("1234567.89")), "1,234,567.89");
        assert_eq!(money(d("999.00")), "999.00");
        assert_eq!(money(d("0.5")), "0.5");
        assert_eq!(money_in(d("12.00"), "EUR"), "12.00 €");
        assert_eq!(Language::En.unit_price(d("8.40")), "8.40");
    }

    /// Every language's table headers fit their columns (so they never overlap).
    #[test]
    fn table_headers_fit_their_columns_in_every_language() {
        let f = full_font().expect("font");
        for lang in Language::ALL {
            let w = |label| f.width(lang.label(label), BODY);
            let gap = 4.0;
            assert!(w(Label::Pos) + gap <= COL_DESC - COL_POS, "{lang:?} Pos");
            assert!(
                w(Label::Description) + w(Label::Qty) + gap <= COL_QTY_R - COL_DESC,
                "{lang:?} description"
            );
            let unit = f.width(&format!("{} EUR", lang.label(Label::UnitNet)), BODY);
            assert!(
                unit + gap <= COL_UNIT_R - COL_QTY_R,
                "{lang:?} unit net: {unit}"
            );
            assert!(
                w(Label::Discount) + gap <= COL_DISC_R - COL_UNIT_R,
                "{lang:?} discount"
            );
            assert!(
                w(Label::VatPercent) + gap <= COL_RATE_R - COL_DISC_R,
                "{lang:?} VAT %"
            );
            assert!(
                w(Label::Net) + gap <= COL_NET_R - COL_RATE_R,
                "{lang:?} net"
            );
            assert!(w(Label::Vat) + gap <= COL_VAT_R - COL_NET_R, "{lang:?} VAT");
        }
    }

    #[test]
    fn wrapping_never_breaks_at_a_no_break_space() {
        let font = full_font().expect("font");
        let c = Canvas {
            font,
            id: FontId::new(),
            pages: Vec::new(),
            current: 0,
        };
        let s = "Autoliquidation\u{a0}: livraison";
        let max = font.width("Autoliquidation\u{a0}:", BODY) + 1.0;
        assert_eq!(
            c.wrap(s, BODY, max),
            vec!["Autoliquidation\u{a0}:".to_owned(), "livraison".to_owned()]
        );
    }

    #[test]
    fn measuring_is_proportional() {
        let f = full_font().expect("font");
        assert!(f.width("WWW", 10.0) > f.width("iii", 10.0));
        assert!((f.width("ab", 20.0) - 2.0 * f.width("ab", 10.0)).abs() < 0.01);
    }
}
