# MicroPython only: a steady-state rules evaluation allocates nothing. Three
# outputs in auto on several conditions each (hysteresis, nesting, quiet
# hours, unknown inputs, timing, blink, rate cap, exercise, an interlock),
# inputs changing on every call so every path switches, under heap_lock.
import gc

import micropython

from eventlog import EventLog
from link.model import LINK_OK, LINK_STALE, Model
from rules.compile import build
from ticks import ticks_add

CONFIG = {"outputs": [
    {"name": "charger",
     "when": {"all": [{"soc": {"below": 60, "hyst": 10}},
                      {"cell_max_v": {"on": 3.40, "off": 3.55}},
                      {"not": {"protection": "any"}},
                      {"any": [{"flag": 0}, {"temp_min_c": {"above": 5}}, {"time": {"from": "22:00", "to": "06:00"}}]}]},
     "on_delay_s": 2, "off_delay_s": 1, "min_on_s": 3, "min_off_s": 2, "max_on_s": 40,
     "max_switches_per_hour": 30, "debounce": 2, "fail_safe": {"stale": "hold", "lost": "off"}},
    {"name": "heater",
     "when": {"any": [{"temp_c": {"probe": 3, "below": 10}},  # absent probe: unknown
                      {"mosfet_c": {"above": 40, "quiet": {"above": 50}}},
                      {"all": [{"charging": True}, {"time_to_empty_min": {"below": 90}}]}]},
     "quiet_hours": {"from": "22:00", "to": "07:00"}, "min_on_s": 2, "blink": {"on_s": 1, "off_s": 2},
     "exercise": {"every_days": 1, "minutes": 1}, "fail_safe": "on"},
    {"name": "gen",
     "when": {"any": [{"current_a": {"below": -20}}, {"output_on": "charger"}, {"warning": {"byte": 1, "bit": 2}}]},
     "impulse_s": 3, "latch": "on", "inverted": True, "fail_safe": "off"},
], "interlocks": [{"outputs": ["charger", "gen"], "wait_s": 2}]}


class Est:
    def __init__(self):
        self.time_to_empty_s = 3600
        self.time_to_full_s = -1
        self.charge_power_w = 0
        self.discharge_power_w = 100


class Run:
    def __init__(self):
        self.log = EventLog(32)
        self.engine = build(CONFIG, self.log)
        self.model = Model()
        st = self.model.status
        st.permission = 0
        st.cell_count = 16
        st.probe_count = 2
        self.model.has_data = True
        self.model.link = LINK_OK
        self.est = Est()
        self.flags = bytearray(8)
        self.now = 0x3FFF0000
        self.k = 0
        self.switches = 0

    def run(self, steps):
        engine = self.engine
        model = self.model
        st = model.status
        est = self.est
        flags = self.flags
        for _ in range(steps):
            k = self.k
            now = ticks_add(self.now, 1000)
            self.now = now
            # Inputs sweep through every threshold at different rates.
            st.soc_pct = (k * 7) % 101
            st.cell_max_mv = 3300 + (k * 13) % 300
            st.temps_c[0] = (k % 30) - 5
            st.mosfet_c = 20 + (k * 3) % 45
            st.current_da = ((k * 11) % 500) - 250
            st.protection[k % 8] = 1 if k % 37 == 0 else 0
            st.warning[1] = 4 if k % 53 == 0 else 0
            est.time_to_empty_s = (k * 97) % 20000
            flags[0] = (k >> 3) & 1
            model.link = LINK_STALE if k % 41 == 40 else LINK_OK
            if model.link == LINK_OK:
                model.fresh_ms = now
            minute = (k * 5) % 1440
            day = k // 288
            engine.evaluate(now, model, est, minute, day, flags)
            if k % 97 == 0:
                engine.reset(2)
            self.k = k + 1
        self.switches = engine.switches[0] + engine.switches[1] + engine.switches[2]


def test_evaluate_allocates_nothing():
    r = Run()
    r.run(300)  # warm-up: every path once
    before = r.switches
    micropython.heap_lock()
    try:
        r.run(3000)
    finally:
        micropython.heap_unlock()
    assert r.switches - before > 100, r.switches  # the outputs really switched meanwhile
    e = r.engine
    assert not (e.out[0] and e.out[2])


def test_pin_level_and_state_allocate_nothing():
    r = Run()
    r.run(50)
    e = r.engine
    total = 0
    micropython.heap_lock()
    try:
        for _ in range(100):
            for i in range(3):
                total += e.pin_level(i, True) + e.pin_level(i, False)
                if e.state(i):
                    total += 1
    finally:
        micropython.heap_unlock()
    assert total >= 300


def test_heap_does_not_grow():
    r = Run()
    r.run(300)
    gc.collect()
    before = gc.mem_free()
    r.run(3000)
    gc.collect()
    assert before - gc.mem_free() <= 0
