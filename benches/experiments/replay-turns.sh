#!/usr/bin/env bash
# benches/experiments/replay-turns.sh: what replays of a long history do to
# publishing, with and without `log.max_replay_readers`.
#
# A durable store of STORED updates (default 1,000,000, relaxed durability,
# built once per run through `herald bench throughput`) is copied fresh for
# each repetition. Per repetition and mode, alternating: herald serve (strict
# durability) on core 0, SCANS subscribers (default 16) that each resume
# from `earliest` with a URL pattern that matches no topic (so each reads
# the whole history, 512 updates at a time, to find nothing; an exact
# topic is read from the topic index instead) and reconnect after 2 s,
# and the comparison's publish scenario on core 1 (`herald bench
# throughput`: 4 publishers over 100 topics, one subscriber each, 10 s,
# 64 B). Modes: `quiet` (no scans), `unbounded` (max_replay_readers =
# 1000, as before the limit) and `bounded` (the default: half the cores).
# One line per repetition and mode:
#   <rep> <mode> publishes/s <n> publish_p99_ms <ms> delivery_p99_ms <ms> server_cpu_s <s>
# Knobs: RUNS=3, STORED=1000000, SCANS=16.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
b="$root/target/release/herald"
cargo build --release --locked -q -p herald
stored=${STORED:-1000000}
scans=${SCANS:-16}
hub=http://127.0.0.1:8092/.well-known/mercure

config() { # config FILE DURABILITY [READERS]
    herald_config "$1" 40 sequence "$2"
    if [[ $# -gt 2 ]]; then
        printf 'max_replay_readers = %s\n' "$3" >>"$1"
    fi
}

config "$work/fill.toml" relaxed
start_herald "$b" "$work/fill.toml" 8092 --log-kind durable --data-dir "$work/store"
taskset -c 1 "$b" bench throughput --hub "$hub" --json --publisher-token "$pub_token" \
    --subscriber-token "$sub_token" --publishers 64 --topics 64 --events $((stored / 64)) \
    --size 64 --drain-timeout 120s >"$work/fill.json"
stop_server
echo "store: $(du -sh "$work/store" | cut -f1), $stored updates" >&2

for run in $(seq "${RUNS:-3}"); do
    for mode in quiet unbounded bounded; do
        rm -rf "$work/data"
        cp -r "$work/store" "$work/data"
        case $mode in
            unbounded) config "$work/run.toml" strict 1000 ;;
            *) config "$work/run.toml" strict ;;
        esac
        start_herald "$b" "$work/run.toml" 8092 --log-kind durable --data-dir "$work/data"
        scanners=()
        if [[ $mode != quiet ]]; then
            for _ in $(seq "$scans"); do
                (while true; do
                    curl -s -o /dev/null --max-time 2 -H 'Last-Event-ID: earliest' \
                        "$hub?match_urlpattern=https%3A%2F%2Fnothing.example%2F*" || true
                done) &
                scanners+=($!)
            done
            sleep 1
        fi
        taskset -c 1 "$b" bench throughput --hub "$hub" --json --publisher-token "$pub_token" \
            --subscriber-token "$sub_token" --publishers 4 --topics 100 --subscribers-per-topic 1 \
            --duration 10s --size 64 --drain-timeout 60s --server-pid "$pid" >"$work/report.json" || true
        for scanner in "${scanners[@]}"; do
            kill "$scanner" 2>/dev/null || true
        done
        stop_server
        python3 - "$work/report.json" "$run" "$mode" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(sys.argv[2], sys.argv[3], "publishes/s", round(d["publish"]["per_second"]),
      "publish_p99_ms", d["publish"]["request_latency"]["p99_ms"],
      "delivery_p99_ms", d["delivery"]["latency"]["p99_ms"],
      "server_cpu_s", d["server"]["cpu_s"], "ok", d["ok"])
PY
    done
done
