# ACC wake policy, keep-awake and the isolated-supply control (lib/acc.py),
# against a simulated BMS that answers (or not) after ACC pulses.
# Runs under CPython and MicroPython.
from acc import (
    STATE_ASLEEP,
    STATE_BACKOFF,
    STATE_IDLE,
    STATE_NAMES,
    STATE_RELEASED,
    STATE_UNPOWERED,
    SUPPLY_STUCK,
    SUPPLY_WAKE_FAILED,
    KEEP_MODES,
    AccController,
    in_window,
)
from eventlog import EV_ACC, EV_SUPPLY, EventLog
from link.model import LINE_NOISE, LINE_SILENT, LINK_ASLEEP, LINK_LOST, LINK_OK, LINK_STALE, LINK_UNPOWERED
from schema import ConfigError
from ticks import ticks_add, ticks_diff

T0 = 0x3FFF0000  # the ticks wrap about 65 s in
STEP = 50


class Sim:
    """Steps the controller every 50 ms. The 'BMS' answers `wake_after_ms`
    after the end of its `wakes_on`-th ACC pulse (never if 0)."""

    def __init__(self, config=None, link=LINK_LOST, wakes_on=0, wake_after_ms=1000):
        self.log = EventLog(64)
        config = dict(config or {})
        # These scenarios study the wake policy alone: keep-awake off unless
        # a test sets it (the default, "always", holds ACC high).
        config.setdefault("keep_awake", {"mode": "off"})
        self.acc = AccController(config, self.log)
        self.now = T0
        self.link = link
        self.line = LINE_SILENT
        self.soc = -1
        self.minute = -1
        self.client = False
        self.rule = False
        self.wakes_on = wakes_on
        self.wake_after_ms = wake_after_ms
        self.pulses = 0
        self.rises = []  # ms since start of each ACC rising edge
        self.falls = []
        self.supply_changes = []  # (ms since start, level)
        self._answer_at = None
        self._acc = 0
        self._supply = 1

    def t(self):
        return ticks_diff(self.now, T0)

    def run(self, ms):
        end = ticks_add(self.now, ms)
        while ticks_diff(end, self.now) > 0:
            if self._answer_at is not None and ticks_diff(self.now, self._answer_at) >= 0:
                self.link = LINK_OK
                self._answer_at = None
            self.acc.step(self.now, self.link, self.soc, self.minute, self.client, self.rule, self.line)
            a = self.acc.acc_level
            if a != self._acc:
                (self.rises if a else self.falls).append(self.t())
                if not a:
                    self.pulses += 1
                    if self.pulses == self.wakes_on:
                        self._answer_at = ticks_add(self.now, self.wake_after_ms)
                self._acc = a
            if self.acc.supply_level != self._supply:
                self._supply = self.acc.supply_level
                self.supply_changes.append((self.t(), self._supply))
            self.now = ticks_add(self.now, STEP)

    def events(self, kind):
        out = []
        for k in range(len(self.log)):
            e = self.log.entry(k)
            if e[0] == kind:
                out.append(e)
        out.reverse()
        return out


QUICK = {"wake": {"pulse_ms": 1500, "wait_ms": 3000, "boot_grace_ms": 5000, "backoff_ms": 2000,
                  "backoff_max_ms": 60000, "attempts": 5, "asleep_retry_ms": 300000},
         "supply": {"cycle_after_failures": 0}}


def test_silent_bms_gets_pulses_with_exponential_backoff_then_asleep():
    sim = Sim(QUICK)
    sim.run(400000)
    # grace 5 s; each attempt = 1.5 s pulse + 3 s wait; backoff 2, 4, 8, 16 s;
    # after the 5th failure: asleep, one pulse every 300 s.
    assert sim.rises[:5] == [5000, 11500, 20000, 32500, 53000], sim.rises
    assert sim.rises[5] == 53000 + 4500 + 300000, sim.rises
    assert [f - r for r, f in zip(sim.rises, sim.falls)] == [1500] * len(sim.rises)
    assert sim.acc.state == STATE_ASLEEP and sim.acc.attempts == 6
    assert sim.acc.describe(sim.now)["state"] == "asleep"
    acc_events = sim.events(EV_ACC)
    assert any(e[1] == STATE_ASLEEP and e[2] == 5 for e in acc_events)
    assert sim.supply_changes == []  # no power cycling configured


def test_backoff_is_capped():
    cfg = {"wake": {"backoff_ms": 2000, "backoff_max_ms": 5000, "attempts": 10, "boot_grace_ms": 0},
           "supply": {"cycle_after_failures": 0}}
    sim = Sim(cfg)
    sim.run(60000)
    gaps = [b - a - 4500 for a, b in zip(sim.rises, sim.rises[1:])]
    assert gaps[:5] == [2000, 4000, 5000, 5000, 5000], gaps


