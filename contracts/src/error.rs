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
    ///
    /// serde reports a missing field at the object that lacks it (`payload.lines[0]`,
    /// "missing field `title`"); the path is extended to the field itself
    /// (`payload.lines[0].title`) so that `field` always names what to fix. Unknown fields
    /// and bad values are already reported at their own path.
    pub fn from_path<E: std::fmt::Display>(
        prefix: &str,
        err: serde_path_to_error::Error<E>,
    ) -> Self {
        let path = err.path().to_string();
        let reason = err.into_inner().to_string();
        let mut field = join_path(prefix, if path == "." { "" } else { &path });
        if let Some(missing) = missing_field_name(&reason) {
            field = join_path(&field, missing);
        }
        Self::new(field, reason)
    }
}

/// `a` + `.` + `b`, leaving out the dot when either side is empty.
fn join_path(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (_, true) => a.to_owned(),
        (true, false) => b.to_owned(),
        (false, false) => format!("{a}.{b}"),
    }
}

/// The field name in serde's "missing field `name`" message (its wording is stable: it comes
/// from `serde::de::Error::missing_field`; serde_json may append " at line 1 column 9").
fn missing_field_name(reason: &str) -> Option<&str> {
    reason
        .strip_prefix("missing field `")?
        .split_once('`')
        .map(|(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_for(json: &str) -> ContractError {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Line {
            title: String,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Payload {
            lines: Vec<Line>,
        }
        let value: serde_json::Value = serde_json::from_str(json).expect("test JSON");
        let err = serde_path_to_error::deserialize::<_, Payload>(value).expect_err("invalid");
        ContractError::from_path("payload", err)
    }

    #[test]
    fn missing_fields_point_at_the_field() {
        assert_eq!(
            error_for(r#"{"lines":[{}]}"#).field,
            "payload.lines[0].title"
        );
        assert_eq!(error_for("{}").field, "payload.lines");
    }

    #[test]
    fn unknown_fields_and_bad_values_point_at_themselves() {
        let err = error_for(r#"{"lines":[{"title":"a","colour":"red"}]}"#);
        assert_eq!(err.field, "payload.lines[0].colour");
        assert!(err.reason.starts_with("unknown field `colour`"), "{err}");
        assert_eq!(
            error_for(r#"{"lines":[{"title":5}]}"#).field,
            "payload.lines[0].title"
        );
        assert_eq!(error_for(r#"{"lines":5}"#).field, "payload.lines");
    }

    #[test]
    fn display_includes_the_field() {
        assert_eq!(
            ContractError::new("payload.total", "too big").to_string(),
            "payload.total: too big"
        );
        assert_eq!(ContractError::new("", "not JSON").to_string(), "not JSON");
    }
}
