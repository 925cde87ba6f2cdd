//! What a run found: one [`Report`], printed as a table (stdout, for people)
//! or as one JSON document (`--json`, for machines).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::stats::Summary;
use super::tally::{Counts, Violation};

/// The most violations listed in detail (all are counted).
pub const MAX_LISTED: usize = 50;

/// The result of one `herald bench` run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    /// `fanout`, `throughput`, `idle` or `storm`.
    pub scenario: &'static str,
    /// The hub URL.
    pub hub: String,
    /// The scenario's parameters as given (or defaulted).
    pub parameters: BTreeMap<&'static str, serde_json::Value>,
    /// Whether the run found nothing wrong (no violation, failure or error).
    pub ok: bool,
    /// What was wrong, one sentence each; empty when `ok`.
    pub problems: Vec<String>,
    /// CPU cores of this machine (tool CPU / wall near `cores × 100%` means
    /// the load generator was the limit).
    pub cores: usize,
    /// Wall and tool CPU time of each phase.
    pub phases: Vec<Phase>,
    /// The measured subscribers.
    pub subscribers: Option<Subscribers>,
    /// The publishers.
    pub publish: Option<Publish>,
    /// What the subscribers received.
    pub delivery: Option<Delivery>,
    /// Delivery violations.
    pub violations: Option<Violations>,
    /// The server process, with `--server-pid`.
    pub server: Option<Server>,
    /// Memory per idle subscriber (`idle`).
    pub idle: Option<Idle>,
    /// Connect/disconnect churn (`storm`).
    pub storm: Option<Storm>,
}

/// One phase of the run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Phase {
    /// `connect`, `deliver`, …
    pub name: &'static str,
    /// Wall time, seconds.
    pub wall_s: f64,
    /// This process's CPU time (user + system), seconds.
    pub tool_cpu_s: f64,
    /// Tool CPU ÷ wall, in percent of one core.
    pub tool_cpu_percent: f64,
}

/// The measured subscribers.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Subscribers {
    /// How many were asked for.
    pub requested: usize,
    /// How many got a 200 event stream.
    pub connected: usize,
    /// How many could not connect.
    pub failed: usize,
    /// How many lost their stream before the end of the run.
    pub dropped: usize,
    /// The first few errors, as text.
    pub errors: Vec<String>,
    /// Connect → response head, per connected subscriber.
    pub connect_latency: Summary,
}

/// The publishers.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Publish {
    /// Publishers.
    pub publishers: usize,
    /// Acknowledged publishes.
    pub acknowledged: u64,
    /// Failed publishes.
    pub errors: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// Acknowledged publishes per second of the publish phase.
    pub per_second: f64,
    /// Request → 200 answer.
    pub request_latency: Summary,
    /// Whether the publishers ran on a thread and a runtime of their own
    /// (with more than 1,000 subscribers) rather than on the subscribers'.
    pub apart: bool,
}

/// What the subscribers received.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Delivery {
    /// First receipts expected (acknowledged events × their subscribers).
    pub expected: u64,
    /// First receipts counted.
    pub delivered: u64,
    /// First receipts per second, from the first publish to the last receipt.
    pub per_second: f64,
    /// That window, seconds.
    pub window_s: f64,
    /// Publish (the payload's timestamp) → receipt.
    pub latency: Summary,
    /// Reads of the subscribers' stream bodies that brought bytes, the
    /// load generator's main cost.
    pub reads: u64,
    /// First receipts per read: how many events the hub's writes brought
    /// together, on average (1 when every event came in a read of its own).
    pub per_read: f64,
}

/// Delivery violations.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Violations {
    /// Counts by kind.
    pub counts: Counts,
    /// All kinds together.
    pub total: u64,
    /// Subscribers with at least one violation.
    pub subscribers: usize,
    /// Up to [`MAX_LISTED`] violations in detail.
    pub details: Vec<Violation>,
}

/// The server process.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Server {
    /// Its pid.
    pub pid: u32,
    /// VmRSS at the start, KiB.
    pub rss_kib_before: Option<u64>,
    /// VmRSS with every subscriber still connected (after the publishing;
    /// for `idle`, after the settle time), KiB.
    pub rss_kib_after: Option<u64>,
    /// Its CPU time during the run (user + system), seconds.
    pub cpu_s: Option<f64>,
    /// `cpu_s` as a percentage of the run's wall time: near 100 × its
    /// cores, the server (not this tool) was the limit.
    pub cpu_percent: Option<f64>,
}

/// Memory per idle subscriber.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Idle {
    /// (server RSS after − before) ÷ connected subscribers, KiB.
    pub server_kib_per_subscriber: Option<f64>,
    /// The same for this tool's own RSS, for comparison.
    pub tool_kib_per_subscriber: Option<f64>,
}

/// Connect/disconnect churn.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Storm {
    /// Connections attempted.
    pub connects: u64,
    /// Of which answered 200 with an event stream.
    pub succeeded: u64,
    /// Attempts per second.
    pub per_second: f64,
    /// Connect → response head, successful attempts.
    pub latency: Summary,
    /// Failed attempts, by kind (`status 429`, `connect: ConnectionRefused`, `timeout`).
    pub errors: BTreeMap<String, u64>,
}

fn latency(summary: &Summary) -> String {
    if summary.count == 0 {
        return "no samples".into();
    }
    format!(
        "p50 {:.3} ms   p90 {:.3} ms   p99 {:.3} ms   max {:.3} ms",
        summary.p50_ms, summary.p90_ms, summary.p99_ms, summary.max_ms
    )
}

