//! store-eval: redb vs fjall on herald's `Log` workload.
//!
//! ```text
//! cargo run --release -- append   [--clients 1,8,64] [--secs 10] [--max 20000] [--rounds 3] [--engines redb,fjall]
//! cargo run --release -- relaxed  [--clients 8] ...                      (same, no fsync per batch)
//! cargo run --release -- read     [--n 1000000] [--rounds 3]             (lookup, replay, open 1M, footprint, retention)
//! cargo run --release -- open     [--n 10000000] [--rounds 3]            (build big store relaxed, open time)
//! cargo run --release -- crash    [--kills 5] [--base 1000000] [--engines redb,fjall,redb-qr]
//! ```
//! Every scenario runs the engines alternately in one process and prints markdown tables.
//! Data lives in ./data (or $STORE_EVAL_DATA) and is deleted between runs.
//!
//! Modules: `workload` (record shape), `store` (the two engines behind one trait),
//! `group_commit` (mpsc -> one committer -> oneshot), this file (scenarios + reporting).

mod group_commit;
mod store;
mod workload;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::group_commit::run_publishers;
use crate::store::{Engine, Store};
use crate::workload::record_for;

// ---------------------------------------------------------------- arguments

struct Args {
    scenario: String,
    rest: Vec<String>,
}

impl Args {
    fn get(&self, flag: &str) -> Option<&str> {
        let i = self.rest.iter().position(|a| a == flag)?;
        self.rest.get(i + 1).map(String::as_str)
    }
    fn num(&self, flag: &str, default: u64) -> Result<u64> {
        self.get(flag)
            .map_or(Ok(default), |v| v.replace('_', "").parse().context(flag.to_owned()))
    }
    fn list(&self, flag: &str, default: &str) -> Vec<String> {
        self.get(flag)
            .unwrap_or(default)
            .split(',')
            .map(str::to_owned)
            .collect()
    }
    fn engines(&self, default: &str) -> Result<Vec<Engine>> {
        self.list("--engines", default)
            .iter()
            .map(|e| Engine::parse(e))
            .collect()
    }
}

fn data_root() -> PathBuf {
    std::env::var_os("STORE_EVAL_DATA").map_or_else(|| PathBuf::from("data"), PathBuf::from)
}

fn fresh_dir(name: &str) -> Result<PathBuf> {
    let dir = data_root().join(name);
    remove_dir(&dir)?;
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn remove_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let mut argv = std::env::args().skip(1);
    let args = Args {
        scenario: argv.next().unwrap_or_default(),
        rest: argv.collect(),
    };
    match args.scenario.as_str() {
        "append" => append(&args, true),
        "relaxed" => append(&args, false),
        "read" => read(&args),
        "open" => open_big(&args),
        "crash" => crash(&args),
        "crash-child" => crash_child(&args),
        _ => {
            eprintln!("usage: store-eval append|relaxed|read|open|crash [options] (see src/main.rs)");
            std::process::exit(2);
        }
    }
}

// ---------------------------------------------------------------- helpers

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn fmt_runs(v: &[f64], digits: usize) -> String {
    v.iter()
        .map(|x| format!("{x:.digits$}"))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// (apparent bytes, allocated bytes) of everything under `dir`.
fn dir_size(dir: &Path) -> Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut total = (0, 0);
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            let (a, b) = dir_size(&entry.path())?;
            total.0 += a;
            total.1 += b;
        } else {
            total.0 += meta.len();
            total.1 += meta.blocks() * 512;
        }
    }
    Ok(total)
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Bulk-loads positions 1..=n (`record_for`) in batches; the last batch is always durable.
fn build(store: &dyn Store, n: u64, batch: u64, durable: bool) -> Result<Duration> {
    let start = Instant::now();
    let mut pos = store.last_position()? + 1;
    let end = pos + n;
    let mut buf = Vec::with_capacity(batch as usize);
    while pos < end {
        buf.clear();
        let stop = (pos + batch).min(end);
        buf.extend((pos..stop).map(record_for));
        store.append(&buf, durable || stop == end)?;
        pos = stop;
    }
    Ok(start.elapsed())
}

