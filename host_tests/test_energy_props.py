# Property: the energy counters equal the integral of a known profile within
# 0.5 %, whatever the profile. Current and voltage are smooth random signals
# (a sum of sines, periods of minutes to hours, charging and discharging),
# sampled into status frames at a jittered interval the way the link delivers
# them; the truth is integrated independently from the continuous signals on
# a fine grid, split by the sign of the current. CPython only (hypothesis).
import math
import os
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from energy import Energy
from link.model import LINK_OK, Model
from ticks import ticks_add

EXAMPLES = int(os.environ.get("ANTBRIDGE_ENERGY_EXAMPLES", "25"))
HOURS = 3
FINE_S = 0.1  # truth grid


def signal(parts, offset):
    def f(t):
        return offset + sum(a * math.sin(2 * math.pi * t / p + ph) for a, p, ph in parts)

    return f


def truth(current, voltage, seconds):
    """Charged/discharged Wh and Ah of the continuous signals (midpoint rule
    on a 0.1 s grid, the sign taken at each point)."""
    wh_in = wh_out = ah_in = ah_out = 0.0
    n = int(seconds / FINE_S)
    for k in range(n):
        t = (k + 0.5) * FINE_S
        i = current(t)
        p = i * voltage(t)
        if i > 0:
            ah_in += i
            wh_in += p
        else:
            ah_out -= i
            wh_out -= p
    scale = FINE_S / 3600
    return wh_in * scale, wh_out * scale, ah_in * scale, ah_out * scale


parts = st.lists(
    st.tuples(
        st.floats(5, 80),  # amplitude, A
        st.floats(600, 6 * 3600),  # period, s
        st.floats(0, 2 * math.pi),  # phase
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    current_parts=parts,
    current_offset=st.floats(-30, 30),
    voltage_parts=st.lists(st.tuples(st.floats(0.1, 3), st.floats(600, 6 * 3600), st.floats(0, 6.3)), min_size=1, max_size=2),
    voltage=st.floats(24, 58),
    frame_ms=st.integers(250, 2000),
    seed=st.integers(0, 2**32 - 1),
)
def test_counters_equal_the_integral_of_the_profile(current_parts, current_offset, voltage_parts, voltage, frame_ms, seed):
    current = signal(current_parts, current_offset)
    volts = signal(voltage_parts, voltage)
    jitter = random.Random(seed)
    model = Model()
    energy = Energy(None)
    st_ = model.status
    seconds = HOURS * 3600
    now = 0x3FFF0000  # crosses the ticks wrap
    t_ms = 0
    while True:
        t = t_ms / 1000
        st_.pack_cv = int(round(volts(t) * 100))
        st_.current_da = int(round(current(t) * 10))
        st_.power_w = int(volts(t) * current(t))
        model.has_data = True
        model.link = LINK_OK
        model.fresh_ms = now
        energy.update(now, model)
        if t_ms >= seconds * 1000:
            break
        step = min(frame_ms + jitter.randint(-frame_ms // 5, frame_ms // 5), seconds * 1000 - t_ms)
        t_ms += step
        now = ticks_add(now, step)
    wh_in, wh_out, ah_in, ah_out = truth(current, volts, seconds)
    got_wh_in = energy.charged_kwh() * 1000
    got_wh_out = energy.discharged_kwh() * 1000
    got_ah_in = energy.charged_ah_total()
    got_ah_out = energy.discharged_ah_total()
    wh_scale = max(wh_in, wh_out)
    ah_scale = max(ah_in, ah_out)
    assert abs(got_wh_in - wh_in) <= 0.005 * wh_scale, (got_wh_in, wh_in)
    assert abs(got_wh_out - wh_out) <= 0.005 * wh_scale, (got_wh_out, wh_out)
    assert abs(got_ah_in - ah_in) <= 0.005 * ah_scale, (got_ah_in, ah_in)
    assert abs(got_ah_out - ah_out) <= 0.005 * ah_scale, (got_ah_out, ah_out)
    assert energy.gaps == 0
