//! What the query-string parsers share: the refusal that names a parameter, and the
//! description of a parameter that the OpenAPI document is built from.
//!
//! Why a parser describes its own parameters: the list of parameters an endpoint takes is
//! written once, as an enum its parser matches exhaustively (so a new parameter cannot be
//! parsed without being described), and the document reads the descriptions from there
//! (so it cannot describe a parameter the parser refuses as unknown).

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

/// A parameter that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadParameter {
    /// The parameter's name.
    pub(crate) field: String,
    /// What is wrong with it.
    pub(crate) reason: String,
}

impl BadParameter {
    pub(crate) fn new(field: &str, reason: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

/// A query parameter as the OpenAPI document describes it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parameter {
    /// Its name in the query string.
    pub(crate) name: &'static str,
    /// What it does, in a sentence or two.
    pub(crate) description: &'static str,
    /// The JSON Schema of its value (an array for a repeatable parameter).
    pub(crate) schema: fn(&mut SchemaGenerator) -> Schema,
}

/// The schema of a repeatable parameter whose items are `T`s (`status=a&status=b`; the
/// parsers also take a comma list, which the descriptions say).
pub(crate) fn list_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    let items = generator.subschema_for::<T>();
    json_schema!({ "type": "array", "items": items, "minItems": 1 })
}

/// The schema of a `T`.
pub(crate) fn one<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// The schema of a page size: 1 to `max`, `default` when left out.
pub(crate) fn page_size<const MAX: u16, const DEFAULT: u16>(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "integer", "minimum": 1, "maximum": MAX, "default": DEFAULT })
}

/// The schema of an opaque text the API handed out (a cursor).
pub(crate) fn opaque(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "minLength": 1 })
}

/// `(name, value)` pairs, as the HTTP layer hands a decoded query string to a parser.
#[cfg(test)]
pub(crate) fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
