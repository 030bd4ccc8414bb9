//! Keyed rate limiters (GCRA, governor): login attempts per client address and
//! per username, and requests of unauthenticated callers per client address.
//!
//! Each replica limits on its own, in memory: behind N replicas a client gets
//! up to N times the configured rate, which is acceptable for throttling
//! password guessing and scraping and keeps the database out of the hot path.

use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota};
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often idle keys are forgotten, so the maps stay as small as the set of
/// recently active clients.
const FORGET_IDLE_EVERY: Duration = Duration::from_secs(60);

/// One keyed limiter with periodic forgetting of idle keys.
pub(crate) struct KeyedLimiter<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    started: Instant,
    /// Seconds after `started` of the next sweep of idle keys.
    next_sweep_s: AtomicU64,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// `per_period` cells per `period`, all of which may be used at once.
    /// `None` when `per_period` is 0, which means no limit.
    pub(crate) fn new(per_period: u32, burst: u32, period: Duration) -> Option<Self> {
        let per_period = NonZeroU32::new(per_period)?;
        let burst = NonZeroU32::new(burst).unwrap_or(per_period);
        let quota = Quota::with_period(period / per_period.get())?.allow_burst(burst);
        Some(Self {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            started: Instant::now(),
            next_sweep_s: AtomicU64::new(FORGET_IDLE_EVERY.as_secs()),
        })
    }

    /// `Err(seconds to wait)` when `key` is over its limit; the wait is
    /// rounded up to whole seconds for `Retry-After`, at least 1.
    pub(crate) fn check(&self, key: &K) -> Result<(), u64> {
        self.sweep_now_and_then();
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.limiter.clock().now());
            (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
        })
    }

    /// Forgets keys whose state equals a fresh one, at most once a minute and
    /// on one thread (the first to win the exchange).
    fn sweep_now_and_then(&self) {
        let now_s = self.started.elapsed().as_secs();
        let due_s = self.next_sweep_s.load(Ordering::Relaxed);
        if now_s < due_s {
            return;
        }
        let next_s = now_s + FORGET_IDLE_EVERY.as_secs();
        if self
            .next_sweep_s
            .compare_exchange(due_s, next_s, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
    }
}

/// The key a client address is limited under: IPv4 as is, IPv6 by its /64
/// (one subscriber's usual allocation), IPv4-mapped IPv6 as the IPv4 address.
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !((1_u128 << 64) - 1);
                IpAddr::V6(network.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_after_the_burst_and_says_how_long_to_wait() {
        let limiter = KeyedLimiter::new(5, 5, Duration::from_secs(60))
            .unwrap_or_else(|| unreachable!("5 per minute is a limit"));
        for _ in 0..5 {
            assert_eq!(limiter.check(&"ana"), Ok(()));
        }
        // One cell comes back every 12 s.
        let wait = limiter.check(&"ana").err();
        assert!(matches!(wait, Some(11..=12)), "{wait:?}");
        assert_eq!(limiter.check(&"bo"), Ok(()), "keys are independent");
    }

    #[test]
    fn zero_means_no_limit() {
        assert!(KeyedLimiter::<IpAddr>::new(0, 10, Duration::from_secs(1)).is_none());
    }

    #[test]
    fn ipv6_clients_are_limited_per_64() {
        let key = |text: &str| client_key(text.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])));
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:10.0.0.7"), key("10.0.0.7"));
        assert_ne!(key("10.0.0.7"), key("10.0.0.8"));
    }
}
