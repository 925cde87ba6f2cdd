#!/usr/bin/env python3
"""How long one durable write takes when writes do not come back to back.

Usage: taskset -c 0 python3 benches/fsync-probe/gaps.py [GAP_US ...]
(default gaps: 0 50 150 300)

A strict publisher waits for its update's sync, then for its answer, then
sends the next update: the journal's syncs come with gaps between them,
unlike `probe.py`'s, which come back to back. For each gap this writes a
300-byte record and `fdatasync`s it 3,000 times into a file whose blocks
were written and synced first (as herald's journal is), leaving GAP_US
between writes, once with the thread busy during the gap (a worker
running on the core) and once asleep (an idle core), and prints the sync's
p50/p90/p99 and mean in microseconds.
"""
import os
import statistics
import sys
import tempfile
import time

N = 3000
RECORD = b"r" * 300
SIZE = 4 << 20


def run(gap_us, busy):
    gap = gap_us / 1e6
    with tempfile.NamedTemporaryFile(dir=os.environ.get("TMPDIR", "/tmp")) as f:
        fd = f.fileno()
        os.pwrite(fd, b"\0" * SIZE, 0)
        os.fsync(fd)
        took = []
        at = 0
        for _ in range(N):
            began = time.perf_counter()
            os.pwrite(fd, RECORD, at)
            os.fdatasync(fd)
            took.append((time.perf_counter() - began) * 1e6)
            at += len(RECORD)
            if gap and busy:
                end = time.perf_counter() + gap
                while time.perf_counter() < end:
                    pass
            elif gap:
                time.sleep(gap)
    took.sort()
    q = lambda p: took[min(N - 1, int(p * N))]
    return q(0.5), q(0.9), q(0.99), statistics.mean(took)


def main():
    gaps = [int(g) for g in sys.argv[1:]] or [0, 50, 150, 300]
    print(f"{N} writes of {len(RECORD)} bytes + fdatasync, blocks written and synced beforehand\n")
    print("| gap between writes | the gap | p50 | p90 | p99 | mean |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for gap in gaps:
        for busy in ([True] if gap == 0 else [True, False]):
            p50, p90, p99, mean = run(gap, busy)
            kind = "–" if gap == 0 else ("busy" if busy else "asleep")
            print(f"| {gap} µs | {kind} | {p50:.0f} µs | {p90:.0f} µs | {p99:.0f} µs | {mean:.0f} µs |")


if __name__ == "__main__":
    main()