/// `1234567` → `1,234,567`.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Report {
    /// The summary table.
    pub fn table(&self, title: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "herald bench {}: {title}", self.scenario);
        let _ = writeln!(out, "hub: {}\n", self.hub);
        let _ = writeln!(
            out,
            "{:<10} {:>10} {:>10} {:>16}",
            "phase", "wall", "tool CPU", "tool CPU / wall"
        );
        for phase in &self.phases {
            let _ = writeln!(
                out,
                "{:<10} {:>8.3} s {:>8.3} s {:>15.0}%",
                phase.name, phase.wall_s, phase.tool_cpu_s, phase.tool_cpu_percent
            );
        }
        let _ = writeln!(
            out,
            "({} cores for this tool: {}% means the load generator used all of them)\n",
            self.cores,
            self.cores * 100
        );
        let mut rows: Vec<(String, String)> = Vec::new();
        if let Some(s) = &self.subscribers {
            rows.push((
                "subscribers".into(),
                format!(
                    "{} of {} connected, {} failed, {} dropped",
                    thousands(s.connected as u64),
                    thousands(s.requested as u64),
                    s.failed,
                    s.dropped
                ),
            ));
            // Right under the counts they explain: a subscriber that could
            // not connect, or whose stream ended during the run.
            for error in &s.errors {
                rows.push((String::new(), format!("error: {error}")));
            }
            rows.push(("connect → head".into(), latency(&s.connect_latency)));
        }
        if let Some(p) = &self.publish {
            rows.push((
                "publishes".into(),
                format!(
                    "{} acknowledged, {} failed, {:.0}/s ({} publisher{})",
                    thousands(p.acknowledged),
                    p.errors,
                    p.per_second,
                    p.publishers,
                    if p.publishers == 1 { "" } else { "s" }
                ),
            ));
            if let Some(error) = &p.first_error {
                rows.push((String::new(), format!("first error: {error}")));
            }
            rows.push(("publish request".into(), latency(&p.request_latency)));
        }
        if let Some(d) = &self.delivery {
            rows.push((
                "deliveries".into(),
                format!(
                    "{} of {} expected, {}/s over {:.3} s, {:.1} per read",
                    thousands(d.delivered),
                    thousands(d.expected),
                    thousands(d.per_second.round() as u64),
                    d.window_s,
                    d.per_read
                ),
            ));
            if d.delivered > d.expected {
                rows.push((
                    String::new(),
                    "more than expected: events whose publish failed arrived too (not counted as expected)"
                        .into(),
                ));
            }
            rows.push(("publish → receive".into(), latency(&d.latency)));
        }
        if let Some(v) = &self.violations {
            let none_connected = self.subscribers.as_ref().is_some_and(|s| s.connected == 0);
            let value = if none_connected {
                "not checked: no subscriber connected".to_owned()
            } else if v.total == 0 {
                "none (0 lost, 0 duplicated, 0 reordered, 0 unexpected)".to_owned()
            } else {
                format!(
                    "{} in {} subscriber{}: {} lost, {} duplicated, {} reordered, {} unexpected",
                    v.total,
                    v.subscribers,
                    if v.subscribers == 1 { "" } else { "s" },
                    v.counts.lost,
                    v.counts.duplicated,
                    v.counts.reordered,
                    v.counts.unexpected
                )
            };
            rows.push(("violations".into(), value));
            for detail in v.details.iter().take(20) {
                let seqs = if detail.count > 1 {
                    format!("seq {}..={}", detail.seq, detail.seq + detail.count - 1)
                } else {
                    format!("seq {}", detail.seq)
                };
                rows.push((
                    String::new(),
                    format!(
                        "subscriber {}: {} {seqs} (stream {})",
                        detail.subscriber,
                        detail.kind.as_str(),
                        detail.stream
                    ),
                ));
            }
            if v.details.len() > 20 {
                rows.push((
                    String::new(),
                    format!("… {} more in --json", v.details.len() - 20),
                ));
            }
        }
        if let Some(s) = &self.storm {
            rows.push((
                "storm connects".into(),
                format!(
                    "{} attempted, {} succeeded, {:.0}/s",
                    thousands(s.connects),
                    thousands(s.succeeded),
                    s.per_second
                ),
            ));
            rows.push(("storm connect → head".into(), latency(&s.latency)));
            for (kind, count) in &s.errors {
                rows.push((String::new(), format!("error {kind}: {count}")));
            }
        }
        if let Some(s) = &self.server {
            let kib =
                |v: Option<u64>| v.map_or("?".to_owned(), |v| format!("{} KiB", thousands(v)));
            rows.push((
                format!("server (pid {})", s.pid),
                format!(
                    "CPU {}{}, RSS {} → {}",
                    s.cpu_s.map_or("?".to_owned(), |c| format!("{c:.3} s")),
                    s.cpu_percent
                        .map_or(String::new(), |p| format!(" ({p:.0}% of the run)")),
                    kib(s.rss_kib_before),
                    kib(s.rss_kib_after)
                ),
            ));
        }
        if let Some(i) = &self.idle {
            let per = |v: Option<f64>| v.map_or("?".to_owned(), |v| format!("{v:.1} KiB"));
            rows.push((
                "per idle subscriber".into(),
                format!(
                    "server {}, tool {}",
                    per(i.server_kib_per_subscriber),
                    per(i.tool_kib_per_subscriber)
                ),
            ));
        }
        let width = rows
            .iter()
            .map(|(l, _)| l.chars().count())
            .max()
            .unwrap_or(0);
        for (label, value) in rows {
            let pad = width - label.chars().count();
            let _ = writeln!(out, "{label}{}  {value}", " ".repeat(pad));
        }
        let _ = writeln!(out);
        if self.ok {
            let _ = writeln!(out, "result: ok");
        } else {
            let _ = writeln!(out, "result: FAILED");
            for problem in &self.problems {
                let _ = writeln!(out, "  - {problem}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
