# mp-heap: 128K
# The relay rule engine, table-driven: every condition input, thresholds
# and hysteresis, every timing option, fail-safe, overrides, latches,
# interlocks, persistence, accounting and config errors. Time is a fake
# tick counter started just below the 2**30 wrap, so the wrap is crossed.
from ant.status import TEMP_NONE
from eventlog import EV_OUTPUT, EventLog
from link.model import LINK_ASLEEP, LINK_LOST, LINK_OK, LINK_STALE, Model
from rules import reasons
from rules.compile import build
from schema import ConfigError
from ticks import ticks_add

START = 0x3FFFF000  # 4 s before the ticks wrap


class Estimates:
    def __init__(self, tte=-1, ttf=-1, charge=0, discharge=0):
        self.time_to_empty_s = tte
        self.time_to_full_s = ttf
        self.charge_power_w = charge
        self.discharge_power_w = discharge


def healthy_model():
    m = Model()
    st = m.status
    st.permission = 0  # new protocol: flag bytes present
    st.cell_count = 16
    for k in range(16):
        st.cells_mv[k] = 3300
    st.cell_min_mv = st.cell_max_mv = st.cell_avg_mv = 3300
    st.cell_delta_mv = 0
    st.pack_cv = 5280
    st.soc_pct = 50
    st.soh_pct = 100
    st.current_da = 0
    st.power_w = 0
    st.remaining_mah = 50000
    st.probe_count = 2
    st.temps_c[0] = 20
    st.temps_c[1] = 22
    st.mosfet_c = 30
    st.balancer_c = 28
    st.charge_mos = st.discharge_mos = 1
    st.balancer = 0
    m.link = LINK_OK
    m.has_data = True
    return m


