# The simulator's I/O: the BMS's TTL port as a TCP byte stream and optionally
# as a pty, the control port (line protocol, several clients), the ready
# file, and the tick loop that advances the device and paces its output.
#
# The TCP port serves one client at a time, like a TTL port has one bridge: a
# second client (say `antbms monitor` while `make run`'s firmware holds the
# port) is refused with BUSY, one text line, and closed, so it can say so
# instead of fighting the first one for the port. A client that is just
# going away is waited for briefly (_HANDOVER_S), so a reconnect is served.
import asyncio
import json
import os
import signal
import sys
import time
import tty

from sim import control

_TICK_S = 0.005  # output pacing granularity: bytes leave in ~5 ms chunks
_READ_SIZE = 4096
_MAX_CONTROL_LINE = 4096
_MAX_TCP_BACKLOG = 1 << 20  # a client that stops reading is cut off after this
_HANDOVER_S = 0.3  # how long a second client waits for the first to leave
# Sent to a refused client. No byte of it can start an ANT frame (no 0x5A
# 'Z', no 0x7E '~'), so a bridge reading it sees noise, never a frame.
BUSY = b"bmssim: busy: the BMS port already has a client (one at a time)\r\n"


def parse_address(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError("address must be HOST:PORT, not %r" % text)
    return host, int(port)


class Server:
    def __init__(self, device, tcp, control_address, pty_path=None, ready_file=None, quiet=False):
        self.device = device
        self.tcp = tcp
        self.control_address = control_address
        self.pty_path = pty_path
        self.ready_file = ready_file
        self.quiet = quiet
        self._bridge = None  # the StreamWriter of the current TCP client
        self._pty_master = None
        self._pty_slave = None
        self._stop = None
        self.pty_dropped = 0

    def log(self, message):
        if not self.quiet:
            sys.stderr.write("bmssim: %s\n" % message)
            sys.stderr.flush()

    # -- the BMS port over TCP ---------------------------------------------

    async def _on_bridge(self, reader, writer):
        waited = 0.0
        try:
            while self._bridge is not None and waited < _HANDOVER_S:
                await asyncio.sleep(0.01)
                waited += 0.01
        except asyncio.CancelledError:  # shutting down (see below)
            writer.close()
            return
        if self._bridge is not None:
            self.log("refused a second client %s: the port is in use" % (writer.get_extra_info("peername"),))
            try:
                writer.write(BUSY)
                await writer.drain()
            except (ConnectionError, OSError):
                pass
            writer.close()
            return
        self._bridge = writer
        sock = writer.get_extra_info("socket")
        if sock is not None:
            import socket

            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.log("bridge connected from %s" % (writer.get_extra_info("peername"),))
        try:
            while True:
                data = await reader.read(_READ_SIZE)
                if not data:
                    break
                if self._bridge is writer:
                    self._receive(data)
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            # Shutting down. Ending normally also keeps Python 3.11's stream
            # callback from printing a traceback for the cancelled handler.
            pass
        finally:
            if self._bridge is writer:
                self._bridge = None
                self.log("bridge disconnected")
            writer.close()

    # -- the BMS port as a pty -------------------------------------------------

    def _open_pty(self):
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        name = os.ttyname(slave)
        if os.path.islink(self.pty_path):
            os.unlink(self.pty_path)  # a stale link from an earlier run
        os.symlink(name, self.pty_path)
        # Keeping the slave open here means the master never sees EIO when a
        # client closes the port.
        self._pty_master = master
        self._pty_slave = slave
        asyncio.get_running_loop().add_reader(master, self._on_pty)
        self.log("pty %s -> %s" % (self.pty_path, name))

    def _on_pty(self):
        try:
            data = os.read(self._pty_master, _READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        if data:
            self._receive(data)

    def _receive(self, data):
        try:
            self.device.receive(data, time.monotonic())
        except Exception as e:  # never let one bad input take the port down
            self.log("input failed: %r" % (e,))

    def _close_pty(self):
        if self._pty_master is None:
            return
        asyncio.get_running_loop().remove_reader(self._pty_master)
        os.close(self._pty_master)
        os.close(self._pty_slave)
        self._pty_master = None
        try:
            if os.path.islink(self.pty_path):
                os.unlink(self.pty_path)
        except OSError:
            pass

    # -- output -------------------------------------------------------------------

    def _emit(self, data):
        writer = self._bridge
        if writer is not None and not writer.is_closing():
            if writer.transport.get_write_buffer_size() > _MAX_TCP_BACKLOG:
                self.log("bridge stopped reading: disconnecting it")
                writer.close()
                self._bridge = None
            else:
                writer.write(data)
        if self._pty_master is not None:
            try:
                os.write(self._pty_master, data)
            except OSError:
                self.pty_dropped += len(data)  # nobody reads and the pty is full

    async def _ticker(self):
        dev = self.device
        while True:
            now = time.monotonic()
            try:
                dev.tick(now)
                out = dev.pump(now)
            except Exception as e:  # a model bug must not stop the port
                self.log("tick failed: %r" % (e,))
                out = b""
            if out:
                self._emit(out)
            await asyncio.sleep(_TICK_S)

    # -- control port ---------------------------------------------------------------

    async def _on_control(self, reader, writer):
        try:
            while True:
                try:
                    line = await reader.readline()
                except (asyncio.LimitOverrunError, ValueError):
                    writer.write(b'{"ok": false, "error": "line too long"}\n')
                    break
                if not line:
                    break
                text = line.decode("utf-8", "replace").strip()
                if not text:
                    continue
                try:
                    reply = control.execute(self.device, text, time.monotonic())
                except Exception as e:
                    reply = {"ok": False, "error": "internal error: %r" % (e,)}
                if text.split()[0].lower() != "state":
                    self.log("control: %s -> %s" % (_redact(text), "ok" if reply["ok"] else reply["error"]))
                writer.write((json.dumps(reply) + "\n").encode())
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:  # shutting down (see _on_bridge)
            pass
        finally:
            writer.close()

    # -- life cycle -------------------------------------------------------------------

    def _write_ready(self, tcp_port, control_port):
        info = {"tcp": tcp_port, "control": control_port, "pty": self.pty_path, "pid": os.getpid()}
        if self.ready_file:
            tmp = self.ready_file + ".tmp"
            with open(tmp, "w") as f:
                json.dump(info, f)
            os.replace(tmp, self.ready_file)
        print("bmssim ready tcp=%d control=%d" % (tcp_port, control_port), flush=True)

    async def run(self):
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stop.set)
        bridge = await asyncio.start_server(self._on_bridge, *self.tcp)
        ctl = await asyncio.start_server(self._on_control, *self.control_address, limit=_MAX_CONTROL_LINE)
        ticker = None
        try:
            if self.pty_path:
                self._open_pty()
            ticker = asyncio.ensure_future(self._ticker())
            self._write_ready(bridge.sockets[0].getsockname()[1], ctl.sockets[0].getsockname()[1])
            await self._stop.wait()
            self.log("stopping")
        finally:
            if ticker is not None:
                ticker.cancel()
            bridge.close()
            ctl.close()
            if self._bridge is not None:
                self._bridge.close()
            self._close_pty()


def _redact(text):
    words = text.split()
    if words and words[0].lower() == "password" and len(words) > 1 and words[1] != "none":
        return "password ***"
    return text
