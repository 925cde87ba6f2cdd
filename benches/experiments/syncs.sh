#!/usr/bin/env bash
# benches/experiments/syncs.sh: does the durable log publish faster with
# several journal syncs in flight? `herald bench throughput` (P publishers
# over 100 topics, one subscriber each, 10 s, 64 B: the comparison's publish
# scenario) against, alternating, in one run:
#
#   memory          herald serve --log-kind memory, built at the base commit
#   durable         herald serve --log-kind durable (strict), the same binary:
#                   one committer thread, one sync at a time, commits gathered
#   syncs2          the durable log with pipelined-syncs.patch: the committer
#                   writes a batch, hands its fdatasync to one of 2 helper
#                   threads and goes on to the next batch; a batch is answered
#                   once a sync begun after its write returns
#   syncs2-gather   the same, the committer still gathering each commit's
#                   appends as the base does (HERALD_EXPERIMENT_GATHER=1)
#
# The patch applies to commit 8269144 (BASE below); the base binary is
# built from a worktree of that commit, the patched one from a second.
# Server on core 0, `herald bench` on core 1, as in scripts/compare.
# Reports: benches/results/<UTC stamp>-syncs/<variant>-p<P>-<run>.json and
# the table of medians in summary.md beside them.
# Knobs: SYNCS_RUNS=3, SYNCS_PUBLISHERS="1 4 16".
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
base=8269144
runs=${SYNCS_RUNS:-3}
publishers=${SYNCS_PUBLISHERS:-1 4 16}
out="$root/benches/results/$(date -u +%Y%m%dT%H%M%SZ)-syncs"
work=$(mktemp -d /tmp/herald-syncs.XXXXXX)
cleanup() {
    git -C "$root" worktree remove --force "$work/base" 2>/dev/null || true
    git -C "$root" worktree remove --force "$work/patched" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

git worktree add --detach "$work/base" "$base" >&2
git worktree add --detach "$work/patched" "$base" >&2
git -C "$work/patched" apply "$root/benches/experiments/pipelined-syncs.patch"
(cd "$work/base" && CARGO_TARGET_DIR="$root/target/experiment-base" cargo build --release -p herald >&2)
(cd "$work/patched" && CARGO_TARGET_DIR="$root/target/experiment-syncs" cargo build --release -p herald >&2)
base_bin="$root/target/experiment-base/release/herald"
patched_bin="$root/target/experiment-syncs/release/herald"

secret="syncs-secret-$(date +%s)-not-for-production"
mkdir -p "$out"
{
    echo "base: $base, patched: $base + benches/experiments/pipelined-syncs.patch"
    echo "kernel: $(uname -r)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
    echo "runs: $runs, publishers: $publishers"
} >"$out/machine.txt"

wait_tokens() {
    for _ in $(seq 200); do
        grep -qa 'subscriber token:' "$1" && return 0
        sleep 0.05
    done
    return 1
}

# run VARIANT PUBLISHERS RUN
run() {
    local variant=$1 p=$2 n=$3 bin=$base_bin kind=durable
    local -a env=()
    case "$variant" in
        memory) kind=memory ;;
        durable) ;;
        syncs2) bin=$patched_bin env=(HERALD_EXPERIMENT_SYNCS=2) ;;
        syncs2-gather) bin=$patched_bin env=(HERALD_EXPERIMENT_SYNCS=2 HERALD_EXPERIMENT_GATHER=1) ;;
    esac
    rm -rf "$work/data"
    local log="$work/server.log"
    env "${env[@]}" HERALD_LOG=warn taskset -c 0 "$bin" serve --dev --dev-secret "$secret" \
        --log-kind "$kind" --data-dir "$work/data" --listen 127.0.0.1:8097 >"$log" 2>&1 &
    local pid=$!
    wait_tokens "$log" || { kill "$pid"; echo "the $variant server did not start: $log" >&2; exit 1; }
    local pub sub
    pub=$(grep -a 'publisher token:' "$log" | tail -1 | awk '{print $NF}')
    sub=$(grep -a 'subscriber token:' "$log" | tail -1 | awk '{print $NF}')
    taskset -c 1 "$base_bin" bench throughput --hub http://127.0.0.1:8097/.well-known/mercure --json \
        --publisher-token "$pub" --subscriber-token "$sub" --publishers "$p" --topics 100 \
        --subscribers-per-topic 1 --duration 10s --size 64 --server-pid "$pid" \
        >"$out/$variant-p$p-$n.json"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    echo "$(date -u +%H:%M:%S) $variant p$p run $n done" >&2
}

for n in $(seq "$runs"); do
    for p in $publishers; do
        for variant in memory durable syncs2 syncs2-gather; do
            run "$variant" "$p" "$n"
        done
    done
done

python3 - "$out" <<'PY' >"$out/summary.md"
import json, pathlib, statistics, sys
out = pathlib.Path(sys.argv[1])
rows = {}
for f in out.glob("*.json"):
    variant, rest = f.stem.rsplit("-p", 1)
    p = int(rest.split("-")[0])
    d = json.load(open(f))
    pub = d["publish"]
    rows.setdefault((p, variant), []).append(
        (pub["per_second"], d["server"]["cpu_s"] * 1e6 / max(pub["acknowledged"], 1), pub["errors"]))
print("| publishers | variant | publishes/s median (min–max) | server CPU µs per publish | ÷ memory | errors |")
print("| ---: | --- | ---: | ---: | ---: | ---: |")
for p in sorted({p for p, _ in rows}):
    memory = statistics.median(r[0] for r in rows.get((p, "memory"), [(0, 0, 0)]))
    for variant in ["memory", "durable", "syncs2", "syncs2-gather"]:
        r = rows.get((p, variant))
        if not r:
            continue
        rate = statistics.median(x[0] for x in r)
        print(f"| {p} | {variant} | {rate:,.0f} ({min(x[0] for x in r):,.0f}–{max(x[0] for x in r):,.0f}) "
              f"| {statistics.median(x[1] for x in r):.1f} | {rate / memory:.2f}× | {sum(x[2] for x in r)} |")
PY
cat "$out/summary.md"
