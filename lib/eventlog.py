# A bounded event log: the last N events as small ints in preallocated arrays.
#
# Adding an event allocates nothing, so hot paths (a relay switch, a link
# state change) can record why without touching the heap. Every entry has a
# kind, three small-int arguments, the ms ticks and the device clock
# (seconds since 2024-01-01 UTC, 0 while the clock is unset); lib/eventtext.py
# turns an entry into its sentence at the faces. to_list()/restore() carry
# the log across a reboot (restored entries are flagged as from an earlier
# boot: their ticks mean nothing now).
from array import array

from ticks import wrap_add

# Event kinds. Arguments a, b, c are small ints whose meaning depends on kind
# (lib/eventtext.py is the one place that reads them).
EV_BOOT = 1  # a: reset cause (RESET_*), b: 1 = safe mode, c: crashed boots before this one
EV_LINK = 2  # a: new link state, b: old state, c: line diagnosis
EV_OUTPUT = 3  # a: output index, b: 1 on / 0 off, c: reason code (rules engine)
EV_COMMAND = 4  # a: command code (ant.commands order), b: result (CMD_*), c: who (WHO_*)
EV_ACC = 5  # a: ACC state, b: attempt, c: ACC level
EV_ALARM = 6  # a: alarm code (ALARM_*), b: 1 raised / 0 cleared, c: subject (output index)
EV_CONFIG = 7  # a: 1 applied / 0 rejected, b: what (CONFIG_*)
EV_SUPPLY = 8  # a: 1 on / 0 off, b: reason
EV_TASK = 9  # a: task index, b: TASK_* what happened, c: restarts so far
EV_CONTROL = 10  # a: CTL_* action, b: subject (output/flag index), c: who
EV_BMS_ALARM = 11  # a: alarm code (ant.alarms), b: 1 raised / 0 cleared
EV_WIFI = 12  # a: WIFI_* state, b: reason
KIND_NAMES = {
    EV_BOOT: "boot",
    EV_LINK: "link",
    EV_OUTPUT: "output",
    EV_COMMAND: "command",
    EV_ACC: "acc",
    EV_ALARM: "alarm",
    EV_CONFIG: "config",
    EV_SUPPLY: "supply",
    EV_TASK: "task",
    EV_CONTROL: "control",
    EV_BMS_ALARM: "bms_alarm",
    EV_WIFI: "wifi",
}

# Who asked for a command or a control action (EV_COMMAND / EV_CONTROL c).
WHO_LOCAL = 0
WHO_HTTP = 1
WHO_MQTT = 2
WHO_BLE = 3
WHO_NAMES = ("local", "http", "mqtt", "ble")

_MAX_RESTORE = 64


class EventLog:
    def __init__(self, size=64, clock_s=None):
        self.size = size
        self.clock_s = clock_s  # callable: device seconds (0 = unset), or None
        self.notify = None  # callable(): an entry was added (the hub's publish)
        self.ticks = array("i", [0] * size)  # ms ticks (wrap at 2**30)
        self.stamp = array("i", [0] * size)  # device clock seconds, 0 = unknown
        self.kind = bytearray(size)
        self.a = array("h", [0] * size)
        self.b = array("h", [0] * size)
        self.c = array("h", [0] * size)
        self.earlier = bytearray(size)  # 1: restored from an earlier boot
        self.count = 0  # events ever added (wraps at 2**30)
        self._held = 0  # entries held: min(events added, size), never wraps
        self._next = 0

    def on_add(self, notify):
        """Call notify() after every add (the hub's change signal)."""
        self.notify = notify

    def add(self, kind, a=0, b=0, c=0, ticks=0, stamp=0):
        i = self._next
        self.kind[i] = kind
        self.a[i] = a
        self.b[i] = b
        self.c[i] = c
        self.ticks[i] = ticks
        if stamp == 0 and self.clock_s is not None:
            stamp = self.clock_s()
        self.stamp[i] = stamp
        self.earlier[i] = 0
        self._next = (i + 1) % self.size
        self.count = wrap_add(self.count, 1)
        if self._held < self.size:
            self._held += 1
        if self.notify is not None:
            self.notify()

    def __len__(self):
        return self._held

    def index(self, k):
        """Array index of the k-th newest entry (0 = newest)."""
        return (self._next - 1 - k) % self.size

    def entry(self, k):
        """k-th newest entry (0 = newest) as a tuple (face; allocates)."""
        i = self.index(k)
        return (self.kind[i], self.a[i], self.b[i], self.c[i], self.ticks[i], self.stamp[i])

    def newest(self, n):
        return [self.entry(k) for k in range(min(n, len(self)))]

    # -- across a reboot -------------------------------------------------------------

    def to_list(self, n=32):
        """The newest n entries, oldest first, as [kind, a, b, c, stamp]
        lists (JSON for state.json)."""
        out = []
        for k in range(min(n, len(self)) - 1, -1, -1):
            i = self.index(k)
            out.append([self.kind[i], self.a[i], self.b[i], self.c[i], self.stamp[i]])
        return out

    def restore(self, entries):
        """Put saved entries (to_list(), oldest first) back, flagged as from
        an earlier boot. Raises ValueError on a malformed list (nothing is
        restored then); returns how many were restored."""
        if not isinstance(entries, list) or len(entries) > _MAX_RESTORE:
            raise ValueError("expected a list of at most %d entries" % _MAX_RESTORE)
        for e in entries:
            if not isinstance(e, list) or len(e) != 5:
                raise ValueError("an entry is not [kind, a, b, c, stamp]")
            for j in range(5):
                v = e[j]
                if not isinstance(v, int) or isinstance(v, bool):
                    raise ValueError("an entry holds a non-integer")
            if not 0 < e[0] < 256 or e[4] < 0 or e[4] > 0x3FFFFFFF:
                raise ValueError("an entry is out of range")
            for j in range(1, 4):
                if not -32768 <= e[j] <= 32767:
                    raise ValueError("an entry is out of range")
        notify = self.notify
        self.notify = None
        for e in entries[-self.size:]:
            self.add(e[0], e[1], e[2], e[3], 0, e[4] if e[4] else -1)
            i = self.index(0)
            self.earlier[i] = 1
            if e[4] == 0:
                self.stamp[i] = 0
        self.notify = notify
        return min(len(entries), self.size)