/// Opens a store and determines the next position; returns (store, open time, last position).
fn timed_open(engine: Engine, dir: &Path) -> Result<(Box<dyn Store>, Duration, u64)> {
    let t = Instant::now();
    let store = engine.open(dir)?;
    let last = store.last_position()?;
    Ok((store, t.elapsed(), last))
}

// ---------------------------------------------------------------- (a) (b) append

fn append(args: &Args, durable: bool) -> Result<()> {
    let clients: Vec<usize> = args
        .list("--clients", if durable { "1,8,64" } else { "8" })
        .iter()
        .map(|c| c.parse())
        .collect::<Result<_, _>>()?;
    let secs = args.num("--secs", 10)?;
    let max = args.num("--max", 20_000)?;
    let rounds = args.num("--rounds", 3)?;
    let engines = args.engines("redb,fjall")?;
    let rt = runtime()?;
    let kind = if durable { "durable" } else { "relaxed" };
    println!("\n### {kind} group-commit append ({secs} s or {max} records per run, median of {rounds})\n");
    println!("| C | engine | publishes/s | p50 ms | p99 ms | mean batch | runs (publishes/s) |");
    println!("|---|---|---:|---:|---:|---:|---|");
    for &c in &clients {
        let mut per_engine: Vec<(Engine, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>)> = engines
            .iter()
            .map(|&e| (e, vec![], vec![], vec![], vec![]))
            .collect();
        for round in 0..rounds {
            for slot in &mut per_engine {
                let engine = slot.0;
                let dir = fresh_dir(&format!("append-{}", engine.name()))?;
                let store = Arc::new(engine.open(&dir)?);
                let r = rt.block_on(run_publishers(
                    Arc::clone(&store),
                    c,
                    durable,
                    max,
                    Duration::from_secs(secs),
                    |_| {},
                ))?;
                eprintln!(
                    "{kind} C={c} round={round} {}: {:.0}/s p50={:.2}ms p99={:.2}ms batch={:.1} n={}",
                    engine.name(),
                    r.per_sec(),
                    r.percentile_ms(0.5),
                    r.percentile_ms(0.99),
                    r.mean_batch(),
                    r.records
                );
                slot.1.push(r.per_sec());
                slot.2.push(r.percentile_ms(0.5));
                slot.3.push(r.percentile_ms(0.99));
                slot.4.push(r.mean_batch());
                Arc::into_inner(store).context("store still shared")?.close()?;
                remove_dir(&dir)?;
            }
        }
        for (e, tput, p50, p99, batch) in &per_engine {
            println!(
                "| {c} | {} | {:.0} | {:.2} | {:.2} | {:.1} | {} |",
                e.name(),
                median(tput),
                median(p50),
                median(p99),
                median(batch),
                fmt_runs(tput, 0)
            );
        }
        ratio_row(&per_engine.iter().map(|s| (s.0, median(&s.1))).collect::<Vec<_>>(), c);
    }
    Ok(())
}

fn ratio_row(medians: &[(Engine, f64)], c: usize) {
    let get = |e| medians.iter().find(|m| m.0 == e).map(|m| m.1);
    if let (Some(r), Some(f)) = (get(Engine::Redb), get(Engine::Fjall)) {
        println!("| {c} | **redb ÷ fjall** | **{:.2}×** | | | | |", r / f);
    }
}

// ---------------------------------------------------------------- (c) (d) (e-1M) (g) (h)

