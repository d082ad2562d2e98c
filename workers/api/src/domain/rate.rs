//! Rate limits: how many requests a token, or an address that does not authenticate, may
//! make. The counting is `governor`'s (GCRA, keyed: a sustained rate plus a burst, kept as
//! one timestamp per key); what is ours is what is counted against what:
//!
//! - a request that **authenticates** counts against its bearer ([`Bearer`]: a staff token,
//!   or a storefront's customer) (`[api] rate_per_second`, `rate_burst`): one client's loop
//!   cannot starve the others, and two bearers never share a budget. A customer is counted
//!   by store and customer id, not by token: a storefront mints a new token per session or
//!   page view, and a budget per token would let one customer multiply theirs;
//! - a request that **does not authenticate** (no token, a wrong one, the public OpenAPI
//!   document) counts against its client's address (`address_rate_per_second`,
//!   `address_rate_burst`), looser than a token's because many clients can share an address
//!   (an office, a proxy in front of the API);
//! - once an address is over its limit it is **barred** until its next request would
//!   conform: every request from it is refused before its token is even looked up, valid
//!   token or not. Without that, a guesser would learn a right token from the one answer that
//!   is not a 429, at any speed; with it, guessing runs at the address's rate.
//!
//! IPv6 addresses are counted by their /64 (one host usually has a whole /64 to pick from).
//! Generic over the clock so the tests can move time by hand.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A limit: `per_second` sustained (fractions allowed; 0: no limit), `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rate {
    pub(crate) per_second: f64,
    pub(crate) burst: u32,
}

impl Rate {
    /// The limit as a quota; `None` when it is off (0 per second). A limit that cannot work
    /// is refused saying why.
    pub(crate) fn quota(self) -> Result<Option<Quota>, String> {
        if self.per_second == 0.0 {
            return Ok(None);
        }
        if !(self.per_second.is_finite() && self.per_second > 0.0) {
            return Err(format!(
                "{} is not a rate (0, or a positive number of requests per second)",
                self.per_second
            ));
        }
        let burst = NonZeroU32::new(self.burst)
            .ok_or("the burst must be at least 1 when the rate is not 0")?;
        let period = Duration::try_from_secs_f64(1.0 / self.per_second)
            .ok()
            .and_then(Quota::with_period)
            .ok_or_else(|| format!("{} per second is more than can be counted", self.per_second))?;
        Ok(Some(period.allow_burst(burst)))
    }
}

/// How long to wait, as `Retry-After` says it: whole seconds, rounded up, at least 1.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// The key an address is counted under: an IPv4 address itself (also when it arrives as an
/// IPv4-mapped IPv6 address), an IPv6 address by its /64.
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

/// Whose budget an authenticated request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Bearer {
    /// A staff member's API token, by its id.
    Staff(Uuid),
    /// A storefront's customer, by a digest of their store and customer id ([`Bearer::customer`]).
    Customer([u8; 16]),
}

impl Bearer {
    /// The budget of `store`'s customer `customer`, shared by every token the storefront
    /// mints for them. A digest, so each key has one small size and the limiter holds no
    /// customer ids.
    pub(crate) fn customer(store: &str, customer: &str) -> Self {
        // The store's length first: no two (store, customer) pairs give the same input.
        let digest = Sha256::new()
            .chain_update(store.len().to_be_bytes())
            .chain_update(store)
            .chain_update(customer)
            .finalize();
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        Self::Customer(key)
    }
}

type Keyed<K, C> = RateLimiter<K, DashMapStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The API's rate limits and what they have counted.
pub(crate) struct Throttle<C: Clock = DefaultClock> {
    clock: C,
    tokens: Option<Keyed<Bearer, C>>,
    addresses: Option<Keyed<IpAddr, C>>,
    /// Addresses over their limit, and until when every request from them is refused.
    barred: Mutex<HashMap<IpAddr, C::Instant>>,
}

impl<C: Clock> std::fmt::Debug for Throttle<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("tokens", &self.tokens.as_ref().map(|l| l.len()))
            .field("addresses", &self.addresses.as_ref().map(|l| l.len()))
            .finish_non_exhaustive()
    }
}

/// How many barred addresses are kept before the expired ones are dropped on the spot
/// (otherwise [`Throttle::forget_idle`] drops them).
const BARRED_SWEEP_AT: usize = 4096;

