# lib/history.py: the dashboard's ring of samples. The document it writes
# (ages, values as decimal numbers, nulls), the period gate, the ring's wrap,
# the window, the ticks' wrap, clamping. CPython and MicroPython (stage 2).
import json

from history import EXPS, FIELDS, History, doc
from jsonout import JsonOut
from ticks import COUNTER_MAX, ticks_add


def text(h, now_ms):
    """GET /api/history's body (through a small writer, so the producer has
    to yield several times)."""
    w = JsonOut(128)
    return b"".join(bytes(c) for c in w.chunks(doc(w, h, now_ms))).decode()


def render(h, now_ms):
    return json.loads(text(h, now_ms))


def points_text(h, now_ms):
    """The points as written: the exact decimal text (numbers are compared
    as text, not as floats, which MicroPython keeps in single precision)."""
    t = text(h, now_ms)
    return t[t.index('"points":') + 9:-1]


def test_an_empty_history_says_what_it_would_hold():
    d = render(History(120, 30000), 0)
    assert d["period_s"] == 30 and d["size"] == 120
    assert d["fields"] == list(FIELDS) and len(d["units"]) == len(FIELDS)
    assert d["points"] == []


def test_samples_come_out_as_decimal_numbers_with_their_age():
    h = History(10, 30000)
    h.add(1000, 5319, -125, 70, 3323, 3326)
    h.add(31000, 5320, 42, 71, 3324, 3327)
    # The values are the raw ints times 10**exp: pack cV, current dA, %, mV.
    assert points_text(h, 32500) == "[[31,53.19,-12.5,70,3.323,3.326],[1,53.2,4.2,71,3.324,3.327]]"
    assert [len(p) for p in render(h, 32500)["points"]] == [1 + len(FIELDS)] * 2
    assert EXPS == (-2, -1, 0, -3, -3)


def test_a_value_the_bms_does_not_report_is_null():
    h = History(4, 30000)
    h.add(0, None, None, None, None, None)
    assert render(h, 0)["points"] == [[0, None, None, None, None, None]]


def test_values_beyond_a_fields_range_are_clamped_to_it():
    h = History(4, 30000)
    h.add(0, 70000, -40000, 300, -5, 70000)
    h.add(1000, -1, 40000, -3, 0, 65535)
    assert points_text(h, 1000) == "[[1,655.34,-3276.7,254,0.0,65.534],[0,0.0,3276.7,0,0.0,65.534]]"


def test_one_sample_per_period_at_most():
    h = History(10, 30000)
    assert h.due(5000)  # nothing yet: at once
    h.add(5000, 1, 1, 1, 1, 1)
    assert not h.due(5000) and not h.due(34999)
    assert h.due(35000) and h.due(90000)


def test_the_ring_keeps_the_newest_samples_oldest_first():
    h = History(3, 1000)
    for k in range(5):
        h.add(k * 1000, 5300 + k, k, 50 + k, 3300 + k, 3400 + k)
    d = render(h, 4000)
    assert h.count == 3
    assert [p[0] for p in d["points"]] == [2, 1, 0]
    assert [p[3] for p in d["points"]] == [52, 53, 54]


def test_samples_older_than_the_window_go():
    h = History(4, 1000)  # a window of 4 s
    h.add(0, 1, 1, 1, 1, 1)
    h.add(1000, 2, 2, 2, 2, 2)
    h.expire(4000)
    assert h.count == 2  # 4.0 s old: still inside
    h.expire(4001)
    assert h.count == 1 and render(h, 4001)["points"][0][0] == 3
    h.expire(100000)
    assert h.count == 0 and render(h, 100000)["points"] == []
    h.add(100000, 3, 3, 3, 3, 3)  # and it starts again
    assert points_text(h, 100500) == "[[0,0.03,0.3,3,0.003,0.003]]"


def test_ages_are_right_across_the_ticks_wrap():
    h = History(8, 30000)
    t0 = COUNTER_MAX - 10000  # 10 s before the ms ticks wrap to 0
    t1 = ticks_add(t0, 30000)
    h.add(t0, 1, 1, 1, 1, 1)
    assert not h.due(ticks_add(t0, 29999)) and h.due(t1)
    h.add(t1, 2, 2, 2, 2, 2)
    now = ticks_add(t1, 4500)
    assert t1 < t0  # the second sample's ticks wrapped
    assert [p[0] for p in render(h, now)["points"]] == [34, 4]
    h.expire(ticks_add(t0, 240001))
    assert h.count == 1


def test_clear_empties_it():
    h = History(4, 1000)
    h.add(0, 1, 1, 1, 1, 1)
    h.clear()
    assert h.count == 0 and h.due(0)


def test_a_nonsense_size_or_period_is_refused():
    for size, period in ((0, 30000), (10, 10)):
        try:
            History(size, period)
        except ValueError:
            continue
        raise AssertionError("accepted size %d period %d" % (size, period))
