# Wrap-safe millisecond ticks and 30-bit counters for pure logic.
#
# The firmware passes time.ticks_ms() values in; on MicroPython they wrap at
# 2**30 (about 12.4 days), so elapsed time is always a ticks_diff, never a
# plain subtraction. Host tests pass their own fake counter, wrapped the same
# way with ticks_add(), so the wrap is exercised too.
#
# No int here ever reaches 2**30, not even as an intermediate: the ESP32's
# small ints are 31-bit (-2**30 .. 2**30-1), and anything beyond is a heap
# object (allocation, MemoryError under heap_lock). So no `(a + b) & mask`
# (the sum may be 2**30 before the mask) and no 2**30 constant in a formula.
try:
    from micropython import const
except ImportError:  # CPython
    def const(__value):  # positional-only, like the stub
        return __value

COUNTER_MAX = const(0x3FFFFFFF)  # largest tick / wrapping-counter value
_HALF = const(0x20000000)


def wrap_add(value, delta):
    """(value + delta) mod 2**30 for value in 0..COUNTER_MAX and any small int
    delta; the counters' increment (statistics, sequence numbers) and the
    ticks' addition."""
    d = delta & COUNTER_MAX  # the same step, 0..COUNTER_MAX
    over = d - (COUNTER_MAX - value)  # value + d - COUNTER_MAX: > 0 past the wrap
    return value + d if over <= 0 else over - 1


# time.ticks_add() for the fake and the real ticks: the same arithmetic.
ticks_add = wrap_add


def ticks_diff(end, start):
    """end - start in ms, correct across one wrap (|result| <= 2**29)."""
    d = (end - start) & COUNTER_MAX  # |end - start| < 2**30: a small int
    return d - _HALF - _HALF if d >= _HALF else d
