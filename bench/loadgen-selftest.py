#!/usr/bin/env python3
"""Self-test of loadgen's WS, SSE and HTTP GET parsers against a tiny scripted
server.

Run by `make -C bench check`. The server writes awkward but valid streams
(fragmented frames, 16- and 64-bit lengths, pings, a masked frame, bytes
dribbled one by one; SSE chunked with comments, CR/LF/CRLF, multi-line data,
and HTTP/1.0 close-delimited) and checks the pongs and close echo it gets.
Loopback only, bounded in time.
"""
import os
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from selftest_ws import (LoopbackServer, accept_key, frame,  # noqa: E402
                         header_values, read_headers)
from selftest_ws import read_client_frame as _read_frame  # noqa: E402

LOADGEN = sys.argv[1] if len(sys.argv) > 1 else "./loadgen"
errors = []


def read_client_frame(c, buf):
    return _read_frame(c, buf, errors)


def serve_ws(c):
    req = read_headers(c)
    acc = accept_key(header_values(req, "sec-websocket-key")[0])
    t = time.time_ns()
    out = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % acc).encode()
    out += frame(1, b"t=%d a" % t)                             # 1
    out += frame(9, b"png1")
    out += frame(1, b"t=%d" % t, fin=False)                   # 2: fragmented
    out += frame(9, b"")                                       # ping inside
    out += frame(0, b" mid", fin=False) + frame(0, b" end")
    out += frame(2, b"t=%d " % t + b"x" * 300)                # 3: 16-bit length
    out += frame(2, b"y" * 70000)                              # 4: 64-bit length
    out += frame(1, b"t=%d masked" % t, mask=b"\x01\x02\x03\x04")  # 5
    c.sendall(out[:1])                                         # dribble start
    time.sleep(0.05)
    for i in range(1, 200):
        c.sendall(out[i:i + 1])
    c.sendall(out[200:])
    buf = b""
    got = []
    for _ in range(2):
        op, p, buf = read_client_frame(c, buf)
        got.append((op, p))
    if got != [(10, b"png1"), (10, b"")]:
        errors.append("ws pongs: %r" % got)
    c.sendall(frame(8, struct.pack("!H", 1001) + b"bye"))
    op, p, buf = read_client_frame(c, buf)
    if (op, p) != (8, struct.pack("!H", 1001)):
        errors.append("ws close echo: %r" % ((op, p),))
    c.close()


def serve_sse(c, chunked):
    req = read_headers(c)
    if "text/event-stream" not in req:
        errors.append("sse: no Accept header")
    t = time.time_ns()
    body = (b": hi\n\n"
            b"id: 1\ndata: t=%d one\n\n"                     # 1
            b"event: x\r\ndata: t=%d two\r\ndata: more\r\n\r\n"  # 2 (CRLF)
            b"data:t=%d three\r\r"                            # 3 (CR only)
            b": just a comment\n\n"
            b"retry: 10\n\n"
            b"data\n\n"                                        # 4 (empty data)
            b"data: " + b"z" * 5000 + b"\n\n") % (t, t, t)   # 5
    if chunked:
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        pos = 0
        sizes = [1, 2, 3, 7, 13, 100, 4096]
        i = 0
        while pos < len(body):
            n = sizes[i % len(sizes)]
            part = body[pos:pos + n]
            c.sendall(b"%x;ext=1\r\n" % len(part) + part + b"\r\n")
            pos += n
            i += 1
            if i < 20:
                time.sleep(0.005)
        time.sleep(0.5)
        c.sendall(b"0\r\n\r\n")
    else:
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
        for i in range(0, len(body), 5):
            c.sendall(body[i:i + 5])
        time.sleep(0.5)
    c.close()


