# mp-heap: 144K
# Every preset of rules/presets.py replayed as a scenario on the fake clock.
from ant.status import TEMP_NONE
from link.model import LINK_LOST, LINK_OK, LINK_STALE
from rules import presets, reasons
import test_lib_rules as rig


def test_every_preset_compiles_and_presets_combine():
    for name in presets.PRESETS:
        bench = rig.Bench(presets.get(name))
        assert bench.engine.count == len(presets.PRESETS[name]["outputs"])
    merged = rig.Bench(presets.merge("charger", "heater", "fan"))
    assert merged.engine.count == 3 and merged.engine.p.names == ["charger", "heater", "fan"]
    copy = presets.get("charger")
    copy["outputs"][0]["name"] = "mine"
    assert presets.CHARGER["outputs"][0]["name"] == "charger"  # get() copies


def test_charger_soc_window_and_high_cell_cutoff():
    b = rig.Bench(presets.get("charger"))
    st = b.model.status
    seq = [(85, 0), (80, 0), (79, 1), (85, 1), (89, 1), (90, 0), (85, 0), (79, 1)]
    for soc, on in seq:
        st.soc_pct = soc
        b.step(1000, 61)  # past min_off_s
        assert b.on() == (on == 1), soc
    st.cell_max_mv = 3550  # a cell reaches 3.55 V: off at once
    b.step()
    assert not b.on() and b.engine.describe(0, b.now)["rule_text"].startswith("cell_max_v")
    st.cell_max_mv = 3400  # back at once: the 60 s rest after the cut still holds
    b.step(1000, 59)
    assert not b.on() and b.reason() == reasons.R_MIN_OFF
    b.step()
    assert b.on()
    st.cell_max_mv = 3550
    b.step()
    st.cell_max_mv = 3450  # between the thresholds: stays off
    b.step(1000, 100)
    assert not b.on()
    st.cell_max_mv = 3400
    b.step()
    assert b.on()
    b.model.link = LINK_LOST
    b.step()
    assert not b.on() and b.reason() == reasons.R_LOST


def _load_shed_gap(seconds, soc_at):
    """Feed SOC soc_at(t) once a second; return when the pre-alarm went on
    and when the load was cut (s)."""
    b = rig.Bench(presets.get("load_shed"))
    st = b.model.status
    st.soc_pct = 50
    b.step()
    assert b.on(0) and not b.on(1)
    alarm_at = cut_at = None
    for t in range(1, seconds + 1):
        st.soc_pct = soc_at(t)
        b.step()
        if alarm_at is None and b.on(1):
            alarm_at = t
        if cut_at is None and not b.on(0):
            cut_at = t
    assert alarm_at is not None and cut_at is not None
    return alarm_at, cut_at, b


