# The firmware's allocation proof, run under the MicroPython unix port by
# fwproc.alloc_probe(): the app exactly as build() wires it (fakehw.py as
# the hardware: a BMS answering every poll with one status frame), its
# link, outputs, acc and persist tasks under the supervisor and the real
# asyncio scheduler on a fake clock. After a warm-up the heap is locked for
# 60 s of (fake) time: a pass that allocates raises MemoryError, so its task
# crashes and the supervisor counts it. Then, still locked, the /api/status
# document is written into its buffer. Prints one JSON line.
import asyncio
import gc
import json
import os

import micropython

import settings as settings_mod
from ant import new
from ant.status import Status
from fakehw import FakeHw
from httpserver import OUT_BUF
from jsonout import JsonOut

import app as app_mod
import views

_WARM_MS = 20000
_LOCKED_MS = 60000


def make_settings():
    s = settings_mod.Settings()
    s.api_token = "probe-token-0123456789"
    s.program = settings_mod.compile_outputs({"outputs": [
        {"name": "charger", "when": {"all": [{"soc": {"below": 80, "hyst": 10}},
                                             {"cell_max_v": {"on": 3.40, "off": 3.55}}]}},
        {"name": "fan", "when": {"soc": {"above": 101}}, "fail_safe": "on"},
        {"name": "alarm", "when": {"protection": "any"}, "inverted": True, "fail_safe": "on"}]})
    return s


def status_frame():
    st = Status()
    st.cell_count = 16
    st.probe_slots = 2
    st.probe_count = 2
    st.temps_c[0] = 25
    st.temps_c[1] = 26
    for i in range(16):
        st.cells_mv[i] = 3300 + i
    st.pack_cv = 5300
    st.current_da = 42
    st.soc_pct = 60
    st.capacity_mah = 100000
    st.remaining_mah = 60000
    st.charge_mos = 1
    st.discharge_mos = 1
    return new.build_status(st)


class FakeTime:
    """Each asyncio.sleep_ms() moves the fake clock on (at most 50 ms, so
    the tasks interleave finely) and yields at once."""

    def __init__(self, hw):
        self.hw = hw
        self.sleep = asyncio.sleep_ms

    def sleep_ms(self, ms):
        self.hw.advance(ms if ms < 50 else 50)
        return self.sleep(0)  # a singleton generator: no allocation


def main():
    hw = FakeHw(os.getenv("ANTBRIDGE_DATA") or "/tmp")
    a = app_mod.build(make_settings(), hw)
    hw.uart.answer = status_frame()
    clock = FakeTime(hw)
    asyncio.sleep_ms = clock.sleep_ms
    sup = a.supervisor
    result = {}
    w = JsonOut(OUT_BUF)  # what each connection of the server writes into
    sink = bytearray(2 * OUT_BUF)  # (at least the writer's buffer: size + slack)

    async def referee():
        while hw.now < _WARM_MS:
            await asyncio.sleep_ms(10)
        frames = a.link.stats.frames_ok
        evaluations = a.relays.evaluations
        acc_steps = a.accwake.steps
        polls = a.link.stats.polls
        crashes = sup.crashes + sup.hangs
        samples = a.history.count  # the dashboard's history, sampled by the outputs task
        gc.collect()
        micropython.heap_lock()
        while hw.now < _WARM_MS + _LOCKED_MS:
            await asyncio.sleep_ms(10)
        # The status document, written into its buffer with the heap still
        # locked (the generator object itself is made first).
        micropython.heap_unlock()
        doc = views.status_doc(w, a.hub, hw.ticks_ms())
        size = 0
        micropython.heap_lock()
        try:
            for _ in doc:
                size += w.drain_into(sink)
            size += w.drain_into(sink)
            doc_ok = True
        except MemoryError:
            doc_ok = False
        micropython.heap_unlock()
        result["doc_allocated"] = not doc_ok
        result["doc_bytes"] = size
        result["crashes"] = sup.crashes + sup.hangs - crashes
        result["last_crash"] = sup.last_crash
        result["alive"] = [not t.done() for t in sup.tasks]
        result["link_ok"] = a.hub.live()
        result["frames"] = a.link.stats.frames_ok - frames
        result["polls"] = a.link.stats.polls - polls
        result["evaluations"] = a.relays.evaluations - evaluations
        result["acc_steps"] = a.accwake.steps - acc_steps
        result["history_added"] = a.history.count - samples
        result["holding"] = a.relays.holding
        result["charger_on"] = a.relays.state(0)

    async def run():
        sup.start("link", a.bmslink, 5000)
        sup.start("outputs", a.outputs, 5000)
        sup.start("acc", a.accwake, 5000)
        sup.start("persist", a.persist, 5000)
        watchdog = asyncio.create_task(sup.run())
        await referee()
        watchdog.cancel()
        sup.stop()

    try:
        asyncio.run(run())
    except MemoryError:
        micropython.heap_unlock()
        result["scheduler_allocated"] = True
    print(json.dumps(result))


main()
