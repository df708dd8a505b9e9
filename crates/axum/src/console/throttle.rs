//! Slows down sign-in attempts with wrong tokens, per client address.
//!
//! A few mistakes are free; after that each further attempt from the same address must wait,
//! twice as long after each failure, up to a minute. Guessing a 256-bit token is hopeless
//! anyway: this keeps a script from hammering the store and the logs. IPv6 clients are
//! counted per /64, the block one host usually holds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Wrong tokens allowed before attempts must wait.
const FREE_FAILURES: u32 = 3;
/// The longest wait.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Failures are forgotten after this long without another.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// At most this many addresses are remembered.
const MAX_CLIENTS: usize = 50_000;

/// Where a client is, for counting: its address (IPv6: the /64), or nothing when the server
/// does not say.
pub(crate) type ClientKey = Option<IpAddr>;

#[derive(Debug)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    wait_until: Instant,
}

/// The failures per client.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    clients: Mutex<HashMap<ClientKey, Entry>>,
}

/// The key a client's address is counted under.
pub(crate) fn client_key(ip: Option<IpAddr>) -> ClientKey {
    ip.map(|ip| match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    })
}

impl Throttle {
    fn lock(&self) -> MutexGuard<'_, HashMap<ClientKey, Entry>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(wait)` when the client must wait before trying again.
    pub(crate) fn check(&self, client: ClientKey) -> Result<(), Duration> {
        let now = Instant::now();
        match self.lock().get(&client) {
            Some(entry) if entry.wait_until > now => Err(entry.wait_until - now),
            _ => Ok(()),
        }
    }

    /// Counts a wrong token.
    pub(crate) fn failure(&self, client: ClientKey) {
        let now = Instant::now();
        let mut clients = self.lock();
        if clients.len() >= MAX_CLIENTS {
            clients.retain(|_, e| now.duration_since(e.last_failure) < FORGET_AFTER);
            if clients.len() >= MAX_CLIENTS {
                clients.clear();
            }
        }
        let entry = clients.entry(client).or_insert(Entry {
            failures: 0,
            last_failure: now,
            wait_until: now,
        });
        if now.duration_since(entry.last_failure) >= FORGET_AFTER {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        if entry.failures > FREE_FAILURES {
            let doublings = (entry.failures - FREE_FAILURES - 1).min(6);
            let wait = Duration::from_secs(1 << doublings).min(MAX_WAIT);
            entry.wait_until = now + wait;
        }
    }

    /// Forgets a client's failures after it signed in.
    pub(crate) fn success(&self, client: ClientKey) {
        self.lock().remove(&client);
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;

    #[test]
    fn waits_grow_after_the_free_failures() {
        let throttle = Throttle::default();
        let client = client_key(Some("192.0.2.1".parse().unwrap()));
        for _ in 0..FREE_FAILURES {
            assert!(throttle.check(client).is_ok());
            throttle.failure(client);
        }
        assert!(throttle.check(client).is_ok());
        throttle.failure(client);
        let wait = throttle.check(client).unwrap_err();
        assert!(wait <= Duration::from_secs(1) && wait > Duration::from_millis(500));
        // Another address is not slowed down.
        assert!(
            throttle
                .check(client_key(Some("192.0.2.2".parse().unwrap())))
                .is_ok()
        );
        throttle.success(client);
        assert!(throttle.check(client).is_ok());
    }

    #[test]
    fn ipv6_counts_per_64() {
        let a: Ipv6Addr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(
            client_key(Some(IpAddr::V6(a))),
            client_key(Some(IpAddr::V6(b)))
        );
    }
}
