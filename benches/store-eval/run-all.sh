#!/usr/bin/env bash
# Runs every scenario once, one after another (one heavy command at a time).
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release
B=./target/release/store-eval
mkdir -p results data
$B append  --clients 1,8,64 --secs 10 --max 20000 --rounds 3 > results/a-append.md   2> results/a-append.log
$B relaxed --clients 8      --secs 10 --max 20000 --rounds 3 > results/b-relaxed.md  2> results/b-relaxed.log
$B read    --n 1000000 --lookups 100000 --rounds 3          > results/cdg-read.md    2> results/cdg-read.log
$B open    --n 10000000 --batch 50000 --rounds 3            > results/e-open10m.md   2> results/e-open10m.log
$B crash   --kills 5 --base 1000000 --engines redb,fjall,redb-qr > results/f-crash.md 2> results/f-crash.log
rm -rf data/*
