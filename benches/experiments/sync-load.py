"""benches/experiments/sync-load.py FILE SECONDS GAP: journal-like durable
writes from another process, for burst-timing.sh: 300 bytes `pwrite` and
`fdatasync` into a 1 MiB file written and synced beforehand, then a sleep
of GAP seconds, for SECONDS; prints how many syncs it made to stderr."""
import os
import signal
import sys
import time

# Stopped with SIGTERM once the burst is over: still say how many it made.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

path, seconds, gap = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
os.pwrite(fd, b"\0" * (1 << 20), 0)
os.fsync(fd)
syncs = 0
began = time.monotonic()
try:
    while time.monotonic() < began + seconds:
        os.pwrite(fd, b"x" * 300, (syncs * 300) % (1 << 20))
        os.fdatasync(fd)
        syncs += 1
        time.sleep(gap)
finally:
    elapsed = time.monotonic() - began
    print(f"syncs {syncs} in {elapsed:.1f} s: {syncs / elapsed:.0f}/s", file=sys.stderr)
