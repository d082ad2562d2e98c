//! Customers' tokens: how a storefront lets its signed-in customer read their own orders
//! (`/api/v1/store/customer-orders`) without Orderly knowing the storefront's accounts.
//!
//! The storefront mints a short-lived token for the customer it has signed in, signed with
//! its store's secret (HMAC-SHA256), and the customer's browser or app sends it as a bearer
//! token. Orderly checks the signature with the store's secrets and believes the claims: the
//! store vouches for who its customer is, as it does when it sends `order.placed` with
//! `customer.id`. So a token is only as good as the storefront's sign-in, and it can only
//! ever show orders of the store whose secret signed it.
//!
//! The format (`docs/api.md` has it for storefronts written in other languages):
//!
//! ```text
//! ocu_<base64url(claims JSON)>.<base64url(HMAC-SHA256(secret, "ocu_<base64url(claims JSON)>"))>
//! ```
//!
//! base64url without padding; the key is the secret's text as printed (`ocs_…`, its UTF-8
//! bytes); the claims are a JSON object with exactly `store`, `customer`, `iat` and `exp`
//! (Unix seconds) and optionally `email`. A token lives at most [`MAX_LIFETIME_SECS`];
//! clocks may differ by [`SKEW_SECS`]. No JWT library: one algorithm, fixed, so there is no
//! `alg` header to get wrong.
//!
//! Why not a stored, opaque token like the staff's: the storefront would have to call
//! Orderly for every sign-in; with a shared secret it mints tokens itself, offline, in any
//! language, and Orderly stores nothing per customer.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use orderly_contracts::types::StoreId;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// What every customer token starts with.
pub(crate) const TOKEN_START: &str = "ocu_";
/// What every store secret starts with (recognisable in logs and secret scanners).
pub(crate) const SECRET_START: &str = "ocs_";
/// The longest a token may live, from `iat` to `exp`.
pub(crate) const MAX_LIFETIME_SECS: i64 = 3600;
/// How far the minting storefront's clock and ours may differ, either way.
pub(crate) const SKEW_SECS: i64 = 60;
/// The longest token looked at (a longer header is refused before any decoding).
pub(crate) const MAX_TOKEN_LEN: usize = 2048;
/// The longest customer id (as `customer.id` in the contracts).
const MAX_CUSTOMER_LEN: usize = 128;
/// The longest e-mail.
const MAX_EMAIL_LEN: usize = 254;

type HmacSha256 = Hmac<Sha256>;

/// What a token says: whose it is, and for how long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Claims {
    /// The store whose secret signs it, and whose orders it shows.
    pub(crate) store: String,
    /// The customer's id in that store (`customer.id` of the orders' events).
    pub(crate) customer: String,
    /// The customer's e-mail, for the storefront's and the logs' sake; orders are found by
    /// `customer` only (an e-mail typed at a guest checkout proves nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) email: Option<String>,
    /// Issued at, Unix seconds.
    pub(crate) iat: i64,
    /// Expires at, Unix seconds.
    pub(crate) exp: i64,
}

/// Why a token is refused. Every refusal is answered with the same 401; this is for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Not of the token's shape (prefix, two parts, base64url, the claims' JSON).
    Malformed,
    /// The claims do not make sense (a bad store id, an empty customer, …).
    BadClaims,
    /// No valid secret of the claimed store signed it.
    BadSignature,
    /// Past its `exp` (and the skew).
    Expired,
    /// Issued in the future (beyond the skew).
    NotYetValid,
    /// `exp` is before `iat`, or more than [`MAX_LIFETIME_SECS`] after it.
    BadLifetime,
}

impl Refused {
    /// A word for the log.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::BadClaims => "bad claims",
            Self::BadSignature => "bad signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not yet valid",
            Self::BadLifetime => "bad lifetime",
        }
    }
}

