//! Concurrent connection limits: in total, per client address, per token
//! subject; and the compiled URL patterns one client address may hold.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::ServerError;

/// The configured maximums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Subscriber connections in total (default 18,000).
    pub total: usize,
    /// Subscriber connections from one client address (known when served by
    /// [`crate::serve`], or by `axum::serve` with
    /// `into_make_service_with_connect_info::<SocketAddr>()`; without it
    /// this limit cannot apply). Default 18,000.
    pub per_address: usize,
    /// Subscriber connections under one token subject (`iss` + `sub`;
    /// default 1,000).
    pub per_subject: usize,
    /// Bytes of compiled URL patterns ([`herald_hub::Matcher::compiled_bytes`])
    /// the live subscriptions from one client address may hold together,
    /// each subscription counted whole: a pattern it shares with others
    /// counts for it too, so one address cannot take the hub's whole
    /// `max_pattern_memory` from everyone else.
    pub pattern_bytes_per_address: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            total: 18_000,
            per_address: 18_000,
            per_subject: 1_000,
            pattern_bytes_per_address: herald_hub::DEFAULT_MAX_PATTERN_MEMORY,
        }
    }
}

/// Counts open subscriber connections against the limits.
#[derive(Debug, Default)]
pub struct ConnectionCounter {
    limits: Option<ConnectionLimits>,
    state: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
    /// Compiled URL pattern bytes held, by client address.
    patterns_by_address: HashMap<IpAddr, usize>,
    /// Keys shared with the admissions they count: one copy per subject.
    by_subject: HashMap<Arc<str>, usize>,
}

/// One admitted connection; dropping it releases its place.
#[derive(Debug)]
pub struct Admission {
    counter: Arc<ConnectionCounter>,
    address: Option<IpAddr>,
    subject: Option<Arc<str>>,
    /// What [`Admission::hold_patterns`] charged to `address`.
    pattern_bytes: usize,
}

impl ConnectionCounter {
    /// A counter enforcing `limits`.
    pub fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Self {
            limits: Some(limits),
            state: Mutex::default(),
        })
    }

    /// Admits a connection or says which limit refuses it (a 429).
    pub fn admit(
        self: &Arc<Self>,
        address: Option<IpAddr>,
        subject: Option<&str>,
    ) -> Result<Admission, ServerError> {
        let limits = self.limits.unwrap_or_default();
        let mut counts = self.state.lock();
        if counts.total >= limits.total {
            return Err(ServerError::TooManyConnections {
                limit: "total",
                detail: format!(
                    "the hub holds its maximum of {} subscriber connections",
                    limits.total
                ),
            });
        }
        if let Some(address) = address
            && counts.by_address.get(&address).copied().unwrap_or(0) >= limits.per_address
        {
            return Err(ServerError::TooManyConnections {
                limit: "address",
                detail: format!(
                    "the address {address} holds its maximum of {} subscriber connections",
                    limits.per_address
                ),
            });
        }
        if let Some(subject) = subject
            && counts.by_subject.get(subject).copied().unwrap_or(0) >= limits.per_subject
        {
            return Err(ServerError::TooManyConnections {
                limit: "subject",
                detail: format!(
                    "the token subject holds its maximum of {} subscriber connections",
                    limits.per_subject
                ),
            });
        }
        counts.total += 1;
        if let Some(address) = address {
            *counts.by_address.entry(address).or_default() += 1;
        }
        let subject = subject.map(|subject| match counts.by_subject.get_key_value(subject) {
            Some((key, _)) => Arc::clone(key),
            None => Arc::from(subject),
        });
        if let Some(subject) = &subject {
            *counts.by_subject.entry(Arc::clone(subject)).or_default() += 1;
        }
        Ok(Admission {
            counter: Arc::clone(self),
            address,
            subject,
            pattern_bytes: 0,
        })
    }
}

impl Admission {
    /// Charges `bytes` of compiled URL patterns to the connection's client
    /// address for as long as the admission lives, or says (a 429) that the
    /// address's subscriptions already hold too many.
    pub fn hold_patterns(&mut self, bytes: usize) -> Result<(), ServerError> {
        let Some(address) = self.address else {
            return Ok(());
        };
        if bytes == 0 {
            return Ok(());
        }
        let limit = self
            .counter
            .limits
            .unwrap_or_default()
            .pattern_bytes_per_address;
        let mut counts = self.counter.state.lock();
        let held = counts
            .patterns_by_address
            .get(&address)
            .copied()
            .unwrap_or(0);
        if held.saturating_add(bytes) > limit {
            let kib = |bytes: usize| bytes.div_ceil(1024);
            return Err(ServerError::TooManyConnections {
                limit: "address_patterns",
                detail: format!(
                    "the subscriptions from the address {address} hold {} KiB of compiled URL \
                     patterns, and this one's {} KiB would pass their limit of {} KiB: subscribe \
                     with exact topics or fewer patterns, or once other subscriptions from this \
                     address have ended",
                    kib(held),
                    kib(bytes),
                    kib(limit)
                ),
            });
        }
        *counts.patterns_by_address.entry(address).or_default() += bytes;
        self.pattern_bytes += bytes;
        Ok(())
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut counts = self.counter.state.lock();
        counts.total -= 1;
        if let Some(address) = self.address
            && let Some(n) = counts.by_address.get_mut(&address)
        {
            *n -= 1;
            if *n == 0 {
                counts.by_address.remove(&address);
            }
        }
        if self.pattern_bytes > 0
            && let Some(address) = self.address
            && let Some(held) = counts.patterns_by_address.get_mut(&address)
        {
            *held -= self.pattern_bytes;
            if *held == 0 {
                counts.patterns_by_address.remove(&address);
            }
        }
        if let Some(subject) = &self.subject
            && let Some(n) = counts.by_subject.get_mut(&**subject)
        {
            *n -= 1;
            if *n == 0 {
                counts.by_subject.remove(&**subject);
            }
        }
    }
}
