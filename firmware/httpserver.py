# The HTTP server under the web face: microdot (web.py) handles requests;
# this accepts connections and keeps the face bounded and self-healing.
#
#   cap       at most MAX_CONNECTIONS requests are handled at once; beyond
#             that, connections wait in the listen backlog, unaccepted. When
#             nothing was accepted for QUEUE_MS while the cap holds (slow
#             clients hold every slot), the longest-waiting connection is
#             accepted and answered 503 at once, so the backlog drains
#   streams   an event stream (SSE) leaves the request cap for its own
#             (MAX_STREAMS); more streams are refused with 503
#   timeouts  the request (line, headers, body) must arrive within
#             REQUEST_MS of the accept; a handler gets HANDLER_MS (long
#             polls, BMS commands); each write must finish within SEND_MS.
#             A connection past its deadline is closed and its handler
#             cancelled by the reaper (one loop, not a timer per read)
#   headers   at most MAX_HEADER_LINES lines: more is answered 431
#   memory    every response writer is made at start, one per request slot
#             and one per stream slot (a stream keeps the writer of the
#             request that opened it): a request's largest pieces of working
#             memory are never allocated later, when the heap is in pieces
#             (a writer made on demand once failed there and took the server
#             down), and never shared between requests. Should the pool ever
#             be empty, the connection is answered 503 instead
#   always    every accepted connection is answered or closed; a crash of
#             the server closes the listening socket and every connection,
#             so the restarted server can bind again at once
# One line per refused or failed request on the console, never a traceback.
import asyncio
import socket

from jsonout import JsonOut
from ticks import ticks_add, ticks_diff
from wakeup import Wakeup

_core = getattr(asyncio, "core", None)  # MicroPython's asyncio: wait on the listening socket

try:
    from micropython import const
except ImportError:  # CPython (pyright)
    def const(__value):
        return __value

MAX_CONNECTIONS = 2  # one core: more in parallel only adds heap (each ~3 KB at its peak)
MAX_STREAMS = 2
QUEUE_MS = 2000
REQUEST_MS = 5000
HANDLER_MS = 40000  # > the longest long poll (30 s) and a BMS command (17 s)
SEND_MS = 10000
MAX_HEADER_LINES = 40
OUT_BUF = 384  # each connection's response buffer (views.py writes into it)
_BACKLOG = const(8)
_REAP_MS = const(250)
_BUSY = b'HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 2\r\nConnection: close\r\n\r\n{"ok": false, "reason": "busy: too many connections, try again"}'


def _readable(sock):
    # MicroPython's asyncio: park until the socket is readable (what its own
    # Stream.read does).
    yield _core._io_queue.queue_read(sock)  # pyright: ignore


class Conn:
    """One connection: the stream microdot reads and writes, with the
    deadline the reaper enforces."""

    def __init__(self, server, sock, addr, out):
        self.server = server
        self.sock = sock
        self.out = out  # this connection's JsonOut (from the server's pool)
        # MicroPython's asyncio Stream reads and writes (the stub knows
        # only CPython's split reader/writer).
        self.stream = asyncio.StreamReader(sock, {"peername": addr})  # pyright: ignore
        self.deadline = ticks_add(server.clock.ticks_ms(), REQUEST_MS)
        self.task = None
        self.watch = True  # the reaper enforces the deadline (not while a stream idles)
        self.lines = 0
        self.refused = 0  # an HTTP status the request must get (431), or 0
        self.streaming = False
        self.closed = False
        self.timed_out = False

    def get_extra_info(self, name):
        return self.stream.get_extra_info(name)  # pyright: ignore

    async def readline(self):
        self.lines += 1
        if self.lines > MAX_HEADER_LINES:
            self.refused = 431
            return b"\r\n"  # end the headers here; web.py answers 431
        line = await self.stream.readline()
        if len(line) > 1024:
            self.refused = 431
            return b"\r\n"
        return line

    async def read(self, n=-1):
        return await self.stream.read(n)

    async def readexactly(self, n):
        return await self.stream.readexactly(n)

    def handling(self):
        """The request is read: the handler's deadline starts."""
        self.deadline = ticks_add(self.server.clock.ticks_ms(), HANDLER_MS)

    async def awrite(self, data):
        self.deadline = ticks_add(self.server.clock.ticks_ms(), SEND_MS)
        self.watch = True
        self.stream.write(data)  # pyright: ignore
        await self.stream.drain()  # pyright: ignore
        if self.streaming:
            self.watch = False  # an idle stream waits for news as long as it likes

    async def aclose(self):
        if self.refused:
            self._discard_input()
        self.close()

    def _discard_input(self):
        # A request refused before it was read whole: read (a bounded part
        # of) what the client still sends, so closing does not reset the
        # connection and lose the answer.
        buf = bytearray(256)
        for _ in range(16):
            try:
                n = self.sock.readinto(buf)
            except OSError:
                return
            if not n:
                return

    def close(self):
        if self.out is not None:
            self.server.writers.append(self.out)  # back to the pool
            self.out = None
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()  # (MicroPython's Stream.close() does not close the socket)
            except OSError:
                pass

    def stream_mode(self):
        """This connection becomes a long-lived event stream: it leaves the
        request cap; False when MAX_STREAMS are open already."""
        server = self.server
        if server.streams >= MAX_STREAMS:
            return False
        self.streaming = True
        server.streams += 1
        server.active -= 1
        server.slot.fire()
        return True


