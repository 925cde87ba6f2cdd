"""Subscribers that stop reading, as a client on a stalled network does.

    python3 stalled.py PORT PID COUNT EVENTS SIZE PATH TOKEN

STALLED_TRANSPORT says how they connect: `h2` (the default) opens COUNT
event streams over TLS (ALPN h2; STALLED_PER_CONNECTION streams per
connection, default 100), with the flow-control windows Chrome announces
(6 MiB per stream, 15 MiB per connection); `h1-tls` and `h1` open one
HTTP/1.1 connection per stream, over TLS or in clear text. It waits for
every response head, then stops reading every connection. It then
publishes EVENTS events of SIZE bytes to the topic
`https://herald.bench/topics/slow` over one HTTP/1.1 connection (TLS unless
the transport is `h1`; authorized by TOKEN), waits 3 s, and prints one
line:

    <KiB of server RSS per stalled subscriber> <RSS before, KiB> <RSS after, KiB> <publishes acknowledged>

With STALLED_READ=1 (h2 only) the subscribers read instead, as fast as they can,
and the line ends with the seconds from the first publish until every
subscriber had every event (the cost of the buffer for those that keep up).

The server's memory is read from /proc/PID/status. The certificate is not
checked (the experiment's own). Needs the `h2` package (pip install h2).
"""

import http.client
import os
import socket
import ssl
import sys
import selectors
import threading
import time
import urllib.parse

import h2.config
import h2.connection
import h2.events
import h2.settings

PER_CONNECTION = int(os.environ.get("STALLED_PER_CONNECTION", "100"))
TRANSPORT = os.environ.get("STALLED_TRANSPORT", "h2")
STREAM_WINDOW = 6 * 1024 * 1024
CONNECTION_WINDOW = 15 * 1024 * 1024


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit(f"no VmRSS for {pid}")


def context(alpn):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols([alpn])
    return ctx


def open_streams(port, count, path, token):
    """Connections each with up to PER_CONNECTION streams whose heads arrived."""
    connections = []
    for start in range(0, count, PER_CONNECTION):
        n = min(PER_CONNECTION, count - start)
        raw = socket.create_connection(("127.0.0.1", port))
        tls = context("h2").wrap_socket(raw, server_hostname="localhost")
        if tls.selected_alpn_protocol() != "h2":
            raise SystemExit("the server did not negotiate h2")
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW})
        conn.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        for i in range(n):
            stream = conn.get_next_available_stream_id()
            conn.send_headers(
                stream,
                [
                    (":method", "GET"),
                    (":scheme", "https"),
                    (":authority", f"localhost:{port}"),
                    (":path", path),
                    ("accept", "text/event-stream"),
                    ("authorization", f"Bearer {token}"),
                ],
                end_stream=True,
            )
        tls.sendall(conn.data_to_send())
        heads = 0
        tls.settimeout(20)
        while heads < n:
            data = tls.recv(65536)
            if not data:
                raise SystemExit("the server closed a connection before every head")
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    status = dict(event.headers).get(b":status")
                    if status != b"200":
                        raise SystemExit(f"a subscription was answered {status}")
                    heads += 1
            tls.sendall(conn.data_to_send())
        # From here on nothing is read: the connection is stalled.
        connections.append((tls, conn))
    return connections


def open_http1_streams(port, count, path, token, tls):
    """One HTTP/1.1 connection per stream, its response head read."""
    connections = []
    request = (
        f"GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nAccept: text/event-stream\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        if tls:
            sock = context("http/1.1").wrap_socket(sock, server_hostname="localhost")
        sock.settimeout(20)
        sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(4096)
            if not data:
                raise SystemExit("the server closed a connection before its head")
            head += data
        if not head.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"a subscription was answered {head[:12]!r}")
        # From here on nothing is read: the connection is stalled.
        connections.append((sock, None))
    return connections


def publish(port, events, size, token):
    if TRANSPORT == "h1":
        https = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    else:
        https = http.client.HTTPSConnection(
            "127.0.0.1", port, context=context("http/1.1"), timeout=30
        )
    acknowledged = 0
    data = "x" * size
    for seq in range(events):
        body = urllib.parse.urlencode({"topic": "https://herald.bench/topics/slow", "data": data})
        https.request(
            "POST",
            "/.well-known/mercure",
            body=body,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        answer = https.getresponse()
        answer.read()
        if answer.status == 200:
            acknowledged += 1
    return acknowledged


def read_all(connections, count, events, deadline):
    """Reads every connection until each of `count` streams has `events`
    events' `data:` lines, acknowledging what it reads; the time it ended."""
    selector = selectors.DefaultSelector()
    for tls, conn in connections:
        tls.setblocking(False)
        selector.register(tls, selectors.EVENT_READ, conn)
    seen = {}
    tails = {}
    complete = 0
    while complete < count and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=1):
            try:
                data = key.fileobj.recv(1 << 20)
            except (BlockingIOError, ssl.SSLWantReadError):
                continue
            if not data:
                raise SystemExit("the server closed a reading connection")
            conn = key.data
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    stream = (id(conn), event.stream_id)
                    text = tails.get(stream, b"") + event.data
                    before = seen.get(stream, 0)
                    seen[stream] = before + text.count(b"data: ")
                    tails[stream] = text[-5:]
                    if before < events <= seen[stream]:
                        complete += 1
            pending = conn.data_to_send()
            if pending:
                key.fileobj.setblocking(True)
                key.fileobj.sendall(pending)
                key.fileobj.setblocking(False)
    if complete < count:
        raise SystemExit(f"only {complete} of {count} streams had every event in time")
    return time.monotonic()


def main():
    port, pid, count, events, size = (int(a) for a in sys.argv[1:6])
    path, token = sys.argv[6], sys.argv[7]
    reading = os.environ.get("STALLED_READ") == "1"
    if TRANSPORT == "h2":
        connections = open_streams(port, count, path, token)
    elif TRANSPORT in ("h1", "h1-tls") and not reading:
        connections = open_http1_streams(port, count, path, token, TRANSPORT == "h1-tls")
    else:
        raise SystemExit(f"unknown STALLED_TRANSPORT {TRANSPORT} (or STALLED_READ with it)")
    time.sleep(1)
    before = rss_kib(pid)
    if reading:
        started = time.monotonic()
        outcome = {}
        publisher = threading.Thread(
            target=lambda: outcome.update(n=publish(port, events, size, token))
        )
        publisher.start()
        ended = read_all(connections, count, events, started + 120)
        publisher.join()
        after = rss_kib(pid)
        print(
            f"{(after - before) / count:.2f} {before} {after} {outcome['n']} "
            f"{ended - started:.3f}"
        )
    else:
        acknowledged = publish(port, events, size, token)
        time.sleep(3)
        after = rss_kib(pid)
        print(f"{(after - before) / count:.2f} {before} {after} {acknowledged}")
    for tls, _ in connections:
        tls.close()


main()
