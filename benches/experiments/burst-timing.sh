#!/usr/bin/env bash
# benches/experiments/burst-timing.sh: where a strict durable publish's time
# goes in the fan-out burst (10,000 subscribers, 200 events of 64 bytes as
# fast as possible, one publisher), against the memory log's, alternating.
# herald is built with burst-timing.patch, which makes the server print,
# every 200 publishes, the mean time a publish spent in the log's append
# and in the publish pace (hub), and, for the durable log, from the
# append's send to the committer's wake, in the journal's write and sync,
# and from the hand-over to the dispatch (store). A third variant,
# memory+syncs, runs the memory log while sync-load.py makes journal-like
# durable writes from another process on the server's core, about as many
# per second as the strict durable log commits in this burst (one every
# 2.5 ms plus the sync): what the syncs cost the core, apart from herald's
# path through its committer. A fourth, durable+tmpfs, runs the strict
# durable log with its data directory in /dev/shm, where a sync costs
# nothing: herald's path through its committer without the disk.
# The server also prints how many members the group's writer served
# (written: in all, per publish) during the append and the pace.
# Server on core 0, `herald bench` on core 1, as in scripts/compare.
# The patch applies to commit bee66c2 (BASE below), built in a worktree into
# target/burst-timing. One line per run:
#   <run> <memory|durable|memory+syncs|durable+tmpfs> ok|FAIL dps <deliveries/s> p99 <ms> pubs <publishes/s>
# followed by the server's last timing lines. Used for item 2 of the targets
# in docs/benchmarks.md. Results: benches/results/<UTC stamp>-burst-timing/.
# Knobs: RUNS=3, VARIANTS="memory durable memory+syncs durable+tmpfs",
# EXTRA_PATCH (a further patch applied after this one, e.g.
# benches/experiments/pace-credit.patch).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
base=bee66c2
tree="$work/tree"
trap 'if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; fi; git -C "$root" worktree remove --force "$tree" 2>/dev/null || true; rm -rf "$work"' EXIT
git worktree add --detach "$tree" "$base" >&2
git -C "$tree" apply "$root/benches/experiments/burst-timing.patch"
if [[ -n ${EXTRA_PATCH:-} ]]; then
    git -C "$tree" apply "$root/$EXTRA_PATCH"
fi
(cd "$tree" && CARGO_TARGET_DIR="$root/target/burst-timing" cargo build --release -p herald >&2)
herald="$root/target/burst-timing/release/herald"
out="benches/results/$(date -u +%Y%m%dT%H%M%SZ)-burst-timing"
mkdir -p "$out"
echo "base: $base + burst-timing.patch${EXTRA_PATCH:+ + $EXTRA_PATCH}; cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)" >"$out/machine.txt"
herald_config "$work/herald.toml" 40 sequence strict
for run in $(seq "${RUNS:-3}"); do
    for variant in ${VARIANTS:-memory durable memory+syncs durable+tmpfs}; do
        log=${variant%+*}
        data="$work/data"
        if [[ $variant == *+tmpfs ]]; then
            data=$(mktemp -d /dev/shm/herald-burst-timing.XXXXXX)
        fi
        rm -rf "$data"
        start_herald "$herald" "$work/herald.toml" 8094 --log-kind "$log" --data-dir "$data"
        sleep 0.3
        syncing=""
        if [[ $variant == *+syncs ]]; then
            taskset -c 0 python3 "$root/benches/experiments/sync-load.py" "$work/sync-load" 30 0.0025 \
                2>>"$out/sync-load.txt" &
            syncing=$!
        fi
        taskset -c 1 "$herald" bench fanout --hub http://127.0.0.1:8094/.well-known/mercure --json \
            --drain-timeout 60s --publisher-token "$pub_token" --subscriber-token "$sub_token" \
            --subscribers 10000 --events 200 --size 64 --server-pid "$pid" >"$work/report.json" || true
        if [[ -n $syncing ]]; then
            kill "$syncing" 2>/dev/null || true
            wait "$syncing" 2>/dev/null || true
        fi
        python3 - "$work/report.json" "$run $variant" <<'PY' | tee -a "$out/lines.txt"
import json, sys
d = json.load(open(sys.argv[1]))
print(sys.argv[2], "ok" if d["ok"] else "FAIL", "dps", round(d["delivery"]["per_second"]),
      "p99", round(d["delivery"]["latency"]["p99_ms"], 1), "pubs", round(d["publish"]["per_second"]))
PY
        stop_server
        if [[ $data == /dev/shm/* ]]; then rm -rf "$data"; fi
        grep -a 'timing:' "$work/log" | grep -a 'batches' | tail -1 | tee -a "$out/lines.txt" || true
        grep -a 'timing:' "$work/log" | grep -a 'publishes' | tail -1 | tee -a "$out/lines.txt"
        sleep 1
    done
done
