# Hypothesis properties of the rule engine (CPython only): timing limits
# hold for any noise, the fail-safe always arrives within 3 s, overrides
# expire to the millisecond, interlocked outputs are never on together.
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from link.model import LINK_LOST, LINK_OK, LINK_STALE
from rules import reasons
from ticks import ticks_add, ticks_diff
import test_lib_rules as rig

EXAMPLES = int(os.environ.get("ANTBRIDGE_RULES_EXAMPLES", "300"))
PROPS = settings(max_examples=EXAMPLES, deadline=None)


class Clock:
    """A Bench plus the absolute elapsed time in ms (bench.now wraps)."""

    def __init__(self, config):
        self.bench = rig.Bench(config)
        self.t = 0

    def step(self, ms):
        self.bench.step(ms)
        self.t += ms


@PROPS
@given(
    min_on=st.integers(0, 20),
    min_off=st.integers(0, 20),
    cap=st.integers(0, 8),
    hyst=st.integers(0, 2),
    noise=st.lists(st.tuples(st.integers(45, 55), st.integers(100, 5000)), min_size=20, max_size=300),
)
def test_noise_never_switches_faster_than_min_times_and_rate_cap(min_on, min_off, cap, hyst, noise):
    c = Clock(rig.one({"soc": {"below": 50, "hyst": hyst}}, min_on_s=min_on, min_off_s=min_off,
                      max_switches_per_hour=cap))
    switches = []  # (t, new state)
    state = False
    for soc, ms in noise:
        c.bench.model.status.soc_pct = soc
        c.step(ms)
        if c.bench.on() != state:
            state = c.bench.on()
            switches.append((c.t, state))
    for k in range(1, len(switches)):
        t_prev, s_prev = switches[k - 1]
        t, _ = switches[k]
        floor = min_on if s_prev else min_off
        assert t - t_prev >= floor * 1000, (switches, k)
    if cap:
        starts = [t for t, s in switches if s]
        for k in range(cap, len(starts)):
            assert starts[k] - starts[k - cap] >= 3600000, starts


@PROPS
@given(
    safe=st.sampled_from(["off", "on", "hold"]),
    link=st.sampled_from([LINK_STALE, LINK_LOST]),
    timing=st.fixed_dictionaries({
        "min_on_s": st.integers(0, 600), "min_off_s": st.integers(0, 600),
        "on_delay_s": st.integers(0, 60), "off_delay_s": st.integers(0, 60),
        "debounce": st.integers(1, 5),
    }),
    before=st.lists(st.tuples(st.booleans(), st.integers(100, 3000)), min_size=1, max_size=60),
    after=st.lists(st.integers(50, 1000), min_size=8, max_size=40),
)
def test_stale_or_lost_link_yields_the_fail_safe_state_within_3_s(safe, link, timing, before, after):
    cfg = rig.one({"flag": 0}, fail_safe=safe, **timing)
    c = Clock(cfg)
    for flag, ms in before:
        c.bench.flags[0] = 1 if flag else 0
        c.step(ms)
    held = c.bench.on()
    c.bench.model.link = link
    t0 = c.t
    expected = held if safe == "hold" else safe == "on"
    for ms in after:
        c.bench.flags[0] ^= 1  # the rule's input keeps changing: it must not matter
        c.step(ms)
        if c.t - t0 >= 3000:
            assert c.bench.on() == expected, (c.t - t0, safe)
            assert c.bench.reason() in (reasons.R_STALE, reasons.R_LOST)


@PROPS
@given(
    expiry_ms=st.integers(1, 259200000),
    on=st.booleans(),
    offset=st.integers(0, 0x3FFFFFFF),
    steps=st.lists(st.integers(1, 20000), min_size=5, max_size=60),
)
def test_override_expires_exactly_when_set(expiry_ms, on, offset, steps):
    b = rig.Bench(rig.one({"flag": 0}))
    b.now = offset  # anywhere on the ticks circle
    b.flags[0] = 0 if on else 1  # the rule wants the opposite
    b.step()
    b.engine.override(0, on, expiry_ms / 1000, False, b.now)
    until = ticks_add(b.now, expiry_ms)
    # Jump to just before the expiry, then step across it.
    b.step(max(1, expiry_ms - sum(steps) // 2))
    for ms in steps:
        b.step(ms)
        left = ticks_diff(until, b.now)
        overridden = b.reason() in (reasons.R_OVERRIDE_ON, reasons.R_OVERRIDE_OFF)
        assert overridden == (left > 0), (left, expiry_ms)
        assert b.on() == (on if left > 0 else not on)


@PROPS
@given(
    wait=st.integers(0, 5),
    script=st.lists(
        st.tuples(st.integers(0, 7), st.integers(200, 4000), st.sampled_from([None, "on", "off", "release"]),
                  st.integers(0, 2)),
        min_size=5, max_size=120),
)
def test_interlocked_outputs_are_never_on_together(wait, script):
    cfg = {"outputs": [{"when": {"flag": 0}, "min_on_s": 1}, {"when": {"flag": 1}, "off_delay_s": 2},
                       {"when": {"flag": 2}, "impulse_s": 3}],
           "interlocks": [{"outputs": [0, 1, 2], "wait_s": wait}]}
    c = Clock(cfg)
    e = c.bench.engine
    last_off = [-10 ** 9] * 3
    for bits, ms, action, target in script:
        for k in range(3):
            c.bench.flags[k] = (bits >> k) & 1
        # An override applies at once (no step); the rule at the next step.
        for act in (action, "step"):
            before = [e.state(k) for k in range(3)]
            if act == "on":
                e.override(target, True, None, False, c.bench.now)
            elif act == "off":
                e.override(target, False, None, False, c.bench.now)
            elif act == "release":
                e.release(target)
            elif act == "step":
                c.step(ms)
            now_on = [k for k in range(3) if e.state(k)]
            assert len(now_on) <= 1, (now_on, script)
            for k in range(3):
                if before[k] and not e.state(k):
                    last_off[k] = c.t
            for k in now_on:
                if not before[k]:  # switched on now: every other one off for >= wait
                    for j in range(3):
                        if j != k and last_off[j] >= 0:
                            assert c.t - last_off[j] >= wait * 1000, (k, j, script)