/// A token taken apart, its signature not checked yet: [`Parsed::claimed_store`] says whose
/// secrets to check it with ([`verify`]).
#[derive(Debug, Clone)]
pub(crate) struct Parsed<'a> {
    /// What the MAC covers: `ocu_<claims>`.
    signed: &'a str,
    claims: Claims,
    mac: Vec<u8>,
}

impl Parsed<'_> {
    /// The store the token claims to be signed by (not proven yet).
    pub(crate) fn claimed_store(&self) -> &str {
        &self.claims.store
    }
}

/// A new store secret from 32 random bytes.
pub(crate) fn mint_secret(random: [u8; 32]) -> String {
    format!("{SECRET_START}{}", URL_SAFE_NO_PAD.encode(random))
}

/// A token with `claims`, signed with `secret`.
pub(crate) fn mint(claims: &Claims, secret: &str) -> String {
    // Serialising a struct of strings and integers cannot fail.
    let json = serde_json::to_vec(claims).unwrap_or_default();
    let signed = format!("{TOKEN_START}{}", URL_SAFE_NO_PAD.encode(json));
    let mac = URL_SAFE_NO_PAD.encode(mac(secret, &signed));
    format!("{signed}.{mac}")
}

/// Takes a token apart, or refuses it as malformed. Nothing is believed yet.
pub(crate) fn parse(token: &str) -> Result<Parsed<'_>, Refused> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Refused::Malformed);
    }
    let (signed, mac) = token.split_once('.').ok_or(Refused::Malformed)?;
    let claims = signed.strip_prefix(TOKEN_START).ok_or(Refused::Malformed)?;
    let claims = URL_SAFE_NO_PAD
        .decode(claims)
        .map_err(|_| Refused::Malformed)?;
    let claims: Claims = serde_json::from_slice(&claims).map_err(|_| Refused::Malformed)?;
    let mac = URL_SAFE_NO_PAD
        .decode(mac)
        .map_err(|_| Refused::Malformed)?;
    if mac.len() != 32 {
        return Err(Refused::Malformed);
    }
    Ok(Parsed {
        signed,
        claims,
        mac,
    })
}

/// The token's claims, if one of `secrets` (the claimed store's valid ones) signed it, it is
/// within its lifetime at `now` (Unix seconds) and its claims make sense. The MACs are
/// compared in constant time.
pub(crate) fn verify(parsed: Parsed<'_>, secrets: &[&str], now: i64) -> Result<Claims, Refused> {
    let signed_by_one = secrets.iter().any(|secret| {
        new_mac(secret).is_some_and(|mut check| {
            check.update(parsed.signed.as_bytes());
            check.verify_slice(&parsed.mac).is_ok()
        })
    });
    if !signed_by_one {
        return Err(Refused::BadSignature);
    }
    let claims = parsed.claims;
    let sensible = StoreId::parse(&claims.store).is_ok()
        && sensible_text(&claims.customer, MAX_CUSTOMER_LEN)
        && claims
            .email
            .as_deref()
            .is_none_or(|e| sensible_text(e, MAX_EMAIL_LEN));
    if !sensible {
        return Err(Refused::BadClaims);
    }
    let lifetime = claims.exp.checked_sub(claims.iat);
    if lifetime.is_none_or(|secs| secs <= 0 || secs > MAX_LIFETIME_SECS) {
        return Err(Refused::BadLifetime);
    }
    if claims.iat > now.saturating_add(SKEW_SECS) {
        return Err(Refused::NotYetValid);
    }
    if now >= claims.exp.saturating_add(SKEW_SECS) {
        return Err(Refused::Expired);
    }
    Ok(claims)
}

fn sensible_text(text: &str, max: usize) -> bool {
    !text.trim().is_empty() && text.chars().count() <= max && !text.chars().any(char::is_control)
}

/// HMAC-SHA256 keyed with the secret's text (HMAC takes keys of any length, so this is
/// always `Some`).
fn new_mac(secret: &str) -> Option<HmacSha256> {
    <HmacSha256 as KeyInit>::new_from_slice(secret.as_bytes()).ok()
}

