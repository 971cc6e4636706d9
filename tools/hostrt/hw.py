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
#   clock    the PC's clock (always set), as device seconds since 2024;
#            ANTBRIDGE_CLOCK=unset: 0 (unset) until set_clock(), as a
#            device before NTP
#   Wi-Fi    a fake radio in a fake air (Wifi, below): networks to join,
#            a set-up access point, scans
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


_clock_unset = _env("ANTBRIDGE_CLOCK") == "unset"  # as a device before NTP: 0 until set_clock()


def clock_s():
    """Device seconds since 2024-01-01 UTC (see firmware/hw.py). time.time()
    is a float here (and Unix time > 2**30): reading it on every rules pass
    would allocate, so it is read once an hour and the ticks count on."""
    global _clock_base_s, _clock_base_ticks
    if _clock_unset:
        return 0
    now = ticks_ms()
    d = ticks_diff(now, _clock_base_ticks)
    if _clock_base_s == 0 or d < 0 or d >= _CLOCK_REBASE_MS:
        _clock_base_s = int(time.time()) - _EPOCH_2024 + _clock_offset_s
        _clock_base_ticks = now
        d = 0
    return _clock_base_s + d // 1000


def set_clock(unix_s):
    global _clock_offset_s, _clock_base_s, _clock_unset
    _clock_unset = False
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


_HELD = _env("ANTBRIDGE_HELD", "").split(",")  # inputs asserted from the start, e.g. "boot_button"


class Input:
    """Reads the pin table; tests or tools set pins()[name] (1 = asserted)."""

    def __init__(self, name):
        if name not in board().inputs:
            raise ValueError("board has no input " + name)
        self.name = name
        _pins.setdefault(name, 1 if name in _HELD else 0)
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


# -- Wi-Fi: a fake radio in a fake air ----------------------------------------------------
# The air is a JSON file (ANTBRIDGE_WIFI), read again whenever its mtime or
# size changes, so a test moves networks in and out while the firmware runs:
#   {"networks": [{"ssid": "home", "password": "secret-pw", "rssi": -60,
#                  "dhcp": true, "ip": "192.168.50.20"}],
#    "join_ms": 300, "dns": "127.0.0.1"}
# Without the file the air holds one network, "antbridge-sim" with the
# password "antbridge-sim" (make run: join it from the set-up page).
# A join takes join_ms, then ends as on the ESP32 port (the codes of
# lib/wifistate.py): no such network 201, another password 202, "dhcp": false
# connecting forever (joined, no address). A joined network that leaves the
# air, or whose password changes, drops with 200 (beacon timeout).
# The access point's address is ANTBRIDGE_HTTP_HOST's (what a phone on it
# reaches); the DNS responder binds ANTBRIDGE_DNS_PORT there (unset: a free
# port, shown in /api/wifi). ANTBRIDGE_WIFI_LOG: every connect, disconnect,
# access point start/stop and scan appended as "<ticks_ms> <what> [ssid]".
# ANTBRIDGE_WIFI_MAC: the radio's MAC (default 02:00:00:00:ab:12, so the
# set-up network is "antbridge-AB12").
_SIM_AIR = {"networks": [{"ssid": "antbridge-sim", "password": "antbridge-sim", "rssi": -55}]}
_STAT_IDLE = 1000
_STAT_CONNECTING = 1001
_STAT_GOT_IP = 1010


class Wifi:
    def __init__(self):
        self._path = _env("ANTBRIDGE_WIFI")
        self._log = _env("ANTBRIDGE_WIFI_LOG")
        self._stamp = None
        self._air = _SIM_AIR
        self._ssid = None  # the network asked for (None: idle)
        self._password = ""
        self._since = 0  # ticks of connect()
        self._joined = None  # the network entry while joined
        self._status = _STAT_IDLE
        self.ap = None  # (essid, password) while the access point is up
        self.hostname = ""

    def _read_air(self):
        if not self._path:
            return self._air
        try:
            st = os.stat(self._path)
            stamp = (st[8], st[6])  # mtime (whole seconds here), size
            if stamp != self._stamp:
                with open(self._path) as f:
                    self._air = json.load(f)
                self._stamp = stamp
        except (OSError, ValueError) as e:
            print("hw: wifi air", self._path, "unreadable:", e)
        return self._air

    def _note(self, what):
        if self._log:
            with open(self._log, "a") as f:
                f.write(str(ticks_ms()) + " " + what + "\n")

    def _network(self, ssid):
        for n in self._read_air().get("networks", []):
            if n.get("ssid") == ssid:
                return n
        return None

    def start(self, hostname):
        self.hostname = hostname

    def connect(self, ssid, password):
        self._ssid = ssid
        self._password = password
        self._since = ticks_ms()
        self._joined = None
        self._status = _STAT_CONNECTING
        self._note("connect " + ssid)

    def disconnect(self):
        if self._ssid is not None:
            self._note("disconnect")
        self._ssid = None
        self._joined = None
        self._status = _STAT_IDLE

    def status(self):
        if self._ssid is None:
            return self._status
        net = self._network(self._ssid)
        if self._status == _STAT_GOT_IP:
            if net is None or net.get("password", "") != self._password:
                self._joined = None
                self._ssid = None
                self._status = 200  # beacon timeout: the network went away
            return self._status
        if self._status != _STAT_CONNECTING:
            return self._status  # a failed attempt keeps its code until the next connect()
        if ticks_diff(ticks_ms(), self._since) < int(self._read_air().get("join_ms", 300)):
            return _STAT_CONNECTING
        if net is None:
            self._status = 201
        elif net.get("password", "") != self._password:
            self._status = 202
        elif net.get("dhcp", True):
            self._joined = net
            self._status = _STAT_GOT_IP
        else:
            self._joined = net  # associated, but no address ever comes
        return self._status

    def associated(self):
        return 1 if self._joined is not None else 0

    def rssi(self):
        return int(self._joined.get("rssi", -60)) if self._joined is not None and self._status == _STAT_GOT_IP else None

    def address(self):
        if self._joined is None or self._status != _STAT_GOT_IP:
            return None
        return self._joined.get("ip", "127.0.0.1")

    def dns_server(self):
        return self._read_air().get("dns", "127.0.0.1")

    def mac(self):
        text = _env("ANTBRIDGE_WIFI_MAC", "02:00:00:00:ab:12")
        return bytes([int(x, 16) for x in text.split(":")])

    def ap_start(self, essid, password):
        self.ap = (essid, password)
        self._note("ap_start " + essid)
        return http_host()

    def ap_stop(self):
        if self.ap is not None:
            self._note("ap_stop")
        self.ap = None

    def ap_clients(self):
        return 0

    def scan(self):
        self._note("scan")
        found = []
        for n in self._read_air().get("networks", []):
            found.append((n["ssid"].encode(), int(n.get("rssi", -60)), 0 if n.get("password") else 1))
        return found

    def dns_address(self):
        return (http_host(), int(_env("ANTBRIDGE_DNS_PORT", "0")))
