#!/usr/bin/env python3
"""Do syncs of one file overlap on this machine's disk?

Usage: taskset -c 0 python3 benches/fsync-probe/concurrent.py [DIR] (default: $TMPDIR or /tmp)

Threads each append a 300-byte record and `fdatasync` it, as fast as they
can for 3 s, into files whose blocks were written and synced first; prints
the syncs per second of each arrangement, twice. Pinned to one core, as the
comparison pins the server, it shows whether a second sync in flight adds
syncs or only shares the disk (see docs/benchmarks.md, change 16).
"""
import os
import sys
import tempfile
import threading
import time

SIZE = 16 << 20
RECORD = 300
SECONDS = 3.0


def prepared(path):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    zeros = b"\0" * (1 << 20)
    for at in range(0, SIZE, 1 << 20):
        os.pwrite(fd, zeros, at)
    os.fsync(fd)
    return fd


def run(base, name, threads, files, own_pages):
    paths = [os.path.join(base, f"fsync-concurrent-{os.getpid()}-{i}") for i in range(files)]
    fds = [prepared(path) for path in paths]
    lock = threading.Lock()
    offsets = [0] * files
    total = [0]
    stop = threading.Event()

    def append(t):
        which = t % files
        record = b"x" * RECORD
        done = 0
        while not stop.is_set():
            with lock:
                at = offsets[which]
                offsets[which] = (at + (4096 if own_pages else RECORD)) % SIZE
            os.pwrite(fds[which], record, at)
            os.fdatasync(fds[which])
            done += 1
        with lock:
            total[0] += done

    workers = [threading.Thread(target=append, args=(t,)) for t in range(threads)]
    began = time.monotonic()
    for worker in workers:
        worker.start()
    time.sleep(SECONDS)
    stop.set()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - began
    for fd, path in zip(fds, paths):
        os.close(fd)
        os.unlink(path)
    print(f"| {name} | {total[0] / elapsed:,.0f} |")


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else tempfile.gettempdir()
    print("| arrangement | syncs/s |\n| --- | ---: |")
    for _ in range(2):
        run(base, "1 thread", 1, 1, False)
        run(base, "2 threads, one file", 2, 1, False)
        run(base, "2 threads, one file, each record on its own page", 2, 1, True)
        run(base, "2 threads, 2 files", 2, 2, False)
        run(base, "4 threads, 4 files", 4, 4, False)


if __name__ == "__main__":
    main()