def run(kind):
    def serve(c):
        try:
            if kind == "ws":
                serve_ws(c)
            else:
                serve_sse(c, kind == "sse")
        except (ConnectionResetError, BrokenPipeError):
            if kind == "ws":   # loadgen resets only after everything is done
                errors.append("ws server: connection reset")

    server = LoopbackServer(serve, errors, kind)
    port = server.port
    mode = "ws" if kind == "ws" else "sse"
    scheme = "ws" if mode == "ws" else "http"
    cmd = [LOADGEN, "--mode", mode, "--url", "%s://127.0.0.1:%d/x" % (scheme, port),
           "-n", "2", "--expect", "5", "--latency", "--idle", "--duration", "2"]
    if kind == "sse10":
        cmd.append("--http10")
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    out = res.stdout
    server.join()
    summ = [l for l in out.splitlines() if l.startswith("summary ")]
    kv = dict(x.split("=", 1) for x in summ[0].split()[1:]) if summ else {}
    want = {"connected": "2", "failed": "0", "min": "5", "max": "5", "lost": "0",
            "proto_err": "0", "closed": "2"}
    if kind == "ws":
        want.update({"pings": "4", "ws_close": "2"})
    for k, v in want.items():
        if kv.get(k) != v:
            errors.append("%s: %s=%s, want %s (stderr: %s)"
                          % (kind, k, kv.get(k), v, res.stderr.strip()))
    if kv.get("lat_n") not in ("6", "8"):   # messages with a t= prefix
        errors.append("%s: lat_n=%s" % (kind, kv.get("lat_n")))
    print("%-6s %s" % (kind, summ[0] if summ else out))


def run_get():
    """--get: Content-Length dribbled, chunked (extensions, a trailer, odd
    splits), a 401, a Connection: close answer (loadgen opens again)."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(10)
    port = srv.getsockname()[1]
    answers = [
        [b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", b"hello", b" world"],
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r",
         b"\nabc\r\n", b"10\r\n" + b"p" * 16 + b"\r\n0\r\nX-Trailer: 1\r\n", b"\r\n"],
        [b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 12\r\n\r\nUnauthorized"],
        [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"],
        [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"],
    ]

    def serve():
        try:
            i = 0
            while i < len(answers):
                c, _a = srv.accept()
                c.settimeout(10)
                while i < len(answers):
                    req = read_headers(c)
                    if not req.startswith("GET /x?q=1 HTTP/1.1\r\n") \
                            or "\r\nX-T: 1\r\n" not in req:
                        errors.append("get: request %r" % req)
                    for part in answers[i]:
                        c.sendall(part)
                        time.sleep(0.01)
                    i += 1
                    if b"Connection: close" in answers[i - 1][0]:
                        c.close()
                        break
            time.sleep(0.2)
        except Exception as e:  # noqa: BLE001
            errors.append("get server: %r" % e)

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    res = subprocess.run([LOADGEN, "--get", "http://127.0.0.1:%d/x?q=1" % port,
                          "-n", "1", "--count", "5", "--header", "X-T: 1",
                          "--duration", "10"],
                         capture_output=True, text=True, timeout=20)
    th.join(10)
    srv.close()
    line = [l for l in res.stdout.splitlines() if l.startswith("get ")]
    kv = dict(x.split("=", 1) for x in line[0].split()[1:]) if line else {}
    want = {"sent": "5", "ok": "4", "other": "1", "fail": "0", "reconnects": "1",
            "first_other": "401"}
    for k, v in want.items():
        if kv.get(k) != v:
            errors.append("get: %s=%s, want %s (stderr: %s)"
                          % (k, kv.get(k), v, res.stderr.strip()))
    if res.returncode != 1:
        errors.append("get: exit status %d, want 1 (a 401)" % res.returncode)
    print("%-6s %s" % ("get", line[0] if line else res.stdout))


for k in ("ws", "sse", "sse10"):
    run(k)
run_get()
if errors:
    print("FAIL:\n  " + "\n  ".join(errors))
    sys.exit(1)
print("OK")