def test_link_back_after_the_second_pulse_goes_idle():
    sim = Sim(QUICK, wakes_on=2, wake_after_ms=1000)
    sim.run(60000)
    assert sim.rises == [5000, 11500]
    a = sim.acc
    assert a.state == STATE_IDLE and a.attempts == 0 and a.wakes_ok == 1 and a.wake_failures == 1
    assert a.acc_level == 0


def test_bms_answering_at_boot_is_never_pulsed():
    sim = Sim(QUICK)
    sim.run(1000)
    sim.link = LINK_OK
    sim.run(60000)
    assert sim.rises == [] and sim.acc.state == STATE_IDLE


def test_sleep_after_answering_wakes_only_when_policy_says_so():
    rows = (
        # (when_asleep, keep mode, client, link lost to, pulses expected)
        (True, "off", False, LINK_ASLEEP, True),
        (False, "off", False, LINK_ASLEEP, False),
        (False, "client", True, LINK_ASLEEP, True),  # keep-awake wants it
        (False, "off", False, LINK_LOST, True),  # lost (not asleep): wake
    )
    for when_asleep, mode, client, lost, pulsed in rows:
        cfg = {"wake": {"when_asleep": when_asleep}, "keep_awake": {"mode": mode}}
        sim = Sim(cfg, link=LINK_OK)
        sim.client = client
        sim.run(10000)
        sim.link = lost
        sim.run(20000)
        assert (len(sim.rises) > (1 if client else 0)) == pulsed, (when_asleep, mode, client, lost, sim.rises)
        if not pulsed:
            assert sim.acc.state == STATE_RELEASED


def test_keep_awake_modes():
    rows = (
        # (mode extra, minute, client, rule, holding)
        ({"mode": "off"}, 600, True, True, False),
        ({"mode": "always"}, -1, False, False, True),
        ({"mode": "schedule", "from_min": 480, "to_min": 1200}, 600, False, False, True),
        ({"mode": "schedule", "from_min": 480, "to_min": 1200}, 1200, False, False, False),
        ({"mode": "schedule", "from_min": 480, "to_min": 1200}, -1, False, False, False),  # no clock
        ({"mode": "schedule", "from_min": 1320, "to_min": 360}, 30, False, False, True),  # past midnight
        ({"mode": "schedule", "from_min": 1320, "to_min": 360}, 720, False, False, False),
        ({"mode": "client"}, 600, True, False, True),
        ({"mode": "client"}, 600, False, True, False),
        ({"mode": "rule"}, 600, False, True, True),
        ({"mode": "rule"}, 600, True, False, False),
    )
    for keep, minute, client, rule, holding in rows:
        sim = Sim({"keep_awake": keep}, link=LINK_OK)
        sim.minute, sim.client, sim.rule, sim.soc = minute, client, rule, 80
        sim.run(1000)
        assert sim.acc.holding == holding and sim.acc.acc_level == (1 if holding else 0), (keep, minute)


def test_in_window():
    assert in_window(0, 0, 1) and not in_window(1, 0, 1)
    assert in_window(1439, 1320, 360) and in_window(0, 1320, 360) and not in_window(360, 1320, 360)
    assert not in_window(-1, 0, 1439)  # no clock: never in a window
    assert in_window(0, 600, 600) and in_window(1439, 600, 600)  # from == to: the whole day


def test_soc_floor_with_hysteresis():
    sim = Sim({"keep_awake": {"mode": "always", "soc_floor_pct": 20, "soc_hysteresis_pct": 5}}, link=LINK_OK)
    rows = ((50, 1), (21, 1), (20, 0), (22, 0), (24, 0), (25, 1), (-1, 1), (19, 0), (-1, 0), (30, 1))
    for soc, level in rows:
        sim.soc = soc
        sim.run(100)
        assert sim.acc.acc_level == level, (soc, level)
        assert sim.acc.floor_blocked == (level == 0)


def test_a_wake_while_holding_starts_with_a_release():
    sim = Sim({"keep_awake": {"mode": "always"}, "wake": {"boot_grace_ms": 0}}, link=LINK_OK)
    sim.soc = 80
    sim.run(2000)
    assert sim.rises == [0]
    sim.link = LINK_LOST
    sim.run(2000)
    # ACC drops for 300 ms (a fresh rising edge for the BMS), then the pulse.
    assert sim.falls == [2000] and sim.rises == [0, 2300], (sim.falls, sim.rises)


