# The host runtime's hardware layer: the same API as firmware/hw.py, run by
# the MicroPython unix port against the BMS simulator (tools/bmssim.py), so
# the firmware above it runs unchanged on a PC.
#
#   UART     a non-blocking TCP connection to the simulator's BMS port
#            (ANTBRIDGE_UART=tcp:HOST:PORT), reconnecting when it drops;
#            set_baud() also tells the simulator (`bridge_baud N`), so a
#            mismatch garbles the bytes as on a real wire
#   pins     an in-memory table (pins()); ACC and the supply enable are
#            forwarded to the simulator's control port (`acc 0/1`,
#            `supply 0/1`, ANTBRIDGE_SIM_CONTROL=HOST:PORT). The simulator's
#            `vcc` is the user's fault (a cut VCC wire): the bridge's supply
#            never clears it
#   storage  a directory (ANTBRIDGE_DATA)
#   clock    the PC's clock (always set), as device seconds since 2024
#   reset()  exits the process with EXIT_RESET; the next start reads the
#            reset cause it left behind (like machine.reset_cause())
#   watchdog a stand-in that counts feeds (the process has no hardware WDT)
import asyncio
import json
import os
import socket
import sys
import time

import boardinfo
from ticks import ticks_add, ticks_diff

_core = getattr(asyncio, "core", None)  # MicroPython's asyncio internals: its IO queue
DEFAULT_BOARD = "host"  # boards/host.json
EXIT_RESET = 75
_TICKS_MASK = 0x3FFFFFFF
_RECONNECT_MS = 300

_pins = {}  # name -> 1 asserted / 0 not
_FORWARDED = {"acc": "acc", "supply_enable": "supply"}


def _env(name, default=None):
    v = os.getenv(name)
    return v if v else default


def storage_root():
    root = _env("ANTBRIDGE_DATA", "/tmp/antbridge-data")
    if not root.endswith("/"):
        root += "/"
    return root


def ticks_ms():
    # The ESP32's time.ticks_ms() wraps at 2**30; make the host do the same.
    return time.ticks_ms() & _TICKS_MASK  # pyright: ignore


_EPOCH_2024 = 1704067200  # 2024-01-01 00:00 UTC in Unix time
_clock_base_s = 0  # device seconds at ticks _clock_base_ticks
_clock_base_ticks = 0
_clock_offset_s = 0  # set_clock(): what NTP said minus the PC's clock
_CLOCK_REBASE_MS = 3600000  # well inside ticks_diff's 2**29 ms range


def clock_s():
    """Device seconds since 2024-01-01 UTC (see firmware/hw.py). time.time()
    is a float here (and Unix time > 2**30): reading it on every rules pass
    would allocate, so it is read once an hour and the ticks count on."""
    global _clock_base_s, _clock_base_ticks
    now = ticks_ms()
    d = ticks_diff(now, _clock_base_ticks)
    if _clock_base_s == 0 or d < 0 or d >= _CLOCK_REBASE_MS:
        _clock_base_s = int(time.time()) - _EPOCH_2024 + _clock_offset_s
        _clock_base_ticks = now
        d = 0
    return _clock_base_s + d // 1000


def set_clock(unix_s):
    global _clock_offset_s, _clock_base_s
    _clock_offset_s = unix_s - int(time.time())
    _clock_base_s = 0  # rebase at the next read


def _cause_file():
    return storage_root() + ".reset_cause"


def reset(cause=5):
    """Exit with EXIT_RESET; the next start reports `cause` (5: soft reset,
    3: watchdog, 7: firmware crash)."""
    try:
        with open(_cause_file(), "w") as f:
            f.write(str(cause))
    except OSError:
        pass
    print("hw: reset requested, exiting with", EXIT_RESET)
    sys.exit(EXIT_RESET)


def reset_cause():
    """What ended the previous run: what reset() left, else power-on (1)."""
    try:
        with open(_cause_file()) as f:
            cause = int(f.read())
        os.remove(_cause_file())
        return cause
    except (OSError, ValueError):
        return int(_env("ANTBRIDGE_RESET_CAUSE", "1"))


class Watchdog:
    """Stands in for machine.WDT: counts feeds (there is no hardware to
    reset the process)."""

    def __init__(self, timeout_ms):
        self.timeout_ms = timeout_ms
        self.feeds = 0

    def feed(self):
        self.feeds += 1


def http_host():
    return _env("ANTBRIDGE_HTTP_HOST", "127.0.0.1")


def http_port(configured):
    """The runner's port (ANTBRIDGE_HTTP_PORT) wins over settings.json."""
    port = _env("ANTBRIDGE_HTTP_PORT")
    return int(port) if port else configured


def _addr(spec):
    host, port = spec.rsplit(":", 1)
    return socket.getaddrinfo(host, int(port))[0][-1]


# -- the simulator's control port --------------------------------------------------


class _Control:
    """A line client for the simulator's control port (blocking, short
    timeout: the simulator is local and answers at once)."""

    def __init__(self, spec):
        self._spec = spec
        self._sock = None

    def send(self, line):
        if not self._spec:
            return None
        for _ in range(2):  # one reconnect if the connection went stale
            try:
                if self._sock is None:
                    self._sock = socket.socket()  # kept first: _close() releases it if connect fails
                    self._sock.settimeout(2)
                    self._sock.connect(_addr(self._spec))
                self._sock.write((line + "\n").encode())
                reply = self._sock.readline()
                if reply:
                    return json.loads(reply)
            except OSError as e:
                print("hw: simulator control:", line, "failed:", e)
            self._close()
        return None

    def _close(self):
        if self._sock is not None:
            _close(self._sock)
            self._sock = None


