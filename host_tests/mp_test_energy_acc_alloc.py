# MicroPython only: Energy.update and AccController.step allocate nothing in
# steady state. Objects are built and warmed up first (first-use allocations
# are allowed), then the same paths run under micropython.heap_lock(), which
# turns any allocation into MemoryError.
import micropython

from acc import STATE_ASLEEP, STATE_IDLE, AccController
from energy import Energy
from eventlog import EventLog
from link.model import LINE_NOISE, LINE_SILENT, LINK_LOST, LINK_OK, Model
from ticks import ticks_add

_T0 = 0x3FFF0000  # crosses the ticks wrap during the runs


class EnergyLoop:
    def __init__(self):
        self.model = Model()
        self.energy = Energy()
        self.now = _T0
        st = self.model.status
        st.capacity_mah = 100000
        st.remaining_mah = 40000
        st.pack_cv = 5200
        self.model.has_data = True
        self.model.link = LINK_OK

    def run(self, frames):
        m = self.model
        st = m.status
        e = self.energy
        k = 0
        while k < frames:
            # Current sweeps both ways, power field sometimes bogus, a stale
            # spell every 100 frames: every branch of update() runs.
            da = (k % 400) - 200
            st.current_da = da
            st.pack_cv = 5000 + (k % 37)
            st.power_w = 9999 if (k // 50) % 2 else (st.pack_cv * da) // 1000
            m.link = LINK_OK if k % 100 < 95 else LINK_LOST
            m.fresh_ms = self.now
            e.update(self.now, m)
            e.update(self.now, m)  # the same frame again
            e.save_due(self.now)
            self.now = ticks_add(self.now, 1000)
            k += 1


def test_energy_update_allocates_nothing():
    loop = EnergyLoop()
    loop.run(500)
    before = loop.energy.discharged_wh * 3600000 + loop.energy.discharged_mj
    frames = loop.energy.frames
    micropython.heap_lock()
    try:
        loop.run(3000)
    finally:
        micropython.heap_unlock()
    e = loop.energy
    assert e.frames - frames == 3000 * 95 // 100
    assert e.discharged_wh * 3600000 + e.discharged_mj > before
    assert e.power_mismatch in (True, False) and e.gaps > 0


class AccLoop:
    def __init__(self, config):
        self.acc = AccController(config, EventLog(16))
        self.now = _T0
        self.link = LINK_LOST
        self.line = LINE_SILENT

    def run(self, steps, client, rule):
        a = self.acc
        k = 0
        while k < steps:
            a.step(self.now, self.link, 50 - (k % 40), (k // 20) % 1440, client, rule, self.line)
            self.now = ticks_add(self.now, 50)
            k += 1


def test_acc_step_allocates_nothing():
    cfg = {"wake": {"backoff_max_ms": 8000, "asleep_retry_ms": 20000},
           "keep_awake": {"mode": "schedule", "from_min": 10, "to_min": 30, "soc_floor_pct": 20},
           "supply": {"stuck_ms": 5000}}
    loop = AccLoop(cfg)
    loop.run(4000, False, False)  # pulses, backoff, power cycles, asleep
    micropython.heap_lock()
    try:
        loop.run(4000, False, False)  # silent BMS: pulses and slow retries
        loop.line = LINE_NOISE
        loop.run(4000, True, True)  # stuck line: power cycles
        loop.acc.manual_wake(loop.now)
        loop.run(200, True, False)
        loop.link = LINK_OK
        loop.run(400, True, True)
    finally:
        micropython.heap_unlock()
    assert loop.acc.state == STATE_IDLE
    assert loop.acc.power_cycles >= 2 and loop.acc.wake_failures >= 5


def test_on_demand_supply_step_allocates_nothing():
    cfg = {"supply": {"mode": "on_demand", "demand_hold_ms": 2000, "sample_every_ms": 10000},
           "keep_awake": {"mode": "client"}}
    loop = AccLoop(cfg)
    loop.link = LINK_OK
    loop.run(1000, False, False)
    micropython.heap_lock()
    try:
        loop.run(2000, False, False)
        loop.run(200, True, False)
        loop.run(2000, False, False)
    finally:
        micropython.heap_unlock()
    assert loop.acc.state != STATE_ASLEEP