class HttpServer:
    def __init__(self, app, host, port, clock):
        self.app = app  # microdot.Microdot
        self.host = host
        self.port = port
        self.clock = clock  # .ticks_ms()
        self.beat = None  # callable(): the supervisor's heartbeat
        self.sock = None
        self.conns = []
        # One writer per request slot and per stream slot, made now.
        self.writers = [JsonOut(OUT_BUF) for _ in range(MAX_CONNECTIONS + MAX_STREAMS)]
        self.active = 0  # requests being handled (the cap)
        self.streams = 0  # open event streams
        self.slot = Wakeup()  # fired when a connection ends
        self._accepted_ms = 0  # ticks of the last accept (or of the cap filling up)
        # Figures for /api/health.
        self.accepted = 0
        self.busy = 0  # answered 503 at the cap
        self.timeouts = 0
        self.failed = 0  # handlers that raised

    async def run(self):
        sock = socket.socket()
        self.sock = sock
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(socket.getaddrinfo(self.host, self.port)[0][-1])
        sock.listen(_BACKLOG)
        sock.setblocking(False)
        reaper = asyncio.create_task(self._reaper())
        try:
            while True:
                if self.active >= MAX_CONNECTIONS:
                    await self.slot.within(_REAP_MS)
                    continue
                await _readable(sock)  # pyright: ignore
                try:
                    s2, addr = sock.accept()
                except OSError:
                    continue
                if self.writers:
                    self._start(s2, addr)
                else:
                    self._refuse(s2)
        finally:
            reaper.cancel()
            self.close()

    def _start(self, s2, addr):
        s2.setblocking(False)
        conn = Conn(self, s2, addr, self.writers.pop())
        self._accepted_ms = self.clock.ticks_ms()
        self.accepted += 1
        self.active += 1
        self.conns.append(conn)
        conn.task = asyncio.create_task(self._serve(conn))

    async def _serve(self, conn):
        try:
            await self.app.handle_request(conn, conn)
        except asyncio.CancelledError:
            pass  # the reaper ended it
        except Exception as e:  # one line, never a traceback
            self.failed += 1
            print("http: request failed:", type(e).__name__, e)
        finally:
            conn.close()
            if conn in self.conns:  # (close() already let go of them all)
                self.conns.remove(conn)
                if conn.streaming:
                    self.streams -= 1
                else:
                    self.active -= 1
            self.slot.fire()

    async def _reaper(self):
        while True:
            now = self.clock.ticks_ms()
            for conn in self.conns:
                if not conn.closed and conn.watch and ticks_diff(now, conn.deadline) > 0:
                    conn.timed_out = True
                    self.timeouts += 1
                    conn.close()
                    if conn.task is not None:
                        conn.task.cancel()
            # At the cap with no accept for QUEUE_MS: whoever waits in the
            # backlog has waited that long (slow clients hold every slot).
            if self.active >= MAX_CONNECTIONS and ticks_diff(now, self._accepted_ms) >= QUEUE_MS:
                if self._refuse_one():
                    self._accepted_ms = now
            if self.beat is not None:
                self.beat()
            await asyncio.sleep_ms(_REAP_MS)

    def _refuse_one(self):
        # The cap has held too long: answer the longest-waiting connection
        # 503 without reading it, so the backlog drains.
        try:
            s2, _addr = self.sock.accept()  # pyright: ignore
        except OSError:
            return False  # nobody waiting
        self._refuse(s2)
        return True

    def _refuse(self, s2):
        # 503 at once, without reading the request.
        self.busy += 1
        try:
            s2.setblocking(True)
            s2.settimeout(0.2)
            s2.send(_BUSY)
        except OSError:
            pass
        try:
            s2.close()
        except OSError:
            pass

    def close(self):
        """Release everything (a crash or a stop): every connection, then
        the listening socket."""
        for conn in self.conns:
            conn.close()
            if conn.task is not None:
                conn.task.cancel()
        self.conns = []
        self.active = 0
        self.streams = 0
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
