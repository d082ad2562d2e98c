//! Makes a rendered document a Factur-X / ZUGFeRD invoice: a PDF/A-3 (conformance B) with
//! its EN 16931 XML embedded as `factur-x.xml` (an associated file of the document, relation
//! `Alternative`), the XMP metadata that declares both (`pdfaid` and the Factur-X extension
//! schema), an sRGB output intent, and document information that matches the XMP (title,
//! author, real creation date). printpdf writes the pages and fonts; it cannot embed files,
//! so these parts are added to its lopdf document before it is saved (decision 0017).

use std::sync::OnceLock;

use chrono::{NaiveDate, NaiveTime};
use lopdf::{Dictionary, Object, Stream, StringFormat};

use crate::domain::document::Document;
use crate::einvoice::FACTURX_FILE_NAME;
use crate::einvoice::xml_escape;

/// The sRGB profile of the output intent (CC0, from colord: `assets/icc/README.md`).
const SRGB_ICC: &[u8] = include_bytes!("../assets/icc/sRGB.icc");

fn name(s: &str) -> Object {
    Object::Name(s.as_bytes().to_vec())
}

fn text(s: &str) -> Object {
    // PDF text strings: UTF-16BE with a byte order mark where they are not ASCII.
    if s.is_ascii() {
        Object::String(s.as_bytes().to_vec(), StringFormat::Literal)
    } else {
        let mut bytes = vec![0xFE, 0xFF];
        for unit in s.encode_utf16() {
            bytes.extend_from_slice(&unit.to_be_bytes());
        }
        Object::String(bytes, StringFormat::Hexadecimal)
    }
}

