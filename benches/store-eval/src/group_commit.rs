//! Group commit as herald's durable `Log::append` would do it: publishers send entries
//! through an mpsc channel to one committer, which drains what is queued (up to
//! `MAX_BATCH`), assigns positions, writes the batch in one commit and then answers
//! every publisher's oneshot with its position.
//!
//! The committer runs on its own blocking thread (`spawn_blocking`): a commit with
//! fsync blocks for milliseconds and must not stall a runtime worker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::{mpsc, oneshot};

use crate::store::Store;
use crate::workload::{encode_value, new_id, Record};

pub const MAX_BATCH: usize = 1024;

pub struct Request {
    pub id: String,
    pub value: Vec<u8>,
    pub done: oneshot::Sender<u64>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct CommitStats {
    pub commits: u64,
    pub records: u64,
}

/// Runs the committer until every sender is dropped. `on_commit(last_position)` runs after
/// each commit is durable and before the publishers are answered.
pub fn spawn_committer(
    store: Arc<Box<dyn Store>>,
    mut rx: mpsc::Receiver<Request>,
    durable: bool,
    mut on_commit: impl FnMut(u64) + Send + 'static,
) -> tokio::task::JoinHandle<Result<CommitStats>> {
    tokio::task::spawn_blocking(move || {
        let mut next = store.last_position()? + 1;
        let mut stats = CommitStats::default();
        let mut pending: Vec<Request> = Vec::with_capacity(MAX_BATCH);
        let mut batch: Vec<Record> = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = rx.blocking_recv() {
            pending.push(first);
            while pending.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(r) => pending.push(r),
                    Err(_) => break,
                }
            }
            for r in &mut pending {
                batch.push(Record {
                    position: next,
                    id: std::mem::take(&mut r.id),
                    value: std::mem::take(&mut r.value),
                });
                next += 1;
            }
            store.append(&batch, durable)?;
            stats.commits += 1;
            stats.records += batch.len() as u64;
            on_commit(next - 1);
            for (r, rec) in pending.drain(..).zip(batch.drain(..)) {
                let _ = r.done.send(rec.position);
            }
        }
        Ok(stats)
    })
}

#[derive(Debug, Clone)]
pub struct AppendResult {
    pub records: u64,
    pub elapsed: Duration,
    pub latencies_us: Vec<u32>,
    pub stats: CommitStats,
}

impl AppendResult {
    pub fn per_sec(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }
    pub fn percentile_ms(&self, p: f64) -> f64 {
        let mut v = self.latencies_us.clone();
        v.sort_unstable();
        if v.is_empty() {
            return f64::NAN;
        }
        let i = ((v.len() - 1) as f64 * p).round() as usize;
        f64::from(v[i]) / 1000.0
    }
    pub fn mean_batch(&self) -> f64 {
        self.stats.records as f64 / self.stats.commits.max(1) as f64
    }
}

/// `clients` publishers append until `max_records` were issued or `duration` elapsed.
pub async fn run_publishers(
    store: Arc<Box<dyn Store>>,
    clients: usize,
    durable: bool,
    max_records: u64,
    duration: Duration,
    on_commit: impl FnMut(u64) + Send + 'static,
) -> Result<AppendResult> {
    let (tx, rx) = mpsc::channel::<Request>(4096);
    let committer = spawn_committer(store, rx, durable, on_commit);
    let issued = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let tx = tx.clone();
        let issued = Arc::clone(&issued);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut seed = (c as u64) << 40;
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < max_records
            {
                // The hub's work before `log.append`: id assigned, frame encoded once.
                let id = new_id();
                let value = encode_value(&id, seed);
                seed += 1;
                let t0 = Instant::now();
                let (done, answer) = oneshot::channel();
                if tx.send(Request { id, value, done }).await.is_err() {
                    break;
                }
                if answer.await.is_err() {
                    break;
                }
                lat.push(t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            }
            lat
        }));
    }
    drop(tx);
    let mut latencies_us = Vec::new();
    for t in tasks {
        latencies_us.extend(t.await?);
    }
    let elapsed = start.elapsed();
    let stats = committer.await??;
    Ok(AppendResult {
        records: latencies_us.len() as u64,
        elapsed,
        latencies_us,
        stats,
    })
}
