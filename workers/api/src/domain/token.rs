//! API tokens: opaque random strings, of which only the SHA-256 is stored.
//!
//! A token is `oly_` and 32 random bytes in base64url (256 bits: guessing one is hopeless,
//! so a fast hash suffices and a slow password hash would only slow every request). Only
//! its hash is kept, so a copy of the database gives no working token. The first
//! [`PREFIX_LEN`] characters are also stored, so an operator can name a token to revoke it
//! without having it whole.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// What every token starts with (recognisable in logs and secret scanners).
pub(crate) const TOKEN_START: &str = "oly_";
/// How many leading characters of a token are stored to name it.
pub(crate) const PREFIX_LEN: usize = 12;

/// A new token from 32 random bytes.
pub(crate) fn mint(random: [u8; 32]) -> String {
    format!("{TOKEN_START}{}", URL_SAFE_NO_PAD.encode(random))
}

/// The stored hash of a token.
pub(crate) fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The stored prefix of a token.
pub(crate) fn prefix(token: &str) -> &str {
    token.get(..PREFIX_LEN).unwrap_or(token)
}

/// Whether `given` (what an operator typed) names a token with `stored_prefix`: a prefix
/// of at least 8 characters of it, or the whole token.
pub(crate) fn names(given: &str, stored_prefix: &str) -> bool {
    given.len() >= 8 && (stored_prefix.starts_with(given) || given.starts_with(stored_prefix))
}

/// The token of an `Authorization` header value, if it is a bearer token.
pub(crate) fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_opaque_and_only_their_hash_and_prefix_are_kept() {
        let token = mint([7; 32]);
        assert!(token.starts_with(TOKEN_START));
        assert_eq!(token.len(), 4 + 43);
        assert_ne!(mint([8; 32]), token);
        assert_eq!(hash(&token), hash(&token.clone()));
        assert_ne!(hash(&token), hash(&mint([8; 32])));
        assert_eq!(prefix(&token).len(), PREFIX_LEN);
    }

    #[test]
    fn a_prefix_or_the_whole_token_names_it() {
        let token = mint([1; 32]);
        let stored = prefix(&token);
        assert!(names(&token, stored));
        assert!(names(&token[..9], stored));
        assert!(!names(&token[..5], stored), "too short to be sure");
        assert!(!names("oly_zzzzzzzzzz", stored));
    }

    #[test]
    fn bearer_tokens_are_read_from_the_header() {
        assert_eq!(bearer("Bearer oly_abc"), Some("oly_abc"));
        assert_eq!(bearer("bearer  oly_abc "), Some("oly_abc"));
        assert_eq!(bearer("Basic dXNlcjpwYXNz"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("oly_abc"), None);
    }
}
