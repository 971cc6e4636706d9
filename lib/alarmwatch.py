# Which BMS alarms are active, and since when: the faces show protections
# with the time they started, and the event log records each one raised and
# cleared. update() runs on every fresh status and allocates nothing.
#
# The OLD protocol's rolling system-log word is not an alarm that is "on":
# it shows one log slot per frame, so it is left to the BMS log view.
from array import array

from ant.alarms import SYSLOG_CHARGE_BASE, next_active
from eventlog import EV_BMS_ALARM
from ticks import ticks_diff

SLOTS = 16  # alarms tracked at once (a real fault shows 1-4)


class AlarmWatch:
    def __init__(self, log=None, clock=None):
        self.log = log
        self.clock = clock  # .clock_s(): device seconds for "since"
        self.codes = array("h", [-1] * SLOTS)
        self.since_ms = array("i", [0] * SLOTS)  # ticks when raised
        self.since_s = array("i", [0] * SLOTS)  # device clock when raised (0 = unknown)
        self._seen = bytearray(SLOTS)
        self.active = 0  # slots in use
        self.changes = 0  # raised + cleared since boot (the faces' change check)

    def update(self, st, now_ms):
        """Compare the status's alarms with the last ones; True on a change."""
        seen = self._seen
        codes = self.codes
        for i in range(SLOTS):
            seen[i] = 0
        changed = False
        code = next_active(st)
        while 0 <= code < SYSLOG_CHARGE_BASE:
            slot = -1
            for i in range(SLOTS):
                if codes[i] == code:
                    slot = i
                    break
            if slot < 0:
                for i in range(SLOTS):
                    if codes[i] < 0:
                        slot = i
                        codes[i] = code
                        self.since_ms[i] = now_ms
                        self.since_s[i] = self.clock.clock_s() if self.clock is not None else 0
                        self.active += 1
                        changed = True
                        if self.log is not None:
                            self.log.add(EV_BMS_ALARM, code, 1, 0, now_ms)
                        break
            if slot >= 0:
                seen[slot] = 1
            code = next_active(st, code)
        for i in range(SLOTS):
            if codes[i] >= 0 and not seen[i]:
                if self.log is not None:
                    self.log.add(EV_BMS_ALARM, codes[i], 0, 0, now_ms)
                codes[i] = -1
                self.active -= 1
                changed = True
        if changed:
            self.changes += 1
        return changed

    def clear(self, now_ms):
        """No data any more (the link is not live): forget without logging
        a clearance the BMS never reported."""
        for i in range(SLOTS):
            self.codes[i] = -1
        self.active = 0

    def first(self):
        """The slot of the oldest active alarm, -1 when none (with next():
        the active alarms oldest first, without allocating)."""
        return self.next(-1)

    def next(self, after):
        """The slot of the next active alarm raised after slot `after`'s
        (ties in slot order), -1 at the end."""
        best = -1
        ref = 0
        if after >= 0:
            ref = self.since_ms[after]
        for i in range(SLOTS):
            if self.codes[i] < 0 or i == after:
                continue
            age = ticks_diff(self.since_ms[i], ref)
            if after >= 0 and (age < 0 or (age == 0 and i < after)):
                continue  # raised before `after` (or tied and earlier in slot order)
            if best < 0:
                best = i
                continue
            d = ticks_diff(self.since_ms[i], self.since_ms[best])
            if d < 0 or (d == 0 and i < best):
                best = i
        return best

    def entries(self):
        """(code, since_ms, since_s) of each active alarm, oldest first (a
        face: allocates)."""
        out = []
        slot = self.first()
        while slot >= 0:
            out.append((self.codes[slot], self.since_ms[slot], self.since_s[slot]))
            slot = self.next(slot)
        return out
