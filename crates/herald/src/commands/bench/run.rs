//! The steps every scenario is made of: connect the measured subscribers,
//! publish, drain (wait until everything acknowledged has arrived, or a
//! timeout), then account. Scenarios put their own measurements between them.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::publish::{self, Job, Sink};
use super::report::{self, Delivery, Phase, Publish, Report, Subscribers, Violations};
use super::stats::{Summary, cpu_time, histogram, percent};
use super::subscriber::{self, Ended, Shared, Stage, Target};
use super::tally::{Counts, Published, Tally};

/// How long the run keeps listening after the last expected event arrived,
/// so that late duplicates are seen too.
const GRACE: Duration = Duration::from_millis(200);

/// The most subscriber errors listed in the report.
const MAX_ERRORS: usize = 5;

/// Above this many subscribers, the publishers run on a thread of their own
/// ([`publish::run_apart`]); up to it, on the subscribers' runtime
/// ([`publish::run_here`]). Measured both ways on one guest (change 14 in
/// docs/benchmarks.md): a fan-out to 10,000 lost whole milliseconds per
/// publish with the publishers on the readers' runtime, while a throughput
/// run with 100 subscribers made 28% fewer publishes with them apart, each
/// answer then waking another thread on the generator's one core.
const PUBLISHERS_APART_ABOVE: usize = 1_000;

/// The settings every step needs.
#[derive(Debug)]
pub struct Ctx {
    /// Where subscribers connect.
    pub target: Arc<Target>,
    /// Where publishers publish (one pooled client).
    pub publisher: Arc<Sink>,
    /// Connect → head timeout.
    pub timeout: Duration,
    /// How long to wait for outstanding deliveries after the last publish.
    pub drain_timeout: Duration,
    /// Concurrent connection attempts while connecting.
    pub connect_concurrency: usize,
    /// The hub's process, with `--server-pid`.
    pub server_pid: Option<u32>,
    /// The progress bar (stderr).
    pub progress: ProgressBar,
}

/// Wall and CPU time of a phase, started with [`Clock::start`].
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall: Instant,
    cpu: Duration,
}

impl Clock {
    /// Starts timing now.
    pub fn start() -> Self {
        Self {
            wall: Instant::now(),
            cpu: cpu_time("self").unwrap_or_default(),
        }
    }

    /// The phase as reported.
    pub fn phase(&self, name: &'static str) -> Phase {
        let wall = self.wall.elapsed();
        let cpu = cpu_time("self")
            .unwrap_or_default()
            .saturating_sub(self.cpu);
        // /proc counts CPU time in ticks of 10 ms: over a short phase the
        // share could read above what the cores can give.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Phase {
            name,
            wall_s: wall.as_secs_f64(),
            tool_cpu_s: cpu.as_secs_f64(),
            tool_cpu_percent: percent(cpu, wall).min(100.0 * cores as f64),
        }
    }

    /// When the phase started.
    pub fn started(&self) -> Instant {
        self.wall
    }
}

