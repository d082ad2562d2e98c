//! Each vendor's webhook signature, checked the way the vendor signs it. Pure: the caller
//! passes the header values, the body exactly as received, and the time.
//!
//! Every check recomputes an HMAC-SHA256 with the configured secret and compares it with the
//! vendor's in constant time (`hmac`'s `verify_slice`), so the time an answer takes says
//! nothing about how much of a forged signature was right.
//!
//! | vendor | header | signed bytes | encoding | time |
//! |---|---|---|---|---|
//! | EasyPost | `X-Hmac-Signature: hmac-sha256-hex=<hex>` | the body; key: the secret in Unicode NFKD | hex | none signed |
//! | EasyPost (newer) | `X-Hmac-Signature-V2`, `X-Timestamp` (RFC 2822), `X-Path` | timestamp + method + path + body | hex | `X-Timestamp` |
//! | AfterShip | `aftership-hmac-sha256: <base64>` | the body | base64 | none signed |
//! | Shippo | `Shippo-Auth-Signature: t=<unix>,v1=<hex>` | `t` + `.` + body | hex | `t` |
//!
//! Where the vendor signs a time, a signature older (or further ahead) than the tolerance is
//! refused as stale. EasyPost's first scheme and AfterShip's sign no time: a captured
//! delivery can be sent again, and is then answered as a duplicate of its event id and
//! publishes nothing (see `store`), which is what makes a replay harmless there.
//!
//! EasyPost's newer scheme is described in EasyPost's support article "Webhook HMAC
//! Validation" (headers and timestamp format); its client libraries (Python, Go, Node,
//! checked 2026) still verify only `X-Hmac-Signature`. We verify the newer one as that article
//! is read by the integrations we could see, and fall back to the first: see [`easypost`].

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use unicode_normalization::UnicodeNormalization;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// EasyPost's signature header.
pub(crate) const EASYPOST_HEADER: &str = "x-hmac-signature";
/// EasyPost's newer, timestamped signature header, with its two companions.
pub(crate) const EASYPOST_V2_HEADER: &str = "x-hmac-signature-v2";
pub(crate) const EASYPOST_TIMESTAMP_HEADER: &str = "x-timestamp";
pub(crate) const EASYPOST_PATH_HEADER: &str = "x-path";
/// AfterShip Tracking's signature header.
pub(crate) const AFTERSHIP_HEADER: &str = "aftership-hmac-sha256";
/// Shippo's signature header (HMAC is enabled per account by Shippo on request).
pub(crate) const SHIPPO_HEADER: &str = "shippo-auth-signature";

/// EasyPost's prefix of the hex digest.
const EASYPOST_PREFIX: &str = "hmac-sha256-hex=";

/// Why a delivery's signature is refused. Every variant is a 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SignatureError {
    /// No signature at all.
    #[error("no `{0}` header: unsigned deliveries are refused")]
    Missing(&'static str),
    /// A signature header we cannot read.
    #[error("the `{header}` header is malformed: {why}")]
    Malformed {
        /// Which header.
        header: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// A well-formed signature that the configured secret does not produce.
    #[error("the `{0}` signature does not match the body and the configured secret")]
    Mismatch(&'static str),
    /// Signed too long ago: a replayed or badly delayed delivery.
    #[error("signed {age} s ago, longer ago than the {tolerance} s allowed")]
    Stale {
        /// Seconds since the signature's time.
        age: i64,
        /// The tolerance, in seconds.
        tolerance: i64,
    },
    /// Signed at a time still to come: a clock far off.
    #[error("signed {ahead} s in the future, more than the {tolerance} s allowed")]
    Future {
        /// Seconds until the signature's time.
        ahead: i64,
        /// The tolerance, in seconds.
        tolerance: i64,
    },
}

impl SignatureError {
    /// A short word for metrics and logs.
    pub(crate) const fn kind(&self) -> &'static str {
        match self {
            Self::Missing(_) => "unsigned",
            Self::Malformed { .. } | Self::Mismatch(_) => "bad_signature",
            Self::Stale { .. } | Self::Future { .. } => "stale",
        }
    }
}

/// The headers EasyPost signs with (values as received).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EasypostHeaders<'a> {
    /// `X-Hmac-Signature`.
    pub(crate) signature: Option<&'a str>,
    /// `X-Hmac-Signature-V2`.
    pub(crate) signature_v2: Option<&'a str>,
    /// `X-Timestamp`.
    pub(crate) timestamp: Option<&'a str>,
    /// `X-Path`.
    pub(crate) path: Option<&'a str>,
}

/// Which of EasyPost's schemes verified a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EasypostScheme {
    /// `X-Hmac-Signature` over the body.
    Body,
    /// `X-Hmac-Signature-V2` over timestamp, method, path and body, within the tolerance.
    Timestamped,
}

fn mac(key: &[u8], header: &'static str) -> Result<HmacSha256, SignatureError> {
    // HMAC takes keys of any length, so this does not fail; if it ever did, nothing verifies.
    <HmacSha256 as KeyInit>::new_from_slice(key).map_err(|_| SignatureError::Mismatch(header))
}

fn hex_digest(value: &str, header: &'static str) -> Result<Vec<u8>, SignatureError> {
    hex::decode(value.trim()).map_err(|e| SignatureError::Malformed {
        header,
        why: format!("not hex: {e}"),
    })
}

