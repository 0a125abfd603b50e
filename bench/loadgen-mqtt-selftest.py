#!/usr/bin/env python3
"""Self-test of loadgen's mqtt-ws mode against a scripted server.

    python3 bench/loadgen-mqtt-selftest.py bench/loadgen

The server checks the handshake's "Sec-WebSocket-Protocol: mqtt" and the
CONNECT and SUBSCRIBE packets (3.1.1, clean session, keepalive, filter,
QoS 0), answers CONNACK and SUBACK in one frame, then writes PUBLISH
packets awkwardly but validly: two in one frame, one split over three
frames (fragmented message and separate messages), a QoS 1 one (packet
id), one with a 2-byte remaining length, a PINGRESP between them, the
bytes dribbled one by one. Then the same against a server that refuses the
subscription (SUBACK 0x80): the subscriber must count as failed. Loopback
only, bounded in time.
"""
import base64
import hashlib
import socket
import struct
import subprocess
import sys
import threading
import time

LOADGEN = sys.argv[1] if len(sys.argv) > 1 else "./loadgen"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
errors = []


def frame(op, payload, fin=True):
    b0 = (0x80 if fin else 0) | op
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", b0, n) + payload
    return struct.pack("!BBH", b0, 126, n) + payload


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def publish(topic, payload, qos=0, pid=7):
    body = struct.pack("!H", len(topic)) + topic
    if qos:
        body += struct.pack("!H", pid)
    body += payload
    return bytes([0x30 | (qos << 1)]) + varint(len(body)) + body


def read_headers(c):
    data = b""
    while b"\r\n\r\n" not in data:
        d = c.recv(4096)
        if not d:
            raise EOFError
        data += d
    return data.decode()


def read_client_frame(c, buf):
    while True:
        if len(buf) >= 2:
            n = buf[1] & 0x7F
            off = 2
            if n == 126:
                n, off = struct.unpack("!H", buf[2:4])[0], 4
            if not buf[1] & 0x80:
                errors.append("client frame not masked")
            if len(buf) >= off + 4 + n:
                m = buf[off:off + 4]
                p = bytes(x ^ m[i % 4] for i, x in enumerate(buf[off + 4:off + 4 + n]))
                return buf[0] & 0x0F, p, buf[off + 4 + n:]
        d = c.recv(4096)
        if not d:
            raise EOFError
        buf += d


def serve(c, refuse):
    req = read_headers(c)
    lines = req.split("\r\n")
    key = [l.split(":", 1)[1].strip() for l in lines
           if l.lower().startswith("sec-websocket-key:")][0]
    proto = [l.split(":", 1)[1].strip() for l in lines
             if l.lower().startswith("sec-websocket-protocol:")]
    if proto != ["mqtt"]:
        errors.append("subprotocol: %r" % proto)
    acc = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    c.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Protocol: mqtt\r\n"
               "Sec-WebSocket-Accept: %s\r\n\r\n" % acc).encode())
    buf = b""
    op, p, buf = read_client_frame(c, buf)
    # CONNECT: 10 len 00 04 MQTT 04 02 00 00 <client id>
    if op != 2 or p[0] != 0x10 or p[2:10] != b"\x00\x04MQTT\x04\x02" or p[10:12] != b"\x00\x00":
        errors.append("CONNECT: %r" % p)
    op, p, buf = read_client_frame(c, buf)
    want = b"\x82" + varint(2 + 2 + 7 + 1) + b"\x00\x01\x00\x07bench/t\x00"
    if op != 2 or p != want:
        errors.append("SUBSCRIBE: %r, want %r" % (p, want))
    if refuse:
        c.sendall(frame(2, b"\x20\x02\x00\x00" + b"\x90\x03\x00\x01\x80"))
        time.sleep(0.5)
        c.close()
        return
    t = time.time_ns()
    p1 = publish(b"bench/t", b"t=%d one" % t)
    p2 = publish(b"bench/t", b"t=%d two" % t)
    p3 = publish(b"bench/t", b"t=%d three " % t + b"x" * 40)
    p4 = publish(b"bench/t", b"t=%d four" % t, qos=1)
    p5 = publish(b"bench/t", b"t=%d five " % t + b"y" * 300)   # 2-byte length
    out = frame(2, b"\x20\x02\x00\x00" + b"\x90\x03\x00\x01\x00")
    out += frame(2, p1 + p2)                                   # 1, 2
    out += frame(2, p3[:3], fin=False) + frame(0, p3[3:20])    # 3 over a
    out += frame(2, p3[20:])                                   # message + 1
    out += frame(2, b"\xd0\x00")                               # PINGRESP
    out += frame(2, p4 + p5[:1]) + frame(2, p5[1:2]) + frame(2, p5[2:])
    for i in range(0, 120):
        c.sendall(out[i:i + 1])
    c.sendall(out[120:])
    time.sleep(1.5)
    c.close()


def run(refuse):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(10)
    port = srv.getsockname()[1]

    def one(c):
        try:
            serve(c, refuse)
        except Exception as e:  # noqa: BLE001
            errors.append("server: %r" % (e,))

    def accept_loop():
        ths = []
        try:
            for _ in range(2):
                c, _a = srv.accept()
                c.settimeout(10)
                t = threading.Thread(target=one, args=(c,), daemon=True)
                t.start()
                ths.append(t)
        except Exception as e:  # noqa: BLE001
            errors.append("accept: %r" % (e,))
        for t in ths:
            t.join(10)

    th = threading.Thread(target=accept_loop, daemon=True)
    th.start()
    cmd = [LOADGEN, "--mode", "mqtt-ws", "--url", "ws://127.0.0.1:%d/mqtt" % port,
           "-n", "2", "--expect", "5", "--latency", "--idle", "--duration", "1.2",
           "--quiet"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    th.join(10)
    srv.close()
    summ = [l for l in res.stdout.splitlines() if l.startswith("summary ")]
    kv = dict(x.split("=", 1) for x in summ[0].split()[1:]) if summ else {}
    if refuse:
        want = {"connected": "0", "failed": "2"}
    else:
        want = {"connected": "2", "failed": "0", "min": "5", "max": "5",
                "lost": "0", "proto_err": "0", "lat_n": "10", "mqtt_other": "0"}
    for k, v in want.items():
        if kv.get(k) != v:
            errors.append("%s: %s=%s, want %s" % ("refuse" if refuse else "ok", k, kv.get(k), v))
    print("%-6s %s" % ("refuse" if refuse else "ok", summ[0] if summ else res.stdout))


run(False)
run(True)
if errors:
    print("FAIL:\n  " + "\n  ".join(errors))
    sys.exit(1)
print("OK")