/// A PDF date (`D:20260314000000+00'00'`) and its XMP form, for midnight UTC of `day`.
fn dates(day: NaiveDate) -> (String, String) {
    let at = day.and_time(NaiveTime::MIN);
    (
        at.format("D:%Y%m%d%H%M%S+00'00'").to_string(),
        at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

/// The XMP packet: PDF/A-3B, Dublin Core title and author, the dates, and the Factur-X
/// extension schema with its four properties.
fn xmp(title: &str, author: &str, created: &str) -> String {
    let title = xml_escape(title);
    let author = xml_escape(author);
    let property = |name: &str, description: &str| {
        format!(
            "<rdf:li rdf:parseType=\"Resource\"><pdfaProperty:name>{name}</pdfaProperty:name>\
             <pdfaProperty:valueType>Text</pdfaProperty:valueType>\
             <pdfaProperty:category>external</pdfaProperty:category>\
             <pdfaProperty:description>{description}</pdfaProperty:description></rdf:li>"
        )
    };
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n\
<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\n\
<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n\
<rdf:Description rdf:about=\"\" xmlns:pdfaid=\"http://www.aiim.org/pdfa/ns/id/\">\
<pdfaid:part>3</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance></rdf:Description>\n\
<rdf:Description rdf:about=\"\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">\
<dc:format>application/pdf</dc:format>\
<dc:title><rdf:Alt><rdf:li xml:lang=\"x-default\">{title}</rdf:li></rdf:Alt></dc:title>\
<dc:creator><rdf:Seq><rdf:li>{author}</rdf:li></rdf:Seq></dc:creator></rdf:Description>\n\
<rdf:Description rdf:about=\"\" xmlns:pdf=\"http://ns.adobe.com/pdf/1.3/\">\
<pdf:Producer>Orderly</pdf:Producer></rdf:Description>\n\
<rdf:Description rdf:about=\"\" xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\">\
<xmp:CreatorTool>Orderly invoicing</xmp:CreatorTool><xmp:CreateDate>{created}</xmp:CreateDate>\
<xmp:ModifyDate>{created}</xmp:ModifyDate></rdf:Description>\n\
<rdf:Description rdf:about=\"\" xmlns:pdfaExtension=\"http://www.aiim.org/pdfa/ns/extension/\" \
xmlns:pdfaSchema=\"http://www.aiim.org/pdfa/ns/schema#\" xmlns:pdfaProperty=\"http://www.aiim.org/pdfa/ns/property#\">\
<pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType=\"Resource\">\
<pdfaSchema:schema>Factur-X PDFA Extension Schema</pdfaSchema:schema>\
<pdfaSchema:namespaceURI>urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#</pdfaSchema:namespaceURI>\
<pdfaSchema:prefix>fx</pdfaSchema:prefix><pdfaSchema:property><rdf:Seq>{}{}{}{}</rdf:Seq></pdfaSchema:property>\
</rdf:li></rdf:Bag></pdfaExtension:schemas></rdf:Description>\n\
<rdf:Description rdf:about=\"\" xmlns:fx=\"urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#\">\
<fx:DocumentType>INVOICE</fx:DocumentType><fx:DocumentFileName>{FACTURX_FILE_NAME}</fx:DocumentFileName>\
<fx:Version>1.0</fx:Version><fx:ConformanceLevel>EN 16931</fx:ConformanceLevel></rdf:Description>\n\
</rdf:RDF>\n</x:xmpmeta>\n<?xpacket end=\"w\"?>",
        property("DocumentFileName", "The name of the embedded XML document"),
        property(
            "DocumentType",
            "The type of the hybrid document in capital letters, e.g. INVOICE or ORDER"
        ),
        property(
            "Version",
            "The actual version of the standard applying to the embedded XML document"
        ),
        property(
            "ConformanceLevel",
            "The conformance level of the embedded XML document"
        ),
    )
}

/// The sRGB profile as a stream, deflated once per process.
fn icc_stream() -> Stream {
    static PACKED: OnceLock<Stream> = OnceLock::new();
    PACKED
        .get_or_init(|| {
            let mut dict = Dictionary::new();
            dict.set("N", 3);
            let mut stream = Stream::new(dict, SRGB_ICC.to_vec());
            // Left plain if deflating fails: still a valid profile.
            let _ = stream.compress();
            stream
        })
        .clone()
}

/// Adds the Factur-X parts to `pdf` (printpdf's document of `doc`): `xml` embedded, the
/// XMP, the output intent, the document information. `None` when the document has no
/// catalog (printpdf always writes one).
pub(crate) fn make_facturx(
    pdf: &mut lopdf::Document,
    doc: &Document,
    title: &str,
    xml: &str,
) -> Option<()> {
    let (pdf_date, xmp_date) = dates(doc.issue_date);
    pdf.version = "1.7".to_owned();

    let mut params = Dictionary::new();
    params.set("Size", i64::try_from(xml.len()).unwrap_or(i64::MAX));
    params.set("ModDate", text(&pdf_date));
    let mut file_dict = Dictionary::new();
    file_dict.set("Type", name("EmbeddedFile"));
    file_dict.set("Subtype", name("text/xml"));
    file_dict.set("Params", params);
    let file = pdf.add_object(Stream::new(file_dict, xml.as_bytes().to_vec()));
    let mut ef = Dictionary::new();
    ef.set("F", file);
    ef.set("UF", file);
    let mut spec = Dictionary::new();
    spec.set("Type", name("Filespec"));
    spec.set("F", text(FACTURX_FILE_NAME));
    spec.set("UF", text(FACTURX_FILE_NAME));
    spec.set("Desc", text("Factur-X / ZUGFeRD invoice (EN 16931)"));
    spec.set("AFRelationship", name("Alternative"));
    spec.set("EF", ef);
    let spec = pdf.add_object(spec);

    let mut xmp_dict = Dictionary::new();
    xmp_dict.set("Type", name("Metadata"));
    xmp_dict.set("Subtype", name("XML"));
    let metadata = pdf.add_object(Stream::new(
        xmp_dict,
        xmp(title, &doc.seller.name, &xmp_date).into_bytes(),
    ));
    let icc = pdf.add_object(icc_stream());
    let mut intent = Dictionary::new();
    intent.set("Type", name("OutputIntent"));
    intent.set("S", name("GTS_PDFA1"));
    intent.set("OutputConditionIdentifier", text("sRGB IEC61966-2.1"));
    intent.set("Info", text("sRGB IEC61966-2.1"));
    intent.set("DestOutputProfile", icc);

    let mut info = Dictionary::new();
    info.set("Title", text(title));
    info.set("Author", text(&doc.seller.name));
    info.set("Creator", text("Orderly invoicing"));
    info.set("Producer", text("Orderly"));
    info.set("CreationDate", text(&pdf_date));
    info.set("ModDate", text(&pdf_date));
    let info = pdf.add_object(info);
    pdf.trailer.set("Info", info);

    let root = pdf.trailer.get(b"Root").ok()?.as_reference().ok()?;
    let catalog = pdf.get_object_mut(root).ok()?.as_dict_mut().ok()?;
    let mut files = Dictionary::new();
    files.set(
        "Names",
        Object::Array(vec![text(FACTURX_FILE_NAME), Object::Reference(spec)]),
    );
    let mut names = Dictionary::new();
    names.set("EmbeddedFiles", files);
    catalog.set("Names", names);
    catalog.set("AF", Object::Array(vec![Object::Reference(spec)]));
    catalog.set("Metadata", metadata);
    catalog.set(
        "OutputIntents",
        Object::Array(vec![Object::Dictionary(intent)]),
    );
    catalog.set("PageMode", name("UseAttachments"));
    Some(())
}
