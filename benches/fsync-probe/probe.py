#!/usr/bin/env python3
"""What one durable write costs on this machine's disk, in the ways a log can make it.

Usage: python3 benches/fsync-probe/probe.py [DIR] (default: $TMPDIR or /tmp)

Each way writes a 300-byte record (the size of a small journal batch) 3,000
times into a file whose blocks were written and synced first, so no sync
has to change the file's size, and reports the wall time per durable write
(p50/p90/p99) and the CPU time the process spent per write (user + system:
on a virtual machine most of a sync's cost is the exits to the hypervisor).
The figures bound a strict publish: a publisher waiting for its update to
be durable waits at least one of these.
"""
import mmap
import os
import resource
import sys
import tempfile

N = 3000
RECORD = 300
BLOCK = 4096
SIZE = 4 << 20


def measure(name, path, flags, write):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | flags, 0o600)
    try:
        zeros = mmap.mmap(-1, 1 << 20)  # page-aligned, as O_DIRECT needs
        for at in range(0, SIZE, 1 << 20):
            os.pwrite(fd, zeros, at)
        os.fsync(fd)
        times = []
        before = resource.getrusage(resource.RUSAGE_SELF)
        clock = __import__("time").perf_counter
        for i in range(N):
            start = clock()
            write(fd, i)
            times.append(clock() - start)
        after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        os.close(fd)
    times.sort()
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) / N
    print(
        f"| {name} | {times[N // 2] * 1e6:.0f} µs | {times[N * 9 // 10] * 1e6:.0f} µs "
        f"| {times[N * 99 // 100] * 1e6:.0f} µs | {cpu * 1e6:.0f} µs |"
    )


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else tempfile.gettempdir()
    path = os.path.join(base, f"fsync-probe-{os.getpid()}")
    record = b"x" * RECORD
    block = mmap.mmap(-1, BLOCK)
    block.write(b"x" * BLOCK)

    def buffered_sync(fd, i):
        os.pwrite(fd, record, (i * RECORD) % SIZE)
        os.fdatasync(fd)

    def buffered_dsync(fd, i):
        os.pwrite(fd, record, (i * RECORD) % SIZE)

    def direct_block(fd, i):
        os.pwrite(fd, block, (i * RECORD) % SIZE // BLOCK * BLOCK)

    print(f"{N} writes of {RECORD} bytes in {base}, blocks written and synced beforehand\n")
    print("| durable write | p50 | p90 | p99 | CPU per write |")
    print("| --- | ---: | ---: | ---: | ---: |")
    try:
        measure("`pwrite` + `fdatasync` (herald's journal)", path, 0, buffered_sync)
        measure("`pwrite` on an `O_DSYNC` file", path, os.O_DSYNC, buffered_dsync)
        measure("4 KiB `pwrite`, `O_DIRECT` + `O_DSYNC`", path, os.O_DIRECT | os.O_DSYNC, direct_block)
        measure("4 KiB `pwrite`, `O_DIRECT` (reaches the device's cache, not durable)", path, os.O_DIRECT, direct_block)
    finally:
        os.unlink(path)


if __name__ == "__main__":
    main()
