#!/usr/bin/env bash
# benches/experiments/pacing.sh: the fan-out burst (10,000 subscribers, 200
# events as fast as possible) against four servers, alternating, in one run:
#
#   floor          benches/peers/floor, 64-byte payloads (the comparison's floor)
#   floor-122      the floor with 114-byte payloads: its frames as long as
#                  herald's (whose `id:` line adds 50 bytes to each event)
#   herald         herald serve (memory log), as built from this checkout
#   herald-paced   the same with `subscribers.publish_pace = 40`: while
#                  the hub is still writing a group of subscribers earlier
#                  updates, the group takes 40 per pass over its members,
#                  one per 1/40 of the pass (the floor reads publishes
#                  between slices of 256 writes: about 40 per pass over
#                  10,000 sockets)
#
# Then what the pace costs several publishers feeding one busy group:
# `herald bench throughput`, 4 publishers, 1 topic, 1,000 subscribers, 5 s,
# against herald and herald-paced.
#
# Server on core 0, `herald bench` on core 1, as in scripts/compare.
# Reports: benches/results/<UTC stamp>-pacing/<server>-<run>.json, and the
# table of medians in summary.md beside them.
# Knobs: PACING_RUNS=5, PACING_PACE=40.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
runs=${PACING_RUNS:-5}
pace=${PACING_PACE:-40}
out="benches/results/$(date -u +%Y%m%dT%H%M%SZ)-pacing"
work=$(mktemp -d /tmp/herald-pacing.XXXXXX)
trap 'rm -rf "$work"' EXIT

cargo build --release -p herald >&2
(cd benches/peers/floor && CARGO_TARGET_DIR="$root/target/peers" cargo build --release >&2)

herald="$root/target/release/herald"
floor="$root/target/peers/release/floor"
secret="pacing-secret-$(date +%s)-not-for-production"
mkdir -p "$out"
cat >"$work/herald.toml" <<EOF
[limits]
max_connections_per_subject = 100000
max_connections = 19500
max_connections_per_address = 19500
EOF
{ cat "$work/herald.toml"; printf '[subscribers]\npublish_pace = %s\n' "$pace"; } >"$work/paced.toml"
{
    echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates benches/peers || echo " (+ uncommitted changes)")"
    echo "kernel: $(uname -r)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
    echo "runs: $runs, herald-paced: subscribers.publish_pace = $pace"
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
    local name=$1 config=$2 run=$3
    shift 3
    HERALD_LOG=warn taskset -c 0 "$herald" serve --dev \
        --dev-secret="$secret" --config "$config" --log-kind memory \
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
    taskset -c 1 "$herald" bench "$@" --hub http://127.0.0.1:8090/.well-known/mercure \
        --json --drain-timeout 60s --publisher-token "$pub" --subscriber-token "$sub" \
        --size 64 --server-pid "$pid" >"$out/$name-$run.json"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

for run in $(seq "$runs"); do
    echo "== run $run/$runs" >&2
    run_floor floor 64 "$run"; sleep 1
    run_floor floor-122 114 "$run"; sleep 1
    for name in herald herald-paced; do
        run_herald "$name" "$work/${name#herald-}.toml" "$run" \
            fanout --subscribers 10000 --events 200
        sleep 1
    done
done
for run in $(seq "$runs"); do
    echo "== throughput run $run/$runs" >&2
    for name in herald herald-paced; do
        run_herald "publishers-$name" "$work/${name#herald-}.toml" "$run" \
            throughput --publishers 4 --topics 1 --subscribers-per-topic 1000 --duration 5s
        sleep 1
    done
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
med = lambda rs, i: statistics.median(x[i] for x in rs)
def table(title, names, base):
    print(f"{title}\n")
    print("| server | publishes/s | deliveries/s (ratio) | p50 ms | p99 ms (ratio) | server CPU s | violations |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    b = rows[base]
    for name in names:
        rs = rows[name]
        print(f"| {name} | {med(rs,0):,.0f} | {med(rs,1):,.0f} ({med(rs,1)/med(b,1):.2f}×) | "
              f"{med(rs,2):.1f} | {med(rs,3):.1f} ({med(rs,3)/med(b,3):.2f}×) | {med(rs,4):.2f} | "
              f"{sum(x[5] for x in rs)} |")
    print()
table("fanout, 10,000 subscribers, 200 events as fast as possible (ratios to floor)",
      ["floor", "floor-122", "herald", "herald-paced"], "floor")
table("throughput, 4 publishers, 1 topic, 1,000 subscribers, 5 s (ratios to herald)",
      ["publishers-herald", "publishers-herald-paced"], "publishers-herald")
print(f"medians of {len(rows['floor'])} runs; reports in {out}")
EOF
