//! Prometheus metrics and health, served on the admin listener.
//!
//! Counts the hub already keeps (subscribers, dispatches, the log) are read
//! when scraped, so they cost nothing on the hot path; the edge's own events
//! (publishes, bytes written, refusals, latencies) are counters and histograms.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use herald_hub::Hub;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A label naming why something was refused.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    /// The reason.
    pub reason: String,
}

/// The edge's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    published: Counter,
    bytes_written: Counter,
    connections_refused: Family<Reason, Counter>,
    auth_failures: Family<Reason, Counter>,
    legacy_requests: Family<Reason, Counter>,
    write_timeouts: Counter,
    publish_seconds: Histogram,
    publish_to_write_seconds: Histogram,
}

impl Metrics {
    /// Metrics for the edge of `hub`.
    pub fn new(hub: Hub) -> Arc<Self> {
        let mut registry = Registry::with_prefix("herald");
        let published = Counter::default();
        registry.register(
            "updates_published",
            "Updates accepted by the publish endpoint",
            published.clone(),
        );
        let bytes_written = Counter::default();
        registry.register(
            "bytes_written",
            "Bytes of events and comments (opening, keep-alive, shutdown hint) handed to subscriber connections",
            bytes_written.clone(),
        );
        let connections_refused = Family::<Reason, Counter>::default();
        registry.register(
            "connections_refused",
            "Subscriber connections refused by a limit (reason: total, address, subject, address_patterns)",
            connections_refused.clone(),
        );
        let auth_failures = Family::<Reason, Counter>::default();
        registry.register(
            "auth_failures",
            "Requests refused for their access token, by reason",
            auth_failures.clone(),
        );
        let legacy_requests = Family::<Reason, Counter>::default();
        registry.register(
            "legacy_requests",
            "Accepted requests that used the pre-draft-08 protocol (reason: token, topic, last_event_id); zero for long means [compatibility] can go",
            legacy_requests.clone(),
        );
        let write_timeouts = Counter::default();
        registry.register(
            "write_timeouts",
            "Connections closed because a write made no progress for limits.write_timeout (a client that stopped reading, or vanished)",
            write_timeouts.clone(),
        );
        // 100 µs to ~6.5 s.
        let publish_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 17));
        registry.register(
            "publish_seconds",
            "Time to answer a publish request, durable commit included",
            publish_seconds.clone(),
        );
        let publish_to_write_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 17));
        registry.register(
            "publish_to_write_seconds",
            "Time from an update's acceptance to its hand-off to a subscriber connection",
            publish_to_write_seconds.clone(),
        );
        registry.register_collector(Box::new(HubCollector { hub }));
        Arc::new(Self {
            registry,
            published,
            bytes_written,
            connections_refused,
            auth_failures,
            legacy_requests,
            write_timeouts,
            publish_seconds,
            publish_to_write_seconds,
        })
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            let _ = writeln!(out, "# the metrics could not be encoded");
        }
        out
    }

    pub(crate) fn published(&self, seconds: f64) {
        self.published.inc();
        self.publish_seconds.observe(seconds);
    }

    /// Counts a write of `bytes` whose oldest entry was published at
    /// `published_at`, if it is live: a replay's age is history, not latency.
    pub(crate) fn written(&self, bytes: usize, published_at: Option<std::time::SystemTime>) {
        self.bytes_written.inc_by(bytes as u64);
        if let Some(since) =
            published_at.and_then(|at| std::time::SystemTime::now().duration_since(at).ok())
        {
            self.publish_to_write_seconds.observe(since.as_secs_f64());
        }
    }

    /// Counts a write of `bytes` that carries no update: the opening
    /// comment, a keep-alive, the reconnection hint of a shutdown.
    pub(crate) fn written_comment(&self, bytes: usize) {
        self.bytes_written.inc_by(bytes as u64);
    }

    /// Counts a request that used a pre-draft-08 feature (`what`).
    pub(crate) fn legacy_request(&self, what: &'static str) {
        self.legacy_requests
            .get_or_create(&Reason {
                reason: what.to_owned(),
            })
            .inc();
    }

    /// Counts a connection closed by `limits.write_timeout`.
    pub(crate) fn write_timed_out(&self) {
        self.write_timeouts.inc();
    }

    pub(crate) fn connection_refused(&self, reason: &str) {
        self.connections_refused
            .get_or_create(&Reason {
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub(crate) fn auth_failed(&self, reason: &str) {
        self.auth_failures
            .get_or_create(&Reason {
                reason: reason.to_owned(),
            })
            .inc();
    }
}

/// Reads the hub's own counters at scrape time.
#[derive(Debug)]
struct HubCollector {
    hub: Hub,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MatcherTypeLabel {
    matcher_type: &'static str,
}

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(value).encode(metric)
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(metric)
}

impl Collector for HubCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let stats = self.hub.stats();
        let load = |a: &std::sync::atomic::AtomicUsize| a.load(Ordering::Relaxed) as u64;
        gauge(
            &mut encoder,
            "subscribers",
            "Subscriber connections registered now",
            load(&stats.connected),
        )?;
        {
            let mut metric = encoder.encode_descriptor(
                "subscriptions",
                "Active subscriptions (one per matcher of a connection), by matcher type",
                None,
                MetricType::Gauge,
            )?;
            for (matcher_type, value) in [
                ("exact", load(&stats.exact_subscriptions)),
                ("urlpattern", load(&stats.urlpattern_subscriptions)),
                ("wildcard", load(&stats.wildcard_subscriptions)),
                ("topic", load(&stats.selector_subscriptions)),
            ] {
                let label = MatcherTypeLabel { matcher_type };
                let family = metric.encode_family(&label)?;
                ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(family)?;
            }
        }
        gauge(
            &mut encoder,
            "url_pattern_bytes",
            "Bytes the compiled expressions of URL patterns take, each counted once (limits.max_pattern_memory)",
            self.hub.pattern_bytes() as u64,
        )?;
        counter(
            &mut encoder,
            "updates_dispatched",
            "Updates queued to subscribers (one per update and subscriber)",
            stats.delivered.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "replayed_events",
            "Updates replayed from the log to resuming subscribers",
            stats.replayed.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "slow_subscriber_disconnects",
            "Subscribers disconnected because they fell too far behind (subscribers.queue_capacity or queue_bytes)",
            stats.slow_disconnects.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "paced_publishes",
            "Publishes answered only once the fan-out made room (subscribers.publish_pace)",
            stats.paced_publishes.load(Ordering::Relaxed),
        )?;
        if let Some(presence) = self.hub.presence() {
            let events = presence.event_stats();
            gauge(
                &mut encoder,
                "subscription_events_pending",
                "Subscription events queued or being appended to the log (at most subscriptions.max_pending_events, plus owed active: false events)",
                events.pending,
            )?;
            gauge(
                &mut encoder,
                "subscription_events_pending_bytes",
                "Bytes of the subscription events queued for the log (at most subscriptions.max_pending_bytes, plus owed active: false events)",
                events.pending_bytes,
            )?;
            counter(
                &mut encoder,
                "subscription_events_coalesced",
                "Subscriptions that ended before their active event was appended, so that neither event was",
                events.coalesced,
            )?;
            counter(
                &mut encoder,
                "subscriptions_refused",
                "Subscriber connections refused with 503 because the subscription event queue was full",
                events.refused,
            )?;
        }
        let log = self.hub.log_stats();
        gauge(
            &mut encoder,
            "log_entries",
            "Updates retained in the log",
            log.entries,
        )?;
        gauge(
            &mut encoder,
            "log_bytes",
            "Bytes of updates retained in the log",
            log.bytes,
        )?;
        counter(
            &mut encoder,
            "log_discarded",
            "Updates discarded by retention since start",
            log.discarded,
        )?;
        gauge(
            &mut encoder,
            "log_reads_running",
            "Replay reads of the durable log's store running now (at most log.max_replay_readers)",
            log.reads_running,
        )?;
        gauge(
            &mut encoder,
            "log_reads_waiting",
            "Replay reads of the durable log's store waiting for their turn",
            log.reads_waiting,
        )?;
        Ok(())
    }
}
