//! Checking an intake submission against its form, field by field.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use orderly_contracts::messages::{FieldError, FieldKind, IntakeField};

/// Characters a text value may have when its field sets no `max_length`.
const DEFAULT_MAX_LENGTH: u32 = 1000;

/// Every problem of `values` against `fields`: a required field missing or blank, a value
/// of the wrong kind or too long, a key the form does not have. Empty when it is valid.
/// Values are trimmed before they are judged.
pub(crate) fn check_intake(
    fields: &[IntakeField],
    values: &BTreeMap<String, String>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut error = |field: &str, message: String| {
        errors.push(FieldError {
            field: field.chars().take(64).collect(),
            message,
        });
    };
    for key in values.keys() {
        if !fields.iter().any(|f| &f.key == key) {
            error(key, "this form has no such field".to_owned());
        }
    }
    for field in fields {
        let value = values.get(&field.key).map(|v| v.trim()).unwrap_or_default();
        if value.is_empty() {
            if field.required {
                error(&field.key, format!("`{}` is required", field.label));
            }
            continue;
        }
        if let Err(why) = check_value(field, value) {
            error(&field.key, why);
        }
    }
    errors
}

fn check_value(field: &IntakeField, value: &str) -> Result<(), String> {
    let max = field.max_length.unwrap_or(DEFAULT_MAX_LENGTH);
    let length = value.chars().count();
    if u32::try_from(length).map_or(true, |n| n > max) {
        return Err(format!("at most {max} characters ({length} given)"));
    }
    let shown: String = value.chars().take(80).collect();
    match field.kind {
        FieldKind::Text => {
            if value.contains(['\n', '\r']) {
                return Err("one line only".to_owned());
            }
        }
        FieldKind::LongText => {}
        FieldKind::Email => {
            if !is_email(value) {
                return Err(format!("`{shown}` is not an e-mail address"));
            }
        }
        FieldKind::Url => {
            if !is_url(value) {
                return Err(format!(
                    "`{shown}` is not a web address (http:// or https://)"
                ));
            }
        }
        FieldKind::Number => {
            if !is_number(value) {
                return Err(format!(
                    "`{shown}` is not a number (digits, one `.` at most)"
                ));
            }
        }
        FieldKind::Date => {
            if NaiveDate::parse_from_str(value, "%Y-%m-%d").is_err() {
                return Err(format!("`{shown}` is not a date (YYYY-MM-DD)"));
            }
        }
        FieldKind::Choice => {
            if !field.choices.iter().any(|c| c == value) {
                return Err(format!(
                    "`{shown}` is not one of: {}",
                    field.choices.join(", ")
                ));
            }
        }
        FieldKind::Boolean => {
            if value != "true" && value != "false" {
                return Err(format!("`{shown}` is neither `true` nor `false`"));
            }
        }
    }
    Ok(())
}

fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !value.chars().any(char::is_whitespace)
}

fn is_url(value: &str) -> bool {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !r.chars().any(char::is_whitespace)
    })
}

fn is_number(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let mut parts = digits.splitn(2, '.');
    let whole = parts.next().unwrap_or_default();
    let fraction = parts.next();
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}
