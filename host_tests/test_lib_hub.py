# mp-heap: 192K
# The state hub (lib/hub.py) and the field catalog (lib/catalog.py): change
# counters and the dispatcher's wake-ups, the raw values faces read, and the
# catalog's own consistency (every face is generated from it).
# Runs under CPython and MicroPython.
import asyncio

import catalog as C
from ant.status import TEMP_NONE
from eventlog import EventLog
from hub import Hub
from link.engine import LinkEngine
from link.model import LINK_NAMES, LINK_OK, Model


def make_hub():
    model = Model()
    link = LinkEngine(model, None, EventLog(8))
    return Hub(model, link, EventLog(8))


def fill(model):
    st = model.status
    st.cell_count = 4
    for i in range(4):
        st.cells_mv[i] = 3300 + i
    st.probe_count = 3
    st.temps_c[0] = 21
    st.temps_c[1] = TEMP_NONE
    st.temps_c[2] = -5
    st.pack_cv = 1321
    st.current_da = -125
    st.soc_pct = 55
    st.capacity_mah = 280000
    st.capacity_uah = 500
    st.balancing_lo = 0b1010
    model.has_data = True
    model.link = LINK_OK


def test_catalog_rows_are_consistent():
    assert len(C.ROWS) == C.COUNT
    for name, part, key in (("R_PACK_V", C.P_STATUS, "pack_voltage_v"), ("R_CURRENT", C.P_STATUS, "current_a"),
                            ("R_POWER", C.P_STATUS, "power_w"), ("R_SOC", C.P_STATUS, "soc_pct"),
                            ("R_CELLS", C.P_STATUS, "cell_voltages_v"), ("R_CELL_MIN", C.P_STATUS, "cell_min_v"),
                            ("R_CELL_MAX", C.P_STATUS, "cell_max_v"), ("R_TEMPS", C.P_STATUS, "temperatures_c"),
                            ("R_ALARMS", C.P_STATUS, "alarms_active"), ("R_LINK_STATE", C.P_LINK, "state"),
                            ("R_LIVE", C.P_LINK, "live"), ("R_OUTPUT_ON", C.P_OUTPUTS, "output_on"),
                            ("R_ACC_STATE", C.P_ACC, "state"), ("R_CHARGED_KWH", C.P_ENERGY, "charged_kwh"),
                            ("R_TTE", C.P_ENERGY, "time_to_empty_s"), ("R_TTF", C.P_ENERGY, "time_to_full_s"),
                            ("R_UPTIME", C.P_HEALTH, "uptime_s")):
        assert getattr(C, name) == C.find(part, key), name
    metrics = [r[C.METRIC] for r in C.ROWS if r[C.METRIC] is not None]
    assert len(metrics) == len(set(metrics))  # one name, one meaning
    for r in C.ROWS:
        assert 0 <= r[C.PART] < C.PARTS and 0 <= r[C.KIND] <= C.K_OUTPUTS
        assert r[C.METRIC] is None or all(c.isalpha() or c.isdigit() or c == "_" for c in r[C.METRIC])
        if r[C.MTYPE] == C.M_COUNTER:
            assert r[C.METRIC].endswith("_total"), r  # the Prometheus convention for counters
        assert C.find(r[C.PART], r[C.KEY]) == C.ROWS.index(r)  # (part, key) names one row


def test_publish_wakes_only_the_subscribers_of_that_part():
    hub = make_hub()
    status = hub.subscribe(1 << C.P_STATUS)
    outputs = hub.subscribe(1 << C.P_OUTPUTS | 1 << C.P_ACC)
    hub.publish(C.P_STATUS)
    hub.publish(C.P_STATUS)
    assert hub.counters[C.P_STATUS] == 2
    assert status.take() == 1 << C.P_STATUS and status.take() == 0  # coalesced, then cleared
    assert outputs.take() == 0
    hub.publish(C.P_ACC)
    assert outputs.take() == 1 << C.P_ACC and status.take() == 0
    outputs.close()
    hub.publish(C.P_ACC)
    assert hub.subscribers() == 1 and outputs.take() == 0


def test_a_face_waits_for_changes_instead_of_polling():
    hub = make_hub()
    sub = hub.subscribe(1 << C.P_LINK)
    seen = []

    async def face():
        for _ in range(2):
            seen.append(await sub.wait())

    async def producer():
        await asyncio.sleep(0.02)
        hub.publish(C.P_STATUS)  # not subscribed: no wake-up
        hub.publish(C.P_LINK)
        await asyncio.sleep(0.02)
        hub.publish(C.P_LINK)

    async def main():
        task = asyncio.create_task(face())
        await producer()
        await task

    asyncio.run(main())
    assert seen == [1 << C.P_LINK, 1 << C.P_LINK]


def test_too_many_subscribers_are_refused():
    hub = make_hub()
    subs = [hub.subscribe(1) for _ in range(12)]
    try:
        hub.subscribe(1)
        raise AssertionError("a 13th subscriber was accepted")
    except ValueError:
        pass
    subs[0].close()
    hub.subscribe(1)


def test_raw_values_are_the_models_fixed_point_ints():
    hub = make_hub()
    assert hub.raw(C.R_PACK_V) is None and not hub.has_data()  # nothing before the first status
    fill(hub.model)
    assert hub.raw(C.R_PACK_V) == 1321 and C.ROWS[C.R_PACK_V][C.EXP] == -2
    assert hub.raw(C.R_CURRENT) == -125 and hub.raw(C.R_SOC) == 55
    assert hub.count(C.R_CELLS) == 4 and [hub.raw(C.R_CELLS, k) for k in range(4)] == [3300, 3301, 3302, 3303]
    assert [hub.raw(C.R_TEMPS, k) for k in range(3)] == [21, None, -5]  # an absent probe is None
    bal = C.find(C.P_STATUS, "balancing_cells")
    assert hub.count(bal) == 2 and [hub.raw(bal, k) for k in range(2)] == [2, 4]
    cap = C.find(C.P_STATUS, "capacity_ah")
    assert hub.raw(cap) == 280000 and hub.low(cap) == 500  # 280.0005 Ah, no float
    hub.texts = {C.R_LINK_STATE: LINK_NAMES}
    assert hub.text(C.R_LINK_STATE) == "ok" and hub.raw(C.R_LIVE) == 1
    mos = C.find(C.P_STATUS, "charge_mos")
    hub.model.status.charge_mos = 2
    assert hub.state_on(mos) is False and hub.text(mos) not in (None, "")
