# What the bridge keeps across a reboot, saved together: the energy
# counters, the rules' persistent state (persisted overrides, latches,
# time-on counters) and the newest events, as parts of state.json written in
# one atomic write (statestore.StateStore).
#
# Writes are coalesced and bounded, to spare the flash: a change is saved
# _COALESCE_MS after it (more changes in that time ride along), and never
# sooner than _MIN_INTERVAL_MS after the previous write, however often
# something changes. New events alone are saved in batches (_EVENT_BATCH of
# them, or the oldest unsaved one _EVENT_AGE_MS old). flush() saves at once
# (a clean stop, a requested reboot).
#
# A part the firmware could not apply at boot (damaged) is reported by the
# store; a part whose configuration was rejected (settings.json refused, so
# the rules run on defaults) is kept as it was read: a boot on rejected
# settings never overwrites the saved state of the real configuration.
import asyncio

from ticks import ticks_diff

try:
    from micropython import const
except ImportError:  # CPython (pyright)
    def const(__value):
        return __value

_COALESCE_MS = const(2000)
_MIN_INTERVAL_MS = const(10000)
_EVENT_BATCH = const(16)
_EVENT_AGE_MS = const(600000)
SAVED_EVENTS = const(32)  # the newest events kept across a reboot
_TICK_MS = const(1000)
VERSION = 2


class Persist:
    def __init__(self, store, log, clock):
        self.store = store  # statestore.StateStore
        self.log = log
        self.clock = clock  # .ticks_ms()
        self._parts = []  # (name, dump(now) -> JSON-able, load(value, now) -> bool)
        self.kept = {}  # name -> the value read at boot, written back unchanged
        self.beat = None  # callable(): the supervisor's heartbeat
        self._dirty_ms = -1  # ticks of the first unsaved change, -1 = none
        self._saved_ms = -1
        self._events_saved = log.count
        self._event_ms = -1  # ticks of the oldest unsaved event

    def add(self, name, dump, load):
        self._parts.append((name, dump, load))

    def restore(self, data, now_ms, keep=()):
        """Apply state.json's parts. A part that fails to load is reported
        (store.error, /api/health) and starts from zero; parts named in
        `keep` are not applied and are written back as they were."""
        for name in keep:
            if name in data:
                self.kept[name] = data[name]
        for name, _dump, load in self._parts:
            if name in keep or name not in data:
                continue
            try:
                ok = load(data[name], now_ms)
            except Exception as e:  # schema.ConfigError, ValueError, whatever a damaged entry provokes
                ok = False
                why = str(e) or type(e).__name__
            else:
                why = "not in the expected form"
            if ok is False:
                self.store.damaged("state.json: " + name + ": " + why + "; this part starts from zero")
        self._events_saved = self.log.count

    # -- when to save ----------------------------------------------------------------------

    def mark(self, now_ms):
        """Something to save changed."""
        if self._dirty_ms < 0:
            self._dirty_ms = now_ms

    def due(self, now_ms):
        log = self.log
        if log.count != self._events_saved:
            if self._event_ms < 0:
                self._event_ms = now_ms
            new = (log.count - self._events_saved) & 0x3FFFFFFF
            if new >= _EVENT_BATCH or ticks_diff(now_ms, self._event_ms) >= _EVENT_AGE_MS:
                self.mark(now_ms)
        if self._dirty_ms < 0:
            return False
        if ticks_diff(now_ms, self._dirty_ms) < _COALESCE_MS:
            return False
        return self._saved_ms < 0 or ticks_diff(now_ms, self._saved_ms) >= _MIN_INTERVAL_MS

    def save(self, now_ms):
        data = {"v": VERSION}
        for name, dump, _load in self._parts:
            data[name] = self.kept[name] if name in self.kept else dump(now_ms)
        ok = self.store.save(data)
        self._saved_ms = now_ms
        self._dirty_ms = -1
        self._events_saved = self.log.count
        self._event_ms = -1
        return ok

    def flush(self, now_ms):
        """Save now if anything is unsaved (a clean stop)."""
        if self._dirty_ms >= 0 or self.log.count != self._events_saved:
            self.save(now_ms)

    async def run(self):
        clock = self.clock
        while True:
            now = clock.ticks_ms()
            if self.due(now):
                self.save(now)
            if self.beat is not None:
                self.beat()
            await asyncio.sleep_ms(_TICK_MS)