class Bench:
    """An engine, a fake model kept fresh, a fake clock (and wall clock when
    day >= 0), stepped in ms."""

    def __init__(self, config, day=-1, minute=0, log_size=64):
        self.log = EventLog(log_size)
        self.engine = build(config, self.log)
        self.model = healthy_model()
        self.now = START
        self.estimates = None
        self.flags = bytearray(8)
        self.fresh = True  # refresh fresh_ms on every step
        self.day0 = day
        self.clock_ms = minute * 60000  # ms since midnight of day0
        self.model.fresh_ms = self.now

    def minute(self):
        return -1 if self.day0 < 0 else (self.clock_ms // 60000) % 1440

    def day(self):
        return -1 if self.day0 < 0 else self.day0 + self.clock_ms // 86400000

    def step(self, ms=1000, n=1):
        for _ in range(n):
            self.now = ticks_add(self.now, ms)
            self.clock_ms += ms
            if self.fresh and self.model.link == LINK_OK:
                self.model.fresh_ms = self.now
            self.engine.evaluate(self.now, self.model, self.estimates, self.minute(), self.day(), self.flags)

    def on(self, i=0):
        return self.engine.state(i)

    def reason(self, i=0):
        return self.engine.reason[i]


def one(when, **extra):
    out = {"name": "x", "when": when}
    for k in extra:
        out[k] = extra[k]
    return {"outputs": [out]}


# -- conditions on every input -------------------------------------------

def _cell3(st, v):
    st.cells_mv[2] = v


def _probe2(st, v):
    st.temps_c[1] = v


def _flag(bench, v):
    bench.flags[3] = v


# (condition, setter, value, expected state, expected "unknown input")
# A setter is a Status attribute name, or a function of (status, value).
CONDITIONS = [
    ({"soc": {"below": 20}}, "soc_pct", 19, True, False),
    ({"soc": {"below": 20}}, "soc_pct", 20, False, False),
    ({"soc": {"above": 90}}, "soc_pct", 91, True, False),
    ({"soc": {"above": 90}}, "soc_pct", 90, False, False),
    ({"soh": {"below": 80}}, "soh_pct", 79, True, False),
    ({"soh": {"below": 80}}, "soh_pct", -1, False, True),
    ({"pack_v": {"above": 53.0}}, "pack_cv", 5301, True, False),
    ({"pack_v": {"above": 53.0}}, "pack_cv", 5300, False, False),
    ({"current_a": {"above": 2.0}}, "current_da", 21, True, False),
    ({"current_a": {"below": -5}}, "current_da", -51, True, False),
    ({"current_a": {"below": -5}}, "current_da", -50, False, False),
    ({"charging": True}, "current_da", 1, True, False),
    ({"charging": True}, "current_da", 0, False, False),
    ({"charging": False}, "current_da", -3, True, False),
    ({"power_w": {"below": -1000}}, "power_w", -1001, True, False),
    ({"cell_min_v": {"below": 3.0}}, "cell_min_mv", 2999, True, False),
    ({"cell_min_v": {"below": 3.0}}, "cell_min_mv", 3000, False, False),
    ({"cell_max_v": {"above": 3.55}}, "cell_max_mv", 3551, True, False),
    ({"cell_avg_v": {"above": 3.4}}, "cell_avg_mv", 3401, True, False),
    ({"cell_delta_mv": {"above": 50}}, "cell_delta_mv", 51, True, False),
    ({"cell_v": {"cell": 3, "above": 3.5}}, _cell3, 3501, True, False),
    ({"cell_v": {"cell": 3, "above": 3.5}}, _cell3, 3500, False, False),
    ({"cell_v": {"cell": 20, "above": 3.0}}, _cell3, 3501, False, True),
    ({"cell_v": {"cell": 20, "above": 3.0}, "if_unknown": True}, _cell3, 3501, True, True),
    ({"temp_c": {"probe": 2, "below": 0}}, _probe2, -1, True, False),
    ({"temp_c": {"probe": 2, "below": 0}}, _probe2, 0, False, False),
    ({"temp_c": {"probe": 2, "below": 0}}, _probe2, TEMP_NONE, False, True),
    ({"temp_c": {"probe": 2, "below": 0}, "if_unknown": True}, _probe2, TEMP_NONE, True, True),
    ({"temp_c": {"probe": 3, "below": 50}}, _probe2, 0, False, True),
    ({"temp_min_c": {"below": 5}}, _probe2, 4, True, False),
    ({"temp_min_c": {"below": 5}}, _probe2, TEMP_NONE, False, False),  # probe 1 (20) remains
    ({"temp_max_c": {"above": 40}}, _probe2, 41, True, False),
    ({"mosfet_c": {"above": 60}}, "mosfet_c", 61, True, False),
    ({"mosfet_c": {"above": 60}}, "mosfet_c", TEMP_NONE, False, True),
    ({"balancer_c": {"above": 60}}, "balancer_c", 61, True, False),
    ({"remaining_ah": {"below": 10}}, "remaining_mah", 9999, True, False),
    ({"remaining_ah": {"below": 10}}, "remaining_mah", 10000, False, False),
    ({"charge_mos": True}, "charge_mos", 1, True, False),
    ({"charge_mos": True}, "charge_mos", 2, False, False),  # any code but 1 is "off"
    ({"discharge_mos": False}, "discharge_mos", 0, True, False),
    ({"balancer": True}, "balancer", 1, True, False),
    ({"protection": "any"}, "permission", 0, False, False),
    ({"protection": "any"}, "permission", -1, False, True),  # old protocol: no flag bytes
    ({"flag": 3}, _flag, 1, True, False),
    ({"flag": 3}, _flag, 0, False, False),
]


def test_every_condition_input():
    for when, setter, value, state, unknown in CONDITIONS:
        b = Bench(one(when))
        if setter is _flag:
            _flag(b, value)
        elif isinstance(setter, str):
            setattr(b.model.status, setter, value)
        else:
            setter(b.model.status, value)
        b.step()
        assert b.on() == state, (when, value)
        assert b.engine.unknown[0] == (1 if unknown else 0), (when, value)
        d = b.engine.describe(0, b.now)
        assert d["unknown_input"] == unknown


def test_protection_and_warning_bits():
    rows = [
        ({"protection": {"byte": 2, "bit": 3}}, "protection", 2, 0x08, True),
        ({"protection": {"byte": 2, "bit": 3}}, "protection", 2, 0x04, False),
        ({"protection": {"byte": 2, "bit": 3}}, "protection", 1, 0x08, False),
        ({"protection": {"byte": 0, "mask": 0x30}}, "protection", 0, 0x10, True),
        ({"protection": "any"}, "protection", 7, 0x80, True),
        ({"protection": "any"}, "warning", 7, 0x80, False),
        ({"warning": "any"}, "warning", 5, 0x01, True),
        ({"warning": {"byte": 5, "bit": 0}}, "warning", 5, 0x01, True),
    ]
    for when, field, byte, value, state in rows:
        b = Bench(one(when))
        getattr(b.model.status, field)[byte] = value
        b.step()
        assert b.on() == state, (when, field, byte, value)


def test_estimate_inputs_and_missing_estimates():
    rows = [
        ({"time_to_empty_min": {"below": 30}}, Estimates(tte=1799), True, False),
        ({"time_to_empty_min": {"below": 30}}, Estimates(tte=1800), False, False),
        ({"time_to_empty_min": {"below": 30}}, Estimates(tte=-1), False, True),
        ({"time_to_full_min": {"below": 10}}, Estimates(ttf=599), True, False),
        ({"charge_power_w": {"above": 500}}, Estimates(charge=501), True, False),
        ({"discharge_power_w": {"above": 2000}}, Estimates(discharge=2001), True, False),
        ({"discharge_power_w": {"above": 2000}}, None, False, True),
        ({"time_to_empty_min": {"below": 30}}, None, False, True),
    ]
    for when, est, state, unknown in rows:
        b = Bench(one(when))
        b.estimates = est
        b.step()
        assert b.on() == state and b.engine.unknown[0] == unknown, when


def test_time_window_wraps_midnight_and_unknown_clock():
    when = {"time": {"from": "22:00", "to": "06:30"}}
    for minute, state in ((21 * 60 + 59, False), (22 * 60, True), (0, True), (6 * 60 + 29, True), (6 * 60 + 30, False), (12 * 60, False)):
        b = Bench(one(when), day=100, minute=minute)
        b.step(1)  # 1 ms: same minute
        assert b.on() == state, minute
    b = Bench(one(when))  # clock not set
    b.step()
    assert not b.on() and b.engine.unknown[0] == 1
    b = Bench(one({"time": {"from": 600, "to": 660}}), day=1, minute=630)
    b.step(1)
    assert b.on()


def test_link_and_data_age_conditions_with_fail_safe_rule():
    # With fail_safe "rule" the condition itself sees link state and data age.
    b = Bench(one({"link": ["stale", "lost"]}, fail_safe="rule"))
    b.step()
    assert not b.on()
    b.model.link = LINK_STALE
    b.step()
    assert b.on() and b.reason() == reasons.R_RULE_ON
    b.model.link = LINK_ASLEEP
    b.step()
    assert not b.on()
    b = Bench(one({"data_age_s": {"above": 5}}, fail_safe="rule"))
    b.fresh = False
    b.step(1000, 5)
    assert not b.on()  # 5 s old
    b.step(1000)
    assert b.on()  # 6 s old


def test_other_output_state_condition():
    cfg = {"outputs": [
        {"name": "a", "when": {"flag": 0}},
        {"name": "b", "when": {"output_on": "a"}},
        {"name": "c", "when": {"output_off": 0}},
    ]}
    b = Bench(cfg)
    b.step()
    assert (b.on(0), b.on(1), b.on(2)) == (False, False, True)
    b.flags[0] = 1
    b.step()  # outputs read each other's state of the previous evaluation
    assert (b.on(0), b.on(1), b.on(2)) == (True, False, True)
    b.step()
    assert (b.on(0), b.on(1), b.on(2)) == (True, True, False)


def test_all_any_not_and_deciding_rule_index():
    when = {"all": [
        {"soc": {"below": 50}},
        {"any": [{"flag": 0}, {"not": {"charging": True}}]},
    ]}
    b = Bench(when and one(when))
    b.model.status.soc_pct = 60
    b.step()
    assert not b.on() and b.engine.rule[0] == 0
    d = b.engine.describe(0, b.now)
    assert d["rule"] == 0 and d["rule_text"].startswith("soc")
    b.model.status.soc_pct = 40
    b.step()
    assert b.on() and b.engine.rule[0] == 2  # the not(charging) leaf decided the any
    b.model.status.current_da = 10  # charging
    b.step()
    assert not b.on() and b.engine.rule[0] == 1  # first leaf of the failing any
    b.flags[0] = 1
    b.step()
    assert b.on() and b.engine.rule[0] == 1


# -- thresholds, hysteresis, quiet hours -----------------------------------

# (threshold spec on soc, [(soc, expected state), ...])
HYSTERESIS = [
    ({"below": 20, "hyst": 5}, [(30, 0), (20, 0), (19, 1), (24, 1), (25, 0), (21, 0), (10, 1)]),
    ({"above": 80, "hyst": 10}, [(80, 0), (81, 1), (71, 1), (70, 0), (75, 0), (90, 1)]),
    ({"on": 20, "off": 80}, [(50, 0), (21, 0), (20, 1), (79, 1), (80, 0), (50, 0)]),
    ({"on": 80, "off": 20}, [(50, 0), (80, 1), (21, 1), (20, 0), (79, 0)]),
    ({"above": 50}, [(50, 0), (51, 1), (50, 0)]),
]


def test_set_clear_pairs_and_hysteresis():
    for spec, seq in HYSTERESIS:
        b = Bench(one({"soc": spec}))
        for soc, state in seq:
            b.model.status.soc_pct = soc
            b.step()
            assert b.on() == (state == 1), (spec, soc)


def test_fixed_point_thresholds_on_cell_and_pack_voltage():
    b = Bench(one({"cell_max_v": {"on": 3.40, "off": 3.55}}))
    st = b.model.status
    for mv, state in ((3450, 0), (3400, 1), (3549, 1), (3550, 0), (3401, 0), (3399, 1)):
        st.cell_max_mv = mv
        b.step()
        assert b.on() == (state == 1), mv
    b = Bench(one({"pack_v": {"below": 48.5, "hyst": 1.5}}))
    for cv, state in ((4851, 0), (4849, 1), (4999, 1), (5000, 0)):
        b.model.status.pack_cv = cv
        b.step()
        assert b.on() == (state == 1), cv


def test_quiet_hours_use_alternate_thresholds():
    cfg = one({"soc": {"on": 20, "off": 80, "quiet": {"on": 10, "off": 80}}},
              quiet_hours={"from": "22:00", "to": "07:00"})
    b = Bench(cfg, day=10, minute=21 * 60)
    b.model.status.soc_pct = 15
    b.step(60000)  # 21:01
    assert b.on()
    b = Bench(cfg, day=10, minute=23 * 60)
    b.model.status.soc_pct = 15
    b.step(60000)
    assert not b.on()  # quiet: waits for 10 %
    b.model.status.soc_pct = 10
    b.step(60000)
    assert b.on()
    b = Bench(cfg, day=10, minute=6 * 60 + 58)
    b.model.status.soc_pct = 15
    b.step(60000)  # 06:59: quiet
    assert not b.on()
    b.step(60000)  # 07:00: normal thresholds again
    assert b.on()


# -- timing ------------------------------------------------------------------

# (options, flag per 1 s step, expected state per step)
TIMELINES = [
    ({}, "0110100", "0110100"),
    ({"on_delay_s": 2}, "0111110011", "0001110000"),
    ({"off_delay_s": 2}, "0110001100", "0111101111"),
    ({"min_on_s": 3}, "0100000000", "0111000000"),
    ({"min_off_s": 3}, "1011111111", "1000111111"),
    ({"max_on_s": 3}, "0111111001111", "0111000001110"),
    ({"impulse_s": 2}, "0111110111", "0110000110"),
    ({"debounce": 3}, "0110111100001", "0000001111000"),
    ({"max_switches_per_hour": 2}, "10101010", "10100000"),
    ({"on_delay_s": 1.5}, "0111100", "0001100"),
    ({"min_on_s": 3, "off_delay_s": 1}, "0100000", "0111000"),
]


def _timeline(opts, flags):
    b = Bench(one({"flag": 0}, **opts))
    got = ""
    for ch in flags:
        b.flags[0] = 1 if ch == "1" else 0
        b.step()
        got += "1" if b.on() else "0"
    return got, b


def test_timing_options_timelines():
    for opts, flags, expected in TIMELINES:
        got, _ = _timeline(opts, flags)
        assert got == expected, (opts, flags, got, expected)


def test_timing_reasons():
    rows = [
        ({"on_delay_s": 5}, "11", reasons.R_ON_DELAY),
        ({"off_delay_s": 5}, "10", reasons.R_OFF_DELAY),
        ({"min_on_s": 5}, "10", reasons.R_MIN_ON),
        ({"min_off_s": 5}, "101", reasons.R_MIN_OFF),
        ({"max_on_s": 1}, "111", reasons.R_MAX_ON),
        ({"impulse_s": 1}, "111", reasons.R_IMPULSE),
        ({"debounce": 3}, "11", reasons.R_ON_DELAY),
        ({"max_switches_per_hour": 1}, "101", reasons.R_RATE_CAP),
    ]
    for opts, flags, reason in rows:
        _, b = _timeline(opts, flags)
        assert b.reason() == reason, (opts, b.reason())
        assert b.engine.describe(0, b.now)["held_by"] == "timing"


def test_rate_cap_frees_up_after_an_hour():
    got, b = _timeline({"max_switches_per_hour": 2}, "10101")
    assert got == "10100"
    b.step(1000, 3600 - 5)  # the first start is now 3599 s old
    assert not b.on()
    b.step()
    assert b.on()


def test_blink_while_active_and_events_only_on_activation():
    b = Bench(one({"flag": 0}, blink={"on_s": 2, "off_s": 1}))
    b.flags[0] = 1
    levels = ""
    for _ in range(7):
        b.step()
        assert b.on()
        levels += str(b.engine.pin_level(0, True))
    assert levels == "1101101"
    assert b.engine.switches[0] == 1 and len(b.log) == 1
    b.flags[0] = 0
    b.step()
    assert b.engine.pin_level(0, True) == 0 and b.engine.switches[0] == 2


def test_periodic_exercise():
    cfg = one({"flag": 0}, exercise={"every_days": 2, "minutes": 10, "at": "10:00"})
    b = Bench(cfg, day=100, minute=0)
    b.step(60000)
    assert not b.on()
    runs = []
    for _ in range(5 * 1440):  # five days in minutes
        b.step(60000)
        if b.on() and (not runs or runs[-1][1] != b.day()):
            runs.append((b.minute(), b.day()))
    assert runs == [(600, 102), (600, 104)], runs
    assert b.engine.on_total_s[0] == 2 * 600
    # A day the output ran anyway postpones the exercise.
    b = Bench(cfg, day=100, minute=0)
    b.step(60000)
    b.flags[0] = 1
    b.step(60000, 60 * 24 + 1)  # on through day 101
    b.flags[0] = 0
    b.step(60000)
    starts = []
    for _ in range(4 * 1440):
        b.step(60000)
        if b.on() and b.reason() == reasons.R_EXERCISE and (not starts or starts[-1] != b.day()):
            starts.append(b.day())
    assert starts[0] == 103, starts
    b = Bench(cfg)  # no clock: never exercised
    b.step(60000, 4 * 1440)
    assert b.engine.switches[0] == 0


# -- fail-safe -----------------------------------------------------------------

# (fail_safe option, link state, state before, expected state, reason)
FAIL_SAFE = [
    ("off", LINK_STALE, 1, 0, reasons.R_STALE),
    ("on", LINK_STALE, 0, 1, reasons.R_STALE),
    ("hold", LINK_STALE, 1, 1, reasons.R_STALE),
    ("hold", LINK_STALE, 0, 0, reasons.R_STALE),
    ("off", LINK_LOST, 1, 0, reasons.R_LOST),
    ("on", LINK_ASLEEP, 0, 1, reasons.R_LOST),
    ({"stale": "hold", "lost": "off"}, LINK_STALE, 1, 1, reasons.R_STALE),
    ({"stale": "hold", "lost": "off"}, LINK_LOST, 1, 0, reasons.R_LOST),
    ({"stale": "on", "lost": "hold"}, LINK_LOST, 0, 0, reasons.R_LOST),
]


def test_fail_safe_on_stale_and_lost_link_bypasses_timing():
    for fs, link, before, after, reason in FAIL_SAFE:
        b = Bench(one({"flag": 0}, fail_safe=fs, min_on_s=600, min_off_s=600))
        b.flags[0] = before
        b.step()
        assert b.on() == (before == 1)
        b.model.link = link
        b.step()
        assert b.on() == (after == 1), (fs, link, before)
        assert b.reason() == reason
        assert b.engine.describe(0, b.now)["held_by"] == "fail-safe"
        b.model.link = LINK_OK
        b.flags[0] = 1 - after
        b.step()  # back to the rule, but the rule's min times now apply
        assert b.reason() in (reasons.R_MIN_ON, reasons.R_MIN_OFF, reasons.R_RULE_ON, reasons.R_RULE_OFF)


def test_data_age_limit_counts_as_stale_and_no_data_as_lost():
    b = Bench(one({"flag": 0}, fail_safe="on", stale_after_s=5))
    b.step()
    assert not b.on()
    b.fresh = False
    b.step(1000, 5)
    assert not b.on()  # exactly 5 s old is still fresh
    b.step(1000)
    assert b.on() and b.reason() == reasons.R_STALE
    b = Bench({"stale_after_s": 3, "outputs": [{"when": {"flag": 0}, "fail_safe": "on"}]})
    b.fresh = False
    b.step(1000, 4)
    assert b.on()
    b = Bench(one({"flag": 0}, fail_safe="on"))
    b.model.has_data = False
    b.step()
    assert b.on() and b.reason() == reasons.R_LOST


def test_rule_error_on_unknown_input_marked_error():
    cfg = one({"mosfet_c": {"above": 50}, "if_unknown": "error"}, fail_safe={"error": "on"})
    b = Bench(cfg)
    b.step()
    assert not b.on()
    b.model.status.mosfet_c = TEMP_NONE
    b.step()
    assert b.on() and b.reason() == reasons.R_ERROR
    b.model.status.mosfet_c = 20
    b.step()
    assert not b.on()


def test_fixed_modes_and_overrides_are_not_subject_to_fail_safe():
    cfg = {"outputs": [{"mode": "on"}, {"when": {"flag": 0}, "fail_safe": "on"}]}
    b = Bench(cfg)
    b.model.link = LINK_LOST
    b.engine.override(1, False, None, False, b.now)
    b.step()
    assert b.on(0) and b.reason(0) == reasons.R_MODE_ON
    assert not b.on(1) and b.reason(1) == reasons.R_OVERRIDE_OFF


# -- modes, overrides, persistence --------------------------------------------

def test_modes_and_set_mode():
    b = Bench({"outputs": [{"mode": "off", "when": {"flag": 0}}, {"mode": "on"}, {"when": {"flag": 0}}]})
    b.flags[0] = 1
    b.step()
    assert (b.on(0), b.on(1), b.on(2)) == (False, True, True)
    b.engine.set_mode(0, "auto")
    b.step()
    assert b.on(0)
    assert b.engine.describe(0, b.now)["mode"] == "auto"


def test_override_expires_exactly_when_set():
    b = Bench(one({"flag": 0}))
    b.step()
    b.engine.override(0, True, 5, False, b.now)
    assert b.on()  # applied at once
    t0 = b.now
    b.step(4999)
    assert b.on() and b.reason() == reasons.R_OVERRIDE_ON
    assert b.engine.describe(0, b.now)["override_expires_s"] == 1
    b.step(1)
    assert b.now == ticks_add(t0, 5000)
    assert not b.on() and b.reason() == reasons.R_RULE_OFF
    assert b.engine.describe(0, b.now)["override"] is None


def test_override_without_expiry_and_release_back_to_auto():
    b = Bench(one({"flag": 0}))
    b.flags[0] = 1
    b.step()
    b.engine.override(0, False, None, False, b.now)
    b.step(1000, 100)
    assert not b.on() and b.engine.describe(0, b.now)["held_by"] == "override"
    b.engine.release(0)
    b.step()
    assert b.on() and b.reason() == reasons.R_RULE_ON


def test_persistent_override_latch_and_counters_survive_restore():
    cfg = {"outputs": [{"name": "a", "when": {"flag": 0}, "latch": "off"}, {"name": "b", "when": {"flag": 1}}]}
    b = Bench(cfg)
    b.flags[0] = 1
    b.step(1000, 10)
    b.flags[0] = 0
    b.step()
    assert not b.on(0) and b.engine.latched[0]
    b.engine.override(1, True, 100, True, b.now)
    b.step(1000, 40)
    saved = b.engine.persistent_state()
    assert saved["overrides"] == [[1, 1, 60]] and saved["latched"] == [0]
    c = Bench(cfg)  # "reboot"
    assert c.engine.restore(saved, c.now)
    c.flags[0] = 1
    c.step(1000, 59)
    assert c.on(1) and c.reason(1) == reasons.R_OVERRIDE_ON
    assert not c.on(0) and c.reason(0) == reasons.R_LATCHED
    c.step()
    assert not c.on(1)
    assert c.engine.on_total_s[0] == 10 and c.engine.switches[0] == 2
    # A non-persistent override is not saved; a renamed output ignores old state.
    b.engine.override(0, True, None, False, b.now)
    assert b.engine.persistent_state()["overrides"] == [[1, 1, 60]]
    other = Bench({"outputs": [{"name": "z", "when": {"flag": 0}, "latch": "off"}]})
    other.engine.restore(saved, other.now)
    assert not other.engine.latched[0] and other.engine.on_total_s[0] == 0
    assert not other.engine.restore({"v": 99}, other.now)


def test_latching_trip_needs_reset():
    b = Bench(one({"soc": {"above": 20}}, latch="off"))
    b.model.status.soc_pct = 50
    b.step()
    assert b.on()
    b.model.status.soc_pct = 15
    b.step()
    assert not b.on()
    b.model.status.soc_pct = 60
    b.step(1000, 10)
    assert not b.on() and b.reason() == reasons.R_LATCHED
    assert b.engine.describe(0, b.now)["latched"]
    b.engine.reset(0)
    b.step()
    assert b.on()
    b = Bench(one({"flag": 0}, latch="on"))
    b.flags[0] = 1
    b.step()
    b.flags[0] = 0
    b.step(1000, 5)
    assert b.on() and b.reason() == reasons.R_LATCHED
    b.engine.reset(0)
    b.step()
    assert not b.on()


# -- interlocks ------------------------------------------------------------------

def test_interlock_never_both_on_and_waits_the_gap():
    cfg = {"outputs": [{"name": "a", "when": {"flag": 0}}, {"name": "b", "when": {"flag": 1}}],
           "interlocks": [{"outputs": ["a", "b"], "wait_s": 3}]}
    b = Bench(cfg)
    b.flags[0] = b.flags[1] = 1
    b.step()
    assert b.on(0) and not b.on(1) and b.reason(1) == reasons.R_INTERLOCK
    b.flags[0] = 0
    b.step()
    assert not b.on(0) and not b.on(1) and b.reason(1) == reasons.R_INTERLOCK_WAIT
    b.step(1000, 2)
    assert not b.on(1)
    b.step()
    assert b.on(1)
    b.engine.override(0, True, None, False, b.now)  # overrides obey interlocks too
    b.step()
    assert not b.on(0) and b.on(1) and b.engine.describe(0, b.now)["held_by"] == "interlock"


def test_interlock_by_index_and_three_way_group():
    cfg = {"outputs": [{"when": {"flag": 0}}, {"when": {"flag": 1}}, {"when": {"flag": 2}}],
           "interlocks": [{"outputs": [0, 1, 2]}]}
    b = Bench(cfg)
    b.flags[1] = b.flags[2] = 1
    b.step()
    assert (b.on(0), b.on(1), b.on(2)) == (False, True, False)
    b.flags[1] = 0
    b.step()
    assert (b.on(0), b.on(1), b.on(2)) == (False, False, True)


# -- outputs: levels, accounting, event log ---------------------------------------

def test_pin_level_combines_inversion_and_board_level():
    # (inverted, active_high, logical on, expected level)
    rows = [(False, True, 1, 1), (False, True, 0, 0), (False, False, 1, 0), (False, False, 0, 1),
            (True, True, 1, 0), (True, True, 0, 1), (True, False, 1, 1), (True, False, 0, 0)]
    for inverted, high, on, level in rows:
        b = Bench(one({"flag": 0}, inverted=inverted))
        b.flags[0] = on
        b.step()
        assert b.engine.pin_level(0, high) == level, (inverted, high, on)


def test_event_log_time_on_and_switch_counts():
    b = Bench(one({"flag": 0}), day=500, minute=23 * 60 + 59)
    b.clock_ms += 50000
    b.flags[0] = 1
    b.step()  # on at 23:59:51
    t_on = b.now
    b.step(1000, 29)
    b.flags[0] = 0
    b.step()
    assert len(b.log) == 2
    kind, a, bb, c, ticks, _ = b.log.entry(1)
    assert (kind, a, bb, c, ticks) == (EV_OUTPUT, 0, 1, reasons.R_RULE_ON, t_on)
    kind, a, bb, c, ticks, _ = b.log.entry(0)
    assert (kind, a, bb, c) == (EV_OUTPUT, 0, 0, reasons.R_RULE_OFF)
    d = b.engine.describe(0, b.now)
    assert d["on_total_s"] == 30 and d["switches"] == 2
    assert d["on_today_s"] == 21  # off at 00:00:21
    assert b.log.entry(0)[5] == 0  # no wall-clock stamp given
    b.engine.stamp = 1000000
    b.flags[0] = 1
    b.step()
    b.flags[0] = 0
    b.step()
    assert b.log.entry(0)[5] == 1000000 and b.engine.on_total_s[0] == 31
    b.flags[0] = 1
    b.step(500, 7)  # on, then 3 s in 500 ms steps
    assert b.engine.on_total_s[0] == 34 and b.engine.describe(0, b.now)["on_today_s"] == 25


def test_describe_fields():
    b = Bench({"outputs": [{"name": "fan", "when": {"mosfet_c": {"above": 40}}, "inverted": True}]})
    b.model.status.mosfet_c = 41
    b.step()
    d = b.engine.describe(0, b.now)
    assert d["name"] == "fan" and d["state"] == "on" and d["mode"] == "auto"
    assert d["held_by"] == "rule" and d["reason"] == "rule on" and d["reason_code"] == reasons.R_RULE_ON
    assert d["rule"] == 0 and d["rule_text"] == 'mosfet_c {"above": 40}'
    assert d["inverted"] and d["override"] is None and d["override_expires_s"] is None
    assert b.engine.count == 1


# -- config errors ------------------------------------------------------------------

BAD = [
    ({}, "outputs"),
    ({"outputs": []}, "outputs"),
    ({"outputs": [{"when": {"soc": {"below": 20}}}], "bogus": 1}, "bogus"),
    ({"outputs": [{"when": {"soc": {"below": 20}}, "colour": 1}]}, "outputs[0].colour"),
    ({"outputs": [{"mode": "sometimes"}]}, "outputs[0].mode"),
    ({"outputs": [{"mode": "auto"}]}, "outputs[0].when"),
    ({"outputs": [{"when": {"soc": {"below": "x"}}}]}, "outputs[0].when.soc.below"),
    ({"outputs": [{"when": {"soc": {"on": 20, "off": 20}}}]}, "outputs[0].when.soc.off"),
    ({"outputs": [{"when": {"soc": {"on": 20}}}]}, "outputs[0].when.soc.off"),
    ({"outputs": [{"when": {"soc": {"above": 20, "below": 10}}}]}, "outputs[0].when.soc.below"),
    ({"outputs": [{"when": {"soc": {"on": 20, "off": 30, "hyst": 2}}}]}, "outputs[0].when.soc.hyst"),
    ({"outputs": [{"when": {"soc": {}}}]}, "outputs[0].when.soc"),
    ({"outputs": [{"when": {"soc": {"below": 20, "hyst": -1}}}]}, "outputs[0].when.soc.hyst"),
    ({"outputs": [{"when": {"volts": {"below": 20}}}]}, "outputs[0].when.volts"),
    ({"outputs": [{"when": {"soc": {"below": 20}, "pack_v": {"below": 50}}}]}, "outputs[0].when"),
    ({"outputs": [{"when": {"cell_v": {"cell": 33, "above": 3}}}]}, "outputs[0].when.cell_v.cell"),
    ({"outputs": [{"when": {"cell_v": {"above": 3}}}]}, "outputs[0].when.cell_v.cell"),
    ({"outputs": [{"when": {"temp_c": {"probe": 0, "above": 3}}}]}, "outputs[0].when.temp_c.probe"),
    ({"outputs": [{"when": {"charging": 1}}]}, "outputs[0].when.charging"),
    ({"outputs": [{"when": {"protection": {"byte": 8, "bit": 0}}}]}, "outputs[0].when.protection.byte"),
    ({"outputs": [{"when": {"protection": {"byte": 1}}}]}, "outputs[0].when.protection"),
    ({"outputs": [{"when": {"link": "dead"}}]}, "outputs[0].when.link"),
    ({"outputs": [{"when": {"output_on": "nope"}}]}, "outputs[0].when.output_on"),
    ({"outputs": [{"name": "a", "when": {"output_on": "a"}}]}, "outputs[0].when.output_on"),
    ({"outputs": [{"when": {"time": {"from": "25:00", "to": "01:00"}}}]}, "outputs[0].when.time.from"),
    ({"outputs": [{"when": {"time": {"from": "01:00", "to": "01:00"}}}]}, "outputs[0].when.time"),
    ({"outputs": [{"when": {"flag": 40}}]}, "outputs[0].when.flag"),
    ({"outputs": [{"when": {"all": []}}]}, "outputs[0].when.all"),
    ({"outputs": [{"when": {"any": [{"flag": 0}, 5]}}]}, "outputs[0].when.any[1]"),
    ({"outputs": [{"when": {"not": {"all": [{"not": {"any": [{"not": {"flag": 0}}]}}]}}}]},
     "outputs[0].when.not.all[0].not.any[0]"),
    ({"outputs": [{"when": {"any": [{"flag": k % 8} for k in range(17)]}}]}, "outputs[0].when.any"),
    ({"outputs": [{"when": {"flag": 0, "if_unknown": "maybe"}}]}, "outputs[0].when.if_unknown"),
    ({"outputs": [{"when": {"flag": 0}, "min_on_s": -1}]}, "outputs[0].min_on_s"),
    ({"outputs": [{"when": {"flag": 0}, "max_on_s": 1e9}]}, "outputs[0].max_on_s"),
    ({"outputs": [{"when": {"flag": 0}, "debounce": 0}]}, "outputs[0].debounce"),
    ({"outputs": [{"when": {"flag": 0}, "max_switches_per_hour": 61}]}, "outputs[0].max_switches_per_hour"),
    ({"outputs": [{"when": {"flag": 0}, "blink": {"on_s": 1}}]}, "outputs[0].blink.off_s"),
    ({"outputs": [{"when": {"flag": 0}, "blink": {"on_s": 1, "off_s": 1}, "impulse_s": 2}]}, "outputs[0].blink"),
    ({"outputs": [{"when": {"flag": 0}, "exercise": {"every_days": 0, "minutes": 5}}]}, "outputs[0].exercise.every_days"),
    ({"outputs": [{"when": {"flag": 0}, "fail_safe": "maybe"}]}, "outputs[0].fail_safe"),
    ({"outputs": [{"when": {"flag": 0}, "fail_safe": {"stale": "x"}}]}, "outputs[0].fail_safe.stale"),
    ({"outputs": [{"when": {"flag": 0}, "fail_safe": {"late": "on"}}]}, "outputs[0].fail_safe.late"),
    ({"outputs": [{"when": {"flag": 0}, "latch": "yes"}]}, "outputs[0].latch"),
    ({"outputs": [{"when": {"flag": 0}, "inverted": "yes"}]}, "outputs[0].inverted"),
    ({"outputs": [{"when": {"soc": {"on": 20, "off": 80, "quiet": {"on": 10, "off": 80}}}}]}, "outputs[0].quiet_hours"),
    ({"outputs": [{"when": {"soc": {"on": 20, "off": 80, "quiet": {"on": 90, "off": 80}}}}]}, "outputs[0].when.soc.quiet"),
    ({"outputs": [{"when": {"flag": 0}, "quiet_hours": {"from": "22:00"}}]}, "outputs[0].quiet_hours"),
    ({"outputs": [{"name": "a", "mode": "on"}, {"name": "a", "mode": "on"}]}, "outputs[1].name"),
    ({"outputs": [{"mode": "on"}] * 9}, "outputs"),
    ({"outputs": [{"mode": "on"}, {"mode": "on"}], "interlocks": [{"outputs": [0]}]}, "interlocks[0].outputs"),
    ({"outputs": [{"mode": "on"}, {"mode": "on"}], "interlocks": [{"outputs": [0, 2]}]}, "interlocks[0].outputs[1]"),
    ({"outputs": [{"mode": "on"}, {"mode": "on"}], "interlocks": [{"outputs": [0, 0]}]}, "interlocks[0].outputs[1]"),
    ({"outputs": [{"mode": "on"}, {"mode": "on"}], "interlocks": [{"outputs": [0, 1], "wait_s": -2}]}, "interlocks[0].wait_s"),
    ({"outputs": [{"when": {"flag": 0}}], "stale_after_s": 0}, "stale_after_s"),
    ([], "config"),
]


def test_every_bad_field_is_rejected_with_its_path():
    for cfg, path in BAD:
        try:
            build(cfg, EventLog(4))
        except ConfigError as e:
            assert e.path == path, (cfg, e.path, path)
            assert e.reason
            continue
        raise AssertionError("accepted: " + repr(cfg))


def test_thresholds_beyond_the_small_int_range_are_config_errors():
    # A threshold is stored scaled (Ah in mAh, V in mV) in array("i") and read
    # on every evaluation: it must stay a small int on the ESP32
    # (|x * scale| < 2**29), and a huge number is a ConfigError with its path,
    # not an OverflowError.
    for when, path in (
        ({"remaining_ah": {"above": 2e6}}, "outputs[0].when.remaining_ah.above"),
        ({"remaining_ah": {"on": 1e30, "off": 5}}, "outputs[0].when.remaining_ah.on"),  # finite in single precision
        ({"soc": {"below": 5, "hyst": 1e12}}, "outputs[0].when.soc.hyst"),
        ({"cell_v": {"cell": 1, "on": -3e6, "off": 3.4}}, "outputs[0].when.cell_v.on"),
    ):
        try:
            build({"outputs": [{"when": when}]}, EventLog(4))
        except ConfigError as e:
            assert e.path == path, (when, e.path)
            assert e.reason.startswith("must be within"), e.reason
            continue
        raise AssertionError("accepted: " + repr(when))
    # The largest accepted value still works as a threshold.
    # (Single-precision floats on the ESP32 scale it to within 64 of the
    # exact 536870000: the spacing of float32 values near 2**29.)
    e = build({"outputs": [{"when": {"remaining_ah": {"above": 536870}}}]}, EventLog(4))
    assert abs(e.p.c[0] - 536870000) <= 64 and e.p.b[0] == e.p.c[0] + 1 < 2**30, (e.p.b[0], e.p.c[0])


def test_good_config_forms_compile():
    cfg = {"stale_after_s": 20, "outputs": [
        {"name": "gen", "mode": "auto", "when": {"soc": {"on": 20, "off": 80}},
         "on_delay_s": 5, "off_delay_s": 5.5, "min_on_s": 60, "min_off_s": 60, "max_on_s": 7200,
         "max_switches_per_hour": 4, "debounce": 2, "exercise": {"every_days": 7, "minutes": 15, "at": 600},
         "quiet_hours": {"from": 1320, "to": "07:00"}, "fail_safe": {"stale": "hold"}, "stale_after_s": 5,
         "latch": "none", "inverted": False},
        {"name": "buzz", "when": {"not": {"link": "ok"}}, "blink": {"on_s": 0.5, "off_s": 0.5}, "fail_safe": "rule"},
        {"name": "pulse", "when": {"warning": {"byte": 0, "mask": 255}}, "impulse_s": 1},
    ], "interlocks": [{"outputs": ["gen", 2], "wait_s": 1.5}]}
    e = build(cfg, EventLog(4))
    assert e.count == 3
    p = e.p
    assert p.stale_ms[0] == 5000 and p.stale_ms[1] == 20000 and p.off_delay_ms[0] == 5500
    assert p.il_wait[0 * 3 + 2] == 1500 and p.il_wait[2 * 3 + 0] == 1500 and p.il_wait[1] == -1
    assert p.quiet_from[0] == 1320 and p.quiet_to[0] == 420 and p.ex_at[0] == 600
    # Rejected config: the engine in use is untouched (nothing half-applied).
    b = Bench(one({"flag": 0}))
    engine = b.engine
    try:
        b.engine = build({"outputs": [{"when": {"flag": 0}, "debounce": 0}]}, b.log)
    except ConfigError:
        pass
    assert b.engine is engine


def test_ticks_wrap_is_crossed_by_timers():
    b = Bench(one({"flag": 0}, min_on_s=6))
    b.flags[0] = 1
    b.step()
    b.flags[0] = 0
    got = ""
    for _ in range(8):
        b.step()
        got += "1" if b.on() else "0"
    assert got == "11111000"  # off 6 s after it went on, across the wrap at START + 4 s
