#!/usr/bin/env bash
# benches/experiments/memory-replay.sh: how long a subscriber waits for its
# replay from the memory log, herald A against herald B (for the memory
# log's topic index: A a build before it, B this checkout's). Per
# repetition and build, alternating: herald serve --log-kind memory on core
# 0, filled with STORED updates over 64 bench topics (`herald bench
# throughput`, 64 publishers), then 10 updates to a quiet topic and 1,000 to
# a busy one; then, from core 1, one subscriber at a time asks with
# `last_event_id=earliest` for the quiet topic and for the busy one, 7
# times each, timed from the request to its last event. One line per
# repetition, build and topic:
#   <rep> <A|B> <quiet|busy> events <n> replay_ms <median of 7> (<min>-<max>)
# Knobs: MEMORY_REPLAY_A (required), MEMORY_REPLAY_B, RUNS=3,
# STORED=98000 (the memory log keeps 100,000 by default).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ab_binaries memory-replay MEMORY_REPLAY_A MEMORY_REPLAY_B
stored=${STORED:-98000}
per_topic=$((stored / 64))
hub=http://127.0.0.1:8092/.well-known/mercure
herald_config "$work/herald.toml"
for run in $(seq "${RUNS:-3}"); do
    for which in A B; do
        server=$a
        [[ $which == B ]] && server=$b
        start_herald "$server" "$work/herald.toml" 8092 --log-kind memory
        taskset -c 1 "$b" bench throughput --hub "$hub" --json --publisher-token "$pub_token" \
            --subscriber-token "$sub_token" --publishers 64 --topics 64 --events "$per_topic" \
            --size 64 --drain-timeout 120s >"$work/fill.json"
        taskset -c 1 python3 - "$pub_token" <<'PY'
import http.client, sys
conn = http.client.HTTPConnection("127.0.0.1", 8092)
for topic, count in (("https://quiet.example/x", 10), ("https://busy.example/x", 1000)):
    for i in range(count):
        conn.request("POST", "/.well-known/mercure", body=f"topic={topic}&data={i}",
                     headers={"Authorization": f"Bearer {sys.argv[1]}",
                              "Content-Type": "application/x-www-form-urlencoded"})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"publish to {topic}: {response.status}")
PY
        for case in "quiet https://quiet.example/x 10" "busy https://busy.example/x 1000"; do
            read -r name topic events <<<"$case"
            taskset -c 1 python3 - "$sub_token" "$topic" "$events" "$run $which $name" <<'PY'
import socket, statistics, sys, time, urllib.parse
token, topic, events, label = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
request = (f"GET /.well-known/mercure?match={urllib.parse.quote(topic, safe='')}"
           f"&last_event_id=earliest HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           f"Authorization: Bearer {token}\r\n\r\n").encode()
def once():
    conn = socket.create_connection(("127.0.0.1", 8092))
    started = time.perf_counter()
    conn.sendall(request)
    seen, tail = 0, b""
    while seen < events:
        chunk = conn.recv(1 << 20)
        if not chunk:
            raise SystemExit(f"{label}: closed after {seen} of {events} events")
        seen += (tail + chunk).count(b"\ndata: ") - tail.count(b"\ndata: ")
        tail = chunk[-8:]
    elapsed = (time.perf_counter() - started) * 1000
    conn.close()
    return elapsed
times = [once() for _ in range(7)]
print(f"{label} events {events} replay_ms {statistics.median(times):.2f} ({min(times):.2f}-{max(times):.2f})")
PY
        done
        stop_server
    done
done
