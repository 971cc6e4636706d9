# A hardware layer for in-process tests of the firmware (CPython, and the
# MicroPython unix port): the API of firmware/hw.py with a clock the test
# moves, an in-memory pin table, a UART that records what was written and
# plays back canned replies, a storage directory and the host board.
#
#   hw = FakeHw(tmp_dir)                    # storage in tmp_dir
#   app = firmware_module("app").build(settings, hw)
#   hw.advance(1000); hw.uart.replies.append(frame)
import os
import sys

from wakeup import Wakeup

ROOT = os.getenv("ANTBRIDGE_ROOT") or __file__.rsplit("/", 2)[0]
if sys.implementation.name != "micropython" and ROOT + "/firmware" not in sys.path:
    sys.path.append(ROOT + "/firmware")  # after lib/ and tools/ (see fwproc.firmware_module)
import boardinfo  # noqa: E402
_MASK = 0x3FFFFFFF
EXIT_RESET = 75


class Reset(Exception):
    """hw.reset() was called (the test decides what a reset means)."""

    def __init__(self, cause):
        super().__init__("reset, cause %d" % cause)
        self.cause = cause


class FakeUart:
    """A BMS on a wire: every write is answered with `answer` (a status
    frame), if set, else with the next of `replies`. wait_rx() allocates
    nothing (the allocation probe runs the link task on it, heap locked)."""

    def __init__(self, board_info, baud):
        self.baud = baud
        self.writes = 0
        self.last = None  # the last frame written
        self.replies = []  # each answers one write
        self.answer = None  # answers every write (after replies run out)
        self._reply = None
        self._arrived = Wakeup()
        self.closed = False

    def set_baud(self, baud):
        self.baud = baud

    def write(self, buf):
        self.writes += 1
        self.last = buf
        if self.replies:
            self._reply = self.replies.pop(0)
        elif self.answer is not None:
            self._reply = self.answer
        if self._reply is not None:
            self._arrived.fire()

    def readinto(self, buf):
        reply = self._reply
        if reply is None:
            return 0
        self._reply = None
        n = len(reply)
        for i in range(n):
            buf[i] = reply[i]
        return n

    def wait_rx(self):
        """An awaitable until a reply is there (reused: no allocation)."""
        return self._arrived

    def close(self):
        self.closed = True


class FakeOutput:
    def __init__(self, hw, name):
        self.hw = hw
        self.name = name
        spec = hw.board().outputs[name]
        hw.pins[name] = spec.boot

    def set(self, on):
        self.hw.pins[self.name] = 1 if on else 0

    def value(self):
        return self.hw.pins[self.name]


class FakeInput:
    def __init__(self, hw, name):
        self.hw = hw
        self.name = name
        hw.pins.setdefault(name, 0)
        # A DO's sense input follows its output, like a relay's auxiliary contact.
        self._reads = name[:-6] if name.endswith("_sense") else name

    def value(self):
        return self.hw.pins.get(self._reads, 0)


class FakeWatchdog:
    def __init__(self, timeout_ms):
        self.timeout_ms = timeout_ms
        self.feeds = 0

    def feed(self):
        self.feeds += 1


class FakeHw:
    def __init__(self, storage, board="host", clock_s=100000000, cause=1):
        self.storage = storage if storage.endswith("/") else storage + "/"
        self.now = 1000
        self.clock = clock_s  # device seconds since 2024 (0 = unset)
        self.pins = {}
        self.cause = cause
        self.uart = None
        self.watchdog = None
        self._board = boardinfo.load((os.getenv("ANTBRIDGE_BOARDS") or ROOT + "/boards") + "/" + board + ".json")

    # -- time ------------------------------------------------------------------------
    def ticks_ms(self):
        return self.now & _MASK

    def advance(self, ms):
        self.now += ms
        if self.clock:
            self.clock += ms // 1000

    def clock_s(self):
        return self.clock

    def set_clock(self, unix_s):
        self.clock = unix_s - 1704067200

    # -- the rest of firmware/hw.py's API ------------------------------------------
    def storage_root(self):
        return self.storage

    def board(self):
        return self._board

    def Output(self, name):  # noqa: N802  (the hw API's class name)
        return FakeOutput(self, name)

    def Input(self, name):  # noqa: N802
        return FakeInput(self, name)

    def Uart(self, board_info, baud):  # noqa: N802
        self.uart = FakeUart(board_info, baud)
        return self.uart

    def Watchdog(self, timeout_ms):  # noqa: N802
        self.watchdog = FakeWatchdog(timeout_ms)
        return self.watchdog

    def reset_cause(self):
        return self.cause

    def reset(self, cause=5):
        raise Reset(cause)

    def http_host(self):
        return "127.0.0.1"

    def http_port(self, configured):
        return configured
