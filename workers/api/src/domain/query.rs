//! What the query-string parsers share: recognising the parameters, the refusal that names a
//! parameter, page sizes, and the description of a parameter that the OpenAPI document is
//! built from.
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

/// The parameters of `pairs`, each recognised among `allowed` by `name`, with its name and
/// value as given: refuses one not in `allowed` (saying what the endpoint, `what`, takes)
/// and one given twice unless `repeatable` says it may be.
pub(crate) fn recognise<'a, P: Copy + PartialEq>(
    pairs: &'a [(String, String)],
    allowed: &[P],
    name: fn(P) -> &'static str,
    repeatable: fn(P) -> bool,
    what: &str,
) -> Result<Vec<(P, &'a str, &'a str)>, BadParameter> {
    let mut out: Vec<(P, &str, &str)> = Vec::with_capacity(pairs.len());
    for (given, value) in pairs {
        let Some(param) = allowed.iter().copied().find(|p| name(*p) == given) else {
            let names: Vec<&str> = allowed.iter().map(|p| name(*p)).collect();
            return Err(BadParameter::new(
                given,
                format!("unknown parameter; {what}: {}", names.join(", ")),
            ));
        };
        if !repeatable(param) && out.iter().any(|(p, _, _)| *p == param) {
            return Err(BadParameter::new(given, "given more than once"));
        }
        out.push((param, given, value));
    }
    Ok(out)
}

/// A page size from 1 to `MAX`.
pub(crate) fn limit<const MAX: u16>(name: &str, value: &str) -> Result<u16, BadParameter> {
    value
        .parse::<u16>()
        .ok()
        .filter(|n| (1..=MAX).contains(n))
        .ok_or_else(|| {
            BadParameter::new(
                name,
                format!("`{value}` is not a whole number from 1 to {MAX}"),
            )
        })
}

/// Never repeatable (for [`recognise`]).
pub(crate) fn once<P>(_: P) -> bool {
    false
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
