# Wrap-safe millisecond ticks for pure logic.
#
# The firmware passes time.ticks_ms() values in; on MicroPython they wrap at
# 2**30 (about 12.4 days), so elapsed time is always a ticks_diff, never a
# plain subtraction. Host tests pass their own fake counter, wrapped the same
# way with ticks_add(), so the wrap is exercised too.
try:
    from micropython import const
except ImportError:  # CPython
    def const(__value):  # positional-only, like the stub
        return __value

TICKS_PERIOD = const(0x40000000)
_MASK = const(0x3FFFFFFF)
_HALF = const(0x20000000)


def ticks_add(ticks, delta):
    return (ticks + delta) & _MASK


def ticks_diff(end, start):
    """end - start in ms, correct across one wrap (|result| < 2**29)."""
    d = (end - start) & _MASK
    return d - TICKS_PERIOD if d >= _HALF else d
