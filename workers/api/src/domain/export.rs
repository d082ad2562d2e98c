//! Exports of the order list: what to write (format, one row per order or per line, which
//! columns) and how a cell is written. Pure: the store pages through the same filters as
//! the list ([`super::filter::ListQuery`]), the HTTP layer streams what this module formats.
//!
//! Why the list's own filter: an export must hold exactly the orders the list shows for the
//! same query string, so it is parsed by the same parser and read by the same statement's
//! filters; the export's own parameters (`format`, `rows`, `columns`) are taken out first.
//!
//! CSV is UTF-8 with a header row, quoted as RFC 4180 says. A text cell a spreadsheet would
//! take for a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) is
//! written with a leading `'`, the escape OWASP recommends; number cells (money, quantities)
//! are ours, written from decimals, and never escaped, so `-5.00` stays a number. Money is a
//! string with its currency in a column of its own, never a float.

use std::fmt::Write as _;

use schemars::{Schema, SchemaGenerator, json_schema};

use super::filter::BadParameter;
use super::query::Parameter;

/// The parameters an export takes besides the list's filters.
pub(crate) const PARAMETERS: &[&str] = &["format", "rows", "columns"];

/// The export's own parameters, for the OpenAPI document.
pub(crate) fn parameters() -> Vec<Parameter> {
    fn format(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "enum": ["csv", "jsonl"], "default": "csv" })
    }
    fn rows(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "enum": ["order", "line"], "default": "order" })
    }
    fn columns(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
        json_schema!({
            "type": "array",
            "items": { "type": "string", "enum": names },
            "minItems": 1
        })
    }
    vec![
        Parameter {
            name: "format",
            description: "`csv` (UTF-8, header row, RFC 4180; `text/csv`) or `jsonl` (one JSON \
                          object per line; `application/jsonl`).",
            schema: format,
        },
        Parameter {
            name: "rows",
            description: "One row per `order`, or per order `line` (the order's columns repeated).",
            schema: rows,
        },
        Parameter {
            name: "columns",
            description: "The columns, in order (a comma list); a line's columns need `rows=line`. \
                          Default: every column of the rows asked for.",
            schema: columns,
        },
    ]
}

/// The file's format./// The file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Comma-separated, header row first.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl Format {
    /// Its media type.
    pub(crate) const fn media_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Jsonl => "application/jsonl; charset=utf-8",
        }
    }

    /// Its file extension.
    pub(crate) const fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
        }
    }
}

/// One row per order, or one per order line (the order's columns repeated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rows {
    Order,
    Line,
}

/// What a column holds, for escaping and for JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Free text (escaped against formulas in CSV).
    Text,
    /// A number we wrote (money as a decimal string, a count).
    Number,
}

/// A column of the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Column {
    OrderId,
    StoreId,
    Channel,
    Marketplace,
    ExternalOrderId,
    Status,
    PlacedAt,
    Currency,
    Total,
    Shipping,
    Discount,
    Tax,
    CustomerName,
    CustomerEmail,
    LineCount,
    LineId,
    Sku,
    Gtin,
    Title,
    Quantity,
    UnitPrice,
    LineDiscount,
}

impl Column {
    /// Every column, in file order.
    pub(crate) const ALL: [Column; 22] = [
        Self::OrderId,
        Self::StoreId,
        Self::Channel,
        Self::Marketplace,
        Self::ExternalOrderId,
        Self::Status,
        Self::PlacedAt,
        Self::Currency,
        Self::Total,
        Self::Shipping,
        Self::Discount,
        Self::Tax,
        Self::CustomerName,
        Self::CustomerEmail,
        Self::LineCount,
        Self::LineId,
        Self::Sku,
        Self::Gtin,
        Self::Title,
        Self::Quantity,
        Self::UnitPrice,
        Self::LineDiscount,
    ];

    /// Its name in the header and in `columns=`.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::OrderId => "order_id",
            Self::StoreId => "store_id",
            Self::Channel => "channel",
            Self::Marketplace => "marketplace",
            Self::ExternalOrderId => "external_order_id",
            Self::Status => "status",
            Self::PlacedAt => "placed_at",
            Self::Currency => "currency",
            Self::Total => "total",
            Self::Shipping => "shipping",
            Self::Discount => "discount",
            Self::Tax => "tax",
            Self::CustomerName => "customer_name",
            Self::CustomerEmail => "customer_email",
            Self::LineCount => "line_count",
            Self::LineId => "line_id",
            Self::Sku => "sku",
            Self::Gtin => "gtin",
            Self::Title => "title",
            Self::Quantity => "quantity",
            Self::UnitPrice => "unit_price",
            Self::LineDiscount => "line_discount",
        }
    }

    /// What it holds.
    pub(crate) const fn kind(self) -> Kind {
        match self {
            Self::Total
            | Self::Shipping
            | Self::Discount
            | Self::Tax
            | Self::LineCount
            | Self::Quantity
            | Self::UnitPrice
            | Self::LineDiscount => Kind::Number,
            _ => Kind::Text,
        }
    }

    /// Whether it is a line's column (only in a per-line export).
    pub(crate) const fn of_line(self) -> bool {
        matches!(
            self,
            Self::LineId
                | Self::Sku
                | Self::Gtin
                | Self::Title
                | Self::Quantity
                | Self::UnitPrice
                | Self::LineDiscount
        )
    }

    /// The default columns of `rows`.
    pub(crate) fn defaults(rows: Rows) -> Vec<Column> {
        Self::ALL
            .into_iter()
            .filter(|c| match rows {
                Rows::Order => !c.of_line(),
                Rows::Line => *c != Self::LineCount,
            })
            .collect()
    }
}

