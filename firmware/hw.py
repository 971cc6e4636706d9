# The ESP32 hardware layer: the only firmware module that imports `machine`
# or `network`. Everything above it sees a UART with a non-blocking
# readinto() and an awaitable rx(), named outputs/inputs with their active
# level already applied, a wrapped millisecond clock, the device clock, a
# watchdog, a storage directory and a board description. The host runtime
# (tools/hostrt/hw.py) implements the same API against the BMS simulator, so
# the firmware above runs unchanged on a PC.
import asyncio
import time

import boardinfo
import machine
import network

_core = getattr(asyncio, "core", None)  # MicroPython's asyncio internals: its IO queue
DEFAULT_BOARD = "esp32-devkitc"
BOARDS_DIR = "/boards"
_STORAGE = "/"
_TICKS_MASK = 0x3FFFFFFF  # the same wrap as lib/ticks.py on every port
EXIT_RESET = 75  # (host only: the exit code of reset())


def storage_root():
    return _STORAGE


def ticks_ms():
    return time.ticks_ms() & _TICKS_MASK


def reset(cause=5):
    """Restart the board (`cause` matters only to the host runtime, which
    cannot read a real reset cause)."""
    machine.reset()


# -- the device clock ----------------------------------------------------------
# Seconds since 2024-01-01 00:00 UTC: a small int (< 2**30) until 2058, so the
# rules engine, the event log and the ACC schedule read it on every pass
# without allocating (Unix time, > 2**30, would be a heap object on the
# ESP32). 0 = the clock was never set (no NTP yet). The ESP32's time.time()
# counts from 2000-01-01.
_EPOCH_2024_FROM_2000 = 757382400
_SET_AFTER = 1  # time.time() - offset below this: the RTC was never set


def clock_s():
    t = time.time() - _EPOCH_2024_FROM_2000
    return t if t >= _SET_AFTER else 0


def set_clock(unix_s):
    """Set the RTC from Unix time (NTP)."""
    tm = time.gmtime(unix_s - 946684800)  # the port's epoch is 2000
    machine.RTC().datetime((tm[0], tm[1], tm[2], tm[6], tm[3], tm[4], tm[5], 0))


# -- reset cause, watchdog ---------------------------------------------------------
# eventtext.RESET_NAMES order: 0 unknown, 1 power-on, 2 hard reset, 3 watchdog,
# 4 deep-sleep wake, 5 soft reset, 6 brown-out.
def reset_cause():
    cause = machine.reset_cause()
    if cause == machine.PWRON_RESET:
        return 1
    if cause == machine.HARD_RESET:
        return 2
    if cause == machine.WDT_RESET:
        return 3
    if cause == machine.DEEPSLEEP_RESET:
        return 4
    if cause == machine.SOFT_RESET:
        return 5
    return 6 if cause == 6 else 0  # 6: ESP_RST_BROWNOUT as MicroPython passes it on


class Watchdog:
    """machine.WDT: once started it cannot be stopped; the supervisor feeds
    it only while every task makes progress."""

    def __init__(self, timeout_ms):
        self._wdt = machine.WDT(timeout=timeout_ms)
        self.feeds = 0

    def feed(self):
        self._wdt.feed()
        self.feeds += 1


# -- board ---------------------------------------------------------------------
# boards/<name>.json, validated by lib/board.py (no other file names a pin).
# The board is named by settings.json's "board" key.


def board_name():
    return boardinfo.named_in_settings(_STORAGE + "settings.json", DEFAULT_BOARD)


def board():
    """The validated board (boardinfo.BoardInfo), loaded once."""
    return boardinfo.current(BOARDS_DIR, _STORAGE + "settings.json", DEFAULT_BOARD)


# -- pins ------------------------------------------------------------------------


class Output:
    """A named output; set(1) asserts it, whatever the board's polarity."""

    def __init__(self, name):
        spec = board().outputs.get(name)
        if spec is None:
            raise ValueError("board has no output " + name)
        self.name = name
        self._spec = spec
        self._on = spec.boot
        self._pin = machine.Pin(spec.pin, machine.Pin.OUT, value=spec.level(spec.boot))

    def set(self, on):
        self._on = 1 if on else 0
        self._pin.value(self._spec.level(self._on))

    def value(self):
        return self._on


class Input:
    def __init__(self, name):
        spec = board().inputs.get(name)
        if spec is None:
            raise ValueError("board has no input " + name)
        self._spec = spec
        if spec.pull == "up":
            self._pin = machine.Pin(spec.pin, machine.Pin.IN, machine.Pin.PULL_UP)
        elif spec.pull == "down":
            self._pin = machine.Pin(spec.pin, machine.Pin.IN, machine.Pin.PULL_DOWN)
        else:
            self._pin = machine.Pin(spec.pin, machine.Pin.IN)

    def value(self):
        return 1 if self._pin.value() == self._spec.active else 0


