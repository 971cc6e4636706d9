# Energy counters, power, time-to-empty/full and persistence (lib/energy.py).
# Runs under CPython and MicroPython.
import json
import math

from energy import Energy
from link.model import LINK_LOST, LINK_OK, LINK_STALE, Model
from schema import ConfigError
from ticks import ticks_add

T0 = 0x3FFFF000  # a few seconds before the ticks wrap


class Feed:
    """A model fed frame by frame, as the link engine would."""

    def __init__(self, config=None, capacity_mah=100000, remaining_mah=50000):
        self.model = Model()
        self.energy = Energy(config)
        self.now = T0
        st = self.model.status
        st.capacity_mah = capacity_mah
        st.remaining_mah = remaining_mah

    def frame(self, cv, da, power_w=None, link=LINK_OK):
        m = self.model
        st = m.status
        st.pack_cv = cv
        st.current_da = da
        st.power_w = (cv * da) // 1000 if power_w is None else power_w
        m.has_data = True
        m.fresh_ms = self.now
        m.link = link
        self.energy.update(self.now, m)

    def link(self, state):
        self.model.link = state
        self.energy.update(self.now, self.model)

    def advance(self, ms):
        self.now = ticks_add(self.now, ms)

    def constant(self, cv, da, seconds, power_w=None):
        for _ in range(seconds):
            self.frame(cv, da, power_w)
            self.advance(1000)


def close(a, b, rel):
    return abs(a - b) <= rel * abs(b)


def test_a_day_of_sine_current_matches_the_analytic_integral():
    # I(t) = A sin(wt), V(t) = V0 + dV sin(wt), one period = one day, 1 s
    # frames. Positive half: Ah = A T / pi; Wh = (V0 A T / pi + dV A T / 4).
    # Negative half: same Ah; Wh = V0 A T / pi - dV A T / 4.
    f = Feed()
    period = 86400
    amp, v0, dv = 50.0, 52.0, 2.0
    for s in range(period + 1):
        x = math.sin(2 * math.pi * s / period)
        f.frame(int(round((v0 + dv * x) * 100)), int(round(amp * x * 10)))
        f.advance(1000)
    ah = amp * period / math.pi / 3600
    wh_in = (v0 * amp * period / math.pi + dv * amp * period / 4) / 3600
    wh_out = (v0 * amp * period / math.pi - dv * amp * period / 4) / 3600
    e = f.energy
    assert close(e.charged_ah_total(), ah, 0.005), (e.charged_ah_total(), ah)
    assert close(e.discharged_ah_total(), ah, 0.005), (e.discharged_ah_total(), ah)
    assert close(e.charged_kwh() * 1000, wh_in, 0.005), (e.charged_kwh(), wh_in)
    assert close(e.discharged_kwh() * 1000, wh_out, 0.005), (e.discharged_kwh(), wh_out)
    # The asymmetry from the voltage swing is really there (not a rounding).
    assert e.charged_kwh() - e.discharged_kwh() > 0.05
    assert e.gaps == 0


def test_constant_power_is_integrated_exactly():
    # 51.20 V * 12.5 A = 640 W for 3600 s of intervals = 640 Wh, 12.5 Ah.
    rows = (
        (5120, 125, 3601, "charged", 640, 0, 12, 1800000),
        (5120, -125, 3601, "discharged", 640, 0, 12, 1800000),
        (4800, 10, 1801, "charged", 24, 0, 0, 1800000),  # 48 V, 1 A, 0.5 h
    )
    for cv, da, frames, side, wh, mj, ah, mas in rows:
        f = Feed()
        f.constant(cv, da, frames)
        e = f.energy
        assert getattr(e, side + "_wh") == wh and getattr(e, side + "_mj") == mj, (side, e.to_dict())
        assert getattr(e, side + "_ah") == ah and getattr(e, side + "_mas") == mas, (side, e.to_dict())
        other = "discharged" if side == "charged" else "charged"
        assert getattr(e, other + "_wh") == 0 and getattr(e, other + "_mj") == 0


def test_sign_change_splits_the_interval_between_the_two_directions():
    # +10 A then -10 A one second later at 50 V: half a second each way.
    f = Feed()
    f.frame(5000, 100)
    f.advance(1000)
    f.frame(5000, -100)
    e = f.energy
    assert e.charged_mj == 250000 and e.discharged_mj == 250000  # 500 W * 0.5 s
    assert e.charged_mas == 5000 and e.discharged_mas == 5000  # 10 A * 0.5 s