/// The JSON Schema of one line of a `jsonl` export (`#/components/schemas/ExportLine` in the
/// OpenAPI document): an object of the chosen columns, each a string or `null`, nothing
/// else.
pub(crate) fn line_schema() -> serde_json::Value {
    let properties: serde_json::Map<String, serde_json::Value> = Column::ALL
        .into_iter()
        .map(|c| {
            let description = match (c.kind(), c.of_line()) {
                (Kind::Number, _) => {
                    "A decimal number as a string (money in the order's currency)."
                }
                (Kind::Text, true) => "Of the order line (per-line exports only).",
                (Kind::Text, false) => "Of the order.",
            };
            (
                c.name().to_owned(),
                serde_json::json!({ "type": ["string", "null"], "description": description }),
            )
        })
        .collect();
    serde_json::json!({
        "title": "ExportLine",
        "description": "One line of a `format=jsonl` export: the chosen columns (`columns`, or \
            the defaults of `rows`), every value a string or null.",
        "type": "object",
        "properties": properties,
        "additionalProperties": false
    })
}

/// An export request: the file's shape (the filters are the list's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shape {
    pub(crate) format: Format,
    pub(crate) rows: Rows,
    pub(crate) columns: Vec<Column>,
}

/// An export's whole query string: its own parameters ([`parse`]) and the list's filters
/// (`limit`, `cursor` and `count` are refused: an export holds every page).
pub(crate) fn parse_request(
    mut pairs: Vec<(String, String)>,
) -> Result<(Shape, super::filter::ListQuery), BadParameter> {
    let shape = parse(&mut pairs)?;
    if let Some((name, _)) = pairs
        .iter()
        .find(|(n, _)| matches!(n.as_str(), "limit" | "cursor" | "count"))
    {
        return Err(BadParameter::new(
            name,
            "an export holds every page of the list: leave out limit, cursor and count",
        ));
    }
    let query = super::filter::parse(&pairs)?;
    Ok((shape, query))
}

/// Takes the export's own parameters out of `pairs` (what is left are the list's filters).
pub(crate) fn parse(pairs: &mut Vec<(String, String)>) -> Result<Shape, BadParameter> {
    let bad = |field: &str, reason: String| BadParameter {
        field: field.to_owned(),
        reason,
    };
    let mut format = Format::Csv;
    let mut rows = Rows::Order;
    let mut columns: Option<Vec<&str>> = None;
    let mut own = Vec::new();
    pairs.retain(|(name, value)| {
        if PARAMETERS.contains(&name.as_str()) {
            own.push((name.clone(), value.clone()));
            false
        } else {
            true
        }
    });
    for (name, value) in &own {
        match name.as_str() {
            "format" => {
                format = match value.as_str() {
                    "csv" => Format::Csv,
                    "jsonl" => Format::Jsonl,
                    v => return Err(bad(name, format!("`{v}` is not `csv` or `jsonl`"))),
                }
            }
            "rows" => {
                rows = match value.as_str() {
                    "order" => Rows::Order,
                    "line" => Rows::Line,
                    v => return Err(bad(name, format!("`{v}` is not `order` or `line`"))),
                }
            }
            _ => {
                columns = Some(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .collect(),
                )
            }
        }
    }
    let columns = match columns {
        None => Column::defaults(rows),
        Some(names) if names.is_empty() => {
            return Err(bad("columns", "names no column".to_owned()));
        }
        Some(names) => {
            let mut chosen = Vec::new();
            for name in names {
                let column = Column::ALL
                    .into_iter()
                    .find(|c| c.name() == name)
                    .ok_or_else(|| bad("columns", format!("`{name}` is not a column")))?;
                if column.of_line() && rows == Rows::Order {
                    return Err(bad(
                        "columns",
                        format!("`{name}` is a line's column: ask for rows=line"),
                    ));
                }
                if !chosen.contains(&column) {
                    chosen.push(column);
                }
            }
            chosen
        }
    };
    Ok(Shape {
        format,
        rows,
        columns,
    })
}

