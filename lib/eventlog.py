# A bounded event log: the last N events as small ints in preallocated arrays.
#
# Adding an event allocates nothing, so hot paths (a relay switch, a link
# state change) can record why without touching the heap. The faces turn
# entries into text with a table of names; the firmware persists the log.
from array import array

from ticks import wrap_add

# Event kinds. Arguments a, b, c are small ints whose meaning depends on kind.
EV_BOOT = 1  # a: reset cause
EV_LINK = 2  # a: new link state, b: old state
EV_OUTPUT = 3  # a: output index, b: 1 on / 0 off, c: reason code (rules engine)
EV_COMMAND = 4  # a: command index, b: result code
EV_ACC = 5  # a: ACC state, b: attempt
EV_ALARM = 6  # a: alarm code, b: 1 raised / 0 cleared
EV_CONFIG = 7  # a: 1 applied / 0 rejected
EV_SUPPLY = 8  # a: 1 on / 0 off, b: reason
KIND_NAMES = {
    EV_BOOT: "boot",
    EV_LINK: "link",
    EV_OUTPUT: "output",
    EV_COMMAND: "command",
    EV_ACC: "acc",
    EV_ALARM: "alarm",
    EV_CONFIG: "config",
    EV_SUPPLY: "supply",
}


class EventLog:
    def __init__(self, size=64):
        self.size = size
        self.ticks = array("i", [0] * size)  # ms ticks (wrap at 2**30)
        self.stamp = array("i", [0] * size)  # seconds since the epoch, 0 = unknown
        self.kind = bytearray(size)
        self.a = array("h", [0] * size)
        self.b = array("h", [0] * size)
        self.c = array("h", [0] * size)
        self.count = 0  # events ever added (wraps at 2**30)
        self._held = 0  # entries held: min(events added, size), never wraps
        self._next = 0

    def add(self, kind, a=0, b=0, c=0, ticks=0, stamp=0):
        i = self._next
        self.kind[i] = kind
        self.a[i] = a
        self.b[i] = b
        self.c[i] = c
        self.ticks[i] = ticks
        self.stamp[i] = stamp
        self._next = (i + 1) % self.size
        self.count = wrap_add(self.count, 1)
        if self._held < self.size:
            self._held += 1

    def __len__(self):
        return self._held

    def entry(self, k):
        """k-th newest entry (0 = newest) as a tuple (face; allocates)."""
        i = (self._next - 1 - k) % self.size
        return (self.kind[i], self.a[i], self.b[i], self.c[i], self.ticks[i], self.stamp[i])

    def newest(self, n):
        return [self.entry(k) for k in range(min(n, len(self)))]
