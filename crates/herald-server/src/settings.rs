//! The edge's runtime settings, with the defaults a production hub starts from.

use std::time::Duration;

use std::sync::Arc;

use crate::compat::Compatibility;
use crate::limits::ConnectionLimits;

/// How the HTTP edge behaves. Every field has a documented default.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Origins allowed to make credentialed cross-origin requests (CORS).
    /// Empty (the default): no CORS headers at all. Never `*`: an origin
    /// that is `*` or not a header value is left out, with an error logged.
    pub cors_origins: Vec<String>,
    /// The cookie the access token may be presented in (default
    /// `__Secure-mercure_access_token`).
    pub cookie_name: String,
    /// Whether subscribers without a token are accepted (they get public
    /// updates only); default `true`.
    pub anonymous_subscribers: bool,
    /// Idle time after which a keep-alive comment is sent (default 15 s; at
    /// least 1 s, a shorter one is raised to it).
    pub heartbeat: Duration,
    /// Longest a subscriber connection stays open, whatever its token says
    /// (default 24 h).
    pub max_connection_lifetime: Option<Duration>,
    /// Largest accepted request body, in bytes (413 beyond; default 2 MiB).
    pub max_body_bytes: usize,
    /// Most topic matchers in one subscription request (400 beyond; default 100).
    pub max_matchers: usize,
    /// Concurrent connection limits (429 beyond; see [`ConnectionLimits`]'s
    /// defaults).
    pub connections: ConnectionLimits,
    /// Longest a graceful shutdown waits for open connections (default 10 s).
    pub shutdown_timeout: Duration,
    /// A connection whose writes make no progress this long is closed
    /// (default 30 s).
    pub write_timeout: Duration,
    /// Longest a connection may take to deliver a whole request head, from
    /// when it is accepted and, kept alive, from the end of its previous
    /// answer; beyond it the connection is closed. So it also bounds how
    /// long a kept-alive connection may stay idle between requests. It
    /// never bounds a response, so an event stream lives as long as it may.
    /// Default 10 s.
    pub request_head_timeout: Duration,
    /// A request body that makes no progress this long ends its request
    /// with a 408 and its HTTP/1.1 connection; the update is not published.
    /// Default 10 s.
    pub request_body_timeout: Duration,
    /// Most subscriptions in one page of a subscription API collection
    /// (default 1000; 0 counts as 1).
    pub subscriptions_page_size: usize,
    /// The pre-draft-08 protocol next to draft-08 (`None`, the default:
    /// draft-08 only).
    pub compatibility: Option<Arc<Compatibility>>,
    /// Whether [`serve`](crate::serve) answers plain HTTP/1.1 publishes of
    /// the hub URL itself, without the router it was given (a request with
    /// an `Origin` header still goes to the router, for its CORS answer):
    /// the same checks, answers, ids and logs, at a fraction of the CPU.
    /// Off by default, because those publishes then skip every layer an
    /// application wrapped around the router (its own
    /// authentication, rate limits, logging); `herald serve`, whose router
    /// is the hub's alone, turns it on. Turn it on when the router adds no
    /// layer publishes must go through.
    pub hand_served_publish: bool,
    /// Whether [`serve`](crate::serve) and [`serve_tls`](crate::serve_tls)
    /// write the live events of HTTP/1.1 subscriptions (in clear text and
    /// over TLS) to their sockets themselves: the request and the response
    /// head still go through the router, but the body does not go through
    /// its layers (compression, byte counting, body tracing), and an idle
    /// subscriber costs a fraction of the memory hyper's buffers take.
    /// HTTP/2 streams are always hyper's. Off by default, for those layers;
    /// `herald serve` turns it on.
    pub hand_served_streams: bool,
    /// Reverse proxies whose `X-Forwarded-For` names the client, for the
    /// per-address connection limit (none by default: the peer is the
    /// client).
    pub trusted_proxies: crate::TrustedProxies,
}

/// The longest any duration of the edge may be: beyond it a deadline is as
/// good as none, and one near `Duration::MAX` would overflow a clock.
/// (100 of humantime's years of 365.25 days, so `100years` is allowed.)
pub const LONGEST_DURATION: Duration = Duration::from_secs(100 * 31_557_600);

/// The shortest heartbeat settings built in code get (see [`Settings::heartbeat`]).
pub const SHORTEST_HEARTBEAT: Duration = Duration::from_secs(1);

impl Settings {
    /// The same settings with every duration at most [`LONGEST_DURATION`]
    /// and a heartbeat of at least [`SHORTEST_HEARTBEAT`] (the configuration
    /// file refuses the others; settings built in code are clamped rather
    /// than left to overflow a deadline or send comments without pause).
    pub(crate) fn clamped(mut self) -> Self {
        if self.heartbeat < SHORTEST_HEARTBEAT {
            tracing::warn!(
                heartbeat = ?self.heartbeat,
                "a heartbeat this short would send keep-alive comments without pause: 1s is used"
            );
            self.heartbeat = SHORTEST_HEARTBEAT;
        }
        for duration in [
            &mut self.heartbeat,
            &mut self.shutdown_timeout,
            &mut self.write_timeout,
            &mut self.request_head_timeout,
            &mut self.request_body_timeout,
        ] {
            *duration = (*duration).min(LONGEST_DURATION);
        }
        self.max_connection_lifetime = self
            .max_connection_lifetime
            .map(|d| d.min(LONGEST_DURATION));
        self
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            cors_origins: Vec::new(),
            cookie_name: "__Secure-mercure_access_token".to_owned(),
            anonymous_subscribers: true,
            heartbeat: Duration::from_secs(15),
            max_connection_lifetime: Some(Duration::from_secs(24 * 3600)),
            max_body_bytes: 2 * 1024 * 1024,
            max_matchers: 100,
            connections: ConnectionLimits::default(),
            shutdown_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            request_head_timeout: Duration::from_secs(10),
            request_body_timeout: Duration::from_secs(10),
            subscriptions_page_size: 1000,
            compatibility: None,
            hand_served_publish: false,
            hand_served_streams: false,
            trusted_proxies: crate::TrustedProxies::default(),
        }
    }
}