def _close(sock):
    try:
        sock.close()
    except OSError:
        pass


_control = _Control(_env("ANTBRIDGE_SIM_CONTROL"))


def control(line):
    """Send one line to the simulator's control port (host only)."""
    return _control.send(line)


# -- board and pins ---------------------------------------------------------------------


def board_name():
    return boardinfo.named_in_settings(storage_root() + "settings.json", DEFAULT_BOARD)


def board():
    """boards/<name>.json (ANTBRIDGE_BOARDS dir), validated by lib/board.py;
    the default is boards/host.json."""
    return boardinfo.current(_env("ANTBRIDGE_BOARDS", "boards"), storage_root() + "settings.json", DEFAULT_BOARD)


def pins():
    """The in-memory pin table: name -> 1 (asserted) / 0."""
    return _pins


class Output:
    def __init__(self, name):
        spec = board().outputs.get(name)
        if spec is None:
            raise ValueError("board has no output " + name)
        self.name = name
        self.set(spec.boot)

    def set(self, on):
        on = 1 if on else 0
        changed = _pins.get(self.name) != on
        _pins[self.name] = on
        fwd = _FORWARDED.get(self.name)
        if fwd is not None and changed:
            control(fwd + " " + str(on))

    def value(self):
        return _pins[self.name]


# Sense inputs of a DO (do1_sense..) read their own output, like a relay's
# auxiliary contact that follows its coil; ANTBRIDGE_SENSE_STUCK="do2" makes
# that output's sense read "not asserted" whatever the output does (a relay
# that does not pull in), to exercise the sense alarm.
_STUCK = _env("ANTBRIDGE_SENSE_STUCK", "").split(",")


class Input:
    """Reads the pin table; tests or tools set pins()[name] (1 = asserted)."""

    def __init__(self, name):
        if name not in board().inputs:
            raise ValueError("board has no input " + name)
        self.name = name
        _pins.setdefault(name, 0)
        self._follows = None
        if name.endswith("_sense"):
            out = name[:-6]
            self._follows = None if out in _STUCK else out

    def value(self):
        if self._follows is not None:
            return _pins.get(self._follows, 0)
        return _pins[self.name]


def boot_outputs():
    for name in board().outputs:
        Output(name)


# -- UART over TCP ------------------------------------------------------------------------


class InjectedFault(Exception):
    pass


class Uart:
    def __init__(self, board_info, baud):
        if _env("ANTBRIDGE_CRASH_AT_BOOT"):  # tests of safe mode: a firmware that dies at start
            raise InjectedFault("injected boot crash (ANTBRIDGE_CRASH_AT_BOOT)")
        self._spec = _env("ANTBRIDGE_UART", "tcp:127.0.0.1:7000")[4:]
        # Tests of the supervisor: raise once from the Nth readinto().
        self._fail_at = int(_env("ANTBRIDGE_UART_FAIL_AT", "0"))
        self._reads = 0
        self._sock = None
        self._next_try = -1  # ticks of the next connection attempt, -1 = now
        self.baud = 0
        self.connects = 0
        self.set_baud(baud)

    def set_baud(self, baud):
        if baud != self.baud:
            self.baud = baud
            control("bridge_baud " + str(baud))
            self._discard_input()

    def _discard_input(self):
        # A real UART re-initialised at a new rate loses what it held; here
        # those bytes still sit in the socket, sent before the switch.
        s = self._sock
        if s is None:
            return
        scratch = bytearray(64)
        try:
            while s.readinto(scratch):
                pass
        except OSError:
            self._drop()

    def _connect(self):
        now = ticks_ms()
        if self._next_try >= 0 and ticks_diff(now, self._next_try) < 0:
            return None  # retry later
        self._next_try = ticks_add(now, _RECONNECT_MS)
        s = socket.socket()
        try:
            s.settimeout(1)
            s.connect(_addr(self._spec))
            s.setblocking(False)
        except OSError as e:
            _close(s)  # one descriptor per attempt would leak while the simulator is down
            if self.connects == 0:
                print("hw: uart connect to", self._spec, "failed:", e)
            return None
        self._sock = s
        self.connects += 1
        return s

    def _drop(self):
        if self._sock is not None:
            _close(self._sock)
            self._sock = None

    def close(self):
        self._drop()

    def write(self, buf):
        s = self._sock or self._connect()
        if s is None:
            return  # like a UART with nothing attached: the bytes are gone
        try:
            s.write(buf)
        except OSError:
            self._drop()

    def wait_rx(self):
        """`await uart.wait_rx()`: until bytes arrive (or the simulator is
        unreachable for a moment: then after _RECONNECT_MS). A generator,
        as asyncio's own stream reads are."""
        s = self._sock or self._connect()
        if s is None:
            yield from asyncio.sleep_ms(_RECONNECT_MS)  # pyright: ignore
        else:
            yield _core._io_queue.queue_read(s)  # pyright: ignore

    def readinto(self, buf):
        self._reads += 1
        if self._reads == self._fail_at:
            raise InjectedFault("injected UART failure (ANTBRIDGE_UART_FAIL_AT)")
        s = self._sock or self._connect()
        if s is None:
            return 0
        try:
            n = s.readinto(buf)
        except OSError:
            self._drop()
            return 0
        if n is None:
            return 0  # nothing waiting
        if n == 0:
            self._drop()  # the simulator closed the connection
        return n


# -- Wi-Fi: the host is always "connected" ------------------------------------------------


def wifi_start(ssid, password):
    return None


def wifi_address():
    return "127.0.0.1"
