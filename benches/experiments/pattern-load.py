#!/usr/bin/env python3
"""What held URL patterns and subscription churn cost a hub: memory, and publish latency.

Usage:
  python3 benches/experiments/pattern-load.py patterns HERALD [HERALD ...]
  python3 benches/experiments/pattern-load.py presence HERALD [HERALD ...]

Each HERALD binary in turn serves a fresh hub on loopback (memory log for
`patterns`, the durable log with `log.max_bytes` 100 MB and presence on for
`presence`), and is stopped before the next starts.

- `patterns`: 100 anonymous connections each hold 100 distinct URL patterns
  (`https://example.com/<random>/:g([a-z]+)`, 10,000 in all), then 300
  publishes to unique topics are timed one after another, before and while
  they are held; prints publish p50/p99 and the hub's resident memory, and
  that memory again 5 s and 30 s after the connections closed.
- `presence`: for 30 s, 50 anonymous connections at a time open with 100
  matchers each and close at once; prints the hub's resident memory 5 s and
  30 s after, and its subscription event metrics.
"""
import asyncio
import http.client
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

SECRET = "0123456789abcdef0123456789abcdef0123456789"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return 0


def start(herald, config):
    workdir = tempfile.mkdtemp(prefix="pattern-load-")
    path = os.path.join(workdir, "herald.toml")
    port, admin = free_port(), free_port()
    with open(path, "w") as out:
        out.write(f'listen = "127.0.0.1:{port}"\nadmin.listen = "127.0.0.1:{admin}"\n')
        out.write(config.replace("DIR", os.path.join(workdir, "data")))
    hub = subprocess.Popen([herald, "serve", "-c", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env={**os.environ, "HERALD_LOG": "error"})
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{admin}/readyz", timeout=1)
            return hub, port, admin
        except OSError:
            time.sleep(0.1)
    hub.kill()
    sys.exit(f"{herald} did not become ready")


def publisher_token(port):
    import base64
    import hashlib
    import hmac
    import json
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    now = int(time.time())
    claims = {"iss": "https://iss.test", "sub": "load", "aud": f"http://127.0.0.1:{port}/.well-known/mercure",
              "exp": now + 3600, "iat": now, "client_id": "load",
              "authorization_details": [{"type": "https://mercure.rocks/authorization-detail",
                                         "actions": ["publish"], "topics": [{"match": "*", "match_type": "exact"}]}]}
    head = b64(json.dumps({"typ": "at+jwt", "alg": "HS256"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = b64(hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


ISSUER = f'[[auth.issuers]]\nid = "https://iss.test"\nhs256_secrets = ["{SECRET}"]\n'


def timed_publishes(port, token, count=300):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    times = []
    for _ in range(count):
        topic = f"https://example.com/t/{random.getrandbits(50)}/abc"
        started = time.perf_counter()
        conn.request("POST", "/.well-known/mercure", urllib.parse.urlencode({"topic": topic, "data": "x"}),
                     {"Authorization": f"Bearer {token}", "Content-Type": "application/x-www-form-urlencoded"})
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
        times.append(time.perf_counter() - started)
    times.sort()
    return f"publish p50 {times[len(times) // 2] * 1000:.2f} ms, p99 {times[int(len(times) * 0.99)] * 1000:.2f} ms"


async def open_stream(port, matches, param):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    query = urllib.parse.urlencode([(param, m) for m in matches])
    writer.write(f"GET /.well-known/mercure?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    status = (await reader.readline()).split()
    return reader, writer, int(status[1]) if len(status) > 1 else None


def patterns(herald):
    hub, port, _ = start(herald, "[log]\nkind = \"memory\"\n" + ISSUER)
    token = publisher_token(port)
    try:
        print(f"  no patterns held: {timed_publishes(port, token)}; {rss_kib(hub.pid)} KiB")

        async def hold():
            streams = []
            for _ in range(100):
                matches = [f"https://example.com/{random.getrandbits(40)}/:g([a-z]+)" for _ in range(100)]
                streams.append(await open_stream(port, matches, "match_urlpattern"))
            opened = sum(1 for *_, status in streams if status == 200)
            line = await asyncio.to_thread(timed_publishes, port, token)
            print(f"  10,000 patterns held ({opened} of 100 connections opened): {line}; {rss_kib(hub.pid)} KiB")
            for _, writer, _ in streams:
                writer.close()
            # What the hub gives back once they are gone, while it is idle.
            await asyncio.sleep(5)
            after5 = rss_kib(hub.pid)
            await asyncio.sleep(25)
            print(f"  released: 5 s later {after5} KiB, 30 s later {rss_kib(hub.pid)} KiB")

        asyncio.run(hold())
    finally:
        hub.kill()
        hub.wait()


def presence(herald):
    config = "[log]\ndir = \"DIR\"\nmax_bytes = 100000000\n[subscriptions]\nenabled = true\n" + ISSUER
    hub, port, admin = start(herald, config)
    try:
        async def churn():
            opened = 0
            started = time.time()
            while time.time() - started < 30:
                async def one():
                    matches = [f"https://example.com/{random.getrandbits(60)}/{j}/" + "a" * 60 for j in range(100)]
                    reader, writer, status = await open_stream(port, matches, "match")
                    await reader.read(100)
                    writer.close()
                    return status == 200
                opened += sum(await asyncio.gather(*(one() for _ in range(50))))
            return opened

        opened = asyncio.run(churn())
        time.sleep(5)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics").read().decode()
        shown = [line for line in metrics.splitlines()
                 if line.startswith(("herald_subscription_events", "herald_subscriptions_refused", "herald_log_entries"))]
        after5 = rss_kib(hub.pid)
        time.sleep(25)
        print(f"  {opened} connections in 30 s; 5 s later {after5} KiB, 30 s later {rss_kib(hub.pid)} KiB; "
              + "; ".join(shown))
    finally:
        hub.kill()
        hub.wait()


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("patterns", "presence"):
        sys.exit(__doc__)
    for herald in sys.argv[2:]:
        print(herald)
        {"patterns": patterns, "presence": presence}[sys.argv[1]](herald)


if __name__ == "__main__":
    main()