def boot_outputs():
    """Drive every plain output to its boot level (boot.py, first thing)."""
    for spec in board().outputs.values():
        machine.Pin(spec.pin, machine.Pin.OUT, value=spec.level(spec.boot))


# -- UART --------------------------------------------------------------------------


class Uart:
    def __init__(self, board_info, baud):
        self._id = board_info.uart_id
        self._tx = board_info.uart_tx
        self._rx = board_info.uart_rx
        self.baud = baud
        self._uart = machine.UART(self._id)
        self._init(baud)

    def _init(self, baud):
        # timeout=0: readinto() never blocks; rxbuf holds several frames.
        self._uart.init(baud, bits=8, parity=None, stop=1, tx=self._tx, rx=self._rx, timeout=0, rxbuf=1024)

    def set_baud(self, baud):
        if baud != self.baud:
            self.baud = baud
            self._init(baud)
            while self._uart.any():  # bytes received at the old rate are garbage now
                self._uart.read()

    def write(self, buf):
        self._uart.write(buf)

    def readinto(self, buf):
        if not self._uart.any():
            return 0
        n = self._uart.readinto(buf)
        return n or 0

    def wait_rx(self):
        """`await uart.wait_rx()`: until bytes arrive. asyncio polls the
        UART itself (it is a stream), so the link task sleeps instead of
        polling uart.any(). (A generator, as asyncio's own stream reads.)"""
        yield _core._io_queue.queue_read(self._uart)  # pyright: ignore

    def close(self):
        self._uart.deinit()


# -- Wi-Fi ------------------------------------------------------------------------
# The radio, for firmware/wifi.py (lib/wifistate.py decides, this only does).
# Every call returns at once except scan(): MicroPython's WLAN.scan() blocks
# the interpreter for an active scan of every channel (~1.5-2.5 s; v1.28 has
# no asynchronous scan), so the task scans only when set-up mode starts and
# when the set-up page asks, and ap_start(), which waits the ~0.1 s the access
# point takes to come up. status(): lib/wifistate.py STAT_* codes.


class Wifi:
    def __init__(self):
        self._sta = network.WLAN(network.STA_IF)
        self._ap = network.WLAN(network.AP_IF)

    def start(self, hostname):
        """The station interface on, named `hostname` (DHCP and, from v1.28,
        mDNS: hostname.local), with the driver's own reconnects off: the
        state machine retries, with its backoff."""
        if hostname and hasattr(network, "hostname"):
            network.hostname(hostname)
        self._sta.active(True)
        try:
            self._sta.config(reconnects=0)
        except (ValueError, OSError):  # a port without the option
            pass

    def connect(self, ssid, password):
        try:
            self._sta.disconnect()
        except OSError:
            pass
        self._sta.connect(ssid, password)

    def disconnect(self):
        try:
            self._sta.disconnect()
        except OSError:
            pass

    def status(self):
        return self._sta.status()

    def associated(self):
        """1 when joined to an access point (with or without an address)."""
        try:
            self._sta.status("rssi")
            return 1
        except (OSError, ValueError):
            return 0

    def rssi(self):
        """The signal in dBm while connected, else None."""
        try:
            return self._sta.status("rssi")
        except (OSError, ValueError):
            return None

    def address(self):
        return self._sta.ifconfig()[0] if self._sta.isconnected() else None

    def dns_server(self):
        return self._sta.ifconfig()[3]

    def mac(self):
        return self._sta.config("mac")

    def ap_start(self, essid, password):
        """The set-up access point: WPA2 with `password`, open without one;
        its address."""
        ap = self._ap
        ap.active(True)
        if password:
            ap.config(essid=essid, password=password, authmode=network.AUTH_WPA2_PSK, max_clients=4)
        else:
            ap.config(essid=essid, authmode=network.AUTH_OPEN, max_clients=4)
        return ap.ifconfig()[0]

    def ap_stop(self):
        self._ap.active(False)

    def ap_clients(self):
        try:
            return len(self._ap.status("stations"))  # pyright: ignore  (a list of stations; the stub says int)
        except (OSError, ValueError):
            return 0

    def scan(self):
        """[(ssid bytes, rssi dBm, open 0/1)] of the networks around.
        Blocks (see above)."""
        found = []
        for ssid, _bssid, _channel, rssi, auth, _hidden in self._sta.scan():
            found.append((ssid, rssi, 1 if auth == 0 else 0))
        return found

    def dns_address(self):
        """Where the captive portal's DNS responder listens."""
        return ("0.0.0.0", 53)


def http_host():
    """The address the web server binds: every interface on the device."""
    return "0.0.0.0"


def http_port(configured):
    """The web server's port: the configured one on the device."""
    return configured
