#!/usr/bin/env bash
# benches/callgrind/publish.sh [HERALD_BINARY...]
#
# User-space instructions per publish of `herald serve --log-kind memory`,
# counted by valgrind's callgrind (instructions, not seconds: the same for
# the same binary and load whatever else the machine is doing). For each
# binary (default: target/release/herald) the hub runs under callgrind twice,
# taking 4 publishers × 250 and then 4 × 2,500 publishes over 100 topics
# with one subscriber each (`herald bench throughput`); the difference
# divided by 9,000 is the cost of one publish, start-up and shutdown
# cancelled out. Needs valgrind (apt-get install valgrind).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bench="$root/target/release/herald"
[[ -x "$bench" ]] || { echo "build first: cargo build --release -p herald" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install -y valgrind" >&2; exit 1; }
work=$(mktemp -d /tmp/herald-callgrind.XXXXXX)
trap 'rm -rf "$work"' EXIT
printf '[limits]\nmax_connections_per_subject = 100000\n' >"$work/herald.toml"

# Instructions of one run of `binary` taking 4 × `events` publishes.
count() {
    local binary=$1 events=$2 port=8095
    HERALD_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$work/out" \
        "$binary" serve --dev --dev-secret callgrind-secret-not-for-production \
        --config "$work/herald.toml" --log-kind memory --data-dir "$work/data" \
        --listen "127.0.0.1:$port" >"$work/log" 2>&1 &
    local pid=$!
    for _ in $(seq 200); do grep -q 'subscriber token:' "$work/log" && break; sleep 0.5; done
    local pub sub
    pub=$(grep -a 'publisher token:' "$work/log" | tail -1 | awk '{print $NF}')
    sub=$(grep -a 'subscriber token:' "$work/log" | tail -1 | awk '{print $NF}')
    "$bench" bench throughput --hub "http://127.0.0.1:$port/.well-known/mercure" \
        --publisher-token "$pub" --subscriber-token "$sub" --publishers 4 --topics 100 \
        --subscribers-per-topic 1 --events "$events" --size 64 --timeout 60s \
        --drain-timeout 60s --json >"$work/report.json"
    kill -TERM "$pid"
    wait "$pid" || true
    grep -q '"ok": *true' "$work/report.json" || { echo "the bench run failed" >&2; exit 1; }
    callgrind_annotate "$work/out" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}

binaries=("$@")
[[ ${#binaries[@]} -gt 0 ]] || binaries=("$root/target/release/herald")
for binary in "${binaries[@]}"; do
    small=$(count "$binary" 250)
    large=$(count "$binary" 2500)
    echo "$binary: $(( (large - small) / 9000 )) instructions per publish ($small for 1,000 publishes, $large for 10,000)"
done
