//! The order list's cursor: where the previous page ended, as an opaque string.
//!
//! The list is sorted by `(placed_at desc, order_id desc)`, and the next page starts
//! strictly after the last row's key (keyset pagination). Unlike an offset, that key does
//! not move when orders are inserted ahead of it, so paging while new orders arrive returns
//! every order that existed at the start exactly once. The cursor carries the key itself:
//! version, `placed_at` in microseconds (PostgreSQL's precision, so the key compares equal
//! to the stored one) and the order id, base64url-encoded; clients must not build or read it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

const VERSION: u8 = 1;

/// The key of the last row of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// Its `placed_at`, to the microsecond.
    pub(crate) placed_at: DateTime<Utc>,
    /// Its order id.
    pub(crate) order_id: Uuid,
}

impl Cursor {
    /// The cursor after a row with this key (`placed_at` truncated to microseconds).
    pub(crate) fn after(placed_at: DateTime<Utc>, order_id: Uuid) -> Self {
        let micros = placed_at.timestamp_micros();
        Self {
            placed_at: DateTime::from_timestamp_micros(micros).unwrap_or(placed_at),
            order_id,
        }
    }

    /// The opaque text.
    pub(crate) fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(25);
        bytes.push(VERSION);
        bytes.extend_from_slice(&self.placed_at.timestamp_micros().to_be_bytes());
        bytes.extend_from_slice(self.order_id.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A cursor from its text, or why it is not one.
    pub(crate) fn decode(text: &str) -> Result<Self, String> {
        let bad = || "not a cursor this API issued (use `next_cursor` of the previous page)";
        let bytes = URL_SAFE_NO_PAD
            .decode(text.as_bytes())
            .map_err(|_| bad().to_owned())?;
        let [version, rest @ ..] = bytes.as_slice() else {
            return Err(bad().to_owned());
        };
        if *version != VERSION || rest.len() != 24 {
            return Err(bad().to_owned());
        }
        let (micros, id) = rest.split_at(8);
        let micros = i64::from_be_bytes(micros.try_into().map_err(|_| bad().to_owned())?);
        let placed_at = DateTime::from_timestamp_micros(micros).ok_or_else(|| bad().to_owned())?;
        let order_id = Uuid::from_slice(id).map_err(|_| bad().to_owned())?;
        Ok(Self {
            placed_at,
            order_id,
        })
    }
}

/// The `next_cursor` of a page of at most `limit` rows: after the last row's key (`key`),
/// when the page is full (there may be more); `None` on a shorter page, the last.
pub(crate) fn next_page<T>(
    rows: &[T],
    limit: u16,
    key: impl Fn(&T) -> (DateTime<Utc>, Uuid),
) -> Option<String> {
    if rows.len() < usize::from(limit) {
        return None;
    }
    let (at, id) = key(rows.last()?);
    Some(Cursor::after(at, id).encode())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_at_microsecond_precision() {
        let at = DateTime::parse_from_rfc3339("2026-03-14T09:26:51.123456789Z")
            .expect("time")
            .to_utc();
        let cursor = Cursor::after(at, Uuid::now_v7());
        assert_eq!(cursor.placed_at.timestamp_subsec_nanos(), 123_456_000);
        assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
    }

    #[test]
    fn garbage_is_refused() {
        for text in ["", "abc", "!!!", "AQ", &"A".repeat(200)] {
            assert!(Cursor::decode(text).is_err(), "{text}");
        }
        let mut wrong_version = Cursor::after(Utc::now(), Uuid::nil()).encode().into_bytes();
        wrong_version[0] = b'B';
        let text = String::from_utf8(wrong_version).expect("ascii");
        assert!(Cursor::decode(&text).is_err());
    }
}