/// One cell of CSV: escaped against formulas (text only), quoted when it must be.
pub(crate) fn csv_cell(out: &mut String, value: Option<&str>, kind: Kind) {
    let Some(value) = value else {
        return;
    };
    let formula = kind == Kind::Text
        && value
            .chars()
            .next()
            .is_some_and(|c| matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r'));
    let quote = formula || value.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

/// A CSV record of `cells` (one per column), CRLF-terminated as RFC 4180 says.
pub(crate) fn csv_record(columns: &[Column], cells: &[Option<String>]) -> String {
    let mut out = String::new();
    for (i, (column, cell)) in columns.iter().zip(cells).enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_cell(&mut out, cell.as_deref(), column.kind());
    }
    out.push_str("\r\n");
    out
}

/// The CSV header row.
pub(crate) fn csv_header(columns: &[Column]) -> String {
    let names: Vec<Option<String>> = columns.iter().map(|c| Some(c.name().to_owned())).collect();
    csv_record(columns, &names)
}

/// A JSON line of `cells`: every column a string or `null` (money stays a decimal string).
pub(crate) fn json_line(columns: &[Column], cells: &[Option<String>]) -> String {
    let mut object = serde_json::Map::new();
    for (column, cell) in columns.iter().zip(cells) {
        object.insert(
            column.name().to_owned(),
            cell.clone()
                .map_or(serde_json::Value::Null, serde_json::Value::String),
        );
    }
    let mut line = serde_json::Value::Object(object).to_string();
    let _ = writeln!(line);
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn a_formula_is_escaped_in_text_but_a_negative_amount_is_a_number() {
        let columns = [Column::CustomerName, Column::Total, Column::Title];
        let row = csv_record(
            &columns,
            &[
                Some("=HYPERLINK(\"http://evil\")".into()),
                Some("-5.00".into()),
                Some("-Rabatt, 10%".into()),
            ],
        );
        assert_eq!(
            row,
            "\"'=HYPERLINK(\"\"http://evil\"\")\",-5.00,\"'-Rabatt, 10%\"\r\n"
        );
        for lead in ['+', '@', '\t', '\r'] {
            let mut out = String::new();
            csv_cell(&mut out, Some(&format!("{lead}x")), Kind::Text);
            assert!(out.starts_with("\"'"), "{lead:?}: {out}");
        }
    }

    #[test]
    fn quoting_follows_rfc_4180_and_nothing_is_an_empty_cell() {
        let columns = [Column::Title, Column::Sku, Column::Gtin];
        let row = csv_record(
            &columns,
            &[
                Some("Becher \"groß\"\nblau".into()),
                None,
                Some("4006381333931".into()),
            ],
        );
        assert_eq!(row, "\"Becher \"\"groß\"\"\nblau\",,4006381333931\r\n");
        assert_eq!(
            csv_header(&columns),
            "title,sku,gtin\r\n",
            "the header names the columns"
        );
    }

    #[test]
    fn json_lines_keep_money_as_strings() {
        let line = json_line(
            &[Column::Total, Column::Marketplace],
            &[Some("19.90".into()), None],
        );
        assert_eq!(line, "{\"marketplace\":null,\"total\":\"19.90\"}\n");
    }

    #[test]
    fn the_exports_parameters_are_taken_out_and_the_filters_left() {
        let mut p = pairs(&[
            ("store", "shop-de"),
            ("format", "jsonl"),
            ("rows", "line"),
            ("columns", "order_id, sku,quantity,sku"),
            ("status", "shipped"),
        ]);
        let shape = parse(&mut p).expect("parses");
        assert_eq!(shape.format, Format::Jsonl);
        assert_eq!(shape.rows, Rows::Line);
        assert_eq!(
            shape.columns,
            vec![Column::OrderId, Column::Sku, Column::Quantity]
        );
        assert_eq!(p, pairs(&[("store", "shop-de"), ("status", "shipped")]));

        let mut none = Vec::new();
        let shape = parse(&mut none).expect("defaults");
        assert_eq!(shape.format, Format::Csv);
        assert_eq!(shape.columns, Column::defaults(Rows::Order));
        assert!(shape.columns.iter().all(|c| !c.of_line()));
    }

    #[test]
    fn bad_shapes_name_the_parameter() {
        for (items, field) in [
            (&[("format", "xlsx")][..], "format"),
            (&[("rows", "shipment")], "rows"),
            (&[("columns", "order_id,colour")], "columns"),
            (&[("columns", "sku")], "columns"),
            (&[("columns", ",")], "columns"),
        ] {
            let e = parse(&mut pairs(items)).expect_err("refused");
            assert_eq!(e.field, field, "{items:?}: {e:?}");
        }
    }
}
