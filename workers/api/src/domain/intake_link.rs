//! The client's intake link: `/setup-intake/{token}`, where the token names one setup and
//! when the link stops working, signed with the setup's store's secret (the one customer
//! tokens are signed with, `orderly store-secret rotate`).
//!
//! Form: `osi_` + base64url(setup id (16 bytes) ‖ expiry, Unix seconds (8 bytes, big
//! endian)) + `.` + base64url(HMAC-SHA256(secret, everything before the dot)). Nothing in it
//! is secret; it cannot be made or changed without the store's secret, and it stops working
//! at its expiry (or when the secret that signed it is rotated out).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use uuid::Uuid;

const START: &str = "osi_";
/// Longest token taken apart (a real one is 62 characters).
const MAX_LEN: usize = 128;

/// Why a link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Not a link this API made.
    Malformed,
    /// Not signed by a valid secret of the setup's store (changed, or the secret rotated out).
    BadSignature,
    /// Past its expiry.
    Expired,
}

/// A link taken apart, its signature not checked yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// The setup it names (not proven yet).
    pub(crate) setup_id: Uuid,
    /// When it stops working (Unix seconds).
    pub(crate) expires: i64,
    signed: String,
    mac: Vec<u8>,
}

fn mac(secret: &str, signed: &str) -> Option<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(signed.as_bytes());
    Some(mac)
}

/// The link's token for `setup_id`, working until `expires` (Unix seconds), signed with
/// `secret`.
pub(crate) fn mint(setup_id: Uuid, expires: i64, secret: &str) -> String {
    let mut payload = Vec::with_capacity(24);
    payload.extend_from_slice(setup_id.as_bytes());
    payload.extend_from_slice(&expires.to_be_bytes());
    let signed = format!("{START}{}", URL_SAFE_NO_PAD.encode(payload));
    let tag = mac(secret, &signed).map_or_else(Vec::new, |m| m.finalize().into_bytes().to_vec());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// Takes a token apart, or refuses it as malformed; nothing is believed yet.
pub(crate) fn parse(token: &str) -> Result<Parsed, Refused> {
    if token.len() > MAX_LEN {
        return Err(Refused::Malformed);
    }
    let (signed, tag) = token.split_once('.').ok_or(Refused::Malformed)?;
    let payload = signed.strip_prefix(START).ok_or(Refused::Malformed)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| Refused::Malformed)?;
    let mac = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| Refused::Malformed)?;
    if payload.len() != 24 || mac.len() != 32 {
        return Err(Refused::Malformed);
    }
    let (id, expires) = payload.split_at(16);
    Ok(Parsed {
        setup_id: Uuid::from_slice(id).map_err(|_| Refused::Malformed)?,
        expires: i64::from_be_bytes(expires.try_into().map_err(|_| Refused::Malformed)?),
        signed: signed.to_owned(),
        mac,
    })
}

/// The setup the link names, if one of `secrets` (its store's valid ones) signed it and it
/// has not expired at `now` (Unix seconds). The MAC is compared in constant time.
pub(crate) fn verify(parsed: &Parsed, secrets: &[String], now: i64) -> Result<Uuid, Refused> {
    let signed = secrets
        .iter()
        .any(|s| mac(s, &parsed.signed).is_some_and(|m| m.verify_slice(&parsed.mac).is_ok()));
    if !signed {
        return Err(Refused::BadSignature);
    }
    if now >= parsed.expires {
        return Err(Refused::Expired);
    }
    Ok(parsed.setup_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "oss_test-secret";

    #[test]
    fn a_link_names_its_setup_until_it_expires() {
        let id = Uuid::now_v7();
        let token = mint(id, 2_000, SECRET);
        let parsed = parse(&token).expect("well formed");
        assert_eq!(parsed.setup_id, id);
        assert_eq!(verify(&parsed, &[SECRET.to_owned()], 1_999), Ok(id));
        assert_eq!(
            verify(&parsed, &[SECRET.to_owned()], 2_000),
            Err(Refused::Expired)
        );
    }

    #[test]
    fn a_changed_or_foreign_link_is_refused() {
        let id = Uuid::now_v7();
        let token = mint(id, 2_000, SECRET);
        // Another store's secret, or a rotated-out one.
        let parsed = parse(&token).expect("well formed");
        assert_eq!(
            verify(&parsed, &["oss_other".to_owned()], 1_000),
            Err(Refused::BadSignature)
        );
        // A later expiry written into the link.
        let longer = mint(id, 9_999, "oss_forger");
        let (forged_payload, _) = longer.split_once('.').expect("dot");
        let (_, tag) = token.split_once('.').expect("dot");
        let forged = parse(&format!("{forged_payload}.{tag}")).expect("well formed");
        assert_eq!(
            verify(&forged, &[SECRET.to_owned()], 1_000),
            Err(Refused::BadSignature)
        );
        for bad in ["", "osi_", "osi_abc.def", "x.y", &"a".repeat(200)] {
            assert_eq!(parse(bad), Err(Refused::Malformed), "{bad}");
        }
    }
}