fn mac(secret: &str, signed: &str) -> Vec<u8> {
    new_mac(secret).map_or_else(Vec::new, |mut mac| {
        mac.update(signed.as_bytes());
        mac.finalize().into_bytes().to_vec()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn claims() -> Claims {
        Claims {
            store: "shop-de".to_owned(),
            customer: "C-1001".to_owned(),
            email: Some("anna@example.com".to_owned()),
            iat: NOW - 10,
            exp: NOW + 600,
        }
    }

    fn secret() -> String {
        mint_secret([7; 32])
    }

    fn check(token: &str, secrets: &[&str], now: i64) -> Result<Claims, Refused> {
        verify(parse(token)?, secrets, now)
    }

    #[test]
    fn a_token_signed_with_the_stores_secret_is_believed() {
        let secret = secret();
        let token = mint(&claims(), &secret);
        assert!(token.starts_with(TOKEN_START));
        let parsed = parse(&token).expect("parses");
        assert_eq!(parsed.claimed_store(), "shop-de");
        assert_eq!(verify(parsed, &[&secret], NOW), Ok(claims()));
        // The previous secret during its grace period: any valid secret of the store.
        let newer = mint_secret([8; 32]);
        assert_eq!(check(&token, &[&newer, &secret], NOW), Ok(claims()));
    }

    #[test]
    fn forged_and_other_stores_tokens_are_refused() {
        let secret = secret();
        // Signed with a secret the store does not have (another store's, or a guess).
        let other = mint(&claims(), &mint_secret([9; 32]));
        assert_eq!(check(&other, &[&secret], NOW), Err(Refused::BadSignature));
        // No secrets at all (a store without one).
        let token = mint(&claims(), &secret);
        assert_eq!(check(&token, &[], NOW), Err(Refused::BadSignature));
        // A MAC of the right length that is not the MAC.
        let (signed, _) = token.split_once('.').expect("two parts");
        let zeros = format!("{signed}.{}", URL_SAFE_NO_PAD.encode([0u8; 32]));
        assert_eq!(check(&zeros, &[&secret], NOW), Err(Refused::BadSignature));
    }

    #[test]
    fn tampered_claims_break_the_signature() {
        let secret = secret();
        let token = mint(&claims(), &secret);
        let (_, mac) = token.split_once('.').expect("two parts");
        for change in [
            |c: &mut Claims| c.customer = "C-1002".to_owned(),
            |c: &mut Claims| c.store = "bol-nl".to_owned(),
            |c: &mut Claims| c.exp += 3000,
            |c: &mut Claims| c.email = None,
        ] {
            let mut tampered = claims();
            change(&mut tampered);
            let json = serde_json::to_vec(&tampered).expect("json");
            let forged = format!("{TOKEN_START}{}.{mac}", URL_SAFE_NO_PAD.encode(json));
            assert_eq!(
                check(&forged, &[&secret], NOW),
                Err(Refused::BadSignature),
                "{tampered:?}"
            );
        }
    }

    #[test]
    fn tokens_live_an_hour_at_most_with_a_minute_of_skew() {
        let secret = secret();
        let at = |iat: i64, exp: i64| {
            mint(
                &Claims {
                    iat,
                    exp,
                    ..claims()
                },
                &secret,
            )
        };
        let ok = at(NOW, NOW + 900);
        assert!(check(&ok, &[&secret], NOW + 899).is_ok());
        assert!(
            check(&ok, &[&secret], NOW + 900 + SKEW_SECS - 1).is_ok(),
            "skew"
        );
        assert_eq!(
            check(&ok, &[&secret], NOW + 900 + SKEW_SECS),
            Err(Refused::Expired)
        );
        let early = at(NOW + 30, NOW + 600);
        assert!(check(&early, &[&secret], NOW).is_ok(), "a clock 30 s ahead");
        let future = at(NOW + 600, NOW + 900);
        assert_eq!(check(&future, &[&secret], NOW), Err(Refused::NotYetValid));
        let long = at(NOW, NOW + MAX_LIFETIME_SECS + 1);
        assert_eq!(check(&long, &[&secret], NOW), Err(Refused::BadLifetime));
        let backwards = at(NOW, NOW - 1);
        assert_eq!(
            check(&backwards, &[&secret], NOW),
            Err(Refused::BadLifetime)
        );
        let overflowing = at(i64::MIN, 0);
        assert_eq!(
            check(&overflowing, &[&secret], NOW),
            Err(Refused::BadLifetime)
        );
        let extreme = at(i64::MAX - 10, i64::MAX);
        assert_eq!(
            check(&extreme, &[&secret], NOW),
            Err(Refused::NotYetValid),
            "no overflow"
        );
    }

    #[test]
    fn tokens_of_the_wrong_format_are_malformed() {
        let secret = secret();
        let token = mint(&claims(), &secret);
        let (signed, mac) = token.split_once('.').expect("two parts");
        let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
        for bad in [
            String::new(),
            "oly_AbCdEfGhIjKlMnOpQrStUvWxYz".to_owned(),
            signed.to_owned(),
            format!("{}.{mac}", signed.replacen(TOKEN_START, "ocx_", 1)),
            format!("{signed}.{mac}.{mac}"),
            format!("{signed}.not base64!"),
            format!("{signed}.{}", &mac[..20]),
            format!("{TOKEN_START}%%%.{mac}"),
            format!("{TOKEN_START}{}.{mac}", b64("not json")),
            format!("{TOKEN_START}{}.{mac}", b64(r#"{"store":"shop-de"}"#)),
            format!(
                "{TOKEN_START}{}.{mac}",
                b64(r#"{"store":"shop-de","customer":"C","iat":1,"exp":2,"admin":true}"#)
            ),
            format!("{signed}.{mac}{}", "A".repeat(MAX_TOKEN_LEN)),
        ] {
            assert_eq!(
                check(&bad, &[&secret], NOW).err(),
                Some(Refused::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn claims_that_make_no_sense_are_refused_even_when_signed() {
        let secret = secret();
        for claims in [
            Claims {
                store: "shop de".to_owned(),
                ..claims()
            },
            Claims {
                customer: " ".to_owned(),
                ..claims()
            },
            Claims {
                customer: "C".repeat(MAX_CUSTOMER_LEN + 1),
                ..claims()
            },
            Claims {
                email: Some("a\nb@example.com".to_owned()),
                ..claims()
            },
        ] {
            let token = mint(&claims, &secret);
            assert_eq!(
                check(&token, &[&secret], NOW),
                Err(Refused::BadClaims),
                "{claims:?}"
            );
        }
    }

    #[test]
    fn a_token_minted_by_the_shell_recipe_of_docs_api_md_is_taken() {
        // `basenc` and `openssl dgst -hmac` with SECRET=ocs_test, NOW=1800000000.
        let token = "ocu_eyJzdG9yZSI6InNob3AtZGUiLCJjdXN0b21lciI6IkMtMTAwMSIsImlhdCI6MTgwMDAwMDAwMCwiZXhwIjoxODAwMDAwOTAwfQ.Q6kKnQS80A8SZ-cN_h7ZJi3e8qUJ5agB9WwEpf8pxKI";
        let claims = check(token, &["ocs_test"], NOW + 1).expect("taken");
        assert_eq!(
            (claims.store.as_str(), claims.customer.as_str()),
            ("shop-de", "C-1001")
        );
        assert_eq!((claims.iat, claims.exp), (NOW, NOW + 900));
    }

    #[test]
    fn the_mac_is_hmac_sha256_of_the_first_part_keyed_with_the_secret_text() {
        // RFC 4231 test case 2, through our function: the documented algorithm is the
        // standard one, so a storefront's own HMAC library agrees.
        let mac = mac("Jefe", "what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let secret = secret();
        let token = mint(&claims(), &secret);
        let (signed, sent) = token.split_once('.').expect("two parts");
        assert_eq!(URL_SAFE_NO_PAD.encode(self::mac(&secret, signed)), sent);
    }
}
