#!/usr/bin/env bash
# benches/experiments/pacing.sh: the fan-out burst (10,000 subscribers, 200
# events as fast as possible) against four servers, alternating, in one run:
#
#   floor          benches/peers/floor, 64-byte payloads (the comparison's floor)
#   floor-122      the floor with 114-byte payloads: its frames as long as
#                  herald's (whose `id:` line adds 50 bytes to each event)
#   herald         herald serve (memory log), as built from this checkout
#   herald-paced   herald with publish-pacing.patch applied, run with
#                  $PACING_ENV, by default HERALD_EXPERIMENT_PACE_WRITES=128:
#                  while a group's writer is busy, a publish is answered once
#                  it has written 128 more members (each of the 2 shards'
#                  groups), as the floor reads publishes between slices of
#                  256 writes. The patch's other rule,
#                  HERALD_EXPERIMENT_PACE_LAG_MS=<ms>: a publish arriving
#                  once the writer's pass has run that long is answered when
#                  the next pass begins.
#
# Server on core 0, `herald bench` on core 1, as in scripts/compare. The
# patched build goes to target/experiment (a worktree in a temp dir).
# Reports: benches/results/<UTC stamp>-pacing/<server>-<run>.json.
# Knobs: PACING_RUNS=5, PACING_ENV=HERALD_EXPERIMENT_PACE_WRITES=128.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
runs=${PACING_RUNS:-5}
pace_env=${PACING_ENV:-HERALD_EXPERIMENT_PACE_WRITES=128}
out="benches/results/$(date -u +%Y%m%dT%H%M%SZ)-pacing"
work=$(mktemp -d /tmp/herald-pacing.XXXXXX)
trap 'git worktree remove --force "$work/tree" 2>/dev/null; rm -rf "$work"' EXIT

cargo build --release -p herald >&2
(cd benches/peers/floor && CARGO_TARGET_DIR="$root/target/peers" cargo build --release >&2)
git worktree add --detach "$work/tree" HEAD >&2
git -C "$work/tree" apply "$root/benches/experiments/publish-pacing.patch"
(cd "$work/tree" && CARGO_TARGET_DIR="$root/target/experiment" cargo build --release -p herald >&2)

herald="$root/target/release/herald"
paced="$root/target/experiment/release/herald"
floor="$root/target/peers/release/floor"
secret="pacing-secret-$(date +%s)-not-for-production"
mkdir -p "$out"
cat >"$work/herald.toml" <<EOF
[limits]
max_connections_per_subject = 100000
max_connections = 19500
max_connections_per_address = 19500
EOF
{
    echo "commit: $(git rev-parse --short HEAD)"
    echo "kernel: $(uname -r)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
    echo "runs: $runs, herald-paced with: $pace_env"
} >"$out/machine.txt"

wait_port() {
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

run_floor() {
    local name=$1 size=$2 run=$3
    taskset -c 0 "$floor" 127.0.0.1:8082 >/dev/null 2>&1 &
    local pid=$!
    wait_port 8082
    taskset -c 1 "$herald" bench fanout --hub http://127.0.0.1:8082/.well-known/mercure \
        --match-param topic --json --drain-timeout 60s --subscribers 10000 --events 200 \
        --size "$size" --server-pid "$pid" >"$out/$name-$run.json"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

run_herald() {
    local name=$1 binary=$2 pace=$3 run=$4
    env HERALD_LOG=warn $pace taskset -c 0 "$binary" serve --dev \
        --dev-secret="$secret" --config "$work/herald.toml" --log-kind memory \
        --listen 127.0.0.1:8090 >"$work/serve.log" 2>&1 &
    local pid=$!
    wait_port 8090
    local pub sub
    for _ in $(seq 100); do
        grep -q 'subscriber token:' "$work/serve.log" && break
        sleep 0.05
    done
    pub=$(grep -a 'publisher token:' "$work/serve.log" | awk '{print $NF}')
    sub=$(grep -a 'subscriber token:' "$work/serve.log" | awk '{print $NF}')
    taskset -c 1 "$herald" bench fanout --hub http://127.0.0.1:8090/.well-known/mercure \
        --json --drain-timeout 60s --publisher-token "$pub" --subscriber-token "$sub" \
        --subscribers 10000 --events 200 --size 64 --server-pid "$pid" >"$out/$name-$run.json"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

for run in $(seq "$runs"); do
    echo "== run $run/$runs" >&2
    run_floor floor 64 "$run"; sleep 1
    run_floor floor-122 114 "$run"; sleep 1
    run_herald herald "$herald" "" "$run"; sleep 1
    run_herald herald-paced "$paced" "$pace_env" "$run"; sleep 1
done

python3 - "$out" <<'EOF' | tee "$out/summary.md"
import glob, json, os, statistics, sys
out = sys.argv[1]
rows = {}
for path in sorted(glob.glob(f"{out}/*.json")):
    name = os.path.basename(path).rsplit("-", 1)[0]
    r = json.load(open(path))
    rows.setdefault(name, []).append((
        r["publish"]["per_second"], r["delivery"]["per_second"],
        r["delivery"]["latency"]["p50_ms"], r["delivery"]["latency"]["p99_ms"],
        r["server"]["cpu_s"], r["violations"]["total"]))
floor = rows["floor"]
print("| server | publishes/s | deliveries/s (÷ floor) | p50 ms | p99 ms (÷ floor) | server CPU s | violations |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
med = lambda rs, i: statistics.median(x[i] for x in rs)
for name in ["floor", "floor-122", "herald", "herald-paced"]:
    rs = rows[name]
    print(f"| {name} | {med(rs,0):,.0f} | {med(rs,1):,.0f} ({med(rs,1)/med(floor,1):.2f}×) | "
          f"{med(rs,2):.1f} | {med(rs,3):.1f} ({med(rs,3)/med(floor,3):.2f}×) | {med(rs,4):.2f} | "
          f"{sum(x[5] for x in rs)} |")
print(f"\nmedians of {len(floor)} runs; reports in {out}")
EOF
