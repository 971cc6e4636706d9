# One NTP exchange over a non-blocking UDP socket, for the wifi task, which
# creates it when lib/ntp.py's schedule says the clock is due and steps it
# on every pass (never awaited, never blocking); this module is imported
# only for the exchange and dropped after it (twice a day).
#
# The server's name is looked up with our own DNS query to the network's DNS
# server (socket.getaddrinfo() would block the interpreter on the ESP32
# until lwIP's resolver gives up), then one request goes out; each step has
# ntp.TIMEOUT_MS. lib/ntp.py checks the reply. The clock is set with
# hw.set_clock(unix_s); local time is the business of the rules and the ACC
# schedule (tz_offset_min).
import os
import socket

import dnswire
import ntp
from ticks import ticks_add, ticks_diff

try:
    from micropython import const
except ImportError:  # CPython (pyright)
    def const(__value):
        return __value

_RESOLVING = const(1)
_ASKING = const(2)


def is_ip(host):
    parts = host.split(".")
    if len(parts) != 4:
        return False
    for p in parts:
        if not p.isdigit() or int(p) > 255:
            return False
    return True


class NtpExchange:
    def __init__(self, hw, host, port, dns_server, now):
        self.hw = hw
        self.port = port
        self.address = host if is_ip(host) else None  # the server's IP, once known
        self.result = 0  # 0 running, 1 the clock is set, ntp.E_* failed
        self.unix = 0  # what the server said
        self._buf = bytearray(dnswire.MAX)
        self._nonce = bytearray(8)
        self._qid = 0
        self._sock = None
        self._phase = 0
        self._deadline = 0
        if self.address is not None:
            self._ask(now)
        elif not dns_server or not is_ip(dns_server):
            self._end(ntp.E_NO_ADDRESS)
        else:
            self._resolve(host, dns_server, now)

    def step(self, now):
        """One look at the socket; self.result says how it ended."""
        if self.result:
            return self.result
        buf = self._buf
        try:
            n = self._sock.readinto(buf)  # pyright: ignore  (None: nothing yet)
        except OSError:
            n = None
        if n:
            if self._phase == _RESOLVING:
                ip = bytearray(4)
                r = dnswire.parse_a(buf, n, self._qid, ip)
                if r == 1:
                    self.address = "%d.%d.%d.%d" % (ip[0], ip[1], ip[2], ip[3])
                    self._ask(now)
                elif r != dnswire.E_NOT_OURS:  # (a stray reply: keep waiting)
                    self._end(ntp.E_NO_ADDRESS)
                return self.result
            unix = ntp.parse(buf, n, self._nonce)
            if unix > 0:
                self.hw.set_clock(unix)
                self.unix = unix
                self._end(1)
            elif unix != ntp.E_NOT_OURS:
                self._end(unix)
            return self.result
        if ticks_diff(now, self._deadline) >= 0:
            self._end(ntp.E_NO_ADDRESS if self._phase == _RESOLVING else ntp.E_TIMEOUT)
        return self.result

    def _resolve(self, host, dns_server, now):
        r = os.urandom(2)
        self._qid = r[0] << 8 | r[1]
        try:
            n = dnswire.query(self._buf, self._qid, host)
            self._send(dns_server, dnswire.PORT, n)
        except (OSError, ValueError):
            self._end(ntp.E_SOCKET)
            return
        self._phase = _RESOLVING
        self._deadline = ticks_add(now, ntp.TIMEOUT_MS)

    def _ask(self, now):
        nonce = self._nonce
        nonce[:] = os.urandom(8)
        ntp.request(self._buf, nonce)
        try:
            self._send(self.address, self.port, ntp.SIZE)
        except OSError:
            self._end(ntp.E_SOCKET)
            return
        self._phase = _ASKING
        self._deadline = ticks_add(now, ntp.TIMEOUT_MS)

    def _send(self, ip, port, n):
        # A connected UDP socket: only its peer's datagrams come in.
        self.close()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock = s
        s.setblocking(False)
        s.connect(socket.getaddrinfo(ip, port)[0][-1])  # an IP literal: no lookup
        s.send(memoryview(self._buf)[:n])

    def _end(self, result):
        self.result = result
        self.close()

    def close(self):
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None
