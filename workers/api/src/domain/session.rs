//! The admin console's sign-in: staff passwords, how long a session lives, and the form
//! token that proves a POST came from one of the console's own pages.
//!
//! Why these rules:
//! - **passwords as Argon2id PHC strings**: a password is short and guessable, so unlike an
//!   API token (256 random bits, a SHA-256 suffices) it needs a slow, salted hash; the PHC
//!   string carries its salt and parameters, so they can change without a migration.
//! - **two lifetimes**: a session ends after [`Lifetimes::idle`] without a request (a
//!   browser left open on a shared desk) and at [`Lifetimes::absolute`] however busy (a
//!   stolen cookie does not work forever).
//! - **a per-session form token, compared in constant time**: the session cookie is
//!   `SameSite=Strict`, which already keeps other sites' forms from carrying it; the token
//!   is the second line, for browsers or proxies that do not honour `SameSite`.
//!
//! Hashing is CPU work (tens of milliseconds by design): callers run it off the async
//! threads.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;

/// The shortest password accepted.
pub(crate) const MIN_PASSWORD_CHARS: usize = 12;
/// The longest (hashing a megabyte of "password" is a denial of service, not security).
pub(crate) const MAX_PASSWORD_CHARS: usize = 256;

/// A password as typed, checked for length; the reason when it is refused.
pub(crate) fn check_password(password: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(format!(
            "a password needs at least {MIN_PASSWORD_CHARS} characters (this one has {chars})"
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(format!(
            "a password may have at most {MAX_PASSWORD_CHARS} characters"
        ));
    }
    if password.chars().any(char::is_control) {
        return Err("a password may not contain control characters (a stray newline?)".into());
    }
    Ok(())
}

/// The PHC string of `password` (Argon2id, the crate's default parameters, a random salt).
pub(crate) fn hash_password(password: &str) -> Result<String, String> {
    check_password(password)?;
    let mut random = [0u8; 16];
    rand::rng().fill_bytes(&mut random);
    let salt = SaltString::encode_b64(&random)
        .map_err(|e| format!("the password could not be salted: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("the password could not be hashed: {e}"))
}

/// Whether `password` is the one `phc` was made from. A stored string that is not a PHC
/// string matches nothing.
pub(crate) fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A PHC string of a password nobody has, verified against when the e-mail is unknown, so
/// an unknown e-mail takes as long to refuse as a wrong password.
pub(crate) const DECOY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$\
    qNwDGu4eOmpUVGAIoPEYS3a3yy0Y8v4KX4ps0Uzxa3U";

/// How long a session lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lifetimes {
    /// Without a request for this long, it ends.
    pub(crate) idle: Duration,
    /// This long after sign-in, it ends whatever its use.
    pub(crate) absolute: Duration,
}

/// Whether a session may still be used, or why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// In use.
    Alive,
    /// Unused for longer than the idle lifetime.
    Idle,
    /// Past its absolute end.
    Expired,
    /// Its holder signed out.
    Ended,
}

/// What decides a session's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionTimes {
    pub(crate) last_seen_at: DateTime<Utc>,
    pub(crate) expires_at: DateTime<Utc>,
    pub(crate) ended_at: Option<DateTime<Utc>>,
}

/// The standing of a session at `now`.
pub(crate) fn standing(times: SessionTimes, idle: Duration, now: DateTime<Utc>) -> Standing {
    if times.ended_at.is_some() {
        Standing::Ended
    } else if now >= times.expires_at {
        Standing::Expired
    } else if now - times.last_seen_at >= idle {
        Standing::Idle
    } else {
        Standing::Alive
    }
}

/// Whether `given` (a form's field) is the session's form token, in time independent of
/// where they differ.
pub(crate) fn csrf_matches(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    if a.len() != b.len() || a.is_empty() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `path` if it is one of the console's own pages (a path under `/admin`, never another
/// site: an open redirect would lend the console's address to phishing).
pub(crate) fn local_path(path: &str) -> Option<&str> {
    ((path == "/admin" || path.starts_with("/admin/") || path.starts_with("/admin?"))
        && !path.contains("//")
        && !path.contains('\\')
        && !path.chars().any(char::is_control))
    .then_some(path)
}

/// Where to go after signing in: `next` when it is one of the console's own pages (but the
/// sign-in page itself), else the order list.
pub(crate) fn after_sign_in(next: Option<&str>) -> String {
    next.and_then(local_path)
        .filter(|p| !p.starts_with("/admin/sign-"))
        .unwrap_or("/admin/orders")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_hashes_to_a_phc_string_that_verifies_it_alone() {
        let phc = hash_password("correct horse battery").expect("hashes");
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("correct horse batterY", &phc));
        assert!(!verify_password("anything", "not a phc string"));
        let again = hash_password("correct horse battery").expect("hashes");
        assert_ne!(phc, again, "a new salt each time");
    }

    #[test]
    fn the_decoy_is_a_phc_string_so_unknown_e_mails_cost_a_verification() {
        assert!(PasswordHash::new(DECOY_PHC).is_ok());
        assert!(!verify_password("", DECOY_PHC));
    }

    #[test]
    fn short_long_and_control_character_passwords_are_refused_saying_why() {
        assert!(check_password("short").expect_err("short").contains("12"));
        assert!(check_password(&"x".repeat(257)).is_err());
        assert!(
            check_password("twelve chars ok\n")
                .expect_err("newline")
                .contains("newline")
        );
        assert!(check_password("twelve chars ok").is_ok());
    }

    #[test]
    fn a_session_ends_when_idle_at_its_absolute_end_or_when_signed_out() {
        let t0 = DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z")
            .expect("time")
            .to_utc();
        let idle = Duration::minutes(30);
        let times = SessionTimes {
            last_seen_at: t0,
            expires_at: t0 + Duration::hours(12),
            ended_at: None,
        };
        assert_eq!(standing(times, idle, t0), Standing::Alive);
        assert_eq!(
            standing(times, idle, t0 + Duration::minutes(29)),
            Standing::Alive
        );
        assert_eq!(
            standing(times, idle, t0 + Duration::minutes(30)),
            Standing::Idle
        );
        let busy = SessionTimes {
            last_seen_at: t0 + Duration::hours(12),
            ..times
        };
        assert_eq!(
            standing(busy, idle, t0 + Duration::hours(12)),
            Standing::Expired
        );
        let ended = SessionTimes {
            ended_at: Some(t0),
            ..times
        };
        assert_eq!(standing(ended, idle, t0), Standing::Ended);
    }

    #[test]
    fn a_form_token_matches_only_itself_and_never_when_empty() {
        let token = "a".repeat(64);
        assert!(csrf_matches(&token, &token));
        assert!(!csrf_matches(&"b".repeat(64), &token));
        assert!(!csrf_matches("a", &token));
        assert!(!csrf_matches("", ""));
    }

    #[test]
    fn after_sign_in_goes_only_to_the_consoles_own_pages() {
        assert_eq!(after_sign_in(Some("/admin/orders/x")), "/admin/orders/x");
        for bad in [
            "https://evil.example/",
            "//evil.example/admin/",
            "/admin//evil",
            "/admin/sign-in",
            "/api/v1/admin/orders",
            "/admin/\\evil",
        ] {
            assert_eq!(after_sign_in(Some(bad)), "/admin/orders", "{bad}");
        }
        assert_eq!(after_sign_in(None), "/admin/orders");
        assert_eq!(
            local_path("/admin/sign-in?next=x"),
            Some("/admin/sign-in?next=x")
        );
        assert_eq!(local_path("/administrator"), None);
    }
}
