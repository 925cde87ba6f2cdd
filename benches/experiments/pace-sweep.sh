#!/usr/bin/env bash
# benches/experiments/pace-sweep.sh: the fan-out burst (10,000 subscribers,
# events as fast as possible) against the floor and against herald (memory
# log) at several `subscribers.publish_pace` values (0: off, herald's
# default), for a short and a long burst, alternating, in one run: is there
# a pace that meets both burst targets (deliveries/s ≥ 0.9× the floor's,
# p99 ≤ 1.2× the floor's) whatever the burst's length?
# Server on core 0, `herald bench` on core 1, as in scripts/compare.
# One line per run:
#   <run> <events> <floor|pace-N> ok|FAIL dps <deliveries/s> p99 <ms> pubs <publishes/s>
# then, per burst length and server, the medians and their ratios to the floor's.
# Results: benches/results/<UTC stamp>-pace-sweep/lines.txt and summary.txt.
# Knobs: SWEEP_RUNS=3, SWEEP_PACES="0 40 64 96", SWEEP_EVENTS="200 3000",
# SWEEP_IDS="uuid-v7" (`log.ids`; with several, each pace runs with each,
# named pace-N/IDS), SWEEP_LOGS="memory" (`log.kind`; with several, each
# runs with each, named LOG:pace-N…; the durable log in a fresh directory),
# SWEEP_DURABILITY="strict" (`log.durability` of the durable log).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
herald="$root/target/release/herald"
floor="$root/target/peers/release/floor"
[[ -x $herald && -x $floor ]] || {
    echo "pace-sweep: build first: cargo build --release -p herald, and benches/peers/floor (scripts/compare builds both)" >&2
    exit 1
}
out="benches/results/$(date -u +%Y%m%dT%H%M%SZ)-pace-sweep"
mkdir -p "$out"
echo "commit: $(git rev-parse --short HEAD); cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)" >"$out/machine.txt"

for run in $(seq "${SWEEP_RUNS:-3}"); do
    for events in ${SWEEP_EVENTS:-200 3000}; do
        servers=(floor)
        for log in ${SWEEP_LOGS:-memory}; do
            for ids in ${SWEEP_IDS:-uuid-v7}; do
                for pace in ${SWEEP_PACES:-0 40 64 96}; do
                    servers+=("$log:$pace/$ids")
                done
            done
        done
        for server in "${servers[@]}"; do
            args=()
            if [[ $server == floor ]]; then
                taskset -c 0 "$floor" 127.0.0.1:8094 >"$work/log" 2>&1 &
                pid=$!
                sleep 0.5
                name=floor
            else
                log=${server%%:*} setting=${server#*:}
                herald_config "$work/herald.toml" "${setting%%/*}" "${setting#*/}" "${SWEEP_DURABILITY:-strict}"
                rm -rf "$work/data"
                start_herald "$herald" "$work/herald.toml" 8094 --log-kind "$log" --data-dir "$work/data"
                args=(--publisher-token "$pub_token" --subscriber-token "$sub_token")
                name=pace-${setting%%/*}
                if [[ -n ${SWEEP_IDS:-} ]]; then
                    name=pace-$setting
                fi
                if [[ -n ${SWEEP_LOGS:-} ]]; then
                    name=$log:$name
                fi
            fi
            taskset -c 1 "$herald" bench fanout --hub http://127.0.0.1:8094/.well-known/mercure --json \
                "${args[@]}" --subscribers 10000 --events "$events" --size 64 \
                --drain-timeout 60s --server-pid "$pid" >"$work/report.json" || true
            python3 - "$work/report.json" "$run $events $name" <<'PY' | tee -a "$out/lines.txt"
import json, sys
d = json.load(open(sys.argv[1]))
print(sys.argv[2], "ok" if d["ok"] else "FAIL", "dps", round(d["delivery"]["per_second"]),
      "p99", d["delivery"]["latency"]["p99_ms"], "pubs", round(d["publish"]["per_second"]))
PY
            stop_server
        done
    done
done
python3 - "$out/lines.txt" <<'PY' | tee "$out/summary.txt"
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for events in sorted({r[1] for r in rows}, key=int):
    mine = [r for r in rows if r[1] == events]
    med = {}
    for name in dict.fromkeys(r[2] for r in mine):
        rs = [r for r in mine if r[2] == name]
        med[name] = (statistics.median(float(r[5]) for r in rs),
                     statistics.median(float(r[7]) for r in rs),
                     statistics.median(float(r[9]) for r in rs),
                     all(r[3] == "ok" for r in rs))
    fdps, fp99, _, _ = med["floor"]
    print(f"{events} events:")
    for name, (dps, p99, pubs, ok) in med.items():
        print(f"  {name:26} dps {dps:>10,.0f} ({dps / fdps:.2f}x)  p99 {p99:7.1f} ms ({p99 / fp99:.2f}x)"
              f"  publishes/s {pubs:6,.0f}  {'ok' if ok else 'FAIL'}")
PY