def test_manual_wake():
    sim = Sim(QUICK, link=LINK_OK)
    sim.run(10000)
    sim.acc.manual_wake(sim.now)
    sim.run(10000)
    assert sim.rises == [10000] and sim.falls == [11500]
    assert sim.acc.state == STATE_IDLE  # link was fine: success after the pulse
    # From asleep: a manual wake pulses at once and starts a new series.
    sim = Sim(QUICK)
    sim.run(100000)
    assert sim.acc.state == STATE_ASLEEP
    n = len(sim.rises)
    sim.acc.manual_wake(sim.now)
    sim.run(100)
    assert len(sim.rises) == n + 1 and sim.acc.attempts == 0


def test_stuck_link_power_cycles_the_supply():
    cfg = {"wake": {"enabled": False}, "supply": {"stuck_ms": 30000, "off_ms": 2000}}
    sim = Sim(cfg)
    sim.line = LINE_NOISE
    sim.run(70000)
    assert sim.rises == []  # waking disabled
    # stuck from 0 s: cycle at 30 s; again 30 s after the cycle ended (+ 2 s).
    assert sim.supply_changes == [(30000, 0), (32000, 1), (62000, 0), (64000, 1)], sim.supply_changes
    assert sim.acc.power_cycles == 2
    reasons = [e[2] for e in sim.events(EV_SUPPLY) if e[1] == 0]
    assert reasons == [SUPPLY_STUCK, SUPPLY_STUCK]
    # Silence (no bytes) is not "stuck".
    sim = Sim(cfg)
    sim.run(70000)
    assert sim.supply_changes == []
    # With waking on, the pulses do not restart the stuck timer.
    sim = Sim({"wake": QUICK["wake"], "supply": {"stuck_ms": 30000, "off_ms": 2000, "cycle_after_failures": 0}})
    sim.line = LINE_NOISE
    sim.run(70000)
    assert sim.supply_changes == [(30000, 0), (32000, 1), (62000, 0), (64000, 1)], sim.supply_changes
    assert sim.rises[:4] == [5000, 11500, 20000, 37000], sim.rises


def test_failed_wakes_power_cycle_every_k_failures():
    cfg = {"wake": QUICK["wake"], "supply": {"cycle_after_failures": 3, "off_ms": 2000}}
    sim = Sim(cfg)
    sim.run(50000)
    # third failure at 20000 + 4500 = 24500: supply off 2 s, then the grace
    # time before the next pulse.
    assert sim.supply_changes == [(24500, 0), (26500, 1)], sim.supply_changes
    assert sim.rises[:4] == [5000, 11500, 20000, 31500], sim.rises
    assert [e[2] for e in sim.events(EV_SUPPLY)] == [SUPPLY_WAKE_FAILED, 5]


def test_no_supply_pin_means_no_power_cycles():
    cfg = {"supply": {"cycle_after_failures": 1, "stuck_ms": 1000}}
    sim = Sim(cfg)
    sim.acc.has_supply = False
    sim.line = LINE_NOISE
    sim.run(60000)
    assert sim.supply_changes == [] and sim.acc.state in (STATE_BACKOFF, STATE_ASLEEP) and len(sim.rises) >= 3


def test_on_demand_supply():
    cfg = {"supply": {"mode": "on_demand", "demand_hold_ms": 60000, "sample_every_ms": 600000}}
    sim = Sim(cfg, link=LINK_OK)
    sim.run(70000)
    # On at boot to learn the state, off after the hold time.
    assert sim.supply_changes == [(60000, 0)] and sim.acc.state == STATE_UNPOWERED
    sim.link = LINK_UNPOWERED  # the link engine follows the supply
    sim.run(10000)
    sim.client = True
    sim.run(100)
    assert sim.acc.supply_level == 1
    sim.link = LINK_OK
    sim.run(30000)
    assert sim.acc.state == STATE_IDLE
    sim.client = False
    sim.run(61000)
    assert sim.acc.supply_level == 0
    n = len(sim.supply_changes)
    sim.run(600000)  # the periodic sample window powers it again
    assert [lvl for _, lvl in sim.supply_changes[n:]][:1] == [1]
    assert sim.rises == []  # a powered-down TTL side is not a sleeping BMS


