//! A small XML writer: elements in the order they are written, text and attributes escaped.
//! Enough for documents whose structure the code fixes (no parsing, no namespaces to
//! resolve), so it needs no crate.

/// Builds an XML document as a string.
#[derive(Debug, Default)]
pub(crate) struct Xml {
    out: String,
    open: Vec<&'static str>,
}

/// Escapes text for element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0 (tabs and newlines are).
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => s.push(' '),
            c => s.push(c),
        }
    }
    s
}

impl Xml {
    /// A document with its declaration.
    pub(crate) fn new() -> Self {
        Self {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
            open: Vec::new(),
        }
    }

    fn indent(&mut self) {
        for _ in 0..self.open.len() {
            self.out.push_str("  ");
        }
    }

    fn start(&mut self, tag: &str, attrs: &[(&str, &str)]) {
        self.indent();
        self.out.push('<');
        self.out.push_str(tag);
        for (k, v) in attrs {
            self.out.push(' ');
            self.out.push_str(k);
            self.out.push_str("=\"");
            self.out.push_str(&escape(v));
            self.out.push('"');
        }
    }

    /// Opens an element; [`Xml::close`] closes the latest one.
    pub(crate) fn open(&mut self, tag: &'static str, attrs: &[(&str, &str)]) -> &mut Self {
        self.start(tag, attrs);
        self.out.push_str(">\n");
        self.open.push(tag);
        self
    }

    /// Closes the latest open element.
    pub(crate) fn close(&mut self) -> &mut Self {
        if let Some(tag) = self.open.pop() {
            self.indent();
            self.out.push_str("</");
            self.out.push_str(tag);
            self.out.push_str(">\n");
        }
        self
    }

    /// An element with text and attributes.
    pub(crate) fn leaf_with(&mut self, tag: &str, attrs: &[(&str, &str)], text: &str) -> &mut Self {
        self.start(tag, attrs);
        self.out.push('>');
        self.out.push_str(&escape(text));
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push_str(">\n");
        self
    }

    /// An element with text.
    pub(crate) fn leaf(&mut self, tag: &str, text: &str) -> &mut Self {
        self.leaf_with(tag, &[], text)
    }

    /// The document, every open element closed.
    pub(crate) fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.close();
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped_and_elements_nest() {
        let mut x = Xml::new();
        x.open("a", &[("k", "\"<&>'")])
            .leaf("b", "Müller & Söhne <GmbH>\u{1}");
        let s = x.finish();
        assert!(s.contains("<a k=\"&quot;&lt;&amp;&gt;&apos;\">"), "{s}");
        assert!(s.contains("<b>Müller &amp; Söhne &lt;GmbH&gt; </b>"), "{s}");
        assert!(s.ends_with("</a>\n"), "{s}");
    }
}