impl Ctx {
    /// Shows `message` with a bar of `len` whose position `position` reads;
    /// the returned guard stops updating it.
    pub fn track(
        &self,
        message: &'static str,
        len: u64,
        position: impl Fn() -> u64 + Send + 'static,
    ) -> Tracker {
        let bar = self.progress.clone();
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>10} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(message);
        bar.set_length(len);
        bar.set_position(0);
        bar.reset_elapsed();
        let task = tokio::spawn(async move {
            loop {
                bar.set_position(position());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Tracker(task)
    }
}

/// Stops a progress updater when dropped.
pub struct Tracker(JoinHandle<()>);

impl Drop for Tracker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The measured subscribers, connected and following their streams.
pub struct Live {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<Ended>>,
    /// Topic index of each subscriber.
    topics: Vec<usize>,
    /// Topic index of each stream.
    stream_topics: Vec<usize>,
    stage: watch::Sender<Stage>,
    requested: usize,
}

/// What the publishers did, all together.
pub struct PublishResult {
    /// Per stream.
    pub published: Vec<Published>,
    /// The publish phase's clock.
    pub clock: Clock,
    /// The report section.
    pub report: Publish,
}

impl Live {
    /// Connects one subscriber per entry of `topics` (topic names by index
    /// in `names`) and waits until each is connected or failed.
    /// `stream_topics` is the topic of each stream.
    pub async fn connect(
        ctx: &Ctx,
        names: &[String],
        topics: Vec<usize>,
        stream_topics: Vec<usize>,
    ) -> (Live, Phase) {
        let clock = Clock::start();
        let shared = Arc::new(Shared::new(
            names.len(),
            stream_topics.len(),
            ctx.connect_concurrency,
        ));
        let (stage, stage_rx) = watch::channel(Stage::Running);
        let requested = topics.len();
        let tasks = topics
            .iter()
            .enumerate()
            .map(|(index, &topic)| {
                let tally = Tally::new(index, stream_topics.iter().map(|&t| t == topic));
                let request = ctx.target.request(index, &names[topic]);
                tokio::spawn(subscriber::run(
                    topic,
                    ctx.target.clone(),
                    request,
                    tally,
                    shared.clone(),
                    ctx.timeout,
                    stage_rx.clone(),
                ))
            })
            .collect();
        let settled = {
            let shared = shared.clone();
            move || {
                (shared.connected.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed))
                    as u64
            }
        };
        let _tracker = ctx.track("connect", requested as u64, settled.clone());
        while settled() < requested as u64 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let live = Live {
            shared,
            tasks,
            topics,
            stream_topics,
            stage,
            requested,
        };
        (live, clock.phase("connect"))
    }

    /// Subscribers connected so far.
    pub fn connected(&self) -> usize {
        self.shared.connected.load(Ordering::Relaxed)
    }

    /// Ends a run in which no subscriber connected, without publishing:
    /// there is nobody to deliver to, and a hub that accepts connections
    /// but never answers would hold every publish for the whole timeout.
    pub async fn abandon(self, ctx: &Ctx) -> Drained {
        let nothing = vec![Published::default(); self.stream_topics.len()];
        self.drain(ctx, &nothing, &Clock::start(), "deliver")
            .await
            .0
    }

    /// Runs the publishers' `jobs` to their end.
    pub async fn publish(&self, ctx: &Ctx, jobs: Vec<Job>) -> PublishResult {
        let clock = Clock::start();
        let streams = self.stream_topics.len();
        let publishers = jobs.len();
        let total = jobs
            .iter()
            .map(|job| match job.limit {
                publish::Limit::Events(events) => events,
                publish::Limit::Duration(_) => 0,
            })
            .sum::<u64>();
        let issued = self.shared.issued.clone();
        let _tracker = {
            let issued = issued.clone();
            ctx.track("publish", total, move || {
                issued.sent.load(Ordering::Relaxed)
            })
        };
        let apart = self.tasks.len() > PUBLISHERS_APART_ABOVE;
        let outcomes = if apart {
            publish::run_apart(ctx.publisher.clone(), jobs, issued).await
        } else {
            publish::run_here(ctx.publisher.clone(), jobs, issued).await
        };
        let mut published = vec![Published::default(); streams];
        let mut report = Publish {
            publishers,
            apart,
            ..Publish::default()
        };
        let mut latency = histogram();
        for outcome in outcomes {
            let done = match outcome {
                Ok(done) => done,
                Err(error) => {
                    report.errors += 1;
                    report.first_error.get_or_insert(error);
                    continue;
                }
            };
            for (stream, state) in done.streams {
                published[stream as usize] = state;
            }
            report.acknowledged += done.acknowledged;
            report.errors += done.errors;
            if report.first_error.is_none() {
                report.first_error = done.first_error;
            }
            let _ = latency.add(&done.latency);
        }
        let wall = clock.started().elapsed().as_secs_f64();
        report.per_second = if wall > 0.0 {
            report.acknowledged as f64 / wall
        } else {
            0.0
        };
        report.request_latency = Summary::of(&latency);
        PublishResult {
            published,
            clock,
            report,
        }
    }

    /// Waits until every acknowledged event reached every connected subscriber
    /// (or the drain timeout), stops the subscribers and accounts for them.
    /// `clock` started with publishing: the delivery rate counts from then, and
    /// the returned phase ends when the last expected event arrived (or the
    /// drain timeout), before the grace period and the accounting.
    pub async fn drain(
        self,
        ctx: &Ctx,
        published: &[Published],
        clock: &Clock,
        phase: &'static str,
    ) -> (Drained, Phase) {
        let since = clock.started();
        let per_topic = {
            let mut per_topic = Vec::new();
            for (stream, &topic) in self.stream_topics.iter().enumerate() {
                if per_topic.len() <= topic {
                    per_topic.resize(topic + 1, 0u64);
                }
                let sent = &published[stream];
                per_topic[topic] += sent.next - sent.uncertain.len() as u64;
            }
            per_topic
        };
        // Only connected subscribers count; failed ones are reported apart.
        let expected_for = |topic: usize| per_topic.get(topic).copied().unwrap_or(0);
        let expected_connected: u64 = self
            .shared
            .connected_per_topic
            .iter()
            .enumerate()
            .map(|(topic, count)| count.load(Ordering::Relaxed) as u64 * expected_for(topic))
            .sum();
        {
            let shared = self.shared.clone();
            let _tracker = ctx.track("deliver", expected_connected, move || {
                shared.delivered.load(Ordering::Relaxed)
            });
            // Each subscriber says when it has all it is owed, or is gone: a
            // count of deliveries all together could be reached with one
            // subscriber still behind (events whose publish failed but that
            // the hub delivered count there too).
            let _ = self.stage.send(Stage::Draining(Arc::from(published)));
            let deadline = Instant::now() + ctx.drain_timeout;
            while self.shared.settled.load(Ordering::Relaxed) < self.connected()
                && Instant::now() < deadline
                && !self.tasks.iter().all(JoinHandle::is_finished)
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let phase = clock.phase(phase);
        tokio::time::sleep(GRACE).await;
        let _ = self.stage.send(Stage::Stopped);
        let mut counts = Counts::default();
        let mut details = Vec::new();
        let mut affected = 0;
        let mut subscribers = Subscribers {
            requested: self.requested,
            connected: self.connected(),
            failed: self.shared.failed.load(Ordering::Relaxed),
            ..Subscribers::default()
        };
        let mut expected = 0;
        let mut last_delivery: Option<Instant> = None;
        let mut reads = 0;
        for (index, task) in self.tasks.into_iter().enumerate() {
            let ended = match task.await {
                Ok(ended) => ended,
                Err(error) => Ended {
                    tally: None,
                    error: Some(format!("the subscriber task failed: {error}")),
                    reads: 0,
                    last_delivery: None,
                },
            };
            if let Some(error) = &ended.error {
                if ended.tally.is_some() {
                    subscribers.dropped += 1;
                }
                if subscribers.errors.len() < MAX_ERRORS {
                    subscribers
                        .errors
                        .push(format!("subscriber {index}: {error}"));
                }
            }
            reads += ended.reads;
            if let Some(at) = ended.last_delivery {
                last_delivery = Some(last_delivery.map_or(at, |last| last.max(at)));
            }
            if let Some(tally) = ended.tally {
                expected += expected_for(self.topics[index]);
                let (sub_counts, sub_details) = tally.finish(published);
                if sub_counts.total() > 0 {
                    affected += 1;
                }
                counts.add(&sub_counts);
                let room = report::MAX_LISTED.saturating_sub(details.len());
                details.extend(sub_details.into_iter().take(room));
            }
        }
        let delivered = self.shared.delivered.load(Ordering::Relaxed);
        let window = last_delivery
            .map(|last| last.saturating_duration_since(since))
            .unwrap_or_default()
            .as_secs_f64();
        subscribers.connect_latency = Summary::of(&self.shared.connect_latency.merged());
        let drained = Drained {
            subscribers,
            delivery: Delivery {
                expected,
                delivered,
                per_second: if window > 0.0 {
                    delivered as f64 / window
                } else {
                    0.0
                },
                window_s: window,
                latency: Summary::of(&self.shared.latency.merged()),
                reads,
                per_read: if reads > 0 {
                    delivered as f64 / reads as f64
                } else {
                    0.0
                },
            },
            violations: Violations {
                counts,
                total: counts.total(),
                subscribers: affected,
                details,
            },
        };
        (drained, phase)
    }
}

/// The subscribers' side of a run.
pub struct Drained {
    /// Connections.
    pub subscribers: Subscribers,
    /// Deliveries.
    pub delivery: Delivery,
    /// Violations.
    pub violations: Violations,
}

impl Drained {
    /// Puts the results into `report` and lists what went wrong.
    pub fn into_report(self, report: &mut Report) {
        let s = &self.subscribers;
        if s.failed > 0 {
            report
                .problems
                .push(format!("{} subscribers could not connect", s.failed));
        }
        if s.dropped > 0 {
            report.problems.push(format!(
                "{} subscribers lost their stream during the run",
                s.dropped
            ));
        }
        if self.violations.total > 0 {
            report.problems.push(format!(
                "{} delivery violations ({} lost, {} duplicated, {} reordered, {} unexpected)",
                self.violations.total,
                self.violations.counts.lost,
                self.violations.counts.duplicated,
                self.violations.counts.reordered,
                self.violations.counts.unexpected
            ));
        }
        report.subscribers = Some(self.subscribers);
        report.delivery = Some(self.delivery);
        report.violations = Some(self.violations);
    }
}
