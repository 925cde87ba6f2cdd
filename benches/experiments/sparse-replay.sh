#!/usr/bin/env bash
# benches/experiments/sparse-replay.sh: how long a subscriber to an exact
# topic with few updates waits for its replay from a long durable history,
# herald A against herald B (for the topic index: A a build before it, B
# this checkout's).
#
# A durable store of STORED updates (default 1,000,000 over 64 bench
# topics, relaxed durability, through `herald bench throughput`, built by
# A so that both can open it), then 10 updates to one more topic. Per
# repetition and build, alternating, on a fresh copy of the store: herald
# serve on core 0 (B builds its topic index at this first start: the time
# from launch to serving is printed too), then one subscriber on core 1
# asks for that topic with `Last-Event-ID: earliest`, and the time from its
# request to its 10th event is measured, 5 times in a row. One line per
# repetition and build:
#   <rep> <A|B> start_s <s> replay_ms <first> <median of the other 4>
# Knobs: SPARSE_A (required), SPARSE_B, RUNS=3, STORED=1000000.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ab_binaries sparse-replay SPARSE_A SPARSE_B
stored=${STORED:-1000000}
hub=http://127.0.0.1:8092/.well-known/mercure
herald_config "$work/fill.toml" 40 sequence relaxed
herald_config "$work/run.toml" 40 sequence strict
start_herald "$a" "$work/fill.toml" 8092 --log-kind durable --data-dir "$work/store"
taskset -c 1 "$a" bench throughput --hub "$hub" --json --publisher-token "$pub_token" \
    --subscriber-token "$sub_token" --publishers 64 --topics 64 --events $((stored / 64)) \
    --size 64 --drain-timeout 120s >"$work/fill.json"
for i in $(seq 10); do
    curl -sf -o /dev/null -H "Authorization: Bearer $pub_token" \
        -d "topic=https://sparse.example/x" -d "data=$i" "$hub"
done
stop_server
echo "store: $(du -sh "$work/store" | cut -f1), $stored updates + 10 on the sparse topic" >&2

for run in $(seq "${RUNS:-3}"); do
    for which in A B; do
        server=$a
        [[ $which == B ]] && server=$b
        rm -rf "$work/data"
        cp -r "$work/store" "$work/data"
        began=$(date +%s.%N)
        start_herald "$server" "$work/run.toml" 8092 --log-kind durable --data-dir "$work/data"
        started=$(date +%s.%N)
        times=$(taskset -c 1 python3 - "$hub" <<'PY'
import socket, sys, time, urllib.parse
hub = urllib.parse.urlsplit(sys.argv[1])
took = []
for _ in range(5):
    began = time.monotonic()
    s = socket.create_connection((hub.hostname, hub.port))
    s.sendall((f"GET {hub.path}?match=https%3A%2F%2Fsparse.example%2Fx HTTP/1.1\r\n"
               f"Host: {hub.netloc}\r\nLast-Event-ID: earliest\r\n\r\n").encode())
    seen = b""
    while seen.count(b"\ndata: ") < 10:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("sparse-replay: the stream ended before 10 events")
        seen += chunk
    took.append((time.monotonic() - began) * 1000)
    s.close()
rest = sorted(took[1:])
print(f"{took[0]:.1f} {(rest[1] + rest[2]) / 2:.1f}")
PY
)
        stop_server
        echo "$run $which start_s $(echo "$started - $began" | bc) replay_ms $times"
    done
done
