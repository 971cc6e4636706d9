# Wrap-safe ticks and 30-bit counters (lib/ticks.py), under CPython and
# MicroPython. Besides the values, every test checks that no int in the
# computation reaches the ESP32's small-int range limit (31-bit: an int
# outside -2**30 .. 2**30-1 is a heap object there, even where the 63-bit
# unix port and CPython show nothing).
from ticks import COUNTER_MAX, ticks_add, ticks_diff, wrap_add

_PERIOD = COUNTER_MAX + 1
_LIMIT = 1 << 30


class Small(int):
    """An int that fails when arithmetic on it leaves the 31-bit range."""

    def _ok(self, r):
        assert -_LIMIT <= r < _LIMIT, "int outside the ESP32 small-int range: %d" % r
        return Small(r)

    def __add__(self, o):
        return self._ok(int(self) + int(o))

    def __radd__(self, o):
        return self._ok(int(o) + int(self))

    def __sub__(self, o):
        return self._ok(int(self) - int(o))

    def __rsub__(self, o):
        return self._ok(int(o) - int(self))

    def __and__(self, o):
        return self._ok(int(self) & int(o))

    def __rand__(self, o):
        return self._ok(int(o) & int(self))

    def __neg__(self):
        return self._ok(-int(self))

    def __mul__(self, o):
        return self._ok(int(self) * int(o))

    def __rmul__(self, o):
        return self._ok(int(o) * int(self))

    def __floordiv__(self, o):
        return self._ok(int(self) // int(o))

    def __rfloordiv__(self, o):
        return self._ok(int(o) // int(self))

    def __mod__(self, o):
        return self._ok(int(self) % int(o))

    def __lshift__(self, o):
        return self._ok(int(self) << int(o))

    def __rshift__(self, o):
        return self._ok(int(self) >> int(o))

    # MicroPython compares an int subclass with an int only through these.
    def __lt__(self, o):
        return int(self) < int(o)

    def __le__(self, o):
        return int(self) <= int(o)

    def __gt__(self, o):
        return int(self) > int(o)

    def __ge__(self, o):
        return int(self) >= int(o)

    def __eq__(self, o):
        return int(self) == int(o)

    def __hash__(self):
        return hash(int(self))


def test_the_guard_catches_a_masked_sum():
    # The pattern this module avoids: (a + b) & mask forms 2**30 first.
    try:
        (Small(COUNTER_MAX) + 1) & COUNTER_MAX
    except AssertionError:
        return
    raise AssertionError("the guard did not fire")


_VALUES = (0, 1, 2, 999, 0x1FFFFFFF, 0x20000000, 0x3FFFF000, COUNTER_MAX - 1, COUNTER_MAX)
_DELTAS = (0, 1, -1, 1000, -1000, 0x1FFFFFFF, -0x1FFFFFFF, COUNTER_MAX, -COUNTER_MAX, -_LIMIT)


def test_wrap_add_is_addition_modulo_2_30_without_big_ints():
    for v in _VALUES:
        for d in _DELTAS:
            r = wrap_add(Small(v), Small(d))
            assert 0 <= int(r) <= COUNTER_MAX
            assert r == (v + d) % _PERIOD, (v, d, r)


def test_counter_wraps_to_zero():
    assert wrap_add(Small(COUNTER_MAX), Small(1)) == 0
    assert wrap_add(Small(COUNTER_MAX - 5), Small(10)) == 4
    assert wrap_add(Small(7), Small(1)) == 8


def test_ticks_add_and_diff_are_inverse_across_the_wrap():
    for t in _VALUES:
        for d in (0, 1, -1, 1000, -1000, 0x1FFFFFFF, -0x1FFFFFFF):
            later = ticks_add(Small(t), Small(d))
            assert 0 <= int(later) <= COUNTER_MAX
            assert ticks_diff(Small(later), Small(t)) == d, (t, d)
            assert ticks_diff(Small(t), Small(later)) == -d or d == -0x20000000


def test_ticks_diff_range_is_half_open():
    # Exactly half a period apart reads as "in the past", like time.ticks_diff.
    assert ticks_diff(Small(0x20000000), Small(0)) == -0x20000000
    assert ticks_diff(Small(0x1FFFFFFF), Small(0)) == 0x1FFFFFFF
    assert ticks_diff(Small(0), Small(COUNTER_MAX)) == 1
    assert ticks_diff(Small(COUNTER_MAX), Small(0)) == -1
