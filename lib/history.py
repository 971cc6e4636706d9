# The pack's recent past on the device, for the dashboard's chart: a ring of
# samples (pack voltage, current, SOC, lowest and highest cell), one per
# period, kept as fixed-point ints in arrays allocated once. The outputs task
# adds a sample on a fresh status at most once a period and lets samples older
# than the window go; GET /api/history writes the ring as JSON (doc()).
#
#   h = History(120, 30000)              # the last hour at one sample per 30 s
#   if h.due(now_ms): h.add(now_ms, pack_cv, current_da, soc_pct, min_mv, max_mv)
#   h.expire(now_ms)                     # both allocate nothing
#   for _ in doc(w, h, now_ms): ...      # a JsonOut producer (a face)
#
# Memory: per sample 4 (ticks) + 2 (pack cV) + 2 (current dA) + 1 (SOC) +
# 2 + 2 (cells mV) = 13 bytes; 120 samples 1560 bytes of array data plus six
# array objects and the History object (README "Dashboard" has the measured
# total). A value the BMS does not report is kept as a sentinel and written
# as null; values beyond a field's range are clamped to it.
from array import array

from ticks import ticks_diff

try:
    from micropython import const
except ImportError:  # CPython
    def const(__value):  # positional-only, like the stub
        return __value

# The fields of a sample as GET /api/history names them, with their units and
# the decimal exponents of the stored ints (the catalog's rows: pack_voltage_v
# -2, current_a -1, soc_pct 0, cell_min_v/cell_max_v -3).
FIELDS = ("pack_v", "current_a", "soc_pct", "cell_min_v", "cell_max_v")
UNITS = ("V", "A", "%", "V", "V")
EXPS = (-2, -1, 0, -3, -3)

_U16_NONE = const(0xFFFF)  # pack cV and cell mV: 0..65534
_U16_MAX = const(0xFFFE)
_I16_NONE = const(-32768)  # current dA: -32767..32767 (the NEW frame's range)
_I16_MAX = const(32767)
_U8_NONE = const(255)  # SOC %: 0..254
_U8_MAX = const(254)


def _u16(v):
    if v is None:
        return _U16_NONE
    return 0 if v < 0 else (_U16_MAX if v > _U16_MAX else v)


def _i16(v):
    if v is None:
        return _I16_NONE
    return -_I16_MAX if v < -_I16_MAX else (_I16_MAX if v > _I16_MAX else v)


def _u8(v):
    if v is None:
        return _U8_NONE
    return 0 if v < 0 else (_U8_MAX if v > _U8_MAX else v)


class History:
    def __init__(self, size=120, period_ms=30000):
        if size < 1 or period_ms < 1000:
            raise ValueError("history: size >= 1 and period_ms >= 1000")
        self.size = size
        self.period_ms = period_ms
        # The window: a sample older than size periods is gone (so the chart
        # is "the last hour" even after the link was down for a while, and no
        # age ever comes near the ticks' wrap).
        self.window_ms = size * period_ms
        zeros = [0] * size  # (once, at start)
        self.ticks = array("i", zeros)
        self.pack_cv = array("H", zeros)
        self.current_da = array("h", zeros)
        self.soc_pct = array("B", zeros)
        self.cell_min_mv = array("H", zeros)
        self.cell_max_mv = array("H", zeros)
        self.head = 0  # where the next sample goes
        self.count = 0

    def due(self, now_ms):
        """A sample may be taken now: none yet, or the newest is a period old."""
        if self.count == 0:
            return True
        newest = self.head - 1 if self.head else self.size - 1
        return ticks_diff(now_ms, self.ticks[newest]) >= self.period_ms

    def add(self, now_ms, pack_cv, current_da, soc_pct, cell_min_mv, cell_max_mv):
        """Store one sample (raw fixed-point ints or None). Allocates nothing."""
        i = self.head
        self.ticks[i] = now_ms
        self.pack_cv[i] = _u16(pack_cv)
        self.current_da[i] = _i16(current_da)
        self.soc_pct[i] = _u8(soc_pct)
        self.cell_min_mv[i] = _u16(cell_min_mv)
        self.cell_max_mv[i] = _u16(cell_max_mv)
        self.head = i + 1 if i + 1 < self.size else 0
        if self.count < self.size:
            self.count += 1

    def oldest(self):
        """Ring index of the oldest sample (count > 0)."""
        i = self.head - self.count
        return i + self.size if i < 0 else i

    def expire(self, now_ms):
        """Drop the samples older than the window. Allocates nothing."""
        while self.count and ticks_diff(now_ms, self.ticks[self.oldest()]) > self.window_ms:
            self.count -= 1

    def clear(self):
        self.head = 0
        self.count = 0


def _opt(w, v, none, exp):
    if v == none:
        w.null()
    else:
        w.fixed(v, exp)


def doc(w, h, now_ms):
    """GET /api/history: {"period_s", "size", "fields", "units", "points":
    [[age_s, pack_v, current_a, soc_pct, cell_min_v, cell_max_v], ...]},
    oldest first; age_s = seconds before now. A JsonOut producer (yields
    when the buffer is full)."""
    w.begin_obj()
    w.key("period_s")
    w.integer(h.period_ms // 1000)
    w.key("size")
    w.integer(h.size)
    w.key("fields")
    w.begin_list()
    for f in FIELDS:
        w.str_value(f)
    w.end_list()
    w.key("units")
    w.begin_list()
    for u in UNITS:
        w.str_value(u)
    w.end_list()
    w.key("points")
    w.begin_list()
    i = h.oldest() if h.count else 0
    for _ in range(h.count):
        w.begin_list()
        w.integer(ticks_diff(now_ms, h.ticks[i]) // 1000)
        _opt(w, h.pack_cv[i], _U16_NONE, -2)
        _opt(w, h.current_da[i], _I16_NONE, -1)
        _opt(w, h.soc_pct[i], _U8_NONE, 0)
        _opt(w, h.cell_min_mv[i], _U16_NONE, -3)
        _opt(w, h.cell_max_mv[i], _U16_NONE, -3)
        w.end_list()
        i = i + 1 if i + 1 < h.size else 0
        if w.full():
            yield
    w.end_list()
    w.end_obj()
