# The history's hot path allocates nothing: due(), add() and expire() as the
# outputs task calls them on every pass, under micropython.heap_lock(), with
# values of every kind (None, clamped, negative) and across the ring's and
# the ticks' wrap. MicroPython only (mp_test_*).
import micropython

from history import History
from ticks import COUNTER_MAX, ticks_add


def test_sampling_allocates_nothing():
    h = History(120, 30000)
    now = COUNTER_MAX - 3600000  # an hour before the ms ticks wrap
    values = ((5319, -125, 70, 3323, 3326), (None, None, None, None, None), (70000, -40000, 300, -5, 70000))
    passes = 0
    micropython.heap_lock()
    try:
        for k in range(5000):  # 5000 s at a pass a second, as the outputs task at least runs
            now = ticks_add(now, 1000)
            h.expire(now)
            if h.due(now):
                v = values[k % 3]
                h.add(now, v[0], v[1], v[2], v[3], v[4])
            passes += 1
    finally:
        micropython.heap_unlock()
    assert passes == 5000
    assert h.count == 120  # the ring went round and the window holds a full hour
    assert now < 3600000  # and the ticks wrapped on the way