def test_load_shed_pre_alarm_at_least_30_s_before_the_cut():
    # A sudden drop straight past the cut threshold.
    alarm_at, cut_at, b = _load_shed_gap(60, lambda t: 19)
    assert cut_at - alarm_at >= 30, (alarm_at, cut_at)
    assert b.engine.pin_level(1, True) in (0, 1) and b.on(1)
    # A slow decline, 1 % a minute.
    alarm_at, cut_at, b = _load_shed_gap(25 * 60, lambda t: 40 - t // 60)
    assert cut_at - alarm_at >= 30 and alarm_at < cut_at
    # The pre-alarm blinks (pin level changes) while it holds.
    levels = set()
    for _ in range(4):
        b.step()
        levels.add(b.engine.pin_level(1, True))
    assert levels == {0, 1}
    # Reconnect at 30 %, the alarm stops.
    b.model.status.soc_pct = 30
    b.step()
    assert b.on(0) and not b.on(1)


def test_heater_only_cold_and_while_charging_is_wanted():
    b = rig.Bench(presets.get("heater"))
    st = b.model.status
    st.temps_c[0] = 3
    st.soc_pct = 50
    b.step()
    assert b.on()
    st.temps_c[0] = 6  # within the hysteresis
    b.step(1000, 200)
    assert b.on()
    st.temps_c[0] = 8
    b.step()
    assert not b.on()
    st.temps_c[0] = 2
    st.soc_pct = 98  # full: no charging wanted
    b.step(1000, 200)
    assert not b.on()
    st.soc_pct = 96  # within the SOC hysteresis (wanted again below 95 %)
    b.step()
    assert not b.on()
    st.soc_pct = 94
    b.step()
    assert b.on()
    b.step(1000, 200)
    st.temps_c[0] = st.temps_c[1] = TEMP_NONE  # probes gone: unknown -> off
    b.step()
    assert not b.on() and b.engine.describe(0, b.now)["unknown_input"]


def test_fan_on_mosfet_temperature_missing_sensor_and_stale_data():
    b = rig.Bench(presets.get("fan"))
    st = b.model.status
    st.mosfet_c = 45
    b.step()
    assert not b.on()
    st.mosfet_c = 46
    b.step()
    assert b.on()
    st.mosfet_c = 41
    b.step(1000, 120)
    assert b.on()
    st.mosfet_c = 40
    b.step()
    assert not b.on()
    st.mosfet_c = TEMP_NONE
    b.step()
    assert b.on()
    st.mosfet_c = 20
    b.step(1000, 61)
    assert not b.on()
    b.model.link = LINK_STALE
    b.step()
    assert b.on() and b.reason() == reasons.R_STALE


def test_alarm_normally_energised_releases_on_protection_and_link_loss():
    b = rig.Bench(presets.get("alarm"))
    assert b.engine.pin_level(0, True) == 1  # energised before anything was evaluated?
    b.step()
    assert not b.on() and b.engine.pin_level(0, True) == 1  # healthy: energised
    b.model.status.protection[3] = 0x10
    b.step()
    assert b.on() and b.engine.pin_level(0, True) == 0  # alarm: released
    b.model.status.protection[3] = 0
    b.step()
    assert b.engine.pin_level(0, True) == 1
    b.model.link = LINK_LOST
    b.step()
    assert b.on() and b.engine.pin_level(0, True) == 0 and b.reason() == reasons.R_LOST
    b.model.link = LINK_OK
    b.step()
    assert not b.on()


def test_generator_two_days_with_quiet_hours_and_minimum_run():
    # A toy battery: -1.08 % every 6 min while the generator is off, +2.16 %
    # every 6 min while it runs. Start at 08:00 with 30 %.
    b = rig.Bench(presets.get("generator"), day=20000, minute=8 * 60)
    st = b.model.status
    soc = 3000  # 0.01 %
    runs = []  # (start minute of the replay, length in s, soc at start, wall minute)
    started = None
    t = 0
    for _ in range(2 * 8640):  # two days in 10 s steps
        st.soc_pct = soc // 100
        b.step(10000)
        t += 10
        on = b.on()
        soc = min(10000, soc + 6) if on else max(0, soc - 3)
        if on and started is None:
            started = (t, st.soc_pct, b.minute())
        elif not on and started is not None:
            runs.append((started[0], t - started[0], started[1], started[2]))
            started = None
    assert len(runs) >= 2, runs
    for start, length, soc, minute in runs:
        assert length >= 3600, runs  # minimum run time
        quiet = minute >= 22 * 60 or minute < 7 * 60
        assert soc <= (10 if quiet else 20), runs
    assert [r for r in runs if r[3] < 7 * 60], runs  # a start at night, at 10 %
    assert b.engine.switches[0] == 2 * len(runs) + (1 if started else 0)
    assert b.engine.on_total_s[0] > 0


def test_generator_waits_in_quiet_hours_until_the_lower_threshold():
    b = rig.Bench(presets.get("generator"), day=20000, minute=23 * 60)
    st = b.model.status
    st.soc_pct = 15
    b.step(10000, 6 * 60)  # one hour at 15 %
    assert not b.on()
    st.soc_pct = 10
    b.step(10000)
    assert b.on()
    st.soc_pct = 85
    b.step(10000)
    assert b.on() and b.reason() == reasons.R_MIN_ON
    b.step(10000, 360)
    assert not b.on()
