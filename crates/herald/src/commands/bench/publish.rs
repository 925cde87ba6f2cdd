//! The load generator's publishers: each one publishes its streams' events in
//! turn, one request at a time (so the order of a stream is the order the hub
//! acknowledged), over one pooled HTTP client shared by all of them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use herald_client::{Publisher, Update};
use tokio::time::{Instant, MissedTickBehavior};
use url::Url;

use super::stats::{histogram, micros};
use super::subscriber::unix_nanos;
use super::tally::Published;
use super::wire::{Mark, payload};

/// How events are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PublishFormat {
    /// A Mercure publish: `POST <hub>` with the form fields `topic` and `data`.
    Mercure,
    /// The event data alone as the body of `POST <hub>?<match-param>=<topic>`
    /// (`text/plain`), as an nchan publisher location takes it; any 2xx
    /// answer is an acknowledgement.
    Raw,
}

/// Where publishers send events: a Mercure hub, or a raw-body endpoint.
#[derive(Debug)]
pub enum Sink {
    /// Form posts through [`Publisher`].
    Mercure(Publisher),
    /// Raw-body posts (see [`PublishFormat::Raw`]).
    Raw {
        /// The pooled client.
        client: reqwest::Client,
        /// The hub URL; the topic is appended to its query.
        hub: Url,
        /// The query parameter naming the topic.
        param: String,
        /// Sent as `Authorization: Bearer`, if any.
        token: Option<String>,
        /// Per-request timeout.
        timeout: Duration,
    },
}

impl Sink {
    /// Publishes `data` on `topic`; the error is one line of text.
    pub async fn publish(&self, topic: &str, data: String) -> Result<(), String> {
        match self {
            Sink::Mercure(publisher) => publisher
                .publish(&Update::new(topic.to_owned(), data))
                .await
                .map(drop)
                .map_err(|e| crate::commands::subscribe::describe(&e)),
            Sink::Raw {
                client,
                hub,
                param,
                token,
                timeout,
            } => {
                let mut request = client
                    .post(raw_url(hub, param, topic))
                    .timeout(*timeout)
                    .header(http::header::CONTENT_TYPE, "text/plain")
                    .body(data);
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                let response = request
                    .send()
                    .await
                    .map_err(|e| crate::commands::subscribe::describe(&e))?;
                let status = response.status();
                // Read the whole answer so the connection goes back to the pool.
                let _ = response.bytes().await;
                if status.is_success() {
                    Ok(())
                } else {
                    Err(format!("status {status}"))
                }
            }
        }
    }
}

/// `hub` with `param=topic` added to its query.
pub fn raw_url(hub: &Url, param: &str, topic: &str) -> Url {
    let mut url = hub.clone();
    url.query_pairs_mut().append_pair(param, topic);
    url
}

/// When publishers stop.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// After this many events per publisher.
    Events(u64),
    /// After this long.
    Duration(Duration),
}

/// One publisher's job.
#[derive(Debug, Clone)]
pub struct Job {
    /// The streams it publishes, in turn, with the topic of each.
    pub streams: Vec<(u32, String)>,
    /// The data size of each event.
    pub size: usize,
    /// Events per second for this publisher, or as fast as possible.
    pub rate: Option<f64>,
    /// When to stop.
    pub limit: Limit,
}

/// What one publisher did.
#[derive(Debug)]
pub struct Done {
    /// Per stream it published: what was sent.
    pub streams: Vec<(u32, Published)>,
    /// Acknowledged publishes.
    pub acknowledged: u64,
    /// Failed publishes.
    pub errors: u64,
    /// The first failure, as text.
    pub first_error: Option<String>,
    /// Request latency of acknowledged publishes, µs.
    pub latency: Histogram<u64>,
}

/// Consecutive failures after which a publisher gives up (the hub is gone).
const MAX_CONSECUTIVE_ERRORS: u64 = 20;

/// Runs one publisher; `sent` counts publishes attempted, for the progress bar.
pub async fn run(sink: Arc<Sink>, job: Job, sent: Arc<AtomicU64>) -> Done {
    let mut streams: Vec<(u32, Published)> = job
        .streams
        .iter()
        .map(|(stream, _)| (*stream, Published::default()))
        .collect();
    let mut done = Done {
        streams: Vec::new(),
        acknowledged: 0,
        errors: 0,
        first_error: None,
        latency: histogram(),
    };
    let started = Instant::now();
    let mut ticks = job.rate.filter(|r| *r > 0.0).map(|rate| {
        let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
        interval
    });
    let mut consecutive_errors = 0;
    let mut count: u64 = 0;
    loop {
        match job.limit {
            Limit::Events(events) if count >= events => break,
            Limit::Duration(duration) if started.elapsed() >= duration => break,
            _ => {}
        }
        if streams.is_empty() || consecutive_errors >= MAX_CONSECUTIVE_ERRORS {
            break;
        }
        if let Some(ticks) = &mut ticks {
            ticks.tick().await;
        }
        let turn = (count % streams.len() as u64) as usize;
        let (stream, state) = &mut streams[turn];
        let topic = &job.streams[turn].1;
        let seq = state.next;
        state.next += 1;
        count += 1;
        let mark = Mark {
            seq,
            sent_at: unix_nanos(),
            stream: *stream,
        };
        let data = payload(mark, job.size);
        let request_started = Instant::now();
        let result = sink.publish(topic, data).await;
        sent.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(_) => {
                consecutive_errors = 0;
                done.acknowledged += 1;
                done.latency
                    .saturating_record(micros(request_started.elapsed()));
            }
            Err(error) => {
                consecutive_errors += 1;
                done.errors += 1;
                state.uncertain.push(seq);
                if done.first_error.is_none() {
                    done.first_error = Some(error);
                }
            }
        }
    }
    done.streams = streams;
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_urls_carry_the_topic_in_the_query() {
        let hub = Url::parse("http://127.0.0.1:8080/.well-known/mercure").unwrap();
        assert_eq!(
            raw_url(&hub, "topic", "https://herald.bench/topics/x/0").as_str(),
            "http://127.0.0.1:8080/.well-known/mercure?topic=https%3A%2F%2Fherald.bench%2Ftopics%2Fx%2F0"
        );
        let hub = Url::parse("http://h/pub?a=1").unwrap();
        assert_eq!(raw_url(&hub, "id", "t").as_str(), "http://h/pub?a=1&id=t");
    }
}
