# The captive portal's DNS responder: while the set-up access point is up,
# every name a phone looks up resolves to the bridge (lib/dnswire.py), so
# its connectivity check lands on the set-up page. UDP port 53 on the device
# (hw.Wifi.dns_address(); the host runtime takes a configurable port).
#
# Bounded: one reply buffer, made when set-up mode starts and dropped with
# the responder; at most 512 bytes of a packet are read; malformed packets
# and anything that is not a standard query are dropped and counted; at most
# _BURST packets are answered before the loop yields.
import asyncio
import socket

import dnswire

try:
    from micropython import const
except ImportError:  # CPython (pyright)
    def const(__value):
        return __value

_core = getattr(asyncio, "core", None)  # MicroPython's asyncio: wait on the socket
_BURST = const(8)


def _readable(sock):
    yield _core._io_queue.queue_read(sock)  # pyright: ignore


class DnsResponder:
    def __init__(self, bind, ip):
        self.bind = bind  # (host, port)
        self.ip4 = bytes([int(x) for x in ip.split(".")])
        self.answered = 0
        self.dropped = 0
        self.error = None  # why it is not answering (bind failed)
        self._out = bytearray(dnswire.REPLY_MAX)
        self._sock = None

    async def run(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock = sock
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(socket.getaddrinfo(self.bind[0], self.bind[1])[0][-1])
        except OSError as e:
            self.error = "cannot listen on UDP port " + str(self.bind[1]) + ": " + str(e)
            print("dns:", self.error)
            self.close()
            return
        sock.setblocking(False)
        out = self._out
        try:
            while True:
                await _readable(sock)  # pyright: ignore
                for _ in range(_BURST):
                    try:
                        query, addr = sock.recvfrom(dnswire.MAX)
                    except OSError:
                        break  # nothing more waiting
                    n = dnswire.answer(query, len(query), out, self.ip4)
                    if n < 0:
                        self.dropped += 1
                        continue
                    try:
                        sock.sendto(memoryview(out)[:n], addr)
                        self.answered += 1
                    except OSError:
                        self.dropped += 1
        finally:
            self.close()

    def close(self):
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    def describe(self):
        return {"port": self.bind[1], "answered": self.answered, "dropped": self.dropped, "error": self.error}
