"""Idle HTTP/1.1 subscribers, in clear text or over TLS, for idle-transports.sh.

Opens N connections to 127.0.0.1:PORT (TLS with ALPN `http/1.1` when the
scheme is https, the certificate not checked), sends each one GET of PATH
with the headers given, reads its response head (200 expected) and keeps
it open; then waits SETTLE seconds and prints the server's RSS growth per
subscriber, read from /proc/PID before and after:
    <KiB per subscriber> <RSS before KiB> <RSS after KiB>
Usage: idle-client.py http|https PORT PID N SETTLE PATH [HEADER ...]
"""
import socket
import ssl
import sys
import time


def rss(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit(f"no VmRSS for process {pid}")


def main():
    scheme, port, pid, count, settle, path, *headers = sys.argv[1:]
    port, pid, count, settle = int(port), int(pid), int(count), float(settle)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\n"
    request += "".join(f"{header}\r\n" for header in headers) + "\r\n"
    before = rss(pid)
    held = []
    for i in range(count):
        conn = socket.create_connection(("127.0.0.1", port))
        if scheme == "https":
            conn = context.wrap_socket(conn, server_hostname="localhost")
        conn.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                raise SystemExit(f"subscriber {i}: closed before its response head")
            head += chunk
        if not head.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"subscriber {i}: {head[:200]!r}")
        held.append(conn)
    time.sleep(settle)
    after = rss(pid)
    print(f"{(after - before) / count:.2f} {before} {after}")


main()
