"""The WebSocket server side shared by loadgen's self-tests
(loadgen-selftest.py, loadgen-mqtt-selftest.py): frames written, client
frames read and unmasked, the handshake's headers and accept key.
"""
import base64
import hashlib
import socket
import struct
import threading

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(op, payload, fin=True, mask=None):
    b0 = (0x80 if fin else 0) | op
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
    if mask:
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        return hdr + mask + payload
    return hdr + payload


def read_headers(c):
    data = b""
    while b"\r\n\r\n" not in data:
        d = c.recv(4096)
        if not d:
            raise EOFError
        data += d
    return data.decode()


def read_client_frame(c, buf, errors):
    """(opcode, unmasked payload, what is left of buf); an unmasked client
    frame is an error (RFC 6455 5.1)."""
    while True:
        if len(buf) >= 2:
            n = buf[1] & 0x7F
            off = 2
            if n == 126:
                n, off = struct.unpack("!H", buf[2:4])[0], 4
            elif n == 127:
                n, off = struct.unpack("!Q", buf[2:10])[0], 10
            if not buf[1] & 0x80:
                errors.append("client frame not masked")
            if len(buf) >= off + 4 + n:
                m = buf[off:off + 4]
                p = bytes(x ^ m[i % 4]
                          for i, x in enumerate(buf[off + 4:off + 4 + n]))
                return buf[0] & 0x0F, p, buf[off + 4 + n:]
        d = c.recv(4096)
        if not d:
            raise EOFError
        buf += d


def header_values(req, name):
    name = name.lower() + ":"
    return [l.split(":", 1)[1].strip() for l in req.split("\r\n")
            if l.lower().startswith(name)]


def accept_key(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


class LoopbackServer:
    """A listening socket on 127.0.0.1 that takes n clients and runs
    serve(conn) for each in its own thread, exceptions going to errors
    (those in expected are the caller's: it handles them in serve).
    join() waits for them all and closes the socket."""

    def __init__(self, serve, errors, label, n=2):
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.srv.settimeout(10)
        self.port = self.srv.getsockname()[1]
        self.serve, self.errors, self.label, self.n = serve, errors, label, n
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _one(self, c):
        try:
            self.serve(c)
        except Exception as e:  # noqa: BLE001
            self.errors.append("%s server: %r" % (self.label, e))

    def _accept(self):
        ths = []
        try:
            for _ in range(self.n):
                c, _a = self.srv.accept()
                c.settimeout(10)
                t = threading.Thread(target=self._one, args=(c,), daemon=True)
                t.start()
                ths.append(t)
        except Exception as e:  # noqa: BLE001
            self.errors.append("%s accept: %r" % (self.label, e))
        for t in ths:
            t.join(10)

    def join(self):
        self.thread.join(10)
        self.srv.close()
