//! The one error a broken contract produces: which field, and why.

/// A message that breaks its contract. `field` is a JSON path (`payload.lines[2].quantity`);
/// empty means the document as a whole (e.g. not JSON at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{reason}", if field.is_empty() { String::new() } else { format!("{field}: ") })]
pub struct ContractError {
    /// JSON path of the offending field.
    pub field: String,
    /// Why it was refused, in words an operator understands.
    pub reason: String,
}

impl ContractError {
    /// An error at `field` for `reason`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Converts a serde error that knows its path, prefixing `prefix` (e.g. `payload`).
    pub fn from_path<E: std::fmt::Display>(
        prefix: &str,
        err: serde_path_to_error::Error<E>,
    ) -> Self {
        let path = err.path().to_string();
        let field = match (prefix.is_empty(), path == ".") {
            (true, true) => String::new(),
            (true, false) => path,
            (false, true) => prefix.to_owned(),
            (false, false) => format!("{prefix}.{path}"),
        };
        Self::new(field, err.into_inner().to_string())
    }
}