fn read(args: &Args) -> Result<()> {
    let n = args.num("--n", 1_000_000)?;
    let rounds = args.num("--rounds", 3)?;
    let lookups = args.num("--lookups", 100_000)? as usize;
    let engines = args.engines("redb,fjall")?;

    // Build each store the way herald fills it: durable commits of 1024 records.
    let mut dirs = Vec::new();
    println!("\n### build {n} records (durable commits of 1024) and footprint\n");
    println!("| engine | build s | records/s | disk apparent MiB | disk allocated MiB | bytes/record |");
    println!("|---|---:|---:|---:|---:|---:|");
    for &e in &engines {
        let dir = fresh_dir(&format!("read-{}", e.name()))?;
        let store = e.open(&dir)?;
        let took = build(store.as_ref(), n, 1024, true)?;
        store.close()?;
        let (apparent, allocated) = dir_size(&dir)?;
        println!(
            "| {} | {:.1} | {:.0} | {:.1} | {:.1} | {:.0} |",
            e.name(),
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64(),
            mib(apparent),
            mib(allocated),
            allocated as f64 / n as f64
        );
        dirs.push((e, dir));
    }

    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let probes: Vec<(u64, String)> = (0..lookups)
        .map(|_| {
            let p = rng.random_range(1..=n);
            (p, workload::id_for(p))
        })
        .collect();

    // (e) open, (c) lookups, (d) replay: per round, each engine in turn.
    let mut open_ms: Vec<Vec<f64>> = vec![vec![]; engines.len()];
    let mut lookup_s: Vec<Vec<f64>> = vec![vec![]; engines.len()];
    let mut replay_s: Vec<Vec<f64>> = vec![vec![]; engines.len()];
    for round in 0..rounds {
        for (i, (e, dir)) in dirs.iter().enumerate() {
            let (store, open, last) = timed_open(*e, dir)?;
            anyhow::ensure!(last == n, "{}: last position {last}, want {n}", e.name());
            open_ms[i].push(open.as_secs_f64() * 1e3);

            let t = Instant::now();
            for (p, id) in &probes {
                let found = store.find(id)?;
                anyhow::ensure!(found == Some(*p), "{}: find {id} = {found:?}", e.name());
            }
            let lk = t.elapsed().as_secs_f64();
            lookup_s[i].push(lookups as f64 / lk);

            let t = Instant::now();
            let mut after = 0;
            let mut out = Vec::with_capacity(512);
            let mut count = 0u64;
            while count < n {
                out.clear();
                store.read_after(after, 512, &mut out)?;
                let Some(lastd) = out.last() else { break };
                anyhow::ensure!(out[0].position == after + 1, "gap after {after}");
                after = lastd.position;
                count += out.len() as u64;
            }
            anyhow::ensure!(count == n, "{}: replayed {count}", e.name());
            let rp = t.elapsed().as_secs_f64();
            replay_s[i].push(n as f64 / rp);
            eprintln!(
                "read round={round} {}: open={:.1}ms lookups={:.0}/s replay={:.0}/s",
                e.name(),
                open.as_secs_f64() * 1e3,
                lookups as f64 / lk,
                n as f64 / rp
            );
            store.close()?;
        }
    }
    let table = |title: &str, unit: &str, v: &[Vec<f64>], digits: usize| {
        println!("\n### {title} (median of {rounds})\n");
        println!("| engine | {unit} | runs |");
        println!("|---|---:|---|");
        for (i, e) in engines.iter().enumerate() {
            println!("| {} | {:.digits$} | {} |", e.name(), median(&v[i]), fmt_runs(&v[i], digits));
        }
        if let (Some(r), Some(f)) = (
            engines.iter().position(|e| *e == Engine::Redb),
            engines.iter().position(|e| *e == Engine::Fjall),
        ) {
            println!("| **redb ÷ fjall** | **{:.2}×** | |", median(&v[r]) / median(&v[f]));
        }
    };
    table(&format!("lookup: {lookups} random id → position, store of {n}"), "lookups/s", &lookup_s, 0);
    table(&format!("replay: {n} records in batches of 512 from position 1"), "records/s", &replay_s, 0);
    table(&format!("open (clean close) + last position, store of {n}"), "ms", &open_ms, 1);

    // (h) retention: delete the older half, then ask for space back.
    println!("\n### retention: delete positions 1..={} of {n}, then reclaim\n", n / 2);
    println!("| engine | delete s | MiB before | MiB after delete | reclaim s | MiB after reclaim | MiB after reopen |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (e, dir) in &dirs {
        let before = dir_size(dir)?.1;
        let mut store = e.open(dir)?;
        let t = Instant::now();
        let deleted = store.delete_through(n / 2)?;
        let del = t.elapsed();
        anyhow::ensure!(deleted == n / 2, "deleted {deleted}");
        let after_delete = dir_size(dir)?.1;
        let t = Instant::now();
        store.reclaim()?;
        let rec = t.elapsed();
        let after_reclaim = dir_size(dir)?.1;
        anyhow::ensure!(store.find(&workload::id_for(1))?.is_none(), "id 1 survived");
        let mut out = Vec::new();
        store.read_after(0, 1, &mut out)?;
        anyhow::ensure!(out.first().map(|d| d.position) == Some(n / 2 + 1), "front");
        store.close()?;
        let (s, _, _) = timed_open(*e, dir)?;
        s.close()?;
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            e.name(),
            del.as_secs_f64(),
            mib(before),
            mib(after_delete),
            rec.as_secs_f64(),
            mib(after_reclaim),
            mib(dir_size(dir)?.1)
        );
    }
    for (_, dir) in &dirs {
        remove_dir(dir)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- (e) big store open

fn open_big(args: &Args) -> Result<()> {
    let n = args.num("--n", 10_000_000)?;
    let rounds = args.num("--rounds", 3)?;
    let batch = args.num("--batch", 50_000)?;
    let engines = args.engines("redb,fjall")?;
    println!("\n### build {n} records relaxed (batches of {batch}, last one durable), open time\n");
    let mut dirs = Vec::new();
    let mut rows = Vec::new();
    for &e in &engines {
        let dir = fresh_dir(&format!("open-{}", e.name()))?;
        let store = e.open(&dir)?;
        let took = build(store.as_ref(), n, batch, false)?;
        let t = Instant::now();
        store.close()?;
        let close = t.elapsed();
        eprintln!("built {} in {:.1}s, close {:.1}s", e.name(), took.as_secs_f64(), close.as_secs_f64());
        rows.push((e, took, close, dir_size(&dir)?.1));
        dirs.push((e, dir));
    }
    let mut open_ms: Vec<Vec<f64>> = vec![vec![]; engines.len()];
    for round in 0..rounds {
        for (i, (e, dir)) in dirs.iter().enumerate() {
            let (store, open, last) = timed_open(*e, dir)?;
            anyhow::ensure!(last == n, "{}: last {last}", e.name());
            eprintln!("open round={round} {}: {:.1}ms", e.name(), open.as_secs_f64() * 1e3);
            open_ms[i].push(open.as_secs_f64() * 1e3);
            store.close()?;
        }
    }
    println!("| engine | build s | records/s | close s | disk MiB | open ms (median) | open runs ms |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for (i, (e, took, close, size)) in rows.iter().enumerate() {
        println!(
            "| {} | {:.1} | {:.0} | {:.1} | {:.0} | {:.1} | {} |",
            e.name(),
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64(),
            close.as_secs_f64(),
            mib(*size),
            median(&open_ms[i]),
            fmt_runs(&open_ms[i], 1)
        );
    }
    for (_, dir) in &dirs {
        remove_dir(dir)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- (f) crash

/// Child: appends durably with 8 publishers forever, printing `ack <position>` after each
/// durable commit (before any publisher is answered). The parent SIGKILLs it.
fn crash_child(args: &Args) -> Result<()> {
    let engine = Engine::parse(args.rest.first().context("engine")?)?;
    let dir = PathBuf::from(args.rest.get(1).context("dir")?);
    let rt = runtime()?;
    let store = Arc::new(engine.open(&dir)?);
    let stdout = std::io::stdout();
    rt.block_on(run_publishers(
        store,
        8,
        true,
        u64::MAX,
        Duration::from_secs(3600),
        move |last| {
            let mut out = stdout.lock();
            let _ = writeln!(out, "ack {last}");
            let _ = out.flush();
        },
    ))?;
    Ok(())
}

fn crash(args: &Args) -> Result<()> {
    let kills = args.num("--kills", 5)?;
    let base = args.num("--base", 1_000_000)?;
    let engines = args.engines("redb,fjall,redb-qr")?;
    let exe = std::env::current_exe()?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    println!("\n### crash: SIGKILL during durable group-commit appends (8 publishers), store pre-filled with {base}\n");
    println!("| engine | kill # | ran ms | acked last | store last | reopen ms | redb repair ran | acked missing | index mismatches |");
    println!("|---|---:|---:|---:|---:|---:|---|---:|---:|");
    let mut dirs = Vec::new();
    for &e in &engines {
        let dir = fresh_dir(&format!("crash-{}", e.name()))?;
        let store = e.open(&dir)?;
        build(store.as_ref(), base, 50_000, false)?;
        store.close()?;
        dirs.push((e, dir));
    }
    let mut order: Vec<usize> = (0..dirs.len()).collect();
    for k in 1..=kills {
        order.shuffle(&mut rng);
        for &i in &order {
            let (e, dir) = &dirs[i];
            let mut child = Command::new(&exe)
                .args(["crash-child", e.name(), &dir.to_string_lossy()])
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()?;
            let stdout = child.stdout.take().context("stdout")?;
            let acked = Arc::new(AtomicU64::new(0));
            let (first_tx, first_rx) = std::sync::mpsc::channel();
            let reader = {
                let acked = Arc::clone(&acked);
                std::thread::spawn(move || {
                    let mut first = Some(first_tx);
                    for line in BufReader::new(stdout).lines() {
                        let Ok(line) = line else { break };
                        if let Some(p) = line.strip_prefix("ack ").and_then(|p| p.parse().ok()) {
                            acked.store(p, Ordering::SeqCst);
                            if let Some(tx) = first.take() {
                                let _ = tx.send(());
                            }
                        }
                    }
                })
            };
            first_rx
                .recv_timeout(Duration::from_secs(120))
                .context("child never acknowledged")?;
            let run = Duration::from_millis(rng.random_range(300..2000));
            std::thread::sleep(run);
            child.kill()?; // SIGKILL
            child.wait()?;
            reader.join().expect("reader");
            let acked = acked.load(Ordering::SeqCst);

            store::REDB_REPAIRS.store(0, Ordering::SeqCst);
            let (store, open, last) = timed_open(*e, dir)?;
            let repaired = store::REDB_REPAIRS.load(Ordering::SeqCst) > 0;
            // Every position 1..=last present, in order; index agrees for the new tail.
            let mut after = 0;
            let mut out = Vec::with_capacity(4096);
            let mut mismatches = 0u64;
            loop {
                out.clear();
                store.read_after(after, 4096, &mut out)?;
                if out.is_empty() {
                    break;
                }
                for d in &out {
                    anyhow::ensure!(d.position == after + 1, "{}: gap after {after}", e.name());
                    after = d.position;
                    if d.position > base && store.find(&d.id)? != Some(d.position) {
                        mismatches += 1;
                    }
                }
            }
            let missing = acked.saturating_sub(after);
            println!(
                "| {} | {k} | {} | {acked} | {last} | {:.1} | {} | {missing} | {mismatches} |",
                e.name(),
                run.as_millis(),
                open.as_secs_f64() * 1e3,
                if matches!(e, Engine::Fjall) { "n/a" } else if repaired { "yes" } else { "no" },
            );
            store.close()?;
        }
    }
    for (_, dir) in &dirs {
        remove_dir(dir)?;
    }
    Ok(())
}
