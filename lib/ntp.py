# SNTP (RFC 4330 / RFC 5905 client mode), pure: the request, the reply's
# checks and the schedule. firmware/ntpsync.py owns the UDP socket.
#
#   request(buf, nonce)              48 bytes: version 4, client mode, our
#                                    transmit timestamp = nonce (8 bytes)
#   unix_s = parse(buf, n, nonce)    seconds since 1970 (UTC), or E_* < 0
#   sched = NtpSchedule(); sched.due(now) -> send; sched.ok(now) /
#   sched.failed(now, E_*): retry after a growing pause, resync every 12 h
#
# A reply counts only when it answers our request: the server copies our
# transmit timestamp into its origin field, so a random nonce there turns
# away stray or spoofed packets. Kiss-o'-death (stratum 0), an unsynchronised
# server (leap indicator 3) and times before 2024 are refused. The NTP era
# rolls over in 2036; a seconds field with its top bit clear is taken as era
# 1 (2036-2104).
try:
    from micropython import const
except ImportError:  # CPython
    def const(__value):  # positional-only, like the stub
        return __value

from ticks import ticks_add, ticks_diff

PORT = const(123)
SIZE = const(48)
_VN4_CLIENT = const(0x23)  # leap 0, version 4, mode 3
_MODE_SERVER = const(4)
_MODE_BROADCAST = const(5)
_TX = const(40)  # transmit timestamp offset
_ORIGIN = const(24)
_MIN_UNIX = 1704067200  # 2024-01-01: the device clock's epoch; anything earlier is wrong

# parse() errors (ERRORS order, negated).
E_SHORT = const(-1)
E_NOT_OURS = const(-2)  # not a server reply to our request
E_UNSYNCED = const(-3)  # kiss-o'-death, or the server has no time itself
E_BAD_TIME = const(-4)  # no transmit time, or before 2024
E_TIMEOUT = const(-5)  # (the socket side) no reply in time
E_NO_ADDRESS = const(-6)  # (the socket side) the server's name did not resolve
E_SOCKET = const(-7)  # (the socket side) the request could not be sent
ERRORS = ("", "reply too short", "not a reply to our request", "server not synchronised",
          "implausible time", "no reply", "server name not resolved", "could not send")

RESYNC_MS = 43200000  # 12 h
RETRY_FIRST_MS = 4000
RETRY_MAX_MS = 300000
TIMEOUT_MS = 2000  # one exchange (each of the name lookup and the request)


def request(buf, nonce):
    """Fill buf[0:48] with a client request carrying the 8-byte nonce as
    its transmit timestamp."""
    for i in range(SIZE):
        buf[i] = 0
    buf[0] = _VN4_CLIENT
    for i in range(8):
        buf[_TX + i] = nonce[i]


def _u32(buf, at):
    return buf[at] << 24 | buf[at + 1] << 16 | buf[at + 2] << 8 | buf[at + 3]


def parse(buf, n, nonce):
    """The server's transmit time in Unix seconds (rounded), or E_*."""
    if n < SIZE:
        return E_SHORT
    mode = buf[0] & 7
    if mode != _MODE_SERVER and mode != _MODE_BROADCAST:
        return E_NOT_OURS
    for i in range(8):
        if buf[_ORIGIN + i] != nonce[i]:
            return E_NOT_OURS
    stratum = buf[1]
    if buf[0] >> 6 == 3 or stratum == 0 or stratum > 15:
        return E_UNSYNCED
    secs = _u32(buf, _TX)  # (a heap int on a 32-bit port: this runs twice a day)
    if secs == 0:
        return E_BAD_TIME
    if secs < 0x80000000:
        secs += 0x100000000  # era 1: after 2036-02-07 06:28:16 UTC
    unix = secs - 2208988800 + (1 if buf[_TX + 4] & 0x80 else 0)
    if unix < _MIN_UNIX:
        return E_BAD_TIME
    return unix


class NtpSchedule:
    """When to ask: at once, then after each failure a pause doubling from
    retry_first_ms to retry_max_ms, and resync_ms after each success."""

    def __init__(self, resync_ms=RESYNC_MS, retry_first_ms=RETRY_FIRST_MS, retry_max_ms=RETRY_MAX_MS):
        self.resync_ms = resync_ms
        self.retry_first_ms = retry_first_ms
        self.retry_max_ms = retry_max_ms
        self.retry_ms = retry_first_ms
        self.next_ms = 0
        self.pending = True  # no time yet: ask as soon as the network is up
        self.synced = False  # the clock was set at least once
        self.synced_ms = 0  # ticks of the last success
        self.syncs = 0
        self.failures = 0
        self.error = 0  # the last failure (E_*), 0 after a success

    def due(self, now):
        if self.pending:
            return True
        d = ticks_diff(now, self.next_ms)
        # next_ms is never more than resync_ms ahead: a diff further back
        # means it is days behind (ticks wrap every 12.4 days): due.
        return d >= 0 or d < -self.resync_ms

    def ok(self, now):
        self.pending = False
        self.synced = True
        self.synced_ms = now
        self.syncs += 1
        self.error = 0
        self.retry_ms = self.retry_first_ms
        self.next_ms = ticks_add(now, self.resync_ms)

    def failed(self, now, error):
        self.pending = False
        self.failures += 1
        self.error = error
        self.next_ms = ticks_add(now, self.retry_ms)
        r = self.retry_ms
        self.retry_ms = r * 2 if r < self.retry_max_ms // 2 else self.retry_max_ms

    def age_s(self, now):
        """Seconds since the last success, -1 before the first (good for
        12 days; resyncs come every 12 h)."""
        return ticks_diff(now, self.synced_ms) // 1000 if self.synced else -1