def test_gaps_are_not_integrated():
    rows = (
        # (gap ms, link state during the gap or None, integrated seconds)
        (60000, None, 2 * 99),  # longer than max_gap_ms: stale data
        (5000, LINK_STALE, 2 * 99),  # short, but the link said stale
        (5000, LINK_LOST, 2 * 99),
        (5000, None, 2 * 99 + 5),  # short and fresh throughout: integrated
    )
    for gap, state, seconds in rows:
        f = Feed({"max_gap_ms": 10000})
        f.constant(5000, 100, 100)  # 500 W
        f.advance(-1000)
        if state is not None:
            f.advance(gap // 2)
            f.link(state)
            f.advance(gap - gap // 2)
        else:
            f.advance(gap)
        f.constant(5000, 100, 100)
        total_mj = f.energy.charged_wh * 3600000 + f.energy.charged_mj
        assert total_mj == 500 * 1000 * seconds, (gap, state, total_mj)


def test_the_same_frame_is_counted_once():
    f = Feed()
    f.constant(5000, 100, 11)
    before = f.energy.to_dict()
    for _ in range(5):
        f.energy.update(f.now, f.model)  # no new frame
    assert f.energy.to_dict() == before


def test_powers_and_smoothed_current():
    f = Feed()
    f.frame(5000, -200)  # 50 V, -20 A
    e = f.energy
    assert e.computed_power_w == -1000 and e.discharge_power_w == 1000 and e.charge_power_w == 0
    f.advance(1000)
    f.frame(5000, 200)
    assert e.computed_power_w == 1000 and e.charge_power_w == 1000 and e.discharge_power_w == 0
    # Step response of the ~1 min EMA: 63 % after one time constant.
    g = Feed({"smoothing_s": 60})
    g.constant(5000, 0, 10)
    g.constant(5000, -100, 60)
    assert -68 <= g.energy.current_avg_da <= -58, g.energy.current_avg_da
    g.constant(5000, -100, 600)
    assert g.energy.current_avg_da == -100


def test_time_to_empty_and_full():
    rows = (
        # (capacity, remaining mAh, current da, tte s, ttf s)
        (100000, 50000, -100, 18000, -1),  # 50 Ah at 10 A: 5 h
        (100000, 50000, 200, -1, 9000),  # 50 Ah missing at 20 A: 2.5 h
        (100000, 50000, 2, -1, -1),  # 0.2 A: idle
        (100000, 50000, -3, -1, -1),
        (0, 0, -100, -1, -1),  # no capacity data
        (100000, 0, -100, 0, -1),
        (100000, 100000, 100, -1, 0),
    )
    for cap, rem, da, tte, ttf in rows:
        f = Feed(capacity_mah=cap, remaining_mah=rem)
        f.constant(5000, da, 900)  # long enough for the smoothing to settle
        e = f.energy
        for got, want in ((e.time_to_empty_s, tte), (e.time_to_full_s, ttf)):
            if want <= 0:
                assert got == want, (cap, rem, da, got, want)
            else:
                assert abs(got - want) <= want // 200, (cap, rem, da, got, want)


def test_estimates_are_blank_while_the_link_is_stale():
    f = Feed()
    f.constant(5000, -100, 300)
    assert f.energy.time_to_empty_s > 0
    f.link(LINK_STALE)
    e = f.energy
    assert e.time_to_empty_s == -1 and e.time_to_full_s == -1
    assert e.computed_power_w == 0 and e.discharge_power_w == 0


def test_no_estimate_once_the_current_stops():
    # Charging at 20 A for five minutes, then the charger is cut (0 A): the
    # smoothed current takes minutes to decay, but nothing charges: "time to
    # full" is gone with the next frame, not minutes later.
    f = Feed()
    f.constant(5300, 200, 300)
    assert f.energy.time_to_full_s > 0 and f.energy.time_to_empty_s == -1
    f.frame(5300, 0)
    assert f.energy.time_to_full_s == -1 and f.energy.time_to_empty_s == -1
    f.constant(5300, 2, 30)  # 0.2 A: below the 0.5 A idle threshold
    assert f.energy.time_to_full_s == -1 and f.energy.time_to_empty_s == -1
    f.constant(5300, -100, 1)  # discharging at once, the smoothed current still positive
    assert f.energy.time_to_full_s == -1 and f.energy.time_to_empty_s == -1
    f.constant(5300, -100, 600)
    assert f.energy.time_to_empty_s > 0 and f.energy.time_to_full_s == -1


def test_power_mismatch_needs_consecutive_frames():
    f = Feed({"mismatch_frames": 5, "mismatch_tolerance_w": 20, "mismatch_tolerance_pct": 10})
    e = f.energy
    f.constant(5000, -100, 10)  # BMS power == V*I
    assert not e.power_mismatch
    f.constant(5000, -100, 4, power_w=9999)  # the 2021 unit's bogus field
    assert not e.power_mismatch
    f.constant(5000, -100, 1, power_w=9999)
    assert e.power_mismatch
    f.constant(5000, -100, 4, power_w=-505)  # within 10 %
    assert e.power_mismatch
    f.constant(5000, -100, 1, power_w=-505)
    assert not e.power_mismatch
    f.constant(5000, -100, 3, power_w=9999)
    f.constant(5000, -100, 1)  # one good frame resets the run
    f.constant(5000, -100, 4, power_w=9999)
    assert not e.power_mismatch


def test_persistence_round_trip():
    f = Feed()
    f.constant(5300, 123, 1000)
    f.constant(5200, -321, 1000)
    d = json.loads(json.dumps(f.energy.to_dict()))
    g = Energy().from_dict(d)
    assert g.to_dict() == f.energy.to_dict()
    assert abs(g.charged_kwh() - f.energy.charged_kwh()) < 1e-6
    assert g.discharged_wh == f.energy.discharged_wh > 0


def test_restore_rejects_bad_data_and_changes_nothing():
    rows = (
        ({"charged_wh": -1}, "energy_counters.charged_wh"),
        ({"charged_mj": 3600000}, "energy_counters.charged_mj"),
        ({"charged_wh": "12"}, "energy_counters.charged_wh"),
        ({"version": 2}, "energy_counters.version"),
        ({"surplus": 1}, "energy_counters.surplus"),
    )
    e = Energy().from_dict({"charged_wh": 7})
    for bad, path in rows:
        try:
            e.from_dict(bad)
            raise AssertionError("accepted " + repr(bad))
        except ConfigError as err:
            assert err.path == path, (err.path, path)
        assert e.charged_wh == 7


def test_saves_are_bounded_in_time_and_need_a_change():
    f = Feed({"save_every_min": 10, "save_min_wh": 1.0, "save_min_ah": 1.0})
    e = f.energy
    e.mark_saved(f.now)
    f.constant(5000, 100, 60)  # 500 W for a minute: 8.3 Wh
    assert not e.save_due(f.now)  # too early
    f.constant(5000, 100, 540)
    assert e.save_due(f.now)
    e.mark_saved(f.now)
    assert not e.save_due(f.now)
    f.constant(5000, 0, 1200)  # 20 min idle: nothing moved
    assert not e.save_due(f.now)
    f.constant(5000, 1, 100)  # 0.1 A * 50 V for 100 s = 0.14 Wh: too little
    assert not e.save_due(f.now)
    f.constant(5000, 10, 100)  # 1 A: 1.4 Wh more
    assert e.save_due(f.now)


def test_config_is_validated():
    rows = (
        ({"max_gap_ms": 5}, "energy.max_gap_ms"),
        ({"save_every_min": 0}, "energy.save_every_min"),
        ({"smoothing_s": "60"}, "energy.smoothing_s"),
        ({"idle_current": 1}, "energy.idle_current"),
    )
    for bad, path in rows:
        try:
            Energy(bad)
            raise AssertionError("accepted " + repr(bad))
        except ConfigError as err:
            assert err.path == path, (err.path, path)


def test_describe_gives_floats_for_the_dashboard():
    f = Feed()
    f.constant(5000, -100, 3601)  # 500 W for 1 h
    d = f.energy.describe()
    assert d["discharged_kwh"] == 0.5 and d["charged_kwh"] == 0.0
    assert d["discharged_ah"] == 10.0
    assert d["discharge_power_w"] == 500 and d["computed_power_w"] == -500
    assert 4.9 <= d["time_to_empty_h"] <= 5.1 and d["time_to_full_h"] is None
    assert d["power_mismatch"] is False


def test_extreme_inputs_never_form_an_int_beyond_the_esp32_small_int_range():
    # 200 V * 2000 A (the clamps) over the longest allowed gap, charging then
    # discharging, with the slowest smoothing: every product and sum in
    # update() must stay within +-2**30 (a heap int on the ESP32 otherwise).
    import sys

    Small = int  # MicroPython: int-vs-subclass comparisons fail, so values only
    if sys.implementation.name == "cpython":
        from test_lib_ticks import Small

    f = Feed({"max_gap_ms": 120000, "smoothing_s": 3600, "mismatch_tolerance_pct": 1000, "mismatch_frames": 3},
             capacity_mah=Small(0x3FFFFFFF), remaining_mah=Small(1))
    e = f.energy
    # Exactly the clamps, so the guarded ints reach the products unchanged.
    for cv, da in ((20000, 20000), (20000, -20000), (20000, 20000), (0, -20000)):
        for _ in range(3):
            f.frame(Small(cv), Small(da), power_w=Small(-400000))
            f.now = ticks_add(Small(f.now), Small(120000))
    assert e.gaps == 0 and e.frames == 12
    # Each sample owns half of each neighbouring 120 s interval: 11 halves
    # of 60 s at 400 kW / 2000 A charging, 6 halves at 400 kW and 11 halves
    # at 2000 A discharging (the last three samples are at 0 V).
    assert e.charged_wh == 73333 and e.charged_ah == 366
    assert e.discharged_wh == 40000 and e.discharged_ah == 366
    assert e.power_mismatch  # the BMS's -400 kW disagrees with 0 W
