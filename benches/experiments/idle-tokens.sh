#!/usr/bin/env bash
# benches/experiments/idle-tokens.sh: memory per idle subscriber when every
# subscriber presents its own token, or subscribes to a topic of its own, as
# a deployment's users do, against the comparison's idle scenario, where all
# present one token and subscribe to one topic. herald serve with the
# durable log and the comparison's limits, `herald bench idle --settle 3s`
# at 10,000 and 19,000 subscribers, alternating, in one run:
#
#   shared      every subscriber presents the subscriber token --dev prints,
#               all on one topic (as scripts/compare does)
#   distinct    subscriber n presents its own token: the same claims with
#               the subject `bench-subscriber-<n>` and a fresh `jti`, signed
#               with the dev secret (`herald bench --subscriber-tokens`)
#   own-topic   the shared token, each subscriber on a topic of its own
#               (`herald bench idle --topics <subscribers>`)
#   per-user    both: its own token and its own topic
#
# Server on core 0, `herald bench` on core 1, as in scripts/compare.
# Reports: benches/results/<UTC stamp>-idle-tokens/<mode>-<n>-<run>.json and
# the table of medians in summary.md beside them.
# Knobs: IDLE_TOKENS_RUNS=3, IDLE_TOKENS_SIZES="10000 19000",
# IDLE_TOKENS_MODES="shared distinct own-topic per-user", IDLE_TOKENS_SERVER
# (the herald binary to serve with, e.g. an older build; default: this
# checkout's, which also runs the bench).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
runs=${IDLE_TOKENS_RUNS:-3}
out="$root/benches/results/$(date -u +%Y%m%dT%H%M%SZ)-idle-tokens"
work=$(mktemp -d /tmp/herald-idle-tokens.XXXXXX)
server_pid=""
trap 'if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
[[ $(ulimit -n) -ge 19500 ]] || ulimit -n 20000 ||
    { echo "19,000 subscribers need an open-file limit of 19,500 or more" >&2; exit 1; }

cargo build --release -p herald >&2
herald="$root/target/release/herald"
server=${IDLE_TOKENS_SERVER:-$herald}
secret="idle-tokens-secret-$(date +%s)-not-for-production"
port=8098
mkdir -p "$out"
cat >"$work/herald.toml" <<EOT
[limits]
max_connections_per_subject = 100000
max_connections = 19500
max_connections_per_address = 19500
EOT
{
    echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates || echo " (+ uncommitted changes)")"
    echo "server: $server ($("$server" --version))"
    echo "kernel: $(uname -r)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
    echo "runs: $runs"
} >"$out/machine.txt"

start() {
    rm -rf "$work/data"
    HERALD_LOG=warn taskset -c 0 "$server" serve --dev --dev-secret "$secret" --config "$work/herald.toml" \
        --log-kind durable --data-dir "$work/data" --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 200); do
        grep -qa 'subscriber token:' "$work/server.log" && return 0
        sleep 0.05
    done
    echo "herald did not start: $(cat "$work/server.log")" >&2
    exit 1
}

# The --dev subscriber token's claims, re-signed per subscriber.
mint() {
    local token=$1 count=$2
    python3 - "$token" "$secret" "$count" <<'PY'
import base64, hashlib, hmac, json, sys, uuid
token, secret, count = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
def unb64(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=")
header, payload, _ = token.split(".")
header = b64(unb64(header))
claims = json.loads(unb64(payload))
for n in range(count):
    claims["sub"] = f"bench-subscriber-{n}"
    claims["jti"] = f"urn:uuid:{uuid.uuid4()}"
    signed = header + b"." + b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = b64(hmac.new(secret, signed, hashlib.sha256).digest())
    print((signed + b"." + signature).decode())
PY
}

for n in $(seq "$runs"); do
    for subscribers in ${IDLE_TOKENS_SIZES:-10000 19000}; do
        for mode in ${IDLE_TOKENS_MODES:-shared distinct own-topic per-user}; do
            start
            token=$(grep -a 'subscriber token:' "$work/server.log" | tail -1 | awk '{print $NF}')
            publisher=$(grep -a 'publisher token:' "$work/server.log" | tail -1 | awk '{print $NF}')
            case "$mode" in
                shared | own-topic) tokens=(--subscriber-token "$token") ;;
                *)
                    mint "$token" "$subscribers" >"$work/tokens"
                    tokens=(--subscriber-tokens "$work/tokens")
                    ;;
            esac
            case "$mode" in
                own-topic | per-user) tokens+=(--topics "$subscribers") ;;
            esac
            report="$out/$mode-$subscribers-$n.json"
            taskset -c 1 "$herald" bench idle --hub "http://127.0.0.1:$port/.well-known/mercure"  --json \
                --publisher-token "$publisher" "${tokens[@]}" --subscribers "$subscribers" --settle 3s --server-pid "$server_pid" >"$report" ||
                { echo "the $mode run at $subscribers failed: $report" >&2; exit 1; }
            kill "$server_pid"
            wait "$server_pid" 2>/dev/null || true
            echo "$(date -u +%H:%M:%S) $mode $subscribers run $n done" >&2
        done
    done
done

python3 - "$out" <<'PY' >"$out/summary.md"
import json, pathlib, statistics, sys
out = pathlib.Path(sys.argv[1])
rows = {}
for f in out.glob("*.json"):
    mode, subscribers, _ = f.stem.rsplit("-", 2)
    idle = json.load(open(f))["idle"]
    rows.setdefault((int(subscribers), mode), []).append(idle["server_kib_per_subscriber"])
print("| subscribers | mode | KiB per idle subscriber, median (min–max) | kB |")
print("| ---: | --- | ---: | ---: |")
order = ["shared", "distinct", "own-topic", "per-user"]
for (subscribers, mode), values in sorted(rows.items(), key=lambda r: (r[0][0], order.index(r[0][1]))):
    median = statistics.median(values)
    print(f"| {subscribers:,} | {mode} | {median:.2f} ({min(values):.2f}–{max(values):.2f}) | {median * 1.024:.2f} |")
PY
cat "$out/summary.md"