def test_on_demand_supply_stays_off_through_weeks_without_demand():
    # ticks_diff() spans only +-2**29 ms (6.2 days): an expired "demand
    # until" stamp left to age would wrap into the future and power the TTL
    # side for days with nothing needing it.
    sim = Sim({"supply": {"mode": "on_demand", "demand_hold_ms": 60000}}, link=LINK_OK)
    sim.run(70000)
    assert sim.acc.state == STATE_UNPOWERED and sim.acc.supply_level == 0
    sim.link = LINK_UNPOWERED
    for _ in range(24 * 14):  # two weeks, stepped every hour
        sim.now = ticks_add(sim.now, 3600000)
        sim.run(100)
        assert sim.acc.supply_level == 0 and sim.acc.state == STATE_UNPOWERED
    sim.client = True  # and a real demand still powers it at once
    sim.run(100)
    assert sim.acc.supply_level == 1


def test_config_is_validated():
    rows = (
        ({"wake": {"pulse_ms": 10}}, "acc.wake.pulse_ms"),
        ({"wake": {"enabled": 1}}, "acc.wake.enabled"),
        ({"wake": {"backoff_ms": 5000, "backoff_max_ms": 1000}}, "acc.wake.backoff_max_ms"),
        ({"keep_awake": {"mode": "sometimes"}}, "acc.keep_awake.mode"),
        ({"keep_awake": {"mod": "off"}}, "acc.keep_awake.mod"),
        ({"keep_awake": {"mode": "schedule", "from_min": 60, "to_min": 60}}, "acc.keep_awake.to_min"),
        ({"keep_awake": {"soc_floor_pct": 101}}, "acc.keep_awake.soc_floor_pct"),
        ({"supply": {"mode": "sometimes"}}, "acc.supply.mode"),
        ({"extra": {}}, "acc.extra"),
    )
    for bad, path in rows:
        try:
            AccController(bad)
            raise AssertionError("accepted " + repr(bad))
        except ConfigError as err:
            assert err.path == path, (err.path, path)


def test_describe():
    sim = Sim(QUICK)
    sim.run(8000)
    d = sim.acc.describe(sim.now)
    assert d["state"] in STATE_NAMES and d["acc"] in (0, 1) and d["supply"] == 1
    assert d["keep_awake"] == "off" and d["supply_mode"] == "always"
    sim.run(3000)  # 11 s: backoff after the first failure
    d = sim.acc.describe(sim.now)
    assert d["state"] == "backoff" and d["attempts"] == 1 and 0 < d["next_try_in_ms"] <= 2000


def test_default_keeps_the_bms_awake_above_the_soc_floor():
    # The default configuration holds ACC: a BMS with ACC high never falls
    # into its idle sleep, so the relays never lose their data to it.
    acc = AccController(None, EventLog(8))
    assert acc.config.keep_mode == KEEP_MODES.index("always")
    acc.step(T0, LINK_OK, 80, -1, False, False)
    assert acc.acc_level == 1 and acc.holding
    acc.step(ticks_add(T0, 200), LINK_OK, 20, -1, False, False)  # at the floor: released
    assert acc.acc_level == 0 and acc.floor_blocked


def test_a_silent_stale_link_is_woken_before_it_counts_as_lost():
    # The BMS dozed off: not a byte since the last good frame and the link
    # is stale. The wake starts now, not when the link is lost 10 s later.
    sim = Sim(QUICK, link=LINK_OK)
    sim.run(6000)
    assert sim.acc.state == STATE_NAMES.index("idle")
    sim.link = LINK_STALE
    sim.line = LINE_SILENT
    sim.run(200)
    assert sim.acc.state == STATE_NAMES.index("pulsing"), STATE_NAMES[sim.acc.state]
    assert sim.rises and sim.rises[-1] >= 6000


def test_stale_with_bytes_on_the_line_is_no_reason_to_wake():
    sim = Sim(QUICK, link=LINK_OK)
    sim.run(6000)
    sim.link = LINK_STALE
    sim.line = LINE_NOISE
    sim.run(2000)
    assert sim.acc.state == STATE_NAMES.index("idle") and not sim.rises


def test_hold_off_after_a_requested_shutdown_until_a_manual_wake():
    sim = Sim({"keep_awake": {"mode": "always"}}, link=LINK_OK)
    sim.soc = 80
    sim.run(6000)
    assert sim.acc.acc_level == 1
    sim.acc.hold_off(sim.now)
    sim.link = LINK_ASLEEP
    sim.run(60000)
    assert sim.acc.state == STATE_NAMES.index("shut down") and sim.acc.acc_level == 0
    assert sim.falls and not [r for r in sim.rises if r > 6000], sim.rises  # no wake at all
    woken_at = sim.t()
    sim.acc.manual_wake(sim.now)
    sim.run(600)  # (ACC held high again: the pulse starts with a 300 ms release)
    assert sim.acc.state == STATE_NAMES.index("pulsing") and sim.acc.acc_level == 1
    assert [r for r in sim.rises if r >= woken_at], sim.rises
