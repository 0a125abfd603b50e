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
import os
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from selftest_ws import (LoopbackServer, accept_key, frame,  # noqa: E402
                         header_values, read_headers)
from selftest_ws import read_client_frame as _read_frame  # noqa: E402

LOADGEN = sys.argv[1] if len(sys.argv) > 1 else "./loadgen"
errors = []


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


def read_client_frame(c, buf):
    return _read_frame(c, buf, errors)


def serve(c, refuse):
    req = read_headers(c)
    key = header_values(req, "sec-websocket-key")[0]
    proto = header_values(req, "sec-websocket-protocol")
    if proto != ["mqtt"]:
        errors.append("subprotocol: %r" % proto)
    acc = accept_key(key)
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
    server = LoopbackServer(lambda c: serve(c, refuse), errors,
                            "refuse" if refuse else "ok")
    port = server.port
    cmd = [LOADGEN, "--mode", "mqtt-ws", "--url", "ws://127.0.0.1:%d/mqtt" % port,
           "-n", "2", "--expect", "5", "--latency", "--idle", "--duration", "1.2",
           "--quiet"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    server.join()
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