impl Throttle<DefaultClock> {
    /// Limits of `tokens` per token and `addresses` per address, on the real clock.
    pub(crate) fn new(tokens: Option<Quota>, addresses: Option<Quota>) -> Self {
        Self::with_clock(tokens, addresses, DefaultClock::default())
    }
}

impl<C: Clock + Clone> Throttle<C> {
    pub(crate) fn with_clock(tokens: Option<Quota>, addresses: Option<Quota>, clock: C) -> Self {
        Self {
            tokens: tokens.map(|q| RateLimiter::dashmap_with_clock(q, clock.clone())),
            addresses: addresses.map(|q| RateLimiter::dashmap_with_clock(q, clock.clone())),
            clock,
            barred: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request that authenticated as `bearer`: `Err` with the time to wait when the
    /// bearer is over its limit.
    pub(crate) fn token(&self, bearer: &Bearer) -> Result<(), Duration> {
        let Some(limiter) = &self.tokens else {
            return Ok(());
        };
        limiter
            .check_key(bearer)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Whether `ip` is barred: `Err` with the time left, before anything else is done with
    /// its request.
    pub(crate) fn barred(&self, ip: IpAddr) -> Result<(), Duration> {
        if self.addresses.is_none() {
            return Ok(());
        }
        let now = self.clock.now();
        let barred = self.barred.lock().unwrap_or_else(PoisonError::into_inner);
        match barred.get(&address_key(ip)) {
            Some(until) if *until > now => Err(until.duration_since(now).into()),
            _ => Ok(()),
        }
    }

    /// Counts a request from `ip` that did not authenticate: `Err` with the time to wait when
    /// the address is over its limit, which bars it until then.
    pub(crate) fn unauthenticated(&self, ip: IpAddr) -> Result<(), Duration> {
        let Some(limiter) = &self.addresses else {
            return Ok(());
        };
        let key = address_key(ip);
        let Err(not_until) = limiter.check_key(&key) else {
            return Ok(());
        };
        let now = self.clock.now();
        let until = not_until.earliest_possible();
        let mut barred = self.barred.lock().unwrap_or_else(PoisonError::into_inner);
        if barred.len() >= BARRED_SWEEP_AT {
            barred.retain(|_, until| *until > now);
        }
        barred.insert(key, until);
        Err(not_until.wait_time_from(now))
    }

    /// Forgets the keys whose limits are back to full and the bars that ended, so memory
    /// follows the clients of the last moments, not every client ever seen.
    pub(crate) fn forget_idle(&self) {
        for limiter in self.tokens.iter() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.addresses {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        let now = self.clock.now();
        self.barred
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, until| *until > now);
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn quota(per_second: f64, burst: u32) -> Option<Quota> {
        Rate { per_second, burst }.quota().expect("a valid limit")
    }

    #[test]
    fn a_limit_is_off_at_zero_and_refused_when_it_cannot_work() {
        assert_eq!(
            Rate {
                per_second: 0.0,
                burst: 0
            }
            .quota(),
            Ok(None)
        );
        let q = quota(20.0, 40).expect("on");
        assert_eq!(q.replenish_interval(), Duration::from_millis(50));
        assert_eq!(q.burst_size().get(), 40);
        assert_eq!(
            quota(0.5, 1).map(|q| q.replenish_interval()),
            Some(Duration::from_secs(2))
        );
        for bad in [
            Rate {
                per_second: -1.0,
                burst: 1,
            },
            Rate {
                per_second: f64::NAN,
                burst: 1,
            },
            Rate {
                per_second: f64::INFINITY,
                burst: 1,
            },
            Rate {
                per_second: 1e12,
                burst: 1,
            },
            Rate {
                per_second: 5.0,
                burst: 0,
            },
        ] {
            assert!(bad.quota().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_never_zero() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(30)), 30);
    }

    #[test]
    fn addresses_are_counted_by_host_not_by_port_or_interface_id() {
        let v4: IpAddr = "203.0.113.7".parse().expect("ip");
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().expect("ip");
        assert_eq!(address_key(mapped), v4);
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("ip");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(other));
    }

    #[test]
    fn a_token_gets_its_burst_then_its_rate_and_another_token_is_unaffected() {
        let clock = FakeRelativeClock::default();
        let throttle = Throttle::with_clock(quota(2.0, 3), None, clock.clone());
        let (a, b) = (Bearer::Staff(Uuid::now_v7()), Bearer::Staff(Uuid::now_v7()));
        for _ in 0..3 {
            assert_eq!(throttle.token(&a), Ok(()));
        }
        let wait = throttle.token(&a).expect_err("over the burst");
        assert_eq!(wait, Duration::from_millis(500));
        assert_eq!(
            throttle.token(&b),
            Ok(()),
            "another token has its own budget"
        );
        clock.advance(Duration::from_millis(500));
        assert_eq!(throttle.token(&a), Ok(()), "one more after 1/rate");
        assert!(throttle.token(&a).is_err());
    }

    #[test]
    fn a_customers_tokens_share_one_budget_and_other_customers_have_their_own() {
        let clock = FakeRelativeClock::default();
        let throttle = Throttle::with_clock(quota(1.0, 2), None, clock);
        let anna = Bearer::customer("shop-de", "C-ANNA");
        assert_eq!(
            anna,
            Bearer::customer("shop-de", "C-ANNA"),
            "whichever token"
        );
        assert_eq!(throttle.token(&anna), Ok(()));
        assert_eq!(
            throttle.token(&Bearer::customer("shop-de", "C-ANNA")),
            Ok(())
        );
        assert!(
            throttle.token(&anna).is_err(),
            "the burst is the customer's"
        );
        for other in [
            Bearer::customer("shop-de", "C-BEN"),
            Bearer::customer("bol-nl", "C-ANNA"),
            // Store and customer are not merely concatenated.
            Bearer::customer("shop-deC", "-ANNA"),
            Bearer::Staff(Uuid::nil()),
        ] {
            assert_ne!(other, anna);
            assert_eq!(throttle.token(&other), Ok(()), "{other:?}");
        }
    }

    #[test]
    fn an_address_over_its_limit_is_barred_for_every_request_until_it_conforms() {
        let clock = FakeRelativeClock::default();
        let throttle = Throttle::with_clock(None, quota(1.0, 2), clock.clone());
        let guesser: IpAddr = "198.51.100.1".parse().expect("ip");
        let neighbour: IpAddr = "198.51.100.2".parse().expect("ip");
        assert_eq!(throttle.barred(guesser), Ok(()));
        assert_eq!(throttle.unauthenticated(guesser), Ok(()));
        assert_eq!(throttle.unauthenticated(guesser), Ok(()));
        let wait = throttle.unauthenticated(guesser).expect_err("over");
        assert_eq!(wait, Duration::from_secs(1));
        // Barred: even a request with a valid token is refused, before it is looked up.
        assert_eq!(throttle.barred(guesser), Err(Duration::from_secs(1)));
        assert_eq!(throttle.barred(neighbour), Ok(()));
        clock.advance(Duration::from_millis(400));
        assert_eq!(throttle.barred(guesser), Err(Duration::from_millis(600)));
        clock.advance(Duration::from_millis(600));
        assert_eq!(throttle.barred(guesser), Ok(()));
        assert_eq!(throttle.unauthenticated(guesser), Ok(()), "one per second");
        assert!(throttle.unauthenticated(guesser).is_err());
    }

    #[test]
    fn no_limits_count_nothing() {
        let throttle = Throttle::with_clock(None, None, FakeRelativeClock::default());
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        for _ in 0..1000 {
            assert_eq!(throttle.token(&Bearer::Staff(Uuid::nil())), Ok(()));
            assert_eq!(throttle.unauthenticated(ip), Ok(()));
        }
        assert_eq!(throttle.barred(ip), Ok(()));
    }

    #[test]
    fn idle_keys_and_ended_bars_are_forgotten() {
        let clock = FakeRelativeClock::default();
        let throttle = Throttle::with_clock(quota(10.0, 1), quota(10.0, 1), clock.clone());
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        assert!(throttle.token(&Bearer::Staff(Uuid::now_v7())).is_ok());
        assert!(throttle.unauthenticated(ip).is_ok());
        assert!(throttle.unauthenticated(ip).is_err());
        clock.advance(Duration::from_secs(1));
        throttle.forget_idle();
        assert_eq!(throttle.tokens.as_ref().map(|l| l.len()), Some(0));
        assert_eq!(throttle.addresses.as_ref().map(|l| l.len()), Some(0));
        assert!(throttle.barred.lock().expect("lock").is_empty());
    }
}
