# The outputs task: on every status or link change (woken by the hub, at
# once) and at least once a second, it
#   1. updates the energy counters and time estimates (lib/energy.py),
#   2. lets the relays evaluate the rules and write DO1-DO3 (relays.py),
#   3. tells the hub what changed and the persistence what to save,
#   4. keeps the dashboard's history (lib/history.py): a sample of a live
#      status at most once a period, samples older than its window dropped.
# A pass allocates nothing.
import catalog as C

try:
    from micropython import const
except ImportError:  # CPython (pyright)
    def const(__value):
        return __value

_PERIOD_MS = const(1000)  # evaluate at least this often without changes


class OutputsTask:
    def __init__(self, hw, hub, relays, energy, persist, flags, history=None):
        self.hw = hw
        self.hub = hub
        self.relays = relays
        self.energy = energy
        self.persist = persist
        self.flags = flags  # bytearray: API flags ({"flag": n} conditions)
        self.history = history  # history.History or None
        self.beat = None  # callable(): the supervisor's heartbeat
        self.sub = hub.subscribe(1 << C.P_STATUS | 1 << C.P_LINK)
        self._frames = -1
        self._tte = -2
        self._ttf = -2
        self._wakeup = self.sub.wakeup

    async def run(self):
        hw = self.hw
        while True:
            self.step(hw.ticks_ms())
            if self.beat is not None:
                self.beat()
            await self._wakeup.within(_PERIOD_MS)

    def step(self, now):
        self.sub.take()
        hub = self.hub
        model = hub.model
        e = self.energy
        e.update(now, model)  # integrates each fresh frame once; blanks estimates off-link
        if e.frames != self._frames or e.time_to_empty_s != self._tte or e.time_to_full_s != self._ttf:
            self._frames = e.frames
            self._tte = e.time_to_empty_s
            self._ttf = e.time_to_full_s
            hub.publish(C.P_ENERGY)
        relays = self.relays
        if relays.step(now, model, e, self.hw.clock_s(), self.flags):
            hub.publish(C.P_OUTPUTS)
        if relays.dirty or e.save_due(now):
            self.persist.mark(now)
        h = self.history
        if h is not None:
            h.expire(now)
            if model.live() and h.due(now):
                h.add(now, hub.raw(C.R_PACK_V), hub.raw(C.R_CURRENT), hub.raw(C.R_SOC), hub.raw(C.R_CELL_MIN),
                      hub.raw(C.R_CELL_MAX))