/// Checks `at` against `now` within `tolerance_secs`, either way.
pub(crate) fn fresh(
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let age = now.signed_duration_since(at).num_seconds();
    if age > tolerance_secs {
        return Err(SignatureError::Stale {
            age,
            tolerance: tolerance_secs,
        });
    }
    if -age > tolerance_secs {
        return Err(SignatureError::Future {
            ahead: -age,
            tolerance: tolerance_secs,
        });
    }
    Ok(())
}

/// EasyPost: `X-Hmac-Signature: hmac-sha256-hex=<hex of HMAC-SHA256(NFKD(secret), body)>`,
/// as EasyPost's client libraries check it (`validate_webhook`).
///
/// When the newer headers are all present (`X-Hmac-Signature-V2`, `X-Timestamp`, `X-Path`)
/// and the V2 signature verifies over `timestamp + method + path + body` (hex, with or
/// without the `hmac-sha256-hex=` prefix), its timestamp must be within the tolerance. When
/// it does not verify, the delivery is judged on `X-Hmac-Signature` alone (we could not
/// confirm the V2 construction against a vendor test vector; a forgery cannot pass either
/// way without the secret).
pub(crate) fn easypost(
    secret: &str,
    headers: EasypostHeaders<'_>,
    method: &str,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance_secs: i64,
) -> Result<EasypostScheme, SignatureError> {
    let key: String = secret.nfkd().collect();
    if let (Some(v2), Some(timestamp), Some(path)) =
        (headers.signature_v2, headers.timestamp, headers.path)
    {
        let given = v2.trim();
        let given = given.strip_prefix(EASYPOST_PREFIX).unwrap_or(given);
        if let Ok(given) = hex::decode(given) {
            let mut m = mac(key.as_bytes(), EASYPOST_V2_HEADER)?;
            m.update(timestamp.as_bytes());
            m.update(method.as_bytes());
            m.update(path.as_bytes());
            m.update(body);
            if m.verify_slice(&given).is_ok() {
                let at = DateTime::parse_from_rfc2822(timestamp.trim()).map_err(|e| {
                    SignatureError::Malformed {
                        header: EASYPOST_TIMESTAMP_HEADER,
                        why: format!("not an RFC 2822 time: {e}"),
                    }
                })?;
                fresh(at.with_timezone(&Utc), now, tolerance_secs)?;
                return Ok(EasypostScheme::Timestamped);
            }
        }
    }
    let header = headers
        .signature
        .ok_or(SignatureError::Missing(EASYPOST_HEADER))?;
    let given =
        header
            .trim()
            .strip_prefix(EASYPOST_PREFIX)
            .ok_or_else(|| SignatureError::Malformed {
                header: EASYPOST_HEADER,
                why: format!("expected `{EASYPOST_PREFIX}<hex>`"),
            })?;
    let given = hex_digest(given, EASYPOST_HEADER)?;
    let mut m = mac(key.as_bytes(), EASYPOST_HEADER)?;
    m.update(body);
    m.verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch(EASYPOST_HEADER))?;
    Ok(EasypostScheme::Body)
}

/// AfterShip Tracking: `aftership-hmac-sha256: <base64 of HMAC-SHA256(secret, body)>`.
pub(crate) fn aftership(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing(AFTERSHIP_HEADER))?;
    let given = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .map_err(|e| SignatureError::Malformed {
            header: AFTERSHIP_HEADER,
            why: format!("not base64: {e}"),
        })?;
    let mut m = mac(secret.as_bytes(), AFTERSHIP_HEADER)?;
    m.update(body);
    m.verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch(AFTERSHIP_HEADER))
}

/// Shippo: `Shippo-Auth-Signature: t=<unix seconds>,v1=<hex of HMAC-SHA256(secret, t + "." +
/// body)>`; a header may carry several `v1` (a secret being rotated): one must verify. The
/// time `t` must be within the tolerance.
pub(crate) fn shippo(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing(SHIPPO_HEADER))?;
    let malformed = |why: &str| SignatureError::Malformed {
        header: SHIPPO_HEADER,
        why: why.to_owned(),
    };
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or_else(|| malformed("expected `t=<unix seconds>,v1=<hex>`"))?;
        match key.trim() {
            "t" if timestamp.is_none() => timestamp = Some(value.trim()),
            "t" => return Err(malformed("`t` is given twice")),
            "v1" => signatures.push(hex_digest(value, SHIPPO_HEADER)?),
            _ => {} // other schemes a later Shippo may add
        }
    }
    let timestamp = timestamp.ok_or_else(|| malformed("no `t=<unix seconds>`"))?;
    if signatures.is_empty() {
        return Err(malformed("no `v1=<hex>`"));
    }
    let seconds: i64 = timestamp
        .parse()
        .map_err(|_| malformed("`t` is not whole seconds since the epoch"))?;
    let mut m = mac(secret.as_bytes(), SHIPPO_HEADER)?;
    m.update(timestamp.as_bytes());
    m.update(b".");
    m.update(body);
    if !signatures
        .iter()
        .any(|given| m.clone().verify_slice(given).is_ok())
    {
        return Err(SignatureError::Mismatch(SHIPPO_HEADER));
    }
    let at =
        DateTime::from_timestamp(seconds, 0).ok_or_else(|| malformed("`t` is out of range"))?;
    fresh(at, now, tolerance_secs)
}
